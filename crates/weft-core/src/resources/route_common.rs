//! Gateway API v1 pieces shared by HTTPRoute, GRPCRoute and TCPRoute.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// What a route attaches to: a `Service` (mesh routing, `group: ""`) or a `Gateway` (ingress).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ParentReference {
    /// API group: `""` for a Service, `gateway.networking.k8s.io` (default) for a Gateway.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group: Option<String>,
    /// `Gateway` (default) or `Service`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    /// Namespace of the parent. Default: the route's namespace.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    /// Name of the parent Service or Gateway.
    pub name: String,
    /// A Gateway listener name, or a Service port name. With `port` too, both must match the
    /// same port or listener. Neither: an HTTP or gRPC route attaches to every HTTP port of a
    /// Service (http, http2, grpc or detected; never one declared TCP), a TCP route to every
    /// port. A parentRef that selects nothing does not attach the route.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub section_name: Option<String>,
    /// A Service port number or Gateway listener port.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub port: Option<u16>,
}

impl ParentReference {
    pub fn is_service(&self) -> bool {
        self.kind.as_deref() == Some("Service")
    }

    /// A Gateway: `kind` unset or `Gateway`, `group` unset or `gateway.networking.k8s.io`.
    pub fn is_gateway(&self) -> bool {
        matches!(self.kind.as_deref(), None | Some("Gateway"))
            && matches!(self.group.as_deref(), None | Some(GATEWAY_GROUP))
    }
}

/// API group of the Gateway API kinds.
pub const GATEWAY_GROUP: &str = "gateway.networking.k8s.io";

/// A Service (or other object) that receives traffic.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct BackendRef {
    /// API group. Default: `""` (core).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group: Option<String>,
    /// Default: `Service`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    /// Name of the backend: a Service unless `group` and `kind` say otherwise.
    pub name: String,
    /// Default: the route's namespace.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    /// Service port. Required when the backend is a Service.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub port: Option<u16>,
    /// Share of traffic relative to the other backends of the rule, 0–1000000. Default: 1.
    #[serde(default = "one")]
    pub weight: u32,
}

impl BackendRef {
    pub fn is_service(&self) -> bool {
        matches!(self.kind.as_deref(), None | Some("Service"))
            && matches!(self.group.as_deref(), None | Some(""))
    }
}

pub(crate) fn one() -> u32 {
    1
}

/// Kinds of matching for header, query and gRPC matches.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum StringMatchType {
    #[default]
    Exact,
    RegularExpression,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct HeaderMatch {
    #[serde(default, rename = "type")]
    pub match_type: StringMatchType,
    /// Header name, case-insensitive.
    pub name: String,
    /// Value to match: the exact value, or with `type: RegularExpression` a regular expression
    /// (RE2 syntax).
    pub value: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct HeaderValue {
    /// Header name, case-insensitive.
    pub name: String,
    /// Header value.
    pub value: String,
}

/// Adds, sets and removes headers.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct HeaderModifier {
    /// Replace the header's value (add it when absent).
    #[serde(default)]
    pub set: Vec<HeaderValue>,
    /// Append a value to the header.
    #[serde(default)]
    pub add: Vec<HeaderValue>,
    /// Header names to remove.
    #[serde(default)]
    pub remove: Vec<String>,
}

/// Sends a copy of each request to another backend and ignores its response.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RequestMirror {
    pub backend_ref: BackendRef,
    /// Percentage of requests mirrored, 0–100. Default: 100.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub percent: Option<u32>,
}

/// A reference to a filter implemented outside the Gateway API.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct LocalObjectReference {
    /// API group of the filter's resource.
    pub group: String,
    /// Kind of the filter's resource.
    pub kind: String,
    /// Name of the filter's resource, in the route's namespace.
    pub name: String,
}
