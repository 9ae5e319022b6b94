//! Waiting on a condition instead of sleeping for a while and hoping.
//!
//! [`eventually`] polls an async check until it holds, and [`eventually_blocking`] does the
//! same from a plain thread (the end-to-end tests). A check returns a [`Check`]: `bool`,
//! `Option<T>` or `Result<T, E>`; the value it holds is returned, and on timeout the panic names
//! `what` and the last state seen (the `Err`, so a check that returns `Err(state)` explains its
//! own failure). Both work on tokio's paused clock too: the poll interval is a tokio sleep.
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")] async fn main() {
//! use std::time::Duration;
//! use weft_test_support::wait::eventually;
//!
//! let mut n = 0;
//! let seen = eventually("n to reach 3", Duration::from_secs(5), async || {
//!     n += 1;
//!     if n >= 3 { Ok(n) } else { Err(format!("n is {n}")) }
//! })
//! .await;
//! assert_eq!(seen, 3);
//! # }
//! ```

use std::fmt::Display;
use std::time::{Duration, Instant};

/// How often a condition is checked again.
const POLL: Duration = Duration::from_millis(20);
/// How often a blocking check (usually a command) is run again.
const POLL_BLOCKING: Duration = Duration::from_millis(100);

/// The outcome of one check: holds (with a value) or not yet (with what was seen).
pub trait Check {
    type Value;
    fn check(self) -> Result<Self::Value, String>;
}

impl Check for bool {
    type Value = ();
    fn check(self) -> Result<(), String> {
        if self { Ok(()) } else { Err("false".into()) }
    }
}

impl<T> Check for Option<T> {
    type Value = T;
    fn check(self) -> Result<T, String> {
        self.ok_or_else(|| "None".into())
    }
}

impl<T, E: Display> Check for Result<T, E> {
    type Value = T;
    fn check(self) -> Result<T, String> {
        self.map_err(|e| e.to_string())
    }
}

/// Checks `f` until it holds and returns its value; panics naming `what` and the last state
/// seen once `timeout` has passed (a check still running then counts as not holding).
pub async fn eventually<C: Check>(
    what: &str,
    timeout: Duration,
    mut f: impl AsyncFnMut() -> C,
) -> C::Value {
    let deadline = tokio::time::Instant::now() + timeout;
    let mut last = String::from("no check finished");
    loop {
        match tokio::time::timeout_at(deadline, f()).await {
            Ok(c) => match c.check() {
                Ok(v) => return v,
                Err(seen) => last = seen,
            },
            Err(_) => break,
        }
        if tokio::time::Instant::now() >= deadline {
            break;
        }
        tokio::time::sleep(POLL).await;
    }
    panic!("{what}: not within {timeout:?}; last seen: {last}");
}

/// [`eventually`] for a plain thread: checks `f` until it holds; panics naming `what` and the
/// last state seen once `timeout` has passed.
#[track_caller]
pub fn eventually_blocking<C: Check>(
    what: &str,
    timeout: Duration,
    mut f: impl FnMut() -> C,
) -> C::Value {
    let deadline = Instant::now() + timeout;
    loop {
        let last = match f().check() {
            Ok(v) => return v,
            Err(seen) => seen,
        };
        if Instant::now() >= deadline {
            panic!("{what}: not within {timeout:?}; last seen: {last}");
        }
        std::thread::sleep(POLL_BLOCKING);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn returns_the_value_once_the_check_holds() {
        let mut n = 0;
        let got = eventually("n > 2", Duration::from_secs(1), async || {
            n += 1;
            (n > 2).then_some(n)
        })
        .await;
        assert_eq!(got, 3);
    }

    #[tokio::test(start_paused = true)]
    #[should_panic(expected = "the flag: not within 1s; last seen: flag is down")]
    async fn a_timeout_names_what_and_the_last_state() {
        eventually("the flag", Duration::from_secs(1), async || {
            Err::<(), _>("flag is down")
        })
        .await;
    }

    #[tokio::test(start_paused = true)]
    #[should_panic(expected = "a hung check: not within 1s; last seen: no check finished")]
    async fn a_check_that_hangs_times_out() {
        eventually("a hung check", Duration::from_secs(1), async || {
            std::future::pending::<bool>().await
        })
        .await;
    }

    #[test]
    fn blocking_returns_the_value_or_panics_with_the_last_state() {
        let mut n = 0;
        let got = eventually_blocking("n > 1", Duration::from_secs(5), || {
            n += 1;
            if n > 1 { Ok(n) } else { Err(n) }
        });
        assert_eq!(got, 2);
        let panic = std::panic::catch_unwind(|| {
            eventually_blocking("never", Duration::ZERO, || Err::<(), _>("still 0"))
        })
        .unwrap_err();
        let text = panic.downcast_ref::<String>().unwrap();
        assert!(
            text.contains("never: not within 0ns; last seen: still 0"),
            "{text}"
        );
    }
}
