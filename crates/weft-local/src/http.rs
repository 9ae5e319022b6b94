//! A tiny HTTP/1.1 GET for readiness checks and admin reads: status code and body, nothing
//! more. `get` runs on the host; `get_in_pod` inside a pod's network namespace (a proxy's
//! admin API listens on the pod's loopback only).

use std::io::{Read, Write};
use std::net::SocketAddr;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

fn request(addr: SocketAddr, path: &str) -> String {
    format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n")
}

fn parse(addr: SocketAddr, buf: &[u8]) -> std::io::Result<(u16, String)> {
    let text = String::from_utf8_lossy(buf).into_owned();
    let code = text
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .ok_or_else(|| std::io::Error::other(format!("no HTTP status from {addr}")))?;
    let body = text
        .split_once("\r\n\r\n")
        .map_or("", |(_, b)| b)
        .to_string();
    Ok((code, body))
}

/// `GET path` on `addr`; the status code and body.
pub async fn get(
    addr: SocketAddr,
    path: &str,
    timeout: Duration,
) -> std::io::Result<(u16, String)> {
    let fut = async {
        let mut s = TcpStream::connect(addr).await?;
        s.write_all(request(addr, path).as_bytes()).await?;
        let mut buf = Vec::new();
        s.read_to_end(&mut buf).await?;
        parse(addr, &buf)
    };
    tokio::time::timeout(timeout, fut)
        .await
        .unwrap_or_else(|_| Err(std::io::Error::other(format!("no answer from {addr}"))))
}

/// `GET path` on `addr` from inside the network namespace `netns` (blocking).
pub fn get_in_pod(
    netns: &str,
    addr: SocketAddr,
    path: &str,
    timeout: Duration,
) -> std::io::Result<(u16, String)> {
    let path = path.to_string();
    crate::net::in_netns(netns, move || {
        let mut s = std::net::TcpStream::connect_timeout(&addr, timeout)?;
        s.set_read_timeout(Some(timeout))?;
        s.write_all(request(addr, &path).as_bytes())?;
        let mut buf = Vec::new();
        s.read_to_end(&mut buf)?;
        parse(addr, &buf)
    })
}
