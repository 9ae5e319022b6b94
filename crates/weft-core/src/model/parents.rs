//! Which ports of a Service a route attaches to (Gateway API mesh profile, GAMMA).
//!
//! A Service parentRef's `port` selects the Service port with that number and its
//! `sectionName` the port with that name; with both, the port must match both. With neither,
//! the route attaches to every port it can be served on: HTTPRoute and GRPCRoute to the ports
//! that carry HTTP (declared http, http2 or grpc, or left to detection) and never to a port
//! declared TCP, whose traffic stays opaque; TCPRoute to every port. A parentRef that selects
//! no such port does not attach the route (Gateway API: the parent does not accept it).

use std::collections::BTreeMap;

use super::routes::{Attached, Parent};
use super::{PortConfig, Protocol, ServiceConfig};
use crate::resources::route_common::ParentReference;

/// The ports of a Service (`ports`) that `parent` attaches a route to; `l7` for HTTPRoute and
/// GRPCRoute. Empty: the route does not attach to this Service.
pub fn parent_ports(parent: &ParentReference, ports: &[PortConfig], l7: bool) -> Vec<u16> {
    let mut out: Vec<u16> = ports
        .iter()
        .filter(|sp| parent.port.is_none_or(|p| p == sp.port))
        .filter(|sp| {
            parent
                .section_name
                .as_ref()
                .is_none_or(|s| sp.name.as_ref() == Some(s))
        })
        .filter(|sp| !l7 || sp.protocol != Protocol::Tcp)
        .map(|sp| sp.port)
        .collect();
    out.dedup();
    out
}

/// The Service attachments of a route in namespace `ns`: one per Service parentRef that
/// selects at least one port. Host names are not carried: the mesh profile says an
/// implementation should infer nothing from a route's `hostnames` when its parent is a
/// Service (traffic is matched by the Service's address, not by `Host`).
pub(super) fn service_parents(
    ns: &str,
    refs: &[ParentReference],
    l7: bool,
    services: &BTreeMap<String, ServiceConfig>,
) -> Vec<Attached> {
    refs.iter()
        .filter(|p| p.is_service())
        .filter_map(|p| {
            let key = format!("{}/{}", p.namespace.as_deref().unwrap_or(ns), p.name);
            let svc = services.get(&key)?;
            let ports = parent_ports(p, &svc.ports, l7);
            (!ports.is_empty()).then(|| Attached {
                parent: Parent::Service(key),
                ports,
                hostnames: Vec::new(),
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn port(port: u16, name: &str, protocol: Protocol) -> PortConfig {
        PortConfig {
            port,
            name: Some(name.into()),
            protocol,
        }
    }

    fn parent(port: Option<u16>, section: Option<&str>) -> ParentReference {
        ParentReference {
            group: Some(String::new()),
            kind: Some("Service".into()),
            namespace: None,
            name: "web".into(),
            section_name: section.map(Into::into),
            port,
        }
    }

    #[test]
    fn ports_selected_by_port_section_name_or_neither() {
        let ports = [
            port(80, "http", Protocol::Http),
            port(81, "h2", Protocol::Http2),
            port(82, "grpc", Protocol::Grpc),
            port(83, "sniffed", Protocol::Detect),
            port(5432, "tcp-db", Protocol::Tcp),
        ];
        /// (port, sectionName, l7) → attached ports
        type Case = (Option<u16>, Option<&'static str>, bool, &'static [u16]);
        let cases: &[Case] = &[
            (None, None, true, &[80, 81, 82, 83]),
            (None, None, false, &[80, 81, 82, 83, 5432]),
            (Some(81), None, true, &[81]),
            (None, Some("grpc"), true, &[82]),
            (Some(80), Some("http"), true, &[80]),
            // Both set: the port must match both.
            (Some(80), Some("grpc"), true, &[]),
            // Matches no port of the Service.
            (Some(9999), None, true, &[]),
            (None, Some("admin"), true, &[]),
            // An HTTP route never attaches to a port declared TCP; a TCP route does.
            (Some(5432), None, true, &[]),
            (Some(5432), None, false, &[5432]),
        ];
        for (p, s, l7, want) in cases {
            let got = parent_ports(&parent(*p, *s), &ports, *l7);
            assert_eq!(got, *want, "port {p:?} sectionName {s:?} l7 {l7}");
        }
    }
}
