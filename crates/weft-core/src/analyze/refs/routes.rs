//! The references of routes (01xx): parents that do not exist or have no such port or
//! listener, and backends that do not resolve.

use super::super::{Index, Report};

pub(super) fn check(ix: &Index<'_>, out: &mut Report) {
    for route in ix.routes() {
        let l = route.loaded;
        let own_ns = l.resource.metadata().namespace();
        for (i, p) in route.parents.iter().enumerate() {
            let path = format!("spec.parentRefs[{i}]");
            let ns = p.namespace.as_deref().unwrap_or(own_ns);
            if p.is_service() {
                let Some((_, svc)) = ix.service(ns, &p.name) else {
                    out.add(
                        "WEFT0101",
                        l,
                        &format!("{path}.name"),
                        format!(
                            "parentRef names Service {ns}/{} which does not exist",
                            p.name
                        ),
                        "fix the name or namespace, or define the Service",
                    );
                    continue;
                };
                let by_port = p
                    .port
                    .filter(|n| !svc.spec.ports.iter().any(|sp| sp.port == *n));
                let by_name = p
                    .section_name
                    .as_ref()
                    .filter(|s| !svc.spec.ports.iter().any(|sp| sp.name.as_ref() == Some(*s)));
                if let Some(port) = by_port {
                    out.add(
                        "WEFT0102",
                        l,
                        &format!("{path}.port"),
                        format!(
                            "Service {ns}/{} has no port {port}; the route is not attached to it",
                            p.name
                        ),
                        format!("use one of its ports: {}", port_list(svc)),
                    );
                }
                if let Some(section) = by_name {
                    out.add(
                        "WEFT0102",
                        l,
                        &format!("{path}.sectionName"),
                        format!("Service {ns}/{} has no port named {section:?}; the route is not attached to it", p.name),
                        format!("use one of its ports: {}", port_list(svc)),
                    );
                }
                if let (Some(port), Some(section), None, None) =
                    (p.port, &p.section_name, by_port, by_name)
                    && !svc
                        .spec
                        .ports
                        .iter()
                        .any(|sp| sp.port == port && sp.name.as_ref() == Some(section))
                {
                    out.add(
                        "WEFT0102",
                        l,
                        &path,
                        format!("Service {ns}/{} has no port {port} named {section:?}; the route is not attached to it", p.name),
                        format!("keep only `port` or only `sectionName`, or make them name the same port: {}", port_list(svc)),
                    );
                }
            } else {
                let Some((_, gw)) = ix.gateway(ns, &p.name) else {
                    out.add("WEFT0105", l, &format!("{path}.name"),
                        format!("parentRef names Gateway {ns}/{} which does not exist", p.name),
                        "for mesh routing to a Service set `group: \"\"` and `kind: Service`; otherwise define the Gateway");
                    continue;
                };
                let names: Vec<&str> = gw.spec.listeners.iter().map(|x| x.name.as_str()).collect();
                if let Some(section) = &p.section_name
                    && !names.contains(&section.as_str())
                {
                    out.add(
                        "WEFT0102",
                        l,
                        &format!("{path}.sectionName"),
                        format!("Gateway {ns}/{} has no listener {section:?}", p.name),
                        format!("use one of its listeners: {}", names.join(", ")),
                    );
                }
                if let Some(port) = p.port
                    && !gw.spec.listeners.iter().any(|x| x.port == port)
                {
                    out.add(
                        "WEFT0102",
                        l,
                        &format!("{path}.port"),
                        format!("Gateway {ns}/{} has no listener on port {port}", p.name),
                        "use a listener's port, or drop `port`",
                    );
                }
            }
        }
        for (path, b) in &route.backends {
            let ns = b.namespace.as_deref().unwrap_or(own_ns);
            if !b.is_service() {
                out.add(
                    "WEFT0103",
                    l,
                    path,
                    format!(
                        "backend {}/{} {ns}/{} is not a Service; its share of requests gets 500",
                        b.group.as_deref().unwrap_or(""),
                        b.kind.as_deref().unwrap_or("Service"),
                        b.name
                    ),
                    "send to a Service (`group: \"\"`, `kind: Service`)",
                );
                continue;
            }
            let Some((_, svc)) = ix.service(ns, &b.name) else {
                out.add(
                    "WEFT0103",
                    l,
                    &format!("{path}.name"),
                    format!(
                        "backend Service {ns}/{} does not exist; its share of requests gets 500",
                        b.name
                    ),
                    "fix the name or namespace, or define the Service",
                );
                continue;
            };
            match b.port {
                None => out.add(
                    "WEFT0104",
                    l,
                    path,
                    format!("backend {ns}/{} has no `port`", b.name),
                    format!("add `port:` with one of: {}", port_list(svc)),
                ),
                Some(port) if !svc.spec.ports.iter().any(|sp| sp.port == port) => out.add(
                    "WEFT0111",
                    l,
                    &format!("{path}.port"),
                    format!(
                        "Service {ns}/{} has no port {port}; this backend's share of requests gets 500",
                        b.name
                    ),
                    format!("use one of its ports: {}", port_list(svc)),
                ),
                Some(_) => {}
            }
        }
    }
}

fn port_list(svc: &crate::resources::Service) -> String {
    let ports: Vec<String> = svc
        .spec
        .ports
        .iter()
        .map(|p| match &p.name {
            Some(n) => format!("{} ({n})", p.port),
            None => p.port.to_string(),
        })
        .collect();
    if ports.is_empty() {
        "(the Service declares no ports)".into()
    } else {
        ports.join(", ")
    }
}
