//! Links, addresses and routes over rtnetlink: the bridge a mesh owns, each pod's veth pair
//! (one end on the bridge, `eth0` inside the pod), the pod's address and default route.

use std::io;
use std::net::Ipv4Addr;
use std::os::fd::AsRawFd;

use nix::sys::socket::SockProtocol;

use super::netlink::{Msg, NLM_F_ACK, NLM_F_CREATE, NLM_F_EXCL, NLM_F_REQUEST, Socket};

const RTM_NEWLINK: u16 = 16;
const RTM_DELLINK: u16 = 17;
const RTM_NEWADDR: u16 = 20;
const RTM_NEWROUTE: u16 = 24;
const IFLA_IFNAME: u16 = 3;
const IFLA_MASTER: u16 = 10;
const IFLA_LINKINFO: u16 = 18;
const IFLA_NET_NS_FD: u16 = 28;
const IFLA_INFO_KIND: u16 = 1;
const IFLA_INFO_DATA: u16 = 2;
const VETH_INFO_PEER: u16 = 1;
const IFA_ADDRESS: u16 = 1;
const IFA_LOCAL: u16 = 2;
const RTA_GATEWAY: u16 = 5;
const IFF_UP: u32 = 1;
const AF_INET: u8 = 2;
const RT_TABLE_MAIN: u8 = 254;
const RTPROT_BOOT: u8 = 3;
const RTN_UNICAST: u8 = 1;

/// `struct ifinfomsg`: family, type, index, flags and the mask of flags to change.
fn ifinfo(index: i32, flags: u32, change: u32) -> [u8; 16] {
    let mut b = [0u8; 16];
    b[4..8].copy_from_slice(&index.to_ne_bytes());
    b[8..12].copy_from_slice(&flags.to_ne_bytes());
    b[12..16].copy_from_slice(&change.to_ne_bytes());
    b
}

fn create(what: String) -> Msg {
    Msg::new(
        RTM_NEWLINK,
        NLM_F_REQUEST | NLM_F_ACK | NLM_F_CREATE | NLM_F_EXCL,
        what,
    )
    .raw(&ifinfo(0, 0, 0))
}

/// The rtnetlink socket of the calling thread's network namespace.
pub fn socket() -> io::Result<Socket> {
    Socket::open(SockProtocol::NetlinkRoute)
}

pub fn index(name: &str) -> io::Result<u32> {
    nix::net::if_::if_nametoindex(name)
        .map_err(|e| io::Error::new(io::Error::from(e).kind(), format!("link {name}: {e}")))
}

pub fn add_bridge(s: &mut Socket, name: &str) -> io::Result<()> {
    let m = create(format!("creating bridge {name}"))
        .str(IFLA_IFNAME, name)
        .begin(IFLA_LINKINFO)
        .str(IFLA_INFO_KIND, "bridge")
        .end();
    s.request(vec![m])
}

/// A veth pair: `name` here, `peer` inside the namespace open as `netns`.
pub fn add_veth(s: &mut Socket, name: &str, peer: &str, netns: &impl AsRawFd) -> io::Result<()> {
    let m = create(format!("creating veth pair {name}/{peer}"))
        .str(IFLA_IFNAME, name)
        .begin(IFLA_LINKINFO)
        .str(IFLA_INFO_KIND, "veth")
        .begin(IFLA_INFO_DATA)
        .begin(VETH_INFO_PEER)
        .raw(&ifinfo(0, 0, 0))
        .str(IFLA_IFNAME, peer)
        .u32(IFLA_NET_NS_FD, netns.as_raw_fd() as u32)
        .end()
        .end()
        .end();
    s.request(vec![m])
}

/// Brings a link up, optionally enslaving it to a bridge first.
pub fn set_up(s: &mut Socket, name: &str, master: Option<u32>) -> io::Result<()> {
    let mut m = Msg::new(
        RTM_NEWLINK,
        NLM_F_REQUEST | NLM_F_ACK,
        format!("bringing up {name}"),
    )
    .raw(&ifinfo(0, IFF_UP, IFF_UP))
    .str(IFLA_IFNAME, name);
    if let Some(master) = master {
        m = m.u32(IFLA_MASTER, master);
    }
    s.request(vec![m])
}

/// Deletes a link by name; one that does not exist is already gone.
pub fn delete(s: &mut Socket, name: &str) -> io::Result<()> {
    let m = Msg::new(
        RTM_DELLINK,
        NLM_F_REQUEST | NLM_F_ACK,
        format!("deleting link {name}"),
    )
    .raw(&ifinfo(0, 0, 0))
    .str(IFLA_IFNAME, name);
    match s.request(vec![m]) {
        Err(e) if e.raw_os_error() == Some(nix::libc::ENODEV) => Ok(()),
        r => r,
    }
}

pub fn add_address(s: &mut Socket, link: &str, addr: Ipv4Addr, prefix: u8) -> io::Result<()> {
    let index = index(link)?;
    let mut hdr = [0u8; 8];
    hdr[0] = AF_INET;
    hdr[1] = prefix;
    hdr[4..8].copy_from_slice(&index.to_ne_bytes());
    let m = Msg::new(
        RTM_NEWADDR,
        NLM_F_REQUEST | NLM_F_ACK | NLM_F_CREATE | NLM_F_EXCL,
        format!("adding {addr}/{prefix} to {link}"),
    )
    .raw(&hdr)
    .attr(IFA_LOCAL, &addr.octets())
    .attr(IFA_ADDRESS, &addr.octets());
    s.request(vec![m])
}

pub fn add_default_route(s: &mut Socket, gateway: Ipv4Addr) -> io::Result<()> {
    // struct rtmsg: family, dst_len, src_len, tos, table, protocol, scope, type, flags.
    let hdr = [
        AF_INET,
        0,
        0,
        0,
        RT_TABLE_MAIN,
        RTPROT_BOOT,
        0,
        RTN_UNICAST,
        0,
        0,
        0,
        0,
    ];
    let m = Msg::new(
        RTM_NEWROUTE,
        NLM_F_REQUEST | NLM_F_ACK | NLM_F_CREATE | NLM_F_EXCL,
        format!("adding a default route via {gateway}"),
    )
    .raw(&hdr)
    .attr(RTA_GATEWAY, &gateway.octets());
    s.request(vec![m])
}
