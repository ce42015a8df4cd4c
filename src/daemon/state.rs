//! The daemon's state, all of it owned by the one loop: the configuration in force, the
//! health model and the rule engine, and the handles to everything outside the loop.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::atomic::AtomicBool;
use std::sync::Arc;

use tokio::sync::{mpsc, watch};

use super::config::{Config, Options};
use super::probes::Probes;
use crate::action::Outcome;
use crate::control::Reply;
use crate::core::check::CheckSpec;
use crate::core::engine::{Decision, Engine};
use crate::core::health::{CheckState, HealthModel};
use crate::core::maintenance::Maintenance;
use crate::core::status::{Event, Snapshot};
use crate::core::time::Micros;
use crate::store::Store;

/// What the loop sends the D-Bus publisher: the latest snapshot and what happened.
pub type Publication = (Arc<Snapshot>, Vec<Event>);

/// An action's result on its way back to the loop.
pub struct ActionDone {
    pub incident: u64,
    pub rule: String,
    pub check: String,
    pub step: usize,
    pub action: String,
    pub started: Micros,
    pub outcome: Outcome,
}

/// The checks and what vigild knows about them.
#[derive(Default)]
pub struct Checks {
    pub model: HealthModel,
    /// The specs in force, by check name.
    pub specs: BTreeMap<String, CheckSpec>,
    /// Checks discovered by group probes (`containers`), by group check name.
    pub members: BTreeMap<String, BTreeSet<String>>,
    /// True when the built-in checks are in force.
    pub builtin: bool,
    /// The errors that put vigild on built-in checks, while they last.
    pub config_error: Option<String>,
    /// `RunCheck` callers waiting for a check's next reading.
    pub pending_runs: HashMap<String, Vec<Reply<CheckState>>>,
}

/// The rules and what they are doing.
pub struct Rules {
    pub engine: Engine,
    pub maintenance: Option<Maintenance>,
    /// Decisions made outside a tick (a reload closing incidents), handled at the next one.
    pub pending: Vec<Decision>,
}

/// Handles to what runs outside the loop.
pub struct Io {
    pub store: Store,
    pub snap_tx: watch::Sender<Arc<Snapshot>>,
    pub pub_tx: mpsc::UnboundedSender<Publication>,
    pub done_tx: mpsc::UnboundedSender<ActionDone>,
    pub probes: Probes,
}

/// A reload in flight off the loop, and the callers waiting for its answer.
#[derive(Default)]
pub struct Reloads {
    /// Callers of the reload in flight (`None` when none is; an empty list for SIGHUP).
    pub running: Option<Vec<Reply<String>>>,
    /// Callers that asked while one was in flight: another read follows for them.
    pub queued: Option<Vec<Reply<String>>>,
    /// True while a read is running on the blocking pool, also after its time ran out.
    pub hung: Arc<AtomicBool>,
}

/// Everything the loop owns.
pub struct Daemon {
    pub opts: Options,
    pub cfg: Config,
    pub checks: Checks,
    pub rules: Rules,
    pub io: Io,
    pub reloads: Reloads,
    pub started_at: Micros,
    /// The last `STATUS=` sent to systemd.
    pub status_line: String,
}
