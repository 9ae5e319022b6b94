//! Gateway API v1 `HTTPRoute`.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::route_common::{
    BackendRef, HeaderMatch, HeaderModifier, LocalObjectReference, ParentReference, RequestMirror,
    StringMatchType, one,
};
use crate::duration::Duration;
use crate::meta::ObjectMeta;

/// Routes HTTP requests sent to its parents (Services or Gateways) to backends.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct HttpRoute {
    pub metadata: ObjectMeta,
    /// Where the route attaches, the host names it serves, and its rules.
    pub spec: HttpRouteSpec,
    /// Set by Kubernetes; accepted and ignored.
    #[serde(default, skip_serializing)]
    pub status: Option<serde_json::Value>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct HttpRouteSpec {
    /// Services (mesh) or Gateways (ingress) this route applies to.
    #[serde(default)]
    pub parent_refs: Vec<ParentReference>,
    /// Host names matched against the `Host` header, on Gateway parents. Empty: any host.
    /// Ignored on Service parents (the mesh matches the Service's address; match a `Host`
    /// header to filter by name).
    #[serde(default)]
    pub hostnames: Vec<String>,
    /// Rules, tried by specificity (Gateway API precedence, across every route on the same
    /// parent port): an `Exact` path, the longest `PathPrefix`, a method, the most headers,
    /// the most query parameters; on ties the oldest route (`metadata.creationTimestamp`), then
    /// `namespace/name`, then rule order. Default: one rule matching every request with no
    /// backends.
    #[serde(default)]
    pub rules: Vec<HttpRouteRule>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct HttpRouteRule {
    /// Optional rule name, shown in access logs and `weft proxy-config`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Any one match selects the rule. Default: path prefix `/`.
    #[serde(default)]
    pub matches: Vec<HttpRouteMatch>,
    /// Applied in order to requests matching this rule.
    #[serde(default)]
    pub filters: Vec<HttpRouteFilter>,
    /// Where matching requests go, split by weight. A backend that does not resolve (no such
    /// Service or port) keeps its share, answered with 500; a weight of 0 gets no requests; a
    /// rule with no backend of weight > 0 answers 500.
    #[serde(default)]
    pub backend_refs: Vec<HttpBackendRef>,
    /// Timeouts of requests matching this rule.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeouts: Option<HttpRouteTimeouts>,
    /// How failed requests matching this rule are retried.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry: Option<HttpRouteRetry>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct HttpRouteMatch {
    /// Request path to match. Default: prefix `/`, which matches every path.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<HttpPathMatch>,
    /// All must match.
    #[serde(default)]
    pub headers: Vec<HeaderMatch>,
    /// All must match.
    #[serde(default)]
    pub query_params: Vec<HeaderMatch>,
    /// HTTP method to match. Absent: any method.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub method: Option<HttpMethod>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct HttpPathMatch {
    /// `PathPrefix` (default), `Exact` or `RegularExpression`.
    #[serde(default, rename = "type")]
    pub match_type: PathMatchType,
    /// Default: `/`.
    #[serde(default = "slash")]
    pub value: String,
}

fn slash() -> String {
    "/".into()
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum PathMatchType {
    Exact,
    #[default]
    PathPrefix,
    RegularExpression,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "UPPERCASE")]
pub enum HttpMethod {
    Get,
    Head,
    Post,
    Put,
    Delete,
    Connect,
    Options,
    Trace,
    Patch,
}

/// One filter; `type` says which of the other fields is set.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct HttpRouteFilter {
    /// Which filter this is. The field of the same name (`RequestHeaderModifier` →
    /// `requestHeaderModifier`, `URLRewrite` → `urlRewrite`, ...) holds its settings.
    #[serde(rename = "type")]
    pub filter_type: HttpFilterType,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request_header_modifier: Option<HeaderModifier>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub response_header_modifier: Option<HeaderModifier>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request_mirror: Option<RequestMirror>,
    /// Answers the request with a redirect instead of forwarding it. Cannot be combined with a
    /// `URLRewrite` filter in the same rule.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request_redirect: Option<HttpRequestRedirect>,
    /// Rewrites the host and path of the request before it is forwarded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url_rewrite: Option<HttpUrlRewrite>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub extension_ref: Option<LocalObjectReference>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum HttpFilterType {
    RequestHeaderModifier,
    ResponseHeaderModifier,
    RequestMirror,
    RequestRedirect,
    URLRewrite,
    ExtensionRef,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct HttpRequestRedirect {
    /// `http` or `https`. Default: unchanged.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scheme: Option<String>,
    /// Host name in the `Location` header. Default: the request's host.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hostname: Option<String>,
    /// How the request's path is changed for the `Location` header. Default: unchanged.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<HttpPathModifier>,
    /// Port in the `Location` header. Default: 80 or 443 when `scheme` is set (the
    /// scheme's well-known port), otherwise the port the request was sent to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub port: Option<u16>,
    /// 301 or 302 (default), 303, 307, 308.
    #[serde(default = "found")]
    pub status_code: u16,
}

fn found() -> u16 {
    302
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct HttpUrlRewrite {
    /// Replaces the `Host` header of the forwarded request. Default: unchanged.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hostname: Option<String>,
    /// How the path of the forwarded request is changed. Default: unchanged.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<HttpPathModifier>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct HttpPathModifier {
    /// `ReplaceFullPath`: the whole path becomes `replaceFullPath`. `ReplacePrefixMatch`: the
    /// part matched by the rule's `PathPrefix` match becomes `replacePrefixMatch`.
    #[serde(rename = "type")]
    pub modifier_type: PathModifierType,
    /// The new path, with `type: ReplaceFullPath`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replace_full_path: Option<String>,
    /// Replaces the matched prefix, with `type: ReplacePrefixMatch`; the rest of the path is
    /// kept (prefix `/api`, replacement `/v2`: `/api/items` becomes `/v2/items`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replace_prefix_match: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum PathModifierType {
    ReplaceFullPath,
    ReplacePrefixMatch,
}

/// A backend of an HTTP rule, with filters applied only on requests sent to it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct HttpBackendRef {
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
    /// Applied in order to requests sent to this backend only.
    #[serde(default)]
    pub filters: Vec<HttpRouteFilter>,
}

impl HttpBackendRef {
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

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct HttpRouteTimeouts {
    /// Whole request, including retries. Default: none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request: Option<Duration>,
    /// Each attempt to a backend. Must not exceed `request`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub backend_request: Option<Duration>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct HttpRouteRetry {
    /// Response codes that are retried. Default: 502, 503, 504 and connection failures.
    #[serde(default)]
    pub codes: Vec<u16>,
    /// Retries after the first attempt. Default: 2.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub attempts: Option<u32>,
    /// Base backoff between attempts (jittered). Default: 25ms.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub backoff: Option<Duration>,
}

impl StringMatchType {
    pub fn is_regex(self) -> bool {
        self == StringMatchType::RegularExpression
    }
}
