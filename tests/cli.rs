//! vigilctl against a running vigild on a real bus, and its exit statuses.

mod common;
mod fake_vigild;

use common::*;
use fake_vigild::FakeVigild;
use std::path::Path;
use std::time::{Duration, Instant};

#[test]
fn status_checks_and_version_talk_to_vigild() {
    let bus = Bus::start();
    let v = VigildBuilder::new().bus(&bus).start();
    v.wait_status("ok");
    let addr = bus.address.as_str();

    let (code, out, err) = vigilctl(&["--bus", addr, "status"]);
    assert_eq!(code, 0, "{err}");
    assert!(
        out.starts_with(&format!(
            "vigild {} — ok · 1 check · 0 incidents",
            env!("CARGO_PKG_VERSION")
        )),
        "{out}"
    );

    let (code, out, _) = vigilctl(&["--bus", addr, "--json", "status"]);
    assert_eq!(code, 0);
    let doc: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(doc["status"], "ok");
    assert_eq!(doc["checks"][0]["name"], "mem");
    assert_eq!(doc["checks"][0]["status"], "ok");

    let (code, out, _) = vigilctl(&["--bus", addr, "checks"]);
    assert_eq!(code, 0);
    let lines: Vec<&str> = out.lines().collect();
    assert!(
        lines[0].contains("CHECK") && lines[0].contains("STATUS") && lines[0].contains("DETAIL"),
        "{out}"
    );
    assert!(
        lines[1].trim_start().starts_with("mem")
            && lines[1].contains(" memory ")
            && lines[1].contains(" ok "),
        "{out}"
    );

    let (code, out, _) = vigilctl(&["--bus", addr, "--json", "checks"]);
    assert_eq!(code, 0);
    let checks: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(checks.as_array().unwrap().len(), 1);

    // A failing check shows up in status with its reason.
    v.set_available_kb(50_000);
    v.wait_status("critical");
    let (code, out, _) = vigilctl(&["--bus", addr, "status"]);
    assert_eq!(code, 0);
    assert!(
        out.contains("critical · 1 check · 0 incidents · crit: mem"),
        "{out}"
    );
    assert!(out.contains("available is 5"), "{out}");

    let (code, out, _) = vigilctl(&["--bus", addr, "version"]);
    assert_eq!(code, 0);
    let v_line = format!("vigilctl {0}\nvigild {0}", env!("CARGO_PKG_VERSION"));
    assert_eq!(out.trim(), v_line);
}

#[test]
fn vigild_not_running_is_one_line_and_exit_3() {
    let bus = Bus::start();
    for args in [
        vec!["--bus", bus.address.as_str(), "status"],
        vec!["checks"],
        vec!["--bus", "unix:path=/nonexistent/bus", "status"],
    ] {
        let (code, out, err) = vigilctl(&args);
        assert_eq!(code, 3, "{args:?}: {out} {err}");
        assert_eq!(err.lines().count(), 1, "{err}");
        assert!(err.starts_with("vigilctl: vigild is not"), "{err}");
    }
    let (code, out, _) = vigilctl(&["version"]);
    assert_eq!(code, 0);
    assert!(out.contains("vigild not running"), "{out}");
}

#[test]
fn policy_check_exit_codes_and_positions() {
    let dir = tempfile::tempdir().unwrap();
    let good = dir.path().join("good.toml");
    std::fs::write(&good, MEMORY_POLICY).unwrap();
    let (code, out, _) = vigilctl(&["policy", "check", good.to_str().unwrap()]);
    assert_eq!(code, 0);
    assert_eq!(out.trim(), "ok: 1 checks in 1 file(s)");

    let bad = dir.path().join("bad.toml");
    std::fs::write(
        &bad,
        "[[check]]\nname = \"m\"\nprobe = \"memory\"\nwarn = \"availble < 5%\"\nfrobnicate = 1\n",
    )
    .unwrap();
    let (code, _, err) = vigilctl(&["policy", "check", dir.path().to_str().unwrap()]);
    assert_eq!(code, 1);
    assert!(
        err.contains(&format!(
            "{}:4:9: probe `memory` has no metric `availble`",
            bad.display()
        )),
        "{err}"
    );
    assert!(
        err.contains(&format!("{}:5:1: unknown key `frobnicate`", bad.display())),
        "{err}"
    );

    let (code, out, _) = vigilctl(&["--json", "policy", "show", good.to_str().unwrap()]);
    assert_eq!(code, 0);
    let set: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(set["checks"][0]["name"], "mem");
    assert_eq!(set["checks"][0]["probe"], "memory");
    assert_eq!(set["checks"][0]["warn"][0], "available < 20%");

    let (code, _, _) = vigilctl(&["frobnicate"]);
    assert_eq!(code, 2, "usage errors exit 2");
}

#[test]
fn the_shipped_policies_pass_policy_check() {
    let (code, out, err) = vigilctl(&[
        "policy",
        "check",
        "--config",
        "packaging/vigil.toml",
        "policies",
    ]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.starts_with("ok: "), "{out}");
}

const SIGCONT: i32 = 18;
const SIGSTOP: i32 = 19;

/// A vigild that takes no call (SIGSTOPped) makes vigilctl give up within its call timeout
/// and exit 3 saying so, instead of hanging.
#[test]
fn a_stopped_vigild_is_exit_3_within_the_call_timeout() {
    let bus = Bus::start();
    let v = VigildBuilder::new().bus(&bus).start();
    v.wait_dbus_status(&bus, "ok");
    kill(v.pid(), SIGSTOP);
    let started = std::time::Instant::now();
    let (code, out, err) = vigilctl(&["--bus", bus.address.as_str(), "status"]);
    let took = started.elapsed();
    kill(v.pid(), SIGCONT);
    assert_eq!(code, 3, "{out}{err}");
    assert_eq!(
        err.trim(),
        "vigilctl: vigild does not answer on the bus (it may be stopped or stuck): \
         GetStatus gave no reply within 5 s"
    );
    assert!(took < Duration::from_secs(10), "took {took:?}");
    // Awake again, it answers.
    let (code, _, err) = vigilctl(&["--bus", bus.address.as_str(), "status"]);
    assert_eq!(code, 0, "{err}");
}

/// A state directory whose database holds the daemon's schema and `rows` of
/// `(id, opened_us, closed_us)` as resolved incidents of rule `r` on check `mem`, each with
/// one action started at its opening.
fn state_with_incidents(rows: &[(i64, i64, Option<i64>)]) -> tempfile::TempDir {
    let state = tempfile::tempdir().unwrap();
    let mut b = VigildBuilder::new();
    b.state_dir = Some(state.path().to_path_buf());
    let mut v = b.start();
    v.wait_status("ok");
    assert!(v.stop().success());
    let mut db = rusqlite::Connection::open(state.path().join("vigil.db")).unwrap();
    let tx = db.transaction().unwrap();
    for (id, opened, closed) in rows {
        tx.execute(
            "INSERT INTO incidents (id, rule, check_name, opened_us, state, closed_us)
             VALUES (?1, 'r', 'mem', ?2, 'resolved', ?3)",
            rusqlite::params![id, opened, closed],
        )
        .unwrap();
        tx.execute(
            "INSERT INTO actions (incident, step, action, started_us, result)
             VALUES (?1, 0, 'exec:true', ?2, 'ok')",
            rusqlite::params![id, opened],
        )
        .unwrap();
    }
    tx.commit().unwrap();
    state
}

/// vigild on `state` and `bus`, its checks ok.
fn vigild_on(state: &tempfile::TempDir, bus: &Bus) -> Vigild {
    let mut b = VigildBuilder::new().bus(bus);
    b.state_dir = Some(state.path().to_path_buf());
    let v = b.start();
    v.wait_dbus_status(bus, "ok");
    v
}

/// `vigilctl incident 1` finds the oldest of 152 incidents, past vigild's default of 100.
#[test]
fn the_oldest_of_152_incidents_is_shown() {
    const OPENED: i64 = 1_771_322_400_000_000;
    let rows: Vec<_> = (1..=152)
        .map(|id| {
            (
                id,
                OPENED + id * 1_000_000,
                Some(OPENED + id * 1_000_000 + 500),
            )
        })
        .collect();
    let state = state_with_incidents(&rows);
    let bus = Bus::start();
    let _v = vigild_on(&state, &bus);
    let addr = bus.address.as_str();

    let (code, out, err) = vigilctl(&["--bus", addr, "incident", "1"]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(
        out.starts_with(
            "incident 1: rule r on mem — resolved\n\
             opened 2026-02-17T10:00:01.000Z, closed 2026-02-17T10:00:01.000Z\n  \
             2026-02-17T10:00:01.000Z step 1: exec:true → ok"
        ),
        "{out}"
    );
    let (code, out, _) = vigilctl(&["--bus", addr, "--json", "incidents", "--all"]);
    assert_eq!(code, 0);
    let all: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(all.as_array().map(Vec::len), Some(152));
    let (code, _, err) = vigilctl(&["--bus", addr, "incident", "153"]);
    assert_eq!(
        (code, err.trim()),
        (
            1,
            "vigilctl: no incident 153 (see vigilctl incidents --all)"
        )
    );
}

/// A negative timestamp in the database shows as unknown; vigilctl does not panic on it.
#[test]
fn a_negative_timestamp_shows_as_unknown() {
    let state = state_with_incidents(&[(7, -5, Some(-1))]);
    let bus = Bus::start();
    let _v = vigild_on(&state, &bus);
    let addr = bus.address.as_str();

    let (code, out, err) = vigilctl(&["--bus", addr, "incidents", "--all"]);
    assert_eq!(code, 0, "{out}{err}");
    let row = out.lines().nth(1).unwrap_or_default();
    let cells: Vec<&str> = row.split_whitespace().collect();
    assert_eq!(cells, ["7", "r", "mem", "resolved", "-", "1"], "{out}");

    let (code, out, err) = vigilctl(&["--bus", addr, "incident", "7"]);
    assert_eq!(code, 0, "{out}{err}");
    assert_eq!(
        out.trim(),
        "incident 7: rule r on mem — resolved\n\
         opened (unknown time), closed (unknown time)\n  \
         (unknown time) step 1: exec:true → ok"
    );
}

/// A symlink loop in the policy directory: vigild falls back to its built-in checks, and
/// `vigilctl status` says why, with the path, not "no policy file found".
#[test]
fn a_policy_error_is_reported_by_status() {
    let dir = tempfile::tempdir().unwrap();
    let looped = dir.path().join("loop.toml");
    std::os::unix::fs::symlink(&looped, &looped).unwrap();
    let bus = Bus::start();
    let mut b = VigildBuilder::new().bus(&bus);
    b.extra_args = vec!["--policies".into(), dir.path().display().to_string()];
    let _v = b.start();
    let addr = bus.address.as_str();

    let out = wait_for(Duration::from_secs(15), "vigil:config in status", || {
        let (code, out, _) = vigilctl(&["--bus", addr, "status"]);
        (code == 0 && out.contains("vigil:config")).then_some(out)
    });
    assert!(!out.contains("no policy file found"), "{out}");
    let line = out
        .lines()
        .find(|l| l.starts_with("policies: "))
        .unwrap_or_else(|| panic!("no policies line: {out}"));
    assert!(
        line.starts_with("policies: built-in defaults — vigil:config: "),
        "{line}"
    );
    assert!(line.contains(&looped.display().to_string()), "{line}");
    assert!(line.contains("symbolic links"), "{line}");
}

/// The pid of the dbus-daemon serving `bus`, found by its command line.
fn dbus_daemon_pid(bus: &Bus) -> u32 {
    let want = format!("--address={}", bus.address);
    std::fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .find(|pid| {
            std::fs::read(format!("/proc/{pid}/cmdline"))
                .is_ok_and(|c| c.split(|&b| b == 0).any(|a| a == want.as_bytes()))
        })
        .expect("the test bus's dbus-daemon")
}

/// A bus that takes no call (its dbus-daemon SIGSTOPped) is exit 3 within the call timeout
/// too, naming the bus.
#[test]
fn a_stopped_bus_is_exit_3_within_the_call_timeout() {
    let bus = Bus::start();
    let pid = dbus_daemon_pid(&bus);
    kill(pid, SIGSTOP);
    let started = std::time::Instant::now();
    let (code, out, err) = vigilctl(&["--bus", bus.address.as_str(), "status"]);
    let took = started.elapsed();
    kill(pid, SIGCONT);
    assert_eq!(code, 3, "{out}{err}");
    assert_eq!(
        err.trim(),
        format!(
            "vigilctl: vigild is not reachable: the bus {} does not answer: \
             connecting gave no reply within 5 s",
            bus.address
        )
    );
    assert!(took < Duration::from_secs(10), "took {took:?}");
}

// --- vigilctl update apply|rollback|status|history|usb, against a fake vigild -------------

/// `vigilctl --bus BUS ARGS` run in `dir`: (exit code, stdout, stderr).
fn ctl_in(dir: &Path, bus: &Bus, args: &[&str]) -> (i32, String, String) {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_vigilctl"))
        .arg("--bus")
        .arg(&bus.address)
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// A directory with empty files of these names (vigilctl resolves the path it is given; the
/// fake reads nothing).
fn files(names: &[&str]) -> tempfile::TempDir {
    let d = tempfile::tempdir().unwrap();
    for n in names {
        std::fs::write(d.path().join(n), b"").unwrap();
    }
    d
}

/// The lines of `out` that are states of a run.
fn state_lines(out: &str) -> Vec<&str> {
    let states = [
        "verified",
        "staged",
        "backed-up",
        "applying",
        "gating",
        "committed",
        "rolling-back",
        "rolled-back",
        "failed",
        "refused",
    ];
    out.lines().filter(|l| states.contains(l)).collect()
}

#[test]
fn update_apply_follows_the_run_to_commit_and_exits_0() {
    let bus = Bus::start();
    let fake = FakeVigild::start(&bus.address);
    let dir = files(&["good.vigil"]);
    let (code, out, err) = ctl_in(dir.path(), &bus, &["update", "apply", "good.vigil"]);
    assert_eq!(code, 0, "{out}{err}");
    // Not a terminal: a plain line for each state passed, then the outcome.
    assert_eq!(
        state_lines(&out),
        [
            "verified",
            "staged",
            "backed-up",
            "applying",
            "gating",
            "committed"
        ],
        "{out}"
    );
    assert_eq!(
        out.lines().last(),
        Some("run 1: committed: arasul 1.4.0 is installed (was 1.3.0)"),
        "{out}"
    );
    // vigild was given the resolved, absolute path.
    let want = std::fs::canonicalize(dir.path().join("good.vigil")).unwrap();
    assert!(
        fake.calls()
            .contains(&("ApplyUpdate".into(), want.display().to_string())),
        "{:?}",
        fake.calls()
    );
}

#[test]
fn update_apply_rolled_back_is_exit_1_with_the_reason() {
    let bus = Bus::start();
    let _fake = FakeVigild::start(&bus.address);
    let dir = files(&["gate-fails.vigil", "staged-refused.vigil"]);
    let (code, out, err) = ctl_in(dir.path(), &bus, &["update", "apply", "gate-fails.vigil"]);
    assert_eq!(code, 1, "{out}{err}");
    assert_eq!(
        state_lines(&out),
        [
            "verified",
            "staged",
            "backed-up",
            "applying",
            "gating",
            "rolling-back",
            "gating",
            "rolled-back"
        ],
        "{out}"
    );
    assert_eq!(
        err.trim(),
        "vigilctl: run 1: rolled-back to 1.3.0: gate: usb-crit is crit"
    );
    // --json: the final run document on stdout, the reason on stderr, still exit 1.
    let (code, out, err) = ctl_in(
        dir.path(),
        &bus,
        &["update", "apply", "--json", "staged-refused.vigil"],
    );
    assert_eq!(code, 1, "{out}{err}");
    let run: serde_json::Value =
        serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out}"));
    assert_eq!(run["id"], "2");
    assert_eq!(run["state"], "refused");
    assert_eq!(
        run["detail"],
        "payload/app: sha256 differs from the manifest"
    );
    assert!(
        err.contains("run 2: refused: arasul 1.4.0: payload/app: sha256"),
        "{err}"
    );
}

#[test]
fn update_apply_refused_by_vigild_is_exit_1_and_follows_nothing() {
    let bus = Bus::start();
    let fake = FakeVigild::start(&bus.address);
    let dir = files(&["refused.vigil"]);
    let (code, out, err) = ctl_in(dir.path(), &bus, &["update", "apply", "refused.vigil"]);
    assert_eq!(code, 1, "{out}{err}");
    assert_eq!(out, "");
    assert!(
        err.starts_with("vigilctl: ApplyUpdate refused: /")
            && err.contains("refused.vigil: refused: signature by key 0123456789ABCDEF"),
        "{err}"
    );
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(!fake.calls().iter().any(|(m, _)| m == "GetUpdate"));
    // A file that is not there never reaches vigild.
    let (code, _, err) = ctl_in(dir.path(), &bus, &["update", "apply", "missing.vigil"]);
    assert_eq!(code, 1);
    assert!(err.starts_with("vigilctl: missing.vigil: "), "{err}");
    assert_eq!(
        fake.calls()
            .iter()
            .filter(|(m, _)| m == "ApplyUpdate")
            .count(),
        1
    );
    // No vigild: exit 3, as every command that needs it.
    let empty = Bus::start();
    let (code, _, err) = ctl_in(dir.path(), &empty, &["update", "apply", "refused.vigil"]);
    assert_eq!(code, 3, "{err}");
    let (code, _, err) = ctl_in(dir.path(), &empty, &["update", "status"]);
    assert_eq!(code, 3, "{err}");
}

/// Without a single signal, polling GetUpdate follows the run all the same; a signal sent
/// before ApplyUpdate's reply is not lost (the match rule was there before the call).
#[test]
fn update_apply_follows_by_polling_and_keeps_an_early_signal() {
    let bus = Bus::start();
    let _fake = FakeVigild::start(&bus.address);
    let dir = files(&["quiet.vigil", "early.vigil"]);
    let (code, out, err) = ctl_in(dir.path(), &bus, &["update", "apply", "quiet.vigil"]);
    assert_eq!(code, 0, "{out}{err}");
    assert_eq!(state_lines(&out).last(), Some(&"committed"), "{out}");
    assert!(out.ends_with("run 1: committed: arasul 1.4.0 is installed (was 1.3.0)\n"));
    // The early run's document never says `verified`: only its first signal did.
    let (code, out, err) = ctl_in(dir.path(), &bus, &["update", "apply", "early.vigil"]);
    assert_eq!(code, 0, "{out}{err}");
    assert_eq!(state_lines(&out).first(), Some(&"verified"), "{out}");
    assert_eq!(state_lines(&out).last(), Some(&"committed"), "{out}");
}

#[test]
fn update_rollback_status_and_history() {
    let bus = Bus::start();
    let _fake = FakeVigild::start(&bus.address);
    let dir = files(&["good.vigil"]);
    let (code, out, err) = ctl_in(dir.path(), &bus, &["update", "status"]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(out.trim(), "update: idle\nno update run yet");
    let (code, out, _) = ctl_in(dir.path(), &bus, &["update", "history"]);
    assert_eq!((code, out.trim()), (0, "no update runs"));
    let (code, _, err) = ctl_in(dir.path(), &bus, &["update", "rollback"]);
    assert_eq!(code, 1);
    assert_eq!(
        err.trim(),
        "vigilctl: Rollback refused: nothing to roll back: no update was ever committed"
    );

    let (code, _, err) = ctl_in(dir.path(), &bus, &["update", "apply", "good.vigil"]);
    assert_eq!(code, 0, "{err}");
    let (code, out, err) = ctl_in(dir.path(), &bus, &["update", "rollback"]);
    assert_eq!(code, 0, "{out}{err}");
    assert_eq!(
        state_lines(&out),
        ["rolling-back", "gating", "rolled-back"],
        "{out}"
    );
    assert_eq!(
        out.lines().last(),
        Some("run 2: rolled-back to 1.3.0 (from 1.4.0): rollback asked by uid 0 over D-Bus")
    );

    let (code, out, _) = ctl_in(dir.path(), &bus, &["update", "status"]);
    assert_eq!(code, 0);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines[0], "update: idle", "{out}");
    assert_eq!(
        lines[1], "run 2 (rollback): arasul 1.3.0, back from 1.4.0 — rolled-back",
        "{out}"
    );
    assert!(
        out.lines()
            .any(|l| l.contains("rolled-back   now rolled-back")),
        "the run's events: {out}"
    );
    let (code, out, _) = ctl_in(dir.path(), &bus, &["--json", "update", "status"]);
    assert_eq!(code, 0);
    let doc: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(doc["state"], "idle");
    assert_eq!(doc["run"]["kind"], "rollback");

    let (code, out, _) = ctl_in(dir.path(), &bus, &["update", "history"]);
    assert_eq!(code, 0);
    let rows: Vec<&str> = out.lines().collect();
    assert!(
        rows[0].contains("RUN") && rows[0].contains("STATE"),
        "{out}"
    );
    assert!(
        rows[1].trim_start().starts_with('2') && rows[1].contains("rollback"),
        "{out}"
    );
    assert!(
        rows[2].trim_start().starts_with('1') && rows[2].contains("committed"),
        "{out}"
    );
    let (code, out, _) = ctl_in(dir.path(), &bus, &["update", "history", "--json"]);
    assert_eq!(code, 0);
    let runs: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(runs.as_array().map(Vec::len), Some(2), "{out}");
}

/// `update usb DIR`: when vigild applies the stick's bundle, vigilctl waits until it is off
/// the stick (past staged), not for the gate; announced and empty sticks are exit 0, a run
/// refused while staging exit 1.
#[test]
fn update_usb_waits_until_the_bundle_is_off_the_stick() {
    let bus = Bus::start();
    let fake = FakeVigild::start(&bus.address);
    let root = tempfile::tempdir().unwrap();
    for d in [
        "stick-apply",
        "stick-notify",
        "stick-empty",
        "stick-refused",
    ] {
        std::fs::create_dir(root.path().join(d)).unwrap();
    }
    let started = Instant::now();
    let (code, out, err) = ctl_in(root.path(), &bus, &["update", "usb", "stick-apply"]);
    let took = started.elapsed();
    assert_eq!(code, 0, "{out}{err}");
    let stick = std::fs::canonicalize(root.path().join("stick-apply")).unwrap();
    let stick = stick.display().to_string();
    assert_eq!(
        out.lines().next(),
        Some(format!("{stick}/vigil/arasul-1.4.0.vigil: 1.4.0 applying as run 1: [update] usb = \"apply\"").as_str()),
        "{out}"
    );
    assert_eq!(
        state_lines(&out),
        ["verified", "staged", "backed-up"],
        "{out}"
    );
    assert!(
        out.lines().last().unwrap().starts_with(
            "run 1 (apply): arasul 1.4.0 over 1.3.0 — backed-up: the bundle is off the stick"
        ),
        "{out}"
    );
    assert!(
        took < Duration::from_secs(20),
        "waited {took:?}: for the gate?"
    );
    assert!(fake.calls().contains(&("OfferUpdate".into(), stick)));
    assert!(
        fake.doc()["run"]["ended"].is_null(),
        "the run goes on without vigilctl: {}",
        fake.doc()
    );

    let (code, out, err) = ctl_in(root.path(), &bus, &["update", "usb", "stick-notify"]);
    assert_eq!(code, 0, "{err}");
    assert!(
        out.contains("1.4.0 announced, not applied: [update] usb = \"notify\""),
        "{out}"
    );
    let (code, out, _) = ctl_in(root.path(), &bus, &["update", "status"]);
    assert_eq!(code, 0);
    assert!(out.contains("offered: arasul 1.4.0 from "), "{out}");
    let (code, out, err) = ctl_in(
        root.path(),
        &bus,
        &["--json", "update", "usb", "stick-empty"],
    );
    assert_eq!(code, 0, "{err}");
    let answer: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(answer["action"], "none");
    let (code, out, err) = ctl_in(root.path(), &bus, &["update", "usb", "stick-refused"]);
    assert_eq!(code, 1, "{out}{err}");
    assert!(
        err.contains("refused: arasul 1.4.0: payload/app: sha256 differs"),
        "{err}"
    );
}

/// On a terminal the run shows as a progress bar, with each state on a line above it.
#[test]
fn update_apply_on_a_terminal_draws_a_bar() {
    let bus = Bus::start();
    let _fake = FakeVigild::start(&bus.address);
    let dir = files(&["good.vigil"]);
    let cmd = format!(
        "{} --bus {} update apply good.vigil",
        env!("CARGO_BIN_EXE_vigilctl"),
        bus.address
    );
    // script(1) (util-linux) gives vigilctl a pseudo-terminal; -e passes its exit status on.
    let out = std::process::Command::new("script")
        .args(["-q", "-e", "-c", &cmd, "/dev/null"])
        .current_dir(dir.path())
        .output()
        .expect("script (util-linux)");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}");
    assert!(
        text.contains("] ") && text.contains('%'),
        "no bar: {text:?}"
    );
    // Each state is printed above the bar: the bar's line cleared, the state, the bar again.
    for state in ["staged", "backed-up", "gating", "committed"] {
        assert!(
            text.contains(&format!("\u{1b}[2K{state} ")),
            "no line for {state}: {text:?}"
        );
    }
    assert!(
        text.contains("run 1: committed: arasul 1.4.0 is installed"),
        "{text:?}"
    );
}

// --- vigilctl update against the real vigild ---------------------------------------------

/// A signing key (minisign CLI, no password) in `dir`: (secret key, directory of trusted keys).
fn signing_key(dir: &Path) -> (std::path::PathBuf, std::path::PathBuf) {
    let keys = dir.join("keys");
    std::fs::create_dir_all(&keys).unwrap();
    let key = dir.join("signer.key");
    let out = std::process::Command::new("minisign")
        .args(["-G", "-W", "-p"])
        .arg(keys.join("signer.pub"))
        .arg("-s")
        .arg(&key)
        .output()
        .expect("minisign (Debian's package) must be installed");
    assert!(out.status.success(), "{out:?}");
    (key, keys)
}

/// Bundle `demo-VERSION.vigil` in `out`: app.conf holding `conf`, gating on `app` for 500 ms
/// within `timeout`.
fn demo_bundle(dir: &Path, key: &Path, version: &str, conf: &str, timeout: &str, out: &Path) {
    let work = dir.join(format!("work-{version}"));
    std::fs::create_dir_all(work.join("payload")).unwrap();
    std::fs::write(work.join("payload/app.conf"), conf).unwrap();
    std::fs::write(
        work.join("manifest.toml"),
        format!(
            "[bundle]\nname = \"demo\"\nversion = \"{version}\"\n\n[[step]]\ndo = \"install\"\n\
             file = \"payload/app.conf\"\nto = \"app.conf\"\n\n[gate]\nchecks = [\"app\"]\n\
             window = \"500ms\"\ntimeout = \"{timeout}\"\n"
        ),
    )
    .unwrap();
    std::fs::create_dir_all(out).unwrap();
    let made = std::process::Command::new(env!("CARGO_BIN_EXE_vigilctl"))
        .args(["bundle", "create", "--manifest"])
        .arg(work.join("manifest.toml"))
        .arg("--payload")
        .arg(work.join("payload"))
        .arg("--key")
        .arg(key)
        .arg("-o")
        .arg(out.join(format!("demo-{version}.vigil")))
        .output()
        .unwrap();
    assert!(made.status.success(), "{made:?}");
}

/// The commands against vigild itself: apply to commit, a release that breaks its gate
/// check rolled back (exit 1), a stick's bundle applied through `update usb`, rollback,
/// status and history. The check `app` is crit while the current release's app.conf says
/// "broken".
#[test]
fn update_commands_against_the_real_vigild() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let (key, keys) = signing_key(d);
    let state = d.join("state");
    demo_bundle(d, &key, "1.0.0", "fine\n", "20s", &d.join("b"));
    demo_bundle(d, &key, "1.1.0", "broken\n", "2s", &d.join("b"));
    demo_bundle(
        d,
        &key,
        "1.2.0",
        "fine again\n",
        "20s",
        &d.join("stick/vigil"),
    );
    let policy = format!(
        "[[check]]\nname = \"app\"\nprobe = \"exec\"\ncommand = [\"/bin/sh\", \"-c\", \
         \"! grep -q broken {}/releases/current/app.conf\"]\nevery = \"100ms\"\n",
        state.display()
    );
    let bus = Bus::start();
    let mut b = VigildBuilder::new().bus(&bus).policy(&policy);
    b.settings = format!(
        "\n[update]\nkeys_dir = \"{}\"\nusb = \"apply\"\n",
        keys.display()
    );
    b.state_dir = Some(state.clone());
    let v = b.start();
    v.wait_dbus_status(&bus, "ok");

    let (code, out, err) = ctl_in(d, &bus, &["update", "apply", "b/demo-1.0.0.vigil"]);
    assert_eq!(code, 0, "{out}{err}\n{}", v.log());
    assert_eq!(
        state_lines(&out),
        [
            "verified",
            "staged",
            "backed-up",
            "applying",
            "gating",
            "committed"
        ],
        "{out}"
    );
    assert_eq!(
        out.lines().last(),
        Some("run 1: committed: demo 1.0.0 is installed: the new release passed its gate"),
        "{out}"
    );

    let (code, out, err) = ctl_in(
        d,
        &bus,
        &["update", "apply", "--json", "b/demo-1.1.0.vigil"],
    );
    assert_eq!(code, 1, "{out}{err}\n{}", v.log());
    let run: serde_json::Value =
        serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out}"));
    assert_eq!(run["state"], "rolled-back", "{run:#}");
    assert_eq!(run["previous"], "1.0.0", "{run:#}");
    assert!(
        err.starts_with("vigilctl: run 2: rolled-back to 1.0.0: ") && err.contains("app: crit"),
        "{err}"
    );
    assert_eq!(
        std::fs::read_link(state.join("releases/current")).unwrap(),
        Path::new("1.0.0")
    );

    // The same again is refused at once: 1.0.0 is the current release.
    let (code, _, err) = ctl_in(d, &bus, &["update", "apply", "b/demo-1.0.0.vigil"]);
    assert_eq!(code, 1);
    assert!(
        err.starts_with("vigilctl: ApplyUpdate refused: ")
            && err.contains("1.0.0 is the same version")
            && !err.contains("PrivateTmp"),
        "{err}"
    );

    let (code, out, err) = ctl_in(d, &bus, &["update", "usb", "stick"]);
    assert_eq!(code, 0, "{out}{err}\n{}", v.log());
    assert!(
        out.lines()
            .next()
            .unwrap()
            .contains("demo-1.2.0.vigil: 1.2.0 applying as run 3"),
        "{out}"
    );
    assert!(out.contains("the bundle is off the stick"), "{out}");
    wait_for(Duration::from_secs(30), "run 3 committed", || {
        let (_, out, _) = ctl_in(d, &bus, &["--json", "update", "status"]);
        let doc: serde_json::Value = serde_json::from_str(&out).ok()?;
        (doc["run"]["id"] == "3" && doc["run"]["state"] == "committed").then_some(())
    });

    let (code, out, err) = ctl_in(d, &bus, &["update", "rollback"]);
    assert_eq!(code, 0, "{out}{err}\n{}", v.log());
    assert_eq!(state_lines(&out).last(), Some(&"rolled-back"), "{out}");
    assert!(
        out.lines()
            .last()
            .unwrap()
            .starts_with("run 4: rolled-back to 1.0.0 (from 1.2.0): rollback asked by uid 0"),
        "{out}"
    );

    let (code, out, _) = ctl_in(d, &bus, &["update", "status"]);
    assert_eq!(code, 0);
    assert!(
        out.starts_with("update: idle\nrun 4 (rollback): demo "),
        "{out}"
    );
    let (code, out, _) = ctl_in(d, &bus, &["update", "history"]);
    assert_eq!(code, 0);
    let rows: Vec<&str> = out.lines().skip(1).collect();
    assert_eq!(rows.len(), 4, "{out}");
    for (row, (id, state)) in rows.iter().zip([
        ("4", "rolled-back"),
        ("3", "committed"),
        ("2", "rolled-back"),
        ("1", "committed"),
    ]) {
        assert!(
            row.trim_start().starts_with(id) && row.contains(state),
            "{row} is not run {id} {state}:\n{out}"
        );
    }
}
