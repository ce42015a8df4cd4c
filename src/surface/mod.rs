//! Status surfaces: D-Bus, HTTP (heartbeat, `/metrics` and the status page), the push
//! heartbeat and sensor push, sd_notify and the journal. Each reads the
//! [`Snapshot`](crate::core::status::Snapshot) the daemon loop publishes; none of them owns
//! state, and requests go into the loop as [`Command`](crate::control::Command)s.

pub mod dbus;
mod dbus_access;
mod dbus_check;
mod dbus_maintenance;
pub mod http;
mod http_listen;
pub mod log;
pub mod metrics;
pub mod notify;
pub mod push;
pub mod push_format;
pub mod push_send;
pub mod sensor;
pub mod status_page;
