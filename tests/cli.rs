//! vigilctl against a running vigild on a real bus, and its exit statuses.

mod common;

use common::*;

#[test]
fn status_checks_and_version_talk_to_vigild() {
    let bus = Bus::start();
    let v = VigildBuilder::new().bus(&bus).start();
    v.wait_status("ok");
    let addr = bus.address.as_str();

    let (code, out, err) = vigilctl(&["--bus", addr, "status"]);
    assert_eq!(code, 0, "{err}");
    assert!(
        out.starts_with(&format!(
            "vigild {} — ok · 1 check · 0 incidents",
            env!("CARGO_PKG_VERSION")
        )),
        "{out}"
    );

    let (code, out, _) = vigilctl(&["--bus", addr, "--json", "status"]);
    assert_eq!(code, 0);
    let doc: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(doc["status"], "ok");
    assert_eq!(doc["checks"][0]["name"], "mem");
    assert_eq!(doc["checks"][0]["status"], "ok");

    let (code, out, _) = vigilctl(&["--bus", addr, "checks"]);
    assert_eq!(code, 0);
    let lines: Vec<&str> = out.lines().collect();
    assert!(
        lines[0].contains("CHECK") && lines[0].contains("STATUS") && lines[0].contains("DETAIL"),
        "{out}"
    );
    assert!(
        lines[1].trim_start().starts_with("mem")
            && lines[1].contains(" memory ")
            && lines[1].contains(" ok "),
        "{out}"
    );

    let (code, out, _) = vigilctl(&["--bus", addr, "--json", "checks"]);
    assert_eq!(code, 0);
    let checks: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(checks.as_array().unwrap().len(), 1);

    // A failing check shows up in status with its reason.
    v.set_available_kb(50_000);
    v.wait_status("critical");
    let (code, out, _) = vigilctl(&["--bus", addr, "status"]);
    assert_eq!(code, 0);
    assert!(
        out.contains("critical · 1 check · 0 incidents · crit: mem"),
        "{out}"
    );
    assert!(out.contains("available is 5"), "{out}");

    let (code, out, _) = vigilctl(&["--bus", addr, "version"]);
    assert_eq!(code, 0);
    let v_line = format!("vigilctl {0}\nvigild {0}", env!("CARGO_PKG_VERSION"));
    assert_eq!(out.trim(), v_line);
}

#[test]
fn vigild_not_running_is_one_line_and_exit_3() {
    let bus = Bus::start();
    for args in [
        vec!["--bus", bus.address.as_str(), "status"],
        vec!["checks"],
        vec!["--bus", "unix:path=/nonexistent/bus", "status"],
    ] {
        let (code, out, err) = vigilctl(&args);
        assert_eq!(code, 3, "{args:?}: {out} {err}");
        assert_eq!(err.lines().count(), 1, "{err}");
        assert!(err.starts_with("vigilctl: vigild is not"), "{err}");
    }
    let (code, out, _) = vigilctl(&["version"]);
    assert_eq!(code, 0);
    assert!(out.contains("vigild not running"), "{out}");
}

#[test]
fn policy_check_exit_codes_and_positions() {
    let dir = tempfile::tempdir().unwrap();
    let good = dir.path().join("good.toml");
    std::fs::write(&good, MEMORY_POLICY).unwrap();
    let (code, out, _) = vigilctl(&["policy", "check", good.to_str().unwrap()]);
    assert_eq!(code, 0);
    assert_eq!(out.trim(), "ok: 1 checks in 1 file(s)");

    let bad = dir.path().join("bad.toml");
    std::fs::write(
        &bad,
        "[[check]]\nname = \"m\"\nprobe = \"memory\"\nwarn = \"availble < 5%\"\nfrobnicate = 1\n",
    )
    .unwrap();
    let (code, _, err) = vigilctl(&["policy", "check", dir.path().to_str().unwrap()]);
    assert_eq!(code, 1);
    assert!(
        err.contains(&format!(
            "{}:4:9: probe `memory` has no metric `availble`",
            bad.display()
        )),
        "{err}"
    );
    assert!(
        err.contains(&format!("{}:5:1: unknown key `frobnicate`", bad.display())),
        "{err}"
    );

    let (code, out, _) = vigilctl(&["--json", "policy", "show", good.to_str().unwrap()]);
    assert_eq!(code, 0);
    let set: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(set["checks"][0]["name"], "mem");
    assert_eq!(set["checks"][0]["probe"], "memory");
    assert_eq!(set["checks"][0]["warn"][0], "available < 20%");

    let (code, _, _) = vigilctl(&["frobnicate"]);
    assert_eq!(code, 2, "usage errors exit 2");
}

#[test]
fn the_shipped_policies_pass_policy_check() {
    let (code, out, err) = vigilctl(&[
        "policy",
        "check",
        "--config",
        "packaging/vigil.toml",
        "policies",
    ]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.starts_with("ok: "), "{out}");
}
