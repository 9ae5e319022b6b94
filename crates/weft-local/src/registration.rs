//! Whether the control plane has put in force the pods file `weft up` wrote last. It reads the
//! file by polling, so a pod is an endpoint a moment after it is ready; `weft up` reports the
//! mesh up only once the control plane's list is current, so that the first request finds every
//! ready pod an endpoint.

use std::net::SocketAddr;
use std::time::Duration;

use tokio::time::Instant;

/// Waits until the control plane at `admin` read the pods file at or after `written_at_ms`
/// (Unix milliseconds), up to `timeout`; whether it did.
pub async fn wait_in_force(admin: SocketAddr, written_at_ms: u64, timeout: Duration) -> bool {
    let deadline = Instant::now() + timeout;
    loop {
        let answer = crate::http::get(admin, "/debug/config", Duration::from_secs(1)).await;
        if let Ok((200, body)) = answer
            && loaded_since(&body, written_at_ms)
        {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Whether `/debug/config` (its JSON body) says the pods file in force was read at or after
/// `written_at_ms`.
fn loaded_since(body: &str, written_at_ms: u64) -> bool {
    serde_json::from_str::<serde_json::Value>(body).is_ok_and(|v| {
        v["podsFile"]["loadedAtMs"]
            .as_u64()
            .is_some_and(|t| t >= written_at_ms)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_list_in_force_must_be_read_after_the_last_write() {
        let body = |loaded: &str| {
            format!(
                r#"{{"generation": 1, "podsFile": {{"path": "p", "pods": 2, "loadedAtMs": {loaded}, "error": null}}}}"#
            )
        };
        assert!(loaded_since(&body("1000"), 1000));
        assert!(loaded_since(&body("1200"), 1000));
        assert!(!loaded_since(&body("999"), 1000));
        assert!(!loaded_since(&body("null"), 1000), "never read");
        assert!(!loaded_since(r#"{"generation": 1}"#, 1000), "no pods file");
        assert!(!loaded_since("not json", 0));
    }
}
