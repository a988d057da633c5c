//! Documentation generated from the CLI definition itself: shell completions
//! (`popgate completions bash|zsh|fish`, clap_complete) and the man pages `popgate(8)` and
//! `popgate-COMMAND(8)` (clap_mangen), so neither can drift from the parser.
//!
//! The Debian package ships them from `packaging/man/` and `packaging/completions/`,
//! written by the hidden `popgate man --out packaging` and checked in; a unit test fails
//! when the checked-in files differ from what this build generates (regenerate with
//! `cargo run -p popgate -- man --out packaging`). `popgate.json(5)`, the field reference,
//! is written by hand in `packaging/man/popgate.json.5`.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, Result};
use clap::CommandFactory;
use clap_complete::Shell;

use super::Cli;

/// The shells `popgate completions` knows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum CompletionShell {
    /// GNU bash.
    Bash,
    /// Z shell.
    Zsh,
    /// fish.
    Fish,
}

impl CompletionShell {
    fn shell(self) -> Shell {
        match self {
            CompletionShell::Bash => Shell::Bash,
            CompletionShell::Zsh => Shell::Zsh,
            CompletionShell::Fish => Shell::Fish,
        }
    }

    /// Where Debian looks for this shell's completions, relative to `packaging/`.
    fn packaged(self) -> &'static str {
        match self {
            CompletionShell::Bash => "completions/popgate.bash",
            CompletionShell::Zsh => "completions/_popgate",
            CompletionShell::Fish => "completions/popgate.fish",
        }
    }
}

/// Prints the completion script for `shell`.
///
/// # Errors
/// Standard output failures.
pub fn completions(shell: CompletionShell) -> Result<ExitCode> {
    let mut out = std::io::stdout().lock();
    out.write_all(&completion_script(shell))?;
    out.flush()?;
    Ok(ExitCode::SUCCESS)
}

/// Writes every man page and completion script under `out` (`man/`, `completions/`).
///
/// # Errors
/// The files cannot be written.
pub fn man(out: &Path) -> Result<ExitCode> {
    for (path, bytes) in generated()? {
        let path = out.join(path);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)
                .with_context(|| format!("creating {}", parent.display()))?;
        }
        std::fs::write(&path, bytes).with_context(|| format!("writing {}", path.display()))?;
    }
    Ok(ExitCode::SUCCESS)
}

/// Every generated file, by its path relative to `packaging/`.
///
/// # Errors
/// A page cannot be rendered.
pub fn generated() -> Result<Vec<(PathBuf, Vec<u8>)>> {
    let mut files = Vec::new();
    let command = Cli::command();
    files.push((PathBuf::from("man/popgate.8"), page(command.clone())?));
    for sub in command.get_subcommands().filter(|s| !s.is_hide_set()) {
        let name = format!("popgate-{}", sub.get_name());
        let sub = sub.clone().name(name.clone()).display_name(name.clone());
        files.push((PathBuf::from(format!("man/{name}.8")), page(sub)?));
    }
    for shell in [
        CompletionShell::Bash,
        CompletionShell::Zsh,
        CompletionShell::Fish,
    ] {
        files.push((PathBuf::from(shell.packaged()), completion_script(shell)));
    }
    Ok(files)
}

fn page(command: clap::Command) -> Result<Vec<u8>> {
    let mut bytes = Vec::new();
    clap_mangen::Man::new(command)
        .section("8")
        .manual("popgate manual")
        .render(&mut bytes)
        .context("rendering a man page")?;
    Ok(bytes)
}

fn completion_script(shell: CompletionShell) -> Vec<u8> {
    let mut bytes = Vec::new();
    clap_complete::generate(shell.shell(), &mut Cli::command(), "popgate", &mut bytes);
    bytes
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_packaged_pages_and_completions_match_the_cli() {
        let packaging = Path::new(env!("CARGO_MANIFEST_DIR")).join("../packaging");
        let mut stale = Vec::new();
        for (path, bytes) in generated().unwrap() {
            if std::fs::read(packaging.join(&path)).ok().as_deref() != Some(&bytes[..]) {
                stale.push(path.display().to_string());
            }
        }
        assert!(
            stale.is_empty(),
            "stale or missing in packaging/: {stale:?}; run `cargo run -p popgate -- man --out \
             packaging`"
        );
        let reference = std::fs::read_to_string(packaging.join("man/popgate.json.5")).unwrap();
        for field in [
            "interception",
            "state_dir",
            "control",
            "max_age_days",
            "tls_support",
            "upstream",
            "proxy_action",
            "deny_message",
            "antivirus",
            "upstream_tls",
            "force_encrypt",
            "invalid_certificate",
            "tls_failure_holddown_s",
            "starttls_on_pop3",
        ] {
            assert!(reference.contains(field), "popgate.json(5) lacks {field}");
        }
    }

    #[test]
    fn completions_know_the_commands() {
        let bash = String::from_utf8(completion_script(CompletionShell::Bash)).unwrap();
        for word in ["quarantine", "sessions", "status", "policy"] {
            assert!(bash.contains(word), "{word}");
        }
    }
}
