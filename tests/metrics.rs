//! `GET /metrics` against the real tools: `promtool check metrics` on what a running vigild
//! serves, a real Prometheus server (Debian's `prometheus`) scraping vigild and answering
//! PromQL for a check's status, and `promtool check rules` / `promtool test rules` on the
//! shipped alerting rules. The Grafana dashboard and the rules name only metrics vigild
//! exports. scripts/test.sh installs `prometheus`; without it these fail.

mod common;

use std::collections::BTreeSet;
use std::io::Write;
use std::process::{Command, Stdio};
use std::time::Duration;

use common::*;
use serde_json::Value;

/// A memory check that a test can drive, the root disk, and a rule that acts (observed).
const POLICY: &str = r#"
[[check]]
name = "mem"
probe = "memory"
every = "100ms"
warn = "available < 20%"
crit = "available < 10%"

[[check]]
name = "root"
probe = "disk"
path = "/"
every = "1s"

[[rule]]
name = "mem-crit"
on = "mem"
when = "crit"
for = "0s"
do = ["notify"]
mode = "observe"
cooldown = "1s"
limit = "1 per 1h"
"#;

fn start() -> Vigild {
    let mut b = VigildBuilder::new().policy(POLICY);
    // A push to a port nobody listens on: its failures are metrics too.
    b.settings = format!(
        "[heartbeat.push]\nurl = \"http://127.0.0.1:{}/hb\"\nevery = \"1s\"\ntimeout = \"1s\"\n",
        free_port()
    );
    b.start()
}

fn metrics(v: &Vigild) -> String {
    let (code, head, body) = v.http("GET", "/metrics");
    assert_eq!(code, 200);
    assert!(
        head.to_ascii_lowercase()
            .contains("content-type: text/plain; version=0.0.4; charset=utf-8"),
        "{head}"
    );
    body
}

fn promtool(args: &[&str], stdin: Option<&str>) -> (bool, String) {
    let mut child = Command::new("promtool")
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("promtool must be installed (Debian package prometheus; scripts/test.sh does it)");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(stdin.unwrap_or("").as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

/// The value of one sample line (`series value`).
fn sample(text: &str, series: &str) -> Option<f64> {
    text.lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
}

#[test]
fn promtool_passes_the_metrics_text_of_a_running_vigild() {
    let v = start();
    v.wait_status("ok");
    v.set_available_kb(50_000);
    v.wait_status("critical");
    // The rule acts (observed) and the push fails at least once.
    let text = wait_for(Duration::from_secs(15), "an action and a push", || {
        let t = metrics(&v);
        let failed = sample(&t, "vigil_push_total{push=\"heartbeat\",result=\"error\"}");
        (t.contains("vigil_actions_total{") && failed.is_some_and(|n| n >= 1.0)).then_some(t)
    });
    let (ok, out) = promtool(&["check", "metrics"], Some(&text));
    assert!(ok, "promtool check metrics:\n{out}\n{text}");
    assert!(out.trim().is_empty(), "no lint findings: {out}");
    let version = format!(
        "vigil_build_info{{version=\"{}\"}}",
        env!("CARGO_PKG_VERSION")
    );
    assert_eq!(sample(&text, &version), Some(1.0));
    assert_eq!(sample(&text, "vigil_status"), Some(2.0));
    assert_eq!(
        sample(&text, "vigil_check_status{check=\"mem\",probe=\"memory\"}"),
        Some(2.0)
    );
    assert_eq!(sample(&text, "vigil_checks{status=\"crit\"}"), Some(1.0));
    assert_eq!(
        sample(&text, "vigil_memory_available_ratio{check=\"mem\"}"),
        Some(0.05)
    );
    assert_eq!(
        sample(&text, "vigil_memory_total_bytes{check=\"mem\"}"),
        Some(1_024_000_000.0)
    );
    let used = sample(&text, "vigil_disk_used_ratio{check=\"root\"}").unwrap();
    assert!((0.0..=1.0).contains(&used), "{used}");
    assert!(sample(&text, "vigil_disk_size_bytes{check=\"root\"}").unwrap() > 0.0);
    assert_eq!(
        sample(
            &text,
            "vigil_actions_total{rule=\"mem-crit\",action=\"notify\",result=\"observed\"}"
        ),
        Some(1.0)
    );
    let open: f64 = ["open", "acting", "exhausted"]
        .iter()
        .map(|s| sample(&text, &format!("vigil_incidents_open{{state=\"{s}\"}}")).unwrap())
        .sum();
    assert_eq!(open, 1.0);
    assert_eq!(
        sample(&text, "vigil_update_state{state=\"idle\"}"),
        Some(1.0)
    );
    assert!(
        sample(
            &text,
            "vigil_push_total{push=\"heartbeat\",result=\"error\"}"
        )
        .unwrap()
            >= 1.0
    );
    for family in [
        "# TYPE vigil_actions_total counter",
        "# TYPE vigil_push_total counter",
        "# TYPE vigil_check_status gauge",
        "# TYPE vigil_memory_oom_kills_total counter",
        "# TYPE vigil_memory_psi_memory_some_avg10_ratio gauge",
        "# TYPE vigil_disk_time_to_full_seconds gauge",
    ] {
        assert!(text.contains(family), "{family}");
    }
    // Nothing but GET and HEAD is allowed.
    let (code, _, _) = v.http("POST", "/metrics");
    assert_eq!(code, 405);
}

/// A Prometheus server started here scrapes vigild every second; PromQL sees the check
/// go from ok (0) to crit (2).
#[test]
fn a_real_prometheus_scrapes_vigild_and_answers_promql() {
    let v = start();
    v.wait_status("ok");
    let dir = tempfile::tempdir().unwrap();
    let web = free_port();
    let conf = dir.path().join("prometheus.yml");
    std::fs::write(
        &conf,
        format!(
            "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\nscrape_configs:\n  - job_name: vigil\n    static_configs:\n      - targets: ['127.0.0.1:{}']\n",
            v.port
        ),
    )
    .unwrap();
    let mut prom = Command::new("prometheus")
        .arg(format!("--config.file={}", conf.display()))
        .arg(format!(
            "--storage.tsdb.path={}",
            dir.path().join("data").display()
        ))
        .arg(format!("--web.listen-address=127.0.0.1:{web}"))
        .stdout(Stdio::null())
        .stderr(Stdio::from(
            std::fs::File::create(dir.path().join("prom.log")).unwrap(),
        ))
        .spawn()
        .expect(
            "prometheus must be installed (Debian package prometheus; scripts/test.sh does it)",
        );
    let query = |q: &str| -> Option<Value> {
        let out = Command::new("curl")
            .args(["-sS", "--max-time", "5", "--get", "--data-urlencode"])
            .arg(format!("query={q}"))
            .arg(format!("http://127.0.0.1:{web}/api/v1/query"))
            .output()
            .ok()?;
        let v: Value = serde_json::from_slice(&out.stdout).ok()?;
        (v["status"] == "success").then(|| v["data"]["result"].clone())
    };
    let value = |q: &str| -> Option<String> {
        let r = query(q)?;
        Some(r.get(0)?["value"][1].as_str()?.to_string())
    };
    let log = || std::fs::read_to_string(dir.path().join("prom.log")).unwrap_or_default();
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        wait_for(
            Duration::from_secs(60),
            "Prometheus to scrape vigild",
            || (value("up{job=\"vigil\"}").as_deref() == Some("1")).then_some(()),
        );
        wait_for(Duration::from_secs(30), "the check ok in PromQL", || {
            (value("vigil_check_status{check=\"mem\"}").as_deref() == Some("0")).then_some(())
        });
        v.set_available_kb(50_000);
        v.wait_status("critical");
        wait_for(Duration::from_secs(30), "the check crit in PromQL", || {
            (value("vigil_check_status{job=\"vigil\",check=\"mem\",probe=\"memory\"} == 2")
                .as_deref()
                == Some("2"))
            .then_some(())
        });
        let r = query("vigil_build_info").unwrap();
        assert_eq!(r[0]["metric"]["version"], env!("CARGO_PKG_VERSION"));
        assert_eq!(r[0]["metric"]["instance"], format!("127.0.0.1:{}", v.port));
    }));
    // Stop only the server this test started.
    kill(prom.id(), SIGTERM);
    let _ = prom.wait();
    if let Err(e) = result {
        eprintln!("prometheus log:\n{}", log());
        std::panic::resume_unwind(e);
    }
}

#[test]
fn promtool_checks_and_tests_the_alerting_rules() {
    let (ok, out) = promtool(
        &["check", "rules", "packaging/prometheus/vigil-alerts.yml"],
        None,
    );
    assert!(ok, "{out}");
    assert!(out.contains("SUCCESS: 6 rules found"), "{out}");
    let (ok, out) = promtool(
        &[
            "test",
            "rules",
            "packaging/prometheus/vigil-alerts.test.yml",
        ],
        None,
    );
    assert!(ok, "{out}");
    assert!(out.contains("SUCCESS"), "{out}");
}

/// Every `vigil_…` name that the rules, their tests and the dashboard use is one vigild
/// exports.
#[test]
fn the_rules_and_the_dashboard_name_only_exported_metrics() {
    let mut exported: BTreeSet<String> = [
        "build_info",
        "start_time_seconds",
        "status",
        "maintenance",
        "checks",
        "check_status",
        "incidents_open",
        "actions_total",
        "update_state",
        "store_records_waiting",
        "store_records_dropped_total",
        "push_total",
        "push_sent_bytes_total",
        "push_queued",
        "push_dropped_total",
        "push_last_success_timestamp_seconds",
    ]
    .iter()
    .map(|n| format!("vigil_{n}"))
    .collect();
    for (_, fams) in vigil::surface::metrics::probe_families() {
        for f in fams {
            let total = if f.kind == vigil::surface::metrics::Kind::Counter {
                "_total"
            } else {
                ""
            };
            exported.insert(format!("vigil_{}{total}", f.name));
        }
    }
    let dash: Value = serde_json::from_str(
        &std::fs::read_to_string("packaging/prometheus/grafana-dashboard.json").unwrap(),
    )
    .expect("the dashboard is JSON");
    assert_eq!(dash["uid"], "vigil-fleet");
    let mut exprs = Vec::new();
    for p in dash["panels"].as_array().unwrap() {
        for t in p["targets"].as_array().unwrap() {
            exprs.push(t["expr"].as_str().unwrap().to_string());
        }
    }
    assert!(exprs.len() >= 15);
    exprs.push(std::fs::read_to_string("packaging/prometheus/vigil-alerts.yml").unwrap());
    let mut used = BTreeSet::new();
    for e in &exprs {
        let mut rest = e.as_str();
        while let Some(i) = rest.find("vigil_") {
            let name: String = rest[i..]
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                .collect();
            rest = &rest[i + name.len()..];
            used.insert(name);
        }
    }
    assert!(used.len() >= 15, "{used:?}");
    let unknown: Vec<&String> = used.difference(&exported).collect();
    assert!(unknown.is_empty(), "not exported: {unknown:?}");
}
