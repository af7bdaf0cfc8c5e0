//! Live changes: what a fedsync peer can do, as it told us.

/// A peer's version and capabilities (its handshake's `fedsync` extension,
/// or its capability document).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct PeerCapabilities {
    pub version: String,
    pub capabilities: Vec<String>,
}

impl PeerCapabilities {
    /// It sends change notices when its records change, and takes ours.
    pub const CHANGE_NOTICES: &'static str = "change-notices";

    pub fn has(&self, capability: &str) -> bool {
        self.capabilities.iter().any(|c| c == capability)
    }

    /// The capabilities as stored: comma-separated, sorted, deduplicated;
    /// names that are not plain words (a peer's nonsense) are left out.
    pub fn joined(&self) -> String {
        let mut names: Vec<&str> = self
            .capabilities
            .iter()
            .map(String::as_str)
            .filter(|c| is_name(c))
            .collect();
        names.sort_unstable();
        names.dedup();
        names.join(",")
    }

    /// The stored form back.
    pub fn split(text: &str) -> Vec<String> {
        text.split(',')
            .filter(|c| is_name(c))
            .map(str::to_owned)
            .collect()
    }
}

/// A capability name: 1 to 64 of `a-z`, `0-9`, `-`.
fn is_name(text: &str) -> bool {
    !text.is_empty()
        && text.len() <= 64
        && text
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn capabilities_are_stored_as_sorted_plain_names() {
        let caps = PeerCapabilities {
            version: "1.2.3".into(),
            capabilities: vec![
                "zeta".into(),
                "change-notices".into(),
                "Bad Name".into(),
                "change-notices".into(),
                "a,b".into(),
            ],
        };
        assert_eq!(caps.joined(), "change-notices,zeta");
        assert_eq!(
            PeerCapabilities::split("change-notices,zeta,,"),
            vec!["change-notices", "zeta"]
        );
        assert!(caps.has(PeerCapabilities::CHANGE_NOTICES));
        assert!(!PeerCapabilities::default().has(PeerCapabilities::CHANGE_NOTICES));
    }
}
