//! Where each key of a legacy mautrix-signal config goes in the bridgev2 format: (legacy path,
//! bridgev2 path) pairs, as the bridgev2 framework's own migration moves them. A leaf module.

/// Keys carried over unchanged in both formats: (legacy path, bridgev2 path).
pub const COMMON: &[(&[&str], &[&str])] = &[
    (&["homeserver", "address"], &["homeserver", "address"]),
    (&["homeserver", "domain"], &["homeserver", "domain"]),
    (
        &["homeserver", "status_endpoint"],
        &["homeserver", "status_endpoint"],
    ),
    (
        &["homeserver", "message_send_checkpoint_endpoint"],
        &["homeserver", "message_send_checkpoint_endpoint"],
    ),
    (
        &["homeserver", "async_media"],
        &["homeserver", "async_media"],
    ),
    (&["appservice", "address"], &["appservice", "address"]),
    (&["appservice", "hostname"], &["appservice", "hostname"]),
    (&["appservice", "port"], &["appservice", "port"]),
    (&["appservice", "id"], &["appservice", "id"]),
    (
        &["appservice", "ephemeral_events"],
        &["appservice", "ephemeral_events"],
    ),
    (&["appservice", "as_token"], &["appservice", "as_token"]),
    (&["appservice", "hs_token"], &["appservice", "hs_token"]),
    (&["bridge", "command_prefix"], &["bridge", "command_prefix"]),
    (&["bridge", "permissions"], &["bridge", "permissions"]),
    (
        &["bridge", "resend_bridge_info"],
        &["bridge", "resend_bridge_info"],
    ),
    (
        &["bridge", "bridge_matrix_leave"],
        &["bridge", "bridge_matrix_leave"],
    ),
    (
        &["bridge", "relay", "enabled"],
        &["bridge", "relay", "enabled"],
    ),
    (&["bridge", "federate_rooms"], &["matrix", "federate_rooms"]),
    (
        &["bridge", "sync_direct_chat_list"],
        &["matrix", "sync_direct_chat_list"],
    ),
    (
        &["bridge", "delivery_receipts"],
        &["matrix", "delivery_receipts"],
    ),
    (
        &["bridge", "message_status_events"],
        &["matrix", "message_status_events"],
    ),
    (
        &["bridge", "double_puppet_allow_discovery"],
        &["double_puppet", "allow_discovery"],
    ),
    (
        &["bridge", "double_puppet_server_map"],
        &["double_puppet", "servers"],
    ),
    (
        &["bridge", "login_shared_secret_map"],
        &["double_puppet", "secrets"],
    ),
    (&["bridge", "encryption", "allow"], &["encryption", "allow"]),
    (
        &["bridge", "encryption", "default"],
        &["encryption", "default"],
    ),
];

/// Keys only the Python format has an equivalent for.
pub const PYTHON: &[(&[&str], &[&str])] = &[
    (
        &["homeserver", "http_retry_count"],
        &["homeserver", "retry_limit"],
    ),
    (
        &["appservice", "bot_username"],
        &["appservice", "bot", "username"],
    ),
    (
        &["appservice", "bot_displayname"],
        &["appservice", "bot", "displayname"],
    ),
    (
        &["appservice", "bot_avatar"],
        &["appservice", "bot", "avatar"],
    ),
    (
        &["bridge", "encryption", "key_sharing", "allow"],
        &["encryption", "allow_key_sharing"],
    ),
];

/// Keys only the Go format has an equivalent for.
pub const GO: &[(&[&str], &[&str])] = &[
    (&["homeserver", "software"], &["homeserver", "software"]),
    (
        &["homeserver", "websocket_proxy"],
        &["homeserver", "websocket_proxy"],
    ),
    (&["homeserver", "websocket"], &["homeserver", "websocket"]),
    (
        &["homeserver", "ping_interval_seconds"],
        &["homeserver", "ping_interval_seconds"],
    ),
    (
        &["appservice", "async_transactions"],
        &["appservice", "async_transactions"],
    ),
    (&["appservice", "bot"], &["appservice", "bot"]),
    (&["appservice", "database", "uri"], &["database", "uri"]),
    (
        &["appservice", "database", "max_open_conns"],
        &["database", "max_open_conns"],
    ),
    (
        &["appservice", "database", "max_idle_conns"],
        &["database", "max_idle_conns"],
    ),
    (
        &["appservice", "database", "max_conn_idle_time"],
        &["database", "max_conn_idle_time"],
    ),
    (
        &["appservice", "database", "max_conn_lifetime"],
        &["database", "max_conn_lifetime"],
    ),
    (
        &["appservice", "provisioning", "shared_secret"],
        &["provisioning", "shared_secret"],
    ),
    (
        &["bridge", "username_template"],
        &["appservice", "username_template"],
    ),
    (
        &["bridge", "personal_filtering_spaces"],
        &["bridge", "personal_filtering_spaces"],
    ),
    (
        &["bridge", "relay", "admin_only"],
        &["bridge", "relay", "admin_only"],
    ),
    (
        &["bridge", "message_error_notices"],
        &["matrix", "message_error_notices"],
    ),
    (
        &["bridge", "provisioning", "shared_secret"],
        &["provisioning", "shared_secret"],
    ),
    (
        &["bridge", "provisioning", "debug_endpoints"],
        &["provisioning", "debug_endpoints"],
    ),
    (
        &["bridge", "encryption", "require"],
        &["encryption", "require"],
    ),
    (
        &["bridge", "encryption", "appservice"],
        &["encryption", "appservice"],
    ),
    (
        &["bridge", "encryption", "msc4190"],
        &["encryption", "msc4190"],
    ),
    (
        &["bridge", "encryption", "self_sign"],
        &["encryption", "self_sign"],
    ),
    (
        &["bridge", "encryption", "allow_key_sharing"],
        &["encryption", "allow_key_sharing"],
    ),
    (
        &["bridge", "encryption", "delete_keys"],
        &["encryption", "delete_keys"],
    ),
    (
        &["bridge", "encryption", "verification_levels"],
        &["encryption", "verification_levels"],
    ),
    (
        &["bridge", "encryption", "rotation"],
        &["encryption", "rotation"],
    ),
    // The Signal connector's own settings moved to the `network` section.
    (
        &["bridge", "displayname_template"],
        &["network", "displayname_template"],
    ),
    (
        &["bridge", "note_to_self_avatar"],
        &["network", "note_to_self_avatar"],
    ),
    (
        &["bridge", "location_format"],
        &["network", "location_format"],
    ),
    (
        &["bridge", "use_contact_avatars"],
        &["network", "use_contact_avatars"],
    ),
    (
        &["bridge", "use_outdated_profiles"],
        &["network", "use_outdated_profiles"],
    ),
    (
        &["bridge", "number_in_topic"],
        &["network", "number_in_topic"],
    ),
    (&["signal", "device_name"], &["network", "device_name"]),
];
