//! Everything the conversions look up across documents: the input documents themselves
//! (converted ones are changed in place and written again), Services with their selectors and
//! ports, workloads with their pod labels, Namespaces, the Mesh, DestinationRule subsets and
//! the subsets routes use, Istio Gateways; and how an Istio host names a Service.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::{Map, Value};

use crate::import::emit::Comments;
use crate::meta::DEFAULT_NAMESPACE;
use crate::resources::kube::WORKLOAD_KINDS;

/// One input document.
#[derive(Debug, Clone)]
pub struct SourceDoc {
    /// Index of its input file.
    pub file: usize,
    /// Line where it starts, for the summary.
    pub line: usize,
    /// Its text, to pass it through unchanged.
    pub text: String,
    pub value: Value,
    pub api_version: String,
    pub kind: String,
    pub name: String,
    pub namespace: String,
    /// Set once the converter changed it: it is written again, with these comments.
    pub changed: Option<Comments>,
    /// Created by the converter, written after this document.
    pub after: Option<usize>,
    /// It has Istio labels or annotations of its own: the summary has a row for it.
    pub istio_meta: bool,
}

impl SourceDoc {
    pub fn new(file: usize, line: usize, text: String, value: Value) -> SourceDoc {
        let s = |v: Option<&Value>| v.and_then(Value::as_str).unwrap_or_default().to_string();
        let meta = value.get("metadata");
        let namespace = s(meta.and_then(|m| m.get("namespace")));
        SourceDoc {
            file,
            line,
            text,
            api_version: s(value.get("apiVersion")),
            kind: s(value.get("kind")),
            name: s(meta.and_then(|m| m.get("name"))),
            namespace: if namespace.is_empty() {
                DEFAULT_NAMESPACE.into()
            } else {
                namespace
            },
            value,
            changed: None,
            after: None,
            istio_meta: false,
        }
    }

    pub fn is_istio(&self) -> bool {
        crate::load::Foreign::is_foreign(&self.api_version)
    }

    /// `Kind ns/name` (`Kind name` for cluster-scoped kinds).
    pub fn title(&self) -> String {
        match self.kind.as_str() {
            "Namespace" | "Mesh" => format!("{} {}", self.kind, self.name),
            _ => format!("{} {}/{}", self.kind, self.namespace, self.name),
        }
    }

    /// Marks the document changed and adds a comment at `path`.
    pub fn note(&mut self, path: &str, text: impl Into<String>) {
        self.changed
            .get_or_insert_with(Comments::new)
            .entry(path.to_string())
            .or_default()
            .push(text.into());
    }

    /// Where this kind keeps its pods' labels and annotations: a controller's pod template,
    /// otherwise its own metadata.
    pub fn pod_meta_path(&self) -> &'static str {
        if self.api_version == "apps/v1" {
            "spec.template.metadata"
        } else {
            "metadata"
        }
    }

    /// The string map at `path` (`metadata.labels`), created when absent.
    pub fn map_at(&mut self, path: &str) -> &mut Map<String, Value> {
        let mut cur = &mut self.value;
        for part in path.split('.') {
            if !cur.is_object() {
                *cur = Value::Object(Map::new());
            }
            cur = cur
                .as_object_mut()
                .expect("an object")
                .entry(part)
                .or_insert_with(|| Value::Object(Map::new()));
        }
        if !cur.is_object() {
            *cur = Value::Object(Map::new());
        }
        cur.as_object_mut().expect("an object")
    }

    /// The string map at `path`, if there is one.
    pub fn strings_at(&self, path: &str) -> BTreeMap<String, String> {
        let mut cur = &self.value;
        for part in path.split('.') {
            match cur.get(part) {
                Some(v) => cur = v,
                None => return BTreeMap::new(),
            }
        }
        cur.as_object()
            .map(|o| {
                o.iter()
                    .map(|(k, v)| {
                        let s = v.as_str().map_or_else(|| v.to_string(), str::to_string);
                        (k.clone(), s)
                    })
                    .collect()
            })
            .unwrap_or_default()
    }

    pub fn is_workload(&self) -> bool {
        WORKLOAD_KINDS.contains(&(self.api_version.as_str(), self.kind.as_str()))
            || (self.api_version == crate::resources::WEFT_API && self.kind == "Workload")
    }
}

/// A Service port.
#[derive(Debug, Clone, PartialEq)]
pub struct Port {
    pub name: Option<String>,
    pub port: u16,
    pub app_protocol: Option<String>,
}

impl Port {
    pub fn is_grpc(&self) -> bool {
        let name = self.name.as_deref().unwrap_or_default();
        self.app_protocol.as_deref() == Some("grpc") || name == "grpc" || name.starts_with("grpc-")
    }
}

#[derive(Debug, Clone, Default)]
pub struct ServiceInfo {
    pub selector: BTreeMap<String, String>,
    pub ports: Vec<Port>,
}

/// What an Istio host names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Host {
    /// A Service in the input: (namespace, name).
    Service(String, String),
    /// A Service name the input does not define.
    Missing(String, String),
    /// A name outside the mesh's Services (`bookinfo.example.com`, `*`).
    External(String),
}

#[derive(Debug, Default)]
pub struct Context {
    pub docs: Vec<SourceDoc>,
    pub files: Vec<String>,
    pub services: BTreeMap<(String, String), ServiceInfo>,
    /// The subsets DestinationRules define, by (namespace, service).
    pub subsets: BTreeMap<(String, String), BTreeSet<String>>,
    /// (namespace, service, subset) that some route or mirror sends to.
    pub used_subsets: BTreeSet<(String, String, String)>,
    /// Istio Gateways by (namespace, name): the listener names routes attach to.
    pub gateways: BTreeMap<(String, String), Vec<String>>,
    /// Namespaces that policies in the root namespace are copied to.
    pub namespaces: BTreeSet<String>,
    pub root_namespace: String,
}

impl Context {
    /// Indexes Services, Namespaces, DestinationRules (by the Service their host names) and
    /// the subsets VirtualServices use.
    pub fn new(docs: Vec<SourceDoc>, files: Vec<String>, root_namespace: &str) -> Context {
        let mut ctx = Context {
            files,
            root_namespace: root_namespace.to_string(),
            ..Context::default()
        };
        for d in &docs {
            if d.api_version == "v1" && d.kind == "Service" {
                ctx.services.insert(
                    (d.namespace.clone(), d.name.clone()),
                    service_info(&d.value),
                );
            }
            // Namespaces named by Namespace documents or a document's own metadata, and the
            // default namespace of workloads and Services that name none.
            let named = d.value["metadata"]["namespace"].is_string()
                || d.is_workload()
                || (d.api_version == "v1" && d.kind == "Service");
            if d.kind == "Namespace" {
                ctx.namespaces.insert(d.name.clone());
            } else if named && d.namespace != root_namespace {
                ctx.namespaces.insert(d.namespace.clone());
            }
        }
        ctx.docs = docs;
        ctx.index_istio();
        ctx
    }

    fn index_istio(&mut self) {
        use super::types::{DestinationRule, VirtualService, spec};
        for i in 0..self.docs.len() {
            let d = &self.docs[i];
            if !d.is_istio() {
                continue;
            }
            match d.kind.as_str() {
                "DestinationRule" => {
                    let Ok(dr) = spec::<DestinationRule>(&d.value) else {
                        continue;
                    };
                    let (Host::Service(ns, name) | Host::Missing(ns, name)) =
                        self.resolve(&dr.host, &d.namespace)
                    else {
                        continue;
                    };
                    let entry = self.subsets.entry((ns, name)).or_default();
                    entry.extend(dr.subsets.into_iter().map(|s| s.name));
                }
                "VirtualService" => {
                    let Ok(vs) = spec::<VirtualService>(&d.value) else {
                        continue;
                    };
                    let ns = d.namespace.clone();
                    let dests = vs.http.iter().flat_map(|r| {
                        r.route
                            .iter()
                            .map(|x| &x.destination)
                            .chain(r.mirror.iter())
                            .chain(r.mirrors.iter().map(|m| &m.destination))
                    });
                    let tcp = vs
                        .tcp
                        .iter()
                        .flat_map(|r| r.route.iter().map(|x| &x.destination));
                    let mut used = Vec::new();
                    for dest in dests.chain(tcp) {
                        if let (Some(subset), Host::Service(s_ns, s) | Host::Missing(s_ns, s)) =
                            (&dest.subset, self.resolve(&dest.host, &ns))
                        {
                            used.push((s_ns, s, subset.clone()));
                        }
                    }
                    self.used_subsets.extend(used);
                }
                "Gateway" => {
                    let key = (d.namespace.clone(), d.name.clone());
                    let listeners = super::gateway::route_listeners(&d.value);
                    self.gateways.insert(key, listeners);
                }
                _ => {}
            }
        }
    }

    /// What `host`, written in namespace `ns`, names: a short name (`reviews`), `name.ns`, or
    /// `name.ns.svc[.<domain>]`.
    pub fn resolve(&self, host: &str, ns: &str) -> Host {
        if host.contains('*') {
            return Host::External(host.to_string());
        }
        let parts: Vec<&str> = host.trim_end_matches('.').split('.').collect();
        let (svc_ns, name) = match parts.as_slice() {
            [name] => (ns, *name),
            [name, svc_ns]
                if self
                    .services
                    .contains_key(&(svc_ns.to_string(), name.to_string())) =>
            {
                (*svc_ns, *name)
            }
            [name, svc_ns, "svc", ..] => (*svc_ns, *name),
            _ => return Host::External(host.to_string()),
        };
        let key = (svc_ns.to_string(), name.to_string());
        if self.services.contains_key(&key) {
            Host::Service(key.0, key.1)
        } else {
            Host::Missing(key.0, key.1)
        }
    }

    /// The per-version Service that stands for `subset` of Service `ns/name`.
    pub fn subset_service(&self, name: &str, subset: &str) -> String {
        let clean: String = subset
            .to_ascii_lowercase()
            .chars()
            .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
            .collect();
        let full = format!("{name}-{}", clean.trim_matches('-'));
        full.chars()
            .take(63)
            .collect::<String>()
            .trim_end_matches('-')
            .to_string()
    }

    /// Indexes of the workload documents in `ns` whose pod labels contain `selector`.
    pub fn workloads_matching(&self, ns: &str, selector: &BTreeMap<String, String>) -> Vec<usize> {
        (0..self.docs.len())
            .filter(|&i| {
                let d = &self.docs[i];
                d.is_workload() && d.namespace == ns && {
                    let labels = d.strings_at(&format!("{}.labels", d.pod_meta_path()));
                    crate::meta::selects(selector, &labels)
                }
            })
            .collect()
    }

    /// The index of the Namespace document `ns`, created after document `after` when the
    /// input has none.
    pub fn namespace_doc(&mut self, ns: &str, after: usize) -> usize {
        if let Some(i) = (self.docs.iter())
            .position(|d| d.api_version == "v1" && d.kind == "Namespace" && d.name == ns)
        {
            return i;
        }
        let value =
            serde_json::json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}});
        self.synthetic(value, after)
    }

    /// The index of the Mesh document, created after document `after` when the input has none.
    pub fn mesh_doc(&mut self, after: usize) -> usize {
        if let Some(i) = (self.docs.iter())
            .position(|d| d.api_version == crate::resources::WEFT_API && d.kind == "Mesh")
        {
            return i;
        }
        let value = serde_json::json!({"apiVersion": crate::resources::WEFT_API, "kind": "Mesh", "metadata": {"name": "mesh"}, "spec": {}});
        self.synthetic(value, after)
    }

    fn synthetic(&mut self, value: Value, after: usize) -> usize {
        let file = self.docs[after].file;
        let mut d = SourceDoc::new(file, 0, String::new(), value);
        d.after = Some(after);
        d.changed = Some(Comments::new());
        self.docs.push(d);
        self.docs.len() - 1
    }
}

fn service_info(v: &Value) -> ServiceInfo {
    let spec = v.get("spec");
    let selector = spec
        .and_then(|s| s.get("selector"))
        .and_then(Value::as_object)
        .map(|o| {
            o.iter()
                .filter_map(|(k, v)| Some((k.clone(), v.as_str()?.to_string())))
                .collect()
        })
        .unwrap_or_default();
    let ports = spec
        .and_then(|s| s.get("ports"))
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(|p| {
                    Some(Port {
                        name: p.get("name").and_then(Value::as_str).map(str::to_string),
                        port: u16::try_from(p.get("port")?.as_u64()?).ok()?,
                        app_protocol: (p.get("appProtocol").and_then(Value::as_str))
                            .map(str::to_string),
                    })
                })
                .collect()
        })
        .unwrap_or_default();
    ServiceInfo { selector, ports }
}
