//! What every probe is: a source of readings for one check, and what it gets to work with.

use std::sync::Arc;

use async_trait::async_trait;
use tokio::sync::Notify;

use crate::core::check::HostRoots;
use crate::core::metric::Reading;
use crate::probe::container::events::Engine;
use crate::sys::registry::Registry;
use crate::sys::systemd::SystemdBus;

/// What probes need from the daemon's settings.
#[derive(Clone, Default)]
pub struct Context {
    pub roots: HostRoots,
    /// Docker Engine address (`[docker] host`); `None` means the standard socket.
    pub docker_host: Option<String>,
    /// D-Bus address for the systemd probe; `None` means the system bus.
    pub systemd_bus: Option<String>,
    /// The connections every probe of the daemon shares.
    pub connections: Arc<Connections>,
}

/// Connections shared by the probes of one daemon: one Docker events stream per host
/// (it stops when no probe needs it), one systemd bus connection per address (kept, with
/// its back-off, across reloads). The daemon makes one and keeps it.
pub struct Connections {
    pub docker: Registry<String, Engine>,
    pub systemd: Registry<Option<String>, SystemdBus>,
}

impl Default for Connections {
    fn default() -> Self {
        Connections {
            docker: Registry::default(),
            systemd: Registry::keeping(),
        }
    }
}

/// A source of readings for one check.
#[async_trait]
pub trait Probe: Send {
    /// Takes one reading. Slow or blocking work runs off the runtime; the caller bounds the
    /// whole call with the check's `timeout`.
    async fn read(&mut self) -> Reading;

    /// Event-driven probes (unit or container state streams) return a notifier that fires
    /// when something changed, so the check is read at once instead of on its next tick.
    fn wake(&self) -> Option<Arc<Notify>> {
        None
    }
}
