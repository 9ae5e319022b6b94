//! `weft status`: every proxy the control plane knows and whether it runs the current config
//! (SYNCED, STALE, NACKED with the proxy's reason, NOT SENT), per resource type, and the proxies
//! it refuses (version skew, another revision) with what to do.

use std::process::ExitCode;

use anyhow::{Context, bail};
use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use serde_json::Value;
use weft_local::ports;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Admin address of the control plane (default: the running `weft up` mesh's, else
    /// 127.0.0.1:15014).
    #[arg(long, env = "WEFT_CONTROL_ADMIN")]
    admin: Option<String>,
    /// Print the raw JSON instead of a table.
    #[arg(long)]
    json: bool,
    /// The `weft up` mesh whose proxies' revisions to show too, when it runs.
    #[command(flatten)]
    instance: crate::up::Instance,
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the runtime")?;
    let dir = weft_local::rundir::RunDir::new(&args.instance.name);
    let admin = (args.admin.clone())
        .or_else(|| dir.plan().map(|p| p.admin.to_string()))
        .unwrap_or_else(|| ports::localhost(ports::CONTROL_ADMIN).to_string());
    let list = rt.block_on(fetch(&admin, "/debug/syncz"))?;
    let config = rt.block_on(fetch(&admin, "/debug/config"))?;
    if args.json {
        println!(
            "{}",
            serde_json::to_string_pretty(&serde_json::json!({"config": config, "proxies": list}))?
        );
        return Ok(ExitCode::SUCCESS);
    }
    print!("{}", render(&config, &list));
    if let Some(revisions) = crate::revision::proxies_table(&dir) {
        println!();
        print!("{revisions}");
    }
    // Certificates whose renewal is overdue (the CA's view; absent on older control planes).
    let ca = rt
        .block_on(fetch(&admin, "/debug/ca"))
        .unwrap_or(Value::Null);
    for o in ca["renewalOverdue"].as_array().into_iter().flatten() {
        println!(
            "WARNING: the workload certificate of pod {} ({}, serial {}) expires in {}s and has not been renewed",
            o["pod"].as_str().unwrap_or("?"),
            o["identity"].as_str().unwrap_or("?"),
            o["serial"].as_str().unwrap_or("?"),
            o["expiresInSeconds"]
        );
    }
    let refused = config["refusedProxies"]
        .as_array()
        .is_some_and(|r| !r.is_empty());
    let unhealthy = refused
        || list.as_array().into_iter().flatten().any(|p| {
            p["types"]
                .as_object()
                .into_iter()
                .flatten()
                .any(|(_, t)| t["state"] == "NACKED")
        });
    Ok(if unhealthy {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}

pub(crate) async fn fetch(admin: &str, path: &str) -> anyhow::Result<Value> {
    let client: Client<_, Empty<Bytes>> = Client::builder(TokioExecutor::new()).build_http();
    let uri: http::Uri = format!("http://{admin}{path}")
        .parse()
        .context("control plane admin address")?;
    let res = tokio::time::timeout(std::time::Duration::from_secs(5), client.get(uri))
        .await
        .with_context(|| format!("no answer from the control plane at {admin} within 5s"))?
        .with_context(|| format!("cannot reach the control plane admin API at {admin} (is `weft control` running? --admin sets the address)"))?;
    let status = res.status();
    let body = res.into_body().collect().await?.to_bytes();
    if !status.is_success() {
        bail!("{path}: {status}: {}", String::from_utf8_lossy(&body));
    }
    serde_json::from_slice(&body).with_context(|| format!("{path}: not JSON"))
}

/// The table `weft status` prints.
pub fn render(config: &Value, list: &Value) -> String {
    let mut out = format!("config generation {}", config["generation"]);
    if let Some(problems) = config["rejected"]["problems"].as_array() {
        out += &format!(
            ", last change REJECTED ({} problems; see `weft analyze`)",
            problems.len()
        );
    }
    out += "\n";
    out += &findings(config);
    out += &refused(config);
    let short = |ty: &str| ty.trim_start_matches("weft.dev/").to_string();
    let proxies = list.as_array().cloned().unwrap_or_default();
    if proxies.is_empty() {
        return out + "no proxies connected\n";
    }
    let mut rows = vec![[
        "PROXY".to_string(),
        "WORKLOAD".into(),
        "TYPE".into(),
        "STATE".into(),
        "DETAIL".into(),
    ]];
    for p in &proxies {
        let id = p["node"]["id"].as_str().unwrap_or("?").to_string();
        // A node proxy serves the ambient pods of its node, not a workload of its own.
        let workload = match p["node"]["role"].as_str() {
            Some("node") => format!("node {}", p["node"]["pod"].as_str().unwrap_or("?")),
            _ => format!(
                "{}/{}",
                p["node"]["namespace"].as_str().unwrap_or("?"),
                p["node"]["workload"].as_str().unwrap_or("?")
            ),
        };
        for (ty, t) in p["types"].as_object().into_iter().flatten() {
            let detail = match t["state"].as_str() {
                Some("NACKED") => {
                    format!("rejected: {}", t["nack"]["error"].as_str().unwrap_or("?"))
                }
                _ => format!("{} subscribed", t["subscribed"]),
            };
            rows.push([
                id.clone(),
                workload.clone(),
                short(ty),
                t["state"].as_str().unwrap_or("?").into(),
                detail,
            ]);
        }
    }
    let widths: Vec<usize> = (0..4)
        .map(|i| rows.iter().map(|r| r[i].len()).max().unwrap_or(0))
        .collect();
    for r in rows {
        out += &format!(
            "{:w0$}  {:w1$}  {:w2$}  {:w3$}  {}\n",
            r[0],
            r[1],
            r[2],
            r[3],
            r[4],
            w0 = widths[0],
            w1 = widths[1],
            w2 = widths[2],
            w3 = widths[3]
        );
    }
    out
}

/// Proxies the control plane will not serve (absent on older control planes): they keep their
/// last config and retry until the operator acts on the message.
fn refused(config: &Value) -> String {
    let list = config["refusedProxies"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    if list.is_empty() {
        return String::new();
    }
    let mut out = format!(
        "{} proxy(ies) refused (they keep their last config and retry):\n",
        list.len()
    );
    for r in list {
        out += &format!(
            "  REFUSED {}: {}\n",
            r["node"]["id"].as_str().unwrap_or("?"),
            r["message"].as_str().unwrap_or("?")
        );
    }
    out
}

/// The analyzer's warnings on the configuration in force: served, but not doing all it says.
fn findings(config: &Value) -> String {
    let list: Vec<&Value> = config["findings"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|f| f["severity"] != "info")
        .collect();
    if list.is_empty() {
        return String::new();
    }
    let mut out = format!(
        "{} warning(s) on the configuration in force (served all the same; `weft analyze --explain CODE` says more):\n",
        list.len()
    );
    for f in list {
        let s = |k: &str| f[k].as_str().unwrap_or("?");
        out += &format!(
            "  {} {} {}: {}\n    fix: {}\n",
            s("severity").to_uppercase(),
            s("code"),
            s("resource"),
            s("message"),
            s("fix")
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_names_nacks_with_their_reason() {
        let config = serde_json::json!({"generation": 3, "rejected": null});
        let list = serde_json::json!([{
            "node": {"id": "web-0.shop", "namespace": "shop", "workload": "web"},
            "types": {
                "weft.dev/Service": {"state": "NACKED", "subscribed": 2, "nack": {"error": "filter ExtensionRef is not supported"}},
                "weft.dev/Proxy": {"state": "SYNCED", "subscribed": 1}
            }
        }]);
        let text = render(&config, &list);
        assert!(text.starts_with("config generation 3\nPROXY"), "{text}");
        assert!(text.contains("web-0.shop  shop/web  Service  NACKED  rejected: filter ExtensionRef is not supported"), "{text}");
        assert!(text.contains("Proxy    SYNCED  1 subscribed"), "{text}");
    }

    #[test]
    fn refused_proxies_are_listed_with_the_control_planes_message() {
        let message = "proxy web-0.shop belongs to revision canary; this control plane serves \
                       revision stable: point it at canary's control plane";
        let config = serde_json::json!({"generation": 1, "refusedProxies": [
            {"node": {"id": "web-0.shop", "revision": "canary"}, "reason": "revision",
             "message": message}
        ]});
        let text = render(&config, &serde_json::json!([]));
        assert!(
            text.contains(&format!("1 proxy(ies) refused (they keep their last config and retry):\n  REFUSED web-0.shop: {message}\n")),
            "{text}"
        );
    }

    #[test]
    fn a_node_proxy_is_shown_by_its_node() {
        let config = serde_json::json!({"generation": 1});
        let list = serde_json::json!([{
            "node": {"id": "node-1.weft-system", "role": "node", "namespace": "weft-system",
                     "workload": "weft-node", "pod": "node-1"},
            "types": {"weft.dev/Proxy": {"state": "SYNCED", "subscribed": 3}}
        }]);
        let text = render(&config, &list);
        assert!(
            text.contains("node-1.weft-system  node node-1  Proxy  SYNCED  3 subscribed"),
            "{text}"
        );
    }

    #[test]
    fn warnings_on_the_config_in_force_are_listed_with_their_fix() {
        let config = serde_json::json!({"generation": 2, "findings": [
            {"code": "WEFT0605", "severity": "warning", "resource": "Workload/shop/legacy",
             "message": "no proxy: AuthorizationPolicy shop/p selects it but is not enforced",
             "fix": "run it with a sidecar"},
            {"code": "WEFT0604", "severity": "info", "resource": "Workload/shop/parked",
             "message": "replicas is 0", "fix": "scale up"}
        ]});
        let text = render(&config, &serde_json::json!([]));
        assert!(
            text.starts_with("config generation 2\n1 warning(s)"),
            "{text}"
        );
        assert!(text.contains("  WARNING WEFT0605 Workload/shop/legacy: no proxy: AuthorizationPolicy shop/p selects it but is not enforced\n    fix: run it with a sidecar\n"), "{text}");
        assert!(
            !text.contains("WEFT0604"),
            "notes stay in `weft analyze`: {text}"
        );
        assert!(text.ends_with("no proxies connected\n"), "{text}");
    }
}
