//! `--target` and `--exclude`: which changes of a full plan this run makes.
//!
//! A pattern names changes by address (`node_pool["p/l/c/pool"]`, quotes
//! optional), by cluster (`project/location/name` or `name`: the cluster,
//! its node pools, namespaces and KSAs), by cluster group (`group:NAME`, or
//! a bare `NAME` that is a group and no project: the clusters that join it)
//! or by project (its accounts, bindings, grants and services); `*` matches
//! any run of characters. The
//! targeted changes, less the excluded ones, keep what they depend on: a
//! dependency that is not targeted is pulled in and the plan says so; one
//! that is excluded makes the selection impossible (a problem). A pattern
//! that matches nothing is a problem too: a typo must not plan everything.

use std::collections::{BTreeMap, BTreeSet};

use super::{Action, PlanProblem, Resource, ResourceChange, Warning};
use crate::ids::ClusterKey;
use crate::plan::WarningCode;
use crate::spec::model::Cluster;

/// The cluster groups of the spec, for `group:NAME` patterns.
#[derive(Debug, Default)]
pub(super) struct Groups {
    of_cluster: BTreeMap<ClusterKey, Vec<String>>,
    names: BTreeSet<String>,
}

impl Groups {
    /// The groups the model's clusters join.
    pub(super) fn of(clusters: &[Cluster]) -> Self {
        let of_cluster: BTreeMap<ClusterKey, Vec<String>> = clusters
            .iter()
            .filter(|c| !c.groups.is_empty())
            .map(|c| (c.key.clone(), c.groups.clone()))
            .collect();
        let names = of_cluster.values().flatten().cloned().collect();
        Groups { of_cluster, names }
    }

    /// Whether `cluster` joins a group `pattern` (a glob) matches.
    fn joins(&self, cluster: &ClusterKey, pattern: &str) -> bool {
        self.of_cluster
            .get(cluster)
            .is_some_and(|gs| gs.iter().any(|g| glob(pattern, g)))
    }
}

/// Whether `pattern` (with `*` for any run of characters) matches `text`.
fn glob(pattern: &str, text: &str) -> bool {
    let (p, t): (Vec<char>, Vec<char>) = (pattern.chars().collect(), text.chars().collect());
    let (mut pi, mut ti) = (0, 0);
    let (mut star, mut mark) = (None, 0);
    while ti < t.len() {
        if pi < p.len() && p[pi] != '*' && p[pi] == t[ti] {
            pi += 1;
            ti += 1;
        } else if pi < p.len() && p[pi] == '*' {
            star = Some(pi);
            mark = ti;
            pi += 1;
        } else if let Some(s) = star {
            pi = s + 1;
            mark += 1;
            ti = mark;
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|&c| c == '*')
}

/// An address without its quotes (`node_pool[p/l/c/pool]`).
fn unquoted(address: &str) -> String {
    address.replace('"', "")
}

/// The cluster a change belongs to, if any.
fn cluster_of(change: &ResourceChange) -> Option<&ClusterKey> {
    match &change.resource {
        Resource::Cluster { cluster }
        | Resource::NodePool { cluster, .. }
        | Resource::Namespace { cluster, .. }
        | Resource::KubernetesServiceAccount { cluster, .. } => Some(cluster),
        _ => None,
    }
}

/// Whether `pattern` names this change.
pub(super) fn matches(pattern: &str, change: &ResourceChange, groups: &Groups) -> bool {
    let pattern = unquoted(pattern.trim());
    if let Some(group) = pattern.strip_prefix("group:") {
        return cluster_of(change).is_some_and(|k| groups.joins(k, group));
    }
    if glob(&pattern, &unquoted(&change.address)) {
        return true;
    }
    if pattern.contains('[') {
        return false;
    }
    match &change.resource {
        Resource::Cluster { cluster }
        | Resource::NodePool { cluster, .. }
        | Resource::Namespace { cluster, .. }
        | Resource::KubernetesServiceAccount { cluster, .. } => {
            glob(&pattern, &cluster.to_string())
                || glob(&pattern, &cluster.name)
                // A bare group name, exactly (no glob: `group:` is for those).
                || groups.of_cluster.get(cluster).is_some_and(|gs| gs.contains(&pattern))
        }
        Resource::ProjectService { project, .. }
        | Resource::ServiceAccount { project, .. }
        | Resource::ServiceAccountIamMember { project, .. }
        | Resource::ProjectIamMember { project, .. } => glob(&pattern, project),
    }
}

/// A bare pattern that is the name of a group and matches a project too.
fn ambiguous(pattern: &str, changes: &[ResourceChange], groups: &Groups) -> Option<PlanProblem> {
    let pattern = unquoted(pattern.trim());
    if !groups.names.contains(&pattern) {
        return None;
    }
    let project = changes.iter().find_map(|c| match &c.resource {
        Resource::ProjectService { project, .. }
        | Resource::ServiceAccount { project, .. }
        | Resource::ServiceAccountIamMember { project, .. }
        | Resource::ProjectIamMember { project, .. }
            if glob(&pattern, project) =>
        {
            Some(project.clone())
        }
        _ => None,
    })?;
    Some(PlanProblem {
        address: pattern.clone(),
        message: format!("names both the cluster group {pattern} and the project {project}"),
        help: Some(format!(
            "write group:{pattern} for the group's clusters; for the project, \
             rename the group (a bare name selects a cluster, a group or a project)"
        )),
    })
}

/// What a selection keeps: the changes, the plan-level warnings about them,
/// and the problems that make it impossible.
pub(super) struct Selection {
    pub changes: Vec<ResourceChange>,
    pub warnings: Vec<Warning>,
    pub problems: Vec<PlanProblem>,
}

/// Keeps the changes `targets` (all, when empty) name, less those
/// `excludes` name, plus what they depend on.
pub(super) fn select(
    changes: Vec<ResourceChange>,
    warnings: Vec<Warning>,
    targets: &[String],
    excludes: &[String],
    groups: &Groups,
) -> Selection {
    if targets.is_empty() && excludes.is_empty() {
        return Selection {
            changes,
            warnings,
            problems: Vec::new(),
        };
    }
    let mut problems = Vec::new();
    for (flag, patterns) in [("--target", targets), ("--exclude", excludes)] {
        for p in patterns {
            if let Some(problem) = ambiguous(p, &changes, groups) {
                problems.push(PlanProblem {
                    address: format!("{flag} {}", problem.address),
                    ..problem
                });
                continue;
            }
            if !changes.iter().any(|c| matches(p, c, groups)) {
                problems.push(PlanProblem {
                    address: format!("{flag} {p}"),
                    message: "matches nothing this spec plans".to_string(),
                    help: Some(
                        "name a resource address (node_pool[\"p/l/c/pool\"]), a cluster \
                         (project/location/name or name), a cluster group (group:NAME) or a \
                         project; * matches any run of characters; `wi plan --json` lists \
                         every address"
                            .to_string(),
                    ),
                });
            }
        }
    }
    let excluded = |c: &ResourceChange| excludes.iter().any(|p| matches(p, c, groups));
    let by_address: BTreeMap<&str, &ResourceChange> =
        changes.iter().map(|c| (c.address.as_str(), c)).collect();
    let mut chosen: BTreeSet<String> = changes
        .iter()
        .filter(|c| targets.is_empty() || targets.iter().any(|p| matches(p, c, groups)))
        .filter(|c| !excluded(c))
        .map(|c| c.address.clone())
        .collect();
    // What the chosen changes depend on, transitively.
    let mut pulled_in = BTreeSet::new();
    let mut queue: Vec<String> = chosen.iter().cloned().collect();
    while let Some(address) = queue.pop() {
        let Some(change) = by_address.get(address.as_str()) else {
            continue;
        };
        for dep in &change.depends_on {
            let Some(d) = by_address.get(dep.as_str()) else {
                continue;
            };
            if chosen.contains(dep) {
                continue;
            }
            if d.action != Action::NoOp && excluded(d) {
                problems.push(PlanProblem {
                    address: address.clone(),
                    message: format!("depends on {dep}, which --exclude leaves out"),
                    help: Some(format!("exclude {address} too, or stop excluding {dep}")),
                });
                continue;
            }
            chosen.insert(dep.clone());
            if d.action != Action::NoOp {
                pulled_in.insert(dep.clone());
            }
            queue.push(dep.clone());
        }
    }
    let changes: Vec<ResourceChange> = changes
        .into_iter()
        .filter(|c| chosen.contains(&c.address))
        .collect();
    let mut warnings: Vec<Warning> = warnings
        .into_iter()
        .filter(|w| w.address.as_ref().is_none_or(|a| chosen.contains(a)))
        .collect();
    if !pulled_in.is_empty() {
        let list: Vec<&str> = pulled_in.iter().map(String::as_str).collect();
        warnings.push(Warning {
            code: WarningCode::DependenciesIncluded,
            message: format!(
                "The targeted changes depend on {} more, included although not targeted: {}",
                list.len(),
                list.join(", ")
            ),
            address: None,
        });
    }
    Selection {
        changes,
        warnings,
        problems,
    }
}

#[cfg(test)]
mod tests {
    use super::glob;

    #[test]
    fn a_star_matches_any_run() {
        assert!(glob("*", ""));
        assert!(glob("node_pool[p/*/pool]", "node_pool[p/l/c/pool]"));
        assert!(glob("c*", "c1"));
        assert!(!glob("c*", "xc1"));
        assert!(glob("*a*b", "xxaxxb"));
        assert!(!glob("*a*b", "xxaxxbc"));
        assert!(glob("exact", "exact"));
        assert!(!glob("exact", "exac"));
    }
}
