//! The conventional ports of a weft mesh, in one place: the CLI's defaults, the local
//! runtime's launch contract and its capture rules all name them from here. The proxy ports
//! are [`weft_core::model`]'s, which the control plane's view of a proxy's listeners states.
//!
//! | port  | who             | what                                           |
//! |-------|-----------------|------------------------------------------------|
//! | 15000 | proxy           | admin (localhost only)                         |
//! | 15001 | proxy (sidecar) | outbound listener, captured app connections    |
//! | 15006 | proxy (sidecar) | inbound listener, captured peer connections    |
//! | 15008 | proxy           | mTLS tunnel (HTTP/2 CONNECT) from peer proxies |
//! | 15010 | control plane   | plaintext discovery and CA (loopback only)     |
//! | 15012 | control plane   | mTLS discovery and CA for proxies              |
//! | 15014 | control plane   | admin and debug API                            |
//! | 15020 | proxy           | Prometheus metrics                             |
//! | 15021 | proxy           | readiness (`/healthz/ready`)                   |

use std::net::{Ipv4Addr, SocketAddr};

/// Proxy admin API.
pub const PROXY_ADMIN: u16 = weft_core::model::ADMIN_PORT;
/// Sidecar's outbound listener: capture sends the app's connections here.
pub const OUTBOUND: u16 = weft_core::model::OUTBOUND_PORT;
/// Sidecar's inbound listener: capture sends connections to the pod here.
pub const INBOUND: u16 = weft_core::model::INBOUND_PORT;
/// The mTLS tunnel listener between proxies.
pub const TUNNEL: u16 = weft_core::model::TUNNEL_PORT;
/// Control plane's plaintext discovery and CA, for tools on the host.
pub const DISCOVERY: u16 = 15010;
/// Control plane's mTLS discovery and CA, for proxies.
pub const SECURE_DISCOVERY: u16 = 15012;
/// Control plane's admin and debug API.
pub const CONTROL_ADMIN: u16 = 15014;
/// Proxy's Prometheus metrics.
pub const METRICS: u16 = 15020;
/// Proxy's readiness endpoint.
pub const READINESS: u16 = weft_core::model::READINESS_PORT;
/// Ports that reach a sidecar pod's proxy itself, never its app: tunnel, metrics (on the
/// Mesh's `metrics.port`), readiness.
pub fn inbound_exempt(metrics: u16) -> Vec<u16> {
    vec![TUNNEL, metrics, READINESS]
}

/// Every port a proxy may listen on inside a pod (its sidecar's, or its node proxy's listeners
/// there): none of them is the app's.
pub fn proxy_ports(metrics: u16) -> Vec<u16> {
    vec![PROXY_ADMIN, OUTBOUND, INBOUND, TUNNEL, metrics, READINESS]
}

/// `127.0.0.1:PORT`: where the loopback-only listeners bind by default.
pub fn localhost(port: u16) -> SocketAddr {
    SocketAddr::from((Ipv4Addr::LOCALHOST, port))
}

/// `0.0.0.0:PORT`: where a sidecar's listeners for peers bind by default.
pub fn any(port: u16) -> SocketAddr {
    SocketAddr::from((Ipv4Addr::UNSPECIFIED, port))
}
