//! Who listens where, from a network namespace's TCP socket table (`/proc/thread-self/net/tcp`
//! read by a thread inside it): whether a proxy has opened its listener in a pod, checked
//! without connecting to it (a connection would be a failed TLS handshake in its log).

use std::net::{Ipv4Addr, SocketAddrV4};

/// The state column's value for a listening socket.
const LISTEN: &str = "0A";

/// Whether `table` (the text of `/proc/net/tcp`) has a socket listening on `addr`, or on the
/// unspecified address at its port.
pub fn listens(table: &str, addr: SocketAddrV4) -> bool {
    table.lines().skip(1).any(|line| {
        let mut cols = line.split_whitespace();
        let (Some(local), Some(state)) = (cols.nth(1), cols.nth(1)) else {
            return false;
        };
        state == LISTEN
            && local_address(local).is_some_and(|(ip, port)| {
                port == addr.port() && (ip == *addr.ip() || ip.is_unspecified())
            })
    })
}

/// `0100007F:1F90` → 127.0.0.1, 8080: the address is the kernel's 32-bit word in host byte
/// order, the port big-endian, both in hex.
fn local_address(s: &str) -> Option<(Ipv4Addr, u16)> {
    let (ip, port) = s.split_once(':')?;
    let ip = u32::from_str_radix(ip, 16).ok()?;
    let port = u16::from_str_radix(port, 16).ok()?;
    Some((Ipv4Addr::from(ip.to_ne_bytes()), port))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A host word for `ip` as the kernel prints it.
    fn word(ip: [u8; 4]) -> String {
        format!("{:08X}", u32::from_ne_bytes(ip))
    }

    #[test]
    fn a_listener_on_the_address_or_on_every_address_counts() {
        let header = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n";
        let row = |local: &str, state: &str| {
            format!(
                "   0: {local} 00000000:0000 {state} 00000000:00000000 00:00000000 00000000     0        0 1 1 0 100 0 0 10 0\n"
            )
        };
        let pod: SocketAddrV4 = "198.19.70.5:15008".parse().unwrap();
        let any = format!("{}:3AA0", word([0, 0, 0, 0]));
        let own = format!("{}:3AA0", word([198, 19, 70, 5]));
        let other = format!("{}:3AA0", word([198, 19, 70, 6]));
        let app = format!("{}:1F90", word([0, 0, 0, 0]));
        assert!(listens(&(header.to_string() + &row(&any, "0A")), pod));
        assert!(listens(&(header.to_string() + &row(&own, "0A")), pod));
        assert!(!listens(&(header.to_string() + &row(&other, "0A")), pod));
        assert!(!listens(&(header.to_string() + &row(&app, "0A")), pod));
        // Connected, not listening (an established connection on the port).
        assert!(!listens(&(header.to_string() + &row(&own, "01")), pod));
        assert!(!listens(header, pod));
        assert_eq!(
            local_address(&format!("{}:1F90", word([127, 0, 0, 1]))),
            Some((Ipv4Addr::LOCALHOST, 8080))
        );
    }
}
