//! `weft proxy-config POD secrets`: the workload certificates a proxy holds, read from its
//! admin API (a sidecar's, waypoint's or gateway's `/certs`; a node proxy's `/pods`, one per
//! pod), certificate by certificate as Istio's secret table shows them (RESOURCE NAME, TYPE,
//! STATUS, VALID CERT, SERIAL NUMBER, NOT AFTER, NOT BEFORE) with SHA-256 fingerprints and
//! each SPIFFE ID checked against the identity the control plane intends.

use anyhow::Context;
use serde::Serialize;
use weft_local::rundir::RunDir;
use weft_proxy::certs::{CertDetail, CertInfo, date, details};

use super::target::Target;
use crate::get::{header, table};

/// What a proxy holds, per pod it serves.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Secrets {
    /// The identity the control plane intends (none for a node proxy, or when it could not be
    /// asked).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub intended_identity: Option<String>,
    pub held: Vec<Held>,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Held {
    /// A node proxy's pod (`ns/name`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pod: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub certificate: Option<CertInfo>,
    /// The chain, then the trust bundle.
    pub certificates: Vec<CertDetail>,
    /// Why there is no certificate.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub missing: Option<String>,
}

impl Held {
    fn of(pod: Option<String>, info: CertInfo) -> Held {
        Held {
            pod,
            certificates: details(&info),
            certificate: Some(info),
            missing: None,
        }
    }
}

/// The certificates the proxy of `target` holds.
pub fn fetch(
    dir: &RunDir,
    target: Target<'_>,
    intended: Option<String>,
) -> anyhow::Result<Secrets> {
    let parse = |body: String| -> anyhow::Result<CertInfo> {
        serde_json::from_str(&body).context("unexpected answer from the proxy")
    };
    let held = match target {
        Target::InPod(pod) => vec![Held::of(None, parse(super::in_pod(pod, "/certs")?)?)],
        Target::Gateway(g) => {
            let body = super::view::gateway_get(dir, g, "/certs")?;
            vec![Held::of(None, parse(body)?)]
        }
        Target::Ambient(pod) => {
            let entry = super::node::pod(dir, pod)?;
            vec![held(None, entry)]
        }
        Target::Node(node) => {
            let pods = super::node::pods(dir, node)?;
            (pods.pods.into_iter())
                .map(|p| held(Some(super::table::pod_name(&p.id)), p))
                .collect()
        }
    };
    Ok(Secrets {
        intended_identity: intended,
        held,
    })
}

/// An ambient pod's certificate as its node proxy holds it, or why it holds none.
fn held(pod: Option<String>, p: weft_proxy::node::PodView) -> Held {
    match p.certificate {
        Some(c) => Held::of(pod, c),
        None => Held {
            pod,
            certificate: None,
            certificates: Vec::new(),
            missing: Some(format!(
                "{}: {}",
                p.state,
                p.no_certificate.unwrap_or_else(|| "no certificate".into())
            )),
        },
    }
}

/// The secrets table at `now` (Unix seconds): one row per certificate, then whatever does not
/// add up (a SPIFFE ID other than the intended one, a pod without a certificate).
pub fn render(s: &Secrets, now: i64) -> String {
    let node = s.held.iter().any(|h| h.pod.is_some());
    let mut cols = vec![
        "RESOURCE NAME",
        "TYPE",
        "STATUS",
        "VALID CERT",
        "SERIAL NUMBER",
        "NOT AFTER",
        "NOT BEFORE",
        "SHA-256",
        "SUBJECT",
    ];
    if node {
        cols.insert(0, "POD");
    }
    let mut rows = vec![header(&cols)];
    let mut notes = Vec::new();
    for h in &s.held {
        let pod = h.pod.clone().unwrap_or_else(|| "-".into());
        if let Some(why) = &h.missing {
            notes.push(format!("{pod}: no certificate ({why})"));
        }
        let mut intermediates = 0;
        for c in &h.certificates {
            let (name, kind, subject) = match c.role.as_str() {
                "workload" => (
                    "default".to_string(),
                    "Cert Chain",
                    h.certificate
                        .as_ref()
                        .map_or(c.subject.clone(), |i| i.spiffe_id.clone()),
                ),
                "intermediate" => {
                    intermediates += 1;
                    (
                        format!("intermediate-{intermediates}"),
                        "Cert Chain",
                        c.subject.clone(),
                    )
                }
                _ => ("ROOTCA".to_string(), "CA", c.subject.clone()),
            };
            let valid = c.not_before <= now && now < c.not_after;
            let status = match (now < c.not_before, now >= c.not_after) {
                (true, _) => "NOT YET VALID",
                (_, true) => "EXPIRED",
                _ => "ACTIVE",
            };
            let mut row = vec![
                name,
                kind.into(),
                status.into(),
                valid.to_string(),
                c.serial.clone(),
                date(c.not_after),
                date(c.not_before),
                format!("{}…", &c.sha256[..c.sha256.len().min(16)]),
                subject,
            ];
            if node {
                row.insert(0, pod.clone());
            }
            rows.push(row);
        }
        if let (Some(want), Some(info)) = (&s.intended_identity, &h.certificate)
            && *want != info.spiffe_id
        {
            notes.push(format!(
                "WARNING: the certificate is for {}, but the control plane intends {want}",
                info.spiffe_id
            ));
        }
    }
    let mut out = match rows.len() {
        1 => "no certificates held\n".to_string(),
        _ => table(&rows),
    };
    for n in notes {
        out += &format!("{n}\n");
    }
    out += "(live, from the proxy's admin API; `-o json` has each PEM and the full fingerprints)\n";
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn detail(role: &str, subject: &str, not_after: i64) -> CertDetail {
        CertDetail {
            role: role.into(),
            subject: subject.into(),
            issuer: "CN=root".into(),
            serial: "0a".into(),
            not_before: 1_000,
            not_after,
            sha256: "ab".repeat(32),
        }
    }

    #[test]
    fn one_row_per_certificate_and_a_warning_for_another_identity() {
        let info = CertInfo {
            spiffe_id: "spiffe://td/ns/shop/sa/cart".into(),
            serial: "0a".into(),
            not_before: 1_000,
            not_after: 90_000,
            chain_pem: vec![],
            bundle_pem: vec![],
        };
        let s = Secrets {
            intended_identity: Some("spiffe://td/ns/shop/sa/web".into()),
            held: vec![Held {
                pod: None,
                certificate: Some(info),
                certificates: vec![
                    detail("workload", "", 90_000),
                    detail("root", "CN=root", 2_000),
                ],
                missing: None,
            }],
        };
        let text = render(&s, 5_000);
        let lines: Vec<Vec<&str>> = text
            .lines()
            .map(|l| l.split_whitespace().collect())
            .collect();
        assert_eq!(lines[0][..3], ["RESOURCE", "NAME", "TYPE"], "{text}");
        assert_eq!(
            lines[1][..5],
            ["default", "Cert", "Chain", "ACTIVE", "true"],
            "{text}"
        );
        assert_eq!(
            lines[1].last(),
            Some(&"spiffe://td/ns/shop/sa/cart"),
            "{text}"
        );
        assert_eq!(
            lines[2][..4],
            ["ROOTCA", "CA", "EXPIRED", "false"],
            "{text}"
        );
        assert!(text.contains(&format!("{}…", "ab".repeat(8))), "{text}");
        assert!(
            text.contains("WARNING: the certificate is for spiffe://td/ns/shop/sa/cart"),
            "{text}"
        );
    }
}
