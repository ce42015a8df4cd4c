//! `vigilctl`: talks to vigild over D-Bus; `policy` works offline on files.

use std::path::PathBuf;

use serde_json::Value;
use zbus::Connection;

use super::bus::{
    ask, ask_within, bad_json, call, connect, manager, within, Failure, BUS_CALL_TIMEOUT_SECS,
};
use super::show::{self, s};
use super::{exit, CtlCommand, MaintenanceCommand, PolicyCommand, UpdateCommand, VigilctlArgs};
use super::{update, update_live};
use crate::policy::{self, PolicySet};
/// Every incident vigild has stored, newest first. `ListIncidents(0)` would mean vigild's
/// default of the latest 100; the limit goes to SQLite as it is, so `u32::MAX` is all.
async fn incidents(conn: &Connection) -> Result<Value, Failure> {
    let text: String = call(conn, "ListIncidents", &(u32::MAX,)).await?;
    serde_json::from_str(&text).map_err(bad_json)
}

async fn status_doc(conn: &Connection) -> Result<Value, Failure> {
    let text: String = call(conn, "GetStatus", &()).await?;
    serde_json::from_str(&text).map_err(bad_json)
}

fn policy_sources(paths: &[PathBuf], config: Option<&PathBuf>) -> Result<PolicySet, String> {
    // Rules are checked against the settings (clean_allow, hooks) the daemon would use.
    let settings = crate::config::Settings::load_from(config.map(|p| p.as_path()))
        .map_err(|d| d.to_string())?;
    let ctx = settings.load_context();
    if paths.is_empty() {
        let dirs = [
            PathBuf::from(policy::VENDOR_DIR),
            PathBuf::from(policy::ADMIN_DIR),
        ];
        let roots = settings.host_roots();
        let facts =
            || crate::probe::facts::gather(&roots, std::path::Path::new(policy::DOCKER_SOCKET));
        return policy::load_dirs(&dirs, &ctx, facts).map_err(|d| d.to_string());
    }
    let mut files = Vec::new();
    for p in paths {
        if p.is_dir() {
            files.extend(policy::policy_files(std::slice::from_ref(p)).map_err(|d| d.to_string())?);
        } else {
            files.push(p.clone());
        }
    }
    if files.is_empty() {
        return Err(format!(
            "no policy files (*.toml) in {}",
            paths
                .iter()
                .map(|p| p.display().to_string())
                .collect::<Vec<_>>()
                .join(", ")
        ));
    }
    policy::load_files(&files, &ctx).map_err(|d| d.to_string())
}

/// Runs one vigilctl command; returns the text to print.
pub async fn run(args: VigilctlArgs) -> Result<String, Failure> {
    match args.command {
        CtlCommand::Status => {
            let conn = connect(args.bus.as_deref()).await?;
            let doc = status_doc(&conn).await?;
            if args.json {
                return Ok(serde_json::to_string_pretty(&doc).unwrap_or_default());
            }
            Ok(show::status_text(&doc))
        }
        CtlCommand::Checks => {
            let conn = connect(args.bus.as_deref()).await?;
            let doc = status_doc(&conn).await?;
            if args.json {
                return Ok(serde_json::to_string_pretty(&doc["checks"]).unwrap_or_default());
            }
            Ok(show::checks_table(&doc, false)
                .map(|t| t.to_string())
                .unwrap_or_else(|| "no checks".into()))
        }
        CtlCommand::Incidents { all } => {
            let conn = connect(args.bus.as_deref()).await?;
            let rows = incidents(&conn).await?;
            let rows: Vec<&Value> = rows
                .as_array()
                .map(|a| a.iter().filter(|r| show::listed(r, all)).collect())
                .unwrap_or_default();
            if args.json {
                return Ok(serde_json::to_string_pretty(&rows).unwrap_or_default());
            }
            if rows.is_empty() {
                return Ok(if all {
                    "no incidents".into()
                } else {
                    "no open incidents".into()
                });
            }
            Ok(show::incidents_table(&rows).to_string())
        }
        CtlCommand::Incident { id } => {
            let conn = connect(args.bus.as_deref()).await?;
            let rows = incidents(&conn).await?;
            let Some(r) = rows
                .as_array()
                .and_then(|a| a.iter().find(|r| r["id"].as_u64() == Some(id)))
            else {
                return Err(Failure {
                    code: exit::BAD,
                    message: format!("no incident {id} (see vigilctl incidents --all)"),
                });
            };
            if args.json {
                return Ok(serde_json::to_string_pretty(r).unwrap_or_default());
            }
            Ok(show::incident_text(id, r))
        }
        CtlCommand::Maintenance { command } => {
            let conn = connect(args.bus.as_deref()).await?;
            let refused = |method: &str, e: String| Failure {
                code: exit::BAD,
                message: format!("{method} refused: {e}"),
            };
            let mut said = None;
            match command {
                MaintenanceCommand::On {
                    duration,
                    reason,
                    tunnel: Some(tunnel),
                } => {
                    // The answer waits for the tunnel unit's start job (at most a minute).
                    let line = ask_within::<_, String>(
                        &conn,
                        "StartMaintenance",
                        &(duration.as_secs(), reason, tunnel),
                        90,
                    )
                    .await?
                    .map_err(|e| refused("StartMaintenance", e.to_string()))?;
                    said = Some(line);
                }
                MaintenanceCommand::On {
                    duration, reason, ..
                } => ask::<_, ()>(&conn, "SetMaintenance", &(true, duration.as_secs(), reason))
                    .await?
                    .map_err(|e| refused("SetMaintenance", e.to_string()))?,
                MaintenanceCommand::Off => {
                    ask::<_, ()>(&conn, "SetMaintenance", &(false, 0u64, String::new()))
                        .await?
                        .map_err(|e| refused("SetMaintenance", e.to_string()))?
                }
                MaintenanceCommand::Status => {}
                MaintenanceCommand::Log => {
                    let text = ask::<_, String>(&conn, "GetMaintenanceLog", &())
                        .await?
                        .map_err(|e| refused("GetMaintenanceLog", e.to_string()))?;
                    let log: serde_json::Value =
                        serde_json::from_str(&text).unwrap_or(serde_json::Value::Null);
                    if args.json {
                        return Ok(serde_json::to_string_pretty(&log).unwrap_or_default());
                    }
                    return Ok(show::maintenance_log_text(&log));
                }
            }
            let doc = status_doc(&conn).await?;
            if args.json {
                return Ok(serde_json::json!({
                    "maintenance": doc["maintenance"],
                    "until": doc["maintenance_until"],
                    "reason": doc["maintenance_reason"],
                    "tunnel": doc["maintenance_tunnel"],
                    "by": doc["maintenance_by"],
                })
                .to_string());
            }
            if let Some(line) = said {
                return Ok(line);
            }
            Ok(if doc["maintenance"].as_bool() == Some(true) {
                let tunnel = doc["maintenance_tunnel"]
                    .as_str()
                    .map(|t| format!(", tunnel {t}"))
                    .unwrap_or_default();
                let by = doc["maintenance_by"]
                    .as_str()
                    .map(|b| format!(" by {b}"))
                    .unwrap_or_default();
                format!(
                    "maintenance on until {} ({}){by}{tunnel}",
                    s(&doc, "maintenance_until"),
                    s(&doc, "maintenance_reason")
                )
            } else {
                "maintenance off".into()
            })
        }
        CtlCommand::Update {
            command: command @ UpdateCommand::Verify { .. },
        } => {
            update::update(command, args.json).map_err(|(code, message)| Failure { code, message })
        }
        CtlCommand::Update { command } => {
            update_live::run(command, args.bus.as_deref(), args.json).await
        }
        CtlCommand::Bundle { command } => {
            update::bundle(command).map_err(|(code, message)| Failure { code, message })
        }
        CtlCommand::SupportBundle(sb) => {
            super::support::run(sb, args.bus.as_deref(), policy_sources).await
        }
        CtlCommand::Version => {
            let mut out = format!("vigilctl {}", crate::VERSION);
            match connect(args.bus.as_deref()).await {
                Ok(conn) => {
                    let v = match manager(&conn).await {
                        Ok(p) => match within(p.get_property::<String>("Version")).await {
                            Some(Ok(v)) => v,
                            Some(Err(_)) => "(version unknown)".into(),
                            None => format!(
                                "(version unknown: no reply within {BUS_CALL_TIMEOUT_SECS} s; it may be stopped or stuck)"
                            ),
                        },
                        Err(f) => format!("(version unknown: {})", f.message),
                    };
                    out.push_str(&format!("\nvigild {v}"));
                }
                Err(_) => out.push_str("\nvigild not running"),
            }
            Ok(out)
        }
        CtlCommand::Policy {
            command: PolicyCommand::Check { paths, config },
        } => match policy_sources(&paths, config.as_ref()) {
            Ok(set) if args.json => Ok(
                serde_json::json!({"ok": true, "checks": set.checks.len(), "files": set.files})
                    .to_string(),
            ),
            Ok(set) if set.builtin => {
                Ok("no policy files installed: vigild uses its built-in checks".into())
            }
            Ok(set) => Ok(format!(
                "ok: {} checks in {} file(s)",
                set.checks.len(),
                set.files.len()
            )),
            Err(e) => Err(Failure {
                code: exit::BAD,
                message: e,
            }),
        },
        CtlCommand::Policy {
            command: PolicyCommand::Show { paths, config },
        } => match policy_sources(&paths, config.as_ref()) {
            Ok(set) if args.json => Ok(serde_json::to_string_pretty(&set).unwrap_or_default()),
            Ok(set) => Ok(show::policy_table(&set).to_string()),
            Err(e) => Err(Failure {
                code: exit::BAD,
                message: e,
            }),
        },
    }
}
