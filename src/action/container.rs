//! `restart|start|stop container:NAME` over the Docker Engine API.

use super::outcome::Outcome;
use crate::core::metric::human_bytes;
use crate::sys::docker::client_for as client;

/// Seconds Docker waits for a container to stop before it kills it.
const STOP_GRACE_SECS: i32 = 10;
/// Time one Docker request of an action may take.
const ACTION_REQUEST_SECS: u64 = 55;

/// The probes' Docker client with a longer request time: stopping waits for the
/// container's grace time, and pruning can take long.
async fn action_client(host: Option<&str>) -> Result<bollard::Docker, String> {
    client(host)?
        .with_timeout(std::time::Duration::from_secs(ACTION_REQUEST_SECS))
        .negotiate_version()
        .await
        .map_err(|e| format!("Docker engine unreachable: {e}"))
}

/// Restarts, starts or stops a container and says how it went.
pub async fn act(verb: &str, name: &str, host: Option<&str>) -> Outcome {
    let docker = match action_client(host).await {
        Ok(d) => d,
        Err(e) => return Outcome::Failed(e),
    };
    use bollard::query_parameters::{RestartContainerOptions, StopContainerOptions};
    if verb != "restart" {
        // Starting a running container or stopping a stopped one is nothing to do.
        let running = docker
            .inspect_container(name, None)
            .await
            .ok()
            .and_then(|c| c.state)
            .and_then(|s| s.running);
        match (verb, running) {
            ("start", Some(true)) => {
                return Outcome::Skipped(format!("container {name} was already running"))
            }
            ("stop", Some(false)) => {
                return Outcome::Skipped(format!("container {name} was already stopped"))
            }
            _ => {}
        }
    }
    let r = match verb {
        "restart" => {
            let opts = RestartContainerOptions {
                t: Some(STOP_GRACE_SECS),
                signal: None,
            };
            docker.restart_container(name, Some(opts)).await
        }
        "start" => docker.start_container(name, None).await,
        "stop" => {
            let opts = StopContainerOptions {
                t: Some(STOP_GRACE_SECS),
                signal: None,
            };
            docker.stop_container(name, Some(opts)).await
        }
        other => return Outcome::Failed(format!("unknown container verb {other}")),
    };
    match r {
        Ok(()) => Outcome::Done(format!("{verb}ed container {name}").replace("stoped", "stopped")),
        Err(bollard::errors::Error::DockerResponseServerError {
            status_code: 404, ..
        }) => Outcome::Failed(format!("container {name} does not exist")),
        Err(bollard::errors::Error::DockerResponseServerError {
            status_code: 304, ..
        }) => Outcome::Skipped(format!(
            "container {name} was already {}",
            if verb == "stop" { "stopped" } else { "running" }
        )),
        Err(e) => Outcome::Failed(format!("{verb} container {name}: {e}")),
    }
}

/// `prune docker`: dangling images and build cache only (never tagged images, never volumes).
pub async fn prune(host: Option<&str>) -> Outcome {
    let docker = match action_client(host).await {
        Ok(d) => d,
        Err(e) => return Outcome::Failed(e),
    };
    let filters =
        std::collections::HashMap::from([("dangling".to_string(), vec!["true".to_string()])]);
    let images = docker
        .prune_images(Some(bollard::query_parameters::PruneImagesOptions {
            filters: Some(filters),
        }))
        .await;
    let (n, freed) = match images {
        Ok(r) => (
            r.images_deleted.map_or(0, |v| v.len()),
            r.space_reclaimed.unwrap_or(0),
        ),
        Err(e) => return Outcome::Failed(format!("pruning dangling images: {e}")),
    };
    // The build cache: absent on engines without BuildKit, which is not a failure.
    let cache = match docker
        .prune_build(None::<bollard::query_parameters::PruneBuildOptions>)
        .await
    {
        Ok(r) => r.space_reclaimed.unwrap_or(0),
        Err(_) => 0,
    };
    Outcome::Done(format!(
        "removed {n} dangling image(s), reclaimed {}",
        human_bytes((freed + cache) as f64)
    ))
}
