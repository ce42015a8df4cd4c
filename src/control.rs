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
    /// Maintenance on for `seconds`, or off. Answers a one-line summary.
    SetMaintenance {
        on: bool,
        seconds: u64,
        reason: String,
        reply: Reply<String>,
    },
}
