//! The push heartbeat and the sensor push against real HTTP servers started here: one that
//! answers and records every request, one that accepts and never answers, and one that is
//! down and comes back — the state changes made meanwhile then arrive in order. Tokens come
//! from a real credential directory (`$CREDENTIALS_DIRECTORY`); `vigilctl status` over a
//! private bus shows the last push.

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::*;
use serde_json::Value;

/// One request as the recorder read it off the wire.
#[derive(Debug, Clone)]
struct Recorded {
    method: String,
    target: String,
    headers: Vec<(String, String)>,
    body: String,
    /// Bytes on the wire: head and body.
    bytes: usize,
}

impl Recorded {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
    fn json(&self) -> Value {
        serde_json::from_str(&self.body)
            .unwrap_or_else(|e| panic!("body is not JSON ({e}): {}", self.body))
    }
}

/// An HTTP/1.1 server that answers 200 to everything and records it (keep-alive too).
struct Recorder {
    port: u16,
    reqs: Arc<Mutex<Vec<Recorded>>>,
}

impl Recorder {
    fn start() -> Recorder {
        Self::on(TcpListener::bind("127.0.0.1:0").unwrap())
    }

    fn on(listener: TcpListener) -> Recorder {
        let port = listener.local_addr().unwrap().port();
        let reqs = Arc::new(Mutex::new(Vec::new()));
        let r = reqs.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let r = r.clone();
                std::thread::spawn(move || serve(stream, r));
            }
        });
        Recorder { port, reqs }
    }

    fn reqs(&self) -> Vec<Recorded> {
        self.reqs.lock().unwrap().clone()
    }
}

fn serve(stream: TcpStream, reqs: Arc<Mutex<Vec<Recorded>>>) {
    let mut out = stream.try_clone().unwrap();
    let mut rd = BufReader::new(stream);
    loop {
        let mut line = String::new();
        if rd.read_line(&mut line).unwrap_or(0) == 0 {
            return;
        }
        let mut bytes = line.len();
        let mut parts = line.split_whitespace();
        let (method, target) = (
            parts.next().unwrap_or("").to_string(),
            parts.next().unwrap_or("").to_string(),
        );
        let mut headers = Vec::new();
        loop {
            let mut h = String::new();
            if rd.read_line(&mut h).unwrap_or(0) == 0 {
                return;
            }
            bytes += h.len();
            let h = h.trim_end();
            if h.is_empty() {
                break;
            }
            if let Some((k, v)) = h.split_once(':') {
                headers.push((k.trim().to_string(), v.trim().to_string()));
            }
        }
        let len: usize = headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case("content-length"))
            .and_then(|(_, v)| v.parse().ok())
            .unwrap_or(0);
        let mut body = vec![0; len];
        if rd.read_exact(&mut body).is_err() {
            return;
        }
        bytes += len;
        reqs.lock().unwrap().push(Recorded {
            method,
            target,
            headers,
            body: String::from_utf8_lossy(&body).into_owned(),
            bytes,
        });
        if out
            .write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nOK")
            .is_err()
        {
            return;
        }
    }
}

/// A server that accepts connections, reads, and never answers.
struct Hanging {
    port: u16,
    accepted: Arc<Mutex<Vec<TcpStream>>>,
}

impl Hanging {
    fn start() -> Hanging {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let accepted = Arc::new(Mutex::new(Vec::new()));
        let a = accepted.clone();
        std::thread::spawn(move || {
            for s in listener.incoming().flatten() {
                a.lock().unwrap().push(s);
            }
        });
        Hanging { port, accepted }
    }
}

/// `vigilctl status` over the bus.
fn status(bus: &Bus) -> String {
    let (code, out, err) = vigilctl(&["--bus", &bus.address, "status"]);
    assert_eq!(code, 0, "vigilctl status: {err}");
    out
}

/// The line of `vigilctl status` about the `name` push.
fn push_line(out: &str, name: &str) -> Option<String> {
    out.lines()
        .find(|l| l.starts_with(&format!("{name} push (")))
        .map(str::to_string)
}

/// `N` of `…, N queued`.
fn queued(line: &str) -> u64 {
    let before = line.rsplit_once(" queued").unwrap().0;
    before.rsplit(' ').next().unwrap().parse().unwrap()
}

/// The value of a sample line in /metrics (`name{labels}`), if there.
fn sample(v: &Vigild, series: &str) -> Option<f64> {
    let (code, _, body) = v.http("GET", "/metrics");
    assert_eq!(code, 200);
    body.lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
}

fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .unwrap()
        .trim()
        .to_string()
}

#[test]
fn state_changes_made_while_the_endpoint_is_down_arrive_in_order_with_the_token() {
    let bus = Bus::start();
    let creds = tempfile::tempdir().unwrap();
    let port = free_port(); // nobody listens yet: the endpoint is down
    let mut b = VigildBuilder::new()
        .bus(&bus)
        .env("CREDENTIALS_DIRECTORY", creds.path().to_str().unwrap());
    b.settings = format!(
        "[heartbeat.push]\nurl = \"http://127.0.0.1:{port}/hb\"\nevery = \"1s\"\ntimeout = \"1s\"\ntoken_credential = \"heartbeat-token\"\n"
    );
    let v = b.start();
    v.wait_status("ok");

    // The credential file is not there yet: the push fails and says why.
    let line = wait_for(Duration::from_secs(15), "a credential failure", || {
        push_line(&status(&bus), "heartbeat").filter(|l| l.contains("credential"))
    });
    assert!(
        line.starts_with(&format!(
            "heartbeat push (vigil to http://127.0.0.1:{port}): failed: credential \"heartbeat-token\""
        )),
        "{line}"
    );
    std::fs::write(creds.path().join("heartbeat-token"), "s3cret\n").unwrap();
    wait_for(Duration::from_secs(15), "a connection failure", || {
        push_line(&status(&bus), "heartbeat")
            .filter(|l| l.contains("failed:") && !l.contains("credential"))
    });

    // Three state changes while the endpoint is down.
    v.set_available_kb(150_000);
    v.wait_status("degraded");
    v.set_available_kb(50_000);
    v.wait_status("critical");
    v.set_available_kb(800_000);
    v.wait_status("ok");
    let line = wait_for(Duration::from_secs(10), "4 changes queued", || {
        push_line(&status(&bus), "heartbeat").filter(|l| queued(l) >= 4)
    });
    assert!(line.contains("failed: "), "{line}");
    assert!(sample(&v, "vigil_push_total{push=\"heartbeat\",result=\"error\"}").unwrap() >= 1.0);

    // The endpoint comes back on the same port.
    let rec = Recorder::on(TcpListener::bind(("127.0.0.1", port)).unwrap());
    let reqs = wait_for(Duration::from_secs(20), "the queue and then a beat", || {
        let r = rec.reqs();
        r.iter().any(|q| q.json()["kind"] == "beat").then_some(r)
    });
    let docs: Vec<Value> = reqs.iter().map(Recorded::json).collect();
    let first_beat = docs.iter().position(|d| d["kind"] == "beat").unwrap();
    let changes: Vec<&Value> = docs.iter().filter(|d| d["kind"] == "change").collect();
    assert!(
        docs[..first_beat].iter().all(|d| d["kind"] == "change"),
        "the queue is delivered before the live beat: {docs:#?}"
    );
    let statuses: Vec<&str> = changes
        .iter()
        .map(|d| d["status"].as_str().unwrap())
        .collect();
    assert!(
        statuses.ends_with(&["ok", "degraded", "critical", "ok"]),
        "in order: {statuses:?}"
    );
    let seqs: Vec<u64> = changes.iter().map(|d| d["seq"].as_u64().unwrap()).collect();
    assert!(seqs.windows(2).all(|w| w[0] < w[1]), "{seqs:?}");
    let crit = changes.iter().find(|d| d["status"] == "critical").unwrap();
    assert_eq!(crit["failing"][0]["name"], "mem");
    assert_eq!(crit["failing"][0]["status"], "crit");
    assert_eq!(crit["open_incidents"], 0);
    // Every request: the token, JSON, and who sends (the machine id only hashed).
    let machine_id = std::fs::read_to_string("/etc/machine-id").ok();
    for (q, d) in reqs.iter().zip(&docs) {
        assert_eq!((q.method.as_str(), q.target.as_str()), ("POST", "/hb"));
        assert_eq!(q.header("authorization"), Some("Bearer s3cret"));
        assert_eq!(q.header("content-type"), Some("application/json"));
        assert_eq!(d["version"], env!("CARGO_PKG_VERSION"));
        assert_eq!(d["hostname"], hostname());
        for key in ["status", "uptime", "timestamp", "failing", "summary"] {
            assert!(d.get(key).is_some(), "{key} in {d}");
        }
        match &machine_id {
            Some(id) if !id.trim().is_empty() => {
                assert_eq!(d["machine"], vigil::sys::identity::machine_hash_of(id));
                assert!(
                    !q.body.contains(id.trim()),
                    "the raw machine id is never sent"
                );
            }
            _ => assert_eq!(d["machine"], Value::Null),
        }
    }
    // Delivered: the status says so, and nothing waits.
    let line = wait_for(Duration::from_secs(10), "ok and 0 queued", || {
        push_line(&status(&bus), "heartbeat").filter(|l| l.contains("): ok at") && queued(l) == 0)
    });
    assert!(line.contains(", 0 queued"), "{line}");
    assert!(sample(&v, "vigil_push_total{push=\"heartbeat\",result=\"ok\"}").unwrap() >= 5.0);
    // vigild's byte count is what went over the wire: the sum of what the recorder read (a
    // prefix of it: the recorder may have read the next request already).
    let counted = sample(&v, "vigil_push_sent_bytes_total{push=\"heartbeat\"}").unwrap() as usize;
    let mut sum = 0;
    let prefix = rec.reqs().iter().any(|q| {
        sum += q.bytes;
        sum == counted
    });
    assert!(
        prefix,
        "{counted} bytes counted, none of the recorder's sums"
    );
    assert!(sample(&v, "vigil_push_queued{push=\"heartbeat\"}") == Some(0.0));
}

#[test]
fn a_hanging_heartbeat_endpoint_delays_nothing_else_and_the_sensor_push_goes_on() {
    let hang = Hanging::start();
    let rec = Recorder::start();
    let creds = tempfile::tempdir().unwrap();
    std::fs::write(creds.path().join("metrics-token"), "m-key").unwrap();
    let mut b = VigildBuilder::new().env("CREDENTIALS_DIRECTORY", creds.path().to_str().unwrap());
    b.settings = format!(
        "[heartbeat.push]\nurl = \"http://127.0.0.1:{}/hb\"\nevery = \"1s\"\ntimeout = \"1s\"\n\n\
         [push.metrics]\nurl = \"http://127.0.0.1:{}/api/monitoring/metrics\"\nevery = \"1s\"\ntimeout = \"1s\"\ntoken_credential = \"metrics-token\"\n",
        hang.port, rec.port
    );
    let v = b.start();
    // CPU from /proc/stat and an eMMC's wear figures in sysfs, in the prepared trees.
    write_atomic(
        &v.proc_dir().join("stat"),
        "cpu  400 0 100 1400 100 0 0 0 0 0\n",
    );
    let emmc = v.dir.path().join("sys/block/mmcblk0/device");
    std::fs::create_dir_all(&emmc).unwrap();
    std::fs::write(emmc.join("pre_eol_info"), "0x01\n").unwrap();
    std::fs::write(emmc.join("life_time"), "0x02 0x01\n").unwrap();
    v.wait_status("ok");

    // While the heartbeat endpoint hangs: the HTTP heartbeat answers at once, a state change
    // shows at once, and the sensor push keeps its pace.
    let start = Instant::now();
    let before = rec.reqs().len();
    let mut slowest = Duration::ZERO;
    let mut changed_at = None;
    let mut critical_after = None;
    while start.elapsed() < Duration::from_secs(6) {
        let t = Instant::now();
        let hb = v.heartbeat();
        slowest = slowest.max(t.elapsed());
        match changed_at {
            None if start.elapsed() > Duration::from_secs(2) => {
                v.set_available_kb(50_000);
                changed_at = Some(Instant::now());
            }
            Some(at) if critical_after.is_none() && hb["status"] == "critical" => {
                critical_after = Some(at.elapsed());
            }
            _ => {}
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    // The change shows in the heartbeat within the window (about 4 s after it was made),
    // however long the push to the hanging endpoint is stuck.
    assert!(
        critical_after.is_some(),
        "the heartbeat never said critical in the 4 s after available memory fell"
    );
    assert!(
        slowest < Duration::from_millis(500),
        "heartbeat took {slowest:?}"
    );
    let sensor = rec.reqs();
    assert!(
        sensor.len() - before >= 4,
        "sensor pushes in 6 s: {}",
        sensor.len() - before
    );
    assert!(
        !hang.accepted.lock().unwrap().is_empty(),
        "the hanging server was tried"
    );
    let errors = sample(&v, "vigil_push_total{push=\"heartbeat\",result=\"error\"}").unwrap();
    assert!(errors >= 2.0, "{errors}");
    assert_eq!(
        sample(&v, "vigil_push_total{push=\"heartbeat\",result=\"ok\"}"),
        Some(0.0)
    );
    assert!(sample(&v, "vigil_push_queued{push=\"heartbeat\"}").unwrap() >= 1.0);
    assert!(sample(&v, "vigil_push_total{push=\"metrics\",result=\"ok\"}").unwrap() >= 4.0);

    // The sensor document: who, when, CPU, memory, disk, every check, storage health.
    let last = rec.reqs().last().cloned().unwrap();
    assert_eq!(last.method, "POST");
    assert_eq!(last.target, "/api/monitoring/metrics");
    assert_eq!(last.header("authorization"), Some("Bearer m-key"));
    let d = last.json();
    assert_eq!(d["hostname"], hostname());
    assert!(d["timestamp"].as_str().unwrap().ends_with('Z'));
    assert!(d["seq"].as_u64().is_some());
    assert!(d["cpu"]["used_percent"].as_f64().is_some(), "{d}");
    assert_eq!(d["memory"]["total_bytes"], 1_000_000u64 * 1024);
    assert_eq!(d["memory"]["used_percent"], 95.0);
    assert!(d["disk"]["root"]["size_bytes"].as_u64().unwrap() > 0);
    assert_eq!(d["checks"][0]["name"], "mem");
    assert_eq!(d["checks"][0]["status"], "crit");
    assert_eq!(d["status"], "critical");
    assert_eq!(d["smart"][0]["device"], "mmcblk0");
    assert_eq!(d["smart"][0]["status"], "ok");
    assert_eq!(
        d["smart"][0]["life_used_percent_max"],
        serde_json::json!([20, 10])
    );
}

#[test]
fn healthchecks_gets_its_success_and_fail_urls_with_the_document() {
    let rec = Recorder::start();
    let mut b = VigildBuilder::new();
    b.settings = format!(
        "[heartbeat.push]\nurl = \"http://127.0.0.1:{}/ping/5f3a-uuid\"\nformat = \"healthchecks\"\nevery = \"1s\"\n",
        rec.port
    );
    let v = b.start();
    v.wait_status("ok");
    wait_for(Duration::from_secs(10), "a success ping", || {
        rec.reqs()
            .iter()
            .any(|q| q.target == "/ping/5f3a-uuid")
            .then_some(())
    });
    v.set_available_kb(50_000);
    v.wait_status("critical");
    let fail = wait_for(Duration::from_secs(10), "a /fail ping", || {
        rec.reqs()
            .into_iter()
            .find(|q| q.target == "/ping/5f3a-uuid/fail")
    });
    assert_eq!(fail.method, "POST");
    assert!(fail.body.len() <= 10_000);
    let d = fail.json();
    assert_eq!(d["status"], "critical");
    assert_eq!(d["failing"][0]["name"], "mem");
    let n = rec.reqs().len();
    v.set_available_kb(800_000);
    v.wait_status("ok");
    let back = wait_for(Duration::from_secs(10), "a success ping again", || {
        rec.reqs()[n..]
            .iter()
            .find(|q| q.target == "/ping/5f3a-uuid" && q.json()["status"] == "ok")
            .cloned()
    });
    assert_eq!(
        back.header("authorization"),
        None,
        "no token configured, none sent"
    );
}

#[test]
fn uptime_kuma_gets_status_msg_and_ping_in_the_query() {
    let rec = Recorder::start();
    let mut b = VigildBuilder::new();
    b.settings = format!(
        "[heartbeat.push]\nurl = \"http://127.0.0.1:{}/api/push/Tk9?status=up&msg=OK&ping=\"\nformat = \"uptime-kuma\"\nevery = \"1s\"\n",
        rec.port
    );
    let v = b.start();
    v.wait_status("ok");
    let up = wait_for(Duration::from_secs(10), "two up pushes", || {
        let r: Vec<Recorded> = rec
            .reqs()
            .into_iter()
            .filter(|q| q.target.contains("status=up"))
            .collect();
        (r.len() >= 2).then(|| r[1].clone())
    });
    assert_eq!(up.method, "GET");
    assert!(up.body.is_empty());
    assert!(
        up.target
            .starts_with("/api/push/Tk9?status=up&msg=ok+%C2%B7+1+check"),
        "{}",
        up.target
    );
    let ping = up.target.rsplit_once("&ping=").unwrap().1;
    assert!(
        ping.parse::<u64>().is_ok(),
        "the last round trip in ms: {}",
        up.target
    );
    assert_eq!(
        up.target.matches("status=").count(),
        1,
        "the URL's own status is replaced"
    );
    v.set_available_kb(50_000);
    v.wait_status("critical");
    let down = wait_for(Duration::from_secs(10), "a down push", || {
        rec.reqs()
            .into_iter()
            .find(|q| q.target.contains("status=down"))
    });
    assert!(down.target.contains("msg=critical"), "{}", down.target);
    assert!(down.target.contains("crit%3A+mem"), "{}", down.target);
}
