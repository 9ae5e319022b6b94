//! Zero trust in one process: proxies with workload certificates from a test CA talk over the
//! mTLS tunnel; the server learns the client's identity, STRICT refuses plaintext, PERMISSIVE
//! takes it, servers with the wrong identity and clients with foreign or expired certificates
//! are refused, and AuthorizationPolicies allow, deny and name themselves.

mod support;

use std::net::SocketAddr;
use std::time::Duration;

use weft_test_support::ca::{Leaf, TestCa};
use weft_test_support::http as raw;

use support::*;

const WEB: &str = "198.18.128.10:80";
const HOUR: Duration = Duration::from_secs(3600);

fn id(sa: &str) -> String {
    format!("spiffe://mtls.test/ns/shop/sa/{sa}")
}

fn config(web_annotations: &str, extra: &str) -> String {
    format!(
        r#"
apiVersion: weft.dev/v1alpha1
kind: Mesh
metadata: {{name: mesh}}
spec: {{trustDomain: mtls.test}}
---
apiVersion: weft.dev/v1alpha1
kind: Workload
metadata: {{name: web, namespace: shop, labels: {{app: web}}, annotations: {{{web_annotations}}}}}
spec: {{command: [web], serviceAccountName: web, ports: [{{name: http, containerPort: 8080}}]}}
---
apiVersion: weft.dev/v1alpha1
kind: Workload
metadata: {{name: client, namespace: shop, labels: {{app: client}}}}
spec: {{command: [client], serviceAccountName: client}}
---
apiVersion: weft.dev/v1alpha1
kind: Workload
metadata: {{name: intruder, namespace: shop, labels: {{app: intruder}}}}
spec: {{command: [intruder], serviceAccountName: intruder}}
---
apiVersion: v1
kind: Service
metadata: {{name: web, namespace: shop}}
spec: {{clusterIP: 198.18.128.10, selector: {{app: web}}, ports: [{{name: http, port: 80, targetPort: http}}]}}
{extra}"#
    )
}

struct Mesh {
    dir: Dir,
    cp: weft_control::Bound,
    ca: TestCa,
    server: weft_proxy::Bound,
    _app: Echo,
}

fn creds(leaf: Leaf) -> Certs {
    Certs::Fixed(Some(fixed(leaf)))
}

/// A control plane, and the web server's proxy presenting `server_id`.
async fn start(name: &str, yaml: &str, server_id: &str) -> Mesh {
    let dir = Dir::new(name);
    dir.write("mesh.yaml", yaml);
    let cp = control(&dir, "127.0.0.1:0".parse().unwrap(), Duration::ZERO).await;
    let ca = TestCa::new("mtls.test");
    let app = echo("web").await;
    let server = proxy_certs(
        cp.discovery,
        "shop",
        "web",
        "web-0",
        None,
        Some(app.addr),
        creds(ca.leaf(server_id, HOUR)),
    )
    .await;
    Mesh {
        dir,
        cp,
        ca,
        server,
        _app: app,
    }
}

/// A client proxy of `workload` whose outbound goes to the web Service.
async fn client(m: &Mesh, workload: &str, leaf: Leaf) -> weft_proxy::Bound {
    proxy_certs(
        m.cp.discovery,
        "shop",
        workload,
        &format!("{workload}-0"),
        Some(WEB.parse().unwrap()),
        None,
        creds(leaf),
    )
    .await
}

fn metric(text: &str, name: &str, label: &str) -> f64 {
    text.lines()
        .filter(|l| l.starts_with(name) && l.contains(label))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

async fn metrics(addr: SocketAddr) -> String {
    get(addr, "metrics", "/metrics").await.body
}

/// A plaintext HTTP/1.1 request straight to `addr`.
async fn plaintext(addr: SocketAddr) -> Result<Reply, raw::Error> {
    raw::try_get(addr, "web", "/").await
}

#[tokio::test]
async fn mesh_traffic_rides_the_tunnel_and_the_app_learns_who_called() {
    let m = start("mtls-basic", &config("", ""), &id("web")).await;
    let c = client(&m, "client", m.ca.leaf(&id("client"), HOUR)).await;
    let r = send(
        c.outbound,
        http::Request::get("/")
            .header("host", "web")
            .header(
                "x-forwarded-client-cert",
                "By=forged;URI=spiffe://mtls.test/ns/shop/sa/admin",
            )
            .body(http_body_util::Full::new(bytes::Bytes::new()))
            .unwrap(),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let xfcc = format!(
        "x-forwarded-client-cert=By={};URI={}",
        id("web"),
        id("client")
    );
    assert!(r.body.contains(&xfcc), "{}", r.body);
    assert!(
        !r.body.contains("forged"),
        "a client's own header never reaches the app: {}",
        r.body
    );
}

#[tokio::test]
async fn strict_refuses_plaintext_and_permissive_accepts_it() {
    let m = start("mtls-modes", &config("", ""), &id("web")).await;
    let refused = plaintext(m.server.inbound).await;
    assert!(
        matches!(
            refused,
            Err(raw::Error::Closed | raw::Error::Io(_) | raw::Error::Timeout(_))
        ),
        "STRICT closes plaintext: {refused:?}"
    );
    let text = metrics(m.server.metrics).await;
    assert_eq!(
        metric(&text, "weft_mtls_refused_total", r#"reason="plaintext""#),
        1.0,
        "{text}"
    );

    m.dir.write(
        "mesh.yaml",
        &config(r#"weft.dev/mtls-mode: PERMISSIVE"#, ""),
    );
    eventually(
        "PERMISSIVE to take plaintext",
        WAIT,
        async || match plaintext(m.server.inbound).await {
            Ok(r) if r.status == 200 => Ok(()),
            other => Err(format!("{other:?}")),
        },
    )
    .await;
}

#[tokio::test]
async fn a_server_that_cannot_prove_the_workload_identity_is_refused() {
    let m = start("mtls-impostor", &config("", ""), &id("impostor")).await;
    let c = client(&m, "client", m.ca.leaf(&id("client"), HOUR)).await;
    let r = get(c.outbound, "web", "/").await;
    assert_eq!(r.status, 502, "{}", r.body);
    assert_eq!(r.headers["weft-error"], "tunnel");
    assert!(
        r.body.contains("impostor") && r.body.contains(&id("web")),
        "{}",
        r.body
    );
}

#[tokio::test]
async fn foreign_and_expired_client_certificates_are_refused_and_nothing_else_breaks() {
    let m = start("mtls-forged", &config("", ""), &id("web")).await;
    let foreign = client(&m, "client", TestCa::other().leaf(&id("client"), HOUR)).await;
    assert_eq!(
        get(foreign.outbound, "web", "/").await.headers["weft-error"],
        "tunnel"
    );
    let expired = client(&m, "intruder", m.ca.leaf_expired(&id("intruder"))).await;
    assert_eq!(
        get(expired.outbound, "web", "/").await.headers["weft-error"],
        "tunnel"
    );
    let text = metrics(m.server.metrics).await;
    assert!(
        metric(&text, "weft_mtls_refused_total", r#"reason="handshake""#) >= 1.0,
        "{text}"
    );
    let good = client(&m, "client", m.ca.leaf(&id("client"), HOUR)).await;
    assert_eq!(get(good.outbound, "web", "/").await.status, 200);
}

const POLICIES: &str = r#"---
apiVersion: weft.dev/v1alpha1
kind: AuthorizationPolicy
metadata: {name: only-client, namespace: shop}
spec:
  selector: {matchLabels: {app: web}}
  rules: [{from: [{source: {principals: ["spiffe://mtls.test/ns/shop/sa/client"]}}]}]
---
apiVersion: weft.dev/v1alpha1
kind: AuthorizationPolicy
metadata: {name: no-admin, namespace: shop}
spec:
  action: DENY
  rules: [{to: [{operation: {paths: ["/admin*"]}}]}]
"#;

#[tokio::test]
async fn authorization_policies_allow_deny_and_name_themselves() {
    let m = start("mtls-authz", &config("", POLICIES), &id("web")).await;
    let c = client(&m, "client", m.ca.leaf(&id("client"), HOUR)).await;
    let intruder = client(&m, "intruder", m.ca.leaf(&id("intruder"), HOUR)).await;
    assert_eq!(get(c.outbound, "web", "/").await.status, 200);

    let denied = get(c.outbound, "web", "/admin/users").await;
    assert_eq!(denied.status, 403, "{}", denied.body);
    assert_eq!(denied.headers["weft-error"], "denied");
    assert_eq!(denied.headers["weft-denied-by"], "shop/no-admin; rule=0");
    assert!(
        denied.body.contains("rule 0 (to paths [/admin*])"),
        "{}",
        denied.body
    );

    let denied = get(intruder.outbound, "web", "/").await;
    assert_eq!(denied.status, 403, "{}", denied.body);
    assert_eq!(denied.headers["weft-denied-by"], "shop/only-client");
    assert!(denied.body.contains("shop/only-client"), "{}", denied.body);

    let text = metrics(m.server.metrics).await;
    assert_eq!(
        metric(
            &text,
            "weft_authz_denied_total",
            r#"policy="shop/only-client""#
        ),
        1.0,
        "{text}"
    );
    assert_eq!(
        metric(
            &text,
            "weft_authz_denied_total",
            r#"policy="shop/no-admin""#
        ),
        1.0,
        "{text}"
    );
}

/// Bootstrap tokens for `(service account, pod)` pairs: the CA's file and one token file each,
/// beside the state dir (not in the config dir, which holds only configuration).
fn bootstrap(dir: &Dir, grants: &[(&str, &str)]) -> std::path::PathBuf {
    let secrets = dir.state();
    std::fs::create_dir_all(&secrets).unwrap();
    let mut creds = Vec::new();
    for (sa, pod) in grants {
        let token = format!("token-of-{pod}");
        std::fs::write(secrets.join(format!("{pod}.token")), &token).unwrap();
        creds.push(serde_json::json!({
            "tokenSha256": weft_control::ca::auth::token_sha256(&token),
            "namespace": "shop", "serviceAccount": sa, "pod": pod,
        }));
    }
    let path = secrets.join("bootstrap.json");
    std::fs::write(
        &path,
        serde_json::json!({ "credentials": creds }).to_string(),
    )
    .unwrap();
    path
}

fn serial(p: &weft_proxy::Bound) -> String {
    p.certificate().map(|i| i.serial).unwrap_or_default()
}

#[tokio::test]
async fn certificates_rotate_under_steady_load_with_zero_failed_requests() {
    let dir = Dir::new("mtls-rotate");
    dir.write("mesh.yaml", &config("", ""));
    let bootstrap = bootstrap(
        &dir,
        &[
            ("web", "web-0"),
            ("client", "client-0"),
            ("client", "client-1"),
        ],
    );
    let mut cfg = control_config(&dir);
    cfg.ca.bootstrap = Some(bootstrap);
    // Renewed at half-life: about every second.
    cfg.ca.cert_ttl = Duration::from_secs(2);
    let cp = weft_control::build(cfg)
        .await
        .expect("control plane starts");
    let app = echo("web").await;
    let token = |pod: &str| Certs::Token(dir.state().join(format!("{pod}.token")));
    let server = proxy_certs(
        cp.discovery,
        "shop",
        "web",
        "web-0",
        None,
        Some(app.addr),
        token("web-0"),
    )
    .await;
    let web: SocketAddr = WEB.parse().unwrap();
    let client = proxy_certs(
        cp.discovery,
        "shop",
        "client",
        "client-0",
        Some(web),
        None,
        token("client-0"),
    )
    .await;
    let (server_before, client_before) = (serial(&server), serial(&client));
    assert!(!server_before.is_empty() && !client_before.is_empty());

    // Four callers without pause for four seconds: several rotations on both ends.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(4);
    let mut callers = Vec::new();
    for _ in 0..4 {
        let outbound = client.outbound;
        callers.push(tokio::spawn(async move {
            let (mut ok, mut failed) = (0u32, Vec::new());
            while tokio::time::Instant::now() < deadline {
                let r = get(outbound, "web", "/").await;
                if r.status == 200 {
                    ok += 1;
                } else {
                    failed.push(format!(
                        "{} {:?} {}",
                        r.status,
                        r.headers.get("weft-error"),
                        r.body
                    ));
                }
            }
            (ok, failed)
        }));
    }
    let mut total = 0;
    for c in callers {
        let (ok, failed) = c.await.unwrap();
        assert!(
            failed.is_empty(),
            "failed requests during rotation: {failed:?}"
        );
        total += ok;
    }
    assert!(total > 100, "steady load: only {total} requests");
    assert_ne!(
        serial(&server),
        server_before,
        "the server's certificate rotated"
    );
    assert_ne!(
        serial(&client),
        client_before,
        "the client's certificate rotated"
    );

    // A proxy that starts now does its first handshake against the rotated certificates.
    let late = proxy_certs(
        cp.discovery,
        "shop",
        "client",
        "client-1",
        Some(web),
        None,
        token("client-1"),
    )
    .await;
    assert_eq!(get(late.outbound, "web", "/").await.status, 200);
}
