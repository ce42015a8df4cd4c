//! vigilctl's way to vigild over D-Bus: finding it on a bus, and calls with a time limit, so a
//! stopped or wedged vigild never hangs the operator's shell.

use std::future::Future;
use std::time::Duration;

use zbus::Connection;

use super::exit;
use crate::surface::dbus::{BUS_NAME, MANAGER_PATH};

/// vigild's manager interface.
pub const MANAGER_IFACE: &str = "org.vigil.Vigil1.Manager";

/// How long vigilctl waits for any one D-Bus call (connecting to the bus included) before it
/// gives up: a stopped or wedged vigild must not hang the operator's shell.
pub const BUS_CALL_TIMEOUT_SECS: u64 = 5;

/// A failure with the exit status it maps to.
pub struct Failure {
    pub code: i32,
    pub message: String,
}

/// Exit 3 with `message`: vigild cannot be used.
pub fn unreachable(message: impl Into<String>) -> Failure {
    Failure {
        code: exit::UNREACHABLE,
        message: message.into(),
    }
}

/// What `vigilctl` says when vigild took the call but gave no answer within `secs`.
fn vigild_silent_for(method: &str, secs: u64) -> Failure {
    unreachable(format!(
        "vigild does not answer on the bus (it may be stopped or stuck): {method} gave no reply within {secs} s"
    ))
}

/// What `vigilctl` says when vigild took the call but gave no answer in time.
fn vigild_silent(method: &str) -> Failure {
    vigild_silent_for(method, BUS_CALL_TIMEOUT_SECS)
}

/// What `vigilctl` says when the bus itself gave no answer in time.
fn bus_silent(bus: &str, what: &str) -> Failure {
    unreachable(format!(
        "vigild is not reachable: the bus {bus} does not answer: {what} gave no reply within {BUS_CALL_TIMEOUT_SECS} s"
    ))
}

/// One D-Bus call, or None when it gave no reply within [`BUS_CALL_TIMEOUT_SECS`].
pub async fn within<T>(call: impl Future<Output = T>) -> Option<T> {
    tokio::time::timeout(Duration::from_secs(BUS_CALL_TIMEOUT_SECS), call)
        .await
        .ok()
}

/// Whether vigild owns its name on `conn`; Err when the bus does not answer in time.
async fn has_vigild(conn: &Connection, bus: &str) -> Result<bool, Failure> {
    let asked = within(async {
        let p = zbus::fdo::DBusProxy::new(conn).await.ok()?;
        let name = BUS_NAME.try_into().ok()?;
        p.name_has_owner(name).await.ok()
    });
    match asked.await {
        Some(owned) => Ok(owned == Some(true)),
        None => Err(bus_silent(bus, "NameHasOwner")),
    }
}

/// Finds vigild: on `--bus`, else the system bus, else the session bus.
pub async fn connect(bus: Option<&str>) -> Result<Connection, Failure> {
    if let Some(addr) = bus {
        let conn = within(zbus::connection::Builder::address(addr).build())
            .await
            .ok_or_else(|| bus_silent(addr, "connecting"))?
            .map_err(|e| {
                unreachable(format!(
                    "vigild is not reachable: cannot connect to {addr}: {e}"
                ))
            })?;
        if has_vigild(&conn, addr).await? {
            return Ok(conn);
        }
        return Err(unreachable(format!(
            "vigild is not running: nobody owns {BUS_NAME} on {addr}"
        )));
    }
    // A bus that does not answer is passed over for the next; said if vigild is on neither.
    let mut silent = None;
    for name in ["system bus", "session bus"] {
        let conn = if name == "system bus" {
            within(Connection::system()).await
        } else {
            within(Connection::session()).await
        };
        match conn {
            Some(Ok(conn)) => match has_vigild(&conn, name).await {
                Ok(true) => return Ok(conn),
                Ok(false) => {}
                Err(f) => silent = silent.or(Some(f)),
            },
            Some(Err(_)) => {}
            None => silent = silent.or(Some(bus_silent(name, "connecting"))),
        }
    }
    Err(silent.unwrap_or_else(|| unreachable(format!(
        "vigild is not running: nobody owns {BUS_NAME} on the system or session bus (try: systemctl status vigild)"
    ))))
}

/// A proxy for vigild's manager object; it caches no properties, so building it calls nothing
/// on vigild.
pub async fn manager(conn: &Connection) -> Result<zbus::Proxy<'static>, Failure> {
    let built = zbus::proxy::Builder::<zbus::Proxy>::new(conn)
        .destination(BUS_NAME)
        .path(MANAGER_PATH)
        .interface(MANAGER_IFACE)
        .cache_properties(zbus::proxy::CacheProperties::No)
        .build();
    within(built)
        .await
        .ok_or_else(|| vigild_silent("setting up its proxy"))?
        .map_err(|e| unreachable(format!("vigild: {e}")))
}

/// Calls `method` of vigild with `args`: Err when vigild gave no reply within
/// [`BUS_CALL_TIMEOUT_SECS`], else its answer, which may be an error it returned.
pub async fn ask<A, R>(
    conn: &Connection,
    method: &str,
    args: &A,
) -> Result<zbus::Result<R>, Failure>
where
    A: serde::Serialize + zbus::DynamicType,
    R: for<'d> zbus::wire::DynamicDeserialize<'d>,
{
    ask_within(conn, method, args, BUS_CALL_TIMEOUT_SECS).await
}

/// [`ask`] for a call that may take up to `secs` (such as `ApplyUpdate`, which checks the
/// bundle's manifest and signature before it answers).
pub async fn ask_within<A, R>(
    conn: &Connection,
    method: &str,
    args: &A,
    secs: u64,
) -> Result<zbus::Result<R>, Failure>
where
    A: serde::Serialize + zbus::DynamicType,
    R: for<'d> zbus::wire::DynamicDeserialize<'d>,
{
    let proxy = manager(conn).await?;
    tokio::time::timeout(
        Duration::from_secs(secs),
        proxy.call::<_, _, R>(method, args),
    )
    .await
    .map_err(|_| vigild_silent_for(method, secs))
}

/// Calls `method` of vigild; any failure means vigild cannot be used (exit 3).
pub async fn call<A, R>(conn: &Connection, method: &str, args: &A) -> Result<R, Failure>
where
    A: serde::Serialize + zbus::DynamicType,
    R: for<'d> zbus::wire::DynamicDeserialize<'d>,
{
    ask(conn, method, args)
        .await?
        .map_err(|e| unreachable(format!("vigild did not answer {method}: {e}")))
}

/// A document vigild sent that is not JSON.
pub fn bad_json(e: serde_json::Error) -> Failure {
    Failure {
        code: exit::BAD,
        message: format!("vigild sent bad JSON: {e}"),
    }
}
