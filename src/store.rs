//! The store: SQLite at `STATE_DIR/vigil.db` in WAL mode, on its own thread.
//!
//! Writes are sent and not awaited, so a slow or broken disk never stalls the evaluation
//! loop or the heartbeat. A database that cannot be opened, is corrupt, or was written by
//! a newer vigild is moved aside (renamed with a timestamp, with its -wal and -shm files)
//! and a fresh one started; if even that fails, the store runs in memory and says so.

use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::time::SystemTime;

use rusqlite::{params, Connection, ErrorCode, OptionalExtension};
use tokio::sync::oneshot;
use tracing::{error, info, warn};

use crate::health::{Micros, Status, Transition};

/// File name of the database inside the state directory.
pub const DB_FILE: &str = "vigil.db";

/// Forward migrations; the schema version is the number applied (`PRAGMA user_version`).
const MIGRATIONS: &[&str] = &[
    // 1: check transitions and small settings that survive restarts.
    "CREATE TABLE transitions (
        id      INTEGER PRIMARY KEY,
        check_name TEXT NOT NULL,
        from_status TEXT NOT NULL,
        to_status TEXT NOT NULL,
        at_us   INTEGER NOT NULL,
        detail  TEXT NOT NULL
     );
     CREATE INDEX transitions_check_at ON transitions (check_name, at_us);
     CREATE TABLE settings (
        key   TEXT PRIMARY KEY,
        value TEXT NOT NULL
     );",
    // 2: incidents of rules and the actions taken (or that would have been) for them.
    "CREATE TABLE incidents (
        id          INTEGER PRIMARY KEY,
        rule        TEXT NOT NULL,
        check_name  TEXT NOT NULL,
        opened_us   INTEGER NOT NULL,
        state       TEXT NOT NULL,
        closed_us   INTEGER
     );
     CREATE TABLE actions (
        id          INTEGER PRIMARY KEY,
        incident    INTEGER NOT NULL REFERENCES incidents(id),
        step        INTEGER NOT NULL,
        action      TEXT NOT NULL,
        started_us  INTEGER NOT NULL,
        result      TEXT
     );
     CREATE INDEX actions_incident ON actions (incident);",
];

/// The schema version this build writes.
pub const SCHEMA_VERSION: i64 = MIGRATIONS.len() as i64;

/// A stored transition.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct TransitionRow {
    pub id: i64,
    pub check: String,
    pub from: Status,
    pub to: Status,
    pub at: Micros,
    pub detail: String,
}

/// A stored incident.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct IncidentRow {
    pub id: u64,
    pub rule: String,
    pub check: String,
    pub opened: Micros,
    pub state: String,
    pub closed: Option<Micros>,
    pub actions: Vec<ActionRow>,
}

/// A stored action of an incident.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct ActionRow {
    pub step: usize,
    pub action: String,
    pub started: Micros,
    /// None while it runs (or if vigild died during it).
    pub result: Option<String>,
}

/// How the database was opened.
#[derive(Debug, Clone, PartialEq)]
pub enum Opened {
    /// The file was fine (or new).
    Fresh,
    /// The old file was bad and now lives at this path.
    MovedAside { to: PathBuf, reason: String },
    /// Nothing on disk could be used; state lives in memory until restart.
    InMemory { reason: String },
}

/// A database connection with vigil's schema.
pub struct Db {
    conn: Connection,
    path: PathBuf,
    /// Device and inode of the file when opened, to notice it being replaced or removed.
    identity: Option<(u64, u64)>,
}

fn identity(path: &Path) -> Option<(u64, u64)> {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata(path).ok().map(|m| (m.dev(), m.ino()))
}

fn is_corruption(e: &rusqlite::Error) -> bool {
    matches!(
        e.sqlite_error_code(),
        Some(ErrorCode::DatabaseCorrupt) | Some(ErrorCode::NotADatabase)
    )
}

/// Why a database could not be used.
struct OpenError {
    /// The file itself is bad (corrupt, not SQLite, newer schema): move it aside. Otherwise
    /// (locked, no permission, I/O error) the file may be fine and is left alone.
    bad_file: bool,
    reason: String,
}

impl From<rusqlite::Error> for OpenError {
    fn from(e: rusqlite::Error) -> Self {
        OpenError {
            bad_file: is_corruption(&e),
            reason: e.to_string(),
        }
    }
}

fn bad(reason: String) -> OpenError {
    OpenError {
        bad_file: true,
        reason,
    }
}

fn prepare(conn: &mut Connection) -> Result<(), OpenError> {
    conn.busy_timeout(std::time::Duration::from_secs(5))?;
    let mode: String = conn.query_row("PRAGMA journal_mode=WAL", [], |r| r.get(0))?;
    if mode != "wal" && mode != "memory" {
        return Err(OpenError {
            bad_file: false,
            reason: format!("cannot switch to WAL (journal_mode is {mode})"),
        });
    }
    conn.execute_batch("PRAGMA synchronous=NORMAL; PRAGMA foreign_keys=ON;")?;
    let check: String = conn.query_row("PRAGMA quick_check", [], |r| r.get(0))?;
    if check != "ok" {
        return Err(bad(format!("integrity check failed: {check}")));
    }
    let version: i64 = conn.query_row("PRAGMA user_version", [], |r| r.get(0))?;
    if version > SCHEMA_VERSION {
        return Err(bad(format!(
            "schema version {version} was written by a newer vigild (this one knows {SCHEMA_VERSION})"
        )));
    }
    for (i, sql) in MIGRATIONS.iter().enumerate().skip(version as usize) {
        let tx = conn.transaction()?;
        tx.execute_batch(sql).map_err(|e| OpenError {
            bad_file: false,
            reason: format!("migration {}: {e}", i + 1),
        })?;
        tx.pragma_update(None, "user_version", (i + 1) as i64)?;
        tx.commit()?;
    }
    Ok(())
}

fn try_open(path: &Path) -> Result<Connection, OpenError> {
    let mut conn = Connection::open(path)?;
    prepare(&mut conn)?;
    Ok(conn)
}

/// Renames the database and its WAL/SHM files out of the way; returns the new path.
fn move_aside(path: &Path) -> std::io::Result<PathBuf> {
    let stamp = humantime::format_rfc3339_seconds(SystemTime::now()).to_string();
    let stamp = stamp.replace(':', "");
    let mut target = PathBuf::from(format!("{}.corrupt-{stamp}", path.display()));
    let mut n = 1;
    while target.exists() {
        target = PathBuf::from(format!("{}.corrupt-{stamp}.{n}", path.display()));
        n += 1;
    }
    std::fs::rename(path, &target)?;
    for suffix in ["-wal", "-shm"] {
        let side = PathBuf::from(format!("{}{suffix}", path.display()));
        if side.exists() {
            let _ = std::fs::rename(&side, format!("{}{suffix}", target.display()));
        }
    }
    Ok(target)
}

impl Db {
    /// Opens (or creates) the database, recovering from a bad file as described above.
    pub fn open(path: &Path) -> (Db, Opened) {
        if let Some(dir) = path.parent() {
            let _ = std::fs::create_dir_all(dir);
        }
        // Taken before opening, so a file swapped in right after is noticed, not adopted.
        let before = identity(path);
        match try_open(path) {
            Ok(conn) => (
                Db {
                    conn,
                    path: path.to_path_buf(),
                    identity: before.or_else(|| identity(path)),
                },
                Opened::Fresh,
            ),
            Err(OpenError {
                bad_file: false,
                reason,
            }) => Db::in_memory(format!(
                "cannot open {}: {reason}; the file is left as it is",
                path.display()
            )),
            Err(OpenError {
                bad_file: true,
                reason,
            }) => {
                if path.exists() {
                    match move_aside(path) {
                        Ok(to) => {
                            if let Ok(conn) = try_open(path) {
                                return (
                                    Db {
                                        conn,
                                        path: path.to_path_buf(),
                                        identity: identity(path),
                                    },
                                    Opened::MovedAside { to, reason },
                                );
                            }
                        }
                        Err(e) => {
                            return Db::in_memory(format!("{reason}; moving it aside failed: {e}"));
                        }
                    }
                }
                Db::in_memory(format!("cannot open {}: {reason}", path.display()))
            }
        }
    }

    fn in_memory(reason: String) -> (Db, Opened) {
        let mut conn = Connection::open_in_memory().expect("in-memory SQLite");
        if prepare(&mut conn).is_err() {
            panic!("SQLite cannot create vigil's schema even in memory");
        }
        (
            Db {
                conn,
                path: PathBuf::from(":memory:"),
                identity: None,
            },
            Opened::InMemory { reason },
        )
    }

    /// False when the file on disk is no longer the one this connection has open (deleted
    /// or replaced under vigild); writes would then land in an unlinked file.
    pub fn still_on_disk(&self) -> bool {
        match self.identity {
            Some(id) => identity(&self.path) == Some(id),
            None => true,
        }
    }

    /// The file behind this connection (`:memory:` when in memory).
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The schema version in the file.
    pub fn schema_version(&self) -> rusqlite::Result<i64> {
        self.conn.query_row("PRAGMA user_version", [], |r| r.get(0))
    }

    /// Records one transition.
    pub fn record_transition(&self, t: &Transition) -> rusqlite::Result<()> {
        self.conn
            .prepare_cached(
                "INSERT INTO transitions (check_name, from_status, to_status, at_us, detail)
                 VALUES (?1, ?2, ?3, ?4, ?5)",
            )?
            .execute(params![
                t.check,
                t.from.as_str(),
                t.to.as_str(),
                t.at as i64,
                t.detail
            ])?;
        Ok(())
    }

    /// The newest `limit` transitions, newest first; of one check when `check` is set.
    pub fn transitions(
        &self,
        check: Option<&str>,
        limit: u32,
    ) -> rusqlite::Result<Vec<TransitionRow>> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT id, check_name, from_status, to_status, at_us, detail FROM transitions
             WHERE ?1 IS NULL OR check_name = ?1 ORDER BY id DESC LIMIT ?2",
        )?;
        let rows = stmt.query_map(params![check, limit], |r| {
            let status = |i: usize| -> rusqlite::Result<Status> {
                let s: String = r.get(i)?;
                Ok(Status::parse(&s).unwrap_or(Status::Unknown))
            };
            Ok(TransitionRow {
                id: r.get(0)?,
                check: r.get(1)?,
                from: status(2)?,
                to: status(3)?,
                at: r.get::<_, i64>(4)? as u64,
                detail: r.get(5)?,
            })
        })?;
        rows.collect()
    }

    /// The id the next incident should get (ids stay unique across restarts).
    pub fn next_incident_id(&self) -> rusqlite::Result<u64> {
        let max: Option<i64> = self
            .conn
            .query_row("SELECT max(id) FROM incidents", [], |r| r.get(0))?;
        Ok(max.unwrap_or(0) as u64 + 1)
    }

    /// Closes what a previous run left open: incidents become `interrupted` (the new run
    /// opens its own if the condition still holds) and actions without a result say so.
    pub fn close_interrupted(&self, at: Micros) -> rusqlite::Result<usize> {
        self.conn.execute(
            "UPDATE actions SET result = 'interrupted: vigild stopped before it finished' WHERE result IS NULL",
            [],
        )?;
        self.conn.execute(
            "UPDATE incidents SET state = 'interrupted', closed_us = ?1 WHERE state NOT IN ('resolved', 'closed', 'interrupted')",
            [at as i64],
        )
    }

    /// Start times of actions `action` since `since` (the reboot limit survives reboots).
    pub fn action_times(&self, action: &str, since: Micros) -> rusqlite::Result<Vec<Micros>> {
        let mut stmt = self
            .conn
            .prepare_cached("SELECT started_us FROM actions WHERE action = ?1 AND started_us >= ?2 ORDER BY started_us")?;
        let rows = stmt.query_map(params![action, since as i64], |r| r.get::<_, i64>(0))?;
        rows.map(|r| r.map(|v| v as u64)).collect()
    }

    /// Records a new incident.
    pub fn incident_opened(
        &self,
        id: u64,
        rule: &str,
        check: &str,
        at: Micros,
    ) -> rusqlite::Result<()> {
        self.conn.execute(
            "INSERT INTO incidents (id, rule, check_name, opened_us, state) VALUES (?1, ?2, ?3, ?4, 'open')",
            params![id as i64, rule, check, at as i64],
        )?;
        Ok(())
    }

    /// Moves an incident to `state` (`acting`, `exhausted`, `resolved`).
    pub fn incident_state(&self, id: u64, state: &str, at: Micros) -> rusqlite::Result<()> {
        let closed = matches!(state, "resolved" | "closed").then_some(at as i64);
        self.conn.execute(
            "UPDATE incidents SET state = ?2, closed_us = coalesce(?3, closed_us) WHERE id = ?1",
            params![id as i64, state, closed],
        )?;
        Ok(())
    }

    /// Records an action before it runs; returns its row id for the result.
    pub fn action_started(
        &self,
        incident: u64,
        step: usize,
        action: &str,
        at: Micros,
    ) -> rusqlite::Result<i64> {
        self.conn.execute(
            "INSERT INTO actions (incident, step, action, started_us) VALUES (?1, ?2, ?3, ?4)",
            params![incident as i64, step as i64, action, at as i64],
        )?;
        Ok(self.conn.last_insert_rowid())
    }

    /// Records an action's result.
    pub fn action_finished(&self, id: i64, result: &str) -> rusqlite::Result<()> {
        self.conn.execute(
            "UPDATE actions SET result = ?2 WHERE id = ?1",
            params![id, result],
        )?;
        Ok(())
    }

    /// Records the result of the action started at `started` as step `step` of `incident`.
    pub fn action_finished_at(
        &self,
        incident: u64,
        step: usize,
        started: Micros,
        result: &str,
    ) -> rusqlite::Result<()> {
        self.conn.execute(
            "UPDATE actions SET result = ?4 WHERE incident = ?1 AND step = ?2 AND started_us = ?3",
            params![incident as i64, step as i64, started as i64, result],
        )?;
        Ok(())
    }

    /// Incidents, newest first, with their actions; only unresolved ones unless `all`.
    pub fn incidents(&self, limit: u32, all: bool) -> rusqlite::Result<Vec<IncidentRow>> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT id, rule, check_name, opened_us, state, closed_us FROM incidents
             WHERE ?2 OR state NOT IN ('resolved', 'closed', 'interrupted') ORDER BY id DESC LIMIT ?1",
        )?;
        let mut rows: Vec<IncidentRow> = stmt
            .query_map(params![limit, all], |r| {
                Ok(IncidentRow {
                    id: r.get::<_, i64>(0)? as u64,
                    rule: r.get(1)?,
                    check: r.get(2)?,
                    opened: r.get::<_, i64>(3)? as u64,
                    state: r.get(4)?,
                    closed: r.get::<_, Option<i64>>(5)?.map(|v| v as u64),
                    actions: Vec::new(),
                })
            })?
            .collect::<Result<_, _>>()?;
        let mut astmt = self.conn.prepare_cached(
            "SELECT step, action, started_us, result FROM actions WHERE incident = ?1 ORDER BY id",
        )?;
        for row in &mut rows {
            row.actions = astmt
                .query_map([row.id as i64], |r| {
                    Ok(ActionRow {
                        step: r.get::<_, i64>(0)? as usize,
                        action: r.get(1)?,
                        started: r.get::<_, i64>(2)? as u64,
                        result: r.get(3)?,
                    })
                })?
                .collect::<Result<_, _>>()?;
        }
        Ok(rows)
    }

    /// A stored setting.
    pub fn setting(&self, key: &str) -> rusqlite::Result<Option<String>> {
        self.conn
            .query_row("SELECT value FROM settings WHERE key = ?1", [key], |r| {
                r.get(0)
            })
            .optional()
    }

    /// Stores a setting.
    pub fn set_setting(&self, key: &str, value: &str) -> rusqlite::Result<()> {
        self.conn.execute(
            "INSERT INTO settings (key, value) VALUES (?1, ?2)
             ON CONFLICT(key) DO UPDATE SET value = excluded.value",
            [key, value],
        )?;
        Ok(())
    }
}

type Job = Box<dyn FnOnce(&mut Db) + Send>;

enum Cmd {
    Transition(Transition),
    Run(Job),
}

/// A handle to the store thread. Cheap to clone.
#[derive(Clone)]
pub struct Store {
    tx: mpsc::Sender<Cmd>,
}

fn log_opened(opened: &Opened, path: &Path) {
    match opened {
        Opened::Fresh => info!(vigil_event = "store", "store {} opened", path.display()),
        Opened::MovedAside { to, reason } => error!(
            vigil_event = "store",
            "database {} was unusable ({reason}); moved it to {} and started a fresh one — \
             keep the old file for analysis",
            path.display(),
            to.display()
        ),
        Opened::InMemory { reason } => error!(
            vigil_event = "store",
            "{reason}; keeping state in memory until restart — check the state directory's \
             permissions and free space"
        ),
    }
}

impl Store {
    /// Opens the database at `path` on a new thread.
    pub fn spawn(path: PathBuf) -> Store {
        let (tx, rx) = mpsc::channel::<Cmd>();
        std::thread::Builder::new()
            .name("vigil-store".into())
            .spawn(move || {
                let (mut db, opened) = Db::open(&path);
                log_opened(&opened, &path);
                for cmd in rx {
                    match cmd {
                        Cmd::Transition(t) => {
                            if !db.still_on_disk() {
                                warn!(
                                    vigil_event = "store",
                                    "database {} was removed or replaced while vigild ran; reopening it",
                                    path.display()
                                );
                                drop(db);
                                let (fresh, opened) = Db::open(&path);
                                log_opened(&opened, &path);
                                db = fresh;
                            }
                            if let Err(e) = db.record_transition(&t) {
                                if is_corruption(&e) {
                                    // The file went bad under us: move it aside and retry once.
                                    drop(db);
                                    let (fresh, opened) = Db::open(&path);
                                    log_opened(&opened, &path);
                                    db = fresh;
                                    if let Err(e) = db.record_transition(&t) {
                                        warn!(vigil_event = "store", "cannot record transition of {}: {e}", t.check);
                                    }
                                } else {
                                    warn!(vigil_event = "store", "cannot record transition of {}: {e}", t.check);
                                }
                            }
                        }
                        Cmd::Run(job) => job(&mut db),
                    }
                }
            })
            .expect("spawn store thread");
        Store { tx }
    }

    /// Records a transition; does not wait.
    pub fn record_transition(&self, t: Transition) {
        let _ = self.tx.send(Cmd::Transition(t));
    }

    /// Runs `f` on the store thread; does not wait. Errors are logged there.
    pub fn submit(
        &self,
        what: &'static str,
        f: impl FnOnce(&mut Db) -> rusqlite::Result<()> + Send + 'static,
    ) {
        let job: Job = Box::new(move |db| {
            if let Err(e) = f(db) {
                warn!(vigil_event = "store", "cannot record {what}: {e}");
            }
        });
        let _ = self.tx.send(Cmd::Run(job));
    }

    /// Runs `f` on the store thread and returns its result (queries, and a barrier that
    /// waits for every earlier write).
    pub async fn call<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut Db) -> T + Send + 'static,
    ) -> Option<T> {
        let (reply, rx) = oneshot::channel();
        let job: Job = Box::new(move |db| {
            let _ = reply.send(f(db));
        });
        self.tx.send(Cmd::Run(job)).ok()?;
        rx.await.ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
            .action_started(1, 0, "restart container:ollama", 11)
            .unwrap();
        let open = db.incidents(10, false).unwrap();
        assert_eq!(open[0].actions[0].result, None, "recorded before it runs");
        db.action_finished(a, "restarted").unwrap();
        db.incident_state(1, "resolved", 20).unwrap();
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
}
