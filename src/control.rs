//! Requests the surfaces send into the daemon loop, each with its typed reply.
//!
//! The loop owns every piece of state; a D-Bus method (or anything else that wants a change)
//! sends one of these and awaits the answer. Surfaces import this module, never the daemon.

use tokio::sync::oneshot;

use crate::core::health::CheckState;

/// The answer to a request: a one-line summary, or what was wrong, for people.
pub type Reply<T> = oneshot::Sender<Result<T, String>>;

/// A request from a surface to the loop.
pub enum Command {
    /// Re-read settings and policies. Answers a summary or every error.
    Reload { reply: Reply<String> },
    /// Probe one check now; answers its state after that reading.
    RunCheck {
        name: String,
        reply: Reply<CheckState>,
    },
    /// An update request, passed on to the update runner.
    Update(UpdateRequest),
    /// Maintenance on for `seconds`, or off. Answers a one-line summary, once the tunnel
    /// unit (one of `[maintenance] tunnel_units`), where one is named, started or stopped.
    SetMaintenance {
        on: bool,
        seconds: u64,
        reason: String,
        /// The tunnel to start with the window (empty: none).
        tunnel: Option<String>,
        /// Who asks, for the log (`alice (uid 1000)`).
        by: String,
        reply: Reply<String>,
    },
}

/// What the update runner is asked.
pub enum UpdateRequest {
    /// Apply the bundle at this absolute path; answers the run id once its manifest and
    /// signature passed and the run began.
    Apply { path: String, reply: Reply<String> },
    /// Roll back the active run, or the last committed one; answers the run id.
    Rollback { who: String, reply: Reply<String> },
    /// A USB stick is mounted at this directory; answers an `OfferAnswer` (JSON).
    Offer { dir: String, reply: Reply<String> },
}

/// When the evaluation loop last went round, on the monotonic clock. The heartbeat reads
/// it: a loop that stopped turning makes the box `critical` there, whatever the last
/// snapshot says (the loop is also what pings systemd's watchdog).
pub struct Pulse {
    last_mono: std::sync::atomic::AtomicU64,
    /// How long the loop may be silent before it counts as stalled.
    stall_after_micros: u64,
}

impl Pulse {
    /// A pulse that beat at `now_mono`, stalled after `stall_after` without a beat.
    pub fn new(now_mono: u64, stall_after: std::time::Duration) -> Pulse {
        Pulse {
            last_mono: std::sync::atomic::AtomicU64::new(now_mono),
            stall_after_micros: u64::try_from(stall_after.as_micros()).unwrap_or(u64::MAX),
        }
    }

    /// The loop went round at `now_mono`.
    pub fn beat(&self, now_mono: u64) {
        self.last_mono
            .store(now_mono, std::sync::atomic::Ordering::Relaxed);
    }

    /// Whether the loop has been silent too long at `now_mono`.
    pub fn stalled(&self, now_mono: u64) -> bool {
        let last = self.last_mono.load(std::sync::atomic::Ordering::Relaxed);
        now_mono.saturating_sub(last) > self.stall_after_micros
    }
}
