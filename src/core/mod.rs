//! The core: readings, health, thresholds, rules, the engine, incidents, maintenance, the
//! update states and the status snapshot. Plain Rust with no I/O: it takes observations
//! and the time as values and returns decisions. It imports nothing from the adapters
//! around it (tests/layout.rs keeps it so).

pub mod action;
pub mod bundle;
pub mod check;
pub mod engine;
pub mod glob;
pub mod health;
pub mod incident;
pub mod maintenance;
pub mod metric;
pub mod metric_tables;
pub mod probe_kind;
pub mod rule;
pub mod smart;
pub mod status;
pub mod threshold;
pub mod time;
pub mod update;
pub mod update_run;
