//! The retry budget of one destination Service, after Envoy's and Linkerd's: requests being
//! retried may be at most [`PERCENT`]% of the requests in progress plus [`MIN_RETRIES`], so
//! that when every endpoint fails, retries cannot multiply the load on them. A request counts
//! as in progress from its first attempt to its answer, and as being retried from its first
//! retry on.

use std::sync::atomic::{AtomicUsize, Ordering};

/// Share of the requests in progress that may be being retried.
pub const PERCENT: usize = 20;
/// Requests that may be being retried however few are in progress, so that a lone client
/// still gets its retries.
pub const MIN_RETRIES: usize = 3;

/// Requests in progress to one Service, and how many of them are being retried.
#[derive(Debug, Default)]
pub struct Budget {
    requests: AtomicUsize,
    retries: AtomicUsize,
}

/// One request in progress; see [`InFlight::retry`].
#[derive(Debug)]
pub struct InFlight<'a> {
    budget: &'a Budget,
    retrying: bool,
}

impl Budget {
    /// Counts a request in progress until the result is dropped.
    pub fn request(&self) -> InFlight<'_> {
        self.requests.fetch_add(1, Ordering::Relaxed);
        InFlight {
            budget: self,
            retrying: false,
        }
    }

    /// How many requests may be being retried now.
    fn allowed(&self) -> usize {
        MIN_RETRIES + self.requests.load(Ordering::Relaxed) * PERCENT / 100
    }
}

impl InFlight<'_> {
    /// Whether the request may be sent again. Once allowed, it counts as being retried until it
    /// ends, and its further retries are allowed too (they are sent one after the other).
    pub fn retry(&mut self) -> bool {
        if self.retrying {
            return true;
        }
        let allowed = self.budget.allowed();
        self.retrying = self
            .budget
            .retries
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |r| {
                (r < allowed).then_some(r + 1)
            })
            .is_ok();
        self.retrying
    }
}

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.budget.requests.fetch_sub(1, Ordering::Relaxed);
        if self.retrying {
            self.budget.retries.fetch_sub(1, Ordering::AcqRel);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_lone_request_may_always_retry() {
        let b = Budget::default();
        let mut r = b.request();
        assert!(r.retry());
        assert!(r.retry(), "its second retry too");
    }

    #[test]
    fn retries_are_limited_to_a_share_of_requests_plus_a_minimum() {
        let b = Budget::default();
        let mut reqs: Vec<InFlight<'_>> = (0..50).map(|_| b.request()).collect();
        // 3 + 20% of 50 = 13 of the 50 may be retried at once.
        let allowed = reqs
            .iter_mut()
            .filter_map(|r| r.retry().then_some(()))
            .count();
        assert_eq!(allowed, MIN_RETRIES + 10);
        assert!(!reqs[49].retry(), "still spent");
        // One being retried ends and a new request comes: the place is free for another.
        drop(reqs.remove(0));
        reqs.push(b.request());
        assert!(reqs[48].retry());
        assert!(!reqs[47].retry());
    }

    #[test]
    fn the_budget_follows_the_requests_in_progress() {
        let b = Budget::default();
        let mut first: Vec<InFlight<'_>> = (0..MIN_RETRIES).map(|_| b.request()).collect();
        assert!(first.iter_mut().all(|r| r.retry()));
        let mut late = b.request();
        assert!(
            !late.retry(),
            "the minimum is spent and 4 requests earn no more"
        );
        let more: Vec<InFlight<'_>> = (0..5).map(|_| b.request()).collect();
        assert!(late.retry(), "9 requests in progress earn one more");
        drop(more);
        drop(late);
        drop(first);
        assert_eq!(b.requests.load(Ordering::Relaxed), 0);
        assert_eq!(b.retries.load(Ordering::Relaxed), 0);
    }
}
