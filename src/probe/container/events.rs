//! The shared engine of one Docker host: its `/events` stream, followed by a background task
//! from the moment the engine is made, wakes the probes whose containers an event concerns.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use bollard::query_parameters::EventsOptionsBuilder;
use futures_util::StreamExt;
use tokio::sync::Notify;
use tracing::{debug, info};

use crate::core::glob::glob_match;
use crate::sys::docker::DockerConn;
use crate::sys::registry::Registry;

/// Back-off of the events stream's reconnection: first and longest wait.
const BACKOFF_MIN: Duration = Duration::from_millis(200);
const BACKOFF_MAX: Duration = Duration::from_secs(2);

/// The container events that can change what a probe reports. Not `kill`: it only says a
/// signal was sent, and an inspect made then waits on the container while dockerd handles
/// the exit, delaying the read that the `die` right after it asks for.
const EVENTS: &[&str] = &[
    "create",
    "start",
    "restart",
    "die",
    "oom",
    "stop",
    "pause",
    "unpause",
    "health_status",
    "rename",
    "destroy",
];

/// Which containers a watcher cares about.
pub(super) enum Interest {
    Name(String),
    Globs(Vec<String>),
}

impl Interest {
    pub(super) fn concerns(&self, name: &str) -> bool {
        match self {
            Interest::Name(n) => n == name,
            Interest::Globs(gs) => gs.iter().any(|g| glob_match(g, name)),
        }
    }
}

/// One probe's registration with the engine.
struct Watcher {
    interest: Interest,
    wake: Weak<Notify>,
    /// Names of containers that events touched since the probe's last read.
    dirty: Weak<Mutex<HashSet<String>>>,
}

/// State shared by the engine's probes and its events task.
pub(super) struct Shared {
    pub(super) conn: DockerConn,
    watchers: Mutex<Vec<Watcher>>,
    /// The last `die` of each container (by name) since it last started.
    deaths: Mutex<HashMap<String, Death>>,
    /// Containers with an `oom` event since they last started.
    ooms: Mutex<HashSet<String>>,
}

/// What a `die` event said. dockerd sends it before it has finished handling the exit, and
/// an inspect made then waits on the container until it has (tens of ms); a container with
/// no restart policy is certainly exited, so its probe reports this at once and confirms
/// with an inspect right after.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) struct Death {
    pub seq: u64,
    pub exit_code: i64,
    pub oom: bool,
}

impl Shared {
    /// Keeps what `die`/`oom` events say; any other event makes it old news.
    fn note(&self, action: &str, name: &str, attrs: Option<&HashMap<String, String>>) {
        static SEQ: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);
        let mut deaths = self.deaths.lock().unwrap_or_else(|p| p.into_inner());
        let mut ooms = self.ooms.lock().unwrap_or_else(|p| p.into_inner());
        match action {
            "oom" => {
                ooms.insert(name.to_string());
            }
            "die" => {
                let exit_code = attrs
                    .and_then(|a| a.get("exitCode"))
                    .and_then(|c| c.parse().ok());
                if let Some(exit_code) = exit_code {
                    let seq = SEQ.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    let oom = ooms.remove(name);
                    deaths.insert(
                        name.to_string(),
                        Death {
                            seq,
                            exit_code,
                            oom,
                        },
                    );
                }
            }
            _ => {
                deaths.remove(name);
                if action != "kill" && action != "stop" {
                    ooms.remove(name);
                }
            }
        }
    }

    pub(super) fn death(&self, name: &str) -> Option<Death> {
        self.deaths
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(name)
            .copied()
    }
}

impl Shared {
    /// Wakes the watchers an event concerns (all of them when `names` is `None`).
    fn wake(&self, names: Option<&[&str]>) {
        let mut ws = self.watchers.lock().unwrap_or_else(|p| p.into_inner());
        ws.retain(|w| {
            let (Some(wake), Some(dirty)) = (w.wake.upgrade(), w.dirty.upgrade()) else {
                return false;
            };
            match names {
                None => wake.notify_one(),
                Some(names) => {
                    let hit: Vec<&str> = names
                        .iter()
                        .copied()
                        .filter(|n| w.interest.concerns(n))
                        .collect();
                    if !hit.is_empty() {
                        let mut d = dirty.lock().unwrap_or_else(|p| p.into_inner());
                        d.extend(hit.iter().map(|s| s.to_string()));
                        drop(d);
                        wake.notify_one();
                    }
                }
            }
            true
        });
    }
}

/// A Docker host's client and events stream, shared by every probe of the process.
pub struct Engine {
    pub(super) shared: Arc<Shared>,
    events: tokio::task::AbortHandle,
}

impl Drop for Engine {
    fn drop(&mut self) {
        self.events.abort();
    }
}

impl Engine {
    /// The engine for `host` from the daemon's registry, made (and its events task
    /// started) on first use. Must be called inside the tokio runtime.
    pub fn get(engines: &Registry<String, Engine>, host: &str) -> Arc<Engine> {
        engines.get_or_make(&host.to_string(), || {
            let shared = Arc::new(Shared {
                conn: DockerConn::new(host),
                watchers: Mutex::new(Vec::new()),
                deaths: Mutex::new(HashMap::new()),
                ooms: Mutex::new(HashSet::new()),
            });
            let events = tokio::spawn(events_task(shared.clone())).abort_handle();
            Arc::new(Engine { shared, events })
        })
    }

    pub(super) fn watch(&self, interest: Interest) -> (Arc<Notify>, Arc<Mutex<HashSet<String>>>) {
        let wake = Arc::new(Notify::new());
        let dirty = Arc::new(Mutex::new(HashSet::new()));
        self.shared
            .watchers
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(Watcher {
                interest,
                wake: Arc::downgrade(&wake),
                dirty: Arc::downgrade(&dirty),
            });
        (wake, dirty)
    }
}

/// Follows `/events` for as long as the engine lives, reconnecting with back-off. Every
/// change of connectivity wakes every probe, so checks turn unknown when dockerd goes and
/// are read afresh (never from remembered state) as soon as it answers again.
async fn events_task(shared: Arc<Shared>) {
    let mut backoff = BACKOFF_MIN;
    let mut was_up = false;
    loop {
        let client = match shared.conn.client().await {
            Ok(c) => c,
            Err(why) => {
                if was_up {
                    shared.wake(None);
                    was_up = false;
                }
                debug!("docker events: {why}; retrying in {backoff:?}");
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(BACKOFF_MAX);
                continue;
            }
        };
        let mut filters = HashMap::new();
        filters.insert("type", vec!["container"]);
        filters.insert("event", EVENTS.to_vec());
        // Replay the last seconds too: an event between the subscription going out and
        // dockerd registering it is then not lost (a replayed one only wakes a probe twice).
        let since = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs().saturating_sub(2))
            .unwrap_or(0)
            .to_string();
        let opts = EventsOptionsBuilder::default()
            .since(&since)
            .filters(&filters)
            .build();
        let mut stream = client.events(Some(opts));
        // The request goes out on this first poll; an engine that is down fails it at once.
        let mut first = true;
        loop {
            let item = if first {
                // Poll once so the subscription is made before anyone is woken.
                tokio::select! {
                    biased;
                    item = stream.next() => Some(item),
                    _ = tokio::time::sleep(Duration::from_millis(50)) => None,
                }
            } else {
                Some(stream.next().await)
            };
            if first {
                first = false;
                // Subscribed (or failed at once, handled below): read everything afresh.
                if item.is_none() || matches!(item, Some(Some(Ok(_)))) {
                    if !was_up {
                        info!(
                            vigil_event = "docker",
                            "following container events of the Docker engine at {}",
                            shared.conn.host()
                        );
                    }
                    was_up = true;
                    backoff = BACKOFF_MIN;
                    shared.wake(None);
                }
            }
            match item {
                None => continue,
                Some(Some(Ok(ev))) => {
                    let attrs = ev.actor.as_ref().and_then(|a| a.attributes.as_ref());
                    let names: Vec<&str> = ["name", "oldName"]
                        .iter()
                        .filter_map(|k| attrs.and_then(|a| a.get(*k)))
                        .map(|n| n.trim_start_matches('/'))
                        .collect();
                    let action = ev.action.as_deref().unwrap_or("?");
                    debug!("docker event {action} for {names:?}");
                    if let Some(name) = names.first() {
                        shared.note(action, name, attrs);
                    }
                    if names.is_empty() {
                        shared.wake(None);
                    } else {
                        shared.wake(Some(&names));
                    }
                }
                Some(Some(Err(e))) => {
                    debug!("docker events stream of {} failed: {e}", shared.conn.host());
                    break;
                }
                Some(None) => {
                    debug!("docker events stream of {} ended", shared.conn.host());
                    break;
                }
            }
        }
        // The stream broke: dockerd stopped or restarted. Probes read now (unknown, or the
        // new truth), and the stream is made again after the back-off. Nothing an event
        // said before the outage is used after it.
        shared
            .deaths
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clear();
        shared
            .ooms
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clear();
        if was_up {
            shared.wake(None);
            was_up = false;
        }
        tokio::time::sleep(backoff).await;
        backoff = (backoff * 2).min(BACKOFF_MAX);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn interests_match_names_and_globs() {
        assert!(Interest::Name("a".into()).concerns("a"));
        assert!(!Interest::Name("a".into()).concerns("ab"));
        let g = Interest::Globs(vec!["app-*".into(), "db".into()]);
        assert!(g.concerns("app-1") && g.concerns("db") && !g.concerns("dbx"));
    }
}
