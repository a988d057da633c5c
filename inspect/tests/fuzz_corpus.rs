//! Replays the fuzz corpora (`inspect/fuzz/corpus/*`) and every finding
//! (`inspect/fuzz/regressions/*`) through the fuzz targets' properties, so `cargo test`
//! (and `./tests/run.sh`) keeps them fixed.

use std::fs;
use std::path::Path;

#[path = "../fuzz/fuzz_targets/properties.rs"]
mod properties;
mod reference;

fn replay(target: &str, check: fn(&[u8])) {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz");
    let mut count = 0;
    for kind in ["corpus", "regressions"] {
        let dir = root.join(kind).join(target);
        let Ok(entries) = fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries {
            let path = entry.expect("dir entry").path();
            // A fuzzer running on the same corpus may have just replaced the file.
            let Ok(data) = fs::read(&path) else {
                continue;
            };
            let outcome = std::panic::catch_unwind(|| check(&data));
            assert!(outcome.is_ok(), "{} fails {target}", path.display());
            count += 1;
        }
    }
    assert!(count > 0, "no {target} inputs");
}

#[test]
fn splitter_corpus() {
    replay("splitter", properties::splitter);
}

#[test]
fn stream_vs_batch_corpus() {
    replay("stream_vs_batch", properties::stream_vs_batch);
}
