//! Opening the database: the schema and its forward migrations, and what happens to a
//! file that is corrupt, not SQLite, or from a newer vigild (moved aside with its -wal and
//! -shm files).

use std::path::{Path, PathBuf};
use std::time::SystemTime;

use rusqlite::{Connection, ErrorCode};

/// File name of the database inside the state directory.
pub const DB_FILE: &str = "vigil.db";

/// Forward migrations; the schema version is the number applied (`PRAGMA user_version`).
pub(super) const MIGRATIONS: &[&str] = &[
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
    // 3: whether an action was only observed (mode = "observe"), so that observed reboots
    // do not count against the real reboot limit.
    "ALTER TABLE actions ADD COLUMN observed INTEGER NOT NULL DEFAULT 0;
     UPDATE actions SET observed = 1 WHERE result LIKE 'observed:%';",
    // 4: transitions are kept per check up to TRANSITIONS_KEPT_PER_CHECK (a flapping check
    // must not grow the file without end); the index finds a check's oldest ones.
    "CREATE INDEX transitions_check_id ON transitions (check_name, id);",
];

/// The schema version this build writes.
pub const SCHEMA_VERSION: i64 = MIGRATIONS.len() as i64;

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

pub(super) fn identity(path: &Path) -> Option<(u64, u64)> {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata(path).ok().map(|m| (m.dev(), m.ino()))
}

pub(super) fn is_corruption(e: &rusqlite::Error) -> bool {
    matches!(
        e.sqlite_error_code(),
        Some(ErrorCode::DatabaseCorrupt) | Some(ErrorCode::NotADatabase)
    )
}

/// Why a database could not be used.
pub struct OpenError {
    /// The file itself is bad (corrupt, not SQLite, newer schema): move it aside. Otherwise
    /// (locked, no permission, I/O error) the file may be fine and is left alone.
    pub bad_file: bool,
    pub reason: String,
}

/// A SQLite file's schema and how durably it is written: vigil.db, the push queue and the
/// update journal all open through [`open_schema`].
pub struct Schema {
    /// Forward migrations; the version is the number applied (`PRAGMA user_version`).
    pub migrations: &'static [&'static str],
    /// `PRAGMA synchronous`: `NORMAL`, or `FULL` where every commit must be on disk.
    pub synchronous: &'static str,
}

/// vigil.db's schema.
pub(super) const STORE: Schema = Schema {
    migrations: MIGRATIONS,
    synchronous: "NORMAL",
};

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

/// Sets up an open connection: WAL, `schema.synchronous`, an integrity check, and the
/// migrations not yet applied; a newer schema than this build knows is a bad file.
pub fn prepare(conn: &mut Connection, schema: &Schema) -> Result<(), OpenError> {
    conn.busy_timeout(std::time::Duration::from_secs(5))?;
    let mode: String = conn.query_row("PRAGMA journal_mode=WAL", [], |r| r.get(0))?;
    if mode != "wal" && mode != "memory" {
        return Err(OpenError {
            bad_file: false,
            reason: format!("cannot switch to WAL (journal_mode is {mode})"),
        });
    }
    conn.execute_batch(&format!(
        "PRAGMA synchronous={}; PRAGMA foreign_keys=ON;",
        schema.synchronous
    ))?;
    let check: String = conn.query_row("PRAGMA quick_check", [], |r| r.get(0))?;
    if check != "ok" {
        return Err(bad(format!("integrity check failed: {check}")));
    }
    let known = schema.migrations.len() as i64;
    let version: i64 = conn.query_row("PRAGMA user_version", [], |r| r.get(0))?;
    if version > known {
        return Err(bad(format!(
            "schema version {version} was written by a newer vigild (this one knows {known})"
        )));
    }
    for (i, sql) in schema.migrations.iter().enumerate().skip(version as usize) {
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

/// The first bytes of every SQLite 3 database file.
const SQLITE_HEADER: &[u8; 16] = b"SQLite format 3\0";

/// Refuses a file that is there but is no SQLite database before SQLite sees it: with a
/// `-wal` file beside it, SQLite would rebuild pages from that log over the garbage and
/// open it as if it were fine. An empty file is a database not written yet.
fn check_header(path: &Path) -> Result<(), OpenError> {
    use std::io::Read;
    let mut file = match std::fs::File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => {
            return Err(OpenError {
                bad_file: false,
                reason: format!("cannot read it: {e}"),
            })
        }
    };
    let mut head = Vec::with_capacity(SQLITE_HEADER.len());
    let read = (&mut file)
        .take(SQLITE_HEADER.len() as u64)
        .read_to_end(&mut head);
    match read {
        Ok(0) => Ok(()),
        Ok(_) if head == SQLITE_HEADER => Ok(()),
        Ok(_) => Err(bad(
            "file is not a database (its first bytes are not SQLite's header)".into(),
        )),
        Err(e) => Err(OpenError {
            bad_file: false,
            reason: format!("cannot read it: {e}"),
        }),
    }
}

/// Opens the file at `path` with `schema`: its header checked before SQLite reads it.
pub fn open_schema(path: &Path, schema: &Schema) -> Result<Connection, OpenError> {
    check_header(path)?;
    let mut conn = Connection::open(path)?;
    prepare(&mut conn, schema)?;
    Ok(conn)
}

/// Opens the file at `path` with `schema`; a bad file is moved aside and a fresh one
/// opened, and the second value says so (for the log). `what` names the file in errors.
pub fn open_or_replace(
    path: &Path,
    schema: &Schema,
    what: &str,
) -> Result<(Connection, Option<(PathBuf, String)>), String> {
    match open_schema(path, schema) {
        Ok(c) => Ok((c, None)),
        Err(OpenError {
            bad_file: true,
            reason,
        }) => {
            let to = move_aside(path).map_err(|e| {
                format!(
                    "{what} {} is unusable ({reason}) and cannot be moved aside: {e}",
                    path.display()
                )
            })?;
            let conn = open_schema(path, schema).map_err(|e| {
                format!(
                    "{what} {}: a fresh one failed too: {}",
                    path.display(),
                    e.reason
                )
            })?;
            Ok((conn, Some((to, reason))))
        }
        Err(e) => Err(format!(
            "cannot open {what} {}: {}",
            path.display(),
            e.reason
        )),
    }
}

/// Renames the database and its WAL/SHM files out of the way; returns the new path.
pub fn move_aside(path: &Path) -> std::io::Result<PathBuf> {
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
