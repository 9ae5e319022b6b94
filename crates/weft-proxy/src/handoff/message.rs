//! The hand-off messages, one per packet, as JSON. A [`Message::Listener`] packet carries the
//! listening socket it names (SCM_RIGHTS); no other message carries a descriptor.

use std::net::SocketAddr;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

/// The protocol version a new process says in [`Message::Hello`]; an old process that speaks
/// another answers [`Message::Refused`].
pub const VERSION: u32 = 1;

/// The largest message either side sends or accepts.
pub const MAX_LEN: usize = 16 * 1024;

/// Which listener a socket is: one of a pod's, or one of the node proxy's own (no pod).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    Outbound,
    Inbound,
    Tunnel,
    Admin,
    Readiness,
    Metrics,
}

impl Kind {
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Outbound => "outbound",
            Kind::Inbound => "inbound",
            Kind::Tunnel => "tunnel",
            Kind::Admin => "admin",
            Kind::Readiness => "readiness",
            Kind::Metrics => "metrics",
        }
    }
}

/// What a handed-over listening socket is: the pod and listener it serves, and what the pod
/// was enrolled with (its namespace and the configured address, port 0 included), so the new
/// process takes it only for the same pod in the same namespace on the same address. The node
/// proxy's own listeners have an empty pod and namespace.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Header {
    pub pod: String,
    pub kind: Kind,
    pub netns: PathBuf,
    pub addr: SocketAddr,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(
    tag = "msg",
    rename_all = "camelCase",
    rename_all_fields = "camelCase",
    deny_unknown_fields
)]
pub enum Message {
    /// New → old, first: asks for the listeners, and says how long it may take to be ready.
    Hello {
        version: u32,
        pid: u32,
        ready_within_ms: u64,
    },
    /// Old → new: one listening socket, in the same packet.
    Listener(Header),
    /// Old → new: every listener was sent.
    Done { count: usize },
    /// Old → new: no hand-off (another version, or one is already under way).
    Refused { reason: String },
    /// New → old: every pod is served and the hand-off socket leads to the new process; the
    /// old one stops accepting.
    Ready,
}

impl Message {
    /// Its name, for errors.
    pub fn name(&self) -> &'static str {
        match self {
            Message::Hello { .. } => "hello",
            Message::Listener(_) => "listener",
            Message::Done { .. } => "done",
            Message::Refused { .. } => "refused",
            Message::Ready => "ready",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    #[error("a message of {0} bytes (at most {MAX_LEN})")]
    TooLong(usize),
    #[error("not a hand-off message: {0}")]
    Invalid(String),
}

pub fn encode(m: &Message) -> Vec<u8> {
    serde_json::to_vec(m).expect("hand-off messages always serialize")
}

pub fn decode(bytes: &[u8]) -> Result<Message, DecodeError> {
    if bytes.len() > MAX_LEN {
        return Err(DecodeError::TooLong(bytes.len()));
    }
    serde_json::from_slice(bytes).map_err(|e| DecodeError::Invalid(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header() -> Header {
        Header {
            pod: "web-0.shop".into(),
            kind: Kind::Tunnel,
            netns: "/run/netns/web-0".into(),
            addr: "0.0.0.0:15008".parse().unwrap(),
        }
    }

    #[test]
    fn messages_have_one_encoding() {
        let table = [
            (
                Message::Hello {
                    version: 1,
                    pid: 42,
                    ready_within_ms: 60000,
                },
                r#"{"msg":"hello","version":1,"pid":42,"readyWithinMs":60000}"#,
            ),
            (
                Message::Listener(header()),
                r#"{"msg":"listener","pod":"web-0.shop","kind":"tunnel","netns":"/run/netns/web-0","addr":"0.0.0.0:15008"}"#,
            ),
            (Message::Done { count: 3 }, r#"{"msg":"done","count":3}"#),
            (
                Message::Refused {
                    reason: "busy".into(),
                },
                r#"{"msg":"refused","reason":"busy"}"#,
            ),
            (Message::Ready, r#"{"msg":"ready"}"#),
        ];
        for (m, text) in table {
            assert_eq!(String::from_utf8(encode(&m)).unwrap(), text, "{m:?}");
            assert_eq!(decode(text.as_bytes()).unwrap(), m, "{text}");
        }
    }

    #[test]
    fn every_kind_round_trips() {
        let kinds = [
            Kind::Outbound,
            Kind::Inbound,
            Kind::Tunnel,
            Kind::Admin,
            Kind::Readiness,
            Kind::Metrics,
        ];
        for kind in kinds {
            let m = Message::Listener(Header { kind, ..header() });
            let text = String::from_utf8(encode(&m)).unwrap();
            assert!(
                text.contains(&format!("\"kind\":\"{}\"", kind.as_str())),
                "{text}"
            );
            assert_eq!(decode(text.as_bytes()).unwrap(), m);
        }
    }

    #[test]
    fn what_is_not_a_message_is_refused() {
        let bad = [
            ("", "EOF while parsing"),
            (r#"{"msg":"goodbye"}"#, "unknown variant `goodbye`"),
            (r#"{"msg":"done"}"#, "missing field `count`"),
            (
                r#"{"msg":"done","count":1,"extra":1}"#,
                "unknown field `extra`",
            ),
            (
                r#"{"msg":"listener","pod":"p","kind":"debug","netns":"/n","addr":"1.2.3.4:1"}"#,
                "unknown variant `debug`",
            ),
            (
                r#"{"msg":"listener","pod":"p","kind":"inbound","netns":"/n","addr":"nowhere"}"#,
                "invalid socket address",
            ),
        ];
        for (text, why) in bad {
            match decode(text.as_bytes()) {
                Err(DecodeError::Invalid(e)) => assert!(e.contains(why), "{text}: {e}"),
                other => panic!("{text}: {other:?}"),
            }
        }
        let long = vec![b' '; MAX_LEN + 1];
        assert_eq!(decode(&long), Err(DecodeError::TooLong(MAX_LEN + 1)));
    }
}
