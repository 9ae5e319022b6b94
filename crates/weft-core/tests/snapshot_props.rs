//! Property tests for the incremental snapshot: after any sequence of `set_pod`, `remove_pod`
//! and `reconfigure` (a new random configuration), the snapshot equals a full `Snapshot::build`
//! of the configuration and pods in force (Services, addresses, pods, `address()`, `proxy()`), whatever the order the
//! pods arrived in; what changed is always reported by `changed_*`; unchanged Services stay
//! shared with the previous version, and their encoding with them.

use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use proptest::prelude::*;
use proptest::sample::select;
use weft_core::load::{Config, parse_str};
use weft_core::model::{Encoded, Pod, PortConfig, Protocol, Snapshot};

/// Cases per property; `PROPTEST_CASES` overrides it for a longer run.
const CASES: u32 = 96;

const NAMESPACES: [&str; 3] = ["a", "b", "c"];
const KEYS: [&str; 3] = ["app", "tier", "version"];
const VALUES: [&str; 2] = ["x", "y"];
const WORKLOADS: [&str; 3] = ["w0", "w1", "w2"];
const IDS: [&str; 6] = ["p0", "p1", "p2", "p3", "p4", "p5"];
const NAMES: [&str; 3] = ["n0", "n1", "n2"];
const IPS: [&str; 4] = ["10.1.0.1", "10.1.0.2", "10.1.0.3", "10.1.0.4"];

fn config() -> ProptestConfig {
    let cases = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(CASES);
    ProptestConfig {
        cases,
        ..ProptestConfig::default()
    }
}

fn labels() -> impl Strategy<Value = BTreeMap<String, String>> {
    proptest::collection::btree_map(
        select(&KEYS[..]).prop_map(String::from),
        select(&VALUES[..]).prop_map(String::from),
        0..=3,
    )
}

fn flow(labels: &BTreeMap<String, String>) -> String {
    let inner: Vec<String> = labels.iter().map(|(k, v)| format!("{k}: {v}")).collect();
    format!("{{{}}}", inner.join(", "))
}

/// One Service port: (port, name, targetPort as YAML or empty).
fn port() -> impl Strategy<Value = (u16, &'static str, &'static str)> {
    (
        select(&[80u16, 8080, 9000][..]),
        select(&["http", "grpc", "tcp-db", "web"][..]),
        select(&["", "8080", "9090", "http", "grpc", "missing"][..]),
    )
}

fn service(ns: usize, n: usize) -> impl Strategy<Value = String> {
    (labels(), proptest::collection::vec(port(), 1..=2)).prop_map(move |(selector, ports)| {
        let mut ports_yaml = String::new();
        let mut seen = Vec::new();
        for (i, (port, name, target)) in ports.iter().enumerate() {
            if seen.contains(port) {
                continue;
            }
            seen.push(*port);
            let target = match *target {
                "" => String::new(),
                t => format!(", targetPort: {t}"),
            };
            ports_yaml += &format!("  - {{name: {name}-{i}, port: {port}{target}}}\n");
        }
        format!(
            "apiVersion: v1\nkind: Service\nmetadata: {{name: s{n}, namespace: {}}}\nspec:\n  selector: {}\n  ports:\n{ports_yaml}",
            NAMESPACES[ns],
            flow(&selector)
        )
    })
}

fn workload(ns: usize, w: usize) -> impl Strategy<Value = String> {
    (labels(), any::<bool>(), any::<bool>()).prop_map(move |(labels, http, grpc)| {
        let mut ports = String::new();
        if http {
            ports += "  - {name: http, containerPort: 8081}\n";
        }
        if grpc {
            ports += "  - {name: grpc, containerPort: 9091}\n";
        }
        let ports = if ports.is_empty() {
            "  ports: []\n".to_string()
        } else {
            format!("  ports:\n{ports}")
        };
        format!(
            "apiVersion: weft.dev/v1alpha1\nkind: Workload\nmetadata: {{name: {}, namespace: {}, labels: {}}}\nspec:\n  command: [app]\n{ports}",
            WORKLOADS[w],
            NAMESPACES[ns],
            flow(&labels)
        )
    })
}

fn policy(ns: usize, n: usize) -> impl Strategy<Value = String> {
    labels().prop_map(move |selector| {
        format!(
            "apiVersion: weft.dev/v1alpha1\nkind: AuthorizationPolicy\nmetadata: {{name: ap{n}, namespace: {}}}\nspec:\n  selector: {{matchLabels: {}}}\n  rules:\n  - from: [{{source: {{namespaces: [a]}}}}]\n",
            NAMESPACES[ns],
            flow(&selector)
        )
    })
}

/// A configuration of three namespaces (one ambient, one out of the mesh), a few Workloads,
/// Services and AuthorizationPolicies.
fn mesh_config() -> impl Strategy<Value = String> {
    let services =
        proptest::collection::btree_set((0..3usize, 0..4usize), 1..=6).prop_flat_map(|ids| {
            ids.into_iter()
                .map(|(ns, n)| service(ns, n))
                .collect::<Vec<_>>()
        });
    let workloads =
        proptest::collection::btree_set((0..3usize, 0..2usize), 1..=4).prop_flat_map(|ids| {
            ids.into_iter()
                .map(|(ns, w)| workload(ns, w))
                .collect::<Vec<_>>()
        });
    let policies =
        proptest::collection::btree_set((0..3usize, 0..2usize), 0..=2).prop_flat_map(|ids| {
            ids.into_iter()
                .map(|(ns, n)| policy(ns, n))
                .collect::<Vec<_>>()
        });
    (services, workloads, policies).prop_map(|(s, w, p)| {
        let mut docs = vec![
            "apiVersion: v1\nkind: Namespace\nmetadata: {name: c, labels: {weft.dev/dataplane-mode: none}}\n".to_string(),
            "apiVersion: v1\nkind: Namespace\nmetadata: {name: b, labels: {weft.dev/dataplane-mode: ambient}}\n".to_string(),
        ];
        docs.extend(s);
        docs.extend(w);
        docs.extend(p);
        docs.join("---\n")
    })
}

fn pod() -> impl Strategy<Value = Pod> {
    (
        select(&IDS[..]),
        select(&NAMESPACES[..]),
        select(&NAMES[..]),
        select(&WORKLOADS[..]),
        select(&IPS[..]),
        prop_oneof![Just(BTreeMap::new()), labels()],
        any::<bool>(),
        any::<bool>(),
        select(&["", "node-a", "node-b"][..]),
        // Mostly ready: a pod that is not is known but no endpoint.
        prop_oneof![4 => Just(true), 1 => Just(false)],
    )
        .prop_map(
            |(id, ns, name, w, ip, labels, inbound, tunnel, node, ready)| Pod {
                id: id.into(),
                namespace: ns.into(),
                workload: w.into(),
                name: name.into(),
                ip: ip.parse().unwrap(),
                service_account: w.into(),
                labels,
                inbound: inbound.then(|| SocketAddr::from(([127, 0, 0, 1], 7000))),
                tunnel: tunnel.then(|| SocketAddr::from(([127, 0, 0, 1], 7001))),
                node: node.into(),
                ready,
            },
        )
}

#[derive(Debug, Clone)]
enum Op {
    Set(Box<Pod>),
    Remove(&'static str),
    /// A new configuration: one of the run's configurations, or a fresh one.
    Configure(usize),
    ConfigureNew(String),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        6 => pod().prop_map(|p| Op::Set(Box::new(p))),
        2 => select(&["p0", "p1", "p2", "p3", "p4", "p5", "unknown"][..]).prop_map(Op::Remove),
        1 => (0..3usize).prop_map(Op::Configure),
        1 => mesh_config().prop_map(Op::ConfigureNew),
    ]
}

/// A configuration like `base` with one of its Services' selectors, ports, routes or policies
/// changed (so most of it stays the same, as in a real edit).
fn edited(base: String) -> impl Strategy<Value = String> {
    let docs: Vec<String> = base.split("---\n").map(String::from).collect();
    let n = docs.len();
    (0..n, 0..4usize, labels()).prop_map(move |(i, how, labels)| {
        let mut docs = docs.clone();
        let d = &mut docs[i];
        match how {
            0 if d.contains("selector: {") && !d.contains("matchLabels") => {
                let start = d.find("selector: ").unwrap();
                let end = start + d[start..].find('\n').unwrap();
                d.replace_range(start..end, &format!("selector: {}", flow(&labels)));
            }
            1 => *d = d.replace("port: 80", "port: 81"),
            2 => *d = d.replace("name: http-0", "name: tcp-0"),
            _ => *d = d.replace("namespaces: [a]", "namespaces: [b]"),
        }
        docs.join("---\n")
    })
}

/// Three configurations for one run: a random one and two edits of it.
fn configs() -> impl Strategy<Value = Vec<String>> {
    mesh_config().prop_flat_map(|c| {
        (edited(c.clone()), edited(c.clone())).prop_map(move |(a, b)| vec![c.clone(), a, b])
    })
}

fn load(text: &str) -> Config {
    let out = parse_str("mesh.yaml", text);
    assert!(out.errors.is_empty(), "{:#?}\n{text}", out.errors);
    out.config
}

/// The inbound ports of `pod` found by walking every Service, as the proxy's configuration was
/// computed before the index existed.
fn scanned_inbound(s: &Snapshot, pod: &Pod) -> Vec<PortConfig> {
    let mut out: Vec<PortConfig> = Vec::new();
    for svc in s.services.values().filter(|s| s.namespace == pod.namespace) {
        for ep in svc.endpoints.iter().filter(|e| e.pod == pod.name) {
            for (svc_port, target) in &ep.ports {
                let protocol = svc.port(*svc_port).map_or(Protocol::Detect, |p| p.protocol);
                if !out.iter().any(|p| p.port == *target) {
                    out.push(PortConfig {
                        port: *target,
                        name: None,
                        protocol,
                    });
                }
            }
        }
    }
    out.sort_by_key(|p| p.port);
    out
}

/// Every address a test can ask about: the pods' and the Services' VIPs.
fn all_ips(s: &Snapshot) -> Vec<IpAddr> {
    let mut ips: Vec<IpAddr> = IPS.iter().map(|ip| ip.parse().unwrap()).collect();
    ips.extend(s.addresses.keys());
    ips
}

fn same_as_build(inc: &Snapshot, config: &Config, arrived: &[Pod]) -> Result<(), TestCaseError> {
    let full = Snapshot::build(config, arrived);
    prop_assert_eq!(&inc.services, &full.services);
    prop_assert_eq!(&inc.addresses, &full.addresses);
    prop_assert_eq!(&inc.pods, &full.pods);
    for ip in all_ips(&full) {
        prop_assert_eq!(inc.address(ip), full.address(ip), "address {}", ip);
    }
    for p in arrived {
        prop_assert_eq!(inc.pod(&p.id), Some(p));
        let proxy = inc.proxy(p);
        prop_assert_eq!(&proxy, &full.proxy(p));
        prop_assert_eq!(
            &proxy.inbound_ports,
            &scanned_inbound(&full, p),
            "pod {}",
            &p.id
        );
    }
    prop_assert_eq!(inc.current_pods().count(), arrived.len());
    Ok(())
}

/// What differs between `before` and `after` is reported as changed; what is unchanged stays
/// shared, encoding included.
fn changes_reported(before: &Snapshot, after: &Snapshot) -> Result<(), TestCaseError> {
    let since = before.generation();
    let services: Vec<&str> = after.changed_services(since).expect("known").collect();
    for key in before.services.keys() {
        if !after.services.contains_key(key) {
            prop_assert!(services.contains(&key.as_str()), "{} removed silently", key);
        }
    }
    for (key, svc) in &after.services {
        let Some(old) = before.services.get(key) else {
            prop_assert!(services.contains(&key.as_str()), "{} added silently", key);
            continue;
        };
        let encoded_before = before.encoded(key);
        if old != svc {
            prop_assert!(services.contains(&key.as_str()), "{} changed silently", key);
        } else if !services.contains(&key.as_str()) {
            prop_assert!(Arc::ptr_eq(old, svc), "{} copied though unchanged", key);
            let (a, b) = (encoded_before.unwrap(), after.encoded(key).unwrap());
            prop_assert!(Arc::ptr_eq(&a, &b), "{} encoded again", key);
        }
        let fresh = Encoded::of(&**svc).unwrap();
        prop_assert_eq!(&*after.encoded(key).unwrap(), &fresh);
    }
    let addresses: Vec<IpAddr> = after.changed_addresses(since).expect("known").collect();
    let mut ips = all_ips(after);
    ips.extend(all_ips(before));
    for ip in ips {
        if before.address(ip) != after.address(ip) {
            prop_assert!(addresses.contains(&ip), "{} changed silently", ip);
        }
    }
    let pods: Vec<&str> = after.changed_pods(since).expect("known").collect();
    for id in IDS {
        let (old, new) = (before.pod(id), after.pod(id));
        let proxy_changed = new.is_some_and(|p| before.proxy(p) != after.proxy(p));
        if old != new || proxy_changed {
            prop_assert!(pods.contains(&id), "{} changed silently", id);
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn incremental_snapshot_equals_a_full_build(
        texts in configs(),
        ops in proptest::collection::vec(op(), 1..24),
    ) {
        let mut config = load(&texts[0]);
        let mut inc = Snapshot::build(&config, &[]);
        // Pods in the order they arrived; a replaced pod keeps its place.
        let mut arrived: Vec<Pod> = Vec::new();
        let mut in_run = true;
        for op in ops {
            let before = inc.clone();
            match op {
                Op::Set(p) => {
                    match arrived.iter_mut().find(|a| a.id == p.id) {
                        Some(a) => *a = (*p).clone(),
                        None => arrived.push((*p).clone()),
                    }
                    inc.set_pod(*p);
                }
                Op::Remove(id) => {
                    arrived.retain(|a| a.id != id);
                    inc.remove_pod(id);
                }
                Op::Configure(i) => {
                    config = load(&texts[i]);
                    inc = inc.reconfigure(&config);
                    // The run's configurations differ only in Services and policies: from one
                    // to another is applied by what changed, not rebuilt.
                    if in_run {
                        prop_assert!(inc.changed_services(before.generation()).is_some());
                    }
                    in_run = true;
                }
                Op::ConfigureNew(text) => {
                    config = load(&text);
                    inc = inc.reconfigure(&config);
                    in_run = false;
                }
            }
            same_as_build(&inc, &config, &arrived)?;
            if before.generation() >= inc.generation() {
                prop_assert_eq!(before.generation(), inc.generation(), "generation went back");
            }
            // A reconfiguration that needed a full rebuild reports everything as changed.
            if inc.changed_services(before.generation()).is_some() {
                changes_reported(&before, &inc)?;
            }
        }
        let rebuilt = inc.rebuild(&config);
        prop_assert_eq!(&rebuilt.services, &inc.services);
        prop_assert!(rebuilt.changed_services(inc.generation()).is_none());
    }
}
