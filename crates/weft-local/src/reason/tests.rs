//! The words for each way a pod is not ready.

use super::*;

fn process(state: &str) -> Process {
    Process {
        state: state.into(),
        ..Process::default()
    }
}

fn pod(mode: &str, proxy: Process, app: Process) -> PodStatus {
    PodStatus {
        namespace: "shop".into(),
        name: "web-0".into(),
        node: "node-1".into(),
        mode: mode.into(),
        sidecar: mode == "sidecar",
        proxy,
        app,
        ..PodStatus::default()
    }
}

fn reason(p: &PodStatus, now: u64) -> Option<String> {
    p.not_ready(now).map(|r| r.reason)
}

const IP: [u8; 4] = [198, 19, 89, 2];

fn addr(s: &str) -> SocketAddr {
    s.parse().unwrap()
}

#[test]
fn a_ready_or_removed_pod_has_no_reason_and_a_terminating_one_says_so() {
    let ready = pod("sidecar", process("ready"), process("ready"));
    assert_eq!(ready.not_ready(0), None);
    let removed = PodStatus {
        removed: true,
        ..pod("sidecar", process("stopped"), process("stopped"))
    };
    assert_eq!(removed.not_ready(0), None);
    let terminating = PodStatus {
        terminating: true,
        ..ready.clone()
    };
    assert_eq!(
        reason(&terminating, 0).unwrap(),
        "terminating: out of the endpoints while it stops"
    );
}

#[test]
fn an_exited_process_says_how_and_when_it_starts_again() {
    let crashed = Process {
        last_exit: Some("exited with status 1".into()),
        next_start_at_ms: Some(10_000),
        ..process("restarting")
    };
    let p = pod("none", process("none"), crashed.clone());
    let r = p.not_ready(6_500).unwrap();
    assert_eq!(r.reason, "app exited with status 1 (restarting in 4s)");
    assert_eq!(
        r.fix.as_deref(),
        Some("see why in its log: weft logs web-0")
    );
    assert_eq!(
        reason(&p, 10_000).unwrap(),
        "app exited with status 1 (restarting now)"
    );
    // A sidecar that crashes is said first: the app waits for it.
    let p = pod("sidecar", crashed.clone(), process("waiting"));
    let r = p.not_ready(9_000).unwrap();
    assert_eq!(r.reason, "proxy exited with status 1 (restarting in 1s)");
    assert!(r.fix.unwrap().ends_with("weft logs web-0 --proxy"));
    let missing = Process {
        last_exit: Some("exited with status 127".into()),
        ..crashed
    };
    let r = pod("none", process("none"), missing).not_ready(0).unwrap();
    assert!(r.fix.unwrap().contains("command was not found"));
}

#[test]
fn a_proxy_that_is_not_ready_says_what_it_waits_for() {
    let waiting = Process {
        reason: Some("waiting for first config from the control plane: connection refused".into()),
        ..process("running")
    };
    let p = pod("sidecar", waiting, process("waiting"));
    assert_eq!(
        reason(&p, 0).unwrap(),
        "proxy not ready: waiting for first config from the control plane: connection refused"
    );
    let no_cert = Process {
        reason: Some("certificate not issued: the CA refused (Unauthenticated)".into()),
        ..process("running")
    };
    let p = pod("sidecar", no_cert, process("waiting"));
    assert_eq!(
        reason(&p, 0).unwrap(),
        "certificate not issued: the CA refused (Unauthenticated)"
    );
    let p = pod("sidecar", process("starting"), process("waiting"));
    assert_eq!(reason(&p, 0).unwrap(), "proxy not ready: starting");
    let p = pod("ambient", process("enrolling"), process("waiting"));
    assert_eq!(
        reason(&p, 0).unwrap(),
        "waiting for node proxy node-1 to serve it (enrolling)"
    );
}

#[test]
fn an_app_that_is_not_ready_gives_its_checks_reason_and_fix() {
    let app = Process {
        reason: Some("app not listening on :8080; it listens on :9090".into()),
        fix: Some("make the app listen on :8080".into()),
        ..process("running")
    };
    let p = pod("sidecar", process("ready"), app);
    let r = p.not_ready(0).unwrap();
    assert_eq!(r.reason, "app not listening on :8080; it listens on :9090");
    assert_eq!(
        r.to_string(),
        "app not listening on :8080; it listens on :9090; fix: make the app listen on :8080"
    );
    let p = pod("none", process("none"), process("running"));
    assert_eq!(
        reason(&p, 0).unwrap(),
        "app not ready yet (running): its readiness check has not passed"
    );
    let stopped = Process {
        last_exit: Some("exited with status 0".into()),
        ..process("stopped")
    };
    let p = pod("none", process("none"), stopped);
    assert_eq!(reason(&p, 0).unwrap(), "app stopped (exited with status 0)");
}

#[test]
fn an_app_on_another_port_is_told_where_it_listens() {
    let ip = IpAddr::from(IP);
    // The sidecar's own listeners in the pod do not count.
    let proxy = [15000, 15001, 15006, 15008, 15020, 15021];
    let sockets = [
        addr("127.0.0.1:15000"),
        addr("0.0.0.0:15006"),
        addr("0.0.0.0:9090"),
        addr("[::]:9091"),
        addr("0.0.0.0:9090"),
    ];
    let r = app_port(8080, ip, &sockets, &proxy);
    assert_eq!(
        r.reason,
        "app not listening on :8080; it listens on :9090, :9091"
    );
    assert_eq!(
        r.fix.as_deref(),
        Some(
            "make the app listen on :8080, or set the Workload's containerPort (and its \
             Services' targetPort) to 9090"
        )
    );
    let r = app_port(8080, ip, &sockets[..3], &proxy);
    assert_eq!(r.reason, "app not listening on :8080; it listens on :9090");

    let r = app_port(8080, ip, &sockets[..2], &proxy);
    assert_eq!(
        r.reason,
        "app not listening on :8080 (it listens on no TCP port yet)"
    );
    assert_eq!(r.fix, None);

    let r = app_port(8080, ip, &[addr("127.0.0.1:8080")], &proxy);
    assert_eq!(
        r.reason,
        "app listens on :8080 on 127.0.0.1 only, which the pod's address 198.19.89.2 does not reach"
    );
    assert!(r.fix.unwrap().contains("0.0.0.0:8080"));
    let r = app_port(8080, ip, &[addr("198.19.89.2:8080")], &proxy);
    assert_eq!(
        r.reason,
        "app listens on :8080 but does not accept connections"
    );
}

#[test]
fn a_readiness_answer_gives_the_reason_its_process_names() {
    let a = addr("198.19.89.2:15021");
    let said = |code: u16, body: &str| http_answer(a, &Ok((code, body.to_string()))).reason;
    assert_eq!(
        said(
            503,
            "{\n  \"ready\": false,\n  \"reason\": \"waiting for first config from the control plane\"\n}\n"
        ),
        "waiting for first config from the control plane"
    );
    assert_eq!(
        said(500, "oops"),
        "its readiness check on 198.19.89.2:15021 answered 500"
    );
    let refused = std::io::Error::from(std::io::ErrorKind::ConnectionRefused);
    assert_eq!(
        http_answer(a, &Err(refused)).reason,
        "not answering its readiness check on 198.19.89.2:15021 yet (connection refused)"
    );
}
