//! `restart|start|stop unit:NAME` through the systemd Manager over D-Bus, waiting for the
//! job's result (polkit decides whether user vigil may manage the unit).

use std::time::Duration;

use futures_util::StreamExt;
use zbus::OwnedObjectPath;

use super::Outcome;

/// Reboots the machine: systemd's `reboot.target`, irreversibly (what `systemctl reboot`
/// does). There is no result to wait for.
pub async fn reboot(bus: Option<&str>) -> Outcome {
    let conn = match bus {
        Some(a) => zbus::connection::Builder::address(a).build().await,
        None => zbus::Connection::system().await,
    };
    let conn = match conn {
        Ok(c) => c,
        Err(e) => return Outcome::Failed(format!("cannot reach systemd on the system bus: {e}")),
    };
    let r: zbus::Result<OwnedObjectPath> = conn
        .call_method(
            Some("org.freedesktop.systemd1"),
            "/org/freedesktop/systemd1",
            Some("org.freedesktop.systemd1.Manager"),
            "StartUnit",
            &("reboot.target", "replace-irreversibly"),
        )
        .await
        .and_then(|m| m.body().deserialize());
    match r {
        Ok(_) => Outcome::Done("reboot requested (reboot.target)".into()),
        Err(e) => Outcome::Failed(format!("reboot refused: {e}")),
    }
}

/// Queues the job and waits for systemd's `JobRemoved` with its result.
pub async fn act(verb: &str, unit: &str, bus: Option<&str>, limit: Duration) -> Outcome {
    let conn = match bus {
        Some(a) => zbus::connection::Builder::address(a).build().await,
        None => zbus::Connection::system().await,
    };
    let conn = match conn {
        Ok(c) => c,
        Err(e) => return Outcome::Failed(format!("cannot reach systemd on the system bus: {e}")),
    };
    let manager = match zbus::Proxy::new(
        &conn,
        "org.freedesktop.systemd1",
        "/org/freedesktop/systemd1",
        "org.freedesktop.systemd1.Manager",
    )
    .await
    {
        Ok(p) => p,
        Err(e) => return Outcome::Failed(format!("systemd Manager: {e}")),
    };
    // Subscribe before queueing, so the job's end cannot be missed.
    let mut removed = match manager.receive_signal("JobRemoved").await {
        Ok(s) => s,
        Err(e) => return Outcome::Failed(format!("cannot watch systemd jobs: {e}")),
    };
    let _ = manager.call::<_, _, ()>("Subscribe", &()).await;
    let method = match verb {
        "restart" => "RestartUnit",
        "start" => "StartUnit",
        "stop" => "StopUnit",
        other => return Outcome::Failed(format!("unknown unit verb {other}")),
    };
    let job: OwnedObjectPath = match manager.call(method, &(unit, "replace")).await {
        Ok(j) => j,
        Err(e) => return Outcome::Failed(format!("{method} {unit}: {e}")),
    };
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
        Ok(Some(r)) if r == "done" => Outcome::Done(format!("{verb} {unit}: job done")),
        Ok(Some(r)) => {
            Outcome::Failed(format!("{verb} {unit}: job {r} (see journalctl -u {unit})"))
        }
        Ok(None) => Outcome::Failed(format!(
            "{verb} {unit}: lost the bus while waiting for the job"
        )),
        Err(_) => Outcome::Failed(format!(
            "{verb} {unit}: job not finished after {}",
            humantime::format_duration(limit)
        )),
    }
}
