//! The discovery and CA listeners: each accepted connection carries who is on the other end.
//!
//! - [`tls`]: the mTLS port (15012 by convention), for proxies. The control plane proves
//!   [`weft_core::identity::CONTROL_PLANE_NAME`] with a certificate of its own CA; a client
//!   may present a workload certificate (discovery requires one, the CA does not: a first
//!   certificate is asked for with a bootstrap token). Handshakes that fail are logged and
//!   counted in `weft_control_discovery_refused_total{reason}`.
//! - [`plain`]: plaintext, on loopback only, for tools and tests on the control plane's host.
//!
//! Every connection carries a [`crate::peer::Peer`] into each request's extensions.

pub mod plain;
pub mod tls;
