use std::sync::Arc;

use weft_core::access_log::{Encoding, FormatSource, LogFormat};
use weft_core::model::ProxyConfig;

use super::line;
use crate::record::Record;
use crate::tunnel::peer::Metadata;

fn format(encoding: Option<Encoding>, f: serde_json::Value) -> LogFormat {
    let f: Option<FormatSource> = serde_json::from_value(f).unwrap();
    LogFormat::compile(encoding, f.as_ref()).unwrap()
}

fn render(f: &LogFormat, r: &Record, me: Option<&ProxyConfig>) -> String {
    let mut out = Vec::new();
    line(f, r, me, &mut out);
    String::from_utf8(out).unwrap()
}

/// An inbound request from the frontend over mTLS, answered 200 by the local app.
fn inbound() -> Record {
    let mut r = Record::new("inbound");
    r.ts_ms = 1_709_251_198_123;
    r.protocol = "HTTP/1.1".into();
    r.method = Some("GET".into());
    r.path = Some("/items?page=2".into());
    r.authority = Some("catalog:8080".into());
    r.status = Some(200);
    r.duration_ms = 12.6;
    r.bytes_sent = Some(0);
    r.bytes_received = Some(512);
    r.service = Some("shop/catalog".into());
    r.route = Some("catalog-v1".into());
    r.upstream = Some("127.0.0.1:8080".into());
    r.downstream = Some("198.18.0.7:41000".into());
    r.peer_identity = Some("spiffe://cluster.local/ns/shop/sa/frontend".into());
    r.mtls = Some(true);
    r.source = Some(Arc::new(Metadata {
        workload: "frontend".into(),
        namespace: "shop".into(),
        app: "frontend".into(),
        version: "v1".into(),
        principal: "spiffe://cluster.local/ns/shop/sa/frontend".into(),
    }));
    r.request_headers = vec![("user-agent".into(), "curl/8.5.0".into())];
    r.response_headers = vec![("content-type".into(), "application/json".into())];
    r
}

fn catalog() -> ProxyConfig {
    ProxyConfig::with_defaults(
        "catalog-0.shop",
        "shop",
        "catalog",
        "spiffe://cluster.local/ns/shop/sa/catalog",
    )
}

#[test]
fn a_text_line_fills_every_operator_and_marks_the_unknown() {
    let f = format(
        None,
        "[%START_TIME%] \"%REQ(:METHOD)% %REQ(X-ENVOY-ORIGINAL-PATH?:PATH)% %PROTOCOL%\" \
         %RESPONSE_CODE% %RESPONSE_FLAGS% %DURATION% %BYTES_RECEIVED% %BYTES_SENT% \
         \"%REQ(USER-AGENT):4%\" \"%REQ(X-REQUEST-ID)%\" %RESP(CONTENT-TYPE)% %UPSTREAM_HOST% \
         %UPSTREAM_CLUSTER% %DOWNSTREAM_REMOTE_ADDRESS_WITHOUT_PORT% %ROUTE_NAME% \
         %DOWNSTREAM_PEER_URI_SAN% %UPSTREAM_PEER_URI_SAN% %SOURCE_WORKLOAD% %DESTINATION_WORKLOAD%"
            .into(),
    );
    let me = catalog();
    let text = render(&f, &inbound(), Some(&me));
    assert_eq!(
        text,
        "[2024-02-29T23:59:58.123Z] \"GET /items?page=2 HTTP/1.1\" 200 - 13 0 512 \"curl\" \"-\" \
         application/json 127.0.0.1:8080 shop/catalog 198.18.0.7 catalog-v1 \
         spiffe://cluster.local/ns/shop/sa/frontend - frontend catalog\n"
    );
}

#[test]
fn json_fields_keep_numbers_and_use_null_for_what_is_not_known() {
    let f = format(
        Some(Encoding::Json),
        serde_json::json!({
            "code": "%RESPONSE_CODE%",
            "ms": "%DURATION%",
            "request": "%REQ(:METHOD)% %REQ(:PATH)%",
            "id": "%REQ(X-REQUEST-ID)%",
            "source": "%SOURCE_PRINCIPAL%",
            "destination": "%DESTINATION_PRINCIPAL%",
        }),
    );
    let me = catalog();
    let text = render(&f, &inbound(), Some(&me));
    assert!(text.ends_with('\n'));
    let v: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert_eq!(
        v,
        serde_json::json!({
            "code": 200, "ms": 13, "request": "GET /items?page=2", "id": null,
            "source": "spiffe://cluster.local/ns/shop/sa/frontend",
            "destination": "spiffe://cluster.local/ns/shop/sa/catalog",
        })
    );
    let keys: Vec<&str> = v.as_object().unwrap().keys().map(String::as_str).collect();
    assert_eq!(
        keys,
        ["code", "ms", "request", "id", "source", "destination"]
    );
}

#[test]
fn failures_show_envoy_flags_and_details() {
    let f = format(
        None,
        "%RESPONSE_CODE% %RESPONSE_FLAGS% %RESPONSE_CODE_DETAILS% %UPSTREAM_TRANSPORT_FAILURE_REASON%"
            .into(),
    );
    let mut r = Record::new("outbound");
    r.status = Some(503);
    r.error = Some("connect-refused");
    assert_eq!(
        render(&f, &r, None),
        "503 UF connect-refused connect-refused\n"
    );
    let tcp = Record::new("outbound");
    assert_eq!(
        render(&f, &tcp, None),
        "0 - - -\n",
        "a TCP record has no code"
    );
}

#[test]
fn the_standard_format_is_weft_record() {
    let text = render(&LogFormat::default(), &inbound(), None);
    let v: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert_eq!(v["direction"], "inbound");
    assert_eq!(v["route"], "catalog-v1");
}
