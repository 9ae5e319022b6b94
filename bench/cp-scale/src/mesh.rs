//! The generated mesh: a config directory with one file per Service (a Service and its
//! HTTPRoute), and a pods file listing the endpoints, in the shape `weft control --pods` reads.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::Path;

use anyhow::Context;
use weft_core::model::{Pod, PodList};

pub const NAMESPACE: &str = "scale";

/// `svc-00042`: the name of Service `i`.
pub fn service(i: usize) -> String {
    format!("svc-{i:05}")
}

/// The discovery name of Service `i` (`NAMESPACE/NAME`).
pub fn service_key(i: usize) -> String {
    format!("{NAMESPACE}/{}", service(i))
}

/// The fixed VIP of Service 0, the one the explicit proxy's outbound listener targets.
pub const TARGET_VIP: Ipv4Addr = Ipv4Addr::new(198, 18, 128, 10);

/// How Service 0 routes: `change` goes into a request header, so every change makes a new
/// version; `fan_out` routes `/a`, `/b`, `/c` to Services 0, 1 and 2 (the explicit proxy calls
/// three Services through one target).
fn service_doc(i: usize, change: u64, fan_out: bool) -> String {
    let name = service(i);
    let cluster_ip = if i == 0 {
        format!("\n  clusterIP: {TARGET_VIP}")
    } else {
        String::new()
    };
    let rules = if fan_out && i == 0 {
        ["/a", "/b", "/c"]
            .iter()
            .enumerate()
            .map(|(n, path)| {
                format!(
                    "  - matches: [{{path: {{type: PathPrefix, value: {path}}}}}]\n    backendRefs: [{{name: {}, port: 80}}]\n",
                    service(n)
                )
            })
            .collect::<String>()
    } else {
        format!(
            "  - filters:\n    - type: RequestHeaderModifier\n      requestHeaderModifier:\n        set: [{{name: x-bench-change, value: \"{change}\"}}]\n    backendRefs: [{{name: {name}, port: 80}}]\n"
        )
    };
    format!(
        "apiVersion: v1\nkind: Service\nmetadata: {{name: {name}, namespace: {NAMESPACE}}}\nspec:{cluster_ip}\n  selector: {{app: {name}}}\n  ports: [{{name: http, port: 80, targetPort: 8080}}]\n---\napiVersion: gateway.networking.k8s.io/v1\nkind: HTTPRoute\nmetadata: {{name: {name}, namespace: {NAMESPACE}}}\nspec:\n  parentRefs: [{{group: \"\", kind: Service, name: {name}, port: 80}}]\n  rules:\n{rules}"
    )
}

/// Writes the whole config directory: the Mesh, the namespace and `services` Service files.
pub fn write_config(dir: &Path, services: usize, fan_out: bool) -> anyhow::Result<()> {
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let mesh = format!(
        "apiVersion: weft.dev/v1alpha1\nkind: Mesh\nmetadata: {{name: mesh}}\nspec:\n  trustDomain: scale.local\n  network: {{podCidr: 198.18.0.0/17, serviceCidr: 198.18.128.0/17}}\n---\napiVersion: v1\nkind: Namespace\nmetadata: {{name: {NAMESPACE}}}\n"
    );
    std::fs::write(dir.join("mesh.yaml"), mesh)?;
    for i in 0..services {
        write_service(dir, i, 0, fan_out)?;
    }
    Ok(())
}

/// (Re)writes Service `i`'s file; a new `change` is a config change a proxy must receive.
pub fn write_service(dir: &Path, i: usize, change: u64, fan_out: bool) -> anyhow::Result<()> {
    let path = dir.join(format!("{}.yaml", service(i)));
    std::fs::write(&path, service_doc(i, change, fan_out))
        .with_context(|| format!("writing {}", path.display()))
}

/// The address of endpoint `k`: 198.18.0.0/17 from .0.2 up (never contacted).
fn pod_ip(k: usize) -> IpAddr {
    let n = 2 + k as u32;
    IpAddr::V4(Ipv4Addr::from(u32::from(Ipv4Addr::new(198, 18, 0, 0)) + n))
}

/// `endpoints` pods spread round-robin over `services` Services. `inbound` gives the listed
/// Services' pods a real address to connect to (an HTTP server the benchmark runs).
pub fn pods(services: usize, endpoints: usize, inbound: &[(usize, SocketAddr)]) -> PodList {
    let pods = (0..endpoints)
        .map(|k| {
            let svc = k % services;
            let name = format!("{}-{}", service(svc), k / services);
            Pod {
                id: format!("{name}.{NAMESPACE}"),
                namespace: NAMESPACE.into(),
                workload: service(svc),
                name,
                ip: pod_ip(k),
                service_account: service(svc),
                labels: [("app".to_string(), service(svc))].into_iter().collect(),
                inbound: inbound.iter().find(|(s, _)| *s == svc).map(|(_, a)| *a),
                tunnel: None,
                node: String::new(),
                ready: true,
            }
        })
        .collect();
    PodList { pods }
}

pub fn write_pods(path: &Path, list: &PodList) -> anyhow::Result<()> {
    std::fs::write(path, serde_json::to_vec(list)?)
        .with_context(|| format!("writing {}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_generated_config_loads_without_errors() {
        let dir = std::env::temp_dir().join(format!("weft-bench-cp-{}", std::process::id()));
        write_config(&dir, 5, true).unwrap();
        write_service(&dir, 3, 7, true).unwrap();
        let out = weft_core::load_paths(&[dir.as_path()]);
        let _ = std::fs::remove_dir_all(&dir);
        assert!(out.errors.is_empty(), "{:?}", out.errors);
        let services = out
            .config
            .resources
            .iter()
            .filter(|l| matches!(l.resource, weft_core::resources::Resource::Service(_)))
            .count();
        assert_eq!(services, 5);
    }

    #[test]
    fn endpoints_spread_over_services_with_unique_ids_and_addresses() {
        let list = pods(3, 10, &[(1, "127.0.0.1:9".parse().unwrap())]);
        assert_eq!(list.pods.len(), 10);
        let ids: std::collections::BTreeSet<_> = list.pods.iter().map(|p| &p.id).collect();
        let ips: std::collections::BTreeSet<_> = list.pods.iter().map(|p| p.ip).collect();
        assert_eq!((ids.len(), ips.len()), (10, 10));
        assert_eq!(list.pods[4].workload, "svc-00001");
        assert!(list.pods[4].inbound.is_some() && list.pods[5].inbound.is_none());
    }
}
