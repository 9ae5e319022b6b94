//! What the probe's outcome says: each hop in a line, and the cause when the request failed in
//! a way the checks could not foresee (nothing listening, a timeout shorter than the answer).

use weft_core::duration::Duration;

use super::facts::Facts;
use super::probe::{self, Outcome};
use super::{Mark, Problem, Report};

pub fn probe_step(facts: &Facts, o: &Outcome, timeout: Option<Duration>, r: &mut Report) {
    let mut lines = vec![match o.status {
        0 => format!(
            "no response after {:.0} ms: {}",
            o.seconds * 1000.0,
            o.error.as_deref().unwrap_or("?")
        ),
        s => format!("answered {s} in {:.0} ms", o.seconds * 1000.0),
    }];
    for (proxy, l) in &o.hops {
        let to = l.destination.upstream.as_deref().unwrap_or("-");
        let err = l
            .error
            .as_deref()
            .map_or(String::new(), |e| format!(" error {e}"));
        let policy = l
            .policy
            .as_deref()
            .map_or(String::new(), |p| format!(" policy {p}"));
        let status = l.status.map_or("-".to_string(), |s| s.to_string());
        lines.push(format!(
            "{proxy} {}: {status} → {to} in {:.1} ms{err}{policy}",
            l.direction, l.latency_ms
        ));
    }
    let failed = o.status == 0 || o.status >= 500;
    let mut mark = if failed || o.status == 403 || o.status == 404 {
        Mark::Fail
    } else {
        Mark::Ok
    };
    if o.hops.is_empty() && o.status != 0 {
        lines.push(
            "no proxy recorded it (the source has no proxy, or the request went around the mesh)"
                .into(),
        );
    }
    let stages: Vec<&str> = o
        .hops
        .iter()
        .filter_map(|(_, l)| l.error.as_deref())
        .collect();
    if r.problems.is_empty() {
        if let Some(p) = cause(facts, o, &stages, timeout) {
            mark = Mark::Fail;
            r.problem(p);
        } else if failed || o.status == 403 || o.status == 404 {
            r.problem(Problem::new(
                format!(
                    "the request failed with {} ({})",
                    o.status,
                    stages.join(", ")
                ),
                "look at the hops above: the first one with an error is where it failed",
            ));
        }
    }
    r.step("Probe", mark, lines);
}

/// The cause of a failed probe the checks did not predict.
fn cause(
    facts: &Facts,
    o: &Outcome,
    stages: &[&str],
    timeout: Option<Duration>,
) -> Option<Problem> {
    if stages.contains(&"timeout") {
        let t = timeout.map_or("its timeout".to_string(), |t| format!("its timeout of {t}"));
        return Some(Problem::new(
            format!("the upstream did not answer within {t} (504, flag UT)"),
            "raise the route's timeout (HTTPRoute rules[].timeouts.request) above the app's answer time, or make the app answer faster",
        ));
    }
    if stages.contains(&"connect-refused") {
        let server = o
            .hops
            .iter()
            .find(|(_, l)| l.error.as_deref() == Some("connect-refused"))?;
        let upstream = server.1.destination.upstream.clone().unwrap_or_default();
        let port: u16 = upstream
            .rsplit_once(':')
            .and_then(|(_, p)| p.parse().ok())
            .unwrap_or(0);
        let (ns, name) = server.0.split_once('/').unwrap_or(("", &server.0));
        let pod = (facts.plan.pods.iter()).find(|p| p.namespace == ns && p.name == name);
        let listens = pod
            .map(|p| probe::listening_ports(&p.netns))
            .unwrap_or_default();
        let app: Vec<String> = listens
            .iter()
            .filter(|p| !(15000..=15099).contains(*p))
            .map(|p| format!(":{p}"))
            .collect();
        let instead = match app.is_empty() {
            true => "it listens on no port".to_string(),
            false => format!("it listens on {}", app.join(", ")),
        };
        return Some(Problem::new(
            format!(
                "nothing listens on :{port} in {}: the app refuses the connection; {instead}",
                server.0
            ),
            match app.first() {
                Some(p) => format!(
                    "make the app listen on :{port}, or point the Service's targetPort (and the Workload's containerPort) at {p}"
                ),
                None => format!(
                    "start the app listening on :{port}: `weft logs {}` shows its output",
                    server.0
                ),
            },
        ));
    }
    None
}
