//! Running a command the way probes and hooks need it: an argv without a shell, a clean
//! environment, its own process group, a time limit, and bounded output.

use std::os::unix::process::ExitStatusExt;
use std::path::Path;
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::io::AsyncReadExt;

use crate::sys::http::ms_since;

/// Bytes of output kept for the detail (the last ones).
pub const OUTPUT_TAIL: usize = 512;

/// The whole environment of the command.
pub const ENV: &[(&str, &str)] = &[
    ("PATH", "/usr/sbin:/usr/bin:/sbin:/bin"),
    ("LANG", "C.UTF-8"),
];

/// Who the command runs as when vigild is root: `nobody`.
pub const NOBODY: u32 = 65534;

/// The last [`OUTPUT_TAIL`] bytes of what the command wrote.
#[derive(Default)]
struct Tail {
    buf: Vec<u8>,
    total: usize,
}

impl Tail {
    fn push(&mut self, b: &[u8]) {
        self.total += b.len();
        self.buf.extend_from_slice(b);
        if self.buf.len() > OUTPUT_TAIL {
            let cut = self.buf.len() - OUTPUT_TAIL;
            self.buf.drain(..cut);
        }
    }

    /// The output on one line, `…` in front when cut.
    fn text(&self) -> String {
        let text = String::from_utf8_lossy(&self.buf);
        let text = text.trim_start_matches('\u{FFFD}');
        let lines: Vec<&str> = text
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .collect();
        let one = lines.join(" | ");
        if self.total > self.buf.len() && !one.is_empty() {
            format!("…{one}")
        } else {
            one
        }
    }
}

fn read_into(
    mut pipe: impl tokio::io::AsyncRead + Unpin + Send + 'static,
    tail: Arc<Mutex<Tail>>,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut chunk = [0u8; 4096];
        loop {
            match pipe.read(&mut chunk).await {
                Ok(0) | Err(_) => return,
                Ok(n) => tail.lock().unwrap().push(&chunk[..n]),
            }
        }
    })
}

fn signal_name(sig: i32) -> String {
    nix::sys::signal::Signal::try_from(sig)
        .map(|s| s.as_str().to_string())
        .unwrap_or_else(|_| format!("signal {sig}"))
}

/// Kills the command's process group, stragglers included.
fn kill_group(pid: Option<u32>) {
    if let Some(pid) = pid {
        let _ = nix::sys::signal::killpg(
            nix::unistd::Pid::from_raw(pid as i32),
            nix::sys::signal::Signal::SIGKILL,
        );
    }
}

/// How one run of a command ended; also the hook sandbox's answer on its socket
/// ([`crate::sys::sandbox`]).
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case", tag = "ran", content = "how")]
pub enum Ran {
    /// It ended by itself: `exited N` or `killed by SIG…`.
    Ended {
        success: bool,
        /// The exit status, or 128 + N when killed by signal N.
        code: i32,
        what: String,
        output: String,
        duration_ms: f64,
    },
    /// It did not end within the time and was killed with its whole group.
    TimedOut { output: String, duration_ms: f64 },
    /// It could not be started, and why.
    CannotStart(String),
    /// It started, but waiting for it failed.
    CannotWait(String),
}

/// Runs `argv` without a shell, with stdin from /dev/null, in `/`, with only [`ENV`], in a
/// process group of its own, as `nobody` when vigild is root; kills the group at `within`
/// and whatever it leaves behind when it ends. Shared by the `exec` probe and `hook` action.
pub async fn run(argv: &[String], within: Duration) -> Ran {
    run_with_env(argv, within, &[]).await
}

/// [`run`] with `env` added to [`ENV`] (update hooks get `VIGIL_RELEASE_DIR` and the like).
pub async fn run_with_env(argv: &[String], within: Duration, env: &[(&str, &str)]) -> Ran {
    let Some((prog, args)) = argv.split_first() else {
        return Ran::CannotStart("empty command".into());
    };
    let as_root = nix::unistd::geteuid().is_root();
    let mut cmd = tokio::process::Command::new(prog);
    cmd.args(args)
        .env_clear()
        .envs(ENV.iter().copied())
        .envs(env.iter().copied())
        .current_dir("/")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        .kill_on_drop(true);
    if as_root {
        // std drops the supplementary groups too when it changes uid as root.
        cmd.uid(NOBODY).gid(NOBODY);
    }
    let start = Instant::now();
    let deadline = start + within;
    let mut child = match cmd.spawn() {
        Ok(c) => c,
        Err(e) => {
            let who = if as_root { " by nobody" } else { "" };
            let why = match e.kind() {
                std::io::ErrorKind::NotFound if Path::new(prog).exists() => {
                    "the interpreter its #! line names does not exist".to_string()
                }
                std::io::ErrorKind::NotFound => "it does not exist".to_string(),
                std::io::ErrorKind::PermissionDenied => {
                    format!("permission denied (it must be executable{who})")
                }
                _ => e.to_string(),
            };
            return Ran::CannotStart(format!("cannot run {prog}: {why}"));
        }
    };
    let pid = child.id();
    let tail = Arc::new(Mutex::new(Tail::default()));
    let readers = [
        child.stdout.take().map(|p| read_into(p, tail.clone())),
        child.stderr.take().map(|p| read_into(p, tail.clone())),
    ];
    let waited = tokio::time::timeout_at(deadline.into(), child.wait()).await;
    let duration_ms = ms_since(start);
    // Whatever is left of its group goes, so the pipes close and nothing lingers. (After
    // a normal exit the leader is reaped already; its number stays the group's id while
    // any member lives, and Linux hands out pids in sequence, so it names no stranger.)
    kill_group(pid);
    let status = match waited {
        Err(_) => {
            drop(child); // killed already; tokio reaps it
            for r in readers.into_iter().flatten() {
                r.abort();
            }
            let output = tail.lock().unwrap().text();
            return Ran::TimedOut {
                output,
                duration_ms,
            };
        }
        Ok(Err(e)) => return Ran::CannotWait(format!("cannot wait for {prog}: {e}")),
        Ok(Ok(s)) => s,
    };
    for r in readers.into_iter().flatten() {
        // The pipes are closed now; the readers end at once.
        let _ = tokio::time::timeout_at(deadline.into(), r).await;
    }
    let output = tail.lock().unwrap().text();
    let (code, what) = match (status.code(), status.signal()) {
        (Some(c), _) => (c, format!("exited {c}")),
        (None, Some(sig)) => (128 + sig, format!("killed by {}", signal_name(sig))),
        (None, None) => (-1, format!("ended: {status}")),
    };
    Ran::Ended {
        success: status.success(),
        code,
        what,
        output,
        duration_ms,
    }
}

/// `text: output`, or `text` when there was no output.
pub fn with_output(mut detail: String, output: &str) -> String {
    if !output.is_empty() {
        detail.push_str(": ");
        detail.push_str(output);
    }
    detail
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_tail_keeps_the_last_bytes_on_one_line() {
        let mut t = Tail::default();
        t.push(b"first\n\n  second  \n");
        assert_eq!(t.text(), "first | second");
        let mut t = Tail::default();
        t.push(&vec![b'x'; 1000]);
        t.push(b"\nthe end\n");
        let text = t.text();
        assert!(
            text.starts_with('…') && text.ends_with("| the end"),
            "{text}"
        );
        assert_eq!(t.buf.len(), OUTPUT_TAIL);
    }

    #[test]
    fn signals_have_names() {
        assert_eq!(signal_name(9), "SIGKILL");
        assert_eq!(signal_name(15), "SIGTERM");
    }
}
