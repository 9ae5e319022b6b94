//! State every connection of a proxy shares, whatever its role: configuration, metrics and
//! the access log, the upstream pool and connector, the drain, and readiness.

use std::net::IpAddr;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use prometheus_client::registry::Registry;
use tokio::sync::watch;
use weft_core::model::ProxyConfig;
use weft_core::resources::gateway::INGRESS_CLASS;

use crate::access_log::{self, AccessLog};
use crate::certs;
use crate::connect::Connector;
use crate::drain::Drain;
use crate::pool::Pool;
use crate::state::{LookupError, Store};
use crate::tunnel::Credentials;
use crate::xds;

/// Changes the process's log level (`POST /logging?level=`). The error is the logger's own
/// (the process that embeds the proxy owns the logger); the admin API answers with its text.
pub type SetLogLevel =
    Arc<dyn Fn(&str) -> Result<(), Box<dyn std::error::Error + Send + Sync>> + Send + Sync>;

/// A view of what a role holds beyond the shared store, for the admin API: the node proxy's
/// enrolled pods (`GET /pods`). Set once by the role's wiring, so admin knows no role.
pub type View = Arc<dyn Fn() -> serde_json::Value + Send + Sync>;

/// State every connection shares.
pub struct Shared {
    pub store: Arc<Store>,
    /// The config of the workload served: the proxy's own, or (node proxy) one pod's.
    pub proxy: watch::Receiver<Option<Arc<ProxyConfig>>>,
    pub metrics: Arc<crate::metrics::Metrics>,
    /// Every family of this proxy, for `/metrics` ([`Shared::encode_metrics`]); a node
    /// proxy's pods share the node's.
    pub registry: Arc<Registry>,
    /// L4 only (a node proxy): every connection is relayed as TCP, never parsed as HTTP.
    pub l4_only: bool,
    /// The access log's lines waiting for the flusher.
    pub log_buffer: Arc<access_log::Buffer>,
    /// Finished records for `GET /tap`; a node proxy's pods share the node's.
    pub tap: Arc<crate::tap::Hub>,
    /// Opens the proxy's own TCP connections (with its socket mark).
    pub connector: Connector,
    pub pool: Pool,
    pub drain: Drain,
    pub status: watch::Receiver<xds::Status>,
    pub set_log_level: Option<SetLogLevel>,
    pub log_level: Mutex<String>,
    /// Gateway role: the Gateway served (`ns/name`); readiness waits for it.
    pub gateway: Option<String>,
    /// The certificate and bundle the tunnel uses; None: no mTLS (see [`Config::credentials`]).
    pub credentials: Option<Arc<dyn Credentials>>,
    /// The workload certificate fetched with a bootstrap token; readiness waits for it.
    pub certs: Option<Arc<certs::Source>>,
    /// The pod's address: the only destination the tunnel leads to.
    pub identity_ip: Option<IpAddr>,
    /// Node role: its enrolled pods, for `GET /pods`; unset for every other role.
    pub pods: OnceLock<View>,
    /// Exports the spans of sampled requests when the workload has a collector.
    pub trace: crate::trace::Tracer,
    /// The local rate limits' buckets of the Services this proxy enforces them for.
    pub rate_limits: crate::ratelimit::Limiter,
}

impl std::fmt::Debug for Shared {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Shared").finish_non_exhaustive()
    }
}

impl Shared {
    /// The config of the workload served, once the control plane sent it.
    pub fn proxy_config(&self) -> Option<Arc<ProxyConfig>> {
        self.proxy.borrow().clone()
    }

    /// A record for an HTTP request, keeping the request headers the access-log format reads.
    pub fn record(
        &self,
        direction: &'static str,
        parts: &http::request::Parts,
        peer: std::net::SocketAddr,
    ) -> crate::record::Record {
        let mut record = crate::record::Record::for_request(direction, parts, peer);
        if let Some(c) = self.proxy_config() {
            let names = c.settings.access_log_format.request_headers();
            if !names.is_empty() {
                record.request_headers = crate::record::Record::keep_headers(names, &parts.headers);
            }
        }
        record
    }

    pub fn log(&self) -> AccessLog {
        let me = self.proxy_config();
        AccessLog {
            enabled: me.as_ref().is_none_or(|p| p.settings.access_log),
            metrics: self.metrics.clone(),
            buffer: self.log_buffer.clone(),
            me,
            tap: self.tap.clone(),
        }
    }

    /// Every metric in `format`, or why there are none: the proxy's settings turn metrics off
    /// (`weft.dev/metrics: "false"`). Counting goes on either way.
    pub fn encode_metrics(&self, format: crate::metrics::Format) -> Result<String, &'static str> {
        let on = self.proxy_config().is_none_or(|p| p.settings.metrics);
        match on {
            true => Ok(self.metrics.render(&self.registry, format)),
            false => Err("metrics are off for this workload (weft.dev/metrics: \"false\")"),
        }
    }

    /// Completes an HTTP request: the error (if any) becomes its response, and the record gets
    /// status and duration, and is logged and counted when the response body ends
    /// ([`crate::tally`]).
    pub fn finish(
        &self,
        mut record: crate::record::Record,
        start: std::time::Instant,
        result: Result<http::Response<crate::body::Body>, crate::error::ProxyError>,
    ) -> http::Response<crate::body::Body> {
        let res = match result {
            Ok(r) => r,
            Err(e) => {
                record.error = Some(e.stage());
                let mut res = e.into_response();
                // A denial names its policy and rule, so the caller's proxy logs them too.
                let policy = record
                    .policy_header()
                    .filter(|_| record.error == Some("denied"));
                if let Some(v) = policy.and_then(|p| http::HeaderValue::from_str(&p).ok()) {
                    res.headers_mut()
                        .insert(crate::inbound::DENIED_BY_HEADER, v);
                }
                res
            }
        };
        record.status = Some(res.status().as_u16());
        record.finish(start.elapsed());
        // The span ends at the response's headers; the record is written when its body ends.
        self.trace.end(&record, || self.proxy_config());
        let (parts, body) = res.into_parts();
        let log = self.log();
        if let Some(c) = &log.me {
            let names = c.settings.access_log_format.response_headers();
            if !names.is_empty() {
                record.response_headers =
                    crate::record::Record::keep_headers(names, &parts.headers);
            }
        }
        let tally = crate::tally::Tally::new(body, record, &parts.headers, log);
        http::Response::from_parts(parts, http_body_util::BodyExt::boxed(tally))
    }

    /// None when ready; else why not.
    pub fn not_ready_reason(&self) -> Option<String> {
        if self.drain.is_draining() {
            return Some("draining".into());
        }
        let s = self.status.borrow();
        if !s.configured {
            return Some(match &s.last_error {
                Some(e) => format!("waiting for first config from the control plane: {e}"),
                None => "waiting for first config from the control plane".into(),
            });
        }
        drop(s);
        if let Some(why) = self.certs.as_ref().and_then(|c| c.not_ready_reason()) {
            return Some(why);
        }
        let gateway = self.gateway.as_ref()?;
        match self.store.gateway_known(gateway) {
            Some(Ok(())) => None,
            None => Some(format!(
                "waiting for gateway {gateway} from the control plane"
            )),
            Some(Err(LookupError::Missing)) => Some(format!(
                "gateway {gateway} does not exist in the control plane's configuration \
                 (or its gatewayClassName is not {INGRESS_CLASS})"
            )),
            Some(Err(LookupError::Rejected(why))) => Some(format!(
                "the config of gateway {gateway} was rejected: {why}"
            )),
            Some(Err(LookupError::Timeout)) => Some(format!("waiting for gateway {gateway}")),
        }
    }

    /// Waits until ready (see [`Shared::not_ready_reason`]), or `timeout`.
    pub async fn wait_ready(&self, timeout: Duration) -> bool {
        let mut status = self.status.clone();
        let mut updates = self.store.updates();
        let mut cert = self.certs.as_ref().map(|c| c.ready());
        let wait = async {
            loop {
                if self.not_ready_reason().is_none() {
                    return true;
                }
                tokio::select! {
                    r = status.changed() => if r.is_err() { return false },
                    r = updates.changed() => if r.is_err() { return false },
                    r = async { match cert.as_mut() { Some(c) => c.changed().await, None => std::future::pending().await } } => {
                        if r.is_err() { return false }
                    }
                }
            }
        };
        tokio::time::timeout(timeout, wait).await.unwrap_or(false)
    }
}
