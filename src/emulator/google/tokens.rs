//! Token endpoints: OAuth JWT-bearer grant (`/token`), STS token exchange
//! (KSA token → federated token), IAM Credentials `generateAccessToken`
//! (federated or user token → service-account token) and a Kubernetes
//! TokenReview webhook that resolves Google tokens to principals.

use std::sync::Arc;

use axum::body::Body;
use axum::http::{HeaderMap, Response};
use serde_json::{Value, json};

use super::permissions;
use crate::emulator::core::{Core, TOKEN_LIFETIME_SECS};
use crate::emulator::crypto;
use crate::emulator::request::Req;
use crate::emulator::time::rfc3339;
use crate::emulator::wire::{
    self, GoogleApiError, GoogleApiResult, check_keys, json_response, oauth_error, opt_array,
    opt_str, parse_body,
};
use crate::emulator::world::{self, EmulatorWorld, Principal};

/// Form or JSON body as key/value pairs; JSON camelCase keys are mapped to snake_case.
fn form_or_json(headers: &HeaderMap, body: &[u8]) -> Result<Vec<(String, String)>, String> {
    let ct = headers
        .get(axum::http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if ct.starts_with("application/json") {
        let v: Value =
            serde_json::from_slice(body).map_err(|e| format!("Invalid JSON payload: {e}"))?;
        let obj = v
            .as_object()
            .ok_or("Invalid JSON payload: expected an object")?;
        Ok(obj
            .iter()
            .filter_map(|(k, v)| v.as_str().map(|s| (wire::snake_path(k), s.to_string())))
            .collect())
    } else {
        Ok(url::form_urlencoded::parse(body)
            .map(|(k, v)| (k.into_owned(), v.into_owned()))
            .collect())
    }
}

fn get<'a>(pairs: &'a [(String, String)], key: &str) -> Option<&'a str> {
    pairs
        .iter()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.as_str())
}

/// `POST /token`: the OAuth 2 JWT-bearer grant of a service-account key.
pub(crate) fn oauth_token(core: &Arc<Core>, headers: &HeaderMap, body: &[u8]) -> Response<Body> {
    let pairs = match form_or_json(headers, body) {
        Ok(p) => p,
        Err(e) => return oauth_error(400, "invalid_request", &e),
    };
    let grant = get(&pairs, "grant_type").unwrap_or("");
    if grant != "urn:ietf:params:oauth:grant-type:jwt-bearer" {
        return oauth_error(
            400,
            "unsupported_grant_type",
            &format!("Invalid grant_type: {grant}"),
        );
    }
    let Some(assertion) = get(&pairs, "assertion") else {
        return oauth_error(
            400,
            "invalid_request",
            "Missing required parameter: assertion",
        );
    };
    let now = core.now_ms();
    let email = {
        let world = core.world();
        match verify_assertion(&world, assertion, now) {
            Ok(email) => {
                let sa = world.service_accounts.get(&email);
                match sa {
                    None => {
                        return oauth_error(
                            400,
                            "invalid_grant",
                            "Invalid grant: account not found",
                        );
                    }
                    Some(sa) if sa.disabled => {
                        return oauth_error(
                            400,
                            "invalid_grant",
                            "Invalid grant: account disabled",
                        );
                    }
                    Some(_) => email,
                }
            }
            Err(e) => return oauth_error(400, "invalid_grant", &e.to_string()),
        }
    };
    let token = core.issue_token(Principal::ServiceAccountRecord(email));
    json_response(
        200,
        &json!({"access_token": token, "expires_in": TOKEN_LIFETIME_SECS, "token_type": "Bearer"}),
    )
}

const STS_INVALID_TARGET: &str = "The target service indicated by the \"audience\" parameters is invalid. This might either be because the pool or provider is disabled or deleted or because it doesn't exist.";

/// `POST /sts/v1/token`: exchanges a Kubernetes service-account token of a
/// Workload-Identity cluster for a federated access token.
pub(crate) fn sts_token(core: &Arc<Core>, headers: &HeaderMap, body: &[u8]) -> Response<Body> {
    let pairs = match form_or_json(headers, body) {
        Ok(p) => p,
        Err(e) => return oauth_error(400, "invalid_request", &e),
    };
    let grant = get(&pairs, "grant_type").unwrap_or("");
    if grant != "urn:ietf:params:oauth:grant-type:token-exchange" {
        return oauth_error(
            400,
            "unsupported_grant_type",
            &format!(
                "The grant_type \"{grant}\" is not supported. Use urn:ietf:params:oauth:grant-type:token-exchange."
            ),
        );
    }
    for key in ["audience", "subject_token", "subject_token_type"] {
        if get(&pairs, key).is_none_or(str::is_empty) {
            return oauth_error(
                400,
                "invalid_request",
                &format!("Missing required parameter: {key}"),
            );
        }
    }
    let subject_type = get(&pairs, "subject_token_type").unwrap_or("");
    if subject_type != "urn:ietf:params:oauth:token-type:jwt"
        && subject_type != "urn:ietf:params:oauth:token-type:id_token"
    {
        return oauth_error(
            400,
            "invalid_request",
            &format!("Invalid subject_token_type: {subject_type}"),
        );
    }
    if let Some(rt) = get(&pairs, "requested_token_type")
        && rt != "urn:ietf:params:oauth:token-type:access_token"
    {
        return oauth_error(
            400,
            "invalid_request",
            &format!("Invalid requested_token_type: {rt}"),
        );
    }
    let audience = get(&pairs, "audience").unwrap_or("");
    let (pool, provider) = match audience.strip_prefix("identitynamespace:") {
        Some(rest) => match rest.split_once(':') {
            Some((p, prov)) => (p.to_string(), prov.to_string()),
            None => return oauth_error(400, "invalid_target", STS_INVALID_TARGET),
        },
        None => return oauth_error(400, "invalid_target", STS_INVALID_TARGET),
    };
    let subject = get(&pairs, "subject_token").unwrap_or("");
    let Some((_, claims, _, _)) = crypto::decode_jwt(subject) else {
        return oauth_error(
            400,
            "invalid_grant",
            "The subject token is not a valid JWT.",
        );
    };
    let iss = claims.get("iss").and_then(Value::as_str).unwrap_or("");
    let Some(cluster) = core.kube_cluster_by_issuer(iss) else {
        return oauth_error(
            400,
            "invalid_grant",
            &format!("The issuer \"{iss}\" of the subject token is not a known cluster."),
        );
    };
    let verified = match cluster.verify_token(subject) {
        Ok(c) => c,
        Err(e) => {
            return oauth_error(400, "invalid_grant", &format!("Invalid subject token: {e}"));
        }
    };
    let id = cluster.identity().clone();
    let project_number = {
        let world = core.world();
        let key = world::cluster_key(&id.project, &id.location, &id.name);
        let wi_pool = world.clusters.get(&key).and_then(|c| c.workload_pool());
        let pool_ok = wi_pool.as_deref() == Some(pool.as_str());
        if !pool_ok || provider != id.issuer() {
            return oauth_error(400, "invalid_target", STS_INVALID_TARGET);
        }
        world
            .projects
            .get(&id.project)
            .map(|p| p.number.clone())
            .unwrap_or_default()
    };
    if !verified.aud.iter().any(|a| a == &pool) {
        return oauth_error(
            400,
            "invalid_grant",
            &format!(
                "The audience in ID Token [{}] does not match the expected audience {pool}.",
                verified.aud.join(",")
            ),
        );
    }
    let Some(rest) = verified.sub.strip_prefix("system:serviceaccount:") else {
        return oauth_error(
            400,
            "invalid_grant",
            "The subject token is not a service account token.",
        );
    };
    let Some((ns, ksa)) = rest.split_once(':') else {
        return oauth_error(
            400,
            "invalid_grant",
            "The subject token is not a service account token.",
        );
    };
    let token = core.issue_token(Principal::Federated {
        pool,
        namespace: ns.to_string(),
        ksa: ksa.to_string(),
        project_number,
        cluster: format!(
            "projects/{}/locations/{}/clusters/{}",
            id.project, id.location, id.name
        ),
    });
    json_response(
        200,
        &json!({
            "access_token": token,
            "issued_token_type": "urn:ietf:params:oauth:token-type:access_token",
            "token_type": "Bearer",
            "expires_in": TOKEN_LIFETIME_SECS
        }),
    )
}

/// IAM Credentials method id.
pub(crate) fn iamcredentials_method_id(req: &Req) -> Option<&'static str> {
    let s: Vec<&str> = req.segs.iter().map(String::as_str).collect();
    match (s.as_slice(), req.verb.as_deref()) {
        (["projects", _, "serviceAccounts", _], Some("generateAccessToken"))
            if req.method == axum::http::Method::POST =>
        {
            Some("projects.serviceAccounts.generateAccessToken")
        }
        _ => None,
    }
}

/// `generateAccessToken`: only for holders of `iam.serviceAccounts.getAccessToken`
/// (roles/iam.workloadIdentityUser, roles/iam.serviceAccountTokenCreator).
pub(crate) fn generate_access_token(
    core: &Arc<Core>,
    req: &Req,
    who: &Principal,
) -> GoogleApiResult {
    if req.segs[1] != "-" {
        return Err(GoogleApiError::invalid_field(
            "name",
            "The project segment of the resource name must be \"-\" (projects/-/serviceAccounts/...); replacing it with a project ID is invalid.",
        ));
    }
    let body = parse_body(&req.body)?;
    check_keys(&body, "", &["scope", "lifetime", "delegates"])?;
    let scopes = opt_array(&body, "scope")?.cloned().unwrap_or_default();
    if scopes.is_empty() {
        return Err(GoogleApiError::invalid_field(
            "scope",
            "Missing required field \"scope\".",
        ));
    }
    let lifetime = match opt_str(&body, "lifetime")? {
        None => 3600,
        Some(l) => l
            .strip_suffix('s')
            .and_then(|n| n.parse::<f64>().ok())
            .filter(|n| *n > 0.0 && *n <= 3600.0)
            .map(|n| n as i64)
            .ok_or_else(|| {
                GoogleApiError::invalid_field(
                    "lifetime",
                    format!("Invalid value for field \"lifetime\": \"{l}\". The lifetime must be a duration like \"3600s\" of at most 3600 seconds."),
                )
            })?,
    };
    let denied = || {
        GoogleApiError::forbidden(
            "Permission 'iam.serviceAccounts.getAccessToken' denied on resource (or it may not exist).",
        )
        .with_error_info(
            "IAM_PERMISSION_DENIED",
            "iam.googleapis.com",
            json!({"permission": "iam.serviceAccounts.getAccessToken"}),
        )
    };
    let email = {
        let world = core.world();
        let Some(sa) = super::iam::resolve(&world, "-", &req.segs[3], req.now) else {
            return Err(denied());
        };
        if !permissions::allowed_on_sa(&world, who, &sa.email, "iam.serviceAccounts.getAccessToken")
        {
            return Err(denied());
        }
        super::serviceusage::require_enabled(&world, &sa.project, "iamcredentials.googleapis.com")?;
        if sa.disabled {
            return Err(GoogleApiError::failed_precondition(format!(
                "Service account {} is disabled.",
                sa.email
            )));
        }
        sa.email.clone()
    };
    let token = core.issue_token_for(Principal::ServiceAccountRecord(email), lifetime);
    Ok(json!({
        "accessToken": token,
        "expireTime": rfc3339(req.now + lifetime * 1000)
    }))
}

/// `POST /authn/tokenreview`: Kubernetes TokenReview webhook (authentication.k8s.io/v1).
pub(crate) fn token_review(core: &Arc<Core>, body: &[u8]) -> Response<Body> {
    let parsed: Result<Value, _> = serde_json::from_slice(body);
    let review = match parsed {
        Ok(v) if v.is_object() => v,
        _ => {
            return json_response(
                400,
                &json!({"kind": "Status", "apiVersion": "v1", "status": "Failure",
                        "message": "request body must be a TokenReview", "reason": "BadRequest", "code": 400}),
            );
        }
    };
    let api_version = review
        .get("apiVersion")
        .and_then(Value::as_str)
        .unwrap_or("authentication.k8s.io/v1")
        .to_string();
    let token = review
        .pointer("/spec/token")
        .and_then(Value::as_str)
        .unwrap_or("");
    let status = match core.authenticate(token) {
        Some(p) => json!({
            "authenticated": true,
            "user": {"username": p.email(), "groups": ["system:authenticated"]}
        }),
        None => {
            json!({"authenticated": false, "error": "token is not a valid access token issued by the emulator"})
        }
    };
    json_response(
        200,
        &json!({"apiVersion": api_version, "kind": "TokenReview", "status": status}),
    )
}

/// Why a JWT-bearer assertion was refused (OAuth `error_description`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum AssertionError {
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

/// Verifies a JWT-bearer assertion signed with a key the emulator issued and
/// returns the service-account email it names.
pub(crate) fn verify_assertion(
    world: &EmulatorWorld,
    jwt: &str,
    now_ms: i64,
) -> Result<String, AssertionError> {
    let (header, claims, sig, signed) = crypto::decode_jwt(jwt).ok_or(AssertionError::Malformed)?;
    if header.get("alg").and_then(Value::as_str) != Some("RS256") {
        return Err(AssertionError::Malformed);
    }
    let iss = claims
        .get("iss")
        .and_then(Value::as_str)
        .ok_or(AssertionError::Malformed)?;
    // Key by `kid` when present, else any key of the issuer that verifies.
    let kid = header.get("kid").and_then(Value::as_str);
    let candidates: Vec<&world::IssuedKey> = world
        .keys
        .iter()
        .filter(|(id, k)| k.email == iss && kid.is_none_or(|kid| kid == id.as_str()))
        .map(|(_, k)| k)
        .collect();
    if candidates.is_empty() {
        return Err(AssertionError::UnknownKey);
    }
    let ok = candidates.iter().any(|k| {
        hex::decode(&k.public_pkcs1_hex)
            .is_ok_and(|der| crypto::verify_rs256(&der, signed.as_bytes(), &sig))
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::emulator::world::IssuedKey;

    #[test]
    fn json_keys_become_snake_case() {
        let mut h = HeaderMap::new();
        h.insert(
            axum::http::header::CONTENT_TYPE,
            "application/json".parse().unwrap(),
        );
        let pairs = form_or_json(&h, br#"{"grantType":"g","subjectToken":"t"}"#).unwrap();
        assert_eq!(get(&pairs, "grant_type"), Some("g"));
        assert_eq!(get(&pairs, "subject_token"), Some("t"));
        let pairs = form_or_json(&HeaderMap::new(), b"grant_type=a%3Ab&x=1").unwrap();
        assert_eq!(get(&pairs, "grant_type"), Some("a:b"));
    }

    #[test]
    fn jwt_bearer_roundtrip_and_tamper() {
        let key = crypto::generate_rsa_key().unwrap();
        let mut world = EmulatorWorld::default();
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
        let jwt = crypto::sign_jwt(&key.private_pkcs8_pem, "k1", &claims).unwrap();
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
        let jwt = crypto::sign_jwt(&key.private_pkcs8_pem, "k1", &wild).unwrap();
        assert_eq!(
            verify_assertion(&world, &jwt, now * 1000),
            Err(AssertionError::Expired)
        );
    }
}
