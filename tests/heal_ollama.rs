//! A hung Ollama (the stand-in, which follows Ollama's API) gets its ladder: unload its
//! models, then a restart of its container (a real container on the real dockerd).

mod common;
mod ollama_standin;

use std::process::Command;
use std::time::Duration;

use common::*;
use ollama_standin::{Mode, Standin, LLAMA};

fn docker(args: &[&str]) -> String {
    let out = Command::new("docker")
        .args(args)
        .output()
        .expect("docker CLI (scripts/test.sh installs docker.io)");
    assert!(
        out.status.success(),
        "docker {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

struct Rm(String);
impl Drop for Rm {
    fn drop(&mut self) {
        let _ = Command::new("docker").args(["rm", "-f", &self.0]).output();
    }
}

#[test]
fn a_hung_ollama_gets_unload_then_a_container_restart() {
    let name = format!("vigil-ollama-{}", std::process::id());
    docker(&[
        "run",
        "-d",
        "--name",
        &name,
        "vigil-test/busybox:1",
        "/bin/sh",
        "-c",
        "trap 'exit 0' TERM; while true; do sleep 1; done",
    ]);
    let _rm = Rm(name.clone());
    let started = || docker(&["inspect", "-f", "{{.State.StartedAt}}", &name]);
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
