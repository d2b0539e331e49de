//! The homeserver's generated secrets: signing key, macaroon secret, registration shared secret
//! and form secret. They come from the operating system's CSPRNG, are written once into the
//! operator-owned Secret and are never regenerated while that Secret holds them.

use std::collections::BTreeMap;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD_NO_PAD;
use operator_common::random::{RandomError, random_alphanumeric, random_bytes};

/// Keys of the homeserver Secret, also the file names under its mount path.
pub const SIGNING_KEY: &str = "signing.key";
pub const MACAROON_SECRET_KEY: &str = "macaroon_secret_key";
pub const REGISTRATION_SHARED_SECRET: &str = "registration_shared_secret";
pub const FORM_SECRET: &str = "form_secret";

/// Every key the homeserver Secret holds.
pub const ALL_KEYS: [&str; 4] = [
    SIGNING_KEY,
    MACAROON_SECRET_KEY,
    REGISTRATION_SHARED_SECRET,
    FORM_SECRET,
];

/// Synapse's signing key file line: `ed25519 <key id> <unpadded base64 of the 32-byte seed>`.
pub fn signing_key_line(key_id: &str, seed: &[u8; 32]) -> String {
    format!("ed25519 {key_id} {}", STANDARD_NO_PAD.encode(seed))
}

/// A new signing key with a key id shaped like Synapse's own: `a_` and four alphanumerics.
pub fn new_signing_key() -> Result<String, RandomError> {
    let key_id = format!("a_{}", random_alphanumeric(4)?);
    Ok(signing_key_line(&key_id, &random_bytes::<32>()?))
}

/// The homeserver Secret's data: values already present are kept, missing ones generated.
pub fn complete_homeserver_secrets(
    existing: &BTreeMap<String, Vec<u8>>,
) -> Result<BTreeMap<String, Vec<u8>>, RandomError> {
    let mut data = BTreeMap::new();
    for key in ALL_KEYS {
        let value = match existing.get(key) {
            Some(value) if !value.is_empty() => value.clone(),
            _ if key == SIGNING_KEY => new_signing_key()?.into_bytes(),
            _ => random_alphanumeric(64)?.into_bytes(),
        };
        data.insert(key.to_owned(), value);
    }
    Ok(data)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signing_key_known_answer() {
        let seed: [u8; 32] = std::array::from_fn(|i| u8::try_from(i).unwrap());
        assert_eq!(
            signing_key_line("a_abCD", &seed),
            "ed25519 a_abCD AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8"
        );
    }

    #[test]
    fn new_signing_keys_have_synapse_shape_and_differ() {
        let a = new_signing_key().unwrap();
        assert_ne!(a, new_signing_key().unwrap());
        let parts: Vec<&str> = a.split(' ').collect();
        assert_eq!(parts.len(), 3, "{a}");
        assert_eq!(parts[0], "ed25519");
        assert!(parts[1].starts_with("a_") && parts[1].len() == 6, "{a}");
        assert_eq!(STANDARD_NO_PAD.decode(parts[2]).unwrap().len(), 32);
    }

    #[test]
    fn existing_values_are_kept_and_missing_ones_generated() {
        let mut existing = BTreeMap::new();
        existing.insert(SIGNING_KEY.to_owned(), b"ed25519 a_keep xyz".to_vec());
        existing.insert(FORM_SECRET.to_owned(), Vec::new());
        let data = complete_homeserver_secrets(&existing).unwrap();
        assert_eq!(data[SIGNING_KEY], b"ed25519 a_keep xyz");
        assert_eq!(data.len(), ALL_KEYS.len());
        assert!(ALL_KEYS.iter().all(|k| data[*k].len() >= 18));
        assert_eq!(complete_homeserver_secrets(&data).unwrap(), data);
    }
}
