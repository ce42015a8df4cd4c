//! `smart`: SMART / NVMe health of one disk (`device = "/dev/nvme0"`).
//!
//! Reading SMART needs root (raw ATA/NVMe commands), and vigild has no privilege. So the
//! package's oneshot `vigil-smart@.service` runs `smartctl --json=c -a DEVICE` as root and
//! writes its output atomically (a temporary file, then a rename) to
//! `<dir>/<instance>.json`, with smartctl's exit status in `<dir>/<instance>.exit`
//! (`<dir>` is `/run/vigil-smart` unless the policy says `dir = …`; the instance is the
//! systemd-escaped device path, `dev-nvme0`). When that output is missing or older than the
//! check's `every`, the probe starts `vigil-smart@<instance>.service` through systemd
//! (`StartUnit` over D-Bus; polkit lets user vigil start exactly these units), waits for the
//! job, and reads the file again; when it is younger, vigild only reads. With
//! `refresh = false` it never starts the unit (another timer or a test refreshes the file).
//!
//! No output, output that is not smartctl's, a disk that is not SMART-capable, smartctl
//! missing, or output older than [`stale_after`] → `unknown`, saying what and what to do.
//! What the document itself means is [`crate::core::smart`].

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use async_trait::async_trait;

use super::api::{Context, Probe};
use crate::core::metric::Reading;
use crate::core::smart;
use crate::sys::blocking::Blocking;
use crate::sys::systemd::SystemdBus;
use crate::sys::systemd_job::{denied_by_polkit, run_job, JobFailure};

/// The least age at which output counts as stale, however short `every` is.
pub const STALE_MIN: Duration = Duration::from_secs(15 * 60);
/// The exit status a shell gives for a command it cannot find.
const EXIT_NOT_FOUND: i64 = 127;

/// Output older than this is stale: two intervals, and at least [`STALE_MIN`].
pub fn stale_after(every: Duration) -> Duration {
    (every * 2).max(STALE_MIN)
}

/// The unit instance for a device: its path, systemd-escaped (`/dev/nvme0` → `dev-nvme0`).
/// Devices are `/dev/NAME` with NAME of lowercase letters and digits (the policy checks),
/// so escaping is turning `/` into `-`.
pub fn instance(device: &Path) -> String {
    device
        .to_string_lossy()
        .trim_start_matches('/')
        .replace('/', "-")
}

/// The unit that refreshes a device's output.
pub fn unit_name(device: &Path) -> String {
    format!("vigil-smart@{}.service", instance(device))
}

/// What was on disk for one device.
#[derive(Debug)]
struct Files {
    /// The JSON text and how old it is; `None` when there is no file.
    json: Option<(String, Duration)>,
    /// The exit status the unit wrote beside it.
    exit: Option<i64>,
}

fn load(json: &Path, exit: &Path) -> Result<Files, String> {
    let json = match std::fs::read_to_string(json) {
        Ok(text) => {
            let age = std::fs::metadata(json)
                .and_then(|m| m.modified())
                .ok()
                .and_then(|t| SystemTime::now().duration_since(t).ok())
                .unwrap_or_default();
            Some((text, age))
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
        Err(e) => return Err(format!("cannot read {}: {e}", json.display())),
    };
    let exit = std::fs::read_to_string(exit)
        .ok()
        .and_then(|s| s.trim().parse().ok());
    Ok(Files { json, exit })
}

/// Reads one disk's SMART output, refreshing it through systemd when it is old.
pub struct SmartProbe {
    device: PathBuf,
    dir: PathBuf,
    refresh: bool,
    every: Duration,
    timeout: Duration,
    bus: Arc<SystemdBus>,
    reader: Blocking<Result<Files, String>>,
    /// Media errors at the previous reading, to see them rise.
    prev_media_errors: Option<f64>,
}

impl SmartProbe {
    /// A probe for `device` whose output lies in `dir`.
    pub fn new(
        device: PathBuf,
        dir: PathBuf,
        refresh: bool,
        every: Duration,
        timeout: Duration,
        ctx: &Context,
    ) -> Self {
        let bus = ctx.connections.systemd.get_or_make(&ctx.systemd_bus, || {
            Arc::new(SystemdBus::new(ctx.systemd_bus.clone()))
        });
        SmartProbe {
            device,
            dir,
            refresh,
            every,
            timeout,
            bus,
            reader: Default::default(),
            prev_media_errors: None,
        }
    }

    fn paths(&self) -> (PathBuf, PathBuf) {
        let i = instance(&self.device);
        (
            self.dir.join(format!("{i}.json")),
            self.dir.join(format!("{i}.exit")),
        )
    }

    async fn files(&mut self) -> Result<Files, String> {
        let (json, exit) = self.paths();
        self.reader
            .run(move || load(&json, &exit))
            .await
            .and_then(|r| r)
    }

    /// Starts the unit and waits for its job to end.
    async fn start_unit(&self) -> Result<(), String> {
        let unit = unit_name(&self.device);
        let (_, conn) = self.bus.get().await?;
        run_job(&conn, "StartUnit", &unit, self.timeout)
            .await
            .map_err(|e| match e {
                JobFailure::Refused(e) => {
                    let text = e.to_string();
                    if denied_by_polkit(&e) {
                        format!(
                            "StartUnit {unit}: {text} (polkit lets user vigil start \
                             vigil-smart@*.service by /usr/share/polkit-1/rules.d/50-vigil.rules; \
                             is it installed?)"
                        )
                    } else {
                        format!("StartUnit {unit}: {text}")
                    }
                }
                JobFailure::Other(why) => format!("{unit}: {why}"),
            })
    }

    fn judge(&mut self, files: Files, refreshed: Option<Result<(), String>>) -> Reading {
        let (json_path, _) = self.paths();
        let unit = unit_name(&self.device);
        let dev = self.device.display();
        let how = match (&refreshed, self.refresh) {
            (Some(Err(e)), _) => format!("; starting {unit} failed: {e}"),
            (Some(Ok(())), _) => {
                format!("; {unit} ran but left no new output (journalctl -u {unit})")
            }
            (None, false) => format!(
                "; refresh = false, so vigild does not start {unit}: `systemctl start {unit}`"
            ),
            (None, true) => String::new(),
        };
        let Some((text, age)) = files.json else {
            return Reading::Unknown(format!(
                "no SMART output for {dev} at {}{how}",
                json_path.display()
            ));
        };
        let limit = stale_after(self.every);
        if age > limit {
            return Reading::Unknown(format!(
                "SMART output {} is stale: written {} ago, more than {}{how}",
                json_path.display(),
                humantime::format_duration(Duration::from_secs(age.as_secs())),
                humantime::format_duration(limit),
            ));
        }
        let doc: serde_json::Value = match serde_json::from_str(&text) {
            Ok(v) => v,
            Err(e) => {
                return Reading::Unknown(match files.exit {
                    Some(EXIT_NOT_FOUND) => format!(
                        "smartctl is missing (exit status 127, no output for {dev}): \
                         apt-get install smartmontools"
                    ),
                    Some(code) => format!(
                        "smartctl gave no JSON for {dev} (exit status {code}): see journalctl -u {unit}"
                    ),
                    None => format!("{} is not JSON ({e})", json_path.display()),
                })
            }
        };
        let reading = match smart::parse(&doc) {
            Ok(h) => {
                let r = smart::assess(&h, self.prev_media_errors);
                self.prev_media_errors = h.media_errors.or(self.prev_media_errors);
                r
            }
            Err(why) => Reading::Unknown(why),
        };
        // A failed refresh of output that is still fresh enough: say so, keep the reading.
        match (reading, refreshed) {
            (
                Reading::Value {
                    status,
                    detail,
                    metrics,
                },
                Some(Err(e)),
            ) => Reading::Value {
                status,
                detail: format!("{detail} (refresh failed: {e})"),
                metrics,
            },
            (r, _) => r,
        }
    }
}

#[async_trait]
impl Probe for SmartProbe {
    async fn read(&mut self) -> Reading {
        let files = match self.files().await {
            Ok(f) => f,
            Err(e) => return Reading::Unknown(e),
        };
        let old = files
            .json
            .as_ref()
            .is_none_or(|(_, age)| *age >= self.every);
        if !(self.refresh && old) {
            return self.judge(files, None);
        }
        let started = self.start_unit().await;
        let files = match self.files().await {
            Ok(f) => f,
            Err(e) => return Reading::Unknown(e),
        };
        self.judge(files, Some(started))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::health::Status;

    fn probe(dir: &Path, refresh: bool) -> SmartProbe {
        SmartProbe::new(
            "/dev/nvme0".into(),
            dir.to_path_buf(),
            refresh,
            Duration::from_secs(600),
            Duration::from_secs(5),
            &Context::default(),
        )
    }

    #[test]
    fn instance_and_unit_names() {
        assert_eq!(instance(Path::new("/dev/nvme0")), "dev-nvme0");
        assert_eq!(
            unit_name(Path::new("/dev/sda")),
            "vigil-smart@dev-sda.service"
        );
        assert_eq!(
            stale_after(Duration::from_secs(600)),
            Duration::from_secs(1200)
        );
        assert_eq!(stale_after(Duration::from_secs(1)), STALE_MIN);
    }

    #[tokio::test]
    async fn fresh_output_is_only_read() {
        let dir = tempfile::tempdir().unwrap();
        let text = include_str!("../../tests/fixtures/smart/nvme-wd-sn530-worn.json");
        std::fs::write(dir.path().join("dev-nvme0.json"), text).unwrap();
        std::fs::write(dir.path().join("dev-nvme0.exit"), "0\n").unwrap();
        let mut p = probe(dir.path(), true);
        let Reading::Value {
            status, metrics, ..
        } = p.read().await
        else {
            panic!()
        };
        assert_eq!(status, None);
        assert_eq!(metrics["percentage_used"], 94.0);
        // Media errors rising between two readings is crit.
        let more = text.replace("\"media_errors\": 0", "\"media_errors\": 4");
        std::fs::write(dir.path().join("dev-nvme0.json"), more).unwrap();
        let Reading::Value { status, detail, .. } = p.read().await else {
            panic!()
        };
        assert_eq!(status, Some(Status::Crit));
        assert!(detail.contains("media errors rose from 0 to 4"), "{detail}");
    }

    #[tokio::test]
    async fn missing_smartctl_and_missing_output_are_unknown() {
        let dir = tempfile::tempdir().unwrap();
        let mut p = probe(dir.path(), false);
        let Reading::Unknown(why) = p.read().await else {
            panic!()
        };
        assert!(
            why.starts_with("no SMART output for /dev/nvme0 at "),
            "{why}"
        );
        assert!(
            why.contains("systemctl start vigil-smart@dev-nvme0.service"),
            "{why}"
        );
        std::fs::write(dir.path().join("dev-nvme0.json"), "").unwrap();
        std::fs::write(dir.path().join("dev-nvme0.exit"), "127\n").unwrap();
        let Reading::Unknown(why) = p.read().await else {
            panic!()
        };
        assert!(why.starts_with("smartctl is missing"), "{why}");
        assert!(why.contains("apt-get install smartmontools"), "{why}");
    }
}
