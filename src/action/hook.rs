//! `hook NAME`: a command from `vigil.toml`, argv without a shell, with a timeout, without
//! privileges, its output captured. Under systemd it runs in a `vigil-run@….service` unit
//! of its own (a dynamic user, no groups, no access to vigil's state or Docker; see
//! [`crate::sys::sandbox`]), and the result says which unit and user.

use std::time::Duration;

use super::outcome::Outcome;
use crate::sys::command::{with_output, Ran};
use crate::sys::sandbox;

/// Runs the hook's argv (the same way as the `exec` probe: no shell, a clean environment,
/// in its sandbox unit under systemd, else as a child and as `nobody` when vigild is root,
/// the whole process group killed at the timeout); exit 0 is done, anything else failed.
pub async fn run(name: &str, argv: &[String], limit: Duration) -> Outcome {
    let (ran, place) = sandbox::run("hook", name, argv, &[], limit).await;
    let at = place.suffix();
    match ran {
        Ran::Ended {
            success: true,
            output,
            ..
        } => Outcome::Done(with_output(format!("hook {name} succeeded{at}"), &output)),
        Ran::Ended { what, output, .. } => {
            Outcome::Failed(with_output(format!("hook {name} {what}{at}"), &output))
        }
        Ran::TimedOut { output, .. } => Outcome::Failed(with_output(
            format!(
                "hook {name} timed out after {} and was killed{at}",
                humantime::format_duration(limit)
            ),
            &output,
        )),
        Ran::CannotStart(why) | Ran::CannotWait(why) => {
            Outcome::Failed(format!("hook {name}: {why}"))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn argv(a: &[&str]) -> Vec<String> {
        a.iter().map(|s| s.to_string()).collect()
    }

    #[tokio::test]
    async fn success_failure_timeout_and_missing_program() {
        let out = run(
            "ok",
            &argv(&["/bin/sh", "-c", "echo backed up; id -u"]),
            Duration::from_secs(5),
        )
        .await;
        let Outcome::Done(s) = out else {
            panic!("{out:?}")
        };
        assert!(s.contains("backed up"), "{s}");
        if nix::unistd::geteuid().is_root() {
            assert!(
                s.ends_with("65534"),
                "runs as nobody when vigild is root: {s}"
            );
        }
        let out = run(
            "bad",
            &argv(&["/bin/sh", "-c", "echo disk full >&2; exit 3"]),
            Duration::from_secs(5),
        )
        .await;
        assert_eq!(out, Outcome::Failed("hook bad exited 3: disk full".into()));
        let start = std::time::Instant::now();
        let out = run(
            "slow",
            &argv(&["/bin/sleep", "30"]),
            Duration::from_millis(300),
        )
        .await;
        assert!(
            matches!(out, Outcome::Failed(ref s) if s.contains("timed out")),
            "{out:?}"
        );
        assert!(start.elapsed() < Duration::from_secs(5));
        let out = run(
            "gone",
            &argv(&["/nonexistent/backup"]),
            Duration::from_secs(1),
        )
        .await;
        assert!(
            matches!(out, Outcome::Failed(ref s) if s.contains("cannot run /nonexistent/backup")),
            "{out:?}"
        );
    }
}
