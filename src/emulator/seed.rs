//! `--seed FILE`: a readable YAML description of a starting world (projects,
//! service accounts, policies, clusters with node pools, Kubernetes objects).
//! See `examples/emulator.seed.yaml` for a documented example.

use serde::Deserialize;
use serde_json::{Value, json};

use super::google::{gke, policy, serviceusage};
use super::kube::{ClusterIdentity, KubeClusterState};
use super::world::{EmulatorWorld, IamPolicyRecord, cluster_key};
use super::world::{new_project, new_service_account};

/// The whole seed file.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub(crate) struct Seed {
    /// Project exported as `CLOUDSDK_CORE_PROJECT` (default: the first project).
    #[serde(default)]
    pub default_project: Option<String>,
    pub projects: Vec<SeedProject>,
}

impl Seed {
    /// The project to export.
    pub(crate) fn default_project(&self) -> Option<&str> {
        self.default_project
            .as_deref()
            .or_else(|| self.projects.first().map(|p| p.id.as_str()))
    }
}

/// A project.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub(crate) struct SeedProject {
    pub id: String,
    /// Project number (digits); random when omitted.
    #[serde(default)]
    pub number: Option<String>,
    /// Services enabled besides the defaults (e.g. `iamcredentials.googleapis.com`).
    #[serde(default)]
    pub enable_services: Vec<String>,
    /// Bindings added to the project's IAM policy.
    #[serde(default)]
    pub iam_policy: Vec<SeedBinding>,
    #[serde(default)]
    pub service_accounts: Vec<SeedServiceAccount>,
    #[serde(default)]
    pub clusters: Vec<SeedCluster>,
}

/// One IAM binding.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct SeedBinding {
    pub role: String,
    pub members: Vec<String>,
    #[serde(default)]
    pub condition: Option<SeedCondition>,
}

/// An IAM condition.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct SeedCondition {
    pub title: String,
    #[serde(default)]
    pub description: Option<String>,
    pub expression: String,
}

/// A Google service account.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub(crate) struct SeedServiceAccount {
    pub account_id: String,
    #[serde(default)]
    pub display_name: Option<String>,
    #[serde(default)]
    pub description: Option<String>,
    #[serde(default)]
    pub disabled: bool,
    /// Bindings of the account's own IAM policy.
    #[serde(default)]
    pub iam_policy: Vec<SeedBinding>,
}

/// A GKE cluster.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub(crate) struct SeedCluster {
    pub name: String,
    /// Zone (`us-central1-a`) or region.
    pub location: String,
    /// `PROJECT.svc.id.goog` turns Workload Identity on.
    #[serde(default)]
    pub workload_pool: Option<String>,
    #[serde(default)]
    pub node_pools: Vec<SeedNodePool>,
    /// Kubernetes objects (Namespace, ServiceAccount, Pod) created in the cluster.
    #[serde(default)]
    pub kubernetes: Vec<Value>,
    /// When set, the objects of `kubernetes` are server-side applied by this
    /// field manager (`wi`: as if `wi apply` had written them) instead of
    /// created by `kubectl-create`.
    #[serde(default)]
    pub kubernetes_field_manager: Option<String>,
}

/// A node pool.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub(crate) struct SeedNodePool {
    pub name: String,
    #[serde(default = "one")]
    pub node_count: i64,
    /// `GKE_METADATA` or `GCE_METADATA`; omitted: GKE's default (GKE_METADATA with Workload Identity).
    #[serde(default)]
    pub workload_metadata_mode: Option<String>,
}

fn one() -> i64 {
    1
}

/// The parser's limits for seed files. A seed is the operator's own file,
/// not untrusted input, and a fleet-sized world (10,000 mappings with their
/// Kubernetes objects: about a million YAML nodes) is far past the parser's
/// defaults (250,000 nodes); these limits still stop a runaway file (alias
/// bombs, deep nesting) before it eats the machine.
fn seed_options() -> serde_saphyr::Options {
    let budget = serde_saphyr::budget! {
        max_depth: 64,
        max_nodes: 20_000_000,
        max_events: 40_000_000,
        max_total_scalar_bytes: 1 << 30,
        max_aliases: 10_000,
        max_anchors: 10_000,
        max_documents: 1,
    };
    serde_saphyr::options! {
        budget: budget,
    }
}

/// Parses a seed file.
pub(crate) fn parse(text: &str) -> Result<Seed, String> {
    let seed: Seed =
        serde_saphyr::from_str_with_options(text, seed_options()).map_err(|e| e.to_string())?;
    if seed.projects.is_empty() {
        return Err("`projects` must list at least one project".into());
    }
    Ok(seed)
}

fn bindings_json(bindings: &[SeedBinding]) -> Value {
    let list: Vec<Value> = bindings
        .iter()
        .map(|b| {
            let mut v = json!({"role": b.role, "members": b.members});
            if let Some(c) = &b.condition {
                v["condition"] = json!({"title": c.title, "expression": c.expression});
                if let Some(d) = &c.description {
                    v["condition"]["description"] = json!(d);
                }
            }
            v
        })
        .collect();
    let version = if bindings.iter().any(|b| b.condition.is_some()) {
        3
    } else {
        1
    };
    json!({"policy": {"version": version, "bindings": list}})
}

fn merged_policy(
    world: &EmulatorWorld,
    current: &IamPolicyRecord,
    extra: &[SeedBinding],
    now: i64,
    what: &str,
) -> Result<IamPolicyRecord, String> {
    let mut body = bindings_json(extra);
    let mut all = current.bindings.clone();
    if let Some(b) = body["policy"]["bindings"].as_array() {
        all.extend(b.iter().cloned());
    }
    body["policy"]["bindings"] = Value::Array(all);
    policy::set_policy(world, current, &body, now).map_err(|e| format!("{what}: {}", e.message))
}

/// Progress on stderr while a large world is seeded (quiet for small ones).
struct Progress {
    started: std::time::Instant,
    clusters: usize,
    done: std::sync::atomic::AtomicUsize,
    on: bool,
}

/// Seeds with more objects than this report their progress.
const PROGRESS_OBJECTS: usize = 10_000;
/// ... and so do seeds with more clusters than this (each one's key material takes time).
const PROGRESS_CLUSTERS: usize = 10;

impl Progress {
    fn new(seed: &Seed) -> Progress {
        let clusters: Vec<&SeedCluster> = seed.projects.iter().flat_map(|p| &p.clusters).collect();
        let objects: usize = clusters.iter().map(|c| c.kubernetes.len()).sum::<usize>()
            + seed
                .projects
                .iter()
                .map(|p| p.service_accounts.len())
                .sum::<usize>();
        let on = objects > PROGRESS_OBJECTS || clusters.len() > PROGRESS_CLUSTERS;
        if on {
            eprintln!(
                "seeding a large world: {} service accounts, {} clusters, {} Kubernetes objects",
                seed.projects
                    .iter()
                    .map(|p| p.service_accounts.len())
                    .sum::<usize>(),
                clusters.len(),
                clusters.iter().map(|c| c.kubernetes.len()).sum::<usize>()
            );
        }
        Progress {
            started: std::time::Instant::now(),
            clusters: clusters.len(),
            done: std::sync::atomic::AtomicUsize::new(0),
            on,
        }
    }

    fn finish(&self) {
        if self.on {
            eprintln!("  seeded in {:.1} s", self.started.elapsed().as_secs_f64());
        }
    }

    fn cluster(&self, key: &str, objects: usize) {
        let done = self.done.fetch_add(1, std::sync::atomic::Ordering::SeqCst) + 1;
        if self.on {
            eprintln!(
                "  [{done}/{}] {key}: {objects} objects ({:.1} s)",
                self.clusters,
                self.started.elapsed().as_secs_f64()
            );
        }
    }
}

/// Each cluster's Kubernetes state: its key material and seeded objects.
/// Clusters are independent, so they are built on all cores (a fleet-sized
/// world's start is mostly this); the first error in seed order wins.
fn seed_clusters(
    jobs: &[(String, ClusterIdentity, &SeedCluster)],
    progress: &Progress,
) -> Result<Vec<(String, KubeClusterState)>, String> {
    let build = |(key, identity, c): &(String, ClusterIdentity, &SeedCluster)| {
        let mut state = KubeClusterState::generate(identity);
        for (i, obj) in c.kubernetes.iter().enumerate() {
            match &c.kubernetes_field_manager {
                Some(m) => state.apply_object(obj.clone(), m),
                None => state.insert_object(obj.clone()),
            }
            .map_err(|e| format!("cluster {}, kubernetes[{i}]: {e}", c.name))?;
        }
        progress.cluster(key, c.kubernetes.len());
        Ok::<_, String>(state)
    };
    let workers = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1)
        .min(jobs.len());
    let next = std::sync::atomic::AtomicUsize::new(0);
    let results: std::sync::Mutex<Vec<Option<Result<KubeClusterState, String>>>> =
        std::sync::Mutex::new((0..jobs.len()).map(|_| None).collect());
    std::thread::scope(|scope| {
        for _ in 0..workers {
            scope.spawn(|| {
                loop {
                    let i = next.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                    let Some(job) = jobs.get(i) else {
                        break;
                    };
                    let r = build(job);
                    results.lock().unwrap_or_else(|e| e.into_inner())[i] = Some(r);
                }
            });
        }
    });
    let results = results.into_inner().unwrap_or_else(|e| e.into_inner());
    jobs.iter()
        .zip(results)
        .map(|((key, _, _), r)| {
            let state = r.ok_or_else(|| format!("cluster {key}: not seeded"))??;
            Ok((key.clone(), state))
        })
        .collect()
}

/// Applies a seed to a fresh world (the admin identities already exist).
pub(crate) fn apply(seed: &Seed, world: &mut EmulatorWorld, now: i64) -> Result<(), String> {
    let progress = Progress::new(seed);
    // Projects and services.
    for p in &seed.projects {
        if let Some(n) = &p.number
            && (n.is_empty() || !n.chars().all(|c| c.is_ascii_digit()))
        {
            return Err(format!("project {}: number must be digits", p.id));
        }
        let mut project = match world.projects.get(&p.id) {
            Some(existing) => existing.clone(),
            None => new_project(world, &p.id, p.number.clone(), now),
        };
        if let Some(n) = &p.number {
            project.number = n.clone();
        }
        for s in &p.enable_services {
            if serviceusage::title(s).is_none() {
                return Err(format!("project {}: unknown service {s}", p.id));
            }
            project.services.insert(s.clone());
        }
        world.projects.insert(p.id.clone(), project);
    }
    // Service accounts.
    for p in &seed.projects {
        for sa in &p.service_accounts {
            let email = format!("{}@{}.iam.gserviceaccount.com", sa.account_id, p.id);
            if world.service_accounts.contains_key(&email) {
                return Err(format!("service account {email} is listed twice"));
            }
            let mut record = new_service_account(
                &p.id,
                &sa.account_id,
                sa.display_name.clone(),
                sa.description.clone(),
                now,
                now,
            );
            record.disabled = sa.disabled;
            world.service_accounts.insert(email, record);
        }
    }
    // Clusters (they create workload pools); their Kubernetes objects below.
    let mut jobs: Vec<(String, ClusterIdentity, &SeedCluster)> = Vec::new();
    for p in &seed.projects {
        for c in &p.clusters {
            let pools: Vec<(String, i64, Option<String>)> = if c.node_pools.is_empty() {
                vec![("default-pool".into(), 1, None)]
            } else {
                c.node_pools
                    .iter()
                    .map(|np| {
                        (
                            np.name.clone(),
                            np.node_count,
                            np.workload_metadata_mode.clone(),
                        )
                    })
                    .collect()
            };
            for (name, _, mode) in &pools {
                if let Some(m) = mode
                    && m != "GKE_METADATA"
                    && m != "GCE_METADATA"
                {
                    return Err(format!(
                        "cluster {}, node pool {name}: workloadMetadataMode must be GKE_METADATA or GCE_METADATA",
                        c.name
                    ));
                }
            }
            let cluster = gke::seeded_cluster(
                &p.id,
                &c.location,
                &c.name,
                c.workload_pool.as_deref(),
                &pools,
                now,
            )?;
            let key = cluster_key(&p.id, &c.location, &c.name);
            if world.clusters.contains_key(&key) {
                return Err(format!("cluster {key} is listed twice"));
            }
            if c.workload_pool.is_some()
                && let Some(proj) = world.projects.get_mut(&p.id)
            {
                proj.workload_pool_exists = true;
            }
            let identity = ClusterIdentity {
                project: p.id.clone(),
                location: c.location.clone(),
                name: c.name.clone(),
            };
            jobs.push((key.clone(), identity, c));
            world.clusters.insert(key, cluster);
        }
    }
    for (key, state) in seed_clusters(&jobs, &progress)? {
        world.kube.insert(key, state);
    }
    // Policies last: members may name accounts and pools created above.
    for p in &seed.projects {
        if !p.iam_policy.is_empty() {
            let current = world.projects[&p.id].policy.clone();
            let next = merged_policy(
                world,
                &current,
                &p.iam_policy,
                now,
                &format!("project {} iamPolicy", p.id),
            )?;
            if let Some(proj) = world.projects.get_mut(&p.id) {
                proj.policy = next;
            }
        }
        for sa in &p.service_accounts {
            if sa.iam_policy.is_empty() {
                continue;
            }
            let email = format!("{}@{}.iam.gserviceaccount.com", sa.account_id, p.id);
            let next = merged_policy(
                world,
                &IamPolicyRecord::empty(),
                &sa.iam_policy,
                now,
                &format!("service account {email} iamPolicy"),
            )?;
            if let Some(s) = world.service_accounts.get_mut(&email) {
                s.policy = next;
            }
        }
    }
    progress.finish();
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const SEED: &str = r#"
projects:
  - id: demo-proj
    number: "123456789012"
    enableServices: [iamcredentials.googleapis.com]
    serviceAccounts:
      - accountId: app-reader
        displayName: App reader
        iamPolicy:
          - role: roles/iam.workloadIdentityUser
            members: ["serviceAccount:demo-proj.svc.id.goog[team-a/app]"]
    clusters:
      - name: alpha
        location: us-central1-a
        workloadPool: demo-proj.svc.id.goog
        nodePools:
          - name: pool-1
            nodeCount: 2
        kubernetes:
          - apiVersion: v1
            kind: Namespace
            metadata: {name: team-a}
"#;

    #[test]
    fn seed_roundtrip() {
        let seed = parse(SEED).unwrap();
        let mut world = EmulatorWorld {
            default_project: "demo-proj".into(),
            ..EmulatorWorld::default()
        };
        apply(&seed, &mut world, 0).unwrap();
        let p = &world.projects["demo-proj"];
        assert_eq!(p.number, "123456789012");
        assert!(p.workload_pool_exists);
        assert!(p.services.contains("iamcredentials.googleapis.com"));
        let sa = &world.service_accounts["app-reader@demo-proj.iam.gserviceaccount.com"];
        assert_eq!(sa.policy.bindings.len(), 1);
        assert!(world.clusters.contains_key("demo-proj/us-central1-a/alpha"));
    }

    #[test]
    fn a_fleet_sized_seed_is_within_the_seed_limits() {
        // 300,000 YAML nodes: past the parser's default budget (250,000).
        let members = vec!["a"; 300_000].join(",");
        let text = format!(
            "projects:\n  - id: p\n    iamPolicy:\n      - role: roles/viewer\n        members: [{members}]\n"
        );
        let seed = parse(&text).expect("parses");
        assert_eq!(seed.projects[0].iam_policy[0].members.len(), 300_000);
    }

    #[test]
    fn seed_errors_are_readable() {
        assert!(parse("projects: []").unwrap_err().contains("at least one"));
        assert!(parse("projects:\n  - id: p\n    bogus: 1\n").is_err());
        let bad_pool = "projects:\n  - id: p1\n    serviceAccounts:\n      - accountId: abcdef\n        iamPolicy:\n          - role: roles/iam.workloadIdentityUser\n            members: [\"serviceAccount:p1.svc.id.goog[a/b]\"]\n";
        let seed = parse(bad_pool).unwrap();
        let mut world = EmulatorWorld::default();
        let err = apply(&seed, &mut world, 0).unwrap_err();
        assert!(err.contains("Identity Pool does not exist"), "{err}");
    }
}
