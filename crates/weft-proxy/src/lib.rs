//! The weft data plane. One [`engine`], several roles, each wired in one file: the
//! [`sidecar`], the ingress [`gateway`], ambient mode's [`node`] proxy and [`waypoint`].
//!
//! Modules follow a connection: [`capture`] and [`detect`] at accept; the [`outbound`],
//! [`inbound`] and gateway listeners; an HTTP [`request`]'s journey (table, pure plan with
//! [`route`] and [`filters`], execute with [`retry`](request::retry)), the destination's
//! [`ratelimit`]; [`balance`] and
//! [`pool`] to reach an endpoint (over the mTLS [`tunnel`] to meshed endpoints, with
//! [`connect`]); [`forward`] to relay; [`error`] says where it failed; [`record`],
//! [`access_log`], [`metrics`] and [`tap`] tell about it, and [`trace`] propagates the trace
//! context and exports spans. [`xds`] and [`state`] hold the configuration
//! from the [`control`] plane, [`certs`] the workload certificate, [`admin`] serves operators;
//! [`shared`] is what every connection of a proxy shares.

pub(crate) mod access_log;
pub(crate) mod admin;
pub(crate) mod authority;
pub(crate) mod balance;
pub(crate) mod body;
pub(crate) mod capture;
pub mod certs;
pub(crate) mod connect;
pub mod control;
pub(crate) mod detect;
pub(crate) mod drain;
pub mod engine;
pub mod error;
pub(crate) mod filters;
pub(crate) mod forward;
pub mod gateway;
pub mod handoff;
pub(crate) mod inbound;
pub(crate) mod io;
pub(crate) mod metrics;
pub mod netns;
pub mod node;
pub(crate) mod outbound;
pub(crate) mod pool;
pub(crate) mod ratelimit;
pub(crate) mod record;
pub(crate) mod request;
pub mod route;
pub(crate) mod serve;
pub(crate) mod shared;
pub mod sidecar;
pub(crate) mod state;
pub(crate) mod tally;
pub mod tap;
pub mod trace;
pub mod tunnel;
pub mod waypoint;
pub(crate) mod xds;

pub use engine::{BindError, Identity, Settings};
pub use shared::SetLogLevel;
pub use sidecar::{Bound, Config, build};
