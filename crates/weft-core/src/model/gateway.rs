//! Which listeners of an ingress Gateway a route attaches to, and with which host names
//! (Gateway API): the parentRef's `sectionName` and `port` select listeners, each listener's
//! `allowedRoutes` must admit the route's namespace and kind, and the route's host names are
//! intersected with the listener's.

use std::collections::BTreeMap;

use super::routes::{Attached, Parent};
use crate::load::Config;
use crate::resources::gateway::{FromNamespaces, INGRESS_CLASS, Listener};
use crate::resources::route_common::{GATEWAY_GROUP, ParentReference};
use crate::resources::{Gateway, Kind, Resource};

pub(super) type Labels = BTreeMap<String, String>;

/// Listeners served by a gateway proxy: plain HTTP (no TLS termination yet).
pub(crate) fn is_http(l: &Listener) -> bool {
    l.protocol.eq_ignore_ascii_case("HTTP")
}

/// The ingress Gateways of a configuration, by `<namespace>/<name>`.
pub(super) struct Index<'a> {
    gateways: BTreeMap<String, &'a Gateway>,
    namespace_labels: &'a BTreeMap<String, Labels>,
}

impl<'a> Index<'a> {
    pub(super) fn new(config: &'a Config, namespace_labels: &'a BTreeMap<String, Labels>) -> Self {
        let gateways = config
            .resources
            .iter()
            .filter_map(|l| match &l.resource {
                Resource::Gateway(g) if g.spec.gateway_class_name == INGRESS_CLASS => {
                    Some((format!("{}/{}", g.metadata.namespace(), g.metadata.name), g))
                }
                _ => None,
            })
            .collect();
        Index {
            gateways,
            namespace_labels,
        }
    }

    /// The attachments of a route of `kind` in namespace `ns`: one per Gateway parentRef and
    /// set of host names, with the ports of the listeners that share them.
    pub(super) fn attach(
        &self,
        kind: Kind,
        ns: &str,
        refs: &[ParentReference],
        hostnames: &[String],
    ) -> Vec<Attached> {
        let mut out = Vec::new();
        for p in refs.iter().filter(|p| p.is_gateway()) {
            let key = format!("{}/{}", p.namespace.as_deref().unwrap_or(ns), p.name);
            let Some(gw) = self.gateways.get(&key) else {
                continue;
            };
            let mut groups: Vec<(Vec<String>, Vec<u16>)> = Vec::new();
            for l in gw.spec.listeners.iter().filter(|l| is_http(l)) {
                if p.section_name.as_ref().is_some_and(|s| *s != l.name)
                    || p.port.is_some_and(|port| port != l.port)
                    || !self.allows(gw, l, kind, ns)
                {
                    continue;
                }
                let Some(hosts) = intersect(l.hostname.as_deref(), hostnames) else {
                    continue;
                };
                match groups.iter_mut().find(|(h, _)| *h == hosts) {
                    Some((_, ports)) if ports.contains(&l.port) => {}
                    Some((_, ports)) => ports.push(l.port),
                    None => groups.push((hosts, vec![l.port])),
                }
            }
            for (hostnames, ports) in groups {
                out.push(Attached {
                    parent: Parent::Gateway(key.clone()),
                    ports,
                    hostnames,
                });
            }
        }
        out
    }

    /// Whether listener `l` of `gw` admits a route of `kind` from namespace `ns`.
    fn allows(&self, gw: &Gateway, l: &Listener, kind: Kind, ns: &str) -> bool {
        let allowed = l.allowed_routes.clone().unwrap_or_default();
        let from = allowed
            .namespaces
            .as_ref()
            .map_or_else(Default::default, |n| n.from);
        let namespace_ok = match from {
            FromNamespaces::Same => ns == gw.metadata.namespace(),
            FromNamespaces::All => true,
            FromNamespaces::Selector => {
                let empty = Labels::new();
                let labels = self.namespace_labels.get(ns).unwrap_or(&empty);
                allowed
                    .namespaces
                    .as_ref()
                    .and_then(|n| n.selector.as_ref())
                    .is_some_and(|s| s.matches(labels))
            }
        };
        let kind_ok = if allowed.kinds.is_empty() {
            matches!(kind, Kind::HttpRoute | Kind::GrpcRoute)
        } else {
            allowed.kinds.iter().any(|k| {
                k.kind == kind.name() && k.group.as_deref().is_none_or(|g| g == GATEWAY_GROUP)
            })
        };
        namespace_ok && kind_ok
    }
}

/// The host names a route gets on a listener: the route's, narrowed to the listener's. `None`
/// when both are set and none overlap (the route does not attach to that listener); empty for
/// any host.
pub(super) fn intersect(listener: Option<&str>, route: &[String]) -> Option<Vec<String>> {
    let Some(listener) = listener else {
        return Some(route.to_vec());
    };
    if route.is_empty() {
        return Some(vec![listener.to_string()]);
    }
    let mut out: Vec<String> = Vec::new();
    for r in route {
        if let Some(h) = intersect_one(listener, r)
            && !out.contains(&h)
        {
            out.push(h);
        }
    }
    (!out.is_empty()).then_some(out)
}

/// The more specific of two host names when one covers the other (`*.example.com` covers
/// `a.example.com` and `*.a.example.com`, but not `example.com`).
fn intersect_one(a: &str, b: &str) -> Option<String> {
    let (a, b) = (a.to_ascii_lowercase(), b.to_ascii_lowercase());
    if a == b {
        return Some(a);
    }
    if covers(&a, &b) {
        Some(b)
    } else if covers(&b, &a) {
        Some(a)
    } else {
        None
    }
}

/// Whether wildcard `pattern` matches every name `name` matches.
fn covers(pattern: &str, name: &str) -> bool {
    let Some(suffix) = pattern.strip_prefix('*') else {
        return false;
    };
    let name = name.strip_prefix('*').unwrap_or(name);
    name.len() > suffix.len() && name.ends_with(suffix)
}
