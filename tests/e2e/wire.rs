//! Trust nothing on the wire, on a real `weft up` mesh of the demo shop: a pod that calls its
//! own Service never changes what other callers get (the connection pool keeps delivery to the
//! local app apart from the tunnel, for HTTP/1.1 and HTTP/2), and mesh pods reach each other
//! by pod address through the tunnel with both identities, under the same policies. Needs root
//! (CI runs it with `--include-ignored`).

use std::time::Duration;

use weft_e2e::{Mesh, serial, text};

/// `curl` from inside `pod`: the HTTP status (0 when curl failed) and what it printed.
fn curl(mesh: &Mesh, pod: &str, extra: &[&str], url: &str) -> (u16, String) {
    let mut args = vec![
        "exec",
        pod,
        "--",
        "curl",
        "-sS",
        "-m",
        "5",
        "-o",
        "/dev/null",
        "-w",
        "%{http_code}",
    ];
    args.extend(extra);
    args.push(url);
    let out = mesh.weft(&args);
    let printed = text(&out);
    let code = String::from_utf8_lossy(&out.stdout)
        .trim()
        .parse()
        .unwrap_or(0);
    (code, printed)
}

#[test]
#[ignore = "needs root: weft up creates network namespaces, links and capture rules"]
fn self_calls_never_change_what_other_callers_get() {
    let _serial = serial();
    let cfg = weft_e2e::shop("wire12", 12);
    let mesh = Mesh::up("e2ewire1", &cfg.path);
    let items = "http://catalog:8080/items";

    // Only the frontend may call the catalog. The catalog calling its own Service is denied;
    // the frontend, before, after and at the same time, is allowed: every request gets what
    // its identity deserves, whatever else travels to the same pod address.
    for round in 0..5 {
        let (code, out) = curl(&mesh, "catalog-0", &[], items);
        assert_eq!(
            code, 403,
            "round {round}: the catalog calling itself: {out}"
        );
        let (code, out) = curl(&mesh, "frontend-0", &[], items);
        assert_eq!(
            code, 200,
            "round {round}: the frontend after a self-call: {out}"
        );
    }
    std::thread::scope(|s| {
        let callers = [
            ("catalog-0", 403),
            ("frontend-0", 200),
            ("catalog-0", 403),
            ("frontend-1", 200),
        ];
        for (pod, want) in callers {
            let mesh = &mesh;
            s.spawn(move || {
                for i in 0..5 {
                    let (code, out) = curl(mesh, pod, &[], items);
                    assert_eq!(
                        code, want,
                        "{pod}, call {i} under concurrent self-calls: {out}"
                    );
                }
            });
        }
    });

    // The same over HTTP/2: a self-call comes back once (403), never loops through the pod's
    // own tunnel, and leaves the port working for everyone.
    let h2 = ["--http2-prior-knowledge"];
    for round in 0..3 {
        let (code, out) = curl(&mesh, "catalog-0", &h2, items);
        assert_eq!(code, 403, "round {round}: HTTP/2 self-call: {out}");
        let (code, out) = curl(&mesh, "frontend-0", &h2, items);
        assert_eq!(code, 200, "round {round}: HTTP/2 from the frontend: {out}");
    }
    let denials = || {
        let log = mesh.log("catalog-0", true);
        let n = log
            .lines()
            .filter(|l| l.contains(r#""direction":"inbound""#) && l.contains(r#""status":403"#))
            .count();
        (n, log)
    };
    mesh.eventually("18 denials logged", Duration::from_secs(5), || {
        denials().0 >= 18
    });
    let (n, log) = denials();
    assert_eq!(
        n, 18,
        "each self-call was decided once by the catalog's inbound policy:\n{log}"
    );
}

#[test]
#[ignore = "needs root: weft up creates network namespaces, links and capture rules"]
fn pods_reach_each_other_by_address_through_the_tunnel() {
    let _serial = serial();
    let cfg = weft_e2e::shop("wire13", 13);
    let mesh = Mesh::up("e2ewire2", &cfg.path);
    let pods = mesh.pods();
    let ip = |name: &str| Mesh::pod(&pods, name)["ip"].as_str().unwrap().to_string();
    let by_address = format!("http://{}:8080/items", ip("catalog-0"));

    // STRICT everywhere: a plaintext call would be refused. By pod address it goes through the
    // tunnel, and the catalog knows who called.
    let (code, out) = curl(&mesh, "frontend-0", &[], &by_address);
    assert_eq!(code, 200, "frontend -> catalog-0 by address: {out}");
    mesh.eventually(
        "the caller's identity in the catalog's access log",
        Duration::from_secs(5),
        || {
            mesh.log("catalog-0", true).lines().any(|l| {
                l.contains(r#""direction":"inbound""#)
                    && l.contains(r#""path":"/items""#)
                    && l.contains(r#""peer_identity":"spiffe://shop.local/ns/shop/sa/frontend""#)
            })
        },
    );
    // Access-log lines reach the file when the proxy flushes (every 100 ms): wait for it.
    mesh.eventually(
        "the client side to log the server's identity",
        Duration::from_secs(5),
        || {
            mesh.log("frontend-0", true).lines().any(|l| {
                l.contains(r#""direction":"outbound""#)
                    && l.contains(r#""peer_identity":"spiffe://shop.local/ns/shop/sa/catalog""#)
            })
        },
    );

    // The catalog's policy holds by address too: the cart is not allowed.
    let (code, out) = curl(&mesh, "cart-0", &[], &by_address);
    assert_eq!(code, 403, "cart -> catalog-0 by address: {out}");
    // And HTTP/2 by address works as well.
    let (code, out) = curl(
        &mesh,
        "frontend-0",
        &["--http2-prior-knowledge"],
        &by_address,
    );
    assert_eq!(code, 200, "HTTP/2 by address: {out}");
}
