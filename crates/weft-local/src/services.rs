//! Service addresses for pods without a proxy (mode `none`). A proxy (a sidecar, or the node
//! proxy of an ambient pod) turns a Service VIP into an endpoint itself; a pod without one gets
//! what kube-proxy gives a node: a translation table in its own
//! namespace (see [`crate::net::ServiceNat`]) from every Service port to its ready endpoints,
//! kept current as pods become ready or stop being ready. A port with no ready endpoint is
//! refused at once.

use std::net::SocketAddrV4;
use std::sync::{Arc, Mutex};

use tokio::sync::watch;
use weft_core::model::vip::Cidr;

use crate::net::{self, ServiceNat, VipPort};
use crate::plan::Plan;
use crate::supervise::{Board, Report};

/// The table for pods without a proxy when the pods `ready` (indexes into `plan.pods`) are
/// the endpoints; and the Service ports left with none, as `ns/name:port`.
pub fn table(plan: &Plan, ready: &[usize]) -> (ServiceNat, Vec<String>) {
    let cidr: Cidr = plan
        .service_cidr
        .parse()
        .unwrap_or_else(|_| "198.18.128.0/17".parse().expect("a valid range"));
    let mut empty = Vec::new();
    let mut ports = Vec::new();
    for svc in &plan.services {
        for p in &svc.ports {
            let endpoints: Vec<SocketAddrV4> = p
                .backends
                .iter()
                .filter(|(i, _)| ready.contains(i))
                .map(|(i, port)| SocketAddrV4::new(plan.pods[*i].ip, *port))
                .collect();
            if endpoints.is_empty() {
                empty.push(format!("{}/{}:{}", svc.namespace, svc.name, p.port));
            }
            ports.push(VipPort {
                vip: SocketAddrV4::new(svc.vip, p.port),
                endpoints,
            });
        }
    }
    let nat = ServiceNat {
        service_cidr: (cidr.base, cidr.len),
        ports,
    };
    (nat, empty)
}

/// What a pod's status says about its Service addresses.
fn note(nat: &ServiceNat, empty: &[String]) -> String {
    let served = nat.ports.len() - empty.len();
    let mut s = format!(
        "no proxy: Service addresses translated in the pod ({served} of {} ports have ready endpoints)",
        nat.ports.len()
    );
    if !empty.is_empty() {
        s += &format!(
            "; no ready endpoint, connections reset at once: {}",
            empty.join(", ")
        );
    }
    s
}

/// Service translation in the pods in mode `none`: which pods those are is read from the
/// status (it changes when a pod switches modes); one pod at a time is changed, under a lock,
/// so a pod that switches is never changed behind its back.
#[derive(Debug)]
pub struct Translation {
    /// The plan in force (its pods and Services change while the mesh runs); held while a pod
    /// is changed.
    plan: Mutex<Plan>,
    board: Arc<Board>,
}

impl Translation {
    /// Follows `plan` from now on (pods or Services came or went), and installs the tables
    /// anew for the pods ready now.
    pub fn set_plan(&self, plan: Plan) {
        *self.lock() = plan;
        let now = self.board.ready().borrow().clone();
        if let Err(e) = self.install_all(&now) {
            eprintln!("weft up: {e:#}");
        }
    }

    /// Installs the table in every pod in mode `none`, for the pods ready now.
    fn install_all(&self, ready: &[usize]) -> anyhow::Result<()> {
        let plan = self.lock();
        let (nat, empty) = table(&plan, ready);
        let note = note(&nat, &empty);
        let none: Vec<usize> = (self.board.snapshot().pods.iter().enumerate())
            .filter(|(i, p)| p.mode == "none" && !p.removed && *i < plan.pods.len())
            .map(|(i, _)| i)
            .collect();
        for i in none {
            self.install(&plan, i, &nat, &note)?;
        }
        Ok(())
    }

    fn install(&self, plan: &Plan, i: usize, nat: &ServiceNat, note: &str) -> anyhow::Result<()> {
        let pod = &plan.pods[i];
        let result = net::install_service_nat(&pod.netns, nat);
        let text = match &result {
            Ok(()) => note.to_string(),
            Err(e) => format!("no proxy: Service addresses NOT translated: {e}"),
        };
        self.board.update(|s| s.pods[i].services = Some(text));
        result.map_err(|e| anyhow::anyhow!("pod {}: Service addresses: {e}", pod.id()))
    }

    /// Gives pod `i` (now in mode `none`) its Service addresses, for the pods ready now.
    pub fn translate(&self, i: usize) -> anyhow::Result<()> {
        let plan = self.lock();
        let (nat, empty) = table(&plan, &self.board.ready().borrow());
        self.install(&plan, i, &nat, &note(&nat, &empty))
    }

    /// Takes pod `i`'s Service addresses away (it has a proxy now, which translates them).
    pub fn untranslate(&self, i: usize) -> anyhow::Result<()> {
        let plan = self.lock();
        let pod = &plan.pods[i];
        self.board.update(|s| s.pods[i].services = None);
        net::remove_service_nat(&pod.netns)
            .map_err(|e| anyhow::anyhow!("pod {}: removing Service addresses: {e}", pod.id()))
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Plan> {
        self.plan.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// Gives the pods in mode `none` their Service addresses before anything runs (every port
/// refused until an endpoint is ready), then keeps them current in a task until it is aborted.
pub async fn start(
    plan: &Plan,
    board: &Arc<Board>,
    report: &Report,
) -> anyhow::Result<(Arc<Translation>, tokio::task::JoinHandle<()>)> {
    let follow = board.ready();
    let now = follow.borrow().clone();
    let t = Arc::new(Translation {
        plan: Mutex::new(plan.clone()),
        board: board.clone(),
    });
    let t2 = t.clone();
    tokio::task::spawn_blocking(move || t2.install_all(&now)).await??;
    let task = tokio::spawn(keep_current(t.clone(), follow, report.clone()));
    Ok((t, task))
}

/// Reinstalls the tables whenever the set of ready pods changes.
async fn keep_current(t: Arc<Translation>, mut ready: watch::Receiver<Vec<usize>>, report: Report) {
    while ready.changed().await.is_ok() {
        let now = ready.borrow_and_update().clone();
        let t = t.clone();
        let done = tokio::task::spawn_blocking(move || t.install_all(&now)).await;
        match done {
            Ok(Ok(())) => {}
            Ok(Err(e)) => report(format!("{e:#}")),
            Err(e) => report(format!("updating Service addresses: {e}")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::{Options, PodPlan};
    use std::net::Ipv4Addr;
    use std::path::Path;

    const MESH: &str = r#"
apiVersion: weft.dev/v1alpha1
kind: Workload
metadata: {name: api, namespace: shop, labels: {app: api}}
spec:
  command: [api]
  replicas: 2
  ports: [{name: http, containerPort: 8080}]
---
apiVersion: weft.dev/v1alpha1
kind: Workload
metadata: {name: legacy, namespace: shop, labels: {app: legacy, weft.dev/dataplane-mode: none}}
spec: {command: [legacy]}
---
apiVersion: v1
kind: Service
metadata: {name: api, namespace: shop}
spec: {selector: {app: api}, ports: [{port: 80, targetPort: http}, {name: admin, port: 9000}]}
---
apiVersion: v1
kind: Service
metadata: {name: nobody, namespace: shop}
spec: {selector: {app: nobody}, ports: [{port: 80}]}
"#;

    fn plan() -> Plan {
        let out = weft_core::parse_str("/cfg/mesh.yaml", MESH);
        assert!(out.is_ok(), "{:?}", out.errors);
        let opts = Options {
            name: "nos1".into(),
            weft: "/usr/bin/weft".into(),
            ingress_port: None,
            admin: "127.0.0.1:15014".parse().unwrap(),
        };
        Plan::new(&out.config, Path::new("/cfg"), &opts).unwrap()
    }

    #[test]
    fn ready_pods_are_the_endpoints_of_each_port() {
        let p = plan();
        let names: Vec<String> = p.pods.iter().map(PodPlan::id).collect();
        assert_eq!(names, ["shop/api-0", "shop/api-1", "shop/legacy-0"]);
        let api = p.services.iter().find(|s| s.name == "api").unwrap();
        let vip = api.vip;
        let (nat, empty) = table(&p, &[1, 2]);
        assert_eq!(
            nat.service_cidr,
            (Ipv4Addr::new(198, 18, 128, 0), 17),
            "refused: the whole service range"
        );
        let to = |port: u16| {
            nat.ports
                .iter()
                .find(|v| v.vip == SocketAddrV4::new(vip, port))
                .unwrap()
                .endpoints
                .clone()
        };
        // Only api-1 is ready; the named target port resolves to the container port.
        assert_eq!(to(80), [SocketAddrV4::new(p.pods[1].ip, 8080)]);
        assert_eq!(to(9000), [SocketAddrV4::new(p.pods[1].ip, 9000)]);
        assert_eq!(empty, ["shop/nobody:80"]);

        let (nat, empty) = table(&p, &[]);
        assert!(nat.ports.iter().all(|v| v.endpoints.is_empty()));
        assert_eq!(empty.len(), 3);
        assert!(note(&nat, &empty).contains("0 of 3 ports have ready endpoints"));
        let (nat, _) = table(&p, &[0, 1]);
        let spread = nat
            .ports
            .iter()
            .find(|v| v.vip == SocketAddrV4::new(vip, 80))
            .unwrap();
        assert_eq!(spread.endpoints.len(), 2);
    }
}
