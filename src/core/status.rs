//! The status snapshot the daemon loop publishes, and the status document that D-Bus
//! (`GetStatus`), HTTP and `vigilctl status --json` share. Surfaces only read these.

use std::collections::BTreeMap;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::core::health::{CheckState, Overall, Status, StatusCounts, Transition};
use crate::core::time::{rfc3339_millis, Micros, Mono, Now};
use crate::core::update::UpdateState;

/// Something that happened, for signals and logs (the snapshot says how things are).
#[derive(Debug, Clone, PartialEq)]
pub enum Event {
    Transition(Transition),
    IncidentOpened {
        id: u64,
        rule: String,
        check: String,
    },
    ActionTaken {
        incident: u64,
        action: String,
        result: String,
    },
    IncidentResolved {
        id: u64,
    },
}

/// What the daemon loop publishes after every change; surfaces only read it.
#[derive(Debug, Clone, PartialEq)]
pub struct Snapshot {
    /// Wall time vigild started (display).
    pub started_at: Micros,
    /// When it started on the monotonic clock (uptime).
    pub started_mono: Mono,
    pub status: Overall,
    /// Shared with the health model (see [`HealthModel`](crate::core::health::HealthModel)).
    pub checks: Vec<Arc<CheckState>>,
    pub counts: StatusCounts,
    pub maintenance: bool,
    pub maintenance_until: Option<Micros>,
    pub maintenance_reason: Option<String>,
    pub update_state: UpdateState,
    /// A bundle a USB stick offered and nobody applied yet (`NAME VERSION at PATH`).
    pub update_offered: Option<String>,
    pub open_incidents: u32,
    /// True when the built-in default checks are in force (no policy file found).
    pub builtin_policies: bool,
    /// Whether the store writes.
    pub store: StoreHealth,
}

impl Snapshot {
    /// A snapshot before the first probe.
    pub fn starting(started_at: Micros) -> Snapshot {
        Snapshot {
            started_at,
            started_mono: 0,
            status: Overall::Degraded,
            checks: Vec::new(),
            counts: StatusCounts::default(),
            maintenance: false,
            maintenance_until: None,
            maintenance_reason: None,
            update_state: UpdateState::Idle,
            update_offered: None,
            open_incidents: 0,
            builtin_policies: false,
            store: StoreHealth::default(),
        }
    }

    /// Seconds since vigild started, on the monotonic clock.
    pub fn uptime_secs(&self, now: Now) -> u64 {
        now.mono.saturating_sub(self.started_mono) / 1_000_000
    }

    /// Whether `other` says the same: scalars equal, and every check the same state (by
    /// pointer first, so comparing two snapshots of a large model stays cheap).
    pub fn same_as(&self, other: &Snapshot) -> bool {
        self.started_at == other.started_at
            && self.started_mono == other.started_mono
            && self.status == other.status
            && self.counts == other.counts
            && self.maintenance == other.maintenance
            && self.maintenance_until == other.maintenance_until
            && self.maintenance_reason == other.maintenance_reason
            && self.update_state == other.update_state
            && self.update_offered == other.update_offered
            && self.open_incidents == other.open_incidents
            && self.builtin_policies == other.builtin_policies
            && self.store == other.store
            && self.checks.len() == other.checks.len()
            && self
                .checks
                .iter()
                .zip(&other.checks)
                .all(|(a, b)| Arc::ptr_eq(a, b) || a == b)
    }

    /// The one-line summary for `STATUS=` and `vigilctl status`:
    /// `ok · 3 checks · 0 incidents`, naming the failing checks when there are any.
    pub fn summary_line(&self) -> String {
        let n = self.checks.len();
        let mut line = format!(
            "{} · {} check{} · {} incident{}",
            self.status,
            n,
            if n == 1 { "" } else { "s" },
            self.open_incidents,
            if self.open_incidents == 1 { "" } else { "s" },
        );
        for (label, status) in [
            ("crit", Status::Crit),
            ("warn", Status::Warn),
            ("unknown", Status::Unknown),
        ] {
            let names: Vec<&str> = self
                .checks
                .iter()
                .filter(|c| c.status == status)
                .map(|c| c.name.as_str())
                .collect();
            if !names.is_empty() {
                let shown = names.iter().take(3).copied().collect::<Vec<_>>().join(", ");
                let more = if names.len() > 3 {
                    format!(" +{}", names.len() - 3)
                } else {
                    String::new()
                };
                line.push_str(&format!(" · {label}: {shown}{more}"));
            }
        }
        if self.maintenance {
            line.push_str(" · maintenance");
        }
        if !matches!(self.update_state, UpdateState::Idle) {
            line.push_str(&format!(" · update {}", self.update_state));
        }
        if let Some(o) = &self.update_offered {
            line.push_str(&format!(" · update offered: {o}"));
        }
        if self.store.failing_since.is_some() {
            line.push_str(&format!(" · store: {} waiting", self.store.waiting));
        }
        line
    }

    /// The status document of `GetStatus()` and `vigilctl status --json`.
    pub fn status_document(&self, now: Now, version: &str) -> StatusDocument {
        StatusDocument {
            status: self.status,
            version: version.to_string(),
            started_at: rfc3339_millis(self.started_at),
            uptime: self.uptime_secs(now),
            summary: self.summary_line(),
            maintenance: self.maintenance,
            maintenance_until: self.maintenance_until.map(rfc3339_millis),
            maintenance_reason: self.maintenance_reason.clone(),
            update_state: self.update_state.as_str().to_string(),
            update_offered: self.update_offered.clone(),
            open_incidents: self.open_incidents,
            builtin_policies: self.builtin_policies,
            store: StoreDocument {
                line: self.store.line(),
                failing_since: self.store.failing_since.map(rfc3339_millis),
                waiting: self.store.waiting,
                dropped: self.store.dropped,
                last_error: self.store.last_error.clone(),
            },
            counts: self.counts,
            checks: self
                .checks
                .iter()
                .map(|c| CheckDocument {
                    name: c.name.clone(),
                    probe: c.probe.clone(),
                    status: c.status,
                    since: rfc3339_millis(c.since),
                    detail: c.detail.clone(),
                    // JSON has no NaN or infinity: such values are null.
                    metrics: c
                        .metrics
                        .iter()
                        .map(|(k, v)| (k.clone(), v.is_finite().then_some(*v)))
                        .collect(),
                })
                .collect(),
        }
    }
}

/// Whether the store writes what vigild records.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoreHealth {
    /// Since when writes fail (wall time), while they do.
    pub failing_since: Option<Micros>,
    /// Records kept in memory, in order, until they can be written.
    pub waiting: usize,
    /// Records dropped because too many were waiting.
    pub dropped: u64,
    /// Why the last write failed, while writes fail.
    pub last_error: Option<String>,
}

impl StoreHealth {
    /// `store: ok`, or `store: writes failing since …, 31 records waiting (…)`.
    pub fn line(&self) -> String {
        match self.failing_since {
            None => "store: ok".to_string(),
            Some(since) => {
                let mut line = format!(
                    "store: writes failing since {}, {} record{} waiting",
                    rfc3339_millis(since),
                    self.waiting,
                    if self.waiting == 1 { "" } else { "s" }
                );
                if self.dropped > 0 {
                    line.push_str(&format!(", {} dropped", self.dropped));
                }
                if let Some(e) = &self.last_error {
                    line.push_str(&format!(" ({e})"));
                }
                line
            }
        }
    }
}

/// The store's health in the status document.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoreDocument {
    /// `store: ok`, or what fails and how much waits, for people.
    pub line: String,
    /// RFC 3339, while writes fail.
    pub failing_since: Option<String>,
    pub waiting: usize,
    pub dropped: u64,
    pub last_error: Option<String>,
}

/// The status document: how the box is, for programs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StatusDocument {
    pub status: Overall,
    pub version: String,
    /// RFC 3339.
    pub started_at: String,
    /// Seconds since vigild started.
    pub uptime: u64,
    pub summary: String,
    pub maintenance: bool,
    pub maintenance_until: Option<String>,
    pub maintenance_reason: Option<String>,
    pub update_state: String,
    /// A bundle a USB stick offered (`NAME VERSION at PATH`), until one is applied.
    #[serde(default)]
    pub update_offered: Option<String>,
    pub open_incidents: u32,
    pub builtin_policies: bool,
    /// Whether the store writes what vigild records.
    #[serde(default)]
    pub store: StoreDocument,
    pub counts: StatusCounts,
    pub checks: Vec<CheckDocument>,
}

/// One check in the status document.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CheckDocument {
    pub name: String,
    pub probe: String,
    pub status: Status,
    /// RFC 3339.
    pub since: String,
    pub detail: String,
    /// Metric values; `null` where not finite.
    pub metrics: BTreeMap<String, Option<f64>>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(name: &str, status: Status) -> CheckState {
        CheckState {
            name: name.into(),
            probe: "disk".into(),
            status,
            since: 0,
            detail: String::new(),
            metrics: Default::default(),
            last_probe: None,
        }
    }

    #[test]
    fn summary_names_failing_checks() {
        let mut s = Snapshot::starting(0);
        s.status = Overall::Ok;
        s.checks = vec![
            Arc::new(check("a", Status::Ok)),
            Arc::new(check("b", Status::Ok)),
            Arc::new(check("c", Status::Ok)),
        ];
        assert_eq!(s.summary_line(), "ok · 3 checks · 0 incidents");
        s.status = Overall::Critical;
        Arc::make_mut(&mut s.checks[1]).status = Status::Crit;
        Arc::make_mut(&mut s.checks[2]).status = Status::Unknown;
        s.open_incidents = 1;
        assert_eq!(
            s.summary_line(),
            "critical · 3 checks · 1 incident · crit: b · unknown: c"
        );
    }

    #[test]
    fn the_document_has_every_field_and_no_nan() {
        let mut s = Snapshot::starting(1_000_000);
        let mut c = check("a", Status::Ok);
        c.metrics.insert("x".into(), f64::NAN);
        c.metrics.insert("y".into(), 2.5);
        s.checks = vec![Arc::new(c)];
        s.started_mono = 7_000_000;
        let now = Now {
            wall: 4_000_000,
            mono: 10_000_000,
        };
        let doc = s.status_document(now, "9.9.9");
        let v = serde_json::to_value(&doc).unwrap();
        assert_eq!(v["uptime"], 3);
        assert_eq!(v["version"], "9.9.9");
        assert_eq!(v["update_state"], "idle");
        assert_eq!(v["checks"][0]["metrics"]["x"], serde_json::Value::Null);
        assert_eq!(v["checks"][0]["metrics"]["y"], 2.5);
        assert_eq!(v["started_at"], "1970-01-01T00:00:01.000Z");
        let back: StatusDocument = serde_json::from_value(v).unwrap();
        assert_eq!(back, doc);
    }
}
