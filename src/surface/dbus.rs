//! D-Bus: `org.vigil.Vigil1` with the Manager object and one object per check.
//!
//! Methods are a few lines each: read the snapshot, or send a [`Command`] into the daemon
//! loop and map its answer. Property changes and signals come from [`DbusSurface::apply`],
//! which the loop's publisher calls with each new snapshot and the transitions behind it.

use std::collections::BTreeMap;
use std::sync::Arc;

use tokio::sync::{mpsc, oneshot, watch};
use tracing::{info, warn};
use zbus::message::Header;
use zbus::object_server::SignalEmitter;
use zbus::{fdo, interface, Connection};

use crate::control::{Command, UpdateRequest};
use crate::core::health::CheckState;
use crate::core::status::{Event, Snapshot};
use crate::core::update::UpdateDocument;
use crate::store::Store;
use crate::sys::clock;
use crate::sys::systemd::is_loss;

/// The well-known bus name.
pub const BUS_NAME: &str = "org.vigil.Vigil1";
/// The Manager object.
pub const MANAGER_PATH: &str = "/org/vigil/Vigil1";
/// Parent of the check objects.
pub const CHECK_PATH_PREFIX: &str = "/org/vigil/Vigil1/check";
use super::dbus_access::authorize;
pub use super::dbus_access::ADMIN_GROUP;
use super::dbus_check::CheckObject;
pub use super::dbus_maintenance::MAX_REASON_BYTES;
use super::dbus_maintenance::{maintenance_caller, maintenance_log};

/// Escapes a check name into one object path element the way systemd does for unit
/// names: ASCII letters and digits stay, every other byte becomes `_xx` (hex).
pub fn escape_path_element(name: &str) -> String {
    if name.is_empty() {
        return "_".into();
    }
    let mut out = String::with_capacity(name.len());
    for b in name.bytes() {
        if b.is_ascii_alphanumeric() {
            out.push(b as char);
        } else {
            out.push_str(&format!("_{b:02x}"));
        }
    }
    out
}

/// The object path of a check.
pub fn check_path(name: &str) -> String {
    format!("{CHECK_PATH_PREFIX}/{}", escape_path_element(name))
}

/// `org.vigil.Vigil1.Manager`
pub struct Manager {
    snap: watch::Receiver<Arc<Snapshot>>,
    commands: mpsc::Sender<Command>,
    store: Store,
    update: watch::Receiver<Arc<UpdateDocument>>,
}

impl Manager {
    fn snap(&self) -> Arc<Snapshot> {
        self.snap.borrow().clone()
    }

    async fn ask<T>(&self, make: impl FnOnce(oneshot::Sender<T>) -> Command) -> fdo::Result<T> {
        let (tx, rx) = oneshot::channel();
        self.commands
            .send(make(tx))
            .await
            .map_err(|_| fdo::Error::Failed("vigild is shutting down".into()))?;
        rx.await
            .map_err(|_| fdo::Error::Failed("vigild is shutting down".into()))
    }
}

#[interface(name = "org.vigil.Vigil1.Manager")]
impl Manager {
    /// The package version.
    #[zbus(property)]
    fn version(&self) -> String {
        crate::VERSION.to_string()
    }

    /// `ok`, `degraded` or `critical`.
    #[zbus(property)]
    fn status(&self) -> String {
        self.snap().status.to_string()
    }

    /// When vigild started, µs since the epoch.
    #[zbus(property)]
    fn started_at(&self) -> u64 {
        self.snap().started_at
    }

    /// Whether maintenance mode is on.
    #[zbus(property)]
    fn maintenance(&self) -> bool {
        self.snap().maintenance
    }

    /// The update engine's state.
    #[zbus(property)]
    fn update_state(&self) -> String {
        self.snap().update_state.as_str().to_string()
    }

    /// Number of open incidents.
    #[zbus(property)]
    fn open_incidents(&self) -> u32 {
        self.snap().open_incidents
    }

    /// The status document (JSON), the same as `vigilctl status --json`.
    #[zbus(out_args("status"))]
    fn get_status(&self) -> String {
        let doc = self.snap().status_document(clock::now(), crate::VERSION);
        serde_json::to_string(&doc).unwrap_or_default()
    }

    /// Every check: name, probe, status, since (µs since the epoch).
    #[zbus(out_args("checks"))]
    fn list_checks(&self) -> Vec<(String, String, String, i64)> {
        self.snap()
            .checks
            .iter()
            .map(|c| {
                (
                    c.name.clone(),
                    c.probe.clone(),
                    c.status.to_string(),
                    c.since as i64,
                )
            })
            .collect()
    }

    /// Incidents, newest first (JSON).
    #[zbus(out_args("incidents"))]
    async fn list_incidents(&self, limit: u32) -> fdo::Result<String> {
        let limit = if limit == 0 { 100 } else { limit };
        let rows = self
            .store
            .call(move |db| db.incidents(limit, true))
            .await
            .ok_or_else(|| fdo::Error::Failed("vigild is shutting down".into()))?
            .map_err(|e| fdo::Error::Failed(format!("cannot read incidents: {e}")))?;
        Ok(serde_json::to_string(&rows).unwrap_or_default())
    }

    /// Re-reads settings and policies; a bad set is refused and the old one stays.
    async fn reload(
        &self,
        #[zbus(header)] header: Header<'_>,
        #[zbus(connection)] conn: &Connection,
    ) -> fdo::Result<()> {
        authorize(conn, &header, "Reload").await?;
        self.ask(|reply| Command::Reload { reply })
            .await?
            .map(|_| ())
            .map_err(fdo::Error::InvalidArgs)
    }

    /// Maintenance mode on for `seconds` (actions suspended, checks go on, ends by itself), or off.
    async fn set_maintenance(
        &self,
        on: bool,
        seconds: u64,
        reason: String,
        #[zbus(header)] header: Header<'_>,
        #[zbus(connection)] conn: &Connection,
    ) -> fdo::Result<()> {
        let by = maintenance_caller(conn, &header, "SetMaintenance", &reason).await?;
        self.ask(|reply| Command::SetMaintenance {
            on,
            seconds,
            reason,
            tunnel: None,
            by,
            reply,
        })
        .await?
        .map(|_| ())
        .map_err(fdo::Error::InvalidArgs)
    }

    /// Maintenance mode on for `seconds` with `tunnel` (one of `[maintenance] tunnel_units`,
    /// or empty for none) started now and stopped when the window ends or is turned off.
    /// Answers once the tunnel unit started.
    #[zbus(out_args("summary"))]
    async fn start_maintenance(
        &self,
        seconds: u64,
        reason: String,
        tunnel: String,
        #[zbus(header)] header: Header<'_>,
        #[zbus(connection)] conn: &Connection,
    ) -> fdo::Result<String> {
        let by = maintenance_caller(conn, &header, "StartMaintenance", &reason).await?;
        self.ask(|reply| Command::SetMaintenance {
            on: true,
            seconds,
            reason,
            tunnel: Some(tunnel),
            by,
            reply,
        })
        .await?
        .map_err(fdo::Error::InvalidArgs)
    }

    /// The maintenance log, oldest first (JSON): who turned maintenance on or off, when,
    /// why, and each start and stop of a tunnel with systemd's answer.
    #[zbus(out_args("log"))]
    async fn get_maintenance_log(&self) -> fdo::Result<String> {
        maintenance_log(&self.store).await
    }

    /// Probes one check now and returns its state (JSON).
    #[zbus(out_args("state"))]
    async fn run_check(
        &self,
        name: String,
        #[zbus(header)] header: Header<'_>,
        #[zbus(connection)] conn: &Connection,
    ) -> fdo::Result<String> {
        authorize(conn, &header, "RunCheck").await?;
        let state = self
            .ask(|reply| Command::RunCheck {
                name: name.clone(),
                reply,
            })
            .await?
            .map_err(fdo::Error::InvalidArgs)?;
        Ok(serde_json::to_string(&state).unwrap_or_default())
    }

    /// Starts an update from a bundle (absolute path); returns the run id once its manifest
    /// and signature passed. Progress comes as `UpdateProgress`.
    #[zbus(out_args("run"))]
    async fn apply_update(
        &self,
        path: String,
        #[zbus(header)] header: Header<'_>,
        #[zbus(connection)] conn: &Connection,
    ) -> fdo::Result<String> {
        authorize(conn, &header, "ApplyUpdate").await?;
        self.ask(|reply| Command::Update(UpdateRequest::Apply { path, reply }))
            .await?
            .map_err(fdo::Error::Failed)
    }

    /// Rolls back the active run, or the last committed one; returns the run id.
    #[zbus(out_args("run"))]
    async fn rollback(
        &self,
        #[zbus(header)] header: Header<'_>,
        #[zbus(connection)] conn: &Connection,
    ) -> fdo::Result<String> {
        let uid = authorize(conn, &header, "Rollback").await?;
        let who = format!("uid {uid} over D-Bus");
        self.ask(|reply| Command::Update(UpdateRequest::Rollback { who, reply }))
            .await?
            .map_err(fdo::Error::Failed)
    }

    /// A USB stick is mounted at `dir`: its newest bundle is applied or announced, as
    /// `[update] usb` says. Answers what was done (JSON).
    #[zbus(out_args("answer"))]
    async fn offer_update(
        &self,
        dir: String,
        #[zbus(header)] header: Header<'_>,
        #[zbus(connection)] conn: &Connection,
    ) -> fdo::Result<String> {
        authorize(conn, &header, "OfferUpdate").await?;
        self.ask(|reply| Command::Update(UpdateRequest::Offer { dir, reply }))
            .await?
            .map_err(fdo::Error::Failed)
    }

    /// The active or last update run, the history and an offered bundle (JSON).
    #[zbus(out_args("update"))]
    fn get_update(&self) -> String {
        // The shared document, not the channel's read lock, while it is serialised.
        let doc = self.update.borrow().clone();
        serde_json::to_string(&*doc).unwrap_or_default()
    }

    /// A check changed status.
    #[zbus(signal)]
    pub async fn check_changed(
        e: &SignalEmitter<'_>,
        name: &str,
        from: &str,
        to: &str,
    ) -> zbus::Result<()>;

    /// A rule opened an incident.
    #[zbus(signal)]
    pub async fn incident_opened(
        e: &SignalEmitter<'_>,
        id: &str,
        rule: &str,
        check: &str,
    ) -> zbus::Result<()>;

    /// A recovery action finished.
    #[zbus(signal)]
    pub async fn action_taken(
        e: &SignalEmitter<'_>,
        incident: &str,
        action: &str,
        result: &str,
    ) -> zbus::Result<()>;

    /// An incident was resolved.
    #[zbus(signal)]
    pub async fn incident_resolved(e: &SignalEmitter<'_>, id: &str) -> zbus::Result<()>;

    /// An update run moved on.
    #[zbus(signal)]
    pub async fn update_progress(
        e: &SignalEmitter<'_>,
        run: &str,
        state: &str,
        fraction: f64,
    ) -> zbus::Result<()>;
}

/// Which bus vigild ended up on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BusKind {
    System,
    Session,
    Address(String),
}

/// The D-Bus surface: the connection and what was last published on it.
pub struct DbusSurface {
    conn: Connection,
    pub bus: BusKind,
    last: Arc<Snapshot>,
    /// What each check object shows, shared with the snapshot it came from.
    checks: BTreeMap<String, Arc<CheckState>>,
    /// The last `UpdateProgress` sent: run, state, fraction.
    progress: Option<(String, String, f64)>,
}

/// How long the bus may take to answer a ping before the connection counts as lost.
const PING_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(3);

async fn build(
    builder: zbus::connection::Builder<'static>,
    snap: &watch::Receiver<Arc<Snapshot>>,
    commands: &mpsc::Sender<Command>,
    store: &Store,
    update: &watch::Receiver<Arc<UpdateDocument>>,
) -> zbus::Result<Connection> {
    builder
        .serve_at(
            MANAGER_PATH,
            Manager {
                snap: snap.clone(),
                commands: commands.clone(),
                store: store.clone(),
                update: update.clone(),
            },
        )
        .name(BUS_NAME)
        .build()
        .await
}

impl DbusSurface {
    /// Connects and takes the name: on `address` when given; else the system bus, then the
    /// session bus.
    pub async fn connect(
        address: Option<&str>,
        snap: watch::Receiver<Arc<Snapshot>>,
        commands: mpsc::Sender<Command>,
        store: Store,
        update: watch::Receiver<Arc<UpdateDocument>>,
    ) -> Result<DbusSurface, String> {
        let (conn, bus) = if let Some(addr) = address {
            let b = zbus::connection::Builder::address(addr);
            let conn = build(b, &snap, &commands, &store, &update)
                .await
                .map_err(|e| format!("cannot take {BUS_NAME} on {addr}: {e}"))?;
            (conn, BusKind::Address(addr.to_string()))
        } else {
            match build(
                zbus::connection::Builder::system(),
                &snap,
                &commands,
                &store,
                &update,
            )
            .await
            {
                Ok(c) => (c, BusKind::System),
                Err(sys_err) => {
                    match build(zbus::connection::Builder::session(), &snap, &commands, &store, &update).await {
                        Ok(c) => {
                            warn!(
                                vigil_event = "bus",
                                "cannot take {BUS_NAME} on the system bus ({sys_err}); serving on the session bus instead"
                            );
                            (c, BusKind::Session)
                        }
                        Err(ses_err) => {
                            return Err(format!(
                                "cannot take {BUS_NAME} on the system bus ({sys_err}) nor the session bus ({ses_err})"
                            ))
                        }
                    }
                }
            }
        };
        info!(vigil_event = "bus", "serving {BUS_NAME} on the {bus:?} bus");
        let last = snap.borrow().clone();
        Ok(DbusSurface {
            conn,
            bus,
            last,
            checks: BTreeMap::new(),
            progress: None,
        })
    }

    /// Publishes a new snapshot: adds and removes check objects, updates their properties,
    /// emits `CheckChanged` for each transition and `PropertiesChanged` for the Manager.
    pub async fn apply(&mut self, snap: Arc<Snapshot>, events: &[Event]) -> zbus::Result<()> {
        let server = self.conn.object_server();
        // Removed checks.
        let present: std::collections::HashSet<&str> =
            snap.checks.iter().map(|c| c.name.as_str()).collect();
        let gone: Vec<String> = self
            .checks
            .keys()
            .filter(|n| !present.contains(n.as_str()))
            .cloned()
            .collect();
        for name in gone {
            server.remove::<CheckObject, _>(check_path(&name)).await?;
            self.checks.remove(&name);
        }
        for c in &snap.checks {
            match self.checks.get(&c.name) {
                None => {
                    let state = CheckState::clone(c);
                    server
                        .at(check_path(&c.name), CheckObject { state })
                        .await?;
                    self.checks.insert(c.name.clone(), c.clone());
                }
                // Unchanged since the last publication: the same shared state.
                Some(old) if Arc::ptr_eq(old, c) => {}
                Some(old) if **old != **c => {
                    let iref = server
                        .interface::<_, CheckObject>(check_path(&c.name))
                        .await?;
                    let mut obj = iref.get_mut().await;
                    let before = std::mem::replace(&mut obj.state, CheckState::clone(c));
                    let em = iref.signal_emitter();
                    if before.probe != c.probe {
                        obj.probe_changed(em).await?;
                    }
                    if before.status != c.status {
                        obj.status_changed(em).await?;
                    }
                    if before.since != c.since {
                        obj.since_changed(em).await?;
                    }
                    if before.detail != c.detail {
                        obj.detail_changed(em).await?;
                    }
                    self.checks.insert(c.name.clone(), c.clone());
                }
                Some(_) => {
                    self.checks.insert(c.name.clone(), c.clone());
                }
            }
        }
        let iref = server.interface::<_, Manager>(MANAGER_PATH).await?;
        let em = iref.signal_emitter();
        for e in events {
            match e {
                Event::Transition(t) => {
                    Manager::check_changed(em, &t.check, t.from.as_str(), t.to.as_str()).await?
                }
                Event::IncidentOpened { id, rule, check } => {
                    Manager::incident_opened(em, &id.to_string(), rule, check).await?
                }
                Event::ActionTaken {
                    incident,
                    action,
                    result,
                } => Manager::action_taken(em, &incident.to_string(), action, result).await?,
                Event::IncidentResolved { id } => {
                    Manager::incident_resolved(em, &id.to_string()).await?
                }
            }
        }
        let m = iref.get().await;
        if self.last.status != snap.status {
            m.status_changed(em).await?;
        }
        if self.last.maintenance != snap.maintenance {
            m.maintenance_changed(em).await?;
        }
        if self.last.update_state != snap.update_state {
            m.update_state_changed(em).await?;
        }
        if self.last.open_incidents != snap.open_incidents {
            m.open_incidents_changed(em).await?;
        }
        self.last = snap;
        Ok(())
    }

    /// Signals `UpdateProgress` when the active (or last) run moved on.
    pub async fn update_progress(&mut self, doc: &UpdateDocument) -> zbus::Result<()> {
        let Some(run) = &doc.run else {
            return Ok(());
        };
        let now = (run.id.clone(), run.state.as_str().to_string(), run.fraction);
        if self.progress.as_ref() == Some(&now) {
            return Ok(());
        }
        let server = self.conn.object_server();
        let iref = server.interface::<_, Manager>(MANAGER_PATH).await?;
        Manager::update_progress(iref.signal_emitter(), &now.0, &now.1, now.2).await?;
        self.progress = Some(now);
        Ok(())
    }

    /// Asks the bus daemon for a sign of life. An error says the connection is gone; an
    /// answer of any kind (even a refusal by the bus policy) says it is there.
    pub async fn ping(&self) -> Result<(), String> {
        let call = self.conn.call_method(
            Some("org.freedesktop.DBus"),
            "/org/freedesktop/DBus",
            Some("org.freedesktop.DBus"),
            "GetId",
            &(),
        );
        match tokio::time::timeout(PING_TIMEOUT, call).await {
            Ok(Err(e)) if is_loss(&e) => Err(e.to_string()),
            Ok(_) => Ok(()),
            Err(_) => Err(format!(
                "the bus gave no answer within {} s",
                PING_TIMEOUT.as_secs()
            )),
        }
    }

    /// The connection (for tests and later surfaces).
    pub fn connection(&self) -> &Connection {
        &self.conn
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escaping_like_systemd() {
        assert_eq!(escape_path_element("root-disk"), "root_2ddisk");
        assert_eq!(
            escape_path_element("container:ollama"),
            "container_3aollama"
        );
        assert_eq!(escape_path_element("a_b"), "a_5fb");
        assert_eq!(escape_path_element("Mem1"), "Mem1");
        assert_eq!(escape_path_element(""), "_");
        assert_eq!(check_path("memory"), "/org/vigil/Vigil1/check/memory");
    }
}
