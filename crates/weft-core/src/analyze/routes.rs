//! 05xx: routes that cannot work as written — bad regexes, timeouts that defeat retries,
//! filters missing their settings, L7 rules on ports whose protocol is unknown.

mod parents;

use super::{Index, Report, Rule, Severity};
use crate::load::Loaded;
use crate::resources::Resource;
use crate::resources::http_route::{HttpFilterType, HttpRouteFilter, HttpRouteRule, PathMatchType};
use crate::resources::route_common::HeaderMatch;

pub const RULES: &[Rule] = &[
    Rule {
        code: "WEFT0501",
        severity: Severity::Error,
        title: "invalid regular expression in a match",
        explain: "A `RegularExpression` match that does not compile would make the proxy reject \
the whole route. weft uses RE2 syntax (no look-around, no back-references); the message shows \
where the pattern breaks.",
        bad: r#"apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: web}
spec:
  parentRefs: [{group: "", kind: Service, name: web}]
  rules:
  - matches: [{path: {type: RegularExpression, value: "/user/(\\d+"}}]
    backendRefs: [{name: web, port: 80}]
"#,
        good: r#"apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: web}
spec:
  parentRefs: [{group: "", kind: Service, name: web}]
  rules:
  - matches: [{path: {type: RegularExpression, value: "/user/(\\d+)"}}]
    backendRefs: [{name: web, port: 80}]
"#,
    },
    Rule {
        code: "WEFT0502",
        severity: Severity::Warning,
        title: "timeout shorter than per-try timeout × attempts",
        explain: "The request timeout covers every attempt. If it is shorter than the per-try \
timeout times the number of attempts (first try plus retries), the last retries can never run: \
the client gets a timeout while the retry budget looks generous on paper.",
        bad: r#"apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: web}
spec:
  parentRefs: [{group: "", kind: Service, name: web}]
  rules:
  - backendRefs: [{name: web, port: 80}]
    timeouts: {request: 1s, backendRequest: 500ms}
    retry: {attempts: 3}
"#,
        good: r#"apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: web}
spec:
  parentRefs: [{group: "", kind: Service, name: web}]
  rules:
  - backendRefs: [{name: web, port: 80}]
    timeouts: {request: 2s, backendRequest: 500ms}
    retry: {attempts: 3}
"#,
    },
    Rule {
        code: "WEFT0503",
        severity: Severity::Warning,
        title: "L7 route on a port whose protocol is unknown",
        explain: "HTTP and gRPC routing needs the proxy to know the port speaks HTTP. When the port \
has neither an `appProtocol` nor a name starting `http`, `http2` or `grpc`, the proxy must sniff \
the first bytes; server-first protocols then stall, and a misdetected connection bypasses the \
route. Declare it.",
        bad: r#"apiVersion: v1
kind: Service
metadata: {name: api}
spec:
  selector: {app: web}
  ports: [{port: 8080}]
---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: api}
spec:
  parentRefs: [{group: "", kind: Service, name: api}]
  rules: [{backendRefs: [{name: api, port: 8080}]}]
"#,
        good: r#"apiVersion: v1
kind: Service
metadata: {name: api}
spec:
  selector: {app: web}
  ports: [{port: 8080, appProtocol: http}]
---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: api}
spec:
  parentRefs: [{group: "", kind: Service, name: api}]
  rules: [{backendRefs: [{name: api, port: 8080}]}]
"#,
    },
    Rule {
        code: "WEFT0504",
        severity: Severity::Error,
        title: "backendRequest timeout longer than the request timeout",
        explain: "Gateway API requires `timeouts.backendRequest` ≤ `timeouts.request`: one attempt \
cannot take longer than the whole request.",
        bad: r#"apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: web}
spec:
  parentRefs: [{group: "", kind: Service, name: web}]
  rules:
  - backendRefs: [{name: web, port: 80}]
    timeouts: {request: 1s, backendRequest: 5s}
"#,
        good: r#"apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: web}
spec:
  parentRefs: [{group: "", kind: Service, name: web}]
  rules:
  - backendRefs: [{name: web, port: 80}]
    timeouts: {request: 5s, backendRequest: 1s}
"#,
    },
    Rule {
        code: "WEFT0505",
        severity: Severity::Error,
        title: "path match does not start with `/`",
        explain: "Request paths always start with `/`, so an `Exact` or `PathPrefix` value without \
it never matches.",
        bad: r#"apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: web}
spec:
  parentRefs: [{group: "", kind: Service, name: web}]
  rules: [{matches: [{path: {value: api}}], backendRefs: [{name: web, port: 80}]}]
"#,
        good: r#"apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: web}
spec:
  parentRefs: [{group: "", kind: Service, name: web}]
  rules: [{matches: [{path: {value: /api}}], backendRefs: [{name: web, port: 80}]}]
"#,
    },
    Rule {
        code: "WEFT0506",
        severity: Severity::Error,
        title: "filter without its settings",
        explain: "A filter's `type` names the one field that holds its settings \
(`RequestHeaderModifier` → `requestHeaderModifier`, `URLRewrite` → `urlRewrite`, ...). That \
field must be set, and no other.",
        bad: r#"apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: web}
spec:
  parentRefs: [{group: "", kind: Service, name: web}]
  rules:
  - filters: [{type: RequestHeaderModifier, responseHeaderModifier: {set: [{name: x-env, value: prod}]}}]
    backendRefs: [{name: web, port: 80}]
"#,
        good: r#"apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: web}
spec:
  parentRefs: [{group: "", kind: Service, name: web}]
  rules:
  - filters: [{type: RequestHeaderModifier, requestHeaderModifier: {set: [{name: x-env, value: prod}]}}]
    backendRefs: [{name: web, port: 80}]
"#,
    },
    Rule {
        code: "WEFT0507",
        severity: Severity::Error,
        title: "redirect combined with backends or a rewrite",
        explain: "A `RequestRedirect` answers the request itself: backends in the same rule are \
never used, and Gateway API forbids a redirect and a `URLRewrite` in one rule.",
        bad: r#"apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: web}
spec:
  parentRefs: [{group: "", kind: Service, name: web}]
  rules:
  - matches: [{path: {value: /old}}]
    filters: [{type: RequestRedirect, requestRedirect: {path: {type: ReplacePrefixMatch, replacePrefixMatch: /new}}}]
    backendRefs: [{name: web, port: 80}]
"#,
        good: r#"apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: web}
spec:
  parentRefs: [{group: "", kind: Service, name: web}]
  rules:
  - matches: [{path: {value: /old}}]
    filters: [{type: RequestRedirect, requestRedirect: {path: {type: ReplacePrefixMatch, replacePrefixMatch: /new}}}]
"#,
    },
    Rule {
        code: "WEFT0508",
        severity: Severity::Warning,
        title: "rule with nowhere to send requests",
        explain: "A rule with no backendRefs and no redirect answers every matching request with \
500 (`weft-error: no-backend`). Add backends, or a redirect.",
        bad: r#"apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: web}
spec:
  parentRefs: [{group: "", kind: Service, name: web}]
  rules: [{matches: [{path: {value: /api}}]}]
"#,
        good: r#"apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: web}
spec:
  parentRefs: [{group: "", kind: Service, name: web}]
  rules: [{matches: [{path: {value: /api}}], backendRefs: [{name: web, port: 80}]}]
"#,
    },
    Rule {
        code: "WEFT0509",
        severity: Severity::Warning,
        title: "HTTP or gRPC route on a port declared as TCP",
        explain: "A port with `appProtocol: tcp` (or a name starting `tcp`) is carried as opaque \
bytes, so HTTPRoute and GRPCRoute rules never apply to it. A parentRef without `port` or \
`sectionName` attaches the route to the Service's other ports and leaves TCP ports alone, which \
is not reported. This finding is for a parentRef that names a TCP port, or a Service with no \
HTTP port at all: the route is not attached there, TCP traffic keeps flowing as before, and the \
rest of the configuration is served. Use a TCPRoute, or declare the port as http, http2 or grpc.",
        bad: r#"apiVersion: v1
kind: Service
metadata: {name: api}
spec:
  selector: {app: web}
  ports: [{name: tcp-api, port: 8080}]
---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: api}
spec:
  parentRefs: [{group: "", kind: Service, name: api, port: 8080}]
  rules: [{backendRefs: [{name: api, port: 8080}]}]
"#,
        good: r#"apiVersion: v1
kind: Service
metadata: {name: api}
spec:
  selector: {app: web}
  ports: [{name: http-api, port: 8080}]
---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: api}
spec:
  parentRefs: [{group: "", kind: Service, name: api}]
  rules: [{backendRefs: [{name: api, port: 8080}]}]
"#,
    },
    Rule {
        code: "WEFT0510",
        severity: Severity::Warning,
        title: "route attached to nothing",
        explain: "A route without `parentRefs` applies to no traffic. For mesh routing attach it to \
the Service whose traffic it routes (`group: \"\"`, `kind: Service`); for ingress, to a Gateway.",
        bad: r#"apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: web}
spec:
  rules: [{backendRefs: [{name: web, port: 80}]}]
"#,
        good: r#"apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: web}
spec:
  parentRefs: [{group: "", kind: Service, name: web}]
  rules: [{backendRefs: [{name: web, port: 80}]}]
"#,
    },
    Rule {
        code: "WEFT0511",
        severity: Severity::Warning,
        title: "Service parentRef without `group: \"\"`",
        explain: "In Gateway API a parentRef's `group` defaults to `gateway.networking.k8s.io`, so \
`{kind: Service, name: web}` names a Service in the wrong API group: other implementations ignore \
the route. weft reads it as the core Service, but write `group: \"\"` so the same file works \
everywhere.",
        bad: r#"apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: web}
spec:
  parentRefs: [{kind: Service, name: web}]
  rules: [{backendRefs: [{name: web, port: 80}]}]
"#,
        good: r#"apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: web}
spec:
  parentRefs: [{group: "", kind: Service, name: web}]
  rules: [{backendRefs: [{name: web, port: 80}]}]
"#,
    },
];

pub fn check(ix: &Index<'_>, out: &mut Report) {
    for l in &ix.config.resources {
        match &l.resource {
            Resource::HttpRoute(r) => {
                for (i, rule) in r.spec.rules.iter().enumerate() {
                    http_rule(l, i, rule, out);
                }
            }
            Resource::GrpcRoute(r) => {
                for (i, rule) in r.spec.rules.iter().enumerate() {
                    for (j, m) in rule.matches.iter().enumerate() {
                        let base = format!("spec.rules[{i}].matches[{j}]");
                        if let Some(method) = &m.method
                            && method.match_type.is_regex()
                        {
                            for (field, v) in
                                [("service", &method.service), ("method", &method.method)]
                            {
                                if let Some(v) = v {
                                    regex(l, &format!("{base}.method.{field}"), v, out);
                                }
                            }
                        }
                        headers(l, &format!("{base}.headers"), &m.headers, out);
                    }
                }
            }
            Resource::TrafficPolicy(p) => {
                if let (Some(total), Some(r)) = (p.spec.timeout, &p.spec.retries)
                    && let Some(per_try) = r.per_try_timeout
                    && total < per_try.times(r.attempts + 1)
                {
                    out.add(
                        "WEFT0502",
                        l,
                        "spec.timeout",
                        format!(
                            "timeout {total} is shorter than perTryTimeout {per_try} × {} attempts",
                            r.attempts + 1
                        ),
                        format!(
                            "raise the timeout to at least {}, or lower perTryTimeout or attempts",
                            per_try.times(r.attempts + 1)
                        ),
                    );
                }
            }
            _ => {}
        }
    }
    parents::check(ix, out);
}

fn http_rule(l: &Loaded, i: usize, rule: &HttpRouteRule, out: &mut Report) {
    let base = format!("spec.rules[{i}]");
    for (j, m) in rule.matches.iter().enumerate() {
        let mbase = format!("{base}.matches[{j}]");
        if let Some(p) = &m.path {
            let path = format!("{mbase}.path.value");
            match p.match_type {
                PathMatchType::RegularExpression => regex(l, &path, &p.value, out),
                _ if !p.value.starts_with('/') => out.add(
                    "WEFT0505",
                    l,
                    &path,
                    format!(
                        "path {:?} does not start with `/` and never matches",
                        p.value
                    ),
                    format!("write {:?}", format!("/{}", p.value)),
                ),
                _ => {}
            }
        }
        headers(l, &format!("{mbase}.headers"), &m.headers, out);
        headers(l, &format!("{mbase}.queryParams"), &m.query_params, out);
    }
    if let Some(t) = &rule.timeouts {
        match (t.request, t.backend_request) {
            (Some(total), Some(per_try)) if per_try > total => out.add(
                "WEFT0504",
                l,
                &format!("{base}.timeouts.backendRequest"),
                format!("backendRequest {per_try} is longer than request {total}"),
                "make backendRequest at most the request timeout",
            ),
            (Some(total), Some(per_try)) => {
                let attempts = rule.retry.as_ref().map_or(0, |r| r.attempts.unwrap_or(2)) + 1;
                if attempts > 1 && total < per_try.times(attempts) {
                    out.add("WEFT0502", l, &format!("{base}.timeouts.request"),
                        format!("request timeout {total} is shorter than backendRequest {per_try} × {attempts} attempts; the last retries can never run"),
                        format!("raise the request timeout to at least {}, or retry less", per_try.times(attempts)));
                }
            }
            _ => {}
        }
    }
    let mut redirect = false;
    let mut rewrite = false;
    for (j, f) in rule.filters.iter().enumerate() {
        filter(l, &format!("{base}.filters[{j}]"), f, out);
        redirect |= f.filter_type == HttpFilterType::RequestRedirect;
        rewrite |= f.filter_type == HttpFilterType::URLRewrite;
    }
    if redirect && rewrite {
        out.add(
            "WEFT0507",
            l,
            &format!("{base}.filters"),
            "RequestRedirect and URLRewrite are both set in one rule",
            "keep one: a redirect answers the client, a rewrite changes the forwarded request",
        );
    } else if redirect && !rule.backend_refs.is_empty() {
        out.add(
            "WEFT0507",
            l,
            &format!("{base}.backendRefs"),
            "the rule redirects, so its backendRefs are never used",
            "remove the backendRefs, or move them to a rule without the redirect",
        );
    }
    if !redirect && rule.backend_refs.is_empty() {
        out.add(
            "WEFT0508",
            l,
            &base,
            "the rule has no backendRefs and no redirect; matching requests get 500",
            "add backendRefs, or a RequestRedirect filter",
        );
    }
}

fn filter(l: &Loaded, path: &str, f: &HttpRouteFilter, out: &mut Report) {
    let set = [
        (
            HttpFilterType::RequestHeaderModifier,
            "requestHeaderModifier",
            f.request_header_modifier.is_some(),
        ),
        (
            HttpFilterType::ResponseHeaderModifier,
            "responseHeaderModifier",
            f.response_header_modifier.is_some(),
        ),
        (
            HttpFilterType::RequestMirror,
            "requestMirror",
            f.request_mirror.is_some(),
        ),
        (
            HttpFilterType::RequestRedirect,
            "requestRedirect",
            f.request_redirect.is_some(),
        ),
        (
            HttpFilterType::URLRewrite,
            "urlRewrite",
            f.url_rewrite.is_some(),
        ),
        (
            HttpFilterType::ExtensionRef,
            "extensionRef",
            f.extension_ref.is_some(),
        ),
    ];
    for (ty, field, present) in set {
        if ty == f.filter_type && !present {
            out.add(
                "WEFT0506",
                l,
                &format!("{path}.type"),
                format!("filter type {ty:?} needs `{field}`, which is not set"),
                format!("add `{field}:` with its settings"),
            );
        } else if ty != f.filter_type && present {
            out.add(
                "WEFT0506",
                l,
                &format!("{path}.{field}"),
                format!(
                    "`{field}` is set on a {:?} filter and is ignored",
                    f.filter_type
                ),
                format!("set `type: {ty:?}` or move `{field}` to its own filter"),
            );
        }
    }
}

fn headers(l: &Loaded, base: &str, list: &[HeaderMatch], out: &mut Report) {
    for (k, h) in list.iter().enumerate() {
        if h.match_type.is_regex() {
            regex(l, &format!("{base}[{k}].value"), &h.value, out);
        }
    }
}

fn regex(l: &Loaded, path: &str, pattern: &str, out: &mut Report) {
    if let Err(e) = regex::Regex::new(pattern) {
        let first = e
            .to_string()
            .lines()
            .last()
            .unwrap_or_default()
            .trim()
            .to_string();
        out.add(
            "WEFT0501",
            l,
            path,
            format!("invalid regular expression {pattern:?}: {first}"),
            "fix the pattern (RE2 syntax: no look-around or back-references)",
        );
    }
}
