//! vigild as a process: built-in defaults, sd_notify (READY, STATUS, WATCHDOG, RELOADING),
//! reload on SIGHUP, configuration errors, the store on disk, missing sources.

mod common;
mod faults_support;
mod reliability;

use std::process::{Command, Stdio};
use std::time::Duration;

use common::*;

/// Kills a process on drop, so a failed assertion leaves nothing running.
struct Reap(u32);

impl Drop for Reap {
    fn drop(&mut self) {
        kill(self.0, SIGKILL);
    }
}

#[test]
fn runs_on_built_in_defaults_with_no_files_at_all() {
    // Exactly the README's first command: no config, no policies, no state dir, no bus.
    let cwd = tempfile::tempdir().unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_vigild"))
        .arg("--foreground")
        .current_dir(cwd.path())
        .env_remove("STATE_DIRECTORY")
        .env_remove("XDG_STATE_HOME")
        .env_remove("NOTIFY_SOCKET")
        .env("DBUS_SESSION_BUS_ADDRESS", "unix:path=/nonexistent/bus")
        .env("DBUS_SYSTEM_BUS_ADDRESS", "unix:path=/nonexistent/bus")
        .stderr(Stdio::from(
            std::fs::File::create(cwd.path().join("stderr.log")).unwrap(),
        ))
        .spawn()
        .unwrap();
    let _reap = Reap(child.id());
    let doc = wait_for(
        Duration::from_secs(20),
        "heartbeat on 127.0.0.1:9480",
        || {
            let (code, _, body) = std::panic::catch_unwind(|| {
                http_raw(
                    9480,
                    "GET /api/system/heartbeat HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
                )
            })
            .ok()?;
            (code == 200).then(|| serde_json::from_str::<serde_json::Value>(&body).unwrap())
        },
    );
    assert_eq!(doc["version"], env!("CARGO_PKG_VERSION"));
    wait_for(Duration::from_secs(10), "./state/vigil.db", || {
        cwd.path().join("state/vigil.db").exists().then_some(())
    });
    let log = || std::fs::read_to_string(cwd.path().join("stderr.log")).unwrap_or_default();
    wait_for(
        Duration::from_secs(20),
        "the first reading of root-disk",
        || log().contains("check root-disk unknown → ").then_some(()),
    );
    kill(child.id(), SIGTERM);
    let status = child.wait().unwrap();
    assert!(status.success(), "{status:?}");
    let err = log();
    // Exactly what the host's own policy directories call for.
    let installed = vigil::policy::policy_files(&[
        vigil::policy::VENDOR_DIR.into(),
        vigil::policy::ADMIN_DIR.into(),
    ])
    .unwrap();
    let expected = if installed.is_empty() {
        "using the built-in checks for this host".to_string()
    } else {
        format!("from {} policy file(s)", installed.len())
    };
    assert!(err.contains(&expected), "expected {expected:?} in: {err}");
    assert!(
        err.contains("running without D-Bus"),
        "a missing bus is one warning: {err}"
    );
    // A reading, whatever the disk of the machine running this says (a nearly full
    // one makes it crit): the defaults watch `/`, and the detail names it.
    let first = err
        .lines()
        .find(|l| l.contains("check root-disk unknown → "))
        .expect("the first reading is logged");
    assert!(
        ["→ ok:", "→ warn:", "→ crit:"]
            .iter()
            .any(|to| first.contains(to)),
        "root-disk got a reading, not unknown again: {first}"
    );
    assert!(first.contains("/: ") && first.contains("% used"), "{first}");
}

#[test]
fn ready_status_and_watchdog_over_sd_notify() {
    let v = VigildBuilder::new()
        .notify()
        .env("WATCHDOG_USEC", "200000")
        .start();
    let seen = v.wait_notify("READY=1", Duration::from_secs(10));
    assert!(seen.last().unwrap().contains("STATUS="), "{seen:?}");
    let seen = v.wait_notify("STATUS=ok · 1 check · 0 incidents", Duration::from_secs(10));
    assert!(!seen.is_empty());
    // Pings at half of WATCHDOG_USEC: at least 5 in one second.
    let start = std::time::Instant::now();
    let mut pings = 0;
    while start.elapsed() < Duration::from_secs(1) {
        let got = v.wait_notify("WATCHDOG=1", Duration::from_secs(2));
        pings += got.iter().filter(|m| m.contains("WATCHDOG=1")).count();
    }
    assert!(
        (5..=15).contains(&pings),
        "{pings} pings in 1 s at WATCHDOG_USEC=200ms"
    );
    // A status change updates STATUS=.
    v.set_available_kb(50_000);
    v.wait_notify(
        "STATUS=critical · 1 check · 0 incidents · crit: mem",
        Duration::from_secs(10),
    );
}

#[test]
fn a_stalled_loop_stops_the_watchdog_pings() {
    if !cfg!(feature = "test-hooks") {
        panic!("this test needs the stall switch: run the suite with --features test-hooks (scripts/test.sh does)");
    }
    let v = VigildBuilder::new()
        .notify()
        .env("WATCHDOG_USEC", "200000")
        .start();
    v.wait_notify("WATCHDOG=1", Duration::from_secs(10));
    kill(v.pid(), SIGUSR2);
    std::thread::sleep(Duration::from_millis(300));
    // Drain what was sent before the stall took hold, then expect silence.
    let sock = v.notify.as_ref().unwrap();
    let mut buf = [0u8; 4096];
    while sock.recv(&mut buf).is_ok() {}
    let start = std::time::Instant::now();
    let mut late = Vec::new();
    while start.elapsed() < Duration::from_secs(1) {
        if let Ok(n) = sock.recv(&mut buf) {
            late.push(String::from_utf8_lossy(&buf[..n]).into_owned());
        }
    }
    assert!(
        late.iter().all(|m| !m.contains("WATCHDOG=1")),
        "pings after the stall: {late:?}"
    );
    // The heartbeat still answers: only the evaluation loop is stuck, which is what the
    // watchdog is for — and it says so: the box is critical while the loop stands still
    // (after the watchdog's time, at least 2 s), whatever the last snapshot said.
    assert_eq!(v.http("GET", "/api/system/heartbeat").0, 200);
    v.wait_status("critical");
    assert_eq!(v.http("GET", "/healthz").0, 503);
    assert!(v.log().contains("stalling the evaluation loop"));
}

#[test]
fn sighup_reloads_and_a_broken_set_keeps_the_old_one() {
    let v = VigildBuilder::new().notify().start();
    v.wait_notify("READY=1", Duration::from_secs(10));
    v.wait_status("ok");
    // A broken file: the reload is refused and mem stays.
    std::fs::write(
        v.policies_dir().join("b.toml"),
        "[[check]]\nname = \"x\"\nprobe = \"memory\"\nwarn = \"available < 10\"\n",
    )
    .unwrap();
    kill(v.pid(), SIGHUP);
    let seen = v.wait_notify("READY=1", Duration::from_secs(10));
    assert!(seen.iter().any(|m| m.contains("RELOADING=1")), "{seen:?}");
    wait_for(Duration::from_secs(5), "the refusal in the log", || {
        v.log().contains("reload refused").then_some(())
    });
    let log = v.log();
    assert!(
        log.contains("b.toml:4:23: `available` is a percentage"),
        "{log}"
    );
    std::thread::sleep(Duration::from_millis(300));
    // Still the old check, still probing.
    v.set_available_kb(50_000);
    v.wait_status("critical");
    // Fixed: the new set is taken, with both checks.
    std::fs::write(
        v.policies_dir().join("b.toml"),
        "[[check]]\nname = \"x\"\nprobe = \"memory\"\nevery = \"100ms\"\n",
    )
    .unwrap();
    kill(v.pid(), SIGHUP);
    v.wait_notify("READY=1", Duration::from_secs(10));
    wait_for(Duration::from_secs(10), "two checks", || {
        let (_, _, body) = v.http("GET", "/api/system/heartbeat");
        let _ = body;
        v.log().contains("check x added").then_some(())
    });
    // mem kept its state across the reload (no new transition to crit).
    let log = v.log();
    assert_eq!(log.matches("check mem ok → crit").count(), 1, "{log}");
}

#[test]
fn configuration_errors_at_start_run_built_in_checks_and_report_critical() {
    // A policy with an error: vigild must still watch and answer, and say why it is critical.
    let bad = "[[check]]\nname = \"d\"\nprobe = \"disk\"\n";
    let v = VigildBuilder::new().notify().policy(bad).start();
    v.wait_notify("READY=1", Duration::from_secs(10));
    v.wait_status("critical");
    let log = v.log();
    assert!(
        log.contains("test.toml:1:1: [[check]] is missing the key `path`"),
        "{log}"
    );
    assert!(
        log.contains("no usable policy file: using the built-in checks"),
        "{log}"
    );
    v.wait_notify("crit: vigil:config", Duration::from_secs(10));
    // Fixing the file and reloading clears it.
    std::fs::write(v.policies_dir().join("test.toml"), MEMORY_POLICY).unwrap();
    kill(v.pid(), SIGHUP);
    v.wait_status("ok");
    assert!(v.log().contains("check vigil:config removed"));

    // A bad settings file: defaults, and the same report.
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("vigil.toml"),
        "[http]\nlisten = [\"127.0.0.1:0\"]\nport = 80\n",
    )
    .unwrap();
    let port = free_port();
    let mut child = Command::new(env!("CARGO_BIN_EXE_vigild"))
        .arg("--config")
        .arg(dir.path().join("vigil.toml"))
        .arg("--policies")
        .arg(dir.path().join("none"))
        .arg("--state-dir")
        .arg(dir.path().join("state"))
        .args(["--listen", &format!("127.0.0.1:{port}")])
        .env("DBUS_SESSION_BUS_ADDRESS", "unix:path=/nonexistent/bus")
        .env("DBUS_SYSTEM_BUS_ADDRESS", "unix:path=/nonexistent/bus")
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let _reap = Reap(child.id());
    wait_for(Duration::from_secs(20), "critical heartbeat", || {
        let r = std::panic::catch_unwind(|| {
            http_raw(
                port,
                "GET /api/system/heartbeat HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
            )
        })
        .ok()?;
        r.2.contains("\"status\":\"critical\"").then_some(())
    });
    kill(child.id(), SIGTERM);
    child.wait().unwrap();
    let mut err = String::new();
    std::io::Read::read_to_string(child.stderr.as_mut().unwrap(), &mut err).unwrap();
    assert!(
        err.contains(&format!(
            "{}:3:1: unknown field `port`",
            dir.path().join("vigil.toml").display()
        )),
        "{err}"
    );
}

#[test]
fn transitions_are_stored_and_survive_a_restart() {
    let mut v = VigildBuilder::new().start();
    v.wait_status("ok");
    v.set_available_kb(50_000);
    v.wait_status("critical");
    let db = v.state_dir().join("vigil.db");
    let status = v.stop();
    assert!(status.success());
    let (conn_rows, mode) = {
        let c = rusqlite::Connection::open(&db).unwrap();
        let rows: Vec<(String, String, String)> = c
            .prepare("SELECT check_name, from_status, to_status FROM transitions ORDER BY id")
            .unwrap()
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
            .unwrap()
            .map(Result::unwrap)
            .collect();
        let mode: String = c
            .query_row("PRAGMA journal_mode", [], |r| r.get(0))
            .unwrap();
        (rows, mode)
    };
    assert_eq!(mode, "wal");
    assert_eq!(
        conn_rows,
        vec![
            ("mem".to_string(), "unknown".to_string(), "ok".to_string()),
            ("mem".to_string(), "ok".to_string(), "crit".to_string())
        ]
    );
}

/// The names in the state directory that start with `vigil.db.corrupt-`.
fn moved_aside(state: &std::path::Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(state)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with("vigil.db.corrupt-"))
        .collect();
    v.sort();
    v
}

/// A real database, written by a vigild and closed, damaged in the middle while vigild is
/// stopped (a page overwritten, as a failing SD card does): the next vigild moves it aside
/// untouched, starts a fresh one that takes every new record, and answers all the while.
#[test]
fn a_corrupt_database_is_moved_aside_and_the_heartbeat_keeps_answering() {
    let state = tempfile::tempdir().unwrap();
    let db = state.path().join("vigil.db");
    let builder = || {
        let mut b = VigildBuilder::new();
        b.state_dir = Some(state.path().to_path_buf());
        b
    };
    let mut v = builder().start();
    v.wait_status("ok");
    v.set_available_kb(50_000);
    v.wait_status("critical");
    v.set_available_kb(800_000);
    v.wait_status("ok");
    assert!(v.stop().success());
    let before = faults_support::rows(&db);
    assert_eq!(before.transitions.len(), 3, "{before:?}");
    // Every page in the main file: the log checkpointed and removed by a last close.
    {
        let c = rusqlite::Connection::open(&db).unwrap();
        c.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))
            .unwrap();
    }
    assert!(!state.path().join("vigil.db-wal").exists());
    let mut bytes = std::fs::read(&db).unwrap();
    assert!(bytes.len() >= 3 * 4096, "{} bytes", bytes.len());
    for (i, b) in bytes[4096..2 * 4096].iter_mut().enumerate() {
        *b = (i * 7 + 13) as u8;
    }
    std::fs::write(&db, &bytes).unwrap();
    let damaged = faults_support::integrity(&db);
    assert_ne!(damaged, "ok");

    let mut v = builder().start();
    let polled = faults_support::HeartbeatPoller::start(v.port);
    v.wait_status("ok");
    wait_for(Duration::from_secs(10), "the store's report", || {
        let log = v.log();
        (log.contains("was unusable") && log.contains("moved it to")).then_some(())
    });
    // The fresh database takes transitions.
    v.set_available_kb(50_000);
    v.wait_status("critical");
    wait_for(
        Duration::from_secs(10),
        "2 transitions in the fresh file",
        || (faults_support::rows(&db).transitions.len() == 2).then_some(()),
    );
    std::thread::sleep(Duration::from_secs(1));
    let polled = polled.finish();
    v.stop();
    let aside = moved_aside(state.path());
    let kept = aside.len() == 1 && std::fs::read(state.path().join(&aside[0])).ok() == Some(bytes);
    let fresh = faults_support::rows(&db);
    let integrity = faults_support::integrity(&db);
    reliability::record(
        "a_corrupt_database_is_moved_aside_and_the_heartbeat_keeps_answering",
        "vigil.db of a stopped vigild (3 transitions) damaged: its second 4 KiB page \
         overwritten; vigild started on it",
        &format!(
            "damaged file moved aside {}; fresh db took {}/2 new transitions, integrity_check \
             {integrity}; {}",
            if kept { "byte for byte" } else { "NOT intact" },
            fresh.transitions.len(),
            polled.figure()
        ),
        kept && fresh.transitions.len() == 2 && integrity == "ok" && polled.all_answered(),
    );
    assert!(kept, "{aside:?}");
    assert_eq!(fresh.transitions.len(), 2);
    assert_eq!(integrity, "ok");
    assert!(polled.all_answered(), "{polled:?}");
}

/// The database file replaced under a running vigild (a careless restore, a bad copy): the
/// bad file is moved aside, a fresh one takes every record made after, and nothing stops.
#[test]
fn a_database_that_goes_bad_while_running_is_replaced_and_nothing_stops() {
    let mut v = VigildBuilder::new().start();
    v.wait_status("ok");
    let db = v.state_dir().join("vigil.db");
    // The store has the file open once the first transition is in it.
    wait_for(
        Duration::from_secs(10),
        "the first stored transition",
        || {
            let c = rusqlite::Connection::open(&db).ok()?;
            let n: i64 = c
                .query_row("SELECT count(*) FROM transitions", [], |r| r.get(0))
                .ok()?;
            (n >= 1).then_some(())
        },
    );
    let polled = faults_support::HeartbeatPoller::start(v.port);
    // Replace the file under the running daemon with junk.
    std::fs::remove_file(&db).unwrap();
    let _ = std::fs::remove_file(v.state_dir().join("vigil.db-wal"));
    let _ = std::fs::remove_file(v.state_dir().join("vigil.db-shm"));
    let junk = b"\0not sqlite\0".repeat(4096);
    std::fs::write(&db, &junk).unwrap();
    let swapped = std::time::Instant::now();
    v.set_available_kb(50_000);
    v.wait_status("critical");
    v.set_available_kb(900_000);
    v.wait_status("ok");
    wait_for(Duration::from_secs(10), "the bad file moved aside", || {
        (!moved_aside(&v.state_dir()).is_empty()).then_some(())
    });
    wait_for(
        Duration::from_secs(10),
        "both new transitions stored",
        || (faults_support::rows(&db).transitions.len() == 2).then_some(()),
    );
    let settled = swapped.elapsed();
    std::thread::sleep(Duration::from_secs(1));
    let polled = polled.finish();
    v.stop();
    let log = v.log();
    let aside = moved_aside(&v.state_dir());
    let kept = aside.len() == 1 && std::fs::read(v.state_dir().join(&aside[0])).ok() == Some(junk);
    let fresh = faults_support::rows(&db);
    let integrity = faults_support::integrity(&db);
    let pass = kept
        && fresh.transitions.len() == 2
        && integrity == "ok"
        && polled.all_answered()
        && log.contains("was unusable");
    reliability::record(
        "a_database_that_goes_bad_while_running_is_replaced_and_nothing_stops",
        "vigil.db deleted and replaced with 48 KiB of junk under a running vigild, then a \
         check turned crit and ok",
        &format!(
            "junk moved aside {}; {}/2 transitions after the swap stored in a fresh db within \
             {} ms, integrity_check {integrity}; {}",
            if kept { "as it was" } else { "NOT intact" },
            fresh.transitions.len(),
            settled.as_millis(),
            polled.figure()
        ),
        pass,
    );
    assert!(kept, "{aside:?}");
    assert_eq!(fresh.transitions.len(), 2, "{fresh:?}\n{log}");
    assert_eq!(integrity, "ok");
    assert!(polled.all_answered(), "{polled:?}");
    assert!(log.contains("was unusable"), "{log}");
}

#[test]
fn missing_sources_make_checks_unknown_with_the_reason() {
    let policy = r#"
[[check]]
name = "gone-disk"
probe = "disk"
path = "/nonexistent/vigil-data"
every = "100ms"

[[check]]
name = "temps"
probe = "thermal"
every = "100ms"
"#;
    let v = VigildBuilder::new().policy(policy).start();
    v.wait_status("degraded");
    wait_for(
        Duration::from_secs(10),
        "both checks unknown in the log",
        || {
            let log = v.log();
            (log.contains("check gone-disk is unknown: /nonexistent/vigil-data does not exist")
                && log.contains("check temps is unknown: no temperature sensors under"))
            .then_some(())
        },
    );
    std::thread::sleep(Duration::from_millis(500));
    let log = v.log();
    assert_eq!(
        log.matches("check gone-disk is unknown").count(),
        1,
        "logged once, not every 100 ms: {log}"
    );
    // The status document carries the reasons.
    let doc = v.heartbeat();
    assert_eq!(doc["status"], "degraded");
    assert!(
        std::process::Command::new("kill")
            .arg("-0")
            .arg(v.pid().to_string())
            .status()
            .unwrap()
            .success(),
        "still running"
    );
}

/// Written to a file (not a terminal), the log carries no colour codes.
#[test]
fn the_log_has_no_colour_codes_when_stderr_is_not_a_terminal() {
    let v = VigildBuilder::new().notify().start();
    v.wait_notify("READY=1", Duration::from_secs(10));
    // The ready line is written just after READY=1 is sent.
    let log = wait_for(Duration::from_secs(5), "the ready line", || {
        let log = v.log();
        log.contains("ready:").then_some(log)
    });
    assert!(!log.contains('\u{1b}'), "escape codes in the log: {log:?}");
}

/// A FIFO named *.toml in a policy directory is refused with its path at reload; the loop
/// is not wedged by it: the reload answers, and the loop goes on evaluating.
#[test]
fn a_fifo_in_the_policy_directory_is_refused_and_the_loop_goes_on() {
    let v = VigildBuilder::new().notify().start();
    v.wait_notify("READY=1", Duration::from_secs(10));
    v.wait_status("ok");
    let fifo = v.policies_dir().join("50-fifo.toml");
    let made = Command::new("mkfifo").arg(&fifo).status().unwrap();
    assert!(made.success());
    kill(v.pid(), SIGHUP);
    let seen = v.wait_notify("READY=1", Duration::from_secs(10));
    assert!(seen.iter().any(|m| m.contains("RELOADING=1")), "{seen:?}");
    wait_for(Duration::from_secs(5), "the refusal in the log", || {
        v.log().contains("reload refused").then_some(())
    });
    let log = v.log();
    assert!(
        log.contains(&format!(
            "{}:1:1: not a regular file (a FIFO)",
            fifo.display()
        )),
        "{log}"
    );
    // Still evaluating: a reading that goes critical is seen.
    v.set_available_kb(50_000);
    v.wait_status("critical");
}

/// A typo in vigil.toml (a header as a string, not a table) must not publish the secret in
/// it: the error names file, line, column and the expected shape, never the value — on
/// D-Bus, in the log and in the store.
#[test]
fn a_bad_setting_never_shows_its_value() {
    const SECRET: &str = "S3CRET-TOKEN-42";
    let bus = Bus::start();
    let mut b = VigildBuilder::new().bus(&bus).notify();
    b.settings = format!(
        "\n[[notify.webhook]]\nurl = \"https://alerts.example.com/hook\"\nheaders = \"Authorization: Bearer {SECRET}\"\n"
    );
    let mut v = b.start();
    v.wait_notify("READY=1", Duration::from_secs(10));
    v.wait_dbus_status(&bus, "critical");
    let path = "/org/vigil/Vigil1/check/vigil_3aconfig";
    let detail = bus.busctl(&[
        "get-property",
        "org.vigil.Vigil1",
        path,
        "org.vigil.Vigil1.Check",
        "Detail",
    ]);
    assert!(
        detail.contains("vigil.toml:7:11: invalid type: a string, expected a map"),
        "{detail}"
    );
    assert!(!detail.contains(SECRET), "{detail}");
    v.stop();
    let log = v.log();
    assert!(log.contains("expected a map"), "{log}");
    assert!(!log.contains(SECRET), "{log}");
    for entry in std::fs::read_dir(v.state_dir()).unwrap() {
        let bytes = std::fs::read(entry.unwrap().path()).unwrap();
        assert!(
            !bytes.windows(SECRET.len()).any(|w| w == SECRET.as_bytes()),
            "the secret is in the store"
        );
    }
}

/// A FIFO named *.toml in a policy directory at start: the heartbeat answers, READY=1 is
/// sent, and vigild runs its built-in checks with `vigil:config` naming the FIFO — instead
/// of hanging before its listener was up.
#[test]
fn a_fifo_in_the_policy_directory_at_start_does_not_keep_vigild_down() {
    let extra = tempfile::tempdir().unwrap();
    let fifo = extra.path().join("50-fifo.toml");
    assert!(Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .unwrap()
        .success());
    let mut b = VigildBuilder::new().notify();
    b.extra_args = vec!["--policies".into(), extra.path().display().to_string()];
    let v = b.start();
    v.wait_notify("READY=1", Duration::from_secs(10));
    v.wait_status("critical");
    let log = v.log();
    assert!(
        log.contains(&format!(
            "{}:1:1: not a regular file (a FIFO)",
            fifo.display()
        )),
        "{log}"
    );
}
