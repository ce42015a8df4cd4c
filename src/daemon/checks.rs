//! Checks in the loop: taking a policy set into use, and turning probe results into
//! statuses, transitions and records.

use std::collections::BTreeSet;
use std::sync::Arc;

use tracing::{error, info, warn};

use super::config::{config_detail, CONFIG_CHECK};
use super::probes::ProbeResult;
use super::state::Daemon;
use crate::core::check::ProbeParams;
use crate::core::health::{group_rollup, Status, Transition};
use crate::core::metric::{Metrics, Reading};
use crate::core::probe_kind::ProbeKind;
use crate::core::threshold;
use crate::core::time::Micros;
use crate::policy::PolicySet;

impl Daemon {
    /// Takes a validated policy set into use; with `config_error`, the set is the built-in
    /// one and the `vigil:config` check reports why. Returns the transitions it caused.
    pub(super) fn install(
        &mut self,
        set: PolicySet,
        config_error: Option<String>,
        now: Micros,
    ) -> Vec<Transition> {
        let c = &mut self.checks;
        let mut names: Vec<(&str, &str)> = set
            .checks
            .iter()
            .map(|c| (c.name.as_str(), c.probe().as_str()))
            .collect();
        if config_error.is_some() {
            names.push((CONFIG_CHECK, "config"));
        }
        // Members of group checks that survive keep their state until the next reading.
        c.members.retain(|group, _| {
            set.checks
                .iter()
                .any(|s| &s.name == group && s.probe() == ProbeKind::Containers)
        });
        let members: Vec<String> = c.members.values().flatten().cloned().collect();
        names.extend(
            members
                .iter()
                .map(|m| (m.as_str(), ProbeKind::Containers.as_str())),
        );
        let diff = c.model.set_checks(names, now);
        for name in &diff.removed {
            info!(vigil_event = "check-removed", vigil_check = %name, "check {name} removed");
            // A RunCheck waiting on a check that is gone gets its answer now.
            for w in c.pending_runs.remove(name).unwrap_or_default() {
                let _ = w.send(Err(format!("check {name:?} was removed by a reload")));
            }
        }
        for name in &diff.added {
            info!(vigil_event = "check-added", vigil_check = %name, "check {name} added");
        }
        c.builtin = set.builtin;
        if set.builtin {
            info!(
                vigil_event = "policy",
                "no usable policy file: using the built-in checks for this host"
            );
        } else {
            info!(
                vigil_event = "policy",
                "loaded {} checks from {} policy file(s)",
                set.checks.len(),
                set.files.len()
            );
        }
        let closed = self.rules.engine.set_rules(set.rules, self.cfg.globals);
        self.rules.pending.extend(closed);
        let mut actuators = (*self.cfg.actuators).clone();
        actuators.ollama_urls = set
            .checks
            .iter()
            .filter_map(|c| match &c.params {
                ProbeParams::Ollama { url, .. } => Some((c.name.clone(), url.clone())),
                _ => None,
            })
            .collect();
        self.cfg.actuators = Arc::new(actuators);
        self.checks.specs = set
            .checks
            .into_iter()
            .map(|c| (c.name.clone(), c))
            .collect();
        self.checks.config_error = config_error;
        self.report_config_error(now)
    }

    /// Puts the current configuration error, if any, into the `vigil:config` check.
    pub(super) fn report_config_error(&mut self, now: Micros) -> Vec<Transition> {
        let Some(e) = &self.checks.config_error else {
            return Vec::new();
        };
        let detail = config_detail(e);
        let t = self
            .checks
            .model
            .observe(CONFIG_CHECK, Status::Crit, detail, Metrics::new(), now);
        t.into_iter()
            .inspect(|t| {
                log_transition(t);
                self.io.store.record_transition(t.clone());
            })
            .collect()
    }

    /// A probe's reading: statuses for the check (and a group's members), transitions.
    pub(super) fn on_result(&mut self, r: ProbeResult) -> Vec<Transition> {
        if !self.io.probes.is_current(r.generation) {
            return Vec::new();
        }
        let Some(spec) = self.checks.specs.get(&r.check) else {
            return Vec::new();
        };
        let (warn, crit) = (spec.warn.clone(), spec.crit.clone());
        let mut transitions = Vec::new();
        match &r.reading {
            Reading::Group(members) => {
                self.track_members(&r.check, members.keys().cloned().collect(), r.at);
                let mut statuses = Vec::new();
                for (member, reading) in members {
                    let (status, detail) = threshold::evaluate(&warn, &crit, reading);
                    statuses.push(status);
                    transitions.extend(self.observe(
                        member,
                        status,
                        detail,
                        metrics_of(reading),
                        r.at,
                    ));
                }
                let (status, detail) = group_rollup(&statuses);
                transitions.extend(self.observe(&r.check, status, detail, Metrics::new(), r.at));
            }
            reading => {
                if let Reading::Unknown(why) = reading {
                    // The source of a group is gone (dockerd down): its members cannot tell.
                    let members: Vec<String> = self
                        .checks
                        .members
                        .get(&r.check)
                        .into_iter()
                        .flatten()
                        .cloned()
                        .collect();
                    for m in members {
                        transitions.extend(self.observe(
                            &m,
                            Status::Unknown,
                            why.clone(),
                            Metrics::new(),
                            r.at,
                        ));
                    }
                }
                let (status, detail) = threshold::evaluate(&warn, &crit, reading);
                transitions.extend(self.observe(
                    &r.check,
                    status,
                    detail,
                    metrics_of(reading),
                    r.at,
                ));
            }
        }
        transitions
    }

    /// Adds and removes the member checks of a group to match what its probe found.
    fn track_members(&mut self, group: &str, names: BTreeSet<String>, at: Micros) {
        let c = &mut self.checks;
        let known = c.members.entry(group.to_string()).or_default();
        for gone in known.difference(&names) {
            if c.model.remove_check(gone) {
                info!(vigil_event = "check-removed", vigil_check = %gone, "check {gone} removed: it no longer exists");
            }
            // A RunCheck waiting on it gets its answer now.
            for w in c.pending_runs.remove(gone).unwrap_or_default() {
                let _ = w.send(Err(format!("check {gone:?} no longer exists")));
            }
        }
        for new in names.difference(known) {
            if c.model.add_check(new, ProbeKind::Containers.as_str(), at) {
                info!(vigil_event = "check-added", vigil_check = %new, "check {new} added");
            }
        }
        *known = names;
    }

    /// Puts one check's new status into the model; logs, stores and returns a transition.
    fn observe(
        &mut self,
        check: &str,
        status: Status,
        detail: String,
        metrics: Metrics,
        at: Micros,
    ) -> Option<Transition> {
        let c = &mut self.checks;
        let before = c
            .model
            .get(check)
            .map(|c| (c.last_probe.is_none(), c.detail.clone()));
        let transition = c.model.observe(check, status, detail.clone(), metrics, at);
        if status == Status::Unknown && transition.is_none() {
            // Unknown from the first reading, or unknown for a new reason: say so once.
            if let Some((first, old_detail)) = before {
                if first || old_detail != detail {
                    warn!(vigil_event = "unknown", vigil_check = %check, "check {check} is unknown: {detail}");
                }
            }
        }
        if let Some(waiters) = c.pending_runs.remove(check) {
            let state = c
                .model
                .get(check)
                .cloned()
                .ok_or_else(|| "check vanished".to_string());
            for w in waiters {
                let _ = w.send(state.clone());
            }
        }
        if let Some(t) = &transition {
            log_transition(t);
            self.io.store.record_transition(t.clone());
        }
        transition
    }
}

/// The metrics a reading carries (none when it could not tell).
fn metrics_of(r: &Reading) -> Metrics {
    match r {
        Reading::Value { metrics, .. } => metrics.clone(),
        _ => Metrics::new(),
    }
}

/// Logs a transition at the level its new status deserves, with its journal fields.
pub(super) fn log_transition(t: &Transition) {
    let msg = format!("check {} {} → {}: {}", t.check, t.from, t.to, t.detail);
    match t.to {
        Status::Ok => {
            info!(vigil_event = "transition", vigil_check = %t.check, vigil_from = %t.from, vigil_to = %t.to, "{msg}")
        }
        Status::Warn | Status::Unknown => {
            warn!(vigil_event = "transition", vigil_check = %t.check, vigil_from = %t.from, vigil_to = %t.to, "{msg}")
        }
        Status::Crit => {
            error!(vigil_event = "transition", vigil_check = %t.check, vigil_from = %t.from, vigil_to = %t.to, "{msg}")
        }
    }
}
