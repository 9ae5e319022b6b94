//! Access-log formats: the encoding (`JSON`, `TEXT`) and a format written with Envoy's command
//! operators, from the Mesh's `accessLog` or a workload's `weft.dev/access-log-*` annotations.
//! Parsed once when the config is read, so a mistake is a config error naming the operator
//! and its nearest valid spelling, and a proxy only fills values in.

pub mod template;
pub mod time;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

pub use template::{Field, HeaderRef, Operator, Part, Template, TemplateError};
pub use time::TimeFormat;

/// Istio's default text format (its `accessLogEncoding: TEXT` without a format).
pub const DEFAULT_TEXT: &str = "[%START_TIME%] \"%REQ(:METHOD)% %REQ(X-ENVOY-ORIGINAL-PATH?:PATH)% \
%PROTOCOL%\" %RESPONSE_CODE% %RESPONSE_FLAGS% %RESPONSE_CODE_DETAILS% \
%CONNECTION_TERMINATION_DETAILS% \"%UPSTREAM_TRANSPORT_FAILURE_REASON%\" %BYTES_RECEIVED% \
%BYTES_SENT% %DURATION% %RESP(X-ENVOY-UPSTREAM-SERVICE-TIME)% \"%REQ(X-FORWARDED-FOR)%\" \
\"%REQ(USER-AGENT)%\" \"%REQ(X-REQUEST-ID)%\" \"%REQ(:AUTHORITY)%\" \"%UPSTREAM_HOST%\" \
%UPSTREAM_CLUSTER% %UPSTREAM_LOCAL_ADDRESS% %DOWNSTREAM_LOCAL_ADDRESS% \
%DOWNSTREAM_REMOTE_ADDRESS% %REQUESTED_SERVER_NAME% %ROUTE_NAME%";

/// How each line is written.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "UPPERCASE")]
pub enum Encoding {
    /// One JSON object per line.
    #[default]
    Json,
    /// One line of text per record.
    Text,
}

impl std::str::FromStr for Encoding {
    type Err = ();
    fn from_str(s: &str) -> Result<Self, ()> {
        match s.to_ascii_uppercase().as_str() {
            "JSON" => Ok(Encoding::Json),
            "TEXT" => Ok(Encoding::Text),
            _ => Err(()),
        }
    }
}

/// A format as written: a template string (a line of text; or, with encoding `JSON`, a JSON
/// object of field names to templates as Istio writes it), or a map of field names to
/// templates (JSON).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(untagged)]
pub enum FormatSource {
    Template(String),
    Fields(serde_json::Map<String, serde_json::Value>),
}

/// What a line is made of.
#[derive(Debug, Clone, PartialEq)]
pub enum Shape {
    /// weft's own JSON record (every field it knows, docs/access-log.md).
    Standard,
    /// A line of text.
    Line(Template),
    /// A flat JSON object, its fields in the order given.
    Fields(Vec<(String, Template)>),
}

/// A checked access-log format. On the wire (in a proxy's settings) it travels as written
/// and is parsed again on arrival.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(try_from = "Spec", into = "Spec")]
pub struct LogFormat {
    pub shape: Shape,
    spec: Spec,
    /// The request and response headers the format reads (lower-case), worked out once.
    request_headers: Vec<String>,
    response_headers: Vec<String>,
}

/// The format as written: encoding and format, each optional.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Spec {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub encoding: Option<Encoding>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub format: Option<FormatSource>,
}

impl Default for LogFormat {
    fn default() -> Self {
        LogFormat {
            shape: Shape::Standard,
            spec: Spec::default(),
            request_headers: Vec::new(),
            response_headers: Vec::new(),
        }
    }
}

impl TryFrom<Spec> for LogFormat {
    type Error = String;
    fn try_from(spec: Spec) -> Result<Self, String> {
        LogFormat::compile(spec.encoding, spec.format.as_ref())
    }
}

impl From<LogFormat> for Spec {
    fn from(f: LogFormat) -> Spec {
        f.spec
    }
}

impl LogFormat {
    /// Checks a format. Without one the encoding picks weft's JSON record or Istio's default
    /// text line; without an encoding the format's shape says which it is.
    pub fn compile(
        encoding: Option<Encoding>,
        format: Option<&FormatSource>,
    ) -> Result<Self, String> {
        let shape = match (encoding, format) {
            (None | Some(Encoding::Json), None) => Shape::Standard,
            (Some(Encoding::Text), None) => {
                Shape::Line(Template::parse(DEFAULT_TEXT).map_err(|e| e.to_string())?)
            }
            (Some(Encoding::Text), Some(FormatSource::Fields(_))) => {
                return Err("a map of fields is a JSON format: set `encoding: JSON` (or leave it out), or write the format as one line of text".into());
            }
            (Some(Encoding::Text), Some(FormatSource::Template(t))) => Shape::Line(line(t)?),
            (_, Some(FormatSource::Fields(map))) => Shape::Fields(fields(map)?),
            (None | Some(Encoding::Json), Some(FormatSource::Template(t)))
                if t.trim_start().starts_with('{') =>
            {
                let map: serde_json::Map<String, serde_json::Value> = serde_json::from_str(t)
                    .map_err(|e| {
                        format!("the format starts with `{{` but is not a JSON object: {e}")
                    })?;
                Shape::Fields(fields(&map)?)
            }
            (Some(Encoding::Json), Some(FormatSource::Template(_))) => {
                return Err("with `encoding: JSON` the format names each field: a map like `{method: \"%REQ(:METHOD)%\", code: \"%RESPONSE_CODE%\"}`; or set `encoding: TEXT` for a line of text".into());
            }
            (None, Some(FormatSource::Template(t))) => Shape::Line(line(t)?),
        };
        let request_headers = headers(&shape, |op| match op {
            Operator::Req(h) => Some(h),
            _ => None,
        });
        let response_headers = headers(&shape, |op| match op {
            Operator::Resp(h) => Some(h),
            _ => None,
        });
        Ok(LogFormat {
            shape,
            spec: Spec {
                encoding,
                format: format.cloned(),
            },
            request_headers,
            response_headers,
        })
    }

    pub fn spec(&self) -> &Spec {
        &self.spec
    }

    /// The request headers the format reads (lower-case), so a proxy keeps only those.
    pub fn request_headers(&self) -> &[String] {
        &self.request_headers
    }

    /// The response headers the format reads (lower-case).
    pub fn response_headers(&self) -> &[String] {
        &self.response_headers
    }
}

/// The header names `pick` finds in the shape's operators, pseudo-headers left out.
fn headers(shape: &Shape, pick: impl Fn(&Operator) -> Option<&HeaderRef>) -> Vec<String> {
    let templates: Vec<&Template> = match shape {
        Shape::Standard => Vec::new(),
        Shape::Line(t) => vec![t],
        Shape::Fields(f) => f.iter().map(|(_, t)| t).collect(),
    };
    let mut names: Vec<String> = templates
        .iter()
        .flat_map(|t| &t.parts)
        .filter_map(|p| match p {
            Part::Op(op) => pick(op),
            Part::Text(_) => None,
        })
        .flat_map(|h| std::iter::once(h.name.as_str()).chain(h.fallback.as_deref()))
        .filter(|n| !n.starts_with(':'))
        .map(str::to_string)
        .collect();
    names.sort_unstable();
    names.dedup();
    names
}

fn line(text: &str) -> Result<Template, String> {
    let t = Template::parse(text).map_err(|e| format!("{e} in `{text}`"))?;
    if !t.has_operators() {
        let hint = match text.trim().parse::<Encoding>() {
            Ok(_) => format!(
                "; to choose the encoding write `encoding: {}`",
                text.trim().to_ascii_uppercase()
            ),
            Err(()) => "; use command operators such as `%REQ(:PATH)% %RESPONSE_CODE%`".into(),
        };
        return Err(format!(
            "the format `{text}` has no command operator, so every line would be the same{hint}"
        ));
    }
    Ok(t)
}

fn fields(
    map: &serde_json::Map<String, serde_json::Value>,
) -> Result<Vec<(String, Template)>, String> {
    if map.is_empty() {
        return Err("the format has no fields".into());
    }
    map.iter()
        .map(|(key, value)| {
            let text = value.as_str().ok_or_else(|| {
                format!("field `{key}`: a template string like \"%RESPONSE_CODE%\" is expected (access-log lines are flat), got {value}")
            })?;
            let t = Template::parse(text).map_err(|e| format!("field `{key}`: {e} in `{text}`"))?;
            Ok((key.clone(), t))
        })
        .collect()
}

#[cfg(test)]
mod tests;
