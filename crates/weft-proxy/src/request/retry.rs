//! When an attempt is sent again, and after how long. Pure, and table-tested below: the
//! caller also asks the destination's retry budget before each retry.
//!
//! An answer is retried on its head only, before any of its body is passed on: on its HTTP
//! status, or, as Envoy does, on the `grpc-status` a trailers-only gRPC answer carries in its
//! head. A gRPC status that arrives in trailers, after a streamed body, is final.

use std::time::Duration;

use http::{HeaderMap, Method};
use weft_core::model::Retry;

use crate::error::ProxyError;

/// Backoff before the first retry when the policy sets none.
const DEFAULT_BACKOFF: Duration = Duration::from_millis(25);

/// The retry policy of one request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Policy {
    /// Attempts in all, the first included (1: no retries).
    pub attempts: u32,
    /// Response status codes that are tried again.
    pub codes: Vec<u16>,
    /// `grpc-status` codes of a response head that are tried again.
    pub grpc_codes: Vec<u32>,
    /// Wait before the first retry; doubled for each further one.
    pub backoff: Duration,
    /// Limit on each attempt.
    pub per_try_timeout: Option<Duration>,
}

impl Policy {
    /// The policy `retry` (none: one attempt) for a request that can (`replayable`) or cannot
    /// be sent twice.
    pub(crate) fn new(
        retry: Option<&Retry>,
        per_try_timeout: Option<Duration>,
        replayable: bool,
    ) -> Policy {
        let retries = retry.map_or(0, |r| r.attempts);
        Policy {
            attempts: if replayable { retries + 1 } else { 1 },
            codes: retry.map(|r| r.codes.clone()).unwrap_or_default(),
            grpc_codes: retry.map(|r| r.grpc_codes.clone()).unwrap_or_default(),
            backoff: retry.map_or(DEFAULT_BACKOFF, |r| r.backoff.as_std()),
            per_try_timeout,
        }
    }

    /// Whether attempt number `attempt` (from 1), answered with `status` and the response
    /// head `headers`, is tried again.
    pub(crate) fn again_after_status(
        &self,
        attempt: u32,
        status: u16,
        headers: &HeaderMap,
    ) -> bool {
        attempt < self.attempts
            && (self.codes.contains(&status)
                || grpc_status(headers).is_some_and(|c| self.grpc_codes.contains(&c)))
    }

    /// Whether attempt number `attempt` of a `method` request, failed with `e`, is tried
    /// again: only where [`ProxyError::may_retry`] says it is safe.
    pub(crate) fn again_after_error(&self, attempt: u32, e: &ProxyError, method: &Method) -> bool {
        attempt < self.attempts && e.may_retry(method)
    }

    /// The wait after attempt number `attempt`: the backoff doubled per retry (at most 8
    /// times), plus `jitter` (from 0 to 1) of half of it.
    pub(crate) fn backoff(&self, attempt: u32, jitter: f64) -> Duration {
        let d = self.backoff * 2u32.saturating_pow(attempt.saturating_sub(1)).min(8);
        d + d.mul_f64(jitter.clamp(0.0, 1.0) / 2.0)
    }
}

/// The `grpc-status` of a response head: present in a trailers-only gRPC answer.
fn grpc_status(headers: &HeaderMap) -> Option<u32> {
    headers
        .get("grpc-status")?
        .to_str()
        .ok()?
        .trim()
        .parse()
        .ok()
}

#[cfg(test)]
mod tests {
    use weft_core::duration::Duration as ModelDuration;

    use super::*;
    use crate::error::Kind;

    fn policy(attempts: u32, codes: &[u16], replayable: bool) -> Policy {
        grpc_policy(attempts, codes, &[], replayable)
    }

    fn grpc_policy(attempts: u32, codes: &[u16], grpc: &[u32], replayable: bool) -> Policy {
        let retry = Retry {
            attempts,
            codes: codes.to_vec(),
            grpc_codes: grpc.to_vec(),
            backoff: ModelDuration::from_millis(10),
        };
        Policy::new(Some(&retry), None, replayable)
    }

    /// A response head with these headers.
    fn head(headers: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in headers {
            h.append(*k, http::HeaderValue::from_static(v));
        }
        h
    }

    #[test]
    fn a_request_with_a_body_or_an_upgrade_gets_one_attempt() {
        assert_eq!(policy(2, &[503], true).attempts, 3);
        assert_eq!(policy(2, &[503], false).attempts, 1);
        assert_eq!(Policy::new(None, None, true).attempts, 1);
        assert!(!policy(2, &[503], false).again_after_status(1, 503, &head(&[])));
        let grpc = [("grpc-status", "14")];
        assert!(!grpc_policy(2, &[], &[14], false).again_after_status(1, 200, &head(&grpc)));
    }

    #[test]
    fn statuses_are_retried_only_when_listed_and_attempts_remain() {
        let p = policy(2, &[503, 429], true);
        let none = head(&[]);
        assert!(p.again_after_status(1, 503, &none));
        assert!(p.again_after_status(2, 429, &none));
        assert!(
            !p.again_after_status(3, 503, &none),
            "the last attempt is final"
        );
        assert!(!p.again_after_status(1, 500, &none));
        assert!(!p.again_after_status(1, 200, &none));
    }

    #[test]
    fn grpc_statuses_in_the_head_are_retried_only_when_listed_and_attempts_remain() {
        // unavailable, resource-exhausted; 503 as a status code.
        let p = grpc_policy(2, &[503], &[8, 14], true);
        let ct = ("content-type", "application/grpc");
        // (attempt, status, head, retried)
        let cases = [
            (1, 200, head(&[ct, ("grpc-status", "14")]), true),
            (2, 200, head(&[ct, ("grpc-status", "8")]), true),
            (3, 200, head(&[ct, ("grpc-status", "14")]), false),
            (1, 200, head(&[ct, ("grpc-status", "5")]), false),
            (1, 200, head(&[ct, ("grpc-status", "0")]), false),
            (1, 200, head(&[ct]), false),
            (1, 200, head(&[ct, ("grpc-status", " 14 ")]), true),
            (1, 200, head(&[ct, ("grpc-status", "unavailable")]), false),
            (1, 200, head(&[ct, ("grpc-status", "-14")]), false),
            (1, 503, head(&[ct, ("grpc-status", "0")]), true),
        ];
        for (attempt, status, h, retried) in cases {
            assert_eq!(
                p.again_after_status(attempt, status, &h),
                retried,
                "{attempt} {status} {h:?}"
            );
        }
        let statuses_only = policy(2, &[503], true);
        let unavailable = head(&[ct, ("grpc-status", "14")]);
        assert!(!statuses_only.again_after_status(1, 200, &unavailable));
        assert!(!Policy::new(None, None, true).again_after_status(1, 200, &unavailable));
    }

    #[test]
    fn errors_are_retried_only_when_the_request_cannot_have_been_seen_twice() {
        let p = policy(1, &[], true);
        let (get, post) = (Method::GET, Method::POST);
        let e = |k: Kind| ProxyError::from(k);
        let ep = || "198.18.0.5:8080".to_string();
        // (error, reused connection, POST retried, GET retried)
        let cases = [
            (e(Kind::ConnectRefused(ep())), false, true, true),
            (e(Kind::ConnectTimeout(ep())), false, true, true),
            (e(Kind::Connect(ep())), false, true, true),
            (e(Kind::Tunnel("TLS handshake".into())), false, true, true),
            (e(Kind::NotSent(ep())), false, true, true),
            (e(Kind::UpstreamReset(ep())), false, false, true),
            (e(Kind::UpstreamReset(ep())), true, true, true),
            (e(Kind::Timeout), false, false, true),
            (e(Kind::Timeout), true, false, true),
            (e(Kind::BadRequest("path".into())), false, false, false),
            (e(Kind::Denied("policy".into())), false, false, false),
            (
                e(Kind::NoHealthyEndpoint("shop/web".into())),
                false,
                false,
                false,
            ),
        ];
        for (err, reused, post_ok, get_ok) in cases {
            let err = err.on_reused(reused);
            assert_eq!(p.again_after_error(1, &err, &post), post_ok, "POST {err:?}");
            assert_eq!(p.again_after_error(1, &err, &get), get_ok, "GET {err:?}");
            assert!(
                !p.again_after_error(2, &err, &get),
                "no attempts left: {err:?}"
            );
        }
    }

    #[test]
    fn backoff_doubles_up_to_eight_times_with_up_to_half_again_of_jitter() {
        let p = policy(10, &[], true);
        let ms = |d: Duration| d.as_millis();
        assert_eq!(ms(p.backoff(1, 0.0)), 10);
        assert_eq!(ms(p.backoff(2, 0.0)), 20);
        assert_eq!(ms(p.backoff(4, 0.0)), 80);
        assert_eq!(ms(p.backoff(9, 0.0)), 80);
        assert_eq!(ms(p.backoff(1, 1.0)), 15);
        assert_eq!(ms(p.backoff(4, 0.5)), 100);
        assert_eq!(ms(Policy::new(None, None, true).backoff(1, 0.0)), 25);
    }
}
