//! The rotation loop: get a certificate, hold it, renew at half of its remaining lifetime,
//! retry failures with backoff, and start over at once when the identity changes.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;
use weft_core::identity::SpiffeId;

use super::client::{Issue, IssueError};
use super::{Source, key};

/// Why getting a certificate failed (the held one, if any, stays in service).
#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    #[error(transparent)]
    Key(#[from] key::Error),
    #[error(transparent)]
    Issue(#[from] IssueError),
    #[error("the CA's chain: {0}")]
    Chain(#[source] key::Error),
    #[error("the CA's trust bundle: {0}")]
    Bundle(#[source] key::Error),
}

const BACKOFF_MIN: Duration = Duration::from_millis(200);
const BACKOFF_MAX: Duration = Duration::from_secs(30);
/// Renewals never come closer together than this, even for very short certificates.
const RENEW_MIN: Duration = Duration::from_millis(100);

/// Keeps `source` filled with a current certificate for the identity in `identity` (None
/// until the proxy knows it), until the task is dropped.
pub async fn run<I: Issue>(
    source: Arc<Source>,
    issuer: I,
    ttl: Option<Duration>,
    mut identity: watch::Receiver<Option<SpiffeId>>,
) {
    let mut backoff = BACKOFF_MIN;
    loop {
        let Some(id) = identity.borrow_and_update().clone() else {
            if identity.changed().await.is_err() {
                return;
            }
            continue;
        };
        let fetched = fetch(&source, &issuer, ttl, &id).await;
        source.metrics.renewal(fetched.is_ok());
        let wait = match fetched {
            Ok(renew_in) => {
                backoff = BACKOFF_MIN;
                renew_in
            }
            Err(e) => {
                let held = source.info().map(|i| i.serial);
                match &held {
                    Some(serial) => {
                        tracing::warn!(identity = %id, "cannot renew the workload certificate, keeping {serial}; retrying in {backoff:?}: {e}")
                    }
                    None => {
                        tracing::warn!(identity = %id, "no workload certificate yet, retrying in {backoff:?}: {e}")
                    }
                }
                source.fail(&e);
                // Jitter spreads the retries of many proxies after a control-plane outage.
                let jitter =
                    Duration::from_millis(fastrand::u64(0..=backoff.as_millis() as u64 / 4));
                let wait = backoff + jitter;
                backoff = (backoff * 2).min(BACKOFF_MAX);
                wait
            }
        };
        tokio::select! {
            _ = tokio::time::sleep(wait) => {}
            changed = identity.changed() => {
                if changed.is_err() {
                    return;
                }
                // A new identity (e.g. another trust domain) needs a new certificate now.
                backoff = BACKOFF_MIN;
            }
        }
    }
}

/// One new key, CSR and certificate; returns when to renew it.
async fn fetch<I: Issue>(
    source: &Source,
    issuer: &I,
    ttl: Option<Duration>,
    id: &SpiffeId,
) -> Result<Duration, FetchError> {
    let (key_pair, csr) = key::request(id)?;
    let issued = issuer.create(csr, ttl).await?;
    let chain = key::parse_pem(&issued.chain_pem).map_err(FetchError::Chain)?;
    let bundle = key::parse_pem(&issued.bundle_pem).map_err(FetchError::Bundle)?;
    let (certified, info) = key::assemble(&key_pair, chain.clone(), &bundle)?;
    key::check(&info, &chain, &bundle, id)?;
    let renew_in = renew_after(info.not_after, unix_now());
    tracing::info!(identity = %id, serial = %info.serial, not_after = info.not_after, renew_in_s = renew_in.as_secs(), roots = bundle.len(), "workload certificate installed");
    source.install(certified, bundle, info);
    Ok(renew_in)
}

/// Half of the lifetime left at `now` (the CA's back-dated start does not count).
pub(super) fn renew_after(not_after: i64, now: f64) -> Duration {
    let left = (not_after as f64 - now).max(0.0);
    Duration::from_secs_f64(left / 2.0).max(RENEW_MIN)
}

fn unix_now() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}
