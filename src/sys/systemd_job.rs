//! One systemd job, queued and waited for: `StartUnit`/`StopUnit`/`RestartUnit` on the
//! Manager, then its `JobRemoved` signal with the result. Subscribed and listening before
//! the job is queued, so its end cannot be missed (systemd sends job signals only to
//! subscribed clients).

use std::time::Duration;

use futures_util::StreamExt;
use zbus::OwnedObjectPath;

use super::systemd::SYSTEMD;

/// Why a job did not end `done`.
pub enum JobFailure {
    /// systemd refused the call itself (polkit, no such unit): its error, for the caller
    /// to explain.
    Refused(zbus::Error),
    /// Anything after: what happened, in words (`job failed (see journalctl -u …)`).
    Other(String),
}

/// Queues `method` (`StartUnit`, `StopUnit`, `RestartUnit`) for `unit` in mode `replace`
/// and waits at most `limit` for the job's end.
pub async fn run_job(
    conn: &zbus::Connection,
    method: &str,
    unit: &str,
    limit: Duration,
) -> Result<(), JobFailure> {
    let manager = zbus::Proxy::new(
        conn,
        SYSTEMD,
        "/org/freedesktop/systemd1",
        "org.freedesktop.systemd1.Manager",
    )
    .await
    .map_err(|e| JobFailure::Other(format!("systemd Manager: {e}")))?;
    let mut removed = manager
        .receive_signal("JobRemoved")
        .await
        .map_err(|e| JobFailure::Other(format!("cannot watch systemd jobs: {e}")))?;
    let _ = manager.call::<_, _, ()>("Subscribe", &()).await;
    let job: OwnedObjectPath = manager
        .call(method, &(unit, "replace"))
        .await
        .map_err(JobFailure::Refused)?;
    let wait = async {
        while let Some(msg) = removed.next().await {
            if let Ok((_, path, _, result)) = msg
                .body()
                .deserialize::<(u32, OwnedObjectPath, String, String)>()
            {
                if path == job {
                    return Some(result);
                }
            }
        }
        None
    };
    match tokio::time::timeout(limit, wait).await {
        Ok(Some(r)) if r == "done" => Ok(()),
        Ok(Some(r)) => Err(JobFailure::Other(format!(
            "job {r} (see journalctl -u {unit})"
        ))),
        Ok(None) => Err(JobFailure::Other(
            "lost the bus while waiting for the job".into(),
        )),
        Err(_) => Err(JobFailure::Other(format!(
            "job not finished after {}",
            humantime::format_duration(limit)
        ))),
    }
}
