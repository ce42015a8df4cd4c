//! The daemon: one loop owns the health model. Probe tasks, signals and D-Bus calls send
//! events into it; surfaces read the snapshots it publishes. The loop that evaluates is
//! the loop that pings the watchdog, so a stuck loop gets vigild restarted by systemd.

mod probes;

use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use tokio::signal::unix::{signal, SignalKind};
use tokio::sync::{mpsc, oneshot, watch};
use tokio_util::sync::CancellationToken;
use tracing::{error, info, warn};

use crate::config::{self, Settings};
use crate::engine::{Decision, Engine, Globals, Limit};
use crate::health::{CheckState, HealthModel, Status, Transition};
use crate::policy::{self, CheckSpec, PolicySet};
use crate::probe::{Context, Reading};
use crate::store::{Store, DB_FILE};
use crate::surface::dbus::DbusSurface;
use crate::surface::{http, notify, Event, Snapshot};
use probes::{ProbeResult, Probes};

/// The check that reports a bad settings file or policy set at start.
pub const CONFIG_CHECK: &str = "vigil:config";

/// A request from a surface to the loop.
pub enum Command {
    /// Re-read settings and policies. Answers a summary or every error.
    Reload {
        reply: oneshot::Sender<Result<String, String>>,
    },
    /// Probe one check now; answers its state after that reading.
    RunCheck {
        name: String,
        reply: oneshot::Sender<Result<CheckState, String>>,
    },
    /// Maintenance on for `seconds`, or off. Answers a one-line summary.
    SetMaintenance {
        on: bool,
        seconds: u64,
        reason: String,
        reply: oneshot::Sender<Result<String, String>>,
    },
}

/// Longest maintenance window one call may set.
pub const MAINTENANCE_MAX_SECS: u64 = 7 * 24 * 3600;

/// Maintenance mode: actions suspended, observing goes on; ends by itself.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Maintenance {
    pub since: u64,
    pub until: u64,
    pub reason: String,
}

/// How vigild was started.
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// `--config`; `None` means the default path, which may be absent.
    pub config: Option<PathBuf>,
    /// `--policies`, in order; empty means the vendor and admin directories.
    pub policies: Vec<PathBuf>,
    pub state_dir: Option<PathBuf>,
    pub bus: Option<String>,
    /// `--listen`; overrides the settings file.
    pub listen: Vec<SocketAddr>,
}

/// Why the daemon could not run.
#[derive(Debug, thiserror::Error)]
pub enum DaemonError {
    #[error("{0}")]
    Startup(String),
}

impl DaemonError {
    /// The process exit status.
    pub fn exit_code(&self) -> i32 {
        match self {
            DaemonError::Startup(_) => 1,
        }
    }
}

/// One line for a check's detail from a (possibly long) list of errors.
fn config_detail(errors: &str) -> String {
    let mut lines = errors.lines();
    let first = lines.next().unwrap_or("bad configuration");
    let more = lines.count();
    let tail = if more > 0 {
        format!(" (and {more} more)")
    } else {
        String::new()
    };
    format!(
        "running on built-in checks because the configuration is bad: {first}{tail}; \
         fix it (vigilctl policy check) and reload"
    )
}

fn load_settings(opts: &Options) -> Result<Settings, String> {
    let (path, explicit) = match &opts.config {
        Some(p) => (p.clone(), true),
        None => (PathBuf::from(config::DEFAULT_CONFIG), false),
    };
    Settings::load(&path, explicit).map_err(|d| d.to_string())
}

fn policy_dirs(opts: &Options) -> Vec<PathBuf> {
    if opts.policies.is_empty() {
        vec![
            PathBuf::from(policy::VENDOR_DIR),
            PathBuf::from(policy::ADMIN_DIR),
        ]
    } else {
        opts.policies.clone()
    }
}

/// What the probes need from the settings.
fn probe_context(settings: &Settings) -> Context {
    Context {
        roots: settings.host_roots(),
        docker_host: settings.docker.host.clone(),
        systemd_bus: None,
    }
}

fn load_policies(opts: &Options, settings: &Settings) -> Result<PolicySet, String> {
    policy::load_dirs(
        &policy_dirs(opts),
        &settings.host_roots(),
        &settings.load_context(),
    )
    .map_err(|d| d.to_string())
}

/// Runs vigild until SIGTERM or SIGINT.
pub async fn run(opts: Options) -> Result<(), DaemonError> {
    let started_at = crate::now_micros();
    // A bad file at start must not leave an unattended box without its watchdog: vigild
    // runs on defaults and built-in checks and reports `critical` with the reason.
    let mut config_errors = Vec::new();
    let settings = load_settings(&opts).unwrap_or_else(|e| {
        config_errors.push(e);
        Settings::default()
    });
    let ctx = probe_context(&settings);
    let roots = ctx.roots.clone();
    let policies = load_policies(&opts, &settings).unwrap_or_else(|e| {
        config_errors.push(e);
        policy::builtin(&roots)
    });
    let config_error = (!config_errors.is_empty()).then(|| config_errors.join("\n"));
    if let Some(e) = &config_error {
        error!(
            vigil_event = "config-error",
            "configuration refused, running on built-in checks:\n{e}"
        );
    }
    let state_dir = config::state_dir(opts.state_dir.as_deref(), &settings);
    if let Err(e) = std::fs::create_dir_all(&state_dir) {
        // The store falls back to memory and says so; watching goes on.
        warn!(
            vigil_event = "store",
            "cannot create state directory {}: {e}",
            state_dir.display()
        );
    }
    let store = Store::spawn(state_dir.join(DB_FILE));

    let (snap_tx, snap_rx) = watch::channel(Arc::new(Snapshot::starting(started_at)));
    let (cmd_tx, cmd_rx) = mpsc::channel::<Command>(64);
    let shutdown = CancellationToken::new();

    // HTTP first: systemd's sockets when activated, else the configured addresses.
    let listeners = match http::systemd_listeners() {
        Ok(l) if !l.is_empty() => {
            info!(
                vigil_event = "http",
                "serving the heartbeat on {} socket(s) from systemd",
                l.len()
            );
            l.into_iter()
                .map(tokio::net::TcpListener::from_std)
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| DaemonError::Startup(format!("socket from systemd: {e}")))?
        }
        _ => {
            let addrs = if !opts.listen.is_empty() {
                opts.listen.clone()
            } else {
                settings
                    .http
                    .listen
                    .clone()
                    .unwrap_or_else(|| vec![config::DEFAULT_LISTEN.to_string()])
                    .iter()
                    .map(|a| a.parse().expect("validated in Settings::parse"))
                    .collect()
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
            l
        }
    };
    tokio::spawn(http::serve(listeners, snap_rx.clone(), shutdown.clone()));

    // D-Bus: an explicit address must work; otherwise a missing bus is one warning.
    let (pub_tx, mut pub_rx) = mpsc::unbounded_channel::<(Arc<Snapshot>, Vec<Event>)>();
    match DbusSurface::connect(
        opts.bus.as_deref(),
        snap_rx.clone(),
        cmd_tx.clone(),
        store.clone(),
    )
    .await
    {
        Ok(surface) => {
            tokio::spawn(publish(surface, pub_rx));
        }
        Err(e) if opts.bus.is_some() => return Err(DaemonError::Startup(e)),
        Err(e) => {
            // The system bus may refuse the name for a while: before dbus-daemon has read a
            // policy file that names a known user (a package install), or while it restarts.
            // Keep trying in the background, every 5 s at most; the heartbeat and the rules
            // do not wait for it.
            warn!(
                vigil_event = "bus",
                "{e}; running without D-Bus for now and trying again (the heartbeat still answers)"
            );
            let (snap_rx, cmd_tx, store) = (snap_rx.clone(), cmd_tx.clone(), store.clone());
            tokio::spawn(async move {
                let mut delay = Duration::from_millis(500);
                loop {
                    tokio::time::sleep(delay).await;
                    match DbusSurface::connect(None, snap_rx.clone(), cmd_tx.clone(), store.clone())
                        .await
                    {
                        Ok(mut surface) => {
                            info!(vigil_event = "bus", "D-Bus is there now");
                            // What was published until now is in the latest snapshot: drop
                            // the queue first, then read it, so nothing older comes after.
                            while pub_rx.try_recv().is_ok() {}
                            let now = snap_rx.borrow().clone();
                            if let Err(e) = surface.apply(now, &[]).await {
                                warn!(vigil_event = "bus", "cannot publish on D-Bus: {e}");
                            }
                            publish(surface, pub_rx).await;
                            return;
                        }
                        Err(_) => {
                            while pub_rx.try_recv().is_ok() {}
                            delay = (delay * 2).min(Duration::from_secs(5));
                        }
                    }
                }
            });
        }
    }

    let (done_tx, done_rx) = mpsc::unbounded_channel::<ActionDone>();
    let mut daemon = Daemon {
        pending_decisions: Vec::new(),
        actuators: Arc::new(crate::action::Actuators::from_settings(&settings)),
        done_tx,
        maintenance: None,
        globals: Globals::default(),
        config_error: None,
        opts,
        ctx,
        members: BTreeMap::new(),
        model: HealthModel::new(),
        specs: BTreeMap::new(),
        builtin: false,
        probes: Probes::new(),
        pending_runs: HashMap::new(),
        store: store.clone(),
        snap_tx,
        pub_tx,
        engine: Engine::new(Vec::new(), Globals::default()),
        started_at,
        status_line: String::new(),
    };
    let start = crate::now_micros();
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
    daemon.engine.set_next_incident(next_incident);
    // Maintenance survives a restart of vigild.
    let saved = store
        .call(|db| db.setting("maintenance"))
        .await
        .and_then(|r| r.ok())
        .flatten();
    if let Some(m) = saved.and_then(|t| serde_json::from_str::<Maintenance>(&t).ok()) {
        if m.until > crate::now_micros() {
            info!(
                vigil_event = "maintenance",
                "maintenance mode still on until {} ({})",
                crate::surface::rfc3339_millis(m.until),
                m.reason
            );
            daemon.maintenance = Some(m);
        }
    }
    daemon.globals = globals_of(&settings);
    // Reboots of earlier runs count against the global limit: it must hold across them.
    let window = daemon.globals.reboot_limit.window.as_micros() as u64;
    let since = crate::now_micros().saturating_sub(window);
    if let Some(Ok(times)) = store.call(move |db| db.action_times("reboot", since)).await {
        if !times.is_empty() {
            info!(
                vigil_event = "reboot-limit",
                "{} reboot(s) by vigil in the last {}",
                times.len(),
                humantime::format_duration(daemon.globals.reboot_limit.window)
            );
        }
        daemon.engine.restore_reboots(times);
    }
    // Handlers before READY=1: a reload right after start must not kill vigild.
    let signals = Signals::new()?;
    let transitions = daemon.install(policies, config_error);
    daemon.publish(transitions);
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
    daemon.probes.stop();
    // Wait for every queued write to reach SQLite.
    let _ = store.call(|_| ()).await;
    info!(vigil_event = "stopped", "vigild stopped");
    result
}

/// The signals vigild handles.
struct Signals {
    hup: tokio::signal::unix::Signal,
    term: tokio::signal::unix::Signal,
    int: tokio::signal::unix::Signal,
    #[cfg(feature = "test-hooks")]
    stall: tokio::signal::unix::Signal,
}

impl Signals {
    fn new() -> Result<Signals, DaemonError> {
        let sig = |k: SignalKind| {
            signal(k).map_err(|e| DaemonError::Startup(format!("signal handler: {e}")))
        };
        Ok(Signals {
            hup: sig(SignalKind::hangup())?,
            term: sig(SignalKind::terminate())?,
            int: sig(SignalKind::interrupt())?,
            #[cfg(feature = "test-hooks")]
            stall: sig(SignalKind::user_defined2())?,
        })
    }
}

/// Engine settings from `vigil.toml`.
fn globals_of(settings: &Settings) -> Globals {
    let mut g = Globals::default();
    if let Some(l) = &settings.actions.reboot_limit {
        match Limit::parse(l) {
            Ok(l) => g.reboot_limit = l,
            Err(e) => warn!(
                vigil_event = "config",
                "[actions] reboot_limit {l:?}: {e}; using 1 per 6h"
            ),
        }
    }
    g
}

/// An action's result on its way back to the loop.
struct ActionDone {
    incident: u64,
    rule: String,
    check: String,
    step: usize,
    action: String,
    started: u64,
    outcome: crate::action::Outcome,
}

struct Daemon {
    /// Decisions made outside a tick (a reload closing incidents), handled at the next one.
    pending_decisions: Vec<Decision>,
    actuators: Arc<crate::action::Actuators>,
    done_tx: mpsc::UnboundedSender<ActionDone>,
    maintenance: Option<Maintenance>,
    globals: Globals,
    /// The errors that put vigild on built-in checks, while they last.
    config_error: Option<String>,
    opts: Options,
    ctx: Context,
    /// Checks discovered by group probes (`containers`), by group check name.
    members: BTreeMap<String, std::collections::BTreeSet<String>>,
    model: HealthModel,
    specs: BTreeMap<String, CheckSpec>,
    builtin: bool,
    probes: Probes,
    pending_runs: HashMap<String, Vec<oneshot::Sender<Result<CheckState, String>>>>,
    store: Store,
    snap_tx: watch::Sender<Arc<Snapshot>>,
    pub_tx: mpsc::UnboundedSender<(Arc<Snapshot>, Vec<Event>)>,
    engine: Engine,
    started_at: u64,
    status_line: String,
}

impl Daemon {
    async fn run_loop(
        &mut self,
        mut commands: mpsc::Receiver<Command>,
        signals: Signals,
        mut done: mpsc::UnboundedReceiver<ActionDone>,
    ) -> Result<(), DaemonError> {
        let Signals {
            mut hup,
            mut term,
            mut int,
            ..
        } = signals;
        #[cfg(feature = "test-hooks")]
        let mut stall = signals.stall;
        let watchdog = notify::watchdog_interval();
        let mut wd_tick = tokio::time::interval(watchdog.unwrap_or(Duration::from_secs(3600)));
        wd_tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        if let Some(w) = watchdog {
            info!("watchdog on: pinging every {w:?}");
        }
        // Rules need time to pass (`for`, `cooldown`) even when no reading arrives.
        let mut rule_tick = tokio::time::interval(Duration::from_secs(1));
        rule_tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let (res_tx, mut results) = mpsc::channel::<ProbeResult>(1024);
        self.probes.set_sink(res_tx);
        self.restart_probes();
        loop {
            #[cfg(feature = "test-hooks")]
            let stalled = stall.recv();
            #[cfg(not(feature = "test-hooks"))]
            let stalled = std::future::pending::<Option<()>>();
            tokio::select! {
                Some(r) = results.recv() => self.on_result(r),
                Some(cmd) = commands.recv() => self.on_command(cmd),
                Some(d) = done.recv() => self.on_action_done(d),
                _ = wd_tick.tick(), if watchdog.is_some() => notify::watchdog(),
                _ = rule_tick.tick(), if self.engine.has_rules() || self.maintenance.is_some() => self.publish(Vec::new()),
                _ = hup.recv() => { let _ = self.reload(); }
                _ = term.recv() => { info!("SIGTERM: stopping"); return Ok(()); }
                _ = int.recv() => { info!("SIGINT: stopping"); return Ok(()); }
                _ = stalled => {
                    // Test hook: wedge the evaluation loop so the watchdog must fire.
                    error!("test hook: stalling the evaluation loop (SIGUSR2)");
                    std::thread::sleep(Duration::MAX);
                }
            }
        }
    }

    /// Takes a validated policy set into use; with `config_error`, the set is the built-in
    /// one and the `vigil:config` check reports why. Returns the transitions it caused.
    fn install(&mut self, set: PolicySet, config_error: Option<String>) -> Vec<Transition> {
        let now = crate::now_micros();
        let mut names: Vec<(&str, &str)> = set
            .checks
            .iter()
            .map(|c| (c.name.as_str(), c.probe().as_str()))
            .collect();
        if config_error.is_some() {
            names.push((CONFIG_CHECK, "config"));
        }
        // Members of group checks that survive keep their state until the next reading.
        self.members.retain(|group, _| {
            set.checks
                .iter()
                .any(|c| &c.name == group && c.probe() == crate::probe::ProbeKind::Containers)
        });
        let member_names: Vec<(String, String)> = self
            .members
            .values()
            .flatten()
            .map(|m| (m.clone(), "containers".to_string()))
            .collect();
        names.extend(member_names.iter().map(|(a, b)| (a.as_str(), b.as_str())));
        let diff = self.model.set_checks(names, now);
        for name in &diff.removed {
            info!(vigil_event = "check-removed", vigil_check = %name, "check {name} removed");
            // A RunCheck waiting on a check that is gone gets its answer now.
            for w in self.pending_runs.remove(name).unwrap_or_default() {
                let _ = w.send(Err(format!("check {name:?} was removed by a reload")));
            }
        }
        for name in &diff.added {
            info!(vigil_event = "check-added", vigil_check = %name, "check {name} added");
        }
        self.builtin = set.builtin;
        if set.builtin {
            info!(
                vigil_event = "policy",
                "no usable policy file: using the built-in checks for this host"
            );
        } else {
            info!(
                vigil_event = "policy",
                "loaded {} checks from {} policy file(s)",
                set.checks.len(),
                set.files.len()
            );
        }
        let closed = self.engine.set_rules(set.rules, self.globals);
        self.pending_decisions.extend(closed);
        let mut actuators = (*self.actuators).clone();
        actuators.ollama_urls = set
            .checks
            .iter()
            .filter_map(|c| match &c.params {
                policy::ProbeParams::Ollama { url, .. } => Some((c.name.clone(), url.clone())),
                _ => None,
            })
            .collect();
        self.actuators = Arc::new(actuators);
        self.specs = set
            .checks
            .into_iter()
            .map(|c| (c.name.clone(), c))
            .collect();
        self.config_error = config_error;
        self.report_config_error(now)
    }

    /// Puts the current configuration error, if any, into the `vigil:config` check.
    fn report_config_error(&mut self, now: u64) -> Vec<Transition> {
        let Some(e) = &self.config_error else {
            return Vec::new();
        };
        let detail = config_detail(e);
        let t = self
            .model
            .observe(CONFIG_CHECK, Status::Crit, detail, Default::default(), now);
        t.into_iter()
            .inspect(|t| {
                log_transition(t);
                self.store.record_transition(t.clone());
            })
            .collect()
    }

    fn restart_probes(&mut self) {
        self.probes.start(self.specs.values(), &self.ctx);
    }

    /// Re-reads settings and policies. On any error the running set stays.
    fn reload(&mut self) -> Result<String, String> {
        notify::reloading();
        let result = load_settings(&self.opts).and_then(|settings| {
            let ctx = probe_context(&settings);
            load_policies(&self.opts, &settings).map(|set| {
                let actuators = crate::action::Actuators::from_settings(&settings);
                (ctx, set, globals_of(&settings), actuators)
            })
        });
        let answer = match result {
            Ok((ctx, set, globals, actuators)) => {
                let n = set.checks.len();
                self.ctx = ctx;
                self.globals = globals;
                self.actuators = Arc::new(actuators);
                let transitions = self.install(set, None);
                self.restart_probes();
                self.publish(transitions);
                Ok(format!("reloaded: {n} checks"))
            }
            Err(e) if self.config_error.is_some() => {
                // Still on built-in checks: the new errors replace the old ones.
                error!(
                    vigil_event = "reload-refused",
                    "reload refused, still on built-in checks:\n{e}"
                );
                self.config_error = Some(e.clone());
                let transitions = self.report_config_error(crate::now_micros());
                self.publish(transitions);
                Err(e)
            }
            Err(e) => {
                error!(
                    vigil_event = "reload-refused",
                    "reload refused, the previous settings and policies stay in force:\n{e}"
                );
                Err(e)
            }
        };
        notify::ready(&self.status_line);
        answer
    }

    fn on_command(&mut self, cmd: Command) {
        match cmd {
            Command::Reload { reply } => {
                let _ = reply.send(self.reload());
            }
            Command::SetMaintenance {
                on,
                seconds,
                reason,
                reply,
            } => {
                let _ = reply.send(self.set_maintenance(on, seconds, reason));
            }
            Command::RunCheck { name, reply } => {
                let group = self
                    .members
                    .iter()
                    .find(|(_, ms)| ms.contains(&name))
                    .map(|(g, _)| g.clone());
                if self.probes.run_now(group.as_deref().unwrap_or(&name)) {
                    self.pending_runs.entry(name).or_default().push(reply);
                } else {
                    let _ = reply.send(Err(format!("no check named {name:?}")));
                }
            }
        }
    }

    fn on_result(&mut self, r: ProbeResult) {
        if !self.probes.is_current(r.generation) {
            return;
        }
        let Some(spec) = self.specs.get(&r.check) else {
            return;
        };
        let mut transitions = Vec::new();
        if let Reading::Group(members) = &r.reading {
            let (warn, crit, probe) = (spec.warn.clone(), spec.crit.clone(), spec.probe().as_str());
            let names: std::collections::BTreeSet<String> = members.keys().cloned().collect();
            let known = self.members.entry(r.check.clone()).or_default();
            for gone in known.difference(&names) {
                if self.model.remove_check(gone) {
                    info!(vigil_event = "check-removed", vigil_check = %gone, "check {gone} removed: it no longer exists");
                }
            }
            for new in names.difference(known) {
                if self.model.add_check(new, probe, r.at) {
                    info!(vigil_event = "check-added", vigil_check = %new, "check {new} added");
                }
            }
            *known = names;
            let mut statuses = Vec::new();
            for (member, reading) in members {
                let (status, detail) = policy::threshold::evaluate(&warn, &crit, reading);
                statuses.push(status);
                transitions.extend(self.observe(member, status, detail, metrics_of(reading), r.at));
            }
            let counts = |s: Status| statuses.iter().filter(|x| **x == s).count();
            let status = statuses.iter().fold(Status::Ok, |a, b| a.worst(*b));
            let detail = format!(
                "{} matched: {} ok, {} warn, {} crit, {} unknown",
                statuses.len(),
                counts(Status::Ok),
                counts(Status::Warn),
                counts(Status::Crit),
                counts(Status::Unknown)
            );
            transitions.extend(self.observe(&r.check, status, detail, Default::default(), r.at));
        } else {
            let (status, detail) = policy::threshold::evaluate(&spec.warn, &spec.crit, &r.reading);
            if let Reading::Unknown(why) = &r.reading {
                // The source of a group is gone (dockerd down): its members cannot tell either.
                let members: Vec<String> = self
                    .members
                    .get(&r.check)
                    .into_iter()
                    .flatten()
                    .cloned()
                    .collect();
                for m in members {
                    transitions.extend(self.observe(
                        &m,
                        Status::Unknown,
                        why.clone(),
                        Default::default(),
                        r.at,
                    ));
                }
            }
            transitions.extend(self.observe(
                &r.check,
                status,
                detail,
                metrics_of(&r.reading),
                r.at,
            ));
        }
        self.publish(transitions);
    }

    /// Puts one check's new status into the model; logs, stores and returns a transition.
    fn observe(
        &mut self,
        check: &str,
        status: Status,
        detail: String,
        metrics: crate::probe::Metrics,
        at: u64,
    ) -> Option<Transition> {
        let before = self
            .model
            .get(check)
            .map(|c| (c.last_probe.is_none(), c.detail.clone()));
        let transition = self
            .model
            .observe(check, status, detail.clone(), metrics, at);
        if status == Status::Unknown && transition.is_none() {
            // Unknown from the first reading, or unknown for a new reason: say so once.
            if let Some((first, old_detail)) = before {
                if first || old_detail != detail {
                    warn!(vigil_event = "unknown", vigil_check = %check, "check {check} is unknown: {detail}");
                }
            }
        }
        if let Some(waiters) = self.pending_runs.remove(check) {
            let state = self
                .model
                .get(check)
                .cloned()
                .ok_or_else(|| "check vanished".to_string());
            for w in waiters {
                let _ = w.send(state.clone());
            }
        }
        if let Some(t) = &transition {
            log_transition(t);
            self.store.record_transition(t.clone());
        }
        transition
    }

    fn set_maintenance(
        &mut self,
        on: bool,
        seconds: u64,
        reason: String,
    ) -> Result<String, String> {
        let now = crate::now_micros();
        let answer = if on {
            if seconds == 0 || seconds > MAINTENANCE_MAX_SECS {
                return Err(format!(
                    "maintenance needs a duration between 1 s and 7 days, got {seconds} s"
                ));
            }
            let reason = if reason.trim().is_empty() {
                "no reason given".to_string()
            } else {
                reason
            };
            let m = Maintenance {
                since: now,
                until: now + seconds * 1_000_000,
                reason,
            };
            warn!(
                vigil_event = "maintenance",
                "maintenance mode on until {}: {} — actions are suspended, checks go on",
                crate::surface::rfc3339_millis(m.until),
                m.reason
            );
            let text = serde_json::to_string(&m).unwrap_or_default();
            self.store.submit("maintenance", move |db| {
                db.set_setting("maintenance", &text)
            });
            let line = format!(
                "maintenance on until {}",
                crate::surface::rfc3339_millis(m.until)
            );
            self.maintenance = Some(m);
            line
        } else {
            self.end_maintenance("turned off");
            "maintenance off".to_string()
        };
        self.publish(Vec::new());
        Ok(answer)
    }

    fn end_maintenance(&mut self, how: &str) {
        if let Some(m) = self.maintenance.take() {
            info!(
                vigil_event = "maintenance",
                "maintenance mode {how} ({})", m.reason
            );
        }
        self.store
            .submit("maintenance", |db| db.set_setting("maintenance", ""));
    }

    /// What a webhook is told about an incident: the check's state now, unless `detail`
    /// says otherwise.
    fn notification(
        &self,
        event: &str,
        incident: u64,
        rule: &str,
        check: &str,
        detail: Option<String>,
        now: u64,
    ) -> crate::action::Notification {
        let state = self.model.get(check);
        crate::action::Notification {
            event: event.into(),
            incident,
            rule: rule.into(),
            check: check.into(),
            status: state.map(|c| c.status.to_string()).unwrap_or_default(),
            detail: detail
                .or_else(|| state.map(|c| c.detail.clone()))
                .unwrap_or_default(),
            host: nix::unistd::gethostname()
                .ok()
                .and_then(|h| h.into_string().ok())
                .unwrap_or_default(),
            time: crate::surface::rfc3339_millis(now),
        }
    }

    /// An action came back: record, log and signal its outcome.
    fn on_action_done(&mut self, d: ActionDone) {
        self.engine
            .action_done(&d.rule, &d.check, crate::now_micros());
        let line = d.outcome.to_line();
        let msg = format!(
            "incident {}: step {} `{}` — {line}",
            d.incident,
            d.step + 1,
            d.action
        );
        match &d.outcome {
            crate::action::Outcome::Failed(_) => {
                error!(vigil_event = "action", vigil_incident = d.incident, vigil_rule = %d.rule, vigil_check = %d.check, vigil_action = %d.action, "{msg}")
            }
            _ => {
                info!(vigil_event = "action", vigil_incident = d.incident, vigil_rule = %d.rule, vigil_check = %d.check, vigil_action = %d.action, "{msg}")
            }
        }
        let (inc, step, started, l) = (d.incident, d.step, d.started, line.clone());
        self.store.submit("an action result", move |db| {
            db.action_finished_at(inc, step, started, &l)
        });
        let snap = self.snap_tx.borrow().clone();
        let _ = self.pub_tx.send((
            snap,
            vec![Event::ActionTaken {
                incident: d.incident,
                action: d.action,
                result: line,
            }],
        ));
    }

    /// Runs the rules over the current statuses and records what they decide.
    fn evaluate_rules(&mut self, now: u64) -> Vec<Event> {
        // A check that has not been read yet says nothing a rule could act on.
        let statuses: Vec<(String, Status)> = self
            .model
            .checks()
            .filter(|c| c.last_probe.is_some())
            .map(|c| (c.name.clone(), c.status))
            .collect();
        let mut events = Vec::new();
        if self.maintenance.as_ref().is_some_and(|m| m.until <= now) {
            self.end_maintenance("ended by itself");
        }
        let maintenance = self.maintenance.is_some();
        let mut decisions = std::mem::take(&mut self.pending_decisions);
        decisions.extend(self.engine.tick(now, &statuses, maintenance));
        for d in decisions {
            match d {
                Decision::Opened {
                    incident,
                    rule,
                    check,
                } => {
                    warn!(vigil_event = "incident-opened", vigil_incident = incident, vigil_rule = %rule, vigil_check = %check,
                        "incident {incident} opened: rule {rule} on check {check}");
                    let (r, c) = (rule.clone(), check.clone());
                    self.store.submit("an incident", move |db| {
                        db.incident_opened(incident, &r, &c, now)
                    });
                    events.push(Event::IncidentOpened {
                        id: incident,
                        rule,
                        check,
                    });
                }
                Decision::Act {
                    incident,
                    rule,
                    check,
                    step,
                    action,
                    observe,
                } => {
                    let text = action.to_string();
                    if observe {
                        let result = "observed: not carried out (mode = observe)".to_string();
                        info!(vigil_event = "action", vigil_incident = incident, vigil_rule = %rule, vigil_check = %check, vigil_action = %text,
                            "incident {incident}: step {} `{text}` — {result}", step + 1);
                        let (a, r) = (text.clone(), result.clone());
                        self.store.submit("an action", move |db| {
                            db.incident_state(incident, "acting", now)?;
                            let id = db.action_started(incident, step, &a, now)?;
                            db.action_finished(id, &r)
                        });
                        events.push(Event::ActionTaken {
                            incident,
                            action: text,
                            result,
                        });
                        continue;
                    }
                    // Recorded before it runs; the result is recorded when it comes back.
                    info!(vigil_event = "action-started", vigil_incident = incident, vigil_rule = %rule, vigil_check = %check, vigil_action = %text,
                        "incident {incident}: step {} `{text}` started", step + 1);
                    let a = text.clone();
                    self.store.submit("an action", move |db| {
                        db.incident_state(incident, "acting", now)?;
                        db.action_started(incident, step, &a, now).map(|_| ())
                    });
                    let note = self.notification("incident", incident, &rule, &check, None, now);
                    let (actuators, tx, store) = (
                        self.actuators.clone(),
                        self.done_tx.clone(),
                        self.store.clone(),
                    );
                    tokio::spawn(async move {
                        // The start is on disk before the action runs (a reboot ends everything).
                        let _ = store.call(|_| ()).await;
                        let outcome = actuators.run(&action, &note).await;
                        let _ = tx.send(ActionDone {
                            incident,
                            rule,
                            check,
                            step,
                            action: text,
                            started: now,
                            outcome,
                        });
                    });
                }
                Decision::Held {
                    incident,
                    rule,
                    action,
                    reason,
                    ..
                } => {
                    info!(vigil_event = "action-held", vigil_incident = incident, vigil_rule = %rule, vigil_action = %action,
                        "incident {incident}: `{action}` held: {reason}");
                }
                Decision::Exhausted {
                    incident,
                    rule,
                    check,
                } => {
                    error!(vigil_event = "incident-exhausted", vigil_incident = incident, vigil_rule = %rule, vigil_check = %check,
                        "incident {incident}: rule {rule} reached its limit; no more actions until {check} is ok");
                    self.store.submit("an incident", move |db| {
                        db.incident_state(incident, "exhausted", now)
                    });
                    // Giving up is worth an alert, when webhooks are configured.
                    if !self.actuators.webhooks.is_empty() {
                        let detail =
                            format!("rule {rule} reached its limit; vigil takes no more actions");
                        let note = self.notification(
                            "exhausted",
                            incident,
                            &rule,
                            &check,
                            Some(detail),
                            now,
                        );
                        let actuators = self.actuators.clone();
                        tokio::spawn(async move {
                            let out = actuators.run(&crate::engine::Action::Notify, &note).await;
                            info!(
                                vigil_event = "alert",
                                vigil_incident = incident,
                                "incident {incident} exhausted, alert: {}",
                                out.to_line()
                            );
                        });
                    }
                }
                Decision::Closed {
                    incident,
                    rule,
                    check,
                    reason,
                } => {
                    info!(vigil_event = "incident-closed", vigil_incident = incident, vigil_rule = %rule, vigil_check = %check,
                        "incident {incident} closed: {reason}");
                    self.store.submit("an incident", move |db| {
                        db.incident_state(incident, "closed", now)
                    });
                    events.push(Event::IncidentResolved { id: incident });
                }
                Decision::Resolved {
                    incident,
                    rule,
                    check,
                } => {
                    info!(vigil_event = "incident-resolved", vigil_incident = incident, vigil_rule = %rule, vigil_check = %check,
                        "incident {incident} resolved: {check} is ok");
                    self.store.submit("an incident", move |db| {
                        db.incident_state(incident, "resolved", now)
                    });
                    events.push(Event::IncidentResolved { id: incident });
                }
            }
        }
        events
    }

    /// Sends the current state to every surface.
    fn publish(&mut self, transitions: Vec<Transition>) {
        let mut events: Vec<Event> = transitions.into_iter().map(Event::Transition).collect();
        events.extend(self.evaluate_rules(crate::now_micros()));
        let prev = self.snap_tx.borrow().clone();
        let snap = Snapshot {
            started_at: self.started_at,
            status: self.model.overall(),
            checks: self.model.checks().cloned().collect(),
            counts: self.model.counts(),
            maintenance: self.maintenance.is_some(),
            maintenance_until: self.maintenance.as_ref().map(|m| m.until),
            maintenance_reason: self.maintenance.as_ref().map(|m| m.reason.clone()),
            update_state: prev.update_state.clone(),
            open_incidents: self.engine.open_incidents().len() as u32,
            builtin_policies: self.builtin,
        };
        let line = snap.summary_line();
        if line != self.status_line {
            notify::status(&line);
            self.status_line = line;
        }
        if events.is_empty() && *prev == snap {
            return;
        }
        let snap = Arc::new(snap);
        self.snap_tx.send_replace(snap.clone());
        let _ = self.pub_tx.send((snap, events));
    }
}

/// The metrics a reading carries (none when it could not tell).
fn metrics_of(r: &Reading) -> crate::probe::Metrics {
    match r {
        Reading::Value { metrics, .. } => metrics.clone(),
        _ => Default::default(),
    }
}

fn log_transition(t: &Transition) {
    let msg = format!("check {} {} → {}: {}", t.check, t.from, t.to, t.detail);
    match t.to {
        Status::Ok => {
            info!(vigil_event = "transition", vigil_check = %t.check, vigil_from = %t.from, vigil_to = %t.to, "{msg}")
        }
        Status::Warn | Status::Unknown => {
            warn!(vigil_event = "transition", vigil_check = %t.check, vigil_from = %t.from, vigil_to = %t.to, "{msg}")
        }
        Status::Crit => {
            error!(vigil_event = "transition", vigil_check = %t.check, vigil_from = %t.from, vigil_to = %t.to, "{msg}")
        }
    }
}

/// Publishes snapshots and events on D-Bus for as long as the daemon runs. A failure is
/// said once, not on every reading, until publishing works again.
async fn publish(
    mut surface: DbusSurface,
    mut pub_rx: mpsc::UnboundedReceiver<(Arc<Snapshot>, Vec<Event>)>,
) {
    let mut failing = false;
    while let Some((snap, events)) = pub_rx.recv().await {
        match surface.apply(snap, &events).await {
            Ok(()) if failing => {
                failing = false;
                info!(vigil_event = "bus", "publishing on D-Bus again");
            }
            Ok(()) => {}
            Err(e) if !failing => {
                failing = true;
                warn!(vigil_event = "bus", "cannot publish on D-Bus: {e}");
            }
            Err(_) => {}
        }
    }
}
