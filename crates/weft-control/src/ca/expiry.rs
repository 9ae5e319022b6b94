//! Workload certificates whose renewal is overdue. Proxies renew at half-life; a certificate
//! past three quarters of its life means its proxy cannot reach the CA (or is gone), and will
//! lose mTLS when it expires. The control plane warns once per certificate in its log, counts
//! them in `weft_ca_certificates_renewal_overdue`, and lists them at `GET /debug/ca`
//! (`renewalOverdue`), which `weft status` shows.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;

use super::Ca;
use super::cert;

/// How often the control plane looks.
const EVERY: Duration = Duration::from_secs(10);

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Overdue {
    pub identity: String,
    pub pod: String,
    pub serial: String,
    /// Unix seconds.
    pub not_after: i64,
    pub expires_in_seconds: i64,
}

/// Of `(identity, pod, serial, issued_at, not_after)`, those past 3/4 of their life at `now`
/// and not expired yet.
pub fn overdue<'a>(
    certs: impl Iterator<Item = (&'a str, &'a str, &'a str, i64, i64)>,
    now: i64,
) -> Vec<Overdue> {
    certs
        .filter(|(_, _, _, issued, after)| {
            let life = after - issued;
            now < *after && (now - issued) * 4 >= life * 3
        })
        .map(|(identity, pod, serial, _, not_after)| Overdue {
            identity: identity.to_string(),
            pod: pod.to_string(),
            serial: serial.to_string(),
            not_after,
            expires_in_seconds: not_after - now,
        })
        .collect()
}

/// Warns about each overdue certificate once, and keeps the gauge current.
pub async fn watch(ca: Arc<Ca>, gauge: prometheus_client::metrics::gauge::Gauge) {
    let mut warned = BTreeSet::new();
    loop {
        let list = ca.overdue();
        gauge.set(list.len() as i64);
        for o in &list {
            if warned.insert(o.serial.clone()) {
                tracing::warn!(
                    identity = %o.identity, pod = %o.pod, serial = %o.serial,
                    "workload certificate expires at {} (in {}s) and its proxy has not renewed it",
                    cert::rfc3339(o.not_after), o.expires_in_seconds
                );
            }
        }
        warned.retain(|s| list.iter().any(|o| &o.serial == s));
        tokio::time::sleep(EVERY).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_certificates_past_three_quarters_and_unexpired_are_overdue() {
        let certs = [
            ("id/a", "a-0", "01", 0, 100),  // at 80: past 3/4
            ("id/b", "b-0", "02", 50, 150), // at 80: young
            ("id/c", "c-0", "03", 0, 70),   // expired
        ];
        let got = overdue(certs.into_iter(), 80);
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].pod, "a-0");
        assert_eq!(got[0].expires_in_seconds, 20);
    }
}
