//! vigil: keeps an edge AI appliance healthy with nobody on site.
//!
//! The core ([`health`], [`policy`]) is pure: it takes readings and the time and returns
//! statuses. Around it sit thin adapters: [`probe`]s read the host, the [`store`] keeps
//! history in SQLite, and the [`surface`]s report over D-Bus, HTTP, sd_notify and the
//! journal. [`daemon`] is the one loop that owns the state.

pub mod action;
pub mod cli;
pub mod config;
pub mod daemon;
pub mod engine;
pub mod health;
pub mod policy;
pub mod probe;
pub mod store;
pub mod surface;

/// The package version, reported on every surface.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");

/// Microseconds since the Unix epoch, now. The one clock read adapters use.
pub fn now_micros() -> health::Micros {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_micros() as u64)
        .unwrap_or(0)
}
