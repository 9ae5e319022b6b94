//! The mTLS tunnel between proxies (the HBONE pattern): one TLS 1.3 connection per peer pair on
//! port 15008, carrying HTTP/2 CONNECT streams whose target is the original destination. Both
//! ends prove a SPIFFE identity; the client also checks the server's is one the destination
//! may have, and the server hands each stream on with the client's identity for policy and
//! telemetry, and with the workload the client names for metrics ([`peer`]).

mod client;
pub mod peer;
mod server;
pub mod tls;

pub use client::{Client, Stream};
pub use server::{Accepted, OnRefused, run};
pub use tls::Credentials;

/// The conventional tunnel port.
pub const PORT: u16 = 15008;

/// HTTP/2 flow-control windows: large enough that one stream can fill a fast link.
const STREAM_WINDOW: u32 = 1024 * 1024;
const CONNECTION_WINDOW: u32 = 4 * 1024 * 1024;

#[cfg(test)]
mod tests;
