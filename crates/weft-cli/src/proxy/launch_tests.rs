//! The launch contract, proxy side: what `weft up` passes to `weft proxy`
//! ([`weft_local::launch::ProxyLaunch`]) parses with this binary's own parser into the same
//! values. A flag renamed on either side fails here.

use std::net::SocketAddr;

use weft_local::launch::{GatewayLaunch, NodeLaunch, ProxyLaunch, WaypointLaunch};
use weft_local::ports;

use super::Args;
use crate::{Cli, Command};
use clap::Parser;

fn parse(launch: &ProxyLaunch) -> Args {
    parse_args(launch.to_args())
}

fn parse_args(args: Vec<String>) -> Args {
    let argv = std::iter::once("weft".to_string()).chain(args.clone());
    match Cli::try_parse_from(argv) {
        Ok(Cli {
            command: Command::Proxy(parsed),
        }) => *parsed,
        Ok(other) => panic!("{args:?} parsed as {other:?}"),
        Err(e) => panic!("{args:?} does not parse: {e}"),
    }
}

fn sidecar() -> ProxyLaunch {
    ProxyLaunch {
        control_plane: format!("https://198.18.0.1:{}", ports::SECURE_DISCOVERY),
        ca_root: "/run/weft/shop/state/ca/root-cert.pem".into(),
        trust_domain: "example.org".into(),
        namespace: "shop".into(),
        workload: "cart".into(),
        pod: "cart-1".into(),
        ip: [198, 18, 0, 7].into(),
        service_account: "cart-sa".into(),
        labels: vec![
            ("app".into(), "cart".into()),
            ("version".into(), "v2".into()),
        ],
        mark: Some(0x7765_6674),
        log_level: Some("debug".into()),
        concurrency: Some(3),
        bootstrap_token_file: "/run/weft/shop/tokens/shop/cart-1".into(),
        gateway: None,
        admin: None,
        metrics: None,
        readiness: None,
        addresses_file: Some("/run/weft/shop/addresses/shop.cart-1.json".into()),
        revision: Some("canary".into()),
    }
}

/// The fields both roles share arrive as given.
fn assert_common(args: &Args, launch: &ProxyLaunch) {
    assert_eq!(args.control_plane, launch.control_plane);
    assert_eq!(args.ca_root.as_ref(), Some(&launch.ca_root));
    assert_eq!(args.trust_domain, launch.trust_domain);
    assert_eq!(args.namespace.as_ref(), Some(&launch.namespace));
    assert_eq!(args.workload.as_ref(), Some(&launch.workload));
    assert_eq!(args.pod.as_ref(), Some(&launch.pod));
    assert_eq!(args.ip, launch.ip);
    assert_eq!(args.service_account, Some(launch.service_account.clone()));
    assert_eq!(args.labels, launch.labels);
    assert_eq!(
        args.bootstrap_token_file.as_ref(),
        Some(&launch.bootstrap_token_file)
    );
    assert_eq!(args.addresses_file, launch.addresses_file);
    assert_eq!(args.revision, launch.revision);
    assert_eq!(args.log_format, crate::logging::Format::Json);
}

#[test]
fn sidecar_launch_parses_into_the_same_values() {
    let launch = sidecar();
    let args = parse(&launch);
    assert_common(&args, &launch);
    assert_eq!(Some(args.mark), launch.mark);
    assert_eq!(Some(&args.log_level), launch.log_level.as_ref());
    assert_eq!(Some(args.concurrency as u32), launch.concurrency);
    assert_eq!(args.gateway, None);
    // Capture sends traffic to the conventional ports: the proxy must listen there.
    let port = |a: SocketAddr| a.port();
    assert_eq!(port(args.outbound), ports::OUTBOUND);
    assert_eq!(port(args.inbound), ports::INBOUND);
    assert_eq!(port(args.tunnel), ports::TUNNEL);
    assert_eq!(port(args.metrics), ports::METRICS);
    assert_eq!(port(args.readiness), ports::READINESS);
    assert_eq!(port(args.admin), ports::PROXY_ADMIN);
}

#[test]
fn gateway_launch_parses_into_the_same_values() {
    let launch = ProxyLaunch {
        workload: "ingress".into(),
        pod: "gateway-ingress".into(),
        ip: [198, 18, 0, 1].into(),
        service_account: "ingress".into(),
        labels: vec![],
        mark: None,
        log_level: None,
        concurrency: None,
        gateway: Some(GatewayLaunch {
            namespace: "shop".into(),
            name: "ingress".into(),
            listen: vec![
                (80, "127.0.0.1:18080".parse().unwrap()),
                (8443, "127.0.0.1:18443".parse().unwrap()),
            ],
        }),
        admin: Some("127.0.0.1:0".parse().unwrap()),
        metrics: Some("198.18.0.1:16020".parse().unwrap()),
        readiness: Some("198.18.0.1:16021".parse().unwrap()),
        ..sidecar()
    };
    let args = parse(&launch);
    assert_common(&args, &launch);
    assert_eq!(args.gateway.as_deref(), Some("shop/ingress"));
    assert_eq!(Some(args.listen), launch.gateway.map(|g| g.listen));
    assert_eq!(Some(args.admin), launch.admin);
    assert_eq!(Some(args.metrics), launch.metrics);
    assert_eq!(Some(args.readiness), launch.readiness);
}

#[test]
fn node_launch_parses_into_the_same_values() {
    let launch = NodeLaunch {
        control_plane: format!("https://198.18.0.1:{}", ports::SECURE_DISCOVERY),
        ca_root: "/run/weft/shop/state/ca/root-cert.pem".into(),
        trust_domain: "example.org".into(),
        node: "node-2".into(),
        ip: [198, 18, 0, 1].into(),
        enrolled: "/run/weft/shop/enrolled-node-2.json".into(),
        mark: 0x7765_6674,
        log_level: Some("debug".into()),
        bootstrap_token_file: "/run/weft/shop/tokens/weft-system/node-2".into(),
        admin: "127.0.0.1:0".parse().unwrap(),
        metrics: "198.18.0.1:16520".parse().unwrap(),
        readiness: "198.18.0.1:16521".parse().unwrap(),
        addresses_file: Some("/run/weft/shop/addresses/node-node-2.json".into()),
        handoff: Some("/run/weft/shop/handoff/node-2.sock".into()),
        revision: Some("stable".into()),
    };
    let args = parse_args(launch.to_args());
    assert_eq!(args.node.as_ref(), Some(&launch.node));
    assert_eq!(args.enrolled.as_ref(), Some(&launch.enrolled));
    assert_eq!(args.ip, launch.ip);
    assert_eq!(args.control_plane, launch.control_plane);
    assert_eq!(args.ca_root.as_ref(), Some(&launch.ca_root));
    assert_eq!(args.trust_domain, launch.trust_domain);
    assert_eq!(args.mark, launch.mark);
    assert_eq!(Some(&args.log_level), launch.log_level.as_ref());
    assert_eq!(
        args.bootstrap_token_file.as_ref(),
        Some(&launch.bootstrap_token_file)
    );
    assert_eq!(args.admin, launch.admin);
    assert_eq!(args.metrics, launch.metrics);
    assert_eq!(args.readiness, launch.readiness);
    assert_eq!(args.addresses_file, launch.addresses_file);
    assert_eq!(args.handoff, launch.handoff);
    assert_eq!(args.revision, launch.revision);
    assert_eq!(args.log_format, crate::logging::Format::Json);
    assert_eq!(args.gateway, None);
    assert_eq!(
        args.workload, None,
        "a node proxy serves no workload of its own"
    );
}

#[test]
fn waypoint_launch_parses_into_the_same_values() {
    let launch = WaypointLaunch {
        control_plane: format!("https://198.18.0.1:{}", ports::SECURE_DISCOVERY),
        ca_root: "/run/weft/shop/state/ca/root-cert.pem".into(),
        trust_domain: "example.org".into(),
        namespace: "shop".into(),
        name: "wp".into(),
        pod: "wp-0".into(),
        ip: [198, 18, 0, 9].into(),
        log_level: Some("info".into()),
        bootstrap_token_file: "/run/weft/shop/tokens/shop/wp-0".into(),
        tunnel: "0.0.0.0:15008".parse().unwrap(),
        admin: "127.0.0.1:15000".parse().unwrap(),
        metrics: "0.0.0.0:15020".parse().unwrap(),
        readiness: "0.0.0.0:15021".parse().unwrap(),
        revision: Some("canary".into()),
    };
    let args = parse_args(launch.to_args());
    assert_eq!(args.waypoint.as_deref(), Some("shop/wp"));
    assert_eq!(args.namespace.as_ref(), Some(&launch.namespace));
    assert_eq!(args.pod.as_ref(), Some(&launch.pod));
    assert_eq!(args.ip, launch.ip);
    assert_eq!(args.control_plane, launch.control_plane);
    assert_eq!(args.ca_root.as_ref(), Some(&launch.ca_root));
    assert_eq!(args.trust_domain, launch.trust_domain);
    assert_eq!(
        args.bootstrap_token_file.as_ref(),
        Some(&launch.bootstrap_token_file)
    );
    assert_eq!(
        (args.tunnel, args.admin, args.metrics, args.readiness),
        (
            launch.tunnel,
            launch.admin,
            launch.metrics,
            launch.readiness
        )
    );
    assert_eq!(args.revision, launch.revision);
    assert_eq!(args.log_format, crate::logging::Format::Json);
    // Its service account defaults to the Gateway's name: the identity its destinations admit.
    assert_eq!(args.service_account, None);
}

/// The enrolment file `weft up` writes is what the node proxy reads, field for field.
#[test]
fn the_enrolment_file_reads_back_in_the_node_proxy() {
    use weft_local::enrolment::{Enrolled, text};
    let pods = [Enrolled {
        id: "web-0.shop".into(),
        namespace: "shop".into(),
        name: "web-0".into(),
        ip: [198, 18, 0, 3].into(),
        netns: "/run/netns/weft-shop-web-0".into(),
    }];
    let file: serde_json::Value = serde_json::from_slice(&text(&pods)).unwrap();
    let read: Vec<weft_proxy::node::Enrolled> =
        serde_json::from_value(file["pods"].clone()).expect("the node proxy reads it");
    assert_eq!(read.len(), 1);
    let (r, w) = (&read[0], &pods[0]);
    assert_eq!(
        (&r.id, &r.namespace, &r.name, r.ip, &r.netns),
        (&w.id, &w.namespace, &w.name, w.ip, &w.netns)
    );
    // The listeners at the conventional ports, captured: no uncaptured targets.
    assert_eq!(r.tunnel.port(), ports::TUNNEL);
    assert_eq!(r.outbound.port(), ports::OUTBOUND);
    assert_eq!(r.inbound.port(), ports::INBOUND);
    assert_eq!((r.inbound_app, r.outbound_target), (None, None));
}
