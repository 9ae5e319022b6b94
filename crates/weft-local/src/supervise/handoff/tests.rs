//! The supervisor's side of a hand-off with stand-in processes: a shell script that reports
//! its addresses and serves until a newer one of it started, as a node proxy does once the
//! new one is ready.

use std::sync::{Arc, Mutex};

use tokio::sync::mpsc;

use super::*;
use crate::board::Board;
use crate::rundir::RunDir;
use crate::status::{Named, Status};
use crate::supervise::{Slot, supervise};

const T: Duration = Duration::from_secs(20);

/// Serves until another process of it started after it; exits with success then.
const NODE: &str = r#"#!/bin/sh
echo $$ >> "$1/pids"
echo '{}' > "$1/addresses.json"
while [ "$(tail -n 1 "$1/pids")" = "$$" ]; do sleep 0.05; done
echo "pid $$ drained"
"#;

/// Fails before it takes over.
const BROKEN: &str = "#!/bin/sh\necho 'no control plane answers'\nexit 3\n";

struct Fixture {
    dir: PathBuf,
    board: Arc<Board>,
    lines: Arc<Mutex<Vec<String>>>,
    stop: watch::Sender<bool>,
    requests: mpsc::Sender<Request>,
    task: JoinHandle<()>,
}

fn script(dir: &Path, name: &str, text: &str) -> PathBuf {
    use std::os::unix::fs::PermissionsExt;
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    path
}

impl Fixture {
    async fn start(tag: &str) -> Fixture {
        let dir = std::env::temp_dir().join(format!("weft-handoff-{}-{tag}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let node = script(&dir, "node.sh", NODE);
        script(&dir, "broken.sh", BROKEN);
        let status = Status {
            nodes: vec![Named {
                name: "node-1".into(),
                process: Default::default(),
            }],
            ..Default::default()
        };
        let board = Board::new(status, RunDir { path: dir.clone() }, vec![]);
        let lines = Arc::new(Mutex::new(Vec::new()));
        let seen = lines.clone();
        let report: Report = Arc::new(move |l| seen.lock().unwrap().push(l));
        let spec = Spec {
            label: "node proxy node-1".into(),
            slot: Slot::Node(0),
            argv: vec![node.display().to_string(), dir.display().to_string()],
            env: vec![],
            cwd: None,
            pod: None,
            weft: node.clone(),
            log: dir.join("node.log"),
            ready: None,
            addresses: Some(dir.join("addresses.json")),
            grace: Duration::from_secs(5),
            limits: None,
        };
        let (stop, stopped) = watch::channel(false);
        let (ready, mut is_ready) = watch::channel(false);
        let (requests, handoffs) = mpsc::channel(1);
        let (b, r) = (board.clone(), report.clone());
        let task = tokio::spawn(supervise(spec, None, b, r, stopped, ready, handoffs));
        tokio::time::timeout(T, is_ready.wait_for(|r| *r))
            .await
            .unwrap()
            .unwrap();
        let f = Fixture {
            dir,
            board,
            lines,
            stop,
            requests,
            task,
        };
        // Serving: it has written its addresses.
        f.wait("the first process reports its addresses", || {
            f.dir.join("addresses.json").exists()
        })
        .await;
        f
    }

    fn pid(&self) -> u32 {
        self.board.snapshot().nodes[0].process.pid.unwrap()
    }

    async fn hand_off(&self, binary: Option<&str>) -> Result<HandedOff, String> {
        let (reply, answer) = oneshot::channel();
        let binary = binary.map(|b| self.dir.join(b));
        self.requests.send(Request { binary, reply }).await.unwrap();
        tokio::time::timeout(T, answer).await.unwrap().unwrap()
    }

    fn reported(&self) -> String {
        self.lines.lock().unwrap().join("\n")
    }

    async fn wait(&self, what: &str, mut f: impl FnMut() -> bool) {
        let deadline = tokio::time::Instant::now() + T;
        while !f() {
            assert!(
                tokio::time::Instant::now() < deadline,
                "{what}: {}",
                self.reported()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    async fn stop(self) {
        let _ = self.stop.send(true);
        tokio::time::timeout(T, self.task).await.unwrap().unwrap();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Whether `pid` is a live process (not gone, not a zombie nobody reaped).
fn alive(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|s| {
        s.rsplit(')')
            .next()
            .is_some_and(|rest| !rest.starts_with(" Z"))
    })
}

#[tokio::test]
async fn the_new_process_starts_first_and_the_old_one_exits_by_itself_without_a_restart() {
    let f = Fixture::start("ok").await;
    let old = f.pid();
    let done = f.hand_off(None).await.unwrap();
    assert_eq!(done.old_pid, old);
    assert_ne!(done.new_pid, old);
    let status = f.board.snapshot().nodes[0].process.clone();
    assert_eq!(status.pid, Some(done.new_pid), "{status:?}");
    assert_eq!(status.state, "ready");
    assert_eq!(status.restarts, 0, "a hand-off is no crash: {status:?}");
    assert!(alive(done.new_pid));
    f.wait("the old process is reaped", || !alive(old)).await;
    f.wait("its exit is reported", || {
        f.reported().contains(&format!(
            "previous process (pid {old}) drained and exited with status 0"
        ))
    })
    .await;
    assert!(!f.reported().contains("restarting now"), "{}", f.reported());
    // And again, from the new one.
    let again = f.hand_off(None).await.unwrap();
    assert_eq!(again.old_pid, done.new_pid);
    f.stop().await;
}

#[tokio::test]
async fn a_binary_that_cannot_start_leaves_the_old_process_serving() {
    let f = Fixture::start("missing").await;
    let old = f.pid();
    let err = f.hand_off(Some("nonexistent")).await.unwrap_err();
    assert!(
        err.contains("cannot start") && err.contains("nonexistent"),
        "{err}"
    );
    assert_eq!(f.pid(), old);
    assert!(alive(old));
    // Its addresses are still there, so it stays ready.
    assert!(f.dir.join("addresses.json").exists());
    assert!(f.reported().contains(&format!("pid {old} keeps serving")));
    f.stop().await;
}

#[tokio::test]
async fn a_new_process_that_fails_before_it_takes_over_leaves_the_old_one_serving() {
    let f = Fixture::start("broken").await;
    let old = f.pid();
    let err = f.hand_off(Some("broken.sh")).await.unwrap_err();
    assert!(
        err.contains("exited with status 3 before it took over"),
        "{err}"
    );
    assert!(err.contains("no control plane answers"), "{err}");
    assert_eq!(f.pid(), old);
    assert!(alive(old));
    assert!(f.dir.join("addresses.json").exists());
    // The slot keeps its own binary: a later hand-off works.
    let done = f.hand_off(None).await.unwrap();
    assert_eq!(done.old_pid, old);
    f.stop().await;
}
