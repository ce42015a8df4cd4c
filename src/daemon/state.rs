//! The daemon's state, all of it owned by the one loop: the configuration in force, the
//! health model and the rule engine, and the handles to everything outside the loop.

use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use tokio::sync::{mpsc, watch, Notify};

use super::config::{Config, Options};
use super::probes::Probes;
use super::update::UpdateLink;
use crate::action::Outcome;
use crate::control::{Pulse, Reply};
use crate::core::check::CheckSpec;
use crate::core::engine::{Decision, Engine};
use crate::core::health::{CheckState, HealthModel};
use crate::core::incident::IncidentState;
use crate::core::maintenance::Maintenance;
use crate::core::status::{
    ActionCounts, ActionTally, Event, OpenIncident, PushStatus, RecentAction, Snapshot,
    OPEN_INCIDENTS_LISTED,
};
use crate::core::time::{Micros, Mono};
use crate::store::{Record, Store};

/// Most events the outbox holds for a publisher that cannot keep up (a wedged bus); the
/// oldest go first, and how many went is counted and logged.
pub const OUTBOX_MAX_EVENTS: usize = 10_000;

/// What happened, on its way to the D-Bus publisher. The publisher reads the latest
/// snapshot itself (from the watch channel), so however many changes pile up while it is
/// busy, it publishes the newest state once and every event in order.
#[derive(Default)]
pub struct Outbox {
    events: Mutex<VecDeque<Event>>,
    dropped: AtomicU64,
    ready: Notify,
    /// Every action event passes here (results come straight from `on_action_done`), so
    /// this is where they are counted for `/metrics`.
    tally: Mutex<ActionTally>,
}

impl Outbox {
    /// Adds events and wakes the publisher (also with none: the snapshot changed).
    pub fn push(&self, events: Vec<Event>) {
        if !events.is_empty() {
            let mut tally = self.tally.lock().unwrap_or_else(|p| p.into_inner());
            let at = crate::sys::clock::now_micros();
            events.iter().for_each(|e| tally.note(e, at));
            drop(tally);
            let mut q = self.events.lock().unwrap_or_else(|p| p.into_inner());
            q.extend(events);
            while q.len() > OUTBOX_MAX_EVENTS {
                q.pop_front();
                self.dropped.fetch_add(1, Ordering::Relaxed);
            }
        }
        self.ready.notify_one();
    }

    /// Waits until something was pushed.
    pub async fn wait(&self) {
        self.ready.notified().await;
    }

    /// Takes every event, and how many were dropped since the last take.
    pub fn take(&self) -> (Vec<Event>, u64) {
        let mut q = self.events.lock().unwrap_or_else(|p| p.into_inner());
        (
            q.drain(..).collect(),
            self.dropped.swap(0, Ordering::Relaxed),
        )
    }

    /// Actions counted so far.
    pub fn actions(&self) -> Arc<ActionCounts> {
        self.tally
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .counts()
    }

    /// The last actions, and when each incident in `open` opened, for the status page.
    pub fn recent(&self, open: &[(u64, String, String, IncidentState)]) -> Recent {
        let tally = self.tally.lock().unwrap_or_else(|p| p.into_inner());
        let list = (open.iter().take(OPEN_INCIDENTS_LISTED))
            .map(|(id, rule, check, state)| OpenIncident {
                id: *id,
                rule: rule.clone(),
                check: check.clone(),
                state: *state,
                opened: tally.opened_at(*id),
            })
            .collect();
        (Arc::new(list), tally.recent())
    }

    /// Forgets every event (nothing is connected to hear them).
    pub fn clear(&self) {
        self.take();
    }
}

/// The incidents going on (bounded) and the last actions, as the snapshot shares them.
pub type Recent = (Arc<Vec<OpenIncident>>, Arc<VecDeque<RecentAction>>);

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
    /// Readings changed metrics or details but no status since the last publication.
    pub unpublished: bool,
}

/// The rules and what they are doing.
pub struct Rules {
    pub engine: Engine,
    pub maintenance: Option<Maintenance>,
    /// Decisions made outside a tick (a reload closing incidents), handled at the next one.
    pub pending: Vec<Decision>,
    /// Incident ids below this are reserved in the store (see `INCIDENT_IDS_SETTING`).
    pub ids_reserved_until: u64,
    /// The last reboots tried (see [`REBOOTS_SETTING`]).
    pub reboots: Vec<RebootMark>,
}

/// Handles to what runs outside the loop.
pub struct Io {
    pub store: Store,
    pub snap_tx: watch::Sender<Arc<Snapshot>>,
    pub outbox: Arc<Outbox>,
    /// When the loop last went round, for the heartbeat.
    pub pulse: Arc<Pulse>,
    pub done_tx: mpsc::UnboundedSender<ActionDone>,
    pub probes: Probes,
    /// The update runner.
    pub update: UpdateLink,
    /// Where the store, the journal and the releases live.
    pub state_dir: std::path::PathBuf,
    /// How the pushes go (an empty list when none is configured).
    pub push: watch::Receiver<Vec<PushStatus>>,
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

/// Where the first incident id not yet reserved is kept.
pub const INCIDENT_IDS_SETTING: &str = "incident_ids_from";
/// How many incident ids are reserved at a time.
pub const INCIDENT_ID_BLOCK: u64 = 1000;

/// The record that says incident ids below `until` may be in use.
pub fn id_floor(until: u64) -> Record {
    Record::Setting {
        key: INCIDENT_IDS_SETTING.into(),
        value: until.to_string(),
    }
}

/// Where the last reboots vigild tried are kept, with both clocks.
pub const REBOOTS_SETTING: &str = "reboots";
/// How many of them are kept.
pub const REBOOT_MARKS_KEPT: usize = 16;

/// A reboot vigild tried: when by each clock, and on which boot.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct RebootMark {
    pub wall: Micros,
    pub mono: Mono,
    pub boot: Option<String>,
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
    /// When it started on the monotonic clock (uptime).
    pub started_mono: Mono,
    /// This boot's id.
    pub boot: Option<String>,
    /// The last `STATUS=` sent to systemd.
    pub status_line: String,
}
