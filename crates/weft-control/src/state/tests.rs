//! The state's pods: applied incrementally, equal to a full build, published in batches.

use std::collections::BTreeMap;
use std::time::Duration;

use weft_core::model::{Pod, Snapshot};

use super::*;

const SHOP: &str = "apiVersion: v1\nkind: Service\nmetadata: {name: web, namespace: shop}\nspec:\n  selector: {app: web}\n  ports: [{port: 80, targetPort: 8080}]\n---\napiVersion: v1\nkind: Service\nmetadata: {name: api, namespace: shop}\nspec:\n  selector: {tier: back}\n  ports: [{port: 90, targetPort: 9090}]\n";

fn config(yaml: &str) -> Config {
    let out = weft_core::parse_str("shop.yaml", yaml);
    assert!(out.is_ok(), "{:?}", out.errors);
    out.config
}

fn pod(name: &str, ip: u8, labels: &[(&str, &str)]) -> Pod {
    Pod {
        id: format!("{name}.shop"),
        namespace: "shop".into(),
        workload: name.trim_end_matches(char::is_numeric).into(),
        name: name.into(),
        ip: format!("198.18.0.{ip}").parse().unwrap(),
        service_account: "default".into(),
        labels: labels
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
        inbound: None,
        tunnel: None,
        node: String::new(),
        ready: true,
    }
}

/// What the streams would see, against a full build of `pods`.
fn assert_same(state: &State, pods: &[Pod]) {
    let published = state.snapshot().borrow().clone();
    let full = Snapshot::build(&state.inner().config, pods);
    assert_eq!(published.services, full.services);
    assert_eq!(published.pods, full.pods);
    for p in pods {
        assert_eq!(published.proxy(p), full.proxy(p), "{}", p.id);
    }
}

#[tokio::test(start_paused = true)]
async fn a_burst_of_joins_is_published_once_and_equals_a_full_build() {
    let state = State::new(config(SHOP), Duration::ZERO);
    let mut rx = state.snapshot();
    rx.borrow_and_update();
    let pods: Vec<Pod> = (1..=50)
        .map(|i| {
            let tier = if i % 2 == 0 { "back" } else { "front" };
            pod(&format!("web{i}"), i, &[("app", "web"), ("tier", tier)])
        })
        .collect();
    let mut last = 0;
    for (i, p) in pods.iter().enumerate() {
        last = state.add_pod(i as u64 + 1, p.clone());
    }
    assert!(
        !rx.has_changed().unwrap(),
        "published before the batch window closed"
    );
    rx.changed().await.unwrap();
    assert_eq!(
        rx.borrow_and_update().generation(),
        last,
        "one snapshot for the burst"
    );
    assert_same(&state, &pods);
    // One leaves, one changes its labels (a new stream announces it again).
    state.remove_pod("web3.shop", 3);
    state.add_pod(99, pod("web4", 4, &[("app", "web")]));
    rx.changed().await.unwrap();
    let mut now: Vec<Pod> = pods
        .iter()
        .filter(|p| p.id != "web3.shop")
        .cloned()
        .collect();
    now.retain(|p| p.id != "web4.shop");
    now.push(pod("web4", 4, &[("app", "web")]));
    assert_same(&state, &now);
    // A stale stream's close removes nothing its successor registered.
    state.remove_pod("web4.shop", 4);
    tokio::time::sleep(BATCH * 2).await;
    assert_same(&state, &now);
}

#[tokio::test(start_paused = true)]
async fn with_a_pods_file_only_listed_pods_count_and_keep_what_their_proxy_announced() {
    let state = State::new(config(SHOP), Duration::ZERO);
    let mut listed = vec![
        pod("web1", 1, &[("app", "web")]),
        pod("web2", 2, &[("app", "web")]),
    ];
    state.set_file_pods("pods.json", listed.clone());
    let mut announced = pod("web1", 1, &[("app", "web")]);
    announced.inbound = Some("198.18.0.1:15006".parse().unwrap());
    state.add_pod(1, announced.clone());
    // Announced but not listed (not ready yet): not an endpoint.
    state.add_pod(2, pod("web9", 9, &[("app", "web")]));
    tokio::time::sleep(BATCH * 2).await;
    listed[0].inbound = announced.inbound;
    assert_same(&state, &listed);
    // A config change rebuilds with the pods in force.
    let changed = config(&SHOP.replace("port: 80,", "port: 81,"));
    let findings = weft_core::analyze::analyze(&changed).findings;
    state.apply(changed, findings);
    assert_same(&state, &listed);
    assert!(
        state.snapshot().borrow().services["shop/web"]
            .port(81)
            .is_some()
    );
}

/// The endpoints as the control plane worked them out before it kept indexes: the reference
/// the incremental path must agree with.
fn reference(announced: &BTreeMap<String, Pod>, listed: Option<&[Pod]>) -> Vec<Pod> {
    let Some(listed) = listed else {
        return announced.values().cloned().collect();
    };
    let by_name: std::collections::HashMap<(&str, &str), &Pod> = (announced.values())
        .map(|p| ((p.namespace.as_str(), p.name.as_str()), p))
        .collect();
    let mut seen = std::collections::HashSet::new();
    (listed.iter())
        .filter(|p| seen.insert(p.id.clone()))
        .map(|p| {
            let mut pod = p.clone();
            let own = (announced.get(&p.id)).or_else(|| {
                by_name
                    .get(&(p.namespace.as_str(), p.name.as_str()))
                    .copied()
            });
            if let Some(a) = own {
                pod.inbound = a.inbound.or(pod.inbound);
                pod.tunnel = a.tunnel.or(pod.tunnel);
            }
            pod
        })
        .collect()
}

#[test]
fn random_joins_leaves_and_lists_agree_with_working_out_every_endpoint_again() {
    // No runtime: every change is published at once.
    let state = State::new(config(SHOP), Duration::ZERO);
    let mut announced: BTreeMap<String, Pod> = BTreeMap::new();
    let mut conns: BTreeMap<String, u64> = BTreeMap::new();
    let mut listed: Option<Vec<Pod>> = None;
    let mut rng = fastrand::Rng::with_seed(2026);
    let make = |rng: &mut fastrand::Rng| {
        let n = rng.u8(1..8);
        let labels: &[(&str, &str)] = match rng.u8(0..3) {
            0 => &[("app", "web")],
            1 => &[("app", "web"), ("tier", "back")],
            _ => &[("tier", "back")],
        };
        let mut p = pod(&format!("web{n}"), n, labels);
        if rng.bool() {
            // Another id than the listed one (matched by name), reused for other names.
            p.id = format!("alias{}.shop", rng.u8(0..3));
        }
        if rng.bool() {
            p.inbound = Some(
                format!("198.18.0.{n}:{}", 15000 + u16::from(rng.u8(0..3)))
                    .parse()
                    .unwrap(),
            );
        }
        p
    };
    for step in 0..400u64 {
        match rng.u8(0..10) {
            0..=4 => {
                let p = make(&mut rng);
                conns.insert(p.id.clone(), step);
                announced.insert(p.id.clone(), p.clone());
                state.add_pod(step, p);
            }
            5..=7 => {
                let Some(id) = announced
                    .keys()
                    .nth(rng.usize(0..announced.len().max(1)))
                    .cloned()
                else {
                    continue;
                };
                // Half the time a stale connection tries: nothing may change.
                let stale = rng.bool();
                let conn = if stale { u64::MAX } else { conns[&id] };
                state.remove_pod(&id, conn);
                if !stale {
                    announced.remove(&id);
                }
            }
            _ => {
                let list: Vec<Pod> = (0..rng.usize(0..6)).map(|_| make(&mut rng)).collect();
                state.set_file_pods("pods.json", list.clone());
                listed = Some(list);
            }
        }
        let want = reference(&announced, listed.as_deref());
        let published = state.snapshot().borrow().clone();
        let full = Snapshot::build(&state.inner().config, &want);
        assert_eq!(published.services, full.services, "step {step}");
        assert_eq!(published.pods, full.pods, "step {step}");
    }
}
