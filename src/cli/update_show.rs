//! How `vigilctl update …` shows vigild's update documents (`GetUpdate`, `OfferUpdate`) and
//! when a run it follows is over. Pure functions on the JSON vigild sends: like
//! [`super::show`], a missing or odd field shows as blank, never as a panic.

use comfy_table::{presets::NOTHING, ContentArrangement, Table};
use serde_json::Value;

use super::show::s;
use crate::core::update::UpdateState;

/// What the command that follows a run waits for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Goal {
    /// `update apply`: the run is committed.
    Commit,
    /// `update rollback`: the run has rolled back.
    RollBack,
    /// `update usb`: the bundle is off the stick (staged and past), so it may be unplugged.
    Unplug,
}

/// How a followed run ended for its command.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// What the command asked for happened (exit 0).
    Done,
    /// It did not (exit 1).
    NotDone,
}

/// Whether a run in `state` is over for `goal`, and how; None while it goes on (or for a
/// state this vigilctl does not know, which a newer vigild may send).
pub fn verdict(goal: Goal, state: &str) -> Option<Verdict> {
    use UpdateState as S;
    let st = UpdateState::parse(state)?;
    match goal {
        Goal::Commit => match st {
            S::Committed => Some(Verdict::Done),
            S::RolledBack | S::Failed | S::Refused => Some(Verdict::NotDone),
            _ => None,
        },
        Goal::RollBack => match st {
            S::RolledBack => Some(Verdict::Done),
            S::Committed | S::Failed | S::Refused => Some(Verdict::NotDone),
            _ => None,
        },
        Goal::Unplug => match st {
            S::Idle | S::Verified | S::Staged => None,
            S::Refused => Some(Verdict::NotDone),
            _ => Some(Verdict::Done),
        },
    }
}

/// The run `id` in a `GetUpdate` document: its `run`, else the one in its history.
pub fn find_run<'a>(doc: &'a Value, id: &str) -> Option<&'a Value> {
    let is = |r: &&Value| s(r, "id") == id;
    doc.get("run")
        .filter(|r| r.is_object())
        .filter(is)
        .or_else(|| {
            doc.get("history")
                .and_then(Value::as_array)
                .and_then(|h| h.iter().find(is))
        })
}

/// A run's progress within its state, 0 to 1 (0 when missing or odd).
pub fn fraction(run: &Value) -> f64 {
    run.get("fraction")
        .and_then(Value::as_f64)
        .filter(|f| f.is_finite())
        .map_or(0.0, |f| f.clamp(0.0, 1.0))
}

/// `arasul 1.4.0`, or the bundle's path when vigild sent no name.
fn what(run: &Value) -> String {
    match (s(run, "name"), s(run, "version")) {
        ("", "") => s(run, "bundle").to_string(),
        (n, v) => format!("{n} {v}").trim().to_string(),
    }
}

fn previous(run: &Value) -> Option<&str> {
    run.get("previous")
        .and_then(Value::as_str)
        .filter(|p| !p.is_empty())
}

/// One line for a run: `run 3 (apply): arasul 1.4.0 over 1.3.0 — gating`, `run 4
/// (rollback): arasul 1.3.0, back from 1.4.0 — rolled-back`. A run's `version` is the release
/// it puts in place (for a rollback, the one it returns to) and `previous` the one it
/// replaces.
pub fn run_line(run: &Value) -> String {
    let kind = match s(run, "kind") {
        "" => String::new(),
        k => format!(" ({k})"),
    };
    let over = match (s(run, "kind"), previous(run)) {
        ("rollback", Some(p)) => format!(", back from {p}"),
        (_, Some(p)) => format!(" over {p}"),
        _ => String::new(),
    };
    format!(
        "run {}{kind}: {}{over} — {}",
        s(run, "id"),
        what(run),
        s(run, "state")
    )
}

/// What a followed run came to, in one line: `run 3: committed: arasul 1.4.0 is installed
/// (was 1.3.0)`, `run 3: rolled-back to 1.3.0: gate: ollama is crit`; for a rollback run,
/// `run 4: rolled-back to 1.3.0 (from 1.4.0)`.
pub fn outcome_text(run: &Value) -> String {
    let id = s(run, "id");
    let state = s(run, "state");
    let detail = s(run, "detail");
    let head = match (UpdateState::parse(state), s(run, "kind")) {
        (Some(UpdateState::Committed), _) => format!(
            "run {id}: committed: {} is installed{}",
            what(run),
            previous(run).map_or_else(String::new, |p| format!(" (was {p})"))
        ),
        (Some(UpdateState::RolledBack), "rollback") => format!(
            "run {id}: rolled-back to {}{}",
            s(run, "version"),
            previous(run).map_or_else(String::new, |p| format!(" (from {p})"))
        ),
        (Some(UpdateState::RolledBack), _) => format!(
            "run {id}: rolled-back{}",
            previous(run).map_or_else(
                || " (no release before it)".to_string(),
                |p| format!(" to {p}")
            )
        ),
        _ => format!("run {id}: {state}: {}", what(run)),
    };
    if detail.is_empty() {
        head
    } else {
        format!("{head}: {detail}")
    }
}

/// A table without borders that wraps to the terminal.
fn table(header: &[&str]) -> Table {
    let mut t = Table::new();
    t.load_style(NOTHING)
        .set_content_arrangement(ContentArrangement::Dynamic)
        .set_header(header);
    t
}

fn events(run: &Value) -> &[Value] {
    run.get("events")
        .and_then(Value::as_array)
        .map_or(&[], Vec::as_slice)
}

/// The text of `vigilctl update status`: the state, the active or last run with its
/// events, and a bundle a stick offered.
pub fn status_text(doc: &Value) -> String {
    let state = match s(doc, "state") {
        "" => "unknown",
        st => st,
    };
    let mut out = format!("update: {state}\n");
    match doc.get("run").filter(|r| r.is_object()) {
        None => out.push_str("no update run yet\n"),
        Some(run) => {
            out.push_str(&run_line(run));
            let f = fraction(run);
            if f > 0.0 && verdict(Goal::Commit, s(run, "state")).is_none() {
                out.push_str(&format!(" {:.0}%", f * 100.0));
            }
            out.push('\n');
            out.push_str(&format!("  bundle {}\n", s(run, "bundle")));
            let ended = run
                .get("ended")
                .and_then(Value::as_str)
                .map_or_else(String::new, |e| format!(", ended {e}"));
            out.push_str(&format!("  started {}{ended}\n", s(run, "started")));
            if !s(run, "detail").is_empty() {
                out.push_str(&format!("  {}\n", s(run, "detail")));
            }
            let evs = events(run);
            if !evs.is_empty() {
                let mut t = table(&["AT", "STATE", "WHAT", "DETAIL"]);
                for e in evs {
                    t.add_row([s(e, "at"), s(e, "state"), s(e, "what"), s(e, "detail")]);
                }
                out.push_str(&format!("{t}\n"));
            }
        }
    }
    if let Some(o) = doc.get("offered").filter(|o| o.is_object()) {
        // The stick is unmounted once offered: the path is where the bundle was.
        out.push_str(&format!(
            "offered: {} {} from {} at {}, not applied ([update] usb = \"notify\")\n",
            s(o, "name"),
            s(o, "version"),
            s(o, "bundle"),
            s(o, "at")
        ));
    }
    out.trim_end().to_string()
}

/// The table of `vigilctl update history`; None when there was no run.
pub fn history_table(doc: &Value) -> Option<Table> {
    let runs = doc.get("history")?.as_array()?;
    if runs.is_empty() {
        return None;
    }
    let mut t = table(&[
        "RUN", "KIND", "BUNDLE", "FROM", "STATE", "STARTED", "ENDED", "DETAIL",
    ]);
    for r in runs {
        t.add_row([
            s(r, "id").to_string(),
            s(r, "kind").to_string(),
            what(r),
            previous(r).unwrap_or("-").to_string(),
            s(r, "state").to_string(),
            s(r, "started").to_string(),
            r.get("ended")
                .and_then(Value::as_str)
                .unwrap_or("-")
                .to_string(),
            s(r, "detail").to_string(),
        ]);
    }
    Some(t)
}

/// What vigild did with a stick (`OfferUpdate`), in one line.
pub fn offer_text(answer: &Value, dir: &str) -> String {
    let bundle = answer.get("bundle").and_then(Value::as_str).unwrap_or(dir);
    let version = answer
        .get("version")
        .and_then(Value::as_str)
        .map_or_else(String::new, |v| format!(" {v}"));
    let run = answer
        .get("run")
        .and_then(Value::as_str)
        .map_or_else(String::new, |r| format!(" as run {r}"));
    let detail = match s(answer, "detail") {
        "" => String::new(),
        d => format!(": {d}"),
    };
    match s(answer, "action") {
        "applying" => format!("{bundle}:{version} applying{run}{detail}"),
        "announced" => format!("{bundle}:{version} announced, not applied{detail}"),
        "ignored" => format!("{bundle}:{version} ignored{detail}"),
        "none" => format!("{dir}: no update bundle{detail}"),
        other => format!("{bundle}:{version} {other}{run}{detail}"),
    }
}

/// Where vigild, sandboxed (`PrivateTmp`, `ProtectHome`), cannot see a file the operator
/// can: a hint for a refusal of a bundle there.
pub fn hidden_from_vigild(path: &str) -> Option<String> {
    let dirs = ["/tmp/", "/var/tmp/", "/home/", "/root/", "/run/user/"];
    let dir = dirs.iter().find(|d| path.starts_with(*d))?;
    Some(format!(
        "vigild.service does not see {} (PrivateTmp=, ProtectHome=): put the bundle where user \
         vigil can read it, such as /srv or /var/lib/vigil",
        dir.trim_end_matches('/')
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// A `GetUpdate` document as the D-Bus contract spells it: a run gating, two before it.
    fn doc() -> Value {
        json!({
            "state": "gating",
            "run": {
                "id": "3", "kind": "apply", "bundle": "/srv/arasul-1.4.0.vigil",
                "name": "arasul", "version": "1.4.0", "previous": "1.3.0",
                "state": "gating", "fraction": 0.42,
                "started": "2026-12-01T10:00:00.000Z", "ended": null,
                "detail": "waiting for ollama to be ok for 60s",
                "events": [
                    {"at": "2026-12-01T10:00:00.000Z", "state": "verified", "what": "verified", "detail": "signed by key 5A1B"},
                    {"at": "2026-12-01T10:00:05.000Z", "state": "staged", "what": "staged", "detail": "3 files, 1.2 GiB"},
                    {"at": "2026-12-01T10:00:09.000Z", "state": "gating", "what": "gate", "detail": "ollama, container:*"}
                ]
            },
            "history": [
                {"id": "3", "kind": "apply", "bundle": "/srv/arasul-1.4.0.vigil", "name": "arasul",
                 "version": "1.4.0", "previous": "1.3.0", "state": "gating", "fraction": 0.42,
                 "started": "2026-12-01T10:00:00.000Z", "ended": null, "detail": "", "events": []},
                {"id": "2", "kind": "rollback", "bundle": "/srv/arasul-1.3.0.vigil", "name": "arasul",
                 "version": "1.2.0", "previous": "1.3.0", "state": "rolled-back", "fraction": 1.0,
                 "started": "2026-11-30T09:00:00.000Z", "ended": "2026-11-30T09:02:00.000Z",
                 "detail": "operator asked", "events": []},
                {"id": "1", "kind": "apply", "bundle": "/srv/arasul-1.3.0.vigil", "name": "arasul",
                 "version": "1.3.0", "previous": null, "state": "committed", "fraction": 1.0,
                 "started": "2026-11-29T08:00:00.000Z", "ended": "2026-11-29T08:05:00.000Z",
                 "detail": "", "events": []}
            ],
            "offered": {"bundle": "/run/vigil/usb/sdb1/x.vigil", "name": "arasul",
                        "version": "1.5.0", "at": "2026-12-01T11:00:00.000Z"}
        })
    }

    #[test]
    fn each_goal_ends_where_it_should() {
        use Verdict::*;
        let cases = [
            ("verified", [None, None, None]),
            ("staged", [None, None, None]),
            ("backed-up", [None, None, Some(Done)]),
            ("applying", [None, None, Some(Done)]),
            ("gating", [None, None, Some(Done)]),
            ("rolling-back", [None, None, Some(Done)]),
            ("committed", [Some(Done), Some(NotDone), Some(Done)]),
            ("rolled-back", [Some(NotDone), Some(Done), Some(Done)]),
            ("failed", [Some(NotDone), Some(NotDone), Some(Done)]),
            ("refused", [Some(NotDone), Some(NotDone), Some(NotDone)]),
            ("idle", [None, None, None]),
            ("exploded", [None, None, None]),
            ("", [None, None, None]),
        ];
        for (state, want) in cases {
            for (goal, w) in [Goal::Commit, Goal::RollBack, Goal::Unplug]
                .into_iter()
                .zip(want)
            {
                assert_eq!(verdict(goal, state), w, "{goal:?} in {state:?}");
            }
        }
    }

    #[test]
    fn the_followed_run_is_found_in_run_or_history() {
        let d = doc();
        assert_eq!(find_run(&d, "3").map(|r| s(r, "state")), Some("gating"));
        assert!(
            find_run(&d, "3").unwrap()["events"]
                .as_array()
                .unwrap()
                .len()
                == 3
        );
        assert_eq!(find_run(&d, "2").map(|r| s(r, "kind")), Some("rollback"));
        assert!(find_run(&d, "9").is_none());
        assert!(find_run(&json!({"run": null, "history": null}), "1").is_none());
        assert!(find_run(&json!("nonsense"), "1").is_none());
    }

    #[test]
    fn status_shows_the_run_its_events_and_the_offer() {
        let text = status_text(&doc());
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines[0], "update: gating");
        assert_eq!(
            lines[1],
            "run 3 (apply): arasul 1.4.0 over 1.3.0 — gating 42%"
        );
        assert_eq!(lines[2], "  bundle /srv/arasul-1.4.0.vigil");
        assert_eq!(lines[3], "  started 2026-12-01T10:00:00.000Z");
        assert_eq!(lines[4], "  waiting for ollama to be ok for 60s");
        assert!(
            lines[5].contains("AT") && lines[5].contains("DETAIL"),
            "{text}"
        );
        assert!(
            lines[7].contains("staged") && lines[7].contains("3 files, 1.2 GiB"),
            "{text}"
        );
        assert!(
            lines.last().unwrap().starts_with(
                "offered: arasul 1.5.0 from /run/vigil/usb/sdb1/x.vigil at \
                 2026-12-01T11:00:00.000Z, not applied"
            ),
            "{text}"
        );
    }

    #[test]
    fn status_of_a_box_that_never_updated_and_of_odd_documents() {
        let text =
            status_text(&json!({"state": "idle", "run": null, "history": [], "offered": null}));
        assert_eq!(text, "update: idle\nno update run yet");
        // Nothing panics on what is not the contract.
        for odd in [
            json!(null),
            json!([]),
            json!({"run": 5}),
            json!({"run": {"fraction": "x"}}),
        ] {
            let _ = status_text(&odd);
            assert!(history_table(&odd).is_none());
        }
        let ended = status_text(&json!({"state": "idle", "run": {
            "id": "1", "kind": "apply", "name": "a", "version": "2.0.0", "previous": null,
            "state": "committed", "fraction": 1.0, "started": "s", "ended": "e", "detail": "",
            "bundle": "/b.vigil"}}));
        assert!(
            ended.contains("run 1 (apply): a 2.0.0 — committed\n"),
            "{ended}"
        );
        assert!(ended.contains("started s, ended e"), "{ended}");
    }

    #[test]
    fn history_is_a_table_newest_first() {
        let t = history_table(&doc()).unwrap().to_string();
        let lines: Vec<&str> = t.lines().collect();
        assert!(
            lines[0].contains("RUN") && lines[0].contains("STATE"),
            "{t}"
        );
        assert!(
            lines[1].trim_start().starts_with('3') && lines[1].contains("gating"),
            "{t}"
        );
        assert!(
            lines[2].contains("rollback") && lines[2].contains("rolled-back"),
            "{t}"
        );
        assert!(
            lines[3].contains("committed") && lines[3].contains(" - "),
            "{t}"
        );
        assert!(history_table(&json!({"history": []})).is_none());
    }

    #[test]
    fn outcomes_say_what_the_box_runs_now() {
        let run = |state: &str, previous: Value, detail: &str| {
            json!({"id": "4", "kind": "apply", "name": "arasul", "version": "1.4.0",
                   "previous": previous, "state": state, "detail": detail})
        };
        assert_eq!(
            outcome_text(&run("committed", json!("1.3.0"), "")),
            "run 4: committed: arasul 1.4.0 is installed (was 1.3.0)"
        );
        assert_eq!(
            outcome_text(&run("rolled-back", json!("1.3.0"), "gate: ollama is crit")),
            "run 4: rolled-back to 1.3.0: gate: ollama is crit"
        );
        assert_eq!(
            outcome_text(&run("rolled-back", json!(null), "")),
            "run 4: rolled-back (no release before it)"
        );
        assert_eq!(
            outcome_text(&run("refused", json!(null), "payload/x: sha256 differs")),
            "run 4: refused: arasul 1.4.0: payload/x: sha256 differs"
        );
        let rollback = json!({"id": "5", "kind": "rollback", "name": "arasul",
                              "version": "1.3.0", "previous": "1.4.0", "state": "gating",
                              "detail": "rollback asked by uid 0 over D-Bus"});
        assert_eq!(
            run_line(&rollback),
            "run 5 (rollback): arasul 1.3.0, back from 1.4.0 — gating"
        );
        let mut done = rollback.clone();
        done["state"] = json!("rolled-back");
        assert_eq!(
            outcome_text(&done),
            "run 5: rolled-back to 1.3.0 (from 1.4.0): rollback asked by uid 0 over D-Bus"
        );
    }

    #[test]
    fn fractions_are_clamped_and_odd_ones_are_zero() {
        assert_eq!(fraction(&json!({"fraction": 0.5})), 0.5);
        assert_eq!(fraction(&json!({"fraction": 7})), 1.0);
        assert_eq!(fraction(&json!({"fraction": -1})), 0.0);
        assert_eq!(fraction(&json!({"fraction": "half"})), 0.0);
        assert_eq!(fraction(&json!({})), 0.0);
    }

    #[test]
    fn offers_say_what_vigild_did_with_the_stick() {
        let dir = "/run/vigil/usb/sdb1";
        let answer = |action: &str, run: Value, detail: &str| {
            json!({"action": action, "bundle": format!("{dir}/vigil/arasul-1.4.0.vigil"),
                   "version": "1.4.0", "run": run, "detail": detail})
        };
        assert_eq!(
            offer_text(&answer("applying", json!("4"), ""), dir),
            "/run/vigil/usb/sdb1/vigil/arasul-1.4.0.vigil: 1.4.0 applying as run 4"
        );
        assert_eq!(
            offer_text(
                &answer("announced", json!(null), "[update] usb = \"notify\""),
                dir
            ),
            "/run/vigil/usb/sdb1/vigil/arasul-1.4.0.vigil: 1.4.0 announced, not applied: \
             [update] usb = \"notify\""
        );
        assert_eq!(
            offer_text(
                &json!({"action": "none", "bundle": null, "version": null, "run": null,
                        "detail": "no *.vigil in it or in vigil/"}),
                dir
            ),
            "/run/vigil/usb/sdb1: no update bundle: no *.vigil in it or in vigil/"
        );
        let _ = offer_text(&json!(null), dir);
    }

    #[test]
    fn paths_vigild_cannot_see_get_a_hint() {
        assert!(hidden_from_vigild("/tmp/x.vigil").unwrap().contains("/tmp"));
        assert!(hidden_from_vigild("/home/op/x.vigil")
            .unwrap()
            .contains("/home"));
        assert!(hidden_from_vigild("/srv/x.vigil").is_none());
        assert!(hidden_from_vigild("/tmpfoo/x.vigil").is_none());
    }
}
