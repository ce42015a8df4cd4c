//! The system test's USB steps: sticks with signed bundles, handed to the installed
//! `vigil-usb@.service` as udev hands them (the unit started for the stick's kernel name),
//! announced under `[update] usb = "notify"`, applied and committed under `"apply"`, and a
//! bundle whose gate fails rolled back; each time the stick unmounted and its directory gone.
//!
//! Before boot ([`UsbBed::prepare`]): a key made by the `minisign` CLI, two bundles made by
//! `vigilctl bundle create`, two sticks (loop devices, detached when the bed is dropped,
//! after the container) that the container gets bound in. A container has no device units
//! (its /sys is read-only, so systemd refuses to start any), so the unit's two lines that
//! bind it to the stick's device are left out of the copy the test runs, and only they.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use serde_json::Value;

use crate::nspawn::{Container, SHARE};
use crate::usb_support::Stick;
use crate::{diagnostics, journal, try_out, try_vigilctl_json, wait_for};

const NAME: &str = "usbdemo";
const GOOD: &str = "1.0.0";
const BREAKS: &str = "1.1.0";
/// The file whose presence makes `usb-gate-flip` crit: the release that breaks the box.
const CRIT_FLAG: &str = "/run/usb-gate-crit";

/// The checks the bundles gate on: one always ok, one crit while [`CRIT_FLAG`] is there.
fn policy(with_flip: bool) -> String {
    let mut p = String::from(
        "[[check]]\nname = \"usb-gate\"\nprobe = \"exec\"\ncommand = [\"/bin/true\"]\n\
         every = \"1s\"\n",
    );
    if with_flip {
        p.push_str(&format!(
            "\n[[check]]\nname = \"usb-gate-flip\"\nprobe = \"exec\"\n\
             command = [\"/bin/sh\", \"-c\", \"test ! -e {CRIT_FLAG}\"]\nevery = \"500ms\"\n"
        ));
    }
    p
}

/// What the test prepares on the host before the container boots.
pub struct UsbBed {
    // Dropped last (declared last): the sticks' images live in it.
    pub good: Stick,
    pub breaks: Stick,
    pub_key: PathBuf,
    _dir: tempfile::TempDir,
}

fn run_ok(cmd: &mut Command) -> String {
    let out = cmd.output().expect("runs");
    assert!(
        out.status.success(),
        "{cmd:?}: {}: {}{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Bundle `version` with one installed file, gating on `check` for `window` within `timeout`.
fn bundle(dir: &Path, key: &Path, version: &str, check: &str, timeout: &str) -> PathBuf {
    let work = dir.join(format!("work-{version}"));
    std::fs::create_dir_all(work.join("payload")).unwrap();
    std::fs::write(work.join("payload/app.conf"), format!("{NAME} {version}\n")).unwrap();
    std::fs::write(
        work.join("manifest.toml"),
        format!(
            "[bundle]\nname = \"{NAME}\"\nversion = \"{version}\"\n\n\
             [[step]]\ndo = \"install\"\nfile = \"payload/app.conf\"\nto = \"app.conf\"\n\n\
             [gate]\nchecks = [\"{check}\"]\nwindow = \"1s\"\ntimeout = \"{timeout}\"\n"
        ),
    )
    .unwrap();
    let out = dir.join(format!("{NAME}-{version}.vigil"));
    run_ok(
        Command::new(env!("CARGO_BIN_EXE_vigilctl"))
            .args(["bundle", "create", "--manifest"])
            .arg(work.join("manifest.toml"))
            .arg("--payload")
            .arg(work.join("payload"))
            .arg("--key")
            .arg(key)
            .arg("-o")
            .arg(&out),
    );
    out
}

impl UsbBed {
    /// The key, the bundles and the sticks: 1.0.0 in the stick's `vigil/`, gating on
    /// `usb-gate`; 1.1.0 in the other stick's root, gating on `usb-gate-flip`.
    pub fn prepare() -> UsbBed {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        let (pub_key, key) = (d.join("usb-test.pub"), d.join("usb-test.key"));
        run_ok(
            Command::new("minisign")
                .args(["-G", "-W", "-p"])
                .arg(&pub_key)
                .arg("-s")
                .arg(&key),
        );
        let good = bundle(d, &key, GOOD, "usb-gate", "20s");
        let breaks = bundle(d, &key, BREAKS, "usb-gate-flip", "6s");
        let good_name = format!("vigil/{NAME}-{GOOD}.vigil");
        let breaks_name = format!("{NAME}-{BREAKS}.vigil");
        UsbBed {
            good: Stick::with_files(d, "GOOD", &[(good_name.as_str(), good.as_path())]),
            breaks: Stick::with_files(d, "BREAKS", &[(breaks_name.as_str(), breaks.as_path())]),
            pub_key,
            _dir: dir,
        }
    }

    /// The device nodes to bind into the container.
    pub fn nodes(&self) -> [String; 2] {
        [self.good.node(), self.breaks.node()]
    }
}

/// The update document, or why not.
fn update_doc(c: &Container) -> Result<Value, String> {
    try_vigilctl_json(c, "update status")
}

/// Waits until the run of `version` is in a state `done` accepts; its document.
fn wait_run(c: &Container, version: &str, what: &str, done: &[&str]) -> Value {
    wait_for(c, what, Duration::from_secs(90), || {
        let doc = update_doc(c)?;
        let run = &doc["run"];
        if run["version"] == version && done.contains(&run["state"].as_str().unwrap_or("")) {
            Ok(run.clone())
        } else {
            Err(doc.to_string())
        }
    })
}

/// Starts the unit for `stick` as udev would, and waits for it (a oneshot); its journal.
fn offer(c: &Container, stick: &Stick) -> String {
    let unit = format!("vigil-usb@{}.service", stick.dev);
    let out = c.try_sh(&format!("systemctl start {unit}"));
    let journal = c.sh(&format!("journalctl --no-pager -o cat -u {unit}"));
    assert!(
        out.status.success(),
        "systemctl start {unit}: {}: {}\n--- its journal ---\n{journal}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr),
        diagnostics(c)
    );
    assert_eq!(c.unit_property(&unit, "Result"), "success");
    journal
}

/// Nothing of `stick` is left mounted, nor its directory. (Its device node is bound into
/// the container: that mount stays.)
fn unmounted(c: &Container, stick: &Stick) {
    let mounts = c.sh("findmnt -rn -o TARGET,SOURCE || true");
    let node = stick.node();
    let left: Vec<&str> = mounts
        .lines()
        .filter(|l| {
            let mut f = l.split_whitespace();
            let (target, source) = (f.next().unwrap_or(""), f.next().unwrap_or(""));
            target.starts_with("/run/vigil") || source == node
        })
        .collect();
    assert!(left.is_empty(), "still mounted: {left:?}\n{mounts}");
    let dirs = c.sh("ls -d /run/vigil /run/vigil/usb 2>/dev/null || true");
    assert_eq!(dirs.trim(), "", "left behind: {dirs}");
}

/// The USB steps, on a container with the package installed and vigild running.
pub fn run(c: &Container, bed: &UsbBed) {
    std::fs::copy(&bed.pub_key, c.share().join("usb-test.pub")).unwrap();
    c.sh(&format!(
        "install -m 644 {SHARE}/usb-test.pub /etc/vigil/keys/usb-test.pub && \
         cp /etc/vigil/vigil.toml {SHARE}/vigil.toml.orig"
    ));
    c.write("/etc/vigil/policies.d/60-usb-test.toml", &policy(false));
    c.sh("systemctl reload vigild.service");
    wait_for(c, "the usb-gate check ok", Duration::from_secs(30), || {
        let checks = try_vigilctl_json(c, "checks")?;
        let ok = checks.as_array().is_some_and(|a| {
            a.iter()
                .any(|k| k["name"] == "usb-gate" && k["status"] == "ok")
        });
        ok.then_some(()).ok_or_else(|| checks.to_string())
    });
    // The shipped unit, less its binding to the device (the container has no device units).
    let shipped = c.sh("cat /usr/lib/systemd/system/vigil-usb@.service");
    let copy: String = shipped
        .lines()
        .filter(|l| *l != "BindsTo=dev-%i.device")
        .map(|l| {
            if l == "After=dev-%i.device vigild.service" {
                "After=vigild.service"
            } else {
                l
            }
        })
        .map(|l| format!("{l}\n"))
        .collect();
    assert_eq!(
        shipped.lines().count(),
        copy.lines().count() + 1,
        "the unit's device lines changed: {shipped}"
    );
    assert!(copy.contains("\nAfter=vigild.service\n"), "{copy}");
    c.write("/etc/systemd/system/vigil-usb@.service", &copy);
    c.sh("systemctl daemon-reload");

    // [update] usb = "notify" (the default): announced, not applied.
    let said = offer(c, &bed.good);
    assert!(
        said.contains(&format!(
            "{NAME}-{GOOD}.vigil: {GOOD} announced, not applied"
        )),
        "{said}"
    );
    let doc = update_doc(c).unwrap();
    assert_eq!(doc["state"], "idle", "{doc}");
    assert!(doc["run"].is_null(), "nothing was applied: {doc}");
    let offered = doc["offered"]["bundle"].as_str().unwrap_or("");
    assert_eq!(
        offered,
        format!("/run/vigil/usb/{}/vigil/{NAME}-{GOOD}.vigil", bed.good.dev),
        "{doc}"
    );
    unmounted(c, &bed.good);

    // [update] usb = "apply": the stick's bundle is applied; the unit ends once the bundle
    // is off the stick, the run goes on to its commit.
    let conf = c.sh("cat /etc/vigil/vigil.toml");
    c.write(
        "/etc/vigil/vigil.toml",
        &format!("{conf}\n[update]\nusb = \"apply\"\n"),
    );
    c.write("/etc/vigil/policies.d/60-usb-test.toml", &policy(true));
    c.sh("systemctl reload vigild.service");
    wait_for(
        c,
        "the reload (usb-gate-flip)",
        Duration::from_secs(30),
        || {
            let checks = try_vigilctl_json(c, "checks")?;
            let there = checks
                .as_array()
                .is_some_and(|a| a.iter().any(|k| k["name"] == "usb-gate-flip"));
            there.then_some(()).ok_or_else(|| checks.to_string())
        },
    );
    let said = offer(c, &bed.good);
    assert!(said.contains(&format!("{GOOD} applying as run ")), "{said}");
    assert!(said.contains("the bundle is off the stick"), "{said}");
    assert!(said.lines().any(|l| l == "staged"), "{said}");
    unmounted(c, &bed.good);
    let run = wait_run(
        c,
        GOOD,
        "the stick's 1.0.0 committed",
        &["committed", "rolled-back", "failed", "refused"],
    );
    assert_eq!(run["state"], "committed", "{run}");
    assert_eq!(run["kind"], "apply", "{run}");
    assert_eq!(
        c.sh("readlink /var/lib/vigil/releases/current").trim(),
        GOOD
    );
    assert_eq!(
        c.sh("cat /var/lib/vigil/releases/current/app.conf").trim(),
        format!("{NAME} {GOOD}")
    );
    // journald has each state of the run as a structured event.
    let id = run["id"].as_str().unwrap().to_string();
    let states: Vec<String> = journal(
        c,
        &format!("-u vigild.service VIGIL_EVENT=update VIGIL_UPDATE_RUN={id}"),
    )
    .iter()
    .filter_map(|e| e["VIGIL_UPDATE_STATE"].as_str().map(str::to_string))
    .collect();
    for s in [
        "verified",
        "staged",
        "backed-up",
        "applying",
        "gating",
        "committed",
    ] {
        assert!(
            states.iter().any(|x| x == s),
            "no journal event for {s} of run {id}: {states:?}"
        );
    }

    // A release that breaks the box (usb-gate-flip crit while it is in): its gate times
    // out, the rollback puts 1.0.0 back, which passes the gate again.
    c.sh(&format!("touch {CRIT_FLAG}"));
    let said = offer(c, &bed.breaks);
    assert!(
        said.contains(&format!("{BREAKS} applying as run ")),
        "{said}"
    );
    unmounted(c, &bed.breaks);
    // Once the rollback began (its state shows for milliseconds only), the box is well again.
    wait_for(c, "1.1.0 rolling back", Duration::from_secs(60), || {
        let doc = update_doc(c)?;
        let run = &doc["run"];
        let began = run["events"]
            .as_array()
            .is_some_and(|e| e.iter().any(|e| e["state"] == "rolling-back"));
        if run["version"] == BREAKS && began {
            Ok(())
        } else {
            Err(doc.to_string())
        }
    });
    c.sh(&format!("rm -f {CRIT_FLAG}"));
    let run = wait_run(
        c,
        BREAKS,
        "1.1.0 rolled back",
        &["rolled-back", "failed", "committed", "refused"],
    );
    assert_eq!(run["state"], "rolled-back", "{run}");
    assert!(
        run["detail"]
            .as_str()
            .unwrap_or("")
            .contains("usb-gate-flip"),
        "{run}"
    );
    assert_eq!(
        c.sh("readlink /var/lib/vigil/releases/current").trim(),
        GOOD
    );
    let history = update_doc(c).unwrap()["history"].clone();
    let runs: Vec<(String, String)> = history
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["version"].as_str().unwrap_or("").into(),
                r["state"].as_str().unwrap_or("").into(),
            )
        })
        .collect();
    assert_eq!(
        runs,
        [
            (BREAKS.to_string(), "rolled-back".to_string()),
            (GOOD.into(), "committed".into())
        ]
    );
    let table = try_out(c, "vigilctl update history").unwrap();
    assert!(table.lines().count() >= 3, "{table}");

    // The test's own files go; the package's stay.
    c.sh(&format!(
        "rm /etc/vigil/policies.d/60-usb-test.toml /etc/systemd/system/vigil-usb@.service \
         /etc/vigil/keys/usb-test.pub && cp {SHARE}/vigil.toml.orig /etc/vigil/vigil.toml && \
         systemctl daemon-reload && systemctl reload vigild.service"
    ));
}
