//! Maintenance mode: actions suspended, observing goes on; it ends by itself.
//!
//! Its end is kept on the monotonic clock, so a wall clock that jumps neither ends it early
//! nor keeps it forever. Across a restart of vigild the window is taken up again: exactly,
//! on the same boot (by the monotonic clock and the boot id); by the wall clock after a
//! reboot, never for longer than it was set for.
//!
//! A window may bring a tunnel for remote maintenance: one of the units the operator listed
//! (`[maintenance] tunnel_units`), started when the window begins and stopped when it ends,
//! is turned off, or is found over by a vigild that was down when it ended. Each step goes
//! into a bounded log of who did what, when, why and with which unit.

use serde::{Deserialize, Serialize};

use crate::core::time::{Micros, Mono, Now};

/// Longest maintenance window one call may set.
pub const MAINTENANCE_MAX_SECS: u64 = 7 * 24 * 3600;

/// A maintenance window, as stored across restarts.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Maintenance {
    /// Wall time it began (display).
    pub since: Micros,
    /// Wall time it ends (display).
    pub until: Micros,
    pub reason: String,
    /// How long it was set for.
    #[serde(default)]
    pub seconds: u64,
    /// The boot it was set in (its monotonic times mean something only there).
    #[serde(default)]
    pub boot: Option<String>,
    /// When it ends on that boot's monotonic clock.
    #[serde(default)]
    pub ends_mono: Mono,
    /// The tunnel unit the window started, if any.
    #[serde(default)]
    pub tunnel: Option<String>,
    /// Who turned it on (`alice (uid 1000)`).
    #[serde(default)]
    pub by: Option<String>,
}

/// Most entries the maintenance log keeps (the oldest go first).
pub const MAINTENANCE_LOG_MAX: usize = 200;

/// One step of a maintenance session, as the log keeps it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LogEntry {
    /// Wall time (display).
    pub at: Micros,
    /// `on`, `off`, `ended`, `tunnel-started`, `tunnel-failed`, `tunnel-stopped`,
    /// `tunnel-stop-failed`.
    pub event: String,
    /// Who asked (`vigild` for what it did by itself).
    pub by: String,
    #[serde(default)]
    pub reason: String,
    #[serde(default)]
    pub until: Option<Micros>,
    #[serde(default)]
    pub tunnel: Option<String>,
    /// What systemd answered, for the tunnel steps.
    #[serde(default)]
    pub result: Option<String>,
}

/// Appends `entry`, keeping at most [`MAINTENANCE_LOG_MAX`] entries.
pub fn log_push(log: &mut Vec<LogEntry>, entry: LogEntry) {
    log.push(entry);
    let over = log.len().saturating_sub(MAINTENANCE_LOG_MAX);
    log.drain(..over);
}

/// Whether `name` can be a tunnel unit: a full systemd unit name (`autossh-support.service`,
/// `wg-quick@wg0.service`), nothing a path or a glob could hide in.
pub fn check_unit_name(name: &str) -> Result<(), String> {
    let ok_chars = name
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b":-_.@\\".contains(&b));
    let stem = name.strip_suffix(".service").unwrap_or("");
    if name.len() > 255 || !ok_chars || stem.is_empty() || stem.ends_with('@') {
        return Err(format!(
            "{name:?} is not a service unit name such as \"autossh-support.service\" or \
             \"wg-quick@wg0.service\""
        ));
    }
    Ok(())
}

/// Whether `unit` may be a tunnel under `allowed` (`[maintenance] tunnel_units`), or why not.
pub fn check_tunnel(unit: &str, allowed: &[String]) -> Result<(), String> {
    check_unit_name(unit)?;
    if allowed.iter().any(|a| a == unit) {
        return Ok(());
    }
    if allowed.is_empty() {
        return Err(format!(
            "{unit} is not a tunnel unit: vigil.toml lists none ([maintenance] tunnel_units = \
             [\"{unit}\"] allows it)"
        ));
    }
    Err(format!(
        "{unit} is not a tunnel unit; [maintenance] tunnel_units in vigil.toml lists {}",
        allowed.join(", ")
    ))
}

impl Maintenance {
    /// A window from `now` for `seconds`, or why not. An empty reason is said to be one.
    pub fn start(
        now: Now,
        seconds: u64,
        reason: String,
        boot: Option<String>,
    ) -> Result<Maintenance, String> {
        if seconds == 0 || seconds > MAINTENANCE_MAX_SECS {
            return Err(format!(
                "maintenance needs a duration between 1 s and 7 days, got {seconds} s"
            ));
        }
        let reason = if reason.trim().is_empty() {
            "no reason given".to_string()
        } else {
            reason
        };
        let length = seconds.saturating_mul(1_000_000);
        Ok(Maintenance {
            since: now.wall,
            until: now.wall.saturating_add(length),
            reason,
            seconds,
            boot,
            ends_mono: now.mono.saturating_add(length),
            tunnel: None,
            by: None,
        })
    }

    /// Whether the window is over at monotonic time `mono`.
    pub fn is_over(&self, mono: Mono) -> bool {
        self.ends_mono <= mono
    }

    /// The window taken up again by a new run of vigild at `now` on boot `boot`; `None`
    /// when it is over.
    pub fn resume(self, now: Now, boot: Option<&str>) -> Option<Maintenance> {
        let length = if self.seconds > 0 {
            self.seconds.saturating_mul(1_000_000)
        } else {
            self.until.saturating_sub(self.since)
        }
        .min(MAINTENANCE_MAX_SECS * 1_000_000);
        let same_boot = self.boot.is_some() && self.boot.as_deref() == boot;
        let remaining = if same_boot {
            self.ends_mono.saturating_sub(now.mono).min(length)
        } else if now.wall < self.since {
            // The clock stands before the window began (a box back in 1970): it cannot
            // tell how much is left; at most the whole window.
            length
        } else {
            self.until.saturating_sub(now.wall).min(length)
        };
        (remaining > 0).then(|| Maintenance {
            until: now.wall.saturating_add(remaining),
            boot: boot.map(str::to_string),
            ends_mono: now.mono.saturating_add(remaining),
            ..self
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: u64 = 1_000_000;
    const BOOT: Option<&str> = Some("b1");

    fn at(wall: u64, mono: u64) -> Now {
        Now { wall, mono }
    }

    #[test]
    fn windows_are_bounded_and_end_by_themselves() {
        assert!(Maintenance::start(at(0, 0), 0, "x".into(), None).is_err());
        assert!(Maintenance::start(at(0, 0), MAINTENANCE_MAX_SECS + 1, "x".into(), None).is_err());
        let m = Maintenance::start(at(10, 100), 2, "  ".into(), None).unwrap();
        assert_eq!(
            (m.until, m.reason.as_str()),
            (2 * S + 10, "no reason given")
        );
        assert!(!m.is_over(2 * S + 99) && m.is_over(2 * S + 100));
    }

    /// The wall clock jumping a day forward or an hour back changes nothing.
    #[test]
    fn a_wall_clock_jump_neither_ends_it_nor_keeps_it() {
        let m = Maintenance::start(at(1_000 * S, 50 * S), 3600, "r".into(), None).unwrap();
        // Ten minutes later on the monotonic clock, whatever the wall clock says.
        assert!(!m.is_over(50 * S + 600 * S));
        assert!(m.is_over(50 * S + 3600 * S));
    }

    /// vigild restarted on the same boot with the clock a day ahead, or 54 years behind:
    /// the window goes on exactly as long as it had left.
    #[test]
    fn on_the_same_boot_it_resumes_exactly() {
        let m = Maintenance::start(
            at(1_000_000 * S, 50 * S),
            3600,
            "r".into(),
            Some("b1".into()),
        )
        .unwrap();
        let ahead = m
            .clone()
            .resume(at(1_000_000 * S + 86_400 * S, 60 * S), BOOT)
            .unwrap();
        assert_eq!(ahead.ends_mono, 50 * S + 3600 * S);
        let behind = m.resume(at(5 * S, 60 * S), BOOT).unwrap();
        assert_eq!(behind.ends_mono, 50 * S + 3600 * S);
        assert_eq!(
            behind.until,
            5 * S + 3590 * S,
            "shown on the clock it has now"
        );
    }

    /// After a reboot only the wall clock can tell: a clock behind the window's start gives
    /// at most the whole window, never forever; a clock past its end ends it.
    #[test]
    fn after_a_reboot_the_wall_clock_tells_within_bounds() {
        let m = Maintenance::start(
            at(1_000_000 * S, 50 * S),
            3600,
            "r".into(),
            Some("b1".into()),
        )
        .unwrap();
        let r = m
            .clone()
            .resume(at(1_000_000 * S + 600 * S, 3 * S), Some("b2"))
            .unwrap();
        assert_eq!(r.ends_mono, 3 * S + 3000 * S);
        let r = m.clone().resume(at(7 * S, 3 * S), Some("b2")).unwrap();
        assert_eq!(r.ends_mono, 3 * S + 3600 * S);
        assert!(m
            .resume(at(1_000_000 * S + 7200 * S, 3 * S), Some("b2"))
            .is_none());
    }

    #[test]
    fn tunnel_units_are_full_service_names_on_the_list() {
        for good in [
            "autossh-support.service",
            "wg-quick@wg0.service",
            "a\\x2db.service",
        ] {
            assert!(check_unit_name(good).is_ok(), "{good}");
        }
        for bad in [
            "",
            "ssh",
            ".service",
            "x@.service",
            "../x.service",
            "a b.service",
            "*.service",
            "x.socket",
            "/etc/x.service",
        ] {
            assert!(check_unit_name(bad).is_err(), "{bad:?}");
        }
        let allowed = vec!["wg-quick@wg0.service".to_string()];
        assert!(check_tunnel("wg-quick@wg0.service", &allowed).is_ok());
        let e = check_tunnel("sshd.service", &allowed).unwrap_err();
        assert!(e.contains("lists wg-quick@wg0.service"), "{e}");
        let e = check_tunnel("sshd.service", &[]).unwrap_err();
        assert!(e.contains("lists none"), "{e}");
    }

    #[test]
    fn the_log_is_bounded_and_keeps_the_newest() {
        let mut log = Vec::new();
        for i in 0..(MAINTENANCE_LOG_MAX as u64 + 5) {
            log_push(
                &mut log,
                LogEntry {
                    at: i,
                    event: "on".into(),
                    by: "root (uid 0)".into(),
                    reason: String::new(),
                    until: None,
                    tunnel: None,
                    result: None,
                },
            );
        }
        assert_eq!(log.len(), MAINTENANCE_LOG_MAX);
        assert_eq!(log[0].at, 5);
    }

    /// A window stored by an older vigild (no length, no boot) still resumes by its times.
    #[test]
    fn an_old_record_resumes_by_its_times() {
        let old: Maintenance =
            serde_json::from_str(r#"{"since":0,"until":7200000000,"reason":"x"}"#).unwrap();
        let r = old.resume(at(3600 * S, 9 * S), BOOT).unwrap();
        assert_eq!(r.ends_mono, 9 * S + 3600 * S);
    }
}
