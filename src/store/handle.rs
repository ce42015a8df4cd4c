//! The store thread: one SQLite connection, written from a queue so a slow or broken
//! disk never stalls the evaluation loop or the heartbeat.

use std::path::{Path, PathBuf};
use std::sync::mpsc;

use tokio::sync::oneshot;
use tracing::{error, info, warn};

use super::db::Db;
use super::open::{is_corruption, Opened};
use crate::core::health::Transition;

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
