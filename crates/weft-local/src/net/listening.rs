//! Who listens where, from a network namespace's TCP socket tables (`/proc/thread-self/net/tcp`
//! and `tcp6`, read by a thread inside it): whether a proxy has opened its listener in a pod,
//! checked without connecting to it (a connection would be a failed TLS handshake in its log),
//! and where a pod's app listens when it does not where its Workload says.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4};

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

/// Every listening socket's local address in `tcp` and `tcp6` (the texts of `/proc/net/tcp` and
/// `/proc/net/tcp6`), in table order.
pub fn listeners(tcp: &str, tcp6: &str) -> Vec<SocketAddr> {
    let rows = |table: &str| -> Vec<(String, String)> {
        (table.lines().skip(1))
            .filter_map(|line| {
                let mut cols = line.split_whitespace();
                let local = cols.nth(1)?;
                let state = cols.nth(1)?;
                Some((local.to_string(), state.to_string()))
            })
            .filter(|(_, state)| state == LISTEN)
            .collect()
    };
    let v4 = rows(tcp).into_iter().filter_map(|(local, _)| {
        let (ip, port) = local_address(&local)?;
        Some(SocketAddr::from((ip, port)))
    });
    let v6 = rows(tcp6).into_iter().filter_map(|(local, _)| {
        let (ip, port) = local_address6(&local)?;
        Some(SocketAddr::from((IpAddr::from(ip), port)))
    });
    v4.chain(v6).collect()
}

/// `00000000000000000000000001000000:1F90` → ::1, 8080: four 32-bit words in host byte order.
fn local_address6(s: &str) -> Option<(Ipv6Addr, u16)> {
    let (ip, port) = s.split_once(':')?;
    if ip.len() != 32 {
        return None;
    }
    let mut bytes = [0u8; 16];
    for (i, chunk) in bytes.chunks_mut(4).enumerate() {
        let word = u32::from_str_radix(ip.get(8 * i..8 * i + 8)?, 16).ok()?;
        chunk.copy_from_slice(&word.to_ne_bytes());
    }
    let port = u16::from_str_radix(port, 16).ok()?;
    Some((Ipv6Addr::from(bytes), port))
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

    #[test]
    fn every_listener_of_both_tables_is_read_and_other_sockets_are_not() {
        let header = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n";
        let row = |local: &str, state: &str| {
            format!(
                "   0: {local} 00000000:0000 {state} 00000000:00000000 00:00000000 00000000     0        0 1 1 0 100 0 0 10 0\n"
            )
        };
        let tcp = [
            header.to_string(),
            row(&format!("{}:2382", word([0, 0, 0, 0])), "0A"),
            row(&format!("{}:3A98", word([127, 0, 0, 1])), "0A"),
            // An established connection from the app is no listener.
            row(&format!("{}:9C40", word([198, 19, 89, 2])), "01"),
        ]
        .concat();
        let v6 = |ip: std::net::Ipv6Addr| -> String {
            ip.octets()
                .chunks(4)
                .map(|c| format!("{:08X}", u32::from_ne_bytes([c[0], c[1], c[2], c[3]])))
                .collect()
        };
        let tcp6 = [
            header.to_string(),
            row(
                &format!("{}:2383", v6(std::net::Ipv6Addr::UNSPECIFIED)),
                "0A",
            ),
            row(&format!("{}:1F90", v6(std::net::Ipv6Addr::LOCALHOST)), "0A"),
            "garbage\n".to_string(),
        ]
        .concat();
        let got: Vec<String> = listeners(&tcp, &tcp6)
            .iter()
            .map(|a| a.to_string())
            .collect();
        assert_eq!(
            got,
            ["0.0.0.0:9090", "127.0.0.1:15000", "[::]:9091", "[::1]:8080"]
        );
        assert!(listeners("", "").is_empty());
        assert_eq!(local_address6("0000:1F90"), None);
    }
}
