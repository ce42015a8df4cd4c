//! Shared test bed: a private dbus-daemon, vigild processes, an sd_notify socket, prepared
//! procfs trees. Everything is real; a missing service makes the test fail, never skip.

#![allow(dead_code)]

use std::io::{Read, Write};
use std::net::TcpStream;
use std::os::unix::net::UnixDatagram;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Waits until `f` returns `Some`, or panics after `timeout` with `what`.
pub fn wait_for<T>(timeout: Duration, what: &str, f: impl FnMut() -> Option<T>) -> T {
    wait_until(timeout, f)
        .unwrap_or_else(|| panic!("timed out after {timeout:?} waiting for {what}"))
}

/// Asks `f` every 20 ms until it returns `Some`; `None` once `timeout` has passed, for a
/// caller that fails with more than a message.
pub fn wait_until<T>(timeout: Duration, mut f: impl FnMut() -> Option<T>) -> Option<T> {
    let start = Instant::now();
    loop {
        if let Some(v) = f() {
            return Some(v);
        }
        if start.elapsed() > timeout {
            return None;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A private D-Bus daemon, killed on drop.
pub struct Bus {
    pub dir: tempfile::TempDir,
    pid: i32,
    pub address: String,
    /// How it was started, for [`Bus::restart`].
    args: Vec<String>,
}

impl Bus {
    /// A bus from a config file text whose `@LISTEN@` is replaced by the address; the
    /// directory is world-readable so other users can connect.
    pub fn start_with_config(conf: &str) -> Bus {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
        let address = format!("unix:path={}", dir.path().join("bus").display());
        let conf_path = dir.path().join("bus.conf");
        std::fs::write(&conf_path, conf.replace("@LISTEN@", &address)).unwrap();
        let args = vec![format!("--config-file={}", conf_path.display())];
        let pid = spawn_dbus(&args);
        Bus {
            dir,
            pid,
            address,
            args,
        }
    }

    /// `dbus-send --print-reply` as another uid (and gid of the same number) via `setpriv`, returning (success, output).
    pub fn dbus_send_as(&self, uid: u32, method: &str, args: &[&str]) -> (bool, String) {
        let out = Command::new("setpriv")
            .arg(format!("--reuid={uid}"))
            .arg(format!("--regid={uid}"))
            .arg("--clear-groups")
            .arg("dbus-send")
            .arg(format!("--bus={}", self.address))
            .args([
                "--print-reply",
                "--dest=org.vigil.Vigil1",
                "/org/vigil/Vigil1",
            ])
            .arg(format!("org.vigil.Vigil1.Manager.{method}"))
            .args(args)
            .output()
            .expect("setpriv (util-linux) and dbus-send (dbus)");
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        (out.status.success(), text)
    }

    pub fn start() -> Bus {
        Bus::start_in(tempfile::tempdir().unwrap())
    }

    /// A session-type bus at `DIR/bus` (for a bus whose address is known before it starts).
    pub fn start_in(dir: tempfile::TempDir) -> Bus {
        let address = format!("unix:path={}", dir.path().join("bus").display());
        let args = vec!["--session".to_string(), format!("--address={address}")];
        let pid = spawn_dbus(&args);
        Bus {
            dir,
            pid,
            address,
            args,
        }
    }

    /// Stops the dbus-daemon and starts a new one at the same address (as a restart of
    /// the system bus does); returns once the new one answers.
    pub fn restart(&mut self) {
        unsafe {
            libc_kill(self.pid, 15);
        }
        wait_for(Duration::from_secs(10), "the old dbus-daemon gone", || {
            let stat = std::fs::read_to_string(format!("/proc/{}/stat", self.pid));
            // Gone, or a zombie nobody has reaped yet (it forked away from us).
            let gone = stat.map_or(true, |s| {
                s.rsplit_once(')')
                    .is_some_and(|(_, rest)| rest.trim_start().starts_with('Z'))
            });
            gone.then_some(())
        });
        let socket = self.dir.path().join("bus");
        let _ = std::fs::remove_file(&socket);
        self.pid = spawn_dbus(&self.args);
        wait_for(
            Duration::from_secs(10),
            "the new dbus-daemon answering",
            || self.busctl_raw(&["list"]).status.success().then_some(()),
        );
    }

    /// vigild's status document, by `GetStatus` over this bus.
    pub fn status_doc(&self) -> serde_json::Value {
        let out = self.busctl(&[
            "call",
            "org.vigil.Vigil1",
            "/org/vigil/Vigil1",
            "org.vigil.Vigil1.Manager",
            "GetStatus",
            "--json=short",
        ]);
        let v: serde_json::Value = serde_json::from_str(&out).unwrap();
        serde_json::from_str(v["data"][0].as_str().unwrap()).unwrap()
    }

    /// `busctl --address=… ARGS`, returning stdout; panics on failure.
    pub fn busctl(&self, args: &[&str]) -> String {
        let out = self.busctl_raw(args);
        assert!(
            out.status.success(),
            "busctl {args:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    }

    pub fn busctl_raw(&self, args: &[&str]) -> std::process::Output {
        Command::new("busctl")
            .arg(format!("--address={}", self.address))
            .args(args)
            .output()
            .expect("busctl must be installed (systemd package)")
    }
}

/// Starts a forking dbus-daemon with `args`; its pid. Fails loudly when there is none.
fn spawn_dbus(args: &[impl AsRef<std::ffi::OsStr>]) -> i32 {
    let out = Command::new("dbus-daemon")
        .args(args)
        .args(["--fork", "--print-pid", "--nopidfile"])
        .output()
        .expect("dbus-daemon must be installed (apt-get install dbus); scripts/test.sh does it");
    assert!(
        out.status.success(),
        "dbus-daemon failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .trim()
        .parse()
        .expect("dbus-daemon pid")
}

impl Drop for Bus {
    fn drop(&mut self) {
        unsafe {
            libc_kill(self.pid, 15);
        }
    }
}

extern "C" {
    #[link_name = "kill"]
    fn libc_kill(pid: i32, sig: i32) -> i32;
}

/// Sends a signal to a process.
pub fn kill(pid: u32, sig: i32) {
    unsafe {
        libc_kill(pid as i32, sig);
    }
}

pub const SIGHUP: i32 = 1;
pub const SIGKILL: i32 = 9;
pub const SIGUSR2: i32 = 12;
pub const SIGTERM: i32 = 15;

/// (status, detail, metrics) of a probe's value reading; panics on anything else.
pub fn value(
    r: vigil::probe::Reading,
) -> (
    Option<vigil::core::health::Status>,
    String,
    vigil::probe::Metrics,
) {
    match r {
        vigil::probe::Reading::Value {
            status,
            detail,
            metrics,
        } => (status, detail, metrics),
        other => panic!("expected a value, got {other:?}"),
    }
}

/// A free TCP port on 127.0.0.1.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A prepared procfs tree for the memory probe.
pub fn write_proc(dir: &Path, avail_kb: u64) {
    std::fs::create_dir_all(dir.join("pressure")).unwrap();
    let meminfo = std::fs::read_to_string("tests/fixtures/proc/meminfo").unwrap();
    let meminfo = meminfo
        .lines()
        .map(|l| {
            if l.starts_with("MemAvailable:") {
                format!("MemAvailable:   {avail_kb} kB")
            } else {
                l.to_string()
            }
        })
        .collect::<Vec<_>>()
        .join("\n");
    write_atomic(&dir.join("meminfo"), &(meminfo + "\n"));
    for f in [
        "pressure/memory",
        "pressure/cpu",
        "pressure/io",
        "vmstat",
        "loadavg",
    ] {
        std::fs::copy(Path::new("tests/fixtures/proc").join(f), dir.join(f)).unwrap();
    }
}

/// Writes a file by rename so readers never see half of it.
pub fn write_atomic(path: &Path, text: &str) {
    let tmp = path.with_extension("tmp~");
    std::fs::write(&tmp, text).unwrap();
    std::fs::rename(&tmp, path).unwrap();
}

/// A policy with one fast memory check over a prepared procfs tree.
pub const MEMORY_POLICY: &str = r#"
[[check]]
name = "mem"
probe = "memory"
every = "100ms"
warn = "available < 20%"
crit = "available < 10%"
"#;

/// A vigild under test, with its own state, settings, policies and (optionally) bus.
pub struct Vigild {
    pub child: Child,
    pub dir: tempfile::TempDir,
    pub port: u16,
    pub notify: Option<UnixDatagram>,
}

/// How to start a vigild.
pub struct VigildBuilder {
    pub bus: Option<String>,
    pub policy: Option<String>,
    pub settings: String,
    pub env: Vec<(String, String)>,
    pub notify: bool,
    pub extra_args: Vec<String>,
    pub state_dir: Option<PathBuf>,
    /// The vigild to run; the debug build of this tree unless set.
    pub binary: Option<PathBuf>,
}

impl VigildBuilder {
    pub fn new() -> Self {
        VigildBuilder {
            bus: None,
            policy: Some(MEMORY_POLICY.to_string()),
            settings: String::new(),
            env: Vec::new(),
            notify: false,
            extra_args: Vec::new(),
            state_dir: None,
            binary: None,
        }
    }
    pub fn binary(mut self, path: &Path) -> Self {
        self.binary = Some(path.to_path_buf());
        self
    }
    pub fn bus(mut self, b: &Bus) -> Self {
        self.bus = Some(b.address.clone());
        self
    }
    pub fn policy(mut self, p: &str) -> Self {
        self.policy = Some(p.to_string());
        self
    }
    pub fn notify(mut self) -> Self {
        self.notify = true;
        self
    }
    pub fn env(mut self, k: &str, v: &str) -> Self {
        self.env.push((k.into(), v.into()));
        self
    }

    pub fn start(self) -> Vigild {
        let dir = tempfile::tempdir().unwrap();
        let proc_dir = dir.path().join("proc");
        write_proc(&proc_dir, 800_000);
        let sys_dir = dir.path().join("sys");
        std::fs::create_dir_all(&sys_dir).unwrap();
        let policies = dir.path().join("policies");
        std::fs::create_dir_all(&policies).unwrap();
        if let Some(p) = &self.policy {
            std::fs::write(policies.join("test.toml"), p).unwrap();
        }
        let settings = format!(
            "[host]\nproc_root = \"{}\"\nsys_root = \"{}\"\n{}",
            proc_dir.display(),
            sys_dir.display(),
            self.settings
        );
        std::fs::write(dir.path().join("vigil.toml"), settings).unwrap();
        let port = free_port();
        let state = self
            .state_dir
            .clone()
            .unwrap_or_else(|| dir.path().join("state"));
        let binary = self.binary.as_deref();
        let mut cmd = Command::new(binary.unwrap_or(Path::new(env!("CARGO_BIN_EXE_vigild"))));
        cmd.arg("--foreground")
            .arg("--config")
            .arg(dir.path().join("vigil.toml"))
            .arg("--policies")
            .arg(&policies)
            .arg("--state-dir")
            .arg(&state)
            .arg("--listen")
            .arg(format!("127.0.0.1:{port}"))
            .args(&self.extra_args)
            .env_remove("NOTIFY_SOCKET")
            .env_remove("WATCHDOG_USEC")
            .env_remove("JOURNAL_STREAM")
            .env("RUST_LOG", "info")
            .stdout(Stdio::null())
            .stderr(Stdio::from(
                std::fs::File::create(dir.path().join("stderr.log")).unwrap(),
            ));
        if let Some(b) = &self.bus {
            cmd.arg("--bus").arg(b);
        } else {
            // No bus for this test: point at an address nobody listens on, and expect none.
            cmd.env("DBUS_SESSION_BUS_ADDRESS", "unix:path=/nonexistent/bus")
                .env("DBUS_SYSTEM_BUS_ADDRESS", "unix:path=/nonexistent/bus");
        }
        let notify = if self.notify {
            let path = dir.path().join("notify.sock");
            let sock = UnixDatagram::bind(&path).unwrap();
            sock.set_read_timeout(Some(Duration::from_millis(100)))
                .unwrap();
            cmd.env("NOTIFY_SOCKET", &path);
            Some(sock)
        } else {
            None
        };
        for (k, v) in &self.env {
            cmd.env(k, v);
        }
        let child = cmd.spawn().expect("spawn vigild");
        let v = Vigild {
            child,
            dir,
            port,
            notify,
        };
        v.wait_http();
        v
    }
}

impl Vigild {
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn proc_dir(&self) -> PathBuf {
        self.dir.path().join("proc")
    }

    pub fn policies_dir(&self) -> PathBuf {
        self.dir.path().join("policies")
    }

    pub fn state_dir(&self) -> PathBuf {
        self.dir.path().join("state")
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("stderr.log")).unwrap_or_default()
    }

    /// Sets MemAvailable in the prepared tree (MemTotal is 1,000,000 kB).
    pub fn set_available_kb(&self, kb: u64) {
        write_proc(&self.proc_dir(), kb);
    }

    fn wait_http(&self) {
        let port = self.port;
        let start = Instant::now();
        loop {
            if TcpStream::connect(("127.0.0.1", port)).is_ok() {
                return;
            }
            if start.elapsed() > Duration::from_secs(20) {
                panic!("vigild did not listen on {port}; log:\n{}", self.log());
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// One HTTP/1.1 request over a fresh connection; returns (status, headers, body).
    pub fn http(&self, method: &str, path: &str) -> (u16, String, String) {
        http_raw(
            self.port,
            &format!("{method} {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"),
        )
    }

    /// The heartbeat document.
    pub fn heartbeat(&self) -> serde_json::Value {
        let (code, _, body) = self.http("GET", "/api/system/heartbeat");
        assert_eq!(code, 200);
        serde_json::from_str(&body).unwrap()
    }

    /// Waits until D-Bus says `status` too (the D-Bus publisher runs after the snapshot).
    pub fn wait_dbus_status(&self, bus: &Bus, status: &str) {
        let want = format!("s \"{status}\"");
        wait_for(
            Duration::from_secs(15),
            &format!("D-Bus Status {status}"),
            || {
                let out = bus.busctl_raw(&[
                    "get-property",
                    "org.vigil.Vigil1",
                    "/org/vigil/Vigil1",
                    "org.vigil.Vigil1.Manager",
                    "Status",
                ]);
                (String::from_utf8_lossy(&out.stdout).trim() == want).then_some(())
            },
        );
    }

    /// Waits until the heartbeat says `status`.
    pub fn wait_status(&self, status: &str) {
        wait_for(
            Duration::from_secs(15),
            &format!("heartbeat status {status}"),
            || (self.heartbeat()["status"] == status).then_some(()),
        );
    }

    /// Next sd_notify datagrams until one contains `needle`; returns all read so far.
    pub fn wait_notify(&self, needle: &str, timeout: Duration) -> Vec<String> {
        let sock = self.notify.as_ref().expect("started with .notify()");
        let mut seen = Vec::new();
        let start = Instant::now();
        let mut buf = [0u8; 4096];
        while start.elapsed() < timeout {
            if let Ok(n) = sock.recv(&mut buf) {
                let msg = String::from_utf8_lossy(&buf[..n]).into_owned();
                let hit = msg.contains(needle);
                seen.push(msg);
                if hit {
                    return seen;
                }
            }
        }
        panic!(
            "no sd_notify message with {needle:?} within {timeout:?}; got {seen:?}\nlog:\n{}",
            self.log()
        );
    }

    /// Stops with SIGTERM and waits.
    pub fn stop(&mut self) -> std::process::ExitStatus {
        kill(self.pid(), SIGTERM);
        self.child.wait().unwrap()
    }
}

impl Drop for Vigild {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Every thread's stack of a live process, for a failure message: what a daemon that
/// stopped answering was doing. Needs gdb; without it, says so (diagnosis only, it never
/// decides a test).
pub fn thread_stacks(pid: u32) -> String {
    match Command::new("gdb")
        .args([
            "-p",
            &pid.to_string(),
            "-batch",
            "-nx",
            "-ex",
            "thread apply all bt",
        ])
        .stdin(Stdio::null())
        .output()
    {
        Ok(o) => String::from_utf8_lossy(&o.stdout).into_owned(),
        Err(e) => format!("(no thread stacks: cannot run gdb: {e})"),
    }
}

/// Sends raw bytes and reads the whole answer (the server closes or times out).
pub fn http_raw(port: u16, request: &str) -> (u16, String, String) {
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(15))).unwrap();
    s.write_all(request.as_bytes()).unwrap();
    let mut buf = Vec::new();
    let _ = s.read_to_end(&mut buf);
    let text = String::from_utf8_lossy(&buf).into_owned();
    parse_response(&text)
}

pub fn parse_response(text: &str) -> (u16, String, String) {
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((text, ""));
    let code = head
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or_else(|| panic!("not an HTTP response: {text:?}"));
    (code, head.to_string(), body.to_string())
}

/// Runs vigilctl with args; returns (exit code, stdout, stderr).
pub fn vigilctl(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_vigilctl"))
        .args(args)
        .env("DBUS_SESSION_BUS_ADDRESS", "unix:path=/nonexistent/bus")
        .env("DBUS_SYSTEM_BUS_ADDRESS", "unix:path=/nonexistent/bus")
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}
