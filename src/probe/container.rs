//! `container` and `containers`: Docker containers over the Engine API.
//!
//! One [`Engine`] per Docker host is shared by every probe of the process. It owns one
//! `/events` stream, driven by a background task from the moment the engine is made (bollard's
//! stream is lazy: nothing is subscribed until it is polled), and wakes the probes whose
//! containers an event concerns. The probes themselves always read the truth with an inspect
//! (or a list and inspects): an event only says *when* to look, so no state is ever reported
//! from memory. When dockerd is unreachable, readings are `unknown` and the events task
//! reconnects with back-off; when it answers again every probe is woken and reads afresh.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::{Arc, Mutex, OnceLock, Weak};
use std::time::Duration;

use async_trait::async_trait;
use bollard::errors::Error as DockerError;
use bollard::models::{
    ContainerInspectResponse, ContainerStateStatusEnum, HealthStatusEnum, RestartPolicyNameEnum,
};
use bollard::query_parameters::{EventsOptionsBuilder, ListContainersOptionsBuilder};
use bollard::Docker;
use futures_util::StreamExt;
use tokio::sync::Notify;
use tracing::{debug, info};

use super::{glob_match, Context, MetricSpec, Metrics, Probe, Reading, Unit};
use crate::health::Status;

/// Metrics of the `container` and `containers` probes.
pub const METRICS: &[MetricSpec] = &[
    MetricSpec {
        name: "restart_count",
        unit: Unit::Count,
        help: "RestartCount: restarts by Docker's restart policy",
        optional: false,
    },
    MetricSpec {
        name: "exit_code",
        unit: Unit::Number,
        help: "ExitCode of the last run (0 while running)",
        optional: false,
    },
    MetricSpec {
        name: "oom_killed",
        unit: Unit::Number,
        help: "1 when the kernel OOM-killed the container's last run, else 0",
        optional: false,
    },
    MetricSpec {
        name: "running",
        unit: Unit::Number,
        help: "1 while the container runs (paused included), else 0",
        optional: false,
    },
    MetricSpec {
        name: "health_failing_streak",
        unit: Unit::Count,
        help: "consecutive failed health checks (only for containers with a HEALTHCHECK)",
        optional: true,
    },
];

/// The Docker host used when `[docker] host` is not set.
pub const DEFAULT_HOST: &str = "unix:///var/run/docker.sock";

/// Timeout of one Engine API request (connect and response headers).
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
/// Back-off of the events stream's reconnection: first and longest wait.
const BACKOFF_MIN: Duration = Duration::from_millis(200);
const BACKOFF_MAX: Duration = Duration::from_secs(2);
/// How many inspects a `containers` read runs at once.
const INSPECT_PARALLEL: usize = 16;

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

// ---------------------------------------------------------------------------------------
// The shared engine
// ---------------------------------------------------------------------------------------

/// Which containers a watcher cares about.
enum Interest {
    Name(String),
    Globs(Vec<String>),
}

impl Interest {
    fn concerns(&self, name: &str) -> bool {
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
struct Shared {
    host: String,
    client: tokio::sync::Mutex<Option<Docker>>,
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
struct Death {
    seq: u64,
    exit_code: i64,
    oom: bool,
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

    fn death(&self, name: &str) -> Option<Death> {
        self.deaths
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(name)
            .copied()
    }
}

impl Shared {
    /// A client whose API version is negotiated with the engine; made on first use and
    /// kept (each request opens its own connection, so a restarted dockerd is reached again).
    async fn client(&self) -> Result<Docker, String> {
        let mut slot = self.client.lock().await;
        if let Some(c) = slot.as_ref() {
            return Ok(c.clone());
        }
        let c = connect(&self.host)
            .map_err(|e| self.unreachable(&e))?
            .negotiate_version()
            .await
            .map_err(|e| self.unreachable(&e))?;
        info!(
            vigil_event = "docker",
            "connected to the Docker engine at {} (API {})",
            self.host,
            c.client_version()
        );
        *slot = Some(c.clone());
        Ok(c)
    }

    fn unreachable(&self, e: &DockerError) -> String {
        format!(
            "Docker engine at {} unreachable: {} (is dockerd running? `[docker] host` sets the address)",
            self.host,
            error_text(e)
        )
    }

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
    shared: Arc<Shared>,
    events: tokio::task::AbortHandle,
}

impl Drop for Engine {
    fn drop(&mut self) {
        self.events.abort();
    }
}

/// Live engines by host. Weak: when the last probe of a host goes (a reload that removes
/// every container check), its events stream stops too.
fn engines() -> &'static Mutex<HashMap<String, Weak<Engine>>> {
    static ENGINES: OnceLock<Mutex<HashMap<String, Weak<Engine>>>> = OnceLock::new();
    ENGINES.get_or_init(Default::default)
}

impl Engine {
    /// The engine for `host`, made (and its events task started) on first use. Must be
    /// called inside the tokio runtime.
    pub fn get(host: &str) -> Arc<Engine> {
        let mut map = engines().lock().unwrap_or_else(|p| p.into_inner());
        if let Some(e) = map.get(host).and_then(Weak::upgrade) {
            return e;
        }
        let shared = Arc::new(Shared {
            host: host.to_string(),
            client: tokio::sync::Mutex::new(None),
            watchers: Mutex::new(Vec::new()),
            deaths: Mutex::new(HashMap::new()),
            ooms: Mutex::new(HashSet::new()),
        });
        let events = tokio::spawn(events_task(shared.clone())).abort_handle();
        let e = Arc::new(Engine { shared, events });
        map.retain(|_, w| w.strong_count() > 0);
        map.insert(host.to_string(), Arc::downgrade(&e));
        e
    }

    fn watch(&self, interest: Interest) -> (Arc<Notify>, Arc<Mutex<HashSet<String>>>) {
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

/// A Docker client for `host` (`[docker] host`; the standard socket when `None`), as the
/// probes use it. Actuators call this too.
pub(crate) fn client_for(host: Option<&str>) -> Result<Docker, String> {
    let host = host.filter(|h| !h.is_empty()).unwrap_or(DEFAULT_HOST);
    connect(host).map_err(|e| format!("Docker engine at {host}: {}", error_text(&e)))
}

fn connect(host: &str) -> Result<Docker, DockerError> {
    let d = if host.starts_with('/') {
        Docker::connect_with_unix(
            host,
            REQUEST_TIMEOUT.as_secs(),
            bollard::API_DEFAULT_VERSION,
        )?
    } else {
        Docker::connect_with_host(host)?
    };
    Ok(d.with_timeout(REQUEST_TIMEOUT))
}

/// Follows `/events` for as long as the engine lives, reconnecting with back-off. Every
/// change of connectivity wakes every probe, so checks turn unknown when dockerd goes and
/// are read afresh (never from remembered state) as soon as it answers again.
async fn events_task(shared: Arc<Shared>) {
    let mut backoff = BACKOFF_MIN;
    let mut was_up = false;
    loop {
        let client = match shared.client().await {
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
                            "following container events of the Docker engine at {}", shared.host
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
                    debug!("docker events stream of {} failed: {e}", shared.host);
                    break;
                }
                Some(None) => {
                    debug!("docker events stream of {} ended", shared.host);
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

fn error_text(e: &DockerError) -> String {
    match e {
        DockerError::DockerResponseServerError {
            status_code,
            message,
        } => format!("HTTP {status_code}: {message}"),
        other => {
            let mut s = other.to_string();
            let mut src = std::error::Error::source(other);
            while let Some(inner) = src {
                let t = inner.to_string();
                if !s.contains(&t) {
                    s.push_str(": ");
                    s.push_str(&t);
                }
                src = inner.source();
            }
            s
        }
    }
}

fn is_not_found(e: &DockerError) -> bool {
    matches!(
        e,
        DockerError::DockerResponseServerError {
            status_code: 404,
            ..
        }
    )
}

fn host_of(ctx: &Context) -> String {
    ctx.docker_host
        .clone()
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| DEFAULT_HOST.to_string())
}

// ---------------------------------------------------------------------------------------
// Judging one container
// ---------------------------------------------------------------------------------------

/// Turns an inspect into a reading: status, one line of detail, metrics.
pub fn judge(name: &str, c: &ContainerInspectResponse) -> Reading {
    let state = c.state.clone().unwrap_or_default();
    let status = state.status.unwrap_or(ContainerStateStatusEnum::EMPTY);
    let exit_code = state.exit_code.unwrap_or(0);
    let oom = state.oom_killed.unwrap_or(false);
    let restarts = c.restart_count.unwrap_or(0);
    let health = state.health.as_ref();
    let health_status = health
        .and_then(|h| h.status)
        .filter(|s| !matches!(s, HealthStatusEnum::EMPTY | HealthStatusEnum::NONE));

    let mut m = Metrics::new();
    m.insert("restart_count".into(), restarts as f64);
    m.insert("exit_code".into(), exit_code as f64);
    m.insert("oom_killed".into(), if oom { 1.0 } else { 0.0 });
    let running = state.running.unwrap_or(false);
    m.insert("running".into(), if running { 1.0 } else { 0.0 });
    if let Some(streak) = health.and_then(|h| h.failing_streak) {
        if health_status.is_some() {
            m.insert("health_failing_streak".into(), streak as f64);
        }
    }

    let exit_text = || {
        let mut s = format!("code {exit_code}");
        if oom {
            s.push_str(", OOM-killed");
        }
        s
    };
    let (st, what) = match status {
        ContainerStateStatusEnum::RUNNING => match health_status {
            Some(HealthStatusEnum::UNHEALTHY) => {
                let last = health
                    .and_then(|h| h.log.as_ref())
                    .and_then(|l| l.last())
                    .and_then(|r| r.output.as_deref())
                    .map(|o| o.trim())
                    .filter(|o| !o.is_empty())
                    .map(|o| format!(" (last check: {})", truncate(o, 120)))
                    .unwrap_or_default();
                (Status::Crit, format!("running, unhealthy{last}"))
            }
            Some(HealthStatusEnum::STARTING) => (Status::Warn, "running, health starting".into()),
            Some(HealthStatusEnum::HEALTHY) => (Status::Ok, "running, healthy".into()),
            _ => (Status::Ok, "running".into()),
        },
        ContainerStateStatusEnum::PAUSED => (Status::Warn, "paused".into()),
        ContainerStateStatusEnum::RESTARTING => (
            Status::Warn,
            format!("restarting (last exit {})", exit_text()),
        ),
        ContainerStateStatusEnum::CREATED => (Status::Warn, "created, not started".into()),
        ContainerStateStatusEnum::EXITED => (Status::Crit, format!("exited ({})", exit_text())),
        ContainerStateStatusEnum::DEAD => (Status::Crit, format!("dead ({})", exit_text())),
        ContainerStateStatusEnum::REMOVING => (Status::Warn, "being removed".into()),
        ContainerStateStatusEnum::STOPPING => (Status::Warn, "stopping".into()),
        ContainerStateStatusEnum::EMPTY => (Status::Unknown, "no state reported".into()),
    };
    // An OOM kill of a process inside a running container is worth saying too.
    let st = if oom && st == Status::Ok {
        Status::Warn
    } else {
        st
    };
    let mut detail = format!("{name}: {what}");
    if oom && !what.contains("OOM") {
        detail.push_str(", OOM-killed");
    }
    match restarts {
        0 => {}
        1 => detail.push_str(", 1 restart"),
        n => detail.push_str(&format!(", {n} restarts")),
    }
    if st == Status::Unknown {
        return Reading::Unknown(format!(
            "container {name}: the Docker engine reported no state"
        ));
    }
    Reading::Value {
        status: Some(st),
        detail,
        metrics: m,
    }
}

fn truncate(s: &str, max: usize) -> String {
    let one_line = s.replace('\n', " ");
    if one_line.chars().count() <= max {
        one_line
    } else {
        let t: String = one_line.chars().take(max).collect();
        format!("{t}…")
    }
}

fn not_found(name: &str) -> Reading {
    Reading::Value {
        status: Some(Status::Crit),
        detail: format!("container {name} does not exist (`docker ps -a` lists the containers)"),
        metrics: Metrics::new(),
    }
}

// ---------------------------------------------------------------------------------------
// The probes
// ---------------------------------------------------------------------------------------

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
}

impl ContainerProbe {
    /// Builds the probe and registers it for the container's events.
    pub fn new(container: String, ctx: &Context) -> Self {
        let name = container.trim_start_matches('/').to_string();
        let engine = Engine::get(&host_of(ctx));
        let (wake, dirty) = engine.watch(Interest::Name(name.clone()));
        ContainerProbe {
            name,
            engine,
            wake,
            dirty,
            last_running: None,
            reported_death: 0,
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
        let client = match shared.client().await {
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
                judge(&self.name, &c)
            }
            Err(e) if is_not_found(&e) => not_found(&self.name),
            Err(e @ DockerError::DockerResponseServerError { .. }) => Reading::Unknown(format!(
                "Docker engine at {} could not inspect container {}: {}",
                shared.host,
                self.name,
                error_text(&e)
            )),
            Err(e) => Reading::Unknown(shared.unreachable(&e)),
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
    /// Last reading per container id, and the list state it was taken in.
    cache: HashMap<String, (String, Reading)>,
}

impl ContainersProbe {
    /// Builds the probe and registers it for the events of matching containers.
    pub fn new(patterns: Vec<String>, ctx: &Context) -> Self {
        let engine = Engine::get(&host_of(ctx));
        let (wake, dirty) = engine.watch(Interest::Globs(patterns.clone()));
        ContainersProbe {
            patterns,
            engine,
            wake,
            dirty,
            cache: HashMap::new(),
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
        let client = match shared.client().await {
            Ok(c) => c,
            Err(why) => return Reading::Unknown(why),
        };
        let opts = ListContainersOptionsBuilder::default().all(true).build();
        let list = match client.list_containers(Some(opts)).await {
            Ok(l) => l,
            Err(e @ DockerError::DockerResponseServerError { .. }) => {
                return Reading::Unknown(format!(
                    "Docker engine at {} could not list containers: {}",
                    shared.host,
                    error_text(&e)
                ))
            }
            Err(e) => return Reading::Unknown(shared.unreachable(&e)),
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
                full || dirty.contains(name) || self.cache.get(id).is_none_or(|(s, _)| s != state)
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
        for (id, name, state, r) in results {
            let reading = match r {
                Ok(c) => judge(&name, &c),
                // Removed between the list and the inspect: it is gone.
                Err(e) if is_not_found(&e) => {
                    self.cache.remove(&id);
                    continue;
                }
                Err(e @ DockerError::DockerResponseServerError { .. }) => {
                    Reading::Unknown(format!(
                        "Docker engine at {} could not inspect container {name}: {}",
                        shared.host,
                        error_text(&e)
                    ))
                }
                Err(e) => return Reading::Unknown(shared.unreachable(&e)),
            };
            self.cache.insert(id, (state, reading));
        }
        let ids: HashSet<&String> = matched.iter().map(|(id, _, _)| id).collect();
        self.cache.retain(|id, _| ids.contains(id));
        let mut members = BTreeMap::new();
        for (id, name, _) in &matched {
            if let Some((_, r)) = self.cache.get(id) {
                members.insert(format!("container:{name}"), r.clone());
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
    use bollard::models::{ContainerState, Health};

    fn inspect(
        status: ContainerStateStatusEnum,
        exit: i64,
        oom: bool,
        health: Option<HealthStatusEnum>,
        restarts: i64,
    ) -> ContainerInspectResponse {
        ContainerInspectResponse {
            restart_count: Some(restarts),
            state: Some(ContainerState {
                status: Some(status),
                running: Some(status == ContainerStateStatusEnum::RUNNING),
                exit_code: Some(exit),
                oom_killed: Some(oom),
                health: health.map(|h| Health {
                    status: Some(h),
                    failing_streak: Some(if h == HealthStatusEnum::UNHEALTHY {
                        3
                    } else {
                        0
                    }),
                    log: None,
                }),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    fn status_detail(r: &Reading) -> (Status, String) {
        match r {
            Reading::Value { status, detail, .. } => (status.unwrap(), detail.clone()),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn states_map_to_statuses() {
        use ContainerStateStatusEnum as S;
        use HealthStatusEnum as H;
        let cases = [
            (
                inspect(S::RUNNING, 0, false, None, 0),
                Status::Ok,
                "web: running",
            ),
            (
                inspect(S::RUNNING, 0, false, Some(H::HEALTHY), 0),
                Status::Ok,
                "web: running, healthy",
            ),
            (
                inspect(S::RUNNING, 0, false, Some(H::STARTING), 0),
                Status::Warn,
                "web: running, health starting",
            ),
            (
                inspect(S::RUNNING, 0, false, Some(H::UNHEALTHY), 0),
                Status::Crit,
                "web: running, unhealthy",
            ),
            (
                inspect(S::EXITED, 137, true, None, 3),
                Status::Crit,
                "web: exited (code 137, OOM-killed), 3 restarts",
            ),
            (
                inspect(S::EXITED, 0, false, None, 1),
                Status::Crit,
                "web: exited (code 0), 1 restart",
            ),
            (
                inspect(S::DEAD, 1, false, None, 0),
                Status::Crit,
                "web: dead (code 1)",
            ),
            (
                inspect(S::PAUSED, 0, false, None, 0),
                Status::Warn,
                "web: paused",
            ),
            (
                inspect(S::RESTARTING, 1, false, None, 2),
                Status::Warn,
                "web: restarting (last exit code 1), 2 restarts",
            ),
            (
                inspect(S::CREATED, 0, false, None, 0),
                Status::Warn,
                "web: created, not started",
            ),
        ];
        for (c, want, detail) in cases {
            let r = judge("web", &c);
            assert_eq!(status_detail(&r), (want, detail.to_string()));
        }
    }

    #[test]
    fn metrics_are_reported_and_declared() {
        let r = judge(
            "db",
            &inspect(
                ContainerStateStatusEnum::RUNNING,
                0,
                false,
                Some(HealthStatusEnum::UNHEALTHY),
                4,
            ),
        );
        let Reading::Value { metrics, .. } = r else {
            panic!()
        };
        assert_eq!(metrics["restart_count"], 4.0);
        assert_eq!(metrics["exit_code"], 0.0);
        assert_eq!(metrics["oom_killed"], 0.0);
        assert_eq!(metrics["running"], 1.0);
        assert_eq!(metrics["health_failing_streak"], 3.0);
        for k in metrics.keys() {
            assert!(METRICS.iter().any(|m| m.name == k), "{k} not in METRICS");
        }
        // Without a healthcheck the optional metric is absent.
        let Reading::Value { metrics, .. } = judge(
            "db",
            &inspect(ContainerStateStatusEnum::EXITED, 2, false, None, 0),
        ) else {
            panic!()
        };
        assert!(!metrics.contains_key("health_failing_streak"));
        assert_eq!(metrics["running"], 0.0);
        assert_eq!(metrics["exit_code"], 2.0);
    }

    #[test]
    fn interests_match_names_and_globs() {
        assert!(Interest::Name("a".into()).concerns("a"));
        assert!(!Interest::Name("a".into()).concerns("ab"));
        let g = Interest::Globs(vec!["app-*".into(), "db".into()]);
        assert!(g.concerns("app-1") && g.concerns("db") && !g.concerns("dbx"));
    }

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
