//! D-Bus abuse against a real vigild on a private bus: many clients asking `GetStatus` as
//! fast as they can, malformed and unknown calls, and a storm of mutating calls from
//! another user. Each is answered or refused, vigild lives, and its memory stays bounded.
//! The tests run one at a time (a lock), so one's load does not count in another's figures.

mod common;
mod reliability;

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::*;
use zbus::zvariant::DynamicType;

const NAME: &str = "org.vigil.Vigil1";
const MANAGER: &str = "/org/vigil/Vigil1";
const IFACE: &str = "org.vigil.Vigil1.Manager";
const NOBODY: u32 = 65534;
const MAX_RSS_GROWTH_KB: u64 = 10 * 1024;

/// One test at a time.
static SERIAL: Mutex<()> = Mutex::new(());

/// A bus that lets any local user connect and call, so only vigild's own check decides.
const OPEN_BUS: &str = "<busconfig><type>session</type><listen>@LISTEN@</listen><auth>EXTERNAL</auth>\
    <policy context=\"default\"><allow user=\"*\"/><allow own=\"*\"/><allow send_destination=\"*\"/>\
    <allow receive_sender=\"*\"/><allow send_type=\"method_call\"/></policy></busconfig>";

fn vm_rss_kb(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let line = status.lines().find(|l| l.starts_with("VmRSS:")).unwrap();
    line["VmRSS:".len()..]
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .unwrap()
}

/// Samples VmRSS every 50 ms into `peak` until `stop`.
fn sample_rss(
    pid: u32,
    stop: Arc<AtomicBool>,
    peak: Arc<AtomicU64>,
) -> std::thread::JoinHandle<()> {
    std::thread::spawn(move || {
        while !stop.load(Ordering::Relaxed) {
            if let Ok(s) = std::fs::read_to_string(format!("/proc/{pid}/status")) {
                if let Some(kb) = s
                    .lines()
                    .find_map(|l| l.strip_prefix("VmRSS:"))
                    .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
                {
                    peak.fetch_max(kb, Ordering::Relaxed);
                }
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    })
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

async fn connect(bus: &Bus) -> zbus::Connection {
    zbus::connection::Builder::address(bus.address.as_str())
        .build()
        .await
        .unwrap()
}

/// A connection whose socket was opened by a thread running as `uid` (and gid `uid`, no
/// groups): the bus takes the caller's credentials from the socket, as it does for a
/// process of that user. Only that thread changes ids (raw system calls, not the libc
/// wrappers that change every thread), and it ends at once.
async fn connect_as(bus: &Bus, uid: u32) -> zbus::Connection {
    let path = bus.dir.path().join("bus");
    let stream = std::thread::spawn(move || {
        // SAFETY: raw setgroups/setresgid/setresuid on this thread only; it opens one
        // socket and ends.
        unsafe {
            assert_eq!(
                libc::syscall(libc::SYS_setgroups, 0usize, std::ptr::null::<libc::gid_t>()),
                0
            );
            assert_eq!(libc::syscall(libc::SYS_setresgid, uid, uid, uid), 0);
            assert_eq!(libc::syscall(libc::SYS_setresuid, uid, uid, uid), 0);
        }
        std::os::unix::net::UnixStream::connect(path).unwrap()
    })
    .join()
    .unwrap();
    zbus::connection::Builder::unix_stream(stream)
        .user_id(uid)
        .build()
        .await
        .unwrap()
}

/// A method call on the Manager with `body`, answered within 10 s; `Err` is the error
/// name and message the bus or vigild answered.
async fn call<B>(
    conn: &zbus::Connection,
    path: &str,
    iface: &str,
    method: &str,
    body: &B,
) -> Result<zbus::message::Message, String>
where
    B: serde::ser::Serialize + DynamicType,
{
    let fut = conn.call_method(Some(NAME), path, Some(iface), method, body);
    match tokio::time::timeout(Duration::from_secs(10), fut).await {
        Err(_) => Err("NO ANSWER within 10 s".into()),
        Ok(Ok(m)) => Ok(m),
        Ok(Err(zbus::Error::MethodError(name, detail, _))) => {
            Err(format!("{}: {}", name.as_str(), detail.unwrap_or_default()))
        }
        // An error answer arrives as the fdo error of its name, shown as `name: message`.
        Ok(Err(zbus::Error::FDO(e))) => Err(e.to_string()),
        Ok(Err(e)) => Err(format!("NOT A D-BUS ERROR: {e}")),
    }
}

async fn get_status(conn: &zbus::Connection) -> Result<String, String> {
    let m = call(conn, MANAGER, IFACE, "GetStatus", &()).await?;
    m.body().deserialize::<String>().map_err(|e| e.to_string())
}

async fn maintenance(conn: &zbus::Connection) -> bool {
    let m = call(
        conn,
        MANAGER,
        "org.freedesktop.DBus.Properties",
        "Get",
        &(IFACE, "Maintenance"),
    )
    .await
    .unwrap();
    let v: zbus::OwnedVariant = m.body().deserialize().unwrap();
    bool::try_from(v).unwrap()
}

fn alive(v: &mut Vigild) -> bool {
    v.child.try_wait().unwrap().is_none()
}

#[test]
fn get_status_from_fifty_clients_as_fast_as_they_can() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    const CLIENTS: usize = 50;
    const FOR: Duration = Duration::from_secs(20);
    let bus = Bus::start();
    let mut v = VigildBuilder::new().bus(&bus).start();
    v.wait_dbus_status(&bus, "ok");
    let pid = v.pid();
    let rt = runtime();
    let (calls, errors, first_errors, rss_before, rss_peak, took) = rt.block_on(async {
        let warm = connect(&bus).await;
        for _ in 0..200 {
            get_status(&warm).await.expect("GetStatus before the flood");
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
        let rss_before = vm_rss_kb(pid);
        let stop = Arc::new(AtomicBool::new(false));
        let peak = Arc::new(AtomicU64::new(rss_before));
        let sampler = sample_rss(pid, stop.clone(), peak.clone());
        let mut clients = Vec::new();
        for _ in 0..CLIENTS {
            clients.push(connect(&bus).await);
        }
        let start = Instant::now();
        let tasks: Vec<_> = clients
            .into_iter()
            .map(|c| {
                tokio::spawn(async move {
                    let (mut ok, mut bad, mut first) = (0u64, 0u64, None);
                    while start.elapsed() < FOR {
                        match get_status(&c).await {
                            Ok(doc) if doc.contains("\"status\"") => ok += 1,
                            Ok(doc) => {
                                bad += 1;
                                first.get_or_insert(format!("not a status document: {doc}"));
                            }
                            Err(e) => {
                                bad += 1;
                                first.get_or_insert(e);
                            }
                        }
                    }
                    (ok, bad, first)
                })
            })
            .collect();
        let (mut calls, mut errors, mut firsts) = (0, 0, Vec::new());
        for t in tasks {
            let (ok, bad, first) = t.await.unwrap();
            calls += ok + bad;
            errors += bad;
            firsts.extend(first);
        }
        let took = start.elapsed();
        tokio::time::sleep(Duration::from_millis(500)).await;
        stop.store(true, Ordering::Relaxed);
        sampler.join().unwrap();
        (
            calls,
            errors,
            firsts,
            rss_before,
            peak.load(Ordering::Relaxed),
            took,
        )
    });
    let rss_after = vm_rss_kb(pid);
    let serving = v.http("GET", "/api/system/heartbeat").0 == 200;
    let is_alive = alive(&mut v);
    let rate = calls as f64 / took.as_secs_f64();
    let growth = rss_peak.max(rss_after).saturating_sub(rss_before);
    let figure = format!(
        "{calls} calls in {:.1} s ({rate:.0}/s), {errors} errors; vigild VmRSS {rss_before} kB \
         before, {rss_peak} kB peak (+{growth} kB, bound {MAX_RSS_GROWTH_KB}), {rss_after} kB \
         after; {}",
        took.as_secs_f64(),
        if is_alive && serving {
            "alive and serving"
        } else {
            "NOT serving"
        }
    );
    println!("{figure}");
    let pass = errors == 0 && growth <= MAX_RSS_GROWTH_KB && is_alive && serving && calls > 0;
    reliability::record(
        "abuse_dbus::get_status_from_fifty_clients_as_fast_as_they_can",
        &format!(
            "{CLIENTS} connections to a private dbus-daemon calling GetStatus back to back for {} s",
            FOR.as_secs()
        ),
        &figure,
        pass,
    );
    assert!(is_alive, "vigild died; log:\n{}", v.log());
    assert!(serving, "the heartbeat no longer answers");
    assert_eq!(errors, 0, "errors, first of each client: {first_errors:?}");
    assert!(calls >= 1000, "only {calls} calls answered");
    assert!(
        growth <= MAX_RSS_GROWTH_KB,
        "VmRSS grew by {growth} kB ({rss_before} before, {rss_peak} peak)"
    );
}

/// A call that must be answered, and how: `Some(true)` refused with a D-Bus error,
/// `Some(false)` answered with a reply, `None` either.
struct Case {
    what: String,
    refused: Option<bool>,
    result: Result<(), String>,
}

#[test]
fn malformed_and_unknown_calls_are_answered_with_errors() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let bus = Bus::start();
    let mut v = VigildBuilder::new().bus(&bus).start();
    v.wait_dbus_status(&bus, "ok");
    let pid = v.pid();
    let rss_before = vm_rss_kb(pid);
    let rt = runtime();
    let mib = "x".repeat(1 << 20);
    let odd = "\u{202e}é\u{1f600}/../..\u{7f}\t\r\n%s%n${x}'\";DROP TABLE incidents;--";
    let (cases, maint_after) = rt.block_on(async {
        let c = connect(&bus).await;
        let mut cases = Vec::new();
        macro_rules! case {
            ($what:expr, $refused:expr, $path:expr, $iface:expr, $method:expr, $body:expr) => {
                cases.push(Case {
                    what: $what.to_string(),
                    refused: $refused,
                    result: call(&c, $path, $iface, $method, &$body).await.map(|_| ()),
                })
            };
        }
        let yes = Some(true);
        // Wrong signatures, one or more for every method. (zbus does not look at the body of
        // a call to a method that takes nothing and answers it: `None`, either will do.)
        case!("GetStatus(s)", None, MANAGER, IFACE, "GetStatus", ("x",));
        case!("ListChecks(u)", None, MANAGER, IFACE, "ListChecks", (7u32,));
        case!(
            "ListIncidents(s)",
            yes,
            MANAGER,
            IFACE,
            "ListIncidents",
            ("10",)
        );
        case!(
            "ListIncidents(t)",
            yes,
            MANAGER,
            IFACE,
            "ListIncidents",
            (u64::MAX,)
        );
        case!("ListIncidents()", yes, MANAGER, IFACE, "ListIncidents", ());
        case!("Reload(s)", yes, MANAGER, IFACE, "Reload", ("now",));
        case!(
            "SetMaintenance(s)",
            yes,
            MANAGER,
            IFACE,
            "SetMaintenance",
            ("yes",)
        );
        case!(
            "SetMaintenance(bt)",
            yes,
            MANAGER,
            IFACE,
            "SetMaintenance",
            (true, 60u64)
        );
        case!(
            "SetMaintenance(iis)",
            yes,
            MANAGER,
            IFACE,
            "SetMaintenance",
            (1i32, 60i32, "x")
        );
        case!(
            "StartMaintenance(b)",
            yes,
            MANAGER,
            IFACE,
            "StartMaintenance",
            (true,)
        );
        case!("RunCheck(i)", yes, MANAGER, IFACE, "RunCheck", (5i32,));
        case!(
            "RunCheck(as)",
            yes,
            MANAGER,
            IFACE,
            "RunCheck",
            (vec!["mem"],)
        );
        case!(
            "ApplyUpdate(t)",
            yes,
            MANAGER,
            IFACE,
            "ApplyUpdate",
            (1u64,)
        );
        case!(
            "ApplyUpdate(ss)",
            yes,
            MANAGER,
            IFACE,
            "ApplyUpdate",
            ("/a", "/b")
        );
        case!("Rollback(b)", yes, MANAGER, IFACE, "Rollback", (true,));
        case!(
            "OfferUpdate(u)",
            yes,
            MANAGER,
            IFACE,
            "OfferUpdate",
            (3u32,)
        );
        case!("GetUpdate(s)", None, MANAGER, IFACE, "GetUpdate", ("x",));
        case!(
            "GetMaintenanceLog(s)",
            None,
            MANAGER,
            IFACE,
            "GetMaintenanceLog",
            ("x",)
        );
        // The right signature with odd values.
        case!(
            "ListIncidents(u32::MAX)",
            Some(false),
            MANAGER,
            IFACE,
            "ListIncidents",
            (u32::MAX,)
        );
        case!("RunCheck(\"\")", yes, MANAGER, IFACE, "RunCheck", ("",));
        case!(
            "RunCheck(1 MiB)",
            yes,
            MANAGER,
            IFACE,
            "RunCheck",
            (mib.as_str(),)
        );
        case!(
            "RunCheck(odd UTF-8)",
            yes,
            MANAGER,
            IFACE,
            "RunCheck",
            (odd,)
        );
        case!(
            "ApplyUpdate(\"\")",
            yes,
            MANAGER,
            IFACE,
            "ApplyUpdate",
            ("",)
        );
        case!(
            "ApplyUpdate(1 MiB)",
            yes,
            MANAGER,
            IFACE,
            "ApplyUpdate",
            (mib.as_str(),)
        );
        case!(
            "ApplyUpdate(odd UTF-8)",
            yes,
            MANAGER,
            IFACE,
            "ApplyUpdate",
            (odd,)
        );
        case!(
            "ApplyUpdate(/dev/zero)",
            yes,
            MANAGER,
            IFACE,
            "ApplyUpdate",
            ("/dev/zero",)
        );
        case!(
            "ApplyUpdate(/proc/self/mem)",
            yes,
            MANAGER,
            IFACE,
            "ApplyUpdate",
            ("/proc/self/mem",)
        );
        case!(
            "OfferUpdate(\"\")",
            None,
            MANAGER,
            IFACE,
            "OfferUpdate",
            ("",)
        );
        case!(
            "OfferUpdate(odd UTF-8)",
            None,
            MANAGER,
            IFACE,
            "OfferUpdate",
            (odd,)
        );
        case!(
            "StartMaintenance(u64::MAX s)",
            None,
            MANAGER,
            IFACE,
            "StartMaintenance",
            (u64::MAX, "absurd", "")
        );
        case!(
            "StartMaintenance(0 s)",
            None,
            MANAGER,
            IFACE,
            "StartMaintenance",
            (0u64, "zero", "")
        );
        case!(
            "StartMaintenance(tunnel odd)",
            yes,
            MANAGER,
            IFACE,
            "StartMaintenance",
            (60u64, "x", odd)
        );
        case!(
            "SetMaintenance(on, u64::MAX s)",
            None,
            MANAGER,
            IFACE,
            "SetMaintenance",
            (true, u64::MAX, "absurd")
        );
        case!(
            "SetMaintenance(on, 1 MiB reason)",
            yes,
            MANAGER,
            IFACE,
            "SetMaintenance",
            (true, 60u64, mib.as_str())
        );
        case!(
            "SetMaintenance(off)",
            Some(false),
            MANAGER,
            IFACE,
            "SetMaintenance",
            (false, 0u64, "")
        );
        // What is not there.
        case!(
            "StartMaintenance(1 MiB reason)",
            yes,
            MANAGER,
            IFACE,
            "StartMaintenance",
            (60u64, mib.as_str(), "")
        );
        case!("unknown method", yes, MANAGER, IFACE, "Explode", ());
        case!(
            "unknown interface",
            yes,
            MANAGER,
            "org.vigil.Vigil1.Nope",
            "GetStatus",
            ()
        );
        case!(
            "unknown object",
            yes,
            "/org/vigil/Vigil1/nope",
            IFACE,
            "GetStatus",
            ()
        );
        case!(
            "unknown check object",
            yes,
            "/org/vigil/Vigil1/check/nope",
            "org.vigil.Vigil1.Check",
            "Name",
            ()
        );
        case!(
            "Get of an unknown property",
            yes,
            MANAGER,
            "org.freedesktop.DBus.Properties",
            "Get",
            (IFACE, "Nope")
        );
        case!(
            "Set of a read-only property",
            yes,
            MANAGER,
            "org.freedesktop.DBus.Properties",
            "Set",
            (IFACE, "Maintenance", zbus::Variant::from(true))
        );
        case!(
            "Get(u)",
            yes,
            MANAGER,
            "org.freedesktop.DBus.Properties",
            "Get",
            (1u32,)
        );
        case!(
            "Introspect of an unknown object",
            None,
            "/org/vigil/Vigil1/nope",
            "org.freedesktop.DBus.Introspectable",
            "Introspect",
            ()
        );
        let maint_after = maintenance(&c).await;
        // Still answering, with the document it always gave.
        let doc = get_status(&c).await;
        cases.push(Case {
            what: "GetStatus afterwards".into(),
            refused: Some(false),
            result: doc.map(|_| ()),
        });
        (cases, maint_after)
    });
    let serving = v.http("GET", "/api/system/heartbeat").0 == 200;
    let is_alive = alive(&mut v);
    let rss_after = vm_rss_kb(pid);
    let mut wrong = Vec::new();
    let (mut refused, mut replied) = (0, 0);
    for c in &cases {
        let ok = match (&c.result, c.refused) {
            (Err(e), _) if e.starts_with("NO ANSWER") || e.starts_with("NOT A D-BUS") => false,
            (Err(_), Some(false)) | (Ok(_), Some(true)) => false,
            _ => true,
        };
        match &c.result {
            Err(e) => {
                refused += 1;
                println!(
                    "{:<34} refused: {}",
                    c.what,
                    e.chars().take(140).collect::<String>()
                );
            }
            Ok(_) => {
                replied += 1;
                println!("{:<34} answered", c.what);
            }
        }
        if !ok {
            wrong.push(format!(
                "{}: {:?}",
                c.what,
                c.result.as_ref().map(|_| "a reply")
            ));
        }
    }
    let growth = rss_after.saturating_sub(rss_before);
    let figure = format!(
        "{} calls: {refused} refused with a D-Bus error, {replied} answered, {} answered \
         otherwise than expected; maintenance off at the end: {}; vigild VmRSS {rss_before} kB \
         before, {rss_after} kB after (+{growth} kB); {}",
        cases.len(),
        wrong.len(),
        !maint_after,
        if is_alive && serving {
            "alive and serving"
        } else {
            "NOT serving"
        }
    );
    println!("{figure}");
    let pass =
        wrong.is_empty() && is_alive && serving && !maint_after && growth <= MAX_RSS_GROWTH_KB;
    reliability::record(
        "abuse_dbus::malformed_and_unknown_calls_are_answered_with_errors",
        "every Manager method with a wrong signature; empty, 1 MiB and odd UTF-8 strings; \
         absurd maintenance durations; unknown methods, interfaces, objects and properties",
        &figure,
        pass,
    );
    assert!(is_alive, "vigild died; log:\n{}", v.log());
    assert!(serving, "the heartbeat no longer answers");
    assert!(wrong.is_empty(), "{wrong:#?}");
    assert!(!maint_after, "maintenance still on after turning it off");
    assert!(growth <= MAX_RSS_GROWTH_KB, "VmRSS grew by {growth} kB");
}

#[test]
fn mutating_calls_from_another_user_are_all_refused_at_a_high_rate() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    const CLIENTS: usize = 8;
    const FOR: Duration = Duration::from_secs(10);
    let bus = Bus::start_with_config(OPEN_BUS);
    let mut v = VigildBuilder::new().bus(&bus).start();
    v.wait_dbus_status(&bus, "ok");
    let pid = v.pid();
    // A policy vigild would take on a reload: if one of the refused calls reloaded, its
    // check object would appear.
    std::fs::write(
        v.policies_dir().join("zz-extra.toml"),
        "[[check]]\nname = \"extra\"\nprobe = \"memory\"\nevery = \"1s\"\nwarn = \"available < 20%\"\n",
    )
    .unwrap();
    let rt = runtime();
    let (calls, denied, other, rss_before, rss_peak, took, maint, extra_before, extra_after) =
        rt.block_on(async {
            let root = connect(&bus).await;
            let rss_before = vm_rss_kb(pid);
            let stop = Arc::new(AtomicBool::new(false));
            let peak = Arc::new(AtomicU64::new(rss_before));
            let sampler = sample_rss(pid, stop.clone(), peak.clone());
            let mut clients = Vec::new();
            for _ in 0..CLIENTS {
                clients.push(connect_as(&bus, NOBODY).await);
            }
            let start = Instant::now();
            let tasks: Vec<_> = clients
                .into_iter()
                .map(|c| {
                    tokio::spawn(async move {
                        let (mut n, mut denied, mut other) = (0u64, 0u64, Vec::new());
                        let mut i = 0u64;
                        while start.elapsed() < FOR {
                            let r = match i % 7 {
                                0 => call(&c, MANAGER, IFACE, "Reload", &()).await,
                                1 => call(&c, MANAGER, IFACE, "SetMaintenance", &(true, 3600u64, "x")).await,
                                2 => call(&c, MANAGER, IFACE, "StartMaintenance", &(3600u64, "x", "")).await,
                                3 => call(&c, MANAGER, IFACE, "RunCheck", &("mem",)).await,
                                4 => call(&c, MANAGER, IFACE, "ApplyUpdate", &("/tmp/x.vigil",)).await,
                                5 => call(&c, MANAGER, IFACE, "Rollback", &()).await,
                                _ => call(&c, MANAGER, IFACE, "OfferUpdate", &("/tmp",)).await,
                            };
                            i += 1;
                            n += 1;
                            match r {
                                Err(e)
                                    if e.starts_with("org.freedesktop.DBus.Error.AccessDenied:")
                                        && e.contains("needs root or membership in the vigil-admin group (caller uid 65534)") =>
                                {
                                    denied += 1
                                }
                                r => {
                                    if other.len() < 5 {
                                        other.push(format!("{:?}", r.map(|_| "a reply")));
                                    }
                                }
                            }
                        }
                        (n, denied, other)
                    })
                })
                .collect();
            let (mut calls, mut denied, mut other) = (0, 0, Vec::new());
            for t in tasks {
                let (n, d, o) = t.await.unwrap();
                calls += n;
                denied += d;
                other.extend(o);
            }
            let took = start.elapsed();
            tokio::time::sleep(Duration::from_millis(500)).await;
            stop.store(true, Ordering::Relaxed);
            sampler.join().unwrap();
            let maint = maintenance(&root).await;
            let has_extra = |c: zbus::Connection| async move {
                call(&c, "/org/vigil/Vigil1/check/extra", "org.freedesktop.DBus.Properties", "Get",
                    &("org.vigil.Vigil1.Check", "Name")).await.is_ok()
            };
            let extra_before = has_extra(root.clone()).await;
            // The same call from root is taken: the refusals were the caller's, not a broken method.
            call(&root, MANAGER, IFACE, "Reload", &()).await.expect("Reload as root");
            let mut extra_after = false;
            for _ in 0..100 {
                if has_extra(root.clone()).await {
                    extra_after = true;
                    break;
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            (calls, denied, other, rss_before, peak.load(Ordering::Relaxed), took, maint, extra_before, extra_after)
        });
    let rss_after = vm_rss_kb(pid);
    let serving = v.http("GET", "/api/system/heartbeat").0 == 200;
    let is_alive = alive(&mut v);
    let growth = rss_peak.max(rss_after).saturating_sub(rss_before);
    let rate = calls as f64 / took.as_secs_f64();
    let figure = format!(
        "{calls} calls in {:.1} s ({rate:.0}/s): {denied} refused with AccessDenied, {} otherwise; \
         afterwards maintenance {}, reloaded by them: {}; the same Reload as root then took the new \
         policy: {extra_after}; vigild VmRSS {rss_before} kB before, {rss_peak} kB peak (+{growth} kB), \
         {rss_after} kB after; {}",
        took.as_secs_f64(),
        calls - denied,
        if maint { "ON" } else { "off" },
        extra_before,
        if is_alive && serving {
            "alive and serving"
        } else {
            "NOT serving"
        }
    );
    println!("{figure}");
    let pass = calls > 0
        && denied == calls
        && !maint
        && !extra_before
        && extra_after
        && is_alive
        && serving
        && growth <= MAX_RSS_GROWTH_KB;
    reliability::record(
        "abuse_dbus::mutating_calls_from_another_user_are_all_refused_at_a_high_rate",
        &format!(
            "{CLIENTS} connections as uid {NOBODY} calling Reload, SetMaintenance, StartMaintenance, \
             RunCheck, ApplyUpdate, Rollback and OfferUpdate back to back for {} s, on a bus whose \
             policy lets everyone call (only vigild's own check decides)",
            FOR.as_secs()
        ),
        &figure,
        pass,
    );
    assert!(is_alive, "vigild died; log:\n{}", v.log());
    assert!(serving, "the heartbeat no longer answers");
    assert!(calls >= 500, "only {calls} calls");
    assert_eq!(denied, calls, "not refused: {other:?}");
    assert!(!maint, "maintenance was turned on");
    assert!(!extra_before, "a refused Reload reloaded");
    assert!(extra_after, "Reload as root did not take the new policy");
    assert!(growth <= MAX_RSS_GROWTH_KB, "VmRSS grew by {growth} kB");
}
