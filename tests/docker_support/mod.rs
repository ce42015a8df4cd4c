//! Real-dockerd helpers for the container tests: the busybox test image, containers with
//! unique names that are removed on drop (even when a test fails), vigild's stored
//! transitions, and a guard that can stop and restart this machine's dockerd.

#![allow(dead_code)]

use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

/// The image scripts/test.sh builds (TESTBED.md's recipe).
pub const IMAGE: &str = "vigil-test/busybox:1";

/// Fails loudly unless dockerd answers and the test image is present.
pub fn require_docker() {
    let info = Command::new("docker")
        .args(["info", "--format", "{{.ServerVersion}}"])
        .output()
        .expect("the `docker` CLI is missing: install docker.io (scripts/test.sh does)");
    assert!(
        info.status.success(),
        "dockerd is not answering on /var/run/docker.sock: start it as scripts/test.sh does \
         (`setsid dockerd >/var/log/dockerd.log 2>&1 &`): {}",
        String::from_utf8_lossy(&info.stderr)
    );
    let img = Command::new("docker")
        .args(["image", "inspect", IMAGE])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .unwrap();
    assert!(
        img.success(),
        "the test image {IMAGE} is missing: scripts/test.sh builds it (TESTBED.md's recipe)"
    );
}

/// Runs the docker CLI; panics with its stderr on failure, returns trimmed stdout.
pub fn docker(args: &[&str]) -> String {
    let out = Command::new("docker").args(args).output().unwrap();
    assert!(
        out.status.success(),
        "docker {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// Runs the docker CLI and reports only whether it succeeded.
pub fn docker_ok(args: &[&str]) -> bool {
    Command::new("docker")
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .map(|s| s.success())
        .unwrap_or(false)
}

/// A `docker inspect --format` value.
pub fn inspect(name: &str, format: &str) -> String {
    docker(&["inspect", "--format", format, name])
}

/// Containers made by one test, all named `<prefix>-…` so globs can pick them; removed
/// with `docker rm -f` on drop.
pub struct Containers {
    pub prefix: String,
    names: Vec<String>,
}

impl Containers {
    /// A fresh set whose prefix no other test (nor an earlier run) uses.
    pub fn new(test: &str) -> Containers {
        static N: AtomicU32 = AtomicU32::new(0);
        let prefix = format!(
            "vt{}{}-{test}",
            std::process::id(),
            N.fetch_add(1, Ordering::SeqCst)
        );
        Containers {
            prefix,
            names: Vec::new(),
        }
    }

    /// The full name of this set's container `short`.
    pub fn name(&self, short: &str) -> String {
        format!("{}-{short}", self.prefix)
    }

    /// `docker run -d --name <prefix>-<short> <opts…> IMAGE <cmd…>`; returns the full name.
    pub fn run(&mut self, short: &str, opts: &[&str], cmd: &[&str]) -> String {
        let name = self.name(short);
        self.names.push(name.clone());
        let mut args = vec!["run", "-d", "--name", &name];
        args.extend_from_slice(opts);
        args.push(IMAGE);
        args.extend_from_slice(cmd);
        docker(&args);
        name
    }

    /// A container that sleeps until killed.
    pub fn sleeper(&mut self, short: &str, opts: &[&str]) -> String {
        self.run(short, opts, &["sleep", "100000"])
    }

    /// Forgets a container the test removed itself.
    pub fn forget(&mut self, name: &str) {
        self.names.retain(|n| n != name);
    }
}

impl Drop for Containers {
    fn drop(&mut self) {
        if self.names.is_empty() {
            return;
        }
        let mut args = vec!["rm", "-f", "-v"];
        args.extend(self.names.iter().map(String::as_str));
        let _ = Command::new("docker")
            .args(&args)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }
}

/// Waits until `f` holds, polling every 20 ms; panics with `what` and `ctx()` after `timeout`.
pub fn wait_until(
    timeout: Duration,
    what: &str,
    mut ctx: impl FnMut() -> String,
    mut f: impl FnMut() -> bool,
) -> Duration {
    let start = Instant::now();
    loop {
        if f() {
            return start.elapsed();
        }
        if start.elapsed() > timeout {
            panic!("timed out after {timeout:?} waiting for {what}\n{}", ctx());
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// One stored transition.
#[derive(Debug, Clone, PartialEq)]
pub struct Row {
    pub check: String,
    pub from: String,
    pub to: String,
    pub at_us: i64,
    pub detail: String,
}

/// Every transition vigild has stored, oldest first (empty while there is no database yet).
pub fn transitions(state_dir: &Path) -> Vec<Row> {
    let db = state_dir.join("vigil.db");
    let Ok(c) = rusqlite::Connection::open_with_flags(
        &db,
        rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY | rusqlite::OpenFlags::SQLITE_OPEN_NO_MUTEX,
    ) else {
        return Vec::new();
    };
    let _ = c.busy_timeout(Duration::from_secs(2));
    let Ok(mut stmt) = c.prepare(
        "SELECT check_name, from_status, to_status, at_us, detail FROM transitions ORDER BY id",
    ) else {
        return Vec::new();
    };
    stmt.query_map([], |r| {
        Ok(Row {
            check: r.get(0)?,
            from: r.get(1)?,
            to: r.get(2)?,
            at_us: r.get(3)?,
            detail: r.get(4)?,
        })
    })
    .map(|rows| rows.filter_map(Result::ok).collect())
    .unwrap_or_default()
}

/// The status a check has after the stored transitions (None: never left `unknown`).
pub fn last_status(rows: &[Row], check: &str) -> Option<Row> {
    rows.iter().rev().find(|r| r.check == check).cloned()
}

/// This machine's dockerd, stopped on request and started again (as scripts/test.sh does)
/// on drop if it is not answering then, so a failing test never leaves docker down.
pub struct DockerdGuard {
    pid: i32,
}

impl DockerdGuard {
    /// Takes charge of the running dockerd (which must be a plain `dockerd`, as
    /// scripts/test.sh and TESTBED.md start it, so that it can be started the same way).
    pub fn take() -> DockerdGuard {
        require_docker();
        let out = Command::new("pgrep")
            .args(["-x", "dockerd"])
            .output()
            .unwrap();
        let pids: Vec<i32> = String::from_utf8_lossy(&out.stdout)
            .split_whitespace()
            .filter_map(|p| p.parse().ok())
            .collect();
        assert_eq!(
            pids.len(),
            1,
            "expected exactly one dockerd process to restart, found {pids:?}"
        );
        let cmdline = std::fs::read(format!("/proc/{}/cmdline", pids[0])).unwrap();
        assert_eq!(
            cmdline, b"dockerd\0",
            "dockerd was started with arguments; this test only restarts a plain `dockerd` \
             (scripts/test.sh's), which it can start again the same way"
        );
        DockerdGuard { pid: pids[0] }
    }

    /// SIGTERM and wait until the process is gone (dockerd stops its containers first).
    pub fn stop(&mut self) {
        nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(self.pid),
            nix::sys::signal::Signal::SIGTERM,
        )
        .unwrap();
        wait_until(
            Duration::from_secs(60),
            "dockerd to exit",
            String::new,
            || !Path::new(&format!("/proc/{}", self.pid)).exists() || is_zombie(self.pid),
        );
    }

    /// Starts dockerd as scripts/test.sh does and waits until it answers.
    pub fn start(&mut self) {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open("/var/log/dockerd.log")
            .unwrap();
        let child = Command::new("setsid")
            .arg("dockerd")
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("start dockerd");
        // setsid execs dockerd in place (it is not a process-group leader), so the pid is
        // dockerd's; the Child is dropped without waiting (dockerd outlives the test).
        self.pid = child.id() as i32;
        std::mem::forget(child);
        wait_until(
            Duration::from_secs(60),
            "dockerd to answer after a restart (see /var/log/dockerd.log)",
            String::new,
            || docker_ok(&["info"]),
        );
    }

    fn answering(&self) -> bool {
        docker_ok(&["info"])
    }
}

impl Drop for DockerdGuard {
    fn drop(&mut self) {
        if !self.answering() {
            if Path::new(&format!("/proc/{}", self.pid)).exists() && !is_zombie(self.pid) {
                // Still starting or stopping: give it time before starting another.
                let _ = wait_until_quiet(Duration::from_secs(60), || {
                    self.answering()
                        || !Path::new(&format!("/proc/{}", self.pid)).exists()
                        || is_zombie(self.pid)
                });
            }
            if !self.answering() {
                self.start();
            }
        }
    }
}

fn wait_until_quiet(timeout: Duration, mut f: impl FnMut() -> bool) -> bool {
    let start = Instant::now();
    while start.elapsed() < timeout {
        if f() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    false
}

fn is_zombie(pid: i32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .map(|s| {
            s.rsplit_once(')')
                .map(|(_, rest)| rest.trim_start().starts_with('Z'))
                .unwrap_or(false)
        })
        .unwrap_or(true)
}
