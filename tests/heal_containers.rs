//! Containers on the real dockerd healed by a glob rule: killed again and again, restarted
//! step by step and no more once the limit is reached; a container that recovers resolves
//! its incident.

mod common;
mod docker_support;

use std::time::Duration;

use common::*;
use docker_support::{docker, inspect, require_docker, Containers};

#[test]
fn killed_again_and_again_then_exhausted_and_a_recovering_one_resolves() {
    require_docker();
    let mut cs = Containers::new("heal");
    let prefix = cs.prefix.clone();
    let (flaky, once) = (cs.sleeper("flaky", &[]), cs.sleeper("once", &[]));
    let policy = format!(
        r#"
[[check]]
name = "stack"
probe = "containers"
match = ["{prefix}-*"]
every = "60s"

[[rule]]
name = "heal-stack"
on = "container:{prefix}-*"
when = "crit"
for = "0s"
do = ["restart {{target}}"]
cooldown = "0s"
limit = "2 per 1h"
"#
    );
    let v = VigildBuilder::new().policy(&policy).start();
    let member = |n: &str| format!("check container:{n}");
    wait_for(Duration::from_secs(20), "both members ok", || {
        let l = v.log();
        (l.contains(&format!("{} unknown → ok", member(&flaky)))
            && l.contains(&format!("{} unknown → ok", member(&once))))
        .then_some(())
    });
    let restarts = |n: &str| {
        v.log()
            .matches(&format!(
                "`restart container:{n}` — done: restarted container {n}"
            ))
            .count()
    };

    for round in 1..=2 {
        docker(&["kill", &flaky]);
        wait_for(
            Duration::from_secs(20),
            &format!("restart {round} of {flaky}"),
            || (restarts(&flaky) >= round).then_some(()),
        );
        wait_for(Duration::from_secs(20), "running again", || {
            (inspect(&flaky, "{{.State.Running}}") == "true").then_some(())
        });
    }
    // The third kill: the limit (2 per hour) is spent; the incident is exhausted.
    docker(&["kill", &flaky]);
    wait_for(Duration::from_secs(20), "exhausted", || {
        v.log()
            .contains("rule heal-stack reached its limit")
            .then_some(())
    });
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(restarts(&flaky), 2, "no third restart:\n{}", v.log());
    assert_eq!(inspect(&flaky, "{{.State.Running}}"), "false");

    // The other one fails once, is restarted, recovers: its incident is resolved.
    docker(&["kill", &once]);
    wait_for(Duration::from_secs(20), "the other restart", || {
        (restarts(&once) == 1).then_some(())
    });
    wait_for(Duration::from_secs(20), "resolved", || {
        v.log()
            .contains(&format!("resolved: container:{once} is ok"))
            .then_some(())
    });
    let db = rusqlite::Connection::open(v.state_dir().join("vigil.db")).unwrap();
    let states: Vec<(String, String)> = db
        .prepare("SELECT check_name, state FROM incidents ORDER BY id")
        .unwrap()
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    assert!(
        states.contains(&(format!("container:{flaky}"), "exhausted".to_string())),
        "{states:?}"
    );
    assert!(
        states.contains(&(format!("container:{once}"), "resolved".to_string())),
        "{states:?}"
    );
}
