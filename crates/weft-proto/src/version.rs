//! Which discovery protocol a binary speaks, in one place for the control plane and the
//! proxy.
//!
//! The rule: a control plane serves proxies that speak its own protocol version or the one
//! before it. Upgrades then go control plane first: while the new control plane runs beside
//! (or instead of) the old one, the proxies still on the old build keep being served, and are
//! moved over at their own pace. A proxy newer than its control plane, or two versions behind,
//! is refused with a message that says which side to move, rather than served a config it may
//! read wrongly.

/// The discovery protocol this build speaks. Raised whenever the meaning of a message changes
/// in a way an older peer would misread; 1 is the protocol as it was when versions were first
/// sent. A proxy that sends none (0) predates versioning.
pub const PROTOCOL_VERSION: u32 = 2;

/// The oldest protocol a control plane of this build still serves: one version back.
pub const OLDEST_SUPPORTED_PROXY: u32 = PROTOCOL_VERSION - 1;

/// This build's version, sent by the proxy in `Node.weft_version` and shown by the control
/// plane, so a refusal names both builds. Every weft crate shares the workspace version.
pub const WEFT_VERSION: &str = env!("CARGO_PKG_VERSION");

/// Whether a control plane of this build serves a proxy speaking `version`.
pub fn supported(version: u32) -> bool {
    (OLDEST_SUPPORTED_PROXY..=PROTOCOL_VERSION).contains(&version)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serves_its_own_version_and_the_one_before() {
        assert!(supported(PROTOCOL_VERSION));
        assert!(supported(PROTOCOL_VERSION - 1));
        assert!(!supported(0), "a proxy from before versioning");
        assert!(!supported(PROTOCOL_VERSION + 1));
        assert_eq!(OLDEST_SUPPORTED_PROXY + 1, PROTOCOL_VERSION);
    }
}
