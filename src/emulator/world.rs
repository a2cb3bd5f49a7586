//! The emulator's whole world as one serde value: projects, IAM policies,
//! service accounts, clusters, operations, issued credentials and each
//! cluster's Kubernetes state. Persisted atomically after every change so a
//! `kill -9` loses nothing.

use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;
use std::path::Path;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use base64::Engine;
use rand::{Rng, RngCore};
use serde_json::json;

use super::EmulatorError;
use super::crypto;
use super::kube::KubeClusterState;

/// Current format version of the state file.
pub(crate) const STATE_VERSION: u32 = 1;

/// Everything the emulator knows.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub(crate) struct EmulatorWorld {
    pub version: u32,
    /// Project exported as `CLOUDSDK_CORE_PROJECT`.
    pub default_project: String,
    pub projects: BTreeMap<String, ProjectRecord>,
    /// Live service accounts by email.
    pub service_accounts: BTreeMap<String, ServiceAccountRecord>,
    /// Deleted service accounts (kept for `undelete`).
    #[serde(default)]
    pub deleted_service_accounts: Vec<ServiceAccountRecord>,
    /// GKE clusters by `project/location/name`.
    pub clusters: BTreeMap<String, GkeClusterRecord>,
    /// GKE operations, oldest first.
    pub operations: Vec<GkeOperation>,
    /// Service Usage operations by name (`operations/...`), always done.
    #[serde(default)]
    pub su_operations: BTreeMap<String, Value>,
    /// Issued access tokens by SHA-256 hex of the token (the token itself is never stored).
    pub tokens: BTreeMap<String, IssuedToken>,
    /// Service-account keys the emulator issued, by key id.
    pub keys: BTreeMap<String, IssuedKey>,
    /// The built-in admin identities.
    pub admin: Option<AdminIdentity>,
    /// CA and serving certificate of the Google API listener.
    pub tls: Option<TlsMaterial>,
    /// Kubernetes state per cluster key.
    #[serde(default)]
    pub kube: BTreeMap<String, KubeClusterState>,
    /// Last port of each cluster's Kubernetes API (reused after a restart when free).
    #[serde(default)]
    pub kube_ports: BTreeMap<String, u16>,
    /// Last port of the Google API listener and of the plain HTTP listener.
    #[serde(default)]
    pub main_port: Option<u16>,
    #[serde(default)]
    pub http_port: Option<u16>,
    /// Custom IAM roles by name (`projects/P/roles/ID`); see `google::permissions`.
    #[serde(default)]
    pub custom_roles: BTreeMap<String, CustomRoleRecord>,
    /// Monotonic counter for ids.
    pub counter: u64,
}

/// A custom IAM role (`projects.roles`): the permissions it grants.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub(crate) struct CustomRoleRecord {
    pub title: String,
    pub description: String,
    pub stage: String,
    pub permissions: BTreeSet<String>,
    pub etag: String,
    pub deleted: bool,
}

/// A project.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct ProjectRecord {
    pub id: String,
    /// Digits, as a string.
    pub number: String,
    pub name: String,
    pub create_ms: i64,
    /// Enabled services.
    pub services: BTreeSet<String>,
    pub policy: IamPolicyRecord,
    /// True once any cluster of this project has had Workload Identity: the
    /// pool `PROJECT.svc.id.goog` then exists (it is never deleted).
    pub workload_pool_exists: bool,
    /// Labels and parent given at creation (Resource Manager).
    #[serde(default)]
    pub labels: Option<Value>,
    #[serde(default)]
    pub parent: Option<Value>,
}

/// An IAM policy. Bindings are kept as JSON so conditions survive verbatim.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub(crate) struct IamPolicyRecord {
    /// Base64 etag; `ACAB` for a policy never written.
    pub etag: String,
    pub bindings: Vec<Value>,
    #[serde(default)]
    pub audit_configs: Vec<Value>,
}

impl IamPolicyRecord {
    /// An empty policy never written.
    pub(crate) fn empty() -> Self {
        Self {
            etag: "ACAB".into(),
            bindings: Vec::new(),
            audit_configs: Vec::new(),
        }
    }

    /// True when any binding carries a condition (the policy is version 3).
    pub(crate) fn has_conditions(&self) -> bool {
        self.bindings.iter().any(|b| b.get("condition").is_some())
    }

    /// The Policy resource as Google returns it.
    pub(crate) fn to_json(&self) -> Value {
        let mut m = serde_json::Map::new();
        // A policy never written is just `{"etag": "ACAB"}`; once written it
        // carries its version even when empty (as recorded).
        if !self.bindings.is_empty() || !self.audit_configs.is_empty() || self.etag != "ACAB" {
            m.insert(
                "version".into(),
                Value::from(if self.has_conditions() { 3 } else { 1 }),
            );
        }
        m.insert("etag".into(), Value::from(self.etag.clone()));
        if !self.bindings.is_empty() {
            m.insert("bindings".into(), Value::Array(self.bindings.clone()));
        }
        if !self.audit_configs.is_empty() {
            m.insert(
                "auditConfigs".into(),
                Value::Array(self.audit_configs.clone()),
            );
        }
        Value::Object(m)
    }

    /// Roles granted to any of `members` (ignores conditions: the emulator
    /// treats conditional grants as granted).
    pub(crate) fn roles_of(&self, members: &[String]) -> Vec<String> {
        let mut roles = Vec::new();
        for b in &self.bindings {
            let Some(role) = b.get("role").and_then(Value::as_str) else {
                continue;
            };
            let hit = b
                .get("members")
                .and_then(Value::as_array)
                .is_some_and(|ms| {
                    ms.iter()
                        .filter_map(Value::as_str)
                        .any(|m| members.iter().any(|x| x == m))
                });
            if hit {
                roles.push(role.to_string());
            }
        }
        roles
    }
}

/// A service account.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct ServiceAccountRecord {
    pub email: String,
    pub project: String,
    pub account_id: String,
    pub unique_id: String,
    pub display_name: Option<String>,
    pub description: Option<String>,
    pub disabled: bool,
    pub create_ms: i64,
    /// Invisible to reads until this time (eventual consistency).
    pub visible_ms: i64,
    pub policy: IamPolicyRecord,
    pub etag: String,
}

/// A GKE cluster: its resource as JSON (status and node-pool statuses are
/// computed from operations when rendered).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct GkeClusterRecord {
    pub project: String,
    pub location: String,
    pub name: String,
    pub resource: Value,
}

impl GkeClusterRecord {
    /// `project/location/name`.
    pub(crate) fn key(&self) -> String {
        cluster_key(&self.project, &self.location, &self.name)
    }

    /// The workload pool, when Workload Identity is on.
    pub(crate) fn workload_pool(&self) -> Option<String> {
        self.resource
            .pointer("/workloadIdentityConfig/workloadPool")
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
            .map(str::to_string)
    }
}

/// `project/location/name`.
pub(crate) fn cluster_key(project: &str, location: &str, name: &str) -> String {
    format!("{project}/{location}/{name}")
}

/// What happens when an operation finishes.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub(crate) enum OnDone {
    Nothing,
    DeleteCluster,
    DeleteNodePool(String),
}

/// A GKE long-running operation.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct GkeOperation {
    pub name: String,
    pub project: String,
    pub location: String,
    pub cluster: String,
    /// Node pool the operation targets, if any.
    pub node_pool: Option<String>,
    pub op_type: String,
    pub start_ms: i64,
    pub duration_ms: i64,
    /// Node-pool operations start PENDING, cluster ones RUNNING.
    pub starts_pending: bool,
    pub on_done: OnDone,
    /// True once `on_done` has been applied.
    pub finished: bool,
}

impl GkeOperation {
    /// Status at `now_ms`.
    pub(crate) fn status_at(&self, now_ms: i64) -> &'static str {
        let elapsed = now_ms - self.start_ms;
        if elapsed >= self.duration_ms {
            "DONE"
        } else if self.starts_pending && elapsed < self.duration_ms / 3 {
            "PENDING"
        } else {
            "RUNNING"
        }
    }

    /// True when not DONE at `now_ms`.
    pub(crate) fn is_active(&self, now_ms: i64) -> bool {
        self.status_at(now_ms) != "DONE"
    }
}

/// Whom an access token belongs to.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub(crate) enum Principal {
    /// A human user (`user:EMAIL`).
    User(String),
    /// A Google service account (`serviceAccount:EMAIL`).
    ServiceAccountRecord(String),
    /// A Kubernetes service account federated through a workload pool.
    Federated {
        pool: String,
        namespace: String,
        ksa: String,
        project_number: String,
        /// The cluster whose token was exchanged
        /// (`projects/P/locations/L/clusters/C`; empty when unknown).
        #[serde(default)]
        cluster: String,
    },
}

impl Principal {
    /// The principal's email-like name (Kubernetes username).
    pub(crate) fn email(&self) -> String {
        match self {
            Principal::User(e) | Principal::ServiceAccountRecord(e) => e.clone(),
            Principal::Federated {
                pool,
                namespace,
                ksa,
                ..
            } => format!("{pool}[{namespace}/{ksa}]"),
        }
    }

    /// Every IAM member string that designates this principal.
    pub(crate) fn members(&self) -> Vec<String> {
        let mut out = match self {
            Principal::User(e) => vec![format!("user:{e}")],
            Principal::ServiceAccountRecord(e) => vec![format!("serviceAccount:{e}")],
            Principal::Federated {
                pool,
                namespace,
                ksa,
                project_number,
                cluster,
            } => {
                // Direct grants name the KSA, its namespace in every cluster
                // of the pool, or every KSA of its cluster.
                let base = format!(
                    "iam.googleapis.com/projects/{project_number}/locations/global/workloadIdentityPools/{pool}"
                );
                let mut m = vec![
                    format!("serviceAccount:{pool}[{namespace}/{ksa}]"),
                    format!("principal://{base}/subject/ns/{namespace}/sa/{ksa}"),
                    format!("principalSet://{base}/namespace/{namespace}"),
                ];
                if !cluster.is_empty() {
                    m.push(format!(
                        "principalSet://{base}/kubernetes.cluster/https://container.googleapis.com/v1/{cluster}"
                    ));
                }
                m
            }
        };
        out.push("allUsers".into());
        out.push("allAuthenticatedUsers".into());
        out
    }
}

/// An access token the emulator issued.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct IssuedToken {
    pub principal: Principal,
    pub expires_ms: i64,
}

/// A service-account key the emulator issued (public half only).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct IssuedKey {
    pub email: String,
    /// PKCS#1 DER of the RSA public key, hex.
    pub public_pkcs1_hex: String,
    /// When the key was created (ms since the epoch).
    #[serde(default)]
    pub created_ms: i64,
}

/// The built-in admin identities and their credentials.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct AdminIdentity {
    pub user_email: String,
    pub sa_email: String,
    pub key_id: String,
    /// PKCS#8 PEM of the admin service account key (written to the key file).
    pub private_key_pem: String,
    /// The admin user's token (written to the token file).
    pub user_token: String,
}

/// TLS material of the Google API listener.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct TlsMaterial {
    pub ca_cert_pem: String,
    pub cert_pem: String,
    pub key_pem: String,
}

/// Errors reading or writing the state file.
#[derive(Debug, thiserror::Error)]
pub enum StateError {
    #[error("cannot read state file {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("state file {path} is not a valid emulator state: {source}")]
    Parse {
        path: String,
        source: serde_json::Error,
    },
    #[error("cannot write state file {path}: {source}")]
    Write {
        path: String,
        source: std::io::Error,
    },
}

impl StateError {
    /// True when the file exists but is corrupt.
    pub fn is_parse(&self) -> bool {
        matches!(self, StateError::Parse { .. })
    }
}

/// Loads the world from `path`; `Ok(None)` when the file does not exist.
pub(crate) fn load(path: &Path) -> Result<Option<EmulatorWorld>, StateError> {
    let text = match std::fs::read(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(source) => {
            return Err(StateError::Read {
                path: path.display().to_string(),
                source,
            });
        }
    };
    serde_json::from_slice(&text)
        .map(Some)
        .map_err(|source| StateError::Parse {
            path: path.display().to_string(),
            source,
        })
}

/// Writes `bytes` to `path` atomically: temp file in the same directory,
/// fsync, rename, fsync of the directory.
pub(crate) fn write_atomic(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => std::path::PathBuf::from("."),
    };
    let mut tmp = tempfile::NamedTempFile::new_in(&dir)?;
    tmp.write_all(bytes)?;
    tmp.as_file().sync_all()?;
    tmp.persist(path).map_err(|e| e.error)?;
    if let Ok(d) = std::fs::File::open(&dir) {
        let _ = d.sync_all();
    }
    Ok(())
}

// ---- World constructors: every new project, account, id and etag is made here,
// by the API handlers and the seed alike.

/// Default project of a world without seed.
pub(crate) const DEFAULT_PROJECT: &str = "wi-emulator";
/// The admin user principal.
pub(crate) const ADMIN_USER: &str = "admin@wi-emulator.local";

/// Services enabled in a new emulated project (iamcredentials is not: the how-to enables it).
pub(crate) const DEFAULT_ENABLED: &[&str] = &[
    "container.googleapis.com",
    "iam.googleapis.com",
    "cloudresourcemanager.googleapis.com",
    "serviceusage.googleapis.com",
    "sts.googleapis.com",
    "compute.googleapis.com",
    "storage.googleapis.com",
    "logging.googleapis.com",
    "monitoring.googleapis.com",
];

/// A fresh 21-digit id.
pub(crate) fn new_unique_id() -> String {
    let mut rng = rand::thread_rng();
    let mut s = String::from("1");
    for _ in 0..20 {
        s.push(char::from(b'0' + (rng.next_u32() % 10) as u8));
    }
    s
}

/// A fresh policy etag (`BwX...`: base64 of 0x07 0x05 and six random bytes).
pub(crate) fn new_policy_etag() -> String {
    let mut bytes = [0u8; 8];
    rand::thread_rng().fill_bytes(&mut bytes[2..]);
    bytes[0] = 0x07;
    bytes[1] = 0x05;
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

/// A new, enabled service account `{account_id}@{project}.iam.gserviceaccount.com`
/// with an empty policy, invisible to reads until `visible_ms`.
pub(crate) fn new_service_account(
    project: &str,
    account_id: &str,
    display_name: Option<String>,
    description: Option<String>,
    now: i64,
    visible_ms: i64,
) -> ServiceAccountRecord {
    ServiceAccountRecord {
        email: format!("{account_id}@{project}.iam.gserviceaccount.com"),
        project: project.to_string(),
        account_id: account_id.to_string(),
        unique_id: new_unique_id(),
        display_name,
        description,
        disabled: false,
        create_ms: now,
        visible_ms,
        policy: IamPolicyRecord::empty(),
        etag: "MDEwMjE5MjA=".into(),
    }
}

/// A new project with the admin principals as owners.
pub(crate) fn new_project(
    world: &EmulatorWorld,
    id: &str,
    number: Option<String>,
    now: i64,
) -> ProjectRecord {
    let number = number.unwrap_or_else(|| {
        let mut n = String::new();
        let mut rng = rand::thread_rng();
        n.push(char::from(b'1' + rng.r#gen_range(0..9u8)));
        for _ in 0..11 {
            n.push(char::from(b'0' + rng.r#gen_range(0..10u8)));
        }
        n
    });
    let mut policy = IamPolicyRecord::empty();
    if let Some(a) = &world.admin {
        policy.bindings.push(json!({
            "role": "roles/owner",
            "members": [format!("serviceAccount:{}", a.sa_email), format!("user:{}", a.user_email)]
        }));
        policy.etag = new_policy_etag();
    }
    ProjectRecord {
        id: id.to_string(),
        number,
        name: id.to_string(),
        create_ms: now,
        services: DEFAULT_ENABLED.iter().map(|s| s.to_string()).collect(),
        policy,
        workload_pool_exists: false,
        labels: None,
        parent: None,
    }
}

/// Creates the admin identity (user, service account, key, long-lived token) when
/// missing and makes it owner of every project.
pub(crate) fn ensure_admin(world: &mut EmulatorWorld, now: i64) -> Result<(), EmulatorError> {
    if world.admin.is_none() {
        let key = crypto::admin_rsa_key().map_err(EmulatorError::Crypto)?;
        let key_id = hex::encode(&uuid::Uuid::new_v4().as_bytes()[..16]);
        let sa_email = format!("wi-admin@{}.iam.gserviceaccount.com", world.default_project);
        world.keys.insert(
            key_id.clone(),
            IssuedKey {
                email: sa_email.clone(),
                public_pkcs1_hex: key.public_pkcs1_hex,
                created_ms: now,
            },
        );
        world.admin = Some(AdminIdentity {
            user_email: ADMIN_USER.into(),
            sa_email,
            key_id,
            private_key_pem: key.private_pkcs8_pem,
            user_token: crypto::new_token(),
        });
    }
    let Some(admin) = world.admin.clone() else {
        return Ok(());
    };
    // The admin user token is long-lived (gcloud never refreshes a token file).
    world.tokens.insert(
        crypto::token_hash(&admin.user_token),
        IssuedToken {
            principal: Principal::User(admin.user_email.clone()),
            expires_ms: now + 30 * 24 * 3600 * 1000,
        },
    );
    let project = world.default_project.clone();
    if !world.projects.contains_key(&project) {
        let p = new_project(world, &project, None, now);
        world.projects.insert(project.clone(), p);
    }
    if !world.service_accounts.contains_key(&admin.sa_email) {
        let mut sa = new_service_account(
            &project,
            "wi-admin",
            Some("wi emulator admin".into()),
            None,
            now,
            now,
        );
        // The email the admin key was issued for, even if the default project changed since.
        sa.email = admin.sa_email.clone();
        world.service_accounts.insert(admin.sa_email.clone(), sa);
    }
    // Owner on every project.
    for p in world.projects.values_mut() {
        let members = [
            format!("serviceAccount:{}", admin.sa_email),
            format!("user:{}", admin.user_email),
        ];
        let has = members.iter().all(|m| {
            p.policy
                .roles_of(std::slice::from_ref(m))
                .iter()
                .any(|r| r == "roles/owner")
        });
        if !has {
            p.policy
                .bindings
                .push(json!({"role": "roles/owner", "members": members}));
            p.policy.etag = new_policy_etag();
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn policy_version_follows_conditions() {
        let mut p = IamPolicyRecord::empty();
        assert_eq!(p.to_json(), json!({"etag": "ACAB"}));
        p.bindings
            .push(json!({"role": "roles/x", "members": ["user:a@b.c"]}));
        assert_eq!(p.to_json()["version"], 1);
        p.bindings
            .push(json!({"role": "roles/y", "members": ["user:a@b.c"],
            "condition": {"title": "t", "expression": "true"}}));
        assert_eq!(p.to_json()["version"], 3);
        assert_eq!(
            p.roles_of(&["user:a@b.c".into()]),
            vec!["roles/x".to_string(), "roles/y".to_string()]
        );
    }

    #[test]
    fn operation_progression() {
        let op = GkeOperation {
            name: "operation-1".into(),
            project: "p".into(),
            location: "l".into(),
            cluster: "c".into(),
            node_pool: Some("np".into()),
            op_type: "UPGRADE_NODES".into(),
            start_ms: 1000,
            duration_ms: 300,
            starts_pending: true,
            on_done: OnDone::Nothing,
            finished: false,
        };
        assert_eq!(op.status_at(1000), "PENDING");
        assert_eq!(op.status_at(1150), "RUNNING");
        assert_eq!(op.status_at(1300), "DONE");
    }

    #[test]
    fn atomic_write_roundtrip() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.json");
        assert!(load(&path).unwrap().is_none());
        let w = EmulatorWorld {
            default_project: "p".into(),
            ..EmulatorWorld::default()
        };
        write_atomic(&path, &serde_json::to_vec(&w).unwrap()).unwrap();
        assert_eq!(load(&path).unwrap().unwrap().default_project, "p");
        std::fs::write(&path, b"{not json").unwrap();
        assert!(load(&path).unwrap_err().is_parse());
    }
}
