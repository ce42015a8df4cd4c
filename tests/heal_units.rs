//! A failing unit is restarted by a rule through the real systemd Manager (booted in
//! systemd-nspawn), step by step, and no more once the limit is reached.

mod common;
mod nspawn;

use std::time::{Duration, Instant};

use common::wait_for;
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
    c.start_vigild("vigild.log");
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
    c.start_vigild("vigild.log");
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

#[test]
fn reboot_reboots_and_the_limit_survives_it() {
    let mut c = Container::boot();
    c.write(
        "/run/systemd/system/vt-dead.service",
        "[Service]\nExecStart=/bin/false\n",
    );
    c.sh("systemctl daemon-reload; systemctl start vt-dead.service || true");
    c.write(
        &format!("{SHARE}/policies/test.toml"),
        r#"
[[check]]
name = "dead"
probe = "systemd"
unit = "vt-dead.service"

[[rule]]
name = "last-resort"
on = "dead"
do = ["reboot"]
limit = "5 per 1h"
"#,
    );
    c.start_vigild("vigild.log");
    // The container goes down by vigil's hand: systemd-nspawn exits.
    let st = c.wait_exit(Duration::from_secs(30));
    let log = std::fs::read_to_string(c.share().join("vigild.log")).unwrap_or_default();
    assert!(st.is_some(), "the container did not reboot:\n{log}");
    assert!(log.contains("step 1 `reboot` started"), "{log}");
    // The reboot was recorded before it happened, so the next run counts it.
    let db = rusqlite::Connection::open(c.share().join("state/vigil.db")).unwrap();
    let n: i64 = db
        .query_row(
            "SELECT count(*) FROM actions WHERE action = 'reboot'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(n, 1);
    drop(db);
    // A second boot, same state: the global limit (1 per 6h) holds the next reboot.
    let c2 = Container::boot();
    for sub in ["state", "policies"] {
        let (from, to) = (c.share().join(sub), c2.share().join(sub));
        std::fs::create_dir_all(&to).unwrap();
        for e in std::fs::read_dir(&from).unwrap() {
            let e = e.unwrap();
            std::fs::copy(e.path(), to.join(e.file_name())).unwrap();
        }
    }
    c2.write(
        "/run/systemd/system/vt-dead.service",
        "[Service]\nExecStart=/bin/false\n",
    );
    c2.sh("systemctl daemon-reload; systemctl start vt-dead.service || true");
    c2.start_vigild("vigild2.log");
    let log2 = || std::fs::read_to_string(c2.share().join("vigild2.log")).unwrap_or_default();
    wait_for(Duration::from_secs(30), "the held reboot", || {
        log2()
            .contains("held: the global reboot limit is reached")
            .then_some(())
    });
    assert!(
        log2().contains("1 reboot(s) by vigil in the last 6h"),
        "{}",
        log2()
    );
}
