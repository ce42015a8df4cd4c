//! vigilctl: the operator's CLI.

use clap::Parser;
use vigil::cli::{ctl, VigilctlArgs};

fn main() {
    let args = VigilctlArgs::parse();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    match runtime.block_on(ctl::run(args)) {
        Ok(text) => {
            if !text.is_empty() {
                // A reader that went away (`| head`) is no error of ours.
                use std::io::Write;
                let _ = writeln!(std::io::stdout(), "{text}");
            }
        }
        Err(f) => {
            eprintln!("vigilctl: {}", f.message);
            std::process::exit(f.code);
        }
    }
}
