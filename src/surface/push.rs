//! The push heartbeat (`[heartbeat.push]`) and the sensor push (`[push.metrics]`), for
//! boxes behind NAT that no monitor can scrape.
//!
//! Each push is its own tasks, so a dead or hanging endpoint delays nothing else: every
//! request has the push's `timeout`, failures back off (jittered, doubling from 1 s up to
//! the interval), and what could not be delivered waits in the push queue
//! ([`crate::store::PushQueue`], its own SQLite file), delivered oldest first when the
//! endpoint answers again. For the heartbeat, a watcher task queues every state change it
//! sees in the snapshots (overall status, failing checks, open incidents) while the sender
//! delivers them and, when nothing waits, a live beat every `every`. For the sensor push,
//! every snapshot is queued and delivered the same way. How each push goes is published
//! as a [`PushStatus`] list, which the daemon loop puts in the snapshot (`vigilctl
//! status`, `/metrics`).

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::Value;
use tokio::sync::{watch, Notify};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use crate::config::{PushFormat, PushTarget, Settings};
use crate::core::check::HostRoots;
use crate::core::status::{PushStatus, Snapshot};
use crate::store::{PushQueue, Queued, PUSH_QUEUE_FILE};
use crate::surface::push_format::{self, Identity};
use crate::surface::push_send::{Sender, Sent};
use crate::surface::sensor;
use crate::sys::{clock, identity};

/// The queue's name of the push heartbeat.
pub const HEARTBEAT: &str = "heartbeat";
/// The queue's name of the sensor push.
pub const METRICS: &str = "metrics";
/// The first back-off after a failure; it doubles up to the push's interval.
pub const BACKOFF_FIRST_MS: u64 = 1000;

/// What the pushes need from the settings and the host.
#[derive(Debug, Clone)]
pub struct PushSetup {
    pub heartbeat: Option<PushTarget>,
    pub metrics: Option<PushTarget>,
    pub state_dir: PathBuf,
    /// `$CREDENTIALS_DIRECTORY`.
    pub credentials: Option<PathBuf>,
    pub roots: HostRoots,
    pub machine_id: PathBuf,
}

impl PushSetup {
    /// The pushes `settings` configure, with state in `state_dir`.
    pub fn from_settings(settings: &Settings, state_dir: &Path) -> PushSetup {
        PushSetup {
            heartbeat: settings.heartbeat_push(),
            metrics: settings.metrics_push(),
            state_dir: state_dir.to_path_buf(),
            credentials: identity::credentials_dir(),
            roots: settings.host_roots(),
            machine_id: PathBuf::from(identity::MACHINE_ID),
        }
    }
}

/// The queue, shared by a push's tasks; used only on the blocking pool.
pub type SharedQueue = Arc<Mutex<PushQueue>>;

/// Runs `f` on the queue off the runtime.
pub async fn with_queue<T: Send + 'static>(
    q: &SharedQueue,
    f: impl FnOnce(&PushQueue) -> rusqlite::Result<T> + Send + 'static,
) -> Result<T, String> {
    let q = q.clone();
    tokio::task::spawn_blocking(move || f(&q.lock().unwrap_or_else(|p| p.into_inner())))
        .await
        .map_err(|e| format!("push queue thread failed: {e}"))?
        .map_err(|e| format!("push queue: {e}"))
}

/// Starts the configured pushes; the receiver says how they go (empty when none is).
pub fn start(
    setup: PushSetup,
    snap_rx: watch::Receiver<Arc<Snapshot>>,
    shutdown: CancellationToken,
) -> watch::Receiver<Vec<PushStatus>> {
    let mut targets = Vec::new();
    if let Some(t) = setup.heartbeat.clone() {
        targets.push((HEARTBEAT, t));
    }
    if let Some(t) = setup.metrics.clone() {
        targets.push((METRICS, t));
    }
    let statuses = targets
        .iter()
        .map(|(name, t)| PushStatus {
            name: name.to_string(),
            format: if *name == METRICS {
                "sensor".into()
            } else {
                t.format.as_str().into()
            },
            target: push_format::shown(&t.url),
            ..Default::default()
        })
        .collect();
    let (tx, rx) = watch::channel(statuses);
    if targets.is_empty() {
        return rx;
    }
    let tx = Arc::new(tx);
    let setup = Arc::new(setup);
    tokio::spawn(async move {
        let path = setup.state_dir.join(PUSH_QUEUE_FILE);
        let queue = tokio::task::spawn_blocking(move || PushQueue::open(&path))
            .await
            .expect("opening the push queue does not panic");
        if let Some(to) = &queue.moved {
            warn!(
                vigil_event = "push",
                "push queue was unusable, moved aside to {}",
                to.display()
            );
        }
        if let Some(why) = &queue.in_memory {
            warn!(
                vigil_event = "push",
                "push queue kept in memory (lost at restart): {why}"
            );
        }
        let queue: SharedQueue = Arc::new(Mutex::new(queue));
        let id = Identity {
            hostname: identity::hostname(),
            machine: identity::machine_hash(&setup.machine_id),
        };
        for (index, (name, target)) in targets.into_iter().enumerate() {
            let wake = Arc::new(Notify::new());
            let sender = Sender::new(
                name,
                target.clone(),
                setup.credentials.clone(),
                tx.clone(),
                index,
            );
            if name == HEARTBEAT {
                tokio::spawn(watch_changes(
                    queue.clone(),
                    snap_rx.clone(),
                    id.clone(),
                    wake.clone(),
                    shutdown.clone(),
                ));
            }
            let run = PushLoop {
                name,
                target,
                queue: queue.clone(),
                snap_rx: snap_rx.clone(),
                id: id.clone(),
                roots: setup.roots.clone(),
                sender,
                wake,
            };
            tokio::spawn(run.run(shutdown.clone()));
        }
    });
    rx
}

/// Queues every state change of the heartbeat that the snapshots show.
async fn watch_changes(
    queue: SharedQueue,
    mut snap_rx: watch::Receiver<Arc<Snapshot>>,
    id: Identity,
    wake: Arc<Notify>,
    shutdown: CancellationToken,
) {
    let mut last = None;
    loop {
        let snap = snap_rx.borrow_and_update().clone();
        // The snapshot before the first reading has no checks: nothing to say yet.
        if !snap.checks.is_empty() {
            let key = push_format::state_key(&snap);
            if last.as_ref() != Some(&key) {
                last = Some(key);
                let now = clock::now();
                let doc = push_format::heartbeat_document(&snap, now, &id, "change").to_string();
                match with_queue(&queue, move |q| q.push(HEARTBEAT, now.wall, &doc)).await {
                    Ok(_) => wake.notify_one(),
                    Err(e) => warn!(vigil_event = "push", "cannot queue a state change: {e}"),
                }
            }
        }
        tokio::select! {
            r = snap_rx.changed() => if r.is_err() { return },
            _ = shutdown.cancelled() => return,
        }
    }
}

/// A small xorshift for jitter: no need for a cryptographic source.
fn jitter_factor(state: &mut u64) -> f64 {
    *state ^= *state << 13;
    *state ^= *state >> 7;
    *state ^= *state << 17;
    0.5 + (*state % 1000) as f64 / 2000.0
}

/// The wait after `failures` failures in a row: 1 s doubling, at most `cap`, times a
/// factor in [0.5, 1) so that many boxes do not retry in step.
pub fn backoff(failures: u32, cap: Duration, rng: &mut u64) -> Duration {
    let base = Duration::from_millis(BACKOFF_FIRST_MS)
        .saturating_mul(1u32 << failures.saturating_sub(1).min(16))
        .min(cap);
    base.mul_f64(jitter_factor(rng))
}

/// One push's sender.
struct PushLoop {
    name: &'static str,
    target: PushTarget,
    queue: SharedQueue,
    snap_rx: watch::Receiver<Arc<Snapshot>>,
    id: Identity,
    roots: HostRoots,
    sender: Sender,
    wake: Arc<Notify>,
}

impl PushLoop {
    async fn run(mut self, shutdown: CancellationToken) {
        let mut rng = clock::now_mono() ^ (u64::from(std::process::id()) << 32) | 1;
        let mut failures = 0u32;
        let mut retry_at: Option<Instant> = None;
        let mut next_beat = Instant::now();
        let mut beat_pending = false;
        let mut cpu_before = sensor::cpu_times(&self.roots.proc);
        self.refresh_counts().await;
        loop {
            let now = Instant::now();
            if now >= next_beat {
                next_beat = now + self.target.every;
                if self.name == METRICS {
                    // Snapshots are taken on time, also while the endpoint is away.
                    let cpu_now = sensor::cpu_times(&self.roots.proc);
                    let cpu = cpu_now.map(|c| sensor::cpu_percent(cpu_before, c));
                    cpu_before = cpu_now.or(cpu_before);
                    self.queue_snapshot(cpu).await;
                } else {
                    beat_pending = true;
                }
            }
            if retry_at.is_none_or(|t| now >= t) {
                retry_at = None;
                let ok = tokio::select! {
                    ok = self.deliver(beat_pending) => ok,
                    _ = shutdown.cancelled() => return,
                };
                beat_pending = false;
                if ok {
                    failures = 0;
                } else {
                    failures += 1;
                    let wait = backoff(failures, self.target.every, &mut rng);
                    retry_at = Some(Instant::now() + wait);
                }
            }
            let until = retry_at.map_or(next_beat, |r| r.min(next_beat));
            tokio::select! {
                _ = tokio::time::sleep_until(until) => {}
                // A state change was queued: it shows in the count also while backing off.
                _ = self.wake.notified() => self.refresh_counts().await,
                _ = shutdown.cancelled() => return,
            }
        }
    }

    /// Queues a metrics snapshot.
    async fn queue_snapshot(&mut self, cpu: Option<f64>) {
        let snap = self.snap_rx.borrow().clone();
        let now = clock::now();
        let doc = sensor::document(&snap, now, &self.id, &self.roots, cpu).to_string();
        if let Err(e) = with_queue(&self.queue, move |q| q.push(METRICS, now.wall, &doc)).await {
            warn!(vigil_event = "push", "cannot queue a metrics snapshot: {e}");
        }
        self.refresh_counts().await;
    }

    /// Delivers what waits, oldest first, then (heartbeat, `beat` due, nothing waiting) a
    /// live beat. False when the endpoint failed.
    async fn deliver(&mut self, beat: bool) -> bool {
        let mut delivered = 0u64;
        loop {
            let name = self.name;
            let next = match with_queue(&self.queue, move |q| q.oldest(name)).await {
                Ok(n) => n,
                Err(e) => {
                    warn!(vigil_event = "push", "{e}");
                    None
                }
            };
            let Some(item) = next else { break };
            if !self.send_queued(&item).await {
                return false;
            }
            let id = item.id;
            if let Err(e) = with_queue(&self.queue, move |q| q.done(id)).await {
                warn!(vigil_event = "push", "{e}");
                return false;
            }
            delivered += 1;
            self.refresh_counts().await;
        }
        if delivered > 0 && self.name == HEARTBEAT {
            info!(
                vigil_event = "push",
                "{} push: {delivered} queued state change(s) delivered", self.name
            );
        }
        let snap = self.snap_rx.borrow().clone();
        // Before the first reading there is nothing to say: the first state change follows.
        if beat && !snap.checks.is_empty() {
            let doc = push_format::heartbeat_document(&snap, clock::now(), &self.id, "beat");
            return self.send_doc(&doc, None).await;
        }
        true
    }

    async fn send_queued(&mut self, item: &Queued) -> bool {
        let doc: Value = match serde_json::from_str(&item.body) {
            Ok(d) => d,
            // Not JSON (cannot happen unless the file was edited): drop it rather than
            // block the queue forever.
            Err(_) => return true,
        };
        self.send_doc(&doc, Some(item.id)).await
    }

    async fn send_doc(&mut self, doc: &Value, seq: Option<u64>) -> bool {
        let req = if self.name == METRICS {
            push_format::heartbeat_request(PushFormat::Vigil, &self.target.url, doc, seq, 0, None)
        } else {
            push_format::heartbeat_request(
                self.target.format,
                &self.target.url,
                doc,
                seq,
                self.sender.body_limit,
                self.sender.last_ping_ms,
            )
        };
        matches!(self.sender.send(req).await, Sent::Ok)
    }

    async fn refresh_counts(&self) {
        let name = self.name;
        if let Ok((queued, dropped)) = with_queue(&self.queue, move |q| q.counts(name)).await {
            self.sender.set_counts(queued, dropped);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_to_the_cap_with_jitter() {
        let mut rng = 12345;
        let cap = Duration::from_secs(30);
        for (n, base) in [
            (1, 1.0),
            (2, 2.0),
            (3, 4.0),
            (5, 16.0),
            (6, 30.0),
            (40, 30.0),
        ] {
            for _ in 0..50 {
                let d = backoff(n, cap, &mut rng).as_secs_f64();
                assert!(d >= base * 0.5 && d < base, "{n}: {d}");
            }
        }
        assert_eq!(
            push_format::shown("https://hc-ping.com/secret-uuid"),
            "https://hc-ping.com"
        );
        assert_eq!(
            push_format::shown("http://10.0.0.2:3001/api/push/x"),
            "http://10.0.0.2:3001"
        );
    }
}
