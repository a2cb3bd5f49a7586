//! The plan situations the render, plan-file and fuzz-seed tests share.
//!
//! Each situation is a (model, live) pair of the quickstart world
//! (`examples/quickstart.yaml` against `examples/quickstart.seed.yaml`), and
//! its plan comes from the planner (`wi::plan::compute`): what the renderer
//! and the plan file are tested on is what users get. The one exception is
//! [`structured_values`], a synthetic plan no planner makes, kept to pin down
//! how the renderer diffs collections; it and the odd-value tests build plans
//! with the small helpers below.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{Namespace, ServiceAccount as Ksa};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{FieldsV1, ManagedFieldsEntry, ObjectMeta};
use serde_json::{Value, json};
use wi::gcp::types::{
    Binding, GkeCluster, GoogleServiceAccount, IamPolicy, NodeConfig, NodePool,
    WorkloadIdentityConfig, WorkloadMetadataConfig,
};
use wi::live::{LiveCluster, LiveKube, LiveProject, LiveState};
use wi::plan::{
    Action, Attributes, FORMAT_VERSION, Fingerprint, Plan, PlanOptions, Reason, Resource,
    ResourceChange, Warning,
};
use wi::spec::{ClusterKey, Model};

use super::root;

// ---- the planner's situations ------------------------------------------------

/// The quickstart spec, loaded as `wi` loads it, named by its path in the
/// repository (plans record it: the generated fuzz seeds must not depend on
/// where the repository is checked out).
pub fn quickstart() -> Model {
    let text = std::fs::read_to_string(root().join("examples/quickstart.yaml")).expect("read");
    wi::spec::load_str(&text, "examples/quickstart.yaml", wi::spec::Format::Yaml)
        .expect("quickstart loads")
}

/// What `wi` plans for `model` against `live`.
pub fn planned(model: &Model, live: &LiveState) -> Plan {
    wi::plan::compute(model, live, &PlanOptions::default(), SPEC_DIGEST.into()).expect("plan")
}

const SPEC_DIGEST: &str = "sha256:5f1c0ffee0ddba11";

/// The quickstart from scratch (the seed world): two clusters without
/// Workload Identity, no service accounts, the credentials API disabled.
pub fn create_everything() -> Plan {
    planned(&quickstart(), &seed_world())
}

/// Everything in sync.
pub fn no_changes() -> Plan {
    let model = quickstart();
    planned(&model, &converged(&model))
}

/// Live state moved: an annotation points at another GSA (set by someone
/// else's field manager) and a description was edited by hand.
pub fn partial_drift() -> Plan {
    let model = quickstart();
    let mut live = converged(&model);
    let alpha = key("us-central1-a", "alpha");
    live.clusters
        .get_mut(&alpha)
        .and_then(|c| c.kube.as_mut())
        .expect("alpha")
        .service_accounts
        .insert(
            ("payments".into(), "api".into()),
            ksa_object(
                "payments",
                "api",
                Some("legacy@wi-demo.iam.gserviceaccount.com"),
                &[
                    ("kubectl-annotate", "Update", true, false),
                    ("wi", "Apply", false, true),
                ],
            )
            .into(),
        );
    live.projects
        .get_mut(PROJECT)
        .expect("project")
        .service_accounts
        .get_mut(APP)
        .expect("payments-api")
        .description = Some(wi::ownership::owned_description(Some(
        "edited in the console",
    )));
    planned(&model, &live)
}

/// Members `wi` does not manage are on the policy of an account it does
/// not own (someone else created payments-api): only ours is added.
pub fn foreign_members() -> Plan {
    let model = quickstart();
    let mut live = converged(&model);
    live.projects
        .get_mut(PROJECT)
        .expect("project")
        .service_accounts
        .get_mut(APP)
        .expect("payments-api")
        .description = Some("payments team".into());
    let policy = live.account_policies.get_mut(APP).expect("policy");
    let worker = format!("serviceAccount:{PROJECT}.svc.id.goog[payments/worker]");
    policy.bindings[0].members.retain(|m| *m != worker);
    policy.bindings[0].members.extend([
        "user:alice@example.com".to_string(),
        format!("serviceAccount:{PROJECT}.svc.id.goog[ci/deployer]"),
    ]);
    planned(&model, &live)
}

/// A mapping (payments/worker) and a role (reports-reader's) left the spec;
/// an account `wi` created is no longer in it (orphaned).
pub fn removal() -> Plan {
    let before = quickstart();
    let mut live = converged(&before);
    let orphan = format!("batch@{PROJECT}.iam.gserviceaccount.com");
    live.projects
        .get_mut(PROJECT)
        .expect("project")
        .service_accounts
        .insert(orphan.clone(), owned_account(&orphan, "Batch", None));
    let mut model = before;
    model.mappings.retain(|m| m.ksa != "worker");
    for gsa in &mut model.service_accounts {
        if gsa.account_id == "reports-reader" {
            gsa.roles.clear();
        }
    }
    planned(&model, &live)
}

// ---- live worlds ---------------------------------------------------------------

fn key(location: &str, name: &str) -> ClusterKey {
    ClusterKey {
        project: PROJECT.into(),
        location: location.into(),
        name: name.into(),
    }
}

/// The node pools of the quickstart seed, by cluster: (name, metadata mode).
fn seed_pools(cluster: &str) -> Vec<(&'static str, Option<&'static str>)> {
    match cluster {
        "alpha" => vec![("default-pool", None)],
        _ => vec![("default-pool", None), ("batch", Some("GCE_METADATA"))],
    }
}

fn gke(key: &ClusterKey, pool: Option<&str>, mode: Option<&str>) -> GkeCluster {
    GkeCluster {
        name: key.name.clone(),
        location: key.location.clone(),
        endpoint: Some("127.0.0.1:1".into()),
        workload_identity_config: pool.map(|p| WorkloadIdentityConfig {
            workload_pool: p.into(),
        }),
        node_pools: seed_pools(&key.name)
            .into_iter()
            .map(|(name, seed_mode)| NodePool {
                name: name.into(),
                config: Some(NodeConfig {
                    workload_metadata_config: mode
                        .or(seed_mode)
                        .map(|m| WorkloadMetadataConfig { mode: m.into() }),
                    ..Default::default()
                }),
                ..Default::default()
            })
            .collect(),
        ..Default::default()
    }
}

/// `examples/quickstart.seed.yaml` as `wi` reads it.
pub fn seed_world() -> LiveState {
    let mut live = LiveState::default();
    live.projects.insert(
        PROJECT.into(),
        LiveProject {
            iam_credentials_enabled: Some(false),
            service_accounts: BTreeMap::new(),
            policy: Some(IamPolicy::default()),
            clusters: Vec::new(),
        },
    );
    for k in [key("us-central1-a", "alpha"), key("europe-west1-b", "beta")] {
        live.clusters.insert(
            k.clone(),
            LiveCluster {
                gke: Some(gke(&k, None, None)),
                kube: Some(LiveKube::default()),
            },
        );
    }
    live
}

fn owned_account(email: &str, display: &str, description: Option<&str>) -> GoogleServiceAccount {
    GoogleServiceAccount {
        email: email.into(),
        project_id: PROJECT.into(),
        unique_id: format!("1{}", email.len()),
        display_name: Some(display.into()),
        description: Some(wi::ownership::owned_description(description)),
        ..Default::default()
    }
}

/// A KSA as the API server returns it: `managers` are (field manager,
/// operation, owns the GSA annotation, owns the managed-by label).
fn ksa_object(
    namespace: &str,
    name: &str,
    annotation: Option<&str>,
    managers: &[(&str, &str, bool, bool)],
) -> Ksa {
    let mut annotations = BTreeMap::new();
    if let Some(a) = annotation {
        annotations.insert(wi::ownership::GSA_ANNOTATION.to_string(), a.to_string());
    }
    let labels = BTreeMap::from([(
        wi::ownership::MANAGED_BY_LABEL.to_string(),
        "wi".to_string(),
    )]);
    let managed_fields = managers
        .iter()
        .map(|(manager, op, owns_annotation, owns_label)| {
            let mut meta = serde_json::Map::new();
            if *owns_annotation {
                meta.insert(
                    "f:annotations".into(),
                    json!({ format!("f:{}", wi::ownership::GSA_ANNOTATION): {} }),
                );
            }
            if *owns_label {
                meta.insert(
                    "f:labels".into(),
                    json!({ format!("f:{}", wi::ownership::MANAGED_BY_LABEL): {} }),
                );
            }
            ManagedFieldsEntry {
                manager: Some(manager.to_string()),
                operation: Some(op.to_string()),
                api_version: Some("v1".into()),
                fields_type: Some("FieldsV1".into()),
                fields_v1: Some(FieldsV1(json!({"f:metadata": meta}))),
                ..Default::default()
            }
        })
        .collect();
    Ksa {
        metadata: ObjectMeta {
            name: Some(name.into()),
            namespace: Some(namespace.into()),
            resource_version: Some("7".into()),
            annotations: Some(annotations),
            labels: Some(labels),
            managed_fields: Some(managed_fields),
            ..Default::default()
        },
        ..Default::default()
    }
}

/// The world after `wi apply` of `model` converged: every account, role,
/// binding, cluster setting, namespace and KSA the model wants exists.
pub fn converged(model: &Model) -> LiveState {
    let mut live = seed_world();
    let project = live.projects.get_mut(PROJECT).expect("project");
    project.iam_credentials_enabled = Some(true);
    let mut roles: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for gsa in &model.service_accounts {
        let email = format!("{}@{}.iam.gserviceaccount.com", gsa.account_id, gsa.project);
        project.service_accounts.insert(
            email.clone(),
            owned_account(
                &email,
                gsa.display_name.as_deref().unwrap_or_default(),
                gsa.description.as_deref(),
            ),
        );
        for role in &gsa.roles {
            roles
                .entry(role.clone())
                .or_default()
                .push(format!("serviceAccount:{email}"));
        }
    }
    project.policy = Some(IamPolicy {
        bindings: roles
            .into_iter()
            .map(|(role, members)| Binding {
                role,
                members,
                ..Default::default()
            })
            .collect(),
        etag: Some("BwYkZ2MLr9Q=".into()),
        ..Default::default()
    });
    for m in &model.mappings {
        let member = format!(
            "serviceAccount:{PROJECT}.svc.id.goog[{}/{}]",
            m.namespace, m.ksa
        );
        let policy = live
            .account_policies
            .entry(m.gsa_email.clone())
            .or_insert_with(|| IamPolicy {
                bindings: vec![Binding {
                    role: WI_USER.into(),
                    ..Default::default()
                }],
                etag: Some("BwYkZ2Lx1aE=".into()),
                ..Default::default()
            });
        if !policy.bindings[0].members.contains(&member) {
            policy.bindings[0].members.push(member);
        }
        let cluster = live.clusters.get_mut(&m.cluster).expect("declared cluster");
        let kube = cluster.kube.get_or_insert_with(LiveKube::default);
        kube.namespaces.insert(
            m.namespace.clone(),
            Namespace {
                metadata: ObjectMeta {
                    name: Some(m.namespace.clone()),
                    labels: Some(BTreeMap::from([(
                        wi::ownership::MANAGED_BY_LABEL.to_string(),
                        "wi".to_string(),
                    )])),
                    ..Default::default()
                },
                ..Default::default()
            }
            .into(),
        );
        kube.service_accounts.insert(
            (m.namespace.clone(), m.ksa.clone()),
            ksa_object(
                &m.namespace,
                &m.ksa,
                Some(&m.gsa_email),
                &[("wi", "Apply", true, true)],
            )
            .into(),
        );
    }
    let pool = format!("{PROJECT}.svc.id.goog");
    for (k, c) in &mut live.clusters {
        c.gke = Some(gke(k, Some(&pool), Some("GKE_METADATA")));
    }
    live
}

// ---- helpers for synthetic plans -------------------------------------------------

pub const PROJECT: &str = "wi-demo";
pub const APP: &str = "payments-api@wi-demo.iam.gserviceaccount.com";
pub const WI_USER: &str = "roles/iam.workloadIdentityUser";

/// A quickstart cluster by name (alpha is in us-central1-a, beta in europe-west1-b).
pub fn cluster(name: &str) -> ClusterKey {
    let location = if name == "alpha" {
        "us-central1-a"
    } else {
        "europe-west1-b"
    };
    key(location, name)
}

pub fn attrs(pairs: &[(&str, Value)]) -> Attributes {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.clone()))
        .collect()
}

fn reason(code: &str, message: &str) -> Reason {
    Reason {
        code: code.parse().expect("a known reason code"),
        message: message.into(),
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
        owner: Default::default(),
        kube: Default::default(),
        not_managed: None,
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
        unknowns: Vec::new(),
    }
}

// ---- resources -------------------------------------------------------------

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

// ---- attribute sets ---------------------------------------------------------

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
