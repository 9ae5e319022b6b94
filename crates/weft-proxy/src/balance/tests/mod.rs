use std::collections::BTreeMap;
use std::time::Duration;

use weft_core::duration::Duration as ConfigDuration;
use weft_core::model::{ClientPolicy, Endpoint};
use weft_core::resources::policy::LoadBalancerType;

use super::*;

fn ep(n: u8) -> Endpoint {
    Endpoint {
        pod: format!("pricing-{n}"),
        workload: "pricing".into(),
        namespace: "shop".into(),
        app: "pricing".into(),
        version: String::new(),
        address: format!("198.18.0.{n}").parse().unwrap(),
        ports: BTreeMap::from([(80, 8080)]),
        identity: "spiffe://shop.local/ns/shop/sa/pricing".into(),
        inbound: None,
        tunnel: None,
        waypoint: None,
    }
}

fn eps(n: u8) -> Vec<Endpoint> {
    (1..=n).map(ep).collect()
}

/// Eject after 3 failures for 10s × times ejected, at most 50%.
fn policy() -> ClientPolicy {
    ClientPolicy {
        consecutive_errors: 3,
        base_ejection_time: ConfigDuration::from_secs(10),
        max_ejection_percent: 50,
        ..ClientPolicy::default()
    }
}

fn balancer(kind: LoadBalancerType, n: u8) -> Balancer {
    Balancer::new(kind, &policy(), eps(n))
}

/// Picks until endpoint `pod` comes up, and fails it; panics if it never does.
fn fail(b: &Balancer, pod: &str) {
    for _ in 0..10_000 {
        let p = b.pick().unwrap();
        if p.pod == pod {
            p.failure();
            return;
        }
    }
    panic!("{pod} never picked");
}

fn pods(list: &[Endpoint]) -> Vec<&str> {
    list.iter().map(|e| e.pod.as_str()).collect()
}

/// How many of `draws` picks land on `pod`.
fn count(b: &Balancer, pod: &str, draws: usize) -> usize {
    (0..draws).filter(|_| b.pick().unwrap().pod == pod).count()
}

#[test]
fn balancer_is_send_and_sync() {
    fn check<T: Send + Sync + 'static>() {}
    check::<Balancer>();
    check::<Pick>();
}

#[test]
fn no_endpoints_no_pick() {
    for kind in [
        LoadBalancerType::LeastRequest,
        LoadBalancerType::RoundRobin,
        LoadBalancerType::Random,
    ] {
        assert!(Balancer::new(kind, &policy(), Vec::new()).pick().is_none());
    }
}

#[test]
fn a_single_endpoint_is_always_picked() {
    for kind in [
        LoadBalancerType::LeastRequest,
        LoadBalancerType::RoundRobin,
        LoadBalancerType::Random,
    ] {
        let b = balancer(kind, 1);
        let held: Vec<_> = (0..5).map(|_| b.pick().unwrap()).collect();
        assert!(held.iter().all(|p| p.endpoint() == &ep(1)));
    }
}

#[test]
fn least_request_prefers_the_less_loaded_endpoint() {
    // With two endpoints both are always compared: the one with fewer requests wins.
    let b = balancer(LoadBalancerType::LeastRequest, 2);
    let first = b.pick().unwrap();
    let busy = first.pod.clone();
    for _ in 0..50 {
        assert_ne!(b.pick().unwrap().pod, busy);
    }
    // Holding every pick: each goes to an endpoint with no more requests than the other, so
    // the loads never differ by more than one.
    let mut held = vec![first];
    for _ in 0..50 {
        let load = |pod: &str| held.iter().filter(|p| p.pod == pod).count();
        let (l1, l2) = (load("pricing-1"), load("pricing-2"));
        let p = b.pick().unwrap();
        let (mine, other) = if p.pod == "pricing-1" {
            (l1, l2)
        } else {
            (l2, l1)
        };
        assert!(mine <= other, "picked {} with {mine} vs {other}", p.pod);
        held.push(p);
    }
    let ones = held.iter().filter(|p| p.pod == "pricing-1").count();
    assert!(
        ones.abs_diff(held.len() - ones) <= 1,
        "{ones} of {}",
        held.len()
    );
}

#[test]
fn least_request_never_picks_the_single_most_loaded_endpoint() {
    let b = balancer(LoadBalancerType::LeastRequest, 4);
    let mut load: BTreeMap<String, usize> = (1..=4).map(|n| (ep(n).pod, 0)).collect();
    let mut held = Vec::new();
    for _ in 0..200 {
        let p = b.pick().unwrap();
        let mine = load[&p.pod];
        let others = load.iter().filter(|(pod, _)| **pod != p.pod);
        let most_of_others = others.map(|(_, l)| *l).max().unwrap();
        // It won against another endpoint, which had at least as many requests.
        assert!(mine <= most_of_others, "{load:?} → {}", p.pod);
        *load.get_mut(&p.pod).unwrap() += 1;
        held.push(p);
    }
    // Chance of an endpoint never being picked: below 2^-100.
    assert!(load.values().all(|l| *l > 0), "{load:?}");
}

#[test]
fn dropping_a_pick_releases_its_request() {
    let b = balancer(LoadBalancerType::LeastRequest, 2);
    drop(b.pick().unwrap());
    // Both idle again: the next two picks go to different endpoints.
    let q = b.pick().unwrap();
    let r = b.pick().unwrap();
    assert_ne!(q.pod, r.pod);
    let slots = b.shared.snapshot();
    let outstanding: usize = slots
        .iter()
        .map(|s| s.state.outstanding.load(Ordering::Relaxed))
        .sum();
    assert_eq!(outstanding, 2);
    q.success();
    r.failure();
    let outstanding: usize = slots
        .iter()
        .map(|s| s.state.outstanding.load(Ordering::Relaxed))
        .sum();
    assert_eq!(outstanding, 0);
}

#[test]
fn round_robin_cycles_through_the_endpoints() {
    let b = balancer(LoadBalancerType::RoundRobin, 3);
    let seq: Vec<String> = (0..9).map(|_| b.pick().unwrap().pod.clone()).collect();
    assert_eq!(&seq[0..3], &seq[3..6]);
    assert_eq!(&seq[3..6], &seq[6..9]);
    let mut first = seq[0..3].to_vec();
    first.sort();
    assert_eq!(first, ["pricing-1", "pricing-2", "pricing-3"]);
}

#[test]
fn random_reaches_every_endpoint_evenly() {
    // 9 000 draws at p = 1/3: sd is 45, so 2 600..3 400 is about nine sd either side.
    let b = balancer(LoadBalancerType::Random, 3);
    for pod in ["pricing-1", "pricing-2", "pricing-3"] {
        let n = count(&b, pod, 9_000);
        assert!((2_600..=3_400).contains(&n), "{pod}: {n}");
    }
}

#[test]
fn picks_work_across_threads() {
    let b = std::sync::Arc::new(balancer(LoadBalancerType::LeastRequest, 3));
    let threads: Vec<_> = (0..4)
        .map(|_| {
            let b = b.clone();
            std::thread::spawn(move || {
                for i in 0..1_000 {
                    let p = b.pick().unwrap();
                    if i % 2 == 0 { p.success() } else { drop(p) }
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    let slots = b.shared.snapshot();
    assert!(
        slots
            .iter()
            .all(|s| s.state.outstanding.load(Ordering::Relaxed) == 0)
    );
}

mod ejection;
mod retry;
