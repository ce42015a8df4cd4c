//! The .deb as built by `cargo deb`: lintian's verdict, what it carries and where, its
//! conffile, the order of its maintainer scripts, and the polkit list against the vendor
//! policies. The system test (tests/system.rs) installs it on a booted systemd.

mod deb_support;

use deb_support::{deb_path, run};
use std::collections::BTreeSet;

#[test]
fn lintian_has_no_errors_and_no_warnings() {
    let deb = deb_path();
    let deb = deb.to_str().unwrap();
    let out = std::process::Command::new("lintian")
        .args(["--info", "--show-overrides", deb])
        .output()
        .expect("lintian is missing: apt-get install lintian (scripts/test.sh does)");
    let text = String::from_utf8_lossy(&out.stdout);
    eprintln!("lintian {deb}:\n{text}");
    let bad: Vec<&str> = text
        .lines()
        .filter(|l| l.starts_with("E:") || l.starts_with("W:"))
        .collect();
    assert!(
        bad.is_empty(),
        "lintian errors or warnings:\n{}",
        bad.join("\n")
    );
    // The one override, which carries its reason in packaging/lintian/vigil.
    let overridden: Vec<&str> = text.lines().filter(|l| l.starts_with("O:")).collect();
    assert_eq!(
        overridden,
        ["O: vigil: initial-upload-closes-no-bugs [usr/share/doc/vigil/changelog.Debian.gz:1]"]
    );
    assert!(
        out.status.success(),
        "lintian exited {}: {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn the_package_carries_every_file_where_the_design_puts_it() {
    let deb = deb_path();
    let listing = run("dpkg-deb", &["-c", deb.to_str().unwrap()]);
    let mut files = BTreeSet::new();
    for line in listing.lines() {
        let cols: Vec<&str> = line.split_whitespace().collect();
        let (mode, owner, path) = (cols[0], cols[1], cols[cols.len() - 1]);
        assert_eq!(owner, "0/0", "{path} is not root's");
        if !mode.starts_with('d') {
            let want = if path.starts_with("./usr/bin/") || path.starts_with("./usr/libexec/") {
                "-rwxr-xr-x"
            } else {
                "-rw-r--r--"
            };
            assert_eq!(mode, want, "{path}");
            files.insert(path.trim_start_matches('.').to_string());
        }
    }
    let mut expected: BTreeSet<String> = [
        "/usr/bin/vigild",
        "/usr/bin/vigilctl",
        "/usr/libexec/vigil/vigil-docker-proxy",
        "/usr/libexec/vigil/vigil-run",
        "/etc/vigil/vigil.toml",
        "/usr/lib/systemd/system/vigild.service",
        "/usr/lib/systemd/system/vigild.socket",
        "/usr/lib/systemd/system/vigil-docker-proxy.service",
        "/usr/lib/systemd/system/vigil-docker-proxy.socket",
        "/usr/lib/systemd/system/vigil-run.socket",
        "/usr/lib/systemd/system/vigil-run@.service",
        "/usr/lib/systemd/system/vigil-journal-vacuum@.service",
        "/usr/lib/systemd/system/vigil-usb@.service",
        "/usr/lib/systemd/system/vigil-smart@.service",
        "/usr/lib/udev/rules.d/90-vigil-usb.rules",
        "/usr/share/dbus-1/system.d/org.vigil.Vigil1.conf",
        "/usr/share/dbus-1/interfaces/org.vigil.Vigil1.Manager.xml",
        "/usr/share/dbus-1/interfaces/org.vigil.Vigil1.Check.xml",
        "/usr/lib/sysusers.d/vigil.conf",
        "/usr/lib/tmpfiles.d/vigil.conf",
        "/usr/share/polkit-1/rules.d/50-vigil.rules",
        "/usr/share/man/man8/vigild.8.gz",
        "/usr/share/man/man1/vigilctl.1.gz",
        "/usr/share/bash-completion/completions/vigilctl",
        "/usr/share/zsh/vendor-completions/_vigilctl",
        "/usr/share/fish/vendor_completions.d/vigilctl.fish",
        "/usr/share/lintian/overrides/vigil",
        "/usr/share/doc/vigil/copyright",
        "/usr/share/doc/vigil/changelog.Debian.gz",
        "/usr/share/doc/vigil/README.md",
        "/usr/share/doc/vigil/examples/prometheus/vigil-alerts.yml",
        "/usr/share/doc/vigil/examples/grafana/grafana-dashboard.json",
    ]
    .map(String::from)
    .into_iter()
    .collect();
    let root = env!("CARGO_MANIFEST_DIR");
    for (dir, to) in [
        ("policies", "/usr/lib/vigil/policies.d"),
        ("docs", "/usr/share/doc/vigil"),
    ] {
        for e in std::fs::read_dir(format!("{root}/{dir}"))
            .unwrap()
            .flatten()
        {
            let name = e.file_name().to_string_lossy().into_owned();
            if name.ends_with(".toml") || name.ends_with(".md") {
                expected.insert(format!("{to}/{name}"));
            }
        }
    }
    assert_eq!(
        files, expected,
        "the package's files differ from the design's list"
    );
    // The installed copies are the repository's (nothing stale went into the package).
    let tmp = deb_support::unpack(&deb);
    for (src, dst) in [
        (
            "units/vigild.service",
            "usr/lib/systemd/system/vigild.service",
        ),
        (
            "units/vigil-docker-proxy.service",
            "usr/lib/systemd/system/vigil-docker-proxy.service",
        ),
        (
            "units/vigil-docker-proxy.socket",
            "usr/lib/systemd/system/vigil-docker-proxy.socket",
        ),
        ("packaging/vigil.toml", "etc/vigil/vigil.toml"),
        (
            "dbus/org.vigil.Vigil1.conf",
            "usr/share/dbus-1/system.d/org.vigil.Vigil1.conf",
        ),
        (
            "packaging/polkit/50-vigil.rules",
            "usr/share/polkit-1/rules.d/50-vigil.rules",
        ),
        ("packaging/vigil.sysusers", "usr/lib/sysusers.d/vigil.conf"),
        (
            "units/vigil-usb@.service",
            "usr/lib/systemd/system/vigil-usb@.service",
        ),
        (
            "units/vigil-smart@.service",
            "usr/lib/systemd/system/vigil-smart@.service",
        ),
        (
            "packaging/udev/90-vigil-usb.rules",
            "usr/lib/udev/rules.d/90-vigil-usb.rules",
        ),
        ("packaging/vigil.tmpfile", "usr/lib/tmpfiles.d/vigil.conf"),
        (
            "policies/30-stack.toml",
            "usr/lib/vigil/policies.d/30-stack.toml",
        ),
    ] {
        assert_eq!(
            std::fs::read_to_string(format!("{root}/{src}")).unwrap(),
            std::fs::read_to_string(tmp.path().join(dst)).unwrap(),
            "{dst} in the package is not {src}: rebuild it with `cargo deb`"
        );
    }
}

#[test]
fn conffile_and_maintainer_scripts_follow_debhelper() {
    let deb = deb_path();
    let tmp = tempfile::tempdir().unwrap();
    run(
        "dpkg-deb",
        &["-e", deb.to_str().unwrap(), tmp.path().to_str().unwrap()],
    );
    let read = |f: &str| std::fs::read_to_string(tmp.path().join(f)).unwrap();
    assert_eq!(read("conffiles").trim(), "/etc/vigil/vigil.toml");
    let control = read("control");
    for want in [
        "Package: vigil",
        "Section: admin",
        "Depends: ",
        "systemd (>= 249)",
    ] {
        assert!(control.contains(want), "control lacks {want:?}:\n{control}");
    }
    // postinst: users first, then the directories and credential files they own, then
    // enable and start (the unit's LoadCredential= files must exist by then).
    let postinst = read("postinst");
    let at = |what: &str| {
        postinst
            .find(what)
            .unwrap_or_else(|| panic!("postinst lacks {what:?}:\n{postinst}"))
    };
    let (users, dirs, enable, start) = (
        at("systemd-sysusers ${DPKG_ROOT:+--root=\"$DPKG_ROOT\"} vigil.conf"),
        at("systemd-tmpfiles --create vigil.conf"),
        at("deb-systemd-helper enable vigild.service"),
        at("deb-systemd-invoke $_dh_action vigild.service vigild.socket"),
    );
    assert!(
        users < dirs && dirs < enable && enable < start,
        "{postinst}"
    );
    assert!(postinst.contains("deb-systemd-helper enable vigild.socket"));
    // The Docker proxy's socket is enabled and started before vigild, which talks to it.
    let proxy = at("deb-systemd-helper enable vigil-docker-proxy.socket");
    let proxy_start =
        at("deb-systemd-invoke $_dh_action vigil-docker-proxy.service vigil-docker-proxy.socket");
    assert!(
        dirs < proxy && proxy < proxy_start && proxy_start < enable,
        "{postinst}"
    );
    // Stopped only on removal: an upgrade restarts vigild in postinst instead, so the box is
    // never left unwatched between the two.
    let prerm = read("prerm");
    assert!(
        prerm.contains(
            "if [ -d /run/systemd/system ] && [ \"$1\" = remove ]; then\n\
             \tdeb-systemd-invoke stop vigild.service vigild.socket"
        ),
        "{prerm}"
    );
    assert!(postinst.contains("_dh_action=restart"), "{postinst}");
    // preinst makes the user and groups before dbus-daemon reads the policy that names
    // them, with the very lines of the sysusers file.
    let preinst = read("preinst");
    let heredoc: Vec<&str> = preinst
        .split("<<'SYSUSERS'\n")
        .nth(1)
        .and_then(|s| s.split("SYSUSERS\n").next())
        .expect("the sysusers lines in preinst")
        .lines()
        .collect();
    let sysusers = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/packaging/vigil.sysusers"
    ))
    .unwrap();
    let lines: Vec<&str> = sysusers
        .lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .collect();
    assert_eq!(
        heredoc, lines,
        "preinst and packaging/vigil.sysusers differ"
    );
    assert!(
        preinst.contains("--replace=/usr/lib/sysusers.d/vigil.conf -"),
        "{preinst}"
    );
    let postrm = read("postrm");
    for want in [
        "deb-systemd-helper purge vigild.service",
        "rm -rf /var/lib/vigil",
        "rmdir --ignore-fail-on-non-empty",
    ] {
        assert!(postrm.contains(want), "postrm lacks {want:?}:\n{postrm}");
    }
    for s in ["preinst", "postinst", "prerm", "postrm"] {
        run("sh", &["-n", tmp.path().join(s).to_str().unwrap()]);
    }
}

/// The units in the polkit rules' list.
fn polkit_units() -> BTreeSet<String> {
    let rules = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/packaging/polkit/50-vigil.rules"
    ))
    .unwrap();
    let list = rules
        .split("var UNITS = [")
        .nth(1)
        .and_then(|s| s.split("];").next())
        .expect("the UNITS list in 50-vigil.rules");
    list.split(',')
        .map(|s| s.trim().trim_matches('"').to_string())
        .filter(|s| !s.is_empty())
        .collect()
}

#[test]
fn polkit_lists_every_unit_the_vendor_policies_control() {
    let units = polkit_units();
    assert!(units.contains("docker.service"), "{units:?}");
    let mut named = BTreeSet::new();
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/policies");
    for e in std::fs::read_dir(dir).unwrap().flatten() {
        let text = std::fs::read_to_string(e.path()).unwrap();
        let value: toml::Value = toml::from_str(&text).unwrap();
        for rule in value
            .get("rule")
            .and_then(|r| r.as_array())
            .into_iter()
            .flatten()
        {
            for step in rule["do"].as_array().unwrap() {
                let step = step.as_str().unwrap();
                if let Some(unit) = step
                    .split_whitespace()
                    .nth(1)
                    .and_then(|t| t.strip_prefix("unit:"))
                {
                    named.insert(unit.to_string());
                }
            }
        }
    }
    assert!(!named.is_empty(), "no vendor policy controls a unit");
    let missing: Vec<&String> = named.difference(&units).collect();
    assert!(
        missing.is_empty(),
        "vendor policies control units polkit does not let vigil touch: {missing:?} \
         (add them to UNITS in packaging/polkit/50-vigil.rules)"
    );
}
