//! Offset checkpoint files, in Kafka's text format:
//!
//! ```text
//! 0                 <- version
//! 2                 <- number of entries
//! orders 0 1200     <- topic partition offset
//! orders 1 1175
//! ```
//!
//! Written to `<name>.tmp`, fsynced, renamed over `<name>`, then the directory is fsynced: a
//! crash leaves either the old or the new file, never a mix.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};

use super::error::{Error, Result};
use super::{sync_dir, TopicPartition};

/// Reads a checkpoint; a missing file is an empty map.
///
/// # Errors
/// [`Error::CorruptMetadata`] when the file is not in the format above.
pub fn read(path: &Path) -> Result<BTreeMap<TopicPartition, i64>> {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(BTreeMap::new()),
        Err(e) => return Err(Error::io("read checkpoint", path, e)),
    };
    let corrupt = |reason: String| Error::CorruptMetadata { path: path.to_owned(), reason };
    let mut lines = text.lines();
    match lines.next() {
        Some("0") => {}
        other => return Err(corrupt(format!("unsupported version line {other:?}"))),
    }
    let count: usize =
        lines.next().and_then(|l| l.trim().parse().ok()).ok_or_else(|| corrupt("missing entry count".to_owned()))?;
    let mut map = BTreeMap::new();
    for line in lines.by_ref().take(count) {
        let mut parts = line.split(' ');
        let (Some(topic), Some(partition), Some(offset), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(corrupt(format!("malformed entry {line:?}")));
        };
        let partition = partition.parse().map_err(|_| corrupt(format!("bad partition in {line:?}")))?;
        let offset = offset.parse().map_err(|_| corrupt(format!("bad offset in {line:?}")))?;
        map.insert(TopicPartition::new(topic, partition), offset);
    }
    if map.len() != count {
        return Err(corrupt(format!("expected {count} entries, found {}", map.len())));
    }
    Ok(map)
}

/// Writes `contents` to `path` atomically and durably (temp → fsync → rename → fsync dir).
///
/// # Durability
/// When this returns, the new contents survive power loss.
///
/// # Errors
/// Any I/O failure; the old file is then still in place.
pub fn write_atomically(path: &Path, contents: &[u8]) -> Result<()> {
    let tmp = path.with_extension("tmp");
    let write = || -> std::io::Result<()> {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(contents)?;
        f.sync_all()
    };
    write().map_err(|e| Error::io("write", &tmp, e))?;
    std::fs::rename(&tmp, path).map_err(|e| Error::io("rename checkpoint into", path, e))?;
    sync_dir(path.parent().unwrap_or(Path::new(".")))
}

fn format(entries: &BTreeMap<TopicPartition, i64>) -> String {
    let mut text = format!("0\n{}\n", entries.len());
    for (tp, offset) in entries {
        text.push_str(&format!("{} {} {offset}\n", tp.topic, tp.partition));
    }
    text
}

/// Writes a checkpoint file atomically.
///
/// # Errors
/// Any I/O failure.
pub fn write(path: &Path, entries: &BTreeMap<TopicPartition, i64>) -> Result<()> {
    write_atomically(path, format(entries).as_bytes())
}

/// Remembers what it last wrote to each checkpoint file and skips writes that would not
/// change it. The maintenance pass checkpoints every `log.flush.scheduler.interval.ms`
/// (1 s), and with Kafka's default flush settings the offsets rarely move between passes;
/// unchanged, each pass would still cost three fsynced writes and renames. Its lock is held
/// across the write: two writers of one file would share its `.tmp` name.
#[derive(Debug, Default)]
pub struct Checkpointer {
    last: std::sync::Mutex<BTreeMap<PathBuf, String>>,
}

impl Checkpointer {
    /// [`write`], unless `path` already holds exactly these entries from this writer.
    /// Returns whether it wrote.
    ///
    /// # Errors
    /// Any I/O failure (the next call then writes again).
    pub fn write(&self, path: &Path, entries: &BTreeMap<TopicPartition, i64>) -> Result<bool> {
        let text = format(entries);
        let mut last = self.last.lock().unwrap_or_else(|e| e.into_inner());
        if last.get(path) == Some(&text) {
            return Ok(false);
        }
        last.remove(path);
        write_atomically(path, text.as_bytes())?;
        last.insert(path.to_owned(), text);
        Ok(true)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_checkpointer_rewrites_a_file_only_when_its_entries_change() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("recovery-point-offset-checkpoint");
        let writer = Checkpointer::default();
        let mut m = BTreeMap::from([(TopicPartition::new("orders", 0), 5)]);
        assert!(writer.write(&path, &m).expect("first write"));
        assert!(!writer.write(&path, &m).expect("same entries"));
        m.insert(TopicPartition::new("orders", 0), 6);
        assert!(writer.write(&path, &m).expect("changed entries"));
        assert_eq!(read(&path).expect("read"), m);
    }

    #[test]
    fn checkpoints_round_trip_in_kafkas_text_format() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("recovery-point-offset-checkpoint");
        let mut m = BTreeMap::new();
        m.insert(TopicPartition::new("orders", 0), 1200);
        m.insert(TopicPartition::new("my.topic-x", 11), 7);
        write(&path, &m).expect("write");
        assert_eq!(std::fs::read_to_string(&path).expect("read"), "0\n2\nmy.topic-x 11 7\norders 0 1200\n");
        assert_eq!(read(&path).expect("read"), m);
        assert!(!path.with_extension("tmp").exists());
    }

    #[test]
    fn a_missing_checkpoint_is_empty_and_a_garbled_one_is_an_error() {
        let dir = tempfile::tempdir().expect("tempdir");
        assert!(read(&dir.path().join("nope")).expect("missing is fine").is_empty());
        let path = dir.path().join("bad");
        std::fs::write(&path, "0\n2\norders 0 1\n").expect("write");
        assert!(read(&path).is_err());
    }
}
