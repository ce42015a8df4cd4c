//! The status snapshot the daemon loop publishes, and the status document that D-Bus
//! (`GetStatus`), HTTP and `vigilctl status --json` share. Surfaces only read these.

use std::collections::{BTreeMap, VecDeque};
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::core::health::{CheckState, Overall, Status, StatusCounts};
use crate::core::time::{rfc3339_millis, Micros, Mono, Now};
use crate::core::update::UpdateState;

mod activity;

pub use activity::{
    ActionCounts, ActionKey, ActionTally, Event, OpenIncident, RecentAction, OPEN_INCIDENTS_LISTED,
    RECENT_ACTIONS_KEPT, TALLY_INCIDENTS_KEPT,
};

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
    /// The tunnel unit the maintenance window started, if any.
    pub maintenance_tunnel: Option<String>,
    /// Who turned maintenance on.
    pub maintenance_by: Option<String>,
    pub update_state: UpdateState,
    /// A bundle a USB stick offered and nobody applied yet (`NAME VERSION at PATH`).
    pub update_offered: Option<String>,
    pub open_incidents: u32,
    /// True when the built-in default checks are in force (no policy file found).
    pub builtin_policies: bool,
    /// Whether the store writes.
    pub store: StoreHealth,
    /// Incidents going on, by state.
    pub incidents: IncidentCounts,
    /// Actions taken since start, by rule, action and result.
    pub actions: Arc<ActionCounts>,
    /// The push heartbeat and the sensor push, where configured.
    pub push: Vec<PushStatus>,
    /// The first [`OPEN_INCIDENTS_LISTED`] incidents going on, by id.
    pub open_list: Arc<Vec<OpenIncident>>,
    /// The last [`RECENT_ACTIONS_KEPT`] actions, oldest first.
    pub recent_actions: Arc<VecDeque<RecentAction>>,
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
            maintenance_tunnel: None,
            maintenance_by: None,
            update_state: UpdateState::Idle,
            update_offered: None,
            open_incidents: 0,
            builtin_policies: false,
            store: StoreHealth::default(),
            incidents: IncidentCounts::default(),
            actions: Arc::default(),
            push: Vec::new(),
            open_list: Arc::default(),
            recent_actions: Arc::default(),
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
            && self.maintenance_tunnel == other.maintenance_tunnel
            && self.maintenance_by == other.maintenance_by
            && self.update_state == other.update_state
            && self.update_offered == other.update_offered
            && self.open_incidents == other.open_incidents
            && self.builtin_policies == other.builtin_policies
            && self.store == other.store
            && self.incidents == other.incidents
            && self.actions == other.actions
            && self.push == other.push
            && self.open_list == other.open_list
            && self.recent_actions == other.recent_actions
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
            maintenance_tunnel: self.maintenance_tunnel.clone(),
            maintenance_by: self.maintenance_by.clone(),
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
            push: self.push.iter().map(PushStatus::document).collect(),
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

/// Incidents going on, by state.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct IncidentCounts {
    pub open: u32,
    pub acting: u32,
    pub exhausted: u32,
}

/// How one push (the heartbeat or the sensor push) is going; the push loop keeps it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PushStatus {
    /// `heartbeat` or `metrics`.
    pub name: String,
    /// `vigil`, `healthchecks`, `uptime-kuma` or `sensor`.
    pub format: String,
    /// `scheme://host[:port]`: where, without the path (which may be a secret).
    pub target: String,
    /// When the last push ended (wall time).
    pub last_at: Option<Micros>,
    /// Whether it was taken.
    pub last_ok: bool,
    /// `ok (HTTP 200)` or why it failed.
    pub last_result: String,
    /// Bytes of the last request (head and body).
    pub last_bytes: u64,
    pub ok_total: u64,
    pub failed_total: u64,
    /// Bytes of the requests the endpoint answered.
    pub bytes_total: u64,
    /// When the last push was taken (wall time).
    pub last_ok_at: Option<Micros>,
    /// State changes or snapshots waiting for the endpoint, oldest first.
    pub queued: u64,
    /// Dropped from a full queue.
    pub dropped: u64,
}

impl PushStatus {
    /// `heartbeat push (uptime-kuma to https://kuma.example.com): ok (HTTP 200) at …, 0 queued`.
    pub fn line(&self) -> String {
        let mut line = format!("{} push ({} to {}): ", self.name, self.format, self.target);
        match self.last_at {
            None => line.push_str("nothing sent yet"),
            Some(at) => line.push_str(&format!("{} at {}", self.last_result, rfc3339_millis(at))),
        }
        line.push_str(&format!(", {} queued", self.queued));
        if self.dropped > 0 {
            line.push_str(&format!(", {} dropped", self.dropped));
        }
        line
    }

    /// The push in the status document.
    pub fn document(&self) -> PushDocument {
        PushDocument {
            line: self.line(),
            name: self.name.clone(),
            format: self.format.clone(),
            target: self.target.clone(),
            last_at: self.last_at.map(rfc3339_millis),
            last_ok: self.last_ok,
            last_result: self.last_result.clone(),
            last_bytes: self.last_bytes,
            last_ok_at: self.last_ok_at.map(rfc3339_millis),
            ok_total: self.ok_total,
            failed_total: self.failed_total,
            queued: self.queued,
            dropped: self.dropped,
        }
    }
}

/// A push in the status document.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PushDocument {
    /// For people: what, where, how the last went, how many wait.
    pub line: String,
    pub name: String,
    pub format: String,
    pub target: String,
    /// RFC 3339.
    pub last_at: Option<String>,
    pub last_ok: bool,
    pub last_result: String,
    pub last_bytes: u64,
    pub last_ok_at: Option<String>,
    pub ok_total: u64,
    pub failed_total: u64,
    pub queued: u64,
    pub dropped: u64,
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
    /// The tunnel unit the maintenance window started, if any.
    #[serde(default)]
    pub maintenance_tunnel: Option<String>,
    /// Who turned maintenance on.
    #[serde(default)]
    pub maintenance_by: Option<String>,
    pub update_state: String,
    /// A bundle a USB stick offered (`NAME VERSION at PATH`), until one is applied.
    #[serde(default)]
    pub update_offered: Option<String>,
    pub open_incidents: u32,
    pub builtin_policies: bool,
    /// Whether the store writes what vigild records.
    #[serde(default)]
    pub store: StoreDocument,
    /// The pushes configured, and how their last one went.
    #[serde(default)]
    pub push: Vec<PushDocument>,
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
    fn the_push_line_says_where_and_how() {
        let p = PushStatus {
            name: "heartbeat".into(),
            format: "vigil".into(),
            target: "https://m.example.com".into(),
            queued: 2,
            ..Default::default()
        };
        assert_eq!(
            p.line(),
            "heartbeat push (vigil to https://m.example.com): nothing sent yet, 2 queued"
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
