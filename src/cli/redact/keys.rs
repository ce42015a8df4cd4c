//! Which key names are a secret's, and which values never are.

/// How every redacted value starts.
pub(super) const MARK: &str = "[redacted:";

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
pub(super) fn benign(value: &str) -> bool {
    let v = value.trim();
    v.is_empty()
        || v.starts_with(MARK)
        || [
            "true", "false", "yes", "no", "on", "off", "null", "none", "nil",
        ]
        .iter()
        .any(|b| v.eq_ignore_ascii_case(b))
}
