//! The update journal on real files: runs and events, reopening, and a bad file moved aside.

use super::*;

fn open(dir: &Path) -> Journal {
    let (j, moved) = Journal::open(dir).unwrap();
    assert_eq!(moved, None);
    j
}

#[test]
fn runs_and_events_are_kept_in_order() {
    let dir = tempfile::tempdir().unwrap();
    let mut j = open(dir.path());
    let pragma = |name: &str| -> String {
        j.conn
            .query_row(&format!("PRAGMA {name}"), [], |r| {
                r.get::<_, rusqlite::types::Value>(0)
            })
            .map(|v| format!("{v:?}"))
            .unwrap()
    };
    assert_eq!(pragma("journal_mode"), "Text(\"wal\")");
    assert_eq!(pragma("synchronous"), "Integer(2)", "FULL");
    assert_eq!(j.unfinished().unwrap(), None);
    assert!(j.runs(10).unwrap().is_empty());
    let first = j
        .begin(
            "apply",
            "/media/usb/demo-1.4.0.vigil",
            "demo",
            "1.4.0",
            Some("1.3.0"),
            "verified",
            100,
            "{}",
        )
        .unwrap();
    assert_eq!(first, 1);
    j.record(first, "staged", "staged", "2 files", 200, false)
        .unwrap();
    let run = j.unfinished().unwrap().unwrap();
    assert_eq!(
        (
            run.id,
            run.state.as_str(),
            run.ended_us,
            run.previous.as_deref()
        ),
        (1, "staged", None, Some("1.3.0"))
    );
    j.record(first, "committed", "gate", "all ok for 60s", 300, true)
        .unwrap();
    assert_eq!(j.unfinished().unwrap(), None);
    let second = j
        .begin(
            "rollback",
            "",
            "demo",
            "1.3.0",
            None,
            "rolling-back",
            400,
            "",
        )
        .unwrap();
    assert_eq!(second, 2);
    j.set_data(second, r#"{"tags":{}}"#).unwrap();
    j.set_detail(second, "asked by root").unwrap();
    assert!(j.record(99, "x", "x", "", 1, false).is_err());
    assert!(j.set_data(99, "").is_err());

    let runs = j.runs(10).unwrap();
    assert_eq!(runs.iter().map(|r| r.id).collect::<Vec<_>>(), [2, 1]);
    assert_eq!(j.runs(1).unwrap().len(), 1);
    assert_eq!(runs[1].ended_us, Some(300));
    assert_eq!(runs[1].started_us, 100);
    assert_eq!(runs[0].data, r#"{"tags":{}}"#);
    assert_eq!(runs[0].detail, "asked by root");
    assert_eq!(runs[0].kind, "rollback");
    assert_eq!(j.unfinished().unwrap().unwrap().id, 2);
    let events = j.events(first).unwrap();
    let seen: Vec<_> = events
        .iter()
        .map(|e| (e.seq, e.state.as_str(), e.what.as_str(), e.at_us))
        .collect();
    assert_eq!(
        seen,
        [
            (1, "verified", "begin", 100),
            (2, "staged", "staged", 200),
            (3, "committed", "gate", 300)
        ]
    );
    assert_eq!(j.run(1).unwrap().unwrap().state, "committed");
    assert_eq!(j.run(3).unwrap(), None);
}

#[test]
fn a_reopened_journal_keeps_everything() {
    let dir = tempfile::tempdir().unwrap();
    let mut j = open(dir.path());
    let id = j
        .begin(
            "apply",
            "b.vigil",
            "demo",
            "1.4.0",
            None,
            "verified",
            1,
            "{\"plan\":[]}",
        )
        .unwrap();
    j.record(id, "applying", "step 1", "docker-load", 2, false)
        .unwrap();
    let (runs, events) = (j.runs(10).unwrap(), j.events(id).unwrap());
    drop(j);
    let mut j = open(dir.path());
    assert_eq!(j.runs(10).unwrap(), runs);
    assert_eq!(j.events(id).unwrap(), events);
    assert_eq!(j.unfinished().unwrap().unwrap().state, "applying");
    assert_eq!(
        j.begin("apply", "c.vigil", "demo", "1.5.0", None, "verified", 3, "")
            .unwrap(),
        2
    );
}

#[test]
fn a_file_that_is_not_sqlite_is_moved_aside() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(JOURNAL_FILE);
    std::fs::write(&path, b"this is no database, and never was one").unwrap();
    std::fs::write(dir.path().join("updates.db-wal"), b"junk").unwrap();
    let (mut j, moved) = Journal::open(dir.path()).unwrap();
    let why = moved.expect("moved aside");
    assert!(
        why.contains("not a database") && why.contains(".corrupt-"),
        "{why}"
    );
    let aside: Vec<String> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with("updates.db.corrupt-"))
        .collect();
    assert_eq!(aside.len(), 2, "the file and its -wal: {aside:?}");
    let main = aside.iter().find(|n| !n.ends_with("-wal")).unwrap();
    // Stamped like vigil.db's: the time it was moved, `2026-12-02T002626Z`.
    let stamp = main.trim_start_matches("updates.db.corrupt-");
    let with_colons = format!("{}:{}:{}", &stamp[..13], &stamp[13..15], &stamp[15..]);
    assert!(humantime::parse_rfc3339(&with_colons).is_ok(), "{main}");
    assert_eq!(
        std::fs::read(dir.path().join(main)).unwrap(),
        b"this is no database, and never was one"
    );
    assert_eq!(
        j.begin("apply", "b", "demo", "1.0.0", None, "verified", 1, "")
            .unwrap(),
        1
    );
    drop(j);
    // A journal of a newer vigild is moved aside too.
    let conn = Connection::open(&path).unwrap();
    conn.pragma_update(None, "user_version", SCHEMA_VERSION + 1)
        .unwrap();
    drop(conn);
    let (j, moved) = Journal::open(dir.path()).unwrap();
    assert!(moved.unwrap().contains("newer vigild"));
    assert!(j.runs(5).unwrap().is_empty());
}
