//! Endpoint selection for one Service: least request (power of two choices), round robin or
//! random over the endpoints that are not ejected, with outlier detection on consecutive
//! failures. A retry avoids the endpoints its request already tried ([`Tried`]) while another
//! is available, and draws on the Service's retry [`Budget`]. Shared across tasks; nothing here
//! awaits.

mod budget;
mod metrics;

pub use budget::{Budget, InFlight};
pub use metrics::{Metrics, ServiceMetrics};

use std::collections::HashMap;
use std::net::IpAddr;
use std::ops::Deref;
use std::sync::atomic::{AtomicU32, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use tokio::time::Instant;
use weft_core::model::{ClientPolicy, Endpoint};
use weft_core::resources::policy::LoadBalancerType;

/// Longest ejection, however many times an endpoint was ejected (unless the base is longer).
const MAX_EJECTION_TIME: Duration = Duration::from_secs(300);

/// Picks endpoints of one Service and tracks their health.
#[derive(Debug)]
pub struct Balancer {
    shared: Arc<Shared>,
    budget: Budget,
}

/// The endpoints one request already tried, for [`Balancer::pick_avoiding`].
#[derive(Debug, Default)]
pub struct Tried(Vec<Arc<State>>);

impl Tried {
    pub fn add(&mut self, pick: &Pick) {
        self.0.push(pick.slot.state.clone());
    }

    fn contains(&self, slot: &Slot) -> bool {
        self.0.iter().any(|s| Arc::ptr_eq(s, &slot.state))
    }
}

/// An endpoint chosen by [`Balancer::pick`]. Counts as an outstanding request until dropped;
/// report the outcome with [`Pick::success`] or [`Pick::failure`].
#[derive(Debug)]
pub struct Pick {
    slot: Arc<Slot>,
    shared: Arc<Shared>,
}

#[derive(Debug)]
struct Shared {
    kind: LoadBalancerType,
    consecutive_errors: u32,
    base_ejection_time: Duration,
    max_ejection_percent: u32,
    /// Origin of the ejection deadlines, in nanoseconds.
    epoch: Instant,
    next: AtomicUsize,
    slots: Mutex<Arc<[Arc<Slot>]>>,
    /// Held while deciding an ejection, so concurrent ejections respect the limit.
    ejecting: Mutex<()>,
    metrics: ServiceMetrics,
}

#[derive(Debug)]
struct Slot {
    endpoint: Endpoint,
    state: Arc<State>,
}

/// What survives [`Balancer::update`] for an endpoint that stays.
#[derive(Debug, Default)]
struct State {
    outstanding: AtomicUsize,
    consecutive_failures: AtomicU32,
    times_ejected: AtomicU32,
    /// Nanoseconds after `Shared::epoch`; ejected while in the future.
    ejected_until: AtomicU64,
}

type Key = (String, IpAddr);

fn key(e: &Endpoint) -> Key {
    (e.pod.clone(), e.address)
}

impl Balancer {
    #[cfg(test)]
    pub fn new(kind: LoadBalancerType, policy: &ClientPolicy, endpoints: Vec<Endpoint>) -> Self {
        Balancer::with_metrics(kind, policy, endpoints, ServiceMetrics::default())
    }

    /// A balancer that counts ejections and picks without a healthy endpoint in `metrics`.
    pub fn with_metrics(
        kind: LoadBalancerType,
        policy: &ClientPolicy,
        endpoints: Vec<Endpoint>,
        metrics: ServiceMetrics,
    ) -> Self {
        let shared = Shared {
            kind,
            consecutive_errors: policy.consecutive_errors,
            base_ejection_time: policy.base_ejection_time.as_std(),
            max_ejection_percent: policy.max_ejection_percent,
            epoch: Instant::now(),
            next: AtomicUsize::new(0),
            slots: Mutex::new(Arc::from(Vec::new())),
            ejecting: Mutex::new(()),
            metrics,
        };
        let b = Balancer {
            shared: Arc::new(shared),
            budget: Budget::default(),
        };
        b.update(endpoints);
        b
    }

    /// Replaces the endpoints. Those that stay (same pod name and address) keep their
    /// outstanding requests, failure count and ejection.
    pub fn update(&self, endpoints: Vec<Endpoint>) {
        let mut slots = self
            .shared
            .slots
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let old: HashMap<Key, Arc<State>> = slots
            .iter()
            .map(|s| (key(&s.endpoint), s.state.clone()))
            .collect();
        *slots = endpoints
            .into_iter()
            .map(|endpoint| {
                let state = old.get(&key(&endpoint)).cloned().unwrap_or_default();
                Arc::new(Slot { endpoint, state })
            })
            .collect();
    }

    /// The current endpoints.
    #[cfg(test)]
    pub fn endpoints(&self) -> Vec<Endpoint> {
        self.shared
            .snapshot()
            .iter()
            .map(|s| s.endpoint.clone())
            .collect()
    }

    /// Endpoints currently ejected.
    pub fn ejected(&self) -> Vec<Endpoint> {
        let now = self.shared.now();
        let slots = self.shared.snapshot();
        let out = slots.iter().filter(|s| s.state.ejected(now));
        out.map(|s| s.endpoint.clone()).collect()
    }

    /// The retry budget of this Service.
    pub fn budget(&self) -> &Budget {
        &self.budget
    }

    /// An endpoint for the next request; `None` only when there are no endpoints. Ejected
    /// endpoints are skipped unless all are ejected.
    pub fn pick(&self) -> Option<Pick> {
        self.pick_avoiding(&Tried::default())
    }

    /// Like [`Balancer::pick`], for a retry: an endpoint not in `tried` when one that is not
    /// ejected is left; else as `pick`.
    pub fn pick_avoiding(&self, tried: &Tried) -> Option<Pick> {
        let slots = self.shared.snapshot();
        let now = self.shared.now();
        let healthy = |s: &Slot| !s.state.ejected(now);
        let fresh = |s: &Slot| healthy(s) && !tried.contains(s);
        let count = |f: &dyn Fn(&Slot) -> bool| slots.iter().filter(|s| f(s)).count();
        // Untried and not ejected; else not ejected; else all rather than fail.
        let (eligible, n): (&dyn Fn(&Slot) -> bool, usize) = match count(&fresh) {
            0 => match count(&healthy) {
                0 => {
                    self.shared.metrics.no_healthy.inc();
                    (&|_| true, slots.len())
                }
                n => (&healthy, n),
            },
            n => (&fresh, n),
        };
        let nth = |i: usize| {
            if n == slots.len() {
                return &slots[i];
            }
            let mut candidates = slots.iter().filter(|s| eligible(s));
            // Another task may have ejected one meanwhile.
            candidates.nth(i).unwrap_or(&slots[i])
        };
        let chosen = match (self.shared.kind, n) {
            (_, 0) => return None,
            (_, 1) => nth(0),
            (LoadBalancerType::LeastRequest, _) => {
                // Two distinct candidates, uniformly.
                let i = fastrand::usize(..n);
                let j = fastrand::usize(..n - 1);
                let (a, b) = (nth(i), nth(if j == i { n - 1 } else { j }));
                let load = |s: &Slot| s.state.outstanding.load(Ordering::Relaxed);
                if load(b) < load(a) { b } else { a }
            }
            (LoadBalancerType::RoundRobin, _) => {
                nth(self.shared.next.fetch_add(1, Ordering::Relaxed) % n)
            }
            (LoadBalancerType::Random, _) => nth(fastrand::usize(..n)),
        };
        chosen.state.outstanding.fetch_add(1, Ordering::Relaxed);
        Some(Pick {
            slot: chosen.clone(),
            shared: self.shared.clone(),
        })
    }
}

impl Shared {
    fn snapshot(&self) -> Arc<[Arc<Slot>]> {
        self.slots
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    fn now(&self) -> u64 {
        nanos(Instant::now().saturating_duration_since(self.epoch))
    }

    /// Ejects `state` after too many failures, if the ejection limit allows it.
    fn maybe_eject(&self, state: &Arc<State>) {
        let _guard = self.ejecting.lock().unwrap_or_else(PoisonError::into_inner);
        let now = self.now();
        if state.ejected(now) {
            return;
        }
        let slots = self.snapshot();
        if !slots.iter().any(|s| Arc::ptr_eq(&s.state, state)) {
            return; // Removed meanwhile.
        }
        let n = slots.len();
        let ejected = slots.iter().filter(|s| s.state.ejected(now)).count();
        if ejected >= allowed_ejections(n, self.max_ejection_percent) {
            return;
        }
        let base = self.base_ejection_time;
        // An endpoint healthy for as long as its last ejection lasted starts over.
        let mut times = state.times_ejected.load(Ordering::Relaxed);
        let last = ejection_time(base, times);
        let until = state.ejected_until.load(Ordering::Relaxed);
        if times > 0 && now >= until.saturating_add(nanos(last)) {
            times = 0;
        }
        times += 1;
        state.times_ejected.store(times, Ordering::Relaxed);
        let duration = nanos(ejection_time(base, times));
        state
            .ejected_until
            .store(now.saturating_add(duration), Ordering::Relaxed);
        state.consecutive_failures.store(0, Ordering::Relaxed);
        self.metrics.ejections.inc();
    }
}

/// How many of `n` endpoints may be ejected at once: none of a single endpoint, else at least
/// one and at most `percent`% (0% disables ejection).
fn allowed_ejections(n: usize, percent: u32) -> usize {
    if n < 2 || percent == 0 {
        return 0;
    }
    (n * percent.min(100) as usize / 100).max(1)
}

fn ejection_time(base: Duration, times: u32) -> Duration {
    base.saturating_mul(times).min(MAX_EJECTION_TIME.max(base))
}

fn nanos(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

impl State {
    fn ejected(&self, now: u64) -> bool {
        self.ejected_until.load(Ordering::Relaxed) > now
    }
}

impl Pick {
    #[cfg(test)]
    pub fn endpoint(&self) -> &Endpoint {
        &self.slot.endpoint
    }

    /// The request succeeded: the endpoint's failure count starts over.
    pub fn success(self) {
        self.slot
            .state
            .consecutive_failures
            .store(0, Ordering::Relaxed);
    }

    /// The request failed (connection error or a 5xx the caller counts as one); enough in a
    /// row eject the endpoint.
    pub fn failure(self) {
        let threshold = self.shared.consecutive_errors;
        let state = &self.slot.state;
        let failures = state.consecutive_failures.fetch_add(1, Ordering::Relaxed) + 1;
        if threshold > 0 && failures >= threshold {
            self.shared.maybe_eject(state);
        }
    }
}

impl Deref for Pick {
    type Target = Endpoint;

    fn deref(&self) -> &Endpoint {
        &self.slot.endpoint
    }
}

impl Drop for Pick {
    fn drop(&mut self) {
        self.slot.state.outstanding.fetch_sub(1, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests;
