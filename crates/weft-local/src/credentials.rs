//! Bootstrap credentials: one random token per pod and per gateway, each in a file of its own
//! (mode 0600) that only its proxy is told about. The control plane's CA gets their SHA-256
//! and the identity each may ask a certificate for, never the tokens themselves. On Kubernetes
//! a ServiceAccount token takes this place.

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
    /// `sidecar` or `gateway`.
    pub role: &'static str,
    /// The pod's labels (what Services select it by).
    pub labels: std::collections::BTreeMap<String, String>,
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
}

#[derive(Serialize)]
struct File<'a> {
    credentials: Vec<Entry<'a>>,
}

/// Where the token of `pod` in `namespace` is kept under `dir`.
pub fn token_file(dir: &Path, namespace: &str, pod: &str) -> PathBuf {
    dir.join("tokens").join(namespace).join(pod)
}

/// Writes a fresh token for every grant and the control plane's bootstrap file.
pub fn write(dir: &Path, grants: &[Grant], bootstrap: &Path) -> anyhow::Result<()> {
    let rng = SystemRandom::new();
    let mut entries = Vec::new();
    for g in grants {
        let mut raw = [0u8; 32];
        rng.fill(&mut raw)
            .map_err(|_| anyhow::anyhow!("no system randomness for bootstrap tokens"))?;
        let token = hex(&raw);
        let path = token_file(dir, &g.namespace, &g.pod);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)
                .with_context(|| format!("creating {}", parent.display()))?;
        }
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&path)
            .with_context(|| format!("writing {}", path.display()))?;
        f.write_all(token.as_bytes())?;
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
        });
    }
    let text = serde_json::to_vec_pretty(&File {
        credentials: entries,
    })?;
    std::fs::write(bootstrap, text).with_context(|| format!("writing {}", bootstrap.display()))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
