//! One template: literal text with Envoy command operators (`%REQ(:PATH)%`,
//! `%RESPONSE_CODE%`, `%START_TIME(%s)%` ...), parsed once when the config is read.

use super::time::TimeFormat;

/// A parsed template: literal text and operators, in order.
#[derive(Debug, Clone, PartialEq)]
pub struct Template {
    pub parts: Vec<Part>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Part {
    Text(String),
    Op(Operator),
}

#[derive(Debug, Clone, PartialEq)]
pub enum Operator {
    /// When the request or connection started; Envoy's default format without an argument.
    StartTime(Option<TimeFormat>),
    /// A request header (or pseudo-header `:method`, `:path`, `:authority`, `:scheme`).
    Req(HeaderRef),
    /// A response header (or `:status`).
    Resp(HeaderRef),
    Field(Field),
}

/// `X?Y:N`: header `x`, else `y`, cut to `N` characters. Names are lower-case.
#[derive(Debug, Clone, PartialEq)]
pub struct HeaderRef {
    pub name: String,
    pub fallback: Option<String>,
    pub max_len: Option<usize>,
}

/// The operators without an argument. Names and meanings are Envoy's, plus weft's own
/// (`SOURCE_PRINCIPAL` ...) for the two sides of a request in one place.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Field {
    Protocol,
    ResponseCode,
    ResponseFlags,
    ResponseCodeDetails,
    Duration,
    BytesReceived,
    BytesSent,
    UpstreamHost,
    UpstreamCluster,
    UpstreamTransportFailureReason,
    UpstreamRequestAttemptCount,
    DownstreamRemoteAddress,
    DownstreamRemoteAddressWithoutPort,
    DownstreamPeerUriSan,
    UpstreamPeerUriSan,
    RouteName,
    GrpcStatusNumber,
    TraceId,
    SourcePrincipal,
    DestinationPrincipal,
    SourceWorkload,
    DestinationWorkload,
    DestinationService,
    Direction,
    AuthzPolicy,
    /// Envoy operators for facts weft does not track; accepted so Istio's default format
    /// reads unchanged, and always `-`.
    Unknown,
}

/// Every operator name without an argument, and what it becomes.
pub const FIELDS: &[(&str, Field)] = &[
    ("PROTOCOL", Field::Protocol),
    ("RESPONSE_CODE", Field::ResponseCode),
    ("RESPONSE_FLAGS", Field::ResponseFlags),
    ("RESPONSE_CODE_DETAILS", Field::ResponseCodeDetails),
    ("DURATION", Field::Duration),
    ("BYTES_RECEIVED", Field::BytesReceived),
    ("BYTES_SENT", Field::BytesSent),
    ("UPSTREAM_HOST", Field::UpstreamHost),
    ("UPSTREAM_CLUSTER", Field::UpstreamCluster),
    (
        "UPSTREAM_TRANSPORT_FAILURE_REASON",
        Field::UpstreamTransportFailureReason,
    ),
    (
        "UPSTREAM_REQUEST_ATTEMPT_COUNT",
        Field::UpstreamRequestAttemptCount,
    ),
    ("DOWNSTREAM_REMOTE_ADDRESS", Field::DownstreamRemoteAddress),
    (
        "DOWNSTREAM_REMOTE_ADDRESS_WITHOUT_PORT",
        Field::DownstreamRemoteAddressWithoutPort,
    ),
    ("DOWNSTREAM_PEER_URI_SAN", Field::DownstreamPeerUriSan),
    ("UPSTREAM_PEER_URI_SAN", Field::UpstreamPeerUriSan),
    ("ROUTE_NAME", Field::RouteName),
    ("GRPC_STATUS_NUMBER", Field::GrpcStatusNumber),
    ("TRACE_ID", Field::TraceId),
    ("SOURCE_PRINCIPAL", Field::SourcePrincipal),
    ("DESTINATION_PRINCIPAL", Field::DestinationPrincipal),
    ("SOURCE_WORKLOAD", Field::SourceWorkload),
    ("DESTINATION_WORKLOAD", Field::DestinationWorkload),
    ("DESTINATION_SERVICE", Field::DestinationService),
    ("DIRECTION", Field::Direction),
    ("AUTHZ_POLICY", Field::AuthzPolicy),
    ("UPSTREAM_LOCAL_ADDRESS", Field::Unknown),
    ("DOWNSTREAM_LOCAL_ADDRESS", Field::Unknown),
    ("REQUESTED_SERVER_NAME", Field::Unknown),
    ("CONNECTION_TERMINATION_DETAILS", Field::Unknown),
];

/// Why a template cannot be read: where (a character offset into it) and what.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("at character {at}: {message}")]
pub struct TemplateError {
    pub at: usize,
    pub message: String,
}

impl Template {
    pub fn parse(text: &str) -> Result<Template, TemplateError> {
        let mut parts = Vec::new();
        let mut literal = String::new();
        let mut rest = text;
        while let Some(i) = rest.find('%') {
            literal.push_str(&rest[..i]);
            let at = text.len() - rest.len() + i;
            let after = &rest[i + 1..];
            if let Some(tail) = after.strip_prefix('%') {
                literal.push('%');
                rest = tail;
                continue;
            }
            let (op, len) = operator(after).map_err(|message| TemplateError { at, message })?;
            if !literal.is_empty() {
                parts.push(Part::Text(std::mem::take(&mut literal)));
            }
            parts.push(Part::Op(op));
            rest = &after[len..];
        }
        literal.push_str(rest);
        if !literal.is_empty() {
            parts.push(Part::Text(literal));
        }
        Ok(Template { parts })
    }

    /// Whether the template has at least one operator (one without any only repeats itself).
    pub fn has_operators(&self) -> bool {
        self.parts.iter().any(|p| matches!(p, Part::Op(_)))
    }

    /// The only part, when the template is exactly one operator (a JSON field keeps its
    /// value's type then: numbers stay numbers, a missing value is `null`).
    pub fn single(&self) -> Option<&Operator> {
        match self.parts.as_slice() {
            [Part::Op(op)] => Some(op),
            _ => None,
        }
    }
}

/// Reads `NAME%`, `NAME(ARG)%` or `NAME(ARG):N%` (after the opening `%`): the operator and
/// how many bytes it took, closing `%` included.
fn operator(s: &str) -> Result<(Operator, usize), String> {
    let name_len = s
        .find(|c: char| !(c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_'))
        .unwrap_or(s.len());
    let name = &s[..name_len];
    let mut at = name_len;
    let mut arg = None;
    if s[at..].starts_with('(') {
        let close = s[at..]
            .find(')')
            .ok_or_else(|| format!("`%{name}(` has no closing `)`"))?;
        arg = Some(&s[at + 1..at + close]);
        at += close + 1;
    }
    let mut max_len = None;
    if let Some(tail) = s[at..].strip_prefix(':') {
        let digits = tail
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(tail.len());
        max_len = Some(
            tail[..digits]
                .parse::<usize>()
                .map_err(|_| format!("`%{name}:` needs a length (digits) after the `:`"))?,
        );
        at += 1 + digits;
    }
    if !s[at..].starts_with('%') {
        return Err(match name.is_empty() {
            true => "a lone `%`: write `%%` for a literal percent sign, or an operator like \
                     `%RESPONSE_CODE%`"
                .into(),
            false => format!("`%{name}` is not closed by `%`"),
        });
    }
    let op = build(name, arg, max_len)?;
    Ok((op, at + 1))
}

fn build(name: &str, arg: Option<&str>, max_len: Option<usize>) -> Result<Operator, String> {
    let header = |arg: Option<&str>| -> Result<HeaderRef, String> {
        let arg = arg
            .filter(|a| !a.is_empty())
            .ok_or_else(|| format!("`%{name}(X)%` needs a header name: `%{name}(USER-AGENT)%`"))?;
        let (name, fallback) = match arg.split_once('?') {
            Some((a, b)) => (a, Some(b.trim().to_ascii_lowercase())),
            None => (arg, None),
        };
        Ok(HeaderRef {
            name: name.trim().to_ascii_lowercase(),
            fallback,
            max_len,
        })
    };
    if max_len.is_some() && !matches!(name, "REQ" | "RESP") {
        return Err(format!(
            "`%{name}%` takes no length; only `%REQ(X):N%` and `%RESP(X):N%` do"
        ));
    }
    match name {
        "REQ" => return header(arg).map(Operator::Req),
        "RESP" => return header(arg).map(Operator::Resp),
        "START_TIME" => {
            return match arg {
                None => Ok(Operator::StartTime(None)),
                Some(f) => TimeFormat::parse(f).map(|f| Operator::StartTime(Some(f))),
            };
        }
        _ => {}
    }
    let Some((_, field)) = FIELDS.iter().find(|(n, _)| *n == name) else {
        return Err(unknown(name));
    };
    if arg.is_some() {
        return Err(format!("`%{name}%` takes no argument"));
    }
    Ok(Operator::Field(*field))
}

fn unknown(name: &str) -> String {
    let mut names: Vec<&str> = FIELDS.iter().map(|(n, _)| *n).collect();
    names.extend(["REQ", "RESP", "START_TIME"]);
    let hint = names
        .iter()
        .map(|n| (strsim::damerau_levenshtein(name, n), *n))
        .filter(|(d, n)| *d <= (n.len() / 3).max(2) || name.starts_with(n) || n.starts_with(name))
        .min()
        .map(|(_, n)| match n {
            "REQ" | "RESP" => format!("; did you mean `%{n}(X)%`?"),
            _ => format!("; did you mean `%{n}%`?"),
        });
    match hint {
        Some(h) => format!("unknown command operator `%{name}%`{h}"),
        None => {
            format!("unknown command operator `%{name}%`; docs/access-log.md lists the operators")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ops(t: &str) -> Vec<Part> {
        Template::parse(t).unwrap().parts
    }

    #[test]
    fn reads_operators_headers_fallbacks_and_lengths() {
        let parts = ops(
            "[%START_TIME%] \"%REQ(:METHOD)% %REQ(X-ENVOY-ORIGINAL-PATH?:PATH):20%\" %RESPONSE_CODE% 100%%",
        );
        assert_eq!(parts[0], Part::Text("[".into()));
        assert_eq!(parts[1], Part::Op(Operator::StartTime(None)));
        assert_eq!(
            parts[5],
            Part::Op(Operator::Req(HeaderRef {
                name: "x-envoy-original-path".into(),
                fallback: Some(":path".into()),
                max_len: Some(20),
            }))
        );
        assert_eq!(parts[7], Part::Op(Operator::Field(Field::ResponseCode)));
        assert_eq!(parts[8], Part::Text(" 100%".into()));
    }

    #[test]
    fn mistakes_name_the_place_and_the_nearest_operator() {
        let err = |t| Template::parse(t).unwrap_err();
        let e = err("code=%RESPONSE_COD% x");
        assert_eq!(e.at, 5);
        assert!(e.message.contains("did you mean `%RESPONSE_CODE%`"), "{e}");
        let e = err("%REQ_HEADER(host)%");
        assert!(e.message.contains("did you mean `%REQ(X)%`"), "{e}");
        assert!(err("%REQ%").message.contains("needs a header name"));
        assert!(err("%DURATION(ms)%").message.contains("takes no argument"));
        assert!(err("%DURATION:3%").message.contains("takes no length"));
        assert!(err("100% done").message.contains("lone `%`"));
        assert!(err("%REQ(host%").message.contains("no closing"));
        assert!(
            err("%WHATEVER_THIS_IS%")
                .message
                .contains("docs/access-log.md")
        );
    }

    #[test]
    fn single_operators_are_told_apart_from_mixed_text() {
        let t = Template::parse("%DURATION%").unwrap();
        assert_eq!(t.single(), Some(&Operator::Field(Field::Duration)));
        assert!(Template::parse("%DURATION%ms").unwrap().single().is_none());
        assert!(!Template::parse("plain").unwrap().has_operators());
    }
}
