//! What a workload certificate says, read the same way by the proxies' tunnel and the control
//! plane's discovery port: its one `spiffe://` URI SAN (a SPIFFE X.509-SVID has exactly one)
//! and its subject's common name (the pod the CA issued it to). Only reads: verifying the
//! chain is the TLS layer's job.

use x509_parser::prelude::{FromDer, GeneralName, X509Certificate};

/// The parts of a leaf certificate weft reads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Leaf {
    /// The one `spiffe://` URI SAN, as written (parse it with [`crate::identity::SpiffeId`]).
    pub spiffe_uri: String,
    /// The subject's common name; empty when it has none.
    pub common_name: String,
}

/// Reads a DER leaf certificate; the error says what is missing.
pub fn read(der: &[u8]) -> Result<Leaf, String> {
    let (_, cert) =
        X509Certificate::from_der(der).map_err(|e| format!("unreadable certificate: {e}"))?;
    let san = cert
        .subject_alternative_name()
        .map_err(|e| format!("bad subjectAltName: {e}"))?
        .ok_or("the certificate has no subjectAltName")?;
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
        [] => return Err("the certificate has no spiffe:// identity".into()),
        _ => return Err("the certificate has more than one spiffe:// identity".into()),
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
