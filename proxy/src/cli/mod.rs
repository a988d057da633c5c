//! The command line (SPEC §6). Exit codes: 0 ok, 1 invalid configuration or not found,
//! 2 usage (clap's own), 3 the daemon is unreachable (`status`, `sessions`).
//!
//! The administrator commands live one group per file (`policy_cmd.rs`, `action_cmd.rs`,
//! `ca_cmd.rs`, `cert_cmd.rs`), each documenting its output shapes; `catalog.rs`,
//! `pki_files.rs`, `files.rs` and `table.rs` are what they share.

mod action_cmd;
mod ca_cmd;
mod catalog;
mod cert_cmd;
mod check;
mod config_dump;
mod daemon_cmd;
mod docs;
pub(crate) use crate::files;
mod pki_files;
mod policy_cmd;
mod policy_test;
mod quarantine_cmd;
mod table;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use crate::privileges;

/// popgate: transparent TLS-inspecting POP3 proxy.
#[derive(Debug, Parser)]
#[command(name = "popgate", version, about, after_long_help = AFTER_HELP)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
}

/// Exit codes and files, for `--help` and popgate(8).
const AFTER_HELP: &str = "\
Exit status: 0 success; 1 the command ran and found a problem (invalid configuration, no \
policy matches, unknown id); 2 usage error; 3 the daemon is unreachable (status, sessions).

Files: /etc/popgate (configuration, see popgate.json(5)), /var/lib/popgate/quarantine, \
/run/popgate/control.sock.";

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
    /// The running daemon: generation, last reload, listeners, sessions, state use
    /// (exit 3 when it does not answer).
    Status {
        #[command(flatten)]
        socket: daemon_cmd::SocketArgs,
        #[command(flatten)]
        output: table::JsonArg,
    },
    /// Live sessions of the running daemon; `sessions kill ID` ends one.
    Sessions(daemon_cmd::SessionsArgs),
    /// List, show, export, delete and purge quarantined originals.
    #[command(subcommand)]
    Quarantine(quarantine_cmd::QuarantineCommand),
    /// The effective configuration.
    #[command(subcommand)]
    Config(ConfigCommand),
    /// Print shell completions (bash, zsh or fish).
    Completions {
        /// The shell.
        shell: docs::CompletionShell,
    },
    /// Write the man pages and completions (packaging step).
    #[command(hide = true)]
    Man {
        /// Directory to write man/ and completions/ into.
        #[arg(long, value_name = "DIR")]
        out: PathBuf,
    },
}

/// `popgate config ...`.
#[derive(Debug, Subcommand)]
enum ConfigCommand {
    /// Print the effective configuration as JSON, every default filled in
    /// (`{global, policies, actions, tls_profiles}`); exit 1 with every error when invalid.
    Dump {
        #[command(flatten)]
        config: ConfigArg,
    },
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
            Command::Status { socket, output } => daemon_cmd::status(&socket, output),
            Command::Sessions(args) => daemon_cmd::sessions(args),
            Command::Quarantine(command) => report(quarantine_cmd::execute(command)),
            Command::Config(ConfigCommand::Dump { config }) => {
                report(config_dump::execute(&config.dir))
            }
            Command::Completions { shell } => report(docs::completions(shell)),
            Command::Man { out } => report(docs::man(&out)),
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
    let result = runtime.block_on(crate::runtime::run(dir, None));
    // The log thread writes what is still queued before anything else is printed.
    crate::log_writer::flush();
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("popgate: {err:#}");
            ExitCode::FAILURE
        }
    }
}
