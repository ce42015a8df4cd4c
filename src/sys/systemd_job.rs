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

/// Whether systemd refused a call because polkit did not allow it (`Access denied`, or
/// `Interactive authentication required` for a caller no rule lets through).
pub fn denied_by_polkit(e: &zbus::Error) -> bool {
    let text = e.to_string();
    text.contains("Access denied") || text.contains("authentication required")
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn polkit_refusals_are_told_from_other_errors() {
        let call = || {
            zbus::message::Message::method_call("/", "Ping")
                .build(&())
                .unwrap()
        };
        for (name, text) in [
            (
                "org.freedesktop.DBus.Error.InteractiveAuthorizationRequired",
                "Interactive authentication required.",
            ),
            ("org.freedesktop.DBus.Error.AccessDenied", "Access denied"),
        ] {
            let e = zbus::Error::MethodError(name.try_into().unwrap(), Some(text.into()), call());
            assert!(denied_by_polkit(&e), "{e}");
        }
        let missing = zbus::Error::MethodError(
            "org.freedesktop.systemd1.NoSuchUnit".try_into().unwrap(),
            Some("Unit x.service not found.".into()),
            call(),
        );
        assert!(!denied_by_polkit(&missing));
        assert!(!denied_by_polkit(&zbus::Error::Failure(
            "no such unit".into()
        )));
    }
}
