//! Policies: the `[[check]]` tables of TOML files, validated with every error located.
//!
//! Files come from policy directories merged by file name (a later directory's
//! `ollama.toml` replaces an earlier one's, the systemd drop-in habit), then are read in
//! file-name order. Every error in every file is collected; a set with any error is refused
//! as a whole.

pub mod diag;
mod fields;
pub mod rules;
pub mod threshold;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Serialize;

use diag::Source;
pub use diag::{Diagnostic, Diagnostics};
use fields::Table;
pub use rules::LoadContext;
use threshold::Condition;

use crate::probe::{HostRoots, ProbeKind};

/// Vendor policies shipped in the package.
pub const VENDOR_DIR: &str = "/usr/lib/vigil/policies.d";
/// Operator policies; same file name replaces the vendor one.
pub const ADMIN_DIR: &str = "/etc/vigil/policies.d";

/// Default probe interval.
pub const EVERY_DEFAULT_SECS: u64 = 10;
/// Default probe timeout.
pub const TIMEOUT_DEFAULT_SECS: u64 = 5;

/// Probe-specific settings of a check.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "probe", rename_all = "lowercase")]
pub enum ProbeParams {
    Disk {
        path: PathBuf,
    },
    Memory,
    Thermal {
        sensors: Vec<String>,
    },
    /// One systemd unit.
    Systemd {
        unit: String,
    },
    /// One container by name (`container = "…"`, default: the check's name).
    Container {
        container: String,
    },
    /// Every container whose name matches a glob: one check `container:NAME` each.
    Containers {
        #[serde(rename = "match")]
        patterns: Vec<String>,
    },
    Ollama {
        url: String,
        probe_model: Option<String>,
    },
    Gpu {
        /// `auto`, `nvml`, `jetson` or `none`.
        backend: String,
        /// NVML device index.
        device: u32,
    },
    Http {
        url: String,
        expect_status: Vec<u16>,
    },
    Tcp {
        address: String,
    },
    Exec {
        command: Vec<String>,
    },
}

/// Docker's standard socket (the built-in checks watch containers when it exists).
pub const DOCKER_SOCKET: &str = "/var/run/docker.sock";

/// Default Ollama address.
pub const OLLAMA_URL_DEFAULT: &str = "http://127.0.0.1:11434";

impl ProbeParams {
    /// The probe kind these settings are for.
    pub fn kind(&self) -> ProbeKind {
        match self {
            ProbeParams::Disk { .. } => ProbeKind::Disk,
            ProbeParams::Memory => ProbeKind::Memory,
            ProbeParams::Thermal { .. } => ProbeKind::Thermal,
            ProbeParams::Systemd { .. } => ProbeKind::Systemd,
            ProbeParams::Container { .. } => ProbeKind::Container,
            ProbeParams::Containers { .. } => ProbeKind::Containers,
            ProbeParams::Ollama { .. } => ProbeKind::Ollama,
            ProbeParams::Gpu { .. } => ProbeKind::Gpu,
            ProbeParams::Http { .. } => ProbeKind::Http,
            ProbeParams::Tcp { .. } => ProbeKind::Tcp,
            ProbeParams::Exec { .. } => ProbeKind::Exec,
        }
    }
}

/// A validated check.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CheckSpec {
    pub name: String,
    #[serde(flatten)]
    pub params: ProbeParams,
    #[serde(serialize_with = "ser_duration")]
    pub every: Duration,
    #[serde(serialize_with = "ser_duration")]
    pub timeout: Duration,
    #[serde(serialize_with = "ser_conditions")]
    pub warn: Vec<Condition>,
    #[serde(serialize_with = "ser_conditions")]
    pub crit: Vec<Condition>,
    /// `FILE:LINE` of the definition, or `built-in`.
    pub origin: String,
}

fn ser_duration<S: serde::Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&humantime::format_duration(*d).to_string())
}

fn ser_conditions<S: serde::Serializer>(c: &[Condition], s: S) -> Result<S::Ok, S::Error> {
    s.collect_seq(c.iter().map(|c| c.text.as_str()))
}

fn ser_rules<S: serde::Serializer>(rules: &[crate::engine::Rule], s: S) -> Result<S::Ok, S::Error> {
    s.collect_seq(rules.iter().map(|r| {
        serde_json::json!({
            "name": r.name,
            "on": r.on,
            "when": format!("{:?}", r.when).to_lowercase(),
            "for": humantime::format_duration(r.hold).to_string(),
            "do": r.ladder.iter().map(|a| a.to_string()).collect::<Vec<_>>(),
            "cooldown": humantime::format_duration(r.cooldown).to_string(),
            "limit": format!("{} per {}", r.limit.count, humantime::format_duration(r.limit.window)),
            "mode": format!("{:?}", r.mode).to_lowercase(),
        })
    }))
}

impl CheckSpec {
    /// The probe kind of this check.
    pub fn probe(&self) -> ProbeKind {
        self.params.kind()
    }
}

/// The effective set of checks.
#[derive(Debug, Clone, PartialEq, Default, Serialize)]
pub struct PolicySet {
    pub checks: Vec<CheckSpec>,
    /// Rules, in file order.
    #[serde(serialize_with = "ser_rules")]
    pub rules: Vec<crate::engine::Rule>,
    /// The files it was read from, in order.
    pub files: Vec<PathBuf>,
    /// True when no policy file existed and the built-in defaults are in force.
    pub builtin: bool,
}

/// Lists the policy files of `dirs` merged by file name, in file-name order. Directories
/// that do not exist are skipped; unreadable ones are errors.
pub fn policy_files(dirs: &[PathBuf]) -> Result<Vec<PathBuf>, Diagnostics> {
    let mut by_name: BTreeMap<String, PathBuf> = BTreeMap::new();
    let mut errors = Vec::new();
    for dir in dirs {
        let rd = match std::fs::read_dir(dir) {
            Ok(rd) => rd,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => {
                errors.push(io_diag(dir, &format!("cannot read policy directory: {e}")));
                continue;
            }
        };
        for entry in rd.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            if name.ends_with(".toml") && !name.starts_with('.') {
                by_name.insert(name, entry.path());
            }
        }
    }
    if errors.is_empty() {
        Ok(by_name.into_values().collect())
    } else {
        Err(Diagnostics(errors))
    }
}

fn io_diag(path: &Path, message: &str) -> Diagnostic {
    Diagnostic {
        file: path.to_path_buf(),
        line: 1,
        column: 1,
        message: message.to_string(),
    }
}

/// Loads the policies of `dirs`; with no file at all, the built-in defaults for this host.
pub fn load_dirs(
    dirs: &[PathBuf],
    roots: &HostRoots,
    ctx: &LoadContext,
) -> Result<PolicySet, Diagnostics> {
    let files = policy_files(dirs)?;
    if files.is_empty() {
        return Ok(builtin(roots));
    }
    load_files(&files, ctx)
}

/// Loads exactly these files (`vigilctl policy check FILE…`).
pub fn load_files(files: &[PathBuf], ctx: &LoadContext) -> Result<PolicySet, Diagnostics> {
    let mut errors = Vec::new();
    let mut checks: Vec<CheckSpec> = Vec::new();
    let mut rules: Vec<rules::ParsedRule> = Vec::new();
    let mut seen_rules: BTreeMap<String, String> = BTreeMap::new();
    // name → where it was first defined
    let mut seen: BTreeMap<String, String> = BTreeMap::new();
    for path in files {
        let text = match std::fs::read_to_string(path) {
            Ok(t) => t,
            Err(e) => {
                errors.push(io_diag(path, &format!("cannot read policy file: {e}")));
                continue;
            }
        };
        let src = Source { path, text: &text };
        parse_file(
            &src,
            &mut checks,
            &mut seen,
            &mut rules,
            &mut seen_rules,
            ctx,
            &mut errors,
        );
    }
    rules::check_references(&rules, &checks, &mut errors);
    if errors.is_empty() {
        Ok(PolicySet {
            checks,
            rules: rules.into_iter().map(|r| r.rule).collect(),
            files: files.to_vec(),
            builtin: false,
        })
    } else {
        Err(Diagnostics(errors))
    }
}

fn strings(v: Option<Vec<(String, std::ops::Range<usize>)>>) -> Vec<String> {
    v.unwrap_or_default().into_iter().map(|(s, _)| s).collect()
}

/// A check name: `[a-z0-9][a-z0-9_.:-]*`.
pub fn valid_name(name: &str) -> bool {
    let mut chars = name.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_lowercase() || c.is_ascii_digit())
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || "_.:-".contains(c))
}

#[allow(clippy::too_many_arguments)]
fn parse_file(
    src: &Source<'_>,
    checks: &mut Vec<CheckSpec>,
    seen: &mut BTreeMap<String, String>,
    rules: &mut Vec<rules::ParsedRule>,
    seen_rules: &mut BTreeMap<String, String>,
    ctx: &LoadContext,
    errors: &mut Vec<Diagnostic>,
) {
    let (root, parse_errors) = toml::de::DeTable::parse_recoverable(src.text);
    if !parse_errors.is_empty() {
        errors.extend(parse_errors.iter().map(|e| src.toml_error(e)));
        return;
    }
    let root_span = root.span();
    let mut top = Table::new(src, root.get_ref(), root_span, "the policy file");
    if let Some(items) = top.array_of_tables("rule", errors) {
        for (table, span) in items {
            let mut t = Table::new(src, table, span, "[[rule]]");
            if let Some(r) = rules::parse_rule(&mut t, seen_rules, ctx, errors) {
                rules.push(r);
            }
        }
    }
    if let Some(items) = top.array_of_tables("check", errors) {
        for (table, span) in items {
            let mut t = Table::new(src, table, span, "[[check]]");
            if let Some(spec) = parse_check(&mut t, seen, errors) {
                checks.push(spec);
            }
        }
    }
    top.finish(errors, &["check", "rule"]);
}

fn parse_check(
    t: &mut Table<'_>,
    seen: &mut BTreeMap<String, String>,
    errors: &mut Vec<Diagnostic>,
) -> Option<CheckSpec> {
    let src = t.src;
    let name = t.required_str("name", errors);
    let probe = t.required_str("probe", errors);
    let every = t.duration("every", errors);
    let timeout = t.duration("timeout", errors);
    let warn_texts = t.str_or_list("warn", errors);
    let crit_texts = t.str_or_list("crit", errors);

    let mut ok = true;
    let origin = {
        let (line, _) = src.line_col(t.span.start);
        format!("{}:{}", src.path.display(), line)
    };
    if let Some((n, span)) = &name {
        if n.starts_with("vigil:") {
            errors.push(src.at(
                span,
                format!("check name {n:?}: names starting with `vigil:` are vigild's own"),
            ));
            ok = false;
        } else if !valid_name(n) {
            errors.push(src.at(span, format!(
                "invalid check name {n:?}: use lowercase letters, digits and _ . : - (starting with a letter or digit)"
            )));
            ok = false;
        } else if let Some(first) = seen.get(n) {
            errors.push(src.at(
                span,
                format!("duplicate check name {n:?}: first defined at {first}"),
            ));
            ok = false;
        } else {
            let (line, col) = src.line_col(span.start);
            seen.insert(n.clone(), format!("{}:{line}:{col}", src.path.display()));
        }
    }
    let kind = match &probe {
        Some((p, span)) => match ProbeKind::parse(p) {
            Some(k) => Some(k),
            None => {
                let supported: Vec<&str> = ProbeKind::ALL.iter().map(|k| k.as_str()).collect();
                let msg = if ProbeKind::PLANNED.contains(&p.as_str()) {
                    format!(
                        "probe {p:?} is not supported by this version of vigild; supported: {}",
                        supported.join(", ")
                    )
                } else {
                    format!(
                        "unknown probe {p:?}; expected one of: {}",
                        supported.join(", ")
                    )
                };
                errors.push(src.at(span, msg));
                None
            }
        },
        None => None,
    };
    let params = match kind {
        Some(ProbeKind::Disk) => t.required_str("path", errors).and_then(|(p, span)| {
            if Path::new(&p).is_absolute() {
                Some(ProbeParams::Disk {
                    path: PathBuf::from(p),
                })
            } else {
                errors.push(src.at(&span, format!("path must be absolute, got {p:?}")));
                None
            }
        }),
        Some(ProbeKind::Memory) => Some(ProbeParams::Memory),
        Some(ProbeKind::Thermal) => Some(ProbeParams::Thermal {
            sensors: strings(t.str_or_list("sensors", errors)),
        }),
        Some(ProbeKind::Systemd) => t
            .required_str("unit", errors)
            .map(|(unit, _)| ProbeParams::Systemd { unit }),
        Some(ProbeKind::Container) => Some(ProbeParams::Container {
            container: t
                .str("container", errors)
                .map(|(c, _)| c)
                .or_else(|| name.as_ref().map(|(n, _)| n.clone()))
                .unwrap_or_default(),
        }),
        Some(ProbeKind::Containers) => {
            let present = t.has("match");
            let patterns = strings(t.str_or_list("match", errors));
            if !present {
                errors.push(src.at(&t.span, "[[check]] with probe \"containers\" is missing the key `match` (a glob or a list of globs)"));
                None
            } else {
                Some(ProbeParams::Containers { patterns })
            }
        }
        Some(ProbeKind::Ollama) => {
            let url = t.str("url", errors).map(|(u, span)| (u, Some(span)));
            let (url, span) = url.unwrap_or((OLLAMA_URL_DEFAULT.to_string(), None));
            if !(url.starts_with("http://") || url.starts_with("https://")) {
                errors.push(src.at(
                    &span.unwrap_or(t.span.clone()),
                    format!("url must start with http:// or https://, got {url:?}"),
                ));
                None
            } else {
                Some(ProbeParams::Ollama {
                    url,
                    probe_model: t.str("probe_model", errors).map(|(m, _)| m),
                })
            }
        }
        Some(ProbeKind::Gpu) => {
            let backend = t.str("backend", errors);
            match backend {
                Some((b, span)) if !["auto", "nvml", "jetson", "none"].contains(&b.as_str()) => {
                    errors.push(src.at(
                        &span,
                        format!("backend must be auto, nvml, jetson or none, got {b:?}"),
                    ));
                    None
                }
                b => Some(ProbeParams::Gpu {
                    backend: b.map(|(b, _)| b).unwrap_or_else(|| "auto".into()),
                    device: t.integer("device", 0, u32::MAX as i64, errors).unwrap_or(0) as u32,
                }),
            }
        }
        Some(ProbeKind::Http) => t.required_str("url", errors).and_then(|(url, span)| {
            if !(url.starts_with("http://") || url.starts_with("https://")) {
                errors.push(src.at(
                    &span,
                    format!("url must start with http:// or https://, got {url:?}"),
                ));
                return None;
            }
            let expect = t.integer_or_list("expect_status", 100, 599, errors);
            Some(ProbeParams::Http {
                url,
                expect_status: expect
                    .map(|v| v.into_iter().map(|x| x as u16).collect())
                    .unwrap_or_else(|| vec![200]),
            })
        }),
        Some(ProbeKind::Tcp) => t
            .required_str("address", errors)
            .and_then(|(address, span)| {
                match address.rsplit_once(':').map(|(h, p)| (h, p.parse::<u16>())) {
                    Some((h, Ok(p))) if !h.is_empty() && p > 0 => {
                        Some(ProbeParams::Tcp { address })
                    }
                    _ => {
                        errors.push(
                            src.at(&span, format!("address must be HOST:PORT, got {address:?}")),
                        );
                        None
                    }
                }
            }),
        Some(ProbeKind::Exec) => {
            if !t.has("command") {
                errors.push(src.at(&t.span, "[[check]] with probe \"exec\" is missing the key `command` (argv, e.g. [\"/usr/bin/test\", \"-e\", \"/run/x\"])"));
                None
            } else {
                let argv = strings(t.str_or_list("command", errors));
                match argv.first() {
                    Some(prog) if Path::new(prog).is_absolute() => {
                        Some(ProbeParams::Exec { command: argv })
                    }
                    _ => {
                        errors.push(src.at(&t.span, "exec `command` must start with an absolute path (no shell, no PATH lookup)"));
                        None
                    }
                }
            }
        }
        None => None,
    };
    let mut conditions = |texts: Option<Vec<(String, std::ops::Range<usize>)>>| -> Vec<Condition> {
        let Some(kind) = kind else { return Vec::new() };
        let mut out = Vec::new();
        for (text, span) in texts.unwrap_or_default() {
            match threshold::parse(&text, kind) {
                Ok(c) => out.push(c),
                Err(e) => {
                    ok = false;
                    // Point inside the string: +1 for the opening quote.
                    let at = span.start + 1 + e.offset;
                    errors.push(src.at(&(at..at), e.message));
                }
            }
        }
        out
    };
    let warn = conditions(warn_texts);
    let crit = conditions(crit_texts);
    const COMMON: [&str; 6] = ["name", "probe", "every", "timeout", "warn", "crit"];
    let extra: &[&str] = match kind {
        Some(ProbeKind::Disk) => &["path"],
        Some(ProbeKind::Thermal) => &["sensors"],
        Some(ProbeKind::Memory) => &[],
        Some(ProbeKind::Systemd) => &["unit"],
        Some(ProbeKind::Container) => &["container"],
        Some(ProbeKind::Containers) => &["match"],
        Some(ProbeKind::Ollama) => &["url", "probe_model"],
        Some(ProbeKind::Gpu) => &["backend", "device"],
        Some(ProbeKind::Http) => &["url", "expect_status"],
        Some(ProbeKind::Tcp) => &["address"],
        Some(ProbeKind::Exec) => &["command"],
        // Unknown probe: already reported; do not pile up key errors.
        None => return None,
    };
    let allowed: Vec<&str> = COMMON.iter().chain(extra).copied().collect();
    let finished = t.finish(errors, &allowed);
    let (name, _) = name?;
    if !ok || !finished {
        return None;
    }
    Some(CheckSpec {
        name,
        params: params?,
        every: every.unwrap_or(Duration::from_secs(EVERY_DEFAULT_SECS)),
        timeout: timeout.unwrap_or(Duration::from_secs(TIMEOUT_DEFAULT_SECS)),
        warn,
        crit,
        origin,
    })
}

/// The built-in checks for whatever this host has: the root file system and memory always;
/// temperatures when the host has sensors; the GPU when there is one; containers when
/// Docker's socket is there; Ollama when it answers on 127.0.0.1:11434.
pub fn builtin(roots: &HostRoots) -> PolicySet {
    builtin_with(roots, Path::new(DOCKER_SOCKET))
}

/// [`builtin`] with Docker's socket at `docker_socket`.
pub fn builtin_with(roots: &HostRoots, docker_socket: &Path) -> PolicySet {
    let kind_cond = |k: ProbeKind, s: &str| threshold::parse(s, k).expect("built-in threshold");
    let mut checks = vec![
        CheckSpec {
            name: "root-disk".into(),
            params: ProbeParams::Disk { path: "/".into() },
            every: Duration::from_secs(30),
            timeout: Duration::from_secs(TIMEOUT_DEFAULT_SECS),
            warn: vec![kind_cond(ProbeKind::Disk, "used > 85%")],
            crit: vec![
                kind_cond(ProbeKind::Disk, "used > 95%"),
                kind_cond(ProbeKind::Disk, "inodes_used > 95%"),
            ],
            origin: "built-in".into(),
        },
        CheckSpec {
            name: "memory".into(),
            params: ProbeParams::Memory,
            every: Duration::from_secs(EVERY_DEFAULT_SECS),
            timeout: Duration::from_secs(TIMEOUT_DEFAULT_SECS),
            warn: vec![kind_cond(ProbeKind::Memory, "available < 10%")],
            crit: vec![kind_cond(ProbeKind::Memory, "available < 5%")],
            origin: "built-in".into(),
        },
    ];
    if crate::probe::thermal::scan(&roots.sys)
        .iter()
        .any(|s| s.celsius.is_some())
    {
        checks.push(CheckSpec {
            name: "thermal".into(),
            params: ProbeParams::Thermal {
                sensors: Vec::new(),
            },
            every: Duration::from_secs(EVERY_DEFAULT_SECS),
            timeout: Duration::from_secs(TIMEOUT_DEFAULT_SECS),
            warn: vec![kind_cond(ProbeKind::Thermal, "temperature > 85")],
            crit: vec![kind_cond(ProbeKind::Thermal, "temperature > 95")],
            origin: "built-in".into(),
        });
    }
    // The GPU, when there is one: Jetson's integrated GPU in sysfs, or an NVIDIA driver.
    let gpu_here = crate::probe::gpu::jetson::JetsonBackend::discover(roots).is_ok()
        || crate::probe::gpu::nvml::open_live(0).is_ok();
    if gpu_here {
        checks.push(CheckSpec {
            name: "gpu".into(),
            params: ProbeParams::Gpu {
                backend: "auto".into(),
                device: 0,
            },
            every: Duration::from_secs(EVERY_DEFAULT_SECS),
            timeout: Duration::from_secs(TIMEOUT_DEFAULT_SECS),
            warn: vec![kind_cond(ProbeKind::Gpu, "memory_used > 90%")],
            crit: vec![kind_cond(ProbeKind::Gpu, "temperature > 95")],
            origin: "built-in".into(),
        });
    }
    // Docker, when its socket is there: every container, one check each.
    if docker_socket.exists() {
        checks.push(CheckSpec {
            name: "docker".into(),
            params: ProbeParams::Containers {
                patterns: vec!["*".into()],
            },
            every: Duration::from_secs(30),
            timeout: Duration::from_secs(TIMEOUT_DEFAULT_SECS),
            warn: Vec::new(),
            crit: Vec::new(),
            origin: "built-in".into(),
        });
    }
    // Ollama, when it answers on its standard port.
    let ollama_addr = std::net::SocketAddr::from(([127, 0, 0, 1], 11434));
    if std::net::TcpStream::connect_timeout(&ollama_addr, Duration::from_millis(200)).is_ok() {
        checks.push(CheckSpec {
            name: "ollama".into(),
            params: ProbeParams::Ollama {
                url: OLLAMA_URL_DEFAULT.into(),
                probe_model: None,
            },
            every: Duration::from_secs(EVERY_DEFAULT_SECS),
            timeout: Duration::from_secs(3),
            warn: Vec::new(),
            crit: Vec::new(),
            origin: "built-in".into(),
        });
    }
    PolicySet {
        checks,
        rules: Vec::new(),
        files: Vec::new(),
        builtin: true,
    }
}

#[cfg(test)]
mod tests;
