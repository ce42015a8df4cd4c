//! HTTP abuse against the heartbeat of the vigild the .deb ships (its release build), every
//! attack at once from this process: 10,000 connections held open (each that vigild closes
//! replaced by a fresh one), slowloris connections sending a header byte a second, clients
//! sending 1 MiB heads, and clients pipelining garbage. Meanwhile well-behaved clients ask
//! for the heartbeat every 20 ms, one on a fresh connection each time and one on a
//! keep-alive connection. Every one of their requests answered, vigild's RSS and whether it
//! lives decide; their latencies (p50, p99, max) are recorded against the 10 ms p99 target,
//! not asserted.

mod common;
mod deb_support;
mod reliability;

use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use common::*;

/// How long every attack runs at once.
const WINDOW: Duration = Duration::from_secs(30);
/// Connections the flood holds open.
const FLOOD: usize = 10_000;
/// New connections a second the flood opens while it fills and then replaces the oldest
/// (which vigild closed long before, as silent connections of a crowded listener).
const FLOOD_RATE: u64 = 2_000;
const SLOWLORIS: usize = 200;
const BIG_HEAD_CLIENTS: usize = 4;
const GARBAGE_CLIENTS: usize = 4;
/// The well-behaved clients ask this often.
const EVERY: Duration = Duration::from_millis(20);
const MAX_RSS_GROWTH_KB: u64 = 10 * 1024;
const MAX_P99: Duration = Duration::from_millis(10);

const GET: &[u8] = b"GET /api/system/heartbeat HTTP/1.1\r\nHost: x\r\n\r\n";
const GET_AND_CLOSE: &[u8] =
    b"GET /api/system/heartbeat HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";

/// CPU time (user and system) a process has used.
fn cpu_time(pid: &str) -> Duration {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .map(|(_, rest)| rest.split_whitespace().collect())
        .unwrap_or_default();
    let ticks: u64 = (11..13)
        .filter_map(|i| fields.get(i)?.parse::<u64>().ok())
        .sum();
    // SAFETY: sysconf only reads a constant.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as u64;
    Duration::from_millis(ticks * 1000 / hz)
}

/// VmRSS of a process in kB.
fn vm_rss_kb(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    line["VmRSS:".len()..]
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .ok()
}

/// Raises this process's soft limit on open files to its hard limit (vigild, started later,
/// inherits it); returns the soft limit in force.
fn raise_open_files_limit() -> u64 {
    let mut l = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: plain libc calls on a struct rlimit.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut l) == 0 && l.rlim_cur < l.rlim_max {
            l.rlim_cur = l.rlim_max;
            libc::setrlimit(libc::RLIMIT_NOFILE, &l);
        }
        libc::getrlimit(libc::RLIMIT_NOFILE, &mut l);
    }
    l.rlim_cur
}

/// Lowers the calling thread's priority: the attackers stand for machines elsewhere on the
/// network, so their own work should not take the CPU from vigild and the measured client
/// (this machine has two cores for both sides).
fn attacker_priority() {
    // SAFETY: setpriority on this thread's id (Linux: per-thread nice).
    unsafe {
        let tid = libc::syscall(libc::SYS_gettid) as libc::id_t;
        libc::setpriority(libc::PRIO_PROCESS, tid, 10);
    }
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let i = ((sorted.len() as f64 * p).ceil() as usize).clamp(1, sorted.len()) - 1;
    sorted[i]
}

fn ms(d: Duration) -> String {
    format!("{:.2} ms", d.as_secs_f64() * 1000.0)
}

/// Whether vigild has closed `s` (end of stream, a reset, or an answer it sent before
/// closing); `s` is non-blocking.
fn gone(s: &mut TcpStream) -> bool {
    let mut buf = [0u8; 512];
    // Any bytes (an answer such as 408) or none (the end) both say the head was cut off.
    match s.read(&mut buf) {
        Ok(0 | 1..) => true,
        Err(e) => e.kind() != ErrorKind::WouldBlock,
    }
}

/// What the well-behaved clients saw.
#[derive(Default)]
struct Seen {
    took: Vec<Duration>,
    failures: Vec<String>,
}

/// One heartbeat on a fresh connection, `Connection: close`.
fn fresh_heartbeat(addr: SocketAddr) -> Result<Duration, String> {
    let start = Instant::now();
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(5))
        .map_err(|e| format!("connect: {e}"))?;
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let _ = s.set_nodelay(true);
    s.write_all(GET_AND_CLOSE)
        .map_err(|e| format!("write: {e}"))?;
    let mut buf = Vec::new();
    s.read_to_end(&mut buf).map_err(|e| format!("read: {e}"))?;
    let took = start.elapsed();
    let text = String::from_utf8_lossy(&buf);
    if !(text.starts_with("HTTP/1.1 200") && text.ends_with("Z\"}")) {
        return Err(format!("answer: {text:?}"));
    }
    Ok(took)
}

/// Reads one heartbeat answer (headers and a body of Content-Length) off a keep-alive
/// connection.
fn read_answer(s: &mut TcpStream) -> Result<String, String> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 2048];
    loop {
        let n = s.read(&mut chunk).map_err(|e| format!("read: {e}"))?;
        if n == 0 {
            return Err(format!("closed after {:?}", String::from_utf8_lossy(&buf)));
        }
        buf.extend_from_slice(&chunk[..n]);
        let text = String::from_utf8_lossy(&buf).into_owned();
        if let Some((head, body)) = text.split_once("\r\n\r\n") {
            let len: usize = head
                .lines()
                .find_map(|l| {
                    let (k, v) = l.split_once(':')?;
                    k.eq_ignore_ascii_case("content-length")
                        .then(|| v.trim().parse().ok())?
                })
                .ok_or_else(|| format!("no content-length: {head:?}"))?;
            if body.len() >= len {
                return Ok(text);
            }
        }
    }
}

/// The client that asks every `EVERY`; `keep_alive`: on one connection, else fresh ones.
/// `count`: stop after so many, else at `stop`.
fn well_behaved(
    addr: SocketAddr,
    keep_alive: bool,
    stop: Arc<AtomicBool>,
    count: Option<usize>,
) -> JoinHandle<Seen> {
    std::thread::spawn(move || {
        let mut seen = Seen::default();
        let mut conn: Option<TcpStream> = None;
        let mut next = Instant::now();
        while !stop.load(Ordering::Relaxed)
            && count.is_none_or(|n| seen.took.len() + seen.failures.len() < n)
        {
            let r = if keep_alive {
                let start = Instant::now();
                let s = match conn.as_mut() {
                    Some(s) => Ok(s),
                    None => TcpStream::connect_timeout(&addr, Duration::from_secs(5))
                        .map(|s| {
                            s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
                            let _ = s.set_nodelay(true);
                            conn.insert(s)
                        })
                        .map_err(|e| format!("connect: {e}")),
                };
                s.and_then(|s| {
                    s.write_all(GET).map_err(|e| format!("write: {e}"))?;
                    let text = read_answer(s)?;
                    let took = start.elapsed();
                    if text.starts_with("HTTP/1.1 200") && text.ends_with("Z\"}") {
                        Ok(took)
                    } else {
                        Err(format!("answer: {text:?}"))
                    }
                })
            } else {
                fresh_heartbeat(addr)
            };
            match r {
                Ok(t) => seen.took.push(t),
                Err(e) => {
                    conn = None;
                    seen.failures.push(e);
                }
            }
            next += EVERY;
            let now = Instant::now();
            if next > now {
                std::thread::sleep(next - now);
            } else {
                next = now;
            }
        }
        seen
    })
}

/// Holds `FLOOD` connections open that never send a byte, opening `FLOOD_RATE` a second:
/// first until all are open, then each new one replacing the oldest. Returns (opened in
/// all, time to the first `FLOOD`).
fn flood(addr: SocketAddr, stop: Arc<AtomicBool>) -> JoinHandle<(u64, Duration, u64)> {
    std::thread::spawn(move || {
        attacker_priority();
        let start = Instant::now();
        let mut held: Vec<TcpStream> = Vec::with_capacity(FLOOD);
        let mut opened = 0u64;
        let mut errors = 0u64;
        let mut filled = None;
        while !stop.load(Ordering::Relaxed) {
            // Keep to the rate: the n-th connection not before n / FLOOD_RATE s.
            let due = Duration::from_micros(opened * 1_000_000 / FLOOD_RATE);
            let now = start.elapsed();
            if due > now {
                std::thread::sleep(due - now);
            }
            match TcpStream::connect_timeout(&addr, Duration::from_secs(3)) {
                Ok(s) => {
                    if held.len() < FLOOD {
                        held.push(s);
                        if held.len() == FLOOD {
                            filled = Some(start.elapsed());
                        }
                    } else {
                        held[(opened as usize) % FLOOD] = s;
                    }
                    opened += 1;
                }
                Err(_) => errors += 1,
            }
        }
        assert_eq!(
            held.len(),
            FLOOD,
            "the flood never held {FLOOD} connections"
        );
        (opened, filled.unwrap_or_default(), errors)
    })
}

/// `SLOWLORIS` connections, each sending one byte of a never-ending head a second; one that
/// vigild cut off is opened again. Returns (bytes sent, cut off, longest life of a cut one).
fn slowloris(addr: SocketAddr, stop: Arc<AtomicBool>) -> JoinHandle<(u64, u64, Duration)> {
    std::thread::spawn(move || {
        attacker_priority();
        let head: &[u8] = b"GET /api/system/heartbeat HTTP/1.1\r\nHost: x\r\nX-Slow: ";
        // The first byte goes at once: a connection that has spoken is never shed as idle.
        let open = || {
            let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(3)).ok()?;
            s.write_all(&head[..1]).ok()?;
            s.set_nonblocking(true).unwrap();
            Some((s, 1usize, Instant::now()))
        };
        let mut conns: Vec<_> = (0..SLOWLORIS).filter_map(|_| open()).collect();
        let (mut sent, mut cut, mut longest) = (0u64, 0u64, Duration::ZERO);
        while !stop.load(Ordering::Relaxed) {
            let round = Instant::now();
            for c in conns.iter_mut() {
                let byte = head.get(c.1).copied().unwrap_or(b'a');
                let alive = !gone(&mut c.0) && c.0.write(&[byte]).is_ok_and(|n| n == 1);
                if alive {
                    c.1 += 1;
                    sent += 1;
                } else {
                    cut += 1;
                    longest = longest.max(c.2.elapsed());
                    if let Some(fresh) = open() {
                        *c = fresh;
                    }
                }
            }
            let spent = round.elapsed();
            if spent < Duration::from_secs(1) {
                std::thread::sleep(Duration::from_secs(1) - spent);
            }
        }
        (sent, cut, longest)
    })
}

/// Reads whatever vigild answers until it closes (or 5 s pass); the status line.
fn answer_of(s: &mut TcpStream) -> String {
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    while let Ok(n) = s.read(&mut chunk) {
        if n == 0 {
            break;
        }
        buf.extend_from_slice(&chunk[..n]);
    }
    String::from_utf8_lossy(&buf).into_owned()
}

/// A client sending a head of 1 MiB, again and again. Returns (sent, answered 431).
fn big_heads(addr: SocketAddr, stop: Arc<AtomicBool>) -> JoinHandle<(u64, u64)> {
    std::thread::spawn(move || {
        attacker_priority();
        let mut head = b"GET /api/system/heartbeat HTTP/1.1\r\nHost: x\r\nX-Big: ".to_vec();
        head.resize(head.len() + (1 << 20), b'a');
        head.extend_from_slice(b"\r\n\r\n");
        let (mut sent, mut refused) = (0u64, 0u64);
        while !stop.load(Ordering::Relaxed) {
            let Ok(mut s) = TcpStream::connect_timeout(&addr, Duration::from_secs(3)) else {
                continue;
            };
            s.set_write_timeout(Some(Duration::from_secs(5))).unwrap();
            // vigild answers and closes after its 8 KiB: the rest of the write fails.
            let _ = s.write_all(&head);
            sent += 1;
            if answer_of(&mut s).starts_with("HTTP/1.1 431") {
                refused += 1;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        (sent, refused)
    })
}

/// A client pipelining two good requests and then garbage, again and again, each time a
/// different kind. Returns (sent, answered 200 then 400, answered at all).
fn garbage(addr: SocketAddr, seed: u64, stop: Arc<AtomicBool>) -> JoinHandle<(u64, u64, u64)> {
    std::thread::spawn(move || {
        attacker_priority();
        let mut x = seed | 1;
        let mut rand = move || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        let (mut sent, mut refused, mut answered) = (0u64, 0u64, 0u64);
        while !stop.load(Ordering::Relaxed) {
            let Ok(mut s) = TcpStream::connect_timeout(&addr, Duration::from_secs(3)) else {
                continue;
            };
            s.set_write_timeout(Some(Duration::from_secs(5))).unwrap();
            let mut junk = Vec::new();
            junk.extend_from_slice(GET);
            junk.extend_from_slice(GET);
            match sent % 4 {
                // Random bytes.
                0 => junk.extend((0..16 * 1024).map(|_| rand() as u8)),
                // A request line that goes on and on.
                1 => junk.extend_from_slice(&b"GET /".repeat(4000)),
                // Header lines without colons, bare CRs, NULs.
                2 => junk.extend_from_slice(&b"X\rY\0Z\r\n\x7f\xff\xfe:\r\n".repeat(500)),
                // A request with a body where none is allowed, then nonsense methods.
                _ => junk.extend_from_slice(
                    &b"POST /api/system/heartbeat HTTP/1.1\r\nContent-Length: 99999999999999999999\r\n\r\nBREW / HTCPCP/1.0\r\n\r\n"
                        .repeat(50),
                ),
            }
            let _ = s.write_all(&junk);
            sent += 1;
            let text = answer_of(&mut s);
            if !text.is_empty() {
                answered += 1;
            }
            let oks = text.matches("HTTP/1.1 200").count();
            if oks == 2 && text.contains("HTTP/1.1 400") {
                refused += 1;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        (sent, refused, answered)
    })
}

/// The package unpacked, and vigild in it as it ships (the release profile, no test hooks):
/// latency under load is a property of the optimised build, and the debug build of the
/// other tests spends several times its CPU on each connection.
fn shipped_vigild() -> (tempfile::TempDir, std::path::PathBuf) {
    let deb = deb_support::deb_path();
    let unpacked = deb_support::unpack(&deb);
    let bin = unpacked.path().join("usr/bin/vigild");
    assert!(bin.is_file(), "{} has no usr/bin/vigild", deb.display());
    (unpacked, bin)
}

/// Connections waiting in the kernel for vigild to accept them: the receive queue of the
/// listening socket on `port` in /proc/net/tcp.
fn accept_queue(port: u16) -> Option<u64> {
    let table = std::fs::read_to_string("/proc/net/tcp").ok()?;
    let local = format!("0100007F:{port:04X}");
    table.lines().skip(1).find_map(|l| {
        let f: Vec<&str> = l.split_whitespace().collect();
        (f.get(1) == Some(&local.as_str()) && f.get(3) == Some(&"0A"))
            .then(|| u64::from_str_radix(f.get(4)?.split(':').nth(1)?, 16).ok())?
    })
}

/// Samples vigild's VmRSS and its accept queue every 50 ms until `stop`: the peak RSS, and
/// the queue's samples.
fn sampler(
    pid: u32,
    port: u16,
    stop: Arc<AtomicBool>,
    peak: Arc<AtomicU64>,
) -> JoinHandle<Vec<u64>> {
    std::thread::spawn(move || {
        let mut queue = Vec::new();
        while !stop.load(Ordering::Relaxed) {
            if let Some(kb) = vm_rss_kb(pid) {
                peak.fetch_max(kb, Ordering::Relaxed);
            }
            queue.extend(accept_queue(port));
            std::thread::sleep(Duration::from_millis(50));
        }
        queue
    })
}

fn summary(seen: &Seen) -> (Duration, Duration, Duration) {
    let mut sorted = seen.took.clone();
    sorted.sort();
    (
        percentile(&sorted, 0.50),
        percentile(&sorted, 0.99),
        sorted.last().copied().unwrap_or_default(),
    )
}

#[test]
fn the_heartbeat_survives_floods_slowloris_huge_heads_and_garbage_at_once() {
    let soft = raise_open_files_limit();
    assert!(
        soft >= FLOOD as u64 + 1_500,
        "open files limited to {soft}: {} needed",
        FLOOD + 1_500
    );
    let (_unpacked, vigild) = shipped_vigild();
    let mut v = VigildBuilder::new().binary(&vigild).start();
    v.wait_status("ok");
    let addr: SocketAddr = ([127, 0, 0, 1], v.port).into();
    let pid = v.pid();
    println!("vigild pid {pid}");
    // Warm up: the first answers allocate what every later one reuses.
    for _ in 0..200 {
        fresh_heartbeat(addr).expect("a heartbeat before the attack");
    }
    // The same client before the attack, for comparison: what this machine gives anyway.
    let quiet = well_behaved(addr, false, Arc::new(AtomicBool::new(false)), Some(100))
        .join()
        .unwrap();
    let (q50, q99, _) = summary(&quiet);
    assert!(quiet.failures.is_empty(), "{:?}", quiet.failures);
    let rss_before = vm_rss_kb(pid).expect("vigild's VmRSS");
    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    println!("before the attack: load {load:?}, heartbeat p50 {q50:?} p99 {q99:?}");
    let (vigild_cpu, own_cpu) = (cpu_time(&pid.to_string()), cpu_time("self"));

    let stop = Arc::new(AtomicBool::new(false));
    let sampling = Arc::new(AtomicBool::new(false));
    let peak = Arc::new(AtomicU64::new(rss_before));
    let sampler = sampler(pid, v.port, sampling.clone(), peak.clone());
    let fresh = well_behaved(addr, false, stop.clone(), None);
    let kept = well_behaved(addr, true, stop.clone(), None);
    let flooder = flood(addr, stop.clone());
    let lorises = slowloris(addr, stop.clone());
    let bigs: Vec<_> = (0..BIG_HEAD_CLIENTS)
        .map(|_| big_heads(addr, stop.clone()))
        .collect();
    let junks: Vec<_> = (0..GARBAGE_CLIENTS)
        .map(|i| garbage(addr, 0x9e37_79b9_7f4a_7c15 ^ i as u64, stop.clone()))
        .collect();
    let start = Instant::now();
    while start.elapsed() < WINDOW {
        std::thread::sleep(Duration::from_millis(200));
        assert!(
            v.child.try_wait().unwrap().is_none(),
            "vigild died during the attack; log:\n{}",
            v.log()
        );
    }
    stop.store(true, Ordering::Relaxed);
    let vigild_cpu = cpu_time(&pid.to_string()) - vigild_cpu;
    let own_cpu = cpu_time("self") - own_cpu;
    let fresh = fresh.join().unwrap();
    let kept = kept.join().unwrap();
    let (flood_opened, flood_filled, flood_errors) = flooder.join().unwrap();
    let (loris_bytes, loris_cut, loris_longest) = lorises.join().unwrap();
    let (mut big_sent, mut big_refused) = (0, 0);
    for b in bigs {
        let (s, r) = b.join().unwrap();
        big_sent += s;
        big_refused += r;
    }
    let (mut junk_sent, mut junk_refused, mut junk_answered) = (0, 0, 0);
    for j in junks {
        let (s, r, a) = j.join().unwrap();
        junk_sent += s;
        junk_refused += r;
        junk_answered += a;
    }
    // Every attacker's connection is closed now; vigild lets go of its side.
    std::thread::sleep(Duration::from_secs(2));
    let after_serves = fresh_heartbeat(addr);
    let rss_after = vm_rss_kb(pid).unwrap_or(0);
    sampling.store(true, Ordering::Relaxed);
    let mut queue = sampler.join().unwrap();
    queue.sort_unstable();
    let queue_p50 = queue.get(queue.len() / 2).copied().unwrap_or(0);
    let queue_max = queue.last().copied().unwrap_or(0);
    let rss_peak = peak.load(Ordering::Relaxed).max(rss_after);
    let alive = v.child.try_wait().unwrap().is_none();

    let (f50, f99, fmax) = summary(&fresh);
    let (k50, k99, kmax) = summary(&kept);
    let growth = rss_peak.saturating_sub(rss_before);
    let failures = fresh.failures.len() + kept.failures.len();
    let figure = format!(
        "heartbeat every 20 ms on a fresh connection: {} answers, p50 {}, p99 {}, max {}; \
         on one keep-alive connection: {} answers, p50 {}, p99 {}, max {}; {failures} failed; \
         vigild VmRSS {rss_before} kB before, {rss_peak} kB peak (+{growth} kB), {rss_after} kB after; \
         {} after the attack; CPU during the attack: vigild {:.1} s, the attackers {:.1} s; \
         connections waiting to be accepted: median {queue_p50}, max {queue_max}; \
         before it the same client had p50 {}, p99 {}",
        fresh.took.len(),
        ms(f50),
        ms(f99),
        ms(fmax),
        kept.took.len(),
        ms(k50),
        ms(k99),
        ms(kmax),
        if alive && after_serves.is_ok() {
            "alive and serving"
        } else {
            "NOT serving"
        },
        vigild_cpu.as_secs_f64(),
        own_cpu.as_secs_f64(),
        ms(q50),
        ms(q99),
    );
    let what = format!(
        "vigild as shipped (the .deb's release build); for {} s at once: {FLOOD} connections \
         held open ({flood_opened} opened at {FLOOD_RATE}/s, the oldest replaced; all {FLOOD} open after {:.1} s), {SLOWLORIS} slowloris sending a \
         header byte a second ({loris_bytes} bytes, {loris_cut} cut off, longest {:.1} s), \
         {BIG_HEAD_CLIENTS} clients sending 1 MiB heads ({big_sent} sent, {big_refused} answered 431), \
         {GARBAGE_CLIENTS} pipelining two requests then garbage ({junk_sent} sent, \
         {junk_refused} answered 200, 200, 400)",
        WINDOW.as_secs(),
        flood_filled.as_secs_f64(),
        loris_longest.as_secs_f64(),
    );
    println!("{what}\n{figure}");
    println!("load after: {:?}", std::fs::read_to_string("/proc/loadavg"));
    // Latency is a figure, not a pass mark: on a 2-core machine the attackers take the same
    // cores as vigild, and a timed assertion would fail with the machine's load rather than
    // with vigild. The target (p99 ≤ MAX_P99) is said met or missed in the row; survival
    // (every request answered, bounded memory, alive) decides pass or fail.
    let verdict = |p99: Duration| {
        if p99 <= MAX_P99 {
            "met"
        } else {
            "MISSED"
        }
    };
    let figure = format!(
        "{figure}; p99 target {}: fresh {}, keep-alive {}",
        ms(MAX_P99),
        verdict(f99),
        verdict(k99)
    );
    let pass = alive && after_serves.is_ok() && failures == 0 && growth <= MAX_RSS_GROWTH_KB;
    reliability::record(
        "abuse_http::the_heartbeat_survives_floods_slowloris_huge_heads_and_garbage_at_once",
        &what,
        &figure,
        pass,
    );

    assert!(alive, "vigild died; log:\n{}", v.log());
    after_serves.expect("a heartbeat after the attack");
    assert!(
        fresh.failures.is_empty() && kept.failures.is_empty(),
        "failed requests: fresh {:?}, keep-alive {:?}",
        fresh.failures,
        kept.failures
    );
    assert!(
        growth <= MAX_RSS_GROWTH_KB,
        "VmRSS grew by {growth} kB (before {rss_before}, peak {rss_peak})"
    );
    // The attacks did reach vigild and were refused as the bounds say.
    assert!(
        flood_errors < flood_opened / 100,
        "{flood_errors} flood connects failed"
    );
    assert!(
        loris_cut >= SLOWLORIS as u64,
        "slowloris never cut off: {loris_cut}"
    );
    assert!(
        loris_longest < Duration::from_secs(20),
        "a slowloris connection lived {loris_longest:?}"
    );
    assert!(
        big_refused > 0 && big_refused * 10 >= big_sent * 9,
        "431 for {big_refused} of {big_sent}"
    );
    assert!(
        junk_answered * 10 >= junk_sent * 9,
        "garbage answered {junk_answered} of {junk_sent}"
    );
    assert!(junk_refused > 0, "no garbage was answered 200, 200, 400");
    assert!(
        v.log().matches("panicked").count() == 0,
        "vigild panicked; log:\n{}",
        v.log()
    );
    assert!(v.stop().success());
}
