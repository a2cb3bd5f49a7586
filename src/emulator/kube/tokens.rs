//! Service-account tokens: RS256 JWTs signed with the cluster's own key
//! (`crypto::Rs256Signer`), with the claims kube-apiserver's TokenRequest puts
//! in them, and their verification (used by the emulated STS exchange, and by
//! the cluster's own API, which accepts its service-account tokens as bearer
//! tokens like kube-apiserver's service-account authenticator).

use serde_json::Value;

use super::objects::KubeResource;
use super::{KubeCluster, TokenClaims};
use crate::emulator::crypto::{JwtError, Rs256Signer};

/// Why a token was refused or could not be made.
#[derive(Debug, thiserror::Error)]
pub(crate) enum TokenError {
    #[error("malformed token: {0}")]
    Malformed(String),
    #[error("invalid signature")]
    BadSignature,
    #[error("token has expired")]
    Expired,
    #[error("token is not valid yet")]
    NotYetValid,
    #[error("signing key: {0}")]
    Key(String),
}

impl From<JwtError> for TokenError {
    fn from(e: JwtError) -> Self {
        match e {
            JwtError::Malformed(m) => TokenError::Malformed(m),
            JwtError::BadSignature => TokenError::BadSignature,
            JwtError::Key(m) => TokenError::Key(m),
        }
    }
}

/// Checks the signature, `exp` and `nbf`, and returns the claims.
pub(crate) fn verify(signer: &Rs256Signer, jwt: &str, now: i64) -> Result<TokenClaims, TokenError> {
    let raw: Value = signer.verify_signature(jwt)?;
    if let Some(nbf) = raw.get("nbf").and_then(Value::as_i64)
        && now < nbf
    {
        return Err(TokenError::NotYetValid);
    }
    let claims: TokenClaims =
        serde_json::from_value(raw).map_err(|e| TokenError::Malformed(e.to_string()))?;
    if now >= claims.exp {
        return Err(TokenError::Expired);
    }
    Ok(claims)
}

/// The Kubernetes user of a bearer token this cluster issued:
/// `system:serviceaccount:NS:NAME`, as kube-apiserver's service-account
/// authenticator answers. The token must be valid (signature, time, issuer),
/// name the API server among its audiences (the issuer URL, GKE's
/// `--api-audiences`; a token minted for the workload pool is for STS, not
/// for this API), and its service account (and bound pod) must still exist
/// with the UID the token names. `None` otherwise: the caller answers 401.
///
/// What such a user may do is up to the host's authorizer (GKE asks IAM,
/// then RBAC); the emulator has no RBAC objects, so a KSA is allowed what
/// every authenticated user is on a new cluster (discovery,
/// SelfSubjectReview, SelfSubjectAccessReview) and nothing else.
pub(crate) fn authenticate(cluster: &KubeCluster, jwt: &str) -> Option<String> {
    let claims = cluster.verify_token(jwt).ok()?;
    let issuer = cluster.identity().issuer();
    if !claims.aud.contains(&issuer) {
        return None;
    }
    let rest = claims.sub.strip_prefix("system:serviceaccount:")?;
    let (namespace, name) = rest.split_once(':')?;
    let raw: Value = crate::emulator::crypto::decode_jwt(jwt).map(|(_, c, _, _)| c)?;
    let kube = raw.get("kubernetes.io");
    let claimed_uid = kube
        .and_then(|k| k.pointer("/serviceaccount/uid"))
        .and_then(Value::as_str)
        .unwrap_or("");
    let state = cluster.lock();
    let sa = state
        .get(KubeResource::ServiceAccounts, Some(namespace), name)
        .ok()?;
    let uid = sa.pointer("/metadata/uid").and_then(Value::as_str);
    if !claimed_uid.is_empty() && uid != Some(claimed_uid) {
        return None;
    }
    if let Some(pod) = kube.and_then(|k| k.get("pod")) {
        let pod_name = pod.get("name").and_then(Value::as_str).unwrap_or("");
        let live = state
            .get(KubeResource::Pods, Some(namespace), pod_name)
            .ok()?;
        if live.pointer("/metadata/uid") != pod.get("uid") {
            return None;
        }
    }
    Some(claims.sub.clone())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::emulator::crypto::generate_rsa_key;
    use serde_json::json;

    fn key_pem() -> String {
        generate_rsa_key().expect("key").private_pkcs8_pem
    }

    #[test]
    fn sign_then_verify_and_reject_tampering() {
        let pem = key_pem();
        let signer = Rs256Signer::from_pem(&pem).expect("load");
        let jwt = signer
            .sign(
                &json!({"iss": "i", "sub": "s", "aud": ["a"], "exp": 200, "iat": 100, "nbf": 100}),
            )
            .expect("sign");
        let claims = verify(&signer, &jwt, 150).expect("valid");
        assert_eq!(claims.aud, vec!["a".to_string()]);
        assert!(matches!(
            verify(&signer, &jwt, 200),
            Err(TokenError::Expired)
        ));
        let other = Rs256Signer::from_pem(&key_pem()).expect("load");
        assert!(matches!(
            verify(&other, &jwt, 150),
            Err(TokenError::BadSignature)
        ));
    }
}
