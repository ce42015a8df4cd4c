//! The store against real SQLite files.

use std::path::{Path, PathBuf};

use rusqlite::Connection;

use super::db::Db;
use super::open::{Opened, SCHEMA_VERSION};
use super::*;
use crate::core::health::{Status, Transition};
use crate::core::incident::IncidentState;
use crate::core::time::Micros;

fn t(check: &str, from: Status, to: Status, at: Micros) -> Transition {
    Transition {
        check: check.into(),
        from,
        to,
        at,
        detail: format!("{from}->{to}"),
    }
}

#[test]
fn records_and_reads_transitions_in_wal_mode() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(DB_FILE);
    let (db, opened) = Db::open(&path);
    assert_eq!(opened, Opened::Fresh);
    assert_eq!(db.schema_version().unwrap(), SCHEMA_VERSION);
    db.record_transition(&t("disk", Status::Unknown, Status::Ok, 10))
        .unwrap();
    db.record_transition(&t("disk", Status::Ok, Status::Crit, 20))
        .unwrap();
    db.record_transition(&t("mem", Status::Unknown, Status::Ok, 30))
        .unwrap();
    let mode: String = db
        .conn
        .query_row("PRAGMA journal_mode", [], |r| r.get(0))
        .unwrap();
    assert_eq!(mode, "wal");
    drop(db);
    let (db, opened) = Db::open(&path);
    assert_eq!(opened, Opened::Fresh);
    let rows = db.transitions(Some("disk"), 10).unwrap();
    assert_eq!(rows.len(), 2);
    assert_eq!(
        (rows[0].from, rows[0].to, rows[0].at),
        (Status::Ok, Status::Crit, 20)
    );
    assert_eq!(db.transitions(None, 1).unwrap()[0].check, "mem");
}

#[test]
fn incidents_and_actions_are_recorded_before_and_after() {
    let dir = tempfile::tempdir().unwrap();
    let (db, _) = Db::open(&dir.path().join(DB_FILE));
    assert_eq!(db.next_incident_id().unwrap(), 1);
    db.incident_opened(1, "heal", "ollama", 10).unwrap();
    let a = db
        .action_started(1, 0, "restart container:ollama", 11, false)
        .unwrap();
    let open = db.incidents(10, false).unwrap();
    assert_eq!(open[0].actions[0].result, None, "recorded before it runs");
    db.action_finished(a, "restarted").unwrap();
    db.incident_state(1, IncidentState::Resolved, 20).unwrap();
    assert!(db.incidents(10, false).unwrap().is_empty());
    let all = db.incidents(10, true).unwrap();
    assert_eq!(all[0].closed, Some(20));
    assert_eq!(all[0].actions[0].result.as_deref(), Some("restarted"));
    assert_eq!(db.next_incident_id().unwrap(), 2);
}

#[test]
fn migrations_run_forward_from_an_older_schema() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(DB_FILE);
    // A version-0 file: someone else's empty SQLite database.
    Connection::open(&path)
        .unwrap()
        .execute_batch("CREATE TABLE unrelated (x);")
        .unwrap();
    let (db, opened) = Db::open(&path);
    assert_eq!(opened, Opened::Fresh);
    assert_eq!(db.schema_version().unwrap(), SCHEMA_VERSION);
    db.set_setting("k", "v1").unwrap();
    db.set_setting("k", "v2").unwrap();
    assert_eq!(db.setting("k").unwrap().as_deref(), Some("v2"));
    assert_eq!(db.setting("none").unwrap(), None);
}

#[test]
fn corrupt_file_is_moved_aside_and_a_fresh_one_started() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(DB_FILE);
    std::fs::write(
        &path,
        b"this is not a database, it is a shopping list\n".repeat(200),
    )
    .unwrap();
    let (db, opened) = Db::open(&path);
    let Opened::MovedAside { to, reason } = opened else {
        panic!("{opened:?}")
    };
    assert!(to
        .file_name()
        .unwrap()
        .to_string_lossy()
        .starts_with("vigil.db.corrupt-"));
    assert!(std::fs::read(&to)
        .unwrap()
        .starts_with(b"this is not a database"));
    assert!(reason.contains("not a database"), "{reason}");
    db.record_transition(&t("x", Status::Unknown, Status::Ok, 1))
        .unwrap();
    assert_eq!(db.transitions(None, 5).unwrap().len(), 1);
}

#[test]
fn newer_schema_is_moved_aside_not_touched() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(DB_FILE);
    Connection::open(&path)
        .unwrap()
        .pragma_update(None, "user_version", 99)
        .unwrap();
    let (_db, opened) = Db::open(&path);
    let Opened::MovedAside { reason, .. } = opened else {
        panic!("{opened:?}")
    };
    assert!(reason.contains("newer vigild"), "{reason}");
}

#[test]
fn a_file_we_may_not_open_is_left_alone() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(DB_FILE);
    // A directory where the database should be: SQLite cannot open it, and it is not
    // corrupt data either; nothing may be renamed.
    std::fs::create_dir(&path).unwrap();
    let (_db, opened) = Db::open(&path);
    let Opened::InMemory { reason } = opened else {
        panic!("{opened:?}")
    };
    assert!(reason.contains("left as it is"), "{reason}");
    assert!(path.is_dir());
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
}

#[test]
fn unwritable_directory_falls_back_to_memory() {
    let (db, opened) = Db::open(Path::new("/proc/vigil-test/vigil.db"));
    assert!(matches!(opened, Opened::InMemory { .. }), "{opened:?}");
    db.record_transition(&t("x", Status::Unknown, Status::Ok, 1))
        .unwrap();
}

#[tokio::test]
async fn store_thread_writes_in_order_and_answers_queries() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::spawn(dir.path().join(DB_FILE));
    for i in 0..100 {
        store.record_transition(t("c", Status::Ok, Status::Warn, i));
    }
    let n = store
        .call(|db| db.transitions(None, 1000).unwrap().len())
        .await;
    assert_eq!(n, Some(100));
}

/// Reboots that observe mode only noted do not use up the real reboot limit after a
/// restart: only carried-out ones are restored.
#[test]
fn observed_reboots_do_not_count_against_the_limit() {
    let dir = tempfile::tempdir().unwrap();
    let (db, _) = Db::open(&dir.path().join(DB_FILE));
    db.incident_opened(1, "watch", "x", 10).unwrap();
    let seen = db.action_started(1, 0, "reboot", 100, true).unwrap();
    db.action_finished(seen, "observed: not carried out (mode = observe)")
        .unwrap();
    let real = db.action_started(1, 1, "reboot", 200, false).unwrap();
    db.action_finished(real, "done: rebooting").unwrap();
    assert_eq!(db.action_times("reboot", 0).unwrap(), vec![200]);
    assert_eq!(db.action_times("reboot", 201).unwrap(), Vec::<u64>::new());
}

/// A database written before the `observed` column existed: the migration marks its
/// observed actions from their recorded result.
#[test]
fn the_migration_marks_old_observed_actions() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(DB_FILE);
    {
        let conn = rusqlite::Connection::open(&path).unwrap();
        for m in &super::open::MIGRATIONS[..2] {
            conn.execute_batch(m).unwrap();
        }
        conn.execute_batch(
            "PRAGMA user_version = 2;
             INSERT INTO incidents (id, rule, check_name, opened_us, state) VALUES (1, 'r', 'c', 1, 'open');
             INSERT INTO actions (incident, step, action, started_us, result) VALUES
                 (1, 0, 'reboot', 5, 'observed: not carried out (mode = observe)'),
                 (1, 1, 'reboot', 6, 'done: rebooting');",
        )
        .unwrap();
    }
    let (db, opened) = Db::open(&path);
    assert_eq!(opened, Opened::Fresh);
    assert_eq!(db.schema_version().unwrap(), SCHEMA_VERSION);
    assert_eq!(db.action_times("reboot", 0).unwrap(), vec![6]);
}

/// Garbage moved over vigil.db while its -wal file remained is detected, moved aside
/// with that -wal, and a fresh store is started — not rebuilt from the old log.
#[test]
fn garbage_next_to_an_old_wal_is_moved_aside_with_it() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(DB_FILE);
    {
        let (db, _) = Db::open(&path);
        db.set_setting("k", "v").unwrap();
        // Leave the connection unclosed, so the -wal file stays as after a crash.
        std::mem::forget(db);
    }
    let wal = dir.path().join(format!("{DB_FILE}-wal"));
    assert!(wal.exists(), "a -wal file to begin with");
    std::fs::write(&path, vec![b'x'; 8192]).unwrap();
    let (db, opened) = Db::open(&path);
    let Opened::MovedAside { to, reason } = opened else {
        panic!("adopted: {opened:?}")
    };
    assert!(reason.contains("not SQLite's header"), "{reason}");
    assert!(PathBuf::from(format!("{}-wal", to.display())).exists());
    assert_eq!(db.setting("k").unwrap(), None, "a fresh store");
}

#[test]
fn a_flapping_check_keeps_only_its_newest_transitions() {
    use crate::store::db::TRANSITIONS_KEPT_PER_CHECK;
    let dir = tempfile::tempdir().unwrap();
    let (db, _) = Db::open(&dir.path().join("vigil.db"));
    let n = TRANSITIONS_KEPT_PER_CHECK as u64 + 250;
    for i in 0..n {
        for check in ["flaps", "calm"] {
            if check == "calm" && i >= 10 {
                continue;
            }
            db.record_transition(&Transition {
                check: check.into(),
                from: Status::Ok,
                to: Status::Crit,
                at: i,
                detail: format!("#{i}"),
            })
            .unwrap();
        }
    }
    let rows = db.transitions(Some("flaps"), u32::MAX).unwrap();
    assert_eq!(rows.len() as i64, TRANSITIONS_KEPT_PER_CHECK);
    assert_eq!(rows[0].detail, format!("#{}", n - 1), "the newest stay");
    assert_eq!(rows.last().unwrap().detail, "#250");
    assert_eq!(db.transitions(Some("calm"), u32::MAX).unwrap().len(), 10);
}
