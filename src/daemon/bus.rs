//! The D-Bus side of the daemon: taking the name, publishing the newest snapshot and every
//! event, and coming back when the bus goes away (a restarted dbus-daemon, a bus that was
//! not there at start): vigild reconnects with back-off, owns the name again and
//! republishes every object.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{mpsc, watch};
use tracing::{info, warn};

use super::config::DaemonError;
use super::state::Outbox;
use crate::control::Command;
use crate::core::status::Snapshot;
use crate::core::update::UpdateDocument;
use crate::store::Store;
use crate::surface::dbus::DbusSurface;
use crate::sys::systemd::is_loss;

/// First wait before trying the bus again after a loss.
const RETRY_MIN: Duration = Duration::from_millis(100);
/// Longest wait between two tries: vigild is back within this of the bus answering.
const RETRY_MAX: Duration = Duration::from_secs(1);
/// How often a quiet connection is checked (a bus that restarted says nothing).
const PING_EVERY: Duration = Duration::from_secs(1);

/// What the publisher needs to (re)connect and publish.
pub struct Publisher {
    /// `--bus`; `None`: the system bus, else the session bus.
    pub address: Option<String>,
    pub snap_rx: watch::Receiver<Arc<Snapshot>>,
    pub cmd_tx: mpsc::Sender<Command>,
    pub store: Store,
    pub outbox: Arc<Outbox>,
    pub update: watch::Receiver<Arc<UpdateDocument>>,
}

/// Connects and starts publishing. An explicit address must work at start; otherwise a
/// missing bus is one warning, and vigild keeps trying in the background.
pub async fn start(p: Publisher) -> Result<(), DaemonError> {
    match p.connect().await {
        Ok(surface) => {
            tokio::spawn(p.run(Some(surface)));
            Ok(())
        }
        Err(e) if p.address.is_some() => Err(DaemonError::Startup(e)),
        Err(e) => {
            // The system bus may refuse the name for a while: before dbus-daemon has read a
            // policy file that names a known user (a package install), or while it restarts.
            // The heartbeat and the rules do not wait for it.
            warn!(
                vigil_event = "bus",
                "{e}; running without D-Bus for now and trying again (the heartbeat still answers)"
            );
            tokio::spawn(p.run(None));
            Ok(())
        }
    }
}

impl Publisher {
    async fn connect(&self) -> Result<DbusSurface, String> {
        DbusSurface::connect(
            self.address.as_deref(),
            self.snap_rx.clone(),
            self.cmd_tx.clone(),
            self.store.clone(),
            self.update.clone(),
        )
        .await
    }

    /// For as long as the daemon runs: publish while connected, reconnect when not.
    async fn run(mut self, mut surface: Option<DbusSurface>) {
        let mut delay = RETRY_MIN;
        let mut said = false;
        loop {
            match surface.take() {
                Some(mut s) => {
                    let Some(why) = self.serve(&mut s).await else {
                        return;
                    };
                    warn!(
                        vigil_event = "bus",
                        "lost the D-Bus connection ({why}); reconnecting and publishing every object again"
                    );
                    delay = RETRY_MIN;
                    said = true;
                }
                None => {
                    tokio::time::sleep(delay).await;
                    // Nobody heard these; the snapshot taken next says how things are.
                    self.outbox.clear();
                    match self.connect().await {
                        Ok(mut s) => {
                            if said {
                                info!(vigil_event = "bus", "on D-Bus again");
                            } else {
                                info!(vigil_event = "bus", "D-Bus is there now");
                            }
                            let now = self.snap_rx.borrow_and_update().clone();
                            if let Err(e) = s.apply(now, &[]).await {
                                warn!(vigil_event = "bus", "cannot publish on D-Bus: {e}");
                            }
                            surface = Some(s);
                        }
                        Err(_) => delay = (delay * 2).min(RETRY_MAX),
                    }
                }
            }
        }
    }

    /// Publishes until the connection is lost (returns why) or the daemon ends (`None`).
    /// Each turn takes the newest snapshot and every event since the last turn, so a busy
    /// daemon costs one publication per turn, not one per change.
    async fn serve(&mut self, s: &mut DbusSurface) -> Option<String> {
        let mut ping = tokio::time::interval(PING_EVERY);
        ping.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut failing = false;
        loop {
            tokio::select! {
                changed = self.snap_rx.changed() => {
                    if changed.is_err() {
                        return None;
                    }
                }
                _ = self.outbox.wait() => {}
                changed = self.update.changed() => {
                    if changed.is_err() {
                        return None;
                    }
                    let doc = self.update.borrow_and_update().clone();
                    match s.update_progress(&doc).await {
                        Err(e) if is_loss(&e) => return Some(e.to_string()),
                        Err(e) => warn!(vigil_event = "bus", "cannot signal update progress: {e}"),
                        Ok(()) => {}
                    }
                    continue;
                }
                _ = ping.tick() => {
                    if let Err(e) = s.ping().await {
                        return Some(e);
                    }
                    continue;
                }
            }
            let (events, dropped) = self.outbox.take();
            if dropped > 0 {
                warn!(
                    vigil_event = "bus",
                    "D-Bus publishing fell behind: {dropped} older signal(s) dropped; properties show the current state"
                );
            }
            let snap = self.snap_rx.borrow_and_update().clone();
            match s.apply(snap, &events).await {
                Ok(()) if failing => {
                    failing = false;
                    info!(vigil_event = "bus", "publishing on D-Bus again");
                }
                Ok(()) => {}
                Err(e) if is_loss(&e) => return Some(e.to_string()),
                Err(e) if !failing => {
                    failing = true;
                    warn!(vigil_event = "bus", "cannot publish on D-Bus: {e}");
                }
                Err(_) => {}
            }
        }
    }
}
