//! Which control-plane revision serves a workload: the revision label (`weft.dev/rev`, or
//! Istio's `istio.io/rev` read as its alias) on the workload, else on its namespace, else the
//! `default` tag. A label names a revision or a tag (a movable pointer to a revision).

use std::collections::BTreeMap;
use std::fmt;

use super::{ISTIO_REV, REV};
use crate::meta::{DnsLabelError, check_dns_label};

/// The revision labels, weft's own first.
pub const REV_KEYS: [&str; 2] = [REV, ISTIO_REV];

/// The tag that serves what no revision label names.
pub const DEFAULT_TAG: &str = "default";

/// Which object a revision label was read from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RevisionSource {
    Workload,
    Namespace,
}

impl fmt::Display for RevisionSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            RevisionSource::Workload => "Workload",
            RevisionSource::Namespace => "Namespace",
        })
    }
}

/// A revision label that applies: its value (a revision or a tag), the object it is on and the
/// key it was read from ([`REV`] or [`ISTIO_REV`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RevisionRef {
    pub value: String,
    pub from: RevisionSource,
    pub key: &'static str,
}

/// One object carries both revision labels with different values.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "{REV}={weft:?} and {ISTIO_REV}={istio:?} on one {from} name different revisions; \
remove {ISTIO_REV} and keep {REV} at the revision meant"
)]
pub struct RevisionConflict {
    pub from: RevisionSource,
    /// The value of [`REV`].
    pub weft: String,
    /// The value of [`ISTIO_REV`].
    pub istio: String,
}

/// The revision label of one object. Both keys with the same value are one label, read as
/// [`REV`].
pub fn object_revision(
    labels: &BTreeMap<String, String>,
    from: RevisionSource,
) -> Result<Option<RevisionRef>, RevisionConflict> {
    let found = |key: &'static str, value: &String| RevisionRef {
        value: value.clone(),
        from,
        key,
    };
    match (labels.get(REV), labels.get(ISTIO_REV)) {
        (Some(weft), Some(istio)) if weft != istio => Err(RevisionConflict {
            from,
            weft: weft.clone(),
            istio: istio.clone(),
        }),
        (Some(weft), _) => Ok(Some(found(REV, weft))),
        (None, Some(istio)) => Ok(Some(found(ISTIO_REV, istio))),
        (None, None) => Ok(None),
    }
}

/// The revision label that applies to a workload: its own, else its namespace's. `None` means
/// the [`DEFAULT_TAG`] serves it. A conflict on the namespace does not matter when the workload
/// has its own label.
pub fn revision_label(
    namespace_labels: &BTreeMap<String, String>,
    workload_labels: &BTreeMap<String, String>,
) -> Result<Option<RevisionRef>, RevisionConflict> {
    match object_revision(workload_labels, RevisionSource::Workload)? {
        Some(own) => Ok(Some(own)),
        None => object_revision(namespace_labels, RevisionSource::Namespace),
    }
}

/// Why a string is not a revision or tag name. Like [`DnsLabelError`], the text completes a
/// sentence that starts with the name.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RevisionNameError {
    #[error("lists several names; a label names exactly one revision or tag")]
    List,
    #[error(transparent)]
    Dns(#[from] DnsLabelError),
    #[error("must start with a letter")]
    LeadingDigit,
}

/// Checks a revision or tag name, as written in a revision label: a DNS label (1–63 of
/// `a-z0-9-`, not ending in '-') that starts with a letter.
pub fn valid_revision_name(s: &str) -> Result<(), RevisionNameError> {
    if s.contains(',') {
        return Err(RevisionNameError::List);
    }
    check_dns_label(s)?;
    if !s.starts_with(|c: char| c.is_ascii_lowercase()) {
        return Err(RevisionNameError::LeadingDigit);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn rev(value: &str, from: RevisionSource, key: &'static str) -> Option<RevisionRef> {
        Some(RevisionRef {
            value: value.into(),
            from,
            key,
        })
    }

    #[test]
    fn workload_label_wins_over_namespace() {
        use RevisionSource::*;
        let ns = labels(&[(REV, "stable")]);
        let none = labels(&[]);
        assert_eq!(
            revision_label(&ns, &none),
            Ok(rev("stable", Namespace, REV))
        );
        let w = labels(&[(ISTIO_REV, "canary")]);
        assert_eq!(
            revision_label(&ns, &w),
            Ok(rev("canary", Workload, ISTIO_REV))
        );
        assert_eq!(revision_label(&none, &none), Ok(None));
    }

    #[test]
    fn both_keys_agree_or_conflict() {
        let same = labels(&[(REV, "stable"), (ISTIO_REV, "stable")]);
        assert_eq!(
            object_revision(&same, RevisionSource::Namespace),
            Ok(rev("stable", RevisionSource::Namespace, REV))
        );
        let both = labels(&[(REV, "canary"), (ISTIO_REV, "stable")]);
        let err = revision_label(&labels(&[]), &both).unwrap_err();
        assert_eq!(
            err.to_string(),
            "weft.dev/rev=\"canary\" and istio.io/rev=\"stable\" on one Workload name different \
revisions; remove istio.io/rev and keep weft.dev/rev at the revision meant"
        );
        // The workload's own label makes its namespace's conflict irrelevant to it.
        let w = labels(&[(REV, "canary")]);
        assert_eq!(
            revision_label(&both, &w),
            Ok(rev("canary", RevisionSource::Workload, REV))
        );
        assert!(revision_label(&both, &labels(&[])).is_err());
    }

    #[test]
    fn revision_names() {
        for ok in ["default", "stable", "canary", "v1-25-0", "a"] {
            assert_eq!(valid_revision_name(ok), Ok(()), "{ok}");
        }
        let long = "a".repeat(64);
        for (bad, want) in [
            ("", "must not be empty"),
            ("1-25", "must start with a letter"),
            ("stable-", "must start and end with a letter or digit"),
            (
                "Canary",
                "contains 'C'; use lower-case letters, digits and '-' (e.g. \"canary\")",
            ),
            (
                "1.25",
                "contains '.'; use lower-case letters, digits and '-' (e.g. \"1-25\")",
            ),
            (
                "stable,canary",
                "lists several names; a label names exactly one revision or tag",
            ),
            (&long, "is 64 characters long; the limit is 63"),
        ] {
            let err = valid_revision_name(bad).unwrap_err();
            assert_eq!(err.to_string(), want, "{bad}");
        }
    }
}
