//! `response_flags`: Envoy's short codes for what went wrong, derived from the stage that
//! failed (the record's `weft-error`, see [`crate::error`]), its attempts and whether the client
//! stayed. Several are joined with `,` in Envoy's order; `-` when there is none.
//!
//! | stage (`weft-error`)                        | flag  |
//! |---------------------------------------------|-------|
//! | `no-healthy-endpoint`, `waypoint-unavailable` | `UH` |
//! | `timeout`                                   | `UT`  |
//! | `connect-refused`, `connect-timeout`, `tunnel` | `UF` |
//! | `upstream-reset`                            | `UC`  |
//! | `no-route`, `unknown-destination`           | `NR`  |
//! | `no-backend`, `not-ready`                   | `NC`  |
//! | `bad-request`                               | `DPE` |
//! | `fault-abort` (a `Fault` aborted it)        | `FI`  |
//! | `rate-limited` (a `localRateLimit` refused it) | `RL` |
//! | `denied`, `waypoint-bypassed`, `plaintext-refused` | none (`-`, code 403: Envoy's RBAC filter sets no flag either) |
//!
//! Besides: `DI` when a `Fault` delayed the request, `DC` when the client went away before the response ended, and `URX` when a request
//! was retried and its last attempt still failed upstream (retries exhausted).

use crate::record::Record;

/// Envoy's order of the flags weft produces.
const ORDER: [&str; 12] = [
    "UH", "UT", "UF", "UC", "NR", "DI", "FI", "RL", "DC", "URX", "DPE", "NC",
];

/// The flag of a failed stage, if it has one.
pub fn of_stage(stage: &str) -> Option<&'static str> {
    Some(match stage {
        "no-healthy-endpoint" | "waypoint-unavailable" => "UH",
        "timeout" => "UT",
        "connect-refused" | "connect-timeout" | "tunnel" => "UF",
        "upstream-reset" => "UC",
        "no-route" | "unknown-destination" => "NR",
        "no-backend" | "not-ready" => "NC",
        "bad-request" => "DPE",
        "fault-abort" => "FI",
        "rate-limited" => "RL",
        _ => return None,
    })
}

/// The `response_flags` value of a record.
pub fn of(r: &Record) -> String {
    let stage = r.error.and_then(of_stage);
    let upstream_failed = matches!(stage, Some("UT" | "UF" | "UC"))
        || (r.error.is_none() && r.status.is_some_and(|s| s >= 500));
    let retried = r.attempts.is_some_and(|a| a > 1);
    let mut flags: Vec<&str> = stage.into_iter().collect();
    if r.disconnected {
        flags.push("DC");
    }
    if r.fault_delayed {
        flags.push("DI");
    }
    if retried && upstream_failed {
        flags.push("URX");
    }
    flags.sort_by_key(|f| ORDER.iter().position(|o| o == f));
    if flags.is_empty() {
        return "-".into();
    }
    flags.join(",")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(error: Option<&'static str>, status: u16, attempts: u32) -> Record {
        Record {
            error,
            status: Some(status),
            attempts: Some(attempts),
            ..Record::default()
        }
    }

    #[test]
    fn stages_become_envoys_codes() {
        let cases = [
            (record(None, 200, 1), "-"),
            (record(None, 503, 1), "-"),
            (record(Some("no-healthy-endpoint"), 503, 1), "UH"),
            (record(Some("connect-refused"), 503, 1), "UF"),
            (record(Some("connect-refused"), 503, 3), "UF,URX"),
            (record(None, 503, 2), "URX"),
            (record(Some("timeout"), 504, 1), "UT"),
            (record(Some("no-route"), 404, 1), "NR"),
            (record(Some("denied"), 403, 1), "-"),
            (record(Some("upstream-reset"), 502, 1), "UC"),
        ];
        for (r, want) in cases {
            assert_eq!(of(&r), want, "{:?} {:?}", r.error, r.status);
        }
        let mut gone = record(None, 200, 1);
        gone.disconnected = true;
        assert_eq!(of(&gone), "DC");
    }
}
