//! Parsing policy texts into a [`PolicySet`]: pure, no file is read here.
//!
//! Every error in every text is collected; a set with any error is refused as a whole.

use std::collections::BTreeMap;
use std::path::PathBuf;

use super::check::parse_check;
use super::diag::{Diagnostic, Diagnostics, Source};
use super::fields::Table;
use super::rules::{check_references, parse_rule, LoadContext, ParsedRule};
use super::set::PolicySet;
use crate::core::check::CheckSpec;

/// Names already defined, with where: checks and rules are each unique across all files.
#[derive(Default)]
struct Seen {
    checks: BTreeMap<String, String>,
    rules: BTreeMap<String, String>,
}

/// Parses the texts of a set of policy files, in order (path, text).
pub fn parse(files: &[(PathBuf, String)], ctx: &LoadContext) -> Result<PolicySet, Diagnostics> {
    parse_with(files, ctx, Vec::new())
}

/// As [`parse`], adding errors found while the files were read.
pub(crate) fn parse_with(
    files: &[(PathBuf, String)],
    ctx: &LoadContext,
    mut errors: Vec<Diagnostic>,
) -> Result<PolicySet, Diagnostics> {
    let mut checks = Vec::new();
    let mut rules = Vec::new();
    let mut seen = Seen::default();
    for (path, text) in files {
        let src = Source::new(path, text);
        parse_file(&src, &mut checks, &mut rules, &mut seen, ctx, &mut errors);
    }
    check_references(&rules, &checks, &mut errors);
    if !errors.is_empty() {
        return Err(Diagnostics(errors));
    }
    Ok(PolicySet {
        checks,
        rules: rules.into_iter().map(|r| r.rule).collect(),
        files: files.iter().map(|(p, _)| p.clone()).collect(),
        builtin: false,
    })
}

fn parse_file(
    src: &Source<'_>,
    checks: &mut Vec<CheckSpec>,
    rules: &mut Vec<ParsedRule>,
    seen: &mut Seen,
    ctx: &LoadContext,
    errors: &mut Vec<Diagnostic>,
) {
    let (root, parse_errors) = toml::de::DeTable::parse_recoverable(src.text);
    if !parse_errors.is_empty() {
        errors.extend(parse_errors.iter().map(|e| src.toml_error(e)));
        return;
    }
    let root_span = root.span();
    let mut top = Table::new(src, root.get_ref(), root_span, "the policy file");
    if let Some(items) = top.array_of_tables("check", errors) {
        for (table, span) in items {
            let mut t = Table::new(src, table, span, "[[check]]");
            if let Some(spec) = parse_check(&mut t, &mut seen.checks, errors) {
                checks.push(spec);
            }
        }
    }
    if let Some(items) = top.array_of_tables("rule", errors) {
        for (table, span) in items {
            let mut t = Table::new(src, table, span, "[[rule]]");
            if let Some(r) = parse_rule(&mut t, &mut seen.rules, ctx, errors) {
                rules.push(r);
            }
        }
    }
    top.finish(errors);
}
