//! Virtual IPs for Services: `spec.clusterIP` when set, else a stable address derived from
//! the Service's name inside the mesh's service range, so adding a Service never moves another.

use std::collections::{BTreeMap, BTreeSet};
use std::net::{IpAddr, Ipv4Addr};

/// An IPv4 range `a.b.c.d/len`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cidr {
    pub base: Ipv4Addr,
    pub len: u8,
}

/// Why a string is not a [`Cidr`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    #[error("{0:?} is not a CIDR range like 198.18.128.0/17")]
    NotCidr(String),
    #[error("{ip:?} is not an IPv4 address")]
    NotIpv4 {
        ip: String,
        #[source]
        source: std::net::AddrParseError,
    },
    #[error("prefix length {0:?} must be 8 to 30")]
    PrefixLen(String),
}

impl std::str::FromStr for Cidr {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self, Error> {
        let (ip, len) = s
            .split_once('/')
            .ok_or_else(|| Error::NotCidr(s.to_string()))?;
        let base: Ipv4Addr = ip.parse().map_err(|source| Error::NotIpv4 {
            ip: ip.to_string(),
            source,
        })?;
        let len: u8 = len
            .parse()
            .ok()
            .filter(|l| (8..=30).contains(l))
            .ok_or_else(|| Error::PrefixLen(len.to_string()))?;
        let mask = u32::MAX << (32 - len);
        Ok(Cidr {
            base: Ipv4Addr::from(u32::from(base) & mask),
            len,
        })
    }
}

impl Cidr {
    /// Usable host addresses (network and broadcast excluded).
    pub fn hosts(self) -> u32 {
        (1u32 << (32 - self.len)) - 2
    }

    /// The `n`th host address, 0-based.
    pub fn host(self, n: u32) -> Ipv4Addr {
        Ipv4Addr::from(u32::from(self.base) + 1 + n % self.hosts())
    }

    pub fn contains(self, ip: Ipv4Addr) -> bool {
        let mask = u32::MAX << (32 - self.len);
        u32::from(ip) & mask == u32::from(self.base)
    }
}

/// Assigns VIPs to `services` (`ns/name` → fixed clusterIP, if any). Fixed ones are kept;
/// the others hash into `range`, probing past taken addresses in name order.
pub fn assign(
    range: Cidr,
    services: &BTreeMap<String, Option<IpAddr>>,
) -> BTreeMap<String, IpAddr> {
    let mut taken: BTreeSet<IpAddr> = services.values().flatten().copied().collect();
    let mut out = BTreeMap::new();
    for (key, fixed) in services {
        let ip = match fixed {
            Some(ip) => *ip,
            None => {
                let mut n = fnv(key);
                loop {
                    let ip = IpAddr::V4(range.host(n));
                    if taken.insert(ip) {
                        break ip;
                    }
                    n = n.wrapping_add(1);
                    if taken.len() as u32 >= range.hosts() {
                        break ip;
                    }
                }
            }
        };
        out.insert(key.clone(), ip);
    }
    out
}

fn fnv(s: &str) -> u32 {
    s.bytes().fold(0x811c_9dc5u32, |h, b| {
        (h ^ b as u32).wrapping_mul(0x0100_0193)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn adding_a_service_keeps_the_others() {
        let range: Cidr = "198.18.128.0/17".parse().unwrap();
        let mut svcs: BTreeMap<String, Option<IpAddr>> =
            [("shop/a".to_string(), None), ("shop/c".to_string(), None)].into();
        let before = assign(range, &svcs);
        svcs.insert("shop/b".into(), None);
        svcs.insert("shop/fixed".into(), Some("198.18.200.1".parse().unwrap()));
        let after = assign(range, &svcs);
        assert_eq!(before["shop/a"], after["shop/a"]);
        assert_eq!(before["shop/c"], after["shop/c"]);
        assert_eq!(after["shop/fixed"].to_string(), "198.18.200.1");
        for ip in after.values() {
            let IpAddr::V4(v4) = ip else { panic!() };
            assert!(range.contains(*v4));
        }
        let unique: BTreeSet<_> = after.values().collect();
        assert_eq!(unique.len(), after.len());
    }

    #[test]
    fn bad_ranges_are_explained() {
        let err = |s: &str| s.parse::<Cidr>().unwrap_err();
        assert_eq!(
            err("198.18.0.0").to_string(),
            "\"198.18.0.0\" is not a CIDR range like 198.18.128.0/17"
        );
        assert_eq!(
            err("198.18.0.0/33").to_string(),
            "prefix length \"33\" must be 8 to 30"
        );
        let bad_ip = err("198.18.0/17");
        assert_eq!(bad_ip.to_string(), "\"198.18.0\" is not an IPv4 address");
        assert!(
            std::error::Error::source(&bad_ip).is_some(),
            "the address parse error is kept as the cause"
        );
    }
}
