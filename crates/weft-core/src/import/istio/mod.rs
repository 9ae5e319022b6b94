//! Istio configuration into weft's. VirtualServices become HTTPRoutes (GRPCRoutes for gRPC
//! Services, TCPRoutes for `tcp` routes) with Faults for fault injection; DestinationRules
//! become TrafficPolicies, and each subset a route uses a per-version Service; Istio's
//! AuthorizationPolicy becomes weft's; PeerAuthentication an mTLS mode on the Mesh, a
//! Namespace or the selected workloads; an Istio Gateway a Gateway API Gateway of class
//! `weft`; an EnvoyFilter inserting Envoy's local_ratelimit filter a TrafficPolicy
//! `localRateLimit`; Istio's labels and annotations on Namespaces and workloads weft's (or
//! nothing, where weft's default already does it). Every other document passes through unchanged.
//!
//! Nothing is dropped in silence: whatever cannot be converted is named in a `# weft import:`
//! comment at the place it would have gone, and in the summary ([`Row`]).

mod context;
mod destination;
mod envoyfilter;
mod gateway;
mod matches;
mod route;
mod route_filters;
mod security;
mod summary;
mod types;
mod workloads;

#[cfg(test)]
mod tests;

use serde_json::Value;

use crate::import::emit::{self, Comments};
use crate::load::yaml::parse_documents;
use context::{Context, SourceDoc};

pub use summary::table;

/// One input file.
#[derive(Debug, Clone)]
pub struct Input {
    /// Its name, used in comments, the summary and for the output file.
    pub file: String,
    pub text: String,
}

#[derive(Debug, Clone)]
pub struct Options {
    /// Istio's root namespace: a PeerAuthentication there is mesh-wide, and an
    /// AuthorizationPolicy there applies to every namespace.
    pub root_namespace: String,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            root_namespace: "istio-system".into(),
        }
    }
}

/// The converted configuration.
#[derive(Debug, Clone, Default)]
pub struct Import {
    /// One per input file, in order, with the same name.
    pub files: Vec<OutputFile>,
    /// One per Istio document, and per document whose Istio labels or annotations changed.
    pub rows: Vec<Row>,
    /// Inputs that could not be read (YAML syntax).
    pub errors: Vec<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct OutputFile {
    pub file: String,
    pub text: String,
}

/// What became of one input document.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Row {
    /// `VirtualService bookinfo/reviews`.
    pub source: String,
    /// `file:line`.
    pub location: String,
    /// `HTTPRoute bookinfo/reviews`, ...; empty when nothing was converted.
    pub converted: Vec<String>,
    /// What was not converted or converts with a difference, and why.
    pub notes: Vec<String>,
}

/// One converted document and its comments.
#[derive(Debug, Clone)]
pub(crate) struct Out {
    pub value: Value,
    pub comments: Comments,
}

/// What one Istio document became.
#[derive(Debug, Clone, Default)]
pub(crate) struct Converted {
    pub outs: Vec<Out>,
    /// Comments above the converted documents.
    pub general: Vec<String>,
    /// Changes made to other documents (`annotation weft.dev/mtls-mode on Deployment ...`).
    pub elsewhere: Vec<String>,
    /// Every note, for the summary.
    pub notes: Vec<String>,
}

impl Converted {
    pub fn add(&mut self, value: Value) -> usize {
        self.outs.push(Out {
            value,
            comments: Comments::new(),
        });
        self.outs.len() - 1
    }

    /// A comment at `path` of output `out`, also listed in the summary.
    pub fn note(&mut self, out: usize, path: &str, text: impl Into<String>) {
        let text = text.into();
        self.notes.push(text.clone());
        self.outs[out]
            .comments
            .entry(path.to_string())
            .or_default()
            .push(text);
    }

    /// A comment at `path` of output `out` that only explains (not in the summary).
    pub fn comment(&mut self, out: usize, path: &str, text: impl Into<String>) {
        self.outs[out]
            .comments
            .entry(path.to_string())
            .or_default()
            .push(text.into());
    }

    /// A comment above the converted documents, also listed in the summary.
    pub fn general(&mut self, text: impl Into<String>) {
        let text = text.into();
        self.notes.push(text.clone());
        self.general.push(text);
    }

    /// Notes `fields` (the `rest` of an Istio struct at `at`) as not converted.
    pub fn unknown(&mut self, out: Option<usize>, path: &str, at: &str, rest: &types::Rest) {
        for key in rest.keys() {
            let text = format!("{at}{key}: not converted (weft has no equivalent)");
            match out {
                Some(o) => self.note(o, path, text),
                None => self.general(text),
            }
        }
    }

    fn titles(&self) -> Vec<String> {
        let mut t: Vec<String> = self.outs.iter().map(|o| title(&o.value)).collect();
        t.extend(self.elsewhere.iter().cloned());
        t
    }
}

/// `Kind ns/name` of a converted document.
pub(crate) fn title(v: &Value) -> String {
    let d = SourceDoc::new(0, 0, String::new(), v.clone());
    d.title()
}

/// Converts `inputs`; every input file has one output file of the same name.
pub fn convert(inputs: &[Input], options: &Options) -> Import {
    let mut import = Import::default();
    let mut docs = Vec::new();
    for (f, input) in inputs.iter().enumerate() {
        let (parsed, syntax) = parse_documents(&input.text);
        if let Some(e) = syntax {
            import.errors.push(format!(
                "{}:{}:{}: {}",
                input.file, e.pos.line, e.pos.column, e.message
            ));
            continue;
        }
        let chunks = chunks(&input.text);
        for d in parsed {
            if d.value.is_null() {
                continue;
            }
            let text = chunks
                .iter()
                .rev()
                .find(|(start, _)| *start <= d.start.line)
                .map(|(_, t)| t.clone())
                .unwrap_or_default();
            docs.push(SourceDoc::new(f, d.start.line, text, d.value));
        }
    }
    let files: Vec<String> = inputs.iter().map(|i| i.file.clone()).collect();
    let mut ctx = Context::new(docs, files, &options.root_namespace);

    // Labels and annotations first: PeerAuthentications then add to the same documents.
    for i in 0..ctx.docs.len() {
        if !ctx.docs[i].is_istio() {
            workloads::convert(&mut ctx, i);
        }
    }
    let mut converted: Vec<Option<Converted>> = vec![None; ctx.docs.len()];
    for (i, slot) in converted.iter_mut().enumerate() {
        if ctx.docs[i].is_istio() {
            *slot = Some(convert_one(&mut ctx, i));
        }
    }
    if !ctx
        .docs
        .iter()
        .any(|d| d.is_istio() && d.kind == "PeerAuthentication")
    {
        import.rows.push(Row {
            source: "(no PeerAuthentication)".into(),
            location: String::new(),
            converted: vec!["weft's default mTLS mode, STRICT".into()],
            notes: vec![
                "without a PeerAuthentication Istio accepts plaintext (PERMISSIVE); weft's default is STRICT: every workload in the weft mesh speaks mTLS, clients outside it are refused".into(),
            ],
        });
    }

    for (f, input) in inputs.iter().enumerate() {
        let mut parts: Vec<String> = Vec::new();
        for (i, c) in converted.iter().enumerate() {
            if ctx.docs[i].file != f || ctx.docs[i].after.is_some() {
                continue;
            }
            parts.extend(render(&ctx, i, c.as_ref(), &mut import.rows));
            for j in 0..ctx.docs.len() {
                if ctx.docs[j].after == Some(i) {
                    parts.extend(render(&ctx, j, None, &mut import.rows));
                }
            }
        }
        let mut text = parts.join("---\n");
        if !text.is_empty() && !text.ends_with('\n') {
            text.push('\n');
        }
        import.files.push(OutputFile {
            file: input.file.clone(),
            text,
        });
    }
    import
}

fn convert_one(ctx: &mut Context, i: usize) -> Converted {
    let d = &ctx.docs[i];
    let mut c = Converted::default();
    let outcome = match (
        d.api_version.split('/').next().unwrap_or_default(),
        d.kind.as_str(),
    ) {
        ("networking.istio.io", "VirtualService") => route::convert(ctx, i, &mut c),
        ("networking.istio.io", "DestinationRule") => destination::convert(ctx, i, &mut c),
        ("networking.istio.io", "Gateway") => gateway::convert(ctx, i, &mut c),
        ("security.istio.io", "AuthorizationPolicy") => security::authorization(ctx, i, &mut c),
        ("networking.istio.io", "EnvoyFilter") => envoyfilter::convert(ctx, i, &mut c),
        ("security.istio.io", "PeerAuthentication") => {
            security::peer_authentication(ctx, i, &mut c)
        }
        (_, kind) => {
            c.general(format!("{kind}: not converted: {}", unsupported(kind)));
            Ok(())
        }
    };
    if let Err(e) = outcome {
        c.outs.clear();
        c.general(format!("not converted: {e}"));
    }
    c
}

/// Why a kind has no weft equivalent.
fn unsupported(kind: &str) -> &'static str {
    match kind {
        "Sidecar" => {
            "weft's proxies discover the Services a workload uses on demand, which is what Sidecar's egress hosts were for; Mesh spec.outboundTrafficPolicy: REGISTRY_ONLY refuses unknown destinations"
        }
        "ServiceEntry" => {
            "weft has no registry of external services; with the Mesh's default outboundTrafficPolicy ALLOW_ANY, traffic to hosts outside the mesh passes through as TCP"
        }
        "EnvoyFilter" => {
            "weft's proxy is not Envoy; only a local_ratelimit HTTP filter on SIDECAR_INBOUND converts"
        }
        "WasmPlugin" => "weft's proxy runs no Wasm plugins",
        "RequestAuthentication" => "weft does not validate end-user JWTs",
        "Telemetry" => {
            "weft's metrics and access logs are on by default; tracing and access-log settings are on the Mesh (spec.tracing, spec.accessLog)"
        }
        "WorkloadEntry" | "WorkloadGroup" => "weft runs no workloads outside its pods",
        "ProxyConfig" => {
            "set proxy settings with weft.dev/ annotations on the workloads or Namespace (docs/config.md)"
        }
        "IstioOperator" => {
            "installation settings; weft's are defaults (hold-application, small proxy resources) set on the Mesh (spec.proxy)"
        }
        _ => "weft has no equivalent",
    }
}

/// The text of one output document (or comment block) and its summary row.
fn render(ctx: &Context, i: usize, c: Option<&Converted>, rows: &mut Vec<Row>) -> Vec<String> {
    let d = &ctx.docs[i];
    let location = match d.line {
        0 => ctx.files[d.file].clone(),
        line => format!("{}:{line}", ctx.files[d.file]),
    };
    let prefixed = |lines: &[String]| -> Vec<String> {
        lines.iter().map(|l| format!("weft import: {l}")).collect()
    };
    let with_prefix = |comments: &Comments| -> Comments {
        comments
            .iter()
            .map(|(k, v)| (k.clone(), prefixed(v)))
            .collect()
    };
    if let Some(c) = c {
        let titles = c.titles();
        let mut head = vec![format!(
            "{} {} ({location}) -> {}",
            d.api_version,
            d.title(),
            if titles.is_empty() {
                "nothing".to_string()
            } else {
                titles.join(", ")
            }
        )];
        head.extend(c.general.iter().cloned());
        rows.push(Row {
            source: d.title(),
            location,
            converted: titles,
            notes: c.notes.clone(),
        });
        let head = emit::comment_lines(&prefixed(&head), 0);
        if c.outs.is_empty() {
            return vec![head];
        }
        return c
            .outs
            .iter()
            .enumerate()
            .map(|(k, o)| {
                let text = emit::document(&o.value, &with_prefix(&o.comments));
                if k == 0 {
                    format!("{head}{text}")
                } else {
                    text
                }
            })
            .collect();
    }
    match &d.changed {
        Some(comments) => {
            if d.istio_meta {
                // Only what was left as it was, or not converted, is a note.
                let notes: Vec<String> = (comments.values().flatten())
                    .filter(|n| n.contains("not converted") || n.ends_with("kept"))
                    .cloned()
                    .collect();
                rows.push(Row {
                    source: d.title(),
                    location,
                    converted: vec![format!("{} (labels and annotations)", d.title())],
                    notes,
                });
            }
            vec![emit::document(&d.value, &with_prefix(comments))]
        }
        None => vec![d.text.trim_start_matches('\n').to_string()],
    }
}

/// The documents of `text`: (first line, text), split at `---` lines.
fn chunks(text: &str) -> Vec<(usize, String)> {
    let mut out = vec![(1, String::new())];
    for (n, line) in text.lines().enumerate() {
        if line.starts_with("---") {
            out.push((n + 2, String::new()));
            continue;
        }
        let cur = &mut out.last_mut().expect("one chunk").1;
        cur.push_str(line);
        cur.push('\n');
    }
    out.retain(|(_, t)| !t.trim().is_empty());
    out
}
