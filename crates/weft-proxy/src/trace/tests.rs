//! A record's span: what the access log shows and what is exported.

use super::*;

fn traced(direction: &'static str, headers: &mut HeaderMap) -> Record {
    let req = http::Request::get("http://cart.shop:8080/cart?id=1")
        .body(())
        .unwrap();
    let (parts, ()) = req.into_parts();
    let mut record = Record::for_request(direction, &parts, "10.0.0.1:5000".parse().unwrap());
    record.trace = Some(start(None, headers));
    record
}

#[test]
fn the_log_line_names_the_trace_and_the_headers_carry_this_span() {
    let mut headers = HeaderMap::new();
    headers.insert(
        "traceparent",
        "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
            .parse()
            .unwrap(),
    );
    let record = traced("outbound", &mut headers);
    let span = &record.trace.as_ref().unwrap().context;
    let line = serde_json::to_value(&record).unwrap();
    assert_eq!(line["trace_id"], "4bf92f3577b34da6a3ce929d0e0e4736");
    assert_eq!(line["parent_span_id"], "00f067aa0ba902b7");
    assert_eq!(line["span_id"], span.span_id.to_string());
    assert_eq!(line["sampled"], true);
    assert!(line.get("start_unix_nano").is_none());
    let sent = headers["traceparent"].to_str().unwrap();
    assert_eq!(
        sent,
        format!("00-4bf92f3577b34da6a3ce929d0e0e4736-{}-01", span.span_id)
    );
    // A record without a trace (TCP) shows none of it.
    let tcp = serde_json::to_value(Record::new("outbound")).unwrap();
    assert!(tcp.get("trace_id").is_none(), "{tcp}");
}

#[test]
fn an_inbound_5xx_is_a_server_span_in_error_with_its_attributes() {
    let mut headers = HeaderMap::new();
    let mut record = traced("inbound", &mut headers);
    record.status = Some(503);
    record.error = Some("connect_refused");
    record.upstream = Some("127.0.0.1:8080".into());
    record.peer_identity = Some("spiffe://cluster.local/ns/shop/sa/web".into());
    record.duration_ms = 2.5;
    let trace = record.trace.clone().unwrap();
    let span = span_of(&record, &trace);
    assert_eq!(span.kind, otlp::SpanKind::Server as i32);
    assert_eq!(span.name, "cart.shop:8080/*");
    assert!(span.parent_span_id.is_empty(), "a new trace: a root span");
    assert_eq!(span.trace_id, trace.context.trace_id.0);
    assert_eq!(
        span.end_time_unix_nano - span.start_time_unix_nano,
        2_500_000
    );
    let status = span.status.unwrap();
    assert_eq!(status.code, otlp::StatusCode::Error as i32);
    assert_eq!(status.message, "connect_refused");
    let attr = |k: &str| span.attributes.iter().find(|a| a.key == k).cloned();
    assert_eq!(attr("http.method").unwrap().as_str(), Some("GET"));
    assert_eq!(
        attr("http.url").unwrap().as_str(),
        Some("http://cart.shop:8080/cart?id=1")
    );
    assert_eq!(attr("weft.direction").unwrap().as_str(), Some("inbound"));
    assert_eq!(
        attr("upstream_address").unwrap().as_str(),
        Some("127.0.0.1:8080")
    );
    assert_eq!(
        attr("weft.error").unwrap().as_str(),
        Some("connect_refused")
    );
    let code = attr("http.status_code")
        .unwrap()
        .value
        .unwrap()
        .value
        .unwrap();
    assert_eq!(code, otlp::Value::IntValue(503));
    // Outbound is the client side; a 404 is no error.
    let mut out = traced("outbound", &mut HeaderMap::new());
    out.status = Some(404);
    let span = span_of(&out, out.trace.as_ref().unwrap());
    assert_eq!(span.kind, otlp::SpanKind::Client as i32);
    assert_eq!(span.status.unwrap().code, otlp::StatusCode::Unset as i32);
}

fn config(collector: Option<String>) -> Arc<ProxyConfig> {
    let mut mesh = weft_core::resources::mesh::MeshSpec::default();
    mesh.tracing.enabled = true;
    mesh.tracing.endpoint = collector;
    let mut config = ProxyConfig::with_defaults(
        "web-0.shop",
        "shop",
        "web",
        "spiffe://cluster.local/ns/shop/sa/web",
    );
    config.settings = weft_core::annotations::ProxySettings::resolve(&mesh, &[], &[]);
    Arc::new(config)
}

#[tokio::test]
async fn spans_the_collector_cannot_take_are_dropped_and_counted() {
    let mut registry = prometheus_client::registry::Registry::with_prefix("weft");
    let metrics = Metrics::register(registry.sub_registry_with_prefix("trace"));
    let tracer = Tracer::new(Connector::default(), metrics);
    // A port nothing listens on.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = closed.local_addr().unwrap();
    drop(closed);
    let with = config(Some(addr.to_string()));
    let mut sampled = traced("outbound", &mut HeaderMap::new());
    sampled.trace.as_mut().unwrap().context.sampled = true;
    let mut unsampled = sampled.clone();
    unsampled.trace.as_mut().unwrap().context.sampled = false;
    tracer.end(&unsampled, || Some(with.clone()));
    assert!(
        tracer.exporter.lock().unwrap().is_none(),
        "nothing to export"
    );
    tracer.end(&sampled, || Some(config(None)));
    assert!(tracer.exporter.lock().unwrap().is_none(), "no collector");
    tracer.end(&sampled, || Some(with.clone()));
    tracer.end(&sampled, || Some(with.clone()));
    let text = || {
        let mut s = String::new();
        prometheus_client::encoding::text::encode(&mut s, &registry).unwrap();
        s
    };
    let line = r#"weft_trace_spans_dropped_total{reason="export_failed"} 2"#;
    weft_test_support::wait::eventually(line, std::time::Duration::from_secs(15), async || {
        let t = text();
        if t.contains(line) { Ok(()) } else { Err(t) }
    })
    .await;
    assert!(
        text().contains("weft_trace_spans_exported_total 0"),
        "{}",
        text()
    );
}
