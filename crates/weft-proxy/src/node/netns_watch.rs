//! Noticing that an enrolled pod's network namespace went away under the node proxy (the pod
//! was deleted, or its namespace replaced, without the runtime un-enrolling it first). The
//! node proxy holds the namespace open through its listeners, so nothing fails by itself: it
//! would keep a dead pod's namespace alive. It compares what the path names now with what it
//! named when the pod was served.

use std::os::unix::fs::MetadataExt;

use prometheus_client::metrics::counter::Counter;
use prometheus_client::registry::Registry;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// `weft_node_pods_netns_lost_total`: pods released because their namespace went away.
/// Clones count into the same counter.
#[derive(Debug, Clone, Default)]
pub struct Lost(Counter);

impl Lost {
    /// Registers into the node's `node` sub-registry.
    pub fn register(&self, registry: &mut Registry) {
        registry.sub_registry_with_prefix("node").register(
            "pods_netns_lost",
            "Enrolled pods released because their network namespace went away under the node proxy",
            self.0.clone(),
        );
    }

    pub fn inc(&self) {
        self.0.inc();
    }
}

/// How often the path is looked at.
const POLL: Duration = Duration::from_secs(1);

/// Which namespace a path names: (device, inode) of the nsfs file it leads to.
pub(super) fn identity(path: &Path) -> Option<(u64, u64)> {
    let m = std::fs::metadata(path).ok()?;
    Some((m.dev(), m.ino()))
}

/// Resolves once `path` no longer names the namespace `was` (removed, or another one).
pub(super) async fn gone(path: PathBuf, was: Option<(u64, u64)>) -> String {
    loop {
        tokio::time::sleep(POLL).await;
        match identity(&path) {
            now if now == was => continue,
            None => return format!("its network namespace {} is gone", path.display()),
            Some(_) => {
                return format!(
                    "{} names another network namespace now (the pod was replaced)",
                    path.display()
                );
            }
        }
    }
}

/// Resolves once `path` names a namespace again.
pub(super) async fn back(path: PathBuf) {
    while identity(&path).is_none() {
        tokio::time::sleep(POLL).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn a_removed_or_replaced_path_is_noticed() {
        let dir = std::env::temp_dir().join(format!("weft-netns-watch-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("ns");
        std::fs::write(&path, "a").unwrap();
        // Made while the first exists: it cannot reuse its inode.
        std::fs::write(dir.join("other"), "b").unwrap();
        let was = identity(&path);
        assert!(was.is_some());
        let watch = tokio::spawn(gone(path.clone(), was));
        tokio::time::sleep(POLL * 3).await;
        assert!(!watch.is_finished(), "the same file is the same namespace");
        std::fs::remove_file(&path).unwrap();
        let why = watch.await.unwrap();
        assert!(why.contains("is gone"), "{why}");
        // Another file at the path: another namespace.
        std::fs::rename(dir.join("other"), &path).unwrap();
        back(path.clone()).await;
        let why = gone(path.clone(), was).await;
        assert!(why.contains("another network namespace"), "{why}");
        let _ = std::fs::remove_dir_all(&dir);
    }
}
