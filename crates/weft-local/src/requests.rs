//! How commands ask a running `weft up` to do something (`weft restart`, `weft install`, `weft
//! tag`, `weft rollout restart`, ...): through files in the instance's runtime directory, which
//! `weft up` looks at as often as its configuration directory. The command writes
//! `requests/ID.KIND.json` whole (through a rename); the runtime takes it (removes it), does it
//! and writes `requests/ID.reply.json`, which the command reads and removes.

use std::path::{Path, PathBuf};

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::rundir::RunDir;

const REPLY: &str = ".reply.json";

fn requests(dir: &RunDir) -> PathBuf {
    dir.path.join("requests")
}

fn suffix(kind: &str) -> String {
    format!(".{kind}.json")
}

/// The request id of a file in the requests directory, if it is a whole request of `kind`.
pub fn request_id<'a>(file_name: &'a str, kind: &str) -> Option<&'a str> {
    let id = file_name.strip_suffix(&suffix(kind))?;
    (!id.is_empty() && !id.starts_with('.')).then_some(id)
}

/// Where the reply to request `id` is written.
pub fn reply_file(dir: &RunDir, id: &str) -> PathBuf {
    requests(dir).join(format!("{id}{REPLY}"))
}

/// Where request `id` of `kind` waits to be taken.
pub fn request_file(dir: &RunDir, kind: &str, id: &str) -> PathBuf {
    requests(dir).join(format!("{id}{}", suffix(kind)))
}

/// Writes a request of `kind` whole (through a rename) and returns its id.
pub fn submit<T: Serialize>(dir: &RunDir, kind: &str, req: &T) -> std::io::Result<String> {
    let id = format!("{}-{}", std::process::id(), crate::status::now_ms());
    std::fs::create_dir_all(requests(dir))?;
    write_whole(&request_file(dir, kind, &id), &serde_json::to_vec(req)?)?;
    Ok(id)
}

/// Takes every waiting request of `kind` (removing its file): its id, and the request or why
/// it cannot be read.
pub fn take<T: DeserializeOwned>(dir: &RunDir, kind: &str) -> Vec<(String, Result<T, String>)> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(requests(dir))
        .into_iter()
        .flatten()
        .flatten()
    {
        let name = e.file_name().to_string_lossy().into_owned();
        let Some(id) = request_id(&name, kind) else {
            continue;
        };
        let read = std::fs::read(e.path()).map_err(|e| e.to_string());
        let _ = std::fs::remove_file(e.path());
        let req = read.and_then(|b| serde_json::from_slice(&b).map_err(|e| e.to_string()));
        out.push((id.to_string(), req));
    }
    out
}

/// Writes the reply to request `id` whole.
pub fn answer<R: Serialize>(dir: &RunDir, id: &str, reply: &R) -> std::io::Result<()> {
    write_whole(&reply_file(dir, id), &serde_json::to_vec_pretty(reply)?)
}

/// The reply to request `id`, once written (and removes it).
pub fn read_reply<R: DeserializeOwned>(dir: &RunDir, id: &str) -> Option<Result<R, String>> {
    let path = reply_file(dir, id);
    let bytes = std::fs::read(&path).ok()?;
    let _ = std::fs::remove_file(&path);
    Some(serde_json::from_slice(&bytes).map_err(|e| format!("{}: {e}", path.display())))
}

fn write_whole(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, bytes)?;
    std::fs::rename(&tmp, path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_whole_request_files_are_requests() {
        let cases = [
            ("123-456.restart.json", Some("123-456")),
            ("123-456.restart.tmp", None),
            ("123-456.reply.json", None),
            ("123-456.mesh.json", None),
            (".restart.json", None),
            ("..restart.json", None),
            ("notes.txt", None),
        ];
        for (name, want) in cases {
            assert_eq!(request_id(name, "restart"), want, "{name}");
        }
    }

    #[test]
    fn a_request_goes_through_the_run_dir_and_is_taken_once() {
        let path = std::env::temp_dir().join(format!("weft-requests-{}", std::process::id()));
        let dir = RunDir { path: path.clone() };
        let id = submit(&dir, "restart", &vec!["node-1".to_string()]).unwrap();
        assert!(take::<Vec<String>>(&dir, "mesh").is_empty(), "another kind");
        let taken = take::<Vec<String>>(&dir, "restart");
        assert_eq!(taken, vec![(id.clone(), Ok(vec!["node-1".to_string()]))]);
        assert!(take::<Vec<String>>(&dir, "restart").is_empty());
        assert!(read_reply::<String>(&dir, &id).is_none());
        answer(&dir, &id, &"done".to_string()).unwrap();
        assert_eq!(
            read_reply::<String>(&dir, &id),
            Some(Ok("done".to_string()))
        );
        assert!(read_reply::<String>(&dir, &id).is_none(), "read once");
        let _ = std::fs::remove_dir_all(path);
    }
}
