//! The store thread: one SQLite connection, written from a queue so a slow or broken
//! disk never stalls the evaluation loop or the heartbeat.
//!
//! Records are written in the order they were sent. One that cannot be written because the
//! disk is full, failing or locked waits in memory with every record after it (at most
//! [`BACKLOG_MAX`], the oldest dropped and counted beyond that), and the thread tries again
//! every [`RETRY_EVERY`] until they are all on disk. [`Store::health`] says how that goes.

use std::collections::VecDeque;
use std::path::{Path, PathBuf};
use std::sync::{mpsc, Arc, Mutex};
use std::time::Duration;

use tokio::sync::oneshot;
use tracing::{error, info, warn};

use super::db::Db;
use super::open::{is_corruption, Opened};
use super::record::{is_retryable, Record};
use crate::core::health::Transition;
use crate::core::status::StoreHealth;
use crate::sys::clock::now_micros;

/// Most records kept in memory while the store cannot write.
pub const BACKLOG_MAX: usize = 10_000;
/// How often records that wait are tried again.
pub const RETRY_EVERY: Duration = Duration::from_secs(1);

type Job = Box<dyn FnOnce(&mut Db) + Send>;

enum Cmd {
    Write(Record),
    Run(Job),
    /// Answers once every record sent before is on disk, or why not.
    Confirm(oneshot::Sender<Result<(), String>>),
}

/// A handle to the store thread. Cheap to clone.
#[derive(Clone)]
pub struct Store {
    tx: mpsc::Sender<Cmd>,
    health: Arc<Mutex<StoreHealth>>,
}

/// The store thread's own state.
struct Writer {
    path: PathBuf,
    db: Db,
    backlog: VecDeque<Record>,
    health: Arc<Mutex<StoreHealth>>,
}

impl Writer {
    /// Reopens the database if its file was removed or replaced under vigild.
    fn check_file(&mut self) {
        if !self.db.still_on_disk() {
            warn!(
                vigil_event = "store",
                "database {} was removed or replaced while vigild ran; reopening it",
                self.path.display()
            );
            self.reopen();
        }
    }

    fn reopen(&mut self) {
        let (fresh, opened) = Db::open(&self.path);
        log_opened(&opened, &self.path);
        self.db = fresh;
    }

    /// Writes one record; a file that went bad under us is moved aside and tried once more.
    fn write_one(&mut self, r: &Record) -> rusqlite::Result<()> {
        match r.write(&self.db) {
            Err(e) if is_corruption(&e) => {
                self.reopen();
                r.write(&self.db)
            }
            other => other,
        }
    }

    /// Writes what waits, in order, until one fails with an error that may pass.
    fn flush(&mut self) {
        if self.backlog.is_empty() {
            return;
        }
        self.check_file();
        while let Some(r) = self.backlog.pop_front() {
            match self.write_one(&r) {
                Ok(()) => {}
                Err(e) if is_retryable(&e) => {
                    self.backlog.push_front(r);
                    self.failing(&e);
                    return;
                }
                Err(e) => warn!(
                    vigil_event = "store",
                    "cannot record {}: {e}; it is dropped (it can never be written)",
                    r.what()
                ),
            }
        }
        self.recovered();
    }

    fn failing(&mut self, e: &rusqlite::Error) {
        let mut h = self.health.lock().unwrap_or_else(|p| p.into_inner());
        if h.failing_since.is_none() {
            error!(
                vigil_event = "store",
                "cannot write to the store {}: {e}; keeping records in memory (at most {BACKLOG_MAX}) \
                 and writing them when it can — free space in the state directory",
                self.path.display()
            );
            h.failing_since = Some(now_micros());
        }
        h.last_error = Some(e.to_string());
        h.waiting = self.backlog.len();
    }

    fn recovered(&mut self) {
        let mut h = self.health.lock().unwrap_or_else(|p| p.into_inner());
        if h.failing_since.take().is_some() {
            info!(
                vigil_event = "store",
                "the store writes again: every waiting record is on disk"
            );
        }
        h.last_error = None;
        h.waiting = 0;
    }

    fn push(&mut self, r: Record) {
        self.backlog.push_back(r);
        if self.backlog.len() > BACKLOG_MAX {
            if let Some(old) = self.backlog.pop_front() {
                let mut h = self.health.lock().unwrap_or_else(|p| p.into_inner());
                if h.dropped == 0 {
                    error!(
                        vigil_event = "store",
                        "more than {BACKLOG_MAX} records wait for the store: dropping the oldest ({} first)",
                        old.what()
                    );
                }
                h.dropped += 1;
            }
        }
        self.flush();
        if !self.backlog.is_empty() {
            let mut h = self.health.lock().unwrap_or_else(|p| p.into_inner());
            h.waiting = self.backlog.len();
        }
    }

    fn run(mut self, rx: mpsc::Receiver<Cmd>) {
        loop {
            let cmd = if self.backlog.is_empty() {
                match rx.recv() {
                    Ok(c) => c,
                    Err(_) => return,
                }
            } else {
                match rx.recv_timeout(RETRY_EVERY) {
                    Ok(c) => c,
                    Err(mpsc::RecvTimeoutError::Timeout) => {
                        self.flush();
                        continue;
                    }
                    Err(mpsc::RecvTimeoutError::Disconnected) => {
                        self.flush();
                        return;
                    }
                }
            };
            match cmd {
                Cmd::Write(r) => self.push(r),
                Cmd::Run(job) => {
                    self.flush();
                    job(&mut self.db)
                }
                Cmd::Confirm(reply) => {
                    self.flush();
                    let answer = match self.backlog.len() {
                        0 => Ok(()),
                        n => Err(format!(
                            "the store cannot write ({}); {n} record(s) wait",
                            self.health
                                .lock()
                                .unwrap_or_else(|p| p.into_inner())
                                .last_error
                                .clone()
                                .unwrap_or_default()
                        )),
                    };
                    let _ = reply.send(answer);
                }
            }
        }
    }
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
        let health = Arc::new(Mutex::new(StoreHealth::default()));
        let shared = health.clone();
        std::thread::Builder::new()
            .name("vigil-store".into())
            .spawn(move || {
                let (db, opened) = Db::open(&path);
                log_opened(&opened, &path);
                Writer {
                    path,
                    db,
                    backlog: VecDeque::new(),
                    health: shared,
                }
                .run(rx)
            })
            .expect("spawn store thread");
        Store { tx, health }
    }

    /// Records a transition; does not wait.
    pub fn record_transition(&self, t: Transition) {
        self.write(Record::Transition(t));
    }

    /// Writes a record; does not wait. It is written in order, also when it has to wait.
    pub fn write(&self, r: Record) {
        let _ = self.tx.send(Cmd::Write(r));
    }

    /// Waits until every record sent before is on disk; `Err` says why they are not (the
    /// store cannot write, or gave no answer within `within`).
    pub async fn confirm(&self, within: Duration) -> Result<(), String> {
        let (reply, rx) = oneshot::channel();
        self.tx
            .send(Cmd::Confirm(reply))
            .map_err(|_| "the store has stopped".to_string())?;
        match tokio::time::timeout(within, rx).await {
            Ok(Ok(answer)) => answer,
            Ok(Err(_)) => Err("the store has stopped".into()),
            Err(_) => Err(format!(
                "the store gave no answer within {} s (a slow or locked database?)",
                within.as_secs()
            )),
        }
    }

    /// How writing goes.
    pub fn health(&self) -> StoreHealth {
        self.health
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Runs `f` on the store thread and returns its result (queries). Waiting records are
    /// tried first, so a query sees what was sent before it where the disk allows.
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
