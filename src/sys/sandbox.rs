//! Where hooks and exec probes run: in a sandbox of their own, or (without systemd) as a child
//! of vigild.
//!
//! Under systemd, vigild connects to `vigil-run.socket` ([`SOCKET`], root:vigil 0660,
//! `Accept=yes`): systemd starts one `vigil-run@N-PID-UID.service` per connection, with the
//! connection as its stdin and stdout. That unit runs `vigil-run` ([`serve`]) as a dynamic
//! user (`DynamicUser=yes`, user `vigil-run`, no supplementary groups) in a sandbox in which
//! /var/lib/vigil, /etc/vigil and the Docker sockets do not exist; it reads one [`Request`]
//! (the argv, the extra environment, the time limit), runs the command the way
//! [`crate::sys::command::run_with_env`] runs one (no shell, a clean environment, its own
//! process group, killed at the limit, the last bytes of output kept), and writes one
//! [`Reply`]. When vigild hangs up (it gave up waiting, or it stopped), `vigil-run` exits and
//! systemd kills what is left of the unit. The unit is the boundary: its properties are fixed
//! in the package, so vigild can make it run a command but cannot make it run one with more
//! privilege than the sandbox has.
//!
//! Why not `StartTransientUnit`: up to systemd 255 (JetPack 6 has 249, Debian 12 252),
//! systemd asks polkit about a transient unit without its name or verb, so a rule cannot
//! allow `vigil-run-*` only: whatever lets vigil start one lets it start any unit, as root.
//! Nor would a rule on the name suffice where systemd passes it (systemd issue 17224): the
//! caller of `StartTransientUnit` sets the unit's properties (`User=`, `ExecStart=`, its
//! groups), so whoever may start `vigil-run-x.service` may start it as root. The template's
//! properties are fixed in a file root owns, and socket activation needs no polkit rule.
//!
//! Which way a command runs ([`mode`]): `VIGIL_HOOK_SANDBOX=unit` or `=direct` in vigild's
//! environment (a drop-in) decides; without it, the sandbox is used when vigild runs as a
//! systemd service (`INVOCATION_ID` set, `/run/systemd/system` present), and a child process
//! otherwise (tests, a vigild started by hand). vigild says which once, in the journal. In
//! sandbox mode a missing socket is a failure of the hook, never a silent fallback.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};

use crate::sys::command::{run_with_env, Ran};

/// The socket of `vigil-run.socket`.
pub const SOCKET: &str = "/run/vigil-run.sock";
/// The environment variable that picks the mode (`unit` or `direct`).
pub const MODE_VAR: &str = "VIGIL_HOOK_SANDBOX";
/// What vigild waits beyond a command's limit for the sandbox's answer (start-up, the kill).
const GRACE: Duration = Duration::from_secs(10);
/// The longest request or reply line read.
const LINE_MAX: u64 = 1 << 20;

/// Which way hooks and exec probes run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Mode {
    /// A child process of vigild, as vigild's user, in vigild's sandbox.
    Direct,
    /// A `vigil-run@….service` unit, through the socket at this path.
    Unit(PathBuf),
}

impl Mode {
    /// From the value of [`MODE_VAR`] and whether vigild runs as a systemd service.
    pub fn choose(var: Option<&str>, under_systemd: bool) -> Mode {
        match var {
            Some("direct") => Mode::Direct,
            Some("unit") => Mode::Unit(PathBuf::from(SOCKET)),
            _ if under_systemd => Mode::Unit(PathBuf::from(SOCKET)),
            _ => Mode::Direct,
        }
    }
}

/// The mode of this process, chosen once (and said once in the journal).
pub fn mode() -> &'static Mode {
    static MODE: OnceLock<Mode> = OnceLock::new();
    MODE.get_or_init(|| {
        let var = std::env::var(MODE_VAR).ok();
        let under_systemd = std::env::var_os("INVOCATION_ID").is_some()
            && Path::new("/run/systemd/system").is_dir();
        let m = Mode::choose(var.as_deref(), under_systemd);
        match &m {
            Mode::Unit(s) => tracing::info!(
                vigil_event = "sandbox",
                "hooks and exec probes run in vigil-run@.service units (a dynamic user, no \
                 groups, no access to vigil's state or Docker), through {}",
                s.display()
            ),
            Mode::Direct => tracing::info!(
                vigil_event = "sandbox",
                "hooks and exec probes run directly as child processes of vigild ({})",
                if var.as_deref() == Some("direct") {
                    format!("{MODE_VAR}=direct")
                } else {
                    "not a systemd service".to_string()
                }
            ),
        }
        m
    })
}

/// What vigild asks the sandbox to run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Request {
    /// `hook`, `update-hook` or `exec` (for the sandbox's journal).
    pub kind: String,
    /// The hook's or check's name.
    pub name: String,
    pub argv: Vec<String>,
    /// Added to the clean environment.
    pub env: Vec<(String, String)>,
    pub timeout_ms: u64,
}

/// The sandbox's answer: where it ran, and how it ended.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Reply {
    /// The unit it ran in (`vigil-run@….service`).
    pub unit: String,
    /// The user it ran as, and its uid.
    pub user: String,
    pub uid: u32,
    pub outcome: Ran,
}

/// Where a command ran.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Place {
    Direct,
    Unit {
        unit: String,
        user: String,
        uid: u32,
    },
}

impl Place {
    /// ` (in UNIT as USER, uid N)` for a sandboxed run, nothing for a direct one (whose
    /// messages stay as they always were).
    pub fn suffix(&self) -> String {
        match self {
            Place::Direct => String::new(),
            Place::Unit { unit, user, uid } => format!(" (in {unit} as {user}, uid {uid})"),
        }
    }
}

/// Runs `argv` with `env` added, within `within`, the way [`mode`] says: `kind` and `name`
/// label it in the sandbox's journal.
pub async fn run(
    kind: &str,
    name: &str,
    argv: &[String],
    env: &[(&str, &str)],
    within: Duration,
) -> (Ran, Place) {
    match mode() {
        Mode::Direct => (run_with_env(argv, within, env).await, Place::Direct),
        Mode::Unit(socket) => {
            let req = Request {
                kind: kind.to_string(),
                name: name.to_string(),
                argv: argv.to_vec(),
                env: env
                    .iter()
                    .map(|(k, v)| (k.to_string(), v.to_string()))
                    .collect(),
                timeout_ms: within.as_millis().min(u64::MAX as u128) as u64,
            };
            run_in_unit(socket, &req, within).await
        }
    }
}

/// Asks the sandbox behind `socket` to run `req`; waits `within` plus a grace for the answer,
/// then hangs up (which ends the unit) and reports a timeout.
pub async fn run_in_unit(socket: &Path, req: &Request, within: Duration) -> (Ran, Place) {
    ask(socket, req, within + GRACE).await
}

/// [`run_in_unit`], waiting `wait` in all for the answer.
async fn ask(socket: &Path, req: &Request, wait: Duration) -> (Ran, Place) {
    let start = std::time::Instant::now();
    let unreachable = |e: String| {
        (
            Ran::CannotStart(format!(
                "cannot reach the hook sandbox at {} (vigil-run.socket; `systemctl status \
                 vigil-run.socket`): {e}",
                socket.display()
            )),
            Place::Direct,
        )
    };
    let conn = match tokio::time::timeout(GRACE, tokio::net::UnixStream::connect(socket)).await {
        Ok(Ok(c)) => c,
        Ok(Err(e)) => return unreachable(e.to_string()),
        Err(_) => return unreachable(format!("no connection within {GRACE:?}")),
    };
    let (rd, mut wr) = conn.into_split();
    let mut line = match serde_json::to_string(req) {
        Ok(l) => l,
        Err(e) => return (Ran::CannotStart(format!("request: {e}")), Place::Direct),
    };
    line.push('\n');
    if let Err(e) = wr.write_all(line.as_bytes()).await {
        return unreachable(format!("cannot send the request: {e}"));
    }
    // The write half stays open: the sandbox takes its end for vigild hanging up.
    let mut answer = String::new();
    let mut reader = BufReader::new(rd).take(LINE_MAX);
    match tokio::time::timeout(wait, reader.read_line(&mut answer)).await {
        Err(_) => {
            drop(wr);
            (
                Ran::TimedOut {
                    output: String::new(),
                    duration_ms: crate::sys::http::ms_since(start),
                },
                Place::Direct,
            )
        }
        Ok(Err(e)) => (
            Ran::CannotWait(format!("the hook sandbox's answer: {e}")),
            Place::Direct,
        ),
        Ok(Ok(_)) => match serde_json::from_str::<Reply>(answer.trim_end()) {
            Ok(r) => (
                r.outcome,
                Place::Unit {
                    unit: r.unit,
                    user: r.user,
                    uid: r.uid,
                },
            ),
            Err(e) => (
                Ran::CannotWait(format!(
                    "the hook sandbox ended without an answer ({e}; see `journalctl -u \
                     'vigil-run@*'`)"
                )),
                Place::Direct,
            ),
        },
    }
}

/// The unit this process runs in, from its cgroup (`…/vigil-run@3-812-998.service`).
fn own_unit() -> String {
    std::fs::read_to_string("/proc/self/cgroup")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("0::"))
                .and_then(|p| p.rsplit('/').next())
                .map(str::to_string)
        })
        .filter(|u| !u.is_empty())
        .unwrap_or_else(|| "an unknown unit".into())
}

/// `vigil-run`: one request from the connection on stdin, one reply on stdout, the log on
/// stderr (the journal). Returns the exit status.
pub async fn serve() -> i32 {
    use std::os::fd::FromRawFd;
    // SAFETY: systemd passes the accepted connection as fd 0 (StandardInput=socket) and
    // nothing else uses fd 0 in this process.
    let std_sock = unsafe { std::os::unix::net::UnixStream::from_raw_fd(0) };
    if let Err(e) = std_sock.set_nonblocking(true) {
        eprintln!("vigil-run: stdin is not the connection from vigild: {e}");
        return 2;
    }
    let sock = match tokio::net::UnixStream::from_std(std_sock) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("vigil-run: stdin is not the connection from vigild: {e}");
            return 2;
        }
    };
    let (rd, mut wr) = sock.into_split();
    let mut reader = BufReader::new(rd);
    let mut line = String::new();
    let mut limited = (&mut reader).take(LINE_MAX);
    let read = tokio::time::timeout(GRACE, limited.read_line(&mut line)).await;
    let req: Request = match read {
        Ok(Ok(n)) if n > 0 => match serde_json::from_str(line.trim_end()) {
            Ok(r) => r,
            Err(e) => {
                eprintln!("vigil-run: a request that is not one: {e}");
                return 2;
            }
        },
        _ => {
            eprintln!("vigil-run: no request");
            return 2;
        }
    };
    let unit = own_unit();
    let uid = nix::unistd::getuid().as_raw();
    let user = std::env::var("USER").unwrap_or_else(|_| uid.to_string());
    let mut env: Vec<(String, String)> = req.env.clone();
    if let Ok(dir) = std::env::var("STATE_DIRECTORY") {
        env.push(("VIGIL_HOOK_DIR".into(), dir));
    }
    let pairs: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    eprintln!(
        "vigil-run: {} {}: {:?} as {user} (uid {uid}), limit {} ms",
        req.kind, req.name, req.argv, req.timeout_ms
    );
    let within = Duration::from_millis(req.timeout_ms);
    let work = run_with_env(&req.argv, within, &pairs);
    // vigild hanging up (EOF or an error on the connection) ends the run.
    let hangup = async {
        let mut buf = [0u8; 256];
        loop {
            match reader.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
        }
    };
    let ran = tokio::select! {
        r = work => r,
        _ = hangup => {
            eprintln!("vigil-run: {} {}: vigild hung up; stopping", req.kind, req.name);
            return 3;
        }
    };
    match &ran {
        Ran::Ended { what, output, .. } => {
            eprintln!("vigil-run: {} {}: {what}: {output}", req.kind, req.name)
        }
        Ran::TimedOut { output, .. } => eprintln!(
            "vigil-run: {} {}: timed out, killed: {output}",
            req.kind, req.name
        ),
        Ran::CannotStart(why) | Ran::CannotWait(why) => {
            eprintln!("vigil-run: {} {}: {why}", req.kind, req.name)
        }
    }
    let reply = Reply {
        unit,
        user,
        uid,
        outcome: ran,
    };
    let mut text = serde_json::to_string(&reply).unwrap_or_default();
    text.push('\n');
    if let Err(e) = wr.write_all(text.as_bytes()).await {
        eprintln!("vigil-run: cannot answer vigild: {e}");
        return 3;
    }
    let _ = wr.shutdown().await;
    0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_mode_is_the_sandbox_under_systemd_unless_told_otherwise() {
        let unit = Mode::Unit(PathBuf::from(SOCKET));
        assert_eq!(Mode::choose(None, true), unit);
        assert_eq!(Mode::choose(None, false), Mode::Direct);
        assert_eq!(Mode::choose(Some("direct"), true), Mode::Direct);
        assert_eq!(Mode::choose(Some("unit"), false), unit);
        // Anything else is the automatic choice, not a way around the sandbox.
        assert_eq!(Mode::choose(Some("off"), true), unit);
    }

    #[test]
    fn requests_and_replies_cross_the_socket_unchanged() {
        let req = Request {
            kind: "hook".into(),
            name: "db-backup".into(),
            argv: vec!["/bin/sh".into(), "-c".into(), "echo 'a b'\n".into()],
            env: vec![("VIGIL_UPDATE_RUN".into(), "12".into())],
            timeout_ms: 600_000,
        };
        let text = serde_json::to_string(&req).unwrap();
        assert!(!text.contains('\n'), "one line: {text}");
        assert_eq!(serde_json::from_str::<Request>(&text).unwrap(), req);
        for outcome in [
            Ran::Ended {
                success: false,
                code: 3,
                what: "exited 3".into(),
                output: "disk full".into(),
                duration_ms: 12.5,
            },
            Ran::TimedOut {
                output: "…".into(),
                duration_ms: 300.0,
            },
            Ran::CannotStart("cannot run /x: it does not exist".into()),
        ] {
            let reply = Reply {
                unit: "vigil-run@3-812-998.service".into(),
                user: "vigil-run".into(),
                uid: 61234,
                outcome,
            };
            let text = serde_json::to_string(&reply).unwrap();
            assert_eq!(serde_json::from_str::<Reply>(&text).unwrap(), reply);
        }
        let place = Place::Unit {
            unit: "vigil-run@3-812-998.service".into(),
            user: "vigil-run".into(),
            uid: 61234,
        };
        assert_eq!(
            place.suffix(),
            " (in vigil-run@3-812-998.service as vigil-run, uid 61234)"
        );
        assert_eq!(Place::Direct.suffix(), "");
    }

    /// The client against a stand-in of the sandbox on a socket pair: the request it sends,
    /// the reply it reads, and the hang-up when the answer does not come in time.
    #[tokio::test]
    async fn the_client_sends_one_request_and_hangs_up_when_late() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("run.sock");
        let listener = tokio::net::UnixListener::bind(&path).unwrap();
        let server = tokio::spawn(async move {
            // First connection: answers. Second: never answers; sees the hang-up.
            let (c, _) = listener.accept().await.unwrap();
            let (rd, mut wr) = c.into_split();
            let mut line = String::new();
            BufReader::new(rd).read_line(&mut line).await.unwrap();
            let req: Request = serde_json::from_str(line.trim_end()).unwrap();
            let reply = Reply {
                unit: "vigil-run@0-1-2.service".into(),
                user: "vigil-run".into(),
                uid: 61000,
                outcome: Ran::Ended {
                    success: true,
                    code: 0,
                    what: "exited 0".into(),
                    output: format!("ran {}", req.argv.join(" ")),
                    duration_ms: 1.0,
                },
            };
            let mut text = serde_json::to_string(&reply).unwrap();
            text.push('\n');
            wr.write_all(text.as_bytes()).await.unwrap();
            let (c, _) = listener.accept().await.unwrap();
            let (rd, _wr) = c.into_split();
            let mut rd = BufReader::new(rd);
            let mut line = String::new();
            rd.read_line(&mut line).await.unwrap();
            let mut rest = Vec::new();
            // Returns once the client has hung up.
            rd.read_to_end(&mut rest).await.unwrap();
            (req, line)
        });
        let req = Request {
            kind: "hook".into(),
            name: "x".into(),
            argv: vec!["/bin/echo".into(), "hi".into()],
            env: vec![],
            timeout_ms: 100,
        };
        let (ran, place) = ask(&path, &req, Duration::from_secs(5)).await;
        assert!(
            matches!(ran, Ran::Ended { success: true, ref output, .. } if output == "ran /bin/echo hi")
        );
        assert_eq!(
            place.suffix(),
            " (in vigil-run@0-1-2.service as vigil-run, uid 61000)"
        );
        let start = std::time::Instant::now();
        let slow = ask(&path, &req, Duration::from_millis(300)).await;
        assert!(matches!(slow.0, Ran::TimedOut { .. }));
        assert!(start.elapsed() >= Duration::from_millis(300));
        assert!(start.elapsed() < Duration::from_secs(3));
        let (got, second) = tokio::time::timeout(Duration::from_secs(5), server)
            .await
            .expect("the stand-in saw the hang-up")
            .unwrap();
        assert_eq!(got, req);
        assert!(second.contains("\"name\":\"x\""), "{second}");
        // Nobody listening: a clear failure, not a direct run.
        drop(dir);
        let (ran, place) = run_in_unit(&path, &req, Duration::from_millis(100)).await;
        assert!(
            matches!(ran, Ran::CannotStart(ref w) if w.contains("cannot reach the hook sandbox")),
            "{place:?}"
        );
    }
}
