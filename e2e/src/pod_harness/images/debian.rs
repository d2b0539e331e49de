//! Debian packages extracted by `hack/debian-tool` (redis-server, nginx): their trees and versions.
//!
//! A tree is `<root>/<package>-<version>/`, linked as `<root>/<package>`, holding the package and
//! the dependencies this machine lacks (e.g. libjemalloc2 for redis), with `.version` (the
//! package's Debian version, written last) and `.library-path` (its library directories).

use std::path::{Path, PathBuf};

use crate::pod_harness::Error;

/// Where `hack/debian-tool` puts the trees (the same variable and default as the script).
pub fn debian_root() -> PathBuf {
    std::env::var_os("SYNAPSE_OPERATORS_DEBIAN_ROOT")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/var/cache/synapse-operators"))
}

/// The extracted tree of one package, as found when it was read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tree {
    pub package: String,
    /// The versioned directory (not the link, so a later switch cannot change it under a pod).
    pub dir: PathBuf,
    /// Debian's version, e.g. `5:7.0.15-1~deb12u10`.
    pub version: String,
    /// Absolute directories of the tree's shared libraries.
    pub library_dirs: Vec<PathBuf>,
}

fn setup_missing(package: &str, detail: String) -> Error {
    Error::Setup(format!(
        "Debian's {package} is not provided ({detail}): run hack/debian-tool {package} (hack/test \
         does)"
    ))
}

impl Tree {
    /// Reads the tree `hack/debian-tool` links as `root/package`.
    pub fn read(root: &Path, package: &str) -> Result<Self, Error> {
        let link = root.join(package);
        let dir = std::fs::canonicalize(&link)
            .map_err(|e| setup_missing(package, format!("{}: {e}", link.display())))?;
        let version = std::fs::read_to_string(dir.join(".version"))
            .map_err(|e| setup_missing(package, format!("{}/.version: {e}", dir.display())))?
            .trim()
            .to_string();
        // Absent in trees of the former hack/nginx-env, which had no libraries of their own.
        let library_dirs = std::fs::read_to_string(dir.join(".library-path"))
            .unwrap_or_default()
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .map(|l| dir.join(l))
            .collect();
        Ok(Self {
            package: package.to_string(),
            dir,
            version,
            library_dirs,
        })
    }

    /// Fails unless the tree is still there, complete, at the version it was read with.
    pub fn check(&self) -> Result<(), Error> {
        match std::fs::read_to_string(self.dir.join(".version")) {
            Ok(v) if v.trim() == self.version => Ok(()),
            _ => Err(setup_missing(
                &self.package,
                format!("{} is gone or changed", self.dir.display()),
            )),
        }
    }
}

/// The Debian version of `package` as provided by `hack/debian-tool` (e.g. `5:7.0.15-1~deb12u10`
/// for `redis-server`); its [`upstream_version`] is the tag an image standing in must have.
pub fn debian_version(package: &str) -> Result<String, Error> {
    Tree::read(&debian_root(), package).map(|t| t.version)
}

/// The upstream part of a Debian version, which is what image tags carry: no epoch (`5:`), no
/// Debian revision (`-1~deb12u10`), no repack suffix (`+dfsg1`, `+ds`, `+repack`).
pub fn upstream_version(debian: &str) -> &str {
    let no_epoch = debian.split_once(':').map_or(debian, |(_, rest)| rest);
    let upstream = no_epoch.rsplit_once('-').map_or(no_epoch, |(up, _)| up);
    ["+dfsg", "~dfsg", "+ds", "~ds", "+repack", "~repack"]
        .iter()
        .filter_map(|suffix| upstream.find(suffix).map(|i| &upstream[..i]))
        .min_by_key(|s| s.len())
        .unwrap_or(upstream)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn upstream_version_drops_epoch_revision_and_repack() {
        for (debian, upstream) in [
            ("5:7.0.15-1~deb12u10", "7.0.15"),
            ("1.22.1-9+deb12u12", "1.22.1"),
            ("3.6-3", "3.6"),
            ("1:4.13+dfsg1-1+deb12u1", "4.13"),
            ("2.0~rc1+ds-2", "2.0~rc1"),
            // Native packages have no revision; hyphens belong to the upstream part but the last.
            ("3.134", "3.134"),
            ("1.2-3-4", "1.2-3"),
        ] {
            assert_eq!(upstream_version(debian), upstream, "{debian}");
        }
    }

    #[test]
    fn reads_a_tree_and_notices_it_changing() {
        let root = std::env::temp_dir().join(format!("debian-tree-test-{}", std::process::id()));
        let dir = root.join("redis-server-5_7.0.15-1~deb12u10");
        std::fs::create_dir_all(dir.join("usr/lib/x86_64-linux-gnu")).unwrap();
        std::fs::write(dir.join(".version"), "5:7.0.15-1~deb12u10\n").unwrap();
        std::fs::write(dir.join(".library-path"), "usr/lib/x86_64-linux-gnu\n").unwrap();
        std::os::unix::fs::symlink(dir.file_name().unwrap(), root.join("redis-server")).unwrap();

        let tree = Tree::read(&root, "redis-server").unwrap();
        assert_eq!(tree.dir, std::fs::canonicalize(&dir).unwrap());
        assert_eq!(tree.version, "5:7.0.15-1~deb12u10");
        assert_eq!(
            tree.library_dirs,
            [tree.dir.join("usr/lib/x86_64-linux-gnu")]
        );
        tree.check().unwrap();

        std::fs::write(dir.join(".version"), "5:7.0.15-1~deb12u11\n").unwrap();
        let err = tree.check().unwrap_err().to_string();
        assert!(err.contains("hack/debian-tool redis-server"), "{err}");
        let err = Tree::read(&root, "nginx").unwrap_err().to_string();
        assert!(err.contains("hack/debian-tool nginx"), "{err}");
        std::fs::remove_dir_all(&root).unwrap();
    }
}
