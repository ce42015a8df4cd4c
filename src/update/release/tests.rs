//! Release directories on a real file system: prepare copies, install replaces, switch is
//! atomic and idempotent, prune keeps what it must.

use std::os::unix::fs::PermissionsExt;
use std::time::{Duration, SystemTime};

use super::*;

fn bed() -> (tempfile::TempDir, Releases) {
    let dir = tempfile::tempdir().unwrap();
    let r = Releases::new(dir.path());
    (dir, r)
}

fn mode(p: &Path) -> u32 {
    fs::symlink_metadata(p).unwrap().permissions().mode() & 0o7777
}

fn age(r: &Releases, name: &str, secs_ago: u64) {
    let t = SystemTime::now() - Duration::from_secs(secs_ago);
    File::open(r.dir(name)).unwrap().set_modified(t).unwrap();
}

#[test]
fn prepare_copies_the_current_release_with_links_and_modes() {
    let (_d, r) = bed();
    assert_eq!(r.current(), None);
    let first = r.prepare("1.0.0").unwrap();
    assert_eq!(
        fs::read_dir(&first).unwrap().count(),
        0,
        "empty without a current"
    );
    fs::create_dir(first.join("bin")).unwrap();
    fs::write(first.join("bin/app"), b"v1").unwrap();
    fs::set_permissions(first.join("bin/app"), fs::Permissions::from_mode(0o750)).unwrap();
    symlink("bin/app", first.join("app")).unwrap();
    symlink("/nonexistent/elsewhere", first.join("dangling")).unwrap();
    r.switch(Some("1.0.0")).unwrap();
    assert_eq!(r.current().as_deref(), Some("1.0.0"));
    assert_eq!(
        fs::read_link(r.root().join(CURRENT)).unwrap(),
        Path::new("1.0.0")
    );

    // A leftover of a crashed run is replaced, not merged.
    fs::create_dir_all(r.dir("1.1.0")).unwrap();
    fs::write(r.dir("1.1.0/stale"), b"x").unwrap();
    let second = r.prepare("1.1.0").unwrap();
    assert!(!second.join("stale").exists());
    assert_eq!(fs::read(second.join("bin/app")).unwrap(), b"v1");
    assert_eq!(mode(&second.join("bin/app")), 0o750);
    assert_eq!(
        fs::read_link(second.join("app")).unwrap(),
        Path::new("bin/app")
    );
    assert_eq!(
        fs::read_link(second.join("dangling")).unwrap(),
        Path::new("/nonexistent/elsewhere")
    );
    // Nothing temporary is left, and the current release cannot be prepared over.
    let names: Vec<String> = fs::read_dir(r.root())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert!(names.iter().all(|n| !n.starts_with('.')), "{names:?}");
    assert!(r.prepare("1.0.0").is_err());
    for bad in ["", "current", "..", "a/b", ".tmp-x"] {
        assert!(r.prepare(bad).is_err(), "{bad:?}");
    }
    // A `current` that points at nothing is not taken for a fresh box.
    fs::remove_dir_all(r.dir("1.0.0")).unwrap();
    let e = r.prepare("1.2.0").unwrap_err();
    assert!(e.to_string().contains("not a directory"), "{e}");
    assert!(!r.dir("1.2.0").exists());
}

#[test]
fn install_replaces_atomically_keeps_modes_and_stays_inside() {
    let (d, r) = bed();
    let rel = r.prepare("1.0.0").unwrap();
    let staged = d.path().join("staged.yml");
    fs::write(&staged, b"services: {}\n").unwrap();
    r.install("1.0.0", &staged, "compose/docker-compose.yml")
        .unwrap();
    let target = rel.join("compose/docker-compose.yml");
    assert_eq!(fs::read(&target).unwrap(), b"services: {}\n");
    assert_eq!(mode(&target), 0o644);
    // A replaced file keeps its mode.
    fs::set_permissions(&target, fs::Permissions::from_mode(0o600)).unwrap();
    fs::write(&staged, b"v2").unwrap();
    r.install("1.0.0", &staged, "compose/docker-compose.yml")
        .unwrap();
    assert_eq!(fs::read(&target).unwrap(), b"v2");
    assert_eq!(mode(&target), 0o600);
    // Out of the release: by `..`, absolutely, or through a link in the copy.
    let outside = d.path().join("outside");
    fs::create_dir(&outside).unwrap();
    symlink(&outside, rel.join("escape")).unwrap();
    for to in ["../x", "/etc/x", "a/../../x", "escape/x", ""] {
        assert!(r.install("1.0.0", &staged, to).is_err(), "{to:?}");
    }
    assert_eq!(fs::read_dir(&outside).unwrap().count(), 0);
    assert!(
        r.install("1.0.0", &staged, "compose").is_err(),
        "a directory"
    );
    assert!(r.install("9.9.9", &staged, "x").is_err(), "no such release");
    let left: Vec<_> = fs::read_dir(rel.join("compose")).unwrap().collect();
    assert_eq!(left.len(), 1, "no temporary file is left");
}

#[test]
fn switch_is_idempotent_and_none_removes_the_link() {
    let (_d, r) = bed();
    r.prepare("1.0.0").unwrap();
    r.prepare("1.1.0").unwrap();
    r.switch(Some("1.0.0")).unwrap();
    r.switch(Some("1.0.0")).unwrap();
    assert_eq!(r.current().as_deref(), Some("1.0.0"));
    r.switch(Some("1.1.0")).unwrap();
    assert_eq!(r.current().as_deref(), Some("1.1.0"));
    assert!(r.switch(Some("2.0.0")).is_err(), "no such release");
    assert_eq!(r.current().as_deref(), Some("1.1.0"));
    r.switch(None).unwrap();
    r.switch(None).unwrap();
    assert_eq!(r.current(), None);
    assert!(r.dir("1.1.0").is_dir(), "the release stays");
}

#[test]
fn a_switch_that_fails_midway_leaves_the_old_link_or_the_new_one() {
    for (step, expect) in [
        (SwitchStep::TempLinked, "1.0.0"),
        (SwitchStep::Renamed, "1.1.0"),
    ] {
        let (_d, r) = bed();
        r.prepare("1.0.0").unwrap();
        r.prepare("1.1.0").unwrap();
        r.switch(Some("1.0.0")).unwrap();
        let mut fail = |at: SwitchStep| {
            if at == step {
                Err(io::Error::other("power cut"))
            } else {
                Ok(())
            }
        };
        assert!(r.switch_with(Some("1.1.0"), &mut fail).is_err());
        assert_eq!(
            r.current().as_deref(),
            Some(expect),
            "failing after {step:?}"
        );
        // Done again, it completes.
        r.switch(Some("1.1.0")).unwrap();
        assert_eq!(r.current().as_deref(), Some("1.1.0"));
    }
}

#[test]
fn prune_keeps_the_newest_the_current_and_the_spared() {
    let (_d, r) = bed();
    for (i, name) in ["1.0.0", "1.1.0", "1.2.0", "1.3.0", "1.4.0"]
        .iter()
        .enumerate()
    {
        r.prepare(name).unwrap();
        age(&r, name, 1000 - i as u64 * 100);
    }
    r.switch(Some("1.0.0")).unwrap();
    fs::create_dir(r.root().join(format!("{TMP_PREFIX}2.0.0"))).unwrap();
    // Newest two: 1.4.0, 1.3.0; current 1.0.0 and spared 1.1.0 stay.
    let removed = r.prune(2, &["1.1.0"]).unwrap();
    assert_eq!(removed, vec!["1.2.0".to_string()]);
    let mut left: Vec<String> = r.list().unwrap().into_iter().map(|(n, _)| n).collect();
    left.sort();
    assert_eq!(left, ["1.0.0", "1.1.0", "1.3.0", "1.4.0"]);
    assert!(!r.root().join(format!("{TMP_PREFIX}2.0.0")).exists());
    assert_eq!(r.prune(2, &[]).unwrap(), vec!["1.1.0".to_string()]);
    assert_eq!(r.prune(0, &[]).unwrap(), vec!["1.3.0", "1.4.0"]);
    assert_eq!(r.current().as_deref(), Some("1.0.0"));
    assert!(r.dir("1.0.0").is_dir());
    // Removing: the current one is refused, an absent one is fine.
    assert!(r.remove("1.0.0").is_err());
    r.remove("7.7.7").unwrap();
    assert_eq!(
        Releases::new(Path::new("/nonexistent"))
            .prune(1, &[])
            .unwrap(),
        Vec::<String>::new()
    );
}
