//! `weft waypoint apply|list|status|delete`: waypoints of a `weft up` mesh. `apply` writes a
//! Gateway of class `weft-waypoint` into the mesh's config directory (checked with the rest of
//! the configuration first; the control plane and the runtime pick it up), `delete` removes
//! it, and `list`/`status` show what the control plane knows: instances, the Services that
//! use each waypoint, and the policies attached to it.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, bail};
use weft_core::annotations::{USE_WAYPOINT, WaypointFor};
use weft_core::model::WaypointStatus;

use crate::output::{self, Format};
use crate::up::Instance;

#[derive(Debug, clap::Subcommand)]
enum What {
    /// Create (or change) waypoint NAME in namespace -n.
    Apply {
        name: String,
        #[arg(long, short = 'n', default_value = "default")]
        namespace: String,
        /// The traffic it handles: `service` (to Services that use it), `workload` (to pods by
        /// their address) or `all`.
        #[arg(long = "for", default_value = "service", value_parser = parse_for)]
        handles: WaypointFor,
    },
    /// Every waypoint: instances, the Services that use it, policies attached.
    List {
        #[arg(long, short = 'o', value_enum, default_value_t = Format::Table)]
        output: Format,
    },
    /// One waypoint in detail; fails when it does not exist or has no ready instance.
    Status {
        name: String,
        #[arg(long, short = 'n', default_value = "default")]
        namespace: String,
    },
    /// Remove waypoint NAME written by `weft waypoint apply`.
    Delete {
        name: String,
        #[arg(long, short = 'n', default_value = "default")]
        namespace: String,
    },
}

#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(subcommand)]
    what: What,
    #[command(flatten)]
    instance: Instance,
}

fn parse_for(s: &str) -> Result<WaypointFor, String> {
    WaypointFor::parse(s).ok_or_else(|| format!("{s:?} is not one of service, workload, all"))
}

/// The file `apply` writes a waypoint to, in the mesh's config directory.
fn file(config_dir: &Path, namespace: &str, name: &str) -> PathBuf {
    config_dir.join(format!("waypoint-{namespace}-{name}.yaml"))
}

fn gateway_yaml(namespace: &str, name: &str, handles: WaypointFor) -> String {
    let handles = serde_json::to_value(handles)
        .ok()
        .and_then(|v| v.as_str().map(str::to_string))
        .unwrap_or_else(|| "service".into());
    format!(
        "# Written by `weft waypoint apply`; `weft waypoint delete {name} -n {namespace}` removes it.\n\
apiVersion: gateway.networking.k8s.io/v1\n\
kind: Gateway\n\
metadata:\n  name: {name}\n  namespace: {namespace}\n  labels: {{weft.dev/waypoint-for: {handles}}}\n\
spec:\n  gatewayClassName: weft-waypoint\n  listeners: [{{name: mesh, port: 15008, protocol: HBONE}}]\n"
    )
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let (_, plan) = args.instance.running()?;
    match args.what {
        What::Apply {
            name,
            namespace,
            handles,
        } => {
            weft_core::meta::check_dns_label(&name)
                .map_err(|e| anyhow::anyhow!("waypoint name {name:?}: {e}"))?;
            let path = file(&plan.config_dir, &namespace, &name);
            write_checked(
                &plan.config_dir,
                &path,
                &gateway_yaml(&namespace, &name, handles),
            )?;
            println!("waypoint {namespace}/{name} written to {}", path.display());
            println!(
                "send traffic through it: label a Service, Workload or Namespace {namespace} with {USE_WAYPOINT}: {name}"
            );
            Ok(ExitCode::SUCCESS)
        }
        What::Delete { name, namespace } => {
            let path = file(&plan.config_dir, &namespace, &name);
            if !path.exists() {
                bail!(
                    "{} does not exist: `weft waypoint delete` removes only waypoints written by \
                     `weft waypoint apply`; edit the file that defines {namespace}/{name}",
                    path.display()
                );
            }
            std::fs::remove_file(&path).with_context(|| format!("removing {}", path.display()))?;
            println!("waypoint {namespace}/{name} removed ({})", path.display());
            Ok(ExitCode::SUCCESS)
        }
        What::List { output } => {
            let all = waypoints(plan.admin)?;
            let value = serde_json::to_value(&all)?;
            output::print(output, &value, || crate::get::table(&rows(&all)))?;
            Ok(ExitCode::SUCCESS)
        }
        What::Status { name, namespace } => {
            let key = format!("{namespace}/{name}");
            let all = waypoints(plan.admin)?;
            let Some(w) = all.iter().find(|w| w.name == key) else {
                bail!(
                    "no waypoint {key}: define it with `weft waypoint apply {name} -n {namespace}`"
                );
            };
            print!("{}", describe(w));
            let ok = w.exists && !w.instances.is_empty();
            Ok(if ok {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            })
        }
    }
}

/// Writes `text` to `path` only if the configuration stays valid with it.
fn write_checked(config_dir: &Path, path: &Path, text: &str) -> anyhow::Result<()> {
    let tmp = config_dir.with_extension("waypoint-check");
    let _ = std::fs::remove_dir_all(&tmp);
    copy_dir(config_dir, &tmp)?;
    std::fs::write(tmp.join(path.file_name().unwrap_or_default()), text)?;
    let checked = weft_core::analyze::load_checked(&tmp);
    let _ = std::fs::remove_dir_all(&tmp);
    if let Err(problems) = checked {
        bail!(
            "the waypoint would make the configuration invalid; nothing written:\n{}",
            problems.join("\n")
        );
    }
    // Through a rename: the control plane never reads half a file.
    let part = path.with_extension("yaml.part");
    std::fs::write(&part, text).with_context(|| format!("writing {}", part.display()))?;
    std::fs::rename(&part, path).with_context(|| format!("writing {}", path.display()))
}

fn copy_dir(from: &Path, to: &Path) -> anyhow::Result<()> {
    std::fs::create_dir_all(to)?;
    for e in std::fs::read_dir(from).with_context(|| format!("reading {}", from.display()))? {
        let e = e?;
        let dst = to.join(e.file_name());
        if e.file_type()?.is_dir() {
            copy_dir(&e.path(), &dst)?;
        } else {
            std::fs::copy(e.path(), dst)?;
        }
    }
    Ok(())
}

fn waypoints(admin: std::net::SocketAddr) -> anyhow::Result<Vec<WaypointStatus>> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let (status, body) = rt
        .block_on(weft_local::http::get(
            admin,
            "/debug/waypoints",
            Duration::from_secs(5),
        ))
        .with_context(|| format!("asking the control plane at {admin}"))?;
    if status != 200 {
        bail!("the control plane answered {status}: {}", body.trim());
    }
    serde_json::from_str(&body).context("reading the control plane's waypoints")
}

fn rows(all: &[WaypointStatus]) -> Vec<Vec<String>> {
    let mut rows = vec![crate::get::header(&[
        "NAME",
        "FOR",
        "INSTANCES",
        "SERVICES",
        "POLICIES",
    ])];
    for w in all {
        let instances = match (w.exists, w.instances.len()) {
            (false, _) => "MISSING (traffic fails closed)".to_string(),
            (true, 0) => "0 ready (traffic fails closed)".to_string(),
            (true, n) => format!("{n} ready"),
        };
        rows.push(vec![
            w.name.clone(),
            format!("{:?}", w.handles).to_lowercase(),
            instances,
            or_dash(&w.services),
            or_dash(&w.policies),
        ]);
    }
    rows
}

fn or_dash(list: &[String]) -> String {
    match list.is_empty() {
        true => "-".into(),
        false => list.join(","),
    }
}

fn describe(w: &WaypointStatus) -> String {
    let mut out = format!("waypoint {}\n", w.name);
    if !w.exists {
        out += "  MISSING: labels name it but no Gateway of class weft-waypoint defines it; traffic \
                to the Services below fails closed (weft-error: waypoint-unavailable)\n";
    }
    out += &format!("  for:       {:?}\n", w.handles).to_lowercase();
    out += &format!("  identity:  {}\n", w.identity);
    out += "  instances:\n";
    if w.instances.is_empty() {
        out +=
            "    none ready: traffic through it fails closed (weft-error: waypoint-unavailable)\n";
    }
    for (pod, tunnel) in &w.instances {
        out += &format!("    {pod} {tunnel}\n");
    }
    out += &format!("  services:  {}\n", or_dash(&w.services));
    out += &format!("  policies:  {}\n", or_dash(&w.policies));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn applied_waypoints_are_valid_gateways() {
        let text = gateway_yaml("shop", "wp", WaypointFor::All);
        let out = weft_core::parse_str("/cfg/waypoint.yaml", &text);
        assert!(out.is_ok(), "{:?}", out.errors);
        let snap = weft_core::model::Snapshot::build(&out.config, &[]);
        let w = &snap.waypoints()[0];
        assert_eq!(
            (w.name.as_str(), w.exists, w.handles),
            ("shop/wp", true, WaypointFor::All)
        );
    }

    #[test]
    fn a_missing_waypoint_says_traffic_fails_closed() {
        let w = WaypointStatus {
            name: "shop/nosuch".into(),
            exists: false,
            handles: WaypointFor::Service,
            identity: "spiffe://cluster.local/ns/shop/sa/nosuch".into(),
            instances: vec![],
            services: vec!["shop/typo".into()],
            policies: vec![],
        };
        let table = crate::get::table(&rows(std::slice::from_ref(&w)));
        assert!(table.contains("MISSING (traffic fails closed)"), "{table}");
        assert!(describe(&w).contains("waypoint-unavailable"));
    }
}
