//! What the runner is asked — apply a bundle, roll back, look at a USB stick — and what it
//! finds at start: a run vigild died in, finished the safe way.

use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::sync::Arc;

use semver::Version;
use tracing::{info, warn};

use super::update::{Active, Runner};
use super::update_effects::{off, Done};
use super::update_plan::{wall_us, Plan, RunEnv};
use crate::bundle::{self, Check, Sink};
use crate::config::UsbMode;
use crate::core::bundle::{FileEntry, Manifest, Step};
use crate::core::engine::UpdateHold;
use crate::core::time::rfc3339_millis;
use crate::core::update::{OfferAnswer, OfferedDocument, UpdateState};
use crate::core::update_run::{Event, Kind, Run};
use crate::sys::clock;
use crate::update::release::Releases;
use crate::update::{space, staging};

/// Stops the verifier once the manifest and its signature passed.
#[derive(Default)]
struct Head(Option<Manifest>);

const HEAD_ONLY: &str = "(only the manifest was read)";

impl Sink for Head {
    fn manifest(&mut self, m: &Manifest) -> io::Result<()> {
        self.0 = Some(m.clone());
        Err(io::Error::other(HEAD_ONLY))
    }
    fn begin(&mut self, _: &FileEntry) -> io::Result<()> {
        Ok(())
    }
    fn write(&mut self, _: &[u8]) -> io::Result<()> {
        Ok(())
    }
    fn end(&mut self, _: &FileEntry) -> io::Result<()> {
        Ok(())
    }
}

/// The installed release's version, if it is one.
fn installed(env: &RunEnv) -> Option<Version> {
    Releases::new(&env.state_dir)
        .current()
        .and_then(|c| Version::parse(&c).ok())
}

/// Checks a bundle's manifest and signature (not its payload: staging does that, in the
/// same pass that copies it). Blocking.
fn check_head(env: &RunEnv, path: &Path) -> Result<Manifest, String> {
    let keys = bundle::load_keys(&env.keys_dir)?;
    let check = Check {
        keys: &keys,
        installed: installed(env),
        model: env.model.clone(),
        allow_downgrade: false,
    };
    let mut head = Head::default();
    match bundle::verify_file(path, &check, &mut head) {
        Ok(v) => Ok(v.manifest),
        Err(r) => head
            .0
            .ok_or_else(|| format!("{}: refused: {}", path.display(), r.why)),
    }
}

impl Runner {
    fn busy_error(&self) -> Option<String> {
        self.active.as_ref().map(|a| {
            format!(
                "an update run is already active: run {} ({})",
                a.id, a.run.state
            )
        })
    }

    /// `ApplyUpdate`: the run id once the manifest passed and the run began.
    pub(super) async fn apply(&mut self, path: &str) -> Result<String, String> {
        if let Some(e) = self.busy_error() {
            return Err(e);
        }
        let path = PathBuf::from(path);
        if !path.is_absolute() {
            return Err(format!(
                "{}: give the bundle's absolute path",
                path.display()
            ));
        }
        let env = self.env.borrow().clone();
        let (e, p) = (env.clone(), path.clone());
        let manifest = off(move || check_head(&e, &p)).await?;
        let releases = Releases::new(&env.state_dir);
        let current = releases.current();
        let release = manifest.version.to_string();
        if current.as_deref() == Some(release.as_str()) {
            return Err(format!(
                "{}: release {release} is already the current one",
                path.display()
            ));
        }
        let docker_root = if manifest
            .steps
            .iter()
            .any(|s| matches!(s, Step::DockerLoad { .. }))
        {
            self.docker_root(&env).await
        } else {
            None
        };
        let (e, m) = (env.clone(), manifest.clone());
        off(move || {
            let rel = Releases::new(&e.state_dir);
            space::check(
                &m,
                &e.state_dir,
                rel.current_dir().as_deref(),
                docker_root.as_deref(),
            )
        })
        .await
        .map_err(|why| format!("{}: refused: {why}", path.display()))?;
        let plan = Plan::of(&manifest, current.clone());
        let (bundle, name) = (path.display().to_string(), manifest.name.clone());
        let (b, n, r, c, data) = (
            bundle.clone(),
            name.clone(),
            release.clone(),
            current.clone(),
            plan.to_json(),
        );
        let at = wall_us();
        let id = self
            .journal
            .with(move |j| j.begin("apply", &b, &n, &r, c.as_deref(), "verified", at, &data))
            .await
            .map_err(|e| {
                format!("cannot begin the run: the update journal cannot be written: {e}")
            })?;
        info!(
            vigil_event = "update",
            vigil_update_run = id,
            vigil_update_state = "verified",
            "update run {id}: {name} {release} from {bundle} verified (manifest and signature); staging it"
        );
        let run = Run::new(manifest.steps.clone(), &plan.gate());
        self.begin_active(id, run, plan, manifest.steps.clone(), env.clone())
            .await;
        // Staging: verified again, every byte, as it is copied.
        let (tx, staging_progress) = (self.done_tx.clone(), self.staging.clone());
        staging_progress
            .total
            .store(manifest.total_size(), Ordering::Relaxed);
        tokio::task::spawn_blocking(move || {
            let event = stage(&env, &path, id, &manifest, &staging_progress);
            let _ = tx.send((id, Done { event, plan: None }));
        });
        Ok(id.to_string())
    }

    /// Makes `run` the active one, holds its targets, publishes.
    async fn begin_active(
        &mut self,
        id: u64,
        run: Run,
        plan: Plan,
        steps: Vec<Step>,
        env: Arc<RunEnv>,
    ) {
        let row = self.journal.with(move |j| j.run(id)).await.ok().flatten();
        // What a stick offered is taken up (or superseded) by a run.
        self.offered = None;
        self.hold.send_replace(Some(UpdateHold {
            run: id.to_string(),
            targets: plan.targets(),
        }));
        self.active = Some(Active {
            id,
            run,
            plan,
            steps,
            row,
            env,
            gate: None,
            busy: false,
            rollback_asked: None,
        });
        self.refresh().await;
    }

    async fn docker_root(&self, env: &RunEnv) -> Option<PathBuf> {
        let d = crate::sys::docker::client_for(env.docker_host.as_deref()).ok()?;
        let info = tokio::time::timeout(std::time::Duration::from_secs(5), d.info())
            .await
            .ok()?
            .ok()?;
        info.docker_root_dir.map(PathBuf::from)
    }

    /// `Rollback`: of the active run, or of the last committed one.
    pub(super) async fn rollback(&mut self, who: &str) -> Result<String, String> {
        let why = format!("rollback asked by {who}");
        if let Some(a) = self.active.as_ref() {
            let id = a.id;
            if a.run.state == UpdateState::Verified {
                return Err(format!("run {id} is still being staged; nothing was changed yet: wait for it, then roll back"));
            }
            if a.run.state == UpdateState::RollingBack || a.run.rolling_back {
                return Err(format!("run {id} is already rolling back"));
            }
            if a.busy {
                // After the piece in flight; the machine then rolls back from there.
                if let Some(a) = self.active.as_mut() {
                    a.rollback_asked = Some(why);
                }
                info!(
                    vigil_event = "update",
                    "update run {id}: rollback asked; it starts when the piece under way ends"
                );
                return Ok(id.to_string());
            }
            self.step(Event::RollbackAsked(why)).await;
            return Ok(id.to_string());
        }
        let env = self.env.borrow().clone();
        let current = Releases::new(&env.state_dir).current();
        let runs = self.journal.with(|j| j.runs(50)).await?;
        let last = runs
            .into_iter()
            .find(|r| r.state == UpdateState::Committed.as_str())
            .ok_or("no committed update to roll back")?;
        let mut plan = Plan::from_json(&last.data)?;
        if current.as_deref() != Some(plan.release.as_str()) {
            return Err(format!(
                "the last committed run ({}) installed release {}, but the current release is {}: nothing to roll back",
                last.id,
                plan.release,
                current.as_deref().unwrap_or("none")
            ));
        }
        plan.rollback_of = Some(last.id);
        let (b, n, data) = (last.bundle.clone(), last.name.clone(), plan.to_json());
        let (to, from) = (
            plan.previous.clone().unwrap_or_else(|| "none".into()),
            plan.release.clone(),
        );
        let at = wall_us();
        let id = self
            .journal
            .with(move |j| {
                j.begin(
                    "rollback",
                    &b,
                    &n,
                    &to,
                    Some(&from),
                    "rolling-back",
                    at,
                    &data,
                )
            })
            .await?;
        info!(
            vigil_event = "update",
            vigil_update_run = id,
            vigil_update_state = "rolling-back",
            "update run {id}: {why}: back from {} to {}",
            plan.release,
            plan.previous.as_deref().unwrap_or("no release")
        );
        let (run, effects) = Run::rollback_of_committed(&plan.gate(), why);
        self.begin_active(id, run, plan, Vec::new(), env).await;
        for e in effects {
            self.launch(e);
        }
        Ok(id.to_string())
    }

    /// `OfferUpdate`: the newest bundle on a stick, applied or announced.
    pub(super) async fn offer(&mut self, dir: &str) -> Result<String, String> {
        let env = self.env.borrow().clone();
        let answer = |action: &str, detail: String| OfferAnswer {
            action: action.into(),
            detail,
            ..Default::default()
        };
        let json = |a: &OfferAnswer| serde_json::to_string(a).unwrap_or_default();
        if env.usb == UsbMode::Off {
            return Ok(json(&answer("ignored", "[update] usb = \"off\"".into())));
        }
        let (e, d) = (env.clone(), PathBuf::from(dir));
        let (found, refused) = off(move || Ok(newest(&e, &d))).await?;
        let Some((path, m)) = found else {
            let detail = if refused.is_empty() {
                format!("no *.vigil bundle in {dir} or {dir}/vigil")
            } else {
                format!("no bundle there verified: {}", refused.join("; "))
            };
            info!(
                vigil_event = "update-offered",
                "USB stick at {dir}: {detail}"
            );
            return Ok(json(&answer("none", detail)));
        };
        let shown = path.display().to_string();
        let mut a = OfferAnswer {
            bundle: Some(shown.clone()),
            version: Some(m.version.to_string()),
            ..Default::default()
        };
        if env.usb == UsbMode::Notify {
            self.offered = Some(OfferedDocument {
                bundle: shown.clone(),
                name: m.name.clone(),
                version: m.version.to_string(),
                at: rfc3339_millis(clock::now().wall),
            });
            warn!(
                vigil_event = "update-offered",
                "update bundle {} {} found on a USB stick ({shown}), not applied ([update] usb = \"notify\"): \
                 copy it off the stick and run `vigilctl update apply FILE`, or set usb = \"apply\" and plug the stick in again",
                m.name, m.version
            );
            self.refresh().await;
            a.action = "announced".into();
            a.detail = format!(
                "{} {} verified; [update] usb = \"notify\": not applied",
                m.name, m.version
            );
            return Ok(json(&a));
        }
        match self.apply(&shown).await {
            Ok(id) => {
                a.action = "applying".into();
                a.detail = format!("{} {} verified; applying it as run {id}", m.name, m.version);
                a.run = Some(id);
            }
            Err(e) => {
                warn!(
                    vigil_event = "update-offered",
                    "USB stick at {dir}: {shown} not applied: {e}"
                );
                a.action = "none".into();
                a.detail = e;
            }
        }
        Ok(json(&a))
    }

    /// A run vigild stopped in: finished the safe way. Staging that no unfinished run owns
    /// (vigild stopped between a run's end and its clean-up) is removed.
    pub(super) async fn resume(&mut self) {
        self.resume_run().await;
        let env = self.env.borrow().clone();
        let keep = self.active.as_ref().map(|a| a.id.to_string());
        let removed = off(move || {
            let mut gone = Vec::new();
            let Ok(dir) = std::fs::read_dir(staging::staging_root(&env.state_dir)) else {
                return Ok(gone);
            };
            for e in dir.flatten() {
                let name = e.file_name().to_string_lossy().into_owned();
                if Some(&name) != keep.as_ref() && staging::discard(&env.state_dir, &name).is_ok() {
                    gone.push(name);
                }
            }
            Ok(gone)
        })
        .await
        .unwrap_or_default();
        if !removed.is_empty() {
            info!(
                vigil_event = "update",
                "removed the staging of ended run(s) {}",
                removed.join(", ")
            );
        }
    }

    async fn resume_run(&mut self) {
        let found = self.journal.with(|j| {
            let Some(row) = j.unfinished()? else {
                return Ok(None);
            };
            let events = j.events(row.id)?;
            Ok(Some((row, events)))
        });
        let (row, events) = match found.await {
            Ok(Some(x)) => x,
            Ok(None) => return,
            Err(e) => {
                warn!(
                    vigil_event = "update",
                    "cannot read the update journal: {e}"
                );
                return;
            }
        };
        let env = self.env.borrow().clone();
        let id = row.id;
        let plan = match Plan::from_json(&row.data) {
            Ok(p) => p,
            Err(e) => {
                warn!(
                    vigil_event = "update",
                    "update run {id}: {e}; marking it failed"
                );
                let at = wall_us();
                let _ = self
                    .journal
                    .with(move |j| j.record(id, "failed", "state", &e, at, true))
                    .await;
                return;
            }
        };
        let state = UpdateState::parse(&row.state).unwrap_or(UpdateState::Applying);
        let kind = Kind::parse(&row.kind).unwrap_or(Kind::Apply);
        let applied = events.iter().any(|e| e.state == "applying");
        let passed = events.iter().any(|e| e.what == "gate-passed");
        let back = events.iter().any(|e| e.state == "rolling-back");
        let (mut run, effects) =
            Run::resume(kind, state, Vec::new(), &plan.gate(), applied, passed, back);
        warn!(
            vigil_event = "update",
            vigil_update_run = id,
            vigil_update_state = state.as_str(),
            "update run {id} was interrupted while {state} (vigild stopped); finishing it: {}",
            if run.state == UpdateState::RollingBack {
                "rolling back"
            } else if passed {
                "committing (its gate had passed)"
            } else {
                "nothing on the box changed"
            }
        );
        let new_state = run.state;
        if new_state != state {
            let (s, d) = (new_state.as_str().to_string(), run.detail.clone());
            let (at, ended) = (wall_us(), new_state.is_final());
            if let Err(e) = self
                .journal
                .with(move |j| {
                    j.record(id, &s, "state", &d, at, ended)?;
                    j.set_detail(id, &d)
                })
                .await
            {
                warn!(
                    vigil_event = "update",
                    "update run {id}: cannot record the resumption: {e}"
                );
            }
        }
        if run.detail.is_empty() {
            run.detail = row.detail.clone();
        }
        self.begin_active(id, run, plan, Vec::new(), env).await;
        for e in effects {
            self.launch(e);
        }
        if new_state.is_final() {
            self.finish().await;
        }
    }
}

/// Verifies and copies the bundle into staging; what the machine hears of it. Blocking.
fn stage(
    env: &RunEnv,
    path: &Path,
    id: u64,
    head: &Manifest,
    progress: &super::update::Staging,
) -> Event {
    let keys = match bundle::load_keys(&env.keys_dir) {
        Ok(k) => k,
        Err(e) => return Event::Refused(e),
    };
    let check = Check {
        keys: &keys,
        installed: installed(env),
        model: env.model.clone(),
        allow_downgrade: false,
    };
    let mut report = |done: u64, _total: u64| progress.done.store(done, Ordering::Relaxed);
    match staging::stage(path, &check, &env.state_dir, &id.to_string(), &mut report) {
        Ok(s) if s.verified.manifest == *head => Event::Staged,
        Ok(_) => {
            let _ = staging::discard(&env.state_dir, &id.to_string());
            Event::Refused(format!(
                "{}: the bundle changed while it was read (its manifest is not the one checked first); nothing was changed",
                path.display()
            ))
        }
        Err(e) => Event::Refused(e),
    }
}

/// The newest bundle in `dir` or `dir/vigil` whose manifest and signature pass, and why
/// the others did not. Nothing there is executed; only regular files are read.
fn newest(env: &RunEnv, dir: &Path) -> (Option<(PathBuf, Manifest)>, Vec<String>) {
    let mut best: Option<(PathBuf, Manifest)> = None;
    let mut refused = Vec::new();
    for d in [dir.to_path_buf(), dir.join("vigil")] {
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in entries.flatten() {
            let p = e.path();
            let is_bundle = p.extension().is_some_and(|x| x == "vigil")
                && e.file_type().is_ok_and(|t| t.is_file());
            if !is_bundle {
                continue;
            }
            match check_head(env, &p) {
                Ok(m) => {
                    if best.as_ref().is_none_or(|(_, b)| m.version > b.version) {
                        best = Some((p, m));
                    }
                }
                Err(why) => refused.push(why),
            }
        }
    }
    (best, refused)
}
