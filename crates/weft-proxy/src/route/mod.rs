//! Compiled HTTP routing: the match entries of a Service's [`HttpRoutes`], with their regular
//! expressions compiled once, tried in order against each request.

pub mod explain;

use http::{HeaderMap, HeaderName, Method};
use regex::Regex;
use weft_core::model::{Backend, HttpRoutes, HttpRule};
use weft_core::resources::http_route::{
    HttpFilterType, HttpMethod, HttpRouteFilter, HttpRouteMatch, PathMatchType,
};
use weft_core::resources::route_common::{HeaderMatch, StringMatchType};

/// Why routes cannot be served by this proxy (the config update is rejected).
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("filter ExtensionRef{target} in {rule} is not supported by this proxy")]
    UnsupportedFilter { target: String, rule: String },
    #[error("match entry {entry} refers to rule {rule}, but there are {rules} rules")]
    MissingRule {
        entry: usize,
        rule: usize,
        rules: usize,
    },
    #[error("invalid regular expression {re:?} in {what} of {rule}: {source}")]
    Regex {
        re: String,
        what: String,
        rule: String,
        source: regex::Error,
    },
}

/// The routes of one Service, ready to match requests.
#[derive(Debug)]
pub struct CompiledRoutes {
    rules: Vec<HttpRule>,
    entries: Vec<Entry>,
}

/// What [`CompiledRoutes::select`] looks at in a request.
#[derive(Debug, Clone, Copy)]
pub struct RequestView<'a> {
    pub method: &'a Method,
    /// Path without the query.
    pub path: &'a str,
    /// Query string without the `?`.
    pub query: Option<&'a str>,
    pub headers: &'a HeaderMap,
    /// Host the request was sent to, without `:port` (see [`crate::authority::host`]).
    pub host: Option<&'a str>,
    /// Service port the request was sent to.
    pub port: u16,
}

/// The rule a request matched.
#[derive(Debug, Clone, Copy)]
pub struct Selected<'a> {
    pub rule: &'a HttpRule,
    /// The `PathPrefix` value that matched (as configured), for `ReplacePrefixMatch`.
    pub matched_prefix: Option<&'a str>,
}

#[derive(Debug)]
struct Entry {
    ports: Vec<u16>,
    hostnames: Vec<HostMatch>,
    path: PathMatch,
    method: Option<Method>,
    /// `None` for a header name that cannot occur in a request: the entry never matches.
    headers: Vec<(Option<HeaderName>, ValueMatch)>,
    query: Vec<(String, ValueMatch)>,
    rule: usize,
}

#[derive(Debug)]
enum HostMatch {
    Exact(String),
    /// `*.example.com` stored as `.example.com`: one or more labels before it.
    Suffix(String),
}

#[derive(Debug)]
enum PathMatch {
    Exact(String),
    /// `prefix` is the configured value without trailing slashes (`""` matches every path).
    Prefix {
        value: String,
        prefix: String,
    },
    Regex(Regex),
}

#[derive(Debug)]
enum ValueMatch {
    Exact(String),
    Regex(Regex),
}

impl CompiledRoutes {
    /// Compiles `routes`; the error says why the proxy cannot serve them.
    pub fn new(routes: &HttpRoutes) -> Result<CompiledRoutes, Error> {
        for rule in &routes.rules {
            let backend_filters = rule.backends.iter().flat_map(|b| &b.filters);
            for f in rule.filters.iter().chain(backend_filters) {
                check_filter(f, &rule.name)?;
            }
        }
        let entries = routes
            .entries
            .iter()
            .enumerate()
            .map(|(i, e)| {
                let rule = routes.rules.get(e.rule).ok_or(Error::MissingRule {
                    entry: i,
                    rule: e.rule,
                    rules: routes.rules.len(),
                })?;
                compile_entry(&e.matcher, &rule.name).map(|(path, headers, query)| Entry {
                    ports: e.ports.clone(),
                    hostnames: e.hostnames.iter().map(|h| host_match(h)).collect(),
                    path,
                    method: e.matcher.method.map(method),
                    headers,
                    query,
                    rule: e.rule,
                })
            })
            .collect::<Result<_, Error>>()?;
        Ok(CompiledRoutes {
            rules: routes.rules.clone(),
            entries,
        })
    }

    /// Whether any route attaches to `port` (a parentRef without a port attaches to all).
    pub fn covers(&self, port: u16) -> bool {
        self.entries
            .iter()
            .any(|e| e.ports.is_empty() || e.ports.contains(&port))
    }

    /// The first entry, in precedence order, that matches the request.
    pub fn select(&self, req: &RequestView) -> Option<Selected<'_>> {
        // Parsed once, on the first entry that looks at the query.
        let mut query: Option<Vec<(String, String)>> = None;
        self.entries.iter().find_map(|e| {
            if !e.ports.is_empty() && !e.ports.contains(&req.port) {
                return None;
            }
            if !e.hostnames.is_empty() {
                let host = req.host?;
                if !e.hostnames.iter().any(|h| h.matches(host)) {
                    return None;
                }
            }
            let matched_prefix = match &e.path {
                PathMatch::Exact(v) => (v == req.path).then_some(None)?,
                PathMatch::Prefix { value, prefix } => {
                    prefix_matches(prefix, req.path).then_some(Some(value.as_str()))?
                }
                PathMatch::Regex(re) => re.is_match(req.path).then_some(None)?,
            };
            if e.method.as_ref().is_some_and(|m| m != req.method) {
                return None;
            }
            for (name, value) in &e.headers {
                if !header_matches(req.headers, name.as_ref()?, value) {
                    return None;
                }
            }
            if !e.query.is_empty() {
                let params =
                    query.get_or_insert_with(|| req.query.map(parse_query).unwrap_or_default());
                for (name, value) in &e.query {
                    let (_, v) = params.iter().find(|(n, _)| n == name)?;
                    if !value.matches(v) {
                        return None;
                    }
                }
            }
            Some(Selected {
                rule: &self.rules[e.rule],
                matched_prefix,
            })
        })
    }
}

fn check_filter(f: &HttpRouteFilter, rule: &str) -> Result<(), Error> {
    if f.filter_type != HttpFilterType::ExtensionRef {
        return Ok(());
    }
    let target = match &f.extension_ref {
        Some(r) => format!(" {}/{}/{}", r.group, r.kind, r.name),
        None => String::new(),
    };
    Err(Error::UnsupportedFilter {
        target,
        rule: rule.to_string(),
    })
}

type Compiled = (
    PathMatch,
    Vec<(Option<HeaderName>, ValueMatch)>,
    Vec<(String, ValueMatch)>,
);

fn compile_entry(m: &HttpRouteMatch, rule: &str) -> Result<Compiled, Error> {
    let path = match &m.path {
        None => PathMatch::Prefix {
            value: "/".into(),
            prefix: String::new(),
        },
        Some(p) => match p.match_type {
            PathMatchType::Exact => PathMatch::Exact(p.value.clone()),
            PathMatchType::PathPrefix => PathMatch::Prefix {
                value: p.value.clone(),
                prefix: p.value.trim_end_matches('/').to_string(),
            },
            PathMatchType::RegularExpression => {
                PathMatch::Regex(anchored(&p.value, "path match", rule)?)
            }
        },
    };
    // Only the first match of a given name counts (Gateway API).
    let mut headers: Vec<(Option<HeaderName>, ValueMatch)> = Vec::new();
    for h in &m.headers {
        let name = HeaderName::from_bytes(h.name.as_bytes()).ok();
        if name.is_some() && headers.iter().any(|(n, _)| *n == name) {
            continue;
        }
        headers.push((name, value_match(h, "header match", rule)?));
    }
    let mut query: Vec<(String, ValueMatch)> = Vec::new();
    for q in &m.query_params {
        if query.iter().any(|(n, _)| *n == q.name) {
            continue;
        }
        query.push((
            q.name.clone(),
            value_match(q, "query parameter match", rule)?,
        ));
    }
    Ok((path, headers, query))
}

fn value_match(h: &HeaderMatch, what: &str, rule: &str) -> Result<ValueMatch, Error> {
    Ok(match h.match_type {
        StringMatchType::Exact => ValueMatch::Exact(h.value.clone()),
        StringMatchType::RegularExpression => {
            ValueMatch::Regex(anchored(&h.value, &format!("{what} {:?}", h.name), rule)?)
        }
    })
}

/// A regular expression that must match the whole input.
fn anchored(re: &str, what: &str, rule: &str) -> Result<Regex, Error> {
    Regex::new(&format!("^(?:{re})$")).map_err(|source| Error::Regex {
        re: re.to_string(),
        what: what.to_string(),
        rule: rule.to_string(),
        source,
    })
}

fn host_match(h: &str) -> HostMatch {
    let h = h.trim_end_matches('.').to_ascii_lowercase();
    match h.strip_prefix('*') {
        Some(suffix) if suffix.starts_with('.') => HostMatch::Suffix(suffix.to_string()),
        _ => HostMatch::Exact(h),
    }
}

impl HostMatch {
    fn matches(&self, host: &str) -> bool {
        let host = host.trim_end_matches('.').as_bytes();
        match self {
            HostMatch::Exact(h) => host.eq_ignore_ascii_case(h.as_bytes()),
            HostMatch::Suffix(s) => {
                host.len() > s.len()
                    && host[host.len() - s.len()..].eq_ignore_ascii_case(s.as_bytes())
            }
        }
    }
}

/// Gateway API `PathPrefix`: whole path elements only.
fn prefix_matches(prefix: &str, path: &str) -> bool {
    match path.strip_prefix(prefix) {
        Some(rest) => prefix.is_empty() || rest.is_empty() || rest.starts_with('/'),
        None => false,
    }
}

impl ValueMatch {
    fn matches(&self, value: &str) -> bool {
        match self {
            ValueMatch::Exact(v) => v == value,
            ValueMatch::Regex(re) => re.is_match(value),
        }
    }
}

/// A header matches when one of its values does, or all of them joined with `,` (how a
/// list-valued header split over several lines reads).
fn header_matches(headers: &HeaderMap, name: &HeaderName, m: &ValueMatch) -> bool {
    let all = headers.get_all(name);
    let mut values = all
        .iter()
        .filter_map(|v| std::str::from_utf8(v.as_bytes()).ok());
    let Some(first) = values.next() else {
        return false;
    };
    if m.matches(first) {
        return true;
    }
    let rest: Vec<&str> = values.collect();
    !rest.is_empty()
        && (rest.iter().any(|v| m.matches(v)) || m.matches(&format!("{first},{}", rest.join(","))))
}

/// Query parameters in order, names and values percent-decoded (`+` is kept).
fn parse_query(query: &str) -> Vec<(String, String)> {
    query
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (n, v) = p.split_once('=').unwrap_or((p, ""));
            (percent_decode(n), percent_decode(v))
        })
        .collect()
}

fn percent_decode(s: &str) -> String {
    if !s.contains('%') {
        return s.to_string();
    }
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let hex = |c: u8| (c as char).to_digit(16);
        if b[i] == b'%'
            && let (Some(h), Some(l)) = (
                b.get(i + 1).copied().and_then(hex),
                b.get(i + 2).copied().and_then(hex),
            )
        {
            out.push((h * 16 + l) as u8);
            i += 3;
            continue;
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8(out).unwrap_or_else(|_| s.to_string())
}

fn method(m: HttpMethod) -> Method {
    match m {
        HttpMethod::Get => Method::GET,
        HttpMethod::Head => Method::HEAD,
        HttpMethod::Post => Method::POST,
        HttpMethod::Put => Method::PUT,
        HttpMethod::Delete => Method::DELETE,
        HttpMethod::Connect => Method::CONNECT,
        HttpMethod::Options => Method::OPTIONS,
        HttpMethod::Trace => Method::TRACE,
        HttpMethod::Patch => Method::PATCH,
    }
}

/// One backend, chosen at random (from `rng`) in proportion to the weights; `None` when there
/// is none or every weight is 0.
pub fn pick_backend<'a>(backends: &'a [Backend], rng: &mut fastrand::Rng) -> Option<&'a Backend> {
    let total: u64 = backends.iter().map(|b| u64::from(b.weight)).sum();
    if total == 0 {
        return None;
    }
    let mut n = rng.u64(0..total);
    backends.iter().find(|b| {
        let w = u64::from(b.weight);
        if n < w {
            return true;
        }
        n -= w;
        false
    })
}

#[cfg(test)]
mod tests;
