//! weft's control-plane protocol, generated from `proto/weft/v1/*.proto` at build time with a
//! pure-Rust compiler (no system `protoc`).

#![allow(missing_debug_implementations, clippy::all)]

pub mod discovery {
    tonic::include_proto!("weft.v1");
}
