//! What the store returns: rows of transitions, incidents and actions.

use crate::core::health::Status;
use crate::core::incident::IncidentState;
use crate::core::time::Micros;

/// A stored transition.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct TransitionRow {
    pub id: i64,
    pub check: String,
    pub from: Status,
    pub to: Status,
    pub at: Micros,
    pub detail: String,
}

/// A stored incident.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct IncidentRow {
    pub id: u64,
    pub rule: String,
    pub check: String,
    pub opened: Micros,
    pub state: IncidentState,
    pub closed: Option<Micros>,
    pub actions: Vec<ActionRow>,
}

/// A stored action of an incident.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct ActionRow {
    pub step: usize,
    pub action: String,
    pub started: Micros,
    /// None while it runs (or if vigild died during it).
    pub result: Option<String>,
}
