//! The runtime's registration of what runs, as the control plane's bootstrap file: one
//! credential per pod (a sidecar's token, whatever its mode now, so that it can switch modes
//! without a new one), per node proxy, and per gateway. Written at start and again when a
//! pod's labels or mode change, and as pods come and go; a pod's token stays while it is in
//! the plan.

use super::spec::{NODE_ACCOUNT, NODE_NAMESPACE, gateway_pod};
use crate::credentials::{self, Grant};
use crate::plan::Plan;
use crate::rundir::RunDir;

/// Every credential of `plan`.
pub(super) fn grants(plan: &Plan) -> Vec<Grant> {
    let pods = plan.pods.iter().filter(|p| !p.removed).map(|p| Grant {
        namespace: p.namespace.clone(),
        service_account: p.service_account.clone(),
        pod: p.name.clone(),
        address: p.ip.into(),
        workload: p.workload.clone(),
        role: if p.waypoint { "waypoint" } else { "sidecar" },
        labels: p.labels.clone(),
        // Its node's proxy may hold its certificate (when the pod is in ambient mode); never a
        // waypoint's.
        node: if p.waypoint {
            String::new()
        } else {
            p.node.clone()
        },
    });
    // Node proxies and gateways run on the host and reach the control plane from its bridge
    // address.
    let nodes = plan.nodes.iter().map(|n| Grant {
        namespace: NODE_NAMESPACE.into(),
        service_account: NODE_ACCOUNT.into(),
        pod: n.clone(),
        address: plan.host_ip.into(),
        workload: NODE_ACCOUNT.into(),
        role: "node",
        labels: Default::default(),
        node: String::new(),
    });
    let gateways = plan.gateways.iter().map(|g| Grant {
        namespace: g.namespace.clone(),
        service_account: g.name.clone(),
        pod: gateway_pod(g),
        address: plan.host_ip.into(),
        workload: g.name.clone(),
        role: "gateway",
        labels: Default::default(),
        node: String::new(),
    });
    pods.chain(nodes).chain(gateways).collect()
}

/// Writes (or rewrites) the bootstrap file and the tokens it lacks.
pub(super) fn write(plan: &Plan, dir: &RunDir) -> anyhow::Result<()> {
    credentials::write(&dir.path, &grants(plan), &dir.path.join("bootstrap.json"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::Options;
    use std::path::Path;

    #[test]
    fn every_pod_gets_a_sidecar_token_on_its_node_and_every_node_one_of_its_own() {
        let yaml = r#"
apiVersion: weft.dev/v1alpha1
kind: Mesh
metadata: {name: mesh}
spec: {network: {nodes: 2}}
---
apiVersion: weft.dev/v1alpha1
kind: Workload
metadata: {name: web, namespace: shop, labels: {app: web, weft.dev/dataplane-mode: ambient}}
spec: {command: [web], replicas: 2, serviceAccountName: web}
---
apiVersion: weft.dev/v1alpha1
kind: Workload
metadata: {name: db, namespace: shop, labels: {weft.dev/dataplane-mode: none}}
spec: {command: [db]}
"#;
        let out = weft_core::parse_str("/cfg/mesh.yaml", yaml);
        assert!(out.is_ok(), "{:?}", out.errors);
        let opts = Options {
            name: "t1".into(),
            weft: "/usr/bin/weft".into(),
            ingress_port: None,
            admin: "127.0.0.1:15014".parse().unwrap(),
        };
        let plan = Plan::new(&out.config, Path::new("/cfg"), &opts).unwrap();
        let grants = grants(&plan);
        let who: Vec<(&str, &str, &str, &str)> = grants
            .iter()
            .map(|g| {
                (
                    g.namespace.as_str(),
                    g.pod.as_str(),
                    g.role,
                    g.node.as_str(),
                )
            })
            .collect();
        assert_eq!(
            who,
            [
                ("shop", "db-0", "sidecar", "node-1"),
                ("shop", "web-0", "sidecar", "node-2"),
                ("shop", "web-1", "sidecar", "node-1"),
                ("weft-system", "node-1", "node", ""),
                ("weft-system", "node-2", "node", ""),
            ]
        );
        let node = &grants[3];
        assert_eq!(node.service_account, "weft-node");
        assert_eq!(node.workload, "weft-node");
        assert_eq!(node.address, std::net::IpAddr::from(plan.host_ip));
        assert_eq!(grants[1].address, std::net::IpAddr::from(plan.pods[1].ip));
    }
}
