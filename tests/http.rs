//! The heartbeat over real TCP: the exact contract with curl, status codes, and the bounds.

mod common;

use std::io::{ErrorKind, Read, Write};
use std::net::TcpStream;
use std::process::Command;
use std::time::{Duration, Instant};

use common::*;

fn curl(port: u16, args: &[&str], path: &str) -> (String, String) {
    let out = Command::new("curl")
        .args(["-sS", "-D", "/dev/stderr", "--max-time", "10"])
        .args(args)
        .arg(format!("http://127.0.0.1:{port}{path}"))
        .output()
        .expect("curl must be installed; scripts/test.sh does it");
    assert!(out.status.success(), "curl failed: {out:?}");
    (
        String::from_utf8(out.stdout).unwrap(),
        String::from_utf8(out.stderr).unwrap(),
    )
}

#[test]
fn heartbeat_follows_the_contract_exactly() {
    let v = VigildBuilder::new().start();
    v.wait_status("ok");
    std::thread::sleep(Duration::from_millis(1100));
    let (body, headers) = curl(v.port, &[], "/api/system/heartbeat");
    assert!(headers.starts_with("HTTP/1.1 200"), "{headers}");
    assert!(
        headers
            .to_ascii_lowercase()
            .contains("content-type: application/json"),
        "{headers}"
    );
    // {"status":"ok","uptime":123456,"version":"1.0.0","timestamp":"2026-02-17T10:00:00.000Z"}
    let version = env!("CARGO_PKG_VERSION");
    let prefix = "{\"status\":\"ok\",\"uptime\":";
    assert!(body.starts_with(prefix), "{body}");
    let rest = &body[prefix.len()..];
    let digits: String = rest.chars().take_while(|c| c.is_ascii_digit()).collect();
    let uptime: u64 = digits.parse().unwrap();
    assert!((1..60).contains(&uptime), "uptime {uptime} in {body}");
    let rest = &rest[digits.len()..];
    let mid = format!(",\"version\":\"{version}\",\"timestamp\":\"");
    assert!(rest.starts_with(&mid), "{body}");
    let ts = rest[mid.len()..]
        .strip_suffix("\"}")
        .unwrap_or_else(|| panic!("{body}"));
    // RFC 3339 UTC with milliseconds and Z: 2026-02-17T10:00:00.000Z
    assert_eq!(ts.len(), 24, "{ts}");
    let b = ts.as_bytes();
    for (i, c) in [
        (4, b'-'),
        (7, b'-'),
        (10, b'T'),
        (13, b':'),
        (16, b':'),
        (19, b'.'),
        (23, b'Z'),
    ] {
        assert_eq!(b[i], c, "{ts}");
    }
    let parsed = humantime::parse_rfc3339(ts).unwrap();
    let skew = std::time::SystemTime::now()
        .duration_since(parsed)
        .unwrap_or_default();
    assert!(skew < Duration::from_secs(5), "{ts}");
    let doc: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(doc.as_object().unwrap().len(), 4);
}

#[test]
fn status_and_healthz_follow_the_checks() {
    let v = VigildBuilder::new().start();
    v.wait_status("ok");
    assert_eq!(v.http("GET", "/healthz").0, 200);
    v.set_available_kb(150_000); // 15%: warn
    v.wait_status("degraded");
    assert_eq!(v.http("GET", "/healthz").0, 200);
    v.set_available_kb(50_000); // 5%: crit
    v.wait_status("critical");
    let (code, _, body) = v.http("GET", "/healthz");
    assert_eq!((code, body.as_str()), (503, "critical\n"));
    v.set_available_kb(900_000);
    v.wait_status("ok");
    assert_eq!(v.http("GET", "/healthz").0, 200);
}

#[test]
fn other_paths_are_404_and_other_methods_405() {
    let v = VigildBuilder::new().start();
    for path in ["/", "/api/system", "/metricsx", "/api/system/heartbeat/"] {
        assert_eq!(v.http("GET", path).0, 404, "{path}");
    }
    for m in ["POST", "PUT", "DELETE", "PATCH", "OPTIONS"] {
        let (code, head, _) = v.http(m, "/api/system/heartbeat");
        assert_eq!(code, 405, "{m}");
        assert!(
            head.to_ascii_lowercase().contains("allow: get, head"),
            "{head}"
        );
    }
    let (code, head, body) = v.http("HEAD", "/api/system/heartbeat");
    assert_eq!(code, 200);
    assert!(body.is_empty(), "HEAD has no body: {body:?}");
    assert!(
        head.to_ascii_lowercase().contains("content-length: "),
        "{head}"
    );
    // A query string does not change the answer.
    assert_eq!(v.http("GET", "/api/system/heartbeat?x=1").0, 200);
}

#[test]
fn oversized_heads_and_too_many_headers_are_refused() {
    let v = VigildBuilder::new().start();
    let big = "a".repeat(20 * 1024);
    let (code, _, _) = http_raw(
        v.port,
        &format!("GET /api/system/heartbeat HTTP/1.1\r\nHost: x\r\nX-Big: {big}\r\n\r\n"),
    );
    assert_eq!(code, 431);
    let many: String = (0..100).map(|i| format!("X-H{i}: v\r\n")).collect();
    let (code, _, _) = http_raw(
        v.port,
        &format!("GET /api/system/heartbeat HTTP/1.1\r\nHost: x\r\n{many}\r\n"),
    );
    assert_eq!(code, 431);
    // Still serving afterwards.
    assert_eq!(v.http("GET", "/api/system/heartbeat").0, 200);
}

#[test]
fn keep_alive_serves_many_requests_on_one_connection() {
    let v = VigildBuilder::new().start();
    let mut s = TcpStream::connect(("127.0.0.1", v.port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let mut buf = [0u8; 4096];
    for _ in 0..50 {
        s.write_all(b"GET /api/system/heartbeat HTTP/1.1\r\nHost: x\r\n\r\n")
            .unwrap();
        let n = s.read(&mut buf).unwrap();
        let text = String::from_utf8_lossy(&buf[..n]);
        assert!(text.starts_with("HTTP/1.1 200"), "{text}");
        assert!(text.ends_with("Z\"}"), "{text}");
    }
}

#[test]
fn a_client_that_never_finishes_its_request_is_cut_off() {
    let v = VigildBuilder::new().start();
    let mut s = TcpStream::connect(("127.0.0.1", v.port)).unwrap();
    s.write_all(b"GET /api/system/heartbeat HTTP/1.1\r\nHost: x\r\n")
        .unwrap();
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    let start = Instant::now();
    let mut buf = Vec::new();
    let _ = s.read_to_end(&mut buf);
    let waited = start.elapsed();
    // hyper answers 408 or just closes; either way the connection ends near the timeout.
    assert!(
        waited >= Duration::from_secs(9) && waited < Duration::from_secs(20),
        "closed after {waited:?}"
    );
    let text = String::from_utf8_lossy(&buf);
    assert!(
        text.is_empty() || text.starts_with("HTTP/1.1 408"),
        "{text}"
    );
    // Meanwhile others were served.
    assert_eq!(v.http("GET", "/api/system/heartbeat").0, 200);
}

const GET_AND_CLOSE: &[u8] =
    b"GET /api/system/heartbeat HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
const HALF_A_HEAD: &[u8] = b"GET /api/system/heartbeat HTTP/1.1\r\nHost: x\r\n";

/// Connects to vigild on loopback, with a read timeout.
fn connect(port: u16, read_timeout: Duration) -> TcpStream {
    let s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(read_timeout)).unwrap();
    s
}

/// Whether vigild has closed `s`: `Some(true)` at the end of the stream, `Some(false)` while
/// it stays open and silent until the read timeout.
fn closed(s: &mut TcpStream) -> Option<bool> {
    let mut buf = [0u8; 1024];
    match s.read(&mut buf) {
        Ok(0) => Some(true),
        Ok(n) => panic!("unexpected bytes: {:?}", String::from_utf8_lossy(&buf[..n])),
        Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => Some(false),
        Err(e) if e.kind() == ErrorKind::ConnectionReset => Some(true),
        Err(e) => panic!("read: {e}"),
    }
}

/// One heartbeat on a fresh connection: its status line and the time from connect to the
/// end of the answer.
fn timed_heartbeat(port: u16) -> (String, Duration) {
    let start = Instant::now();
    let mut s = connect(port, Duration::from_secs(5));
    s.write_all(GET_AND_CLOSE).unwrap();
    let mut buf = Vec::new();
    let _ = s.read_to_end(&mut buf);
    let text = String::from_utf8_lossy(&buf);
    (
        text.lines().next().unwrap_or("").to_string(),
        start.elapsed(),
    )
}

/// VmRSS of a process, as /proc/PID/status writes it.
fn vm_rss(pid: u32) -> String {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let line = status.lines().find(|l| l.starts_with("VmRSS:")).unwrap();
    line["VmRSS:".len()..].trim().to_string()
}

/// Raises this process's soft limit on open files to its hard limit (vigild, started later,
/// inherits it); returns the soft limit in force, from /proc/self/limits.
fn raise_open_files_limit() -> u64 {
    #[cfg(all(
        target_os = "linux",
        any(target_arch = "x86_64", target_arch = "aarch64")
    ))]
    {
        #[repr(C)]
        struct Rlimit {
            cur: u64,
            max: u64,
        }
        extern "C" {
            fn getrlimit(resource: i32, limit: *mut Rlimit) -> i32;
            fn setrlimit(resource: i32, limit: *const Rlimit) -> i32;
        }
        const RLIMIT_NOFILE: i32 = 7;
        let mut l = Rlimit { cur: 0, max: 0 };
        // SAFETY: plain libc calls on a properly laid out struct rlimit.
        unsafe {
            if getrlimit(RLIMIT_NOFILE, &mut l) == 0 && l.cur < l.max {
                l.cur = l.max;
                setrlimit(RLIMIT_NOFILE, &l);
            }
        }
    }
    let limits = std::fs::read_to_string("/proc/self/limits").unwrap();
    let line = limits
        .lines()
        .find_map(|l| l.strip_prefix("Max open files"))
        .expect("Max open files in /proc/self/limits");
    let soft = line.split_whitespace().next().unwrap();
    soft.parse().unwrap_or(u64::MAX) // "unlimited"
}

#[test]
fn a_heartbeat_is_answered_at_once_while_5000_idle_connections_are_open() {
    let soft = raise_open_files_limit();
    let n = soft.saturating_sub(200).min(5000) as usize;
    assert!(n >= 4000, "open files limited to {soft}: 4,200 needed");
    let v = VigildBuilder::new().start();
    let rss_before = vm_rss(v.pid());
    let start = Instant::now();
    let idle: Vec<TcpStream> = (0..n)
        .map(|_| TcpStream::connect(("127.0.0.1", v.port)).unwrap())
        .collect();
    let opened = start.elapsed();
    // Let vigild take the last of them off its accept queue.
    std::thread::sleep(Duration::from_millis(300));
    let mut took = Vec::new();
    for i in 0..20 {
        let (status, t) = timed_heartbeat(v.port);
        assert!(
            status.starts_with("HTTP/1.1 200"),
            "request {i}: {status:?} after {t:?}"
        );
        took.push(t);
    }
    let rss = vm_rss(v.pid());
    let mut sorted = took.clone();
    sorted.sort();
    println!(
        "{n} idle connections opened in {opened:?}; 20 heartbeats: p50 {:?}, max {:?}; \
         vigild VmRSS {rss_before} before, {rss} with them open",
        sorted[sorted.len() / 2],
        sorted[sorted.len() - 1],
    );
    for (i, t) in took.iter().enumerate() {
        assert!(
            *t < Duration::from_millis(100),
            "request {i} took {t:?}: {took:?}"
        );
    }
    drop(idle);
    assert_eq!(v.http("GET", "/api/system/heartbeat").0, 200);
    assert!(
        start.elapsed() < Duration::from_secs(30),
        "{:?}",
        start.elapsed()
    );
}

#[test]
fn at_the_cap_the_oldest_idle_connections_are_closed_to_make_room() {
    let v = VigildBuilder::new().start();
    // Fill every slot with a connection that sends nothing.
    let mut idle: Vec<TcpStream> = (0..256)
        .map(|_| connect(v.port, Duration::from_millis(300)))
        .collect();
    std::thread::sleep(Duration::from_millis(300));
    // One more asks: it is answered at once, and the oldest idle connection made room.
    let (status, took) = timed_heartbeat(v.port);
    assert!(
        status.starts_with("HTTP/1.1 200"),
        "{status:?} after {took:?}"
    );
    assert!(took < Duration::from_secs(1), "{took:?}");
    assert_eq!(closed(&mut idle[0]), Some(true), "the oldest stays open");
    assert_eq!(
        closed(&mut idle[1]),
        Some(false),
        "more than one was closed"
    );
    assert_eq!(closed(&mut idle[255]), Some(false), "the newest was closed");
}

#[test]
fn connections_in_the_middle_of_a_request_are_never_closed_to_make_room() {
    let v = VigildBuilder::new().start();
    // Every slot holds half a request head.
    let mut busy: Vec<TcpStream> = (0..256)
        .map(|_| {
            let mut s = connect(v.port, Duration::from_secs(5));
            s.write_all(HALF_A_HEAD).unwrap();
            s
        })
        .collect();
    std::thread::sleep(Duration::from_millis(300));
    // One more waits: nothing can be closed for it.
    let mut extra = connect(v.port, Duration::from_millis(700));
    extra.write_all(GET_AND_CLOSE).unwrap();
    let mut buf = [0u8; 1024];
    let early = extra.read(&mut buf);
    assert!(
        early.is_err(),
        "served beyond the cap: {:?}",
        early.map(|n| String::from_utf8_lossy(&buf[..n]).into_owned())
    );
    // Each half request is finished and answered: none was cut.
    for (i, s) in busy.iter_mut().enumerate() {
        s.write_all(b"Connection: close\r\n\r\n").unwrap();
        let mut answer = Vec::new();
        let _ = s.read_to_end(&mut answer);
        let text = String::from_utf8_lossy(&answer);
        assert!(text.starts_with("HTTP/1.1 200"), "connection {i}: {text:?}");
    }
    // Their slots are free: the waiting request is answered.
    extra
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let n = extra.read(&mut buf).unwrap();
    let text = String::from_utf8_lossy(&buf[..n]);
    assert!(text.starts_with("HTTP/1.1 200"), "{text:?}");
}

#[test]
fn a_silent_connection_gets_two_seconds_while_the_listener_is_crowded() {
    let v = VigildBuilder::new().start();
    let start = Instant::now();
    let mut talking = connect(v.port, Duration::from_millis(100));
    talking.write_all(HALF_A_HEAD).unwrap();
    // 200 of 256: crowded.
    let mut idle: Vec<TcpStream> = (0..200)
        .map(|_| connect(v.port, Duration::from_secs(6)))
        .collect();
    assert_eq!(closed(&mut idle[0]), Some(true), "still open after 6 s");
    let waited = start.elapsed();
    assert!(
        waited >= Duration::from_millis(1900) && waited < Duration::from_secs(4),
        "closed after {waited:?}"
    );
    // Not the one that spoke.
    assert_eq!(
        closed(&mut talking),
        Some(false),
        "a connection that spoke was closed"
    );
    // Once fewer are open, a silent connection keeps the usual 10 s. (Which of the crowd
    // were shed depends on how fast they were opened; a fresh one after it does not.)
    drop(idle);
    std::thread::sleep(Duration::from_millis(300));
    let mut fresh = connect(v.port, Duration::from_millis(2500));
    assert_eq!(
        closed(&mut fresh),
        Some(false),
        "closed while no longer crowded"
    );
}
