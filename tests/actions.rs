//! Actuators against the real things: a container restarted, started and stopped by the
//! Docker engine, dangling images pruned, and models unloaded from an Ollama (the stand-in
//! that follows Ollama's API).

mod docker_support;
mod ollama_standin;

use std::process::Command;

use docker_support::{docker, docker_ok, inspect, require_docker, Containers};

use vigil::action::{Actuators, Notification, Outcome};
use vigil::core::action;

#[tokio::test]
async fn container_restart_start_stop() {
    require_docker();
    let mut cs = Containers::new("act");
    let name = cs.sleeper("c", &[]);
    let started = || inspect(&name, "{{.State.StartedAt}}");
    let before = started();
    let acts = Actuators::default();
    let note = Notification::default();
    let run = |text: &str| action::parse(text).unwrap();

    let out = acts
        .run(&run(&format!("restart container:{name}")), &note)
        .await;
    assert_eq!(out, Outcome::Done(format!("restarted container {name}")));
    assert_ne!(started(), before, "a new run began");
    assert_eq!(
        docker(&["inspect", "-f", "{{.State.Running}}", &name]),
        "true"
    );

    let out = acts
        .run(&run(&format!("stop container:{name}")), &note)
        .await;
    assert_eq!(out, Outcome::Done(format!("stopped container {name}")));
    assert_eq!(
        docker(&["inspect", "-f", "{{.State.Running}}", &name]),
        "false"
    );
    let out = acts
        .run(&run(&format!("stop container:{name}")), &note)
        .await;
    assert!(
        matches!(out, Outcome::Skipped(ref s) if s.contains("already stopped")),
        "{out:?}"
    );

    let out = acts
        .run(&run(&format!("start container:{name}")), &note)
        .await;
    assert_eq!(out, Outcome::Done(format!("started container {name}")));
    assert_eq!(
        docker(&["inspect", "-f", "{{.State.Running}}", &name]),
        "true"
    );

    let out = acts
        .run(&run("restart container:vigil-no-such-container"), &note)
        .await;
    assert_eq!(
        out,
        Outcome::Failed("container vigil-no-such-container does not exist".into())
    );
    drop(cs);
}

#[tokio::test]
async fn a_dead_engine_is_a_clear_failure() {
    let acts = Actuators {
        docker_host: Some("unix:///nonexistent/docker.sock".into()),
        ..Default::default()
    };
    let out = acts
        .run(
            &action::parse("restart container:x").unwrap(),
            &Notification::default(),
        )
        .await;
    assert!(
        matches!(out, Outcome::Failed(ref s) if s.contains("/nonexistent/docker.sock")),
        "{out:?}"
    );
}

#[tokio::test]
async fn unload_models_empties_the_ollama_behind_a_check() {
    let ollama = ollama_standin::Standin::start();
    ollama.load(ollama_standin::LLAMA);
    ollama.load(ollama_standin::QWEN);
    let acts = Actuators {
        ollama_urls: [("ollama".to_string(), ollama.url())].into(),
        ..Default::default()
    };
    let out = acts
        .run(
            &action::parse("unload-models ollama").unwrap(),
            &Notification::default(),
        )
        .await;
    let Outcome::Done(s) = out else {
        panic!("{out:?}")
    };
    assert!(
        s.contains(ollama_standin::LLAMA) && s.contains(ollama_standin::QWEN),
        "{s}"
    );
    assert!(ollama.loaded().is_empty());
    let out = acts
        .run(
            &action::parse("unload-models ollama").unwrap(),
            &Notification::default(),
        )
        .await;
    assert!(
        matches!(out, Outcome::Skipped(ref s) if s.contains("no model loaded")),
        "{out:?}"
    );
    let out = acts
        .run(
            &action::parse("unload-models other").unwrap(),
            &Notification::default(),
        )
        .await;
    assert!(
        matches!(out, Outcome::Failed(ref s) if s.contains("no ollama check named")),
        "{out:?}"
    );
}

#[tokio::test]
async fn prune_removes_dangling_images_only() {
    require_docker();
    // An untagged image: exactly what `prune docker` is for.
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("img")).unwrap();
    std::fs::write(
        dir.path().join("img/marker"),
        format!("{}", std::process::id()),
    )
    .unwrap();
    let tar = dir.path().join("x.tar");
    let st = Command::new("tar")
        .arg("-C")
        .arg(dir.path().join("img"))
        .arg("-cf")
        .arg(&tar)
        .arg(".")
        .status()
        .unwrap();
    assert!(st.success());
    let id = docker(&["import", tar.to_str().unwrap()]);
    assert_eq!(
        docker(&["image", "inspect", "-f", "{{len .RepoTags}}", &id]),
        "0"
    );
    let out = Actuators::default()
        .run(
            &action::parse("prune docker").unwrap(),
            &Notification::default(),
        )
        .await;
    assert!(
        matches!(out, Outcome::Done(ref s) if s.starts_with("removed ")),
        "{out:?}"
    );
    assert!(
        !docker_ok(&["image", "inspect", &id]),
        "the dangling image is gone"
    );
    assert!(
        docker_ok(&["image", "inspect", docker_support::IMAGE]),
        "tagged images stay"
    );
}
