//! The emulator's one copy of its cryptography: opaque access tokens and
//! their storage hash, RSA keys, RS256 JWT signing and verification, and the
//! CA + serving certificates of the TLS listeners. Used by the Google half and
//! by `kube/` alike.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rand::RngCore;
use serde_json::Value;
use sha2::{Digest, Sha256};

/// A fresh random access token (`ya29.` like Google's).
pub(crate) fn new_token() -> String {
    let mut bytes = [0u8; 32];
    rand::thread_rng().fill_bytes(&mut bytes);
    format!("ya29.emu{}", URL_SAFE_NO_PAD.encode(bytes))
}

/// Key under which a token is stored (the token itself never is).
pub(crate) fn token_hash(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

/// Splits a compact JWS and decodes header and claims (no verification).
pub(crate) fn decode_jwt(jwt: &str) -> Option<(Value, Value, Vec<u8>, String)> {
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

/// Does the RS256 signature `sig` over `signed` verify with the PKCS#1 DER
/// public key `public_pkcs1_der`?
pub(crate) fn verify_rs256(public_pkcs1_der: &[u8], signed: &[u8], sig: &[u8]) -> bool {
    ring::signature::UnparsedPublicKey::new(
        &ring::signature::RSA_PKCS1_2048_8192_SHA256,
        public_pkcs1_der,
    )
    .verify(signed, sig)
    .is_ok()
}

/// RSA key material for a service-account key.
#[derive(Clone)]
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

/// The RSA key of the emulator's admin service account (the key file it
/// exports): generated once per process and shared by every emulator the
/// process starts, as a test binary starts hundreds and a 2048-bit key takes
/// a noticeable time to make. Each world still issues it under its own key
/// id; keys created through the API (`keys.create`) are always fresh.
pub(crate) fn admin_rsa_key() -> Result<GeneratedKey, String> {
    static KEY: std::sync::OnceLock<GeneratedKey> = std::sync::OnceLock::new();
    if let Some(key) = KEY.get() {
        return Ok(key.clone());
    }
    let key = generate_rsa_key()?;
    Ok(KEY.get_or_init(|| key).clone())
}

/// Signs `claims` as an RS256 JWT with a PKCS#8 PEM key (used by tests and
/// by anyone who wants to exercise the JWT-bearer grant without gcp_auth).
pub fn sign_jwt(private_pkcs8_pem: &str, kid: &str, claims: &Value) -> Result<String, String> {
    let der = pem_body(private_pkcs8_pem).ok_or("bad PEM")?;
    let key = ring::signature::RsaKeyPair::from_pkcs8(&der).map_err(|e| e.to_string())?;
    let header = serde_json::json!({"alg": "RS256", "typ": "JWT", "kid": kid});
    sign_compact(&key, &header, claims).map_err(|e| e.to_string())
}

/// `header.claims.signature`, base64url, RS256.
fn sign_compact(
    key: &ring::signature::RsaKeyPair,
    header: &Value,
    claims: &Value,
) -> Result<String, ring::error::Unspecified> {
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
    )?;
    Ok(format!("{signed}.{}", URL_SAFE_NO_PAD.encode(sig)))
}

/// Why an RS256 JWT could not be made or its signature did not verify.
#[derive(Debug, thiserror::Error)]
pub(crate) enum JwtError {
    #[error("malformed token: {0}")]
    Malformed(String),
    #[error("invalid signature")]
    BadSignature,
    #[error("signing key: {0}")]
    Key(String),
}

/// A loaded RS256 signing key with its key id (a Kubernetes cluster's
/// service-account issuer key).
pub(crate) struct Rs256Signer {
    key: ring::signature::RsaKeyPair,
    kid: String,
}

impl Rs256Signer {
    /// Loads a PKCS#8 PEM key. The key id is the base64url SHA-256 of the
    /// public key's PKIX DER, as kube-apiserver computes it.
    pub fn from_pem(pem: &str) -> Result<Self, JwtError> {
        use rsa::pkcs8::{DecodePrivateKey, EncodePrivateKey, EncodePublicKey};
        let private =
            rsa::RsaPrivateKey::from_pkcs8_pem(pem).map_err(|e| JwtError::Key(e.to_string()))?;
        let der = private
            .to_pkcs8_der()
            .map_err(|e| JwtError::Key(e.to_string()))?;
        let public_der = private
            .to_public_key()
            .to_public_key_der()
            .map_err(|e| JwtError::Key(e.to_string()))?;
        let kid = URL_SAFE_NO_PAD.encode(Sha256::digest(public_der.as_bytes()));
        let key = ring::signature::RsaKeyPair::from_pkcs8(der.as_bytes())
            .map_err(|e| JwtError::Key(e.to_string()))?;
        Ok(Self { key, kid })
    }

    /// The public key as a JWKS document (`/openid/v1/jwks`).
    pub fn jwks(&self) -> Value {
        let c = ring::rsa::PublicKeyComponents::<Vec<u8>>::from(self.key.public());
        serde_json::json!({"keys": [{
            "use": "sig",
            "kty": "RSA",
            "kid": self.kid,
            "alg": "RS256",
            "n": URL_SAFE_NO_PAD.encode(&c.n),
            "e": URL_SAFE_NO_PAD.encode(&c.e),
        }]})
    }

    /// Signs claims into a compact JWS.
    pub fn sign(&self, claims: &Value) -> Result<String, JwtError> {
        let header = serde_json::json!({"alg": "RS256", "kid": self.kid});
        sign_compact(&self.key, &header, claims).map_err(|e| JwtError::Key(e.to_string()))
    }

    /// Checks the structure, `alg` and signature and returns the raw claims
    /// (the caller checks times and shape).
    pub fn verify_signature(&self, jwt: &str) -> Result<Value, JwtError> {
        let mut parts = jwt.split('.');
        let (Some(h), Some(p), Some(s), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(JwtError::Malformed(
                "expected three dot-separated parts".into(),
            ));
        };
        let header: Value = decode_part(h)?;
        if header.get("alg").and_then(Value::as_str) != Some("RS256") {
            return Err(JwtError::Malformed("alg must be RS256".into()));
        }
        let sig = URL_SAFE_NO_PAD
            .decode(s)
            .map_err(|e| JwtError::Malformed(e.to_string()))?;
        let public = ring::signature::UnparsedPublicKey::new(
            &ring::signature::RSA_PKCS1_2048_8192_SHA256,
            self.key.public().as_ref(),
        );
        public
            .verify(format!("{h}.{p}").as_bytes(), &sig)
            .map_err(|_| JwtError::BadSignature)?;
        decode_part(p)
    }
}

fn decode_part<T: serde::de::DeserializeOwned>(part: &str) -> Result<T, JwtError> {
    let bytes = URL_SAFE_NO_PAD
        .decode(part)
        .map_err(|e| JwtError::Malformed(e.to_string()))?;
    serde_json::from_slice(&bytes).map_err(|e| JwtError::Malformed(e.to_string()))
}

fn pem_body(pem: &str) -> Option<Vec<u8>> {
    let b64: String = pem
        .lines()
        .filter(|l| !l.starts_with("-----"))
        .collect::<Vec<_>>()
        .join("");
    base64::engine::general_purpose::STANDARD.decode(b64).ok()
}

/// PEMs of a CA and a serving certificate it signed.
pub(crate) struct Pki {
    pub ca_cert_pem: String,
    pub serving_cert_pem: String,
    pub serving_key_pem: String,
}

/// The CA and serving certificate of the Google API listeners (`127.0.0.1`, `localhost`).
pub(crate) fn google_listener_pki() -> Result<Pki, rcgen::Error> {
    use rcgen::{
        BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair, KeyUsagePurpose,
    };
    let ca_key = KeyPair::generate()?;
    let mut ca_params = CertificateParams::new(Vec::<String>::new())?;
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(DnType::CommonName, "wi emulator CA");
    ca_params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    let ca_cert = ca_params.self_signed(&ca_key)?;
    let issuer = Issuer::new(ca_params, &ca_key);
    let leaf_key = KeyPair::generate()?;
    let mut leaf = CertificateParams::new(vec!["127.0.0.1".to_string(), "localhost".to_string()])?;
    leaf.distinguished_name
        .push(DnType::CommonName, "wi emulator");
    leaf.extended_key_usages = vec![rcgen::ExtendedKeyUsagePurpose::ServerAuth];
    let leaf_cert = leaf.signed_by(&leaf_key, &issuer)?;
    Ok(Pki {
        ca_cert_pem: ca_cert.pem(),
        serving_cert_pem: leaf_cert.pem(),
        serving_key_pem: leaf_key.serialize_pem(),
    })
}

/// The cluster's PKI: a CA (what GKE reports as
/// `masterAuth.clusterCaCertificate`) and a serving certificate it signed for
/// `127.0.0.1` and `localhost`, so clients verify the API server exactly as they
/// verify a real GKE endpoint. Generated once per cluster and persisted.
/// Generates a fresh CA (valid 30 years, like GKE's) and a serving
/// certificate for `127.0.0.1`, `localhost` and the in-cluster service names.
pub(crate) fn cluster_pki(common_name: &str) -> Result<Pki, rcgen::Error> {
    use rcgen::{
        BasicConstraints, CertificateParams, CertifiedIssuer, DnType, ExtendedKeyUsagePurpose,
        IsCa, KeyPair, KeyUsagePurpose,
    };
    use time::{Duration, OffsetDateTime};
    let now = OffsetDateTime::now_utc();
    let mut ca_params = CertificateParams::new(Vec::<String>::new())?;
    ca_params
        .distinguished_name
        .push(DnType::CommonName, common_name);
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    ca_params.not_before = now - Duration::hours(1);
    ca_params.not_after = now + Duration::days(365 * 30);
    let ca = CertifiedIssuer::self_signed(ca_params, KeyPair::generate()?)?;

    let mut params = CertificateParams::new(vec![
        "127.0.0.1".to_string(),
        "localhost".to_string(),
        "kubernetes".to_string(),
        "kubernetes.default".to_string(),
        "kubernetes.default.svc".to_string(),
        "kubernetes.default.svc.cluster.local".to_string(),
    ])?;
    params
        .distinguished_name
        .push(DnType::CommonName, "kube-apiserver");
    params.is_ca = IsCa::ExplicitNoCa;
    params.key_usages = vec![
        KeyUsagePurpose::DigitalSignature,
        KeyUsagePurpose::KeyEncipherment,
    ];
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    params.not_before = now - Duration::hours(1);
    params.not_after = now + Duration::days(365 * 5);
    let key = KeyPair::generate()?;
    let cert = params.signed_by(&key, &ca)?;
    Ok(Pki {
        ca_cert_pem: ca.pem(),
        serving_cert_pem: cert.pem(),
        serving_key_pem: key.serialize_pem(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generates_a_ca_and_a_serving_certificate() {
        for _ in 0..20 {
            let pki = cluster_pki("test-ca").expect("generates");
            assert!(pki.ca_cert_pem.starts_with("-----BEGIN CERTIFICATE-----"));
            assert!(pki.serving_key_pem.contains("PRIVATE KEY"));
        }
        let pki = google_listener_pki().expect("generates");
        assert!(
            pki.serving_cert_pem
                .starts_with("-----BEGIN CERTIFICATE-----")
        );
    }

    #[test]
    fn signed_jwt_verifies_and_decodes() {
        let key = generate_rsa_key().unwrap();
        let claims = serde_json::json!({"iss": "a", "aud": "b"});
        let jwt = sign_jwt(&key.private_pkcs8_pem, "k1", &claims).unwrap();
        let (header, decoded, sig, signed) = decode_jwt(&jwt).unwrap();
        assert_eq!(header["kid"], "k1");
        assert_eq!(decoded, claims);
        let der = hex::decode(&key.public_pkcs1_hex).unwrap();
        assert!(verify_rs256(&der, signed.as_bytes(), &sig));
        assert!(!verify_rs256(&der, b"other", &sig));
    }
}
