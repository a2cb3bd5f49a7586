//! Many owners, one fleet: two teams' specs on one project never undo each
//! other, a colliding claim fails the plan and changes nothing, an older
//! `wi`'s world is claimed by a named owner without a removal, adopt lists
//! every removal at once, prune releases a KSA someone else co-manages, and
//! the human plan says what exists but is not managed.
//!
//! The real `wi` binary against the in-process emulator; the world is read
//! back with `wi`'s own clients.

use std::collections::BTreeMap;

use serde_json::Value;

use crate::harness::{Output, TestWorld};

const PROJECT: &str = "wi-teams";
const LOCATION: &str = "us-central1-a";
const CLUSTER: &str = "shared";

const SEED: &str = r#"
defaultProject: wi-teams
projects:
  - id: wi-teams
    enableServices: [iamcredentials.googleapis.com]
    iamPolicy:
      - role: roles/storage.admin
        members: ["serviceAccount:legacy-app@wi-teams.iam.gserviceaccount.com"]
    serviceAccounts:
      - accountId: legacy-app
        displayName: Legacy App
        description: Made by hand years ago
        iamPolicy:
          - role: roles/iam.workloadIdentityUser
            members:
              - "user:alice@example.com"
              - "group:sre@example.com"
      - accountId: shared-sa
        displayName: Shared by hand
    clusters:
      - name: shared
        location: us-central1-a
        workloadPool: wi-teams.svc.id.goog
        nodePools:
          - name: default-pool
"#;

/// The clusters block both teams' files carry (until a platform file can hold it).
const CLUSTERS: &str = "clusters:\n  - name: shared\n    project: wi-teams\n    location: us-central1-a\n    workloadIdentity: true\n    metadataServer: all\n";

fn team_spec(owner: &str, account: &str, ksa: &str) -> String {
    format!(
        "version: 1\nowner: {owner}\n{CLUSTERS}serviceAccounts:\n  - name: {account}\n    project: wi-teams\n    description: The app of the team\n    roles: [roles/logging.logWriter]\nmappings:\n  - serviceAccount: {account}\n    clusters: [shared]\n    namespace: apps\n    ksa: {ksa}\n"
    )
}

fn email(account: &str) -> String {
    format!("{account}@{PROJECT}.iam.gserviceaccount.com")
}

fn member(ns: &str, ksa: &str) -> String {
    format!("serviceAccount:{PROJECT}.svc.id.goog[{ns}/{ksa}]")
}

/// A world from [`SEED`] (its seed file lives in `seed_dir`).
async fn world() -> (TestWorld, tempfile::TempDir) {
    let seed_dir = tempfile::tempdir().expect("seed dir");
    let seed = seed_dir.path().join("seed.yaml");
    std::fs::write(&seed, SEED).expect("seed");
    let world = TestWorld::start(seed.to_str().expect("utf-8 path")).await;
    (world, seed_dir)
}

/// What the world holds of one KSA: annotations, labels and the field
/// managers of its managedFields.
#[derive(Debug, Clone, PartialEq)]
struct KsaView {
    annotations: BTreeMap<String, String>,
    labels: BTreeMap<String, String>,
    managers: Vec<String>,
}

async fn ksa(world: &TestWorld, ns: &str, name: &str) -> Option<KsaView> {
    let conn = world.kube(LOCATION, CLUSTER).await;
    let all = conn.list_service_accounts().await.expect("list KSAs");
    all.into_iter()
        .find(|sa| {
            sa.metadata.namespace.as_deref() == Some(ns)
                && sa.metadata.name.as_deref() == Some(name)
        })
        .map(|sa| {
            let mut managers: Vec<String> = sa
                .metadata
                .managed_fields
                .iter()
                .flatten()
                .filter_map(|e| e.manager.clone())
                .collect();
            managers.sort();
            KsaView {
                annotations: sa.metadata.annotations.clone().unwrap_or_default(),
                labels: sa.metadata.labels.clone().unwrap_or_default(),
                managers,
            }
        })
}

async fn wiu_members(world: &TestWorld, account: &str) -> Vec<String> {
    let gcp = world.gcp().await;
    let policy = gcp
        .get_service_account_iam_policy(&email(account))
        .await
        .expect("policy");
    let mut out: Vec<String> = policy
        .bindings
        .iter()
        .filter(|b| b.role == wi::ownership::WORKLOAD_IDENTITY_USER && b.condition.is_none())
        .flat_map(|b| b.members.clone())
        .collect();
    out.sort();
    out
}

async fn project_roles_of(world: &TestWorld, account: &str) -> Vec<String> {
    let gcp = world.gcp().await;
    let policy = gcp.get_project_iam_policy(PROJECT).await.expect("policy");
    let m = format!("serviceAccount:{}", email(account));
    let mut out: Vec<String> = policy
        .bindings
        .iter()
        .filter(|b| b.members.contains(&m))
        .map(|b| b.role.clone())
        .collect();
    out.sort();
    out
}

async fn description(world: &TestWorld, account: &str) -> Option<String> {
    let gcp = world.gcp().await;
    gcp.get_service_account(&email(account))
        .await
        .expect("get account")
        .map(|sa| sa.description.unwrap_or_default())
}

fn json_plan(out: &Output) -> Value {
    serde_json::from_str(&out.stdout).expect("JSON plan")
}

/// Every `(address, action)` of a JSON plan that does something.
fn actions(plan: &Value) -> Vec<(String, String)> {
    plan["resource_changes"]
        .as_array()
        .expect("resource_changes")
        .iter()
        .map(|c| {
            (
                c["address"].as_str().unwrap_or_default().to_string(),
                c["change"]["actions"][0]
                    .as_str()
                    .unwrap_or_default()
                    .to_string(),
            )
        })
        .filter(|(_, a)| a != "no-op")
        .collect()
}

/// Everything of one team is in place: its account and marker, its
/// binding, its grant, its KSA's annotation, labels and field manager.
async fn assert_team_intact(world: &TestWorld, owner: &str, account: &str, ksa_name: &str) {
    let d = description(world, account)
        .await
        .unwrap_or_else(|| panic!("{account} exists"));
    assert_eq!(
        wiu_members(world, account).await,
        vec![member("apps", ksa_name)],
        "{account}'s binding"
    );
    assert_eq!(
        project_roles_of(world, account).await,
        vec!["roles/logging.logWriter".to_string()],
        "{account}'s grant"
    );
    let k = ksa(world, "apps", ksa_name)
        .await
        .unwrap_or_else(|| panic!("KSA apps/{ksa_name} exists"));
    assert_eq!(
        k.annotations.get("iam.gke.io/gcp-service-account"),
        Some(&email(account)),
        "{k:?}"
    );
    assert_eq!(
        k.labels,
        BTreeMap::from([
            ("app.kubernetes.io/managed-by".to_string(), "wi".to_string()),
            ("wi.dev/owner".to_string(), owner.to_string()),
        ]),
        "{k:?}"
    );
    let mut keys: Vec<&str> = k.annotations.keys().map(String::as_str).collect();
    keys.sort();
    assert_eq!(
        keys,
        vec!["iam.gke.io/gcp-service-account", "wi.dev/declared-in"],
        "{k:?}"
    );
    let file = k
        .annotations
        .get("wi.dev/declared-in")
        .unwrap_or_else(|| panic!("{k:?}"));
    let file = std::path::Path::new(file)
        .file_name()
        .and_then(|f| f.to_str())
        .unwrap_or_default();
    assert!(file.starts_with(owner) && file.ends_with(".yaml"), "{k:?}");
    assert_eq!(k.managers, vec![format!("wi/{owner}")], "{k:?}");
    // The account records the owner and the same file as the KSA.
    assert_eq!(
        d,
        format!("The app of the team [managed-by: wi owner={owner}] [wi.dev/declared-in: {file}]"),
        "{account}"
    );
}

/// Nothing of a team exists: no account, no grant, no KSA.
async fn assert_team_absent(world: &TestWorld, account: &str, ksa_name: &str) {
    assert_eq!(description(world, account).await, None, "{account}");
    assert_eq!(project_roles_of(world, account).await, Vec::<String>::new());
    assert_eq!(ksa(world, "apps", ksa_name).await, None, "apps/{ksa_name}");
}

/// The shared namespace: created by the first owner that needed it, and
/// still labelled as that owner's.
async fn assert_namespace_of(world: &TestWorld, owner: &str) {
    let conn = world.kube(LOCATION, CLUSTER).await;
    let ns = conn
        .list_namespaces()
        .await
        .expect("list namespaces")
        .into_iter()
        .find(|n| n.metadata.name.as_deref() == Some("apps"))
        .expect("namespace apps");
    assert_eq!(
        ns.metadata.labels.unwrap_or_default(),
        BTreeMap::from([
            ("app.kubernetes.io/managed-by".to_string(), "wi".to_string()),
            ("wi.dev/owner".to_string(), owner.to_string()),
            (
                "kubernetes.io/metadata.name".to_string(),
                "apps".to_string()
            ),
        ])
    );
}

/// Both teams, everything of each: after every apply of either.
async fn assert_both_intact(world: &TestWorld) {
    assert_team_intact(world, "team-a", "team-a-app", "a-api").await;
    assert_team_intact(world, "team-b", "team-b-app", "b-api").await;
    assert_namespace_of(world, "team-a").await;
}

#[tokio::test]
async fn two_owners_applied_alternately_never_undo_each_other() {
    let (world, _seed) = world().await;
    let a = world.write("team-a.yaml", &team_spec("team-a", "team-a-app", "a-api"));
    let b = world.write("team-b.yaml", &team_spec("team-b", "team-b-app", "b-api"));
    let (a, b) = (a.to_str().unwrap(), b.to_str().unwrap());
    for round in 1..=10 {
        let spec = if round % 2 == 1 { a } else { b };
        let plan = world.wi(&["plan", "-f", spec, "--detailed-exitcode"]).await;
        if round >= 3 {
            let plan = plan.expect(0);
            assert!(
                plan.stdout.contains("No changes."),
                "round {round}: {}",
                plan.stdout
            );
        }
        world
            .wi(&["apply", "-f", spec, "--auto-approve"])
            .await
            .expect(0);
        if round == 1 {
            assert_team_intact(&world, "team-a", "team-a-app", "a-api").await;
            assert_namespace_of(&world, "team-a").await;
            assert_team_absent(&world, "team-b-app", "b-api").await;
        } else {
            assert_both_intact(&world).await;
        }
    }
    // Pruning either owner deletes nothing of the other's.
    for spec in [a, b] {
        let plan = world
            .wi(&["plan", "-f", spec, "--prune", "--json"])
            .await
            .expect(0);
        assert_eq!(actions(&json_plan(&plan)), vec![], "prune of {spec}");
        world
            .wi(&["apply", "-f", spec, "--prune", "--auto-approve"])
            .await
            .expect(0);
        assert_both_intact(&world).await;
    }
    world.stop().await;
}

#[tokio::test]
async fn a_colliding_claim_fails_the_plan_and_leaves_the_ksa_as_it_was() {
    let (world, _seed) = world().await;
    let a = world.write("team-a.yaml", &team_spec("team-a", "team-a-app", "api"));
    let b = world.write("team-b.yaml", &team_spec("team-b", "team-b-app", "api"));
    world
        .wi(&["apply", "-f", a.to_str().unwrap(), "--auto-approve"])
        .await
        .expect(0);
    let before = ksa(&world, "apps", "api").await.expect("KSA");
    let plan = world
        .wi(&["plan", "-f", b.to_str().unwrap()])
        .await
        .expect(1);
    let flat: String = plan.stderr.split_whitespace().collect();
    assert!(
        flat.contains("team-a.yaml") && flat.contains("team-b.yaml"),
        "{}",
        plan.stderr
    );
    assert_output_snapshot!("owners_colliding_claim", plan);
    let apply = world
        .wi(&["apply", "-f", b.to_str().unwrap(), "--auto-approve"])
        .await
        .expect(1);
    let flat: String = apply.stderr.split_whitespace().collect();
    assert!(flat.contains("claimedby`team-a`"), "{}", apply.stderr);
    assert!(flat.contains("`team-b`declaresit"), "{}", apply.stderr);
    assert_eq!(ksa(&world, "apps", "api").await, Some(before));
    assert_team_intact(&world, "team-a", "team-a-app", "api").await;
    assert_eq!(
        description(&world, "team-b-app").await,
        None,
        "nothing applied"
    );
    world.stop().await;
}

#[tokio::test]
async fn an_older_wis_world_is_claimed_by_a_named_owner_without_a_removal() {
    let (world, _seed) = world().await;
    let legacy = team_spec("x", "team-a-app", "a-api").replace("owner: x\n", "");
    let legacy = world.write("team-a.yaml", &legacy);
    world
        .wi(&["apply", "-f", legacy.to_str().unwrap(), "--auto-approve"])
        .await
        .expect(0);
    let old = ksa(&world, "apps", "a-api").await.expect("KSA");
    assert_eq!(old.managers, vec!["wi".to_string()]);
    assert!(
        description(&world, "team-a-app")
            .await
            .unwrap()
            .ends_with("[managed-by: wi]")
    );

    let named = world.write("team-a.yaml", &team_spec("team-a", "team-a-app", "a-api"));
    let named = named.to_str().unwrap();
    let plan = world.wi(&["plan", "-f", named, "--json"]).await.expect(0);
    let planned = actions(&json_plan(&plan));
    assert!(!planned.is_empty());
    assert!(
        planned.iter().all(|(_, a)| a != "delete"),
        "a claim removes nothing: {planned:?}"
    );
    let human = world.wi(&["plan", "-f", named]).await.expect(0);
    assert_output_snapshot!("owners_legacy_claim_plan", human);
    world
        .wi(&["apply", "-f", named, "--auto-approve"])
        .await
        .expect(0);
    let again = world
        .wi(&["plan", "-f", named, "--detailed-exitcode"])
        .await
        .expect(0);
    assert!(again.stdout.contains("No changes."), "{}", again.stdout);
    assert_team_intact(&world, "team-a", "team-a-app", "a-api").await;
    world.stop().await;
}

#[tokio::test]
async fn adopt_lists_every_removal_at_once_and_keeps_what_the_spec_leaves_out() {
    let (world, _seed) = world().await;
    let spec = format!(
        "version: 1\nowner: legacy\n{CLUSTERS}serviceAccounts:\n  - name: legacy-app\n    project: wi-teams\n    adopt: true\nmappings:\n  - serviceAccount: legacy-app\n    clusters: [shared]\n    namespace: batch\n    ksa: nightly\n"
    );
    let spec = world.write("legacy.yaml", &spec);
    let spec = spec.to_str().unwrap();
    let first = world
        .wi(&["plan", "-f", spec, "--detailed-exitcode"])
        .await
        .expect(2);
    assert_output_snapshot!("owners_adopt_first_plan", first);
    for removed in [
        "user:alice@example.com",
        "group:sre@example.com",
        "roles/storage.admin",
    ] {
        assert!(first.stdout.contains(removed), "{removed} not planned");
    }
    assert!(
        !first.stdout.contains("display_name"),
        "what the spec leaves out is left as it is"
    );
    world
        .wi(&["apply", "-f", spec, "--auto-approve"])
        .await
        .expect(0);
    let second = world
        .wi(&["plan", "-f", spec, "--detailed-exitcode"])
        .await
        .expect(0);
    assert!(second.stdout.contains("No changes."), "{}", second.stdout);
    let gcp = world.gcp().await;
    let sa = gcp
        .get_service_account(&email("legacy-app"))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(sa.display_name.as_deref(), Some("Legacy App"));
    assert_eq!(
        sa.description.as_deref(),
        Some(
            "Made by hand years ago [managed-by: wi owner=legacy] [wi.dev/declared-in: legacy.yaml]"
        )
    );
    assert_eq!(
        wiu_members(&world, "legacy-app").await,
        vec![member("batch", "nightly")]
    );
    assert_eq!(
        project_roles_of(&world, "legacy-app").await,
        Vec::<String>::new()
    );
    world.stop().await;
}

#[tokio::test]
async fn the_plan_marks_what_it_does_not_manage_and_warns_when_a_binding_stays() {
    let (world, _seed) = world().await;
    let shared = email("shared-sa");
    let both = format!(
        "version: 1\nowner: team-a\n{CLUSTERS}serviceAccounts:\n  - name: shared-sa\n    project: wi-teams\nmappings:\n  - serviceAccount: {shared}\n    clusters: [shared]\n    namespace: apps\n    ksas: [old, kept]\n"
    );
    let spec = world.write("team-a.yaml", &both);
    let spec = spec.to_str().unwrap();
    world
        .wi(&["apply", "-f", spec, "--auto-approve"])
        .await
        .expect(0);
    // The mapping of apps/old leaves the spec.
    let one = format!(
        "version: 1\nowner: team-a\n{CLUSTERS}serviceAccounts:\n  - name: shared-sa\n    project: wi-teams\nmappings:\n  - serviceAccount: {shared}\n    clusters: [shared]\n    namespace: apps\n    ksa: kept\n"
    );
    world.write("team-a.yaml", &one);
    let plan = world
        .wi(&["plan", "-f", spec, "--detailed-exitcode"])
        .await
        .expect(2);
    assert!(plan.stdout.contains("exists, not managed by wi"));
    assert!(
        plan.stdout
            .contains("The binding of a removed mapping stays"),
        "{}",
        plan.stdout
    );
    assert_output_snapshot!("owners_not_managed_and_binding_remains", plan);
    let md = world
        .wi(&["plan", "-f", spec, "--format", "markdown"])
        .await
        .expect(0);
    for part in [
        "#### Exists, not managed by wi",
        "**The binding of a removed mapping stays**",
        "list the member under `absent`",
    ] {
        assert!(md.stdout.contains(part), "{part}: {}", md.stdout);
    }
    assert_output_snapshot!("owners_not_managed_and_binding_remains_markdown", md);
    world
        .wi(&[
            "apply",
            "-f",
            spec,
            "--auto-approve",
            "--allow-mass-removal",
        ])
        .await
        .expect(0);
    // The privilege stays until `absent` revokes it, as the warning says.
    assert!(
        wiu_members(&world, "shared-sa")
            .await
            .contains(&member("apps", "old"))
    );
    let revoke = format!(
        "{one}absent:\n  - serviceAccount: {shared}\n    member: \"{}\"\n",
        member("apps", "old")
    );
    world.write("team-a.yaml", &revoke);
    world
        .wi(&["apply", "-f", spec, "--auto-approve"])
        .await
        .expect(0);
    assert_eq!(
        wiu_members(&world, "shared-sa").await,
        vec![member("apps", "kept")]
    );
    world.stop().await;
}

#[tokio::test]
async fn prune_releases_a_ksa_helm_co_manages_instead_of_deleting_it() {
    let (world, _seed) = world().await;
    let spec = world.write("team-a.yaml", &team_spec("team-a", "team-a-app", "a-api"));
    let spec = spec.to_str().unwrap();
    world
        .wi(&["apply", "-f", spec, "--auto-approve"])
        .await
        .expect(0);
    // Helm starts managing a label of the KSA wi created.
    let conn = world.kube(LOCATION, CLUSTER).await;
    let chart = BTreeMap::from([("helm.sh/chart".to_string(), "api-1.0".to_string())]);
    conn.apply_service_account_as("helm", "apps", "a-api", &chart, &BTreeMap::new(), false)
        .await
        .expect("helm applies");
    // The mapping leaves the spec (the account stays).
    let without = team_spec("team-a", "team-a-app", "a-api");
    let without = without.split("mappings:").next().unwrap().to_string();
    world.write("team-a.yaml", &without);
    let plan = world
        .wi(&["plan", "-f", spec, "--prune", "--detailed-exitcode"])
        .await
        .expect(2);
    assert!(
        !plan
            .stdout
            .contains("kubernetes_service_account[\"wi-teams/us-central1-a/shared/apps/a-api\"] will be destroyed"),
        "{}",
        plan.stdout
    );
    assert_output_snapshot!("owners_prune_releases_co_managed_ksa", plan);
    let md = world
        .wi(&["plan", "-f", spec, "--prune", "--format", "markdown"])
        .await
        .expect(0);
    assert!(
        md.stdout
            .contains("**Co-managed KSA released, not deleted**"),
        "{}",
        md.stdout
    );
    assert_output_snapshot!("owners_prune_releases_co_managed_ksa_markdown", md);
    world
        .wi(&[
            "apply",
            "-f",
            spec,
            "--prune",
            "--auto-approve",
            "--allow-mass-removal",
        ])
        .await
        .expect(0);
    let k = ksa(&world, "apps", "a-api").await.expect("KSA kept");
    assert_eq!(k.managers, vec!["helm".to_string()], "{k:?}");
    assert_eq!(
        k.labels.get("helm.sh/chart").map(String::as_str),
        Some("api-1.0")
    );
    assert!(!k.annotations.contains_key("iam.gke.io/gcp-service-account"));
    let again = world
        .wi(&["plan", "-f", spec, "--prune", "--detailed-exitcode"])
        .await
        .expect(0);
    assert!(again.stdout.contains("No changes."), "{}", again.stdout);
    world.stop().await;
}

#[tokio::test]
async fn prune_removes_a_pruned_accounts_conditional_grants_first() {
    let (world, _seed) = world().await;
    let spec = world.write("team-a.yaml", &team_spec("team-a", "team-a-app", "a-api"));
    let spec = spec.to_str().unwrap();
    world
        .wi(&["apply", "-f", spec, "--auto-approve"])
        .await
        .expect(0);
    // Someone grants the account a conditional role in its project.
    let gcp = world.gcp().await;
    let m = format!("serviceAccount:{}", email("team-a-app"));
    let edit = |p: &mut wi::gcp::types::IamPolicy| {
        p.bindings.push(wi::gcp::types::Binding {
            role: "roles/storage.objectViewer".into(),
            members: vec![m.clone()],
            condition: Some(serde_json::json!({"title": "until-2031", "expression": "request.time < timestamp('2031-01-01T00:00:00Z')"})),
            rest: Default::default(),
        });
        true
    };
    gcp.modify_iam_policy(
        &wi::gcp::PolicyTarget::Project {
            project: PROJECT.into(),
        },
        std::time::Duration::from_secs(30),
        &edit,
    )
    .await
    .expect("conditional grant");
    let empty = format!("version: 1\nowner: team-a\n{CLUSTERS}");
    world.write("team-a.yaml", &empty);
    let plan = world
        .wi(&["plan", "-f", spec, "--prune", "--json"])
        .await
        .expect(0);
    let planned = actions(&json_plan(&plan));
    for address in [
        "project_iam_member[\"wi-teams/roles/storage.objectViewer/serviceAccount:team-a-app@wi-teams.iam.gserviceaccount.com\"]",
        "project_iam_member[\"wi-teams/roles/logging.logWriter/serviceAccount:team-a-app@wi-teams.iam.gserviceaccount.com\"]",
        "google_service_account[\"wi-teams/team-a-app\"]",
    ] {
        assert!(
            planned.contains(&(address.to_string(), "delete".to_string())),
            "{address} in {planned:?}"
        );
    }
    let warnings = json_plan(&plan)["warnings"].to_string();
    assert!(warnings.contains("grants_elsewhere"), "{warnings}");
    let md = world
        .wi(&["plan", "-f", spec, "--prune", "--format", "markdown"])
        .await
        .expect(0);
    assert!(
        md.stdout
            .contains("**Grants of a pruned account elsewhere stay**"),
        "{}",
        md.stdout
    );
    assert_output_snapshot!("owners_prune_conditional_grants_markdown", md);
    world
        .wi(&[
            "apply",
            "-f",
            spec,
            "--prune",
            "--auto-approve",
            "--allow-mass-removal",
        ])
        .await
        .expect(0);
    assert_eq!(description(&world, "team-a-app").await, None);
    assert_eq!(
        project_roles_of(&world, "team-a-app").await,
        Vec::<String>::new()
    );
    world.stop().await;
}

#[tokio::test]
async fn one_owner_in_two_specs_run_apart_is_a_usage_error_naming_the_other_file() {
    let (world, _seed) = world().await;
    let first = world.write("team-a-1.yaml", &team_spec("team-a", "team-a-app", "a-api"));
    let second = world.write(
        "team-a-2.yaml",
        &team_spec("team-a", "team-a-jobs", "a-jobs"),
    );
    world
        .wi(&["apply", "-f", first.to_str().unwrap(), "--auto-approve"])
        .await
        .expect(0);
    let before = ksa(&world, "apps", "a-api").await.expect("KSA");
    // team-a's second file alone would release what the first declares.
    let plan = world
        .wi(&["plan", "-f", second.to_str().unwrap()])
        .await
        .expect(1);
    let flat: String = plan.stderr.split_whitespace().collect();
    assert!(flat.contains("team-a-1.yaml"), "{}", plan.stderr);
    assert_output_snapshot!("owners_one_owner_two_specs_apart", plan);
    assert_eq!(ksa(&world, "apps", "a-api").await, Some(before));
    world.stop().await;
}

#[tokio::test]
async fn a_saved_plan_applies_as_its_owner() {
    let (world, _seed) = world().await;
    let spec = world.write("team-a.yaml", &team_spec("team-a", "team-a-app", "a-api"));
    let saved = world.path("team-a.plan");
    world
        .wi(&[
            "plan",
            "-f",
            spec.to_str().unwrap(),
            "--out",
            saved.to_str().unwrap(),
        ])
        .await
        .expect(0);
    world
        .wi(&[
            "apply",
            saved.to_str().unwrap(),
            "-f",
            spec.to_str().unwrap(),
        ])
        .await
        .expect(0);
    assert_team_intact(&world, "team-a", "team-a-app", "a-api").await;
    world.stop().await;
}

#[tokio::test]
async fn a_ksa_wi_annotates_but_did_not_create_is_listed_as_not_managed() {
    let (world, _seed) = world().await;
    let spec = world.write("team-a.yaml", &team_spec("team-a", "team-a-app", "a-api"));
    let spec = spec.to_str().unwrap();
    world
        .wi(&["apply", "-f", spec, "--auto-approve"])
        .await
        .expect(0);
    // Helm made one KSA; team-b's wi made another (its labels, no annotation).
    let conn = world.kube(LOCATION, CLUSTER).await;
    let chart = BTreeMap::from([("helm.sh/chart".to_string(), "api-1.0".to_string())]);
    conn.apply_service_account_as("helm", "apps", "helm-api", &chart, &BTreeMap::new(), false)
        .await
        .expect("helm applies");
    let team_b = BTreeMap::from([
        ("app.kubernetes.io/managed-by".to_string(), "wi".to_string()),
        ("wi.dev/owner".to_string(), "team-b".to_string()),
    ]);
    conn.apply_service_account_as(
        "wi/team-b",
        "apps",
        "b-made",
        &team_b,
        &BTreeMap::new(),
        false,
    )
    .await
    .expect("team-b's wi applies");
    let more = format!(
        "{}  - serviceAccount: team-a-app\n    clusters: [shared]\n    namespace: apps\n    ksa: helm-api\n    manage: annotate\n  - serviceAccount: team-a-app\n    clusters: [shared]\n    namespace: apps\n    ksa: b-made\n",
        team_spec("team-a", "team-a-app", "a-api")
    );
    world.write("team-a.yaml", &more);
    let plan = world
        .wi(&["plan", "-f", spec, "--detailed-exitcode"])
        .await
        .expect(2);
    let flat: String = plan.stdout.split_whitespace().collect::<Vec<_>>().join(" ");
    let section = flat
        .split("Exists, not managed by wi")
        .nth(1)
        .unwrap_or_else(|| panic!("no not-managed section: {}", plan.stdout));
    assert!(
        section
            .contains("apps/helm-api\"] (exists, managed by `helm`: wi only sets its annotation)"),
        "{}",
        plan.stdout
    );
    assert!(
        section.contains("apps/b-made\"] (exists, owned by `team-b`: wi only sets its annotation)"),
        "{}",
        plan.stdout
    );
    assert!(
        !section.contains("apps/a-api"),
        "the KSA team-a created is its own: {}",
        plan.stdout
    );
    assert_output_snapshot!("owners_ksa_not_managed_plan", plan);
    let md = world
        .wi(&["plan", "-f", spec, "--format", "markdown"])
        .await
        .expect(0);
    assert!(
        md.stdout
            .contains("exists, managed by `helm`: wi only sets its annotation"),
        "{}",
        md.stdout
    );
    assert_output_snapshot!("owners_ksa_not_managed_markdown", md);
    world
        .wi(&["apply", "-f", spec, "--auto-approve"])
        .await
        .expect(0);
    // wi set the annotations and took no label of KSAs it did not create.
    let helm = ksa(&world, "apps", "helm-api").await.expect("helm KSA");
    assert_eq!(
        helm.annotations.get("iam.gke.io/gcp-service-account"),
        Some(&email("team-a-app"))
    );
    assert_eq!(helm.labels, chart, "{helm:?}");
    let b = ksa(&world, "apps", "b-made").await.expect("team-b's KSA");
    assert_eq!(b.labels, team_b, "{b:?}");
    assert_eq!(
        b.annotations.get("iam.gke.io/gcp-service-account"),
        Some(&email("team-a-app"))
    );
    // In sync, the plan still says whose they are.
    let again = world
        .wi(&["plan", "-f", spec, "--detailed-exitcode"])
        .await
        .expect(0);
    assert!(again.stdout.contains("No changes."), "{}", again.stdout);
    assert!(
        again
            .stdout
            .contains("(exists, managed by `helm`: wi only sets its annotation)"),
        "{}",
        again.stdout
    );
    assert!(
        again
            .stdout
            .contains("(exists, owned by `team-b`: wi only sets its annotation)"),
        "{}",
        again.stdout
    );
    world.stop().await;
}

#[tokio::test]
async fn one_owners_account_declared_in_a_file_not_in_the_run_is_neither_stripped_nor_pruned() {
    let (world, _seed) = world().await;
    let first = world.write("team-a-1.yaml", &team_spec("team-a", "team-a-app", "a-api"));
    world
        .wi(&["apply", "-f", first.to_str().unwrap(), "--auto-approve"])
        .await
        .expect(0);
    assert_eq!(
        description(&world, "team-a-app").await.as_deref(),
        Some(
            "The app of the team [managed-by: wi owner=team-a] [wi.dev/declared-in: team-a-1.yaml]"
        ),
        "the account records its file"
    );
    // team-a's second file declares only an account, no cluster: no KSA of
    // the first file is in sight, only the account's own record.
    let second = world.write(
        "team-a-2.yaml",
        "version: 1\nowner: team-a\nserviceAccounts:\n  - name: team-a-jobs\n    project: wi-teams\n",
    );
    let second = second.to_str().unwrap();
    for prune in [false, true] {
        let mut args = vec!["plan", "-f", second];
        if prune {
            args.push("--prune");
        }
        let plan = world.wi(&args).await.expect(1);
        let flat: String = plan.stderr.split_whitespace().collect();
        assert!(
            flat.contains(
                "team-a-app@wi-teams.iam.gserviceaccount.comis`team-a`'s,declaredinteam-a-1.yaml"
            ),
            "{}",
            plan.stderr
        );
        if prune {
            assert_output_snapshot!("owners_one_owner_account_in_another_file", plan);
        }
    }
    world
        .wi(&["apply", "-f", second, "--prune", "--auto-approve"])
        .await
        .expect(1);
    assert_team_intact(&world, "team-a", "team-a-app", "a-api").await;
    assert_eq!(
        description(&world, "team-a-jobs").await,
        None,
        "nothing applied"
    );
    // Both files of the owner together are one set: nothing is in the way.
    let both = world
        .wi(&[
            "plan",
            "-f",
            first.to_str().unwrap(),
            "-f",
            second,
            "--prune",
            "--json",
        ])
        .await
        .expect(0);
    assert_eq!(
        actions(&json_plan(&both)),
        vec![(
            "google_service_account[\"wi-teams/team-a-jobs\"]".to_string(),
            "create".to_string()
        )]
    );
    // The first file still plans nothing: the account is its own.
    let again = world
        .wi(&[
            "plan",
            "-f",
            first.to_str().unwrap(),
            "--prune",
            "--detailed-exitcode",
        ])
        .await
        .expect(0);
    assert!(again.stdout.contains("No changes."), "{}", again.stdout);
    world.stop().await;
}

/// The compute default account of project `wi-teams` (its number in the test).
const COMPUTE_DEFAULT: &str = "123456789012-compute@developer.gserviceaccount.com";

/// A world whose IAM holds [`COMPUTE_DEFAULT`], a Google-managed account the
/// seed format cannot name: seeded as a user-managed stub, persisted, and
/// renamed in the state file before the emulator starts again.
async fn world_with_compute_default(members: &[String]) -> (TestWorld, tempfile::TempDir) {
    let dir = tempfile::tempdir().expect("seed dir");
    let listed: String = members
        .iter()
        .map(|m| format!("              - \"{m}\"\n"))
        .collect();
    let seed = SEED.replace(
        "      - accountId: shared-sa\n",
        &format!(
            "      - accountId: compute-stub\n        iamPolicy:\n          - role: roles/iam.workloadIdentityUser\n            members:\n{listed}      - accountId: shared-sa\n"
        ),
    );
    let seed_path = dir.path().join("seed.yaml");
    std::fs::write(&seed_path, seed).expect("seed");
    let state = dir.path().join("state.json");
    let seed_path = seed_path.to_str().expect("utf-8 path").to_string();
    let with_state = |c: &mut wi::emulator::EmulatorConfig| c.state_file = Some(state.clone());
    let first = TestWorld::start_with(&seed_path, with_state).await;
    // Any write persists the world.
    let gcp = first.gcp().await;
    gcp.modify_iam_policy(
        &wi::gcp::PolicyTarget::Project {
            project: PROJECT.into(),
        },
        std::time::Duration::from_secs(30),
        &|p: &mut wi::gcp::types::IamPolicy| {
            p.bindings.push(wi::gcp::types::Binding {
                role: "roles/viewer".into(),
                members: vec!["user:bob@example.com".into()],
                condition: None,
                rest: Default::default(),
            });
            true
        },
    )
    .await
    .expect("a write");
    first.stop().await;
    let mut world: Value =
        serde_json::from_slice(&std::fs::read(&state).expect("state file")).expect("state JSON");
    let accounts = world["service_accounts"]
        .as_object_mut()
        .expect("service_accounts");
    let mut stub = accounts
        .shift_remove(&email("compute-stub"))
        .expect("the stub account");
    stub["email"] = Value::from(COMPUTE_DEFAULT);
    accounts.insert(COMPUTE_DEFAULT.to_string(), stub);
    std::fs::write(&state, serde_json::to_vec(&world).expect("JSON")).expect("state file");
    let world = TestWorld::start_with(&seed_path, with_state).await;
    (world, dir)
}

#[tokio::test]
async fn an_absent_member_is_removed_from_the_compute_default_account() {
    let old = member("old", "job");
    let (world, _dir) =
        world_with_compute_default(&[old.clone(), "user:alice@example.com".to_string()]).await;
    let spec = format!(
        "version: 1\n{CLUSTERS}mappings:\n  - serviceAccount: {COMPUTE_DEFAULT}\n    clusters: [shared]\n    namespace: batch\n    ksa: nightly\nabsent:\n  - serviceAccount: {COMPUTE_DEFAULT}\n    member: \"{old}\"\n"
    );
    let spec = world.write("compute.yaml", &spec);
    let spec = spec.to_str().unwrap();
    let plan = world.wi(&["plan", "-f", spec, "--json"]).await.expect(0);
    let plan = json_plan(&plan);
    let binding = |m: &str| {
        format!(
            "service_account_iam_member[\"{COMPUTE_DEFAULT}/roles/iam.workloadIdentityUser/{m}\"]"
        )
    };
    let planned = actions(&plan);
    assert!(
        planned.contains(&(binding(&member("batch", "nightly")), "create".into())),
        "{planned:?}"
    );
    assert!(
        planned.contains(&(binding(&old), "delete".into())),
        "{planned:?}"
    );
    assert!(
        !planned.iter().any(|(a, _)| a.contains("alice")),
        "a member nobody lists under absent stays: {planned:?}"
    );
    for c in plan["resource_changes"].as_array().unwrap() {
        let address = c["address"].as_str().unwrap_or_default();
        assert!(!address.starts_with("project_service[\"-"), "{address}");
        if address.starts_with("service_account_iam_member") {
            assert_eq!(c["resource"]["project"], "-", "{c}");
        }
    }
    world
        .wi(&["apply", "-f", spec, "--auto-approve"])
        .await
        .expect(0);
    let gcp = world.gcp().await;
    let policy = gcp
        .get_service_account_iam_policy(COMPUTE_DEFAULT)
        .await
        .expect("policy");
    let mut members: Vec<String> = policy
        .bindings
        .iter()
        .filter(|b| b.role == wi::ownership::WORKLOAD_IDENTITY_USER)
        .flat_map(|b| b.members.clone())
        .collect();
    members.sort();
    assert_eq!(
        members,
        vec![
            member("batch", "nightly"),
            "user:alice@example.com".to_string()
        ]
    );
    let again = world
        .wi(&["plan", "-f", spec, "--detailed-exitcode"])
        .await
        .expect(0);
    assert!(again.stdout.contains("No changes."), "{}", again.stdout);
    world.stop().await;
}
