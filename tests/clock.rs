//! Durations run on the monotonic clock: vigild under libfaketime (Debian's `faketime`),
//! its wall clock moved while it runs, an hour back and a day ahead, and started 54 years
//! behind (a Jetson without an RTC battery boots in 1970). The monotonic clocks are left
//! alone (`DONT_FAKE_MONOTONIC=1`), as on a real box where only the wall clock jumps.

mod common;

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
    v.set_available_kb(50_000);
    v.wait_status("critical");
    let crit = Instant::now();
    set_clock(&clock, "-1h");
    wait_for(Duration::from_secs(10), "the incident", || {
        v.log().contains("incident 1 opened").then_some(())
    });
    let after = crit.elapsed();
    println!("incident opened {} ms after crit", after.as_millis());
    assert!(after >= Duration::from_millis(2500), "{after:?}");
    assert!(after < Duration::from_secs(6), "{after:?}");
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

/// The clock set a day ahead: `for = "10m"` does not fire, and `limit = "2 per 1h"` still
/// allows two actions, not a fresh window's worth.
#[test]
fn a_day_ahead_neither_fires_for_nor_opens_the_limit() {
    let dir = tempfile::tempdir().unwrap();
    let clock = dir.path().join("clock");
    set_clock(&clock, "+0");
    let v = faked(VigildBuilder::new().policy(AHEAD), &clock);
    v.wait_status("ok");
    v.set_available_kb(50_000);
    wait_for(Duration::from_secs(10), "two actions of capped", || {
        (occurrences(&v, "`notify` — ") >= 2).then_some(())
    });
    set_clock(&clock, "+1d");
    std::thread::sleep(Duration::from_secs(4));
    let log = v.log();
    assert!(!log.contains("rule slow on check mem"), "{log}");
    assert_eq!(occurrences(&v, "`notify` — "), 2, "{log}");
    assert!(log.contains("rule capped reached its limit"), "{log}");
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
    std::thread::sleep(Duration::from_millis(1200));
    assert!(v.heartbeat()["uptime"].as_u64().unwrap() >= 1);
    // NTP answers: the clock jumps 54 years ahead while vigild runs.
    set_clock(&clock, "+0");
    std::thread::sleep(Duration::from_millis(1200));
    let doc = bus.status_doc();
    assert_eq!(doc["maintenance"], true, "{doc}");
    assert!(v.heartbeat()["uptime"].as_u64().unwrap() >= 2);
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
