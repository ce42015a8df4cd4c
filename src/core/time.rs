//! Time as the core sees it: values passed in, never read here.
//!
//! Two clocks travel through vigil, read together by the adapters (`sys::clock::now`).
//! [`Micros`] is wall time, microseconds since the Unix epoch: for display and records only.
//! [`Mono`] is monotonic time, microseconds of `CLOCK_BOOTTIME` (it never jumps, and it
//! counts a suspend): every duration — `for`, cooldowns, limit windows, the reboot window,
//! maintenance ends, uptime — is measured on it. A Jetson without an RTC battery boots in
//! 1970 and jumps when NTP answers; none of those durations notices.

use std::time::Duration;

/// Wall time: microseconds since the Unix epoch (display and records).
pub type Micros = u64;

/// Monotonic time: microseconds of `CLOCK_BOOTTIME` (durations).
pub type Mono = u64;

/// Both clocks, read at one moment.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Now {
    pub wall: Micros,
    pub mono: Mono,
}

impl Now {
    /// Where wall time `at` falls on the monotonic clock, as far as the wall clock can
    /// tell: a time in the future (the wall clock went back, or stood in 1970) is taken
    /// as now, so that what it records is not forgotten early.
    pub fn mono_of(&self, at: Micros) -> Mono {
        self.mono.saturating_sub(self.wall.saturating_sub(at))
    }
}

/// A duration in microseconds, saturating.
pub fn micros(d: Duration) -> u64 {
    u64::try_from(d.as_micros()).unwrap_or(u64::MAX)
}

/// The last microsecond humantime formats: 9999-12-31T23:59:59.999999Z. From year 10000 on
/// its formatter returns an error, which `to_string` turns into a panic.
const FORMATTABLE_MAX: Micros = 253_402_300_800_000_000 - 1;

/// RFC 3339 UTC with milliseconds and `Z`: `2026-02-17T10:00:00.000Z`. Total: a time past
/// the end of year 9999 (`u64::MAX`, a negative i64 read back as u64) shows as that end.
pub fn rfc3339_millis(at: Micros) -> String {
    let t = std::time::UNIX_EPOCH + Duration::from_micros(at.min(FORMATTABLE_MAX));
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

    /// Every u64 formats: the end of year 9999 is the last time shown, and nothing after
    /// it (year 10000, u64::MAX, a negative i64 read as u64) panics.
    #[test]
    fn timestamps_past_year_9999_show_as_its_end() {
        let end = "9999-12-31T23:59:59.999Z";
        assert_eq!(
            rfc3339_millis(253_402_300_799_000_000),
            "9999-12-31T23:59:59.000Z"
        );
        assert_eq!(rfc3339_millis(FORMATTABLE_MAX), end);
        for past in [
            FORMATTABLE_MAX + 1,
            253_402_300_800_000_000 + 86_400_000_000,
            i64::MAX as u64,
            -5i64 as u64,
            u64::MAX,
        ] {
            assert_eq!(rfc3339_millis(past), end, "{past}");
        }
        assert_eq!(rfc3339_millis(0), "1970-01-01T00:00:00.000Z");
    }

    #[test]
    fn wall_times_map_to_the_monotonic_clock() {
        let now = Now {
            wall: 1_000_000_000,
            mono: 5_000_000,
        };
        assert_eq!(now.mono_of(999_000_000), 4_000_000);
        // In the future (the clock went back): now.
        assert_eq!(now.mono_of(2_000_000_000), 5_000_000);
        // Older than the monotonic clock's start: its start.
        assert_eq!(now.mono_of(0), 0);
    }

    #[test]
    fn micros_saturate() {
        assert_eq!(micros(Duration::from_millis(3)), 3_000);
        assert_eq!(micros(Duration::MAX), u64::MAX);
    }
}
