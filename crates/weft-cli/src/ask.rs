//! Asking a running `weft up` to do something ([`weft_local::requests`]): writes the request,
//! waits until it is taken and answered, and gives the reply.

use std::time::{Duration, Instant};

use anyhow::bail;
use serde::Serialize;
use serde::de::DeserializeOwned;
use weft_local::requests;
use weft_local::rundir::RunDir;

/// Whether `weft up` took the request: it looks every 250 ms.
const TAKEN_WITHIN: Duration = Duration::from_secs(10);

/// Sends `req` (of `kind`) to the instance in `dir` and waits up to `done_within` for the
/// reply.
pub fn ask<T: Serialize, R: DeserializeOwned>(
    dir: &RunDir,
    kind: &str,
    req: &T,
    done_within: Duration,
) -> anyhow::Result<R> {
    let name = dir.name();
    let id = requests::submit(dir, kind, req)
        .map_err(|e| anyhow::anyhow!("writing the request into {}: {e}", dir.path.display()))?;
    let start = Instant::now();
    loop {
        if let Some(reply) = requests::read_reply(dir, &id) {
            return reply.map_err(anyhow::Error::msg);
        }
        let waiting = requests::request_file(dir, kind, &id);
        if dir.owner().is_none() {
            let _ = std::fs::remove_file(&waiting);
            bail!("weft up {name:?} stopped before it answered");
        }
        if waiting.exists() && start.elapsed() > TAKEN_WITHIN {
            let _ = std::fs::remove_file(&waiting);
            bail!(
                "weft up {name:?} did not take the request within {}s (a weft up from an older \
                 version? restart it with `weft down` and `weft up`)",
                TAKEN_WITHIN.as_secs()
            );
        }
        if start.elapsed() > done_within {
            bail!(
                "no answer within {}s; see {}",
                done_within.as_secs(),
                dir.path.join("up.log").display()
            );
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}
