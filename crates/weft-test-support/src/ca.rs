//! A tiny in-memory root CA for tests: workload certificates for any URI SAN, expired ones, a
//! foreign CA whose certificates no other bundle trusts, and CSR signing (with failures on
//! demand) for a test double of the control plane's CA.
//!
//! What it hands out is plain material ([`Leaf`]: key, chain, bundle; [`Signed`]: PEM), so
//! it depends on no weft crate; each crate's tests wrap it in their own types (a proxy's
//! certificate `Source`, its `Issue` trait).
//!
//! ```
//! use std::time::Duration;
//! use weft_test_support::ca::TestCa;
//!
//! let ca = TestCa::new("shop.local");
//! let cart = ca.leaf("spiffe://shop.local/ns/shop/sa/cart", Duration::from_secs(3600));
//! assert_eq!(cart.bundle, ca.bundle());
//! let _key = cart.certified_key();
//! assert_ne!(TestCa::other().bundle(), ca.bundle());
//! ```

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use rcgen::{
    BasicConstraints, CertificateParams, CertificateSigningRequestParams, DistinguishedName,
    DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair, KeyUsagePurpose, PublicKeyData,
    SanType, SerialNumber,
};
use rustls::sign::CertifiedKey;
use rustls_pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};

/// An in-memory root CA.
pub struct TestCa {
    trust_domain: String,
    issuer: Issuer<'static, KeyPair>,
    root: CertificateDer<'static>,
    serial: AtomicUsize,
    fail_next: AtomicUsize,
    signed: AtomicUsize,
}

impl std::fmt::Debug for TestCa {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TestCa")
            .field("trust_domain", &self.trust_domain)
            .finish_non_exhaustive()
    }
}

/// A certificate this CA issued, with its key and the bundle to trust.
#[derive(Debug)]
pub struct Leaf {
    pub key: KeyPair,
    /// The workload certificate (a root signs it directly: nothing else).
    pub chain: Vec<CertificateDer<'static>>,
    pub bundle: Vec<CertificateDer<'static>>,
}

impl Leaf {
    /// The chain and key for a rustls handshake (ring provider).
    pub fn certified_key(&self) -> Arc<CertifiedKey> {
        let der = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(self.key.serialize_der()));
        let provider = rustls::crypto::ring::default_provider();
        Arc::new(CertifiedKey::from_der(self.chain.clone(), der, &provider).expect("test key"))
    }
}

/// A CSR signed as the control plane's CA would answer it, in PEM.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Signed {
    pub chain_pem: Vec<String>,
    pub bundle_pem: Vec<String>,
}

/// One certificate as a PEM block.
pub fn to_pem(der: &[u8]) -> String {
    pem::encode(&pem::Pem::new("CERTIFICATE", der))
}

impl TestCa {
    /// A new root, `CN=weft test CA <trust_domain>`.
    pub fn new(trust_domain: &str) -> TestCa {
        let key = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).expect("test CA key");
        let mut p = CertificateParams::default();
        let mut dn = DistinguishedName::new();
        dn.push(DnType::CommonName, format!("weft test CA {trust_domain}"));
        p.distinguished_name = dn;
        p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        p.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        let now = time::OffsetDateTime::now_utc();
        p.not_before = now - time::Duration::hours(1);
        p.not_after = now + time::Duration::days(365);
        let root = p.self_signed(&key).expect("test CA root").der().clone();
        TestCa {
            trust_domain: trust_domain.to_string(),
            issuer: Issuer::new(p, key),
            root,
            serial: AtomicUsize::new(1),
            fail_next: AtomicUsize::new(0),
            signed: AtomicUsize::new(0),
        }
    }

    /// A foreign CA: its certificates chain to a root no [`TestCa::new`] bundle holds.
    pub fn other() -> TestCa {
        TestCa::new("foreign.test")
    }

    pub fn trust_domain(&self) -> &str {
        &self.trust_domain
    }

    /// The root certificate.
    pub fn root(&self) -> CertificateDer<'static> {
        self.root.clone()
    }

    /// The trust bundle: the root alone.
    pub fn bundle(&self) -> Vec<CertificateDer<'static>> {
        vec![self.root.clone()]
    }

    /// A certificate for `uri` (any URI: tests may want odd ones), valid from a minute ago for
    /// `ttl`.
    pub fn leaf(&self, uri: &str, ttl: Duration) -> Leaf {
        let now = time::OffsetDateTime::now_utc();
        self.leaf_between(uri, now - time::Duration::minutes(1), now + ttl)
    }

    /// A certificate for `uri` that expired an hour ago.
    pub fn leaf_expired(&self, uri: &str) -> Leaf {
        let now = time::OffsetDateTime::now_utc();
        let (from, to) = (
            now - time::Duration::hours(2),
            now - time::Duration::hours(1),
        );
        self.leaf_between(uri, from, to)
    }

    /// The next `n` [`TestCa::sign`] calls fail, as an unreachable CA would.
    pub fn fail_next(&self, n: usize) {
        self.fail_next.store(n, Ordering::SeqCst);
    }

    /// CSRs signed through [`TestCa::sign`] so far.
    pub fn signed(&self) -> usize {
        self.signed.load(Ordering::SeqCst)
    }

    /// Signs a CSR for the URI SAN it asks for, valid for `ttl` (default one hour), unless told
    /// to fail; the error says why.
    pub fn sign(&self, csr_pem: &str, ttl: Option<Duration>) -> Result<Signed, String> {
        let failing = self
            .fail_next
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
            .is_ok();
        if failing {
            return Err("test CA: failing as asked".into());
        }
        let csr = CertificateSigningRequestParams::from_pem(csr_pem)
            .map_err(|e| format!("test CA: bad CSR: {e}"))?;
        let uri = csr
            .params
            .subject_alt_names
            .iter()
            .find_map(|s| match s {
                SanType::URI(u) => Some(u.as_str().to_string()),
                _ => None,
            })
            .ok_or("test CA: the CSR has no URI SAN")?;
        let now = time::OffsetDateTime::now_utc();
        let ttl = ttl.unwrap_or(Duration::from_secs(3600));
        let leaf = self.sign_key(
            &csr.public_key,
            &uri,
            now - time::Duration::minutes(1),
            now + ttl,
        );
        self.signed.fetch_add(1, Ordering::SeqCst);
        Ok(Signed {
            chain_pem: vec![to_pem(&leaf)],
            bundle_pem: vec![to_pem(&self.root)],
        })
    }

    fn leaf_between(
        &self,
        uri: &str,
        not_before: time::OffsetDateTime,
        not_after: time::OffsetDateTime,
    ) -> Leaf {
        let key = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).expect("test key");
        let cert = self.sign_key(&key, uri, not_before, not_after);
        Leaf {
            key,
            chain: vec![cert],
            bundle: self.bundle(),
        }
    }

    fn sign_key(
        &self,
        key: &impl PublicKeyData,
        uri: &str,
        not_before: time::OffsetDateTime,
        not_after: time::OffsetDateTime,
    ) -> CertificateDer<'static> {
        let mut p = CertificateParams::default();
        p.distinguished_name = DistinguishedName::new();
        p.subject_alt_names = vec![SanType::URI(uri.try_into().expect("an IA5 URI"))];
        p.is_ca = IsCa::ExplicitNoCa;
        p.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        p.extended_key_usages = vec![
            ExtendedKeyUsagePurpose::ServerAuth,
            ExtendedKeyUsagePurpose::ClientAuth,
        ];
        let n = (self.serial.fetch_add(1, Ordering::SeqCst) as u64).to_be_bytes();
        let first = n.iter().position(|b| *b != 0).unwrap_or(7);
        p.serial_number = Some(SerialNumber::from_slice(&n[first..]));
        p.not_before = not_before;
        p.not_after = not_after;
        p.use_authority_key_identifier_extension = true;
        p.signed_by(key, &self.issuer)
            .expect("test leaf")
            .der()
            .clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signs_a_csr_for_its_uri_and_fails_when_asked() {
        let ca = TestCa::new("td");
        let key = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
        let mut p = CertificateParams::default();
        p.subject_alt_names = vec![SanType::URI("spiffe://td/ns/a/sa/b".try_into().unwrap())];
        let csr = p.serialize_request(&key).unwrap().pem().unwrap();
        ca.fail_next(1);
        assert_eq!(
            ca.sign(&csr, None).unwrap_err(),
            "test CA: failing as asked"
        );
        assert_eq!(ca.signed(), 0);
        let signed = ca.sign(&csr, None).unwrap();
        assert_eq!(signed.bundle_pem, vec![to_pem(&ca.root())]);
        assert_eq!(ca.signed(), 1);
        assert!(ca.sign("not a CSR", None).unwrap_err().contains("bad CSR"));
    }

    #[test]
    fn leaves_pair_their_key_and_are_distinct() {
        let ca = TestCa::new("td");
        let a = ca.leaf("spiffe://td/ns/a/sa/b", Duration::from_secs(60));
        let b = ca.leaf_expired("spiffe://td/ns/a/sa/b");
        assert_ne!(a.chain, b.chain);
        assert_eq!(a.certified_key().cert, a.chain);
    }
}
