//! What the proxy knows: its own config (a node proxy: the config of each pod it serves), the
//! Services it has asked for (on demand, on first traffic), which address leads to which
//! Service, and (gateway role) the Gateway it serves.
//! Entries are replaced whole on update; a rejected update leaves the previous entries in force.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::net::IpAddr;
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use serde_json::{Value, json};
use tokio::sync::{Notify, mpsc, watch};
use weft_core::model::{
    ADDRESS_TYPE, AddressConfig, GATEWAY_TYPE, GatewayConfig, PROXY_TYPE, ProxyConfig,
    SERVICE_TYPE, ServiceConfig,
};

use crate::balance::{self, Balancer};
use crate::route::{self, CompiledRoutes};

/// How long a request waits for the control plane to answer an on-demand lookup.
pub const LOOKUP_TIMEOUT: Duration = Duration::from_secs(5);

/// A Service ready to route to.
#[derive(Debug)]
pub struct ServiceEntry {
    pub config: ServiceConfig,
    pub routes: Option<CompiledRoutes>,
    pub balancer: Arc<Balancer>,
}

/// An ingress Gateway ready to route from.
#[derive(Debug)]
pub struct GatewayEntry {
    pub config: GatewayConfig,
    pub routes: CompiledRoutes,
}

#[derive(Debug, Clone)]
enum Known<T> {
    Present(T),
    Missing,
    /// First seen in a response this proxy rejected (the reason).
    Rejected(String),
}

#[derive(Debug, Default)]
struct Maps {
    services: HashMap<String, Known<Arc<ServiceEntry>>>,
    addresses: HashMap<IpAddr, Known<AddressConfig>>,
    gateways: HashMap<String, Known<Arc<GatewayEntry>>>,
    /// (type, name) → version held.
    versions: HashMap<(String, String), String>,
    /// (type, name) subscribed.
    requested: HashSet<(String, String)>,
    last_nack: Option<Value>,
}

/// A lookup that did not find anything.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LookupError {
    /// The control plane says it does not exist.
    Missing,
    /// No answer in time (control plane unreachable and nothing cached).
    Timeout,
    /// The control plane's version was rejected and there is no earlier one.
    Rejected(String),
}

/// Why a discovery response is rejected (its NACK text); the previous config stays.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("unknown resource type {0}")]
    UnknownType(String),
    #[error("{kind} {name}: {source}")]
    Decode {
        kind: &'static str,
        name: String,
        source: serde_json::Error,
    },
    #[error("{kind} {name}: {source}")]
    Routes {
        kind: &'static str,
        name: String,
        source: Box<route::Error>,
    },
}

impl Error {
    fn decode(kind: &'static str, name: &str) -> impl FnOnce(serde_json::Error) -> Error {
        move |source| Error::Decode {
            kind,
            name: name.to_string(),
            source,
        }
    }

    fn routes(kind: &'static str, name: &str) -> impl FnOnce(route::Error) -> Error {
        move |source| Error::Routes {
            kind,
            name: name.to_string(),
            source: Box::new(source),
        }
    }
}

/// A change of what the proxy asks the control plane for, which the discovery client sends on:
/// (type, name, true to subscribe or false to unsubscribe).
pub type Interest = (String, String, bool);

#[derive(Debug)]
pub struct Store {
    maps: RwLock<Maps>,
    proxy: watch::Sender<Option<Arc<ProxyConfig>>>,
    /// A node proxy's pods, by id: each one's config (None until it came, and once the control
    /// plane removed it: the pod left ambient mode or the node).
    pods: Mutex<BTreeMap<String, watch::Sender<Option<Arc<ProxyConfig>>>>>,
    /// Served pods whose config the control plane removed (or never had for this node).
    removed: Mutex<HashSet<String>>,
    changed: Notify,
    updates: watch::Sender<u64>,
    subscribe: mpsc::UnboundedSender<Interest>,
    /// Where the Services' balancers count.
    balance: balance::Metrics,
}

impl Store {
    /// The receiver gets `(type, name, true)` for each new on-demand subscription, and
    /// `(type, name, false)` for each pod a node proxy released.
    #[cfg(test)]
    pub fn new() -> (Arc<Store>, mpsc::UnboundedReceiver<Interest>) {
        Store::with_metrics(balance::Metrics::default())
    }

    /// A store whose Services' balancers count into `balance`.
    pub fn with_metrics(
        balance: balance::Metrics,
    ) -> (Arc<Store>, mpsc::UnboundedReceiver<Interest>) {
        let (tx, rx) = mpsc::unbounded_channel();
        let store = Store {
            maps: RwLock::new(Maps::default()),
            proxy: watch::Sender::new(None),
            pods: Mutex::new(BTreeMap::new()),
            removed: Mutex::new(HashSet::new()),
            changed: Notify::new(),
            updates: watch::Sender::new(0),
            subscribe: tx,
            balance,
        };
        (Arc::new(store), rx)
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, Maps> {
        self.maps.read().unwrap_or_else(|p| p.into_inner())
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, Maps> {
        self.maps.write().unwrap_or_else(|p| p.into_inner())
    }

    pub fn proxy(&self) -> watch::Receiver<Option<Arc<ProxyConfig>>> {
        self.proxy.subscribe()
    }

    pub fn proxy_config(&self) -> Option<Arc<ProxyConfig>> {
        self.proxy.borrow().clone()
    }

    fn pods(
        &self,
    ) -> std::sync::MutexGuard<'_, BTreeMap<String, watch::Sender<Option<Arc<ProxyConfig>>>>> {
        self.pods.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// A node proxy serves pod `id`: follows its config, asking the control plane for it.
    pub fn serve_pod(&self, id: &str) -> watch::Receiver<Option<Arc<ProxyConfig>>> {
        let rx = self
            .pods()
            .entry(id.to_string())
            .or_insert_with(|| watch::Sender::new(None))
            .subscribe();
        self.request(PROXY_TYPE, id);
        rx
    }

    /// The config the control plane sent for pod `id`, if the node proxy serves it and has one.
    pub fn pod_config(&self, id: &str) -> Option<Arc<ProxyConfig>> {
        self.pods().get(id).and_then(|tx| tx.borrow().clone())
    }

    /// Whether the control plane said it has no config for pod `id` (for this node).
    pub fn pod_removed(&self, id: &str) -> bool {
        self.removed
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .contains(id)
    }

    /// A node proxy no longer serves pod `id` (the pod was released): the control plane is
    /// told so (served again later, the pod is subscribed anew and its config sent again), and
    /// it is not asked for after a reconnect.
    pub fn release_pod(&self, id: &str) {
        self.pods().remove(id);
        (self.removed.lock().unwrap_or_else(|p| p.into_inner())).remove(id);
        let key = (PROXY_TYPE.to_string(), id.to_string());
        let was = {
            let mut maps = self.write();
            maps.versions.remove(&key);
            maps.requested.remove(&key)
        };
        if was {
            let _ = self.subscribe.send((key.0, key.1, false));
        }
    }

    /// Everything subscribed, with held versions, for re-subscribing after a reconnect.
    pub fn subscriptions(&self) -> Vec<(String, String, Option<String>)> {
        let maps = self.read();
        maps.requested
            .iter()
            .map(|(t, n)| {
                (
                    t.clone(),
                    n.clone(),
                    maps.versions.get(&(t.clone(), n.clone())).cloned(),
                )
            })
            .collect()
    }

    fn request(&self, ty: &str, name: &str) {
        let key = (ty.to_string(), name.to_string());
        let new = self.write().requested.insert(key);
        if new {
            let _ = self
                .subscribe
                .send((ty.to_string(), name.to_string(), true));
        }
    }

    /// Registers a subscription that the discovery client sends on (re)connect.
    pub fn want(&self, ty: &str, name: &str) {
        self.write()
            .requested
            .insert((ty.to_string(), name.to_string()));
    }

    /// The Service `ns/name`, asking the control plane on first use.
    pub async fn service(&self, key: &str) -> Result<Arc<ServiceEntry>, LookupError> {
        self.lookup(SERVICE_TYPE, key, |m| m.services.get(key).cloned())
            .await
    }

    /// The Gateway `ns/name`, asking the control plane on first use.
    pub async fn gateway(&self, key: &str) -> Result<Arc<GatewayEntry>, LookupError> {
        self.lookup(GATEWAY_TYPE, key, |m| m.gateways.get(key).cloned())
            .await
    }

    /// What is known of the Gateway `ns/name` without waiting: `None` until the control plane
    /// answered about it.
    pub fn gateway_known(&self, key: &str) -> Option<Result<(), LookupError>> {
        match self.read().gateways.get(key)? {
            Known::Present(_) => Some(Ok(())),
            Known::Missing => Some(Err(LookupError::Missing)),
            Known::Rejected(why) => Some(Err(LookupError::Rejected(why.clone()))),
        }
    }

    /// Counts applied and rejected updates; changes with each.
    pub fn updates(&self) -> watch::Receiver<u64> {
        self.updates.subscribe()
    }

    /// Where `ip` leads (a Service VIP or a mesh pod), asking the control plane on first use.
    pub async fn address(&self, ip: IpAddr) -> Result<AddressConfig, LookupError> {
        self.lookup(ADDRESS_TYPE, &ip.to_string(), |m| {
            m.addresses.get(&ip).cloned()
        })
        .await
    }

    async fn lookup<T: Clone>(
        &self,
        ty: &str,
        name: &str,
        get: impl Fn(&Maps) -> Option<Known<T>>,
    ) -> Result<T, LookupError> {
        let deadline = tokio::time::Instant::now() + LOOKUP_TIMEOUT;
        loop {
            let notified = self.changed.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            let found = get(&self.read());
            match found {
                Some(Known::Present(v)) => return Ok(v),
                Some(Known::Missing) => return Err(LookupError::Missing),
                Some(Known::Rejected(why)) => return Err(LookupError::Rejected(why)),
                None => self.request(ty, name),
            }
            if tokio::time::timeout_at(deadline, notified).await.is_err() {
                return Err(LookupError::Timeout);
            }
        }
    }

    /// Applies one response. `Err` (the NACK text) leaves everything as it was.
    pub fn apply(
        &self,
        ty: &str,
        resources: &[(String, String, Vec<u8>)],
        removed: &[String],
    ) -> Result<(), Error> {
        let result = match ty {
            PROXY_TYPE => self.apply_proxy(resources, removed),
            SERVICE_TYPE => self.apply_services(resources, removed),
            ADDRESS_TYPE => self.apply_addresses(resources, removed),
            GATEWAY_TYPE => self.apply_gateways(resources, removed),
            other => Err(Error::UnknownType(other.to_string())),
        };
        match &result {
            Ok(()) => {
                let mut maps = self.write();
                for (name, version, _) in resources {
                    maps.versions
                        .insert((ty.to_string(), name.clone()), version.clone());
                }
                for name in removed {
                    maps.versions.remove(&(ty.to_string(), name.clone()));
                }
            }
            Err(e) => {
                let e = e.to_string();
                let mut maps = self.write();
                maps.last_nack = Some(json!({"type": ty, "error": e}));
                // Requests waiting for a first version must not wait for one that never comes.
                for (name, _, _) in resources {
                    match ty {
                        SERVICE_TYPE => {
                            let rejected = Known::Rejected(e.clone());
                            maps.services.entry(name.clone()).or_insert(rejected);
                        }
                        GATEWAY_TYPE => {
                            let rejected = Known::Rejected(e.clone());
                            maps.gateways.entry(name.clone()).or_insert(rejected);
                        }
                        ADDRESS_TYPE => {
                            if let Ok(ip) = name.parse() {
                                maps.addresses
                                    .entry(ip)
                                    .or_insert(Known::Rejected(e.clone()));
                            }
                        }
                        _ => {}
                    }
                }
            }
        }
        self.changed.notify_waiters();
        self.updates.send_modify(|n| *n += 1);
        result
    }

    /// A proxy's own config, or (node proxy) the configs of the pods it serves; a removed pod
    /// config leaves that pod with none.
    fn apply_proxy(
        &self,
        resources: &[(String, String, Vec<u8>)],
        removed: &[String],
    ) -> Result<(), Error> {
        let decoded = decode_all::<ProxyConfig>(resources, "proxy config")?;
        let requested = |name: &str| {
            (self.read().requested).contains(&(PROXY_TYPE.to_string(), name.to_string()))
        };
        let pods = self.pods();
        let mut gone = self.removed.lock().unwrap_or_else(|p| p.into_inner());
        for (name, cfg) in decoded {
            gone.remove(name.as_str());
            let cfg = Some(Arc::new(cfg));
            match pods.get(name.as_str()) {
                Some(pod) => {
                    pod.send_replace(cfg);
                }
                // The proxy's own config; not one of a pod a node proxy has released (sent
                // before the control plane learned it), which is no one's.
                None if requested(name) => {
                    self.proxy.send_replace(cfg);
                }
                None => tracing::debug!(pod = %name, "config of a pod no longer served: ignored"),
            }
        }
        for name in removed {
            if let Some(pod) = pods.get(name.as_str()) {
                gone.insert(name.clone());
                // Sent even when it had none yet, so whoever waits learns it is removed.
                pod.send_replace(None);
            }
        }
        Ok(())
    }

    fn apply_services(
        &self,
        resources: &[(String, String, Vec<u8>)],
        removed: &[String],
    ) -> Result<(), Error> {
        // Decode and compile everything first: one bad resource rejects the whole response.
        let mut decoded = Vec::with_capacity(resources.len());
        for (name, cfg) in decode_all::<ServiceConfig>(resources, "service")? {
            let routes = match &cfg.http {
                Some(r) => Some(CompiledRoutes::new(r).map_err(Error::routes("service", name))?),
                None => None,
            };
            decoded.push((name.clone(), cfg, routes));
        }
        let mut maps = self.write();
        for (name, cfg, routes) in decoded {
            let balancer = match maps.services.get(&name) {
                // Same policy: keep per-endpoint state (load, failures, ejections). A new
                // policy (balancing kind, ejection settings) starts a fresh balancer.
                Some(Known::Present(old)) if old.config.policy == cfg.policy => {
                    old.balancer.update(cfg.endpoints.clone());
                    old.balancer.clone()
                }
                _ => Arc::new(Balancer::with_metrics(
                    cfg.policy.load_balancer,
                    &cfg.policy,
                    cfg.endpoints.clone(),
                    self.balance.service(&name),
                )),
            };
            let entry = ServiceEntry {
                config: cfg,
                routes,
                balancer,
            };
            maps.services.insert(name, Known::Present(Arc::new(entry)));
        }
        for name in removed {
            maps.services.insert(name.clone(), Known::Missing);
        }
        Ok(())
    }

    fn apply_gateways(
        &self,
        resources: &[(String, String, Vec<u8>)],
        removed: &[String],
    ) -> Result<(), Error> {
        let mut decoded = Vec::with_capacity(resources.len());
        for (name, config) in decode_all::<GatewayConfig>(resources, "gateway")? {
            let routes =
                CompiledRoutes::new(&config.http).map_err(Error::routes("gateway", name))?;
            decoded.push((name.clone(), GatewayEntry { config, routes }));
        }
        let mut maps = self.write();
        for (name, entry) in decoded {
            maps.gateways.insert(name, Known::Present(Arc::new(entry)));
        }
        for name in removed {
            maps.gateways.insert(name.clone(), Known::Missing);
        }
        Ok(())
    }

    fn apply_addresses(
        &self,
        resources: &[(String, String, Vec<u8>)],
        removed: &[String],
    ) -> Result<(), Error> {
        let decoded = decode_all::<AddressConfig>(resources, "address")?;
        let mut maps = self.write();
        for (_, a) in decoded {
            maps.addresses.insert(a.address, Known::Present(a));
        }
        for name in removed {
            if let Ok(ip) = name.parse() {
                maps.addresses.insert(ip, Known::Missing);
            }
        }
        Ok(())
    }

    /// Everything held, for `/config_dump`.
    pub fn dump(&self) -> Value {
        let maps = self.read();
        // Each Service with the endpoints its balancer holds ejected now (outlier detection).
        let services = dump_map(&maps.services, |e| {
            let mut v = serde_json::to_value(&e.config)?;
            let ejected: Vec<String> = (e.balancer.ejected().iter())
                .map(|ep| format!("{} {}", ep.pod, ep.address))
                .collect();
            if let Value::Object(o) = &mut v {
                o.insert("ejected".into(), json!(ejected));
            }
            Ok(v)
        });
        let addresses = dump_map(&maps.addresses, |s| serde_json::to_value(s));
        let gateways = dump_map(&maps.gateways, |e| serde_json::to_value(&e.config));
        let versions: serde_json::Map<String, Value> = maps
            .versions
            .iter()
            .map(|((t, n), v)| (format!("{t} {n}"), json!(v)))
            .collect();
        json!({
            "proxy": self.proxy.borrow().as_deref(),
            "services": services,
            "addresses": addresses,
            "gateways": gateways,
            "versions": versions,
            "lastNack": maps.last_nack,
        })
    }
}

/// One map of the store for `/config_dump`: present entries as JSON, or what is known instead.
fn dump_map<K: ToString, T>(
    map: &HashMap<K, Known<T>>,
    show: impl Fn(&T) -> serde_json::Result<Value>,
) -> serde_json::Map<String, Value> {
    map.iter()
        .map(|(k, v)| {
            let v = match v {
                Known::Present(e) => show(e).unwrap_or(Value::Null),
                Known::Missing => json!("missing"),
                Known::Rejected(why) => json!({"rejected": why}),
            };
            (k.to_string(), v)
        })
        .collect()
}

/// Every resource of a response decoded as `T` (`kind` names it in the error): one that does
/// not decode rejects the whole response.
fn decode_all<'a, T: serde::de::DeserializeOwned>(
    resources: &'a [(String, String, Vec<u8>)],
    kind: &'static str,
) -> Result<Vec<(&'a String, T)>, Error> {
    resources
        .iter()
        .map(|(name, _, body)| {
            let value = serde_json::from_slice(body).map_err(Error::decode(kind, name))?;
            Ok((name, value))
        })
        .collect()
}

#[cfg(test)]
mod tests;
