//! The `smart` probe end to end: a real vigild reading prepared smartctl output (status,
//! details, Prometheus metrics), the unit's own script run for real against this machine's
//! disk, the real smartctl's answer through the parser, and the unit's verification.

mod common;

use std::path::Path;
use std::process::Command;
use std::time::{Duration, SystemTime};

use common::{vigilctl, wait_for, Bus, VigildBuilder};
use vigil::core::metric::Reading;
use vigil::probe::smart::SmartProbe;
use vigil::probe::{Context, Probe};

const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/smart");
const UNIT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/units/vigil-smart@.service");

fn fixture(name: &str) -> String {
    std::fs::read_to_string(format!("{FIXTURES}/{name}.json")).unwrap()
}

/// Puts `name`'s output for instance `inst` into `dir`, as the unit leaves it.
fn put(dir: &Path, inst: &str, name: &str) {
    let text = fixture(name);
    let doc: serde_json::Value = serde_json::from_str(&text).unwrap();
    let exit = doc["smartctl"]["exit_status"].as_i64().unwrap();
    std::fs::write(dir.join(format!("{inst}.exit")), format!("{exit}\n")).unwrap();
    std::fs::write(dir.join(format!("{inst}.json")), text).unwrap();
}

fn check(name: &str, device: &str, dir: &Path, extra: &str) -> String {
    format!(
        "[[check]]\nname = \"{name}\"\nprobe = \"smart\"\ndevice = \"{device}\"\ndir = \"{}\"\nevery = \"1h\"\n{extra}\n",
        dir.display()
    )
}

/// The smartctl on PATH, or a loud failure: the test command installs smartmontools.
fn smartctl() -> &'static str {
    let out = Command::new("smartctl")
        .arg("--version")
        .output()
        .expect("smartctl is missing: apt-get install smartmontools (scripts/test.sh installs it)");
    assert!(out.status.success(), "smartctl --version failed: {out:?}");
    "smartctl"
}

/// This machine's disks, as `/dev/NAME` (no loop, ram, zram or device-mapper devices).
fn disks() -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir("/sys/block")
        .unwrap()
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter(|n| {
            !["loop", "ram", "zram", "dm-", "md", "sr", "nbd"]
                .iter()
                .any(|p| n.starts_with(p))
        })
        .map(|n| format!("/dev/{n}"))
        .collect();
    v.sort();
    v
}

#[test]
fn a_real_vigild_reads_prepared_output_and_exports_metrics() {
    let out = tempfile::tempdir().unwrap();
    let d = out.path();
    put(d, "dev-nvme0", "nvme-wd-sn530-worn");
    put(d, "dev-nvme1", "nvme-samsung-980pro");
    put(d, "dev-sda", "sata-wd-blue-failing");
    put(d, "dev-sdb", "sata-crucial-mx500");
    put(d, "dev-sdc", "usb-stick-no-smart");
    put(d, "dev-sdd", "sata-crucial-mx500");
    // Written two days ago: stale. Nothing may refresh it (refresh = false) for sdd; for sde
    // vigild tries to start the unit, and there is no systemd to start it.
    let two_days_ago = SystemTime::now() - Duration::from_secs(2 * 86400);
    put(d, "dev-sde", "sata-crucial-mx500");
    for inst in ["dev-sdd", "dev-sde"] {
        std::fs::File::options()
            .write(true)
            .open(d.join(format!("{inst}.json")))
            .unwrap()
            .set_modified(two_days_ago)
            .unwrap();
    }
    let policy = [
        check("nvme-worn", "/dev/nvme0", d, ""),
        check("nvme-good", "/dev/nvme1", d, ""),
        check("sata-failing", "/dev/sda", d, ""),
        check("sata-good", "/dev/sdb", d, "warn = \"pending_sectors > 0\""),
        check("usb-stick", "/dev/sdc", d, ""),
        check("stale", "/dev/sdd", d, "refresh = false"),
        check("stale-refresh", "/dev/sde", d, ""),
        check("absent", "/dev/sdf", d, "refresh = false"),
    ]
    .concat();
    let bus = Bus::start();
    let v = VigildBuilder::new().bus(&bus).policy(&policy).start();
    let want = [
        ("nvme-worn", 1),
        ("nvme-good", 0),
        ("sata-failing", 2),
        ("sata-good", 0),
        ("usb-stick", 3),
        ("stale", 3),
        ("stale-refresh", 3),
        ("absent", 3),
    ];
    let text = wait_for(
        Duration::from_secs(20),
        "every smart check's status in /metrics",
        || {
            let (code, _, body) = v.http("GET", "/metrics");
            assert_eq!(code, 200);
            want.iter()
                .all(|(c, s)| {
                    body.contains(&format!(
                        "vigil_check_status{{check=\"{c}\",probe=\"smart\"}} {s}\n"
                    ))
                })
                .then_some(body)
        },
    );
    // One sample's value, by series.
    let sample = |series: &str| -> f64 {
        text.lines()
            .find_map(|l| l.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
            .unwrap_or_else(|| panic!("no sample {series} in:\n{text}"))
    };
    for (series, want) in [
        (
            "vigil_smart_percentage_used_ratio{check=\"nvme-worn\"}",
            0.94,
        ),
        (
            "vigil_smart_available_spare_ratio{check=\"nvme-worn\"}",
            0.63,
        ),
        (
            "vigil_smart_available_spare_threshold_ratio{check=\"nvme-worn\"}",
            0.1,
        ),
        ("vigil_smart_temperature_celsius{check=\"nvme-worn\"}", 52.0),
        (
            "vigil_smart_power_on_seconds{check=\"nvme-worn\"}",
            31544.0 * 3600.0,
        ),
        ("vigil_smart_media_errors_total{check=\"nvme-good\"}", 0.0),
        ("vigil_smart_critical_warning{check=\"nvme-good\"}", 0.0),
        ("vigil_smart_passed{check=\"sata-failing\"}", 0.0),
        ("vigil_smart_passed{check=\"sata-good\"}", 1.0),
        ("vigil_smart_exit_status{check=\"sata-failing\"}", 88.0),
        (
            "vigil_smart_reallocated_sectors{check=\"sata-failing\"}",
            1848.0,
        ),
        ("vigil_smart_pending_sectors{check=\"sata-failing\"}", 120.0),
        (
            "vigil_smart_offline_uncorrectable{check=\"sata-failing\"}",
            96.0,
        ),
        ("vigil_smart_temperature_celsius{check=\"sata-good\"}", 34.0),
    ] {
        let got = sample(series);
        assert!((got - want).abs() < 1e-9, "{series}: {got} != {want}");
    }
    assert!(
        text.contains("# TYPE vigil_smart_media_errors_total counter\n"),
        "media errors are a counter:\n{text}"
    );
    assert!(
        !text.contains("media_errors_new"),
        "a derived metric is not exported"
    );
    assert!(
        !text.contains("vigil_smart_percentage_used_ratio{check=\"sata-good\"}"),
        "a SATA disk has no NVMe wear figure"
    );
    // vigilctl, over vigild's bus, shows what each check found (asked again each time).
    let detail = |name: &str| -> String {
        let (code, out, err) = vigilctl(&["--bus", &bus.address, "--json", "checks"]);
        assert_eq!(code, 0, "vigilctl checks: {err}");
        let doc: serde_json::Value = serde_json::from_str(&out).unwrap();
        doc.as_array()
            .unwrap()
            .iter()
            .find(|c| c["name"] == name)
            .unwrap_or_else(|| panic!("no check {name} in {doc}"))["detail"]
            .as_str()
            .unwrap_or_default()
            .to_string()
    };
    for (name, want) in [
        ("nvme-worn", "percentage_used >= 90%"),
        ("sata-failing", "SMART overall health FAILED"),
        (
            "sata-failing",
            "attribute at or below its threshold now: 5 Reallocated_Sector_Ct",
        ),
        ("usb-stick", "/dev/sdc is not SMART-capable"),
        ("stale", "is stale: written 2days"),
        ("stale", "systemctl start vigil-smart@dev-sdd.service"),
        (
            "stale-refresh",
            "starting vigil-smart@dev-sde.service failed",
        ),
        ("absent", "no SMART output for /dev/sdf at"),
    ] {
        // A check read later than the others (a refresh that fails first) may still say
        // "not probed yet": wait for its reading, then judge it.
        let got = wait_for(Duration::from_secs(20), name, || {
            let d = detail(name);
            (!d.contains("not probed yet")).then_some(d)
        });
        assert!(got.contains(want), "{name}: {want:?} in {got:?}");
    }
}

#[test]
fn the_units_script_runs_smartctl_on_this_machines_disk_and_vigil_reads_the_result() {
    smartctl();
    let unit = std::fs::read_to_string(UNIT).unwrap();
    let exec = unit
        .lines()
        .find_map(|l| l.strip_prefix("ExecStart=/bin/sh -c '"))
        .expect("ExecStart=/bin/sh -c '…' in the unit");
    let (script, args) = exec.rsplit_once("' ").unwrap();
    assert_eq!(
        args, "vigil-smart %f %i",
        "device and instance as arguments, never in the script"
    );
    let disk = disks().into_iter().next().expect("this machine has a disk");
    let inst = disk.trim_start_matches('/').replace('/', "-");
    let run = |script: &str, dir: &Path| {
        // What systemd hands /bin/sh: `$$` is a `$`, the output directory is ours.
        let script = script
            .replace("$$", "$")
            .replace("/run/vigil-smart", dir.to_str().unwrap());
        let st = Command::new("/bin/sh")
            .args(["-c", &script, "vigil-smart", &disk, &inst])
            .status()
            .unwrap();
        assert!(
            st.success(),
            "the unit must succeed whatever smartctl says: {st}"
        );
        let names: Vec<String> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        assert!(
            !names.iter().any(|n| n.ends_with(".tmp")),
            "temporary files renamed away: {names:?}"
        );
    };
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let read = |dir: &Path| {
        let mut p = SmartProbe::new(
            disk.clone().into(),
            dir.to_path_buf(),
            false,
            Duration::from_secs(600),
            Duration::from_secs(30),
            &Context::default(),
        );
        rt.block_on(p.read())
    };

    // The real smartctl.
    let out = tempfile::tempdir().unwrap();
    run(script, out.path());
    let exit: i64 = std::fs::read_to_string(out.path().join(format!("{inst}.exit")))
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    let json = std::fs::read_to_string(out.path().join(format!("{inst}.json"))).unwrap();
    let doc: serde_json::Value = serde_json::from_str(&json).expect("smartctl wrote JSON");
    assert_eq!(
        doc["smartctl"]["exit_status"], exit,
        "the exit status beside the output is smartctl's"
    );
    eprintln!("smartctl -a {disk}: exit {exit}: {json}");
    match read(out.path()) {
        Reading::Value {
            metrics, detail, ..
        } => {
            assert!(metrics.contains_key("passed"), "{metrics:?}");
            assert!(detail.contains(&disk), "{detail}");
        }
        Reading::Unknown(why) => {
            eprintln!("{disk}: unknown: {why}");
            assert!(why.contains(&disk), "the reason names the disk: {why}");
            assert!(
                why.contains("smartctl"),
                "the reason says who could not tell: {why}"
            );
        }
        r => panic!("unexpected {r:?}"),
    }

    // smartctl missing: the unit still succeeds, and vigil says what to install.
    let out = tempfile::tempdir().unwrap();
    run(
        &script.replace("/usr/sbin/smartctl", "/nonexistent/smartctl"),
        out.path(),
    );
    let Reading::Unknown(why) = read(out.path()) else {
        panic!("no smartctl is unknown")
    };
    assert!(
        why.starts_with("smartctl is missing (exit status 127"),
        "{why}"
    );
    assert!(why.contains("apt-get install smartmontools"), "{why}");
}

#[test]
fn the_real_smartctl_answer_for_every_disk_here_parses_without_panic() {
    let bin = smartctl();
    let disks = disks();
    assert!(!disks.is_empty(), "no disk under /sys/block");
    for disk in disks {
        let out = Command::new(bin)
            .args(["--json=c", "-a", &disk])
            .output()
            .unwrap();
        let doc: serde_json::Value = serde_json::from_slice(&out.stdout)
            .unwrap_or_else(|e| panic!("smartctl -a {disk} is not JSON ({e}): {out:?}"));
        assert_eq!(
            doc["smartctl"]["exit_status"].as_i64(),
            out.status.code().map(i64::from),
            "{disk}"
        );
        match vigil::core::smart::parse(&doc) {
            Ok(h) => {
                assert_eq!(h.device, disk);
                let r = vigil::core::smart::assess(&h, None);
                assert!(matches!(r, Reading::Value { .. }), "{r:?}");
            }
            Err(why) => {
                eprintln!("{disk}: {why}");
                assert!(why.contains(&disk) && why.contains("smartctl"), "{why}");
            }
        }
    }
}

#[test]
fn the_unit_verifies_and_its_sandbox_scores_well() {
    let dir = tempfile::tempdir().unwrap();
    let inst = dir.path().join("vigil-smart@dev-nvme0.service");
    std::fs::copy(UNIT, &inst).unwrap();
    let out = Command::new("systemd-analyze")
        .args(["verify", "--man=no", "./vigil-smart@dev-nvme0.service"])
        .current_dir(dir.path())
        .output()
        .expect("systemd-analyze (package systemd) must be installed");
    let text =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success() && text.trim().is_empty(),
        "verify: {text}"
    );
    let out = Command::new("systemd-analyze")
        .args([
            "security",
            "--offline=yes",
            "--no-pager",
            "./vigil-smart@dev-nvme0.service",
        ])
        .current_dir(dir.path())
        .output()
        .unwrap();
    let text =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    assert!(!text.contains("Invalid device node path"), "{text}");
    let score: f64 = text
        .lines()
        .find(|l| l.contains("Overall exposure level"))
        .and_then(|l| l.split(':').nth(1)?.split_whitespace().next()?.parse().ok())
        .unwrap_or_else(|| panic!("no score in:\n{text}"));
    assert!(score <= 2.0, "exposure {score} > 2.0:\n{text}");
    // polkit lets vigil start exactly these instances.
    let rules = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/packaging/polkit/50-vigil.rules"
    ))
    .unwrap();
    assert!(
        rules.contains(r"/^vigil-smart@dev-[a-z][a-z0-9]*\.service$/.test(unit)"),
        "{rules}"
    );
}

#[test]
fn policy_check_accepts_a_smart_check_and_refuses_a_device_polkit_would_not() {
    let dir = tempfile::tempdir().unwrap();
    let good = dir.path().join("good.toml");
    std::fs::write(
        &good,
        "[[check]]\nname = \"nvme\"\nprobe = \"smart\"\ndevice = \"/dev/nvme0\"\n\
         crit = \"media_errors > 0\"\n",
    )
    .unwrap();
    let (code, out, err) = vigilctl(&["policy", "check", good.to_str().unwrap()]);
    assert_eq!(code, 0, "{out}{err}");
    let bad = dir.path().join("bad.toml");
    std::fs::write(
        &bad,
        "[[check]]\nname = \"nvme\"\nprobe = \"smart\"\ndevice = \"/dev/disk/by-id/nvme-x\"\n\
         warn = \"percentage_used > 80\"\n",
    )
    .unwrap();
    let (code, out, err) = vigilctl(&["policy", "check", bad.to_str().unwrap()]);
    assert_eq!(code, 1, "{out}{err}");
    let text = out + &err;
    assert!(text.contains("device must be /dev/NAME"), "{text}");
    assert!(text.contains("`percentage_used` is a percentage"), "{text}");
}
