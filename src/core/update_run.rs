//! The update state machine: pure, on the monotonic clock the caller passes in.
//!
//! A run takes [`Event`]s and answers the [`Effect`]s to carry out next. The driver (the
//! daemon) commits every change of [`Run::state`] to the update journal *before* it carries
//! out the effects of that change, so a power cut leaves a journal that says how far the
//! box got; [`Run::resume`] turns that back into the effects that finish the run.
//!
//! ```text
//! verified → staged → backed-up → applying → gating → committed
//!               ↘          ↘          ↘         ↘
//!                         rolling-back → gating → rolled-back | failed
//! ```
//!
//! `refused` ends a run whose bundle failed verification while it was staged. Rolling back a
//! run that never reached `applying` changes nothing on the box, so it ends `rolled-back`
//! without a gate; one that did gets its previous release back and gates again.

use std::fmt;
use std::time::Duration;

use super::bundle::{Gate, Step};
use super::time::{micros, Mono};
use super::update::UpdateState;

/// What a run does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Applies a bundle.
    Apply,
    /// Puts the previous release back after a committed run (`Rollback()` with no run
    /// active); starts at `rolling-back`.
    Rollback,
}

impl Kind {
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Apply => "apply",
            Kind::Rollback => "rollback",
        }
    }

    pub fn parse(s: &str) -> Option<Kind> {
        [Kind::Apply, Kind::Rollback]
            .into_iter()
            .find(|k| k.as_str() == s)
    }
}

/// What happened, as the driver tells it.
#[derive(Debug, Clone, PartialEq)]
pub enum Event {
    /// The bundle was verified and copied into staging in one pass.
    Staged,
    /// Staging refused the bundle (verification, space); nothing changed.
    Refused(String),
    /// The backup hooks ran and the image tags were recorded.
    BackedUp,
    /// [`Effect::Prepare`], a [`Effect::Step`] or the [`Effect::Switch`] finished.
    Applied,
    /// It failed: roll back.
    ApplyFailed(String),
    /// What the gate checks say now: all of them `ok` (and read since the gate began).
    Gate { ok: bool, detail: String },
    /// Time passed (the gate's timeout runs without readings too).
    Tick,
    /// The commit hook ran.
    CommitDone,
    /// The commit hook failed: roll back.
    CommitFailed(String),
    /// The operator asked for a rollback.
    RollbackAsked(String),
    /// [`Effect::Rollback`] finished: the previous release is back.
    RolledBack,
    /// It could not put the previous release back.
    RollbackFailed(String),
}

impl Event {
    fn name(&self) -> &'static str {
        match self {
            Event::Staged => "staged",
            Event::Refused(_) => "refused",
            Event::BackedUp => "backed-up",
            Event::Applied => "applied",
            Event::ApplyFailed(_) => "apply-failed",
            Event::Gate { .. } => "gate",
            Event::Tick => "tick",
            Event::CommitDone => "commit-done",
            Event::CommitFailed(_) => "commit-failed",
            Event::RollbackAsked(_) => "rollback-asked",
            Event::RolledBack => "rolled-back",
            Event::RollbackFailed(_) => "rollback-failed",
        }
    }
}

/// What the driver does next.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Effect {
    /// Run the backup hooks and record the tags the images will take.
    Backup,
    /// Make the new release directory from the current one (before the first step).
    Prepare,
    /// Carry out step N of the manifest.
    Step(usize),
    /// Point `releases/current` at the new release.
    Switch,
    /// Start watching the gate checks (readings come as [`Event::Gate`]).
    WatchGate,
    /// Run the commit hook.
    CommitHook,
    /// The run is committed: prune old releases, drop staging, resume held rules.
    Finish,
    /// Put the previous release back: link, image tags, restore hooks (only when
    /// `applied`), restart of the targets, removal of the new release.
    Rollback { applied: bool },
    /// Tell people (webhooks, journal): the box needs someone.
    Alert(String),
}

/// An event that may not come in the state the run is in: a bug in the driver, reported
/// instead of acted on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Misstep {
    pub state: UpdateState,
    pub event: &'static str,
}

impl fmt::Display for Misstep {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "update event {:?} cannot come in state {}",
            self.event, self.state
        )
    }
}

/// Where the gate stands.
#[derive(Debug, Clone, PartialEq, Eq)]
struct GateClock {
    started: Mono,
    /// Since when every gate check has been ok without a break.
    ok_since: Option<Mono>,
}

/// One update run.
#[derive(Debug, Clone, PartialEq)]
pub struct Run {
    pub kind: Kind,
    pub state: UpdateState,
    steps: Vec<Step>,
    window: Mono,
    timeout: Mono,
    /// Steps of `applying` done.
    done: usize,
    /// The effect of `applying` in flight.
    doing: Option<Effect>,
    /// Whether `releases/current` already points at the new release.
    switched: bool,
    /// Whether anything was applied (rollback must undo it, and gate).
    applied: bool,
    /// True once the gate of the new release passed (the journal says so too).
    pub gate_passed: bool,
    /// True while the gate judges the rolled-back release.
    pub rolling_back: bool,
    gate: Option<GateClock>,
    /// Why the run ended the way it did, or what it is doing.
    pub detail: String,
    /// Why it rolls back, while it does.
    rollback_reason: String,
}

impl Run {
    /// A run of a verified bundle, about to be staged.
    pub fn new(steps: Vec<Step>, gate: &Gate) -> Run {
        Run {
            kind: Kind::Apply,
            state: UpdateState::Verified,
            steps,
            window: micros(gate.window),
            timeout: micros(gate.timeout),
            done: 0,
            doing: None,
            switched: false,
            applied: false,
            gate_passed: false,
            rolling_back: false,
            gate: None,
            detail: String::new(),
            rollback_reason: String::new(),
        }
    }

    /// A rollback of a committed run: its effects now, at `now`.
    pub fn rollback_of_committed(gate: &Gate, why: String) -> (Run, Vec<Effect>) {
        let mut run = Run::new(Vec::new(), gate);
        run.kind = Kind::Rollback;
        run.applied = true;
        run.state = UpdateState::RollingBack;
        run.rollback_reason = why.clone();
        run.detail = why;
        (run, vec![Effect::Rollback { applied: true }])
    }

    /// A run the journal says stopped in `state` (vigild died): the run as it continues,
    /// and the effects that finish it. `applied`: the journal shows `applying` was reached;
    /// `gate_passed`: it shows the new release's gate passed.
    pub fn resume(
        kind: Kind,
        state: UpdateState,
        steps: Vec<Step>,
        gate: &Gate,
        applied: bool,
        gate_passed: bool,
        rolling_back: bool,
    ) -> (Run, Vec<Effect>) {
        let mut run = Run::new(steps, gate);
        run.kind = kind;
        run.applied = applied || kind == Kind::Rollback;
        run.gate_passed = gate_passed;
        let effects = match state {
            // Staging never finished: nothing on the box changed.
            UpdateState::Verified => {
                run.state = UpdateState::Refused;
                run.detail = "vigild stopped while the bundle was staged; nothing on the box \
                              changed"
                    .into();
                vec![]
            }
            // The new release passed its gate: finish the commit.
            UpdateState::Gating | UpdateState::Committed if gate_passed && !rolling_back => {
                run.state = UpdateState::Gating;
                if state == UpdateState::Committed {
                    run.state = UpdateState::Committed;
                    vec![Effect::Finish]
                } else {
                    vec![Effect::CommitHook]
                }
            }
            s if s.is_final() => {
                run.state = s;
                vec![]
            }
            // Anything else goes back, from the beginning of the rollback (it is idempotent).
            _ => {
                run.state = UpdateState::RollingBack;
                run.rollback_reason = format!("vigild stopped while the run was {state}");
                run.detail = run.rollback_reason.clone();
                vec![Effect::Rollback {
                    applied: run.applied,
                }]
            }
        };
        (run, effects)
    }

    /// The steps of the bundle.
    pub fn steps(&self) -> &[Step] {
        &self.steps
    }

    /// Whether the new release was switched to.
    pub fn switched(&self) -> bool {
        self.switched
    }

    /// Whether anything was applied.
    pub fn applied(&self) -> bool {
        self.applied
    }

    /// Where `releases/current` switches: before the first `restart` step, else after
    /// the last step.
    fn switch_at(&self) -> usize {
        self.steps
            .iter()
            .position(|s| matches!(s, Step::Restart { .. }))
            .unwrap_or(self.steps.len())
    }

    /// How far the run is, 0 to 1, within its state (staging's bytes are the driver's).
    pub fn fraction(&self, now: Mono) -> f64 {
        match self.state {
            UpdateState::Applying => {
                let total = self.steps.len() + 1;
                (self.done + usize::from(self.switched)) as f64 / total as f64
            }
            UpdateState::Gating => match &self.gate {
                Some(GateClock {
                    ok_since: Some(t), ..
                }) if self.window > 0 => {
                    (now.saturating_sub(*t) as f64 / self.window as f64).min(1.0)
                }
                Some(_) => 0.0,
                None => 1.0,
            },
            s if s.is_final() => 1.0,
            _ => 0.0,
        }
    }

    /// When the gate is next due to decide without a new reading: the end of its window
    /// if every check has been ok since, else its timeout. `None` when no gate runs.
    pub fn gate_due(&self) -> Option<Mono> {
        let g = self.gate.as_ref().filter(|_| !self.gate_passed)?;
        let timeout = g.started.saturating_add(self.timeout);
        Some(match g.ok_since {
            Some(t) => t.saturating_add(self.window).min(timeout),
            None => timeout,
        })
    }

    /// Takes one event at `now`; answers the effects to carry out next, after the driver
    /// committed the new state.
    pub fn on(&mut self, event: Event, now: Mono) -> Result<Vec<Effect>, Misstep> {
        use UpdateState as S;
        let misstep = Misstep {
            state: self.state,
            event: event.name(),
        };
        // An operator's rollback may come at any point before the run ends or rolls back.
        if let Event::RollbackAsked(why) = &event {
            if self.state.is_final() || self.state == S::RollingBack || self.rolling_back {
                return Err(misstep);
            }
            if self.state == S::Verified {
                return Err(misstep);
            }
            return Ok(self.roll_back(why.clone()));
        }
        let effects = match (self.state, event) {
            (S::Verified, Event::Staged) => {
                self.state = S::Staged;
                vec![Effect::Backup]
            }
            (S::Verified, Event::Refused(why)) => {
                self.state = S::Refused;
                self.detail = why;
                vec![]
            }
            (S::Staged, Event::BackedUp) => {
                self.state = S::BackedUp;
                vec![Effect::Prepare]
            }
            (S::Staged | S::BackedUp, Event::ApplyFailed(why)) => self.roll_back(why),
            // The new release directory is ready (not yet current): from here on, a
            // rollback has something to undo.
            (S::BackedUp, Event::Applied) => {
                self.state = S::Applying;
                self.applied = true;
                self.next_apply(now)
            }
            (S::Applying, Event::Applied) => self.next_apply(now),
            (S::Applying, Event::ApplyFailed(why)) => self.roll_back(why),
            (S::Gating, Event::Gate { ok, detail }) => {
                self.detail = detail;
                self.judge(Some(ok), now)
            }
            (S::Gating, Event::Tick) => self.judge(None, now),
            (S::Gating, Event::CommitDone) if self.gate_passed => {
                self.state = S::Committed;
                self.detail = "the new release passed its gate".into();
                vec![Effect::Finish]
            }
            (S::Gating, Event::CommitFailed(why)) if self.gate_passed => {
                self.gate_passed = false;
                self.roll_back(format!("the commit hook failed: {why}"))
            }
            (S::RollingBack, Event::RolledBack) => {
                if self.applied {
                    self.state = S::Gating;
                    self.rolling_back = true;
                    self.gate = Some(GateClock {
                        started: now,
                        ok_since: None,
                    });
                    vec![Effect::WatchGate]
                } else {
                    self.state = S::RolledBack;
                    vec![Effect::Finish]
                }
            }
            (S::RollingBack, Event::RollbackFailed(why)) => {
                self.state = S::Failed;
                self.detail = format!("the rollback failed: {why}");
                vec![Effect::Alert(self.detail.clone())]
            }
            _ => return Err(misstep),
        };
        Ok(effects)
    }

    /// The piece of `applying` in flight finished: the next one — the switch before the
    /// first restart, else the next step — or the gate.
    fn next_apply(&mut self, now: Mono) -> Vec<Effect> {
        match self.doing.take() {
            Some(Effect::Step(_)) => self.done += 1,
            Some(Effect::Switch) => self.switched = true,
            _ => {}
        }
        let next = if !self.switched && self.done == self.switch_at() {
            Effect::Switch
        } else if self.done < self.steps.len() {
            Effect::Step(self.done)
        } else {
            self.state = UpdateState::Gating;
            self.gate = Some(GateClock {
                started: now,
                ok_since: None,
            });
            return vec![Effect::WatchGate];
        };
        self.doing = Some(next.clone());
        vec![next]
    }

    /// The gate at `now`, with a new reading when there is one.
    fn judge(&mut self, ok: Option<bool>, now: Mono) -> Vec<Effect> {
        let Some(g) = self.gate.as_mut() else {
            return vec![];
        };
        if self.gate_passed {
            return vec![];
        }
        match ok {
            Some(true) => {
                g.ok_since.get_or_insert(now);
            }
            Some(false) => g.ok_since = None,
            None => {}
        }
        let held = g.ok_since.map(|t| now.saturating_sub(t));
        if held.is_some_and(|h| h >= self.window) {
            self.gate = None;
            if self.rolling_back {
                self.state = UpdateState::RolledBack;
                self.detail = format!("{}; the previous release passed its gate", self.reason());
                return vec![Effect::Finish];
            }
            self.gate_passed = true;
            return vec![Effect::CommitHook];
        }
        if now.saturating_sub(g.started) >= self.timeout {
            let waited = humantime_short(Duration::from_micros(self.timeout));
            let last = std::mem::take(&mut self.detail);
            self.gate = None;
            if self.rolling_back {
                self.state = UpdateState::Failed;
                self.detail = format!(
                    "{}; the previous release is back, but its gate did not pass within {waited} \
                     either: {last}",
                    self.reason()
                );
                return vec![Effect::Alert(self.detail.clone())];
            }
            return self.roll_back(format!("the gate did not pass within {waited}: {last}"));
        }
        vec![]
    }

    /// Why the run rolled back (kept in `detail` while rolling back).
    fn reason(&self) -> String {
        self.rollback_reason.clone()
    }

    fn roll_back(&mut self, why: String) -> Vec<Effect> {
        self.state = UpdateState::RollingBack;
        self.gate = None;
        self.gate_passed = false;
        self.rollback_reason = why.clone();
        self.detail = why;
        vec![Effect::Rollback {
            applied: self.applied,
        }]
    }
}

/// `90s`, `5m`, `1h 30m`: a duration as people write it.
fn humantime_short(d: Duration) -> String {
    let s = d.as_secs();
    match s {
        0 => format!("{} ms", d.as_millis()),
        s if s % 3600 == 0 => format!("{} h", s / 3600),
        s if s % 60 == 0 => format!("{} min", s / 60),
        s => format!("{s} s"),
    }
}

#[cfg(test)]
mod tests;
