//! The `container` and `containers` probes. Each keeps a [`RestartHistory`] per container
//! (by id for `containers`) and makes a reading `crit` while it says crash loop (3 restarts
//! within 5 minutes; see the module above), on every reading, cached ones included.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use async_trait::async_trait;
use bollard::errors::Error as DockerError;
use bollard::models::{ContainerInspectResponse, ContainerStateStatusEnum, RestartPolicyNameEnum};
use bollard::query_parameters::ListContainersOptionsBuilder;
use futures_util::StreamExt;
use tokio::sync::Notify;

use super::crash_loop::{mark, RestartHistory};
use super::events::{Engine, Interest};
use super::judge::{judge, not_found};
use crate::core::check::container_check;
use crate::core::glob::glob_match;
use crate::core::metric::Reading;
use crate::probe::api::{Context, Probe};
use crate::sys::docker::{error_text, host_or_default, is_not_found};

/// How many inspects a `containers` read runs at once.
const INSPECT_PARALLEL: usize = 16;

/// Gives an inspect made at `now` to the container's restart history; returns its state as
/// Docker words it.
fn observe(history: &mut RestartHistory, now: Instant, c: &ContainerInspectResponse) -> String {
    let state = c.state.as_ref();
    let status = state
        .and_then(|s| s.status)
        .unwrap_or(ContainerStateStatusEnum::EMPTY);
    // Docker keeps `running` true while it restarts a container; the status says it.
    let exited = matches!(
        status,
        ContainerStateStatusEnum::RESTARTING
            | ContainerStateStatusEnum::EXITED
            | ContainerStateStatusEnum::DEAD
    );
    let exit = state.and_then(|s| s.exit_code).filter(|_| exited);
    history.observe(
        now,
        c.id.as_deref().unwrap_or_default(),
        c.restart_count.unwrap_or(0),
        exit,
    );
    status.to_string()
}

/// `container`: one container by name.
pub struct ContainerProbe {
    name: String,
    engine: Arc<Engine>,
    wake: Arc<Notify>,
    dirty: Arc<Mutex<HashSet<String>>>,
    /// The last inspect, while the container ran with no restart policy.
    last_running: Option<ContainerInspectResponse>,
    /// The `die` already reported from its event.
    reported_death: u64,
    /// Its restarts, as this probe's readings saw them.
    history: RestartHistory,
}

impl ContainerProbe {
    /// Builds the probe and registers it for the container's events.
    pub fn new(container: String, ctx: &Context) -> Self {
        let name = container.trim_start_matches('/').to_string();
        let engine = Engine::get(
            &ctx.connections.docker,
            &host_or_default(ctx.docker_host.as_deref()),
        );
        let (wake, dirty) = engine.watch(Interest::Name(name.clone()));
        ContainerProbe {
            name,
            engine,
            wake,
            dirty,
            last_running: None,
            reported_death: 0,
            history: RestartHistory::default(),
        }
    }
}

#[async_trait]
impl Probe for ContainerProbe {
    async fn read(&mut self) -> Reading {
        self.dirty.lock().unwrap_or_else(|p| p.into_inner()).clear();
        let shared = &self.engine.shared;
        // A fresh `die` of a container that ran with no restart policy: it has exited, and
        // the event says how; report that now and confirm with an inspect at once.
        if let (Some(death), Some(last)) = (shared.death(&self.name), &self.last_running) {
            if death.seq != self.reported_death {
                self.reported_death = death.seq;
                self.wake.notify_one();
                let mut c = last.clone();
                let mut state = c.state.clone().unwrap_or_default();
                state.status = Some(ContainerStateStatusEnum::EXITED);
                state.running = Some(false);
                state.paused = Some(false);
                state.restarting = Some(false);
                state.exit_code = Some(death.exit_code);
                state.oom_killed = Some(death.oom);
                state.health = None;
                c.state = Some(state);
                return judge(&self.name, &c);
            }
        }
        let client = match shared.conn.client().await {
            Ok(c) => c,
            Err(why) => return Reading::Unknown(why),
        };
        match client.inspect_container(&self.name, None).await {
            Ok(c) => {
                let running = c.state.as_ref().and_then(|s| s.running).unwrap_or(false);
                let no_restart = c
                    .host_config
                    .as_ref()
                    .and_then(|h| h.restart_policy.as_ref())
                    .and_then(|r| r.name)
                    .is_none_or(|n| {
                        matches!(n, RestartPolicyNameEnum::NO | RestartPolicyNameEnum::EMPTY)
                    });
                self.last_running = (running && no_restart).then(|| c.clone());
                if let Some(d) = shared.death(&self.name) {
                    // This inspect already shows the exit; a `die` that came while it was
                    // in flight and still finds the container running is left to report.
                    if !running {
                        self.reported_death = self.reported_death.max(d.seq);
                    }
                }
                let now = Instant::now();
                let state = observe(&mut self.history, now, &c);
                mark(
                    &self.name,
                    judge(&self.name, &c),
                    &state,
                    &mut self.history,
                    now,
                )
            }
            Err(e) if is_not_found(&e) => {
                self.history = RestartHistory::default();
                not_found(&self.name)
            }
            Err(e @ DockerError::DockerResponseServerError { .. }) => Reading::Unknown(format!(
                "Docker engine at {} could not inspect container {}: {}",
                shared.conn.host(),
                self.name,
                error_text(&e)
            )),
            Err(e) => Reading::Unknown(shared.conn.unreachable(&e)),
        }
    }

    fn wake(&self) -> Option<Arc<Notify>> {
        Some(self.wake.clone())
    }
}

/// `containers`: every container whose name matches one of the globs.
pub struct ContainersProbe {
    patterns: Vec<String>,
    engine: Arc<Engine>,
    wake: Arc<Notify>,
    dirty: Arc<Mutex<HashSet<String>>>,
    /// Last reading per container id as judged from its inspect, the list state it was
    /// taken in, and the container's state as Docker words it.
    cache: HashMap<String, (String, Reading, String)>,
    /// Restarts per container id, as this probe's readings saw them.
    history: HashMap<String, RestartHistory>,
}

impl ContainersProbe {
    /// Builds the probe and registers it for the events of matching containers.
    pub fn new(patterns: Vec<String>, ctx: &Context) -> Self {
        let engine = Engine::get(
            &ctx.connections.docker,
            &host_or_default(ctx.docker_host.as_deref()),
        );
        let (wake, dirty) = engine.watch(Interest::Globs(patterns.clone()));
        ContainersProbe {
            patterns,
            engine,
            wake,
            dirty,
            cache: HashMap::new(),
            history: HashMap::new(),
        }
    }
}

#[async_trait]
impl Probe for ContainersProbe {
    async fn read(&mut self) -> Reading {
        // Names events touched since the last read. None touched means this is a tick (or a
        // run-now): a full resync that inspects every matching container again.
        let dirty: HashSet<String> =
            std::mem::take(&mut *self.dirty.lock().unwrap_or_else(|p| p.into_inner()));
        let full = dirty.is_empty();
        let shared = &self.engine.shared;
        let client = match shared.conn.client().await {
            Ok(c) => c,
            Err(why) => return Reading::Unknown(why),
        };
        let opts = ListContainersOptionsBuilder::default().all(true).build();
        let list = match client.list_containers(Some(opts)).await {
            Ok(l) => l,
            Err(e @ DockerError::DockerResponseServerError { .. }) => {
                return Reading::Unknown(format!(
                    "Docker engine at {} could not list containers: {}",
                    shared.conn.host(),
                    error_text(&e)
                ))
            }
            Err(e) => return Reading::Unknown(shared.conn.unreachable(&e)),
        };
        // (id, name, list state) of the matching containers.
        let mut matched = Vec::new();
        for c in list {
            let Some(id) = c.id.clone() else { continue };
            let Some(name) = c
                .names
                .as_ref()
                .and_then(|ns| ns.first())
                .map(|n| n.trim_start_matches('/').to_string())
            else {
                continue;
            };
            if !self.patterns.iter().any(|p| glob_match(p, &name)) {
                continue;
            }
            let state = format!(
                "{}|{}",
                c.state.map(|s| s.to_string()).unwrap_or_default(),
                c.status.unwrap_or_default()
            );
            matched.push((id, name, state));
        }
        let to_inspect: Vec<(String, String, String)> = matched
            .iter()
            .filter(|(id, name, state)| {
                full || dirty.contains(name)
                    || self.cache.get(id).is_none_or(|(s, _, _)| s != state)
            })
            .cloned()
            .collect();
        let results: Vec<(
            String,
            String,
            String,
            Result<ContainerInspectResponse, DockerError>,
        )> = futures_util::stream::iter(to_inspect)
            .map(|(id, name, state)| {
                let client = client.clone();
                async move {
                    let r = client.inspect_container(&id, None).await;
                    (id, name, state, r)
                }
            })
            .buffer_unordered(INSPECT_PARALLEL)
            .collect()
            .await;
        let now = Instant::now();
        for (id, name, state, r) in results {
            let (reading, word) = match r {
                Ok(c) => {
                    let word = observe(self.history.entry(id.clone()).or_default(), now, &c);
                    (judge(&name, &c), word)
                }
                // Removed between the list and the inspect: it is gone.
                Err(e) if is_not_found(&e) => {
                    self.cache.remove(&id);
                    self.history.remove(&id);
                    continue;
                }
                Err(e @ DockerError::DockerResponseServerError { .. }) => (
                    Reading::Unknown(format!(
                        "Docker engine at {} could not inspect container {name}: {}",
                        shared.conn.host(),
                        error_text(&e)
                    )),
                    String::new(),
                ),
                Err(e) => return Reading::Unknown(shared.conn.unreachable(&e)),
            };
            self.cache.insert(id, (state, reading, word));
        }
        let ids: HashSet<&String> = matched.iter().map(|(id, _, _)| id).collect();
        self.cache.retain(|id, _| ids.contains(id));
        self.history.retain(|id, _| ids.contains(id));
        let mut members = BTreeMap::new();
        for (id, name, _) in &matched {
            if let Some((_, r, word)) = self.cache.get(id) {
                // Judged again at each reading: a loop ends with time, not with an inspect.
                let history = self.history.entry(id.clone()).or_default();
                members.insert(
                    container_check(name),
                    mark(name, r.clone(), word, history, now),
                );
            }
        }
        Reading::Group(members)
    }

    fn wake(&self) -> Option<Arc<Notify>> {
        Some(self.wake.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn an_engine_that_is_not_there_is_unknown_with_the_address() {
        let ctx = Context {
            docker_host: Some("unix:///nonexistent/docker.sock".into()),
            ..Default::default()
        };
        let mut p = ContainerProbe::new("web".into(), &ctx);
        let Reading::Unknown(why) = p.read().await else {
            panic!()
        };
        assert!(
            why.contains("Docker engine at unix:///nonexistent/docker.sock unreachable"),
            "{why}"
        );
        let mut g = ContainersProbe::new(vec!["*".into()], &ctx);
        assert!(
            matches!(g.read().await, Reading::Unknown(w) if w.contains("/nonexistent/docker.sock"))
        );
    }
}
