//! The bridge's generated secrets: the app-service tokens and the values mautrix-signal would
//! otherwise generate itself at every start. The bridge runs with `-n` (its config is a
//! read-only Secret), so a value it generates is never saved: a pickle key made anew at each
//! start would make its encryption store unreadable after the first restart, a new provisioning
//! secret would lock out provisioning clients. They come from the operating system's CSPRNG,
//! are written once into a Secret of their own, and are never regenerated while it holds them.

use std::collections::BTreeMap;
use std::fmt;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD_NO_PAD;
use operator_common::random::{RandomError, random_alphanumeric, random_bytes};

/// Keys of the keys Secret.
pub mod key {
    /// The token the bridge uses with Synapse.
    pub const AS_TOKEN: &str = "as_token";
    /// The token Synapse uses with the bridge.
    pub const HS_TOKEN: &str = "hs_token";
    /// `encryption.pickle_key`: encrypts the bridge's encryption keys in its database.
    pub const PICKLE_KEY: &str = "pickle_key";
    /// `provisioning.shared_secret`: authenticates clients of the provisioning API.
    pub const PROVISIONING_SECRET: &str = "provisioning_shared_secret";
    /// `public_media.signing_key`: signs public media URLs.
    pub const PUBLIC_MEDIA_KEY: &str = "public_media_signing_key";
    /// `direct_media.server_key`: the Matrix signing key of direct media, in Synapse's format.
    pub const DIRECT_MEDIA_KEY: &str = "direct_media_server_key";

    /// Every key, in the order they are generated.
    pub const ALL: [&str; 6] = [
        AS_TOKEN,
        HS_TOKEN,
        PICKLE_KEY,
        PROVISIONING_SECRET,
        PUBLIC_MEDIA_KEY,
        DIRECT_MEDIA_KEY,
    ];
}

/// Length of generated tokens and secrets: what mautrix generates for its own.
pub const SECRET_LENGTH: usize = 64;

/// The generated secrets. `Debug` hides them: secrets never reach a log.
#[derive(Clone, PartialEq, Eq)]
pub struct Keys {
    pub as_token: String,
    pub hs_token: String,
    pub pickle_key: String,
    pub provisioning_secret: String,
    pub public_media_key: String,
    pub direct_media_key: String,
}

impl fmt::Debug for Keys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Keys { .. }")
    }
}

/// A stored keys Secret that lacks a key or holds one that is not text.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("the keys Secret has no usable {0}; the operator adds missing keys before reading it")]
pub struct IncompleteKeys(pub &'static str);

impl Keys {
    /// The keys of a complete Secret's data (see [`complete`]).
    pub fn from_data(data: &BTreeMap<String, Vec<u8>>) -> Result<Self, IncompleteKeys> {
        let text = |k: &'static str| {
            data.get(k)
                .filter(|v| !v.is_empty())
                .and_then(|v| String::from_utf8(v.clone()).ok())
                .ok_or(IncompleteKeys(k))
        };
        Ok(Self {
            as_token: text(key::AS_TOKEN)?,
            hs_token: text(key::HS_TOKEN)?,
            pickle_key: text(key::PICKLE_KEY)?,
            provisioning_secret: text(key::PROVISIONING_SECRET)?,
            public_media_key: text(key::PUBLIC_MEDIA_KEY)?,
            direct_media_key: text(key::DIRECT_MEDIA_KEY)?,
        })
    }
}

/// A Matrix signing key line as Synapse writes it, which is the format mautrix reads for
/// `direct_media.server_key`: `ed25519 <key id> <unpadded base64 of the 32-byte seed>`.
pub fn signing_key_line(key_id: &str, seed: &[u8; 32]) -> String {
    format!("ed25519 {key_id} {}", STANDARD_NO_PAD.encode(seed))
}

/// The Secret's data: values already present (non-empty text) are kept, missing ones generated.
pub fn complete(
    existing: &BTreeMap<String, Vec<u8>>,
) -> Result<BTreeMap<String, Vec<u8>>, RandomError> {
    let mut data = BTreeMap::new();
    for k in key::ALL {
        let kept = existing
            .get(k)
            .filter(|v| !v.is_empty() && std::str::from_utf8(v).is_ok());
        let value = match kept {
            Some(value) => value.clone(),
            None if k == key::DIRECT_MEDIA_KEY => {
                let key_id = format!("a_{}", random_alphanumeric(4)?);
                signing_key_line(&key_id, &random_bytes::<32>()?).into_bytes()
            }
            None => random_alphanumeric(SECRET_LENGTH)?.into_bytes(),
        };
        data.insert(k.to_owned(), value);
    }
    Ok(data)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signing_key_known_answer() {
        // MATRIX-NOTES: seed bytes 0x00..0x1f.
        let seed: [u8; 32] = std::array::from_fn(|i| u8::try_from(i).unwrap());
        assert_eq!(
            signing_key_line("a_abCD", &seed),
            "ed25519 a_abCD AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8"
        );
    }

    #[test]
    fn complete_generates_once_and_keeps_what_is_there() {
        let first = complete(&BTreeMap::new()).unwrap();
        assert_eq!(first.len(), key::ALL.len());
        let keys = Keys::from_data(&first).unwrap();
        assert_eq!(keys.as_token.len(), SECRET_LENGTH);
        assert!(keys.as_token.bytes().all(|b| b.is_ascii_alphanumeric()));
        assert_ne!(keys.as_token, keys.hs_token);
        assert_ne!(keys.pickle_key, keys.provisioning_secret);
        let parts: Vec<_> = keys.direct_media_key.split(' ').collect();
        assert_eq!(parts.len(), 3);
        assert_eq!(parts[0], "ed25519");
        assert!(parts[1].starts_with("a_") && parts[1].len() == 6);
        assert_eq!(STANDARD_NO_PAD.decode(parts[2]).unwrap().len(), 32);

        // A second pass changes nothing; a removed or emptied key alone is made again.
        assert_eq!(complete(&first).unwrap(), first);
        let mut damaged = first.clone();
        damaged.remove(key::PICKLE_KEY);
        damaged.insert(key::HS_TOKEN.to_owned(), Vec::new());
        let repaired = complete(&damaged).unwrap();
        assert_eq!(repaired[key::AS_TOKEN], first[key::AS_TOKEN]);
        assert_ne!(repaired[key::PICKLE_KEY], first[key::PICKLE_KEY]);
        assert_ne!(repaired[key::HS_TOKEN], first[key::HS_TOKEN]);
        assert!(!repaired[key::HS_TOKEN].is_empty());
    }

    #[test]
    fn incomplete_data_is_refused_and_debug_hides_secrets() {
        let mut data = complete(&BTreeMap::new()).unwrap();
        let keys = Keys::from_data(&data).unwrap();
        assert_eq!(format!("{keys:?}"), "Keys { .. }");
        data.remove(key::AS_TOKEN);
        assert_eq!(Keys::from_data(&data), Err(IncompleteKeys("as_token")));
    }
}
