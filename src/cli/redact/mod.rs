//! Redaction of support bundles: values that look like secrets become `[redacted:N]`, the
//! same secret the same N throughout one bundle (one [`Redactor`] is shared by every file), so
//! support can tell that two files carry the same token without seeing it. Pure: text and
//! JSON in, text and JSON out, and counts per file for `REDACTED.txt`.
//!
//! What counts as a secret, in any text (settings, logs, command output):
//! - the value of an assignment whose key names a secret: `key = "value"` (TOML),
//!   `"key": "value"` (JSON), `KEY=value` (env, logs), `Header: value`, `--password value`;
//!   a key names a secret when one of its words (split at `_ - .` and camelCase) is token,
//!   password, passwd, secret, key, auth, credential, cookie, session, signature, … — so
//!   `api_key` and `DB_PASSWORD` do, `keyboard` and `KeyringMode` do not;
//! - the token after `Bearer` (anywhere) and after `Basic`/`Token` in an `Authorization` line;
//! - URL credentials (`https://user:pass@host`: the password, or the whole user part when it
//!   has none) and query values whose name is a secret (`?token=…&api_key=…&sig=…`);
//! - the body of a PEM private key block.
//!
//! It errs on the side of redacting: a value wrongly hidden costs a question, a leaked one a
//! rotation.

use std::collections::{BTreeMap, HashMap};

use serde_json::Value;

mod keys;

pub use keys::is_secret_key;
use keys::{benign, MARK};

/// Header-like keys whose value runs to the end of the line (`Cookie: a=b; c=d`).
const WHOLE_LINE_KEYS: &[&str] = &[
    "authorization",
    "proxy-authorization",
    "cookie",
    "set-cookie",
];

fn is_key_char(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.')
}

/// Bytes that may be part of a bearer token (RFC 6750's b64token, plus a few).
fn is_token_char(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~' | b'+' | b'/' | b'=')
}

/// Where an unquoted value ends.
fn ends_value(b: u8) -> bool {
    b.is_ascii_whitespace()
        || matches!(
            b,
            b'&' | b',' | b';' | b'"' | b'\'' | b')' | b'}' | b']' | b'>' | b'<'
        )
}

/// Where a URL ends in running text.
fn ends_url(b: u8) -> bool {
    b.is_ascii_whitespace() || matches!(b, b'"' | b'\'' | b'<' | b'>' | b'`' | b')' | b']' | b'}')
}

/// Shares the numbering of secrets across one bundle and counts what it replaced per file.
#[derive(Debug, Default)]
pub struct Redactor {
    ids: HashMap<String, usize>,
    counts: BTreeMap<String, usize>,
}

impl Redactor {
    pub fn new() -> Redactor {
        Redactor::default()
    }

    /// Lists `file` in the report even when nothing in it was redacted.
    pub fn file(&mut self, file: &str) {
        self.counts.entry(file.to_string()).or_default();
    }

    /// `[redacted:N]` for `value` in `file`: the same value, the same N.
    pub fn secret(&mut self, file: &str, value: &str) -> String {
        let n = match self.ids.get(value) {
            Some(&n) => n,
            None => {
                let n = self.ids.len() + 1;
                self.ids.insert(value.to_string(), n);
                n
            }
        };
        *self.counts.entry(file.to_string()).or_default() += 1;
        format!("{MARK}{n}]")
    }

    /// Values redacted in `file`.
    #[cfg(test)]
    pub fn count(&self, file: &str) -> usize {
        self.counts.get(file).copied().unwrap_or(0)
    }

    /// Values redacted in all files.
    pub fn total(&self) -> usize {
        self.counts.values().sum()
    }

    /// Distinct secrets seen.
    pub fn distinct(&self) -> usize {
        self.ids.len()
    }

    /// One environment entry of a container, `NAME=value`: the value always goes.
    pub fn env_entry(&mut self, file: &str, entry: &str) -> String {
        match entry.split_once('=') {
            Some((name, "")) => format!("{name}="),
            Some((name, value)) => format!("{name}={}", self.secret(file, value)),
            None => entry.to_string(),
        }
    }

    /// Redacts a text: settings, a log, command output.
    pub fn text(&mut self, file: &str, text: &str) -> String {
        let mut out = String::with_capacity(text.len());
        let mut pem: Option<Vec<&str>> = None;
        for line in text.split_inclusive('\n') {
            let bare = line.trim_end_matches(['\n', '\r']);
            if let Some(body) = pem.as_mut() {
                if bare.contains("-----END") {
                    let secret = body.concat();
                    let mark = self.secret(file, secret.trim());
                    out.push_str(&mark);
                    out.push('\n');
                    out.push_str(line);
                    pem = None;
                } else {
                    body.push(bare);
                }
                continue;
            }
            if bare.contains("-----BEGIN") && bare.contains("PRIVATE KEY") {
                pem = Some(Vec::new());
                out.push_str(line);
                continue;
            }
            out.push_str(&self.line(file, bare));
            out.push_str(&line[bare.len()..]);
        }
        if let Some(body) = pem {
            // A block cut off (a truncated log): its body still goes.
            let secret = body.concat();
            if !secret.trim().is_empty() {
                out.push_str(&self.secret(file, secret.trim()));
                out.push('\n');
            }
        }
        out
    }

    /// One line, through each rule in turn.
    fn line(&mut self, file: &str, line: &str) -> String {
        // Each rule only where its sign is (most log lines have none of them).
        let mut l = std::borrow::Cow::Borrowed(line);
        if l.contains("://") {
            l = self.urls(file, &l).into();
        }
        let lower = l.to_ascii_lowercase();
        if ["bearer", "authorization"]
            .iter()
            .any(|w| lower.contains(w))
        {
            l = self.bearer(file, &l).into();
        }
        if l.contains("--") {
            l = self.flags(file, &l).into();
        }
        if l.contains(['=', ':']) {
            l = self.assignments(file, &l).into();
        }
        l.into_owned()
    }

    /// URL credentials and secret query values.
    fn urls(&mut self, file: &str, line: &str) -> String {
        let b = line.as_bytes();
        let mut out = String::with_capacity(line.len());
        let mut copied = 0;
        let mut from = 0;
        while let Some(off) = line[from..].find("://") {
            let sep = from + off;
            // A scheme before it: letters, digits, + - .
            let mut s = sep;
            while s > 0
                && (b[s - 1].is_ascii_alphanumeric() || matches!(b[s - 1], b'+' | b'-' | b'.'))
            {
                s -= 1;
            }
            let start = sep + 3;
            let mut end = start;
            while end < b.len() && !ends_url(b[end]) {
                end += 1;
            }
            from = end.max(start);
            if s == sep || start >= end {
                continue;
            }
            out.push_str(&line[copied..start]);
            copied = start;
            // Authority: up to the first / ? #; credentials before its last @.
            let auth_end = line[start..end]
                .find(['/', '?', '#'])
                .map_or(end, |i| start + i);
            if let Some(at) = line[start..auth_end].rfind('@') {
                let userinfo = &line[start..start + at];
                match userinfo.split_once(':') {
                    Some((user, pass)) if !pass.is_empty() && !pass.starts_with(MARK) => {
                        out.push_str(user);
                        out.push(':');
                        out.push_str(&self.secret(file, pass));
                    }
                    None if !userinfo.is_empty() && !userinfo.starts_with(MARK) => {
                        out.push_str(&self.secret(file, userinfo));
                    }
                    _ => out.push_str(userinfo),
                }
                copied = start + at;
            }
            // Query: name=value pairs up to the fragment.
            if let Some(q) = line[auth_end..end].find('?') {
                let q = auth_end + q + 1;
                let qend = line[q..end].find('#').map_or(end, |i| q + i);
                out.push_str(&line[copied..q]);
                let mut pairs = Vec::new();
                for pair in line[q..qend].split('&') {
                    match pair.split_once('=') {
                        Some((name, value)) if is_secret_key(name) && !benign(value) => {
                            pairs.push(format!("{name}={}", self.secret(file, value)));
                        }
                        _ => pairs.push(pair.to_string()),
                    }
                }
                out.push_str(&pairs.join("&"));
                copied = qend;
            }
        }
        out.push_str(&line[copied..]);
        out
    }

    /// `Bearer TOKEN` anywhere; `Basic …`/`Token …` in a line that names Authorization.
    fn bearer(&mut self, file: &str, line: &str) -> String {
        let lower = line.to_ascii_lowercase();
        let names_auth = lower.contains("authorization");
        let b = line.as_bytes();
        let mut out = String::with_capacity(line.len());
        let mut copied = 0;
        let mut i = 0;
        while i < b.len() {
            let word_start = i == 0 || !b[i - 1].is_ascii_alphanumeric();
            let scheme = ["bearer", "basic", "token", "digest"]
                .into_iter()
                .find(|w| word_start && lower.as_bytes()[i..].starts_with(w.as_bytes()));
            let Some(w) = scheme.filter(|w| *w == "bearer" || names_auth) else {
                i += 1;
                continue;
            };
            let mut j = i + w.len();
            if j >= b.len() || b[j] != b' ' {
                i += 1;
                continue;
            }
            while j < b.len() && b[j] == b' ' {
                j += 1;
            }
            let mut k = j;
            while k < b.len() && is_token_char(b[k]) {
                k += 1;
            }
            if k > j && !line[j..].starts_with(MARK) {
                out.push_str(&line[copied..j]);
                out.push_str(&self.secret(file, &line[j..k]));
                copied = k;
            }
            i = k.max(i + 1);
        }
        out.push_str(&line[copied..]);
        out
    }

    /// `--password VALUE`: a flag naming a secret, its value the next word.
    fn flags(&mut self, file: &str, line: &str) -> String {
        let b = line.as_bytes();
        let mut out = String::with_capacity(line.len());
        let mut copied = 0;
        let mut from = 0;
        while let Some(off) = line[from..].find("--") {
            let f = from + off + 2;
            let mut e = f;
            while e < b.len() && is_key_char(b[e]) {
                e += 1;
            }
            from = e.max(f);
            if e == f || e >= b.len() || b[e] != b' ' || !is_secret_key(&line[f..e]) {
                continue;
            }
            let v = e + 1;
            let mut ve = v;
            while ve < b.len() && !ends_value(b[ve]) {
                ve += 1;
            }
            let value = &line[v..ve];
            if value.is_empty() || value.starts_with('-') || benign(value) {
                continue;
            }
            out.push_str(&line[copied..v]);
            out.push_str(&self.secret(file, value));
            copied = ve;
            from = ve;
        }
        out.push_str(&line[copied..]);
        out
    }

    /// `key = value`, `"key": "value"`, `KEY=value`, `Header: value`.
    fn assignments(&mut self, file: &str, line: &str) -> String {
        let b = line.as_bytes();
        let mut out = String::with_capacity(line.len());
        let mut copied = 0;
        let mut i = 0;
        while i < b.len() {
            if !matches!(b[i], b'=' | b':') || i < copied {
                i += 1;
                continue;
            }
            let sep = i;
            i += 1;
            if b[sep] == b':' && line[sep..].starts_with("://") {
                continue;
            }
            // The key before the separator, maybe quoted, maybe with blanks between.
            let mut k = sep;
            while k > 0 && matches!(b[k - 1], b' ' | b'\t') {
                k -= 1;
            }
            let key = if k > 0 && matches!(b[k - 1], b'"' | b'\'') {
                let q = b[k - 1];
                match line[..k - 1].rfind(q as char) {
                    Some(open) => &line[open + 1..k - 1],
                    None => continue,
                }
            } else {
                let end = k;
                while k > 0 && is_key_char(b[k - 1]) {
                    k -= 1;
                }
                &line[k..end]
            };
            if key.is_empty() || !is_secret_key(key) {
                continue;
            }
            let whole_line =
                b[sep] == b':' && WHOLE_LINE_KEYS.iter().any(|w| key.eq_ignore_ascii_case(w));
            let mut v = sep + 1;
            while v < b.len() && matches!(b[v], b' ' | b'\t') {
                v += 1;
            }
            if v >= b.len() {
                continue;
            }
            // (start, end) of each value to replace.
            let mut spans = Vec::new();
            let mut resume = v;
            match b[v] {
                q @ (b'"' | b'\'') => {
                    if let Some(e) = closing_quote(b, v + 1, q) {
                        spans.push((v + 1, e));
                        resume = e + 1;
                    }
                }
                b'[' => {
                    // A list of strings under a secret's key: each one goes.
                    let mut p = v + 1;
                    while p < b.len() && b[p] != b']' {
                        if matches!(b[p], b'"' | b'\'') {
                            match closing_quote(b, p + 1, b[p]) {
                                Some(e) => {
                                    spans.push((p + 1, e));
                                    p = e + 1;
                                    continue;
                                }
                                None => break,
                            }
                        }
                        p += 1;
                    }
                    resume = p;
                }
                b'{' => {}
                _ => {
                    let e = if whole_line {
                        line.trim_end().len().max(v)
                    } else {
                        let mut e = v;
                        while e < b.len() && !ends_value(b[e]) {
                            e += 1;
                        }
                        e
                    };
                    spans.push((v, e));
                    resume = e;
                }
            }
            for (s, e) in spans {
                let value = &line[s..e];
                if benign(value) || value.contains(MARK) {
                    continue;
                }
                out.push_str(&line[copied..s]);
                out.push_str(&self.secret(file, value));
                copied = e;
            }
            i = resume.max(i);
        }
        out.push_str(&line[copied..]);
        out
    }

    /// Redacts a JSON document: values under a secret's key (and everything below one), flags
    /// naming a secret in arrays (`["--password", "x"]`), and every string as text.
    pub fn json(&mut self, file: &str, v: &Value) -> Value {
        self.walk(file, v, false)
    }

    fn walk(&mut self, file: &str, v: &Value, secret: bool) -> Value {
        match v {
            Value::String(s) if secret && !benign(s) => Value::String(self.secret(file, s)),
            Value::String(s) => Value::String(self.text(file, s)),
            Value::Number(n) if secret => Value::String(self.secret(file, &n.to_string())),
            Value::Array(items) => {
                let mut out = Vec::with_capacity(items.len());
                let mut after_flag = false;
                for item in items {
                    let next = match item {
                        Value::String(s) if after_flag && !s.starts_with('-') && !benign(s) => {
                            Value::String(self.secret(file, s))
                        }
                        _ => self.walk(file, item, secret),
                    };
                    after_flag = item.as_str().is_some_and(|s| {
                        s.strip_prefix("--")
                            .is_some_and(|f| !f.contains('=') && is_secret_key(f))
                    });
                    out.push(next);
                }
                Value::Array(out)
            }
            Value::Object(map) => Value::Object(
                map.iter()
                    .map(|(k, val)| {
                        let s = secret || is_secret_key(k);
                        (k.clone(), self.walk(file, val, s))
                    })
                    .collect(),
            ),
            other => other.clone(),
        }
    }

    /// The text of `REDACTED.txt`: how many values were redacted in which file, never what.
    pub fn report(&self) -> String {
        let mut out = String::from(
            "Values replaced by [redacted:N] in this bundle. N numbers distinct secrets: the\n\
             same secret carries the same N in every file. What they were is not recorded.\n\
             Every environment value of a container is redacted, whatever its name.\n\n",
        );
        let width = self
            .counts
            .keys()
            .map(String::len)
            .max()
            .unwrap_or(4)
            .max(4);
        out.push_str(&format!("{:<width$}  VALUES\n", "FILE"));
        for (f, n) in &self.counts {
            out.push_str(&format!("{f:<width$}  {n}\n"));
        }
        out.push_str(&format!(
            "\n{} values redacted, {} distinct secrets\n",
            self.total(),
            self.distinct()
        ));
        out
    }
}

/// The index of the quote `q` that closes a string starting at `from` (backslash escapes).
fn closing_quote(b: &[u8], from: usize, q: u8) -> Option<usize> {
    let mut i = from;
    while i < b.len() {
        match b[i] {
            b'\\' => i += 2,
            c if c == q => return Some(i),
            _ => i += 1,
        }
    }
    None
}

#[cfg(test)]
mod tests;
