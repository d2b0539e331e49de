//! Secret material: tokens and keys straight from the operating system's CSPRNG.

const ALPHANUMERIC: &[u8] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

/// The operating system's random number generator failed.
#[derive(Debug, thiserror::Error)]
#[error("the operating system's random number generator failed: {0}")]
pub struct RandomError(String);

/// `N` random bytes.
pub fn random_bytes<const N: usize>() -> Result<[u8; N], RandomError> {
    let mut buf = [0u8; N];
    getrandom::fill(&mut buf).map_err(|e| RandomError(e.to_string()))?;
    Ok(buf)
}

/// A uniformly random alphanumeric string of `len` characters, the shape of app-service tokens.
pub fn random_alphanumeric(len: usize) -> Result<String, RandomError> {
    let mut out = String::with_capacity(len);
    while out.len() < len {
        for b in random_bytes::<64>()? {
            // Rejection sampling: bytes from 248 (= 4 * 62) up would favour the first characters.
            if b < 248 && out.len() < len {
                out.push(char::from(ALPHANUMERIC[usize::from(b % 62)]));
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn alphanumeric_tokens_have_the_length_and_alphabet_and_differ() {
        let a = random_alphanumeric(64).unwrap();
        assert_eq!(a.len(), 64);
        assert!(a.bytes().all(|b| b.is_ascii_alphanumeric()));
        assert_ne!(a, random_alphanumeric(64).unwrap());
        assert_eq!(random_alphanumeric(0).unwrap(), "");
        assert_eq!(random_alphanumeric(200).unwrap().len(), 200);
    }

    #[test]
    fn every_character_of_the_alphabet_occurs() {
        let sample = random_alphanumeric(20_000).unwrap();
        assert!(ALPHANUMERIC.iter().all(|c| sample.as_bytes().contains(c)));
    }
}
