//! The retry predicate: a retry avoids the endpoints its request already tried.

use super::*;

const KINDS: [LoadBalancerType; 3] = [
    LoadBalancerType::LeastRequest,
    LoadBalancerType::RoundRobin,
    LoadBalancerType::Random,
];

/// One request's attempts: each picks avoiding the earlier ones and fails.
fn attempts(b: &Balancer, n: usize) -> Vec<String> {
    let mut tried = Tried::default();
    (0..n)
        .map(|_| {
            let p = b.pick_avoiding(&tried).unwrap();
            tried.add(&p);
            let pod = p.pod.clone();
            p.failure();
            pod
        })
        .collect()
}

#[test]
fn a_dead_endpoint_that_answers_fast_gets_the_first_try_but_not_the_retry() {
    // The finding: pricing-1 fails at once, so it never has requests outstanding, and least
    // request keeps choosing it over pricing-2, busy with a slow request.
    let b = balancer(LoadBalancerType::LeastRequest, 2);
    let slow = loop {
        let p = b.pick().unwrap();
        if p.pod == "pricing-2" {
            break p;
        }
    };
    for _ in 0..20 {
        let mut tried = Tried::default();
        let first = b.pick_avoiding(&tried).unwrap();
        assert_eq!(first.pod, "pricing-1");
        tried.add(&first);
        first.success(); // Not failed: no ejection meanwhile.
        let retry = b.pick_avoiding(&tried).unwrap();
        assert_eq!(
            retry.pod, "pricing-2",
            "the retry goes to the other endpoint"
        );
    }
    drop(slow);
}

#[test]
fn retries_go_to_endpoints_not_yet_tried_whatever_the_balancing() {
    for kind in KINDS {
        for _ in 0..50 {
            let b = balancer(kind, 3);
            let mut seen = attempts(&b, 3);
            seen.sort();
            assert_eq!(seen, ["pricing-1", "pricing-2", "pricing-3"], "{kind:?}");
        }
    }
}

#[test]
fn with_every_endpoint_tried_a_retry_still_gets_one() {
    for kind in KINDS {
        let b = Balancer::new(
            kind,
            &ClientPolicy {
                consecutive_errors: 0,
                ..policy()
            },
            eps(2),
        );
        let seen = attempts(&b, 3);
        assert_ne!(seen[0], seen[1], "{kind:?}");
        assert_eq!(seen.len(), 3);
    }
}

#[test]
fn an_ejected_endpoint_is_not_preferred_to_one_already_tried() {
    let b = balancer(LoadBalancerType::RoundRobin, 2);
    for _ in 0..3 {
        fail(&b, "pricing-1");
    }
    assert_eq!(pods(&b.ejected()), ["pricing-1"]);
    let mut tried = Tried::default();
    let first = b.pick_avoiding(&tried).unwrap();
    assert_eq!(first.pod, "pricing-2");
    tried.add(&first);
    assert_eq!(b.pick_avoiding(&tried).unwrap().pod, "pricing-2");
}

#[test]
fn an_endpoint_tried_stays_avoided_across_an_update() {
    let b = balancer(LoadBalancerType::RoundRobin, 2);
    let mut tried = Tried::default();
    let first = b.pick_avoiding(&tried).unwrap();
    tried.add(&first);
    let pod = first.pod.clone();
    // The same endpoints arrive again, in the other order, with a third.
    b.update(vec![ep(3), ep(2), ep(1)]);
    for _ in 0..10 {
        assert_ne!(b.pick_avoiding(&tried).unwrap().pod, pod);
    }
}
