//! Bootstrap credentials: one random token per pod, per node proxy and per gateway, each in a
//! file of its own (mode 0600) that only its proxy is told about. The control plane's CA gets
//! their SHA-256 and the identity each may ask a certificate for, never the tokens themselves.
//! On Kubernetes a ServiceAccount token takes this place.
//!
//! The file is also the runtime's registration of each pod (its address, labels and node), so
//! it is written again when those change: a token already handed out is kept.

use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use anyhow::Context;
use ring::rand::{SecureRandom, SystemRandom};
use serde::Serialize;

/// Who a token lets its holder be.
#[derive(Debug, Clone)]
pub struct Grant {
    pub namespace: String,
    pub service_account: String,
    /// The pod (or gateway) name; also names the token file.
    pub pod: String,
    /// Where the pod lives and its proxy connects from: the token works only from there.
    pub address: std::net::IpAddr,
    /// The workload (empty for a gateway).
    pub workload: String,
    /// `sidecar`, `node` or `gateway`.
    pub role: &'static str,
    /// The pod's labels (what Services select it by).
    pub labels: std::collections::BTreeMap<String, String>,
    /// The node the pod runs on: that node's proxy may hold its certificate (empty: none).
    pub node: String,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Entry<'a> {
    token_sha256: String,
    namespace: &'a str,
    service_account: &'a str,
    pod: &'a str,
    address: std::net::IpAddr,
    workload: &'a str,
    role: &'a str,
    #[serde(skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    labels: &'a std::collections::BTreeMap<String, String>,
    #[serde(skip_serializing_if = "str::is_empty")]
    node: &'a str,
}

#[derive(Serialize)]
struct File<'a> {
    credentials: Vec<Entry<'a>>,
}

/// Where the token of `pod` in `namespace` is kept under `dir`.
pub fn token_file(dir: &Path, namespace: &str, pod: &str) -> PathBuf {
    dir.join("tokens").join(namespace).join(pod)
}

/// Writes the control plane's bootstrap file with a token for every grant: the one in its
/// token file if there is one already, a fresh one otherwise.
pub fn write(dir: &Path, grants: &[Grant], bootstrap: &Path) -> anyhow::Result<()> {
    let rng = SystemRandom::new();
    let mut entries = Vec::new();
    for g in grants {
        let path = token_file(dir, &g.namespace, &g.pod);
        let token = match std::fs::read_to_string(&path) {
            Ok(token) if !token.is_empty() => token,
            _ => fresh(&rng, &path)?,
        };
        entries.push(Entry {
            token_sha256: hex(
                ring::digest::digest(&ring::digest::SHA256, token.as_bytes()).as_ref(),
            ),
            namespace: &g.namespace,
            service_account: &g.service_account,
            pod: &g.pod,
            address: g.address,
            workload: &g.workload,
            role: g.role,
            labels: &g.labels,
            node: &g.node,
        });
    }
    let text = serde_json::to_vec_pretty(&File {
        credentials: entries,
    })?;
    // Through a rename: the control plane re-reads the file and must never see half of it.
    let tmp = bootstrap.with_extension("tmp");
    std::fs::write(&tmp, text).with_context(|| format!("writing {}", tmp.display()))?;
    std::fs::rename(&tmp, bootstrap).with_context(|| format!("writing {}", bootstrap.display()))
}

/// A new random token, written to `path` (mode 0600).
fn fresh(rng: &SystemRandom, path: &Path) -> anyhow::Result<String> {
    let mut raw = [0u8; 32];
    rng.fill(&mut raw)
        .map_err(|_| anyhow::anyhow!("no system randomness for bootstrap tokens"))?;
    let token = hex(&raw);
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent)
            .with_context(|| format!("creating {}", parent.display()))?;
    }
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)
        .with_context(|| format!("writing {}", path.display()))?;
    f.write_all(token.as_bytes())?;
    Ok(token)
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn grant(pod: &str, role: &'static str, node: &str) -> Grant {
        Grant {
            namespace: "shop".into(),
            service_account: "web".into(),
            pod: pod.into(),
            address: [198, 19, 70, 2].into(),
            workload: "web".into(),
            role,
            labels: Default::default(),
            node: node.into(),
        }
    }

    #[test]
    fn tokens_are_kept_when_the_registrations_are_written_again() {
        let dir = std::env::temp_dir().join(format!("weft-creds-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let bootstrap = dir.join("bootstrap.json");
        std::fs::create_dir_all(&dir).unwrap();
        let grants = [
            grant("web-0", "sidecar", "node-1"),
            grant("web-1", "sidecar", ""),
        ];
        write(&dir, &grants, &bootstrap).unwrap();
        let read = || -> serde_json::Value {
            serde_json::from_slice(&std::fs::read(&bootstrap).unwrap()).unwrap()
        };
        let first = read();
        assert_eq!(first["credentials"][0]["node"], "node-1");
        assert!(
            first["credentials"][1].get("node").is_none(),
            "no node, no field: {first}"
        );
        let token = std::fs::read_to_string(token_file(&dir, "shop", "web-0")).unwrap();
        assert_eq!(token.len(), 64);
        // Written again with web-1 on a node: the same tokens, the new registration.
        let grants = [
            grant("web-0", "sidecar", "node-1"),
            grant("web-1", "sidecar", "node-2"),
        ];
        write(&dir, &grants, &bootstrap).unwrap();
        let second = read();
        assert_eq!(
            second["credentials"][0]["tokenSha256"],
            first["credentials"][0]["tokenSha256"]
        );
        assert_eq!(second["credentials"][1]["node"], "node-2");
        assert_eq!(
            std::fs::read_to_string(token_file(&dir, "shop", "web-0")).unwrap(),
            token
        );
        let _ = std::fs::remove_dir_all(&dir);
    }
}
