//! One raw HTTP/1.1 client for tests: a GET with `Connection: close`, read to the end and
//! parsed into status, headers and body (`Content-Length`, chunked, or up to the close).
//!
//! Raw on purpose: it sends exactly one request on a fresh connection, so what a test sees is
//! what the server wrote, with nothing pooled or retried. [`get`] panics on failure (most tests
//! want the reply), [`try_get`] and [`get_blocking`] return the error. Connecting must finish
//! within [`CONNECT_TIMEOUT`], the whole exchange within [`TIMEOUT`].

use std::io::{Read, Write};
use std::net::SocketAddr;
use std::time::Duration;

use http::{HeaderMap, HeaderName, HeaderValue};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// How long connecting may take.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// How long a whole request and reply may take.
pub const TIMEOUT: Duration = Duration::from_secs(10);

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{0}")]
    Io(#[from] std::io::Error),
    #[error("no complete reply within {0:?}")]
    Timeout(Duration),
    #[error("the connection closed without a reply")]
    Closed,
    #[error("not an HTTP/1.x reply ({0}): {1:?}")]
    Malformed(&'static str, String),
}

/// What the server answered.
#[derive(Debug, Clone)]
pub struct Reply {
    pub status: u16,
    pub headers: HeaderMap,
    /// The body as text (lossy UTF-8), de-chunked.
    pub body: String,
}

impl Reply {
    /// The value of header `name`; empty when absent.
    pub fn header(&self, name: &str) -> &str {
        self.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
    }

    /// The body as JSON; panics with the body when it is not.
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.body)
            .unwrap_or_else(|e| panic!("{e}: status {} body {:?}", self.status, self.body))
    }
}

fn request(host: &str, path: &str) -> String {
    format!("GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n")
}

/// GET `path` from `addr` with `Host: host`; panics naming the request when it fails.
pub async fn get(addr: SocketAddr, host: &str, path: &str) -> Reply {
    try_get(addr, host, path)
        .await
        .unwrap_or_else(|e| panic!("GET http://{addr}{path} (Host: {host}): {e}"))
}

/// GET `path` from `addr` with `Host: host`.
pub async fn try_get(addr: SocketAddr, host: &str, path: &str) -> Result<Reply, Error> {
    let exchange = async {
        let mut s = tokio::time::timeout(CONNECT_TIMEOUT, tokio::net::TcpStream::connect(addr))
            .await
            .map_err(|_| Error::Timeout(CONNECT_TIMEOUT))??;
        s.write_all(request(host, path).as_bytes()).await?;
        let mut raw = Vec::new();
        s.read_to_end(&mut raw).await?;
        parse(&raw)
    };
    tokio::time::timeout(TIMEOUT, exchange)
        .await
        .map_err(|_| Error::Timeout(TIMEOUT))?
}

/// [`try_get`] from a plain thread.
pub fn get_blocking(addr: SocketAddr, host: &str, path: &str) -> Result<Reply, Error> {
    let mut s = std::net::TcpStream::connect_timeout(&addr, CONNECT_TIMEOUT)?;
    s.set_read_timeout(Some(TIMEOUT))?;
    s.set_write_timeout(Some(TIMEOUT))?;
    s.write_all(request(host, path).as_bytes())?;
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).map_err(|e| match e.kind() {
        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut => Error::Timeout(TIMEOUT),
        _ => Error::Io(e),
    })?;
    parse(&raw)
}

/// Parses a whole HTTP/1.x reply as read up to the connection's close.
pub fn parse(raw: &[u8]) -> Result<Reply, Error> {
    if raw.is_empty() {
        return Err(Error::Closed);
    }
    let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
    let end = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .ok_or_else(|| Error::Malformed("no end of headers", text(raw)))?;
    let head = text(&raw[..end]);
    let rest = &raw[end + 4..];
    let mut lines = head.split("\r\n");
    let status_line = lines.next().unwrap_or_default();
    let status = match status_line.split(' ').collect::<Vec<_>>()[..] {
        [version, code, ..] if version.starts_with("HTTP/1.") => code.parse().ok(),
        _ => None,
    }
    .ok_or_else(|| Error::Malformed("bad status line", head.clone()))?;
    let mut headers = HeaderMap::new();
    for line in lines {
        let (name, value) = line
            .split_once(':')
            .ok_or_else(|| Error::Malformed("bad header line", line.to_string()))?;
        let name = HeaderName::from_bytes(name.trim().as_bytes())
            .map_err(|_| Error::Malformed("bad header name", line.to_string()))?;
        let value = HeaderValue::from_str(value.trim())
            .map_err(|_| Error::Malformed("bad header value", line.to_string()))?;
        headers.append(name, value);
    }
    let chunked = headers
        .get("transfer-encoding")
        .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"chunked"));
    let length = headers
        .get("content-length")
        .and_then(|v| v.to_str().ok()?.parse::<usize>().ok());
    let body = if chunked {
        dechunk(rest).ok_or_else(|| Error::Malformed("bad chunked body", text(rest)))?
    } else if let Some(n) = length {
        rest.get(..n)
            .ok_or_else(|| Error::Malformed("body shorter than Content-Length", text(rest)))?
            .to_vec()
    } else {
        rest.to_vec()
    };
    Ok(Reply {
        status,
        headers,
        body: text(&body),
    })
}

/// The data of a chunked body (trailers ignored); None when it is cut short or malformed.
fn dechunk(mut rest: &[u8]) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    loop {
        let eol = rest.windows(2).position(|w| w == b"\r\n")?;
        let size = std::str::from_utf8(&rest[..eol]).ok()?;
        let size = usize::from_str_radix(size.split(';').next()?.trim(), 16).ok()?;
        rest = &rest[eol + 2..];
        if size == 0 {
            return Some(out);
        }
        out.extend_from_slice(rest.get(..size)?);
        rest = rest.get(size..)?.strip_prefix(b"\r\n")?;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_content_length_chunked_and_close_delimited_bodies() {
        let r = parse(
            b"HTTP/1.1 404 Not Found\r\ncontent-length: 4\r\nx-a: 1\r\nx-a: 2\r\n\r\nnopeEXTRA",
        )
        .unwrap();
        assert_eq!((r.status, r.body.as_str()), (404, "nope"));
        assert_eq!(r.headers.get_all("x-a").iter().count(), 2);
        assert_eq!(r.header("x-missing"), "");
        let r = parse(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2;x=y\r\nde\r\n0\r\n\r\n").unwrap();
        assert_eq!(r.body, "abcde");
        let r = parse(b"HTTP/1.0 503 Service Unavailable\r\nServer: t\r\n\r\n{\"a\":1}").unwrap();
        assert_eq!((r.status, r.header("server")), (503, "t"));
        assert_eq!(r.json()["a"], 1);
    }

    #[test]
    fn refuses_what_is_not_a_whole_reply() {
        assert!(matches!(parse(b""), Err(Error::Closed)));
        assert!(matches!(
            parse(b"SSH-2.0-x\r\n\r\n"),
            Err(Error::Malformed(..))
        ));
        assert!(matches!(
            parse(b"HTTP/1.1 200 OK\r\n"),
            Err(Error::Malformed(..))
        ));
        let cut = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nab";
        assert!(matches!(parse(cut), Err(Error::Malformed(..))));
    }

    #[tokio::test]
    async fn gets_from_a_server_async_and_blocking() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let server = tokio::spawn(async move {
            for _ in 0..2 {
                let (mut s, _) = listener.accept().await.unwrap();
                let mut buf = vec![0; 1024];
                let n = s.read(&mut buf).await.unwrap();
                let req = String::from_utf8_lossy(&buf[..n]).into_owned();
                let host = req.lines().find_map(|l| l.strip_prefix("Host: ")).unwrap();
                let body = format!("{} {host}", req.split(' ').nth(1).unwrap());
                let reply = format!(
                    "HTTP/1.1 200 OK\r\ncontent-length: {}\r\n\r\n{body}",
                    body.len()
                );
                s.write_all(reply.as_bytes()).await.unwrap();
            }
        });
        assert_eq!(get(addr, "web", "/a").await.body, "/a web");
        let blocking = tokio::task::spawn_blocking(move || get_blocking(addr, "x", "/b"));
        assert_eq!(blocking.await.unwrap().unwrap().body, "/b x");
        server.await.unwrap();
    }
}
