//! Replays the fuzzer's corpus and every crash it ever found through the request decoder
//! (`tests/fuzz`): each input must be answered or refused, never panic or abort. Runs with the
//! broker's allocator (set in `main.rs`), as the fuzzer does.

use std::path::Path;

#[test]
fn every_fuzz_corpus_and_crash_input_decodes_or_is_refused() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fuzz");
    let mut replayed = 0;
    for dir in ["corpus/decode_request", "artifacts/decode_request", "regressions"] {
        let Ok(entries) = std::fs::read_dir(root.join(dir)) else { continue };
        for entry in entries {
            let path = entry.expect("entry").path();
            let data = std::fs::read(&path).expect("read input");
            let _ = weir::protocol::decode_request(bytes::Bytes::from(data));
            replayed += 1;
        }
    }
    assert!(replayed >= 50, "the corpus is checked in (found only {replayed} inputs)");
}
