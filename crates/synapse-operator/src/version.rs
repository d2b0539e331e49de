//! The Synapse version of an image, from its tag, and the downgrade rule: an image older than
//! the version that last ran is refused unless the spec allows it (Synapse cannot read a database
//! schema newer than its own). Pure.

use std::fmt;

/// A Synapse release, `major.minor.patch`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Version(u64, u64, u64);

impl fmt::Display for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}.{}", self.0, self.1, self.2)
    }
}

impl Version {
    /// `1.163.2`, `v1.163.2`, or one with a suffix (`v1.164.0rc1`: its numbers count).
    pub fn parse(text: &str) -> Option<Self> {
        let text = text.strip_prefix('v').unwrap_or(text);
        let mut numbers = text.splitn(3, '.').map(|part| {
            let digits: String = part.chars().take_while(char::is_ascii_digit).collect();
            digits.parse::<u64>().ok()
        });
        Some(Version(
            numbers.next()??,
            numbers.next()??,
            numbers.next()??,
        ))
    }

    /// The version an image's tag names; `None` without a tag (a digest, `latest`).
    pub fn of_image(image: &str) -> Option<Self> {
        let image = image.split('@').next().unwrap_or(image);
        let (_, tag) = image.rsplit_once(':')?;
        // A registry port is no tag: `host:5000/synapse`.
        if tag.contains('/') {
            return None;
        }
        Self::parse(tag)
    }
}

/// An image older than the version that last ran.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error(
    "spec.image {image} is Synapse {requested}, older than the {running} that last ran: Synapse cannot read a database schema newer than its own, so the running Synapse is kept. Use an image of {running} or later, or, after restoring a backup made by {requested}, set spec.allowDowngrade: true"
)]
pub struct Downgrade {
    pub image: String,
    pub requested: Version,
    pub running: Version,
}

/// Refuses `image` when it is older than `last_ran` (`status.synapseVersion`), unless `allowed`.
pub fn check(image: &str, last_ran: Option<&str>, allowed: bool) -> Result<(), Downgrade> {
    let (Some(requested), Some(running)) =
        (Version::of_image(image), last_ran.and_then(Version::parse))
    else {
        return Ok(());
    };
    if requested < running && !allowed {
        return Err(Downgrade {
            image: image.to_owned(),
            requested,
            running,
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_come_from_tags() {
        assert_eq!(
            Version::of_image("matrixdotorg/synapse:v1.163.2"),
            Some(Version(1, 163, 2))
        );
        assert_eq!(
            Version::of_image("ghcr.io/element-hq/synapse:1.164.0rc1"),
            Some(Version(1, 164, 0))
        );
        assert_eq!(
            Version::of_image("reg:5000/synapse:v1.2.3@sha256:ab"),
            Some(Version(1, 2, 3))
        );
        for image in [
            "reg:5000/synapse",
            "matrixdotorg/synapse:latest",
            "synapse@sha256:ab",
            "synapse",
        ] {
            assert_eq!(Version::of_image(image), None, "{image}");
        }
        assert!(Version(1, 99, 0) < Version(1, 163, 2));
    }

    #[test]
    fn only_an_older_image_is_refused_and_only_without_the_override() {
        let older = "matrixdotorg/synapse:v1.160.0";
        let refused = check(older, Some("1.163.2"), false).unwrap_err();
        assert!(
            refused
                .to_string()
                .contains("Synapse 1.160.0, older than the 1.163.2"),
            "{refused}"
        );
        assert_eq!(check(older, Some("1.163.2"), true), Ok(()));
        assert_eq!(
            check("matrixdotorg/synapse:v1.164.0", Some("1.163.2"), false),
            Ok(())
        );
        assert_eq!(check(older, None, false), Ok(()), "nothing ran yet");
        assert_eq!(
            check("synapse:latest", Some("1.163.2"), false),
            Ok(()),
            "no version to compare"
        );
    }
}
