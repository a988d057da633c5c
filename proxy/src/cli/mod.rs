//! The command line (SPEC §6). Exit codes: 0 ok, 1 invalid configuration or not found,
//! 2 usage (clap's own).

mod check;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// popgate: transparent TLS-inspecting POP3 proxy.
#[derive(Debug, Parser)]
#[command(name = "popgate", version, about)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
}

/// `--config DIR`, shared by every command.
#[derive(Debug, clap::Args)]
pub struct ConfigArg {
    /// The configuration directory.
    #[arg(long = "config", value_name = "DIR", default_value = "/etc/popgate")]
    pub dir: PathBuf,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the proxy.
    Run {
        #[command(flatten)]
        config: ConfigArg,
    },
    /// Validate the configuration; exit 1 with every error.
    Check {
        #[command(flatten)]
        config: ConfigArg,
    },
    /// A self-contained trial: temporary PKI, a sample mailbox, popgate in front of it.
    Demo {
        /// Leave it running and print how to point a client at it.
        #[arg(long)]
        keep_running: bool,
    },
}

impl Cli {
    /// Runs the chosen command.
    pub fn execute(self) -> ExitCode {
        match self.command {
            Command::Run { config } => run(config.dir),
            Command::Check { config } => check::execute(&config.dir),
            Command::Demo { keep_running } => crate::demo::run(keep_running),
        }
    }
}

fn run(dir: PathBuf) -> ExitCode {
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(err) => {
            eprintln!("popgate: starting the runtime: {err}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(crate::runtime::run(dir, None)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("popgate: {err:#}");
            ExitCode::FAILURE
        }
    }
}
