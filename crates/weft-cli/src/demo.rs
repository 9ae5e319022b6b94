//! `weft demo ROLE`: the demo shop's services. frontend → catalog and cart → pricing; every
//! answer says which pod and version produced it, so a page shows the mesh at work (weighted
//! splits, failover, policy denials with their `weft-error`).
//!
//! Configured by environment, as a workload would be: `CATALOG_URL`, `CART_URL`,
//! `PRICING_URL` (e.g. `http://pricing:8080`), `VERSION` (default v1), `POD_NAME`.
//!
//! Each service copies the request's trace context and id ([`PROPAGATED`]) onto the calls it
//! makes to serve it, as an app must for the proxies' spans to join into one trace.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context;
use bytes::Bytes;
use http::{HeaderMap, Request, Response, StatusCode};
use http_body_util::{BodyExt, Empty, Full};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioIo};
use serde_json::{Value, json};
use tokio::net::TcpListener;

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Role {
    Frontend,
    Catalog,
    Cart,
    Pricing,
}

#[derive(Debug, clap::Args)]
pub struct Args {
    #[arg(value_enum)]
    role: Role,
    /// Address to serve on.
    #[arg(long, env = "WEFT_DEMO_LISTEN", default_value = "0.0.0.0:8080")]
    listen: SocketAddr,
}

/// What a demo service knows about itself and its dependencies.
#[derive(Debug, Clone)]
pub struct Env {
    pub role: Role,
    pub pod: String,
    pub version: String,
    pub catalog: String,
    pub cart: String,
    pub pricing: String,
}

impl Env {
    fn from_process(role: Role) -> Env {
        let var = |k: &str, d: &str| std::env::var(k).unwrap_or_else(|_| d.to_string());
        Env {
            role,
            pod: var("POD_NAME", &var("HOSTNAME", "local")),
            version: var("VERSION", "v1"),
            catalog: var("CATALOG_URL", "http://catalog:8080"),
            cart: var("CART_URL", "http://cart:8080"),
            pricing: var("PRICING_URL", "http://pricing:8080"),
        }
    }
}

const ITEMS: [&str; 3] = ["loom", "shuttle", "yarn"];

/// The headers that carry a request's trace context (W3C, B3 multi and single) and its id:
/// a service copies them from the request it serves onto every call it makes for it, so the
/// proxies see those calls as children of the request's span (docs/tracing.md).
pub const PROPAGATED: [&str; 9] = [
    "traceparent",
    "tracestate",
    "x-b3-traceid",
    "x-b3-spanid",
    "x-b3-parentspanid",
    "x-b3-sampled",
    "x-b3-flags",
    "b3",
    "x-request-id",
];

/// The [`PROPAGATED`] headers of `headers`, to send on with each call.
fn propagated(headers: &HeaderMap) -> HeaderMap {
    let mut out = HeaderMap::new();
    for name in PROPAGATED {
        for value in headers.get_all(name) {
            out.append(name, value.clone());
        }
    }
    out
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .context("starting the runtime")?;
    rt.block_on(async {
        let listener = TcpListener::bind(args.listen)
            .await
            .with_context(|| format!("cannot listen on {}", args.listen))?;
        eprintln!(
            "weft demo {:?}: serving on {}",
            args.role,
            listener.local_addr()?
        );
        serve(listener, Env::from_process(args.role)).await;
        Ok(ExitCode::SUCCESS)
    })
}

type HttpClient = Client<HttpConnector, Empty<Bytes>>;

/// Serves `env.role` on `listener` until the task is dropped.
pub async fn serve(listener: TcpListener, env: Env) {
    let client: HttpClient = Client::builder(TokioExecutor::new()).build_http();
    let shared = Arc::new((env, client));
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            continue;
        };
        let shared = shared.clone();
        tokio::spawn(async move {
            let svc = hyper::service::service_fn(move |req| {
                let shared = shared.clone();
                async move { Ok::<_, Infallible>(handle(&shared.0, &shared.1, req).await) }
            });
            let _ = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new())
                .serve_connection(TokioIo::new(stream), svc)
                .await;
        });
    }
}

async fn handle<B>(env: &Env, client: &HttpClient, req: Request<B>) -> Response<Full<Bytes>> {
    let path = req.uri().path().to_string();
    let forward = propagated(req.headers());
    let fetch = |url: String| {
        let forward = &forward;
        async move { call(client, &url, forward).await }
    };
    let me = json!({"pod": env.pod, "version": env.version});
    match (env.role, path.as_str()) {
        (_, "/healthz") => reply(
            StatusCode::OK,
            "application/json",
            json!({"ok": true}).to_string(),
        ),
        (Role::Pricing, p) if p.starts_with("/price/") => {
            let item = &p["/price/".len()..];
            let base = item
                .bytes()
                .fold(500u64, |h, b| h.wrapping_mul(31).wrapping_add(b as u64))
                % 9000
                + 500;
            // v2 runs a 10% promotion, so a weighted split is visible in the prices.
            let cents = if env.version == "v2" {
                base * 9 / 10
            } else {
                base
            };
            json_reply(json!({"item": item, "cents": cents, "by": me}))
        }
        (Role::Catalog, "/items") => {
            let mut items = Vec::new();
            for item in ITEMS {
                items.push(json!({"item": item, "price": fetch(format!("{}/price/{item}", env.pricing)).await}));
            }
            json_reply(json!({"items": items, "by": me}))
        }
        (Role::Cart, "/cart") => {
            let price = fetch(format!("{}/price/yarn", env.pricing)).await;
            json_reply(
                json!({"lines": [{"item": "yarn", "quantity": 2, "price": price}], "by": me}),
            )
        }
        (Role::Frontend, "/api") | (Role::Frontend, "/") => {
            let catalog = fetch(format!("{}/items", env.catalog)).await;
            let cart = fetch(format!("{}/cart", env.cart)).await;
            let page = json!({"frontend": me, "catalog": catalog, "cart": cart});
            if path == "/api" {
                json_reply(page)
            } else {
                reply(StatusCode::OK, "text/html; charset=utf-8", html(&page))
            }
        }
        _ => reply(
            StatusCode::NOT_FOUND,
            "application/json",
            json!({"error": format!("no {path} on {:?}", env.role)}).to_string(),
        ),
    }
}

/// GETs `url` with the `forward` headers and returns its JSON, or what went wrong (status and
/// `weft-error`).
async fn call(client: &HttpClient, url: &str, forward: &HeaderMap) -> Value {
    let uri = match url.parse::<http::Uri>() {
        Ok(u) => u,
        Err(e) => return json!({"error": format!("bad URL {url}: {e}")}),
    };
    let mut req = Request::new(Empty::new());
    *req.uri_mut() = uri;
    *req.headers_mut() = forward.clone();
    match client.request(req).await {
        Err(e) => json!({"error": format!("{url}: {e}")}),
        Ok(res) => {
            let status = res.status();
            let stage = res
                .headers()
                .get("weft-error")
                .and_then(|v| v.to_str().ok())
                .map(str::to_string);
            let body = res
                .into_body()
                .collect()
                .await
                .map(|b| b.to_bytes())
                .unwrap_or_default();
            match serde_json::from_slice::<Value>(&body) {
                Ok(v) if status.is_success() => v,
                _ => {
                    json!({"error": format!("{url}: {status}"), "weftError": stage, "body": String::from_utf8_lossy(&body)})
                }
            }
        }
    }
}

fn html(page: &Value) -> String {
    let by = |v: &Value| {
        format!(
            "{} ({})",
            v["pod"].as_str().unwrap_or("?"),
            v["version"].as_str().unwrap_or("?")
        )
    };
    let price = |p: &Value| match p["cents"].as_u64() {
        Some(c) => format!("{}.{:02} — priced by {}", c / 100, c % 100, by(&p["by"])),
        None => format!("unavailable: {}", p["error"].as_str().unwrap_or("?")),
    };
    let mut out = String::from("<!doctype html><title>weft shop</title><h1>weft shop</h1>\n");
    out += &format!(
        "<p>frontend: {}</p>\n<h2>Catalog</h2>\n",
        by(&page["frontend"])
    );
    match page["catalog"]["items"].as_array() {
        Some(items) => {
            out += &format!("<p>served by {}</p><ul>\n", by(&page["catalog"]["by"]));
            for i in items {
                out += &format!(
                    "<li>{}: {}</li>\n",
                    i["item"].as_str().unwrap_or("?"),
                    price(&i["price"])
                );
            }
            out += "</ul>\n";
        }
        None => out += &format!("<p>catalog unavailable: {}</p>\n", page["catalog"]["error"]),
    }
    out += "<h2>Cart</h2>\n";
    match page["cart"]["lines"].as_array() {
        Some(lines) => {
            out += &format!("<p>served by {}</p><ul>\n", by(&page["cart"]["by"]));
            for l in lines {
                out += &format!(
                    "<li>{} × {}: {}</li>\n",
                    l["quantity"],
                    l["item"].as_str().unwrap_or("?"),
                    price(&l["price"])
                );
            }
            out += "</ul>\n";
        }
        None => out += &format!("<p>cart unavailable: {}</p>\n", page["cart"]["error"]),
    }
    out
}

fn json_reply(v: Value) -> Response<Full<Bytes>> {
    reply(StatusCode::OK, "application/json", v.to_string())
}

fn reply(status: StatusCode, ctype: &'static str, body: String) -> Response<Full<Bytes>> {
    let mut res = Response::new(Full::new(Bytes::from(body)));
    *res.status_mut() = status;
    res.headers_mut().insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static(ctype),
    );
    res
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn start(role: Role, version: &str, pod: &str, deps: [&str; 3]) -> SocketAddr {
        let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = l.local_addr().unwrap();
        let env = Env {
            role,
            pod: pod.into(),
            version: version.into(),
            catalog: deps[0].into(),
            cart: deps[1].into(),
            pricing: deps[2].into(),
        };
        tokio::spawn(serve(l, env));
        addr
    }

    #[tokio::test]
    async fn the_page_shows_who_answered_at_every_hop() {
        let none = ["", "", ""];
        let pricing = start(Role::Pricing, "v2", "pricing-v2-0", none).await;
        let p = format!("http://{pricing}");
        let catalog = start(Role::Catalog, "v1", "catalog-0", ["", "", &p]).await;
        let cart = start(Role::Cart, "v1", "cart-0", ["", "", &p]).await;
        let front = start(
            Role::Frontend,
            "v1",
            "frontend-0",
            [&format!("http://{catalog}"), &format!("http://{cart}"), ""],
        )
        .await;
        let client: HttpClient = Client::builder(TokioExecutor::new()).build_http();
        let api = call(&client, &format!("http://{front}/api"), &HeaderMap::new()).await;
        assert_eq!(api["frontend"]["pod"], "frontend-0");
        assert_eq!(api["catalog"]["by"]["pod"], "catalog-0");
        assert_eq!(api["catalog"]["items"][0]["price"]["by"]["version"], "v2");
        assert_eq!(
            api["cart"]["lines"][0]["price"]["by"]["pod"],
            "pricing-v2-0"
        );
        let res = client
            .get(format!("http://{front}/").parse().unwrap())
            .await
            .unwrap();
        let page = res.into_body().collect().await.unwrap().to_bytes();
        let page = String::from_utf8_lossy(&page);
        assert!(page.contains("priced by pricing-v2-0 (v2)"), "{page}");
    }

    #[tokio::test]
    async fn a_failed_dependency_shows_its_error_instead_of_failing_the_page() {
        let front = start(
            Role::Frontend,
            "v1",
            "frontend-0",
            ["http://127.0.0.1:1", "http://127.0.0.1:1", ""],
        )
        .await;
        let client: HttpClient = Client::builder(TokioExecutor::new()).build_http();
        let api = call(&client, &format!("http://{front}/api"), &HeaderMap::new()).await;
        assert!(
            api["catalog"]["error"]
                .as_str()
                .unwrap()
                .contains("127.0.0.1:1"),
            "{api}"
        );
    }

    /// A dependency that answers with the headers it was sent, as a JSON object.
    async fn echo_headers() -> String {
        let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = l.local_addr().unwrap();
        tokio::spawn(async move {
            loop {
                let (stream, _) = l.accept().await.unwrap();
                let svc = hyper::service::service_fn(|req: Request<_>| {
                    let headers: serde_json::Map<String, Value> = (req.headers().iter())
                        .map(|(k, v)| (k.to_string(), json!(v.to_str().unwrap_or("?"))))
                        .collect();
                    let body = json!({ "headers": headers });
                    async move { Ok::<_, Infallible>(json_reply(body)) }
                });
                tokio::spawn(async move {
                    let _ = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new())
                        .serve_connection(TokioIo::new(stream), svc)
                        .await;
                });
            }
        });
        format!("http://{addr}")
    }

    #[tokio::test]
    async fn trace_context_and_request_id_reach_every_hop() {
        // frontend → catalog → pricing (the echo), and frontend → cart (the echo).
        let echo = echo_headers().await;
        let catalog = start(Role::Catalog, "v1", "catalog-0", ["", "", &echo]).await;
        let front = start(
            Role::Frontend,
            "v1",
            "frontend-0",
            [&format!("http://{catalog}"), &echo, ""],
        )
        .await;
        let sent = [
            (
                "traceparent",
                "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            ),
            ("tracestate", "weft=1"),
            ("x-b3-traceid", "4bf92f3577b34da6a3ce929d0e0e4736"),
            ("x-b3-spanid", "00f067aa0ba902b7"),
            ("x-b3-parentspanid", "a3ce929d0e0e4736"),
            ("x-b3-sampled", "1"),
            ("x-b3-flags", "1"),
            (
                "b3",
                "4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-1-a3ce929d0e0e4736",
            ),
            ("x-request-id", "7f3a0c1e-req"),
        ];
        assert_eq!(sent.map(|(k, _)| k), PROPAGATED);
        let mut headers = HeaderMap::new();
        for (k, v) in sent {
            headers.insert(k, v.parse().unwrap());
        }
        headers.insert("x-not-a-trace-header", "private".parse().unwrap());
        let client: HttpClient = Client::builder(TokioExecutor::new()).build_http();
        let api = call(&client, &format!("http://{front}/api"), &headers).await;

        let cart = &api["cart"]["headers"];
        let pricing = &api["catalog"]["items"][0]["price"]["headers"];
        for (hop, seen) in [("frontend → cart", cart), ("catalog → pricing", pricing)] {
            for (k, v) in sent {
                assert_eq!(seen[k], v, "{hop}: {k}: {api}");
            }
            assert!(seen.get("x-not-a-trace-header").is_none(), "{hop}: {api}");
        }
    }
}
