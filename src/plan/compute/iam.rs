//! Every IAM member decision: `roles/iam.workloadIdentityUser` members on
//! service accounts and project-role grants, adds and removals. This is where
//! `wi` decides to remove a member: only on accounts one of the run's owners
//! owns (undeclared members are drift; a member is attributed to the owner of
//! its account) or when the spec lists the member under `absent`. A mapping
//! of one owner to an account of another is refused: the other owner's next
//! run would remove its member.

use std::collections::{BTreeMap, BTreeSet};

use super::{Planner, create, delete, has_member, noop, reason, unconditional_members};
use crate::ids::{gsa_account_id, gsa_member, gsa_project};
use crate::ownership::WORKLOAD_IDENTITY_USER;
use crate::plan::desired::WORKLOAD_POOL;
use crate::plan::{Action, ReasonCode, Resource, Warning, WarningCode};

impl Planner<'_> {
    /// Addresses of planned cluster changes that create the workload pool of `project`,
    /// when no live cluster of that project has one yet.
    fn pool_dependencies(&self, pool_project: &str) -> Vec<String> {
        let live_pool = self.live.clusters.iter().any(|(key, c)| {
            key.project == pool_project && c.gke.as_ref().and_then(|g| g.workload_pool()).is_some()
        });
        if live_pool {
            return vec![];
        }
        self.changes
            .iter()
            .filter(|c| {
                matches!(&c.resource, Resource::Cluster { cluster } if cluster.project == pool_project)
                    && matches!(c.action, Action::Create | Action::Update)
                    && c.after.as_ref().and_then(|a| a.get(WORKLOAD_POOL)).is_some_and(|v| !v.is_null())
            })
            .map(|c| c.address.clone())
            .collect()
    }

    /// The project an account's policy is planned under: the user-managed
    /// account's own, or what the model says for an external account (`-`,
    /// IAM's wildcard, for Google-managed ones).
    pub(super) fn account_project(&self, email: &str) -> String {
        if let Some(p) = gsa_project(email) {
            return p.to_string();
        }
        self.model
            .mappings
            .iter()
            .filter(|m| m.gsa_email == email)
            .map(|m| m.gsa_project.clone())
            .chain(
                self.model
                    .absent
                    .iter()
                    .filter(|a| a.gsa_email == email)
                    .map(|a| a.gsa_project.clone()),
            )
            .next()
            .unwrap_or_else(|| "-".to_string())
    }

    pub(super) fn account_members(&mut self) {
        // Desired members per account.
        // Keyed by email: an account's project is resolved from its email
        // (or, for Google-managed accounts, the model's `-`) in one place.
        let mut desired: BTreeMap<String, BTreeSet<(String, String)>> = BTreeMap::new();
        let mut colliding: BTreeSet<String> = BTreeSet::new();
        for m in &self.model.mappings {
            if let Some(gsa) = self.declared_gsa(&m.gsa_email)
                && self.account_collision(gsa).is_some()
            {
                colliding.insert(m.gsa_email.clone());
                continue; // the account's collision is reported
            }
            if let Some(other) = self.account_owner(&m.gsa_email)
                && other != m.owner
            {
                let declared = self
                    .declared_gsa(&m.gsa_email)
                    .map(|g| format!(" (declared at {})", g.origin))
                    .unwrap_or_default();
                self.problem(
                    format!(
                        "service_account_iam_member[\"{}/{WORKLOAD_IDENTITY_USER}/{}\"]",
                        m.gsa_email,
                        m.member()
                    ),
                    format!(
                        "the mapping of {} at {} binds {}/{} to {}, which {other} owns{declared}: {other}'s next run would remove the binding",
                        m.owner, m.origin, m.namespace, m.ksa, m.gsa_email
                    ),
                    Some(&format!(
                        "declare the mapping in {other}'s spec: the members of an account are its owner's"
                    )),
                );
                colliding.insert(m.gsa_email.clone());
                continue;
            }
            desired
                .entry(m.gsa_email.clone())
                .or_default()
                .insert((m.member(), m.cluster.project.clone()));
        }
        for (email, members) in &desired {
            let project = &self.account_project(email);
            let account_planned = self.planned(&Resource::ServiceAccount {
                project: project.clone(),
                account_id: gsa_account_id(email).to_string(),
            });
            let account_exists = self.live.account(project, email).is_some();
            if !account_exists && !account_planned {
                self.problem(
                    format!("service_account[\"{email}\"]"),
                    format!(
                        "service account {email} does not exist and the spec does not declare it"
                    ),
                    Some("declare it under `serviceAccounts` so wi creates it, or fix the email"),
                );
                continue;
            }
            let managed = self.manages_account(email);
            let policy = self.live.account_policies.get(email);
            for (member, pool_project) in members {
                let resource = Resource::ServiceAccountIamMember {
                    project: project.clone(),
                    email: email.clone(),
                    role: WORKLOAD_IDENTITY_USER.to_string(),
                    member: member.clone(),
                };
                let a = attrs!({"service_account": email, "role": WORKLOAD_IDENTITY_USER, "member": member});
                if has_member(policy, WORKLOAD_IDENTITY_USER, member) {
                    let why = if managed {
                        reason(ReasonCode::InSync, "bound")
                    } else {
                        reason(
                            ReasonCode::NotOwned,
                            "bound, on an account not managed by wi: removing the mapping leaves the binding (revoke it with `absent`)",
                        )
                    };
                    self.push(noop(resource, a.clone(), a, why));
                    continue;
                }
                let mut deps = self.pool_dependencies(pool_project);
                if account_planned {
                    deps.push(
                        Resource::ServiceAccount {
                            project: project.clone(),
                            account_id: gsa_account_id(email).to_string(),
                        }
                        .address(),
                    );
                }
                self.push(
                    create(
                        resource,
                        a,
                        reason(
                            ReasonCode::Missing,
                            "the KSA cannot act as the GSA without this binding",
                        ),
                    )
                    .with_deps(deps),
                );
            }
        }
        // Removals: undeclared members on accounts this run's owners manage,
        // and declared-absent members anywhere.
        let declared_members: BTreeMap<&str, BTreeSet<String>> = desired
            .iter()
            .map(|(email, ms)| (email.as_str(), ms.iter().map(|(m, _)| m.clone()).collect()))
            .collect();
        let absent: BTreeSet<(&str, &str)> = self
            .model
            .absent
            .iter()
            .map(|a| (a.gsa_email.as_str(), a.member.as_str()))
            .collect();
        for (email, policy) in &self.live.account_policies {
            if colliding.contains(email) {
                continue;
            }
            let project = self.account_project(email);
            let managed = self.manages_account(email);
            let declared = declared_members.get(email.as_str());
            let pruned_account = self.options.prune
                && self.declared_gsa(email).is_none()
                && self.marked_owner(email).is_some_and(|o| self.loaded(&o))
                && self
                    .live
                    .projects
                    .values()
                    .any(|p| p.service_accounts.contains_key(email));
            if pruned_account {
                continue; // the account itself goes
            }
            for member in unconditional_members(policy, WORKLOAD_IDENTITY_USER) {
                let is_declared = declared.is_some_and(|d| d.contains(member));
                let why = if absent.contains(&(email.as_str(), member)) {
                    reason(
                        ReasonCode::DeclaredAbsent,
                        "the spec lists this member under `absent`",
                    )
                } else if managed && !is_declared {
                    reason(
                        ReasonCode::NotInSpec,
                        "the account is managed by wi and no mapping declares this member",
                    )
                } else {
                    continue;
                };
                let resource = Resource::ServiceAccountIamMember {
                    project: project.clone(),
                    email: email.clone(),
                    role: WORKLOAD_IDENTITY_USER.to_string(),
                    member: member.to_string(),
                };
                let address = resource.address();
                let a = attrs!({"service_account": email, "role": WORKLOAD_IDENTITY_USER, "member": member});
                self.push(delete(resource, a, why).with_warnings(vec![Warning {
                    code: WarningCode::RevocationDelay,
                    message: "a removed binding keeps working for tokens already issued, for up to 30 minutes".into(),
                    address: Some(address),
                }]));
            }
        }
    }

    pub(super) fn project_roles(&mut self) {
        for gsa in &self.model.service_accounts {
            if self.account_collision(gsa).is_some() {
                continue;
            }
            let email = gsa.email();
            let member = gsa_member(&email);
            let live_project = self.live.projects.get(&gsa.project);
            let policy = live_project.and_then(|p| p.policy.as_ref());
            let account_address = Resource::ServiceAccount {
                project: gsa.project.clone(),
                account_id: gsa.account_id.clone(),
            };
            let account_planned = self.planned(&account_address);
            for role in &gsa.roles {
                let resource = Resource::ProjectIamMember {
                    project: gsa.project.clone(),
                    role: role.clone(),
                    member: member.clone(),
                };
                let a = attrs!({"project": gsa.project, "role": role, "member": member});
                if has_member(policy, role, &member) {
                    self.push(noop(
                        resource,
                        a.clone(),
                        a,
                        reason(ReasonCode::InSync, "granted"),
                    ));
                } else {
                    let deps =
                        if account_planned && self.live.account(&gsa.project, &email).is_none() {
                            vec![account_address.address()]
                        } else {
                            vec![]
                        };
                    self.push(
                        create(
                            resource,
                            a,
                            reason(
                                ReasonCode::Missing,
                                "the spec grants this role to the account",
                            ),
                        )
                        .with_deps(deps),
                    );
                }
            }
            // Undeclared grants of an existing account this owner manages
            // (or adopts, or claims: the adopting plan lists them).
            let owned = self.live.account(&gsa.project, &email).is_some()
                && self.account_owner(&email).as_ref() == Some(&gsa.owner);
            if !owned {
                continue;
            }
            let Some(policy) = policy else { continue };
            for binding in &policy.bindings {
                if binding.condition.is_some()
                    || !binding.members.contains(&member)
                    || gsa.roles.contains(&binding.role)
                {
                    continue;
                }
                let resource = Resource::ProjectIamMember {
                    project: gsa.project.clone(),
                    role: binding.role.clone(),
                    member: member.clone(),
                };
                let a = attrs!({"project": gsa.project, "role": binding.role, "member": member});
                self.push(delete(
                    resource,
                    a,
                    reason(
                        ReasonCode::NotInSpec,
                        "the account is managed by wi and the spec does not grant it this role",
                    ),
                ));
            }
        }
    }
}
