//! Maintenance mode in the loop: on for a while, or off; it survives a restart of vigild.

use tracing::{info, warn};

use super::state::Daemon;
use crate::core::maintenance::Maintenance;
use crate::core::time::{rfc3339_millis, Now};
use crate::store::Record;

/// Where maintenance is kept across restarts.
pub const MAINTENANCE_SETTING: &str = "maintenance";

impl Daemon {
    /// Maintenance on for `seconds` from `now`, or off. Answers a one-line summary.
    pub(super) fn set_maintenance(
        &mut self,
        on: bool,
        seconds: u64,
        reason: String,
        now: Now,
    ) -> Result<String, String> {
        if !on {
            self.end_maintenance("turned off");
            return Ok("maintenance off".to_string());
        }
        let m = Maintenance::start(now, seconds, reason, self.boot.clone())?;
        warn!(
            vigil_event = "maintenance",
            "maintenance mode on until {}: {} — actions are suspended, checks go on",
            rfc3339_millis(m.until),
            m.reason
        );
        self.io.store.write(Record::Setting {
            key: MAINTENANCE_SETTING.into(),
            value: serde_json::to_string(&m).unwrap_or_default(),
        });
        let line = format!("maintenance on until {}", rfc3339_millis(m.until));
        self.rules.maintenance = Some(m);
        Ok(line)
    }

    /// Ends maintenance mode (it may have been off already), saying how.
    pub(super) fn end_maintenance(&mut self, how: &str) {
        if let Some(m) = self.rules.maintenance.take() {
            info!(
                vigil_event = "maintenance",
                "maintenance mode {how} ({})", m.reason
            );
        }
        self.io.store.write(Record::Setting {
            key: MAINTENANCE_SETTING.into(),
            value: String::new(),
        });
    }
}
