use std::sync::Arc;

use weft_core::model::ProxyConfig;

use super::*;

const FRONTEND: &str = "spiffe://cluster.local/ns/shop/sa/frontend";
const CATALOG: &str = "spiffe://cluster.local/ns/shop/sa/catalog";

fn proxy(workload: &str, identity: &str) -> ProxyConfig {
    let id = format!("{workload}-0.shop");
    ProxyConfig {
        app: workload.into(),
        version: "v1".into(),
        ..ProxyConfig::with_defaults(&id, "shop", workload, identity)
    }
}

fn meta(workload: &str, principal: &str) -> Arc<Metadata> {
    Arc::new(Metadata {
        workload: workload.into(),
        namespace: "shop".into(),
        app: workload.into(),
        version: "v1".into(),
        principal: principal.into(),
    })
}

fn request(direction: &'static str) -> Record {
    Record {
        direction,
        protocol: "HTTP/1.1".into(),
        service: Some("shop/catalog".into()),
        status: Some(200),
        mtls: Some(true),
        ..Record::default()
    }
}

#[test]
fn the_client_reports_itself_as_source_and_the_endpoint_as_destination() {
    let mut r = request("outbound");
    r.destination = Some(meta("catalog", CATALOG));
    let l = labels(&r, Some(&proxy("frontend", FRONTEND)));
    assert_eq!(l.reporter, "source");
    assert_eq!(
        (
            l.source_workload.as_str(),
            l.source_app.as_str(),
            l.source_version.as_str()
        ),
        ("frontend", "frontend", "v1")
    );
    assert_eq!(l.source_principal, FRONTEND);
    assert_eq!(l.destination_workload, "catalog");
    assert_eq!(l.destination_principal, CATALOG);
    assert_eq!(l.destination_service, "catalog.shop.svc.cluster.local");
    assert_eq!(l.destination_service_name, "catalog");
    assert_eq!(l.destination_service_namespace, "shop");
    assert_eq!(l.request_protocol, "http");
    assert_eq!(l.response_code, "200");
    assert_eq!(l.grpc_response_status, "");
    assert_eq!(l.response_flags, "-");
    assert_eq!(l.connection_security_policy, "mutual_tls");
}

#[test]
fn the_server_reports_itself_as_destination_and_the_named_client_as_source() {
    let mut r = request("inbound");
    r.source = Some(meta("frontend", FRONTEND));
    let l = labels(&r, Some(&proxy("catalog", CATALOG)));
    assert_eq!(l.reporter, "destination");
    assert_eq!(l.source_workload, "frontend");
    assert_eq!(l.source_principal, FRONTEND);
    assert_eq!(l.destination_workload, "catalog");
    assert_eq!(l.destination_principal, CATALOG);
}

#[test]
fn what_is_not_known_is_unknown_and_plaintext_has_no_principal() {
    let mut r = request("inbound");
    r.mtls = Some(false);
    r.service = None;
    r.status = None;
    r.protocol = "TCP".into();
    let l = labels(&r, Some(&proxy("catalog", CATALOG)));
    assert_eq!(l.source_workload, "unknown");
    assert_eq!(l.source_principal, "unknown");
    assert_eq!(l.destination_principal, "unknown");
    assert_eq!(l.destination_service, "unknown");
    assert_eq!(l.request_protocol, "tcp");
    assert_eq!(l.response_code, "0");
    assert_eq!(l.connection_security_policy, "none");
}

#[test]
fn grpc_status_comes_from_the_server_or_its_http_code() {
    let mut r = request("outbound");
    r.grpc = true;
    r.grpc_status = Some(5);
    assert_eq!(labels(&r, None).grpc_response_status, "5");
    assert_eq!(labels(&r, None).request_protocol, "grpc");
    r.grpc_status = None;
    r.status = Some(503);
    assert_eq!(labels(&r, None).grpc_response_status, "14");
}

#[test]
fn a_waypoint_reports_as_waypoint() {
    let mut r = request("waypoint");
    r.source = Some(meta("frontend", FRONTEND));
    r.destination = Some(meta("catalog", CATALOG));
    let l = labels(
        &r,
        Some(&proxy(
            "waypoint",
            "spiffe://cluster.local/ns/shop/sa/waypoint",
        )),
    );
    assert_eq!(l.reporter, "waypoint");
    assert_eq!(l.source_workload, "frontend");
    assert_eq!(l.destination_workload, "catalog");
}
