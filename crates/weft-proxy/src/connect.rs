//! Opening TCP connections upstream: with a connect timeout that names the failure, and with
//! the socket mark that lets the proxy's own traffic pass the capture rules.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use tokio::net::TcpStream;

use crate::error::{Kind, ProxyError};

/// Socket mark on every upstream connection (0: none). Capture rules let marked traffic pass,
/// so the proxy's own connections are not redirected back to itself.
static SOCKET_MARK: AtomicU32 = AtomicU32::new(0);

/// Marks every upstream connection this process opens from now on (`SO_MARK`; needs
/// CAP_NET_ADMIN). A process-wide setting, like the capture rules that match it.
pub fn set_socket_mark(mark: u32) {
    SOCKET_MARK.store(mark, Ordering::Relaxed);
}

async fn open(target: SocketAddr) -> std::io::Result<TcpStream> {
    let mark = SOCKET_MARK.load(Ordering::Relaxed);
    if mark == 0 {
        return TcpStream::connect(target).await;
    }
    let socket = socket2::Socket::new(
        socket2::Domain::for_address(target),
        socket2::Type::STREAM,
        Some(socket2::Protocol::TCP),
    )?;
    socket.set_mark(mark)?;
    socket.set_nonblocking(true)?;
    let socket = tokio::net::TcpSocket::from_std_stream(socket.into());
    socket.connect(target).await
}

/// Opens a TCP connection with a timeout, naming the failure.
pub async fn connect(target: SocketAddr, timeout: Duration) -> Result<TcpStream, ProxyError> {
    let addr = target.to_string();
    match tokio::time::timeout(timeout, open(target)).await {
        Err(_) => Err(Kind::ConnectTimeout(addr).into()),
        Ok(Err(e)) if e.kind() == std::io::ErrorKind::ConnectionRefused => {
            Err(Kind::ConnectRefused(addr).into())
        }
        Ok(Err(e)) => Err(ProxyError::caused(Kind::Connect(addr), e)),
        Ok(Ok(s)) => {
            let _ = s.set_nodelay(true);
            Ok(s)
        }
    }
}
