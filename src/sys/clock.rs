//! The clocks adapters read; the core only ever gets their values.

use crate::core::time::{Micros, Mono, Now};

/// Microseconds since the Unix epoch, now (wall time: for display and records).
pub fn now_micros() -> Micros {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_micros()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}

/// Microseconds of `CLOCK_BOOTTIME`: monotonic, counting a suspend (durations).
pub fn now_mono() -> Mono {
    match nix::time::ClockId::CLOCK_BOOTTIME.now() {
        Ok(t) => (t.tv_sec().max(0) as u64)
            .saturating_mul(1_000_000)
            .saturating_add(t.tv_nsec().max(0) as u64 / 1_000),
        // Linux always has it; a kernel without would still give a monotonic clock here.
        Err(_) => {
            static START: std::sync::OnceLock<std::time::Instant> = std::sync::OnceLock::new();
            let start = START.get_or_init(std::time::Instant::now);
            u64::try_from(start.elapsed().as_micros()).unwrap_or(u64::MAX)
        }
    }
}

/// Both clocks, now.
pub fn now() -> Now {
    Now {
        wall: now_micros(),
        mono: now_mono(),
    }
}

/// This boot's id (`/proc/sys/kernel/random/boot_id`): monotonic times compare only
/// within one boot.
pub fn boot_id() -> Option<String> {
    std::fs::read_to_string("/proc/sys/kernel/random/boot_id")
        .ok()
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_monotonic_clock_moves_forward_and_a_boot_has_an_id() {
        let a = now_mono();
        std::thread::sleep(std::time::Duration::from_millis(5));
        let b = now_mono();
        assert!(b >= a + 5_000, "{a} {b}");
        assert!(boot_id().is_some());
    }
}
