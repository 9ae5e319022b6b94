//! Which proxy a name on the command line leads to in a `weft up` mesh: a pod (`cart-0`,
//! `shop/cart-0` or `cart-0.shop`; a bare name only when one namespace has it), an ingress
//! gateway (`gateway-NS-NAME` as `weft logs` names it, `gateway-NAME`, `NS/gateway-NAME`), or
//! a node (`node-1`).

use weft_local::plan::{GatewayPlan, Plan, PodPlan};

/// The proxy a name leads to.
#[derive(Debug, Clone, Copy)]
pub enum Target<'a> {
    /// A pod with a proxy of its own (sidecar or waypoint), admin inside the pod.
    InPod(&'a PodPlan),
    /// An ambient pod, served by its node's proxy.
    Ambient(&'a PodPlan),
    /// An ingress gateway, on the host.
    Gateway(&'a GatewayPlan),
    /// A node's proxy.
    Node(&'a str),
}

impl Target<'_> {
    /// How the control plane's `/debug/proxy_config` names it.
    pub fn query(&self) -> String {
        match self {
            Target::InPod(p) | Target::Ambient(p) => format!("pod={}", p.pod().id),
            Target::Gateway(g) => format!("gateway={}/{}", g.namespace, g.name),
            Target::Node(n) => format!("node={n}"),
        }
    }

    /// For messages: `shop/cart-0`, `gateway-shop-ingress`, `node-1`.
    pub fn label(&self) -> String {
        match self {
            Target::InPod(p) | Target::Ambient(p) => p.id(),
            Target::Gateway(g) => gateway_name(g),
            Target::Node(n) => n.to_string(),
        }
    }
}

/// `gateway-NS-NAME`, the gateway's name in `weft logs`.
pub fn gateway_name(g: &GatewayPlan) -> String {
    format!("gateway-{}-{}", g.namespace, g.name)
}

/// The proxy `name` leads to; the error says what the name could have been.
pub fn find<'a>(plan: &'a Plan, name: &str) -> anyhow::Result<Target<'a>> {
    let pods: Vec<&PodPlan> = (plan.pods.iter())
        .filter(|p| {
            p.id() == name || p.name == name || format!("{}.{}", p.name, p.namespace) == name
        })
        .collect();
    if let [pod] = pods[..] {
        return match (pod.sidecar() || pod.waypoint, pod.ambient()) {
            (true, _) => Ok(Target::InPod(pod)),
            (false, true) => Ok(Target::Ambient(pod)),
            (false, false) => anyhow::bail!("pod {} has no proxy (dataplane mode none)", pod.id()),
        };
    }
    if pods.len() > 1 {
        let ids: Vec<String> = pods.iter().map(|p| p.id()).collect();
        anyhow::bail!("{name:?} is ambiguous: name one of {}", ids.join(", "));
    }
    let gateway = plan.gateways.iter().find(|g| {
        let short = format!("gateway-{}", g.name);
        [
            gateway_name(g),
            short.clone(),
            format!("{}/{short}", g.namespace),
        ]
        .contains(&name.to_string())
    });
    if let Some(g) = gateway {
        return Ok(Target::Gateway(g));
    }
    if let Some(n) = plan.nodes.iter().find(|n| *n == name) {
        return Ok(Target::Node(n));
    }
    let pods: Vec<String> = plan.pods.iter().map(|p| p.id()).collect();
    let gateways: Vec<String> = plan.gateways.iter().map(gateway_name).collect();
    anyhow::bail!(
        "no pod, gateway or node {name:?} in mesh {:?}; pods: {}; gateways: {}; nodes: {}",
        plan.name,
        or_none(&pods),
        or_none(&gateways),
        or_none(&plan.nodes)
    )
}

fn or_none(list: &[String]) -> String {
    match list.is_empty() {
        true => "none".into(),
        false => list.join(", "),
    }
}
