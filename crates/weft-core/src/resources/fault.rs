//! `Fault`: delays and aborts injected into the requests of a route rule, to test how callers
//! cope (Istio's VirtualService `fault`). A rule takes it as a filter:
//! `{type: ExtensionRef, extensionRef: {group: weft.dev, kind: Fault, name: NAME}}`.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::duration::Duration;
use crate::meta::ObjectMeta;

/// The `group` and `kind` of an `extensionRef` that names a Fault.
pub const GROUP: &str = "weft.dev";
pub const KIND: &str = "Fault";

/// Delays and aborts injected into the requests of the route rules that name it (a filter
/// `{type: ExtensionRef, extensionRef: {group: weft.dev, kind: Fault, name: NAME}}`), in the
/// Fault's namespace.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Fault {
    pub metadata: ObjectMeta,
    /// What is injected: a delay, an abort, or both (the delay first).
    pub spec: FaultSpec,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct FaultSpec {
    /// Holds requests before they are forwarded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delay: Option<FaultDelay>,
    /// Answers requests with an error instead of forwarding them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub abort: Option<FaultAbort>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct FaultDelay {
    /// How long each delayed request waits.
    pub fixed_delay: Duration,
    /// Share of the rule's requests delayed, 0–100. Default: 100.
    #[serde(default = "all", deserialize_with = "percent")]
    #[schemars(range(min = 0, max = 100))]
    pub percentage: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct FaultAbort {
    /// The HTTP status of the answer, 200–599. One of `httpStatus` and `grpcStatus`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 200, max = 599))]
    pub http_status: Option<u16>,
    /// A gRPC status code (e.g. 14 for UNAVAILABLE): the answer is a gRPC error with it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0, max = 16))]
    pub grpc_status: Option<u32>,
    /// Share of the rule's requests aborted, 0–100. Default: 100.
    #[serde(default = "all", deserialize_with = "percent")]
    #[schemars(range(min = 0, max = 100))]
    pub percentage: f64,
}

fn all() -> f64 {
    100.0
}

fn percent<'de, D: serde::Deserializer<'de>>(d: D) -> Result<f64, D::Error> {
    let p = f64::deserialize(d)?;
    if !(0.0..=100.0).contains(&p) {
        return Err(serde::de::Error::custom(format!(
            "expected a percentage from 0 to 100, got {p}"
        )));
    }
    Ok(p)
}

impl FaultAbort {
    /// Why the abort cannot be injected, if it cannot.
    pub fn problem(&self) -> Option<String> {
        match (self.http_status, self.grpc_status) {
            (None, None) => Some("an abort needs `httpStatus` or `grpcStatus`".into()),
            (Some(_), Some(_)) => {
                Some("an abort takes `httpStatus` or `grpcStatus`, not both".into())
            }
            (Some(s), None) if !(200..=599).contains(&s) => {
                Some(format!("httpStatus {s} is not an HTTP status (200–599)"))
            }
            (None, Some(g)) if g > 16 => {
                Some(format!("grpcStatus {g} is not a gRPC status (0–16)"))
            }
            _ => None,
        }
    }
}
