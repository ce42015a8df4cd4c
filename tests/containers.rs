//! The `container` and `containers` probes against the real dockerd and the busybox test
//! image (scripts/test.sh starts and builds both; a test fails loudly when either is
//! missing). Checks poll every 60 s, so every change seen within seconds came through the
//! events stream.

mod common;
mod docker_support;
mod faults_support;
mod reliability;

use std::sync::RwLock;
use std::time::Duration;

use common::{Vigild, VigildBuilder};
use docker_support::*;

/// Ordinary tests share dockerd; the dockerd restart test takes it alone.
static DOCKERD: RwLock<()> = RwLock::new(());

fn shared() -> std::sync::RwLockReadGuard<'static, ()> {
    DOCKERD.read().unwrap_or_else(|p| p.into_inner())
}

/// Well under the 60 s polling interval: a change seen this fast came from an event.
const PROMPT: Duration = Duration::from_secs(15);

fn start(policy: &str) -> Vigild {
    require_docker();
    VigildBuilder::new().policy(policy).start()
}

fn container_check(check: &str, container: &str) -> String {
    format!(
        "[[check]]\nname = \"{check}\"\nprobe = \"container\"\ncontainer = \"{container}\"\nevery = \"60s\"\n"
    )
}

fn containers_check(check: &str, globs: &[&str]) -> String {
    let list: Vec<String> = globs.iter().map(|g| format!("\"{g}\"")).collect();
    format!(
        "[[check]]\nname = \"{check}\"\nprobe = \"containers\"\nmatch = [{}]\nevery = \"60s\"\n",
        list.join(", ")
    )
}

/// Waits until `check`'s latest stored transition goes to `to` (and its detail has `needle`).
fn wait_transition(v: &Vigild, check: &str, to: &str, needle: &str, timeout: Duration) -> Row {
    let mut found = None;
    wait_until(
        timeout,
        &format!("check {check} → {to} with {needle:?}"),
        || {
            format!(
                "transitions: {:#?}\nvigild log:\n{}",
                transitions(&v.state_dir()),
                v.log()
            )
        },
        || {
            found = last_status(&transitions(&v.state_dir()), check)
                .filter(|r| r.to == to && r.detail.contains(needle));
            found.is_some()
        },
    );
    found.unwrap()
}

#[test]
fn a_killed_container_turns_crit_at_once_and_ok_when_started_again() {
    let _g = shared();
    let mut cs = Containers::new("kill");
    let name = cs.sleeper("web", &[]);
    let v = start(&container_check("web", &name));
    wait_transition(&v, "web", "ok", &format!("{name}: running"), PROMPT);

    docker(&["kill", &name]);
    let row = wait_transition(&v, "web", "crit", "exited (code 137)", PROMPT);
    assert_eq!(row.from, "ok");
    assert_eq!(row.detail, format!("{name}: exited (code 137)"));

    docker(&["start", &name]);
    let row = wait_transition(&v, "web", "ok", "running", PROMPT);
    assert_eq!(row.from, "crit");
}

#[test]
fn an_unhealthy_container_turns_crit() {
    let _g = shared();
    let mut cs = Containers::new("health");
    let name = cs.run(
        "api",
        &[
            "--health-cmd",
            "test -e /ok",
            "--health-interval",
            "1s",
            "--health-retries",
            "1",
        ],
        &["sh", "-c", "echo > /ok; exec sleep 100000"],
    );
    let v = start(&container_check("api", &name));
    wait_transition(&v, "api", "ok", "running, healthy", PROMPT);

    docker(&["exec", &name, "busybox", "rm", "/ok"]);
    let row = wait_transition(&v, "api", "crit", "running, unhealthy", PROMPT);
    assert_eq!(row.from, "ok");
    assert_eq!(inspect(&name, "{{.State.Health.Status}}"), "unhealthy");

    // Healthy again: ok again, from the health_status event.
    docker(&["exec", &name, "sh", "-c", "echo > /ok"]);
    wait_transition(&v, "api", "ok", "running, healthy", PROMPT);
}

#[test]
fn an_oom_killed_container_is_crit_and_says_so() {
    let _g = shared();
    let mut cs = Containers::new("oom");
    let name = cs.run(
        "hog",
        &["--memory", "8m", "--memory-swap", "8m"],
        &["sh", "-c", "sleep 2; x=a; while true; do x=$x$x; done"],
    );
    let v = start(&container_check("hog", &name));
    let row = wait_transition(&v, "hog", "crit", "OOM-killed", Duration::from_secs(30));
    assert_eq!(
        inspect(&name, "{{.State.OOMKilled}}"),
        "true",
        "the kernel did not OOM-kill the container"
    );
    assert!(
        row.detail
            .starts_with(&format!("{name}: exited (code 137, OOM-killed)")),
        "{row:?}"
    );
}

#[test]
fn a_container_in_a_crash_loop_under_its_restart_policy_turns_crit() {
    let _g = shared();
    let mut cs = Containers::new("loop");
    let started = std::time::Instant::now();
    let name = cs.run(
        "db",
        &["--restart", "always"],
        &["sh", "-c", "sleep 0.1; exit 1"],
    );
    let glob = format!("{}-*", cs.prefix);
    let policy = format!(
        "{}{}",
        container_check("db", &name),
        containers_check("apps", &[&glob])
    );
    let v = start(&policy);
    // Docker restarts it itself (after 0.1 s, 0.2 s, 0.4 s, … of back-off): `restarting` is
    // only warn, the rising restart count makes it crit.
    let row = wait_transition(&v, "db", "crit", "crash loop", Duration::from_secs(60));
    eprintln!(
        "crash loop seen {:?} after the container's first start: {}",
        started.elapsed(),
        row.detail
    );
    let prefix = format!("{name}: crash loop: ");
    let n: u64 = row
        .detail
        .strip_prefix(&prefix)
        .and_then(|rest| rest.split_once(" restarts in "))
        .and_then(|(n, _)| n.parse().ok())
        .unwrap_or_else(|| panic!("{row:?}"));
    assert!(n >= 3, "{row:?}");
    assert!(
        inspect(&name, "{{.RestartCount}}").parse::<u64>().unwrap() >= n,
        "{row:?}"
    );
    let member = format!("container:{name}");
    wait_transition(&v, &member, "crit", "crash loop", Duration::from_secs(30));
    // It stays crit while Docker goes on restarting it.
    std::thread::sleep(Duration::from_secs(3));
    let rows = transitions(&v.state_dir());
    for c in ["db", member.as_str()] {
        let last = last_status(&rows, c).unwrap();
        assert_eq!(last.to, "crit", "{c}: {rows:#?}");
        assert!(last.detail.contains("crash loop"), "{c}: {rows:#?}");
    }
}

/// The checks vigilctl lists (over vigild's private bus), by name: (status, detail).
fn checks(bus: &common::Bus) -> std::collections::BTreeMap<String, (String, String)> {
    let (code, out, err) = common::vigilctl(&["--bus", &bus.address, "--json", "checks"]);
    assert_eq!(code, 0, "vigilctl checks: {err}");
    let doc: serde_json::Value = serde_json::from_str(&out).unwrap();
    doc.as_array()
        .unwrap()
        .iter()
        .map(|c| {
            (
                c["name"].as_str().unwrap().to_string(),
                (
                    c["status"].as_str().unwrap().to_string(),
                    c["detail"].as_str().unwrap_or_default().to_string(),
                ),
            )
        })
        .collect()
}

#[test]
fn a_removed_container_leaves_the_group_and_its_own_check_says_it_is_gone() {
    let _g = shared();
    let mut cs = Containers::new("rm");
    let keep = cs.sleeper("keep", &[]);
    let gone = cs.sleeper("gone", &[]);
    let glob = format!("{}-*", cs.prefix);
    let policy = format!(
        "{}{}",
        containers_check("apps", &[&glob]),
        container_check("gone", &gone)
    );
    require_docker();
    let bus = common::Bus::start();
    let v = VigildBuilder::new().policy(&policy).bus(&bus).start();
    wait_transition(&v, &format!("container:{keep}"), "ok", "running", PROMPT);
    wait_transition(&v, &format!("container:{gone}"), "ok", "running", PROMPT);
    wait_transition(&v, "gone", "ok", "running", PROMPT);
    let member = format!("container:{gone}");
    assert!(checks(&bus).contains_key(&member));

    docker(&["rm", "-f", &gone]);
    cs.forget(&gone);
    // The group's member check disappears, from every surface.
    let removed = format!("check {member} removed");
    wait_until(PROMPT, &removed, || v.log(), || v.log().contains(&removed));
    wait_until(
        PROMPT,
        "the member to leave vigilctl checks",
        || format!("{:#?}", checks(&bus)),
        || !checks(&bus).contains_key(&member),
    );
    // The check naming it is crit, and says why.
    let want = format!("container {gone} does not exist");
    wait_until(
        PROMPT,
        &want,
        || format!("{:#?}", checks(&bus)),
        || {
            checks(&bus)
                .get("gone")
                .is_some_and(|(s, d)| s == "crit" && d.starts_with(&want))
        },
    );
    wait_transition(&v, "gone", "crit", "", PROMPT);
    // The other member stays, and stays ok.
    let now = checks(&bus);
    assert_eq!(now[&format!("container:{keep}")].0, "ok", "{now:#?}");
    let rows = transitions(&v.state_dir());
    let keep_rows: Vec<_> = rows
        .iter()
        .filter(|r| r.check == format!("container:{keep}"))
        .collect();
    assert_eq!(keep_rows.len(), 1, "{keep_rows:?}");
    assert_eq!(keep_rows[0].to, "ok");
}

#[test]
fn globs_pick_some_containers_and_not_others_and_new_ones_appear() {
    let _g = shared();
    let mut cs = Containers::new("glob");
    let app1 = cs.sleeper("app-1", &[]);
    let app2 = cs.sleeper("app-2", &[]);
    let db = cs.sleeper("db", &[]);
    let other = cs.sleeper("other", &[]);
    let dbx = cs.sleeper("dbx", &[]);
    let apps = format!("{}-app-*", cs.prefix);
    let policy = containers_check("apps", &[&apps, &db]);
    let v = start(&policy);
    for n in [&app1, &app2, &db] {
        wait_transition(&v, &format!("container:{n}"), "ok", "running", PROMPT);
    }
    // Give an unmatched member every chance to show up: the group has been read by now.
    wait_transition(&v, "apps", "ok", "3 matched: 3 ok", PROMPT);
    let log = v.log();
    for n in [&other, &dbx] {
        assert!(
            !log.contains(&format!("check container:{n} added")),
            "{n}\n{log}"
        );
    }
    assert!(transitions(&v.state_dir())
        .iter()
        .all(|r| r.check != format!("container:{other}") && r.check != format!("container:{dbx}")));

    // A new matching container appears as a check (from its create/start events), and a
    // stopped member is crit while the group says so.
    let app3 = cs.sleeper("app-3", &[]);
    wait_transition(&v, &format!("container:{app3}"), "ok", "running", PROMPT);
    docker(&["kill", &app1]);
    wait_transition(
        &v,
        &format!("container:{app1}"),
        "crit",
        "exited (code 137)",
        PROMPT,
    );
    wait_transition(
        &v,
        "apps",
        "crit",
        "4 matched: 3 ok, 0 warn, 1 crit",
        PROMPT,
    );
}

#[test]
fn dockerd_stopped_and_started_makes_checks_unknown_then_ok_with_no_false_alarm() {
    let _g = DOCKERD.write().unwrap_or_else(|p| p.into_inner());
    let mut dockerd = DockerdGuard::take();
    let mut cs = Containers::new("restart");
    let plain = cs.sleeper("plain", &["--restart", "always", "--stop-timeout", "1"]);
    let healthy = cs.sleeper(
        "healthy",
        &[
            "--restart",
            "always",
            "--stop-timeout",
            "1",
            "--health-cmd",
            "true",
            "--health-interval",
            "1s",
        ],
    );
    let glob = format!("{}-*", cs.prefix);
    // Rules as eager as they come (crit, at once, no cooldown): a check that is only
    // unknown while the engine is away must not set them off.
    let rules = format!(
        r#"
[[rule]]
name = "heal-members"
on = "container:{glob}"
when = "crit"
for = "0s"
cooldown = "0s"
do = ["restart {{target}}"]

[[rule]]
name = "heal-plain"
on = "plain"
when = "crit"
for = "0s"
cooldown = "0s"
do = ["restart container:{plain}"]
"#
    );
    let policy = format!(
        "{}{}{rules}",
        containers_check("apps", &[&glob]),
        container_check("plain", &plain)
    );
    let v = start(&policy);
    let db = v.state_dir().join("vigil.db");
    let checks = [
        "plain".to_string(),
        "apps".to_string(),
        format!("container:{plain}"),
        format!("container:{healthy}"),
    ];
    wait_transition(&v, "plain", "ok", "running", PROMPT);
    wait_transition(&v, &format!("container:{plain}"), "ok", "running", PROMPT);
    wait_transition(
        &v,
        &format!("container:{healthy}"),
        "ok",
        "running, healthy",
        PROMPT,
    );

    let before = faults_support::rows(&db);
    let polled = faults_support::HeartbeatPoller::start(v.port);
    let outage = std::time::Instant::now();
    dockerd.stop();
    for c in &checks {
        let row = wait_transition(&v, c, "unknown", "", PROMPT);
        assert_eq!(row.from, "ok", "{row:?}");
    }
    let row = last_status(&transitions(&v.state_dir()), "plain").unwrap();
    assert!(
        row.detail
            .contains("Docker engine at unix:///var/run/docker.sock unreachable"),
        "{row:?}"
    );

    dockerd.start();
    // Docker restarts the containers (restart policy) and resets health to `starting`; the
    // first successful reads say so, and nothing is reported from before the outage.
    for c in &checks {
        wait_transition(&v, c, "ok", "", Duration::from_secs(30));
    }
    // A few more seconds of the engine back, for a late false alarm to show.
    std::thread::sleep(Duration::from_secs(3));
    let polled = polled.finish();
    let outage = outage.elapsed();
    let after = faults_support::rows(&db);
    let lost = before.lost_in(&after);
    let actions_taken = after.actions.len();
    let incidents = after.incidents.len();
    let vigil_restarts = v.log().matches("`restart container:").count();
    let rows = transitions(&v.state_dir());
    let false_alarms = rows
        .iter()
        .filter(|r| checks.contains(&r.check) && r.to == "crit")
        .count();
    let pass = polled.all_answered()
        && lost == 0
        && actions_taken == 0
        && incidents == 0
        && vigil_restarts == 0
        && false_alarms == 0;
    reliability::record(
        "dockerd_stopped_and_started_makes_checks_unknown_then_ok_with_no_false_alarm",
        "the real dockerd stopped (SIGTERM) and started again under vigild watching 2 \
         containers (restart policy always) with crit → restart rules at 0 s",
        &format!(
            "4/4 checks unknown while down, ok again, {} s in all; {}; {false_alarms} false \
             alarms, {incidents} incidents, {actions_taken} actions, {vigil_restarts} restarts \
             by vigild; {}",
            outage.as_secs(),
            polled.figure(),
            faults_support::kept_figure(&before, &after)
        ),
        pass,
    );
    assert!(polled.all_answered(), "{polled:?}");
    assert_eq!(lost, 0, "rows lost: {before:#?}\nafter: {after:#?}");
    assert_eq!(
        (actions_taken, incidents, vigil_restarts),
        (0, 0, 0),
        "no action against a check that was only unknown:\n{}",
        v.log()
    );
    let back = rows
        .iter()
        .position(|r| r.check == "plain" && r.to == "unknown")
        .unwrap();
    for r in rows.iter().filter(|r| checks.contains(&r.check)) {
        assert_ne!(r.to, "crit", "false alarm: {r:?}\nall: {rows:#?}");
    }
    for r in &rows[back..] {
        if r.to == "warn" {
            // Only the health check's own `starting` phase after the restart.
            assert!(
                r.detail.contains("health starting")
                    || (r.check == "apps" && r.detail.contains("1 warn")),
                "unexpected warn: {r:?}\nall: {rows:#?}"
            );
        }
    }
    assert!(
        rows[back..]
            .iter()
            .filter(|r| r.check == "plain" || r.check == format!("container:{plain}"))
            .all(|r| r.to == "ok" || r.to == "unknown"),
        "the plain container's checks went straight back to ok: {rows:#?}"
    );
    assert!(
        v.log()
            .contains("following container events of the Docker engine"),
        "{}",
        v.log()
    );
    // And the events stream is back: a kill is seen at once again, and the rules were live
    // all along: this one is acted on (Docker's own restart policy off, so vigild's acts).
    docker(&["update", "--restart", "no", &plain]);
    docker(&["kill", &plain]);
    wait_until(
        PROMPT,
        "the kill after the restart to be seen",
        || format!("{:#?}", transitions(&v.state_dir())),
        || {
            transitions(&v.state_dir()).iter().any(|r| {
                r.check == "plain" && (r.to == "crit" || r.to == "warn") && r.detail.contains("137")
            })
        },
    );
    wait_until(
        PROMPT,
        "vigild's restart of the killed container",
        || v.log(),
        || {
            v.log()
                .contains(&format!("`restart container:{plain}` — done"))
        },
    );
}
