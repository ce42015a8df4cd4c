//! Carrying out the update machine's effects with the adapters of `crate::update`. Every
//! piece is written to the journal before it starts and after it ends; a piece whose
//! "begun" cannot be written is not started.

use std::path::PathBuf;

use tracing::{info, warn};

use super::update_plan::{Plan, RunEnv, SharedJournal};
use crate::action::{Notification, Outcome};
use crate::core::action::{Action, Target};
use crate::core::bundle::Step;
use crate::core::update::UpdateState;
use crate::core::update_run::{Effect, Event, Kind};
use crate::update::hooks::{self, HookEnv};
use crate::update::images;
use crate::update::release::Releases;
use crate::update::staging;

/// What an effect works on.
pub struct Work {
    pub env: RunEnv,
    pub journal: SharedJournal,
    pub run: u64,
    pub kind: Kind,
    pub state: UpdateState,
    pub plan: Plan,
    pub steps: Vec<Step>,
}

/// What came of it: the event for the machine, and the plan when the effect changed it.
pub struct Done {
    pub event: Event,
    pub plan: Option<Plan>,
}

fn done(event: Event) -> Done {
    Done { event, plan: None }
}

impl Work {
    fn releases(&self) -> Releases {
        Releases::new(&self.env.state_dir)
    }

    fn hook_env(&self) -> HookEnv {
        let r = self.releases();
        HookEnv {
            release_dir: r.dir(&self.plan.release),
            previous_dir: self.plan.previous.as_deref().map(|p| r.dir(p)),
            version: self.plan.release.clone(),
            run: self.run.to_string(),
        }
    }

    fn staged(&self, file: &str) -> PathBuf {
        staging::staged_file(&self.env.state_dir, &self.run.to_string(), file)
    }

    /// Writes "begun"; an error means the piece must not start.
    async fn begin(&self, what: &str) -> Result<(), String> {
        self.journal
            .note(self.run, self.state.as_str(), what, "begun")
            .await
            .map_err(|e| format!("{what}: not started, the update journal cannot be written: {e}"))
    }

    /// Writes how it ended (a failure to write is logged: the piece already happened, and
    /// the state change that follows is written, or the run stops on it).
    async fn end(&self, what: &str, result: &Result<String, String>) {
        let detail = match result {
            Ok(s) => format!("done: {s}"),
            Err(e) => format!("failed: {e}"),
        };
        let state = self.state.as_str();
        if let Err(e) = self.journal.note(self.run, state, what, &detail).await {
            warn!(
                vigil_event = "update",
                "update run {}: cannot record {what}: {e}", self.run
            );
        }
        info!(
            vigil_event = "update",
            vigil_update_run = self.run,
            vigil_update_state = state,
            "update run {}: {what}: {detail}",
            self.run
        );
    }

    /// Begins, does, ends: one recorded piece.
    async fn piece<F>(&self, what: &str, work: F) -> Result<String, String>
    where
        F: std::future::Future<Output = Result<String, String>>,
    {
        self.begin(what).await?;
        let r = work.await;
        self.end(what, &r).await;
        r
    }

    async fn docker(&self) -> Result<bollard::Docker, String> {
        crate::sys::docker::client_for(self.env.docker_host.as_deref())
    }

    /// Carries out `effect` (not the gate, finish or alert: the runner does those).
    pub async fn carry_out(&self, effect: &Effect) -> Done {
        match effect {
            Effect::Backup => self.backup().await,
            Effect::Prepare => {
                let r = self.releases();
                let name = self.plan.release.clone();
                let res = self
                    .piece(&format!("prepare release {name}"), async move {
                        blocking(move || r.prepare(&name).map(|d| d.display().to_string())).await
                    })
                    .await;
                done(applied(res))
            }
            Effect::Step(i) => match self.steps.get(*i) {
                Some(step) => {
                    let what = format!("step {}: {}", i + 1, describe(step));
                    let res = self.piece(&what, self.step(step)).await;
                    done(applied(res))
                }
                None => done(Event::ApplyFailed(format!("no step {}", i + 1))),
            },
            Effect::Switch => {
                let r = self.releases();
                let name = self.plan.release.clone();
                let what = format!("switch releases/current to {name}");
                let res = self
                    .piece(&what, async move {
                        blocking(move || r.switch(Some(&name)).map(|()| "switched".to_string()))
                            .await
                    })
                    .await;
                done(applied(res))
            }
            Effect::CommitHook => {
                let Some(name) = self.env.commit_hook.clone() else {
                    return done(Event::CommitDone);
                };
                let env = self.hook_env();
                let hooks = self.env.hooks.clone();
                let res = self
                    .piece(&format!("commit hook {name}"), async {
                        hooks::run(&name, &hooks, &env).await
                    })
                    .await;
                done(match res {
                    Ok(_) => Event::CommitDone,
                    Err(e) => Event::CommitFailed(e),
                })
            }
            Effect::Rollback { applied } => self.rollback(*applied).await,
            Effect::WatchGate | Effect::Finish | Effect::Alert(_) => {
                done(Event::ApplyFailed(format!("{effect:?} is the runner's")))
            }
        }
    }

    /// Records which image each tag names before anything is loaded, then runs the backup
    /// hooks.
    async fn backup(&self) -> Done {
        let mut plan = self.plan.clone();
        let archives: Vec<PathBuf> = self
            .steps
            .iter()
            .filter_map(|s| match s {
                Step::DockerLoad { file } => Some(self.staged(file)),
                _ => None,
            })
            .collect();
        if !archives.is_empty() {
            let res = self
                .piece("record image tags", async {
                    let mut tags = Vec::new();
                    for a in archives {
                        let t = off(move || images::tags_in_archive(&a)).await?;
                        tags.extend(t);
                    }
                    let docker = self.docker().await?;
                    let before = images::tag_ids(&docker, &tags).await?;
                    plan.tags_before = before;
                    let json = plan.to_json();
                    let run = self.run;
                    // Durable before the first load: a rollback after a crash needs it.
                    self.journal.with(move |j| j.set_data(run, &json)).await?;
                    Ok(format!("{} tag(s): {}", tags.len(), tags.join(", ")))
                })
                .await;
            if let Err(e) = res {
                return done(Event::ApplyFailed(e));
            }
        }
        for name in &self.env.backup_hooks {
            let env = self.hook_env();
            let res = self
                .piece(&format!("backup hook {name}"), async {
                    hooks::run(name, &self.env.hooks, &env).await
                })
                .await;
            if let Err(e) = res {
                return Done {
                    event: Event::ApplyFailed(format!("backup hook {name}: {e}")),
                    plan: Some(plan),
                };
            }
        }
        Done {
            event: Event::BackedUp,
            plan: Some(plan),
        }
    }

    async fn step(&self, step: &Step) -> Result<String, String> {
        match step {
            Step::DockerLoad { file } => {
                let docker = self.docker().await?;
                images::load(&docker, &self.staged(file)).await?;
                Ok(format!("loaded {file}"))
            }
            Step::Install { file, to } => {
                let (r, name, staged, to) = (
                    self.releases(),
                    self.plan.release.clone(),
                    self.staged(file),
                    to.clone(),
                );
                blocking(move || {
                    r.install(&name, &staged, &to)
                        .map(|()| format!("installed {to}"))
                })
                .await
            }
            Step::Restart { target } => self.restart(target).await,
            Step::Hook { name } => hooks::run(name, &self.env.hooks, &self.hook_env()).await,
        }
    }

    async fn restart(&self, target: &Target) -> Result<String, String> {
        let note = self.notification("update-restart", &format!("restart {target}"));
        match self
            .env
            .actuators
            .run(&Action::Restart(target.clone()), &note)
            .await
        {
            Outcome::Done(s) | Outcome::Skipped(s) => Ok(s),
            Outcome::Failed(e) => Err(e),
        }
    }

    /// Puts the previous release back. Each piece is tried even when one before failed
    /// (the gate judges the result), except the link: without it nothing else matters.
    async fn rollback(&self, applied: bool) -> Done {
        let r = self.releases();
        let previous = self.plan.previous.clone();
        let what = match &previous {
            Some(p) => format!("switch releases/current back to {p}"),
            None => "remove releases/current (there was no release before)".into(),
        };
        let link = self
            .piece(&what, async move {
                blocking(move || {
                    if r.current() == previous {
                        return Ok("it already pointed there".to_string());
                    }
                    r.switch(previous.as_deref())
                        .map(|()| "switched".to_string())
                })
                .await
            })
            .await;
        if let Err(e) = link {
            return done(Event::RollbackFailed(e));
        }
        if !self.plan.tags_before.is_empty() {
            let before = self.plan.tags_before.clone();
            let res = self
                .piece("restore image tags", async {
                    let docker = self.docker().await?;
                    images::restore(&docker, &before).await?;
                    Ok(format!("{} tag(s) back", before.len()))
                })
                .await;
            if let Err(e) = res {
                return done(Event::RollbackFailed(e));
            }
        }
        if applied {
            for name in &self.env.restore_hooks {
                let env = self.hook_env();
                let _ = self
                    .piece(&format!("restore hook {name}"), async {
                        hooks::run(name, &self.env.hooks, &env).await
                    })
                    .await;
            }
            for target in self.plan.targets() {
                let _ = self
                    .piece(&format!("restart {target}"), self.restart(&target))
                    .await;
            }
        }
        // A `docker load` that was under way when vigild died may have finished inside
        // dockerd after the tags were put back: look again, and put them back once more.
        if !self.plan.tags_before.is_empty() {
            let before = self.plan.tags_before.clone();
            let tags: Vec<String> = before.keys().cloned().collect();
            let moved = match self.docker().await {
                Ok(d) => images::tag_ids(&d, &tags).await.map(|now| now != before),
                Err(e) => Err(e),
            };
            if moved == Ok(true) {
                let _ = self
                    .piece("restore image tags again (a load finished late)", async {
                        let docker = self.docker().await?;
                        images::restore(&docker, &before).await?;
                        Ok("tags back".to_string())
                    })
                    .await;
                if applied {
                    for target in self.plan.targets() {
                        let _ = self
                            .piece(&format!("restart {target}"), self.restart(&target))
                            .await;
                    }
                }
            }
        }
        if self.kind == Kind::Apply && self.plan.previous.as_deref() != Some(&self.plan.release) {
            let (r, name) = (self.releases(), self.plan.release.clone());
            let _ = self
                .piece(&format!("remove release {name}"), async move {
                    blocking(move || r.remove(&name).map(|()| "removed".to_string())).await
                })
                .await;
        }
        done(Event::RolledBack)
    }

    /// A notification about this run, for restarts and alerts.
    pub fn notification(&self, event: &str, detail: &str) -> Notification {
        Notification {
            event: event.into(),
            incident: 0,
            rule: format!("update run {}", self.run),
            check: format!("release {}", self.plan.release),
            status: self.state.as_str().into(),
            detail: detail.into(),
            host: nix::unistd::gethostname()
                .map(|h| h.to_string_lossy().into_owned())
                .unwrap_or_default(),
            time: crate::core::time::rfc3339_millis(crate::sys::clock::now().wall),
        }
    }
}

/// A step for the journal: `docker-load payload/x.tar`, `restart container:app`.
fn describe(step: &Step) -> String {
    match step {
        Step::DockerLoad { file } => format!("docker-load {file}"),
        Step::Install { file, to } => format!("install {file} to {to}"),
        Step::Restart { target } => format!("restart {target}"),
        Step::Hook { name } => format!("hook {name}"),
    }
}

fn applied(res: Result<String, String>) -> Event {
    match res {
        Ok(_) => Event::Applied,
        Err(e) => Event::ApplyFailed(e),
    }
}

/// File work off the runtime, with the io error as text.
async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> std::io::Result<T> + Send + 'static,
) -> Result<T, String> {
    off(move || f().map_err(|e| e.to_string())).await
}

/// Blocking work off the runtime.
pub async fn off<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, String> + Send + 'static,
) -> Result<T, String> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| format!("task failed: {e}"))?
}
