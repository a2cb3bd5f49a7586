//! Service-account tokens: RS256 JWTs signed with the cluster's own key
//! (`crypto::Rs256Signer`), with the claims kube-apiserver's TokenRequest puts
//! in them, and their verification (used by the emulated STS exchange).

use serde_json::Value;

use super::TokenClaims;
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
