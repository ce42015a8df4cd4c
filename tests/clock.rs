//! Durations run on the monotonic clock: vigild under libfaketime (Debian's `faketime`),
//! its wall clock moved while it runs, an hour back and a day ahead, and started 54 years
//! behind (a Jetson without an RTC battery boots in 1970). The monotonic clocks are left
//! alone (`DONT_FAKE_MONOTONIC=1`), as on a real box where only the wall clock jumps.

mod common;
mod faults_support;
mod reliability;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use common::*;

/// Debian's libfaketime; the test fails without it (scripts/test.sh installs `faketime`).
fn libfaketime() -> PathBuf {
    let found = std::fs::read_dir("/usr/lib")
        .unwrap()
        .flatten()
        .map(|e| e.path().join("faketime/libfaketime.so.1"))
        .find(|p| p.exists());
    found.expect("libfaketime is missing: apt-get install faketime (scripts/test.sh does it)")
}

/// A vigild whose wall clock is the offset in `clock` (`+0`, `-1h`, `+1d`, `-54y`),
/// read afresh at every clock read, so the test moves it by writing that file.
fn faked(b: VigildBuilder, clock: &Path) -> Vigild {
    b.env("LD_PRELOAD", libfaketime().to_str().unwrap())
        .env("FAKETIME_TIMESTAMP_FILE", clock.to_str().unwrap())
        .env("FAKETIME_NO_CACHE", "1")
        .env("DONT_FAKE_MONOTONIC", "1")
        .start()
}

fn set_clock(clock: &Path, offset: &str) {
    write_atomic(clock, &format!("{offset}\n"));
}

fn occurrences(v: &Vigild, needle: &str) -> usize {
    v.log().matches(needle).count()
}

const HOLD: &str = r#"
[[check]]
name = "mem"
probe = "memory"
every = "100ms"
crit = "available < 10%"

[[rule]]
name = "held"
on = "mem"
for = "3s"
do = ["notify"]
"#;

/// The clock set back an hour while `for = "3s"` runs: the incident opens after 3 s, not
/// after an hour and 3 s.
#[test]
fn an_hour_back_does_not_stretch_for() {
    let dir = tempfile::tempdir().unwrap();
    let clock = dir.path().join("clock");
    set_clock(&clock, "+0");
    let v = faked(VigildBuilder::new().policy(HOLD), &clock);
    v.wait_status("ok");
    let db = v.state_dir().join("vigil.db");
    wait_for(
        Duration::from_secs(10),
        "the first transition stored",
        || (!faults_support::rows(&db).transitions.is_empty()).then_some(()),
    );
    let before = faults_support::rows(&db);
    let polled = faults_support::HeartbeatPoller::start(v.port);
    v.set_available_kb(50_000);
    v.wait_status("critical");
    let crit = Instant::now();
    set_clock(&clock, "-1h");
    wait_for(Duration::from_secs(10), "the incident", || {
        v.log().contains("incident 1 opened").then_some(())
    });
    let after = crit.elapsed();
    println!("incident opened {} ms after crit", after.as_millis());
    // Stored too: the transition, the incident and its action.
    wait_for(
        Duration::from_secs(10),
        "the incident's action stored",
        || (!faults_support::rows(&db).actions.is_empty()).then_some(()),
    );
    let polled = polled.finish();
    let rows = faults_support::rows(&db);
    let lost = before.lost_in(&rows);
    let stored = (
        rows.transitions.len(),
        rows.incidents.len(),
        rows.actions.len(),
    );
    let in_time = after >= Duration::from_millis(2500) && after < Duration::from_secs(6);
    reliability::record(
        "an_hour_back_does_not_stretch_for",
        "the wall clock (libfaketime) set back an hour while a rule's `for = \"3s\"` ran",
        &format!(
            "incident opened {} ms after crit (for = 3 s); {}/{}/{} transitions/incidents/\
             actions stored; {}; {}",
            after.as_millis(),
            stored.0,
            stored.1,
            stored.2,
            polled.figure(),
            faults_support::kept_figure(&before, &rows)
        ),
        in_time && stored == (2, 1, 1) && polled.all_answered() && lost == 0,
    );
    assert!(after >= Duration::from_millis(2500), "{after:?}");
    assert!(after < Duration::from_secs(6), "{after:?}");
    assert_eq!(stored, (2, 1, 1), "{rows:#?}");
    assert!(polled.all_answered(), "{polled:?}");
    assert_eq!(lost, 0);
}

const AHEAD: &str = r#"
[[check]]
name = "mem"
probe = "memory"
every = "100ms"
crit = "available < 10%"

[[rule]]
name = "slow"
on = "mem"
for = "10m"
do = ["notify"]

[[rule]]
name = "capped"
on = "mem"
for = "0s"
cooldown = "0s"
limit = "2 per 1h"
do = ["notify"]
"#;

/// The clock set ahead by `offset` while a check is crit; returns (the heartbeat, rows
/// before the jump, rows after, the log) once 4 s have passed on the new clock.
fn jump_ahead(
    offset: &str,
) -> (
    faults_support::Polled,
    faults_support::Rows,
    faults_support::Rows,
    String,
) {
    let dir = tempfile::tempdir().unwrap();
    let clock = dir.path().join("clock");
    set_clock(&clock, "+0");
    let v = faked(VigildBuilder::new().policy(AHEAD), &clock);
    v.wait_status("ok");
    let db = v.state_dir().join("vigil.db");
    v.set_available_kb(50_000);
    wait_for(Duration::from_secs(10), "two actions of capped", || {
        (occurrences(&v, "`notify` — ") >= 2).then_some(())
    });
    wait_for(Duration::from_secs(10), "both actions stored", || {
        (faults_support::rows(&db).actions.len() == 2).then_some(())
    });
    let before = faults_support::rows(&db);
    let polled = faults_support::HeartbeatPoller::start(v.port);
    set_clock(&clock, offset);
    std::thread::sleep(Duration::from_secs(4));
    let polled = polled.finish();
    let after = faults_support::rows(&db);
    (polled, before, after, v.log())
}

/// The clock set a day ahead: `for = "10m"` does not fire, and `limit = "2 per 1h"` still
/// allows two actions, not a fresh window's worth.
#[test]
fn a_day_ahead_neither_fires_for_nor_opens_the_limit() {
    let (polled, before, after, log) = jump_ahead("+1d");
    assert!(!log.contains("rule slow on check mem"), "{log}");
    assert_eq!(log.matches("`notify` — ").count(), 2, "{log}");
    assert!(log.contains("rule capped reached its limit"), "{log}");
    assert!(polled.all_answered(), "{polled:?}");
    assert_eq!(before.lost_in(&after), 0);
}

/// An hour ahead, exactly the length of the limit's window: a limit kept on the wall clock
/// would see its window over and allow two more.
#[test]
fn an_hour_ahead_neither_fires_for_nor_opens_the_limit() {
    let (polled, before, after, log) = jump_ahead("+1h");
    let fired_for = log.contains("rule slow on check mem");
    let actions = log.matches("`notify` — ").count();
    let lost = before.lost_in(&after);
    let pass = !fired_for
        && actions == 2
        && after.actions.len() == 2
        && polled.all_answered()
        && lost == 0;
    reliability::record(
        "an_hour_ahead_neither_fires_for_nor_opens_the_limit",
        "the wall clock (libfaketime) set an hour ahead while a check was crit, under a rule \
         `for = \"10m\"` and one with `limit = \"2 per 1h\"` already spent",
        &format!(
            "`for = 10m` rule fired: {}; actions 2 before, {actions} after 4 s (limit held); {}; \
             {}",
            if fired_for { "yes" } else { "no" },
            polled.figure(),
            faults_support::kept_figure(&before, &after)
        ),
        pass,
    );
    assert!(!fired_for, "{log}");
    assert_eq!(actions, 2, "{log}");
    assert_eq!(after.actions.len(), 2);
    assert!(log.contains("rule capped reached its limit"), "{log}");
    assert!(polled.all_answered(), "{polled:?}");
    assert_eq!(lost, 0);
}

fn wall_secs(rfc3339: &str) -> u64 {
    humantime::parse_rfc3339(rfc3339)
        .unwrap()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// Started 54 years behind: the uptime counts, a maintenance window set then lasts its
/// hour; after a restart with the clock right (NTP answered), and with it a day ahead, it
/// is still on and ends an hour after it was set — not decades later, not at once.
#[test]
fn fifty_four_years_behind_at_start_and_maintenance_across_restarts() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");
    let clock = dir.path().join("clock");
    set_clock(&clock, "-54y");
    let bus = Bus::start();
    let builder = || {
        let mut b = VigildBuilder::new().bus(&bus);
        b.state_dir = Some(state.clone());
        b
    };
    let mut v = faked(builder(), &clock);
    v.wait_dbus_status(&bus, "ok");
    let hb = v.heartbeat();
    assert!(hb["timestamp"].as_str().unwrap().starts_with("197"), "{hb}");
    bus.busctl(&[
        "call",
        "org.vigil.Vigil1",
        "/org/vigil/Vigil1",
        "org.vigil.Vigil1.Manager",
        "SetMaintenance",
        "bts",
        "true",
        "3600",
        "clock test",
    ]);
    let set = Instant::now();
    // A transition in 1970, then NTP answers: the clock jumps 54 years ahead while vigild
    // runs, and the check goes back to ok in the present.
    v.set_available_kb(50_000);
    v.wait_status("critical");
    let db = state.join("vigil.db");
    wait_for(Duration::from_secs(10), "both transitions stored", || {
        (faults_support::rows(&db).transitions.len() == 2).then_some(())
    });
    let before = faults_support::rows(&db);
    let polled = faults_support::HeartbeatPoller::start(v.port);
    std::thread::sleep(Duration::from_millis(1200));
    assert!(v.heartbeat()["uptime"].as_u64().unwrap() >= 1);
    set_clock(&clock, "+0");
    std::thread::sleep(Duration::from_millis(1200));
    v.set_available_kb(800_000);
    v.wait_status("ok");
    let doc = bus.status_doc();
    let maintenance_kept = doc["maintenance"] == true;
    let uptime = v.heartbeat()["uptime"].as_u64().unwrap();
    wait_for(
        Duration::from_secs(10),
        "the third transition stored",
        || (faults_support::rows(&db).transitions.len() == 3).then_some(()),
    );
    let polled = polled.finish();
    let after = faults_support::rows(&db);
    let lost = before.lost_in(&after);
    let years: Vec<String> = rusqlite::Connection::open(&db)
        .unwrap()
        .prepare("SELECT strftime('%Y', at_us / 1000000, 'unixepoch') FROM transitions ORDER BY id")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    let uptime_ok = (2..30).contains(&uptime);
    reliability::record(
        "fifty_four_years_behind_at_start_and_maintenance_across_restarts",
        "vigild started with the wall clock in 1970 (no RTC), a 1 h maintenance window set \
         and a check turned crit then; the clock jumped 54 years ahead (NTP) while it ran",
        &format!(
            "uptime {uptime} s after the jump; maintenance still on: {}; transitions stored \
             in {}; {}; {}",
            if maintenance_kept { "yes" } else { "no" },
            years.join(", "),
            polled.figure(),
            faults_support::kept_figure(&before, &after)
        ),
        maintenance_kept && uptime_ok && polled.all_answered() && lost == 0,
    );
    assert!(maintenance_kept, "{doc}");
    assert!(uptime_ok, "uptime {uptime}");
    assert!(polled.all_answered(), "{polled:?}");
    assert_eq!(lost, 0);
    v.stop();

    for offset in ["+0", "+1d"] {
        set_clock(&clock, offset);
        let mut v = faked(builder(), &clock);
        v.wait_dbus_status(&bus, "ok");
        let doc = bus.status_doc();
        assert_eq!(doc["maintenance"], true, "{offset}: {doc}");
        let now = wall_secs(v.heartbeat()["timestamp"].as_str().unwrap());
        let until = wall_secs(doc["maintenance_until"].as_str().unwrap());
        let left = until.saturating_sub(now);
        let expected = 3600 - set.elapsed().as_secs();
        println!("{offset}: maintenance ends in {left} s (expected about {expected} s)");
        assert!(
            left.abs_diff(expected) <= 5,
            "{offset}: {left} s left, {doc}"
        );
        v.stop();
    }
}
