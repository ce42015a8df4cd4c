//! An update's gate under a wall clock that jumps (libfaketime, monotonic clocks left
//! alone): a box that booted in 1970 gets its time from NTP while a gate window runs, and a
//! clock set back an hour while a failing gate waits out its timeout. The window and the
//! timeout are measured on the monotonic clock: the gate neither passes early nor waits an
//! hour, the heartbeat answers all the while and the store keeps every row.

mod common;
mod docker_support;
mod faults_support;
mod reliability;
mod update_support;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use common::*;
use update_support::{policy, UpdateBed};

/// Debian's libfaketime; the test fails without it (scripts/test.sh installs `faketime`).
fn libfaketime() -> PathBuf {
    let found = std::fs::read_dir("/usr/lib")
        .unwrap()
        .flatten()
        .map(|e| e.path().join("faketime/libfaketime.so.1"))
        .find(|p| p.exists());
    found.expect("libfaketime is missing: apt-get install faketime (scripts/test.sh does it)")
}

fn set_clock(clock: &Path, offset: &str) {
    write_atomic(clock, &format!("{offset}\n"));
}

/// The bed's vigild with its wall clock at the offset in `clock`.
fn faked_vigild(bed: &UpdateBed, clock: &Path) -> Vigild {
    let mut b = VigildBuilder::new()
        .bus(&bed.bus)
        .policy(&policy(&bed.state))
        .env("LD_PRELOAD", libfaketime().to_str().unwrap())
        .env("FAKETIME_TIMESTAMP_FILE", clock.to_str().unwrap())
        .env("FAKETIME_NO_CACHE", "1")
        .env("DONT_FAKE_MONOTONIC", "1");
    b.settings = bed.settings.clone();
    b.state_dir = Some(bed.state.clone());
    let v = b.start();
    wait_for(Duration::from_secs(20), "vigild on the bus", || {
        bed.bus
            .busctl_raw(&["status", "org.vigil.Vigil1"])
            .status
            .success()
            .then_some(())
    });
    v
}

/// What a run through its gate looked like.
struct Gated {
    state: String,
    detail: String,
    /// From the moment the run was seen gating to the moment it was seen ended.
    gating: Duration,
    polled: faults_support::Polled,
    lost: usize,
    kept: String,
    log: String,
}

/// Applies `bundle`, moves the clock to `jump` as soon as the run is seen gating, and
/// waits for the run to end.
fn gate_with_jump(bed: &UpdateBed, v: &Vigild, clock: &Path, bundle: &Path, jump: &str) -> Gated {
    let db = bed.state.join("vigil.db");
    wait_for(
        Duration::from_secs(10),
        "the checks' first transitions",
        || (faults_support::rows(&db).transitions.len() >= 3).then_some(()),
    );
    let before = faults_support::rows(&db);
    let polled = faults_support::HeartbeatPoller::start(v.port);
    let id = bed
        .call("ApplyUpdate", &["s", bundle.to_str().unwrap()])
        .unwrap();
    wait_for(Duration::from_secs(60), "the run gating", || {
        (bed.update_doc()["run"]["state"] == "gating").then_some(())
    });
    let gating = Instant::now();
    set_clock(clock, jump);
    let run = wait_for(Duration::from_secs(60), "the run to end", || {
        let d = bed.update_doc();
        let fin = ["committed", "rolled-back", "failed", "refused"];
        (d["run"]["id"] == id.as_str() && fin.contains(&d["run"]["state"].as_str()?))
            .then_some(d["run"].clone())
    });
    let gating = gating.elapsed();
    let polled = polled.finish();
    let after = faults_support::rows(&db);
    Gated {
        state: run["state"].as_str().unwrap().to_string(),
        detail: run["detail"].as_str().unwrap_or_default().to_string(),
        gating,
        polled,
        lost: before.lost_in(&after),
        kept: faults_support::kept_figure(&before, &after),
        log: v.log(),
    }
}

/// Booted in 1970: an update is applied; while its gate window (3 s of the stack check
/// ok) runs, NTP answers and the clock jumps 54 years ahead. A window kept on the wall
/// clock would be over at once; this one still takes its 3 s, then commits.
#[test]
fn ntp_answering_during_a_gate_window_neither_shortens_nor_stretches_it() {
    let bed = UpdateBed::new("ntpgate", "0");
    let dir = tempfile::tempdir().unwrap();
    let clock = dir.path().join("clock");
    set_clock(&clock, "-54y");
    let v = faked_vigild(&bed, &clock);
    let year = v.heartbeat()["timestamp"].as_str().unwrap()[..4].to_string();
    let (bundle, _) = bed.bundle("2.0.0", false, "stack", "3s", "60s");
    let g = gate_with_jump(&bed, &v, &clock, &bundle, "+0");
    let now_year = v.heartbeat()["timestamp"].as_str().unwrap()[..4].to_string();
    let in_window = g.gating >= Duration::from_millis(2500) && g.gating < Duration::from_secs(10);
    let pass = year.starts_with("197")
        && !now_year.starts_with("197")
        && g.state == "committed"
        && in_window
        && g.polled.all_answered()
        && g.lost == 0;
    reliability::record(
        "ntp_answering_during_a_gate_window_neither_shortens_nor_stretches_it",
        "vigild started with the wall clock in 1970; an update applied, and the clock jumped \
         54 years ahead (NTP) just after its gate window (3 s, timeout 60 s) began",
        &format!(
            "clock {year} → {now_year}; {} {} ms after gating began (window 3 s); {}; {}",
            g.state,
            g.gating.as_millis(),
            g.polled.figure(),
            g.kept
        ),
        pass,
    );
    assert!(year.starts_with("197"), "{year}");
    assert!(!now_year.starts_with("197"), "{now_year}");
    assert_eq!(g.state, "committed", "{}\n{}", g.detail, g.log);
    assert!(in_window, "gate took {:?}\n{}", g.gating, g.log);
    assert!(g.polled.all_answered(), "{:?}", g.polled);
    assert_eq!(g.lost, 0);
    assert_eq!(bed.current(), "2.0.0");
}

/// A gate that never passes (the new release breaks the stack) with a 3 s timeout; the
/// clock set back an hour just after it began. A timeout on the wall clock would wait an
/// hour and 3 s; this one rolls back after 3 s.
#[test]
fn an_hour_back_during_a_gate_timeout_does_not_stretch_it() {
    let bed = UpdateBed::new("backgate", "0");
    let dir = tempfile::tempdir().unwrap();
    let clock = dir.path().join("clock");
    set_clock(&clock, "+0");
    let v = faked_vigild(&bed, &clock);
    let (bundle, _) = bed.bundle("2.0.0", true, "stack", "500ms", "3s");
    let g = gate_with_jump(&bed, &v, &clock, &bundle, "-1h");
    let in_time = g.gating >= Duration::from_millis(2500) && g.gating < Duration::from_secs(20);
    let pass = g.state == "rolled-back" && in_time && g.polled.all_answered() && g.lost == 0;
    reliability::record(
        "an_hour_back_during_a_gate_timeout_does_not_stretch_it",
        "an update whose gate cannot pass (timeout 3 s); the wall clock (libfaketime) set \
         back an hour just after the gate began",
        &format!(
            "{} {} ms after gating began (the rollback's own gate included); {}; {}",
            g.state,
            g.gating.as_millis(),
            g.polled.figure(),
            g.kept
        ),
        pass,
    );
    assert_eq!(g.state, "rolled-back", "{}\n{}", g.detail, g.log);
    assert!(
        g.detail.contains("did not pass within 3 s"),
        "{}\n{}",
        g.detail,
        g.log
    );
    assert!(in_time, "gate took {:?}\n{}", g.gating, g.log);
    assert!(g.polled.all_answered(), "{:?}", g.polled);
    assert_eq!(g.lost, 0);
    assert_eq!(bed.current(), "1.0.0");
}
