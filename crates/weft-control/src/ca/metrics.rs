//! CA metrics, registered under `weft_ca_`:
//!
//! - `weft_ca_certificates_issued_total` — workload certificates issued
//! - `weft_ca_requests_refused_total{reason}` — refused requests, by [`Reason`]
//! - `weft_ca_signing_cert_not_after_seconds` — when the signing CA certificate expires

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

/// Why a certificate request was refused (the `reason` label).
#[derive(Debug, Clone, Copy, Hash, PartialEq, Eq)]
pub enum Reason {
    /// No `authorization: Bearer` metadata: `no_credential`.
    NoCredential,
    /// A credential the authenticator does not know: `unknown_credential`.
    UnknownCredential,
    /// The control plane has no bootstrap credentials configured: `not_configured`.
    NotConfigured,
    /// The CSR does not parse or its signature is wrong: `bad_csr`.
    BadCsr,
    /// The CSR asks for an identity the credential does not allow: `wrong_identity`.
    WrongIdentity,
    /// The credential is registered for another pod address than the request came from:
    /// `wrong_address`.
    WrongAddress,
    /// A pod's certificate asked for by a credential that is not the node proxy of the pod's
    /// node: `wrong_node`.
    WrongNode,
    /// The CA failed to sign: `internal`.
    Internal,
}

impl Reason {
    pub const ALL: [Reason; 8] = [
        Reason::NoCredential,
        Reason::UnknownCredential,
        Reason::NotConfigured,
        Reason::BadCsr,
        Reason::WrongIdentity,
        Reason::WrongAddress,
        Reason::WrongNode,
        Reason::Internal,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Reason::NoCredential => "no_credential",
            Reason::UnknownCredential => "unknown_credential",
            Reason::NotConfigured => "not_configured",
            Reason::BadCsr => "bad_csr",
            Reason::WrongAddress => "wrong_address",
            Reason::WrongIdentity => "wrong_identity",
            Reason::WrongNode => "wrong_node",
            Reason::Internal => "internal",
        }
    }
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ReasonLabel {
    reason: String,
}

#[derive(Debug, Clone, Default)]
pub struct Metrics {
    issued: Counter,
    refused: Family<ReasonLabel, Counter>,
    pub signing_not_after: Gauge,
    /// Workload certificates past three quarters of their life without a renewal.
    pub overdue: Gauge,
}

impl Metrics {
    /// Registers into `registry` (whose prefix the caller chooses, `weft_ca`).
    pub fn register(registry: &mut Registry) -> Metrics {
        let m = Metrics::default();
        registry.register(
            "certificates_issued",
            "Workload certificates issued",
            m.issued.clone(),
        );
        registry.register(
            "requests_refused",
            "Certificate requests refused, by reason",
            m.refused.clone(),
        );
        registry.register(
            "signing_cert_not_after_seconds",
            "Expiry of the signing CA certificate, Unix seconds",
            m.signing_not_after.clone(),
        );
        registry.register(
            "certificates_renewal_overdue",
            "Workload certificates past 3/4 of their lifetime that their proxy has not renewed (proxies renew at 1/2)",
            m.overdue.clone(),
        );
        // Every reason shows from the start, at 0, so rates and alerts need no special case.
        for reason in Reason::ALL {
            let _ = m.refused.get_or_create(&ReasonLabel {
                reason: reason.as_str().into(),
            });
        }
        m
    }

    pub fn issued(&self) {
        self.issued.inc();
    }

    pub fn refused(&self, reason: Reason) {
        self.refused
            .get_or_create(&ReasonLabel {
                reason: reason.as_str().into(),
            })
            .inc();
    }
}
