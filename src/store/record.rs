//! What vigild writes to the store, as data: so a write that fails (a full disk) can wait
//! in order and be written when the store can again, instead of being lost.

use rusqlite::ErrorCode;

use super::db::Db;
use crate::core::health::Transition;
use crate::core::incident::IncidentState;
use crate::core::maintenance::{log_push, LogEntry};
use crate::core::time::Micros;

/// One write.
#[derive(Debug, Clone, PartialEq)]
pub enum Record {
    Transition(Transition),
    IncidentOpened {
        id: u64,
        rule: String,
        check: String,
        at: Micros,
    },
    IncidentState {
        id: u64,
        state: IncidentState,
        at: Micros,
    },
    /// An action step: before it runs (no result yet), or one that observe mode only
    /// noted or that was skipped (with its result). The incident becomes `acting`.
    Action {
        incident: u64,
        step: usize,
        action: String,
        at: Micros,
        observed: bool,
        result: Option<String>,
    },
    /// The result of the action step `step` of `incident` started at `started`.
    ActionResult {
        incident: u64,
        step: usize,
        started: Micros,
        result: String,
    },
    Setting {
        key: String,
        value: String,
    },
    /// A step of a maintenance session, appended to the bounded log in
    /// [`MAINTENANCE_LOG_SETTING`] (read, appended and written in one transaction).
    MaintenanceLog(LogEntry),
}

/// The setting that holds the maintenance log (JSON, oldest first).
pub const MAINTENANCE_LOG_SETTING: &str = "maintenance-log";

impl Record {
    /// Writes it, in one transaction.
    pub fn write(&self, db: &Db) -> rusqlite::Result<()> {
        match self {
            Record::Transition(t) => db.record_transition(t),
            Record::IncidentOpened {
                id,
                rule,
                check,
                at,
            } => db.incident_opened(*id, rule, check, *at),
            Record::IncidentState { id, state, at } => db.incident_state(*id, *state, *at),
            Record::Action {
                incident,
                step,
                action,
                at,
                observed,
                result,
            } => db.in_transaction(|db| {
                db.incident_state(*incident, IncidentState::Acting, *at)?;
                let row = db.action_started(*incident, *step, action, *at, *observed)?;
                match result {
                    Some(r) => db.action_finished(row, r),
                    None => Ok(()),
                }
            }),
            Record::ActionResult {
                incident,
                step,
                started,
                result,
            } => db.action_finished_at(*incident, *step, *started, result),
            Record::Setting { key, value } => db.set_setting(key, value),
            Record::MaintenanceLog(entry) => db.in_transaction(|db| {
                let mut log: Vec<LogEntry> = db
                    .setting(MAINTENANCE_LOG_SETTING)?
                    .and_then(|t| serde_json::from_str(&t).ok())
                    .unwrap_or_default();
                log_push(&mut log, entry.clone());
                let text = serde_json::to_string(&log).unwrap_or_default();
                db.set_setting(MAINTENANCE_LOG_SETTING, &text)
            }),
        }
    }

    /// What it is, for people: `a transition of root-disk`, `incident 4`.
    pub fn what(&self) -> String {
        match self {
            Record::Transition(t) => format!("a transition of {}", t.check),
            Record::IncidentOpened { id, .. } | Record::IncidentState { id, .. } => {
                format!("incident {id}")
            }
            Record::Action {
                incident, action, ..
            } => format!("`{action}` of incident {incident}"),
            Record::ActionResult { incident, .. } => {
                format!("an action result of incident {incident}")
            }
            Record::Setting { key, .. } => format!("the setting {key}"),
            Record::MaintenanceLog(e) => format!("the maintenance log entry `{}`", e.event),
        }
    }
}

/// Whether a failed write may succeed later (a full or failing disk, a lock held by
/// another process), so the record waits; anything else will never succeed and is dropped.
pub fn is_retryable(e: &rusqlite::Error) -> bool {
    matches!(
        e.sqlite_error_code(),
        Some(
            ErrorCode::DiskFull
                | ErrorCode::SystemIoFailure
                | ErrorCode::CannotOpen
                | ErrorCode::ReadOnly
                | ErrorCode::DatabaseBusy
                | ErrorCode::DatabaseLocked
                | ErrorCode::OutOfMemory
        )
    )
}
