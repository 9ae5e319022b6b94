//! Lookups over a [`Config`] that the rules share.

use std::collections::{BTreeMap, HashMap};

use crate::annotations::ProxySettings;
use crate::load::{Config, Loaded};
use crate::meta::DEFAULT_NAMESPACE;
use crate::resources::mesh::MeshSpec;
use crate::resources::policy::AuthorizationPolicy;
use crate::resources::{Gateway, Resource, Service, Workload};

/// The configuration, indexed by kind, namespace and name.
#[derive(Debug)]
pub struct Index<'a> {
    pub config: &'a Config,
    pub mesh: MeshSpec,
    pub mesh_resource: Option<&'a Loaded>,
    services: HashMap<(&'a str, &'a str), (&'a Loaded, &'a Service)>,
    gateways: HashMap<(&'a str, &'a str), (&'a Loaded, &'a Gateway)>,
    namespaces: HashMap<&'a str, &'a Loaded>,
}

static EMPTY: BTreeMap<String, String> = BTreeMap::new();

impl<'a> Index<'a> {
    pub fn new(config: &'a Config) -> Self {
        let mut index = Index {
            config,
            mesh: MeshSpec::default(),
            mesh_resource: None,
            services: HashMap::new(),
            gateways: HashMap::new(),
            namespaces: HashMap::new(),
        };
        for l in &config.resources {
            let ns = l.resource.metadata().namespace();
            let name = l.resource.metadata().name.as_str();
            match &l.resource {
                Resource::Mesh(m) if index.mesh_resource.is_none() => {
                    index.mesh = m.spec.clone();
                    index.mesh_resource = Some(l);
                }
                Resource::Service(s) => {
                    index.services.insert((ns, name), (l, s));
                }
                Resource::Gateway(g) => {
                    index.gateways.insert((ns, name), (l, g));
                }
                Resource::Namespace(_) => {
                    index.namespaces.insert(name, l);
                }
                _ => {}
            }
        }
        index
    }

    /// Every resource of one kind, with its origin.
    pub fn each<T: 'a>(
        &self,
        pick: fn(&'a Resource) -> Option<&'a T>,
    ) -> impl Iterator<Item = (&'a Loaded, &'a T)> + 'a {
        self.config
            .resources
            .iter()
            .filter_map(move |l| pick(&l.resource).map(|t| (l, t)))
    }

    pub fn workloads(&self) -> impl Iterator<Item = (&'a Loaded, &'a Workload)> + 'a {
        self.each(|r| match r {
            Resource::Workload(w) => Some(w),
            _ => None,
        })
    }

    pub fn service(&self, ns: &str, name: &str) -> Option<(&'a Loaded, &'a Service)> {
        self.services.get(&(ns, name)).copied()
    }

    pub fn gateway(&self, ns: &str, name: &str) -> Option<(&'a Loaded, &'a Gateway)> {
        self.gateways.get(&(ns, name)).copied()
    }

    pub fn namespace(&self, name: &str) -> Option<&'a Loaded> {
        self.namespaces.get(name).copied()
    }

    pub fn namespace_labels(&self, name: &str) -> &'a BTreeMap<String, String> {
        self.namespace(name)
            .map(|l| &l.resource.metadata().labels)
            .unwrap_or(&EMPTY)
    }

    pub fn namespace_annotations(&self, name: &str) -> &'a BTreeMap<String, String> {
        self.namespace(name)
            .map(|l| &l.resource.metadata().annotations)
            .unwrap_or(&EMPTY)
    }

    /// Workloads in `ns` whose labels contain `selector`.
    pub fn selected(
        &self,
        ns: &'a str,
        selector: &'a BTreeMap<String, String>,
    ) -> impl Iterator<Item = (&'a Loaded, &'a Workload)> + 'a {
        self.workloads().filter(move |(_, w)| {
            w.metadata.namespace() == ns && crate::meta::selects(selector, &w.metadata.labels)
        })
    }

    /// The AuthorizationPolicies that apply to workload `w`: in its namespace, selecting it
    /// (or with no selector), not attached to a waypoint.
    pub fn policies_for(
        &self,
        w: &'a Workload,
    ) -> impl Iterator<Item = (&'a Loaded, &'a AuthorizationPolicy)> + 'a {
        let ns = w.metadata.namespace();
        self.each(|r| match r {
            Resource::AuthorizationPolicy(p) => Some(p),
            _ => None,
        })
        .filter(move |(_, p)| {
            p.metadata.namespace() == ns
                && p.spec.target_refs.is_empty()
                && (p.spec.selector.as_ref()).is_none_or(|s| s.matches(&w.metadata.labels))
        })
    }

    /// The effective proxy settings of a workload.
    pub fn settings(&self, w: &Workload) -> ProxySettings {
        let ns = w.metadata.namespace();
        ProxySettings::resolve(
            &self.mesh,
            &[self.namespace_annotations(ns), &w.metadata.annotations],
            &[self.namespace_labels(ns), &w.metadata.labels],
        )
    }

    /// Namespaces that are implicit (exist without being declared).
    pub fn is_implicit_namespace(name: &str) -> bool {
        name == DEFAULT_NAMESPACE
    }
}

use crate::resources::route_common::{BackendRef, ParentReference};

/// A route of any kind, seen as parents and backends.
#[derive(Debug)]
pub struct RouteView<'a> {
    pub loaded: &'a Loaded,
    pub parents: &'a [ParentReference],
    /// Field path and reference of every backend, mirrors included.
    pub backends: Vec<(String, BackendRef)>,
    /// HTTPRoute or GRPCRoute: needs the protocol to be known.
    pub l7: bool,
}

impl<'a> Index<'a> {
    pub fn routes(&self) -> impl Iterator<Item = RouteView<'a>> + 'a {
        self.config.resources.iter().filter_map(|l| {
            let mut backends = Vec::new();
            let (parents, l7) = match &l.resource {
                Resource::HttpRoute(r) => {
                    for (i, rule) in r.spec.rules.iter().enumerate() {
                        for (j, b) in rule.backend_refs.iter().enumerate() {
                            backends.push((
                                format!("spec.rules[{i}].backendRefs[{j}]"),
                                b.as_backend(),
                            ));
                        }
                        for (j, f) in rule.filters.iter().enumerate() {
                            if let Some(m) = &f.request_mirror {
                                backends.push((
                                    format!(
                                        "spec.rules[{i}].filters[{j}].requestMirror.backendRef"
                                    ),
                                    m.backend_ref.clone(),
                                ));
                            }
                        }
                    }
                    (&r.spec.parent_refs, true)
                }
                Resource::GrpcRoute(r) => {
                    for (i, rule) in r.spec.rules.iter().enumerate() {
                        for (j, b) in rule.backend_refs.iter().enumerate() {
                            backends.push((
                                format!("spec.rules[{i}].backendRefs[{j}]"),
                                b.as_backend(),
                            ));
                        }
                    }
                    (&r.spec.parent_refs, true)
                }
                Resource::TcpRoute(r) => {
                    for (i, rule) in r.spec.rules.iter().enumerate() {
                        for (j, b) in rule.backend_refs.iter().enumerate() {
                            backends.push((format!("spec.rules[{i}].backendRefs[{j}]"), b.clone()));
                        }
                    }
                    (&r.spec.parent_refs, false)
                }
                _ => return None,
            };
            Some(RouteView {
                loaded: l,
                parents,
                backends,
                l7,
            })
        })
    }
}
