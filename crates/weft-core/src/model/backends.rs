//! Resolves a route's backendRefs against the Services of the snapshot.
//!
//! Gateway API keeps an invalid backendRef in the split: the share of requests it would have
//! received is answered with 500, the rest go to the valid backends. So a reference to a
//! Service that does not exist, to a port the Service does not have, or to a kind weft cannot
//! send to stays in the rule with its weight and says why in [`Backend::unresolved`].

use std::collections::BTreeMap;

use super::{Backend, ServiceConfig};
use crate::resources::http_route::HttpRouteFilter;
use crate::resources::route_common::BackendRef;

/// Resolves the backendRefs of routes in one namespace.
pub(super) struct Resolver<'a> {
    pub services: &'a BTreeMap<String, ServiceConfig>,
    /// The route's namespace: the default of every reference.
    pub namespace: &'a str,
}

impl Resolver<'_> {
    pub(super) fn backend(&self, r: &BackendRef, filters: Vec<HttpRouteFilter>) -> Backend {
        let service = format!(
            "{}/{}",
            r.namespace.as_deref().unwrap_or(self.namespace),
            r.name
        );
        let unresolved = self.why_unresolved(r, &service);
        Backend {
            service,
            port: r.port.unwrap_or(0),
            weight: r.weight,
            filters: mirrors_in(self.namespace, filters),
            unresolved,
        }
    }

    fn why_unresolved(&self, r: &BackendRef, service: &str) -> Option<String> {
        if !r.is_service() {
            let group = r.group.as_deref().unwrap_or("");
            let kind = r.kind.as_deref().unwrap_or("Service");
            return Some(format!(
                "backend {group}/{kind} {service}: only Services can be backends"
            ));
        }
        let Some(svc) = self.services.get(service) else {
            return Some(format!("Service {service} does not exist"));
        };
        match r.port {
            Some(p) if svc.port(p).is_none() => Some(format!("Service {service} has no port {p}")),
            _ => None,
        }
    }
}

/// A mirror's backend defaults to the route's namespace, like every other backend reference.
pub(super) fn mirrors_in(ns: &str, mut filters: Vec<HttpRouteFilter>) -> Vec<HttpRouteFilter> {
    for f in &mut filters {
        if let Some(m) = &mut f.request_mirror
            && m.backend_ref.namespace.is_none()
        {
            m.backend_ref.namespace = Some(ns.to_string());
        }
    }
    filters
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{ClientPolicy, PortConfig, Protocol};

    fn services() -> BTreeMap<String, ServiceConfig> {
        let svc = ServiceConfig {
            namespace: "shop".into(),
            name: "web".into(),
            vip: None,
            hostnames: Vec::new(),
            ports: vec![PortConfig {
                port: 80,
                name: Some("http".into()),
                protocol: Protocol::Http,
            }],
            endpoints: Vec::new(),
            http: None,
            tcp: Vec::new(),
            policy: ClientPolicy::default(),
            waypoint: None,
            local_rate_limit: None,
        };
        BTreeMap::from([(svc.key(), svc)])
    }

    fn reference(name: &str, port: u16, kind: Option<&str>) -> BackendRef {
        BackendRef {
            group: None,
            kind: kind.map(Into::into),
            name: name.into(),
            namespace: None,
            port: Some(port),
            weight: 3,
        }
    }

    #[test]
    fn unresolved_backends_keep_their_weight_and_say_why() {
        let services = services();
        let r = Resolver {
            services: &services,
            namespace: "shop",
        };
        let cases = [
            (reference("web", 80, None), None),
            (
                reference("ghost", 80, None),
                Some("Service shop/ghost does not exist"),
            ),
            (
                reference("web", 8080, None),
                Some("Service shop/web has no port 8080"),
            ),
            (
                reference("web", 80, Some("Bucket")),
                Some("backend /Bucket shop/web: only Services can be backends"),
            ),
        ];
        for (reference, why) in cases {
            let b = r.backend(&reference, Vec::new());
            assert_eq!(b.weight, 3, "{reference:?}");
            assert_eq!(b.unresolved.as_deref(), why, "{reference:?}");
        }
    }
}
