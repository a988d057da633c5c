//! The command line (SPEC §6). Exit codes: 0 ok, 1 invalid configuration or not found,
//! 2 usage (clap's own).
//!
//! The administrator commands live one group per file (`policy_cmd.rs`, `action_cmd.rs`,
//! `ca_cmd.rs`, `cert_cmd.rs`), each documenting its output shapes; `catalog.rs`,
//! `pki_files.rs`, `files.rs` and `table.rs` are what they share.
// The command line is synchronous: blocking file I/O is its job (the daemon's own
// modules keep it off the runtime threads; see proxy/clippy.toml).
#![allow(clippy::disallowed_methods)]

mod action_cmd;
mod ca_cmd;
mod catalog;
mod cert_cmd;
mod check;
pub(crate) use crate::files;
mod pki_files;
mod policy_cmd;
mod table;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use crate::privileges;

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
    /// List, show, enable and disable policies.
    #[command(subcommand)]
    Policy(policy_cmd::PolicyCommand),
    /// List and show proxy actions and the policies using them.
    #[command(subcommand)]
    Action(action_cmd::ActionCommand),
    /// Manage the Proxy Authority (and the untrusted CA).
    #[command(subcommand)]
    Ca(ca_cmd::CaCommand),
    /// Manage and inspect the certificates in pki/.
    #[command(subcommand)]
    Cert(cert_cmd::CertCommand),
}

impl Cli {
    /// Runs the chosen command.
    pub fn execute(self) -> ExitCode {
        match self.command {
            Command::Run { config } => run(config.dir),
            Command::Check { config } => check::execute(&config.dir),
            Command::Demo { keep_running } => crate::demo::run(keep_running),
            Command::Policy(command) => report(policy_cmd::execute(command)),
            Command::Action(command) => report(action_cmd::execute(command)),
            Command::Ca(command) => report(ca_cmd::execute(command)),
            Command::Cert(command) => report(cert_cmd::execute(command)),
        }
    }
}

/// Prints an administrator command's error on stderr; its exit code is 1.
fn report(result: anyhow::Result<ExitCode>) -> ExitCode {
    result.unwrap_or_else(|err| {
        eprintln!("popgate: {err:#}");
        ExitCode::FAILURE
    })
}

fn run(dir: PathBuf) -> ExitCode {
    // Before the runtime spawns its threads: they inherit what is set here (see
    // `privileges`). An invalid configuration is left to `runtime::run` to report.
    let plan = match crate::config::dir::load(&dir) {
        Ok(config) => {
            let global = config.global();
            let plan = privileges::plan(global.user());
            if let Err(err) = privileges::confine_process(plan, global.user(), global.group()) {
                eprintln!("popgate: {err:#}");
                return ExitCode::FAILURE;
            }
            plan
        }
        Err(_) => privileges::Plan::Unchanged,
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .on_thread_start(move || privileges::confine_runtime_thread(plan))
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
