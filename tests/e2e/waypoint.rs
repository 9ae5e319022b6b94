//! Waypoints on a real `weft up` mesh (the ambient shop, whose pricing Service uses a
//! waypoint): the waypoint runs pricing's 90/10 split and its request policy with the caller's
//! identity; the ingress gateway goes through it too; pricing's pods admit only the waypoint
//! (calling one directly is refused and counted); a Service labelled with a waypoint that does
//! not exist fails closed. Needs root (CI runs it with `--include-ignored`).

use std::time::Duration;

use weft_e2e::{ConfigDir, Mesh, http_get, serial, text};

const T: Duration = Duration::from_secs(30);

/// A second Service for pricing whose label names no waypoint (the analyzer's error is waived
/// so the mesh starts with it).
const TYPO: &str = r#"
apiVersion: v1
kind: Service
metadata:
  name: pricing-typo
  namespace: shop
  labels: {weft.dev/use-waypoint: nosuch}
  annotations: {weft.dev/analyze-ignore: WEFT0109}
spec:
  selector: {app: pricing}
  ports: [{name: http, port: 8080, targetPort: http}]
---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: price-from-outside, namespace: shop}
spec:
  parentRefs: [{name: ingress}]
  rules:
  - matches: [{path: {type: PathPrefix, value: /price/}}]
    backendRefs: [{name: pricing, port: 8080}]
"#;

#[test]
#[ignore = "needs root: weft up creates network namespaces, links and capture rules"]
fn the_waypoint_runs_pricings_l7_and_cannot_be_skipped() {
    let _serial = serial();
    let cfg = ConfigDir::new("waypoint").with_example("shop-ambient");
    let mesh_yaml = std::fs::read_to_string(cfg.path.join("mesh.yaml")).unwrap();
    cfg.write(
        "mesh.yaml",
        &mesh_yaml.replace(
            "    nodes: 2",
            "    nodes: 2\n    podCidr: 198.19.74.0/25\n    serviceCidr: 198.19.74.128/25",
        ),
    );
    cfg.write("typo.yaml", TYPO);
    let mesh = Mesh::up("e2ewp", &cfg.path);
    let pods = mesh.pods();
    assert_eq!(Mesh::pod(&pods, "waypoint-0")["mode"], "waypoint");
    let list = text(&mesh.weft(&["waypoint", "list"]));
    assert!(
        list.contains("shop/waypoint") && list.contains("1 ready"),
        "{list}"
    );
    assert!(
        list.contains("shop/nosuch") && list.contains("MISSING"),
        "{list}"
    );

    // The page works, pricing's calls passing the waypoint.
    let (status, page) = http_get(mesh.ingress_port, "/").expect("ingress answers");
    assert_eq!(status, 200, "{page}");
    assert!(page.contains("priced by pricing-v"), "{page}");

    // The split (90/10) runs at the waypoint: both versions answer, v1 far more often.
    let price = |pod: &str, method: &str, url: &str| {
        mesh.exec(pod, &["curl", "-sS", "-m", "5", "-i", "-X", method, url])
    };
    let mut by_version = [0, 0];
    for _ in 0..100 {
        let out = price("cart-0", "GET", "http://pricing:8080/price/yarn");
        let body = String::from_utf8_lossy(&out.stdout).to_string();
        assert!(body.starts_with("HTTP/1.1 200"), "{body}");
        by_version[usize::from(body.contains("pricing-v2"))] += 1;
    }
    assert!(
        by_version[1] > 0 && by_version[0] > 3 * by_version[1],
        "{by_version:?}"
    );
    let waypoint_log = mesh.log("waypoint-0", false);
    assert!(
        waypoint_log.contains(r#""direction":"waypoint""#)
            && waypoint_log.contains("HTTPRoute/shop/pricing-split")
            && waypoint_log.contains(r#""peer_identity":"spiffe://shop.local/ns/shop/sa/cart""#),
        "{waypoint_log}"
    );

    // The request policy attached to pricing, with the caller's identity: cart may GET a
    // price, not POST; the frontend may not call pricing at all.
    for (pod, method) in [("cart-0", "POST"), ("frontend-0", "GET")] {
        let out = price(pod, method, "http://pricing:8080/price/yarn");
        let answer = String::from_utf8_lossy(&out.stdout).to_lowercase();
        assert!(
            answer.starts_with("http/1.1 403"),
            "{pod} {method}: {answer}"
        );
        assert!(answer.contains("weft-denied-by: shop/pricing"), "{answer}");
    }
    // The ingress gateway sends to pricing through the waypoint: its policy applies there.
    let (status, body) = http_get(mesh.ingress_port, "/price/yarn").expect("ingress answers");
    assert_eq!(status, 403, "{body}");

    // Skipping the waypoint: the catalog calling a pricing pod by its own address is refused
    // by that pod's node proxy, and counted.
    let pricing_ip = Mesh::pod(&pods, "pricing-v1-0")["ip"]
        .as_str()
        .unwrap()
        .to_string();
    let node = Mesh::pod(&pods, "pricing-v1-0")["node"]
        .as_str()
        .unwrap()
        .to_string();
    let direct = format!("http://{pricing_ip}:8080/price/yarn");
    let out = mesh.exec("catalog-0", &["curl", "-sS", "-m", "5", &direct]);
    assert!(
        !out.status.success(),
        "the bypass got through: {}",
        text(&out)
    );
    mesh.eventually("the bypass refused and logged", T, || {
        text(&mesh.weft(&["logs", &node])).contains(r#""error":"waypoint-bypassed""#)
    });

    // A label naming a waypoint that does not exist: refused, with the reason.
    let out = price("cart-0", "GET", "http://pricing-typo:8080/price/yarn");
    let answer = String::from_utf8_lossy(&out.stdout).to_lowercase();
    assert!(answer.starts_with("http/1.1 503"), "{answer}");
    assert!(
        answer.contains("weft-error: waypoint-unavailable"),
        "{answer}"
    );
    assert!(answer.contains("shop/nosuch"), "{answer}");
    drop(mesh);
}
