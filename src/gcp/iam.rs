//! IAM v1: service accounts, their IAM policies, and the etag-guarded
//! read-modify-write of any IAM policy `wi` edits (service account or project).

use std::sync::atomic::Ordering;
use std::time::Duration;

use reqwest::Method;
use serde::Deserialize;
use serde_json::{Value, json};

use super::error::GcpError;
use super::retry::Pacer;
use super::transport::{Api, Call, not_found_as_none};
use super::types::{GoogleServiceAccount, IamPolicy};
use super::{GcpClient, PolicyTarget};

#[derive(Deserialize, Default)]
#[serde(default, rename_all = "camelCase")]
struct ListServiceAccountsResponse {
    accounts: Vec<GoogleServiceAccount>,
    next_page_token: String,
}

/// The project segment of a call on one account: the project the email
/// names (`NAME@PROJECT.iam.gserviceaccount.com`, App Engine's
/// `PROJECT@appspot.gserviceaccount.com`), else IAM's wildcard `-`
/// (`projects/-/serviceAccounts/EMAIL`: IAM resolves the account from the
/// email alone). Google-managed accounts whose email names a project
/// number or a service (the Compute Engine default account, service agents
/// on `gcp-sa-*` domains) get `-`.
fn sa_project(email: &str) -> &str {
    let Some((local, domain)) = email.split_once('@') else {
        return "-";
    };
    let project = if domain == "appspot.gserviceaccount.com" {
        Some(local)
    } else {
        domain
            .strip_suffix(".iam.gserviceaccount.com")
            .filter(|p| !p.starts_with("gcp-sa-") && !p.contains('.'))
            .filter(|_| !is_service_agent_id(local))
    };
    project
        .filter(|p| !p.is_empty() && !p.contains('/'))
        .unwrap_or("-")
}

/// `service-NUMBER` (and `service-org-` / `service-folder-`): a service
/// agent's id, whatever its domain.
fn is_service_agent_id(local: &str) -> bool {
    local
        .strip_prefix("service-")
        .map(|n| {
            n.strip_prefix("org-")
                .or_else(|| n.strip_prefix("folder-"))
                .unwrap_or(n)
        })
        .is_some_and(|n| !n.is_empty() && n.bytes().all(|c| c.is_ascii_digit()))
}

/// A call on one service account: `v1/projects/P/serviceAccounts/{email}{suffix}`
/// (`suffix` is empty or a custom verb such as `:getIamPolicy`).
fn service_account_call(name: &'static str, method: Method, email: &str, suffix: &str) -> Call {
    Call::new(
        Api::Iam,
        name,
        method,
        &[
            "v1",
            "projects",
            sa_project(email),
            "serviceAccounts",
            &format!("{email}{suffix}"),
        ],
    )
}

/// IAM rejects or drops empty bindings; conditions need policy version 3.
fn normalize_policy(policy: &mut IamPolicy) {
    policy.bindings.retain(|b| !b.members.is_empty());
    if policy.bindings.iter().any(|b| b.condition.is_some()) {
        policy.version = Some(3);
    }
}

impl GcpClient {
    pub async fn list_service_accounts(
        &self,
        project: &str,
    ) -> Result<Vec<GoogleServiceAccount>, GcpError> {
        self.list_service_accounts_by_page(project, |_| {}).await
    }

    /// `serviceAccounts.list`, every page, handing each page to `page` as it
    /// arrives (so what depends on an account can start before the last
    /// page: IAM pages hold at most 100 accounts).
    pub async fn list_service_accounts_by_page(
        &self,
        project: &str,
        mut page_arrived: impl FnMut(&[GoogleServiceAccount]),
    ) -> Result<Vec<GoogleServiceAccount>, GcpError> {
        let mut out = Vec::new();
        let mut token = String::new();
        let mut seen = std::collections::HashSet::new();
        loop {
            let mut call = Call::new(
                Api::Iam,
                "serviceAccounts.list",
                Method::GET,
                &["v1", "projects", project, "serviceAccounts"],
            )
            .query("pageSize", "100");
            if !token.is_empty() {
                call = call.query("pageToken", token.clone());
            }
            let page: ListServiceAccountsResponse = self.send(call).await?;
            page_arrived(&page.accounts);
            out.extend(page.accounts);
            if page.next_page_token.is_empty() {
                return Ok(out);
            }
            if !seen.insert(page.next_page_token.clone()) {
                return Err(GcpError::Decode(format!(
                    "iam serviceAccounts.list: page token {:?} repeated",
                    page.next_page_token
                )));
            }
            token = page.next_page_token;
        }
    }

    /// `serviceAccounts.get`; `None` when IAM does not know the account.
    pub async fn get_service_account(
        &self,
        email: &str,
    ) -> Result<Option<GoogleServiceAccount>, GcpError> {
        let call = service_account_call("serviceAccounts.get", Method::GET, email, "");
        not_found_as_none(self.send(call).await)
    }

    /// `serviceAccounts.create`. A create retried after a 5xx may find its own
    /// first attempt done: the answer is then 409 `ALREADY_EXISTS`
    /// ([`GcpError::is_already_exists`]), which callers treat as success when the
    /// existing account matches. IAM may not show a new account to reads for a
    /// while: [`Self::modify_iam_policy_waiting`] waits that out.
    pub async fn create_service_account(
        &self,
        project: &str,
        account_id: &str,
        display_name: Option<&str>,
        description: Option<&str>,
    ) -> Result<GoogleServiceAccount, GcpError> {
        let mut sa = serde_json::Map::new();
        if let Some(d) = display_name {
            sa.insert("displayName".into(), d.into());
        }
        if let Some(d) = description {
            sa.insert("description".into(), d.into());
        }
        let call = Call::new(
            Api::Iam,
            "serviceAccounts.create",
            Method::POST,
            &["v1", "projects", project, "serviceAccounts"],
        )
        .body(json!({ "accountId": account_id, "serviceAccount": sa }));
        self.send(call).await
    }

    /// `serviceAccounts.patch` of the given fields (`updateMask` lists exactly
    /// the `Some` ones; `Some("")` clears a field). IAM answers with `name` and
    /// the patched fields only.
    pub async fn patch_service_account(
        &self,
        email: &str,
        display_name: Option<&str>,
        description: Option<&str>,
    ) -> Result<GoogleServiceAccount, GcpError> {
        let mut sa = serde_json::Map::new();
        let mut mask = Vec::new();
        if let Some(d) = display_name {
            sa.insert("displayName".into(), d.into());
            mask.push("display_name");
        }
        if let Some(d) = description {
            sa.insert("description".into(), d.into());
            mask.push("description");
        }
        if mask.is_empty() {
            return Err(GcpError::Config(format!(
                "patch of {email}: no field to update"
            )));
        }
        let project = sa_project(email);
        sa.insert(
            "name".into(),
            format!("projects/{project}/serviceAccounts/{email}").into(),
        );
        let call = service_account_call("serviceAccounts.patch", Method::PATCH, email, "")
            .body(json!({ "serviceAccount": sa, "updateMask": mask.join(",") }));
        self.send(call).await
    }

    /// `serviceAccounts.enable`: a disabled account can mint no tokens, so
    /// every KSA mapped to it is cut off. Enabling an enabled account is a no-op.
    pub async fn enable_service_account(&self, email: &str) -> Result<(), GcpError> {
        let call = service_account_call("serviceAccounts.enable", Method::POST, email, ":enable")
            .body(json!({}));
        self.send::<Value>(call).await.map(|_| ())
    }

    /// `serviceAccounts.delete`; an account that is already gone is success.
    pub async fn delete_service_account(&self, email: &str) -> Result<(), GcpError> {
        let call = service_account_call("serviceAccounts.delete", Method::DELETE, email, "");
        match self.send::<Value>(call).await {
            Ok(_) => Ok(()),
            Err(e) if e.is_not_found() => Ok(()),
            Err(e) => Err(e),
        }
    }

    /// `serviceAccounts.getIamPolicy`: POST, no body,
    /// `options.requestedPolicyVersion=3` in the query.
    pub async fn get_service_account_iam_policy(&self, email: &str) -> Result<IamPolicy, GcpError> {
        let call = service_account_call(
            "serviceAccounts.getIamPolicy",
            Method::POST,
            email,
            ":getIamPolicy",
        )
        .query("options.requestedPolicyVersion", "3");
        self.send(call).await
    }

    /// `serviceAccounts.testIamPermissions`: the subset of `permissions` the
    /// caller holds on the account `email`.
    pub async fn test_service_account_permissions(
        &self,
        email: &str,
        permissions: &[&str],
    ) -> Result<Vec<String>, GcpError> {
        let call = service_account_call(
            "serviceAccounts.testIamPermissions",
            Method::POST,
            email,
            ":testIamPermissions",
        )
        .body(json!({ "permissions": permissions }));
        let held: super::resourcemanager::HeldPermissions = self.send(call).await?;
        Ok(held.permissions)
    }

    /// [`Self::test_service_account_permissions`] asked with `bearer` (a
    /// KSA's federated token): what that principal holds on `email`.
    pub async fn test_service_account_permissions_as(
        &self,
        bearer: &secrecy::SecretString,
        email: &str,
        permissions: &[String],
    ) -> Result<Vec<String>, GcpError> {
        let call = service_account_call(
            "serviceAccounts.testIamPermissions",
            Method::POST,
            email,
            ":testIamPermissions",
        )
        .body(json!({ "permissions": permissions }))
        .bearer(bearer);
        let held: super::resourcemanager::HeldPermissions = self.send(call).await?;
        Ok(held.permissions)
    }

    /// `roles.get` (a predefined role, `roles/NAME`) or `projects.roles.get`
    /// / `organizations.roles.get` (a custom one): the permissions it
    /// includes.
    pub async fn role_permissions(&self, role: &str) -> Result<Vec<String>, GcpError> {
        #[derive(serde::Deserialize, Default)]
        #[serde(default, rename_all = "camelCase")]
        struct Role {
            included_permissions: Vec<String>,
        }
        let name = if role.starts_with("roles/") {
            "roles.get"
        } else if role.starts_with("organizations/") {
            "organizations.roles.get"
        } else {
            "projects.roles.get"
        };
        let mut segments = vec!["v1"];
        segments.extend(role.split('/'));
        let call = Call::new(Api::Iam, name, Method::GET, &segments);
        let r: Role = self.send(call).await?;
        Ok(r.included_permissions)
    }

    /// `serviceAccounts.setIamPolicy` (`updateMask: bindings,etag`). The etag in
    /// `policy` makes the write conditional; prefer [`Self::modify_iam_policy`].
    pub async fn set_service_account_iam_policy(
        &self,
        email: &str,
        policy: &IamPolicy,
    ) -> Result<IamPolicy, GcpError> {
        let call = service_account_call(
            "serviceAccounts.setIamPolicy",
            Method::POST,
            email,
            ":setIamPolicy",
        )
        .body(json!({ "policy": policy, "updateMask": "bindings,etag" }));
        self.send(call).await
    }

    /// Read-modify-write of an IAM policy guarded by its etag. Reads, lets `edit`
    /// change the copy (returning `false` means "nothing to do": no write, the
    /// read policy is returned), writes it with the etag just read. On 409
    /// `ABORTED` (someone wrote in between) it starts over from a fresh read and
    /// re-applies `edit`, so only `edit`'s own changes are ever written on top
    /// of the latest policy, until `deadline`. Other errors are returned as they
    /// are (after the per-call retries of 429/5xx).
    pub async fn modify_iam_policy(
        &self,
        target: &PolicyTarget,
        deadline: Duration,
        edit: &(dyn Fn(&mut IamPolicy) -> bool + Send + Sync),
    ) -> Result<IamPolicy, GcpError> {
        let mut pacer = Pacer::retry(&self.inner.retry, deadline);
        let mut attempts = 0u32;
        loop {
            let read = match target {
                PolicyTarget::ServiceAccount { email } => {
                    self.get_service_account_iam_policy(email).await?
                }
                PolicyTarget::Project { project } => self.get_project_iam_policy(project).await?,
            };
            let mut edited = read.clone();
            if !edit(&mut edited) {
                return Ok(read);
            }
            // The write is conditional on exactly the policy `edit` saw.
            edited.etag = read.etag.clone();
            normalize_policy(&mut edited);
            let written = match target {
                PolicyTarget::ServiceAccount { email } => {
                    self.set_service_account_iam_policy(email, &edited).await
                }
                PolicyTarget::Project { project } => {
                    self.set_project_iam_policy(project, &edited).await
                }
            };
            match written {
                Ok(p) => return Ok(p),
                Err(e) if e.is_etag_conflict() => {
                    attempts += 1;
                    let Some(delay) = pacer.next_delay() else {
                        return Err(GcpError::Timeout {
                            what: format!(
                                "a conflict-free IAM policy write on {target} ({attempts} concurrent changes)"
                            ),
                            after: deadline,
                        });
                    };
                    self.inner.counters.retries.fetch_add(1, Ordering::Relaxed);
                    tracing::debug!(%target, attempts, "IAM policy changed concurrently; re-reading");
                    tokio::time::sleep(delay).await;
                }
                Err(e) => return Err(e),
            }
        }
    }

    /// [`Self::modify_iam_policy`], also waiting out IAM's eventual consistency
    /// until `deadline`: "Service account ... does not exist" (a member created
    /// moments ago), "Identity Pool does not exist" (the first Workload Identity
    /// cluster of the project is still being set up), and 404 on a service
    /// account's own policy right after it was created. `on_wait` hears each
    /// wait (error and delay) so the caller can say what it is waiting for.
    /// Past the deadline the last such error is returned as it is.
    pub async fn modify_iam_policy_waiting(
        &self,
        target: &PolicyTarget,
        deadline: Duration,
        edit: &(dyn Fn(&mut IamPolicy) -> bool + Send + Sync),
        on_wait: &(dyn Fn(&GcpError, Duration) + Send + Sync),
    ) -> Result<IamPolicy, GcpError> {
        let mut pacer = Pacer::retry(&self.inner.retry, deadline);
        loop {
            let err = match self.modify_iam_policy(target, pacer.left(), edit).await {
                Ok(p) => return Ok(p),
                Err(e) => e,
            };
            let settling = err.is_service_account_missing()
                || err.is_identity_pool_missing()
                || (matches!(target, PolicyTarget::ServiceAccount { .. }) && err.is_not_found());
            if !settling {
                return Err(err);
            }
            let Some(delay) = pacer.next_delay() else {
                return Err(err);
            };
            self.inner.counters.retries.fetch_add(1, Ordering::Relaxed);
            on_wait(&err, delay);
            tokio::time::sleep(delay).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn project_of_email() {
        assert_eq!(sa_project("a@p-1.iam.gserviceaccount.com"), "p-1");
        assert_eq!(sa_project("123-compute@developer.gserviceaccount.com"), "-");
        assert_eq!(sa_project("nonsense"), "-");
        assert_eq!(
            sa_project("acme-prod@appspot.gserviceaccount.com"),
            "acme-prod"
        );
        assert_eq!(sa_project("123@cloudservices.gserviceaccount.com"), "-");
        assert_eq!(
            sa_project("service-123@gcp-sa-cloudbuild.iam.gserviceaccount.com"),
            "-"
        );
        assert_eq!(
            sa_project("service-123@container-engine-robot.iam.gserviceaccount.com"),
            "-"
        );
    }

    #[test]
    fn conditions_force_version_3_and_empty_bindings_go() {
        let mut p: IamPolicy = serde_json::from_value(json!({
            "version": 1, "etag": "BwX",
            "bindings": [
                {"role": "roles/a", "members": []},
                {"role": "roles/b", "members": ["user:x"], "condition": {"title": "t", "expression": "true"}}
            ]
        }))
        .expect("policy");
        normalize_policy(&mut p);
        assert_eq!(p.version, Some(3));
        assert_eq!(p.bindings.len(), 1);
    }
}
