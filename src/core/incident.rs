//! Incidents: what a rule opened, and how it ended.

use std::fmt;

use serde::Serialize;

/// An incident's lifecycle.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum IncidentState {
    /// The rule's condition held for `for`; no action yet.
    Open,
    /// The ladder is being climbed.
    Acting,
    /// The rule reached its limit: no more actions until the check is ok.
    Exhausted,
    /// The check is ok again.
    Resolved,
    /// It can no longer be judged: its rule or check is gone.
    Closed,
    /// vigild stopped while it was open.
    Interrupted,
}

impl IncidentState {
    /// Every state, in lifecycle order.
    pub const ALL: &'static [IncidentState] = &[
        IncidentState::Open,
        IncidentState::Acting,
        IncidentState::Exhausted,
        IncidentState::Resolved,
        IncidentState::Closed,
        IncidentState::Interrupted,
    ];

    /// The name used in the store, on D-Bus and by `vigilctl`.
    pub fn as_str(self) -> &'static str {
        match self {
            IncidentState::Open => "open",
            IncidentState::Acting => "acting",
            IncidentState::Exhausted => "exhausted",
            IncidentState::Resolved => "resolved",
            IncidentState::Closed => "closed",
            IncidentState::Interrupted => "interrupted",
        }
    }

    /// Parses [`as_str`](Self::as_str).
    pub fn parse(s: &str) -> Option<IncidentState> {
        IncidentState::ALL
            .iter()
            .copied()
            .find(|st| st.as_str() == s)
    }

    /// Whether the incident is still going on (open, acting or exhausted).
    pub fn is_open(self) -> bool {
        matches!(
            self,
            IncidentState::Open | IncidentState::Acting | IncidentState::Exhausted
        )
    }
}

impl fmt::Display for IncidentState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn states_round_trip_and_only_three_are_open() {
        for s in IncidentState::ALL {
            assert_eq!(IncidentState::parse(s.as_str()), Some(*s));
        }
        let open: Vec<_> = IncidentState::ALL.iter().filter(|s| s.is_open()).collect();
        assert_eq!(open.len(), 3);
        assert!(!IncidentState::Closed.is_open() && !IncidentState::Interrupted.is_open());
        assert_eq!(IncidentState::parse("notastate"), None);
    }
}
