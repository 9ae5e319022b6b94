//! What requests cost: cores and GiB reserved across a workload's pods, and their price per
//! month. Requests are what a scheduler reserves (and a cloud bills for); limits cost
//! nothing until used, so savings count requests only.

use std::fmt;
use std::str::FromStr;

use serde::Serialize;

use crate::resources::mesh::ResourceAmounts;

/// Hours in a month, as cloud price lists count them (8760 / 12).
pub const HOURS_PER_MONTH: f64 = 730.0;

/// Dollars per core-hour and per GiB-hour, written `CORE_HOUR,GIB_HOUR`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Price {
    pub core_hour: f64,
    pub gib_hour: f64,
}

impl Price {
    /// Round figures near on-demand cloud list prices for a general-purpose vCPU and GiB.
    pub const DEFAULT: Price = Price {
        core_hour: 0.04,
        gib_hour: 0.005,
    };

    /// Dollars a month for `f` held all month.
    pub fn monthly(&self, f: Footprint) -> f64 {
        (f.cores * self.core_hour + f.gib * self.gib_hour) * HOURS_PER_MONTH
    }
}

impl Default for Price {
    fn default() -> Self {
        Price::DEFAULT
    }
}

impl fmt::Display for Price {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{},{}", self.core_hour, self.gib_hour)
    }
}

/// Why a `--price` was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid price {0:?}: write dollars per core-hour and per GiB-hour, like 0.04,0.005")]
pub struct ParsePriceError(String);

impl FromStr for Price {
    type Err = ParsePriceError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let err = || ParsePriceError(s.to_string());
        let (core, gib) = s.split_once(',').ok_or_else(err)?;
        let num = |v: &str| {
            let v = v.trim().trim_start_matches('$');
            v.parse::<f64>().ok().filter(|n| n.is_finite() && *n >= 0.0)
        };
        Ok(Price {
            core_hour: num(core).ok_or_else(err)?,
            gib_hour: num(gib).ok_or_else(err)?,
        })
    }
}

/// Cores and GiB (may be negative: a difference).
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct Footprint {
    pub cores: f64,
    pub gib: f64,
}

impl Footprint {
    /// What `replicas` pods each reserving `r` hold.
    pub fn of(r: &ResourceAmounts, replicas: u32) -> Footprint {
        Footprint {
            cores: r.cpu.0 as f64 / 1000.0 * f64::from(replicas),
            gib: r.memory.0 as f64 / (1u64 << 30) as f64 * f64::from(replicas),
        }
    }
}

impl std::ops::Sub for Footprint {
    type Output = Footprint;
    fn sub(self, o: Footprint) -> Footprint {
        Footprint {
            cores: self.cores - o.cores,
            gib: self.gib - o.gib,
        }
    }
}

impl std::ops::Add for Footprint {
    type Output = Footprint;
    fn add(self, o: Footprint) -> Footprint {
        Footprint {
            cores: self.cores + o.cores,
            gib: self.gib + o.gib,
        }
    }
}

impl std::iter::Sum for Footprint {
    fn sum<I: Iterator<Item = Footprint>>(iter: I) -> Footprint {
        iter.fold(Footprint::default(), |a, b| a + b)
    }
}
