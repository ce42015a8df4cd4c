//! The update journal: `STATE/updates.db`, a SQLite file of its own (WAL,
//! `synchronous=FULL`), one row per run and one per transition of it. Every write is one
//! transaction committed durably before it returns, so a transition is on disk before its
//! effect. Written synchronously: callers run it on a blocking thread. A file that is
//! corrupt, not SQLite or from a newer vigild is moved aside and a fresh one started.

use std::path::{Path, PathBuf};

use rusqlite::{params, Connection, OptionalExtension, Row};

use crate::store::open::{open_or_replace, Schema};

/// The journal's file name in the state directory.
pub const JOURNAL_FILE: &str = "updates.db";

/// The journal's schema: every commit on disk before it returns (`synchronous=FULL`).
const SCHEMA: Schema = Schema {
    migrations: MIGRATIONS,
    synchronous: "FULL",
};

/// Forward migrations; the schema version is the number applied (`PRAGMA user_version`).
const MIGRATIONS: &[&str] = &[
    // 1: runs and their events.
    "CREATE TABLE runs (
        id         INTEGER PRIMARY KEY,
        kind       TEXT NOT NULL,
        bundle     TEXT NOT NULL,
        name       TEXT NOT NULL,
        version    TEXT NOT NULL,
        previous   TEXT,
        state      TEXT NOT NULL,
        started_us INTEGER NOT NULL,
        ended_us   INTEGER,
        detail     TEXT NOT NULL DEFAULT '',
        data       TEXT NOT NULL DEFAULT ''
     );
     CREATE INDEX runs_unfinished ON runs (ended_us, id);
     CREATE TABLE events (
        run    INTEGER NOT NULL REFERENCES runs(id),
        seq    INTEGER NOT NULL,
        at_us  INTEGER NOT NULL,
        state  TEXT NOT NULL,
        what   TEXT NOT NULL,
        detail TEXT NOT NULL,
        PRIMARY KEY (run, seq)
     );",
];

/// The schema version this build writes.
pub const SCHEMA_VERSION: i64 = MIGRATIONS.len() as i64;

/// One update run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunRow {
    pub id: u64,
    /// `apply` or `rollback`.
    pub kind: String,
    /// The bundle file it came from.
    pub bundle: String,
    pub name: String,
    pub version: String,
    /// The release current before it.
    pub previous: Option<String>,
    pub state: String,
    pub started_us: i64,
    pub ended_us: Option<i64>,
    pub detail: String,
    /// Opaque JSON the daemon keeps (its plan, the image tags before).
    pub data: String,
}

/// One transition of a run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventRow {
    pub run: u64,
    /// 1, 2, … within the run.
    pub seq: u64,
    pub at_us: i64,
    pub state: String,
    pub what: String,
    pub detail: String,
}

/// The open journal.
pub struct Journal {
    conn: Connection,
    path: PathBuf,
}

fn db_error(e: rusqlite::Error) -> String {
    format!("update journal: {e}")
}

const RUN_COLUMNS: &str =
    "id, kind, bundle, name, version, previous, state, started_us, ended_us, detail, data";

fn run_row(r: &Row<'_>) -> rusqlite::Result<RunRow> {
    Ok(RunRow {
        id: r.get::<_, i64>(0)? as u64,
        kind: r.get(1)?,
        bundle: r.get(2)?,
        name: r.get(3)?,
        version: r.get(4)?,
        previous: r.get(5)?,
        state: r.get(6)?,
        started_us: r.get(7)?,
        ended_us: r.get(8)?,
        detail: r.get(9)?,
        data: r.get(10)?,
    })
}

impl Journal {
    /// Opens (or makes) `STATE/updates.db`. A file that is corrupt, not SQLite or from a
    /// newer vigild is moved aside (`updates.db.corrupt-<time>`, as vigil.db) and a fresh one made;
    /// the second value then says why, for the log. Any other failure (locked, no
    /// permission) leaves the file alone and is an `Err`.
    pub fn open(state_dir: &Path) -> Result<(Journal, Option<String>), String> {
        let path = state_dir.join(JOURNAL_FILE);
        let (conn, moved) = open_or_replace(&path, &SCHEMA, "the update journal")?;
        let moved = moved.map(|(to, reason)| {
            format!(
                "{} was unusable ({reason}); moved aside to {}, a fresh journal started",
                path.display(),
                to.display()
            )
        });
        Ok((Journal { conn, path }, moved))
    }

    /// `STATE/updates.db`.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// A new run (id = the largest so far + 1, from 1) in `state`, with its first event
    /// (`begin`), in one transaction.
    #[allow(clippy::too_many_arguments)]
    pub fn begin(
        &mut self,
        kind: &str,
        bundle: &str,
        name: &str,
        version: &str,
        previous: Option<&str>,
        state: &str,
        at_us: i64,
        data: &str,
    ) -> Result<u64, String> {
        let tx = self.conn.transaction().map_err(db_error)?;
        let id: i64 = tx
            .query_row("SELECT COALESCE(MAX(id), 0) + 1 FROM runs", [], |r| {
                r.get(0)
            })
            .map_err(db_error)?;
        tx.execute(
            "INSERT INTO runs (id, kind, bundle, name, version, previous, state, started_us, data)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
            params![id, kind, bundle, name, version, previous, state, at_us, data],
        )
        .map_err(db_error)?;
        let detail = format!("{kind} {name} {version} from {bundle}");
        tx.execute(
            "INSERT INTO events (run, seq, at_us, state, what, detail)
             VALUES (?1, 1, ?2, ?3, 'begin', ?4)",
            params![id, at_us, state, detail],
        )
        .map_err(db_error)?;
        tx.commit().map_err(db_error)?;
        Ok(id as u64)
    }

    /// One event of a run; sets the run's state (and `ended_us` when `ended`), in one
    /// transaction, committed durably before it returns.
    pub fn record(
        &mut self,
        run: u64,
        state: &str,
        what: &str,
        detail: &str,
        at_us: i64,
        ended: bool,
    ) -> Result<(), String> {
        let tx = self.conn.transaction().map_err(db_error)?;
        let changed = tx
            .execute(
                "UPDATE runs SET state = ?2,
                    ended_us = CASE WHEN ?3 THEN ?4 ELSE ended_us END
                 WHERE id = ?1",
                params![run as i64, state, ended, at_us],
            )
            .map_err(db_error)?;
        if changed == 0 {
            return Err(format!("update journal: no run {run}"));
        }
        tx.execute(
            "INSERT INTO events (run, seq, at_us, state, what, detail)
             SELECT ?1, COALESCE(MAX(seq), 0) + 1, ?2, ?3, ?4, ?5 FROM events WHERE run = ?1",
            params![run as i64, at_us, state, what, detail],
        )
        .map_err(db_error)?;
        tx.commit().map_err(db_error)
    }

    fn set(&mut self, run: u64, column: &str, value: &str) -> Result<(), String> {
        let sql = format!("UPDATE runs SET {column} = ?2 WHERE id = ?1");
        match self.conn.execute(&sql, params![run as i64, value]) {
            Ok(0) => Err(format!("update journal: no run {run}")),
            Ok(_) => Ok(()),
            Err(e) => Err(db_error(e)),
        }
    }

    /// Replaces a run's opaque data.
    pub fn set_data(&mut self, run: u64, data: &str) -> Result<(), String> {
        self.set(run, "data", data)
    }

    /// Replaces a run's detail (its one-line summary).
    pub fn set_detail(&mut self, run: u64, detail: &str) -> Result<(), String> {
        self.set(run, "detail", detail)
    }

    /// The newest run that has not ended, if any.
    pub fn unfinished(&self) -> Result<Option<RunRow>, String> {
        let sql = format!(
            "SELECT {RUN_COLUMNS} FROM runs WHERE ended_us IS NULL ORDER BY id DESC LIMIT 1"
        );
        self.conn
            .query_row(&sql, [], run_row)
            .optional()
            .map_err(db_error)
    }

    /// The run `id`, if there is one.
    pub fn run(&self, id: u64) -> Result<Option<RunRow>, String> {
        let sql = format!("SELECT {RUN_COLUMNS} FROM runs WHERE id = ?1");
        self.conn
            .query_row(&sql, params![id as i64], run_row)
            .optional()
            .map_err(db_error)
    }

    /// The newest `limit` runs, newest first.
    pub fn runs(&self, limit: usize) -> Result<Vec<RunRow>, String> {
        let sql = format!("SELECT {RUN_COLUMNS} FROM runs ORDER BY id DESC LIMIT ?1");
        let mut stmt = self.conn.prepare(&sql).map_err(db_error)?;
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let rows = stmt.query_map(params![limit], run_row).map_err(db_error)?;
        rows.collect::<rusqlite::Result<_>>().map_err(db_error)
    }

    /// Every event of a run, in order.
    pub fn events(&self, run: u64) -> Result<Vec<EventRow>, String> {
        let mut stmt = self
            .conn
            .prepare(
                "SELECT run, seq, at_us, state, what, detail FROM events
                 WHERE run = ?1 ORDER BY seq",
            )
            .map_err(db_error)?;
        let rows = stmt
            .query_map(params![run as i64], |r| {
                Ok(EventRow {
                    run: r.get::<_, i64>(0)? as u64,
                    seq: r.get::<_, i64>(1)? as u64,
                    at_us: r.get(2)?,
                    state: r.get(3)?,
                    what: r.get(4)?,
                    detail: r.get(5)?,
                })
            })
            .map_err(db_error)?;
        rows.collect::<rusqlite::Result<_>>().map_err(db_error)
    }
}

#[cfg(test)]
mod tests;
