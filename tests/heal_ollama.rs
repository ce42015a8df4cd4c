//! A hung Ollama (the stand-in, which follows Ollama's API) gets its ladder: unload its
//! models, then a restart of its container (a real container on the real dockerd).

mod common;
mod docker_support;
mod ollama_standin;

use std::time::Duration;

use common::*;
use docker_support::{inspect, require_docker, Containers};
use ollama_standin::{Mode, Standin, LLAMA};

#[test]
fn a_hung_ollama_gets_unload_then_a_container_restart() {
    require_docker();
    let mut cs = Containers::new("ollama");
    let name = cs.sleeper("c", &[]);
    let started = || inspect(&name, "{{.State.StartedAt}}");
    let before = started();

    let ollama = Standin::start();
    ollama.load(LLAMA);
    let policy = format!(
        r#"
[[check]]
name = "ollama"
probe = "ollama"
url = "{}"
every = "200ms"
timeout = "300ms"

[[rule]]
name = "heal-ollama"
on = "ollama"
when = "crit"
for = "0s"
do = ["unload-models ollama", "restart container:{name}"]
cooldown = "500ms"
limit = "2 per 1h"
"#,
        ollama.url()
    );
    let v = VigildBuilder::new().policy(&policy).start();
    v.wait_status("ok");
    ollama.set_mode(Mode::Hang);
    wait_for(Duration::from_secs(40), "both steps", || {
        let log = v.log();
        (log.contains("step 1 `unload-models ollama` — ")
            && log.contains(&format!("step 2 `restart container:{name}` — ")))
        .then_some(())
    });
    let log = v.log();
    // Step 1 cannot reach a hung server: recorded as failed, with the reason; step 2 works.
    assert!(
        log.contains("step 1 `unload-models ollama` — failed: "),
        "{log}"
    );
    assert!(
        log.contains(&format!(
            "step 2 `restart container:{name}` — done: restarted container {name}"
        )),
        "{log}"
    );
    assert_ne!(started(), before, "the container was restarted");
    // The limit is spent; once Ollama answers again the incident resolves.
    ollama.set_mode(Mode::Healthy);
    wait_for(Duration::from_secs(20), "resolved", || {
        v.log().contains("resolved: ollama is ok").then_some(())
    });
}
