//! What vigild was started with, and the configuration it derives from the settings file
//! and the policies. Immutable between reloads: a reload builds a new one.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::action::Actuators;
use crate::config::Settings;
use crate::core::engine::Globals;
use crate::policy::{self, PolicySet};
use crate::probe::{facts, Connections, Context};

/// The check that reports a bad settings file or policy set.
pub const CONFIG_CHECK: &str = "vigil:config";

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

/// The configuration the settings file gives the daemon.
#[derive(Clone)]
pub struct Config {
    /// What probes get: host roots, Docker host, the shared connections.
    pub ctx: Context,
    /// Engine-wide settings.
    pub globals: Globals,
    /// What actions need.
    pub actuators: Arc<Actuators>,
    /// `[maintenance] tunnel_units`: the only units a maintenance window may start.
    pub tunnel_units: Arc<Vec<String>>,
}

impl Config {
    /// From the settings, with the daemon's shared connections (kept across reloads).
    pub fn new(settings: &Settings, connections: Arc<Connections>) -> Config {
        let mut globals = Globals::default();
        if let Some(l) = settings.reboot_limit() {
            globals.reboot_limit = l;
        }
        Config {
            ctx: Context {
                roots: settings.host_roots(),
                docker_host: settings.docker.host.clone(),
                systemd_bus: None,
                connections,
            },
            globals,
            actuators: Arc::new(Actuators::from_settings(settings)),
            tunnel_units: Arc::new(settings.tunnel_units()),
        }
    }
}

/// Reads the settings file. Blocking.
pub fn load_settings(opts: &Options) -> Result<Settings, String> {
    Settings::load_from(opts.config.as_deref()).map_err(|d| d.to_string())
}

/// Reads the policies the settings allow for; with no file at all, the built-in checks
/// for this host. Blocking (files, host facts).
pub fn load_policies(opts: &Options, settings: &Settings) -> Result<PolicySet, String> {
    let roots = settings.host_roots();
    let gather = || facts::gather(&roots, Path::new(policy::DOCKER_SOCKET));
    policy::load_dirs(&policy_dirs(opts), &settings.load_context(), gather)
        .map_err(|d| d.to_string())
}

/// At a reload: both must be good, or the reload is refused with what was wrong.
pub fn load_strict(opts: &Options) -> Result<(Settings, PolicySet), String> {
    let settings = load_settings(opts)?;
    let policies = load_policies(opts, &settings)?;
    Ok((settings, policies))
}

/// At start: bad policies are replaced by the built-in checks, and said.
pub fn load_policies_lenient(opts: &Options, settings: &Settings) -> (PolicySet, Option<String>) {
    match load_policies(opts, settings) {
        Ok(set) => (set, None),
        Err(e) => {
            let roots = settings.host_roots();
            let facts = facts::gather(&roots, Path::new(policy::DOCKER_SOCKET));
            (policy::builtin(&facts), Some(e))
        }
    }
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

/// One line for a check's detail from a (possibly long) list of errors.
pub fn config_detail(errors: &str) -> String {
    let mut lines = errors.lines();
    let first = lines.next().unwrap_or("bad configuration");
    let more = lines.count();
    let tail = if more > 0 {
        format!(" (and {more} more)")
    } else {
        String::new()
    };
    format!(
        "running on defaults and built-in checks where the configuration is bad: {first}{tail}; \
         fix it (vigilctl policy check) and reload"
    )
}
