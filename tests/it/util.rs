//! Helpers shared by the integration tests.

use std::path::Path;
use std::process::{Command, Output};
use std::time::{SystemTime, UNIX_EPOCH};

use weir::log::batch::BatchBuilder;

/// The `weir` binary built for this test run.
pub fn weir() -> Command {
    Command::new(env!("CARGO_BIN_EXE_weir"))
}

/// Runs `weir` with `args`, returning its output (never panics on a non-zero exit).
pub fn run_weir(args: &[&str]) -> Output {
    weir().args(args).output().expect("run the weir binary")
}

pub fn now_ms() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).expect("clock after 1970").as_millis() as i64
}

/// A batch of `n` records whose values encode `seed` and the record index, so that a reader
/// can check every record's content.
pub fn numbered_batch(seed: u64, n: usize, value_size: usize, timestamp: i64) -> Vec<u8> {
    let mut b = BatchBuilder::new();
    for i in 0..n {
        let mut value = format!("{seed}:{i}:").into_bytes();
        value.resize(value_size.max(value.len()), b'.');
        b.record(timestamp, Some(format!("k{i}").as_bytes()), Some(&value), &[]);
    }
    b.build()
}

/// Copies a directory tree.
pub fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("create dir");
    for entry in std::fs::read_dir(from).expect("read dir") {
        let entry = entry.expect("entry");
        let target = to.join(entry.file_name());
        if entry.file_type().expect("type").is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), target).expect("copy file");
        }
    }
}
