//! A temporary directory unique to one test (process id and a counter in its name), removed
//! with everything in it when dropped. Files are written through a rename, so a watcher never
//! reads half a file.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};

#[derive(Debug)]
pub struct TempDir {
    path: PathBuf,
}

impl TempDir {
    /// A new empty directory `<tmp>/weft-<name>-<pid>-<n>`.
    pub fn new(name: &str) -> TempDir {
        static N: AtomicUsize = AtomicUsize::new(0);
        let path = std::env::temp_dir().join(format!(
            "weft-{name}-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = std::fs::remove_dir_all(&path);
        std::fs::create_dir_all(&path)
            .unwrap_or_else(|e| panic!("creating {}: {e}", path.display()));
        TempDir { path }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// `self/rel`.
    pub fn join(&self, rel: impl AsRef<Path>) -> PathBuf {
        self.path.join(rel)
    }

    /// Writes `self/rel` (creating its directory) through a temporary name and a rename;
    /// returns its path.
    pub fn write(&self, rel: impl AsRef<Path>, text: &str) -> PathBuf {
        let path = self.path.join(rel);
        let parent = path.parent().expect("a file inside the directory");
        std::fs::create_dir_all(parent).expect("creating a directory");
        let name = path.file_name().expect("a file name").to_string_lossy();
        let tmp = parent.join(format!(".{name}.tmp"));
        std::fs::write(&tmp, text).unwrap_or_else(|e| panic!("writing {}: {e}", tmp.display()));
        std::fs::rename(&tmp, &path)
            .unwrap_or_else(|e| panic!("renaming to {}: {e}", path.display()));
        path
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.path);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_dir_is_new_holds_its_files_and_goes_on_drop() {
        let (a, b) = (TempDir::new("t"), TempDir::new("t"));
        assert_ne!(a.path(), b.path());
        let f = a.write("config/mesh.yaml", "x: 1");
        assert_eq!(std::fs::read_to_string(&f).unwrap(), "x: 1");
        assert_eq!(
            std::fs::read_dir(a.join("config")).unwrap().count(),
            1,
            "no temporary left"
        );
        let path = a.path().to_path_buf();
        drop(a);
        assert!(!path.exists());
    }
}
