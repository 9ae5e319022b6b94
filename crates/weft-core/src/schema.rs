//! JSON Schemas (draft 2020-12) of every kind, as whole documents, and the configuration
//! reference page built from them (`docs/config.md`).

mod examples;
mod fields;
mod reference;

pub use examples::example;
pub use reference::reference_markdown;

use schemars::JsonSchema;
use schemars::generate::SchemaSettings;
use serde_json::{Map, Value, json};

use crate::resources::{
    AuthorizationPolicy, Gateway, GrpcRoute, HttpRoute, Kind, Mesh, Namespace, Service, TcpRoute,
    TrafficPolicy, Workload,
};

/// The JSON Schema of a whole `kind` document: the type's own fields plus the `apiVersion` and
/// `kind` the loader checks (and strips) before deserializing.
pub fn schema(kind: Kind) -> Value {
    let mut root = match kind {
        Kind::Mesh => root_for::<Mesh>(),
        Kind::Namespace => root_for::<Namespace>(),
        Kind::Workload => root_for::<Workload>(),
        Kind::Service => root_for::<Service>(),
        Kind::HttpRoute => root_for::<HttpRoute>(),
        Kind::GrpcRoute => root_for::<GrpcRoute>(),
        Kind::TcpRoute => root_for::<TcpRoute>(),
        Kind::Gateway => root_for::<Gateway>(),
        Kind::AuthorizationPolicy => root_for::<AuthorizationPolicy>(),
        Kind::TrafficPolicy => root_for::<TrafficPolicy>(),
        Kind::Fault => root_for::<crate::resources::Fault>(),
    };
    let obj = root
        .as_object_mut()
        .expect("the schema of a struct is an object");
    obj.insert("title".into(), json!(kind.name()));

    let mut properties = Map::new();
    properties.insert("apiVersion".into(), api_version_schema(kind));
    properties.insert(
        "kind".into(),
        json!({ "description": format!("`{}`.", kind.name()), "type": "string", "const": kind.name() }),
    );
    if let Some(Value::Object(own)) = obj.remove("properties") {
        properties.extend(own);
    }
    let mut required = vec![json!("apiVersion"), json!("kind")];
    if let Some(Value::Array(own)) = obj.remove("required") {
        required.extend(own);
    }
    // Rebuild in a fixed, readable key order.
    let mut out = Map::new();
    for key in ["$schema", "title", "description", "type"] {
        if let Some(v) = obj.remove(key) {
            out.insert(key.into(), v);
        }
    }
    out.insert("properties".into(), Value::Object(properties));
    out.insert("required".into(), Value::Array(required));
    out.extend(std::mem::take(obj));
    Value::Object(out)
}

fn root_for<T: JsonSchema>() -> Value {
    SchemaSettings::draft2020_12()
        .into_generator()
        .into_root_schema_for::<T>()
        .to_value()
}

fn api_version_schema(kind: Kind) -> Value {
    let versions = kind.api_versions();
    let description = match versions {
        [only] => format!("`{only}`."),
        [first, rest @ ..] => format!(
            "`{first}` (preferred){}.",
            rest.iter()
                .map(|v| format!(", or `{v}`"))
                .collect::<String>()
        ),
        [] => unreachable!("every kind has an apiVersion"),
    };
    json!({ "description": description, "type": "string", "enum": versions })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_kind_is_described_and_closed() {
        for kind in Kind::ALL {
            let s = schema(kind);
            let description = s["description"].as_str().unwrap_or_default();
            assert!(!description.is_empty(), "{kind} needs a doc comment");
            assert_eq!(s["additionalProperties"], false, "{kind}");
            assert_eq!(s["required"][0], "apiVersion");
            assert_eq!(s["required"][1], "kind");
            assert_eq!(
                s["properties"]["apiVersion"]["enum"],
                json!(kind.api_versions())
            );
            assert_eq!(s["properties"]["kind"]["const"], kind.name());
        }
    }
}
