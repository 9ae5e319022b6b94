//! The mesh CA: issues workload certificates to proxies (`weft.v1.Certificates/Create`, served
//! on the discovery listener) for the SPIFFE ID their credential allows.
//!
//! # Signing CA
//!
//! By default weft generates a root on first start (ECDSA P-256, CN `weft root CA <trust
//! domain>`, 10 years) and keeps it in the state dir (`--state-dir`, default `/var/lib/weft`):
//!
//! - `ca/root-cert.pem` — the root that signs
//! - `ca/root-key.pem` — its key, mode 0600
//! - `ca/bundle/*.pem` — more roots to trust (previous roots after a rotation)
//! - `ca/lock` — taken while the root is generated or rotated
//!
//! A restart reuses them. Replicas that share the state dir share the root (the first to
//! start generates it, under the lock). Instead, an
//! operator can bring their own with `--ca-cert FILE --ca-key FILE`: a root, or an intermediate
//! (the file may hold the intermediates up to the root) with `--ca-bundle FILE` naming the
//! roots; the chain served to proxies then includes the intermediates.
//!
//! # Trust bundle and root rotation
//!
//! Proxies trust every root in `ca/bundle/*.pem` plus the signing CA's root(s), deduplicated,
//! expired ones dropped; the directory is re-read when it changes. That is the overlap window
//! of a rotation: `weft control --rotate-root` (one start with the flag, then drop it) moves
//! the old root certificate to `ca/bundle/root-<serial>.pem`, generates a new root and signs
//! with it from then on. Proxies pick up the bundle with both roots at their next renewal
//! (half their certificate lifetime, 12h by default); the old root stays trusted until it
//! expires or the operator removes its file, which should wait until every proxy has renewed
//! (`/debug/ca` lists what was issued, and when it expires).
//!
//! # Authentication and checks
//!
//! The credential is the `authorization: Bearer <token>` metadata, checked by an
//! [`auth::Authenticator`] (the [`auth::BootstrapFile`] of `--bootstrap FILE`; without it every
//! request is refused). The CSR's signature must verify and its only URI SAN must be exactly
//! `spiffe://<mesh trust domain>/ns/<ns>/sa/<sa>` of the grant. The CA builds the certificate
//! itself (never copies extensions from the CSR): that SAN, EKU serverAuth+clientAuth, key
//! usage digitalSignature, not a CA, a random 128-bit serial, valid from 60s ago for the
//! requested TTL (capped at `--cert-ttl`, 24h by default, and at the signing CA's expiry).
//!
//! Every refusal is logged at warn with the pod or identity and the reason, counted in
//! `weft_ca_requests_refused_total{reason}` ([`metrics`]) and answered with a gRPC status:
//! UNAUTHENTICATED, FAILED_PRECONDITION, INVALID_ARGUMENT or PERMISSION_DENIED.
//!
//! `GET /debug/ca` on the admin API shows the roots and the recently issued certificates.

pub mod auth;
pub mod authority;
pub mod cert;
pub mod csr;
pub mod expiry;
pub mod metrics;
mod server;
pub mod store;

use std::collections::{BTreeMap, VecDeque};
use std::net::IpAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::{Value, json};
use tokio::sync::watch;
use tonic::Code;
use weft_core::model::Snapshot;
use weft_proto::ca::CreateCertificateResponse;

pub use auth::{Authenticator, Denied, Grant};
pub use authority::Authority;
pub use metrics::{Metrics, Reason};
pub use server::Server;

/// Default lifetime of a workload certificate.
pub const DEFAULT_TTL: Duration = Duration::from_secs(24 * 3600);
/// Issued certificates remembered per identity for `/debug/ca`.
const RECENT: usize = 4;

#[derive(Debug, Clone)]
pub struct Config {
    /// Holds `ca/` (the generated root and the bundle dir).
    pub state_dir: PathBuf,
    /// An operator's signing certificate (root or intermediate, PEM) and its key.
    pub ca_cert: Option<PathBuf>,
    pub ca_key: Option<PathBuf>,
    /// The roots an operator's intermediate leads to.
    pub ca_bundle: Option<PathBuf>,
    /// Replace the generated root at this start (the old one stays trusted).
    pub rotate_root: bool,
    /// Bootstrap credentials (JSON); none: every request is refused.
    pub bootstrap: Option<PathBuf>,
    /// Default and maximum lifetime of a workload certificate.
    pub cert_ttl: Duration,
}

impl Config {
    /// Generated root in `state_dir`, no credentials, default TTL.
    pub fn new(state_dir: impl Into<PathBuf>) -> Config {
        Config {
            state_dir: state_dir.into(),
            ca_cert: None,
            ca_key: None,
            ca_bundle: None,
            rotate_root: false,
            bootstrap: None,
            cert_ttl: DEFAULT_TTL,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{}: {what}: {source}", path.display())]
    Io {
        path: PathBuf,
        what: &'static str,
        source: std::io::Error,
    },
    #[error("{}: {message}", path.display())]
    Invalid { path: PathBuf, message: String },
    #[error("{}: {source}", path.display())]
    Cert { path: PathBuf, source: cert::Error },
    #[error("{0}")]
    Config(String),
    #[error("generating the CA key or certificate failed: {0}")]
    Generate(#[from] rcgen::Error),
}

/// A request the CA refused: what to count, what to answer, what to log.
#[derive(Debug, Clone)]
pub struct Refusal {
    pub reason: Reason,
    pub code: Code,
    pub message: String,
    /// The pod and/or identity involved, for the log.
    pub who: String,
}

/// One issued certificate, for `/debug/ca`.
#[derive(Debug, Clone)]
struct Record {
    serial: String,
    pod: String,
    issued_at: i64,
    not_after: i64,
}

#[derive(Debug)]
pub struct Ca {
    authority: Authority,
    auth: Arc<dyn Authenticator>,
    bootstrap: Option<Arc<auth::BootstrapFile>>,
    /// The snapshot in force, for the mesh's trust domain.
    snapshot: watch::Receiver<Arc<Snapshot>>,
    metrics: Metrics,
    ttl: Duration,
    issued: Mutex<BTreeMap<String, VecDeque<Record>>>,
}

impl Ca {
    /// Loads (or generates) the signing CA and the bootstrap credentials. The trust domain is
    /// the one of the snapshot in force; `metrics` are where the CA counts what it does.
    pub fn new(
        cfg: &Config,
        snapshot: watch::Receiver<Arc<Snapshot>>,
        metrics: Metrics,
    ) -> Result<Arc<Ca>, Error> {
        if cfg.cert_ttl < Duration::from_secs(1) {
            return Err(Error::Config("--cert-ttl must be at least 1s".into()));
        }
        let authority = Authority::load(cfg, &snapshot.borrow().mesh.trust_domain)?;
        let bootstrap = match &cfg.bootstrap {
            Some(path) => Some(auth::BootstrapFile::load(path).map_err(Error::Config)?),
            None => {
                tracing::warn!(
                    "no --bootstrap credentials: the CA refuses every certificate request"
                );
                None
            }
        };
        let auth: Arc<dyn Authenticator> = match &bootstrap {
            Some(b) => b.clone(),
            None => Arc::new(auth::NoCredentials),
        };
        metrics.signing_not_after.set(authority.signing.not_after);
        Ok(Arc::new(Ca {
            authority,
            auth,
            bootstrap,
            snapshot,
            metrics,
            ttl: cfg.cert_ttl,
            issued: Mutex::new(BTreeMap::new()),
        }))
    }

    /// The trust domain of the Mesh configuration in force.
    pub fn trust_domain(&self) -> String {
        self.snapshot.borrow().mesh.trust_domain.clone()
    }

    pub fn metrics(&self) -> &Metrics {
        &self.metrics
    }

    /// The bootstrap file, to [`auth::BootstrapFile::watch`].
    pub fn bootstrap(&self) -> Option<Arc<auth::BootstrapFile>> {
        self.bootstrap.clone()
    }

    /// The registration of `pod` (`NAMESPACE/POD`) when `node` (an authenticated credential)
    /// is the node proxy of the node that pod is registered on: the node proxy may then hold
    /// the pod's own certificate. Otherwise why not.
    fn for_node(&self, node: &Grant, pod: &str) -> Result<Grant, String> {
        if node.role != crate::discovery::admit::NODE_ROLE {
            return Err(format!(
                "only a node proxy may ask for another pod's certificate ({pod:?}); this                  credential is registered with role {:?}",
                node.role
            ));
        }
        let Some((ns, name)) = pod.split_once('/') else {
            return Err(format!("pod {pod:?}: expected NAMESPACE/POD"));
        };
        let reg = self
            .auth
            .registered(ns, name)
            .ok_or_else(|| format!("pod {pod} has no registration in this control plane"))?;
        if reg.node != node.pod {
            let on = match reg.node.as_str() {
                "" => "no node".to_string(),
                n => format!("node {n:?}"),
            };
            return Err(format!(
                "pod {pod} is registered on {on}, not on node {:?} whose proxy asked",
                node.pod
            ));
        }
        Ok(reg)
    }

    /// The registration of pod `pod` in `namespace` (its bootstrap credential).
    pub fn registered(&self, namespace: &str, pod: &str) -> Option<Grant> {
        self.auth.registered(namespace, pod)
    }

    pub fn authority(&self) -> &Authority {
        &self.authority
    }

    /// The trust bundle, PEM, one root per entry.
    pub fn trust_bundle_pem(&self) -> Vec<String> {
        self.authority
            .trust_bundle()
            .iter()
            .map(|(der, _)| cert::to_pem(der))
            .collect()
    }

    /// Authenticates, checks and signs one request that came from address `from`; `pod`
    /// (`NAMESPACE/POD`), when not empty, is a node proxy asking for one of its node's pods.
    pub fn create(
        &self,
        bearer: Option<&str>,
        csr_pem: &str,
        ttl_seconds: u64,
        from: Option<IpAddr>,
        pod: &str,
    ) -> Result<CreateCertificateResponse, Refusal> {
        let refuse = |reason, code, who: &str, message: String| Refusal {
            reason,
            code,
            message,
            who: who.to_string(),
        };
        let unauthenticated = |reason, message: String| {
            let code = match reason {
                Reason::NotConfigured => Code::FailedPrecondition,
                _ => Code::Unauthenticated,
            };
            refuse(reason, code, "-", message)
        };
        if !self.auth.configured() {
            return Err(unauthenticated(
                Reason::NotConfigured,
                Denied::NotConfigured.to_string(),
            ));
        }
        let Some(token) = bearer else {
            return Err(unauthenticated(
                Reason::NoCredential,
                "no credential: send `authorization: Bearer <token>` metadata (weft proxy reads \
                 the token from --bootstrap-token-file)"
                    .into(),
            ));
        };
        let grant = self.auth.authenticate(token).map_err(|d| {
            let reason = match d {
                Denied::NotConfigured => Reason::NotConfigured,
                _ => Reason::UnknownCredential,
            };
            unauthenticated(reason, d.to_string())
        })?;
        let allowed = grant.identity(&self.trust_domain());
        let who = format!("pod {:?} ({allowed})", grant.pod);
        // A credential registered for a pod address works only from there: a stolen token is
        // useless elsewhere.
        let from = from.map(|a| a.to_canonical());
        if let (Some(registered), Some(from)) = (grant.address, from)
            && registered != from
        {
            return Err(refuse(
                Reason::WrongAddress,
                Code::PermissionDenied,
                &who,
                format!(
                    "the credential of pod {:?} is registered for address {registered}, but this \
                     request came from {from}",
                    grant.pod
                ),
            ));
        }
        let grant = match pod {
            "" => grant,
            pod => self
                .for_node(&grant, pod)
                .map_err(|m| refuse(Reason::WrongNode, Code::PermissionDenied, &who, m))?,
        };
        let allowed = grant.identity(&self.trust_domain());
        let who = format!("pod {:?} ({allowed})", grant.pod);
        let csr = csr::parse(csr_pem).map_err(|m| {
            refuse(
                Reason::BadCsr,
                Code::InvalidArgument,
                &who,
                format!("bad CSR: {m}"),
            )
        })?;
        if csr.uri != allowed.to_string() {
            return Err(refuse(
                Reason::WrongIdentity,
                Code::PermissionDenied,
                &who,
                format!(
                    "the CSR asks for {:?}, but this credential allows only {allowed}",
                    csr.uri
                ),
            ));
        }
        let ttl = match ttl_seconds {
            0 => self.ttl,
            s => Duration::from_secs(s).min(self.ttl),
        };
        let leaf = self
            .authority
            .sign(&csr.key, &allowed, &grant.pod, ttl)
            .map_err(|e| {
                refuse(
                    Reason::Internal,
                    Code::Internal,
                    &who,
                    format!("signing failed: {e}"),
                )
            })?;
        let summary = cert::Summary::of(&leaf).map_err(|m| {
            refuse(
                Reason::Internal,
                Code::Internal,
                &who,
                format!("signing failed: {m}"),
            )
        })?;
        self.remember(&allowed.to_string(), &grant.pod, &summary);
        tracing::info!(identity = %allowed, pod = %grant.pod, serial = %summary.serial, not_after = %cert::rfc3339(summary.not_after), "certificate issued");
        Ok(CreateCertificateResponse {
            cert_chain_pem: std::iter::once(&leaf)
                .chain(self.authority.chain())
                .map(|c| cert::to_pem(c))
                .collect(),
            trust_bundle_pem: self.trust_bundle_pem(),
        })
    }

    fn remember(&self, identity: &str, pod: &str, s: &cert::Summary) {
        let now = cert::now();
        let mut issued = self.issued.lock().unwrap_or_else(|p| p.into_inner());
        issued.retain(|_, list| {
            list.retain(|r| r.not_after > now);
            !list.is_empty()
        });
        let list = issued.entry(identity.to_string()).or_default();
        list.push_front(Record {
            serial: s.serial.clone(),
            pod: pod.to_string(),
            issued_at: now,
            not_after: s.not_after,
        });
        list.truncate(RECENT);
    }

    /// The latest certificate of every pod that is past 3/4 of its lifetime: its proxy, which
    /// renews at half-life, has not managed to (or is gone).
    pub fn overdue(&self) -> Vec<expiry::Overdue> {
        let issued = self.issued.lock().unwrap_or_else(|p| p.into_inner());
        let latest = issued.iter().flat_map(|(id, list)| {
            // Newest first: the first record of each pod is its current certificate.
            let mut seen = std::collections::BTreeSet::new();
            list.iter()
                .filter(move |r| seen.insert(r.pod.clone()))
                .map(move |r| {
                    (
                        id.as_str(),
                        r.pod.as_str(),
                        r.serial.as_str(),
                        r.issued_at,
                        r.not_after,
                    )
                })
        });
        expiry::overdue(latest, cert::now())
    }

    /// `GET /debug/ca`: the signing CA, the trusted roots, and recent certificates per identity.
    pub fn debug(&self) -> Value {
        // Before taking the lock below, which overdue() takes too.
        let overdue = self.overdue();
        let now = cert::now();
        let time = |t: i64| json!({"unix": t, "text": cert::rfc3339(t), "inSeconds": t - now});
        let s = &self.authority.signing;
        let roots: Vec<Value> = self
            .authority
            .trust_bundle()
            .iter()
            .map(|(_, r)| {
                json!({
                    "subject": r.subject,
                    "serial": r.serial,
                    "notBefore": time(r.not_before),
                    "notAfter": time(r.not_after),
                    "signing": r.serial == s.serial || r.subject == s.issuer,
                })
            })
            .collect();
        let issued = self.issued.lock().unwrap_or_else(|p| p.into_inner());
        let issued: serde_json::Map<String, Value> = issued
            .iter()
            .map(|(id, list)| {
                let list: Vec<Value> = list
                    .iter()
                    .filter(|r| r.not_after > now)
                    .map(|r| {
                        json!({
                            "serial": r.serial,
                            "pod": r.pod,
                            "issuedAt": time(r.issued_at),
                            "notAfter": time(r.not_after),
                        })
                    })
                    .collect();
                (id.clone(), Value::Array(list))
            })
            .collect();
        json!({
            "trustDomain": self.trust_domain(),
            "signing": {
                "kind": self.authority.origin.kind,
                "file": self.authority.origin.cert_file,
                "generated": self.authority.origin.generated,
                "subject": s.subject,
                "issuer": s.issuer,
                "serial": s.serial,
                "notAfter": time(s.not_after),
            },
            "roots": roots,
            "bootstrap": self.bootstrap.as_ref().map(|b| json!({"file": b.path(), "credentials": b.len()})),
            "certTtlSeconds": self.ttl.as_secs(),
            "issued": issued,
            "renewalOverdue": overdue,
        })
    }
}
