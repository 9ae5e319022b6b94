//! Writes one record as a line in the workload's format ([`LogFormat`]): weft's JSON record,
//! a flat JSON object of the fields the format names, or a line of text. A value that is not
//! known is `-` in text and `null` in a JSON field that is one operator alone (which keeps its
//! type: codes, durations and byte counts stay numbers).

use std::borrow::Cow;
use std::fmt::Write as _;

use weft_core::access_log::{
    Field, HeaderRef, LogFormat, Operator, Part, Shape, Template, TimeFormat,
};
use weft_core::model::ProxyConfig;

use crate::metrics::{flags, istio};
use crate::record::Record;

/// Appends `r` as one line (newline included) to `out`.
pub fn line(format: &LogFormat, r: &Record, me: Option<&ProxyConfig>, out: &mut Vec<u8>) {
    let mut ctx = Context {
        r,
        me,
        labels: None,
    };
    match &format.shape {
        Shape::Standard => {
            if serde_json::to_writer(&mut *out, r).is_err() {
                return;
            }
        }
        Shape::Line(t) => out.extend_from_slice(ctx.text(t).as_bytes()),
        Shape::Fields(fields) => {
            let mut obj = serde_json::Map::with_capacity(fields.len());
            for (key, t) in fields {
                obj.insert(key.clone(), ctx.json(t));
            }
            if serde_json::to_writer(&mut *out, &obj).is_err() {
                return;
            }
        }
    }
    out.push(b'\n');
}

enum Value<'a> {
    Missing,
    Number(u64),
    Text(Cow<'a, str>),
}

struct Context<'a> {
    r: &'a Record,
    me: Option<&'a ProxyConfig>,
    /// Both sides' workloads and principals, worked out once when the format asks.
    labels: Option<istio::Labels>,
}

impl<'a> Context<'a> {
    fn text(&mut self, t: &Template) -> String {
        let mut s = String::new();
        for part in &t.parts {
            match part {
                Part::Text(text) => s.push_str(text),
                Part::Op(op) => match self.value(op) {
                    Value::Missing => s.push('-'),
                    Value::Number(n) => {
                        let _ = write!(s, "{n}");
                    }
                    Value::Text(v) => s.push_str(&v),
                },
            }
        }
        s
    }

    fn json(&mut self, t: &Template) -> serde_json::Value {
        match t.single().map(|op| self.value(op)) {
            Some(Value::Missing) => serde_json::Value::Null,
            Some(Value::Number(n)) => n.into(),
            Some(Value::Text(v)) => v.into_owned().into(),
            None => self.text(t).into(),
        }
    }

    fn value(&mut self, op: &Operator) -> Value<'a> {
        let r = self.r;
        match op {
            Operator::StartTime(f) => {
                let mut s = String::new();
                let ns = u128::from(r.ts_ms) * 1_000_000;
                match f {
                    Some(f) => f.render(ns, &mut s),
                    None => TimeFormat::envoy_default().render(ns, &mut s),
                }
                Value::Text(s.into())
            }
            Operator::Req(h) => header(h, |name| request(r, name)),
            Operator::Resp(h) => header(h, |name| match name {
                ":status" => r.status.map(|s| Cow::Owned(s.to_string())),
                _ => find(&r.response_headers, name),
            }),
            Operator::Field(f) => self.field(*f),
        }
    }

    fn field(&mut self, f: Field) -> Value<'a> {
        let r = self.r;
        let text = |v: Option<&'a str>| v.map_or(Value::Missing, |v| Value::Text(v.into()));
        let num = |v: Option<u64>| v.map_or(Value::Missing, Value::Number);
        let inbound = matches!(r.direction, "inbound" | "waypoint");
        match f {
            Field::Protocol => text(Some(r.protocol.as_str())),
            Field::ResponseCode => Value::Number(r.status.map_or(0, u64::from)),
            Field::ResponseFlags => Value::Text(flags::of(r).into()),
            Field::ResponseCodeDetails => match (r.error, r.status) {
                (Some(stage), _) => Value::Text(stage.into()),
                (None, Some(_)) => Value::Text("via_upstream".into()),
                (None, None) => Value::Missing,
            },
            Field::Duration => Value::Number(r.duration_ms.round() as u64),
            // Envoy's sides: received from and sent to the downstream client.
            Field::BytesReceived => num(r.bytes_sent),
            Field::BytesSent => num(r.bytes_received),
            Field::UpstreamHost => text(r.upstream.as_deref()),
            Field::UpstreamCluster | Field::DestinationService => text(r.service.as_deref()),
            Field::UpstreamTransportFailureReason => match r.error {
                Some(s @ ("connect-refused" | "connect-timeout" | "tunnel")) => text(Some(s)),
                _ => Value::Missing,
            },
            Field::UpstreamRequestAttemptCount => num(r.attempts.map(u64::from)),
            Field::DownstreamRemoteAddress => text(r.downstream.as_deref()),
            Field::DownstreamRemoteAddressWithoutPort => {
                let addr = r
                    .downstream
                    .as_deref()
                    .and_then(|d| d.parse::<std::net::SocketAddr>().ok());
                addr.map_or(Value::Missing, |a| Value::Text(a.ip().to_string().into()))
            }
            Field::DownstreamPeerUriSan => text(r.peer_identity.as_deref().filter(|_| inbound)),
            Field::UpstreamPeerUriSan => text(r.peer_identity.as_deref().filter(|_| !inbound)),
            Field::RouteName => text(r.route.as_deref()),
            Field::GrpcStatusNumber => num(r.grpc_status.map(u64::from)),
            Field::TraceId => r.trace.as_ref().map_or(Value::Missing, |s| {
                Value::Text(s.context.trace_id.to_string().into())
            }),
            Field::Direction => Value::Text(r.direction.into()),
            Field::AuthzPolicy => text(r.policy.as_deref()),
            Field::SourcePrincipal => self.label(|l| &l.source_principal),
            Field::DestinationPrincipal => self.label(|l| &l.destination_principal),
            Field::SourceWorkload => self.label(|l| &l.source_workload),
            Field::DestinationWorkload => self.label(|l| &l.destination_workload),
            Field::Unknown => Value::Missing,
        }
    }

    fn label(&mut self, pick: fn(&istio::Labels) -> &String) -> Value<'a> {
        let labels = self
            .labels
            .get_or_insert_with(|| istio::labels(self.r, self.me));
        match pick(labels).as_str() {
            istio::UNKNOWN => Value::Missing,
            v => Value::Text(Cow::Owned(v.to_string())),
        }
    }
}

/// A request header, or a pseudo-header from the record.
fn request<'a>(r: &'a Record, name: &str) -> Option<Cow<'a, str>> {
    let field = match name {
        ":method" => r.method.as_deref(),
        ":path" => r.path.as_deref(),
        ":authority" | "host" => r.authority.as_deref(),
        ":scheme" => r.method.as_ref().map(|_| "http"),
        _ => return find(&r.request_headers, name),
    };
    field.map(Cow::Borrowed)
}

fn find<'a>(headers: &'a [(String, String)], name: &str) -> Option<Cow<'a, str>> {
    headers
        .iter()
        .find(|(n, _)| n == name)
        .map(|(_, v)| Cow::Borrowed(v.as_str()))
}

fn header<'a>(h: &HeaderRef, get: impl Fn(&str) -> Option<Cow<'a, str>>) -> Value<'a> {
    let v = get(&h.name).or_else(|| h.fallback.as_deref().and_then(&get));
    match (v, h.max_len) {
        (None, _) => Value::Missing,
        (Some(v), Some(max)) if v.chars().count() > max => {
            Value::Text(Cow::Owned(v.chars().take(max).collect()))
        }
        (Some(v), _) => Value::Text(v),
    }
}

#[cfg(test)]
mod tests;
