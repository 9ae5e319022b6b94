//! Change notification: a file and a directory tree are seen to change through inotify alone
//! (the safety poll is set to an hour), including the way editors and the local runtime write:
//! to a temporary name, then renamed over the file.

use std::path::Path;
use std::time::Duration;

use weft_control::watch::Changes;
use weft_test_support::dir::TempDir;

const NO_POLL: Duration = Duration::from_secs(3600);

/// Waits for the next change; a guard against hanging, not a measure.
async fn next(changes: &mut Changes, what: &str) {
    tokio::time::timeout(Duration::from_secs(60), changes.next())
        .await
        .unwrap_or_else(|_| panic!("no change seen after {what}"));
}

fn replace(path: &Path, text: &str) {
    let tmp = path.with_file_name(format!(
        ".{}.tmp",
        path.file_name().unwrap().to_string_lossy()
    ));
    std::fs::write(&tmp, text).unwrap();
    std::fs::rename(&tmp, path).unwrap();
}

// Each step's events are queued by the time its file operations return, and `next` takes them
// all before it returns; so each `next` below can only have been woken by its own step.

#[tokio::test]
async fn a_file_is_seen_created_replaced_by_rename_rewritten_and_removed() {
    let dir = TempDir::new("watch-file");
    let path = dir.join("pods.json");
    let mut changes = Changes::file_polled(&path, "test file", NO_POLL);
    assert!(changes.notified(), "inotify is not available here");

    std::fs::write(&path, "1").unwrap();
    next(&mut changes, "creating the file").await;
    replace(&path, "2");
    next(&mut changes, "renaming a new file over it").await;
    std::fs::write(&path, "3").unwrap();
    next(&mut changes, "rewriting it in place").await;
    std::fs::remove_file(&path).unwrap();
    next(&mut changes, "removing it").await;
}

#[tokio::test]
async fn a_tree_is_seen_changing_in_a_directory_made_after_the_watch_started() {
    let dir = TempDir::new("watch-tree");
    let mut changes = Changes::tree_polled(dir.path(), "test tree", NO_POLL);
    assert!(changes.notified(), "inotify is not available here");

    std::fs::write(dir.join("mesh.yaml"), "a").unwrap();
    next(&mut changes, "writing a file").await;
    std::fs::create_dir(dir.join("shop")).unwrap();
    next(&mut changes, "making a directory").await;
    let web = dir.join("shop/web.yaml");
    std::fs::write(&web, "a").unwrap();
    next(&mut changes, "writing a file in the new directory").await;
    replace(&web, "b");
    next(&mut changes, "renaming a new file over it").await;
}
