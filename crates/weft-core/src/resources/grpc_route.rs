//! Gateway API `GRPCRoute` (v1) and `TCPRoute` (v1alpha2).

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::http_route::{HttpFilterType, HttpRouteFilter};
use super::route_common::{
    BackendRef, HeaderMatch, HeaderModifier, LocalObjectReference, ParentReference, RequestMirror,
    StringMatchType, one,
};
use crate::meta::ObjectMeta;

/// Routes gRPC calls by service and method.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct GrpcRoute {
    pub metadata: ObjectMeta,
    /// Where the route attaches, the host names it serves, and its rules.
    pub spec: GrpcRouteSpec,
    /// Set by Kubernetes; accepted and ignored.
    #[serde(default, skip_serializing)]
    pub status: Option<serde_json::Value>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct GrpcRouteSpec {
    /// Services (mesh) or Gateways (ingress) this route applies to.
    #[serde(default)]
    pub parent_refs: Vec<ParentReference>,
    /// Host names matched against the `:authority` (`Host`) header, on Gateway parents. Empty:
    /// any host. Ignored on Service parents.
    #[serde(default)]
    pub hostnames: Vec<String>,
    /// Rules, tried by specificity (Gateway API precedence).
    #[serde(default)]
    pub rules: Vec<GrpcRouteRule>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct GrpcRouteRule {
    /// Optional rule name, unique within the route.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Any one match selects the rule. Default: every call.
    #[serde(default)]
    pub matches: Vec<GrpcRouteMatch>,
    /// Applied in order to calls matching this rule.
    #[serde(default)]
    pub filters: Vec<GrpcRouteFilter>,
    /// Where matching calls go, split by weight.
    #[serde(default)]
    pub backend_refs: Vec<GrpcBackendRef>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct GrpcRouteMatch {
    /// gRPC service and method to match. Absent: any call.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub method: Option<GrpcMethodMatch>,
    /// All must match.
    #[serde(default)]
    pub headers: Vec<HeaderMatch>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct GrpcMethodMatch {
    /// `Exact` (default) or `RegularExpression`.
    #[serde(default, rename = "type")]
    pub match_type: StringMatchType,
    /// Fully qualified service, e.g. `shop.Pricing`. Empty: any service.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service: Option<String>,
    /// Method name, e.g. `Quote`. Empty: any method.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub method: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct GrpcRouteFilter {
    /// Which filter this is. The field of the same name (`RequestHeaderModifier` →
    /// `requestHeaderModifier`, ...) holds its settings.
    #[serde(rename = "type")]
    pub filter_type: GrpcFilterType,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request_header_modifier: Option<HeaderModifier>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub response_header_modifier: Option<HeaderModifier>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request_mirror: Option<RequestMirror>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub extension_ref: Option<LocalObjectReference>,
}

impl GrpcRouteFilter {
    /// The same filter in HTTPRoute terms (gRPC filters are a subset), for the proxy.
    pub fn to_http(&self) -> HttpRouteFilter {
        HttpRouteFilter {
            filter_type: match self.filter_type {
                GrpcFilterType::RequestHeaderModifier => HttpFilterType::RequestHeaderModifier,
                GrpcFilterType::ResponseHeaderModifier => HttpFilterType::ResponseHeaderModifier,
                GrpcFilterType::RequestMirror => HttpFilterType::RequestMirror,
                GrpcFilterType::ExtensionRef => HttpFilterType::ExtensionRef,
            },
            request_header_modifier: self.request_header_modifier.clone(),
            response_header_modifier: self.response_header_modifier.clone(),
            request_mirror: self.request_mirror.clone(),
            request_redirect: None,
            url_rewrite: None,
            extension_ref: self.extension_ref.clone(),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum GrpcFilterType {
    RequestHeaderModifier,
    ResponseHeaderModifier,
    RequestMirror,
    ExtensionRef,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct GrpcBackendRef {
    /// API group of the backend. Default: `""` (core).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group: Option<String>,
    /// Kind of the backend. Default: `Service`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    /// Name of the backend: a Service unless `group` and `kind` say otherwise.
    pub name: String,
    /// Namespace of the backend. Default: the route's namespace.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    /// Service port. Required when the backend is a Service.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub port: Option<u16>,
    /// Default: 1.
    #[serde(default = "one")]
    pub weight: u32,
    /// Applied in order to calls sent to this backend only.
    #[serde(default)]
    pub filters: Vec<GrpcRouteFilter>,
}

impl GrpcBackendRef {
    pub fn as_backend(&self) -> BackendRef {
        BackendRef {
            group: self.group.clone(),
            kind: self.kind.clone(),
            name: self.name.clone(),
            namespace: self.namespace.clone(),
            port: self.port,
            weight: self.weight,
        }
    }
}

/// Forwards TCP connections sent to its parents to backends, split by weight.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct TcpRoute {
    pub metadata: ObjectMeta,
    /// Where the route attaches, and where connections go.
    pub spec: TcpRouteSpec,
    /// Set by Kubernetes; accepted and ignored.
    #[serde(default, skip_serializing)]
    pub status: Option<serde_json::Value>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct TcpRouteSpec {
    /// Services (mesh) or Gateways (ingress) this route applies to.
    #[serde(default)]
    pub parent_refs: Vec<ParentReference>,
    /// Rules, each with the backends that connections are forwarded to.
    #[serde(default)]
    pub rules: Vec<TcpRouteRule>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct TcpRouteRule {
    /// Optional rule name, unique within the route.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Where connections go, split by weight.
    #[serde(default)]
    pub backend_refs: Vec<BackendRef>,
}
