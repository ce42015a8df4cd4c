//! Time as the core sees it: values passed in, never read here.
//!
//! [`Micros`] is microseconds since the Unix epoch, read by the adapters
//! (`sys::clock::now_micros`). Today the engine's windows (`for`, cooldowns, limits) are
//! measured on it too, so a wall-clock step moves them; moving them to a monotonic clock is
//! the next step.

use std::time::Duration;

/// Wall time: microseconds since the Unix epoch.
pub type Micros = u64;

/// A duration in microseconds, saturating.
pub fn micros(d: Duration) -> u64 {
    u64::try_from(d.as_micros()).unwrap_or(u64::MAX)
}

/// RFC 3339 UTC with milliseconds and `Z`: `2026-02-17T10:00:00.000Z`.
pub fn rfc3339_millis(at: Micros) -> String {
    let t = std::time::UNIX_EPOCH + Duration::from_micros(at);
    humantime::format_rfc3339_millis(t).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_have_millis_and_z() {
        assert_eq!(
            rfc3339_millis(1_771_322_400_000_000),
            "2026-02-17T10:00:00.000Z"
        );
        assert_eq!(rfc3339_millis(1_500), "1970-01-01T00:00:00.001Z");
    }

    #[test]
    fn micros_saturate() {
        assert_eq!(micros(Duration::from_millis(3)), 3_000);
        assert_eq!(micros(Duration::MAX), u64::MAX);
    }
}
