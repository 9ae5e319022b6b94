//! A new configuration's plan fitted to the mesh that runs: a pod keeps its address, host
//! link and node for as long as it runs (planning afresh would number pods anew — one more
//! replica of `catalog` would move every pod planned after it), and a new pod takes the lowest
//! address no running pod holds, in the network that runs (a new Mesh network is refused while
//! the mesh runs, see [`crate::change`]).

use std::collections::BTreeSet;
use std::net::Ipv4Addr;

use anyhow::bail;
use weft_core::model::vip::Cidr;

use super::{Plan, PodPlan, Spread};

/// Gives `wanted`'s pods the addresses and nodes they run with in `running`, and its new pods
/// free addresses (and, should their node not run, one of the nodes that do).
pub fn fit(wanted: &mut Plan, running: &Plan) -> anyhow::Result<()> {
    let cidr: Cidr = running
        .pod_cidr
        .parse()
        .map_err(|e| anyhow::anyhow!("podCidr {}: {e}", running.pod_cidr))?;
    let live: Vec<&PodPlan> = running.pods.iter().filter(|p| !p.removed).collect();
    let mut taken: BTreeSet<Ipv4Addr> = live.iter().map(|p| p.ip).collect();
    let mut spread = Spread::new(running.nodes.clone());
    let mut next = 0u32;
    for pod in &mut wanted.pods {
        if let Some(old) = live.iter().find(|p| p.id() == pod.id()) {
            pod.readdress(&running.name, host_number(cidr, old.ip), old.ip);
            pod.netns.clone_from(&old.netns);
            // Its node moves only where its Workload names another (which is refused).
            if pod.node_name.is_none() || pod.node_name == old.node_name {
                pod.node.clone_from(&old.node);
            }
            continue;
        }
        let n = loop {
            next += 1;
            if next >= cidr.hosts() {
                bail!(
                    "podCidr {} has no free address for pod {}",
                    running.pod_cidr,
                    pod.id()
                );
            }
            if !taken.contains(&cidr.host(next)) {
                break next;
            }
        };
        let ip = cidr.host(n);
        taken.insert(ip);
        pod.readdress(&running.name, n, ip);
        pod.netns = format!("{}-{}-{}", running.name, pod.namespace, pod.name);
        if !running.nodes.contains(&pod.node) {
            pod.node = spread.next(None, &pod.id())?;
        }
    }
    Ok(())
}

/// The host number of `ip` in `cidr` (its `n` in [`Cidr::host`]).
fn host_number(cidr: Cidr, ip: Ipv4Addr) -> u32 {
    u32::from(ip)
        .wrapping_sub(u32::from(cidr.base))
        .wrapping_sub(1)
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;
    use crate::plan::Options;

    fn plan(yaml: &str, running: Option<&Plan>) -> Plan {
        let out = weft_core::parse_str("/cfg/mesh.yaml", yaml);
        assert!(out.is_ok(), "{:?}", out.errors);
        let opts = Options {
            name: "kp".into(),
            weft: "/usr/bin/weft".into(),
            ingress_port: None,
            admin: "127.0.0.1:15014".parse().unwrap(),
        };
        let dir = Path::new("/cfg");
        match running {
            None => Plan::new(&out.config, dir, &opts).unwrap(),
            Some(r) => Plan::next(&out.config, dir, &opts, r).unwrap(),
        }
    }

    fn shop(catalog: u32, web: u32) -> String {
        format!(
            r#"
apiVersion: weft.dev/v1alpha1
kind: Workload
metadata: {{name: catalog, namespace: shop, labels: {{app: catalog}}}}
spec: {{command: [catalog], replicas: {catalog}}}
---
apiVersion: weft.dev/v1alpha1
kind: Workload
metadata: {{name: web, namespace: shop, labels: {{app: web}}}}
spec: {{command: [web], replicas: {web}, ports: [{{containerPort: 8080}}]}}
---
apiVersion: v1
kind: Service
metadata: {{name: web, namespace: shop}}
spec: {{selector: {{app: web}}, ports: [{{port: 80, targetPort: 8080}}]}}
"#
        )
    }

    fn addresses(p: &Plan) -> Vec<(String, String, String)> {
        (p.pods.iter())
            .map(|p| {
                let env = p.env.iter().find(|(k, _)| k == "POD_IP").unwrap();
                (
                    p.name.clone(),
                    p.ip.to_string(),
                    format!("{} {}", p.veth, env.1),
                )
            })
            .collect()
    }

    #[test]
    fn running_pods_keep_their_addresses_and_new_ones_take_free_ones() {
        let running = plan(&shop(1, 2), None);
        assert_eq!(
            addresses(&running),
            [
                (
                    "catalog-0".into(),
                    "198.18.0.2".into(),
                    "kp-1 198.18.0.2".into()
                ),
                (
                    "web-0".into(),
                    "198.18.0.3".into(),
                    "kp-2 198.18.0.3".into()
                ),
                (
                    "web-1".into(),
                    "198.18.0.4".into(),
                    "kp-3 198.18.0.4".into()
                ),
            ]
        );
        // Planned afresh, web-0 would be 198.18.0.5; it keeps its address.
        let next = plan(&shop(3, 2), Some(&running));
        assert_eq!(
            addresses(&next),
            [
                (
                    "catalog-0".into(),
                    "198.18.0.2".into(),
                    "kp-1 198.18.0.2".into()
                ),
                (
                    "catalog-1".into(),
                    "198.18.0.5".into(),
                    "kp-4 198.18.0.5".into()
                ),
                (
                    "catalog-2".into(),
                    "198.18.0.6".into(),
                    "kp-5 198.18.0.6".into()
                ),
                (
                    "web-0".into(),
                    "198.18.0.3".into(),
                    "kp-2 198.18.0.3".into()
                ),
                (
                    "web-1".into(),
                    "198.18.0.4".into(),
                    "kp-3 198.18.0.4".into()
                ),
            ]
        );
        // The Service's backends are the pods at their kept addresses.
        let web = next.services.iter().find(|s| s.name == "web").unwrap();
        let backends: Vec<String> = (web.ports[0].backends.iter())
            .map(|(i, port)| format!("{}:{port}", next.pods[*i].ip))
            .collect();
        assert_eq!(backends, ["198.18.0.3:8080", "198.18.0.4:8080"]);
        assert!(next.hosts["shop"].contains("198.18.0.6\tcatalog-2"));
    }

    #[test]
    fn an_address_is_free_again_once_its_pod_is_removed() {
        let mut running = plan(&shop(2, 1), None);
        // catalog-1 (198.18.0.3) was removed; a pod added now takes its address.
        running.pods[1].removed = true;
        let next = plan(&shop(1, 2), Some(&running));
        let names: Vec<(String, String)> = (next.pods.iter())
            .map(|p| (p.name.clone(), p.ip.to_string()))
            .collect();
        assert_eq!(
            names,
            [
                ("catalog-0".to_string(), "198.18.0.2".to_string()),
                ("web-0".to_string(), "198.18.0.4".to_string()),
                ("web-1".to_string(), "198.18.0.3".to_string()),
            ]
        );
        // Written out, a removed pod is not there and the backends are renumbered to match.
        let visible = running.visible();
        let names: Vec<&str> = visible.pods.iter().map(|p| p.name.as_str()).collect();
        assert_eq!(names, ["catalog-0", "web-0"]);
        let web = visible.services.iter().find(|s| s.name == "web").unwrap();
        assert_eq!(web.ports[0].backends, [(1, 8080)]);
    }
}
