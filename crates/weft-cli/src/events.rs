//! `weft events` (also `weft get events`): what happened in a `weft up` mesh, oldest first —
//! crashes with their exit status and last log lines, back-offs, readiness changes, changes
//! of configuration applied or rejected (with the problems), proxies connected, refusing a
//! push or refused, revision moves — as `weft up`'s supervisor and its control planes recorded
//! them ([`weft_core::events`]). `--for` keeps one pod's, `--since` the recent ones, `-f`
//! follows.

use std::io::{Read, Seek, SeekFrom};
use std::process::ExitCode;
use std::time::Duration;

use weft_core::events::{Event, Log, Type};
use weft_local::rundir::RunDir;

use crate::output::{self, Format};
use crate::up::Instance;

#[derive(Debug, clap::Args)]
#[command(
    after_help = "Examples:\n  weft events\n  weft events --for shop/cart-0 --since 10m\n  \
weft events -f -o json\n\n\
TYPE is Normal or Warning. OBJECT names a pod as `weft get pods` does (the gateway, node proxies \
and control planes are pods too), or the configuration (config/DIR)."
)]
pub struct Args {
    #[command(flatten)]
    pub select: Select,
    #[command(flatten)]
    pub instance: Instance,
}

/// Which events, and how to print them (shared with `weft get events`).
#[derive(Debug, Clone, Default, clap::Args)]
pub struct Select {
    /// Only events newer than this (e.g. 30s, 10m, 2h).
    #[arg(long, value_name = "DURATION", value_parser = crate::control::parse_duration)]
    since: Option<Duration>,
    /// Keep printing events as they happen.
    #[arg(long, short = 'f')]
    follow: bool,
    /// Only the events of this pod (`shop/cart-0`, `cart-0`, `shop/gateway-ingress`, `node-1`)
    /// or object (`config/shop`).
    #[arg(long = "for", value_name = "POD")]
    object: Option<String>,
    /// Only Warning events.
    #[arg(long)]
    warnings: bool,
    #[arg(long, short = 'o', value_enum, default_value_t = Format::Table)]
    output: Format,
}

impl Select {
    /// Every event, printed as `output` (`weft get events`).
    pub fn printed(output: Format) -> Select {
        Select {
            output,
            ..Select::default()
        }
    }
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    show(&args.instance, &args.select, &[])
}

/// Prints the events `select` keeps; `names` are names given to `weft get events NAME`.
pub fn show(instance: &Instance, select: &Select, names: &[String]) -> anyhow::Result<ExitCode> {
    let (dir, plan) = instance.running()?;
    let wanted = match (&select.object, names) {
        (Some(o), _) => Some(object(&dir, &plan, o)?),
        (None, [one]) => Some(object(&dir, &plan, one)?),
        (None, []) => None,
        (None, _) => anyhow::bail!("one pod at a time (or --for POD)"),
    };
    let since_ms = select
        .since
        .map(|d| weft_core::events::now_ms().saturating_sub(d.as_millis() as u64));
    let keep = |e: &Event| {
        wanted.as_deref().is_none_or(|o| e.object == o)
            && since_ms.is_none_or(|t| e.time_ms >= t)
            && (!select.warnings || e.kind == Type::Warning)
    };
    let log = Log::new(dir.events());
    let events: Vec<Event> = log.read().into_iter().filter(|e| keep(e)).collect();
    if !select.follow {
        if events.is_empty() && select.output == Format::Table {
            eprintln!("No events{}.", in_words(&wanted, select.since));
            return Ok(ExitCode::SUCCESS);
        }
        let value = serde_json::to_value(&events)?;
        output::print(select.output, &value, || table(&events, true))?;
        return Ok(ExitCode::SUCCESS);
    }
    print_stream(select.output, &events, true)?;
    // Until interrupted: the events the file gains (from its end; after it moved aside, from
    // the start of the new one).
    let mut at = std::fs::metadata(&log.path).map_or(0, |m| m.len());
    loop {
        std::thread::sleep(Duration::from_millis(300));
        let Ok(mut file) = std::fs::File::open(&log.path) else {
            continue;
        };
        let len = file.metadata()?.len();
        if len < at {
            at = 0;
        }
        file.seek(SeekFrom::Start(at))?;
        let mut text = String::new();
        file.read_to_string(&mut text)?;
        // Only whole lines; the rest is read next time.
        let whole = text.rfind('\n').map_or(0, |i| i + 1);
        at += whole as u64;
        let new: Vec<Event> = (weft_core::events::parse(&text[..whole]).into_iter())
            .filter(|e| keep(e))
            .collect();
        print_stream(select.output, &new, false)?;
    }
}

/// `-f`: a table row, a JSON line or a YAML document per event.
fn print_stream(format: Format, events: &[Event], first: bool) -> anyhow::Result<()> {
    let text = match format {
        Format::Table => table(events, first),
        Format::Json => (events.iter())
            .map(|e| serde_json::to_string(e).map(|l| l + "\n"))
            .collect::<Result<String, _>>()?,
        Format::Yaml => (events.iter())
            .map(|e| serde_json::to_value(e).map(|v| crate::yaml_out::to_yaml(&v)))
            .map(|y| y.map(|y| format!("---\n{y}\n")))
            .collect::<Result<String, _>>()?,
    };
    output::write(&text)?;
    Ok(())
}

/// The object `name` stands for: a pod of the mesh, `pod/NS/NAME`; or an object given with its
/// kind (`config/shop`).
fn object(dir: &RunDir, plan: &weft_local::plan::Plan, name: &str) -> anyhow::Result<String> {
    let revisions: Vec<String> = dir
        .status()
        .map(|s| s.revisions.into_iter().map(|r| r.name).collect())
        .unwrap_or_default();
    let all = crate::names::entries(plan, &revisions);
    match crate::names::resolve(&all, name) {
        Ok(e) => Ok(Event::pod(&e.namespace, &e.name)),
        Err(_) if name.starts_with("config/") => Ok(name.to_string()),
        Err(e) => Err(e),
    }
}

fn in_words(object: &Option<String>, since: Option<Duration>) -> String {
    let of = object
        .as_ref()
        .map_or_else(String::new, |o| format!(" for {o}"));
    let since = since.map_or_else(String::new, |d| format!(" in the last {}s", d.as_secs()));
    format!("{of}{since}")
}

/// LAST SEEN, TYPE, REASON, OBJECT, MESSAGE, as `kubectl get events` prints them.
pub fn table(events: &[Event], header: bool) -> String {
    let mut rows = Vec::new();
    if header {
        rows.push(crate::get::header(&[
            "LAST SEEN",
            "TYPE",
            "REASON",
            "OBJECT",
            "MESSAGE",
        ]));
    }
    for e in events {
        rows.push(vec![
            crate::get::age(Some(e.time_ms)),
            kind(e.kind).into(),
            e.reason.clone(),
            e.object.clone(),
            // One row an event, whatever its message holds.
            e.message.replace('\n', " "),
        ]);
    }
    crate::get::table(&rows)
}

fn kind(t: Type) -> &'static str {
    match t {
        Type::Normal => "Normal",
        Type::Warning => "Warning",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_table_reads_like_kubectls() {
        let mut crash = Event::new(
            Type::Warning,
            "Crashed",
            Event::pod("shop", "cart-0"),
            "app exited with status 3 after 0.1s; restarting now".into(),
            "weft up",
        );
        crash.exit_code = Some(3);
        let text = table(&[crash], true);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(
            lines[0],
            "LAST SEEN  TYPE     REASON   OBJECT           MESSAGE"
        );
        assert_eq!(
            lines[1],
            "0s         Warning  Crashed  pod/shop/cart-0  app exited with status 3 after 0.1s; restarting now"
        );
    }
}
