//! The naming rules of the services `wi` talks to (IAM, Resource Manager, GKE,
//! Kubernetes), checked before anything is sent. Each check returns `Err` with
//! the rule in words, ready to be a diagnostic's help.

/// A Google Cloud project id: 6-30 characters, lowercase letters, digits and
/// hyphens, starting with a letter and not ending with a hyphen.
pub fn check_project_id(s: &str) -> Result<(), String> {
    if id_6_30(s) {
        Ok(())
    } else {
        Err(
            "a project id has 6-30 characters: lowercase letters, digits and hyphens, \
             starting with a letter and not ending with a hyphen"
                .to_owned(),
        )
    }
}

/// An owner name: 1-30 characters, lowercase letters, digits and hyphens,
/// starting with a letter and not ending with a hyphen (it becomes a label
/// value and part of a field manager name).
pub fn check_owner(s: &str) -> Result<(), String> {
    let ok = (1..=30).contains(&s.len())
        && s.starts_with(|c: char| c.is_ascii_lowercase())
        && !s.ends_with('-')
        && s.chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
    if ok {
        Ok(())
    } else {
        Err("an owner is 1-30 lowercase letters, digits and hyphens, starting with a letter and not ending with a hyphen".to_owned())
    }
}

/// A service account id (the part of the email before `@`): the same shape as a
/// project id, 6-30 characters.
pub fn check_account_id(s: &str) -> Result<(), String> {
    if id_6_30(s) {
        Ok(())
    } else {
        Err(
            "an account id has 6-30 characters: lowercase letters, digits and hyphens, \
             starting with a letter and not ending with a hyphen"
                .to_owned(),
        )
    }
}

fn id_6_30(s: &str) -> bool {
    (6..=30).contains(&s.len()) && gke_style(s)
}

/// Lowercase letters, digits and hyphens, starting with a letter, ending with a letter or digit.
fn gke_style(s: &str) -> bool {
    let b = s.as_bytes();
    match (b.first(), b.last()) {
        (Some(f), Some(l)) => {
            f.is_ascii_lowercase()
                && (l.is_ascii_lowercase() || l.is_ascii_digit())
                && b.iter()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == b'-')
        }
        _ => false,
    }
}

/// A GKE cluster name: 1-40 characters, lowercase letters, digits and hyphens,
/// starting with a letter and ending with a letter or digit.
pub fn check_cluster_name(s: &str) -> Result<(), String> {
    if s.len() <= 40 && gke_style(s) {
        Ok(())
    } else {
        Err(
            "a cluster name has 1-40 characters: lowercase letters, digits and hyphens, \
             starting with a letter and ending with a letter or digit"
                .to_owned(),
        )
    }
}

/// A GKE node pool name: the same rule as a cluster name.
pub fn check_pool_name(s: &str) -> Result<(), String> {
    if s.len() <= 40 && gke_style(s) {
        Ok(())
    } else {
        Err(
            "a node pool name has 1-40 characters: lowercase letters, digits and hyphens, \
             starting with a letter and ending with a letter or digit"
                .to_owned(),
        )
    }
}

/// A cluster group name (a `wi` concept): like a cluster name, up to 63 characters.
pub fn check_group_name(s: &str) -> Result<(), String> {
    if s.len() <= 63 && gke_style(s) {
        Ok(())
    } else {
        Err(
            "a group name has 1-63 characters: lowercase letters, digits and hyphens, \
             starting with a letter and ending with a letter or digit"
                .to_owned(),
        )
    }
}

/// A GCP location GKE accepts: a region of [`super::locations::REGIONS`]
/// (`us-central1`) or one of its zones (`us-central1-a`).
pub fn check_location(s: &str) -> Result<(), String> {
    use super::locations::{is_known_region, is_known_zone, suggest_location};
    if is_known_region(s) || is_known_zone(s) {
        return Ok(());
    }
    let shape = if is_region(s) || is_zone(s) {
        "no Google Cloud region or zone has this name"
    } else {
        "a location is a region like `us-central1` or a zone like `us-central1-a`"
    };
    Err(match suggest_location(s) {
        Some(c) => format!("did you mean `{c}`?"),
        None => format!("{shape}; `gcloud compute regions list` shows them"),
    })
}

/// `us-central1`: letters, `-`, letters followed by digits.
pub fn is_region(s: &str) -> bool {
    let Some((area, rest)) = s.split_once('-') else {
        return false;
    };
    let letters = rest.trim_end_matches(|c: char| c.is_ascii_digit());
    !area.is_empty()
        && area.bytes().all(|c| c.is_ascii_lowercase())
        && !letters.is_empty()
        && letters.len() < rest.len()
        && letters.bytes().all(|c| c.is_ascii_lowercase())
}

/// `us-central1-a`: a region, `-`, one letter.
pub fn is_zone(s: &str) -> bool {
    match s.rsplit_once('-') {
        Some((region, zone)) => {
            is_region(region) && zone.len() == 1 && zone.bytes().all(|c| c.is_ascii_lowercase())
        }
        None => false,
    }
}

/// A DNS-1123 label (Kubernetes namespace): at most 63 characters, lowercase
/// letters, digits and `-`, starting and ending with a letter or digit.
pub fn check_namespace(s: &str) -> Result<(), String> {
    if dns_label(s) {
        Ok(())
    } else {
        Err(
            "a namespace is a DNS-1123 label: at most 63 lowercase letters, digits and \
             hyphens, starting and ending with a letter or digit"
                .to_owned(),
        )
    }
}

fn dns_label(s: &str) -> bool {
    let b = s.as_bytes();
    let alnum = |c: &u8| c.is_ascii_lowercase() || c.is_ascii_digit();
    match (b.first(), b.last()) {
        (Some(f), Some(l)) => {
            b.len() <= 63 && alnum(f) && alnum(l) && b.iter().all(|c| alnum(c) || *c == b'-')
        }
        _ => false,
    }
}

/// A DNS-1123 subdomain (Kubernetes service account name): at most 253
/// characters, dot-separated DNS-1123 labels.
pub fn check_ksa_name(s: &str) -> Result<(), String> {
    if !s.is_empty() && s.len() <= 253 && s.split('.').all(dns_label) {
        Ok(())
    } else {
        Err(
            "a Kubernetes service account name is a DNS-1123 subdomain: at most 253 \
             lowercase letters, digits, `-` and `.`, each dot-separated part starting \
             and ending with a letter or digit"
                .to_owned(),
        )
    }
}

/// An IAM role: `roles/NAME`, `projects/PROJECT/roles/NAME` or
/// `organizations/NUMBER/roles/NAME`.
pub fn check_role(s: &str) -> Result<(), String> {
    let role_id = |r: &str| {
        !r.is_empty()
            && r.len() <= 64
            && r.bytes()
                .all(|c| c.is_ascii_alphanumeric() || c == b'_' || c == b'.')
    };
    let parts: Vec<&str> = s.split('/').collect();
    let ok = match parts.as_slice() {
        ["roles", r] => role_id(r),
        ["projects", p, "roles", r] => check_project_id(p).is_ok() && role_id(r),
        ["organizations", n, "roles", r] => {
            !n.is_empty() && n.bytes().all(|c| c.is_ascii_digit()) && role_id(r)
        }
        _ => false,
    };
    if ok {
        Ok(())
    } else {
        Err("a role is `roles/NAME`, `projects/PROJECT/roles/NAME` or \
             `organizations/NUMBER/roles/NAME`"
            .to_owned())
    }
}

/// A Google service account email, `ACCOUNT@PROJECT.iam.gserviceaccount.com`.
/// Returns (account id, project).
pub fn parse_gsa_email(s: &str) -> Result<(&str, &str), String> {
    let help = "a Google service account email is ACCOUNT@PROJECT.iam.gserviceaccount.com";
    let (id, domain) = s.split_once('@').ok_or_else(|| help.to_owned())?;
    let project = domain
        .strip_suffix(".iam.gserviceaccount.com")
        .ok_or_else(|| help.to_owned())?;
    check_account_id(id)?;
    check_project_id(project)?;
    Ok((id, project))
}

/// The project wildcard IAM accepts in `projects/-/serviceAccounts/EMAIL`:
/// the project of a Google-managed account whose email does not name it.
pub const ANY_PROJECT: &str = "-";

/// The legacy service-agent domains (`service-NUMBER@DOMAIN.iam.gserviceaccount.com`)
/// that predate the `gcp-sa-*` naming and look like project ids.
const LEGACY_AGENT_DOMAINS: &[&str] = &[
    "cloud-filer",
    "cloud-redis",
    "cloud-tpu",
    "cloudcomposer-accounts",
    "compute-system",
    "container-analysis",
    "container-engine-robot",
    "containerregistry",
    "dataflow-service-producer-prod",
    "dataproc-accounts",
    "firebase-rules",
    "genomics-api",
    "serverless-robot-prod",
];

/// The project of any service account a mapping may name: one of the
/// project (user-managed, `NAME@PROJECT.iam.gserviceaccount.com`), App Engine's
/// default (`PROJECT@appspot.gserviceaccount.com`), or a Google-managed one
/// whose email names a project number, not the id: the Compute Engine default
/// (`NUMBER-compute@developer.gserviceaccount.com`), the Google APIs agent
/// (`NUMBER@cloudservices.gserviceaccount.com`), the legacy Cloud Build
/// account (`NUMBER@cloudbuild.gserviceaccount.com`) and service agents
/// (`service-NUMBER@gcp-sa-SERVICE.iam.gserviceaccount.com` and the legacy
/// agent domains). Those get [`ANY_PROJECT`].
pub fn gsa_email_project(s: &str) -> Result<String, String> {
    let help = "a Google service account email is NAME@PROJECT.iam.gserviceaccount.com, \
                PROJECT@appspot.gserviceaccount.com, NUMBER-compute@developer.gserviceaccount.com, \
                NUMBER@cloudservices.gserviceaccount.com or a service agent \
                (service-NUMBER@gcp-sa-SERVICE.iam.gserviceaccount.com)";
    let (local, domain) = s.split_once('@').ok_or_else(|| help.to_owned())?;
    let number = |n: &str| !n.is_empty() && n.len() <= 20 && n.bytes().all(|c| c.is_ascii_digit());
    match domain {
        "developer.gserviceaccount.com" => {
            return match local.strip_suffix("-compute") {
                Some(n) if number(n) => Ok(ANY_PROJECT.to_owned()),
                _ => Err("the Compute Engine default account is NUMBER-compute@developer.gserviceaccount.com".to_owned()),
            };
        }
        "appspot.gserviceaccount.com" => {
            check_project_id(local)?;
            return Ok(local.to_owned());
        }
        "cloudservices.gserviceaccount.com" | "cloudbuild.gserviceaccount.com" => {
            return if number(local) {
                Ok(ANY_PROJECT.to_owned())
            } else {
                Err(format!("an account of {domain} is PROJECT_NUMBER@{domain}"))
            };
        }
        _ => {}
    }
    let Some(project) = domain.strip_suffix(".iam.gserviceaccount.com") else {
        return Err(help.to_owned());
    };
    let agent_local = local
        .strip_prefix("service-")
        .map(|n| {
            n.strip_prefix("org-")
                .or_else(|| n.strip_prefix("folder-"))
                .unwrap_or(n)
        })
        .is_some_and(number);
    let agent_domain = project.starts_with("gcp-sa-")
        || LEGACY_AGENT_DOMAINS.contains(&project)
        || (agent_local && project.contains('.'));
    if agent_domain {
        let label = |p: &str| {
            !p.is_empty()
                && p.len() <= 63
                && p.bytes()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == b'-' || c == b'.')
        };
        let local_ok = !local.is_empty()
            && local.len() <= 63
            && local
                .bytes()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == b'-');
        return if local_ok && label(project) {
            Ok(ANY_PROJECT.to_owned())
        } else {
            Err(
                "a service agent is service-NUMBER@gcp-sa-SERVICE.iam.gserviceaccount.com"
                    .to_owned(),
            )
        };
    }
    parse_gsa_email(s).map(|(_, p)| p.to_owned())
}

/// An IAM member as `absent` accepts it: `serviceAccount:EMAIL`,
/// `serviceAccount:PROJECT.svc.id.goog[NAMESPACE/KSA]`, `user:EMAIL`,
/// `group:EMAIL`, `domain:DOMAIN`, `principal://...` or `principalSet://...`.
pub fn check_member(s: &str) -> Result<(), String> {
    let help = "a member is `serviceAccount:PROJECT.svc.id.goog[NAMESPACE/KSA]`, \
                `serviceAccount:EMAIL`, `user:EMAIL`, `group:EMAIL`, `domain:DOMAIN`, \
                `principal://...` or `principalSet://...`";
    let email = |e: &str| {
        matches!(e.split_once('@'), Some((a, d)) if !a.is_empty() && d.contains('.') && !d.contains('@'))
            && !e.chars().any(char::is_whitespace)
    };
    let ok = if let Some(rest) = s.strip_prefix("serviceAccount:") {
        if let Some((pool, ksa)) = rest.split_once(".svc.id.goog[") {
            let ksa = ksa.strip_suffix(']');
            match ksa.and_then(|k| k.split_once('/')) {
                Some((ns, name)) => {
                    check_project_id(pool)?;
                    check_namespace(ns)?;
                    check_ksa_name(name)?;
                    true
                }
                None => false,
            }
        } else {
            email(rest)
        }
    } else if let Some(rest) = s.strip_prefix("user:").or_else(|| s.strip_prefix("group:")) {
        email(rest)
    } else if let Some(rest) = s.strip_prefix("domain:") {
        rest.contains('.') && !rest.chars().any(|c| c.is_whitespace() || c == '@')
    } else if let Some(rest) = s
        .strip_prefix("principal://")
        .or_else(|| s.strip_prefix("principalSet://"))
    {
        !rest.is_empty() && !rest.chars().any(char::is_whitespace)
    } else {
        false
    };
    if ok { Ok(()) } else { Err(help.to_owned()) }
}

/// A Compute Engine machine type such as `e2-standard-4` or `custom-4-8192`.
pub fn check_machine_type(s: &str) -> Result<(), String> {
    let ok = !s.is_empty()
        && s.len() <= 63
        && s.split('-').all(|p| {
            !p.is_empty()
                && p.bytes()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit())
        });
    if ok {
        Ok(())
    } else {
        Err("a machine type looks like `e2-standard-4`".to_owned())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn project_and_account_ids() {
        assert!(check_project_id("wi-demo").is_ok());
        assert!(check_project_id("acme-prod-123").is_ok());
        assert!(check_project_id("short").is_err());
        assert!(check_project_id("a23456789012345678901234567890").is_ok());
        assert!(check_project_id("a234567890123456789012345678901").is_err());
        assert!(check_project_id("1project").is_err());
        assert!(check_project_id("project-").is_err());
        assert!(check_project_id("Project1").is_err());
        assert!(check_account_id("payments_api").is_err());
        assert!(check_account_id("payments-api").is_ok());
    }

    #[test]
    fn locations() {
        for ok in [
            "us-central1",
            "us-central1-a",
            "europe-west1-b",
            "northamerica-northeast1",
            "me-central2",
        ] {
            assert!(check_location(ok).is_ok(), "{ok}");
        }
        assert!(check_location("mars-north9-z").is_err());
        assert!(check_location("us-central1-d").is_err());
        for bad in [
            "us-central",
            "us",
            "us-central1-ab",
            "US-central1",
            "uscentral1",
            "us-central1-",
            "-central1",
            "",
        ] {
            assert!(check_location(bad).is_err(), "{bad}");
        }
        assert!(is_region("us-central1") && !is_zone("us-central1"));
        assert!(is_zone("us-central1-f") && !is_region("us-central1-f"));
    }

    #[test]
    fn kubernetes_names() {
        assert!(check_namespace("payments").is_ok());
        assert!(check_namespace("0abc").is_ok());
        assert!(check_namespace("Payments").is_err());
        assert!(check_namespace("a.b").is_err());
        assert!(check_namespace(&"a".repeat(63)).is_ok());
        assert!(check_namespace(&"a".repeat(64)).is_err());
        assert!(check_ksa_name("api.v1").is_ok());
        assert!(check_ksa_name("api..v1").is_err());
        assert!(check_ksa_name("api_v1").is_err());
        assert!(check_ksa_name(&"a".repeat(254)).is_err());
    }

    #[test]
    fn roles_and_members() {
        assert!(check_role("roles/cloudsql.client").is_ok());
        assert!(check_role("projects/acme-prod/roles/myRole_1").is_ok());
        assert!(check_role("organizations/1234/roles/x").is_ok());
        assert!(check_role("cloudsql.client").is_err());
        assert!(check_role("roles/").is_err());
        assert!(check_role("organizations/abc/roles/x").is_err());
        assert!(check_member("serviceAccount:acme-prod.svc.id.goog[old/app]").is_ok());
        assert!(check_member("serviceAccount:a@b.iam.gserviceaccount.com").is_ok());
        assert!(check_member("user:alice@example.com").is_ok());
        assert!(check_member("serviceAccount:acme-prod.svc.id.goog[old]").is_err());
        assert!(check_member("alice@example.com").is_err());
        assert!(check_member("serviceAccount:acme-prod.svc.id.goog[Old/app]").is_err());
    }

    #[test]
    fn gsa_emails() {
        assert_eq!(
            parse_gsa_email("payments@acme-prod.iam.gserviceaccount.com"),
            Ok(("payments", "acme-prod"))
        );
        assert!(parse_gsa_email("payments@example.com").is_err());
        assert!(parse_gsa_email("pay@acme-prod.iam.gserviceaccount.com").is_err());
    }

    #[test]
    fn google_managed_accounts() {
        let p = |s: &str| gsa_email_project(s);
        assert_eq!(
            p("payments@acme-prod.iam.gserviceaccount.com").as_deref(),
            Ok("acme-prod")
        );
        assert_eq!(
            p("123456789-compute@developer.gserviceaccount.com").as_deref(),
            Ok("-")
        );
        assert_eq!(
            p("acme-prod@appspot.gserviceaccount.com").as_deref(),
            Ok("acme-prod")
        );
        assert_eq!(
            p("123456789@cloudservices.gserviceaccount.com").as_deref(),
            Ok("-")
        );
        assert_eq!(
            p("123456789@cloudbuild.gserviceaccount.com").as_deref(),
            Ok("-")
        );
        assert_eq!(
            p("service-123456789@gcp-sa-artifactregistry.iam.gserviceaccount.com").as_deref(),
            Ok("-")
        );
        assert_eq!(
            p("service-123456789@container-engine-robot.iam.gserviceaccount.com").as_deref(),
            Ok("-")
        );
        assert!(p("abc-compute@developer.gserviceaccount.com").is_err());
        assert!(p("x@appspot.gserviceaccount.com").is_err());
        assert!(p("payments@example.com").is_err());
        assert!(p("Service-1@gcp-sa-x.iam.gserviceaccount.com").is_err());
    }
}
