//! `weft get KIND [NAME]`: what a `weft up` mesh runs, from its status file — pods (the
//! gateways, node proxies and control planes among them, with their role), services,
//! workloads, or events ([`crate::events`]). Kinds read as kubectl users type them: singular,
//! plural or short (`po`, `svc`, `deploy`), also as `KIND/NAME`.

mod pods;

use std::process::ExitCode;

use serde_json::{Map, Value};
use weft_core::model::{Pod, Snapshot};
use weft_local::plan::Plan;
use weft_local::rundir::RunDir;
use weft_local::status::{PodStatus, Status, now_ms};

use crate::output::{self, Format};
use crate::up::Instance;

/// What `weft get` lists.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum What {
    Pods,
    Services,
    Workloads,
    Events,
}

/// The kinds, each with the words that name it.
const KINDS: [(What, &[&str]); 4] = [
    (What::Pods, &["pods", "pod", "po"]),
    (What::Services, &["services", "service", "svc"]),
    (
        What::Workloads,
        &[
            "workloads",
            "workload",
            "wl",
            "deployments",
            "deployment",
            "deploy",
        ],
    ),
    (What::Events, &["events", "event", "ev"]),
];

/// A kind (`pods`, `pod`, `po`, …), maybe with a name after a slash (`pod/cart-0`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Kind {
    pub what: What,
    pub name: Option<String>,
}

/// Reads a kind as kubectl users type it.
pub fn parse_kind(s: &str) -> Result<Kind, String> {
    let (word, name) = match s.split_once('/') {
        Some((w, n)) if !n.is_empty() => (w, Some(n.to_string())),
        _ => (s, None),
    };
    let word = word.to_ascii_lowercase();
    (KINDS.iter())
        .find(|(_, words)| words.contains(&word.as_str()))
        .map(|(what, _)| Kind { what: *what, name })
        .ok_or_else(|| {
            let all: Vec<String> = (KINDS.iter())
                .map(|(_, w)| format!("{} ({})", w[0], w[1..].join(", ")))
                .collect();
            format!("no kind {word:?}; kinds: {}", all.join(", "))
        })
}

#[derive(Debug, clap::Args)]
#[command(
    after_help = "Examples:\n  weft get pods\n  weft get po shop/cart-0 -o yaml\n  \
weft get svc\n  weft get deploy -o json\n  weft get events"
)]
pub struct Args {
    /// pods (pod, po), services (service, svc), workloads (workload, deploy), events (event,
    /// ev); also KIND/NAME.
    #[arg(value_parser = parse_kind, value_name = "KIND")]
    kind: Kind,
    /// Only this one (`shop/cart-0`, or `cart-0` when no other namespace has one).
    #[arg(value_name = "NAME")]
    only: Option<String>,
    #[command(flatten)]
    instance: Instance,
    #[arg(long, short = 'o', value_enum, default_value_t = Format::Table)]
    output: Format,
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let name = args.only.clone().or(args.kind.name.clone());
    if args.kind.what == What::Events {
        let select = crate::events::Select::printed(args.output);
        let names: Vec<String> = name.into_iter().collect();
        return crate::events::show(&args.instance, &select, &names);
    }
    let dir = RunDir::new(&args.instance.name);
    let (Some(plan), Some(status)) = (dir.plan(), dir.status()) else {
        anyhow::bail!(
            "no mesh named {:?} is running; start one with `weft up DIR`",
            args.instance.name
        );
    };
    let (head, mut items) = match args.kind.what {
        What::Pods => pods::list(&plan, &status),
        What::Services => services(&plan)?,
        What::Workloads => workloads(&plan, &status),
        What::Events => unreachable!("handled above"),
    };
    if let Some(name) = &name {
        let ids: Vec<(&str, &str)> = (items.iter())
            .map(|i| (i.namespace.as_str(), i.name.as_str()))
            .collect();
        let kind = (KINDS.iter().find(|k| k.0 == args.kind.what)).map_or("pod", |k| k.1[1]);
        let i = crate::names::pick_kind(&ids, name, kind).map_err(anyhow::Error::msg)?;
        items = vec![items.swap_remove(i)];
    }
    let value = match (&name, &items[..]) {
        (Some(_), [one]) => one.json.clone(),
        _ => Value::Array(items.iter().map(|i| i.json.clone()).collect()),
    };
    output::print(args.output, &value, || {
        let rows: Vec<Vec<String>> = std::iter::once(header(head))
            .chain(items.iter().map(|i| i.row.clone()))
            .collect();
        table(&rows)
    })?;
    // What the running mesh did not apply is said wherever its pods are listed.
    for line in &status.refused {
        eprintln!("configuration change refused while the mesh runs: {line}");
    }
    if let Some(why) = (status.limits.as_deref()).filter(|l| l.starts_with("not enforced"))
        && args.kind.what == What::Pods
    {
        eprintln!("CPU and memory limits are {why}");
    }
    Ok(ExitCode::SUCCESS)
}

/// One thing listed: its name, its table row and its JSON.
#[derive(Debug, Clone)]
pub struct Item {
    pub namespace: String,
    pub name: String,
    pub row: Vec<String>,
    pub json: Value,
}

impl Item {
    /// An item whose JSON has the row's columns, keyed by the header in camelCase.
    fn of_row(head: &[&str], row: Vec<String>) -> Item {
        let json: Map<String, Value> = (head.iter().zip(&row))
            .map(|(h, v)| (camel(h), Value::String(v.clone())))
            .collect();
        Item {
            namespace: row[0].clone(),
            name: row[1].clone(),
            row,
            json: Value::Object(json),
        }
    }
}

/// A table's rows (its header first) as JSON objects keyed by the header in camelCase.
pub(crate) fn rows_json(rows: &[Vec<String>]) -> Value {
    let Some((head, rows)) = rows.split_first() else {
        return Value::Array(vec![]);
    };
    let keys: Vec<String> = head.iter().map(|h| camel(h)).collect();
    (rows.iter())
        .map(|r| {
            let obj: Map<String, Value> = (keys.iter().zip(r))
                .map(|(k, v)| (k.clone(), Value::String(v.clone())))
                .collect();
            Value::Object(obj)
        })
        .collect()
}

/// `ENDPOINTS` → `endpoints`, `CONTROL PLANE` → `controlPlane`.
fn camel(header: &str) -> String {
    let mut out = String::new();
    for (i, word) in header.split(' ').enumerate() {
        let lower = word.to_ascii_lowercase();
        match i {
            0 => out.push_str(&lower),
            _ => {
                let mut c = lower.chars();
                out.extend(c.next().map(|f| f.to_ascii_uppercase()));
                out.push_str(c.as_str());
            }
        }
    }
    out
}

/// How long ago `since_ms` was: `42s`, `5m`, `3h`; `-` for never.
pub(crate) fn age(since_ms: Option<u64>) -> String {
    let Some(t) = since_ms else { return "-".into() };
    let s = now_ms().saturating_sub(t) / 1000;
    match s {
        0..120 => format!("{s}s"),
        120..7200 => format!("{}m", s / 60),
        _ => format!("{}h", s / 3600),
    }
}

const SERVICE_COLUMNS: [&str; 6] = ["NAMESPACE", "NAME", "VIP", "PORTS", "ENDPOINTS", "NAMES"];

fn services(plan: &Plan) -> anyhow::Result<(&'static [&'static str], Vec<Item>)> {
    let config = weft_local::plan::load(&plan.config_dir)?;
    let pods: Vec<Pod> = plan.pods.iter().map(|p| p.pod()).collect();
    let snap = Snapshot::build(&config, &pods);
    let mut items = Vec::new();
    for s in snap.services.values() {
        let ports: Vec<String> = s.ports.iter().map(|p| p.port.to_string()).collect();
        // Endpoints by pod name, as every verb names pods.
        let eps: Vec<String> = (s.endpoints.iter())
            .map(|e| crate::names::of_proxy_id(&e.pod))
            .collect();
        let row = vec![
            s.namespace.clone(),
            s.name.clone(),
            s.vip.map_or("-".into(), |v| v.to_string()),
            ports.join(","),
            if eps.is_empty() {
                "<none>".into()
            } else {
                eps.join(",")
            },
            s.hostnames.join(","),
        ];
        items.push(Item::of_row(&SERVICE_COLUMNS, row));
    }
    Ok((&SERVICE_COLUMNS, items))
}

const WORKLOAD_COLUMNS: [&str; 5] = ["NAMESPACE", "NAME", "READY", "MODE", "COMMAND"];

fn workloads(plan: &Plan, status: &Status) -> (&'static [&'static str], Vec<Item>) {
    let mut items: Vec<Item> = Vec::new();
    for p in &plan.pods {
        if (items.iter()).any(|i| i.namespace == p.namespace && i.name == p.workload) {
            continue;
        }
        let of: Vec<&PodStatus> = status
            .pods
            .iter()
            .filter(|s| s.namespace == p.namespace && s.workload == p.workload)
            .collect();
        let ready = of.iter().filter(|s| s.ready()).count();
        let row = vec![
            p.namespace.clone(),
            p.workload.clone(),
            format!("{ready}/{}", of.len()),
            p.mode_label().into(),
            p.command.join(" "),
        ];
        items.push(Item::of_row(&WORKLOAD_COLUMNS, row));
    }
    (&WORKLOAD_COLUMNS, items)
}

pub(crate) fn header(cols: &[&str]) -> Vec<String> {
    cols.iter().map(|c| c.to_string()).collect()
}

/// Left-aligned columns, two spaces apart.
pub(crate) fn table(rows: &[Vec<String>]) -> String {
    let cols = rows.first().map_or(0, Vec::len);
    let widths: Vec<usize> = (0..cols)
        .map(|i| rows.iter().map(|r| r[i].chars().count()).max().unwrap_or(0))
        .collect();
    let mut out = String::new();
    for r in rows {
        let line: Vec<String> = r
            .iter()
            .zip(&widths)
            .map(|(c, w)| format!("{c:<w$}"))
            .collect();
        out.push_str(line.join("  ").trim_end());
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_read_singular_plural_short_and_with_a_name() {
        let kind = |s: &str| parse_kind(s).map(|k| (k.what, k.name));
        for (words, what) in [
            (["pods", "pod", "po", "PODS"], What::Pods),
            (["services", "service", "svc", "SVC"], What::Services),
            (
                ["workloads", "workload", "deploy", "deployment"],
                What::Workloads,
            ),
            (["events", "event", "ev", "Events"], What::Events),
        ] {
            for w in words {
                assert_eq!(kind(w), Ok((what, None)), "{w}");
            }
        }
        assert_eq!(
            kind("pod/shop/cart-0"),
            Ok((What::Pods, Some("shop/cart-0".into())))
        );
        assert_eq!(kind("svc/cart"), Ok((What::Services, Some("cart".into()))));
        let err = kind("nodes").unwrap_err();
        assert!(
            err.contains("kinds: pods (pod, po), services (service, svc)"),
            "{err}"
        );
    }

    #[test]
    fn json_keys_follow_the_columns() {
        assert_eq!(camel("ENDPOINTS"), "endpoints");
        assert_eq!(camel("CONTROL PLANE"), "controlPlane");
        let item = Item::of_row(
            &["NAMESPACE", "NAME", "VIP"],
            vec!["shop".into(), "cart".into(), "-".into()],
        );
        assert_eq!(
            item.json,
            serde_json::json!({"namespace": "shop", "name": "cart", "vip": "-"})
        );
    }
}
