//! Hand-built plans shared by the render tests: what the planner would
//! produce for the quickstart world in its typical situations.
#![allow(dead_code)]

use serde_json::{Value, json};
use wi::plan::{
    Action, Attributes, FORMAT_VERSION, Fingerprint, Plan, Reason, Resource, ResourceChange,
    Warning,
};
use wi::spec::ClusterKey;

pub const PROJECT: &str = "wi-demo";
pub const APP: &str = "app@wi-demo.iam.gserviceaccount.com";
pub const REPORTS: &str = "reports@wi-demo.iam.gserviceaccount.com";
pub const WI_USER: &str = "roles/iam.workloadIdentityUser";
pub const ANNOTATION: &str = "annotations[\"iam.gke.io/gcp-service-account\"]";
pub const MANAGED_BY: &str = "labels[\"app.kubernetes.io/managed-by\"]";

pub fn cluster(name: &str) -> ClusterKey {
    ClusterKey {
        project: PROJECT.into(),
        location: "us-central1".into(),
        name: name.into(),
    }
}

pub fn attrs(pairs: &[(&str, Value)]) -> Attributes {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.clone()))
        .collect()
}

fn reason(code: &str, message: &str) -> Reason {
    Reason {
        code: code.into(),
        message: message.into(),
    }
}

pub fn warning(code: &str, message: &str, address: Option<&str>) -> Warning {
    Warning {
        code: code.into(),
        message: message.into(),
        address: address.map(str::to_string),
    }
}

pub fn change(
    resource: Resource,
    action: Action,
    before: Option<Attributes>,
    after: Option<Attributes>,
    reason_code: &str,
    reason_message: &str,
) -> ResourceChange {
    ResourceChange {
        address: resource.address(),
        resource,
        action,
        before,
        after,
        reason: reason(reason_code, reason_message),
        depends_on: Vec::new(),
        warnings: Vec::new(),
    }
}

pub fn plan(mut changes: Vec<ResourceChange>, warnings: Vec<Warning>) -> Plan {
    changes.sort_by_key(|c| c.resource.sort_key());
    Plan {
        format_version: FORMAT_VERSION.into(),
        spec_digest: "sha256:5f1c0ffee0ddba11".into(),
        changes,
        warnings,
        fingerprints: vec![
            Fingerprint {
                source: format!("iam_policy[\"{APP}\"]"),
                version: "BwYkZ2Lx1aE=".into(),
            },
            Fingerprint {
                source: "project_iam_policy[\"wi-demo\"]".into(),
                version: "BwYkZ2MLr9Q=".into(),
            },
        ],
    }
}

// ---- resources -------------------------------------------------------------

pub fn service(name: &str) -> Resource {
    Resource::ProjectService {
        project: PROJECT.into(),
        service: name.into(),
    }
}

pub fn gsa(id: &str) -> Resource {
    Resource::ServiceAccount {
        project: PROJECT.into(),
        account_id: id.into(),
    }
}

pub fn wi_member(email: &str, ns: &str, ksa: &str) -> Resource {
    Resource::ServiceAccountIamMember {
        project: PROJECT.into(),
        email: email.into(),
        role: WI_USER.into(),
        member: format!("serviceAccount:{PROJECT}.svc.id.goog[{ns}/{ksa}]"),
    }
}

pub fn project_role(role: &str, email: &str) -> Resource {
    Resource::ProjectIamMember {
        project: PROJECT.into(),
        role: role.into(),
        member: format!("serviceAccount:{email}"),
    }
}

pub fn namespace(c: &str, name: &str) -> Resource {
    Resource::Namespace {
        cluster: cluster(c),
        name: name.into(),
    }
}

pub fn ksa(c: &str, ns: &str, name: &str) -> Resource {
    Resource::KubernetesServiceAccount {
        cluster: cluster(c),
        namespace: ns.into(),
        name: name.into(),
    }
}

// ---- attribute sets ---------------------------------------------------------

pub fn gsa_attrs(id: &str, display: &str, description: &str) -> Attributes {
    attrs(&[
        ("account_id", json!(id)),
        ("description", json!(description)),
        ("display_name", json!(display)),
        (
            "email",
            json!(format!("{id}@{PROJECT}.iam.gserviceaccount.com")),
        ),
        ("project", json!(PROJECT)),
    ])
}

pub fn member_attrs(email: &str, ns: &str, ksa: &str) -> Attributes {
    attrs(&[
        (
            "member",
            json!(format!("serviceAccount:{PROJECT}.svc.id.goog[{ns}/{ksa}]")),
        ),
        ("role", json!(WI_USER)),
        (
            "service_account",
            json!(format!("projects/{PROJECT}/serviceAccounts/{email}")),
        ),
    ])
}

pub fn project_role_attrs(role: &str, email: &str) -> Attributes {
    attrs(&[
        ("member", json!(format!("serviceAccount:{email}"))),
        ("project", json!(PROJECT)),
        ("role", json!(role)),
    ])
}

pub fn ksa_attrs(ns: &str, name: &str, gsa: Option<&str>) -> Attributes {
    let mut a = attrs(&[
        (MANAGED_BY, json!("wi")),
        ("name", json!(name)),
        ("namespace", json!(ns)),
    ]);
    if let Some(g) = gsa {
        a.insert(ANNOTATION.into(), json!(g));
    }
    a
}

pub fn ns_attrs(name: &str) -> Attributes {
    attrs(&[(MANAGED_BY, json!("wi")), ("name", json!(name))])
}

pub fn cluster_attrs(name: &str, pool: Option<&str>) -> Attributes {
    attrs(&[
        ("location", json!("us-central1")),
        ("name", json!(name)),
        ("workload_pool", pool.map_or(Value::Null, |p| json!(p))),
    ])
}

pub fn pool_attrs(name: &str, nodes: u32, mode: &str) -> Attributes {
    attrs(&[
        ("name", json!(name)),
        ("node_count", json!(nodes)),
        ("workload_metadata_mode", json!(mode)),
    ])
}

fn pool_update(c: &str, pool: &str, nodes: u32) -> ResourceChange {
    let mut ch = change(
        Resource::NodePool {
            cluster: cluster(c),
            pool: pool.into(),
        },
        Action::Update,
        Some(pool_attrs(pool, nodes, "GCE_METADATA")),
        Some(pool_attrs(pool, nodes, "GKE_METADATA")),
        "drift",
        "the pool's nodes do not run the GKE metadata server",
    );
    ch.depends_on = vec![
        Resource::Cluster {
            cluster: cluster(c),
        }
        .address(),
    ];
    ch.warnings = vec![warning(
        "rolls_nodes",
        &format!(
            "switching to GKE_METADATA recreates all {nodes} nodes of the pool, one at a time (about 5 minutes each)"
        ),
        Some(&ch.address),
    )];
    ch
}

fn cluster_update(c: &str) -> ResourceChange {
    change(
        Resource::Cluster {
            cluster: cluster(c),
        },
        Action::Update,
        Some(cluster_attrs(c, None)),
        Some(cluster_attrs(c, Some("wi-demo.svc.id.goog"))),
        "drift",
        "Workload Identity is not enabled on the cluster",
    )
}

fn with_deps(mut c: ResourceChange, deps: &[String]) -> ResourceChange {
    c.depends_on = deps.to_vec();
    c
}

/// The quickstart from scratch: two clusters without Workload Identity, two
/// GSAs, three mappings across two namespaces.
pub fn create_everything() -> Plan {
    let desc = |what: &str| format!("{what} (managed by wi)");
    let mut changes = vec![
        change(
            service("iamcredentials.googleapis.com"),
            Action::Create,
            None,
            Some(attrs(&[
                ("project", json!(PROJECT)),
                ("service", json!("iamcredentials.googleapis.com")),
            ])),
            "missing",
            "the IAM Service Account Credentials API is not enabled",
        ),
        change(
            gsa("app"),
            Action::Create,
            None,
            Some(gsa_attrs("app", "Payments API", &desc("Payments API"))),
            "missing",
            "the service account does not exist",
        ),
        change(
            gsa("reports"),
            Action::Create,
            None,
            Some(gsa_attrs("reports", "Reports", &desc("Nightly reports"))),
            "missing",
            "the service account does not exist",
        ),
        cluster_update("alpha"),
        pool_update("alpha", "default-pool", 3),
        cluster_update("beta"),
        pool_update("beta", "default-pool", 3),
        pool_update("beta", "batch", 6),
    ];
    for (email, id, ns, k) in [
        (APP, "app", "payments", "api"),
        (APP, "app", "payments", "worker"),
        (REPORTS, "reports", "reports", "reporter"),
    ] {
        changes.push(with_deps(
            change(
                wi_member(email, ns, k),
                Action::Create,
                None,
                Some(member_attrs(email, ns, k)),
                "missing",
                &format!("{ns}/{k} is mapped to {email}"),
            ),
            &[
                gsa(id).address(),
                Resource::Cluster {
                    cluster: cluster("alpha"),
                }
                .address(),
            ],
        ));
    }
    for (role, email, id) in [
        ("roles/cloudsql.client", APP, "app"),
        ("roles/bigquery.dataViewer", REPORTS, "reports"),
    ] {
        changes.push(with_deps(
            change(
                project_role(role, email),
                Action::Create,
                None,
                Some(project_role_attrs(role, email)),
                "missing",
                &format!("the spec grants {role} to {id}"),
            ),
            &[gsa(id).address()],
        ));
    }
    for (c, ns, k, email) in [
        ("alpha", "payments", "api", APP),
        ("alpha", "payments", "worker", APP),
        ("beta", "payments", "api", APP),
        ("beta", "reports", "reporter", REPORTS),
    ] {
        if !changes.iter().any(|ch| ch.resource == namespace(c, ns)) {
            changes.push(change(
                namespace(c, ns),
                Action::Create,
                None,
                Some(ns_attrs(ns)),
                "missing",
                "the namespace does not exist",
            ));
        }
        changes.push(with_deps(
            change(
                ksa(c, ns, k),
                Action::Create,
                None,
                Some(ksa_attrs(ns, k, Some(email))),
                "missing",
                "the Kubernetes service account does not exist",
            ),
            &[namespace(c, ns).address()],
        ));
    }
    plan(
        changes,
        vec![warning(
            "identity_sameness",
            "serviceAccount:wi-demo.svc.id.goog[payments/api] is one member for every cluster of project wi-demo: a payments/api service account in any of them (alpha and beta today, any future cluster too) can act as app@wi-demo.iam.gserviceaccount.com.",
            None,
        )],
    )
}

/// Live state moved: an annotation points at another GSA and a description
/// was edited by hand. Everything else is in sync (no-ops, hidden).
pub fn partial_drift() -> Plan {
    let desc = "Payments API (managed by wi)";
    let changes = vec![
        change(
            gsa("app"),
            Action::Update,
            Some(gsa_attrs("app", "Payments API", "edited in the console")),
            Some(gsa_attrs("app", "Payments API", desc)),
            "drift",
            "the description differs from the spec",
        ),
        change(
            wi_member(APP, "payments", "api"),
            Action::NoOp,
            Some(member_attrs(APP, "payments", "api")),
            Some(member_attrs(APP, "payments", "api")),
            "in_sync",
            "in sync",
        ),
        change(
            namespace("alpha", "payments"),
            Action::NoOp,
            Some(ns_attrs("payments")),
            Some(ns_attrs("payments")),
            "in_sync",
            "in sync",
        ),
        change(
            ksa("alpha", "payments", "api"),
            Action::Update,
            Some(ksa_attrs(
                "payments",
                "api",
                Some("legacy@wi-demo.iam.gserviceaccount.com"),
            )),
            Some(ksa_attrs("payments", "api", Some(APP))),
            "drift",
            "the annotation points at another Google service account",
        ),
    ];
    plan(changes, Vec::new())
}

/// Members `wi` does not manage are on the policy: only ours is added.
pub fn foreign_members() -> Plan {
    let binding = wi_member(APP, "payments", "worker");
    let changes = vec![
        change(
            wi_member(APP, "payments", "api"),
            Action::NoOp,
            Some(member_attrs(APP, "payments", "api")),
            Some(member_attrs(APP, "payments", "api")),
            "in_sync",
            "in sync",
        ),
        change(
            binding.clone(),
            Action::Create,
            None,
            Some(member_attrs(APP, "payments", "worker")),
            "missing",
            "payments/worker is mapped to app@wi-demo.iam.gserviceaccount.com",
        ),
    ];
    plan(
        changes,
        vec![warning(
            "foreign_members",
            "roles/iam.workloadIdentityUser on app@wi-demo.iam.gserviceaccount.com also has 2 members wi does not manage (user:alice@example.com, serviceAccount:wi-demo.svc.id.goog[ci/deployer]). They are left untouched.",
            Some(&format!("iam_policy[\"{APP}\"]")),
        )],
    )
}

/// A mapping and a role were removed from the spec; an owned account is orphaned.
pub fn removal() -> Plan {
    let member = wi_member(APP, "payments", "worker");
    let mut revoke = change(
        member.clone(),
        Action::Delete,
        Some(member_attrs(APP, "payments", "worker")),
        None,
        "not_in_spec",
        "the mapping payments/worker is no longer in the spec",
    );
    revoke.warnings = vec![warning(
        "revocation_delay",
        "running pods may keep access for up to 30 minutes, until their cached tokens expire",
        Some(&member.address()),
    )];
    let changes = vec![
        revoke,
        change(
            project_role("roles/bigquery.dataViewer", REPORTS),
            Action::Delete,
            Some(project_role_attrs("roles/bigquery.dataViewer", REPORTS)),
            None,
            "not_in_spec",
            "the spec no longer grants roles/bigquery.dataViewer to reports",
        ),
        change(
            ksa("alpha", "payments", "worker"),
            Action::Update,
            Some(ksa_attrs("payments", "worker", Some(APP))),
            Some(ksa_attrs("payments", "worker", None)),
            "not_in_spec",
            "the mapping was removed: wi releases its annotation and keeps the service account",
        ),
        change(
            ksa("alpha", "payments", "api"),
            Action::NoOp,
            Some(ksa_attrs("payments", "api", Some(APP))),
            Some(ksa_attrs("payments", "api", Some(APP))),
            "in_sync",
            "in sync",
        ),
    ];
    plan(
        changes,
        vec![warning(
            "orphan",
            "google_service_account[\"wi-demo/batch\"] was created by wi but is no longer in the spec. It is kept; run with --prune to delete it.",
            Some("google_service_account[\"wi-demo/batch\"]"),
        )],
    )
}

/// Everything in sync.
pub fn no_changes() -> Plan {
    let changes = vec![
        change(
            gsa("app"),
            Action::NoOp,
            Some(gsa_attrs(
                "app",
                "Payments API",
                "Payments API (managed by wi)",
            )),
            Some(gsa_attrs(
                "app",
                "Payments API",
                "Payments API (managed by wi)",
            )),
            "in_sync",
            "in sync",
        ),
        change(
            wi_member(APP, "payments", "api"),
            Action::NoOp,
            Some(member_attrs(APP, "payments", "api")),
            Some(member_attrs(APP, "payments", "api")),
            "in_sync",
            "in sync",
        ),
    ];
    plan(changes, Vec::new())
}

/// Not a realistic plan: structured values (lists, maps, nested) changing,
/// to pin down how collections are diffed.
pub fn structured_values() -> Plan {
    let before = attrs(&[
        ("name", json!("alpha")),
        (
            "zones",
            json!(["us-central1-a", "us-central1-b", "us-central1-c"]),
        ),
        (
            "labels",
            json!({"env": "prod", "team": "payments", "tier": "1"}),
        ),
        ("old_setting", json!(true)),
        ("untouched", json!("same")),
        ("nested", json!({"a": {"x": 1}, "b": [1, 2]})),
    ]);
    let after = attrs(&[
        ("name", json!("alpha")),
        (
            "zones",
            json!(["us-central1-a", "us-central1-c", "us-central1-f"]),
        ),
        (
            "labels",
            json!({"env": "prod", "team": "platform", "owner": "sre"}),
        ),
        (
            "new_setting",
            json!({"mode": "strict", "ports": [443, 8443], "description": "a long enough text to stop this object staying on one line"}),
        ),
        ("untouched", json!("same")),
        ("nested", json!({"a": {"x": 2}, "b": [1, 2]})),
    ]);
    let changes = vec![
        change(
            Resource::Cluster {
                cluster: cluster("alpha"),
            },
            Action::Update,
            Some(before.clone()),
            Some(after),
            "drift",
            "because several settings drifted",
        ),
        change(
            Resource::Cluster {
                cluster: cluster("gamma"),
            },
            Action::Delete,
            Some(attrs(&[
                ("name", json!("gamma")),
                ("zones", json!(["a", "b"])),
                (
                    "big",
                    json!({"description": "a long enough text to stop this object staying on one line", "list": ["x"]}),
                ),
            ])),
            None,
            "declared_absent",
            "the spec says it must be absent",
        ),
    ];
    plan(changes, Vec::new())
}
