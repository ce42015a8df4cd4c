//! The database connection with vigil's schema, and every query the daemon makes.

use std::path::{Path, PathBuf};

use rusqlite::{params, Connection, OptionalExtension};

use super::open::{identity, move_aside, open_schema, prepare, OpenError, Opened, STORE};
use super::rows::{ActionRow, IncidentRow, TransitionRow};
use crate::core::health::{Status, Transition};
use crate::core::incident::IncidentState;
use crate::core::time::Micros;

/// Transitions kept per check: a check that flaps for days keeps its newest this many
/// (each is a row of ~100 bytes), and the file stays bounded.
pub const TRANSITIONS_KEPT_PER_CHECK: i64 = 1000;

/// A database connection with vigil's schema.
pub struct Db {
    pub(super) conn: Connection,
    path: PathBuf,
    /// Device and inode of the file when opened, to notice it being replaced or removed.
    identity: Option<(u64, u64)>,
}

impl Db {
    /// Opens (or creates) the database, recovering from a bad file as described above.
    pub fn open(path: &Path) -> (Db, Opened) {
        if let Some(dir) = path.parent() {
            let _ = std::fs::create_dir_all(dir);
        }
        // Taken before opening, so a file swapped in right after is noticed, not adopted.
        let before = identity(path);
        match open_schema(path, &STORE) {
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
                            if let Ok(conn) = open_schema(path, &STORE) {
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
        if prepare(&mut conn, &STORE).is_err() {
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

    /// Records one transition, and lets the oldest of its check go beyond
    /// [`TRANSITIONS_KEPT_PER_CHECK`].
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
        // The oldest beyond what is kept per check go (one index seek; nothing most times).
        self.conn
            .prepare_cached(
                "DELETE FROM transitions WHERE check_name = ?1 AND id <= (
                   SELECT id FROM transitions WHERE check_name = ?1
                   ORDER BY id DESC LIMIT 1 OFFSET ?2)",
            )?
            .execute(params![t.check, TRANSITIONS_KEPT_PER_CHECK])?;
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

    /// Start times of actions `action` carried out since `since` (the reboot limit
    /// survives reboots); actions that observe mode only noted do not count.
    pub fn action_times(&self, action: &str, since: Micros) -> rusqlite::Result<Vec<Micros>> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT started_us FROM actions WHERE action = ?1 AND started_us >= ?2 AND observed = 0 ORDER BY started_us",
        )?;
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

    /// Runs `f` in one transaction: all of its writes, or none.
    pub fn in_transaction<T>(
        &self,
        f: impl FnOnce(&Db) -> rusqlite::Result<T>,
    ) -> rusqlite::Result<T> {
        let tx = self.conn.unchecked_transaction()?;
        let v = f(self)?;
        tx.commit()?;
        Ok(v)
    }

    /// Moves an incident to `state`; a state that ends it records when.
    pub fn incident_state(
        &self,
        id: u64,
        state: IncidentState,
        at: Micros,
    ) -> rusqlite::Result<()> {
        let closed = (!state.is_open()).then_some(at as i64);
        self.conn.execute(
            "UPDATE incidents SET state = ?2, closed_us = coalesce(?3, closed_us) WHERE id = ?1",
            params![id as i64, state.as_str(), closed],
        )?;
        Ok(())
    }

    /// Records an action before it runs (or, `observed`, one that observe mode only
    /// noted); returns its row id for the result.
    pub fn action_started(
        &self,
        incident: u64,
        step: usize,
        action: &str,
        at: Micros,
        observed: bool,
    ) -> rusqlite::Result<i64> {
        self.conn.execute(
            "INSERT INTO actions (incident, step, action, started_us, observed) VALUES (?1, ?2, ?3, ?4, ?5)",
            params![incident as i64, step as i64, action, at as i64, observed],
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
                    state: state_of(r.get::<_, String>(4)?)?,
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

/// An incident state read back from the store; one this vigild does not know (a file
/// edited by hand) reads as closed, so one odd row does not hide every incident.
fn state_of(s: String) -> rusqlite::Result<IncidentState> {
    Ok(IncidentState::parse(&s).unwrap_or_else(|| {
        tracing::warn!(
            vigil_event = "store",
            "incident state {s:?} in the database is unknown; shown as closed"
        );
        IncidentState::Closed
    }))
}
