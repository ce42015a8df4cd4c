//! `container` and `containers`: Docker containers over the Engine API.
//!
//! One [`Engine`] per Docker host is shared by every probe of the daemon. It owns one
//! `/events` stream, driven by a background task from the moment the engine is made (bollard's
//! stream is lazy: nothing is subscribed until it is polled), and wakes the probes whose
//! containers an event concerns. The probes themselves always read the truth with an inspect
//! (or a list and inspects): an event only says *when* to look, so no state is ever reported
//! from memory. When dockerd is unreachable, readings are `unknown` and the events task
//! reconnects with back-off; when it answers again every probe is woken and reads afresh.
//!
//! A crash loop under Docker's own restart policy is `crit`: a container whose
//! `RestartCount` the probe's readings see rise by at least 3 (`CRASH_LOOP_RESTARTS`) within
//! 5 minutes (`CRASH_LOOP_WINDOW`) reads `NAME: crash loop: N restarts in D (STATE, last exit
//! C)`, whatever its state at that moment, until it has gone 5 minutes without a new
//! restart. A container recreated (another id) starts with no history; a start by hand
//! (`docker restart`, vigil's restart action) makes Docker count from 0 again, which is no
//! restart and does not end a loop in progress (`crash_loop.rs`).

mod crash_loop;
pub mod events;
mod judge;
mod probe;

pub use events::Engine;
pub use judge::judge;
pub use probe::{ContainerProbe, ContainersProbe};
