//! The system test's sandbox steps: a `hook` action and an `exec` probe of the installed
//! vigild run through vigil-run.socket, each in a `vigil-run@….service` unit of its own, as
//! a dynamic user without groups, and cannot read vigil.db or reach either Docker socket
//! (root can, in the same container: the denials are the sandbox's doing). What they could
//! do comes back in the action's result and the check's detail; a hook over its timeout is
//! killed with its unit.

use std::time::Duration;

use crate::nspawn::Container;
use crate::{action_result, field, journal, vigilctl_json, wait_for};

/// Tries what a hook should not be able to do, and says what it could, on one line each.
const PROBE: &str = "id; \
    if head -c 16 /var/lib/vigil/vigil.db >/dev/null 2>&1; then echo db=read; else echo db=denied; fi; \
    for s in /var/run/docker.sock /run/vigil-docker-proxy/docker.sock; do \
      if curl -sS -m 3 -o /dev/null --unix-socket $s http://docker/version 2>/dev/null; \
      then echo docker=reached:$s; else echo docker=refused:$s; fi; done";

fn settings() -> String {
    let argv = serde_json::to_string(&["/bin/sh", "-c", PROBE]).unwrap();
    format!(
        "\n[hooks.sandbox-probe]\ncommand = {argv}\ntimeout = \"20s\"\n\n\
         [hooks.sandbox-slow]\ncommand = [\"/bin/sleep\", \"300\"]\ntimeout = \"2s\"\n"
    )
}

fn policy() -> String {
    let argv = serde_json::to_string(&["/bin/sh", "-c", &format!("{PROBE}; exit 1")]).unwrap();
    format!(
        r#"
[[check]]
name = "sandbox-exec"
probe = "exec"
command = {argv}
every = "5s"
timeout = "4s"

[[check]]
name = "sandbox-trigger"
probe = "exec"
command = ["/bin/false"]
every = "1s"

[[rule]]
name = "system-test-hook-sandbox"
on = "sandbox-trigger"
when = "crit"
do = ["hook sandbox-probe"]
cooldown = "1h"
limit = "1 per 1h"

[[rule]]
name = "system-test-hook-slow"
on = "sandbox-trigger"
when = "crit"
do = ["hook sandbox-slow"]
cooldown = "1h"
limit = "1 per 1h"
"#
    )
}

/// What `PROBE` wrote must show a dynamic user (not vigil, in no docker or vigil group) that
/// read nothing of vigil's and reached neither Docker socket.
fn assert_confined(said: &str, vigil_uid: &str, docker_gid: &str, vigil_gid: &str) {
    let at = said
        .find("uid=")
        .unwrap_or_else(|| panic!("no `id` output in: {said}"));
    let id = said[at..].split(" | ").next().unwrap_or("");
    eprintln!("system: sandboxed run said `{id}`");
    assert!(id.contains("(vigil-run)"), "not the dynamic user: {id}");
    let uid: String = id
        .trim_start_matches("uid=")
        .chars()
        .take_while(char::is_ascii_digit)
        .collect();
    assert_ne!(uid, vigil_uid, "{id}");
    assert_ne!(uid, "0", "{id}");
    let groups = id.split("groups=").nth(1).unwrap_or("");
    for g in groups.split(',') {
        let gid: String = g.chars().take_while(char::is_ascii_digit).collect();
        assert!(
            gid != docker_gid && gid != vigil_gid,
            "in group {g} (docker {docker_gid}, vigil {vigil_gid}): {id}"
        );
    }
    assert!(said.contains("db=denied"), "{said}");
    assert!(!said.contains("db=read"), "{said}");
    for s in [
        "/var/run/docker.sock",
        "/run/vigil-docker-proxy/docker.sock",
    ] {
        assert!(
            said.contains(&format!("docker=refused:{s}")),
            "{s} was reachable: {said}"
        );
    }
}

pub fn run(c: &Container) {
    // The same things are there for root: what the sandbox is denied exists and works.
    c.sh("head -c 16 /var/lib/vigil/vigil.db >/dev/null");
    c.sh("curl -sS -m 3 -o /dev/null --unix-socket /var/run/docker.sock http://docker/version");
    assert_eq!(
        c.sh("systemctl is-active vigil-run.socket").trim(),
        "active"
    );
    assert_eq!(
        c.sh("stat -c '%a %U %G %F' /run/vigil-run.sock").trim(),
        "660 root vigil socket"
    );
    let vigil_uid = c.sh("id -u vigil").trim().to_string();
    let vigil_gid = c.sh("getent group vigil | cut -d: -f3").trim().to_string();
    let docker_gid = c.sh("getent group docker | cut -d: -f3").trim().to_string();
    // vigild says which way hooks run.
    let said = journal(c, "-u vigild.service VIGIL_EVENT=sandbox");
    assert!(
        said.iter()
            .any(|e| field(e, "MESSAGE").contains("run in vigil-run@.service units")),
        "vigild did not say hooks run sandboxed: {said:?}"
    );

    c.sh(&format!(
        "printf '%s' '{}' >> /etc/vigil/vigil.toml",
        settings().replace('\'', "'\\''")
    ));
    c.write("/etc/vigil/policies.d/60-system-hooks.toml", &policy());
    c.sh("systemctl reload vigild.service");

    // The hook action: its result names the unit and the user, and carries its output.
    let hook = action_result(c, "system-test-hook-sandbox");
    eprintln!("system: hook result: {hook}");
    assert!(
        hook.contains("done: hook sandbox-probe succeeded (in vigil-run@"),
        "{hook}"
    );
    assert!(hook.contains(".service as vigil-run, uid "), "{hook}");
    assert_confined(&hook, &vigil_uid, &docker_gid, &vigil_gid);
    // The sandbox's own journal has the run, under a vigil-run@ unit.
    let runs = journal(c, "-u 'vigil-run@*'");
    assert!(
        runs.iter()
            .any(|e| field(e, "_SYSTEMD_UNIT").starts_with("vigil-run@")
                && field(e, "MESSAGE").contains("hook sandbox-probe: ")
                && field(e, "MESSAGE").contains("as vigil-run (uid ")),
        "no sandbox journal entry of the hook: {runs:?}"
    );

    // The exec probe: the same confinement, its output in the check's detail.
    let detail = wait_for(
        c,
        "the sandbox-exec check's detail",
        Duration::from_secs(30),
        || {
            let st = vigilctl_json(c, "status");
            st["checks"]
                .as_array()
                .and_then(|cs| cs.iter().find(|ch| ch["name"] == "sandbox-exec"))
                .and_then(|ch| ch["detail"].as_str())
                .filter(|d| d.contains("uid="))
                .map(str::to_string)
                .ok_or_else(|| format!("{st}"))
        },
    );
    eprintln!("system: exec probe detail: {detail}");
    assert!(detail.contains("exited 1"), "{detail}");
    assert_confined(&detail, &vigil_uid, &docker_gid, &vigil_gid);

    // Over its timeout: killed, and its unit with it.
    let slow = action_result(c, "system-test-hook-slow");
    eprintln!("system: slow hook result: {slow}");
    assert!(
        slow.contains("failed: hook sandbox-slow timed out after 2s and was killed (in vigil-run@"),
        "{slow}"
    );
    wait_for(c, "no sleep 300 left", Duration::from_secs(15), || {
        let ps = c.sh("ps -eo user:20,args | grep '[s]leep 300' || true");
        if ps.trim().is_empty() {
            Ok(())
        } else {
            Err(ps)
        }
    });

    c.sh("rm /etc/vigil/policies.d/60-system-hooks.toml && systemctl reload vigild.service");
    // No sandbox unit is left behind as failed (CollectMode=inactive-or-failed).
    let failed =
        c.sh("systemctl list-units --all --no-legend --plain --state=failed 'vigil-run@*'");
    assert!(failed.trim().is_empty(), "{failed}");
}
