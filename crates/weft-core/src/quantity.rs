//! Kubernetes resource quantities for proxy CPU and memory: `100m`, `0.5`, `64Mi`, `1G`.

use std::fmt;
use std::str::FromStr;

use schemars::JsonSchema;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// CPU in millicores, parsed from `250m`, `0.5` or `2`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Cpu(pub u64);

/// Memory in bytes, parsed from `64Mi`, `128M`, `1Gi` or a plain byte count.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Memory(pub u64);

/// Why a quantity string was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid {what} quantity {input:?}: {hint}")]
pub struct ParseQuantityError {
    what: &'static str,
    input: String,
    hint: &'static str,
}

impl FromStr for Cpu {
    type Err = ParseQuantityError;

    fn from_str(input: &str) -> Result<Self, Self::Err> {
        let err = || ParseQuantityError {
            what: "CPU",
            input: input.to_string(),
            hint: "write millicores like 100m, or cores like 0.5 or 2",
        };
        let s = input.trim();
        if let Some(m) = s.strip_suffix('m') {
            return m.parse::<u64>().map(Cpu).map_err(|_| err());
        }
        let cores: f64 = s.parse().map_err(|_| err())?;
        if !cores.is_finite() || !(0.0..=1e9).contains(&cores) {
            return Err(err());
        }
        Ok(Cpu((cores * 1000.0).round() as u64))
    }
}

impl FromStr for Memory {
    type Err = ParseQuantityError;

    fn from_str(input: &str) -> Result<Self, Self::Err> {
        let err = || ParseQuantityError {
            what: "memory",
            input: input.to_string(),
            hint: "write bytes with a unit like 64Mi, 128Mi or 1Gi",
        };
        let s = input.trim();
        let split = s.find(|c: char| c.is_ascii_alphabetic()).unwrap_or(s.len());
        let (number, unit) = s.split_at(split);
        let factor: u64 = match unit {
            "" => 1,
            "k" => 1_000,
            "M" => 1_000_000,
            "G" => 1_000_000_000,
            "T" => 1_000_000_000_000,
            "Ki" => 1 << 10,
            "Mi" => 1 << 20,
            "Gi" => 1 << 30,
            "Ti" => 1 << 40,
            _ => return Err(err()),
        };
        let value: f64 = number.parse().map_err(|_| err())?;
        if !value.is_finite() || value < 0.0 {
            return Err(err());
        }
        let bytes = value * factor as f64;
        if bytes > u64::MAX as f64 {
            return Err(err());
        }
        Ok(Memory(bytes.round() as u64))
    }
}

impl fmt::Display for Cpu {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0.is_multiple_of(1000) {
            write!(f, "{}", self.0 / 1000)
        } else {
            write!(f, "{}m", self.0)
        }
    }
}

impl fmt::Display for Memory {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (unit, size) in [("Gi", 1u64 << 30), ("Mi", 1 << 20), ("Ki", 1 << 10)] {
            if self.0 >= size && self.0.is_multiple_of(size) {
                return write!(f, "{}{unit}", self.0 / size);
            }
        }
        write!(f, "{}", self.0)
    }
}

macro_rules! string_serde {
    ($ty:ty, $name:literal, $desc:literal, $pattern:literal) => {
        impl Serialize for $ty {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.collect_str(self)
            }
        }

        impl<'de> Deserialize<'de> for $ty {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                // Kubernetes accepts `cpu: 1` and `memory: 1024` as numbers too.
                let v = serde_json::Value::deserialize(d)?;
                let s = match &v {
                    serde_json::Value::String(s) => s.clone(),
                    serde_json::Value::Number(n) => n.to_string(),
                    other => {
                        return Err(serde::de::Error::custom(format!(
                            "expected a {} quantity string, found {other}",
                            $name
                        )));
                    }
                };
                s.parse().map_err(serde::de::Error::custom)
            }
        }

        impl JsonSchema for $ty {
            fn schema_name() -> std::borrow::Cow<'static, str> {
                $name.into()
            }

            fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
                schemars::json_schema!({
                    "type": ["string", "number"],
                    "description": $desc,
                    "pattern": $pattern
                })
            }
        }
    };
}

string_serde!(
    Cpu,
    "CpuQuantity",
    "CPU as millicores (`100m`) or cores (`0.5`, `2`).",
    "^([0-9]+m|[0-9]+(\\.[0-9]+)?)$"
);
string_serde!(
    Memory,
    "MemoryQuantity",
    "Memory with a unit: `64Mi`, `1Gi`, `128M`, or bytes.",
    "^[0-9]+(\\.[0-9]+)?(k|M|G|T|Ki|Mi|Gi|Ti)?$"
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_forms() {
        assert_eq!("100m".parse::<Cpu>().unwrap(), Cpu(100));
        assert_eq!("0.5".parse::<Cpu>().unwrap(), Cpu(500));
        assert_eq!("2".parse::<Cpu>().unwrap(), Cpu(2000));
        assert_eq!(Cpu(1500).to_string(), "1500m");
        assert!("1 core".parse::<Cpu>().is_err());
        assert!("-1".parse::<Cpu>().is_err());
    }

    #[test]
    fn memory_forms() {
        assert_eq!("64Mi".parse::<Memory>().unwrap(), Memory(64 << 20));
        assert_eq!("1G".parse::<Memory>().unwrap(), Memory(1_000_000_000));
        assert_eq!(Memory(128 << 20).to_string(), "128Mi");
        assert!("64MB".parse::<Memory>().is_err());
    }
}
