//! Which local program stands in for which container image.
//!
//! No image can be pulled here, so a pod's `image` is mapped to a local tree whose programs go
//! first on `PATH`, so the pod's `command` resolves to them:
//! - a virtualenv made by `hack/python-env` from `hack/python-requirements/<venv>.txt` (Synapse,
//!   Heisenbridge): `python -m synapse.app.homeserver` or `heisenbridge` run the pinned program;
//! - a Debian package extracted by `hack/debian-tool` (redis-server, nginx, see [`debian`]): its
//!   `usr/sbin` and `usr/bin`, with its own libraries on `LD_LIBRARY_PATH`.
//!
//! The image tag must equal the version the stand-in has, so a test never runs another version
//! than the one the pod names.

pub mod debian;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

pub use debian::{debian_root, debian_version, upstream_version};

use super::Error;

/// Where the program of an image comes from.
#[derive(Debug, Clone, Copy)]
enum Source {
    /// `hack/python-requirements/<venv>.txt` and the venv named after it.
    Venv(&'static str),
    /// The Debian package `hack/debian-tool` extracts.
    Debian(&'static str),
}

impl Source {
    fn name(self) -> &'static str {
        match self {
            Source::Venv(name) | Source::Debian(name) => name,
        }
    }
}

/// One image repository the harness can stand in for.
struct Entry {
    /// Fully qualified repository (registry included, Docker Hub's `library/` spelled out).
    repository: &'static str,
    source: Source,
}

/// None of these images declares a `USER` (Synapse's `/start.py` and redis's entrypoint drop
/// privileges themselves, but only as the entrypoint, which a pod's `command` replaces; nginx's
/// master stays root), so their processes run as root unless the pod's securityContext says
/// otherwise.
pub const IMAGE_USER: u32 = 0;
pub const IMAGE_GROUP: u32 = 0;

const TABLE: &[Entry] = &[
    Entry {
        repository: "docker.io/matrixdotorg/synapse",
        source: Source::Venv("synapse"),
    },
    Entry {
        repository: "ghcr.io/element-hq/synapse",
        source: Source::Venv("synapse"),
    },
    Entry {
        repository: "docker.io/hif1/heisenbridge",
        source: Source::Venv("heisenbridge"),
    },
    Entry {
        repository: "docker.io/library/redis",
        source: Source::Debian("redis-server"),
    },
    Entry {
        repository: "docker.io/library/nginx",
        source: Source::Debian("nginx"),
    },
];

/// The local tree of one program.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Install {
    /// A virtualenv of `hack/python-env`; its `bin` goes first on `PATH`.
    Venv { dir: PathBuf },
    /// A package tree of `hack/debian-tool`.
    Debian(debian::Tree),
}

/// The local program for one image.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Program {
    /// Venv name (`synapse`, `heisenbridge`) or Debian package (`redis-server`, `nginx`).
    pub name: String,
    /// The version the image tag must equal (a Debian package's upstream version).
    pub version: String,
    pub install: Install,
}

impl Program {
    /// A program of a venv (for tests of the pure planning).
    pub fn venv(name: &str, version: &str, dir: impl Into<PathBuf>) -> Self {
        Self {
            name: name.into(),
            version: version.into(),
            install: Install::Venv { dir: dir.into() },
        }
    }

    /// The directories that go first on `PATH`, in order.
    pub fn bin_dirs(&self) -> Vec<PathBuf> {
        match &self.install {
            Install::Venv { dir } => vec![dir.join("bin")],
            Install::Debian(tree) => vec![tree.dir.join("usr/sbin"), tree.dir.join("usr/bin")],
        }
    }

    /// The directories that go first on `LD_LIBRARY_PATH` (none for a venv).
    pub fn library_dirs(&self) -> &[PathBuf] {
        match &self.install {
            Install::Venv { .. } => &[],
            Install::Debian(tree) => &tree.library_dirs,
        }
    }

    /// Where `command` resolves on the program's own directories (e.g. `redis-cli`, for a test
    /// that runs it from the host), like a `PATH` lookup.
    pub fn find(&self, command: &str) -> Option<PathBuf> {
        self.bin_dirs()
            .into_iter()
            .map(|d| d.join(command))
            .find(|p| p.is_file())
    }
}

/// The local programs, read from `hack/python-requirements` and `hack/debian-tool`'s trees.
#[derive(Debug, Clone)]
pub struct Programs {
    by_name: BTreeMap<String, Program>,
}

/// Where `hack/python-env` puts the venvs (the same variable and default as the script).
pub fn venv_root() -> PathBuf {
    std::env::var_os("SYNAPSE_OPERATORS_VENV_ROOT")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/var/cache/synapse-operators/venv"))
}

impl Programs {
    /// Reads every `<venv>.txt` the table names from `requirements_dir`, with venvs under
    /// `venv_root`, and the Debian trees under `debian_root`. Whether a venv is installed is
    /// checked when an image resolves to it; a Debian tree that is missing is reported then too.
    pub fn load(
        requirements_dir: &Path,
        venv_root: &Path,
        debian_root: &Path,
    ) -> Result<Self, Error> {
        let mut by_name = BTreeMap::new();
        for entry in TABLE {
            let name = entry.source.name();
            if by_name.contains_key(name) {
                continue;
            }
            let program = match entry.source {
                Source::Venv(venv) => load_venv(requirements_dir, venv_root, venv)?,
                Source::Debian(package) => match debian::Tree::read(debian_root, package) {
                    Ok(tree) => Program {
                        name: package.into(),
                        version: upstream_version(&tree.version).into(),
                        install: Install::Debian(tree),
                    },
                    // Tests of Python images only need not provide it.
                    Err(_) => continue,
                },
            };
            by_name.insert(name.to_string(), program);
        }
        Ok(Self { by_name })
    }

    /// Programs from explicit values (for tests of the pure planning).
    pub fn from_programs(programs: impl IntoIterator<Item = Program>) -> Self {
        Self {
            by_name: programs.into_iter().map(|p| (p.name.clone(), p)).collect(),
        }
    }

    /// The program standing in for `image`. The tag must equal the program's version (for a
    /// venv, a leading `v` is allowed, as Synapse's tags have one).
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
        let program = self.by_name.get(entry.source.name()).ok_or_else(|| {
            Error::Setup(match entry.source {
                Source::Venv(venv) => format!("no pinned program {venv:?} for image {image:?}"),
                Source::Debian(package) => format!(
                    "image {image:?} needs Debian's {package}, which is not provided: run \
                     hack/debian-tool {package} (hack/test does)"
                ),
            })
        })?;
        let tag = tag.as_deref();
        let accepted = match &program.install {
            Install::Venv { .. } => tag.map(|t| t.strip_prefix('v').unwrap_or(t)),
            Install::Debian(_) => tag,
        };
        if accepted == Some(program.version.as_str()) {
            return Ok(program);
        }
        Err(Error::Spec(match &program.install {
            Install::Venv { .. } => format!(
                "image {image:?}: its tag must be the pinned version {} (or v{}): the harness runs \
                 exactly that version (hack/python-requirements/{}.txt)",
                program.version, program.version, program.name
            ),
            Install::Debian(tree) => format!(
                "image {image:?}: its tag {} must be {}, the upstream version of Debian's {} {} \
                 that stands in for it (hack/debian-tool {})",
                tag.map_or_else(|| "(none)".to_string(), |t| format!("{t:?}")),
                program.version,
                tree.package,
                tree.version,
                tree.package
            ),
        }))
    }
}

/// The pinned program of `hack/python-requirements/<venv>.txt`.
fn load_venv(requirements_dir: &Path, venv_root: &Path, venv: &str) -> Result<Program, Error> {
    let file = requirements_dir.join(format!("{venv}.txt"));
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
    let dir = venv_root.join(format!("{venv}-{version}"));
    Ok(Program::venv(venv, &version, dir))
}

/// Checks that `program`'s tree is complete: a venv installed from the current requirements
/// file, a Debian tree still at the version it was read with.
pub fn check_installed(program: &Program, requirements_dir: &Path) -> Result<(), Error> {
    let venv = match &program.install {
        Install::Debian(tree) => return tree.check(),
        Install::Venv { dir } => dir,
    };
    let file = requirements_dir.join(format!("{}.txt", program.name));
    let wanted = std::fs::read(&file).map_err(|source| Error::Io {
        what: format!("read {}", file.display()),
        source,
    })?;
    // hack/python-env copies the requirements into the venv as its last step.
    let installed = std::fs::read(venv.join(".requirements.txt")).ok();
    if installed.as_deref() != Some(wanted.as_slice()) || !venv.join("bin/python").exists() {
        return Err(Error::Setup(format!(
            "venv {} is missing or out of date: run hack/python-env",
            venv.display()
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
        Programs::from_programs([
            Program::venv("synapse", "1.163.2", "/venv/synapse-1.163.2"),
            Program {
                name: "redis-server".into(),
                version: "7.0.15".into(),
                install: Install::Debian(debian::Tree {
                    package: "redis-server".into(),
                    dir: "/cache/redis-server-5_7.0.15-1~deb12u10".into(),
                    version: "5:7.0.15-1~deb12u10".into(),
                    library_dirs: vec!["/cache/redis-server-5_7.0.15-1~deb12u10/usr/lib".into()],
                }),
            },
        ])
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
        let err = p.resolve("quay.io/nginx:1.27").unwrap_err().to_string();
        assert!(err.contains("no local stand-in"), "{err}");
    }

    #[test]
    fn debian_images_need_the_upstream_version_as_tag() {
        let p = programs();
        let redis = p.resolve("redis:7.0.15").unwrap();
        assert_eq!(redis.name, "redis-server");
        assert_eq!(
            redis.bin_dirs(),
            [
                Path::new("/cache/redis-server-5_7.0.15-1~deb12u10/usr/sbin"),
                Path::new("/cache/redis-server-5_7.0.15-1~deb12u10/usr/bin"),
            ]
        );
        assert_eq!(
            redis.library_dirs(),
            [Path::new("/cache/redis-server-5_7.0.15-1~deb12u10/usr/lib")]
        );
        assert!(p.resolve("docker.io/library/redis:7.0.15").is_ok());
        for bad in [
            "redis:7.2.4",
            "redis:v7.0.15",
            "redis",
            "redis:7.0.15-alpine",
        ] {
            let err = p.resolve(bad).unwrap_err().to_string();
            assert!(
                err.contains(
                    "7.0.15, the upstream version of Debian's redis-server \
                              5:7.0.15-1~deb12u10"
                ),
                "{err}"
            );
        }
        // Known, but not extracted on this machine.
        let err = p.resolve("nginx:1.22.1").unwrap_err().to_string();
        assert!(err.contains("hack/debian-tool nginx"), "{err}");
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
