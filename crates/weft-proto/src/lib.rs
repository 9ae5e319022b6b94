//! weft's control-plane protocol, generated from `proto/weft/v1/*.proto` at build time with a
//! pure-Rust compiler (no system `protoc`).

#![allow(missing_debug_implementations, clippy::all)]

mod version;

pub use version::{OLDEST_SUPPORTED_PROXY, PROTOCOL_VERSION, WEFT_VERSION, supported};

/// Everything in package `weft.v1`: the discovery stream and, re-exported in [`ca`], the CA.
pub mod discovery {
    tonic::include_proto!("weft.v1");
}

/// The certificate authority (`weft.v1.Certificates`, `proto/weft/v1/ca.proto`).
pub mod ca {
    pub use crate::discovery::certificates_client::CertificatesClient;
    pub use crate::discovery::certificates_server::{Certificates, CertificatesServer};
    pub use crate::discovery::{CreateCertificateRequest, CreateCertificateResponse};
}
