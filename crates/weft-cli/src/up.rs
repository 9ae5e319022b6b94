//! `weft up DIR`: a whole mesh on this machine (pods as network namespaces, transparent
//! capture, the control plane and ingress), in the foreground or detached; `weft down`.

use std::io::{BufRead, Seek};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{ExitCode, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use weft_local::plan::{self, Options, Plan, PrometheusPlan};
use weft_local::ports;
use weft_local::rundir::RunDir;
use weft_local::supervise::Report;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Directory of configuration: Mesh, Namespaces, Workloads, Services, routes, policies.
    #[arg(value_name = "DIR")]
    config: PathBuf,
    /// Run in the background; `weft down` stops it.
    #[arg(long, short = 'd')]
    detach: bool,
    #[command(flatten)]
    instance: Instance,
    /// Host port of the ingress gateway's first listener (default: the listener's own port).
    #[arg(long)]
    ingress_port: Option<u16>,
    /// Control-plane admin API (`weft status` reads it).
    #[arg(long, default_value_t = ports::localhost(ports::CONTROL_ADMIN))]
    admin: SocketAddr,
    /// Name of the revision the mesh starts with (its control plane and proxies run this
    /// binary); the `default` tag points at it. Default: the version, as `v0-1-0`.
    #[arg(long, value_name = "NAME")]
    revision: Option<String>,
    /// Also run Prometheus (`/usr/bin/prometheus`, Debian's `prometheus` package) scraping
    /// every proxy of the mesh; its files are in /run/weft/NAME/prometheus/.
    #[arg(long)]
    prometheus: bool,
    /// Where that Prometheus serves its UI and query API, on 127.0.0.1.
    #[arg(long, value_name = "PORT", default_value_t = weft_local::prometheus::DEFAULT_PORT, requires = "prometheus")]
    prometheus_port: u16,
}

/// Which mesh on this machine.
#[derive(Debug, Clone, clap::Args)]
pub struct Instance {
    /// Instance name: lets several meshes run side by side (each needs its own address ranges).
    #[arg(long, default_value = "weft", env = "WEFT_INSTANCE", global = true)]
    pub name: String,
}

#[derive(Debug, clap::Args)]
pub struct DownArgs {
    #[command(flatten)]
    instance: Instance,
}

/// Prints progress with the time since start.
fn reporter() -> Report {
    let start = Instant::now();
    Arc::new(move |line: String| {
        println!("[{:6.2}s] {line}", start.elapsed().as_secs_f64());
    })
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    weft_local::runtime::require_root()?;
    let weft = std::env::current_exe().context("finding the weft executable")?;
    let dir = std::path::absolute(&args.config)
        .with_context(|| format!("reading {}", args.config.display()))?;
    let config = plan::load(&dir)?;
    let opts = Options {
        name: args.instance.name.clone(),
        weft: weft.clone(),
        ingress_port: args.ingress_port,
        admin: args.admin,
    };
    let mut plan = Plan::new(&config, &dir, &opts)?;
    if let Some(r) = &args.revision {
        weft_local::revisions::check_name("revision", r).map_err(anyhow::Error::msg)?;
        plan.revision = r.clone();
    }
    if args.prometheus {
        plan.prometheus = Some(PrometheusPlan {
            binary: weft_local::prometheus::find_binary()?,
            listen: ports::localhost(args.prometheus_port),
        });
    }
    if args.detach {
        return detach(&args, &plan, &weft);
    }
    let report = reporter();
    let name = plan.name.clone();
    report(format!(
        "weft up {:?}: {} pods, {} gateways from {}",
        plan.name,
        plan.pods.len(),
        plan.gateways.len(),
        dir.display()
    ));
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    rt.block_on(async {
        // Signal handlers from the start: a Ctrl-C while pods start stops them cleanly too.
        let stop = shutdown();
        let bound = weft_local::runtime::start(plan, weft, report.clone()).await?;
        report(up_line(&name, &bound));
        bound.wait_shutdown(stop).await;
        anyhow::Ok(())
    })?;
    report("stopped; everything weft up created is removed".into());
    Ok(ExitCode::SUCCESS)
}

/// The line that says the mesh is up (`weft up -d` waits for it), with where to reach it.
fn up_line(name: &str, bound: &weft_local::runtime::Bound) -> String {
    let ingress: Vec<String> = bound
        .addresses
        .ingress()
        .iter()
        .map(|a| format!("http://{a}/"))
        .collect();
    let prometheus = (bound.addresses.prometheus)
        .map(|a| format!("; Prometheus http://{a}/"))
        .unwrap_or_default();
    let mut line = format!(
        "mesh {name:?} is up: {}; ingress {}; admin http://{}/debug/syncz{prometheus}; `weft get pods`, `weft logs POD`, Ctrl-C or `weft down` to stop",
        bound.readiness.summary,
        if ingress.is_empty() {
            "none".to_string()
        } else {
            ingress.join(" ")
        },
        bound.addresses.control.admin
    );
    // What is not ready, one line each (`weft up -d` passes them on and fails).
    for why in &bound.readiness.not_ready {
        line.push('\n');
        line.push_str(NOT_READY);
        line.push_str(why);
    }
    line
}

/// How the up line's continuation lines begin: one per pod (gateway, …) not ready, with why.
const NOT_READY: &str = "    not ready: ";

/// Ctrl-C, SIGTERM (`weft down`) or SIGHUP; the handlers are installed at the call (inside a
/// runtime), not when the result is first awaited.
fn shutdown() -> impl Future<Output = ()> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut int = signal(SignalKind::interrupt()).expect("installing a SIGINT handler");
    let mut term = signal(SignalKind::terminate()).expect("installing a SIGTERM handler");
    let mut hup = signal(SignalKind::hangup()).expect("installing a SIGHUP handler");
    async move {
        tokio::select! {
            _ = int.recv() => {}
            _ = term.recv() => {}
            _ = hup.recv() => {}
        }
    }
}

/// Starts this same command in the background with its output in the runtime directory,
/// shows its progress until the mesh is up, and returns.
fn detach(args: &Args, plan: &Plan, weft: &std::path::Path) -> anyhow::Result<ExitCode> {
    let dir = RunDir::new(&plan.name);
    if let Some(pid) = dir.owner() {
        anyhow::bail!(
            "weft up {:?} is already running (pid {pid}); stop it with `weft down --name {}`",
            plan.name,
            plan.name
        );
    }
    std::fs::create_dir_all(&dir.path)
        .with_context(|| format!("creating {}", dir.path.display()))?;
    let log_path = dir.path.join("up.log");
    let log = std::fs::File::create(&log_path)?;
    let mut cmd = std::process::Command::new(weft);
    cmd.args(foreground_args(args, plan));
    use std::os::unix::process::CommandExt;
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(log.try_clone()?)
        .stderr(log)
        .process_group(0)
        .spawn()
        .context("starting weft up in the background")?;
    let mut reader = std::io::BufReader::new(std::fs::File::open(&log_path)?);
    let deadline = Instant::now() + Duration::from_secs(120);
    let mut line = String::new();
    loop {
        line.clear();
        if reader.read_line(&mut line)? > 0 {
            print!("{line}");
            if line.contains(" is up") {
                let not_ready = match line.contains(" not ready after ") {
                    true => continuation(&mut reader)?,
                    false => vec![],
                };
                let name = &plan.name;
                let pid = child.id();
                if not_ready.is_empty() {
                    println!(
                        "running in the background (pid {pid}); `weft get pods`, `weft logs POD`, `weft down --name {name}` to stop"
                    );
                    return Ok(ExitCode::SUCCESS);
                }
                for l in &not_ready {
                    println!("{l}");
                }
                eprintln!(
                    "weft up -d: {} not ready (above, with why); the mesh keeps running in the \
                     background (pid {pid}) and applies a fixed configuration as it changes; \
                     `weft get pods`, `weft logs POD`, `weft down --name {name}` to stop",
                    not_ready.len()
                );
                return Ok(ExitCode::FAILURE);
            }
            continue;
        }
        if let Some(status) = child.try_wait()? {
            anyhow::bail!("weft up stopped before the mesh was up ({status})");
        }
        if Instant::now() > deadline {
            anyhow::bail!(
                "the mesh is not up after 120s; it keeps trying in the background (pid {}): see {}",
                child.id(),
                log_path.display()
            );
        }
        std::thread::sleep(Duration::from_millis(100));
        let pos = reader.stream_position()?;
        reader.seek(std::io::SeekFrom::Start(pos))?;
    }
}

/// The up line's continuation lines: what is not ready, written with it (a moment is
/// allowed for the rest of the write to land).
fn continuation(reader: &mut std::io::BufReader<std::fs::File>) -> anyhow::Result<Vec<String>> {
    let mut out = Vec::new();
    let mut waited = 0;
    loop {
        let pos = reader.stream_position()?;
        let mut line = String::new();
        let n = reader.read_line(&mut line)?;
        if n > 0 && line.ends_with('\n') && line.starts_with(NOT_READY) {
            out.push(line.trim_end().to_string());
            continue;
        }
        // Another line, or none yet: left for whoever reads the log next.
        reader.seek(std::io::SeekFrom::Start(pos))?;
        if n > 0 && line.ends_with('\n') || waited >= 5 {
            return Ok(out);
        }
        waited += 1;
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// The arguments of the `weft up` that `-d` starts in the background: the same mesh, in the
/// foreground.
fn foreground_args(args: &Args, plan: &Plan) -> Vec<String> {
    let mut argv: Vec<String> = vec!["up".into(), plan.config_dir.display().to_string()];
    let mut flag = |name: &str, value: String| argv.extend([format!("--{name}"), value]);
    flag("name", plan.name.clone());
    flag("admin", args.admin.to_string());
    if let Some(p) = args.ingress_port {
        flag("ingress-port", p.to_string());
    }
    if let Some(r) = &args.revision {
        flag("revision", r.clone());
    }
    if args.prometheus {
        flag("prometheus-port", args.prometheus_port.to_string());
        argv.push("--prometheus".into());
    }
    argv
}

pub fn down(args: DownArgs) -> anyhow::Result<ExitCode> {
    let report = reporter();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let name = &args.instance.name;
    if rt.block_on(weft_local::cleanup::down(name, &report))? {
        println!("weft down: {name:?} stopped and removed");
    } else {
        println!("weft down: no mesh named {name:?} is running; nothing to remove");
    }
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(argv: &[&str]) -> Args {
        use clap::Parser;
        match crate::Cli::try_parse_from(argv) {
            Ok(crate::Cli {
                command: crate::Command::Up(args),
            }) => args,
            other => panic!("{argv:?}: {other:?}"),
        }
    }

    #[test]
    fn the_detached_weft_up_gets_every_flag_but_detach() {
        let args = parse(&[
            "weft",
            "up",
            "examples/shop",
            "-d",
            "--name",
            "m1",
            "--ingress-port",
            "18080",
            "--revision",
            "canary",
            "--prometheus",
            "--prometheus-port",
            "19090",
        ]);
        let plan = Plan {
            name: "m1".into(),
            config_dir: "/cfg/shop".into(),
            ..test_plan()
        };
        let argv = foreground_args(&args, &plan);
        let again = parse(
            &[
                &["weft"][..],
                &argv.iter().map(String::as_str).collect::<Vec<_>>(),
            ]
            .concat(),
        );
        assert!(!again.detach);
        assert_eq!(again.config, PathBuf::from("/cfg/shop"));
        assert_eq!(again.instance.name, "m1");
        assert_eq!(again.ingress_port, Some(18080));
        assert_eq!(again.admin, args.admin);
        assert_eq!(again.revision.as_deref(), Some("canary"));
        assert!(again.prometheus);
        assert_eq!(again.prometheus_port, 19090);

        let plain = foreground_args(&parse(&["weft", "up", "x", "-d"]), &plan);
        assert!(
            !plain.iter().any(|a| a.starts_with("--prometheus")),
            "{plain:?}"
        );
    }

    #[test]
    fn the_prometheus_port_needs_prometheus() {
        use clap::Parser;
        let err = crate::Cli::try_parse_from(["weft", "up", "x", "--prometheus-port", "1"]);
        assert!(err.unwrap_err().to_string().contains("--prometheus"));
        assert_eq!(
            parse(&["weft", "up", "x", "--prometheus"]).prometheus_port,
            9090
        );
    }

    #[test]
    fn the_lines_after_the_up_line_say_what_is_not_ready_and_the_rest_is_left() {
        let path = std::env::temp_dir().join(format!("weft-up-log-{}", std::process::id()));
        let text = format!(
            "[ 30.10s] mesh \"m\" is up: 2 not ready after 30s; ingress none\n\
             {NOT_READY}pod a/web-0: app not listening on :8080; it listens on :9090\n\
             {NOT_READY}gateway a/in: waiting for gateway a/in\n\
             [ 31.00s] pod a/web-0 app: ready (pid 7)\n"
        );
        std::fs::write(&path, text).unwrap();
        let mut reader = std::io::BufReader::new(std::fs::File::open(&path).unwrap());
        let mut first = String::new();
        reader.read_line(&mut first).unwrap();
        let lines = continuation(&mut reader).unwrap();
        assert_eq!(
            lines,
            [
                "    not ready: pod a/web-0: app not listening on :8080; it listens on :9090",
                "    not ready: gateway a/in: waiting for gateway a/in",
            ]
        );
        let mut rest = String::new();
        reader.read_line(&mut rest).unwrap();
        assert_eq!(rest, "[ 31.00s] pod a/web-0 app: ready (pid 7)\n");
        std::fs::remove_file(&path).unwrap();
    }

    fn test_plan() -> Plan {
        let config = weft_core::parse_str("/cfg/mesh.yaml", "").config;
        let opts = Options {
            name: "t".into(),
            weft: "/usr/bin/weft".into(),
            ingress_port: None,
            admin: ports::localhost(ports::CONTROL_ADMIN),
        };
        Plan::new(&config, std::path::Path::new("/cfg"), &opts).expect("an empty plan")
    }
}
