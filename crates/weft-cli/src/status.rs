//! `weft status`: every proxy the control plane knows and whether it runs the current config
//! (SYNCED, STALE, NACKED with the proxy's reason, NOT SENT), per resource type, a rejected
//! change of configuration with its problems, and the proxies it refuses (version skew, another
//! revision) with what to do. It exits 1 when anything is not in sync ([`Health`]), so a
//! script can wait on it.

use std::process::ExitCode;

use anyhow::{Context, bail};
use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use serde_json::Value;
use weft_local::ports;

use crate::names::of_node;
use crate::output::{self, Format};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Admin address of the control plane (default: the running `weft up` mesh's, else
    /// 127.0.0.1:15014).
    #[arg(long, env = "WEFT_CONTROL_ADMIN")]
    admin: Option<String>,
    /// Print the raw JSON instead of a table (as `-o json`).
    #[arg(long, hide = true)]
    json: bool,
    #[arg(long, short = 'o', value_enum, default_value_t = Format::Table)]
    output: Format,
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
    let health = Health::of(&config, &list);
    let code = match health.problems.is_empty() {
        true => ExitCode::SUCCESS,
        false => ExitCode::FAILURE,
    };
    let format = if args.json { Format::Json } else { args.output };
    if format != Format::Table {
        let value = serde_json::json!({
            "config": config,
            "proxies": list,
            "inSync": health.problems.is_empty(),
            "problems": health.problems,
        });
        output::print(format, &value, String::new)?;
        return Ok(code);
    }
    let mut out = render(&config, &list);
    if let Some(revisions) = crate::revision::proxies_table(&dir) {
        out += "\n";
        out += &revisions;
    }
    // Certificates whose renewal is overdue (the CA's view; absent on older control planes).
    let ca = rt
        .block_on(fetch(&admin, "/debug/ca"))
        .unwrap_or(Value::Null);
    for o in ca["renewalOverdue"].as_array().into_iter().flatten() {
        out += &format!(
            "WARNING: the workload certificate of pod {} ({}, serial {}) expires in {}s and has not been renewed\n",
            o["pod"].as_str().unwrap_or("?"),
            o["identity"].as_str().unwrap_or("?"),
            o["serial"].as_str().unwrap_or("?"),
            o["expiresInSeconds"]
        );
    }
    output::write(&out)?;
    Ok(code)
}

/// Whether the mesh runs what its configuration says: what stands in the way, if anything.
#[derive(Debug, Default, PartialEq)]
pub struct Health {
    /// One line each: the rejected change, NACKED and STALE proxies, refused proxies.
    pub problems: Vec<String>,
}

impl Health {
    pub fn of(config: &Value, list: &Value) -> Health {
        let mut problems = Vec::new();
        if let Some(p) = config["rejected"]["problems"].as_array() {
            problems.push(format!(
                "the last change of configuration was rejected ({} problem(s)); generation {} \
                 stays in force",
                p.len(),
                config["generation"]
            ));
        }
        let mut states: std::collections::BTreeMap<&str, Vec<String>> = Default::default();
        for p in list.as_array().into_iter().flatten() {
            let types = p["types"].as_object().into_iter().flatten();
            for state in ["NACKED", "STALE"] {
                if types.clone().any(|(_, t)| t["state"] == state) {
                    states.entry(state).or_default().push(of_node(&p["node"]));
                }
            }
        }
        if let Some(pods) = states.get("NACKED") {
            problems.push(format!(
                "{} proxy(ies) rejected their config and run the one before: {}",
                pods.len(),
                pods.join(", ")
            ));
        }
        if let Some(pods) = states.get("STALE") {
            problems.push(format!(
                "{} proxy(ies) have not acknowledged their latest config yet: {}",
                pods.len(),
                pods.join(", ")
            ));
        }
        let refused = config["refusedProxies"].as_array().map_or(0, Vec::len);
        if refused > 0 {
            problems.push(format!("{refused} proxy(ies) refused by the control plane"));
        }
        Health { problems }
    }

    /// Why `weft status` exits 1, if it does: the lines under the configuration's.
    fn summary(&self) -> String {
        if self.problems.is_empty() {
            return String::new();
        }
        let mut out = String::from("NOT IN SYNC (exit status 1):\n");
        for p in &self.problems {
            out += &format!("  {p}\n");
        }
        out
    }
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
        let when = config["rejected"]["atMs"]
            .as_u64()
            .map_or_else(String::new, |t| {
                format!(" {} ago", crate::get::age(Some(t)))
            });
        out += &format!(
            ", last change REJECTED{when} ({} problem(s)); generation {} stays in force:\n",
            problems.len(),
            config["generation"]
        );
        for p in problems {
            // A problem's own lines (its fix) are indented under it.
            for (i, line) in p.as_str().unwrap_or("?").lines().enumerate() {
                let pad = if i == 0 { "  " } else { "    " };
                out += &format!("{pad}{}\n", line.trim_start());
            }
        }
        out += "  fix the files and save again (`weft analyze DIR` checks them first)";
    }
    out += "\n";
    out += &Health::of(config, list).summary();
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
        let id = of_node(&p["node"]);
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
            of_node(&r["node"]),
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
        assert!(
            text.starts_with(
                "config generation 3\nNOT IN SYNC (exit status 1):\n  1 proxy(ies) rejected their \
                 config and run the one before: shop/web-0\nPROXY"
            ),
            "{text}"
        );
        assert!(text.contains("shop/web-0  shop/web  Service  NACKED  rejected: filter ExtensionRef is not supported"), "{text}");
        assert!(text.contains("Proxy    SYNCED  1 subscribed"), "{text}");
    }

    #[test]
    fn a_rejected_change_shows_its_problems_and_is_not_in_sync() {
        let config = serde_json::json!({"generation": 4, "rejected": {"atMs": 0, "problems": [
            "shop/bad.yaml:3:9: spec.replicas: expected an integer, found \"many\"",
            "shop/bad.yaml:7:1: unknown field `colour`"
        ]}});
        let list = serde_json::json!([{
            "node": {"id": "web-0.shop", "namespace": "shop", "pod": "web-0", "workload": "web"},
            "types": {"weft.dev/Proxy": {"state": "STALE", "subscribed": 1}}
        }]);
        let text = render(&config, &list);
        assert!(
            text.starts_with("config generation 4, last change REJECTED "),
            "{text}"
        );
        assert!(text.contains("(2 problem(s)); generation 4 stays in force:\n  shop/bad.yaml:3:9: spec.replicas: expected an integer, found \"many\"\n  shop/bad.yaml:7:1: unknown field `colour`\n"), "{text}");
        let health = Health::of(&config, &list);
        assert_eq!(
            health.problems,
            [
                "the last change of configuration was rejected (2 problem(s)); generation 4 stays in force",
                "1 proxy(ies) have not acknowledged their latest config yet: shop/web-0"
            ]
        );
        assert!(text.contains("  fix the files and save again (`weft analyze DIR` checks them first)\nNOT IN SYNC (exit status 1):\n  the last change of configuration was rejected"), "{text}");
        let synced = serde_json::json!([{
            "node": {"id": "web-0.shop"},
            "types": {"weft.dev/Proxy": {"state": "SYNCED", "subscribed": 1}}
        }]);
        let fine = Health::of(&serde_json::json!({"generation": 5}), &synced);
        assert_eq!(fine, Health::default());
        assert_eq!(fine.summary(), "");
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
            text.contains(&format!("1 proxy(ies) refused (they keep their last config and retry):\n  REFUSED shop/web-0: {message}\n")),
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
            text.contains("weft-system/node-1  node node-1  Proxy  SYNCED  3 subscribed"),
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
