//! The update engine's states, as every surface reports them.
//!
//! The state machine of the update issues moves through these; today vigild has no update
//! engine yet, so it is always [`UpdateState::Idle`].

use std::fmt;

use serde::Serialize;

/// Where an update run stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum UpdateState {
    /// No update run is going on.
    Idle,
    Verified,
    Staged,
    BackedUp,
    Applying,
    Gating,
    Committed,
    RollingBack,
    RolledBack,
    /// Even the rollback did not pass its gate.
    Failed,
}

impl UpdateState {
    /// Every state, in the order a run passes them.
    pub const ALL: &'static [UpdateState] = &[
        UpdateState::Idle,
        UpdateState::Verified,
        UpdateState::Staged,
        UpdateState::BackedUp,
        UpdateState::Applying,
        UpdateState::Gating,
        UpdateState::Committed,
        UpdateState::RollingBack,
        UpdateState::RolledBack,
        UpdateState::Failed,
    ];

    /// The name on D-Bus, in the store and in `vigilctl` (`backed-up`, `rolling-back`).
    pub fn as_str(self) -> &'static str {
        match self {
            UpdateState::Idle => "idle",
            UpdateState::Verified => "verified",
            UpdateState::Staged => "staged",
            UpdateState::BackedUp => "backed-up",
            UpdateState::Applying => "applying",
            UpdateState::Gating => "gating",
            UpdateState::Committed => "committed",
            UpdateState::RollingBack => "rolling-back",
            UpdateState::RolledBack => "rolled-back",
            UpdateState::Failed => "failed",
        }
    }

    /// Parses [`as_str`](Self::as_str).
    pub fn parse(s: &str) -> Option<UpdateState> {
        UpdateState::ALL.iter().copied().find(|u| u.as_str() == s)
    }
}

impl fmt::Display for UpdateState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn states_round_trip_and_serialize_as_written() {
        for s in UpdateState::ALL {
            assert_eq!(UpdateState::parse(s.as_str()), Some(*s));
            let json = serde_json::to_string(s).unwrap();
            assert_eq!(json, format!("\"{}\"", s.as_str()));
        }
    }
}
