//! Helpers shared by weft's tests, so no test file keeps a copy of its own. A
//! `[dev-dependencies]` entry of the crates it serves (and a dependency of the end-to-end
//! harness `weft-e2e`, itself test code): nothing here is linked into a production binary.
//!
//! - [`wait`]: poll a condition until it holds ([`wait::eventually`], and
//!   [`wait::eventually_blocking`] for the end-to-end tests), never a sleep as synchronisation.
//! - [`http`]: one raw HTTP/1.1 GET client, async and blocking, with timeouts.
//! - [`ca`]: an in-memory root CA issuing workload certificates and signing CSRs.
//! - [`dir`]: a temporary directory unique to the test, removed on drop.
//! - [`log_line`]: what a line of a JSON log must be (flat, each key once), checked.
//!
//! It depends on no weft crate: a crate's own unit tests can use it without a second copy of
//! that crate's types. Adapters to a crate's traits (a proxy's `Issue` or `Credentials`) live
//! with that crate's tests.

pub mod ca;
pub mod dir;
pub mod exposition;
pub mod http;
pub mod log_line;
pub mod wait;
