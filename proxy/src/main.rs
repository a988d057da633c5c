//! The `popgate` binary: parse the command line and run the command.

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    popgate::cli::Cli::parse().execute()
}
