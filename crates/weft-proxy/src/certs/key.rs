//! A fresh key and CSR per certificate, and the checks on what the CA sends back.

use std::sync::Arc;

use rcgen::{CertificateParams, DistinguishedName, KeyPair, SanType};
use rustls::RootCertStore;
use rustls::crypto::CryptoProvider;
use rustls::server::WebPkiClientVerifier;
use rustls::sign::CertifiedKey;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer, UnixTime};
use weft_core::identity::SpiffeId;
use x509_parser::extensions::GeneralName;
use x509_parser::prelude::{FromDer, X509Certificate};

use super::CertInfo;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("generating a key or CSR failed: {0}")]
    Generate(#[from] rcgen::Error),
    #[error("the CA's answer is unusable: {0}")]
    BadAnswer(String),
    #[error("bad PEM: {0}")]
    Pem(#[from] rustls_pki_types::pem::Error),
}

/// The crypto every certificate config of the proxy uses, set explicitly (never a process
/// default).
pub fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// A new ECDSA P-256 key and a CSR for `id` signed with it.
pub fn request(id: &SpiffeId) -> Result<(KeyPair, String), Error> {
    let key = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256)?;
    let mut p = CertificateParams::default();
    p.distinguished_name = DistinguishedName::new();
    p.subject_alt_names = vec![SanType::URI(id.to_string().try_into()?)];
    let csr = p.serialize_request(&key)?.pem()?;
    Ok((key, csr))
}

pub fn parse_pem(list: &[String]) -> Result<Vec<CertificateDer<'static>>, Error> {
    let mut out = Vec::new();
    for text in list {
        for c in CertificateDer::pem_slice_iter(text.as_bytes()) {
            out.push(c?);
        }
    }
    Ok(out)
}

pub fn to_pem(der: &[u8]) -> String {
    pem::encode(&pem::Pem::new("CERTIFICATE", der))
}

/// Pairs the key with the chain (checking they match) and reads what to show.
pub fn assemble(
    key: &KeyPair,
    chain: Vec<CertificateDer<'static>>,
    bundle: &[CertificateDer<'static>],
) -> Result<(Arc<CertifiedKey>, CertInfo), Error> {
    let bad = Error::BadAnswer;
    if chain.is_empty() {
        return Err(bad("the certificate chain is empty".into()));
    }
    let der = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der()));
    let certified = CertifiedKey::from_der(chain.clone(), der, &provider()).map_err(|e| {
        bad(format!(
            "the certificate does not match the key we sent: {e}"
        ))
    })?;
    let (_, leaf) = X509Certificate::from_der(&chain[0])
        .map_err(|e| bad(format!("the certificate does not parse: {e}")))?;
    let uris: Vec<String> = leaf
        .subject_alternative_name()
        .ok()
        .flatten()
        .map(|san| {
            san.value
                .general_names
                .iter()
                .filter_map(|n| match n {
                    GeneralName::URI(u) => Some(u.to_string()),
                    _ => None,
                })
                .collect()
        })
        .unwrap_or_default();
    let info = CertInfo {
        spiffe_id: uris.join(","),
        serial: serial_hex(leaf.raw_serial()),
        not_before: leaf.validity().not_before.timestamp(),
        not_after: leaf.validity().not_after.timestamp(),
        chain_pem: chain.iter().map(|c| to_pem(c)).collect(),
        bundle_pem: bundle.iter().map(|c| to_pem(c)).collect(),
    };
    Ok((Arc::new(certified), info))
}

/// What a received certificate must be: exactly `id`, chaining to `bundle`, valid now.
pub fn check(
    info: &CertInfo,
    chain: &[CertificateDer<'static>],
    bundle: &[CertificateDer<'static>],
    id: &SpiffeId,
) -> Result<(), Error> {
    let bad = Error::BadAnswer;
    if info.spiffe_id != id.to_string() {
        return Err(bad(format!(
            "the certificate is for {:?}, not {id}",
            info.spiffe_id
        )));
    }
    let mut roots = RootCertStore::empty();
    for r in bundle {
        roots
            .add(r.clone())
            .map_err(|e| bad(format!("a trust bundle root is unusable: {e}")))?;
    }
    if roots.is_empty() {
        return Err(bad("the trust bundle is empty".into()));
    }
    let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider())
        .build()
        .map_err(|e| bad(e.to_string()))?;
    verifier
        .verify_client_cert(&chain[0], &chain[1..], UnixTime::now())
        .map_err(|e| {
            bad(format!(
                "the certificate does not verify against the CA's own trust bundle: {e}"
            ))
        })?;
    Ok(())
}

/// A serial number as lowercase hex without the DER sign padding.
pub fn serial_hex(raw: &[u8]) -> String {
    let start = raw.iter().position(|b| *b != 0).unwrap_or(raw.len());
    let hex: String = raw[start..].iter().map(|b| format!("{b:02x}")).collect();
    if hex.is_empty() { "00".into() } else { hex }
}
