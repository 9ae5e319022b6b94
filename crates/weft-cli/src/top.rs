//! `weft top TARGET`: the busiest (source, destination, method, path) over the last
//! `--window`, from the same taps as `weft tap`; a table redrawn every second, or with
//! `--duration` one table printed at the end (for scripts and tests; `-o json|yaml` prints the
//! rows as data).

use std::collections::{HashMap, VecDeque};
use std::fmt::Write as _;
use std::io::{IsTerminal, Write as _};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use crate::output::{self, Format};
use crate::tap::stream::Event;
use crate::tap::{Select, show, stream};

#[derive(Debug, clap::Args)]
#[command(after_help = "Examples:\n  weft top workload/cart\n  weft top svc/cart --duration 10s")]
pub struct Args {
    #[command(flatten)]
    select: Select,
    /// Requests older than this leave the table.
    #[arg(long, default_value = "30s", value_parser = crate::control::parse_duration)]
    window: Duration,
    /// Print one table after this long and exit (instead of redrawing until Ctrl-C).
    #[arg(long, value_parser = crate::control::parse_duration)]
    duration: Option<Duration>,
    /// Rows shown (the busiest first).
    #[arg(long, default_value_t = 20)]
    rows: usize,
    /// A table, redrawn on a terminal; JSON or YAML rows once, at the end.
    #[arg(long, short = 'o', value_enum, default_value_t = Format::Table)]
    output: Format,
}

/// What requests are grouped by.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
pub struct Key {
    pub source: String,
    pub destination: String,
    pub method: String,
    pub path: String,
}

/// One request seen.
#[derive(Debug, Clone, Copy)]
struct Seen {
    at: Instant,
    latency_ms: f64,
    ok: bool,
}

/// One row of the table.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Row {
    #[serde(flatten)]
    pub key: Key,
    pub count: usize,
    pub best_ms: f64,
    pub worst_ms: f64,
    pub last_ms: f64,
    /// Share of requests without a 5xx (or without an answer), 0..=1.
    pub success: f64,
}

/// Requests by key over a sliding window.
#[derive(Debug)]
pub struct Top {
    window: Duration,
    seen: HashMap<Key, VecDeque<Seen>>,
}

impl Top {
    pub fn new(window: Duration) -> Top {
        Top {
            window,
            seen: HashMap::new(),
        }
    }

    /// Counts a request; `status` None means it got no answer.
    pub fn add(&mut self, at: Instant, key: Key, latency_ms: f64, status: Option<u16>) {
        let ok = status.is_some_and(|s| s < 500);
        (self.seen.entry(key).or_default()).push_back(Seen { at, latency_ms, ok });
    }

    /// The rows at `now`, busiest first (ties by key); forgets what left the window.
    pub fn rows(&mut self, now: Instant) -> Vec<Row> {
        let window = self.window;
        for q in self.seen.values_mut() {
            while q.front().is_some_and(|s| now.duration_since(s.at) > window) {
                q.pop_front();
            }
        }
        self.seen.retain(|_, q| !q.is_empty());
        let mut rows: Vec<Row> = (self.seen.iter())
            .map(|(key, q)| {
                let lat = q.iter().map(|s| s.latency_ms);
                Row {
                    key: key.clone(),
                    count: q.len(),
                    best_ms: lat.clone().fold(f64::INFINITY, f64::min),
                    worst_ms: lat.fold(0.0, f64::max),
                    last_ms: q.back().map_or(0.0, |s| s.latency_ms),
                    success: q.iter().filter(|s| s.ok).count() as f64 / q.len() as f64,
                }
            })
            .collect();
        rows.sort_by(|a, b| b.count.cmp(&a.count).then_with(|| a.key.cmp(&b.key)));
        rows
    }
}

/// The table of `rows`, columns sized to fit.
pub fn table(rows: &[Row]) -> String {
    let head = [
        "SOURCE",
        "DESTINATION",
        "METHOD",
        "PATH",
        "COUNT",
        "BEST",
        "WORST",
        "LAST",
        "SUCCESS",
    ];
    let cells: Vec<[String; 9]> = (rows.iter())
        .map(|r| {
            [
                r.key.source.clone(),
                r.key.destination.clone(),
                r.key.method.clone(),
                r.key.path.clone(),
                r.count.to_string(),
                show::latency(r.best_ms),
                show::latency(r.worst_ms),
                show::latency(r.last_ms),
                format!("{:.2}%", r.success * 100.0),
            ]
        })
        .collect();
    let mut width = head.map(str::len);
    for row in &cells {
        for (w, c) in width.iter_mut().zip(row) {
            *w = (*w).max(c.chars().count());
        }
    }
    let mut out = String::new();
    let mut line = |cols: &[String]| {
        let mut l = String::new();
        for (i, c) in cols.iter().enumerate() {
            let _ = write!(l, "{c:<w$}  ", w = width[i]);
        }
        out.push_str(l.trim_end());
        out.push('\n');
    };
    line(&head.map(str::to_string));
    for row in &cells {
        line(row);
    }
    if rows.is_empty() {
        out.push_str("(no requests yet)\n");
    }
    out
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let (names, proxies) = args.select.proxies()?;
    let query = args.select.query();
    let interactive =
        args.duration.is_none() && args.output == Format::Table && std::io::stdout().is_terminal();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    rt.block_on(async {
        let mut taps = proxies.len();
        let mut events = stream::open(proxies, &query);
        let mut top = Top::new(args.window);
        let deadline = crate::tap::until(args.duration);
        tokio::pin!(deadline);
        let mut every = tokio::time::interval(Duration::from_secs(1));
        loop {
            tokio::select! {
                e = events.recv() => match e {
                    Some(Event::Line { proxy, line }) => {
                        if line.method.is_none() {
                            continue;
                        }
                        let key = Key {
                            source: show::source(&line, &proxy, &names),
                            destination: show::destination(&line, &proxy, &names),
                            method: line.method.clone().unwrap_or_default(),
                            path: line.path.clone().unwrap_or_default(),
                        };
                        top.add(Instant::now(), key, line.latency_ms, line.status);
                    }
                    Some(Event::Dropped { .. }) => {}
                    Some(Event::Failed { proxy, error }) => {
                        eprintln!("weft: tap of {proxy}: {error}");
                        taps -= 1;
                        if taps == 0 {
                            return Ok(ExitCode::from(1));
                        }
                    }
                    None => break,
                },
                _ = every.tick(), if interactive => {
                    let mut rows = top.rows(Instant::now());
                    rows.truncate(args.rows);
                    let mut out = std::io::stdout().lock();
                    write!(out, "\x1b[2J\x1b[H{}", table(&rows))?;
                    out.flush()?;
                }
                _ = &mut deadline => break,
                _ = tokio::signal::ctrl_c() => break,
            }
        }
        let mut rows = top.rows(Instant::now());
        rows.truncate(args.rows);
        let value = serde_json::to_value(&rows)?;
        output::print(args.output, &value, || table(&rows))?;
        anyhow::Ok(ExitCode::SUCCESS)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(path: &str) -> Key {
        Key {
            source: "shop/frontend-0".into(),
            destination: "cart.shop".into(),
            method: "GET".into(),
            path: path.into(),
        }
    }

    #[test]
    fn rows_count_the_window_busiest_first() {
        let t0 = Instant::now();
        let mut top = Top::new(Duration::from_secs(10));
        top.add(t0, key("/old"), 1.0, Some(200));
        let t1 = t0 + Duration::from_secs(5);
        for (lat, status) in [(4.0, Some(200)), (2.0, Some(503)), (9.0, Some(200))] {
            top.add(t1, key("/cart"), lat, status);
        }
        top.add(t1, key("/cart"), 3.0, None);
        top.add(t1, key("/api"), 1.5, Some(200));
        let rows = top.rows(t1);
        assert_eq!(rows.len(), 3);
        let cart = &rows[0];
        assert_eq!(cart.key.path, "/cart");
        assert_eq!(cart.count, 4);
        assert_eq!((cart.best_ms, cart.worst_ms, cart.last_ms), (2.0, 9.0, 3.0));
        assert_eq!(cart.success, 0.5);
        assert_eq!(rows[1].key.path, "/api", "ties go by key");
        // Eleven seconds on, /old has left the window.
        let rows = top.rows(t0 + Duration::from_secs(11));
        let paths: Vec<&str> = rows.iter().map(|r| r.key.path.as_str()).collect();
        assert_eq!(paths, ["/cart", "/api"]);
        assert!(top.rows(t1 + Duration::from_secs(11)).is_empty());
    }

    #[test]
    fn the_table_lines_up() {
        let mut top = Top::new(Duration::from_secs(10));
        let t = Instant::now();
        top.add(t, key("/cart"), 3.2, Some(200));
        let text = table(&top.rows(t));
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(
            lines,
            [
                "SOURCE           DESTINATION  METHOD  PATH   COUNT  BEST   WORST  LAST   SUCCESS",
                "shop/frontend-0  cart.shop    GET     /cart  1      3.2ms  3.2ms  3.2ms  100.00%",
            ]
        );
        assert!(table(&[]).contains("no requests yet"));
    }
}
