//! Owning the hand-off path. A process listens on a socket bound under a temporary name and
//! renames it over the path: the switch is atomic, so a process connecting to the path
//! reaches either the previous listener or this one, never nothing. Whoever the path leads to
//! owns it; a process checks that it still does by the file's inode.

use std::io;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use super::packets::PacketListener;

/// This process's listener on the hand-off path.
#[derive(Debug)]
pub struct Claimed {
    pub(super) listener: PacketListener,
    path: PathBuf,
    ino: u64,
}

/// Listens at `path`, replacing whatever socket file is there.
pub fn claim(path: &Path) -> io::Result<Claimed> {
    static N: AtomicU64 = AtomicU64::new(0);
    let name = path
        .file_name()
        .ok_or_else(|| io::Error::other("the hand-off path names no file"))?
        .to_string_lossy();
    let tmp = path.with_file_name(format!(
        ".{name}.{}.{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    ));
    let _ = std::fs::remove_file(&tmp);
    let listener = PacketListener::bind(&tmp)?;
    let bound = (|| {
        // Only this user (and root) may connect.
        std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(0o600))?;
        let ino = std::fs::metadata(&tmp)?.ino();
        std::fs::rename(&tmp, path)?;
        Ok(ino)
    })();
    match bound {
        Ok(ino) => Ok(Claimed {
            listener,
            path: path.to_path_buf(),
            ino,
        }),
        Err(e) => {
            let _ = std::fs::remove_file(&tmp);
            Err(e)
        }
    }
}

impl Claimed {
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Whether the path still leads to this listener.
    pub fn holds(&self) -> bool {
        std::fs::metadata(&self.path).is_ok_and(|m| m.ino() == self.ino)
    }

    /// Makes the path lead here again if a successor replaced it and then failed.
    pub fn reclaim(self) -> io::Result<Claimed> {
        if self.holds() {
            return Ok(self);
        }
        let path = self.path.clone();
        drop(self);
        tracing::info!(path = %path.display(), "hand-off: taking the hand-off socket back");
        claim(&path)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::handoff::packets::Packets;

    #[tokio::test]
    async fn the_path_leads_to_the_last_claim() {
        let dir = std::env::temp_dir().join(format!("weft-claim-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("handoff.sock");
        let first = claim(&path).unwrap();
        assert!(first.holds());
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600, "only its user may connect");
        let second = claim(&path).unwrap();
        assert!(second.holds() && !first.holds());
        // A connection reaches the second; the first is unreachable by path.
        let (c, a) = tokio::join!(Packets::connect(&path), second.listener.accept());
        let (c, a) = (c.unwrap(), a.unwrap());
        c.send(b"x", None).await.unwrap();
        assert_eq!(a.recv().await.unwrap().unwrap().bytes, b"x");
        // The second goes away without handing over: the first takes the path back.
        drop(second);
        let first = first.reclaim().unwrap();
        assert!(first.holds());
        let (c, a) = tokio::join!(Packets::connect(&path), first.listener.accept());
        assert!(c.is_ok() && a.is_ok());
        // No temporary file is left.
        let names: Vec<_> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, ["handoff.sock"]);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
