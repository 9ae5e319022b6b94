//! What the revision commands ask a running `weft up` ([`crate::requests`], kind `mesh`):
//! install or uninstall a revision, set or remove a tag, restart pods onto a revision. Each
//! reply is the lines to show, or why it was refused.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

/// The kind of request file the revision commands write.
pub const KIND: &str = "mesh";

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "camelCase")]
pub enum Request {
    /// Start a control plane for a new revision.
    Install {
        revision: String,
        binary: PathBuf,
        sets: Vec<String>,
    },
    /// Stop revision's control plane and remove its state, unless something uses it.
    Uninstall {
        revision: String,
    },
    TagSet {
        tag: String,
        revision: String,
        overwrite: bool,
    },
    TagRemove {
        tag: String,
    },
    /// Restart `pods` (`ns/name`) one at a time; onto `revision` (pinned there until their
    /// labels ask for it) if given, else onto the one their labels ask for.
    Rollout {
        pods: Vec<String>,
        revision: Option<String>,
    },
    /// Forget the pins of `pods` (their labels decide again).
    Unpin {
        pods: Vec<String>,
    },
}

/// What a request did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Reply {
    pub lines: Vec<String>,
    pub error: Option<String>,
}

impl Reply {
    pub fn done(lines: Vec<String>) -> Reply {
        Reply { lines, error: None }
    }

    pub fn refused(error: impl Into<String>) -> Reply {
        Reply {
            lines: vec![],
            error: Some(error.into()),
        }
    }
}

impl From<Result<String, String>> for Reply {
    fn from(r: Result<String, String>) -> Reply {
        match r {
            Ok(line) => Reply::done(vec![line]),
            Err(e) => Reply::refused(e),
        }
    }
}
