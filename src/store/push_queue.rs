//! The push queue: `STATE/push.db`, a small SQLite file of its own, holding what a push
//! could not deliver yet (heartbeat state changes, sensor snapshots), oldest first, per
//! push. Its own file keeps the churn of a queue (a row in, a row out, every push) away
//! from the store's writer thread and its ordered backlog, and a bad queue file is moved
//! aside without touching the incident history. Synchronous: callers run it on a
//! blocking thread.

use std::path::{Path, PathBuf};

use rusqlite::{params, Connection, OptionalExtension};

use super::open::{open_or_replace, prepare, Schema};

/// The queue's file name in the state directory.
pub const PUSH_QUEUE_FILE: &str = "push.db";

/// Most entries kept per push; beyond it the oldest go, counted.
pub const PUSH_QUEUE_MAX: u64 = 1000;

/// The queue's schema (a lost queue entry is a resent state change, not a lost record).
const SCHEMA: Schema = Schema {
    migrations: MIGRATIONS,
    synchronous: "NORMAL",
};

/// Forward migrations; the schema version is the number applied (`PRAGMA user_version`).
const MIGRATIONS: &[&str] = &[
    // 1: what waits for delivery, in order, per push (`heartbeat`, `metrics`).
    "CREATE TABLE queue (
        id      INTEGER PRIMARY KEY AUTOINCREMENT,
        push    TEXT NOT NULL,
        at_us   INTEGER NOT NULL,
        body    TEXT NOT NULL
     );
     CREATE INDEX queue_push_id ON queue (push, id);
     CREATE TABLE dropped (
        push    TEXT PRIMARY KEY,
        count   INTEGER NOT NULL
     );",
];

/// One entry waiting: its sequence number (increasing, never reused), when it was queued
/// (wall time, µs) and what to send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Queued {
    pub id: u64,
    pub at: u64,
    pub body: String,
}

/// The push queue. A file that cannot be used leaves the queue in memory (SQLite's
/// `:memory:`), which [`PushQueue::moved`] and [`PushQueue::in_memory`] say.
pub struct PushQueue {
    conn: Connection,
    max: u64,
    /// Where a bad file went.
    pub moved: Option<PathBuf>,
    /// Why the queue lives in memory, if it does.
    pub in_memory: Option<String>,
}

impl PushQueue {
    /// Opens (or creates) the queue at `path`; a bad file is moved aside and a fresh one
    /// started; when even that fails, the queue lives in memory.
    pub fn open(path: &Path) -> PushQueue {
        Self::open_with_max(path, PUSH_QUEUE_MAX)
    }

    /// [`open`](Self::open) with another bound (tests).
    pub fn open_with_max(path: &Path, max: u64) -> PushQueue {
        let (conn, moved, in_memory) = match open_or_replace(path, &SCHEMA, "the push queue") {
            Ok((c, moved)) => (c, moved.map(|(to, _)| to), None),
            Err(why) => {
                let mut c = Connection::open_in_memory().expect("SQLite opens in memory");
                if let Err(e) = prepare(&mut c, &SCHEMA) {
                    panic!("the queue schema applies in memory: {}", e.reason);
                }
                (c, None, Some(why))
            }
        };
        PushQueue {
            conn,
            max,
            moved,
            in_memory,
        }
    }

    /// Adds an entry for `push`; when more than the bound wait, the oldest go (counted).
    pub fn push(&self, push: &str, at: u64, body: &str) -> rusqlite::Result<u64> {
        let tx = self.conn.unchecked_transaction()?;
        tx.execute(
            "INSERT INTO queue (push, at_us, body) VALUES (?1, ?2, ?3)",
            params![push, at as i64, body],
        )?;
        let id = tx.last_insert_rowid() as u64;
        let over = count(&tx, push)?.saturating_sub(self.max);
        if over > 0 {
            tx.execute(
                "DELETE FROM queue WHERE id IN
                   (SELECT id FROM queue WHERE push = ?1 ORDER BY id LIMIT ?2)",
                params![push, over as i64],
            )?;
            tx.execute(
                "INSERT INTO dropped (push, count) VALUES (?1, ?2)
                 ON CONFLICT (push) DO UPDATE SET count = count + excluded.count",
                params![push, over as i64],
            )?;
        }
        tx.commit()?;
        Ok(id)
    }

    /// The oldest entry waiting for `push`.
    pub fn oldest(&self, push: &str) -> rusqlite::Result<Option<Queued>> {
        self.conn
            .query_row(
                "SELECT id, at_us, body FROM queue WHERE push = ?1 ORDER BY id LIMIT 1",
                params![push],
                |r| {
                    Ok(Queued {
                        id: r.get::<_, i64>(0)? as u64,
                        at: r.get::<_, i64>(1)? as u64,
                        body: r.get(2)?,
                    })
                },
            )
            .optional()
    }

    /// Removes a delivered entry.
    pub fn done(&self, id: u64) -> rusqlite::Result<()> {
        self.conn
            .execute("DELETE FROM queue WHERE id = ?1", params![id as i64])
            .map(drop)
    }

    /// How many wait for `push`, and how many were dropped from it, ever.
    pub fn counts(&self, push: &str) -> rusqlite::Result<(u64, u64)> {
        let dropped: Option<i64> = self
            .conn
            .query_row(
                "SELECT count FROM dropped WHERE push = ?1",
                params![push],
                |r| r.get(0),
            )
            .optional()?;
        Ok((count(&self.conn, push)?, dropped.unwrap_or(0) as u64))
    }
}

fn count(conn: &Connection, push: &str) -> rusqlite::Result<u64> {
    conn.query_row(
        "SELECT COUNT(*) FROM queue WHERE push = ?1",
        params![push],
        |r| r.get::<_, i64>(0),
    )
    .map(|n| n as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_come_back_in_order_survive_reopening_and_are_bounded() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(PUSH_QUEUE_FILE);
        let q = PushQueue::open_with_max(&path, 3);
        assert!(q.in_memory.is_none() && q.moved.is_none());
        for i in 0..5 {
            q.push("heartbeat", i, &format!("b{i}")).unwrap();
        }
        q.push("metrics", 9, "m").unwrap();
        assert_eq!(q.counts("heartbeat").unwrap(), (3, 2));
        assert_eq!(q.counts("metrics").unwrap(), (1, 0));
        drop(q);
        let q = PushQueue::open_with_max(&path, 3);
        let first = q.oldest("heartbeat").unwrap().unwrap();
        assert_eq!((first.at, first.body.as_str()), (2, "b2"));
        q.done(first.id).unwrap();
        let next = q.oldest("heartbeat").unwrap().unwrap();
        assert_eq!(next.body, "b3");
        assert!(next.id > first.id);
        assert_eq!(q.oldest("metrics").unwrap().unwrap().body, "m");
    }

    #[test]
    fn a_file_that_is_not_sqlite_is_moved_aside() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(PUSH_QUEUE_FILE);
        std::fs::write(&path, b"this is no database, not at all").unwrap();
        let q = PushQueue::open(&path);
        let to = q.moved.clone().expect("moved aside");
        assert!(to.exists());
        assert!(q.in_memory.is_none());
        q.push("heartbeat", 1, "x").unwrap();
        assert_eq!(q.counts("heartbeat").unwrap(), (1, 0));
    }
}
