//! The maintenance methods' checks: who asks (allowed and named), a bounded reason, and the
//! maintenance log read from the store.

use zbus::message::Header;
use zbus::{fdo, Connection};

use super::dbus_access::{authorize, caller_name};
use crate::store::record::MAINTENANCE_LOG_SETTING;
use crate::store::Store;

/// Longest maintenance reason taken, in bytes: it is kept in the snapshot, every status
/// document and the maintenance log, so a caller cannot make those grow by a megabyte a call.
pub const MAX_REASON_BYTES: usize = 1024;

/// Allows the caller of `method` (root or `vigil-admin`) and its reason; answers the caller's
/// name for the log (`alice (uid 1000)`).
pub async fn maintenance_caller(
    conn: &Connection,
    header: &Header<'_>,
    method: &str,
    reason: &str,
) -> fdo::Result<String> {
    let uid = authorize(conn, header, method).await?;
    if reason.len() > MAX_REASON_BYTES {
        return Err(fdo::Error::InvalidArgs(format!(
            "the reason is {} bytes long, at most {MAX_REASON_BYTES} are taken",
            reason.len()
        )));
    }
    Ok(caller_name(uid).await)
}

/// The maintenance log (JSON, oldest first; `[]` when there is none).
pub async fn maintenance_log(store: &Store) -> fdo::Result<String> {
    let text = store
        .call(|db| db.setting(MAINTENANCE_LOG_SETTING))
        .await
        .ok_or_else(|| fdo::Error::Failed("vigild is shutting down".into()))?
        .map_err(|e| fdo::Error::Failed(format!("cannot read the maintenance log: {e}")))?;
    Ok(text
        .filter(|t| !t.is_empty())
        .unwrap_or_else(|| "[]".into()))
}
