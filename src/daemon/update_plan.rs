//! What an update run needs to know to finish, kept in its journal row (`data`), and what
//! it needs from the settings.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::action::Actuators;
use crate::config::{Hook, Settings};
use crate::core::action::Target;
use crate::core::bundle::{Gate, Manifest, Step};
use crate::core::time::rfc3339_millis;
use crate::sys::clock;
use crate::update::journal::Journal;

/// Releases kept when `[update] keep_releases` is not set.
pub const KEEP_RELEASES_DEFAULT: usize = 3;

/// A run's plan, as its journal row keeps it (JSON): enough to roll back or commit after a
/// restart without the bundle or its staging.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Plan {
    /// The release the run installs (`releases/NAME`): the bundle's version.
    pub release: String,
    /// The release `current` pointed at before (none on a fresh box).
    pub previous: Option<String>,
    /// Every tag the bundle's images carry, and the image id it named before the run
    /// (`None`: the tag did not exist). Recorded before the first `docker load`.
    pub tags_before: BTreeMap<String, Option<String>>,
    /// The units and containers the run restarts (`unit:x`, `container:y`).
    pub targets: Vec<String>,
    /// The gate's check selectors.
    pub gate_checks: Vec<String>,
    pub gate_window_ms: u64,
    pub gate_timeout_ms: u64,
    /// For a rollback run: the committed run it undoes.
    pub rollback_of: Option<u64>,
}

impl Plan {
    /// The plan of applying `m` over `previous`.
    pub fn of(m: &Manifest, previous: Option<String>) -> Plan {
        let targets = m
            .steps
            .iter()
            .filter_map(|s| match s {
                Step::Restart { target } => Some(target.to_string()),
                _ => None,
            })
            .collect();
        Plan {
            release: m.version.to_string(),
            previous,
            tags_before: BTreeMap::new(),
            targets,
            // No [gate]: nothing to wait for; the run commits once its steps are done.
            gate_checks: m
                .gate
                .iter()
                .flat_map(|g| g.checks.iter().map(|c| c.to_string()))
                .collect(),
            gate_window_ms: m.gate.as_ref().map_or(0, |g| millis(g.window)),
            gate_timeout_ms: m.gate.as_ref().map_or(0, |g| millis(g.timeout)),
            rollback_of: None,
        }
    }

    /// The gate, typed.
    pub fn gate(&self) -> Gate {
        Gate {
            checks: self.gate_checks.iter().map(|c| c.as_str().into()).collect(),
            window: Duration::from_millis(self.gate_window_ms),
            timeout: Duration::from_millis(self.gate_timeout_ms),
        }
    }

    /// The restart targets, typed (a target that no longer parses is dropped).
    pub fn targets(&self) -> Vec<Target> {
        self.targets
            .iter()
            .filter_map(|t| crate::core::action::parse(&format!("restart {t}")).ok())
            .filter_map(|a| match a {
                crate::core::action::Action::Restart(t) => Some(t),
                _ => None,
            })
            .collect()
    }

    pub fn to_json(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }

    pub fn from_json(s: &str) -> Result<Plan, String> {
        serde_json::from_str(s)
            .map_err(|e| format!("the run's plan in the journal is unreadable: {e}"))
    }
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

/// What runs need from the settings and the command line, read at the start of each run.
#[derive(Debug, Clone, Default)]
pub struct RunEnv {
    pub state_dir: PathBuf,
    pub keys_dir: PathBuf,
    /// This box's model (`[device] model`, else the device tree's).
    pub model: Option<String>,
    pub hooks: BTreeMap<String, Hook>,
    pub backup_hooks: Vec<String>,
    pub restore_hooks: Vec<String>,
    pub commit_hook: Option<String>,
    pub keep_releases: usize,
    pub usb: crate::config::UsbMode,
    pub docker_host: Option<String>,
    /// Restarts and alerts go through the same actuators as the rules' actions.
    pub actuators: Arc<Actuators>,
}

/// Where the device tree names the board.
const DEVICE_TREE_MODEL: &str = "/proc/device-tree/model";

impl RunEnv {
    pub fn new(settings: &Settings, state_dir: &Path, actuators: Arc<Actuators>) -> RunEnv {
        let u = &settings.update;
        RunEnv {
            state_dir: state_dir.to_path_buf(),
            keys_dir: u
                .keys_dir
                .clone()
                .unwrap_or_else(|| PathBuf::from(crate::bundle::KEYS_DIR_DEFAULT)),
            model: settings.device.model.clone().or_else(|| {
                std::fs::read_to_string(DEVICE_TREE_MODEL)
                    .ok()
                    .map(|m| m.trim_matches(char::from(0)).trim().to_string())
                    .filter(|m| !m.is_empty())
            }),
            hooks: settings.hooks.clone(),
            backup_hooks: u.backup_hooks(),
            restore_hooks: u.restore_hooks(),
            commit_hook: u.commit_hook(),
            keep_releases: u
                .keep_releases
                .map_or(KEEP_RELEASES_DEFAULT, |k| k as usize),
            usb: u.usb,
            docker_host: settings.docker.host.clone(),
            actuators,
        }
    }
}

/// The journal, shared by the runner and the tasks that carry out its effects; every write
/// runs on the blocking pool and is durable when it returns.
#[derive(Clone)]
pub struct SharedJournal(pub Arc<Mutex<Journal>>);

impl SharedJournal {
    /// Runs `f` on the journal off the runtime.
    pub async fn with<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut Journal) -> Result<T, String> + Send + 'static,
    ) -> Result<T, String> {
        let j = self.0.clone();
        tokio::task::spawn_blocking(move || {
            let mut j = j.lock().unwrap_or_else(|p| p.into_inner());
            f(&mut j)
        })
        .await
        .map_err(|e| format!("the journal task failed: {e}"))?
    }

    /// One event of run `run` in `state`, durable before it returns.
    pub async fn note(
        &self,
        run: u64,
        state: &str,
        what: &str,
        detail: &str,
    ) -> Result<(), String> {
        let (state, what, detail) = (state.to_string(), what.to_string(), detail.to_string());
        let at = wall_us();
        self.with(move |j| j.record(run, &state, &what, &detail, at, false))
            .await
    }
}

/// Now on the wall clock, for records.
pub fn wall_us() -> i64 {
    i64::try_from(clock::now().wall).unwrap_or(i64::MAX)
}

/// A record's wall time for display.
pub fn display_time(us: i64) -> String {
    rfc3339_millis(u64::try_from(us).unwrap_or(0))
}
