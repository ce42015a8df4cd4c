//! A failing unit is restarted by a rule through the real systemd Manager (booted in
//! systemd-nspawn), step by step, and no more once the limit is reached.

mod common;
mod nspawn;

use std::time::{Duration, Instant};

use common::{free_port, wait_for};
use nspawn::{Container, SHARE};

const POLICY: &str = r#"
[[check]]
name = "svc"
probe = "systemd"
unit = "vt-heal.service"
every = "60s"

[[rule]]
name = "heal-svc"
on = "svc"
when = "crit"
for = "0s"
do = ["restart unit:vt-heal.service"]
cooldown = "1s"
limit = "2 per 1h"
"#;

const UNIT: &str = "[Service]\nExecStart=/bin/sleep 1000\n";

#[test]
fn a_failed_unit_is_restarted_until_the_limit() {
    let c = Container::boot();
    c.write("/run/systemd/system/vt-heal.service", UNIT);
    c.sh("systemctl daemon-reload && systemctl start vt-heal.service");
    c.write(&format!("{SHARE}/policies/test.toml"), POLICY);
    c.sh(&format!(
        "dbus-daemon --session --address=unix:path={SHARE}/bus --fork --nopidfile"
    ));
    let port = free_port();
    c.spawn(&format!(
        "exec {} --foreground --policies {SHARE}/policies --state-dir {SHARE}/state \
         --listen 127.0.0.1:{port} --bus unix:path={SHARE}/bus >{SHARE}/vigild.log 2>&1",
        env!("CARGO_BIN_EXE_vigild")
    ));
    let log = || std::fs::read_to_string(c.share().join("vigild.log")).unwrap_or_default();
    wait_for(Duration::from_secs(30), "svc ok", || {
        let l = log();
        (l.contains("check svc unknown → ok") || l.contains("fatal")).then_some(())
    });
    assert!(!log().contains("fatal"), "{}", log());
    let started =
        |c: &Container| c.unit_property("vt-heal.service", "ExecMainStartTimestampMonotonic");

    for round in 1..=2 {
        let before = started(&c);
        c.sh("systemctl kill --signal=KILL vt-heal.service");
        let t = Instant::now();
        wait_for(
            Duration::from_secs(15),
            &format!("restart {round} done"),
            || {
                (log()
                    .matches(
                        "`restart unit:vt-heal.service` — done: restart vt-heal.service: job done",
                    )
                    .count()
                    >= round)
                    .then_some(())
            },
        );
        assert_eq!(
            c.sh("systemctl is-active vt-heal.service").trim(),
            "active",
            "{}",
            log()
        );
        assert_ne!(started(&c), before, "a new main process");
        eprintln!("round {round}: killed → restarted in {:?}", t.elapsed());
        wait_for(Duration::from_secs(10), "svc ok again", || {
            (log().matches("check svc crit → ok").count()
                + log().matches("check svc warn → ok").count()
                >= round)
                .then_some(())
        });
    }
    // A third failure: the limit (2 per hour) is spent; vigil gives up and says so.
    c.sh("systemctl kill --signal=KILL vt-heal.service");
    wait_for(Duration::from_secs(15), "exhausted", || {
        log().contains("reached its limit").then_some(())
    });
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(
        log().matches("restart vt-heal.service: job done").count(),
        2,
        "{}",
        log()
    );
    assert_eq!(
        c.sh("systemctl is-active vt-heal.service || true").trim(),
        "failed"
    );
}

#[test]
fn vacuum_journal_runs_through_its_oneshot_unit() {
    let c = Container::boot();
    c.write(
        "/run/systemd/system/vigil-journal-vacuum@.service",
        &std::fs::read_to_string("units/vigil-journal-vacuum@.service").unwrap(),
    );
    c.write(
        "/run/systemd/system/vt-broken.service",
        "[Service]\nExecStart=/bin/false\n",
    );
    c.sh("systemctl daemon-reload; systemctl start vt-broken.service || true");
    c.write(
        &format!("{SHARE}/policies/test.toml"),
        r#"
[[check]]
name = "broken"
probe = "systemd"
unit = "vt-broken.service"

[[rule]]
name = "make-room"
on = "broken"
do = ["vacuum journal 64M"]
limit = "1 per 1h"
"#,
    );
    c.sh(&format!(
        "dbus-daemon --session --address=unix:path={SHARE}/bus --fork --nopidfile"
    ));
    let port = free_port();
    c.spawn(&format!(
        "exec {} --foreground --policies {SHARE}/policies --state-dir {SHARE}/state \
         --listen 127.0.0.1:{port} --bus unix:path={SHARE}/bus >{SHARE}/vigild.log 2>&1",
        env!("CARGO_BIN_EXE_vigild")
    ));
    let log = || std::fs::read_to_string(c.share().join("vigild.log")).unwrap_or_default();
    wait_for(Duration::from_secs(30), "the vacuum's result", || {
        log().contains("`vacuum journal 64M` — ").then_some(())
    });
    assert!(
        log().contains(
            "`vacuum journal 64M` — done: start vigil-journal-vacuum@64M.service: job done"
        ),
        "{}",
        log()
    );
    let out = c.sh("journalctl -u vigil-journal-vacuum@64M.service --no-pager -o cat");
    assert!(
        out.contains("Vacuuming done") || out.contains("Deleted") || out.contains("freed"),
        "{out}"
    );
}
