//! `popgate quarantine list | show ID | export ID [--out FILE] | delete ID |
//! purge --older-than DAYS` (SPEC §6): the quarantined originals under
//! `state_dir/quarantine`, read directly (the daemon need not run).
//!
//! Only `popgate.json` is read (for `state_dir`), so the quarantine stays manageable while
//! policies are being edited. `export` writes the original byte for byte (to stdout or
//! `--out FILE`, created 0600). Exit 1 for an unknown id. JSON: `list` → array of `{id,
//! received_at, policy, action, user, rule, reason, size, message_id}`, `show` → one of
//! them, `purge` → `{purged: [ids]}`.

use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, SystemTime};

use anyhow::{Context, Result};
use clap::Subcommand;

use super::table::{key_values, print_json, JsonArg, Table};
use super::ConfigArg;
use crate::state::quarantine::Quarantine;

/// `popgate quarantine ...`.
#[derive(Debug, Subcommand)]
pub enum QuarantineCommand {
    /// List the quarantined messages, oldest first.
    List {
        #[command(flatten)]
        config: ConfigArg,
        #[command(flatten)]
        output: JsonArg,
    },
    /// Show who, when, policy, rule and reason of one message.
    Show {
        /// The quarantine id (the replacement message names it).
        id: String,
        #[command(flatten)]
        config: ConfigArg,
        #[command(flatten)]
        output: JsonArg,
    },
    /// Write the original message, byte for byte.
    Export {
        /// The quarantine id.
        id: String,
        /// Write here (created with mode 0600) instead of standard output.
        #[arg(long, value_name = "FILE")]
        out: Option<PathBuf>,
        #[command(flatten)]
        config: ConfigArg,
    },
    /// Remove one message.
    Delete {
        /// The quarantine id.
        id: String,
        #[command(flatten)]
        config: ConfigArg,
    },
    /// Remove every message quarantined more than DAYS days ago.
    Purge {
        /// Age in days (0 removes everything).
        #[arg(long, value_name = "DAYS")]
        older_than: u32,
        #[command(flatten)]
        config: ConfigArg,
        #[command(flatten)]
        output: JsonArg,
    },
}

/// Runs a `quarantine` command.
///
/// # Errors
/// An invalid `popgate.json`, an unknown id, or a file system failure.
pub fn execute(command: QuarantineCommand) -> Result<ExitCode> {
    match command {
        QuarantineCommand::List { config, output } => {
            let entries = store(&config.dir)?.list()?;
            if output.json {
                print_json(&entries)?;
                return Ok(ExitCode::SUCCESS);
            }
            let mut table = Table::new([
                "ID",
                "RECEIVED",
                "POLICY",
                "USER",
                "SIZE",
                "RULE",
                "MESSAGE-ID",
            ]);
            for e in &entries {
                table.row([
                    e.id.clone(),
                    e.received_at.clone(),
                    e.policy.clone(),
                    e.user.clone(),
                    e.size.to_string(),
                    e.rule.clone(),
                    e.message_id.clone(),
                ]);
            }
            print!("{}", table.render());
        }
        QuarantineCommand::Show { id, config, output } => {
            let entry = store(&config.dir)?.show(&id)?;
            if output.json {
                print_json(&entry)?;
                return Ok(ExitCode::SUCCESS);
            }
            print!(
                "{}",
                key_values(&[
                    ("id", entry.id),
                    ("received", entry.received_at),
                    ("policy", entry.policy),
                    ("action", entry.action),
                    ("user", entry.user),
                    ("rule", entry.rule),
                    ("reason", entry.reason),
                    ("size", format!("{} bytes", entry.size)),
                    ("message-id", entry.message_id),
                ])
            );
        }
        QuarantineCommand::Export { id, out, config } => {
            let original = store(&config.dir)?.original(&id)?;
            match out {
                Some(path) => write_private(&path, &original)?,
                None => {
                    let mut stdout = std::io::stdout().lock();
                    stdout.write_all(&original)?;
                    stdout.flush()?;
                }
            }
        }
        QuarantineCommand::Delete { id, config } => {
            store(&config.dir)?.delete(&id)?;
            println!("deleted {id}");
        }
        QuarantineCommand::Purge {
            older_than,
            config,
            output,
        } => {
            let age = Duration::from_secs(u64::from(older_than) * 86_400);
            let purged = store(&config.dir)?.purge(age, SystemTime::now())?;
            if output.json {
                print_json(&serde_json::json!({ "purged": purged }))?;
            } else {
                println!("purged {} message(s)", purged.len());
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// The quarantine named by `DIR/popgate.json`.
fn store(dir: &Path) -> Result<Quarantine> {
    let state = global_state(dir)?;
    Ok(Quarantine::new(&state))
}

/// `state_dir` and friends from `DIR/popgate.json` alone.
pub(super) fn global_state(dir: &Path) -> Result<popgate_policy::State> {
    let mut sources = crate::config::dir::read_sources(dir).map_err(|e| anyhow::anyhow!("{e}"))?;
    sources.policies.clear();
    sources.actions.clear();
    sources.tls_profiles.clear();
    let config = popgate_policy::Config::from_sources(&sources).map_err(|errors| {
        let lines: Vec<String> = errors.iter().map(ToString::to_string).collect();
        anyhow::anyhow!("{}", lines.join("\n"))
    })?;
    Ok(config.global().state().clone())
}

fn write_private(path: &Path, bytes: &[u8]) -> Result<()> {
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)
        .with_context(|| format!("creating {}", path.display()))?;
    file.write_all(bytes)
        .and_then(|()| file.sync_all())
        .with_context(|| format!("writing {}", path.display()))
}
