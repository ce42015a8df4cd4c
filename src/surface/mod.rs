//! Status surfaces: D-Bus, HTTP, sd_notify and the journal. Each reads a [`Snapshot`]
//! published by the daemon loop; none of them owns state.

pub mod dbus;
pub mod http;
pub mod log;
pub mod notify;

use serde_json::json;

use crate::health::{CheckState, Micros, Overall, StatusCounts};

/// Something that happened, for signals and logs (the snapshot says how things are).
#[derive(Debug, Clone, PartialEq)]
pub enum Event {
    Transition(crate::health::Transition),
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
    pub started_at: Micros,
    pub status: Overall,
    pub checks: Vec<CheckState>,
    pub counts: StatusCounts,
    pub maintenance: bool,
    pub maintenance_until: Option<Micros>,
    pub maintenance_reason: Option<String>,
    pub update_state: String,
    pub open_incidents: u32,
    /// True when the built-in default checks are in force (no policy file found).
    pub builtin_policies: bool,
}

impl Snapshot {
    /// A snapshot before the first probe.
    pub fn starting(started_at: Micros) -> Snapshot {
        Snapshot {
            started_at,
            status: Overall::Degraded,
            checks: Vec::new(),
            counts: StatusCounts::default(),
            maintenance: false,
            maintenance_until: None,
            maintenance_reason: None,
            update_state: "idle".into(),
            open_incidents: 0,
            builtin_policies: false,
        }
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
            ("crit", crate::health::Status::Crit),
            ("warn", crate::health::Status::Warn),
            ("unknown", crate::health::Status::Unknown),
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
        line
    }

    /// The status document of `GetStatus()` and `vigilctl status --json`.
    pub fn status_document(&self, now: Micros) -> serde_json::Value {
        json!({
            "status": self.status,
            "version": crate::VERSION,
            "started_at": rfc3339_millis(self.started_at),
            "uptime": now.saturating_sub(self.started_at) / 1_000_000,
            "summary": self.summary_line(),
            "maintenance": self.maintenance,
            "maintenance_until": self.maintenance_until.map(rfc3339_millis),
            "maintenance_reason": self.maintenance_reason,
            "update_state": self.update_state,
            "open_incidents": self.open_incidents,
            "builtin_policies": self.builtin_policies,
            "counts": self.counts,
            "checks": self.checks.iter().map(|c| json!({
                "name": c.name,
                "probe": c.probe,
                "status": c.status,
                "since": rfc3339_millis(c.since),
                "detail": c.detail,
                "metrics": c.metrics.iter()
                    .map(|(k, v)| (k.clone(), if v.is_finite() { json!(v) } else { json!(null) }))
                    .collect::<serde_json::Map<_, _>>(),
            })).collect::<Vec<_>>(),
        })
    }
}

/// RFC 3339 UTC with milliseconds and `Z`: `2026-02-17T10:00:00.000Z`.
pub fn rfc3339_millis(at: Micros) -> String {
    let t = std::time::UNIX_EPOCH + std::time::Duration::from_micros(at);
    humantime::format_rfc3339_millis(t).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::health::Status;

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
            check("a", Status::Ok),
            check("b", Status::Ok),
            check("c", Status::Ok),
        ];
        assert_eq!(s.summary_line(), "ok · 3 checks · 0 incidents");
        s.status = Overall::Critical;
        s.checks[1].status = Status::Crit;
        s.checks[2].status = Status::Unknown;
        s.open_incidents = 1;
        assert_eq!(
            s.summary_line(),
            "critical · 3 checks · 1 incident · crit: b · unknown: c"
        );
    }

    #[test]
    fn timestamps_have_millis_and_z() {
        assert_eq!(
            rfc3339_millis(1_771_322_400_000_000),
            "2026-02-17T10:00:00.000Z"
        );
        assert_eq!(rfc3339_millis(1_500), "1970-01-01T00:00:00.001Z");
    }
}
