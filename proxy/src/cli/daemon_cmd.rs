//! `popgate status`, `popgate sessions [--policy NAME] [--user NAME]` and
//! `popgate sessions kill ID` (SPEC §6): questions to the running daemon through its
//! control socket (`control/`).
//!
//! Exit codes: 0 answered; 1 the daemon answered that the command failed (an unknown
//! session id); 3 nobody answers on the socket. JSON shapes are the control protocol's
//! `StatusView` and `SessionView` as they come; the tables are for people.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::Subcommand;

use super::table::{key_values, JsonArg, Table};
use super::ConfigArg;
use crate::control::client::{self, ControlError};
use crate::control::protocol::{Command, StatusView};
use crate::registry::SessionView;

/// The exit code of "the daemon is unreachable" (SPEC §6).
pub const UNREACHABLE: u8 = 3;

/// Where to find the daemon.
#[derive(Debug, clap::Args)]
pub struct SocketArgs {
    #[command(flatten)]
    config: ConfigArg,
    /// The control socket (default: `control.socket` of DIR/popgate.json).
    #[arg(long, value_name = "PATH")]
    socket: Option<PathBuf>,
}

/// `popgate sessions ...`.
#[derive(Debug, clap::Args)]
pub struct SessionsArgs {
    #[command(subcommand)]
    kill: Option<SessionsCommand>,
    /// Only sessions of this policy.
    #[arg(long, value_name = "NAME")]
    policy: Option<String>,
    /// Only sessions of this user.
    #[arg(long, value_name = "NAME")]
    user: Option<String>,
    #[command(flatten)]
    socket: SocketArgs,
    #[command(flatten)]
    output: JsonArg,
}

/// `popgate sessions kill ID`.
#[derive(Debug, Subcommand)]
pub enum SessionsCommand {
    /// End one session; its client gets `-ERR [SYS/TEMP] session ended by the administrator`.
    Kill {
        /// The session id (`popgate sessions` lists them).
        id: u64,
        #[command(flatten)]
        socket: SocketArgs,
    },
}

/// Runs `popgate status`.
pub fn status(socket: &SocketArgs, output: JsonArg) -> ExitCode {
    let answer = match ask(socket, Command::Status) {
        Ok(answer) => answer,
        Err(code) => return code,
    };
    if output.json {
        return print(&answer);
    }
    let Ok(status) = serde_json::from_value::<StatusView>(answer) else {
        eprintln!("popgate: the daemon's status is not understood");
        return ExitCode::FAILURE;
    };
    let last = &status.last_reload;
    let mut reload = format!("{} ({}, {})", last.result, last.trigger, last.at);
    for error in &last.errors {
        reload.push_str("\n  ");
        reload.push_str(error);
    }
    print!(
        "{}",
        key_values(&[
            ("pid", status.pid.to_string()),
            ("version", status.version.clone()),
            ("uptime", duration(status.uptime_s)),
            ("generation", status.generation.to_string()),
            ("last reload", reload),
            ("listeners", status.listeners.join(" ")),
            ("sessions", status.sessions_active.to_string()),
            ("quarantine", format!("{} bytes", status.quarantine_bytes)),
            ("spool", format!("{} bytes", status.spool_bytes)),
        ])
    );
    ExitCode::SUCCESS
}

/// Runs `popgate sessions` or `popgate sessions kill ID`.
pub fn sessions(args: SessionsArgs) -> ExitCode {
    if let Some(SessionsCommand::Kill { id, socket }) = args.kill {
        return match ask(&socket, Command::Kill { id }) {
            Ok(_) => {
                println!("session {id} ended");
                ExitCode::SUCCESS
            }
            Err(code) => code,
        };
    }
    let answer = match ask(&args.socket, Command::Sessions) {
        Ok(answer) => answer,
        Err(code) => return code,
    };
    let Ok(mut sessions) = serde_json::from_value::<Vec<SessionView>>(answer) else {
        eprintln!("popgate: the daemon's session list is not understood");
        return ExitCode::FAILURE;
    };
    sessions.retain(|s| {
        args.policy.as_ref().is_none_or(|p| &s.policy == p)
            && args.user.as_ref().is_none_or(|u| &s.user == u)
    });
    if args.output.json {
        return print(&sessions);
    }
    let mut table = Table::new([
        "ID",
        "CLIENT",
        "DESTINATION",
        "POLICY",
        "ACTION",
        "USER",
        "STATE",
        "CLIENT TLS",
        "SERVER TLS",
        "IN",
        "OUT",
        "MESSAGES",
        "AGE",
    ]);
    for s in &sessions {
        let verdicts: Vec<String> = s
            .messages
            .verdicts
            .iter()
            .map(|(verdict, n)| format!("{verdict}={n}"))
            .collect();
        let messages = if verdicts.is_empty() {
            s.messages.total.to_string()
        } else {
            format!("{} ({})", s.messages.total, verdicts.join(","))
        };
        table.row([
            s.id.to_string(),
            s.client.clone(),
            s.original_destination.clone(),
            dash(&s.policy),
            dash(&s.action),
            dash(&s.user),
            s.state.clone(),
            s.client_tls.clone(),
            s.server_tls.clone(),
            s.bytes_from_client.to_string(),
            s.bytes_from_server.to_string(),
            messages,
            duration(s.age_s),
        ]);
    }
    print!("{}", table.render());
    ExitCode::SUCCESS
}

/// Asks the daemon; on failure prints why and returns the exit code.
fn ask(socket: &SocketArgs, command: Command) -> Result<serde_json::Value, ExitCode> {
    let path = socket_path(socket);
    client::ask(&path, command).map_err(|err| {
        eprintln!("popgate: {}", chain(&err));
        match err {
            ControlError::Unreachable { .. } => ExitCode::from(UNREACHABLE),
            ControlError::Refused { .. } | ControlError::Protocol(_) => ExitCode::FAILURE,
        }
    })
}

fn socket_path(socket: &SocketArgs) -> PathBuf {
    socket
        .socket
        .clone()
        .unwrap_or_else(|| client::socket_path(Path::new(&socket.config.dir)))
}

fn print<T: serde::Serialize>(value: &T) -> ExitCode {
    match super::table::print_json(value) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("popgate: {err:#}");
            ExitCode::FAILURE
        }
    }
}

/// An error and its sources, `: `-separated.
fn chain(err: &dyn std::error::Error) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

fn dash(text: &str) -> String {
    if text.is_empty() { "-" } else { text }.to_owned()
}

/// `3d4h`, `2h5m`, `4m10s`, `7s`.
fn duration(seconds: u64) -> String {
    let (d, h, m, s) = (
        seconds / 86_400,
        seconds / 3600 % 24,
        seconds / 60 % 60,
        seconds % 60,
    );
    match (d, h, m) {
        (0, 0, 0) => format!("{s}s"),
        (0, 0, _) => format!("{m}m{s}s"),
        (0, _, _) => format!("{h}h{m}m"),
        _ => format!("{d}d{h}h"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_like_uptime() {
        assert_eq!(duration(7), "7s");
        assert_eq!(duration(250), "4m10s");
        assert_eq!(duration(7500), "2h5m");
        assert_eq!(duration(3 * 86_400 + 4 * 3600 + 9), "3d4h");
    }
}
