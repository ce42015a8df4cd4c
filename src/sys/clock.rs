//! The clocks adapters read; the core only ever gets their values.

use crate::core::time::Micros;

/// Microseconds since the Unix epoch, now (wall time: for display and records).
pub fn now_micros() -> Micros {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_micros()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}
