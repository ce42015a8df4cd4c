//! The `http`, `tcp` and `exec` probes against real things: HTTP servers on real sockets
//! (answering, failing, hanging), open and closed ports, real processes.

mod common;

use std::io::{Read, Write};
use std::net::TcpListener;
use std::time::{Duration, Instant};

use common::*;
use vigil::core::health::Status;
use vigil::probe::exec::ExecProbe;
use vigil::probe::http::HttpProbe;
use vigil::probe::tcp::TcpProbe;
use vigil::probe::{Metrics, Probe};

const TIMEOUT: Duration = Duration::from_millis(300);

async fn timed(p: &mut dyn Probe) -> (Option<Status>, String, Metrics, Duration) {
    let start = Instant::now();
    let r = p.read().await;
    let took = start.elapsed();
    let (s, d, m) = value(r);
    (s, d, m, took)
}

/// A one-answer-per-connection HTTP server on its own thread: every request gets `answer`
/// (a whole raw response), or, with `None`, is read and never answered (the socket is kept
/// open until the server is dropped with the test).
struct Server {
    port: u16,
}

impl Server {
    fn start(answer: Option<&'static str>) -> Server {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = l.local_addr().unwrap().port();
        std::thread::spawn(move || {
            let mut held = Vec::new();
            for s in l.incoming() {
                let Ok(mut s) = s else { continue };
                let mut head = Vec::new();
                let mut b = [0u8; 1];
                while !head.ends_with(b"\r\n\r\n") {
                    match s.read(&mut b) {
                        Ok(1) => head.push(b[0]),
                        _ => break,
                    }
                }
                match answer {
                    Some(a) => {
                        let _ = s.write_all(a.as_bytes());
                    }
                    None => held.push(s),
                }
            }
        });
        Server { port }
    }

    fn url(&self) -> String {
        format!("http://127.0.0.1:{}/health", self.port)
    }
}

const OK_200: &str = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok";
const NO_CONTENT_204: &str = "HTTP/1.1 204 No Content\r\nConnection: close\r\n\r\n";
const UNAVAILABLE_503: &str = "HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\nContent-Length: 37\r\nConnection: close\r\n\r\n{\"status\":\"down\",\n \"db\": \"no route\"}\n";
const MOVED_301: &str = "HTTP/1.1 301 Moved Permanently\r\nLocation: /elsewhere\r\nContent-Length: 0\r\nConnection: close\r\n\r\n";

#[tokio::test]
async fn http_expected_status_is_ok_with_status_and_latency() {
    let srv = Server::start(Some(OK_200));
    let mut p = HttpProbe::new(srv.url(), vec![200], TIMEOUT);
    let (status, detail, m, _) = timed(&mut p).await;
    assert_eq!(status, None);
    assert_eq!(m["status_code"], 200.0);
    assert!(m["latency_ms"] > 0.0 && m["latency_ms"] < 300.0, "{m:?}");
    assert!(
        detail.starts_with(&format!("GET {} answered 200 in ", srv.url())),
        "{detail}"
    );

    // A list of expected codes.
    let srv = Server::start(Some(NO_CONTENT_204));
    let mut p = HttpProbe::new(srv.url(), vec![200, 204], TIMEOUT);
    let (status, _, m, _) = timed(&mut p).await;
    assert_eq!((status, m["status_code"]), (None, 204.0));
}

#[tokio::test]
async fn http_unexpected_status_is_crit_with_what_the_server_said() {
    let srv = Server::start(Some(UNAVAILABLE_503));
    let mut p = HttpProbe::new(srv.url(), vec![200], TIMEOUT);
    let (status, detail, m, _) = timed(&mut p).await;
    assert_eq!(status, Some(Status::Crit));
    assert_eq!(m["status_code"], 503.0);
    assert_eq!(
        detail,
        format!(
            "GET {} answered 503, expected 200: {{\"status\":\"down\", \"db\": \"no route\"}}",
            srv.url()
        )
    );
    // Redirects are not followed: the URL's own answer counts.
    let srv = Server::start(Some(MOVED_301));
    let mut p = HttpProbe::new(srv.url(), vec![200, 204], TIMEOUT);
    let (status, detail, m, _) = timed(&mut p).await;
    assert_eq!((status, m["status_code"]), (Some(Status::Crit), 301.0));
    assert!(
        detail.ends_with("answered 301, expected one of 200, 204"),
        "{detail}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_a_server_that_never_answers_is_crit_within_the_timeout() {
    let hung = Server::start(None);
    let good = Server::start(Some(OK_200));
    let url = hung.url();
    let slow = tokio::spawn(async move {
        let mut p = HttpProbe::new(url, vec![200], TIMEOUT);
        timed(&mut p).await
    });
    // Meanwhile another probe answers promptly (warmed up: its first reading builds its
    // HTTP client).
    let mut p = HttpProbe::new(good.url(), vec![200], TIMEOUT);
    timed(&mut p).await;
    let (status, _, _, took) = timed(&mut p).await;
    assert_eq!(status, None);
    assert!(took < Duration::from_millis(150), "{took:?}");
    assert!(!slow.is_finished());
    let (status, detail, m, took) = slow.await.unwrap();
    assert_eq!(status, Some(Status::Crit));
    assert_eq!(
        detail,
        format!("GET {} gave no answer within 300ms", hung.url())
    );
    assert!(m.is_empty());
    assert!(
        took >= Duration::from_millis(250) && took < TIMEOUT,
        "{took:?}"
    );
}

#[tokio::test]
async fn http_refused_is_crit_at_once() {
    let url = format!("http://127.0.0.1:{}/", free_port());
    let mut p = HttpProbe::new(url.clone(), vec![200], TIMEOUT);
    timed(&mut p).await; // builds the client
    let (status, detail, _, took) = timed(&mut p).await;
    assert_eq!(status, Some(Status::Crit));
    assert_eq!(
        detail,
        format!("GET {url} failed: connection refused (nothing listens there)")
    );
    assert!(took < Duration::from_millis(100), "{took:?}");
}

#[tokio::test]
async fn tcp_open_port_is_ok_and_closed_port_is_crit() {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = format!("127.0.0.1:{}", l.local_addr().unwrap().port());
    let mut p = TcpProbe::new(addr.clone(), TIMEOUT);
    let (status, detail, m, _) = timed(&mut p).await;
    assert_eq!(status, None);
    assert!(m["latency_ms"] >= 0.0 && m["latency_ms"] < 100.0, "{m:?}");
    assert!(
        detail.starts_with(&format!("connected to {addr} (")),
        "{detail}"
    );
    // The connection really was made (and closed again).
    l.set_nonblocking(true).unwrap();
    assert!(
        l.accept().is_ok(),
        "the probe's connection is in the accept queue"
    );

    drop(l);
    let mut p = TcpProbe::new(addr.clone(), TIMEOUT);
    let (status, detail, m, took) = timed(&mut p).await;
    assert_eq!(status, Some(Status::Crit));
    assert_eq!(
        detail,
        format!("cannot connect to {addr}: {addr}: connection refused (nothing listens there)")
    );
    assert!(m.is_empty());
    assert!(took < Duration::from_millis(100), "{took:?}");

    // By name, which resolves first.
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let named = format!("localhost:{}", l.local_addr().unwrap().port());
    let mut p = TcpProbe::new(named, TIMEOUT);
    let (status, detail, _, _) = timed(&mut p).await;
    assert_eq!(status, None, "{detail}");
}

#[tokio::test]
async fn tcp_an_unresolvable_name_is_crit() {
    let mut p = TcpProbe::new("no-such-host.invalid:80".into(), Duration::from_secs(2));
    let (status, detail, _, _) = timed(&mut p).await;
    assert_eq!(status, Some(Status::Crit));
    assert!(
        detail.starts_with("cannot resolve no-such-host.invalid:80"),
        "{detail}"
    );
}

fn argv(a: &[&str]) -> Vec<String> {
    a.iter().map(|s| s.to_string()).collect()
}

#[tokio::test]
async fn exec_exit_0_is_ok() {
    let mut p = ExecProbe::new(argv(&["/bin/sh", "-c", "echo all good"]), TIMEOUT);
    let (status, detail, m, _) = timed(&mut p).await;
    assert_eq!(status, None);
    assert_eq!(m["exit_code"], 0.0);
    assert!(m["duration_ms"] > 0.0 && m["duration_ms"] < 300.0, "{m:?}");
    assert!(detail.starts_with("/bin/sh exited 0 in "), "{detail}");
    assert!(detail.ends_with(": all good"), "{detail}");
}

#[tokio::test]
async fn exec_a_failing_command_is_crit_with_its_output() {
    let mut p = ExecProbe::new(
        argv(&[
            "/bin/sh",
            "-c",
            "echo 'replica lag 42s'; echo 'see /var/log/db.log' >&2; exit 3",
        ]),
        Duration::from_secs(2),
    );
    let (status, detail, m, _) = timed(&mut p).await;
    assert_eq!(status, Some(Status::Crit));
    assert_eq!(m["exit_code"], 3.0);
    assert!(detail.starts_with("/bin/sh exited 3: "), "{detail}");
    assert!(detail.contains("replica lag 42s"), "{detail}");
    assert!(detail.contains("see /var/log/db.log"), "{detail}");

    // Only the tail of a long output.
    let mut p = ExecProbe::new(
        argv(&[
            "/bin/sh",
            "-c",
            "i=0; while [ $i -lt 500 ]; do echo line $i; i=$((i+1)); done; exit 1",
        ]),
        Duration::from_secs(2),
    );
    let (_, detail, _, _) = timed(&mut p).await;
    assert!(detail.ends_with("line 498 | line 499"), "{detail}");
    assert!(!detail.contains("line 1 |"), "{detail}");
    assert!(detail.len() < 700, "{} bytes", detail.len());

    // Killed by a signal.
    let mut p = ExecProbe::new(
        argv(&["/bin/sh", "-c", "kill -TERM $$"]),
        Duration::from_secs(2),
    );
    let (status, detail, m, _) = timed(&mut p).await;
    assert_eq!(status, Some(Status::Crit));
    assert_eq!(m["exit_code"], 143.0);
    assert_eq!(detail, "/bin/sh killed by SIGTERM");
}

/// Whether a process is gone (or only a zombie waiting for its reaper).
fn gone(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Err(_) => true,
        Ok(stat) => stat
            .rsplit_once(')')
            .map(|(_, rest)| rest.trim_start().starts_with('Z'))
            .unwrap_or(false),
    }
}

fn pids_in(detail: &str) -> Vec<u32> {
    let (_, rest) = detail
        .split_once("pids ")
        .unwrap_or_else(|| panic!("no pids in {detail}"));
    rest.split_whitespace()
        .take(2)
        .map(|p| p.parse().unwrap())
        .collect()
}

#[tokio::test]
async fn exec_timeout_kills_the_command_and_what_it_started() {
    // The shell starts a sleep in the background and waits: both must go.
    let mut p = ExecProbe::new(
        argv(&["/bin/sh", "-c", "sleep 30 & echo pids $$ $!; wait"]),
        TIMEOUT,
    );
    let (status, detail, m, took) = timed(&mut p).await;
    assert_eq!(status, Some(Status::Crit));
    assert!(
        detail.starts_with("/bin/sh timed out after 300ms (killed): pids "),
        "{detail}"
    );
    assert!(!m.contains_key("exit_code"));
    assert!(m["duration_ms"] >= 250.0, "{m:?}");
    assert!(took < TIMEOUT, "{took:?}");
    let pids = pids_in(&detail);
    assert_eq!(pids.len(), 2);
    for pid in pids {
        wait_for(
            Duration::from_secs(3),
            &format!("process {pid} to be gone"),
            || gone(pid).then_some(()),
        );
    }
}

#[tokio::test]
async fn exec_something_left_running_neither_holds_the_reading_nor_lingers() {
    // Exits at once but leaves a sleep holding its stdout open.
    let mut p = ExecProbe::new(
        argv(&["/bin/sh", "-c", "sleep 30 & echo pids $! $!"]),
        Duration::from_secs(5),
    );
    let (status, detail, m, took) = timed(&mut p).await;
    assert_eq!(status, None, "{detail}");
    assert_eq!(m["exit_code"], 0.0);
    assert!(took < Duration::from_secs(1), "{took:?}");
    let pid = pids_in(&detail)[0];
    wait_for(
        Duration::from_secs(3),
        "the leftover sleep to be gone",
        || gone(pid).then_some(()),
    );
}

#[tokio::test]
async fn exec_a_missing_command_is_crit_with_a_clear_reason() {
    let mut p = ExecProbe::new(argv(&["/nonexistent/check-db", "--fast"]), TIMEOUT);
    let (status, detail, m, _) = timed(&mut p).await;
    assert_eq!(status, Some(Status::Crit));
    assert_eq!(
        detail,
        "cannot run /nonexistent/check-db: it does not exist"
    );
    assert!(m.is_empty());

    // A script whose interpreter is missing.
    let dir = tempfile::tempdir().unwrap();
    let script = dir.path().join("check.sh");
    std::fs::write(&script, "#!/nonexistent/bash\nexit 0\n").unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
    let mut p = ExecProbe::new(vec![script.display().to_string()], TIMEOUT);
    let (status, detail, _, _) = timed(&mut p).await;
    assert_eq!(status, Some(Status::Crit));
    assert!(
        detail.ends_with("the interpreter its #! line names does not exist"),
        "{detail}"
    );

    // Not executable.
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o644)).unwrap();
    let mut p = ExecProbe::new(vec![script.display().to_string()], TIMEOUT);
    let (status, detail, _, _) = timed(&mut p).await;
    assert_eq!(status, Some(Status::Crit));
    assert!(
        detail.contains(": permission denied (it must be executable"),
        "{detail}"
    );
}

#[tokio::test]
async fn exec_runs_as_nobody_when_root_with_a_clean_environment() {
    let mut p = ExecProbe::new(argv(&["/usr/bin/id"]), Duration::from_secs(2));
    let (status, detail, _, _) = timed(&mut p).await;
    assert_eq!(status, None, "{detail}");
    let euid = nix::unistd::geteuid().as_raw();
    if euid == 0 {
        assert!(
            detail.contains("uid=65534(nobody) gid=65534(nogroup) groups=65534(nogroup)"),
            "as root, the command runs as nobody without root's groups: {detail}"
        );
    } else {
        assert!(detail.contains(&format!("uid={euid}(")), "{detail}");
    }

    let mut p = ExecProbe::new(argv(&["/usr/bin/env"]), Duration::from_secs(2));
    let (status, detail, _, _) = timed(&mut p).await;
    assert_eq!(status, None, "{detail}");
    // Nothing of this test process's environment (HOME, CARGO_*, …) gets through.
    let mut env: Vec<&str> = detail.split_once(": ").unwrap().1.split(" | ").collect();
    env.sort();
    assert_eq!(env, ["LANG=C.UTF-8", "PATH=/usr/sbin:/usr/bin:/sbin:/bin"]);

    let mut p = ExecProbe::new(argv(&["/bin/pwd"]), Duration::from_secs(2));
    let (_, detail, _, _) = timed(&mut p).await;
    assert!(detail.ends_with(": /"), "{detail}");

    // stdin is /dev/null: a command reading it sees the end at once.
    let mut p = ExecProbe::new(argv(&["/bin/cat"]), Duration::from_secs(2));
    let (status, _, m, _) = timed(&mut p).await;
    assert_eq!((status, m["exit_code"]), (None, 0.0));
}

#[tokio::test]
async fn http_a_server_that_hangs_up_is_crit_with_the_reason() {
    // Accepts, reads the request, closes without a word.
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for s in l.incoming() {
            let Ok(mut s) = s else { continue };
            let mut b = [0u8; 1024];
            let _ = s.read(&mut b);
            drop(s);
        }
    });
    let url = format!("http://127.0.0.1:{port}/");
    let mut p = HttpProbe::new(url.clone(), vec![200], TIMEOUT);
    timed(&mut p).await; // builds the client
    let (status, detail, _, took) = timed(&mut p).await;
    assert_eq!(status, Some(Status::Crit));
    assert_eq!(
        detail,
        format!("GET {url} failed: connection closed before message completed")
    );
    assert!(took < Duration::from_millis(100), "{took:?}");
}

#[test]
fn vigild_runs_http_tcp_and_exec_checks_from_a_policy() {
    let web = Server::start(Some(OK_200));
    let port = TcpListener::bind("127.0.0.1:0").unwrap();
    let policy = format!(
        r#"
[[check]]
name = "web"
probe = "http"
url = "{}"
every = "200ms"
timeout = "1s"

[[check]]
name = "port"
probe = "tcp"
address = "127.0.0.1:{}"
every = "200ms"
timeout = "1s"

[[check]]
name = "cmd-ok"
probe = "exec"
command = ["/bin/true"]
every = "200ms"
timeout = "1s"

[[check]]
name = "cmd-bad"
probe = "exec"
command = ["/bin/sh", "-c", "echo disk array degraded; exit 2"]
every = "200ms"
timeout = "1s"
"#,
        web.url(),
        port.local_addr().unwrap().port()
    );
    let v = VigildBuilder::new().policy(&policy).start();
    v.wait_status("critical");
    for needle in [
        format!("check web unknown → ok: GET {} answered 200 in ", web.url()),
        "check port unknown → ok: connected to 127.0.0.1:".to_string(),
        "check cmd-ok unknown → ok: /bin/true exited 0 in ".to_string(),
        "check cmd-bad unknown → crit: /bin/sh exited 2: disk array degraded".to_string(),
    ] {
        wait_for(Duration::from_secs(10), &needle, || {
            v.log().contains(&needle).then_some(())
        });
    }
}
