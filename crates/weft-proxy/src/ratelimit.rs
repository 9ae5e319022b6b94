//! Local rate limiting: a TrafficPolicy's `localRateLimit`, one token bucket per Service on
//! each proxy that enforces it (a pod's sidecar, on inbound: a bucket per destination pod; a
//! waypoint: a bucket per waypoint instance). A request that finds the bucket empty is answered
//! as Envoy's `local_ratelimit` filter answers it: `429` with body `local_rate_limited` and
//! `x-local-rate-limit: true` (a gRPC request: `grpc-status` 14, UNAVAILABLE, which is what gRPC
//! makes of a 429), logged with stage `rate-limited` and flag `RL`.
//!
//! The bucket refills continuously, not in steps: a token comes back every `per / requests`,
//! and it holds at most `burst`. (Envoy adds `tokens_per_fill` at each `fill_interval`; over a
//! window both admit the same number, weft without the step at each interval.) Its state is a
//! single atomic — the time at which it will be full again (the generic cell rate algorithm) —
//! so taking a token is a compare-and-swap, with no lock and no allocation. Buckets are found by
//! Service under a read lock, written only when a Service's limit first appears or changes (a
//! changed limit starts a new, full bucket, as Envoy does on a config change).

use std::collections::{BTreeMap, HashMap};
use std::sync::RwLock;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use bytes::Bytes;
use http::{HeaderValue, Response, StatusCode};
use weft_core::resources::policy::LocalRateLimit;

use crate::body::{self, Body};
use crate::record::Record;

/// The stage a refused request is logged with (`weft-error`, `response_flags` RL).
pub const STAGE: &str = "rate-limited";
/// Set on every refused response, as Istio's examples configure Envoy's filter to do.
pub const HEADER: &str = "x-local-rate-limit";
/// The body of a refused HTTP response (and the `grpc-message` of a gRPC one), Envoy's.
const BODY: &str = "local_rate_limited";

/// One token bucket. Time is nanoseconds on a monotonic clock the caller reads.
#[derive(Debug)]
pub struct Bucket {
    limit: LocalRateLimit,
    /// Nanoseconds for one token to come back.
    interval: u64,
    /// Nanoseconds to fill the whole bucket: `capacity × interval`.
    size: u64,
    /// When the bucket will be full again (the theoretical arrival time); at or before now:
    /// full.
    full_at: AtomicU64,
}

impl Bucket {
    /// A full bucket for `limit` (whose `per` is at least `requests` nanoseconds: see
    /// [`LocalRateLimit::problem`]).
    pub fn new(limit: LocalRateLimit) -> Bucket {
        let per = u64::try_from(limit.per.as_std().as_nanos()).unwrap_or(u64::MAX);
        let interval = (per / u64::from(limit.requests.max(1))).max(1);
        Bucket {
            limit,
            interval,
            size: interval.saturating_mul(u64::from(limit.capacity().max(1))),
            full_at: AtomicU64::new(0),
        }
    }

    /// Takes a token at time `now`; false when there is none.
    pub fn try_take(&self, now: u64) -> bool {
        let mut current = self.full_at.load(Ordering::Relaxed);
        loop {
            let next = current.max(now).saturating_add(self.interval);
            if next - now > self.size {
                return false;
            }
            match self.full_at.compare_exchange_weak(
                current,
                next,
                Ordering::Relaxed,
                Ordering::Relaxed,
            ) {
                Ok(_) => return true,
                Err(seen) => current = seen,
            }
        }
    }
}

/// A proxy's buckets, by Service (`ns/name`).
#[derive(Debug)]
pub struct Limiter {
    start: Instant,
    buckets: RwLock<HashMap<String, Bucket>>,
}

impl Default for Limiter {
    fn default() -> Self {
        Limiter {
            start: Instant::now(),
            buckets: RwLock::default(),
        }
    }
}

impl Limiter {
    /// Whether a request to `service` may pass now, under `limits` (Service → its limit; a
    /// Service not listed has none).
    pub fn admit(&self, limits: &BTreeMap<String, LocalRateLimit>, service: &str) -> bool {
        let now = u64::try_from(self.start.elapsed().as_nanos()).unwrap_or(u64::MAX);
        self.admit_at(limits, service, now)
    }

    /// [`Limiter::admit`] at time `now` (nanoseconds since the limiter started).
    pub fn admit_at(
        &self,
        limits: &BTreeMap<String, LocalRateLimit>,
        service: &str,
        now: u64,
    ) -> bool {
        let Some(limit) = limits.get(service) else {
            return true;
        };
        {
            let buckets = self.buckets.read().unwrap_or_else(|e| e.into_inner());
            if let Some(b) = buckets.get(service).filter(|b| b.limit == *limit) {
                return b.try_take(now);
            }
        }
        let mut buckets = self.buckets.write().unwrap_or_else(|e| e.into_inner());
        // The limits changed: the buckets of Services that lost theirs go.
        buckets.retain(|k, _| limits.contains_key(k));
        let b = buckets
            .entry(service.to_string())
            .and_modify(|b| {
                if b.limit != *limit {
                    *b = Bucket::new(*limit);
                }
            })
            .or_insert_with(|| Bucket::new(*limit));
        b.try_take(now)
    }
}

/// Checks a request against the limit in `limits` of the Service its record names, if it has
/// one; the refusal when the bucket is empty, with the record marked.
pub fn check(
    limiter: &Limiter,
    limits: &BTreeMap<String, LocalRateLimit>,
    record: &mut Record,
) -> Option<Response<Body>> {
    if limits.is_empty() || limiter.admit(limits, record.service.as_deref()?) {
        return None;
    }
    record.error = Some(STAGE);
    Some(refusal(record.grpc))
}

/// The answer to a request over the limit.
pub fn refusal(grpc: bool) -> Response<Body> {
    let mut res = match grpc {
        // A gRPC error is a trailers-only response: 200 with the status in the headers.
        true => {
            let mut res = Response::new(body::empty());
            let h = res.headers_mut();
            h.insert(
                http::header::CONTENT_TYPE,
                HeaderValue::from_static("application/grpc"),
            );
            h.insert("grpc-status", HeaderValue::from(14u32));
            h.insert("grpc-message", HeaderValue::from_static(BODY));
            res
        }
        false => {
            let mut res = Response::new(body::full(Bytes::from_static(BODY.as_bytes())));
            *res.status_mut() = StatusCode::TOO_MANY_REQUESTS;
            res.headers_mut().insert(
                http::header::CONTENT_TYPE,
                HeaderValue::from_static("text/plain"),
            );
            res
        }
    };
    let h = res.headers_mut();
    h.insert(HEADER, HeaderValue::from_static("true"));
    h.insert(crate::error::ERROR_HEADER, HeaderValue::from_static(STAGE));
    res
}

#[cfg(test)]
mod tests;
