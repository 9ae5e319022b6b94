//! What `weft tap` and `weft top` read: a target (`pod/cart-0`, `workload/cart`, `svc/cart`,
//! `gateway/ingress`, each also as `KIND NAME` or `KIND/NS/NAME`) → the proxies to tap.
//!
//! A sidecar's (or waypoint's) admin listens inside its pod; an ambient pod's records are its
//! node proxy's, read there and kept to those whose addresses are the pod's; a gateway's admin
//! is on the host, at the address it reported in the run directory.

use std::net::{IpAddr, SocketAddr};

use weft_local::addresses::ProxyAddresses;
use weft_local::plan::{Plan, PodPlan};
use weft_local::rundir::RunDir;

/// What a target names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Pod,
    Workload,
    Service,
    Gateway,
}

/// A parsed target: kind, optional namespace, name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    pub kind: Kind,
    pub namespace: Option<String>,
    pub name: String,
}

pub const GRAMMAR: &str = "pod/NAME, workload/NAME (or deploy/NAME), svc/NAME (the pods that \
serve it) or gateway/NAME; each also as `KIND NAME` or KIND/NAMESPACE/NAME; a bare NAME or \
NAMESPACE/NAME is a pod (`shop/gateway-ingress` is the gateway's)";

fn kind(word: &str) -> Option<Kind> {
    Some(match word {
        "pod" | "pods" | "po" => Kind::Pod,
        "workload" | "workloads" | "wl" | "deploy" | "deployment" => Kind::Workload,
        "svc" | "service" | "services" => Kind::Service,
        "gateway" | "gw" => Kind::Gateway,
        _ => return None,
    })
}

/// The target of `words` (one or two), with `namespace` (`-n`) unless it names its own.
pub fn parse(words: &[String], namespace: Option<&str>) -> anyhow::Result<Target> {
    let bad = || anyhow::anyhow!("target {:?}: use {GRAMMAR}", words.join(" "));
    let (k, rest) = match words {
        [one] => match one.split_once('/') {
            Some((k, rest)) if kind(k).is_some() => (kind(k).ok_or_else(bad)?, rest.to_string()),
            // NAMESPACE/NAME: a pod, as every verb names one.
            Some(_) => (Kind::Pod, one.clone()),
            None => (Kind::Pod, one.clone()),
        },
        [k, name] => (kind(k).ok_or_else(bad)?, name.clone()),
        _ => return Err(bad()),
    };
    let (ns, name) = match rest.split_once('/') {
        Some((ns, name)) => (Some(ns.to_string()), name.to_string()),
        None => (namespace.map(str::to_string), rest),
    };
    if name.is_empty() || name.contains('/') || ns.as_deref() == Some("") {
        return Err(bad());
    }
    Ok(Target {
        kind: k,
        namespace: ns,
        name,
    })
}

/// How to reach one proxy's admin API.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Admin {
    /// 127.0.0.1:15000 inside the pod's network namespace.
    InPod { netns: String },
    /// On the host (a gateway, a node proxy); `only` keeps the records of one ambient pod.
    Host {
        addr: SocketAddr,
        only: Option<IpAddr>,
    },
}

/// One proxy to tap, named as the output shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tapped {
    /// `ns/name` of the pod (or gateway).
    pub name: String,
    pub admin: Admin,
}

/// The proxies `target` leads to in the running mesh.
pub fn resolve(dir: &RunDir, plan: &Plan, target: &Target) -> anyhow::Result<Vec<Tapped>> {
    let in_ns = |ns: &str| target.namespace.as_deref().is_none_or(|n| n == ns);
    if target.kind == Kind::Pod {
        // The gateway's pod (`gateway-NAME`, as `weft get pods` lists it).
        let gw = (plan.gateways.iter())
            .find(|g| weft_local::runtime::gateway_pod(g) == target.name && in_ns(&g.namespace));
        if let Some(g) = gw {
            let t = Target {
                kind: Kind::Gateway,
                namespace: Some(g.namespace.clone()),
                name: g.name.clone(),
            };
            return gateway(dir, plan, &t);
        }
        // A proxy's id, `NAME.NAMESPACE`, as older outputs showed pods.
        let found = |name: &str| plan.pods.iter().any(|p| p.name == name);
        if let Some((name, ns)) = (target.name.rsplit_once('.')).filter(|_| !found(&target.name))
            && target.namespace.is_none()
            && found(name)
        {
            let t = Target {
                namespace: Some(ns.to_string()),
                name: name.to_string(),
                ..target.clone()
            };
            return resolve(dir, plan, &t);
        }
    }
    let pods: Vec<&PodPlan> = match target.kind {
        Kind::Pod => plan
            .pods
            .iter()
            .filter(|p| p.name == target.name && in_ns(&p.namespace))
            .collect(),
        Kind::Workload => plan
            .pods
            .iter()
            .filter(|p| p.workload == target.name && in_ns(&p.namespace))
            .collect(),
        Kind::Service => {
            let mut pods: Vec<&PodPlan> = plan
                .services
                .iter()
                .filter(|s| s.name == target.name && in_ns(&s.namespace))
                .flat_map(|s| s.ports.iter().flat_map(|p| p.backends.iter()))
                .filter_map(|(i, _)| plan.pods.get(*i))
                .collect();
            pods.sort_by_key(|p| p.id());
            pods.dedup_by_key(|p| p.id());
            pods
        }
        Kind::Gateway => return gateway(dir, plan, target),
    };
    let namespaces: std::collections::BTreeSet<&str> =
        pods.iter().map(|p| p.namespace.as_str()).collect();
    if namespaces.len() > 1 {
        anyhow::bail!(
            "{} is in several namespaces ({}): add -n NAMESPACE",
            target.name,
            namespaces.into_iter().collect::<Vec<_>>().join(", ")
        );
    }
    if pods.is_empty() {
        let names: Vec<String> = match target.kind {
            Kind::Pod => plan.pods.iter().map(|p| p.id()).collect(),
            Kind::Workload => {
                let mut w: Vec<String> = (plan.pods.iter())
                    .map(|p| format!("{}/{}", p.namespace, p.workload))
                    .collect();
                w.dedup();
                w
            }
            _ => (plan.services.iter())
                .map(|s| format!("{}/{}", s.namespace, s.name))
                .collect(),
        };
        anyhow::bail!(
            "no match for {}; there are: {}",
            target.name,
            names.join(", ")
        );
    }
    pods.into_iter().map(|p| pod(dir, p)).collect()
}

fn pod(dir: &RunDir, p: &PodPlan) -> anyhow::Result<Tapped> {
    let admin = match (p.sidecar() || p.waypoint, p.ambient()) {
        (true, _) => Admin::InPod {
            netns: p.netns.clone(),
        },
        (false, true) => {
            let path = dir.addresses(&format!("node-{}", p.node));
            let bound: ProxyAddresses = weft_local::addresses::read(&path).map_err(|e| {
                anyhow::anyhow!(
                    "the proxy of {} (serving {}) is not running: {e}",
                    p.node,
                    p.id()
                )
            })?;
            Admin::Host {
                addr: bound.admin,
                only: Some(IpAddr::V4(p.ip)),
            }
        }
        (false, false) => anyhow::bail!(
            "pod {} has no proxy (dataplane mode none): nothing sees its traffic but the \
             proxies of its peers (tap those)",
            p.id()
        ),
    };
    Ok(Tapped {
        name: p.id(),
        admin,
    })
}

fn gateway(dir: &RunDir, plan: &Plan, target: &Target) -> anyhow::Result<Vec<Tapped>> {
    let in_ns = |ns: &str| target.namespace.as_deref().is_none_or(|n| n == ns);
    let found: Vec<_> = (plan.gateways.iter())
        .filter(|g| g.name == target.name && in_ns(&g.namespace))
        .collect();
    let [g] = found[..] else {
        let all: Vec<String> = (plan.gateways.iter())
            .map(|g| format!("{}/{}", g.namespace, g.name))
            .collect();
        anyhow::bail!(
            "{} gateways named {}; there are: {}",
            found.len(),
            target.name,
            all.join(", ")
        );
    };
    let path = dir.addresses(&format!("gateway-{}.{}", g.namespace, g.name));
    let bound: ProxyAddresses = weft_local::addresses::read(&path)
        .map_err(|e| anyhow::anyhow!("gateway {}/{} is not running: {e}", g.namespace, g.name))?;
    Ok(vec![Tapped {
        // Its pod's name, as `weft get pods` lists it.
        name: format!("{}/{}", g.namespace, weft_local::runtime::gateway_pod(g)),
        admin: Admin::Host {
            addr: bound.admin,
            only: None,
        },
    }])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(s: &str) -> Vec<String> {
        s.split(' ').map(str::to_string).collect()
    }

    #[test]
    fn targets_read_in_every_form() {
        let t = |k, ns: Option<&str>, n: &str| Target {
            kind: k,
            namespace: ns.map(str::to_string),
            name: n.into(),
        };
        for (input, ns, want) in [
            ("pod/cart-0", None, t(Kind::Pod, None, "cart-0")),
            ("cart-0", Some("shop"), t(Kind::Pod, Some("shop"), "cart-0")),
            ("pod cart-0", None, t(Kind::Pod, None, "cart-0")),
            ("deploy/cart", None, t(Kind::Workload, None, "cart")),
            (
                "workload/shop/cart",
                Some("x"),
                t(Kind::Workload, Some("shop"), "cart"),
            ),
            ("svc cart", None, t(Kind::Service, None, "cart")),
            ("shop/cart-0", None, t(Kind::Pod, Some("shop"), "cart-0")),
            (
                "shop/gateway-ingress",
                None,
                t(Kind::Pod, Some("shop"), "gateway-ingress"),
            ),
            (
                "gw/shop/ingress",
                None,
                t(Kind::Gateway, Some("shop"), "ingress"),
            ),
        ] {
            assert_eq!(parse(&words(input), ns).unwrap(), want, "{input}");
        }
        for bad in ["node x", "pod/", "pod/a/b/c", "pod a b", "svc//x", "a/b/c"] {
            assert!(parse(&words(bad), None).is_err(), "{bad}");
        }
    }
}
