//! Rules: which checks they watch, when they act, how fast and how often.

use std::fmt;
use std::time::Duration;

use crate::core::action::Action;
use crate::core::check::CONTAINER_PREFIX;
use crate::core::glob::{glob_match, is_glob};
use crate::core::health::Status;

/// When a rule's condition holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum When {
    Crit,
    Warn,
    NotOk,
    Unknown,
}

impl When {
    /// Parses `crit | warn | not-ok | unknown`.
    pub fn parse(s: &str) -> Option<When> {
        Some(match s {
            "crit" => When::Crit,
            "warn" => When::Warn,
            "not-ok" => When::NotOk,
            "unknown" => When::Unknown,
            _ => return None,
        })
    }

    /// The policy spelling (`not-ok`, never `notok`).
    pub fn as_str(self) -> &'static str {
        match self {
            When::Crit => "crit",
            When::Warn => "warn",
            When::NotOk => "not-ok",
            When::Unknown => "unknown",
        }
    }

    /// Whether a status meets the condition. `warn` means warn or worse (crit).
    pub fn holds(self, s: Status) -> bool {
        match self {
            When::Crit => s == Status::Crit,
            When::Warn => matches!(s, Status::Warn | Status::Crit),
            When::NotOk => s != Status::Ok,
            When::Unknown => s == Status::Unknown,
        }
    }
}

/// `enforce` acts; `observe` records what it would do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Enforce,
    Observe,
}

impl Mode {
    /// `enforce` or `observe`.
    pub fn as_str(self) -> &'static str {
        match self {
            Mode::Enforce => "enforce",
            Mode::Observe => "observe",
        }
    }

    /// Parses `enforce` or `observe`.
    pub fn parse(s: &str) -> Option<Mode> {
        match s {
            "enforce" => Some(Mode::Enforce),
            "observe" => Some(Mode::Observe),
            _ => None,
        }
    }
}

/// `N per DURATION`
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limit {
    pub count: u32,
    pub window: Duration,
}

impl Limit {
    /// Parses `"4 per 1h"`.
    pub fn parse(s: &str) -> Result<Limit, String> {
        let words: Vec<&str> = s.split_whitespace().collect();
        match words.as_slice() {
            [n, "per", d] => {
                let count: u32 = n
                    .parse()
                    .map_err(|_| format!("`{n}` is not a whole number"))?;
                if count == 0 {
                    return Err("a limit of 0 would never act; use mode = \"observe\"".into());
                }
                let window = humantime::parse_duration(d)
                    .map_err(|e| format!("`{d}` is not a duration ({e})"))?;
                if window.is_zero() {
                    return Err("the window must be longer than zero".into());
                }
                if window > Duration::from_secs(30 * 86400) {
                    return Err("the window can be 30 days at most".into());
                }
                Ok(Limit { count, window })
            }
            _ => Err("expected `N per DURATION` such as \"4 per 1h\"".to_string()),
        }
    }
}

impl fmt::Display for Limit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} per {}",
            self.count,
            humantime::format_duration(self.window)
        )
    }
}

/// What a rule's `on` names: one check, or every check whose name matches a glob.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Selector {
    Check(String),
    Glob(String),
}

impl Selector {
    /// `container:*` is a glob; anything without `*` or `?` names one check.
    pub fn parse(s: &str) -> Selector {
        if is_glob(s) {
            Selector::Glob(s.to_string())
        } else {
            Selector::Check(s.to_string())
        }
    }

    /// As written in the policy.
    pub fn as_str(&self) -> &str {
        match self {
            Selector::Check(s) | Selector::Glob(s) => s,
        }
    }

    /// Whether it selects the check `name`.
    pub fn matches(&self, name: &str) -> bool {
        match self {
            Selector::Check(s) => s == name,
            Selector::Glob(g) => glob_match(g, name),
        }
    }

    /// Whether it can select members of a `containers` group (`container:…`).
    pub fn reaches_containers(&self) -> bool {
        self.as_str().starts_with(CONTAINER_PREFIX)
    }
}

impl From<&str> for Selector {
    fn from(s: &str) -> Selector {
        Selector::parse(s)
    }
}

impl From<String> for Selector {
    fn from(s: String) -> Selector {
        Selector::parse(&s)
    }
}

impl fmt::Display for Selector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A validated rule.
#[derive(Debug, Clone, PartialEq)]
pub struct Rule {
    pub name: String,
    /// A check name or a glob (`container:*`).
    pub on: Selector,
    pub when: When,
    pub hold: Duration,
    pub ladder: Vec<Action>,
    pub cooldown: Duration,
    pub limit: Limit,
    pub mode: Mode,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn when_and_mode_round_trip_in_policy_spelling() {
        for w in ["crit", "warn", "not-ok", "unknown"] {
            assert_eq!(When::parse(w).unwrap().as_str(), w);
        }
        assert_eq!(When::NotOk.as_str(), "not-ok");
        for m in ["enforce", "observe"] {
            assert_eq!(Mode::parse(m).unwrap().as_str(), m);
        }
        assert_eq!(Limit::parse("4 per 1h").unwrap().to_string(), "4 per 1h");
    }

    #[test]
    fn selectors() {
        let g = Selector::parse("container:*");
        assert!(matches!(g, Selector::Glob(_)));
        assert!(g.matches("container:ollama") && !g.matches("ollama"));
        assert!(g.reaches_containers());
        let c = Selector::parse("ollama");
        assert!(c.matches("ollama") && !c.matches("ollama2"));
        assert_eq!(c.to_string(), "ollama");
    }
}
