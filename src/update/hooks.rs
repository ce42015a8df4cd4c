//! Update hooks: a `[hooks.NAME]` command from vigil.toml run for a step of an update
//! (`hook NAME`, `backup_hooks`, `restore_hooks`, `commit_hook`) the way the `hook` action
//! runs one (argv without a shell, a clean environment, `nobody` when vigild is root, the
//! whole process group killed at the timeout; under systemd in a `vigil-run@….service` unit of
//! its own, see [`crate::sys::sandbox`]), told about the update through
//! `VIGIL_RELEASE_DIR`, `VIGIL_PREVIOUS_DIR`, `VIGIL_BUNDLE_VERSION` and `VIGIL_UPDATE_RUN`.
//! In the sandbox, /var/lib/vigil (and with it the release directories) cannot be read; what
//! a hook keeps between runs (a backup for its restore hook) goes under `$VIGIL_HOOK_DIR`
//! (/var/lib/vigil-run, the sandbox's own state directory).

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use crate::config::Hook;
use crate::sys::command::{with_output, Ran};
use crate::sys::sandbox;

/// How long an update hook may run unless `[hooks.NAME] timeout` says otherwise.
pub const HOOK_TIMEOUT_DEFAULT: Duration = Duration::from_secs(5 * 60);

/// What an update hook is told.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HookEnv {
    /// The new release's directory (`VIGIL_RELEASE_DIR`).
    pub release_dir: PathBuf,
    /// The previous release's directory (`VIGIL_PREVIOUS_DIR`; empty when none).
    pub previous_dir: Option<PathBuf>,
    /// The bundle's version (`VIGIL_BUNDLE_VERSION`).
    pub version: String,
    /// The run's id (`VIGIL_UPDATE_RUN`).
    pub run: String,
}

impl HookEnv {
    /// The variables, as the command gets them.
    pub fn vars(&self) -> Vec<(&'static str, String)> {
        let dir = |p: &PathBuf| p.to_string_lossy().into_owned();
        vec![
            ("VIGIL_RELEASE_DIR", dir(&self.release_dir)),
            (
                "VIGIL_PREVIOUS_DIR",
                self.previous_dir.as_ref().map(dir).unwrap_or_default(),
            ),
            ("VIGIL_BUNDLE_VERSION", self.version.clone()),
            ("VIGIL_UPDATE_RUN", self.run.clone()),
        ]
    }
}

/// The hook's time limit: its `timeout` (humantime), else [`HOOK_TIMEOUT_DEFAULT`].
pub fn limit(name: &str, hook: &Hook) -> Result<Duration, String> {
    match hook.timeout.as_deref() {
        None => Ok(HOOK_TIMEOUT_DEFAULT),
        Some(t) => humantime::parse_duration(t)
            .map_err(|e| format!("hook {name}: timeout {t:?} is not a duration: {e}")),
    }
}

/// Runs the hook `name` of `hooks` with the update's environment. `Ok` is a summary with
/// its output (`hook NAME succeeded: …`); `Err` says why it failed (it exited non-zero,
/// timed out and was killed, could not start, or is not defined).
pub async fn run(
    name: &str,
    hooks: &BTreeMap<String, Hook>,
    env: &HookEnv,
) -> Result<String, String> {
    let hook = hooks
        .get(name)
        .ok_or_else(|| format!("hook {name:?} is not defined in vigil.toml"))?;
    let within = limit(name, hook)?;
    let vars = env.vars();
    let pairs: Vec<(&str, &str)> = vars.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let (ran, place) = sandbox::run("update-hook", name, &hook.command, &pairs, within).await;
    let at = place.suffix();
    match ran {
        Ran::Ended {
            success: true,
            output,
            ..
        } => Ok(with_output(format!("hook {name} succeeded{at}"), &output)),
        Ran::Ended { what, output, .. } => {
            Err(with_output(format!("hook {name} {what}{at}"), &output))
        }
        Ran::TimedOut { output, .. } => Err(with_output(
            format!(
                "hook {name} timed out after {} and was killed{at}",
                humantime::format_duration(within)
            ),
            &output,
        )),
        Ran::CannotStart(why) | Ran::CannotWait(why) => Err(format!("hook {name}: {why}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hooks(list: &[(&str, &[&str], Option<&str>)]) -> BTreeMap<String, Hook> {
        list.iter()
            .map(|(n, argv, t)| {
                (
                    n.to_string(),
                    Hook {
                        command: argv.iter().map(|s| s.to_string()).collect(),
                        timeout: t.map(String::from),
                    },
                )
            })
            .collect()
    }

    fn env(previous: Option<&str>) -> HookEnv {
        HookEnv {
            release_dir: PathBuf::from("/var/lib/vigil/releases/1.4.0"),
            previous_dir: previous.map(PathBuf::from),
            version: "1.4.0".into(),
            run: "12".into(),
        }
    }

    #[tokio::test]
    async fn a_hook_is_told_about_the_update_and_nothing_else() {
        let dir = tempfile::tempdir().unwrap();
        // Hooks run as nobody when vigild is root: the file they write must be writable.
        std::fs::set_permissions(
            dir.path(),
            std::os::unix::fs::PermissionsExt::from_mode(0o777),
        )
        .unwrap();
        let out = dir.path().join("env");
        let script = format!("env | sort > {}; echo migrated", out.display());
        let h = hooks(&[("migrate", &["/bin/sh", "-c", &script], None)]);
        let said = run("migrate", &h, &env(Some("/var/lib/vigil/releases/1.3.0")))
            .await
            .unwrap();
        assert_eq!(said, "hook migrate succeeded: migrated");
        let seen = std::fs::read_to_string(&out).unwrap();
        for line in [
            "VIGIL_RELEASE_DIR=/var/lib/vigil/releases/1.4.0",
            "VIGIL_PREVIOUS_DIR=/var/lib/vigil/releases/1.3.0",
            "VIGIL_BUNDLE_VERSION=1.4.0",
            "VIGIL_UPDATE_RUN=12",
            "PATH=/usr/sbin:/usr/bin:/sbin:/bin",
        ] {
            assert!(seen.lines().any(|l| l == line), "{line} in\n{seen}");
        }
        assert!(!seen.contains("HOME="), "a clean environment:\n{seen}");
        // No previous release: the variable is there, empty.
        run("migrate", &h, &env(None)).await.unwrap();
        let seen = std::fs::read_to_string(&out).unwrap();
        assert!(seen.lines().any(|l| l == "VIGIL_PREVIOUS_DIR="), "{seen}");
    }

    #[tokio::test]
    async fn failures_say_why() {
        let h = hooks(&[
            ("bad", &["/bin/sh", "-c", "echo no room >&2; exit 4"], None),
            ("slow", &["/bin/sleep", "30"], Some("300ms")),
            ("odd", &["/bin/true"], Some("soon")),
            ("gone", &["/nonexistent/migrate"], None),
        ]);
        let e = env(None);
        assert_eq!(
            run("bad", &h, &e).await,
            Err("hook bad exited 4: no room".into())
        );
        let start = std::time::Instant::now();
        let slow = run("slow", &h, &e).await.unwrap_err();
        assert_eq!(slow, "hook slow timed out after 300ms and was killed");
        assert!(start.elapsed() < Duration::from_secs(5));
        assert!(run("odd", &h, &e)
            .await
            .unwrap_err()
            .contains("not a duration"));
        assert!(run("gone", &h, &e)
            .await
            .unwrap_err()
            .contains("cannot run /nonexistent/migrate"));
        assert_eq!(
            run("missing", &h, &e).await,
            Err("hook \"missing\" is not defined in vigil.toml".into())
        );
        assert_eq!(limit("x", &h["bad"]), Ok(HOOK_TIMEOUT_DEFAULT));
    }
}
