//! `GET /debug/proxy_config?pod=ID` (or `gateway=NS/NAME`, `node=NAME`, `proxy=ID`): the full
//! configuration this control plane intends for one proxy
//! ([`weft_core::model::effective::Effective`]): listeners, the routes and clusters of every
//! Service it can call, every endpoint. Not only what the proxy asked for so far: proxies
//! fetch Services on demand, and `/debug/config_dump` shows what was sent.

use http::StatusCode;
use serde_json::{Value, json};
use weft_core::model::effective::Target;

use crate::state::State;

/// The answer to the query whose parameters `param` reads.
pub fn answer(state: &State, param: impl Fn(&str) -> Option<String>) -> (StatusCode, Value) {
    let connected = |id: &str| {
        let proxies = state.proxies();
        let p = proxies.get(id)?;
        Some((
            p.node.role.clone(),
            p.node.namespace.clone(),
            p.node.workload.clone(),
            p.node.pod.clone(),
        ))
    };
    // A connected proxy's id leads to what it serves.
    let (kind, name) = match (
        param("pod"),
        param("gateway"),
        param("node"),
        param("proxy"),
    ) {
        (Some(pod), ..) => ("pod", pod),
        (_, Some(gateway), ..) => ("gateway", gateway),
        (_, _, Some(node), _) => ("node", node),
        (_, _, _, Some(id)) => match connected(&id) {
            Some((role, ns, workload, _)) if role == "gateway" => {
                ("gateway", format!("{ns}/{workload}"))
            }
            Some((role, _, _, pod)) if role == "node" => ("node", pod),
            Some(_) => ("pod", id),
            None => {
                let error = format!("no connected proxy {id:?}; /debug/syncz lists them");
                return (StatusCode::NOT_FOUND, json!({ "error": error }));
            }
        },
        _ => {
            let error = "add ?pod=ID, ?gateway=NS/NAME, ?node=NAME or ?proxy=ID";
            return (StatusCode::BAD_REQUEST, json!({ "error": error }));
        }
    };
    let target = match kind {
        "pod" => Target::Pod(&name),
        "gateway" => Target::Gateway(&name),
        _ => Target::Node(&name),
    };
    let snap = state.snapshot().borrow().clone();
    match snap.effective(target) {
        Ok(effective) => {
            let mut body = json!(effective);
            body["configGeneration"] = json!(state.config_status().generation);
            (StatusCode::OK, body)
        }
        Err(e) => (StatusCode::NOT_FOUND, json!({ "error": e.to_string() })),
    }
}

/// A query parameter's value with `%XX` escapes decoded (`gateway=shop%2Fingress`).
pub fn decode(value: &str) -> String {
    let bytes = value.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = |b: u8| (b as char).to_digit(16);
        match (bytes[i], bytes.get(i + 1), bytes.get(i + 2)) {
            (b'%', Some(&h), Some(&l)) if hex(h).is_some() && hex(l).is_some() => {
                out.push((hex(h).unwrap_or(0) * 16 + hex(l).unwrap_or(0)) as u8);
                i += 3;
            }
            (b'+', ..) => {
                out.push(b' ');
                i += 1;
            }
            (b, ..) => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_decode() {
        assert_eq!(decode("shop%2Fingress"), "shop/ingress");
        assert_eq!(decode("shop/ingress"), "shop/ingress");
        assert_eq!(decode("100%"), "100%");
    }
}
