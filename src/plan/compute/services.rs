//! The Google APIs Workload Identity needs: `iamcredentials.googleapis.com`
//! in every project holding a mapped account.

use std::collections::BTreeSet;

use super::{Planner, change, noop, reason};
use crate::live::{IAM_CREDENTIALS_SERVICE, WILDCARD_PROJECT};
use crate::plan::{Action, ReasonCode, Resource};

impl Planner<'_> {
    /// iamcredentials.googleapis.com in every project holding a mapped account.
    pub(super) fn services(&mut self) {
        let projects: BTreeSet<&str> = self
            .model
            .service_accounts
            .iter()
            .map(|g| g.project.as_str())
            .chain(self.model.mappings.iter().map(|m| m.gsa_project.as_str()))
            .collect();
        // `-` (IAM's wildcard: the compute default account, service agents)
        // is not a project: there is no service to check.
        for project in projects.into_iter().filter(|p| *p != WILDCARD_PROJECT) {
            let Some(enabled) = self
                .live
                .projects
                .get(project)
                .and_then(|p| p.iam_credentials_enabled)
            else {
                continue;
            };
            let resource = Resource::ProjectService {
                project: project.to_string(),
                service: IAM_CREDENTIALS_SERVICE.to_string(),
            };
            let state = |on: bool| attrs!({"state": if on { "ENABLED" } else { "DISABLED" }});
            if enabled {
                self.push(noop(
                    resource,
                    state(true),
                    state(true),
                    reason(ReasonCode::InSync, "enabled"),
                ));
            } else {
                self.push(change(resource, Action::Create, Some(state(false)), Some(state(true)), reason(ReasonCode::Missing,
                        "Workload Identity exchanges tokens through the IAM Service Account Credentials API, which is disabled",
                    )));
            }
        }
    }
}
