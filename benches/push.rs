//! The push loops' cost: CPU over 10 minutes and bytes per push, for the push heartbeat in
//! each format (vigil, healthchecks, uptime-kuma; every 30 s, the default) and the sensor
//! push (every 5 min, the default), all running at once against a local HTTP sink in a
//! child process (so the sink's own CPU is not counted). The snapshot has 50 checks, two of
//! them warn, and one check flips between ok and crit every minute, so state changes are
//! queued and delivered too. `cargo bench --bench push` prints a table;
//! `VIGIL_BENCH_SECS=60` shortens the run (the default is 600 s).

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::watch;
use tokio_util::sync::CancellationToken;
use vigil::config::{PushFormat, PushTarget};
use vigil::core::check::HostRoots;
use vigil::core::health::{CheckState, Overall, Status};
use vigil::core::status::{PushStatus, Snapshot};
use vigil::surface::push::{self, PushSetup};

/// The sink: answers 200 to every request and prints `PATH BYTES` for each.
fn sink() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    println!("port {}", listener.local_addr().unwrap().port());
    std::io::stdout().flush().unwrap();
    for stream in listener.incoming().flatten() {
        std::thread::spawn(move || {
            let mut out = stream.try_clone().unwrap();
            let mut rd = BufReader::new(stream);
            loop {
                let mut line = String::new();
                if rd.read_line(&mut line).unwrap_or(0) == 0 {
                    return;
                }
                // By the first path segment: `/hc` and `/hc/fail` are one push.
                let path = line
                    .split_whitespace()
                    .nth(1)
                    .unwrap_or("")
                    .split(['?', '/'])
                    .nth(1)
                    .map(|p| format!("/{p}"))
                    .unwrap_or_default();
                let mut bytes = line.len();
                let mut len = 0usize;
                loop {
                    let mut h = String::new();
                    if rd.read_line(&mut h).unwrap_or(0) == 0 {
                        return;
                    }
                    bytes += h.len();
                    if let Some(v) = h.to_ascii_lowercase().strip_prefix("content-length:") {
                        len = v.trim().parse().unwrap_or(0);
                    }
                    if h.trim_end().is_empty() {
                        break;
                    }
                }
                let mut body = vec![0; len];
                if rd.read_exact(&mut body).is_err() {
                    return;
                }
                println!("{path} {}", bytes + len);
                std::io::stdout().flush().unwrap();
                if out
                    .write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nOK")
                    .is_err()
                {
                    return;
                }
            }
        });
    }
}

/// CPU time of this process (all threads, also finished ones), in ms.
fn cpu_ms() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap();
    let rest = stat.rsplit_once(") ").unwrap().1;
    let f: Vec<u64> = rest
        .split_whitespace()
        .map(|x| x.parse().unwrap_or(0))
        .collect();
    // Fields 14 and 15 of proc(5), utime and stime, counted from field 3 here.
    let ticks = f[11] + f[12];
    ticks as f64 * 1000.0 / 100.0
}

fn snapshot(flip: bool) -> Snapshot {
    let mut s = Snapshot::starting(1_771_322_400_000_000);
    s.checks = (0..50)
        .map(|i| {
            let status = match i {
                0 if flip => Status::Crit,
                1 | 2 => Status::Warn,
                _ => Status::Ok,
            };
            let mut metrics = BTreeMap::new();
            metrics.insert("used".to_string(), 41.5);
            metrics.insert("used_bytes".to_string(), 5.1e10);
            metrics.insert("size_bytes".to_string(), 1.2e11);
            Arc::new(CheckState {
                name: format!("check-{i}"),
                probe: if i == 3 { "disk" } else { "memory" }.to_string(),
                status,
                since: 1_771_322_400_000_000,
                detail: "available 41.5% (warn < 20%)".into(),
                metrics,
                last_probe: None,
            })
        })
        .collect();
    s.status = if flip {
        Overall::Critical
    } else {
        Overall::Degraded
    };
    s
}

fn target(url: String, every: u64, format: PushFormat) -> PushTarget {
    PushTarget {
        url,
        every: Duration::from_secs(every),
        timeout: Duration::from_secs(10),
        format,
        token_credential: Some("token".into()),
    }
}

fn main() {
    if std::env::var_os("VIGIL_PUSH_SINK").is_some() {
        return sink();
    }
    let secs: u64 = std::env::var("VIGIL_BENCH_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(600);
    let mut child = Command::new(std::env::current_exe().unwrap())
        .env("VIGIL_PUSH_SINK", "1")
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut out = BufReader::new(child.stdout.take().unwrap());
    let mut first = String::new();
    out.read_line(&mut first).unwrap();
    let port: u16 = first.trim().strip_prefix("port ").unwrap().parse().unwrap();
    let seen: Arc<Mutex<BTreeMap<String, Vec<u64>>>> = Arc::default();
    let s = seen.clone();
    std::thread::spawn(move || {
        for line in out.lines().map_while(Result::ok) {
            if let Some((path, n)) = line.split_once(' ') {
                let mut m = s.lock().unwrap();
                m.entry(path.to_string())
                    .or_default()
                    .push(n.parse().unwrap());
            }
        }
    });

    let dir = tempfile::tempdir().unwrap();
    let creds = dir.path().join("creds");
    std::fs::create_dir_all(&creds).unwrap();
    std::fs::write(creds.join("token"), "a-32-character-bearer-token-here").unwrap();
    let base = format!("http://127.0.0.1:{port}");
    let rt = tokio::runtime::Runtime::new().unwrap();
    let cpu_before = cpu_ms();
    let started = Instant::now();
    let statuses = rt.block_on(async {
        let (tx, rx) = watch::channel(Arc::new(snapshot(false)));
        let stop = CancellationToken::new();
        let runs = [
            ("vigil", PushFormat::Vigil, "/vigil"),
            ("healthchecks", PushFormat::Healthchecks, "/hc"),
            ("uptime-kuma", PushFormat::UptimeKuma, "/kuma"),
        ];
        let mut status_rx = Vec::new();
        for (i, (name, format, path)) in runs.iter().enumerate() {
            let state = dir.path().join(name);
            std::fs::create_dir_all(&state).unwrap();
            let setup = PushSetup {
                heartbeat: Some(target(format!("{base}{path}"), 30, *format)),
                // One sensor push, beside the first heartbeat.
                metrics: (i == 0)
                    .then(|| target(format!("{base}/metrics"), 300, PushFormat::Vigil)),
                state_dir: state,
                credentials: Some(creds.clone()),
                roots: HostRoots::default(),
                machine_id: "/etc/machine-id".into(),
            };
            status_rx.push(push::start(setup, rx.clone(), stop.clone()));
        }
        let mut flip = false;
        let end = tokio::time::Instant::now() + Duration::from_secs(secs);
        while tokio::time::Instant::now() < end {
            let left = end - tokio::time::Instant::now();
            tokio::time::sleep(left.min(Duration::from_secs(60))).await;
            flip = !flip;
            tx.send_replace(Arc::new(snapshot(flip)));
        }
        stop.cancel();
        tokio::time::sleep(Duration::from_millis(200)).await;
        status_rx
            .iter()
            .flat_map(|r| r.borrow().clone())
            .collect::<Vec<PushStatus>>()
    });
    let cpu = cpu_ms() - cpu_before;
    let wall = started.elapsed().as_secs_f64();
    let _ = child.kill();
    let _ = child.wait();

    println!("push loops: 3 heartbeats (every 30 s) + 1 sensor push (every 5 min), {wall:.0} s");
    println!(
        "CPU: {cpu:.0} ms in all ({:.3} % of one core)",
        cpu / (wall * 1000.0) * 100.0
    );
    println!();
    println!(
        "| push | format | requests seen | bytes per push (median) | min | max | vigild's count |"
    );
    println!("| --- | --- | --- | --- | --- | --- | --- |");
    let seen = seen.lock().unwrap();
    let row = |push: &str, format: &str, path: &str, counted: Option<u64>| {
        let mut v = seen.get(path).cloned().unwrap_or_default();
        v.sort_unstable();
        let med = v.get(v.len() / 2).copied().unwrap_or(0);
        println!(
            "| {push} | {format} | {} | {med} | {} | {} | {} |",
            v.len(),
            v.first().copied().unwrap_or(0),
            v.last().copied().unwrap_or(0),
            counted.map_or("-".into(), |c| c.to_string())
        );
    };
    let last = |name: &str, format: &str| {
        statuses
            .iter()
            .find(|s| s.name == name && s.format == format)
            .map(|s| s.last_bytes)
    };
    row("heartbeat", "vigil", "/vigil", last("heartbeat", "vigil"));
    row(
        "heartbeat",
        "healthchecks",
        "/hc",
        last("heartbeat", "healthchecks"),
    );
    row(
        "heartbeat",
        "uptime-kuma",
        "/kuma",
        last("heartbeat", "uptime-kuma"),
    );
    row("metrics", "sensor", "/metrics", last("metrics", "sensor"));
    let failed: u64 = statuses.iter().map(|s| s.failed_total).sum();
    assert_eq!(failed, 0, "no push failed against the local sink");
}
