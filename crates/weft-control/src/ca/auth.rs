//! Who may ask for which identity. An [`Authenticator`] turns the bearer credential of a
//! request into a [`Grant`]: the namespace and service account the caller may get a
//! certificate for. [`BootstrapFile`] reads static tokens from a JSON file; a Kubernetes
//! TokenReview authenticator can implement the same trait.
//!
//! The bootstrap file (`weft control --bootstrap FILE`) holds only SHA-256 digests of tokens:
//!
//! ```json
//! {"credentials": [{"tokenSha256": "<64 hex>", "namespace": "shop", "serviceAccount": "cart",
//!   "pod": "cart-0", "workload": "cart", "address": "198.18.0.7", "role": "sidecar",
//!   "labels": {"app": "cart"}, "node": "node-a"}]}
//! ```
//!
//! Each entry is also the runtime's registration of that pod: `address` is where the pod lives
//! and connects from (the CA and discovery admit its proxy only from there), `workload`,
//! `role` and `labels` are what its proxy may claim. A pod without an address is never made an endpoint.
//!
//! It is re-read when it changes ([`crate::watch`]); a change that does not parse is logged and the previous
//! credentials stay in force.

use std::collections::{BTreeMap, HashMap};
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};
use std::time::SystemTime;

use serde::Deserialize;
use weft_core::identity::SpiffeId;

/// What a credential allows: certificates for this namespace and service account.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Grant {
    pub namespace: String,
    pub service_account: String,
    /// The pod the credential was given to; its certificate names it. May be empty (hand-made
    /// files), then discovery refuses the certificate: it names no pod.
    pub pod: String,
    /// The pod's address, where its proxy connects from; None: not bound to an address, and
    /// never an endpoint.
    pub address: Option<IpAddr>,
    /// The workload the pod belongs to; empty: any.
    pub workload: String,
    /// `sidecar` or `gateway`; empty: any.
    pub role: String,
    /// The pod's labels; empty: its Workload's.
    pub labels: BTreeMap<String, String>,
    /// The node the pod runs on (its node proxy may hold its certificate); empty: none. For a
    /// node proxy's own credential (role `node`), `pod` is the node's name.
    pub node: String,
}

impl Grant {
    /// The one identity this grant allows in `trust_domain`.
    pub fn identity(&self, trust_domain: &str) -> SpiffeId {
        SpiffeId::new(trust_domain, &self.namespace, &self.service_account)
    }
}

/// Why a credential was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Denied {
    #[error(
        "this control plane has no bootstrap credentials (start it with --bootstrap FILE), so it \
         issues no certificates"
    )]
    NotConfigured,
    #[error("unknown bootstrap token (sha256 {sha256_prefix}...): it is not in the bootstrap file")]
    UnknownToken { sha256_prefix: String },
    /// Any other reason, e.g. from a token review.
    #[error("{0}")]
    Other(String),
}

pub trait Authenticator: Send + Sync + std::fmt::Debug {
    fn authenticate(&self, bearer: &str) -> Result<Grant, Denied>;

    /// False when no credential can ever pass, so requests without one are told why.
    fn configured(&self) -> bool {
        true
    }

    /// The registration of pod `pod` in `namespace`: what its proxy may claim to be.
    fn registered(&self, _namespace: &str, _pod: &str) -> Option<Grant> {
        None
    }
}

/// Refuses everyone: no `--bootstrap` was given.
#[derive(Debug, Default)]
pub struct NoCredentials;

impl Authenticator for NoCredentials {
    fn authenticate(&self, _bearer: &str) -> Result<Grant, Denied> {
        Err(Denied::NotConfigured)
    }

    fn configured(&self) -> bool {
        false
    }
}

/// Static tokens from a JSON file, re-read when it changes ([`BootstrapFile::watch`]).
#[derive(Debug)]
pub struct BootstrapFile {
    path: PathBuf,
    /// Token SHA-256 (lowercase hex) → grant.
    grants: RwLock<HashMap<String, Grant>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    credentials: Vec<Credential>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct Credential {
    token_sha256: String,
    namespace: String,
    service_account: String,
    #[serde(default)]
    pod: String,
    #[serde(default)]
    address: Option<IpAddr>,
    #[serde(default)]
    workload: String,
    #[serde(default)]
    role: String,
    #[serde(default)]
    labels: BTreeMap<String, String>,
    #[serde(default)]
    node: String,
}

/// Lowercase hex SHA-256 of a token.
pub fn token_sha256(token: &str) -> String {
    ring::digest::digest(&ring::digest::SHA256, token.as_bytes())
        .as_ref()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Parses a bootstrap file's text; the error names the entry and what is wrong.
pub fn parse(text: &str) -> Result<HashMap<String, Grant>, String> {
    let file: File = serde_json::from_str(text).map_err(|e| {
        format!(
            "{e} (expected {{\"credentials\": [{{\"tokenSha256\": \"<hex>\", \"namespace\": \
             \"...\", \"serviceAccount\": \"...\", \"pod\": \"...\"}}]}})"
        )
    })?;
    let mut out = HashMap::new();
    for (i, c) in file.credentials.into_iter().enumerate() {
        let at = format!("credentials[{i}]");
        let hash = c.token_sha256.to_ascii_lowercase();
        if hash.len() != 64 || !hash.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(format!(
                "{at}.tokenSha256: expected 64 hex digits (e.g. `printf %s \"$TOKEN\" | \
                 sha256sum`), got {} characters",
                c.token_sha256.len()
            ));
        }
        let id = format!("spiffe://x/ns/{}/sa/{}", c.namespace, c.service_account);
        if let Err(e) = SpiffeId::parse(&id) {
            return Err(format!("{at}: namespace/serviceAccount: {}", e.reason));
        }
        let grant = Grant {
            namespace: c.namespace,
            service_account: c.service_account,
            pod: c.pod,
            address: c.address,
            workload: c.workload,
            role: c.role,
            labels: c.labels,
            node: c.node,
        };
        if !grant.pod.is_empty()
            && out
                .values()
                .any(|g: &Grant| g.namespace == grant.namespace && g.pod == grant.pod)
        {
            return Err(format!(
                "{at}.pod: pod {:?} in namespace {:?} has a credential already; a credential \
                 grants exactly one pod, and a pod has one credential",
                grant.pod, grant.namespace
            ));
        }
        if out.insert(hash, grant).is_some() {
            return Err(format!(
                "{at}.tokenSha256: the same token is listed twice; give each pod its own"
            ));
        }
    }
    Ok(out)
}

impl BootstrapFile {
    /// Reads the file; at start an unreadable or invalid file is an error.
    pub fn load(path: &Path) -> Result<Arc<BootstrapFile>, String> {
        let grants = read(path)?;
        tracing::info!(file = %path.display(), credentials = grants.len(), "bootstrap credentials loaded");
        Ok(Arc::new(BootstrapFile {
            path: path.to_path_buf(),
            grants: RwLock::new(grants),
        }))
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn len(&self) -> usize {
        self.grants.read().map_or(0, |g| g.len())
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Re-reads the file when its size or modification time changes, until dropped.
    pub async fn watch(self: Arc<Self>) {
        let mut changes = crate::watch::Changes::file(&self.path, "bootstrap file");
        let mut seen = stamp(&self.path);
        loop {
            changes.next().await;
            let now = stamp(&self.path);
            if now == seen {
                continue;
            }
            seen = now;
            let path = self.path.clone();
            match tokio::task::spawn_blocking(move || read(&path)).await {
                Ok(Ok(grants)) => {
                    tracing::info!(file = %self.path.display(), credentials = grants.len(), "bootstrap credentials reloaded");
                    *self.grants.write().unwrap_or_else(|p| p.into_inner()) = grants;
                }
                Ok(Err(e)) => tracing::error!(
                    "bootstrap credentials not reloaded, the previous ones stay in force: {e}"
                ),
                Err(e) => tracing::error!("bootstrap reload failed: {e}"),
            }
        }
    }
}

impl Authenticator for BootstrapFile {
    fn authenticate(&self, bearer: &str) -> Result<Grant, Denied> {
        let hash = token_sha256(bearer);
        let grants = self.grants.read().unwrap_or_else(|p| p.into_inner());
        grants.get(&hash).cloned().ok_or(Denied::UnknownToken {
            sha256_prefix: hash[..8].to_string(),
        })
    }

    fn registered(&self, namespace: &str, pod: &str) -> Option<Grant> {
        let grants = self.grants.read().unwrap_or_else(|p| p.into_inner());
        grants
            .values()
            .find(|g| g.namespace == namespace && g.pod == pod)
            .cloned()
    }
}

fn read(path: &Path) -> Result<HashMap<String, Grant>, String> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("bootstrap file {}: cannot read: {e}", path.display()))?;
    parse(&text).map_err(|e| format!("bootstrap file {}: {e}", path.display()))
}

fn stamp(path: &Path) -> Option<(u64, Option<SystemTime>)> {
    std::fs::metadata(path)
        .ok()
        .map(|m| (m.len(), m.modified().ok()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashes_tokens_like_sha256sum() {
        assert_eq!(
            token_sha256("abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }

    #[test]
    fn parses_and_authenticates() {
        let text = format!(
            r#"{{"credentials": [{{"tokenSha256": "{}", "namespace": "shop", "serviceAccount": "cart", "pod": "cart-0"}}]}}"#,
            token_sha256("t1").to_uppercase()
        );
        let grants = parse(&text).unwrap();
        let f = BootstrapFile {
            path: PathBuf::new(),
            grants: RwLock::new(grants),
        };
        let g = f.authenticate("t1").unwrap();
        assert_eq!(g.identity("td").to_string(), "spiffe://td/ns/shop/sa/cart");
        assert_eq!(g.pod, "cart-0");
        assert!(matches!(
            f.authenticate("t2"),
            Err(Denied::UnknownToken { .. })
        ));
    }

    #[test]
    fn says_what_is_wrong_in_the_file() {
        let h = token_sha256("t");
        for (text, why) in [
            ("{}".to_string(), "missing field `credentials`"),
            (
                r#"{"credentials": [{"tokenSha256": "abc", "namespace": "a", "serviceAccount": "b"}]}"#.into(),
                "credentials[0].tokenSha256: expected 64 hex digits",
            ),
            (
                format!(r#"{{"credentials": [{{"tokenSha256": "{h}", "namespace": "a/x", "serviceAccount": "b"}}]}}"#),
                "credentials[0]: namespace/serviceAccount",
            ),
            (
                format!(r#"{{"credentials": [{{"tokenSha256": "{h}", "namespace": "a", "serviceAccount": "b"}}, {{"tokenSha256": "{h}", "namespace": "a", "serviceAccount": "c"}}]}}"#),
                "listed twice",
            ),
            (
                format!(r#"{{"credentials": [{{"tokenSha256": "{h}", "namespace": "a", "serviceaccount": "b"}}]}}"#),
                "unknown field `serviceaccount`",
            ),
            (
                format!(
                    r#"{{"credentials": [{{"tokenSha256": "{h}", "namespace": "a", "serviceAccount": "b", "pod": "p"}}, {{"tokenSha256": "{}", "namespace": "a", "serviceAccount": "b", "pod": "p"}}]}}"#,
                    token_sha256("other")
                ),
                "credentials[1].pod: pod \"p\" in namespace \"a\" has a credential already",
            ),
        ] {
            let err = parse(&text).unwrap_err();
            assert!(err.contains(why), "{err}");
        }
    }
}
