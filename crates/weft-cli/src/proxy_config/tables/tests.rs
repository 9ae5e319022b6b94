use std::collections::BTreeMap;

use weft_core::load::load_paths;
use weft_core::model::effective::Target;
use weft_core::model::{Pod, Snapshot};

use super::super::view::{Held, Live};
use super::*;

fn pod(workload: &str, n: u8, sa: &str) -> Pod {
    Pod {
        id: format!("{workload}-0.shop"),
        namespace: "shop".into(),
        workload: workload.into(),
        name: format!("{workload}-0"),
        ip: format!("198.19.87.{n}").parse().unwrap(),
        service_account: sa.into(),
        labels: BTreeMap::new(),
        inbound: None,
        tunnel: None,
        node: "node-1".into(),
        ready: true,
    }
}

/// The demo shop's frontend-0, as the control plane intends it.
fn frontend() -> Effective {
    let out = load_paths(&[concat!(env!("CARGO_MANIFEST_DIR"), "/../../examples/shop")]);
    assert!(out.is_ok(), "{:#?}", out.errors);
    let pods = [
        pod("frontend", 2, "frontend"),
        pod("pricing-v1", 5, "pricing"),
        pod("pricing-v2", 6, "pricing"),
    ];
    let snap = Snapshot::build(&out.config, &pods);
    snap.effective(Target::Pod("frontend-0.shop")).unwrap()
}

/// Rows of a table, split on runs of two or more spaces (cells may hold single spaces).
fn cells(text: &str) -> Vec<Vec<String>> {
    text.lines()
        .filter(|l| !l.starts_with('('))
        .map(|l| {
            l.split("  ")
                .map(str::trim)
                .filter(|c| !c.is_empty())
                .map(String::from)
                .collect()
        })
        .collect()
}

fn row<'a>(rows: &'a [Vec<String>], first: &str, has: &str) -> &'a Vec<String> {
    (rows.iter())
        .find(|r| r[0] == first && r.iter().any(|c| c.contains(has)))
        .unwrap_or_else(|| panic!("no row {first} with {has} in {rows:#?}"))
}

fn view(live: Live) -> View {
    View {
        effective: frontend(),
        live,
    }
}

#[test]
fn routes_show_domains_matches_weighted_backends_timeouts_retries_and_rules() {
    let text = routes(&frontend());
    let rows = cells(&text);
    assert_eq!(
        rows[0],
        [
            "NAME", "DOMAINS", "MATCH", "BACKENDS", "TIMEOUT", "RETRIES", "RULE"
        ]
    );
    let pricing = row(&rows, "shop/pricing:8080", "pricing-v1");
    assert_eq!(
        pricing[1..],
        [
            "pricing,pricing.shop +3 more",
            "/*",
            "pricing-v1:8080 90%, pricing-v2:8080 10%",
            "2s",
            "2x 503",
            "HTTPRoute/shop/pricing-split rule 0"
        ],
        "{text}"
    );
    let catalog = row(&rows, "shop/catalog:8080", "default");
    assert_eq!(catalog[2..4], ["/*", "catalog:8080"], "{text}");
}

#[test]
fn retries_show_status_codes_and_grpc_statuses() {
    let r = |codes: &[u16], grpc: &[u32]| Retry {
        attempts: 2,
        codes: codes.to_vec(),
        grpc_codes: grpc.to_vec(),
        backoff: weft_core::duration::Duration::from_millis(25),
    };
    assert_eq!(retries(&r(&[503], &[])), "2x 503");
    assert_eq!(retries(&r(&[502, 503], &[14])), "2x 502,503 grpc 14");
    assert_eq!(retries(&r(&[], &[1, 14])), "2x grpc 1,14");
}

#[test]
fn clusters_show_policy_tls_identities_and_what_the_proxy_fetched() {
    let e = frontend();
    let version = |key: &str| {
        let c = e.clusters.iter().find(|c| c.service == key).unwrap();
        c.version.clone()
    };
    let mut live = Live {
        source: "the proxy of shop/frontend-0".into(),
        ..Live::default()
    };
    let fetched = |v| Held::Fetched {
        version: v,
        ejected: vec!["198.19.87.5".parse().unwrap()],
    };
    live.services
        .insert("shop/pricing".into(), fetched(version("shop/pricing")));
    live.services
        .insert("shop/cart".into(), fetched(Some("old".into())));
    let v = view(live);
    let text = clusters(&v);
    let rows = cells(&text);
    let pricing = row(&rows, "pricing.shop.svc.cluster.local", "8080");
    assert_eq!(
        pricing[1..],
        [
            "8080",
            "outbound",
            "LEAST_REQUEST",
            "1024 max, connect 5s",
            "5 errors, 30s, max 50%",
            "mTLS",
            "shop/pricing",
            "2",
            "shop/pricing",
            "yes"
        ],
        "{text}"
    );
    assert_eq!(
        row(&rows, "cart.shop.svc.cluster.local", "8080")
            .last()
            .unwrap(),
        "stale"
    );
    assert_eq!(
        row(&rows, "catalog.shop.svc.cluster.local", "8080")
            .last()
            .unwrap(),
        "no"
    );
    let inbound = row(&rows, "frontend.shop.svc.cluster.local", "inbound");
    assert_eq!(inbound.last().unwrap(), "-", "{text}");
    assert!(
        text.contains("(FETCHED is live, from the proxy of shop/frontend-0"),
        "{text}"
    );

    let endpoints = endpoints(&v);
    let rows = cells(&endpoints);
    let v1 = row(&rows, "198.19.87.5:8080", "outbound|8080||pricing.shop");
    assert_eq!(
        v1[1..],
        [
            "HEALTHY",
            "EJECTED",
            "outbound|8080||pricing.shop.svc.cluster.local",
            "shop/pricing-v1-0",
            "node-1",
            "mTLS 198.19.87.5:15008",
            "spiffe://shop.local/ns/shop/sa/pricing"
        ],
        "{endpoints}"
    );
    let v2 = row(&rows, "198.19.87.6:8080", "outbound|8080||pricing.shop");
    assert_eq!(v2[2], "OK");
    // Not fetched: no balancer to ask.
    let v1_own = row(&rows, "198.19.87.5:8080", "pricing-v1.shop");
    assert_eq!(v1_own[2], "-");
}

#[test]
fn when_the_proxy_cannot_be_asked_the_intended_config_shows_with_the_reason() {
    let v = view(Live {
        error: Some("connection refused".into()),
        ..Live::default()
    });
    let text = clusters(&v);
    assert!(
        text.contains("(FETCHED: the proxy could not be asked: connection refused)"),
        "{text}"
    );
    assert_eq!(
        row(&cells(&text), "pricing.shop.svc.cluster.local", "8080")
            .last()
            .unwrap(),
        "?"
    );
}

#[test]
fn listeners_show_capture_tunnel_ports_and_service_vips() {
    let text = listeners(&view(Live::default()));
    let rows = cells(&text);
    assert_eq!(rows[0], ["ADDRESS", "PORT", "MATCH", "DESTINATION"]);
    let inbound = row(&rows, "198.19.87.2", "8080");
    assert_eq!(inbound[2], "App: http/1.1", "{text}");
    assert!(
        inbound[3].starts_with("app 198.19.87.2:8080 (shop/frontend)"),
        "{text}"
    );
    let tunnel = row(&rows, "0.0.0.0", "15008");
    assert!(
        tunnel[3].contains("spiffe://shop.local/ns/shop/sa/frontend"),
        "{text}"
    );
    assert!(text.contains("Route: shop/catalog:8080"), "{text}");

    // Where the proxy said it bound them, when it did.
    let mut live = Live::default();
    live.bound
        .insert("outbound".into(), "127.0.0.1:15001".parse().unwrap());
    let text = listeners(&view(live));
    let rows = cells(&text);
    assert_eq!(
        rows[0],
        ["ADDRESS", "PORT", "BOUND", "MATCH", "DESTINATION"]
    );
    assert_eq!(
        row(&rows, "127.0.0.1", "15001")[2],
        "127.0.0.1:15001",
        "{text}"
    );
    assert_eq!(row(&rows, "0.0.0.0", "15008")[2], "-", "{text}");
    assert!(text.contains("(BOUND is live"), "{text}");
}

#[test]
fn matches_read_like_the_route_was_written() {
    let m: HttpRouteMatch = serde_json::from_value(serde_json::json!({
        "path": {"type": "PathPrefix", "value": "/price"},
        "method": "GET",
        "headers": [{"name": "x-canary", "value": "1"}],
        "queryParams": [{"type": "RegularExpression", "name": "v", "value": "^2"}],
    }))
    .unwrap();
    assert_eq!(describe_match(&m), "GET /price* [x-canary=1] ?v~^2");
    let exact: HttpRouteMatch =
        serde_json::from_value(serde_json::json!({"path": {"type": "Exact", "value": "/a"}}))
            .unwrap();
    assert_eq!(describe_match(&exact), "/a");
    assert_eq!(describe_match(&HttpRouteMatch::default()), "/*");
}
