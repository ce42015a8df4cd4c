//! The USB stick path of the package, short of a booted systemd (tests/system.rs runs it
//! there): the udev rule, by udev's own rule engine (`udevadm test` on real loop devices,
//! and `udevadm verify` where udevadm has it: systemd 254 and later; Debian 12 has 252), and
//! the unit, by systemd-analyze.
//!
//! `udevadm test` reads rules only from the system's rule directories and writes device
//! links and its database, so it runs in a mount namespace of its own (unshare) with fresh
//! tmpfs on /run and /dev: the rule under test in /run/udev/rules.d, the stick's device
//! node made there, the host's /dev and /run untouched. A rule file there stands in for the
//! USB bus (`ID_BUS=usb`), which a loop device does not have. Needs root.

mod usb_support;

use std::process::Command;
use usb_support::Stick;

const RULE: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/packaging/udev/90-vigil-usb.rules"
);
const UNIT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/units/vigil-usb@.service");

/// What `udevadm test` made of an event for `stick`: its whole output.
fn udev_event(stick: &Stick, action: &str, on_usb: bool) -> String {
    let (major, minor) = stick.numbers();
    let script = format!(
        "set -e
         mount -t tmpfs tmpfs /run
         mkdir -p /run/udev/rules.d
         mount -t tmpfs tmpfs /dev
         mknod -m 666 /dev/null c 1 3
         mknod -m 660 /dev/{dev} b {major} {minor}
         cp '{RULE}' /run/udev/rules.d/90-vigil-usb.rules
         if [ {usb} = 1 ]; then
             echo 'SUBSYSTEM==\"block\", KERNEL==\"{dev}\", ENV{{ID_BUS}}=\"usb\"' \
                 >/run/udev/rules.d/00-vigil-test-usb.rules
         fi
         exec udevadm test --action={action} /sys/class/block/{dev} 2>&1",
        dev = stick.dev,
        usb = u8::from(on_usb),
    );
    let out = Command::new("unshare")
        .args(["--mount", "--propagation", "private", "sh", "-c", &script])
        .output()
        .expect("unshare (util-linux)");
    let text =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "udevadm test in a private namespace failed ({}): {text}\n\
         (needs root, util-linux and udevadm: apt-get install udev; scripts/test.sh does)",
        out.status
    );
    text
}

/// A property of the device after the event (`KEY=VALUE` lines), "" when unset.
fn property<'a>(udev: &'a str, key: &str) -> &'a str {
    udev.lines()
        .find_map(|l| l.strip_prefix(key)?.strip_prefix('='))
        .unwrap_or("")
}

#[test]
fn the_udev_rule_wants_the_unit_for_a_usb_stick_with_a_file_system_only() {
    assert!(
        unsafe { geteuid() } == 0,
        "needs root: loop devices, mknod and mounts in a private namespace"
    );
    // udevadm verify, where this udevadm has it.
    let has_verify = Command::new("udevadm")
        .args(["verify", "--help"])
        .output()
        .expect("udevadm (package udev) must be installed")
        .status
        .success();
    if has_verify {
        let out = Command::new("udevadm")
            .args(["verify", "--resolve-names=never", RULE])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "udevadm verify {RULE}: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let dir = tempfile::tempdir().unwrap();
    let fat = Stick::fat(dir.path(), "VIGILTEST", &[]);
    let blank = Stick::blank(dir.path(), "blank");

    let plugged = udev_event(&fat, "add", true);
    // udev read the rule and found nothing wrong with it.
    assert!(
        plugged.contains("Reading rules file: /run/udev/rules.d/90-vigil-usb.rules"),
        "{plugged}"
    );
    let complaints: Vec<&str> = plugged
        .lines()
        .filter(|l| l.contains("90-vigil-usb.rules:"))
        .collect();
    assert!(complaints.is_empty(), "udev on the rule: {complaints:#?}");
    assert_eq!(property(&plugged, "ID_FS_USAGE"), "filesystem", "{plugged}");
    assert_eq!(
        property(&plugged, "SYSTEMD_WANTS"),
        format!("vigil-usb@{}.service", fat.dev),
        "{plugged}"
    );
    assert!(
        property(&plugged, "TAGS").contains(":systemd:"),
        "{plugged}"
    );

    // Not on USB, not a file system, not plugged in: no unit.
    for (what, udev) in [
        ("a file system not on USB", udev_event(&fat, "add", false)),
        (
            "a USB device without a file system",
            udev_event(&blank, "add", true),
        ),
        ("a change event", udev_event(&fat, "change", true)),
    ] {
        assert!(
            !property(&udev, "SYSTEMD_WANTS").contains("vigil-usb@"),
            "{what} wants the unit: {udev}"
        );
    }
}

/// The unit as systemd-analyze sees it, for an instance, with the built vigilctl.
fn prepared_unit() -> (tempfile::TempDir, String) {
    let dir = tempfile::tempdir().unwrap();
    let text = std::fs::read_to_string(UNIT)
        .unwrap()
        .replace("/usr/bin/vigilctl", env!("CARGO_BIN_EXE_vigilctl"));
    let name = "vigil-usb@sdb1.service".to_string();
    std::fs::write(dir.path().join(&name), text).unwrap();
    (dir, name)
}

#[test]
fn the_usb_unit_verifies_mounts_read_only_and_is_sandboxed() {
    let (dir, name) = prepared_unit();
    let out = Command::new("systemd-analyze")
        .args(["verify", "--man=no", &format!("./{name}")])
        .current_dir(dir.path())
        .output()
        .expect("systemd-analyze (package systemd) must be installed");
    let text =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{text}");
    assert!(text.trim().is_empty(), "systemd-analyze verify:\n{text}");

    let out = Command::new("systemd-analyze")
        .args([
            "security",
            "--offline=yes",
            "--no-pager",
            &format!("./{name}"),
        ])
        .current_dir(dir.path())
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let score: f64 = text
        .lines()
        .find_map(|l| l.split("Overall exposure level for ").nth(1))
        .and_then(|l| l.split(": ").nth(1))
        .and_then(|s| s.split_whitespace().next())
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no score in:\n{text}"));
    // 2.9 today: no file-system sandboxing, which would hide the mount (see the unit).
    assert!(score <= 3.0, "exposure {score} > 3.0:\n{text}");

    // What the unit runs: the mount read-only and without devices, setuid or executables,
    // as root (the "+" lines) only for mounting and unmounting; vigilctl as vigil-usb.
    let unit = std::fs::read_to_string(UNIT).unwrap();
    let lines: Vec<&str> = unit
        .lines()
        .filter(|l| !l.trim_start().starts_with('#'))
        .collect();
    assert!(
        lines.contains(
            &"ExecStartPre=+/bin/mount -o ro,nosuid,nodev,noexec /dev/%I /run/vigil/usb/%I"
        ),
        "{unit}"
    );
    assert!(
        lines.contains(&"ExecStart=/usr/bin/vigilctl update usb /run/vigil/usb/%I"),
        "{unit}"
    );
    for l in &lines {
        if l.starts_with("Exec") && l.contains("=+") {
            let cmd = l.split("=+").nth(1).unwrap().trim_start_matches('-');
            let prog = cmd.split_whitespace().next().unwrap();
            assert!(
                ["/bin/mkdir", "/bin/mount", "/bin/umount", "/bin/rmdir"].contains(&prog),
                "a privileged line runs {prog}: {l}"
            );
        }
    }
    assert!(lines.contains(&"User=vigil-usb"), "{unit}");
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with("ExecStopPost=+-/bin/umount ")),
        "unmounted also when vigilctl failed: {unit}"
    );
    // Nothing that gives the unit's commands mount namespaces of their own (the "+" lines
    // too: their mount would be seen by nobody) or a device policy (mount could not open
    // the stick).
    for d in [
        "ProtectSystem=",
        "ProtectHome=",
        "PrivateTmp=",
        "PrivateDevices=",
        "PrivateMounts=",
        "ProtectKernelTunables=",
        "ProtectKernelModules=",
        "ProtectKernelLogs=",
        "ProtectControlGroups=",
        "ProtectProc=",
        "ProcSubset=",
        "ProtectClock=",
        "DeviceAllow=",
        "DevicePolicy=",
        "DynamicUser=",
        "ReadOnlyPaths=",
        "TemporaryFileSystem=",
    ] {
        assert!(
            !lines.iter().any(|l| l.starts_with(d)),
            "{d} would hide the mount or the stick: {unit}"
        );
    }
    // Nothing newer than systemd 249 (JetPack 6).
    for d in [
        "RestartSteps=",
        "OpenFile=",
        "ImportCredential=",
        "MemoryZSwapMax=",
    ] {
        assert!(!lines.iter().any(|l| l.starts_with(d)), "{d}");
    }
}

/// The rule's user exists in the package's sysusers file, in vigil-admin.
#[test]
fn the_usb_user_is_a_member_of_vigil_admin() {
    let sysusers = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/packaging/vigil.sysusers"
    ))
    .unwrap();
    let words = |l: &str| l.split_whitespace().map(String::from).collect::<Vec<_>>();
    let lines: Vec<Vec<String>> = sysusers
        .lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .map(words)
        .collect();
    assert!(
        lines.iter().any(|w| w[..2] == ["u", "vigil-usb"]),
        "{sysusers}"
    );
    assert!(
        lines
            .iter()
            .any(|w| w[..] == ["m", "vigil-usb", "vigil-admin"]),
        "{sysusers}"
    );
}

extern "C" {
    fn geteuid() -> u32;
}
