//! The systemd bus: the Manager, Unit and Service proxies, and one connection per bus
//! address with back-off, shared by every systemd check.

use std::time::{Duration, Instant};

use zbus::proxy::CacheProperties;
use zbus::wire::OwnedObjectPath;

/// systemd's bus name.
pub const SYSTEMD: &str = "org.freedesktop.systemd1";
/// A bound on one connection attempt (handshake plus `Subscribe`).
const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);
const BACKOFF_FIRST: Duration = Duration::from_millis(250);
const BACKOFF_MAX: Duration = Duration::from_secs(10);

#[zbus::proxy(
    interface = "org.freedesktop.systemd1.Manager",
    default_service = "org.freedesktop.systemd1",
    default_path = "/org/freedesktop/systemd1"
)]
pub trait Manager {
    /// Loads the unit (or finds it loaded) and returns its object.
    fn load_unit(&self, name: &str) -> zbus::Result<OwnedObjectPath>;

    /// Asks systemd to send unit signals.
    fn subscribe(&self) -> zbus::Result<()>;

    /// A `daemon-reload` begins (`true`) or ends (`false`).
    #[zbus(signal)]
    fn reloading(&self, active: bool) -> zbus::Result<()>;
}

#[zbus::proxy(
    interface = "org.freedesktop.systemd1.Unit",
    default_service = "org.freedesktop.systemd1"
)]
pub trait SdUnit {
    #[zbus(property)]
    fn load_state(&self) -> zbus::Result<String>;
    #[zbus(property)]
    fn active_state(&self) -> zbus::Result<String>;
    #[zbus(property)]
    fn sub_state(&self) -> zbus::Result<String>;
    #[zbus(property)]
    fn load_error(&self) -> zbus::Result<(String, String)>;
}

#[zbus::proxy(
    interface = "org.freedesktop.systemd1.Service",
    default_service = "org.freedesktop.systemd1"
)]
pub trait SdService {
    #[zbus(property)]
    fn result(&self) -> zbus::Result<String>;
    #[zbus(property, name = "NRestarts")]
    fn n_restarts(&self) -> zbus::Result<u32>;
    #[zbus(property)]
    fn exec_main_status(&self) -> zbus::Result<i32>;
    #[zbus(property)]
    fn exec_main_code(&self) -> zbus::Result<i32>;
}

/// One bus connection per address, shared by every systemd check of the daemon, with
/// back-off between attempts.
pub struct SystemdBus {
    /// `None`: the system bus.
    address: Option<String>,
    state: tokio::sync::Mutex<ConnState>,
}

#[derive(Default)]
struct ConnState {
    conn: Option<zbus::Connection>,
    /// Counts connections made, so a failure reported on an old one does not drop a new one.
    generation: u64,
    /// Why the last connection was lost or the last attempt failed.
    last_error: Option<String>,
    /// Whether a connection ever worked (then the words are "lost", not "cannot reach").
    was_connected: bool,
    retry_at: Option<Instant>,
    backoff: Duration,
}

/// Whether a D-Bus error means the connection itself is gone (rather than the other side
/// saying no): the systemd probe and the D-Bus publisher both reconnect on it.
pub fn is_loss(e: &zbus::Error) -> bool {
    matches!(
        e,
        zbus::Error::InputOutput(_) | zbus::Error::Connection(..) | zbus::Error::Handshake(_)
    )
}

impl SystemdBus {
    /// A connection to `address` (`None`: the system bus), made on first use.
    pub fn new(address: Option<String>) -> SystemdBus {
        SystemdBus {
            address,
            state: tokio::sync::Mutex::new(ConnState::default()),
        }
    }

    fn bus_name(&self) -> String {
        match &self.address {
            None => "system bus".into(),
            Some(a) => format!("D-Bus at {a}"),
        }
    }

    /// The live connection, connecting (at most once per back-off step) when there is none.
    pub async fn get(&self) -> Result<(u64, zbus::Connection), String> {
        let mut st = self.state.lock().await;
        if let Some(c) = &st.conn {
            return Ok((st.generation, c.clone()));
        }
        let now = Instant::now();
        if let Some(at) = st.retry_at {
            if now < at {
                return Err(self.down_message(&st, at - now));
            }
        }
        match tokio::time::timeout(CONNECT_TIMEOUT, self.connect()).await {
            Ok(Ok(c)) => {
                st.conn = Some(c.clone());
                st.generation += 1;
                st.was_connected = true;
                st.last_error = None;
                st.retry_at = None;
                st.backoff = BACKOFF_FIRST;
                Ok((st.generation, c))
            }
            result => {
                let e = match result {
                    Ok(Err(e)) => e,
                    _ => format!("no answer within {CONNECT_TIMEOUT:?}"),
                };
                st.backoff = if st.backoff.is_zero() {
                    BACKOFF_FIRST
                } else {
                    (st.backoff * 2).min(BACKOFF_MAX)
                };
                st.retry_at = Some(now + st.backoff);
                st.last_error = Some(e);
                let wait = st.backoff;
                Err(self.down_message(&st, wait))
            }
        }
    }

    fn down_message(&self, st: &ConnState, wait: Duration) -> String {
        let why = st.last_error.as_deref().unwrap_or("not connected");
        let what = if st.was_connected {
            format!("{} lost", self.bus_name())
        } else {
            format!("cannot reach systemd over the {}", self.bus_name())
        };
        format!(
            "{what}: {why}; reconnecting (next try in {} ms)",
            wait.as_millis()
        )
    }

    async fn connect(&self) -> Result<zbus::Connection, String> {
        let builder = match &self.address {
            None => zbus::connection::Builder::system(),
            Some(a) => zbus::connection::Builder::address(a.as_str()),
        };
        let conn = builder
            .method_timeout(CONNECT_TIMEOUT)
            .build()
            .await
            .map_err(|e| format!("cannot connect: {e}"))?;
        let manager = ManagerProxy::builder(&conn)
            .cache_properties(CacheProperties::No)
            .build()
            .await
            .map_err(|e| e.to_string())?;
        manager
            .subscribe()
            .await
            .map_err(|e| format!("{SYSTEMD} refused Subscribe(): {e}"))?;
        Ok(conn)
    }

    /// Drops connection `generation` after `why`; the next `get` reconnects.
    pub async fn lost(&self, generation: u64, why: String) -> String {
        let mut st = self.state.lock().await;
        if st.generation == generation && st.conn.is_some() {
            st.conn = None;
            st.last_error = Some(why);
            st.backoff = BACKOFF_FIRST;
            st.retry_at = Some(Instant::now() + BACKOFF_FIRST);
            tracing::warn!(
                vigil_event = "bus",
                "systemd probe: {} lost: {}; reconnecting",
                self.bus_name(),
                st.last_error.as_deref().unwrap_or_default()
            );
        }
        let wait = st
            .retry_at
            .map(|t| t.saturating_duration_since(Instant::now()))
            .unwrap_or_default();
        self.down_message(&st, wait)
    }

    /// How long until the next connection attempt may be made.
    pub async fn retry_in(&self) -> Duration {
        let st = self.state.lock().await;
        st.retry_at
            .map(|t| t.saturating_duration_since(Instant::now()))
            .unwrap_or(BACKOFF_FIRST)
    }
}
