//! The update engine's states, as every surface reports them.
//!
//! A run moves `verified → staged → backed-up → applying → gating → committed`, or from any
//! point after staging `→ rolling-back → gating → rolled-back` (`failed` when even the
//! rollback does not pass its gate); the machine itself is [`crate::core::update_run`].
//! `refused` ends a run whose bundle failed verification while it was being staged, before
//! anything on the box changed (DESIGN.md has no word for that end: it is neither a
//! rollback nor a failure of the box).

use std::fmt;

use serde::{Deserialize, Serialize};

/// Where an update run stands.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum UpdateState {
    /// No update run is going on.
    #[default]
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
    /// The bundle failed verification while it was staged; nothing on the box changed.
    Refused,
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
        UpdateState::Refused,
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
            UpdateState::Refused => "refused",
        }
    }

    /// Whether a run in this state is over.
    pub fn is_final(self) -> bool {
        matches!(
            self,
            UpdateState::Idle
                | UpdateState::Committed
                | UpdateState::RolledBack
                | UpdateState::Failed
                | UpdateState::Refused
        )
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

/// What `GetUpdate` answers (and `vigilctl update status --json` shows).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct UpdateDocument {
    /// The active run's state, or `idle`.
    pub state: UpdateState,
    /// The active run, else the last one.
    pub run: Option<RunDocument>,
    /// Newest first, without their events.
    pub history: Vec<RunDocument>,
    /// The last bundle a USB stick offered (`[update] usb = "notify"`).
    pub offered: Option<OfferedDocument>,
}

/// One update run.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct RunDocument {
    pub id: String,
    /// `apply` or `rollback`.
    pub kind: String,
    pub bundle: String,
    pub name: String,
    pub version: String,
    /// The release `current` pointed at when the run began: the one an apply replaces,
    /// and for a rollback run the one it takes back (its `version` is where it returns).
    pub previous: Option<String>,
    pub state: UpdateState,
    /// Progress within the state, 0 to 1.
    pub fraction: f64,
    /// RFC 3339, wall clock (display only).
    pub started: String,
    pub ended: Option<String>,
    pub detail: String,
    #[serde(default)]
    pub events: Vec<RunEventDocument>,
}

/// One journal entry of a run.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct RunEventDocument {
    pub at: String,
    pub state: UpdateState,
    pub what: String,
    pub detail: String,
}

/// A bundle a stick offered.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct OfferedDocument {
    pub bundle: String,
    pub name: String,
    pub version: String,
    pub at: String,
}

/// What `OfferUpdate` did with a stick.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct OfferAnswer {
    /// `applying`, `announced`, `ignored` or `none`.
    pub action: String,
    pub bundle: Option<String>,
    pub version: Option<String>,
    pub run: Option<String>,
    pub detail: String,
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
