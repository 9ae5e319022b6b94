//! Metadata exchange: what a workload's metrics say about the workload at the other end
//! (Istio's `source_*`/`destination_*` labels). A tunnel client names its own workload on each
//! CONNECT in the [`HEADER`] header; the server reads it back with [`Metadata::claimed`].
//!
//! The claim is trusted for labelling metrics only, never for policy: policy knows the peer by
//! its certificate. A claim whose namespace is not the certificate's, or with a value that is
//! not a plain name, is ignored (the labels say `unknown`), so a peer can neither forge another
//! namespace's traffic in dashboards nor blow up the series count with arbitrary strings.

use std::sync::Arc;

use http::HeaderValue;
use weft_core::identity::SpiffeId;
use weft_core::model::{Endpoint, ProxyConfig};

/// The CONNECT request header carrying the client's [`Metadata`].
pub const HEADER: &str = "weft-peer-metadata";

/// Longest value accepted in a claim (a Kubernetes name).
const MAX_VALUE: usize = 253;

/// A workload as metrics describe it; an empty field is unknown.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Metadata {
    pub workload: String,
    pub namespace: String,
    pub app: String,
    pub version: String,
    /// Its SPIFFE ID, when the hop to it is mTLS (it is proven then, not claimed).
    pub principal: String,
}

impl Metadata {
    /// The workload a proxy serves, from its configuration.
    pub fn of_config(c: &ProxyConfig) -> Metadata {
        Metadata {
            workload: c.workload.clone(),
            namespace: c.namespace.clone(),
            app: c.app.clone(),
            version: c.version.clone(),
            principal: c.identity.clone(),
        }
    }

    /// The workload behind an endpoint; its principal only when it is reached over mTLS.
    pub fn of_endpoint(ep: &Endpoint, mtls: bool) -> Metadata {
        Metadata {
            workload: ep.workload.clone(),
            namespace: ep.namespace.clone(),
            app: ep.app.clone(),
            version: ep.version.clone(),
            principal: if mtls {
                ep.identity.clone()
            } else {
                String::new()
            },
        }
    }

    /// What a peer proven to be `principal` is known as: its claim (see the module doc) when
    /// it is acceptable, else only the namespace its SPIFFE ID names.
    pub fn claimed(header: Option<&HeaderValue>, principal: &str) -> Metadata {
        let namespace = SpiffeId::parse(principal)
            .map(|id| id.namespace)
            .unwrap_or_default();
        let claim = header
            .and_then(|v| v.to_str().ok())
            .and_then(parse)
            .filter(|m| m.namespace == namespace);
        Metadata {
            principal: principal.to_string(),
            ..claim.unwrap_or(Metadata {
                namespace,
                ..Metadata::default()
            })
        }
    }

    /// The header value naming this workload (its principal is never sent: the certificate
    /// proves it).
    pub fn header(&self) -> Option<HeaderValue> {
        let fields = [
            ("workload", &self.workload),
            ("namespace", &self.namespace),
            ("app", &self.app),
            ("version", &self.version),
        ];
        let text: Vec<String> = fields
            .iter()
            .filter(|(_, v)| plain(v))
            .map(|(k, v)| format!("{k}={v}"))
            .collect();
        HeaderValue::from_str(&text.join(";")).ok()
    }
}

/// `workload=a;namespace=b;app=c;version=d`: None when any field is malformed.
fn parse(text: &str) -> Option<Metadata> {
    let mut m = Metadata::default();
    for field in text.split(';').filter(|f| !f.is_empty()) {
        let (k, v) = field.split_once('=')?;
        if !plain(v) {
            return None;
        }
        let slot = match k.trim() {
            "workload" => &mut m.workload,
            "namespace" => &mut m.namespace,
            "app" => &mut m.app,
            "version" => &mut m.version,
            _ => continue,
        };
        *slot = v.to_string();
    }
    Some(m)
}

/// A non-empty name of letters, digits, `.`, `_` and `-`, no longer than a Kubernetes name.
fn plain(v: &str) -> bool {
    !v.is_empty()
        && v.len() <= MAX_VALUE
        && v.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
}

/// A shared [`Metadata`], as requests carry it in their extensions.
pub type Shared = Arc<Metadata>;

#[cfg(test)]
mod tests {
    use super::*;

    const FRONTEND: &str = "spiffe://cluster.local/ns/shop/sa/frontend";

    fn frontend() -> Metadata {
        Metadata {
            workload: "frontend".into(),
            namespace: "shop".into(),
            app: "frontend".into(),
            version: "v1".into(),
            principal: FRONTEND.into(),
        }
    }

    #[test]
    fn a_claim_in_the_certificates_namespace_names_the_peer() {
        let header = frontend().header().unwrap();
        assert_eq!(
            header,
            "workload=frontend;namespace=shop;app=frontend;version=v1"
        );
        assert_eq!(Metadata::claimed(Some(&header), FRONTEND), frontend());
    }

    #[test]
    fn a_claim_of_another_namespace_or_with_odd_values_is_ignored() {
        let other = HeaderValue::from_static("workload=admin;namespace=kube-system");
        let odd = HeaderValue::from_static("workload=a b;namespace=shop");
        for h in [Some(&other), Some(&odd), None] {
            let m = Metadata::claimed(h, FRONTEND);
            assert_eq!(m.workload, "", "{h:?}");
            assert_eq!(m.namespace, "shop", "from the certificate");
            assert_eq!(m.principal, FRONTEND);
        }
    }
}
