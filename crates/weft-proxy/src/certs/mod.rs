//! The workload certificate: a [`Source`] gets it from the control plane's CA and rotates it.
//!
//! The proxy generates its own key (ECDSA P-256; the private key never leaves the process),
//! sends a CSR whose only URI SAN is its SPIFFE ID (from the proxy config the control plane
//! serves) over the control-plane channel with the bootstrap token of
//! `--bootstrap-token-file`, and checks what comes back: the key matches, the SAN is exactly
//! the identity, and the chain verifies against the returned trust bundle. It renews at half
//! of the lifetime the certificate had left on arrival (12h for the default 24h), with a new
//! key and CSR each time, and retries failures with backoff while keeping the certificate it
//! holds. A rotation swaps what [`Source::certified_key`] returns: connections already open
//! keep the certificate they were made with, new handshakes get the new one.
//!
//! The mTLS tunnel's configs ([`crate::tunnel::tls`]) take a `Source` as their credentials:
//! [`Source::certified_key`] and [`Source::trust_bundle`]; readiness waits on
//! [`Source::ready`]. `GET /certs` on the proxy admin shows [`CertInfo`]; [`describe`] renders
//! it for people.

mod client;
mod describe;
mod key;
mod metrics;
mod rotate;
#[cfg(test)]
mod tests;

use std::sync::{Arc, Mutex};

use rustls::sign::CertifiedKey;
use rustls_pki_types::CertificateDer;
use serde::Serialize;
use tokio::sync::watch;

pub use client::{Config, GrpcIssuer, Issue, IssueError, Issued};
pub use describe::{CertDetail, date, describe, details, time_left};
pub use key::Error;
pub use metrics::Metrics;
pub use rotate::{FetchError, run};

/// What a workload certificate is, for `/certs` and `weft proxy-config secret`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CertInfo {
    pub spiffe_id: String,
    /// Lowercase hex, no separators.
    pub serial: String,
    /// Unix seconds.
    pub not_before: i64,
    pub not_after: i64,
    /// The workload certificate first, then the intermediates; one PEM block each.
    pub chain_pem: Vec<String>,
    /// The trusted roots, one PEM block each.
    pub bundle_pem: Vec<String>,
}

/// A certificate with its key, the roots to trust, and what to show about them.
#[derive(Debug)]
struct Held {
    key: Arc<CertifiedKey>,
    /// `info.spiffe_id`, shared: read for every pooled connection.
    identity: Arc<str>,
    bundle: Arc<Vec<CertificateDer<'static>>>,
    info: CertInfo,
}

/// The proxy's workload certificate, current at every call.
#[derive(Debug)]
pub struct Source {
    held: watch::Sender<Option<Arc<Held>>>,
    info: watch::Sender<Option<CertInfo>>,
    ready: watch::Sender<bool>,
    last_error: Mutex<Option<String>>,
    metrics: Metrics,
}

impl Source {
    /// An empty source; [`run`] fills and rotates it.
    pub fn new() -> Arc<Source> {
        Source::with_metrics(Metrics::default())
    }

    /// An empty source that counts renewals and shows the expiry in `metrics`.
    pub fn with_metrics(metrics: Metrics) -> Arc<Source> {
        Arc::new(Source {
            held: watch::Sender::new(None),
            info: watch::Sender::new(None),
            ready: watch::Sender::new(false),
            last_error: Mutex::new(None),
            metrics,
        })
    }

    /// A source that always holds this certificate (tests).
    pub fn from_static(
        key: Arc<CertifiedKey>,
        bundle: Vec<CertificateDer<'static>>,
        info: CertInfo,
    ) -> Arc<Source> {
        let s = Source::new();
        s.install(key, bundle, info);
        s
    }

    /// The certificate and key for a new handshake; None before the first certificate.
    pub fn certified_key(&self) -> Option<Arc<CertifiedKey>> {
        self.held.borrow().as_ref().map(|h| h.key.clone())
    }

    /// The roots that peers' certificates must chain to; empty before the first certificate.
    pub fn trust_bundle(&self) -> Arc<Vec<CertificateDer<'static>>> {
        self.held
            .borrow()
            .as_ref()
            .map_or_else(Arc::default, |h| h.bundle.clone())
    }

    /// True once a certificate is held.
    pub fn ready(&self) -> watch::Receiver<bool> {
        self.ready.subscribe()
    }

    pub fn info(&self) -> Option<CertInfo> {
        self.held.borrow().as_ref().map(|h| h.info.clone())
    }

    /// Every certificate change (first certificate, rotations), as its [`CertInfo`].
    pub fn subscribe(&self) -> watch::Receiver<Option<CertInfo>> {
        self.info.subscribe()
    }

    /// Why the last attempt to get a certificate failed, if it did.
    pub fn last_error(&self) -> Option<String> {
        self.last_error
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    fn install(
        &self,
        key: Arc<CertifiedKey>,
        bundle: Vec<CertificateDer<'static>>,
        info: CertInfo,
    ) {
        self.held.send_replace(Some(Arc::new(Held {
            key,
            identity: Arc::from(info.spiffe_id.as_str()),
            bundle: Arc::new(bundle),
            info: info.clone(),
        })));
        *self.last_error.lock().unwrap_or_else(|p| p.into_inner()) = None;
        self.metrics.holds(info.not_after);
        self.info.send_replace(Some(info));
        self.ready.send_replace(true);
    }

    pub(crate) fn fail(&self, error: &dyn std::error::Error) {
        let error = error.to_string();
        *self.last_error.lock().unwrap_or_else(|p| p.into_inner()) = Some(error);
    }

    /// None when a certificate is held; else why not, for readiness.
    pub fn not_ready_reason(&self) -> Option<String> {
        if *self.ready.borrow() {
            return None;
        }
        Some(match self.last_error() {
            Some(e) => format!("certificate not issued: {e}"),
            None => "certificate not issued: waiting for the proxy's identity and the CA".into(),
        })
    }
}

impl crate::tunnel::Credentials for Source {
    fn certified_key(&self) -> Option<Arc<CertifiedKey>> {
        Source::certified_key(self)
    }

    fn trust_bundle(&self) -> Arc<Vec<CertificateDer<'static>>> {
        Source::trust_bundle(self)
    }

    fn identity(&self) -> Option<Arc<str>> {
        self.held.borrow().as_ref().map(|h| h.identity.clone())
    }
}
