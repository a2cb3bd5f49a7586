//! Apply: run exactly the plan's steps, in dependency order, independent
//! steps concurrently, against the same clients `live` reads with.
//!
//! Every write converges: IAM is read-modify-write with the etag (only `wi`'s
//! own member edits are re-applied on a conflict), Kubernetes objects are
//! server-side applied with field manager `wi`, "already exists" is success
//! when it is what the plan wanted. A failed step stops only its dependents.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::Value;
use tokio::sync::{Mutex, watch};
use tokio::task::JoinSet;

use crate::gcp::types::{Binding, Cluster, Policy};
use crate::gcp::{GcpClient, GcpError, PolicyTarget};
use crate::ids::ClusterKey;
use crate::kube::{ClusterConnection, KubeError};
use crate::live::LiveState;
use crate::ownership::{FIELD_MANAGER, GSA_ANNOTATION, MANAGED_BY_LABEL, is_owned};
use crate::plan::{Action, Plan, Resource, ResourceChange};

/// How apply runs.
#[derive(Debug, Clone)]
pub struct ApplyOptions {
    pub parallelism: usize,
    /// Take over Kubernetes fields owned by another field manager.
    pub force_conflicts: bool,
    /// Total time one step may take, retries and eventual-consistency waits included.
    pub step_deadline: Duration,
    /// Total time to wait for one GKE operation.
    pub operation_deadline: Duration,
}

impl Default for ApplyOptions {
    fn default() -> Self {
        Self {
            parallelism: 16,
            force_conflicts: false,
            step_deadline: Duration::from_secs(600),
            operation_deadline: Duration::from_secs(3600),
        }
    }
}

/// What happened to one planned change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Done,
    Failed(String),
    /// Not run: a dependency failed, or apply was interrupted first.
    Skipped(String),
}

/// A step that completed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StepOutcome {
    /// The change's address.
    pub address: String,
    /// What was done (`Create`, `Update` or `Delete`).
    pub action: Action,
    /// How long the step took, waits for operations included.
    pub elapsed: Duration,
}

/// The result of an apply, in plan order: what took effect, what failed and
/// why, and what was not attempted (`render::apply_summary` says it).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ApplyResult {
    /// Steps that completed.
    pub done: Vec<StepOutcome>,
    /// `(address, error message)` of steps that failed.
    pub failed: Vec<(String, String)>,
    /// `(address, reason)` of steps not attempted (a dependency failed, or
    /// the apply was interrupted).
    pub skipped: Vec<(String, String)>,
    /// Ctrl-C arrived: no new steps were started after it.
    pub interrupted: bool,
}

/// Counts of completed steps per action.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ApplyCounts {
    /// Completed creates.
    pub added: usize,
    /// Completed in-place updates.
    pub changed: usize,
    /// Completed deletes.
    pub destroyed: usize,
}

impl ApplyResult {
    /// True when every step ran and none failed.
    pub fn succeeded(&self) -> bool {
        self.failed.is_empty() && self.skipped.is_empty() && !self.interrupted
    }

    /// Counts of completed creates, updates and deletes.
    pub fn counts(&self) -> ApplyCounts {
        let mut c = ApplyCounts::default();
        for s in &self.done {
            match s.action {
                Action::Create => c.added += 1,
                Action::Update => c.changed += 1,
                Action::Delete => c.destroyed += 1,
                Action::NoOp => {}
            }
        }
        c
    }

    /// Shim until the CLI and tests adapt: the result is the report.
    #[doc(hidden)]
    pub fn report(&self) -> &Self {
        self
    }
}

/// Progress reporting, on stderr for the CLI.
pub trait Progress: Send + Sync {
    fn started(&self, change: &ResourceChange);
    fn note(&self, address: &str, message: &str);
    fn finished(&self, change: &ResourceChange, outcome: &Outcome, elapsed: Duration);
}

/// A progress sink that says nothing (tests, JSON mode).
pub struct SilentProgress;
impl Progress for SilentProgress {
    fn started(&self, _: &ResourceChange) {}
    fn note(&self, _: &str, _: &str) {}
    fn finished(&self, _: &ResourceChange, _: &Outcome, _: Duration) {}
}

/// What one finished step reports: its address, outcome and duration.
type StepResult = (String, Outcome, Duration);

/// The unit of execution: one change, or all member edits of one IAM policy
/// (so a 200-mapping apply does one read-modify-write per policy, not 200).
#[derive(Debug, Clone)]
struct Task {
    id: String,
    changes: Vec<ResourceChange>,
    depends_on: BTreeSet<String>,
}

fn tasks_of(plan: &Plan) -> Vec<Task> {
    let mut tasks: BTreeMap<String, Task> = BTreeMap::new();
    let mut task_of_address: HashMap<String, String> = HashMap::new();
    for change in plan.actionable() {
        let id = match &change.resource {
            Resource::ServiceAccountIamMember { email, .. } => format!("iam_policy[\"{email}\"]"),
            Resource::ProjectIamMember { project, .. } => {
                format!("project_iam_policy[\"{project}\"]")
            }
            _ => change.address.clone(),
        };
        task_of_address.insert(change.address.clone(), id.clone());
        tasks
            .entry(id.clone())
            .or_insert_with(|| Task {
                id,
                changes: vec![],
                depends_on: BTreeSet::new(),
            })
            .changes
            .push(change.clone());
    }
    let deps: Vec<(String, BTreeSet<String>)> = tasks
        .values()
        .map(|t| {
            let d = t
                .changes
                .iter()
                .flat_map(|c| c.depends_on.iter())
                .filter_map(|a| task_of_address.get(a).cloned())
                .filter(|id| id != &t.id)
                .collect();
            (t.id.clone(), d)
        })
        .collect();
    for (id, d) in deps {
        if let Some(t) = tasks.get_mut(&id) {
            t.depends_on = d;
        }
    }
    tasks.into_values().collect()
}

/// Everything a step needs, shared by the concurrent steps.
struct Context {
    gcp: GcpClient,
    options: ApplyOptions,
    progress: Arc<dyn Progress>,
    /// GKE clusters as read by the plan's live read (endpoint, CA).
    clusters: BTreeMap<ClusterKey, Option<Cluster>>,
    kube_context: BTreeMap<ClusterKey, Option<String>>,
    connections: Mutex<HashMap<ClusterKey, Arc<ClusterConnection>>>,
}

/// Runs the plan. `interrupt` turning true stops new steps from starting;
/// running steps finish.
pub async fn apply(
    plan: &Plan,
    live: &LiveState,
    kube_contexts: BTreeMap<ClusterKey, Option<String>>,
    gcp: GcpClient,
    options: ApplyOptions,
    progress: Arc<dyn Progress>,
    mut interrupt: watch::Receiver<bool>,
) -> ApplyResult {
    let ctx = Arc::new(Context {
        gcp,
        clusters: live
            .clusters
            .iter()
            .map(|(k, c)| (k.clone(), c.gke.clone()))
            .collect(),
        kube_context: kube_contexts,
        connections: Mutex::new(HashMap::new()),
        progress,
        options,
    });
    let tasks = tasks_of(plan);
    let mut state: BTreeMap<String, Option<Result<(), String>>> =
        tasks.iter().map(|t| (t.id.clone(), None)).collect();
    let mut outcomes: HashMap<String, (Outcome, Duration)> = HashMap::new();
    let mut pending: Vec<Task> = tasks;
    let mut running: JoinSet<(Task, Vec<StepResult>)> = JoinSet::new();
    let mut interrupted = *interrupt.borrow();
    let parallelism = ctx.options.parallelism.max(1);

    loop {
        // Skip tasks whose dependencies failed or were skipped.
        loop {
            let mut changed = false;
            pending.retain(|t| {
                let blocked = t
                    .depends_on
                    .iter()
                    .find(|d| matches!(state.get(*d), Some(Some(Err(_)))));
                if let Some(dep) = blocked {
                    for c in &t.changes {
                        outcomes.insert(
                            c.address.clone(),
                            (
                                Outcome::Skipped(format!(
                                    "depends on {dep}, which did not complete"
                                )),
                                Duration::ZERO,
                            ),
                        );
                    }
                    state.insert(t.id.clone(), Some(Err("skipped".into())));
                    changed = true;
                    false
                } else {
                    true
                }
            });
            if !changed {
                break;
            }
        }
        if !interrupted {
            let mut i = 0;
            while i < pending.len() && running.len() < parallelism {
                let ready = pending[i]
                    .depends_on
                    .iter()
                    .all(|d| matches!(state.get(d), Some(Some(Ok(())))));
                if ready {
                    let task = pending.remove(i);
                    let ctx = ctx.clone();
                    running.spawn(async move {
                        let results = run_task(&ctx, &task).await;
                        (task, results)
                    });
                } else {
                    i += 1;
                }
            }
        }
        if running.is_empty() {
            break;
        }
        tokio::select! {
            joined = running.join_next() => {
                let Some(joined) = joined else { break };
                match joined {
                    Ok((task, results)) => {
                        let ok = results.iter().all(|(_, o, _)| *o == Outcome::Done);
                        state.insert(task.id.clone(), Some(if ok { Ok(()) } else { Err("failed".into()) }));
                        outcomes.extend(results.into_iter().map(|(a, o, d)| (a, (o, d))));
                    }
                    Err(e) => {
                        // A panicking step is a bug; report it rather than lose the rest.
                        tracing::error!("a step panicked: {e}");
                    }
                }
            }
            _ = interrupt.changed(), if !interrupted => {
                interrupted = *interrupt.borrow();
            }
        }
    }
    for t in &pending {
        for c in &t.changes {
            outcomes.entry(c.address.clone()).or_insert_with(|| {
                let why = if interrupted {
                    "interrupted before it started"
                } else {
                    "a dependency did not complete"
                };
                (Outcome::Skipped(why.into()), Duration::ZERO)
            });
        }
    }
    let mut result = ApplyResult {
        interrupted,
        ..Default::default()
    };
    for c in plan.actionable() {
        let (outcome, elapsed) = outcomes.remove(&c.address).unwrap_or_else(|| {
            (
                Outcome::Failed("the step did not report (internal error)".into()),
                Duration::ZERO,
            )
        });
        match outcome {
            Outcome::Done => result.done.push(StepOutcome {
                address: c.address.clone(),
                action: c.action,
                elapsed,
            }),
            Outcome::Failed(e) => result.failed.push((c.address.clone(), e)),
            Outcome::Skipped(w) => result.skipped.push((c.address.clone(), w)),
        }
    }
    result
}

async fn run_task(ctx: &Context, task: &Task) -> Vec<StepResult> {
    let started = Instant::now();
    for c in &task.changes {
        ctx.progress.started(c);
    }
    let result = match task.changes.first().map(|c| &c.resource) {
        Some(Resource::ServiceAccountIamMember { email, .. }) => {
            edit_policy(
                ctx,
                PolicyTarget::ServiceAccount {
                    email: email.clone(),
                },
                &task.changes,
            )
            .await
        }
        Some(Resource::ProjectIamMember { project, .. }) => {
            edit_policy(
                ctx,
                PolicyTarget::Project {
                    project: project.clone(),
                },
                &task.changes,
            )
            .await
        }
        Some(_) => run_change(ctx, &task.changes[0]).await,
        None => Ok(()),
    };
    let outcome = match result {
        Ok(()) => Outcome::Done,
        Err(e) => Outcome::Failed(e),
    };
    task.changes
        .iter()
        .map(|c| {
            ctx.progress.finished(c, &outcome, started.elapsed());
            (c.address.clone(), outcome.clone(), started.elapsed())
        })
        .collect()
}

fn attr_str<'a>(change: &'a ResourceChange, key: &str) -> Option<&'a str> {
    change.after.as_ref()?.get(key)?.as_str()
}

fn gcp_msg(e: GcpError) -> String {
    e.to_string()
}

async fn run_change(ctx: &Context, change: &ResourceChange) -> Result<(), String> {
    let o = &ctx.options;
    match (&change.resource, change.action) {
        (Resource::ProjectService { project, service }, Action::Create) => ctx
            .gcp
            .enable_service(project, service, o.step_deadline)
            .await
            .map_err(gcp_msg),
        (Resource::Cluster { cluster }, Action::Create) => {
            create_cluster(ctx, cluster, change).await
        }
        (Resource::Cluster { cluster }, Action::Update) => {
            let pool = attr_str(change, "workload_pool").map(str::to_string);
            cluster_mutation(
                ctx,
                cluster,
                change,
                |c| c.workload_pool() == pool.as_deref(),
                || {
                    let pool = pool.clone();
                    let key = cluster.clone();
                    async move { ctx.gcp.set_workload_pool(&key, pool.as_deref()).await }
                },
            )
            .await
        }
        (Resource::NodePool { cluster, pool }, Action::Update) => {
            let mode = attr_str(change, "workload_metadata_mode")
                .unwrap_or("GKE_METADATA")
                .to_string();
            cluster_mutation(
                ctx,
                cluster,
                change,
                |c| {
                    c.node_pools
                        .iter()
                        .any(|p| &p.name == pool && p.metadata_mode() == Some(mode.as_str()))
                },
                || {
                    let key = cluster.clone();
                    let mode = mode.clone();
                    async move { ctx.gcp.set_node_pool_metadata_mode(&key, pool, &mode).await }
                },
            )
            .await
        }
        (
            Resource::ServiceAccount {
                project,
                account_id,
            },
            Action::Create,
        ) => {
            let display = attr_str(change, "display_name");
            let description = attr_str(change, "description");
            match ctx
                .gcp
                .create_service_account(project, account_id, display, description)
                .await
            {
                Ok(_) => Ok(()),
                Err(e) if e.is_already_exists() => {
                    let email = crate::ids::gsa_email(project, account_id);
                    let existing = ctx.gcp.get_service_account(&email).await.map_err(gcp_msg)?;
                    match existing {
                        Some(sa) if is_owned(sa.description.as_deref()) => Ok(()),
                        _ => Err(format!(
                            "{email} was created by someone else after the plan was made; re-run plan"
                        )),
                    }
                }
                Err(e) => Err(gcp_msg(e)),
            }
        }
        (
            Resource::ServiceAccount {
                project,
                account_id,
            },
            Action::Update,
        ) => {
            let email = crate::ids::gsa_email(project, account_id);
            ctx.gcp
                .patch_service_account(
                    &email,
                    attr_str(change, "display_name"),
                    attr_str(change, "description"),
                )
                .await
                .map(|_| ())
                .map_err(gcp_msg)
        }
        (
            Resource::ServiceAccount {
                project,
                account_id,
            },
            Action::Delete,
        ) => {
            let email = crate::ids::gsa_email(project, account_id);
            match ctx.gcp.delete_service_account(&email).await {
                Ok(()) => Ok(()),
                Err(e) if e.is_not_found() => Ok(()),
                Err(e) => Err(gcp_msg(e)),
            }
        }
        (Resource::Namespace { cluster, name }, Action::Create) => {
            let conn = connection(ctx, cluster).await?;
            let labels =
                BTreeMap::from([(MANAGED_BY_LABEL.to_string(), FIELD_MANAGER.to_string())]);
            kube_retry(ctx, &change.address, || {
                conn.apply_namespace(name, &labels, o.force_conflicts)
            })
            .await
            .map(|_| ())
        }
        (
            Resource::KubernetesServiceAccount {
                cluster,
                namespace,
                name,
            },
            Action::Create | Action::Update,
        ) => {
            let conn = connection(ctx, cluster).await?;
            let (labels, annotations) = ksa_fields(change);
            kube_retry(ctx, &change.address, || {
                conn.apply_service_account(namespace, name, &labels, &annotations, o.force_conflicts)
            })
            .await
            .map(|_| ())
            .map_err(|e| {
                if e.contains("conflict") {
                    format!("{e}\n  another field manager owns the annotation; re-run with --force-conflicts to take it over")
                } else {
                    e
                }
            })
        }
        (
            Resource::KubernetesServiceAccount {
                cluster,
                namespace,
                name,
            },
            Action::Delete,
        ) => {
            let conn = connection(ctx, cluster).await?;
            kube_retry(ctx, &change.address, || {
                conn.delete_service_account(namespace, name)
            })
            .await
        }
        (resource, action) => Err(format!(
            "wi cannot {action:?} {resource} (internal error: the planner never plans this)"
        )),
    }
}

/// Labels and annotations `wi` applies, from the plan's `after` attributes
/// (`labels["k"]`, `annotations["k"]`).
fn ksa_fields(change: &ResourceChange) -> (BTreeMap<String, String>, BTreeMap<String, String>) {
    let mut labels = BTreeMap::new();
    let mut annotations = BTreeMap::new();
    for (key, value) in change.after.iter().flatten() {
        let Some(v) = value.as_str() else { continue };
        if let Some(k) = key
            .strip_prefix("labels[\"")
            .and_then(|k| k.strip_suffix("\"]"))
        {
            labels.insert(k.to_string(), v.to_string());
        } else if let Some(k) = key
            .strip_prefix("annotations[\"")
            .and_then(|k| k.strip_suffix("\"]"))
        {
            annotations.insert(k.to_string(), v.to_string());
        }
    }
    debug_assert!(annotations.keys().all(|k| k == GSA_ANNOTATION));
    (labels, annotations)
}

async fn kube_retry<T, F, Fut>(ctx: &Context, address: &str, mut call: F) -> Result<T, String>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, KubeError>>,
{
    let deadline = Instant::now() + ctx.options.step_deadline;
    let mut delay = Duration::from_millis(200);
    loop {
        match call().await {
            Ok(v) => return Ok(v),
            Err(e) if e.is_retryable() && Instant::now() + delay < deadline => {
                ctx.progress.note(address, &format!("retrying after {e}"));
                tokio::time::sleep(delay).await;
                delay = (delay * 2).min(Duration::from_secs(10));
            }
            Err(e) => return Err(e.to_string()),
        }
    }
}

/// A Kubernetes connection to a cluster, made once per apply.
async fn connection(ctx: &Context, key: &ClusterKey) -> Result<Arc<ClusterConnection>, String> {
    let mut conns = ctx.connections.lock().await;
    if let Some(c) = conns.get(key) {
        return Ok(c.clone());
    }
    let gke = match ctx.clusters.get(key).cloned().flatten() {
        Some(c) if c.endpoint.is_some() => c,
        _ => ctx
            .gcp
            .get_cluster(key)
            .await
            .map_err(gcp_msg)?
            .ok_or_else(|| format!("cluster {key} does not exist"))?,
    };
    let token = ctx.gcp.access_token().await.map_err(gcp_msg)?;
    let context = ctx.kube_context.get(key).cloned().flatten();
    let conn = crate::live::connect_cluster(&gke, token, context.as_deref())
        .await
        .map_err(|e| format!("connecting to the Kubernetes API of {key}: {e}"))?;
    let conn = Arc::new(conn);
    conns.insert(key.clone(), conn.clone());
    Ok(conn)
}

async fn create_cluster(
    ctx: &Context,
    key: &ClusterKey,
    change: &ResourceChange,
) -> Result<(), String> {
    let a = change.after.clone().unwrap_or_default();
    let mut cluster = serde_json::json!({
        "name": key.name,
        "initialNodeCount": a.get("initial_node_count").cloned().unwrap_or(Value::from(1)),
    });
    if let Some(pool) = a.get("workload_pool").and_then(Value::as_str) {
        cluster["workloadIdentityConfig"] = serde_json::json!({"workloadPool": pool});
    }
    if let Some(machine) = a.get("machine_type").and_then(Value::as_str) {
        cluster["nodeConfig"] = serde_json::json!({"machineType": machine});
    }
    if let Some(channel) = a.get("release_channel").and_then(Value::as_str) {
        cluster["releaseChannel"] = serde_json::json!({"channel": channel});
    }
    let op = match ctx.gcp.create_cluster(key, cluster).await {
        Ok(op) => op,
        Err(e) if e.is_already_exists() => {
            // Another apply created it: wait for whatever is running on it.
            return wait_running_operations(ctx, key, &change.address).await;
        }
        Err(e) => return Err(gcp_msg(e)),
    };
    let progress = operation_progress(ctx, &change.address);
    ctx.gcp
        .wait_operation(
            &key.project,
            &key.location,
            &op,
            ctx.options.operation_deadline,
            &progress,
        )
        .await
        .map(|_| ())
        .map_err(gcp_msg)
}

/// Reports a GKE operation's progress as a note on the change.
fn operation_progress(
    ctx: &Context,
    address: &str,
) -> impl Fn(&crate::gcp::types::Operation) + Send + Sync + use<> {
    let progress = ctx.progress.clone();
    let address = address.to_string();
    let started = Instant::now();
    move |op: &crate::gcp::types::Operation| {
        progress.note(
            &address,
            &format!(
                "operation {} ({}) is {} [{}s elapsed]",
                op.name,
                op.operation_type,
                op.status,
                started.elapsed().as_secs()
            ),
        );
    }
}

/// Waits for operations already running on this cluster (another apply's,
/// or a user's), so we neither collide nor start a duplicate.
async fn wait_running_operations(
    ctx: &Context,
    key: &ClusterKey,
    address: &str,
) -> Result<(), String> {
    let progress = operation_progress(ctx, address);
    ctx.gcp
        .wait_cluster_idle(key, ctx.options.operation_deadline, &progress)
        .await
        .map_err(gcp_msg)
}

/// Runs one cluster-level mutation: waits out running operations, re-reads
/// the cluster (another apply may have done the work already), then starts the
/// change, waiting out "incompatible operation" refusals, and waits for it.
async fn cluster_mutation<F, Fut, Done>(
    ctx: &Context,
    key: &ClusterKey,
    change: &ResourceChange,
    already_done: Done,
    mutate: F,
) -> Result<(), String>
where
    Done: Fn(&Cluster) -> bool,
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = Result<crate::gcp::types::Operation, GcpError>>,
{
    wait_running_operations(ctx, key, &change.address).await?;
    let current = ctx.gcp.get_cluster(key).await.map_err(gcp_msg)?;
    let Some(current) = current else {
        return Err(format!("cluster {key} no longer exists"));
    };
    if already_done(&current) {
        return Ok(());
    }
    let progress = operation_progress(ctx, &change.address);
    ctx.gcp
        .run_cluster_operation(key, ctx.options.operation_deadline, &progress, mutate)
        .await
        .map(|_| ())
        .map_err(gcp_msg)
}

/// One read-modify-write of a policy carrying every member edit of the task.
/// The client re-reads and re-applies only these edits on an etag conflict,
/// and waits while the account or the workload pool is not yet visible to IAM
/// (eventual consistency), within the step deadline.
async fn edit_policy(
    ctx: &Context,
    target: PolicyTarget,
    changes: &[ResourceChange],
) -> Result<(), String> {
    let mut adds: Vec<(String, String)> = Vec::new();
    let mut removes: Vec<(String, String)> = Vec::new();
    for c in changes {
        let (role, member) = match &c.resource {
            Resource::ServiceAccountIamMember { role, member, .. }
            | Resource::ProjectIamMember { role, member, .. } => (role.clone(), member.clone()),
            _ => continue,
        };
        match c.action {
            Action::Create => adds.push((role, member)),
            Action::Delete => removes.push((role, member)),
            _ => {}
        }
    }
    let edit = move |policy: &mut Policy| edit_members(policy, &adds, &removes);
    let address = changes
        .first()
        .map(|c| c.address.clone())
        .unwrap_or_default();
    let progress = ctx.progress.clone();
    let on_wait = move |e: &GcpError, delay: Duration| {
        let why = if e.is_identity_pool_missing() {
            "the workload pool is not visible to IAM yet"
        } else {
            "the service account is not visible to IAM yet"
        };
        progress.note(
            &address,
            &format!("{why}; retrying in {}ms", delay.as_millis()),
        );
    };
    ctx.gcp
        .modify_iam_policy_waiting(&target, ctx.options.step_deadline, &edit, &on_wait)
        .await
        .map(|_| ())
        .map_err(gcp_msg)
}

/// Adds and removes members in unconditional bindings only; conditional
/// bindings, other roles and other members are never touched. Returns whether
/// the policy changed.
pub fn edit_members(
    policy: &mut Policy,
    adds: &[(String, String)],
    removes: &[(String, String)],
) -> bool {
    let mut changed = false;
    for (role, member) in removes {
        for b in policy
            .bindings
            .iter_mut()
            .filter(|b| &b.role == role && b.condition.is_none())
        {
            let before = b.members.len();
            b.members.retain(|m| m != member);
            changed |= b.members.len() != before;
        }
    }
    policy.bindings.retain(|b| !b.members.is_empty());
    for (role, member) in adds {
        if let Some(b) = policy
            .bindings
            .iter_mut()
            .find(|b| &b.role == role && b.condition.is_none())
        {
            if !b.members.contains(member) {
                b.members.push(member.clone());
                changed = true;
            }
        } else {
            policy.bindings.push(Binding {
                role: role.clone(),
                members: vec![member.clone()],
                condition: None,
                rest: Default::default(),
            });
            changed = true;
        }
    }
    changed
}
