//! The daemon: one loop owns the health model. Probe tasks, signals and D-Bus calls send
//! events into it; surfaces read the snapshots it publishes. The loop that evaluates is
//! the loop that pings the watchdog, so a stuck loop gets vigild restarted by systemd.
//!
//! [`startup`] brings everything up; [`event_loop`] is the loop; [`checks`] and
//! [`decisions`] are what it does with a reading and with what the engine decides;
//! [`publish`] sends the result to the surfaces. [`config`] is immutable between reloads,
//! [`state`] is everything the loop owns.

mod bus;
mod checks;
pub mod config;
mod decisions;
mod event_loop;
mod maintenance;
mod probes;
mod publish;
mod startup;
mod state;
mod update;
mod update_effects;
mod update_gate;
mod update_plan;
mod update_requests;

pub use config::{DaemonError, Options, CONFIG_CHECK};
pub use startup::run;
