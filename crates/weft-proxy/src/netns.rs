//! Sockets inside another network namespace. In ambient mode the node proxy's listeners and
//! connections for a pod live in that pod's namespace, so its traffic is captured into them
//! and leaves from the pod's own address. A socket belongs to the namespace it was created in:
//! the calling thread enters the pod's namespace only for the `socket(2)` call and returns at
//! once, as ztunnel's in-pod mode does.

use std::fs::File;
use std::io;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use nix::sched::{CloneFlags, setns};

/// A network namespace, held open (it lives while this does, even if its name is removed).
#[derive(Debug)]
pub struct Netns {
    file: File,
    path: PathBuf,
}

impl Netns {
    /// Opens the namespace pinned at `path` (`/run/netns/NAME`, or `/proc/PID/ns/net`).
    pub fn open(path: &Path) -> io::Result<Netns> {
        let file = File::open(path).map_err(|e| {
            io::Error::new(
                e.kind(),
                format!("network namespace {}: {e}", path.display()),
            )
        })?;
        Ok(Netns {
            file,
            path: path.to_path_buf(),
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Runs `f`, which should only create sockets, with this thread inside the namespace.
    fn run<T>(&self, f: impl FnOnce() -> io::Result<T>) -> io::Result<T> {
        let home = File::open("/proc/thread-self/ns/net")?;
        setns(&self.file, CloneFlags::CLONE_NEWNET)
            .map_err(|e| io::Error::other(format!("entering {}: {e}", self.path.display())))?;
        let out = f();
        if let Err(e) = setns(&home, CloneFlags::CLONE_NEWNET) {
            // A thread left in a pod's namespace would open every later socket there.
            tracing::error!(
                "cannot return from {} to the proxy's network namespace: {e}",
                self.path.display()
            );
            std::process::abort();
        }
        out
    }

    /// A TCP socket for `addr`'s family, created inside the namespace.
    pub fn socket(&self, addr: SocketAddr) -> io::Result<socket2::Socket> {
        self.run(|| {
            socket2::Socket::new(
                socket2::Domain::for_address(addr),
                socket2::Type::STREAM,
                Some(socket2::Protocol::TCP),
            )
        })
    }

    /// A listener on `addr` inside the namespace.
    pub fn listen(&self, addr: SocketAddr) -> io::Result<tokio::net::TcpListener> {
        let s = self.socket(addr)?;
        s.set_reuse_address(true)?;
        s.bind(&addr.into())?;
        s.listen(1024)?;
        s.set_nonblocking(true)?;
        tokio::net::TcpListener::from_std(s.into())
    }
}
