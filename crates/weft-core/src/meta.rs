//! Object metadata shared by every kind, Kubernetes-shaped.

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// Namespace used when `metadata.namespace` is not set.
pub const DEFAULT_NAMESPACE: &str = "default";

/// `metadata` of every resource.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ObjectMeta {
    /// Name of the resource, unique per kind and namespace (a DNS label: lower case letters, digits and `-`).
    pub name: String,
    /// Namespace of the resource. Default: `default`. Ignored for cluster-scoped kinds (Mesh, Namespace).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    /// Labels. weft reads `weft.dev/rev` (or its alias `istio.io/rev`), `weft.dev/dataplane-mode` and `weft.dev/use-waypoint`.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<String, String>,
    /// Annotations. weft reads the `weft.dev/` proxy settings listed in docs/config.md.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
    /// Set by Kubernetes; accepted and ignored.
    #[serde(default, skip_serializing)]
    pub uid: Option<serde_json::Value>,
    /// Set by Kubernetes; accepted and ignored.
    #[serde(default, skip_serializing)]
    pub resource_version: Option<serde_json::Value>,
    /// Set by Kubernetes; accepted and ignored.
    #[serde(default, skip_serializing)]
    pub generation: Option<serde_json::Value>,
    /// Set by Kubernetes (RFC 3339). Orders routes whose matches are equally specific: the
    /// oldest first; a route without one counts as the newest.
    #[serde(default, skip_serializing)]
    pub creation_timestamp: Option<serde_json::Value>,
    /// Set by Kubernetes; accepted and ignored.
    #[serde(default, skip_serializing)]
    pub managed_fields: Option<serde_json::Value>,
    /// Set by Kubernetes; accepted and ignored.
    #[serde(default, skip_serializing)]
    pub owner_references: Option<serde_json::Value>,
    /// Set by Kubernetes; accepted and ignored.
    #[serde(default, skip_serializing)]
    pub finalizers: Option<serde_json::Value>,
    /// Set by Kubernetes; accepted and ignored.
    #[serde(default, skip_serializing)]
    pub generate_name: Option<serde_json::Value>,
}

impl ObjectMeta {
    /// The namespace, with the default applied.
    pub fn namespace(&self) -> &str {
        self.namespace.as_deref().unwrap_or(DEFAULT_NAMESPACE)
    }

    pub fn label(&self, key: &str) -> Option<&str> {
        self.labels.get(key).map(String::as_str)
    }

    pub fn annotation(&self, key: &str) -> Option<&str> {
        self.annotations.get(key).map(String::as_str)
    }
}

/// Selects workloads by their labels. An empty selector selects every workload in the namespace.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct LabelSelector {
    /// Every label here must be present on the workload with the same value.
    #[serde(default)]
    pub match_labels: BTreeMap<String, String>,
}

impl LabelSelector {
    pub fn matches(&self, labels: &BTreeMap<String, String>) -> bool {
        selects(&self.match_labels, labels)
    }
}

/// True when every `selector` entry is in `labels`.
pub fn selects(selector: &BTreeMap<String, String>, labels: &BTreeMap<String, String>) -> bool {
    selector.iter().all(|(k, v)| labels.get(k) == Some(v))
}

/// Why a name is not a DNS-1123 label. The text completes a sentence that starts with the
/// name: `name "Web" contains 'W'; ...`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DnsLabelError {
    #[error("must not be empty")]
    Empty,
    #[error("is {0} characters long; the limit is 63")]
    TooLong(usize),
    #[error("contains {found:?}; use lower-case letters, digits and '-' (e.g. {suggestion:?})")]
    BadChar { found: char, suggestion: String },
    #[error("must start and end with a letter or digit")]
    Ends,
}

/// Checks a DNS-1123 label (`metadata.name` of most kinds): 1–63 of `a-z0-9-`, alphanumeric at both ends.
pub fn check_dns_label(name: &str) -> Result<(), DnsLabelError> {
    if name.is_empty() {
        return Err(DnsLabelError::Empty);
    }
    if name.len() > 63 {
        return Err(DnsLabelError::TooLong(name.len()));
    }
    if let Some(found) = name
        .chars()
        .find(|c| !(c.is_ascii_lowercase() || c.is_ascii_digit() || *c == '-'))
    {
        return Err(DnsLabelError::BadChar {
            found,
            suggestion: suggest_dns_label(name),
        });
    }
    if name.starts_with('-') || name.ends_with('-') {
        return Err(DnsLabelError::Ends);
    }
    Ok(())
}

fn suggest_dns_label(name: &str) -> String {
    let s: String = name
        .to_ascii_lowercase()
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .collect();
    s.trim_matches('-').to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dns_label_errors_read_after_the_name() {
        let why = |name: &str| check_dns_label(name).unwrap_err().to_string();
        assert_eq!(check_dns_label("my-shop-2"), Ok(()));
        assert_eq!(why(""), "must not be empty");
        assert_eq!(
            why(&"a".repeat(64)),
            "is 64 characters long; the limit is 63"
        );
        assert_eq!(
            why("My_Shop"),
            "contains 'M'; use lower-case letters, digits and '-' (e.g. \"my-shop\")"
        );
        assert_eq!(why("-shop"), "must start and end with a letter or digit");
        assert_eq!(check_dns_label("shop-"), Err(DnsLabelError::Ends));
    }
}
