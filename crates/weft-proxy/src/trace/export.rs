//! Export of sampled spans over OTLP/gRPC, off the data path: a request only offers its span
//! to a bounded queue ([`QUEUE`] spans; when it is full the span is dropped and counted), and
//! one task per collector sends them in batches (up to [`BATCH`] spans, or what came within
//! [`FLUSH_EVERY`] of the first). A batch the collector does not take is dropped and counted,
//! and the next waits a backoff ([`BACKOFF_MIN`] doubling to [`BACKOFF_MAX`]); the gRPC channel
//! reconnects by itself. Connections are the proxy's own (its socket mark, so they are never
//! captured). The task ends, after sending what is queued, when the proxy drops its sender.
//!
//! Metrics (registered under `trace`):
//! - `weft_trace_spans_exported_total` — spans the collector accepted
//! - `weft_trace_spans_dropped_total{reason}` — `queue_full`, `export_failed` or `rejected`
//!   (the collector's partial success)

use std::time::Duration;

use hyper_util::rt::TokioIo;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::registry::Registry;
use tokio::sync::mpsc;
use tonic::transport::{Channel, Endpoint};

use super::otlp;
use crate::connect::Connector;

/// Spans waiting for the exporter, at most.
pub const QUEUE: usize = 2048;
/// Spans sent in one request, at most.
pub const BATCH: usize = 512;
/// How long the first span of a batch waits for others.
pub const FLUSH_EVERY: Duration = Duration::from_secs(1);
pub const BACKOFF_MIN: Duration = Duration::from_millis(500);
pub const BACKOFF_MAX: Duration = Duration::from_secs(30);
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
const EXPORT_TIMEOUT: Duration = Duration::from_secs(10);

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct DropLabels {
    reason: String,
}

/// The exporter's counters.
#[derive(Debug, Clone, Default)]
pub struct Metrics {
    exported: Counter,
    dropped: Family<DropLabels, Counter>,
}

impl Metrics {
    /// Registers the families into `registry` (give it a `trace` sub-registry).
    pub fn register(registry: &mut Registry) -> Metrics {
        let m = Metrics::default();
        registry.register(
            "spans_exported",
            "Spans accepted by the OTLP collector",
            m.exported.clone(),
        );
        registry.register(
            "spans_dropped",
            "Sampled spans not exported: the queue was full, the export failed, or the collector rejected them",
            m.dropped.clone(),
        );
        m
    }

    pub(super) fn dropped(&self, reason: &str, n: u64) {
        let labels = DropLabels {
            reason: reason.to_string(),
        };
        self.dropped.get_or_create(&labels).inc_by(n);
    }
}

/// Why an exporter could not be started.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("invalid tracing collector address {address:?} (expected host:port): {source}")]
    Address {
        address: String,
        source: tonic::transport::Error,
    },
}

/// Starts the task exporting to `collector` (`host:port` or `http://host:port`) with
/// resource `service.name` = `service`; spans go to the returned queue.
pub(super) fn spawn(
    collector: &str,
    service: &str,
    connector: Connector,
    metrics: Metrics,
) -> Result<mpsc::Sender<otlp::Span>, Error> {
    let uri = match collector.split_once("://") {
        Some((_, rest)) => format!("http://{rest}"),
        None => format!("http://{collector}"),
    };
    let endpoint = Endpoint::from_shared(uri).map_err(|source| Error::Address {
        address: collector.to_string(),
        source,
    })?;
    let channel = endpoint
        .connect_timeout(CONNECT_TIMEOUT)
        .connect_with_connector_lazy(tower::service_fn(move |uri: http::Uri| {
            let connector = connector.clone();
            async move {
                let host = uri.host().unwrap_or_default().trim_matches(['[', ']']);
                let port = uri.port_u16().unwrap_or(4317);
                let addr = tokio::net::lookup_host((host, port))
                    .await?
                    .next()
                    .ok_or_else(|| std::io::Error::other(format!("{host}: no address")))?;
                let stream = connector
                    .connect(addr, CONNECT_TIMEOUT)
                    .await
                    .map_err(|e| std::io::Error::other(e.to_string()))?;
                Ok::<_, std::io::Error>(TokioIo::new(stream))
            }
        }));
    let resource = otlp::Resource {
        attributes: vec![otlp::KeyValue::string("service.name", service)],
    };
    let (tx, rx) = mpsc::channel(QUEUE);
    tokio::spawn(run(rx, channel, resource, metrics, collector.to_string()));
    Ok(tx)
}

async fn run(
    mut rx: mpsc::Receiver<otlp::Span>,
    channel: Channel,
    resource: otlp::Resource,
    metrics: Metrics,
    collector: String,
) {
    let mut grpc = tonic::client::Grpc::new(channel);
    let mut backoff = BACKOFF_MIN;
    let mut batch = Vec::with_capacity(BATCH);
    loop {
        if rx.recv_many(&mut batch, BATCH).await == 0 {
            return;
        }
        let deadline = tokio::time::Instant::now() + FLUSH_EVERY;
        let mut closed = false;
        while batch.len() < BATCH {
            let room = BATCH - batch.len();
            let more = rx.recv_many(&mut batch, room);
            match tokio::time::timeout_at(deadline, more).await {
                Err(_) => break,
                Ok(0) => {
                    closed = true;
                    break;
                }
                Ok(_) => {}
            }
        }
        let n = batch.len() as u64;
        match export(&mut grpc, &resource, std::mem::take(&mut batch)).await {
            Ok(rejected) => {
                metrics.exported.inc_by(n - rejected.min(n));
                if rejected > 0 {
                    metrics.dropped("rejected", rejected);
                }
                backoff = BACKOFF_MIN;
            }
            Err(status) => {
                metrics.dropped("export_failed", n);
                tracing::warn!(%collector, spans = n, "trace export failed: {}", status.message());
                if !closed {
                    tokio::time::sleep(backoff).await;
                }
                backoff = (backoff * 2).min(BACKOFF_MAX);
            }
        }
        if closed {
            return;
        }
    }
}

/// Sends one batch; Ok holds how many spans the collector rejected.
async fn export(
    grpc: &mut tonic::client::Grpc<Channel>,
    resource: &otlp::Resource,
    spans: Vec<otlp::Span>,
) -> Result<u64, tonic::Status> {
    let request = otlp::ExportTraceServiceRequest {
        resource_spans: vec![otlp::ResourceSpans {
            resource: Some(resource.clone()),
            scope_spans: vec![otlp::ScopeSpans {
                scope: Some(otlp::InstrumentationScope {
                    name: "weft-proxy".into(),
                    version: env!("CARGO_PKG_VERSION").into(),
                }),
                spans,
            }],
        }],
    };
    grpc.ready()
        .await
        .map_err(|e| tonic::Status::unavailable(e.to_string()))?;
    let mut request = tonic::Request::new(request);
    request.set_timeout(EXPORT_TIMEOUT);
    let codec = tonic_prost::ProstCodec::<
        otlp::ExportTraceServiceRequest,
        otlp::ExportTraceServiceResponse,
    >::default();
    let path = http::uri::PathAndQuery::from_static(otlp::EXPORT_PATH);
    let response = grpc.unary(request, path, codec).await?.into_inner();
    let rejected = response.partial_success.map_or(0, |p| p.rejected_spans);
    Ok(rejected.max(0) as u64)
}
