//! `weft check`: is this machine ready to run a mesh, and is the running one healthy? One
//! pass/fail line per check with the fix, Linkerd's `check` as the model. Machine checks
//! always run; with a mesh running (`--name`), its control plane, proxies, certificates and
//! pods are checked too. Exits non-zero when a check fails (warnings do not).

use std::path::Path;
use std::process::ExitCode;

use serde::Serialize;
use serde_json::Value;
use weft_local::ports;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Only the machine: skip the running mesh.
    #[arg(long)]
    pre: bool,
    #[arg(long, short = 'o', value_enum, default_value_t = Output::Text)]
    output: Output,
    #[command(flatten)]
    instance: crate::up::Instance,
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
enum Output {
    Text,
    Json,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
enum State {
    Ok,
    Warn,
    Fail,
}

#[derive(Debug, Serialize)]
struct Check {
    group: &'static str,
    name: String,
    state: State,
    #[serde(skip_serializing_if = "String::is_empty")]
    detail: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    fix: String,
}

#[derive(Default)]
struct Checks(Vec<Check>);

impl Checks {
    fn add(
        &mut self,
        group: &'static str,
        name: impl Into<String>,
        state: State,
        detail: impl Into<String>,
        fix: impl Into<String>,
    ) {
        self.0.push(Check {
            group,
            name: name.into(),
            state,
            detail: detail.into(),
            fix: fix.into(),
        });
    }

    fn ok(&mut self, group: &'static str, name: impl Into<String>, detail: impl Into<String>) {
        self.add(group, name, State::Ok, detail, "");
    }
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let mut c = Checks::default();
    machine(&mut c);
    if !args.pre {
        mesh(&args.instance.name, &mut c);
    }
    match args.output {
        Output::Json => println!("{}", serde_json::to_string_pretty(&c.0)?),
        Output::Text => print!("{}", render(&c.0)),
    }
    let failed = c.0.iter().any(|k| k.state == State::Fail);
    Ok(if failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}

fn render(checks: &[Check]) -> String {
    let mut out = String::new();
    let mut group = "";
    for k in checks {
        if k.group != group {
            group = k.group;
            out += &format!(
                "{}{group}\n{}\n",
                if out.is_empty() { "" } else { "\n" },
                "-".repeat(group.len())
            );
        }
        let mark = match k.state {
            State::Ok => "ok  ",
            State::Warn => "WARN",
            State::Fail => "FAIL",
        };
        let detail = if k.detail.is_empty() {
            String::new()
        } else {
            format!(": {}", k.detail)
        };
        out += &format!("{mark} {}{detail}\n", k.name);
        if !k.fix.is_empty() {
            out += &format!("     fix: {}\n", k.fix);
        }
    }
    let failed = checks.iter().filter(|k| k.state == State::Fail).count();
    let warned = checks.iter().filter(|k| k.state == State::Warn).count();
    out += &match failed {
        0 => format!("\nStatus check results are ok ({warned} warnings)\n"),
        n => format!("\n{n} checks failed ({warned} warnings)\n"),
    };
    out
}

const MACHINE: &str = "machine";

fn machine(c: &mut Checks) {
    let root = std::os::unix::fs::MetadataExt::uid(
        &std::fs::metadata("/proc/self")
            .map_err(drop)
            .unwrap_or_else(|()| std::fs::metadata("/").expect("/ exists")),
    ) == 0;
    match root {
        true => c.ok(MACHINE, "running as root", ""),
        false => c.add(
            MACHINE,
            "running as root",
            State::Fail,
            "weft up creates network namespaces, links and capture rules",
            "run it as root (sudo weft up ...)",
        ),
    }
    match Path::new("/proc/self/ns/net").exists() {
        true => c.ok(MACHINE, "network namespaces", ""),
        false => c.add(
            MACHINE,
            "network namespaces",
            State::Fail,
            "the kernel has no network namespaces",
            "use a kernel built with CONFIG_NET_NS",
        ),
    }
    for (module, what) in [
        ("veth", "veth pairs (pod links)"),
        ("bridge", "the mesh's bridge"),
        ("nf_tables", "nftables (traffic capture)"),
    ] {
        let state = kernel_module(module);
        match state {
            Some(true) => c.ok(MACHINE, what, format!("{module} in the kernel")),
            Some(false) => c.add(
                MACHINE,
                what,
                State::Warn,
                format!("{module} is not loaded, but can be (weft up loads it on first use)"),
                format!("modprobe {module}"),
            ),
            None => c.add(
                MACHINE,
                what,
                State::Fail,
                format!("no {module} module in this kernel"),
                format!(
                    "install a kernel with {module} (CONFIG_{}), e.g. linux-image-amd64",
                    module.to_uppercase()
                ),
            ),
        }
    }
    cgroups(c);
    let run = weft_local::rundir::root();
    match writable(&run) {
        Ok(()) => c.ok(MACHINE, format!("state directory {}", run.display()), ""),
        Err(e) => c.add(
            MACHINE,
            format!("state directory {}", run.display()),
            State::Fail,
            e,
            "run as root, or point WEFT_RUN_DIR at a writable directory",
        ),
    }
    for (port, what) in [
        (ports::CONTROL_ADMIN, "control plane admin"),
        (8080, "ingress (weft up --ingress-port)"),
    ] {
        let name = format!("port 127.0.0.1:{port} free ({what})");
        match std::net::TcpListener::bind(("127.0.0.1", port)) {
            Ok(_) => c.ok(MACHINE, name, ""),
            Err(e) => c.add(MACHINE, name, State::Warn, e.to_string(), "a mesh may already run here (`weft get pods`), or pick other ports: weft up --admin 127.0.0.1:PORT --ingress-port PORT"),
        }
    }
    for (tool, why, fix) in [
        (
            "curl",
            "weft diagnose sends its probe with it",
            "apt-get install curl",
        ),
        (
            "prometheus",
            "weft up --prometheus runs it",
            "apt-get install prometheus (only for --prometheus)",
        ),
    ] {
        match which(tool) {
            true => c.ok(MACHINE, format!("{tool} on PATH"), ""),
            false => c.add(MACHINE, format!("{tool} on PATH"), State::Warn, why, fix),
        }
    }
}

/// Whether the kernel has a feature: built in or loaded (`Some(true)`), available as a module
/// to load (`Some(false)`), absent (`None`). Read from `/proc/config.gz`, `/sys/module` and the
/// module lists; when none of them can tell, it is taken as present (weft up says otherwise).
fn kernel_module(name: &str) -> Option<bool> {
    if Path::new("/sys/module").join(name).exists() {
        return Some(true);
    }
    let option = format!("CONFIG_{}", name.to_uppercase());
    if let Some(config) = kernel_config() {
        return match config
            .lines()
            .find_map(|l| l.strip_prefix(&format!("{option}=")))
        {
            Some("y") => Some(true),
            Some("m") => Some(false),
            _ => None,
        };
    }
    let release = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
    let dir = Path::new("/lib/modules").join(release.trim());
    let list = |file: &str| std::fs::read_to_string(dir.join(file)).ok();
    let has = |text: &str| {
        text.lines().any(|l| {
            l.split(':').next().is_some_and(|m| {
                m.rsplit('/')
                    .next()
                    .is_some_and(|f| f.starts_with(&format!("{name}.ko")))
            })
        })
    };
    match (list("modules.builtin"), list("modules.dep")) {
        (Some(b), _) if has(&b) => Some(true),
        (_, Some(d)) if has(&d) => Some(false),
        (None, None) => Some(true),
        _ => None,
    }
}

/// The running kernel's build options, from `/proc/config.gz` (gzip) when the kernel has it.
fn kernel_config() -> Option<String> {
    let out = std::process::Command::new("zcat")
        .arg("/proc/config.gz")
        .output()
        .ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).into_owned())
}

fn cgroups(c: &mut Checks) {
    let v2 = Path::new("/sys/fs/cgroup/cgroup.controllers").exists();
    let v1_cpu = Path::new("/sys/fs/cgroup/cpu").exists()
        || Path::new("/sys/fs/cgroup/cpu,cpuacct").exists();
    let v1_memory = Path::new("/sys/fs/cgroup/memory").exists();
    match (v2, v1_cpu && v1_memory) {
        (true, _) => c.ok(MACHINE, "cgroups (proxy CPU and memory limits)", "v2"),
        (false, true) => c.ok(MACHINE, "cgroups (proxy CPU and memory limits)", "v1 (cpu, memory)"),
        _ => c.add(MACHINE, "cgroups (proxy CPU and memory limits)", State::Warn, "neither cgroup v2 nor the v1 cpu and memory controllers are mounted: limits cannot be enforced", "mount cgroup2 on /sys/fs/cgroup"),
    }
}

fn writable(dir: &Path) -> Result<(), String> {
    std::fs::create_dir_all(dir).map_err(|e| format!("cannot create it: {e}"))?;
    let probe = dir.join(format!(".check-{}", std::process::id()));
    std::fs::write(&probe, b"").map_err(|e| format!("cannot write in it: {e}"))?;
    let _ = std::fs::remove_file(probe);
    Ok(())
}

fn which(tool: &str) -> bool {
    std::env::var_os("PATH")
        .is_some_and(|paths| std::env::split_paths(&paths).any(|p| p.join(tool).is_file()))
}

fn mesh(name: &str, c: &mut Checks) {
    let group = "mesh";
    let dir = weft_local::rundir::RunDir::new(name);
    let Some(plan) = dir.plan() else {
        c.add(
            group,
            format!("mesh {name:?} running"),
            State::Warn,
            "no mesh by that name runs",
            "start one with `weft up DIR` (or name it with --name)",
        );
        return;
    };
    c.ok(
        group,
        format!("mesh {name:?} running"),
        plan.config_dir.display().to_string(),
    );
    let admin = plan.admin.to_string();
    let rt = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => return c.add(group, "control plane", State::Fail, e.to_string(), ""),
    };
    let fetch = |path: &str| rt.block_on(crate::status::fetch(&admin, path));
    match fetch("/debug/config") {
        Ok(config) => {
            c.ok(
                group,
                "control plane answers",
                format!("{admin}, config generation {}", config["generation"]),
            );
            match config["rejected"]["problems"].as_array() {
                Some(p) => c.add(
                    group,
                    "config accepted",
                    State::Fail,
                    format!("the last change was rejected ({} problems)", p.len()),
                    "`weft analyze --live` lists them; the last good config stays in force",
                ),
                None => c.ok(group, "config accepted", ""),
            }
        }
        Err(e) => {
            c.add(
                group,
                "control plane answers",
                State::Fail,
                format!("{e:#}"),
                format!("`weft logs control --name {name}` shows why"),
            );
            return;
        }
    }
    proxies(fetch("/debug/syncz").ok(), c);
    let overdue = fetch("/debug/ca")
        .ok()
        .and_then(|ca| ca["renewalOverdue"].as_array().map(Vec::len))
        .unwrap_or(0);
    match overdue {
        0 => c.ok(group, "workload certificates renewed in time", ""),
        n => c.add(
            group,
            "workload certificates renewed in time",
            State::Fail,
            format!("{n} overdue"),
            "`weft status` names them; their proxies cannot reach the CA",
        ),
    }
    let Some(status) = dir.status() else { return };
    let unready: Vec<String> = status
        .pods
        .iter()
        .filter(|p| !p.ready() && !p.terminating)
        .map(|p| format!("{}/{}", p.namespace, p.name))
        .collect();
    match unready.is_empty() {
        true => c.ok(
            group,
            "every pod ready",
            format!("{} pods", status.pods.len()),
        ),
        false => c.add(
            group,
            "every pod ready",
            State::Fail,
            format!("not ready: {}", unready.join(", ")),
            "`weft analyze --live` says why each is not",
        ),
    }
}

fn proxies(list: Option<Value>, c: &mut Checks) {
    let group = "mesh";
    let Some(list) = list.as_ref().and_then(Value::as_array).cloned() else {
        return c.add(
            group,
            "proxies connected",
            State::Fail,
            "the control plane did not list its proxies",
            "",
        );
    };
    let mut bad = Vec::new();
    for p in &list {
        for (ty, t) in p["types"].as_object().into_iter().flatten() {
            if t["state"] != "SYNCED" {
                bad.push(format!(
                    "{} {} {}",
                    p["node"]["id"].as_str().unwrap_or("?"),
                    ty.trim_start_matches("weft.dev/"),
                    t["state"].as_str().unwrap_or("?")
                ));
            }
        }
    }
    c.ok(group, "proxies connected", format!("{}", list.len()));
    match bad.is_empty() {
        true => c.ok(group, "every proxy SYNCED", ""),
        false => c.add(
            group,
            "every proxy SYNCED",
            State::Fail,
            bad.join("; "),
            "`weft status` shows each with its message",
        ),
    }
}
