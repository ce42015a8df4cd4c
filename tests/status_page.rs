//! The status page of a real vigild, as a browser renders it: headless Chromium dumps the
//! DOM (names, states, escaping) and takes a screenshot whose pixels say what a person sees
//! (red while a check is crit, none once it recovers). Chromium must be installed
//! (`scripts/test.sh` does it); without it these tests fail.

mod common;

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::*;

/// Longest one Chromium run may take.
const CHROMIUM_TIMEOUT: Duration = Duration::from_secs(90);
/// Where Debian's `chromium` package puts the browser.
const CHROMIUM: &str = "/usr/bin/chromium";

/// The colours of the page (`vigil::surface::status_page::COLOUR_*`) as RGB.
fn rgb(hex: &str) -> [u8; 3] {
    let v = u32::from_str_radix(hex.trim_start_matches('#'), 16).unwrap();
    [(v >> 16) as u8, (v >> 8) as u8, v as u8]
}

/// A check that is crit while `DIR/down` exists (its detail has markup in it, as outside
/// text may), memory (ok), a thermal check over an empty sysfs (unknown), and a rule that
/// opens an incident on the crit one.
fn policy(dir: &Path) -> String {
    format!(
        r#"{MEMORY_POLICY}
[[check]]
name = "api"
probe = "exec"
command = ["/bin/sh", "-c", "if [ -e {down} ]; then echo '<b id=injected>api</b> refused & down'; exit 2; fi; echo answering"]
every = "200ms"
timeout = "2s"

[[check]]
name = "board-temp"
probe = "thermal"
every = "1s"

[[rule]]
name = "heal-api"
on = "api"
when = "crit"
for = "0s"
do = ["notify"]
"#,
        down = dir.join("down").display()
    )
}

/// Runs Chromium headless on `url` with `args` and a fresh profile; its stdout. Panics when
/// it is missing, fails, or hangs.
fn chromium(args: &[&str], url: &str) -> String {
    assert!(
        Path::new(CHROMIUM).exists(),
        "{CHROMIUM} is missing: apt-get install chromium (scripts/test.sh installs it)"
    );
    let profile = tempfile::tempdir().unwrap();
    let mut child = Command::new(CHROMIUM)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
        ])
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .args(args)
        .arg(url)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run {CHROMIUM}: {e}"));
    let start = Instant::now();
    while child.try_wait().unwrap().is_none() {
        if start.elapsed() > CHROMIUM_TIMEOUT {
            let _ = child.kill();
            let _ = child.wait();
            panic!("chromium {args:?} {url} did not finish within {CHROMIUM_TIMEOUT:?}");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "chromium {args:?} {url} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// A screenshot of `url` at 1000×800, decoded: (width, height, RGB pixels).
fn screenshot(url: &str, file: &Path) -> (u32, u32, Vec<[u8; 3]>) {
    let _ = std::fs::remove_file(file);
    chromium(
        &[
            &format!("--screenshot={}", file.display()),
            "--window-size=1000,800",
            "--hide-scrollbars",
        ],
        url,
    );
    let decoder = png::Decoder::new(std::io::BufReader::new(
        std::fs::File::open(file).unwrap_or_else(|e| panic!("no screenshot {file:?}: {e}")),
    ));
    let mut reader = decoder.read_info().unwrap();
    let mut buf = vec![0; reader.output_buffer_size().unwrap()];
    let info = reader.next_frame(&mut buf).unwrap();
    let channels = info.color_type.samples();
    assert!(
        info.bit_depth == png::BitDepth::Eight && channels >= 3,
        "{info:?}"
    );
    let pixels = buf[..info.buffer_size()]
        .chunks_exact(channels)
        .map(|p| [p[0], p[1], p[2]])
        .collect();
    (info.width, info.height, pixels)
}

/// How many pixels are `colour`, give or take a little rounding.
fn count(pixels: &[[u8; 3]], colour: &str) -> usize {
    let want = rgb(colour);
    let near = |p: &[u8; 3]| (0..3).all(|i| p[i].abs_diff(want[i]) <= 4);
    pixels.iter().filter(|p| near(p)).count()
}

/// The `<tr>` of check `name` in a DOM dump.
fn row<'a>(dom: &'a str, name: &str) -> &'a str {
    let needle = format!("data-check=\"{name}\"");
    let at = dom
        .find(&needle)
        .unwrap_or_else(|| panic!("no row for {name} in {dom}"));
    let end = dom[at..].find("</tr>").unwrap() + at;
    &dom[at..end]
}

#[test]
fn the_page_shows_each_state_in_its_colour_and_red_goes_when_the_check_recovers() {
    let marks = tempfile::tempdir().unwrap();
    std::fs::write(marks.path().join("down"), "").unwrap();
    let mut b = VigildBuilder::new().policy(&policy(marks.path()));
    b.settings = "[http]\nstatus_page = true\n".into();
    let v = b.start();
    let url = format!("http://127.0.0.1:{}/", v.port);
    v.wait_status("critical");
    // The incident opened and its notify step went (skipped: no webhook configured).
    wait_for(Duration::from_secs(15), "the action on the page", || {
        let (code, _, body) = v.http("GET", "/");
        (code == 200 && body.contains("<tr class=\"action\">")).then_some(())
    });

    // Over the wire: the headers of the contract, and HEAD without a body.
    let (code, head, body) = v.http("GET", "/");
    assert_eq!(code, 200, "{head}");
    let head_lc = head.to_ascii_lowercase();
    for h in [
        "content-type: text/html; charset=utf-8",
        "cache-control: no-store",
        "content-security-policy: default-src 'none'; style-src 'unsafe-inline'",
    ] {
        assert!(head_lc.contains(h), "{h} in {head}");
    }
    assert!(body.starts_with("<!DOCTYPE html>"), "{body}");
    let (code, head, empty) = v.http("HEAD", "/");
    assert_eq!((code, empty.as_str()), (200, ""), "{head}");
    assert!(head.to_ascii_lowercase().contains("text/html"), "{head}");

    // What the browser builds.
    let dom = chromium(&["--dump-dom"], &url);
    assert!(dom.contains("<title>vigil: critical</title>"), "{dom}");
    assert!(
        dom.contains("id=\"overall\" data-status=\"critical\""),
        "{dom}"
    );
    for (name, status) in [("api", "crit"), ("mem", "ok"), ("board-temp", "unknown")] {
        let r = row(&dom, name);
        assert!(r.contains(&format!("data-status=\"{status}\"")), "{r}");
        assert!(r.contains(&format!(">{status}</span>")), "{r}");
        assert!(r.contains(" UTC ("), "since: {r}");
    }
    let api = row(&dom, "api");
    assert!(api.contains("<td>exec</td>"), "{api}");
    // The detail's markup stayed text: no element was injected.
    assert!(
        api.contains("&lt;b id=injected&gt;api&lt;/b&gt; refused &amp; down"),
        "{api}"
    );
    assert!(!dom.contains("<b id=\"injected\">"), "{dom}");
    assert!(
        row(&dom, "mem").contains("<td>memory</td>"),
        "{}",
        row(&dom, "mem")
    );
    assert!(dom.contains("<h2>Open incidents (1)</h2>"), "{dom}");
    assert!(
        dom.contains("<td>heal-api</td><td>api</td><td>"),
        "incident row: {dom}"
    );
    assert!(dom.contains("<td>notify</td>"), "action row: {dom}");
    assert!(
        dom.contains("<b id=\"update-state\">idle</b> (no update running)"),
        "{dom}"
    );
    assert!(!dom.contains("<script"), "{dom}");

    // What a person sees: the crit check's red, the ok check's green, the unknown's grey.
    let shots = tempfile::tempdir().unwrap();
    let (w, h, px) = screenshot(&url, &shots.path().join("crit.png"));
    assert_eq!((w, h), (1000, 800));
    let red = count(&px, "#cf222e");
    let green = count(&px, "#2da44e");
    let grey = count(&px, "#8c959f");
    assert!(red > 2000, "red pixels while crit: {red}");
    assert!(green > 300, "green pixels for the ok check: {green}");
    assert!(grey > 300, "grey pixels for the unknown check: {grey}");
    eprintln!("pixels while crit: {red} red, {green} green, {grey} grey");

    // The check recovers: no red anywhere; the overall turns degraded (the unknown check).
    std::fs::remove_file(marks.path().join("down")).unwrap();
    v.wait_status("degraded");
    wait_for(Duration::from_secs(15), "the incident closed", || {
        let (_, _, body) = v.http("GET", "/");
        body.contains("<h2>Open incidents (0)</h2>").then_some(())
    });
    let dom = chromium(&["--dump-dom"], &url);
    assert!(row(&dom, "api").contains("data-status=\"ok\""), "{dom}");
    assert!(
        dom.contains("<td>notify</td>"),
        "the action stays listed: {dom}"
    );
    let (_, _, px) = screenshot(&url, &shots.path().join("ok.png"));
    let red = count(&px, "#cf222e");
    let green = count(&px, "#2da44e");
    let yellow = count(&px, "#d4a72c");
    assert_eq!(red, 0, "red pixels after the check recovered");
    assert!(green > 600, "green pixels for two ok checks: {green}");
    assert!(yellow > 2000, "the degraded header: {yellow}");
    eprintln!("pixels once recovered: {red} red, {green} green, {yellow} yellow");
}

#[test]
fn without_the_setting_there_is_no_page() {
    let v = VigildBuilder::new().start();
    v.wait_status("ok");
    let (code, head, body) = v.http("GET", "/");
    assert_eq!(code, 404, "{head}");
    assert_eq!(body, "not found\n");
    assert!(!head.to_ascii_lowercase().contains("text/html"), "{head}");
    // The heartbeat is served as ever.
    assert_eq!(v.heartbeat()["status"], "ok");
    // And a browser gets no page either.
    let dom = chromium(&["--dump-dom"], &format!("http://127.0.0.1:{}/", v.port));
    assert!(!dom.contains("vigil:"), "{dom}");
    assert!(dom.contains("not found"), "{dom}");
}
