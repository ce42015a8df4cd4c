//! vigil-docker-proxy against the real dockerd: every call vigild makes works through it (a
//! real vigild watching and healing containers, vigild's own actuators and update image
//! steps), and everything else is refused with 403 and never reaches dockerd: exec, create,
//! build, commit, push, plugins, volumes, delete, attach, also with encoded or `..` paths,
//! API-version prefixes, odd method spellings and pipelined requests. The packaged units
//! verify and score well.

mod common;
mod docker_support;

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use common::{wait_for, VigildBuilder};
use docker_support::{docker, docker_ok, inspect, require_docker, Containers, IMAGE};
use vigil::action::{Actuators, Notification, Outcome};

const DOCKER_SOCK: &str = "/var/run/docker.sock";

/// The proxy binary on a socket of its own, killed on drop.
struct Proxy {
    child: Child,
    dir: tempfile::TempDir,
}

impl Proxy {
    fn start() -> Proxy {
        Proxy::start_to(&format!("unix://{DOCKER_SOCK}"))
    }

    fn start_to(upstream: &str) -> Proxy {
        let dir = tempfile::tempdir().unwrap();
        let log = std::fs::File::create(dir.path().join("proxy.log")).unwrap();
        let child = Command::new(env!("CARGO_BIN_EXE_vigil-docker-proxy"))
            .arg("--listen")
            .arg(dir.path().join("docker.sock"))
            .args(["--upstream", upstream])
            .env_remove("LISTEN_FDS")
            .env_remove("LISTEN_PID")
            .env_remove("NOTIFY_SOCKET")
            .env_remove("JOURNAL_STREAM")
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("start vigil-docker-proxy");
        let p = Proxy { child, dir };
        wait_for(Duration::from_secs(10), "the proxy's socket", || {
            UnixStream::connect(p.socket()).ok().map(|_| ())
        });
        p
    }

    fn socket(&self) -> PathBuf {
        self.dir.path().join("docker.sock")
    }

    /// The socket as `[docker] host` names it.
    fn host(&self) -> String {
        format!("unix://{}", self.socket().display())
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("proxy.log")).unwrap_or_default()
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Writes `request` as it is and reads the whole answer (the request says `Connection: close`).
fn exchange(sock: &Path, request: &[u8]) -> String {
    let mut s = UnixStream::connect(sock).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    s.write_all(request).unwrap();
    let mut out = Vec::new();
    let _ = s.read_to_end(&mut out);
    String::from_utf8_lossy(&out).into_owned()
}

/// One request with a JSON body, closing the connection after it.
fn request(method: &str, target: &str, body: &str) -> Vec<u8> {
    format!(
        "{method} {target} HTTP/1.1\r\nHost: docker\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

/// The status codes of every response in `answer`, in order (a body that does not end in
/// a line break runs into the next status line).
fn statuses(answer: &str) -> Vec<u16> {
    answer
        .match_indices("HTTP/1.1 ")
        .filter_map(|(i, m)| answer.get(i + m.len()..i + m.len() + 3)?.parse().ok())
        .collect()
}

/// The body of a single response with a Content-Length.
fn body(answer: &str) -> &str {
    answer.split_once("\r\n\r\n").map_or("", |(_, b)| b)
}

/// Container names of this test (`docker ps -a` with a name filter).
fn containers_named(prefix: &str) -> Vec<String> {
    let out = docker(&[
        "ps",
        "-a",
        "--filter",
        &format!("name={prefix}"),
        "--format",
        "{{.Names}}",
    ]);
    out.lines()
        .map(String::from)
        .filter(|l| !l.is_empty())
        .collect()
}

#[test]
fn vigild_watches_and_heals_containers_through_the_proxy() {
    require_docker();
    let proxy = Proxy::start();
    let mut cs = Containers::new("proxy-heal");
    let prefix = cs.prefix.clone();
    let web = cs.sleeper("web", &[]);
    // `every = "60s"`: a restart within seconds of the kill came from the /events stream.
    let policy = format!(
        r#"
[[check]]
name = "stack"
probe = "containers"
match = ["{prefix}-*"]
every = "60s"

[[check]]
name = "web"
probe = "container"
container = "{web}"
every = "60s"

[[rule]]
name = "heal-stack"
on = "container:{prefix}-*"
when = "crit"
for = "0s"
do = ["restart {{target}}"]
cooldown = "0s"
limit = "3 per 1h"

[[check]]
name = "prune-trigger"
probe = "exec"
command = ["/bin/false"]
every = "1s"

[[rule]]
name = "prune"
on = "prune-trigger"
when = "crit"
for = "0s"
do = ["prune docker"]
cooldown = "1h"
limit = "1 per 1h"
"#
    );
    let mut b = VigildBuilder::new().policy(&policy);
    b.settings = format!("[docker]\nhost = \"{}\"\n", proxy.host());
    let v = b.start();
    wait_for(Duration::from_secs(20), "the container checks ok", || {
        let l = v.log();
        (l.contains(&format!("check container:{web} unknown → ok"))
            && l.contains("check web unknown → ok"))
        .then_some(())
    });
    wait_for(
        Duration::from_secs(20),
        "prune docker through the proxy",
        || {
            v.log()
                .contains("`prune docker` — done: removed")
                .then_some(())
        },
    );
    let before = inspect(&web, "{{.State.StartedAt}}");
    docker(&["kill", &web]);
    wait_for(
        Duration::from_secs(20),
        "vigild to restart the container",
        || {
            v.log()
                .contains(&format!(
                    "`restart container:{web}` — done: restarted container {web}"
                ))
                .then_some(())
        },
    );
    wait_for(
        Duration::from_secs(20),
        "the container running again",
        || {
            (inspect(&web, "{{.State.Running}}") == "true"
                && inspect(&web, "{{.State.StartedAt}}") != before)
                .then_some(())
        },
    );
    let log = v.log();
    assert!(
        // vigild says "HTTP 403" for a refused call (`sys::docker::error_text`);
        // a bare "403" matches timestamps (13:26:46.942403Z).
        !log.contains("unreachable") && !log.contains("HTTP 403"),
        "vigild had trouble with the proxy:\n{log}"
    );
    assert!(
        !proxy.log().contains("refused"),
        "the proxy refused a call vigild made:\n{}",
        proxy.log()
    );
    drop(cs);
}

#[tokio::test]
async fn vigilds_actuators_and_update_image_steps_work_through_the_proxy() {
    require_docker();
    let proxy = Proxy::start();
    let mut cs = Containers::new("proxy-act");
    let name = cs.sleeper("c", &[]);
    let acts = Actuators {
        docker_host: Some(proxy.host()),
        ..Actuators::default()
    };
    let note = Notification::default();
    let run = |text: &str| vigil::core::action::parse(text).unwrap();
    for (action, done, running) in [
        ("restart", "restarted", "true"),
        ("stop", "stopped", "false"),
        ("start", "started", "true"),
    ] {
        let out = acts
            .run(&run(&format!("{action} container:{name}")), &note)
            .await;
        assert_eq!(out, Outcome::Done(format!("{done} container {name}")));
        assert_eq!(inspect(&name, "{{.State.Running}}"), running);
    }

    // A dangling image of this test's own, pruned by `prune docker` through the proxy.
    let work = tempfile::tempdir().unwrap();
    let dangling_tag = format!("vigil-test/{}-dangling:1", cs.prefix);
    let mut ids = Vec::new();
    for round in 0..2 {
        let root = work.path().join(format!("root{round}"));
        std::fs::create_dir_all(&root).unwrap();
        std::fs::write(root.join("f"), format!("{} {round}", cs.prefix)).unwrap();
        let tar = work.path().join(format!("layer{round}.tar"));
        let ok = Command::new("tar")
            .arg("-C")
            .arg(&root)
            .arg("-cf")
            .arg(&tar)
            .arg(".")
            .status()
            .unwrap();
        assert!(ok.success());
        ids.push(docker(&["import", tar.to_str().unwrap(), &dangling_tag]));
    }
    let out = acts.run(&run("prune docker"), &note).await;
    assert!(
        matches!(out, Outcome::Done(ref s) if s.starts_with("removed ")),
        "{out:?}"
    );
    assert!(
        !docker_ok(&["image", "inspect", &ids[0]]),
        "the dangling image is gone"
    );
    docker(&["rmi", &dangling_tag]);

    // The update engine's image steps: load (a streamed upload), inspect, untag, tag, info.
    let tag = format!("vigil-test/{}:1", cs.prefix);
    docker(&["tag", IMAGE, &tag]);
    let archive = work.path().join("image.tar");
    docker(&["save", "-o", archive.to_str().unwrap(), &tag]);
    docker(&["rmi", &tag]);
    let id = docker(&["image", "inspect", "--format", "{{.Id}}", IMAGE]);
    let client = vigil::sys::docker::connect(&proxy.host())
        .unwrap()
        .negotiate_version()
        .await
        .expect("API version negotiation through the proxy");
    use vigil::update::images;
    let tags = images::tags_in_archive(&archive).unwrap();
    assert_eq!(tags, std::slice::from_ref(&tag));
    let before = images::tag_ids(&client, &tags).await.unwrap();
    assert_eq!(before[&tag], None);
    images::load(&client, &archive).await.unwrap();
    assert_eq!(
        images::image_id(&client, &tag).await.unwrap(),
        Some(id.clone())
    );
    images::restore(&client, &before).await.unwrap();
    assert!(
        !docker_ok(&["image", "inspect", &tag]),
        "untagged through the proxy"
    );
    let back = std::collections::BTreeMap::from([(tag.clone(), Some(id.clone()))]);
    images::restore(&client, &back).await.unwrap();
    assert_eq!(
        docker(&["image", "inspect", "--format", "{{.Id}}", &tag]),
        id
    );
    docker(&["rmi", &tag]);
    let root = images::docker_root(&client).await.unwrap();
    assert!(root.is_absolute(), "{root:?}");

    // What `vigilctl support-bundle` and the probes read: list and inspect.
    let list = client
        .list_containers(Some(
            bollard::query_parameters::ListContainersOptionsBuilder::default()
                .all(true)
                .build(),
        ))
        .await
        .unwrap();
    assert!(list
        .iter()
        .any(|c| c.names.iter().flatten().any(|n| n == &format!("/{name}"))));
    assert!(
        !proxy.log().contains("refused"),
        "the proxy refused a call vigild makes:\n{}",
        proxy.log()
    );
    drop(cs);
}

#[test]
fn everything_else_is_refused_and_never_reaches_dockerd() {
    require_docker();
    let proxy = Proxy::start();
    let mut cs = Containers::new("proxy-deny");
    let prefix = cs.prefix.clone();
    let target = cs.sleeper("target", &[]);
    let id = inspect(&target, "{{.Id}}");
    let exec_ids = || inspect(&target, "{{len .ExecIDs}}");
    let made = |what: &str| format!("{prefix}-{what}");
    let sock = proxy.socket();

    let create = format!(r#"{{"Image":"{IMAGE}","Cmd":["sleep","1000"]}}"#);
    let exec = r#"{"Cmd":["touch","/pwned"],"AttachStdout":false}"#;
    let mut refused: Vec<(String, String, String)> = Vec::new();
    let mut add = |m: &str, t: String, b: &str| refused.push((m.into(), t, b.into()));
    for (i, t) in [
        "/containers/create",
        "/v1.43/containers/create",
        "/v1.41/containers/create",
        "//containers/create",
        "/containers/%63reate",
        "/containers/json/../create",
        "/containers/./create",
        "/containers/create/",
        "/v1.43//containers/create",
    ]
    .iter()
    .enumerate()
    {
        add(
            "POST",
            format!("{t}?name={}", made(&format!("c{i}"))),
            &create,
        );
    }
    for m in ["post", "Post", "pOST"] {
        add(m, format!("/containers/create?name={}", made(m)), &create);
    }
    for t in [
        format!("/containers/{id}/exec"),
        format!("/containers/{target}/exec"),
        format!("/v1.43/containers/{id}/exec"),
        format!("/containers/{id}/%65xec"),
        format!("/containers/{id}/%65%78%65%63"),
        format!("/containers/json/../{id}/exec"),
        format!("/containers/%2e%2e/{id}/exec"),
        format!("/containers/%2E%2E/containers/{id}/exec"),
        format!("/containers/json%2F..%2F{id}%2Fexec"),
        format!("/containers/{id}/exec?x=/json"),
        format!("/containers/{id}/exec?/restart"),
        format!("//containers/{id}/exec"),
        format!("/containers/{id}//exec"),
        format!("/containers/{id}/exec/"),
        format!("/containers/./{id}/exec"),
        format!("/containers/{id}/./exec"),
        format!("/containers/{id}/restart/../exec"),
        format!("http://docker/containers/{id}/exec"),
    ] {
        add("POST", t, exec);
    }
    add("post", format!("/containers/{id}/exec"), exec);
    add("Post", format!("/v1.43/containers/{id}/exec"), exec);
    add("POST", format!("/build?t={}", made("built")), "");
    add("POST", format!("/v1.43/build?t={}", made("built")), "");
    add(
        "POST",
        format!("/commit?container={id}&repo={}", made("commit")),
        "{}",
    );
    add("POST", format!("/images/{IMAGE}/push"), "");
    add("POST", format!("/images/{}/push", made("push")), "");
    add("GET", "/plugins".into(), "");
    add("POST", "/plugins/pull?remote=x".into(), "[]");
    add("GET", "/volumes".into(), "");
    add(
        "POST",
        "/volumes/create".into(),
        &format!(r#"{{"Name":"{}"}}"#, made("vol")),
    );
    add(
        "POST",
        "/v1.43/volumes/create".into(),
        &format!(r#"{{"Name":"{}"}}"#, made("vol2")),
    );
    add("DELETE", format!("/containers/{id}?force=true"), "");
    add(
        "DELETE",
        format!("/v1.43/containers/{target}?force=true"),
        "",
    );
    add(
        "POST",
        format!("/containers/{id}/attach?stream=1&stdin=1"),
        "",
    );
    add("POST", format!("/containers/{id}/kill"), "");
    add(
        "POST",
        format!("/containers/{id}/update"),
        r#"{"Memory":6000000}"#,
    );
    add("GET", format!("/containers/{id}/archive?path=/etc"), "");
    add("GET", "/images/json".into(), "");
    add("GET", "/_ping".into(), "");
    add("POST", "/containers/prune".into(), "");

    for (m, t, b) in &refused {
        let answer = exchange(&sock, &request(m, t, b));
        assert_eq!(statuses(&answer), [403], "{m} {t}:\n{answer}");
        let v: serde_json::Value = serde_json::from_str(body(&answer))
            .unwrap_or_else(|e| panic!("{m} {t}: no JSON body ({e}):\n{answer}"));
        let path = t.split('?').next().unwrap();
        assert_eq!(
            v["message"],
            format!("vigil-docker-proxy: {m} {path} is not allowed"),
            "{answer}"
        );
    }

    // An exec made straight on dockerd, its start refused through the proxy.
    let direct = exchange(
        Path::new(DOCKER_SOCK),
        &request("POST", &format!("/containers/{id}/exec"), exec),
    );
    assert_eq!(statuses(&direct), [201], "{direct}");
    let exec_id = direct
        .split("\"Id\":\"")
        .nth(1)
        .and_then(|s| s.split('"').next())
        .unwrap_or_else(|| panic!("no exec id in {direct}"))
        .to_string();
    for t in [
        format!("/exec/{exec_id}/start"),
        format!("/v1.43/exec/{exec_id}/start"),
        format!("/exec/{exec_id}/%73tart"),
        format!("/containers/../exec/{exec_id}/start"),
    ] {
        let answer = exchange(&sock, &request("POST", &t, r#"{"Detach":true}"#));
        assert_eq!(statuses(&answer), [403], "POST {t}:\n{answer}");
    }
    let state = exchange(
        Path::new(DOCKER_SOCK),
        &request("GET", &format!("/exec/{exec_id}/json"), ""),
    );
    assert!(state.contains("\"Running\":false"), "{state}");
    assert!(state.contains("\"Pid\":0"), "the exec never ran: {state}");

    // Smuggling: a refused request pipelined after an allowed one is still refused, and a
    // body that looks like a request stays a body.
    let mut pipelined = b"GET /version HTTP/1.1\r\nHost: docker\r\n\r\n".to_vec();
    pipelined.extend(request(
        "POST",
        &format!("/containers/create?name={}", made("pipelined")),
        &create,
    ));
    let answer = exchange(&sock, &pipelined);
    assert_eq!(statuses(&answer), [200, 403], "{answer}");
    let inner = String::from_utf8(request(
        "POST",
        &format!("/containers/create?name={}", made("smuggled")),
        &create,
    ))
    .unwrap();
    let smuggle = format!(
        "POST /containers/{id}/start HTTP/1.1\r\nHost: docker\r\nContent-Length: 4\r\n\
         Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n{inner}"
    );
    let answer = exchange(&sock, smuggle.as_bytes());
    assert!(
        !statuses(&answer).contains(&201),
        "a smuggled create answered 201:\n{answer}"
    );

    // Nothing happened in dockerd.
    assert_eq!(
        containers_named(&prefix),
        std::slice::from_ref(&target),
        "no container was created"
    );
    assert_eq!(
        exec_ids(),
        "1",
        "only the exec made straight on dockerd exists"
    );
    assert_eq!(inspect(&target, "{{.State.Running}}"), "true");
    for image in [made("built"), made("commit")] {
        assert!(!docker_ok(&["image", "inspect", &image]), "{image} exists");
    }
    for vol in [made("vol"), made("vol2")] {
        assert!(
            !docker_ok(&["volume", "inspect", &vol]),
            "volume {vol} exists"
        );
    }
    assert!(
        !docker_ok(&["exec", &target, "test", "-e", "/pwned"]),
        "an exec ran in the container"
    );

    // The same tricks straight on dockerd do reach its routes: the refusals above mattered.
    let direct = exchange(
        Path::new(DOCKER_SOCK),
        &request("POST", &format!("/containers/{id}/%65xec"), exec),
    );
    assert_eq!(statuses(&direct), [201], "dockerd decodes %65xec: {direct}");

    // Refusals are logged, each method and path once (and at most 20 lines a minute).
    let log = proxy.log();
    assert!(
        log.contains(&format!("refused POST /containers/{id}/%65xec")),
        "{log}"
    );
    let n = log.matches("refused POST /containers/create?").count();
    assert_eq!(n, 1, "{log}");
    let lines = log.lines().filter(|l| l.contains(" refused ")).count();
    assert_eq!(lines, 20, "{log}");
    drop(cs);
}

#[test]
fn allowed_reads_answer_and_events_stream_through_the_proxy() {
    require_docker();
    let proxy = Proxy::start();
    let mut cs = Containers::new("proxy-read");
    let name = cs.sleeper("c", &[]);
    for t in ["/version", "/v1.41/info", "/containers/json?all=1"] {
        let answer = exchange(&proxy.socket(), &request("GET", t, ""));
        assert_eq!(statuses(&answer), [200], "GET {t}:\n{answer}");
    }
    let answer = exchange(
        &proxy.socket(),
        &request("GET", &format!("/containers/{name}/json"), ""),
    );
    assert!(answer.contains("\"Running\":true"), "{answer}");
    // /events: a long-lived response, streamed as dockerd writes it.
    let mut s = UnixStream::connect(proxy.socket()).unwrap();
    let filter = format!("%7B%22container%22%3A%5B%22{name}%22%5D%7D");
    write!(
        s,
        "GET /events?filters={filter} HTTP/1.1\r\nHost: docker\r\n\r\n"
    )
    .unwrap();
    s.set_read_timeout(Some(Duration::from_secs(1))).unwrap();
    std::thread::sleep(Duration::from_millis(300));
    docker(&["kill", &name]);
    let mut seen = String::new();
    let start = std::time::Instant::now();
    while !seen.contains("\"die\"") && start.elapsed() < Duration::from_secs(15) {
        let mut buf = [0u8; 4096];
        if let Ok(n) = s.read(&mut buf) {
            seen.push_str(&String::from_utf8_lossy(&buf[..n]));
        }
    }
    assert!(
        seen.contains("\"die\""),
        "no die event through the proxy:\n{seen}"
    );
    drop(cs);
}

#[test]
fn an_unreachable_engine_is_a_502_with_a_message() {
    let proxy = Proxy::start_to("unix:///nonexistent/docker.sock");
    let answer = exchange(&proxy.socket(), &request("GET", "/version", ""));
    assert_eq!(statuses(&answer), [502], "{answer}");
    let v: serde_json::Value = serde_json::from_str(body(&answer)).unwrap();
    assert!(
        v["message"]
            .as_str()
            .unwrap()
            .contains("cannot reach the Docker engine at /nonexistent/docker.sock"),
        "{v}"
    );
    let bad = Command::new(env!("CARGO_BIN_EXE_vigil-docker-proxy"))
        .args(["--upstream", "tcp://127.0.0.1:2375"])
        .output()
        .unwrap();
    assert_eq!(bad.status.code(), Some(2));
    let none = Command::new(env!("CARGO_BIN_EXE_vigil-docker-proxy"))
        .env_remove("LISTEN_FDS")
        .output()
        .unwrap();
    assert_eq!(none.status.code(), Some(2), "no socket to listen on");
}

/// The units with the built binary in place of the packaged path.
fn prepared_units() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let service = std::fs::read_to_string("units/vigil-docker-proxy.service")
        .unwrap()
        .replace(
            "/usr/libexec/vigil/vigil-docker-proxy",
            env!("CARGO_BIN_EXE_vigil-docker-proxy"),
        );
    std::fs::write(dir.path().join("vigil-docker-proxy.service"), service).unwrap();
    std::fs::copy(
        "units/vigil-docker-proxy.socket",
        dir.path().join("vigil-docker-proxy.socket"),
    )
    .unwrap();
    dir
}

#[test]
fn the_units_verify_and_the_proxy_is_sandboxed_tightly() {
    let dir = prepared_units();
    let out = Command::new("systemd-analyze")
        .args([
            "verify",
            "--man=no",
            "./vigil-docker-proxy.service",
            "./vigil-docker-proxy.socket",
        ])
        .current_dir(dir.path())
        .output()
        .expect("systemd-analyze (package systemd) must be installed");
    let text =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success() && text.trim().is_empty(), "{text}");
    let out = Command::new("systemd-analyze")
        .args([
            "security",
            "--offline=yes",
            "--no-pager",
            "./vigil-docker-proxy.service",
        ])
        .current_dir(dir.path())
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let score: f64 = text
        .lines()
        .find_map(|l| {
            l.split("Overall exposure level for vigil-docker-proxy.service: ")
                .nth(1)
        })
        .and_then(|s| s.split_whitespace().next())
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no score in:\n{text}"));
    eprintln!("systemd-analyze security vigil-docker-proxy.service (offline): {score}");
    assert!(score <= 1.0, "exposure {score} > 1.0:\n{text}");

    // vigild talks to the proxy's socket and has no docker group.
    let socket = std::fs::read_to_string("units/vigil-docker-proxy.socket").unwrap();
    let path = socket
        .lines()
        .find_map(|l| l.strip_prefix("ListenStream="))
        .unwrap();
    let settings = std::fs::read_to_string("packaging/vigil.toml").unwrap();
    assert!(
        settings.contains(&format!("host = \"unix://{path}\"")),
        "packaging/vigil.toml does not point [docker] host at {path}"
    );
    for (l, want) in [
        ("SocketGroup=", "vigil"),
        ("SocketMode=", "0660"),
        ("SocketUser=", "root"),
    ] {
        assert!(
            socket.lines().any(|x| x == format!("{l}{want}")),
            "{l}{want}"
        );
    }
    let vigild = std::fs::read_to_string("units/vigild.service").unwrap();
    assert!(
        !vigild
            .lines()
            .any(|l| l.trim_start().starts_with("SupplementaryGroups=")),
        "vigild.service still has supplementary groups"
    );
    let service = std::fs::read_to_string("units/vigil-docker-proxy.service").unwrap();
    assert!(service.lines().any(|l| l == "SupplementaryGroups=docker"));
}
