//! Distributed tracing in one process: a client sidecar and a server sidecar export their
//! spans of one request to an OTLP collector played by the test (a tonic service on
//! 127.0.0.1), and the app sees the server sidecar's span as its parent.

mod support;

use std::convert::Infallible;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::Full;
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::net::TcpListener;
use tonic::codegen::{BoxFuture, Service, http};
use weft_proxy::trace::otlp::{
    ExportTraceServiceRequest, ExportTraceServiceResponse, ResourceSpans, Span, SpanKind,
};

use support::*;

const WEB: &str = "198.18.128.60:80";

fn config(collector: std::net::SocketAddr) -> String {
    format!(
        r#"
apiVersion: weft.dev/v1alpha1
kind: Mesh
metadata: {{name: mesh}}
spec:
  tracing: {{enabled: true, endpoint: "http://{collector}", samplingPercent: 100}}
---
apiVersion: weft.dev/v1alpha1
kind: Workload
metadata: {{name: web, namespace: shop, labels: {{app: web}}}}
spec: {{command: [web], ports: [{{name: http, containerPort: 8080}}]}}
---
apiVersion: weft.dev/v1alpha1
kind: Workload
metadata: {{name: client, namespace: shop, labels: {{app: client}}}}
spec: {{command: [client]}}
---
apiVersion: v1
kind: Service
metadata: {{name: web, namespace: shop}}
spec: {{clusterIP: 198.18.128.60, selector: {{app: web}}, ports: [{{name: http, port: 80, targetPort: http}}]}}
"#
    )
}

/// What the collector received: each span with its resource's `service.name`.
type Received = Arc<Mutex<Vec<(String, Span)>>>;

/// `opentelemetry.proto.collector.trace.v1.TraceService`, keeping every span it is sent.
#[derive(Clone)]
struct Collector(Received);

impl tonic::server::NamedService for Collector {
    const NAME: &'static str = "opentelemetry.proto.collector.trace.v1.TraceService";
}

impl Service<http::Request<tonic::body::Body>> for Collector {
    type Response = http::Response<tonic::body::Body>;
    type Error = Infallible;
    type Future = BoxFuture<Self::Response, Self::Error>;

    fn poll_ready(
        &mut self,
        _: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Result<(), Infallible>> {
        std::task::Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: http::Request<tonic::body::Body>) -> Self::Future {
        let export = Export(self.0.clone());
        Box::pin(async move {
            let mut grpc = tonic::server::Grpc::new(tonic_prost::ProstCodec::default());
            Ok(grpc.unary(export, req).await)
        })
    }
}

struct Export(Received);

impl tonic::server::UnaryService<ExportTraceServiceRequest> for Export {
    type Response = ExportTraceServiceResponse;
    type Future = std::future::Ready<Result<tonic::Response<Self::Response>, tonic::Status>>;

    fn call(&mut self, req: tonic::Request<ExportTraceServiceRequest>) -> Self::Future {
        let mut received = self.0.lock().unwrap();
        for ResourceSpans {
            resource,
            scope_spans,
        } in req.into_inner().resource_spans
        {
            let service = resource
                .iter()
                .flat_map(|r| &r.attributes)
                .find(|a| a.key == "service.name")
                .and_then(|a| a.as_str())
                .unwrap_or_default()
                .to_string();
            for span in scope_spans.into_iter().flat_map(|s| s.spans) {
                received.push((service.clone(), span));
            }
        }
        std::future::ready(Ok(tonic::Response::new(Default::default())))
    }
}

async fn collector() -> (std::net::SocketAddr, Received) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let received = Received::default();
    let service = Collector(received.clone());
    tokio::spawn(
        tonic::transport::Server::builder()
            .add_service(service)
            .serve_with_incoming(tokio_stream::wrappers::TcpListenerStream::new(listener)),
    );
    (addr, received)
}

/// An app answering with the `traceparent` it was sent.
async fn app() -> std::net::SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let svc = hyper::service::service_fn(|req: http::Request<hyper::body::Incoming>| {
                let tp = req.headers().get("traceparent").cloned();
                let body = tp.map(|v| v.to_str().unwrap_or("").to_string());
                async move {
                    Ok::<_, Infallible>(http::Response::new(Full::new(Bytes::from(
                        body.unwrap_or_default(),
                    ))))
                }
            });
            tokio::spawn(async move {
                let server = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new());
                let _ = server.serve_connection(TokioIo::new(stream), svc).await;
            });
        }
    });
    addr
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|b| format!("{b:02x}")).collect()
}

#[tokio::test]
async fn two_proxies_export_parent_and_child_spans_and_the_app_sees_the_servers() {
    let (collector_addr, received) = collector().await;
    let dir = Dir::new("tracing");
    dir.write("mesh.yaml", &config(collector_addr));
    let cp = control(&dir, "127.0.0.1:0".parse().unwrap(), Duration::ZERO).await;
    let app = app().await;
    let _web = proxy(cp.discovery, "shop", "web", "web-0", None, Some(app)).await;
    let client = proxy(
        cp.discovery,
        "shop",
        "client",
        "client-0",
        Some(WEB.parse().unwrap()),
        None,
    )
    .await;
    let r = get(client.outbound, "web.shop", "/cart?id=7").await;
    assert_eq!(r.status, 200, "{}", r.body);
    let app_saw = r.body.clone();

    let spans = eventually(
        "both spans at the collector",
        Duration::from_secs(20),
        async || {
            let spans = received.lock().unwrap().clone();
            if spans.len() >= 2 {
                Ok(spans)
            } else {
                Err(format!("{spans:?}"))
            }
        },
    )
    .await;
    assert_eq!(spans.len(), 2, "{spans:?}");
    let find = |kind: SpanKind| {
        spans
            .iter()
            .find(|(_, s)| s.kind == kind as i32)
            .unwrap_or_else(|| panic!("no {kind:?} span in {spans:?}"))
    };
    let (client_service, client_span) = find(SpanKind::Client);
    let (server_service, server_span) = find(SpanKind::Server);
    assert_eq!(client_service, "client.shop");
    assert_eq!(server_service, "web.shop");
    assert!(
        client_span.parent_span_id.is_empty(),
        "the client proxy started the trace"
    );
    assert_eq!(server_span.trace_id, client_span.trace_id);
    assert_eq!(server_span.parent_span_id, client_span.span_id);
    assert_eq!(client_span.name, "web.shop/*");
    let attr = |s: &Span, k: &str| {
        s.attributes
            .iter()
            .find(|a| a.key == k)
            .and_then(|a| a.as_str().map(str::to_string))
    };
    assert_eq!(attr(client_span, "http.method").as_deref(), Some("GET"));
    assert_eq!(
        attr(client_span, "weft.service").as_deref(),
        Some("shop/web")
    );
    assert_eq!(
        attr(server_span, "weft.direction").as_deref(),
        Some("inbound")
    );
    assert!(client_span.start_time_unix_nano <= server_span.start_time_unix_nano);

    let expected = format!(
        "00-{}-{}-01",
        hex(&server_span.trace_id),
        hex(&server_span.span_id)
    );
    assert_eq!(
        app_saw, expected,
        "the app's parent is the server proxy's span"
    );

    let exported = eventually("the export counted", Duration::from_secs(10), async || {
        let m = get(client.metrics, "x", "/metrics").await.body;
        if m.contains("weft_trace_spans_exported_total 1") {
            Ok(())
        } else {
            Err(m)
        }
    });
    exported.await;
}
