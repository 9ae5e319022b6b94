//! Transparent capture inside a pod: an nftables table, programmed over nfnetlink in one
//! atomic batch, that sends the pod's outbound TCP to its proxy's outbound listener and
//! inbound TCP to its inbound listener. Written out, the table is:
//!
//! ```text
//! table ip weft {
//!   chain output { type nat hook output priority -100;
//!     meta mark PROXY_MARK return              # the proxy's own connections
//!     ip daddr 127.0.0.0/8 return              # loopback stays loopback
//!     ip daddr HOST tcp dport 15012 return     # (each exempt destination) the control plane
//!     meta l4proto tcp dnat to 127.0.0.1:15001
//!   }
//!   chain prerouting { type nat hook prerouting priority -100;
//!     tcp dport 15021 return                   # (each exempt port) readiness, metrics, tunnel
//!     meta l4proto tcp dnat to POD_IP:15006
//!   }
//! }
//! ```
//! The proxy reads the original destination back with `SO_ORIGINAL_DST`.

use std::io;
use std::net::{Ipv4Addr, SocketAddrV4};

use nix::sys::socket::SockProtocol;

use super::netlink::{Msg, NLM_F_ACK, NLM_F_APPEND, NLM_F_CREATE, NLM_F_REQUEST, Socket};

/// The table's name inside every pod.
pub const TABLE: &str = "weft";

pub(super) const NFNL_SUBSYS_NFTABLES: u16 = 10;
pub(super) const BATCH_BEGIN: u16 = 0x10;
pub(super) const BATCH_END: u16 = 0x11;
pub(super) const NEWTABLE: u16 = 0;
pub(super) const DELTABLE: u16 = 2;
const NEWCHAIN: u16 = 3;
const NEWRULE: u16 = 6;
pub(super) const NFPROTO_IPV4: u8 = 2;

const LIST_ELEM: u16 = 1;
const EXPR_NAME: u16 = 1;
const EXPR_DATA: u16 = 2;
pub(super) const DATA_VALUE: u16 = 1;
const DATA_VERDICT: u16 = 2;
const VERDICT_CODE: u16 = 1;
const NFT_RETURN: i32 = -5;
const NF_ACCEPT: u32 = 1;
const REG_VERDICT: u32 = 0;
pub(super) const REG_1: u32 = 1;
const REG_2: u32 = 2;
const META_MARK: u32 = 3;
pub(super) const META_L4PROTO: u32 = 16;
pub(super) const NETWORK_HEADER: u32 = 1;
const TRANSPORT_HEADER: u32 = 2;
pub(super) const IPPROTO_TCP: u8 = 6;
const HOOK_PREROUTING: u32 = 0;
pub(super) const HOOK_OUTPUT: u32 = 3;

/// What a pod's capture rules redirect, and what they let pass.
#[derive(Debug, Clone)]
pub struct Capture {
    pub pod_ip: Ipv4Addr,
    pub outbound_port: u16,
    pub inbound_port: u16,
    /// Socket mark of the proxy's own connections.
    pub proxy_mark: u32,
    /// Inbound ports that reach the pod itself (the proxy's tunnel, metrics, readiness).
    pub inbound_exempt_ports: Vec<u16>,
    /// Destinations the pod reaches directly (the control plane).
    pub outbound_exempt: Vec<SocketAddrV4>,
}

/// `struct nfgenmsg`: family, version, resource id (big-endian).
pub(super) fn nfgen(family: u8, res_id: u16) -> [u8; 4] {
    let id = res_id.to_be_bytes();
    [family, 0, id[0], id[1]]
}

pub(super) fn msg(ty: u16, flags: u16, what: String) -> Msg {
    Msg::new(
        (NFNL_SUBSYS_NFTABLES << 8) | ty,
        NLM_F_REQUEST | NLM_F_ACK | flags,
        what,
    )
    .raw(&nfgen(NFPROTO_IPV4, 0))
}

fn chain(name: &str, hook: u32) -> Msg {
    // Priority -100: the NAT hook's own (dstnat).
    base_chain(TABLE, name, hook, "nat", -100)
}

/// A base chain of `table` on `hook`, of type `kind` (`nat`, `filter`), accepting by default.
pub(super) fn base_chain(table: &str, name: &str, hook: u32, kind: &str, priority: i32) -> Msg {
    msg(
        NEWCHAIN,
        NLM_F_CREATE,
        format!("adding chain {table} {name}"),
    )
    .str(1, table) // NFTA_CHAIN_TABLE
    .str(3, name) // NFTA_CHAIN_NAME
    .begin(4) // NFTA_CHAIN_HOOK
    .be32(1, hook) // NFTA_HOOK_HOOKNUM
    .be32(2, priority as u32) // NFTA_HOOK_PRIORITY
    .end()
    .be32(5, NF_ACCEPT) // NFTA_CHAIN_POLICY
    .str(7, kind) // NFTA_CHAIN_TYPE
}

/// One rule: `exprs` appends its expressions.
fn rule(chain: &str, what: String, exprs: impl FnOnce(Msg) -> Msg) -> Msg {
    rule_in(TABLE, chain, what, exprs)
}

/// One rule in a chain of `table`.
pub(super) fn rule_in(
    table: &str,
    chain: &str,
    what: String,
    exprs: impl FnOnce(Msg) -> Msg,
) -> Msg {
    let m = msg(
        NEWRULE,
        NLM_F_CREATE | NLM_F_APPEND,
        format!("adding rule `{what}` to {table} {chain}"),
    )
    .str(1, table) // NFTA_RULE_TABLE
    .str(2, chain) // NFTA_RULE_CHAIN
    .begin(4); // NFTA_RULE_EXPRESSIONS
    exprs(m).end()
}

pub(super) fn expr(m: Msg, name: &str, body: impl FnOnce(Msg) -> Msg) -> Msg {
    body(m.begin(LIST_ELEM).str(EXPR_NAME, name).begin(EXPR_DATA))
        .end()
        .end()
}

pub(super) fn meta(m: Msg, key: u32) -> Msg {
    expr(m, "meta", |m| m.be32(1, REG_1).be32(2, key))
}

pub(super) fn payload(m: Msg, base: u32, offset: u32, len: u32) -> Msg {
    expr(m, "payload", |m| {
        m.be32(1, REG_1).be32(2, base).be32(3, offset).be32(4, len)
    })
}

/// `reg 1 == value`, else the rule stops.
pub(super) fn eq(m: Msg, value: &[u8]) -> Msg {
    expr(m, "cmp", |m| {
        m.be32(1, REG_1)
            .be32(2, 0) // NFT_CMP_EQ
            .begin(3)
            .attr(DATA_VALUE, value)
            .end()
    })
}

pub(super) fn load(m: Msg, reg: u32, value: &[u8]) -> Msg {
    expr(m, "immediate", |m| {
        m.be32(1, reg).begin(2).attr(DATA_VALUE, value).end()
    })
}

pub(super) fn ret(m: Msg) -> Msg {
    expr(m, "immediate", |m| {
        m.be32(1, REG_VERDICT)
            .begin(2)
            .begin(DATA_VERDICT)
            .be32(VERDICT_CODE, NFT_RETURN as u32)
            .end()
            .end()
    })
}

pub(super) fn tcp(m: Msg) -> Msg {
    eq(meta(m, META_L4PROTO), &[IPPROTO_TCP])
}

pub(super) fn dport(m: Msg, port: u16) -> Msg {
    eq(payload(tcp(m), TRANSPORT_HEADER, 2, 2), &port.to_be_bytes())
}

pub(super) fn daddr(m: Msg, prefix_bytes: &[u8]) -> Msg {
    eq(
        payload(m, NETWORK_HEADER, 16, prefix_bytes.len() as u32),
        prefix_bytes,
    )
}

pub(super) fn dnat(m: Msg, to: SocketAddrV4) -> Msg {
    let m = load(
        load(tcp(m), REG_1, &to.ip().octets()),
        REG_2,
        &to.port().to_be_bytes(),
    );
    expr(m, "nat", |m| {
        m.be32(1, 1) // NFT_NAT_DNAT
            .be32(2, NFPROTO_IPV4 as u32)
            .be32(3, REG_1)
            .be32(4, REG_1)
            .be32(5, REG_2)
            .be32(6, REG_2)
            .be32(7, 3) // NF_NAT_RANGE_MAP_IPS | NF_NAT_RANGE_PROTO_SPECIFIED
    })
}

/// The whole capture table as one batch.
fn batch(c: &Capture) -> Vec<Msg> {
    let outbound = SocketAddrV4::new(Ipv4Addr::LOCALHOST, c.outbound_port);
    let inbound = SocketAddrV4::new(c.pod_ip, c.inbound_port);
    // Add (so the delete cannot fail), delete, add again: one atomic batch that replaces any
    // earlier table (a pod switching back to a proxy).
    let table = || msg(NEWTABLE, NLM_F_CREATE, format!("adding table ip {TABLE}")).str(1, TABLE);
    let mut msgs = vec![
        Msg::new(BATCH_BEGIN, NLM_F_REQUEST, "starting a batch")
            .raw(&nfgen(0, NFNL_SUBSYS_NFTABLES)),
        table(),
        msg(DELTABLE, 0, format!("replacing table ip {TABLE}")).str(1, TABLE),
        table(),
        chain("output", HOOK_OUTPUT),
        chain("prerouting", HOOK_PREROUTING),
        rule(
            "output",
            format!("meta mark {:#x} return", c.proxy_mark),
            |m| ret(eq(meta(m, META_MARK), &c.proxy_mark.to_ne_bytes())),
        ),
        rule("output", "ip daddr 127.0.0.0/8 return".into(), |m| {
            ret(daddr(m, &[127]))
        }),
    ];
    for dst in &c.outbound_exempt {
        msgs.push(rule(
            "output",
            format!("ip daddr {} tcp dport {} return", dst.ip(), dst.port()),
            |m| ret(dport(daddr(m, &dst.ip().octets()), dst.port())),
        ));
    }
    msgs.push(rule("output", format!("tcp dnat to {outbound}"), |m| {
        dnat(m, outbound)
    }));
    for port in &c.inbound_exempt_ports {
        msgs.push(rule(
            "prerouting",
            format!("tcp dport {port} return"),
            |m| ret(dport(m, *port)),
        ));
    }
    msgs.push(rule("prerouting", format!("tcp dnat to {inbound}"), |m| {
        dnat(m, inbound)
    }));
    msgs.push(
        Msg::new(BATCH_END, NLM_F_REQUEST, "ending a batch").raw(&nfgen(0, NFNL_SUBSYS_NFTABLES)),
    );
    msgs
}

/// Installs (or replaces) the capture table in the calling thread's network namespace.
pub fn install(c: &Capture) -> io::Result<()> {
    Socket::open(SockProtocol::NetlinkNetFilter)?.request(batch(c))
}

/// Removes the table `name` from the calling thread's network namespace; one that is not there
/// is already gone.
pub fn remove(name: &str) -> io::Result<()> {
    let msgs = vec![
        Msg::new(BATCH_BEGIN, NLM_F_REQUEST, "starting a batch")
            .raw(&nfgen(0, NFNL_SUBSYS_NFTABLES)),
        msg(NEWTABLE, NLM_F_CREATE, format!("adding table ip {name}")).str(1, name),
        msg(DELTABLE, 0, format!("removing table ip {name}")).str(1, name),
        Msg::new(BATCH_END, NLM_F_REQUEST, "ending a batch").raw(&nfgen(0, NFNL_SUBSYS_NFTABLES)),
    ];
    Socket::open(SockProtocol::NetlinkNetFilter)?.request(msgs)
}
