//! `[[check]]` tables: the keys every check has, then one small parser per probe kind.
//!
//! Each parser reads every key its kind accepts before it judges any of them, so the keys it
//! reads are the kind's one list of accepted keys ([`Table::finish`] refuses the rest).

use std::collections::BTreeMap;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::time::Duration;

use super::diag::{Diagnostic, Source};
use super::fields::Table;
use crate::core::check::{
    valid_name, CheckSpec, GpuChoice, ProbeParams, EVERY_DEFAULT_SECS, TIMEOUT_DEFAULT_SECS,
};
use crate::core::probe_kind::ProbeKind;
use crate::core::threshold::{self, Condition};

/// The shortest probe interval a check may have.
pub const EVERY_MIN_MILLIS: u64 = 100;

/// Where `vigil-smart@.service` writes smartctl's output (its RuntimeDirectory=).
pub const SMART_DIR_DEFAULT: &str = "/run/vigil-smart";
/// Default interval of a `smart` check: each reading past it starts a root unit.
pub const SMART_EVERY_DEFAULT_SECS: u64 = 600;
/// Default timeout of a `smart` check: the unit's smartctl run plus the read.
pub const SMART_TIMEOUT_DEFAULT_SECS: u64 = 60;
/// The warn threshold a `smart` check has when its policy sets no `warn`.
pub const SMART_WARN_DEFAULT: &str = "percentage_used >= 90%";

/// Default Ollama address.
pub const OLLAMA_URL_DEFAULT: &str = "http://127.0.0.1:11434";

type Errors = Vec<Diagnostic>;
type Spanned = (String, Range<usize>);

fn strings(v: Option<Vec<Spanned>>) -> Vec<String> {
    v.unwrap_or_default().into_iter().map(|(s, _)| s).collect()
}

fn is_http_url(url: &str) -> bool {
    url.starts_with("http://") || url.starts_with("https://")
}

/// Parses one `[[check]]`; `seen` maps names to where they were first defined.
pub(crate) fn parse_check(
    t: &mut Table<'_>,
    seen: &mut BTreeMap<String, String>,
    errors: &mut Errors,
) -> Option<CheckSpec> {
    let src = t.src;
    let name = t.required_str("name", errors);
    let probe = t.required_str("probe", errors);
    let mut every_ok = true;
    let every = t.duration("every", errors).filter(|d| {
        // A probe every millisecond is a busy loop (an exec check then takes half a core).
        let fine = *d >= Duration::from_millis(EVERY_MIN_MILLIS);
        if !fine {
            errors.push(src.at(
                &t.span_of("every"),
                format!("`every` must be at least {EVERY_MIN_MILLIS}ms: a shorter interval only burns CPU"),
            ));
        }
        every_ok &= fine;
        fine
    });
    let timeout = t.duration("timeout", errors);
    let warn_texts = t.str_or_list("warn", errors);
    let crit_texts = t.str_or_list("crit", errors);
    let origin = {
        let (line, _) = src.line_col(t.span.start);
        format!("{}:{}", src.path.display(), line)
    };
    let mut ok = check_name(src, name.as_ref(), seen, errors) && every_ok;
    let kind = probe
        .as_ref()
        .and_then(|(p, span)| probe_kind(src, p, span, errors));
    // Unknown probe: already reported; do not pile up key errors.
    let kind = kind?;
    let params = match kind {
        ProbeKind::Disk => disk(t, errors),
        ProbeKind::Memory => Some(ProbeParams::Memory),
        ProbeKind::Thermal => Some(ProbeParams::Thermal {
            sensors: strings(t.str_or_list("sensors", errors)),
        }),
        ProbeKind::Smart => smart(t, errors),
        ProbeKind::Systemd => t
            .required_str("unit", errors)
            .map(|(unit, _)| ProbeParams::Systemd { unit }),
        ProbeKind::Container => Some(ProbeParams::Container {
            container: t
                .str("container", errors)
                .map(|(c, _)| c)
                .or_else(|| name.as_ref().map(|(n, _)| n.clone()))
                .unwrap_or_default(),
        }),
        ProbeKind::Containers => containers(t, errors),
        ProbeKind::Ollama => ollama(t, errors),
        ProbeKind::Gpu => gpu(t, errors),
        ProbeKind::Http => http(t, errors),
        ProbeKind::Tcp => tcp(t, errors),
        ProbeKind::Exec => exec(t, errors),
    };
    let mut conditions = |texts: Option<Vec<Spanned>>| -> Vec<Condition> {
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
    // A `smart` check warns on wear unless its policy says otherwise.
    let warn_texts = match (kind, warn_texts) {
        (ProbeKind::Smart, None) => Some(vec![(SMART_WARN_DEFAULT.to_string(), 0..0)]),
        (_, w) => w,
    };
    let warn = conditions(warn_texts);
    let crit = conditions(crit_texts);
    let finished = t.finish(errors);
    let (name, _) = name?;
    if !ok || !finished {
        return None;
    }
    Some(CheckSpec {
        name,
        params: params?,
        every: every.unwrap_or(Duration::from_secs(match kind {
            ProbeKind::Smart => SMART_EVERY_DEFAULT_SECS,
            _ => EVERY_DEFAULT_SECS,
        })),
        timeout: timeout.unwrap_or(Duration::from_secs(match kind {
            ProbeKind::Smart => SMART_TIMEOUT_DEFAULT_SECS,
            _ => TIMEOUT_DEFAULT_SECS,
        })),
        warn,
        crit,
        origin,
    })
}

/// Whether the name is valid and new; records where it was defined.
fn check_name(
    src: &Source<'_>,
    name: Option<&Spanned>,
    seen: &mut BTreeMap<String, String>,
    errors: &mut Errors,
) -> bool {
    let Some((n, span)) = name else {
        return true;
    };
    let message = if n.starts_with("vigil:") {
        format!("check name {n:?}: names starting with `vigil:` are vigild's own")
    } else if !valid_name(n) {
        format!(
            "invalid check name {n:?}: use lowercase letters, digits and _ . : - (starting with a letter or digit)"
        )
    } else if let Some(first) = seen.get(n) {
        format!("duplicate check name {n:?}: first defined at {first}")
    } else {
        let (line, col) = src.line_col(span.start);
        seen.insert(n.clone(), format!("{}:{line}:{col}", src.path.display()));
        return true;
    };
    errors.push(src.at(span, message));
    false
}

/// The probe kind named, or an error that lists the supported ones.
fn probe_kind(
    src: &Source<'_>,
    p: &str,
    span: &Range<usize>,
    errors: &mut Errors,
) -> Option<ProbeKind> {
    if let Some(k) = ProbeKind::parse(p) {
        return Some(k);
    }
    let supported: Vec<&str> = ProbeKind::ALL.iter().map(|k| k.as_str()).collect();
    let msg = if ProbeKind::PLANNED.contains(&p) {
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

fn disk(t: &mut Table<'_>, errors: &mut Errors) -> Option<ProbeParams> {
    let (p, span) = t.required_str("path", errors)?;
    if Path::new(&p).is_absolute() {
        return Some(ProbeParams::Disk {
            path: PathBuf::from(p),
        });
    }
    errors.push(t.src.at(&span, "path must be absolute (start with /)"));
    None
}

/// Whether `device` is `/dev/NAME` with NAME of lowercase letters and digits (`nvme0`,
/// `sda`): the names the unit's instance and polkit's rule accept.
pub fn valid_smart_device(device: &str) -> bool {
    device.strip_prefix("/dev/").is_some_and(|n| {
        n.starts_with(|c: char| c.is_ascii_lowercase())
            && n.chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit())
    })
}

fn smart(t: &mut Table<'_>, errors: &mut Errors) -> Option<ProbeParams> {
    let device = t.required_str("device", errors);
    let dir = t.str("dir", errors);
    let refresh = t.bool("refresh", errors).unwrap_or(true);
    let dir = match dir {
        None => PathBuf::from(SMART_DIR_DEFAULT),
        Some((d, _)) if Path::new(&d).is_absolute() => PathBuf::from(d),
        Some((_, span)) => {
            errors.push(t.src.at(&span, "dir must be absolute (start with /)"));
            return None;
        }
    };
    let (device, span) = device?;
    if !valid_smart_device(&device) {
        errors.push(t.src.at(
            &span,
            format!(
                "device must be /dev/NAME with NAME of lowercase letters and digits, such as \
                 \"/dev/nvme0\" or \"/dev/sda\", got {device:?}"
            ),
        ));
        return None;
    }
    Some(ProbeParams::Smart {
        device: PathBuf::from(device),
        dir,
        refresh,
    })
}

fn containers(t: &mut Table<'_>, errors: &mut Errors) -> Option<ProbeParams> {
    let present = t.has("match");
    let patterns = strings(t.str_or_list("match", errors));
    if !present {
        errors.push(t.src.at(
            &t.span,
            "[[check]] with probe \"containers\" is missing the key `match` (a glob or a list of globs)",
        ));
        return None;
    }
    Some(ProbeParams::Containers { patterns })
}

fn ollama(t: &mut Table<'_>, errors: &mut Errors) -> Option<ProbeParams> {
    let url = t.str("url", errors);
    let probe_model = t.str("probe_model", errors).map(|(m, _)| m);
    let url = match url {
        None => OLLAMA_URL_DEFAULT.to_string(),
        Some((u, _)) if is_http_url(&u) => u,
        Some((_, span)) => {
            errors.push(t.src.at(&span, "url must start with http:// or https://"));
            return None;
        }
    };
    Some(ProbeParams::Ollama { url, probe_model })
}

fn gpu(t: &mut Table<'_>, errors: &mut Errors) -> Option<ProbeParams> {
    let backend = t.str("backend", errors);
    let device = t.integer("device", 0, u32::MAX as i64, errors).unwrap_or(0) as u32;
    let backend = match backend {
        None => GpuChoice::Auto,
        Some((b, span)) => match GpuChoice::parse(&b) {
            Some(c) => c,
            None => {
                errors.push(t.src.at(
                    &span,
                    format!("backend must be auto, nvml, jetson or none, got {b:?}"),
                ));
                return None;
            }
        },
    };
    Some(ProbeParams::Gpu { backend, device })
}

fn http(t: &mut Table<'_>, errors: &mut Errors) -> Option<ProbeParams> {
    let url = t.required_str("url", errors);
    let expect = t.integer_or_list("expect_status", 100, 599, errors);
    let (url, span) = url?;
    if !is_http_url(&url) {
        errors.push(t.src.at(&span, "url must start with http:// or https://"));
        return None;
    }
    Some(ProbeParams::Http {
        url,
        expect_status: expect
            .map(|v| v.into_iter().map(|x| x as u16).collect())
            .unwrap_or_else(|| vec![200]),
    })
}

fn tcp(t: &mut Table<'_>, errors: &mut Errors) -> Option<ProbeParams> {
    let (address, span) = t.required_str("address", errors)?;
    match address.rsplit_once(':').map(|(h, p)| (h, p.parse::<u16>())) {
        Some((h, Ok(p))) if !h.is_empty() && p > 0 => Some(ProbeParams::Tcp { address }),
        _ => {
            errors.push(t.src.at(
                &span,
                "address must be HOST:PORT, such as \"127.0.0.1:5432\"",
            ));
            None
        }
    }
}

fn exec(t: &mut Table<'_>, errors: &mut Errors) -> Option<ProbeParams> {
    if !t.has("command") {
        errors.push(t.src.at(
            &t.span,
            "[[check]] with probe \"exec\" is missing the key `command` (argv, e.g. [\"/usr/bin/test\", \"-e\", \"/run/x\"])",
        ));
        return None;
    }
    // An error about the command points at the command, not at the table.
    let at = t.span_of("command");
    let argv = strings(t.str_or_list("command", errors));
    match argv.first() {
        Some(prog) if Path::new(prog).is_absolute() => Some(ProbeParams::Exec { command: argv }),
        _ => {
            errors.push(t.src.at(
                &at,
                "exec `command` must start with an absolute path (no shell, no PATH lookup)",
            ));
            None
        }
    }
}
