//! PostgreSQL for the end-to-end tests: the real server `hack/postgres` runs, and CloudNativePG
//! played on the kube API.
//!
//! The server listens on 127.0.0.1:25432, where a role needs its password, and on a Unix socket
//! where the tests are superuser without one ([`Postgres::psql`]). Each test makes its own role
//! and database ([`Postgres::create_database`], unique names: tests run in parallel), dropped
//! with the returned [`Database`]. A pod run by the pod harness reaches the server through a relay
//! in its network namespace: [`Scenario::forward_port`](crate::pod_harness::Scenario::forward_port)
//! from [`CNPG_PORT`] to [`Postgres::host_addr`], with the Service name added to the scenario.
//!
//! No CloudNativePG operator runs. The tests install its `Cluster` CRD ([`install_cnpg_crd`], the
//! release pinned in `hack/versions.env`, fetched by `hack/build-tools`) and do its part
//! themselves: the `<cluster>-app` Secret ([`create_app_secret`]) and the health it reports in the
//! Cluster's status ([`mark_cluster_ready`], [`mark_cluster_not_ready`]).
//!
//! Setup helpers panic with the fix when something is missing, like [`crate::client`]; the calls
//! whose failure a test may expect ([`Postgres::psql`], [`Postgres::psql_as`]) return `Result`.

use std::collections::BTreeMap;
use std::io::Write;
use std::net::{Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::Duration;

use anyhow::{Context, bail};
use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{OwnerReference, Time};
use k8s_openapi::jiff::Timestamp;
use kube::api::{
    ApiResource, DeleteParams, DynamicObject, GroupVersionKind, ObjectMeta, Patch, PatchParams,
    PostParams,
};
use kube::{Api, Client};
use serde_json::{Value, json};

/// The server's TCP port on the host, unless `SO_POSTGRES_PORT` says otherwise.
pub const DEFAULT_PORT: u16 = 25432;
/// The server's Unix socket directory, unless `SO_POSTGRES_SOCKET_DIR` says otherwise.
pub const DEFAULT_SOCKET_DIR: &str = "/var/cache/synapse-operators/postgres/socket";
/// The role the tests act as over the socket.
pub const SUPERUSER: &str = "postgres";
/// The port of CloudNativePG's Services (and of its Secrets' `port`): where a relay in a
/// scenario's namespace listens for the pods.
pub const CNPG_PORT: u16 = 5432;
/// The name of CloudNativePG's Cluster CRD.
pub const CLUSTER_CRD: &str = "clusters.postgresql.cnpg.io";

/// The field manager of everything written here in CloudNativePG's place.
const CNPG_MANAGER: &str = "e2e-cloudnative-pg";
const TIMEOUT: Duration = Duration::from_secs(60);

/// The tests' PostgreSQL server, as `hack/postgres env` describes it.
#[derive(Debug, Clone)]
pub struct Postgres {
    port: u16,
    socket_dir: PathBuf,
    bin_dir: PathBuf,
}

impl Postgres {
    /// The server from `SO_POSTGRES_PORT`, `SO_POSTGRES_SOCKET_DIR` and `SO_POSTGRES_BIN`
    /// (`hack/test` exports them), each defaulting to what `hack/postgres` uses. Panics with the
    /// fix when the server's socket is not there.
    pub fn from_env() -> Self {
        let var = |name: &str| std::env::var_os(name).filter(|v| !v.is_empty());
        let port = var("SO_POSTGRES_PORT").map_or(DEFAULT_PORT, |p| {
            p.to_str()
                .and_then(|p| p.parse().ok())
                .unwrap_or_else(|| panic!("SO_POSTGRES_PORT={p:?} is not a port"))
        });
        let socket_dir = var("SO_POSTGRES_SOCKET_DIR")
            .map_or_else(|| PathBuf::from(DEFAULT_SOCKET_DIR), PathBuf::from);
        let bin_dir = var("SO_POSTGRES_BIN").map_or_else(
            || {
                let major = crate::pinned_version("POSTGRES_MAJOR");
                PathBuf::from(format!("/usr/lib/postgresql/{major}/bin"))
            },
            PathBuf::from,
        );
        let socket = socket_dir.join(format!(".s.PGSQL.{port}"));
        assert!(
            socket.exists(),
            "no PostgreSQL socket at {}: run `hack/postgres up` (hack/test does)",
            socket.display()
        );
        Self {
            port,
            socket_dir,
            bin_dir,
        }
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// Where the server accepts TCP connections on the host: 127.0.0.1 and its port.
    pub fn host_addr(&self) -> SocketAddr {
        SocketAddr::from((Ipv4Addr::LOCALHOST, self.port))
    }

    /// The `psql` of the server's release.
    pub fn psql_path(&self) -> PathBuf {
        self.bin_dir.join("psql")
    }

    /// Runs `sql` (one or more statements, given on standard input) in database `db` as the
    /// superuser over the Unix socket, stopping at the first error. Returns the rows, unaligned
    /// and without headers: one line per row, columns separated by `|`.
    pub fn psql(&self, db: &str, sql: &str) -> anyhow::Result<String> {
        let mut command = Command::new(self.psql_path());
        command.arg("-h").arg(&self.socket_dir).args([
            "-p",
            &self.port.to_string(),
            "-U",
            SUPERUSER,
            "-d",
            db,
        ]);
        run_psql(command, sql).with_context(|| format!("psql as {SUPERUSER} in database {db}"))
    }

    /// Runs `sql` through `psql` logged in over TCP as `login` says, never prompting: a
    /// client's view of the server. `psql` is the command that runs the program, without
    /// arguments: `Command::new(pg.psql_path())` on the host, or
    /// `scenario.netns().command(..)` inside a scenario's namespace, where `host` is 127.0.0.1
    /// (the host's `/etc/hosts` applies there) and `port` a relay's. A refused login is an
    /// error carrying psql's message.
    pub fn psql_as(&self, mut psql: Command, login: &Login, sql: &str) -> anyhow::Result<String> {
        psql.args(["-w", "-h", &login.host, "-p", &login.port.to_string()])
            .args(["-U", &login.user, "-d", &login.dbname])
            .env("PGPASSWORD", &login.password)
            .env("PGCONNECT_TIMEOUT", "10")
            .env_remove("PGPASSFILE");
        run_psql(psql, sql).with_context(|| {
            format!(
                "psql over TCP to {}:{} as {} in database {}",
                login.host, login.port, login.user, login.dbname
            )
        })
    }

    /// Creates a login role and a database it owns (UTF8, `LC_COLLATE` and `LC_CTYPE` =
    /// `collation`, from template0), named `<name>_<suffix>` and `<owner>_<suffix>` with a suffix
    /// unique to this call. `collation` is `C` for what Synapse wants, `C.UTF-8` for a database it
    /// must refuse (`locale -a` lists what exists). Both are dropped with the [`Database`].
    pub fn create_database(
        &self,
        name: &str,
        owner: &str,
        password: &str,
        collation: &str,
    ) -> Database {
        let suffix = unique_suffix();
        let database = Database {
            name: format!("{}_{suffix}", identifier_prefix(name)),
            owner: format!("{}_{suffix}", identifier_prefix(owner)),
            password: password.to_string(),
            collation: collation.to_string(),
            postgres: self.clone(),
            dropped: false,
        };
        // Two runs: CREATE DATABASE cannot share a transaction, and a failure after the role
        // exists leaves `database` to drop it.
        let role = format!(
            "CREATE ROLE {} WITH LOGIN PASSWORD {}",
            ident(&database.owner),
            literal(password)
        );
        let db = format!(
            "CREATE DATABASE {} OWNER {} ENCODING 'UTF8' LC_COLLATE {c} LC_CTYPE {c} \
             TEMPLATE template0",
            ident(&database.name),
            ident(&database.owner),
            c = literal(collation)
        );
        for sql in [role, db] {
            if let Err(e) = self.psql(SUPERUSER, &sql) {
                panic!("create database {}: {e:#}", database.name);
            }
        }
        database
    }

    /// Sets `role`'s password (a rotated password: the old one stops working at once for new
    /// logins).
    pub fn set_password(&self, role: &str, password: &str) {
        let sql = format!("ALTER ROLE {} PASSWORD {}", ident(role), literal(password));
        if let Err(e) = self.psql(SUPERUSER, &sql) {
            panic!("set the password of {role}: {e:#}");
        }
    }

    /// Drops database `name` (cutting its connections) and role `owner`, if they exist.
    pub fn drop_database(&self, name: &str, owner: &str) -> anyhow::Result<()> {
        self.psql(
            SUPERUSER,
            &format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", ident(name)),
        )?;
        self.psql(SUPERUSER, &format!("DROP ROLE IF EXISTS {}", ident(owner)))?;
        Ok(())
    }

    /// Whether role `role` exists.
    pub fn role_exists(&self, role: &str) -> bool {
        let sql = format!(
            "SELECT count(*) FROM pg_roles WHERE rolname = {}",
            literal(role)
        );
        match self.psql(SUPERUSER, &sql) {
            Ok(count) => count == "1",
            Err(e) => panic!("look for role {role}: {e:#}"),
        }
    }

    /// How database `name` was created, or `None` if there is no such database.
    pub fn database_info(&self, name: &str) -> Option<DatabaseInfo> {
        let sql = format!(
            "SELECT pg_encoding_to_char(encoding), datcollate, datctype, \
             pg_get_userbyid(datdba) FROM pg_database WHERE datname = {}",
            literal(name)
        );
        let row = self
            .psql(SUPERUSER, &sql)
            .unwrap_or_else(|e| panic!("read database {name}: {e:#}"));
        let fields: Vec<&str> = row.split('|').collect();
        match fields[..] {
            [] | [""] => None,
            [encoding, collate, ctype, owner] => Some(DatabaseInfo {
                encoding: encoding.to_string(),
                collate: collate.to_string(),
                ctype: ctype.to_string(),
                owner: owner.to_string(),
            }),
            _ => panic!("unexpected pg_database row for {name}: {row:?}"),
        }
    }

    /// Whether `table` (unqualified: on the search path, so `public`; or `schema.table`) exists
    /// in database `db`, e.g. one of the tables Synapse creates on its first start.
    pub fn table_exists(&self, db: &str, table: &str) -> bool {
        let sql = format!("SELECT to_regclass({}) IS NOT NULL", literal(table));
        match self.psql(db, &sql) {
            Ok(out) if out == "t" => true,
            Ok(out) if out == "f" => false,
            Ok(out) => panic!("unexpected answer about table {table} in {db}: {out:?}"),
            Err(e) => panic!("look for table {table} in {db}: {e:#}"),
        }
    }
}

/// How a database was created (`pg_database`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DatabaseInfo {
    pub encoding: String,
    pub collate: String,
    pub ctype: String,
    pub owner: String,
}

/// The credentials and address a client logs in with over TCP.
#[derive(Debug, Clone)]
pub struct Login {
    pub host: String,
    pub port: u16,
    pub user: String,
    pub password: String,
    pub dbname: String,
}

/// A role and the database it owns, made by [`Postgres::create_database`]. Dropped (best
/// effort, connections cut) with this value; [`Database::delete`] reports failures instead.
#[derive(Debug)]
pub struct Database {
    pub name: String,
    pub owner: String,
    /// The password given at creation ([`Postgres::set_password`] does not update it).
    pub password: String,
    pub collation: String,
    postgres: Postgres,
    dropped: bool,
}

impl Database {
    /// The owner's login to this database at `host:port` (e.g. 127.0.0.1 and a relay's port).
    pub fn login(&self, host: &str, port: u16) -> Login {
        Login {
            host: host.to_string(),
            port,
            user: self.owner.clone(),
            password: self.password.clone(),
            dbname: self.name.clone(),
        }
    }

    /// Drops the database and the role now.
    pub fn delete(mut self) -> anyhow::Result<()> {
        self.dropped = true;
        self.postgres.drop_database(&self.name, &self.owner)
    }
}

impl Drop for Database {
    fn drop(&mut self) {
        if !self.dropped
            && let Err(e) = self.postgres.drop_database(&self.name, &self.owner)
        {
            eprintln!("postgres: could not drop database {}: {e:#}", self.name);
        }
    }
}

/// Runs a `psql` command (connection arguments given) on `sql` from standard input.
fn run_psql(mut command: Command, sql: &str) -> anyhow::Result<String> {
    // No ~/.psqlrc, no notices or command tags, rows only, the first error ends the run.
    command
        .args(["-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-f", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = command.spawn().context("start psql")?;
    child
        .stdin
        .take()
        .expect("psql's stdin is piped")
        .write_all(sql.as_bytes())
        .context("write SQL to psql")?;
    let output = child.wait_with_output().context("wait for psql")?;
    if !output.status.success() {
        bail!(
            "{}: {}",
            output.status,
            String::from_utf8_lossy(&output.stderr).trim()
        );
    }
    Ok(String::from_utf8_lossy(&output.stdout)
        .trim_end_matches('\n')
        .to_string())
}

/// `name` quoted as an SQL identifier.
pub fn ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// `value` quoted as an SQL string literal (standard_conforming_strings is on: backslashes are
/// plain characters).
pub fn literal(value: &str) -> String {
    format!("'{}'", value.replace('\'', "''"))
}

/// `prefix` made a lower-case identifier part short enough for a suffix within PostgreSQL's 63
/// bytes.
fn identifier_prefix(prefix: &str) -> String {
    prefix
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_lowercase()
            } else {
                '_'
            }
        })
        .take(32)
        .collect()
}

/// Unique to this process and call, as [`crate::TestNamespace`] names are.
fn unique_suffix() -> String {
    use std::sync::atomic::{AtomicU32, Ordering};
    static COUNTER: AtomicU32 = AtomicU32::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock after 1970")
        .subsec_nanos();
    format!(
        "{:x}{nanos:x}{}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    )
}

// --- CloudNativePG -----------------------------------------------------------------------------

/// The pinned CloudNativePG Cluster CRD: `SO_CNPG_CRD` (`hack/postgres env`), else where
/// `hack/build-tools` keeps it (`<cache>/synapse-operators/tools/cnpg-<CNPG_VERSION>/`).
pub fn cnpg_crd_path() -> PathBuf {
    if let Some(path) = std::env::var_os("SO_CNPG_CRD").filter(|p| !p.is_empty()) {
        return PathBuf::from(path);
    }
    let cache = std::env::var_os("XDG_CACHE_HOME")
        .filter(|p| !p.is_empty())
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))
        .expect("HOME or XDG_CACHE_HOME is set");
    cache
        .join("synapse-operators/tools")
        .join(format!("cnpg-{}", crate::pinned_version("CNPG_VERSION")))
        .join("postgresql.cnpg.io_clusters.yaml")
}

/// CloudNativePG's `Cluster` (`postgresql.cnpg.io/v1`).
pub fn cluster_resource() -> ApiResource {
    ApiResource::from_gvk_with_plural(
        &GroupVersionKind::gvk("postgresql.cnpg.io", "v1", "Cluster"),
        "clusters",
    )
}

/// The `Cluster`s of `namespace`.
pub fn cluster_api(client: &Client, namespace: &str) -> Api<DynamicObject> {
    Api::namespaced_with(client.clone(), namespace, &cluster_resource())
}

/// Installs (server-side apply: harmless when it is there) the pinned Cluster CRD and waits
/// until it is Established.
pub async fn install_cnpg_crd(client: &Client) {
    let path = cnpg_crd_path();
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| {
        panic!(
            "read the CloudNativePG CRD {}: {e}; `hack/build-tools cnpg` fetches it \
             (hack/cluster up does)",
            path.display()
        )
    });
    // Applied as read, not through the typed CRD: nothing of the big schema may be lost.
    let crd: Value = serde_yaml::from_str(&text)
        .unwrap_or_else(|e| panic!("{} is not YAML: {e}", path.display()));
    let api = Api::<CustomResourceDefinition>::all(client.clone());
    api.patch(
        CLUSTER_CRD,
        &PatchParams::apply(CNPG_MANAGER).force(),
        &Patch::Apply(&crd),
    )
    .await
    .unwrap_or_else(|e| panic!("apply the CRD {CLUSTER_CRD}: {e}"));
    crate::wait_for(TIMEOUT, "the CloudNativePG CRD to be Established", || {
        let api = api.clone();
        async move {
            let crd = api.get_opt(CLUSTER_CRD).await.ok().flatten()?;
            let established = crd
                .status?
                .conditions?
                .into_iter()
                .any(|c| c.type_ == "Established" && c.status == "True");
            established.then_some(())
        }
    })
    .await;
}

/// Deletes the Cluster CRD (and with it every Cluster) and waits until it is gone.
pub async fn uninstall_cnpg_crd(client: &Client) {
    let api = Api::<CustomResourceDefinition>::all(client.clone());
    match api.delete(CLUSTER_CRD, &DeleteParams::default()).await {
        Ok(_) => {}
        Err(kube::Error::Api(e)) if e.code == 404 => return,
        Err(e) => panic!("delete the CRD {CLUSTER_CRD}: {e}"),
    }
    crate::wait_for(
        Duration::from_secs(120),
        "the CloudNativePG CRD to be gone",
        || {
            let api = api.clone();
            async move { matches!(api.get_opt(CLUSTER_CRD).await, Ok(None)).then_some(()) }
        },
    )
    .await;
}

/// Writes the Secret CloudNativePG makes for a Cluster's application user, `<cluster>-app`, with
/// `database`'s credentials: type `kubernetes.io/basic-auth`, its labels, and every key it writes
/// (`username`, `user`, `password`, `dbname`, `host` = `<cluster>-rw`, `port` = `5432`,
/// `pgpass`, `uri`, `jdbc-uri`, `fqdn-uri`, `fqdn-jdbc-uri`), formatted as it formats them. Owned
/// by the Cluster, as CloudNativePG's is, when the Cluster exists. Applied: calling it again
/// (after [`Postgres::set_password`], say) updates it.
pub async fn create_app_secret(
    client: &Client,
    namespace: &str,
    cluster: &str,
    database: &Database,
) -> Secret {
    let owner = cluster_api(client, namespace)
        .get_opt(cluster)
        .await
        .unwrap_or_else(|e| panic!("read Cluster {namespace}/{cluster}: {e}"))
        .map(|c| OwnerReference {
            api_version: "postgresql.cnpg.io/v1".into(),
            kind: "Cluster".into(),
            name: cluster.to_string(),
            uid: c.metadata.uid.expect("a stored Cluster has a uid"),
            controller: Some(true),
            block_owner_deletion: None,
        });
    let name = format!("{cluster}-app");
    let labels = [
        ("cnpg.io/cluster", cluster),
        ("cnpg.io/userType", "app"),
        ("cnpg.io/reload", "true"),
        ("app.kubernetes.io/managed-by", "cloudnative-pg"),
    ];
    let secret = Secret {
        metadata: ObjectMeta {
            name: Some(name.clone()),
            namespace: Some(namespace.to_string()),
            labels: Some(
                labels
                    .iter()
                    .map(|(k, v)| (k.to_string(), v.to_string()))
                    .collect(),
            ),
            owner_references: owner.map(|o| vec![o]),
            ..Default::default()
        },
        type_: Some("kubernetes.io/basic-auth".into()),
        data: Some(
            app_secret_data(
                namespace,
                cluster,
                &database.name,
                &database.owner,
                &database.password,
            )
            .into_iter()
            .map(|(k, v)| (k.to_string(), ByteString(v.into_bytes())))
            .collect(),
        ),
        ..Default::default()
    };
    // Typed objects carry no apiVersion/kind of their own; apply needs them.
    let mut body = serde_json::to_value(&secret).expect("a Secret serializes");
    body["apiVersion"] = json!("v1");
    body["kind"] = json!("Secret");
    Api::<Secret>::namespaced(client.clone(), namespace)
        .patch(
            &name,
            &PatchParams::apply(CNPG_MANAGER).force(),
            &Patch::Apply(&body),
        )
        .await
        .unwrap_or_else(|e| panic!("apply Secret {namespace}/{name}: {e}"))
}

/// The keys and values of CloudNativePG's application Secret (its `specs.CreateSecret`, v1.30).
pub fn app_secret_data(
    namespace: &str,
    cluster: &str,
    dbname: &str,
    username: &str,
    password: &str,
) -> BTreeMap<&'static str, String> {
    let host = format!("{cluster}-rw");
    let namespaced = format!("{host}.{namespace}:{CNPG_PORT}");
    let fqdn = format!("{host}.{namespace}.svc.cluster.local:{CNPG_PORT}");
    let uri = |host: &str| {
        format!(
            "postgresql://{}:{}@{host}/{}",
            go_escape(username, Mode::UserInfo),
            go_escape(password, Mode::UserInfo),
            go_escape(dbname, Mode::Path)
        )
    };
    // url.Values.Encode: keys sorted.
    let jdbc = |host: &str| {
        format!(
            "jdbc:postgresql://{host}/{}?password={}&user={}",
            go_escape(dbname, Mode::Path),
            go_escape(password, Mode::Query),
            go_escape(username, Mode::Query)
        )
    };
    BTreeMap::from([
        ("username", username.to_string()),
        ("user", username.to_string()),
        ("password", password.to_string()),
        ("dbname", dbname.to_string()),
        ("host", host.clone()),
        ("port", CNPG_PORT.to_string()),
        (
            "pgpass",
            format!("{host}:{CNPG_PORT}:{dbname}:{username}:{password}\n"),
        ),
        ("uri", uri(&namespaced)),
        ("jdbc-uri", jdbc(&namespaced)),
        ("fqdn-uri", uri(&fqdn)),
        ("fqdn-jdbc-uri", jdbc(&fqdn)),
    ])
}

/// The parts of a URL Go's `net/url` escapes differently.
#[derive(Clone, Copy)]
enum Mode {
    UserInfo,
    Path,
    Query,
}

/// Percent-escapes `s` as Go's `net/url` does for `mode` (CloudNativePG builds its URIs with it).
fn go_escape(s: &str, mode: Mode) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        let keep = b.is_ascii_alphanumeric()
            || b"-_.~".contains(&b)
            || match mode {
                Mode::UserInfo => b"$&+,;=".contains(&b),
                Mode::Path => b"$&+,/:;=@".contains(&b),
                Mode::Query => false,
            };
        if keep {
            out.push(char::from(b));
        } else if b == b' ' && matches!(mode, Mode::Query) {
            out.push('+');
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Reports the Cluster healthy, as the CloudNativePG operator does once its one instance is
/// ready: phase `Cluster in healthy state`, `instances`/`readyInstances` 1, the primary and
/// Service names, and condition `Ready` `True` reason `ClusterIsReady`.
pub async fn mark_cluster_ready(client: &Client, namespace: &str, cluster: &str) {
    let instance = format!("{cluster}-1");
    set_cluster_status(
        client,
        namespace,
        cluster,
        true,
        json!({
            "phase": "Cluster in healthy state",
            "phaseReason": null,
            "instances": 1,
            "readyInstances": 1,
            "instanceNames": [instance],
            "instancesStatus": {"healthy": [instance], "replicating": null},
            "currentPrimary": instance,
            "targetPrimary": instance,
            "latestGeneratedNode": 1,
            "writeService": format!("{cluster}-rw"),
            "readService": format!("{cluster}-r"),
        }),
    )
    .await;
}

/// Reports the Cluster not ready, as the CloudNativePG operator does while its instance is not
/// ready: phase `Waiting for the instances to become active`, `readyInstances` 0, condition
/// `Ready` `False` reason `ClusterIsNotReady`.
pub async fn mark_cluster_not_ready(client: &Client, namespace: &str, cluster: &str) {
    let instance = format!("{cluster}-1");
    set_cluster_status(
        client,
        namespace,
        cluster,
        false,
        json!({
            "phase": "Waiting for the instances to become active",
            "phaseReason": null,
            "instances": 1,
            "readyInstances": 0,
            "instanceNames": [instance],
            "instancesStatus": {"healthy": null, "replicating": [instance]},
            "writeService": format!("{cluster}-rw"),
            "readService": format!("{cluster}-r"),
        }),
    )
    .await;
}

/// Merges `fields` and the `Ready` condition into the Cluster's status. Other conditions are
/// kept; `lastTransitionTime` moves only when `Ready` flips (metav1 semantics).
async fn set_cluster_status(
    client: &Client,
    namespace: &str,
    cluster: &str,
    ready: bool,
    mut fields: Value,
) {
    let api = cluster_api(client, namespace);
    let current = api
        .get(cluster)
        .await
        .unwrap_or_else(|e| panic!("read Cluster {namespace}/{cluster}: {e}"));
    let (status, reason, message) = if ready {
        ("True", "ClusterIsReady", "Cluster is Ready")
    } else {
        ("False", "ClusterIsNotReady", "Cluster Is Not Ready")
    };
    let mut conditions: Vec<Value> = current
        .data
        .pointer("/status/conditions")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let previous = conditions
        .iter()
        .position(|c| c["type"] == "Ready")
        .map(|i| conditions.remove(i));
    let since = match previous {
        Some(p) if p["status"] == status => p["lastTransitionTime"].clone(),
        _ => serde_json::to_value(Time(Timestamp::now())).expect("a Time serializes"),
    };
    conditions.push(json!({
        "type": "Ready",
        "status": status,
        "reason": reason,
        "message": message,
        "lastTransitionTime": since,
    }));
    fields["conditions"] = Value::Array(conditions);
    api.patch_status(
        cluster,
        &PatchParams::default(),
        &Patch::Merge(json!({"status": fields})),
    )
    .await
    .unwrap_or_else(|e| panic!("write the status of Cluster {namespace}/{cluster}: {e}"));
}

// --- Connection Secrets and the CRD in tests ---------------------------------------------------

/// Writes a Secret from text values (a user's `kubectl create secret generic`).
pub async fn put_secret(client: &Client, namespace: &str, name: &str, pairs: &[(&str, &str)]) {
    let data: serde_json::Map<String, Value> = pairs
        .iter()
        .map(|(k, v)| (k.to_string(), json!(v)))
        .collect();
    let secret: Secret = serde_json::from_value(json!({
        "apiVersion": "v1", "kind": "Secret",
        "metadata": {"name": name}, "stringData": data,
    }))
    .expect("a Secret");
    let api = Api::<Secret>::namespaced(client.clone(), namespace);
    match api.get_opt(name).await.expect("read the Secret") {
        // Replaced whole, so that removed keys go.
        Some(old) => {
            let mut secret = secret;
            secret.metadata.resource_version = old.metadata.resource_version;
            api.replace(name, &PostParams::default(), &secret).await
        }
        None => api.create(&PostParams::default(), &secret).await,
    }
    .unwrap_or_else(|e| panic!("write Secret {name}: {e}"));
}

/// Merges `pairs` into a Secret's data, as text.
pub async fn update_secret(client: &Client, namespace: &str, name: &str, pairs: &[(&str, &str)]) {
    let data: serde_json::Map<String, Value> = pairs
        .iter()
        .map(|(k, v)| (k.to_string(), json!(v)))
        .collect();
    Api::<Secret>::namespaced(client.clone(), namespace)
        .patch(
            name,
            &PatchParams::default(),
            &Patch::Merge(&json!({"stringData": data})),
        )
        .await
        .unwrap_or_else(|e| panic!("update Secret {name}: {e}"));
}

/// Installs the CRD again when the test ends, passed or failed. With a client of its own: the
/// test's client runs on the test's runtime, which is blocked while this waits.
pub struct ReinstallCrdOnDrop;

impl Drop for ReinstallCrdOnDrop {
    fn drop(&mut self) {
        std::thread::spawn(|| {
            tokio::runtime::Runtime::new()
                .expect("a runtime")
                .block_on(async { install_cnpg_crd(&crate::client().await).await });
        })
        .join()
        .expect("reinstall the CloudNativePG CRD");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quotes_identifiers_and_literals() {
        assert_eq!(ident(r#"a"b"#), r#""a""b""#);
        assert_eq!(literal(r"it's \n"), r"'it''s \n'");
        assert_eq!(identifier_prefix("Synapse-DB.x"), "synapse_db_x");
    }

    /// Known answers from Go's net/url, as CloudNativePG v1.30.1 builds its URIs.
    #[test]
    fn app_secret_uris_match_cloudnative_pg() {
        let data = app_secret_data("ns", "c", "d b?/x:@", "o@w n", "p:w/?#%$&+,;=!*é");
        assert_eq!(
            data["uri"],
            "postgresql://o%40w%20n:p%3Aw%2F%3F%23%25$&+,;=%21%2A%C3%A9@c-rw.ns:5432/d%20b%3F/x:@"
        );
        assert_eq!(
            data["jdbc-uri"],
            "jdbc:postgresql://c-rw.ns:5432/d%20b%3F/x:@?password=\
             p%3Aw%2F%3F%23%25%24%26%2B%2C%3B%3D%21%2A%C3%A9&user=o%40w+n"
        );

        let data = app_secret_data("matrix", "synapse-db", "synapse", "synapse", "s3cret");
        assert_eq!(data["host"], "synapse-db-rw");
        assert_eq!(data["port"], "5432");
        assert_eq!(
            data["pgpass"],
            "synapse-db-rw:5432:synapse:synapse:s3cret\n"
        );
        assert_eq!(
            data["uri"],
            "postgresql://synapse:s3cret@synapse-db-rw.matrix:5432/synapse"
        );
        assert_eq!(
            data["fqdn-uri"],
            "postgresql://synapse:s3cret@synapse-db-rw.matrix.svc.cluster.local:5432/synapse"
        );
        assert_eq!(
            data["fqdn-jdbc-uri"],
            "jdbc:postgresql://synapse-db-rw.matrix.svc.cluster.local:5432/synapse\
             ?password=s3cret&user=synapse"
        );
    }
}
