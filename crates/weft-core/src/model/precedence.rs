//! Gateway API match precedence, across every route attached to one parent.
//!
//! Entries are ordered by, continuing on ties: the longest exact host name, the longest
//! wildcard host name (Gateway parents only: Service parents carry none), an `Exact` path, the
//! longest `PathPrefix` (regular expressions, whose precedence the specification leaves to the
//! implementation, sit between the two), a method match, the most header matches, the most
//! query parameter matches. Remaining ties go to the oldest route by
//! `metadata.creationTimestamp` (a route without one counts as newest), then to the first by
//! `{namespace}/{name}`, then to the first rule and match in the route's own order.

use std::cmp::Reverse;

use super::{HttpRoutes, HttpRule, MatchEntry};
use crate::resources::Resource;
use crate::resources::http_route::{HttpRouteMatch, PathMatchType};

/// Ports, hostnames, one match and its rule, before ordering.
pub(super) type Pending = (Vec<u16>, Vec<String>, HttpRouteMatch, HttpRule);

/// Missing timestamp last, timestamp, namespace, name, kind.
pub(super) type RouteKey = (bool, Option<(i64, u32)>, String, String, String);

/// How routes are ordered before their entries are: oldest first, then by namespace and name
/// (then kind, for an HTTPRoute and a GRPCRoute of the same name).
pub(super) fn route_key(r: &Resource) -> RouteKey {
    let meta = r.metadata();
    let created = meta
        .creation_timestamp
        .as_ref()
        .and_then(|v| v.as_str())
        .and_then(parse_rfc3339);
    (
        created.is_none(),
        created,
        meta.namespace().to_string(),
        meta.name.clone(),
        r.kind().to_string(),
    )
}

/// Sorts pending entries by precedence and numbers their rules. `list` must be in route order
/// (see [`route_key`]) and, within a route, in rule and match order: the sort is stable.
pub(super) fn order(mut list: Vec<Pending>) -> HttpRoutes {
    list.sort_by_key(|(_, hosts, m, _)| Reverse((host_precedence(hosts), precedence(m))));
    let mut rules: Vec<HttpRule> = Vec::new();
    let mut entries = Vec::new();
    for (ports, hostnames, matcher, rule) in list {
        let idx = match rules.iter().position(|r| r.name == rule.name) {
            Some(i) => i,
            None => {
                rules.push(rule);
                rules.len() - 1
            }
        };
        entries.push(MatchEntry {
            ports,
            hostnames,
            matcher,
            rule: idx,
        });
    }
    HttpRoutes { rules, entries }
}

/// Gateway API: the longest exact host name first, then the longest wildcard, then any host.
fn host_precedence(hostnames: &[String]) -> (usize, usize) {
    match hostnames.first() {
        None => (0, 0),
        Some(h) if h.starts_with('*') => (0, h.len()),
        Some(h) => (h.len(), h.len()),
    }
}

fn precedence(m: &HttpRouteMatch) -> (u8, usize, bool, usize, usize) {
    let (rank, len) = match &m.path {
        Some(p) => match p.match_type {
            PathMatchType::Exact => (3, p.value.len()),
            PathMatchType::RegularExpression => (2, p.value.len()),
            PathMatchType::PathPrefix => (1, p.value.len()),
        },
        None => (1, 1),
    };
    (
        rank,
        len,
        m.method.is_some(),
        m.headers.len(),
        m.query_params.len(),
    )
}

/// `2024-05-01T10:00:00Z` (fraction and `±hh:mm` offset allowed) → seconds since the Unix
/// epoch and nanoseconds, for ordering.
fn parse_rfc3339(s: &str) -> Option<(i64, u32)> {
    let b = s.as_bytes();
    let num = |from: usize, len: usize| -> Option<i64> {
        let part = s.get(from..from + len)?;
        part.bytes()
            .all(|c| c.is_ascii_digit())
            .then(|| part.parse().ok())?
    };
    if b.len() < 20 || b[4] != b'-' || b[7] != b'-' || !matches!(b[10], b'T' | b't' | b' ') {
        return None;
    }
    if b[13] != b':' || b[16] != b':' {
        return None;
    }
    let (y, mo, d) = (num(0, 4)?, num(5, 2)?, num(8, 2)?);
    let (h, mi, sec) = (num(11, 2)?, num(14, 2)?, num(17, 2)?);
    if !(1..=12).contains(&mo) || !(1..=31).contains(&d) || h > 23 || mi > 59 || sec > 60 {
        return None;
    }
    let mut i = 19;
    let mut nanos: u32 = 0;
    if b.get(i) == Some(&b'.') {
        i += 1;
        let start = i;
        while b.get(i).is_some_and(u8::is_ascii_digit) {
            i += 1;
        }
        let digits = &s[start..i];
        if digits.is_empty() {
            return None;
        }
        let padded = format!("{:0<9}", &digits[..digits.len().min(9)]);
        nanos = padded.parse().ok()?;
    }
    let offset = match &s[i..] {
        "Z" | "z" => 0,
        tz if tz.len() == 6
            && matches!(tz.as_bytes()[0], b'+' | b'-')
            && tz.as_bytes()[3] == b':' =>
        {
            let secs = num(i + 1, 2)? * 3600 + num(i + 4, 2)? * 60;
            if tz.starts_with('-') { -secs } else { secs }
        }
        _ => return None,
    };
    let days = days_from_civil(y, mo, d);
    Some((days * 86_400 + h * 3600 + mi * 60 + sec - offset, nanos))
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

#[cfg(test)]
mod tests;
