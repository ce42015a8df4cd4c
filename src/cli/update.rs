//! `vigilctl update verify` and `vigilctl bundle create`: offline, on files.

use std::path::{Path, PathBuf};

use semver::Version;
use serde::Serialize;

use super::{exit, BundleCommand, UpdateCommand};
use crate::bundle::{self, Check, Discard, Verified, KEYS_DIR_DEFAULT};
use crate::config::Settings;
use crate::core::metric::human_bytes;

/// Where the state lives on the box when vigil.toml does not say.
const STATE_DIR_DEFAULT: &str = "/var/lib/vigil";
/// Where the device tree names the board.
const DEVICE_TREE_MODEL: &str = "/proc/device-tree/model";

/// A failure: exit status and message.
pub type Failed = (i32, String);

fn settings(config: Option<&Path>) -> Result<Settings, Failed> {
    Settings::load_from(config).map_err(|d| (exit::BAD, d.to_string()))
}

/// The version of the current release (`STATE/releases/current` → `releases/VERSION`).
fn installed_version(state: &Path) -> Option<Version> {
    let target = std::fs::read_link(state.join("releases/current")).ok()?;
    Version::parse(target.file_name()?.to_str()?).ok()
}

/// This box's model: `[device] model`, else the device tree's.
fn model(settings: &Settings) -> Option<String> {
    settings.device.model.clone().or_else(|| {
        std::fs::read_to_string(DEVICE_TREE_MODEL)
            .ok()
            .map(|m| m.trim_matches(char::from(0)).trim().to_string())
            .filter(|m| !m.is_empty())
    })
}

#[derive(Serialize)]
struct VerifiedDoc<'a> {
    bundle: String,
    name: &'a str,
    version: String,
    from: Option<String>,
    hardware: &'a [String],
    files: usize,
    total_bytes: u64,
    key_id: &'a str,
    compressed: bool,
}

/// `vigilctl update verify` (the other update commands ask vigild: `update_live`).
pub fn update(cmd: UpdateCommand, json: bool) -> Result<String, Failed> {
    let UpdateCommand::Verify {
        bundle: path,
        keys,
        installed,
        allow_downgrade,
        config,
    } = cmd
    else {
        return Err((exit::USAGE, "only update verify works offline".into()));
    };
    let s = settings(config.as_deref())?;
    let keys_dir = keys
        .or_else(|| s.update.keys_dir.clone())
        .unwrap_or_else(|| PathBuf::from(KEYS_DIR_DEFAULT));
    let keys = bundle::load_keys(&keys_dir).map_err(|e| (exit::BAD, e))?;
    let state = s
        .daemon
        .state_dir
        .clone()
        .unwrap_or_else(|| PathBuf::from(STATE_DIR_DEFAULT));
    let check = Check {
        keys: &keys,
        installed: installed.or_else(|| installed_version(&state)),
        model: model(&s),
        allow_downgrade,
    };
    let v: Verified = bundle::verify_file(&path, &check, &mut Discard).map_err(|r| {
        // Only `update verify` has the flag; vigild never applies a downgrade.
        let hint = if r.what == "bundle.version" {
            "; --allow-downgrade to verify it anyway"
        } else {
            ""
        };
        (exit::BAD, format!("{}: refused: {r}{hint}", path.display()))
    })?;
    let m = &v.manifest;
    let doc = VerifiedDoc {
        bundle: path.display().to_string(),
        name: &m.name,
        version: m.version.to_string(),
        from: m.from.as_ref().map(|f| f.to_string()),
        hardware: &m.hardware,
        files: m.files.len(),
        total_bytes: m.total_size(),
        key_id: &v.key_id,
        compressed: v.compressed,
    };
    if json {
        return Ok(serde_json::to_string_pretty(&doc).unwrap_or_default());
    }
    Ok(format!(
        "{}: verified\nbundle {} {}{}\n{} file(s), {} ({} bytes){}\nsigned by key {}",
        doc.bundle,
        doc.name,
        doc.version,
        doc.from
            .as_ref()
            .map(|f| format!(", updates {f}"))
            .unwrap_or_default(),
        doc.files,
        human_bytes(doc.total_bytes as f64),
        doc.total_bytes,
        if doc.compressed { ", zstd" } else { "" },
        doc.key_id
    ))
}

/// `vigilctl bundle …`
pub fn bundle(cmd: BundleCommand) -> Result<String, Failed> {
    let BundleCommand::Create {
        manifest,
        payload,
        key,
        password_file,
        zstd,
        out,
    } = cmd;
    let password = match password_file {
        Some(p) => Some(
            std::fs::read_to_string(&p)
                .map_err(|e| (exit::BAD, format!("cannot read {}: {e}", p.display())))?
                .trim_end_matches(['\n', '\r'])
                .to_string(),
        ),
        None => None,
    };
    let c = bundle::Create {
        manifest,
        payload,
        key,
        password,
        zstd,
        out,
    };
    let made = bundle::create(&c).map_err(|e| (exit::BAD, e))?;
    Ok(format!(
        "{}: bundle {} {}, {} file(s), {}, signed by key {}",
        made.path.display(),
        made.manifest.name,
        made.manifest.version,
        made.manifest.files.len(),
        human_bytes(made.manifest.total_size() as f64),
        made.key_id
    ))
}
