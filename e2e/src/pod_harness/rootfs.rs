//! The filesystem a harnessed process sees, built inside its private mount namespace.
//!
//! The view starts as a recursive bind of the host's `/` at a directory of the run, and the
//! process is `chroot`ed into it. A mount point that does not exist on the host (`/data`,
//! `/etc/synapse`) is never created on the host: the existing parent directory is "shadowed" in
//! the view by a tmpfs holding a bind of each of the host's entries, and the mount point is made
//! on that tmpfs. So nothing is ever left on the host, and everything vanishes with the mount
//! namespace when the process exits.

use std::collections::BTreeSet;
use std::io;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use super::Error;

/// What a path is, as far as the view cares.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Entry {
    Dir,
    /// A regular file, socket, device...: bind-mountable over a file.
    File,
    Symlink(PathBuf),
}

/// The host filesystem as the planner reads it (faked in unit tests).
pub trait HostFs {
    /// The kind of `path`, following symlinks; `None` when it does not exist.
    fn stat(&self, path: &Path) -> Option<Entry>;
    /// `path` (which exists) with every symlink resolved.
    fn canonicalize(&self, path: &Path) -> io::Result<PathBuf>;
    /// The entries of a directory, symlinks not followed.
    fn list(&self, dir: &Path) -> io::Result<Vec<(String, Entry)>>;
    /// Permission bits, uid and gid of a directory.
    fn owner(&self, dir: &Path) -> io::Result<(u32, u32, u32)>;
}

/// The real host filesystem.
pub struct RealFs;

impl HostFs for RealFs {
    fn stat(&self, path: &Path) -> Option<Entry> {
        let meta = std::fs::metadata(path).ok()?;
        Some(if meta.is_dir() {
            Entry::Dir
        } else {
            Entry::File
        })
    }

    fn canonicalize(&self, path: &Path) -> io::Result<PathBuf> {
        std::fs::canonicalize(path)
    }

    fn list(&self, dir: &Path) -> io::Result<Vec<(String, Entry)>> {
        let mut out = Vec::new();
        for item in std::fs::read_dir(dir)? {
            let item = item?;
            let kind = item.file_type()?;
            let entry = if kind.is_symlink() {
                Entry::Symlink(std::fs::read_link(item.path())?)
            } else if kind.is_dir() {
                Entry::Dir
            } else {
                Entry::File
            };
            out.push((item.file_name().to_string_lossy().into_owned(), entry));
        }
        out.sort_by(|a, b| a.0.cmp(&b.0));
        Ok(out)
    }

    fn owner(&self, dir: &Path) -> io::Result<(u32, u32, u32)> {
        let meta = std::fs::metadata(dir)?;
        Ok((meta.mode() & 0o7777, meta.uid(), meta.gid()))
    }
}

/// A bind mount into the view.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ViewMount {
    /// Absolute path in the view.
    pub target: String,
    /// Host path to bind there.
    pub source: PathBuf,
    pub source_is_dir: bool,
    pub read_only: bool,
}

/// One step of building the view. Paths are view paths (absolute), relative to the view root.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Op {
    /// Bind the host's whole tree at the view root.
    BindHostRoot,
    /// Cover a host directory with a tmpfs (same mode and owner) to add entries to it.
    Shadow {
        dir: PathBuf,
        mode: u32,
        uid: u32,
        gid: u32,
    },
    /// Re-expose a host directory inside a shadow (recursively, with its submounts).
    ShadowDir(PathBuf),
    /// Re-expose a host file inside a shadow.
    ShadowFile(PathBuf),
    /// Copy a host symlink into a shadow.
    ShadowLink {
        path: PathBuf,
        target: PathBuf,
    },
    MakeDir(PathBuf),
    MakeFile(PathBuf),
    Bind {
        source: PathBuf,
        target: PathBuf,
    },
    RemountReadOnly(PathBuf),
}

/// Where a view path lands: the existing host directory to shadow, if it is missing.
struct Resolved {
    path: PathBuf,
    /// `Some(dir)` when `path` does not exist on the host: `dir` is its deepest existing ancestor.
    missing_under: Option<PathBuf>,
}

/// Resolves `path` through the host's symlinks (the view mirrors the host, and the mount
/// commands run outside the chroot, where an absolute symlink would point at the host).
fn resolve(fs: &dyn HostFs, path: &Path) -> Result<Resolved, Error> {
    let io_err = |source| Error::Io {
        what: format!("resolve {}", path.display()),
        source,
    };
    let mut existing = path;
    let mut rest = Vec::new();
    loop {
        if fs.stat(existing).is_some() {
            break;
        }
        rest.push(existing.file_name().expect("`/` always exists"));
        existing = existing.parent().expect("`/` always exists");
    }
    let base = fs.canonicalize(existing).map_err(io_err)?;
    if !rest.is_empty() && fs.stat(&base) != Some(Entry::Dir) {
        return Err(Error::Spec(format!(
            "{}: {} is not a directory on the host",
            path.display(),
            existing.display()
        )));
    }
    let missing_under = (!rest.is_empty()).then(|| base.clone());
    let mut resolved = base;
    for part in rest.iter().rev() {
        resolved.push(part);
    }
    Ok(Resolved {
        path: resolved,
        missing_under,
    })
}

/// Makes sure `path` exists in the view as a directory (`is_dir`) or file. Inside an earlier
/// mount it is created in that volume; missing on the host it is created on a shadow of its
/// deepest existing host ancestor. Returns the path as the view resolves it.
fn place(
    fs: &dyn HostFs,
    path: &Path,
    is_dir: bool,
    mounted: &[PathBuf],
    shadows: &mut BTreeSet<PathBuf>,
    steps: &mut Vec<Op>,
) -> Result<PathBuf, Error> {
    let make = |p: &Path| {
        if is_dir {
            Op::MakeDir(p.to_path_buf())
        } else {
            Op::MakeFile(p.to_path_buf())
        }
    };
    if mounted.iter().any(|m| path.starts_with(m)) {
        steps.push(make(path));
        return Ok(path.to_path_buf());
    }
    let resolved = resolve(fs, path)?;
    match resolved.missing_under {
        Some(under) => {
            shadows.insert(under);
            steps.push(make(&resolved.path));
        }
        None => {
            let exists_as_dir = fs.stat(&resolved.path) == Some(Entry::Dir);
            if exists_as_dir != is_dir {
                return Err(Error::Spec(format!(
                    "cannot mount a {} over {}, which is a {} on the host",
                    if is_dir { "directory" } else { "file" },
                    path.display(),
                    if exists_as_dir { "directory" } else { "file" },
                )));
            }
        }
    }
    Ok(resolved.path)
}

/// Plans the view: `mounts` (any order), directories the process needs (its working dir), and
/// whether the root filesystem is read-only.
pub fn plan_view(
    fs: &dyn HostFs,
    mounts: &[ViewMount],
    make_dirs: &[String],
    read_only_root: bool,
) -> Result<Vec<Op>, Error> {
    let mut mounts: Vec<&ViewMount> = mounts.iter().collect();
    mounts.sort_by_key(|m| Path::new(&m.target).components().count());

    let mut shadows = BTreeSet::new();
    let mut steps = Vec::new();
    let mut mounted: Vec<PathBuf> = Vec::new();
    let mut read_only = Vec::new();

    for mount in mounts {
        let target = place(
            fs,
            Path::new(&mount.target),
            mount.source_is_dir,
            &mounted,
            &mut shadows,
            &mut steps,
        )?;
        steps.push(Op::Bind {
            source: mount.source.clone(),
            target: target.clone(),
        });
        if mount.read_only {
            read_only.push(target.clone());
        }
        mounted.push(target);
    }
    for dir in make_dirs {
        place(fs, Path::new(dir), true, &mounted, &mut shadows, &mut steps)?;
    }

    let mut ops = vec![Op::BindHostRoot];
    let mut root_mounts = vec![PathBuf::from("/")];
    let mut shadows: Vec<PathBuf> = shadows.into_iter().collect();
    shadows.sort_by_key(|s| s.components().count());
    for dir in shadows {
        let (mode, uid, gid) = fs.owner(&dir).map_err(|source| Error::Io {
            what: format!("stat {}", dir.display()),
            source,
        })?;
        ops.push(Op::Shadow {
            dir: dir.clone(),
            mode,
            uid,
            gid,
        });
        if !root_mounts.contains(&dir) {
            root_mounts.push(dir.clone());
        }
        let entries = fs.list(&dir).map_err(|source| Error::Io {
            what: format!("list {}", dir.display()),
            source,
        })?;
        for (name, entry) in entries {
            let path = dir.join(name);
            match entry {
                Entry::Dir => {
                    root_mounts.push(path.clone());
                    ops.push(Op::ShadowDir(path));
                }
                Entry::File => {
                    root_mounts.push(path.clone());
                    ops.push(Op::ShadowFile(path));
                }
                Entry::Symlink(target) => ops.push(Op::ShadowLink { path, target }),
            }
        }
    }
    ops.extend(steps);
    if read_only_root {
        // A non-recursive remount: host submounts such as /tmp or /dev/shm stay writable. A
        // path a volume is mounted over is skipped: the remount would hit the volume on top.
        ops.extend(
            root_mounts
                .into_iter()
                .filter(|p| !mounted.contains(p))
                .map(Op::RemountReadOnly),
        );
    }
    ops.extend(read_only.into_iter().map(Op::RemountReadOnly));
    Ok(ops)
}

/// Quotes `s` for a POSIX shell.
pub fn shell_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', r"'\''"))
}

fn in_root(path: &Path) -> String {
    let rel = path.strip_prefix("/").unwrap_or(path);
    if rel.as_os_str().is_empty() {
        "\"$R\"".to_string()
    } else {
        format!("\"$R\"/{}", shell_quote(&rel.to_string_lossy()))
    }
}

/// Renders the ops as the `sh` script that runs as root inside the new namespaces, builds the
/// view at `root` and ends by `exec`ing `exec_argv` chrooted there.
pub fn render_script(root: &Path, hostname: &str, ops: &[Op], exec_argv: &[String]) -> String {
    let mut lines = vec![
        "#!/bin/sh".to_string(),
        "# Written by the e2e pod harness: runs as root in the pod's private mount, UTS and".into(),
        "# network namespaces, builds its filesystem view and execs the container's command."
            .into(),
        "set -eu".into(),
        format!("R={}", shell_quote(&root.to_string_lossy())),
    ];
    for op in ops {
        lines.push(match op {
            Op::BindHostRoot => "/usr/bin/mount --rbind / \"$R\"".into(),
            Op::Shadow {
                dir,
                mode,
                uid,
                gid,
            } => format!(
                "/usr/bin/mount -t tmpfs -o mode={mode:04o},uid={uid},gid={gid} pod-harness {}",
                in_root(dir)
            ),
            Op::ShadowDir(p) => format!(
                "/usr/bin/mkdir {0} && /usr/bin/mount --rbind {1} {0}",
                in_root(p),
                shell_quote(&p.to_string_lossy())
            ),
            Op::ShadowFile(p) => format!(
                "/usr/bin/touch {0} && /usr/bin/mount --bind {1} {0}",
                in_root(p),
                shell_quote(&p.to_string_lossy())
            ),
            Op::ShadowLink { path, target } => format!(
                "/usr/bin/ln -s {} {}",
                shell_quote(&target.to_string_lossy()),
                in_root(path)
            ),
            Op::MakeDir(p) => format!("/usr/bin/mkdir -p {}", in_root(p)),
            Op::MakeFile(p) => format!(
                "/usr/bin/mkdir -p {} && /usr/bin/touch {}",
                in_root(p.parent().unwrap_or(Path::new("/"))),
                in_root(p)
            ),
            Op::Bind { source, target } => format!(
                "/usr/bin/mount --bind {} {}",
                shell_quote(&source.to_string_lossy()),
                in_root(target)
            ),
            Op::RemountReadOnly(p) => {
                format!("/usr/bin/mount -o remount,bind,ro {}", in_root(p))
            }
        });
    }
    lines.push(format!("/usr/bin/hostname {}", shell_quote(hostname)));
    let argv: Vec<_> = exec_argv.iter().map(|a| shell_quote(a)).collect();
    lines.push(format!("exec /usr/sbin/chroot \"$R\" {}", argv.join(" ")));
    lines.join("\n") + "\n"
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    /// A host with `/`, `/etc` (hosts file, a `ssl` dir), `/var/run -> /run`, `/bin -> usr/bin`.
    struct FakeFs(BTreeMap<PathBuf, Entry>);

    impl FakeFs {
        fn new() -> Self {
            let mut m = BTreeMap::new();
            for d in ["/", "/etc", "/etc/ssl", "/run", "/usr", "/var", "/tmp"] {
                m.insert(PathBuf::from(d), Entry::Dir);
            }
            m.insert("/etc/hosts".into(), Entry::File);
            m.insert("/var/run".into(), Entry::Symlink("/run".into()));
            m.insert("/bin".into(), Entry::Symlink("usr/bin".into()));
            Self(m)
        }
        fn follow(&self, p: &Path) -> PathBuf {
            let mut out = PathBuf::from("/");
            for c in p.components().skip(1) {
                out.push(c);
                if let Some(Entry::Symlink(t)) = self.0.get(&out) {
                    out = out.parent().unwrap().join(t);
                }
            }
            out
        }
    }

    impl HostFs for FakeFs {
        fn stat(&self, p: &Path) -> Option<Entry> {
            match self.0.get(&self.follow(p))? {
                Entry::Dir => Some(Entry::Dir),
                _ => Some(Entry::File),
            }
        }
        fn canonicalize(&self, p: &Path) -> io::Result<PathBuf> {
            Ok(self.follow(p))
        }
        fn list(&self, dir: &Path) -> io::Result<Vec<(String, Entry)>> {
            Ok(self
                .0
                .iter()
                .filter(|(p, _)| p.parent() == Some(dir))
                .map(|(p, e)| (p.file_name().unwrap().to_string_lossy().into(), e.clone()))
                .collect())
        }
        fn owner(&self, _: &Path) -> io::Result<(u32, u32, u32)> {
            Ok((0o755, 0, 0))
        }
    }

    fn mount(target: &str, source: &str, dir: bool, ro: bool) -> ViewMount {
        ViewMount {
            target: target.into(),
            source: source.into(),
            source_is_dir: dir,
            read_only: ro,
        }
    }

    #[test]
    fn existing_mount_points_need_no_shadow() {
        let ops = plan_view(
            &FakeFs::new(),
            &[
                mount("/etc/hosts", "/h/hosts", false, true),
                mount("/tmp", "/h/tmp", true, false),
            ],
            &[],
            false,
        )
        .unwrap();
        assert_eq!(
            ops,
            [
                Op::BindHostRoot,
                Op::Bind {
                    source: "/h/tmp".into(),
                    target: "/tmp".into()
                },
                Op::Bind {
                    source: "/h/hosts".into(),
                    target: "/etc/hosts".into()
                },
                Op::RemountReadOnly("/etc/hosts".into()),
            ]
        );
    }

    #[test]
    fn missing_mount_points_are_made_on_a_shadow_never_on_the_host() {
        let ops = plan_view(
            &FakeFs::new(),
            &[
                mount("/data/media", "/h/media", true, false),
                mount("/data", "/h/data", true, false),
                mount("/etc/synapse/signing.key", "/h/key", false, true),
                mount("/var/run/x", "/h/x", true, false),
            ],
            &["/work/dir".to_string()],
            false,
        )
        .unwrap();
        let shadows: Vec<_> = ops
            .iter()
            .filter_map(|o| match o {
                Op::Shadow { dir, .. } => Some(dir.to_str().unwrap()),
                _ => None,
            })
            .collect();
        // `/var/run` resolves to `/run`; `/data/media` lives inside the `/data` volume.
        assert_eq!(shadows, ["/", "/etc", "/run"]);
        // Host symlinks in a shadowed directory are copied as they are.
        assert!(ops.contains(&Op::ShadowLink {
            path: "/bin".into(),
            target: "usr/bin".into()
        }));
        assert!(ops.contains(&Op::ShadowFile("/etc/hosts".into())));
        assert!(ops.contains(&Op::ShadowDir("/etc/ssl".into())));
        let made: Vec<_> = ops
            .iter()
            .filter_map(|o| match o {
                Op::MakeDir(p) | Op::MakeFile(p) => Some(p.to_str().unwrap()),
                _ => None,
            })
            .collect();
        assert_eq!(
            made,
            [
                "/data",
                "/data/media",
                "/etc/synapse/signing.key",
                "/run/x",
                "/work/dir"
            ]
        );
        let binds: Vec<_> = ops
            .iter()
            .filter_map(|o| match o {
                Op::Bind { target, .. } => Some(target.to_str().unwrap()),
                _ => None,
            })
            .collect();
        assert_eq!(
            binds,
            ["/data", "/data/media", "/etc/synapse/signing.key", "/run/x"]
        );
    }

    #[test]
    fn kind_mismatch_is_an_error() {
        let err = plan_view(
            &FakeFs::new(),
            &[mount("/etc/hosts", "/h/dir", true, false)],
            &[],
            false,
        )
        .unwrap_err();
        assert!(err.to_string().contains("over /etc/hosts"), "{err}");
    }

    #[test]
    fn read_only_root_leaves_volumes_over_shadowed_entries_writable() {
        let ops = plan_view(
            &FakeFs::new(),
            &[
                mount("/data", "/v/data", true, false),
                mount("/tmp", "/v/tmp", true, false),
            ],
            &[],
            true,
        )
        .unwrap();
        assert!(ops.contains(&Op::RemountReadOnly("/".into())));
        assert!(
            !ops.contains(&Op::RemountReadOnly("/tmp".into())),
            "{ops:?}"
        );
        assert!(ops.contains(&Op::Bind {
            source: "/v/tmp".into(),
            target: "/tmp".into()
        }));
    }

    #[test]
    fn read_only_root_remounts_the_root_and_its_shadows() {
        let ops = plan_view(
            &FakeFs::new(),
            &[mount("/data", "/h/data", true, false)],
            &[],
            true,
        )
        .unwrap();
        let ro: Vec<_> = ops
            .iter()
            .filter_map(|o| match o {
                Op::RemountReadOnly(p) => Some(p.to_str().unwrap()),
                _ => None,
            })
            .collect();
        assert_eq!(ro, ["/", "/etc", "/run", "/tmp", "/usr", "/var"]);
    }

    #[test]
    fn script_quotes_every_path() {
        let script = render_script(
            Path::new("/s/r o't"),
            "pod",
            &[
                Op::BindHostRoot,
                Op::Bind {
                    source: "/h/it's".into(),
                    target: "/data".into(),
                },
            ],
            &["/usr/bin/setpriv".into(), "a b".into()],
        );
        assert!(script.contains("R='/s/r o'\\''t'\n"), "{script}");
        assert!(script.contains("mount --bind '/h/it'\\''s' \"$R\"/'data'\n"));
        assert!(script.ends_with("exec /usr/sbin/chroot \"$R\" '/usr/bin/setpriv' 'a b'\n"));
    }
}
