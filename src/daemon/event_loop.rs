//! The one loop that owns the state: probe results, commands, action results, signals and
//! the clock come in here, one at a time. It is the loop that pings the watchdog, so a
//! stuck loop gets vigild restarted by systemd. Slow work (reading policies, running
//! actions, SQLite) happens elsewhere and comes back as an event.

use std::sync::atomic::Ordering;
use std::time::Duration;

use tokio::signal::unix::{signal, SignalKind};
use tokio::sync::mpsc;
use tracing::{error, info};

use super::config::{self, Config, DaemonError};
use super::probes::ProbeResult;
use super::state::{ActionDone, Daemon};
use super::update_plan::RunEnv;
use crate::config::Settings;
use crate::control::{Command, Reply, UpdateRequest};
use crate::core::update::UpdateState;
use crate::policy::PolicySet;
use crate::surface::notify;
use crate::sys::clock;

/// How long reading settings and policies may take before a reload is given up (a hung
/// file system must not hold a reload forever).
pub const RELOAD_TIMEOUT: Duration = Duration::from_secs(30);

/// How often readings that changed no status are published while an update gates.
const GATE_PUBLISH_EVERY: Duration = Duration::from_millis(100);

/// The signals vigild handles.
pub struct Signals {
    hup: tokio::signal::unix::Signal,
    term: tokio::signal::unix::Signal,
    int: tokio::signal::unix::Signal,
    #[cfg(feature = "test-hooks")]
    stall: tokio::signal::unix::Signal,
}

impl Signals {
    /// Installs the handlers (before READY=1: a reload right after start must not kill vigild).
    pub fn new() -> Result<Signals, DaemonError> {
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

/// What came back from a reload off the loop.
type ReloadResult = Result<(Settings, PolicySet), String>;

impl Daemon {
    /// Runs until SIGTERM or SIGINT.
    pub(super) async fn run_loop(
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
        let mut update_doc = self.io.update.doc.clone();
        let mut gate_published = tokio::time::Instant::now();
        let (reload_tx, mut reloaded) = mpsc::channel::<ReloadResult>(4);
        self.io.probes.set_sink(res_tx);
        self.restart_probes();
        loop {
            // Each turn, and at least once a second (the rule tick), tells the heartbeat the
            // loop is alive.
            self.io.pulse.beat(clock::now_mono());
            #[cfg(feature = "test-hooks")]
            let stalled = stall.recv();
            #[cfg(not(feature = "test-hooks"))]
            let stalled = std::future::pending::<Option<()>>();
            let ticking = self.rules.engine.has_rules()
                || self.rules.maintenance.is_some()
                || self.checks.unpublished;
            tokio::select! {
                Some(r) = results.recv() => {
                    let t = self.on_result(r);
                    if !t.is_empty() {
                        self.changed(t, clock::now());
                    } else if self.io.update.doc.borrow().state == UpdateState::Gating
                        && gate_published.elapsed() >= GATE_PUBLISH_EVERY
                    {
                        // An update's gate judges fresh readings: while it gates, they go
                        // out within GATE_PUBLISH_EVERY, not with the next tick.
                        gate_published = tokio::time::Instant::now();
                        self.publish(Vec::new());
                    } else {
                        // Only metrics and details moved: published with the next tick, so a
                        // thousand checks cost one publication a second, not a thousand.
                        self.checks.unpublished = true;
                    }
                }
                Some(cmd) = commands.recv() => self.on_command(cmd, &reload_tx),
                Some(d) = done.recv() => self.on_action_done(d),
                Some(r) = reloaded.recv() => self.finish_reload(r, &reload_tx),
                Ok(()) = update_doc.changed() => {
                    // The runner moved on: its state goes into the snapshot, and a hold
                    // it lifted lets the rules act.
                    update_doc.borrow_and_update();
                    self.changed(Vec::new(), clock::now());
                }
                _ = wd_tick.tick(), if watchdog.is_some() => notify::watchdog(),
                _ = rule_tick.tick() => if ticking {
                    self.changed(Vec::new(), clock::now());
                },
                _ = hup.recv() => self.start_reload(None, &reload_tx),
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

    fn on_command(&mut self, cmd: Command, reload_tx: &mpsc::Sender<ReloadResult>) {
        match cmd {
            Command::Reload { reply } => self.start_reload(Some(reply), reload_tx),
            Command::Update(req) => {
                // The runner answers; the loop only passes it on, without waiting.
                let tx = self.io.update.tx.clone();
                tokio::spawn(async move {
                    if let Err(e) = tx.send(req).await {
                        let why = Err("the update runner has stopped; restart vigild".to_string());
                        match e.0 {
                            UpdateRequest::Apply { reply, .. }
                            | UpdateRequest::Rollback { reply, .. }
                            | UpdateRequest::Offer { reply, .. } => {
                                let _ = reply.send(why);
                            }
                        }
                    }
                });
            }
            Command::SetMaintenance {
                on,
                seconds,
                reason,
                tunnel,
                by,
                reply,
            } => {
                let now = clock::now();
                let answer = self.set_maintenance(on, seconds, reason, tunnel, by, now);
                // Published before the answer: a caller reads the new state right after.
                self.changed(Vec::new(), now);
                match answer {
                    // The answer waits for the tunnel's start or stop, off the loop.
                    Ok((line, jobs)) => super::maintenance::spawn_jobs(jobs, Some((line, reply))),
                    Err(e) => {
                        let _ = reply.send(Err(e));
                    }
                }
            }
            Command::RunCheck { name, reply } => {
                let group = self
                    .checks
                    .members
                    .iter()
                    .find(|(_, ms)| ms.contains(&name))
                    .map(|(g, _)| g.clone());
                if self.io.probes.run_now(group.as_deref().unwrap_or(&name)) {
                    self.checks
                        .pending_runs
                        .entry(name)
                        .or_default()
                        .push(reply);
                } else {
                    let _ = reply.send(Err(format!("no check named {name:?}")));
                }
            }
        }
    }

    pub(super) fn restart_probes(&mut self) {
        self.io
            .probes
            .start(self.checks.specs.values(), &self.cfg.ctx);
    }

    /// Starts reading settings and policies off the loop; `reply` gets the answer. A
    /// request while one is in flight is answered by a fresh read after it.
    fn start_reload(&mut self, reply: Option<Reply<String>>, tx: &mpsc::Sender<ReloadResult>) {
        if self.reloads.running.is_some() {
            self.reloads
                .queued
                .get_or_insert_with(Vec::new)
                .extend(reply);
            return;
        }
        if self.reloads.hung.load(Ordering::SeqCst) {
            // The last read never came back: another would only hang beside it.
            let why =
                "the previous read of the configuration has not finished (a hung file system?); \
                       the running settings and policies stay in force";
            error!(vigil_event = "reload-refused", "reload refused: {why}");
            if let Some(r) = reply {
                let _ = r.send(Err(why.to_string()));
            }
            return;
        }
        self.reloads.running = Some(reply.into_iter().collect());
        notify::reloading();
        // Set before the read starts, cleared by the read itself when it returns.
        self.reloads.hung.store(true, Ordering::SeqCst);
        let (opts, tx, hung) = (self.opts.clone(), tx.clone(), self.reloads.hung.clone());
        tokio::spawn(async move {
            let read = tokio::task::spawn_blocking(move || {
                let r = config::load_strict(&opts);
                hung.store(false, Ordering::SeqCst);
                r
            });
            let result = match tokio::time::timeout(RELOAD_TIMEOUT, read).await {
                Ok(Ok(loaded)) => loaded,
                Ok(Err(e)) => Err(format!("reading the configuration failed: {e}")),
                Err(_) => Err(format!(
                    "reading the configuration did not finish within {} s (a hung file system?); \
                     the previous settings and policies stay in force",
                    RELOAD_TIMEOUT.as_secs()
                )),
            };
            let _ = tx.send(result).await;
        });
    }

    /// A reload came back: on any error the running set stays.
    fn finish_reload(&mut self, result: ReloadResult, tx: &mpsc::Sender<ReloadResult>) {
        let now = clock::now();
        let answer = match result {
            Ok((settings, policies)) => {
                let n = policies.checks.len();
                self.cfg = Config::new(&settings, self.cfg.ctx.connections.clone());
                // The next update run starts with these settings.
                self.io
                    .update
                    .env
                    .send_replace(std::sync::Arc::new(RunEnv::new(
                        &settings,
                        &self.io.state_dir,
                        self.cfg.actuators.clone(),
                    )));
                let transitions = self.install(policies, None, now.wall);
                self.restart_probes();
                self.changed(transitions, now);
                Ok(format!("reloaded: {n} checks"))
            }
            Err(e) if self.checks.config_error.is_some() => {
                // Still on built-in checks: the new errors replace the old ones.
                error!(
                    vigil_event = "reload-refused",
                    "reload refused, still on built-in checks:\n{e}"
                );
                self.checks.config_error = Some(e.clone());
                let transitions = self.report_config_error(now.wall);
                self.changed(transitions, now);
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
        for reply in self.reloads.running.take().unwrap_or_default() {
            let _ = reply.send(answer.clone());
        }
        if let Some(queued) = self.reloads.queued.take() {
            self.reloads.running = None;
            let mut queued = queued.into_iter();
            self.start_reload(queued.next(), tx);
            if let Some(running) = self.reloads.running.as_mut() {
                running.extend(queued);
            }
        }
    }
}
