//! Who may do what: access tokens the emulator issued, the OAuth JWT-bearer
//! grant, and the permission model derived from IAM policies. Kept in one
//! module so the model can grow without touching the API handlers.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rand::RngCore;
use serde_json::Value;
use sha2::{Digest, Sha256};

use super::world::{Principal, World};

/// Lifetime of tokens minted by the OAuth endpoint, STS and IAM Credentials.
pub const TOKEN_LIFETIME_SECS: i64 = 3599;

/// A fresh random access token (`ya29.` like Google's).
pub fn new_token() -> String {
    let mut bytes = [0u8; 32];
    rand::thread_rng().fill_bytes(&mut bytes);
    format!("ya29.emu{}", URL_SAFE_NO_PAD.encode(bytes))
}

/// Key under which a token is stored (the token itself never is).
pub fn token_hash(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

/// The principal of a valid, unexpired token.
pub fn principal_of(world: &World, token: &str, now_ms: i64) -> Option<Principal> {
    let t = world.tokens.get(&token_hash(token))?;
    (t.expires_ms > now_ms).then(|| t.principal.clone())
}

/// Does `role` grant `permission`? The emulator's role catalogue: small, but
/// shaped like the real predefined roles.
pub fn role_grants(role: &str, permission: &str) -> bool {
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
        "roles/iam.workloadIdentityUser" | "roles/iam.serviceAccountTokenCreator" => {
            permission == "iam.serviceAccounts.getAccessToken"
        }
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

/// True when `principal` holds `permission` on `project` through the project policy.
pub fn allowed_on_project(
    world: &World,
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
            Principal::ServiceAccount(e) => *e == admin.sa_email,
            Principal::Federated { .. } => false,
        };
        if is_admin && role_grants("roles/owner", permission) {
            return true;
        }
    }
    p.policy
        .roles_of(&principal.members())
        .iter()
        .any(|r| role_grants(r, permission))
}

/// The principal behind a Kubernetes username the emulator handed out
/// (see [`Principal::email`]).
pub fn principal_from_email(world: &World, user: &str) -> Principal {
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
        };
    }
    if user.ends_with(".gserviceaccount.com") {
        Principal::ServiceAccount(user.to_string())
    } else {
        Principal::User(user.to_string())
    }
}

/// GKE's first authorizer: may `user` do `verb` on `resource` (and
/// `subresource`) in a cluster of `project`, by the IAM permission
/// `container.<resource>.<verb>`? (RBAC, GKE's second authorizer, is not emulated.)
pub fn kube_allowed(
    world: &World,
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
pub fn allowed_on_sa(world: &World, principal: &Principal, email: &str, permission: &str) -> bool {
    let Some(sa) = world.service_accounts.get(email) else {
        return false;
    };
    if allowed_on_project(world, principal, &sa.project, permission) {
        return true;
    }
    sa.policy
        .roles_of(&principal.members())
        .iter()
        .any(|r| role_grants(r, permission))
}

/// Why a JWT-bearer assertion was refused (OAuth `error_description`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AssertionError {
    #[error("Invalid JWT: malformed assertion.")]
    Malformed,
    #[error("Invalid JWT Signature.")]
    BadSignature,
    #[error("Invalid grant: account not found")]
    UnknownKey,
    #[error(
        "Invalid JWT: Token must be a short-lived token (60 minutes) and in a reasonable timeframe. Check your iat and exp values in the JWT claim."
    )]
    Expired,
    #[error("Invalid JWT: Failed audience check.")]
    Audience,
}

/// Splits a compact JWS and decodes header and claims (no verification).
pub fn decode_jwt(jwt: &str) -> Option<(Value, Value, Vec<u8>, String)> {
    let mut parts = jwt.split('.');
    let (h, c, s) = (parts.next()?, parts.next()?, parts.next()?);
    if parts.next().is_some() {
        return None;
    }
    // Some signers (gcp_auth) pad their base64url; accept both.
    let dec = |x: &str| URL_SAFE_NO_PAD.decode(x.trim_end_matches('=')).ok();
    let header: Value = serde_json::from_slice(&dec(h)?).ok()?;
    let claims: Value = serde_json::from_slice(&dec(c)?).ok()?;
    let sig = dec(s)?;
    Some((header, claims, sig, format!("{h}.{c}")))
}

/// Verifies a JWT-bearer assertion signed with a key the emulator issued and
/// returns the service-account email it names.
pub fn verify_assertion(world: &World, jwt: &str, now_ms: i64) -> Result<String, AssertionError> {
    let (header, claims, sig, signed) = decode_jwt(jwt).ok_or(AssertionError::Malformed)?;
    if header.get("alg").and_then(Value::as_str) != Some("RS256") {
        return Err(AssertionError::Malformed);
    }
    let iss = claims
        .get("iss")
        .and_then(Value::as_str)
        .ok_or(AssertionError::Malformed)?;
    // Key by `kid` when present, else any key of the issuer that verifies.
    let kid = header.get("kid").and_then(Value::as_str);
    let candidates: Vec<&super::world::IssuedKey> = world
        .keys
        .iter()
        .filter(|(id, k)| k.email == iss && kid.is_none_or(|kid| kid == id.as_str()))
        .map(|(_, k)| k)
        .collect();
    if candidates.is_empty() {
        return Err(AssertionError::UnknownKey);
    }
    let ok = candidates.iter().any(|k| {
        hex::decode(&k.public_pkcs1_hex).is_ok_and(|der| {
            ring::signature::UnparsedPublicKey::new(
                &ring::signature::RSA_PKCS1_2048_8192_SHA256,
                der,
            )
            .verify(signed.as_bytes(), &sig)
            .is_ok()
        })
    });
    if !ok {
        return Err(AssertionError::BadSignature);
    }
    let now = now_ms / 1000;
    let iat = claims.get("iat").and_then(Value::as_i64).unwrap_or(0);
    let exp = claims.get("exp").and_then(Value::as_i64).unwrap_or(0);
    if exp < now || iat > now.saturating_add(300) || exp.saturating_sub(iat) > 3600 {
        return Err(AssertionError::Expired);
    }
    let aud_ok = match claims.get("aud") {
        Some(Value::String(a)) => a.ends_with("/token"),
        _ => false,
    };
    if !aud_ok {
        return Err(AssertionError::Audience);
    }
    Ok(iss.to_string())
}

/// RSA key material for a service-account key.
pub struct GeneratedKey {
    pub private_pkcs8_pem: String,
    pub public_pkcs1_hex: String,
}

/// Generates a 2048-bit RSA key.
pub fn generate_rsa_key() -> Result<GeneratedKey, String> {
    use rsa::pkcs1::EncodeRsaPublicKey;
    use rsa::pkcs8::EncodePrivateKey;
    let mut rng = rand::thread_rng();
    let private = rsa::RsaPrivateKey::new(&mut rng, 2048).map_err(|e| e.to_string())?;
    let pem = private
        .to_pkcs8_pem(rsa::pkcs8::LineEnding::LF)
        .map_err(|e| e.to_string())?;
    let public_der = private
        .to_public_key()
        .to_pkcs1_der()
        .map_err(|e| e.to_string())?;
    Ok(GeneratedKey {
        private_pkcs8_pem: pem.to_string(),
        public_pkcs1_hex: hex::encode(public_der.as_bytes()),
    })
}

/// Signs `claims` as an RS256 JWT with a PKCS#8 PEM key (used by tests and
/// by anyone who wants to exercise the JWT-bearer grant without gcp_auth).
pub fn sign_jwt(private_pkcs8_pem: &str, kid: &str, claims: &Value) -> Result<String, String> {
    let der = pem_body(private_pkcs8_pem).ok_or("bad PEM")?;
    let key = ring::signature::RsaKeyPair::from_pkcs8(&der).map_err(|e| e.to_string())?;
    let header = serde_json::json!({"alg": "RS256", "typ": "JWT", "kid": kid});
    let signed = format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(header.to_string()),
        URL_SAFE_NO_PAD.encode(claims.to_string())
    );
    let mut sig = vec![0u8; key.public().modulus_len()];
    key.sign(
        &ring::signature::RSA_PKCS1_SHA256,
        &ring::rand::SystemRandom::new(),
        signed.as_bytes(),
        &mut sig,
    )
    .map_err(|e| e.to_string())?;
    Ok(format!("{signed}.{}", URL_SAFE_NO_PAD.encode(sig)))
}

fn pem_body(pem: &str) -> Option<Vec<u8>> {
    let b64: String = pem
        .lines()
        .filter(|l| !l.starts_with("-----"))
        .collect::<Vec<_>>()
        .join("");
    base64::engine::general_purpose::STANDARD.decode(b64).ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::emulator::world::IssuedKey;
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
        use crate::emulator::world::{Policy, Project};
        let mut world = World::default();
        let mut policy = Policy::empty();
        policy
            .bindings
            .push(json!({"role": "roles/viewer", "members": ["user:v@example.com"]}));
        policy.bindings.push(json!({"role": "roles/container.developer", "members": ["serviceAccount:d@p.iam.gserviceaccount.com"]}));
        world.projects.insert(
            "p".into(),
            Project {
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

    #[test]
    fn jwt_bearer_roundtrip_and_tamper() {
        let key = generate_rsa_key().unwrap();
        let mut world = World::default();
        world.keys.insert(
            "k1".into(),
            IssuedKey {
                email: "sa@p.iam.gserviceaccount.com".into(),
                public_pkcs1_hex: key.public_pkcs1_hex.clone(),
                created_ms: 0,
            },
        );
        let now = 1_700_000_000i64;
        let claims = json!({"iss": "sa@p.iam.gserviceaccount.com", "aud": "http://127.0.0.1:1/token",
            "iat": now, "exp": now + 3600, "scope": "x"});
        let jwt = sign_jwt(&key.private_pkcs8_pem, "k1", &claims).unwrap();
        assert_eq!(
            verify_assertion(&world, &jwt, now * 1000).unwrap(),
            "sa@p.iam.gserviceaccount.com"
        );
        // Change the first signature character: all six of its bits are
        // signature bits (the last character also carries padding bits, so
        // changing it can make the token undecodable instead of badly signed).
        let dot = jwt.rfind('.').unwrap() + 1;
        let mut tampered = jwt.clone();
        let first = if jwt[dot..].starts_with('A') {
            "B"
        } else {
            "A"
        };
        tampered.replace_range(dot..dot + 1, first);
        assert_eq!(
            verify_assertion(&world, &tampered, now * 1000),
            Err(AssertionError::BadSignature)
        );
        assert_eq!(
            verify_assertion(&world, &jwt, (now + 7200) * 1000),
            Err(AssertionError::Expired)
        );
        assert_eq!(
            verify_assertion(&world, "a.b", now),
            Err(AssertionError::Malformed)
        );
        // Absurd times are refused, not overflowed.
        let wild = json!({"iss": "sa@p.iam.gserviceaccount.com", "aud": "http://x/token",
            "iat": i64::MIN, "exp": i64::MAX});
        let jwt = sign_jwt(&key.private_pkcs8_pem, "k1", &wild).unwrap();
        assert_eq!(
            verify_assertion(&world, &jwt, now * 1000),
            Err(AssertionError::Expired)
        );
    }
}
