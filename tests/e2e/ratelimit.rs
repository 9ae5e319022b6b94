//! Local rate limiting through `weft up`: a TrafficPolicy's `localRateLimit` on the catalog is
//! enforced by the catalog pod's sidecar — its first requests pass, the rest get Envoy's 429
//! with `x-local-rate-limit: true`, logged with flag `RL` and counted with it — while the cart,
//! with no policy, is untouched, and a raised limit applies to the running mesh. The window is
//! a minute, so no timing on a busy machine can refill the bucket within the test's bursts.
//! Needs root (CI runs it with `--include-ignored`).

use std::time::Duration;

use weft_e2e::{ConfigDir, Mesh, serial, shop, text};

const WAIT: Duration = Duration::from_secs(30);

fn policy(requests: u32) -> String {
    format!(
        "apiVersion: weft.dev/v1alpha1\nkind: TrafficPolicy\nmetadata: {{name: catalog-limit, namespace: shop}}\nspec:\n  targetRefs: [{{kind: Service, name: catalog}}]\n  localRateLimit: {{requests: {requests}, per: 1m}}\n"
    )
}

/// `curl` from frontend-0 to `url`: (status, whether `x-local-rate-limit: true` came back,
/// the body).
fn call(mesh: &Mesh, url: &str) -> (u16, bool, String) {
    let out = mesh.exec(
        "frontend-0",
        &["curl", "-sS", "-D", "-", "-w", "\n%{http_code}\n", url],
    );
    let out = text(&out);
    let status = (out.lines().last())
        .and_then(|l| l.trim().parse().ok())
        .unwrap_or(0);
    let limited = out
        .lines()
        .any(|l| l.trim().eq_ignore_ascii_case("x-local-rate-limit: true"));
    (status, limited, out)
}

fn statuses(mesh: &Mesh, url: &str, n: usize) -> Vec<u16> {
    (0..n).map(|_| call(mesh, url).0).collect()
}

/// The shop with the catalog limited to `requests` a minute, its proxy logging Istio's text
/// line (which carries the response flags).
fn config(requests: u32) -> ConfigDir {
    let cfg = shop("ratelim", 94);
    let catalog = std::fs::read_to_string(cfg.path.join("catalog.yaml")).expect("catalog.yaml");
    cfg.write(
        "catalog.yaml",
        &catalog.replace(
            "labels: {app: catalog, version: v1}",
            "labels: {app: catalog, version: v1}\n  annotations: {weft.dev/access-log-encoding: TEXT}",
        ),
    );
    cfg.write("ratelimit.yaml", &policy(requests));
    cfg
}

#[test]
#[ignore = "needs root: weft up creates network namespaces, links and capture rules"]
fn the_destination_pod_refuses_what_is_over_its_limit_and_a_new_limit_applies_live() {
    let _serial = serial();
    let cfg = config(5);
    let mesh = Mesh::up("ratelim", &cfg.path);
    let catalog = "http://catalog:8080/items";

    assert_eq!(statuses(&mesh, catalog, 5), [200; 5]);
    for _ in 0..3 {
        let (status, limited, out) = call(&mesh, catalog);
        assert_eq!((status, limited), (429, true), "{out}");
        assert!(out.contains("local_rate_limited"), "{out}");
        assert!(out.contains("weft-error: rate-limited"), "{out}");
    }
    // A Service with no policy is not limited.
    assert_eq!(statuses(&mesh, "http://cart:8080/cart", 12), [200; 12]);

    // The destination's proxy logged the refusals with Envoy's flag and counted them.
    mesh.eventually("the refusals in the catalog's access log", WAIT, || {
        mesh.log("catalog-0", true).contains(" 429 RL ")
    });
    let metrics = text(&mesh.exec(
        "catalog-0",
        &["curl", "-sS", "http://127.0.0.1:15020/metrics"],
    ));
    let refused = metrics.lines().find(|l| {
        l.starts_with("istio_requests_total{")
            && l.contains("response_code=\"429\"")
            && l.contains("response_flags=\"RL\"")
            && l.contains("reporter=\"destination\"")
    });
    let refused = refused.unwrap_or_else(|| panic!("no 429 RL count:\n{metrics}"));
    assert!(refused.ends_with(" 3"), "{refused}");

    // A raised limit reaches the running proxy: a new, full bucket.
    cfg.write("ratelimit.yaml", &policy(50));
    mesh.eventually("the raised limit applies", WAIT, || {
        call(&mesh, catalog).0 == 200
    });
    // Ten at once: the old limit gives back one request every 12 s.
    assert_eq!(statuses(&mesh, catalog, 10), [200; 10]);
    mesh.down();
}
