//! Plan-level warnings that no single change carries.

use std::collections::{BTreeMap, BTreeSet};

use super::Planner;
use crate::plan::{Warning, WarningCode};

impl Planner<'_> {
    /// The identity `P.svc.id.goog[NS/KSA]` is shared by every cluster of P.
    pub(super) fn identity_sameness(&mut self) {
        let mut targets: BTreeMap<(String, String, String), BTreeSet<String>> = BTreeMap::new();
        for m in &self.model.mappings {
            targets
                .entry((
                    m.cluster.project.clone(),
                    m.namespace.clone(),
                    m.ksa.clone(),
                ))
                .or_default()
                .insert(m.cluster.to_string());
        }
        for ((project, ns, ksa), clusters) in targets {
            let others: Vec<String> = self
                .model
                .clusters
                .iter()
                .filter(|c| c.key.project == project && !clusters.contains(&c.key.to_string()))
                .map(|c| c.key.to_string())
                .collect();
            if others.is_empty() {
                continue;
            }
            self.warnings.push(Warning {
                code: WarningCode::IdentitySameness,
                message: format!(
                    "serviceAccount:{project}.svc.id.goog[{ns}/{ksa}] is one identity for every cluster of project {project}: a {ns}/{ksa} KSA in {} gets the same access",
                    others.join(", ")
                ),
                address: None,
            });
        }
    }
}
