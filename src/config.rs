//! Daemon settings from `/etc/vigil/vigil.toml`. Every key is optional; unknown keys are
//! errors with file, line and column. The file is never silently ignored when it is bad.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use toml::Spanned;

mod push;

pub use push::{
    HeartbeatPush, MetricsPush, PushFormat, PushSection, PushTarget, HEARTBEAT_PUSH_EVERY_SECS,
    METRICS_PUSH_EVERY_SECS, PUSH_EVERY_MIN_MS, PUSH_TIMEOUT_SECS,
};

use crate::core::check::HostRoots;
use crate::core::rule::Limit;
use crate::policy::diag::{Diagnostic, Source};

/// Where the settings file lives on the box.
pub const DEFAULT_CONFIG: &str = "/etc/vigil/vigil.toml";
/// Default heartbeat listener.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:9480";

/// The whole settings file.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    #[serde(default)]
    pub daemon: DaemonSection,
    #[serde(default)]
    pub http: HttpSection,
    #[serde(default)]
    pub docker: DockerSection,
    #[serde(default)]
    pub device: DeviceSection,
    #[serde(default)]
    pub host: HostSection,
    #[serde(default)]
    pub actions: ActionsSection,
    #[serde(default)]
    pub notify: NotifySection,
    #[serde(default)]
    pub heartbeat: HeartbeatSection,
    #[serde(default)]
    pub push: PushSection,
    #[serde(default)]
    pub hooks: BTreeMap<String, Hook>,
    #[serde(default)]
    pub update: UpdateSection,
    #[serde(default)]
    pub maintenance: MaintenanceSection,
}

/// `[maintenance]`
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MaintenanceSection {
    /// The units a maintenance window may start as its tunnel (an autossh unit,
    /// `wg-quick@wg0.service`); no other unit is started, whatever a caller names.
    #[serde(default)]
    pub tunnel_units: Vec<Spanned<String>>,
}

/// `[daemon]`
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DaemonSection {
    pub state_dir: Option<PathBuf>,
}

/// `[http]`
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HttpSection {
    /// Addresses to bind when systemd passes no socket (validated by [`Settings::parse`]).
    pub listen: Option<Vec<Spanned<String>>>,
    #[serde(default)]
    pub status_page: bool,
}

/// `[docker]`
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DockerSection {
    pub host: Option<String>,
}

/// `[device]`
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeviceSection {
    pub model: Option<String>,
}

/// `[host]`: where probes read procfs and sysfs (tests point these at prepared trees).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HostSection {
    pub proc_root: Option<PathBuf>,
    pub sys_root: Option<PathBuf>,
}

/// `[actions]`
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ActionsSection {
    #[serde(default)]
    pub clean_allow: Vec<PathBuf>,
    /// `N per DURATION` (validated by [`Settings::parse`]).
    pub reboot_limit: Option<Spanned<String>>,
}

/// `[notify]`
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NotifySection {
    #[serde(default)]
    pub webhook: Vec<Webhook>,
}

/// `[[notify.webhook]]`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Webhook {
    pub url: String,
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    pub token_credential: Option<String>,
}

/// `[heartbeat]`
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HeartbeatSection {
    pub push: Option<HeartbeatPush>,
}

/// `[hooks.NAME]`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Hook {
    pub command: Vec<String>,
    pub timeout: Option<String>,
}

/// `[update]`
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UpdateSection {
    pub keys_dir: Option<PathBuf>,
    /// Releases kept in `STATE/releases/` (current and previous always; default 3).
    pub keep_releases: Option<u32>,
    /// Hooks (`[hooks.NAME]`) run before a run starts applying.
    #[serde(default)]
    pub backup_hooks: Vec<Spanned<String>>,
    /// Hooks run when a run rolls back, before the targets restart.
    #[serde(default)]
    pub restore_hooks: Vec<Spanned<String>>,
    /// The hook run after the gate passed.
    pub commit_hook: Option<Spanned<String>>,
    /// What a USB stick with a bundle does: applies it, announces it, or nothing.
    #[serde(default)]
    pub usb: UsbMode,
}

/// `[update] usb`
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum UsbMode {
    /// Verify the newest bundle on the stick and apply it.
    Apply,
    /// Verify it and announce it (journal, D-Bus, heartbeat); apply by hand.
    #[default]
    Notify,
    /// Ignore sticks.
    Off,
}

impl UpdateSection {
    /// `backup_hooks`, by name.
    pub fn backup_hooks(&self) -> Vec<String> {
        self.backup_hooks
            .iter()
            .map(|h| h.get_ref().clone())
            .collect()
    }

    /// `restore_hooks`, by name.
    pub fn restore_hooks(&self) -> Vec<String> {
        self.restore_hooks
            .iter()
            .map(|h| h.get_ref().clone())
            .collect()
    }

    /// `commit_hook`, by name.
    pub fn commit_hook(&self) -> Option<String> {
        self.commit_hook.as_ref().map(|h| h.get_ref().clone())
    }
}

impl Settings {
    /// Parses settings text; `path` only names the file in errors.
    pub fn parse(path: &Path, text: &str) -> Result<Settings, Diagnostic> {
        let src = Source::new(path, text);
        let settings: Settings = toml::from_str(text).map_err(|e| src.toml_error(&e))?;
        // Every hook the update section names must exist.
        let u = &settings.update;
        for name in u
            .backup_hooks
            .iter()
            .chain(&u.restore_hooks)
            .chain(u.commit_hook.iter())
        {
            let n = name.get_ref();
            if !settings.hooks.contains_key(n) {
                return Err(src.at(
                    &name.span(),
                    format!("update: no hook named {n:?} (define it in a [hooks.{n}] table)"),
                ));
            }
        }
        // Errors about a value point at that value.
        for addr in settings.http.listen.iter().flatten() {
            if addr.get_ref().parse::<SocketAddr>().is_err() {
                return Err(src.at(
                    &addr.span(),
                    "http.listen: not an address such as \"127.0.0.1:9480\"",
                ));
            }
        }
        if let Some(l) = &settings.actions.reboot_limit {
            if let Err(e) = Limit::parse(l.get_ref()) {
                return Err(src.at(&l.span(), format!("actions.reboot_limit: {e}")));
            }
        }
        for unit in &settings.maintenance.tunnel_units {
            if let Err(e) = crate::core::maintenance::check_unit_name(unit.get_ref()) {
                return Err(src.at(&unit.span(), format!("maintenance.tunnel_units: {e}")));
            }
        }
        push::check(
            &src,
            settings.heartbeat.push.as_ref(),
            settings.push.metrics.as_ref(),
        )?;
        Ok(settings)
    }

    /// `[heartbeat.push]`, resolved; None when not configured.
    pub fn heartbeat_push(&self) -> Option<PushTarget> {
        self.heartbeat.push.as_ref().and_then(HeartbeatPush::target)
    }

    /// `[push.metrics]`, resolved; None when not configured.
    pub fn metrics_push(&self) -> Option<PushTarget> {
        self.push.metrics.as_ref().and_then(MetricsPush::target)
    }

    /// The heartbeat addresses of `[http] listen`, if set.
    pub fn listen_addrs(&self) -> Option<Vec<SocketAddr>> {
        self.http
            .listen
            .as_ref()
            .map(|l| l.iter().filter_map(|a| a.get_ref().parse().ok()).collect())
    }

    /// `[maintenance] tunnel_units`, by name.
    pub fn tunnel_units(&self) -> Vec<String> {
        self.maintenance
            .tunnel_units
            .iter()
            .map(|u| u.get_ref().clone())
            .collect()
    }

    /// `[actions] reboot_limit`, if set.
    pub fn reboot_limit(&self) -> Option<Limit> {
        self.actions
            .reboot_limit
            .as_ref()
            .and_then(|l| Limit::parse(l.get_ref()).ok())
    }

    /// Reads the settings file. A missing file at the default path means defaults; a file
    /// named explicitly must exist.
    pub fn load(path: &Path, explicit: bool) -> Result<Settings, Diagnostic> {
        // Never blocks on a FIFO put in its place; /dev/null reads as empty.
        match crate::policy::load::read_text_file(path) {
            Ok(text) => Settings::parse(path, &text),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound && !explicit => {
                Ok(Settings::default())
            }
            Err(e) => Err(Diagnostic {
                file: path.to_path_buf(),
                line: 1,
                column: 1,
                message: format!("cannot read settings: {e}"),
            }),
        }
    }

    /// The settings of `--config FILE` (which must exist), else of the default path (which
    /// may be absent: the defaults).
    pub fn load_from(config: Option<&Path>) -> Result<Settings, Diagnostic> {
        match config {
            Some(p) => Settings::load(p, true),
            None => Settings::load(Path::new(DEFAULT_CONFIG), false),
        }
    }

    /// What policy validation needs from the settings.
    pub fn load_context(&self) -> crate::policy::LoadContext {
        crate::policy::LoadContext {
            clean_allow: self.actions.clean_allow.clone(),
            hooks: self.hooks.keys().cloned().collect(),
        }
    }

    /// Probe roots with defaults.
    pub fn host_roots(&self) -> HostRoots {
        let d = HostRoots::default();
        HostRoots {
            proc: self.host.proc_root.clone().unwrap_or(d.proc),
            sys: self.host.sys_root.clone().unwrap_or(d.sys),
        }
    }
}

/// The state directory: flag, then settings, then `$STATE_DIRECTORY` (systemd), then
/// `$XDG_STATE_HOME/vigil`, then `./state`.
pub fn state_dir(flag: Option<&Path>, settings: &Settings) -> PathBuf {
    if let Some(p) = flag {
        return p.to_path_buf();
    }
    if let Some(p) = &settings.daemon.state_dir {
        return p.clone();
    }
    if let Some(p) = std::env::var_os("STATE_DIRECTORY") {
        // systemd may pass several, colon-separated; the first is ours.
        let s = p.to_string_lossy();
        if let Some(first) = s.split(':').next().filter(|f| !f.is_empty()) {
            return PathBuf::from(first);
        }
    }
    if let Some(p) = std::env::var_os("XDG_STATE_HOME").filter(|p| !p.is_empty()) {
        return PathBuf::from(p).join("vigil");
    }
    PathBuf::from("state")
}

#[cfg(test)]
mod tests {
    use super::*;

    const DESIGN_EXAMPLE: &str = r#"
[daemon]
state_dir = "/var/lib/vigil"

[http]
listen = ["127.0.0.1:9480"]
status_page = false

[docker]
host = "unix:///var/run/docker.sock"

[device]
model = "jetson-agx-orin"

[actions]
clean_allow = ["/var/log/arasul"]
reboot_limit = "1 per 6h"

[[notify.webhook]]
url = "https://alerts.example.com/hook"
headers = { Authorization = "Bearer x" }
token_credential = "alert-token"

[heartbeat.push]
url = "https://monitor.example.com/api/push/x"
every = "30s"
token_credential = "heartbeat-token"

[hooks.db-backup]
command = ["/usr/lib/arasul/backup-db", "--out", "/var/lib/vigil/backups"]
timeout = "10m"

# Not in DESIGN.md's example, which names the hook without defining it (now refused).
[hooks.mark-boot-good]
command = ["/usr/sbin/nvbootctrl", "mark-boot-successful"]

[update]
keys_dir = "/etc/vigil/keys"
keep_releases = 3
backup_hooks = ["db-backup"]
commit_hook = "mark-boot-good"
"#;

    #[test]
    fn the_design_example_parses() {
        let s = Settings::parse(Path::new("vigil.toml"), DESIGN_EXAMPLE).unwrap();
        assert_eq!(
            s.daemon.state_dir.as_deref(),
            Some(Path::new("/var/lib/vigil"))
        );
        assert_eq!(
            s.listen_addrs().unwrap(),
            vec!["127.0.0.1:9480".parse::<SocketAddr>().unwrap()]
        );
        assert_eq!(s.notify.webhook.len(), 1);
        assert_eq!(s.hooks["db-backup"].command.len(), 3);
        assert_eq!(s.update.keep_releases, Some(3));
        assert_eq!(s.update.backup_hooks(), vec!["db-backup".to_string()]);
        assert_eq!(s.update.usb, UsbMode::Notify);
    }

    #[test]
    fn update_hooks_must_exist_and_usb_is_typed() {
        let text = "[hooks.a]\ncommand = [\"/bin/true\"]\n\n[update]\nbackup_hooks = [\"a\"]\nrestore_hooks = [\"a\", \"b\"]\n";
        let e = Settings::parse(Path::new("v.toml"), text).unwrap_err();
        assert_eq!((e.line, e.column), (6, 23), "{e}");
        assert!(e.message.contains("no hook named \"b\""), "{e}");
        let e = Settings::parse(Path::new("v.toml"), "[update]\nusb = \"yes\"\n").unwrap_err();
        assert_eq!(e.line, 2, "{e}");
        let s = Settings::parse(Path::new("v.toml"), "[update]\nusb = \"apply\"\n").unwrap();
        assert_eq!(s.update.usb, UsbMode::Apply);
    }

    #[test]
    fn unknown_key_names_file_line_column() {
        let e = Settings::parse(
            Path::new("/etc/vigil/vigil.toml"),
            "[http]\nlisten = []\nport = 80\n",
        )
        .unwrap_err();
        assert_eq!((e.line, e.column), (3, 1), "{e}");
        assert!(
            e.to_string()
                .starts_with("/etc/vigil/vigil.toml:3:1: unknown field `port`"),
            "{e}"
        );
    }

    #[test]
    fn bad_listen_address_is_refused() {
        let e =
            Settings::parse(Path::new("v.toml"), "[http]\nlisten = [\"localhost\"]\n").unwrap_err();
        assert_eq!(e.line, 2);
        assert!(e.message.contains("not an address"), "{e}");
    }

    /// An error about a value points at that value, not at the first place its text
    /// appears in the file nor at the table that holds it.
    #[test]
    fn value_errors_point_at_the_value() {
        let text = "# 127.0.0.1:1 in a comment\n[http]\nlisten = [\"127.0.0.1:1\", \"nope\"]\n\n[actions]\nreboot_limit = \"often\"\n";
        let e = Settings::parse(Path::new("v.toml"), text).unwrap_err();
        assert_eq!((e.line, e.column), (3, 26), "{e}");
        let text = "[actions]\nclean_allow = []\nreboot_limit = \"often\"\n";
        let e = Settings::parse(Path::new("v.toml"), text).unwrap_err();
        assert_eq!((e.line, e.column), (3, 16), "{e}");
        assert!(e.message.contains("reboot_limit"), "{e}");
    }

    #[test]
    fn missing_default_file_is_defaults_but_missing_explicit_is_an_error() {
        let p = Path::new("/nonexistent/vigil.toml");
        assert!(Settings::load(p, false).is_ok());
        assert!(Settings::load(p, true)
            .unwrap_err()
            .message
            .contains("cannot read"));
    }
}
