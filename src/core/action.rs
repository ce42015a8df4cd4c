//! Recovery actions as written in a rule's ladder (`"restart container:ollama"`).

use std::fmt;
use std::time::Duration;

use crate::core::check::{CONTAINER_PREFIX, PROCESS_PREFIX, UNIT_PREFIX};

/// What kind of thing an action targets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// `unit:NAME`
    Unit(String),
    /// `container:NAME`
    Container(String),
    /// `process:NAME`
    Process(String),
    /// `{target}`: the thing behind the check that matched a glob rule.
    Matched,
}

impl Target {
    /// The thing a check is about, by its name: `container:NAME` is container NAME,
    /// `unit:NAME` is unit NAME; any other check names nothing an action can act on.
    pub fn of_check(check: &str) -> Option<Target> {
        if let Some(n) = check
            .strip_prefix(CONTAINER_PREFIX)
            .filter(|n| !n.is_empty())
        {
            return Some(Target::Container(n.to_string()));
        }
        check
            .strip_prefix(UNIT_PREFIX)
            .filter(|n| !n.is_empty())
            .map(|n| Target::Unit(n.to_string()))
    }
}

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Target::Unit(n) => write!(f, "{UNIT_PREFIX}{n}"),
            Target::Container(n) => write!(f, "{CONTAINER_PREFIX}{n}"),
            Target::Process(n) => write!(f, "{PROCESS_PREFIX}{n}"),
            Target::Matched => f.write_str("{target}"),
        }
    }
}

/// The verbs of a ladder step, as written first in it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Verb {
    Restart,
    Start,
    Stop,
    UnloadModels,
    Prune,
    Clean,
    Vacuum,
    Signal,
    Hook,
    Notify,
    Reboot,
}

impl Verb {
    /// Every verb, in the order errors list them.
    pub const ALL: &'static [Verb] = &[
        Verb::Restart,
        Verb::Start,
        Verb::Stop,
        Verb::UnloadModels,
        Verb::Prune,
        Verb::Clean,
        Verb::Vacuum,
        Verb::Signal,
        Verb::Hook,
        Verb::Notify,
        Verb::Reboot,
    ];

    /// The word in a policy (`unload-models`).
    pub fn as_str(self) -> &'static str {
        match self {
            Verb::Restart => "restart",
            Verb::Start => "start",
            Verb::Stop => "stop",
            Verb::UnloadModels => "unload-models",
            Verb::Prune => "prune",
            Verb::Clean => "clean",
            Verb::Vacuum => "vacuum",
            Verb::Signal => "signal",
            Verb::Hook => "hook",
            Verb::Notify => "notify",
            Verb::Reboot => "reboot",
        }
    }

    /// Parses the word of a policy.
    pub fn parse(s: &str) -> Option<Verb> {
        Verb::ALL.iter().copied().find(|v| v.as_str() == s)
    }
}

impl fmt::Display for Verb {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Signals `signal process:NAME SIG` may send: Linux's standard ones.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Signal {
    Hup,
    Int,
    Quit,
    Ill,
    Trap,
    Abrt,
    Bus,
    Fpe,
    Kill,
    Usr1,
    Segv,
    Usr2,
    Pipe,
    Alrm,
    Term,
    Stkflt,
    Chld,
    Cont,
    Stop,
    Tstp,
    Ttin,
    Ttou,
    Urg,
    Xcpu,
    Xfsz,
    Vtalrm,
    Prof,
    Winch,
    Io,
    Pwr,
    Sys,
}

impl Signal {
    /// Every signal with its name.
    pub const NAMES: &'static [(Signal, &'static str)] = &[
        (Signal::Hup, "SIGHUP"),
        (Signal::Int, "SIGINT"),
        (Signal::Quit, "SIGQUIT"),
        (Signal::Ill, "SIGILL"),
        (Signal::Trap, "SIGTRAP"),
        (Signal::Abrt, "SIGABRT"),
        (Signal::Bus, "SIGBUS"),
        (Signal::Fpe, "SIGFPE"),
        (Signal::Kill, "SIGKILL"),
        (Signal::Usr1, "SIGUSR1"),
        (Signal::Segv, "SIGSEGV"),
        (Signal::Usr2, "SIGUSR2"),
        (Signal::Pipe, "SIGPIPE"),
        (Signal::Alrm, "SIGALRM"),
        (Signal::Term, "SIGTERM"),
        (Signal::Stkflt, "SIGSTKFLT"),
        (Signal::Chld, "SIGCHLD"),
        (Signal::Cont, "SIGCONT"),
        (Signal::Stop, "SIGSTOP"),
        (Signal::Tstp, "SIGTSTP"),
        (Signal::Ttin, "SIGTTIN"),
        (Signal::Ttou, "SIGTTOU"),
        (Signal::Urg, "SIGURG"),
        (Signal::Xcpu, "SIGXCPU"),
        (Signal::Xfsz, "SIGXFSZ"),
        (Signal::Vtalrm, "SIGVTALRM"),
        (Signal::Prof, "SIGPROF"),
        (Signal::Winch, "SIGWINCH"),
        (Signal::Io, "SIGIO"),
        (Signal::Pwr, "SIGPWR"),
        (Signal::Sys, "SIGSYS"),
    ];

    /// The name with its `SIG` prefix (`SIGUSR1`), as kill(1) and nix spell it.
    pub fn as_str(self) -> &'static str {
        Signal::NAMES
            .iter()
            .find(|(s, _)| *s == self)
            .map(|(_, n)| *n)
            .unwrap_or("SIGTERM")
    }

    /// Parses `SIGUSR1` or `USR1`.
    pub fn parse(s: &str) -> Option<Signal> {
        let full = if s.starts_with("SIG") {
            s.to_string()
        } else {
            format!("SIG{s}")
        };
        Signal::NAMES
            .iter()
            .find(|(_, n)| *n == full)
            .map(|(sig, _)| *sig)
    }
}

impl fmt::Display for Signal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One step of a ladder.
#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    Restart(Target),
    Start(Target),
    Stop(Target),
    /// Unload every model of the Ollama behind this check.
    UnloadModels(String),
    PruneDocker,
    Clean {
        dir: String,
        older_than: Duration,
    },
    VacuumJournal(String),
    Signal {
        process: String,
        signal: Signal,
    },
    Hook(String),
    Notify,
    Reboot,
}

impl fmt::Display for Action {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Action::Restart(t) => write!(f, "restart {t}"),
            Action::Start(t) => write!(f, "start {t}"),
            Action::Stop(t) => write!(f, "stop {t}"),
            Action::UnloadModels(c) => write!(f, "unload-models {c}"),
            Action::PruneDocker => f.write_str("prune docker"),
            Action::Clean { dir, older_than } => {
                write!(
                    f,
                    "clean {dir} older-than {}",
                    humantime::format_duration(*older_than)
                )
            }
            Action::VacuumJournal(size) => write!(f, "vacuum journal {size}"),
            Action::Signal { process, signal } => write!(f, "signal process:{process} {signal}"),
            Action::Hook(h) => write!(f, "hook {h}"),
            Action::Notify => f.write_str("notify"),
            Action::Reboot => f.write_str("reboot"),
        }
    }
}

impl Action {
    /// Replaces `{target}` with the thing behind a matched check (`container:ollama` →
    /// container `ollama`). None when the check names nothing an action can act on.
    pub fn resolve(&self, check: &str) -> Option<Action> {
        let fix = |t: &Target| -> Option<Target> {
            match t {
                Target::Matched => Target::of_check(check),
                t => Some(t.clone()),
            }
        };
        Some(match self {
            Action::Restart(t) => Action::Restart(fix(t)?),
            Action::Start(t) => Action::Start(fix(t)?),
            Action::Stop(t) => Action::Stop(fix(t)?),
            a => a.clone(),
        })
    }

    /// Whether it names `{target}`, the thing behind the matched check.
    pub fn wants_target(&self) -> bool {
        matches!(
            self,
            Action::Restart(Target::Matched)
                | Action::Start(Target::Matched)
                | Action::Stop(Target::Matched)
        )
    }

    /// The verb it was written with.
    pub fn verb(&self) -> Verb {
        match self {
            Action::Restart(_) => Verb::Restart,
            Action::Start(_) => Verb::Start,
            Action::Stop(_) => Verb::Stop,
            Action::UnloadModels(_) => Verb::UnloadModels,
            Action::PruneDocker => Verb::Prune,
            Action::Clean { .. } => Verb::Clean,
            Action::VacuumJournal(_) => Verb::Vacuum,
            Action::Signal { .. } => Verb::Signal,
            Action::Hook(_) => Verb::Hook,
            Action::Notify => Verb::Notify,
            Action::Reboot => Verb::Reboot,
        }
    }

    /// Whether this is a reboot (globally limited).
    pub fn is_reboot(&self) -> bool {
        matches!(self, Action::Reboot)
    }
}

/// Parses `VERB TARGET…`; the error says what was expected.
pub fn parse(text: &str) -> Result<Action, String> {
    let words: Vec<&str> = text.split_whitespace().collect();
    let target = |w: Option<&&str>| -> Result<Target, String> {
        let w = w.ok_or("expected a target: unit:NAME, container:NAME or {target}")?;
        if *w == "{target}" {
            return Ok(Target::Matched);
        }
        if let Some(n) = w.strip_prefix(UNIT_PREFIX).filter(|n| !n.is_empty()) {
            return Ok(Target::Unit(n.into()));
        }
        match w.strip_prefix(CONTAINER_PREFIX).filter(|n| !n.is_empty()) {
            Some(n) => Ok(Target::Container(n.into())),
            None => Err(format!(
                "unknown target `{w}`: expected unit:NAME, container:NAME or {{target}}"
            )),
        }
    };
    let arity = |n: usize| -> Result<(), String> {
        if words.len() == n {
            Ok(())
        } else {
            Err(format!("`{}` takes {} word(s) after it", words[0], n - 1))
        }
    };
    let Some(verb) = words.first() else {
        return Err("empty action".into());
    };
    let Some(verb) = Verb::parse(verb) else {
        let all: Vec<&str> = Verb::ALL.iter().map(|v| v.as_str()).collect();
        return Err(format!(
            "unknown action `{verb}`: expected one of {}",
            all.join(", ")
        ));
    };
    Ok(match verb {
        Verb::Restart | Verb::Start | Verb::Stop => {
            arity(2)?;
            let t = target(words.get(1))?;
            match verb {
                Verb::Restart => Action::Restart(t),
                Verb::Start => Action::Start(t),
                _ => Action::Stop(t),
            }
        }
        Verb::UnloadModels => {
            arity(2)?;
            Action::UnloadModels(words[1].into())
        }
        Verb::Prune => {
            if words.get(1) != Some(&"docker") || words.len() != 2 {
                return Err("write `prune docker`".into());
            }
            Action::PruneDocker
        }
        Verb::Clean => {
            if words.len() != 4 || words[2] != "older-than" {
                return Err("write `clean DIR older-than DURATION`".into());
            }
            if !words[1].starts_with('/') {
                return Err(format!("clean: {} is not an absolute directory", words[1]));
            }
            let older_than = humantime::parse_duration(words[3])
                .map_err(|e| format!("clean: {} is not a duration ({e})", words[3]))?;
            Action::Clean {
                dir: words[1].into(),
                older_than,
            }
        }
        Verb::Vacuum => {
            if words.len() != 3 || words[1] != "journal" {
                return Err("write `vacuum journal SIZE` (e.g. 500M)".into());
            }
            if !is_vacuum_size(words[2]) {
                return Err(format!(
                    "vacuum journal: {} is not a size such as 500M or 1.5G (a number above 0 and K, M, G or T)",
                    words[2]
                ));
            }
            Action::VacuumJournal(words[2].into())
        }
        Verb::Signal => {
            arity(3)?;
            let Some(p) = words[1]
                .strip_prefix(PROCESS_PREFIX)
                .filter(|p| !p.is_empty())
            else {
                return Err("write `signal process:NAME SIGNAL`".into());
            };
            let Some(signal) = Signal::parse(words[2]) else {
                return Err(format!(
                    "signal: {} is not a signal name (SIGHUP, SIGUSR1, SIGTERM…)",
                    words[2]
                ));
            };
            Action::Signal {
                process: p.into(),
                signal,
            }
        }
        Verb::Hook => {
            arity(2)?;
            Action::Hook(words[1].into())
        }
        Verb::Notify => {
            arity(1)?;
            Action::Notify
        }
        Verb::Reboot => {
            arity(1)?;
            Action::Reboot
        }
    })
}

/// The sizes `vacuum journal SIZE` accepts: a number above 0 (digits, at most one fraction)
/// with a unit, K, M, G or T, as journalctl reads them. The polkit rules
/// (packaging/polkit/50-vigil.rules) allow `vigil-journal-vacuum@SIZE.service` for exactly
/// this grammar, `^[1-9][0-9]*(\.[0-9]+)?[KMGT]$`; `0` would delete every archived journal.
pub fn is_vacuum_size(s: &str) -> bool {
    let Some(number) = s.strip_suffix(['K', 'M', 'G', 'T']) else {
        return false;
    };
    let (int, frac) = match number.split_once('.') {
        Some((i, f)) => (i, Some(f)),
        None => (number, None),
    };
    int.starts_with(|c: char| ('1'..='9').contains(&c))
        && int.chars().all(|c| c.is_ascii_digit())
        && frac.is_none_or(|f| !f.is_empty() && f.chars().all(|c| c.is_ascii_digit()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vacuum_sizes_are_the_ones_polkit_allows() {
        // The same cases as the pkcheck matrix of tests/system.rs.
        for ok in ["500M", "1G", "1.5G", "64K", "2T", "10M"] {
            assert!(is_vacuum_size(ok), "{ok}");
            assert!(parse(&format!("vacuum journal {ok}")).is_ok(), "{ok}");
        }
        for bad in [
            "0M", "0.5G", "500", "500m", "1GiB", "1.G", ".5G", "1..5G", "x;yM", "", "M",
        ] {
            assert!(!is_vacuum_size(bad), "{bad:?}");
            let err = parse(&format!("vacuum journal {bad}"));
            assert!(err.is_err(), "{bad:?}");
        }
    }

    #[test]
    fn parses_every_verb_of_the_design() {
        for text in [
            "restart container:ollama",
            "restart unit:docker.service",
            "start unit:x.service",
            "stop container:y",
            "restart {target}",
            "unload-models ollama",
            "prune docker",
            "clean /var/log/arasul older-than 7d",
            "vacuum journal 500M",
            "signal process:ollama SIGUSR1",
            "hook db-backup",
            "notify",
            "reboot",
        ] {
            let a = parse(text).unwrap_or_else(|e| panic!("{text}: {e}"));
            assert_eq!(parse(&a.to_string()).unwrap(), a, "{text} round-trips");
        }
    }

    #[test]
    fn errors_say_what_was_expected() {
        assert!(parse("reboot now").unwrap_err().contains("takes 0 word"));
        assert!(parse("restart pod:x")
            .unwrap_err()
            .contains("unknown target"));
        assert!(parse("restart").unwrap_err().contains("takes 1 word"));
        assert!(parse("fix everything")
            .unwrap_err()
            .contains("unknown action `fix`"));
        assert!(parse("clean var older-than 1d")
            .unwrap_err()
            .contains("absolute"));
        assert!(parse("clean /x older-than soon")
            .unwrap_err()
            .contains("not a duration"));
        assert!(parse("").unwrap_err().contains("empty"));
    }

    #[test]
    fn verbs_and_signals_round_trip() {
        for v in Verb::ALL {
            assert_eq!(Verb::parse(v.as_str()), Some(*v));
        }
        assert_eq!(Signal::parse("USR1"), Some(Signal::Usr1));
        assert_eq!(Signal::parse("SIGHUP").unwrap().as_str(), "SIGHUP");
        assert_eq!(Signal::parse("SIGNOPE"), None);
        let e = parse("signal process:x SIGFOO").unwrap_err();
        assert!(e.contains("not a signal name"), "{e}");
        assert_eq!(
            parse("signal process:ollama USR1").unwrap().to_string(),
            "signal process:ollama SIGUSR1"
        );
        assert_eq!(parse("clean /x older-than 1d").unwrap().verb(), Verb::Clean);
    }

    #[test]
    fn target_placeholder_resolves_to_the_matched_thing() {
        let a = parse("restart {target}").unwrap();
        assert_eq!(
            a.resolve("container:ollama"),
            Some(Action::Restart(Target::Container("ollama".into())))
        );
        assert_eq!(a.resolve("root-disk"), None);
        assert_eq!(parse("notify").unwrap().resolve("x"), Some(Action::Notify));
    }
}
