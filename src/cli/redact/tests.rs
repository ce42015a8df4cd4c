//! The redaction rules, case by case.

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
        out, "POST https://alice:[redacted:1]@alerts.example.com/hook?token=[redacted:2] failed",
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
