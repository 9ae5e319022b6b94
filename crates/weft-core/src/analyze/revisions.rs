//! 07xx: control-plane revision labels (`weft.dev/rev`, or its alias `istio.io/rev`) on
//! Namespaces and Workloads. 0701–0703 read the configuration alone; 0704–0706 compare the
//! labels with the running mesh's revisions and tags ([`MeshRevisions`]) and run only when the
//! analyzer is given them ([`super::analyze_with`]).

mod running;

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::{Index, Report, Rule, Severity};
use crate::annotations::{
    ISTIO_REV, REV_KEYS, RevisionSource, object_revision, valid_revision_name,
};
use crate::load::Loaded;
use crate::resources::Resource;

pub use running::check as check_running;

/// The running mesh's control planes, as far as revision labels care: the revisions installed,
/// the tags (tag name → the revision it points at) and the revisions being removed.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MeshRevisions {
    pub revisions: Vec<String>,
    #[serde(default)]
    pub tags: BTreeMap<String, String>,
    /// Revisions still running but about to be removed (listed in `revisions` or not).
    #[serde(default)]
    pub going_away: Vec<String>,
}

/// The rules that need a [`MeshRevisions`]; their examples run against [`example_mesh`].
pub const NEEDS_MESH: &[&str] = &["WEFT0704", "WEFT0705", "WEFT0706"];

/// The running mesh the examples of [`NEEDS_MESH`] rules are checked against.
pub fn example_mesh() -> MeshRevisions {
    let s = |v: &[&str]| v.iter().map(ToString::to_string).collect();
    MeshRevisions {
        revisions: s(&["v1-24", "v1-25"]),
        tags: [
            ("default", "v1-25"),
            ("stable", "v1-25"),
            ("legacy", "v1-23"),
        ]
        .into_iter()
        .map(|(t, r)| (t.to_string(), r.to_string()))
        .collect(),
        going_away: s(&["v1-24"]),
    }
}

pub const RULES: &[Rule] = &[
    Rule {
        code: "WEFT0701",
        severity: Severity::Error,
        title: "two revision labels with different values",
        explain: "weft reads Istio's `istio.io/rev` as an alias of `weft.dev/rev`, so manifests \
imported from Istio keep their revision. When one Namespace or Workload carries both with \
different values, it is not clear which control plane should serve it. Keep one label; both \
with the same value are fine.",
        bad: r#"apiVersion: v1
kind: Namespace
metadata:
  name: default
  labels: {weft.dev/rev: canary, istio.io/rev: stable}
"#,
        good: r#"apiVersion: v1
kind: Namespace
metadata:
  name: default
  labels: {weft.dev/rev: stable, istio.io/rev: stable}
"#,
    },
    Rule {
        code: "WEFT0702",
        severity: Severity::Error,
        title: "revision label value is not a revision or tag name",
        explain: "A revision label names exactly one revision or tag. Their names are DNS labels \
that start with a letter: lower-case letters, digits and '-', at most 63 characters, not ending \
in '-'. No revision or tag can have any other name, so such a label selects no control plane. \
Istio's revisions like `1-25` are written `v1-25` here.",
        bad: r#"apiVersion: weft.dev/v1alpha1
kind: Workload
metadata:
  name: api
  labels: {app: web, weft.dev/rev: "1.25"}
spec: {command: [api]}
"#,
        good: r#"apiVersion: weft.dev/v1alpha1
kind: Workload
metadata:
  name: api
  labels: {app: web, weft.dev/rev: v1-25}
spec: {command: [api]}
"#,
    },
    Rule {
        code: "WEFT0703",
        severity: Severity::Info,
        title: "workload pinned apart from its namespace's revision",
        explain: "A Workload's revision label wins over its Namespace's, so this workload stays \
on its own revision or tag: moving the namespace's label, or the tag it names, does not move it. \
That is how one workload is tried on a canary revision, so this is a note rather than a warning; \
it matters when the pin is forgotten after the canary. Remove the workload's label to follow the \
namespace again. With the running mesh given, WEFT0706 warns when the pinned revision is going \
away.",
        bad: r#"apiVersion: v1
kind: Namespace
metadata: {name: default, labels: {weft.dev/rev: stable}}
---
apiVersion: weft.dev/v1alpha1
kind: Workload
metadata:
  name: api
  labels: {app: web, weft.dev/rev: canary}
spec: {command: [api]}
"#,
        good: r#"apiVersion: v1
kind: Namespace
metadata: {name: default, labels: {weft.dev/rev: stable}}
---
apiVersion: weft.dev/v1alpha1
kind: Workload
metadata:
  name: api
  labels: {app: web}
spec: {command: [api]}
"#,
    },
    Rule {
        code: "WEFT0704",
        severity: Severity::Error,
        title: "revision label names no revision or tag of the running mesh",
        explain: "Needs the running mesh's revisions and tags. A label naming neither leaves its \
workloads without the revision they ask for: `weft up` keeps them where they run (a new pod starts \
on the `default` tag's revision) and `weft status` shows NO REVISION for them. Point a tag at \
a revision (`weft tag set NAME --revision R`) or change the label to a revision or tag that \
exists.",
        bad: r#"apiVersion: weft.dev/v1alpha1
kind: Workload
metadata:
  name: api
  labels: {app: web, weft.dev/rev: canary}
spec: {command: [api]}
"#,
        good: r#"apiVersion: weft.dev/v1alpha1
kind: Workload
metadata:
  name: api
  labels: {app: web, weft.dev/rev: stable}
spec: {command: [api]}
"#,
    },
    Rule {
        code: "WEFT0705",
        severity: Severity::Error,
        title: "tag points at a revision that does not exist",
        explain: "Needs the running mesh's revisions and tags. A tag is a pointer to a revision; \
when that revision has been removed, everything labelled with the tag (and, for the `default` \
tag, everything with no revision label) has no control plane. Point the tag at a running \
revision (`weft tag set TAG --revision R --overwrite`) or remove it (`weft tag remove TAG`) and \
relabel what used it.",
        bad: r#"apiVersion: weft.dev/v1alpha1
kind: Workload
metadata:
  name: api
  labels: {app: web, weft.dev/rev: legacy}
spec: {command: [api]}
"#,
        good: r#"apiVersion: weft.dev/v1alpha1
kind: Workload
metadata:
  name: api
  labels: {app: web, weft.dev/rev: stable}
spec: {command: [api]}
"#,
    },
    Rule {
        code: "WEFT0706",
        severity: Severity::Warning,
        title: "pinned to a revision that is going away",
        explain: "Needs the running mesh's revisions and tags. A label that names a revision \
directly (not a tag) is not moved when tags move to the new revision, so it keeps its workloads \
on the old control plane until that is removed, and then they have none. Relabel them with a tag \
that follows upgrades, or with the new revision.",
        bad: r#"apiVersion: weft.dev/v1alpha1
kind: Workload
metadata:
  name: api
  labels: {app: web, weft.dev/rev: v1-24}
spec: {command: [api]}
"#,
        good: r#"apiVersion: weft.dev/v1alpha1
kind: Workload
metadata:
  name: api
  labels: {app: web, weft.dev/rev: stable}
spec: {command: [api]}
"#,
    },
];

/// Namespaces and Workloads: what carries a revision label.
fn labelled<'a>(ix: &Index<'a>) -> impl Iterator<Item = (&'a Loaded, RevisionSource)> + 'a {
    ix.config.resources.iter().filter_map(|l| match l.resource {
        Resource::Namespace(_) => Some((l, RevisionSource::Namespace)),
        Resource::Workload(_) => Some((l, RevisionSource::Workload)),
        _ => None,
    })
}

/// Where label `key` is written: a Kubernetes workload's pod template, else `metadata`.
fn label_path(l: &Loaded, key: &str) -> String {
    let template = format!("spec.template.metadata.labels.{key}");
    if l.has(&template) {
        template
    } else {
        format!("metadata.labels.{key}")
    }
}

pub fn check(ix: &Index<'_>, out: &mut Report) {
    for (l, from) in labelled(ix) {
        let labels = &l.resource.metadata().labels;
        if let Err(conflict) = object_revision(labels, from) {
            let fix = format!(
                "keep one label: remove {ISTIO_REV}, or set it to {:?} as well",
                conflict.weft
            );
            out.add(
                "WEFT0701",
                l,
                &label_path(l, ISTIO_REV),
                conflict.to_string(),
                fix,
            );
        }
        for key in REV_KEYS {
            let Some(value) = labels.get(key) else {
                continue;
            };
            if let Err(why) = valid_revision_name(value) {
                out.add(
                    "WEFT0702",
                    l,
                    &label_path(l, key),
                    format!("{key}={value:?} {why}"),
                    "name one revision or tag: lower-case letters, digits and '-', starting with \
a letter (e.g. stable, v1-25)",
                );
            }
        }
    }
    pinned_apart(ix, out);
}

/// WEFT0703: a workload whose own label differs from its namespace's.
fn pinned_apart(ix: &Index<'_>, out: &mut Report) {
    for (l, w) in ix.workloads() {
        let ns = w.metadata.namespace();
        let valid = |labels, from| {
            object_revision(labels, from)
                .ok()
                .flatten()
                .filter(|r| valid_revision_name(&r.value).is_ok())
        };
        let (Some(own), Some(theirs)) = (
            valid(&w.metadata.labels, RevisionSource::Workload),
            valid(ix.namespace_labels(ns), RevisionSource::Namespace),
        ) else {
            continue;
        };
        if own.value == theirs.value {
            continue;
        }
        out.add(
            "WEFT0703",
            l,
            &label_path(l, own.key),
            format!(
                "pinned to {:?} by its own {}, apart from its namespace {ns} at {:?}; moving the \
namespace's label or tag does not move it",
                own.value, own.key, theirs.value
            ),
            format!(
                "remove {} from the workload to follow its namespace, or keep it while it is on \
another revision on purpose",
                own.key
            ),
        );
    }
}

#[cfg(test)]
mod tests;
