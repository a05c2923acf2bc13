//! `flowmesh`: the one user-facing binary. It parses arguments and calls the crates; the work
//! happens in them.

mod validate;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// A sidecar that tracks, acts on and orchestrates business flows across microservices.
#[derive(Parser)]
#[command(name = "flowmesh", version, about, long_about = None, propagate_version = true)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    Validate(validate::Args),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Validate(args) => validate::run(&args),
    }
}
