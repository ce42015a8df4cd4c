//! vigild: the daemon.

use clap::Parser;
use vigil::cli::VigildArgs;
use vigil::daemon::{self, Options};

/// Tokio workers: the loop, probes and surfaces are I/O-bound, and blocking reads go to the
/// blocking pool, so two are enough on any box (the Jetson has 12 cores).
const WORKERS: usize = 2;

/// Each thread that allocates gets an arena of its own from glibc (up to 8 per core), and
/// each keeps what its thread freed: with the workers, the blocking pool and the store
/// thread that was most of vigild's heap. One arena serves this daemon's few threads.
#[cfg(target_env = "gnu")]
fn one_malloc_arena() {
    // SAFETY: mallopt only sets a tunable; called first in main, before any other thread.
    unsafe {
        libc::mallopt(libc::M_ARENA_MAX, 1);
    }
}

#[cfg(not(target_env = "gnu"))]
fn one_malloc_arena() {}

fn main() {
    one_malloc_arena();
    let args = VigildArgs::parse();
    vigil::surface::log::init(args.verbose);
    vigil::sys::http::install_tls_provider();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(WORKERS)
        .thread_name("vigild")
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("vigild: cannot start the async runtime: {e}");
            std::process::exit(1);
        }
    };
    let opts = Options {
        config: args.config,
        policies: args.policies,
        state_dir: args.state_dir,
        bus: args.bus,
        listen: args.listen,
    };
    let result = runtime.block_on(daemon::run(opts));
    // Do not wait for a read stuck in the kernel (a hung mount) to end the process.
    runtime.shutdown_timeout(std::time::Duration::from_secs(2));
    if let Err(e) = result {
        tracing::error!(vigil_event = "fatal", "{e}");
        std::process::exit(e.exit_code());
    }
}
