//! `weft`: one binary for the whole mesh. Each verb lives in its own module.

mod analyze;
mod ask;
mod check;
mod control;
mod demo;
mod diagnose;
mod events;
mod exec;
mod get;
mod import;
mod logging;
mod logs;
mod names;
mod output;
mod pod_exec;
mod precheck;
mod proxy;
mod proxy_config;
mod restart;
mod revision;
mod right_size;
mod rollout;
mod running;
mod stat;
mod status;
mod tap;
mod top;
mod up;
mod upgrade;
mod waypoint;
mod yaml_out;

use std::process::ExitCode;

use clap::{CommandFactory, Parser, Subcommand};

/// weft — a light service mesh: control plane, proxies and tools in one binary.
#[derive(Debug, Parser)]
#[command(
    name = "weft",
    version = version(),
    about,
    long_about = "weft — a light service mesh: control plane, proxies and tools in one binary.\n\n\
Best practices are defaults: mTLS STRICT, the app waits for its proxy, proxies drain on \
shutdown, metrics and JSON access logs are on.",
    after_help = "Start with `weft analyze examples/shop` to check a configuration, `weft up examples/shop` to run it.\n\
Something wrong in a running mesh? `weft analyze --live` lists every fault with its fix; \
`weft diagnose POD SERVICE[:PORT][/PATH]` explains one request end to end; `weft check` checks the machine and the mesh.\n\
Docs: docs/config.md (every kind and field), docs/diagnose.md, docs/right-size.md, `weft analyze --explain CODE`."
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

// Parsed once per process: the size of the largest variant costs nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Subcommand)]
enum Command {
    /// Check configuration files for errors and risky settings, with a fix for each finding.
    Analyze(analyze::Args),
    /// Convert another mesh's configuration into weft's: `weft import istio PATH...`.
    Import(import::Args),
    /// Run the control plane: watch a config directory, serve proxies, expose the debug API.
    Control(control::Args),
    /// Run one service of the demo shop (frontend, catalog, cart, pricing).
    Demo(demo::Args),
    /// Run a proxy: a sidecar that captures, routes and balances a workload's traffic, or with
    /// --gateway an ingress gateway.
    Proxy(Box<proxy::Args>),
    /// Show a proxy's full configuration: `weft proxy-config POD
    /// listeners|routes|clusters|endpoints|secrets|all` (what the control plane intends, with the
    /// proxy's live state), or what it holds (`secret`, `config`, `services`, `workloads NODE`).
    ProxyConfig(proxy_config::Args),
    /// Show every connected proxy and whether it runs the current config (SYNCED, STALE, NACKED).
    Status(status::Args),
    /// Explain one request from a pod to a Service end to end: name, route, endpoints,
    /// identities, policy, then a real request watched at every proxy; one verdict and the fix.
    Diagnose(diagnose::Args),
    /// Check this machine (root, kernel features, cgroups, state directory, free ports, tools)
    /// and the running mesh (control plane, config, proxies, certificates, pods): one line per
    /// check, with the fix.
    Check(check::Args),
    /// Watch live requests through the proxies of a pod, workload, Service or gateway of a
    /// `weft up` mesh, one line each (`-o json` for JSON lines), with filters.
    Tap(tap::Args),
    /// The busiest paths to and from a pod, workload or Service, live: count, latency and
    /// success rate per (source, destination, method, path).
    Top(top::Args),
    /// Per workload, Service or pod: meshed pods, success rate, requests a second, latency
    /// percentiles and open connections, from two scrapes of every proxy (no Prometheus).
    Stat(stat::Args),
    /// Recommend proxy CPU and memory requests and limits per workload from what its proxies
    /// were measured using, with the reasoning and the saving; --apply writes them.
    RightSize(right_size::Args),
    /// Run a whole mesh on this machine: pods as network namespaces, sidecars, ingress.
    Up(up::Args),
    /// Stop a mesh started by `weft up` and remove everything it created.
    Down(up::DownArgs),
    /// Restart (or with --binary upgrade) a node proxy of `weft up` without resetting a
    /// connection: the new process takes the old one's listeners, the old one drains.
    Restart(restart::Args),
    /// List what `weft up` runs: pods (the gateway, node proxies and control planes too),
    /// services, workloads, or events.
    Get(get::Args),
    /// Show a pod's app log, or its proxy's with --proxy; --tail N, -f to follow.
    Logs(logs::Args),
    /// What happened in a `weft up` mesh: crashes (exit status, last log lines), back-offs,
    /// readiness, configuration applied or rejected, proxies connected or refusing a push,
    /// revision moves.
    Events(events::Args),
    /// Run a command inside a pod of a `weft up` mesh (its traffic goes through the sidecar).
    Exec(exec::Args),
    /// Start a program inside a pod (used by `weft up`).
    #[command(hide = true)]
    PodExec(pod_exec::Args),
    /// Waypoints of a `weft up` mesh (ambient L7): apply, list, status, delete.
    Waypoint(waypoint::Args),
    /// Install a revision beside the others: a control plane with its own binary and mesh
    /// settings; no pod moves until restarted or upgraded onto it.
    Install(revision::InstallArgs),
    /// Remove a revision's control plane and state (refused while a tag or proxy uses it).
    Uninstall(revision::UninstallArgs),
    /// Tags: mutable pointers to revisions (set, list, remove).
    Tag(revision::TagArgs),
    /// Revisions of a `weft up` mesh (list).
    Revision(revision::RevisionArgs),
    /// Restart pods one at a time onto the revision they ask for, with no failed request.
    Rollout(rollout::Args),
    /// Before an install, upgrade or uninstall: what would move, and what stands in the way
    /// (missing revisions, pinned workloads, version skew), each with its fix.
    Precheck(precheck::Args),
    /// Move the pods that follow a tag to a revision in steps, watching errors and latency
    /// against the old revision; roll back by itself on a breach.
    Upgrade(upgrade::Args),
    /// Print this binary's version and the discovery protocol it speaks:
    /// `weft VERSION (discovery protocol N)`, as `--version` does.
    Version,
    /// Print a shell completion script (bash, zsh, fish, elvish, powershell).
    Completions {
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
}

/// What `weft --version` and `weft version` print after `weft `: the build, then the discovery
/// protocol it speaks, so a tool can tell which control plane a proxy binary works with (one
/// serves its own protocol and the one before).
fn version() -> &'static str {
    static VERSION: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
        format!(
            "{} (discovery protocol {})",
            weft_proto::WEFT_VERSION,
            weft_proto::PROTOCOL_VERSION
        )
    });
    &VERSION
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    // The verbs a person pipes into `head`: a closed stdout ends them quietly. The roles that
    // run for long (control plane, proxies, `weft up`) keep reporting what fails.
    if !matches!(
        cli.command,
        Command::Control(_)
            | Command::Proxy(_)
            | Command::Up(_)
            | Command::Demo(_)
            | Command::PodExec(_)
    ) {
        output::quiet_on_closed_pipe();
    }
    let result = match cli.command {
        Command::Analyze(args) => analyze::run(args),
        Command::Import(args) => import::run(args),
        Command::Control(args) => control::run(args),
        Command::Proxy(args) => proxy::run(*args),
        Command::Demo(args) => demo::run(args),
        Command::Status(args) => status::run(args),
        Command::ProxyConfig(args) => proxy_config::run(args),
        Command::Tap(args) => tap::run(args),
        Command::Diagnose(args) => diagnose::run(args),
        Command::Check(args) => check::run(args),
        Command::Top(args) => top::run(args),
        Command::Stat(args) => stat::run(args),
        Command::RightSize(args) => right_size::run(args),
        Command::Up(args) => up::run(args),
        Command::Down(args) => up::down(args),
        Command::Restart(args) => restart::run(args),
        Command::Get(args) => get::run(args),
        Command::Logs(args) => logs::run(args),
        Command::Events(args) => events::run(args),
        Command::Exec(args) => exec::run(args),
        Command::PodExec(args) => pod_exec::run(args),
        Command::Waypoint(args) => waypoint::run(args),
        Command::Install(args) => revision::install(args),
        Command::Uninstall(args) => revision::uninstall(args),
        Command::Tag(args) => revision::tag(args),
        Command::Revision(args) => revision::revision(args),
        Command::Rollout(args) => rollout::run(args),
        Command::Upgrade(args) => upgrade::run(args),
        Command::Precheck(args) => precheck::run(args),
        Command::Version => {
            println!("weft {}", version());
            Ok(ExitCode::SUCCESS)
        }
        Command::Completions { shell } => {
            clap_complete::generate(shell, &mut Cli::command(), "weft", &mut std::io::stdout());
            Ok(ExitCode::SUCCESS)
        }
    };
    match result {
        Ok(code) => code,
        // A closed pipe (`weft analyze ... | head`) is the reader's choice, not a failure.
        Err(e) if output::is_closed_pipe(&e) => ExitCode::SUCCESS,
        Err(e) => {
            logging::fatal(&e);
            ExitCode::from(2)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cli_definition_is_consistent() {
        Cli::command().debug_assert();
    }

    /// `weft --version`: the name, the build, then the protocol, for tools to read.
    #[test]
    fn version_names_the_build_and_the_discovery_protocol() {
        let line = Cli::command().render_version();
        let words: Vec<&str> = line.split_whitespace().collect();
        assert_eq!(words[..2], ["weft", env!("CARGO_PKG_VERSION")]);
        assert_eq!(
            line.trim_end(),
            format!(
                "weft {} (discovery protocol {})",
                env!("CARGO_PKG_VERSION"),
                weft_proto::PROTOCOL_VERSION
            )
        );
    }
}
