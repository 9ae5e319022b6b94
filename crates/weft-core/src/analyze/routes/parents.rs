//! The parentRefs of routes (05xx): routes attached to nothing, Service parents outside the
//! core group, and L7 routes on Service ports whose protocol is unknown or TCP.

use super::super::{Index, Report};
use crate::model::{PortConfig, parent_ports};
use crate::resources::service::AppProtocol;

pub(super) fn check(ix: &Index<'_>, out: &mut Report) {
    for route in ix.routes() {
        if route.parents.is_empty() {
            out.add("WEFT0510", route.loaded, "spec",
                "the route has no parentRefs and applies to no traffic",
                "add a parentRef to the Service (group: \"\", kind: Service) or Gateway it routes for");
        }
        for (i, p) in route.parents.iter().enumerate() {
            if p.is_service() && p.group.as_deref() != Some("") {
                out.add(
                    "WEFT0511",
                    route.loaded,
                    &format!("spec.parentRefs[{i}]"),
                    format!(
                        "parentRef to Service {:?} has group {:?}, not the core group",
                        p.name,
                        p.group
                            .as_deref()
                            .unwrap_or("gateway.networking.k8s.io (default)")
                    ),
                    "add `group: \"\"` to the parentRef",
                );
            }
        }
        if !route.l7 {
            continue;
        }
        let own_ns = route.loaded.resource.metadata().namespace();
        for (i, p) in route.parents.iter().enumerate() {
            if !p.is_service() {
                continue;
            }
            let ns = p.namespace.as_deref().unwrap_or(own_ns);
            let Some((_, svc)) = ix.service(ns, &p.name) else {
                continue;
            };
            // A parentRef without port or sectionName leaves TCP ports alone, as intended,
            // unless the Service has no other port for the route to attach to.
            let explicit = p.port.is_some() || p.section_name.is_some();
            let ports: Vec<PortConfig> = svc
                .spec
                .ports
                .iter()
                .map(|sp| PortConfig {
                    port: sp.port,
                    name: sp.name.clone(),
                    protocol: sp.app_protocol().into(),
                })
                .collect();
            let attaches = !parent_ports(p, &ports, true).is_empty();
            for sp in svc.spec.ports.iter().filter(|sp| {
                p.port.is_none_or(|port| sp.port == port)
                    && p.section_name
                        .as_ref()
                        .is_none_or(|s| sp.name.as_ref() == Some(s))
            }) {
                let path = format!("spec.parentRefs[{i}]");
                match sp.app_protocol() {
                    AppProtocol::Detect => out.add("WEFT0503", route.loaded, &path,
                        format!("Service {ns}/{} port {} declares no protocol; HTTP routing relies on detection", p.name, sp.port),
                        "set `appProtocol: http` (or grpc) on that port, or name it `http-...`"),
                    AppProtocol::Tcp if explicit || !attaches => out.add("WEFT0509", route.loaded, &path,
                        format!("Service {ns}/{} port {} is declared TCP, so HTTP rules never apply to it; the route is not attached there", p.name, sp.port),
                        "declare the port as http, http2 or grpc, or use a TCPRoute"),
                    _ => {}
                }
            }
        }
    }
}
