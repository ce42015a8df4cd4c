//! The D-Bus surface against a real dbus-daemon: introspection equals the checked-in XML,
//! properties and methods answer, and a check's change is signalled.

mod common;
mod faults_support;
mod reliability;

use std::time::{Duration, Instant};

use common::*;
use futures_util::StreamExt;

const NOBODY: u32 = 65534;
const MANAGER: &str = "/org/vigil/Vigil1";
const MEM_CHECK: &str = "/org/vigil/Vigil1/check/mem";

/// The `<interface name="NAME">…</interface>` element of an introspection document, with
/// blank lines and indentation removed.
fn interface_xml(doc: &str, name: &str) -> String {
    let start = doc
        .find(&format!("<interface name=\"{name}\">"))
        .unwrap_or_else(|| panic!("no interface {name} in:\n{doc}"));
    let end = doc[start..].find("</interface>").unwrap() + start + "</interface>".len();
    doc[start..end]
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect::<Vec<_>>()
        .join("\n")
}

fn checked_in(file: &str, live: &str) {
    let path = std::path::Path::new("dbus").join(file);
    let name = file.trim_end_matches(".xml");
    if std::env::var_os("VIGIL_BLESS").is_some() {
        let doc = format!(
            "<!DOCTYPE node PUBLIC \"-//freedesktop//DTD D-BUS Object Introspection 1.0//EN\"\n \"http://www.freedesktop.org/standards/dbus/1.0/introspect.dtd\">\n<!-- Generated from the running vigild by `VIGIL_BLESS=1 cargo test --test dbus`; do not edit. -->\n<node>\n{}\n</node>\n",
            live
        );
        std::fs::write(&path, doc).unwrap();
    }
    let file_doc = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("{}: {e} (generate with VIGIL_BLESS=1)", path.display()));
    assert_eq!(
        interface_xml(&file_doc, name),
        live,
        "{} differs from the running object; regenerate with VIGIL_BLESS=1 cargo test --test dbus",
        path.display()
    );
}

#[test]
fn introspection_equals_the_checked_in_xml() {
    let bus = Bus::start();
    let v = VigildBuilder::new().bus(&bus).start();
    wait_for(Duration::from_secs(10), "check object", || {
        bus.busctl_raw(&["introspect", "org.vigil.Vigil1", MEM_CHECK])
            .status
            .success()
            .then_some(())
    });
    let manager = bus.busctl(&["introspect", "--xml-interface", "org.vigil.Vigil1", MANAGER]);
    checked_in(
        "org.vigil.Vigil1.Manager.xml",
        &interface_xml(&manager, "org.vigil.Vigil1.Manager"),
    );
    let check = bus.busctl(&[
        "introspect",
        "--xml-interface",
        "org.vigil.Vigil1",
        MEM_CHECK,
    ]);
    checked_in(
        "org.vigil.Vigil1.Check.xml",
        &interface_xml(&check, "org.vigil.Vigil1.Check"),
    );
    drop(v);
}

/// A bus that is not there yet at start (or refuses the name, as the system bus does right
/// after a package install) is tried again in the background, and once vigild has it, the
/// check objects are there.
#[test]
fn takes_the_name_when_the_bus_comes_later() {
    let dir = tempfile::tempdir().unwrap();
    let address = format!("unix:path={}", dir.path().join("bus").display());
    let v = VigildBuilder::new()
        .env("DBUS_SYSTEM_BUS_ADDRESS", &address)
        .start();
    wait_for(
        Duration::from_secs(10),
        "vigild to go on without D-Bus",
        || {
            v.log()
                .contains("running without D-Bus for now")
                .then_some(())
        },
    );
    assert!(
        v.heartbeat()["status"].is_string(),
        "the heartbeat answers meanwhile"
    );
    let bus = Bus::start_in(dir);
    let tree = wait_for(Duration::from_secs(15), "the name on the late bus", || {
        let out = bus.busctl_raw(&["tree", "--list", "org.vigil.Vigil1"]);
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        text.contains("/org/vigil/Vigil1/check/").then_some(text)
    });
    assert!(tree.lines().any(|l| l.trim() == MEM_CHECK), "{tree}");
    assert!(v.log().contains("D-Bus is there now"), "{}", v.log());
    v.wait_dbus_status(&bus, "ok");
}

#[test]
fn properties_methods_and_tree() {
    let bus = Bus::start();
    let v = VigildBuilder::new().bus(&bus).start();
    v.wait_dbus_status(&bus, "ok");
    let get = |path: &str, iface: &str, prop: &str| {
        bus.busctl(&["get-property", "org.vigil.Vigil1", path, iface, prop])
            .trim()
            .to_string()
    };
    let m = "org.vigil.Vigil1.Manager";
    assert_eq!(
        get(MANAGER, m, "Version"),
        format!("s \"{}\"", env!("CARGO_PKG_VERSION"))
    );
    assert_eq!(get(MANAGER, m, "Status"), "s \"ok\"");
    assert_eq!(get(MANAGER, m, "Maintenance"), "b false");
    assert_eq!(get(MANAGER, m, "UpdateState"), "s \"idle\"");
    assert_eq!(get(MANAGER, m, "OpenIncidents"), "u 0");
    let started: u64 = get(MANAGER, m, "StartedAt")
        .trim_start_matches("t ")
        .parse()
        .unwrap();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_micros() as u64;
    assert!(
        started <= now && now - started < 120_000_000,
        "StartedAt {started} vs now {now}"
    );

    let c = "org.vigil.Vigil1.Check";
    assert_eq!(get(MEM_CHECK, c, "Name"), "s \"mem\"");
    assert_eq!(get(MEM_CHECK, c, "Probe"), "s \"memory\"");
    assert_eq!(get(MEM_CHECK, c, "Status"), "s \"ok\"");
    assert!(get(MEM_CHECK, c, "Detail").contains("80.0% available"));

    let tree = bus.busctl(&["tree", "--list", "org.vigil.Vigil1"]);
    assert!(tree.lines().any(|l| l.trim() == MEM_CHECK), "{tree}");

    let list = bus.busctl(&["call", "org.vigil.Vigil1", MANAGER, m, "ListChecks"]);
    assert!(
        list.starts_with("a(sssx) 1 \"mem\" \"memory\" \"ok\" "),
        "{list}"
    );

    let out = bus.busctl(&[
        "--json=short",
        "call",
        "org.vigil.Vigil1",
        MANAGER,
        m,
        "GetStatus",
    ]);
    let reply: serde_json::Value = serde_json::from_str(&out).unwrap();
    let doc: serde_json::Value = serde_json::from_str(reply["data"][0].as_str().unwrap()).unwrap();
    assert_eq!(doc["status"], "ok");
    assert_eq!(doc["checks"][0]["name"], "mem");
    assert_eq!(doc["checks"][0]["metrics"]["available"], 80.0);

    let out = bus.busctl(&[
        "--json=short",
        "call",
        "org.vigil.Vigil1",
        MANAGER,
        m,
        "RunCheck",
        "s",
        "mem",
    ]);
    let reply: serde_json::Value = serde_json::from_str(&out).unwrap();
    let state: serde_json::Value =
        serde_json::from_str(reply["data"][0].as_str().unwrap()).unwrap();
    assert_eq!(state["name"], "mem");
    let bad = bus.busctl_raw(&[
        "call",
        "org.vigil.Vigil1",
        MANAGER,
        m,
        "RunCheck",
        "s",
        "nope",
    ]);
    assert!(!bad.status.success());
    assert!(
        String::from_utf8_lossy(&bad.stderr).contains("no check named"),
        "{bad:?}"
    );
    drop(v);
}

/// The update methods on a box with nothing to update: clear refusals, an idle document.
#[test]
fn update_methods_answer_and_refuse_clearly_with_nothing_to_do() {
    let bus = Bus::start();
    let v = VigildBuilder::new().bus(&bus).start();
    v.wait_dbus_status(&bus, "ok");
    let m = "org.vigil.Vigil1.Manager";
    for (args, says) in [
        (
            vec!["ApplyUpdate", "s", "/nonexistent/x.vigil"],
            "cannot read the trusted keys in /etc/vigil/keys",
        ),
        (
            vec!["ApplyUpdate", "s", "x.vigil"],
            "give the bundle's absolute path",
        ),
        (vec!["Rollback"], "no committed update to roll back"),
    ] {
        let mut full = vec!["call", "org.vigil.Vigil1", MANAGER, m];
        full.extend(args.iter().copied());
        let out = bus.busctl_raw(&full);
        assert!(!out.status.success(), "{args:?} should fail");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(says), "{args:?}: {err}");
    }
    let out = bus.busctl(&[
        "call",
        "org.vigil.Vigil1",
        MANAGER,
        m,
        "GetUpdate",
        "--json=short",
    ]);
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    let doc: serde_json::Value = serde_json::from_str(v["data"][0].as_str().unwrap()).unwrap();
    assert_eq!(doc["state"], "idle", "{doc}");
    assert!(
        doc["run"].is_null() && doc["history"].as_array().unwrap().is_empty(),
        "{doc}"
    );
    let state = bus.busctl(&[
        "get-property",
        "org.vigil.Vigil1",
        MANAGER,
        m,
        "UpdateState",
    ]);
    assert_eq!(state.trim(), "s \"idle\"");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_check_change_emits_check_changed_and_properties_changed() {
    let bus = Bus::start();
    let v = VigildBuilder::new().bus(&bus).start();
    v.wait_dbus_status(&bus, "ok");
    let conn = zbus::connection::Builder::address(bus.address.as_str())
        .build()
        .await
        .unwrap();
    let manager = zbus::Proxy::new(
        &conn,
        "org.vigil.Vigil1",
        MANAGER,
        "org.vigil.Vigil1.Manager",
    )
    .await
    .unwrap();
    let mut changed = manager.receive_signal("CheckChanged").await.unwrap();
    let check_props = zbus::fdo::PropertiesProxy::builder(&conn)
        .destination("org.vigil.Vigil1")
        .path(MEM_CHECK)
        .build()
        .await
        .unwrap();
    let mut check_pc = check_props.receive_properties_changed().await.unwrap();
    let mgr_props = zbus::fdo::PropertiesProxy::builder(&conn)
        .destination("org.vigil.Vigil1")
        .path(MANAGER)
        .build()
        .await
        .unwrap();
    let mut mgr_pc = mgr_props.receive_properties_changed().await.unwrap();

    // 5% available: below the crit threshold of 10%.
    v.set_available_kb(50_000);

    let sig = tokio::time::timeout(Duration::from_secs(10), changed.next())
        .await
        .expect("CheckChanged")
        .unwrap();
    let (name, from, to): (String, String, String) = sig.body().deserialize().unwrap();
    assert_eq!(
        (name.as_str(), from.as_str(), to.as_str()),
        ("mem", "ok", "crit")
    );

    let pc = tokio::time::timeout(Duration::from_secs(10), check_pc.next())
        .await
        .expect("check PropertiesChanged")
        .unwrap();
    let args = pc.args().unwrap();
    assert_eq!(args.interface_name.as_str(), "org.vigil.Vigil1.Check");
    let status: String = args.changed_properties["Status"]
        .clone()
        .try_into()
        .unwrap();
    assert_eq!(status, "crit");

    let pc = tokio::time::timeout(Duration::from_secs(10), mgr_pc.next())
        .await
        .expect("manager PropertiesChanged")
        .unwrap();
    let args = pc.args().unwrap();
    let status: String = args.changed_properties["Status"]
        .clone()
        .try_into()
        .unwrap();
    assert_eq!(status, "critical");
    drop(v);
}

#[test]
fn reload_over_dbus_refuses_a_bad_set_and_takes_a_good_one() {
    let bus = Bus::start();
    let v = VigildBuilder::new().bus(&bus).start();
    v.wait_status("ok");
    let m = "org.vigil.Vigil1.Manager";
    std::fs::write(
        v.policies_dir().join("zz-bad.toml"),
        "[[check]]\nname = \"disk\"\nprobe = \"disk\"\npath = \"/\"\nwarn = \"used > 85\"\n",
    )
    .unwrap();
    let out = bus.busctl_raw(&["call", "org.vigil.Vigil1", MANAGER, m, "Reload"]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("zz-bad.toml:5:"),
        "error should name file:line:col: {err}"
    );
    // The old set is still served.
    let tree = bus.busctl(&["tree", "--list", "org.vigil.Vigil1"]);
    assert!(
        tree.contains(MEM_CHECK) && !tree.contains("check/disk"),
        "{tree}"
    );
    assert!(v.log().contains("reload refused"), "{}", v.log());

    std::fs::write(
        v.policies_dir().join("zz-bad.toml"),
        "[[check]]\nname = \"disk\"\nprobe = \"disk\"\npath = \"/\"\nwarn = \"used > 99.9%\"\n",
    )
    .unwrap();
    bus.busctl(&["call", "org.vigil.Vigil1", MANAGER, m, "Reload"]);
    wait_for(Duration::from_secs(10), "the new check's object", || {
        bus.busctl(&["tree", "--list", "org.vigil.Vigil1"])
            .contains("/org/vigil/Vigil1/check/disk")
            .then_some(())
    });
    drop(v);
}

#[test]
fn mutating_calls_are_refused_for_other_users() {
    // A bus that lets any local user connect and call, so only vigild's own check decides.
    let bus = Bus::start_with_config(
        "<busconfig><type>session</type><listen>@LISTEN@</listen><auth>EXTERNAL</auth>\
         <policy context=\"default\"><allow user=\"*\"/><allow own=\"*\"/><allow send_destination=\"*\"/>\
         <allow receive_sender=\"*\"/><allow send_type=\"method_call\"/></policy></busconfig>",
    );
    let v = VigildBuilder::new().bus(&bus).start();
    v.wait_status("ok");
    let (ok, text) = bus.dbus_send_as(NOBODY, "Reload", &[]);
    assert!(!ok);
    assert!(
        text.contains("org.freedesktop.DBus.Error.AccessDenied: Reload needs root or membership in the vigil-admin group (caller uid 65534)"),
        "{text}"
    );
    let (ok, text) = bus.dbus_send_as(
        NOBODY,
        "SetMaintenance",
        &["boolean:true", "uint64:60", "string:x"],
    );
    assert!(!ok && text.contains("SetMaintenance needs root"), "{text}");
    // Reading stays open to everyone.
    let (ok, text) = bus.dbus_send_as(NOBODY, "GetStatus", &[]);
    assert!(ok && text.contains("\"status\""), "{text}");
    let (ok, text) = bus.dbus_send_as(0, "Reload", &[]);
    assert!(ok, "root may reload: {text}");
    drop(v);
}

#[test]
fn the_system_bus_policy_lets_everyone_read_and_only_privileged_callers_mutate() {
    // The real policy file, with its owner user `vigil` mapped to `daemon` (present on every
    // Debian system) so vigild runs as an unprivileged owner here.
    let dir = tempfile::tempdir().unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let policy = std::fs::read_to_string("dbus/org.vigil.Vigil1.conf")
        .unwrap()
        .replace("user=\"vigil\"", "user=\"daemon\"");
    let policy_path = dir.path().join("org.vigil.Vigil1.conf");
    std::fs::write(&policy_path, policy).unwrap();
    let conf = std::fs::read_to_string("dbus/test-system-bus.conf.in")
        .unwrap()
        .replace("@POLICY@", &policy_path.display().to_string());
    let bus = Bus::start_with_config(&conf);

    // vigild as user daemon, with a state directory it owns.
    let state = dir.path().join("state");
    std::fs::create_dir(&state).unwrap();
    assert!(std::process::Command::new("chown")
        .args(["daemon:daemon"])
        .arg(&state)
        .status()
        .unwrap()
        .success());
    // A copy in the world-readable directory: the build tree may sit under a 0700 home.
    // Copied by cp, not in this process: a child that another test thread forks while this
    // process holds the copy open for writing keeps it open until its exec, and executing
    // the copy then fails with ETXTBSY ("Text file busy").
    let exe = dir.path().join("vigild");
    assert!(std::process::Command::new("cp")
        .arg(env!("CARGO_BIN_EXE_vigild"))
        .arg(&exe)
        .status()
        .unwrap()
        .success());
    let port = free_port();
    let log = dir.path().join("vigild.log");
    let child = std::process::Command::new("setpriv")
        .args(["--reuid=daemon", "--regid=daemon", "--clear-groups"])
        .arg(&exe)
        .args(["--foreground", "--policies"])
        .arg(dir.path().join("no-policies"))
        .arg("--state-dir")
        .arg(&state)
        .args([
            "--bus",
            &bus.address,
            "--listen",
            &format!("127.0.0.1:{port}"),
        ])
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();
    struct Reap(std::process::Child);
    impl Drop for Reap {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
    let mut child = Reap(child);
    // Generous: the suite runs this beside other tests on a loaded machine. A vigild that
    // exits fails at once, with what it said.
    let started = Instant::now();
    while !bus.dbus_send_as(NOBODY, "GetStatus", &[]).0 {
        let said = || std::fs::read_to_string(&log).unwrap_or_default();
        if let Some(status) = child.0.try_wait().unwrap() {
            panic!(
                "vigild ended ({status}) before owning its name; it said:\n{}",
                said()
            );
        }
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "vigild did not own its name in 30 s; it said:\n{}",
            said()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let read = std::process::Command::new("setpriv")
        .args([
            "--reuid=nobody",
            "--regid=nogroup",
            "--clear-groups",
            "busctl",
        ])
        .arg(format!("--address={}", bus.address))
        .args([
            "get-property",
            "org.vigil.Vigil1",
            MANAGER,
            "org.vigil.Vigil1.Manager",
            "Status",
        ])
        .output()
        .unwrap();
    assert!(read.status.success(), "{read:?}");
    let intro = std::process::Command::new("setpriv")
        .args([
            "--reuid=nobody",
            "--regid=nogroup",
            "--clear-groups",
            "busctl",
        ])
        .arg(format!("--address={}", bus.address))
        .args(["introspect", "org.vigil.Vigil1", MANAGER])
        .output()
        .unwrap();
    assert!(intro.status.success(), "{intro:?}");
    // The bus itself refuses the mutating call before vigild sees it.
    let (ok, text) = bus.dbus_send_as(NOBODY, "Reload", &[]);
    assert!(!ok);
    assert!(
        text.contains("AccessDenied") && text.contains("Rejected send message"),
        "{text}"
    );
    let (ok, text) = bus.dbus_send_as(0, "Reload", &[]);
    assert!(ok, "root may reload: {text}");
    // Only the vigil user (here: daemon) may own the name.
    let own = std::process::Command::new("setpriv")
        .args([
            "--reuid=nobody",
            "--regid=nogroup",
            "--clear-groups",
            "dbus-send",
        ])
        .arg(format!("--bus={}", bus.address))
        .args([
            "--print-reply",
            "--dest=org.freedesktop.DBus",
            "/org/freedesktop/DBus",
            "org.freedesktop.DBus.RequestName",
            "string:org.vigil.Vigil1",
            "uint32:0",
        ])
        .output()
        .unwrap();
    assert!(
        !own.status.success(),
        "nobody must not own the name: {own:?}"
    );
    assert!(
        String::from_utf8_lossy(&own.stderr).contains("not allowed to own"),
        "{own:?}"
    );
}

/// Restarts `bus` twice under `v`, the memory check turned crit (then ok) just before each
/// restart; the heartbeat polled all the while, the store read before and after. Returns
/// (how long after each new bus answered vigild was back on it, the heartbeat, rows
/// before, rows after).
/// What [`restart_twice`] saw: how long after each new bus answered vigild was back on it,
/// the heartbeat, rows before, rows after.
type Restarts = (
    Vec<Duration>,
    faults_support::Polled,
    faults_support::Rows,
    faults_support::Rows,
);

fn restart_twice(bus: &mut Bus, v: &Vigild) -> Restarts {
    let db = v.state_dir().join("vigil.db");
    wait_for(
        Duration::from_secs(10),
        "the first transition stored",
        || (faults_support::rows(&db).transitions.len() == 1).then_some(()),
    );
    let before = faults_support::rows(&db);
    let polled = faults_support::HeartbeatPoller::start(v.port);
    let mut back = Vec::new();
    for (round, (kb, status)) in [(50_000, "critical"), (800_000, "ok")]
        .into_iter()
        .enumerate()
    {
        v.set_available_kb(kb);
        bus.restart();
        let answering = std::time::Instant::now();
        v.wait_dbus_status(bus, status);
        back.push(answering.elapsed());
        let tree = bus.busctl(&["tree", "org.vigil.Vigil1"]);
        assert!(tree.contains(MEM_CHECK), "round {round}: {tree}");
        println!(
            "round {round}: back on the new bus {} ms after it answered",
            back[round].as_millis()
        );
    }
    // Both transitions made across the restarts are stored.
    wait_for(Duration::from_secs(10), "both transitions stored", || {
        (faults_support::rows(&db).transitions.len() == before.transitions.len() + 2).then_some(())
    });
    let polled = polled.finish();
    let after = faults_support::rows(&db);
    (back, polled, before, after)
}

/// Writes the row of a bus-restart test, then asserts: vigild back within 2 s of each new
/// bus, every heartbeat answered, no row lost, and the log saying both.
fn judge_restarts(test: &str, what: &str, v: &Vigild, restarts: Restarts) {
    let (back, polled, before, after) = restarts;
    let lost = before.lost_in(&after);
    let slowest = back.iter().max().copied().unwrap_or_default();
    reliability::record(
        test,
        what,
        &format!(
            "back on the bus {} ms after it answered (slowest of 2); {}; {}",
            slowest.as_millis(),
            polled.figure(),
            faults_support::kept_figure(&before, &after)
        ),
        slowest < Duration::from_secs(2) && polled.all_answered() && lost == 0,
    );
    assert!(slowest < Duration::from_secs(2), "{back:?}");
    assert!(polled.all_answered(), "{polled:?}");
    assert_eq!(lost, 0, "{before:#?}\n{after:#?}");
    let log = v.log();
    assert!(log.contains("lost the D-Bus connection"), "{log}");
    assert!(log.contains("on D-Bus again"), "{log}");
}

/// After the bus daemon restarts at the same address, vigild owns its name again and
/// republishes every object within 2 s of the bus answering, and says so in the log; the
/// heartbeat answers all through, and the check's changes across the restarts are stored.
#[test]
fn vigild_comes_back_when_the_bus_restarts() {
    let mut bus = Bus::start();
    let v = VigildBuilder::new().bus(&bus).start();
    v.wait_dbus_status(&bus, "ok");
    let restarts = restart_twice(&mut bus, &v);
    judge_restarts(
        "vigild_comes_back_when_the_bus_restarts",
        "a private dbus-daemon (session-type, vigild's --bus) killed and started again at \
         the same address, twice, a check changing each time",
        &v,
        restarts,
    );
    assert_eq!(v.heartbeat()["status"], "ok");
}

/// The same on a system bus: a dbus-daemon with the system bus's configuration
/// (dbus/test-system-bus.conf.in, `<type>system</type>`, method calls denied by default)
/// and the real policy file, found by vigild through DBUS_SYSTEM_BUS_ADDRESS as on a box.
/// The policy's owner user `vigil` is mapped to root, which vigild runs as here.
#[test]
fn vigild_comes_back_when_the_system_bus_restarts() {
    let dir = tempfile::tempdir().unwrap();
    let policy = std::fs::read_to_string("dbus/org.vigil.Vigil1.conf")
        .unwrap()
        .replace("user=\"vigil\"", "user=\"root\"");
    let policy_path = dir.path().join("org.vigil.Vigil1.conf");
    std::fs::write(&policy_path, policy).unwrap();
    let conf = std::fs::read_to_string("dbus/test-system-bus.conf.in")
        .unwrap()
        .replace("@POLICY@", &policy_path.display().to_string());
    let mut bus = Bus::start_with_config(&conf);
    let v = VigildBuilder::new()
        .env("DBUS_SYSTEM_BUS_ADDRESS", &bus.address)
        .start();
    v.wait_dbus_status(&bus, "ok");
    assert!(
        !v.log().contains("serving on the session bus"),
        "{}",
        v.log()
    );
    let restarts = restart_twice(&mut bus, &v);
    // The policy is in force on the new bus too: nobody reads, and may not reload.
    let (read, text) = bus.dbus_send_as(NOBODY, "GetStatus", &[]);
    assert!(read, "{text}");
    let (reload, text) = bus.dbus_send_as(NOBODY, "Reload", &[]);
    assert!(!reload && text.contains("AccessDenied"), "{text}");
    judge_restarts(
        "vigild_comes_back_when_the_system_bus_restarts",
        "a dbus-daemon with the system bus configuration and the real policy file (owner \
         user mapped to root; not the booted system's dbus.service), found through \
         DBUS_SYSTEM_BUS_ADDRESS, killed and started again, twice, a check changing each time",
        &v,
        restarts,
    );
}
