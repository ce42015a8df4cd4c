//! The maintenance methods of the Manager: who asks, a bounded reason, the loop's answer
//! (which waits for a tunnel unit's job), and the maintenance log from the store.

use zbus::message::Header;
use zbus::{fdo, Connection};

use super::dbus::Manager;
use super::dbus_access::{authorize, caller_name};
use crate::control::Command;
use crate::store::record::MAINTENANCE_LOG_SETTING;

/// Longest maintenance reason taken, in bytes: it is kept in the snapshot, every status
/// document and the maintenance log, so a caller cannot make those grow by a megabyte a call.
pub const MAX_REASON_BYTES: usize = 1024;

/// One maintenance request as a method gives it.
pub struct MaintenanceAsk {
    pub method: &'static str,
    pub on: bool,
    pub seconds: u64,
    pub reason: String,
    pub tunnel: Option<String>,
}

fn check_reason(reason: &str) -> fdo::Result<()> {
    if reason.len() > MAX_REASON_BYTES {
        return Err(fdo::Error::InvalidArgs(format!(
            "the reason is {} bytes long, at most {MAX_REASON_BYTES} are taken",
            reason.len()
        )));
    }
    Ok(())
}

impl Manager {
    /// Checks the caller and the reason, names the caller, and asks the loop.
    pub(super) async fn ask_maintenance(
        &self,
        conn: &Connection,
        header: &Header<'_>,
        ask: MaintenanceAsk,
    ) -> fdo::Result<String> {
        let uid = authorize(conn, header, ask.method).await?;
        check_reason(&ask.reason)?;
        let by = caller_name(uid).await;
        self.ask(|reply| Command::SetMaintenance {
            on: ask.on,
            seconds: ask.seconds,
            reason: ask.reason,
            tunnel: ask.tunnel,
            by,
            reply,
        })
        .await?
        .map_err(fdo::Error::InvalidArgs)
    }

    /// The maintenance log (JSON, oldest first; `[]` when there is none).
    pub(super) async fn maintenance_log(&self) -> fdo::Result<String> {
        let text = self
            .store
            .call(|db| db.setting(MAINTENANCE_LOG_SETTING))
            .await
            .ok_or_else(|| fdo::Error::Failed("vigild is shutting down".into()))?
            .map_err(|e| fdo::Error::Failed(format!("cannot read the maintenance log: {e}")))?;
        Ok(text
            .filter(|t| !t.is_empty())
            .unwrap_or_else(|| "[]".into()))
    }
}
