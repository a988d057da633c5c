//! Every configuration example in README.md is a valid configuration: each ```json block
//! (files introduced by `// NAME` lines) is written to a directory of its own and loaded by
//! `popgate config dump`, which checks it as `popgate run` would.

use std::path::Path;

use popgate_tests::popgate::popgate_cli;

/// The README's JSON blocks, each as `(file, text)` pairs.
fn examples() -> Vec<Vec<(String, String)>> {
    let readme =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("../README.md"))
            .unwrap();
    let mut blocks = Vec::new();
    let mut current: Option<Vec<(String, String)>> = None;
    for line in readme.lines() {
        match (&mut current, line.trim_end()) {
            (None, "```json") => current = Some(Vec::new()),
            (Some(_), "```") => blocks.extend(current.take()),
            (Some(files), text) => {
                if let Some(name) = text.strip_prefix("// ") {
                    files.push((name.trim().to_owned(), String::new()));
                } else if let Some((_, body)) = files.last_mut() {
                    body.push_str(text);
                    body.push('\n');
                }
            }
            (None, _) => {}
        }
    }
    blocks
}

#[test]
fn every_readme_configuration_example_loads() {
    let blocks = examples();
    assert!(
        blocks.len() >= 3,
        "the README's examples were not found: {blocks:?}"
    );
    for files in blocks {
        assert!(!files.is_empty(), "a json block without // FILE lines");
        let dir = tempfile::tempdir().unwrap();
        for (name, text) in &files {
            let path = dir.path().join(name);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(&path, text).unwrap();
        }
        let output =
            popgate_cli(["config", "dump", "--config", dir.path().to_str().unwrap()]).unwrap();
        let names: Vec<&String> = files.iter().map(|(n, _)| n).collect();
        assert!(
            output.status.success(),
            "README example {names:?} does not load:\n{}",
            String::from_utf8_lossy(&output.stderr)
        );
    }
}
