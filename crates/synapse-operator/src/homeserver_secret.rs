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

/// The key of the homeserver Secret recording the last `spec.signingKeyRotation` carried out.
pub const ROTATION: &str = "signing_key_rotation";
/// The key holding the retired keys, as Synapse's `old_signing_keys` (JSON).
pub const OLD_SIGNING_KEYS: &str = "old_signing_keys";

/// `ed25519:<id>` and the unpadded base64 verify (public) key of a signing key line.
pub fn verify_key(line: &str) -> Option<(String, String)> {
    let mut parts = line.split_whitespace();
    let (algorithm, id, seed) = (parts.next()?, parts.next()?, parts.next()?);
    let seed = STANDARD_NO_PAD.decode(seed).ok()?;
    let pair = ring::signature::Ed25519KeyPair::from_seed_unchecked(&seed).ok()?;
    let public = ring::signature::KeyPair::public_key(&pair);
    Some((
        format!("{algorithm}:{id}"),
        STANDARD_NO_PAD.encode(public.as_ref()),
    ))
}

/// The homeserver Secret's data after `spec.signingKeyRotation` asked for `rotation`: `data`
/// (the generated secrets completed from `current`, the Secret as it is) with the rotation's own
/// keys carried over from `current`, and, once per new value, a new signing key, the old one's
/// verify key moving to `old_signing_keys` as expired at `now_ms`. A key generated just now (a
/// new Synapse: `current` had none) is not rotated, the value only recorded.
pub fn rotate(
    current: &BTreeMap<String, Vec<u8>>,
    mut data: BTreeMap<String, Vec<u8>>,
    rotation: Option<&str>,
    now_ms: i64,
) -> Result<BTreeMap<String, Vec<u8>>, RandomError> {
    for key in [ROTATION, OLD_SIGNING_KEYS] {
        if let Some(value) = current.get(key) {
            data.insert(key.to_owned(), value.clone());
        }
    }
    let Some(rotation) = rotation else {
        return Ok(data);
    };
    let recorded = current
        .get(ROTATION)
        .map(|r| String::from_utf8_lossy(r).into_owned());
    if recorded.as_deref() == Some(rotation) {
        return Ok(data);
    }
    if current.get(SIGNING_KEY).is_some_and(|k| !k.is_empty()) {
        let retired = String::from_utf8_lossy(&data[SIGNING_KEY]).into_owned();
        let mut old: serde_json::Map<String, serde_json::Value> = data
            .get(OLD_SIGNING_KEYS)
            .and_then(|o| serde_json::from_slice(o).ok())
            .unwrap_or_default();
        if let Some((id, key)) = verify_key(&retired) {
            old.insert(id, serde_json::json!({"key": key, "expired_ts": now_ms}));
        }
        data.insert(
            OLD_SIGNING_KEYS.into(),
            serde_json::to_vec(&old).expect("JSON"),
        );
        data.insert(SIGNING_KEY.into(), new_signing_key()?.into_bytes());
    }
    data.insert(ROTATION.into(), rotation.as_bytes().to_vec());
    Ok(data)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_new_rotation_value_retires_the_key_once() {
        // As the reconciliation calls it: completed from the Secret as it is.
        let step = |current: &BTreeMap<String, Vec<u8>>, rotation: Option<&str>, now| {
            rotate(
                current,
                complete_homeserver_secrets(current).unwrap(),
                rotation,
                now,
            )
            .unwrap()
        };
        let created = step(&BTreeMap::new(), Some("one"), 1000);
        assert!(
            !created.contains_key(OLD_SIGNING_KEYS),
            "a new Synapse's key is not rotated"
        );
        assert_eq!(created[ROTATION], b"one");
        assert_eq!(step(&created, Some("one"), 1500), created, "steady");
        let second = step(&created, Some("two"), 2000);
        assert_ne!(second[SIGNING_KEY], created[SIGNING_KEY]);
        let old: serde_json::Value = serde_json::from_slice(&second[OLD_SIGNING_KEYS]).unwrap();
        let (id, key) = verify_key(&String::from_utf8_lossy(&created[SIGNING_KEY])).unwrap();
        assert_eq!(
            old[&id],
            serde_json::json!({"key": key, "expired_ts": 2000})
        );
        assert_eq!(step(&second, Some("two"), 3000), second, "once per value");
        assert_eq!(step(&second, None, 3000), second, "never by itself");
        let third = step(&second, Some("three"), 4000);
        let old: serde_json::Value = serde_json::from_slice(&third[OLD_SIGNING_KEYS]).unwrap();
        assert_eq!(old.as_object().unwrap().len(), 2, "every retired key stays");
        // A Synapse created before the field existed rotates at its first value.
        let before = complete_homeserver_secrets(&BTreeMap::new()).unwrap();
        assert_ne!(
            step(&before, Some("first"), 5000)[SIGNING_KEY],
            before[SIGNING_KEY]
        );
    }

    #[test]
    fn verify_keys_are_ed25519_public_keys() {
        // RFC 8032, test 1: the secret key 9d61…7f60 has the public key d75a…511a.
        let seed = hex_bytes("9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60");
        let line = signing_key_line("a_test", &seed.try_into().unwrap());
        let (id, key) = verify_key(&line).unwrap();
        assert_eq!(id, "ed25519:a_test");
        let public = hex_bytes("d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a");
        assert_eq!(STANDARD_NO_PAD.decode(key).unwrap(), public);
    }

    fn hex_bytes(hex: &str) -> Vec<u8> {
        (0..hex.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).unwrap())
            .collect()
    }

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
