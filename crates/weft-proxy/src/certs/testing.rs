//! A tiny in-memory CA for tests (of this crate and others): static [`Source`]s for any
//! identity, expired ones, a foreign CA, and an [`Issue`] implementation that signs the CSRs
//! of a rotating [`Source`] (with failures on demand).
//!
//! ```
//! use std::time::Duration;
//! use weft_proxy::certs::testing::TestCa;
//!
//! let ca = TestCa::new("shop.local");
//! let cart = ca.issue("spiffe://shop.local/ns/shop/sa/cart", Duration::from_secs(3600));
//! assert!(cart.certified_key().is_some());
//! assert_eq!(*cart.trust_bundle(), ca.bundle());
//! let stranger = TestCa::other().issue("spiffe://shop.local/ns/shop/sa/cart", Duration::from_secs(3600));
//! assert_ne!(*stranger.trust_bundle(), ca.bundle());
//! ```

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use rcgen::{
    BasicConstraints, CertificateParams, CertificateSigningRequestParams, DistinguishedName,
    DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair, KeyUsagePurpose, PublicKeyData,
    SanType, SerialNumber,
};
use rustls_pki_types::CertificateDer;

use super::Source;
use super::client::{Issue, IssueError, Issued};
use super::key::{assemble, to_pem};

/// An in-memory root CA.
pub struct TestCa {
    trust_domain: String,
    issuer: Issuer<'static, KeyPair>,
    root: CertificateDer<'static>,
    serial: AtomicUsize,
    fail_next: AtomicUsize,
    issued: AtomicUsize,
}

impl std::fmt::Debug for TestCa {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TestCa")
            .field("trust_domain", &self.trust_domain)
            .finish_non_exhaustive()
    }
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
            issued: AtomicUsize::new(0),
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

    /// A static source holding a certificate for `spiffe_id` (any URI: tests may want odd
    /// ones), valid from a minute ago for `ttl`.
    pub fn issue(&self, spiffe_id: &str, ttl: Duration) -> Arc<Source> {
        let now = time::OffsetDateTime::now_utc();
        self.source(spiffe_id, now - time::Duration::minutes(1), now + ttl)
    }

    /// A static source holding a certificate for `spiffe_id` that expired an hour ago.
    pub fn issue_expired(&self, spiffe_id: &str) -> Arc<Source> {
        let now = time::OffsetDateTime::now_utc();
        self.source(
            spiffe_id,
            now - time::Duration::hours(2),
            now - time::Duration::hours(1),
        )
    }

    /// The next `n` [`Issue::create`] calls fail, as an unreachable CA would.
    pub fn fail_next(&self, n: usize) {
        self.fail_next.store(n, Ordering::SeqCst);
    }

    /// Certificates signed through [`Issue`] so far.
    pub fn issued(&self) -> usize {
        self.issued.load(Ordering::SeqCst)
    }

    fn source(
        &self,
        uri: &str,
        not_before: time::OffsetDateTime,
        not_after: time::OffsetDateTime,
    ) -> Arc<Source> {
        let key = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).expect("test key");
        let leaf = self.leaf(&key, uri, not_before, not_after);
        let (certified, info) = assemble(&key, vec![leaf], &self.bundle()).expect("test cert");
        Source::from_static(certified, self.bundle(), info)
    }

    fn leaf(
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

impl Issue for Arc<TestCa> {
    async fn create(&self, csr_pem: String, ttl: Option<Duration>) -> Result<Issued, IssueError> {
        let refused = |message: String| IssueError::Refused {
            code: tonic::Code::InvalidArgument,
            message,
        };
        let failing = self
            .fail_next
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
            .is_ok();
        if failing {
            return Err(IssueError::Unreachable {
                control_plane: "the test CA".into(),
                message: "failing as asked".into(),
            });
        }
        let csr = CertificateSigningRequestParams::from_pem(&csr_pem)
            .map_err(|e| refused(format!("test CA: bad CSR: {e}")))?;
        let uri = csr
            .params
            .subject_alt_names
            .iter()
            .find_map(|s| match s {
                SanType::URI(u) => Some(u.as_str().to_string()),
                _ => None,
            })
            .ok_or_else(|| refused("test CA: the CSR has no URI SAN".into()))?;
        let now = time::OffsetDateTime::now_utc();
        let ttl = ttl.unwrap_or(Duration::from_secs(3600));
        let leaf = self.leaf(
            &csr.public_key,
            &uri,
            now - time::Duration::minutes(1),
            now + ttl,
        );
        self.issued.fetch_add(1, Ordering::SeqCst);
        Ok(Issued {
            chain_pem: vec![to_pem(&leaf)],
            bundle_pem: vec![to_pem(&self.root)],
        })
    }
}
