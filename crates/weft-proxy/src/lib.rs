//! The weft data plane. One engine, several roles (sidecar now; node, waypoint, gateway later).
//! Modules follow a connection: [`capture`] and [`detect`] at accept, [`outbound`] and
//! [`inbound`] listeners, [`route`] and [`filters`] per request, [`balance`] to pick an
//! endpoint, [`xds`] and [`state`] for configuration, [`admin`] for operators.

pub mod balance;
pub mod filters;
pub mod route;
