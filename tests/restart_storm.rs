//! A restart storm on the real dockerd: a container that dies 100 ms after every start,
//! started again at once, over and over (as fast as dockerd starts it: a start costs it a
//! few hundred ms), for five minutes (`VIGIL_STORM_SECS` shortens or
//! lengthens it). vigild's rule restarts it within its limit and no more in any window of
//! the limit's length, the incident ends exhausted, and vigild's memory and database stay
//! bounded while the check flaps thousands of times. The figures go to docs/RELIABILITY.md.

mod common;
mod docker_support;
mod reliability;

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::*;
use docker_support::{require_docker, Containers};

/// The rule's limit: at most this many restarts in any window of `LIMIT_WINDOW_S`.
const LIMIT: usize = 3;
const LIMIT_WINDOW_S: u64 = 60;

fn rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        })
        .unwrap_or(0)
}

/// One Engine API call on the real dockerd's socket; its HTTP status (0 when it failed).
fn engine(method: &str, path: &str) -> u16 {
    use std::io::{Read, Write};
    let Ok(mut s) = std::os::unix::net::UnixStream::connect("/var/run/docker.sock") else {
        return 0;
    };
    let req = format!(
        "{method} {path} HTTP/1.1\r\nHost: docker\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
    );
    let mut out = String::new();
    if s.write_all(req.as_bytes()).is_err() || s.read_to_string(&mut out).is_err() {
        return 0;
    }
    out.split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0)
}

fn db_bytes(state: &std::path::Path) -> u64 {
    ["vigil.db", "vigil.db-wal"]
        .iter()
        .filter_map(|f| std::fs::metadata(state.join(f)).ok())
        .map(|m| m.len())
        .sum()
}

#[test]
fn a_container_dying_every_100ms_for_five_minutes_is_restarted_within_the_limit() {
    require_docker();
    let secs: u64 = std::env::var("VIGIL_STORM_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(300);
    let mut cs = Containers::new("storm");
    let name = cs.run(
        "flaky",
        &["--network", "none"],
        &["sh", "-c", "sleep 0.1; exit 1"],
    );
    let policy = format!(
        r#"
[[check]]
name = "flaky"
probe = "container"
container = "{name}"
every = "30s"

[[rule]]
name = "storm"
on = "flaky"
when = "crit"
for = "0s"
do = ["restart container:{name}"]
cooldown = "0s"
limit = "{LIMIT} per {LIMIT_WINDOW_S}s"
"#
    );
    let v = VigildBuilder::new().policy(&policy).start();
    let state = v.state_dir();
    let pid = v.pid();
    // Let vigild settle before the baseline.
    v.wait_status("critical");
    std::thread::sleep(Duration::from_secs(3));

    // The storm, straight on the Engine API (the docker CLI costs more than the 100 ms the
    // container lives): start it, wait for its death, again.
    let stop = Arc::new(AtomicBool::new(false));
    let deaths = Arc::new(AtomicU64::new(0));
    let storm = {
        let (stop, deaths, name) = (stop.clone(), deaths.clone(), name.clone());
        std::thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                let started = engine("POST", &format!("/containers/{name}/start"));
                if matches!(started, 204 | 304)
                    && engine("POST", &format!("/containers/{name}/wait")) == 200
                {
                    deaths.fetch_add(1, Ordering::Relaxed);
                }
            }
        })
    };
    let start = Instant::now();
    let (rss0, db0) = (rss_kib(pid), db_bytes(&state));
    let (mut rss_max, mut db_max) = (rss0, db0);
    let mut samples = Vec::new();
    let mut heartbeat_failures = 0;
    while start.elapsed() < Duration::from_secs(secs) {
        std::thread::sleep(Duration::from_secs(1));
        let (r, d) = (rss_kib(pid), db_bytes(&state));
        rss_max = rss_max.max(r);
        db_max = db_max.max(d);
        samples.push((start.elapsed().as_secs(), r, d));
        if std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| v.heartbeat())).is_err() {
            heartbeat_failures += 1;
        }
    }
    stop.store(true, Ordering::Relaxed);
    storm.join().unwrap();
    let died = deaths.load(Ordering::Relaxed);
    // Memory and database over the second half against the first: bounded, not growing
    // with the number of flaps.
    let half = samples.len() / 2;
    let max_of = |s: &[(u64, u64, u64)], i: usize| {
        s.iter()
            .map(|t| if i == 1 { t.1 } else { t.2 })
            .max()
            .unwrap_or(0)
    };
    let (rss_first, rss_second) = (max_of(&samples[..half], 1), max_of(&samples[half..], 1));
    let (db_first, db_second) = (max_of(&samples[..half], 2), max_of(&samples[half..], 2));

    let db = rusqlite::Connection::open(state.join("vigil.db")).unwrap();
    let mut starts: Vec<i64> = db
        .prepare(
            "SELECT a.started_us FROM actions a JOIN incidents i ON a.incident = i.id
             WHERE i.rule = 'storm' AND a.observed = 0 ORDER BY a.started_us",
        )
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    starts.sort_unstable();
    // The most restarts in any window of the limit's length.
    let window = (LIMIT_WINDOW_S * 1_000_000) as i64;
    let most = (0..starts.len())
        .map(|i| {
            starts[i..]
                .iter()
                .take_while(|&&t| t < starts[i] + window)
                .count()
        })
        .max()
        .unwrap_or(0);
    let states: Vec<String> = db
        .prepare("SELECT state FROM incidents WHERE rule = 'storm' ORDER BY id")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    let transitions: i64 = db
        .query_row(
            "SELECT count(*) FROM transitions WHERE check_name = 'flaky'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    let integrity: String = db
        .query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .unwrap();
    let alive = v.heartbeat()["status"].is_string();

    let rate = died as f64 / secs as f64;
    let mib = |k: u64| k as f64 / 1024.0;
    let figure = format!(
        "{died} deaths in {secs} s ({rate:.1}/s); {n} restarts, at most {most} in any {LIMIT_WINDOW_S} s \
         (limit {LIMIT}); incidents {states:?}; RSS {:.1} → max {:.1} MiB (halves {:.1} / {:.1}); \
         db {:.0} → max {:.0} KiB (halves {:.0} / {:.0}), {transitions} transitions kept; \
         heartbeat failures {heartbeat_failures}",
        mib(rss0),
        mib(rss_max),
        mib(rss_first),
        mib(rss_second),
        db0 as f64 / 1024.0,
        db_max as f64 / 1024.0,
        db_first as f64 / 1024.0,
        db_second as f64 / 1024.0,
        n = starts.len(),
    );
    eprintln!("restart storm: {figure}");
    let exhausted = states.last().map(String::as_str) == Some("exhausted");
    // Bounds: 10 MiB of RSS over the start, the second half no higher than the first plus
    // 2 MiB; the database under 8 MiB.
    let rss_ok = rss_max <= rss0 + 10 * 1024 && rss_second <= rss_first + 2 * 1024;
    let db_ok = db_max <= 8 * 1024 * 1024;
    let pass = most <= LIMIT
        && !starts.is_empty()
        && exhausted
        && rss_ok
        && db_ok
        && integrity == "ok"
        && alive
        && heartbeat_failures == 0
        && died * 2 >= secs;
    reliability::record(
        "restart_storm",
        &format!(
            "a container dying 100 ms after each start, started again at once, for {secs} s; \
             rule `restart` limit {LIMIT} per {LIMIT_WINDOW_S}s"
        ),
        &figure,
        pass,
    );
    assert!(died * 2 >= secs, "the storm was too weak: {figure}");
    assert!(
        !starts.is_empty(),
        "no restart at all: {figure}\n{}",
        v.log()
    );
    assert!(most <= LIMIT, "over the limit: {figure}");
    assert!(exhausted, "the incident did not end exhausted: {figure}");
    assert!(rss_ok, "RSS grew: {figure}\n{samples:?}");
    assert!(db_ok, "the database grew: {figure}\n{samples:?}");
    assert_eq!(integrity, "ok");
    assert!(alive && heartbeat_failures == 0, "{figure}");
}
