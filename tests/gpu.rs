//! The `gpu` probe through its trait: a prepared Jetson AGX Orin sysfs/procfs tree
//! (tests/fixtures/jetson), NVML answers recorded from real devices (tests/fixtures/nvml),
//! the real NVML library loader on this machine (no NVIDIA driver here), and vigild end to
//! end over the Jetson tree.

mod common;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{wait_for, write_atomic, VigildBuilder};
use vigil::core::health::Status;
use vigil::core::threshold::{evaluate, parse};
use vigil::probe::gpu::nvml::{NvmlAnswers, NvmlBackend, NvmlSource};
use vigil::probe::gpu::{self, GpuBackend, GpuChoice, GpuProbe, NvmlOpener};
use vigil::probe::{Context, HostRoots, Metrics, Probe, ProbeKind, Reading};

const FIXTURE: &str = "tests/fixtures/jetson";

/// NVML answers recorded from a device, replayed in order (the last one repeats).
struct Recorded {
    reads: Vec<NvmlAnswers>,
    next: usize,
}

impl Recorded {
    fn load(name: &str) -> Recorded {
        let path = Path::new("tests/fixtures/nvml").join(name);
        let doc: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
        let reads: Vec<NvmlAnswers> = serde_json::from_value(doc["reads"].clone())
            .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        assert!(!reads.is_empty());
        Recorded { reads, next: 0 }
    }
}

impl NvmlSource for Recorded {
    fn read(&mut self) -> NvmlAnswers {
        let i = self.next.min(self.reads.len() - 1);
        self.next += 1;
        self.reads[i].clone()
    }
}

/// Opens NVML as the given recording.
fn recorded(name: &'static str) -> NvmlOpener {
    Arc::new(move |_device| {
        NvmlBackend::open(Recorded::load(name)).map(|b| Box::new(b) as Box<dyn GpuBackend>)
    })
}

/// NVML as on a host without the driver.
fn no_nvml() -> NvmlOpener {
    Arc::new(|_| {
        Err("cannot load libnvidia-ml.so.1 (no NVIDIA driver installed?): recorded".into())
    })
}

/// Copies a tree, keeping symlinks as symlinks (the fixture's are relative).
fn copy_tree(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        let (src, dst) = (e.path(), to.join(e.file_name()));
        let ft = e.file_type().unwrap();
        if ft.is_symlink() {
            let target = std::fs::read_link(&src).unwrap();
            assert!(target.is_relative(), "{}", src.display());
            std::os::unix::fs::symlink(target, &dst).unwrap();
        } else if ft.is_dir() {
            copy_tree(&src, &dst);
        } else {
            std::fs::copy(&src, &dst).unwrap();
        }
    }
}

/// A private copy of the Jetson fixture, to change.
struct Orin {
    dir: tempfile::TempDir,
}

impl Orin {
    fn new() -> Orin {
        let dir = tempfile::tempdir().unwrap();
        copy_tree(Path::new(FIXTURE), dir.path());
        Orin { dir }
    }
    fn sys(&self) -> PathBuf {
        self.dir.path().join("sys")
    }
    fn proc(&self) -> PathBuf {
        self.dir.path().join("proc")
    }
    fn ctx(&self) -> Context {
        Context {
            roots: HostRoots {
                proc: self.proc(),
                sys: self.sys(),
            },
            ..Default::default()
        }
    }
    fn set_gpu_temp(&self, milli: i64) {
        // thermal_zone1 is gpu-thermal.
        let zone = self.sys().join("class/thermal/thermal_zone1");
        assert_eq!(
            std::fs::read_to_string(zone.join("type")).unwrap().trim(),
            "gpu-thermal"
        );
        std::fs::write(zone.join("temp"), format!("{milli}\n")).unwrap();
    }
}

/// Sets NvMapMemUsed in a meminfo.
fn set_nvmap_kb(proc: &Path, kb: u64) {
    let text = std::fs::read_to_string(proc.join("meminfo")).unwrap();
    let text: Vec<String> = text
        .lines()
        .map(|l| {
            if l.starts_with("NvMapMemUsed:") {
                format!("NvMapMemUsed:   {kb} kB")
            } else {
                l.to_string()
            }
        })
        .collect();
    write_atomic(&proc.join("meminfo"), &(text.join("\n") + "\n"));
}

fn value(r: Reading) -> (String, Metrics) {
    match r {
        Reading::Value {
            status: None,
            detail,
            metrics,
        } => (detail, metrics),
        other => panic!("expected a value, got {other:?}"),
    }
}

fn unknown(r: Reading) -> String {
    match r {
        Reading::Unknown(why) => why,
        other => panic!("expected unknown, got {other:?}"),
    }
}

fn conds(texts: &[&str]) -> Vec<vigil::core::threshold::Condition> {
    texts
        .iter()
        .map(|t| parse(t, ProbeKind::Gpu).unwrap())
        .collect()
}

const MIB: f64 = 1024.0 * 1024.0;

#[tokio::test]
async fn the_orin_fixture_gives_exact_metrics() {
    let orin = Orin::new();
    // Found by of_node name, past the NVDLA devfreq device that sorts first.
    let b = gpu::jetson::JetsonBackend::discover(&orin.ctx().roots).unwrap();
    assert!(b.devfreq().ends_with("class/devfreq/17000000.ga10b"));
    let mut p = GpuProbe::with_nvml(GpuChoice::Jetson, 0, &orin.ctx(), no_nvml());
    let (detail, m) = value(p.read().await);
    assert_eq!(
        detail,
        "ga10b (jetson): 41% busy, 12.3 GiB of 61.4 GiB, 48.5 °C, 21.3 W (VDD_GPU_SOC), 918 MHz"
    );
    assert_eq!(m["utilization"], 41.3);
    assert_eq!(m["memory_used_bytes"], 12_897_280.0 * 1024.0);
    assert_eq!(m["memory_total_bytes"], 64_335_836.0 * 1024.0);
    assert!((m["memory_used"] - 12_897_280.0 * 100.0 / 64_335_836.0).abs() < 1e-9);
    assert_eq!(m["temperature"], 48.5);
    assert!((m["power_w"] - 21.3).abs() < 1e-9, "{}", m["power_w"]);
    assert_eq!(m["freq_mhz"], 918.0);
    // NVML-only metrics are absent on a Jetson.
    for absent in ["xid_errors", "ecc_errors", "throttled"] {
        assert!(!m.contains_key(absent), "{absent}");
    }
    // Every metric is a documented one.
    for name in m.keys() {
        assert!(ProbeKind::Gpu.metric(name).is_some(), "{name}");
    }
    // Readings follow the files.
    std::fs::write(
        orin.sys().join("class/devfreq/17000000.ga10b/device/load"),
        "1000\n",
    )
    .unwrap();
    set_nvmap_kb(&orin.proc(), 32 * 1024 * 1024);
    let (_, m) = value(p.read().await);
    assert_eq!(m["utilization"], 100.0);
    assert_eq!(m["memory_used_bytes"], 32.0 * 1024.0 * MIB);
}

#[tokio::test]
async fn a_gpu_sensor_that_is_off_leaves_temperature_out_and_other_thresholds_judged() {
    let orin = Orin::new();
    orin.set_gpu_temp(-256_000);
    let mut p = GpuProbe::with_nvml(GpuChoice::Auto, 0, &orin.ctx(), no_nvml());
    let r = p.read().await;
    let (detail, m) = value(r.clone());
    assert!(!m.contains_key("temperature"));
    assert!(
        detail.contains("gpu-thermal is off (reads −256 °C"),
        "{detail}"
    );
    assert!(!detail.contains("°C,"), "{detail}");
    // temperature is optional: its threshold is skipped, the others still count.
    let warn = conds(&["temperature > 80"]);
    assert_eq!(
        evaluate(&warn, &conds(&["memory_used > 15%"]), &r).0,
        Status::Crit
    );
    assert_eq!(
        evaluate(
            &warn,
            &conds(&["temperature > 90", "memory_used > 90%"]),
            &r
        )
        .0,
        Status::Ok
    );
    // With the sensor back, the temperature threshold fires.
    orin.set_gpu_temp(91_250);
    let r = p.read().await;
    assert_eq!(value(r.clone()).1["temperature"], 91.25);
    assert_eq!(
        evaluate(&[], &conds(&["temperature > 90"]), &r).0,
        Status::Crit
    );
}

#[tokio::test]
async fn without_a_gpu_rail_power_is_the_sum_of_the_rails() {
    let orin = Orin::new();
    std::fs::write(orin.sys().join("class/hwmon/hwmon1/in1_label"), "NC\n").unwrap();
    let mut p = GpuProbe::with_nvml(GpuChoice::Jetson, 0, &orin.ctx(), no_nvml());
    let (detail, m) = value(p.read().await);
    // VDD_CPU_CV 9 W + VIN_SYS_5V0 12 W + VDDQ_VDD2_1V8AO 5008 mV × 310 mA.
    assert!((m["power_w"] - (9.0 + 12.0 + 1.55248)).abs() < 1e-9);
    assert!(
        detail.contains("22.6 W (sum of VDD_CPU_CV + VIN_SYS_5V0 + VDDQ_VDD2_1V8AO)"),
        "{detail}"
    );
    // No INA3221 at all: power is absent, and the rest is read.
    std::fs::remove_file(orin.sys().join("class/hwmon/hwmon1")).unwrap();
    std::fs::remove_file(orin.sys().join("class/hwmon/hwmon2")).unwrap();
    let (_, m) = value(p.read().await);
    assert!(!m.contains_key("power_w"));
    assert_eq!(m["utilization"], 41.3);
}

#[tokio::test]
async fn without_a_ga10b_auto_finds_none_and_says_why_for_both() {
    let orin = Orin::new();
    std::fs::remove_file(orin.sys().join("class/devfreq/17000000.ga10b")).unwrap();
    let mut p = GpuProbe::with_nvml(GpuChoice::Auto, 0, &orin.ctx(), no_nvml());
    let why = unknown(p.read().await);
    let devfreq = orin.sys().join("class/devfreq");
    assert_eq!(
        why,
        format!(
            "no GPU found: NVML: cannot load libnvidia-ml.so.1 (no NVIDIA driver installed?): recorded; \
             Jetson: no devfreq device under {} is a Jetson GPU (device/of_node/name one of \
             ga10b, gv11b, gp10b, gm20b, gb10b, gpu); found: 15880000.nvdla0 (nvdla0)",
            devfreq.display()
        )
    );
    // The same reason again next time (the daemon logs an unknown once per reason).
    assert_eq!(unknown(p.read().await), why);
    // A GPU that appears later (driver loaded after vigild) is picked up.
    std::os::unix::fs::symlink(
        "../../devices/platform/bus@0/17000000.ga10b/devfreq/17000000.ga10b",
        devfreq.join("17000000.ga10b"),
    )
    .unwrap();
    let (detail, _) = value(p.read().await);
    assert!(detail.starts_with("ga10b (jetson): "), "{detail}");
}

#[tokio::test]
async fn jetson_without_nvmap_or_devfreq_is_unknown_with_the_file() {
    let orin = Orin::new();
    let meminfo = orin.proc().join("meminfo");
    let text = std::fs::read_to_string(&meminfo).unwrap();
    let text: String = text
        .lines()
        .filter(|l| !l.starts_with("NvMapMem"))
        .map(|l| format!("{l}\n"))
        .collect();
    std::fs::write(&meminfo, text).unwrap();
    let mut p = GpuProbe::with_nvml(GpuChoice::Jetson, 0, &orin.ctx(), no_nvml());
    assert_eq!(
        unknown(p.read().await),
        format!(
            "jetson: {} has no NvMapMemUsed (is the nvmap driver loaded?)",
            meminfo.display()
        )
    );
    // An empty sysfs: not a Jetson.
    let empty = tempfile::tempdir().unwrap();
    let ctx = Context {
        roots: HostRoots {
            proc: orin.proc(),
            sys: empty.path().to_path_buf(),
        },
        ..Default::default()
    };
    let mut p = GpuProbe::with_nvml(GpuChoice::Jetson, 0, &ctx, no_nvml());
    let why = unknown(p.read().await);
    assert!(
        why.starts_with(&format!(
            "Jetson: cannot list {}/class/devfreq (",
            empty.path().display()
        )),
        "{why}"
    );
}

#[tokio::test]
async fn recorded_rtx_a4000_answers_become_metrics_xids_accumulate() {
    // NVML comes first under auto, even where a Jetson tree is present.
    let orin = Orin::new();
    let mut p = GpuProbe::with_nvml(GpuChoice::Auto, 0, &orin.ctx(), recorded("rtx-a4000.json"));
    let r = p.read().await;
    let (detail, m) = value(r.clone());
    assert_eq!(
        detail,
        "NVIDIA RTX A4000 (nvml): 87% busy, 10.2 GiB of 16.0 GiB, 71 °C, 120.5 W, 1560 MHz, throttle: sw power cap"
    );
    assert_eq!(m["memory_used_bytes"], 10_952_441_856.0);
    assert_eq!(m["memory_total_bytes"], 17_171_480_576.0);
    assert!((m["memory_used"] - 10_952_441_856.0 * 100.0 / 17_171_480_576.0).abs() < 1e-9);
    assert_eq!(m["utilization"], 87.0);
    assert_eq!(m["temperature"], 71.0);
    assert_eq!(m["power_w"], 120.512);
    assert_eq!(m["freq_mhz"], 1560.0);
    assert_eq!(m["throttled"], 0.0, "a power cap is not a slowdown");
    assert_eq!(m["xid_errors"], 0.0);
    assert_eq!(m["ecc_errors"], 0.0);
    let crit = conds(&["xid_errors > 0", "memory_used > 95%", "throttled == 1"]);
    assert_eq!(evaluate(&[], &crit, &r).0, Status::Ok);

    // Full, hot, thermally throttled, two XID 31s.
    let r = p.read().await;
    let (detail, m) = value(r.clone());
    assert_eq!(m["throttled"], 1.0);
    assert_eq!(m["xid_errors"], 2.0);
    assert!(
        detail.contains("throttle: sw power cap, sw thermal slowdown, 2 XID errors (last: XID 31)"),
        "{detail}"
    );
    let (status, why) = evaluate(&[], &crit, &r);
    assert_eq!(status, Status::Crit);
    assert!(why.contains("xid_errors is 2"), "{why}");

    // Idle again: XIDs keep counting (one more), ECC errors appear.
    let (detail, m) = value(p.read().await);
    assert_eq!(m["xid_errors"], 3.0);
    assert_eq!(m["ecc_errors"], 2.0);
    assert_eq!(m["throttled"], 0.0);
    assert!(
        detail.contains("3 XID errors (last: XID 13), 2 uncorrected ECC errors"),
        "{detail}"
    );

    // The GPU falls off the bus: unknown, saying so.
    let why = unknown(p.read().await);
    assert_eq!(
        why,
        "nvml: NVIDIA RTX A4000: memory info failed: device fell off the bus or has otherwise \
         become inacessible (is the GPU still on the bus? see `nvidia-smi`)"
    );
}

#[tokio::test]
async fn recorded_answers_without_ecc_or_power_leave_those_metrics_out() {
    let empty = tempfile::tempdir().unwrap();
    let ctx = Context {
        roots: HostRoots {
            proc: empty.path().into(),
            sys: empty.path().into(),
        },
        ..Default::default()
    };
    let mut p = GpuProbe::with_nvml(GpuChoice::Nvml, 0, &ctx, recorded("geforce-no-ecc.json"));
    let r = p.read().await;
    let (detail, m) = value(r.clone());
    assert!(!m.contains_key("ecc_errors"));
    assert!(!m.contains_key("power_w"));
    assert_eq!(m["xid_errors"], 0.0);
    assert_eq!(m["throttled"], 0.0);
    assert_eq!(
        detail,
        "NVIDIA GeForce RTX 3060 (nvml): 12% busy, 3.0 GiB of 12.0 GiB, 52 °C, 1777 MHz"
    );
    // Thresholds on the missing optional metrics are skipped, not unknown.
    assert_eq!(
        evaluate(&conds(&["power_w > 150"]), &conds(&["ecc_errors > 0"]), &r).0,
        Status::Ok
    );
}

#[tokio::test]
async fn nvml_on_a_jetson_answers_not_supported_and_auto_falls_through_to_sysfs() {
    let orin = Orin::new();
    // Directly: the recorded Orin NVML is refused.
    let err = NvmlBackend::open(Recorded::load("orin-nvgpu.json"))
        .err()
        .expect("refused");
    assert_eq!(
        err,
        "Orin (nvgpu) answers NOT_SUPPORTED to memory info (on a Jetson, the GPU is read from sysfs)"
    );
    // auto: NVML refused, the Jetson backend answers.
    let mut p = GpuProbe::with_nvml(GpuChoice::Auto, 0, &orin.ctx(), recorded("orin-nvgpu.json"));
    let (detail, m) = value(p.read().await);
    assert!(detail.starts_with("ga10b (jetson): 41% busy"), "{detail}");
    assert_eq!(m["utilization"], 41.3);
    // Forced NVML: unknown, with NVML's reason.
    let mut p = GpuProbe::with_nvml(GpuChoice::Nvml, 0, &orin.ctx(), recorded("orin-nvgpu.json"));
    assert_eq!(unknown(p.read().await), format!("NVML: {err}"));
}

#[tokio::test]
async fn real_nvml_on_this_machine_fails_fast_and_the_check_is_unknown() {
    // This machine has no NVIDIA driver: the real loader must fail, quickly, without a panic.
    let started = Instant::now();
    let err = gpu::nvml::open_live(0)
        .err()
        .expect("no NVIDIA driver here");
    let took = started.elapsed();
    assert!(
        err.starts_with("cannot load libnvidia-ml.so.1 (no NVIDIA driver installed?): "),
        "{err}"
    );
    assert!(took < Duration::from_millis(200), "NVML init took {took:?}");

    let empty = tempfile::tempdir().unwrap();
    let ctx = Context {
        roots: HostRoots {
            proc: empty.path().into(),
            sys: empty.path().into(),
        },
        ..Default::default()
    };
    // Through the probe as built from a policy: forced nvml, then auto.
    let mut p = GpuProbe::new(GpuChoice::Nvml, 0, &ctx);
    let started = Instant::now();
    let why = unknown(p.read().await);
    assert!(started.elapsed() < Duration::from_millis(500));
    assert_eq!(why, format!("NVML: {err}"));
    let mut p = GpuProbe::new(GpuChoice::Auto, 0, &ctx);
    let why = unknown(p.read().await);
    assert!(
        why.starts_with(&format!("no GPU found: NVML: {err}; Jetson: cannot list ")),
        "{why}"
    );
}

#[test]
fn vigild_watches_a_jetson_gpu_and_turns_critical_when_nvmap_fills() {
    let policy = r#"
[[check]]
name = "gpu"
probe = "gpu"
every = "100ms"
warn = ["memory_used > 60%", "temperature > 85"]
crit = "memory_used > 80%"
"#;
    let v = VigildBuilder::new().policy(policy).start();
    // vigild prepared its own (empty) sys and proc roots: no GPU there yet.
    wait_for(Duration::from_secs(10), "the gpu check unknown", || {
        v.log()
            .contains("check gpu is unknown: no GPU found: NVML: ")
            .then_some(())
    });
    // A few more readings with no GPU, then lay the Orin tree into the roots.
    std::thread::sleep(Duration::from_millis(350));
    let sys = v.dir.path().join("sys");
    write_atomic(
        &v.proc_dir().join("meminfo"),
        &std::fs::read_to_string(Path::new(FIXTURE).join("proc/meminfo")).unwrap(),
    );
    // Staged, then moved in with `class/` last, so the probe never sees half a tree.
    let staging = v.dir.path().join("sys.staging");
    copy_tree(&Path::new(FIXTURE).join("sys"), &staging);
    for top in ["devices", "firmware", "class"] {
        std::fs::rename(staging.join(top), sys.join(top)).unwrap();
    }
    v.wait_status("ok");
    wait_for(Duration::from_secs(10), "the gpu check's ok line", || {
        v.log()
            .lines()
            .any(|l| {
                l.contains("check gpu")
                    && l.contains("→ ok: ga10b (jetson): 41% busy, 12.3 GiB of 61.4 GiB, 48.5 °C")
            })
            .then_some(())
    });
    let log = v.log();
    assert!(
        log.contains(&format!(
            "gpu: reading ga10b through Jetson sysfs ({})",
            sys.join("class/devfreq/17000000.ga10b").display()
        )),
        "{log}"
    );
    // Before the tree was there, the check was unknown with both reasons, said once.
    assert_eq!(
        log.matches("check gpu is unknown: no GPU found: NVML: ")
            .count(),
        1,
        "{log}"
    );
    // The GPU's share of the memory above the crit threshold (55 GiB of 61.4).
    set_nvmap_kb(&v.proc_dir(), 55 * 1024 * 1024);
    v.wait_status("critical");
    let log = v.log();
    assert!(
        log.lines()
            .any(|l| l.contains("check gpu ok → crit") && l.contains("memory_used > 80%")),
        "{log}"
    );
    // Back down: ok again.
    set_nvmap_kb(&v.proc_dir(), 12_897_280);
    v.wait_status("ok");
}

/// A backend stuck in a call (a GPU that hangs the driver).
struct Hung(Duration);

impl GpuBackend for Hung {
    fn name(&self) -> &'static str {
        "nvml"
    }
    fn read(&mut self) -> Result<gpu::GpuSample, gpu::GpuError> {
        std::thread::sleep(self.0);
        Err(gpu::GpuError("woke up".into()))
    }
}

#[tokio::test(flavor = "current_thread")]
async fn a_hung_backend_never_blocks_the_runtime() {
    let empty = tempfile::tempdir().unwrap();
    let ctx = Context {
        roots: HostRoots {
            proc: empty.path().into(),
            sys: empty.path().into(),
        },
        ..Default::default()
    };
    let opener: NvmlOpener = Arc::new(|_| Ok(Box::new(Hung(Duration::from_secs(2)))));
    let mut p = GpuProbe::with_nvml(GpuChoice::Nvml, 0, &ctx, opener);
    // On a single-threaded runtime a blocking call would hold the timer until it returned.
    for _ in 0..3 {
        let started = Instant::now();
        let r = tokio::time::timeout(Duration::from_millis(100), p.read()).await;
        assert!(r.is_err(), "the read is hung");
        assert!(started.elapsed() < Duration::from_millis(1000));
    }
    // The one hung call finally answers; its answer is used.
    let why = unknown(
        tokio::time::timeout(Duration::from_secs(5), p.read())
            .await
            .unwrap(),
    );
    assert_eq!(why, "nvml: woke up");
}
