//! Whether this control plane may serve a proxy at all, decided from its first request before
//! anything else: the discovery protocol it speaks (see [`weft_proto::PROTOCOL_VERSION`]) and
//! the revision it belongs to. A refusal is something the operator fixes by where the proxy
//! points or what it runs, so its message names the proxy, both sides and the fix; the stream
//! ends with FAILED_PRECONDITION, and the proxy keeps serving with what it has and retries.

use weft_proto::discovery::Node;
use weft_proto::{OLDEST_SUPPORTED_PROXY, PROTOCOL_VERSION, WEFT_VERSION};

use super::admit::Refused;

/// The metric reason of a proxy speaking a protocol this control plane does not serve.
pub const VERSION_SKEW: &str = "version-skew";
/// The metric reason of a proxy of another revision.
pub const REVISION: &str = "revision";

/// Refuses `node` if it speaks an unsupported protocol or belongs to a revision other than
/// `revision` (this control plane's; `None` serves every revision).
pub fn check(node: &Node, revision: Option<&str>) -> Result<(), Refused> {
    let (id, v) = (&node.id, node.protocol_version);
    let build = match node.weft_version.as_str() {
        "" => "weft version unknown".to_string(),
        w => format!("weft {w}"),
    };
    let serves = format!("protocol {OLDEST_SUPPORTED_PROXY} to {PROTOCOL_VERSION}");
    if v < OLDEST_SUPPORTED_PROXY {
        return Err(Refused {
            reason: VERSION_SKEW,
            message: format!(
                "proxy {id} speaks discovery protocol {v} ({build}); this control plane \
                 (weft {WEFT_VERSION}) serves {serves}: restart the proxy on a newer revision \
                 (weft rollout restart) or point it at a control plane of its own version"
            ),
        });
    }
    if v > PROTOCOL_VERSION {
        let target = match node.revision.as_str() {
            "" => "NAME",
            r => r,
        };
        return Err(Refused {
            reason: VERSION_SKEW,
            message: format!(
                "proxy {id} speaks discovery protocol {v} ({build}), which is newer than this \
                 control plane (weft {WEFT_VERSION}, {serves}): upgrade the control plane first \
                 (weft install --revision {target})"
            ),
        });
    }
    match revision {
        Some(ours) if !node.revision.is_empty() && node.revision != ours => Err(Refused {
            reason: REVISION,
            message: format!(
                "proxy {id} belongs to revision {theirs}; this control plane serves revision \
                 {ours}: point it at {theirs}'s control plane",
                theirs = node.revision
            ),
        }),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node(version: u32, revision: &str) -> Node {
        Node {
            id: "frontend-0.shop".into(),
            protocol_version: version,
            weft_version: "0.0.9".into(),
            revision: revision.into(),
            ..Default::default()
        }
    }

    fn why(node: &Node, revision: Option<&str>) -> String {
        check(node, revision).unwrap_err().message
    }

    #[test]
    fn its_own_protocol_and_the_one_before_are_served() {
        assert_eq!(check(&node(PROTOCOL_VERSION, ""), None), Ok(()));
        assert_eq!(check(&node(OLDEST_SUPPORTED_PROXY, ""), None), Ok(()));
    }

    #[test]
    fn an_older_or_newer_protocol_is_refused_with_both_versions_and_the_fix() {
        let old = check(&node(0, ""), None).unwrap_err();
        assert_eq!(old.reason, VERSION_SKEW);
        assert_eq!(
            old.message,
            format!(
                "proxy frontend-0.shop speaks discovery protocol 0 (weft 0.0.9); this control \
                 plane (weft {WEFT_VERSION}) serves protocol {OLDEST_SUPPORTED_PROXY} to \
                 {PROTOCOL_VERSION}: restart the proxy on a newer revision (weft rollout \
                 restart) or point it at a control plane of its own version"
            )
        );
        let new = why(&node(PROTOCOL_VERSION + 1, "canary"), None);
        assert!(new.contains("is newer than this control plane"), "{new}");
        assert!(new.ends_with("(weft install --revision canary)"), "{new}");
        let unknown = Node {
            weft_version: String::new(),
            ..node(0, "")
        };
        assert!(why(&unknown, None).contains("protocol 0 (weft version unknown)"));
    }

    #[test]
    fn another_revision_is_refused_but_none_on_either_side_is_served() {
        let r = check(&node(PROTOCOL_VERSION, "canary"), Some("stable")).unwrap_err();
        assert_eq!(r.reason, REVISION);
        assert_eq!(
            r.message,
            "proxy frontend-0.shop belongs to revision canary; this control plane serves \
             revision stable: point it at canary's control plane"
        );
        for (theirs, ours) in [
            ("stable", Some("stable")),
            ("", Some("stable")),
            ("canary", None),
        ] {
            assert_eq!(check(&node(PROTOCOL_VERSION, theirs), ours), Ok(()));
        }
    }

    #[test]
    fn the_protocol_is_checked_before_the_revision() {
        let r = check(&node(0, "canary"), Some("stable")).unwrap_err();
        assert_eq!(r.reason, VERSION_SKEW);
    }
}
