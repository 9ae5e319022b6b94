//! The live half of `weft diagnose`: one real request from the source pod (curl in its network
//! namespace, so it passes its proxy as the app's would), watched at every proxy on the way
//! through their taps, and what each hop did with it.

use std::collections::BTreeSet;
use std::net::IpAddr;
use std::time::Duration;

use weft_proxy::tap::{Filter, Line, Query};

use crate::tap::stream::{self, Event};
use crate::tap::target::{self, Kind, Tapped, Target};

use super::facts::Facts;

/// What the request did: curl's view and each proxy's record of it.
pub struct Outcome {
    /// The status curl saw; 0 when no response came (refused, reset, timed out).
    pub status: u16,
    pub seconds: f64,
    /// curl's own error, when it had one.
    pub error: Option<String>,
    /// Each hop: the proxy (`ns/pod`) and its record.
    pub hops: Vec<(String, Line)>,
}

pub struct Probe<'a> {
    pub facts: &'a Facts,
    pub instance: &'a str,
    pub source: (String, String),
    pub source_ip: IpAddr,
    pub url: String,
    pub method: &'a str,
    pub headers: &'a [(String, String)],
    pub path: String,
    /// The pods whose proxies the request should reach (`ns`, `name`).
    pub through: Vec<(String, String)>,
}

impl Probe<'_> {
    pub async fn run(&self) -> anyhow::Result<Outcome> {
        let proxies = self.taps();
        let query = Query {
            filter: Filter {
                method: Some(self.method.to_string()),
                path: Some(self.path.split('?').next().unwrap_or("/").to_string()),
                ..Filter::default()
            },
            max_rps: 100,
        };
        let mut events = stream::open(proxies, &query);
        // The taps connect before the request leaves.
        tokio::time::sleep(Duration::from_millis(300)).await;
        let started = weft_local::status::now_ms();
        let (status, seconds, error) = self.curl().await?;
        let mut hops: Vec<(String, Line)> = Vec::new();
        // Records are offered when a response ends; give the last hops a moment.
        let deadline = tokio::time::sleep(Duration::from_millis(700));
        tokio::pin!(deadline);
        loop {
            tokio::select! {
                e = events.recv() => match e {
                    Some(Event::Line { proxy, line }) if self.ours(&line, started) => hops.push((proxy, *line)),
                    Some(_) => {}
                    None => break,
                },
                _ = &mut deadline => break,
            }
        }
        hops.sort_by(|a, b| {
            hop_order(&a.1)
                .cmp(&hop_order(&b.1))
                .then(a.1.ts_ms.cmp(&b.1.ts_ms))
        });
        Ok(Outcome {
            status,
            seconds,
            error,
            hops,
        })
    }

    fn taps(&self) -> Vec<Tapped> {
        let mut pods: BTreeSet<(String, String)> = self.through.iter().cloned().collect();
        pods.insert(self.source.clone());
        pods.into_iter()
            .filter_map(|(ns, name)| {
                let t = Target {
                    kind: Kind::Pod,
                    namespace: Some(ns),
                    name,
                };
                target::resolve(&self.facts.dir, &self.facts.plan, &t).ok()
            })
            .flatten()
            .collect()
    }

    /// A record of the probe: the source's outbound request, or an inbound one from the
    /// source's address, after the probe started.
    fn ours(&self, line: &Line, started_ms: u64) -> bool {
        if line.ts_ms + 50 < started_ms {
            return false;
        }
        let from_source = line
            .downstream
            .as_deref()
            .and_then(|d| d.parse::<std::net::SocketAddr>().ok())
            .is_some_and(|a| a.ip() == self.source_ip);
        from_source || line.direction == "outbound"
    }

    /// `weft exec SRC -- curl …`: (status, seconds, curl's error).
    async fn curl(&self) -> anyhow::Result<(u16, f64, Option<String>)> {
        let exe = std::env::current_exe()?;
        let pod = format!("{}/{}", self.source.0, self.source.1);
        let mut cmd = tokio::process::Command::new(exe);
        cmd.args(["exec", "--name", self.instance, &pod, "--"])
            .args(["curl", "-sS", "-o", "/dev/null", "-m", "15"])
            .args(["-w", "%{http_code} %{time_total}", "-X", self.method]);
        for (k, v) in self.headers {
            cmd.args(["-H", &format!("{k}: {v}")]);
        }
        let out = cmd.arg(&self.url).output().await?;
        let stdout = String::from_utf8_lossy(&out.stdout);
        let mut words = stdout.split_whitespace();
        let status = words.next().and_then(|w| w.parse().ok()).unwrap_or(0);
        let seconds = words.next().and_then(|w| w.parse().ok()).unwrap_or(0.0);
        let stderr = String::from_utf8_lossy(&out.stderr).trim().to_string();
        if status == 0 && stderr.contains("weft exec:") {
            anyhow::bail!(
                "could not run curl in {pod}: {stderr} (the probe needs curl on this machine)"
            );
        }
        Ok((status, seconds, (!stderr.is_empty()).then_some(stderr)))
    }
}

/// Client side first, then the server side.
fn hop_order(l: &Line) -> u8 {
    match l.direction.as_str() {
        "outbound" | "gateway" => 0,
        "waypoint" => 1,
        _ => 2,
    }
}

/// The ports anything in the pod's network namespace `netns` listens on (TCP, v4 and v6).
pub fn listening_ports(netns: &str) -> Vec<u16> {
    let mut ports: Vec<u16> = (weft_local::net::listeners(netns).unwrap_or_default().iter())
        .map(std::net::SocketAddr::port)
        .collect();
    ports.sort_unstable();
    ports.dedup();
    ports
}
