//! Maintenance mode: actions suspended, observing goes on; it ends by itself.

use serde::{Deserialize, Serialize};

use crate::core::time::Micros;

/// Longest maintenance window one call may set.
pub const MAINTENANCE_MAX_SECS: u64 = 7 * 24 * 3600;

/// A maintenance window, as stored across restarts.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Maintenance {
    pub since: Micros,
    pub until: Micros,
    pub reason: String,
}

impl Maintenance {
    /// A window from `now` for `seconds`, or why not. An empty reason is said to be one.
    pub fn start(now: Micros, seconds: u64, reason: String) -> Result<Maintenance, String> {
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
        Ok(Maintenance {
            since: now,
            until: now.saturating_add(seconds.saturating_mul(1_000_000)),
            reason,
        })
    }

    /// Whether the window is over at `now`.
    pub fn is_over(&self, now: Micros) -> bool {
        self.until <= now
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn windows_are_bounded_and_end_by_themselves() {
        assert!(Maintenance::start(0, 0, "x".into()).is_err());
        assert!(Maintenance::start(0, MAINTENANCE_MAX_SECS + 1, "x".into()).is_err());
        let m = Maintenance::start(10, 2, "  ".into()).unwrap();
        assert_eq!((m.until, m.reason.as_str()), (2_000_010, "no reason given"));
        assert!(!m.is_over(2_000_009) && m.is_over(2_000_010));
    }
}
