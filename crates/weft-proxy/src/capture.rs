//! Reads where a redirected connection was going: `SO_ORIGINAL_DST` on a socket that packet
//! redirection (REDIRECT) delivered to the proxy.

use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};

use nix::sys::socket::{getsockopt, sockopt};
use tokio::net::TcpStream;

/// The original destination of a redirected IPv4 connection.
pub fn original_dst(stream: &TcpStream) -> std::io::Result<SocketAddr> {
    let addr = getsockopt(stream, sockopt::OriginalDst).map_err(std::io::Error::from)?;
    let ip = Ipv4Addr::from(u32::from_be(addr.sin_addr.s_addr));
    let port = u16::from_be(addr.sin_port);
    Ok(SocketAddr::V4(SocketAddrV4::new(ip, port)))
}
