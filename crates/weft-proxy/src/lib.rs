//! The weft data plane. One engine, several roles (sidecar now; node, waypoint, gateway later).
//! Modules follow a connection: [`capture`] and [`detect`] at accept, [`outbound`] and
//! [`inbound`] listeners, [`route`] and [`filters`] per request, [`balance`] and [`pool`] to
//! reach an endpoint, [`forward`] to relay, [`xds`] and [`state`] for configuration, [`certs`]
//! for the workload certificate, [`admin`] for operators; [`app`] wires them.

pub mod access_log;
pub mod admin;
pub mod app;
pub mod balance;
pub mod body;
pub mod capture;
pub mod certs;
pub mod detect;
pub mod drain;
pub mod error;
pub mod filters;
pub mod forward;
pub mod inbound;
pub mod metrics;
pub mod outbound;
pub mod pool;
pub mod route;
mod serve;
pub mod state;
pub mod xds;

pub use app::{Bound, Config, Identity, build};
