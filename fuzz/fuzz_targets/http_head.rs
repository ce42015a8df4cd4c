//! The heartbeat server's request handling: the input is what a client sends on one
//! connection, fed over an in-memory stream to `vigil::surface::http::serve_io`, the very
//! code every accepted TCP connection runs (hyper's HTTP/1 server with vigil's limits on
//! head size, header count and timeouts, then vigil's router).
//!
//! The first byte chooses how the client behaves and what the server knows; the rest is
//! sent as is. Must hold: no panic; the connection always ends (in virtual time: the
//! runtime's clock is paused and jumps to the next timer when all is idle, so a 10 s head
//! timeout costs nothing); every byte the server writes belongs to a sequence of complete
//! HTTP/1.1 responses (HTTP/1.0 to a request in HTTP/1.0: hyper answers in the version it
//! was asked in), each with a status the contract allows.

#![no_main]

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use libfuzzer_sys::fuzz_target;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::runtime::Runtime;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;
use vigil::control::Pulse;
use vigil::core::health::Overall;
use vigil::core::status::Snapshot;
use vigil::surface::http::{serve_io, CONNECTION_LIFETIME_SECS};

/// What the heartbeat may answer: the routes' 200, 404, 405 and 503, and hyper's own
/// 400 (a bad request), 408 (head not sent in time), 431 (head too large), 501 (a
/// transfer coding it does not implement) and 505 (an HTTP version it does not speak).
const ALLOWED: &[u16] = &[200, 400, 404, 405, 408, 431, 501, 503, 505];

fn runtime() -> &'static Runtime {
    static RT: OnceLock<Runtime> = OnceLock::new();
    RT.get_or_init(|| {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .start_paused(true)
            .build()
            .expect("a current-thread runtime")
    })
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// Splits the server's bytes into responses and checks each; returns the statuses.
fn responses(mut out: &[u8]) -> Vec<u16> {
    let shown = |b: &[u8]| String::from_utf8_lossy(&b[..b.len().min(300)]).into_owned();
    let mut statuses = Vec::new();
    while !out.is_empty() {
        assert!(
            out.starts_with(b"HTTP/1.1 ") || out.starts_with(b"HTTP/1.0 "),
            "not a response: {:?}",
            shown(out)
        );
        let code = std::str::from_utf8(out.get(9..12).unwrap_or_default())
            .ok()
            .and_then(|c| c.parse::<u16>().ok())
            .unwrap_or_else(|| panic!("no status code: {:?}", shown(out)));
        assert!(ALLOWED.contains(&code), "status {code}: {:?}", shown(out));
        let end = find(out, b"\r\n\r\n").unwrap_or_else(|| panic!("head cut: {:?}", shown(out)));
        let head = std::str::from_utf8(&out[..end])
            .unwrap_or_else(|_| panic!("head not UTF-8: {:?}", shown(out)));
        let length = head
            .split("\r\n")
            .skip(1)
            .find_map(|h| {
                let (name, value) = h.split_once(':')?;
                name.eq_ignore_ascii_case("content-length")
                    .then(|| value.trim().parse::<usize>().expect("a content-length"))
            })
            .unwrap_or(0);
        let after = &out[end + 4..];
        // An answer to HEAD says the length of the body it does not send.
        let next = after.starts_with(b"HTTP/1.1 ") || after.starts_with(b"HTTP/1.0 ");
        out = if after.is_empty() || (length > 0 && next) {
            after
        } else {
            assert!(after.len() >= length, "body cut: {:?}", shown(out));
            &after[length..]
        };
        statuses.push(code);
    }
    statuses
}

fuzz_target!(|data: &[u8]| {
    let Some((&mode, input)) = data.split_first() else {
        return;
    };
    // bit 0: the client keeps its side open after sending (else it shuts its side down
    // once all is sent, and hyper reads the end of the stream); bit 1: the status page is on; bits 2-3: the status;
    // bits 4-7: written in pieces of 16·n bytes (0: all at once).
    let keep_open = mode & 1 != 0;
    let page = mode & 2 != 0;
    let status = [
        Overall::Ok,
        Overall::Degraded,
        Overall::Critical,
        Overall::Ok,
    ][usize::from((mode >> 2) & 3)];
    let piece = match usize::from(mode >> 4) {
        0 => input.len().max(1),
        n => 16 * n,
    };
    let out = runtime().block_on(async move {
        let mut snap = Snapshot::starting(vigil::sys::clock::now_micros());
        snap.status = status;
        let (_keep, snap) = watch::channel(Arc::new(snap));
        let now = vigil::sys::clock::now_mono();
        let pulse = Arc::new(Pulse::new(now, Duration::from_secs(3600)));
        let (client, server) = tokio::io::duplex(64 * 1024);
        let served = tokio::spawn(serve_io(
            server,
            snap,
            pulse,
            page,
            CancellationToken::new(),
        ));
        let (mut from_server, mut to_server) = tokio::io::split(client);
        let send = async move {
            for p in input.chunks(piece) {
                if to_server.write_all(p).await.is_err() {
                    return None; // the server closed: what it said is read below
                }
            }
            if !keep_open {
                let _ = to_server.shutdown().await;
            }
            Some(to_server) // kept open until the server has closed
        };
        let receive = async move {
            let mut out = Vec::new();
            let _ = from_server.read_to_end(&mut out).await;
            out
        };
        let whole = async move {
            let (_open, out) = tokio::join!(send, receive);
            served.await.expect("the connection task panicked");
            out
        };
        // Its life and the grace after it are the longest any connection may take.
        let limit = Duration::from_secs(CONNECTION_LIFETIME_SECS + 15);
        match tokio::time::timeout(limit, whole).await {
            Ok(out) => out,
            Err(_) => panic!("the connection was still open after {limit:?}"),
        }
    });
    let statuses = responses(&out);
    // Without a byte sent there is nothing to answer but a timeout.
    if input.is_empty() {
        assert!(statuses.iter().all(|&s| s == 408), "{statuses:?}");
    }
});
