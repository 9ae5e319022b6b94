//! Every kind weft reads, and the [`Resource`] enum that holds one of them.

pub mod fault;
pub mod gateway;
pub mod grpc_route;
pub mod http_route;
pub mod kube;
pub mod mesh;
pub mod mesh_set;
pub mod policy;
pub mod route_common;
pub mod service;
pub mod workload;

use crate::meta::ObjectMeta;

pub use fault::Fault;
pub use gateway::Gateway;
pub use grpc_route::{GrpcRoute, TcpRoute};
pub use http_route::HttpRoute;
pub use mesh::Mesh;
pub use policy::{AuthorizationPolicy, TrafficPolicy};
pub use service::{Namespace, Service};
pub use workload::Workload;

pub const WEFT_API: &str = "weft.dev/v1alpha1";
pub const GATEWAY_API: &str = "gateway.networking.k8s.io/v1";

/// The kinds weft understands natively.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
pub enum Kind {
    Mesh,
    Namespace,
    Workload,
    Service,
    #[serde(rename = "HTTPRoute")]
    HttpRoute,
    #[serde(rename = "GRPCRoute")]
    GrpcRoute,
    #[serde(rename = "TCPRoute")]
    TcpRoute,
    Gateway,
    AuthorizationPolicy,
    TrafficPolicy,
    Fault,
}

impl Kind {
    pub const ALL: [Kind; 11] = [
        Kind::Mesh,
        Kind::Namespace,
        Kind::Workload,
        Kind::Service,
        Kind::HttpRoute,
        Kind::GrpcRoute,
        Kind::TcpRoute,
        Kind::Gateway,
        Kind::AuthorizationPolicy,
        Kind::TrafficPolicy,
        Kind::Fault,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Kind::Mesh => "Mesh",
            Kind::Namespace => "Namespace",
            Kind::Workload => "Workload",
            Kind::Service => "Service",
            Kind::HttpRoute => "HTTPRoute",
            Kind::GrpcRoute => "GRPCRoute",
            Kind::TcpRoute => "TCPRoute",
            Kind::Gateway => "Gateway",
            Kind::AuthorizationPolicy => "AuthorizationPolicy",
            Kind::TrafficPolicy => "TrafficPolicy",
            Kind::Fault => "Fault",
        }
    }

    /// Accepted `apiVersion`s; the first is the one to write.
    pub fn api_versions(self) -> &'static [&'static str] {
        match self {
            Kind::Mesh
            | Kind::Workload
            | Kind::AuthorizationPolicy
            | Kind::TrafficPolicy
            | Kind::Fault => &[WEFT_API],
            Kind::Namespace | Kind::Service => &["v1"],
            Kind::HttpRoute => &[GATEWAY_API, "gateway.networking.k8s.io/v1beta1"],
            Kind::GrpcRoute => &[GATEWAY_API, "gateway.networking.k8s.io/v1alpha2"],
            Kind::TcpRoute => &["gateway.networking.k8s.io/v1alpha2"],
            Kind::Gateway => &[GATEWAY_API, "gateway.networking.k8s.io/v1beta1"],
        }
    }

    /// Mesh and Namespace are cluster-scoped.
    pub fn namespaced(self) -> bool {
        !matches!(self, Kind::Mesh | Kind::Namespace)
    }

    pub fn from_name(name: &str) -> Option<Kind> {
        Kind::ALL.into_iter().find(|k| k.name() == name)
    }
}

impl std::fmt::Display for Kind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// One resource of any kind.
#[expect(
    clippy::large_enum_variant,
    reason = "held once per config document, never in a hot path"
)]
#[derive(Debug, Clone, PartialEq)]
pub enum Resource {
    Mesh(Mesh),
    Namespace(Namespace),
    Workload(Workload),
    Service(Service),
    HttpRoute(HttpRoute),
    GrpcRoute(GrpcRoute),
    TcpRoute(TcpRoute),
    Gateway(Gateway),
    AuthorizationPolicy(AuthorizationPolicy),
    TrafficPolicy(TrafficPolicy),
    Fault(Fault),
}

impl Resource {
    pub fn kind(&self) -> Kind {
        match self {
            Resource::Mesh(_) => Kind::Mesh,
            Resource::Namespace(_) => Kind::Namespace,
            Resource::Workload(_) => Kind::Workload,
            Resource::Service(_) => Kind::Service,
            Resource::HttpRoute(_) => Kind::HttpRoute,
            Resource::GrpcRoute(_) => Kind::GrpcRoute,
            Resource::TcpRoute(_) => Kind::TcpRoute,
            Resource::Gateway(_) => Kind::Gateway,
            Resource::AuthorizationPolicy(_) => Kind::AuthorizationPolicy,
            Resource::TrafficPolicy(_) => Kind::TrafficPolicy,
            Resource::Fault(_) => Kind::Fault,
        }
    }

    pub fn metadata(&self) -> &ObjectMeta {
        match self {
            Resource::Mesh(r) => &r.metadata,
            Resource::Namespace(r) => &r.metadata,
            Resource::Workload(r) => &r.metadata,
            Resource::Service(r) => &r.metadata,
            Resource::HttpRoute(r) => &r.metadata,
            Resource::GrpcRoute(r) => &r.metadata,
            Resource::TcpRoute(r) => &r.metadata,
            Resource::Gateway(r) => &r.metadata,
            Resource::AuthorizationPolicy(r) => &r.metadata,
            Resource::TrafficPolicy(r) => &r.metadata,
            Resource::Fault(r) => &r.metadata,
        }
    }

    /// The namespace, or `None` for cluster-scoped kinds.
    pub fn namespace(&self) -> Option<&str> {
        self.kind()
            .namespaced()
            .then(|| self.metadata().namespace())
    }

    /// `Kind/namespace/name` (or `Kind/name` when cluster-scoped).
    pub fn id(&self) -> String {
        match self.namespace() {
            Some(ns) => format!("{}/{}/{}", self.kind(), ns, self.metadata().name),
            None => format!("{}/{}", self.kind(), self.metadata().name),
        }
    }
}
