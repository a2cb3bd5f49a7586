//! Planning rules, on hand-built live states (the planner is pure).

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{Namespace, ServiceAccount as K8sServiceAccount};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{FieldsV1, ManagedFieldsEntry, ObjectMeta};
use serde_json::json;

use super::*;
use crate::gcp::types::{
    Binding, GkeCluster, GoogleServiceAccount, IamPolicy, NodeConfig, NodePool,
    WorkloadIdentityConfig, WorkloadMetadataConfig,
};
use crate::live::{LiveCluster, LiveKube, LiveProject, LiveState};
use crate::ownership::{OWNERSHIP_MARKER, WORKLOAD_IDENTITY_USER, owned_description};
use crate::plan::{Action, Plan, PlanOptions, ReasonCode, WarningCode};
use crate::spec::{
    AbsentMember, Cluster as SpecCluster, ClusterKey, Gsa, KsaManagement, Mapping, Model,
    PoolSelection,
};

pub(super) const P: &str = "wi-demo";

pub(super) fn key(name: &str) -> ClusterKey {
    ClusterKey {
        project: P.into(),
        location: "us-central1-a".into(),
        name: name.into(),
    }
}

pub(super) fn model() -> Model {
    Model {
        projects: vec![P.into()],
        clusters: vec![SpecCluster {
            key: key("alpha"),
            workload_identity: true,
            metadata_server: PoolSelection::All,
            create: None,
            kube_context: None,
            autopilot: false,
            restricted_at: None,
            groups: Vec::new(),
            origin: Default::default(),
        }],
        service_accounts: vec![Gsa {
            project: P.into(),
            account_id: "payments-api".into(),
            display_name: Some("Payments".into()),
            description: None,
            roles: vec!["roles/cloudsql.client".into()],
            adopt: false,
            owner: Default::default(),
            origin: Default::default(),
        }],
        mappings: vec![Mapping {
            cluster: key("alpha"),
            namespace: "payments".into(),
            ksa: "api".into(),
            gsa_email: format!("payments-api@{P}.iam.gserviceaccount.com"),
            gsa_project: P.into(),
            management: KsaManagement::Create,
            owner: Default::default(),
            origin: Default::default(),
            accept: Vec::new(),
        }],
        direct: vec![],
        absent: vec![],
        owners: vec![Default::default()],
    }
}

pub(super) fn email() -> String {
    format!("payments-api@{P}.iam.gserviceaccount.com")
}

pub(super) fn member() -> String {
    format!("serviceAccount:{P}.svc.id.goog[payments/api]")
}

fn gke(pool: Option<&str>, mode: Option<&str>) -> GkeCluster {
    GkeCluster {
        name: "alpha".into(),
        location: "us-central1-a".into(),
        endpoint: Some("127.0.0.1:1".into()),
        workload_identity_config: pool.map(|p| WorkloadIdentityConfig {
            workload_pool: p.into(),
        }),
        node_pools: vec![NodePool {
            name: "default-pool".into(),
            config: Some(NodeConfig {
                workload_metadata_config: mode.map(|m| WorkloadMetadataConfig { mode: m.into() }),
                ..Default::default()
            }),
            ..Default::default()
        }],
        ..Default::default()
    }
}

pub(super) fn empty_world() -> LiveState {
    let mut live = LiveState::default();
    live.projects.insert(
        P.into(),
        LiveProject {
            iam_credentials_enabled: Some(false),
            service_accounts: BTreeMap::new(),
            policy: Some(IamPolicy::default()),
            clusters: Vec::new(),
        },
    );
    live.clusters.insert(
        key("alpha"),
        LiveCluster {
            gke: Some(gke(None, None)),
            kube: Some(LiveKube::default()),
        },
    );
    live
}

pub(super) fn owned_account() -> GoogleServiceAccount {
    GoogleServiceAccount {
        email: email(),
        project_id: P.into(),
        unique_id: "1".into(),
        display_name: Some("Payments".into()),
        description: Some(owned_description(None)),
        ..Default::default()
    }
}

pub(super) fn ksa(
    annotation: Option<&str>,
    managers: &[(&str, &str, bool, bool)],
    label: bool,
) -> K8sServiceAccount {
    let mut annotations = BTreeMap::new();
    if let Some(a) = annotation {
        annotations.insert("iam.gke.io/gcp-service-account".to_string(), a.to_string());
    }
    annotations.insert("team".into(), "payments".into());
    let mut labels = BTreeMap::new();
    if label {
        labels.insert("app.kubernetes.io/managed-by".to_string(), "wi".to_string());
    }
    let managed_fields = managers
        .iter()
        .map(|(manager, op, owns_annotation, owns_label)| {
            let mut meta = serde_json::Map::new();
            if *owns_annotation {
                meta.insert(
                    "f:annotations".into(),
                    json!({"f:iam.gke.io/gcp-service-account": {}}),
                );
            }
            if *owns_label {
                meta.insert(
                    "f:labels".into(),
                    json!({"f:app.kubernetes.io/managed-by": {}}),
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
    K8sServiceAccount {
        metadata: ObjectMeta {
            name: Some("api".into()),
            namespace: Some("payments".into()),
            resource_version: Some("7".into()),
            annotations: Some(annotations),
            labels: Some(labels),
            managed_fields: Some(managed_fields),
            ..Default::default()
        },
        ..Default::default()
    }
}

/// A world where everything the model wants exists.
pub(super) fn converged_world() -> LiveState {
    let mut live = empty_world();
    let project = live.projects.get_mut(P).unwrap();
    project.iam_credentials_enabled = Some(true);
    project.service_accounts.insert(email(), owned_account());
    project.policy = Some(IamPolicy {
        bindings: vec![Binding {
            role: "roles/cloudsql.client".into(),
            members: vec![format!("serviceAccount:{}", email())],
            ..Default::default()
        }],
        etag: Some("BwX1".into()),
        ..Default::default()
    });
    live.account_policies.insert(
        email(),
        IamPolicy {
            bindings: vec![Binding {
                role: WORKLOAD_IDENTITY_USER.into(),
                members: vec![member()],
                ..Default::default()
            }],
            etag: Some("BwX2".into()),
            ..Default::default()
        },
    );
    let mut kube = LiveKube::default();
    kube.namespaces.insert(
        "payments".into(),
        Namespace {
            metadata: ObjectMeta {
                name: Some("payments".into()),
                ..Default::default()
            },
            ..Default::default()
        }
        .into(),
    );
    kube.service_accounts.insert(
        ("payments".into(), "api".into()),
        ksa(Some(&email()), &[("wi", "Apply", true, true)], true).into(),
    );
    live.clusters.insert(
        key("alpha"),
        LiveCluster {
            gke: Some(gke(Some("wi-demo.svc.id.goog"), Some("GKE_METADATA"))),
            kube: Some(kube),
        },
    );
    live
}

pub(super) fn plan(model: &Model, live: &LiveState, options: &PlanOptions) -> Plan {
    compute(model, live, options, "digest".into()).expect("plan")
}

#[test]
fn empty_world_plans_every_step_with_dependencies() {
    let p = plan(&model(), &empty_world(), &PlanOptions::default());
    let actionable: Vec<(&str, Action)> = p
        .actionable()
        .map(|c| (c.address.as_str(), c.action))
        .collect();
    assert_eq!(
        actionable,
        vec![
            (
                "project_service[\"wi-demo/iamcredentials.googleapis.com\"]",
                Action::Create
            ),
            (
                "google_service_account[\"wi-demo/payments-api\"]",
                Action::Create
            ),
            (
                "service_account_iam_member[\"payments-api@wi-demo.iam.gserviceaccount.com/roles/iam.workloadIdentityUser/serviceAccount:wi-demo.svc.id.goog[payments/api]\"]",
                Action::Create
            ),
            (
                "project_iam_member[\"wi-demo/roles/cloudsql.client/serviceAccount:payments-api@wi-demo.iam.gserviceaccount.com\"]",
                Action::Create
            ),
            ("cluster[\"wi-demo/us-central1-a/alpha\"]", Action::Update),
            (
                "node_pool[\"wi-demo/us-central1-a/alpha/default-pool\"]",
                Action::Update
            ),
            (
                "kubernetes_namespace[\"wi-demo/us-central1-a/alpha/payments\"]",
                Action::Create
            ),
            (
                "kubernetes_service_account[\"wi-demo/us-central1-a/alpha/payments/api\"]",
                Action::Create
            ),
        ]
    );
    let binding = p
        .changes
        .iter()
        .find(|c| c.address.starts_with("service_account_iam_member"))
        .unwrap();
    // The binding needs the account and the workload pool (no cluster of the project has one yet).
    assert_eq!(
        binding.depends_on,
        vec![
            "cluster[\"wi-demo/us-central1-a/alpha\"]".to_string(),
            "google_service_account[\"wi-demo/payments-api\"]".to_string()
        ]
    );
    let pool = p
        .changes
        .iter()
        .find(|c| c.address.starts_with("node_pool"))
        .unwrap();
    assert_eq!(
        pool.depends_on,
        vec!["cluster[\"wi-demo/us-central1-a/alpha\"]".to_string()]
    );
    assert!(
        pool.warnings
            .iter()
            .any(|w| w.code == WarningCode::RollsNodes)
    );
    let ksa = p
        .changes
        .iter()
        .find(|c| c.address.starts_with("kubernetes_service_account"))
        .unwrap();
    assert_eq!(
        ksa.depends_on,
        vec![
            "kubernetes_namespace[\"wi-demo/us-central1-a/alpha/payments\"]".to_string(),
            "service_account_iam_member[\"payments-api@wi-demo.iam.gserviceaccount.com/roles/iam.workloadIdentityUser/serviceAccount:wi-demo.svc.id.goog[payments/api]\"]".to_string(),
        ],
        "the annotation waits for its namespace and the binding that makes it work"
    );
    let account = p
        .changes
        .iter()
        .find(|c| c.address.starts_with("google_service_account"))
        .unwrap();
    assert_eq!(
        account.after.as_ref().unwrap()["description"],
        json!(OWNERSHIP_MARKER)
    );
}

#[test]
fn converged_world_plans_no_changes() {
    let p = plan(&model(), &converged_world(), &PlanOptions::default());
    assert!(
        !p.has_changes(),
        "{:#?}",
        p.actionable().collect::<Vec<_>>()
    );
    assert!(p.changes.iter().all(|c| c.action == Action::NoOp));
    assert!(!p.fingerprints.is_empty());
}

#[test]
fn foreign_members_on_an_account_wi_does_not_own_are_kept() {
    let mut live = converged_world();
    let sa = live
        .projects
        .get_mut(P)
        .unwrap()
        .service_accounts
        .get_mut(&email())
        .unwrap();
    sa.description = Some("owned by the payments team".into());
    let policy = live.account_policies.get_mut(&email()).unwrap();
    policy.bindings[0]
        .members
        .push("serviceAccount:wi-demo.svc.id.goog[other/app]".into());
    let p = plan(&model(), &live, &PlanOptions::default());
    assert!(
        !p.has_changes(),
        "{:#?}",
        p.actionable().collect::<Vec<_>>()
    );
}

#[test]
fn undeclared_members_on_an_owned_account_are_drift_but_conditions_are_untouched() {
    let mut live = converged_world();
    let policy = live.account_policies.get_mut(&email()).unwrap();
    policy.bindings[0]
        .members
        .push("serviceAccount:wi-demo.svc.id.goog[other/app]".into());
    policy.bindings.push(Binding {
        role: WORKLOAD_IDENTITY_USER.into(),
        members: vec!["serviceAccount:wi-demo.svc.id.goog[cond/app]".into()],
        condition: Some(json!({"title": "expires", "expression": "request.time < timestamp('2030-01-01T00:00:00Z')"})),
        ..Default::default()
    });
    let p = plan(&model(), &live, &PlanOptions::default());
    let deletes: Vec<&str> = p.actionable().map(|c| c.address.as_str()).collect();
    assert_eq!(deletes.len(), 1, "{deletes:?}");
    assert!(deletes[0].contains("[other/app]"));
    let change = p.actionable().next().unwrap();
    assert_eq!(change.action, Action::Delete);
    assert!(
        change
            .warnings
            .iter()
            .any(|w| w.code == WarningCode::RevocationDelay)
    );
}

#[test]
fn declared_absent_member_is_removed_even_from_accounts_wi_does_not_own() {
    let mut live = converged_world();
    live.projects
        .get_mut(P)
        .unwrap()
        .service_accounts
        .get_mut(&email())
        .unwrap()
        .description = None;
    live.account_policies.get_mut(&email()).unwrap().bindings[0]
        .members
        .push("serviceAccount:wi-demo.svc.id.goog[old/app]".into());
    let mut m = model();
    m.absent.push(AbsentMember {
        gsa_email: email(),
        gsa_project: P.into(),
        member: "serviceAccount:wi-demo.svc.id.goog[old/app]".into(),
        owner: Default::default(),
        origin: Default::default(),
    });
    let p = plan(&m, &live, &PlanOptions::default());
    let changes: Vec<_> = p.actionable().collect();
    assert_eq!(changes.len(), 1);
    assert_eq!(changes[0].reason.code, ReasonCode::DeclaredAbsent);
}

#[test]
fn owned_account_extra_project_role_is_removed_but_foreign_grants_stay() {
    let mut live = converged_world();
    let policy = live.projects.get_mut(P).unwrap().policy.as_mut().unwrap();
    policy.bindings.push(Binding {
        role: "roles/storage.admin".into(),
        members: vec![
            format!("serviceAccount:{}", email()),
            "user:alice@example.com".into(),
        ],
        ..Default::default()
    });
    let p = plan(&model(), &live, &PlanOptions::default());
    let changes: Vec<_> = p.actionable().collect();
    assert_eq!(changes.len(), 1);
    assert_eq!(changes[0].action, Action::Delete);
    assert!(
        changes[0]
            .address
            .contains("roles/storage.admin/serviceAccount:payments-api")
    );
}

#[test]
fn annotation_owned_by_another_manager_warns_about_the_conflict() {
    let mut live = converged_world();
    let kube = live
        .clusters
        .get_mut(&key("alpha"))
        .unwrap()
        .kube
        .as_mut()
        .unwrap();
    kube.service_accounts.insert(
        ("payments".into(), "api".into()),
        ksa(
            Some("other@wi-demo.iam.gserviceaccount.com"),
            &[("kubectl-annotate", "Update", true, false)],
            false,
        )
        .into(),
    );
    let p = plan(&model(), &live, &PlanOptions::default());
    let change = p.actionable().next().unwrap();
    assert_eq!(change.action, Action::Update);
    assert_eq!(change.reason.code, ReasonCode::Drift);
    assert!(
        change
            .warnings
            .iter()
            .any(|w| w.code == WarningCode::FieldConflict && w.message.contains("kubectl-annotate"))
    );
    let forced = plan(
        &model(),
        &live,
        &PlanOptions {
            force_conflicts: true,
            ..Default::default()
        },
    );
    assert!(forced.actionable().next().unwrap().warnings.is_empty());
}

#[test]
fn removed_mapping_releases_wis_annotation_and_prune_deletes_what_wi_created() {
    let live = converged_world();
    let mut m = model();
    m.mappings.clear();
    let p = plan(&m, &live, &PlanOptions::default());
    let ksa_change = p
        .actionable()
        .find(|c| c.address.starts_with("kubernetes_service_account"))
        .unwrap();
    assert_eq!(ksa_change.action, Action::Update);
    let after = ksa_change.after.as_ref().unwrap();
    assert!(
        !after.keys().any(|k| k.starts_with("annotations")),
        "{after:?}"
    );
    assert_eq!(
        after.get("labels[\"app.kubernetes.io/managed-by\"]"),
        Some(&json!("wi"))
    );
    // The binding of the owned account goes too.
    assert!(
        p.actionable()
            .any(|c| c.address.starts_with("service_account_iam_member")
                && c.action == Action::Delete)
    );
    let pruned = plan(
        &m,
        &live,
        &PlanOptions {
            prune: true,
            ..Default::default()
        },
    );
    let ksa_change = pruned
        .actionable()
        .find(|c| c.address.starts_with("kubernetes_service_account"))
        .unwrap();
    assert_eq!(ksa_change.action, Action::Delete);
}

#[test]
fn a_ksa_annotated_by_someone_else_is_not_released() {
    let mut live = converged_world();
    let kube = live
        .clusters
        .get_mut(&key("alpha"))
        .unwrap()
        .kube
        .as_mut()
        .unwrap();
    kube.service_accounts.insert(
        ("payments".into(), "api".into()),
        ksa(Some(&email()), &[("helm", "Update", true, false)], false).into(),
    );
    let mut m = model();
    m.mappings.clear();
    let p = plan(&m, &live, &PlanOptions::default());
    assert!(
        !p.actionable()
            .any(|c| c.address.starts_with("kubernetes_service_account"))
    );
}

#[test]
fn orphaned_owned_account_is_a_warning_until_prune() {
    let live = converged_world();
    let mut m = model();
    m.service_accounts.clear();
    m.mappings.clear();
    let p = plan(&m, &live, &PlanOptions::default());
    assert!(p.warnings.iter().any(|w| w.code == WarningCode::Orphan));
    assert!(
        !p.actionable()
            .any(|c| c.address.starts_with("google_service_account"))
    );
    let pruned = plan(
        &m,
        &live,
        &PlanOptions {
            prune: true,
            ..Default::default()
        },
    );
    let delete = pruned
        .actionable()
        .find(|c| c.address.starts_with("google_service_account"))
        .unwrap();
    assert_eq!(delete.action, Action::Delete);
    assert_eq!(delete.depends_on.len(), 1, "its project grant goes first");
}

#[test]
fn missing_cluster_without_create_block_and_missing_ksa_to_annotate_are_problems() {
    let mut live = empty_world();
    live.clusters.clear();
    live.clusters.insert(key("alpha"), LiveCluster::default());
    let mut m = model();
    m.mappings[0].management = KsaManagement::AnnotateExisting;
    let err = compute(&m, &live, &PlanOptions::default(), String::new()).unwrap_err();
    assert!(
        err.problems
            .iter()
            .any(|p| p.message.contains("does not exist"))
    );
    let live = empty_world();
    let err = compute(&m, &live, &PlanOptions::default(), String::new()).unwrap_err();
    assert!(
        err.problems[0]
            .message
            .contains("only annotates an existing KSA"),
        "{:?}",
        err.problems
    );
}

#[test]
fn plan_does_not_depend_on_input_order() {
    let mut m = model();
    m.mappings.push(Mapping {
        namespace: "reports".into(),
        ksa: "reader".into(),
        ..m.mappings[0].clone()
    });
    let a = plan(&m, &empty_world(), &PlanOptions::default());
    m.mappings.reverse();
    let b = plan(&m, &empty_world(), &PlanOptions::default());
    assert_eq!(a, b);
}

#[test]
fn identity_sameness_is_reported_for_clusters_of_the_same_project() {
    let mut m = model();
    m.clusters.push(SpecCluster {
        key: key("beta"),
        ..m.clusters[0].clone()
    });
    let mut live = converged_world();
    live.clusters.insert(
        key("beta"),
        LiveCluster {
            gke: Some(gke(Some("wi-demo.svc.id.goog"), Some("GKE_METADATA"))),
            kube: Some(LiveKube::default()),
        },
    );
    let p = plan(&m, &live, &PlanOptions::default());
    assert!(
        p.warnings
            .iter()
            .any(|w| w.code == WarningCode::IdentitySameness && w.message.contains("beta"))
    );
}
