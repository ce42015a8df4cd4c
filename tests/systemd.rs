//! The `systemd` probe against a real systemd booted with systemd-nspawn.
//!
//! vigild runs INSIDE the container (so it reaches the container's real system bus and its
//! systemd), with its policies, state and log under the shared directory and its own
//! org.vigil.Vigil1 on a private dbus-daemon whose socket is in the shared directory too; the
//! test reads `GetStatus()` from the host through that socket. Every check here has
//! `every = "60s"`: after the first reading, only systemd's signals can explain a change seen
//! within seconds.
//!
//! The cases that do not disturb systemd share one booted container (boot costs seconds);
//! the bus-loss case boots its own.

mod common;
mod nspawn;

use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};

use common::wait_for;
use nspawn::{Container, SHARE};

const POLICY: &str = r#"
[[check]]
name = "fail"
probe = "systemd"
unit = "vt-fail.service"
every = "60s"

[[check]]
name = "restart"
probe = "systemd"
unit = "vt-restart.service"
every = "60s"

[[check]]
name = "nosuch"
probe = "systemd"
unit = "vt-nosuch.service"
every = "60s"

[[check]]
name = "late"
probe = "systemd"
unit = "vt-late.service"
every = "60s"

[[check]]
name = "kill"
probe = "systemd"
unit = "vt-kill.service"
every = "60s"
"#;

/// A booted container with a vigild inside.
struct Env {
    c: Container,
}

impl Env {
    /// Boots, installs `units`, starts a private bus and vigild with `policy`.
    fn start(policy: &str, units: &[(&str, &str)]) -> Env {
        let c = Container::boot();
        for (name, text) in units {
            c.write(&format!("/run/systemd/system/{name}"), text);
        }
        c.sh("systemctl daemon-reload");
        c.write(&format!("{SHARE}/policies/test.toml"), policy);
        c.start_vigild("vigild.log");
        let env = Env { c };
        wait_for(
            Duration::from_secs(30),
            "vigild inside the container",
            || env.try_status().filter(|s| s["checks"].is_array()),
        );
        env
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.c.share().join("vigild.log")).unwrap_or_default()
    }

    /// vigild's status document, read over its D-Bus from the host.
    fn try_status(&self) -> Option<serde_json::Value> {
        let out = std::process::Command::new("busctl")
            .arg(format!(
                "--address=unix:path={}",
                self.c.share().join("bus").display()
            ))
            .args([
                "--json=short",
                "call",
                "org.vigil.Vigil1",
                "/org/vigil/Vigil1",
                "org.vigil.Vigil1.Manager",
                "GetStatus",
            ])
            .output()
            .expect("busctl (systemd package)");
        if !out.status.success() {
            return None;
        }
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).ok()?;
        serde_json::from_str(v["data"][0].as_str()?).ok()
    }

    /// One check's entry in the status document.
    fn check(&self, name: &str) -> Option<serde_json::Value> {
        self.try_status()?["checks"]
            .as_array()?
            .iter()
            .find(|c| c["name"] == name)
            .cloned()
    }

    /// Waits until check `name` has `status`; returns its entry.
    fn wait_check(&self, name: &str, status: &str, timeout: Duration) -> serde_json::Value {
        let start = Instant::now();
        let mut last = None;
        loop {
            if let Some(c) = self.check(name) {
                if c["status"] == status {
                    return c;
                }
                last = Some(c);
            }
            if start.elapsed() > timeout {
                panic!(
                    "check {name} is not {status} after {timeout:?}; last seen: {last:?}\nvigild log:\n{}",
                    self.log()
                );
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

/// The shared container: booted by the first test that needs it, torn down when the last
/// test holding it ends (also when one panics).
fn shared_env() -> Arc<Env> {
    static SHARED: Mutex<Weak<Env>> = Mutex::new(Weak::new());
    let mut slot = SHARED.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(e) = slot.upgrade() {
        return e;
    }
    let e = Arc::new(Env::start(
        POLICY,
        &[
            ("vt-fail.service", "[Service]\nExecStart=/bin/false\n"),
            (
                "vt-restart.service",
                "[Unit]\nStartLimitIntervalSec=0\n[Service]\n\
                 ExecStart=/bin/sh -c 'sleep 0.3; exit 3'\nRestart=always\nRestartSec=200ms\n",
            ),
            (
                "vt-kill.service",
                "[Service]\nExecStart=/bin/sleep 100000\n",
            ),
        ],
    ));
    *slot = Arc::downgrade(&e);
    e
}

fn detail(c: &serde_json::Value) -> &str {
    c["detail"].as_str().unwrap_or_default()
}

#[test]
fn a_unit_that_fails_is_crit_at_once() {
    let env = shared_env();
    // Never started: inactive, with nothing wrong in its last result.
    let c = env.wait_check("fail", "warn", Duration::from_secs(10));
    assert!(
        detail(&c).contains("vt-fail.service: inactive (not running)"),
        "{c}"
    );
    let t0 = Instant::now();
    env.c.sh("systemctl start vt-fail.service || true");
    let c = env.wait_check("fail", "crit", Duration::from_secs(2));
    eprintln!("start of a failing unit -> crit: {:?}", t0.elapsed());
    assert!(
        detail(&c).starts_with("vt-fail.service: failed (Result=exit-code, ExecMainStatus=1"),
        "{c}"
    );
    assert_eq!(c["metrics"]["exec_main_status"], 1.0, "{c}");
    assert_eq!(c["metrics"]["active"], 0.0, "{c}");
    assert_eq!(
        env.c.unit_property("vt-fail.service", "ActiveState"),
        "failed"
    );
}

#[test]
fn a_restarting_unit_shows_its_restarts_rising() {
    let env = shared_env();
    env.c.sh("systemctl start vt-restart.service");
    let mut seen = Vec::<f64>::new();
    wait_for(
        Duration::from_secs(20),
        "n_restarts to reach 3 in vigild's metrics",
        || {
            let c = env.check("restart")?;
            let n = c["metrics"]["n_restarts"].as_f64()?;
            if seen.last() != Some(&n) {
                seen.push(n);
            }
            (n >= 3.0).then_some(())
        },
    );
    // The detail names the count; the last run's exit status is the script's 3 (or 0
    // while a new run is under way).
    let c = env.check("restart").unwrap();
    assert!(detail(&c).contains(" restarts)"), "{c}");
    let status = c["metrics"]["exec_main_status"].as_f64();
    assert!(matches!(status, Some(s) if s == 3.0 || s == 0.0), "{c}");
    // Rising, one restart at a time as systemd counts them (a reading may miss none or
    // several, but never goes back).
    assert!(
        seen.windows(2).all(|w| w[1] > w[0]),
        "n_restarts went {seen:?}"
    );
    assert!(seen.len() >= 2, "saw only {seen:?}");
    let systemd_count: f64 = env
        .c
        .unit_property("vt-restart.service", "NRestarts")
        .parse()
        .unwrap();
    assert!(
        systemd_count >= seen[seen.len() - 1],
        "systemd counts {systemd_count}, vigild saw {seen:?}"
    );
    env.c.sh("systemctl stop vt-restart.service");
}

#[test]
fn a_unit_that_does_not_exist_is_crit_and_says_so() {
    let env = shared_env();
    let c = env.wait_check("nosuch", "crit", Duration::from_secs(10));
    assert!(
        detail(&c).contains("vt-nosuch.service does not exist (LoadState=not-found)"),
        "{c}"
    );
    assert_eq!(c["metrics"]["active"], 0.0, "{c}");
    assert!(
        c["metrics"].get("n_restarts").is_none(),
        "no service figures for a unit that is not there: {c}"
    );
}

#[test]
fn a_unit_installed_later_is_seen_after_daemon_reload() {
    let env = shared_env();
    let c = env.wait_check("late", "crit", Duration::from_secs(10));
    assert!(detail(&c).contains("does not exist"), "{c}");
    // systemd's Reloading signal wakes the check; `every` is 60 s.
    env.c.install_unit(
        "vt-late.service",
        "[Service]\nExecStart=/bin/sleep 100000\n",
    );
    env.c.sh("systemctl start vt-late.service");
    let c = env.wait_check("late", "ok", Duration::from_secs(3));
    assert_eq!(
        detail(&c),
        "vt-late.service: active (running) (Result=success, 0 restarts)"
    );
    assert_eq!(c["metrics"]["active"], 1.0, "{c}");
}

#[test]
fn a_running_unit_killed_turns_crit_from_the_event_not_the_tick() {
    let env = shared_env();
    env.c.sh("systemctl start vt-kill.service");
    let c = env.wait_check("kill", "ok", Duration::from_secs(5));
    assert!(detail(&c).contains("active (running)"), "{c}");
    let tasks = c["metrics"]["tasks"].as_f64();
    let t0 = Instant::now();
    env.c.sh("systemctl kill --signal=KILL vt-kill.service");
    // every = 60s: only the PropertiesChanged signal explains a change this fast.
    let c = env.wait_check("kill", "crit", Duration::from_secs(2));
    let took = t0.elapsed();
    eprintln!("systemctl kill -> crit seen from the host: {took:?}");
    assert!(
        detail(&c).contains("failed (Result=signal, ExecMainStatus=9 (killed by signal SIGKILL)"),
        "{c}"
    );
    assert_eq!(c["metrics"]["exec_main_status"], 9.0, "{c}");
    if let Some(t) = tasks {
        assert!(t >= 1.0, "a running sleep has a task: {c}");
    }
}

#[test]
fn losing_the_system_bus_is_unknown_then_recovers() {
    // Its own container: this one stops the system bus.
    let env = Env::start(
        r#"
[[check]]
name = "svc"
probe = "systemd"
unit = "vt-svc.service"
every = "60s"
"#,
        &[("vt-svc.service", "[Service]\nExecStart=/bin/sleep 100000\n")],
    );
    env.c.sh("systemctl start vt-svc.service");
    env.wait_check("svc", "ok", Duration::from_secs(5));
    // Stop the bus and keep it stopped (no socket activation) for a while.
    env.c
        .sh("systemctl stop dbus.socket; systemctl kill --signal=KILL dbus.service");
    let c = env.wait_check("svc", "unknown", Duration::from_secs(5));
    assert!(
        detail(&c).contains("system bus lost") && detail(&c).contains("reconnecting"),
        "{c}"
    );
    std::thread::sleep(Duration::from_secs(2));
    let c = env.check("svc").unwrap();
    assert_eq!(c["status"], "unknown", "still down: {c}");
    // The bus comes back: vigild reconnects by itself (back-off at most 10 s) and the
    // check is read again.
    env.c.sh("systemctl start dbus.socket dbus.service");
    let c = env.wait_check("svc", "ok", Duration::from_secs(30));
    assert!(
        detail(&c).contains("vt-svc.service: active (running)"),
        "{c}"
    );
    // And it is event-driven again on the new connection.
    env.c.sh("systemctl kill --signal=KILL vt-svc.service");
    env.wait_check("svc", "crit", Duration::from_secs(3));
    assert!(
        env.log().contains("system bus lost"),
        "the loss is logged:\n{}",
        env.log()
    );
}
