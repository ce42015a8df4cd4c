//! What every fault test measures: the heartbeat polled all through the fault (each answer
//! counted and timed), and the store's rows before and after (nothing may be lost; the
//! database must pass SQLite's own integrity check).

#![allow(dead_code)]

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// How the heartbeat answered while it was polled.
#[derive(Debug, Clone, Default)]
pub struct Polled {
    pub asked: u64,
    pub answered: u64,
    pub max: Duration,
    /// The first few failures, for the message.
    pub failures: Vec<String>,
}

impl Polled {
    pub fn all_answered(&self) -> bool {
        self.asked > 0 && self.answered == self.asked
    }

    /// `heartbeat 412/412 answered, max 9 ms`
    pub fn figure(&self) -> String {
        format!(
            "heartbeat {}/{} answered, max {} ms",
            self.answered,
            self.asked,
            self.max.as_millis()
        )
    }
}

/// Polls `GET /api/system/heartbeat` every 20 ms on its own thread until stopped.
pub struct HeartbeatPoller {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<Polled>>,
}

/// One heartbeat request with a 2 s bound on every step: 200 with a JSON body that has a
/// status, or why not.
pub fn heartbeat_once(port: u16) -> Result<(), String> {
    let bound = Duration::from_secs(2);
    let addr = std::net::SocketAddr::from(([127, 0, 0, 1], port));
    let mut s = TcpStream::connect_timeout(&addr, bound).map_err(|e| format!("connect: {e}"))?;
    s.set_read_timeout(Some(bound)).unwrap();
    s.set_write_timeout(Some(bound)).unwrap();
    s.write_all(b"GET /api/system/heartbeat HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .map_err(|e| format!("write: {e}"))?;
    let mut buf = Vec::new();
    s.read_to_end(&mut buf).map_err(|e| format!("read: {e}"))?;
    let text = String::from_utf8_lossy(&buf);
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    if !head.starts_with("HTTP/1.1 200") {
        return Err(format!("answer: {head:?}"));
    }
    let doc: serde_json::Value =
        serde_json::from_str(body).map_err(|e| format!("body {body:?}: {e}"))?;
    if !doc["status"].is_string() {
        return Err(format!("no status in {doc}"));
    }
    Ok(())
}

impl HeartbeatPoller {
    pub fn start(port: u16) -> HeartbeatPoller {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let thread = std::thread::spawn(move || {
            let mut p = Polled::default();
            while !flag.load(Ordering::SeqCst) {
                let t = Instant::now();
                let r = heartbeat_once(port);
                let took = t.elapsed();
                p.asked += 1;
                p.max = p.max.max(took);
                match r {
                    Ok(()) => p.answered += 1,
                    Err(e) => {
                        if p.failures.len() < 5 {
                            p.failures.push(e);
                        }
                    }
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            p
        });
        HeartbeatPoller {
            stop,
            thread: Some(thread),
        }
    }

    pub fn finish(mut self) -> Polled {
        self.stop.store(true, Ordering::SeqCst);
        self.thread.take().unwrap().join().unwrap()
    }
}

impl Drop for HeartbeatPoller {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
    }
}

/// The rows of the store that must never be lost: every transition (whole), and every
/// incident and action by id (their state and result change as they go on).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Rows {
    pub transitions: BTreeMap<i64, String>,
    pub incidents: BTreeMap<i64, String>,
    pub actions: BTreeMap<i64, String>,
}

impl Rows {
    pub fn len(&self) -> usize {
        self.transitions.len() + self.incidents.len() + self.actions.len()
    }

    /// How many of `self`'s rows are missing from (or, for transitions, changed in) `after`.
    pub fn lost_in(&self, after: &Rows) -> usize {
        let t = self
            .transitions
            .iter()
            .filter(|(id, row)| after.transitions.get(id) != Some(row))
            .count();
        let i = self
            .incidents
            .keys()
            .filter(|id| !after.incidents.contains_key(id))
            .count();
        let a = self
            .actions
            .keys()
            .filter(|id| !after.actions.contains_key(id))
            .count();
        t + i + a
    }
}

fn table(c: &rusqlite::Connection, sql: &str) -> BTreeMap<i64, String> {
    let mut stmt = c.prepare(sql).unwrap();
    let n = stmt.column_count();
    stmt.query_map([], |r| {
        let id: i64 = r.get(0)?;
        let mut text = Vec::new();
        for i in 1..n {
            let v: rusqlite::types::Value = r.get(i)?;
            text.push(format!("{v:?}"));
        }
        Ok((id, text.join("|")))
    })
    .unwrap()
    .map(Result::unwrap)
    .collect()
}

/// The rows of `db` now (read-only; waits out a writer's lock).
pub fn rows(db: &Path) -> Rows {
    let c = rusqlite::Connection::open_with_flags(db, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
        .unwrap_or_else(|e| panic!("{}: {e}", db.display()));
    c.busy_timeout(Duration::from_secs(10)).unwrap();
    Rows {
        transitions: table(
            &c,
            "SELECT id, check_name, from_status, to_status, at_us, detail FROM transitions",
        ),
        incidents: table(&c, "SELECT id, rule, check_name, opened_us FROM incidents"),
        actions: table(
            &c,
            "SELECT id, incident, step, action, started_us FROM actions",
        ),
    }
}

/// `PRAGMA integrity_check` of `db`: `ok` for a sound file.
pub fn integrity(db: &Path) -> String {
    let c =
        match rusqlite::Connection::open_with_flags(db, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
        {
            Ok(c) => c,
            Err(e) => return format!("cannot open: {e}"),
        };
    let _ = c.busy_timeout(Duration::from_secs(10));
    let mut stmt = match c.prepare("PRAGMA integrity_check") {
        Ok(s) => s,
        Err(e) => return format!("cannot check: {e}"),
    };
    let lines: Result<Vec<String>, _> = stmt
        .query_map([], |r| r.get::<_, String>(0))
        .and_then(|rows| rows.collect());
    match lines {
        Ok(l) => l.join("; "),
        Err(e) => format!("cannot check: {e}"),
    }
}

/// `N rows before, N kept (M now)`
pub fn kept_figure(before: &Rows, after: &Rows) -> String {
    format!(
        "{} rows before, {} kept ({} now)",
        before.len(),
        before.len() - before.lost_in(after),
        after.len()
    )
}
