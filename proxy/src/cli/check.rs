//! `popgate check` (SPEC §6): validate everything a run or a reload would load, print every
//! error on stderr (one per line, each naming its file, and its JSON path where it has
//! one), exit 1; or print "DIR: configuration is valid" and exit 0.
//!
//! What it checks, in this order:
//! - DIR exists and is a directory (a mistyped `--config` is not an empty configuration);
//! - every file parses and the configuration is consistent (`popgate_policy`; editor files
//!   such as `policies/.#out.json` are not configuration, see `config::dir`);
//! - the `pki/` files the enabled policies need exist, are readable, and match their keys
//!   (`config::pki_needs`, the same check `run` and every reload make);
//! - `user` and `group` exist, when popgate would switch to them: when `check` runs as root
//!   (as `run` would), or when `popgate.json` names them explicitly (an administrator
//!   checking as themselves a configuration the service will start as root). Running as
//!   another user without naming them, `run` would stay that user, so the defaults are not
//!   looked up;
//! - trust files of TLS profiles and the rest of what `run` prepares.
//!
//! As root (when `run` would switch to `user`), `check` finally runs itself again as that
//! user, so files the service user cannot read are reported (prefixed `as user NAME:`),
//! as `run` would find right after its switch (it refuses to start then).

use std::path::Path;
use std::process::ExitCode;

use popgate_policy::{Config, Sources};
use time::OffsetDateTime;

use crate::config::dir;
use crate::config::pki_needs::PkiNeeds;
use crate::config::prepared::Prepared;
use crate::privileges::{self, Plan};

/// Validates the configuration in `dir`.
pub fn execute(config_dir: &Path) -> ExitCode {
    let errors = errors(config_dir);
    if errors.is_empty() {
        println!("{}: configuration is valid", config_dir.display());
        return ExitCode::SUCCESS;
    }
    for error in errors {
        eprintln!("{error}");
    }
    ExitCode::FAILURE
}

/// Every problem found, one line each.
fn errors(config_dir: &Path) -> Vec<String> {
    let sources = match dir::read_sources(config_dir) {
        Ok(sources) => sources,
        Err(err) => return err.lines(),
    };
    let config = match Config::from_sources(&sources) {
        Ok(config) => config,
        Err(errors) => return dir::LoadError::Invalid(errors).lines(),
    };
    let mut errors: Vec<String> = PkiNeeds::of(&config)
        .check(config_dir, OffsetDateTime::now_utc())
        .iter()
        .map(ToString::to_string)
        .collect();
    let global = config.global().clone();
    if would_switch(global.user(), &sources) {
        if let Err(err) = privileges::account(global.user(), global.group()) {
            errors.extend(format!("{err:#}").lines().map(str::to_owned));
        }
    }
    if errors.is_empty() {
        if let Err(err) = Prepared::new(config, config_dir) {
            errors.extend(format!("{err:#}").lines().map(str::to_owned));
        }
    }
    if errors.is_empty() && privileges::plan(global.user()) == Plan::SwitchFromRoot {
        errors.extend(as_service_user(config_dir, global.user(), global.group()));
    }
    errors
}

/// Runs this check again as `user`/`group`, which `run` switches to and reloads as: root
/// reads every file, the service user perhaps not (SPEC §6: files that are unreadable).
/// Its errors come back prefixed with the user.
fn as_service_user(config_dir: &Path, user: &str, group: &str) -> Vec<String> {
    use std::os::unix::process::CommandExt;

    let failed = |why: String| vec![format!("checking as user {user}: {why}")];
    let account = match privileges::account(user, group) {
        Ok(account) => account,
        Err(err) => return failed(format!("{err:#}")),
    };
    let exe = match std::env::current_exe() {
        Ok(exe) => exe,
        Err(err) => return failed(format!("finding popgate's own binary: {err}")),
    };
    // std drops root's supplementary groups when it sets the uid, as `run` does.
    let output = std::process::Command::new(exe)
        .args(["check", "--config"])
        .arg(config_dir)
        .uid(account.uid())
        .gid(account.gid())
        .stdin(std::process::Stdio::null())
        .output();
    match output {
        Ok(output) if output.status.success() => Vec::new(),
        Ok(output) => String::from_utf8_lossy(&output.stderr)
            .lines()
            .map(|line| format!("as user {user}: {line}"))
            .collect(),
        Err(err) => {
            // Typically a binary the service user cannot execute (a build under /root):
            // the files were still checked as root, so this is a warning, not a failure.
            eprintln!(
                "warning: could not check the configuration as user {user} (running this \
                 popgate binary as {user}: {err}); `run` will, right after it switches"
            );
            Vec::new()
        }
    }
}

/// Whether `run` would switch to the configured account (see the file doc).
fn would_switch(user: &str, sources: &Sources) -> bool {
    if user == "root" {
        return false;
    }
    privileges::plan(user) == Plan::SwitchFromRoot || names_account(sources)
}

/// Whether `popgate.json` sets `user` or `group` itself.
fn names_account(sources: &Sources) -> bool {
    let Some(global) = &sources.global else {
        return false;
    };
    serde_json::from_slice::<serde_json::Value>(&global.bytes)
        .ok()
        .and_then(|value| {
            value
                .as_object()
                .map(|object| object.contains_key("user") || object.contains_key("group"))
        })
        .unwrap_or(false)
}

#[cfg(test)]
mod tests {
    use popgate_policy::Source;

    use super::*;

    #[test]
    fn an_explicit_account_is_checked_even_when_not_root() {
        let with = |json: &str| Sources {
            global: Some(Source::new("popgate.json", json)),
            ..Sources::default()
        };
        assert!(names_account(&with(r#"{"user": "mail"}"#)));
        assert!(names_account(&with(r#"{"group": "mail"}"#)));
        assert!(!names_account(&with(r#"{"interception": "none"}"#)));
        assert!(!names_account(&Sources::default()));
        assert!(!would_switch("root", &with(r#"{"user": "root"}"#)));
    }
}
