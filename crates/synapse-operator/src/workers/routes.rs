//! Which requests the router sends to which workers: the endpoint lists of Synapse's worker
//! documentation (`docs/workers.md`), checked against a real 1.163 generic worker. Everything not
//! listed goes to the main process, including the endpoints the documentation allows on workers
//! only for GET (push rules, tags, account data, presence): the router does not route by method.

/// A group of workers requests are balanced over, and how.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Pool {
    /// Generic workers, round robin.
    Generic,
    /// Generic workers, one per user (hashed by the access token's localpart): `/sync` and its
    /// kin keep each user's caches on one process.
    GenericByUser,
    /// Generic workers, one per sending server (hashed by address): inbound transactions of one
    /// server stay in order.
    GenericByOrigin,
    /// Generic workers, one per room: pagination of a room must stay on one process.
    GenericByRoom,
    /// Media repositories, round robin.
    Media,
}

impl Pool {
    /// The nginx upstream.
    pub fn upstream(self) -> &'static str {
        match self {
            Pool::Generic => "generic",
            Pool::GenericByUser => "generic_by_user",
            Pool::GenericByOrigin => "generic_by_origin",
            Pool::GenericByRoom => "generic_by_room",
            Pool::Media => "media",
        }
    }

    /// The nginx variable the pool hashes on, if it does.
    pub fn hash(self) -> Option<&'static str> {
        match self {
            Pool::GenericByUser => Some("$mxid_localpart"),
            Pool::GenericByOrigin => Some("$remote_addr"),
            Pool::GenericByRoom => Some("$room_id"),
            Pool::Generic | Pool::Media => None,
        }
    }

    /// Whether generic workers (else media repositories) serve it.
    pub fn is_generic(self) -> bool {
        self != Pool::Media
    }
}

/// The routes, first match wins.
pub const ROUTES: &[(&str, Pool)] = &[
    // Media.
    ("^/_matrix/media/", Pool::Media),
    ("^/_matrix/client/v1/media/", Pool::Media),
    ("^/_matrix/federation/v1/media/", Pool::Media),
    ("^/_synapse/admin/v1/purge_media_cache$", Pool::Media),
    ("^/_synapse/admin/v1/room/.*/media.*$", Pool::Media),
    ("^/_synapse/admin/v1/user/.*/media.*$", Pool::Media),
    ("^/_synapse/admin/v1/media/.*$", Pool::Media),
    ("^/_synapse/admin/v1/quarantine_media/.*$", Pool::Media),
    ("^/_synapse/admin/v1/users/.*/media$", Pool::Media),
    // Sync, per user.
    ("^/_matrix/client/(r0|v3)/sync$", Pool::GenericByUser),
    (
        "^/_matrix/client/(api/v1|r0|v3)/events$",
        Pool::GenericByUser,
    ),
    (
        "^/_matrix/client/(api/v1|r0|v3)/initialSync$",
        Pool::GenericByUser,
    ),
    (
        "^/_matrix/client/(api/v1|r0|v3)/rooms/[^/]+/initialSync$",
        Pool::GenericByUser,
    ),
    // Inbound federation transactions, per origin.
    ("^/_matrix/federation/v1/send/", Pool::GenericByOrigin),
    // Pagination, per room.
    (
        "^/_matrix/client/(api/v1|r0|v3|unstable)/rooms/[^/]+/messages$",
        Pool::GenericByRoom,
    ),
    // Federation requests.
    ("^/_matrix/federation/v1/version$", Pool::Generic),
    ("^/_matrix/federation/v1/event/", Pool::Generic),
    ("^/_matrix/federation/v1/state/", Pool::Generic),
    ("^/_matrix/federation/v1/state_ids/", Pool::Generic),
    ("^/_matrix/federation/v1/backfill/", Pool::Generic),
    ("^/_matrix/federation/v1/get_missing_events/", Pool::Generic),
    ("^/_matrix/federation/v1/publicRooms", Pool::Generic),
    ("^/_matrix/federation/v1/query/", Pool::Generic),
    ("^/_matrix/federation/v1/make_join/", Pool::Generic),
    ("^/_matrix/federation/v1/make_leave/", Pool::Generic),
    ("^/_matrix/federation/(v1|v2)/send_join/", Pool::Generic),
    ("^/_matrix/federation/(v1|v2)/send_leave/", Pool::Generic),
    ("^/_matrix/federation/v1/make_knock/", Pool::Generic),
    ("^/_matrix/federation/v1/send_knock/", Pool::Generic),
    ("^/_matrix/federation/(v1|v2)/invite/", Pool::Generic),
    ("^/_matrix/federation/v1/event_auth/", Pool::Generic),
    ("^/_matrix/federation/v1/timestamp_to_event/", Pool::Generic),
    (
        "^/_matrix/federation/v1/exchange_third_party_invite/",
        Pool::Generic,
    ),
    ("^/_matrix/federation/v1/user/devices/", Pool::Generic),
    ("^/_matrix/key/v2/query", Pool::Generic),
    ("^/_matrix/federation/v1/hierarchy/", Pool::Generic),
    // Client requests.
    (
        "^/_matrix/client/(api/v1|r0|v3|unstable)/createRoom$",
        Pool::Generic,
    ),
    (
        "^/_matrix/client/(api/v1|r0|v3|unstable)/publicRooms$",
        Pool::Generic,
    ),
    (
        "^/_matrix/client/(api/v1|r0|v3|unstable)/rooms/.*/joined_members$",
        Pool::Generic,
    ),
    (
        "^/_matrix/client/(api/v1|r0|v3|unstable)/rooms/.*/context/.*$",
        Pool::Generic,
    ),
    (
        "^/_matrix/client/(api/v1|r0|v3|unstable)/rooms/.*/members$",
        Pool::Generic,
    ),
    (
        "^/_matrix/client/(api/v1|r0|v3|unstable)/rooms/.*/state$",
        Pool::Generic,
    ),
    ("^/_matrix/client/v1/rooms/.*/hierarchy$", Pool::Generic),
    (
        "^/_matrix/client/(v1|unstable)/rooms/.*/relations/",
        Pool::Generic,
    ),
    ("^/_matrix/client/v1/rooms/.*/threads$", Pool::Generic),
    (
        "^/_matrix/client/unstable/im.nheko.summary/summary/.*$",
        Pool::Generic,
    ),
    ("^/_matrix/client/v1/room_summary/.*$", Pool::Generic),
    (
        "^/_matrix/client/(r0|v3|unstable)/account/3pid$",
        Pool::Generic,
    ),
    (
        "^/_matrix/client/(r0|v3|unstable)/account/whoami$",
        Pool::Generic,
    ),
    (
        "^/_matrix/client/(r0|v3|unstable)/account/deactivate$",
        Pool::Generic,
    ),
    ("^/_matrix/client/(r0|v3)/delete_devices$", Pool::Generic),
    (
        "^/_matrix/client/(api/v1|r0|v3|unstable)/devices(/|$)",
        Pool::Generic,
    ),
    ("^/_matrix/client/versions$", Pool::Generic),
    (
        "^/_matrix/client/(api/v1|r0|v3|unstable)/voip/turnServer$",
        Pool::Generic,
    ),
    (
        "^/_matrix/client/(api/v1|r0|v3|unstable)/rooms/.*/event/",
        Pool::Generic,
    ),
    (
        "^/_matrix/client/(api/v1|r0|v3|unstable)/joined_rooms$",
        Pool::Generic,
    ),
    (
        "^/_matrix/client/v1/rooms/.*/timestamp_to_event$",
        Pool::Generic,
    ),
    (
        "^/_matrix/client/(api/v1|r0|v3|unstable/.*)/rooms/.*/aliases",
        Pool::Generic,
    ),
    (
        "^/_matrix/client/(api/v1|r0|v3|unstable)/search$",
        Pool::Generic,
    ),
    (
        "^/_matrix/client/(r0|v3|unstable)/user/.*/filter(/|$)",
        Pool::Generic,
    ),
    (
        "^/_matrix/client/(api/v1|r0|v3|unstable)/directory/room/.*$",
        Pool::Generic,
    ),
    (
        "^/_matrix/client/(r0|v3|unstable)/capabilities$",
        Pool::Generic,
    ),
    (
        "^/_matrix/client/(r0|v3|unstable)/notifications$",
        Pool::Generic,
    ),
    ("^/_synapse/admin/v1/rooms/[^/]+$", Pool::Generic),
    // Encryption.
    (
        "^/_matrix/client/(r0|v3|unstable)/keys/query$",
        Pool::Generic,
    ),
    (
        "^/_matrix/client/(r0|v3|unstable)/keys/changes$",
        Pool::Generic,
    ),
    (
        "^/_matrix/client/(r0|v3|unstable)/keys/claim$",
        Pool::Generic,
    ),
    (
        "^/_matrix/client/(r0|v3|unstable)/room_keys/",
        Pool::Generic,
    ),
    (
        "^/_matrix/client/(r0|v3|unstable)/keys/upload",
        Pool::Generic,
    ),
    (
        "^/_matrix/client/(api/v1|r0|v3|unstable)/keys/device_signing/upload$",
        Pool::Generic,
    ),
    (
        "^/_matrix/client/(api/v1|r0|v3|unstable)/keys/signatures/upload$",
        Pool::Generic,
    ),
    // Registration and login.
    (
        "^/_matrix/client/(api/v1|r0|v3|unstable)/login$",
        Pool::Generic,
    ),
    ("^/_matrix/client/(r0|v3|unstable)/register$", Pool::Generic),
    (
        "^/_matrix/client/(r0|v3|unstable)/register/available$",
        Pool::Generic,
    ),
    (
        "^/_matrix/client/v1/register/m.login.registration_token/validity$",
        Pool::Generic,
    ),
    (
        "^/_matrix/client/(r0|v3|unstable)/password_policy$",
        Pool::Generic,
    ),
    // Event sending.
    (
        "^/_matrix/client/(api/v1|r0|v3|unstable)/rooms/.*/redact",
        Pool::Generic,
    ),
    (
        "^/_matrix/client/(api/v1|r0|v3|unstable)/rooms/.*/send",
        Pool::Generic,
    ),
    (
        "^/_matrix/client/(api/v1|r0|v3|unstable)/rooms/.*/state/",
        Pool::Generic,
    ),
    (
        "^/_matrix/client/(api/v1|r0|v3|unstable)/rooms/.*/(join|invite|leave|ban|unban|kick)$",
        Pool::Generic,
    ),
    (
        "^/_matrix/client/(api/v1|r0|v3|unstable)/join/",
        Pool::Generic,
    ),
    (
        "^/_matrix/client/(api/v1|r0|v3|unstable)/knock/",
        Pool::Generic,
    ),
    (
        "^/_matrix/client/(api/v1|r0|v3|unstable)/profile/",
        Pool::Generic,
    ),
    (
        "^/_matrix/client/(r0|v3|unstable)/user_directory/search$",
        Pool::Generic,
    ),
    (
        "^/_matrix/client/unstable/org.matrix.msc4140/delayed_events(/.*/restart)?$",
        Pool::Generic,
    ),
];
