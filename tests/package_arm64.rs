//! The arm64 .deb (the Jetson's), as `scripts/deb.sh arm64` builds it: its architecture,
//! lintian's verdict, aarch64 binaries, and those binaries run under qemu-user
//! (`qemu-aarch64-static`, Debian's qemu-user-static): vigild on its defaults with a private
//! bus and port, serving the heartbeat and owning its name; vigilctl answering.
//!
//! The emulator runs the binaries with the arm64 loader and libc of one glibc build
//! (Debian's libc6:arm64, found at /lib/ld-linux-aarch64.so.1). Pointing it at the cross
//! toolchain's sysroot instead (`-L /usr/aarch64-linux-gnu`) pairs that sysroot's ld.so with
//! libc6:arm64's libc.so.6 (found through the host's ld.so.cache); their private loader
//! data differ, and the first `pthread_create` then spins for ever in its stack-cache walk.

mod common;
mod deb_support;

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::{wait_for, Bus};
use deb_support::run;

const QEMU: &str = "qemu-aarch64-static";
/// ELF e_machine of AArch64.
const EM_AARCH64: u16 = 183;

/// target/debian/vigil_VERSION-1_arm64.deb; a missing one is a loud failure.
fn arm64_deb() -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target"));
    let deb = target.join(format!(
        "debian/vigil_{}-1_arm64.deb",
        env!("CARGO_PKG_VERSION")
    ));
    assert!(
        deb.is_file(),
        "{} is missing: build it with `bash scripts/deb.sh arm64` (scripts/test.sh does)",
        deb.display()
    );
    deb
}

/// The package's files, extracted.
fn unpacked() -> tempfile::TempDir {
    deb_support::unpack(&arm64_deb())
}

/// A command that runs an arm64 binary under qemu-user, with the emulator's default
/// (host) root: the arm64 loader and libc both from libc6:arm64.
fn qemu(bin: &Path) -> Command {
    let mut c = Command::new(QEMU);
    c.arg(bin).env_remove("QEMU_LD_PREFIX");
    c
}

fn output(mut c: Command) -> (i32, String) {
    let out = c
        .output()
        .unwrap_or_else(|e| panic!("cannot run {QEMU} (apt-get install qemu-user-static): {e}"));
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.code().unwrap_or(-1), text)
}

#[test]
fn the_arm64_package_is_for_arm64_and_lintian_clean() {
    let deb = arm64_deb();
    let deb = deb.to_str().unwrap();
    assert_eq!(
        run("dpkg-deb", &["-f", deb, "Architecture"]).trim(),
        "arm64"
    );
    assert_eq!(run("dpkg-deb", &["-f", deb, "Package"]).trim(), "vigil");
    let depends = run("dpkg-deb", &["-f", deb, "Depends"]);
    assert!(depends.contains("libc6 (>= "), "{depends}");
    let out = Command::new("lintian")
        .args(["--info", "--show-overrides", deb])
        .output()
        .expect("lintian is missing: apt-get install lintian (scripts/test.sh does)");
    let text = String::from_utf8_lossy(&out.stdout);
    eprintln!("lintian {deb}:\n{text}");
    let bad: Vec<&str> = text
        .lines()
        .filter(|l| l.starts_with("E:") || l.starts_with("W:"))
        .collect();
    assert!(
        bad.is_empty(),
        "lintian errors or warnings:\n{}",
        bad.join("\n")
    );
    let overridden: Vec<&str> = text.lines().filter(|l| l.starts_with("O:")).collect();
    assert_eq!(
        overridden,
        ["O: vigil: initial-upload-closes-no-bugs [usr/share/doc/vigil/changelog.Debian.gz:1]"]
    );
    assert!(out.status.success(), "lintian exited {}", out.status);
}

#[test]
fn the_arm64_binaries_are_aarch64_elf() {
    let tmp = unpacked();
    for bin in ["usr/bin/vigild", "usr/bin/vigilctl"] {
        let mut head = [0u8; 20];
        std::fs::File::open(tmp.path().join(bin))
            .unwrap()
            .read_exact(&mut head)
            .unwrap();
        assert_eq!(&head[..4], b"\x7fELF", "{bin} is not ELF");
        assert_eq!(head[4], 2, "{bin} is not a 64-bit ELF");
        assert_eq!(head[5], 1, "{bin} is not little-endian");
        let machine = u16::from_le_bytes([head[18], head[19]]);
        assert_eq!(machine, EM_AARCH64, "{bin}: e_machine {machine}");
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn heartbeat(port: u16) -> Option<String> {
    let mut s = TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    s.write_all(b"GET /api/system/heartbeat HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .ok()?;
    let mut text = String::new();
    s.read_to_string(&mut text).ok()?;
    text.starts_with("HTTP/1.1 200").then_some(text)
}

/// vigild under the emulator, stopped (SIGTERM) when dropped.
struct Emulated {
    child: Child,
    log: PathBuf,
}

impl Emulated {
    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    fn stop(&mut self) -> std::process::ExitStatus {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(s) = self.child.try_wait().unwrap() {
                return s;
            }
            if Instant::now() > deadline {
                let _ = self.child.kill();
                panic!(
                    "vigild did not stop within 30 s of SIGTERM:\n{}",
                    self.log()
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Emulated {
    fn drop(&mut self) {
        if self.child.try_wait().ok().flatten().is_none() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

#[test]
fn the_arm64_vigild_and_vigilctl_run_under_qemu_user() {
    let tmp = unpacked();
    let (vigild, vigilctl) = (
        tmp.path().join("usr/bin/vigild"),
        tmp.path().join("usr/bin/vigilctl"),
    );
    let (code, text) = output({
        let mut c = qemu(&vigilctl);
        c.arg("version");
        c
    });
    assert_eq!(code, 0, "{text}");
    assert!(text.contains(env!("CARGO_PKG_VERSION")), "{text}");

    // vigild on its defaults: no settings file, no policies (built-in checks), a private
    // bus and port, its state in a scratch directory.
    let bus = Bus::start();
    let port = free_port();
    let log = tmp.path().join("vigild.log");
    let child = qemu(&vigild)
        .arg("--foreground")
        .arg("--state-dir")
        .arg(tmp.path().join("state"))
        .arg("--bus")
        .arg(&bus.address)
        .arg("--listen")
        .arg(format!("127.0.0.1:{port}"))
        .env_remove("NOTIFY_SOCKET")
        .env_remove("WATCHDOG_USEC")
        .env_remove("LISTEN_FDS")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run {QEMU} (apt-get install qemu-user-static): {e}"));
    let mut v = Emulated { child, log };
    let started = Instant::now();
    let beat = wait_for(
        Duration::from_secs(60),
        "the arm64 vigild's heartbeat",
        || {
            if let Some(s) = v.child.try_wait().unwrap() {
                panic!("the arm64 vigild exited ({s}):\n{}", v.log());
            }
            heartbeat(port)
        },
    );
    eprintln!("heartbeat after {:?} under {QEMU}", started.elapsed());
    assert!(
        beat.contains(&format!("\"version\":\"{}\"", env!("CARGO_PKG_VERSION"))),
        "{beat}"
    );

    // Its name on the bus, owned by the emulated process itself.
    let pid = wait_for(
        Duration::from_secs(60),
        "org.vigil.Vigil1 on the bus",
        || {
            let out = Command::new("busctl")
                .arg(format!("--address={}", bus.address))
                .args([
                    "call",
                    "org.freedesktop.DBus",
                    "/org/freedesktop/DBus",
                    "org.freedesktop.DBus",
                    "GetConnectionUnixProcessID",
                    "s",
                    "org.vigil.Vigil1",
                ])
                .output()
                .expect("busctl (systemd)");
            let text = String::from_utf8_lossy(&out.stdout).into_owned();
            out.status.success().then_some(text)
        },
    );
    assert_eq!(pid.trim(), format!("u {}", v.child.id()), "{pid}");

    let (code, text) = output({
        let mut c = qemu(&vigilctl);
        c.args(["--bus", &bus.address, "status"]);
        c
    });
    assert_eq!(code, 0, "vigilctl status: {text}");
    assert!(
        text.starts_with(&format!("vigild {} — ", env!("CARGO_PKG_VERSION"))),
        "{text}"
    );
    assert!(text.contains("store: ok"), "{text}");

    // The packaged policies with the packaged settings (which allow their clean paths).
    let (code, text) = output({
        let mut c = qemu(&vigilctl);
        c.args(["policy", "check", "--config"])
            .arg(tmp.path().join("etc/vigil/vigil.toml"))
            .arg(tmp.path().join("usr/lib/vigil/policies.d"));
        c
    });
    assert_eq!(code, 0, "vigilctl policy check: {text}");
    assert!(text.starts_with("ok: "), "{text}");
    // And a bad one is refused with its place.
    let bad = tmp.path().join("bad");
    std::fs::create_dir(&bad).unwrap();
    std::fs::write(
        bad.join("x.toml"),
        "[[check]]\nname = \"x\"\nprobe = \"nope\"\n",
    )
    .unwrap();
    let (code, text) = output({
        let mut c = qemu(&vigilctl);
        c.args(["policy", "check"]).arg(&bad);
        c
    });
    assert_eq!(code, 1, "{text}");
    assert!(text.contains("x.toml:3:"), "{text}");

    let status = v.stop();
    assert!(status.success(), "vigild exited {status}:\n{}", v.log());
    let log = v.log();
    assert!(log.contains("vigild stopped"), "{log}");
}
