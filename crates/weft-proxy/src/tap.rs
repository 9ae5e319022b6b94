//! Live records for operators (`GET /tap` on the admin port, `weft tap`): every finished
//! request and connection is offered to a [`Hub`] by the access log ([`crate::access_log`]),
//! and each tap streams those that pass its [`Filter`] as JSON [`Line`]s, at most
//! [`Query::max_rps`] a second ([`RateCap`]); what the cap or a slow reader drops is counted
//! in a `{"dropped": N}` line every second it happened and once more at the end.
//!
//! Nobody tapping costs one atomic load per record ([`Hub::publish`]): nothing is cloned or
//! sent. A tap ends when its client disconnects (its task sees the body dropped), which gives
//! its place back.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, StreamBody};
use serde::{Deserialize, Serialize};
use tokio::sync::{broadcast, mpsc};
use tokio_stream::StreamExt as _;

use crate::record::Record;

/// Records waiting for the slowest tap before it starts losing them.
const BACKLOG: usize = 1024;
/// Lines per second a tap sends unless it asks otherwise.
pub const DEFAULT_MAX_RPS: u32 = 100;
/// The most a tap may ask for.
pub const MAX_MAX_RPS: u32 = 10_000;

/// Where finished records go for the taps of one proxy.
#[derive(Debug)]
pub struct Hub {
    tx: broadcast::Sender<Arc<Record>>,
    taps: AtomicUsize,
}

impl Default for Hub {
    fn default() -> Self {
        Hub {
            tx: broadcast::channel(BACKLOG).0,
            taps: AtomicUsize::new(0),
        }
    }
}

/// A place on the hub; gives it back when dropped.
#[derive(Debug)]
pub struct Subscription {
    hub: Arc<Hub>,
    pub rx: broadcast::Receiver<Arc<Record>>,
}

impl Drop for Subscription {
    fn drop(&mut self) {
        self.hub.taps.fetch_sub(1, Ordering::Relaxed);
    }
}

impl Hub {
    /// Offers `r` to the taps: one atomic load when there are none.
    pub fn publish(&self, r: &Record) {
        if self.taps.load(Ordering::Relaxed) == 0 {
            return;
        }
        let _ = self.tx.send(Arc::new(r.clone()));
    }

    /// How many taps are open.
    pub fn taps(&self) -> usize {
        self.taps.load(Ordering::Relaxed)
    }

    pub fn subscribe(self: &Arc<Self>) -> Subscription {
        self.taps.fetch_add(1, Ordering::Relaxed);
        Subscription {
            hub: self.clone(),
            rx: self.tx.subscribe(),
        }
    }
}

/// Which records a tap wants (every field optional, all must hold).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Filter {
    /// HTTP method, any case.
    pub method: Option<String>,
    /// Path prefix.
    pub path: Option<String>,
    /// Status: exact (`503`) or a class (`5xx`).
    pub status: Option<Status>,
    /// Destination Service: `ns/name` or `name`.
    pub to: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    Exact(u16),
    /// The first digit: `5` for `5xx`.
    Class(u16),
}

impl std::str::FromStr for Status {
    type Err = String;
    fn from_str(s: &str) -> Result<Status, String> {
        let bad = || format!("status {s:?}: use a code (503) or a class (5xx)");
        let lower = s.to_ascii_lowercase();
        if let Some(d) = lower.strip_suffix("xx") {
            return match d.as_bytes() {
                [c @ b'1'..=b'5'] => Ok(Status::Class(u16::from(c - b'0'))),
                _ => Err(bad()),
            };
        }
        match s.parse::<u16>() {
            Ok(c @ 100..=599) => Ok(Status::Exact(c)),
            _ => Err(bad()),
        }
    }
}

impl Filter {
    pub fn matches(&self, r: &Record) -> bool {
        if let Some(m) = &self.method
            && !r
                .method
                .as_deref()
                .is_some_and(|x| x.eq_ignore_ascii_case(m))
        {
            return false;
        }
        if let Some(p) = &self.path
            && !r.path.as_deref().is_some_and(|x| x.starts_with(p.as_str()))
        {
            return false;
        }
        if let Some(s) = self.status {
            let Some(code) = r.status else { return false };
            let ok = match s {
                Status::Exact(c) => code == c,
                Status::Class(d) => code / 100 == d,
            };
            if !ok {
                return false;
            }
        }
        if let Some(to) = &self.to
            && !to_matches(to, r)
        {
            return false;
        }
        true
    }
}

/// Whether `to` (`ns/name` or `name`) names the record's Service, or (a record without one:
/// inbound) the host its client asked for (`cart`, `cart:8080`, `cart.shop.svc.cluster.local`).
fn to_matches(to: &str, r: &Record) -> bool {
    let (want_ns, want) = match to.split_once('/') {
        Some((ns, name)) => (Some(ns), name),
        None => (None, to),
    };
    if let Some(svc) = r.service.as_deref() {
        let (ns, name) = svc.split_once('/').unwrap_or(("", svc));
        return name == want && want_ns.is_none_or(|w| w == ns);
    }
    let Some(authority) = r.authority.as_deref() else {
        return false;
    };
    let host = authority.rsplit_once(':').map_or(authority, |(h, _)| h);
    let mut labels = host.split('.');
    labels.next() == Some(want) && want_ns.is_none_or(|w| labels.next().is_none_or(|ns| ns == w))
}

/// What `GET /tap?…` asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Query {
    pub filter: Filter,
    pub max_rps: u32,
}

impl Query {
    /// The query string of `/tap` (`method=&path=&status=&to=&max_rps=`), percent-decoded;
    /// an unknown key or a bad value is an error saying which.
    pub fn parse(query: &str) -> Result<Query, String> {
        let mut q = Query {
            filter: Filter::default(),
            max_rps: DEFAULT_MAX_RPS,
        };
        for pair in query.split('&').filter(|p| !p.is_empty()) {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            let v = decode(v);
            let set = |v: String| (!v.is_empty()).then_some(v);
            match k {
                "method" => q.filter.method = set(v),
                "path" => q.filter.path = set(v),
                "to" => q.filter.to = set(v),
                "status" if v.is_empty() => {}
                "status" => q.filter.status = Some(v.parse()?),
                "max_rps" => {
                    q.max_rps = match v.parse::<u32>() {
                        Ok(n @ 1..=MAX_MAX_RPS) => n,
                        _ => {
                            return Err(format!("max_rps {v:?}: a number from 1 to {MAX_MAX_RPS}"));
                        }
                    }
                }
                _ => {
                    return Err(format!(
                        "unknown parameter {k:?}; /tap takes method, path, status, to, max_rps"
                    ));
                }
            }
        }
        Ok(q)
    }

    /// The query string for these filters (what [`Query::parse`] reads back).
    pub fn encode(&self) -> String {
        let f = &self.filter;
        let status = f.status.map(|s| match s {
            Status::Exact(c) => c.to_string(),
            Status::Class(d) => format!("{d}xx"),
        });
        let mut out = vec![format!("max_rps={}", self.max_rps)];
        for (k, v) in [
            ("method", f.method.clone()),
            ("path", f.path.clone()),
            ("status", status),
            ("to", f.to.clone()),
        ] {
            if let Some(v) = v {
                out.push(format!("{k}={}", encode(&v)));
            }
        }
        out.join("&")
    }
}

fn encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' | b'/' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

fn decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let hex = |c: u8| (c as char).to_digit(16);
        match b[i] {
            b'%' if i + 2 < b.len() => match (hex(b[i + 1]), hex(b[i + 2])) {
                (Some(h), Some(l)) => {
                    out.push((h * 16 + l) as u8);
                    i += 3;
                    continue;
                }
                _ => out.push(b'%'),
            },
            b'+' => out.push(b' '),
            c => out.push(c),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// At most `max` lines in each second; counts the rest.
#[derive(Debug)]
pub struct RateCap {
    max: u32,
    window: Option<tokio::time::Instant>,
    sent: u32,
    pub dropped: u64,
}

impl RateCap {
    pub fn new(max: u32) -> RateCap {
        RateCap {
            max,
            window: None,
            sent: 0,
            dropped: 0,
        }
    }

    /// Whether a line may go out at `now`; if not, it is counted as dropped.
    pub fn admit(&mut self, now: tokio::time::Instant) -> bool {
        let fresh = self
            .window
            .is_none_or(|w| now.duration_since(w) >= Duration::from_secs(1));
        if fresh {
            self.window = Some(now);
            self.sent = 0;
        }
        if self.sent < self.max {
            self.sent += 1;
            true
        } else {
            self.dropped += 1;
            false
        }
    }
}

/// One tapped request or connection, as `/tap` streams it.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Line {
    /// Unix milliseconds when the request started.
    pub ts_ms: u64,
    /// `outbound`, `inbound` or `gateway`.
    pub direction: String,
    /// `HTTP/1.1`, `HTTP/2.0`, `TCP`.
    pub protocol: String,
    /// Who sent it: the peer's identity inbound, else the downstream address.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
    /// The downstream address.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub downstream: Option<String>,
    pub destination: Destination,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub method: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub authority: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<u16>,
    pub latency_ms: f64,
    /// The stage that failed, if any (`weft-error`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub route: Option<String>,
    /// The AuthorizationPolicy that denied it, or that allowed it when one had to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub policy: Option<String>,
    /// The peer's SPIFFE ID (the client's inbound, the server's outbound).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub peer_identity: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Destination {
    /// The Service (`ns/name`) when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service: Option<String>,
    /// The address it was sent to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub upstream: Option<String>,
}

impl From<&Record> for Line {
    fn from(r: &Record) -> Line {
        let source = match r.direction {
            "inbound" => r.peer_identity.clone().or_else(|| r.downstream.clone()),
            _ => r.downstream.clone(),
        };
        Line {
            ts_ms: r.ts_ms,
            direction: r.direction.to_string(),
            protocol: r.protocol.clone(),
            source,
            downstream: r.downstream.clone(),
            destination: Destination {
                service: r.service.clone(),
                upstream: r.upstream.clone(),
            },
            method: r.method.clone(),
            authority: r.authority.clone(),
            path: r.path.clone(),
            status: r.status,
            latency_ms: r.duration_ms,
            error: r.error.map(str::to_string),
            route: r.route.clone(),
            policy: r.policy.clone(),
            peer_identity: r.peer_identity.clone(),
        }
    }
}

fn json_line(v: &impl Serialize) -> Bytes {
    let mut out = serde_json::to_vec(v).unwrap_or_default();
    out.push(b'\n');
    Bytes::from(out)
}

fn dropped_line(n: u64) -> Bytes {
    json_line(&serde_json::json!({ "dropped": n }))
}

/// The streamed body of one tap: a task reads the hub and ends when the body is dropped.
pub fn stream(hub: &Arc<Hub>, q: Query) -> crate::body::Body {
    let (tx, rx) = mpsc::channel::<Bytes>(64);
    let mut sub = hub.subscribe();
    tokio::spawn(async move {
        let mut cap = RateCap::new(q.max_rps);
        let mut reported = 0;
        let mut every = tokio::time::interval(Duration::from_secs(1));
        every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            let line = tokio::select! {
                _ = tx.closed() => break,
                _ = every.tick() => {
                    if cap.dropped == reported {
                        continue;
                    }
                    reported = cap.dropped;
                    dropped_line(cap.dropped)
                }
                r = sub.rx.recv() => match r {
                    Ok(r) if !q.filter.matches(&r) => continue,
                    Ok(_) if !cap.admit(tokio::time::Instant::now()) => continue,
                    Ok(r) => json_line(&Line::from(&*r)),
                    Err(broadcast::error::RecvError::Lagged(n)) => {
                        cap.dropped += n;
                        continue;
                    }
                    Err(broadcast::error::RecvError::Closed) => break,
                },
            };
            // A full channel is a slow reader: the line is dropped, not waited for.
            match tx.try_send(line) {
                Ok(()) => {}
                Err(mpsc::error::TrySendError::Full(_)) => cap.dropped += 1,
                Err(mpsc::error::TrySendError::Closed(_)) => break,
            }
        }
        if cap.dropped > 0 {
            let _ = tx.try_send(dropped_line(cap.dropped));
        }
        drop(sub);
    });
    let frames = tokio_stream::wrappers::ReceiverStream::new(rx)
        .map(|b| Ok::<_, crate::body::BoxError>(hyper::body::Frame::data(b)));
    StreamBody::new(frames).boxed()
}

#[cfg(test)]
mod tests;
