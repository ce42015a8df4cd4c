//! `manifest.toml`: parsed into the core's [`Manifest`] with every error at
//! FILE:LINE:COLUMN and never the value it is about; and written back by `bundle create`.

use std::path::Path;
use std::time::Duration;

use semver::{Version, VersionReq};
use serde::{Deserialize, Serialize};
use toml::Spanned;

use crate::core::action::Target;
use crate::core::bundle::{FileEntry, Gate, Manifest, Step};
use crate::core::check::{CONTAINER_PREFIX, UNIT_PREFIX};
use crate::core::rule::Selector;
use crate::policy::diag::{Diagnostic, Source};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Raw {
    bundle: RawBundle,
    #[serde(default)]
    file: Vec<RawFile>,
    #[serde(default)]
    step: Vec<RawStep>,
    gate: Option<RawGate>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawBundle {
    name: Spanned<String>,
    version: Spanned<String>,
    from: Option<Spanned<String>>,
    #[serde(default)]
    hardware: Vec<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFile {
    path: Spanned<String>,
    size: u64,
    sha256: Spanned<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawStep {
    #[serde(rename = "do")]
    kind: Spanned<String>,
    file: Option<Spanned<String>>,
    to: Option<Spanned<String>>,
    target: Option<Spanned<String>>,
    name: Option<Spanned<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawGate {
    checks: Vec<String>,
    window: Spanned<String>,
    timeout: Spanned<String>,
}

/// Parses a manifest's text; `path` names it in errors. With `files_optional`, a manifest
/// without `[[file]]` is fine (`bundle create` lists the payload itself).
pub fn parse(path: &Path, text: &str) -> Result<Manifest, Diagnostic> {
    let src = Source::new(path, text);
    let raw: Raw = toml::from_str(text).map_err(|e| src.toml_error(&e))?;
    let at = |s: &std::ops::Range<usize>, msg: &str| src.at(s, msg);
    let b = raw.bundle;
    let version = Version::parse(b.version.get_ref()).map_err(|_| {
        at(
            &b.version.span(),
            "bundle.version: not a semantic version such as \"1.4.0\"",
        )
    })?;
    let from = match b.from {
        None => None,
        Some(f) => Some(VersionReq::parse(f.get_ref()).map_err(|_| {
            at(
                &f.span(),
                "bundle.from: not a version requirement such as \">=1.2.0\"",
            )
        })?),
    };
    let mut files = Vec::new();
    for f in raw.file {
        let mut sha256 = [0u8; 32];
        hex::decode_to_slice(f.sha256.get_ref(), &mut sha256)
            .map_err(|_| at(&f.sha256.span(), "sha256: not 64 hexadecimal digits"))?;
        files.push(FileEntry {
            path: f.path.into_inner(),
            size: f.size,
            sha256,
        });
    }
    let mut steps = Vec::new();
    for s in raw.step {
        steps.push(step(&src, s)?);
    }
    let gate = match raw.gate {
        None => None,
        Some(g) => Some(Gate {
            checks: g.checks.iter().map(|c| Selector::parse(c)).collect(),
            window: duration(&src, &g.window, "gate.window")?,
            timeout: duration(&src, &g.timeout, "gate.timeout")?,
        }),
    };
    Ok(Manifest {
        name: b.name.into_inner(),
        version,
        from,
        hardware: b.hardware,
        files,
        steps,
        gate,
    })
}

fn duration(src: &Source<'_>, d: &Spanned<String>, what: &str) -> Result<Duration, Diagnostic> {
    humantime::parse_duration(d.get_ref()).map_err(|_| {
        src.at(
            &d.span(),
            format!("{what}: not a duration such as \"60s\" or \"5m\""),
        )
    })
}

fn step(src: &Source<'_>, s: RawStep) -> Result<Step, Diagnostic> {
    let need = |v: Option<Spanned<String>>, key: &str| {
        v.map(Spanned::into_inner).ok_or_else(|| {
            src.at(
                &s.kind.span(),
                format!("a `{}` step needs `{key}`", s.kind.get_ref()),
            )
        })
    };
    let unused = |v: &Option<Spanned<String>>, key: &str| match v {
        Some(v) => Err(src.at(
            &v.span(),
            format!("`{key}` has no meaning in a `{}` step", s.kind.get_ref()),
        )),
        None => Ok(()),
    };
    Ok(match s.kind.get_ref().as_str() {
        "docker-load" => {
            unused(&s.to, "to")?;
            unused(&s.target, "target")?;
            unused(&s.name, "name")?;
            Step::DockerLoad {
                file: need(s.file.clone(), "file")?,
            }
        }
        "install" => {
            unused(&s.target, "target")?;
            unused(&s.name, "name")?;
            Step::Install {
                file: need(s.file.clone(), "file")?,
                to: need(s.to.clone(), "to")?,
            }
        }
        "restart" => {
            unused(&s.file, "file")?;
            unused(&s.to, "to")?;
            unused(&s.name, "name")?;
            let t = s
                .target
                .clone()
                .ok_or_else(|| src.at(&s.kind.span(), "a `restart` step needs `target`"))?;
            let target = if let Some(n) = t.get_ref().strip_prefix(UNIT_PREFIX) {
                Target::Unit(n.to_string())
            } else if let Some(n) = t.get_ref().strip_prefix(CONTAINER_PREFIX) {
                Target::Container(n.to_string())
            } else {
                return Err(src.at(&t.span(), "target: write unit:NAME or container:NAME"));
            };
            Step::Restart { target }
        }
        "hook" => {
            unused(&s.file, "file")?;
            unused(&s.to, "to")?;
            unused(&s.target, "target")?;
            Step::Hook {
                name: need(s.name.clone(), "name")?,
            }
        }
        _ => {
            return Err(src.at(
                &s.kind.span(),
                "do: expected docker-load, install, restart or hook",
            ))
        }
    })
}

#[derive(Serialize)]
struct Out<'a> {
    bundle: OutBundle<'a>,
    file: Vec<OutFile<'a>>,
    step: Vec<OutStep<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    gate: Option<OutGate>,
}

#[derive(Serialize)]
struct OutBundle<'a> {
    name: &'a str,
    version: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    from: Option<String>,
    hardware: &'a [String],
}

#[derive(Serialize)]
struct OutFile<'a> {
    path: &'a str,
    size: u64,
    sha256: String,
}

#[derive(Serialize)]
struct OutStep<'a> {
    #[serde(rename = "do")]
    kind: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    file: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    to: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    target: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    name: Option<&'a str>,
}

#[derive(Serialize)]
struct OutGate {
    checks: Vec<String>,
    window: String,
    timeout: String,
}

/// The manifest as TOML, as `bundle create` writes it (it parses back to the same).
pub fn render(m: &Manifest) -> String {
    let out = Out {
        bundle: OutBundle {
            name: &m.name,
            version: m.version.to_string(),
            from: m.from.as_ref().map(|f| f.to_string()),
            hardware: &m.hardware,
        },
        file: m
            .files
            .iter()
            .map(|f| OutFile {
                path: &f.path,
                size: f.size,
                sha256: hex::encode(f.sha256),
            })
            .collect(),
        step: m
            .steps
            .iter()
            .map(|s| OutStep {
                kind: s.kind(),
                file: s.file(),
                to: match s {
                    Step::Install { to, .. } => Some(to),
                    _ => None,
                },
                target: match s {
                    Step::Restart { target } => Some(target.to_string()),
                    _ => None,
                },
                name: match s {
                    Step::Hook { name } => Some(name),
                    _ => None,
                },
            })
            .collect(),
        gate: m.gate.as_ref().map(|g| OutGate {
            checks: g.checks.iter().map(|c| c.as_str().to_string()).collect(),
            window: humantime::format_duration(g.window).to_string(),
            timeout: humantime::format_duration(g.timeout).to_string(),
        }),
    };
    toml::to_string(&out).expect("a manifest always renders")
}

#[cfg(test)]
mod tests {
    use super::*;

    const DESIGN: &str = r#"
[bundle]
name = "arasul"
version = "1.4.0"
from = ">=1.2.0"
hardware = ["jetson-agx-orin"]

[[file]]
path = "payload/images/ollama.tar"
size = 1234
sha256 = "0000000000000000000000000000000000000000000000000000000000000000"

[[step]]
do = "docker-load"
file = "payload/images/ollama.tar"

[[step]]
do = "restart"
target = "unit:arasul-stack.service"

[gate]
checks = ["ollama", "container:*"]
window = "60s"
timeout = "5m"
"#;

    #[test]
    fn the_design_example_parses_and_renders_back_to_itself() {
        let m = parse(Path::new("manifest.toml"), DESIGN).unwrap();
        assert_eq!(m.version, Version::parse("1.4.0").unwrap());
        assert_eq!(m.files[0].size, 1234);
        assert_eq!(m.steps.len(), 2);
        assert_eq!(m.gate.as_ref().unwrap().timeout, Duration::from_secs(300));
        m.check().unwrap();
        let again = parse(Path::new("manifest.toml"), &render(&m)).unwrap();
        assert_eq!(again, m);
    }

    #[test]
    fn errors_are_located_and_never_show_the_value() {
        let bad = DESIGN.replace("version = \"1.4.0\"", "version = \"s3cret\"");
        let e = parse(Path::new("m.toml"), &bad).unwrap_err();
        assert_eq!((e.line, e.column), (4, 11), "{e}");
        assert!(e.message.contains("semantic version") && !e.message.contains("s3cret"));
        let bad = DESIGN.replace("do = \"restart\"", "do = \"reboot\"");
        let e = parse(Path::new("m.toml"), &bad).unwrap_err();
        assert_eq!(e.line, 18, "{e}");
        let bad = DESIGN.replace("size = 1234", "size = 1234\nmode = 7");
        let e = parse(Path::new("m.toml"), &bad).unwrap_err();
        assert!(e.message.contains("unknown field `mode`"), "{e}");
        let bad = DESIGN.replace(
            "target = \"unit:arasul-stack.service\"",
            "target = \"pod:x\"",
        );
        let e = parse(Path::new("m.toml"), &bad).unwrap_err();
        assert!(e.message.contains("unit:NAME or container:NAME"), "{e}");
    }
}
