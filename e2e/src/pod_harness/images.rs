//! Which pinned PyPI program stands in for which container image.
//!
//! No image can be pulled here, so a pod's `image` is mapped to a virtualenv made by
//! `hack/python-env` from `hack/python-requirements/<venv>.txt`; that venv's `bin` goes first on
//! `PATH`, so `python -m synapse.app.homeserver` or `heisenbridge` resolve to the pinned program.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use super::Error;

/// One image repository the harness can stand in for.
struct Entry {
    /// Fully qualified repository (registry included, Docker Hub's `library/` spelled out).
    repository: &'static str,
    /// `hack/python-requirements/<venv>.txt` and the venv named after it.
    venv: &'static str,
}

/// Both images declare no `USER` (Synapse's `/start.py` drops to 991 itself, but only when it is
/// the entrypoint, which a pod's `command` replaces), so their processes run as root unless the
/// pod's securityContext says otherwise.
pub const IMAGE_USER: u32 = 0;
pub const IMAGE_GROUP: u32 = 0;

const TABLE: &[Entry] = &[
    Entry {
        repository: "docker.io/matrixdotorg/synapse",
        venv: "synapse",
    },
    Entry {
        repository: "ghcr.io/element-hq/synapse",
        venv: "synapse",
    },
    Entry {
        repository: "docker.io/hif1/heisenbridge",
        venv: "heisenbridge",
    },
];

/// The local program for one image.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Program {
    /// Venv name (`synapse`, `heisenbridge`).
    pub name: String,
    /// Pinned version, which the image tag must equal.
    pub version: String,
    /// The virtualenv whose `bin` goes first on `PATH`.
    pub venv: PathBuf,
}

/// The pinned programs, read from `hack/python-requirements`.
#[derive(Debug, Clone)]
pub struct Programs {
    by_venv: BTreeMap<String, Program>,
}

/// Where `hack/python-env` puts the venvs (the same variable and default as the script).
pub fn venv_root() -> PathBuf {
    std::env::var_os("SYNAPSE_OPERATORS_VENV_ROOT")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/var/cache/synapse-operators/venv"))
}

impl Programs {
    /// Reads every `<venv>.txt` the table names from `requirements_dir`, with venvs under
    /// `venv_root`. Whether a venv is installed is checked when an image resolves to it.
    pub fn load(requirements_dir: &Path, venv_root: &Path) -> Result<Self, Error> {
        let mut by_venv = BTreeMap::new();
        for entry in TABLE {
            if by_venv.contains_key(entry.venv) {
                continue;
            }
            let file = requirements_dir.join(format!("{}.txt", entry.venv));
            let text = std::fs::read_to_string(&file).map_err(|source| Error::Io {
                what: format!("read {}", file.display()),
                source,
            })?;
            let version = pinned_version(&text).ok_or_else(|| {
                Error::Setup(format!(
                    "{}: the first requirement line must be an exact pin (name==version)",
                    file.display()
                ))
            })?;
            let venv = venv_root.join(format!("{}-{version}", entry.venv));
            by_venv.insert(
                entry.venv.to_string(),
                Program {
                    name: entry.venv.to_string(),
                    version,
                    venv,
                },
            );
        }
        Ok(Self { by_venv })
    }

    /// Programs from explicit values (for tests of the pure planning).
    pub fn from_programs(programs: impl IntoIterator<Item = Program>) -> Self {
        Self {
            by_venv: programs.into_iter().map(|p| (p.name.clone(), p)).collect(),
        }
    }

    /// The program standing in for `image`. The tag must equal the pinned version (a leading `v`
    /// allowed), so a test never runs another version than the one the Deployment names.
    pub fn resolve(&self, image: &str) -> Result<&Program, Error> {
        let (repository, tag) = parse_image(image)?;
        let entry = TABLE
            .iter()
            .find(|e| e.repository == repository)
            .ok_or_else(|| {
                let known: Vec<_> = TABLE.iter().map(|e| e.repository).collect();
                Error::Spec(format!(
                    "image {image:?} has no local stand-in (known repositories: {})",
                    known.join(", ")
                ))
            })?;
        let program = self.by_venv.get(entry.venv).ok_or_else(|| {
            Error::Setup(format!(
                "no pinned program {:?} for image {image:?}",
                entry.venv
            ))
        })?;
        match tag {
            Some(tag) if tag.strip_prefix('v').unwrap_or(&tag) == program.version => Ok(program),
            _ => Err(Error::Spec(format!(
                "image {image:?}: its tag must be the pinned version {} (or v{}): the harness runs \
                 exactly that version (hack/python-requirements/{}.txt)",
                program.version, program.version, program.name
            ))),
        }
    }
}

/// Checks that `program`'s venv was completely installed from the current requirements file.
pub fn check_installed(program: &Program, requirements_dir: &Path) -> Result<(), Error> {
    let file = requirements_dir.join(format!("{}.txt", program.name));
    let wanted = std::fs::read(&file).map_err(|source| Error::Io {
        what: format!("read {}", file.display()),
        source,
    })?;
    // hack/python-env copies the requirements into the venv as its last step.
    let installed = std::fs::read(program.venv.join(".requirements.txt")).ok();
    if installed.as_deref() != Some(wanted.as_slice()) || !program.venv.join("bin/python").exists()
    {
        return Err(Error::Setup(format!(
            "venv {} is missing or out of date: run hack/python-env",
            program.venv.display()
        )));
    }
    Ok(())
}

/// `name==version` on the first requirement line.
fn pinned_version(requirements: &str) -> Option<String> {
    let line = requirements
        .lines()
        .map(str::trim)
        .find(|l| !l.is_empty() && !l.starts_with('#'))?;
    let (_, version) = line.split_once("==")?;
    let version = version.trim();
    (!version.is_empty()).then(|| version.to_string())
}

/// Splits an image reference into its fully qualified repository and tag, the way container
/// runtimes normalise it (`matrixdotorg/synapse` is `docker.io/matrixdotorg/synapse`).
fn parse_image(image: &str) -> Result<(String, Option<String>), Error> {
    if image.contains('@') {
        return Err(Error::Spec(format!(
            "image {image:?}: digest references are not supported (the pinned version is checked \
             against the tag)"
        )));
    }
    let (name, tag) = match image.rsplit_once(':') {
        Some((name, tag)) if !tag.contains('/') => (name, Some(tag.to_string())),
        _ => (image, None),
    };
    let first = name.split('/').next().unwrap_or_default();
    let has_registry =
        name.contains('/') && (first.contains('.') || first.contains(':') || first == "localhost");
    let repository = if has_registry {
        name.to_string()
    } else if name.contains('/') {
        format!("docker.io/{name}")
    } else {
        format!("docker.io/library/{name}")
    };
    Ok((repository, tag))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn programs() -> Programs {
        Programs::from_programs([Program {
            name: "synapse".into(),
            version: "1.163.2".into(),
            venv: "/venv/synapse-1.163.2".into(),
        }])
    }

    #[test]
    fn image_references_normalise_like_a_container_runtime() {
        let cases = [
            (
                "matrixdotorg/synapse:v1",
                "docker.io/matrixdotorg/synapse",
                Some("v1"),
            ),
            (
                "docker.io/matrixdotorg/synapse",
                "docker.io/matrixdotorg/synapse",
                None,
            ),
            (
                "ghcr.io/element-hq/synapse:1.2",
                "ghcr.io/element-hq/synapse",
                Some("1.2"),
            ),
            ("localhost:5000/x/y:t", "localhost:5000/x/y", Some("t")),
            ("busybox", "docker.io/library/busybox", None),
        ];
        for (image, repo, tag) in cases {
            let (r, t) = parse_image(image).unwrap();
            assert_eq!((r.as_str(), t.as_deref()), (repo, tag), "{image}");
        }
    }

    #[test]
    fn tag_must_equal_the_pinned_version() {
        let p = programs();
        assert_eq!(
            p.resolve("matrixdotorg/synapse:v1.163.2").unwrap().name,
            "synapse"
        );
        assert!(p.resolve("ghcr.io/element-hq/synapse:1.163.2").is_ok());
        for bad in [
            "matrixdotorg/synapse:latest",
            "matrixdotorg/synapse",
            "matrixdotorg/synapse@sha256:00",
        ] {
            let err = p.resolve(bad).unwrap_err().to_string();
            assert!(err.contains(bad.split('@').next().unwrap()), "{err}");
        }
        let err = p.resolve("nginx:1.27").unwrap_err().to_string();
        assert!(err.contains("no local stand-in"), "{err}");
    }

    #[test]
    fn first_requirement_line_is_the_pin() {
        assert_eq!(
            pinned_version("# c\n\nmatrix-synapse==1.163.2\nattrs==1\n").as_deref(),
            Some("1.163.2")
        );
        assert_eq!(pinned_version("# only comments\n"), None);
        assert_eq!(pinned_version("matrix-synapse>=1\n"), None);
    }
}
