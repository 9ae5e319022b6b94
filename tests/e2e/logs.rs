//! The logs of every weft process of a real mesh — control plane, ingress gateway, sidecars,
//! node proxies and waypoints — are JSON lines, each one flat object with every key once: no
//! `Some(…)` for a value, no nested span objects, no colour codes, no plain-text line among
//! them (a banner, a panic, a launcher's error). Access-log records carry their keys, failed
//! requests included. The `weft up` log, which is text for a person, has no colour codes
//! either. Needs root (CI runs it with `--include-ignored`).

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use serde_json::{Map, Value};
use weft_e2e::{ConfigDir, Mesh, http_get, serial, shop, text};
use weft_test_support::log_line;

const T: Duration = Duration::from_secs(30);

/// Keys every line of tracing has.
const EVENT: [&str; 4] = ["timestamp", "level", "message", "target"];
/// Keys every access-log record has, and those of an HTTP request's.
const RECORD: [&str; 4] = ["ts_ms", "direction", "protocol", "duration_ms"];
const HTTP_RECORD: [&str; 4] = ["method", "path", "authority", "status"];

/// The logs of the weft processes of `mesh`, by path under its `logs` directory: every file
/// there but the apps' own (a waypoint pod's app is a weft proxy, so its log counts).
fn weft_logs(mesh: &Mesh) -> BTreeMap<String, String> {
    let apps: Vec<String> = (mesh.pods().iter())
        .filter(|p| p["mode"] != "waypoint")
        .map(|p| format!("{}/{}.log", str_of(&p["namespace"]), str_of(&p["name"])))
        .collect();
    let root = format!("/run/weft/{}/logs", mesh.name);
    let mut logs = BTreeMap::new();
    let mut dirs = vec![Path::new(&root).to_path_buf()];
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(&dir)
            .expect("the logs directory")
            .flatten()
        {
            let path = entry.path();
            if path.is_dir() {
                dirs.push(path);
                continue;
            }
            let rel = path.strip_prefix(&root).unwrap().display().to_string();
            if !apps.contains(&rel) {
                let text = std::fs::read_to_string(&path).expect("a log file");
                logs.insert(rel, text);
            }
        }
    }
    logs
}

fn str_of(v: &Value) -> &str {
    v.as_str().unwrap_or_else(|| panic!("not a string: {v}"))
}

/// Every line of `logs` that is not a flat object with its keys, as `FILE:LINE: why: line`.
fn faults(logs: &BTreeMap<String, String>) -> Vec<String> {
    let mut faults = Vec::new();
    for (file, text) in logs {
        for (i, line) in text.lines().enumerate() {
            let why = match log_line::check(line) {
                Err(why) => why,
                Ok(map) => match missing(&map) {
                    missing if missing.is_empty() => continue,
                    missing => format!("no {missing:?}"),
                },
            };
            faults.push(format!("{file}:{}: {why}: {line}", i + 1));
        }
    }
    faults
}

/// The keys a line lacks: an access-log record's (`ts_ms` tells one), else an event's.
fn missing(map: &Map<String, Value>) -> Vec<&'static str> {
    let mut want: Vec<&'static str> = match map.contains_key("ts_ms") {
        true => RECORD.to_vec(),
        false => EVENT.to_vec(),
    };
    if map
        .get("protocol")
        .and_then(Value::as_str)
        .is_some_and(|p| p.starts_with("HTTP"))
    {
        want.extend(HTTP_RECORD);
    }
    want.retain(|k| !map.contains_key(*k));
    want
}

/// The lines of `logs` (those that parse) for which `pick` holds: JSON objects, where a key
/// a line lacks reads as null.
fn lines_where(logs: &BTreeMap<String, String>, pick: impl Fn(&str, &Value) -> bool) -> Vec<Value> {
    (logs.iter())
        .flat_map(|(file, text)| text.lines().map(move |l| (file, l)))
        .filter_map(|(file, l)| log_line::check(l).ok().map(|m| (file, Value::Object(m))))
        .filter(|(file, m)| pick(file, m))
        .map(|(_, m)| m)
        .collect()
}

/// Asserts every line of every weft log of `mesh` is flat JSON with its keys, and that the
/// `weft up` log has no colour codes; returns the logs.
fn assert_flat(mesh: &Mesh, expected: &[&str]) -> BTreeMap<String, String> {
    let logs = weft_logs(mesh);
    for file in expected {
        assert!(
            logs.get(*file).is_some_and(|t| !t.is_empty()),
            "no log {file} among {:?}",
            logs.keys()
        );
    }
    let faults = faults(&logs);
    assert!(
        faults.is_empty(),
        "{} bad log lines:\n{}",
        faults.len(),
        faults.join("\n")
    );
    let up = mesh.up_log();
    assert!(!up.is_empty() && !up.contains('\u{1b}'), "up.log: {up:?}");
    logs
}

/// `weft exec POD -- curl -sS -m 5 -o /dev/null -w %{http_code} URL`: the status, `000` when
/// nothing answered.
fn curl_status(mesh: &Mesh, pod: &str, url: &str) -> String {
    let args = [
        "curl",
        "-sS",
        "-m",
        "5",
        "-o",
        "/dev/null",
        "-w",
        "%{http_code}",
        url,
    ];
    String::from_utf8_lossy(&mesh.exec(pod, &args).stdout).into_owned()
}

#[test]
#[ignore = "needs root: weft up creates network namespaces, links and capture rules"]
fn every_process_of_the_sidecar_shop_logs_flat_json() {
    let _serial = serial();
    let cfg = shop("jlogs", 85);
    let mesh = Mesh::up("jlogs", &cfg.path);
    mesh.eventually("the shop answers", T, || {
        matches!(http_get(mesh.ingress_port, "/"), Ok((200, _)))
    });
    // Failures: a page the frontend does not have, a call the pricing policy denies, and
    // plaintext the cart's sidecar refuses (mTLS STRICT).
    assert_eq!(http_get(mesh.ingress_port, "/nope").unwrap().0, 404);
    let denied = curl_status(&mesh, "frontend-0", "http://pricing:8080/price/loom");
    assert_eq!(denied, "403");
    let refused = curl_status(&mesh, "outsider-0", "http://cart:8080/cart");
    assert_eq!(refused, "000", "plaintext to the cart is refused");
    // The access log goes out every 100ms: wait for the records of the failures.
    mesh.eventually("the failures are in the logs", T, || {
        let logs = weft_logs(&mesh);
        // Both ends of the denial: the pricing proxy's record and the frontend's.
        let denied = lines_where(&logs, |_, m| m["status"] == 403);
        let both = ["inbound", "outbound"]
            .iter()
            .all(|d| denied.iter().any(|m| m["direction"] == *d));
        let not_found = lines_where(&logs, |f, m| {
            f.starts_with("gateway-") && m["status"] == 404
        });
        both && !not_found.is_empty()
    });

    let pods = [
        "cart-0",
        "catalog-0",
        "frontend-0",
        "frontend-1",
        "pricing-v1-0",
        "pricing-v2-0",
    ];
    let mut expected = vec![
        "control-v0-1-0.log".to_string(),
        "gateway-shop-ingress.log".into(),
    ];
    expected.extend(pods.iter().map(|p| format!("shop/{p}.proxy.log")));
    let expected: Vec<&str> = expected.iter().map(String::as_str).collect();
    let logs = assert_flat(&mesh, &expected);

    // The records of the failures, with the stage that failed and the policy.
    let denied = lines_where(&logs, |_, m| {
        m["status"] == 403 && m["direction"] == "inbound"
    });
    let d = &denied[0];
    assert_eq!(
        (&d["error"], &d["policy"]),
        (&"denied".into(), &"shop/pricing".into()),
        "{d}"
    );
    assert_eq!(
        d["peer_identity"], "spiffe://shop.local/ns/shop/sa/frontend",
        "{d}"
    );
    // The caller's proxy names the policy too (from the server proxy's 403, over mTLS).
    let caller = lines_where(&logs, |f, m| {
        f == "shop/frontend-0.proxy.log" && m["status"] == 403 && m["direction"] == "outbound"
    });
    assert_eq!(caller[0]["policy"], "shop/pricing", "{}", caller[0]);
    let not_found = lines_where(&logs, |f, m| {
        f.starts_with("gateway-") && m["status"] == 404
    });
    assert_eq!(not_found[0]["path"], "/nope", "{}", not_found[0]);
    // The events of the failures, their optional fields plain values.
    let deny = lines_where(&logs, |_, m| {
        m["message"]
            .as_str()
            .is_some_and(|v| v.starts_with("denied:"))
    });
    assert!(!deny.is_empty(), "no denial event");
    assert_eq!(
        deny[0]["peer_identity"],
        "spiffe://shop.local/ns/shop/sa/frontend"
    );
    let plaintext = lines_where(&logs, |f, m| {
        f == "shop/cart-0.proxy.log"
            && m["message"]
                .as_str()
                .is_some_and(|v| v.contains("refused plaintext"))
    });
    assert!(!plaintext.is_empty(), "no refusal in the cart's log");
    assert!(
        plaintext[0]["target"]
            .as_str()
            .is_some_and(|t| t.starts_with("weft_proxy"))
    );
    assert!(plaintext[0]["destination"].is_string(), "{}", plaintext[0]);
    // The control plane logs JSON too, and `weft logs control` shows it.
    let ready = lines_where(&logs, |f, m| {
        f.starts_with("control-") && m["message"] == "control plane ready"
    });
    assert_eq!(ready[0]["revision"], "v0-1-0", "{}", ready[0]);
    let shown = text(&mesh.weft(&["logs", "control"]));
    let first = logs["control-v0-1-0.log"].lines().next().unwrap();
    assert!(shown.starts_with(first), "weft logs control: {shown}");
}

#[test]
#[ignore = "needs root: weft up creates network namespaces, links and capture rules"]
fn every_process_of_the_ambient_shop_logs_flat_json() {
    let _serial = serial();
    let cfg = ConfigDir::new("jlogsa").with_example("shop-ambient");
    let mesh_yaml = std::fs::read_to_string(cfg.path.join("mesh.yaml")).unwrap();
    cfg.write(
        "mesh.yaml",
        &mesh_yaml.replace(
            "    nodes: 2",
            "    nodes: 2\n    podCidr: 198.19.85.0/25\n    serviceCidr: 198.19.85.128/25",
        ),
    );
    let mesh = Mesh::up("jlogsa", &cfg.path);
    mesh.eventually("the shop answers", T, || {
        matches!(http_get(mesh.ingress_port, "/"), Ok((200, _)))
    });
    assert_eq!(http_get(mesh.ingress_port, "/nope").unwrap().0, 404);
    // The waypoint holds pricing's request policy: it denies the frontend.
    let denied = curl_status(&mesh, "frontend-0", "http://pricing:8080/price/loom");
    assert_eq!(denied, "403");
    mesh.eventually("the denial is in the waypoint's log", T, || {
        let logs = weft_logs(&mesh);
        !lines_where(&logs, |f, m| {
            f == "shop/waypoint-0.log" && m["status"] == 403
        })
        .is_empty()
    });

    let expected = [
        "control-v0-1-0.log",
        "gateway-shop-ingress.log",
        "nodes/node-1.log",
        "nodes/node-2.log",
        "shop/waypoint-0.log",
    ];
    let logs = assert_flat(&mesh, &expected);
    let deny = lines_where(&logs, |f, m| {
        f == "shop/waypoint-0.log"
            && m["message"]
                .as_str()
                .is_some_and(|v| v.starts_with("denied:"))
    });
    assert!(!deny.is_empty(), "no denial event at the waypoint");
    assert_eq!(deny[0]["service"], "shop/pricing", "{}", deny[0]);
    assert_eq!(
        deny[0]["peer_identity"],
        "spiffe://shop.local/ns/shop/sa/frontend"
    );
    // A node proxy names each pod's listeners as fields of their own.
    let served = lines_where(&logs, |f, m| {
        f.starts_with("nodes/") && m["message"] == "pod served"
    });
    assert!(!served.is_empty(), "no pod served");
    for key in ["pod", "outbound", "inbound", "tunnel"] {
        assert!(served[0][key].is_string(), "{key} in {}", served[0]);
    }
}
