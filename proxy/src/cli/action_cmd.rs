//! `popgate action list|show NAME` (SPEC §6): proxy actions and the policies using them.
//!
//! Like `policy list`, both describe an invalid directory as far as its files parse, print
//! the errors on stderr and exit 1; `show` of an unknown name exits 1 naming the known ones.
//!
//! JSON shapes: `show` → `{name, tls_profile, policies: [{name, enabled, tls_support}]}`
//! (SPEC §6; every policy using the action, enabled or not, by order); `list` → `[{name,
//! file, tls_action, tls_profile, policies: [NAME, ...]}]`.

use std::path::Path;
use std::process::ExitCode;

use anyhow::{bail, Result};
use clap::Subcommand;
use serde::Serialize;

use super::catalog::{known_names, ActionEntry, Catalog};
use super::table::{key_values, print_json, yes_no, JsonArg, Table};
use super::ConfigArg;

/// `popgate action ...`.
#[derive(Debug, Subcommand)]
pub enum ActionCommand {
    /// List every proxy action with the policies using it.
    List {
        #[command(flatten)]
        config: ConfigArg,
        #[command(flatten)]
        output: JsonArg,
    },
    /// Show one proxy action and every policy using it, with its TLS support mode.
    Show {
        /// The action's `name` field.
        name: String,
        #[command(flatten)]
        config: ConfigArg,
        #[command(flatten)]
        output: JsonArg,
    },
}

/// Runs an `action` command.
///
/// # Errors
/// Unreadable directories and unknown names.
pub fn execute(command: ActionCommand) -> Result<ExitCode> {
    match command {
        ActionCommand::List { config, output } => list(&config.dir, output.json),
        ActionCommand::Show {
            name,
            config,
            output,
        } => show(&config.dir, &name, output.json),
    }
}

/// An element of `action list --json`.
#[derive(Debug, Serialize)]
struct Summary<'a> {
    name: &'a str,
    file: &'a str,
    tls_action: &'a str,
    tls_profile: &'a str,
    policies: Vec<&'a str>,
}

/// `action show --json` (SPEC §6).
#[derive(Debug, Serialize)]
struct Detail<'a> {
    name: &'a str,
    tls_profile: &'a str,
    policies: Vec<PolicyUse<'a>>,
}

#[derive(Debug, Serialize)]
struct PolicyUse<'a> {
    name: &'a str,
    enabled: bool,
    tls_support: &'a str,
}

fn list(dir: &Path, json: bool) -> Result<ExitCode> {
    let catalog = Catalog::read(dir)?;
    let rows: Vec<Summary<'_>> = catalog
        .actions
        .iter()
        .map(|action| summary(&catalog, action))
        .collect();
    if json {
        print_json(&rows)?;
    } else {
        let mut table = Table::new(["NAME", "TLS ACTION", "TLS PROFILE", "POLICIES", "FILE"]);
        for row in &rows {
            let policies = if row.policies.is_empty() {
                "-".to_owned()
            } else {
                row.policies.join(", ")
            };
            table.row([
                row.name,
                row.tls_action,
                row.tls_profile,
                &policies,
                row.file,
            ]);
        }
        print!("{}", table.render());
    }
    catalog.report_errors();
    Ok(catalog.exit_code())
}

fn show(dir: &Path, name: &str, json: bool) -> Result<ExitCode> {
    let catalog = Catalog::read(dir)?;
    let Some(action) = catalog.action(name) else {
        catalog.report_errors();
        bail!(
            "no proxy action named {name:?}; known actions: {}",
            known_names(catalog.actions.iter().map(|a| a.name.as_str()))
        );
    };
    let detail = Detail {
        name: &action.name,
        tls_profile: &action.tls_profile,
        policies: catalog
            .policies_using(&action.name)
            .into_iter()
            .map(|p| PolicyUse {
                name: &p.name,
                enabled: p.enabled,
                tls_support: &p.tls_support,
            })
            .collect(),
    };
    if json {
        print_json(&detail)?;
    } else {
        print!("{}", detail_text(action, &detail));
    }
    catalog.report_errors();
    Ok(catalog.exit_code())
}

fn summary<'a>(catalog: &'a Catalog, action: &'a ActionEntry) -> Summary<'a> {
    Summary {
        name: &action.name,
        file: &action.file,
        tls_action: &action.tls_action,
        tls_profile: &action.tls_profile,
        policies: catalog
            .policies_using(&action.name)
            .into_iter()
            .map(|p| p.name.as_str())
            .collect(),
    }
}

fn detail_text(action: &ActionEntry, detail: &Detail<'_>) -> String {
    let mut text = key_values(&[
        ("name", action.name.clone()),
        ("file", action.file.clone()),
        ("tls action", action.tls_action.clone()),
        ("tls profile", action.tls_profile.clone()),
    ]);
    if detail.policies.is_empty() {
        text.push_str("policies:     (none uses this action)\n");
        return text;
    }
    text.push_str("policies:\n");
    let mut table = Table::new(["NAME", "ENABLED", "TLS SUPPORT"]);
    for policy in &detail.policies {
        table.row([policy.name, yes_no(policy.enabled), policy.tls_support]);
    }
    for line in table.render().lines() {
        text.push_str("  ");
        text.push_str(line);
        text.push('\n');
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    fn action() -> ActionEntry {
        ActionEntry {
            name: "Std".to_owned(),
            file: "actions/std.json".to_owned(),
            tls_action: "inspect".to_owned(),
            tls_profile: "TLS-Client.Standard".to_owned(),
        }
    }

    #[test]
    fn detail_text_tabulates_the_policies() {
        let action = action();
        let detail = Detail {
            name: "Std",
            tls_profile: "TLS-Client.Standard",
            policies: vec![
                PolicyUse {
                    name: "out",
                    enabled: true,
                    tls_support: "enabled",
                },
                PolicyUse {
                    name: "inbound-mx",
                    enabled: false,
                    tls_support: "required",
                },
            ],
        };
        assert_eq!(
            detail_text(&action, &detail),
            "name:         Std\n\
             file:         actions/std.json\n\
             tls action:   inspect\n\
             tls profile:  TLS-Client.Standard\n\
             policies:\n  \
               NAME        ENABLED  TLS SUPPORT\n  \
               out         yes      enabled\n  \
               inbound-mx  no       required\n"
        );
    }

    #[test]
    fn detail_json_has_the_spec_shape() {
        let detail = Detail {
            name: "Std",
            tls_profile: "P",
            policies: vec![PolicyUse {
                name: "out",
                enabled: true,
                tls_support: "enabled",
            }],
        };
        assert_eq!(
            serde_json::to_value(&detail).unwrap(),
            serde_json::json!({"name": "Std", "tls_profile": "P",
                "policies": [{"name": "out", "enabled": true, "tls_support": "enabled"}]})
        );
    }
}
