//! Trace context in HTTP headers, read and written purely: W3C Trace Context (`traceparent`,
//! `tracestate`) and Zipkin's B3, as one `b3` header or as `x-b3-*` headers.
//!
//! [`extract`] reads what a request came with (`traceparent` first, then `b3`, then
//! `x-b3-*`; an invalid header counts as absent), [`decide`] makes this proxy's span from it
//! (a new trace when there is none, sampled at the configured rate; a caller's decision is
//! kept), and [`inject`] writes it for upstream: `traceparent` always (`tracestate` is kept
//! as it came), and B3 in the encoding the request used, so an app that reads only B3 sees
//! the proxy's span as its parent. As Envoy does, `x-b3-parentspanid` names the caller's
//! span and `x-b3-spanid` the proxy's.

use std::fmt;

use http::{HeaderMap, HeaderValue};

pub const TRACEPARENT: &str = "traceparent";
pub const TRACESTATE: &str = "tracestate";
pub const B3: &str = "b3";
pub const B3_TRACE_ID: &str = "x-b3-traceid";
pub const B3_SPAN_ID: &str = "x-b3-spanid";
pub const B3_PARENT_SPAN_ID: &str = "x-b3-parentspanid";
pub const B3_SAMPLED: &str = "x-b3-sampled";
pub const B3_FLAGS: &str = "x-b3-flags";

/// A 128-bit trace id; never all zeros.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct TraceId(pub [u8; 16]);

/// A 64-bit span id; never all zeros.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct SpanId(pub [u8; 8]);

impl TraceId {
    pub fn random(rng: &mut fastrand::Rng) -> TraceId {
        loop {
            let id = rng.u128(..).to_be_bytes();
            if id != [0; 16] {
                return TraceId(id);
            }
        }
    }

    /// 32 lower-case hex digits, or 16 (a 64-bit B3 id, padded with zeros on the left).
    fn parse(s: &str) -> Option<TraceId> {
        let mut id = [0u8; 16];
        match s.len() {
            32 => unhex(s, &mut id)?,
            16 => unhex(s, &mut id[8..])?,
            _ => return None,
        }
        (id != [0; 16]).then_some(TraceId(id))
    }
}

impl SpanId {
    pub fn random(rng: &mut fastrand::Rng) -> SpanId {
        loop {
            let id = rng.u64(..).to_be_bytes();
            if id != [0; 8] {
                return SpanId(id);
            }
        }
    }

    fn parse(s: &str) -> Option<SpanId> {
        let mut id = [0u8; 8];
        unhex(s, &mut id)?;
        (id != [0; 8]).then_some(SpanId(id))
    }
}

/// Lower-case hex only, exactly `2 * out.len()` digits (W3C refuses upper case).
fn unhex(s: &str, out: &mut [u8]) -> Option<()> {
    let b = s.as_bytes();
    if b.len() != out.len() * 2 {
        return None;
    }
    let digit = |c: u8| match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        _ => None,
    };
    for (i, o) in out.iter_mut().enumerate() {
        *o = digit(b[2 * i])? << 4 | digit(b[2 * i + 1])?;
    }
    Some(())
}

fn hex(f: &mut fmt::Formatter<'_>, bytes: &[u8]) -> fmt::Result {
    bytes.iter().try_for_each(|b| write!(f, "{b:02x}"))
}

macro_rules! hex_id {
    ($t:ty) => {
        impl fmt::Display for $t {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                hex(f, &self.0)
            }
        }
        impl fmt::Debug for $t {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                hex(f, &self.0)
            }
        }
        impl serde::Serialize for $t {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.collect_str(self)
            }
        }
    };
}
hex_id!(TraceId);
hex_id!(SpanId);

/// How a request carried B3, so it is answered the same way.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum B3Encoding {
    /// One `b3` header.
    Single,
    /// `x-b3-traceid`, `x-b3-spanid`, ...
    Multi,
}

/// The trace context a request arrived with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Incoming {
    pub trace_id: TraceId,
    /// The caller's span: the parent of this proxy's.
    pub span_id: SpanId,
    /// The caller's sampling decision; None: deferred (B3 without one).
    pub sampled: Option<bool>,
    /// Set when the context came in B3.
    pub b3: Option<B3Encoding>,
}

/// Reads a request's trace context: `traceparent`, else `b3`, else `x-b3-*`.
pub fn extract(headers: &HeaderMap) -> Option<Incoming> {
    let get = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    if let Some(t) = get(TRACEPARENT).and_then(parse_traceparent) {
        return Some(t);
    }
    if let Some(t) = get(B3).and_then(parse_b3_single) {
        return Some(t);
    }
    let trace_id = TraceId::parse(get(B3_TRACE_ID)?)?;
    let span_id = SpanId::parse(get(B3_SPAN_ID)?)?;
    let sampled = match (get(B3_FLAGS), get(B3_SAMPLED)) {
        (Some("1"), _) => Some(true),
        (_, Some("1" | "true")) => Some(true),
        (_, Some("0" | "false")) => Some(false),
        _ => None,
    };
    Some(Incoming {
        trace_id,
        span_id,
        sampled,
        b3: Some(B3Encoding::Multi),
    })
}

/// `version-traceid-parentid-flags`. Version `ff` is invalid; a version above `00` may carry
/// more fields after a `-`, which are ignored (the spec's forward compatibility).
fn parse_traceparent(v: &str) -> Option<Incoming> {
    let v = v.trim();
    if !v.is_ascii() {
        return None;
    }
    let mut version = [0u8];
    unhex(v.get(..2)?, &mut version)?;
    let exact = v.len() == 55;
    let longer = version[0] > 0 && v.len() > 55 && v.as_bytes()[55] == b'-';
    if version[0] == 0xff || !(exact || longer) {
        return None;
    }
    let b = v.as_bytes();
    if b[2] != b'-' || b[35] != b'-' || b[52] != b'-' {
        return None;
    }
    let mut flags = [0u8];
    unhex(&v[53..55], &mut flags)?;
    Some(Incoming {
        trace_id: TraceId::parse(&v[3..35])?,
        span_id: SpanId::parse(&v[36..52])?,
        sampled: Some(flags[0] & 1 == 1),
        b3: None,
    })
}

/// `traceid-spanid[-sampled[-parentspanid]]`; a lone `0`, `1` or `d` is only a decision and
/// starts no trace here (there is no parent to name).
fn parse_b3_single(v: &str) -> Option<Incoming> {
    let mut parts = v.trim().split('-');
    let trace_id = TraceId::parse(parts.next()?)?;
    let span_id = SpanId::parse(parts.next()?)?;
    let sampled = match parts.next() {
        None => None,
        Some("1" | "d") => Some(true),
        Some("0") => Some(false),
        Some(_) => return None,
    };
    if let Some(parent) = parts.next() {
        SpanId::parse(parent)?;
    }
    if parts.next().is_some() {
        return None;
    }
    Some(Incoming {
        trace_id,
        span_id,
        sampled,
        b3: Some(B3Encoding::Single),
    })
}

/// This proxy's span: where it sits in the trace, and whether it is recorded.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct SpanContext {
    pub trace_id: TraceId,
    pub span_id: SpanId,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub parent_span_id: Option<SpanId>,
    pub sampled: bool,
}

/// Makes this proxy's span: a child of the caller's, with the caller's decision when it made
/// one; else the root of a new trace, sampled with probability `sampling_percent / 100`.
pub fn decide(
    incoming: Option<&Incoming>,
    sampling_percent: f64,
    rng: &mut fastrand::Rng,
) -> SpanContext {
    let draw = |rng: &mut fastrand::Rng| rng.f64() * 100.0 < sampling_percent;
    let span_id = SpanId::random(rng);
    match incoming {
        Some(i) => SpanContext {
            trace_id: i.trace_id,
            span_id,
            parent_span_id: Some(i.span_id),
            sampled: i.sampled.unwrap_or_else(|| draw(rng)),
        },
        None => SpanContext {
            trace_id: TraceId::random(rng),
            span_id,
            parent_span_id: None,
            sampled: draw(rng),
        },
    }
}

/// Writes `span` for upstream: `traceparent` (with `tracestate` left as it came), and B3 in
/// `b3`'s encoding when the request came with B3.
pub fn inject(span: &SpanContext, b3: Option<B3Encoding>, headers: &mut HeaderMap) {
    let flags = if span.sampled { "01" } else { "00" };
    let sampled = if span.sampled { "1" } else { "0" };
    let (t, s) = (span.trace_id, span.span_id);
    let mut set = |name: &'static str, value: String| {
        if let Ok(v) = HeaderValue::from_str(&value) {
            headers.insert(name, v);
        }
    };
    set(TRACEPARENT, format!("00-{t}-{s}-{flags}"));
    match b3 {
        None => {}
        Some(B3Encoding::Single) => {
            let parent = span
                .parent_span_id
                .map(|p| format!("-{p}"))
                .unwrap_or_default();
            set(B3, format!("{t}-{s}-{sampled}{parent}"));
        }
        Some(B3Encoding::Multi) => {
            set(B3_TRACE_ID, t.to_string());
            set(B3_SPAN_ID, s.to_string());
            if let Some(p) = span.parent_span_id {
                set(B3_PARENT_SPAN_ID, p.to_string());
            }
            set(B3_SAMPLED, sampled.to_string());
            headers.remove(B3_FLAGS);
        }
    }
}

#[cfg(test)]
mod tests;
