//! `vigilctl update apply|status|history|rollback|usb`: asks vigild over D-Bus and follows a
//! run until it is over for the command. `UpdateProgress` signals move the progress (the
//! match rule is in place before the call that starts the run, so no signal is missed);
//! `GetUpdate`, asked every second, is the fallback and the word on how the run ended.

use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use serde_json::Value;
use zbus::Connection;

use super::bus::{ask_within, bad_json, call, connect, manager, within, Failure};
use super::show::s;
use super::update_show::{self as show, Goal, Verdict};
use super::{exit, UpdateCommand};

/// How long `ApplyUpdate`, `Rollback` and `OfferUpdate` may take to answer: vigild checks the
/// manifest and signature of a bundle before it starts a run.
pub const START_CALL_TIMEOUT_SECS: u64 = 60;
/// How often the run is asked for while it goes on.
const POLL: Duration = Duration::from_secs(1);
/// How long vigild may be away (restarted: it finishes an interrupted run on start) before
/// vigilctl stops waiting for it.
const AWAY_LIMIT: Duration = Duration::from_secs(60);
/// Signals newer than this drive the progress; after it the polled state does.
const SIGNAL_FRESH: Duration = Duration::from_secs(2);

/// Runs one of the update commands that talk to vigild; the text to print.
pub async fn run(cmd: UpdateCommand, bus: Option<&str>, json: bool) -> Result<String, Failure> {
    match cmd {
        UpdateCommand::Apply { bundle } => {
            let path = absolute(&bundle)?;
            start_and_follow(bus, json, "ApplyUpdate", Some(path), Goal::Commit).await
        }
        UpdateCommand::Rollback => {
            start_and_follow(bus, json, "Rollback", None, Goal::RollBack).await
        }
        UpdateCommand::Status => {
            let conn = connect(bus).await?;
            let doc = get_update(&conn).await?;
            Ok(if json {
                pretty(&doc)
            } else {
                show::status_text(&doc)
            })
        }
        UpdateCommand::History => {
            let conn = connect(bus).await?;
            let doc = get_update(&conn).await?;
            if json {
                return Ok(pretty(doc.get("history").unwrap_or(&Value::Null)));
            }
            Ok(show::history_table(&doc)
                .map(|t| t.to_string())
                .unwrap_or_else(|| "no update runs".into()))
        }
        UpdateCommand::Usb { dir } => usb(bus, json, &dir).await,
        UpdateCommand::Verify { .. } => Err(Failure {
            code: exit::USAGE,
            message: "update verify works offline, not through vigild".into(),
        }),
    }
}

fn pretty(v: &Value) -> String {
    serde_json::to_string_pretty(v).unwrap_or_default()
}

fn bad(message: String) -> Failure {
    Failure {
        code: exit::BAD,
        message,
    }
}

/// The absolute, resolved path vigild is given (it resolves nothing relative to vigilctl).
fn absolute(p: &Path) -> Result<String, Failure> {
    let abs: PathBuf =
        std::fs::canonicalize(p).map_err(|e| bad(format!("{}: {e}", p.display())))?;
    abs.to_str()
        .map(str::to_string)
        .ok_or_else(|| bad(format!("{}: not a UTF-8 path", abs.display())))
}

async fn get_update(conn: &Connection) -> Result<Value, Failure> {
    let text: String = call(conn, "GetUpdate", &()).await?;
    serde_json::from_str(&text).map_err(bad_json)
}

/// A method vigild answered with an error: it refused (exit 1), unless the error says that
/// nobody is there to ask (exit 3).
fn refused(method: &str, e: zbus::Error, path: Option<&str>) -> Failure {
    use zbus::DBusError;
    let said = match &e {
        zbus::Error::MethodError(name, detail, _) => {
            Some((name.as_str().to_string(), detail.clone()))
        }
        zbus::Error::FDO(f) => Some((f.name().to_string(), f.description().map(str::to_string))),
        _ => None,
    };
    let gone = [
        "org.freedesktop.DBus.Error.ServiceUnknown",
        "org.freedesktop.DBus.Error.NameHasNoOwner",
        "org.freedesktop.DBus.Error.NoReply",
        "org.freedesktop.DBus.Error.Disconnected",
    ];
    match said {
        Some((name, detail)) if !gone.contains(&name.as_str()) => {
            let mut message = format!("{method} refused: {}", detail.unwrap_or(name));
            // vigild could not read it: perhaps it cannot see where it lies.
            let unread = ["cannot read", "No such file", "Permission denied"]
                .iter()
                .any(|w| message.contains(w));
            if let Some(hint) = path.filter(|_| unread).and_then(show::hidden_from_vigild) {
                message.push_str(&format!(" ({hint})"));
            }
            bad(message)
        }
        _ => super::bus::unreachable(format!("vigild did not answer {method}: {e}")),
    }
}

/// Calls `method` (one that starts a run and answers its id), then follows that run.
async fn start_and_follow(
    bus: Option<&str>,
    json: bool,
    method: &str,
    path: Option<String>,
    goal: Goal,
) -> Result<String, Failure> {
    let conn = connect(bus).await?;
    let signals = subscribe(&conn).await?;
    let answer: zbus::Result<String> = match &path {
        Some(p) => ask_within(&conn, method, &(p.as_str(),), START_CALL_TIMEOUT_SECS).await?,
        None => ask_within(&conn, method, &(), START_CALL_TIMEOUT_SECS).await?,
    };
    let id = answer.map_err(|e| refused(method, e, path.as_deref()))?;
    let mut progress = Progress::new(json);
    let run = follow(&conn, signals, &id, goal, &mut progress).await;
    progress.finish();
    let run = run?;
    let state = s(&run, "state").to_string();
    let text = if json {
        pretty(&run)
    } else {
        show::outcome_text(&run)
    };
    match show::verdict(goal, &state) {
        Some(Verdict::Done) => Ok(text),
        _ => {
            if json {
                // The document still goes to stdout; stderr says why the exit is 1.
                println!("{text}");
            }
            Err(bad(show::outcome_text(&run)))
        }
    }
}

/// `vigilctl update usb DIR`: offers the stick to vigild; when vigild applies its bundle,
/// waits until the bundle is staged (copied off the stick), so the stick may be unplugged.
async fn usb(bus: Option<&str>, json: bool, dir: &Path) -> Result<String, Failure> {
    let dir = absolute(dir)?;
    let conn = connect(bus).await?;
    let signals = subscribe(&conn).await?;
    let text: String = ask_within(
        &conn,
        "OfferUpdate",
        &(dir.as_str(),),
        START_CALL_TIMEOUT_SECS,
    )
    .await?
    .map_err(|e| refused("OfferUpdate", e, None))?;
    let answer: Value = serde_json::from_str(&text).map_err(bad_json)?;
    let said = if json {
        pretty(&answer)
    } else {
        show::offer_text(&answer, &dir)
    };
    let run_id = answer.get("run").and_then(Value::as_str);
    let (Some(id), "applying") = (run_id, s(&answer, "action")) else {
        return Ok(said);
    };
    let mut progress = Progress::new(json);
    progress.line(&said);
    let run = follow(&conn, signals, id, Goal::Unplug, &mut progress).await;
    progress.finish();
    let run = run?;
    match show::verdict(Goal::Unplug, s(&run, "state")) {
        Some(Verdict::Done) if json => Ok(said),
        Some(Verdict::Done) => Ok(format!(
            "{}: the bundle is off the stick; it may be removed (vigilctl update status follows \
             the run)",
            show::run_line(&run)
        )),
        _ => {
            if json {
                println!("{said}");
            }
            Err(bad(show::outcome_text(&run)))
        }
    }
}

type Signals = zbus::proxy::SignalStream<'static>;

/// The `UpdateProgress` signals of vigild, subscribed before anything starts a run.
async fn subscribe(conn: &Connection) -> Result<Signals, Failure> {
    let proxy = manager(conn).await?;
    within(proxy.receive_signal("UpdateProgress"))
        .await
        .ok_or_else(|| super::bus::unreachable("the bus did not take a match rule in time"))?
        .map_err(|e| super::bus::unreachable(format!("cannot follow UpdateProgress: {e}")))
}

/// Follows run `id` until it is over for `goal`; its last document from `GetUpdate`.
async fn follow(
    conn: &Connection,
    signals: Signals,
    id: &str,
    goal: Goal,
    progress: &mut Progress,
) -> Result<Value, Failure> {
    let mut signals = Some(signals);
    let mut tick = tokio::time::interval(POLL);
    let mut last_signal: Option<Instant> = None;
    let mut away_since: Option<Instant> = None;
    loop {
        tokio::select! {
            msg = async { signals.as_mut()?.next().await }, if signals.is_some() => {
                let Some(msg) = msg else {
                    signals = None; // the stream is over: polling alone from here
                    continue;
                };
                let Ok((run, state, fraction)) = msg.body().deserialize::<(String, String, f64)>()
                else {
                    continue;
                };
                if run != id {
                    continue;
                }
                last_signal = Some(Instant::now());
                progress.show(&state, fraction);
                if show::verdict(goal, &state).is_some() {
                    // Over: the final document (with its detail) comes from GetUpdate.
                    tick.reset_immediately();
                }
            }
            _ = tick.tick() => {
                let doc = match get_update(conn).await {
                    Ok(doc) => doc,
                    Err(f) if f.code == exit::UNREACHABLE => {
                        let since = *away_since.get_or_insert_with(Instant::now);
                        if since.elapsed() > AWAY_LIMIT {
                            return Err(f);
                        }
                        continue;
                    }
                    Err(f) => return Err(f),
                };
                away_since = None;
                let Some(run) = show::find_run(&doc, id) else {
                    continue;
                };
                let state = s(run, "state");
                let verdict = show::verdict(goal, state);
                let fresh = last_signal.is_some_and(|t| t.elapsed() < SIGNAL_FRESH);
                if !fresh || verdict.is_some() {
                    progress.show(state, show::fraction(run));
                }
                if verdict.is_some() {
                    return Ok(run.clone());
                }
            }
        }
    }
}

/// How a followed run is shown: a bar on a terminal, with a line above it for each state
/// passed; plain lines otherwise; nothing with `--json`.
struct Progress {
    bar: Option<ProgressBar>,
    plain: bool,
    last: Option<String>,
}

impl Progress {
    fn new(json: bool) -> Progress {
        let tty = std::io::stdout().is_terminal();
        let bar = (!json && tty).then(|| {
            let bar = ProgressBar::with_draw_target(Some(100), ProgressDrawTarget::stdout());
            if let Ok(style) =
                ProgressStyle::with_template("{spinner} {msg:13} [{bar:30}] {percent:>3}%")
            {
                bar.set_style(style.progress_chars("=> "));
            }
            bar.set_message("started");
            bar.enable_steady_tick(Duration::from_millis(120));
            bar
        });
        Progress {
            bar,
            plain: !json && !tty,
            last: None,
        }
    }

    /// A line of its own: above the bar, or plain.
    fn line(&self, text: &str) {
        if let Some(bar) = &self.bar {
            bar.println(text);
        } else if self.plain {
            let mut out = std::io::stdout().lock();
            // A reader that went away (`| head`) is no error of ours.
            let _ = writeln!(out, "{text}");
            let _ = out.flush();
        }
    }

    /// The run is in `state`, `fraction` of the way through it.
    fn show(&mut self, state: &str, fraction: f64) {
        if self.last.as_deref() != Some(state) {
            self.last = Some(state.to_string());
            self.line(state);
            if let Some(bar) = &self.bar {
                bar.set_message(state.to_string());
            }
        }
        if let Some(bar) = &self.bar {
            let f = if fraction.is_finite() {
                fraction.clamp(0.0, 1.0)
            } else {
                0.0
            };
            bar.set_position((f * 100.0).round() as u64);
        }
    }

    fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}
