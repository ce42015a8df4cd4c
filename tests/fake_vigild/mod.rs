//! A stand-in for vigild's update methods (`ApplyUpdate`, `Rollback`, `OfferUpdate`,
//! `GetUpdate`, the `UpdateProgress` signal) on a private bus, as the D-Bus contract
//! describes them, so `vigilctl update …` is tested against scripted runs: one that
//! commits, one whose gate fails, one refused while staged, one that sends no signals, one
//! whose first signal comes before the reply, a rollback, and USB sticks.
//!
//! What a call does is chosen by the file or directory name it is given (see
//! [`Manager::apply_update`] and [`Manager::offer_update`]). Every call is recorded.

#![allow(dead_code)]

use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::{json, Value};
use zbus::fdo;
use zbus::object_server::SignalEmitter;

const PATH: &str = "/org/vigil/Vigil1";

/// One step of a scripted run: after `ms`, the run is in `state`, `fraction` through it.
type Step = (&'static str, f64, u64);

const COMMITS: &[Step] = &[
    ("verified", 0.0, 50),
    ("staged", 0.0, 100),
    ("staged", 0.5, 100),
    ("backed-up", 0.0, 100),
    ("applying", 0.0, 100),
    ("gating", 0.0, 100),
    ("gating", 0.5, 100),
    ("committed", 1.0, 100),
];

const GATE_FAILS: &[Step] = &[
    ("verified", 0.0, 50),
    ("staged", 0.0, 100),
    ("backed-up", 0.0, 100),
    ("applying", 0.0, 100),
    ("gating", 0.0, 100),
    ("rolling-back", 0.0, 150),
    ("gating", 0.0, 150),
    ("rolled-back", 1.0, 150),
];

const REFUSED_WHILE_STAGED: &[Step] = &[
    ("verified", 0.0, 50),
    ("staged", 0.3, 100),
    ("refused", 1.0, 100),
];

const ROLLS_BACK: &[Step] = &[
    ("rolling-back", 0.0, 100),
    ("gating", 0.0, 150),
    ("rolled-back", 1.0, 150),
];

/// From a stick: slow to stage, then gating for a minute (vigilctl must not wait for it).
const FROM_A_STICK: &[Step] = &[
    ("verified", 0.0, 50),
    ("staged", 0.0, 300),
    ("staged", 0.9, 300),
    ("backed-up", 0.0, 300),
    ("applying", 0.0, 100),
    ("gating", 0.0, 100),
    ("committed", 1.0, 60_000),
];

/// What the fake knows: the `GetUpdate` document and every call made.
pub struct Book {
    pub doc: Value,
    pub calls: Vec<(String, String)>,
    next: u32,
}

/// The fake, serving on a bus until dropped.
pub struct FakeVigild {
    pub book: Arc<Mutex<Book>>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl FakeVigild {
    /// Serves `org.vigil.Vigil1` on the bus at `address`; returns once it owns the name.
    pub fn start(address: &str) -> FakeVigild {
        let book = Arc::new(Mutex::new(Book {
            doc: json!({"state": "idle", "run": null, "history": [], "offered": null}),
            calls: Vec::new(),
            next: 1,
        }));
        let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
        let (ready_tx, ready_rx) = std::sync::mpsc::channel::<Result<(), String>>();
        let address = address.to_string();
        let shared = book.clone();
        let thread = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async move {
                let built = async {
                    zbus::connection::Builder::address(address.as_str())
                        .serve_at(PATH, Manager { book: shared })
                        .name("org.vigil.Vigil1")
                        .build()
                        .await
                }
                .await;
                match built {
                    Ok(conn) => {
                        let _ = ready_tx.send(Ok(()));
                        let _ = stop_rx.await;
                        drop(conn);
                    }
                    Err(e) => {
                        let _ = ready_tx.send(Err(e.to_string()));
                    }
                }
            });
        });
        match ready_rx.recv_timeout(Duration::from_secs(10)) {
            Ok(Ok(())) => {}
            Ok(Err(e)) => panic!("the fake vigild cannot serve: {e}"),
            Err(e) => panic!("the fake vigild did not start: {e}"),
        }
        FakeVigild {
            book,
            stop: Some(stop_tx),
            thread: Some(thread),
        }
    }

    /// The calls made so far: (method, argument).
    pub fn calls(&self) -> Vec<(String, String)> {
        self.book.lock().unwrap().calls.clone()
    }

    /// The `GetUpdate` document now.
    pub fn doc(&self) -> Value {
        self.book.lock().unwrap().doc.clone()
    }
}

impl Drop for FakeVigild {
    fn drop(&mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

struct Manager {
    book: Arc<Mutex<Book>>,
}

fn failed(msg: &str) -> fdo::Error {
    fdo::Error::Failed(msg.to_string())
}

impl Manager {
    fn record(&self, method: &str, arg: &str) {
        let mut b = self.book.lock().unwrap();
        b.calls.push((method.to_string(), arg.to_string()));
    }

    /// A new run in the document, in state `first`; its id.
    fn new_run(&self, kind: &str, bundle: &str, version: &str, first: &str) -> String {
        // As vigild: `version` is what the run puts in place, `previous` what it replaces.
        let previous = if kind == "rollback" { "1.4.0" } else { "1.3.0" };
        let mut b = self.book.lock().unwrap();
        let id = b.next.to_string();
        b.next += 1;
        let run = json!({
            "id": id, "kind": kind, "bundle": bundle, "name": "arasul",
            "version": version, "previous": previous, "state": first, "fraction": 0.0,
            "started": "2026-12-01T10:00:00.000Z", "ended": null, "detail": "",
            "events": [{"at": "2026-12-01T10:00:00.000Z", "state": first, "what": first, "detail": ""}],
        });
        set_run(&mut b.doc, run);
        id
    }

    fn play(&self, conn: &zbus::Connection, id: String, steps: &'static [Step], signals: bool) {
        let (book, conn) = (self.book.clone(), conn.clone());
        tokio::spawn(async move {
            for &(state, fraction, ms) in steps {
                tokio::time::sleep(Duration::from_millis(ms)).await;
                {
                    let mut b = book.lock().unwrap();
                    let Some(mut run) = b.doc.get("run").cloned() else {
                        return;
                    };
                    if run["state"] != state {
                        run["events"].as_array_mut().unwrap().push(json!({
                            "at": "2026-12-01T10:00:01.000Z", "state": state,
                            "what": state, "detail": format!("now {state}"),
                        }));
                    }
                    run["state"] = json!(state);
                    run["fraction"] = json!(fraction);
                    match state {
                        "rolled-back" if run["kind"] == "rollback" => {
                            run["detail"] = json!("rollback asked by uid 0 over D-Bus")
                        }
                        "rolled-back" => run["detail"] = json!("gate: usb-crit is crit"),
                        "refused" => {
                            run["detail"] = json!("payload/app: sha256 differs from the manifest")
                        }
                        _ => {}
                    }
                    if ["committed", "rolled-back", "failed", "refused"].contains(&state) {
                        run["ended"] = json!("2026-12-01T10:05:00.000Z");
                    }
                    set_run(&mut b.doc, run);
                }
                if signals {
                    let _ = emit(&conn, &id, state, fraction).await;
                }
            }
        });
    }
}

/// Puts `run` in the document as its run and at the head of its history (without events).
fn set_run(doc: &mut Value, run: Value) {
    let st = run["state"].as_str().unwrap_or("").to_string();
    let over = ["committed", "rolled-back", "failed", "refused"].contains(&st.as_str());
    doc["state"] = json!(if over { "idle" } else { st.as_str() });
    let mut listed = run.clone();
    listed["events"] = json!([]);
    let history = doc["history"].as_array_mut().unwrap();
    match history.iter_mut().find(|r| r["id"] == run["id"]) {
        Some(r) => *r = listed,
        None => history.insert(0, listed),
    }
    doc["run"] = run;
}

async fn emit(conn: &zbus::Connection, id: &str, state: &str, fraction: f64) -> zbus::Result<()> {
    let em = SignalEmitter::new(conn, PATH)?;
    Manager::update_progress(&em, id, state, fraction).await
}

fn base(path: &str) -> String {
    Path::new(path)
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}

#[zbus::interface(name = "org.vigil.Vigil1.Manager")]
impl Manager {
    #[zbus(property)]
    fn version(&self) -> String {
        "0.0.0-fake".into()
    }

    /// By the bundle's file name: `good.vigil` commits, `gate-fails.vigil` rolls back,
    /// `staged-refused.vigil` ends refused, `quiet.vigil` commits without a signal,
    /// `early.vigil` signals `verified` before it replies (and its document never says
    /// so), `refused.vigil` is refused at once.
    async fn apply_update(
        &self,
        path: String,
        #[zbus(connection)] conn: &zbus::Connection,
    ) -> fdo::Result<String> {
        self.record("ApplyUpdate", &path);
        let name = base(&path);
        let (steps, signals) = match name.as_str() {
            "good.vigil" => (COMMITS, true),
            "gate-fails.vigil" => (GATE_FAILS, true),
            "staged-refused.vigil" => (REFUSED_WHILE_STAGED, true),
            "quiet.vigil" => (COMMITS, false),
            "early.vigil" => (&COMMITS[1..], true),
            "refused.vigil" => {
                return Err(failed(&format!(
                    "{path}: refused: signature by key 0123456789ABCDEF, which is not trusted"
                )))
            }
            _ => return Err(failed(&format!("{path}: not a bundle this fake knows"))),
        };
        if name == "early.vigil" {
            let id = self.new_run("apply", &path, "1.4.0", "staged");
            emit(conn, &id, "verified", 0.0)
                .await
                .map_err(fdo::Error::from)?;
            self.play(conn, id.clone(), steps, signals);
            return Ok(id);
        }
        let id = self.new_run("apply", &path, "1.4.0", "verified");
        self.play(conn, id.clone(), steps, signals);
        Ok(id)
    }

    /// A rollback run that rolls back; refused when nothing was ever applied.
    async fn rollback(&self, #[zbus(connection)] conn: &zbus::Connection) -> fdo::Result<String> {
        self.record("Rollback", "");
        if self.book.lock().unwrap().doc["run"].is_null() {
            return Err(failed("nothing to roll back: no update was ever committed"));
        }
        let id = self.new_run(
            "rollback",
            "/srv/arasul-1.4.0.vigil",
            "1.3.0",
            "rolling-back",
        );
        self.play(conn, id.clone(), ROLLS_BACK, true);
        Ok(id)
    }

    /// By the directory's name: `stick-apply` applies (slowly), `stick-refused` applies and
    /// ends refused, `stick-notify` announces, anything else holds no bundle.
    async fn offer_update(
        &self,
        dir: String,
        #[zbus(connection)] conn: &zbus::Connection,
    ) -> fdo::Result<String> {
        self.record("OfferUpdate", &dir);
        let bundle = format!("{dir}/vigil/arasul-1.4.0.vigil");
        let answer = match base(&dir).as_str() {
            "stick-apply" | "stick-refused" => {
                let id = self.new_run("apply", &bundle, "1.4.0", "verified");
                let steps = if base(&dir) == "stick-apply" {
                    FROM_A_STICK
                } else {
                    REFUSED_WHILE_STAGED
                };
                self.play(conn, id.clone(), steps, true);
                json!({"action": "applying", "bundle": bundle, "version": "1.4.0",
                       "run": id, "detail": "[update] usb = \"apply\""})
            }
            "stick-notify" => {
                let mut b = self.book.lock().unwrap();
                b.doc["offered"] = json!({"bundle": bundle, "name": "arasul",
                    "version": "1.4.0", "at": "2026-12-01T10:00:00.000Z"});
                json!({"action": "announced", "bundle": bundle, "version": "1.4.0",
                       "run": null, "detail": "[update] usb = \"notify\""})
            }
            _ => json!({"action": "none", "bundle": null, "version": null, "run": null,
                        "detail": format!("no *.vigil in {dir} or {dir}/vigil")}),
        };
        Ok(answer.to_string())
    }

    fn get_update(&self) -> String {
        self.record("GetUpdate", "");
        self.book.lock().unwrap().doc.to_string()
    }

    #[zbus(signal)]
    async fn update_progress(
        e: &SignalEmitter<'_>,
        run: &str,
        state: &str,
        fraction: f64,
    ) -> zbus::Result<()>;
}
