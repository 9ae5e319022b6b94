//! `weft proxy-config POD listeners|routes|clusters|endpoints|secrets|all`: the full
//! configuration the control plane intends for a proxy of a `weft up` mesh (a sidecar, a
//! waypoint, an ingress gateway, a node proxy or an ambient pod's part of it), from its
//! `/debug/proxy_config`, with the live state only the proxy holds merged in and marked
//! ([`view`]); and what a proxy holds, read from its admin API: `secret`, `config`,
//! `workloads`, `services`.
//!
//! A sidecar's (and a waypoint's) admin listens on 127.0.0.1:15000 inside its pod; a node
//! proxy's and a gateway's on the host's loopback, at the address they reported in the run
//! directory. An ambient pod is read from its node proxy: its state, config and certificate
//! from `GET /pods`, the Services from the node's `/config_dump`.

mod node;
mod secrets;
mod table;
mod tables;
mod target;
mod view;

use std::io::Write;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;
use serde_json::{Value, json};
use weft_core::model::effective::Effective;
use weft_local::plan::PodPlan;
use weft_local::rundir::RunDir;
use weft_proxy::certs::CertInfo;

use crate::up::Instance;
use target::Target;

/// What to show.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Show {
    Listeners,
    Routes,
    Clusters,
    Endpoints,
    Secrets,
    All,
    /// A pod's certificate as text (or its JSON).
    Secret,
    /// The proxy's `/config_dump`.
    Config,
    /// A node proxy's pods.
    Workloads,
    /// The Services the proxy holds.
    Services,
}

impl Show {
    fn parse(word: &str) -> Option<Show> {
        Some(match word {
            "listeners" | "listener" => Show::Listeners,
            "routes" | "route" => Show::Routes,
            "clusters" | "cluster" => Show::Clusters,
            "endpoints" | "endpoint" => Show::Endpoints,
            "secrets" => Show::Secrets,
            "all" => Show::All,
            "secret" => Show::Secret,
            "config" => Show::Config,
            "workloads" => Show::Workloads,
            "services" => Show::Services,
            _ => return None,
        })
    }
}

const VIEWS: &str = "listeners, routes, clusters, endpoints, secrets, all, secret, config, \
                     workloads, services";

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum Output {
    #[value(alias = "text")]
    Table,
    Json,
    Yaml,
}

#[derive(Debug, clap::Args)]
#[command(after_help = "Views (POD VIEW, or VIEW POD as istioctl orders them):
  listeners   capture, tunnel, each port of the pod, each Service VIP, admin/metrics/readiness
  routes      per Service port (gateway: per listener): domains, matches, weighted backends,
              timeout, retries and the rule
  clusters    per Service port: load balancing, pool, outlier detection, TLS, identities,
              and whether the proxy fetched it (live)
  endpoints   every endpoint: address, health, outlier ejection (live), pod, node, identity
  secrets     the workload certificate and trust bundle with fingerprints (live)
  all         all of the above (the default)
  secret | config | services | workloads NODE
              what the proxy holds: its certificate, its /config_dump, its Services, a node
              proxy's pods

POD is a pod (`cart-0`, `shop/cart-0`), a gateway (`gateway-shop-ingress`, as `weft logs`
names it) or a node (`node-1`). A pod in ambient mode is read from its node's proxy.")]
pub struct Args {
    /// `POD VIEW` or `VIEW POD`.
    #[arg(value_name = "POD|VIEW", num_args = 1..=2, required = true)]
    words: Vec<String>,
    /// Output format (`text` is `table`).
    #[arg(long, short = 'o', value_enum, default_value_t = Output::Table)]
    output: Output,
    /// Only what concerns this port (listeners, routes, clusters, endpoints).
    #[arg(long)]
    port: Option<u16>,
    /// Only what concerns this Service (`ns/name`, `name` or its FQDN).
    #[arg(long)]
    service: Option<String>,
    #[command(flatten)]
    instance: Instance,
}

/// The view and the target named by `words`, in either order.
fn parse_words(words: &[String]) -> anyhow::Result<(Show, &str)> {
    match words {
        [one] => match Show::parse(one) {
            Some(_) => anyhow::bail!("name a pod, gateway or node: `weft proxy-config POD {one}`"),
            None => Ok((Show::All, one)),
        },
        [a, b] => match (Show::parse(a), Show::parse(b)) {
            (Some(show), _) => Ok((show, b)),
            (None, Some(show)) => Ok((show, a)),
            (None, None) => anyhow::bail!("neither {a:?} nor {b:?} is a view; views: {VIEWS}"),
        },
        _ => anyhow::bail!("give a pod and a view: `weft proxy-config POD routes`"),
    }
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let (show, name) = parse_words(&args.words)?;
    let (dir, plan) = args.instance.running()?;
    let target = target::find(&plan, name)?;
    let output = args.output;
    match show {
        Show::Secret => return secret(&dir, target, output),
        Show::Config => return print(output, &config_dump(&dir, target)?, None),
        Show::Workloads => {
            let pods = match target {
                Target::Node(node) => node::pods(&dir, node)?,
                Target::InPod(p) | Target::Ambient(p) => anyhow::bail!(
                    "{name:?} is a pod, not a node; its node is {0}: `weft proxy-config {0} workloads`",
                    p.node
                ),
                Target::Gateway(_) => anyhow::bail!("{name:?} is a gateway, not a node"),
            };
            let text = table::workloads(&pods, now());
            return print(output, &serde_json::to_value(&pods)?, Some(text));
        }
        Show::Services => {
            let dump = config_dump(&dir, target)?;
            let text = table::services(&dump);
            return print(output, &dump["services"], Some(text));
        }
        _ => {}
    }
    if show == Show::Secrets {
        // Whose they should be, when the control plane can be asked.
        let proxy = view::fetch(&dir, &plan, target)
            .ok()
            .map(|v| v.effective.proxy);
        let intended = proxy.as_ref().and_then(|p| p.identity.clone());
        let s = secrets::fetch(&dir, target, intended)?;
        let json = match proxy {
            Some(p) => json!({ "proxy": p, "secrets": s }),
            None => json!({ "target": target.label(), "secrets": s }),
        };
        return print(output, &json, Some(secrets::render(&s, now())));
    }
    let mut v = view::fetch(&dir, &plan, target)?;
    filter(&mut v.effective, args.port, args.service.as_deref());
    let parts: &[&str] = match show {
        Show::Listeners => &["listeners"],
        Show::Routes => &["routes"],
        Show::Clusters => &["clusters"],
        Show::Endpoints => &["endpoints"],
        _ => &["listeners", "routes", "clusters", "endpoints"],
    };
    let mut json = view::to_json(&v, parts);
    let text = match show {
        Show::Listeners => tables::listeners(&v),
        Show::Routes => tables::routes(&v.effective),
        Show::Clusters => tables::clusters(&v),
        Show::Endpoints => tables::endpoints(&v),
        _ => {
            let intended = v.effective.proxy.identity.clone();
            let secrets = secrets::fetch(&dir, target, intended);
            let secrets_text = match &secrets {
                Ok(s) => secrets::render(s, now()),
                Err(e) => format!("(the proxy could not be asked: {e:#})\n"),
            };
            json["secrets"] = match secrets {
                Ok(s) => json!(s),
                Err(e) => json!({ "error": format!("{e:#}") }),
            };
            all(&v, target, &secrets_text)
        }
    };
    print(output, &json, Some(text))
}

/// Every table, each under a heading, after a line saying whose configuration it is.
fn all(v: &view::View, target: Target<'_>, secrets: &str) -> String {
    let p = &v.effective.proxy;
    let role = serde_json::to_value(p.role).unwrap_or_default();
    let mut out = format!("{} ({})", target.label(), role.as_str().unwrap_or("?"));
    if let Some(id) = &p.identity {
        out += &format!(", identity {id}");
    }
    if let Some(node) = &p.node {
        out += &format!(", node {node}");
    }
    out += "\n";
    for (title, text) in [
        ("LISTENERS", tables::listeners(v)),
        ("ROUTES", tables::routes(&v.effective)),
        ("CLUSTERS", tables::clusters(v)),
        ("ENDPOINTS", tables::endpoints(v)),
        ("SECRETS", secrets.to_string()),
    ] {
        out += &format!("\n{title}\n{text}");
    }
    out
}

/// Keeps what concerns `port` and the Service `service` (`ns/name`, `name` or its FQDN).
fn filter(e: &mut Effective, port: Option<u16>, service: Option<&str>) {
    let svc = |key: &str| {
        service.is_none_or(|s| {
            key == s
                || key.ends_with(&format!("/{s}"))
                || fqdn(key) == s
                || fqdn(key).starts_with(&format!("{s}."))
        })
    };
    let on_port = |p: u16| port.is_none_or(|want| want == p);
    e.listeners.retain(|l| {
        on_port(l.port)
            && service.is_none_or(|_| {
                let key = l
                    .name
                    .strip_prefix("outbound ")
                    .and_then(|n| n.rsplit_once(':'));
                key.is_some_and(|(k, _)| svc(k))
            })
    });
    e.routes.retain(|r| {
        let backends = (r.entries.iter())
            .flat_map(|x| &x.backends)
            .any(|b| svc(&b.service));
        on_port(r.port) && (r.service.as_deref().is_some_and(svc) || backends)
    });
    e.clusters.retain(|c| on_port(c.port) && svc(&c.service));
    let kept: Vec<&str> = e.clusters.iter().map(|c| c.name.as_str()).collect();
    e.endpoints.retain(|x| kept.contains(&x.cluster.as_str()));
}

fn fqdn(key: &str) -> String {
    match key.split_once('/') {
        Some((ns, name)) => format!("{name}.{ns}.svc.cluster.local"),
        None => key.to_string(),
    }
}

/// `value` as JSON or YAML, or `text` (JSON when there is no table). A closed pipe comes
/// back as an error, not a panic.
fn print(output: Output, value: &Value, text: Option<String>) -> anyhow::Result<ExitCode> {
    let out = match (output, text) {
        (Output::Table, Some(text)) => text,
        (Output::Table | Output::Json, _) => serde_json::to_string_pretty(value)? + "\n",
        (Output::Yaml, _) => crate::yaml_out::to_yaml(value) + "\n",
    };
    std::io::stdout().lock().write_all(out.as_bytes())?;
    Ok(ExitCode::SUCCESS)
}

fn secret(dir: &RunDir, target: Target<'_>, output: Output) -> anyhow::Result<ExitCode> {
    let info: CertInfo = match target {
        Target::InPod(pod) => {
            let body = in_pod(pod, "/certs")?;
            serde_json::from_str(&body).context("unexpected answer from the proxy")?
        }
        Target::Ambient(pod) => {
            let entry = node::pod(dir, pod)?;
            match entry.certificate {
                Some(c) => c,
                None => anyhow::bail!(
                    "node {}'s proxy holds no certificate for {} ({}): {}",
                    pod.node,
                    pod.id(),
                    entry.state,
                    entry.no_certificate.unwrap_or_default()
                ),
            }
        }
        Target::Gateway(_) => {
            let s = secrets::fetch(dir, target, None)?;
            let held = s.held.into_iter().next().and_then(|h| h.certificate);
            held.context("the gateway's proxy holds no certificate")?
        }
        Target::Node(n) => anyhow::bail!(
            "{n} is a node: its proxy holds one certificate per pod; name a pod \
             (`weft proxy-config {n} workloads` lists them, `weft proxy-config {n} secrets` \
             shows them all)"
        ),
    };
    print(
        output,
        &json!(info),
        Some(weft_proxy::certs::describe(&info)),
    )
}

/// The `/config_dump` of the proxy `target` leads to; an ambient pod's entry of `/pods` under
/// `"pod"` of its node's.
fn config_dump(dir: &RunDir, target: Target<'_>) -> anyhow::Result<Value> {
    let parse = |body: String| -> anyhow::Result<Value> {
        serde_json::from_str(&body).context("unexpected answer from the proxy")
    };
    match target {
        Target::InPod(pod) => parse(in_pod(pod, "/config_dump")?),
        Target::Node(n) => parse(node::get(dir, n, "/config_dump")?),
        Target::Ambient(pod) => {
            let entry = node::pod(dir, pod)?;
            let mut dump = parse(node::get(dir, &pod.node, "/config_dump")?)?;
            dump["pod"] = serde_json::to_value(entry)?;
            Ok(dump)
        }
        Target::Gateway(g) => parse(view::gateway_get(dir, g, "/config_dump")?),
    }
}

/// `GET path` on the admin API inside `pod` (its sidecar's or waypoint's).
fn in_pod(pod: &PodPlan, path: &str) -> anyhow::Result<String> {
    let admin = weft_local::ports::localhost(weft_local::ports::PROXY_ADMIN);
    let (status, body) =
        weft_local::http::get_in_pod(&pod.netns, admin, path, Duration::from_secs(5)).map_err(
            |e| anyhow::anyhow!("asking the proxy of {} at {admin}{path}: {e}", pod.id()),
        )?;
    if status != 200 {
        anyhow::bail!(
            "the proxy of {} answered {status}: {}",
            pod.id(),
            body.trim()
        );
    }
    Ok(body)
}

/// Unix seconds now.
fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(w: &[&str]) -> Vec<String> {
        w.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn the_view_and_the_pod_come_in_either_order() {
        let w = words(&["frontend-0", "routes"]);
        assert_eq!(parse_words(&w).unwrap(), (Show::Routes, "frontend-0"));
        let w = words(&["clusters", "shop/frontend-0"]);
        assert_eq!(
            parse_words(&w).unwrap(),
            (Show::Clusters, "shop/frontend-0")
        );
        let w = words(&["secret", "cart-0"]);
        assert_eq!(parse_words(&w).unwrap(), (Show::Secret, "cart-0"));
        let w = words(&["cart-0"]);
        assert_eq!(parse_words(&w).unwrap(), (Show::All, "cart-0"));
        let err = parse_words(&words(&["cart-0", "roots"]))
            .unwrap_err()
            .to_string();
        assert!(err.contains("views: listeners, routes"), "{err}");
        let err = parse_words(&words(&["routes"])).unwrap_err().to_string();
        assert!(err.contains("name a pod"), "{err}");
    }
}
