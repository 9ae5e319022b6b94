//! The addresses a process that `weft up` starts reports it bound, in a JSON file the runtime
//! names with `--addresses-file`: the control plane's discovery, mTLS discovery and admin, a
//! proxy's listeners, admin, readiness and metrics. Ephemeral ports (`:0`) are only known this
//! way. The child writes the file once everything is bound (to a temporary name, then renamed,
//! so a reader never sees half of it); the runtime removes it before each start and counts the
//! process ready only once it is there.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{}: not the addresses a weft process reports: {source}", path.display())]
    Parse {
        path: PathBuf,
        source: serde_json::Error,
    },
}

/// What `weft control` bound.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ControlAddresses {
    /// Plaintext discovery and CA (loopback only).
    pub discovery: SocketAddr,
    /// mTLS discovery and CA, for proxies.
    pub secure_discovery: Option<SocketAddr>,
    /// Admin and debug API.
    pub admin: SocketAddr,
}

/// What `weft proxy` bound, as a sidecar or a gateway. A sidecar's addresses are inside its
/// pod's network namespace.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ProxyAddresses {
    /// A sidecar's outbound listener (none for a gateway).
    pub outbound: Option<SocketAddr>,
    /// A sidecar's inbound listener (none for a gateway).
    pub inbound: Option<SocketAddr>,
    pub admin: SocketAddr,
    pub readiness: SocketAddr,
    pub metrics: SocketAddr,
    /// A gateway's listeners: Gateway listener port → bound address.
    #[serde(default)]
    pub listeners: Vec<(u16, SocketAddr)>,
}

/// Writes `value` to `path` whole: to a temporary file beside it, then renamed over it.
pub fn write<T: Serialize>(path: &Path, value: &T) -> Result<(), Error> {
    let io = |source| Error::Io {
        path: path.to_path_buf(),
        source,
    };
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".tmp");
    let tmp = PathBuf::from(tmp);
    let json = serde_json::to_vec_pretty(value).map_err(|source| Error::Parse {
        path: path.to_path_buf(),
        source,
    })?;
    std::fs::write(&tmp, json).map_err(io)?;
    std::fs::rename(&tmp, path).map_err(io)
}

/// Reads what [`write`] wrote.
pub fn read<T: DeserializeOwned>(path: &Path) -> Result<T, Error> {
    let bytes = std::fs::read(path).map_err(|source| Error::Io {
        path: path.to_path_buf(),
        source,
    })?;
    serde_json::from_slice(&bytes).map_err(|source| Error::Parse {
        path: path.to_path_buf(),
        source,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn what_is_written_reads_back_and_garbage_is_an_error_naming_the_file() {
        let dir = std::env::temp_dir().join(format!("weft-addresses-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("gateway.json");
        let bound = ProxyAddresses {
            outbound: None,
            inbound: None,
            admin: "127.0.0.1:40123".parse().unwrap(),
            readiness: "198.18.0.1:15021".parse().unwrap(),
            metrics: "198.18.0.1:15020".parse().unwrap(),
            listeners: vec![(80, "0.0.0.0:8080".parse().unwrap())],
        };
        write(&path, &bound).unwrap();
        assert_eq!(read::<ProxyAddresses>(&path).unwrap(), bound);
        assert!(!dir.join("gateway.json.tmp").exists(), "renamed into place");

        std::fs::write(&path, b"{\"admin\": 1}").unwrap();
        let err = read::<ProxyAddresses>(&path).unwrap_err().to_string();
        assert!(err.contains("gateway.json"), "{err}");
        let missing = read::<ControlAddresses>(&dir.join("none.json")).unwrap_err();
        assert!(matches!(missing, Error::Io { .. }), "{missing}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
