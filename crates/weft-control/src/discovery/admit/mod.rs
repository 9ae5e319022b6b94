//! Who a discovery stream belongs to, decided once, from its first request.
//!
//! On the mTLS port the proxy's namespace and service account come from its certificate's
//! SPIFFE ID and its pod from the certificate's subject; the pod's address, workload and role
//! come from the runtime's registration of that pod (its bootstrap credential). The
//! connection must come from the registered address, and every claim in `node` must agree
//! with all of that, or the stream is refused with what did not match; nothing a client says
//! is taken on trust. On the plaintext port (loopback only: tools and tests on the control
//! plane's host) the claims stand as made.

use std::net::{IpAddr, SocketAddr};

use weft_core::model::Pod;
use weft_proto::discovery::Node;

use crate::ca::Grant;
use crate::peer::Peer;

/// The role of a node proxy (ambient mode): registered as `pod` = the node's name.
pub const NODE_ROLE: &str = "node";

/// An admitted proxy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Admitted {
    pub id: String,
    /// The pod it serves, as far as it is known (its config is built for it); on the mTLS
    /// port entirely from the certificate and the registration.
    pub proxy: Option<Pod>,
    /// Whether that pod is an endpoint of its Services: not for a gateway, nor for a pod
    /// registered without an address.
    pub endpoint: bool,
    /// A node proxy (role `node`): the node it serves, whose ambient pods' configurations it
    /// may subscribe to. Its `node.pod` names the node.
    pub node: Option<String>,
}

/// Why a stream was refused: a short reason for metrics, a message for the proxy and the log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refused {
    pub reason: &'static str,
    pub message: String,
}

fn refused(reason: &'static str, message: String) -> Refused {
    Refused { reason, message }
}

/// Decides who sent `node` over a connection from `peer`; `registered` looks up the
/// registration of a pod by namespace and name.
pub fn admit(
    node: &Node,
    peer: Option<&Peer>,
    trust_domain: &str,
    registered: impl Fn(&str, &str) -> Option<Grant>,
) -> Result<Admitted, Refused> {
    let Some(peer) = peer else {
        return Err(refused(
            "transport",
            "the connection's transport is unknown".into(),
        ));
    };
    if peer.tls {
        return admit_tls(node, peer, trust_domain, registered);
    }
    if node.id.is_empty() {
        return Err(refused("claim", "node.id is empty".into()));
    }
    Ok(admit_local(node))
}

/// The plaintext port: the claims as made.
fn admit_local(node: &Node) -> Admitted {
    if node.role == NODE_ROLE {
        return Admitted {
            id: node.id.clone(),
            proxy: None,
            endpoint: false,
            node: Some(node.pod.clone()),
        };
    }
    let pod = node.ip.parse().ok().map(|ip| Pod {
        id: node.id.clone(),
        namespace: node.namespace.clone(),
        workload: node.workload.clone(),
        name: node.pod.clone(),
        ip,
        service_account: if node.service_account.is_empty() {
            "default".into()
        } else {
            node.service_account.clone()
        },
        labels: node.labels.clone().into_iter().collect(),
        inbound: node.inbound_address.parse().ok(),
        tunnel: node.tunnel_address.parse().ok(),
        node: String::new(),
        ready: true,
    });
    Admitted {
        id: node.id.clone(),
        // A gateway proxy serves a Gateway, not a workload: it is nobody's endpoint.
        endpoint: pod.is_some() && node.role != "gateway",
        proxy: pod,
        node: None,
    }
}

fn admit_tls(
    node: &Node,
    peer: &Peer,
    trust_domain: &str,
    registered: impl Fn(&str, &str) -> Option<Grant>,
) -> Result<Admitted, Refused> {
    let Some(cert) = &peer.client else {
        return Err(refused(
            "no-certificate",
            "discovery on this port admits proxies by their workload certificate, and none was \
             presented; a proxy gets one from the CA with its bootstrap credential first"
                .into(),
        ));
    };
    if cert.identity.trust_domain != trust_domain {
        return Err(refused(
            "certificate",
            format!(
                "{} is not in this mesh's trust domain {trust_domain:?}",
                cert.identity
            ),
        ));
    }
    let (ns, sa, pod) = (
        &cert.identity.namespace,
        &cert.identity.service_account,
        &cert.pod,
    );
    if pod.is_empty() {
        return Err(refused(
            "certificate",
            format!(
                "the certificate of {} names no pod; ask this control plane's CA for a new one",
                cert.identity
            ),
        ));
    }
    let who = format!("pod {ns}/{pod}");
    let reg = registered(ns, pod).ok_or_else(|| {
        refused(
            "unregistered",
            format!("{who} has no registration (bootstrap credential) in this control plane"),
        )
    })?;
    if &reg.service_account != sa {
        return Err(refused(
            "certificate",
            format!(
                "{who} is registered with service account {:?}, its certificate says {sa:?}",
                reg.service_account
            ),
        ));
    }
    // An IPv4 peer on a dual-stack socket arrives as ::ffff:a.b.c.d.
    let from = peer.addr.ip().to_canonical();
    if let Some(addr) = reg.address
        && addr != from
    {
        return Err(refused(
            "address",
            format!(
                "{who} is registered at {addr}, but this connection comes from {from}: its \
                 certificate is not usable from another address"
            ),
        ));
    }
    let expected_id = format!("{pod}.{ns}");
    let checks: [(&str, &str, bool); 7] = [
        ("id", &expected_id, node.id == expected_id),
        ("namespace", ns, &node.namespace == ns),
        ("pod", pod, &node.pod == pod),
        (
            "serviceAccount",
            sa,
            node.service_account.is_empty() || &node.service_account == sa,
        ),
        (
            "workload",
            &reg.workload,
            reg.workload.is_empty() || node.workload == reg.workload,
        ),
        (
            "role",
            &reg.role,
            reg.role.is_empty() || node.role == reg.role,
        ),
        (
            "ip",
            &reg.address.map(|a| a.to_string()).unwrap_or_default(),
            node.ip.is_empty() || reg.address.is_some_and(|a| node.ip == a.to_string()),
        ),
    ];
    for (field, expected, ok) in checks {
        if !ok {
            let claimed = claimed(node, field);
            return Err(refused(
                "claim",
                format!(
                    "node.{field} {claimed:?} does not match {who}: its certificate and \
                     registration say {expected:?}"
                ),
            ));
        }
    }
    // Serving a node's pods is granted by registration only, never inferred from a
    // registration that leaves the role open.
    if (node.role == NODE_ROLE) != (reg.role == NODE_ROLE) {
        return Err(refused(
            "claim",
            format!(
                "node.role {:?} does not match {who}: its registration says {:?}",
                node.role, reg.role
            ),
        ));
    }
    if node.role == NODE_ROLE {
        return Ok(Admitted {
            id: expected_id,
            proxy: None,
            endpoint: false,
            node: Some(pod.clone()),
        });
    }
    let labels: std::collections::BTreeMap<String, String> =
        node.labels.clone().into_iter().collect();
    if !labels.is_empty() && labels != reg.labels {
        return Err(refused(
            "claim",
            format!(
                "node.labels {labels:?} are not the labels {who} is registered with ({:?})",
                reg.labels
            ),
        ));
    }
    let own = |field: &str, value: &str| -> Result<Option<SocketAddr>, Refused> {
        if value.is_empty() {
            return Ok(None);
        }
        let addr: SocketAddr = value
            .parse()
            .map_err(|_| refused("claim", format!("node.{field} {value:?} is not IP:port")))?;
        if Some(addr.ip()) != reg.address {
            return Err(refused(
                "claim",
                format!("node.{field} {addr} is not at {who}'s own address"),
            ));
        }
        Ok(Some(addr))
    };
    let inbound = own("inboundAddress", &node.inbound_address)?;
    let tunnel = own("tunnelAddress", &node.tunnel_address)?;
    let workload = if reg.workload.is_empty() {
        node.workload.clone()
    } else {
        reg.workload.clone()
    };
    let endpoint = |ip: IpAddr| Pod {
        id: expected_id.clone(),
        namespace: ns.clone(),
        workload,
        name: pod.clone(),
        ip,
        service_account: sa.clone(),
        labels: reg.labels.clone(),
        inbound,
        tunnel,
        node: String::new(),
        ready: true,
    };
    Ok(Admitted {
        id: expected_id.clone(),
        endpoint: reg.address.is_some() && node.role != "gateway",
        proxy: Some(endpoint(reg.address.unwrap_or(from))),
        node: None,
    })
}

/// What `node` claims for `field`, for the message.
fn claimed<'a>(node: &'a Node, field: &str) -> &'a str {
    match field {
        "id" => &node.id,
        "namespace" => &node.namespace,
        "pod" => &node.pod,
        "serviceAccount" => &node.service_account,
        "workload" => &node.workload,
        "role" => &node.role,
        _ => &node.ip,
    }
}

#[cfg(test)]
mod tests;
