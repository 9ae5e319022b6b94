//! Authorization decisions, as the server-side proxy makes them: DENY policies first (any
//! matching rule denies), then ALLOW policies (when a workload is selected by any, what no
//! ALLOW rule matches is denied), else allowed. A connection that is not HTTP is decided on
//! what L4 shows: an ALLOW rule that needs HTTP never matches it, and a DENY rule that needs
//! HTTP matches on its L4 parts alone (it fails closed).

use serde::{Deserialize, Serialize};

use crate::resources::policy::{AuthorizationAction, AuthorizationRule, Operation, Source};

/// An AuthorizationPolicy that selects a proxy's workload, as the proxy receives it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ServedPolicy {
    /// `<namespace>/<name>`.
    pub name: String,
    pub action: AuthorizationAction,
    pub rules: Vec<AuthorizationRule>,
    /// At a waypoint: the Services (`<namespace>/<name>`) whose traffic the policy applies to.
    /// Empty: all traffic the proxy serves.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub services: Vec<String>,
}

impl ServedPolicy {
    /// Whether the policy applies to traffic for `service` (see [`ServedPolicy::services`]).
    pub fn applies_to(&self, service: Option<&str>) -> bool {
        self.services.is_empty() || service.is_some_and(|s| self.services.iter().any(|x| x == s))
    }
}

/// What the request shows about itself.
#[derive(Debug, Clone, Copy)]
pub struct Ask<'a> {
    /// The peer's SPIFFE ID from its mTLS certificate; None for plaintext.
    pub identity: Option<&'a str>,
    /// The destination port of the workload.
    pub port: u16,
    /// HTTP details; None when the connection is not HTTP.
    pub http: Option<HttpAsk<'a>>,
    /// At a waypoint: the Service the traffic is for (`<namespace>/<name>`).
    pub service: Option<&'a str>,
}

#[derive(Clone, Copy)]
pub struct HttpAsk<'a> {
    pub method: &'a str,
    pub path: &'a str,
    /// Every value of a request header (name in lowercase).
    pub header: &'a (dyn Fn(&str) -> Vec<String> + Sync),
}

impl std::fmt::Debug for HttpAsk<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HttpAsk")
            .field("method", &self.method)
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// Allowed, by the named ALLOW policy and its rule (index into `rules`); None: no ALLOW
    /// policy selects the workload.
    Allow {
        policy: Option<String>,
        rule: Option<usize>,
    },
    /// Denied: by the named DENY policy's rule, or because ALLOW policies exist and none of
    /// their rules matched (`rule` None). `reason` says which and why, for the 403 and the log.
    Deny {
        policy: String,
        rule: Option<usize>,
        reason: String,
    },
}

impl Decision {
    pub fn allowed(&self) -> bool {
        matches!(self, Decision::Allow { .. })
    }
}

pub fn evaluate(policies: &[ServedPolicy], ask: &Ask<'_>) -> Decision {
    let matching = |action| {
        policies
            .iter()
            .filter(move |p| p.action == action)
            .filter(|p| p.applies_to(ask.service))
            .find_map(|p| {
                let i = p.rules.iter().position(|r| rule_matches(r, ask, action))?;
                Some((p, i))
            })
    };
    if let Some((p, i)) = matching(AuthorizationAction::Deny) {
        return Decision::Deny {
            policy: p.name.clone(),
            rule: Some(i),
            reason: format!(
                "denied by AuthorizationPolicy {} rule {i} ({})",
                p.name,
                describe(&p.rules[i])
            ),
        };
    }
    let allows: Vec<&ServedPolicy> = policies
        .iter()
        .filter(|p| p.action == AuthorizationAction::Allow)
        .filter(|p| p.applies_to(ask.service))
        .collect();
    if allows.is_empty() {
        return Decision::Allow {
            policy: None,
            rule: None,
        };
    }
    match matching(AuthorizationAction::Allow) {
        Some((p, i)) => Decision::Allow {
            policy: Some(p.name.clone()),
            rule: Some(i),
        },
        None => {
            let names: Vec<&str> = allows.iter().map(|p| p.name.as_str()).collect();
            let why: Vec<String> = (allows.iter())
                .flat_map(|p| p.rules.iter().enumerate().map(move |(i, r)| (p, i, r)))
                .map(|(p, i, r)| format!("{} rule {i}: {}", p.name, why_not(r, ask)))
                .collect();
            let caller = ask.identity.unwrap_or("a plaintext client");
            Decision::Deny {
                policy: names.join(","),
                rule: None,
                reason: format!(
                    "no rule of AuthorizationPolicy {} allows {caller}{}",
                    names.join(", "),
                    match why.is_empty() {
                        true => " (the policy has no rules)".to_string(),
                        false => format!(" ({})", why.join("; ")),
                    }
                ),
            }
        }
    }
}

/// A rule in a few words: `from principals [..]; to methods [..] paths [..]`.
pub fn describe(rule: &AuthorizationRule) -> String {
    match (sources(rule), operations(rule)) {
        (None, None) => "any request".into(),
        (Some(from), None) => format!("from {from}"),
        (None, Some(to)) => format!("to {to}"),
        (Some(from), Some(to)) => format!("from {from}; to {to}"),
    }
}

fn list(name: &str, v: &[String]) -> Option<String> {
    (!v.is_empty()).then(|| format!("{name} [{}]", v.join(", ")))
}

fn joined(parts: Vec<String>) -> Option<String> {
    (!parts.is_empty()).then(|| parts.join(" "))
}

fn sources(rule: &AuthorizationRule) -> Option<String> {
    let mut out = Vec::new();
    for f in &rule.from {
        let s = &f.source;
        out.extend(list("principals", &s.principals));
        out.extend(list("notPrincipals", &s.not_principals));
        out.extend(list("namespaces", &s.namespaces));
        out.extend(list("notNamespaces", &s.not_namespaces));
    }
    joined(out)
}

fn operations(rule: &AuthorizationRule) -> Option<String> {
    let mut out = Vec::new();
    for t in &rule.to {
        let o = &t.operation;
        out.extend(list("methods", &o.methods));
        out.extend(list("notMethods", &o.not_methods));
        out.extend(list("paths", &o.paths));
        out.extend(list("notPaths", &o.not_paths));
        let ports: Vec<String> = o.ports.iter().map(u16::to_string).collect();
        out.extend(list("ports", &ports));
        let headers: Vec<String> = o.headers.keys().cloned().collect();
        out.extend(list("headers", &headers));
    }
    joined(out)
}

/// Why `rule` does not match `ask`, in a few words: the first clause that fails.
pub fn why_not(rule: &AuthorizationRule, ask: &Ask<'_>) -> String {
    let from_ok = rule.from.is_empty() || rule.from.iter().any(|f| source_matches(&f.source, ask));
    if !from_ok {
        let caller = ask.identity.unwrap_or("a plaintext client (no identity)");
        return format!("wants {}, not {caller}", sources(rule).unwrap_or_default());
    }
    let to = operations(rule).unwrap_or_default();
    match &ask.http {
        None if rule.to.iter().all(|t| t.operation.is_l7()) => {
            "needs HTTP (methods, paths or headers), and this connection is not".into()
        }
        None => format!("wants {to}, not port {}", ask.port),
        Some(http) => format!(
            "wants {to}, not {} {} on port {}",
            http.method, http.path, ask.port
        ),
    }
}

fn rule_matches(rule: &AuthorizationRule, ask: &Ask<'_>, action: AuthorizationAction) -> bool {
    let from = rule.from.is_empty() || rule.from.iter().any(|f| source_matches(&f.source, ask));
    let to = rule.to.is_empty()
        || rule
            .to
            .iter()
            .any(|t| op_matches(&t.operation, ask, action));
    from && to
}

fn source_matches(s: &Source, ask: &Ask<'_>) -> bool {
    let identity = ask.identity.map(short);
    let namespace = identity.and_then(namespace_of);
    let any = |patterns: &[String], value: Option<&str>| {
        value.is_some_and(|v| patterns.iter().any(|p| wildcard(short(p), v)))
    };
    (s.principals.is_empty() || any(&s.principals, identity))
        && !any(&s.not_principals, identity)
        && (s.namespaces.is_empty() || any(&s.namespaces, namespace))
        && !any(&s.not_namespaces, namespace)
}

fn op_matches(op: &Operation, ask: &Ask<'_>, action: AuthorizationAction) -> bool {
    let l4 =
        (op.ports.is_empty() || op.ports.contains(&ask.port)) && !op.not_ports.contains(&ask.port);
    if !l4 {
        return false;
    }
    let Some(http) = &ask.http else {
        // Not HTTP: an ALLOW that needs HTTP cannot be met; a DENY that needs HTTP fails closed.
        return !op.is_l7() || action == AuthorizationAction::Deny;
    };
    let method = |list: &[String]| list.iter().any(|m| m.eq_ignore_ascii_case(http.method));
    let path = |list: &[String]| list.iter().any(|p| wildcard(p, http.path));
    (op.methods.is_empty() || method(&op.methods))
        && !method(&op.not_methods)
        && (op.paths.is_empty() || path(&op.paths))
        && !path(&op.not_paths)
        && op.headers.iter().all(|(name, wanted)| {
            let values = (http.header)(&name.to_ascii_lowercase());
            values.iter().any(|v| wanted.iter().any(|w| wildcard(w, v)))
        })
}

/// `spiffe://td/ns/x/sa/y` → `td/ns/x/sa/y` (policies may use either form).
fn short(id: &str) -> &str {
    id.strip_prefix("spiffe://").unwrap_or(id)
}

fn namespace_of(short_id: &str) -> Option<&str> {
    let mut parts = short_id.split('/');
    parts.find(|p| *p == "ns")?;
    parts.next()
}

/// Exact, `*` alone, `prefix*` or `*suffix`.
fn wildcard(pattern: &str, value: &str) -> bool {
    if pattern == "*" {
        return true;
    }
    if let Some(prefix) = pattern.strip_suffix('*') {
        return value.starts_with(prefix);
    }
    if let Some(suffix) = pattern.strip_prefix('*') {
        return value.ends_with(suffix);
    }
    pattern == value
}

#[cfg(test)]
mod tests;
