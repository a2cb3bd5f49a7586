//! Service-account tokens: RS256 JWTs signed with the cluster's own key, with
//! the claims kube-apiserver's TokenRequest puts in them, and their
//! verification (used by the emulated STS exchange).

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ring::rand::SystemRandom;
use ring::signature::{self, RsaKeyPair};
use rsa::pkcs8::{DecodePrivateKey, EncodePrivateKey, EncodePublicKey, LineEnding};
use serde_json::{Value, json};
use sha2::Digest;

use super::TokenClaims;

/// Why a token was refused or could not be made.
#[derive(Debug, thiserror::Error)]
pub enum TokenError {
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

/// A loaded signing key.
pub struct Signer {
    key: RsaKeyPair,
    kid: String,
}

/// Generates an RSA 2048 key; returns its PKCS#8 PEM.
pub fn generate_key_pem() -> Result<String, TokenError> {
    let mut rng = rand::rngs::OsRng;
    let key =
        rsa::RsaPrivateKey::new(&mut rng, 2048).map_err(|e| TokenError::Key(e.to_string()))?;
    key.to_pkcs8_pem(LineEnding::LF)
        .map(|pem| pem.to_string())
        .map_err(|e| TokenError::Key(e.to_string()))
}

impl Signer {
    /// Loads a PKCS#8 PEM key. The key id is the base64url SHA-256 of the
    /// public key's PKIX DER, as kube-apiserver computes it.
    pub fn from_pem(pem: &str) -> Result<Self, TokenError> {
        let private =
            rsa::RsaPrivateKey::from_pkcs8_pem(pem).map_err(|e| TokenError::Key(e.to_string()))?;
        let der = private
            .to_pkcs8_der()
            .map_err(|e| TokenError::Key(e.to_string()))?;
        let public_der = private
            .to_public_key()
            .to_public_key_der()
            .map_err(|e| TokenError::Key(e.to_string()))?;
        let kid = URL_SAFE_NO_PAD.encode(sha2::Sha256::digest(public_der.as_bytes()));
        let key =
            RsaKeyPair::from_pkcs8(der.as_bytes()).map_err(|e| TokenError::Key(e.to_string()))?;
        Ok(Self { key, kid })
    }

    /// The public key as a JWKS document (`/openid/v1/jwks`).
    pub fn jwks(&self) -> Value {
        let c = ring::rsa::PublicKeyComponents::<Vec<u8>>::from(self.key.public());
        json!({"keys": [{
            "use": "sig",
            "kty": "RSA",
            "kid": self.kid,
            "alg": "RS256",
            "n": URL_SAFE_NO_PAD.encode(&c.n),
            "e": URL_SAFE_NO_PAD.encode(&c.e),
        }]})
    }

    /// Signs claims into a compact JWS.
    pub fn sign(&self, claims: &Value) -> Result<String, TokenError> {
        let header = json!({"alg": "RS256", "kid": self.kid});
        let signing_input = format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(header.to_string()),
            URL_SAFE_NO_PAD.encode(claims.to_string())
        );
        let mut sig = vec![0u8; self.key.public().modulus_len()];
        self.key
            .sign(
                &signature::RSA_PKCS1_SHA256,
                &SystemRandom::new(),
                signing_input.as_bytes(),
                &mut sig,
            )
            .map_err(|e| TokenError::Key(e.to_string()))?;
        Ok(format!("{signing_input}.{}", URL_SAFE_NO_PAD.encode(sig)))
    }

    /// Checks the signature, `exp` and `nbf`, and returns the claims.
    pub fn verify(&self, jwt: &str, now: i64) -> Result<TokenClaims, TokenError> {
        let mut parts = jwt.split('.');
        let (Some(h), Some(p), Some(s), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(TokenError::Malformed(
                "expected three dot-separated parts".into(),
            ));
        };
        let header: Value = decode_part(h)?;
        if header.get("alg").and_then(Value::as_str) != Some("RS256") {
            return Err(TokenError::Malformed("alg must be RS256".into()));
        }
        let sig = URL_SAFE_NO_PAD
            .decode(s)
            .map_err(|e| TokenError::Malformed(e.to_string()))?;
        let public = signature::UnparsedPublicKey::new(
            &signature::RSA_PKCS1_2048_8192_SHA256,
            self.key.public().as_ref(),
        );
        public
            .verify(format!("{h}.{p}").as_bytes(), &sig)
            .map_err(|_| TokenError::BadSignature)?;
        let raw: Value = decode_part(p)?;
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
}

fn decode_part<T: serde::de::DeserializeOwned>(part: &str) -> Result<T, TokenError> {
    let bytes = URL_SAFE_NO_PAD
        .decode(part)
        .map_err(|e| TokenError::Malformed(e.to_string()))?;
    serde_json::from_slice(&bytes).map_err(|e| TokenError::Malformed(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sign_then_verify_and_reject_tampering() {
        let pem = generate_key_pem().expect("key");
        let signer = Signer::from_pem(&pem).expect("load");
        let jwt = signer
            .sign(
                &json!({"iss": "i", "sub": "s", "aud": ["a"], "exp": 200, "iat": 100, "nbf": 100}),
            )
            .expect("sign");
        let claims = signer.verify(&jwt, 150).expect("valid");
        assert_eq!(claims.aud, vec!["a".to_string()]);
        assert!(matches!(signer.verify(&jwt, 200), Err(TokenError::Expired)));
        let other = Signer::from_pem(&generate_key_pem().expect("key")).expect("load");
        assert!(matches!(
            other.verify(&jwt, 150),
            Err(TokenError::BadSignature)
        ));
    }
}
