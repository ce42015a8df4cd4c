//! `vigilctl support-bundle`: one tar.gz with what support needs to see how this box is, its
//! secrets redacted (see [`super::redact`]). It is most needed when vigild is down, so a
//! vigild that cannot be reached is a warning and a status file that says so, not a failure.
//!
//! The bundle is written to a hidden temporary file in the destination directory, synced,
//! and renamed: a bundle with the final name is always whole (a USB stick pulled out mid-way
//! leaves only the temporary file).

use std::io::{IsTerminal, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use indicatif::{ProgressBar, ProgressStyle};

use super::bus::{connect, Failure};
use super::exit;
use super::redact::Redactor;
use super::support_collect::{self as collect, Part};
use crate::policy::PolicySet;

/// `vigilctl support-bundle …`
#[derive(Debug, clap::Args)]
pub struct SupportBundleArgs {
    /// Where to write it: a file, or a directory (such as a USB stick's mount point) to write
    /// support-HOST-TIME.tar.gz in [default: the current directory].
    #[arg(short = 'o', long = "out", value_name = "FILE|DIR")]
    pub out: Option<PathBuf>,
    /// How far back vigild's journal goes, e.g. 24h, 3d, 30m.
    #[arg(long, value_name = "DURATION", default_value = "24h", value_parser = humantime::parse_duration)]
    pub since: Duration,
    /// Settings (copied redacted; policies are checked against them) [default: /etc/vigil/vigil.toml].
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Policy files or directories to show [default: the installed ones].
    #[arg(long = "policies", value_name = "DIR")]
    pub policies: Vec<PathBuf>,
    /// journalctl to run (tests).
    #[arg(
        long,
        hide = true,
        env = "VIGIL_SUPPORT_JOURNALCTL",
        default_value = "journalctl"
    )]
    pub journalctl: PathBuf,
    /// systemctl to run (tests).
    #[arg(
        long,
        hide = true,
        env = "VIGIL_SUPPORT_SYSTEMCTL",
        default_value = "systemctl"
    )]
    pub systemctl: PathBuf,
    /// os-release to read (tests).
    #[arg(
        long,
        hide = true,
        env = "VIGIL_SUPPORT_OS_RELEASE",
        default_value = "/etc/os-release"
    )]
    pub os_release: PathBuf,
}

/// The parts, in the order they are collected and shown.
const PARTS: &[&str] = &[
    "status",
    "incidents",
    "update",
    "policies",
    "settings",
    "journal",
    "containers",
    "units",
    "system",
];

/// Shows which part is being collected: a spinner on a terminal, else one line per part.
struct Progress {
    bar: Option<ProgressBar>,
}

impl Progress {
    fn new() -> Progress {
        let bar = std::io::stderr().is_terminal().then(|| {
            let b = ProgressBar::new(PARTS.len() as u64);
            b.set_style(
                ProgressStyle::with_template("{spinner} [{pos}/{len}] {msg}")
                    .unwrap_or_else(|_| ProgressStyle::default_spinner()),
            );
            b.enable_steady_tick(Duration::from_millis(100));
            b
        });
        Progress { bar }
    }

    fn start(&self, part: &str) {
        if let Some(b) = &self.bar {
            b.set_message(format!("collecting {part}…"));
        }
    }

    fn done(&self, part: &str, outcome: &str, took: Duration) {
        let line = format!("{part}: {outcome} ({} ms)", took.as_millis());
        match &self.bar {
            Some(b) => {
                b.println(line);
                b.inc(1);
            }
            None => eprintln!("support-bundle: {line}"),
        }
    }

    fn finish(&self) {
        if let Some(b) = &self.bar {
            b.finish_and_clear();
        }
    }
}

/// `support-HOST-20260217T100000Z.tar.gz`: no colons, so a FAT-formatted stick takes it.
pub fn default_name(host: &str, now: SystemTime) -> String {
    format!("{}.tar.gz", top_dir(host, now))
}

fn top_dir(host: &str, now: SystemTime) -> String {
    let host: String = host
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '.' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect();
    let micros = now
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_micros() as u64);
    // 2026-02-17T10:00:00.000Z -> 20260217T100000Z
    let stamp: String = crate::core::time::rfc3339_millis(micros)
        .split('.')
        .next()
        .unwrap_or_default()
        .chars()
        .filter(|c| c.is_ascii_alphanumeric())
        .collect();
    format!("support-{host}-{stamp}Z")
}

/// Where the bundle goes: `-o FILE`, `-o DIR/NAME`, or `./NAME`.
pub fn destination(out: Option<&Path>, name: &str) -> Result<PathBuf, String> {
    match out {
        None => Ok(PathBuf::from(name)),
        Some(p) if p.is_dir() => Ok(p.join(name)),
        Some(p) => {
            let parent = p.parent().filter(|d| !d.as_os_str().is_empty());
            match parent {
                Some(d) if !d.is_dir() => Err(format!(
                    "cannot write {}: {} is not a directory (is the stick mounted?)",
                    p.display(),
                    d.display()
                )),
                _ => Ok(p.to_path_buf()),
            }
        }
    }
}

/// Writes `files` as `dest` (tar.gz, each under `top/`): a temporary file in the same
/// directory, synced, then renamed, then the directory synced. Returns its size.
pub fn write_bundle(dest: &Path, top: &str, files: &[(String, Vec<u8>)]) -> std::io::Result<u64> {
    let dir = dest
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let name = dest
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "support.tar.gz".into());
    let tmp = dir.join(format!(".{name}.partial-{}", std::process::id()));
    let written = (|| {
        let file = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&tmp)?;
        let gz = flate2::write::GzEncoder::new(file, flate2::Compression::default());
        let mut tar = tar::Builder::new(gz);
        let mtime = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        for (path, data) in files {
            let mut h = tar::Header::new_gnu();
            h.set_path(format!("{top}/{path}"))?;
            h.set_size(data.len() as u64);
            h.set_mode(0o644);
            h.set_mtime(mtime);
            h.set_uid(0);
            h.set_gid(0);
            h.set_entry_type(tar::EntryType::Regular);
            h.set_cksum();
            tar.append(&h, data.as_slice())?;
        }
        let gz = tar.into_inner()?;
        let mut file = gz.finish()?;
        file.flush()?;
        file.sync_all()?;
        let size = file.metadata()?.len();
        std::fs::rename(&tmp, dest)?;
        if let Ok(d) = std::fs::File::open(dir) {
            let _ = d.sync_all();
        }
        Ok(size)
    })();
    if written.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    written
}

/// A reason on one line, for the summary table and the progress lines.
fn one_line(why: &str) -> String {
    why.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect::<Vec<_>>()
        .join(" / ")
}

/// `vigild: 0.1.0, ok · 3 checks · 0 incidents`, or why it could not be asked.
fn vigild_line(
    conn: &Option<Result<zbus::Connection, Failure>>,
    parts: &[(&str, Vec<Part>, Duration)],
) -> String {
    if let Some(Err(f)) = conn {
        return format!("vigild: unreachable: {}\n\n", one_line(&f.message));
    }
    let doc = parts
        .iter()
        .flat_map(|(_, got, _)| got)
        .find(|p| p.file == "status.json")
        .and_then(|p| serde_json::from_slice::<serde_json::Value>(&p.data).ok())
        .unwrap_or_default();
    match (doc["version"].as_str(), doc["summary"].as_str()) {
        (Some(v), Some(sum)) => format!("vigild: {v}, {sum}\n\n"),
        _ => format!(
            "vigild: no status: {}\n\n",
            doc["unavailable"].as_str().unwrap_or("(unknown)")
        ),
    }
}

fn hostname() -> String {
    nix::unistd::gethostname()
        .ok()
        .and_then(|h| h.into_string().ok())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "unknown".into())
}

/// Collects every part and writes the bundle; the line to print. Exit 0 when written (with
/// a warning on stderr when vigild could not be reached), 1 when it could not be written.
/// `load_policies` is what `vigilctl policy show` reads (files or directories, settings).
pub async fn run(
    args: SupportBundleArgs,
    bus: Option<&str>,
    load_policies: impl FnOnce(&[PathBuf], Option<&PathBuf>) -> Result<PolicySet, String>,
) -> Result<String, Failure> {
    let started = Instant::now();
    let now = SystemTime::now();
    let host = hostname();
    let top = top_dir(&host, now);
    let dest =
        destination(args.out.as_deref(), &default_name(&host, now)).map_err(|message| Failure {
            code: exit::BAD,
            message,
        })?;
    let since_epoch = now
        .checked_sub(args.since)
        .unwrap_or(UNIX_EPOCH)
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let settings_path = collect::settings_path(args.config.as_ref());
    // Bad settings still give a bundle: the defaults for where to look, and the file as it is.
    let settings = crate::config::Settings::load_from(args.config.as_deref());
    let (roots, docker_host) = match &settings {
        Ok(s) => (
            s.host_roots(),
            crate::sys::docker::host_or_default(s.docker.host.as_deref()),
        ),
        Err(_) => (
            crate::core::check::HostRoots::default(),
            crate::sys::docker::host_or_default(None),
        ),
    };

    let mut r = Redactor::new();
    let progress = Progress::new();
    let mut parts: Vec<(&str, Vec<Part>, Duration)> = Vec::new();
    let mut conn: Option<Result<zbus::Connection, Failure>> = None;
    let mut loaded = None;
    let mut load_policies = Some(load_policies);
    for &part in PARTS {
        progress.start(part);
        let t = Instant::now();
        let got = match part {
            "status" | "incidents" | "update" => {
                if conn.is_none() {
                    conn = Some(connect(bus).await);
                }
                let c = conn.as_ref().expect("set above");
                collect::from_vigild(c, &mut r, part).await
            }
            "policies" => {
                let l = match load_policies.take() {
                    Some(load) => load(&args.policies, args.config.as_ref()),
                    None => Err("policies read twice".into()),
                };
                let p = collect::policies(&l, &mut r);
                loaded = Some(l);
                p
            }
            "settings" => vec![collect::settings_file(&settings_path, &mut r)],
            "journal" => vec![collect::journal(&args.journalctl, since_epoch, &mut r).await],
            "containers" => vec![collect::containers(&docker_host, &mut r).await],
            "units" => {
                let units = collect::units_named(loaded.as_ref().unwrap_or(&Err(String::new())));
                vec![collect::units(&args.systemctl, &units, &mut r).await]
            }
            _ => collect::system(&args.os_release, &roots, &mut r).await,
        };
        let took = t.elapsed();
        let mut failed: Vec<String> = Vec::new();
        for why in got.iter().filter_map(|p| p.result.as_ref().err()) {
            let why = one_line(why);
            if !failed.contains(&why) {
                failed.push(why);
            }
        }
        let outcome = if failed.is_empty() {
            "ok".to_string()
        } else {
            format!(
                "not collected: {}",
                r.text("summary.txt", &failed.join("; "))
            )
        };
        progress.done(part, &outcome, took);
        parts.push((part, got, took));
    }
    progress.finish();

    let mut summary = format!(
        "vigil support bundle\nhost: {host}\ncreated: {}\nvigilctl: {}\njournal since: {} ({})\nsettings: {}\n",
        crate::core::time::rfc3339_millis(
            now.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_micros() as u64)
        ),
        crate::VERSION,
        humantime::format_duration(args.since),
        crate::core::time::rfc3339_millis(since_epoch.saturating_mul(1_000_000)),
        settings_path.display(),
    );
    summary.push_str(&vigild_line(&conn, &parts));
    let mut files = Vec::new();
    for (part, got, took) in &parts {
        for p in got {
            let outcome = match &p.result {
                Ok(()) => "ok".to_string(),
                Err(why) => format!("not collected: {}", one_line(why)),
            };
            summary.push_str(&format!(
                "{part:<11} {:<22} {:>6} ms  {outcome}\n",
                p.file,
                took.as_millis()
            ));
            r.file(&p.file);
        }
    }
    let summary = r.text("summary.txt", &summary);
    for (_, got, _) in parts.iter_mut() {
        for p in got.drain(..) {
            files.push((p.file, p.data));
        }
    }
    r.file("summary.txt");
    files.insert(0, ("summary.txt".to_string(), summary.into_bytes()));
    files.push(("REDACTED.txt".to_string(), r.report().into_bytes()));

    let size = write_bundle(&dest, &top, &files).map_err(|e| Failure {
        code: exit::BAD,
        message: format!("cannot write {}: {e}", dest.display()),
    })?;
    if let Some(Err(f)) = &conn {
        eprintln!(
            "vigilctl: warning: vigild could not be reached ({}); the bundle says so in status.json and has the rest",
            f.message
        );
    }
    Ok(format!(
        "wrote {} ({} bytes, {} files, {} values redacted, {:.1} s)",
        dest.display(),
        size,
        files.len(),
        r.total(),
        started.elapsed().as_secs_f64()
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_have_no_colons_and_destinations_resolve() {
        let at = UNIX_EPOCH + Duration::from_secs(1_771_322_400);
        assert_eq!(
            default_name("box one", at),
            "support-box_one-20260217T100000Z.tar.gz"
        );
        let d = tempfile::tempdir().unwrap();
        assert_eq!(
            destination(Some(d.path()), "x.tar.gz").unwrap(),
            d.path().join("x.tar.gz")
        );
        assert_eq!(
            destination(Some(&d.path().join("b.tgz")), "x").unwrap(),
            d.path().join("b.tgz")
        );
        assert!(destination(Some(&d.path().join("no/b.tgz")), "x").is_err());
        assert_eq!(destination(None, "x").unwrap(), PathBuf::from("x"));
    }

    #[test]
    fn a_bundle_is_whole_or_absent() {
        let d = tempfile::tempdir().unwrap();
        let dest = d.path().join("b.tar.gz");
        let files = vec![("a.txt".to_string(), b"hello".to_vec())];
        let size = write_bundle(&dest, "top", &files).unwrap();
        assert_eq!(std::fs::metadata(&dest).unwrap().len(), size);
        let names: Vec<_> = std::fs::read_dir(d.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        assert_eq!(names, ["b.tar.gz"], "no temporary file left");
        let gz = flate2::read::GzDecoder::new(std::fs::File::open(&dest).unwrap());
        let mut ar = tar::Archive::new(gz);
        let mut seen = Vec::new();
        for e in ar.entries().unwrap() {
            let mut e = e.unwrap();
            let mut s = String::new();
            std::io::Read::read_to_string(&mut e, &mut s).unwrap();
            seen.push((e.path().unwrap().display().to_string(), s));
        }
        assert_eq!(seen, [("top/a.txt".to_string(), "hello".to_string())]);
        // A directory that is not there: an error, and nothing left behind.
        assert!(write_bundle(&d.path().join("gone/x.tar.gz"), "t", &files).is_err());
    }
}
