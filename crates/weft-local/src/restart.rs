//! `weft restart NODE`: how the command asks a running `weft up` to restart a node proxy by
//! hand-off, through files in the instance's runtime directory (`weft up` looks at them as it
//! looks at its configuration directory). The command writes `requests/ID.restart.json`
//! (whole, through a rename); the runtime takes it (removes it), starts the new process next
//! to the old one ([`crate::supervise::handoff`]) and writes `requests/ID.reply.json` with
//! what happened, which the command reads and removes.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::rundir::RunDir;
use crate::status::Named;

const REQUEST: &str = ".restart.json";
const REPLY: &str = ".reply.json";

/// Restart the proxy of `node`, with `binary` instead of the running one's if given.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Request {
    pub node: String,
    #[serde(default)]
    pub binary: Option<PathBuf>,
}

/// What a restart did: the old and new pids and the pods handed over, or why it failed.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Reply {
    pub node: String,
    pub old_pid: Option<u32>,
    pub new_pid: Option<u32>,
    /// The pods enrolled on the node: their listeners went to the new process.
    #[serde(default)]
    pub pods: Vec<String>,
    pub error: Option<String>,
}

impl Reply {
    pub fn failed(node: &str, error: String) -> Reply {
        Reply {
            node: node.into(),
            error: Some(error),
            ..Reply::default()
        }
    }

    /// One line for the person who asked.
    pub fn describe(&self) -> String {
        let node = &self.node;
        let old = self.old_pid.map_or("?".to_string(), |p| p.to_string());
        if let Some(e) = &self.error {
            return format!("node proxy {node} not restarted: {e}");
        }
        let new = self.new_pid.map_or("?".to_string(), |p| p.to_string());
        let pods = match self.pods.as_slice() {
            [] => "no pods".to_string(),
            p => format!("{} pods ({})", p.len(), p.join(", ")),
        };
        format!(
            "node proxy {node} restarted by hand-off: pid {old} → pid {new}; {pods} handed over; \
             pid {old} drains its connections and exits by itself"
        )
    }
}

/// Which node proxy a request is for: the index of `node` among the instance's nodes, if its
/// proxy runs and is ready (a process that is starting has no listeners to hand over yet).
pub fn check(nodes: &[Named], node: &str) -> Result<usize, String> {
    let Some(i) = nodes.iter().position(|n| n.name == node) else {
        let names: Vec<&str> = nodes.iter().map(|n| n.name.as_str()).collect();
        return Err(format!("no node {node:?}; nodes: {}", names.join(", ")));
    };
    match nodes[i].process.state.as_str() {
        "ready" => Ok(i),
        "none" => Err(format!(
            "node {node} has no node proxy: it starts with the node's first ambient pod"
        )),
        state => Err(format!(
            "its node proxy is {state}, not ready; try again once `weft get pods` shows it ready"
        )),
    }
}

fn requests(dir: &RunDir) -> PathBuf {
    dir.path.join("requests")
}

/// The request id of a file in the requests directory, if it is a request.
pub fn request_id(file_name: &str) -> Option<&str> {
    let id = file_name.strip_suffix(REQUEST)?;
    (!id.is_empty() && !id.starts_with('.')).then_some(id)
}

/// Where the reply to request `id` is written.
pub fn reply_file(dir: &RunDir, id: &str) -> PathBuf {
    requests(dir).join(format!("{id}{REPLY}"))
}

/// Where request `id` waits to be taken.
pub fn request_file(dir: &RunDir, id: &str) -> PathBuf {
    requests(dir).join(format!("{id}{REQUEST}"))
}

/// Writes a request whole (through a rename) and returns its id.
pub fn submit(dir: &RunDir, req: &Request) -> std::io::Result<String> {
    let id = format!("{}-{}", std::process::id(), crate::status::now_ms());
    std::fs::create_dir_all(requests(dir))?;
    write_whole(&request_file(dir, &id), &serde_json::to_vec(req)?)?;
    Ok(id)
}

/// Takes every waiting request (removing its file): its id, and the request or why it cannot
/// be read.
pub fn take(dir: &RunDir) -> Vec<(String, Result<Request, String>)> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(requests(dir))
        .into_iter()
        .flatten()
        .flatten()
    {
        let name = e.file_name().to_string_lossy().into_owned();
        let Some(id) = request_id(&name) else {
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
pub fn answer(dir: &RunDir, id: &str, reply: &Reply) -> std::io::Result<()> {
    write_whole(&reply_file(dir, id), &serde_json::to_vec_pretty(reply)?)
}

/// The reply to request `id`, once written (and removes it).
pub fn read_reply(dir: &RunDir, id: &str) -> Option<Result<Reply, String>> {
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
    use crate::status::Process;

    #[test]
    fn only_whole_request_files_are_requests() {
        let cases = [
            ("123-456.restart.json", Some("123-456")),
            ("123-456.restart.tmp", None),
            ("123-456.reply.json", None),
            (".restart.json", None),
            ("..restart.json", None),
            ("notes.txt", None),
        ];
        for (name, want) in cases {
            assert_eq!(request_id(name), want, "{name}");
        }
    }

    #[test]
    fn a_request_is_for_a_node_whose_proxy_is_ready() {
        let node = |name: &str, state: &str| Named {
            name: name.into(),
            process: Process {
                state: state.into(),
                ..Process::default()
            },
        };
        let nodes = [
            node("node-1", "ready"),
            node("node-2", "none"),
            node("node-3", "restarting"),
        ];
        let cases = [
            ("node-1", Ok(0)),
            (
                "node-9",
                Err("no node \"node-9\"; nodes: node-1, node-2, node-3"),
            ),
            ("node-2", Err("node node-2 has no node proxy")),
            ("node-3", Err("its node proxy is restarting, not ready")),
        ];
        for (name, want) in cases {
            match (check(&nodes, name), want) {
                (Ok(i), Ok(w)) => assert_eq!(i, w),
                (Err(e), Err(w)) => assert!(e.starts_with(w), "{name}: {e}"),
                (got, want) => panic!("{name}: {got:?}, wanted {want:?}"),
            }
        }
    }

    #[test]
    fn a_reply_says_what_happened() {
        let ok = Reply {
            node: "node-1".into(),
            old_pid: Some(10),
            new_pid: Some(20),
            pods: vec!["a-0.shop".into(), "b-0.shop".into()],
            error: None,
        };
        assert_eq!(
            ok.describe(),
            "node proxy node-1 restarted by hand-off: pid 10 → pid 20; 2 pods (a-0.shop, \
             b-0.shop) handed over; pid 10 drains its connections and exits by itself"
        );
        let failed = Reply::failed("node-1", "cannot start /x: not found".into());
        assert_eq!(
            failed.describe(),
            "node proxy node-1 not restarted: cannot start /x: not found"
        );
    }

    #[test]
    fn a_request_goes_through_the_run_dir_and_is_taken_once() {
        let path = std::env::temp_dir().join(format!("weft-restart-{}", std::process::id()));
        let dir = RunDir { path: path.clone() };
        let req = Request {
            node: "node-1".into(),
            binary: Some("/opt/weft-next".into()),
        };
        let id = submit(&dir, &req).unwrap();
        let taken = take(&dir);
        assert_eq!(taken, vec![(id.clone(), Ok(req))]);
        assert!(take(&dir).is_empty());
        assert!(read_reply(&dir, &id).is_none());
        let reply = Reply::failed("node-1", "no".into());
        answer(&dir, &id, &reply).unwrap();
        assert_eq!(read_reply(&dir, &id), Some(Ok(reply)));
        assert!(read_reply(&dir, &id).is_none(), "read once");
        let _ = std::fs::remove_dir_all(path);
    }
}
