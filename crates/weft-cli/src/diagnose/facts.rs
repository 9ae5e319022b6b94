//! What `weft diagnose` reads about a running mesh: its plan and live status, the config files
//! it runs from, built into the same model the control plane serves (so routes, endpoints and
//! policies are what the proxies are given), and where a request from SRC to DST would go.

use std::net::IpAddr;
use std::sync::Arc;

use anyhow::{Context, bail};
use weft_core::model::{Pod, PodList, ServiceConfig, Snapshot};
use weft_local::plan::{Plan, PodPlan};
use weft_local::rundir::RunDir;
use weft_local::status::{PodStatus, Status};

/// The mesh as it runs now.
pub struct Facts {
    pub dir: RunDir,
    pub plan: Plan,
    pub status: Status,
    pub snapshot: Snapshot,
    pub pods: Vec<Pod>,
    pub config: weft_core::Config,
    /// Why the configuration directory does not load as a whole, when it does not: the
    /// control plane keeps its last good config, and what is read here are the documents
    /// that do load.
    pub unloaded: Option<String>,
}

impl Facts {
    pub fn load(dir: RunDir, plan: Plan) -> anyhow::Result<Facts> {
        let status = dir
            .status()
            .context("the mesh has no status yet (is it starting?)")?;
        let loaded = weft_core::load_paths(&[&plan.config_dir]);
        let unloaded = loaded.errors.first().map(|first| {
            format!(
                "the config in {} does not load ({} error{}): {first}",
                plan.config_dir.display(),
                loaded.errors.len(),
                if loaded.errors.len() == 1 { "" } else { "s" }
            )
        });
        let pods_file = Plan::pods_file(&dir.path);
        let listed: PodList = std::fs::read(&pods_file)
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
            .unwrap_or_default();
        let snapshot = Snapshot::build(&loaded.config, &listed.pods);
        Ok(Facts {
            dir,
            plan,
            status,
            snapshot,
            pods: listed.pods,
            config: loaded.config,
            unloaded,
        })
    }

    /// A pod by `ns/name`, `name` or `name.ns`; or the first ready pod of a workload.
    pub fn source(&self, word: &str) -> anyhow::Result<(&PodPlan, &PodStatus)> {
        let (ns, name) = split_name(word);
        let matches = |p: &&PodPlan, by: fn(&PodPlan) -> &str| {
            by(p) == name && ns.is_none_or(|n| n == p.namespace)
        };
        let by_pod: Vec<&PodPlan> = self
            .plan
            .pods
            .iter()
            .filter(|p| matches(p, |p| &p.name))
            .collect();
        let candidates = match by_pod.is_empty() {
            false => by_pod,
            true => self
                .plan
                .pods
                .iter()
                .filter(|p| matches(p, |p| &p.workload))
                .collect(),
        };
        let with_status: Vec<(&PodPlan, &PodStatus)> = candidates
            .into_iter()
            .filter_map(|p| Some((p, self.pod_status(&p.namespace, &p.name)?)))
            .collect();
        if let Some(ready) = with_status.iter().find(|(_, s)| s.ready()) {
            return Ok(*ready);
        }
        with_status.first().copied().ok_or_else(|| {
            let known: Vec<String> = self
                .plan
                .pods
                .iter()
                .map(|p| format!("{}/{}", p.namespace, p.name))
                .collect();
            anyhow::anyhow!("no pod or workload {word:?}; pods: {}", known.join(", "))
        })
    }

    pub fn pod_status(&self, ns: &str, name: &str) -> Option<&PodStatus> {
        self.status
            .pods
            .iter()
            .find(|s| s.namespace == ns && s.name == name)
    }

    /// The model's pod of a pod's address (its identity, service account, labels).
    pub fn model_pod(&self, ip: IpAddr) -> Option<&Pod> {
        self.pods.iter().find(|p| p.ip == ip)
    }

    /// The SPIFFE identity of the pod at `ip`.
    pub fn identity(&self, ip: IpAddr) -> Option<String> {
        self.model_pod(ip).map(|p| {
            weft_core::model::spiffe_id(&self.plan.trust_domain, &p.namespace, &p.service_account)
        })
    }

    /// The Service `host` names, seen from namespace `ns` (a bare name is looked up there
    /// first, as the pod's DNS search path does), or whose VIP is `host`.
    pub fn service(&self, host: &str, ns: &str) -> Option<Arc<ServiceConfig>> {
        let services = || self.snapshot.services.values();
        if let Ok(ip) = host.parse::<IpAddr>() {
            return services().find(|s| s.vip == Some(ip)).cloned();
        }
        let host = host.trim_end_matches('.');
        let local = format!("{host}.{ns}");
        services()
            .find(|s| s.hostnames.contains(&local))
            .or_else(|| services().find(|s| s.hostnames.iter().any(|h| h == host)))
            .cloned()
    }

    /// Every principal the AuthorizationPolicies named `policies` (`ns/name`, comma-separated)
    /// list in their rules.
    pub fn principals_of(&self, policies: &str) -> Vec<String> {
        let wanted: Vec<&str> = policies.split(',').collect();
        (self.config.resources.iter())
            .filter_map(|l| match &l.resource {
                weft_core::Resource::AuthorizationPolicy(p) => Some(p),
                _ => None,
            })
            .filter(|p| {
                wanted.contains(&format!("{}/{}", p.metadata.namespace(), p.metadata.name).as_str())
            })
            .flat_map(|p| p.spec.rules.iter().flat_map(|r| r.from.iter()))
            .flat_map(|f| f.source.principals.iter().cloned())
            .collect()
    }

    /// Every Service's `ns/name`, for suggestions.
    pub fn service_names(&self) -> Vec<String> {
        self.snapshot.services.keys().cloned().collect()
    }

    /// The plan's pods a Service selects (ready or not), with their status.
    pub fn selected_pods(&self, ns: &str, name: &str) -> Vec<(&PodPlan, Option<&PodStatus>)> {
        let mut out: Vec<(&PodPlan, Option<&PodStatus>)> = self
            .plan
            .services
            .iter()
            .filter(|s| s.namespace == ns && s.name == name)
            .flat_map(|s| s.ports.iter().flat_map(|p| p.backends.iter()))
            .filter_map(|(i, _)| self.plan.pods.get(*i))
            .map(|p| (p, self.pod_status(&p.namespace, &p.name)))
            .collect();
        out.sort_by_key(|(p, _)| (p.namespace.clone(), p.name.clone()));
        out.dedup_by_key(|(p, _)| (p.namespace.clone(), p.name.clone()));
        out
    }
}

/// `ns/name` or `name.ns` → (namespace, name); `name` alone → (None, name).
pub fn split_name(word: &str) -> (Option<&str>, &str) {
    if let Some((ns, name)) = word.split_once('/') {
        return (Some(ns), name);
    }
    match word.split_once('.') {
        Some((name, ns)) => (Some(ns), name),
        None => (None, word),
    }
}

/// Where the request goes: `host[:port][/path]`.
#[derive(Debug, Clone, PartialEq)]
pub struct Destination {
    pub host: String,
    pub port: Option<u16>,
    pub path: String,
}

impl Destination {
    pub fn parse(word: &str) -> anyhow::Result<Destination> {
        let word = word.strip_prefix("http://").unwrap_or(word);
        let (authority, path) = match word.find('/') {
            Some(i) => (&word[..i], word[i..].to_string()),
            None => (word, "/".to_string()),
        };
        let (host, port) = match authority.rsplit_once(':') {
            Some((h, p)) => {
                let port = p
                    .parse()
                    .with_context(|| format!("port {p:?} in {word:?}"))?;
                (h, Some(port))
            }
            None => (authority, None),
        };
        if host.is_empty() {
            bail!("no host in {word:?}: write SERVICE[:PORT][/PATH], e.g. pricing:8080/price/loom");
        }
        Ok(Destination {
            host: host.to_string(),
            port,
            path,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn destinations_read_like_urls() {
        let d = Destination::parse("pricing:8080/price/loom?x=1").unwrap();
        assert_eq!(
            d,
            Destination {
                host: "pricing".into(),
                port: Some(8080),
                path: "/price/loom?x=1".into()
            }
        );
        let d = Destination::parse("http://cart.shop").unwrap();
        assert_eq!(
            (d.host.as_str(), d.port, d.path.as_str()),
            ("cart.shop", None, "/")
        );
        assert!(Destination::parse(":80").is_err());
        assert!(Destination::parse("cart:http").is_err());
        assert_eq!(split_name("shop/cart-0"), (Some("shop"), "cart-0"));
        assert_eq!(split_name("cart-0.shop"), (Some("shop"), "cart-0"));
        assert_eq!(split_name("cart"), (None, "cart"));
    }
}
