//! Revision labels against the running mesh (0704–0706): labels that name nothing, tags that
//! point at a removed revision, and pins to a revision that is going away.

use super::super::{Index, Report};
use super::{MeshRevisions, label_path, labelled};
use crate::annotations::{
    DEFAULT_TAG, REV, RevisionRef, object_revision, revision_label, valid_revision_name,
};
use crate::load::Loaded;

/// What a label's value names in the running mesh. A name that is both a revision and a tag is
/// read as the revision.
enum Named<'m> {
    Revision { going_away: bool },
    Tag { target: &'m str },
    Nothing,
}

impl MeshRevisions {
    fn has_revision(&self, name: &str) -> bool {
        self.revisions
            .iter()
            .chain(&self.going_away)
            .any(|r| r == name)
    }

    fn name(&self, value: &str) -> Named<'_> {
        if self.has_revision(value) {
            Named::Revision {
                going_away: self.going_away.iter().any(|r| r == value),
            }
        } else if let Some(target) = self.tags.get(value) {
            Named::Tag { target }
        } else {
            Named::Nothing
        }
    }

    /// Revisions that stay (running and not going away).
    fn staying(&self) -> impl Iterator<Item = &str> {
        self.revisions
            .iter()
            .filter(|r| !self.going_away.contains(r))
            .map(String::as_str)
    }

    /// Tags that point at a revision that stays.
    fn good_tags(&self) -> impl Iterator<Item = &str> {
        self.tags
            .iter()
            .filter(|(_, r)| self.staying().any(|s| s == r.as_str()))
            .map(|(t, _)| t.as_str())
    }

    /// The revision to suggest pointing a tag at: the `default` tag's if it stays, else the
    /// last that stays.
    fn suggested(&self) -> &str {
        let default = self.tags.get(DEFAULT_TAG).map(String::as_str);
        default
            .filter(|d| self.staying().any(|s| s == *d))
            .or_else(|| self.staying().last())
            .unwrap_or("REVISION")
    }

    /// `revisions: a, b (going away); tags: default -> a`, for messages and `--explain`.
    pub(in crate::analyze) fn describe(&self) -> String {
        let revisions = self
            .revisions
            .iter()
            .chain((self.going_away.iter()).filter(|g| !self.revisions.contains(g)));
        let revisions: Vec<String> = revisions
            .map(|r| match self.going_away.contains(r) {
                true => format!("{r} (going away)"),
                false => r.clone(),
            })
            .collect();
        let tags: Vec<String> = (self.tags.iter())
            .map(|(t, r)| format!("{t} -> {r}"))
            .collect();
        let list = |v: Vec<String>| match v.is_empty() {
            true => "none".to_string(),
            false => v.join(", "),
        };
        format!("revisions: {}; tags: {}", list(revisions), list(tags))
    }
}

pub fn check(ix: &Index<'_>, mesh: &MeshRevisions, out: &mut Report) {
    for (l, from) in labelled(ix) {
        let labels = &l.resource.metadata().labels;
        let Ok(Some(rev)) = object_revision(labels, from) else {
            continue;
        };
        if valid_revision_name(&rev.value).is_err() {
            continue;
        }
        match mesh.name(&rev.value) {
            Named::Revision { going_away: true } => going_away(l, &rev, mesh, out),
            Named::Revision { .. } => {}
            Named::Tag { target } if !mesh.has_revision(target) => {
                dangling(l, Some(&label_path(l, rev.key)), &rev.value, target, out);
            }
            Named::Tag { .. } => {}
            Named::Nothing => names_nothing(l, &rev, mesh, out),
        }
    }
    // Workloads with no label anywhere are served by the default tag.
    let Named::Tag { target } = mesh.name(DEFAULT_TAG) else {
        return;
    };
    if mesh.has_revision(target) {
        return;
    }
    for (l, w) in ix.workloads() {
        let ns = ix.namespace_labels(w.metadata.namespace());
        if revision_label(ns, &w.metadata.labels) == Ok(None) {
            dangling(l, None, DEFAULT_TAG, target, out);
        }
    }
}

/// WEFT0704.
fn names_nothing(l: &Loaded, rev: &RevisionRef, mesh: &MeshRevisions, out: &mut Report) {
    let value = &rev.value;
    out.add(
        "WEFT0704",
        l,
        &label_path(l, rev.key),
        format!(
            "{}={value:?} names neither a revision nor a tag of the running mesh ({})",
            rev.key,
            mesh.describe()
        ),
        format!(
            "create the tag with `weft tag set {value} --revision {}`, or change the label to a \
revision or tag that exists",
            mesh.suggested()
        ),
    );
}

/// WEFT0705: `tag` points at `target`, which is not running. `label` is where the tag is
/// named; `None` for the default tag serving a workload with no label.
fn dangling(l: &Loaded, label: Option<&str>, tag: &str, target: &str, out: &mut Report) {
    let named_by = match label {
        Some(_) => String::new(),
        None => format!("no {REV} label, so the {DEFAULT_TAG} tag serves it; "),
    };
    out.add(
        "WEFT0705",
        l,
        label.unwrap_or("metadata.labels"),
        format!(
            "{named_by}tag {tag:?} points at revision {target:?}, which the running mesh does \
not have, so no control plane serves it"
        ),
        format!(
            "point the tag at a running revision with `weft tag set {tag} --revision R \
--overwrite`, or `weft tag remove {tag}` and relabel what uses it"
        ),
    );
}

/// WEFT0706.
fn going_away(l: &Loaded, rev: &RevisionRef, mesh: &MeshRevisions, out: &mut Report) {
    let tags: Vec<&str> = mesh.good_tags().collect();
    let revisions: Vec<&str> = mesh.staying().collect();
    let mut instead = Vec::new();
    if !tags.is_empty() {
        instead.push(format!("a tag that follows upgrades ({})", tags.join(", ")));
    }
    if !revisions.is_empty() {
        instead.push(format!("the new revision ({})", revisions.join(", ")));
    }
    let fix = match instead.is_empty() {
        true => format!("relabel it with {} of a revision that stays", rev.key),
        false => format!("relabel it with {}: {}", rev.key, instead.join(" or ")),
    };
    out.add(
        "WEFT0706",
        l,
        &label_path(l, rev.key),
        format!(
            "{}={:?} pins it to a revision that is going away; moving tags does not move it",
            rev.key, rev.value
        ),
        fix,
    );
}
