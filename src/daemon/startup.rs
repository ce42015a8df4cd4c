//! Start-up: settings and policies, the heartbeat listeners, the bus name, what the store
//! remembers from the last run; then the loop, and the drain when it ends.

use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::sync::{mpsc, watch};
use tokio_util::sync::CancellationToken;
use tracing::{error, info, warn};

use super::bus;
use super::config::{self, Config, DaemonError, Options};
use super::event_loop::{Signals, RELOAD_TIMEOUT};
use super::maintenance::{MAINTENANCE_SETTING, TUNNEL_SETTING};
use super::probes::Probes;
use super::state::{
    id_floor, ActionDone, Checks, Daemon, Io, Outbox, RebootMark, Reloads, Rules,
    INCIDENT_IDS_SETTING, INCIDENT_ID_BLOCK, REBOOTS_SETTING,
};
use super::update::{self, UpdateLink};
use super::update_plan::RunEnv;
use crate::config::{Settings, DEFAULT_LISTEN};
use crate::control::{Command, Pulse};
use crate::core::engine::{Engine, Globals};
use crate::core::maintenance::Maintenance;
use crate::core::status::Snapshot;
use crate::core::time::{micros, Now};
use crate::probe::Connections;
use crate::store::{Store, DB_FILE};
use crate::surface::{http, notify, push};
use crate::sys::clock;

/// Runs vigild until SIGTERM or SIGINT.
pub async fn run(opts: Options) -> Result<(), DaemonError> {
    let started = clock::now();
    let started_at = started.wall;
    // A bad file at start must not leave an unattended box without its watchdog: vigild
    // runs on defaults and built-in checks and reports `critical` with the reason. The
    // settings come first (they say where to listen); the heartbeat is up before any
    // policy is read, so a policy directory that hangs cannot keep it down.
    let mut errors = Vec::new();
    let o = opts.clone();
    let settings = blocking(move || config::load_settings(&o), "the settings")
        .await
        .and_then(|r| r)
        .unwrap_or_else(|e| {
            errors.push(e);
            crate::config::Settings::default()
        });
    let state_dir = crate::config::state_dir(opts.state_dir.as_deref(), &settings);
    if let Err(e) = std::fs::create_dir_all(&state_dir) {
        // The store falls back to memory and says so; watching goes on.
        warn!(
            vigil_event = "store",
            "cannot create state directory {}: {e}",
            state_dir.display()
        );
    }
    let store = Store::spawn(state_dir.join(DB_FILE));
    let mut first = Snapshot::starting(started_at);
    first.started_mono = started.mono;
    let (snap_tx, snap_rx) = watch::channel(Arc::new(first));
    let (cmd_tx, cmd_rx) = mpsc::channel::<Command>(64);
    let shutdown = CancellationToken::new();

    // HTTP first: systemd's sockets when activated, else the configured addresses.
    let listeners = listeners(&opts, &settings).await?;
    // The heartbeat turns critical when the loop has been silent longer than the watchdog
    // allows (or STALL_AFTER_DEFAULT without one).
    let stall_after = sd_notify::watchdog_enabled()
        .unwrap_or(STALL_AFTER_DEFAULT)
        .max(STALL_AFTER_MIN);
    let pulse = Arc::new(Pulse::new(started.mono, stall_after));
    // The status page's setting takes effect at start, like the listeners'.
    tokio::spawn(http::serve(
        listeners,
        snap_rx.clone(),
        pulse.clone(),
        settings.http.status_page,
        shutdown.clone(),
    ));
    // The push heartbeat and the sensor push: their own tasks, so an endpoint that is down
    // or hangs delays nothing else. Their settings take effect at start.
    let push = push::start(
        push::PushSetup::from_settings(&settings, &state_dir),
        snap_rx.clone(),
        shutdown.clone(),
    );

    // The update runner, before the bus (which publishes its progress): it finishes a run
    // vigild died in before anything else is asked of it.
    let env = RunEnv::new(
        &settings,
        &state_dir,
        Arc::new(crate::action::Actuators::from_settings(&settings)),
    );
    let update = match update::start(env.clone(), snap_rx.clone()).await {
        Ok(link) => link,
        Err(why) => {
            error!(vigil_event = "update", "updates are unavailable: {why}");
            UpdateLink::unavailable(why, env)
        }
    };

    let outbox = Arc::new(Outbox::default());
    bus::start(bus::Publisher {
        address: opts.bus.clone(),
        snap_rx: snap_rx.clone(),
        cmd_tx: cmd_tx.clone(),
        store: store.clone(),
        outbox: outbox.clone(),
        update: update.doc.clone(),
    })
    .await?;

    let (o, st) = (opts.clone(), settings.clone());
    let policies = match blocking(
        move || config::load_policies_lenient(&o, &st),
        "the policies",
    )
    .await
    {
        Ok((set, error)) => {
            errors.extend(error);
            set
        }
        Err(e) => {
            errors.push(e);
            crate::policy::builtin(&crate::policy::HostFacts::default())
        }
    };
    let config_error = (!errors.is_empty()).then(|| errors.join("\n"));
    if let Some(e) = &config_error {
        error!(
            vigil_event = "config-error",
            "configuration refused, running on defaults and built-in checks where it is bad:\n{e}"
        );
    }

    let (done_tx, done_rx) = mpsc::unbounded_channel::<ActionDone>();
    let cfg = Config::new(&settings, Arc::new(Connections::default()));
    let mut daemon = Daemon {
        opts,
        rules: Rules {
            engine: Engine::new(Vec::new(), Globals::default()),
            maintenance: None,
            pending: Vec::new(),
            ids_reserved_until: 0,
            reboots: Vec::new(),
        },
        cfg,
        checks: Checks::default(),
        io: Io {
            store,
            snap_tx,
            outbox,
            pulse,
            done_tx,
            probes: Probes::new(),
            update,
            state_dir,
            push,
        },
        reloads: Reloads::default(),
        started_at,
        started_mono: started.mono,
        boot: clock::boot_id(),
        status_line: String::new(),
    };
    daemon.restore().await;
    let signals = Signals::new()?;
    let now = clock::now();
    let transitions = daemon.install(policies, config_error, now.wall);
    daemon.changed(transitions, now);
    notify::ready(&daemon.status_line);
    info!(
        vigil_event = "ready",
        "vigild {} ready: {}",
        crate::VERSION,
        daemon.status_line
    );

    let result = daemon.run_loop(cmd_rx, signals, done_rx).await;
    notify::stopping();
    shutdown.cancel();
    daemon.io.probes.stop();
    // A clean stop with every record on disk: the next run goes on from the next id, not
    // from the end of the reserved block (which is there for a run that could not write).
    let next = daemon.rules.engine.next_incident();
    if daemon
        .io
        .store
        .confirm(Duration::from_secs(5))
        .await
        .is_ok()
    {
        daemon.io.store.write(id_floor(next));
    }
    // Wait for every queued write to reach SQLite.
    let _ = daemon.io.store.confirm(Duration::from_secs(5)).await;
    info!(vigil_event = "stopped", "vigild stopped");
    result
}

/// Runs blocking start-up work (`what` it reads) off the runtime, bounded in time.
async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> T + Send + 'static,
    what: &str,
) -> Result<T, String> {
    match tokio::time::timeout(RELOAD_TIMEOUT, tokio::task::spawn_blocking(f)).await {
        Ok(Ok(v)) => Ok(v),
        Ok(Err(e)) => Err(format!("reading {what} failed: {e}")),
        Err(_) => Err(format!(
            "reading {what} did not finish within {} s (a hung file system?)",
            RELOAD_TIMEOUT.as_secs()
        )),
    }
}

/// The heartbeat's listeners: systemd's sockets when activated, else `--listen`, else
/// `[http] listen`, else the default address.
async fn listeners(opts: &Options, settings: &Settings) -> Result<Vec<TcpListener>, DaemonError> {
    if let Ok(l) = http::systemd_listeners() {
        if !l.is_empty() {
            info!(
                vigil_event = "http",
                "serving the heartbeat on {} socket(s) from systemd",
                l.len()
            );
            return l
                .into_iter()
                .map(TcpListener::from_std)
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| DaemonError::Startup(format!("socket from systemd: {e}")));
        }
    }
    let addrs = if !opts.listen.is_empty() {
        opts.listen.clone()
    } else {
        settings
            .listen_addrs()
            .unwrap_or_else(|| vec![DEFAULT_LISTEN.parse().expect("the default address parses")])
    };
    let l = http::bind(&addrs).await.map_err(|e| {
        DaemonError::Startup(format!(
            "{e} — is another vigild running? choose another with --listen"
        ))
    })?;
    let shown: Vec<String> = l
        .iter()
        .filter_map(|l| l.local_addr().ok())
        .map(|a| a.to_string())
        .collect();
    info!(
        vigil_event = "http",
        "serving the heartbeat on {}",
        shown.join(", ")
    );
    Ok(l)
}

/// How long the loop may be silent before the heartbeat says critical, without a watchdog.
const STALL_AFTER_DEFAULT: Duration = Duration::from_secs(10);
/// Never less than this (a busy box may take a moment between two turns).
const STALL_AFTER_MIN: Duration = Duration::from_secs(2);

impl Daemon {
    /// Reserves the ids from `next` on: on disk before any is used.
    async fn reserve_incident_ids(&mut self, next: u64) -> Result<(), String> {
        let until = next + INCIDENT_ID_BLOCK;
        self.io.store.write(id_floor(until));
        self.rules.ids_reserved_until = until;
        self.io.store.confirm(Duration::from_secs(5)).await
    }

    /// What the store remembers from the last run: incident ids go on, maintenance
    /// continues, and reboots count against the global limit.
    async fn restore(&mut self) {
        let store = self.io.store.clone();
        let start = clock::now_micros();
        let next_incident = store
            .call(move |db| {
                if let Ok(n) = db.close_interrupted(start) {
                    if n > 0 {
                        info!(
                            vigil_event = "incident-interrupted",
                            "{n} incident(s) of the previous run marked interrupted"
                        );
                    }
                }
                db.next_incident_id()
            })
            .await
            .and_then(|r| r.ok())
            .unwrap_or(1);
        // Ids stay unique also for incidents that a full disk kept from being stored: ids
        // are handed out only from a block reserved on disk first.
        let reserved = store
            .call(|db| db.setting(INCIDENT_IDS_SETTING))
            .await
            .and_then(|r| r.ok())
            .flatten()
            .and_then(|v| v.parse::<u64>().ok())
            .unwrap_or(0);
        let mut next = next_incident.max(reserved);
        if self.reserve_incident_ids(next).await.is_err() {
            // Nothing can be reserved: take ids from the clock (seconds since the epoch),
            // far above any the store has seen, rather than risk giving one out twice.
            next = next.max(clock::now_micros() / 1_000_000);
            warn!(
                vigil_event = "store",
                "cannot reserve incident ids in the store; ids go on from {next}"
            );
        }
        self.rules.engine.set_next_incident(next);
        // Maintenance survives a restart of vigild, re-anchored on this run's clocks; a
        // tunnel of a window that ended meanwhile comes down.
        let setting = |key: &'static str| {
            let store = store.clone();
            async move {
                store
                    .call(move |db| db.setting(key))
                    .await
                    .and_then(|r| r.ok())
                    .flatten()
                    .filter(|v| !v.is_empty())
            }
        };
        let saved = setting(MAINTENANCE_SETTING)
            .await
            .and_then(|t| serde_json::from_str::<Maintenance>(&t).ok());
        let tunnel_up = setting(TUNNEL_SETTING).await;
        let now = clock::now();
        self.resume_maintenance(saved, tunnel_up, now);
        self.restore_reboots(now).await;
    }

    /// Reboots of earlier runs count against the global limit: it must hold across them.
    /// Each is placed on this run's monotonic clock: exactly when it was tried on this
    /// boot; by the wall clock when on another (a time in the future counts as now).
    async fn restore_reboots(&mut self, now: Now) {
        let store = self.io.store.clone();
        let window = self.cfg.globals.reboot_limit.window;
        let marks: Option<Vec<RebootMark>> = store
            .call(|db| db.setting(REBOOTS_SETTING))
            .await
            .and_then(|r| r.ok())
            .flatten()
            .and_then(|t| serde_json::from_str(&t).ok());
        let times: Vec<u64> = match marks {
            Some(marks) => {
                let times = marks
                    .iter()
                    .map(|m| match (&m.boot, &self.boot) {
                        (Some(a), Some(b)) if a == b => m.mono.min(now.mono),
                        _ => now.mono_of(m.wall),
                    })
                    .collect();
                self.rules.reboots = marks;
                times
            }
            // A store from before the marks: the recorded reboot actions, by wall time.
            None => {
                let since = now.wall.saturating_sub(micros(window));
                match store.call(move |db| db.action_times("reboot", since)).await {
                    Some(Ok(times)) => times.into_iter().map(|t| now.mono_of(t)).collect(),
                    _ => Vec::new(),
                }
            }
        };
        let recent: Vec<u64> = times
            .into_iter()
            .filter(|t| now.mono.saturating_sub(*t) < micros(window))
            .collect();
        if !recent.is_empty() {
            info!(
                vigil_event = "reboot-limit",
                "{} reboot(s) by vigil in the last {}",
                recent.len(),
                humantime::format_duration(window)
            );
        }
        let mut sorted = recent;
        sorted.sort_unstable();
        self.rules.engine.restore_reboots(sorted);
    }
}
