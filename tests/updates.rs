//! Applying updates through vigild against real things: dockerd (an image saved with
//! `docker save`, loaded, its tag moved, a container of the stack restarted), SQLite (the
//! update journal), real files (releases, the hooks' "database"), a private dbus-daemon,
//! bundles made by `vigilctl bundle create` with a key of the `minisign` CLI.
//!
//! One box, one sequence: 2.0.0 with a passing gate is committed; 3.0.0 with a gate that
//! never passes is rolled back (tags, link, container, the database by the restore hook);
//! `Rollback()` then takes the committed 2.0.0 back to 1.0.0; refusals change nothing.

mod common;
mod docker_support;
mod update_support;

use std::time::Duration;

use update_support::{UpdateBed, OLD};

fn states(run: &serde_json::Value) -> Vec<String> {
    let mut v: Vec<String> = run["events"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| ["state", "begin"].contains(&e["what"].as_str().unwrap()))
        .map(|e| e["state"].as_str().unwrap().to_string())
        .collect();
    v.dedup();
    v
}

#[test]
fn apply_commit_then_a_failing_gate_rolls_back_then_rollback_of_the_committed_run() {
    let bed = UpdateBed::new("apply", "0");
    let v = bed.vigild();
    let started0 = bed.started_at();

    // 2.0.0: loads, installs, restarts, migrates, passes its gate, commits.
    let (b2, id2) = bed.bundle("2.0.0", false, "stack", "500ms", "20s");
    let run = bed
        .call("ApplyUpdate", &["s", b2.to_str().unwrap()])
        .unwrap();
    let doc = bed.wait_final(&v, &run, Duration::from_secs(60));
    assert_eq!(doc["state"], "committed", "{doc:#}\n{}", v.log());
    assert_eq!(
        states(&doc),
        [
            "verified",
            "staged",
            "backed-up",
            "applying",
            "gating",
            "committed"
        ],
        "{doc:#}"
    );
    assert_eq!(bed.current(), "2.0.0");
    assert_eq!(
        bed.release_file("2.0.0").as_deref(),
        Some("version 2.0.0\n")
    );
    assert_eq!(
        bed.release_file(OLD).as_deref(),
        Some("version 1.0.0\n"),
        "the previous release is kept"
    );
    assert_eq!(bed.tag_id(), id2, "the stack's tag names the loaded image");
    assert_ne!(bed.started_at(), started0, "the container was restarted");
    assert_eq!(
        bed.db(),
        "schema 2.0.0\n",
        "the migrate hook ran with VIGIL_BUNDLE_VERSION"
    );
    assert_eq!(
        std::fs::read_to_string(bed.shared.join("committed")).unwrap(),
        "2.0.0\n",
        "the commit hook ran"
    );
    assert!(
        bed.staging_left().is_empty(),
        "staging removed: {:?}",
        bed.staging_left()
    );
    let events = doc["events"].as_array().unwrap();
    for what in [
        "step 1: docker-load payload/images/app.tar",
        "step 3: restart container:",
        "commit hook commit",
    ] {
        let begun = events
            .iter()
            .any(|e| e["what"].as_str().unwrap().starts_with(what) && e["detail"] == "begun");
        let done = events.iter().any(|e| {
            e["what"].as_str().unwrap().starts_with(what)
                && e["detail"].as_str().unwrap().starts_with("done")
        });
        assert!(begun && done, "{what}: recorded before and after: {doc:#}");
    }
    assert!(events.iter().any(|e| e["what"] == "gate-passed"), "{doc:#}");

    // 3.0.0 breaks the stack: its gate does not pass, it is rolled back after the timeout,
    // and the previous release passes the same gate again.
    let started2 = bed.started_at();
    let (b3, id3) = bed.bundle("3.0.0", true, "stack", "500ms", "2s");
    let run3 = bed
        .call("ApplyUpdate", &["s", b3.to_str().unwrap()])
        .unwrap();
    let doc3 = bed.wait_final(&v, &run3, Duration::from_secs(60));
    assert_eq!(doc3["state"], "rolled-back", "{doc3:#}\n{}", v.log());
    assert!(
        doc3["detail"]
            .as_str()
            .unwrap()
            .contains("did not pass within 2 s"),
        "{doc3:#}"
    );
    assert!(
        doc3["detail"].as_str().unwrap().contains("stack: crit"),
        "{doc3:#}"
    );
    assert!(
        doc3["detail"]
            .as_str()
            .unwrap()
            .ends_with("the previous release passed its gate"),
        "{doc3:#}"
    );
    assert_eq!(bed.current(), "2.0.0", "back on the previous release");
    assert!(
        bed.release_file("3.0.0").is_none(),
        "the failed release is removed"
    );
    assert_eq!(bed.tag_id(), id2, "the tag names the previous image again");
    assert_ne!(bed.tag_id(), id3);
    assert_ne!(
        bed.started_at(),
        started2,
        "the container was restarted on it"
    );
    assert_eq!(
        bed.db(),
        "schema 2.0.0\n",
        "the restore hook put the database back"
    );
    let st = states(&doc3);
    assert!(
        st.ends_with(&[
            "gating".into(),
            "rolling-back".into(),
            "gating".into(),
            "rolled-back".into()
        ]),
        "{st:?}"
    );

    // Rollback() with no run active: the last committed run (2.0.0) goes back to 1.0.0.
    // A rollback whose gate cannot pass is `failed` (and alerts); this one gates on `stack`.
    let run4 = bed.call("Rollback", &[]).unwrap();
    let doc4 = bed.wait_final(&v, &run4, Duration::from_secs(60));
    assert_eq!(doc4["state"], "rolled-back", "{doc4:#}\n{}", v.log());
    assert_eq!(doc4["kind"], "rollback");
    assert_eq!(bed.current(), OLD);
    assert_eq!(
        bed.tag_id(),
        bed.old_id,
        "the tag is back on the image of 1.0.0"
    );
    assert_eq!(bed.db(), "schema 1.0.0\n");
    let doc = bed.update_doc();
    let history: Vec<(&str, &str)> = doc["history"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| (r["kind"].as_str().unwrap(), r["state"].as_str().unwrap()))
        .collect();
    assert_eq!(
        history,
        [
            ("rollback", "rolled-back"),
            ("apply", "rolled-back"),
            ("apply", "committed")
        ]
    );
    // Nothing left to roll back now.
    let e = bed.call("Rollback", &[]).unwrap_err();
    assert!(e.contains("nothing to roll back"), "{e}");
}

#[test]
fn refused_bundles_change_nothing() {
    let bed = UpdateBed::new("refuse", "0");
    let v = bed.vigild();
    let (b2, _) = bed.bundle("2.0.0", false, "gate-ok", "100ms", "10s");
    // A byte flipped in the payload: refused while staging, nothing on the box changed.
    let bad = bed.dir.path().join("bad.vigil");
    let mut bytes = std::fs::read(&b2).unwrap();
    let n = bytes.len();
    bytes[n - 4096] ^= 0xff;
    std::fs::write(&bad, &bytes).unwrap();
    let before = (bed.current(), bed.tag_id(), bed.db());
    match bed.call("ApplyUpdate", &["s", bad.to_str().unwrap()]) {
        Err(e) => assert!(e.contains("refused"), "{e}"),
        Ok(run) => {
            let doc = bed.wait_final(&v, &run, Duration::from_secs(30));
            assert_eq!(doc["state"], "refused", "{doc:#}");
        }
    }
    assert_eq!((bed.current(), bed.tag_id(), bed.db()), before);
    assert!(bed.staging_left().is_empty(), "{:?}", bed.staging_left());
    assert!(bed.release_file("2.0.0").is_none());
    // A bundle signed by a key that is not trusted: refused up front, by the call.
    std::fs::remove_file(bed.keys.join("signer.pub")).unwrap();
    let other = tempfile::tempdir().unwrap();
    std::process::Command::new("minisign")
        .args(["-G", "-W", "-p"])
        .arg(bed.keys.join("other.pub"))
        .arg("-s")
        .arg(other.path().join("k"))
        .output()
        .unwrap();
    let e = bed
        .call("ApplyUpdate", &["s", b2.to_str().unwrap()])
        .unwrap_err();
    assert!(e.contains("refused") && e.contains("key"), "{e}");
    assert_eq!((bed.current(), bed.tag_id(), bed.db()), before);
}
