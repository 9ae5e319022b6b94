//! The weft control plane: reads configuration from a [`source`] and running pods from their
//! proxies and the [`pods`] file, builds what each proxy needs
//! ([`weft_core::model::Snapshot`]), serves it over the delta [`discovery`] stream on its [`listen`]ers and records
//! what every proxy has ACKed ([`status`]), which the [`admin`] API shows. Each connection
//! carries its [`peer`]'s proven identity. The [`ca`] issues the proxies'
//! workload certificates.

pub(crate) mod admin;
pub mod app;
pub mod ca;
pub(crate) mod discovery;
pub mod events;
pub(crate) mod listen;
pub(crate) mod metrics;
pub(crate) mod peer;
pub(crate) mod pods;
pub(crate) mod source;
pub(crate) mod state;
pub(crate) mod status;
pub mod watch;

pub use app::{Bound, Config, build};
