//! Plan-level warnings that no single change carries.

use std::collections::{BTreeMap, BTreeSet};

use super::Planner;
use crate::plan::{Warning, WarningCode};
use crate::spec::{Mapping, Risk};

impl Planner<'_> {
    /// The identity `P.svc.id.goog[NS/KSA]` is shared by every cluster of P:
    /// the declared ones the mapping leaves out, and those the spec does not
    /// declare at all but that have P's workload pool (listed once per
    /// project). A mapping that accepts `identity-sameness` turns the
    /// warning into a note of the acceptance.
    pub(super) fn identity_sameness(&mut self) {
        let mut targets: BTreeMap<(String, String, String), Vec<&Mapping>> = BTreeMap::new();
        for m in &self.model.mappings {
            targets
                .entry((
                    m.cluster.project.clone(),
                    m.namespace.clone(),
                    m.ksa.clone(),
                ))
                .or_default()
                .push(m);
        }
        // Direct grants: the KSA's principal is one for the pool too.
        let mut direct: BTreeMap<(String, String, String), Vec<&crate::spec::DirectGrant>> =
            BTreeMap::new();
        for g in &self.model.direct {
            if let crate::spec::DirectPrincipal::Ksa { namespace, ksa } = &g.principal {
                direct
                    .entry((g.cluster.project.clone(), namespace.clone(), ksa.clone()))
                    .or_default()
                    .push(g);
            }
        }
        let declared: BTreeSet<String> = self
            .model
            .clusters
            .iter()
            .map(|c| c.key.to_string())
            .collect();
        // One list per project: its clusters the spec does not declare,
        // with the project's workload pool.
        let undeclared: BTreeMap<&str, Vec<String>> = self
            .live
            .projects
            .iter()
            .map(|(project, live)| {
                let pool = crate::ids::workload_pool(project);
                let names = live
                    .clusters
                    .iter()
                    .filter(|c| c.workload_pool.as_deref() == Some(pool.as_str()))
                    .map(|c| c.key.to_string())
                    .filter(|k| !declared.contains(k))
                    .collect();
                (project.as_str(), names)
            })
            .collect();
        for ((project, ns, ksa), mappings) in targets {
            let mapped: BTreeSet<String> = mappings.iter().map(|m| m.cluster.to_string()).collect();
            let mut others: Vec<String> = self
                .model
                .clusters
                .iter()
                .filter(|c| c.key.project == project && !mapped.contains(&c.key.to_string()))
                .map(|c| c.key.to_string())
                .collect();
            if let Some(names) = undeclared.get(project.as_str()) {
                others.extend(names.iter().map(|n| format!("{n} (not in the spec)")));
            }
            if others.is_empty() {
                continue;
            }
            let accepted = mappings
                .iter()
                .all(|m| m.accept.contains(&Risk::IdentitySameness));
            let warning = if accepted {
                let at: BTreeSet<String> = mappings.iter().map(|m| m.origin.to_string()).collect();
                let at: Vec<String> = at.into_iter().collect();
                Warning {
                    code: WarningCode::AcceptedRisk,
                    message: format!(
                        "identity sameness accepted for {ns}/{ksa} (`accept: [{}]` at {}): a {ns}/{ksa} KSA in {} gets the same access as serviceAccount:{project}.svc.id.goog[{ns}/{ksa}]",
                        Risk::IdentitySameness.as_str(),
                        at.join(", "),
                        others.join(", ")
                    ),
                    address: None,
                }
            } else {
                Warning {
                    code: WarningCode::IdentitySameness,
                    message: format!(
                        "serviceAccount:{project}.svc.id.goog[{ns}/{ksa}] is one identity for every cluster of project {project}: a {ns}/{ksa} KSA in {} gets the same access",
                        others.join(", ")
                    ),
                    address: None,
                }
            };
            self.warnings.push(warning);
        }
        for ((project, ns, ksa), grants) in direct {
            let mapped: BTreeSet<String> = grants.iter().map(|g| g.cluster.to_string()).collect();
            let mut others: Vec<String> = self
                .model
                .clusters
                .iter()
                .filter(|c| c.key.project == project && !mapped.contains(&c.key.to_string()))
                .map(|c| c.key.to_string())
                .collect();
            if let Some(names) = undeclared.get(project.as_str()) {
                others.extend(names.iter().map(|n| format!("{n} (not in the spec)")));
            }
            if others.is_empty() {
                continue;
            }
            let accepted = grants
                .iter()
                .all(|g| g.accept.contains(&Risk::IdentitySameness));
            let (code, message) = if accepted {
                (
                    WarningCode::AcceptedRisk,
                    format!(
                        "identity sameness accepted for the direct roles of {ns}/{ksa}: a {ns}/{ksa} KSA in {} gets the same roles",
                        others.join(", ")
                    ),
                )
            } else {
                (
                    WarningCode::IdentitySameness,
                    format!(
                        "the principal of {ns}/{ksa} in the workload pool {project}.svc.id.goog is one identity for every cluster of project {project}: a {ns}/{ksa} KSA in {} gets the same direct roles",
                        others.join(", ")
                    ),
                )
            };
            self.warnings.push(Warning {
                code,
                message,
                address: None,
            });
        }
    }
}
