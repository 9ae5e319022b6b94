//! Distributed tracing over `weft up`, to a real OTLP/gRPC receiver: `otlp_receiver.py`
//! (Python's `grpcio` with the `opentelemetry-proto` package's generated service) listens on
//! the host's address on the mesh's bridge, where the pods' default route leads, and the
//! shop's Mesh sends it every trace (`samplingPercent: 100`). Requests through the ingress
//! reach the frontend, which calls catalog and cart, which call pricing; each demo app forwards
//! the trace headers it was sent, so each page is one trace linked across every hop: the
//! gateway's span is the root, the frontend sidecar's inbound span its child, the frontend's
//! outbound calls children of that, each callee's inbound span a child of its caller's
//! outbound span, and so on down to pricing.

use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use serde_json::Value;
use weft_e2e::{ConfigDir, Mesh, free_port, http_get, serial, shop};
use weft_test_support::wait::eventually_blocking;

/// The test's address block: pods in 198.19.83.0/25; the host is the first address.
const N: u8 = 83;
/// Pages requested through the ingress: each is one trace.
const PAGES: usize = 5;
/// How long the spans of the pages may take to arrive (exporters flush within a second).
const ARRIVED: Duration = Duration::from_secs(30);

/// One span as `otlp_receiver.py` wrote it.
#[derive(Debug, Clone)]
struct Span {
    trace: String,
    id: String,
    parent: String,
    name: String,
    kind: String,
    service: String,
    direction: String,
    attributes: Value,
}

impl Span {
    fn parse(line: &str) -> Span {
        let v: Value = serde_json::from_str(line).unwrap_or_else(|e| panic!("{line}: {e}"));
        Span {
            trace: text(&v["trace_id"]),
            id: text(&v["span_id"]),
            parent: text(&v["parent_span_id"]),
            name: text(&v["name"]),
            kind: text(&v["kind"]),
            service: text(&v["service_name"]),
            direction: text(&v["attributes"]["weft.direction"]),
            attributes: v["attributes"].clone(),
        }
    }

    /// Whether this is `service`'s proxy's span of kind `kind`.
    fn of(&self, service: &str, kind: &str) -> bool {
        self.service == service && self.kind == kind
    }

    /// Whether this is `service`'s proxy's span of kind `kind` of a request to `host` (its
    /// name is `<authority>/*`, and the shop's apps call `http://HOST:8080`).
    fn is(&self, service: &str, kind: &str, host: &str) -> bool {
        self.of(service, kind) && self.name.starts_with(&format!("{host}:"))
    }
}

impl std::fmt::Display for Span {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} {} {} {} {} parent={} ({})",
            &self.trace[..8.min(self.trace.len())],
            self.id,
            self.service,
            self.kind,
            self.name,
            self.parent,
            self.direction
        )
    }
}

/// `otlp_receiver.py` listening on `listen`, writing spans into its own directory; killed on
/// drop.
struct Receiver {
    child: Child,
    dir: ConfigDir,
}

impl Receiver {
    fn start(listen: &str) -> Receiver {
        let dir = ConfigDir::new("trace-otlp");
        let script = concat!(env!("CARGO_MANIFEST_DIR"), "/e2e/otlp_receiver.py");
        let log = std::fs::File::create(dir.path.join("receiver.log")).expect("receiver log");
        let child = Command::new("python3")
            .args([script, listen])
            .arg(dir.path.join("spans.jsonl"))
            .stdout(Stdio::piped())
            .stderr(log)
            .spawn()
            .expect("running python3 otlp_receiver.py");
        let mut receiver = Receiver { child, dir };
        // It says when it serves; EOF instead means it failed (its log says why).
        let mut line = String::new();
        let stdout = receiver.child.stdout.take().expect("receiver stdout");
        let _ = BufReader::new(stdout).read_line(&mut line);
        assert!(
            line.starts_with("listening "),
            "otlp_receiver.py did not start (pip install grpcio opentelemetry-proto?): {line}{}",
            receiver.log()
        );
        receiver
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path.join("receiver.log")).unwrap_or_default()
    }

    /// Every span received so far.
    fn spans(&self) -> Vec<Span> {
        let text = std::fs::read_to_string(self.dir.path.join("spans.jsonl")).unwrap_or_default();
        // A line being written may be incomplete: only whole lines count.
        let whole = text.rfind('\n').map_or("", |end| &text[..end]);
        whole.lines().map(Span::parse).collect()
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The spans of one trace, as they arrived.
#[derive(Debug)]
struct Trace {
    spans: Vec<Span>,
}

impl Trace {
    /// The one span matching `f`, or what the trace holds.
    fn one(&self, what: &str, f: impl Fn(&Span) -> bool) -> Result<&Span, String> {
        let found: Vec<&Span> = self.spans.iter().filter(|s| f(s)).collect();
        match found[..] {
            [span] => Ok(span),
            _ => Err(format!("{} spans of {what} in {self}", found.len())),
        }
    }

    /// Every span matching `f`.
    fn all(&self, f: impl Fn(&Span) -> bool) -> Vec<&Span> {
        self.spans.iter().filter(|s| f(s)).collect()
    }

    fn children<'a>(&'a self, parent: &Span, f: impl Fn(&Span) -> bool) -> Vec<&'a Span> {
        self.all(|s| s.parent == parent.id && f(s))
    }
}

impl std::fmt::Display for Trace {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        for s in &self.spans {
            writeln!(f, "  {s}")?;
        }
        Ok(())
    }
}

/// The received spans grouped by trace.
fn traces(spans: &[Span]) -> BTreeMap<&str, Trace> {
    let mut out: BTreeMap<&str, Trace> = BTreeMap::new();
    for s in spans {
        (out.entry(&s.trace).or_insert(Trace { spans: Vec::new() }))
            .spans
            .push(s.clone());
    }
    out
}

/// The gateway's service.name: its workload is the Gateway (`gateway-<name>` is its pod).
const GATEWAY: &str = "ingress.shop";

/// Whether `trace` is one whole page, linked hop by hop:
/// gateway → frontend (inbound) → frontend → catalog (outbound) → catalog (inbound) →
/// catalog → pricing (outbound, once per item) → pricing (inbound), and likewise through cart.
fn linked(trace: &Trace) -> Result<(), String> {
    let root = trace.one("the gateway", |s| s.of(GATEWAY, "CLIENT"))?;
    if !root.parent.is_empty() {
        return Err(format!("the gateway's span is not the root: {trace}"));
    }
    let ids: BTreeSet<&str> = trace.spans.iter().map(|s| s.id.as_str()).collect();
    if let Some(orphan) =
        (trace.spans.iter()).find(|s| s.id != root.id && !ids.contains(&*s.parent))
    {
        return Err(format!("not yet whole: no parent of {orphan} in {trace}"));
    }
    let front_in = trace.one("the frontend's inbound", |s| {
        s.of("frontend.shop", "SERVER")
    })?;
    let hop = |from: &Span, to: &str| -> Result<(), String> {
        if from.parent == to {
            Ok(())
        } else {
            Err(format!("{from} is not a child of {to} in {trace}"))
        }
    };
    hop(front_in, &root.id)?;
    for callee in ["catalog", "cart"] {
        // The app forwarded the headers: its call is a child of the span it was served in.
        let out = trace.one(&format!("the frontend's call to {callee}"), |s| {
            s.is("frontend.shop", "CLIENT", callee)
        })?;
        hop(out, &front_in.id)?;
        let served = trace.one(&format!("{callee}'s inbound"), |s| {
            s.is(&format!("{callee}.shop"), "SERVER", callee)
        })?;
        hop(served, &out.id)?;
        // catalog prices three items, cart one line: each call to pricing, and pricing's
        // inbound span of it, one level further down.
        let calls = trace.children(served, |s| {
            s.is(&format!("{callee}.shop"), "CLIENT", "pricing")
        });
        let want = if callee == "catalog" { 3 } else { 1 };
        if calls.len() != want {
            return Err(format!(
                "{callee} → pricing: {} calls, want {want}, in {trace}",
                calls.len()
            ));
        }
        for call in calls {
            let priced = trace.children(call, |s| {
                s.kind == "SERVER"
                    && s.service.starts_with("pricing-v")
                    && s.name.starts_with("pricing:")
            });
            if priced.len() != 1 {
                return Err(format!(
                    "pricing's inbound span of {call}: {priced:?} in {trace}"
                ));
            }
        }
    }
    Ok(())
}

#[test]
#[ignore = "needs root (weft up creates network namespaces, links and capture rules) and Python's grpcio and opentelemetry-proto"]
fn a_pages_spans_reach_an_otlp_receiver_linked_across_every_hop() {
    let _serial = serial();
    // The receiver listens where the pods reach the host: its address on the mesh's bridge,
    // the pods' gateway (the first address of the pod range).
    let host = format!("198.19.{N}.1");
    let listen = format!("{host}:{}", free_port());
    let cfg = shop("trace", N);
    let mesh_yaml = std::fs::read_to_string(cfg.path.join("mesh.yaml")).expect("mesh.yaml");
    let tracing = format!(
        "trustDomain: shop.local\n  tracing: {{enabled: true, endpoint: \"http://{listen}\", samplingPercent: 100}}"
    );
    let traced = mesh_yaml.replace("trustDomain: shop.local", &tracing);
    assert_ne!(traced, mesh_yaml, "no trustDomain line in the shop's Mesh");
    cfg.write("mesh.yaml", &traced);

    let mesh = Mesh::up("trace", &cfg.path);
    let control = mesh.bound()["control"]["secureDiscovery"].to_string();
    assert!(
        control.contains(&format!("\"{host}:")),
        "the pods reach the host at {host}, as they reach the control plane: {control}"
    );
    // The bridge and its address exist now: the receiver can listen there.
    let receiver = Receiver::start(&listen);

    for _ in 0..PAGES {
        let (status, body) = http_get(mesh.ingress_port, "/").expect("the ingress answers");
        assert_eq!(status, 200, "{body}");
    }

    // A page's trace, whole and linked hop by hop; and one trace per page.
    let what = "a page's trace, linked across every hop";
    let (spans, page) = eventually_blocking(what, ARRIVED, || {
        let spans = receiver.spans();
        let all = traces(&spans);
        let roots = (all.values())
            .filter(|t| t.spans.iter().any(|s| s.of(GATEWAY, "CLIENT")))
            .count();
        let mut why = Vec::new();
        for (id, t) in &all {
            match linked(t) {
                Ok(()) if roots >= PAGES => return Ok((spans.clone(), id.to_string())),
                Ok(()) => why.push(format!("{roots} of {PAGES} pages' gateway spans")),
                Err(e) => why.push(e),
            }
        }
        // The first few reasons say enough (every trace is printed with its own).
        why.truncate(3);
        Err(format!(
            "{} spans in {} traces; {}\nreceiver log: {}",
            spans.len(),
            all.len(),
            why.join("\n"),
            receiver.log()
        ))
    });
    let all = traces(&spans);
    eprintln!("trace {page}:\n{}", all[page.as_str()]);

    // Every span has an id of its own.
    let mut ids = BTreeSet::new();
    for s in &spans {
        assert!(ids.insert(&s.id), "span id {} twice: {s}", s.id);
        assert_eq!(s.id.len(), 16, "{s}");
        assert_eq!(s.trace.len(), 32, "{s}");
    }
    // Every proxy on the page's path sent spans, each under its workload's name: a sidecar's
    // inbound span delivers to its own pod's app (`upstream_address`), its outbound spans
    // carry its own pod's app's calls (`downstream_address`); the gateway is named after its
    // Gateway.
    let services: BTreeSet<&str> = spans.iter().map(|s| s.service.as_str()).collect();
    for want in [
        GATEWAY,
        "frontend.shop",
        "catalog.shop",
        "cart.shop",
        "pricing-v1.shop",
    ] {
        assert!(services.contains(want), "no spans of {want}: {services:?}");
    }
    let workloads: BTreeMap<String, String> = (mesh.pods().iter())
        .map(|p| (text(&p["ip"]), text(&p["workload"])))
        .collect();
    for s in &spans {
        let app = match (s.direction.as_str(), s.kind.as_str()) {
            ("inbound", "SERVER") => "upstream_address",
            ("outbound", "CLIENT") => "downstream_address",
            ("gateway", "CLIENT") => {
                assert_eq!(s.service, GATEWAY, "{s}");
                continue;
            }
            _ => panic!("a span of an unexpected kind: {s}: {}", s.attributes),
        };
        let addr = text(&s.attributes[app]);
        let ip = addr.rsplit_once(':').map_or("", |(ip, _)| ip);
        let workload = workloads.get(ip);
        assert_eq!(
            Some(&s.service),
            workload.map(|w| format!("{w}.shop")).as_ref(),
            "{s}: {app} {addr} is not a pod of its workload; pods: {workloads:?}"
        );
    }
    drop(receiver);
    mesh.down();
}

fn text(v: &Value) -> String {
    v.as_str().unwrap_or_default().to_string()
}
