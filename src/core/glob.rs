//! Shell-style globs (`arasul-*`, `container:*`) for check names, containers and sensors.

/// Matches `name` against a shell-style glob with `*` and `?` (no allocation).
pub fn glob_match(pattern: &str, name: &str) -> bool {
    let (p, n) = (pattern.as_bytes(), name.as_bytes());
    let (mut pi, mut ni) = (0, 0);
    let (mut star, mut mark) = (None, 0);
    while ni < n.len() {
        if pi < p.len() && p[pi] == b'?' {
            // `?` is one character, which may be several bytes in UTF-8.
            pi += 1;
            ni += 1;
            while ni < n.len() && (n[ni] & 0xC0) == 0x80 {
                ni += 1;
            }
        } else if pi < p.len() && p[pi] != b'*' && p[pi] == n[ni] {
            pi += 1;
            ni += 1;
        } else if pi < p.len() && p[pi] == b'*' {
            star = Some(pi);
            mark = ni;
            pi += 1;
        } else if let Some(s) = star {
            pi = s + 1;
            mark += 1;
            ni = mark;
        } else {
            return false;
        }
    }
    while pi < p.len() && p[pi] == b'*' {
        pi += 1;
    }
    pi == p.len()
}

/// Whether a pattern has glob characters at all.
pub fn is_glob(pattern: &str) -> bool {
    pattern.contains(['*', '?'])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn globs() {
        assert!(glob_match("arasul-*", "arasul-db"));
        assert!(glob_match("*", ""));
        assert!(glob_match("a?c", "abc"));
        assert!(glob_match("*-therm", "CPU-therm"));
        assert!(glob_match("a*b*c", "axxbyyc"));
        assert!(!glob_match("a*b*c", "axxbyy"));
        assert!(!glob_match("ollama", "ollama2"));
        assert!(!glob_match("?", ""));
        assert!(glob_match("caf?", "café"));
        assert!(glob_match("*é", "café"));
    }
}
