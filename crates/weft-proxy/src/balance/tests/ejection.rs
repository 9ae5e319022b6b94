//! Outlier detection and updates.

use super::*;

#[tokio::test(start_paused = true)]
async fn consecutive_failures_eject_until_the_time_is_up() {
    let b = balancer(LoadBalancerType::RoundRobin, 2);
    fail(&b, "pricing-1");
    fail(&b, "pricing-1");
    assert!(b.ejected().is_empty());
    fail(&b, "pricing-1");
    assert_eq!(pods(&b.ejected()), ["pricing-1"]);
    assert_eq!(count(&b, "pricing-1", 20), 0);

    tokio::time::advance(Duration::from_secs(9)).await;
    assert_eq!(count(&b, "pricing-1", 20), 0);
    tokio::time::advance(Duration::from_secs(1)).await;
    assert!(b.ejected().is_empty());
    assert_eq!(count(&b, "pricing-1", 20), 10);
}

#[tokio::test(start_paused = true)]
async fn ejection_time_grows_with_each_ejection() {
    let b = balancer(LoadBalancerType::RoundRobin, 2);
    for _ in 0..3 {
        fail(&b, "pricing-1");
    }
    tokio::time::advance(Duration::from_secs(10)).await;
    assert!(b.ejected().is_empty());
    // Ejected again right away: twice the base time.
    for _ in 0..3 {
        fail(&b, "pricing-1");
    }
    tokio::time::advance(Duration::from_secs(19)).await;
    assert_eq!(pods(&b.ejected()), ["pricing-1"]);
    tokio::time::advance(Duration::from_secs(1)).await;
    assert!(b.ejected().is_empty());
    // Healthy for as long as the last ejection lasted (20s): back to the base time.
    tokio::time::advance(Duration::from_secs(20)).await;
    for _ in 0..3 {
        fail(&b, "pricing-1");
    }
    tokio::time::advance(Duration::from_secs(10)).await;
    assert!(b.ejected().is_empty());
}

#[test]
fn ejection_time_is_capped() {
    let base = Duration::from_secs(30);
    assert_eq!(ejection_time(base, 2), Duration::from_secs(60));
    assert_eq!(ejection_time(base, 100), MAX_EJECTION_TIME);
    let long = Duration::from_secs(600);
    assert_eq!(ejection_time(long, 3), long);
}

#[test]
fn a_success_resets_the_failure_count() {
    let b = balancer(LoadBalancerType::RoundRobin, 2);
    for _ in 0..5 {
        fail(&b, "pricing-1");
        fail(&b, "pricing-1");
        // Success on pricing-1.
        loop {
            let p = b.pick().unwrap();
            if p.pod == "pricing-1" {
                p.success();
                break;
            }
        }
    }
    assert!(b.ejected().is_empty());
}

#[test]
fn a_pick_dropped_without_outcome_counts_as_neither() {
    let b = balancer(LoadBalancerType::RoundRobin, 2);
    fail(&b, "pricing-1");
    fail(&b, "pricing-1");
    for _ in 0..10 {
        drop(b.pick());
    }
    fail(&b, "pricing-1");
    assert_eq!(pods(&b.ejected()), ["pricing-1"]);
}

#[test]
fn ejections_respect_the_max_percent() {
    // 50% of 4: two may be ejected at once.
    let b = balancer(LoadBalancerType::RoundRobin, 4);
    for pod in ["pricing-1", "pricing-2", "pricing-3"] {
        for _ in 0..3 {
            fail(&b, pod);
        }
    }
    assert_eq!(pods(&b.ejected()), ["pricing-1", "pricing-2"]);
    // pricing-3 keeps failing but stays in.
    for _ in 0..10 {
        fail(&b, "pricing-3");
    }
    assert_eq!(b.ejected().len(), 2);
}

#[test]
fn allowed_ejections_by_size_and_percent() {
    assert_eq!(allowed_ejections(0, 50), 0);
    assert_eq!(allowed_ejections(1, 100), 0);
    assert_eq!(allowed_ejections(2, 10), 1);
    assert_eq!(allowed_ejections(3, 50), 1);
    assert_eq!(allowed_ejections(10, 50), 5);
    assert_eq!(allowed_ejections(10, 100), 10);
    assert_eq!(allowed_ejections(10, 250), 10);
    assert_eq!(allowed_ejections(10, 0), 0);
}

#[test]
fn a_single_endpoint_is_never_ejected() {
    let b = balancer(LoadBalancerType::LeastRequest, 1);
    for _ in 0..10 {
        fail(&b, "pricing-1");
    }
    assert!(b.ejected().is_empty());
}

#[test]
fn zero_consecutive_errors_disables_ejection() {
    let p = ClientPolicy {
        consecutive_errors: 0,
        ..policy()
    };
    let b = Balancer::new(LoadBalancerType::RoundRobin, &p, eps(2));
    for _ in 0..10 {
        fail(&b, "pricing-1");
    }
    assert!(b.ejected().is_empty());
}

#[test]
fn all_ejected_falls_back_to_every_endpoint() {
    let p = ClientPolicy {
        max_ejection_percent: 100,
        ..policy()
    };
    let b = Balancer::new(LoadBalancerType::LeastRequest, &p, eps(2));
    for pod in ["pricing-1", "pricing-2"] {
        for _ in 0..3 {
            fail(&b, pod);
        }
    }
    assert_eq!(b.ejected().len(), 2);
    let held: Vec<_> = (0..2).map(|_| b.pick().expect("panic mode")).collect();
    assert_ne!(held[0].pod, held[1].pod);
}

#[tokio::test(start_paused = true)]
async fn update_keeps_the_state_of_endpoints_that_stay() {
    let b = balancer(LoadBalancerType::LeastRequest, 3);
    for _ in 0..3 {
        fail(&b, "pricing-1");
    }
    fail(&b, "pricing-2");
    fail(&b, "pricing-2");
    let held = loop {
        let p = b.pick().unwrap();
        if p.pod == "pricing-3" {
            break p;
        }
    };
    // pricing-1 changes port mapping (still the same endpoint); pricing-4 is new; pricing-3
    // goes away.
    let mut one = ep(1);
    one.ports.insert(443, 8443);
    b.update(vec![one.clone(), ep(2), ep(4)]);
    assert_eq!(
        pods(&b.endpoints()),
        ["pricing-1", "pricing-2", "pricing-4"]
    );
    // Still ejected, with the new port mapping.
    assert_eq!(b.ejected(), [one]);
    // pricing-2 keeps its two failures: one more ejects it... but 50% of 3 is 1, already used.
    fail(&b, "pricing-2");
    assert_eq!(b.ejected().len(), 1);
    tokio::time::advance(Duration::from_secs(10)).await;
    assert!(b.ejected().is_empty());
    // Now there is room: pricing-2's counter carried over (4 failures, any one more ejects).
    fail(&b, "pricing-2");
    assert_eq!(pods(&b.ejected()), ["pricing-2"]);
    // The held pick on the removed endpoint still completes without effect.
    held.failure();
    assert_eq!(pods(&b.ejected()), ["pricing-2"]);
}

#[test]
fn update_keeps_outstanding_counts() {
    let b = balancer(LoadBalancerType::LeastRequest, 2);
    let held = b.pick().unwrap();
    let busy = held.pod.clone();
    b.update(eps(2));
    for _ in 0..20 {
        assert_ne!(b.pick().unwrap().pod, busy);
    }
    drop(held);
    b.update(eps(2));
    let state = b.shared.snapshot();
    assert!(
        state
            .iter()
            .all(|s| s.state.outstanding.load(Ordering::Relaxed) == 0)
    );
}

#[test]
fn the_same_pod_at_a_new_address_starts_fresh() {
    let b = balancer(LoadBalancerType::RoundRobin, 2);
    for _ in 0..3 {
        fail(&b, "pricing-1");
    }
    assert_eq!(b.ejected().len(), 1);
    let mut moved = ep(1);
    moved.address = "198.18.1.1".parse().unwrap();
    b.update(vec![moved, ep(2)]);
    assert!(b.ejected().is_empty());
}

#[test]
fn every_kind_skips_ejected_endpoints() {
    for kind in [
        LoadBalancerType::LeastRequest,
        LoadBalancerType::RoundRobin,
        LoadBalancerType::Random,
    ] {
        let b = balancer(kind, 4);
        for _ in 0..3 {
            fail(&b, "pricing-2");
        }
        assert_eq!(pods(&b.ejected()), ["pricing-2"]);
        let mut seen: BTreeMap<String, usize> = BTreeMap::new();
        for _ in 0..3_000 {
            *seen.entry(b.pick().unwrap().pod.clone()).or_default() += 1;
        }
        // About 1 000 each (sd 26 when random): 200 is far out of reach.
        assert_eq!(seen.len(), 3, "{kind:?}: {seen:?}");
        assert!(!seen.contains_key("pricing-2"), "{kind:?}");
        assert!(seen.values().all(|n| *n > 200), "{kind:?}: {seen:?}");
    }
}

#[test]
fn ejections_and_picks_without_a_healthy_endpoint_are_counted() {
    let mut registry = crate::metrics::registry();
    let metrics = Metrics::register(registry.sub_registry_with_prefix("balance"));
    let p = ClientPolicy {
        max_ejection_percent: 100,
        ..policy()
    };
    let kind = LoadBalancerType::RoundRobin;
    let b = Balancer::with_metrics(kind, &p, eps(2), metrics.service("shop/pricing"));
    let empty = Balancer::with_metrics(kind, &p, Vec::new(), metrics.service("shop/empty"));
    assert!(b.pick().is_some());
    for pod in ["pricing-1", "pricing-2"] {
        for _ in 0..3 {
            fail(&b, pod);
        }
    }
    assert!(b.pick().is_some(), "all ejected: one is picked anyway");
    assert!(empty.pick().is_none());
    let text = crate::metrics::encode(&registry);
    for line in [
        r#"weft_balance_ejections_total{service="shop/pricing"} 2"#,
        r#"weft_balance_no_healthy_endpoint_total{service="shop/pricing"} 1"#,
        r#"weft_balance_no_healthy_endpoint_total{service="shop/empty"} 1"#,
    ] {
        assert!(text.contains(line), "{line} not in {text}");
    }
}
