//! Workload identity: the SPIFFE ID `spiffe://<trust-domain>/ns/<namespace>/sa/<service-account>`
//! that a workload certificate carries as its only URI SAN, and that authorization matches.
//!
//! Parsing is strict, following the SPIFFE ID specification: lowercase scheme, a trust domain
//! of `[a-z0-9._-]`, and exactly the path `/ns/<ns>/sa/<sa>` with segments of `[A-Za-z0-9._-]`
//! (no `.` or `..`); no port, user info, query or fragment.

use std::fmt;
use std::str::FromStr;

/// The longest SPIFFE ID accepted, as the specification recommends.
pub const MAX_LEN: usize = 2048;

/// The DNS name the control plane's serving certificate carries on the mTLS discovery port
/// (15012). Workload certificates carry only a SPIFFE URI, so none of them can pass for it.
pub const CONTROL_PLANE_NAME: &str = "weft-control.weft-system.svc";

/// A workload's SPIFFE identity.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct SpiffeId {
    pub trust_domain: String,
    pub namespace: String,
    pub service_account: String,
}

/// Why a string is not a weft SPIFFE ID.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "{input:?} is not a workload SPIFFE ID: {reason} (expected spiffe://<trust-domain>/ns/<namespace>/sa/<service-account>)"
)]
pub struct Error {
    pub input: String,
    pub reason: Reason,
}

/// The part of a SPIFFE ID that is wrong, and how.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Reason {
    #[error("longer than {MAX_LEN} bytes")]
    TooLong,
    #[error("the scheme must be spiffe:// (lowercase)")]
    Scheme,
    #[error("a query or fragment is not allowed")]
    QueryOrFragment,
    #[error("the path /ns/<namespace>/sa/<service-account> is missing")]
    NoPath,
    #[error("the trust domain is empty")]
    EmptyTrustDomain,
    #[error("the trust domain must not have a port")]
    Port,
    #[error("user info is not allowed")]
    UserInfo,
    #[error(
        "the trust domain has {0:?}; only lowercase letters, digits, '.', '-' and '_' are allowed"
    )]
    TrustDomainChar(char),
    #[error("the path has {0} segments, not the 4 of /ns/<namespace>/sa/<service-account>")]
    SegmentCount(usize),
    #[error("the path must be /ns/<namespace>/sa/<service-account>")]
    PathShape,
    /// `what` names the segment: "namespace" or "service account".
    #[error("the {what} is empty")]
    EmptySegment { what: &'static str },
    #[error("the {what} must not be {segment:?}")]
    DotSegment {
        what: &'static str,
        segment: &'static str,
    },
    #[error("the {what} has {c:?}; only letters, digits, '.', '-' and '_' are allowed")]
    SegmentChar { what: &'static str, c: char },
}

impl SpiffeId {
    /// Builds an identity from its parts without checking them; [`SpiffeId::parse`] checks.
    pub fn new(
        trust_domain: impl Into<String>,
        namespace: impl Into<String>,
        service_account: impl Into<String>,
    ) -> SpiffeId {
        SpiffeId {
            trust_domain: trust_domain.into(),
            namespace: namespace.into(),
            service_account: service_account.into(),
        }
    }

    /// Parses `spiffe://<td>/ns/<ns>/sa/<sa>` strictly.
    pub fn parse(input: &str) -> Result<SpiffeId, Error> {
        let fail = |reason: Reason| Error {
            input: input.to_string(),
            reason,
        };
        if input.len() > MAX_LEN {
            return Err(fail(Reason::TooLong));
        }
        let rest = input
            .strip_prefix("spiffe://")
            .ok_or_else(|| fail(Reason::Scheme))?;
        if rest.contains(['?', '#']) {
            return Err(fail(Reason::QueryOrFragment));
        }
        let (td, path) = rest.split_once('/').ok_or_else(|| fail(Reason::NoPath))?;
        check_trust_domain(td).map_err(fail)?;
        let parts: Vec<&str> = path.split('/').collect();
        let [ns_key, ns, sa_key, sa] = parts.as_slice() else {
            return Err(fail(Reason::SegmentCount(parts.len())));
        };
        if *ns_key != "ns" || *sa_key != "sa" {
            return Err(fail(Reason::PathShape));
        }
        check_segment("namespace", ns).map_err(fail)?;
        check_segment("service account", sa).map_err(fail)?;
        Ok(SpiffeId::new(td, *ns, *sa))
    }
}

fn check_trust_domain(td: &str) -> Result<(), Reason> {
    if td.is_empty() {
        return Err(Reason::EmptyTrustDomain);
    }
    if td.contains(':') {
        return Err(Reason::Port);
    }
    if td.contains('@') {
        return Err(Reason::UserInfo);
    }
    if let Some(c) = td
        .chars()
        .find(|c| !matches!(c, 'a'..='z' | '0'..='9' | '.' | '-' | '_'))
    {
        return Err(Reason::TrustDomainChar(c));
    }
    Ok(())
}

fn check_segment(what: &'static str, s: &str) -> Result<(), Reason> {
    if s.is_empty() {
        return Err(Reason::EmptySegment { what });
    }
    if let Some(segment) = [".", ".."].into_iter().find(|dots| *dots == s) {
        return Err(Reason::DotSegment { what, segment });
    }
    if let Some(c) = s
        .chars()
        .find(|c| !matches!(c, 'a'..='z' | 'A'..='Z' | '0'..='9' | '.' | '-' | '_'))
    {
        return Err(Reason::SegmentChar { what, c });
    }
    Ok(())
}

impl fmt::Display for SpiffeId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "spiffe://{}/ns/{}/sa/{}",
            self.trust_domain, self.namespace, self.service_account
        )
    }
}

impl FromStr for SpiffeId {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        SpiffeId::parse(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_prints_back() {
        let id = SpiffeId::parse("spiffe://shop.local/ns/shop/sa/cart").unwrap();
        assert_eq!(id, SpiffeId::new("shop.local", "shop", "cart"));
        assert_eq!(id.to_string(), "spiffe://shop.local/ns/shop/sa/cart");
        assert_eq!(
            "spiffe://td/ns/a/sa/b"
                .parse::<SpiffeId>()
                .unwrap()
                .namespace,
            "a"
        );
    }

    #[test]
    fn rejects_what_is_not_strictly_a_workload_id() {
        for (input, why) in [
            ("SPIFFE://td/ns/a/sa/b", "scheme"),
            ("https://td/ns/a/sa/b", "scheme"),
            ("spiffe://td", "path"),
            ("spiffe:///ns/a/sa/b", "trust domain is empty"),
            ("spiffe://TD/ns/a/sa/b", "trust domain has 'T'"),
            ("spiffe://td:443/ns/a/sa/b", "port"),
            ("spiffe://u@td/ns/a/sa/b", "user info"),
            ("spiffe://td/ns/a/sa/b/c", "5 segments"),
            ("spiffe://td/ns/a/sa/b/", "5 segments"),
            ("spiffe://td/ns/a", "2 segments"),
            ("spiffe://td/sa/a/ns/b", "must be /ns/"),
            ("spiffe://td/ns//sa/b", "namespace is empty"),
            ("spiffe://td/ns/a/sa/", "service account is empty"),
            ("spiffe://td/ns/../sa/b", "must not be \"..\""),
            ("spiffe://td/ns/a b/sa/b", "has ' '"),
            ("spiffe://td/ns/a/sa/b?x=1", "query"),
            ("spiffe://td/ns/a/sa/b#f", "fragment"),
        ] {
            let err = SpiffeId::parse(input).expect_err(input).to_string();
            assert!(err.contains(why), "{input}: {err}");
            assert!(err.contains("expected spiffe://"), "{err}");
        }
        let long = format!("spiffe://td/ns/{}/sa/b", "a".repeat(MAX_LEN));
        assert!(
            SpiffeId::parse(&long)
                .unwrap_err()
                .to_string()
                .contains("2048")
        );
    }

    #[test]
    fn reasons_are_typed_and_read_as_before() {
        let err = SpiffeId::parse("spiffe://td/ns/a b/sa/b").unwrap_err();
        assert_eq!(
            err.reason,
            Reason::SegmentChar {
                what: "namespace",
                c: ' '
            }
        );
        assert_eq!(
            err.to_string(),
            "\"spiffe://td/ns/a b/sa/b\" is not a workload SPIFFE ID: the namespace has ' '; \
             only letters, digits, '.', '-' and '_' are allowed \
             (expected spiffe://<trust-domain>/ns/<namespace>/sa/<service-account>)"
        );
        let reason = |input: &str| SpiffeId::parse(input).unwrap_err().reason.to_string();
        assert_eq!(
            reason("spiffe://td/ns/../sa/b"),
            "the namespace must not be \"..\""
        );
        assert_eq!(
            reason("spiffe://td/ns/a/sa/."),
            "the service account must not be \".\""
        );
        assert_eq!(
            reason("spiffe://T/ns/a/sa/b"),
            "the trust domain has 'T'; only lowercase letters, digits, '.', '-' and '_' are allowed"
        );
        assert_eq!(
            reason("spiffe://td/ns/a"),
            "the path has 2 segments, not the 4 of /ns/<namespace>/sa/<service-account>"
        );
        assert_eq!(Reason::TooLong.to_string(), "longer than 2048 bytes");
    }
}
