//! Layout guards for src/: no import circles between files, a pure core, layers that import
//! one way only, and small files. Uses only std, so it also runs without cargo, from the root:
//! `rustc --edition 2021 --test tests/layout.rs -o /tmp/layout && /tmp/layout`.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

/// What a file under src/core/ must not spell (outside comments and test code).
const FORBIDDEN_IN_CORE: &[&str] = &[
    "std::fs",
    "std::net",
    "std::process",
    "std::env",
    "tokio",
    "SystemTime::now",
    "Instant::now",
    "std::thread",
    "rusqlite",
    "zbus",
    "bollard",
    "reqwest",
    "nix::",
];

/// Top-level modules and their layer: a module may import its own layer or lower ones.
const LAYERS: &[(&str, u32)] = &[
    ("core", 0),
    ("policy", 1),
    ("config", 1),
    ("sys", 2),
    ("proxy", 2),
    ("probe", 3),
    ("action", 3),
    ("update", 3),
    ("store", 3),
    ("bundle", 3),
    ("control", 4),
    ("surface", 5),
    ("daemon", 6),
    ("cli", 7),
];

/// The longest a file under src/ may be, in lines.
const MAX_LINES: usize = 600;

/// One library file of src/, with comments, literals and `#[cfg(test)]` code blanked out.
struct SrcFile {
    rel: String,
    module: Vec<String>,
    code: Vec<u8>,
    /// Modules declared with `mod x;` in this file.
    children: BTreeSet<String>,
    /// Every path written in a `use`, expanded: `(line, segments)`.
    uses: Vec<(usize, Vec<String>)>,
}

/// A path written in one file that lands in another file of the crate.
struct Edge {
    from: usize,
    line: usize,
    to: usize,
    written: String,
    resolved: Vec<String>,
}

/// The parsed crate: its library files and every import between them.
struct Crate {
    files: Vec<SrcFile>,
    edges: Vec<Edge>,
}

/// The repository root: cargo's manifest dir, else the current directory.
fn root() -> PathBuf {
    option_env!("CARGO_MANIFEST_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| std::env::current_dir().expect("current directory"))
}

/// Every `.rs` file under src/, sorted, as paths like `src/a/b.rs`.
fn rust_files(root: &Path, dir: &Path, out: &mut Vec<String>) {
    // A tree that cannot be read must fail the guards, not pass them with nothing checked.
    let entries = std::fs::read_dir(root.join(dir))
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", root.join(dir).display()));
    let mut paths: Vec<PathBuf> = entries.flatten().map(|e| e.path()).collect();
    paths.sort();
    for p in paths {
        let rel = dir.join(p.file_name().unwrap_or_default());
        if p.is_dir() {
            rust_files(root, &rel, out);
        } else if p.extension().is_some_and(|e| e == "rs") {
            out.push(rel.to_string_lossy().replace('\\', "/"));
        }
    }
}

/// The module path of a library file: `src/a/mod.rs` is `a`, `src/a/b.rs` is `a::b`.
fn module_of(rel: &str) -> Vec<String> {
    let inner = rel.trim_start_matches("src/").trim_end_matches(".rs");
    let mut parts: Vec<String> = inner.split('/').map(String::from).collect();
    if parts.last().is_some_and(|p| p == "mod" || p == "lib") {
        parts.pop();
    }
    parts
}

/// True for bytes that can be part of an identifier.
fn is_ident(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_' || b >= 0x80
}

/// The 1-based line of byte `pos`.
fn line_at(code: &[u8], pos: usize) -> usize {
    code[..pos].iter().filter(|&&b| b == b'\n').count() + 1
}

/// Overwrites `code[from..to]` with spaces, keeping newlines so line numbers hold.
fn blank(code: &mut [u8], from: usize, to: usize) {
    let to = to.min(code.len());
    for b in code[from..to].iter_mut().filter(|b| **b != b'\n') {
        *b = b' ';
    }
}

/// Where the comment, string or char literal starting at `i` ends; None if none starts there.
fn literal_end(s: &[u8], i: usize) -> Option<usize> {
    let at = |k: usize| s.get(k).copied().unwrap_or(0);
    match (s[i], at(i + 1)) {
        (b'/', b'/') => Some((i..s.len()).find(|&k| s[k] == b'\n').unwrap_or(s.len())),
        (b'/', b'*') => {
            let (mut k, mut depth) = (i + 2, 1);
            while k < s.len() && depth > 0 {
                match (s[k], at(k + 1)) {
                    (b'/', b'*') => (depth, k) = (depth + 1, k + 1),
                    (b'*', b'/') => (depth, k) = (depth - 1, k + 1),
                    _ => {}
                }
                k += 1;
            }
            Some(k)
        }
        (b'"', _) => {
            let mut k = i + 1;
            while k < s.len() && s[k] != b'"' {
                k += if s[k] == b'\\' { 2 } else { 1 };
            }
            Some(k + 1)
        }
        (b'r' | b'b' | b'c', _) if i == 0 || !is_ident(s[i - 1]) => raw_string_end(s, i),
        (b'\'', b'\\') => (i + 3..s.len()).find(|&k| s[k] == b'\'').map(|k| k + 1),
        (b'\'', lead) => {
            // 'x' (of any UTF-8 width) is a char; 'a without a close is a lifetime or label.
            let width = match lead {
                0xF0.. => 4,
                0xE0.. => 3,
                0xC0.. => 2,
                _ => 1,
            };
            (lead != b'\'' && at(i + 1 + width) == b'\'').then_some(i + 2 + width)
        }
        _ => None,
    }
}

/// The end of a raw string (`r"…"`, `r#"…"#`, `br"…"`, `cr"…"`) starting at `i`.
fn raw_string_end(s: &[u8], i: usize) -> Option<usize> {
    let r = if s[i] == b'r' { i } else { i + 1 };
    if s.get(r) != Some(&b'r') {
        return None;
    }
    let hashes = s[r + 1..].iter().take_while(|&&b| b == b'#').count();
    let open = r + 1 + hashes;
    if s.get(open) != Some(&b'"') {
        return None; // a raw identifier such as r#type
    }
    let close: Vec<u8> = [b'"'].into_iter().chain([b'#'].repeat(hashes)).collect();
    let end = (open + 1..s.len()).find(|&j| s[j..].starts_with(&close));
    Some(end.map_or(s.len(), |e| e + close.len()))
}

/// The source with comments and string/char literals blanked out.
fn strip_literals(src: &str) -> Vec<u8> {
    let mut s = src.as_bytes().to_vec();
    let mut i = 0;
    while i < s.len() {
        match literal_end(&s, i) {
            Some(end) => {
                blank(&mut s, i, end);
                i = end;
            }
            None => i += 1,
        }
    }
    s
}

/// The identifier at `i`, after any whitespace, and the position after it.
fn word_at(s: &[u8], i: usize) -> (String, usize) {
    let start = (i..s.len())
        .find(|&k| !s[k].is_ascii_whitespace())
        .unwrap_or(s.len());
    let end = (start..s.len())
        .find(|&k| !is_ident(s[k]))
        .unwrap_or(s.len());
    (String::from_utf8_lossy(&s[start..end]).into_owned(), end)
}

/// Matches `tokens` (words or punctuation) at `i`, whitespace between; the end if they match.
fn tokens_at(s: &[u8], mut i: usize, tokens: &[&str]) -> Option<usize> {
    for t in tokens {
        let (w, end) = word_at(s, i);
        if w.is_empty() {
            i = end;
            s[i..].starts_with(t.as_bytes()).then_some(())?;
            i += t.len();
        } else {
            (w == *t).then_some(())?;
            i = end;
        }
    }
    Some(i)
}

/// True if the word `w` starts at `i` (not inside a longer identifier or path).
fn word_starts(s: &[u8], i: usize, w: &str) -> bool {
    s[i..].starts_with(w.as_bytes()) && (i == 0 || !(is_ident(s[i - 1]) || s[i - 1] == b':'))
}

/// The position after the bracket that closes the one at `i`.
fn balanced_end(s: &[u8], i: usize) -> usize {
    let mut depth = 0;
    for (k, b) in s.iter().enumerate().skip(i) {
        depth += match b {
            b'(' | b'[' | b'{' => 1,
            b')' | b']' | b'}' => -1,
            _ => continue,
        };
        if depth == 0 {
            return k + 1;
        }
    }
    s.len()
}

/// The end of the item starting at `i`: after its `;` or the `}` closing its body.
fn item_end(s: &[u8], mut i: usize) -> usize {
    while i < s.len() {
        match s[i] {
            b'{' => return balanced_end(s, i),
            b'(' | b'[' => i = balanced_end(s, i),
            b';' => return i + 1,
            _ => i += 1,
        }
    }
    s.len()
}

/// Blanks every `#[cfg(test)]` item; returns the names of `#[cfg(test)] mod x;` files.
fn strip_test_code(s: &mut [u8]) -> Vec<String> {
    let (mut test_mods, mut i) = (Vec::new(), 0);
    while i < s.len() {
        let cfg_test = ["#", "[", "cfg", "(", "test", ")", "]"];
        let Some(mut j) = (s[i] == b'#').then(|| tokens_at(s, i, &cfg_test)).flatten() else {
            i += 1;
            continue;
        };
        while let Some(k) = tokens_at(s, j, &["#", "["]) {
            j = balanced_end(s, k - 1); // further attributes
        }
        let mut k = tokens_at(s, j, &["pub"]).unwrap_or(j);
        k = tokens_at(s, k, &["("]).map_or(k, |open| balanced_end(s, open - 1));
        if let Some(after) = tokens_at(s, k, &["mod"]) {
            let (name, end) = word_at(s, after);
            if tokens_at(s, end, &[";"]).is_some() {
                test_mods.push(name);
            }
        }
        let end = item_end(s, j);
        blank(s, i, end);
        i = end;
    }
    test_mods
}

/// Names declared with `mod x;` in the (test-stripped) code.
fn declared_children(s: &[u8]) -> BTreeSet<String> {
    let decl = |i: usize| {
        let (name, end) = word_at(s, i + 3);
        (!name.is_empty() && tokens_at(s, end, &[";"]).is_some()).then_some(name)
    };
    let at_mod = |i: &usize| word_starts(s, *i, "mod") && word_at(s, *i).0 == "mod";
    (0..s.len()).filter(at_mod).filter_map(decl).collect()
}

/// Tokens of a use tree from `i` to its `;`: words, `::`, `{`, `}`, `,`, `*`, with positions.
fn use_tokens(s: &[u8], mut i: usize) -> (Vec<(String, usize)>, usize) {
    let mut out = Vec::new();
    while i < s.len() && s[i] != b';' {
        let (w, end) = if is_ident(s[i]) {
            word_at(s, i)
        } else if s[i..].starts_with(b"::") {
            ("::".to_string(), i + 2)
        } else {
            let punct = b"{},*".contains(&s[i]).then(|| (s[i] as char).to_string());
            (punct.unwrap_or_default(), i + 1)
        };
        if !w.is_empty() {
            out.push((w, i));
        }
        i = end;
    }
    (out, i)
}

/// Expands the use tree at `t[*pos]` under `prefix` into full paths `(position, segments)`.
fn expand(
    t: &[(String, usize)],
    pos: &mut usize,
    prefix: &[String],
    out: &mut Vec<(usize, Vec<String>)>,
) {
    let (mut path, mut at) = (prefix.to_vec(), t.get(*pos).map_or(0, |x| x.1));
    while let Some((tok, p)) = t.get(*pos) {
        match tok.as_str() {
            "::" => {}
            "{" => {
                *pos += 1;
                while t.get(*pos).is_some_and(|x| x.0 != "}") {
                    expand(t, pos, &path, out);
                    *pos += t.get(*pos).is_some_and(|x| x.0 == ",") as usize;
                }
                *pos += 1;
                return;
            }
            "as" => *pos += 1, // skip the new name
            "," | "}" => break,
            "*" => at = *p,
            "self" if !path.is_empty() => at = *p,
            w => (path, at) = ([path, vec![w.to_string()]].concat(), *p),
        }
        *pos += 1;
    }
    out.push((at, path));
}

/// Every path in a `use` statement, with its line; the statements are then blanked.
fn take_uses(s: &mut [u8]) -> Vec<(usize, Vec<String>)> {
    let (mut out, mut i) = (Vec::new(), 0);
    while i + 3 < s.len() {
        if word_starts(s, i, "use") && s[i + 3].is_ascii_whitespace() {
            let (tokens, end) = use_tokens(s, i + 3);
            expand(&tokens, &mut 0, &[], &mut out);
            blank(s, i, end);
            i = end;
        }
        i += 1;
    }
    out.into_iter().map(|(p, u)| (line_at(s, p), u)).collect()
}

/// Paths written in code that start with `crate::`, `super::` or `self::`, with lines.
fn inline_paths(s: &[u8]) -> Vec<(usize, Vec<String>)> {
    let starts = |i: &usize| {
        ["crate::", "super::", "self::"]
            .iter()
            .any(|w| word_starts(s, *i, w))
    };
    let path_at = |i: usize| {
        let (mut path, mut k) = (Vec::new(), i);
        loop {
            let (w, end) = word_at(s, k);
            if w.is_empty() || end != k + w.len() {
                return (i, path);
            }
            path.push(w);
            if !s[end..].starts_with(b"::") {
                return (i, path);
            }
            k = end + 2;
        }
    };
    let paths = (0..s.len()).filter(starts).map(path_at);
    paths.map(|(p, u)| (line_at(s, p), u)).collect()
}

/// The absolute module path a written path means in `file`, or None if outside the crate.
fn absolute(file: &SrcFile, path: &[String], in_use: bool) -> Option<Vec<String>> {
    let mut base = file.module.clone();
    let mut rest = path.get(1..)?;
    match path[0].as_str() {
        "crate" => base.clear(),
        "self" => {}
        "super" => {
            base.pop()?;
            while rest.first().is_some_and(|s| s == "super") {
                base.pop()?;
                rest = &rest[1..];
            }
        }
        child if in_use && file.children.contains(child) => rest = path,
        _ => return None,
    }
    Some([base, rest.to_vec()].concat())
}

/// Reads one library file of src/; also returns the modules it declares `#[cfg(test)] mod x;`.
fn parse(root: &Path, rel: String) -> (SrcFile, Vec<Vec<String>>) {
    let src = std::fs::read_to_string(root.join(&rel)).unwrap_or_default();
    let mut code = strip_literals(&src);
    let module = module_of(&rel);
    let tests = strip_test_code(&mut code).into_iter();
    let tests = tests.map(|t| [module.clone(), vec![t]].concat()).collect();
    let uses = take_uses(&mut code);
    let children = declared_children(&code);
    (
        SrcFile {
            rel,
            module,
            code,
            children,
            uses,
        },
        tests,
    )
}

/// Parses every library file of src/ once (bins and `#[cfg(test)] mod x;` files left out).
fn load() -> &'static Crate {
    static CRATE: OnceLock<Crate> = OnceLock::new();
    CRATE.get_or_init(|| {
        let mut rels = Vec::new();
        rust_files(&root(), Path::new("src"), &mut rels);
        rels.retain(|r| !r.starts_with("src/bin/") && r != "src/main.rs");
        let parsed: Vec<_> = rels.into_iter().map(|r| parse(&root(), r)).collect();
        let tests: Vec<Vec<String>> = parsed.iter().flat_map(|p| p.1.clone()).collect();
        let files = parsed.into_iter().map(|p| p.0);
        let files = files.filter(|f| !tests.iter().any(|t| f.module.starts_with(t)));
        link(files.collect())
    })
}

/// Resolves every written path to the file it lands in: the longest prefix that is a file.
fn link(files: Vec<SrcFile>) -> Crate {
    let by_module: BTreeMap<&[String], usize> = files
        .iter()
        .enumerate()
        .map(|(i, f)| (&f.module[..], i))
        .collect();
    let mut edges = Vec::new();
    for (from, file) in files.iter().enumerate() {
        let uses = file.uses.iter().map(|(l, u)| (*l, u.clone(), true));
        let inline = inline_paths(&file.code).into_iter();
        for (line, path, in_use) in uses.chain(inline.map(|(l, u)| (l, u, false))) {
            let Some(abs) = absolute(file, &path, in_use) else {
                continue;
            };
            let to = (0..=abs.len())
                .rev()
                .find_map(|n| by_module.get(&abs[..n]).copied());
            if let Some(to) = to.filter(|&to| to != from) {
                edges.push(Edge {
                    from,
                    line,
                    to,
                    written: path.join("::"),
                    resolved: abs,
                });
            }
        }
    }
    Crate { files, edges }
}

/// Depth-first walk from `v`, pushing each node once it is finished.
fn finish(adj: &[Vec<usize>], v: usize, seen: &mut [bool], out: &mut Vec<usize>) {
    if !std::mem::replace(&mut seen[v], true) {
        adj[v].iter().for_each(|&w| finish(adj, w, seen, out));
        out.push(v);
    }
}

/// Strongly connected components of more than one file (Kosaraju).
fn circles(n: usize, edges: &[Edge]) -> Vec<Vec<usize>> {
    let (mut fwd, mut back) = (vec![Vec::new(); n], vec![Vec::new(); n]);
    for e in edges {
        fwd[e.from].push(e.to);
        back[e.to].push(e.from);
    }
    let (mut order, mut seen) = (Vec::new(), vec![false; n]);
    (0..n).for_each(|v| finish(&fwd, v, &mut seen, &mut order));
    let (mut out, mut seen) = (Vec::new(), vec![false; n]);
    for &v in order.iter().rev() {
        let mut comp = Vec::new();
        finish(&back, v, &mut seen, &mut comp);
        comp.sort();
        if comp.len() > 1 {
            out.push(comp);
        }
    }
    out.sort();
    out
}

/// The top-level module a file belongs to ("" for the crate root).
fn top(f: &SrcFile) -> &str {
    f.module.first().map_or("", |m| m)
}

/// The layer of a top-level module, if LAYERS names it.
fn rank(module: &str) -> Option<u32> {
    LAYERS
        .iter()
        .find(|(name, _)| *name == module)
        .map(|(_, r)| *r)
}

/// Panics with `title`, the problems and how to fix them, when there are problems.
fn report(problems: Vec<String>, title: &str, fix: &str) {
    if !problems.is_empty() {
        panic!(
            "\n{title}:\n  {}\n\nHow to fix: {fix}\n",
            problems.join("\n  ")
        );
    }
}

/// A circle as its files, then each import inside it: `FILE:LINE -> FILE (paths written)`.
fn describe_circle(c: &Crate, comp: &[usize]) -> String {
    let mut inside: BTreeMap<(usize, usize, usize), Vec<&str>> = BTreeMap::new();
    for e in c
        .edges
        .iter()
        .filter(|e| comp.contains(&e.from) && comp.contains(&e.to))
    {
        let written = inside.entry((e.from, e.line, e.to)).or_default();
        if !written.contains(&e.written.as_str()) {
            written.push(&e.written);
        }
    }
    let rel = |i: usize| c.files[i].rel.as_str();
    let names: Vec<&str> = comp.iter().map(|&i| rel(i)).collect();
    let mut out = format!("circle of {} files: {}", comp.len(), names.join(", "));
    for ((f, l, t), w) in inside {
        out += &format!("\n    {}:{l} -> {} ({})", rel(f), rel(t), w.join(", "));
    }
    out
}

/// No set of files of src/ imports each other around in a circle.
#[test]
fn no_import_circles() {
    let c = load();
    let found = circles(c.files.len(), &c.edges);
    report(
        found.iter().map(|comp| describe_circle(c, comp)).collect(),
        "import circles between files of src/",
        "break each circle: move what both sides need into a lower file (or the core) that \
         imports neither, or pass it in as a parameter, so imports run one way",
    );
}

/// Where the core code of `f` spells a forbidden word: `(line, word)`.
fn forbidden_words(f: &SrcFile) -> Vec<(usize, String)> {
    let forbidden = |text: &[u8]| {
        FORBIDDEN_IN_CORE
            .iter()
            .find(|w| text.starts_with(w.as_bytes()))
    };
    let in_uses = f
        .uses
        .iter()
        .filter_map(|(l, u)| Some((*l, forbidden(u.join("::").as_bytes())?)));
    let word_start = |k: &usize| word_starts(&f.code, *k, "");
    let inline = (0..f.code.len()).filter(word_start);
    let inline = inline.filter_map(|k| Some((line_at(&f.code, k), forbidden(&f.code[k..])?)));
    in_uses
        .chain(inline)
        .map(|(l, w)| (l, w.to_string()))
        .collect()
}

/// Files under src/core/ do no I/O, read no clock and import nothing of the crate outside core.
#[test]
fn core_is_pure() {
    let c = load();
    assert!(
        root().join("src/core").is_dir(),
        "src/core/ is missing: the pure core (no I/O, no clock) must live in src/core/"
    );
    let mut hits = Vec::new();
    for (i, f) in c.files.iter().enumerate().filter(|(_, f)| top(f) == "core") {
        hits.extend(forbidden_words(f).into_iter().map(|(l, w)| (&f.rel, l, w)));
        let outside = c
            .edges
            .iter()
            .filter(|e| e.from == i && top(&c.files[e.to]) != "core");
        let outside = outside.filter(|e| e.resolved != ["VERSION"]);
        hits.extend(outside.map(|e| (&f.rel, e.line, e.written.clone())));
    }
    hits.sort();
    hits.dedup();
    let why = "the core does no I/O and reads no clock: take the value as a parameter";
    let problems = hits
        .iter()
        .map(|(f, l, w)| format!("{f}:{l}: forbidden `{w}` in the core ({why})"));
    report(
        problems.collect(),
        "impure code in src/core/",
        "move the I/O, clock read or outside import into an adapter outside src/core/ \
         and pass its result in",
    );
}

/// A module never imports a module of a higher layer; every top-level module has a layer.
#[test]
fn layers_run_one_way() {
    let c = load();
    let unranked = c
        .files
        .iter()
        .filter(|f| f.module.len() == 1 && rank(top(f)).is_none());
    let mut problems: Vec<String> = unranked
        .map(|f| {
            format!(
                "{} (module `{m}`) has no layer: add (\"{m}\", RANK) to LAYERS in tests/layout.rs",
                f.rel,
                m = top(f)
            )
        })
        .collect();
    for e in &c.edges {
        let (from, to) = (&c.files[e.from], &c.files[e.to]);
        let (a, b) = (top(from), top(to));
        if let (Some(r), Some(s)) = (rank(a), rank(b)) {
            if s > r {
                let (rel, path) = (&from.rel, &e.written);
                problems.push(format!(
                    "{rel}:{}: {rel} ({a}, layer {r}) imports {path} ({b}, layer {s}): \
                     lower layers must not import higher ones",
                    e.line
                ));
            }
        }
    }
    problems.dedup();
    report(
        problems,
        "layer violations in src/",
        "move the shared piece down to the lower layer (or pass it in as a parameter); \
         a new top-level module needs a rank in LAYERS",
    );
}

/// No `.rs` file under src/ is longer than MAX_LINES lines.
#[test]
fn no_file_over_600_lines() {
    let (root, mut rels) = (root(), Vec::new());
    rust_files(&root, Path::new("src"), &mut rels);
    let count = |r: &String| std::fs::read_to_string(root.join(r)).map_or(0, |s| s.lines().count());
    let mut long: Vec<_> = rels.iter().map(|r| (count(r), r)).collect();
    long.retain(|(n, _)| *n > MAX_LINES);
    long.sort_by_key(|e| std::cmp::Reverse(e.0));
    report(
        long.iter()
            .map(|(n, r)| format!("{r}: {n} lines"))
            .collect(),
        &format!("files over {MAX_LINES} lines"),
        "split each into smaller files by topic (a folder with a mod.rs and a file per part); \
         tests can move to a tests.rs beside it",
    );
}
