//! What `wi` may need to be allowed to do, in one place: the catalogue of
//! IAM permissions and Kubernetes accesses each command (plan, apply,
//! verify, audit, import) uses, derived from the calls the clients make; what one
//! plan needs ([`required`]); and the pre-flight ([`check`]) that asks
//! Google (`testIamPermissions` on projects and accounts) and each cluster
//! (`SelfSubjectAccessReview`) whether the caller holds it, before anything
//! changes. The README table, the suggested custom roles under
//! `examples/iam/` and the emulator's tests are all read from here, so they
//! cannot disagree.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use crate::gcp::{GcpClient, GcpError};
use crate::ids::ClusterKey;
use crate::kube::{Access, KubeError};
use crate::live::LiveState;
use crate::plan::{Action, Plan, Resource};
use crate::spec::Model;

/// A `wi` command that talks to Google or Kubernetes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Command {
    Plan,
    Apply,
    Verify,
    Audit,
    Import,
}

impl Command {
    /// Every command, in the order of the README table.
    pub const ALL: [Command; 5] = [
        Command::Plan,
        Command::Apply,
        Command::Verify,
        Command::Audit,
        Command::Import,
    ];

    /// The command's name.
    pub fn name(self) -> &'static str {
        match self {
            Command::Plan => "plan",
            Command::Apply => "apply",
            Command::Verify => "verify",
            Command::Audit => "audit",
            Command::Import => "import",
        }
    }
}

/// What an IAM permission is checked on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum On {
    /// The project (`projects/P`).
    Project,
    /// A service account (its own policy or its project's).
    ServiceAccount,
}

/// One IAM permission of the catalogue.
#[derive(Debug, Clone, Copy)]
pub struct IamPermission {
    pub name: &'static str,
    pub on: On,
    /// The commands that use it (`apply` includes the reads of its plan).
    pub commands: &'static [Command],
    /// The call that needs it.
    pub why: &'static str,
}

use Command::{Apply as A, Audit as U, Import as I, Plan as P, Verify as V};

/// Every IAM permission `wi` uses. The `container.namespaces.*`,
/// `container.serviceAccounts.*` and `container.pods.*` ones are GKE's
/// Kubernetes authorizer: they stand in for RBAC when a cluster is reached
/// through its GKE endpoint with the caller's Google identity.
pub const IAM: &[IamPermission] = &[
    IamPermission {
        name: "container.clusters.get",
        on: On::Project,
        commands: &[P, A, V, U],
        why: "read each cluster (workload pool, node pools, endpoint)",
    },
    IamPermission {
        name: "container.clusters.list",
        on: On::Project,
        commands: &[P, A, U, I],
        why: "find clusters the spec does not declare (identity sameness)",
    },
    IamPermission {
        name: "container.clusters.create",
        on: On::Project,
        commands: &[A],
        why: "create a cluster the spec asks to create",
    },
    IamPermission {
        name: "container.clusters.update",
        on: On::Project,
        commands: &[A],
        why: "set the workload pool and node pools' metadata mode",
    },
    IamPermission {
        name: "container.operations.list",
        on: On::Project,
        commands: &[A],
        why: "wait for operations already running on a cluster",
    },
    IamPermission {
        name: "container.operations.get",
        on: On::Project,
        commands: &[A],
        why: "follow the operations wi starts",
    },
    IamPermission {
        name: "container.namespaces.list",
        on: On::Project,
        commands: &[P, A, U, I],
        why: "list namespaces (Kubernetes, through GKE's authorizer)",
    },
    IamPermission {
        name: "container.namespaces.create",
        on: On::Project,
        commands: &[A],
        why: "create a namespace (server-side apply of a new object)",
    },
    IamPermission {
        name: "container.namespaces.update",
        on: On::Project,
        commands: &[A],
        why: "server-side apply a namespace",
    },
    IamPermission {
        name: "container.serviceAccounts.list",
        on: On::Project,
        commands: &[P, A, V, U, I],
        why: "list Kubernetes service accounts",
    },
    IamPermission {
        name: "container.serviceAccounts.create",
        on: On::Project,
        commands: &[A],
        why: "create a KSA (server-side apply of a new object)",
    },
    IamPermission {
        name: "container.serviceAccounts.update",
        on: On::Project,
        commands: &[A],
        why: "server-side apply a KSA's annotation",
    },
    IamPermission {
        name: "container.serviceAccounts.delete",
        on: On::Project,
        commands: &[A],
        why: "delete a KSA wi created (--prune)",
    },
    IamPermission {
        name: "container.serviceAccounts.createToken",
        on: On::Project,
        commands: &[V],
        why: "request a KSA token, as the GKE metadata server does",
    },
    IamPermission {
        name: "container.pods.list",
        on: On::Project,
        commands: &[P, A, V, U],
        why: "list pods (host network, node pool of mapped KSAs)",
    },
    IamPermission {
        name: "iam.serviceAccounts.list",
        on: On::Project,
        commands: &[P, A, V, U, I],
        why: "list the Google service accounts of each project",
    },
    IamPermission {
        name: "iam.serviceAccounts.get",
        on: On::ServiceAccount,
        commands: &[P, A, V],
        why: "read an account outside the spec's projects",
    },
    IamPermission {
        name: "iam.serviceAccounts.create",
        on: On::Project,
        commands: &[A],
        why: "create a declared account",
    },
    IamPermission {
        name: "iam.serviceAccounts.update",
        on: On::ServiceAccount,
        commands: &[A],
        why: "set an account's display name and description",
    },
    IamPermission {
        name: "iam.serviceAccounts.enable",
        on: On::ServiceAccount,
        commands: &[A],
        why: "enable a disabled account wi owns",
    },
    IamPermission {
        name: "iam.serviceAccounts.delete",
        on: On::ServiceAccount,
        commands: &[A],
        why: "delete an account wi owns (--prune)",
    },
    IamPermission {
        name: "iam.serviceAccounts.getIamPolicy",
        on: On::ServiceAccount,
        commands: &[P, A, V, U, I],
        why: "read who may act as an account (Workload Identity users)",
    },
    IamPermission {
        name: "iam.serviceAccounts.setIamPolicy",
        on: On::ServiceAccount,
        commands: &[A],
        why: "grant or remove roles/iam.workloadIdentityUser",
    },
    IamPermission {
        name: "resourcemanager.projects.get",
        on: On::Project,
        commands: &[P, A, V],
        why: "read the project number direct grants' principal members name",
    },
    IamPermission {
        name: "resourcemanager.projects.getIamPolicy",
        on: On::Project,
        commands: &[P, A, U, I],
        why: "read the project roles of declared accounts",
    },
    IamPermission {
        name: "resourcemanager.projects.setIamPolicy",
        on: On::Project,
        commands: &[A],
        why: "grant or remove declared project roles",
    },
    IamPermission {
        name: "serviceusage.services.get",
        on: On::Project,
        commands: &[P, A, V],
        why: "check that iamcredentials.googleapis.com is enabled",
    },
    IamPermission {
        name: "serviceusage.services.enable",
        on: On::Project,
        commands: &[A],
        why: "enable iamcredentials.googleapis.com",
    },
    IamPermission {
        name: "serviceusage.operations.get",
        on: On::Project,
        commands: &[A],
        why: "follow the enabling operation",
    },
];

/// One Kubernetes access of the catalogue (RBAC, when a cluster is reached
/// through a kubeconfig context or the caller has RBAC grants).
#[derive(Debug, Clone, Copy)]
pub struct KubeRule {
    pub verb: &'static str,
    pub resource: &'static str,
    pub subresource: &'static str,
    pub commands: &'static [Command],
    pub why: &'static str,
}

impl KubeRule {
    /// The GKE IAM permission that grants this access through GKE's
    /// Kubernetes authorizer (`container.serviceAccounts.update` for `patch
    /// serviceaccounts`).
    pub fn gke_permission(&self) -> &'static str {
        gke_permission(self.verb, self.resource, self.subresource)
    }
}

/// Every Kubernetes access `wi` uses (core API group).
pub const KUBE: &[KubeRule] = &[
    KubeRule {
        verb: "list",
        resource: "namespaces",
        subresource: "",
        commands: &[P, A, U, I],
        why: "read namespaces",
    },
    KubeRule {
        verb: "create",
        resource: "namespaces",
        subresource: "",
        commands: &[A],
        why: "create a missing namespace",
    },
    KubeRule {
        verb: "patch",
        resource: "namespaces",
        subresource: "",
        commands: &[A],
        why: "server-side apply a namespace",
    },
    KubeRule {
        verb: "list",
        resource: "serviceaccounts",
        subresource: "",
        commands: &[P, A, V, U, I],
        why: "read KSAs and their annotation",
    },
    KubeRule {
        verb: "create",
        resource: "serviceaccounts",
        subresource: "",
        commands: &[A],
        why: "create a missing KSA",
    },
    KubeRule {
        verb: "patch",
        resource: "serviceaccounts",
        subresource: "",
        commands: &[A],
        why: "server-side apply a KSA's annotation",
    },
    KubeRule {
        verb: "delete",
        resource: "serviceaccounts",
        subresource: "",
        commands: &[A],
        why: "delete a KSA wi created (--prune)",
    },
    KubeRule {
        verb: "create",
        resource: "serviceaccounts",
        subresource: "token",
        commands: &[V],
        why: "request a KSA token for the workload pool",
    },
    KubeRule {
        verb: "list",
        resource: "pods",
        subresource: "",
        commands: &[P, A, V, U],
        why: "read pods (host network, node pool)",
    },
    KubeRule {
        verb: "create",
        resource: "selfsubjectaccessreviews",
        subresource: "",
        commands: &[A],
        why: "the pre-flight (granted to every authenticated user)",
    },
];

/// The GKE IAM permission behind a Kubernetes access (GKE's authorizer:
/// `container.<kind>.<verb>`, `patch` is `update`, the token subresource is
/// `createToken`).
pub fn gke_permission(verb: &str, resource: &str, subresource: &str) -> &'static str {
    match (verb, resource, subresource) {
        (_, "serviceaccounts", "token") => "container.serviceAccounts.createToken",
        ("list", "namespaces", _) => "container.namespaces.list",
        ("create", "namespaces", _) => "container.namespaces.create",
        ("patch" | "update", "namespaces", _) => "container.namespaces.update",
        ("list", "serviceaccounts", _) => "container.serviceAccounts.list",
        ("create", "serviceaccounts", _) => "container.serviceAccounts.create",
        ("patch" | "update", "serviceaccounts", _) => "container.serviceAccounts.update",
        ("delete", "serviceaccounts", _) => "container.serviceAccounts.delete",
        ("list", "pods", _) => "container.pods.list",
        _ => "",
    }
}

/// The IAM permissions a command uses, in catalogue order.
pub fn iam_for(command: Command) -> Vec<&'static str> {
    IAM.iter()
        .filter(|p| p.commands.contains(&command))
        .map(|p| p.name)
        .collect()
}

/// Where one IAM permission is needed.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Target {
    Project(String),
    ServiceAccount(String),
}

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Target::Project(p) => write!(f, "project {p}"),
            Target::ServiceAccount(e) => write!(f, "service account {e}"),
        }
    }
}

/// One thing a plan's apply needs to be allowed.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Need {
    /// An IAM permission on a project or account.
    Iam {
        permission: &'static str,
        target: Target,
    },
    /// A Kubernetes access in an existing cluster.
    Kube { cluster: ClusterKey, access: Access },
}

/// What applying `plan` needs: every IAM permission and Kubernetes access
/// its steps use, on the resource each is checked on. An account the plan
/// creates is checked on its project (it has no policy of its own yet);
/// Kubernetes steps in a cluster that does not exist yet are checked as
/// GKE IAM permissions on the cluster's project.
/// The pool project a direct member (`principal://` or `principalSet://`
/// of a GKE workload pool) names: its number was read from there.
fn principal_pool_project(member: &str) -> Option<&str> {
    if !member.starts_with("principal") {
        return None;
    }
    let (_, rest) = member.split_once("/workloadIdentityPools/")?;
    rest.split_once(".svc.id.goog/").map(|(p, _)| p)
}

pub fn required(plan: &Plan, live: &LiveState) -> BTreeSet<Need> {
    let mut out = BTreeSet::new();
    let mut iam = |permission: &'static str, target: Target| {
        out.insert(Need::Iam { permission, target });
    };
    let project = |p: &str| Target::Project(p.to_string());
    let account = |p: &str, email: &str| {
        if live.account(p, email).is_some() {
            Target::ServiceAccount(email.to_string())
        } else {
            Target::Project(p.to_string())
        }
    };
    let mut kube: Vec<(ClusterKey, Access)> = Vec::new();
    for change in plan.actionable() {
        match (&change.resource, change.action) {
            (Resource::ProjectService { project: p, .. }, _) => {
                iam("serviceusage.services.enable", project(p));
                iam("serviceusage.operations.get", project(p));
            }
            (Resource::Cluster { cluster }, Action::Create) => {
                iam("container.clusters.create", project(&cluster.project));
                iam("container.operations.get", project(&cluster.project));
            }
            (Resource::Cluster { cluster } | Resource::NodePool { cluster, .. }, _) => {
                for p in [
                    "container.operations.list",
                    "container.clusters.get",
                    "container.clusters.update",
                    "container.operations.get",
                ] {
                    iam(p, project(&cluster.project));
                }
            }
            (Resource::ServiceAccount { project: p, .. }, Action::Create) => {
                iam("iam.serviceAccounts.create", project(p));
            }
            (
                Resource::ServiceAccount {
                    project: p,
                    account_id,
                },
                action,
            ) => {
                let email = crate::ids::gsa_email(p, account_id);
                let permission = if action == Action::Delete {
                    "iam.serviceAccounts.delete"
                } else {
                    "iam.serviceAccounts.update"
                };
                iam(permission, account(p, &email));
                let disabled = |side: Option<&crate::plan::Attributes>| {
                    side.and_then(|a| a.get("disabled"))
                        .and_then(serde_json::Value::as_bool)
                };
                if disabled(change.before.as_ref()) == Some(true)
                    && disabled(change.after.as_ref()) == Some(false)
                {
                    iam("iam.serviceAccounts.enable", account(p, &email));
                }
            }
            (
                Resource::ServiceAccountIamMember {
                    project: p,
                    email,
                    member,
                    ..
                },
                _,
            ) => {
                iam("iam.serviceAccounts.getIamPolicy", account(p, email));
                iam("iam.serviceAccounts.setIamPolicy", account(p, email));
                if let Some(pool) = principal_pool_project(member) {
                    iam("resourcemanager.projects.get", project(pool));
                }
            }
            (
                Resource::ProjectIamMember {
                    project: p, member, ..
                },
                _,
            ) => {
                iam("resourcemanager.projects.getIamPolicy", project(p));
                iam("resourcemanager.projects.setIamPolicy", project(p));
                if let Some(pool) = principal_pool_project(member) {
                    iam("resourcemanager.projects.get", project(pool));
                }
            }
            (Resource::Namespace { cluster, name }, _) => {
                for verb in ["create", "patch"] {
                    kube.push((cluster.clone(), access(verb, "namespaces", Some(name))));
                }
            }
            (
                Resource::KubernetesServiceAccount {
                    cluster, namespace, ..
                },
                action,
            ) => {
                let verbs: &[&'static str] = match action {
                    Action::Create => &["create", "patch"],
                    Action::Delete => &["delete"],
                    _ => &["patch"],
                };
                for verb in verbs {
                    kube.push((
                        cluster.clone(),
                        access(verb, "serviceaccounts", Some(namespace)),
                    ));
                }
            }
        }
    }
    for (cluster, access) in kube {
        let reachable = live
            .clusters
            .get(&cluster)
            .is_some_and(|c| c.kube.is_some());
        if reachable {
            out.insert(Need::Kube { cluster, access });
        } else {
            let permission = gke_permission(access.verb, access.resource, access.subresource);
            out.insert(Need::Iam {
                permission,
                target: Target::Project(cluster.project.clone()),
            });
        }
    }
    out
}

fn access(verb: &'static str, resource: &'static str, namespace: Option<&str>) -> Access {
    Access {
        verb,
        resource,
        subresource: "",
        namespace: namespace.map(str::to_string),
    }
}

/// One thing the caller may not do.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Missing {
    /// The IAM permission (for Kubernetes: the access, then the GKE IAM
    /// permission that would grant it).
    pub permission: String,
    /// Where it is missing: `project P`, `service account E`, `cluster C`.
    pub resource: String,
}

impl fmt::Display for Missing {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} on {}", self.permission, self.resource)
    }
}

/// The pre-flight could not ask.
#[derive(Debug, thiserror::Error, miette::Diagnostic)]
pub enum PreflightError {
    #[error("checking permissions on {what}: {source}")]
    #[diagnostic(code(wi::permissions::check))]
    Gcp {
        what: String,
        #[source]
        source: GcpError,
    },
    #[error("checking permissions in cluster {cluster}: {source}")]
    #[diagnostic(code(wi::permissions::check))]
    Kube {
        cluster: String,
        #[source]
        source: KubeError,
    },
}

/// Asks Google and each cluster whether the caller holds every `need`:
/// one `testIamPermissions` per project and account, one
/// `SelfSubjectAccessReview` per Kubernetes access (one connection per
/// cluster, as the read of live state makes it). Returns what is missing,
/// sorted; nothing is changed either way.
pub async fn check(
    gcp: &GcpClient,
    model: &Model,
    live: &LiveState,
    needs: &BTreeSet<Need>,
) -> Result<Vec<Missing>, PreflightError> {
    let mut iam: BTreeMap<&Target, Vec<&'static str>> = BTreeMap::new();
    let mut kube: BTreeMap<&ClusterKey, Vec<&Access>> = BTreeMap::new();
    for need in needs {
        match need {
            Need::Iam { permission, target } => iam.entry(target).or_default().push(permission),
            Need::Kube { cluster, access } => kube.entry(cluster).or_default().push(access),
        }
    }
    // Every target and every cluster at once: the client's throttles bound
    // the calls in flight per API and project, so a plan that touches
    // hundreds of accounts is checked in a few round trips, not hundreds.
    // Answers are taken in target order, so the first failure reported is
    // the same whatever order they arrive in.
    let iam_checks = iam.into_iter().map(|(target, permissions)| async move {
        let held = match target {
            Target::Project(p) => gcp.test_project_permissions(p, &permissions).await,
            Target::ServiceAccount(e) => {
                gcp.test_service_account_permissions(e, &permissions).await
            }
        }
        .map_err(|source| PreflightError::Gcp {
            what: target.to_string(),
            source,
        })?;
        Ok::<_, PreflightError>(
            permissions
                .iter()
                .filter(|p| !held.iter().any(|h| h == *p))
                .map(|p| Missing {
                    permission: (*p).to_string(),
                    resource: target.to_string(),
                })
                .collect::<Vec<_>>(),
        )
    });
    let mut missing = Vec::new();
    for found in futures::future::join_all(iam_checks).await {
        missing.extend(found?);
    }
    if !kube.is_empty() {
        let token = gcp
            .access_token()
            .await
            .map_err(|source| PreflightError::Gcp {
                what: "an access token".into(),
                source,
            })?;
        let cluster_checks = kube
            .into_iter()
            .map(|(key, accesses)| check_cluster(model, live, key, accesses, token.clone()));
        for found in futures::future::join_all(cluster_checks).await {
            missing.extend(found?);
        }
    }
    missing.sort();
    Ok(missing)
}

/// The Kubernetes accesses of one cluster the caller lacks: one review for
/// the whole cluster per verb and resource; only when that is refused, one
/// per namespace (RBAC may grant less).
async fn check_cluster(
    model: &Model,
    live: &LiveState,
    key: &ClusterKey,
    accesses: Vec<&Access>,
    token: secrecy::SecretString,
) -> Result<Vec<Missing>, PreflightError> {
    let kube_err = |source| PreflightError::Kube {
        cluster: key.to_string(),
        source,
    };
    let Some(gke) = live.clusters.get(key).and_then(|c| c.gke.as_ref()) else {
        return Ok(Vec::new());
    };
    let context = model
        .clusters
        .iter()
        .find(|c| &c.key == key)
        .and_then(|c| c.kube_context.as_deref());
    let conn = crate::live::connect_cluster(gke, token, context)
        .await
        .map_err(kube_err)?;
    let mut missing = Vec::new();
    let mut cluster_wide: BTreeMap<(&str, &str, &str), bool> = BTreeMap::new();
    for access in accesses {
        let key3 = (access.verb, access.resource, access.subresource);
        let wide = match cluster_wide.get(&key3) {
            Some(w) => *w,
            None => {
                let all = Access {
                    namespace: None,
                    ..access.clone()
                };
                let w = conn.can_i(&all).await.map_err(kube_err)?;
                cluster_wide.insert(key3, w);
                w
            }
        };
        if wide {
            continue;
        }
        if !conn.can_i(access).await.map_err(kube_err)? {
            let gke = gke_permission(access.verb, access.resource, access.subresource);
            missing.push(Missing {
                permission: if context.is_none() && !gke.is_empty() {
                    format!("{access} (RBAC, or {gke})")
                } else {
                    access.to_string()
                },
                resource: format!("cluster {key}"),
            });
        }
    }
    Ok(missing)
}

/// The refusal when the pre-flight found something missing.
#[derive(Debug, thiserror::Error, miette::Diagnostic)]
#[error(
    "{identity} may not do every step of this plan; nothing was changed. Missing:\n{}",
    list(missing)
)]
#[diagnostic(
    code(wi::permissions::missing),
    help(
        "grant the missing permissions (the custom role in examples/iam/wi-apply.role.yaml holds every one `wi apply` uses; README \"Permissions\"), then run again"
    )
)]
pub struct MissingPermissions {
    /// Who was asked about (an email, or where the credentials came from).
    pub identity: String,
    pub missing: Vec<Missing>,
}

/// A read refused with 401 or 403, with what to do about it: which
/// identity was refused, and the permission the call needs.
#[derive(Debug, thiserror::Error, miette::Diagnostic)]
#[error("{message}")]
#[diagnostic(code(wi::permissions::denied), help("{help}"))]
pub struct Denied {
    /// What was being done (`reading IAM policy of project p`).
    pub message: String,
    #[source]
    pub source: Box<dyn std::error::Error + Send + Sync>,
    pub help: String,
}

impl Denied {
    /// `error` with the help that names `identity`, when it is a refusal;
    /// `Err(error)` back otherwise.
    pub fn from_live(
        error: crate::live::LiveError,
        identity: &str,
    ) -> Result<Denied, Box<crate::live::LiveError>> {
        use crate::live::LiveError;
        match error {
            LiveError::Gcp { what, source } => match source.denied_help(identity) {
                Some(help) => Ok(Denied {
                    message: format!("reading {what}"),
                    source: Box::new(source),
                    help,
                }),
                None => Err(Box::new(LiveError::Gcp { what, source })),
            },
            other => Err(Box::new(other)),
        }
    }
}

fn list(missing: &[Missing]) -> String {
    missing
        .iter()
        .map(|m| format!("  - {m}"))
        .collect::<Vec<_>>()
        .join("\n")
}

/// The suggested custom role for `commands` (YAML for `gcloud iam roles
/// create ROLE --project P --file FILE`).
pub fn role_yaml(title: &str, description: &str, commands: &[Command]) -> String {
    let permissions: BTreeSet<&str> = IAM
        .iter()
        .filter(|p| p.commands.iter().any(|c| commands.contains(c)))
        .map(|p| p.name)
        .collect();
    let mut text = format!(
        "# Generated from src/permissions/mod.rs (a test checks it); create it with\n#   gcloud iam roles create ROLE_ID --project PROJECT --file THIS_FILE\ntitle: {title}\ndescription: {description}\nstage: GA\nincludedPermissions:\n"
    );
    for p in permissions {
        text.push_str(&format!("  - {p}\n"));
    }
    text
}

/// The roles under `examples/iam/`: (file name, title, description, commands).
pub const ROLES: &[(&str, &str, &str, &[Command])] = &[
    (
        "wi-apply.role.yaml",
        "wi apply",
        "Everything wi plan and wi apply call",
        &[P, A],
    ),
    (
        "wi-verify.role.yaml",
        "wi verify and audit",
        "Read-only access for wi verify and wi audit, plus KSA tokens",
        &[V, U],
    ),
];

/// The README's permission tables (Markdown), generated from the catalogue.
pub fn readme_tables() -> String {
    let mark = |cmds: &[Command], c: Command| if cmds.contains(&c) { "✓" } else { "" };
    let mut text = String::from(
        "| IAM permission | checked on | plan | apply | verify | audit | import | for |\n|---|---|---|---|---|---|---|---|\n",
    );
    for p in IAM {
        let on = match p.on {
            On::Project => "project",
            On::ServiceAccount => "service account",
        };
        text.push_str(&format!("| `{}` | {on} |", p.name));
        for c in Command::ALL {
            text.push_str(&format!(" {} |", mark(p.commands, c)));
        }
        text.push_str(&format!(" {} |\n", p.why));
    }
    text.push_str(
        "\n| Kubernetes (core group) | GKE IAM equivalent | plan | apply | verify | audit | import | for |\n|---|---|---|---|---|---|---|---|\n",
    );
    for k in KUBE {
        let what = if k.subresource.is_empty() {
            format!("{} {}", k.verb, k.resource)
        } else {
            format!("{} {}/{}", k.verb, k.resource, k.subresource)
        };
        let gke = match k.gke_permission() {
            "" => "(every user)".to_string(),
            p => format!("`{p}`"),
        };
        text.push_str(&format!("| `{what}` | {gke} |"));
        for c in Command::ALL {
            text.push_str(&format!(" {} |", mark(k.commands, c)));
        }
        text.push_str(&format!(" {} |\n", k.why));
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    fn root() -> std::path::PathBuf {
        std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR"))
    }

    #[test]
    fn the_readme_table_is_the_catalogue() {
        let readme = std::fs::read_to_string(root().join("README.md")).unwrap();
        assert!(
            readme.contains(&readme_tables()),
            "README.md \"Permissions\" is stale; paste:\n{}",
            readme_tables()
        );
    }

    #[test]
    fn the_example_roles_are_the_catalogue() {
        for (file, title, description, commands) in ROLES {
            let path = root().join("examples/iam").join(file);
            let want = role_yaml(title, description, commands);
            if std::env::var_os("WI_UPDATE_GENERATED").is_some() {
                std::fs::write(&path, &want).unwrap();
            }
            let have = std::fs::read_to_string(&path).unwrap_or_default();
            assert_eq!(have, want, "{} is stale", path.display());
        }
    }

    #[test]
    fn every_kubernetes_access_has_its_gke_permission_in_the_catalogue() {
        for k in KUBE {
            let p = k.gke_permission();
            if k.resource == "selfsubjectaccessreviews" {
                assert_eq!(p, "");
                continue;
            }
            let entry = IAM
                .iter()
                .find(|i| i.name == p)
                .unwrap_or_else(|| panic!("{p}"));
            for c in k.commands {
                assert!(entry.commands.contains(c), "{p} for {}", c.name());
            }
        }
    }
}
