//! The two reference call patterns the benchmark reads the same fleet with,
//! against the same emulator, over real HTTPS (also included by
//! `tests/engine/bench_calls.rs`):
//!
//! - **Terraform refresh**: what `terraform plan` of the same fleet written
//!   as Terraform resources does: one read per resource object, 10 in flight
//!   (Terraform's default `-parallelism`): `google_container_cluster` data
//!   sources (a GKE get each), `google_service_account` (a get each),
//!   `google_service_account_iam_member` (one getIamPolicy per member: the
//!   provider reads the whole policy to refresh one member),
//!   `kubernetes_namespace` and `kubernetes_service_account` (a get per
//!   object per cluster).
//! - **Sequential script**: the reads a careful shell script makes, one at a
//!   time: per project its IAM policy (the accounts' project-role grants),
//!   the account list (pages of 100) and per account its policy; per cluster the GKE get and lists of namespaces, service accounts
//!   (pages of 500) and host-network pods.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::StreamExt as _;
use serde_json::Value;

use super::world::Fleet;

/// Where and as whom the patterns read.
pub struct Target {
    /// `https://127.0.0.1:PORT` of the emulator's Google APIs.
    pub base: String,
    pub ca_pem: String,
    pub token: String,
}

/// What one pattern did.
#[derive(Debug, Clone)]
pub struct PatternRun {
    pub calls: u64,
    pub wall: Duration,
}

/// One read.
#[derive(Debug, Clone)]
enum Read {
    Google { method: &'static str, url: String },
    Kube { cluster: usize, path: String },
}

fn encode(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

fn client(ca_pem: &str) -> reqwest::Client {
    reqwest::Client::builder()
        .tls_certs_only([reqwest::Certificate::from_pem(ca_pem.as_bytes()).expect("CA PEM")])
        .timeout(Duration::from_secs(120))
        .pool_max_idle_per_host(64)
        .build()
        .expect("reqwest client")
}

/// A cluster's Kubernetes API as GKE describes it.
struct KubeApi {
    url: String,
    http: reqwest::Client,
}

struct Reader {
    target: Target,
    google: reqwest::Client,
    kube: Vec<Option<KubeApi>>,
    calls: std::sync::atomic::AtomicU64,
}

impl Reader {
    async fn send(&self, read: &Read) -> Value {
        use std::sync::atomic::Ordering;
        self.calls.fetch_add(1, Ordering::Relaxed);
        let req = match read {
            Read::Google { method, url } => {
                let url = format!("{}{url}", self.target.base);
                if *method == "POST" {
                    self.google
                        .post(url)
                        .header("content-type", "application/json")
                        .body("{}")
                } else {
                    self.google.get(url)
                }
            }
            Read::Kube { cluster, path } => {
                let api = self.kube[*cluster].as_ref().expect("cluster API");
                api.http.get(format!("{}{path}", api.url))
            }
        };
        let resp = req
            .bearer_auth(&self.target.token)
            .send()
            .await
            .unwrap_or_else(|e| panic!("{read:?}: {e}"));
        let code = resp.status();
        let body: Value = resp.json().await.unwrap_or(Value::Null);
        assert!(
            code.is_success() || code.as_u16() == 404,
            "{read:?} answered {code}: {body}"
        );
        body
    }

    /// GKE get of every cluster (both patterns start with it: the Kubernetes
    /// endpoints come from there).
    async fn clusters(&mut self, fleet: &Fleet, in_flight: usize) {
        let reads: Vec<Read> = fleet
            .clusters
            .iter()
            .map(|c| Read::Google {
                method: "GET",
                url: format!(
                    "/container/v1/projects/{}/locations/{}/clusters/{}",
                    c.project, c.location, c.name
                ),
            })
            .collect();
        let bodies = self.run_all(&reads, in_flight).await;
        self.kube = bodies
            .iter()
            .map(|b| {
                use base64::Engine as _;
                let endpoint = b["endpoint"].as_str()?;
                let ca = base64::engine::general_purpose::STANDARD
                    .decode(b["masterAuth"]["clusterCaCertificate"].as_str()?)
                    .ok()?;
                Some(KubeApi {
                    url: format!("https://{endpoint}"),
                    http: client(&String::from_utf8_lossy(&ca)),
                })
            })
            .collect();
    }

    async fn run_all(&self, reads: &[Read], in_flight: usize) -> Vec<Value> {
        futures::stream::iter(reads.iter().map(|r| self.send(r)))
            .buffered(in_flight.max(1))
            .collect()
            .await
    }
}

fn reader(target: Target) -> Reader {
    Reader {
        google: client(&target.ca_pem),
        target,
        kube: Vec::new(),
        calls: std::sync::atomic::AtomicU64::new(0),
    }
}

/// Terraform's refresh of the fleet: one read per resource object, `in_flight` at once.
pub async fn terraform_refresh(fleet: &Fleet, target: Target, in_flight: usize) -> PatternRun {
    let started = Instant::now();
    let mut r = reader(target);
    r.clusters(fleet, in_flight).await;
    let mut reads = Vec::new();
    for (p, id) in &fleet.gsas {
        reads.push(Read::Google {
            method: "GET",
            url: format!(
                "/iam/v1/projects/{p}/serviceAccounts/{}",
                Fleet::email(p, id)
            ),
        });
    }
    // One google_service_account_iam_member per (account, member).
    let mut members = BTreeSet::new();
    let mut namespaces = BTreeSet::new();
    for m in &fleet.mappings {
        for c in &m.clusters {
            let pool = &fleet.clusters[*c].project;
            members.insert((
                Fleet::email(&m.gsa_project, &m.gsa),
                m.gsa_project.clone(),
                format!("{pool}[{}/{}]", m.namespace, m.ksa),
            ));
            namespaces.insert((*c, m.namespace.clone()));
            reads.push(Read::Kube {
                cluster: *c,
                path: format!(
                    "/api/v1/namespaces/{}/serviceaccounts/{}",
                    m.namespace, m.ksa
                ),
            });
        }
    }
    for (email, project, _) in &members {
        reads.push(Read::Google {
            method: "POST",
            url: format!("/iam/v1/projects/{project}/serviceAccounts/{email}:getIamPolicy"),
        });
    }
    for (c, ns) in &namespaces {
        reads.push(Read::Kube {
            cluster: *c,
            path: format!("/api/v1/namespaces/{ns}"),
        });
    }
    r.run_all(&reads, in_flight).await;
    PatternRun {
        calls: r.calls.load(std::sync::atomic::Ordering::Relaxed),
        wall: started.elapsed(),
    }
}

/// A sequential script's reads of the fleet: lists where there are lists, one call at a time.
pub async fn sequential_script(fleet: &Fleet, target: Target) -> PatternRun {
    let started = Instant::now();
    let mut r = reader(target);
    r.clusters(fleet, 1).await;
    let r = Arc::new(r);
    let declared: BTreeSet<String> = fleet
        .gsas
        .iter()
        .map(|(p, id)| Fleet::email(p, id))
        .collect();
    for p in &fleet.projects {
        r.send(&Read::Google {
            method: "POST",
            url: format!("/cloudresourcemanager/v1/projects/{p}:getIamPolicy"),
        })
        .await;
        let mut token = String::new();
        loop {
            let mut url = format!("/iam/v1/projects/{p}/serviceAccounts?pageSize=100");
            if !token.is_empty() {
                url += &format!("&pageToken={}", encode(&token));
            }
            let body = r.send(&Read::Google { method: "GET", url }).await;
            for a in body["accounts"].as_array().into_iter().flatten() {
                let email = a["email"].as_str().unwrap_or_default();
                if !declared.contains(email) {
                    continue;
                }
                r.send(&Read::Google {
                    method: "POST",
                    url: format!("/iam/v1/projects/{p}/serviceAccounts/{email}:getIamPolicy"),
                })
                .await;
            }
            token = body["nextPageToken"]
                .as_str()
                .unwrap_or_default()
                .to_string();
            if token.is_empty() {
                break;
            }
        }
    }
    for c in 0..fleet.clusters.len() {
        r.send(&Read::Kube {
            cluster: c,
            path: "/api/v1/namespaces".into(),
        })
        .await;
        let mut cont = String::new();
        loop {
            let mut path = "/api/v1/serviceaccounts?limit=500".to_string();
            if !cont.is_empty() {
                path += &format!("&continue={}", encode(&cont));
            }
            let body = r.send(&Read::Kube { cluster: c, path }).await;
            cont = body["metadata"]["continue"]
                .as_str()
                .unwrap_or_default()
                .to_string();
            if cont.is_empty() {
                break;
            }
        }
        r.send(&Read::Kube {
            cluster: c,
            path: "/api/v1/pods?fieldSelector=spec.hostNetwork%3Dtrue".into(),
        })
        .await;
    }
    PatternRun {
        calls: r.calls.load(std::sync::atomic::Ordering::Relaxed),
        wall: started.elapsed(),
    }
}
