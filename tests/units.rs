//! The systemd units verify cleanly and the service's sandbox scores well, checked with the
//! real systemd-analyze against the built binary.

use std::process::Command;

fn prepared_units() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let service = std::fs::read_to_string("units/vigild.service")
        .unwrap()
        .replace("/usr/bin/vigild", env!("CARGO_BIN_EXE_vigild"));
    std::fs::write(dir.path().join("vigild.service"), service).unwrap();
    std::fs::copy("units/vigild.socket", dir.path().join("vigild.socket")).unwrap();
    dir
}

#[test]
fn units_verify_without_a_single_complaint() {
    let dir = prepared_units();
    let out = Command::new("systemd-analyze")
        .args(["verify", "--man=no", "./vigild.service", "./vigild.socket"])
        .current_dir(dir.path())
        .output()
        .expect("systemd-analyze (package systemd) must be installed");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "{text}");
    assert!(
        text.trim().is_empty(),
        "systemd-analyze verify complained:\n{text}"
    );
}

#[test]
fn service_sandbox_exposure_is_at_most_2() {
    let dir = prepared_units();
    let out = Command::new("systemd-analyze")
        .args([
            "security",
            "--offline=yes",
            "--no-pager",
            "./vigild.service",
        ])
        .current_dir(dir.path())
        .output()
        .expect("systemd-analyze (package systemd) must be installed");
    let text =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    let line = text
        .lines()
        .find(|l| l.contains("Overall exposure level"))
        .unwrap_or_else(|| panic!("no score in:\n{text}"));
    let score: f64 = line
        .split(':')
        .nth(1)
        .and_then(|r| r.split_whitespace().next())
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("cannot read the score in {line:?}"));
    assert!(score <= 2.0, "exposure {score} > 2.0:\n{text}");
}

#[test]
fn units_use_nothing_newer_than_systemd_249() {
    // Directives added after 249 that a unit here might be tempted to use.
    const NEWER: &[&str] = &[
        "RestartSteps=",
        "RestartMaxDelaySec=",
        "OpenFile=",
        "ExtensionDirectories=",
        "RestartMode=",
        "SurviveFinalKillSignal=",
        "MemoryZSwapMax=",
        "ImportCredential=",
        "SetCredentialEncrypted=",
    ];
    for f in ["units/vigild.service", "units/vigild.socket"] {
        let text = std::fs::read_to_string(f).unwrap();
        for line in text.lines().filter(|l| !l.trim_start().starts_with('#')) {
            for d in NEWER {
                assert!(
                    !line.trim_start().starts_with(d),
                    "{f}: {d} needs systemd newer than 249"
                );
            }
        }
    }
}
