//! The actuators: one entry point that carries out any action with a timeout.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use super::notify::Notification;
use super::outcome::Outcome;
use super::{clean, container, hook, notify, ollama, signal, unit};
use crate::config::{Hook, Settings, Webhook};
use crate::core::action::{is_vacuum_size, Action, Target};

/// Longest any single action may take unless it says otherwise.
pub const ACTION_TIMEOUT_DEFAULT_SECS: u64 = 60;

/// What actions need from the settings.
#[derive(Debug, Clone, Default)]
pub struct Actuators {
    pub webhooks: Vec<Webhook>,
    pub hooks: BTreeMap<String, Hook>,
    pub clean_allow: Vec<PathBuf>,
    /// `$CREDENTIALS_DIRECTORY` (systemd `LoadCredential=`), for tokens.
    pub credentials_dir: Option<PathBuf>,
    /// `[docker] host`.
    pub docker_host: Option<String>,
    /// A D-Bus address for systemd instead of the system bus (tests).
    pub systemd_bus: Option<String>,
    /// The URL behind each `ollama` check, for `unload-models CHECK`.
    pub ollama_urls: BTreeMap<String, String>,
}

impl Actuators {
    /// From the daemon settings and the environment.
    pub fn from_settings(s: &Settings) -> Actuators {
        Actuators {
            webhooks: s.notify.webhook.clone(),
            hooks: s.hooks.clone(),
            clean_allow: s.actions.clean_allow.clone(),
            credentials_dir: std::env::var_os("CREDENTIALS_DIRECTORY").map(PathBuf::from),
            docker_host: s.docker.host.clone(),
            systemd_bus: None,
            ollama_urls: BTreeMap::new(),
        }
    }

    /// Starts or stops one unit through systemd (polkit decides), waiting at most `limit`
    /// for its job: a maintenance window's tunnel.
    pub async fn unit_job(&self, start: bool, unit_name: &str, limit: Duration) -> Outcome {
        let verb = if start { "start" } else { "stop" };
        unit::act(verb, unit_name, self.systemd_bus.as_deref(), limit).await
    }

    /// Carries out one action, bounded by a timeout.
    pub async fn run(&self, action: &Action, note: &Notification) -> Outcome {
        let limit = match action {
            Action::Hook(name) => self
                .hooks
                .get(name)
                .and_then(|h| h.timeout.as_deref())
                .and_then(|t| humantime::parse_duration(t).ok())
                .unwrap_or(Duration::from_secs(ACTION_TIMEOUT_DEFAULT_SECS)),
            _ => Duration::from_secs(ACTION_TIMEOUT_DEFAULT_SECS),
        };
        let work = async {
            match action {
                Action::Notify => {
                    notify::send(&self.webhooks, self.credentials_dir.as_deref(), note).await
                }
                Action::Hook(name) => match self.hooks.get(name) {
                    Some(h) => hook::run(name, &h.command, limit).await,
                    None => Outcome::Failed(format!("hook {name:?} is not defined in vigil.toml")),
                },
                Action::Clean { dir, older_than } => {
                    let (dir, older_than, allow) =
                        (dir.clone(), *older_than, self.clean_allow.clone());
                    tokio::task::spawn_blocking(move || clean::clean(&dir, older_than, &allow))
                        .await
                        .unwrap_or_else(|e| Outcome::Failed(format!("clean task failed: {e}")))
                }
                Action::Signal { process, signal } => {
                    signal::send(process, *signal, self.systemd_bus.as_deref()).await
                }
                Action::UnloadModels(check) => match self.ollama_urls.get(check) {
                    Some(url) => ollama::unload_all(url).await,
                    None => Outcome::Failed(format!("no ollama check named {check:?}")),
                },
                Action::PruneDocker => container::prune(self.docker_host.as_deref()).await,
                Action::Reboot => unit::reboot(self.systemd_bus.as_deref()).await,
                Action::VacuumJournal(size) => {
                    // journalctl needs root: a small oneshot unit does it (polkit lets vigil
                    // start it).
                    if !is_vacuum_size(size) {
                        Outcome::Failed(format!(
                            "vacuum journal {size}: a size such as 500M or 1.5G"
                        ))
                    } else {
                        let unit_name = format!("vigil-journal-vacuum@{size}.service");
                        unit::act("start", &unit_name, self.systemd_bus.as_deref(), limit).await
                    }
                }
                Action::Restart(t) | Action::Start(t) | Action::Stop(t) => {
                    let verb = action.verb().as_str();
                    match t {
                        Target::Container(n) => {
                            container::act(verb, n, self.docker_host.as_deref()).await
                        }
                        Target::Unit(n) => {
                            unit::act(verb, n, self.systemd_bus.as_deref(), limit).await
                        }
                        other => {
                            Outcome::Failed(format!("{verb} {other}: not a unit or container"))
                        }
                    }
                }
            }
        };
        match tokio::time::timeout(limit + Duration::from_secs(1), work).await {
            Ok(o) => o,
            Err(_) => Outcome::Failed(format!(
                "gave no result within {}",
                humantime::format_duration(limit)
            )),
        }
    }
}
