//! `restart|start|stop unit:NAME` through the systemd Manager over D-Bus, waiting for the
//! job's result (polkit decides whether user vigil may manage the unit); also the reboot,
//! and signals to the main process of a unit (`KillUnit`) for `signal`.

use std::time::Duration;

use zbus::OwnedObjectPath;

use super::outcome::Outcome;
use crate::sys::systemd_job::{denied_by_polkit, run_job, JobFailure};

/// `what: error`, and where a refusal comes from polkit, what to do about it.
fn refused(what: &str, e: &zbus::Error) -> String {
    let text = e.to_string();
    if denied_by_polkit(e) {
        format!(
            "{what}: {text} (polkit does not let user vigil do this; the units it may control \
             are listed in /usr/share/polkit-1/rules.d/50-vigil.rules, and a site adds one in \
             /etc/polkit-1/rules.d/)"
        )
    } else {
        format!("{what}: {text}")
    }
}

async fn connect(bus: Option<&str>) -> Result<zbus::Connection, String> {
    let conn = match bus {
        Some(a) => zbus::connection::Builder::address(a).build().await,
        None => zbus::Connection::system().await,
    };
    conn.map_err(|e| format!("cannot reach systemd on the system bus: {e}"))
}

/// Sends `signo` to process `pid` through systemd, which vigild may do (polkit's verb
/// `kill`) only when `pid` is the main process of a unit polkit lists. Says which unit.
pub async fn kill_main(pid: u32, signo: i32, bus: Option<&str>) -> Result<String, String> {
    let conn = connect(bus).await?;
    let unit: OwnedObjectPath = conn
        .call_method(
            Some("org.freedesktop.systemd1"),
            "/org/freedesktop/systemd1",
            Some("org.freedesktop.systemd1.Manager"),
            "GetUnitByPID",
            &(pid,),
        )
        .await
        .and_then(|m| m.body().deserialize())
        .map_err(|e| format!("pid {pid} belongs to no unit systemd knows: {e}"))?;
    let proxy = |iface: &'static str| {
        zbus::Proxy::new(&conn, "org.freedesktop.systemd1", unit.clone(), iface)
    };
    let id: String = match proxy("org.freedesktop.systemd1.Unit").await {
        Ok(p) => p.get_property("Id").await,
        Err(e) => Err(e),
    }
    .map_err(|e| format!("pid {pid}: cannot read its unit's name: {e}"))?;
    let main: u32 = match proxy("org.freedesktop.systemd1.Service").await {
        Ok(p) => p.get_property("MainPID").await.unwrap_or(0),
        Err(_) => 0,
    };
    if main != pid {
        return Err(format!(
            "pid {pid} is not the main process of {id} (that is {main}); vigild may signal \
             only a unit's main process, through systemd"
        ));
    }
    conn.call_method(
        Some("org.freedesktop.systemd1"),
        "/org/freedesktop/systemd1",
        Some("org.freedesktop.systemd1.Manager"),
        "KillUnit",
        &(id.as_str(), "main", signo),
    )
    .await
    .map_err(|e| refused(&format!("KillUnit {id}"), &e))?;
    Ok(id)
}

/// Reboots the machine: systemd's `reboot.target`, irreversibly (what `systemctl reboot`
/// does). There is no result to wait for.
pub async fn reboot(bus: Option<&str>) -> Outcome {
    let conn = match connect(bus).await {
        Ok(c) => c,
        Err(e) => return Outcome::Failed(e),
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
        Err(e) => Outcome::Failed(refused("reboot refused", &e)),
    }
}

/// Queues the job and waits for systemd's `JobRemoved` with its result.
pub async fn act(verb: &str, unit: &str, bus: Option<&str>, limit: Duration) -> Outcome {
    let conn = match connect(bus).await {
        Ok(c) => c,
        Err(e) => return Outcome::Failed(e),
    };
    let method = match verb {
        "restart" => "RestartUnit",
        "start" => "StartUnit",
        "stop" => "StopUnit",
        other => return Outcome::Failed(format!("unknown unit verb {other}")),
    };
    match run_job(&conn, method, unit, limit).await {
        Ok(()) => Outcome::Done(format!("{verb} {unit}: job done")),
        Err(JobFailure::Refused(e)) => Outcome::Failed(refused(&format!("{method} {unit}"), &e)),
        Err(JobFailure::Other(why)) => Outcome::Failed(format!("{verb} {unit}: {why}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_polkit_refusal_says_where_the_list_is() {
        let denied = zbus::Error::MethodError(
            "org.freedesktop.DBus.Error.InteractiveAuthorizationRequired"
                .try_into()
                .unwrap(),
            Some("Interactive authentication required.".into()),
            zbus::message::Message::method_call("/", "Ping")
                .build(&())
                .unwrap(),
        );
        let line = refused("RestartUnit x.service", &denied);
        assert!(line.starts_with("RestartUnit x.service: "), "{line}");
        assert!(line.contains("50-vigil.rules"), "{line}");
        let other = zbus::Error::Failure("no such unit".into());
        assert_eq!(refused("StopUnit y", &other), "StopUnit y: no such unit");
    }
}
