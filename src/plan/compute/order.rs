//! An order that never cuts access. Whatever a plan removes from a
//! workload's identity — a workload-identity binding, a KSA's annotation, a
//! KSA — waits for what the plan adds in its place: moving a KSA to another
//! account creates the new binding, then rewrites the annotation, then
//! removes the old binding; renaming a KSA creates the new KSA and its
//! binding before the old ones go. Pods that run as a KSA losing its
//! binding or annotation are named in a warning.

use std::collections::{BTreeMap, BTreeSet};

use super::{Action, Planner, Resource, ResourceChange, Warning, annotation_key};
use crate::ids::ksa_member;
use crate::ownership::WORKLOAD_IDENTITY_USER;
use crate::plan::WarningCode;

/// A KSA of a cluster: (cluster, namespace, name).
type KsaAt<'a> = (&'a crate::ids::ClusterKey, &'a str, &'a str);

/// What a change does to a workload's identity.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Identity {
    /// Adds or keeps a binding of `member` on `email`.
    AddsBinding { email: String, member: String },
    /// Removes the binding of `member` on `email`.
    RemovesBinding { email: String, member: String },
    /// Points a KSA (`member`) at `email`.
    Annotates { email: String, member: String },
    /// A KSA (`member`) loses its annotation to `email` (or goes away).
    Unannotates { email: String, member: String },
}

/// The account a KSA's attributes point at.
fn annotated(attrs: Option<&super::Attributes>) -> Option<String> {
    attrs
        .and_then(|a| a.get(&annotation_key()))
        .and_then(|v| v.as_str())
        .map(str::to_string)
}

fn identity(change: &ResourceChange) -> Option<Identity> {
    if change.action == Action::NoOp {
        return None;
    }
    match &change.resource {
        Resource::ServiceAccountIamMember {
            email,
            role,
            member,
            ..
        } if role == WORKLOAD_IDENTITY_USER && member.contains(".svc.id.goog[") => {
            let (email, member) = (email.clone(), member.clone());
            Some(if change.action == Action::Delete {
                Identity::RemovesBinding { email, member }
            } else {
                Identity::AddsBinding { email, member }
            })
        }
        Resource::KubernetesServiceAccount {
            cluster,
            namespace,
            name,
        } => {
            let member = ksa_member(&cluster.project, namespace, name);
            let before = annotated(change.before.as_ref());
            let after = annotated(change.after.as_ref());
            match (before, after) {
                (_, Some(email)) if change.action != Action::Delete => {
                    Some(Identity::Annotates { email, member })
                }
                (Some(email), _) => Some(Identity::Unannotates { email, member }),
                _ => None,
            }
        }
        _ => None,
    }
}

impl Planner<'_> {
    /// Removals wait for the additions that replace them; pods that lose
    /// their identity are named.
    pub(super) fn access_order(&mut self) {
        let kinds: Vec<Option<Identity>> = self.changes.iter().map(identity).collect();
        // Additions by member and by account, annotation removals by both:
        // each removal looks up what it waits for instead of scanning.
        let mut adds_by_member: BTreeMap<&str, Vec<usize>> = BTreeMap::new();
        let mut adds_by_email: BTreeMap<&str, Vec<usize>> = BTreeMap::new();
        let mut unannotates: BTreeMap<(&str, &str), Vec<usize>> = BTreeMap::new();
        for (j, kind) in kinds.iter().enumerate() {
            match kind {
                Some(Identity::AddsBinding { email, member })
                | Some(Identity::Annotates { email, member }) => {
                    adds_by_member.entry(member).or_default().push(j);
                    adds_by_email.entry(email).or_default().push(j);
                }
                Some(Identity::Unannotates { email, member }) => {
                    unannotates.entry((email, member)).or_default().push(j);
                }
                _ => {}
            }
        }
        let mut extra: Vec<(usize, Vec<String>)> = Vec::new();
        for (i, kind) in kinds.iter().enumerate() {
            let (email, member) = match kind {
                Some(Identity::RemovesBinding { email, member })
                | Some(Identity::Unannotates { email, member }) => (email, member),
                _ => continue,
            };
            let removes_binding = matches!(kind, Some(Identity::RemovesBinding { .. }));
            // The new binding of this KSA, or this account's new KSA; and
            // the annotation goes before the binding it used.
            let mut deps: BTreeSet<usize> = adds_by_member
                .get(member.as_str())
                .into_iter()
                .chain(adds_by_email.get(email.as_str()))
                .flatten()
                .copied()
                .collect();
            if removes_binding {
                deps.extend(
                    unannotates
                        .get(&(email.as_str(), member.as_str()))
                        .into_iter()
                        .flatten()
                        .copied(),
                );
            }
            deps.remove(&i);
            let deps: Vec<String> = deps
                .into_iter()
                .map(|j| self.changes[j].address.clone())
                .collect();
            if !deps.is_empty() {
                extra.push((i, deps));
            }
        }
        for (i, deps) in extra {
            let c = &mut self.changes[i];
            c.depends_on.extend(deps);
            c.depends_on.sort();
            c.depends_on.dedup();
        }
        self.running_pods_warnings(&kinds);
    }

    /// A warning per KSA whose running pods lose their binding or annotation.
    fn running_pods_warnings(&mut self, kinds: &[Option<Identity>]) {
        let mut warnings = Vec::new();
        let removes_any = kinds
            .iter()
            .any(|k| matches!(k, Some(Identity::RemovesBinding { .. })));
        // Live KSAs by the (account, member) they point at, and the KSAs the
        // plan annotates, by (cluster, namespace, name): built once.
        let mut pointing: BTreeMap<(&str, String), Vec<KsaAt<'_>>> = BTreeMap::new();
        let mut repointed: BTreeMap<(&crate::ids::ClusterKey, &str, &str), &str> = BTreeMap::new();
        if removes_any {
            for (key, cluster) in &self.live.clusters {
                let Some(kube) = &cluster.kube else { continue };
                for ((ns, name), sa) in &kube.service_accounts {
                    let Some(email) = sa.annotation(crate::ownership::GSA_ANNOTATION) else {
                        continue;
                    };
                    pointing
                        .entry((email, ksa_member(&key.project, ns, name)))
                        .or_default()
                        .push((key, ns.as_str(), name.as_str()));
                }
            }
            for (k, c) in kinds.iter().zip(&self.changes) {
                if let (
                    Some(Identity::Annotates { email, .. }),
                    Resource::KubernetesServiceAccount {
                        cluster,
                        namespace,
                        name,
                    },
                ) = (k, &c.resource)
                {
                    repointed.insert((cluster, namespace.as_str(), name.as_str()), email.as_str());
                }
            }
        }
        let pointing: BTreeMap<(&str, &str), &Vec<KsaAt<'_>>> = pointing
            .iter()
            .map(|((e, m), v)| ((*e, m.as_str()), v))
            .collect();
        for (i, kind) in kinds.iter().enumerate() {
            let change = &self.changes[i];
            let losing: Vec<(crate::ids::ClusterKey, String, String, String)> = match kind {
                Some(Identity::Unannotates { email, .. }) => match &change.resource {
                    Resource::KubernetesServiceAccount {
                        cluster,
                        namespace,
                        name,
                    } => vec![(
                        cluster.clone(),
                        namespace.clone(),
                        name.clone(),
                        email.clone(),
                    )],
                    _ => vec![],
                },
                Some(Identity::RemovesBinding { email, member }) => {
                    // Every KSA of the pool that still points at this
                    // account, unless the plan points it elsewhere first.
                    pointing
                        .get(&(email.as_str(), member.as_str()))
                        .into_iter()
                        .flat_map(|v| v.iter())
                        .filter(|(key, ns, name)| {
                            repointed
                                .get(&(*key, *ns, *name))
                                .is_none_or(|e| e == email)
                        })
                        .map(|(key, ns, name)| {
                            (
                                (*key).clone(),
                                ns.to_string(),
                                name.to_string(),
                                email.clone(),
                            )
                        })
                        .collect()
                }
                _ => vec![],
            };
            for (key, ns, name, email) in losing {
                let Some(kube) = self.live.clusters.get(&key).and_then(|c| c.kube.as_ref()) else {
                    continue;
                };
                let pods: &[String] = kube
                    .pods_of
                    .get(&(ns.clone(), name.clone()))
                    .map_or(&[], Vec::as_slice);
                if pods.is_empty() {
                    continue;
                }
                let what = if matches!(kind, Some(Identity::RemovesBinding { .. })) {
                    "binding"
                } else {
                    "annotation"
                };
                warnings.push(Warning {
                    code: WarningCode::RunningPodsLoseAccess,
                    message: format!(
                        "{} running pod(s) use KSA {ns}/{name} in {key}, which loses its {what} to {email}: {}; they lose {email}'s access once tokens they hold expire",
                        pods.len(),
                        pods.join(", ")
                    ),
                    address: Some(change.address.clone()),
                });
            }
        }
        self.warnings.extend(warnings);
    }
}
