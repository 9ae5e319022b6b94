//! Reading certificates: PEM in and out, and the few fields the CA shows and checks.

use rustls_pki_types::CertificateDer;
use rustls_pki_types::pem::PemObject;
use serde::Serialize;
use x509_parser::error::X509Error;
use x509_parser::prelude::{FromDer, X509Certificate};

/// Why bytes or a PEM text give no certificate.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("not a valid X.509 certificate: {0}")]
    NotX509(#[source] x509_parser::nom::Err<X509Error>),
    #[error("bad PEM: {0}")]
    Pem(#[source] rustls_pki_types::pem::Error),
    #[error("no CERTIFICATE block in it")]
    NoCertificate,
}

/// What the CA shows about a certificate (`/debug/ca`, logs).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Summary {
    pub subject: String,
    pub issuer: String,
    /// Lowercase hex, no separators.
    pub serial: String,
    /// Unix seconds.
    pub not_before: i64,
    pub not_after: i64,
    pub is_ca: bool,
    /// Subject equals issuer and the signature verifies with its own key: a root.
    pub self_signed: bool,
}

impl Summary {
    pub fn of(der: &[u8]) -> Result<Summary, Error> {
        let (_, cert) = X509Certificate::from_der(der).map_err(Error::NotX509)?;
        Ok(Summary {
            subject: cert.subject().to_string(),
            issuer: cert.issuer().to_string(),
            serial: serial_hex(cert.raw_serial()),
            not_before: cert.validity().not_before.timestamp(),
            not_after: cert.validity().not_after.timestamp(),
            is_ca: cert.is_ca(),
            self_signed: cert.subject() == cert.issuer() && cert.verify_signature(None).is_ok(),
        })
    }

    pub fn expired(&self, now: i64) -> bool {
        self.not_after <= now
    }
}

/// A serial number as lowercase hex without the DER sign padding.
pub fn serial_hex(raw: &[u8]) -> String {
    let start = raw.iter().position(|b| *b != 0).unwrap_or(raw.len());
    let hex: String = raw[start..].iter().map(|b| format!("{b:02x}")).collect();
    if hex.is_empty() { "00".into() } else { hex }
}

/// Every certificate in a PEM text, in order.
pub fn parse_pem(text: &str) -> Result<Vec<CertificateDer<'static>>, Error> {
    let certs = CertificateDer::pem_slice_iter(text.as_bytes())
        .collect::<Result<Vec<_>, _>>()
        .map_err(Error::Pem)?;
    if certs.is_empty() {
        return Err(Error::NoCertificate);
    }
    Ok(certs)
}

pub fn to_pem(der: &[u8]) -> String {
    pem::encode(&pem::Pem::new("CERTIFICATE", der))
}

/// Seconds since the Unix epoch.
pub fn now() -> i64 {
    time::OffsetDateTime::now_utc().unix_timestamp()
}

/// `2030-01-01T00:00:00Z`, for people.
pub fn rfc3339(unix: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp(unix)
        .ok()
        .and_then(|t| {
            t.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_else(|| unix.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bad_input_says_why_and_keeps_the_cause() {
        let err = Summary::of(b"not DER").unwrap_err();
        assert!(matches!(err, Error::NotX509(_)), "{err:?}");
        assert!(
            err.to_string()
                .starts_with("not a valid X.509 certificate: "),
            "{err}"
        );
        assert!(std::error::Error::source(&err).is_some());
        assert_eq!(
            parse_pem("no pem here").unwrap_err().to_string(),
            "no CERTIFICATE block in it"
        );
        let bad = "-----BEGIN CERTIFICATE-----\n!!!!\n-----END CERTIFICATE-----\n";
        let err = parse_pem(bad).unwrap_err();
        assert!(matches!(err, Error::Pem(_)), "{err:?}");
        assert!(err.to_string().starts_with("bad PEM: "), "{err}");
    }

    #[test]
    fn a_generated_root_reads_back() {
        let key = rcgen::KeyPair::generate().unwrap();
        let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        let root = params.self_signed(&key).unwrap();
        let certs = parse_pem(&root.pem()).unwrap();
        let s = Summary::of(&certs[0]).unwrap();
        assert!(s.is_ca && s.self_signed, "{s:?}");
    }
}
