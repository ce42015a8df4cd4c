//! Carrying out what the engine decides: one function per kind of decision. Each records
//! before it acts, logs with its journal fields, and says what to signal.

use tracing::{error, info, warn};

use super::state::{
    id_floor, ActionDone, Daemon, RebootMark, INCIDENT_ID_BLOCK, REBOOTS_SETTING, REBOOT_MARKS_KEPT,
};
use crate::action::{Notification, Outcome};
use crate::core::action::Action;
use crate::core::engine::Decision;
use crate::core::health::Status;
use crate::core::incident::IncidentState;
use crate::core::status::Event;
use crate::core::time::{rfc3339_millis, Micros, Now};
use crate::store::Record;
use crate::sys::clock::now_mono;

/// How long a reboot waits for its record to reach the disk before it is held.
const REBOOT_RECORD_WAIT: std::time::Duration = std::time::Duration::from_secs(10);

/// What observe mode records instead of a result.
const OBSERVED: &str = "observed: not carried out (mode = observe)";

impl Daemon {
    /// Runs the rules over the current statuses and carries out what they decide. The
    /// engine and maintenance run on the monotonic clock; records carry wall time.
    pub(super) fn evaluate_rules(&mut self, at: Now) -> Vec<Event> {
        // A check that has not been read yet says nothing a rule could act on.
        let statuses: Vec<(String, Status)> = self
            .checks
            .model
            .checks()
            .filter(|c| c.last_probe.is_some())
            .map(|c| (c.name.clone(), c.status))
            .collect();
        if self
            .rules
            .maintenance
            .as_ref()
            .is_some_and(|m| m.is_over(at.mono))
        {
            self.maintenance_over();
        }
        let maintenance = self.rules.maintenance.is_some();
        let mut decisions = std::mem::take(&mut self.rules.pending);
        decisions.extend(self.rules.engine.tick(at.mono, &statuses, maintenance));
        let mut events = Vec::new();
        for d in decisions {
            events.extend(self.decide(d, at));
        }
        events
    }

    /// One decision.
    fn decide(&mut self, d: Decision, at: Now) -> Option<Event> {
        let now = at.wall;
        match d {
            Decision::Opened {
                incident,
                rule,
                check,
            } => Some(self.opened(incident, rule, check, now)),
            Decision::Act {
                incident,
                rule,
                check,
                step,
                action,
                observe: true,
            } => Some(self.observed(incident, &rule, &check, step, &action, now)),
            Decision::Act {
                incident,
                rule,
                check,
                step,
                action,
                observe: false,
            } => {
                self.act(incident, rule, check, step, action, at);
                None
            }
            Decision::Held {
                incident,
                rule,
                action,
                reason,
                ..
            } => {
                info!(vigil_event = "action-held", vigil_incident = incident, vigil_rule = %rule, vigil_action = %action,
                    "incident {incident}: `{action}` held: {reason}");
                None
            }
            Decision::Skipped {
                incident,
                rule,
                check,
                step,
                action,
                reason,
            } => Some(self.skipped(incident, &rule, &check, step, &action, &reason, now)),
            Decision::Exhausted {
                incident,
                rule,
                check,
            } => {
                self.exhausted(incident, rule, check, now);
                None
            }
            Decision::Closed {
                incident,
                rule,
                check,
                reason,
            } => {
                info!(vigil_event = "incident-closed", vigil_incident = incident, vigil_rule = %rule, vigil_check = %check,
                    "incident {incident} closed: {reason}");
                self.record_state(incident, IncidentState::Closed, now);
                Some(Event::IncidentResolved { id: incident })
            }
            Decision::Resolved {
                incident,
                rule,
                check,
            } => {
                info!(vigil_event = "incident-resolved", vigil_incident = incident, vigil_rule = %rule, vigil_check = %check,
                    "incident {incident} resolved: {check} is ok");
                self.record_state(incident, IncidentState::Resolved, now);
                Some(Event::IncidentResolved { id: incident })
            }
        }
    }

    fn record_state(&self, incident: u64, state: IncidentState, now: Micros) {
        self.io.store.write(Record::IncidentState {
            id: incident,
            state,
            at: now,
        });
    }

    /// Records a ladder step: taken (no result yet), observed, or skipped (with its result).
    fn record_step(
        &self,
        incident: u64,
        step: usize,
        action: &str,
        at: Micros,
        observed: bool,
        result: Option<&str>,
    ) {
        self.io.store.write(Record::Action {
            incident,
            step,
            action: action.to_string(),
            at,
            observed,
            result: result.map(str::to_string),
        });
    }

    fn opened(&mut self, incident: u64, rule: String, check: String, now: Micros) -> Event {
        warn!(vigil_event = "incident-opened", vigil_incident = incident, vigil_rule = %rule, vigil_check = %check,
            "incident {incident} opened: rule {rule} on check {check}");
        if incident + INCIDENT_ID_BLOCK / 2 >= self.rules.ids_reserved_until {
            // Half the block used: reserve the next one, ahead of its use.
            let until = incident.max(self.rules.ids_reserved_until) + INCIDENT_ID_BLOCK;
            self.rules.ids_reserved_until = until;
            self.io.store.write(id_floor(until));
        }
        self.io.store.write(Record::IncidentOpened {
            id: incident,
            rule: rule.clone(),
            check: check.clone(),
            at: now,
        });
        Event::IncidentOpened {
            id: incident,
            rule,
            check,
        }
    }

    /// Observe mode: recorded and signalled as if taken, but not carried out.
    fn observed(
        &mut self,
        incident: u64,
        rule: &str,
        check: &str,
        step: usize,
        action: &Action,
        now: Micros,
    ) -> Event {
        let text = action.to_string();
        info!(vigil_event = "action", vigil_incident = incident, vigil_rule = %rule, vigil_check = %check, vigil_action = %text,
            "incident {incident}: step {} `{text}` — {OBSERVED}", step + 1);
        self.record_step(incident, step, &text, now, true, Some(OBSERVED));
        Event::ActionTaken {
            incident,
            action: text,
            result: OBSERVED.to_string(),
        }
    }

    /// A step that cannot apply: recorded as skipped, with why.
    #[allow(clippy::too_many_arguments)]
    fn skipped(
        &mut self,
        incident: u64,
        rule: &str,
        check: &str,
        step: usize,
        action: &Action,
        reason: &str,
        now: Micros,
    ) -> Event {
        let text = action.to_string();
        let result = Outcome::Skipped(reason.to_string()).to_line();
        info!(vigil_event = "action", vigil_incident = incident, vigil_rule = %rule, vigil_check = %check, vigil_action = %text,
            "incident {incident}: step {} `{text}` — {result}", step + 1);
        self.record_step(incident, step, &text, now, false, Some(&result));
        Event::ActionTaken {
            incident,
            action: text,
            result,
        }
    }

    /// Enforce mode: recorded before it runs, then carried out off the loop; the result
    /// comes back as an [`ActionDone`].
    fn act(
        &mut self,
        incident: u64,
        rule: String,
        check: String,
        step: usize,
        action: Action,
        at: Now,
    ) {
        let now = at.wall;
        if action.is_reboot() {
            self.mark_reboot(at);
        }
        let text = action.to_string();
        info!(vigil_event = "action-started", vigil_incident = incident, vigil_rule = %rule, vigil_check = %check, vigil_action = %text,
            "incident {incident}: step {} `{text}` started", step + 1);
        // Recorded before it runs; the result follows when it comes back.
        self.record_step(incident, step, &text, now, false, None);
        let note = self.notification("incident", incident, &rule, &check, None, now);
        let (actuators, tx, store) = (
            self.cfg.actuators.clone(),
            self.io.done_tx.clone(),
            self.io.store.clone(),
        );
        tokio::spawn(async move {
            // A reboot ends everything, its record included, and the reboot limit that holds
            // across reboots is read from that record: it must be on disk first, or the
            // reboot waits. Other actions never wait for the store (a slow or full disk must
            // not delay healing); their records are written in order when it can.
            let outcome = if action.is_reboot() {
                match store.confirm(REBOOT_RECORD_WAIT).await {
                    Ok(()) => actuators.run(&action, &note).await,
                    Err(why) => Outcome::Skipped(format!(
                        "held: {why}; a reboot is carried out only once it is recorded"
                    )),
                }
            } else {
                actuators.run(&action, &note).await
            };
            let _ = tx.send(ActionDone {
                incident,
                rule,
                check,
                step,
                action: text,
                started: now,
                outcome,
            });
        });
    }

    /// Notes a reboot about to be tried, with both clocks and the boot, so the reboot limit
    /// is restored exactly by a vigild restarted on this boot, whatever the wall clock does.
    fn mark_reboot(&mut self, at: Now) {
        let marks = &mut self.rules.reboots;
        marks.push(RebootMark {
            wall: at.wall,
            mono: at.mono,
            boot: self.boot.clone(),
        });
        let keep = marks.len().saturating_sub(REBOOT_MARKS_KEPT);
        marks.drain(..keep);
        self.io.store.write(Record::Setting {
            key: REBOOTS_SETTING.into(),
            value: serde_json::to_string(&marks).unwrap_or_default(),
        });
    }

    /// The rule gave up: recorded, and worth an alert where webhooks are configured.
    fn exhausted(&mut self, incident: u64, rule: String, check: String, now: Micros) {
        error!(vigil_event = "incident-exhausted", vigil_incident = incident, vigil_rule = %rule, vigil_check = %check,
            "incident {incident}: rule {rule} reached its limit; no more actions until {check} is ok");
        self.record_state(incident, IncidentState::Exhausted, now);
        if self.cfg.actuators.webhooks.is_empty() {
            return;
        }
        let detail = format!("rule {rule} reached its limit; vigil takes no more actions");
        let note = self.notification("exhausted", incident, &rule, &check, Some(detail), now);
        let actuators = self.cfg.actuators.clone();
        tokio::spawn(async move {
            let out = actuators.run(&Action::Notify, &note).await;
            info!(
                vigil_event = "alert",
                vigil_incident = incident,
                "incident {incident} exhausted, alert: {}",
                out.to_line()
            );
        });
    }

    /// What a webhook is told about an incident: the check's state now, unless `detail`
    /// says otherwise.
    fn notification(
        &self,
        event: &str,
        incident: u64,
        rule: &str,
        check: &str,
        detail: Option<String>,
        now: Micros,
    ) -> Notification {
        let state = self.checks.model.get(check);
        Notification {
            event: event.into(),
            incident,
            rule: rule.into(),
            check: check.into(),
            status: state.map(|c| c.status.to_string()).unwrap_or_default(),
            detail: detail
                .or_else(|| state.map(|c| c.detail.clone()))
                .unwrap_or_default(),
            host: nix::unistd::gethostname()
                .ok()
                .and_then(|h| h.into_string().ok())
                .unwrap_or_default(),
            time: rfc3339_millis(now),
        }
    }

    /// An action came back: record, log and signal its outcome.
    pub(super) fn on_action_done(&mut self, d: ActionDone) {
        self.rules.engine.action_done(&d.rule, &d.check, now_mono());
        let line = d.outcome.to_line();
        let msg = format!(
            "incident {}: step {} `{}` — {line}",
            d.incident,
            d.step + 1,
            d.action
        );
        match &d.outcome {
            Outcome::Failed(_) => {
                error!(vigil_event = "action", vigil_incident = d.incident, vigil_rule = %d.rule, vigil_check = %d.check, vigil_action = %d.action, "{msg}")
            }
            _ => {
                info!(vigil_event = "action", vigil_incident = d.incident, vigil_rule = %d.rule, vigil_check = %d.check, vigil_action = %d.action, "{msg}")
            }
        }
        self.io.store.write(Record::ActionResult {
            incident: d.incident,
            step: d.step,
            started: d.started,
            result: line.clone(),
        });
        self.io.outbox.push(vec![Event::ActionTaken {
            incident: d.incident,
            action: d.action,
            result: line,
        }]);
    }
}
