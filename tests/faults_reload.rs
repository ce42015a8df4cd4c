//! A policy file removed or half-written while vigild reloads. Step by step first (a half
//! file is refused and the running set stays; a removed one takes its checks with it and
//! nothing else), then a storm: SIGHUP every 20 ms for 5 s while another thread removes the
//! file, writes half of it and writes it whole, over and over, without renames. The check in
//! the file nobody touches never moves, the heartbeat answers throughout, nothing is lost
//! from the store, and once the file is whole again one reload takes it.

mod common;
mod faults_support;
mod reliability;

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::*;

/// The file that comes and goes: a second memory check.
const EXTRA: &str = r#"[[check]]
name = "mem2"
probe = "memory"
every = "100ms"
warn = "available < 20%"
crit = "available < 10%"
"#;

/// EXTRA cut inside the string `"memory"`: not TOML.
fn half() -> &'static str {
    let cut = EXTRA.find("memory").unwrap() + 3;
    &EXTRA[..cut]
}

/// The checks vigild serves, by name, from its status document.
fn served(bus: &Bus) -> Vec<String> {
    let doc = bus.status_doc();
    let mut names: Vec<String> = doc["checks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap().to_string())
        .collect();
    names.sort();
    names
}

/// `Reload` over D-Bus: Ok, or the refusal.
fn reload(bus: &Bus) -> Result<(), String> {
    let out = bus.busctl_raw(&[
        "call",
        "org.vigil.Vigil1",
        "/org/vigil/Vigil1",
        "org.vigil.Vigil1.Manager",
        "Reload",
    ]);
    if out.status.success() {
        Ok(())
    } else {
        Err(String::from_utf8_lossy(&out.stderr).into_owned())
    }
}

#[test]
fn a_policy_file_removed_or_half_written_during_reloads_never_costs_the_running_set() {
    let bus = Bus::start();
    let v = VigildBuilder::new().bus(&bus).start();
    v.wait_dbus_status(&bus, "ok");
    let extra = v.policies_dir().join("extra.toml");
    std::fs::write(&extra, EXTRA).unwrap();
    reload(&bus).unwrap();
    v.wait_status("ok");
    let both = vec!["mem".to_string(), "mem2".to_string()];
    wait_for(Duration::from_secs(10), "both checks served", || {
        (served(&bus) == both).then_some(())
    });
    let db = v.state_dir().join("vigil.db");
    wait_for(
        Duration::from_secs(10),
        "both checks' first transitions",
        || (faults_support::rows(&db).transitions.len() == 2).then_some(()),
    );
    let before = faults_support::rows(&db);
    let polled = faults_support::HeartbeatPoller::start(v.port);

    // Half-written: refused, naming the file; the running set stays.
    std::fs::write(&extra, half()).unwrap();
    let refused = reload(&bus).unwrap_err();
    let half_refused = refused.contains("extra.toml") && served(&bus) == both;
    // Removed: its check goes, the other stays.
    std::fs::remove_file(&extra).unwrap();
    reload(&bus).unwrap();
    let removed_ok = served(&bus) == ["mem".to_string()];
    std::fs::write(&extra, EXTRA).unwrap();
    reload(&bus).unwrap();
    wait_for(Duration::from_secs(10), "mem2 back", || {
        (served(&bus) == both).then_some(())
    });

    // The storm.
    let stop = Arc::new(AtomicBool::new(false));
    let writes = Arc::new(AtomicU64::new(0));
    let writer = {
        let (stop, writes, extra) = (stop.clone(), writes.clone(), extra.clone());
        std::thread::spawn(move || {
            while !stop.load(Ordering::SeqCst) {
                let _ = std::fs::remove_file(&extra);
                std::thread::sleep(Duration::from_millis(3));
                std::fs::write(&extra, half()).unwrap();
                std::thread::sleep(Duration::from_millis(3));
                std::fs::write(&extra, EXTRA).unwrap();
                std::thread::sleep(Duration::from_millis(3));
                writes.fetch_add(1, Ordering::SeqCst);
            }
        })
    };
    let refusals_before = v.log().matches("reload refused").count();
    let storm = Instant::now();
    let mut hups = 0;
    while storm.elapsed() < Duration::from_secs(5) {
        kill(v.pid(), SIGHUP);
        hups += 1;
        std::thread::sleep(Duration::from_millis(20));
    }
    stop.store(true, Ordering::SeqCst);
    writer.join().unwrap();
    let cycles = writes.load(Ordering::SeqCst);
    // Whole again (the writer's last write): one reload takes it.
    std::fs::write(&extra, EXTRA).unwrap();
    std::thread::sleep(Duration::from_millis(500));
    let final_reload = reload(&bus);
    let final_set = served(&bus);
    std::thread::sleep(Duration::from_millis(500));
    let polled = polled.finish();
    let alive = v.heartbeat()["status"] == "ok";
    let log = v.log();
    let refusals = log.matches("reload refused").count() - refusals_before;
    let mem_removed = log.matches("check mem removed").count();
    let after = faults_support::rows(&db);
    let lost = before.lost_in(&after);
    // mem never left ok: its only transition is the first.
    let mem_moves = after
        .transitions
        .values()
        .filter(|r| r.starts_with("Text(\"mem\")|"))
        .count();
    let pass = half_refused
        && removed_ok
        && final_reload.is_ok()
        && final_set == both
        && alive
        && mem_removed == 0
        && mem_moves == 1
        && polled.all_answered()
        && lost == 0;
    reliability::record(
        "a_policy_file_removed_or_half_written_during_reloads_never_costs_the_running_set",
        "a policy file half-written (cut mid-string) then removed, each with a reload; then \
         SIGHUP every 20 ms for 5 s while a thread removed it, wrote half, wrote it whole, \
         without renames",
        &format!(
            "half file refused, set kept: {}; removed: its check went, the other stayed: {}; \
             storm: {hups} SIGHUPs, {cycles} remove/half/whole cycles, {refusals} reloads \
             refused, the untouched check removed {mem_removed} times and moved {} times; \
             whole again: taken by one reload: {}; {}; {}",
            if half_refused { "yes" } else { "no" },
            if removed_ok { "yes" } else { "no" },
            mem_moves - 1,
            if final_reload.is_ok() && final_set == both {
                "yes"
            } else {
                "no"
            },
            polled.figure(),
            faults_support::kept_figure(&before, &after)
        ),
        pass,
    );
    assert!(half_refused, "{refused}");
    assert!(removed_ok);
    assert!(final_reload.is_ok(), "{final_reload:?}\n{log}");
    assert_eq!(final_set, both, "{log}");
    assert!(alive);
    assert_eq!(mem_removed, 0, "{log}");
    assert_eq!(mem_moves, 1, "{after:#?}");
    assert!(polled.all_answered(), "{polled:?}");
    assert_eq!(lost, 0);
    assert!(refusals > 0, "the storm hit half files: {log}");
}
