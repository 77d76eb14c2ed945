//! A full disk: on a small tmpfs, appends fail with a storage error before anything is
//! written through a map (no SIGBUS), and everything appended before stays readable, also
//! after a reopen. Mounting needs root (CI runs as root); elsewhere the test says it skipped.

use std::path::{Path, PathBuf};
use std::process::Command;

use weir::log::manager::LogManager;
use weir::log::{AppendOptions, Error, LogConfig, TopicPartition};

use crate::util::{now_ms, numbered_batch};

struct Tmpfs(PathBuf);

impl Tmpfs {
    fn mount(dir: &Path, size: &str) -> Option<Tmpfs> {
        let ok = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(dir)
            .status()
            .is_ok_and(|s| s.success());
        ok.then(|| Tmpfs(dir.to_owned()))
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.0).status();
    }
}

#[test]
fn a_full_disk_fails_appends_cleanly_and_keeps_earlier_data() {
    let dir = tempfile::tempdir().expect("tempdir");
    let Some(_mount) = Tmpfs::mount(dir.path(), "6m") else {
        assert!(std::env::var_os("CI").is_none(), "CI must be able to mount a tmpfs (run as root)");
        eprintln!("skipped: cannot mount a tmpfs here (not root)");
        return;
    };
    let data = dir.path().join("data");
    let tp = TopicPartition::new("full", 0);
    let mut acked = Vec::new();
    {
        let mut manager = LogManager::open(&data, LogConfig::default(), now_ms()).expect("open");
        let configs = [("segment.bytes".to_owned(), (1 << 20).to_string())].into();
        manager.create_topic("full", 1, configs, now_ms()).expect("create");
        let partition = manager.log(&tp).expect("partition").clone();
        let mut error = None;
        for seed in 0..1_000u64 {
            let mut batch = numbered_batch(seed, 4, 16 * 1024, now_ms());
            match partition
                .log
                .lock()
                .expect("lock")
                .append(&batch, AppendOptions { leader_epoch: None, now_ms: now_ms() })
            {
                Ok(info) => {
                    // What the log stores: the same bytes with the assigned base offset.
                    weir::log::batch::set_base_offset(&mut batch, info.base_offset);
                    acked.push((info.base_offset, batch));
                }
                Err(e) => {
                    error = Some(e);
                    break;
                }
            }
        }
        let error = error.expect("a 6 MiB disk fills up");
        assert!(error.is_storage_error(), "{error}");
        assert!(matches!(error, Error::DiskFull { .. }), "{error}");
        // Still refuses cleanly on retry, and reads still work.
        let batch = numbered_batch(9_999, 4, 16 * 1024, now_ms());
        let again =
            partition.log.lock().expect("lock").append(&batch, AppendOptions { leader_epoch: None, now_ms: now_ms() });
        assert!(again.is_err());
        check_readable(&partition.reader, &acked);
        drop(partition);
        drop(manager); // a crash-like close: no marker, the next open recovers
    }
    let manager = LogManager::open(&data, LogConfig::default(), now_ms()).expect("reopen on a full disk");
    check_readable(&manager.log(&tp).expect("partition").reader, &acked);
}

fn check_readable(reader: &weir::log::LogReader, acked: &[(i64, Vec<u8>)]) {
    assert!(!acked.is_empty());
    for (offset, bytes) in acked {
        let r = reader.read(*offset, 1, i64::MAX, true).expect("read");
        assert_eq!(&r.records[..], &bytes[..], "batch at {offset} differs");
    }
}
