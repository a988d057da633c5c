//! Replays the checked-in fuzz corpora (`proxy/pop3/fuzz/corpus/`) through the same checks
//! the fuzz targets run, so every entry is a regression test in `cargo test` and
//! `./tests/run.sh`. Fails when a corpus is missing or empty: zero cases is not a pass.

#[path = "../fuzz/checks.rs"]
mod checks;

use std::path::Path;

fn replay(target: &str, check: fn(&[u8])) {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fuzz/corpus")
        .join(target);
    // Reading the corpus is the test's own I/O, not the core's.
    #[allow(clippy::disallowed_methods)]
    let entries = std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
    let mut ran = 0;
    for entry in entries {
        let path = entry.unwrap().path();
        #[allow(clippy::disallowed_methods)]
        let data = std::fs::read(&path).unwrap();
        let result = std::panic::catch_unwind(|| check(&data));
        assert!(result.is_ok(), "{target}: {} fails", path.display());
        ran += 1;
    }
    assert!(ran > 0, "no corpus entries in {}", dir.display());
    println!("{target}: {ran} corpus entries replayed");
}

#[test]
fn body_framing_corpus_holds() {
    replay("body_framing", checks::body_framing);
}

#[test]
fn session_corpus_holds() {
    replay("session", checks::session);
}

#[test]
fn framing_check_catches_what_the_scanner_refuses() {
    // The checks themselves must be able to fail: a stream with `.` CR X is refused.
    assert!(std::panic::catch_unwind(|| checks::check_client_stream(b"+OK\r\n.\rX\r\n")).is_err());
    assert_eq!(checks::lenient_end(b"a\n.\nb", false), Some(4));
    assert_eq!(checks::lenient_end(b"a\r.\rb", true), Some(4));
    checks::check_client_stream(b"+OK\r\n..x\r\n.\r\n");
}
