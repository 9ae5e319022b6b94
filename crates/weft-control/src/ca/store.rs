//! The CA's files: the state-dir layout, generating and rotating the root under a lock, and
//! reading certificates, keys and the bundle directory.

use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, IsCa, KeyPair, KeyUsagePurpose,
};
use rustls_pki_types::CertificateDer;
use x509_parser::prelude::{FromDer, X509Certificate};

use super::Error;
use super::authority::{BACKDATE, Bundle, random_serial};
use super::cert::{self, Summary};

/// Lifetime of a generated root.
pub const ROOT_LIFETIME: Duration = Duration::from_secs(10 * 365 * 24 * 3600);

/// Where the CA keeps its files under the state dir.
#[derive(Debug, Clone)]
pub struct Paths {
    pub dir: PathBuf,
    pub root_cert: PathBuf,
    pub root_key: PathBuf,
    pub bundle: PathBuf,
}

impl Paths {
    pub fn new(state_dir: &Path) -> Paths {
        let dir = state_dir.join("ca");
        Paths {
            root_cert: dir.join("root-cert.pem"),
            root_key: dir.join("root-key.pem"),
            bundle: dir.join("bundle"),
            dir,
        }
    }
}

/// A directory's files with their sizes and modification times.
pub type Fingerprint = Vec<(PathBuf, u64, Option<SystemTime>)>;

/// Moves the current generated root into the bundle dir (still trusted until it expires or is
/// removed) and generates a new one that signs from now on. The caller holds [`lock`].
pub(super) fn rotate(paths: &Paths, trust_domain: &str) -> Result<Summary, Error> {
    mkdir(&paths.dir)?;
    mkdir(&paths.bundle)?;
    if paths.root_cert.exists() {
        let text = read(&paths.root_cert)?;
        let old = cert::parse_pem(&text).map_err(bad_cert(&paths.root_cert))?;
        let s = Summary::of(&old[0]).map_err(bad_cert(&paths.root_cert))?;
        let kept = paths.bundle.join(format!("root-{}.pem", s.serial));
        write_file(&kept, cert::to_pem(&old[0]).as_bytes(), 0o644)?;
        tracing::warn!(old = %s.serial, kept = %kept.display(), not_after = %cert::rfc3339(s.not_after), "rotating the mesh root: the old root stays trusted until it expires or its file is removed");
    }
    let (new, _) = generate_root(paths, trust_domain)?;
    tracing::warn!(new = %new.serial, subject = %new.subject, "new mesh root generated; it signs every certificate from now on");
    Ok(new)
}

/// Generates a root key and certificate and writes them (key mode 0600).
pub(super) fn generate_root(
    paths: &Paths,
    trust_domain: &str,
) -> Result<(Summary, KeyPair), Error> {
    let key = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256)?;
    let now = time::OffsetDateTime::now_utc();
    let mut p = CertificateParams::default();
    let mut dn = DistinguishedName::new();
    dn.push(DnType::OrganizationName, "weft");
    dn.push(DnType::CommonName, format!("weft root CA {trust_domain}"));
    p.distinguished_name = dn;
    p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    p.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    p.serial_number = Some(random_serial());
    p.not_before = now - BACKDATE;
    p.not_after = now + ROOT_LIFETIME;
    let cert = p.self_signed(&key)?;
    // Key first: a crash in between leaves a key without a certificate, which load reports.
    write_file(&paths.root_key, key.serialize_pem().as_bytes(), 0o600)?;
    write_file(&paths.root_cert, cert.pem().as_bytes(), 0o644)?;
    let s = Summary::of(cert.der()).map_err(bad_cert(&paths.root_cert))?;
    Ok((s, key))
}

/// The certificates and the key, checked to belong together.
pub(super) fn read_pair(
    cert_file: &Path,
    key_file: &Path,
) -> Result<(Vec<CertificateDer<'static>>, KeyPair), Error> {
    let certs = cert::parse_pem(&read(cert_file)?).map_err(bad_cert(cert_file))?;
    let key = KeyPair::from_pem(&read(key_file)?)
        .map_err(|e| invalid(key_file, format!("is not a PKCS#8 PEM private key: {e}")))?;
    let (_, x) = X509Certificate::from_der(&certs[0])
        .map_err(|e| invalid(cert_file, format!("not a valid certificate: {e}")))?;
    if x.public_key().subject_public_key.data.as_ref() != key.public_key_raw() {
        return Err(invalid(
            key_file,
            format!(
                "does not hold the key of the certificate in {}",
                cert_file.display()
            ),
        ));
    }
    Ok((certs, key))
}

pub(super) fn read_bundle_dir(dir: &Path) -> Bundle {
    let mut out = Vec::new();
    let Ok(entries) = std::fs::read_dir(dir) else {
        return out;
    };
    let mut files: Vec<PathBuf> = entries
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "pem"))
        .collect();
    files.sort();
    for f in files {
        let certs = match std::fs::read_to_string(&f)
            .map_err(|e| e.to_string())
            .and_then(|t| cert::parse_pem(&t).map_err(|e| e.to_string()))
        {
            Ok(c) => c,
            Err(e) => {
                tracing::warn!(file = %f.display(), "trust bundle: skipping the file: {e}");
                continue;
            }
        };
        for c in certs {
            match Summary::of(&c) {
                Ok(s) if s.self_signed && s.is_ca => {
                    if s.expired(cert::now()) {
                        tracing::warn!(file = %f.display(), serial = %s.serial, "trust bundle: root expired at {}; it is no longer trusted (remove the file)", cert::rfc3339(s.not_after));
                    }
                    out.push((c, s));
                }
                Ok(s) => {
                    tracing::warn!(file = %f.display(), subject = %s.subject, "trust bundle: skipping a certificate that is not a root (only self-signed CA certificates belong here)")
                }
                Err(e) => {
                    tracing::warn!(file = %f.display(), "trust bundle: skipping a certificate: {e}")
                }
            }
        }
    }
    out
}

pub(super) fn fingerprint(dir: &Path) -> Fingerprint {
    let mut out: Vec<_> = std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let m = e.metadata().ok()?;
            Some((e.path(), m.len(), m.modified().ok()))
        })
        .collect();
    out.sort();
    out
}

/// Maps a certificate that cannot be read to the file it came from.
pub(super) fn bad_cert(path: &Path) -> impl FnOnce(cert::Error) -> Error + '_ {
    move |source| Error::Cert {
        path: path.to_path_buf(),
        source,
    }
}

pub(super) fn invalid(path: &Path, message: String) -> Error {
    Error::Invalid {
        path: path.to_path_buf(),
        message,
    }
}

pub(super) fn read(path: &Path) -> Result<String, Error> {
    std::fs::read_to_string(path).map_err(|source| Error::Io {
        path: path.to_path_buf(),
        what: "cannot read",
        source,
    })
}

pub(super) fn mkdir(dir: &Path) -> Result<(), Error> {
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .map_err(|source| Error::Io {
            path: dir.to_path_buf(),
            what: "cannot create the CA state directory (choose another with --state-dir)",
            source,
        })
}

/// An exclusive lock on `ca/lock`, held until the file is dropped.
pub(super) fn lock(paths: &Paths) -> Result<std::fs::File, Error> {
    let path = paths.dir.join("lock");
    let io = |source| Error::Io {
        path: path.clone(),
        what: "cannot lock",
        source,
    };
    let f = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .mode(0o600)
        .open(&path)
        .map_err(io)?;
    f.lock().map_err(io)?;
    Ok(f)
}

/// Writes through a temporary file and a rename, so a reader never sees half a file.
pub(super) fn write_file(path: &Path, data: &[u8], mode: u32) -> Result<(), Error> {
    let tmp = path.with_extension(format!("pem.{}.tmp", std::process::id()));
    let io = |what, source| Error::Io {
        path: path.to_path_buf(),
        what,
        source,
    };
    let _ = std::fs::remove_file(&tmp);
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .open(&tmp)
        .map_err(|e| io("cannot write", e))?;
    f.write_all(data)
        .and_then(|()| f.sync_all())
        .map_err(|e| io("cannot write", e))?;
    std::fs::rename(&tmp, path).map_err(|e| io("cannot write", e))
}
