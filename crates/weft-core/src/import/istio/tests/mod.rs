//! Table-driven tests of the Istio conversions: each case is Istio YAML as users write it,
//! and what its conversion must hold; plus a round trip of a whole Bookinfo-style config
//! through weft's loader and analyzer.

mod policies;
mod roundtrip;
mod routes;
mod workloads;

use serde_json::Value;

use super::{Import, Input, Options, Row, convert};
use crate::load::yaml::parse_documents;

/// Services and workloads the cases refer to: `reviews` (v1, v2, v3) and `ratings` (v1) in
/// `bookinfo`, port 9080.
pub const APPS: &str = r#"
apiVersion: v1
kind: Service
metadata: {name: reviews, namespace: bookinfo}
spec:
  selector: {app: reviews}
  ports: [{name: http, port: 9080, targetPort: 9080}]
---
apiVersion: v1
kind: Service
metadata: {name: ratings, namespace: bookinfo}
spec:
  selector: {app: ratings}
  ports: [{name: http, port: 9080}]
---
apiVersion: v1
kind: Service
metadata: {name: productpage, namespace: bookinfo}
spec:
  selector: {app: productpage}
  ports: [{name: http, port: 9080}]
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: reviews-v1, namespace: bookinfo}
spec:
  template:
    metadata: {labels: {app: reviews, version: v1}}
    spec: {containers: [{name: reviews, image: reviews:v1, ports: [{containerPort: 9080}]}]}
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: ratings-v1, namespace: bookinfo}
spec:
  template:
    metadata: {labels: {app: ratings, version: v1}}
    spec: {containers: [{name: ratings, image: ratings:v1, ports: [{containerPort: 9080}]}]}
"#;

/// The subsets the cases use.
pub const SUBSETS: &str = r#"
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: reviews, namespace: bookinfo}
spec:
  host: reviews
  subsets:
  - {name: v1, labels: {version: v1}}
  - {name: v2, labels: {version: v2}}
  - {name: v3, labels: {version: v3}}
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: ratings, namespace: bookinfo}
spec:
  host: ratings.bookinfo.svc.cluster.local
  subsets:
  - {name: v1, labels: {version: v1}}
"#;

/// The converted documents of `yaml` (one input file) and the summary rows.
pub struct Converted {
    pub import: Import,
    pub docs: Vec<Value>,
    pub text: String,
}

impl Converted {
    /// The document of `kind` and `name`; panics with the output when there is none.
    pub fn doc(&self, kind: &str, name: &str) -> &Value {
        self.docs
            .iter()
            .find(|d| d["kind"] == kind && d["metadata"]["name"] == name)
            .unwrap_or_else(|| panic!("no {kind} {name} in:\n{}", self.text))
    }

    pub fn has(&self, kind: &str, name: &str) -> bool {
        self.docs
            .iter()
            .any(|d| d["kind"] == kind && d["metadata"]["name"] == name)
    }

    /// The row of the Istio document titled `source` (`VirtualService bookinfo/reviews`).
    pub fn row(&self, source: &str) -> &Row {
        self.import
            .rows
            .iter()
            .find(|r| r.source == source)
            .unwrap_or_else(|| panic!("no row {source} in {:#?}", self.import.rows))
    }

    /// Every note of every row, one per line.
    pub fn notes(&self) -> String {
        self.import
            .rows
            .iter()
            .flat_map(|r| r.notes.iter().cloned())
            .collect::<Vec<_>>()
            .join("\n")
    }
}

pub fn run(yaml: &str) -> Converted {
    let import = convert(
        &[Input {
            file: "in.yaml".into(),
            text: yaml.into(),
        }],
        &Options::default(),
    );
    assert!(import.errors.is_empty(), "{:?}", import.errors);
    let text = import.files[0].text.clone();
    let (docs, err) = parse_documents(&text);
    assert!(err.is_none(), "output does not parse: {err:?}\n{text}");
    let docs = docs
        .into_iter()
        .map(|d| d.value)
        .filter(|v| !v.is_null())
        .collect();
    Converted { import, docs, text }
}

/// `run` over the apps, the subsets and `istio`.
pub fn with_apps(istio: &str) -> Converted {
    run(&format!("{APPS}---\n{SUBSETS}---\n{istio}"))
}
