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

/// Words that make a key name a secret's.
const SECRET_WORDS: &[&str] = &[
    "token",
    "tokens",
    "password",
    "passwords",
    "passwd",
    "pass",
    "passphrase",
    "pwd",
    "secret",
    "secrets",
    "key",
    "keys",
    "apikey",
    "auth",
    "oauth",
    "authorization",
    "credential",
    "credentials",
    "creds",
    "cookie",
    "cookies",
    "session",
    "sessions",
    "sessionid",
    "sid",
    "sig",
    "signature",
    "private",
    "privkey",
    "jwt",
    "bearer",
    "otp",
];

/// Words run together that still name a secret (`dbpassword`, `authtoken`, `secretkey`).
const SECRET_INFIXES: &[&str] = &["password", "passwd", "secret", "credential"];
const SECRET_SUFFIXES: &[&str] = &[
    "token",
    "apikey",
    "accesskey",
    "privatekey",
    "secretkey",
    "authkey",
    "signingkey",
    "sessionid",
];

/// A last word that makes the value a setting about a secret, not the secret
/// (`token_file`, `keys_dir`, `session_timeout`).
const NOT_A_SECRET_LAST: &[&str] = &[
    "dir", "dirs", "path", "paths", "file", "files", "timeout", "ttl", "every", "interval",
    "limit", "limits", "count", "size", "length", "len", "enabled", "format", "type", "kind",
    "name", "names",
];

/// Keys whose values name a secret without being one: vigil's own `token_credential` is the
/// name of a systemd credential, read from `$CREDENTIALS_DIRECTORY`.
const NAMES_OF_SECRETS: &[&str] = &["token_credential"];

/// Header-like keys whose value runs to the end of the line (`Cookie: a=b; c=d`).
const WHOLE_LINE_KEYS: &[&str] = &[
    "authorization",
    "proxy-authorization",
    "cookie",
    "set-cookie",
];

const MARK: &str = "[redacted:";

/// Splits a key name into lower-case words at non-alphanumerics and camelCase boundaries.
fn words(key: &str) -> Vec<String> {
    let mut out = Vec::new();
    for part in key.split(|c: char| !c.is_ascii_alphanumeric()) {
        let cs: Vec<char> = part.chars().collect();
        let mut cur = String::new();
        for (i, &c) in cs.iter().enumerate() {
            let prev = i.checked_sub(1).map(|p| cs[p]);
            let next = cs.get(i + 1).copied();
            let boundary = c.is_ascii_uppercase()
                && prev.is_some_and(|p| {
                    p.is_ascii_lowercase()
                        || p.is_ascii_digit()
                        || (p.is_ascii_uppercase() && next.is_some_and(|n| n.is_ascii_lowercase()))
                });
            if boundary && !cur.is_empty() {
                out.push(std::mem::take(&mut cur));
            }
            cur.push(c.to_ascii_lowercase());
        }
        if !cur.is_empty() {
            out.push(cur);
        }
    }
    out
}

/// Whether the value of `key` is to be treated as a secret.
pub fn is_secret_key(key: &str) -> bool {
    if NAMES_OF_SECRETS.iter().any(|k| key.eq_ignore_ascii_case(k)) {
        return false;
    }
    let ws = words(key);
    let Some(last) = ws.last() else {
        return false;
    };
    if ws.len() > 1 && NOT_A_SECRET_LAST.contains(&last.as_str()) {
        return false;
    }
    ws.iter().any(|w| {
        SECRET_WORDS.contains(&w.as_str())
            || SECRET_INFIXES.iter().any(|i| w.contains(i))
            || SECRET_SUFFIXES.iter().any(|s| w.ends_with(s))
    })
}

/// Values that are never secrets, whatever their key (`auth = true`).
fn benign(value: &str) -> bool {
    let v = value.trim();
    v.is_empty()
        || v.starts_with(MARK)
        || [
            "true", "false", "yes", "no", "on", "off", "null", "none", "nil",
        ]
        .iter()
        .any(|b| v.eq_ignore_ascii_case(b))
}

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
        let next = self.ids.len() + 1;
        let n = *self.ids.entry(value.to_string()).or_insert(next);
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
        let l = self.urls(file, line);
        let l = self.bearer(file, &l);
        let l = self.flags(file, &l);
        self.assignments(file, &l)
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
mod tests {
    use super::*;
    use serde_json::json;

    fn red(text: &str) -> String {
        Redactor::new().text("f", text)
    }

    #[test]
    fn key_names_that_are_secrets_and_words_that_are_not() {
        for k in [
            "token",
            "api_key",
            "apiKey",
            "APIKey",
            "DB_PASSWORD",
            "MYSQL_ROOT_PASSWORD",
            "AWS_SECRET_ACCESS_KEY",
            "X-Api-Key",
            "Authorization",
            "access_token",
            "authtoken",
            "dbpassword",
            "client_secret",
            "session",
            "Cookie",
            "sig",
            "signature",
            "X-Amz-Signature",
            "passwd",
            "HF_TOKEN",
            "private_key",
            "keys",
        ] {
            assert!(is_secret_key(k), "{k} names a secret");
        }
        for k in [
            "keyboard",
            "KeyringMode",
            "monkey",
            "author",
            "tokenizer",
            "url",
            "name",
            "ActiveState",
            "NRestarts",
            "keys_dir",
            "token_file",
            "session_timeout",
            "token_credential",
            "passage",
            "https",
            "12",
        ] {
            assert!(!is_secret_key(k), "{k} does not name a secret");
        }
    }

    #[test]
    fn toml_json_env_and_header_assignments() {
        let mut r = Redactor::new();
        let text = "password = \"hunter2\"\nkeyboard = \"us\"\n\"api_key\": \"abc123\", \"name\": \"x\"\nDB_PASSWORD=hunter2 USER=bob\nX-Api-Key: abc123\nauth = true\n";
        let out = r.text("f", text);
        assert_eq!(
            out,
            "password = \"[redacted:1]\"\nkeyboard = \"us\"\n\"api_key\": \"[redacted:2]\", \"name\": \"x\"\nDB_PASSWORD=[redacted:1] USER=bob\nX-Api-Key: [redacted:2]\nauth = true\n"
        );
        assert_eq!(r.count("f"), 4);
        assert_eq!(r.distinct(), 2);
    }

    #[test]
    fn bearer_tokens_and_authorization_headers() {
        assert_eq!(
            red("Authorization: Bearer eyJ.abc-def_1"),
            "Authorization: Bearer [redacted:1]"
        );
        assert_eq!(
            red("headers = { Authorization = \"Bearer s3cr3t\" }"),
            "headers = { Authorization = \"Bearer [redacted:1]\" }"
        );
        assert_eq!(
            red("push failed: sent bearer zzz to host"),
            "push failed: sent bearer [redacted:1] to host"
        );
        assert_eq!(
            red("authorization: Basic dXNlcjpwYXNz"),
            "authorization: Basic [redacted:1]"
        );
        assert_eq!(
            red("Cookie: a=1; b=2"),
            "Cookie: [redacted:1]",
            "a cookie header goes whole"
        );
        assert_eq!(red("a basic check"), "a basic check");
    }

    #[test]
    fn url_credentials_and_query_tokens() {
        let mut r = Redactor::new();
        let out = r.text(
            "f",
            "url = \"https://alice:pa55@alerts.example.com/hook?token=t0k&x=1&api_key=k3y#frag\"",
        );
        assert_eq!(
            out,
            "url = \"https://alice:[redacted:1]@alerts.example.com/hook?token=[redacted:2]&x=1&api_key=[redacted:3]#frag\""
        );
        let out = r.text(
            "g",
            "POST https://alice:pa55@alerts.example.com/hook?token=t0k failed",
        );
        assert_eq!(
            out,
            "POST https://alice:[redacted:1]@alerts.example.com/hook?token=[redacted:2] failed",
            "the same secret, the same N in another file"
        );
        assert_eq!(
            red("git https://ghp_abc@github.com/x"),
            "git https://[redacted:1]@github.com/x"
        );
        assert_eq!(
            red("s3 https://b.example.com/o?X-Amz-Signature=ff00&sig=aa"),
            "s3 https://b.example.com/o?X-Amz-Signature=[redacted:1]&sig=[redacted:2]"
        );
        assert_eq!(
            red("see https://example.com/a?page=2 and unix:///var/run/docker.sock"),
            "see https://example.com/a?page=2 and unix:///var/run/docker.sock"
        );
    }

    #[test]
    fn flags_pem_and_lists() {
        assert_eq!(
            red("exec backup --password s3 --out /x"),
            "exec backup --password [redacted:1] --out /x"
        );
        assert_eq!(
            red("a\n-----BEGIN RSA PRIVATE KEY-----\nMIIabc\ndef\n-----END RSA PRIVATE KEY-----\nb\n"),
            "a\n-----BEGIN RSA PRIVATE KEY-----\n[redacted:1]\n-----END RSA PRIVATE KEY-----\nb\n"
        );
        assert_eq!(
            red("tokens = [\"a1\", \"b2\"]"),
            "tokens = [\"[redacted:1]\", \"[redacted:2]\"]"
        );
    }

    #[test]
    fn ordinary_text_is_left_alone() {
        for t in [
            "2026-02-17T10:00:00+0000 box vigild[12]: check keyboard: ok",
            "ActiveState=active\nSubState=running\nNRestarts=0\nKeyringMode=private",
            "keys_dir = \"/etc/vigil/keys\"\ntoken_credential = \"alert-token\"",
            "MemTotal:       16314172 kB",
            "Filesystem      Size  Used Avail Use% Mounted on",
            "ünïcödé key-less line: with = signs",
        ] {
            assert_eq!(red(t), t);
        }
    }

    #[test]
    fn json_values_under_secret_keys_and_flags_in_commands() {
        let mut r = Redactor::new();
        let doc = json!({
            "name": "web",
            "labels": { "com.example.api-token": "t1", "tier": "front" },
            "secrets": { "db": "p1" },
            "cmd": ["serve", "--api-key", "k1", "--port", "80"],
            "pin_token": 1234,
            "detail": "POST https://u:p1@h/x failed",
            "auth": true,
        });
        let out = r.json("c.json", &doc);
        let mark = |v: &Value| {
            let t = v.as_str().unwrap_or_default().to_string();
            assert!(t.starts_with("[redacted:"), "{t}");
            t
        };
        assert_eq!(out["name"], "web");
        let label = mark(&out["labels"]["com.example.api-token"]);
        assert_eq!(out["labels"]["tier"], "front");
        let db = mark(&out["secrets"]["db"]);
        assert_eq!(out["cmd"][1], "--api-key");
        let flag = mark(&out["cmd"][2]);
        assert_eq!(out["cmd"][4], "80");
        let pin = mark(&out["pin_token"]);
        assert_eq!(
            out["detail"],
            format!("POST https://u:{db}@h/x failed"),
            "the same secret, the same N"
        );
        assert_eq!(out["auth"], true);
        let mut all = vec![label, db, flag, pin];
        all.sort();
        all.dedup();
        assert_eq!(all.len(), 4);
        assert_eq!(r.count("c.json"), 5);
    }

    #[test]
    fn env_values_always_go_and_the_report_counts_per_file() {
        let mut r = Redactor::new();
        r.file("empty.txt");
        assert_eq!(
            r.env_entry("containers.json", "PATH=/bin"),
            "PATH=[redacted:1]"
        );
        assert_eq!(
            r.env_entry("containers.json", "DB_PASSWORD=x"),
            "DB_PASSWORD=[redacted:2]"
        );
        assert_eq!(r.env_entry("containers.json", "EMPTY="), "EMPTY=");
        let rep = r.report();
        assert!(rep.contains("containers.json  2\n"), "{rep}");
        assert!(rep.contains("empty.txt        0\n"), "{rep}");
        assert!(
            rep.contains("2 values redacted, 2 distinct secrets"),
            "{rep}"
        );
        assert!(!rep.contains("/bin"), "{rep}");
    }
}
