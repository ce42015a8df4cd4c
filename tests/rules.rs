//! Rules in the running daemon: incidents open and resolve, the ladder is carried out (or
//! recorded as observed / skipped), D-Bus signals, the store, and vigilctl.

mod common;

use std::time::Duration;

use common::*;
use futures_util::StreamExt;

const POLICY: &str = r#"
[[check]]
name = "mem"
probe = "memory"
every = "100ms"
crit = "available < 10%"

[[rule]]
name = "free-memory"
on = "mem"
when = "crit"
for = "0s"
do = ["notify", "restart container:vigil-no-such-container"]
cooldown = "1s"
limit = "2 per 1h"
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_incident_opens_records_its_ladder_and_resolves() {
    let bus = Bus::start();
    let v = VigildBuilder::new().bus(&bus).policy(POLICY).start();
    v.wait_dbus_status(&bus, "ok");
    let conn = zbus::connection::Builder::address(bus.address.as_str())
        .build()
        .await
        .unwrap();
    let m = zbus::Proxy::new(
        &conn,
        "org.vigil.Vigil1",
        "/org/vigil/Vigil1",
        "org.vigil.Vigil1.Manager",
    )
    .await
    .unwrap();
    let mut opened = m.receive_signal("IncidentOpened").await.unwrap();
    let mut taken = m.receive_signal("ActionTaken").await.unwrap();
    let mut resolved = m.receive_signal("IncidentResolved").await.unwrap();

    v.set_available_kb(50_000);
    let t = Duration::from_secs(10);
    let sig = tokio::time::timeout(t, opened.next())
        .await
        .expect("IncidentOpened")
        .unwrap();
    let (id, rule, check): (String, String, String) = sig.body().deserialize().unwrap();
    assert_eq!((rule.as_str(), check.as_str()), ("free-memory", "mem"));
    let mut actions = Vec::new();
    for _ in 0..2 {
        let sig = tokio::time::timeout(t, taken.next())
            .await
            .expect("ActionTaken")
            .unwrap();
        let (inc, action, result): (String, String, String) = sig.body().deserialize().unwrap();
        assert_eq!(inc, id);
        actions.push((action, result));
    }
    assert_eq!(
        actions[0],
        (
            "notify".to_string(),
            "skipped: no [[notify.webhook]] in vigil.toml".to_string()
        )
    );
    assert_eq!(
        actions[1],
        (
            "restart container:vigil-no-such-container".to_string(),
            "failed: container vigil-no-such-container does not exist".to_string()
        )
    );
    // The limit (2 per hour) is reached: exhausted, no third action.
    wait_for(t, "exhausted in the log", || {
        v.log().contains("reached its limit").then_some(())
    });
    let n: u32 = m.get_property("OpenIncidents").await.unwrap();
    assert_eq!(n, 1);

    v.set_available_kb(900_000);
    // An exhausted incident resolves once the check has been ok for EXHAUSTED_SETTLE (60 s).
    let settle = vigil::core::engine::EXHAUSTED_SETTLE + Duration::from_secs(15);
    let sig = tokio::time::timeout(settle, resolved.next())
        .await
        .expect("IncidentResolved")
        .unwrap();
    let (rid,): (String,) = sig.body().deserialize().unwrap();
    assert_eq!(rid, id);

    // The store has it, with both actions and their results; vigilctl shows it.
    let (code, out, err) = vigilctl(&["--bus", &bus.address, "--json", "incidents", "--all"]);
    assert_eq!(code, 0, "{err}");
    let rows: serde_json::Value = serde_json::from_str(&out).unwrap();
    let inc = &rows[0];
    assert_eq!(inc["id"].to_string(), id);
    assert_eq!(inc["state"], "resolved");
    assert_eq!(inc["actions"].as_array().unwrap().len(), 2);
    assert!(inc["actions"][1]["result"]
        .as_str()
        .unwrap()
        .starts_with("failed"));
    let (code, out, _) = vigilctl(&["--bus", &bus.address, "incident", &id]);
    assert_eq!(code, 0);
    assert!(
        out.contains("rule free-memory on mem — resolved")
            && out.contains("step 2: restart container:vigil-no-such-container"),
        "{out}"
    );
    let (code, out, _) = vigilctl(&["--bus", &bus.address, "incidents"]);
    assert_eq!((code, out.trim()), (0, "no open incidents"));
}

#[test]
fn incident_ids_stay_unique_across_restarts() {
    let state = tempfile::tempdir().unwrap();
    let mut ids = Vec::new();
    for _ in 0..2 {
        let mut b = VigildBuilder::new().policy(POLICY);
        b.state_dir = Some(state.path().to_path_buf());
        let mut v = b.start();
        v.wait_status("ok");
        v.set_available_kb(50_000);
        wait_for(Duration::from_secs(10), "an incident", || {
            let log = v.log();
            let at = log.find("incident ")?;
            let id: String = log[at + 9..]
                .chars()
                .take_while(|c| c.is_ascii_digit())
                .collect();
            (!id.is_empty()).then_some(())
        });
        std::thread::sleep(Duration::from_millis(300));
        v.stop();
        let c = rusqlite::Connection::open(state.path().join("vigil.db")).unwrap();
        let max: i64 = c
            .query_row("SELECT max(id) FROM incidents", [], |r| r.get(0))
            .unwrap();
        ids.push(max);
    }
    assert_eq!(ids[1], ids[0] + 1, "{ids:?}");
    let c = rusqlite::Connection::open(state.path().join("vigil.db")).unwrap();
    let first: String = c
        .query_row("SELECT state FROM incidents WHERE id = ?1", [ids[0]], |r| {
            r.get(0)
        })
        .unwrap();
    assert_eq!(
        first, "interrupted",
        "the first run's incident is closed by the second"
    );
}

#[test]
fn maintenance_suspends_actions_survives_a_restart_and_ends_by_itself() {
    let bus = Bus::start();
    let state = tempfile::tempdir().unwrap();
    let start = || {
        let mut b = VigildBuilder::new().bus(&bus).policy(POLICY);
        b.state_dir = Some(state.path().to_path_buf());
        b.start()
    };
    let mut v = start();
    v.wait_dbus_status(&bus, "ok");
    let ctl = |args: &[&str]| {
        let mut full = vec!["--bus", bus.address.as_str()];
        full.extend_from_slice(args);
        vigilctl(&full)
    };
    let (code, out, err) = ctl(&[
        "maintenance",
        "on",
        "--for",
        "1h",
        "--reason",
        "swapping the SSD",
    ]);
    assert_eq!(code, 0, "{err}");
    assert!(
        out.starts_with("maintenance on until ") && out.contains("(swapping the SSD)"),
        "{out}"
    );
    let (code, _, err) = ctl(&["maintenance", "on", "--for", "30d", "--reason", "x"]);
    assert_eq!(code, 1, "more than 7 days is refused: {err}");

    // A failure during maintenance: the incident opens, the action is held, nothing is taken.
    v.set_available_kb(50_000);
    wait_for(Duration::from_secs(10), "the held action", || {
        v.log().contains("held: maintenance mode").then_some(())
    });
    std::thread::sleep(Duration::from_millis(1500));
    assert!(
        !v.log().contains("step 1 `notify` started"),
        "no action in maintenance:\n{}",
        v.log()
    );

    // vigild restarts: maintenance is still on.
    v.stop();
    drop(v);
    let v = start();
    wait_for(Duration::from_secs(10), "maintenance restored", || {
        v.log().contains("maintenance mode still on").then_some(())
    });
    let (_, out, _) = ctl(&["--json", "maintenance", "status"]);
    let doc: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(doc["maintenance"], true);
    assert_eq!(doc["reason"], "swapping the SSD");
    // (Each start prepares a fresh /proc tree: fail again.)
    v.set_available_kb(50_000);
    wait_for(Duration::from_secs(10), "the held action", || {
        v.log().contains("held: maintenance mode").then_some(())
    });

    // Off: the held step is taken.
    let (code, out, _) = ctl(&["maintenance", "off"]);
    assert_eq!((code, out.trim()), (0, "maintenance off"));
    wait_for(
        Duration::from_secs(10),
        "the first step after maintenance",
        || v.log().contains("step 1 `notify` started").then_some(()),
    );

    // A short window ends by itself.
    let (code, _, _) = ctl(&["maintenance", "on", "--for", "1s", "--reason", "blink"]);
    assert_eq!(code, 0);
    wait_for(Duration::from_secs(10), "the end of maintenance", || {
        v.log()
            .contains("maintenance mode ended by itself (blink)")
            .then_some(())
    });
    let (_, out, _) = ctl(&["maintenance", "status"]);
    assert_eq!(out.trim(), "maintenance off");
}

#[test]
fn actions_have_real_effects_webhook_hook_and_observe_mode() {
    // A webhook receiver on loopback that records what it gets.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/alerts", listener.local_addr().unwrap());
    let received = std::thread::spawn(move || {
        use std::io::{BufRead, BufReader, Read, Write};
        // Fail, not hang, if vigild never posts.
        listener.set_nonblocking(true).unwrap();
        let start = std::time::Instant::now();
        let s = loop {
            match listener.accept() {
                Ok((s, _)) => break s,
                Err(_) if start.elapsed() < Duration::from_secs(20) => {
                    std::thread::sleep(Duration::from_millis(20))
                }
                Err(e) => panic!("no webhook call within 20 s: {e}"),
            }
        };
        s.set_nonblocking(false).unwrap();
        let mut r = BufReader::new(s.try_clone().unwrap());
        let mut len = 0;
        loop {
            let mut line = String::new();
            r.read_line(&mut line).unwrap();
            if line == "\r\n" {
                break;
            }
            if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                len = v.trim().parse().unwrap();
            }
        }
        let mut body = vec![0; len];
        r.read_exact(&mut body).unwrap();
        let mut s = s;
        s.write_all(b"HTTP/1.1 204 No Content\r\nConnection: close\r\n\r\n")
            .unwrap();
        String::from_utf8(body).unwrap()
    });
    let marks = tempfile::tempdir().unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(marks.path(), std::fs::Permissions::from_mode(0o777)).unwrap();
    let mark = marks.path().join("hook-ran");
    let policy = r#"
[[check]]
name = "mem"
probe = "memory"
every = "100ms"
crit = "available < 10%"

[[rule]]
name = "tell-and-fix"
on = "mem"
do = ["notify", "hook mark"]
cooldown = "0s"
limit = "2 per 1h"

[[rule]]
name = "just-watch"
on = "mem"
do = ["restart unit:never.service"]
mode = "observe"
"#;
    let mut b = VigildBuilder::new().policy(policy);
    b.settings = format!(
        "[[notify.webhook]]\nurl = \"{url}\"\n\n[hooks.mark]\ncommand = [\"/usr/bin/touch\", \"{}\"]\ntimeout = \"10s\"\n",
        mark.display()
    );
    let v = b.start();
    v.wait_status("ok");
    v.set_available_kb(50_000);
    let body = received.join().unwrap();
    let doc: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(doc["rule"], "tell-and-fix");
    assert_eq!(doc["check"], "mem");
    assert_eq!(doc["status"], "crit");
    wait_for(Duration::from_secs(10), "the hook's file", || {
        mark.exists().then_some(())
    });
    wait_for(Duration::from_secs(10), "both results in the log", || {
        let log = v.log();
        (log.contains(&format!(
            "`notify` — done: notified {}",
            url.trim_end_matches("/alerts")
        )) && log.contains("`hook mark` — done: hook mark succeeded"))
        .then_some(())
    });
    let log = v.log();
    assert!(
        log.contains("`restart unit:never.service` — observed: not carried out (mode = observe)"),
        "{log}"
    );
}
