//! The synthetic fleet of the benchmark (and of `tests/engine/bench_calls.rs`,
//! which includes this file): a `wi` spec and the emulator seed of a world in
//! which most of it is already applied.
//!
//! Shape for `mappings = N` (the default N = 1,000 is the fleet of issue 14):
//! 5 projects, 20 clusters with 2 node pools each (fewer for tiny N),
//! N / 2 Google service accounts, N mappings of one KSA each on 3 clusters
//! (3 N KSA placements), one running pod per placement and 2 host-network
//! pods per cluster. A fifth of the mappings are drifted: half of those miss
//! their KSAs (the IAM binding is there), half their IAM members (the KSAs are
//! there). Everything else is as `wi apply` leaves it: accounts carry the
//! ownership marker, members sit on `roles/iam.workloadIdentityUser`, KSAs and
//! namespaces are server-side applied by field manager `wi`.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;

/// The sizes of a fleet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shape {
    pub mappings: usize,
    pub projects: usize,
    pub clusters: usize,
    pub pools: usize,
    pub gsas: usize,
    /// Clusters each mapping places its KSA on.
    pub spread: usize,
    /// Namespaces per cluster the KSAs live in.
    pub namespaces: usize,
    /// One mapping in `drift_every` is drifted.
    pub drift_every: usize,
}

impl Shape {
    /// The fleet of issue 14 scaled to `mappings`.
    pub fn for_mappings(mappings: usize) -> Shape {
        let mappings = mappings.max(1);
        let clusters = (mappings / 5).clamp(3, 20);
        Shape {
            mappings,
            projects: 5.min(clusters),
            clusters,
            pools: 2,
            gsas: (mappings / 2).max(1),
            spread: 3,
            namespaces: (mappings / 20).clamp(1, 50),
            drift_every: 5,
        }
    }

    /// KSA placements (mappings × spread).
    pub fn placements(&self) -> usize {
        self.mappings * self.spread
    }
}

/// One cluster of the fleet.
#[derive(Debug, Clone)]
pub struct Cluster {
    pub project: String,
    pub location: String,
    pub name: String,
}

/// One mapping: a KSA on some clusters acting as one account.
#[derive(Debug, Clone)]
pub struct Mapping {
    pub gsa: String,
    pub gsa_project: String,
    pub clusters: Vec<usize>,
    pub namespace: String,
    pub ksa: String,
    /// The KSAs are missing (the IAM members are there).
    pub ksa_missing: bool,
    /// The IAM members are missing (the KSAs are there).
    pub members_missing: bool,
}

/// A generated fleet: its spec, its seed and what both are made of.
#[derive(Debug, Clone)]
pub struct Fleet {
    pub shape: Shape,
    pub projects: Vec<String>,
    pub clusters: Vec<Cluster>,
    /// `(project, account id)` of each Google service account.
    pub gsas: Vec<(String, String)>,
    pub mappings: Vec<Mapping>,
}

impl Fleet {
    pub fn generate(shape: Shape) -> Fleet {
        let projects: Vec<String> = (0..shape.projects).map(|p| format!("fleet-p{p}")).collect();
        let zones = [
            "us-central1-a",
            "us-east1-b",
            "europe-west1-c",
            "asia-east1-a",
        ];
        let clusters = (0..shape.clusters)
            .map(|c| Cluster {
                project: projects[c % shape.projects].clone(),
                location: zones[c % zones.len()].to_string(),
                name: format!("c{c:02}"),
            })
            .collect();
        let gsas: Vec<(String, String)> = (0..shape.gsas)
            .map(|g| (projects[g % shape.projects].clone(), format!("gsa-{g:05}")))
            .collect();
        let step = (shape.clusters / shape.spread).max(1);
        let mappings = (0..shape.mappings)
            .map(|i| {
                let (gsa_project, gsa) = gsas[i % shape.gsas].clone();
                // Drift picked by `i / projects`, not `i`: `i` and the account
                // `i % gsas` share their residue mod `projects`, so every
                // drifted mapping's account would sit in the first project.
                let round = i / shape.projects;
                let drifted = round.is_multiple_of(shape.drift_every);
                Mapping {
                    gsa,
                    gsa_project,
                    clusters: (0..shape.spread)
                        .map(|k| (i + k * step) % shape.clusters)
                        .collect(),
                    namespace: format!("team-{:02}", i % shape.namespaces),
                    ksa: format!("app-{i:05}"),
                    ksa_missing: drifted && (round / shape.drift_every).is_multiple_of(2),
                    members_missing: drifted && !(round / shape.drift_every).is_multiple_of(2),
                }
            })
            .collect();
        Fleet {
            shape,
            projects,
            clusters,
            gsas,
            mappings,
        }
    }

    pub fn email(project: &str, id: &str) -> String {
        format!("{id}@{project}.iam.gserviceaccount.com")
    }

    /// The `wi` spec (YAML).
    pub fn spec(&self) -> String {
        let mut s = String::from("version: 1\nclusters:\n");
        for c in &self.clusters {
            let _ = writeln!(
                s,
                "  - {{name: {}, project: {}, location: {}}}",
                c.name, c.project, c.location
            );
        }
        s += "serviceAccounts:\n";
        for (p, id) in &self.gsas {
            let _ = writeln!(s, "  - {{name: {id}, project: {p}}}");
        }
        s += "mappings:\n";
        for m in &self.mappings {
            let clusters: Vec<&str> = m
                .clusters
                .iter()
                .map(|c| self.clusters[*c].name.as_str())
                .collect();
            let _ = writeln!(
                s,
                "  - {{serviceAccount: {}, clusters: [{}], namespace: {}, ksa: {}}}",
                Self::email(&m.gsa_project, &m.gsa),
                clusters.join(", "),
                m.namespace,
                m.ksa
            );
        }
        s
    }

    /// The IAM members of each account's `roles/iam.workloadIdentityUser` binding, as applied.
    pub fn applied_members(&self) -> BTreeMap<String, BTreeSet<String>> {
        let mut out: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
        for m in &self.mappings {
            if m.members_missing {
                continue;
            }
            for c in &m.clusters {
                let pool = &self.clusters[*c].project;
                out.entry(Self::email(&m.gsa_project, &m.gsa))
                    .or_default()
                    .insert(format!(
                        "serviceAccount:{pool}.svc.id.goog[{}/{}]",
                        m.namespace, m.ksa
                    ));
            }
        }
        out
    }

    /// The emulator seed (YAML) of the world with everything but the drift applied.
    pub fn seed(&self) -> String {
        let members = self.applied_members();
        let mut s = format!("defaultProject: {}\nprojects:\n", self.projects[0]);
        for p in &self.projects {
            let _ = writeln!(
                s,
                "  - id: {p}\n    enableServices: [iamcredentials.googleapis.com]\n    serviceAccounts:"
            );
            for (gp, id) in self.gsas.iter().filter(|(gp, _)| gp == p) {
                let email = Self::email(gp, id);
                let _ = writeln!(
                    s,
                    "      - {{accountId: {id}, description: \"[managed-by: wi]\""
                );
                match members.get(&email) {
                    Some(ms) => {
                        let list: Vec<String> = ms.iter().map(|m| format!("\"{m}\"")).collect();
                        let _ = writeln!(
                            s,
                            "         , iamPolicy: [{{role: roles/iam.workloadIdentityUser, members: [{}]}}]}}",
                            list.join(", ")
                        );
                    }
                    None => s += "        }\n",
                }
            }
            s += "    clusters:\n";
            for (ci, c) in self
                .clusters
                .iter()
                .enumerate()
                .filter(|(_, c)| &c.project == p)
            {
                let _ = writeln!(
                    s,
                    "      - name: {}\n        location: {}\n        workloadPool: {p}.svc.id.goog\n        nodePools: [{}]\n        kubernetesFieldManager: wi\n        kubernetes:",
                    c.name,
                    c.location,
                    (0..self.shape.pools)
                        .map(|k| format!("{{name: pool-{k}, workloadMetadataMode: GKE_METADATA}}"))
                        .collect::<Vec<_>>()
                        .join(", ")
                );
                self.cluster_objects(ci, &mut s);
            }
        }
        s
    }

    /// The Kubernetes objects of cluster `ci`, as seed lines (flow style, one per line).
    fn cluster_objects(&self, ci: usize, s: &mut String) {
        let here: Vec<&Mapping> = self
            .mappings
            .iter()
            .filter(|m| m.clusters.contains(&ci))
            .collect();
        let namespaces: BTreeSet<&str> = here.iter().map(|m| m.namespace.as_str()).collect();
        for ns in &namespaces {
            let _ = writeln!(
                s,
                "          - {{apiVersion: v1, kind: Namespace, metadata: {{name: {ns}, labels: {{app.kubernetes.io/managed-by: wi}}}}}}"
            );
        }
        for m in &here {
            if m.ksa_missing {
                continue;
            }
            let _ = writeln!(
                s,
                "          - {{apiVersion: v1, kind: ServiceAccount, metadata: {{name: {}, namespace: {}, labels: {{app.kubernetes.io/managed-by: wi}}, annotations: {{iam.gke.io/gcp-service-account: {}}}}}}}",
                m.ksa,
                m.namespace,
                Self::email(&m.gsa_project, &m.gsa)
            );
        }
        // Pods (seeded by the same manager: wi reads them, never writes them).
        for m in &here {
            if m.ksa_missing {
                continue;
            }
            let _ = writeln!(
                s,
                "          - {{apiVersion: v1, kind: Pod, metadata: {{name: {}-0, namespace: {}}}, spec: {{serviceAccountName: {}, containers: [{{name: app, image: example.com/app:1}}]}}}}",
                m.ksa, m.namespace, m.ksa
            );
        }
        for k in 0..2 {
            let _ = writeln!(
                s,
                "          - {{apiVersion: v1, kind: Pod, metadata: {{name: node-agent-{k}, namespace: kube-system}}, spec: {{hostNetwork: true, containers: [{{name: agent, image: example.com/agent:1}}]}}}}"
            );
        }
    }
}
