//! The `ollama` probe against a stand-in that speaks Ollama's HTTP API over real TCP, and
//! vigild watching it end to end: a hung Ollama is crit within the timeout and never
//! stalls anything else.

mod common;
mod faults_support;
mod ollama_standin;
mod reliability;

use std::time::{Duration, Instant};

use common::*;
use ollama_standin::{Mode, Standin, LLAMA, LLAMA_SIZE, QWEN, QWEN_SIZE};
use vigil::core::health::Status;
use vigil::probe::ollama::OllamaProbe;
use vigil::probe::{Probe, Reading};

const TIMEOUT: Duration = Duration::from_millis(300);

/// A second reading of a fresh probe, timed: the first builds its HTTP client.
async fn read_warm(url: &str, timeout: Duration) -> (Reading, Duration) {
    let mut p = OllamaProbe::new(url.to_string(), None, timeout);
    p.read().await;
    let start = Instant::now();
    let r = p.read().await;
    (r, start.elapsed())
}

async fn read(url: &str, model: Option<&str>, timeout: Duration) -> (Reading, Duration) {
    let mut p = OllamaProbe::new(url.to_string(), model.map(str::to_string), timeout);
    let start = Instant::now();
    let r = p.read().await;
    (r, start.elapsed())
}

/// A request to the stand-in as an operator's client would send it.
async fn post_generate(url: &str, body: serde_json::Value) -> serde_json::Value {
    reqwest::Client::new()
        .post(format!("{url}/api/generate"))
        .json(&body)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

#[tokio::test]
async fn healthy_reports_the_loaded_models_and_their_vram() {
    let s = Standin::start();
    s.load(LLAMA);
    s.load_with_vram(QWEN, 500_000_000);
    let (r, _) = read(&s.url(), None, TIMEOUT).await;
    let (status, detail, m) = value(r);
    assert_eq!(
        status, None,
        "a healthy Ollama leaves the status to thresholds"
    );
    assert_eq!(m["models_loaded"], 2.0);
    assert_eq!(m["vram_bytes"], (LLAMA_SIZE + 500_000_000) as f64);
    assert!(m["version_ms"] > 0.0 && m["version_ms"] < 300.0, "{m:?}");
    assert!(
        !m.contains_key("generate_ms"),
        "no generation without probe_model"
    );
    assert!(
        detail.starts_with(&format!("Ollama 0.5.7 at {}, 2 models loaded: ", s.url())),
        "{detail}"
    );
    assert!(detail.contains("llama3.2:3b 3.1 GiB in VRAM"), "{detail}");
    assert!(
        detail.contains("qwen2.5:0.5b 948.1 MiB (476.8 MiB in VRAM)"),
        "{detail}"
    );
    // Exactly the two documented GETs, nothing that could load or unload a model.
    let paths: Vec<_> = s.seen().into_iter().map(|x| (x.method, x.path)).collect();
    assert_eq!(
        paths,
        [
            ("GET".to_string(), "/api/version".to_string()),
            ("GET".into(), "/api/ps".into())
        ]
    );
}

#[tokio::test]
async fn metrics_follow_models_loaded_and_unloaded_through_the_api() {
    let s = Standin::start();
    let url = s.url();
    let (_, detail, m) = value(read(&url, None, TIMEOUT).await.0);
    assert_eq!((m["models_loaded"], m["vram_bytes"]), (0.0, 0.0));
    assert!(detail.ends_with("no model loaded"), "{detail}");

    // Load with an empty prompt, as Ollama's docs show.
    let a = post_generate(&url, serde_json::json!({"model": QWEN})).await;
    assert_eq!(a["done"], true);
    assert_eq!(a["response"], "");
    let (_, detail, m) = value(read(&url, None, TIMEOUT).await.0);
    assert_eq!(
        (m["models_loaded"], m["vram_bytes"]),
        (1.0, QWEN_SIZE as f64)
    );
    assert!(detail.contains("1 model loaded: qwen2.5:0.5b"), "{detail}");

    let a = post_generate(
        &url,
        serde_json::json!({"model": LLAMA, "prompt": "hi", "stream": false}),
    )
    .await;
    assert_eq!(
        (a["done"].clone(), a["model"].clone()),
        (true.into(), LLAMA.into())
    );
    let (_, _, m) = value(read(&url, None, TIMEOUT).await.0);
    assert_eq!(m["models_loaded"], 2.0);
    assert_eq!(m["vram_bytes"], (QWEN_SIZE + LLAMA_SIZE) as f64);

    // Unload with keep_alive 0: Ollama answers done_reason "unload".
    let a = post_generate(&url, serde_json::json!({"model": QWEN, "keep_alive": 0})).await;
    assert_eq!(a["done_reason"], "unload");
    assert_eq!(a["response"], "");
    assert_eq!(s.loaded(), vec![LLAMA.to_string()]);
    let (_, _, m) = value(read(&url, None, TIMEOUT).await.0);
    assert_eq!(
        (m["models_loaded"], m["vram_bytes"]),
        (1.0, LLAMA_SIZE as f64)
    );
    s.unload(LLAMA);
    let (_, _, m) = value(read(&url, None, TIMEOUT).await.0);
    assert_eq!((m["models_loaded"], m["vram_bytes"]), (0.0, 0.0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hung_ollama_is_crit_within_the_timeout_and_stalls_nothing_else() {
    let hung = Standin::start();
    hung.set_mode(Mode::Hang);
    let good = Standin::start();
    good.load(LLAMA);
    // Probes live on across readings, as in the daemon: the healthy one is warmed up.
    let mut healthy = OllamaProbe::new(good.url(), None, TIMEOUT);
    value(healthy.read().await);
    let t0 = Instant::now();
    let mut stuck = OllamaProbe::new(hung.url(), None, TIMEOUT);
    let hung_read = tokio::spawn(async move {
        let r = stuck.read().await;
        (r, t0.elapsed())
    });
    // While the hung one waits, another probe on a healthy Ollama answers, again and again.
    let mut good_done = Vec::new();
    for _ in 0..5 {
        let start = Instant::now();
        let (status, _, m) = value(healthy.read().await);
        let took = start.elapsed();
        assert_eq!((status, m["models_loaded"]), (None, 1.0));
        assert!(
            took < Duration::from_millis(100),
            "healthy read took {took:?}"
        );
        good_done.push(t0.elapsed());
    }
    let (r, took) = hung_read.await.unwrap();
    let finished = took;
    assert!(
        good_done.iter().all(|d| *d < finished),
        "the healthy reads finished while the hung one waited: {good_done:?} vs {finished:?}"
    );
    let (status, detail, m) = value(r);
    assert_eq!(status, Some(Status::Crit));
    assert_eq!(
        detail,
        format!(
            "Ollama at {} does not answer /api/version within 300ms",
            hung.url()
        )
    );
    assert!(m.is_empty(), "{m:?}");
    // Crit before the daemon's own bound (the timeout) would call it unknown, but not early.
    assert!(
        took >= Duration::from_millis(250) && took < TIMEOUT,
        "took {took:?}"
    );
    // It was the accept-and-never-answer case: the request reached the server.
    assert_eq!(hung.seen_at("/api/version").len(), 1);
}

#[tokio::test]
async fn failing_with_500_is_crit_with_ollamas_error() {
    let s = Standin::start();
    s.set_mode(Mode::Fail500);
    let (r, took) = read_warm(&s.url(), TIMEOUT).await;
    let (status, detail, _) = value(r);
    assert_eq!(status, Some(Status::Crit));
    assert_eq!(
        detail,
        format!(
            "Ollama at {} answered /api/version with 500 Internal Server Error: llama runner process has terminated: exit status 0xc0000409",
            s.url()
        )
    );
    assert!(took < Duration::from_millis(150), "{took:?}");
}

#[tokio::test]
async fn slow_beyond_the_timeout_is_crit_and_slow_within_it_is_ok() {
    let s = Standin::start();
    s.set_mode(Mode::Slow(Duration::from_millis(600)));
    let (r, took) = read(&s.url(), None, TIMEOUT).await;
    let (status, detail, _) = value(r);
    assert_eq!(status, Some(Status::Crit));
    assert!(
        detail.contains("does not answer /api/version within 300ms"),
        "{detail}"
    );
    assert!(took < TIMEOUT, "{took:?}");

    // 60 ms per request, two requests, a second to do it in: fine, and the time is measured.
    s.set_mode(Mode::Slow(Duration::from_millis(60)));
    let (r, _) = read(&s.url(), None, Duration::from_secs(1)).await;
    let (status, _, m) = value(r);
    assert_eq!(status, None);
    assert!(m["version_ms"] >= 60.0 && m["version_ms"] < 500.0, "{m:?}");
}

#[tokio::test]
async fn nothing_listening_is_crit_at_once() {
    let url = format!("http://127.0.0.1:{}", free_port());
    let (r, took) = read_warm(&url, TIMEOUT).await;
    let (status, detail, _) = value(r);
    assert_eq!(status, Some(Status::Crit));
    assert_eq!(
        detail,
        format!("Ollama at {url} does not answer /api/version: connection refused (nothing listens there)")
    );
    assert!(took < Duration::from_millis(100), "{took:?}");
}

#[tokio::test]
async fn a_generation_that_hangs_while_version_answers_is_crit() {
    let s = Standin::start();
    s.load(LLAMA);
    s.set_mode(Mode::GenerateHangs);
    let (r, took) = read(&s.url(), Some(LLAMA), TIMEOUT).await;
    let (status, detail, m) = value(r);
    assert_eq!(status, Some(Status::Crit));
    assert!(
        detail.starts_with(&format!(
            "Ollama at {} does not answer /api/generate within 300ms for a one-token generation with llama3.2:3b (it answers /api/version",
            s.url()
        )),
        "{detail}"
    );
    // What was learnt before the generation hung is still reported.
    assert_eq!(m["models_loaded"], 1.0);
    assert!(m.contains_key("version_ms"));
    assert!(!m.contains_key("generate_ms"));
    assert!(took < TIMEOUT, "{took:?}");
    assert_eq!(s.hanging(), 1, "the generate request is held open");

    // Healthy again: the token comes and its time is a metric.
    s.set_mode(Mode::Healthy);
    let (r, _) = read(&s.url(), Some(LLAMA), TIMEOUT).await;
    let (status, detail, m) = value(r);
    assert_eq!(status, None, "{detail}");
    assert!(m["generate_ms"] > 0.0 && m["generate_ms"] < 300.0, "{m:?}");
    assert!(
        detail.contains("llama3.2:3b generated a token in"),
        "{detail}"
    );
    // The request is the documented one-token, non-streaming generation.
    let gen = s.seen_at("/api/generate");
    let body = gen.last().unwrap().body.clone().unwrap();
    assert_eq!(
        body,
        serde_json::json!({"model": LLAMA, "prompt": "ok", "stream": false, "options": {"num_predict": 1}})
    );
    assert_eq!(gen.last().unwrap().method, "POST");
}

#[tokio::test]
async fn a_probe_model_that_was_never_pulled_is_crit_with_ollamas_reason() {
    let s = Standin::start();
    let (r, _) = read(&s.url(), Some("mistral:7b"), TIMEOUT).await;
    let (status, detail, _) = value(r);
    assert_eq!(status, Some(Status::Crit));
    assert!(
        detail.contains("answered /api/generate with 404 Not Found: model \"mistral:7b\" not found, try pulling it first"),
        "{detail}"
    );
}

#[tokio::test]
async fn something_that_is_not_ollama_is_crit() {
    // An HTTP server on the port that answers, but not with Ollama's API: the heartbeat of
    // a vigild is handy and real.
    let v = VigildBuilder::new().start();
    let url = format!("http://127.0.0.1:{}", v.port);
    let (r, _) = read(&url, None, Duration::from_secs(2)).await;
    let (status, detail, _) = value(r);
    assert_eq!(status, Some(Status::Crit));
    assert!(
        detail.contains("answered /api/version with 404 Not Found"),
        "{detail}"
    );
}

/// Waits until a line of vigild's log says all of `needles`; fails with the log.
fn wait_log(v: &Vigild, needles: &[&str]) {
    let start = Instant::now();
    while !v
        .log()
        .lines()
        .any(|l| needles.iter().all(|n| l.contains(n)))
    {
        if start.elapsed() > Duration::from_secs(5) {
            panic!("no line with {needles:?} in the log:\n{}", v.log());
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The heartbeat, timed.
fn timed_heartbeat(v: &Vigild) -> (serde_json::Value, Duration) {
    let start = Instant::now();
    let doc = v.heartbeat();
    (doc, start.elapsed())
}

/// A vigild whose ollama check (every 200 ms, timeout 300 ms) watches the stand-in, ok and
/// with its first transition stored; and its database.
fn watching(s: &Standin) -> (Vigild, std::path::PathBuf) {
    let policy = format!(
        r#"
[[check]]
name = "ollama"
probe = "ollama"
url = "{}"
every = "200ms"
timeout = "300ms"
crit = "models_loaded < 1"
"#,
        s.url()
    );
    let v = VigildBuilder::new().policy(&policy).start();
    v.wait_status("ok");
    let db = v.state_dir().join("vigil.db");
    wait_for(
        Duration::from_secs(10),
        "the first transition stored",
        || (!faults_support::rows(&db).transitions.is_empty()).then_some(()),
    );
    (v, db)
}

#[test]
fn vigild_turns_critical_while_ollama_hangs_and_its_heartbeat_stays_fast() {
    let s = Standin::start();
    s.load(LLAMA);
    let (v, db) = watching(&s);
    let before = faults_support::rows(&db);
    let polled = faults_support::HeartbeatPoller::start(v.port);
    let hung_at = Instant::now();

    s.set_mode(Mode::Hang);
    v.wait_status("critical");
    // (A threshold on a metric the hung server could not report adds a note before the
    // probe's own reason; the probe's reason is there.)
    wait_log(
        &v,
        &[
            "check ollama ok → crit: ",
            &format!(
                "Ollama at {} does not answer /api/version within 300ms",
                s.url()
            ),
        ],
    );
    // While Ollama hangs (every probe run holds a request open for 300 ms), the heartbeat
    // answers at once, again and again.
    let mut worst = Duration::ZERO;
    for _ in 0..20 {
        let (doc, took) = timed_heartbeat(&v);
        assert_eq!(doc["status"], "critical");
        worst = worst.max(took);
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(
        worst < Duration::from_millis(100),
        "slowest heartbeat {worst:?}"
    );
    let held = s.hanging();
    assert!(held >= 1, "requests are held by the hung stand-in");

    s.set_mode(Mode::Healthy);
    v.wait_status("ok");
    let hung_for = hung_at.elapsed();
    let polled = polled.finish();
    wait_for(Duration::from_secs(10), "ok → crit → ok stored", || {
        (faults_support::rows(&db).transitions.len() >= before.transitions.len() + 2).then_some(())
    });
    let after = faults_support::rows(&db);
    let lost = before.lost_in(&after);
    reliability::record(
        "vigild_turns_critical_while_ollama_hangs_and_its_heartbeat_stays_fast",
        "the Ollama stand-in accepting connections and never answering, under an ollama \
         check every 200 ms with a 300 ms timeout, then healthy again",
        &format!(
            "crit while hung ({held} requests held open), ok after, {} s in all; {}; {}",
            hung_for.as_secs(),
            polled.figure(),
            faults_support::kept_figure(&before, &after)
        ),
        polled.all_answered() && polled.max < Duration::from_millis(500) && lost == 0,
    );
    assert!(polled.all_answered(), "{polled:?}");
    assert!(polled.max < Duration::from_millis(500), "{polled:?}");
    assert_eq!(lost, 0);

    // A threshold on the probe's metrics works too: the model unloaded is crit.
    s.unload(LLAMA);
    v.wait_status("critical");
    wait_log(
        &v,
        &["check ollama ok → crit: models_loaded is 0 (models_loaded < 1); Ollama 0.5.7"],
    );
    s.load(LLAMA);
    v.wait_status("ok");
}

/// Ollama answering slowly: beyond the check's timeout (crit, and the probe gives up at the
/// timeout), then slow but within it (ok, its time measured); the heartbeat answers all
/// the while and the store keeps every row.
#[test]
fn vigild_stays_up_while_ollama_answers_slowly() {
    let s = Standin::start();
    s.load(LLAMA);
    let (v, db) = watching(&s);
    let before = faults_support::rows(&db);
    let polled = faults_support::HeartbeatPoller::start(v.port);
    let started = Instant::now();
    // 600 ms per request: twice the timeout.
    s.set_mode(Mode::Slow(Duration::from_millis(600)));
    v.wait_status("critical");
    wait_log(
        &v,
        &[
            "check ollama ok → crit: ",
            "does not answer /api/version within 300ms",
        ],
    );
    std::thread::sleep(Duration::from_secs(2));
    let crit_held = v.heartbeat()["status"] == "critical";
    // 60 ms per request (two per reading): slow, but within the timeout.
    s.set_mode(Mode::Slow(Duration::from_millis(60)));
    v.wait_status("ok");
    std::thread::sleep(Duration::from_secs(2));
    let ok_held = v.heartbeat()["status"] == "ok";
    let slow_for = started.elapsed();
    let polled = polled.finish();
    wait_for(Duration::from_secs(10), "ok → crit → ok stored", || {
        (faults_support::rows(&db).transitions.len() >= before.transitions.len() + 2).then_some(())
    });
    let after = faults_support::rows(&db);
    let lost = before.lost_in(&after);
    let flaps = after.transitions.len() - before.transitions.len();
    let pass = crit_held && ok_held && flaps == 2 && polled.all_answered() && lost == 0;
    reliability::record(
        "vigild_stays_up_while_ollama_answers_slowly",
        "the Ollama stand-in answering every request after 600 ms (timeout 300 ms), then \
         after 60 ms, under an ollama check every 200 ms",
        &format!(
            "crit at 600 ms, ok at 60 ms, {flaps} transitions in {} s (no flapping); {}; {}",
            slow_for.as_secs(),
            polled.figure(),
            faults_support::kept_figure(&before, &after)
        ),
        pass,
    );
    assert!(crit_held && ok_held, "{}", v.log());
    assert_eq!(flaps, 2, "{}", v.log());
    assert!(polled.all_answered(), "{polled:?}");
    assert_eq!(lost, 0);
}
