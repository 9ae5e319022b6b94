//! Service addresses for a pod without a sidecar, as kube-proxy gives them to a node: an
//! nftables table in the pod's own namespace that sends a connection to a Service's VIP and
//! port to one of its ready endpoints, and refuses at once what has nowhere to go. Rebuilt
//! whole in one atomic batch whenever the ready endpoints change. Written out:
//!
//! ```text
//! table ip weft-services {
//!   chain output { type nat hook output priority -100;
//!     # endpoint i of n: numgen random mod (n - i) == 0, so each gets 1/n of the connections
//!     ip daddr VIP tcp dport PORT numgen random mod 2 == 0 dnat to EP1:TARGET
//!     ip daddr VIP tcp dport PORT dnat to EP2:TARGET
//!   }
//!   chain reject { type filter hook output priority 0;
//!     # still addressed to the service range after NAT: no ready endpoint, or no such port
//!     ip daddr SERVICE_CIDR meta l4proto tcp reject with tcp reset
//!     ip daddr SERVICE_CIDR reject with icmp port-unreachable
//!   }
//! }
//! ```

use std::io;
use std::net::{Ipv4Addr, SocketAddrV4};

use nix::sys::socket::SockProtocol;

use super::netlink::{Msg, NLM_F_CREATE, NLM_F_REQUEST, Socket};
use super::nft::{
    BATCH_BEGIN, BATCH_END, DATA_VALUE, DELTABLE, HOOK_OUTPUT, NETWORK_HEADER, NEWTABLE,
    NFNL_SUBSYS_NFTABLES, REG_1, base_chain, dnat, dport, eq, expr, msg, nfgen, payload, rule_in,
    tcp,
};

/// The table's name inside a pod without a sidecar.
pub const TABLE: &str = "weft-services";

const NFT_NG_RANDOM: u32 = 1;
const NFT_REJECT_ICMP_UNREACH: u32 = 0;
const NFT_REJECT_TCP_RST: u32 = 1;
const ICMP_PORT_UNREACH: u8 = 3;

/// What one pod's Service addresses lead to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceNat {
    /// The mesh's service range: what is still addressed to it after translation is refused.
    pub service_cidr: (Ipv4Addr, u8),
    pub ports: Vec<VipPort>,
}

/// One Service port and its ready endpoints (pod address and target port).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VipPort {
    pub vip: SocketAddrV4,
    pub endpoints: Vec<SocketAddrV4>,
}

/// `ip daddr BASE/LEN`: the destination address masked, then compared.
fn daddr_in(m: Msg, base: Ipv4Addr, len: u8) -> Msg {
    let mask = u32::MAX
        .checked_shl(32 - u32::from(len.min(32)))
        .unwrap_or(0);
    let base = (u32::from(base) & mask).to_be_bytes();
    let m = payload(m, NETWORK_HEADER, 16, 4);
    let m = expr(m, "bitwise", |m| {
        m.be32(1, REG_1) // NFTA_BITWISE_SREG
            .be32(2, REG_1) // NFTA_BITWISE_DREG
            .be32(3, 4) // NFTA_BITWISE_LEN
            .begin(4) // NFTA_BITWISE_MASK
            .attr(DATA_VALUE, &mask.to_be_bytes())
            .end()
            .begin(5) // NFTA_BITWISE_XOR
            .attr(DATA_VALUE, &[0; 4])
            .end()
    });
    eq(m, &base)
}

/// `numgen random mod N == 0`.
fn one_in(m: Msg, n: u32) -> Msg {
    let m = expr(m, "numgen", |m| {
        m.be32(1, REG_1) // NFTA_NG_DREG
            .be32(2, n) // NFTA_NG_MODULUS
            .be32(3, NFT_NG_RANDOM) // NFTA_NG_TYPE
    });
    eq(m, &0u32.to_ne_bytes())
}

fn reject(m: Msg, kind: u32) -> Msg {
    expr(m, "reject", |m| {
        let m = m.be32(1, kind); // NFTA_REJECT_TYPE
        if kind == NFT_REJECT_TCP_RST {
            m
        } else {
            m.attr(2, &[ICMP_PORT_UNREACH]) // NFTA_REJECT_ICMP_CODE
        }
    })
}

/// The whole table as one batch that replaces any earlier one atomically: add (so the delete
/// cannot fail), delete, add again with its chains and rules.
fn batch(nat: &ServiceNat) -> Vec<Msg> {
    let table = || msg(NEWTABLE, NLM_F_CREATE, format!("adding table ip {TABLE}")).str(1, TABLE);
    let mut msgs = vec![
        Msg::new(BATCH_BEGIN, NLM_F_REQUEST, "starting a batch")
            .raw(&nfgen(0, NFNL_SUBSYS_NFTABLES)),
        table(),
        msg(DELTABLE, 0, format!("replacing table ip {TABLE}")).str(1, TABLE),
        table(),
        base_chain(TABLE, "output", HOOK_OUTPUT, "nat", -100),
        base_chain(TABLE, "reject", HOOK_OUTPUT, "filter", 0),
    ];
    for p in &nat.ports {
        let n = p.endpoints.len();
        for (i, ep) in p.endpoints.iter().enumerate() {
            let left = (n - i) as u32;
            let pick = if left > 1 {
                format!("numgen random mod {left} == 0 ")
            } else {
                String::new()
            };
            let what = format!(
                "ip daddr {} tcp dport {} {pick}dnat to {ep}",
                p.vip.ip(),
                p.vip.port()
            );
            msgs.push(rule_in(TABLE, "output", what, |m| {
                let m = dport(daddr_in(m, *p.vip.ip(), 32), p.vip.port());
                let m = if left > 1 { one_in(m, left) } else { m };
                dnat(m, *ep)
            }));
        }
    }
    let (base, len) = nat.service_cidr;
    msgs.push(rule_in(
        TABLE,
        "reject",
        format!("ip daddr {base}/{len} meta l4proto tcp reject with tcp reset"),
        |m| reject(tcp(daddr_in(m, base, len)), NFT_REJECT_TCP_RST),
    ));
    msgs.push(rule_in(
        TABLE,
        "reject",
        format!("ip daddr {base}/{len} reject"),
        |m| reject(daddr_in(m, base, len), NFT_REJECT_ICMP_UNREACH),
    ));
    msgs.push(
        Msg::new(BATCH_END, NLM_F_REQUEST, "ending a batch").raw(&nfgen(0, NFNL_SUBSYS_NFTABLES)),
    );
    msgs
}

/// Installs (or replaces) the table in the calling thread's network namespace.
pub fn install(nat: &ServiceNat) -> io::Result<()> {
    Socket::open(SockProtocol::NetlinkNetFilter)?.request(batch(nat))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_rule_per_ready_endpoint_and_two_rejects() {
        let nat = ServiceNat {
            service_cidr: (Ipv4Addr::new(198, 19, 30, 128), 25),
            ports: vec![
                VipPort {
                    vip: "198.19.30.129:80".parse().unwrap(),
                    endpoints: vec![
                        "198.19.30.2:8080".parse().unwrap(),
                        "198.19.30.3:8080".parse().unwrap(),
                        "198.19.30.4:8080".parse().unwrap(),
                    ],
                },
                VipPort {
                    vip: "198.19.30.130:80".parse().unwrap(),
                    endpoints: vec![],
                },
            ],
        };
        let rules: Vec<String> = batch(&nat)
            .iter()
            .map(|m| m.what.clone())
            .filter(|w| w.starts_with("adding rule"))
            .collect();
        assert_eq!(
            rules,
            [
                "adding rule `ip daddr 198.19.30.129 tcp dport 80 numgen random mod 3 == 0 dnat to 198.19.30.2:8080` to weft-services output",
                "adding rule `ip daddr 198.19.30.129 tcp dport 80 numgen random mod 2 == 0 dnat to 198.19.30.3:8080` to weft-services output",
                "adding rule `ip daddr 198.19.30.129 tcp dport 80 dnat to 198.19.30.4:8080` to weft-services output",
                "adding rule `ip daddr 198.19.30.128/25 meta l4proto tcp reject with tcp reset` to weft-services reject",
                "adding rule `ip daddr 198.19.30.128/25 reject` to weft-services reject",
            ]
        );
    }
}
