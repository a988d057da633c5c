//! The module layering of the `popgate` crate (issue 15): each module may use only the
//! modules of its own layer and the layers below it, so the data path reads one way:
//! `pop3 ← net ← tls ← config ← route ← relay ← runtime ← cli`.
//!
//! Reads every `src/**/*.rs` file and fails on any `crate::X` path (in a `use` or inline)
//! that points to a layer above the file's own. Run with
//! `cargo test -p popgate --test layering`.

// A synchronous test reading source files.
#![allow(clippy::disallowed_methods)]

use std::fs;
use std::path::{Path, PathBuf};

/// Layer of each top-level module; a module may use equal or lower layers only.
const LAYERS: &[(&str, u8)] = &[
    ("pop3", 0),
    // Leaves every layer may use: no dependency on the driver.
    ("files", 1),
    ("spool", 1),
    ("metrics", 1),
    ("watch", 1),
    ("log_line", 1),
    ("log_text", 1),
    // The log writer's direct path to stderr: std and libc only.
    ("log_direct", 1),
    ("registry", 1),
    ("state", 1),
    ("net", 2),
    // Starts the privileged socket thread of `net`; used by `runtime` only.
    ("privileges", 2),
    // The log writer thread is confined like the runtime's threads.
    ("log_writer", 2),
    ("logging", 2),
    ("tls", 3),
    ("config", 4),
    ("route", 5),
    // What sessions share; carried by `Route`.
    ("shared", 5),
    ("relay", 6),
    ("runtime", 7),
    // The control socket: served by `runtime`, asked by `cli`.
    ("control", 7),
    ("demo", 8),
    ("cli", 9),
];

fn layer(module: &str) -> Option<u8> {
    LAYERS.iter().find(|(m, _)| *m == module).map(|(_, l)| *l)
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let entries = fs::read_dir(dir).unwrap_or_else(|e| panic!("reading {}: {e}", dir.display()));
    for entry in entries {
        let path = entry.expect("directory entry").path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The top-level modules a line of code names through `crate::`, including the groups of
/// `use crate::{a::b, c}`.
fn crate_paths(code: &str) -> Vec<String> {
    let mut found = Vec::new();
    let mut rest = code;
    while let Some(at) = rest.find("crate::") {
        let before = rest[..at].chars().next_back();
        rest = &rest[at + "crate::".len()..];
        if before.is_some_and(|c| c.is_alphanumeric() || c == '_') {
            continue; // `popgate_crate::` or similar: not this crate's root.
        }
        if let Some(group) = rest.strip_prefix('{') {
            // Top-level items of the group: text after `{` or a comma at depth 0.
            let mut depth = 0usize;
            let mut item_start = true;
            for (i, c) in group.char_indices() {
                match c {
                    '{' => depth += 1,
                    '}' if depth == 0 => break,
                    '}' => depth -= 1,
                    ',' if depth == 0 => item_start = true,
                    c if item_start && (c.is_alphanumeric() || c == '_') => {
                        item_start = false;
                        let name: String = group[i..]
                            .chars()
                            .take_while(|c| c.is_alphanumeric() || *c == '_')
                            .collect();
                        found.push(name);
                    }
                    _ => {}
                }
            }
            continue;
        }
        let name: String = rest
            .chars()
            .take_while(|c| c.is_alphanumeric() || *c == '_')
            .collect();
        if !name.is_empty() {
            found.push(name);
        }
    }
    found
}

/// The source without comments (`//` to the end of a line); string literals naming
/// `crate::` do not occur in this crate's code.
fn code_lines(text: &str) -> impl Iterator<Item = (usize, &str)> {
    text.lines().enumerate().map(|(i, line)| {
        let code = match line.find("//") {
            Some(at) => &line[..at],
            None => line,
        };
        (i + 1, code)
    })
}

#[test]
fn no_module_uses_a_layer_above_its_own() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    assert!(files.len() > 20, "found only {} source files", files.len());
    let mut violations = Vec::new();
    let mut unknown = Vec::new();
    for file in &files {
        let relative = file.strip_prefix(&src).expect("under src");
        let first = relative.components().next().expect("a component");
        let first = first.as_os_str().to_string_lossy();
        let module = first.trim_end_matches(".rs");
        if matches!(module, "lib" | "main") {
            continue;
        }
        let Some(own) = layer(module) else {
            unknown.push(module.to_owned());
            continue;
        };
        let text = fs::read_to_string(file).expect("readable source");
        for (number, code) in code_lines(&text) {
            for target in crate_paths(code) {
                match layer(&target) {
                    Some(theirs) if theirs > own => violations.push(format!(
                        "{}:{number}: {module} (layer {own}) uses {target} (layer {theirs})",
                        relative.display()
                    )),
                    Some(_) => {}
                    None => unknown.push(target),
                }
            }
        }
    }
    unknown.sort();
    unknown.dedup();
    assert!(
        unknown.is_empty(),
        "modules without a layer (add them to LAYERS): {unknown:?}"
    );
    assert!(
        violations.is_empty(),
        "imports against the layering:\n{}",
        violations.join("\n")
    );
}

#[test]
fn the_scanner_sees_grouped_and_inline_paths() {
    assert_eq!(
        crate_paths("use crate::{relay::x, route::{self, Plan}};"),
        ["relay", "route"]
    );
    assert_eq!(
        crate_paths("    let x = crate::runtime::load(dir);"),
        ["runtime"]
    );
    assert!(crate_paths("use popgate_crate::x;").is_empty());
}
