//! The read-only status page (`[http] status_page = true`): `GET /` answers one
//! self-contained HTML page rendered from the snapshot — the overall status, every check
//! colour-coded with its detail, the incidents going on, the last actions, the update state
//! and maintenance. No script, no external asset; it refreshes itself every 30 s. Every
//! value is escaped: check details come from the outside world.

use std::fmt::Write as _;

use http_body_util::Full;
use hyper::body::Bytes;
use hyper::header::{HeaderName, HeaderValue, CACHE_CONTROL, CONTENT_TYPE};
use hyper::{Response, StatusCode};

use crate::core::health::{CheckState, Overall, Status};
use crate::core::status::Snapshot;
use crate::core::time::{rfc3339_millis, Micros, Now};
use crate::core::update::UpdateState;

/// How often the page reloads itself, in seconds.
pub const REFRESH_SECS: u32 = 30;
/// What the page may load: nothing but its own inline style (no script, no image, no frame).
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; style-src 'unsafe-inline'; \
     base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

/// The colours a person reads the states by (also what the screenshot test looks for).
pub const COLOUR_OK: &str = "#2da44e";
pub const COLOUR_WARN: &str = "#d4a72c";
pub const COLOUR_CRIT: &str = "#cf222e";
pub const COLOUR_UNKNOWN: &str = "#8c959f";

const STYLE: &str = "\
*{box-sizing:border-box}\
body{margin:0;font:14px/1.4 system-ui,-apple-system,'Segoe UI',Roboto,sans-serif;color:#1f2328;background:#f6f8fa}\
header{padding:14px 20px;color:#fff}\
header h1{margin:0;font-size:22px}header p{margin:2px 0 0;opacity:.95}\
main{padding:8px 20px 20px}\
h2{font-size:16px;margin:18px 0 6px}\
table{border-collapse:collapse;width:100%;background:#fff;border:1px solid #d0d7de}\
th,td{text-align:left;padding:5px 8px;border-bottom:1px solid #d0d7de;vertical-align:top}\
th{background:#eaeef2;font-weight:600}\
td.detail{word-break:break-word}td.t{white-space:nowrap}\
.badge{display:inline-block;min-width:64px;padding:1px 8px;border-radius:10px;color:#fff;\
font-weight:600;text-align:center}\
.banner{margin:12px 0 0;padding:8px 12px;border:1px solid #9a6700;background:#fff8c5}\
.none{color:#59636e;margin:4px 0}\
footer{padding:0 20px 16px;color:#59636e;font-size:12px}";

/// The colour of a check's status.
pub fn colour(status: Status) -> &'static str {
    match status {
        Status::Ok => COLOUR_OK,
        Status::Warn => COLOUR_WARN,
        Status::Crit => COLOUR_CRIT,
        Status::Unknown => COLOUR_UNKNOWN,
    }
}

/// The colour of the overall status.
fn overall_colour(o: Overall) -> &'static str {
    match o {
        Overall::Ok => COLOUR_OK,
        Overall::Degraded => COLOUR_WARN,
        Overall::Critical => COLOUR_CRIT,
    }
}

/// `s` escaped for HTML text and attribute values.
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// `2026-02-17 10:00:00 UTC`.
fn wall(at: Micros) -> String {
    let t = rfc3339_millis(at);
    format!("{} {} UTC", &t[..10], &t[11..19])
}

/// How long ago `at` was, roughly (see [`human`]).
fn ago(now: Micros, at: Micros) -> String {
    human(now.saturating_sub(at) / 1_000_000)
}

/// Seconds, roughly: `45s`, `12m`, `3h 5m`, `2d 4h`.
fn human(s: u64) -> String {
    match s {
        0..=59 => format!("{s}s"),
        60..=3599 => format!("{}m", s / 60),
        3600..=86_399 => format!("{}h {}m", s / 3600, s % 3600 / 60),
        _ => format!("{}d {}h", s / 86_400, s % 86_400 / 3600),
    }
}

/// Failing checks first (crit, warn, unknown, then ok), by name within each.
fn severity(s: Status) -> u8 {
    match s {
        Status::Crit => 0,
        Status::Warn => 1,
        Status::Unknown => 2,
        Status::Ok => 3,
    }
}

/// The whole page for `snap` at `now`.
pub fn render(snap: &Snapshot, now: Now) -> String {
    let mut h = String::with_capacity(2048 + snap.checks.len() * 320);
    let overall = snap.status.as_str();
    let _ = write!(
        h,
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width,initial-scale=1\">\
         <meta http-equiv=\"refresh\" content=\"{REFRESH_SECS}\">\
         <title>vigil: {overall}</title><style>{STYLE}</style></head>\n<body>\
         <header id=\"overall\" data-status=\"{overall}\" style=\"background:{}\">\
         <h1>vigil: {overall}</h1><p>{}</p><p>version {} · up {} · as of {}</p></header>\n<main>",
        overall_colour(snap.status),
        escape(&snap.summary_line()),
        escape(crate::VERSION),
        human(snap.uptime_secs(now)),
        wall(now.wall),
    );
    if snap.maintenance {
        h.push_str(
            "<p class=\"banner\" id=\"maintenance\"><b>Maintenance mode</b>: actions are suspended",
        );
        if let Some(until) = snap.maintenance_until {
            let _ = write!(h, " until {}", wall(until));
        }
        if let Some(r) = &snap.maintenance_reason {
            let _ = write!(h, " — {}", escape(r));
        }
        h.push_str("</p>\n");
    }
    if snap.store.failing_since.is_some() {
        let _ = writeln!(h, "<p class=\"banner\">{}</p>", escape(&snap.store.line()));
    }
    checks(&mut h, snap, now);
    incidents(&mut h, snap, now);
    actions(&mut h, snap, now);
    update(&mut h, snap);
    let _ = write!(
        h,
        "</main>\n<footer>Read-only. This page reloads every {REFRESH_SECS} s.{}</footer>\n</body></html>\n",
        if snap.builtin_policies {
            " No policy file was found: the built-in checks are in force."
        } else {
            ""
        }
    );
    h
}

fn checks(h: &mut String, snap: &Snapshot, now: Now) {
    let c = &snap.counts;
    let _ = writeln!(
        h,
        "<h2>Checks ({}: {} ok, {} warn, {} crit, {} unknown)</h2>",
        snap.checks.len(),
        c.ok,
        c.warn,
        c.crit,
        c.unknown
    );
    if snap.checks.is_empty() {
        h.push_str("<p class=\"none\">No checks yet.</p>\n");
        return;
    }
    let mut sorted: Vec<&CheckState> = snap.checks.iter().map(|c| c.as_ref()).collect();
    sorted.sort_by(|a, b| (severity(a.status), &a.name).cmp(&(severity(b.status), &b.name)));
    h.push_str(
        "<table id=\"checks\"><thead><tr><th>Check</th><th>Status</th><th>Probe</th>\
         <th>Detail</th><th>Since</th></tr></thead><tbody>\n",
    );
    for c in sorted {
        let st = c.status.as_str();
        let _ = writeln!(
            h,
            "<tr class=\"check\" data-check=\"{name}\" data-status=\"{st}\" \
             style=\"box-shadow:inset 5px 0 {col}\"><td>{name}</td>\
             <td><span class=\"badge\" style=\"background:{col}\">{st}</span></td>\
             <td>{}</td><td class=\"detail\">{}</td><td class=\"t\">{} ({} ago)</td></tr>",
            escape(&c.probe),
            escape(&c.detail),
            wall(c.since),
            ago(now.wall, c.since),
            name = escape(&c.name),
            col = colour(c.status),
        );
    }
    h.push_str("</tbody></table>\n");
}

fn incidents(h: &mut String, snap: &Snapshot, now: Now) {
    let _ = writeln!(h, "<h2>Open incidents ({})</h2>", snap.open_incidents);
    if snap.open_list.is_empty() {
        h.push_str("<p class=\"none\" id=\"incidents\">None.</p>\n");
        return;
    }
    h.push_str(
        "<table id=\"incidents\"><thead><tr><th>Id</th><th>Rule</th><th>Check</th>\
         <th>State</th><th>Opened</th></tr></thead><tbody>\n",
    );
    for i in snap.open_list.iter() {
        let opened = i
            .opened
            .map(|at| format!("{} ({} ago)", wall(at), ago(now.wall, at)))
            .unwrap_or_else(|| "before this start".into());
        let _ = writeln!(
            h,
            "<tr class=\"incident\"><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td class=\"t\">{opened}</td></tr>",
            i.id,
            escape(&i.rule),
            escape(&i.check),
            i.state.as_str(),
        );
    }
    let more = (snap.open_incidents as usize).saturating_sub(snap.open_list.len());
    h.push_str("</tbody></table>\n");
    if more > 0 {
        let _ = writeln!(h, "<p class=\"none\">… and {more} more.</p>");
    }
}

fn actions(h: &mut String, snap: &Snapshot, now: Now) {
    h.push_str("<h2>Last actions</h2>\n");
    if snap.recent_actions.is_empty() {
        h.push_str("<p class=\"none\" id=\"actions\">None since vigild started.</p>\n");
        return;
    }
    h.push_str(
        "<table id=\"actions\"><thead><tr><th>Time</th><th>Incident</th><th>Rule</th>\
         <th>Action</th><th>Result</th></tr></thead><tbody>\n",
    );
    for a in snap.recent_actions.iter().rev() {
        let _ = writeln!(
            h,
            "<tr class=\"action\"><td class=\"t\">{} ({} ago)</td><td>{}</td><td>{}</td><td>{}</td>\
             <td class=\"detail\">{}</td></tr>",
            wall(a.at),
            ago(now.wall, a.at),
            a.incident,
            escape(&a.rule),
            escape(&a.action),
            escape(&a.result),
        );
    }
    h.push_str("</tbody></table>\n");
}

fn update(h: &mut String, snap: &Snapshot) {
    let state = snap.update_state.as_str();
    let what = match snap.update_state {
        UpdateState::Idle => "no update running",
        s if s.is_final() => "the last run ended",
        _ => "a run is in progress",
    };
    let _ = writeln!(
        h,
        "<h2>Update</h2>\n<p id=\"update\">State: <b id=\"update-state\">{state}</b> ({what})</p>"
    );
    if let Some(o) = &snap.update_offered {
        let _ = writeln!(
            h,
            "<p class=\"banner\" id=\"update-offered\">Bundle offered, not applied: {}</p>",
            escape(o)
        );
    }
}

/// The answer to `GET /` (hyper leaves the body out for `HEAD`).
pub fn response(snap: &Snapshot, now: Now) -> Response<Full<Bytes>> {
    let mut r = Response::new(Full::new(Bytes::from(render(snap, now))));
    *r.status_mut() = StatusCode::OK;
    let h = r.headers_mut();
    let set = |h: &mut hyper::HeaderMap, k: HeaderName, v: &'static str| {
        h.insert(k, HeaderValue::from_static(v));
    };
    set(h, CONTENT_TYPE, "text/html; charset=utf-8");
    set(h, CACHE_CONTROL, "no-store");
    set(
        h,
        hyper::header::CONTENT_SECURITY_POLICY,
        CONTENT_SECURITY_POLICY,
    );
    set(h, hyper::header::X_CONTENT_TYPE_OPTIONS, "nosniff");
    set(h, hyper::header::REFERRER_POLICY, "no-referrer");
    r
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::core::incident::IncidentState;
    use crate::core::status::{OpenIncident, RecentAction};

    const NOW: Now = Now {
        wall: 1_771_322_400_000_000,
        mono: 3_600_000_000,
    };

    fn check(name: &str, probe: &str, status: Status, detail: &str) -> Arc<CheckState> {
        Arc::new(CheckState {
            name: name.into(),
            probe: probe.into(),
            status,
            since: NOW.wall - 125_000_000,
            detail: detail.into(),
            metrics: Default::default(),
            last_probe: Some(NOW.wall),
        })
    }

    /// A box as an operator would see it: `n` checks, one crit, one warn, one unknown,
    /// an incident acting on the crit one and a few actions.
    pub(crate) fn typical(n: usize) -> Snapshot {
        let mut s = Snapshot::starting(NOW.wall - 3_600_000_000);
        let ok = [
            ("memory", "memory", "available 61.2%, psi some avg10 0.4"),
            ("docker", "systemd", "docker.service active (running)"),
            (
                "container:arasul-backend",
                "container",
                "running, healthy, 0 restarts",
            ),
            (
                "container:postgres",
                "container",
                "running, healthy, 0 restarts",
            ),
            ("container:traefik", "container", "running, 0 restarts"),
            (
                "web",
                "http",
                "GET http://127.0.0.1:8080/health answered 200 in 4 ms",
            ),
            ("db-port", "tcp", "connected to 127.0.0.1:5432 in 0 ms"),
            ("soc-temp", "thermal", "hottest cpu-thermal 52.3 °C"),
            ("var-disk", "disk", "used 41.0%, inodes 3.2%"),
        ];
        s.checks = (0..n)
            .map(|i| match i {
                0 => check(
                    "ollama",
                    "ollama",
                    Status::Crit,
                    "GET /api/version: timed out after 3s",
                ),
                1 => check("root-disk", "disk", Status::Warn, "used 88.1% (warn > 85%)"),
                2 => check(
                    "gpu",
                    "gpu",
                    Status::Unknown,
                    "NVML unavailable: libnvidia-ml.so.1 not found",
                ),
                _ => {
                    let (name, probe, detail) = ok[(i - 3) % ok.len()];
                    let name = if i - 3 < ok.len() {
                        name.to_string()
                    } else {
                        format!("{name}-{i}")
                    };
                    check(&name, probe, Status::Ok, detail)
                }
            })
            .collect();
        for (c, age_s) in s.checks.iter_mut().zip([125, 2400, 3600]) {
            Arc::make_mut(c).since = NOW.wall - age_s * 1_000_000;
        }
        for c in s.checks.iter_mut().skip(3) {
            Arc::make_mut(c).since = NOW.wall - 3_600_000_000;
        }
        let statuses: Vec<Status> = s.checks.iter().map(|c| c.status).collect();
        s.counts = crate::core::health::StatusCounts::of(statuses.iter().copied());
        s.status = crate::core::health::overall_of(statuses);
        s.open_incidents = 1;
        s.open_list = Arc::new(vec![OpenIncident {
            id: 17,
            rule: "heal-ollama".into(),
            check: "ollama".into(),
            state: IncidentState::Acting,
            opened: Some(NOW.wall - 90_000_000),
        }]);
        s.recent_actions = Arc::new(
            [
                ("unload-models ollama", "done: unloaded 2 models"),
                ("restart container:ollama", "done: restarted"),
            ]
            .iter()
            .enumerate()
            .map(|(k, (a, r))| RecentAction {
                at: NOW.wall - 60_000_000 + k as u64 * 30_000_000,
                incident: 17,
                rule: "heal-ollama".into(),
                action: a.to_string(),
                result: r.to_string(),
            })
            .collect(),
        );
        s
    }

    #[test]
    fn every_part_of_the_snapshot_is_on_the_page() {
        let mut s = typical(5);
        s.maintenance = true;
        s.maintenance_until = Some(NOW.wall + 7_200_000_000);
        s.maintenance_reason = Some("swapping the SSD".into());
        s.update_state = UpdateState::Gating;
        s.update_offered = Some("arasul 2.4.1 at /media/usb/arasul-2.4.1.vigil".into());
        let page = render(&s, NOW);
        assert!(page.starts_with("<!DOCTYPE html>"), "{page}");
        assert!(page.contains("<title>vigil: critical</title>"));
        assert!(page.contains(&format!(
            "data-status=\"critical\" style=\"background:{COLOUR_CRIT}\""
        )));
        assert!(page.contains("<meta http-equiv=\"refresh\" content=\"30\">"));
        for (name, st, col) in [
            ("ollama", "crit", COLOUR_CRIT),
            ("root-disk", "warn", COLOUR_WARN),
            ("gpu", "unknown", COLOUR_UNKNOWN),
            ("memory", "ok", COLOUR_OK),
        ] {
            let row = format!(
                "data-check=\"{name}\" data-status=\"{st}\" style=\"box-shadow:inset 5px 0 {col}\""
            );
            assert!(page.contains(&row), "{row} in {page}");
        }
        // Failing first, ok last.
        let at = |n: &str| page.find(&format!("data-check=\"{n}\"")).unwrap();
        assert!(
            at("ollama") < at("root-disk")
                && at("root-disk") < at("gpu")
                && at("gpu") < at("docker")
        );
        assert!(page.contains("GET /api/version: timed out after 3s"));
        assert!(
            page.contains("2026-02-17 09:57:55 UTC (2m ago)"),
            "since: {page}"
        );
        assert!(page.contains("<td>17</td><td>heal-ollama</td><td>ollama</td><td>acting</td>"));
        assert!(page.contains("restart container:ollama"));
        // The newest action first.
        assert!(
            page.find("restart container:ollama").unwrap() < page.find("unload-models").unwrap()
        );
        assert!(page.contains("<b id=\"update-state\">gating</b> (a run is in progress)"));
        assert!(page.contains("arasul 2.4.1 at /media/usb/arasul-2.4.1.vigil"));
        assert!(page.contains("<b>Maintenance mode</b>: actions are suspended until 2026-02-17 12:00:00 UTC — swapping the SSD"));
        assert!(page.contains("up 1h 0m"), "{page}");
        // Nothing to load: no script, no link, no image.
        for tag in ["<script", "<link", "<img", "src=", "href="] {
            assert!(!page.contains(tag), "{tag}");
        }
    }

    #[test]
    fn what_comes_from_outside_is_escaped() {
        let mut s = typical(4);
        let evil = "<script>alert('x')</script>\"><img src=x onerror=alert(1)>&amp;";
        s.checks[0] = check("web", "http", Status::Crit, evil);
        s.maintenance = true;
        s.maintenance_reason = Some("</p><script>".into());
        s.update_offered = Some("<b>evil</b>".into());
        Arc::make_mut(&mut s.recent_actions)[0].result = "failed: <iframe>".into();
        let page = render(&s, NOW);
        for bad in ["<script", "<img", "<iframe", "<b>evil", "onerror=alert(1)>"] {
            assert!(!page.contains(bad), "{bad} unescaped in {page}");
        }
        assert!(page.contains("&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;&quot;&gt;&lt;img src=x onerror=alert(1)&gt;&amp;amp;"));
        assert_eq!(escape("a&b<c>d\"e'f"), "a&amp;b&lt;c&gt;d&quot;e&#39;f");
    }

    #[test]
    fn an_idle_box_says_so() {
        let mut s = Snapshot::starting(NOW.wall);
        let page = render(&s, NOW);
        assert!(page.contains("No checks yet."));
        assert!(page.contains("<p class=\"none\" id=\"incidents\">None.</p>"));
        assert!(page.contains("None since vigild started."));
        assert!(page.contains("<b id=\"update-state\">idle</b> (no update running)"));
        assert!(!page.contains("Maintenance"));
        s.checks = vec![check("a", "disk", Status::Ok, "fine")];
        s.status = Overall::Ok;
        let page = render(&s, NOW);
        assert!(page.contains(&format!(
            "data-status=\"ok\" style=\"background:{COLOUR_OK}\""
        )));
        assert!(!page.contains(COLOUR_CRIT), "no red on a healthy page");
    }

    #[test]
    fn the_response_is_html_uncached_and_locked_down() {
        let r = response(&typical(3), NOW);
        assert_eq!(r.status(), StatusCode::OK);
        let h = r.headers();
        assert_eq!(h[CONTENT_TYPE], "text/html; charset=utf-8");
        assert_eq!(h[CACHE_CONTROL], "no-store");
        let csp = h[hyper::header::CONTENT_SECURITY_POLICY].to_str().unwrap();
        assert!(
            csp.starts_with("default-src 'none'; style-src 'unsafe-inline'"),
            "{csp}"
        );
        assert_eq!(h[hyper::header::X_CONTENT_TYPE_OPTIONS], "nosniff");
    }

    #[test]
    fn only_get_and_head_of_root_serve_it_and_only_when_on() {
        use crate::surface::http::answer;
        use hyper::Method;
        let s = typical(3);
        let get = |path: &str, on: bool| answer(&Method::GET, path, &s, NOW, on).status();
        assert_eq!(get("/", true), StatusCode::OK);
        assert_eq!(get("/", false), StatusCode::NOT_FOUND);
        assert_eq!(get("/index.html", true), StatusCode::NOT_FOUND);
        assert_eq!(get("/api/system/heartbeat", true), StatusCode::OK);
        let head = answer(&Method::HEAD, "/", &s, NOW, true);
        assert_eq!(head.headers()[CONTENT_TYPE], "text/html; charset=utf-8");
        let post = answer(&Method::POST, "/", &s, NOW, true).status();
        assert_eq!(post, StatusCode::METHOD_NOT_ALLOWED);
    }

    /// The size of a typical page, printed for the docs (`--nocapture`), and bounded.
    #[test]
    fn a_typical_page_is_small() {
        let page = render(&typical(20), NOW);
        if let Some(to) = std::env::var_os("VIGIL_STATUS_PAGE_HTML") {
            // How docs/status-page.png is made: this page, in Chromium at 1000×800.
            std::fs::write(to, render(&typical(8), NOW)).unwrap();
        }
        println!(
            "status page with 20 checks, 1 incident, 2 actions: {} bytes",
            page.len()
        );
        assert!(page.len() < 16 * 1024, "{} bytes", page.len());
        let big = render(&typical(200), NOW);
        println!("status page with 200 checks: {} bytes", big.len());
        assert!(big.len() < 128 * 1024, "{} bytes", big.len());
    }
}
