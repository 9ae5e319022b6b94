//! One way to name what runs in a `weft up` mesh, in every verb's input and output:
//! `NAMESPACE/NAME`, or `NAME` alone when no other namespace has one. `pod/` in front is read
//! (as kubectl users type it), and so is `NAME.NAMESPACE`, the id proxies go by, so a name
//! copied from an older output still works.
//!
//! Besides the workloads' pods (and waypoints'), the mesh's own processes are pods: each
//! ingress gateway is `NS/gateway-NAME`, each node proxy `weft-system/NODE`, each control plane
//! `weft-system/control-REVISION` — as `weft get pods` lists them and `weft events` names them.

use weft_local::plan::{GatewayPlan, Plan, PodPlan};
use weft_local::runtime::{NODE_NAMESPACE, gateway_pod};

/// What a pod name leads to.
#[derive(Debug, Clone, Copy)]
pub enum Found<'a> {
    /// A workload's (or waypoint's) pod.
    Pod(&'a PodPlan),
    Gateway(&'a GatewayPlan),
    /// A node's proxy, by the node's name.
    Node(&'a str),
    /// The control plane of a revision, by the revision's name.
    Control(&'a str),
}

/// One pod of the mesh with its name.
#[derive(Debug, Clone)]
pub struct Entry<'a> {
    pub namespace: String,
    pub name: String,
    pub found: Found<'a>,
}

impl Entry<'_> {
    /// `NAMESPACE/NAME`.
    pub fn id(&self) -> String {
        format!("{}/{}", self.namespace, self.name)
    }
}

/// Every pod of `plan`: the workloads', then the gateways, node proxies and the control planes
/// of `revisions`.
pub fn entries<'a>(plan: &'a Plan, revisions: &'a [String]) -> Vec<Entry<'a>> {
    let system = |name: String, found| Entry {
        namespace: NODE_NAMESPACE.into(),
        name,
        found,
    };
    let pods = plan.pods.iter().map(|p| Entry {
        namespace: p.namespace.clone(),
        name: p.name.clone(),
        found: Found::Pod(p),
    });
    let gateways = plan.gateways.iter().map(|g| Entry {
        namespace: g.namespace.clone(),
        name: gateway_pod(g),
        found: Found::Gateway(g),
    });
    let nodes = (plan.nodes.iter()).map(|n| system(n.clone(), Found::Node(n)));
    let controls = (revisions.iter()).map(|r| system(format!("control-{r}"), Found::Control(r)));
    pods.chain(gateways).chain(nodes).chain(controls).collect()
}

/// The entry `input` names; the error says which there are (or which it could be).
pub fn resolve<'e, 'a>(all: &'e [Entry<'a>], input: &str) -> anyhow::Result<&'e Entry<'a>> {
    let ids: Vec<(&str, &str)> = (all.iter())
        .map(|e| (e.namespace.as_str(), e.name.as_str()))
        .collect();
    pick(&ids, input)
        .map(|i| &all[i])
        .map_err(anyhow::Error::msg)
}

/// The index of the `(namespace, name)` that `input` names: `NS/NAME`, `NAME.NS` or a `NAME`
/// only one namespace has, each maybe after `pod/`.
pub fn pick(ids: &[(&str, &str)], input: &str) -> Result<usize, String> {
    pick_kind(ids, input, "pod")
}

/// [`pick`] among things of another kind (`service`, `workload`), which the errors name.
pub fn pick_kind(ids: &[(&str, &str)], input: &str, kind: &str) -> Result<usize, String> {
    let bare = (["pod/", "pods/", "po/"].iter())
        .find_map(|p| input.strip_prefix(p))
        .unwrap_or(input);
    let exact = |ns: &str, name: &str| ids.iter().position(|id| *id == (ns, name));
    if let Some((ns, name)) = bare.split_once('/') {
        return exact(ns, name).ok_or_else(|| none(ids, input, kind));
    }
    let same: Vec<usize> = (0..ids.len()).filter(|i| ids[*i].1 == bare).collect();
    match same[..] {
        [one] => return Ok(one),
        [_, _, ..] => {
            let which: Vec<String> = same.iter().map(|i| id(ids[*i])).collect();
            return Err(format!(
                "{input:?} is a {kind} in several namespaces ({}): say which, as NAMESPACE/NAME",
                which.join(", ")
            ));
        }
        [] => {}
    }
    bare.rsplit_once('.')
        .and_then(|(name, ns)| exact(ns, name))
        .ok_or_else(|| none(ids, input, kind))
}

fn id((ns, name): (&str, &str)) -> String {
    format!("{ns}/{name}")
}

fn none(ids: &[(&str, &str)], input: &str, kind: &str) -> String {
    let all: Vec<String> = ids.iter().map(|i| id(*i)).collect();
    format!("no {kind} {input:?}; {kind}s: {}", all.join(", "))
}

/// A proxy's id `POD.NAMESPACE` as `NAMESPACE/POD`, the way every verb names pods.
pub fn of_proxy_id(id: &str) -> String {
    match id.split_once('.') {
        Some((pod, ns)) => format!("{ns}/{pod}"),
        None => id.to_string(),
    }
}

/// The pod a proxy of the control plane's status (`node`: id, namespace, pod) runs for or as,
/// `NAMESPACE/POD`.
pub fn of_node(node: &serde_json::Value) -> String {
    match (node["namespace"].as_str(), node["pod"].as_str()) {
        (Some(ns), Some(pod)) if !ns.is_empty() && !pod.is_empty() => format!("{ns}/{pod}"),
        _ => of_proxy_id(node["id"].as_str().unwrap_or("?")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const IDS: [(&str, &str); 5] = [
        ("shop", "cart-0"),
        ("shop", "web-0"),
        ("lab", "web-0"),
        ("shop", "gateway-ingress"),
        ("weft-system", "node-1"),
    ];

    #[test]
    fn a_pod_is_named_ns_slash_name_or_by_a_name_only_one_namespace_has() {
        for (input, want) in [
            ("shop/cart-0", 0),
            ("cart-0", 0),
            ("pod/cart-0", 0),
            ("pod/shop/cart-0", 0),
            ("po/lab/web-0", 2),
            ("lab/web-0", 2),
            // A proxy's id, as older outputs showed it.
            ("cart-0.shop", 0),
            ("web-0.lab", 2),
            ("gateway-ingress", 3),
            ("node-1", 4),
            ("weft-system/node-1", 4),
        ] {
            assert_eq!(pick(&IDS, input), Ok(want), "{input}");
        }
    }

    #[test]
    fn an_ambiguous_or_unknown_name_says_what_there_is() {
        let err = pick(&IDS, "web-0").unwrap_err();
        assert!(
            err.contains("several namespaces (shop/web-0, lab/web-0)"),
            "{err}"
        );
        let err = pick(&IDS, "cart-1").unwrap_err();
        assert!(
            err.starts_with("no pod \"cart-1\"; pods: shop/cart-0, "),
            "{err}"
        );
        assert!(pick(&IDS, "lab/cart-0").is_err());
        assert!(pick(&IDS, "cart-0.lab").is_err());
    }

    #[test]
    fn proxies_are_named_by_their_pods() {
        assert_eq!(of_proxy_id("cart-0.shop"), "shop/cart-0");
        assert_eq!(of_proxy_id("odd"), "odd");
        let node = serde_json::json!({"id": "node-1.weft-system", "namespace": "weft-system", "pod": "node-1"});
        assert_eq!(of_node(&node), "weft-system/node-1");
        assert_eq!(
            of_node(&serde_json::json!({"id": "web-0.shop"})),
            "shop/web-0"
        );
    }
}
