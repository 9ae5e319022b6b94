//! Readiness of a supervised process, checked for as long as it runs: a probe is tried every
//! [`UNTIL_READY`] until it first passes, then every [`WHILE_READY`]; [`FAILURES`] failures in a
//! row make the process unready (its pod leaves the endpoints), one pass makes it ready again.

use std::net::SocketAddr;
use std::time::Duration;

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
    /// the proxy's socket mark, so capture lets it reach the app itself.
    Tcp {
        netns: String,
        addr: SocketAddr,
        mark: u32,
    },
    /// `GET path` on the admin address a control plane reported in its addresses file
    /// answers 200 (its ports are ephemeral).
    ControlAdmin(std::path::PathBuf, &'static str),
}

impl Probe {
    pub async fn passes(&self) -> bool {
        match self {
            Probe::Http(addr, path) => matches!(
                crate::http::get(*addr, path, PROBE_TIMEOUT).await,
                Ok((200, _))
            ),
            Probe::Tcp { netns, addr, mark } => {
                let (netns, addr, mark) = (netns.clone(), *addr, *mark);
                tokio::task::spawn_blocking(move || crate::net::probe_tcp(&netns, addr, mark))
                    .await
                    .is_ok_and(|r| r.is_ok())
            }
            Probe::ControlAdmin(file, path) => {
                let Ok(cp) = crate::addresses::read::<crate::addresses::ControlAddresses>(file)
                else {
                    return false;
                };
                matches!(
                    crate::http::get(cp.admin, path, PROBE_TIMEOUT).await,
                    Ok((200, _))
                )
            }
        }
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
