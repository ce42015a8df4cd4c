//! vigil-docker-proxy: the Docker socket vigild talks to, forwarding only the calls it makes.

use clap::Parser;
use vigil::proxy::{run, ProxyArgs};

fn main() {
    std::process::exit(run(ProxyArgs::parse()));
}
