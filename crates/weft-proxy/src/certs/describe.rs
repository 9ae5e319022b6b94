//! [`CertInfo`] for people (`weft proxy-config secret POD`) and, certificate by certificate
//! with fingerprints, for tables (`weft proxy-config POD secrets`).

use std::fmt::Write;

use serde::{Deserialize, Serialize};
use x509_parser::prelude::{FromDer, X509Certificate};

use super::CertInfo;
use super::key::parse_pem;

/// SPIFFE ID, serial, validity with the time left, the chain's subjects, issuers and
/// fingerprints, and the trusted roots.
pub fn describe(info: &CertInfo) -> String {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64);
    describe_at(info, now)
}

/// The time a certificate has left at `now` (Unix seconds): `23h59m left`, `EXPIRED 5m ago`
/// or `not valid for another 10s`.
pub fn time_left(info: &CertInfo, now: i64) -> String {
    if now >= info.not_after {
        format!("EXPIRED {} ago", span(now - info.not_after))
    } else if now < info.not_before {
        format!("not valid for another {}", span(info.not_before - now))
    } else {
        format!("{} left", span(info.not_after - now))
    }
}

pub(super) fn describe_at(info: &CertInfo, now: i64) -> String {
    let mut out = String::new();
    let left = time_left(info, now);
    let _ = writeln!(out, "SPIFFE ID:  {}", info.spiffe_id);
    let _ = writeln!(out, "Serial:     {}", info.serial);
    let _ = writeln!(
        out,
        "Valid:      {} .. {} ({left})",
        date(info.not_before),
        date(info.not_after)
    );
    let _ = writeln!(out, "Chain:");
    for (i, c) in certs(&info.chain_pem).iter().enumerate() {
        let what = if i == 0 { "workload" } else { "intermediate" };
        let _ = writeln!(out, "  [{i}] {what}");
        let _ = writeln!(out, "      subject: {}", or_empty(&c.subject));
        let _ = writeln!(out, "      issuer:  {}", c.issuer);
        let _ = writeln!(out, "      sha256:  {}", c.sha256);
    }
    let roots = certs(&info.bundle_pem);
    let _ = writeln!(
        out,
        "Trust bundle ({} root{}):",
        roots.len(),
        if roots.len() == 1 { "" } else { "s" }
    );
    for r in roots {
        let _ = writeln!(
            out,
            "  {}  serial {}  until {}",
            r.subject,
            r.serial,
            date(r.not_after)
        );
        let _ = writeln!(out, "    sha256 {}", r.sha256);
    }
    out
}

/// One certificate of a [`CertInfo`]'s chain or trust bundle.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CertDetail {
    /// `workload`, `intermediate` or `root`.
    pub role: String,
    pub subject: String,
    pub issuer: String,
    /// Lowercase hex, no separators.
    pub serial: String,
    /// Unix seconds.
    pub not_before: i64,
    pub not_after: i64,
    /// SHA-256 of the DER encoding, lowercase hex: what `openssl x509 -fingerprint -sha256`
    /// shows, without the colons.
    pub sha256: String,
}

/// The chain (workload certificate first, then intermediates) and the trusted roots, one
/// entry per certificate that parses.
pub fn details(info: &CertInfo) -> Vec<CertDetail> {
    let chain = certs(&info.chain_pem)
        .into_iter()
        .enumerate()
        .map(|(i, c)| {
            let role = if i == 0 { "workload" } else { "intermediate" };
            c.detail(role)
        });
    let roots = certs(&info.bundle_pem)
        .into_iter()
        .map(|c| c.detail("root"));
    chain.chain(roots).collect()
}

struct Brief {
    subject: String,
    issuer: String,
    serial: String,
    not_before: i64,
    not_after: i64,
    sha256: String,
}

impl Brief {
    fn detail(self, role: &str) -> CertDetail {
        CertDetail {
            role: role.into(),
            subject: self.subject,
            issuer: self.issuer,
            serial: self.serial,
            not_before: self.not_before,
            not_after: self.not_after,
            sha256: self.sha256,
        }
    }
}

fn certs(pems: &[String]) -> Vec<Brief> {
    parse_pem(pems)
        .unwrap_or_default()
        .iter()
        .filter_map(|der| {
            let (_, c) = X509Certificate::from_der(der).ok()?;
            let digest = ring::digest::digest(&ring::digest::SHA256, der);
            Some(Brief {
                subject: c.subject().to_string(),
                issuer: c.issuer().to_string(),
                serial: super::key::serial_hex(c.raw_serial()),
                not_before: c.validity().not_before.timestamp(),
                not_after: c.validity().not_after.timestamp(),
                sha256: digest.as_ref().iter().map(|b| format!("{b:02x}")).collect(),
            })
        })
        .collect()
}

fn or_empty(s: &str) -> &str {
    if s.is_empty() {
        "(empty; the identity is the URI SAN)"
    } else {
        s
    }
}

/// Unix seconds as RFC 3339 (`2026-05-01T12:00:00Z`).
pub fn date(unix: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp(unix)
        .ok()
        .and_then(|t| {
            t.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_else(|| unix.to_string())
}

/// `3d4h`, `23h59m`, `5m10s`, `42s`: the two largest units.
fn span(secs: i64) -> String {
    let secs = secs.max(0);
    let units = [("d", 86_400), ("h", 3_600), ("m", 60), ("s", 1)];
    let mut parts = Vec::new();
    let mut rest = secs;
    for (name, size) in units {
        if rest >= size || (parts.is_empty() && size == 1) {
            parts.push(format!("{}{name}", rest / size));
            rest %= size;
        } else if !parts.is_empty() {
            // Keep the units adjacent: 1h0m, not 1h5s.
            parts.push(format!("0{name}"));
        }
        if parts.len() == 2 {
            break;
        }
    }
    parts.join("")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spans_read_like_people_write_them() {
        assert_eq!(span(0), "0s");
        assert_eq!(span(42), "42s");
        assert_eq!(span(310), "5m10s");
        assert_eq!(span(86_340), "23h59m");
        assert_eq!(span(3_605), "1h0m");
        assert_eq!(span(4 * 86_400 + 3_600 * 4), "4d4h");
    }
}
