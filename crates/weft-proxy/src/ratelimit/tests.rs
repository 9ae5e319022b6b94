use std::collections::BTreeMap;
use std::sync::Arc;

use super::*;

const SECOND: u64 = 1_000_000_000;

fn limit(requests: u32, per: &str, burst: Option<u32>) -> LocalRateLimit {
    LocalRateLimit {
        requests,
        per: per.parse().unwrap(),
        burst,
    }
}

/// How many of `n` takes at `now` succeed.
fn takes(b: &Bucket, n: usize, now: u64) -> usize {
    (0..n).filter(|_| b.try_take(now)).count()
}

#[test]
fn a_full_bucket_admits_its_size_then_one_per_interval() {
    let b = Bucket::new(limit(5, "1m", None));
    assert_eq!(takes(&b, 8, 0), 5);
    // One token comes back every 12 s, not all five at the end of the minute.
    assert_eq!(takes(&b, 3, 11 * SECOND), 0);
    assert_eq!(takes(&b, 3, 12 * SECOND), 1);
    assert_eq!(takes(&b, 3, 36 * SECOND), 2);
    // After a long quiet spell it holds no more than its size.
    assert_eq!(takes(&b, 20, 3600 * SECOND), 5);
}

#[test]
fn burst_sets_the_size_and_requests_per_the_rate() {
    let b = Bucket::new(limit(10, "1s", Some(25)));
    assert_eq!(takes(&b, 40, 5 * SECOND), 25);
    assert_eq!(takes(&b, 40, 5 * SECOND + SECOND / 2), 5);
    assert_eq!(takes(&b, 40, 7 * SECOND + SECOND / 2), 20);
}

#[test]
fn a_clock_that_steps_back_takes_nothing_extra() {
    let b = Bucket::new(limit(2, "1s", None));
    assert_eq!(takes(&b, 5, 10 * SECOND), 2);
    assert_eq!(takes(&b, 5, 9 * SECOND), 0);
}

#[test]
fn concurrent_takes_never_admit_more_than_the_bucket_holds() {
    let b = Arc::new(Bucket::new(limit(1000, "1h", None)));
    let threads: Vec<_> = (0..8)
        .map(|_| {
            let b = b.clone();
            std::thread::spawn(move || takes(&b, 500, 42))
        })
        .collect();
    let admitted: usize = threads.into_iter().map(|t| t.join().unwrap()).sum();
    assert_eq!(admitted, 1000);
}

#[test]
fn each_service_has_its_own_bucket_and_a_new_limit_a_new_one() {
    let l = Limiter::default();
    let five = limit(5, "1m", None);
    let admitted = |limits: &BTreeMap<String, LocalRateLimit>, service: &str, n: usize| {
        (0..n)
            .filter(|_| l.admit_at(limits, service, SECOND))
            .count()
    };
    let limits = BTreeMap::from([("shop/a".to_string(), five), ("shop/b".to_string(), five)]);
    assert_eq!(admitted(&limits, "shop/a", 7), 5);
    assert_eq!(admitted(&limits, "shop/b", 7), 5);
    assert_eq!(admitted(&limits, "shop/a", 1), 0);
    assert_eq!(admitted(&limits, "shop/c", 9), 9);
    // A raised limit starts a new, full bucket; the other Service's stays empty.
    let raised = BTreeMap::from([
        ("shop/a".to_string(), limit(20, "1m", None)),
        ("shop/b".to_string(), five),
    ]);
    assert_eq!(admitted(&raised, "shop/a", 30), 20);
    assert_eq!(admitted(&raised, "shop/b", 1), 0);
    // A Service whose limit went and came back starts afresh.
    let only_a = BTreeMap::from([("shop/a".to_string(), limit(30, "1m", None))]);
    assert_eq!(admitted(&only_a, "shop/b", 3), 3);
    assert_eq!(admitted(&only_a, "shop/a", 1), 1);
    assert_eq!(admitted(&limits, "shop/a", 9), 5);
    assert_eq!(admitted(&limits, "shop/b", 9), 5);
}

#[test]
fn only_a_service_with_a_limit_is_checked_and_a_refusal_is_envoys() {
    let l = Limiter::default();
    let limits = BTreeMap::from([("shop/a".to_string(), limit(1, "1h", None))]);
    let mut r = Record::new("inbound");
    for service in [None, Some("shop/b")] {
        r.service = service.map(str::to_string);
        assert!(check(&l, &limits, &mut r).is_none());
        assert!(check(&l, &limits, &mut r).is_none());
    }
    r.service = Some("shop/a".into());
    assert!(check(&l, &limits, &mut r).is_none());
    assert_eq!(r.error, None);
    let res = check(&l, &limits, &mut r).expect("refused");
    assert_eq!(res.status(), StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(res.headers()[HEADER], "true");
    assert_eq!(res.headers()[crate::error::ERROR_HEADER], STAGE);
    assert_eq!(r.error, Some(STAGE));
    let flags = crate::metrics::flags::of(&Record {
        status: Some(429),
        ..r
    });
    assert_eq!(flags, "RL");

    let grpc = refusal(true);
    assert_eq!(grpc.status(), StatusCode::OK);
    assert_eq!(grpc.headers()["grpc-status"], "14");
    assert_eq!(grpc.headers()["grpc-message"], BODY);
}
