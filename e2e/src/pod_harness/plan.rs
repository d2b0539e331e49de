//! Pure planning: from a Pod and the objects it references to what the harness runs and mounts.
//! No I/O here, so every rule the kubelet would apply is unit-testable on a fixture Pod.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::time::Duration;

use k8s_openapi::api::core::v1::{
    ConfigMap, ConfigMapEnvSource, Container, DownwardAPIVolumeFile, EnvVar, KeyToPath,
    PersistentVolumeClaim, Pod, PodSpec, Secret, SecretEnvSource, Volume,
};

use super::Error;
use super::images::{IMAGE_GROUP, IMAGE_USER, Program, Programs};

/// The kubelet's default mode for files of configMap, secret, projected and downwardAPI volumes.
const DEFAULT_FILE_MODE: u32 = 0o644;
/// TokenRequest default lifetime of a projected service account token.
const DEFAULT_TOKEN_SECONDS: i64 = 3600;
/// The capabilities containerd and CRI-O give a container that asks for nothing else.
const DEFAULT_CAPABILITIES: &[&str] = &[
    "audit_write",
    "chown",
    "dac_override",
    "fowner",
    "fsetid",
    "kill",
    "mknod",
    "net_bind_service",
    "net_raw",
    "setfcap",
    "setgid",
    "setpcap",
    "setuid",
    "sys_chroot",
];
/// The address a pod's own IP fields resolve to: its network namespace has only loopback.
const POD_IP: &str = "127.0.0.1";

/// A projected service account token the pod needs, as a TokenRequest would be made for it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct TokenKey {
    pub service_account: String,
    pub audience: Option<String>,
    pub expiration_seconds: i64,
}

/// The objects a pod's volumes and env name, fetched from the API. Absent = not found.
#[derive(Default)]
pub struct Sources {
    pub config_maps: BTreeMap<String, ConfigMap>,
    pub secrets: BTreeMap<String, Secret>,
    pub claims: BTreeMap<String, PersistentVolumeClaim>,
    pub tokens: BTreeMap<TokenKey, String>,
}

/// What [`Sources`] must hold to plan one container.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct References {
    pub config_maps: BTreeSet<String>,
    pub secrets: BTreeSet<String>,
    pub claims: BTreeSet<String>,
    pub tokens: BTreeSet<TokenKey>,
}

/// One file of a configMap/secret/projected/downwardAPI volume. Its data may be a secret, so
/// `Debug` shows only the size.
#[derive(Clone, PartialEq, Eq)]
pub struct FileEntry {
    /// Relative path inside the volume.
    pub path: String,
    pub data: Vec<u8>,
    pub mode: u32,
}

impl fmt::Debug for FileEntry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "FileEntry({:?}, {} bytes, {:o})",
            self.path,
            self.data.len(),
            self.mode
        )
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum VolumeContent {
    /// Files the kubelet would write from API objects; always mounted read-only.
    Files(Vec<FileEntry>),
    /// A fresh directory for this run.
    EmptyDir,
    /// A directory that outlives the pod, one per claim (by uid, as a new claim is a new volume).
    Claim { claim: String, uid: String },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VolumePlan {
    pub name: String,
    pub content: VolumeContent,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MountPlan {
    pub volume: String,
    pub mount_path: String,
    pub sub_path: Option<String>,
    pub read_only: bool,
}

/// The identity the process runs with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserPlan {
    pub uid: u32,
    pub gid: u32,
    /// Supplementary groups: `supplementalGroups` and `fsGroup`, as the kubelet sets them.
    pub groups: Vec<u32>,
    /// Group given to the volumes' files, as the kubelet's `SetVolumeOwnership`.
    pub fs_group: Option<u32>,
    pub no_new_privs: bool,
    /// Capability bounding set, lowercase without `cap_` (setpriv's spelling); `all` for all.
    pub capabilities: Vec<String>,
}

/// Environment variables; `Debug` lists names only, as values may come from Secrets.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Env(pub Vec<(String, String)>);

impl Env {
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    /// Sets `name`, replacing an earlier value in place (later definitions win, as in a pod).
    fn set(&mut self, name: String, value: String) {
        match self.0.iter_mut().find(|(n, _)| *n == name) {
            Some(slot) => slot.1 = value,
            None => self.0.push((name, value)),
        }
    }
}

impl fmt::Debug for Env {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list()
            .entries(self.0.iter().map(|(n, _)| n))
            .finish()
    }
}

/// Everything needed to run one container of a pod.
#[derive(Debug, Clone)]
pub struct RunPlan {
    pub namespace: String,
    pub pod: String,
    pub container: String,
    pub hostname: String,
    pub program: Program,
    pub volumes: Vec<VolumePlan>,
    /// In mount order: shallower paths first, so nested mounts land on top.
    pub mounts: Vec<MountPlan>,
    /// The full process environment (image defaults overridden by the container's env).
    pub env: Env,
    pub argv: Vec<String>,
    pub working_dir: Option<String>,
    pub user: UserPlan,
    pub read_only_root: bool,
    pub grace_period: Duration,
}

fn spec(pod: &Pod) -> Result<&PodSpec, Error> {
    pod.spec
        .as_ref()
        .ok_or_else(|| Error::Spec(format!("pod {} has no spec", pod_name(pod))))
}

fn pod_name(pod: &Pod) -> &str {
    pod.metadata.name.as_deref().unwrap_or("<unnamed>")
}

fn service_account(spec: &PodSpec) -> String {
    spec.service_account_name
        .clone()
        .unwrap_or_else(|| "default".to_string())
}

/// The container to run: the named one, or the only one.
pub fn select_container<'a>(pod: &'a Pod, name: Option<&str>) -> Result<&'a Container, Error> {
    let containers = &spec(pod)?.containers;
    let names = || {
        containers
            .iter()
            .map(|c| c.name.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    };
    match name {
        Some(name) => containers.iter().find(|c| c.name == name).ok_or_else(|| {
            Error::Spec(format!(
                "pod {} has no container {name:?} (it has: {})",
                pod_name(pod),
                names()
            ))
        }),
        None if containers.len() == 1 => Ok(&containers[0]),
        None => Err(Error::Spec(format!(
            "pod {} has {} containers ({}): name one",
            pod_name(pod),
            containers.len(),
            names()
        ))),
    }
}

/// The volumes `container` mounts. Volumes it does not mount are not set up (and not checked).
fn mounted_volumes<'a>(spec: &'a PodSpec, container: &Container) -> Result<Vec<&'a Volume>, Error> {
    let mut wanted = BTreeSet::new();
    for mount in container.volume_mounts.iter().flatten() {
        wanted.insert(mount.name.as_str());
    }
    let volumes: Vec<_> = spec
        .volumes
        .iter()
        .flatten()
        .filter(|v| wanted.contains(v.name.as_str()))
        .collect();
    for name in wanted {
        if !volumes.iter().any(|v| v.name == name) {
            return Err(Error::Spec(format!(
                "container {} mounts volume {name:?}, which the pod does not declare",
                container.name
            )));
        }
    }
    Ok(volumes)
}

/// Lists the objects to fetch before [`plan`] can run.
pub fn references(pod: &Pod, container: &Container) -> Result<References, Error> {
    let spec = spec(pod)?;
    let mut refs = References::default();
    for volume in mounted_volumes(spec, container)? {
        if let Some(cm) = &volume.config_map {
            refs.config_maps.insert(cm.name.clone());
        }
        if let Some(secret) = &volume.secret {
            refs.secrets.extend(secret.secret_name.clone());
        }
        if let Some(claim) = &volume.persistent_volume_claim {
            refs.claims.insert(claim.claim_name.clone());
        }
        for source in volume
            .projected
            .iter()
            .flat_map(|p| p.sources.iter().flatten())
        {
            if let Some(cm) = &source.config_map {
                refs.config_maps.insert(cm.name.clone());
            }
            if let Some(secret) = &source.secret {
                refs.secrets.insert(secret.name.clone());
            }
            if let Some(token) = &source.service_account_token {
                refs.tokens.insert(TokenKey {
                    service_account: service_account(spec),
                    audience: token.audience.clone(),
                    expiration_seconds: token.expiration_seconds.unwrap_or(DEFAULT_TOKEN_SECONDS),
                });
            }
        }
    }
    for from in container.env_from.iter().flatten() {
        if let Some(cm) = &from.config_map_ref {
            refs.config_maps.insert(cm.name.clone());
        }
        if let Some(secret) = &from.secret_ref {
            refs.secrets.insert(secret.name.clone());
        }
    }
    for var in container.env.iter().flatten() {
        if let Some(from) = &var.value_from {
            if let Some(key) = &from.config_map_key_ref {
                refs.config_maps.insert(key.name.clone());
            }
            if let Some(key) = &from.secret_key_ref {
                refs.secrets.insert(key.name.clone());
            }
        }
    }
    Ok(refs)
}

/// Plans the run of `container` (or the pod's only container).
pub fn plan(
    pod: &Pod,
    container: Option<&str>,
    sources: &Sources,
    programs: &Programs,
) -> Result<RunPlan, Error> {
    let spec = spec(pod)?;
    let container = select_container(pod, container)?;
    let namespace = pod.metadata.namespace.clone().unwrap_or_default();
    let pod_name = pod_name(pod).to_string();
    let ctx = |msg: String| Error::Spec(format!("pod {namespace}/{pod_name}: {msg}"));

    let image = container
        .image
        .as_deref()
        .ok_or_else(|| ctx(format!("container {} has no image", container.name)))?;
    let program = programs.resolve(image)?.clone();

    let user = plan_user(spec, container).map_err(ctx)?;
    let container_env = plan_env(pod, container, sources).map_err(ctx)?;

    let command = container.command.clone().unwrap_or_default();
    if command.is_empty() {
        return Err(ctx(format!(
            "container {} has no command: the image's entrypoint is not available to the \
             harness, so the pod must spell out its command",
            container.name
        )));
    }
    let argv = command
        .iter()
        .chain(container.args.iter().flatten())
        .map(|a| expand(a, &container_env))
        .collect();

    let mut volumes = Vec::new();
    for volume in mounted_volumes(spec, container)? {
        volumes.push(plan_volume(pod, spec, volume, sources).map_err(ctx)?);
    }
    let mut mounts = Vec::new();
    for mount in container.volume_mounts.iter().flatten() {
        let volume = volumes
            .iter()
            .find(|v| v.name == mount.name)
            .expect("mounted_volumes returned every mounted volume");
        let sub_path = match (&mount.sub_path, &mount.sub_path_expr) {
            (Some(p), _) if !p.is_empty() => Some(p.clone()),
            (_, Some(e)) if !e.is_empty() => Some(expand(e, &container_env)),
            _ => None,
        };
        if !mount.mount_path.starts_with('/') {
            return Err(ctx(format!(
                "mountPath {:?} is not absolute",
                mount.mount_path
            )));
        }
        if let Some(sub) = &sub_path {
            check_relative(sub).map_err(|m| ctx(format!("subPath {sub:?}: {m}")))?;
        }
        let claim_read_only = spec
            .volumes
            .iter()
            .flatten()
            .find(|v| v.name == mount.name)
            .and_then(|v| v.persistent_volume_claim.as_ref())
            .and_then(|c| c.read_only)
            .unwrap_or(false);
        mounts.push(MountPlan {
            volume: mount.name.clone(),
            mount_path: normalize_abs(&mount.mount_path),
            sub_path,
            // API-data volumes are always read-only, as in the kubelet since 1.9.
            read_only: mount.read_only.unwrap_or(false)
                || claim_read_only
                || matches!(volume.content, VolumeContent::Files(_)),
        });
    }
    mounts.sort_by_key(|m| m.mount_path.split('/').filter(|c| !c.is_empty()).count());

    let hostname = spec.hostname.clone().unwrap_or_else(|| pod_name.clone());
    let mut env = Env::default();
    // The program's tree plays the image's /usr/local/bin (or /usr/bin): first on PATH, even when
    // the pod sets PATH; its own libraries likewise on LD_LIBRARY_PATH.
    let bin_path = join_paths(&program.bin_dirs());
    let library_path = join_paths(program.library_dirs());
    env.set(
        "PATH".into(),
        format!("{bin_path}:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"),
    );
    if !library_path.is_empty() {
        env.set("LD_LIBRARY_PATH".into(), library_path.clone());
    }
    env.set(
        "HOME".into(),
        if user.uid == 0 { "/root" } else { "/" }.into(),
    );
    env.set("HOSTNAME".into(), hostname.clone());
    env.set("LANG".into(), "C.UTF-8".into());
    for (name, value) in container_env.0 {
        let value = match name.as_str() {
            "PATH" => format!("{bin_path}:{value}"),
            "LD_LIBRARY_PATH" if !library_path.is_empty() => format!("{library_path}:{value}"),
            _ => value,
        };
        env.set(name, value);
    }

    Ok(RunPlan {
        namespace,
        pod: pod_name,
        container: container.name.clone(),
        hostname,
        program,
        volumes,
        mounts,
        env,
        argv,
        working_dir: container.working_dir.clone().filter(|d| !d.is_empty()),
        read_only_root: container
            .security_context
            .as_ref()
            .and_then(|s| s.read_only_root_filesystem)
            .unwrap_or(false),
        user,
        grace_period: Duration::from_secs(
            spec.termination_grace_period_seconds
                .unwrap_or(30)
                .max(0)
                .unsigned_abs(),
        ),
    })
}

/// `a:b:c`, as `PATH` lists directories.
fn join_paths(dirs: &[std::path::PathBuf]) -> String {
    dirs.iter()
        .map(|d| d.display().to_string())
        .collect::<Vec<_>>()
        .join(":")
}

fn to_id(value: i64, what: &str) -> Result<u32, String> {
    u32::try_from(value).map_err(|_| format!("{what} {value} is not a valid id"))
}

fn plan_user(spec: &PodSpec, container: &Container) -> Result<UserPlan, String> {
    let psc = spec.security_context.as_ref();
    let csc = container.security_context.as_ref();
    let uid = csc
        .and_then(|s| s.run_as_user)
        .or(psc.and_then(|s| s.run_as_user))
        .map(|v| to_id(v, "runAsUser"))
        .transpose()?
        .unwrap_or(IMAGE_USER);
    let gid = csc
        .and_then(|s| s.run_as_group)
        .or(psc.and_then(|s| s.run_as_group))
        .map(|v| to_id(v, "runAsGroup"))
        .transpose()?
        .unwrap_or(IMAGE_GROUP);
    let non_root = csc
        .and_then(|s| s.run_as_non_root)
        .or(psc.and_then(|s| s.run_as_non_root))
        .unwrap_or(false);
    if non_root && uid == 0 {
        return Err(format!(
            "container {} has runAsNonRoot but would run as root (the kubelet refuses to start it)",
            container.name
        ));
    }
    if csc.and_then(|s| s.privileged).unwrap_or(false) {
        return Err(format!(
            "container {} is privileged, which the harness does not emulate",
            container.name
        ));
    }
    let fs_group = psc
        .and_then(|s| s.fs_group)
        .map(|v| to_id(v, "fsGroup"))
        .transpose()?;
    let mut groups = Vec::new();
    for g in psc
        .and_then(|s| s.supplemental_groups.as_ref())
        .into_iter()
        .flatten()
    {
        groups.push(to_id(*g, "supplementalGroups")?);
    }
    groups.extend(fs_group);
    groups.sort_unstable();
    groups.dedup();

    let mut capabilities: Vec<String> =
        DEFAULT_CAPABILITIES.iter().map(|c| c.to_string()).collect();
    let cap_name = |c: &String| {
        let c = c.to_ascii_lowercase();
        c.strip_prefix("cap_").map(str::to_string).unwrap_or(c)
    };
    if let Some(caps) = csc.and_then(|s| s.capabilities.as_ref()) {
        for drop in caps.drop.iter().flatten().map(cap_name) {
            if drop == "all" {
                capabilities.clear();
            } else {
                capabilities.retain(|c| *c != drop);
            }
        }
        for add in caps.add.iter().flatten().map(cap_name) {
            if !capabilities.contains(&add) {
                capabilities.push(add);
            }
        }
    }
    if capabilities.iter().any(|c| c == "all") {
        capabilities = vec!["all".to_string()];
    }
    capabilities.sort();

    Ok(UserPlan {
        uid,
        gid,
        groups,
        fs_group,
        no_new_privs: csc.and_then(|s| s.allow_privilege_escalation) == Some(false),
        capabilities,
    })
}

fn check_relative(path: &str) -> Result<(), String> {
    if path.starts_with('/') {
        return Err("must be relative".into());
    }
    if path.split('/').any(|c| c == "..") {
        return Err("must not contain '..'".into());
    }
    Ok(())
}

/// `/a//b/` → `/a/b`.
fn normalize_abs(path: &str) -> String {
    let parts: Vec<_> = path
        .split('/')
        .filter(|c| !c.is_empty() && *c != ".")
        .collect();
    format!("/{}", parts.join("/"))
}

/// Expands `$(VAR)` like Kubernetes does in command, args, env values and subPathExpr: `$$` is a
/// literal `$`, and a reference to an undefined variable is left as written.
pub fn expand(input: &str, env: &Env) -> String {
    let bytes = input.as_bytes();
    let mut out: Vec<u8> = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] != b'$' || i + 1 == bytes.len() {
            out.push(bytes[i]);
            i += 1;
            continue;
        }
        match bytes[i + 1] {
            b'$' => {
                out.push(b'$');
                i += 2;
            }
            b'(' => match bytes[i + 2..].iter().position(|&b| b == b')') {
                Some(len) => {
                    let name = &input[i + 2..i + 2 + len];
                    match env.get(name) {
                        Some(value) => out.extend_from_slice(value.as_bytes()),
                        None => out.extend_from_slice(format!("$({name})").as_bytes()),
                    }
                    i += len + 3;
                }
                None => {
                    out.extend_from_slice(b"$(");
                    i += 2;
                }
            },
            other => {
                out.push(b'$');
                out.push(other);
                i += 2;
            }
        }
    }
    String::from_utf8(out).expect("only whole UTF-8 sequences are copied")
}

fn config_map_data(cm: &ConfigMap) -> BTreeMap<String, Vec<u8>> {
    let mut data: BTreeMap<String, Vec<u8>> = cm
        .binary_data
        .iter()
        .flatten()
        .map(|(k, v)| (k.clone(), v.0.clone()))
        .collect();
    for (k, v) in cm.data.iter().flatten() {
        data.insert(k.clone(), v.clone().into_bytes());
    }
    data
}

fn secret_data(secret: &Secret) -> BTreeMap<String, Vec<u8>> {
    secret
        .data
        .iter()
        .flatten()
        .map(|(k, v)| (k.clone(), v.0.clone()))
        .collect()
}

fn mode_of(mode: Option<i32>, default: u32, what: &str) -> Result<u32, String> {
    match mode {
        None => Ok(default),
        Some(m) if (0..=0o777).contains(&m) => Ok(m.unsigned_abs()),
        Some(m) => Err(format!("{what}: mode {m:o} is outside 0..0777")),
    }
}

/// Files of a configMap or secret source, honouring `items` and `optional` like the kubelet:
/// a missing object or a missing listed key is an error unless `optional`.
fn key_files(
    what: &str,
    data: Option<BTreeMap<String, Vec<u8>>>,
    items: Option<&Vec<KeyToPath>>,
    optional: bool,
    default_mode: u32,
) -> Result<Vec<FileEntry>, String> {
    let Some(data) = data else {
        return if optional {
            Ok(Vec::new())
        } else {
            Err(format!("{what} not found"))
        };
    };
    let mut files = Vec::new();
    match items {
        None => {
            for (key, bytes) in data {
                files.push(FileEntry {
                    path: key,
                    data: bytes,
                    mode: default_mode,
                });
            }
        }
        Some(items) => {
            for item in items {
                let Some(bytes) = data.get(&item.key) else {
                    if optional {
                        continue;
                    }
                    return Err(format!("{what} has no key {:?}", item.key));
                };
                check_relative(&item.path)
                    .map_err(|m| format!("{what} path {:?}: {m}", item.path))?;
                files.push(FileEntry {
                    path: item.path.clone(),
                    data: bytes.clone(),
                    mode: mode_of(item.mode, default_mode, what)?,
                });
            }
        }
    }
    Ok(files)
}

fn downward_files(
    pod: &Pod,
    items: &[DownwardAPIVolumeFile],
    default_mode: u32,
) -> Result<Vec<FileEntry>, String> {
    let mut files = Vec::new();
    for item in items {
        check_relative(&item.path).map_err(|m| format!("downwardAPI path {:?}: {m}", item.path))?;
        let value = match (&item.field_ref, &item.resource_field_ref) {
            (Some(field), _) => field_value(pod, &field.field_path)?,
            (None, Some(r)) => {
                return Err(format!(
                    "downwardAPI resourceFieldRef {:?} is not supported",
                    r.resource
                ));
            }
            (None, None) => return Err(format!("downwardAPI item {:?} has no source", item.path)),
        };
        files.push(FileEntry {
            path: item.path.clone(),
            data: value.into_bytes(),
            mode: mode_of(item.mode, default_mode, "downwardAPI")?,
        });
    }
    Ok(files)
}

/// The value of a downward API field path.
fn field_value(pod: &Pod, path: &str) -> Result<String, String> {
    let meta = &pod.metadata;
    let format_map = |map: Option<&BTreeMap<String, String>>| {
        map.into_iter()
            .flatten()
            .map(|(k, v)| format!("{k}={v:?}"))
            .collect::<Vec<_>>()
            .join("\n")
    };
    let subscript = |prefix: &str| {
        path.strip_prefix(prefix)
            .and_then(|rest| rest.strip_prefix("['"))
            .and_then(|rest| rest.strip_suffix("']"))
    };
    let spec = pod.spec.as_ref();
    Ok(match path {
        "metadata.name" => meta.name.clone().unwrap_or_default(),
        "metadata.namespace" => meta.namespace.clone().unwrap_or_default(),
        "metadata.uid" => meta.uid.clone().unwrap_or_default(),
        "metadata.labels" => format_map(meta.labels.as_ref()),
        "metadata.annotations" => format_map(meta.annotations.as_ref()),
        "spec.nodeName" => spec.and_then(|s| s.node_name.clone()).unwrap_or_default(),
        "spec.serviceAccountName" => spec.map(service_account).unwrap_or_default(),
        "status.podIP" | "status.podIPs" | "status.hostIP" | "status.hostIPs" => POD_IP.into(),
        _ => {
            if let Some(key) = subscript("metadata.labels") {
                meta.labels
                    .as_ref()
                    .and_then(|m| m.get(key))
                    .cloned()
                    .unwrap_or_default()
            } else if let Some(key) = subscript("metadata.annotations") {
                meta.annotations
                    .as_ref()
                    .and_then(|m| m.get(key))
                    .cloned()
                    .unwrap_or_default()
            } else {
                return Err(format!("fieldRef {path:?} is not supported"));
            }
        }
    })
}

/// The name of the kind a volume uses (the one field besides `name` that is set).
fn volume_kind(volume: &Volume) -> String {
    serde_json::to_value(volume)
        .ok()
        .and_then(|v| {
            v.as_object()
                .and_then(|o| o.keys().find(|k| *k != "name").cloned())
        })
        .unwrap_or_else(|| "<none>".to_string())
}

fn plan_volume(
    pod: &Pod,
    spec: &PodSpec,
    volume: &Volume,
    sources: &Sources,
) -> Result<VolumePlan, String> {
    let name = volume.name.clone();
    let files = |files: Vec<FileEntry>| -> Result<VolumePlan, String> {
        let mut seen = BTreeSet::new();
        for f in &files {
            if !seen.insert(normalize_abs(&f.path)) {
                return Err(format!("volume {name:?}: two sources write {:?}", f.path));
            }
        }
        Ok(VolumePlan {
            name: name.clone(),
            content: VolumeContent::Files(files),
        })
    };
    if let Some(cm) = &volume.config_map {
        let mode = mode_of(cm.default_mode, DEFAULT_FILE_MODE, "configMap")?;
        return files(key_files(
            &format!("configmap {:?}", cm.name),
            sources.config_maps.get(&cm.name).map(config_map_data),
            cm.items.as_ref(),
            cm.optional.unwrap_or(false),
            mode,
        )?);
    }
    if let Some(secret) = &volume.secret {
        let secret_name = secret.secret_name.clone().unwrap_or_default();
        let mode = mode_of(secret.default_mode, DEFAULT_FILE_MODE, "secret")?;
        return files(key_files(
            &format!("secret {secret_name:?}"),
            sources.secrets.get(&secret_name).map(secret_data),
            secret.items.as_ref(),
            secret.optional.unwrap_or(false),
            mode,
        )?);
    }
    if let Some(projected) = &volume.projected {
        let mode = mode_of(projected.default_mode, DEFAULT_FILE_MODE, "projected")?;
        let mut all = Vec::new();
        for source in projected.sources.iter().flatten() {
            if let Some(cm) = &source.config_map {
                all.extend(key_files(
                    &format!("configmap {:?}", cm.name),
                    sources.config_maps.get(&cm.name).map(config_map_data),
                    cm.items.as_ref(),
                    cm.optional.unwrap_or(false),
                    mode,
                )?);
            } else if let Some(secret) = &source.secret {
                all.extend(key_files(
                    &format!("secret {:?}", secret.name),
                    sources.secrets.get(&secret.name).map(secret_data),
                    secret.items.as_ref(),
                    secret.optional.unwrap_or(false),
                    mode,
                )?);
            } else if let Some(downward) = &source.downward_api {
                all.extend(downward_files(
                    pod,
                    downward.items.as_deref().unwrap_or_default(),
                    mode,
                )?);
            } else if let Some(token) = &source.service_account_token {
                let key = TokenKey {
                    service_account: service_account(spec),
                    audience: token.audience.clone(),
                    expiration_seconds: token.expiration_seconds.unwrap_or(DEFAULT_TOKEN_SECONDS),
                };
                let value = sources.tokens.get(&key).ok_or_else(|| {
                    format!(
                        "no token requested for service account {:?}",
                        key.service_account
                    )
                })?;
                check_relative(&token.path)
                    .map_err(|m| format!("serviceAccountToken path {:?}: {m}", token.path))?;
                all.push(FileEntry {
                    path: token.path.clone(),
                    data: value.clone().into_bytes(),
                    mode,
                });
            } else {
                let kind = serde_json::to_value(source)
                    .ok()
                    .and_then(|v| v.as_object().and_then(|o| o.keys().next().cloned()))
                    .unwrap_or_default();
                return Err(format!(
                    "volume {name:?}: projected source {kind:?} is not supported"
                ));
            }
        }
        return files(all);
    }
    if let Some(downward) = &volume.downward_api {
        let mode = mode_of(downward.default_mode, DEFAULT_FILE_MODE, "downwardAPI")?;
        return files(downward_files(
            pod,
            downward.items.as_deref().unwrap_or_default(),
            mode,
        )?);
    }
    if volume.empty_dir.is_some() {
        return Ok(VolumePlan {
            name,
            content: VolumeContent::EmptyDir,
        });
    }
    if let Some(claim) = &volume.persistent_volume_claim {
        let pvc = sources.claims.get(&claim.claim_name).ok_or_else(|| {
            format!(
                "volume {name:?}: persistentVolumeClaim {:?} not found",
                claim.claim_name
            )
        })?;
        let uid =
            pvc.metadata.uid.clone().ok_or_else(|| {
                format!("persistentVolumeClaim {:?} has no uid", claim.claim_name)
            })?;
        return Ok(VolumePlan {
            name,
            content: VolumeContent::Claim {
                claim: claim.claim_name.clone(),
                uid,
            },
        });
    }
    Err(format!(
        "volume {name:?} is of kind {:?}, which the harness does not support \
         (configMap, secret, projected, downwardAPI, emptyDir, persistentVolumeClaim)",
        volume_kind(volume)
    ))
}

fn env_from_config_map(
    source: &ConfigMapEnvSource,
    sources: &Sources,
) -> Result<Option<BTreeMap<String, String>>, String> {
    match sources.config_maps.get(&source.name) {
        Some(cm) => Ok(Some(cm.data.clone().unwrap_or_default())),
        None if source.optional == Some(true) => Ok(None),
        None => Err(format!("envFrom: configmap {:?} not found", source.name)),
    }
}

fn env_from_secret(
    source: &SecretEnvSource,
    sources: &Sources,
) -> Result<Option<BTreeMap<String, String>>, String> {
    match sources.secrets.get(&source.name) {
        Some(secret) => secret_data(secret)
            .into_iter()
            .map(|(k, v)| {
                String::from_utf8(v).map(|v| (k.clone(), v)).map_err(|_| {
                    format!("envFrom: secret {:?} key {k:?} is not UTF-8", source.name)
                })
            })
            .collect::<Result<_, _>>()
            .map(Some),
        None if source.optional == Some(true) => Ok(None),
        None => Err(format!("envFrom: secret {:?} not found", source.name)),
    }
}

/// The value of one `env` entry; `None` when an optional reference is missing (left unset).
fn env_value(
    pod: &Pod,
    var: &EnvVar,
    env: &Env,
    sources: &Sources,
) -> Result<Option<String>, String> {
    let Some(from) = &var.value_from else {
        return Ok(Some(expand(var.value.as_deref().unwrap_or_default(), env)));
    };
    if let Some(key) = &from.config_map_key_ref {
        let optional = key.optional == Some(true);
        return match sources.config_maps.get(&key.name).map(config_map_data) {
            Some(data) => match data.get(&key.key) {
                Some(v) => String::from_utf8(v.clone()).map(Some).map_err(|_| {
                    format!(
                        "env {}: configmap {:?} key {:?} is not UTF-8",
                        var.name, key.name, key.key
                    )
                }),
                None if optional => Ok(None),
                None => Err(format!(
                    "env {}: configmap {:?} has no key {:?}",
                    var.name, key.name, key.key
                )),
            },
            None if optional => Ok(None),
            None => Err(format!(
                "env {}: configmap {:?} not found",
                var.name, key.name
            )),
        };
    }
    if let Some(key) = &from.secret_key_ref {
        let optional = key.optional == Some(true);
        return match sources.secrets.get(&key.name).map(secret_data) {
            Some(data) => match data.get(&key.key) {
                Some(v) => String::from_utf8(v.clone()).map(Some).map_err(|_| {
                    format!(
                        "env {}: secret {:?} key {:?} is not UTF-8",
                        var.name, key.name, key.key
                    )
                }),
                None if optional => Ok(None),
                None => Err(format!(
                    "env {}: secret {:?} has no key {:?}",
                    var.name, key.name, key.key
                )),
            },
            None if optional => Ok(None),
            None => Err(format!("env {}: secret {:?} not found", var.name, key.name)),
        };
    }
    if let Some(field) = &from.field_ref {
        return field_value(pod, &field.field_path)
            .map(Some)
            .map_err(|m| format!("env {}: {m}", var.name));
    }
    Err(format!(
        "env {}: this valueFrom (resourceFieldRef or fileKeyRef) is not supported",
        var.name
    ))
}

/// The container's own environment: `envFrom` first, then `env`, later definitions winning.
fn plan_env(pod: &Pod, container: &Container, sources: &Sources) -> Result<Env, String> {
    let mut env = Env::default();
    for from in container.env_from.iter().flatten() {
        let prefix = from.prefix.clone().unwrap_or_default();
        let data = match (&from.config_map_ref, &from.secret_ref) {
            (Some(cm), _) => env_from_config_map(cm, sources)?,
            (None, Some(secret)) => env_from_secret(secret, sources)?,
            (None, None) => return Err("envFrom entry names no configMapRef or secretRef".into()),
        };
        for (key, value) in data.into_iter().flatten() {
            // The kubelet skips keys that cannot be variable names (and records an event).
            if key.is_empty() || key.contains('=') {
                continue;
            }
            env.set(format!("{prefix}{key}"), value);
        }
    }
    for var in container.env.iter().flatten() {
        if let Some(value) = env_value(pod, var, &env, sources)? {
            env.set(var.name.clone(), value);
        }
    }
    Ok(env)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> Env {
        Env(pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect())
    }

    #[test]
    fn expansion_follows_kubernetes_rules() {
        let e = env(&[("A", "x"), ("EMPTY", "")]);
        let cases = [
            ("$(A)", "x"),
            ("pre-$(A)-post", "pre-x-post"),
            ("$$(A)", "$(A)"),
            ("$(MISSING)", "$(MISSING)"),
            ("$(EMPTY)z", "z"),
            ("$(A", "$(A"),
            ("$A", "$A"),
            ("end$", "end$"),
            ("ünï$(A)cödé", "ünïxcödé"),
            ("$()", "$()"),
        ];
        for (input, want) in cases {
            assert_eq!(expand(input, &e), want, "{input}");
        }
    }

    #[test]
    fn normalizes_mount_paths() {
        assert_eq!(normalize_abs("/a//b/./c/"), "/a/b/c");
        assert_eq!(normalize_abs("/"), "/");
    }
}
