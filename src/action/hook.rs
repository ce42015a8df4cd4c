//! `hook NAME`: a command from `vigil.toml`, argv without a shell, with a timeout, without
//! privileges, its output captured.

use std::process::Stdio;
use std::time::Duration;

use tokio::io::AsyncReadExt;

use super::Outcome;

/// Most output kept in the result.
const OUTPUT_TAIL_BYTES: usize = 1024;

fn tail(bytes: &[u8]) -> String {
    let start = bytes.len().saturating_sub(OUTPUT_TAIL_BYTES);
    String::from_utf8_lossy(&bytes[start..])
        .trim()
        .replace('\n', " ⏎ ")
}

/// Runs the hook's argv; exit 0 is done, anything else failed.
pub async fn run(name: &str, argv: &[String], limit: Duration) -> Outcome {
    let Some((prog, args)) = argv.split_first() else {
        return Outcome::Failed(format!("hook {name:?} has an empty command"));
    };
    let mut cmd = tokio::process::Command::new(prog);
    cmd.args(args)
        .env_clear()
        .env("PATH", "/usr/sbin:/usr/bin:/sbin:/bin")
        .env("LANG", "C.UTF-8")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .process_group(0);
    if nix::unistd::geteuid().is_root() {
        // Hooks never run with privileges, even if vigild was started as root.
        cmd.uid(65534).gid(65534);
    }
    let mut child = match cmd.spawn() {
        Ok(c) => c,
        Err(e) => return Outcome::Failed(format!("hook {name}: cannot run {prog}: {e}")),
    };
    let (mut out, mut err) = (child.stdout.take().unwrap(), child.stderr.take().unwrap());
    let collect = async move {
        let mut buf = Vec::new();
        let mut ebuf = Vec::new();
        // Bounded: a chatty hook cannot fill vigild's memory.
        let (mut out, mut err) = ((&mut out).take(1 << 20), (&mut err).take(1 << 20));
        let _ = tokio::join!(out.read_to_end(&mut buf), err.read_to_end(&mut ebuf));
        buf.extend_from_slice(&ebuf);
        buf
    };
    let run = async { tokio::join!(child.wait(), collect) };
    match tokio::time::timeout(limit, run).await {
        Ok((Ok(status), output)) => {
            let text = tail(&output);
            match status.code() {
                Some(0) => Outcome::Done(format!(
                    "hook {name} succeeded{}",
                    if text.is_empty() {
                        String::new()
                    } else {
                        format!(": {text}")
                    }
                )),
                Some(c) => Outcome::Failed(format!("hook {name} exited {c}: {text}")),
                None => Outcome::Failed(format!("hook {name} was killed by a signal: {text}")),
            }
        }
        Ok((Err(e), _)) => Outcome::Failed(format!("hook {name}: {e}")),
        Err(_) => {
            // kill_on_drop ends the process; the whole group goes with it.
            if let Some(pid) = child.id() {
                let _ = nix::sys::signal::killpg(
                    nix::unistd::Pid::from_raw(pid as i32),
                    nix::sys::signal::Signal::SIGKILL,
                );
            }
            Outcome::Failed(format!(
                "hook {name} timed out after {} and was killed",
                humantime::format_duration(limit)
            ))
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
