//! Durations written the Kubernetes / Gateway API way: `500ms`, `10s`, `1m30s`, `2h`.

use std::fmt;
use std::str::FromStr;

use schemars::JsonSchema;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A span of time parsed from a string such as `250ms`, `10s`, `1m30s` or `1h`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Duration(std::time::Duration);

/// Why a duration string was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "invalid duration {input:?}: {reason} (write a number with a unit, e.g. 500ms, 10s, 1m30s, 2h)"
)]
pub struct ParseDurationError {
    input: String,
    reason: &'static str,
}

impl Duration {
    pub const ZERO: Duration = Duration(std::time::Duration::ZERO);

    pub const fn from_millis(ms: u64) -> Self {
        Duration(std::time::Duration::from_millis(ms))
    }

    pub const fn from_secs(s: u64) -> Self {
        Duration(std::time::Duration::from_secs(s))
    }

    pub fn as_std(self) -> std::time::Duration {
        self.0
    }

    pub fn is_zero(self) -> bool {
        self.0.is_zero()
    }

    /// `self × n`, saturating.
    pub fn times(self, n: u32) -> Self {
        Duration(self.0.saturating_mul(n))
    }
}

impl FromStr for Duration {
    type Err = ParseDurationError;

    fn from_str(input: &str) -> Result<Self, Self::Err> {
        let err = |reason| ParseDurationError {
            input: input.to_string(),
            reason,
        };
        let s = input.trim();
        if s.is_empty() {
            return Err(err("empty"));
        }
        if s == "0" {
            return Ok(Duration::ZERO);
        }
        let mut total: u128 = 0;
        let mut rest = s;
        while !rest.is_empty() {
            let digits = rest
                .find(|c: char| !c.is_ascii_digit())
                .unwrap_or(rest.len());
            if digits == 0 {
                return Err(err("expected a number"));
            }
            let value: u128 = rest[..digits]
                .parse()
                .map_err(|_| err("number too large"))?;
            rest = &rest[digits..];
            let unit_len = rest
                .find(|c: char| c.is_ascii_digit())
                .unwrap_or(rest.len());
            let nanos_per_unit: u128 = match &rest[..unit_len] {
                "h" => 3_600_000_000_000,
                "m" => 60_000_000_000,
                "s" => 1_000_000_000,
                "ms" => 1_000_000,
                "us" | "µs" => 1_000,
                "ns" => 1,
                "" => return Err(err("missing unit")),
                _ => return Err(err("unknown unit")),
            };
            rest = &rest[unit_len..];
            total = value
                .checked_mul(nanos_per_unit)
                .and_then(|v| total.checked_add(v))
                .ok_or_else(|| err("too large"))?;
        }
        let secs = u64::try_from(total / 1_000_000_000).map_err(|_| err("too large"))?;
        let nanos = (total % 1_000_000_000) as u32;
        Ok(Duration(std::time::Duration::new(secs, nanos)))
    }
}

impl fmt::Display for Duration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let nanos = self.0.as_nanos();
        if nanos == 0 {
            return f.write_str("0s");
        }
        for (unit, size) in [
            ("h", 3_600_000_000_000u128),
            ("m", 60_000_000_000),
            ("s", 1_000_000_000),
            ("ms", 1_000_000),
            ("us", 1_000),
        ] {
            if nanos.is_multiple_of(size) {
                return write!(f, "{}{unit}", nanos / size);
            }
        }
        write!(f, "{nanos}ns")
    }
}

impl Serialize for Duration {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Duration {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

impl JsonSchema for Duration {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "Duration".into()
    }

    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({
            "type": "string",
            "description": "A duration: a number with a unit (h, m, s, ms, us), e.g. `500ms`, `10s`, `1m30s`.",
            "pattern": "^(0|([0-9]+(h|m|s|ms|us|µs|ns))+)$"
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_compound_and_round_trips() {
        let d: Duration = "1m30s".parse().unwrap();
        assert_eq!(d.as_std(), std::time::Duration::from_secs(90));
        assert_eq!(d.to_string(), "90s");
        assert_eq!("250ms".parse::<Duration>().unwrap().to_string(), "250ms");
        assert_eq!("0".parse::<Duration>().unwrap(), Duration::ZERO);
    }

    #[test]
    fn rejects_missing_or_unknown_units() {
        for bad in [
            "",
            "10",
            "10x",
            "s",
            "1.5s",
            "-1s",
            "99999999999999999999999h",
        ] {
            assert!(bad.parse::<Duration>().is_err(), "{bad:?} should fail");
        }
    }
}
