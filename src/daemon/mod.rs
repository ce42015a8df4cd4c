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
use crate::health::{CheckState, HealthModel, Status, Transition};
use crate::policy::{self, CheckSpec, PolicySet};
use crate::probe::HostRoots;
use crate::store::{Store, DB_FILE};
use crate::surface::dbus::DbusSurface;
use crate::surface::{http, notify, Snapshot};
use probes::{ProbeResult, Probes};

/// Exit status for a configuration error (sysexits EX_CONFIG); the unit does not restart on it.
pub const EXIT_CONFIG: i32 = 78;

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
    Config(String),
    #[error("{0}")]
    Startup(String),
}

impl DaemonError {
    /// The process exit status.
    pub fn exit_code(&self) -> i32 {
        match self {
            DaemonError::Config(_) => EXIT_CONFIG,
            DaemonError::Startup(_) => 1,
        }
    }
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

fn load_policies(opts: &Options, roots: &HostRoots) -> Result<PolicySet, String> {
    policy::load_dirs(&policy_dirs(opts), roots).map_err(|d| d.to_string())
}

/// Runs vigild until SIGTERM or SIGINT.
pub async fn run(opts: Options) -> Result<(), DaemonError> {
    let started_at = crate::now_micros();
    let settings = load_settings(&opts).map_err(DaemonError::Config)?;
    let roots = settings.host_roots();
    let policies = load_policies(&opts, &roots).map_err(DaemonError::Config)?;
    let state_dir = config::state_dir(opts.state_dir.as_deref(), &settings);
    std::fs::create_dir_all(&state_dir).map_err(|e| {
        DaemonError::Startup(format!(
            "cannot create state directory {}: {e}",
            state_dir.display()
        ))
    })?;
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
    let (pub_tx, mut pub_rx) = mpsc::unbounded_channel::<(Arc<Snapshot>, Vec<Transition>)>();
    match DbusSurface::connect(opts.bus.as_deref(), snap_rx.clone(), cmd_tx.clone()).await {
        Ok(mut surface) => {
            tokio::spawn(async move {
                while let Some((snap, transitions)) = pub_rx.recv().await {
                    if let Err(e) = surface.apply(snap, &transitions).await {
                        warn!(vigil_event = "bus", "cannot publish on D-Bus: {e}");
                    }
                }
            });
        }
        Err(e) if opts.bus.is_some() => return Err(DaemonError::Startup(e)),
        Err(e) => {
            warn!(
                vigil_event = "bus",
                "{e}; running without D-Bus (the heartbeat still answers)"
            );
            tokio::spawn(async move { while pub_rx.recv().await.is_some() {} });
        }
    }

    let mut daemon = Daemon {
        opts,
        roots,
        model: HealthModel::new(),
        specs: BTreeMap::new(),
        builtin: false,
        probes: Probes::new(),
        pending_runs: HashMap::new(),
        store: store.clone(),
        snap_tx,
        pub_tx,
        started_at,
        status_line: String::new(),
    };
    daemon.install(policies);
    daemon.publish(Vec::new());
    notify::ready(&daemon.status_line);
    info!(
        vigil_event = "ready",
        "vigild {} ready: {}",
        crate::VERSION,
        daemon.status_line
    );

    let result = daemon.run_loop(cmd_rx).await;
    notify::stopping();
    shutdown.cancel();
    daemon.probes.stop();
    // Wait for every queued write to reach SQLite.
    let _ = store.call(|_| ()).await;
    info!(vigil_event = "stopped", "vigild stopped");
    result
}

struct Daemon {
    opts: Options,
    roots: HostRoots,
    model: HealthModel,
    specs: BTreeMap<String, CheckSpec>,
    builtin: bool,
    probes: Probes,
    pending_runs: HashMap<String, Vec<oneshot::Sender<Result<CheckState, String>>>>,
    store: Store,
    snap_tx: watch::Sender<Arc<Snapshot>>,
    pub_tx: mpsc::UnboundedSender<(Arc<Snapshot>, Vec<Transition>)>,
    started_at: u64,
    status_line: String,
}

impl Daemon {
    async fn run_loop(&mut self, mut commands: mpsc::Receiver<Command>) -> Result<(), DaemonError> {
        let sig = |k: SignalKind| {
            signal(k).map_err(|e| DaemonError::Startup(format!("signal handler: {e}")))
        };
        let mut hup = sig(SignalKind::hangup())?;
        let mut term = sig(SignalKind::terminate())?;
        let mut int = sig(SignalKind::interrupt())?;
        #[cfg(feature = "test-hooks")]
        let mut stall = sig(SignalKind::user_defined2())?;
        let watchdog = notify::watchdog_interval();
        let mut wd_tick = tokio::time::interval(watchdog.unwrap_or(Duration::from_secs(3600)));
        wd_tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        if let Some(w) = watchdog {
            info!("watchdog on: pinging every {w:?}");
        }
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
                _ = wd_tick.tick(), if watchdog.is_some() => notify::watchdog(),
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

    /// Takes a validated policy set into use.
    fn install(&mut self, set: PolicySet) {
        let now = crate::now_micros();
        let diff = self.model.set_checks(
            set.checks
                .iter()
                .map(|c| (c.name.as_str(), c.probe().as_str())),
            now,
        );
        for name in &diff.removed {
            info!(vigil_event = "check-removed", vigil_check = %name, "check {name} removed");
        }
        for name in &diff.added {
            info!(vigil_event = "check-added", vigil_check = %name, "check {name} added");
        }
        self.builtin = set.builtin;
        if set.builtin {
            info!(
                vigil_event = "policy",
                "no policy file found: using the built-in checks for this host"
            );
        } else {
            info!(
                vigil_event = "policy",
                "loaded {} checks from {} policy file(s)",
                set.checks.len(),
                set.files.len()
            );
        }
        self.specs = set
            .checks
            .into_iter()
            .map(|c| (c.name.clone(), c))
            .collect();
    }

    fn restart_probes(&mut self) {
        self.probes.start(self.specs.values(), &self.roots);
    }

    /// Re-reads settings and policies. On any error the running set stays.
    fn reload(&mut self) -> Result<String, String> {
        notify::reloading();
        let result = load_settings(&self.opts).and_then(|settings| {
            let roots = settings.host_roots();
            load_policies(&self.opts, &roots).map(|set| (roots, set))
        });
        let answer = match result {
            Ok((roots, set)) => {
                let n = set.checks.len();
                self.roots = roots;
                self.install(set);
                self.restart_probes();
                self.publish(Vec::new());
                Ok(format!("reloaded: {n} checks"))
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
            Command::RunCheck { name, reply } => {
                if self.probes.run_now(&name) {
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
        let (status, detail) = policy::threshold::evaluate(&spec.warn, &spec.crit, &r.reading);
        let metrics = match &r.reading {
            crate::probe::Reading::Value { metrics, .. } => metrics.clone(),
            crate::probe::Reading::Unknown(_) => Default::default(),
        };
        let before = self
            .model
            .get(&r.check)
            .map(|c| (c.last_probe.is_none(), c.detail.clone()));
        let transition = self
            .model
            .observe(&r.check, status, detail.clone(), metrics, r.at);
        if status == Status::Unknown && transition.is_none() {
            // Unknown from the first reading, or unknown for a new reason: say so once.
            if let Some((first, old_detail)) = before {
                if first || old_detail != detail {
                    warn!(vigil_event = "unknown", vigil_check = %r.check, "check {} is unknown: {detail}", r.check);
                }
            }
        }
        if let Some(waiters) = self.pending_runs.remove(&r.check) {
            let state = self
                .model
                .get(&r.check)
                .cloned()
                .ok_or_else(|| "check vanished".to_string());
            for w in waiters {
                let _ = w.send(state.clone());
            }
        }
        let mut transitions = Vec::new();
        if let Some(t) = transition {
            log_transition(&t);
            self.store.record_transition(t.clone());
            transitions.push(t);
        }
        self.publish(transitions);
    }

    /// Sends the current state to every surface.
    fn publish(&mut self, transitions: Vec<Transition>) {
        let prev = self.snap_tx.borrow().clone();
        let snap = Snapshot {
            started_at: self.started_at,
            status: self.model.overall(),
            checks: self.model.checks().cloned().collect(),
            counts: self.model.counts(),
            maintenance: prev.maintenance,
            update_state: prev.update_state.clone(),
            open_incidents: prev.open_incidents,
            builtin_policies: self.builtin,
        };
        let line = snap.summary_line();
        if line != self.status_line {
            notify::status(&line);
            self.status_line = line;
        }
        let snap = Arc::new(snap);
        self.snap_tx.send_replace(snap.clone());
        let _ = self.pub_tx.send((snap, transitions));
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
