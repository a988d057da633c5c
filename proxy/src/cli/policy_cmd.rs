//! `popgate policy list|show NAME|enable NAME|disable NAME` (SPEC §6).
//!
//! `list` and `show` describe the directory through [`Catalog`]: when the configuration is
//! invalid they still print every policy whose own file parses, print each error on stderr,
//! and exit 1 (the directory is not something `popgate run` would load; scripts see that in
//! the exit code, people still see the listing). `show` of an unknown name exits 1 naming
//! the known ones.
//!
//! `enable` and `disable` touch one file only: the one whose `name` field is NAME, found by
//! reading just the `name` of each `policies/*.json`, so they work while other files are
//! broken. The new text comes from [`popgate_policy::set_enabled`] (every other byte kept)
//! and is written atomically with the file's mode and owner; the running daemon notices the
//! change by itself. If the directory is invalid afterwards, a warning lists why (the
//! daemon keeps its current configuration until it is fixed); the command still succeeds.
//!
//! JSON shapes: `list` → `[{name, file, enabled, order, direction, tls_support,
//! proxy_action}]` (SPEC §6); `show` → one object with those fields plus
//! `starttls_on_pop3`, `ports: {pop3, pop3s}`, `from`, `to`, `upstream` (string or null),
//! `tls_action` and `tls_profile` (of its proxy action; null when the action is unknown).

use std::fs;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{bail, Context, Result};
use clap::Subcommand;
use serde::Serialize;

use super::catalog::{known_names, Catalog, PolicyEntry};
use super::files;
use super::table::{key_values, print_json, yes_no, JsonArg, Table};
use super::ConfigArg;
use crate::config::dir;

/// `popgate policy ...`.
#[derive(Debug, Subcommand)]
pub enum PolicyCommand {
    /// List every policy, by order (exit 1 when the configuration is invalid; what could
    /// be read is still listed).
    List {
        #[command(flatten)]
        config: ConfigArg,
        #[command(flatten)]
        output: JsonArg,
    },
    /// Show one policy.
    Show {
        /// The policy's `name` field.
        name: String,
        #[command(flatten)]
        config: ConfigArg,
        #[command(flatten)]
        output: JsonArg,
    },
    /// Dry run: which policy, action, TLS profile, legs, upstream and certificate a
    /// connection would get, and why earlier policies were skipped (exit 1: none matches).
    Test {
        #[command(flatten)]
        args: super::policy_test::TestArgs,
        #[command(flatten)]
        config: ConfigArg,
        #[command(flatten)]
        output: JsonArg,
    },
    /// Enable a policy: rewrite its file's "enabled" value, nothing else.
    Enable {
        /// The policy's `name` field.
        name: String,
        #[command(flatten)]
        config: ConfigArg,
    },
    /// Disable a policy: rewrite its file's "enabled" value, nothing else.
    Disable {
        /// The policy's `name` field.
        name: String,
        #[command(flatten)]
        config: ConfigArg,
    },
}

/// Runs a `policy` command.
///
/// # Errors
/// Unreadable directories, unknown names, failed writes; each message names what failed.
pub fn execute(command: PolicyCommand) -> Result<ExitCode> {
    match command {
        PolicyCommand::List { config, output } => list(&config.dir, output.json),
        PolicyCommand::Show {
            name,
            config,
            output,
        } => show(&config.dir, &name, output.json),
        PolicyCommand::Test {
            args,
            config,
            output,
        } => super::policy_test::execute(&config.dir, &args, output.json),
        PolicyCommand::Enable { name, config } => set_enabled(&config.dir, &name, true),
        PolicyCommand::Disable { name, config } => set_enabled(&config.dir, &name, false),
    }
}

/// An element of `policy list --json` (SPEC §6).
#[derive(Debug, Serialize)]
struct Summary<'a> {
    name: &'a str,
    file: &'a str,
    enabled: bool,
    order: u32,
    direction: &'a str,
    tls_support: &'a str,
    proxy_action: &'a str,
}

/// `policy show --json`.
#[derive(Debug, Serialize)]
struct Detail<'a> {
    name: &'a str,
    file: &'a str,
    enabled: bool,
    order: u32,
    direction: &'a str,
    tls_support: &'a str,
    starttls_on_pop3: bool,
    ports: Ports,
    from: &'a [String],
    to: &'a [String],
    upstream: Option<&'a str>,
    proxy_action: &'a str,
    tls_action: Option<&'a str>,
    tls_profile: Option<&'a str>,
}

#[derive(Debug, Serialize)]
struct Ports {
    pop3: u16,
    pop3s: u16,
}

fn list(dir: &Path, json: bool) -> Result<ExitCode> {
    let catalog = Catalog::read(dir)?;
    if json {
        let rows: Vec<Summary<'_>> = catalog.policies.iter().map(summary).collect();
        print_json(&rows)?;
    } else {
        print!("{}", policy_table(&catalog.policies).render());
    }
    catalog.report_errors();
    Ok(catalog.exit_code())
}

fn show(dir: &Path, name: &str, json: bool) -> Result<ExitCode> {
    let catalog = Catalog::read(dir)?;
    let Some(policy) = catalog.policy(name) else {
        catalog.report_errors();
        bail!(
            "no policy named {name:?}; known policies: {}",
            known_names(catalog.policies.iter().map(|p| p.name.as_str()))
        );
    };
    let action = catalog.action(&policy.proxy_action);
    let detail = Detail {
        name: &policy.name,
        file: &policy.file,
        enabled: policy.enabled,
        order: policy.order,
        direction: &policy.direction,
        tls_support: &policy.tls_support,
        starttls_on_pop3: policy.starttls_on_pop3,
        ports: Ports {
            pop3: policy.pop3_port,
            pop3s: policy.pop3s_port,
        },
        from: &policy.from,
        to: &policy.to,
        upstream: policy.upstream.as_deref(),
        proxy_action: &policy.proxy_action,
        tls_action: action.map(|a| a.tls_action.as_str()),
        tls_profile: action.map(|a| a.tls_profile.as_str()),
    };
    if json {
        print_json(&detail)?;
    } else {
        print!("{}", detail_text(&detail));
    }
    catalog.report_errors();
    Ok(catalog.exit_code())
}

fn set_enabled(dir: &Path, name: &str, enabled: bool) -> Result<ExitCode> {
    let scan = scan_names(dir)?;
    let found: Vec<&NamedFile> = scan.named.iter().filter(|f| f.name == name).collect();
    let file = match found.as_slice() {
        [one] => *one,
        [] => bail!("{}", not_found_message(name, &scan)),
        several => bail!(
            "policy name {name:?} is used by several files ({}); nothing was changed",
            several
                .iter()
                .map(|f| f.file.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        ),
    };
    // The scan parsed these bytes as JSON, so they are UTF-8.
    let text = String::from_utf8(file.bytes.clone())
        .with_context(|| format!("{}: not UTF-8", file.file))?;
    let new_text = popgate_policy::set_enabled(&text, enabled)
        .with_context(|| format!("{}: cannot set \"enabled\"", file.file))?;
    let state = if enabled { "enabled" } else { "disabled" };
    if new_text == text {
        println!("policy {name} is already {state} ({})", file.file);
    } else {
        files::rewrite_atomic(&file.path, new_text.as_bytes())?;
        println!("policy {name} {state} ({})", file.file);
    }
    if let Err(err) = dir::load(dir) {
        eprintln!(
            "popgate: warning: the configuration is invalid; `popgate run` refuses it and a \
             running daemon keeps its current configuration until this is fixed:"
        );
        for line in err.lines() {
            eprintln!("{line}");
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn summary(policy: &PolicyEntry) -> Summary<'_> {
    Summary {
        name: &policy.name,
        file: &policy.file,
        enabled: policy.enabled,
        order: policy.order,
        direction: &policy.direction,
        tls_support: &policy.tls_support,
        proxy_action: &policy.proxy_action,
    }
}

fn policy_table(policies: &[PolicyEntry]) -> Table {
    let mut table = Table::new([
        "ORDER",
        "NAME",
        "ENABLED",
        "DIRECTION",
        "TLS SUPPORT",
        "PROXY ACTION",
        "FILE",
    ]);
    for p in policies {
        table.row([
            p.order.to_string(),
            p.name.clone(),
            yes_no(p.enabled).to_owned(),
            p.direction.clone(),
            p.tls_support.clone(),
            p.proxy_action.clone(),
            p.file.clone(),
        ]);
    }
    table
}

fn detail_text(d: &Detail<'_>) -> String {
    let action = match (d.tls_action, d.tls_profile) {
        (Some(tls), Some(profile)) => {
            format!("{} (TLS {tls}, profile {profile})", d.proxy_action)
        }
        _ => format!("{} (not defined)", d.proxy_action),
    };
    key_values(&[
        ("name", d.name.to_owned()),
        ("file", d.file.to_owned()),
        ("enabled", yes_no(d.enabled).to_owned()),
        ("order", d.order.to_string()),
        ("direction", d.direction.to_owned()),
        ("tls support", d.tls_support.to_owned()),
        ("starttls on pop3", yes_no(d.starttls_on_pop3).to_owned()),
        (
            "ports",
            format!("pop3 {}, pop3s {}", d.ports.pop3, d.ports.pop3s),
        ),
        ("from", d.from.join(", ")),
        ("to", d.to.join(", ")),
        ("upstream", d.upstream.unwrap_or("(none)").to_owned()),
        ("proxy action", action),
    ])
}

/// A policy file whose `name` could be read.
#[derive(Debug)]
struct NamedFile {
    name: String,
    /// `policies/x.json`, for messages.
    file: String,
    path: PathBuf,
    bytes: Vec<u8>,
}

/// The result of reading only the `name` of every `policies/*.json`.
#[derive(Debug, Default)]
struct NameScan {
    named: Vec<NamedFile>,
    /// Files whose name could not be read, with why.
    unreadable: Vec<String>,
}

fn scan_names(dir: &Path) -> Result<NameScan> {
    let files = crate::config::dir::json_files(dir, "policies")
        .with_context(|| format!("reading {}", dir.join("policies").display()))?;
    let mut scan = NameScan::default();
    for (file, path) in files {
        match fs::read(&path) {
            Ok(bytes) => match name_of(&bytes) {
                Ok(name) => scan.named.push(NamedFile {
                    name,
                    file,
                    path,
                    bytes,
                }),
                Err(why) => scan.unreadable.push(format!("{file} ({why})")),
            },
            Err(err) => scan.unreadable.push(format!("{file} ({err})")),
        }
    }
    Ok(scan)
}

/// The top-level `name` of a policy file, ignoring everything else in it.
fn name_of(bytes: &[u8]) -> Result<String, String> {
    let value: serde_json::Value =
        serde_json::from_slice(bytes).map_err(|e| format!("not valid JSON: {e}"))?;
    match value.get("name") {
        Some(serde_json::Value::String(name)) => Ok(name.clone()),
        Some(_) => Err("\"name\" is not a string".to_owned()),
        None => Err("no \"name\"".to_owned()),
    }
}

fn not_found_message(name: &str, scan: &NameScan) -> String {
    let mut message = format!(
        "no policy named {name:?}; known policies: {}",
        known_names(scan.named.iter().map(|f| f.name.as_str()))
    );
    if !scan.unreadable.is_empty() {
        message.push_str(&format!(
            "; files whose name could not be read: {}",
            scan.unreadable.join(", ")
        ));
    }
    message
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn name_is_read_from_otherwise_invalid_policies() {
        assert_eq!(name_of(br#"{"name": "a", "bogus": 1}"#), Ok("a".to_owned()));
        assert_eq!(
            name_of(br#"{"name": 3}"#),
            Err("\"name\" is not a string".to_owned())
        );
        assert!(name_of(b"{").unwrap_err().starts_with("not valid JSON"));
    }

    #[test]
    fn not_found_names_the_known_policies_and_unreadable_files() {
        let scan = NameScan {
            named: vec![NamedFile {
                name: "out".to_owned(),
                file: "policies/out.json".to_owned(),
                path: PathBuf::from("/x/policies/out.json"),
                bytes: Vec::new(),
            }],
            unreadable: vec!["policies/bad.json (no \"name\")".to_owned()],
        };
        assert_eq!(
            not_found_message("in", &scan),
            "no policy named \"in\"; known policies: out; files whose name could not be \
             read: policies/bad.json (no \"name\")"
        );
    }

    #[test]
    fn detail_text_lists_every_field() {
        let from = vec!["10.0.0.0/8".to_owned()];
        let to = vec!["any".to_owned()];
        let detail = Detail {
            name: "out",
            file: "policies/out.json",
            enabled: false,
            order: 10,
            direction: "outbound",
            tls_support: "enabled",
            starttls_on_pop3: false,
            ports: Ports {
                pop3: 110,
                pop3s: 995,
            },
            from: &from,
            to: &to,
            upstream: None,
            proxy_action: "Std",
            tls_action: Some("inspect"),
            tls_profile: Some("TLS-Client.Standard"),
        };
        let text = detail_text(&detail);
        assert!(text.contains("enabled:           no\n"), "{text}");
        assert!(
            text.contains("proxy action:      Std (TLS inspect, profile TLS-Client.Standard)\n"),
            "{text}"
        );
        assert!(
            text.contains("ports:             pop3 110, pop3s 995\n"),
            "{text}"
        );
    }
}
