//! Probe tasks: one per check, each reading on its interval (or at once when woken) and
//! sending the result into the daemon loop. Every reading is bounded by the check's timeout,
//! so a hung source makes its check `unknown` and never stalls anything else.

use std::collections::HashMap;
use std::sync::Arc;

use tokio::sync::{mpsc, Notify};
use tokio::task::AbortHandle;
use tokio::time::MissedTickBehavior;

use crate::core::check::CheckSpec;
use crate::core::metric::Reading;
use crate::core::time::Micros;
use crate::probe::{self, Context};
use crate::sys::clock::now_micros;

/// A reading on its way to the loop.
pub struct ProbeResult {
    /// Which start of the probes it came from; stale ones are dropped after a reload.
    pub generation: u64,
    pub check: String,
    pub reading: Reading,
    pub at: Micros,
}

/// The running probe tasks.
pub struct Probes {
    generation: u64,
    tasks: Vec<AbortHandle>,
    run_now: HashMap<String, Arc<Notify>>,
    sink: Option<mpsc::Sender<ProbeResult>>,
}

impl Probes {
    pub fn new() -> Self {
        Probes {
            generation: 0,
            tasks: Vec::new(),
            run_now: HashMap::new(),
            sink: None,
        }
    }

    /// Where results go.
    pub fn set_sink(&mut self, sink: mpsc::Sender<ProbeResult>) {
        self.sink = Some(sink);
    }

    /// Whether a result belongs to the current start.
    pub fn is_current(&self, generation: u64) -> bool {
        generation == self.generation
    }

    /// Stops every task.
    pub fn stop(&mut self) {
        for t in self.tasks.drain(..) {
            t.abort();
        }
        self.run_now.clear();
    }

    /// Restarts the tasks for these checks.
    pub fn start<'a>(&mut self, specs: impl Iterator<Item = &'a CheckSpec>, ctx: &Context) {
        self.stop();
        self.generation += 1;
        let Some(sink) = self.sink.clone() else {
            return;
        };
        for spec in specs {
            let now = Arc::new(Notify::new());
            self.run_now.insert(spec.name.clone(), now.clone());
            let task = tokio::spawn(probe_task(
                spec.clone(),
                ctx.clone(),
                self.generation,
                sink.clone(),
                now,
            ));
            self.tasks.push(task.abort_handle());
        }
    }

    /// Asks a check's probe to read now. False when there is no such check.
    pub fn run_now(&self, name: &str) -> bool {
        match self.run_now.get(name) {
            Some(n) => {
                n.notify_one();
                true
            }
            None => false,
        }
    }
}

async fn probe_task(
    spec: CheckSpec,
    ctx: Context,
    generation: u64,
    sink: mpsc::Sender<ProbeResult>,
    run_now: Arc<Notify>,
) {
    let mut probe = probe::build(&spec, &ctx);
    let wake = probe.wake().unwrap_or_else(|| Arc::new(Notify::new()));
    let mut tick = tokio::time::interval(spec.every);
    tick.set_missed_tick_behavior(MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = wake.notified() => {}
            _ = run_now.notified() => {}
        }
        let reading = match tokio::time::timeout(spec.timeout, probe.read()).await {
            Ok(r) => r,
            Err(_) => Reading::Unknown(format!(
                "probe gave no answer within {}",
                humantime::format_duration(spec.timeout)
            )),
        };
        let result = ProbeResult {
            generation,
            check: spec.name.clone(),
            reading,
            at: now_micros(),
        };
        if sink.send(result).await.is_err() {
            return;
        }
    }
}
