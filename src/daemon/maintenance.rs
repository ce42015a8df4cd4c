//! Maintenance mode in the loop: on for a while, or off; it survives a restart of vigild.
//!
//! A window may bring a tunnel unit for remote maintenance (one of `[maintenance]
//! tunnel_units`, started and stopped through systemd, which polkit allows). Who turned it
//! on, when, why and with which unit goes into the journal and the maintenance log in the
//! store; every tunnel step is logged before it is tried and with what systemd answered.
//! A tunnel that may be up is also remembered on its own ([`TUNNEL_SETTING`]) until its
//! stop succeeded, so a vigild that was down when the window ended still stops it.

use std::time::Duration;

use tracing::{info, warn};

use super::state::Daemon;
use crate::action::outcome::Outcome;
use crate::action::Actuators;
use crate::core::maintenance::{check_tunnel, LogEntry, Maintenance};
use crate::core::time::{rfc3339_millis, Now};
use crate::store::{Record, Store};
use crate::sys::clock;

/// Where maintenance is kept across restarts.
pub const MAINTENANCE_SETTING: &str = "maintenance";
/// The tunnel unit that may be running, until a stop of it succeeded.
pub const TUNNEL_SETTING: &str = "maintenance-tunnel";
/// Who vigild names itself in the log, for what it does on its own.
const BY_VIGILD: &str = "vigild";
/// How long a tunnel unit's start or stop job may take.
const TUNNEL_JOB_LIMIT: Duration = Duration::from_secs(60);

/// A tunnel unit to start or stop off the loop, with what to log about it.
pub(super) struct TunnelJob {
    start: bool,
    unit: String,
    by: String,
    reason: String,
    until: Option<u64>,
    store: Store,
    actuators: std::sync::Arc<Actuators>,
}

impl TunnelJob {
    /// Starts or stops the unit through systemd and logs the answer; answers a line.
    pub(super) async fn run(self) -> Result<String, String> {
        let outcome = self
            .actuators
            .unit_job(self.start, &self.unit, TUNNEL_JOB_LIMIT)
            .await;
        let (event, answer) = match (&outcome, self.start) {
            (Outcome::Done(_), true) => ("tunnel-started", Ok(format!("{} started", self.unit))),
            (Outcome::Done(_), false) => ("tunnel-stopped", Ok(format!("{} stopped", self.unit))),
            (o, true) => ("tunnel-failed", Err(o.to_line())),
            (o, false) => ("tunnel-stop-failed", Err(o.to_line())),
        };
        let line = outcome.to_line();
        if answer.is_ok() {
            info!(vigil_event = "maintenance", vigil_tunnel = %self.unit, vigil_by = %self.by,
                "maintenance tunnel {}: {line}", self.unit);
        } else {
            warn!(vigil_event = "maintenance", vigil_tunnel = %self.unit, vigil_by = %self.by,
                "maintenance tunnel {}: {line}", self.unit);
        }
        if !self.start && answer.is_ok() {
            self.store.write(Record::Setting {
                key: TUNNEL_SETTING.into(),
                value: String::new(),
            });
        }
        self.store.write(Record::MaintenanceLog(LogEntry {
            at: clock::now_micros(),
            event: event.into(),
            by: self.by,
            reason: self.reason,
            until: self.until,
            tunnel: Some(self.unit),
            result: Some(line),
        }));
        answer
    }
}

/// How a maintenance window ends.
#[derive(Clone, Copy)]
pub(super) enum Ending {
    /// Someone turned it off.
    TurnedOff,
    /// Its time ran out.
    ByItself,
}

impl Ending {
    /// For the journal: `maintenance mode {how}`.
    fn how(self) -> &'static str {
        match self {
            Ending::TurnedOff => "turned off",
            Ending::ByItself => "ended by itself",
        }
    }

    /// The event in the maintenance log.
    fn event(self) -> &'static str {
        match self {
            Ending::TurnedOff => "off",
            Ending::ByItself => "ended",
        }
    }
}

impl Daemon {
    /// Maintenance on for `seconds` from `now`, or off. Answers a one-line summary, and the
    /// tunnel jobs to run (in order) before the answer is given.
    pub(super) fn set_maintenance(
        &mut self,
        on: bool,
        seconds: u64,
        reason: String,
        tunnel: Option<String>,
        by: String,
        now: Now,
    ) -> Result<(String, Vec<TunnelJob>), String> {
        let tunnel = tunnel.filter(|t| !t.is_empty());
        if !on {
            let jobs = self
                .end_maintenance(Ending::TurnedOff, &by)
                .into_iter()
                .collect();
            return Ok(("maintenance off".to_string(), jobs));
        }
        if let Some(t) = &tunnel {
            check_tunnel(t, &self.cfg.tunnel_units)?;
        }
        let mut m = Maintenance::start(now, seconds, reason, self.boot.clone())?;
        m.tunnel = tunnel.clone();
        m.by = Some(by.clone());
        let mut jobs = Vec::new();
        // A window that replaces one with another tunnel takes that one down first.
        if let Some(old) = self
            .rules
            .maintenance
            .as_ref()
            .and_then(|o| o.tunnel.clone())
        {
            if tunnel.as_deref() != Some(old.as_str()) {
                jobs.push(self.tunnel_job(false, &old, &by, "replaced by a new window", None));
            }
        }
        warn!(
            vigil_event = "maintenance",
            vigil_by = %by,
            vigil_tunnel = tunnel.as_deref().unwrap_or(""),
            "maintenance mode on until {} by {by}: {}{} — actions are suspended, checks go on",
            rfc3339_millis(m.until),
            m.reason,
            tunnel.as_deref().map(|t| format!(" (tunnel {t})")).unwrap_or_default(),
        );
        // Recorded before the tunnel is started.
        self.io.store.write(Record::Setting {
            key: MAINTENANCE_SETTING.into(),
            value: serde_json::to_string(&m).unwrap_or_default(),
        });
        self.io.store.write(Record::MaintenanceLog(LogEntry {
            at: now.wall,
            event: "on".into(),
            by: by.clone(),
            reason: m.reason.clone(),
            until: Some(m.until),
            tunnel: tunnel.clone(),
            result: None,
        }));
        if let Some(t) = &tunnel {
            self.io.store.write(Record::Setting {
                key: TUNNEL_SETTING.into(),
                value: t.clone(),
            });
            jobs.push(self.tunnel_job(true, t, &by, &m.reason, Some(m.until)));
        }
        let line = format!(
            "maintenance on until {}{}",
            rfc3339_millis(m.until),
            tunnel.map(|t| format!(", tunnel {t}")).unwrap_or_default()
        );
        self.rules.maintenance = Some(m);
        Ok((line, jobs))
    }

    /// Ends maintenance mode (it may have been off already), saying how and for whom;
    /// answers the stop of its tunnel, if it had one.
    pub(super) fn end_maintenance(&mut self, ending: Ending, by: &str) -> Option<TunnelJob> {
        let how = ending.how();
        let m = self.rules.maintenance.take();
        if let Some(m) = &m {
            info!(
                vigil_event = "maintenance",
                vigil_by = %by,
                vigil_tunnel = m.tunnel.as_deref().unwrap_or(""),
                "maintenance mode {how} ({})", m.reason
            );
            self.io.store.write(Record::MaintenanceLog(LogEntry {
                at: clock::now_micros(),
                event: ending.event().into(),
                by: by.to_string(),
                reason: m.reason.clone(),
                until: Some(m.until),
                tunnel: m.tunnel.clone(),
                result: None,
            }));
        }
        self.io.store.write(Record::Setting {
            key: MAINTENANCE_SETTING.into(),
            value: String::new(),
        });
        let tunnel = m.and_then(|m| m.tunnel)?;
        Some(self.tunnel_job(false, &tunnel, by, how, None))
    }

    /// A start or stop of `unit` for the log.
    fn tunnel_job(
        &self,
        start: bool,
        unit: &str,
        by: &str,
        reason: &str,
        until: Option<u64>,
    ) -> TunnelJob {
        TunnelJob {
            start,
            unit: unit.to_string(),
            by: by.to_string(),
            reason: reason.to_string(),
            until,
            store: self.io.store.clone(),
            actuators: self.cfg.actuators.clone(),
        }
    }

    /// The window ran out: the tunnel comes down, off the loop.
    pub(super) fn maintenance_over(&mut self) {
        if let Some(job) = self.end_maintenance(Ending::ByItself, BY_VIGILD) {
            spawn_jobs(vec![job], None);
        }
    }

    /// At start: the window of the last run goes on (its tunnel started again, which is
    /// nothing where it runs) or is over (its tunnel stopped); a tunnel remembered as
    /// possibly up that no window has any more is stopped.
    pub(super) fn resume_maintenance(
        &mut self,
        saved: Option<Maintenance>,
        tunnel_up: Option<String>,
        now: Now,
    ) {
        let mut jobs = Vec::new();
        let resumed = saved
            .clone()
            .and_then(|m| m.resume(now, self.boot.as_deref()));
        match (&saved, &resumed) {
            (_, Some(m)) => {
                info!(
                    vigil_event = "maintenance",
                    vigil_tunnel = m.tunnel.as_deref().unwrap_or(""),
                    "maintenance mode still on until {} ({}){}",
                    rfc3339_millis(m.until),
                    m.reason,
                    m.tunnel
                        .as_deref()
                        .map(|t| format!(", tunnel {t}"))
                        .unwrap_or_default()
                );
                if let Some(t) = &m.tunnel {
                    jobs.push(self.tunnel_job(
                        true,
                        t,
                        BY_VIGILD,
                        "the window goes on after a restart of vigild",
                        Some(m.until),
                    ));
                }
            }
            (Some(m), None) => {
                info!(
                    vigil_event = "maintenance",
                    vigil_tunnel = m.tunnel.as_deref().unwrap_or(""),
                    "maintenance mode ended while vigild was not running ({})",
                    m.reason
                );
                self.io.store.write(Record::MaintenanceLog(LogEntry {
                    at: now.wall,
                    event: "ended".into(),
                    by: BY_VIGILD.into(),
                    reason: m.reason.clone(),
                    until: Some(m.until),
                    tunnel: m.tunnel.clone(),
                    result: None,
                }));
                self.io.store.write(Record::Setting {
                    key: MAINTENANCE_SETTING.into(),
                    value: String::new(),
                });
            }
            (None, None) => {}
        }
        let keep = resumed.as_ref().and_then(|m| m.tunnel.clone());
        let stale = tunnel_up
            .into_iter()
            .chain(saved.and_then(|m| m.tunnel))
            .filter(|t| !t.is_empty() && Some(t) != keep.as_ref())
            .collect::<std::collections::BTreeSet<_>>();
        for t in stale {
            jobs.push(self.tunnel_job(false, &t, BY_VIGILD, "the window is over", None));
        }
        self.rules.maintenance = resumed;
        spawn_jobs(jobs, None);
    }
}

/// Runs the jobs in order off the loop, then answers `line` (or the first failure).
pub(super) fn spawn_jobs(
    jobs: Vec<TunnelJob>,
    answer: Option<(String, crate::control::Reply<String>)>,
) {
    if jobs.is_empty() {
        if let Some((line, reply)) = answer {
            let _ = reply.send(Ok(line));
        }
        return;
    }
    tokio::spawn(async move {
        let mut failed = Vec::new();
        for job in jobs {
            if let Err(e) = job.run().await {
                failed.push(e);
            }
        }
        if let Some((line, reply)) = answer {
            let _ = reply.send(if failed.is_empty() {
                Ok(line)
            } else {
                Err(format!("{line}, but the tunnel: {}", failed.join("; ")))
            });
        }
    });
}
