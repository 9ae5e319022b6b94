//! Unix `SOCK_SEQPACKET` sockets that carry descriptors (SCM_RIGHTS). A packet is one
//! message with at most one descriptor, kept together by the kernel: no framing, and a
//! descriptor can never be read with the wrong message. Every socket is non-blocking and
//! close-on-exec, and so is every descriptor received.
//!
//! The only module of the proxy with `unsafe`: std has no `SOCK_SEQPACKET` sockets and no
//! stable SCM_RIGHTS, and nix hands accepted sockets and received descriptors out as raw
//! numbers; each is owned ([`OwnedFd::from_raw_fd`]) the moment the kernel returns it, so it
//! is closed exactly once.
#![allow(unsafe_code)]

use std::io::{self, IoSlice, IoSliceMut};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};
use std::path::Path;
use std::time::Duration;

use nix::errno::Errno;
use nix::sys::socket::{
    self, AddressFamily, Backlog, ControlMessage, ControlMessageOwned, MsgFlags, SockFlag,
    SockType, UnixAddr,
};
use tokio::io::unix::AsyncFd;

use super::message::MAX_LEN;

const FLAGS: SockFlag = SockFlag::SOCK_NONBLOCK.union(SockFlag::SOCK_CLOEXEC);

/// How long `connect` waits for room in a busy listener's queue.
const CONNECT_WAIT: Duration = Duration::from_secs(5);

/// One end of a connection.
#[derive(Debug)]
pub struct Packets {
    fd: AsyncFd<OwnedFd>,
}

/// What one packet held.
#[derive(Debug)]
pub struct Packet {
    pub bytes: Vec<u8>,
    pub fds: Vec<OwnedFd>,
}

/// Watches `fd` with the runtime.
fn register(fd: OwnedFd) -> io::Result<AsyncFd<OwnedFd>> {
    // SAFETY: an OwnedFd is open and stays the same descriptor until the AsyncFd drops it.
    unsafe { AsyncFd::register(fd) }.map_err(|e| e.into_parts().1)
}

fn seqpacket() -> io::Result<OwnedFd> {
    Ok(socket::socket(
        AddressFamily::Unix,
        SockType::SeqPacket,
        FLAGS,
        None,
    )?)
}

impl Packets {
    /// Two connected ends (tests).
    #[cfg(test)]
    pub fn pair() -> io::Result<(Packets, Packets)> {
        let (a, b) = socket::socketpair(AddressFamily::Unix, SockType::SeqPacket, None, FLAGS)?;
        Ok((Packets::new(a)?, Packets::new(b)?))
    }

    fn new(fd: OwnedFd) -> io::Result<Packets> {
        Ok(Packets { fd: register(fd)? })
    }

    /// Connects to the listener at `path`: `NotFound` when there is no socket there,
    /// `ConnectionRefused` when nothing listens on it.
    pub async fn connect(path: &Path) -> io::Result<Packets> {
        let fd = seqpacket()?;
        let addr = UnixAddr::new(path)?;
        let start = tokio::time::Instant::now();
        loop {
            match socket::connect(fd.as_raw_fd(), &addr) {
                Ok(()) => return Packets::new(fd),
                // Its queue is full: it is busy with another hand-off.
                Err(Errno::EAGAIN) if start.elapsed() < CONNECT_WAIT => {
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
                Err(e) => return Err(e.into()),
            }
        }
    }

    /// Sends `bytes` as one packet, with `fd` if given.
    pub async fn send(&self, bytes: &[u8], fd: Option<BorrowedFd<'_>>) -> io::Result<()> {
        let raw: Vec<RawFd> = fd.iter().map(|f| f.as_raw_fd()).collect();
        let cmsgs: Vec<ControlMessage<'_>> = if raw.is_empty() {
            vec![]
        } else {
            vec![ControlMessage::ScmRights(&raw)]
        };
        let iov = [IoSlice::new(bytes)];
        loop {
            let mut ready = self.fd.writable().await?;
            // MSG_NOSIGNAL: a peer that went away is an error here, not a SIGPIPE.
            let sent = ready.try_io(|fd| {
                socket::sendmsg::<()>(fd.as_raw_fd(), &iov, &cmsgs, MsgFlags::MSG_NOSIGNAL, None)
                    .map_err(io::Error::from)
            });
            match sent {
                Ok(Ok(n)) if n == bytes.len() => return Ok(()),
                Ok(Ok(n)) => {
                    return Err(io::Error::other(format!(
                        "sent {n} of {} bytes in one packet",
                        bytes.len()
                    )));
                }
                Ok(Err(e)) => return Err(e),
                Err(_would_block) => continue,
            }
        }
    }

    /// Whether the process at the other end runs as the same user as this one (or as root):
    /// nobody else may take or give listeners.
    pub fn peer_is_trusted(&self) -> io::Result<bool> {
        let peer = socket::getsockopt(self.fd.get_ref(), socket::sockopt::PeerCredentials)?;
        let own = nix::unistd::geteuid().as_raw();
        Ok(peer.uid() == own || peer.uid() == 0)
    }

    /// The next packet; None when the peer closed its end.
    pub async fn recv(&self) -> io::Result<Option<Packet>> {
        loop {
            let mut ready = self.fd.readable().await?;
            match ready.try_io(|fd| recv_now(fd.as_raw_fd())) {
                Ok(r) => return r,
                Err(_would_block) => continue,
            }
        }
    }
}

fn recv_now(fd: RawFd) -> io::Result<Option<Packet>> {
    let mut buf = vec![0u8; MAX_LEN + 1];
    let mut cmsg = nix::cmsg_space!([RawFd; 4]);
    let mut iov = [IoSliceMut::new(&mut buf)];
    let msg = socket::recvmsg::<()>(fd, &mut iov, Some(&mut cmsg), MsgFlags::MSG_CMSG_CLOEXEC)?;
    let mut fds = Vec::new();
    for c in msg.cmsgs()? {
        if let ControlMessageOwned::ScmRights(received) = c {
            for raw in received {
                // SAFETY: the kernel just installed `raw` in this process for this message;
                // nothing else knows or owns it.
                fds.push(unsafe { OwnedFd::from_raw_fd(raw) });
            }
        }
    }
    let (len, flags) = (msg.bytes, msg.flags);
    if flags.contains(MsgFlags::MSG_CTRUNC) {
        return Err(io::Error::other(
            "a packet with more descriptors than expected",
        ));
    }
    if flags.contains(MsgFlags::MSG_TRUNC) || len > MAX_LEN {
        return Err(io::Error::other(format!(
            "a packet of more than {MAX_LEN} bytes"
        )));
    }
    if len == 0 && fds.is_empty() {
        return Ok(None);
    }
    buf.truncate(len);
    Ok(Some(Packet { bytes: buf, fds }))
}

/// A listening socket bound to a path.
#[derive(Debug)]
pub struct PacketListener {
    fd: AsyncFd<OwnedFd>,
}

impl PacketListener {
    /// Listens at `path`, which must not exist.
    pub fn bind(path: &Path) -> io::Result<PacketListener> {
        let fd = seqpacket()?;
        socket::bind(fd.as_raw_fd(), &UnixAddr::new(path)?)?;
        socket::listen(&fd, Backlog::new(8).map_err(io::Error::from)?)?;
        Ok(PacketListener { fd: register(fd)? })
    }

    pub async fn accept(&self) -> io::Result<Packets> {
        loop {
            let mut ready = self.fd.readable().await?;
            let accepted = ready.try_io(|fd| {
                socket::accept4(fd.as_raw_fd(), FLAGS)
                    // SAFETY: accept4 just returned this new descriptor; nothing else owns it.
                    .map(|raw| unsafe { OwnedFd::from_raw_fd(raw) })
                    .map_err(io::Error::from)
            });
            match accepted {
                Ok(r) => return Packets::new(r?),
                Err(_would_block) => continue,
            }
        }
    }
}

impl AsFd for PacketListener {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.get_ref().as_fd()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    /// A listening TCP socket sent over the pair is the same socket at the other end: a
    /// connection queued before it was sent is accepted from the copy received.
    #[tokio::test]
    async fn a_listening_socket_crosses_with_its_message() {
        let (old, new) = Packets::pair().unwrap();
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let mut queued = tokio::net::TcpStream::connect(addr).await.unwrap();

        old.send(b"the listener", Some(listener.as_fd()))
            .await
            .unwrap();
        old.send(b"no descriptor", None).await.unwrap();
        drop(listener);

        let first = new.recv().await.unwrap().unwrap();
        assert_eq!(first.bytes, b"the listener");
        assert_eq!(first.fds.len(), 1);
        let second = new.recv().await.unwrap().unwrap();
        assert_eq!(second.bytes, b"no descriptor");
        assert!(second.fds.is_empty());

        let received = std::net::TcpListener::from(first.fds.into_iter().next().unwrap());
        assert_eq!(received.local_addr().unwrap(), addr);
        received.set_nonblocking(true).unwrap();
        let received = tokio::net::TcpListener::from_std(received).unwrap();
        let (mut accepted, _) = received.accept().await.unwrap();
        queued.write_all(b"ping").await.unwrap();
        let mut got = [0u8; 4];
        accepted.read_exact(&mut got).await.unwrap();
        assert_eq!(&got, b"ping");

        assert!(new.peer_is_trusted().unwrap(), "the same process");
        drop(old);
        assert!(new.recv().await.unwrap().is_none(), "the peer closed");
    }

    #[tokio::test]
    async fn a_path_nobody_listens_on_is_told_apart() {
        let dir = std::env::temp_dir().join(format!("weft-packets-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("handoff.sock");
        let _ = std::fs::remove_file(&path);
        let err = Packets::connect(&path).await.unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::NotFound, "{err}");

        let l = PacketListener::bind(&path).unwrap();
        let (a, b) = tokio::join!(Packets::connect(&path), l.accept());
        let (a, b) = (a.unwrap(), b.unwrap());
        a.send(b"hi", None).await.unwrap();
        assert_eq!(b.recv().await.unwrap().unwrap().bytes, b"hi");

        // A socket file left by a process that is gone: refused.
        drop((l, a, b));
        let err = Packets::connect(&path).await.unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::ConnectionRefused, "{err}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
