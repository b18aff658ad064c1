//! Run-time generation of device-provider CAs and device certificates, for the simulator, the device
//! host (until a provider's management server issues real certificates) and tests. Nothing here is a
//! fixed key: every key is generated from the operating system's random source when called.

use chrono::{DateTime, Utc};

use crate::jws::{Alg, DeviceSigner, JwsError, PrivateKey};

fn keygen(what: &'static str, alg: Alg) -> Result<rcgen::KeyPair, JwsError> {
    let algo = match alg {
        Alg::Rs256 => &rcgen::PKCS_RSA_SHA256,
        Alg::EdDsa => &rcgen::PKCS_ED25519,
    };
    rcgen::KeyPair::generate_for(algo).map_err(|e| JwsError::KeyGeneration {
        what,
        reason: e.to_string(),
    })
}

fn to_offset(what: &'static str, t: DateTime<Utc>) -> Result<time::OffsetDateTime, JwsError> {
    time::OffsetDateTime::from_unix_timestamp(t.timestamp()).map_err(|e| JwsError::KeyGeneration {
        what,
        reason: format!("time {t} out of range: {e}"),
    })
}

fn params(
    what: &'static str,
    common_name: &str,
    organisation: &str,
    not_before: DateTime<Utc>,
    not_after: DateTime<Utc>,
) -> Result<rcgen::CertificateParams, JwsError> {
    let mut p = rcgen::CertificateParams::new(Vec::<String>::new()).map_err(|e| JwsError::KeyGeneration {
        what,
        reason: e.to_string(),
    })?;
    p.distinguished_name = rcgen::DistinguishedName::new();
    p.distinguished_name.push(rcgen::DnType::CommonName, common_name);
    p.distinguished_name
        .push(rcgen::DnType::OrganizationName, organisation);
    p.not_before = to_offset(what, not_before)?;
    p.not_after = to_offset(what, not_after)?;
    let mut serial = [0u8; 16];
    getrandom::fill(&mut serial).map_err(|e| JwsError::KeyGeneration {
        what,
        reason: e.to_string(),
    })?;
    if let Some(b) = serial.first_mut() {
        *b &= 0x7f;
    }
    p.serial_number = Some(rcgen::SerialNumber::from_slice(&serial));
    Ok(p)
}

/// A device provider's certificate authority.
pub struct ProviderCa {
    issuer: rcgen::Issuer<'static, rcgen::KeyPair>,
    cert_der: Vec<u8>,
    cert_pem: String,
    name: String,
}

impl std::fmt::Debug for ProviderCa {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ProviderCa")
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

impl ProviderCa {
    /// Generates a self-signed provider CA valid from `not_before` to `not_after`.
    pub fn generate(
        name: &str,
        alg: Alg,
        not_before: DateTime<Utc>,
        not_after: DateTime<Utc>,
    ) -> Result<Self, JwsError> {
        let key = keygen("provider CA key", alg)?;
        let mut p = params("provider CA certificate", name, name, not_before, not_after)?;
        p.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        p.key_usages = vec![
            rcgen::KeyUsagePurpose::KeyCertSign,
            rcgen::KeyUsagePurpose::DigitalSignature,
            rcgen::KeyUsagePurpose::CrlSign,
        ];
        let cert = p.self_signed(&key).map_err(|e| JwsError::KeyGeneration {
            what: "provider CA certificate",
            reason: e.to_string(),
        })?;
        Ok(Self {
            cert_der: cert.der().to_vec(),
            cert_pem: cert.pem(),
            issuer: rcgen::Issuer::new(p, key),
            name: name.to_string(),
        })
    }

    /// The CA certificate in DER (what a station adds to its trust store).
    pub fn cert_der(&self) -> &[u8] {
        &self.cert_der
    }

    /// The CA certificate in PEM.
    pub fn cert_pem(&self) -> &str {
        &self.cert_pem
    }

    /// Issues a device certificate with common name `serial_no` and returns the device's signer
    /// (key + chain `[device, provider CA]`).
    pub fn issue_device(
        &self,
        serial_no: &str,
        alg: Alg,
        not_before: DateTime<Utc>,
        not_after: DateTime<Utc>,
    ) -> Result<DeviceSigner, JwsError> {
        let key = keygen("device key", alg)?;
        let mut p = params("device certificate", serial_no, &self.name, not_before, not_after)?;
        p.is_ca = rcgen::IsCa::ExplicitNoCa;
        p.key_usages = vec![rcgen::KeyUsagePurpose::DigitalSignature];
        let cert = p
            .signed_by(&key, &self.issuer)
            .map_err(|e| JwsError::KeyGeneration {
                what: "device certificate",
                reason: e.to_string(),
            })?;
        let private = PrivateKey::from_pkcs8_der(key.serialize_der().as_slice())?;
        Ok(DeviceSigner::new(
            private,
            vec![cert.der().to_vec(), self.cert_der.clone()],
        ))
    }
}

/// Generates a self-signed RSA-2048 encryption certificate valid for a year from `now`, and its
/// private key (PKCS#8 DER): the stand-in for the authentication server's (IDA) domain certificate
/// that auth captures are encrypted to, for the simulator's tests and training set-ups.
pub fn encryption_certificate(common_name: &str, now: DateTime<Utc>) -> Result<(Vec<u8>, Vec<u8>), JwsError> {
    let key = keygen("encryption key", Alg::Rs256)?;
    let mut p = params(
        "encryption certificate",
        common_name,
        common_name,
        now - chrono::Duration::hours(1),
        now + chrono::Duration::days(365),
    )?;
    p.key_usages = vec![rcgen::KeyUsagePurpose::KeyEncipherment];
    let cert = p.self_signed(&key).map_err(|e| JwsError::KeyGeneration {
        what: "encryption certificate",
        reason: e.to_string(),
    })?;
    Ok((cert.der().to_vec(), key.serialize_der()))
}
