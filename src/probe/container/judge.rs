//! Judging one container from its inspect: status, one line of detail, metrics.

use bollard::models::{ContainerInspectResponse, ContainerStateStatusEnum, HealthStatusEnum};

use crate::core::health::Status;
use crate::core::metric::{Metrics, Reading};

/// Turns an inspect into a reading: status, one line of detail, metrics.
pub fn judge(name: &str, c: &ContainerInspectResponse) -> Reading {
    let state = c.state.clone().unwrap_or_default();
    let status = state.status.unwrap_or(ContainerStateStatusEnum::EMPTY);
    let exit_code = state.exit_code.unwrap_or(0);
    let oom = state.oom_killed.unwrap_or(false);
    let restarts = c.restart_count.unwrap_or(0);
    let health = state.health.as_ref();
    let health_status = health
        .and_then(|h| h.status)
        .filter(|s| !matches!(s, HealthStatusEnum::EMPTY | HealthStatusEnum::NONE));

    let mut m = Metrics::new();
    m.insert("restart_count".into(), restarts as f64);
    m.insert("exit_code".into(), exit_code as f64);
    m.insert("oom_killed".into(), if oom { 1.0 } else { 0.0 });
    let running = state.running.unwrap_or(false);
    m.insert("running".into(), if running { 1.0 } else { 0.0 });
    if let Some(streak) = health.and_then(|h| h.failing_streak) {
        if health_status.is_some() {
            m.insert("health_failing_streak".into(), streak as f64);
        }
    }

    let exit_text = || {
        let mut s = format!("code {exit_code}");
        if oom {
            s.push_str(", OOM-killed");
        }
        s
    };
    let (st, what) = match status {
        ContainerStateStatusEnum::RUNNING => match health_status {
            Some(HealthStatusEnum::UNHEALTHY) => {
                let last = health
                    .and_then(|h| h.log.as_ref())
                    .and_then(|l| l.last())
                    .and_then(|r| r.output.as_deref())
                    .map(|o| o.trim())
                    .filter(|o| !o.is_empty())
                    .map(|o| format!(" (last check: {})", truncate(o, 120)))
                    .unwrap_or_default();
                (Status::Crit, format!("running, unhealthy{last}"))
            }
            Some(HealthStatusEnum::STARTING) => (Status::Warn, "running, health starting".into()),
            Some(HealthStatusEnum::HEALTHY) => (Status::Ok, "running, healthy".into()),
            _ => (Status::Ok, "running".into()),
        },
        ContainerStateStatusEnum::PAUSED => (Status::Warn, "paused".into()),
        ContainerStateStatusEnum::RESTARTING => (
            Status::Warn,
            format!("restarting (last exit {})", exit_text()),
        ),
        ContainerStateStatusEnum::CREATED => (Status::Warn, "created, not started".into()),
        ContainerStateStatusEnum::EXITED => (Status::Crit, format!("exited ({})", exit_text())),
        ContainerStateStatusEnum::DEAD => (Status::Crit, format!("dead ({})", exit_text())),
        ContainerStateStatusEnum::REMOVING => (Status::Warn, "being removed".into()),
        ContainerStateStatusEnum::STOPPING => (Status::Warn, "stopping".into()),
        ContainerStateStatusEnum::EMPTY => (Status::Unknown, "no state reported".into()),
    };
    // An OOM kill of a process inside a running container is worth saying too.
    let st = if oom && st == Status::Ok {
        Status::Warn
    } else {
        st
    };
    let mut detail = format!("{name}: {what}");
    if oom && !what.contains("OOM") {
        detail.push_str(", OOM-killed");
    }
    match restarts {
        0 => {}
        1 => detail.push_str(", 1 restart"),
        n => detail.push_str(&format!(", {n} restarts")),
    }
    if st == Status::Unknown {
        return Reading::Unknown(format!(
            "container {name}: the Docker engine reported no state"
        ));
    }
    Reading::Value {
        status: Some(st),
        detail,
        metrics: m,
    }
}

fn truncate(s: &str, max: usize) -> String {
    let one_line = s.replace('\n', " ");
    if one_line.chars().count() <= max {
        one_line
    } else {
        let t: String = one_line.chars().take(max).collect();
        format!("{t}…")
    }
}

pub(super) fn not_found(name: &str) -> Reading {
    Reading::Value {
        status: Some(Status::Crit),
        detail: format!("container {name} does not exist (`docker ps -a` lists the containers)"),
        metrics: Metrics::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::probe_kind::ProbeKind;
    use bollard::models::{ContainerState, Health};

    fn inspect(
        status: ContainerStateStatusEnum,
        exit: i64,
        oom: bool,
        health: Option<HealthStatusEnum>,
        restarts: i64,
    ) -> ContainerInspectResponse {
        ContainerInspectResponse {
            restart_count: Some(restarts),
            state: Some(ContainerState {
                status: Some(status),
                running: Some(status == ContainerStateStatusEnum::RUNNING),
                exit_code: Some(exit),
                oom_killed: Some(oom),
                health: health.map(|h| Health {
                    status: Some(h),
                    failing_streak: Some(if h == HealthStatusEnum::UNHEALTHY {
                        3
                    } else {
                        0
                    }),
                    log: None,
                }),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    fn status_detail(r: &Reading) -> (Status, String) {
        match r {
            Reading::Value { status, detail, .. } => (status.unwrap(), detail.clone()),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn states_map_to_statuses() {
        use ContainerStateStatusEnum as S;
        use HealthStatusEnum as H;
        let cases = [
            (
                inspect(S::RUNNING, 0, false, None, 0),
                Status::Ok,
                "web: running",
            ),
            (
                inspect(S::RUNNING, 0, false, Some(H::HEALTHY), 0),
                Status::Ok,
                "web: running, healthy",
            ),
            (
                inspect(S::RUNNING, 0, false, Some(H::STARTING), 0),
                Status::Warn,
                "web: running, health starting",
            ),
            (
                inspect(S::RUNNING, 0, false, Some(H::UNHEALTHY), 0),
                Status::Crit,
                "web: running, unhealthy",
            ),
            (
                inspect(S::EXITED, 137, true, None, 3),
                Status::Crit,
                "web: exited (code 137, OOM-killed), 3 restarts",
            ),
            (
                inspect(S::EXITED, 0, false, None, 1),
                Status::Crit,
                "web: exited (code 0), 1 restart",
            ),
            (
                inspect(S::DEAD, 1, false, None, 0),
                Status::Crit,
                "web: dead (code 1)",
            ),
            (
                inspect(S::PAUSED, 0, false, None, 0),
                Status::Warn,
                "web: paused",
            ),
            (
                inspect(S::RESTARTING, 1, false, None, 2),
                Status::Warn,
                "web: restarting (last exit code 1), 2 restarts",
            ),
            (
                inspect(S::CREATED, 0, false, None, 0),
                Status::Warn,
                "web: created, not started",
            ),
        ];
        for (c, want, detail) in cases {
            let r = judge("web", &c);
            assert_eq!(status_detail(&r), (want, detail.to_string()));
        }
    }

    #[test]
    fn metrics_are_reported_and_declared() {
        let r = judge(
            "db",
            &inspect(
                ContainerStateStatusEnum::RUNNING,
                0,
                false,
                Some(HealthStatusEnum::UNHEALTHY),
                4,
            ),
        );
        let Reading::Value { metrics, .. } = r else {
            panic!()
        };
        assert_eq!(metrics["restart_count"], 4.0);
        assert_eq!(metrics["exit_code"], 0.0);
        assert_eq!(metrics["oom_killed"], 0.0);
        assert_eq!(metrics["running"], 1.0);
        assert_eq!(metrics["health_failing_streak"], 3.0);
        for k in metrics.keys() {
            assert!(
                ProbeKind::Container.metric(k).is_some(),
                "{k} not in the catalogue"
            );
        }
        // Without a healthcheck the optional metric is absent.
        let Reading::Value { metrics, .. } = judge(
            "db",
            &inspect(ContainerStateStatusEnum::EXITED, 2, false, None, 0),
        ) else {
            panic!()
        };
        assert!(!metrics.contains_key("health_failing_streak"));
        assert_eq!(metrics["running"], 0.0);
        assert_eq!(metrics["exit_code"], 2.0);
    }
}
