//! The signing CA (the generated root in the state dir, or an operator's root or
//! intermediate), the trust bundle, and signing workload certificates.

use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::Duration;

use rcgen::{
    CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose, SanType, SerialNumber, SubjectPublicKeyInfo,
};
use rustls_pki_types::CertificateDer;
use weft_core::identity::SpiffeId;
use x509_parser::prelude::{FromDer, X509Certificate};

use super::cert::{self, Summary};
use super::store::{
    Fingerprint, Paths, bad_cert, fingerprint, generate_root, invalid, lock, mkdir, read,
    read_bundle_dir, read_pair, rotate,
};
use super::{Config, Error};

/// Certificates start this long before they are issued, for clocks that lag.
pub const BACKDATE: Duration = Duration::from_secs(60);

/// Where the signing CA came from, for `/debug/ca`.
#[derive(Debug, Clone, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Origin {
    /// `root` or `intermediate`.
    pub kind: &'static str,
    pub cert_file: PathBuf,
    /// True when weft generated it (in the state dir).
    pub generated: bool,
}

pub type Bundle = Vec<(CertificateDer<'static>, Summary)>;

pub struct Authority {
    issuer: Issuer<'static, KeyPair>,
    /// Served after the workload certificate: the intermediates (empty when a root signs).
    chain: Vec<CertificateDer<'static>>,
    pub signing: Summary,
    pub origin: Origin,
    /// The roots the signing CA leads to: itself, or those of `--ca-bundle`.
    own_roots: Bundle,
    bundle_dir: PathBuf,
    /// The bundle dir's certificates, reparsed when the directory changes.
    extra: Mutex<(Fingerprint, Bundle)>,
}

impl std::fmt::Debug for Authority {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Authority")
            .field("signing", &self.signing)
            .field("origin", &self.origin)
            .finish_non_exhaustive()
    }
}

impl Authority {
    /// Loads the signing CA: the operator's (`--ca-cert`, `--ca-key`), or the generated root in
    /// the state dir, generating it on first start and rotating it when asked.
    pub fn load(cfg: &Config, trust_domain: &str) -> Result<Authority, Error> {
        let paths = Paths::new(&cfg.state_dir);
        mkdir(&paths.dir)?;
        mkdir(&paths.bundle)?;
        match (&cfg.ca_cert, &cfg.ca_key) {
            (Some(cert), Some(key)) => {
                if cfg.rotate_root {
                    return Err(Error::Config(
                        "--rotate-root rotates the root weft generated in the state dir; with \
                         --ca-cert, replace your files and keep the old root trusted by adding it \
                         to --ca-bundle or <state-dir>/ca/bundle/"
                            .into(),
                    ));
                }
                Self::operator(cert, key, cfg.ca_bundle.as_deref(), &paths)
            }
            (None, None) => {
                if cfg.ca_bundle.is_some() {
                    return Err(Error::Config(
                        "--ca-bundle goes with --ca-cert and --ca-key (an intermediate's roots); \
                         to trust more roots with the generated one, put them in \
                         <state-dir>/ca/bundle/"
                            .into(),
                    ));
                }
                // Replicas sharing the state dir may start together: one generates, the others
                // wait and load what it wrote.
                let _lock = lock(&paths)?;
                if cfg.rotate_root {
                    rotate(&paths, trust_domain)?;
                } else if !paths.root_cert.exists() && !paths.root_key.exists() {
                    let (cert, _) = generate_root(&paths, trust_domain)?;
                    tracing::info!(subject = %cert.subject, serial = %cert.serial, dir = %paths.dir.display(), "generated the mesh root CA");
                }
                Self::generated(&paths)
            }
            _ => Err(Error::Config(
                "--ca-cert and --ca-key go together: the signing certificate and its key".into(),
            )),
        }
    }

    fn generated(paths: &Paths) -> Result<Authority, Error> {
        for (have, missing) in [
            (&paths.root_cert, &paths.root_key),
            (&paths.root_key, &paths.root_cert),
        ] {
            if have.exists() && !missing.exists() {
                return Err(Error::Invalid {
                    path: missing.clone(),
                    message: format!(
                        "is missing while {} exists: restore it, or remove both to generate a \
                         new root (every proxy then needs new certificates)",
                        have.display()
                    ),
                });
            }
        }
        let (certs, key) = read_pair(&paths.root_cert, &paths.root_key)?;
        if let Ok(m) = std::fs::metadata(&paths.root_key) {
            use std::os::unix::fs::PermissionsExt;
            if m.permissions().mode() & 0o077 != 0 {
                tracing::warn!(file = %paths.root_key.display(), "the root key is readable by others than its owner: chmod 600 it");
            }
        }
        let signing = &certs[0];
        let s = Summary::of(signing).map_err(bad_cert(&paths.root_cert))?;
        if !s.self_signed {
            return Err(invalid(
                &paths.root_cert,
                "is not a self-signed root; an intermediate goes in with --ca-cert/--ca-key".into(),
            ));
        }
        let origin = Origin {
            kind: "root",
            cert_file: paths.root_cert.clone(),
            generated: true,
        };
        Self::assemble(
            signing.clone(),
            key,
            vec![],
            vec![signing.clone()],
            origin,
            paths,
        )
    }

    fn operator(
        cert_file: &Path,
        key_file: &Path,
        bundle_file: Option<&Path>,
        paths: &Paths,
    ) -> Result<Authority, Error> {
        let (certs, key) = read_pair(cert_file, key_file)?;
        let signing = certs[0].clone();
        let s = Summary::of(&signing).map_err(bad_cert(cert_file))?;
        let mut roots = match bundle_file {
            Some(f) => cert::parse_pem(&read(f)?).map_err(bad_cert(f))?,
            None => vec![],
        };
        let (kind, chain) = if s.self_signed {
            roots.insert(0, signing.clone());
            ("root", vec![])
        } else {
            let Some(bundle_file) = bundle_file else {
                return Err(invalid(
                    cert_file,
                    format!(
                        "is an intermediate (issued by {}): give the roots it leads to with \
                         --ca-bundle FILE",
                        s.issuer
                    ),
                ));
            };
            // The file may hold the intermediate and the ones above it; roots are not served.
            let chain: Vec<_> = certs
                .iter()
                .filter(|c| Summary::of(c).is_ok_and(|s| !s.self_signed))
                .cloned()
                .collect();
            let top = chain.last().unwrap_or(&signing);
            if !roots.iter().any(|r| issued_by(top, r)) {
                return Err(invalid(
                    bundle_file,
                    format!(
                        "has no root that signed {} (issuer {}); the chain in {} must lead to a \
                         root in --ca-bundle",
                        Summary::of(top).map(|s| s.subject).unwrap_or_default(),
                        Summary::of(top).map(|s| s.issuer).unwrap_or_default(),
                        cert_file.display()
                    ),
                ));
            }
            ("intermediate", chain)
        };
        let origin = Origin {
            kind,
            cert_file: cert_file.to_path_buf(),
            generated: false,
        };
        Self::assemble(signing, key, chain, roots, origin, paths)
    }

    fn assemble(
        signing: CertificateDer<'static>,
        key: KeyPair,
        chain: Vec<CertificateDer<'static>>,
        roots: Vec<CertificateDer<'static>>,
        origin: Origin,
        paths: &Paths,
    ) -> Result<Authority, Error> {
        let file = &origin.cert_file;
        let summary = Summary::of(&signing).map_err(bad_cert(file))?;
        if !summary.is_ca {
            return Err(invalid(
                file,
                "is not a CA certificate (basicConstraints CA:TRUE is missing)".into(),
            ));
        }
        if summary.expired(cert::now()) {
            let hint = if origin.generated {
                "start once with --rotate-root to generate a new root"
            } else {
                "give a current one with --ca-cert/--ca-key"
            };
            return Err(invalid(
                file,
                format!("expired at {}: {hint}", cert::rfc3339(summary.not_after)),
            ));
        }
        let issuer =
            Issuer::from_ca_cert_der(&signing, key).map_err(|e| invalid(file, e.to_string()))?;
        let mut own_roots = Vec::new();
        for r in roots {
            let s = Summary::of(&r).map_err(bad_cert(file))?;
            own_roots.push((r, s));
        }
        let chain_len = chain.len();
        let a = Authority {
            issuer,
            chain,
            signing: summary,
            origin,
            own_roots,
            bundle_dir: paths.bundle.clone(),
            extra: Mutex::new((vec![(PathBuf::new(), 0, None)], vec![])),
        };
        tracing::info!(
            subject = %a.signing.subject,
            serial = %a.signing.serial,
            not_after = %cert::rfc3339(a.signing.not_after),
            kind = a.origin.kind,
            intermediates = chain_len,
            "CA signing certificate loaded"
        );
        Ok(a)
    }

    /// The roots proxies trust: the signing CA's own roots and every root in the bundle dir,
    /// deduplicated, without expired ones.
    pub fn trust_bundle(&self) -> Bundle {
        let now = cert::now();
        let mut extra = self.extra.lock().unwrap_or_else(|p| p.into_inner());
        let seen = fingerprint(&self.bundle_dir);
        if seen != extra.0 {
            extra.1 = read_bundle_dir(&self.bundle_dir);
            extra.0 = seen;
        }
        let mut out: Bundle = Vec::new();
        for (der, s) in self.own_roots.iter().chain(extra.1.iter()) {
            if s.expired(now) || out.iter().any(|(d, _)| d == der) {
                continue;
            }
            out.push((der.clone(), s.clone()));
        }
        out
    }

    /// The intermediates served after a workload certificate.
    pub fn chain(&self) -> &[CertificateDer<'static>] {
        &self.chain
    }

    /// Builds and signs a workload certificate for `id`, issued to `pod` (its subject's common
    /// name, which discovery reads back). Only the public key comes from the request;
    /// everything else is the CA's.
    pub fn sign(
        &self,
        key: &SubjectPublicKeyInfo,
        id: &SpiffeId,
        pod: &str,
        ttl: Duration,
    ) -> Result<CertificateDer<'static>, rcgen::Error> {
        let mut p = self.params(ttl);
        p.distinguished_name = DistinguishedName::new();
        if !pod.is_empty() {
            p.distinguished_name.push(DnType::CommonName, pod);
        }
        p.subject_alt_names = vec![SanType::URI(id.to_string().try_into()?)];
        p.extended_key_usages = vec![
            ExtendedKeyUsagePurpose::ServerAuth,
            ExtendedKeyUsagePurpose::ClientAuth,
        ];
        Ok(p.signed_by(key, &self.issuer)?.der().clone())
    }

    /// The control plane's own serving certificate: DNS name `name`, server use only.
    pub fn sign_serving(
        &self,
        key: &KeyPair,
        name: &str,
        ttl: Duration,
    ) -> Result<CertificateDer<'static>, rcgen::Error> {
        let mut p = self.params(ttl);
        p.distinguished_name = DistinguishedName::new();
        p.distinguished_name.push(DnType::CommonName, name);
        p.subject_alt_names = vec![SanType::DnsName(name.try_into()?)];
        p.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        Ok(p.signed_by(key, &self.issuer)?.der().clone())
    }

    /// What every leaf shares: no CA, a random serial, back-dated, never past the issuer.
    fn params(&self, ttl: Duration) -> CertificateParams {
        let now = time::OffsetDateTime::now_utc();
        let mut p = CertificateParams::default();
        p.is_ca = IsCa::ExplicitNoCa;
        p.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        p.serial_number = Some(random_serial());
        p.not_before = now - BACKDATE;
        // Never outlive the issuer: the chain would stop verifying first.
        let issuer_end =
            time::OffsetDateTime::from_unix_timestamp(self.signing.not_after).unwrap_or(now + ttl);
        p.not_after = (now + ttl).min(issuer_end);
        p.use_authority_key_identifier_extension = true;
        p
    }
}

/// 128 random bits, positive (the top bit clear) and never zero.
pub(super) fn random_serial() -> SerialNumber {
    use ring::rand::SecureRandom;
    let mut b = [0u8; 16];
    // The system RNG does not fail on Linux; a zero serial would still be valid if it did.
    let _ = ring::rand::SystemRandom::new().fill(&mut b);
    b[0] &= 0x7f;
    if b[0] == 0 {
        b[0] = 1;
    }
    SerialNumber::from_slice(&b)
}

/// True when `issuer` signed `cert`.
fn issued_by(cert: &[u8], issuer: &[u8]) -> bool {
    let (Ok((_, c)), Ok((_, i))) = (
        X509Certificate::from_der(cert),
        X509Certificate::from_der(issuer),
    ) else {
        return false;
    };
    c.issuer() == i.subject() && c.verify_signature(Some(i.public_key())).is_ok()
}
