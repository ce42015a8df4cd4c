//! `container` and `containers`: Docker containers over the Engine API.
//!
//! One [`Engine`] per Docker host is shared by every probe of the daemon. It owns one
//! `/events` stream, driven by a background task from the moment the engine is made (bollard's
//! stream is lazy: nothing is subscribed until it is polled), and wakes the probes whose
//! containers an event concerns. The probes themselves always read the truth with an inspect
//! (or a list and inspects): an event only says *when* to look, so no state is ever reported
//! from memory. When dockerd is unreachable, readings are `unknown` and the events task
//! reconnects with back-off; when it answers again every probe is woken and reads afresh.

pub mod events;
mod judge;
mod probe;

pub use events::Engine;
pub use judge::judge;
pub use probe::{ContainerProbe, ContainersProbe};
