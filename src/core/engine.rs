//! The policy engine: rules over check statuses → decisions. Pure: it takes statuses and
//! `now`, and returns what to do; the daemon carries the decisions out and records them.
//!
//! Per rule and target (the check a rule matched) the engine keeps a track: since when the
//! rule's condition holds (`for` hysteresis), the open incident, the ladder step, the time
//! of the last action (`cooldown`), and the times of recent actions (`limit`, a sliding
//! window that forgets on its own). A check that stays `ok` for a whole limit window resets
//! its ladder to the first step.

use std::collections::{HashMap, VecDeque};
use std::time::Duration;

use crate::core::action::{Action, Target};
use crate::core::health::Status;
use crate::core::incident::IncidentState;
use crate::core::rule::{Limit, Mode, Rule, Selector};
use crate::core::time::{micros, Micros};

/// Engine-wide settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Globals {
    /// Reboots across all rules.
    pub reboot_limit: Limit,
}

impl Default for Globals {
    fn default() -> Self {
        Globals {
            reboot_limit: Limit {
                count: 1,
                window: Duration::from_secs(6 * 3600),
            },
        }
    }
}

/// What the engine decided.
#[derive(Debug, Clone, PartialEq)]
pub enum Decision {
    /// A rule's condition held for `for`: an incident begins.
    Opened {
        incident: u64,
        rule: String,
        check: String,
    },
    /// Carry out this action (or, with `observe`, record that it would have been).
    Act {
        incident: u64,
        rule: String,
        check: String,
        step: usize,
        action: Action,
        observe: bool,
    },
    /// An action was due but not taken, and why (maintenance, reboot limit, `{target}`).
    Held {
        incident: u64,
        rule: String,
        check: String,
        action: Action,
        reason: String,
    },
    /// A step that cannot apply to this check (`{target}` on a check that names no
    /// container or unit): recorded as skipped, and the ladder moves on to the next step.
    Skipped {
        incident: u64,
        rule: String,
        check: String,
        step: usize,
        action: Action,
        reason: String,
    },
    /// The rule reached its limit: no more actions until the check is ok.
    Exhausted {
        incident: u64,
        rule: String,
        check: String,
    },
    /// The check is ok again.
    Resolved {
        incident: u64,
        rule: String,
        check: String,
    },
    /// The incident can no longer be judged (its check or rule is gone), and why.
    Closed {
        incident: u64,
        rule: String,
        check: String,
        reason: String,
    },
}

#[derive(Debug, Clone, Default)]
struct Track {
    condition_since: Option<Micros>,
    ok_since: Option<Micros>,
    incident: Option<(u64, IncidentState)>,
    step: usize,
    last_action: Option<Micros>,
    actions: VecDeque<Micros>,
    /// The reason of the last `Held`, so a held action is reported once, not every tick.
    held: Option<String>,
    /// An action of this track is running: nothing else is decided until it is done, and
    /// the cooldown counts from its end.
    in_flight: bool,
}

/// The engine's state.
#[derive(Debug, Clone, Default)]
pub struct Engine {
    rules: Vec<Rule>,
    globals: Globals,
    /// By rule name, then check name.
    tracks: HashMap<String, HashMap<String, Track>>,
    reboots: VecDeque<Micros>,
    next_incident: u64,
    /// While an update run is active: what its actions must not touch.
    update_hold: Option<UpdateHold>,
}

/// What an active update run holds rules off: actions on its targets, and reboots.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UpdateHold {
    pub run: String,
    /// The units and containers the run restarts.
    pub targets: Vec<Target>,
}

impl UpdateHold {
    /// Why `action` must wait, if it must.
    pub fn holds(&self, action: &Action) -> Option<String> {
        let touches = match action {
            Action::Restart(t) | Action::Start(t) | Action::Stop(t) => self.targets.contains(t),
            Action::PruneDocker | Action::Reboot => true,
            _ => false,
        };
        touches.then(|| format!("update run {} is in progress", self.run))
    }
}

impl Engine {
    /// An engine with these rules.
    pub fn new(rules: Vec<Rule>, globals: Globals) -> Engine {
        Engine {
            rules,
            globals,
            next_incident: 1,
            ..Default::default()
        }
    }

    /// Replaces the rules (reload). Tracks of rules that still exist, with open incidents,
    /// ladders and limit windows, are kept.
    pub fn set_rules(&mut self, rules: Vec<Rule>, globals: Globals) -> Vec<Decision> {
        let mut out = Vec::new();
        self.tracks.retain(|rule, ts| {
            let keep = rules.iter().any(|r| &r.name == rule);
            if !keep {
                for (check, t) in ts.iter() {
                    if let Some((id, _)) = t.incident {
                        out.push(Decision::Closed {
                            incident: id,
                            rule: rule.clone(),
                            check: check.clone(),
                            reason: "its rule was removed by a reload".into(),
                        });
                    }
                }
            }
            keep
        });
        self.rules = rules;
        self.globals = globals;
        out
    }

    /// An action of rule `rule` on `check` finished at `now`: the cooldown starts now.
    pub fn action_done(&mut self, rule: &str, check: &str, now: Micros) {
        if let Some(t) = self.tracks.get_mut(rule).and_then(|ts| ts.get_mut(check)) {
            t.in_flight = false;
            t.last_action = Some(now);
        }
    }

    /// Holds actions that touch an update run's targets while it is active (`None` ends
    /// the hold: held incidents act at the next tick).
    pub fn set_update_hold(&mut self, hold: Option<UpdateHold>) {
        self.update_hold = hold;
    }

    /// Reboots carried out before this run (from the store), so the global limit holds
    /// across the reboots it limits.
    pub fn restore_reboots(&mut self, times: Vec<Micros>) {
        self.reboots = times.into();
    }

    /// The id the next incident gets.
    pub fn next_incident(&self) -> u64 {
        self.next_incident
    }

    /// Incident ids continue from here (the store's next id, so they stay unique).
    pub fn set_next_incident(&mut self, id: u64) {
        self.next_incident = self.next_incident.max(id);
    }

    /// Whether any rule is loaded.
    pub fn has_rules(&self) -> bool {
        !self.rules.is_empty()
    }

    /// Open (not resolved) incidents: (id, rule, check, state).
    pub fn open_incidents(&self) -> Vec<(u64, String, String, IncidentState)> {
        let mut v: Vec<_> = self
            .tracks
            .iter()
            .flat_map(|(rule, ts)| {
                ts.iter().filter_map(move |(check, t)| {
                    t.incident
                        .map(|(id, st)| (id, rule.clone(), check.clone(), st))
                })
            })
            .collect();
        v.sort_by_key(|i| i.0);
        v
    }

    /// One evaluation: the current status of every check, and whether maintenance is on.
    pub fn tick(
        &mut self,
        now: Micros,
        checks: &[(String, Status)],
        maintenance: bool,
    ) -> Vec<Decision> {
        let mut out = Vec::new();
        let reboot_window = micros(self.globals.reboot_limit.window);
        while self
            .reboots
            .front()
            .is_some_and(|&t| now.saturating_sub(t) >= reboot_window)
        {
            self.reboots.pop_front();
        }
        let index: HashMap<&str, Status> = checks.iter().map(|(n, s)| (n.as_str(), *s)).collect();
        for rule in &self.rules {
            let tracks = match self.tracks.get_mut(&rule.name) {
                Some(t) => t,
                None => self.tracks.entry(rule.name.clone()).or_default(),
            };
            let mut step = |check: &str, status: Status| {
                let track = match tracks.get_mut(check) {
                    Some(t) => t,
                    None => tracks.entry(check.to_string()).or_default(),
                };
                step_track(
                    rule,
                    check,
                    status,
                    now,
                    maintenance,
                    track,
                    &mut self.reboots,
                    self.globals.reboot_limit.count,
                    &mut self.next_incident,
                    self.update_hold.as_ref(),
                    &mut out,
                );
            };
            match &rule.on {
                Selector::Glob(_) => {
                    for (check, status) in checks {
                        if rule.on.matches(check) {
                            step(check, *status);
                        }
                    }
                }
                Selector::Check(name) => {
                    if let Some(status) = index.get(name.as_str()) {
                        step(name, *status);
                    }
                }
            }
            // Tracks of checks that no longer exist (a container removed): close and forget.
            tracks.retain(|check, t| {
                let present = index.contains_key(check.as_str());
                if !present {
                    if let Some((id, _)) = t.incident.take() {
                        out.push(Decision::Closed {
                            incident: id,
                            rule: rule.name.clone(),
                            check: check.clone(),
                            reason: format!("check {check} no longer exists"),
                        });
                    }
                }
                present || t.in_flight
            });
        }
        out
    }
}

/// How long a check must stay ok before an incident its rule gave up on resolves.
pub const EXHAUSTED_SETTLE: Duration = Duration::from_secs(60);

#[allow(clippy::too_many_arguments)]
fn step_track(
    rule: &Rule,
    check: &str,
    status: Status,
    now: Micros,
    maintenance: bool,
    t: &mut Track,
    reboots: &mut VecDeque<Micros>,
    reboot_count: u32,
    next_incident: &mut u64,
    update_hold: Option<&UpdateHold>,
    out: &mut Vec<Decision>,
) {
    let window = micros(rule.limit.window);
    while t
        .actions
        .front()
        .is_some_and(|&a| now.saturating_sub(a) >= window)
    {
        t.actions.pop_front();
    }
    // Ok for a whole window: the ladder starts again at its first step.
    if status == Status::Ok {
        let since = *t.ok_since.get_or_insert(now);
        if now.saturating_sub(since) >= window {
            t.step = 0;
        }
    } else {
        t.ok_since = None;
    }
    let holds = rule.when.holds(status);
    if !holds {
        t.condition_since = None;
        // An incident the rule gave up on resolves only once the check has been ok for
        // EXHAUSTED_SETTLE (or the limit's window, if shorter): a check that flaps (a container dying 100 ms after
        // each start) keeps its one exhausted incident instead of opening a new one with
        // every death. One that is open or acting resolves with the first ok reading.
        let exhausted = matches!(t.incident, Some((_, IncidentState::Exhausted)));
        let settle = window.min(micros(EXHAUSTED_SETTLE));
        let settled = t
            .ok_since
            .is_some_and(|since| now.saturating_sub(since) >= settle);
        if status == Status::Ok && (!exhausted || settled) {
            if let Some((id, _)) = t.incident.take() {
                t.held = None;
                out.push(Decision::Resolved {
                    incident: id,
                    rule: rule.name.clone(),
                    check: check.into(),
                });
            }
        }
        return;
    }
    let since = *t.condition_since.get_or_insert(now);
    if now.saturating_sub(since) < micros(rule.hold) {
        return;
    }
    let (id, state) = match t.incident {
        Some(i) => i,
        None => {
            let id = *next_incident;
            *next_incident += 1;
            t.incident = Some((id, IncidentState::Open));
            out.push(Decision::Opened {
                incident: id,
                rule: rule.name.clone(),
                check: check.into(),
            });
            (id, IncidentState::Open)
        }
    };
    if state == IncidentState::Exhausted || t.in_flight {
        return;
    }
    if t.last_action
        .is_some_and(|at| now.saturating_sub(at) < micros(rule.cooldown))
    {
        return;
    }
    if t.actions.len() as u32 >= rule.limit.count {
        t.incident = Some((id, IncidentState::Exhausted));
        out.push(Decision::Exhausted {
            incident: id,
            rule: rule.name.clone(),
            check: check.into(),
        });
        return;
    }
    let step = t.step.min(rule.ladder.len() - 1);
    let planned = &rule.ladder[step];
    let mut held = |reason: String| {
        if t.held.as_deref() != Some(reason.as_str()) {
            t.held = Some(reason.clone());
            out.push(Decision::Held {
                incident: id,
                rule: rule.name.clone(),
                check: check.into(),
                action: planned.clone(),
                reason,
            });
        }
    };
    if maintenance {
        // Nothing happens in maintenance; the ladder does not move.
        held("maintenance mode".into());
        return;
    }
    let Some(action) = planned.resolve(check) else {
        let reason = format!("{{target}} has no meaning for check {check}");
        if step + 1 < rule.ladder.len() {
            // Skipped, not taken: the next step comes at the next tick, without a cooldown.
            out.push(Decision::Skipped {
                incident: id,
                rule: rule.name.clone(),
                check: check.into(),
                step,
                action: planned.clone(),
                reason,
            });
            t.step = step + 1;
        } else {
            held(reason);
        }
        return;
    };
    if let Some(reason) = update_hold.and_then(|h| h.holds(&action)) {
        // Held, not dropped: the ladder does not move, and it acts once the run is over.
        held(reason);
        return;
    }
    if action.is_reboot() && rule.mode == Mode::Enforce && reboots.len() as u32 >= reboot_count {
        held("the global reboot limit is reached".into());
        return;
    }
    t.held = None;
    if action.is_reboot() && rule.mode == Mode::Enforce {
        reboots.push_back(now);
    }
    t.actions.push_back(now);
    t.last_action = Some(now);
    // Observed steps take no time; real ones are in flight until `action_done`.
    t.in_flight = rule.mode == Mode::Enforce;
    t.step = step + 1;
    t.incident = Some((id, IncidentState::Acting));
    out.push(Decision::Act {
        incident: id,
        rule: rule.name.clone(),
        check: check.into(),
        step,
        action,
        observe: rule.mode == Mode::Observe,
    });
}

#[cfg(test)]
mod tests;
