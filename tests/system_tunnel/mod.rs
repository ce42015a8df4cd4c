//! The system test's maintenance-tunnel steps: a consented maintenance window with
//! `--tunnel` starts a stand-in tunnel unit (named as the package's polkit rule allows)
//! through systemd and polkit, keeps it across a restart of vigild, stops it when turned
//! off, when the window ends by itself, and when the window ended while vigild was down.
//! A unit not in `[maintenance] tunnel_units` is refused. Who, when, why and which unit are
//! in the journal and in `vigilctl maintenance log`.

use std::time::Duration;

use serde_json::Value;

use crate::nspawn::Container;
use crate::{as_user, field, journal, try_vigilctl_json, vigilctl_json, wait_for};

/// The tunnel vigil.toml lists.
pub const TUNNEL: &str = "vigil-tunnel-support.service";
/// A unit polkit would allow by its name but vigil.toml does not list.
pub const UNLISTED: &str = "vigil-tunnel-other.service";

/// A stand-in for an autossh tunnel unit.
pub const TUNNEL_STAND_IN: &str = "[Unit]
Description=Stand-in for a support tunnel (vigil system test)

[Service]
ExecStart=/bin/sleep infinity
";

fn active(c: &Container, unit: &str) -> String {
    c.unit_property(unit, "ActiveState")
}

fn wait_state(c: &Container, unit: &str, want: &str, within: Duration) {
    wait_for(c, &format!("{unit} {want}"), within, || {
        let s = active(c, unit);
        if s == want {
            Ok(())
        } else {
            Err(s)
        }
    });
}

/// Restarts vigild and waits until it answers on the bus again.
fn restart_vigild(c: &Container, how: &str) {
    c.sh(how);
    wait_for(c, "vigild back on the bus", Duration::from_secs(30), || {
        try_vigilctl_json(c, "status").map(|_| ())
    });
}

pub fn run(c: &Container) {
    // The operator lists the tunnel; the reload takes it up.
    c.sh(&format!(
        "printf '\\n[maintenance]\\ntunnel_units = [\"{TUNNEL}\"]\\n' >> /etc/vigil/vigil.toml"
    ));
    // Reload over the bus: it answers once the new settings are in force.
    c.sh("busctl call org.vigil.Vigil1 /org/vigil/Vigil1 org.vigil.Vigil1.Manager Reload");
    assert_eq!(active(c, TUNNEL), "inactive");

    // A unit that is not listed is refused, and nothing is started.
    let (ok, said) = as_user(
        c,
        "bob",
        &format!("vigilctl maintenance on --for 1h --reason probe --tunnel {UNLISTED}"),
    );
    assert!(!ok, "an unlisted tunnel was accepted: {said}");
    assert!(
        said.contains("not a tunnel unit") && said.contains(TUNNEL),
        "{said}"
    );
    assert_eq!(active(c, UNLISTED), "inactive");
    assert_eq!(vigilctl_json(c, "status")["maintenance"], false);

    // bob (vigil-admin) opens a session with the tunnel: it runs when the answer comes.
    let (ok, said) = as_user(
        c,
        "bob",
        &format!("vigilctl maintenance on --for 1h --reason 'support case 42' --tunnel {TUNNEL}"),
    );
    assert!(ok, "{said}");
    assert!(said.contains(&format!("tunnel {TUNNEL}")), "{said}");
    assert_eq!(
        active(c, TUNNEL),
        "active",
        "the answer came before the tunnel ran"
    );
    let st = vigilctl_json(c, "maintenance status");
    assert_eq!(st["tunnel"], TUNNEL, "{st}");
    assert_eq!(st["reason"], "support case 42", "{st}");
    assert!(
        st["by"].as_str().unwrap_or("").starts_with("bob (uid "),
        "{st}"
    );

    // A restart of vigild changes nothing: the window and its tunnel go on.
    let tunnel_pid = c.unit_property(TUNNEL, "MainPID");
    restart_vigild(c, "systemctl restart vigild.service");
    let st = vigilctl_json(c, "maintenance status");
    assert_eq!(
        (st["maintenance"].clone(), st["tunnel"].clone()),
        (Value::Bool(true), TUNNEL.into()),
        "{st}"
    );
    assert_eq!(active(c, TUNNEL), "active");
    assert_eq!(
        c.unit_property(TUNNEL, "MainPID"),
        tunnel_pid,
        "the tunnel was restarted"
    );

    // Turned off: the tunnel comes down before the answer.
    let (ok, said) = as_user(c, "bob", "vigilctl maintenance off");
    assert!(ok, "{said}");
    assert_eq!(active(c, TUNNEL), "inactive");

    // A window that ends by itself takes its tunnel down.
    let (ok, said) = as_user(
        c,
        "bob",
        &format!("vigilctl maintenance on --for 3s --reason short --tunnel {TUNNEL}"),
    );
    assert!(ok, "{said}");
    assert_eq!(active(c, TUNNEL), "active");
    wait_state(c, TUNNEL, "inactive", Duration::from_secs(15));
    assert_eq!(vigilctl_json(c, "status")["maintenance"], false);

    // A window that ends while vigild is down: the next vigild stops the tunnel.
    let (ok, said) = as_user(
        c,
        "bob",
        &format!("vigilctl maintenance on --for 3s --reason 'down meanwhile' --tunnel {TUNNEL}"),
    );
    assert!(ok, "{said}");
    c.sh("systemctl stop vigild.service");
    std::thread::sleep(Duration::from_secs(4));
    assert_eq!(
        active(c, TUNNEL),
        "active",
        "nothing stopped it while vigild was down"
    );
    restart_vigild(c, "systemctl start vigild.service");
    wait_state(c, TUNNEL, "inactive", Duration::from_secs(15));

    // The log says who, when, why and which unit, step by step.
    let log = vigilctl_json(c, "maintenance log");
    let events: Vec<(String, String)> = log
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["tunnel"] == TUNNEL)
        .map(|e| {
            (
                e["event"].as_str().unwrap_or("").to_string(),
                e["by"].as_str().unwrap_or("").to_string(),
            )
        })
        .collect();
    let has = |event: &str, by: &str| events.iter().any(|(e, b)| e == event && b.starts_with(by));
    for (event, by) in [
        ("on", "bob"),
        ("tunnel-started", "bob"),
        ("tunnel-started", "vigild"),
        ("off", "bob"),
        ("tunnel-stopped", "bob"),
        ("ended", "vigild"),
        ("tunnel-stopped", "vigild"),
    ] {
        assert!(has(event, by), "no {event} by {by} in the log: {events:?}");
    }
    let on = log
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["event"] == "on" && e["reason"] == "support case 42")
        .unwrap_or_else(|| panic!("no `on` with its reason: {log}"));
    assert!(on["at"].as_u64().unwrap_or(0) > 0 && on["until"].as_u64() > on["at"].as_u64());
    // And the journal, with fields to filter on.
    let j = journal(c, &format!("-u vigild.service VIGIL_TUNNEL={TUNNEL}"));
    assert!(
        j.iter().any(|e| field(e, "VIGIL_EVENT") == "maintenance"
            && field(e, "VIGIL_BY").starts_with("bob (uid ")
            && field(e, "MESSAGE").contains("support case 42")),
        "no journal entry of bob's session: {j:?}"
    );
    assert!(
        j.iter()
            .any(|e| field(e, "MESSAGE").contains(&format!("{TUNNEL}: done: stop"))),
        "no journal entry of the tunnel's stop: {j:?}"
    );
}
