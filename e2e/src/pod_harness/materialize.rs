//! Writes a plan's volumes to the host, as the kubelet would lay them out and own them.

use std::collections::BTreeMap;
use std::fs;
use std::os::unix::fs::{PermissionsExt, lchown};
use std::path::{Path, PathBuf};

use super::Error;
use super::plan::{RunPlan, VolumeContent};
use super::rootfs::ViewMount;

fn io(what: String) -> impl FnOnce(std::io::Error) -> Error {
    move |source| Error::Io { what, source }
}

fn set_mode(path: &Path, mode: u32) -> Result<(), Error> {
    fs::set_permissions(path, fs::Permissions::from_mode(mode))
        .map_err(io(format!("chmod {}", path.display())))
}

fn make_dir(path: &Path, mode: u32) -> Result<(), Error> {
    fs::create_dir_all(path).map_err(io(format!("create {}", path.display())))?;
    set_mode(path, mode)
}

/// The directory that holds a claim's data: it outlives the pod, like a real volume, and a
/// recreated claim (new uid) starts empty.
pub fn claim_dir(claims_root: &Path, namespace: &str, claim: &str, uid: &str) -> PathBuf {
    claims_root.join(namespace).join(format!("{claim}-{uid}"))
}

/// The kubelet's `SetVolumeOwnership`: group `gid` on everything, group read (and write for
/// writable volumes), and setgid directories so new files inherit the group.
fn apply_fs_group(path: &Path, gid: u32, read_only: bool) -> Result<(), Error> {
    let meta = fs::symlink_metadata(path).map_err(io(format!("stat {}", path.display())))?;
    lchown(path, None, Some(gid)).map_err(io(format!("chgrp {}", path.display())))?;
    if meta.file_type().is_symlink() {
        return Ok(());
    }
    let mut mode = meta.permissions().mode() & 0o7777 | if read_only { 0o440 } else { 0o660 };
    if meta.is_dir() {
        mode |= 0o2110;
    }
    set_mode(path, mode)?;
    if meta.is_dir() {
        for entry in fs::read_dir(path).map_err(io(format!("list {}", path.display())))? {
            let entry = entry.map_err(io(format!("list {}", path.display())))?;
            apply_fs_group(&entry.path(), gid, read_only)?;
        }
    }
    Ok(())
}

/// Creates every volume of `plan` (API-data files and empty dirs under `run_dir`, claims under
/// `claims_root`) and returns the bind mounts that put them at their mount paths, with each
/// volume's host directory.
pub fn materialize(
    plan: &RunPlan,
    run_dir: &Path,
    claims_root: &Path,
) -> Result<(Vec<ViewMount>, BTreeMap<String, PathBuf>), Error> {
    let mut dirs = BTreeMap::new();
    for volume in &plan.volumes {
        let dir = match &volume.content {
            VolumeContent::Files(files) => {
                let dir = run_dir.join("volumes").join(&volume.name);
                make_dir(&dir, 0o755)?;
                for file in files {
                    let path = dir.join(&file.path);
                    if let Some(parent) = path.parent() {
                        make_dir(parent, 0o755)?;
                    }
                    fs::write(&path, &file.data)
                        .map_err(io(format!("write {}", path.display())))?;
                    set_mode(&path, file.mode)?;
                }
                dir
            }
            // The kubelet makes emptyDirs world-writable.
            VolumeContent::EmptyDir => {
                let dir = run_dir.join("volumes").join(&volume.name);
                make_dir(&dir, 0o777)?;
                dir
            }
            // Like the root of a freshly formatted volume: root's, not writable by others.
            VolumeContent::Claim { claim, uid } => {
                let dir = claim_dir(claims_root, &plan.namespace, claim, uid);
                if !dir.exists() {
                    make_dir(&dir, 0o755)?;
                }
                dir
            }
        };
        dirs.insert(volume.name.clone(), dir);
    }

    let mut mounts = Vec::new();
    for mount in &plan.mounts {
        let mut source = dirs[&mount.volume].clone();
        if let Some(sub) = &mount.sub_path {
            source.push(sub);
            // The kubelet creates a missing subPath as a directory.
            if !source.exists() {
                make_dir(&source, 0o755)?;
            }
        }
        mounts.push(ViewMount {
            target: mount.mount_path.clone(),
            source_is_dir: source.is_dir(),
            source,
            read_only: mount.read_only,
        });
    }

    if let Some(gid) = plan.user.fs_group {
        for volume in &plan.volumes {
            let read_only = matches!(volume.content, VolumeContent::Files(_));
            apply_fs_group(&dirs[&volume.name], gid, read_only)?;
        }
    }
    Ok((mounts, dirs))
}
