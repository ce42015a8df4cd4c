//! The effective set of checks and rules, as `vigilctl policy show` prints it.

use std::path::PathBuf;

use serde::Serialize;

use crate::core::check::CheckSpec;
use crate::core::rule::Rule;

/// The effective set of checks and rules.
#[derive(Debug, Clone, PartialEq, Default, Serialize)]
pub struct PolicySet {
    pub checks: Vec<CheckSpec>,
    /// Rules, in file order.
    #[serde(serialize_with = "ser_rules")]
    pub rules: Vec<Rule>,
    /// The files it was read from, in order.
    pub files: Vec<PathBuf>,
    /// True when no policy file existed and the built-in defaults are in force.
    pub builtin: bool,
}

/// A rule as its policy spells it.
#[derive(Serialize)]
struct RuleDocument<'a> {
    name: &'a str,
    on: &'a str,
    when: &'static str,
    #[serde(rename = "for")]
    hold: String,
    #[serde(rename = "do")]
    ladder: Vec<String>,
    cooldown: String,
    limit: String,
    mode: &'static str,
}

fn ser_rules<S: serde::Serializer>(rules: &[Rule], s: S) -> Result<S::Ok, S::Error> {
    s.collect_seq(rules.iter().map(|r| RuleDocument {
        name: &r.name,
        on: r.on.as_str(),
        when: r.when.as_str(),
        hold: humantime::format_duration(r.hold).to_string(),
        ladder: r.ladder.iter().map(|a| a.to_string()).collect(),
        cooldown: humantime::format_duration(r.cooldown).to_string(),
        limit: r.limit.to_string(),
        mode: r.mode.as_str(),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::action;
    use crate::core::rule::{Limit, Mode, When};
    use std::time::Duration;

    /// `policy show --json` spells `when` as the policy syntax does: `not-ok`, never `notok`.
    #[test]
    fn rules_are_shown_in_policy_spelling() {
        let set = PolicySet {
            rules: vec![Rule {
                name: "r".into(),
                on: "container:*".into(),
                when: When::NotOk,
                hold: Duration::from_secs(30),
                ladder: vec![action::parse("restart {target}").unwrap()],
                cooldown: Duration::from_secs(60),
                limit: Limit::parse("3 per 1h").unwrap(),
                mode: Mode::Observe,
            }],
            ..Default::default()
        };
        let v = serde_json::to_value(&set).unwrap();
        let r = &v["rules"][0];
        assert_eq!(r["when"], "not-ok");
        assert_eq!(r["on"], "container:*");
        assert_eq!(r["for"], "30s");
        assert_eq!(r["do"][0], "restart {target}");
        assert_eq!(r["limit"], "3 per 1h");
        assert_eq!(r["mode"], "observe");
    }
}
