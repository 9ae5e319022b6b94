//! The revisions of a running `weft up` and its tags, as `revisions.json` in its runtime
//! directory (written by `weft up` only; the commands ask it through [`crate::requests`]).
//!
//! A revision is a name, a `weft` binary and the mesh settings its control plane serves with
//! (`--set`); each installed revision runs a control plane of its own, and a proxy's binary is
//! its revision's. A tag is a mutable pointer to a revision. A pod names its revision with the
//! label `weft.dev/rev` (on its Workload, else its Namespace): a tag first, else a revision;
//! without a label, the `default` tag. Names of tags and revisions never collide, so a label
//! means one thing. The first revision is the one `weft up` starts with (`--revision`, by
//! default the version: `v0-1-0`); the `default` tag points at it.

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::rundir::RunDir;

/// The tag a pod without a revision label follows.
pub const DEFAULT_TAG: &str = "default";

/// One revision: what its control plane and proxies run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Revision {
    pub name: String,
    /// The `weft` executable of its control plane and proxies.
    pub binary: PathBuf,
    /// What `BINARY version` says: the build version and its discovery protocol.
    pub version: String,
    pub protocol: u32,
    /// Its mesh settings, `key=value` as given to `weft install --set`.
    #[serde(default)]
    pub sets: Vec<String>,
    pub installed_at_ms: u64,
    /// Uninstalled: kept so indexes stay put while `weft up` runs, never shown or used.
    #[serde(default)]
    pub uninstalled: bool,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Registry {
    /// In install order; a revision's index is its control plane's slot.
    pub revisions: Vec<Revision>,
    /// Tag → revision.
    pub tags: BTreeMap<String, String>,
}

/// A revision or tag name: a DNS label starting with a letter.
pub fn check_name(what: &str, name: &str) -> Result<(), String> {
    let ok = !name.is_empty()
        && name.len() <= 63
        && name.starts_with(|c: char| c.is_ascii_lowercase())
        && !name.ends_with('-')
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
    match ok {
        true => Ok(()),
        false => Err(format!(
            "{what} name {name:?} is not valid: lowercase letters, digits and '-', starting \
             with a letter, at most 63 characters (e.g. canary, v0-2-0)"
        )),
    }
}

/// The name `weft up` gives its first revision by default: the version, as `v0-1-0`.
pub fn version_name(version: &str) -> String {
    format!("v{}", version.replace(['.', '+'], "-"))
}

impl Registry {
    /// The registry of a mesh that starts with `first`, the `default` tag pointing at it.
    pub fn first(first: Revision) -> Registry {
        let tags = BTreeMap::from([(DEFAULT_TAG.to_string(), first.name.clone())]);
        Registry {
            revisions: vec![first],
            tags,
        }
    }

    /// The installed revisions, with their indexes.
    pub fn installed(&self) -> impl Iterator<Item = (usize, &Revision)> {
        self.revisions
            .iter()
            .enumerate()
            .filter(|(_, r)| !r.uninstalled)
    }

    /// The index of installed revision `name`.
    pub fn index(&self, name: &str) -> Option<usize> {
        self.installed()
            .find(|(_, r)| r.name == name)
            .map(|(i, _)| i)
    }

    pub fn get(&self, name: &str) -> Option<&Revision> {
        self.index(name).map(|i| &self.revisions[i])
    }

    fn names(&self) -> String {
        let names: Vec<&str> = self.installed().map(|(_, r)| r.name.as_str()).collect();
        names.join(", ")
    }

    fn tag_list(&self) -> String {
        let tags: Vec<String> = (self.tags.iter())
            .map(|(t, r)| format!("{t} → {r}"))
            .collect();
        match tags.is_empty() {
            true => "none".into(),
            false => tags.join(", "),
        }
    }

    /// The revision a label value means (a tag, else a revision; none: the `default` tag).
    pub fn resolve(&self, label: Option<&str>) -> Result<String, String> {
        let name = label.unwrap_or(DEFAULT_TAG);
        if let Some(rev) = self.tags.get(name) {
            return match self.get(rev) {
                Some(_) => Ok(rev.clone()),
                None => Err(format!(
                    "tag {name} points at revision {rev}, which is not installed; fix: weft tag \
                     set {name} --revision REV --overwrite (revisions: {})",
                    self.names()
                )),
            };
        }
        match (self.get(name), label) {
            (Some(_), _) => Ok(name.to_string()),
            (None, None) => Err(format!(
                "no `default` tag: pods without a weft.dev/rev label have no revision; fix: \
                 weft tag set default --revision REV (revisions: {})",
                self.names()
            )),
            (None, Some(_)) => Err(format!(
                "weft.dev/rev: {name} names no revision or tag (revisions: {}; tags: {}); fix: \
                 weft tag set {name} --revision REV, or change the label",
                self.names(),
                self.tag_list()
            )),
        }
    }

    /// Whether `name` may be a new revision.
    pub fn check_install(&self, name: &str) -> Result<(), String> {
        check_name("revision", name)?;
        if self.get(name).is_some() {
            return Err(format!(
                "revision {name} is already installed; uninstall it first (weft uninstall \
                 --revision {name}) or choose another name"
            ));
        }
        if self.tags.contains_key(name) {
            return Err(format!(
                "{name} is a tag; a revision cannot have a tag's name (a label would mean both)"
            ));
        }
        Ok(())
    }

    /// The tags that point at revision `name`.
    pub fn tags_of(&self, name: &str) -> Vec<&str> {
        (self.tags.iter())
            .filter(|(_, r)| r.as_str() == name)
            .map(|(t, _)| t.as_str())
            .collect()
    }

    /// Points `tag` at `revision`; what it did, or why not.
    pub fn set_tag(
        &mut self,
        tag: &str,
        revision: &str,
        overwrite: bool,
    ) -> Result<String, String> {
        check_name("tag", tag)?;
        if self.get(revision).is_none() {
            return Err(format!(
                "no revision {revision}; installed: {}; install it first with weft install \
                 --revision {revision}",
                self.names()
            ));
        }
        if self.get(tag).is_some() {
            return Err(format!(
                "{tag} is a revision; a tag cannot have a revision's name (a label would mean both)"
            ));
        }
        match self.tags.get(tag) {
            Some(old) if old == revision => Ok(format!("tag {tag} already points at {revision}")),
            Some(old) if !overwrite => Err(format!(
                "tag {tag} points at {old}; add --overwrite to point it at {revision}"
            )),
            old => {
                let was = old.map(|o| format!(" (was {o})")).unwrap_or_default();
                self.tags.insert(tag.into(), revision.into());
                Ok(format!(
                    "tag {tag} → {revision}{was}; pods following it move when restarted \
                     (weft rollout restart)"
                ))
            }
        }
    }

    /// Removes `tag`, unless pods still follow it (`users`).
    pub fn remove_tag(&mut self, tag: &str, users: &[String]) -> Result<String, String> {
        let Some(rev) = self.tags.get(tag).cloned() else {
            return Err(format!("no tag {tag}; tags: {}", self.tag_list()));
        };
        if !users.is_empty() {
            return Err(format!(
                "tag {tag} is still used by {}; relabel them first (weft.dev/rev) or point the \
                 tag elsewhere with weft tag set {tag} --revision REV --overwrite",
                users.join(", ")
            ));
        }
        self.tags.remove(tag);
        Ok(format!("tag {tag} removed (it pointed at {rev})"))
    }

    /// Why revision `name` cannot be uninstalled now: the tags that point at it and the
    /// proxies (`users`) that run on it.
    pub fn uninstall_blockers(&self, name: &str, users: &[String]) -> Vec<String> {
        let tags = (self.tags_of(name).into_iter()).map(|t| {
            format!("tag {t} points at it (fix: weft tag set {t} --revision REV --overwrite)")
        });
        let proxies = users.iter().map(|p| {
            format!("{p} runs on it (fix: weft upgrade --to REV, or weft rollout restart)")
        });
        tags.chain(proxies).collect()
    }

    pub fn read(dir: &RunDir) -> Option<Registry> {
        let bytes = std::fs::read(file(dir)).ok()?;
        serde_json::from_slice(&bytes).ok()
    }

    /// Writes it whole (through a rename).
    pub fn write(&self, dir: &RunDir) -> std::io::Result<()> {
        let tmp = file(dir).with_extension("tmp");
        std::fs::write(&tmp, serde_json::to_vec_pretty(self)?)?;
        std::fs::rename(tmp, file(dir))
    }
}

fn file(dir: &RunDir) -> PathBuf {
    dir.path.join("revisions.json")
}

#[cfg(test)]
mod tests;
