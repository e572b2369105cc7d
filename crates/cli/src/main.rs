//! `lifeboat`: the one binary of the project (controller, CLI tools and the demo).
//!
//! Each subcommand lives in its own module under `commands/`; this file only parses the
//! command line, sets up logging and turns the outcome into an exit code.

mod commands;
mod kv;
mod logging;
mod output;
mod watch;

use std::process::ExitCode;

use clap::Parser;

/// The allocator (the `mimalloc` feature, on by default; BENCHMARKS.md compares it with
/// musl's and glibc's).
#[cfg(feature = "mimalloc")]
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    let cli = commands::Cli::parse();
    if let Err(err) = logging::init(&cli.logging()) {
        eprintln!("error: {err:#}");
        return commands::EXIT_USAGE.into();
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(err) => {
            eprintln!("error: cannot start the async runtime: {err}");
            return commands::EXIT_USAGE.into();
        }
    };
    match runtime.block_on(commands::run(cli)) {
        Ok(code) => code,
        Err(err) => {
            eprintln!("error: {err:#}");
            commands::EXIT_USAGE.into()
        }
    }
}
