//! Protocol detection from the first bytes a client sends: HTTP/2 prior knowledge (the
//! connection preface), HTTP/1.x (a method token and a space), else opaque TCP. Bytes are
//! peeked, not consumed. A client that sends nothing within the timeout (a server-first
//! protocol) is TCP.

use std::time::Duration;

use bytes::Bytes;
use tokio::io::AsyncReadExt;
use tokio::net::TcpStream;

use crate::io::{Io, Rewind};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Detected {
    Http1,
    Http2,
    Tcp,
}

/// How long a connection may stay silent before it is taken for opaque TCP (server-first
/// protocols speak only after the client has waited).
pub const DETECT_TIMEOUT: Duration = Duration::from_millis(100);

const PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
const METHODS: &[&[u8]] = &[
    b"GET ",
    b"POST ",
    b"PUT ",
    b"HEAD ",
    b"DELETE ",
    b"OPTIONS ",
    b"PATCH ",
    b"CONNECT ",
    b"TRACE ",
];

/// What `buf` (the first bytes) says, or None when more bytes are needed to tell.
pub fn classify(buf: &[u8]) -> Option<Detected> {
    let n = buf.len().min(PREFACE.len());
    if buf[..n] == PREFACE[..n] {
        return (n == PREFACE.len()).then_some(Detected::Http2);
    }
    let mut undecided = false;
    for m in METHODS {
        let k = buf.len().min(m.len());
        if buf[..k] == m[..k] {
            if k == m.len() {
                return Some(Detected::Http1);
            }
            undecided = true;
        }
    }
    if undecided || buf.is_empty() {
        None
    } else {
        Some(Detected::Tcp)
    }
}

/// Peeks at `stream` until the protocol is known or `timeout` passes.
pub async fn detect(stream: &TcpStream, timeout: Duration) -> Detected {
    let deadline = tokio::time::Instant::now() + timeout;
    let mut buf = [0u8; 24];
    loop {
        let peeked = tokio::time::timeout_at(deadline, stream.peek(&mut buf)).await;
        let n = match peeked {
            Ok(Ok(0)) | Ok(Err(_)) | Err(_) => return Detected::Tcp,
            Ok(Ok(n)) => n,
        };
        if let Some(d) = classify(&buf[..n]) {
            return d;
        }
        // Part of a method or preface arrived; wait briefly for the rest.
        if tokio::time::Instant::now() >= deadline {
            return Detected::Tcp;
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
}

/// Reads from `stream` until the protocol is known or `timeout` passes (for streams that
/// cannot peek, like tunnel streams); the bytes read are put back.
pub async fn detect_read<S: Io>(mut stream: S, timeout: Duration) -> (Detected, Rewind<S>) {
    let deadline = tokio::time::Instant::now() + timeout;
    let mut buf = Vec::with_capacity(PREFACE.len());
    let detected = loop {
        let mut chunk = [0u8; 24];
        let want = PREFACE.len() - buf.len();
        match tokio::time::timeout_at(deadline, stream.read(&mut chunk[..want])).await {
            Ok(Ok(n)) if n > 0 => buf.extend_from_slice(&chunk[..n]),
            _ => break Detected::Tcp,
        }
        if let Some(d) = classify(&buf) {
            break d;
        }
    };
    (detected, Rewind::new(Bytes::from(buf), stream))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classifies_first_bytes() {
        assert_eq!(classify(b"GET / HTTP/1.1\r\n"), Some(Detected::Http1));
        assert_eq!(classify(b"DELETE /x"), Some(Detected::Http1));
        assert_eq!(classify(PREFACE), Some(Detected::Http2));
        assert_eq!(classify(b"PRI * HT"), None, "partial preface waits");
        assert_eq!(classify(b"GE"), None, "partial method waits");
        assert_eq!(
            classify(b"\x16\x03\x01\x02"),
            Some(Detected::Tcp),
            "TLS is opaque"
        );
        assert_eq!(
            classify(b"get / HTTP/1.1"),
            Some(Detected::Tcp),
            "methods are case-sensitive"
        );
        assert_eq!(classify(b"*1\r\n$4\r\nPING"), Some(Detected::Tcp));
    }

    #[tokio::test]
    async fn reading_detection_puts_the_bytes_back() {
        let (mut a, b) = tokio::io::duplex(64);
        tokio::io::AsyncWriteExt::write_all(&mut a, b"GET /x HTTP/1.1\r\n")
            .await
            .unwrap();
        let (d, mut rewound) = detect_read(b, Duration::from_secs(1)).await;
        assert_eq!(d, Detected::Http1);
        let mut got = vec![0u8; 17];
        rewound.read_exact(&mut got).await.unwrap();
        assert_eq!(&got, b"GET /x HTTP/1.1\r\n");
    }
}
