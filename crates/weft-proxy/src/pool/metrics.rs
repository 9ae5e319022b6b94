//! The pool's metrics, registered under `weft_pool_`:
//!
//! - `weft_pool_connections_opened_total{transport}` — upstream connections opened, by
//!   [`Transport`] (`local`, `plain`, `tunnel`)
//! - `weft_pool_connect_failures_total{transport, reason}` — connections that could not be
//!   opened, by the failing stage (`connect-timeout`, `connect-refused`, …)
//! - `weft_pool_requests_total{protocol, connection}` — HTTP requests sent on a pooled
//!   connection (`reused`) or on one opened for them (`new`)

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::registry::Registry;

use super::Transport;

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct TransportLabels {
    transport: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct FailureLabels {
    transport: &'static str,
    reason: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct UseLabels {
    protocol: &'static str,
    connection: &'static str,
}

/// Counters of one proxy's pool; clones count into the same families. `Default` registers
/// nowhere (tests, a pool on its own).
#[derive(Debug, Clone, Default)]
pub struct Metrics {
    opened: Family<TransportLabels, Counter>,
    failures: Family<FailureLabels, Counter>,
    uses: Family<UseLabels, Counter>,
}

impl Metrics {
    /// Registers the pool's families into `registry` (give it a `pool` sub-registry).
    pub fn register(registry: &mut Registry) -> Metrics {
        let m = Metrics::default();
        registry.register(
            "connections_opened",
            "Upstream connections opened, by transport",
            m.opened.clone(),
        );
        registry.register(
            "connect_failures",
            "Upstream connections that could not be opened, by transport and failing stage",
            m.failures.clone(),
        );
        registry.register(
            "requests",
            "HTTP requests sent upstream on a reused pooled connection or a new one",
            m.uses.clone(),
        );
        m
    }

    pub(super) fn opened(&self, transport: &Transport) {
        let transport = name(transport);
        self.opened
            .get_or_create(&TransportLabels { transport })
            .inc();
    }

    pub(super) fn failed(&self, transport: &Transport, reason: &'static str) {
        let transport = name(transport);
        let labels = FailureLabels { transport, reason };
        self.failures.get_or_create(&labels).inc();
    }

    /// A request sent over `protocol` (`http1`, `http2`) on a `reused` connection or not.
    pub(super) fn request(&self, protocol: &'static str, reused: bool) {
        let connection = if reused { "reused" } else { "new" };
        let labels = UseLabels {
            protocol,
            connection,
        };
        self.uses.get_or_create(&labels).inc();
    }
}

fn name(t: &Transport) -> &'static str {
    match t {
        Transport::Local => "local",
        Transport::Plain => "plain",
        Transport::Tunnel { .. } => "tunnel",
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::connect::Connector;
    use crate::pool::{Pool, Upstream};

    #[tokio::test]
    async fn opened_and_failed_connections_are_counted_by_transport() {
        let mut registry = crate::metrics::registry();
        let metrics = Metrics::register(registry.sub_registry_with_prefix("pool"));
        let pool = Pool::new(None).with(Connector::default(), metrics);
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = l.local_addr().unwrap();
        let timeout = Duration::from_secs(5);
        pool.open(&Upstream::direct(addr), timeout).await.unwrap();
        pool.open(&Upstream::local(addr), timeout).await.unwrap();
        drop(l);
        assert!(pool.open(&Upstream::direct(addr), timeout).await.is_err());
        let text = crate::metrics::encode(&registry);
        for line in [
            r#"weft_pool_connections_opened_total{transport="plain"} 1"#,
            r#"weft_pool_connections_opened_total{transport="local"} 1"#,
            r#"weft_pool_connect_failures_total{transport="plain",reason="connect-refused"} 1"#,
        ] {
            assert!(text.contains(line), "{line} not in {text}");
        }
    }
}
