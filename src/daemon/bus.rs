//! The D-Bus side of the daemon: taking the name (now, or in the background until the bus
//! lets it) and publishing every snapshot and event the loop sends.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{mpsc, watch};
use tracing::{info, warn};

use super::config::DaemonError;
use super::state::Publication;
use crate::control::Command;
use crate::core::status::Snapshot;
use crate::store::Store;
use crate::surface::dbus::DbusSurface;

/// Longest wait between two tries for the bus name.
const RETRY_MAX: Duration = Duration::from_secs(5);

/// Connects and starts publishing. An explicit address must work; otherwise a missing bus
/// is one warning, and vigild keeps trying in the background.
pub async fn start(
    bus: Option<&str>,
    snap_rx: watch::Receiver<Arc<Snapshot>>,
    cmd_tx: mpsc::Sender<Command>,
    store: Store,
    pub_rx: mpsc::UnboundedReceiver<Publication>,
) -> Result<(), DaemonError> {
    match DbusSurface::connect(bus, snap_rx.clone(), cmd_tx.clone(), store.clone()).await {
        Ok(surface) => {
            tokio::spawn(publish(surface, pub_rx));
            Ok(())
        }
        Err(e) if bus.is_some() => Err(DaemonError::Startup(e)),
        Err(e) => {
            // The system bus may refuse the name for a while: before dbus-daemon has read a
            // policy file that names a known user (a package install), or while it restarts.
            // The heartbeat and the rules do not wait for it.
            warn!(
                vigil_event = "bus",
                "{e}; running without D-Bus for now and trying again (the heartbeat still answers)"
            );
            tokio::spawn(retry(snap_rx, cmd_tx, store, pub_rx));
            Ok(())
        }
    }
}

/// Tries for the system (or session) bus until it works, then publishes.
async fn retry(
    snap_rx: watch::Receiver<Arc<Snapshot>>,
    cmd_tx: mpsc::Sender<Command>,
    store: Store,
    mut pub_rx: mpsc::UnboundedReceiver<Publication>,
) {
    let mut delay = Duration::from_millis(500);
    loop {
        tokio::time::sleep(delay).await;
        match DbusSurface::connect(None, snap_rx.clone(), cmd_tx.clone(), store.clone()).await {
            Ok(mut surface) => {
                info!(vigil_event = "bus", "D-Bus is there now");
                // What was published until now is in the latest snapshot: drop the queue
                // first, then read it, so nothing older comes after.
                while pub_rx.try_recv().is_ok() {}
                let now = snap_rx.borrow().clone();
                if let Err(e) = surface.apply(now, &[]).await {
                    warn!(vigil_event = "bus", "cannot publish on D-Bus: {e}");
                }
                publish(surface, pub_rx).await;
                return;
            }
            Err(_) => {
                while pub_rx.try_recv().is_ok() {}
                delay = (delay * 2).min(RETRY_MAX);
            }
        }
    }
}

/// Publishes snapshots and events on D-Bus for as long as the daemon runs. A failure is
/// said once, not on every reading, until publishing works again.
async fn publish(mut surface: DbusSurface, mut pub_rx: mpsc::UnboundedReceiver<Publication>) {
    let mut failing = false;
    while let Some((snap, events)) = pub_rx.recv().await {
        match surface.apply(snap, &events).await {
            Ok(()) if failing => {
                failing = false;
                info!(vigil_event = "bus", "publishing on D-Bus again");
            }
            Ok(()) => {}
            Err(e) if !failing => {
                failing = true;
                warn!(vigil_event = "bus", "cannot publish on D-Bus: {e}");
            }
            Err(_) => {}
        }
    }
}
