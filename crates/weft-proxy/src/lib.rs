//! The weft data plane. One engine, several roles: sidecar ([`app`]) and ingress [`gateway`]
//! now; node and waypoint later. Modules follow a connection: [`capture`] and [`detect`] at
//! accept, [`outbound`], [`inbound`] and [`gateway`] listeners, [`route`] and [`filters`] per
//! request, [`balance`] and [`pool`] to reach an endpoint (over the mTLS [`tunnel`] to meshed
//! endpoints), [`forward`] to relay, [`xds`] and [`state`] for configuration over the
//! [`control`] channel, [`certs`] for the
//! workload certificate, [`admin`] for operators; [`app`] wires them.

pub mod access_log;
pub mod admin;
pub mod app;
pub mod authority;
pub mod balance;
pub mod body;
pub mod capture;
pub mod certs;
pub mod connect;
pub mod control;
pub mod detect;
pub mod drain;
pub mod error;
pub mod filters;
pub mod forward;
pub mod gateway;
pub mod inbound;
pub mod io;
pub mod metrics;
pub mod outbound;
pub mod pool;
pub mod record;
pub(crate) mod request;
pub mod route;
mod serve;
pub mod shared;
pub mod state;
pub mod tunnel;
pub mod xds;

pub use app::{Bound, Config, Identity, build};
