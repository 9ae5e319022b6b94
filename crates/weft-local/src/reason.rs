//! Why a pod is not ready, in words a person can act on: its app exited (and when it starts
//! again), its proxy is not ready (and what the proxy says), its app does not listen where its
//! Workload says (and where it does listen), with the fix when there is one. Pure: the runtime
//! hands in what it observed — readiness answers ([`crate::readiness`]), a pod's TCP listeners
//! ([`crate::net::listeners`]) and the status ([`crate::status`]).

use std::net::{IpAddr, SocketAddr};

use crate::status::{PodStatus, Process};
use crate::supervise::limits::oom_kill;

/// Why something is not ready, and what fixes it when that is known.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NotReady {
    pub reason: String,
    pub fix: Option<String>,
}

impl NotReady {
    pub fn new(reason: impl Into<String>) -> NotReady {
        NotReady {
            reason: reason.into(),
            fix: None,
        }
    }

    pub fn with_fix(self, fix: impl Into<String>) -> NotReady {
        NotReady {
            fix: Some(fix.into()),
            ..self
        }
    }
}

/// `REASON`, then `; fix: FIX` when there is one.
impl std::fmt::Display for NotReady {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.reason)?;
        match &self.fix {
            Some(fix) => write!(f, "; fix: {fix}"),
            None => Ok(()),
        }
    }
}

impl PodStatus {
    /// Why the pod takes no traffic at `now_ms`; None while it does (or once it is removed).
    pub fn not_ready(&self, now_ms: u64) -> Option<NotReady> {
        if self.removed {
            return None;
        }
        if self.terminating {
            return Some(NotReady::new(
                "terminating: out of the endpoints while it stops",
            ));
        }
        if self.ready() {
            return None;
        }
        let sidecar = self.mode == "sidecar";
        if sidecar && self.proxy.state == "restarting" {
            return Some(exited("proxy", &self.proxy, now_ms, &self.name));
        }
        if self.app.state == "restarting" {
            return Some(exited("app", &self.app, now_ms, &self.name));
        }
        if self.proxy.state != "ready" {
            match self.mode.as_str() {
                "sidecar" => return Some(proxy(&self.proxy)),
                "ambient" => {
                    return Some(NotReady::new(format!(
                        "waiting for node proxy {} to serve it ({})",
                        self.node, self.proxy.state
                    )));
                }
                _ => {}
            }
        }
        Some(match (self.app.state.as_str(), &self.app.reason) {
            ("stopped", _) => NotReady::new(format!(
                "app stopped ({})",
                self.app.last_exit.as_deref().unwrap_or("by weft up")
            )),
            ("waiting", _) => NotReady::new("app waiting for its proxy"),
            (_, Some(r)) => NotReady {
                reason: r.clone(),
                fix: self.app.fix.clone(),
            },
            (state, None) => NotReady::new(format!(
                "app not ready yet ({state}): its readiness check has not passed"
            )),
        })
    }
}

/// `app exited with status 1 (restarting in 4s)`, with where to look.
fn exited(who: &str, p: &Process, now_ms: u64, pod: &str) -> NotReady {
    let how = p.last_exit.as_deref().unwrap_or("exited");
    let when = match p.next_start_at_ms {
        Some(t) if t > now_ms => format!("restarting in {}s", (t - now_ms).div_ceil(1000)),
        _ => "restarting now".to_string(),
    };
    let log = match who {
        "proxy" => format!("weft logs {pod} --proxy"),
        _ => format!("weft logs {pod}"),
    };
    let fix = match how {
        "exited with status 127" => {
            format!("its command was not found: check the Workload's spec.command and PATH ({log})")
        }
        oom if oom_kill(oom) && who == "proxy" => {
            "raise its weft.dev/proxy-memory-limit annotation, from `weft right-size` once it ran under load".to_string()
        }
        oom if oom_kill(oom) => {
            "raise the Workload's spec.resources.limits.memory, or find what it holds on to".to_string()
        }
        _ => format!("see why in its log: {log}"),
    };
    NotReady::new(format!("{who} {how} ({when})")).with_fix(fix)
}

/// A sidecar that is not ready: what its readiness endpoint says. A certificate the CA has not
/// issued is said as such; anything else is the proxy's.
fn proxy(p: &Process) -> NotReady {
    let reason = match p.reason.as_deref() {
        Some(r) if r.starts_with("certificate not issued") => r.to_string(),
        Some(r) => format!("proxy not ready: {r}"),
        None => format!("proxy not ready: {}", p.state),
    };
    NotReady {
        reason,
        fix: p.fix.clone(),
    }
}

/// Why an app whose readiness port is `port` does not accept connections on `pod_ip:port`,
/// from the TCP sockets listening in its pod, the proxy's own ports (`proxy`) left out.
pub fn app_port(port: u16, pod_ip: IpAddr, listening: &[SocketAddr], proxy: &[u16]) -> NotReady {
    let app: Vec<&SocketAddr> = (listening.iter())
        .filter(|a| !proxy.contains(&a.port()))
        .collect();
    let on_port: Vec<&&SocketAddr> = app.iter().filter(|a| a.port() == port).collect();
    if on_port
        .iter()
        .any(|a| a.ip().is_unspecified() || a.ip() == pod_ip)
    {
        return NotReady::new(format!(
            "app listens on :{port} but does not accept connections"
        ));
    }
    if let Some(a) = on_port.first() {
        return NotReady::new(format!(
            "app listens on :{port} on {} only, which the pod's address {pod_ip} does not reach",
            a.ip()
        ))
        .with_fix(format!(
            "make the app listen on 0.0.0.0:{port} (every address)"
        ));
    }
    let mut ports: Vec<u16> = app.iter().map(|a| a.port()).collect();
    ports.sort_unstable();
    ports.dedup();
    let Some(first) = ports.first() else {
        return NotReady::new(format!(
            "app not listening on :{port} (it listens on no TCP port yet)"
        ));
    };
    let list: Vec<String> = ports.iter().map(|p| format!(":{p}")).collect();
    NotReady::new(format!(
        "app not listening on :{port}; it listens on {}",
        list.join(", ")
    ))
    .with_fix(format!(
        "make the app listen on :{port}, or set the Workload's containerPort (and its \
         Services' targetPort) to {first}"
    ))
}

/// Why a readiness endpoint at `addr` did not answer 200: the reason a weft process gives
/// (its 503 says it), or what it answered, or that it did not answer.
pub fn http_answer(addr: SocketAddr, answer: &std::io::Result<(u16, String)>) -> NotReady {
    match answer {
        Ok((code, body)) => {
            let said = serde_json::from_str::<serde_json::Value>(body.trim())
                .ok()
                .and_then(|v| {
                    let r = v.get("reason").or_else(|| v.get("error"))?;
                    r.as_str().map(str::to_string)
                })
                .filter(|r| !r.is_empty());
            NotReady::new(
                said.unwrap_or_else(|| format!("its readiness check on {addr} answered {code}")),
            )
        }
        Err(e) if e.kind() == std::io::ErrorKind::ConnectionRefused => NotReady::new(format!(
            "not answering its readiness check on {addr} yet (connection refused)"
        )),
        Err(e) => NotReady::new(format!("no answer from its readiness check on {addr}: {e}")),
    }
}

#[cfg(test)]
mod tests;
