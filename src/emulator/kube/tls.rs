//! The cluster's PKI: a CA (what GKE reports as
//! `masterAuth.clusterCaCertificate`) and a serving certificate it signed for
//! `127.0.0.1` and `localhost`, so clients verify the API server exactly as they
//! verify a real GKE endpoint. Generated once per cluster and persisted.

use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, ExtendedKeyUsagePurpose, IsCa,
    KeyPair, KeyUsagePurpose,
};
use time::{Duration, OffsetDateTime};

/// PEMs of the cluster CA and the serving certificate.
pub struct Pki {
    pub ca_cert_pem: String,
    pub serving_cert_pem: String,
    pub serving_key_pem: String,
}

/// Generates a fresh CA (valid 30 years, like GKE's) and a serving
/// certificate for `127.0.0.1`, `localhost` and the in-cluster service names.
pub fn generate(common_name: &str) -> Result<Pki, rcgen::Error> {
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
    #[test]
    fn generates_a_ca_and_a_serving_certificate() {
        for _ in 0..20 {
            let pki = super::generate("test-ca").expect("generates");
            assert!(pki.ca_cert_pem.starts_with("-----BEGIN CERTIFICATE-----"));
            assert!(pki.serving_key_pem.contains("PRIVATE KEY"));
        }
    }
}
