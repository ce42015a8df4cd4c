//! How `vigilctl` shows what vigild sends: tables and lines from the JSON documents of
//! `GetStatus` and `ListIncidents`. Everything here reads the documents defensively: a
//! missing or odd field shows as blank or unknown, never as a panic.

use comfy_table::{presets::NOTHING, ContentArrangement, Table};
use serde_json::Value;

use crate::core::incident::IncidentState;
use crate::core::time::rfc3339_millis;
use crate::daemon::CONFIG_CHECK;
use crate::policy::PolicySet;

/// A string field, or "" when it is missing or not a string.
pub fn s<'a>(v: &'a Value, k: &str) -> &'a str {
    v.get(k).and_then(Value::as_str).unwrap_or("")
}

/// A table without borders that wraps to the terminal.
fn table(header: &[&str]) -> Table {
    let mut t = Table::new();
    t.load_style(NOTHING)
        .set_content_arrangement(ContentArrangement::Dynamic)
        .set_header(header);
    t
}

/// A timestamp field (microseconds since the epoch) as RFC 3339, or `unknown` when it is
/// missing, negative, or past what the store can hold (SQLite keeps an i64; a larger u64 is a
/// negative value read back unsigned, so it is no time at all).
pub fn when(v: &Value, k: &str, unknown: &str) -> String {
    v.get(k)
        .and_then(Value::as_u64)
        .filter(|&t| i64::try_from(t).is_ok())
        .map_or_else(|| unknown.to_string(), rfc3339_millis)
}

/// Whether `vigilctl incidents` lists an incident: every one with `--all`, else only those
/// still going on (open, acting, exhausted). Resolved, closed and interrupted ones are over.
pub fn listed(row: &Value, all: bool) -> bool {
    all || IncidentState::parse(s(row, "state")).is_none_or(|st| st.is_open())
}

fn human_uptime(secs: u64) -> String {
    let d = std::time::Duration::from_secs(secs);
    humantime::format_duration(d).to_string()
}

/// The text of `vigilctl status`.
pub fn status_text(doc: &Value) -> String {
    let mut out = format!(
        "vigild {} — {}\nup {} (since {})\n",
        s(doc, "version"),
        s(doc, "summary"),
        human_uptime(doc.get("uptime").and_then(Value::as_u64).unwrap_or(0)),
        s(doc, "started_at"),
    );
    if let Some(line) = policies_line(doc) {
        out.push_str(&line);
        out.push('\n');
    }
    // `store: ok`, or `store: writes failing since …, 31 records waiting (…)`.
    if let Some(line) = doc.pointer("/store/line").and_then(Value::as_str) {
        out.push_str(line);
        out.push('\n');
    }
    // `heartbeat push (vigil to https://…): ok at …, 0 queued`, one per push configured.
    let pushes = doc.get("push").and_then(Value::as_array);
    for line in pushes
        .into_iter()
        .flatten()
        .filter_map(|p| p.get("line")?.as_str())
    {
        out.push_str(line);
        out.push('\n');
    }
    if let Some(t) = checks_table(doc, true) {
        out.push_str(&format!("{t}\n"));
    }
    out.trim_end().to_string()
}

/// The `policies:` line of `vigilctl status`, when the built-in checks are in force: why. A
/// bad configuration (a policy directory vigild could not read, a symlink loop, a FIFO)
/// makes vigild fall back to them too, and say what was wrong in its `vigil:config` check.
fn policies_line(doc: &Value) -> Option<String> {
    if doc.get("builtin_policies").and_then(Value::as_bool) != Some(true) {
        return None;
    }
    let checks = doc.get("checks").and_then(Value::as_array);
    let config = checks
        .into_iter()
        .flatten()
        .find(|c| s(c, "name") == CONFIG_CHECK && s(c, "status") != "ok");
    Some(match config {
        Some(c) => format!(
            "policies: built-in defaults — {CONFIG_CHECK}: {}",
            s(c, "detail")
        ),
        None => "policies: built-in defaults (no policy file found)".into(),
    })
}

/// The checks of a status document, or only those not ok; None when there are none.
pub fn checks_table(doc: &Value, only_failing: bool) -> Option<Table> {
    let checks = doc.get("checks")?.as_array()?;
    let rows: Vec<&Value> = checks
        .iter()
        .filter(|c| !only_failing || s(c, "status") != "ok")
        .collect();
    if rows.is_empty() {
        return None;
    }
    let mut t = table(&["CHECK", "PROBE", "STATUS", "SINCE", "DETAIL"]);
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

fn actions(r: &Value) -> &[Value] {
    r.get("actions")
        .and_then(Value::as_array)
        .map_or(&[], Vec::as_slice)
}

/// The table of `vigilctl incidents`.
pub fn incidents_table(rows: &[&Value]) -> Table {
    let mut t = table(&["ID", "RULE", "CHECK", "STATE", "OPENED", "ACTIONS"]);
    for r in rows {
        t.add_row([
            r.get("id").map_or_else(String::new, Value::to_string),
            s(r, "rule").to_string(),
            s(r, "check").to_string(),
            s(r, "state").to_string(),
            when(r, "opened", "-"),
            actions(r).len().to_string(),
        ]);
    }
    t
}

/// The text of `vigilctl incident ID`: the incident and every action taken for it.
pub fn incident_text(id: u64, r: &Value) -> String {
    let mut out = format!(
        "incident {id}: rule {} on {} — {}\nopened {}",
        s(r, "rule"),
        s(r, "check"),
        s(r, "state"),
        when(r, "opened", "(unknown time)"),
    );
    if r.get("closed").is_some_and(|c| !c.is_null()) {
        out.push_str(&format!(", closed {}", when(r, "closed", "(unknown time)")));
    }
    for a in actions(r) {
        out.push_str(&format!(
            "\n  {} step {}: {} → {}",
            when(a, "started", "(unknown time)"),
            a["step"].as_u64().unwrap_or(0).saturating_add(1),
            s(a, "action"),
            a.get("result")
                .and_then(Value::as_str)
                .unwrap_or("(no result: interrupted)")
        ));
    }
    out
}

/// The text of `vigilctl maintenance log`: one line a step, oldest first.
pub fn maintenance_log_text(log: &Value) -> String {
    let rows = log.as_array().map_or(&[][..], Vec::as_slice);
    if rows.is_empty() {
        return "no maintenance sessions recorded".into();
    }
    let mut t = table(&["AT", "EVENT", "BY", "TUNNEL", "UNTIL", "REASON / RESULT"]);
    for r in rows {
        let note = match (s(r, "reason"), s(r, "result")) {
            (reason, "") => reason.to_string(),
            ("", result) => result.to_string(),
            (reason, result) => format!("{reason}: {result}"),
        };
        t.add_row([
            when(r, "at", "-"),
            s(r, "event").to_string(),
            s(r, "by").to_string(),
            r.get("tunnel")
                .and_then(Value::as_str)
                .unwrap_or("-")
                .to_string(),
            when(r, "until", "-"),
            note,
        ]);
    }
    t.to_string()
}

/// The table of `vigilctl policy show`.
pub fn policy_table(set: &PolicySet) -> Table {
    let mut t = table(&["CHECK", "PROBE", "EVERY", "WARN", "CRIT", "FROM"]);
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
    t
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// Closed and interrupted incidents are over, like resolved ones: not listed as open.
    #[test]
    fn only_incidents_still_going_on_are_listed() {
        let row = |state: &str| json!({ "id": 1, "state": state });
        for over in ["resolved", "closed", "interrupted"] {
            assert!(!listed(&row(over), false), "{over}");
            assert!(listed(&row(over), true), "{over} with --all");
        }
        for open in ["open", "acting", "exhausted"] {
            assert!(listed(&row(open), false), "{open}");
        }
    }

    /// Negative, wrapped, missing and odd timestamps show as unknown; none panics.
    #[test]
    fn odd_timestamps_show_as_unknown() {
        let r = json!({
            "opened": -5,
            "closed": u64::MAX - 4,
            "actions": [{ "step": u64::MAX, "action": "x", "started": "soon" }],
        });
        let text = incident_text(7, &r);
        assert!(
            text.contains("opened (unknown time), closed (unknown time)"),
            "{text}"
        );
        assert!(
            text.contains("(unknown time) step 18446744073709551615: x"),
            "{text}"
        );
        assert_eq!(when(&json!({}), "opened", "-"), "-");
        assert_eq!(
            when(
                &json!({ "opened": 1_771_322_400_000_000u64 }),
                "opened",
                "-"
            ),
            "2026-02-17T10:00:00.000Z"
        );
        let t = incidents_table(&[&r]).to_string();
        assert!(t.lines().nth(1).is_some_and(|l| l.contains(" - ")), "{t}");
    }

    /// Built-in checks because of a bad configuration say so, not "no policy file found".
    #[test]
    fn builtin_policies_because_of_an_error_say_the_error() {
        let doc = |checks: Value| json!({ "builtin_policies": true, "checks": checks });
        let plain = status_text(&doc(json!([])));
        assert!(plain.contains("(no policy file found)"), "{plain}");
        let bad = doc(json!([{
            "name": CONFIG_CHECK, "status": "crit", "detail": "x.toml:1:1: cannot read policy file"
        }]));
        let text = status_text(&bad);
        assert!(!text.contains("no policy file found"), "{text}");
        assert!(
            text.contains("policies: built-in defaults — vigil:config: x.toml:1:1: cannot read"),
            "{text}"
        );
    }

    /// Each push configured shows its last result and its queue.
    #[test]
    fn status_shows_the_last_push() {
        let doc = json!({
            "summary": "ok · 1 check · 0 incidents",
            "push": [
                { "line": "heartbeat push (vigil to https://m.example.com): ok at 2026-02-17T10:00:00.000Z, 0 queued" },
                { "line": "metrics push (sensor to http://10.0.0.1): failed: HTTP 503 at 2026-02-17T10:00:00.000Z, 4 queued" },
                { "odd": true }
            ]
        });
        let text = status_text(&doc);
        assert!(
            text.contains("\nheartbeat push (vigil to https://m.example.com): ok at"),
            "{text}"
        );
        assert!(
            text.contains("failed: HTTP 503 at 2026-02-17T10:00:00.000Z, 4 queued"),
            "{text}"
        );
    }
}
