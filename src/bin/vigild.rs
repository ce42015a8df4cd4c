//! vigild: the daemon.

use clap::Parser;
use vigil::cli::VigildArgs;
use vigil::daemon::{self, Options};

fn main() {
    let args = VigildArgs::parse();
    vigil::surface::log::init(args.verbose);
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
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
