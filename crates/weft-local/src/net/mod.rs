//! The network of a local mesh, programmed over netlink with no external tools: named network
//! namespaces as pods, a bridge the mesh owns, a veth pair per pod, addresses and routes, and
//! the nftables rules that capture a pod's traffic into its sidecar or, in a pod without one,
//! translate Service addresses.

mod link;
mod listening;
mod netlink;
mod netns;
mod nft;
mod services;

use std::io;
use std::net::Ipv4Addr;
use std::path::PathBuf;

pub use nft::{Capture, TABLE as CAPTURE_TABLE};
pub use services::{ServiceNat, TABLE as SERVICES_TABLE, VipPort};

/// Where the namespace of a pod is pinned (`/run/netns/NAME`).
pub fn netns_path(name: &str) -> PathBuf {
    netns::path(name)
}

pub fn create_netns(name: &str) -> io::Result<()> {
    netns::create(name)?;
    // Loopback starts down in a new namespace.
    netns::run_in(name, || link::set_up(&mut link::socket()?, "lo", None))
}

pub fn delete_netns(name: &str) -> io::Result<()> {
    netns::delete(name)
}

/// Processes running in the namespace `name`.
pub fn netns_pids(name: &str) -> Vec<i32> {
    netns::pids(name)
}

/// Runs `f` on a thread inside the namespace `name`.
pub fn in_netns<T: Send + 'static>(
    name: &str,
    f: impl FnOnce() -> io::Result<T> + Send + 'static,
) -> io::Result<T> {
    netns::run_in(name, f)
}

/// A bridge with the host's address on the pods' network, up.
pub fn create_bridge(name: &str, addr: Ipv4Addr, prefix: u8) -> io::Result<()> {
    let mut s = link::socket()?;
    link::add_bridge(&mut s, name)?;
    link::add_address(&mut s, name, addr, prefix)?;
    link::set_up(&mut s, name, None)
}

/// Deletes a link of the host; one that does not exist is already gone.
pub fn delete_link(name: &str) -> io::Result<()> {
    link::delete(&mut link::socket()?, name)
}

pub fn link_exists(name: &str) -> bool {
    link::index(name).is_ok()
}

/// How a pod joins the bridge.
#[derive(Debug, Clone)]
pub struct PodInterface {
    pub bridge: String,
    /// The host end of the veth pair; the pod's end is `eth0`.
    pub host_side: String,
    pub netns: String,
    pub addr: Ipv4Addr,
    pub prefix: u8,
    pub gateway: Ipv4Addr,
}

pub fn add_pod_interface(p: &PodInterface) -> io::Result<()> {
    let ns = std::fs::File::open(netns::path(&p.netns))?;
    let mut s = link::socket()?;
    link::add_veth(&mut s, &p.host_side, "eth0", &ns)?;
    let bridge = link::index(&p.bridge)?;
    link::set_up(&mut s, &p.host_side, Some(bridge))?;
    let (addr, prefix, gateway) = (p.addr, p.prefix, p.gateway);
    netns::run_in(&p.netns, move || {
        let mut s = link::socket()?;
        link::add_address(&mut s, "eth0", addr, prefix)?;
        link::set_up(&mut s, "eth0", None)?;
        link::add_default_route(&mut s, gateway)
    })
}

/// Connects to `addr` from inside `netns` with socket mark `mark` (which capture lets pass),
/// and closes the connection: a TCP readiness probe of a pod's app.
pub fn probe_tcp(netns: &str, addr: std::net::SocketAddr, mark: u32) -> io::Result<()> {
    netns::run_in(netns, move || {
        let s = socket2::Socket::new(
            socket2::Domain::for_address(addr),
            socket2::Type::STREAM,
            None,
        )?;
        s.set_mark(mark)?;
        s.connect_timeout(&addr.into(), std::time::Duration::from_secs(1))
    })
}

/// Installs (or replaces) the Service address translation of a pod without a sidecar inside
/// the namespace `netns`.
pub fn install_service_nat(netns: &str, nat: &ServiceNat) -> io::Result<()> {
    let nat = nat.clone();
    netns::run_in(netns, move || services::install(&nat))
}

/// Installs (or replaces) the capture rules inside the namespace `netns`.
pub fn install_capture(netns: &str, c: &Capture) -> io::Result<()> {
    let c = c.clone();
    netns::run_in(netns, move || nft::install(&c))
}

/// Removes the capture rules from inside the namespace `netns` (a pod leaving the mesh).
pub fn remove_capture(netns: &str) -> io::Result<()> {
    netns::run_in(netns, || nft::remove(CAPTURE_TABLE))
}

/// Removes the Service address translation from inside the namespace `netns` (a pod that now
/// has a proxy, which translates them itself).
pub fn remove_service_nat(netns: &str) -> io::Result<()> {
    netns::run_in(netns, || nft::remove(SERVICES_TABLE))
}

/// Whether a TCP socket listens on `addr` (or on every address at its port) inside the
/// namespace `netns`: seen in the namespace's socket table, without connecting to it.
pub fn listening(netns: &str, addr: std::net::SocketAddrV4) -> io::Result<bool> {
    netns::run_in(netns, move || {
        let table = std::fs::read_to_string("/proc/thread-self/net/tcp")?;
        Ok(listening::listens(&table, addr))
    })
}

/// Every TCP socket listening inside the namespace `netns` (IPv4 and IPv6): where a pod's app
/// listens when it does not where its Workload says.
pub fn listeners(netns: &str) -> io::Result<Vec<std::net::SocketAddr>> {
    netns::run_in(netns, || {
        let tcp = std::fs::read_to_string("/proc/thread-self/net/tcp")?;
        // No IPv6 in the namespace: no table.
        let tcp6 = std::fs::read_to_string("/proc/thread-self/net/tcp6").unwrap_or_default();
        Ok(listening::listeners(&tcp, &tcp6))
    })
}
