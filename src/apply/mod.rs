//! Apply: run exactly the plan's steps, in dependency order, independent
//! steps concurrently, against the same clients `live` reads with.
//!
//! Every write converges: IAM is read-modify-write with the etag (only `wi`'s
//! own member edits are re-applied on a conflict), Kubernetes objects are
//! server-side applied with field manager `wi`, "already exists" is success
//! when it is what the plan wanted. A failed step stops only its dependents.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::watch;
use tokio::task::JoinSet;

mod error;
mod gke;
mod iam;
mod kubernetes;
mod steps;

pub use error::StepError;

use crate::gcp::types::GkeCluster;
use crate::gcp::{GcpClient, PolicyTarget};
use crate::ids::ClusterKey;
use crate::live::LiveState;
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
    /// Who the calls run as (an email, or where the credentials came from;
    /// never a token), named with the fix when a step is refused (401/403).
    pub identity: Option<String>,
}

impl Default for ApplyOptions {
    fn default() -> Self {
        Self {
            parallelism: 16,
            force_conflicts: false,
            step_deadline: Duration::from_secs(600),
            operation_deadline: Duration::from_secs(3600),
            identity: None,
        }
    }
}

/// What happened to one planned change.
#[derive(Debug, Clone)]
pub enum Outcome {
    Done,
    /// The step failed; every change of an IAM policy task shares its error.
    Failed(Arc<StepError>),
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
}

/// Progress reporting, on stderr for the CLI.
pub trait Progress: Send + Sync {
    /// Apply is about to run `total` changes (the N of an n/N counter).
    fn begin(&self, _total: usize) {}
    fn started(&self, change: &ResourceChange);
    fn note(&self, address: &str, message: &str);
    /// A GKE operation `change`'s step started or waits for, after each poll.
    fn operation(&self, change: &ResourceChange, event: &OperationEvent) {
        self.note(&change.address, &event.to_string());
    }
    fn finished(&self, change: &ResourceChange, outcome: &Outcome, elapsed: Duration);
}

/// What a GKE operation changes, from its `targetLink`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OperationTarget {
    /// The cluster itself (`.../clusters/NAME`).
    Cluster(String),
    /// One node pool (`.../nodePools/NAME`).
    NodePool(String),
    /// No target link, or one of another shape.
    Unknown,
}

impl fmt::Display for OperationTarget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            OperationTarget::Cluster(name) => write!(f, "cluster {name}"),
            OperationTarget::NodePool(name) => write!(f, "node pool {name}"),
            OperationTarget::Unknown => f.write_str("the cluster"),
        }
    }
}

/// A GKE operation a step started or waits for, as last polled.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OperationEvent {
    /// `operation-...`.
    pub name: String,
    /// `UPDATE_CLUSTER`, `UPGRADE_NODES`, ...
    pub operation_type: String,
    /// `PENDING`, `RUNNING`, `DONE`, `ABORTING`.
    pub status: String,
    /// What the operation changes.
    pub target: OperationTarget,
    /// GKE's own progress when it reports one: `(metric, done, total)`.
    pub progress: Option<(String, i64, i64)>,
    /// True when the step started the operation; false when it only waits
    /// for it (a sibling node pool's, another apply's, a user's).
    pub own: bool,
}

impl OperationEvent {
    /// The event of `op`; `own` when the step started it.
    pub fn of(op: &crate::gcp::types::Operation, own: bool) -> Self {
        let link = op.target_link.as_deref().unwrap_or("");
        let after = |marker: &str| {
            link.rsplit_once(marker)
                .map(|(_, rest)| rest.split('/').next().unwrap_or(rest).to_string())
        };
        let target = match (after("/nodePools/"), after("/clusters/")) {
            (Some(pool), _) => OperationTarget::NodePool(pool),
            (None, Some(cluster)) => OperationTarget::Cluster(cluster),
            _ => OperationTarget::Unknown,
        };
        OperationEvent {
            name: op.name.clone(),
            operation_type: op.operation_type.clone(),
            status: op.status.clone(),
            target,
            progress: operation_progress(op),
            own,
        }
    }
}

impl fmt::Display for OperationEvent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.own {
            write!(
                f,
                "operation {} ({}) is {}",
                self.name, self.operation_type, self.status
            )?;
        } else {
            write!(
                f,
                "waiting for operation {} ({} of {}), {}",
                self.name, self.operation_type, self.target, self.status
            )?;
        }
        if let Some((metric, done, total)) = &self.progress {
            write!(f, ", {metric} {done}/{total}")?;
        }
        Ok(())
    }
}

/// GKE's `progress.metrics`: the first `NAME` with a `NAME_TOTAL`, as
/// `("name", done, total)` (`CLUSTER_DEPLOYING` 3 of 12: `("cluster deploying", 3, 12)`).
fn operation_progress(op: &crate::gcp::types::Operation) -> Option<(String, i64, i64)> {
    let metrics = op.rest.get("progress")?.get("metrics")?.as_array()?;
    let value = |name: &str| {
        metrics.iter().find_map(|m| {
            if m.get("name")?.as_str()? != name {
                return None;
            }
            let v = m.get("intValue")?;
            v.as_i64().or_else(|| v.as_str()?.parse().ok())
        })
    };
    metrics.iter().find_map(|m| {
        let name = m.get("name")?.as_str()?;
        if name.ends_with("_TOTAL") {
            return None;
        }
        let total = value(&format!("{name}_TOTAL"))?;
        let done = value(name)?;
        Some((name.to_lowercase().replace('_', " "), done, total))
    })
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
            // A removal that waits for what replaces it (a moved or renamed
            // KSA) is a write of its own, after the policy's additions.
            Resource::ServiceAccountIamMember { email, .. }
                if change.action == crate::plan::Action::Delete
                    && !change.depends_on.is_empty() =>
            {
                format!("iam_policy[\"{email}\"] removals")
            }
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
                .chain(
                    t.id.strip_suffix(" removals")
                        .filter(|additions| tasks.contains_key(*additions))
                        .map(str::to_string),
                )
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

/// How a finished task ended, for its dependents.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum TaskEnd {
    Completed,
    /// Failed or skipped: its dependents are skipped.
    DidNotComplete,
}

/// Which tasks may start, in linear time overall: each task counts its
/// dependencies not yet completed and lists its dependents, so a finished
/// task touches only its own dependents. Ready tasks start in the order of
/// [`tasks_of`] (by id), as many as the parallelism allows; a task whose
/// dependency did not complete is skipped, and so, in turn, are its dependents.
struct Scheduler {
    /// `None` once started or skipped.
    tasks: Vec<Option<Task>>,
    ids: Vec<String>,
    /// Task index by id.
    index: HashMap<String, usize>,
    dependents: Vec<Vec<usize>>,
    /// Dependencies of each task not yet completed.
    waiting: Vec<usize>,
    end: Vec<Option<TaskEnd>>,
    ready: BTreeSet<usize>,
}

impl Scheduler {
    fn new(tasks: Vec<Task>) -> Self {
        let index: HashMap<&str, usize> = tasks
            .iter()
            .enumerate()
            .map(|(i, t)| (t.id.as_str(), i))
            .collect();
        let mut dependents = vec![Vec::new(); tasks.len()];
        let mut waiting = vec![0; tasks.len()];
        for (i, t) in tasks.iter().enumerate() {
            for d in &t.depends_on {
                // A dependency that is not a task of this plan never
                // completes: the task stays unstarted.
                if let Some(&j) = index.get(d.as_str()) {
                    dependents[j].push(i);
                }
                waiting[i] += 1;
            }
        }
        let ready = (0..tasks.len()).filter(|&i| waiting[i] == 0).collect();
        let ids = tasks.iter().map(|t| t.id.clone()).collect();
        let index = index.into_iter().map(|(k, v)| (k.to_string(), v)).collect();
        Self {
            index,
            end: vec![None; tasks.len()],
            tasks: tasks.into_iter().map(Some).collect(),
            ids,
            dependents,
            waiting,
            ready,
        }
    }

    /// The first ready task (by id), taken out to run.
    fn next_ready(&mut self) -> Option<(usize, Task)> {
        let i = self.ready.pop_first()?;
        self.tasks[i].take().map(|t| (i, t))
    }

    /// Records how task `i` ended: its dependents become ready, or are
    /// skipped (with theirs) when it did not complete.
    fn finished(
        &mut self,
        i: usize,
        end: TaskEnd,
        outcomes: &mut HashMap<String, (Outcome, Duration)>,
    ) {
        self.end[i] = Some(end);
        let mut failed = Vec::new();
        match end {
            TaskEnd::Completed => {
                for k in 0..self.dependents[i].len() {
                    let j = self.dependents[i][k];
                    self.waiting[j] -= 1;
                    if self.waiting[j] == 0 && self.tasks[j].is_some() {
                        self.ready.insert(j);
                    }
                }
            }
            TaskEnd::DidNotComplete => failed.push(i),
        }
        while let Some(f) = failed.pop() {
            for k in 0..self.dependents[f].len() {
                let j = self.dependents[f][k];
                let Some(task) = self.tasks[j].take() else {
                    continue;
                };
                self.ready.remove(&j);
                // Named as before: the first of its dependencies that did not complete.
                let dep = task
                    .depends_on
                    .iter()
                    .find(|d| {
                        self.index
                            .get(d.as_str())
                            .is_some_and(|&x| self.end[x] == Some(TaskEnd::DidNotComplete))
                    })
                    .cloned()
                    .unwrap_or_else(|| self.ids[f].clone());
                for c in &task.changes {
                    outcomes.insert(
                        c.address.clone(),
                        (
                            Outcome::Skipped(format!("depends on {dep}, which did not complete")),
                            Duration::ZERO,
                        ),
                    );
                }
                self.end[j] = Some(TaskEnd::DidNotComplete);
                failed.push(j);
            }
        }
    }

    /// Tasks never started nor skipped (interrupted, or waiting on a
    /// dependency that never completed).
    fn unstarted(&self) -> impl Iterator<Item = &Task> {
        self.tasks.iter().flatten()
    }
}

/// Everything a step needs, shared by the concurrent steps.
struct Context {
    gcp: GcpClient,
    options: ApplyOptions,
    progress: Arc<dyn Progress>,
    /// GKE clusters as read by the plan's live read (endpoint, CA).
    clusters: BTreeMap<ClusterKey, Option<GkeCluster>>,
    kube_context: BTreeMap<ClusterKey, Option<String>>,
    connections: kubernetes::Connections,
    /// Emails of the accounts the plan creates: IAM may refuse them as
    /// policy members for a while after (eventual consistency), which is
    /// waited out; any other account it refuses is gone.
    created: BTreeSet<String>,
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
        connections: kubernetes::Connections::default(),
        created: plan
            .actionable()
            .filter_map(|c| match (&c.resource, c.action) {
                (
                    Resource::ServiceAccount {
                        project,
                        account_id,
                    },
                    Action::Create,
                ) => Some(crate::ids::gsa_email(project, account_id)),
                _ => None,
            })
            .collect(),
        progress,
        options,
    });
    let tasks = tasks_of(plan);
    ctx.progress.begin(plan.actionable().count());
    let mut outcomes: HashMap<String, (Outcome, Duration)> = HashMap::new();
    let mut sched = Scheduler::new(tasks);
    let mut running: JoinSet<(usize, Task, Vec<StepResult>)> = JoinSet::new();
    let mut interrupted = *interrupt.borrow();
    let parallelism = ctx.options.parallelism.max(1);

    loop {
        if !interrupted {
            while running.len() < parallelism {
                let Some((i, task)) = sched.next_ready() else {
                    break;
                };
                let ctx = ctx.clone();
                running.spawn(async move {
                    let results = run_task(&ctx, &task).await;
                    (i, task, results)
                });
            }
        }
        if running.is_empty() {
            break;
        }
        tokio::select! {
            joined = running.join_next() => {
                let Some(joined) = joined else { break };
                match joined {
                    Ok((i, _task, results)) => {
                        let ok = results.iter().all(|(_, o, _)| matches!(o, Outcome::Done));
                        outcomes.extend(results.into_iter().map(|(a, o, d)| (a, (o, d))));
                        sched.finished(i, if ok { TaskEnd::Completed } else { TaskEnd::DidNotComplete }, &mut outcomes);
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
    for t in sched.unstarted() {
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
                Outcome::Failed(Arc::new(StepError::NotReported)),
                Duration::ZERO,
            )
        });
        match outcome {
            Outcome::Done => result.done.push(StepOutcome {
                address: c.address.clone(),
                action: c.action,
                elapsed,
            }),
            Outcome::Failed(e) => {
                let help = ctx
                    .options
                    .identity
                    .as_deref()
                    .and_then(|who| e.denied_help(who));
                let message = match help {
                    Some(help) => format!("{e}\n  help: {help}"),
                    None => e.to_string(),
                };
                result.failed.push((c.address.clone(), message))
            }
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
    // Per address, the error of a change that failed alone (a member IAM
    // refused) while the rest of its task went through.
    let mut alone: HashMap<String, Arc<StepError>> = HashMap::new();
    let result = match task.changes.first().map(|c| &c.resource) {
        Some(Resource::ServiceAccountIamMember { email, .. }) => iam::edit_policy(
            ctx,
            PolicyTarget::ServiceAccount {
                email: email.clone(),
            },
            &task.changes,
        )
        .await
        .map(|refused| alone = refused),
        Some(Resource::ProjectIamMember { project, .. }) => iam::edit_policy(
            ctx,
            PolicyTarget::Project {
                project: project.clone(),
            },
            &task.changes,
        )
        .await
        .map(|refused| alone = refused),
        Some(_) => steps::run_change(ctx, &task.changes[0]).await,
        None => Ok(()),
    };
    let outcome = match result {
        Ok(()) => Outcome::Done,
        Err(e) => Outcome::Failed(Arc::new(e)),
    };
    task.changes
        .iter()
        .map(|c| {
            let outcome = match alone.get(&c.address) {
                Some(e) => Outcome::Failed(e.clone()),
                None => outcome.clone(),
            };
            ctx.progress.finished(c, &outcome, started.elapsed());
            (c.address.clone(), outcome, started.elapsed())
        })
        .collect()
}
