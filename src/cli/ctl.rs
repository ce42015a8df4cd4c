//! `vigilctl`: talks to vigild over D-Bus; `policy` works offline on files.

use std::path::PathBuf;

use comfy_table::{presets::NOTHING, ContentArrangement, Table};
use serde_json::Value;
use zbus::Connection;

use super::{exit, CtlCommand, MaintenanceCommand, PolicyCommand, VigilctlArgs};
use crate::core::incident::IncidentState;
use crate::policy::{self, PolicySet};
use crate::surface::dbus::{BUS_NAME, MANAGER_PATH};

const MANAGER_IFACE: &str = "org.vigil.Vigil1.Manager";

/// A failure with the exit status it maps to.
pub struct Failure {
    pub code: i32,
    pub message: String,
}

fn unreachable(message: impl Into<String>) -> Failure {
    Failure {
        code: exit::UNREACHABLE,
        message: message.into(),
    }
}

async fn has_vigild(conn: &Connection) -> bool {
    match zbus::fdo::DBusProxy::new(conn).await {
        Ok(p) => match BUS_NAME.try_into() {
            Ok(name) => p.name_has_owner(name).await.unwrap_or(false),
            Err(_) => false,
        },
        Err(_) => false,
    }
}

/// Finds vigild: on `--bus`, else the system bus, else the session bus.
pub async fn connect(bus: Option<&str>) -> Result<Connection, Failure> {
    if let Some(addr) = bus {
        let conn = zbus::connection::Builder::address(addr)
            .build()
            .await
            .map_err(|e| {
                unreachable(format!(
                    "vigild is not reachable: cannot connect to {addr}: {e}"
                ))
            })?;
        if has_vigild(&conn).await {
            return Ok(conn);
        }
        return Err(unreachable(format!(
            "vigild is not running: nobody owns {BUS_NAME} on {addr}"
        )));
    }
    for conn in [Connection::system().await, Connection::session().await]
        .into_iter()
        .flatten()
    {
        if has_vigild(&conn).await {
            return Ok(conn);
        }
    }
    Err(unreachable(format!(
        "vigild is not running: nobody owns {BUS_NAME} on the system or session bus (try: systemctl status vigild)"
    )))
}

async fn call_string(conn: &Connection, method: &str) -> Result<String, Failure> {
    let proxy = zbus::Proxy::new(conn, BUS_NAME, MANAGER_PATH, MANAGER_IFACE)
        .await
        .map_err(|e| unreachable(format!("vigild: {e}")))?;
    proxy
        .call::<_, _, String>(method, &())
        .await
        .map_err(|e| unreachable(format!("vigild did not answer {method}: {e}")))
}

async fn incidents(conn: &Connection) -> Result<Value, Failure> {
    let proxy = zbus::Proxy::new(conn, BUS_NAME, MANAGER_PATH, MANAGER_IFACE)
        .await
        .map_err(|e| unreachable(format!("vigild: {e}")))?;
    let text: String = proxy
        .call("ListIncidents", &(0u32,))
        .await
        .map_err(|e| unreachable(format!("vigild did not answer ListIncidents: {e}")))?;
    serde_json::from_str(&text).map_err(|e| Failure {
        code: exit::BAD,
        message: format!("vigild sent bad JSON: {e}"),
    })
}

async fn status_doc(conn: &Connection) -> Result<Value, Failure> {
    let text = call_string(conn, "GetStatus").await?;
    serde_json::from_str(&text).map_err(|e| Failure {
        code: exit::BAD,
        message: format!("vigild sent bad JSON: {e}"),
    })
}

/// Whether `vigilctl incidents` lists an incident: every one with `--all`, else only those
/// still going on (open, acting, exhausted). Resolved, closed and interrupted ones are over.
fn listed(row: &Value, all: bool) -> bool {
    all || IncidentState::parse(s(row, "state")).is_none_or(|st| st.is_open())
}

fn s<'a>(v: &'a Value, k: &str) -> &'a str {
    v.get(k).and_then(Value::as_str).unwrap_or("")
}

fn human_uptime(secs: u64) -> String {
    let d = std::time::Duration::from_secs(secs);
    humantime::format_duration(d).to_string()
}

fn checks_table(doc: &Value, only_failing: bool) -> Option<Table> {
    let checks = doc.get("checks")?.as_array()?;
    let rows: Vec<&Value> = checks
        .iter()
        .filter(|c| !only_failing || s(c, "status") != "ok")
        .collect();
    if rows.is_empty() {
        return None;
    }
    let mut t = Table::new();
    t.load_style(NOTHING)
        .set_content_arrangement(ContentArrangement::Dynamic)
        .set_header(["CHECK", "PROBE", "STATUS", "SINCE", "DETAIL"]);
    for c in rows {
        t.add_row([
            s(c, "name"),
            s(c, "probe"),
            s(c, "status"),
            s(c, "since"),
            s(c, "detail"),
        ]);
    }
    Some(t)
}

fn policy_sources(paths: &[PathBuf], config: Option<&PathBuf>) -> Result<PolicySet, String> {
    // Rules are checked against the settings (clean_allow, hooks) the daemon would use.
    let settings = match config {
        Some(p) => crate::config::Settings::load(p, true),
        None => crate::config::Settings::load(
            std::path::Path::new(crate::config::DEFAULT_CONFIG),
            false,
        ),
    }
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
            let mut out = format!(
                "vigild {} — {}\nup {} (since {})\n",
                s(&doc, "version"),
                s(&doc, "summary"),
                human_uptime(doc.get("uptime").and_then(Value::as_u64).unwrap_or(0)),
                s(&doc, "started_at"),
            );
            if doc.get("builtin_policies").and_then(Value::as_bool) == Some(true) {
                out.push_str("policies: built-in defaults (no policy file found)\n");
            }
            if let Some(t) = checks_table(&doc, true) {
                out.push_str(&format!("{t}\n"));
            }
            Ok(out.trim_end().to_string())
        }
        CtlCommand::Checks => {
            let conn = connect(args.bus.as_deref()).await?;
            let doc = status_doc(&conn).await?;
            if args.json {
                return Ok(serde_json::to_string_pretty(&doc["checks"]).unwrap_or_default());
            }
            Ok(checks_table(&doc, false)
                .map(|t| t.to_string())
                .unwrap_or_else(|| "no checks".into()))
        }
        CtlCommand::Incidents { all } => {
            let conn = connect(args.bus.as_deref()).await?;
            let rows = incidents(&conn).await?;
            let rows: Vec<&Value> = rows
                .as_array()
                .map(|a| a.iter().filter(|r| listed(r, all)).collect())
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
            let mut t = Table::new();
            t.load_style(NOTHING)
                .set_content_arrangement(ContentArrangement::Dynamic)
                .set_header(["ID", "RULE", "CHECK", "STATE", "OPENED", "ACTIONS"]);
            for r in rows {
                let n = r
                    .get("actions")
                    .and_then(Value::as_array)
                    .map_or(0, |a| a.len());
                t.add_row([
                    r["id"].to_string(),
                    s(r, "rule").to_string(),
                    s(r, "check").to_string(),
                    s(r, "state").to_string(),
                    crate::core::time::rfc3339_millis(r["opened"].as_u64().unwrap_or(0)),
                    n.to_string(),
                ]);
            }
            Ok(t.to_string())
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
            let mut out = format!(
                "incident {id}: rule {} on {} — {}\nopened {}",
                s(r, "rule"),
                s(r, "check"),
                s(r, "state"),
                crate::core::time::rfc3339_millis(r["opened"].as_u64().unwrap_or(0))
            );
            if let Some(c) = r["closed"].as_u64() {
                out.push_str(&format!(
                    ", closed {}",
                    crate::core::time::rfc3339_millis(c)
                ));
            }
            for a in r
                .get("actions")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
            {
                out.push_str(&format!(
                    "\n  {} step {}: {} → {}",
                    crate::core::time::rfc3339_millis(a["started"].as_u64().unwrap_or(0)),
                    a["step"].as_u64().unwrap_or(0) + 1,
                    s(a, "action"),
                    a.get("result")
                        .and_then(Value::as_str)
                        .unwrap_or("(no result: interrupted)")
                ));
            }
            Ok(out)
        }
        CtlCommand::Maintenance { command } => {
            let conn = connect(args.bus.as_deref()).await?;
            let proxy = zbus::Proxy::new(&conn, BUS_NAME, MANAGER_PATH, MANAGER_IFACE)
                .await
                .map_err(|e| unreachable(format!("vigild: {e}")))?;
            let set = |on: bool, secs: u64, reason: String| {
                let proxy = proxy.clone();
                async move {
                    proxy
                        .call::<_, _, ()>("SetMaintenance", &(on, secs, reason))
                        .await
                        .map_err(|e| Failure {
                            code: exit::BAD,
                            message: format!("SetMaintenance refused: {e}"),
                        })
                }
            };
            match command {
                MaintenanceCommand::On { duration, reason } => {
                    set(true, duration.as_secs(), reason).await?
                }
                MaintenanceCommand::Off => set(false, 0, String::new()).await?,
                MaintenanceCommand::Status => {}
            }
            let doc = status_doc(&conn).await?;
            if args.json {
                return Ok(serde_json::json!({
                    "maintenance": doc["maintenance"],
                    "until": doc["maintenance_until"],
                    "reason": doc["maintenance_reason"],
                })
                .to_string());
            }
            Ok(if doc["maintenance"].as_bool() == Some(true) {
                format!(
                    "maintenance on until {} ({})",
                    s(&doc, "maintenance_until"),
                    s(&doc, "maintenance_reason")
                )
            } else {
                "maintenance off".into()
            })
        }
        CtlCommand::Version => {
            let mut out = format!("vigilctl {}", crate::VERSION);
            match connect(args.bus.as_deref()).await {
                Ok(conn) => {
                    let proxy =
                        zbus::Proxy::new(&conn, BUS_NAME, MANAGER_PATH, MANAGER_IFACE).await;
                    let v: Option<String> = match proxy {
                        Ok(p) => p.get_property("Version").await.ok(),
                        Err(_) => None,
                    };
                    out.push_str(&format!(
                        "\nvigild {}",
                        v.as_deref().unwrap_or("(version unknown)")
                    ));
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
            Ok(set) => {
                let mut t = Table::new();
                t.load_style(NOTHING)
                    .set_content_arrangement(ContentArrangement::Dynamic)
                    .set_header(["CHECK", "PROBE", "EVERY", "WARN", "CRIT", "FROM"]);
                for c in &set.checks {
                    let conds = |v: &[crate::core::threshold::Condition]| {
                        v.iter()
                            .map(|c| c.text.clone())
                            .collect::<Vec<_>>()
                            .join(" or ")
                    };
                    t.add_row([
                        c.name.clone(),
                        c.probe().to_string(),
                        humantime::format_duration(c.every).to_string(),
                        conds(&c.warn),
                        conds(&c.crit),
                        c.origin.clone(),
                    ]);
                }
                Ok(t.to_string())
            }
            Err(e) => Err(Failure {
                code: exit::BAD,
                message: e,
            }),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Closed and interrupted incidents are over, like resolved ones: not listed as open.
    #[test]
    fn only_incidents_still_going_on_are_listed() {
        let row = |state: &str| serde_json::json!({ "id": 1, "state": state });
        for over in ["resolved", "closed", "interrupted"] {
            assert!(!listed(&row(over), false), "{over}");
            assert!(listed(&row(over), true), "{over} with --all");
        }
        for open in ["open", "acting", "exhausted"] {
            assert!(listed(&row(open), false), "{open}");
        }
    }
}
