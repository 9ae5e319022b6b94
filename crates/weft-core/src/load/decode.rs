//! One YAML document into one typed resource, by `apiVersion` and `kind`.

use serde::de::DeserializeOwned;
use serde_json::Value;

use super::error::{ConfigError, Location, closest, explain_serde};
use super::yaml::Document;
use super::{Foreign, Loaded};
use crate::meta::check_dns_label;
use crate::resources::{Kind, Resource, kube};

pub(super) enum Decoded {
    Resource(Box<Loaded>),
    Skipped(Location, String),
    Foreign(Box<Foreign>),
    Empty,
}

pub(super) fn decode(file: &str, doc: Document) -> Result<Decoded, Box<ConfigError>> {
    let start = Location::new(file, doc.start);
    let at = |path: &str, key: bool| {
        let pos = if key {
            doc.positions.key(path)
        } else {
            doc.positions.value(path)
        };
        Location::new(file, pos.unwrap_or(doc.start))
    };
    let obj = match &doc.value {
        Value::Null => return Ok(Decoded::Empty),
        Value::Object(o) => o,
        other => {
            return Err(Box::new(
                ConfigError::new(
                    start,
                    format!("a resource must be a mapping, found {}", describe(other)),
                )
                .with_hint("start the document with `apiVersion:`, `kind:` and `metadata:`"),
            ));
        }
    };
    let field = |name: &str| -> Result<String, Box<ConfigError>> {
        match obj.get(name) {
            Some(Value::String(s)) => Ok(s.clone()),
            Some(other) => Err(Box::new(
                ConfigError::new(at(name, false), format!("`{name}` must be a string, found {}", describe(other)))
                    .with_path(name),
            )),
            None => Err(Box::new(
                ConfigError::new(start.clone(), format!("required field `{name}` is missing"))
                    .with_hint(format!("add `{name}:` at the top of the document (e.g. `apiVersion: weft.dev/v1alpha1`, `kind: Workload`)")),
            )),
        }
    };
    let api_version = field("apiVersion")?;
    let kind_name = field("kind")?;
    let resource_name = obj
        .get("metadata")
        .and_then(|m| m.get("name"))
        .and_then(Value::as_str)
        .map(|n| format!("{kind_name}/{n}"));
    let with_resource = |mut e: ConfigError| {
        e.resource = resource_name.clone();
        Box::new(e)
    };

    if Foreign::is_foreign(&api_version) {
        // Before the kinds: Istio's Gateway and AuthorizationPolicy share weft's kind names.
        let meta = obj.get("metadata");
        let text = |key: &str| {
            meta.and_then(|m| m.get(key))
                .and_then(Value::as_str)
                .map(str::to_string)
        };
        let annotations = meta
            .and_then(|m| m.get("annotations"))
            .and_then(Value::as_object)
            .map(|a| {
                a.iter()
                    .filter_map(|(k, v)| Some((k.clone(), v.as_str()?.to_string())))
                    .collect()
            })
            .unwrap_or_default();
        return Ok(Decoded::Foreign(Box::new(Foreign {
            origin: start,
            api_version,
            kind: kind_name,
            name: text("name").unwrap_or_default(),
            namespace: text("namespace").unwrap_or_else(|| crate::meta::DEFAULT_NAMESPACE.into()),
            annotations,
        })));
    }
    let resource = if let Some(kind) = Kind::from_name(&kind_name) {
        if !kind.api_versions().contains(&api_version.as_str()) {
            return Err(with_resource(
                ConfigError::new(
                    at("apiVersion", false),
                    format!("kind {kind} is not served at apiVersion `{api_version}`"),
                )
                .with_path("apiVersion")
                .with_hint(format!("use `apiVersion: {}`", kind.api_versions()[0])),
            ));
        }
        typed(kind, doc.value.clone()).map_err(|e| with_resource(serde_error(e, &at)))?
    } else if let Some((_, k)) = kube::WORKLOAD_KINDS
        .iter()
        .find(|(v, k)| *v == api_version && *k == kind_name)
    {
        kube::to_workload(k, doc.value.clone())
            .map(Resource::Workload)
            .map_err(|e| with_resource(serde_error(e, &at)))?
    } else {
        let ours = api_version.starts_with("weft.dev/")
            || api_version.starts_with("gateway.networking.k8s.io/");
        let names: Vec<&str> = Kind::ALL.iter().map(|k| k.name()).collect();
        match closest(&kind_name, &names) {
            Some(best) if ours || best.eq_ignore_ascii_case(&kind_name) || api_version == "v1" => {
                return Err(with_resource(
                    ConfigError::new(at("kind", false), format!("unknown kind `{kind_name}`"))
                        .with_path("kind")
                        .with_hint(format!("did you mean `{best}`?")),
                ));
            }
            _ if ours => {
                return Err(with_resource(
                    ConfigError::new(
                        at("kind", false),
                        format!("unknown kind `{kind_name}` in `{api_version}`"),
                    )
                    .with_path("kind")
                    .with_hint(format!("weft reads: {}", names.join(", "))),
                ));
            }
            _ => {
                return Ok(Decoded::Skipped(
                    start,
                    format!("{api_version}/{kind_name}"),
                ));
            }
        }
    };

    if let Some((path, message, hint)) = invalid(&resource) {
        return Err(with_resource(
            ConfigError::new(at(&path, false), message)
                .with_path(path)
                .with_hint(hint),
        ));
    }
    let meta = resource.metadata();
    if let Err(why) = check_dns_label(&meta.name) {
        return Err(with_resource(
            ConfigError::new(
                at("metadata.name", false),
                format!("name {:?} {why}", meta.name),
            )
            .with_path("metadata.name"),
        ));
    }
    if let Some(ns) = &meta.namespace
        && let Err(why) = check_dns_label(ns)
    {
        return Err(with_resource(
            ConfigError::new(
                at("metadata.namespace", false),
                format!("namespace {ns:?} {why}"),
            )
            .with_path("metadata.namespace"),
        ));
    }
    Ok(Decoded::Resource(Box::new(Loaded {
        resource,
        origin: start,
        positions: doc.positions,
    })))
}

fn typed(kind: Kind, v: Value) -> Result<Resource, serde_path_to_error::Error<serde_json::Error>> {
    // apiVersion and kind have been checked; the types do not carry them.
    let v = match v {
        Value::Object(mut o) => {
            o.remove("apiVersion");
            o.remove("kind");
            Value::Object(o)
        }
        other => other,
    };
    fn de<T: DeserializeOwned>(
        v: Value,
    ) -> Result<T, serde_path_to_error::Error<serde_json::Error>> {
        serde_path_to_error::deserialize(v)
    }
    Ok(match kind {
        Kind::Mesh => Resource::Mesh(de(v)?),
        Kind::Namespace => Resource::Namespace(de(v)?),
        Kind::Workload => Resource::Workload(de(v)?),
        Kind::Service => Resource::Service(de(v)?),
        Kind::HttpRoute => Resource::HttpRoute(de(v)?),
        Kind::GrpcRoute => Resource::GrpcRoute(de(v)?),
        Kind::TcpRoute => Resource::TcpRoute(de(v)?),
        Kind::Gateway => Resource::Gateway(de(v)?),
        Kind::AuthorizationPolicy => Resource::AuthorizationPolicy(de(v)?),
        Kind::TrafficPolicy => Resource::TrafficPolicy(de(v)?),
        Kind::Fault => Resource::Fault(de(v)?),
    })
}

/// What the types alone cannot refuse, across fields: the field path, the problem, the fix.
fn invalid(resource: &Resource) -> Option<(String, String, String)> {
    match resource {
        Resource::TrafficPolicy(p) => {
            let limit = p.spec.local_rate_limit.as_ref().and_then(|l| l.problem());
            if let Some((field, message, hint)) = limit {
                return Some((format!("spec.localRateLimit.{field}"), message, hint));
            }
            let (field, message, hint) = p.spec.retries.as_ref()?.problem()?;
            Some((format!("spec.retries.{field}"), message, hint))
        }
        _ => None,
    }
}

fn serde_error(
    e: serde_path_to_error::Error<serde_json::Error>,
    at: &dyn Fn(&str, bool) -> Location,
) -> ConfigError {
    use serde_path_to_error::Segment;
    let mut path = String::new();
    for seg in e.path().iter() {
        match seg {
            Segment::Seq { index } => path += &format!("[{index}]"),
            Segment::Map { key } | Segment::Enum { variant: key } => {
                if !path.is_empty() {
                    path.push('.');
                }
                path += key;
            }
            Segment::Unknown => {}
        }
    }
    let (message, hint, unknown) = explain_serde(&e.inner().to_string());
    let (location, path) = match unknown {
        Some(field) => {
            let p = if path.is_empty() {
                field
            } else if path == field || path.ends_with(&format!(".{field}")) {
                path
            } else {
                format!("{path}.{field}")
            };
            (at(&p, true), p)
        }
        None => (at(&path, false), path),
    };
    let mut err = ConfigError::new(location, message).with_path(path);
    err.hint = hint;
    err
}

fn describe(v: &Value) -> &'static str {
    match v {
        Value::Null => "nothing",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "a mapping",
    }
}
