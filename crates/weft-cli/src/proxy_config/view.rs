//! What `weft proxy-config POD listeners|routes|clusters|endpoints|all` shows: the full
//! configuration the control plane intends for the proxy (its `/debug/proxy_config`), with
//! the live state only the proxy has merged in from its own admin API (`/config_dump`): which
//! Services it fetched so far, at which version, and which endpoints its outlier detection
//! ejected. The live part is marked as such; when the proxy cannot be asked, the intended
//! configuration is shown all the same, with the reason.

use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use anyhow::Context;
use serde::Serialize;
use serde_json::{Value, json};
use weft_core::model::SERVICE_TYPE;
use weft_core::model::effective::{Direction, Effective, Listener};
use weft_local::addresses::ProxyAddresses;
use weft_local::plan::{GatewayPlan, Plan};
use weft_local::rundir::RunDir;

use super::target::Target;

/// The intended configuration and the proxy's live state.
#[derive(Debug)]
pub struct View {
    pub effective: Effective,
    pub live: Live,
}

/// What the proxy itself holds.
#[derive(Debug, Clone, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Live {
    /// Whose admin API was read.
    pub source: String,
    /// Why it could not be read.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// Service key → what the proxy holds of it (absent: not fetched).
    pub services: BTreeMap<String, Held>,
    /// Where its listeners are bound, as it reported to `weft up` (listener name, or
    /// `gateway:PORT` for a Gateway listener → address).
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub bound: BTreeMap<String, SocketAddr>,
}

/// A Service as the proxy holds it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase", tag = "state")]
pub enum Held {
    Fetched {
        version: Option<String>,
        /// Endpoint addresses its outlier detection holds ejected now.
        ejected: Vec<IpAddr>,
    },
    /// It asked, and the control plane has no such Service.
    Missing,
    /// It rejected the Service's configuration.
    Rejected { reason: String },
}

impl Live {
    /// The Services of a proxy's `/config_dump`.
    pub fn from_dump(source: String, dump: &Value) -> Live {
        let mut services = BTreeMap::new();
        for (key, v) in dump["services"].as_object().into_iter().flatten() {
            let held = match (v.as_str(), v["rejected"].as_str()) {
                (Some(_), _) => Held::Missing,
                (None, Some(why)) => Held::Rejected { reason: why.into() },
                (None, None) => Held::Fetched {
                    version: dump["versions"][format!("{SERVICE_TYPE} {key}")]
                        .as_str()
                        .map(String::from),
                    // Each entry is `POD ADDRESS`.
                    ejected: (v["ejected"].as_array().into_iter().flatten())
                        .filter_map(|e| e.as_str()?.rsplit(' ').next()?.parse().ok())
                        .collect(),
                },
            };
            services.insert(key.clone(), held);
        }
        Live {
            source,
            error: None,
            services,
            bound: BTreeMap::new(),
        }
    }

    /// Where listener `l` is bound, when the proxy reported it (a node proxy's listeners in
    /// its pods are not reported).
    pub fn bound_of(&self, l: &Listener) -> Option<SocketAddr> {
        if l.pod.is_some() {
            return None;
        }
        let key = match l.name.starts_with("gateway ") {
            true => format!("gateway:{}", l.port),
            false => l.name.clone(),
        };
        self.bound.get(&key).copied()
    }

    /// FETCHED of a cluster of Service `key` whose intended version is `version`.
    pub fn fetched(&self, key: &str, version: Option<&str>) -> String {
        if self.error.is_some() {
            return "?".into();
        }
        match self.services.get(key) {
            None => "no".into(),
            Some(Held::Fetched { version: v, .. }) if v.as_deref() == version => "yes".into(),
            Some(Held::Fetched { .. }) => "stale".into(),
            Some(Held::Missing) => "missing".into(),
            Some(Held::Rejected { .. }) => "REJECTED".into(),
        }
    }

    /// OUTLIER CHECK of endpoint `ip` of Service `key`: what the proxy's balancer says, or `-`
    /// when it holds no balancer for the Service.
    pub fn outlier(&self, key: &str, ip: IpAddr) -> &'static str {
        match self.services.get(key) {
            Some(Held::Fetched { ejected, .. }) if ejected.contains(&ip) => "EJECTED",
            Some(Held::Fetched { .. }) => "OK",
            _ => "-",
        }
    }
}

/// The control plane's intended configuration for `target` and the live state of its proxy.
pub fn fetch(dir: &RunDir, plan: &Plan, target: Target<'_>) -> anyhow::Result<View> {
    let path = format!("/debug/proxy_config?{}", target.query());
    let body = get(plan.admin, &path).with_context(|| {
        format!(
            "asking the control plane at {} for the configuration of {}",
            plan.admin,
            target.label()
        )
    })?;
    let effective: Effective = serde_json::from_value(body)
        .context("unexpected answer from the control plane's /debug/proxy_config")?;
    let source = match target {
        Target::InPod(p) => format!("the proxy of {}", p.id()),
        Target::Ambient(p) => format!("the proxy of {} (node {})", p.id(), p.node),
        Target::Gateway(_) => format!("the proxy of {}", target.label()),
        Target::Node(n) => format!("the proxy of {n}"),
    };
    let mut live = match dump(dir, target) {
        Ok(dump) => Live::from_dump(format!("{source}, admin API /config_dump"), &dump),
        Err(e) => Live {
            source,
            error: Some(format!("{e:#}")),
            ..Live::default()
        },
    };
    live.bound = bound(dir, target);
    Ok(View { effective, live })
}

/// Where the proxy of `target` bound its listeners, from the addresses file it wrote for
/// `weft up` (none for a waypoint or an ambient pod, or before it wrote one).
fn bound(dir: &RunDir, target: Target<'_>) -> BTreeMap<String, SocketAddr> {
    let who = match target {
        Target::InPod(p) if !p.waypoint => format!("pod-{}.{}", p.namespace, p.name),
        Target::Gateway(g) => format!("gateway-{}.{}", g.namespace, g.name),
        Target::Node(n) => format!("node-{n}"),
        Target::InPod(_) | Target::Ambient(_) => return BTreeMap::new(),
    };
    let Ok(a) = weft_local::addresses::read::<ProxyAddresses>(&dir.addresses(&who)) else {
        return BTreeMap::new();
    };
    let mut out: BTreeMap<String, SocketAddr> = [
        ("admin", Some(a.admin)),
        ("readiness", Some(a.readiness)),
        ("metrics", Some(a.metrics)),
        ("outbound", a.outbound),
        ("inbound", a.inbound),
    ]
    .into_iter()
    .filter_map(|(k, v)| Some((k.to_string(), v?)))
    .collect();
    out.extend((a.listeners.iter()).map(|(port, addr)| (format!("gateway:{port}"), *addr)));
    out
}

/// `GET path` on the control plane's admin API: the JSON of a 200 answer, else the error it
/// gave.
fn get(admin: std::net::SocketAddr, path: &str) -> anyhow::Result<Value> {
    let (status, body) = get_raw(admin, path)?;
    let value: Value = serde_json::from_str(&body).unwrap_or(Value::String(body.clone()));
    if status != 200 {
        let why = value["error"].as_str().unwrap_or(body.trim());
        anyhow::bail!("the control plane answered {status}: {why}");
    }
    Ok(value)
}

/// The `/config_dump` of the proxy of `target`.
fn dump(dir: &RunDir, target: Target<'_>) -> anyhow::Result<Value> {
    let body = match target {
        Target::InPod(pod) => super::in_pod(pod, "/config_dump")?,
        Target::Ambient(pod) => super::node::get(dir, &pod.node, "/config_dump")?,
        Target::Node(node) => super::node::get(dir, node, "/config_dump")?,
        Target::Gateway(g) => gateway_get(dir, g, "/config_dump")?,
    };
    serde_json::from_str(&body).context("unexpected answer from the proxy")
}

/// `GET path` on the admin API of gateway `g` (on the host's loopback, at the address it
/// reported in the run directory): the body of a 200 answer.
pub fn gateway_get(dir: &RunDir, g: &GatewayPlan, path: &str) -> anyhow::Result<String> {
    let file = dir.addresses(&format!("gateway-{}.{}", g.namespace, g.name));
    let bound: ProxyAddresses = weft_local::addresses::read(&file)
        .context("the gateway has not reported its addresses (not running yet?)")?;
    let (status, body) = get_raw(bound.admin, path)?;
    if status != 200 {
        anyhow::bail!("the gateway's proxy answered {status}: {}", body.trim());
    }
    Ok(body)
}

fn get_raw(addr: std::net::SocketAddr, path: &str) -> anyhow::Result<(u16, String)> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let answer = rt.block_on(weft_local::http::get(addr, path, Duration::from_secs(5)));
    answer.with_context(|| format!("asking {addr}{path}"))
}

/// The view as JSON: the intended configuration, each outbound cluster and endpoint with a
/// `live` object from the proxy (absent for what the proxy does not hold), and `live` at the
/// top saying where that came from. `parts` picks listeners, routes, clusters, endpoints.
pub fn to_json(view: &View, parts: &[&str]) -> Value {
    let e = &view.effective;
    let mut out = json!({ "proxy": e.proxy });
    let live = &view.live;
    for part in parts {
        let value = match *part {
            "listeners" => Value::Array(
                (e.listeners.iter())
                    .map(|l| {
                        let mut v = json!(l);
                        if let Some(addr) = live.bound_of(l) {
                            v["live"] = json!({ "bound": addr });
                        }
                        v
                    })
                    .collect(),
            ),
            "routes" => json!(e.routes),
            "clusters" => Value::Array(
                (e.clusters.iter())
                    .map(|c| {
                        let mut v = json!(c);
                        if let Some(held) = live.services.get(&c.service)
                            && c.direction == Direction::Outbound
                        {
                            v["live"] = json!(held);
                        }
                        v
                    })
                    .collect(),
            ),
            "endpoints" => Value::Array(
                (e.endpoints.iter())
                    .map(|x| {
                        let mut v = json!(x);
                        let key = service_of(e, &x.cluster);
                        let outlier = live.outlier(key, x.address.ip());
                        if outlier != "-" {
                            v["live"] = json!({ "outlier": outlier });
                        }
                        v
                    })
                    .collect(),
            ),
            _ => continue,
        };
        out[*part] = value;
    }
    out["live"] = json!(live);
    out
}

/// The Service of cluster `name`.
pub fn service_of<'a>(e: &'a Effective, cluster: &str) -> &'a str {
    (e.clusters.iter())
        .find(|c| c.name == cluster)
        .map_or("", |c| c.service.as_str())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn live_state_reads_fetched_versions_ejections_and_what_is_missing() {
        let dump = json!({
            "services": {
                "shop/pricing": {"name": "pricing", "ejected": ["pricing-v1-0 198.19.87.5"]},
                "shop/cart": {"name": "cart", "ejected": []},
                "shop/typo": "missing",
                "shop/bad": {"rejected": "no port"},
            },
            "versions": {
                "weft.dev/Service shop/pricing": "v1",
                "weft.dev/Service shop/cart": "old",
            }
        });
        let live = Live::from_dump("test".into(), &dump);
        assert_eq!(live.fetched("shop/pricing", Some("v1")), "yes");
        assert_eq!(live.fetched("shop/cart", Some("new")), "stale");
        assert_eq!(live.fetched("shop/typo", None), "missing");
        assert_eq!(live.fetched("shop/bad", None), "REJECTED");
        assert_eq!(live.fetched("shop/catalog", Some("v")), "no");
        let ip = |s: &str| s.parse::<IpAddr>().unwrap();
        assert_eq!(live.outlier("shop/pricing", ip("198.19.87.5")), "EJECTED");
        assert_eq!(live.outlier("shop/pricing", ip("198.19.87.6")), "OK");
        assert_eq!(live.outlier("shop/catalog", ip("198.19.87.6")), "-");
        let unreachable = Live {
            error: Some("down".into()),
            ..Live::default()
        };
        assert_eq!(unreachable.fetched("shop/pricing", Some("v1")), "?");
    }
}
