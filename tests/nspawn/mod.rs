//! A real systemd, booted with systemd-nspawn on an overlay of the host's root, as
//! the project's test-bed notes describe. Commands run inside with nsenter. The container shares
//! the host's network; files written inside land in the overlay's upper directory, so the
//! host's root is untouched. A directory of the host is bound at [`SHARE`] inside, for files
//! both sides read and write (policies, logs, sockets).
//!
//! Dropping a [`Container`] always tears it down (also when a test panics): `systemctl
//! poweroff`, a wait for systemd-nspawn to exit (SIGKILL to that one process, which this
//! harness started, if it does not), `umount`, and removal of the directory.
//!
//! Boot needs root, `systemd-nspawn` (package systemd-container), `nsenter` and overlayfs;
//! a missing piece is a loud failure, never a skip.

#![allow(dead_code)]

use std::path::PathBuf;
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

/// Where the shared directory appears inside the container.
pub const SHARE: &str = "/vigil-test";

/// How long a boot may take before the harness gives up (the machine is small and shared).
const BOOT_TIMEOUT: Duration = Duration::from_secs(90);

/// A booted container.
pub struct Container {
    /// The temporary directory holding `up`, `work`, `root`, `share` and `boot.log`.
    pub dir: PathBuf,
    pub name: String,
    nspawn: Option<Child>,
    /// PID 1 of the container, as the host sees it.
    pub pid1: u32,
    mounted: bool,
}

/// How to boot.
pub struct Builder {
    masks: Vec<String>,
    /// `--bind=HOST:INSIDE` mounts.
    binds: Vec<(String, String)>,
    /// Files written into the upper directory before boot: (path inside, contents).
    files: Vec<(String, String)>,
}

impl Default for Builder {
    fn default() -> Self {
        Builder::new()
    }
}

impl Builder {
    /// Masks nothing beyond the default: `docker.service`, `docker.socket` and PostgreSQL
    /// are masked, since they only slow the boot down (and docker fails inside anyway).
    pub fn new() -> Self {
        Builder {
            masks: [
                "docker.service",
                "docker.socket",
                "postgresql.service",
                "postgresql@15-main.service",
            ]
            .map(String::from)
            .to_vec(),
            binds: Vec::new(),
            files: Vec::new(),
        }
    }

    /// Binds a host path into the container (`--bind=HOST:INSIDE`). A missing host path
    /// makes systemd-nspawn fail, and with it the boot: loudly.
    pub fn bind(mut self, host: &str, inside: &str) -> Self {
        self.binds.push((host.to_string(), inside.to_string()));
        self
    }

    /// Writes a file (root's, mode 0644) at `path` inside the container before it boots, as
    /// a unit or drop-in already on the disk would be.
    pub fn file(mut self, path: &str, contents: &str) -> Self {
        self.files.push((path.to_string(), contents.to_string()));
        self
    }

    /// Also masks these units (written into the upper directory before boot).
    pub fn mask(mut self, units: &[&str]) -> Self {
        self.masks.extend(units.iter().map(|s| s.to_string()));
        self
    }

    /// Keeps these units (removes them from the default masks).
    pub fn unmask(mut self, units: &[&str]) -> Self {
        self.masks.retain(|m| !units.contains(&m.as_str()));
        self
    }

    /// Boots and waits until `systemctl is-system-running` says running or degraded.
    pub fn boot(self) -> Container {
        Container::boot_with(&self)
    }
}

fn require(cmd: &str, package: &str) {
    let found = std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).any(|d| d.join(cmd).is_file()))
        .unwrap_or(false);
    assert!(
        found,
        "{cmd} is missing: a real systemd booted with systemd-nspawn is required for this test; \
         apt-get install {package} (scripts/test.sh does it)"
    );
}

impl Container {
    /// Boots with the default masks.
    pub fn boot() -> Container {
        Builder::new().boot()
    }

    fn boot_with(b: &Builder) -> Container {
        let masks = &b.masks;
        static N: AtomicUsize = AtomicUsize::new(0);
        require("systemd-nspawn", "systemd-container");
        require("nsenter", "util-linux");
        require("mount", "mount");
        assert!(
            unsafe { geteuid() } == 0,
            "booting a systemd container needs root (mount, systemd-nspawn)"
        );
        let n = N.fetch_add(1, Ordering::SeqCst);
        let name = format!("vigil-{}-{n}", std::process::id());
        let dir = std::env::temp_dir().join(format!("nspawn-{name}"));
        let _ = std::fs::remove_dir_all(&dir);
        for d in ["up", "work", "root", "share"] {
            std::fs::create_dir_all(dir.join(d)).unwrap();
        }
        // Before the mount, the upper directory may be written directly.
        let units = dir.join("up/etc/systemd/system");
        std::fs::create_dir_all(&units).unwrap();
        for m in masks {
            std::os::unix::fs::symlink("/dev/null", units.join(m)).unwrap();
        }
        for (path, contents) in &b.files {
            let host = dir.join("up").join(path.trim_start_matches('/'));
            std::fs::create_dir_all(host.parent().unwrap()).unwrap();
            std::fs::write(&host, contents).unwrap();
        }
        let mut c = Container {
            dir: dir.clone(),
            name: name.clone(),
            nspawn: None,
            pid1: 0,
            mounted: false,
        };
        let out = Command::new("mount")
            .args(["-t", "overlay", "overlay", "-o"])
            .arg(format!(
                "lowerdir=/,upperdir={},workdir={}",
                dir.join("up").display(),
                dir.join("work").display()
            ))
            .arg(dir.join("root"))
            .output()
            .expect("run mount");
        assert!(
            out.status.success(),
            "cannot mount the overlay for the container: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        c.mounted = true;
        let log = std::fs::File::create(dir.join("boot.log")).unwrap();
        let child = Command::new("setsid")
            .arg("systemd-nspawn")
            .arg("-D")
            .arg(dir.join("root"))
            .args(["-M", &name, "-b", "--register=no", "--keep-unit"])
            .arg(format!("--bind={}:{SHARE}", dir.join("share").display()))
            .args(b.binds.iter().map(|(h, i)| format!("--bind={h}:{i}")))
            .stdin(Stdio::null())
            .stdout(Stdio::from(log.try_clone().unwrap()))
            .stderr(Stdio::from(log))
            .spawn()
            .expect("spawn systemd-nspawn");
        let nspawn_pid = child.id();
        c.nspawn = Some(child);
        // PID 1 of the container: the child of systemd-nspawn, once it is systemd.
        let start = Instant::now();
        c.pid1 = loop {
            if let Some(pid) = children(nspawn_pid).into_iter().find(|p| {
                std::fs::read_to_string(format!("/proc/{p}/comm"))
                    .map(|s| s.trim() == "systemd")
                    .unwrap_or(false)
            }) {
                break pid;
            }
            if let Some(Ok(Some(status))) = c.nspawn.as_mut().map(|ch| ch.try_wait()) {
                panic!(
                    "systemd-nspawn exited ({status}) before booting; log:\n{}",
                    c.boot_log()
                );
            }
            if start.elapsed() > BOOT_TIMEOUT {
                panic!(
                    "no systemd in the container after {BOOT_TIMEOUT:?}; log:\n{}",
                    c.boot_log()
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        // Wait for the boot to finish.
        loop {
            let out = c.try_sh("systemctl is-system-running");
            let state = String::from_utf8_lossy(&out.stdout).trim().to_string();
            if state == "running" || state == "degraded" {
                break;
            }
            if start.elapsed() > BOOT_TIMEOUT {
                panic!(
                    "the container's systemd is still {state:?} after {BOOT_TIMEOUT:?}; log:\n{}",
                    c.boot_log()
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        eprintln!(
            "nspawn: {name} booted in {:.1} s (PID 1 is {})",
            start.elapsed().as_secs_f64(),
            c.pid1
        );
        c
    }

    /// The console output of the boot.
    pub fn boot_log(&self) -> String {
        std::fs::read_to_string(self.dir.join("boot.log")).unwrap_or_default()
    }

    /// The host path of the directory seen as [`SHARE`] inside.
    pub fn share(&self) -> PathBuf {
        self.dir.join("share")
    }

    /// A command to run `sh -c SCRIPT` inside the container.
    pub fn command(&self, script: &str) -> Command {
        let mut cmd = Command::new("nsenter");
        cmd.arg("-t")
            .arg(self.pid1.to_string())
            .args(["-a", "-r", "-w", "sh", "-c", script]);
        cmd
    }

    /// Runs `sh -c SCRIPT` inside; returns its output whatever the exit status.
    pub fn try_sh(&self, script: &str) -> Output {
        self.command(script)
            .stdin(Stdio::null())
            .output()
            .expect("run nsenter")
    }

    /// Runs `sh -c SCRIPT` inside; panics with its output unless it succeeds; returns stdout.
    pub fn sh(&self, script: &str) -> String {
        let out = self.try_sh(script);
        assert!(
            out.status.success(),
            "in the container, `{script}` failed ({}): {}{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Writes a file inside the container (through the container's own view of it).
    pub fn write(&self, path: &str, text: &str) {
        use std::io::Write;
        let mut child = self
            .command(&format!(
                "mkdir -p \"$(dirname '{path}')\" && cat > '{path}'"
            ))
            .stdin(Stdio::piped())
            .spawn()
            .expect("run nsenter");
        child
            .stdin
            .take()
            .unwrap()
            .write_all(text.as_bytes())
            .unwrap();
        let status = child.wait().unwrap();
        assert!(status.success(), "cannot write {path} in the container");
    }

    /// Installs a unit in /run/systemd/system and reloads systemd.
    pub fn install_unit(&self, name: &str, text: &str) {
        self.write(&format!("/run/systemd/system/{name}"), text);
        self.sh("systemctl daemon-reload");
    }

    /// Starts `SCRIPT` in the background inside (in its own session); returns its PID as
    /// the container sees it.
    pub fn spawn(&self, script: &str) -> u32 {
        let out = self.sh(&format!(
            "setsid sh -c '{}' </dev/null >/dev/null 2>&1 & echo $!",
            script.replace('\'', "'\\''")
        ));
        out.trim().parse().expect("pid of the background command")
    }

    /// `systemctl show -p PROP --value UNIT`.
    pub fn unit_property(&self, unit: &str, prop: &str) -> String {
        self.sh(&format!("systemctl show -p {prop} --value {unit}"))
            .trim()
            .to_string()
    }

    /// Starts a private dbus-daemon and vigild inside, with the policies under
    /// `SHARE/policies`, state under `SHARE/state`, the bus at `SHARE/bus`, and its log at
    /// `SHARE/<log>`, its heartbeat on a free port.
    pub fn start_vigild(&self, log: &str) {
        self.sh(&format!(
            "dbus-daemon --session --address=unix:path={SHARE}/bus --fork --nopidfile"
        ));
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        // Run a copy from the shared directory: the build directory may not be visible
        // inside (under /tmp, say, which the container mounts afresh).
        let exe = self.share().join("vigild");
        // By cp, not in this process: a child forked by another test thread while this
        // process held the copy open for writing would make executing it fail (ETXTBSY).
        if !exe.exists() {
            let cp = Command::new("cp")
                .arg(env!("CARGO_BIN_EXE_vigild"))
                .arg(&exe)
                .status()
                .unwrap();
            assert!(cp.success(), "cp vigild: {cp}");
        }
        self.spawn(&format!(
            "exec {SHARE}/vigild --foreground --policies {SHARE}/policies \
             --state-dir {SHARE}/state --listen 127.0.0.1:{port} --bus unix:path={SHARE}/bus \
             >{SHARE}/{log} 2>&1"
        ));
    }

    /// Waits up to `timeout` for systemd-nspawn to exit (the container powered off or
    /// rebooted by itself); its exit status if it did.
    pub fn wait_exit(&mut self, timeout: Duration) -> Option<std::process::ExitStatus> {
        let child = self.nspawn.as_mut()?;
        let start = Instant::now();
        while start.elapsed() < timeout {
            if let Ok(Some(st)) = child.try_wait() {
                return Some(st);
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        None
    }

    fn teardown(&mut self) {
        if let Some(mut child) = self.nspawn.take() {
            if self.pid1 != 0 {
                let _ = Command::new("nsenter")
                    .arg("-t")
                    .arg(self.pid1.to_string())
                    .args(["-a", "-r", "-w", "systemctl", "poweroff"])
                    .stdout(Stdio::null())
                    .stderr(Stdio::null())
                    .status();
            }
            let start = Instant::now();
            loop {
                match child.try_wait() {
                    Ok(Some(_)) => break,
                    Ok(None) if start.elapsed() < Duration::from_secs(30) => {
                        std::thread::sleep(Duration::from_millis(50))
                    }
                    _ => {
                        eprintln!(
                            "nspawn: {} did not power off; killing systemd-nspawn",
                            self.name
                        );
                        let _ = child.kill();
                        let _ = child.wait();
                        break;
                    }
                }
            }
        }
        if self.mounted {
            let root = self.dir.join("root");
            let ok = Command::new("umount")
                .arg(&root)
                .status()
                .map(|s| s.success())
                .unwrap_or(false);
            if !ok {
                let _ = Command::new("umount").arg("-l").arg(&root).status();
            }
            self.mounted = false;
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

impl Drop for Container {
    fn drop(&mut self) {
        self.teardown();
    }
}

/// Children of a process, from /proc.
fn children(pid: u32) -> Vec<u32> {
    let mut out = Vec::new();
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return out;
    };
    for t in tasks.flatten() {
        if let Ok(s) = std::fs::read_to_string(t.path().join("children")) {
            out.extend(s.split_whitespace().filter_map(|p| p.parse::<u32>().ok()));
        }
    }
    out
}

extern "C" {
    fn geteuid() -> u32;
}
