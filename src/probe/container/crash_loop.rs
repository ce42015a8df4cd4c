//! Crash loops: a container that Docker's restart policy keeps restarting.
//!
//! [`RestartHistory`] remembers, per container, the `RestartCount` its probe's readings saw
//! and when: at least [`CRASH_LOOP_RESTARTS`] restarts first seen within
//! [`CRASH_LOOP_WINDOW`] make a crash loop, which lasts until the container has gone a whole
//! window without a new restart. Pure: the time is always passed in.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use crate::core::health::Status;
use crate::core::metric::Reading;

/// Restarts within [`CRASH_LOOP_WINDOW`] that make a crash loop.
pub const CRASH_LOOP_RESTARTS: u64 = 3;
/// The window of [`CRASH_LOOP_RESTARTS`]; also how long a container must go without a new
/// restart for its crash loop to end.
pub const CRASH_LOOP_WINDOW: Duration = Duration::from_secs(5 * 60);

/// A crash loop going on: how many restarts the readings saw, over how long.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CrashLoop {
    pub restarts: u64,
    /// From the last reading before the loop's first restart (at most a window before the
    /// loop was found) to the first reading that saw its latest one: the restarts happened
    /// within this time.
    pub over: Duration,
}

/// `n` restarts that one reading saw first, at `at`; the reading before was at `before`.
#[derive(Debug, Clone, Copy)]
struct Restarts {
    at: Instant,
    before: Instant,
    n: u64,
}

/// The loop in progress.
#[derive(Debug, Clone, Copy)]
struct Looping {
    since: Instant,
    last: Instant,
    restarts: u64,
}

/// What the readings of one container said about its restarts.
#[derive(Debug, Clone, Default)]
pub struct RestartHistory {
    /// The container the history is of (a recreated container starts a new one).
    id: String,
    /// The last reading: when, and the restart count it saw.
    last: Option<(Instant, i64)>,
    /// Restarts seen within the window, oldest first.
    recent: VecDeque<Restarts>,
    looping: Option<Looping>,
    /// Exit code of the last reading that found the container not running.
    last_exit: Option<i64>,
}

impl RestartHistory {
    /// One reading at `now` of container `id`: its restart count, and its exit code when it
    /// was not running. Another id is another container: the history starts again. A lower
    /// count of the same container is a start by hand (`docker start`/`restart`, as vigil's
    /// own restart action does: Docker then counts from 0 again), not a restart: the count
    /// is taken as the new base and a crash loop in progress goes on.
    pub fn observe(&mut self, now: Instant, id: &str, restart_count: i64, exit: Option<i64>) {
        if self.id != id {
            *self = RestartHistory {
                id: id.to_string(),
                ..Default::default()
            };
        }
        if let Some((before, count)) = self.last {
            if restart_count > count {
                let n = (restart_count - count) as u64;
                self.recent.push_back(Restarts { at: now, before, n });
                if let Some(l) = &mut self.looping {
                    l.last = now;
                    l.restarts += n;
                }
            }
        }
        self.last = Some((now, restart_count));
        if exit.is_some() {
            self.last_exit = exit;
        }
    }

    /// Whether the container is in a crash loop at `now`.
    pub fn crash_loop(&mut self, now: Instant) -> Option<CrashLoop> {
        let within = |at: Instant| now.saturating_duration_since(at) < CRASH_LOOP_WINDOW;
        while self.recent.front().is_some_and(|r| !within(r.at)) {
            self.recent.pop_front();
        }
        if self.looping.is_some_and(|l| !within(l.last)) {
            self.looping = None;
        }
        if self.looping.is_none() {
            let n: u64 = self.recent.iter().map(|r| r.n).sum();
            if n >= CRASH_LOOP_RESTARTS {
                let first = self.recent.front().expect("restarts were counted");
                let last = self.recent.back().expect("restarts were counted");
                // No earlier than a window ago: a reading long before says little.
                let since = now
                    .checked_sub(CRASH_LOOP_WINDOW)
                    .map_or(first.before, |w| first.before.max(w));
                self.looping = Some(Looping {
                    since,
                    last: last.at,
                    restarts: n,
                });
            }
        }
        self.looping.map(|l| CrashLoop {
            restarts: l.restarts,
            over: l.last.saturating_duration_since(l.since),
        })
    }

    /// Exit code of the last reading that found the container not running.
    pub fn last_exit(&self) -> Option<i64> {
        self.last_exit
    }
}

/// The reading of a container (judged from its inspect; `state` is its state as Docker
/// words it), made `crit` with a crash-loop detail when its history says it is in one at
/// `now`. Other readings pass unchanged.
pub fn mark(
    name: &str,
    reading: Reading,
    state: &str,
    history: &mut RestartHistory,
    now: Instant,
) -> Reading {
    let Some(lp) = history.crash_loop(now) else {
        return reading;
    };
    let Reading::Value { metrics, .. } = reading else {
        return reading;
    };
    let exit = history
        .last_exit()
        .map(|c| format!(", last exit {c}"))
        .unwrap_or_default();
    Reading::Value {
        status: Some(Status::Crit),
        detail: format!(
            "{name}: crash loop: {} restart{} in {} ({state}{exit})",
            lp.restarts,
            if lp.restarts == 1 { "" } else { "s" },
            span(lp.over)
        ),
        metrics,
    }
}

/// A duration to the second, as humans say it.
fn span(d: Duration) -> String {
    let secs = (d.as_millis() + 500) / 1000;
    if secs == 0 {
        return "under 1s".into();
    }
    humantime::format_duration(Duration::from_secs(secs as u64)).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::metric::Metrics;

    const S: Duration = Duration::from_secs(1);

    /// A fake timeline: `t(n)` is n seconds after the start.
    fn timeline() -> impl Fn(u64) -> Instant {
        let t0 = Instant::now();
        move |s| t0 + S * s as u32
    }

    #[test]
    fn rising_counts_are_a_crash_loop() {
        let t = timeline();
        let mut h = RestartHistory::default();
        h.observe(t(0), "a", 0, None);
        assert_eq!(h.crash_loop(t(0)), None);
        h.observe(t(2), "a", 1, Some(1));
        h.observe(t(5), "a", 2, Some(1));
        assert_eq!(h.crash_loop(t(5)), None);
        h.observe(t(9), "a", 3, Some(1));
        assert_eq!(
            h.crash_loop(t(9)),
            Some(CrashLoop {
                restarts: 3,
                over: S * 9
            })
        );
        // It goes on while the restarts do, counting them all, even ones far apart.
        h.observe(t(100), "a", 4, None);
        h.observe(t(380), "a", 5, None);
        assert_eq!(
            h.crash_loop(t(390)),
            Some(CrashLoop {
                restarts: 5,
                over: S * 380
            })
        );
    }

    #[test]
    fn restarts_spread_wider_than_the_window_are_no_crash_loop() {
        let t = timeline();
        let mut h = RestartHistory::default();
        h.observe(t(0), "a", 0, None);
        h.observe(t(10), "a", 1, None);
        h.observe(t(200), "a", 2, None);
        h.observe(t(320), "a", 3, None);
        assert_eq!(h.crash_loop(t(320)), None);
        // Several restarts seen by one reading count as many.
        h.observe(t(330), "a", 5, None);
        assert_eq!(
            h.crash_loop(t(330)),
            Some(CrashLoop {
                restarts: 4,
                over: S * 300
            })
        );
    }

    #[test]
    fn a_count_that_stops_rising_is_ok_after_the_window() {
        let t = timeline();
        let mut h = RestartHistory::default();
        for (s, c) in [(0, 0), (1, 1), (2, 2), (4, 3), (8, 4)] {
            h.observe(t(s), "a", c, None);
        }
        assert!(h.crash_loop(t(8)).is_some());
        // The container runs again: readings see the same count.
        for s in [30, 90, 200, 307] {
            h.observe(t(s), "a", 4, None);
            assert!(h.crash_loop(t(s)).is_some(), "at {s}s");
        }
        h.observe(t(308), "a", 4, None);
        assert_eq!(h.crash_loop(t(308)), None);
        // A later single restart is not a loop again.
        h.observe(t(400), "a", 5, None);
        assert_eq!(h.crash_loop(t(400)), None);
    }

    #[test]
    fn a_recreated_container_starts_a_new_history() {
        let t = timeline();
        let mut h = RestartHistory::default();
        for (s, c) in [(0, 0), (1, 1), (2, 2), (3, 3)] {
            h.observe(t(s), "old", c, Some(1));
        }
        assert!(h.crash_loop(t(3)).is_some());
        h.observe(t(4), "new", 0, None);
        assert_eq!(h.crash_loop(t(4)), None);
        assert_eq!(h.last_exit(), None);
        h.observe(t(5), "new", 1, None);
        h.observe(t(6), "new", 2, None);
        assert_eq!(h.crash_loop(t(6)), None);
    }

    #[test]
    fn a_start_by_hand_resets_the_count_but_not_the_loop() {
        let t = timeline();
        let mut h = RestartHistory::default();
        for (s, c) in [(0, 0), (1, 1), (2, 2), (3, 3)] {
            h.observe(t(s), "a", c, Some(1));
        }
        assert!(h.crash_loop(t(3)).is_some());
        // `docker restart`: Docker counts from 0 again; the loop goes on.
        h.observe(t(20), "a", 0, None);
        assert!(h.crash_loop(t(20)).is_some());
        h.observe(t(21), "a", 1, Some(1));
        assert_eq!(
            h.crash_loop(t(21)),
            Some(CrashLoop {
                restarts: 4,
                over: S * 21
            })
        );
        // Without a loop, a count from 0 again is no restart either.
        let mut h = RestartHistory::default();
        h.observe(t(0), "b", 5, None);
        h.observe(t(1), "b", 0, None);
        h.observe(t(2), "b", 2, None);
        assert_eq!(h.crash_loop(t(2)), None);
    }

    fn value(status: Status, detail: &str) -> Reading {
        let mut m = Metrics::new();
        m.insert("restart_count".into(), 4.0);
        Reading::Value {
            status: Some(status),
            detail: detail.into(),
            metrics: m,
        }
    }

    #[test]
    fn a_crash_loop_makes_the_reading_crit_and_says_so() {
        let t = timeline();
        let mut h = RestartHistory::default();
        for (s, c) in [(0, 0), (5, 1), (12, 2), (20, 3), (38, 4)] {
            h.observe(t(s), "id", c, Some(1));
        }
        let judged = value(
            Status::Warn,
            "arasul-db: restarting (last exit code 1), 4 restarts",
        );
        let Reading::Value {
            status,
            detail,
            metrics,
        } = mark("arasul-db", judged, "restarting", &mut h, t(38))
        else {
            panic!()
        };
        assert_eq!(status, Some(Status::Crit));
        assert_eq!(
            detail,
            "arasul-db: crash loop: 4 restarts in 38s (restarting, last exit 1)"
        );
        assert_eq!(metrics["restart_count"], 4.0);
        // Not in a loop: unchanged; unknown readings pass too.
        let mut calm = RestartHistory::default();
        calm.observe(t(0), "id", 0, None);
        let r = value(Status::Ok, "web: running");
        assert_eq!(mark("web", r.clone(), "running", &mut calm, t(1)), r);
        let u = Reading::Unknown("no state".into());
        assert_eq!(mark("web", u.clone(), "running", &mut h, t(40)), u);
        // Never seen exited: no exit code to tell.
        let mut h = RestartHistory::default();
        for (s, c) in [(0, 0), (1, 3)] {
            h.observe(t(s), "id", c, None);
        }
        let Reading::Value { detail, .. } = mark(
            "w",
            value(Status::Ok, "w: running"),
            "running",
            &mut h,
            t(1),
        ) else {
            panic!()
        };
        assert_eq!(detail, "w: crash loop: 3 restarts in 1s (running)");
        assert_eq!(span(Duration::from_millis(300)), "under 1s");
        assert_eq!(span(S * 125), "2m 5s");
    }
}
