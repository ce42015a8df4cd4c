//! `vigilctl support-bundle` against a real vigild on a private bus, a real dockerd
//! container and the real `tar`: secrets planted in vigil.toml, in a container's
//! environment and in log lines never reach the bundle; the same secret carries the same
//! `[redacted:N]` in every file; REDACTED.txt counts per file; and a bundle still comes when
//! vigild is down.

mod common;
mod docker_support;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use common::{wait_for, Bus, VigildBuilder};
use docker_support::*;

const URL_PASS: &str = "urlpass-Hq7Z2mK9";
const URL_TOKEN: &str = "urltok-4f8e7d6c5b";
const BEARER: &str = "bearer-Zx81KqPw03";
const DB_PASSWORD: &str = "dbpw-Lm42WcR7t";
const PLAIN_ENV: &str = "plainenv-Vb55nQ";
const LOG_PASSWORD: &str = "logpw-Tt93yUe1";
const LABEL_TOKEN: &str = "labeltok-Pq19Ws";

const SECRETS: &[&str] = &[
    URL_PASS,
    URL_TOKEN,
    BEARER,
    DB_PASSWORD,
    PLAIN_ENV,
    LOG_PASSWORD,
    LABEL_TOKEN,
];

/// The files every bundle has, under its top directory.
const EXPECTED: &[&str] = &[
    "summary.txt",
    "status.json",
    "checks.json",
    "incidents.json",
    "update.json",
    "update-history.txt",
    "policies.txt",
    "policies.json",
    "vigil.toml",
    "journal.txt",
    "containers.json",
    "units.txt",
    "system/os-release",
    "system/meminfo",
    "system/uname.txt",
    "system/df.txt",
    "system/gpu.txt",
    "REDACTED.txt",
];

fn write_script(path: &Path, text: &str) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::write(path, text).unwrap();
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755)).unwrap();
}

/// Runs `vigilctl ARGS` with `envs`; (exit code, stdout, stderr, wall time).
fn vigilctl(args: &[&str], envs: &[(&str, &Path)]) -> (i32, String, String, Duration) {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_vigilctl"));
    cmd.args(args)
        .env("DBUS_SESSION_BUS_ADDRESS", "unix:path=/nonexistent/bus")
        .env("DBUS_SYSTEM_BUS_ADDRESS", "unix:path=/nonexistent/bus")
        .env_remove("VIGIL_SUPPORT_JOURNALCTL")
        .env_remove("VIGIL_SUPPORT_SYSTEMCTL")
        .env_remove("VIGIL_SUPPORT_OS_RELEASE");
    for (k, v) in envs {
        cmd.env(k, v);
    }
    let t = Instant::now();
    let out = cmd.output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
        t.elapsed(),
    )
}

/// Unpacks `bundle` with the real tar into a fresh directory; (that directory's only entry:
/// the bundle's top directory, every file in it by relative path with its bytes).
fn unpack(bundle: &Path) -> (tempfile::TempDir, PathBuf, BTreeMap<String, Vec<u8>>) {
    let dir = tempfile::tempdir().unwrap();
    let st = Command::new("tar")
        .arg("-xzf")
        .arg(bundle)
        .arg("-C")
        .arg(dir.path())
        .status()
        .expect("tar");
    assert!(st.success(), "tar -xzf {}", bundle.display());
    let tops: Vec<PathBuf> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(tops.len(), 1, "one top directory: {tops:?}");
    let top = tops[0].clone();
    let mut files = BTreeMap::new();
    let mut stack = vec![top.clone()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else {
                let rel = p.strip_prefix(&top).unwrap().display().to_string();
                files.insert(rel, std::fs::read(&p).unwrap());
            }
        }
    }
    (dir, top, files)
}

fn text(files: &BTreeMap<String, Vec<u8>>, name: &str) -> String {
    String::from_utf8(
        files
            .get(name)
            .unwrap_or_else(|| panic!("{name} is in the bundle"))
            .clone(),
    )
    .unwrap()
}

/// The `[redacted:N]` right after `prefix` in `text`.
fn mark_after(text: &str, prefix: &str) -> String {
    let at = text
        .find(prefix)
        .unwrap_or_else(|| panic!("{prefix:?} in:\n{text}"));
    let rest = &text[at + prefix.len()..];
    assert!(rest.starts_with("[redacted:"), "{prefix:?} then {rest:.40}");
    rest[..rest.find(']').unwrap() + 1].to_string()
}

/// The counts of REDACTED.txt, by file.
fn redacted_counts(report: &str) -> BTreeMap<String, usize> {
    report
        .lines()
        .filter_map(|l| {
            let mut w = l.split_whitespace();
            let (f, n) = (w.next()?, w.next()?);
            Some((f.to_string(), n.parse().ok()?))
        })
        .collect()
}

/// The one bundle in `dir` (and nothing else: no temporary file left).
fn only_bundle(dir: &Path) -> PathBuf {
    let entries: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(entries.len(), 1, "only the bundle in {dir:?}: {entries:?}");
    let b = entries[0].clone();
    let name = b.file_name().unwrap().to_string_lossy().into_owned();
    assert!(
        name.starts_with("support-") && name.ends_with("Z.tar.gz") && !name.contains(':'),
        "{name}"
    );
    b
}

#[test]
fn planted_secrets_never_reach_the_bundle_and_one_secret_keeps_one_number() {
    require_docker();
    let bus = Bus::start();
    let mut cs = Containers::new("support");
    let db = cs.sleeper(
        "db",
        &[
            "-e",
            &format!("DB_PASSWORD={DB_PASSWORD}"),
            "-e",
            &format!("PLAIN={PLAIN_ENV}"),
            "--label",
            "tier=db",
            "--label",
            &format!("com.example.api-token={LABEL_TOKEN}"),
        ],
    );
    let policy = format!(
        "{}\n[[check]]\nname = \"db\"\nprobe = \"container\"\ncontainer = \"{db}\"\nevery = \"60s\"\n\n\
         [[check]]\nname = \"demo\"\nprobe = \"systemd\"\nunit = \"vt-demo.service\"\nevery = \"60s\"\n\n\
         [[rule]]\nname = \"heal-demo\"\non = \"demo\"\nwhen = \"crit\"\nfor = \"1m\"\n\
         do = [\"restart unit:vt-other.service\"]\n",
        common::MEMORY_POLICY
    );
    let mut b = VigildBuilder::new().bus(&bus).policy(&policy);
    b.settings = format!(
        "\n[[notify.webhook]]\nurl = \"https://alice:{URL_PASS}@alerts.example.com/hook?token={URL_TOKEN}&channel=ops\"\n\
         headers = {{ Authorization = \"Bearer {BEARER}\" }}\n"
    );
    let v = b.start();
    wait_for(Duration::from_secs(20), "vigild's db check ok", || {
        let out = bus.busctl_raw(&[
            "call",
            "org.vigil.Vigil1",
            "/org/vigil/Vigil1",
            "org.vigil.Vigil1.Manager",
            "GetStatus",
            "--json=short",
        ]);
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).ok()?;
        let doc: serde_json::Value = serde_json::from_str(v["data"][0].as_str()?).ok()?;
        doc["checks"]
            .as_array()?
            .iter()
            .any(|c| c["name"] == "db" && c["status"] == "ok")
            .then_some(())
    });

    // journalctl and systemctl stand-ins: the log lines carry secrets, one also in vigil.toml.
    let tools = tempfile::tempdir().unwrap();
    let jargs = tools.path().join("journalctl.args");
    write_script(
        &tools.path().join("journalctl"),
        &format!(
            "#!/bin/sh\necho \"$*\" > '{}'\ncat <<'EOF'\n\
             2026-02-17T10:00:00+0000 box vigild[1]: notify: POST https://alice:{URL_PASS}@alerts.example.com/hook?token={URL_TOKEN} failed: HTTP 503\n\
             2026-02-17T10:00:01+0000 box vigild[1]: webhook sent Authorization: Bearer {BEARER}\n\
             2026-02-17T10:00:02+0000 box vigild[1]: hook db-backup: password={LOG_PASSWORD} rejected\n\
             2026-02-17T10:00:03+0000 box vigild[1]: check keyboard-daemon: ok\n\
             EOF\n",
            jargs.display()
        ),
    );
    let sargs = tools.path().join("systemctl.args");
    write_script(
        &tools.path().join("systemctl"),
        &format!(
            "#!/bin/sh\necho \"$*\" > '{}'\nfor a in \"$@\"; do case \"$a\" in *.service) \
             printf 'Id=%s\\nActiveState=active\\nSubState=running\\nResult=success\\nNRestarts=0\\n\\n' \"$a\";; esac; done\n",
            sargs.display()
        ),
    );

    let out = tempfile::tempdir().unwrap();
    let config = v.dir.path().join("vigil.toml");
    let policies = v.policies_dir();
    let (code, stdout, stderr, took) = vigilctl(
        &[
            "--bus",
            &bus.address,
            "support-bundle",
            "-o",
            out.path().to_str().unwrap(),
            "--config",
            config.to_str().unwrap(),
            "--policies",
            policies.to_str().unwrap(),
            "--since",
            "2h",
        ],
        &[
            ("VIGIL_SUPPORT_JOURNALCTL", &tools.path().join("journalctl")),
            ("VIGIL_SUPPORT_SYSTEMCTL", &tools.path().join("systemctl")),
        ],
    );
    assert_eq!(code, 0, "stdout: {stdout}\nstderr: {stderr}");
    let bundle = only_bundle(out.path());
    let size = std::fs::metadata(&bundle).unwrap().len();
    println!(
        "support bundle: {size} bytes in {:.2} s ({})",
        took.as_secs_f64(),
        bundle.display()
    );
    assert!(
        stdout.contains("wrote ") && stdout.contains(&size.to_string()),
        "{stdout}"
    );
    // Not a terminal: one line per part, no spinner.
    for part in [
        "status",
        "incidents",
        "journal",
        "containers",
        "units",
        "system",
    ] {
        assert!(
            stderr.contains(&format!("support-bundle: {part}: ok")),
            "{part} in:\n{stderr}"
        );
    }

    let (_dir, top, files) = unpack(&bundle);
    assert!(top
        .file_name()
        .unwrap()
        .to_string_lossy()
        .starts_with("support-"));
    for f in EXPECTED {
        assert!(
            files.contains_key(*f),
            "{f} missing; got {:?}",
            files.keys()
        );
    }
    // No planted secret in any byte of any file, nor in the tar stream itself.
    let tar_stream = Command::new("gzip")
        .arg("-dc")
        .arg(&bundle)
        .output()
        .unwrap()
        .stdout;
    for s in SECRETS {
        for (name, bytes) in &files {
            assert!(
                !bytes.windows(s.len()).any(|w| w == s.as_bytes()),
                "secret {s} leaked into {name}:\n{}",
                String::from_utf8_lossy(bytes)
            );
        }
        assert!(!tar_stream.windows(s.len()).any(|w| w == s.as_bytes()));
    }

    // The same secret, the same number, across files.
    let toml = text(&files, "vigil.toml");
    let journal = text(&files, "journal.txt");
    let pass = mark_after(&toml, "https://alice:");
    assert_eq!(
        pass,
        mark_after(&journal, "https://alice:"),
        "{toml}\n{journal}"
    );
    let token = mark_after(&toml, "hook?token=");
    assert_eq!(token, mark_after(&journal, "hook?token="));
    let bearer = mark_after(&toml, "Bearer ");
    assert_eq!(bearer, mark_after(&journal, "Bearer "));
    let logpw = mark_after(&journal, "password=");
    let mut distinct = vec![&pass, &token, &bearer, &logpw];
    distinct.sort();
    distinct.dedup();
    assert_eq!(distinct.len(), 4, "distinct secrets, distinct numbers");
    assert!(toml.contains("&channel=ops"), "{toml}");
    assert!(journal.contains("check keyboard-daemon: ok"), "{journal}");
    let jargs = std::fs::read_to_string(&jargs).unwrap();
    assert!(
        jargs.starts_with("-u vigild.service -o short-iso") && jargs.contains("--since @"),
        "{jargs}"
    );

    // REDACTED.txt: counts per file, never the values.
    let report = text(&files, "REDACTED.txt");
    let counts = redacted_counts(&report);
    assert!(counts["vigil.toml"] >= 3, "{report}");
    assert!(counts["journal.txt"] >= 4, "{report}");
    assert!(counts["containers.json"] >= 3, "{report}");
    assert_eq!(counts["system/meminfo"], 0, "{report}");
    for f in EXPECTED.iter().filter(|f| **f != "REDACTED.txt") {
        assert!(counts.contains_key(*f), "{f} listed in:\n{report}");
    }

    // The container: its summary, every env value redacted, names kept.
    let cdoc: serde_json::Value = serde_json::from_slice(&files["containers.json"]).unwrap();
    let c = cdoc["containers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == db.as_str())
        .unwrap_or_else(|| panic!("{db} in {cdoc:#}"));
    assert_eq!(c["image"], IMAGE);
    assert_eq!(c["state"], "running");
    assert_eq!(c["restart_count"], 0);
    assert_eq!(c["oom_killed"], false);
    assert_eq!(c["exit_code"], 0);
    assert_eq!(c["labels"]["tier"], "db");
    assert!(
        c["started_at"]
            .as_str()
            .is_some_and(|s| s.starts_with("20")),
        "{c}"
    );
    let env: Vec<&str> = c["env"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e.as_str().unwrap())
        .collect();
    assert!(
        env.iter().any(|e| e.starts_with("DB_PASSWORD=[redacted:")),
        "{env:?}"
    );
    assert!(
        env.iter().any(|e| e.starts_with("PLAIN=[redacted:")),
        "{env:?}"
    );
    assert!(env.iter().all(|e| e.contains("=[redacted:")), "{env:?}");
    assert_eq!(c["env_redacted"], env.len());
    assert!(cdoc.get("Env").is_none() && c.get("Config").is_none());

    // vigild's documents, the policies, the units they name, the facts.
    let status: serde_json::Value = serde_json::from_slice(&files["status.json"]).unwrap();
    assert!(status["version"].is_string(), "{status}");
    let checks: serde_json::Value = serde_json::from_slice(&files["checks.json"]).unwrap();
    assert!(checks.as_array().unwrap().iter().any(|c| c["name"] == "db"));
    let incidents: serde_json::Value = serde_json::from_slice(&files["incidents.json"]).unwrap();
    assert!(incidents.is_array(), "{incidents}");
    let update: serde_json::Value = serde_json::from_slice(&files["update.json"]).unwrap();
    assert!(update.get("unavailable").is_none(), "{update}");
    assert!(text(&files, "update-history.txt").starts_with("update: "));
    let pol = text(&files, "policies.txt");
    assert!(pol.contains("mem") && pol.contains("demo"), "{pol}");
    let units = text(&files, "units.txt");
    for u in ["vigild.service", "vt-demo.service", "vt-other.service"] {
        assert!(
            units.contains(&format!("Id={u}\nActiveState=active")),
            "{units}"
        );
    }
    let sargs = std::fs::read_to_string(&sargs).unwrap();
    assert!(sargs.starts_with("show --no-pager -p Id,"), "{sargs}");
    assert!(text(&files, "system/meminfo").contains("MemAvailable:   800000 kB"));
    assert!(text(&files, "system/uname.txt").starts_with("Linux"));
    assert!(text(&files, "system/df.txt").contains("Filesystem"));
    let gpu = text(&files, "system/gpu.txt");
    assert!(
        gpu.contains("NVML:") && gpu.contains("Jetson sysfs:"),
        "{gpu}"
    );
    assert!(text(&files, "system/os-release").contains("ID="));
    let summary = text(&files, "summary.txt");
    assert!(summary.contains("journal since: 2h"), "{summary}");
    let version = status["version"].as_str().unwrap();
    assert!(
        summary.contains(&format!("\nvigild: {version}, ")),
        "{summary}"
    );
}

#[test]
fn with_vigild_down_the_bundle_still_comes_and_says_why() {
    // A bus nobody owns vigild's name on; the real journalctl and systemctl of this box.
    let bus = Bus::start();
    let out = tempfile::tempdir().unwrap();
    let dest = out.path().join("stick-bundle.tar.gz");
    let none = out.path().join("absent.toml");
    let (code, stdout, stderr, took) = vigilctl(
        &[
            "--bus",
            &bus.address,
            "support-bundle",
            "-o",
            dest.to_str().unwrap(),
            "--config",
            none.to_str().unwrap(),
            "--policies",
            out.path().to_str().unwrap(),
        ],
        &[],
    );
    assert_eq!(code, 0, "stdout: {stdout}\nstderr: {stderr}");
    assert!(
        stderr.contains("warning: vigild could not be reached"),
        "{stderr}"
    );
    println!(
        "support bundle without vigild: {} bytes in {:.2} s",
        std::fs::metadata(&dest).unwrap().len(),
        took.as_secs_f64()
    );
    let names: Vec<String> = std::fs::read_dir(out.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(
        names,
        ["stick-bundle.tar.gz"],
        "the named file, no leftovers"
    );
    let (_dir, _top, files) = unpack(&dest);
    for f in EXPECTED {
        assert!(
            files.contains_key(*f),
            "{f} missing; got {:?}",
            files.keys()
        );
    }
    for f in [
        "status.json",
        "checks.json",
        "incidents.json",
        "update.json",
    ] {
        let doc: serde_json::Value = serde_json::from_slice(&files[f]).unwrap();
        let why = doc["unavailable"].as_str().unwrap_or_default();
        assert!(
            why.starts_with("vigild unreachable: vigild is not running"),
            "{f}: {doc}"
        );
    }
    assert!(text(&files, "vigil.toml").contains("does not exist"));
    assert!(!text(&files, "journal.txt").is_empty());
    assert!(text(&files, "units.txt").starts_with("# systemctl show of vigild.service\n"));
    let summary = text(&files, "summary.txt");
    assert!(summary.contains("\nvigild: unreachable: "), "{summary}");
    assert!(
        summary.contains("status.json") && summary.contains("not collected: vigild unreachable"),
        "{summary}"
    );
    assert!(redacted_counts(&text(&files, "REDACTED.txt")).contains_key("status.json"));

    // A destination whose directory is not there (a stick not mounted): exit 1, nothing written.
    let gone = out.path().join("not-mounted/b.tar.gz");
    let (code, _, stderr, _) = vigilctl(
        &[
            "--bus",
            &bus.address,
            "support-bundle",
            "-o",
            gone.to_str().unwrap(),
        ],
        &[],
    );
    assert_eq!(code, 1, "{stderr}");
    assert!(stderr.contains("is not a directory"), "{stderr}");
    assert!(!out.path().join("not-mounted").exists());
}
