//! Named network namespaces, kept the way `ip netns` keeps them (a bind mount of the namespace
//! on `/run/netns/NAME`), so `ip netns list` and `ip netns exec` see a mesh's pods.

use std::io;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use nix::errno::Errno;
use nix::mount::{MntFlags, MsFlags, mount, umount2};
use nix::sched::{CloneFlags, setns, unshare};

const DIR: &str = "/run/netns";

pub fn path(name: &str) -> PathBuf {
    Path::new(DIR).join(name)
}

/// `/run/netns` as a shared mount, so namespaces added later show in every mount namespace.
fn share_dir() -> io::Result<()> {
    std::fs::create_dir_all(DIR)?;
    let shared = || {
        mount(
            None::<&str>,
            DIR,
            None::<&str>,
            MsFlags::MS_SHARED | MsFlags::MS_REC,
            None::<&str>,
        )
    };
    match shared() {
        Err(Errno::EINVAL) => {
            // Not a mount point yet: make it one, as `ip netns add` does.
            mount(
                Some(DIR),
                DIR,
                None::<&str>,
                MsFlags::MS_BIND | MsFlags::MS_REC,
                None::<&str>,
            )?;
            shared()?;
        }
        r => r?,
    }
    Ok(())
}

pub fn create(name: &str) -> io::Result<()> {
    share_dir()?;
    let file = path(name);
    std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&file)
        .map_err(|e| io::Error::new(e.kind(), format!("creating {}: {e}", file.display())))?;
    // A fresh thread unshares its network namespace and pins it on the file; the rest of the
    // process stays where it was.
    let target = file.clone();
    let pinned = std::thread::spawn(move || -> io::Result<()> {
        unshare(CloneFlags::CLONE_NEWNET)?;
        mount(
            Some("/proc/thread-self/ns/net"),
            &target,
            None::<&str>,
            MsFlags::MS_BIND,
            None::<&str>,
        )?;
        Ok(())
    })
    .join()
    .unwrap_or_else(|_| Err(io::Error::other("namespace thread panicked")));
    if let Err(e) = pinned {
        let _ = std::fs::remove_file(&file);
        return Err(io::Error::new(
            e.kind(),
            format!("creating network namespace {name}: {e}"),
        ));
    }
    Ok(())
}

/// Unpins and removes a namespace; one that does not exist is already gone. The namespace
/// (with its links and rules) ends once no process runs in it.
pub fn delete(name: &str) -> io::Result<()> {
    let file = path(name);
    if !file.exists() {
        return Ok(());
    }
    match umount2(&file, MntFlags::MNT_DETACH) {
        Ok(()) | Err(Errno::EINVAL) | Err(Errno::ENOENT) => {}
        Err(e) => {
            return Err(io::Error::new(
                io::Error::from(e).kind(),
                format!("unmounting {}: {e}", file.display()),
            ));
        }
    }
    match std::fs::remove_file(&file) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
        _ => Ok(()),
    }
}

/// Runs `f` on a thread inside the namespace `name` (sockets it opens belong there).
pub fn run_in<T: Send + 'static>(
    name: &str,
    f: impl FnOnce() -> io::Result<T> + Send + 'static,
) -> io::Result<T> {
    let file = path(name);
    std::thread::spawn(move || {
        let ns = std::fs::File::open(&file)
            .map_err(|e| io::Error::new(e.kind(), format!("opening {}: {e}", file.display())))?;
        setns(&ns, CloneFlags::CLONE_NEWNET)?;
        f()
    })
    .join()
    .unwrap_or_else(|_| Err(io::Error::other("namespace thread panicked")))
}

/// Processes whose network namespace is `name`.
pub fn pids(name: &str) -> Vec<i32> {
    let Ok(target) = std::fs::metadata(path(name)) else {
        return Vec::new();
    };
    let key = (target.dev(), target.ino());
    std::fs::read_dir("/proc")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<i32>().ok())
        .filter(|pid| {
            std::fs::metadata(format!("/proc/{pid}/ns/net"))
                .is_ok_and(|m| (m.dev(), m.ino()) == key)
        })
        .collect()
}
