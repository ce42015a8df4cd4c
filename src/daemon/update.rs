//! The update runner: one task that owns the active run and the update journal.
//!
//! The loop passes it the surfaces' requests; it answers them, drives the pure machine of
//! [`crate::core::update_run`] — every change of state durable in the journal before its
//! effects start — and publishes what it is doing: the `GetUpdate` document (the loop puts
//! its state into the snapshot; the D-Bus publisher signals `UpdateProgress`), and the
//! targets the loop's rules must hold off while a run is active. Effects run as their own
//! tasks and come back as events, so a long `docker load` never keeps a rollback request
//! or a progress report waiting.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{mpsc, watch};
use tracing::{error, info, warn};

use super::update_effects::{off, Done, Work};
use super::update_gate::GateWatch;
use super::update_plan::{display_time, Plan, RunEnv, SharedJournal};
use crate::control::UpdateRequest;
use crate::core::action::Action;
use crate::core::bundle::Step;
use crate::core::engine::UpdateHold;
use crate::core::status::Snapshot;
use crate::core::update::{
    OfferedDocument, RunDocument, RunEventDocument, UpdateDocument, UpdateState,
};
use crate::core::update_run::{Effect, Event, Run};
use crate::sys::clock;
use crate::update::journal::{Journal, RunRow};
use crate::update::release::Releases;
use crate::update::staging;

/// How often an active run looks at its gate and reports progress.
pub const TICK: Duration = Duration::from_millis(250);
/// Sleeps until `at` (never, when `None`).
async fn sleep_until(at: Option<tokio::time::Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

/// Runs the history in `GetUpdate` holds.
pub const HISTORY: usize = 20;

/// What the loop and the surfaces hold of the runner.
pub struct UpdateLink {
    pub tx: mpsc::Sender<UpdateRequest>,
    pub doc: watch::Receiver<Arc<UpdateDocument>>,
    pub hold: watch::Receiver<Option<UpdateHold>>,
    /// The settings a run starts with (sent again at each reload).
    pub env: watch::Sender<Arc<RunEnv>>,
}

/// The active run.
pub(super) struct Active {
    pub id: u64,
    pub run: Run,
    pub plan: Plan,
    pub steps: Vec<Step>,
    /// Its journal row when it began.
    pub row: Option<RunRow>,
    pub env: Arc<RunEnv>,
    pub gate: Option<GateWatch>,
    /// An effect is in flight.
    pub busy: bool,
    /// A rollback asked for while a piece was in flight: it starts when that piece ends
    /// (a `docker load` half done is not raced by putting the tags back).
    pub rollback_asked: Option<String>,
}

/// Bytes staged so far, of how many (for progress while staging).
#[derive(Default)]
pub(super) struct Staging {
    pub done: AtomicU64,
    pub total: AtomicU64,
}

pub(super) struct Runner {
    pub env: watch::Receiver<Arc<RunEnv>>,
    pub journal: SharedJournal,
    pub active: Option<Active>,
    pub offered: Option<OfferedDocument>,
    pub snap: watch::Receiver<Arc<Snapshot>>,
    pub doc: watch::Sender<Arc<UpdateDocument>>,
    pub hold: watch::Sender<Option<UpdateHold>>,
    pub done_tx: mpsc::UnboundedSender<(u64, Done)>,
    pub staging: Arc<Staging>,
    /// The last history read from the journal.
    pub history: Vec<RunDocument>,
}

/// Opens the journal, finishes a run vigild died in, and starts the runner.
pub async fn start(
    env: RunEnv,
    snap: watch::Receiver<Arc<Snapshot>>,
) -> Result<UpdateLink, String> {
    let dir = env.state_dir.clone();
    let (journal, moved) = off(move || Journal::open(&dir)).await?;
    if let Some(why) = moved {
        error!(
            vigil_event = "update",
            "the update journal was unusable and was moved aside: {why}"
        );
    }
    let (tx, rx) = mpsc::channel(16);
    let (doc_tx, doc_rx) = watch::channel(Arc::new(UpdateDocument::default()));
    let (hold_tx, hold_rx) = watch::channel(None);
    let (env_tx, env_rx) = watch::channel(Arc::new(env));
    let (done_tx, done_rx) = mpsc::unbounded_channel();
    let mut runner = Runner {
        env: env_rx,
        journal: SharedJournal(Arc::new(std::sync::Mutex::new(journal))),
        active: None,
        offered: None,
        snap,
        doc: doc_tx,
        hold: hold_tx,
        done_tx,
        staging: Arc::new(Staging::default()),
        history: Vec::new(),
    };
    runner.resume().await;
    runner.refresh().await;
    tokio::spawn(runner.run(rx, done_rx));
    Ok(UpdateLink {
        tx,
        doc: doc_rx,
        hold: hold_rx,
        env: env_tx,
    })
}

impl UpdateLink {
    /// A link whose every request is refused with `why` (the journal cannot be opened):
    /// vigild still watches and heals; updates wait until it can write again.
    pub fn unavailable(why: String, env: RunEnv) -> UpdateLink {
        let (tx, mut rx) = mpsc::channel::<UpdateRequest>(16);
        let (_doc_tx, doc) = watch::channel(Arc::new(UpdateDocument::default()));
        let (_hold_tx, hold) = watch::channel(None);
        let (env_tx, _env_rx) = watch::channel(Arc::new(env));
        tokio::spawn(async move {
            let _keep = (_doc_tx, _hold_tx, _env_rx);
            let refuse = format!("updates are unavailable: {why}; fix it and restart vigild");
            while let Some(r) = rx.recv().await {
                let e = Err(refuse.clone());
                match r {
                    UpdateRequest::Apply { reply, .. }
                    | UpdateRequest::Rollback { reply, .. }
                    | UpdateRequest::Offer { reply, .. } => {
                        let _ = reply.send(e);
                    }
                }
            }
        });
        UpdateLink {
            tx,
            doc,
            hold,
            env: env_tx,
        }
    }
}

impl Runner {
    async fn run(
        mut self,
        mut requests: mpsc::Receiver<UpdateRequest>,
        mut done: mpsc::UnboundedReceiver<(u64, Done)>,
    ) {
        let mut tick = tokio::time::interval(TICK);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            // The gate decides as soon as it can: at each new snapshot, and at the moment
            // its window (or timeout) runs out; the tick reports progress between.
            let gating = self
                .active
                .as_ref()
                .is_some_and(|a| a.gate.is_some() && !a.busy);
            let due = self
                .active
                .as_ref()
                .and_then(|a| a.run.gate_due())
                .map(|d| {
                    let wait = d.saturating_sub(clock::now_mono());
                    tokio::time::Instant::now() + Duration::from_micros(wait)
                });
            tokio::select! {
                r = requests.recv() => match r {
                    Some(r) => self.request(r).await,
                    None => return,
                },
                Some((run, d)) = done.recv() => self.done(run, d).await,
                _ = tick.tick(), if self.active.is_some() => self.tick().await,
                Ok(()) = self.snap.changed(), if gating => self.tick().await,
                _ = sleep_until(due), if gating && due.is_some() => self.tick().await,
            }
        }
    }

    async fn request(&mut self, r: UpdateRequest) {
        match r {
            UpdateRequest::Apply { path, reply } => {
                let _ = reply.send(self.apply(&path).await);
            }
            UpdateRequest::Rollback { who, reply } => {
                let _ = reply.send(self.rollback(&who).await);
            }
            UpdateRequest::Offer { dir, reply } => {
                let _ = reply.send(self.offer(&dir).await);
            }
        }
    }

    /// An effect came back.
    async fn done(&mut self, run: u64, d: Done) {
        let Some(a) = self.active.as_mut().filter(|a| a.id == run) else {
            return;
        };
        a.busy = false;
        if let Some(p) = d.plan {
            a.plan = p;
        }
        if d.event == Event::Staged {
            self.staging.done.store(0, Ordering::Relaxed);
        }
        self.step(d.event).await;
        let asked = self
            .active
            .as_mut()
            .filter(|a| a.id == run && !a.busy)
            .and_then(|a| a.rollback_asked.take());
        if let Some(why) = asked {
            let a = self.active.as_ref().expect("still active");
            if !a.run.state.is_final()
                && a.run.state != UpdateState::RollingBack
                && !a.run.rolling_back
            {
                self.step(Event::RollbackAsked(why)).await;
            }
        }
    }

    /// Gate readings and progress.
    async fn tick(&mut self) {
        let snap = self.snap.borrow().clone();
        let event = match self.active.as_ref() {
            Some(a) if a.run.state == UpdateState::Gating && !a.busy => match &a.gate {
                Some(g) => {
                    let (ok, detail) = g.reading(&snap);
                    Some(Event::Gate { ok, detail })
                }
                None => Some(Event::Tick),
            },
            _ => None,
        };
        if let Some(e) = event {
            self.step(e).await;
        }
        self.progress();
    }

    /// Feeds the machine one event: commits the new state, then starts its effects.
    pub(super) async fn step(&mut self, event: Event) {
        let Some(a) = self.active.as_mut() else {
            return;
        };
        let before = a.run.state;
        let passed = a.run.gate_passed;
        let mut effects = match a.run.on(event, clock::now_mono()) {
            Ok(e) => e,
            Err(m) => {
                warn!(vigil_event = "update", "update run {}: {m} (ignored)", a.id);
                return;
            }
        };
        let id = a.id;
        let mut failed = None;
        if a.run.state != before {
            failed = self.record_state(before).await.err();
        }
        let a = self.active.as_ref().expect("still active");
        if failed.is_none() && !passed && a.run.gate_passed {
            // Durable before the commit hook: after a crash, the run commits.
            let d = a.run.detail.clone();
            failed = self
                .journal
                .note(id, "gating", "gate-passed", &d)
                .await
                .err();
        }
        if let Some(e) = failed {
            let a = self.active.as_mut().expect("still active");
            let forward = !a.run.state.is_final()
                && a.run.state != UpdateState::RollingBack
                && !a.run.rolling_back;
            error!(
                vigil_event = "update",
                vigil_update_run = id,
                "update run {id}: cannot write the update journal ({e}){}",
                if forward {
                    "; rolling back instead of going on"
                } else {
                    ""
                }
            );
            if forward {
                // What is not on disk must not happen: the run goes back, the safe way.
                let why = format!("the update journal cannot be written: {e}");
                let from = a.run.state;
                effects = a
                    .run
                    .on(Event::RollbackAsked(why), clock::now_mono())
                    .unwrap_or_default();
                // Best effort: the rollback goes on even if this cannot be written.
                let _ = self.record_state(from).await;
            }
        }
        let state = self.active.as_ref().expect("still active").run.state;
        for e in effects {
            self.launch(e);
        }
        if state.is_final() {
            self.finish().await;
        } else if state != before {
            self.refresh().await;
        }
    }

    /// Writes the active run's state (it came from `before`) to the journal and the log.
    async fn record_state(&mut self, before: UpdateState) -> Result<(), String> {
        let a = self.active.as_ref().expect("an active run");
        let (id, state, detail) = (a.id, a.run.state, a.run.detail.clone());
        let (s, d) = (state.as_str().to_string(), detail.clone());
        let at = super::update_plan::wall_us();
        let ended = state.is_final();
        let written = self
            .journal
            .with(move |j| {
                j.record(id, &s, "state", &d, at, ended)?;
                j.set_detail(id, &d)
            })
            .await;
        let line = format!("update run {id}: {before} → {state}{}", suffix(&detail));
        if matches!(state, UpdateState::Failed | UpdateState::RolledBack) {
            warn!(
                vigil_event = "update",
                vigil_update_run = id,
                vigil_update_state = state.as_str(),
                "{line}"
            );
        } else {
            info!(
                vigil_event = "update",
                vigil_update_run = id,
                vigil_update_state = state.as_str(),
                "{line}"
            );
        }
        written
    }

    /// Starts one effect.
    pub(super) fn launch(&mut self, effect: Effect) {
        let Some(a) = self.active.as_mut() else {
            return;
        };
        match effect {
            Effect::WatchGate => {
                let sel = a.plan.gate().checks;
                let snap = self.snap.borrow().clone();
                a.gate = Some(GateWatch::begin(sel, &snap));
            }
            Effect::Finish => {}
            Effect::Alert(why) => {
                error!(
                    vigil_event = "update",
                    vigil_update_run = a.id,
                    vigil_update_state = a.run.state.as_str(),
                    "update run {} needs someone: {why}",
                    a.id
                );
                let work = self.work();
                tokio::spawn(async move {
                    let note = work.notification("update-failed", &why);
                    let out = work.env.actuators.run(&Action::Notify, &note).await;
                    info!(
                        vigil_event = "update",
                        "update run {}: alert: {}",
                        work.run,
                        out.to_line()
                    );
                });
            }
            e => {
                a.busy = true;
                let id = a.id;
                let (work, tx) = (self.work(), self.done_tx.clone());
                tokio::spawn(async move {
                    let d = work.carry_out(&e).await;
                    let _ = tx.send((id, d));
                });
            }
        }
    }

    /// What an effect of the active run works on.
    fn work(&self) -> Work {
        let a = self.active.as_ref().expect("an active run");
        Work {
            env: (*a.env).clone(),
            journal: self.journal.clone(),
            run: a.id,
            kind: a.run.kind,
            state: a.run.state,
            plan: a.plan.clone(),
            steps: a.steps.clone(),
        }
    }

    /// The run ended: clean up, lift the hold, publish.
    pub(super) async fn finish(&mut self) {
        let Some(a) = self.active.take() else {
            return;
        };
        let (env, id, state, plan) = (a.env.clone(), a.id, a.run.state, a.plan.clone());
        let r = off(move || {
            let mut said = Vec::new();
            if state == UpdateState::Committed && plan.rollback_of.is_none() {
                let rel = Releases::new(&env.state_dir);
                let mut spare = vec![plan.release.as_str()];
                spare.extend(plan.previous.as_deref());
                let gone = rel
                    .prune(env.keep_releases, &spare)
                    .map_err(|e| format!("pruning releases: {e}"))?;
                if !gone.is_empty() {
                    said.push(format!("pruned release(s) {}", gone.join(", ")));
                }
            }
            staging::discard(&env.state_dir, &id.to_string())
                .map_err(|e| format!("removing its staging: {e}"))?;
            Ok(said.join("; "))
        })
        .await;
        match r {
            Ok(s) if !s.is_empty() => info!(vigil_event = "update", "update run {id}: {s}"),
            Ok(_) => {}
            Err(e) => warn!(
                vigil_event = "update",
                "update run {id} ended {state}, but {e}"
            ),
        }
        self.hold.send_replace(None);
        self.refresh().await;
    }

    /// Re-reads history from the journal and publishes.
    pub(super) async fn refresh(&mut self) {
        let active = self.active.as_ref().map(|a| a.id);
        let read = self
            .journal
            .with(move |j| {
                let runs = j.runs(HISTORY)?;
                let focus = active.or(runs.first().map(|r| r.id));
                let events = match focus {
                    Some(id) => j.events(id)?,
                    None => Vec::new(),
                };
                Ok((runs, events))
            })
            .await;
        match read {
            Ok((runs, events)) => {
                self.history = runs.iter().map(row_doc).collect();
                let ev: Vec<RunEventDocument> = events
                    .iter()
                    .map(|e| RunEventDocument {
                        at: display_time(e.at_us),
                        state: UpdateState::parse(&e.state).unwrap_or_default(),
                        what: e.what.clone(),
                        detail: e.detail.clone(),
                    })
                    .collect();
                self.publish(Some(ev));
            }
            Err(e) => {
                warn!(
                    vigil_event = "update",
                    "cannot read the update journal: {e}"
                );
                self.publish(None);
            }
        }
    }

    /// Publishes progress only (no journal read).
    fn progress(&mut self) {
        self.publish(None);
    }

    fn publish(&mut self, events: Option<Vec<RunEventDocument>>) {
        let old = self.doc.borrow().clone();
        let now = clock::now_mono();
        let run = match &self.active {
            Some(a) => {
                let mut d = a.row.as_ref().map(row_doc).unwrap_or_default();
                d.id = a.id.to_string();
                d.state = a.run.state;
                d.detail = a.run.detail.clone();
                d.fraction = if a.run.state == UpdateState::Verified {
                    let (done, total) = (
                        self.staging.done.load(Ordering::Relaxed),
                        self.staging.total.load(Ordering::Relaxed),
                    );
                    if total > 0 {
                        done as f64 / total as f64
                    } else {
                        0.0
                    }
                } else {
                    a.run.fraction(now)
                };
                Some(d)
            }
            None => self.history.first().cloned(),
        };
        let run = run.map(|mut r| {
            r.events = match &events {
                Some(e) => e.clone(),
                None => old
                    .run
                    .as_ref()
                    .filter(|o| o.id == r.id)
                    .map(|o| o.events.clone())
                    .unwrap_or_default(),
            };
            r
        });
        let doc = UpdateDocument {
            state: self
                .active
                .as_ref()
                .map_or(UpdateState::Idle, |a| a.run.state),
            run,
            history: self.history.clone(),
            offered: self.offered.clone(),
        };
        if *old != doc {
            self.doc.send_replace(Arc::new(doc));
        }
    }
}

/// A journal row as `GetUpdate` shows it (no events).
pub(super) fn row_doc(r: &RunRow) -> RunDocument {
    let state = UpdateState::parse(&r.state).unwrap_or_default();
    RunDocument {
        id: r.id.to_string(),
        kind: r.kind.clone(),
        bundle: r.bundle.clone(),
        name: r.name.clone(),
        version: r.version.clone(),
        previous: r.previous.clone(),
        state,
        fraction: if state.is_final() { 1.0 } else { 0.0 },
        started: display_time(r.started_us),
        ended: r.ended_us.map(display_time),
        detail: r.detail.clone(),
        events: Vec::new(),
    }
}

fn suffix(detail: &str) -> String {
    if detail.is_empty() {
        String::new()
    } else {
        format!(": {detail}")
    }
}
