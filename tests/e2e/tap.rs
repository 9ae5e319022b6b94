//! Live traffic from the CLI over `weft up`: with requests flowing through the ingress to the
//! shop, `weft tap` shows the cart's requests with the caller's identity, a filter that
//! matches nothing shows nothing, `weft top` tables the cart's paths and `weft stat` counts
//! every shop workload as meshed and busy.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use serde_json::Value;
use weft_e2e::{Mesh, http_get, serial, shop, text};

/// Requests through the ingress until dropped; counts what did not answer 200.
struct Traffic {
    stop: Arc<AtomicBool>,
    sent: Arc<AtomicU64>,
    failed: Arc<AtomicU64>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Traffic {
    fn start(port: u16) -> Traffic {
        let stop = Arc::new(AtomicBool::new(false));
        let (sent, failed) = (Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0)));
        let thread = {
            let (stop, sent, failed) = (stop.clone(), sent.clone(), failed.clone());
            std::thread::spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    let ok = matches!(http_get(port, "/"), Ok((200, _)));
                    sent.fetch_add(1, Ordering::Relaxed);
                    if !ok {
                        failed.fetch_add(1, Ordering::Relaxed);
                    }
                    std::thread::sleep(Duration::from_millis(50));
                }
            })
        };
        Traffic {
            stop,
            sent,
            failed,
            thread: Some(thread),
        }
    }
}

impl Drop for Traffic {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn json_lines(out: &std::process::Output) -> Vec<Value> {
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{l}: {e}")))
        .collect()
}

#[test]
#[ignore = "needs root: weft up creates network namespaces, links and capture rules"]
fn tap_top_and_stat_show_the_shops_live_traffic() {
    let _serial = serial();
    let cfg = shop("tap", 82);
    let mesh = Mesh::up("tbtap", &cfg.path);
    let traffic = Traffic::start(mesh.ingress_port);
    mesh.eventually("the shop answers", Duration::from_secs(30), || {
        traffic.sent.load(Ordering::Relaxed) > traffic.failed.load(Ordering::Relaxed)
    });

    let out = mesh.weft(&["tap", "workload/cart", "--duration", "5s", "-o", "json"]);
    assert!(out.status.success(), "{}", text(&out));
    let lines = json_lines(&out);
    let served: Vec<&Value> = (lines.iter())
        .filter(|l| l["proxy"] == "shop/cart-0" && l["direction"] == "inbound")
        .collect();
    assert!(
        !served.is_empty(),
        "no inbound request at cart: {}",
        text(&out)
    );
    for l in &served {
        assert_eq!(l["status"], 200, "{l}");
        assert_eq!(l["path"], "/cart", "{l}");
        assert_eq!(
            l["peer_identity"], "spiffe://shop.local/ns/shop/sa/frontend",
            "{l}"
        );
        assert!(
            l["source_pod"]
                .as_str()
                .is_some_and(|p| p.starts_with("shop/frontend-")),
            "{l}"
        );
        assert!(l["latency_ms"].as_f64().is_some(), "{l}");
    }
    assert!(
        lines
            .iter()
            .any(|l| l["direction"] == "outbound" && l["destination"]["service"] == "shop/pricing"),
        "the cart's calls to pricing are tapped too: {}",
        text(&out)
    );

    // Text lines name the caller and what it asked for; --to keeps the requests to cart (the
    // cart's own calls to pricing are left out), and --count stops early.
    let args = [
        "tap",
        "svc/cart",
        "--to",
        "cart",
        "--count",
        "2",
        "--duration",
        "20s",
    ];
    let out = mesh.weft(&args);
    assert!(out.status.success(), "{}", text(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(stdout.lines().count(), 2, "{}", text(&out));
    assert!(
        stdout.lines().all(|l| l.starts_with("req  ")
            && l.contains("  in   shop/frontend-")
            && l.contains("  GET cart:8080/cart  200  ")),
        "{stdout}"
    );

    let out = mesh.weft(&[
        "tap",
        "workload/cart",
        "--status",
        "5xx",
        "--duration",
        "3s",
    ]);
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(
        traffic.failed.load(Ordering::Relaxed),
        0,
        "every request succeeded"
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout), "", "{}", text(&out));

    let out = mesh.weft(&["top", "workload/cart", "--duration", "4s"]);
    assert!(out.status.success(), "{}", text(&out));
    let table = String::from_utf8_lossy(&out.stdout);
    assert!(table.starts_with("SOURCE "), "{table}");
    assert!(
        table.lines().any(|l| l.starts_with("shop/frontend-")
            && l.contains(" /cart ")
            && l.contains("100.00%")),
        "{table}"
    );

    let out = mesh.weft(&["stat", "--window", "3s", "-o", "json"]);
    assert!(out.status.success(), "{}", text(&out));
    let rows: Vec<Value> = serde_json::from_slice(&out.stdout).expect("stat JSON");
    let row = |name: &str| {
        (rows.iter())
            .find(|r| r["namespace"] == "shop" && r["name"] == name)
            .unwrap_or_else(|| panic!("no row {name}: {rows:?}"))
    };
    for name in ["frontend", "catalog", "cart", "pricing-v1"] {
        let r = row(name);
        assert_eq!(r["meshed"], r["pods"], "{r}");
        assert!(r["pods"].as_u64() > Some(0), "{r}");
    }
    assert_eq!(row("outsider")["meshed"], 0, "no proxy in the outsider");
    for name in ["frontend", "cart"] {
        let r = row(name);
        assert!(r["rps"].as_f64() > Some(0.0), "{r}");
        assert_eq!(r["success"], 1.0, "{r}");
        assert!(r["latency_p99_ms"].as_f64().is_some(), "{r}");
    }
    let out = mesh.weft(&["stat", "services", "--window", "1s"]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("LATENCY_P95"),
        "{}",
        text(&out)
    );

    drop(traffic);
    mesh.down();
}
