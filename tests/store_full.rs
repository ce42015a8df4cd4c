//! The store on a full disk: a real 1 MiB tmpfs as the state directory, filled up while a
//! check flaps. Nothing is lost (records wait in memory and are written when space returns),
//! incident ids stay unique, the status says how the store is, and a reboot is held while
//! its record cannot be written. Needs root (mount).

mod common;
mod faults_support;
mod reliability;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use common::*;

/// A tmpfs of `size` mounted at `at`, unmounted on drop.
struct Tmpfs(PathBuf);

impl Tmpfs {
    fn mount(at: &Path, size: &str) -> Tmpfs {
        std::fs::create_dir_all(at).unwrap();
        let ok = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(at)
            .status()
            .expect("mount (util-linux)")
            .success();
        assert!(ok, "mounting a tmpfs needs root");
        Tmpfs(at.to_path_buf())
    }

    /// Fills it up; returns the filler file.
    fn fill(&self) -> PathBuf {
        let filler = self.0.join("filler");
        let _ = Command::new("dd")
            .args(["if=/dev/zero", "bs=4k"])
            .arg(format!("of={}", filler.display()))
            .stderr(std::process::Stdio::null())
            .status();
        filler
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.0).status();
    }
}

const FLAPPING: &str = r#"
[[check]]
name = "mem"
probe = "memory"
every = "100ms"
crit = "available < 10%"

[[rule]]
name = "note"
on = "mem"
for = "0s"
cooldown = "0s"
limit = "1000 per 1h"
do = ["notify"]
"#;

fn count(db: &rusqlite::Connection, sql: &str) -> i64 {
    db.query_row(sql, [], |r| r.get(0)).unwrap()
}

#[test]
fn records_made_while_the_disk_is_full_are_written_when_space_returns() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");
    let fs = Tmpfs::mount(&state, "1m");
    let bus = Bus::start();
    let mut b = VigildBuilder::new().bus(&bus).policy(FLAPPING);
    b.state_dir = Some(state.clone());
    let mut v = b.start();
    v.wait_dbus_status(&bus, "ok");

    let db_path = state.join("vigil.db");
    wait_for(
        Duration::from_secs(10),
        "the first transition stored",
        || (!faults_support::rows(&db_path).transitions.is_empty()).then_some(()),
    );
    let before = faults_support::rows(&db_path);
    let polled = faults_support::HeartbeatPoller::start(v.port);
    let filler = fs.fill();
    let full = std::time::Instant::now();
    let free_kb = |p: &Path| {
        let st = nix::sys::statvfs::statvfs(p).unwrap();
        st.blocks_available() as u64 * st.fragment_size() as u64 / 1024
    };
    let free_when_full = free_kb(&state);
    let actions_before = v.log().matches("`notify` — ").count();
    // Flap: every crit opens an incident and takes an action; every ok resolves it.
    for _ in 0..6 {
        v.set_available_kb(50_000);
        v.wait_status("critical");
        v.set_available_kb(800_000);
        v.wait_status("ok");
    }
    let doc = wait_for(
        Duration::from_secs(10),
        "the store reported failing",
        || {
            let d = bus.status_doc();
            (d["store"]["waiting"].as_u64().unwrap_or(0) > 0).then_some(d)
        },
    );
    assert!(doc["store"]["failing_since"].is_string(), "{doc}");
    assert!(doc["summary"].as_str().unwrap().contains("store:"), "{doc}");
    let (code, out, _) = vigilctl(&["--bus", &bus.address, "status"]);
    assert_eq!(code, 0, "{out}");
    assert!(
        out.contains("store: writes failing since ") && out.contains("records waiting"),
        "{out}"
    );

    let actions_while_full = v.log().matches("`notify` — ").count() - actions_before;
    let waiting = doc["store"]["waiting"].as_u64().unwrap_or(0);
    let full_for = full.elapsed();
    std::fs::remove_file(filler).unwrap();
    let freed = std::time::Instant::now();
    wait_for(
        Duration::from_secs(10),
        "every waiting record written",
        || {
            let d = bus.status_doc();
            (d["store"]["waiting"] == 0 && d["store"]["failing_since"].is_null()).then_some(())
        },
    );
    let resumed = freed.elapsed();
    let polled = polled.finish();
    v.stop();
    let log = v.log();
    let after = faults_support::rows(&db_path);
    let lost = before.lost_in(&after);
    let integrity = faults_support::integrity(&db_path);
    // Every transition, incident and action the log reports is a row.
    let logged = (
        ["unknown", "ok", "warn", "crit"]
            .iter()
            .map(|from| log.matches(&format!("check mem {from} → ")).count())
            .sum::<usize>(),
        log.matches("opened: rule note on check mem").count(),
        log.matches("`notify` — ").count(),
    );
    let stored = (
        after.transitions.len(),
        after.incidents.len(),
        after.actions.len(),
    );
    let pass = polled.all_answered()
        && lost == 0
        && integrity == "ok"
        && logged == stored
        && actions_while_full >= 6;
    reliability::record(
        "records_made_while_the_disk_is_full_are_written_when_space_returns",
        "the state directory a real 1 MiB tmpfs, filled up with dd while a check flapped 6 \
         times (each crit an incident and a notify action), then the filler removed",
        &format!(
            "{free_when_full} KiB free for {} s; {actions_while_full} actions run while full, \
             {waiting} records waiting, all written {} ms after space returned; {}; {}; \
             {}/{}/{} transitions/incidents/actions logged and stored; integrity_check {integrity}",
            full_for.as_secs(),
            resumed.as_millis(),
            polled.figure(),
            faults_support::kept_figure(&before, &after),
            stored.0,
            stored.1,
            stored.2,
        ),
        pass,
    );
    assert!(polled.all_answered(), "{polled:?}");
    assert_eq!(lost, 0);
    assert_eq!(integrity, "ok");
    assert_eq!(logged, stored, "{log}");
    assert!(actions_while_full >= 6, "{actions_while_full}\n{log}");
    assert!(!log.contains("FOREIGN KEY"), "{log}");
    assert!(log.contains("keeping records in memory"), "{log}");
    assert!(log.contains("the store writes again"), "{log}");

    // Everything the log says happened is in the store.
    let transitions = ["unknown", "ok", "warn", "crit"]
        .iter()
        .map(|from| log.matches(&format!("check mem {from} → ")).count() as i64)
        .sum::<i64>();
    let opened = log.matches("opened: rule note on check mem").count() as i64;
    let db = rusqlite::Connection::open(state.join("vigil.db")).unwrap();
    assert_eq!(
        count(
            &db,
            "SELECT count(*) FROM transitions WHERE check_name = 'mem'"
        ),
        transitions
    );
    assert_eq!(count(&db, "SELECT count(*) FROM incidents"), opened);
    assert!(opened >= 6, "{opened} incidents");
    assert_eq!(
        count(&db, "SELECT count(*) FROM actions"),
        count(&db, "SELECT count(*) FROM actions WHERE result IS NOT NULL")
    );
    let actions = log.matches("`notify` — ").count() as i64;
    assert_eq!(count(&db, "SELECT count(*) FROM actions"), actions);
    let max_id = count(&db, "SELECT max(id) FROM incidents");
    drop(db);

    // Ids go on after a restart, above every one handed out before.
    let mut b = VigildBuilder::new().bus(&bus).policy(FLAPPING);
    b.state_dir = Some(state.clone());
    let mut v = b.start();
    v.wait_dbus_status(&bus, "ok");
    v.set_available_kb(50_000);
    v.wait_status("critical");
    wait_for(
        Duration::from_secs(10),
        "an incident after the restart",
        || v.log().contains("opened: rule note").then_some(()),
    );
    v.stop();
    let db = rusqlite::Connection::open(state.join("vigil.db")).unwrap();
    let newest = count(&db, "SELECT max(id) FROM incidents");
    assert!(newest > max_id, "id {newest} after {max_id}");
}

const REBOOT: &str = r#"
[[check]]
name = "mem"
probe = "memory"
every = "100ms"
crit = "available < 10%"

[[rule]]
name = "last-resort"
on = "mem"
for = "0s"
do = ["reboot"]
"#;

#[test]
fn a_reboot_is_held_while_its_record_cannot_be_written() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");
    let fs = Tmpfs::mount(&state, "1m");
    let bus = Bus::start();
    let mut b = VigildBuilder::new().bus(&bus).policy(REBOOT);
    b.state_dir = Some(state.clone());
    let mut v = b.start();
    v.wait_dbus_status(&bus, "ok");
    let _filler = fs.fill();
    v.set_available_kb(50_000);
    let line = wait_for(Duration::from_secs(30), "the reboot step's result", || {
        v.log()
            .lines()
            .find(|l| l.contains("`reboot` —"))
            .map(str::to_string)
    });
    assert!(
        line.contains("skipped: held: the store cannot write"),
        "{line}"
    );
    assert!(
        line.contains("a reboot is carried out only once it is recorded"),
        "{line}"
    );
    v.stop();
}

const HOOKED: &str = r#"
[[check]]
name = "mem"
probe = "memory"
every = "100ms"
crit = "available < 10%"

[[rule]]
name = "mark"
on = "mem"
for = "0s"
do = ["hook mark"]
"#;

/// A database locked by another process for longer than SQLite's busy timeout does not
/// delay an action: the hook runs at once, and its records wait until the lock is gone.
#[test]
fn a_locked_store_never_delays_an_action() {
    let dir = tempfile::tempdir().unwrap();
    // The hook runs as nobody (vigild here is root): a directory it may write to.
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o777)).unwrap();
    let marker = dir.path().join("hook-ran");
    let mut b = VigildBuilder::new().policy(HOOKED);
    b.settings = format!(
        "\n[hooks.mark]\ncommand = [\"/usr/bin/touch\", \"{}\"]\n",
        marker.display()
    );
    let mut v = b.start();
    v.wait_status("ok");
    let db = rusqlite::Connection::open(v.state_dir().join("vigil.db")).unwrap();
    db.execute_batch("BEGIN EXCLUSIVE").unwrap();
    let locked = std::time::Instant::now();
    v.set_available_kb(50_000);
    let t = std::time::Instant::now();
    while !marker.exists() {
        assert!(
            t.elapsed() < Duration::from_secs(5),
            "the hook did not run: {}",
            v.log()
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    let waited = locked.elapsed();
    println!(
        "hook ran {} ms after the lock was taken",
        waited.as_millis()
    );
    assert!(waited < Duration::from_secs(3), "{waited:?}");
    // Held past SQLite's 5 s busy timeout, then released: the records follow.
    std::thread::sleep(Duration::from_secs(6).saturating_sub(waited));
    db.execute_batch("COMMIT").unwrap();
    drop(db);
    v.set_available_kb(800_000);
    v.wait_status("ok");
    wait_for(Duration::from_secs(15), "the records written", || {
        let db = rusqlite::Connection::open(v.state_dir().join("vigil.db")).ok()?;
        let n: i64 = db
            .query_row(
                "SELECT count(*) FROM actions WHERE result LIKE 'done:%'",
                [],
                |r| r.get(0),
            )
            .ok()?;
        (n == 1).then_some(())
    });
    v.stop();
}
