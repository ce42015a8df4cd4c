//! What applying an update bundle does to the box, one adapter per part: staging a bundle
//! while it is verified, the free-space check, release directories and the `current` link,
//! Docker image tags, update hooks, and the update journal in SQLite. The state machine
//! that drives them is the core's (`core::update_run`); the daemon runs it.

pub mod hooks;
pub mod images;
pub mod journal;
pub mod release;
pub mod space;
pub mod staging;

pub use hooks::HookEnv;
pub use journal::{EventRow, Journal, RunRow};
pub use release::Releases;
pub use staging::{stage, Staged};
