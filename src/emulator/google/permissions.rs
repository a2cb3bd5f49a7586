//! Who may do what: the emulator's role catalogue (predefined roles and the
//! custom roles of `projects.roles`) and the permission checks derived from
//! IAM policies (project, service account, GKE's Kubernetes authorizer).
//! Kept in one module so the model can grow without touching the API
//! handlers. Every handler checks the one permission Google checks for its
//! method, so a caller holding exactly `wi`'s documented role (README,
//! "Permissions") can do what `wi` does and nothing it leaves out.

use crate::emulator::world::{EmulatorWorld, Principal};

/// Does `role` grant `permission`? The emulator's role catalogue: small, but
/// shaped like the real predefined roles.
pub(crate) fn role_grants(role: &str, permission: &str) -> bool {
    let read_only = permission.ends_with(".get")
        || permission.ends_with(".list")
        || permission.ends_with(".getIamPolicy");
    match role {
        "roles/owner" => permission != "iam.serviceAccounts.getAccessToken",
        "roles/editor" => {
            permission != "iam.serviceAccounts.getAccessToken"
                && !permission.ends_with(".setIamPolicy")
        }
        "roles/viewer" | "roles/browser" => read_only,
        "roles/iam.serviceAccountAdmin" => {
            (permission.starts_with("iam.serviceAccounts.")
                && permission != "iam.serviceAccounts.getAccessToken")
                || permission == "resourcemanager.projects.get"
        }
        "roles/iam.serviceAccountKeyAdmin" => permission.starts_with("iam.serviceAccountKeys."),
        "roles/iam.serviceAccountViewer" => {
            permission.starts_with("iam.serviceAccounts.") && read_only
        }
        "roles/iam.workloadIdentityUser" => permission == "iam.serviceAccounts.getAccessToken",
        "roles/iam.serviceAccountTokenCreator" => matches!(
            permission,
            "iam.serviceAccounts.getAccessToken"
                | "iam.serviceAccounts.getOpenIdToken"
                | "iam.serviceAccounts.implicitDelegation"
                | "iam.serviceAccounts.signBlob"
                | "iam.serviceAccounts.signJwt"
        ),
        // Roles workloads are granted directly (a sample of the real ones'
        // permissions, enough for `testIamPermissions`).
        "roles/cloudsql.client" => matches!(
            permission,
            "cloudsql.instances.connect" | "cloudsql.instances.get"
        ),
        "roles/storage.objectViewer" => {
            matches!(permission, "storage.objects.get" | "storage.objects.list")
        }
        "roles/pubsub.subscriber" => matches!(
            permission,
            "pubsub.subscriptions.consume" | "pubsub.topics.attachSubscription"
        ),
        "roles/pubsub.publisher" => permission == "pubsub.topics.publish",
        "roles/logging.logWriter" => permission == "logging.logEntries.create",
        "roles/monitoring.metricWriter" => permission == "monitoring.timeSeries.create",
        "roles/container.admin" => {
            permission.starts_with("container.") || permission == "resourcemanager.projects.get"
        }
        "roles/container.clusterAdmin" => {
            permission.starts_with("container.clusters.")
                || permission.starts_with("container.operations.")
        }
        "roles/container.viewer" => permission.starts_with("container.") && read_only,
        "roles/container.developer" => {
            permission.starts_with("container.")
                && (read_only || !permission.starts_with("container.clusters."))
        }
        "roles/serviceusage.serviceUsageAdmin" => permission.starts_with("serviceusage."),
        "roles/serviceusage.serviceUsageViewer" => {
            permission.starts_with("serviceusage.") && read_only
        }
        "roles/resourcemanager.projectIamAdmin" => {
            permission == "resourcemanager.projects.getIamPolicy"
                || permission == "resourcemanager.projects.setIamPolicy"
        }
        "roles/iam.securityAdmin" => {
            permission.ends_with(".getIamPolicy") || permission.ends_with(".setIamPolicy")
        }
        _ => false,
    }
}

/// Every permission the emulator's catalogue knows: what `roles.get` lists
/// of a predefined role is the part of this the role grants.
const KNOWN_PERMISSIONS: &[&str] = &[
    "cloudsql.instances.connect",
    "cloudsql.instances.get",
    "container.clusters.create",
    "container.clusters.get",
    "container.clusters.list",
    "container.clusters.update",
    "container.operations.get",
    "container.operations.list",
    "iam.serviceAccounts.create",
    "iam.serviceAccounts.delete",
    "iam.serviceAccounts.disable",
    "iam.serviceAccounts.enable",
    "iam.serviceAccounts.get",
    "iam.serviceAccounts.getAccessToken",
    "iam.serviceAccounts.getIamPolicy",
    "iam.serviceAccounts.getOpenIdToken",
    "iam.serviceAccounts.implicitDelegation",
    "iam.serviceAccounts.list",
    "iam.serviceAccounts.setIamPolicy",
    "iam.serviceAccounts.signBlob",
    "iam.serviceAccounts.signJwt",
    "iam.serviceAccounts.update",
    "logging.logEntries.create",
    "monitoring.timeSeries.create",
    "pubsub.subscriptions.consume",
    "pubsub.topics.attachSubscription",
    "pubsub.topics.publish",
    "resourcemanager.projects.get",
    "resourcemanager.projects.getIamPolicy",
    "resourcemanager.projects.setIamPolicy",
    "serviceusage.services.enable",
    "serviceusage.services.get",
    "serviceusage.services.list",
    "storage.objects.get",
    "storage.objects.list",
];

/// The permissions a predefined role includes (empty: no such role).
pub(crate) fn predefined_role_permissions(role: &str) -> Vec<&'static str> {
    KNOWN_PERMISSIONS
        .iter()
        .copied()
        .filter(|p| role_grants(role, p))
        .collect()
}

/// Does `role` grant `permission`, for a predefined role or a custom role
/// of the world (`projects/P/roles/ID`, not deleted)?
pub(crate) fn grants(world: &EmulatorWorld, role: &str, permission: &str) -> bool {
    if role.starts_with("projects/") || role.starts_with("organizations/") {
        return world
            .custom_roles
            .get(role)
            .is_some_and(|r| !r.deleted && r.permissions.contains(permission));
    }
    role_grants(role, permission)
}

/// True when `principal` holds `permission` on `project` through the project policy.
pub(crate) fn allowed_on_project(
    world: &EmulatorWorld,
    principal: &Principal,
    project: &str,
    permission: &str,
) -> bool {
    let Some(p) = world.projects.get(project) else {
        return false;
    };
    // The admin principals are owners at the (emulated) organization level, so
    // a project policy that drops their binding cannot lock them out.
    if let Some(admin) = &world.admin {
        let is_admin = match principal {
            Principal::User(e) => *e == admin.user_email,
            Principal::ServiceAccountRecord(e) => *e == admin.sa_email,
            Principal::Federated { .. } => false,
        };
        if is_admin && role_grants("roles/owner", permission) {
            return true;
        }
    }
    p.policy
        .roles_of(&principal.members())
        .iter()
        .any(|r| grants(world, r, permission))
}

/// The principal behind a Kubernetes username the emulator handed out
/// (see [`Principal::email`]).
pub(crate) fn principal_from_email(world: &EmulatorWorld, user: &str) -> Principal {
    if let Some((pool, rest)) = user.split_once('[')
        && let Some((ns, ksa)) = rest.trim_end_matches(']').split_once('/')
    {
        let project_number = pool
            .strip_suffix(".svc.id.goog")
            .and_then(|p| world.projects.get(p))
            .map(|p| p.number.clone())
            .unwrap_or_default();
        return Principal::Federated {
            pool: pool.to_string(),
            namespace: ns.to_string(),
            ksa: ksa.to_string(),
            project_number,
            cluster: String::new(),
        };
    }
    if user.ends_with(".gserviceaccount.com") {
        Principal::ServiceAccountRecord(user.to_string())
    } else {
        Principal::User(user.to_string())
    }
}

/// GKE's first authorizer: may `user` do `verb` on `resource` (and
/// `subresource`) in a cluster of `project`, by the IAM permission
/// `container.<resource>.<verb>`? (RBAC, GKE's second authorizer, is not emulated.)
pub(crate) fn kube_allowed(
    world: &EmulatorWorld,
    project: &str,
    user: &str,
    verb: &str,
    resource: &str,
    subresource: &str,
) -> bool {
    let kind = match resource {
        "namespaces" => "namespaces",
        "serviceaccounts" => "serviceAccounts",
        "pods" => "pods",
        other => other,
    };
    let verb = match (verb, subresource) {
        (_, "token") => "createToken",
        ("patch", _) => "update",
        (v, _) => v,
    };
    let permission = format!("container.{kind}.{verb}");
    allowed_on_project(
        world,
        &principal_from_email(world, user),
        project,
        &permission,
    )
}

/// True when `principal` holds `permission` on the service account `email`,
/// through its own policy or its project's.
pub(crate) fn allowed_on_sa(
    world: &EmulatorWorld,
    principal: &Principal,
    email: &str,
    permission: &str,
) -> bool {
    let Some(sa) = world.service_accounts.get(email) else {
        return false;
    };
    if allowed_on_project(world, principal, &sa.project, permission) {
        return true;
    }
    sa.policy
        .roles_of(&principal.members())
        .iter()
        .any(|r| grants(world, r, permission))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn roles() {
        assert!(role_grants("roles/owner", "container.clusters.create"));
        assert!(!role_grants(
            "roles/owner",
            "iam.serviceAccounts.getAccessToken"
        ));
        assert!(role_grants("roles/viewer", "container.clusters.get"));
        assert!(!role_grants("roles/viewer", "container.clusters.create"));
        assert!(role_grants(
            "roles/iam.workloadIdentityUser",
            "iam.serviceAccounts.getAccessToken"
        ));
        assert!(!role_grants("roles/unknown", "container.clusters.get"));
    }

    #[test]
    fn kubernetes_access_follows_project_iam() {
        use crate::emulator::world::{IamPolicyRecord, ProjectRecord};
        let mut world = EmulatorWorld::default();
        let mut policy = IamPolicyRecord::empty();
        policy
            .bindings
            .push(json!({"role": "roles/viewer", "members": ["user:v@example.com"]}));
        policy.bindings.push(json!({"role": "roles/container.developer", "members": ["serviceAccount:d@p.iam.gserviceaccount.com"]}));
        world.projects.insert(
            "p".into(),
            ProjectRecord {
                id: "p".into(),
                number: "1".into(),
                name: "p".into(),
                create_ms: 0,
                services: Default::default(),
                policy,
                workload_pool_exists: true,
                labels: None,
                parent: None,
            },
        );
        assert!(kube_allowed(
            &world,
            "p",
            "v@example.com",
            "get",
            "serviceaccounts",
            ""
        ));
        assert!(!kube_allowed(
            &world,
            "p",
            "v@example.com",
            "patch",
            "serviceaccounts",
            ""
        ));
        assert!(kube_allowed(
            &world,
            "p",
            "d@p.iam.gserviceaccount.com",
            "create",
            "serviceaccounts",
            "token"
        ));
        assert!(!kube_allowed(
            &world,
            "p",
            "p.svc.id.goog[ns/ksa]",
            "get",
            "pods",
            ""
        ));
        assert!(!kube_allowed(
            &world,
            "other",
            "v@example.com",
            "get",
            "pods",
            ""
        ));
        assert_eq!(
            principal_from_email(&world, "p.svc.id.goog[ns/ksa]").members()[0],
            "serviceAccount:p.svc.id.goog[ns/ksa]"
        );
    }
}
