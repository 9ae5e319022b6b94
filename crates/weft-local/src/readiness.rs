//! Readiness of a supervised process, checked for as long as it runs: a probe is tried every
//! [`UNTIL_READY`] until it first passes, then every [`WHILE_READY`]; [`FAILURES`] failures in a
//! row make the process unready (its pod leaves the endpoints), one pass makes it ready again.
//! A check that fails says why ([`crate::reason`]): what a weft process's readiness endpoint
//! answered, or where a pod's app listens instead of its port.

use std::net::SocketAddr;
use std::time::Duration;

use crate::reason::{self, NotReady};

/// Probe interval while the process is not ready.
pub const UNTIL_READY: Duration = Duration::from_millis(50);
/// Probe interval while it is ready: with [`FAILURES`], an app that stops accepting is unready
/// within about half a second.
pub const WHILE_READY: Duration = Duration::from_millis(250);
/// Failures in a row that make a ready process unready; one alone may be a blip.
pub const FAILURES: u32 = 2;
/// How long one probe may take.
const PROBE_TIMEOUT: Duration = Duration::from_secs(1);

/// A readiness check.
#[derive(Debug, Clone)]
pub enum Probe {
    /// `GET path` answers 200.
    Http(SocketAddr, &'static str),
    /// A TCP connection to `addr` from inside the pod's network namespace succeeds. It carries
    /// the proxy's socket mark, so capture lets it reach the app itself. When it fails, the
    /// pod's listening sockets (but the proxy's own `proxy_ports`) say where the app listens.
    Tcp {
        netns: String,
        addr: SocketAddr,
        mark: u32,
        proxy_ports: Vec<u16>,
    },
    /// `GET path` on the admin address a control plane reported in its addresses file
    /// answers 200 (its ports are ephemeral).
    ControlAdmin(std::path::PathBuf, &'static str),
}

impl Probe {
    pub async fn passes(&self) -> bool {
        self.check().await.is_ok()
    }

    /// Passes, or why not.
    pub async fn check(&self) -> Result<(), NotReady> {
        match self {
            Probe::Http(addr, path) => http(*addr, path).await,
            Probe::Tcp {
                netns,
                addr,
                mark,
                proxy_ports,
            } => {
                let (netns, addr, mark) = (netns.clone(), *addr, *mark);
                let ports = proxy_ports.clone();
                tokio::task::spawn_blocking(move || {
                    if crate::net::probe_tcp(&netns, addr, mark).is_ok() {
                        return Ok(());
                    }
                    let listening = crate::net::listeners(&netns).map_err(|e| {
                        NotReady::new(format!(
                            "app not accepting connections on :{}; its listening sockets \
                             cannot be read: {e}",
                            addr.port()
                        ))
                    })?;
                    Err(reason::app_port(addr.port(), addr.ip(), &listening, &ports))
                })
                .await
                .unwrap_or_else(|e| Err(NotReady::new(format!("readiness check failed: {e}"))))
            }
            Probe::ControlAdmin(file, path) => {
                let cp = crate::addresses::read::<crate::addresses::ControlAddresses>(file)
                    .map_err(|_| NotReady::new("starting: it has not said where it listens"))?;
                http(cp.admin, path).await
            }
        }
    }
}

/// `GET path` on `addr` answers 200, or what it said instead.
async fn http(addr: SocketAddr, path: &str) -> Result<(), NotReady> {
    match crate::http::get(addr, path, PROBE_TIMEOUT).await {
        Ok((200, _)) => Ok(()),
        answer => Err(reason::http_answer(addr, &answer)),
    }
}

/// Readiness as probe results come in.
#[derive(Debug, Default)]
pub struct Tracker {
    ready: bool,
    /// Failures in a row while ready.
    failures: u32,
}

impl Tracker {
    /// Records one probe result; the new readiness when it changes.
    pub fn observe(&mut self, passed: bool) -> Option<bool> {
        if passed {
            self.failures = 0;
            return (!self.ready).then(|| {
                self.ready = true;
                true
            });
        }
        if !self.ready {
            return None;
        }
        self.failures += 1;
        (self.failures >= FAILURES).then(|| {
            self.ready = false;
            self.failures = 0;
            false
        })
    }

    /// Whether the process counts as ready now.
    pub fn is_ready(&self) -> bool {
        self.ready
    }

    /// How long to wait before the next probe.
    pub fn interval(&self) -> Duration {
        if self.ready { WHILE_READY } else { UNTIL_READY }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ready_on_the_first_pass_unready_after_failures_in_a_row() {
        let mut t = Tracker::default();
        assert_eq!(t.observe(false), None, "not ready yet: nothing changes");
        assert_eq!(t.interval(), UNTIL_READY);
        assert_eq!(t.observe(true), Some(true));
        assert_eq!(t.interval(), WHILE_READY);
        assert_eq!(t.observe(true), None);
        // One failure is a blip; a pass in between starts the count over.
        assert_eq!(t.observe(false), None);
        assert_eq!(t.observe(true), None);
        assert_eq!(t.observe(false), None);
        assert_eq!(t.observe(false), Some(false));
        assert_eq!(t.interval(), UNTIL_READY);
        assert_eq!(t.observe(false), None);
        // Back on the next pass.
        assert_eq!(t.observe(true), Some(true));
    }
}
