//! Where a routed HTTP request's table comes from: the Service it was sent to (outbound), or
//! the ingress Gateway whose listener it arrived at (gateway role).

use std::sync::Arc;

use weft_core::model::{Backend, ClientPolicy};

use crate::error::{Kind, ProxyError};
use crate::route::CompiledRoutes;
use crate::shared::Shared;
use crate::state::{GatewayEntry, LookupError, ServiceEntry};

/// Where a request's routing table comes from.
#[derive(Debug, Clone)]
pub(crate) enum Routing {
    /// Sent to the Service `ns/name`: its routes, or the Service itself when it has none.
    Service(Arc<str>),
    /// Arrived at a listener of the ingress Gateway `ns/name`: its routes, and a 404 when none
    /// matches.
    Gateway(Arc<str>),
    /// Sent to the Service `ns/name` through its waypoint (this proxy) by the client with the
    /// second identity: routed as [`Routing::Service`], reported by the waypoint.
    Waypoint(Arc<str>, Arc<str>),
}

impl Routing {
    pub(crate) fn direction(&self) -> &'static str {
        match self {
            Routing::Service(_) => "outbound",
            Routing::Gateway(_) => "gateway",
            Routing::Waypoint(..) => "waypoint",
        }
    }

    /// The Service the request was sent to, when it was sent to one.
    pub(crate) fn service(&self) -> Option<&Arc<str>> {
        match self {
            Routing::Service(key) | Routing::Waypoint(key, _) => Some(key),
            Routing::Gateway(_) => None,
        }
    }
}

/// The routing table, looked up.
pub(crate) enum Table {
    Service(Arc<str>, Arc<ServiceEntry>),
    Gateway(Arc<GatewayEntry>),
}

impl Table {
    pub(crate) async fn get(shared: &Shared, routing: &Routing) -> Result<Table, ProxyError> {
        Ok(match routing {
            Routing::Service(key) | Routing::Waypoint(key, _) => Table::Service(
                key.clone(),
                (shared.store.service(key).await).map_err(|e| service_error(key, e))?,
            ),
            Routing::Gateway(key) => Table::Gateway(
                (shared.store.gateway(key).await).map_err(|e| gateway_error(key, e))?,
            ),
        })
    }

    pub(crate) fn routes(&self) -> Option<&CompiledRoutes> {
        match self {
            Table::Service(_, s) => s.routes.as_ref(),
            Table::Gateway(g) => Some(&g.routes),
        }
    }

    /// Namespace that backend references without one default to.
    pub(crate) fn namespace(&self) -> &str {
        match self {
            Table::Service(_, s) => &s.config.namespace,
            Table::Gateway(g) => &g.config.namespace,
        }
    }

    /// Timeouts and retries of requests whose rule sets none: the called Service's policy. A
    /// Gateway has none; its backend's applies.
    pub(crate) fn policy(&self) -> Option<&ClientPolicy> {
        match self {
            Table::Service(_, s) => Some(&s.config.policy),
            Table::Gateway(_) => None,
        }
    }

    /// The Service itself, when it is the backend.
    pub(crate) fn service(&self, key: &str) -> Option<Arc<ServiceEntry>> {
        match self {
            Table::Service(k, s) if **k == *key => Some(s.clone()),
            _ => None,
        }
    }

    /// The Service of `backend`: the table's own, or looked up (asking on first use).
    pub(crate) async fn backend(
        &self,
        shared: &Shared,
        backend: &Backend,
    ) -> Result<Arc<ServiceEntry>, ProxyError> {
        match self.service(&backend.service) {
            Some(svc) => Ok(svc),
            None => (shared.store.service(&backend.service).await)
                .map_err(|e| service_error(&backend.service, e)),
        }
    }
}

/// What a failed lookup of the Service `what` means for the request.
pub(crate) fn service_error(what: &str, e: LookupError) -> ProxyError {
    let kind = match e {
        LookupError::Missing => Kind::NoBackend(format!("service {what} does not exist")),
        LookupError::Timeout => {
            Kind::NotReady(format!("no answer from the control plane about {what}"))
        }
        LookupError::Rejected(why) => {
            Kind::NoBackend(format!("the config of {what} was rejected: {why}"))
        }
    };
    kind.into()
}

/// What a failed lookup of the served Gateway means for the request.
fn gateway_error(key: &str, e: LookupError) -> ProxyError {
    let why = match e {
        LookupError::Missing => {
            format!("gateway {key} does not exist (or is not an ingress Gateway of class weft)")
        }
        LookupError::Timeout => format!("no answer from the control plane about gateway {key}"),
        LookupError::Rejected(why) => format!("the config of gateway {key} was rejected: {why}"),
    };
    Kind::NotReady(why).into()
}
