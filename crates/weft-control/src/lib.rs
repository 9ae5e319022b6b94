//! The weft control plane: reads configuration from a [`source`] and running pods from their
//! proxies and the [`pods`] file, builds what each proxy needs
//! ([`weft_core::model::Snapshot`]), serves it over the delta [`discovery`] stream on its [`listen`]ers and records
//! what every proxy has ACKed ([`status`]), which the [`admin`] API shows. Each connection
//! carries its [`peer`]'s proven identity. The [`ca`] issues the proxies'
//! workload certificates.

pub mod admin;
pub mod app;
pub mod ca;
pub mod discovery;
pub mod listen;
pub mod metrics;
pub mod peer;
pub mod pods;
pub mod source;
pub mod state;
pub mod status;
pub mod watch;

pub use app::{Bound, Config, build};
