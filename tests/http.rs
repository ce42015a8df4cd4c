//! The heartbeat over real TCP: the exact contract with curl, status codes, and the bounds.

mod common;

use std::io::{Read, Write};
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

#[test]
fn connections_beyond_the_cap_wait_and_are_served_when_slots_free() {
    let v = VigildBuilder::new().start();
    // Fill every slot with a connection that sends nothing.
    let idle: Vec<TcpStream> = (0..256)
        .map(|_| TcpStream::connect(("127.0.0.1", v.port)).unwrap())
        .collect();
    std::thread::sleep(Duration::from_millis(300));
    // One more: the kernel accepts it, vigild does not serve it yet.
    let mut extra = TcpStream::connect(("127.0.0.1", v.port)).unwrap();
    extra
        .write_all(b"GET /api/system/heartbeat HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .unwrap();
    extra
        .set_read_timeout(Some(Duration::from_millis(700)))
        .unwrap();
    let mut buf = [0u8; 1024];
    let early = extra.read(&mut buf);
    assert!(
        early.is_err(),
        "served beyond the cap: {:?}",
        early.map(|n| String::from_utf8_lossy(&buf[..n]).into_owned())
    );
    // Slots free up: the waiting request is answered.
    drop(idle);
    extra
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let n = extra.read(&mut buf).unwrap();
    assert!(String::from_utf8_lossy(&buf[..n]).starts_with("HTTP/1.1 200"));
}
