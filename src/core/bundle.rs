//! Update bundles as the core sees them: the manifest, typed, and the rules a bundle keeps
//! before anything on the box may change. Reading the tar and the files is `bundle::`'s.
//!
//! A bundle is one file, `NAME-VERSION.vigil`: a tar (optionally zstd) holding
//! [`MANIFEST`] first, then [`SIGNATURE`] (minisign, prehashed, trusted comment
//! `vigil-bundle NAME VERSION`), then `payload/…`, every payload file listed in the
//! manifest with its size and SHA-256.

use std::fmt;
use std::time::Duration;

use semver::{Version, VersionReq};

use crate::core::action::Target;
use crate::core::rule::Selector;

/// The manifest's entry name; the first entry of a bundle.
pub const MANIFEST: &str = "manifest.toml";
/// The signature of the manifest; the second entry.
pub const SIGNATURE: &str = "manifest.toml.minisig";
/// Where the payload lives inside a bundle.
pub const PAYLOAD_DIR: &str = "payload";
/// Largest manifest read.
pub const MANIFEST_MAX_BYTES: u64 = 1 << 20;
/// Largest signature read.
pub const SIGNATURE_MAX_BYTES: u64 = 4 << 10;
/// Most entries a bundle may hold.
pub const ENTRIES_MAX: usize = 10_000;
/// The first word of the trusted comment.
pub const TRUSTED_COMMENT_WORD: &str = "vigil-bundle";
/// A bundle's file name ends so.
pub const BUNDLE_SUFFIX: &str = ".vigil";

/// One file of the payload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileEntry {
    /// `payload/…`, normalised.
    pub path: String,
    pub size: u64,
    pub sha256: [u8; 32],
}

/// One step of applying a bundle.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// `docker load` of an image archive of the payload.
    DockerLoad { file: String },
    /// A payload file installed at `to`, relative to the new release directory.
    Install { file: String, to: String },
    /// A unit or container restarted.
    Restart { target: Target },
    /// A command from vigil.toml (`[hooks.NAME]`).
    Hook { name: String },
}

impl Step {
    /// The payload file it uses, if any.
    pub fn file(&self) -> Option<&str> {
        match self {
            Step::DockerLoad { file } | Step::Install { file, .. } => Some(file),
            _ => None,
        }
    }

    /// Its kind, as the manifest spells it.
    pub fn kind(&self) -> &'static str {
        match self {
            Step::DockerLoad { .. } => "docker-load",
            Step::Install { .. } => "install",
            Step::Restart { .. } => "restart",
            Step::Hook { .. } => "hook",
        }
    }
}

/// What must be healthy, and how long, before a new release is kept.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Gate {
    pub checks: Vec<Selector>,
    /// All of them ok, continuously, this long.
    pub window: Duration,
    /// Or the release is rolled back.
    pub timeout: Duration,
}

/// A bundle's manifest, typed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Manifest {
    pub name: String,
    pub version: Version,
    /// The installed versions it may update; any when absent.
    pub from: Option<VersionReq>,
    /// The hardware it fits; any when empty.
    pub hardware: Vec<String>,
    pub files: Vec<FileEntry>,
    pub steps: Vec<Step>,
    pub gate: Option<Gate>,
}

/// Why a bundle is refused: the entry or field it is about, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    pub what: String,
    pub why: String,
}

impl Refusal {
    /// A refusal about `what`.
    pub fn new(what: impl Into<String>, why: impl Into<String>) -> Refusal {
        Refusal {
            what: what.into(),
            why: why.into(),
        }
    }
}

impl fmt::Display for Refusal {
    /// One line: a control character in what a bundle names (an entry path) is escaped,
    /// so a bundle cannot print lines of its own on an operator's terminal.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for c in self.what.chars() {
            if c.is_control() {
                write!(f, "{}", c.escape_default())?;
            } else {
                write!(f, "{c}")?;
            }
        }
        write!(f, ": {}", self.why)
    }
}

impl std::error::Error for Refusal {}

/// A bundle name: `[a-z0-9][a-z0-9._-]*`.
pub fn valid_name(name: &str) -> bool {
    let mut chars = name.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_lowercase() || c.is_ascii_digit())
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || "._-".contains(c))
}

/// An entry path as stored in a bundle, normalised: relative, `/`-separated, no `.` or
/// `..` or empty component, no trailing `/`. `Err` says what is wrong with it.
pub fn entry_path(raw: &str) -> Result<String, String> {
    if raw.is_empty() {
        return Err("an empty path".into());
    }
    if raw.starts_with('/') {
        return Err("an absolute path".into());
    }
    if raw.contains('\\') || raw.chars().any(char::is_control) {
        return Err("a path with a backslash or a control character".into());
    }
    let trimmed = raw.strip_suffix('/').unwrap_or(raw);
    let mut parts = Vec::new();
    for part in trimmed.split('/') {
        match part {
            "" | "." => return Err("a path that is not normalised (`//` or `.`)".into()),
            ".." => return Err("a path with `..`".into()),
            p => parts.push(p),
        }
    }
    Ok(parts.join("/"))
}

/// A board name as a slug: lowercase, every run of other characters one `-`
/// (`NVIDIA Jetson AGX Orin Developer Kit` → `nvidia-jetson-agx-orin-developer-kit`).
pub fn slug(s: &str) -> String {
    let mut out = String::new();
    for c in s.chars() {
        if c.is_ascii_alphanumeric() {
            out.push(c.to_ascii_lowercase());
        } else if !out.ends_with('-') && !out.is_empty() {
            out.push('-');
        }
    }
    out.trim_end_matches('-').to_string()
}

/// Whether a box's model (`[device] model`, or the device tree's words) is the hardware a
/// manifest names: the same slug, or the device tree's name holding it whole
/// (`nvidia-jetson-agx-orin-developer-kit` is a `jetson-agx-orin`).
pub fn model_fits(model: &str, hardware: &str) -> bool {
    let (m, h) = (slug(model), slug(hardware));
    !h.is_empty() && (m == h || format!("-{m}-").contains(&format!("-{h}-")))
}

/// Whether a normalised entry path is the payload directory or inside it.
pub fn in_payload(path: &str) -> bool {
    path == PAYLOAD_DIR || path.starts_with(&format!("{PAYLOAD_DIR}/"))
}

impl Manifest {
    /// `vigil-bundle NAME VERSION`: what the signature's trusted comment must say.
    pub fn trusted_comment(&self) -> String {
        format!("{TRUSTED_COMMENT_WORD} {} {}", self.name, self.version)
    }

    /// `NAME-VERSION.vigil`.
    pub fn file_name(&self) -> String {
        format!("{}-{}{BUNDLE_SUFFIX}", self.name, self.version)
    }

    /// The listed file at `path`.
    pub fn file(&self, path: &str) -> Option<&FileEntry> {
        self.files.iter().find(|f| f.path == path)
    }

    /// The payload's size, all files together.
    pub fn total_size(&self) -> u64 {
        self.files
            .iter()
            .map(|f| f.size)
            .fold(0, u64::saturating_add)
    }

    /// The rules a manifest keeps by itself: a valid name; payload paths normalised, inside
    /// `payload/` and each listed once; steps that name only listed files; install targets
    /// inside the release directory; a gate with checks and a window inside its timeout.
    pub fn check(&self) -> Result<(), Refusal> {
        if !valid_name(&self.name) {
            return Err(Refusal::new(
                "bundle.name",
                "not a bundle name: lowercase letters, digits and . _ - (starting with a letter or digit)",
            ));
        }
        if self.files.len() > ENTRIES_MAX {
            return Err(Refusal::new(
                MANIFEST,
                format!("more than {ENTRIES_MAX} files"),
            ));
        }
        let mut seen = std::collections::HashSet::new();
        for f in &self.files {
            let norm = entry_path(&f.path).map_err(|e| Refusal::new(&f.path, e))?;
            if norm != f.path || !in_payload(&norm) || norm == PAYLOAD_DIR {
                return Err(Refusal::new(
                    &f.path,
                    format!("a listed file must be a normalised path under {PAYLOAD_DIR}/"),
                ));
            }
            if !seen.insert(f.path.as_str()) {
                return Err(Refusal::new(&f.path, "listed twice"));
            }
        }
        for (i, step) in self.steps.iter().enumerate() {
            let what = format!("step {} ({})", i + 1, step.kind());
            if let Some(file) = step.file() {
                if self.file(file).is_none() {
                    return Err(Refusal::new(
                        what,
                        format!("names {file}, which the manifest does not list"),
                    ));
                }
            }
            if let Step::Install { to, .. } = step {
                entry_path(to).map_err(|e| {
                    Refusal::new(
                        &what,
                        format!("`to` must stay inside the release directory, not {e}"),
                    )
                })?;
            }
            if let Step::Restart {
                target: Target::Matched | Target::Process(_),
            } = step
            {
                return Err(Refusal::new(
                    what,
                    "a restart names unit:NAME or container:NAME",
                ));
            }
        }
        if let Some(g) = &self.gate {
            if g.checks.is_empty() {
                return Err(Refusal::new("gate.checks", "no check to gate on"));
            }
            if g.window.is_zero() || g.window > g.timeout {
                return Err(Refusal::new(
                    "gate.window",
                    "must be above zero and not longer than gate.timeout",
                ));
            }
        }
        Ok(())
    }

    /// Whether it fits this box: its `from` allows the installed version, its `hardware`
    /// names this model, and it is newer unless a downgrade is allowed.
    pub fn fits(
        &self,
        installed: Option<&Version>,
        model: Option<&str>,
        allow_downgrade: bool,
    ) -> Result<(), Refusal> {
        if !self.hardware.is_empty() {
            match model {
                Some(m) if self.hardware.iter().any(|h| model_fits(m, h)) => {}
                Some(m) => {
                    return Err(Refusal::new(
                        "bundle.hardware",
                        format!(
                            "this box is {m:?}; the bundle is for {}",
                            self.hardware.join(", ")
                        ),
                    ))
                }
                None => {
                    return Err(Refusal::new(
                        "bundle.hardware",
                        "this box's model is not known ([device] model in vigil.toml, or /proc/device-tree/model)",
                    ))
                }
            }
        }
        if let Some(v) = installed {
            if let Some(req) = &self.from {
                if !req.matches(v) {
                    return Err(Refusal::new(
                        "bundle.from",
                        format!("updates {req}; the installed version is {v}"),
                    ));
                }
            }
            if !allow_downgrade && self.version <= *v {
                let what = if self.version == *v {
                    "the same version"
                } else {
                    "a downgrade"
                };
                return Err(Refusal::new(
                    "bundle.version",
                    format!("{} is {what} of the installed {v}", self.version),
                ));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn manifest() -> Manifest {
        Manifest {
            name: "arasul".into(),
            version: Version::parse("1.4.0").unwrap(),
            from: Some(VersionReq::parse(">=1.2.0").unwrap()),
            hardware: vec!["jetson-agx-orin".into()],
            files: vec![FileEntry {
                path: "payload/images/ollama.tar".into(),
                size: 10,
                sha256: [0; 32],
            }],
            steps: vec![
                Step::DockerLoad {
                    file: "payload/images/ollama.tar".into(),
                },
                Step::Install {
                    file: "payload/images/ollama.tar".into(),
                    to: "images/ollama.tar".into(),
                },
                Step::Restart {
                    target: Target::Unit("arasul-stack.service".into()),
                },
            ],
            gate: Some(Gate {
                checks: vec![Selector::parse("ollama")],
                window: Duration::from_secs(60),
                timeout: Duration::from_secs(300),
            }),
        }
    }

    #[test]
    fn paths_are_normalised_or_refused() {
        assert_eq!(entry_path("payload/a/b").unwrap(), "payload/a/b");
        assert_eq!(entry_path("payload/").unwrap(), "payload");
        for bad in [
            "",
            "/etc/passwd",
            "payload/../x",
            "payload//x",
            "./payload",
            "a\\b",
            "a\0b",
        ] {
            assert!(entry_path(bad).is_err(), "{bad:?}");
        }
        assert!(in_payload("payload/x") && in_payload("payload") && !in_payload("payloadx"));
    }

    #[test]
    fn a_good_manifest_passes_and_names_itself() {
        let m = manifest();
        m.check().unwrap();
        assert_eq!(m.trusted_comment(), "vigil-bundle arasul 1.4.0");
        assert_eq!(m.file_name(), "arasul-1.4.0.vigil");
        assert_eq!(m.total_size(), 10);
    }

    /// One way to break a manifest, and the field the refusal must name.
    type Case = (Box<dyn Fn(&mut Manifest)>, &'static str);

    #[test]
    fn a_refusal_is_one_line_whatever_the_bundle_names() {
        let r = Refusal::new("payload/x\u{1b}[2K\r\nvigilctl: ok", "not listed");
        let line = r.to_string();
        assert!(!line.chars().any(char::is_control), "{line:?}");
        assert!(line.starts_with("payload/x\\u{1b}[2K"), "{line}");
        assert!(entry_path("payload/a\nb").is_err());
    }

    #[test]
    fn every_rule_of_the_manifest_refuses() {
        let cases: Vec<Case> = vec![
            (Box::new(|m| m.name = "Bad Name".into()), "bundle.name"),
            (
                Box::new(|m| m.files[0].path = "payload/../x".into()),
                "payload/../x",
            ),
            (Box::new(|m| m.files[0].path = "etc/x".into()), "etc/x"),
            (
                Box::new(|m| m.files.push(m.files[0].clone())),
                "payload/images/ollama.tar",
            ),
            (
                Box::new(|m| {
                    m.steps[0] = Step::DockerLoad {
                        file: "payload/other".into(),
                    }
                }),
                "step 1 (docker-load)",
            ),
            (
                Box::new(|m| {
                    m.steps[1] = Step::Install {
                        file: "payload/images/ollama.tar".into(),
                        to: "../../etc/x".into(),
                    }
                }),
                "step 2 (install)",
            ),
            (
                Box::new(|m| {
                    m.steps[2] = Step::Restart {
                        target: Target::Matched,
                    }
                }),
                "step 3 (restart)",
            ),
            (
                Box::new(|m| m.gate.as_mut().unwrap().window = Duration::from_secs(900)),
                "gate.window",
            ),
        ];
        for (break_it, what) in cases {
            let mut m = manifest();
            break_it(&mut m);
            let e = m.check().unwrap_err();
            assert_eq!(e.what, what, "{e}");
        }
    }

    #[test]
    fn board_names_fit_by_their_words() {
        assert!(model_fits("jetson-agx-orin", "jetson-agx-orin"));
        assert!(model_fits(
            "NVIDIA Jetson AGX Orin Developer Kit",
            "jetson-agx-orin"
        ));
        assert!(!model_fits("NVIDIA Jetson AGX Orin", "jetson-orin-nano"));
        assert!(!model_fits("jetson-agx-orinx", "jetson-agx-orin"));
        assert_eq!(slug("  A__b  c "), "a-b-c");
    }

    #[test]
    fn fit_by_version_and_hardware() {
        let m = manifest();
        let v = |s: &str| Version::parse(s).unwrap();
        m.fits(Some(&v("1.3.0")), Some("jetson-agx-orin"), false)
            .unwrap();
        m.fits(None, Some("jetson-agx-orin"), false).unwrap();
        let e = m.fits(Some(&v("1.1.0")), Some("jetson-agx-orin"), false);
        assert_eq!(e.unwrap_err().what, "bundle.from");
        let e = m.fits(Some(&v("1.4.0")), Some("jetson-agx-orin"), false);
        assert!(e.unwrap_err().why.contains("the same version"));
        let e = m.fits(Some(&v("1.5.0")), Some("jetson-agx-orin"), false);
        assert!(e.unwrap_err().why.contains("a downgrade"));
        // A downgrade, allowed.
        m.fits(Some(&v("1.5.0")), Some("jetson-agx-orin"), true)
            .unwrap();
        let e = m.fits(Some(&v("1.3.0")), Some("raspberry-pi"), false);
        assert_eq!(e.unwrap_err().what, "bundle.hardware");
        assert!(m.fits(Some(&v("1.3.0")), None, false).is_err());
    }
}
