//! Reading a certificate signing request: its signature must verify with the key it carries,
//! and the CA takes only that key and the one URI SAN from it.

use rcgen::SubjectPublicKeyInfo;
use rustls_pki_types::CertificateSigningRequestDer;
use rustls_pki_types::pem::PemObject;
use x509_parser::certification_request::X509CertificationRequest;
use x509_parser::error::X509Error;
use x509_parser::extensions::{GeneralName, ParsedExtension};
use x509_parser::prelude::FromDer;

/// A verified request.
#[derive(Debug)]
pub struct Csr {
    pub key: SubjectPublicKeyInfo,
    /// The requested identity: the CSR's only URI SAN.
    pub uri: String,
}

/// What is wrong with a CSR, in words the requester can act on.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("csr_pem is not a PEM CERTIFICATE REQUEST: {0}")]
    NotPem(#[source] rustls_pki_types::pem::Error),
    #[error("the CSR is not valid PKCS#10: {0}")]
    NotPkcs10(#[source] x509_parser::nom::Err<X509Error>),
    #[error("the CSR has trailing bytes")]
    TrailingBytes,
    #[error("the CSR's signature does not verify with the key it carries ({0})")]
    Signature(#[source] X509Error),
    #[error("the CSR's key type is not supported ({0}); use ECDSA P-256")]
    KeyType(#[source] rcgen::Error),
    #[error("the CSR has no URI SAN: put the workload's SPIFFE ID in it")]
    NoUri,
    #[error(
        "the CSR has {} URI SANs ({}); a workload certificate carries exactly one SPIFFE ID",
        .0.len(),
        .0.join(", ")
    )]
    ManyUris(Vec<String>),
}

/// Parses and verifies a PEM CSR; the error says what is wrong with it.
pub fn parse(pem_text: &str) -> Result<Csr, Error> {
    let der =
        CertificateSigningRequestDer::from_pem_slice(pem_text.as_bytes()).map_err(Error::NotPem)?;
    let (rest, csr) = X509CertificationRequest::from_der(&der).map_err(Error::NotPkcs10)?;
    if !rest.is_empty() {
        return Err(Error::TrailingBytes);
    }
    csr.verify_signature().map_err(Error::Signature)?;
    let key = SubjectPublicKeyInfo::from_der(csr.certification_request_info.subject_pki.raw)
        .map_err(Error::KeyType)?;
    let mut uris = Vec::new();
    for ext in csr.requested_extensions().into_iter().flatten() {
        if let ParsedExtension::SubjectAlternativeName(san) = ext {
            for name in &san.general_names {
                if let GeneralName::URI(u) = name {
                    uris.push(u.to_string());
                }
            }
        }
    }
    match uris.len() {
        1 => Ok(Csr {
            key,
            uri: uris.remove(0),
        }),
        0 => Err(Error::NoUri),
        _ => Err(Error::ManyUris(uris)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn csr(sans: &[&str]) -> String {
        let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
        let mut p = rcgen::CertificateParams::default();
        p.subject_alt_names = sans
            .iter()
            .map(|s| rcgen::SanType::URI((*s).try_into().unwrap()))
            .collect();
        p.serialize_request(&key).unwrap().pem().unwrap()
    }

    #[test]
    fn takes_the_one_uri_san() {
        let c = parse(&csr(&["spiffe://td/ns/a/sa/b"])).unwrap();
        assert_eq!(c.uri, "spiffe://td/ns/a/sa/b");
    }

    #[test]
    fn says_what_is_wrong() {
        for (pem, why) in [
            ("garbage".to_string(), "not a PEM CERTIFICATE REQUEST"),
            (
                "-----BEGIN CERTIFICATE REQUEST-----\nAAAA\n-----END CERTIFICATE REQUEST-----\n"
                    .to_string(),
                "not valid PKCS#10",
            ),
            (
                csr(&[]),
                "the CSR has no URI SAN: put the workload's SPIFFE ID in it",
            ),
            (
                csr(&["spiffe://td/ns/a/sa/b", "spiffe://td/ns/a/sa/c"]),
                "the CSR has 2 URI SANs (spiffe://td/ns/a/sa/b, spiffe://td/ns/a/sa/c); \
                 a workload certificate carries exactly one SPIFFE ID",
            ),
        ] {
            let err = parse(&pem).unwrap_err().to_string();
            assert!(err.contains(why), "{err}");
        }
    }

    #[test]
    fn a_tampered_csr_fails_its_signature() {
        let pem = csr(&["spiffe://td/ns/a/sa/bob"]);
        let mut der = CertificateSigningRequestDer::from_pem_slice(pem.as_bytes())
            .unwrap()
            .as_ref()
            .to_vec();
        // Change one byte of the signed part (inside the SAN), keeping the DER valid.
        let at = der.windows(6).position(|w| w == b"sa/bob").unwrap() + 3;
        der[at] = b'c';
        let tampered = pem::encode(&pem::Pem::new("CERTIFICATE REQUEST", der));
        let err = parse(&tampered).unwrap_err();
        assert!(matches!(err, Error::Signature(_)), "{err:?}");
        assert!(
            err.to_string().contains("signature does not verify"),
            "{err}"
        );
        assert!(
            std::error::Error::source(&err).is_some(),
            "the verifier's error is kept as the cause"
        );
    }
}
