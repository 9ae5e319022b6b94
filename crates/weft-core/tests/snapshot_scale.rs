//! How the incremental snapshot scales: 10 000 pods applied one at a time to a 1 000-Service
//! configuration, against one full build. Prints the times (run it with `--release -- --ignored
//! --nocapture`); asserts only that both paths agree.

use std::collections::BTreeMap;
use std::time::Instant;

use weft_core::load::parse_str;
use weft_core::model::{Pod, Snapshot};

const NAMESPACES: usize = 10;
const SERVICES_PER_NAMESPACE: usize = 100;
const PODS_PER_SERVICE: usize = 10;

fn config_text() -> String {
    let mut docs = Vec::new();
    for ns in 0..NAMESPACES {
        for s in 0..SERVICES_PER_NAMESPACE {
            docs.push(format!(
                "apiVersion: weft.dev/v1alpha1\nkind: Workload\nmetadata: {{name: w{s}, namespace: ns{ns}, labels: {{app: s{s}}}}}\nspec:\n  command: [app]\n  ports: [{{name: http, containerPort: 8080}}]\n"
            ));
            docs.push(format!(
                "apiVersion: v1\nkind: Service\nmetadata: {{name: s{s}, namespace: ns{ns}}}\nspec:\n  selector: {{app: s{s}}}\n  ports: [{{name: http, port: 80, targetPort: http}}]\n"
            ));
        }
    }
    docs.join("---\n")
}

fn pods() -> Vec<Pod> {
    let mut out = Vec::new();
    for ns in 0..NAMESPACES {
        for s in 0..SERVICES_PER_NAMESPACE {
            for r in 0..PODS_PER_SERVICE {
                let n = out.len() as u32;
                out.push(Pod {
                    id: format!("w{s}-{r}.ns{ns}"),
                    namespace: format!("ns{ns}"),
                    workload: format!("w{s}"),
                    name: format!("w{s}-{r}"),
                    ip: std::net::Ipv4Addr::from(0x0a00_0000 + n).into(),
                    service_account: "default".into(),
                    labels: BTreeMap::new(),
                    inbound: None,
                    tunnel: None,
                    node: String::new(),
                    ready: true,
                });
            }
        }
    }
    out
}

#[test]
#[ignore = "a measurement: run with --release -- --ignored --nocapture"]
fn ten_thousand_pods_on_a_thousand_services() {
    let out = parse_str("scale.yaml", &config_text());
    assert!(out.errors.is_empty(), "{:#?}", out.errors);
    let pods = pods();

    let t = Instant::now();
    let mut snap = Snapshot::build(&out.config, &[]);
    println!("configuration only: {:?}", t.elapsed());

    let t = Instant::now();
    for p in &pods {
        snap.set_pod(p.clone());
    }
    let elapsed = t.elapsed();
    println!(
        "{} set_pod: {elapsed:?} ({:?} each)",
        pods.len(),
        elapsed / pods.len() as u32
    );

    let t = Instant::now();
    let published = snap.clone();
    println!("clone for publication: {:?}", t.elapsed());
    let t = Instant::now();
    let pods_only = snap.pods.clone();
    println!("of which the pods map: {:?}", t.elapsed());
    drop(pods_only);

    let t = Instant::now();
    snap.remove_pod(&pods[0].id);
    snap.set_pod(pods[0].clone());
    println!("one leave + join on the full mesh: {:?}", t.elapsed());
    drop(published);

    let t = Instant::now();
    let full = Snapshot::build(&out.config, &pods);
    println!("full build with every pod: {:?}", t.elapsed());

    let t = Instant::now();
    for p in pods.iter().take(1000) {
        std::hint::black_box(snap.proxy(p));
    }
    println!("1000 proxy(): {:?}", t.elapsed());

    assert_eq!(snap.services, full.services);
    assert_eq!(snap.pods, full.pods);
}
