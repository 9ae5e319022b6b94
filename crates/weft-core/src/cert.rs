//! What a workload certificate says, read the same way by the proxies' tunnel and the control
//! plane's discovery port: its one `spiffe://` URI SAN (a SPIFFE X.509-SVID has exactly one)
//! and its subject's common name (the pod the CA issued it to). Only reads: verifying the
//! chain is the TLS layer's job.

use x509_parser::error::X509Error;
use x509_parser::prelude::{FromDer, GeneralName, X509Certificate};

/// The parts of a leaf certificate weft reads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Leaf {
    /// The one `spiffe://` URI SAN, as written (parse it with [`crate::identity::SpiffeId`]).
    pub spiffe_uri: String,
    /// The subject's common name; empty when it has none.
    pub common_name: String,
}

/// Why a certificate gives no workload identity.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("unreadable certificate: {0}")]
    Unreadable(#[source] x509_parser::nom::Err<X509Error>),
    #[error("bad subjectAltName: {0}")]
    BadSan(#[source] X509Error),
    #[error("the certificate has no subjectAltName")]
    NoSan,
    #[error("the certificate has no spiffe:// identity")]
    NoSpiffeId,
    #[error("the certificate has more than one spiffe:// identity")]
    ManySpiffeIds,
}

/// Reads a DER leaf certificate; the error says what is missing.
pub fn read(der: &[u8]) -> Result<Leaf, Error> {
    let (_, cert) = X509Certificate::from_der(der).map_err(Error::Unreadable)?;
    let san = cert
        .subject_alternative_name()
        .map_err(Error::BadSan)?
        .ok_or(Error::NoSan)?;
    let uris: Vec<&str> = san
        .value
        .general_names
        .iter()
        .filter_map(|n| match n {
            GeneralName::URI(u) if u.starts_with("spiffe://") => Some(*u),
            _ => None,
        })
        .collect();
    let spiffe_uri = match uris.as_slice() {
        [one] => one.to_string(),
        [] => return Err(Error::NoSpiffeId),
        _ => return Err(Error::ManySpiffeIds),
    };
    let common_name = cert
        .subject()
        .iter_common_name()
        .next()
        .and_then(|cn| cn.as_str().ok())
        .unwrap_or_default()
        .to_string();
    Ok(Leaf {
        spiffe_uri,
        common_name,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_non_certificate_is_unreadable_and_keeps_the_parser_error() {
        let err = read(b"not a certificate").unwrap_err();
        assert!(matches!(err, Error::Unreadable(_)), "{err:?}");
        assert!(
            err.to_string().starts_with("unreadable certificate: "),
            "{err}"
        );
        assert!(std::error::Error::source(&err).is_some());
    }
}
