//! Actuators: carry out one recovery action and say what happened.
//!
//! Every action has a timeout and returns an [`Outcome`] (never an error that escapes):
//! that outcome is what is recorded in SQLite, logged and signalled. Actions run without
//! privileges: vigild's own user, or `nobody` for commands when vigild runs as root.

pub mod actuators;
mod clean;
mod container;
mod hook;
mod notify;
mod ollama;
pub mod outcome;
mod signal;
mod unit;

pub use actuators::{Actuators, ACTION_TIMEOUT_DEFAULT_SECS};
pub use notify::Notification;
pub use outcome::Outcome;
