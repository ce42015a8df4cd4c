//! How often a refusal is logged: each distinct request once per `REPEAT`, and no more than
//! `MAX_LINES_PER_MINUTE` lines a minute in all, so that a client looping on a refused call
//! cannot flood the journal. Pure: the caller passes the time.

use std::collections::HashMap;
use std::time::{Duration, Instant};

/// The same method and path is logged again after this long.
pub const REPEAT: Duration = Duration::from_secs(600);
/// Lines per minute, all refusals together.
pub const MAX_LINES_PER_MINUTE: u32 = 20;
/// Distinct requests remembered; beyond that the oldest are forgotten.
const MAX_KEYS: usize = 1024;
const MINUTE: Duration = Duration::from_secs(60);

/// What has been logged lately.
#[derive(Debug)]
pub struct RefusalLog {
    seen: HashMap<String, Instant>,
    minute_start: Instant,
    lines_this_minute: u32,
    suppressed: u64,
}

impl RefusalLog {
    /// Nothing logged yet.
    pub fn new(now: Instant) -> RefusalLog {
        RefusalLog {
            seen: HashMap::new(),
            minute_start: now,
            lines_this_minute: 0,
            suppressed: 0,
        }
    }

    /// Whether the refusal `key` (method and path) is to be logged at `now`: `Some(n)` with
    /// the number of refusals left out since the last line, `None` to leave it out.
    pub fn admit(&mut self, key: &str, now: Instant) -> Option<u64> {
        if now.duration_since(self.minute_start) >= MINUTE {
            self.minute_start = now;
            self.lines_this_minute = 0;
        }
        let recent = self
            .seen
            .get(key)
            .is_some_and(|at| now.duration_since(*at) < REPEAT);
        if recent || self.lines_this_minute >= MAX_LINES_PER_MINUTE {
            self.suppressed += 1;
            return None;
        }
        if self.seen.len() >= MAX_KEYS {
            self.seen.retain(|_, at| now.duration_since(*at) < REPEAT);
            if self.seen.len() >= MAX_KEYS {
                self.seen.clear();
            }
        }
        self.seen.insert(key.to_string(), now);
        self.lines_this_minute += 1;
        Some(std::mem::take(&mut self.suppressed))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_request_once_per_repeat() {
        let t0 = Instant::now();
        let mut log = RefusalLog::new(t0);
        assert_eq!(log.admit("POST /build", t0), Some(0));
        for s in 1..5 {
            assert_eq!(log.admit("POST /build", t0 + Duration::from_secs(s)), None);
        }
        assert_eq!(
            log.admit("GET /volumes", t0 + Duration::from_secs(5)),
            Some(4)
        );
        assert_eq!(log.admit("POST /build", t0 + REPEAT), Some(0));
    }

    #[test]
    fn at_most_so_many_lines_a_minute() {
        let t0 = Instant::now();
        let mut log = RefusalLog::new(t0);
        let logged = (0..100)
            .filter(|i| log.admit(&format!("GET /x{i}"), t0).is_some())
            .count();
        assert_eq!(logged, MAX_LINES_PER_MINUTE as usize);
        assert_eq!(log.admit("GET /y", t0 + MINUTE), Some(80));
    }

    #[test]
    fn remembers_a_bounded_number_of_requests() {
        let t0 = Instant::now();
        let mut log = RefusalLog::new(t0);
        for i in 0..3 * MAX_KEYS {
            let now = t0 + MINUTE * (i as u32 / MAX_LINES_PER_MINUTE);
            log.admit(&format!("GET /x{i}"), now);
            assert!(log.seen.len() <= MAX_KEYS);
        }
    }
}
