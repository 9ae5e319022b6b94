//! Checked-in generated files: compare, or rewrite when the update variable is set.

use std::path::{Path, PathBuf};

/// The repository root.
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// True when `var` asks for the checked-in files to be rewritten.
pub fn updating(var: &str) -> bool {
    std::env::var_os(var).is_some_and(|v| !v.is_empty() && v != "0")
}

/// Compares `path` with `expected`, or rewrites it when updating. Returns what is stale.
pub fn check_or_write(path: &Path, expected: &str, update: bool) -> Option<String> {
    let current = std::fs::read_to_string(path).ok();
    if current.as_deref() == Some(expected) {
        return None;
    }
    if update {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, expected).unwrap();
        return None;
    }
    let shown = path.strip_prefix(repo_root()).unwrap_or(path).display();
    Some(match current {
        None => format!("{shown} is missing"),
        Some(_) => format!("{shown} differs from what the code generates"),
    })
}

/// Fails with the stale files and the command that refreshes them.
pub fn report(stale: &[String], var: &str, test: &str) {
    assert!(
        stale.is_empty(),
        "generated files are out of date:\n  {}\nrefresh them with\n  {var}=1 cargo test -p weft-core --test {test}\nand commit the result",
        stale.join("\n  ")
    );
}
