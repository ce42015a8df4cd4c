//! vigil: keeps an edge AI appliance healthy with nobody on site.
//!
//! The layers, from the bottom up (imports run one way only; tests/layout.rs keeps it so):
//!
//! - [`core`]: the pure core — readings, health, thresholds, rules, the engine, incidents,
//!   maintenance, update states, the status snapshot. No I/O, no clock.
//! - [`policy`] and [`config`]: policy files and `vigil.toml`, parsed with located errors.
//! - [`sys`]: clients probes and actuators share — Docker, the systemd bus, HTTP, commands.
//! - [`probe`], [`action`], [`store`]: adapters that read the host, act on it, and keep
//!   history in SQLite.
//! - [`bundle`] and [`update`]: update bundles read and verified; staging, releases, image
//!   tags, update hooks and the update journal that applying one needs.
//! - [`control`]: the requests surfaces send into the daemon loop.
//! - [`surface`]: D-Bus, HTTP, sd_notify and the journal.
//! - [`daemon`]: start-up and the one loop that owns the state.
//! - [`proxy`]: `vigil-docker-proxy`, the Docker socket that forwards only vigild's calls.
//! - [`cli`]: the command lines of `vigild` and `vigilctl`.

pub mod action;
pub mod bundle;
pub mod cli;
pub mod config;
pub mod control;
pub mod core;
pub mod daemon;
pub mod policy;
pub mod probe;
pub mod proxy;
pub mod store;
pub mod surface;
pub mod sys;
pub mod update;

/// The package version, reported on every surface.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");
