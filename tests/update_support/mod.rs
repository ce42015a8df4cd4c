//! A box to update, for the update tests: a state directory with release 1.0.0 current, a
//! "database" the hooks migrate and restore, a container of the stack running from a tag a
//! bundle moves, keys made by the `minisign` CLI, bundles made by `vigilctl bundle create`,
//! and a vigild on a private bus that applies them.

#![allow(dead_code)]

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use crate::common::{wait_for, wait_until, Bus, Vigild, VigildBuilder};
use crate::docker_support::{docker, docker_ok, require_docker, IMAGE};

/// The release the box starts on.
pub const OLD: &str = "1.0.0";

/// The gate checks: one that always passes, one that never does, and the stack's own:
/// crit while the current release's compose.yml says `broken`.
pub fn policy(state: &Path) -> String {
    format!(
        r#"
[[check]]
name = "gate-ok"
probe = "exec"
command = ["/bin/true"]
every = "100ms"

[[check]]
name = "gate-bad"
probe = "exec"
command = ["/bin/false"]
every = "100ms"

[[check]]
name = "stack"
probe = "exec"
command = ["/bin/sh", "-c", "! grep -q broken {}/releases/current/compose.yml"]
every = "100ms"
"#,
        state.display()
    )
}

pub struct UpdateBed {
    pub dir: tempfile::TempDir,
    pub state: PathBuf,
    pub keys: PathBuf,
    pub key: PathBuf,
    /// Hooks write here (they run as nobody when vigild is root: world-writable).
    pub shared: PathBuf,
    /// The tag the stack's container runs from, and the container.
    pub tag: String,
    pub container: String,
    /// The image `tag` names before any update.
    pub old_id: String,
    pub settings: String,
    pub bus: Bus,
}

fn run_ok(cmd: &mut Command) -> String {
    let out = cmd.stdin(Stdio::null()).output().expect("runs");
    assert!(
        out.status.success(),
        "{cmd:?}: {}\n{}{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

impl UpdateBed {
    /// `hook_sleep`: how long each hook takes (so a kill can land inside one).
    pub fn new(name: &str, hook_sleep: &str) -> UpdateBed {
        require_docker();
        let dir = tempfile::tempdir().unwrap();
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
        let root = dir.path().to_path_buf();
        let (state, keys, shared) = (root.join("state"), root.join("keys"), root.join("shared"));
        for d in [&state, &keys, &shared] {
            std::fs::create_dir_all(d).unwrap();
        }
        std::fs::set_permissions(&shared, std::fs::Permissions::from_mode(0o777)).unwrap();
        let key = root.join("signer.key");
        run_ok(
            Command::new("minisign")
                .args(["-G", "-W", "-p"])
                .arg(keys.join("signer.pub"))
                .arg("-s")
                .arg(&key),
        );
        let tag = format!("vigil-test/upd-{name}-{}:stack", std::process::id());
        let container = format!("vigil-upd-{name}-{}", std::process::id());
        docker(&["tag", IMAGE, &tag]);
        let _ = docker_ok(&["rm", "-f", &container]);
        // A main process that ends on SIGTERM at once (a bare `sleep` as PID 1 ignores it,
        // and every restart would wait out Docker's 10 s).
        docker(&[
            "run",
            "-d",
            "--name",
            &container,
            &tag,
            "sh",
            "-c",
            "trap 'exit 0' TERM; while :; do sleep 1 & wait $!; done",
        ]);
        let old_id = docker(&["image", "inspect", "--format", "{{.Id}}", IMAGE]);
        let s = shared.display();
        let settings = format!(
            r#"
[update]
keys_dir = "{keys}"
backup_hooks = ["backup"]
restore_hooks = ["restore"]
commit_hook = "commit"
keep_releases = 2

[hooks.backup]
command = ["/bin/sh", "-c", "sleep {hook_sleep}; cp {s}/db {s}/db.before-$VIGIL_BUNDLE_VERSION"]
[hooks.restore]
command = ["/bin/sh", "-c", "cp {s}/db.before-$VIGIL_BUNDLE_VERSION {s}/db"]
[hooks.migrate]
command = ["/bin/sh", "-c", "sleep {hook_sleep}; echo \"schema $VIGIL_BUNDLE_VERSION\" > {s}/db"]
[hooks.commit]
command = ["/bin/sh", "-c", "echo \"$VIGIL_BUNDLE_VERSION\" > {s}/committed"]
"#,
            keys = keys.display(),
        );
        let bed = UpdateBed {
            dir,
            state,
            keys,
            key,
            shared,
            tag,
            container,
            old_id,
            settings,
            bus: Bus::start(),
        };
        bed.reset();
        bed
    }

    /// Back to before any update: release 1.0.0 current and alone, schema 1, the tag on
    /// the old image, no staging. The journal stays (runs accumulate).
    pub fn reset(&self) {
        let releases = self.state.join("releases");
        let _ = std::fs::remove_dir_all(&releases);
        let _ = std::fs::remove_dir_all(self.state.join("staging"));
        std::fs::create_dir_all(releases.join(OLD)).unwrap();
        std::fs::write(releases.join(OLD).join("compose.yml"), "version 1.0.0\n").unwrap();
        std::os::unix::fs::symlink(OLD, releases.join("current")).unwrap();
        std::fs::write(self.shared.join("db"), "schema 1.0.0\n").unwrap();
        // The hooks run as nobody (vigild is root here).
        std::fs::set_permissions(
            self.shared.join("db"),
            std::fs::Permissions::from_mode(0o666),
        )
        .unwrap();
        for e in std::fs::read_dir(&self.shared).unwrap().flatten() {
            if e.file_name().to_string_lossy().starts_with("db.before-") {
                let _ = std::fs::remove_file(e.path());
            }
        }
        let _ = std::fs::remove_file(self.shared.join("committed"));
        docker(&["tag", IMAGE, &self.tag]);
    }

    /// Builds a new image (distinct from the old one), saves it under the stack's tag and
    /// puts the tag back on the old image, removing the new one from dockerd; then makes
    /// bundle `version` that loads it, installs compose.yml, restarts the container, runs
    /// the migrate hook, and gates on `gate_check`; `broken`: its compose.yml makes the
    /// `stack` check crit. Returns the bundle and the new image id.
    pub fn bundle(
        &self,
        version: &str,
        broken: bool,
        gate_check: &str,
        window: &str,
        timeout: &str,
    ) -> (PathBuf, String) {
        let work = self.dir.path().join(format!("make-{version}"));
        let payload = work.join("payload");
        std::fs::create_dir_all(payload.join("images")).unwrap();
        let temp_tag = format!("{}-build-{version}", self.tag.replace(":stack", ""));
        let dockerfile = format!(
            "FROM {IMAGE}\nRUN echo {version}-{} > /v\n",
            std::process::id()
        );
        let mut child = Command::new("docker")
            .args(["build", "-q", "-t", &temp_tag, "-"])
            .env("DOCKER_BUILDKIT", "0")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        use std::io::Write;
        child
            .stdin
            .take()
            .unwrap()
            .write_all(dockerfile.as_bytes())
            .unwrap();
        let out = child.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "docker build: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let new_id = docker(&["image", "inspect", "--format", "{{.Id}}", &temp_tag]);
        let before = docker(&["image", "inspect", "--format", "{{.Id}}", &self.tag]);
        docker(&["tag", &temp_tag, &self.tag]);
        let archive = payload.join("images/app.tar");
        docker(&["save", "-o", archive.to_str().unwrap(), &self.tag]);
        docker(&["tag", &before, &self.tag]);
        docker(&["rmi", &temp_tag]);
        // The image lives on only if some other tag still names it (a later bundle's test).
        let compose = format!("version {version}{}\n", if broken { " broken" } else { "" });
        std::fs::write(payload.join("compose.yml"), compose).unwrap();
        let manifest = work.join("manifest.toml");
        std::fs::write(
            &manifest,
            format!(
                r#"[bundle]
name = "stack"
version = "{version}"

[[step]]
do = "docker-load"
file = "payload/images/app.tar"

[[step]]
do = "install"
file = "payload/compose.yml"
to = "compose.yml"

[[step]]
do = "restart"
target = "container:{container}"

[[step]]
do = "hook"
name = "migrate"

[gate]
checks = ["{gate_check}"]
window = "{window}"
timeout = "{timeout}"
"#,
                container = self.container
            ),
        )
        .unwrap();
        let out = self.dir.path().join(format!("stack-{version}.vigil"));
        run_ok(
            Command::new(env!("CARGO_BIN_EXE_vigilctl"))
                .args(["bundle", "create", "--manifest"])
                .arg(&manifest)
                .arg("--payload")
                .arg(&payload)
                .arg("--key")
                .arg(&self.key)
                .arg("-o")
                .arg(&out),
        );
        (out, new_id)
    }

    pub fn vigild(&self) -> Vigild {
        let mut b = VigildBuilder::new()
            .bus(&self.bus)
            .policy(&policy(&self.state));
        b.settings = self.settings.clone();
        b.state_dir = Some(self.state.clone());
        let v = b.start();
        wait_for(Duration::from_secs(20), "vigild on the bus", || {
            self.bus
                .busctl_raw(&["status", "org.vigil.Vigil1"])
                .status
                .success()
                .then_some(())
        });
        v
    }

    /// Calls a Manager method; Ok(first string out) or Err(the bus error).
    pub fn call(&self, method: &str, args: &[&str]) -> Result<String, String> {
        let mut full = vec![
            "call",
            "org.vigil.Vigil1",
            "/org/vigil/Vigil1",
            "org.vigil.Vigil1.Manager",
            method,
        ];
        full.extend(args);
        full.push("--json=short");
        let out = self.bus.busctl_raw(&full);
        if !out.status.success() {
            return Err(String::from_utf8_lossy(&out.stderr).into_owned());
        }
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        Ok(v["data"][0].as_str().unwrap_or_default().to_string())
    }

    pub fn update_doc(&self) -> serde_json::Value {
        serde_json::from_str(&self.call("GetUpdate", &[]).expect("GetUpdate answers")).unwrap()
    }

    /// Waits until run `id` has ended; its document. A vigild that stops answering, or a
    /// run that does not end in time, fails with `v`'s log and what its threads were doing.
    pub fn wait_final(&self, v: &Vigild, id: &str, within: Duration) -> serde_json::Value {
        let start = std::time::Instant::now();
        let fin = ["committed", "rolled-back", "failed", "refused"];
        let fail = |why: String| -> ! {
            panic!(
                "update run {id}: {why}\n--- vigild's log:\n{}\n--- vigild's threads:\n{}",
                v.log(),
                crate::common::thread_stacks(v.pid())
            )
        };
        let mut last = serde_json::Value::Null;
        let ended = wait_until(within, || {
            last = match self.call("GetUpdate", &[]) {
                Ok(text) => serde_json::from_str(&text).unwrap(),
                Err(e) => fail(format!("GetUpdate failed after {:?}: {e}", start.elapsed())),
            };
            let run = &last["run"];
            (last["state"] == "idle"
                && run["id"] == id
                && run["state"].as_str().is_some_and(|s| fin.contains(&s)))
            .then(|| run.clone())
        });
        ended.unwrap_or_else(|| fail(format!("not ended after {within:?}: {last:#}")))
    }

    pub fn current(&self) -> String {
        std::fs::read_link(self.state.join("releases/current"))
            .map(|p| p.display().to_string())
            .unwrap_or_else(|_| "(none)".into())
    }

    pub fn tag_id(&self) -> String {
        docker(&["image", "inspect", "--format", "{{.Id}}", &self.tag])
    }

    pub fn db(&self) -> String {
        std::fs::read_to_string(self.shared.join("db")).unwrap_or_default()
    }

    pub fn started_at(&self) -> String {
        docker(&[
            "inspect",
            "--format",
            "{{.State.StartedAt}}",
            &self.container,
        ])
    }

    pub fn release_file(&self, release: &str) -> Option<String> {
        std::fs::read_to_string(
            self.state
                .join("releases")
                .join(release)
                .join("compose.yml"),
        )
        .ok()
    }

    pub fn staging_left(&self) -> Vec<String> {
        std::fs::read_dir(self.state.join("staging"))
            .map(|d| {
                d.flatten()
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .collect()
            })
            .unwrap_or_default()
    }
}

impl Drop for UpdateBed {
    fn drop(&mut self) {
        let _ = docker_ok(&["rm", "-f", &self.container]);
        let _ = docker_ok(&["rmi", &self.tag]);
    }
}

/// The path's parent, for messages.
pub fn shown(p: &Path) -> String {
    p.display().to_string()
}
