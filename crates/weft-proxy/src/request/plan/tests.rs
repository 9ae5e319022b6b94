//! The plan step, table-tested: no sockets, no clock, a seeded random source.

use std::sync::Arc;
use std::time::Duration;

use http::{Method, Request, StatusCode, Version};
use serde_json::{Value, json};
use weft_core::model::{
    ClientPolicy, GatewayConfig, HttpRoutes, PortConfig, Protocol, ServiceConfig, TcpRule,
};
use weft_core::resources::policy::LoadBalancerType;

use super::*;
use crate::balance::Balancer;
use crate::route::CompiledRoutes;
use crate::state::GatewayEntry;

fn service(key: &str, ports: &[(u16, Protocol)], http: Option<Value>) -> Arc<ServiceEntry> {
    let (namespace, name) = key.split_once('/').unwrap();
    let http: Option<HttpRoutes> = http.map(|v| serde_json::from_value(v).unwrap());
    let policy = ClientPolicy {
        timeout: Some(weft_core::duration::Duration::from_secs(9)),
        ..ClientPolicy::default()
    };
    let config = ServiceConfig {
        namespace: namespace.into(),
        name: name.into(),
        vip: None,
        hostnames: Vec::new(),
        ports: (ports.iter())
            .map(|&(port, protocol)| PortConfig {
                port,
                name: None,
                protocol,
            })
            .collect(),
        endpoints: Vec::new(),
        http: None,
        tcp: Vec::new(),
        policy,
        waypoint: None,
        local_rate_limit: None,
    };
    entry(config, http)
}

fn entry(mut config: ServiceConfig, http: Option<HttpRoutes>) -> Arc<ServiceEntry> {
    let routes = http.as_ref().map(|h| CompiledRoutes::new(h).unwrap());
    config.http = http;
    let balancer = Balancer::new(LoadBalancerType::LeastRequest, &config.policy, Vec::new());
    Arc::new(ServiceEntry {
        config,
        routes,
        balancer: Arc::new(balancer),
    })
}

fn table(svc: &Arc<ServiceEntry>) -> Table {
    Table::Service(svc.config.key().into(), svc.clone())
}

fn gateway(http: Value) -> Table {
    let http: HttpRoutes = serde_json::from_value(http).unwrap();
    Table::Gateway(Arc::new(GatewayEntry {
        routes: CompiledRoutes::new(&http).unwrap(),
        config: GatewayConfig {
            namespace: "edge".into(),
            name: "public".into(),
            listeners: Vec::new(),
            http,
            authorization: Vec::new(),
            waypoint: false,
            local_rate_limits: Default::default(),
        },
    }))
}

/// Routes: one rule per value in `rules`, each matched by the entry at the same index.
fn routes(rules: Value, entries: Value) -> Value {
    json!({ "rules": rules, "entries": entries })
}

fn prefix(p: &str, rule: usize) -> Value {
    json!({ "match": { "path": { "type": "PathPrefix", "value": p } }, "rule": rule })
}

fn backend(service: &str, port: u16, weight: u32) -> Value {
    json!({ "service": service, "port": port, "weight": weight })
}

fn get(uri: &str) -> Parts {
    let (parts, ()) = Request::get(uri)
        .header("host", "web.shop")
        .body(())
        .unwrap()
        .into_parts();
    parts
}

fn rng() -> fastrand::Rng {
    fastrand::Rng::with_seed(11)
}

/// Both steps, with `backends` as the Services the lookup finds.
fn both(
    table: &Table,
    port: u16,
    parts: &mut Parts,
    bodiless: bool,
    backends: &[&Arc<ServiceEntry>],
) -> Result<Plan, ProxyError> {
    let route = route(table, port, parts, &mut rng())?;
    let svc = (route.backend.as_ref()).map(|b| {
        table.service(&b.service).unwrap_or_else(|| {
            let found = backends.iter().find(|s| s.config.key() == b.service);
            (*found.expect("backend looked up")).clone()
        })
    });
    plan(route, svc, table, port, bodiless, parts)
}

fn forward(p: Result<Plan, ProxyError>) -> Forward {
    match p {
        Ok(Plan::Forward(f)) => f,
        other => panic!("expected a forward plan, got {other:?}"),
    }
}

#[test]
fn a_service_without_routes_is_its_own_backend_with_its_policy() {
    let web = service("shop/web", &[(80, Protocol::Http)], None);
    let f = forward(both(&table(&web), 80, &mut get("/"), true, &[]));
    assert_eq!(f.service.config.key(), "shop/web");
    assert_eq!((f.port, f.version), (80, Some(Version::HTTP_11)));
    assert_eq!(f.timeout, Some(Duration::from_secs(9)));
    assert_eq!(f.retry.attempts, 1);
    assert_eq!(
        f.connect_timeout,
        ClientPolicy::default().connect_timeout.as_std()
    );
}

#[test]
fn the_upstream_version_follows_the_declared_port_protocol() {
    let ports = [
        (80, Protocol::Http),
        (81, Protocol::Http2),
        (82, Protocol::Grpc),
        (83, Protocol::Detect),
    ];
    let web = service("shop/web", &ports, None);
    let version =
        |port, parts: &mut Parts| forward(both(&table(&web), port, parts, true, &[])).version;
    assert_eq!(version(80, &mut get("/")), Some(Version::HTTP_11));
    assert_eq!(version(81, &mut get("/")), Some(Version::HTTP_2));
    assert_eq!(version(82, &mut get("/")), Some(Version::HTTP_2));
    assert_eq!(
        version(83, &mut get("/")),
        None,
        "undeclared: the client's version"
    );
    assert_eq!(version(84, &mut get("/")), None);
    // An upgrade stays HTTP/1.1 as the client sent it, and is never sent twice.
    let mut ws = get("/chat");
    ws.headers.insert("upgrade", "websocket".parse().unwrap());
    ws.headers.insert("connection", "upgrade".parse().unwrap());
    let f = forward(both(&table(&web), 80, &mut ws, true, &[]));
    assert_eq!((f.version, f.retry.attempts), (None, 1));
}

#[test]
fn rules_pick_backends_and_override_the_called_services_policy() {
    let http = routes(
        json!([
            { "name": "r0", "backends": [backend("shop/v2", 8080, 1)], "timeout": "2s",
              "perTryTimeout": "500ms", "retry": { "attempts": 2, "codes": [503], "backoff": "10ms" } },
            { "name": "r1", "backends": [backend("shop/web", 0, 1)] },
        ]),
        json!([prefix("/v2", 0), prefix("/", 1)]),
    );
    let web = service("shop/web", &[(80, Protocol::Http)], Some(http));
    let v2 = service("shop/v2", &[(8080, Protocol::Http2)], None);
    let f = forward(both(&table(&web), 80, &mut get("/v2/x"), true, &[&v2]));
    assert_eq!((f.service.config.key().as_str(), f.port), ("shop/v2", 8080));
    assert_eq!(f.version, Some(Version::HTTP_2));
    assert_eq!(f.timeout, Some(Duration::from_secs(2)));
    assert_eq!(f.retry.per_try_timeout, Some(Duration::from_millis(500)));
    assert_eq!((f.retry.attempts, f.retry.codes.clone()), (3, vec![503]));
    // With a body the request is sent once, whatever the rule says — unless it is a gRPC
    // call, whose body is kept for its retries.
    let f = forward(both(&table(&web), 80, &mut get("/v2/x"), false, &[&v2]));
    assert_eq!(f.retry.attempts, 1);
    for (content_type, attempts) in [
        ("application/grpc", 3),
        ("application/grpc+proto", 3),
        ("application/json", 1),
    ] {
        let mut call = get("/v2/x");
        call.headers
            .insert("content-type", content_type.parse().unwrap());
        let f = forward(both(&table(&web), 80, &mut call, false, &[&v2]));
        assert_eq!(f.retry.attempts, attempts, "{content_type}");
    }
    // Rule 1 sets nothing: the called Service's policy; port 0 is the Service port.
    let f = forward(both(&table(&web), 80, &mut get("/"), true, &[]));
    assert_eq!((f.service.config.key().as_str(), f.port), ("shop/web", 80));
    assert_eq!(f.timeout, Some(Duration::from_secs(9)));
}

#[test]
fn routes_answer_only_on_the_ports_they_attach_to() {
    let http = routes(
        json!([{ "name": "r0", "backends": [backend("shop/v2", 0, 1)] }]),
        json!([{ "ports": [80], "match": { "path": { "type": "Exact", "value": "/only" } }, "rule": 0 }]),
    );
    let web = service(
        "shop/web",
        &[(80, Protocol::Http), (9090, Protocol::Http)],
        Some(http),
    );
    let err = both(&table(&web), 80, &mut get("/other"), true, &[]).unwrap_err();
    assert_eq!(
        (err.stage(), err.status()),
        ("no-route", StatusCode::NOT_FOUND)
    );
    // Port 9090 has no route: the Service itself serves it.
    let f = forward(both(&table(&web), 9090, &mut get("/other"), true, &[]));
    assert_eq!(
        (f.service.config.key().as_str(), f.port),
        ("shop/web", 9090)
    );
}

#[test]
fn a_gateway_without_a_matching_route_answers_404_and_uses_the_backends_policy() {
    let gw = gateway(routes(
        json!([{ "name": "g0", "backends": [backend("shop/web", 80, 1)] }]),
        json!([{ "ports": [8080], "hostnames": ["shop.example"], "match": { "path": { "type": "PathPrefix", "value": "/" } }, "rule": 0 }]),
    ));
    let web = service("shop/web", &[(80, Protocol::Http)], None);
    let mut other_host = get("http://elsewhere.example/");
    assert_eq!(
        both(&gw, 8080, &mut other_host, true, &[&web])
            .unwrap_err()
            .stage(),
        "no-route"
    );
    // The URI's authority wins over Host.
    let mut req = get("http://shop.example:8080/");
    req.headers
        .insert("host", "elsewhere.example".parse().unwrap());
    let f = forward(both(&gw, 8080, &mut req, true, &[&web]));
    assert_eq!(f.service.config.key(), "shop/web");
    assert_eq!(
        f.timeout,
        Some(Duration::from_secs(9)),
        "the backend's policy"
    );
    let empty = gateway(routes(json!([]), json!([])));
    assert_eq!(
        both(&empty, 8080, &mut get("/"), true, &[])
            .unwrap_err()
            .stage(),
        "no-route"
    );
}

#[test]
fn a_redirect_answers_without_a_backend() {
    let http = routes(
        json!([{ "name": "r0", "backends": [], "filters": [
            { "type": "RequestRedirect", "requestRedirect": { "hostname": "new.shop", "statusCode": 301 } }
        ] }]),
        json!([prefix("/", 0)]),
    );
    let web = service("shop/web", &[(80, Protocol::Http)], Some(http));
    let mut req = get("/old?q=1");
    let table = table(&web);
    let route = route(&table, 80, &req, &mut rng()).unwrap();
    assert!(route.backend.is_none());
    match plan(route, None, &table, 80, true, &mut req) {
        Ok(Plan::Respond(res)) => {
            assert_eq!(res.status, StatusCode::MOVED_PERMANENTLY);
            assert_eq!(res.headers["location"], "http://new.shop/old?q=1");
        }
        other => panic!("expected a redirect, got {other:?}"),
    }
}

#[test]
fn no_weight_no_backend_and_an_unresolved_backend_fail_clearly() {
    let http = routes(
        json!([{ "name": "HTTPRoute/shop/web rule 0", "backends": [backend("shop/a", 80, 0)] }]),
        json!([prefix("/", 0)]),
    );
    let web = service("shop/web", &[(80, Protocol::Http)], Some(http));
    let err = both(&table(&web), 80, &mut get("/"), true, &[]).unwrap_err();
    assert_eq!(err.stage(), "no-backend");
    assert!(
        err.to_string()
            .contains("HTTPRoute/shop/web rule 0 has no backend with weight > 0"),
        "{err}"
    );
}

#[test]
fn filters_change_the_request_and_list_response_modifiers_rule_first() {
    let http = routes(
        json!([{ "name": "r0", "filters": [
            { "type": "RequestHeaderModifier", "requestHeaderModifier": { "set": [{ "name": "x-rule", "value": "1" }] } },
            { "type": "ResponseHeaderModifier", "responseHeaderModifier": { "add": [{ "name": "x-from", "value": "rule" }] } },
            { "type": "RequestMirror", "requestMirror": { "backendRef": { "name": "shadow", "port": 81 }, "percent": 25 } },
            { "type": "RequestMirror", "requestMirror": { "backendRef": { "name": "audit", "namespace": "ops" } } }
        ], "backends": [{ "service": "shop/v2", "port": 80, "weight": 1, "filters": [
            { "type": "RequestHeaderModifier", "requestHeaderModifier": { "set": [{ "name": "x-backend", "value": "1" }] } },
            { "type": "ResponseHeaderModifier", "responseHeaderModifier": { "add": [{ "name": "x-from", "value": "backend" }] } }
        ] }] }]),
        json!([prefix("/", 0)]),
    );
    let web = service("shop/web", &[(80, Protocol::Http)], Some(http));
    let v2 = service("shop/v2", &[(80, Protocol::Http)], None);
    let mut req = get("/");
    let f = forward(both(&table(&web), 80, &mut req, true, &[&v2]));
    assert_eq!(
        (&req.headers["x-rule"], &req.headers["x-backend"]),
        (
            &"1".parse::<http::HeaderValue>().unwrap(),
            &"1".parse::<http::HeaderValue>().unwrap()
        )
    );
    let from: Vec<_> = (f.response_filters.iter())
        .map(|f| {
            f.response_header_modifier.as_ref().unwrap().add[0]
                .value
                .clone()
        })
        .collect();
    assert_eq!(from, ["rule", "backend"]);
    let shadow = Mirror {
        service: "shop/shadow".into(),
        port: 81,
        percent: 25,
    };
    let audit = Mirror {
        service: "ops/audit".into(),
        port: 80,
        percent: 100,
    };
    assert_eq!(f.mirrors, [shadow, audit]);
    // A request with a body is not mirrored.
    let f = forward(both(&table(&web), 80, &mut get("/"), false, &[&v2]));
    assert!(f.mirrors.is_empty());
    let _ = Method::GET;
}

#[test]
fn tcp_takes_the_first_rule_for_the_port_else_the_service() {
    let mut config = service("shop/db", &[(5432, Protocol::Tcp)], None)
        .config
        .clone();
    config.tcp = vec![
        serde_json::from_value::<TcpRule>(
            json!({ "name": "t0", "ports": [5432], "backends": [backend("shop/db-v2", 0, 1)] }),
        )
        .unwrap(),
        serde_json::from_value::<TcpRule>(
            json!({ "name": "t1", "ports": [6000], "backends": [backend("shop/db-v3", 7000, 1)] }),
        )
        .unwrap(),
        serde_json::from_value::<TcpRule>(
            json!({ "name": "t2", "ports": [6001], "backends": [backend("shop/none", 1, 0)] }),
        )
        .unwrap(),
    ];
    let db = entry(config, None);
    let mut rng = rng();
    let (rule, svc, port) = tcp(&db, 5432, &mut rng).unwrap();
    assert_eq!(
        (rule.map(|r| r.name.as_str()), svc.as_str(), port),
        (Some("t0"), "shop/db-v2", 5432)
    );
    let (rule, svc, port) = tcp(&db, 6000, &mut rng).unwrap();
    assert_eq!(
        (rule.map(|r| r.name.as_str()), svc.as_str(), port),
        (Some("t1"), "shop/db-v3", 7000)
    );
    let (rule, svc, port) = tcp(&db, 9999, &mut rng).unwrap();
    assert_eq!(
        (rule.is_none(), svc.as_str(), port),
        (true, "shop/db", 9999)
    );
    assert_eq!(tcp(&db, 6001, &mut rng).unwrap_err().stage(), "no-backend");
}
