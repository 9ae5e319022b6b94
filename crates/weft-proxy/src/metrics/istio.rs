//! Istio's standard metrics, so dashboards and alerts built for Istio work unchanged: each
//! [`Record`] becomes one sample of `istio_requests_total`, `istio_request_duration_milliseconds`,
//! `istio_request_bytes` and `istio_response_bytes` (HTTP and gRPC), or of the
//! `istio_tcp_*` families (opaque TCP). Every series carries all of [`Labels`]; a value not
//! known is `unknown`. docs/metrics.md tells how each is derived.
//!
//! Cardinality stays bounded by the mesh's shape: labels name workloads, namespaces, Services,
//! identities, app/version labels, status codes and flags, never a path, a pod, an address or
//! a request ID.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;
use weft_core::model::ProxyConfig;

use super::flags;
use crate::record::Record;
use crate::tunnel::peer::Metadata;

/// Istio's default buckets for durations, in milliseconds.
pub const DURATION_BUCKETS: [f64; 19] = [
    0.5, 1.0, 5.0, 10.0, 25.0, 50.0, 100.0, 250.0, 500.0, 1000.0, 2500.0, 5000.0, 10000.0, 30000.0,
    60000.0, 300000.0, 600000.0, 1800000.0, 3600000.0,
];

/// Istio's default buckets for sizes, in bytes.
pub const SIZE_BUCKETS: [f64; 9] = [
    1.0,
    10.0,
    100.0,
    1000.0,
    10000.0,
    100000.0,
    1000000.0,
    10000000.0,
    100000000.0,
];

/// A label whose value is not known.
pub const UNKNOWN: &str = "unknown";

/// The labels of every Istio series.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct Labels {
    pub reporter: String,
    pub source_workload: String,
    pub source_workload_namespace: String,
    pub source_principal: String,
    pub source_app: String,
    pub source_version: String,
    pub destination_workload: String,
    pub destination_workload_namespace: String,
    pub destination_principal: String,
    pub destination_app: String,
    pub destination_version: String,
    pub destination_service: String,
    pub destination_service_name: String,
    pub destination_service_namespace: String,
    pub request_protocol: String,
    pub response_code: String,
    pub grpc_response_status: String,
    pub response_flags: String,
    pub connection_security_policy: String,
}

type Histograms = Family<Labels, Histogram, fn() -> Histogram>;

/// The Istio families of one proxy.
#[derive(Debug, Clone)]
pub struct Families {
    requests: Family<Labels, Counter>,
    duration: Histograms,
    request_bytes: Histograms,
    response_bytes: Histograms,
    tcp_sent: Family<Labels, Counter>,
    tcp_received: Family<Labels, Counter>,
    tcp_opened: Family<Labels, Counter>,
    tcp_closed: Family<Labels, Counter>,
}

fn durations() -> Histogram {
    Histogram::new(DURATION_BUCKETS)
}

fn sizes() -> Histogram {
    Histogram::new(SIZE_BUCKETS)
}

impl Families {
    /// Registers the families into `registry`, which must have no prefix (the names are
    /// Istio's, `istio_…`).
    pub fn register(registry: &mut Registry) -> Families {
        let f = Families {
            requests: Family::default(),
            duration: Family::new_with_constructor(durations),
            request_bytes: Family::new_with_constructor(sizes),
            response_bytes: Family::new_with_constructor(sizes),
            tcp_sent: Family::default(),
            tcp_received: Family::default(),
            tcp_opened: Family::default(),
            tcp_closed: Family::default(),
        };
        let counters = [
            (
                "istio_requests",
                "Requests (HTTP and gRPC) the proxy handled",
                &f.requests,
            ),
            (
                "istio_tcp_sent_bytes",
                "Bytes sent to the upstream on TCP connections",
                &f.tcp_sent,
            ),
            (
                "istio_tcp_received_bytes",
                "Bytes received from the upstream on TCP connections",
                &f.tcp_received,
            ),
            (
                "istio_tcp_connections_opened",
                "TCP connections opened (counted once the upstream is reached, or fails)",
                &f.tcp_opened,
            ),
            (
                "istio_tcp_connections_closed",
                "TCP connections closed",
                &f.tcp_closed,
            ),
        ];
        for (name, help, family) in counters {
            registry.register(name, help, family.clone());
        }
        let histograms = [
            (
                "istio_request_duration_milliseconds",
                "Time from the request to its response headers, in milliseconds",
                &f.duration,
            ),
            (
                "istio_request_bytes",
                "Size of request bodies, in bytes",
                &f.request_bytes,
            ),
            (
                "istio_response_bytes",
                "Size of response bodies, in bytes",
                &f.response_bytes,
            ),
        ];
        for (name, help, family) in histograms {
            registry.register(name, help, family.clone());
        }
        f
    }

    /// Counts a finished request or a closed TCP connection.
    pub fn observe(&self, r: &Record, me: Option<&ProxyConfig>) {
        let l = labels(r, me);
        if r.protocol == "TCP" {
            self.tcp_closed.get_or_create(&l).inc();
            self.tcp_sent
                .get_or_create(&l)
                .inc_by(r.bytes_sent.unwrap_or(0));
            self.tcp_received
                .get_or_create(&l)
                .inc_by(r.bytes_received.unwrap_or(0));
            return;
        }
        self.requests.get_or_create(&l).inc();
        self.duration.get_or_create(&l).observe(r.duration_ms);
        let size = |n: Option<u64>| n.unwrap_or(0) as f64;
        self.request_bytes
            .get_or_create(&l)
            .observe(size(r.bytes_sent));
        self.response_bytes
            .get_or_create(&l)
            .observe(size(r.bytes_received));
    }

    /// Counts an opened TCP connection.
    pub fn opened(&self, r: &Record, me: Option<&ProxyConfig>) {
        self.tcp_opened.get_or_create(&labels(r, me)).inc();
    }
}

/// Who reports: `destination` for inbound, `waypoint` at a waypoint, `source` for a sidecar's
/// or node proxy's outbound and for a gateway.
fn reporter(direction: &str) -> &'static str {
    match direction {
        "inbound" => "destination",
        "waypoint" => "waypoint",
        _ => "source",
    }
}

/// The labels of `r`, reported by the proxy of the workload `me`.
pub fn labels(r: &Record, me: Option<&ProxyConfig>) -> Labels {
    let reporter = reporter(r.direction);
    let mtls = r.mtls == Some(true);
    // This proxy's own workload; its principal counts only on an mTLS hop.
    let mine = me.map(|c| Metadata {
        principal: if mtls {
            c.identity.clone()
        } else {
            String::new()
        },
        ..Metadata::of_config(c)
    });
    let (src, dst) = match reporter {
        "destination" => (r.source.as_deref(), mine.as_ref()),
        "waypoint" => (r.source.as_deref(), r.destination.as_deref()),
        _ => (mine.as_ref(), r.destination.as_deref()),
    };
    let field =
        |m: Option<&Metadata>, f: fn(&Metadata) -> &String| known(m.map_or("", |m| f(m).as_str()));
    let (svc_ns, svc_name) = r
        .service
        .as_deref()
        .and_then(|k| k.split_once('/'))
        .unwrap_or(("", ""));
    let fqdn = match (svc_ns, svc_name) {
        ("", _) | (_, "") => UNKNOWN.to_string(),
        (ns, name) => format!("{name}.{ns}.svc.cluster.local"),
    };
    let protocol = match (r.protocol.as_str(), r.grpc) {
        ("TCP", _) => "tcp",
        (_, true) => "grpc",
        _ => "http",
    };
    Labels {
        reporter: reporter.into(),
        source_workload: field(src, |m| &m.workload),
        source_workload_namespace: field(src, |m| &m.namespace),
        source_principal: field(src, |m| &m.principal),
        source_app: field(src, |m| &m.app),
        source_version: field(src, |m| &m.version),
        destination_workload: field(dst, |m| &m.workload),
        destination_workload_namespace: field(dst, |m| &m.namespace),
        destination_principal: field(dst, |m| &m.principal),
        destination_app: field(dst, |m| &m.app),
        destination_version: field(dst, |m| &m.version),
        destination_service: fqdn,
        destination_service_name: known(svc_name),
        destination_service_namespace: known(svc_ns),
        request_protocol: protocol.into(),
        response_code: r.status.unwrap_or(0).to_string(),
        grpc_response_status: grpc_status(r),
        response_flags: flags::of(r),
        connection_security_policy: match r.mtls {
            Some(true) => "mutual_tls",
            Some(false) => "none",
            None => UNKNOWN,
        }
        .into(),
    }
}

fn known(v: &str) -> String {
    if v.is_empty() { UNKNOWN } else { v }.to_string()
}

/// `grpc_response_status`, as Istio sets it: empty for anything but gRPC; for gRPC the
/// `grpc-status` the server sent, else the status its HTTP code maps to (gRPC's table:
/// `UNAVAILABLE` for no response or 502/503/504, …).
fn grpc_status(r: &Record) -> String {
    if !r.grpc {
        return String::new();
    }
    let code = r.grpc_status.unwrap_or(match r.status {
        None | Some(0) => 14,
        Some(400) => 13,
        Some(401) => 16,
        Some(403) => 7,
        Some(404) => 12,
        Some(429 | 502 | 503 | 504) => 14,
        Some(_) => 2,
    });
    code.to_string()
}

#[cfg(test)]
mod tests;
