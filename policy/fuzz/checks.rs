//! What the config-loader fuzz target checks, shared with `policy/tests/fuzz_corpus.rs`
//! (which replays the checked-in corpus as ordinary tests).
//!
//! Input: up to four files separated by 0xFF (`popgate.json`, `policies/p.json`,
//! `actions/a.json`, `tls-profiles/t.json`; a missing one is absent). Invariants: loading
//! never panics and is deterministic; a rejected configuration has at least one error,
//! each naming one of the given files and a JSON path, and a bounded number of them
//! (salvaging every error of a file must terminate); an accepted one resolves every
//! policy's action and profile by name.

use popgate_policy::{Config, Source, Sources};

/// Splits `data` into the sources and loads them twice.
///
/// # Panics
/// When an invariant above does not hold.
pub fn config_loader(data: &[u8]) {
    let sources = sources(data);
    let first = Config::from_sources(&sources);
    let again = Config::from_sources(&sources);
    let names: Vec<&str> = [&sources.global]
        .into_iter()
        .flatten()
        .chain(&sources.policies)
        .chain(&sources.actions)
        .chain(&sources.tls_profiles)
        .map(|source| source.file.as_str())
        .collect();
    match (first, again) {
        (Err(errors), Err(again)) => {
            assert!(!errors.is_empty(), "rejected without an error");
            assert_eq!(errors, again, "loading is not deterministic");
            // At most 64 schema errors per file plus its semantic ones and cross-file ones.
            assert!(errors.len() <= 1024, "{} errors", errors.len());
            for error in &errors {
                assert!(names.contains(&error.file.as_str()), "{error}");
                assert!(error.path.starts_with('.'), "{error}");
                assert!(!error.to_string().is_empty());
            }
        }
        (Ok(config), Ok(_)) => {
            for policy in config.policies() {
                let action = config
                    .action(policy.action().name())
                    .unwrap_or_else(|| panic!("policy {} lost its action", policy.name()));
                let profile = action.tls().profile().name();
                assert!(config.tls_profile(profile).is_some(), "profile {profile}");
            }
        }
        _ => panic!("loading the same files twice gave different outcomes"),
    }
}

fn sources(data: &[u8]) -> Sources {
    let mut parts = data.split(|byte| *byte == 0xff);
    let mut next = |name: &str| parts.next().map(|bytes| Source::new(name, bytes.to_vec()));
    Sources {
        global: next("popgate.json"),
        policies: next("policies/p.json").into_iter().collect(),
        actions: next("actions/a.json").into_iter().collect(),
        tls_profiles: next("tls-profiles/t.json").into_iter().collect(),
    }
}
