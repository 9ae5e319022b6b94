//! Admission decided from the certificate, the registration and the connection's address:
//! every forged claim is refused with its reason, the honest one is admitted.

use weft_core::identity::SpiffeId;

use super::*;
use crate::peer::ClientCert;

const POD_IP: &str = "198.18.0.7";

fn grant() -> Grant {
    Grant {
        namespace: "shop".into(),
        service_account: "cart".into(),
        pod: "cart-0".into(),
        address: Some(POD_IP.parse().unwrap()),
        workload: "cart".into(),
        role: "sidecar".into(),
        labels: [("app".to_string(), "cart".to_string())].into(),
        node: String::new(),
    }
}

fn registered(ns: &str, pod: &str) -> Option<Grant> {
    (ns == "shop" && pod == "cart-0").then(grant)
}

fn node() -> Node {
    Node {
        id: "cart-0.shop".into(),
        role: "sidecar".into(),
        namespace: "shop".into(),
        workload: "cart".into(),
        pod: "cart-0".into(),
        ip: POD_IP.into(),
        service_account: "cart".into(),
        ..Default::default()
    }
}

fn peer(from: &str, cert: Option<(&str, &str)>) -> Peer {
    Peer {
        addr: format!("{from}:40000").parse().unwrap(),
        tls: true,
        client: cert.map(|(id, pod)| ClientCert {
            identity: SpiffeId::parse(id).unwrap(),
            pod: pod.into(),
        }),
    }
}

const CART: &str = "spiffe://shop.local/ns/shop/sa/cart";
const TD: &str = "shop.local";

#[test]
fn the_honest_proxy_is_admitted_as_its_registration_says() {
    let a = admit(
        &node(),
        Some(&peer(POD_IP, Some((CART, "cart-0")))),
        TD,
        registered,
    )
    .unwrap();
    assert_eq!(a.id, "cart-0.shop");
    assert!(a.endpoint);
    let pod = a.proxy.unwrap();
    assert_eq!(pod.ip.to_string(), POD_IP);
    assert_eq!(pod.workload, "cart");
    assert_eq!(
        pod.labels,
        grant().labels,
        "labels come from the registration"
    );
}

#[test]
fn forged_claims_are_refused_with_their_reason() {
    let with = |f: fn(&mut Node)| {
        let mut n = node();
        f(&mut n);
        n
    };
    let honest = peer(POD_IP, Some((CART, "cart-0")));
    let cases: Vec<(&str, Node, Peer, &str, &str)> = vec![
        (
            "no certificate",
            node(),
            peer(POD_IP, None),
            "no-certificate",
            "none was presented",
        ),
        (
            "stolen certificate used from another address",
            node(),
            peer("198.18.0.9", Some((CART, "cart-0"))),
            "address",
            "comes from 198.18.0.9",
        ),
        (
            "another pod's name",
            with(|n| {
                n.pod = "cart-1".into();
                n.id = "cart-1.shop".into();
            }),
            honest.clone(),
            "claim",
            "node.id",
        ),
        (
            "another proxy's id",
            with(|n| n.id = "catalog-0.shop".into()),
            honest.clone(),
            "claim",
            "node.id \"catalog-0.shop\"",
        ),
        (
            "another namespace",
            with(|n| n.namespace = "bank".into()),
            honest.clone(),
            "claim",
            "node.namespace",
        ),
        (
            "another pod's address",
            with(|n| n.ip = "198.18.0.8".into()),
            honest.clone(),
            "claim",
            "node.ip",
        ),
        (
            "another workload",
            with(|n| n.workload = "payments".into()),
            honest.clone(),
            "claim",
            "node.workload",
        ),
        (
            "another service account",
            with(|n| n.service_account = "admin".into()),
            honest.clone(),
            "claim",
            "node.serviceAccount",
        ),
        (
            "the gateway's role",
            with(|n| n.role = "gateway".into()),
            honest.clone(),
            "claim",
            "node.role",
        ),
        (
            "labels that select another Service",
            with(|n| {
                n.labels.insert("app".into(), "payments".into());
            }),
            honest.clone(),
            "claim",
            "node.labels",
        ),
        (
            "a tunnel address elsewhere",
            with(|n| n.tunnel_address = "198.18.0.8:15008".into()),
            honest.clone(),
            "claim",
            "tunnelAddress",
        ),
        (
            "a pod nobody registered",
            with(|n| {
                n.pod = "ghost-0".into();
                n.id = "ghost-0.shop".into();
            }),
            peer(POD_IP, Some((CART, "ghost-0"))),
            "unregistered",
            "no registration",
        ),
        (
            "a certificate without a pod",
            node(),
            peer(POD_IP, Some((CART, ""))),
            "certificate",
            "names no pod",
        ),
        (
            "a certificate of another trust domain",
            node(),
            peer(
                POD_IP,
                Some(("spiffe://other.local/ns/shop/sa/cart", "cart-0")),
            ),
            "certificate",
            "trust domain",
        ),
        (
            "an IPv4 peer seen through a dual-stack socket is still itself",
            with(|n| n.id = "x".into()),
            Peer {
                addr: format!("[::ffff:{POD_IP}]:40000").parse().unwrap(),
                ..honest.clone()
            },
            "claim",
            "node.id",
        ),
        (
            "a certificate for another service account",
            node(),
            peer(
                POD_IP,
                Some(("spiffe://shop.local/ns/shop/sa/catalog", "cart-0")),
            ),
            "certificate",
            "service account",
        ),
    ];
    for (what, n, p, reason, says) in cases {
        let r = admit(&n, Some(&p), TD, registered).expect_err(what);
        assert_eq!(r.reason, reason, "{what}: {}", r.message);
        assert!(r.message.contains(says), "{what}: {}", r.message);
    }
}

#[test]
fn a_gateway_and_a_pod_without_an_address_are_nobodys_endpoint() {
    let gw = |ns: &str, pod: &str| {
        (ns == "shop" && pod == "gateway-ingress").then(|| Grant {
            pod: "gateway-ingress".into(),
            service_account: "ingress".into(),
            role: "gateway".into(),
            workload: String::new(),
            ..grant()
        })
    };
    let n = Node {
        id: "gateway-ingress.shop".into(),
        role: "gateway".into(),
        namespace: "shop".into(),
        workload: "ingress".into(),
        pod: "gateway-ingress".into(),
        ip: POD_IP.into(),
        service_account: "ingress".into(),
        ..Default::default()
    };
    let p = peer(
        POD_IP,
        Some(("spiffe://shop.local/ns/shop/sa/ingress", "gateway-ingress")),
    );
    let a = admit(&n, Some(&p), TD, gw).unwrap();
    assert!(!a.endpoint);
    assert_eq!(
        a.proxy.unwrap().service_account,
        "ingress",
        "from the certificate"
    );

    let loose = |_: &str, _: &str| {
        Some(Grant {
            address: None,
            ..grant()
        })
    };
    let n = Node {
        ip: String::new(),
        ..node()
    };
    let p = peer("127.0.0.1", Some((CART, "cart-0")));
    assert!(!admit(&n, Some(&p), TD, loose).unwrap().endpoint);
}

#[test]
fn the_plaintext_port_takes_claims_as_made() {
    let local = Peer {
        tls: false,
        client: None,
        ..peer("127.0.0.1", None)
    };
    let a = admit(&node(), Some(&local), TD, |_: &str, _: &str| None).unwrap();
    assert_eq!(a.proxy.unwrap().ip.to_string(), POD_IP);
}

const NODE_IP: &str = "198.18.0.1";
const NODE_PROXY: &str = "spiffe://shop.local/ns/weft-system/sa/weft-node";

/// A node proxy registered for node `node-a`, and the sidecar `cart-0`.
fn with_node(ns: &str, pod: &str) -> Option<Grant> {
    if ns == "weft-system" && pod == "node-a" {
        return Some(Grant {
            namespace: "weft-system".into(),
            service_account: "weft-node".into(),
            pod: "node-a".into(),
            address: Some(NODE_IP.parse().unwrap()),
            workload: String::new(),
            role: NODE_ROLE.into(),
            labels: Default::default(),
            node: String::new(),
        });
    }
    registered(ns, pod)
}

fn node_proxy() -> Node {
    Node {
        id: "node-a.weft-system".into(),
        role: NODE_ROLE.into(),
        namespace: "weft-system".into(),
        pod: "node-a".into(),
        ip: NODE_IP.into(),
        service_account: "weft-node".into(),
        ..Default::default()
    }
}

#[test]
fn a_node_proxy_serves_the_node_it_is_registered_for_and_is_nobodys_endpoint() {
    let from = peer(NODE_IP, Some((NODE_PROXY, "node-a")));
    let a = admit(&node_proxy(), Some(&from), TD, with_node).unwrap();
    assert_eq!(a.node.as_deref(), Some("node-a"));
    assert!(!a.endpoint);
    assert!(a.proxy.is_none());
}

#[test]
fn only_a_registration_as_node_proxy_grants_a_node() {
    // A sidecar's certificate claiming the node role: refused, whatever else it says.
    let mut claim = node();
    claim.role = NODE_ROLE.into();
    let from = peer(POD_IP, Some((CART, "cart-0")));
    let err = admit(&claim, Some(&from), TD, with_node).unwrap_err();
    assert_eq!(err.reason, "claim");
    assert!(err.message.contains("node.role"), "{}", err.message);
    // A registration that leaves the role open does not grant it either.
    let open = |ns: &str, pod: &str| {
        registered(ns, pod).map(|g| Grant {
            role: String::new(),
            ..g
        })
    };
    let err = admit(&claim, Some(&from), TD, open).unwrap_err();
    assert!(err.message.contains("node.role"), "{}", err.message);
    // The node proxy's certificate used as a sidecar: refused too.
    let mut as_sidecar = node_proxy();
    as_sidecar.role = "sidecar".into();
    let from = peer(NODE_IP, Some((NODE_PROXY, "node-a")));
    assert!(admit(&as_sidecar, Some(&from), TD, with_node).is_err());
}
