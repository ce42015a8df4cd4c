//! The health model: check statuses, their transitions and the overall status.
//!
//! Pure code: no I/O, no clock. Every function that needs the time takes `now` in
//! microseconds since the Unix epoch, so tests drive it on a fake clock. Group checks
//! (`containers`) roll their members up with [`group_rollup`].

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

pub use crate::core::time::Micros;

/// What a check says about the thing it watches.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Ok,
    Warn,
    Crit,
    /// The probe could not tell (source missing, timeout, parse error).
    Unknown,
}

impl Status {
    /// The lowercase name used on every surface (`ok`, `warn`, `crit`, `unknown`).
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Ok => "ok",
            Status::Warn => "warn",
            Status::Crit => "crit",
            Status::Unknown => "unknown",
        }
    }

    /// Parses the lowercase name.
    pub fn parse(s: &str) -> Option<Status> {
        match s {
            "ok" => Some(Status::Ok),
            "warn" => Some(Status::Warn),
            "crit" => Some(Status::Crit),
            "unknown" => Some(Status::Unknown),
            _ => None,
        }
    }

    /// The worse of two statuses (`ok < warn < unknown < crit`).
    pub fn worst(self, other: Status) -> Status {
        fn rank(s: Status) -> u8 {
            match s {
                Status::Ok => 0,
                Status::Warn => 1,
                Status::Unknown => 2,
                Status::Crit => 3,
            }
        }
        if rank(other) > rank(self) {
            other
        } else {
            self
        }
    }
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The status of the whole box, as the heartbeat and D-Bus report it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Overall {
    Ok,
    Degraded,
    Critical,
}

impl Overall {
    /// `ok`, `degraded` or `critical`.
    pub fn as_str(self) -> &'static str {
        match self {
            Overall::Ok => "ok",
            Overall::Degraded => "degraded",
            Overall::Critical => "critical",
        }
    }
}

impl fmt::Display for Overall {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One check's current state.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CheckState {
    pub name: String,
    pub probe: String,
    pub status: Status,
    /// When the check entered `status`.
    pub since: Micros,
    /// Human-readable reason for the status.
    pub detail: String,
    /// The probe's last metric values, by name.
    pub metrics: BTreeMap<String, f64>,
    /// When the probe last reported, if ever.
    pub last_probe: Option<Micros>,
}

impl CheckState {
    /// A check that has not been probed yet: `unknown` since `now`.
    fn unprobed(name: &str, probe: &str, now: Micros) -> CheckState {
        CheckState {
            name: name.to_string(),
            probe: probe.to_string(),
            status: Status::Unknown,
            since: now,
            detail: NOT_PROBED_DETAIL.to_string(),
            metrics: BTreeMap::new(),
            last_probe: None,
        }
    }
}

/// A change of a check's status.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Transition {
    pub check: String,
    pub from: Status,
    pub to: Status,
    pub at: Micros,
    pub detail: String,
}

/// The detail of a check that has not reported yet.
pub const NOT_PROBED_DETAIL: &str = "not probed yet";

/// Every check's state, keyed by check name. States are shared with the snapshots that
/// were taken of them: a reading copies only the check it changes, so publishing the
/// model costs a pointer per check, not a copy of every check.
#[derive(Debug, Clone, Default)]
pub struct HealthModel {
    checks: BTreeMap<String, Arc<CheckState>>,
}

/// What a change of the check set did.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct CheckSetDiff {
    pub added: Vec<String>,
    pub removed: Vec<String>,
}

impl HealthModel {
    /// An empty model.
    pub fn new() -> Self {
        Self::default()
    }

    /// Replaces the set of checks (start or reload). Checks that stay keep their state and
    /// history (unless their probe kind changed); new ones start `unknown`.
    pub fn set_checks<'a>(
        &mut self,
        checks: impl IntoIterator<Item = (&'a str, &'a str)>,
        now: Micros,
    ) -> CheckSetDiff {
        let mut next = BTreeMap::new();
        let mut diff = CheckSetDiff::default();
        for (name, probe) in checks {
            match self.checks.remove(name) {
                Some(state) if state.probe == probe => {
                    next.insert(name.to_string(), state);
                    continue;
                }
                // A check whose probe kind changed is both removed and added.
                Some(_) => diff.removed.push(name.to_string()),
                None => {}
            }
            diff.added.push(name.to_string());
            next.insert(
                name.to_string(),
                Arc::new(CheckState::unprobed(name, probe, now)),
            );
        }
        diff.removed.extend(self.checks.keys().cloned());
        diff.removed.sort();
        self.checks = next;
        diff
    }

    /// Adds one check (a member discovered by a group probe). False if it exists.
    pub fn add_check(&mut self, name: &str, probe: &str, now: Micros) -> bool {
        if self.checks.contains_key(name) {
            return false;
        }
        self.checks.insert(
            name.to_string(),
            Arc::new(CheckState::unprobed(name, probe, now)),
        );
        true
    }

    /// Removes one check (its thing is gone). False if there was none.
    pub fn remove_check(&mut self, name: &str) -> bool {
        self.checks.remove(name).is_some()
    }

    /// Records a probe result. Returns the transition when the status changed.
    pub fn observe(
        &mut self,
        name: &str,
        status: Status,
        detail: String,
        metrics: BTreeMap<String, f64>,
        now: Micros,
    ) -> Option<Transition> {
        let state = Arc::make_mut(self.checks.get_mut(name)?);
        state.metrics = metrics;
        state.last_probe = Some(now);
        let from = state.status;
        state.detail = detail;
        if from == status {
            return None;
        }
        state.status = status;
        state.since = now;
        Some(Transition {
            check: name.to_string(),
            from,
            to: status,
            at: now,
            detail: state.detail.clone(),
        })
    }

    /// One check's state.
    pub fn get(&self, name: &str) -> Option<&CheckState> {
        self.checks.get(name).map(|c| c.as_ref())
    }

    /// All checks, by name.
    pub fn checks(&self) -> impl Iterator<Item = &CheckState> {
        self.checks.values().map(|c| c.as_ref())
    }

    /// All checks, by name, shared: what a snapshot holds.
    pub fn shared(&self) -> Vec<Arc<CheckState>> {
        self.checks.values().cloned().collect()
    }

    /// Number of checks.
    pub fn len(&self) -> usize {
        self.checks.len()
    }

    /// Whether there are no checks.
    pub fn is_empty(&self) -> bool {
        self.checks.is_empty()
    }

    /// The box's status: `critical` when any check is `crit`; `degraded` when any is `warn`
    /// or `unknown` (a check that cannot tell is worth a look); else `ok`.
    pub fn overall(&self) -> Overall {
        overall_of(self.checks.values().map(|c| c.status))
    }

    /// How many checks are in each status.
    pub fn counts(&self) -> StatusCounts {
        StatusCounts::of(self.checks.values().map(|c| c.status))
    }
}

/// The overall status of a set of check statuses.
pub fn overall_of(statuses: impl IntoIterator<Item = Status>) -> Overall {
    let mut overall = Overall::Ok;
    for s in statuses {
        match s {
            Status::Crit => return Overall::Critical,
            Status::Warn | Status::Unknown => overall = Overall::Degraded,
            Status::Ok => {}
        }
    }
    overall
}

/// Number of checks per status.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct StatusCounts {
    pub ok: usize,
    pub warn: usize,
    pub crit: usize,
    pub unknown: usize,
}

impl StatusCounts {
    /// Counts a set of statuses.
    pub fn of(statuses: impl IntoIterator<Item = Status>) -> StatusCounts {
        let mut counts = StatusCounts::default();
        for s in statuses {
            match s {
                Status::Ok => counts.ok += 1,
                Status::Warn => counts.warn += 1,
                Status::Crit => counts.crit += 1,
                Status::Unknown => counts.unknown += 1,
            }
        }
        counts
    }

    /// How many were counted.
    pub fn total(&self) -> usize {
        self.ok + self.warn + self.crit + self.unknown
    }
}

/// A group check's own status and detail from its members' statuses: the worst member
/// (an empty group is `ok`), and how many are in each status.
pub fn group_rollup(members: &[Status]) -> (Status, String) {
    let status = members.iter().fold(Status::Ok, |a, b| a.worst(*b));
    let c = StatusCounts::of(members.iter().copied());
    let detail = format!(
        "{} matched: {} ok, {} warn, {} crit, {} unknown",
        c.total(),
        c.ok,
        c.warn,
        c.crit,
        c.unknown
    );
    (status, detail)
}

#[cfg(test)]
mod tests {
    use super::*;

    const SEC: Micros = 1_000_000;

    fn model(names: &[(&str, &str)]) -> HealthModel {
        let mut m = HealthModel::new();
        m.set_checks(names.iter().copied(), 0);
        m
    }

    #[test]
    fn new_checks_start_unknown_and_first_probe_is_a_transition() {
        let mut m = model(&[("disk", "disk")]);
        let c = m.get("disk").unwrap();
        assert_eq!(c.status, Status::Unknown);
        assert_eq!(c.detail, NOT_PROBED_DETAIL);
        let t = m
            .observe("disk", Status::Ok, "fine".into(), BTreeMap::new(), 5 * SEC)
            .unwrap();
        assert_eq!((t.from, t.to, t.at), (Status::Unknown, Status::Ok, 5 * SEC));
        assert_eq!(m.get("disk").unwrap().since, 5 * SEC);
    }

    #[test]
    fn same_status_is_no_transition_and_keeps_since_but_updates_detail() {
        let mut m = model(&[("disk", "disk")]);
        m.observe("disk", Status::Warn, "a".into(), BTreeMap::new(), SEC);
        let again = m.observe("disk", Status::Warn, "b".into(), BTreeMap::new(), 9 * SEC);
        assert!(again.is_none());
        let c = m.get("disk").unwrap();
        assert_eq!(c.since, SEC);
        assert_eq!(c.detail, "b");
        assert_eq!(c.last_probe, Some(9 * SEC));
    }

    #[test]
    fn unknown_check_name_is_ignored() {
        let mut m = model(&[("disk", "disk")]);
        assert!(m
            .observe("nope", Status::Crit, String::new(), BTreeMap::new(), 1)
            .is_none());
        assert_eq!(m.len(), 1);
    }

    #[test]
    fn overall_follows_the_worst_check() {
        let mut m = model(&[("a", "disk"), ("b", "memory")]);
        assert_eq!(m.overall(), Overall::Degraded, "unknown counts as degraded");
        m.observe("a", Status::Ok, String::new(), BTreeMap::new(), 1);
        m.observe("b", Status::Ok, String::new(), BTreeMap::new(), 1);
        assert_eq!(m.overall(), Overall::Ok);
        m.observe("b", Status::Warn, String::new(), BTreeMap::new(), 2);
        assert_eq!(m.overall(), Overall::Degraded);
        m.observe("a", Status::Crit, String::new(), BTreeMap::new(), 3);
        assert_eq!(m.overall(), Overall::Critical);
        assert_eq!(
            m.counts(),
            StatusCounts {
                ok: 0,
                warn: 1,
                crit: 1,
                unknown: 0
            }
        );
        assert_eq!(overall_of([]), Overall::Ok);
    }

    #[test]
    fn reload_keeps_state_of_surviving_checks() {
        let mut m = model(&[("a", "disk"), ("b", "memory")]);
        m.observe("a", Status::Crit, "full".into(), BTreeMap::new(), 7);
        let diff = m.set_checks([("a", "disk"), ("c", "thermal")], 100);
        assert_eq!(diff.added, vec!["c".to_string()]);
        assert_eq!(diff.removed, vec!["b".to_string()]);
        assert_eq!(m.get("a").unwrap().status, Status::Crit);
        assert_eq!(m.get("a").unwrap().since, 7);
        assert_eq!(m.get("c").unwrap().since, 100);
        assert!(m.get("b").is_none());
    }

    #[test]
    fn reload_with_changed_probe_resets_the_check() {
        let mut m = model(&[("a", "disk")]);
        m.observe("a", Status::Crit, "full".into(), BTreeMap::new(), 7);
        let diff = m.set_checks([("a", "memory")], 50);
        assert_eq!(diff.added, vec!["a".to_string()]);
        assert_eq!(diff.removed, vec!["a".to_string()]);
        assert_eq!(m.get("a").unwrap().status, Status::Unknown);
        assert_eq!(m.get("a").unwrap().probe, "memory");
    }

    #[test]
    fn hours_of_flapping_on_a_fake_clock_give_one_transition_per_change() {
        let mut m = model(&[("x", "disk")]);
        let mut transitions = 0;
        let mut expected = 0;
        let mut last = Status::Unknown;
        // 10 hours, a probe every 10 s, status pattern with runs of varying length.
        for i in 0..3600u64 {
            let s = match (i / 7) % 4 {
                0 => Status::Ok,
                1 => Status::Warn,
                2 => Status::Ok,
                _ => Status::Crit,
            };
            if s != last {
                expected += 1;
                last = s;
            }
            if m.observe("x", s, String::new(), BTreeMap::new(), i * 10 * SEC)
                .is_some()
            {
                transitions += 1;
            }
        }
        assert_eq!(transitions, expected);
        assert!(transitions > 500);
    }

    #[test]
    fn members_come_and_go() {
        let mut m = model(&[("stack", "containers")]);
        assert!(m.add_check("container:a", "containers", 5));
        assert!(!m.add_check("container:a", "containers", 6));
        assert_eq!(m.get("container:a").unwrap().since, 5);
        assert_eq!(m.len(), 2);
        assert!(m.remove_check("container:a"));
        assert!(!m.remove_check("container:a"));
        assert_eq!(m.len(), 1);
    }

    #[test]
    fn a_group_is_its_worst_member() {
        let (s, d) = group_rollup(&[Status::Ok, Status::Crit, Status::Unknown, Status::Ok]);
        assert_eq!(s, Status::Crit);
        assert_eq!(d, "4 matched: 2 ok, 0 warn, 1 crit, 1 unknown");
        assert_eq!(group_rollup(&[]).0, Status::Ok);
        assert_eq!(
            group_rollup(&[Status::Warn, Status::Unknown]).0,
            Status::Unknown
        );
    }

    /// A reading copies only the check it changes; a snapshot taken before keeps its view.
    #[test]
    fn snapshots_share_the_checks_a_reading_did_not_touch() {
        let mut m = model(&[("a", "disk"), ("b", "disk"), ("c", "disk")]);
        let before = m.shared();
        m.observe("b", Status::Crit, "full".into(), BTreeMap::new(), 7);
        let after = m.shared();
        assert!(Arc::ptr_eq(&before[0], &after[0]) && Arc::ptr_eq(&before[2], &after[2]));
        assert!(!Arc::ptr_eq(&before[1], &after[1]));
        assert_eq!(
            before[1].status,
            Status::Unknown,
            "the old snapshot is unchanged"
        );
        assert_eq!(after[1].status, Status::Crit);
    }

    #[test]
    fn worst_orders_statuses() {
        assert_eq!(Status::Ok.worst(Status::Warn), Status::Warn);
        assert_eq!(Status::Crit.worst(Status::Warn), Status::Crit);
        assert_eq!(Status::Warn.worst(Status::Unknown), Status::Unknown);
        assert_eq!(Status::Unknown.worst(Status::Crit), Status::Crit);
        for s in ["ok", "warn", "crit", "unknown"] {
            assert_eq!(Status::parse(s).unwrap().as_str(), s);
        }
    }
}
