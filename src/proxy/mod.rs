//! `vigil-docker-proxy`: a Docker socket that allows only what vigild uses.
//!
//! It runs as its own small service (`vigil-docker-proxy.socket/.service`), the only part
//! of vigil in the docker group, and forwards the Engine API calls vigild makes ([`allow`])
//! to dockerd's socket; everything else is answered 403 with a JSON `message` and logged.
//! vigild talks to the proxy's socket and is in no docker group.

pub mod allow;
pub mod forward;
pub mod refusals;

use std::os::unix::net::UnixListener as StdUnixListener;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use clap::Parser;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::UnixListener;
use tokio::sync::Semaphore;

use forward::Forwarder;

/// The Docker socket the proxy forwards to when `--upstream` is not given.
pub const DEFAULT_UPSTREAM: &str = "unix:///var/run/docker.sock";
/// Connections served at once; more wait in the listen backlog.
pub const MAX_CONNECTIONS_DEFAULT: usize = 64;
/// The most a request head may take (request line and headers).
const MAX_HEAD_BYTES: usize = 64 * 1024;
/// Time a client has to send a request head.
const HEAD_TIMEOUT: Duration = Duration::from_secs(10);
/// Pause after a failed accept (out of file descriptors, say) before the next.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(100);
/// Exit status for a bad command line or setup: systemd does not restart on it.
pub const EXIT_USAGE: i32 = 2;

/// The command line.
#[derive(Debug, Parser)]
#[command(
    name = "vigil-docker-proxy",
    version,
    about = "Forwards the Docker Engine API calls vigild makes, refuses every other one"
)]
pub struct ProxyArgs {
    /// Listen on this Unix socket (else on the sockets systemd passes).
    #[arg(long, value_name = "PATH")]
    pub listen: Option<PathBuf>,
    /// dockerd's socket.
    #[arg(long, value_name = "URL", default_value = DEFAULT_UPSTREAM)]
    pub upstream: String,
    /// Connections served at once.
    #[arg(long, value_name = "N", default_value_t = MAX_CONNECTIONS_DEFAULT)]
    pub max_connections: usize,
}

/// `unix:///path` or `/path` as a socket path.
pub fn upstream_path(url: &str) -> Result<PathBuf, String> {
    let path = url.strip_prefix("unix://").unwrap_or(url);
    if path.starts_with('/') {
        Ok(PathBuf::from(path))
    } else {
        Err(format!(
            "--upstream {url}: expected unix:///PATH (a Unix socket of dockerd)"
        ))
    }
}

/// The listeners: `--listen PATH`, else those systemd passed (`LISTEN_FDS`).
pub fn listeners(listen: Option<&Path>) -> Result<Vec<StdUnixListener>, String> {
    if let Some(path) = listen {
        return bind(path).map(|l| vec![l]);
    }
    let fds: Vec<_> = sd_notify::listen_fds()
        .map_err(|e| format!("cannot take the sockets systemd passed: {e}"))?
        .collect();
    if fds.is_empty() {
        return Err(
            "no socket to listen on: start it through vigil-docker-proxy.socket or give --listen PATH"
                .into(),
        );
    }
    let mut out = Vec::new();
    for fd in fds {
        use std::os::fd::FromRawFd;
        // SAFETY: systemd passed this descriptor and nothing else in the process owns it.
        let l = unsafe { StdUnixListener::from_raw_fd(fd) };
        l.local_addr()
            .map_err(|e| format!("socket {fd} from systemd is not a Unix stream socket: {e}"))?;
        out.push(l);
    }
    Ok(out)
}

/// Binds `path`, replacing a socket left there by an earlier run (never any other file).
fn bind(path: &Path) -> Result<StdUnixListener, String> {
    use std::os::unix::fs::FileTypeExt;
    if let Ok(m) = std::fs::symlink_metadata(path) {
        if m.file_type().is_socket() {
            let _ = std::fs::remove_file(path);
        }
    }
    StdUnixListener::bind(path).map_err(|e| format!("cannot listen on {}: {e}", path.display()))
}

/// Serves `listeners` until the process ends.
pub async fn serve(listeners: Vec<StdUnixListener>, fwd: Arc<Forwarder>, max_connections: usize) {
    let slots = Arc::new(Semaphore::new(max_connections.max(1)));
    let mut tasks = tokio::task::JoinSet::new();
    for l in listeners {
        let (fwd, slots) = (fwd.clone(), slots.clone());
        tasks.spawn(async move {
            if let Err(e) = l.set_nonblocking(true) {
                fwd.line(3, &format!("cannot use a listening socket: {e}"));
                return;
            }
            match UnixListener::from_std(l) {
                Ok(l) => accept_loop(l, fwd, slots).await,
                Err(e) => fwd.line(3, &format!("cannot use a listening socket: {e}")),
            }
        });
    }
    while tasks.join_next().await.is_some() {}
}

async fn accept_loop(l: UnixListener, fwd: Arc<Forwarder>, slots: Arc<Semaphore>) {
    loop {
        let Ok(permit) = slots.clone().acquire_owned().await else {
            return;
        };
        let stream = match l.accept().await {
            Ok((s, _)) => s,
            Err(e) => {
                fwd.line(4, &format!("accept: {e}"));
                tokio::time::sleep(ACCEPT_BACKOFF).await;
                continue;
            }
        };
        let fwd = fwd.clone();
        tokio::spawn(async move {
            let service = service_fn(|req| {
                let fwd = fwd.clone();
                async move { fwd.handle(req).await }
            });
            let _ = http1::Builder::new()
                .timer(TokioTimer::new())
                .header_read_timeout(HEAD_TIMEOUT)
                .max_buf_size(MAX_HEAD_BYTES)
                .keep_alive(true)
                .serve_connection(TokioIo::new(stream), service)
                .await;
            drop(permit);
        });
    }
}

/// The program: parses nothing itself (the binary passes `args`), returns the exit status.
pub fn run(args: ProxyArgs) -> i32 {
    let upstream = match upstream_path(&args.upstream) {
        Ok(p) => p,
        Err(e) => {
            eprintln!("vigil-docker-proxy: {e}");
            return EXIT_USAGE;
        }
    };
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("vigil-docker-proxy: cannot start the async runtime: {e}");
            return 1;
        }
    };
    let fwd = Arc::new(Forwarder::new(upstream));
    runtime.block_on(async {
        let ls = match listeners(args.listen.as_deref()) {
            Ok(ls) => ls,
            Err(e) => {
                fwd.line(3, &e);
                return EXIT_USAGE;
            }
        };
        fwd.line(
            6,
            &format!(
                "forwarding the calls vigild makes to {}, refusing all others",
                fwd.upstream().display()
            ),
        );
        let _ = sd_notify::notify(&[sd_notify::NotifyState::Ready]);
        serve(ls, fwd, args.max_connections).await;
        1
    })
}
