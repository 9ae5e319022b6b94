//! Reading taps: one task per proxy opens `GET /tap?…` on its admin API (from inside the pod's
//! network namespace for a sidecar: the socket is made there, then used from here) and sends
//! each line it streams, named by the proxy, to one channel.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use anyhow::Context;
use http_body_util::BodyExt;
use hyper_util::rt::TokioIo;
use tokio::sync::mpsc;
use weft_proxy::tap::{Line, Query};

use super::target::{Admin, Tapped};

const CONNECT: Duration = Duration::from_secs(5);

/// What a tap sends.
#[derive(Debug)]
pub enum Event {
    Line {
        proxy: String,
        line: Box<Line>,
    },
    /// Lines the proxy dropped so far (over the cap or a slow reader).
    Dropped {
        proxy: String,
        count: u64,
    },
    /// The tap of `proxy` ended or could not open.
    Failed {
        proxy: String,
        error: String,
    },
}

/// Starts a tap on every proxy; events arrive on the returned channel until each tap ends.
pub fn open(proxies: Vec<Tapped>, query: &Query) -> mpsc::Receiver<Event> {
    let (tx, rx) = mpsc::channel(1024);
    let path = format!("/tap?{}", query.encode());
    for p in proxies {
        let (tx, path) = (tx.clone(), path.clone());
        tokio::spawn(async move {
            let proxy = p.name.clone();
            if let Err(e) = tap(&p, &path, &tx).await {
                let error = format!("{e:#}");
                let _ = tx.send(Event::Failed { proxy, error }).await;
            }
        });
    }
    rx
}

async fn connect(admin: &Admin) -> anyhow::Result<(tokio::net::TcpStream, SocketAddr)> {
    match admin {
        Admin::Host { addr, .. } => {
            let s = tokio::time::timeout(CONNECT, tokio::net::TcpStream::connect(addr))
                .await
                .map_err(|_| anyhow::anyhow!("no answer from {addr}"))?
                .with_context(|| format!("connecting to {addr}"))?;
            Ok((s, *addr))
        }
        Admin::InPod { netns } => {
            let addr = weft_local::ports::localhost(weft_local::ports::PROXY_ADMIN);
            let ns = netns.clone();
            let s = tokio::task::spawn_blocking(move || {
                weft_local::net::in_netns(&ns, move || {
                    std::net::TcpStream::connect_timeout(&addr, CONNECT)
                })
            })
            .await?
            .with_context(|| format!("connecting to {addr} in network namespace {netns}"))?;
            s.set_nonblocking(true)?;
            Ok((tokio::net::TcpStream::from_std(s)?, addr))
        }
    }
}

async fn tap(p: &Tapped, path: &str, tx: &mpsc::Sender<Event>) -> anyhow::Result<()> {
    let (stream, addr) = connect(&p.admin).await?;
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
    tokio::spawn(conn);
    let req = http::Request::get(path)
        .header(http::header::HOST, addr.to_string())
        .body(http_body_util::Empty::<bytes::Bytes>::new())?;
    let res = sender.send_request(req).await?;
    let status = res.status();
    let mut body = res.into_body();
    if !status.is_success() {
        let text = body
            .collect()
            .await
            .map(|b| b.to_bytes())
            .unwrap_or_default();
        let text = String::from_utf8_lossy(&text);
        anyhow::bail!("the proxy answered {status}: {}", text.trim());
    }
    let only = match p.admin {
        Admin::Host { only, .. } => only,
        Admin::InPod { .. } => None,
    };
    let mut pending = Vec::new();
    while let Some(frame) = body.frame().await {
        let Ok(data) = frame?.into_data() else {
            continue;
        };
        pending.extend_from_slice(&data);
        while let Some(end) = pending.iter().position(|b| *b == b'\n') {
            let raw: Vec<u8> = pending.drain(..=end).collect();
            if let Some(event) = event(&p.name, &raw, only)
                && tx.send(event).await.is_err()
            {
                return Ok(());
            }
        }
    }
    anyhow::bail!("the proxy ended the tap (restarted or draining)")
}

/// The event of one streamed line; None for a line of another ambient pod or a blank one.
fn event(proxy: &str, raw: &[u8], only: Option<IpAddr>) -> Option<Event> {
    let value: serde_json::Value = serde_json::from_slice(raw).ok()?;
    let proxy = proxy.to_string();
    if let Some(count) = value.get("dropped").and_then(|d| d.as_u64()) {
        return Some(Event::Dropped { proxy, count });
    }
    let line: Line = serde_json::from_value(value).ok()?;
    if let Some(ip) = only {
        let ip_of = |a: &Option<String>| a.as_deref().and_then(|a| a.parse::<SocketAddr>().ok());
        let ours = [&line.downstream, &line.destination.upstream]
            .into_iter()
            .any(|a| ip_of(a).is_some_and(|a| a.ip() == ip));
        if !ours {
            return None;
        }
    }
    Some(Event::Line {
        proxy,
        line: Box::new(line),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_of_other_ambient_pods_are_left_out() {
        let pod: IpAddr = "198.19.82.9".parse().unwrap();
        let line = |downstream: &str| {
            let l = Line {
                downstream: Some(downstream.into()),
                ..Line::default()
            };
            serde_json::to_vec(&l).unwrap()
        };
        assert!(matches!(
            event("node-1", &line("198.19.82.9:5000"), Some(pod)),
            Some(Event::Line { .. })
        ));
        assert!(event("node-1", &line("198.19.82.10:5000"), Some(pod)).is_none());
        assert!(matches!(
            event("shop/cart-0", br#"{"dropped":3}"#, None),
            Some(Event::Dropped { count: 3, .. })
        ));
        assert!(event("shop/cart-0", b"\n", None).is_none());
    }
}
