//! Planning rules of owners (issue 9): each run plans removals, releases and
//! prunes only for objects of its own owners, collisions are problems, a
//! named owner claims an older `wi`'s objects, prune releases a co-managed
//! KSA, and external accounts of project `-` are planned like any other.

use std::collections::BTreeMap;

use serde_json::json;

use super::tests::{P, converged_world, email, empty_world, key, ksa, member, model, plan};
use super::*;
use crate::gcp::types::{Binding, GoogleServiceAccount, IamPolicy};
use crate::ownership::WORKLOAD_IDENTITY_USER;
use crate::plan::{Action, PlanOptions, ReasonCode, WarningCode};
use crate::spec::{AbsentMember, KsaManagement, Mapping, Model};

fn named(n: &str) -> Owner {
    Owner::Named(n.into())
}

/// The default model, every item owned by `owner`.
fn owned_model(owner: &Owner) -> Model {
    let mut m = model();
    for g in &mut m.service_accounts {
        g.owner = owner.clone();
        g.origin = crate::spec::Origin {
            file: "team-a.yaml".into(),
            line: 3,
        };
    }
    for x in &mut m.mappings {
        x.owner = owner.clone();
        x.origin = crate::spec::Origin {
            file: "team-a.yaml".into(),
            line: 9,
        };
    }
    m.owners = vec![owner.clone()];
    m
}

/// The converged world with every object marked for `owner`.
fn owned_world(owner: &Owner) -> LiveState {
    let mut live = converged_world();
    let project = live.projects.get_mut(P).unwrap();
    let sa = project.service_accounts.get_mut(&email()).unwrap();
    sa.description = Some(owner.description_in(None, "team-a.yaml"));
    let kube = live
        .clusters
        .get_mut(&key("alpha"))
        .unwrap()
        .kube
        .as_mut()
        .unwrap();
    let manager = owner.field_manager();
    let mut k = ksa(
        Some(&email()),
        &[(manager.as_str(), "Apply", true, true)],
        true,
    );
    if let Some(n) = owner.label() {
        k.metadata
            .labels
            .get_or_insert_with(BTreeMap::new)
            .insert(crate::ownership::OWNER_LABEL.into(), n.into());
    }
    kube.service_accounts
        .insert(("payments".into(), "api".into()), k.into());
    live
}

/// Another owner's account (with a member and a grant) in the same project.
fn add_foreign_account(live: &mut LiveState, owner: &Owner) -> String {
    let other = format!("team-b-app@{P}.iam.gserviceaccount.com");
    let project = live.projects.get_mut(P).unwrap();
    project.service_accounts.insert(
        other.clone(),
        GoogleServiceAccount {
            email: other.clone(),
            project_id: P.into(),
            unique_id: "2".into(),
            description: Some(owner.description(Some("b"))),
            ..Default::default()
        },
    );
    project.policy.as_mut().unwrap().bindings.push(Binding {
        role: "roles/storage.admin".into(),
        members: vec![format!("serviceAccount:{other}")],
        ..Default::default()
    });
    live.account_policies.insert(
        other.clone(),
        IamPolicy {
            bindings: vec![Binding {
                role: WORKLOAD_IDENTITY_USER.into(),
                members: vec![format!("serviceAccount:{P}.svc.id.goog[b/app]")],
                ..Default::default()
            }],
            ..Default::default()
        },
    );
    other
}

#[test]
fn another_owners_account_is_neither_drift_nor_orphan_nor_pruned() {
    let a = named("team-a");
    let mut live = owned_world(&a);
    add_foreign_account(&mut live, &named("team-b"));
    for prune in [false, true] {
        let p = plan(
            &owned_model(&a),
            &live,
            &PlanOptions {
                prune,
                ..Default::default()
            },
        );
        assert!(
            !p.has_changes(),
            "prune={prune}: {:#?}",
            p.actionable().collect::<Vec<_>>()
        );
        assert!(p.warnings.is_empty(), "{:?}", p.warnings);
    }
    // The unnamed owner (an older spec) leaves a named owner's account alone too.
    let mut live = converged_world();
    add_foreign_account(&mut live, &named("team-b"));
    let p = plan(
        &model(),
        &live,
        &PlanOptions {
            prune: true,
            ..Default::default()
        },
    );
    assert!(!p.has_changes());
}

#[test]
fn an_owners_own_orphan_is_warned_and_pruned_with_its_conditional_grants() {
    let a = named("team-a");
    let mut live = owned_world(&a);
    let other = add_foreign_account(&mut live, &a);
    live.projects
        .get_mut(P)
        .unwrap()
        .policy
        .as_mut()
        .unwrap()
        .bindings
        .push(Binding {
            role: "roles/storage.admin".into(),
            members: vec![format!("serviceAccount:{other}")],
            condition: Some(json!({"title": "until-2031", "expression": "true"})),
            ..Default::default()
        });
    let p = plan(&owned_model(&a), &live, &PlanOptions::default());
    assert!(
        p.warnings
            .iter()
            .any(|w| w.code == WarningCode::Orphan && w.message.contains("for `team-a`"))
    );
    let p = plan(
        &owned_model(&a),
        &live,
        &PlanOptions {
            prune: true,
            ..Default::default()
        },
    );
    let grant = p
        .changes
        .iter()
        .find(|c| c.address.contains("roles/storage.admin"))
        .expect("grant removed");
    assert_eq!(grant.action, Action::Delete);
    assert_eq!(grant.reason.code, ReasonCode::OrphanPruned);
    assert_eq!(
        grant.before.as_ref().unwrap()["conditions"],
        json!(["until-2031"])
    );
    assert!(
        p.warnings
            .iter()
            .any(|w| w.code == WarningCode::GrantsElsewhere)
    );
}

#[test]
fn a_declared_account_another_owner_owns_is_a_problem_even_with_adopt() {
    let a = named("team-a");
    let mut m = owned_model(&a);
    m.service_accounts[0].adopt = true;
    let live = owned_world(&named("team-b"));
    let err = compute(&m, &live, &PlanOptions::default(), String::new()).unwrap_err();
    let text: Vec<String> = err.problems.iter().map(|p| p.message.clone()).collect();
    assert!(
        text.iter()
            .any(|t| t.contains("owned by `team-b`") && t.contains("team-a.yaml:3")),
        "{text:?}"
    );
    // The KSA `wi/team-b` annotates is claimed by team-b.
    assert!(
        text.iter().any(|t| t.contains("claimed by `team-b`")),
        "{text:?}"
    );
}

#[test]
fn a_mapping_to_another_owners_account_is_a_problem() {
    let a = named("team-a");
    let mut m = owned_model(&a);
    m.service_accounts.clear();
    let mut live = owned_world(&a);
    let other = add_foreign_account(&mut live, &named("team-b"));
    m.mappings[0].gsa_email = other;
    let err = compute(&m, &live, &PlanOptions::default(), String::new()).unwrap_err();
    assert!(
        err.problems
            .iter()
            .any(|p| p.message.contains("which `team-b` owns")
                && p.help
                    .as_deref()
                    .is_some_and(|h| h.contains("`team-b`'s spec"))),
        "{:?}",
        err.problems
    );
}

#[test]
fn a_named_owner_claims_an_older_wis_account_and_ksa_without_removals() {
    let a = named("team-a");
    let p = plan(
        &owned_model(&a),
        &converged_world(),
        &PlanOptions::default(),
    );
    let actionable: Vec<&ResourceChange> = p.actionable().collect();
    assert!(
        actionable.iter().all(|c| c.action == Action::Update),
        "{actionable:#?}"
    );
    let account = actionable
        .iter()
        .find(|c| c.address.starts_with("google_service_account"))
        .unwrap();
    assert_eq!(account.reason.code, ReasonCode::Adopt);
    assert_eq!(
        account.after.as_ref().unwrap()["description"],
        json!("[managed-by: wi owner=team-a] [wi.dev/declared-in: team-a.yaml]")
    );
    let ksa = actionable
        .iter()
        .find(|c| c.address.starts_with("kubernetes_service_account"))
        .unwrap();
    assert_eq!(ksa.owner, a);
    assert_eq!(ksa.kube.release_managers, vec!["wi".to_string()]);
    assert_eq!(ksa.kube.declared_in.as_deref(), Some("team-a.yaml"));
    let meta = ksa.kube_metadata();
    assert_eq!(meta.labels["wi.dev/owner"], "team-a");
    assert_eq!(meta.annotations["wi.dev/declared-in"], "team-a.yaml");
    // Once claimed: no changes.
    let p = plan(&owned_model(&a), &owned_world(&a), &PlanOptions::default());
    assert!(
        !p.has_changes(),
        "{:#?}",
        p.actionable().collect::<Vec<_>>()
    );
}

#[test]
fn what_a_named_owner_creates_carries_its_owner() {
    let a = named("team-a");
    let p = plan(&owned_model(&a), &empty_world(), &PlanOptions::default());
    for prefix in [
        "google_service_account",
        "kubernetes_namespace",
        "kubernetes_service_account",
    ] {
        let c = p
            .changes
            .iter()
            .find(|c| c.address.starts_with(prefix))
            .unwrap();
        assert_eq!(c.owner, a, "{prefix}");
    }
    let ns = p
        .changes
        .iter()
        .find(|c| c.address.starts_with("kubernetes_namespace"))
        .unwrap();
    assert_eq!(ns.kube_metadata().labels["wi.dev/owner"], "team-a");
    let account = p
        .changes
        .iter()
        .find(|c| c.address.starts_with("google_service_account"))
        .unwrap();
    assert_eq!(
        account.account_values().description.as_deref(),
        Some("[managed-by: wi owner=team-a] [wi.dev/declared-in: team-a.yaml]")
    );
}

#[test]
fn an_account_of_this_owner_declared_in_a_file_not_in_the_run_is_a_usage_error() {
    let a = named("team-a");
    let mut live = owned_world(&a);
    let other = add_foreign_account(&mut live, &a);
    // Declared by team-a's other file, which this run does not load.
    live.projects
        .get_mut(P)
        .unwrap()
        .service_accounts
        .get_mut(&other)
        .unwrap()
        .description = Some(a.description_in(Some("b"), "specs/team-a-2.yaml"));
    for prune in [false, true] {
        let options = PlanOptions {
            prune,
            ..Default::default()
        };
        let err = compute(&owned_model(&a), &live, &options, "d".into()).unwrap_err();
        assert_eq!(err.problems.len(), 1, "{:#?}", err.problems);
        let problem = &err.problems[0];
        assert_eq!(
            problem.address,
            format!("google_service_account[\"{P}/team-b-app\"]")
        );
        assert!(problem.message.contains("team-a-2.yaml"), "{problem:?}");
        assert!(
            problem
                .help
                .as_deref()
                .unwrap()
                .contains("-f team-a-2.yaml"),
            "{problem:?}"
        );
    }
    // With that file in the run, the account is declared and nothing moves.
    let mut m = owned_model(&a);
    let mut second = m.service_accounts[0].clone();
    second.account_id = "team-b-app".into();
    second.display_name = None;
    second.description = Some("b".into());
    second.roles = vec!["roles/storage.admin".into()];
    second.origin = crate::spec::Origin {
        file: "/ci/checkout/specs/team-a-2.yaml".into(),
        line: 2,
    };
    m.service_accounts.push(second);
    let mut mapping = m.mappings[0].clone();
    mapping.gsa_email = other.clone();
    mapping.namespace = "b".into();
    mapping.ksa = "app".into();
    mapping.origin = crate::spec::Origin {
        file: "/ci/checkout/specs/team-a-2.yaml".into(),
        line: 9,
    };
    m.mappings.push(mapping);
    let p = compute(&m, &live, &PlanOptions::default(), "d".into()).unwrap();
    assert!(
        p.actionable().all(|c| !c.address.contains("team-b-app")),
        "{:#?}",
        p.actionable().collect::<Vec<_>>()
    );
    // An account an owner wrote before accounts recorded their file: as before.
    live.projects
        .get_mut(P)
        .unwrap()
        .service_accounts
        .get_mut(&other)
        .unwrap()
        .description = Some(a.description(Some("b")));
    let p = plan(&owned_model(&a), &live, &PlanOptions::default());
    assert!(
        p.warnings.iter().any(|w| w.code == WarningCode::Orphan),
        "{:?}",
        p.warnings
    );
}

#[test]
fn prune_releases_a_ksa_another_manager_co_manages() {
    let a = named("team-a");
    let mut m = owned_model(&a);
    m.mappings.clear();
    let mut live = owned_world(&a);
    let kube = live
        .clusters
        .get_mut(&key("alpha"))
        .unwrap()
        .kube
        .as_mut()
        .unwrap();
    let mut k = ksa(
        Some(&email()),
        &[
            ("wi/team-a", "Apply", true, true),
            ("helm", "Apply", false, true),
        ],
        true,
    );
    k.metadata
        .labels
        .get_or_insert_with(BTreeMap::new)
        .insert("wi.dev/owner".into(), "team-a".into());
    kube.service_accounts
        .insert(("payments".into(), "api".into()), k.into());
    let p = plan(
        &m,
        &live,
        &PlanOptions {
            prune: true,
            ..Default::default()
        },
    );
    let c = p
        .changes
        .iter()
        .find(|c| c.address.starts_with("kubernetes_service_account"))
        .unwrap();
    assert_eq!(c.action, Action::Update, "released, not deleted");
    assert!(c.kube_metadata().labels.is_empty() && c.kube_metadata().annotations.is_empty());
    assert!(
        c.warnings
            .iter()
            .any(|w| w.code == WarningCode::ReleasedNotDeleted)
    );
}

#[test]
fn external_accounts_of_project_wildcard_are_planned() {
    let compute_sa = "123456789012-compute@developer.gserviceaccount.com".to_string();
    let mut m = model();
    m.service_accounts.clear();
    m.mappings = vec![Mapping {
        gsa_email: compute_sa.clone(),
        gsa_project: "-".into(),
        management: KsaManagement::Create,
        ..m.mappings[0].clone()
    }];
    m.absent = vec![AbsentMember {
        gsa_email: compute_sa.clone(),
        gsa_project: "-".into(),
        member: format!("serviceAccount:{P}.svc.id.goog[old/job]"),
        owner: Owner::Unnamed,
        origin: Default::default(),
    }];
    let mut live = converged_world();
    live.projects.get_mut(P).unwrap().service_accounts.clear();
    live.external_accounts.insert(
        compute_sa.clone(),
        Some(GoogleServiceAccount {
            email: compute_sa.clone(),
            project_id: "my-project".into(),
            ..Default::default()
        }),
    );
    live.account_policies.clear();
    live.account_policies.insert(
        compute_sa.clone(),
        IamPolicy {
            bindings: vec![Binding {
                role: WORKLOAD_IDENTITY_USER.into(),
                members: vec![
                    format!("serviceAccount:{P}.svc.id.goog[old/job]"),
                    "user:someone@example.com".into(),
                ],
                ..Default::default()
            }],
            ..Default::default()
        },
    );
    let p = plan(&m, &live, &PlanOptions::default());
    let iam: Vec<(&str, Action, &Resource)> = p
        .actionable()
        .filter(|c| c.address.starts_with("service_account_iam_member"))
        .map(|c| (c.address.as_str(), c.action, &c.resource))
        .collect();
    assert_eq!(iam.len(), 2, "{iam:#?}");
    for (_, action, resource) in &iam {
        let Resource::ServiceAccountIamMember {
            project,
            member: mem,
            ..
        } = resource
        else {
            panic!()
        };
        assert_eq!(project, "-");
        match action {
            Action::Create => assert_eq!(mem, &member()),
            Action::Delete => assert!(mem.contains("old/job")),
            _ => panic!("{action:?}"),
        }
    }
    assert!(
        !p.changes
            .iter()
            .any(|c| c.address.starts_with("project_service[\"-")),
        "no service check for `-`"
    );
}
