//! Gateway API v1 `Gateway`: an ingress (class `weft`) or a waypoint (class `weft-waypoint`).

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::meta::ObjectMeta;

/// Gateway class of an ingress gateway run by weft.
pub const INGRESS_CLASS: &str = "weft";
/// Gateway class of an L7 waypoint for ambient workloads.
pub const WAYPOINT_CLASS: &str = "weft-waypoint";

/// Where traffic enters the mesh (class `weft`: an ingress gateway) or where L7 policy runs for
/// ambient workloads (class `weft-waypoint`: a waypoint). Routes attach to its listeners.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Gateway {
    pub metadata: ObjectMeta,
    /// The Gateway's class, listeners and addresses.
    pub spec: GatewaySpec,
    /// Set by Kubernetes; accepted and ignored.
    #[serde(default, skip_serializing)]
    pub status: Option<serde_json::Value>,
}

impl Gateway {
    pub fn is_waypoint(&self) -> bool {
        self.spec.gateway_class_name == WAYPOINT_CLASS
    }
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct GatewaySpec {
    /// `weft` for an ingress gateway, `weft-waypoint` for a waypoint.
    pub gateway_class_name: String,
    /// The ports and protocols the Gateway accepts traffic on; routes attach to these
    /// listeners. At least one.
    pub listeners: Vec<Listener>,
    /// Addresses requested for the gateway. The local runtime listens on 127.0.0.1.
    #[serde(default)]
    pub addresses: Vec<GatewayAddress>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Listener {
    /// Unique within the Gateway; routes select it with `sectionName`.
    pub name: String,
    /// Host name this listener accepts. Empty: any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hostname: Option<String>,
    /// Port the listener accepts traffic on.
    pub port: u16,
    /// `HTTP`, `HTTPS`, `TLS`, `TCP` or `HBONE` (waypoints).
    pub protocol: String,
    /// Which routes may attach. Default: routes in the Gateway's namespace.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub allowed_routes: Option<AllowedRoutes>,
    /// TLS settings; accepted, used by HTTPS/TLS listeners.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls: Option<serde_json::Value>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AllowedRoutes {
    /// Namespaces whose routes may attach. Default: the Gateway's own (`from: Same`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespaces: Option<RouteNamespaces>,
    /// Route kinds allowed, e.g. `[{kind: HTTPRoute}]`. Default: by listener protocol.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub kinds: Vec<RouteGroupKind>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RouteNamespaces {
    /// `Same` (default), `All` or `Selector`.
    #[serde(default)]
    pub from: FromNamespaces,
    /// With `from: Selector`: the namespaces whose labels match may attach routes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub selector: Option<crate::meta::LabelSelector>,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum FromNamespaces {
    All,
    #[default]
    Same,
    Selector,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RouteGroupKind {
    /// API group of the route kind. Default: `gateway.networking.k8s.io`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group: Option<String>,
    /// Route kind, e.g. `HTTPRoute`.
    pub kind: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct GatewayAddress {
    /// `IPAddress` (default) or `Hostname`.
    #[serde(default, rename = "type", skip_serializing_if = "Option::is_none")]
    pub address_type: Option<String>,
    /// The address: an IP address or a host name, as `type` says.
    pub value: String,
}
