//! vigild with a GPU check forced onto NVML, where NVML is no help: the library absent (no
//! NVIDIA driver on this machine), and a library that is there but fails every call — a
//! small C stand-in for libnvidia-ml.so.1, built here with the system's C compiler and
//! found by the real loader through LD_LIBRARY_PATH. Once with its `nvmlInit_v2` failing,
//! once with init succeeding and every later call failing (a driver whose GPU is gone).
//! The GPU check stays unknown and says why, the other check goes on, the heartbeat answers
//! throughout and the store keeps every row.

mod common;
mod faults_support;
mod reliability;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use common::*;

/// Every entry point vigild's NVML binding may call, each answering
/// NVML_ERROR_UNKNOWN (999) and noting its name in $VIGIL_FAKE_NVML_LOG; `nvmlInit*`
/// succeed only when VIGIL_FAKE_NVML_INIT_OK is set.
const FAKE_NVML: &str = r#"
#include <stdio.h>
#include <stdlib.h>
static int note(const char *f) {
    const char *p = getenv("VIGIL_FAKE_NVML_LOG");
    if (p) { FILE *l = fopen(p, "a"); if (l) { fprintf(l, "%s\n", f); fclose(l); } }
    return 999;
}
static int init(const char *f) { int r = note(f); return getenv("VIGIL_FAKE_NVML_INIT_OK") ? 0 : r; }
int nvmlInit_v2(void) { return init("nvmlInit_v2"); }
int nvmlInit(void) { return init("nvmlInit"); }
int nvmlInitWithFlags(void) { return init("nvmlInitWithFlags"); }
const char *nvmlErrorString(int r) { (void)r; return "Unknown Error"; }
#define FAIL(name) int name(void) { return note(#name); }
FAIL(nvmlShutdown)
FAIL(nvmlDeviceGetCount_v2)
FAIL(nvmlDeviceGetCount)
FAIL(nvmlDeviceGetHandleByIndex_v2)
FAIL(nvmlDeviceGetHandleByIndex)
FAIL(nvmlDeviceGetName)
FAIL(nvmlDeviceGetMemoryInfo)
FAIL(nvmlDeviceGetMemoryInfo_v2)
FAIL(nvmlDeviceGetUtilizationRates)
FAIL(nvmlDeviceGetTemperature)
FAIL(nvmlDeviceGetPowerUsage)
FAIL(nvmlDeviceGetClockInfo)
FAIL(nvmlDeviceGetTotalEccErrors)
FAIL(nvmlDeviceGetCurrentClocksThrottleReasons)
FAIL(nvmlDeviceGetCurrentClocksEventReasons)
FAIL(nvmlDeviceGetSupportedEventTypes)
FAIL(nvmlEventSetCreate)
FAIL(nvmlDeviceRegisterEvents)
FAIL(nvmlEventSetWait_v2)
FAIL(nvmlEventSetWait)
FAIL(nvmlEventSetFree)
FAIL(nvmlSystemGetDriverVersion)
FAIL(nvmlSystemGetNVMLVersion)
FAIL(nvmlSystemGetCudaDriverVersion)
FAIL(nvmlSystemGetCudaDriverVersion_v2)
"#;

/// Builds the stand-in as DIR/libnvidia-ml.so.1; returns DIR.
fn build_fake_nvml(dir: &Path) -> PathBuf {
    let lib = dir.join("lib");
    std::fs::create_dir_all(&lib).unwrap();
    let src = dir.join("fake_nvml.c");
    std::fs::write(&src, FAKE_NVML).unwrap();
    let out = Command::new("cc")
        .args(["-shared", "-fPIC", "-O1", "-o"])
        .arg(lib.join("libnvidia-ml.so.1"))
        .arg(&src)
        .output()
        .expect("a C compiler (cc) — Rust links with it, so it is there");
    assert!(
        out.status.success(),
        "cc: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    lib
}

const POLICY: &str = r#"
[[check]]
name = "gpu"
probe = "gpu"
backend = "nvml"
every = "100ms"
crit = "temperature > 90"

[[check]]
name = "mem"
probe = "memory"
every = "100ms"
crit = "available < 10%"

[[rule]]
name = "note"
on = "mem"
for = "0s"
cooldown = "0s"
do = ["notify"]
"#;

/// What one vigild went through.
struct Seen {
    polled: faults_support::Polled,
    /// The reason the GPU check gave for being unknown.
    why: String,
    /// How often the GPU check left unknown (must be never).
    gpu_transitions: usize,
    mem_transitions: usize,
    lost: usize,
    kept: String,
    seconds: u64,
    log: String,
}

/// A vigild with `env`, its memory check turned crit and ok 3 times over 3 s of GPU
/// readings every 100 ms, the heartbeat polled all the while.
fn watch(env: &[(&str, &str)]) -> Seen {
    let mut b = VigildBuilder::new().policy(POLICY);
    for (k, val) in env {
        b = b.env(k, val);
    }
    let mut v = b.start();
    let db = v.state_dir().join("vigil.db");
    let polled = faults_support::HeartbeatPoller::start(v.port);
    let started = Instant::now();
    wait_for(Duration::from_secs(10), "the memory check ok", || {
        v.log().contains("check mem unknown → ok").then_some(())
    });
    // Whatever the overall status is with one check unknown: it comes back to that.
    let calm = v.heartbeat()["status"].as_str().unwrap().to_string();
    let why = wait_for(Duration::from_secs(10), "the gpu check unknown", || {
        v.log()
            .lines()
            .find_map(|l| l.split_once("check gpu is unknown: ").map(|x| x.1))
            // The log's structured fields follow the message.
            .map(|m| m.split(" vigil_event=").next().unwrap_or(m).to_string())
    });
    let before = faults_support::rows(&db);
    for _ in 0..3 {
        v.set_available_kb(50_000);
        v.wait_status("critical");
        std::thread::sleep(Duration::from_millis(300));
        v.set_available_kb(800_000);
        v.wait_status(&calm);
        std::thread::sleep(Duration::from_millis(300));
    }
    let want = before.transitions.len() + 6;
    wait_for(Duration::from_secs(10), "6 more transitions stored", || {
        (faults_support::rows(&db).transitions.len() >= want).then_some(())
    });
    let polled = polled.finish();
    let seconds = started.elapsed().as_secs();
    v.stop();
    let after = faults_support::rows(&db);
    let gpu_transitions = transitions_of(&after, "gpu");
    Seen {
        polled,
        why,
        gpu_transitions,
        mem_transitions: transitions_of(&after, "mem"),
        lost: before.lost_in(&after),
        kept: faults_support::kept_figure(&before, &after),
        seconds,
        log: v.log(),
    }
}

/// How many stored transitions are of `check`.
fn transitions_of(rows: &faults_support::Rows, check: &str) -> usize {
    let key = format!("Text(\"{check}\")|");
    rows.transitions
        .values()
        .filter(|r| r.starts_with(&key))
        .count()
}

#[test]
fn nvml_absent_leaves_the_gpu_check_unknown_and_nothing_else_changes() {
    let s = watch(&[]);
    let reason_ok = s
        .why
        .starts_with("NVML: cannot load libnvidia-ml.so.1 (no NVIDIA driver installed?)");
    let pass = reason_ok
        && s.gpu_transitions == 0
        && s.mem_transitions == 7
        && s.polled.all_answered()
        && s.lost == 0;
    reliability::record(
        "nvml_absent_leaves_the_gpu_check_unknown_and_nothing_else_changes",
        "vigild with a GPU check forced to NVML (every 100 ms) on this machine, which has no \
         libnvidia-ml.so.1; a memory check flapping 3 times meanwhile",
        &format!(
            "gpu unknown throughout {} s ({:?}, {} transitions); mem {}/7 transitions stored; \
             {}; {}",
            s.seconds,
            s.why
                .split(": libnvidia-ml.so.1: ")
                .next()
                .unwrap_or_default(),
            s.gpu_transitions,
            s.mem_transitions,
            s.polled.figure(),
            s.kept
        ),
        pass,
    );
    assert!(reason_ok, "{}", s.why);
    assert_eq!(s.gpu_transitions, 0, "{}", s.log);
    assert_eq!(s.mem_transitions, 7, "{}", s.log);
    assert!(s.polled.all_answered(), "{:?}", s.polled);
    assert_eq!(s.lost, 0);
}

#[test]
fn nvml_present_but_failing_every_call_leaves_the_gpu_check_unknown() {
    let dir = tempfile::tempdir().unwrap();
    let lib = build_fake_nvml(dir.path());
    let lib = lib.to_str().unwrap();
    let mut figures = Vec::new();
    let mut pass = true;
    let mut failures = Vec::new();
    for (case, init_ok) in [
        ("init fails", false),
        ("init ok, then every call fails", true),
    ] {
        let calls = dir.path().join(format!("calls-{init_ok}"));
        let mut env = vec![
            ("LD_LIBRARY_PATH", lib),
            ("VIGIL_FAKE_NVML_LOG", calls.to_str().unwrap()),
        ];
        if init_ok {
            env.push(("VIGIL_FAKE_NVML_INIT_OK", "1"));
        }
        let s = watch(&env);
        let calls = std::fs::read_to_string(&calls).unwrap_or_default();
        let n_calls = calls.lines().count();
        let inits = calls.lines().filter(|l| l.starts_with("nvmlInit")).count();
        // The real library was loaded and asked (not "cannot load"), and its failure is
        // the reason given.
        let loaded = n_calls > 0 && s.why.starts_with("NVML: ") && !s.why.contains("cannot load");
        // A failed init is tried again at each reading; a successful one is kept.
        let inits_ok = if init_ok { inits == 1 } else { inits >= 10 };
        let ok = loaded
            && inits_ok
            && s.gpu_transitions == 0
            && s.mem_transitions == 7
            && s.polled.all_answered()
            && s.lost == 0;
        if !ok {
            failures.push(format!(
                "{case}: why {:?}, {n_calls} calls ({inits} inits), gpu transitions {}, mem {}, \
                 {:?}, lost {}\n{}",
                s.why, s.gpu_transitions, s.mem_transitions, s.polled, s.lost, s.log
            ));
        }
        pass &= ok;
        figures.push(format!(
            "{case}: {n_calls} calls ({inits} inits) all failed, gpu unknown throughout ({:?}, \
             {} transitions), mem {}/7 stored, {}, {}",
            s.why,
            s.gpu_transitions,
            s.mem_transitions,
            s.polled.figure(),
            s.kept
        ));
    }
    reliability::record(
        "nvml_present_but_failing_every_call_leaves_the_gpu_check_unknown",
        "a stand-in libnvidia-ml.so.1 whose every call answers NVML_ERROR_UNKNOWN, found \
         through LD_LIBRARY_PATH by a vigild with a GPU check forced to NVML (every 100 ms) \
         and a memory check flapping 3 times; once with init failing, once with init ok",
        &figures.join("; "),
        pass,
    );
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}
