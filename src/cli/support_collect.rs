//! The parts of a support bundle, each collected on its own: a part that cannot be had is a
//! file that says why, never the end of the bundle. Every text goes through the bundle's one
//! [`Redactor`] before it is kept.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use serde_json::{json, Map, Value};
use zbus::Connection;

use super::bus::{bad_json, call, Failure};
use super::redact::Redactor;
use crate::core::action::{Action, Target};
use crate::core::check::{GpuChoice, HostRoots, ProbeParams};
use crate::policy::PolicySet;

/// The most of vigild's journal a bundle carries (the newest part is kept).
pub const JOURNAL_CAP: usize = 32 << 20;
/// How long journalctl may take.
const JOURNAL_TIMEOUT: Duration = Duration::from_secs(60);
/// How long any other command may take (`df` on a hung NFS mount must not hang the bundle).
const COMMAND_TIMEOUT: Duration = Duration::from_secs(15);
/// The unit properties in `units.txt`.
pub const UNIT_PROPERTIES: &str = "Id,LoadState,ActiveState,SubState,Result,NRestarts,\
    ExecMainCode,ExecMainStatus,ExecMainPID,ActiveEnterTimestamp,InactiveEnterTimestamp,\
    StateChangeTimestamp,UnitFileState,FragmentPath";

/// A part's file: its name in the bundle and its (redacted) bytes.
pub struct Part {
    pub file: String,
    pub data: Vec<u8>,
    /// `ok`, or why it could not be collected (for the summary and the progress line).
    pub result: Result<(), String>,
}

impl Part {
    fn text(file: &str, text: String) -> Part {
        Part {
            file: file.into(),
            data: text.into_bytes(),
            result: Ok(()),
        }
    }

    fn json(file: &str, v: &Value) -> Part {
        Part::text(
            file,
            serde_json::to_string_pretty(v).unwrap_or_default() + "\n",
        )
    }

    /// A JSON part that could not be had: still JSON, saying why.
    fn json_unavailable(file: &str, why: String) -> Part {
        Part {
            file: file.into(),
            data: (serde_json::to_string_pretty(&json!({ "unavailable": why }))
                .unwrap_or_default()
                + "\n")
                .into_bytes(),
            result: Err(why),
        }
    }

    /// A text part that could not be had (what there is of it, and why).
    fn text_failed(file: &str, text: String, why: String) -> Part {
        Part {
            file: file.into(),
            data: text.into_bytes(),
            result: Err(why),
        }
    }
}

/// What a command printed, or why it could not run.
pub struct Ran {
    pub ok: bool,
    pub stdout: String,
    /// The exit status and stderr when it failed, or why it could not start or finish.
    pub why: String,
}

/// Runs `cmd args…` with a time limit.
pub async fn run(cmd: &Path, args: &[String], limit: Duration) -> Ran {
    let shown = std::iter::once(cmd.display().to_string())
        .chain(args.iter().cloned())
        .collect::<Vec<_>>()
        .join(" ");
    let child = tokio::process::Command::new(cmd)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn();
    let child = match child {
        Ok(c) => c,
        Err(e) => {
            return Ran {
                ok: false,
                stdout: String::new(),
                why: format!("{shown}: cannot run: {e}"),
            }
        }
    };
    match tokio::time::timeout(limit, child.wait_with_output()).await {
        Err(_) => Ran {
            ok: false,
            stdout: String::new(),
            why: format!("{shown}: no answer within {} s", limit.as_secs()),
        },
        Ok(Err(e)) => Ran {
            ok: false,
            stdout: String::new(),
            why: format!("{shown}: {e}"),
        },
        Ok(Ok(out)) => {
            let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
            let stderr = String::from_utf8_lossy(&out.stderr).trim().to_string();
            if out.status.success() {
                Ran {
                    ok: true,
                    stdout,
                    why: String::new(),
                }
            } else {
                Ran {
                    ok: false,
                    stdout,
                    why: format!("{shown}: {}: {stderr}", out.status),
                }
            }
        }
    }
}

/// vigild's documents over D-Bus: status, checks, incidents with their actions, updates.
/// With no vigild (`conn` is Err), each says it was unreachable.
pub async fn from_vigild(
    conn: &Result<Connection, Failure>,
    r: &mut Redactor,
    part: &str,
) -> Vec<Part> {
    let conn = match conn {
        Ok(c) => c,
        Err(f) => {
            let why = format!("vigild unreachable: {}", f.message);
            let files: &[&str] = match part {
                "status" => &["status.json", "checks.json"],
                "incidents" => &["incidents.json"],
                _ => &["update.json", "update-history.txt"],
            };
            return files
                .iter()
                .map(|f| {
                    let why = r.text(f, &why);
                    if f.ends_with(".json") {
                        Part::json_unavailable(f, why)
                    } else {
                        Part::text_failed(f, format!("{why}\n"), why.clone())
                    }
                })
                .collect();
        }
    };
    let doc = |method: &'static str, args| async move {
        let text: String = match args {
            Some(limit) => call(conn, method, &(limit,)).await?,
            None => call(conn, method, &()).await?,
        };
        serde_json::from_str::<Value>(&text).map_err(bad_json)
    };
    match part {
        "status" => match doc("GetStatus", None).await {
            Ok(d) => {
                let d = r.json("status.json", &d);
                vec![
                    Part::json("status.json", &d),
                    Part::json("checks.json", &d["checks"]),
                ]
            }
            Err(f) => vec![
                Part::json_unavailable("status.json", r.text("status.json", &f.message)),
                Part::json_unavailable("checks.json", r.text("checks.json", &f.message)),
            ],
        },
        // Every incident vigild stored, each with every action taken for it.
        "incidents" => match doc("ListIncidents", Some(u32::MAX)).await {
            Ok(d) => vec![Part::json("incidents.json", &r.json("incidents.json", &d))],
            Err(f) => vec![Part::json_unavailable(
                "incidents.json",
                r.text("incidents.json", &f.message),
            )],
        },
        _ => match doc("GetUpdate", None).await {
            Ok(d) => {
                let d = r.json("update.json", &d);
                let history = super::update_show::history_table(&d)
                    .map_or_else(|| "no update run yet".to_string(), |t| t.to_string());
                vec![
                    Part::json("update.json", &d),
                    Part::text(
                        "update-history.txt",
                        format!("{}\n\n{history}\n", super::update_show::status_text(&d)),
                    ),
                ]
            }
            Err(f) => vec![
                Part::json_unavailable("update.json", r.text("update.json", &f.message)),
                Part::text_failed(
                    "update-history.txt",
                    r.text("update-history.txt", &f.message) + "\n",
                    f.message.clone(),
                ),
            ],
        },
    }
}

/// The effective policies (`vigilctl policy show`, as text and as JSON), or why not.
pub fn policies(loaded: &Result<PolicySet, String>, r: &mut Redactor) -> Vec<Part> {
    match loaded {
        Ok(set) => {
            let head = if set.builtin {
                "no policy files found: vigild uses its built-in checks\n".to_string()
            } else {
                format!(
                    "files: {}\n",
                    set.files
                        .iter()
                        .map(|f| f.display().to_string())
                        .collect::<Vec<_>>()
                        .join(", ")
                )
            };
            let table = format!("{head}\n{}\n", super::show::policy_table(set));
            let doc = serde_json::to_value(set).unwrap_or(Value::Null);
            vec![
                Part::text("policies.txt", r.text("policies.txt", &table)),
                Part::json("policies.json", &r.json("policies.json", &doc)),
            ]
        }
        Err(e) => {
            let why = r.text(
                "policies.txt",
                &format!("policies could not be loaded: {e}"),
            );
            vec![
                Part::text_failed("policies.txt", format!("{why}\n"), why.clone()),
                Part::json_unavailable("policies.json", why),
            ]
        }
    }
}

/// vigil.toml as it is on disk, redacted.
pub fn settings_file(path: &Path, r: &mut Redactor) -> Part {
    match std::fs::read(path) {
        Ok(bytes) => Part::text(
            "vigil.toml",
            r.text("vigil.toml", &String::from_utf8_lossy(&bytes)),
        ),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Part::text(
            "vigil.toml",
            format!(
                "# {} does not exist: vigild runs on its built-in defaults\n",
                path.display()
            ),
        ),
        Err(e) => {
            let why = format!("cannot read {}: {e}", path.display());
            Part::text_failed("vigil.toml", format!("# {why}\n"), why)
        }
    }
}

/// vigild's journal since `since_epoch` (seconds), newest part kept when it is very long.
pub async fn journal(journalctl: &Path, since_epoch: u64, r: &mut Redactor) -> Part {
    let args: Vec<String> = [
        "-u",
        "vigild.service",
        "-o",
        "short-iso",
        "--no-pager",
        "--since",
    ]
    .iter()
    .map(|s| s.to_string())
    .chain([format!("@{since_epoch}")])
    .collect();
    let ran = run(journalctl, &args, JOURNAL_TIMEOUT).await;
    let mut text = String::new();
    let mut out = ran.stdout;
    if out.len() > JOURNAL_CAP {
        let mut cut = out.len() - JOURNAL_CAP;
        while !out.is_char_boundary(cut) {
            cut += 1;
        }
        let cut = out[cut..].find('\n').map_or(cut, |n| cut + n + 1);
        text.push_str(&format!(
            "# truncated: the oldest {} bytes are left out\n",
            cut
        ));
        out.drain(..cut);
    }
    if !ran.ok {
        text.push_str(&format!("# journalctl failed: {}\n", ran.why));
    }
    text.push_str(&out);
    let text = r.text("journal.txt", &text);
    if ran.ok {
        Part::text("journal.txt", text)
    } else {
        Part::text_failed("journal.txt", text, ran.why)
    }
}

/// The units to show: vigild's, and every unit a policy checks or acts on.
pub fn units_named(loaded: &Result<PolicySet, String>) -> Vec<String> {
    let mut units = vec!["vigild.service".to_string()];
    let mut add = |u: &str| {
        let u = if u.contains('.') {
            u.to_string()
        } else {
            format!("{u}.service")
        };
        if !units.contains(&u) {
            units.push(u);
        }
    };
    if let Ok(set) = loaded {
        for c in &set.checks {
            if let ProbeParams::Systemd { unit } = &c.params {
                add(unit);
            }
        }
        for rule in &set.rules {
            for a in &rule.ladder {
                if let Action::Restart(Target::Unit(u))
                | Action::Start(Target::Unit(u))
                | Action::Stop(Target::Unit(u)) = a
                {
                    add(u);
                }
            }
        }
    }
    units
}

/// `systemctl show` of `units`.
pub async fn units(systemctl: &Path, units: &[String], r: &mut Redactor) -> Part {
    let mut args = vec![
        "show".to_string(),
        "--no-pager".to_string(),
        "-p".to_string(),
        UNIT_PROPERTIES.to_string(),
    ];
    args.extend(units.iter().cloned());
    let ran = run(systemctl, &args, COMMAND_TIMEOUT).await;
    let head = format!("# systemctl show of {}\n", units.join(" "));
    if ran.ok {
        Part::text("units.txt", r.text("units.txt", &(head + &ran.stdout)))
    } else {
        let text = format!("{head}# systemctl failed: {}\n{}", ran.why, ran.stdout);
        Part::text_failed("units.txt", r.text("units.txt", &text), ran.why)
    }
}

/// Summaries of every container (list + inspect): no environment values (each is redacted,
/// its name kept), nothing from the inspect document but what support needs.
pub async fn containers(host: &str, r: &mut Redactor) -> Part {
    const FILE: &str = "containers.json";
    let conn = crate::sys::docker::DockerConn::new(host);
    let docker = match conn.client().await {
        Ok(d) => d,
        Err(why) => return Part::json_unavailable(FILE, r.text(FILE, &why)),
    };
    let opts = bollard::query_parameters::ListContainersOptionsBuilder::default()
        .all(true)
        .build();
    let list = match docker.list_containers(Some(opts)).await {
        Ok(l) => l,
        Err(e) => {
            let why = format!("listing containers: {}", conn.unreachable(&e));
            return Part::json_unavailable(FILE, r.text(FILE, &why));
        }
    };
    let mut out = Vec::new();
    for c in list {
        let Some(id) = c.id.clone() else { continue };
        let listed_name = c
            .names
            .as_ref()
            .and_then(|n| n.first())
            .map(|n| n.trim_start_matches('/').to_string())
            .unwrap_or_else(|| id.clone());
        match docker.inspect_container(&id, None).await {
            Ok(i) => {
                let doc = serde_json::to_value(&i).unwrap_or(Value::Null);
                out.push(container_summary(&doc, r));
            }
            Err(e) => out.push(json!({
                "name": listed_name,
                "unavailable": r.text(FILE, &format!("inspect: {}", crate::sys::docker::error_text(&e))),
            })),
        }
    }
    Part::json(
        FILE,
        &json!({ "engine": host, "api_version": docker.client_version().to_string(), "containers": out }),
    )
}

/// The summary of one container from its inspect document (Docker's field names).
pub fn container_summary(doc: &Value, r: &mut Redactor) -> Value {
    const FILE: &str = "containers.json";
    let g = |p: &str| doc.pointer(p).cloned().unwrap_or(Value::Null);
    let health_log = doc
        .pointer("/State/Health/Log")
        .and_then(Value::as_array)
        .and_then(|l| l.last())
        .map(|l| {
            json!({
                "exit_code": l.get("ExitCode"),
                "output": l.get("Output").and_then(Value::as_str).map(|o| o.chars().take(500).collect::<String>()),
                "end": l.get("End"),
            })
        })
        .unwrap_or(Value::Null);
    let mounts: Vec<Value> = doc
        .get("Mounts")
        .and_then(Value::as_array)
        .map(|ms| {
            ms.iter()
                .map(|m| {
                    json!({
                        "type": m.get("Type"), "source": m.get("Source"),
                        "destination": m.get("Destination"), "rw": m.get("RW"),
                    })
                })
                .collect()
        })
        .unwrap_or_default();
    let mut s = Map::new();
    let name = doc
        .get("Name")
        .and_then(Value::as_str)
        .unwrap_or("")
        .trim_start_matches('/');
    s.insert("name".into(), json!(name));
    s.insert(
        "id".into(),
        json!(doc
            .get("Id")
            .and_then(Value::as_str)
            .map(|i| &i[..i.len().min(12)])),
    );
    s.insert("image".into(), g("/Config/Image"));
    s.insert("image_id".into(), g("/Image"));
    s.insert("created".into(), g("/Created"));
    s.insert("state".into(), g("/State/Status"));
    s.insert("health".into(), g("/State/Health/Status"));
    s.insert("failing_streak".into(), g("/State/Health/FailingStreak"));
    s.insert("last_health_check".into(), health_log);
    s.insert("restart_count".into(), g("/RestartCount"));
    s.insert("restart_policy".into(), g("/HostConfig/RestartPolicy/Name"));
    s.insert("started_at".into(), g("/State/StartedAt"));
    s.insert("finished_at".into(), g("/State/FinishedAt"));
    s.insert("exit_code".into(), g("/State/ExitCode"));
    s.insert("oom_killed".into(), g("/State/OOMKilled"));
    s.insert("error".into(), g("/State/Error"));
    s.insert("memory_limit".into(), g("/HostConfig/Memory"));
    s.insert("entrypoint".into(), g("/Config/Entrypoint"));
    s.insert("cmd".into(), g("/Config/Cmd"));
    s.insert("labels".into(), g("/Config/Labels"));
    s.insert("mounts".into(), Value::Array(mounts));
    let mut s = r.json(FILE, &Value::Object(s));
    // Config.Env is never copied: each value becomes [redacted:N], its name stays.
    let env: Vec<Value> = doc
        .pointer("/Config/Env")
        .and_then(Value::as_array)
        .map(|e| {
            e.iter()
                .filter_map(Value::as_str)
                .map(|e| Value::String(r.env_entry(FILE, e)))
                .collect()
        })
        .unwrap_or_default();
    s["env_redacted"] = json!(env.len());
    s["env"] = Value::Array(env);
    s
}

/// System facts, each its own file under `system/`.
pub async fn system(os_release: &Path, roots: &HostRoots, r: &mut Redactor) -> Vec<Part> {
    let mut parts = Vec::new();
    let file = |name: &str, path: &Path, r: &mut Redactor| match std::fs::read(path) {
        Ok(b) => Part::text(name, r.text(name, &String::from_utf8_lossy(&b))),
        Err(e) => {
            let why = format!("cannot read {}: {e}", path.display());
            Part::text_failed(name, format!("{why}\n"), why)
        }
    };
    parts.push(file("system/os-release", os_release, r));
    parts.push(file("system/meminfo", &roots.proc.join("meminfo"), r));
    for (name, cmd, args) in [
        ("system/uname.txt", "uname", vec!["-a"]),
        ("system/df.txt", "df", vec!["-h"]),
    ] {
        let args: Vec<String> = args.into_iter().map(String::from).collect();
        let ran = run(Path::new(cmd), &args, COMMAND_TIMEOUT).await;
        parts.push(if ran.ok {
            Part::text(name, r.text(name, &ran.stdout))
        } else if name == "system/df.txt" {
            // df can hang or be missing: statvfs of the mounts that matter instead.
            let mut text = format!("# {}\n", ran.why);
            text.push_str(&statvfs_lines(&["/", "/var", "/var/lib", "/tmp"]));
            Part::text_failed(name, r.text(name, &text), ran.why)
        } else {
            let text = format!("# {}\n{}", ran.why, ran.stdout);
            Part::text_failed(name, r.text(name, &text), ran.why)
        });
    }
    let roots = roots.clone();
    let gpu = tokio::task::spawn_blocking(move || gpu_text(&roots))
        .await
        .unwrap_or_else(|e| format!("gpu: {e}\n"));
    parts.push(Part::text("system/gpu.txt", r.text("system/gpu.txt", &gpu)));
    parts
}

fn statvfs_lines(paths: &[&str]) -> String {
    let mut out = String::from("PATH  SIZE  AVAIL  USE%\n");
    for p in paths {
        match nix::sys::statvfs::statvfs(*p) {
            Ok(v) => {
                let frag = v.fragment_size();
                let size = v.blocks() * frag;
                let avail = v.blocks_available() * frag;
                let used = size.saturating_sub(v.blocks_free() * frag);
                let pct = (used * 100).checked_div(size).unwrap_or(0);
                out.push_str(&format!(
                    "{p}  {} MiB  {} MiB  {pct}%\n",
                    size >> 20,
                    avail >> 20
                ));
            }
            Err(e) => out.push_str(&format!("{p}  statvfs: {e}\n")),
        }
    }
    out
}

/// The GPU backends as vigild's `gpu` probe would find them.
fn gpu_text(roots: &HostRoots) -> String {
    use crate::probe::gpu::{jetson, nvml, select, NvmlOpener};
    let mut out = String::new();
    let opener: NvmlOpener = std::sync::Arc::new(nvml::open_live);
    match select(GpuChoice::Auto, 0, roots, &opener) {
        Ok(b) => out.push_str(&format!("backend (auto): {}\n", b.describe())),
        Err(why) => out.push_str(&format!("backend (auto): none: {why}\n")),
    }
    match nvml::open_live(0) {
        Ok(b) => out.push_str(&format!("NVML: present: {}\n", b.describe())),
        Err(why) => out.push_str(&format!("NVML: not usable: {why}\n")),
    }
    match jetson::JetsonBackend::discover(roots) {
        Ok(b) => out.push_str(&format!(
            "Jetson sysfs: present: devfreq {}\n",
            b.devfreq().display()
        )),
        Err(why) => out.push_str(&format!("Jetson sysfs: not found: {why}\n")),
    }
    out
}

/// The settings path in force.
pub fn settings_path(config: Option<&PathBuf>) -> PathBuf {
    config
        .cloned()
        .unwrap_or_else(|| PathBuf::from(crate::config::DEFAULT_CONFIG))
}
