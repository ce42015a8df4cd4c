//! `[[rule]]` tables: what to do when checks fail (see `crate::core::engine`).

use std::collections::BTreeMap;
use std::path::{Component, Path, PathBuf};
use std::time::Duration;

use super::diag::{Diagnostic, Source};
use super::fields::Table;
use crate::core::action::{self, Action, Target};
use crate::core::check::{valid_name, CheckSpec};
use crate::core::probe_kind::ProbeKind;
use crate::core::rule::{Limit, Mode, Rule, Selector, When};

/// Defaults of optional rule keys.
pub const COOLDOWN_DEFAULT_SECS: u64 = 60;
/// `limit` when not given.
pub const LIMIT_DEFAULT: &str = "3 per 1h";

/// What rule validation needs from the daemon settings.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LoadContext {
    /// `[actions] clean_allow`: the only trees `clean` may delete from.
    pub clean_allow: Vec<PathBuf>,
    /// Names of `[hooks.NAME]`.
    pub hooks: Vec<String>,
}

/// A rule with where its references were written, for errors found after all files.
#[derive(Debug, Clone)]
pub(crate) struct ParsedRule {
    pub rule: Rule,
    on_at: Diagnostic,
    unload_at: Vec<(String, Diagnostic)>,
    /// Where the first `{target}` step stands.
    target_at: Option<Diagnostic>,
}

fn clean_allowed(dir: &str, allow: &[PathBuf]) -> bool {
    let p = Path::new(dir);
    p.is_absolute()
        && !p
            .components()
            .any(|c| matches!(c, Component::ParentDir | Component::CurDir))
        && allow.iter().any(|a| p.starts_with(a))
}

/// Parses one `[[rule]]`.
pub(crate) fn parse_rule(
    t: &mut Table<'_>,
    seen: &mut BTreeMap<String, String>,
    ctx: &LoadContext,
    errors: &mut Vec<Diagnostic>,
) -> Option<ParsedRule> {
    let src: &Source<'_> = t.src;
    let before = errors.len();
    let name = t.required_str("name", errors);
    let on = t.required_str("on", errors);
    let when = match t.str("when", errors) {
        None => Some(When::Crit),
        Some((w, span)) => When::parse(&w).or_else(|| {
            errors.push(src.at(
                &span,
                format!("when must be crit, warn, not-ok or unknown, got {w:?}"),
            ));
            None
        }),
    };
    let hold = t.duration_or_zero("for", errors).unwrap_or(Duration::ZERO);
    let Ladder {
        steps: ladder,
        unload_at,
        target_at,
    } = parse_ladder(t, ctx, errors);
    let cooldown = t
        .duration_or_zero("cooldown", errors)
        .unwrap_or(Duration::from_secs(COOLDOWN_DEFAULT_SECS));
    let limit = match t.str("limit", errors) {
        None => Limit::parse(LIMIT_DEFAULT).ok(),
        Some((l, span)) => Limit::parse(&l)
            .map_err(|e| errors.push(src.at(&span, format!("limit: {e}"))))
            .ok(),
    };
    let mode = match t.str("mode", errors) {
        None => Some(Mode::Enforce),
        Some((m, span)) => Mode::parse(&m).or_else(|| {
            errors.push(src.at(&span, format!("mode must be enforce or observe, got {m:?}")));
            None
        }),
    };
    t.finish(errors);
    let (name, name_span) = name?;
    if !valid_name(&name) {
        errors.push(src.at(
            &name_span,
            format!("invalid rule name {name:?}: use lowercase letters, digits and _ . : -"),
        ));
    } else if let Some(first) = seen.get(&name) {
        errors.push(src.at(
            &name_span,
            format!("duplicate rule name {name:?}: first defined at {first}"),
        ));
    } else {
        let (line, col) = src.line_col(name_span.start);
        seen.insert(name.clone(), format!("{}:{line}:{col}", src.path.display()));
    }
    let (on, on_span) = on?;
    if errors.len() > before {
        return None;
    }
    Some(ParsedRule {
        rule: Rule {
            name,
            on: Selector::parse(&on),
            when: when?,
            hold,
            ladder,
            cooldown,
            limit: limit?,
            mode: mode?,
        },
        on_at: src.at(&on_span, ""),
        unload_at,
        target_at,
    })
}

/// A rule's `do`, with where its references were written.
struct Ladder {
    steps: Vec<Action>,
    unload_at: Vec<(String, Diagnostic)>,
    /// Where the first step with `{target}` stands, if any.
    target_at: Option<Diagnostic>,
}

/// Parses `do`: every step, each error at its step.
fn parse_ladder(t: &mut Table<'_>, ctx: &LoadContext, errors: &mut Vec<Diagnostic>) -> Ladder {
    let src: &Source<'_> = t.src;
    let mut ladder = Vec::new();
    let mut unload_at = Vec::new();
    let mut target_at = None;
    if !t.has("do") {
        errors.push(src.at(&t.span, "[[rule]] is missing the key `do` (the ladder, e.g. do = [\"restart container:ollama\"])"));
    } else {
        let steps = t.str_or_list("do", errors).unwrap_or_default();
        if steps.is_empty() {
            errors.push(src.at(&t.span, "`do` is empty: give at least one action"));
        }
        for (text, span) in steps {
            let at = span.start + 1;
            match action::parse(&text) {
                Ok(a) => {
                    match &a {
                        Action::Clean { dir, .. } if !clean_allowed(dir, &ctx.clean_allow) => {
                            errors.push(src.at(&(at..at), format!(
                                "clean {dir}: not under a directory allowed by [actions] clean_allow in vigil.toml ({})",
                                if ctx.clean_allow.is_empty() { "none allowed".to_string() } else { ctx.clean_allow.iter().map(|p| p.display().to_string()).collect::<Vec<_>>().join(", ") }
                            )));
                        }
                        Action::Hook(h) if !ctx.hooks.contains(h) => {
                            errors.push(src.at(
                                &(at..at),
                                format!("hook {h:?} is not defined in vigil.toml ([hooks.{h}])"),
                            ));
                        }
                        Action::UnloadModels(c) => {
                            unload_at.push((c.clone(), src.at(&(at..at), "")))
                        }
                        _ => {}
                    }
                    if a.wants_target() {
                        target_at.get_or_insert_with(|| src.at(&(at..at), ""));
                    }
                    ladder.push(a);
                }
                Err(e) => errors.push(src.at(&(at..at), e)),
            }
        }
    }
    Ladder {
        steps: ladder,
        unload_at,
        target_at,
    }
}

/// Errors for rules that name checks which do not exist (after all files are read).
pub(crate) fn check_references(
    rules: &[ParsedRule],
    checks: &[CheckSpec],
    errors: &mut Vec<Diagnostic>,
) {
    for r in rules {
        let on = &r.rule.on;
        // Members of `containers` checks are named container:NAME at run time.
        let exists = checks.iter().any(|c| on.matches(&c.name))
            || (on.reaches_containers()
                && checks.iter().any(|c| c.probe() == ProbeKind::Containers));
        if !exists {
            let mut d = r.on_at.clone();
            d.message = format!(
                "rule {:?} is on {:?}, but no check has that name",
                r.rule.name,
                on.as_str()
            );
            errors.push(d);
        }
        if let Some(at) = &r.target_at {
            // `{target}` needs a container or unit behind every check the rule can match.
            let without: Vec<&str> = checks
                .iter()
                .filter(|c| on.matches(&c.name) && Target::of_check(&c.name).is_none())
                .map(|c| c.name.as_str())
                .collect();
            if !without.is_empty() {
                let mut d = at.clone();
                d.message = format!(
                    "{{target}} has no meaning for check {} that rule {:?} matches: only container:NAME and unit:NAME checks name a thing to act on; name it (restart unit:NAME) or put the rule on container:*",
                    without.iter().map(|n| format!("{n:?}")).collect::<Vec<_>>().join(", "),
                    r.rule.name
                );
                errors.push(d);
            }
        }
        for (check, at) in &r.unload_at {
            if !checks
                .iter()
                .any(|c| &c.name == check && c.probe() == ProbeKind::Ollama)
            {
                let mut d = at.clone();
                d.message =
                    format!("unload-models {check}: no check {check:?} with probe \"ollama\"");
                errors.push(d);
            }
        }
    }
}
