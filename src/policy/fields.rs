//! Reading TOML tables key by key, with spans, collecting every error.
//!
//! A table remembers every key it was asked for; [`Table::finish`] refuses the others. So
//! the code that reads a table is its one list of accepted keys.

use std::cell::RefCell;
use std::ops::Range;
use std::time::Duration;

use toml::de::{DeTable, DeValue};

use super::diag::{Diagnostic, Source};

/// A TOML table being read: remembers which keys were taken so the rest can be refused.
pub(crate) struct Table<'a> {
    pub src: &'a Source<'a>,
    tab: &'a DeTable<'a>,
    pub span: Range<usize>,
    what: &'static str,
    /// The keys asked for, in order: the accepted ones.
    asked: RefCell<Vec<String>>,
}

fn type_name(v: &DeValue<'_>) -> &'static str {
    match v {
        DeValue::String(_) => "a string",
        DeValue::Integer(_) => "an integer",
        DeValue::Float(_) => "a float",
        DeValue::Boolean(_) => "a boolean",
        DeValue::Datetime(_) => "a date-time",
        DeValue::Array(_) => "an array",
        DeValue::Table(_) => "a table",
    }
}

impl<'a> Table<'a> {
    pub fn new(
        src: &'a Source<'a>,
        tab: &'a DeTable<'a>,
        span: Range<usize>,
        what: &'static str,
    ) -> Self {
        Table {
            src,
            tab,
            span,
            what,
            asked: RefCell::new(Vec::new()),
        }
    }

    fn get(&self, key: &str) -> Option<(&'a DeValue<'a>, Range<usize>)> {
        let mut asked = self.asked.borrow_mut();
        if !asked.iter().any(|k| k == key) {
            asked.push(key.to_string());
        }
        drop(asked);
        self.tab
            .iter()
            .find(|(k, _)| k.get_ref().as_ref() == key)
            .map(|(_, v)| (v.get_ref(), v.span()))
    }

    /// Whether the key is there.
    pub fn has(&self, key: &str) -> bool {
        self.get(key).is_some()
    }

    fn int_of(
        &self,
        key: &str,
        v: &DeValue<'_>,
        span: &Range<usize>,
        min: i64,
        max: i64,
        errors: &mut Vec<Diagnostic>,
    ) -> Option<i64> {
        let DeValue::Integer(i) = v else {
            errors.push(self.src.at(
                span,
                format!("`{key}` must be an integer, not {}", type_name(v)),
            ));
            return None;
        };
        match i64::from_str_radix(i.as_str(), i.radix()) {
            Ok(n) if (min..=max).contains(&n) => Some(n),
            _ => {
                errors.push(
                    self.src
                        .at(span, format!("`{key}` must be between {min} and {max}")),
                );
                None
            }
        }
    }

    /// An integer within `min..=max`, if the key is there.
    pub fn integer(
        &mut self,
        key: &str,
        min: i64,
        max: i64,
        errors: &mut Vec<Diagnostic>,
    ) -> Option<i64> {
        let (v, span) = self.get(key)?;
        self.int_of(key, v, &span, min, max, errors)
    }

    /// An integer or a list of integers within `min..=max`.
    pub fn integer_or_list(
        &mut self,
        key: &str,
        min: i64,
        max: i64,
        errors: &mut Vec<Diagnostic>,
    ) -> Option<Vec<i64>> {
        let (v, span) = self.get(key)?;
        match v {
            DeValue::Array(items) => Some(
                items
                    .iter()
                    .filter_map(|item| {
                        self.int_of(key, item.get_ref(), &item.span(), min, max, errors)
                    })
                    .collect(),
            ),
            other => self
                .int_of(key, other, &span, min, max, errors)
                .map(|n| vec![n]),
        }
    }

    /// A string value, if the key is there.
    pub fn str(
        &mut self,
        key: &str,
        errors: &mut Vec<Diagnostic>,
    ) -> Option<(String, Range<usize>)> {
        let (v, span) = self.get(key)?;
        match v {
            DeValue::String(s) => Some((s.to_string(), span)),
            other => {
                errors.push(self.src.at(
                    &span,
                    format!("`{key}` must be a string, not {}", type_name(other)),
                ));
                None
            }
        }
    }

    /// A boolean value, if the key is there.
    pub fn bool(&mut self, key: &str, errors: &mut Vec<Diagnostic>) -> Option<bool> {
        let (v, span) = self.get(key)?;
        match v {
            DeValue::Boolean(b) => Some(*b),
            other => {
                errors.push(self.src.at(
                    &span,
                    format!("`{key}` must be true or false, not {}", type_name(other)),
                ));
                None
            }
        }
    }

    /// A string value that must be there.
    pub fn required_str(
        &mut self,
        key: &str,
        errors: &mut Vec<Diagnostic>,
    ) -> Option<(String, Range<usize>)> {
        if self.get(key).is_none() {
            errors.push(self.src.at(
                &self.span,
                format!("{} is missing the key `{key}`", self.what),
            ));
            return None;
        }
        self.str(key, errors)
    }

    /// A duration such as `"10s"`, `"1m30s"`, `"2h"`; above zero and at most a day.
    pub fn duration(&mut self, key: &str, errors: &mut Vec<Diagnostic>) -> Option<Duration> {
        let (d, span) = self.duration_at(key, errors)?;
        if d.is_zero() {
            errors.push(
                self.src
                    .at(&span, format!("`{key}` must be longer than zero")),
            );
            return None;
        }
        Some(d)
    }

    /// A duration that may be zero (`for = "0s"`), at most a day.
    pub fn duration_or_zero(
        &mut self,
        key: &str,
        errors: &mut Vec<Diagnostic>,
    ) -> Option<Duration> {
        self.duration_at(key, errors).map(|(d, _)| d)
    }

    /// A duration of at most a day, with where it stands.
    fn duration_at(
        &mut self,
        key: &str,
        errors: &mut Vec<Diagnostic>,
    ) -> Option<(Duration, Range<usize>)> {
        let (s, span) = self.str(key, errors)?;
        match humantime::parse_duration(&s) {
            Ok(d) if d <= Duration::from_secs(24 * 3600) => Some((d, span)),
            Ok(_) => {
                errors.push(self.src.at(&span, format!("`{key}` is longer than a day")));
                None
            }
            Err(e) => {
                errors.push(self.src.at(
                    &span,
                    format!("`{key}` is not a duration ({e}); write e.g. \"30s\", \"5m\", \"1h\""),
                ));
                None
            }
        }
    }

    /// A string or a list of strings.
    pub fn str_or_list(
        &mut self,
        key: &str,
        errors: &mut Vec<Diagnostic>,
    ) -> Option<Vec<(String, Range<usize>)>> {
        let (v, span) = self.get(key)?;
        match v {
            DeValue::String(s) => Some(vec![(s.to_string(), span)]),
            DeValue::Array(items) => {
                let mut out = Vec::new();
                for item in items.iter() {
                    match item.get_ref() {
                        DeValue::String(s) => out.push((s.to_string(), item.span())),
                        other => errors.push(self.src.at(
                            &item.span(),
                            format!("`{key}` must list strings, not {}", type_name(other)),
                        )),
                    }
                }
                Some(out)
            }
            other => {
                errors.push(self.src.at(
                    &span,
                    format!(
                        "`{key}` must be a string or a list of strings, not {}",
                        type_name(other)
                    ),
                ));
                None
            }
        }
    }

    /// The tables of `[[key]]`.
    pub fn array_of_tables(
        &mut self,
        key: &str,
        errors: &mut Vec<Diagnostic>,
    ) -> Option<Vec<(&'a DeTable<'a>, Range<usize>)>> {
        let (v, span) = self.get(key)?;
        let DeValue::Array(items) = v else {
            errors.push(self.src.at(
                &span,
                format!("`{key}` must be written as [[{key}]] tables"),
            ));
            return None;
        };
        let mut out = Vec::new();
        for item in items.iter() {
            match item.get_ref() {
                DeValue::Table(t) => out.push((t, item.span())),
                _ => errors.push(self.src.at(
                    &item.span(),
                    format!("`{key}` must be written as [[{key}]] tables"),
                )),
            }
        }
        Some(out)
    }

    /// Where a key's value stands, or the table's own span when the key is absent.
    pub fn span_of(&self, key: &str) -> Range<usize> {
        self.get(key)
            .map(|(_, s)| s)
            .unwrap_or_else(|| self.span.clone())
    }

    /// Refuses every key that was not asked for. Returns whether all keys were.
    pub fn finish(&self, errors: &mut Vec<Diagnostic>) -> bool {
        let allowed = self.asked.borrow();
        let mut clean = true;
        for (k, _) in self.tab.iter() {
            let key: &str = k.get_ref().as_ref();
            if !allowed.iter().any(|a| a == key) {
                clean = false;
                errors.push(self.src.at(
                    &k.span(),
                    format!(
                        "unknown key `{key}` in {}; expected one of: {}",
                        self.what,
                        allowed.join(", ")
                    ),
                ));
            }
        }
        clean
    }
}
