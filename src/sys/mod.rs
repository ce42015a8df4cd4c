//! Clients that probes and actuators share: the Docker Engine, the systemd bus, HTTP,
//! commands, blocking work, the clock, and the registry that lets the daemon own them.

pub mod blocking;
pub mod clock;
pub mod command;
pub mod docker;
pub mod http;
pub mod identity;
pub mod registry;
pub mod sandbox;
pub mod systemd;
pub mod systemd_job;
