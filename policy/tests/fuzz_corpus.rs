//! Replays the checked-in config-loader fuzz corpus (`policy/fuzz/corpus/config_loader/`)
//! through the checks the fuzz target runs, so every entry is a regression test in
//! `cargo test` and `./tests/run.sh`. Fails when the corpus is missing or empty.

#[path = "../fuzz/checks.rs"]
mod checks;

use std::path::Path;

#[test]
fn config_loader_corpus_holds() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/corpus/config_loader");
    let entries = std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
    let mut ran = 0;
    for entry in entries {
        let path = entry.unwrap().path();
        let data = std::fs::read(&path).unwrap();
        let result = std::panic::catch_unwind(|| checks::config_loader(&data));
        assert!(result.is_ok(), "{} fails", path.display());
        ran += 1;
    }
    assert!(ran > 0, "no corpus entries in {}", dir.display());
    println!("config_loader: {ran} corpus entries replayed");
}

#[test]
fn the_checks_can_fail() {
    // A file of two schema errors is rejected with both, each naming its file.
    let bad = br#"{"interception": "nat", "frobnicate": 1}"#;
    checks::config_loader(bad);
    let result = std::panic::catch_unwind(|| {
        let errors = popgate_policy::Config::from_sources(&popgate_policy::Sources {
            global: Some(popgate_policy::Source::new("popgate.json", bad.to_vec())),
            ..Default::default()
        })
        .unwrap_err();
        assert_eq!(errors.len(), 1, "{errors:?}");
    });
    assert!(
        result.is_err(),
        "both errors are reported, so asking for one must fail"
    );
}
