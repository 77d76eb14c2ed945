//! Per-topic log configuration under Kafka's own key names.
//!
//! A topic's stored overrides (`segment.bytes=…`) are merged over the broker's defaults by
//! [`LogConfig::with_overrides`]; every value is parsed and range-checked there, once, so the
//! rest of the log works with typed values.

use std::collections::BTreeMap;

use super::batch::TimestampType;
use super::error::{Error, Result};

/// Which cleanup a topic gets (`cleanup.policy`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CleanupPolicy {
    pub delete: bool,
    pub compact: bool,
}

/// Typed log settings of one partition.
#[derive(Debug, Clone, PartialEq)]
pub struct LogConfig {
    /// `segment.bytes`: roll when the active segment would grow past this.
    pub segment_bytes: u32,
    /// `segment.ms`: roll a non-empty active segment this old.
    pub segment_ms: i64,
    /// `segment.index.bytes`: size of a full offset index (entries = bytes / 8).
    pub segment_index_bytes: u32,
    /// `index.interval.bytes`: bytes of log between index entries.
    pub index_interval_bytes: u32,
    /// `retention.ms`: delete sealed segments whose newest record is older (None = forever).
    pub retention_ms: Option<i64>,
    /// `retention.bytes`: delete oldest sealed segments while the log is larger (None = no limit).
    pub retention_bytes: Option<u64>,
    /// `cleanup.policy`.
    pub cleanup_policy: CleanupPolicy,
    /// `flush.messages`: fsync after this many appended records (None = leave it to the OS).
    pub flush_messages: Option<u64>,
    /// `flush.ms`: fsync when the oldest unflushed append is this old (None = never by time).
    pub flush_ms: Option<i64>,
    /// `max.message.bytes`: largest record batch accepted.
    pub max_message_bytes: u32,
    /// `message.timestamp.type`: keep the producer's CreateTime or stamp LogAppendTime.
    pub message_timestamp_type: TimestampType,
    /// `min.cleanable.dirty.ratio`: compact when dirty bytes are at least this share of the
    /// cleanable log.
    pub min_cleanable_dirty_ratio: f64,
    /// `min.compaction.lag.ms`: records younger than this are never compacted.
    pub min_compaction_lag_ms: i64,
    /// `max.compaction.lag.ms`: dirty records older than this are compacted whatever the
    /// dirty ratio (None = no limit).
    pub max_compaction_lag_ms: Option<i64>,
    /// `delete.retention.ms`: how long a tombstone outlives its compaction.
    pub delete_retention_ms: i64,
}

/// The topic-level keys this module interprets, with Kafka's defaults.
pub const LOG_CONFIG_KEYS: &[(&str, &str)] = &[
    ("cleanup.policy", "delete"),
    ("delete.retention.ms", "86400000"),
    ("flush.messages", "9223372036854775807"),
    ("flush.ms", "9223372036854775807"),
    ("index.interval.bytes", "4096"),
    ("max.compaction.lag.ms", "9223372036854775807"),
    ("max.message.bytes", "1048588"),
    ("message.timestamp.type", "CreateTime"),
    ("min.cleanable.dirty.ratio", "0.5"),
    ("min.compaction.lag.ms", "0"),
    ("retention.bytes", "-1"),
    ("retention.ms", "604800000"),
    ("segment.bytes", "1073741824"),
    ("segment.index.bytes", "10485760"),
    ("segment.ms", "604800000"),
];

/// Topic-level keys Kafka accepts that the log does not interpret yet: stored with the topic
/// and reported back, enforced as the features that own them arrive (replication,
/// compaction, ...). Any key in neither list is refused (Kafka: "Unknown topic config name").
pub const OTHER_TOPIC_KEYS: &[&str] = &[
    "compression.type",
    "file.delete.delay.ms",
    "follower.replication.throttled.replicas",
    "leader.replication.throttled.replicas",
    "local.retention.bytes",
    "local.retention.ms",
    "message.downconversion.enable",
    "message.timestamp.after.max.ms",
    "message.timestamp.before.max.ms",
    "message.timestamp.difference.max.ms",
    "min.insync.replicas",
    "preallocate",
    "remote.storage.enable",
    "segment.jitter.ms",
    "unclean.leader.election.enable",
];

/// Whether `key` is a topic-level configuration key Kafka knows.
pub fn is_topic_config_key(key: &str) -> bool {
    LOG_CONFIG_KEYS.iter().any(|(k, _)| *k == key) || OTHER_TOPIC_KEYS.contains(&key)
}

/// The effective value of every key in [`LOG_CONFIG_KEYS`], as Kafka prints it.
pub fn describe(c: &LogConfig) -> BTreeMap<String, String> {
    let never = |v: Option<i64>| v.unwrap_or(i64::MAX).to_string();
    let policy = match (c.cleanup_policy.compact, c.cleanup_policy.delete) {
        (true, true) => "compact,delete",
        (true, false) => "compact",
        _ => "delete",
    };
    let entries = [
        ("cleanup.policy", policy.to_owned()),
        ("delete.retention.ms", c.delete_retention_ms.to_string()),
        ("flush.messages", c.flush_messages.map_or(i64::MAX, |v| v as i64).to_string()),
        ("flush.ms", never(c.flush_ms)),
        ("index.interval.bytes", c.index_interval_bytes.to_string()),
        ("max.compaction.lag.ms", never(c.max_compaction_lag_ms)),
        ("max.message.bytes", c.max_message_bytes.to_string()),
        (
            "message.timestamp.type",
            match c.message_timestamp_type {
                TimestampType::CreateTime => "CreateTime",
                TimestampType::LogAppendTime => "LogAppendTime",
            }
            .to_owned(),
        ),
        ("min.cleanable.dirty.ratio", c.min_cleanable_dirty_ratio.to_string()),
        ("min.compaction.lag.ms", c.min_compaction_lag_ms.to_string()),
        ("retention.bytes", c.retention_bytes.map_or(-1, |v| v as i64).to_string()),
        ("retention.ms", c.retention_ms.unwrap_or(-1).to_string()),
        ("segment.bytes", c.segment_bytes.to_string()),
        ("segment.index.bytes", c.segment_index_bytes.to_string()),
        ("segment.ms", c.segment_ms.to_string()),
    ];
    entries.into_iter().map(|(k, v)| (k.to_owned(), v)).collect()
}

impl Default for LogConfig {
    fn default() -> Self {
        LogConfig {
            segment_bytes: 1 << 30,
            segment_ms: 7 * 24 * 3600 * 1000,
            segment_index_bytes: 10 * 1024 * 1024,
            index_interval_bytes: 4096,
            retention_ms: Some(7 * 24 * 3600 * 1000),
            retention_bytes: None,
            cleanup_policy: CleanupPolicy { delete: true, compact: false },
            flush_messages: None,
            flush_ms: None,
            max_message_bytes: 1_048_588,
            message_timestamp_type: TimestampType::CreateTime,
            min_cleanable_dirty_ratio: 0.5,
            min_compaction_lag_ms: 0,
            max_compaction_lag_ms: None,
            delete_retention_ms: 24 * 3600 * 1000,
        }
    }
}

fn invalid(key: &str, value: &str, reason: impl Into<String>) -> Error {
    Error::InvalidConfig { key: key.to_owned(), value: value.to_owned(), reason: reason.into() }
}

fn parse_i64(key: &str, value: &str, min: i64) -> Result<i64> {
    let v: i64 = value.trim().parse().map_err(|e: std::num::ParseIntError| invalid(key, value, e.to_string()))?;
    if v < min {
        return Err(invalid(key, value, format!("must be at least {min}")));
    }
    Ok(v)
}

fn parse_u32(key: &str, value: &str, min: i64) -> Result<u32> {
    let v = parse_i64(key, value, min)?;
    u32::try_from(v)
        .ok()
        .filter(|v| *v <= i32::MAX as u32)
        .ok_or_else(|| invalid(key, value, "must fit in a 32-bit signed integer"))
}

/// Kafka's "Long.MAX_VALUE means never" sentinel, as an Option.
fn never_if_max(v: i64) -> Option<i64> {
    (v != i64::MAX).then_some(v)
}

impl LogConfig {
    /// Applies one `key=value`. Keys this module does not own are ignored (they belong to
    /// other layers, e.g. `min.insync.replicas`).
    ///
    /// # Errors
    /// [`Error::InvalidConfig`] when the value does not parse or is out of range.
    pub fn set(&mut self, key: &str, value: &str) -> Result<()> {
        match key {
            // A segment must hold at least one batch header; index positions are u32 but
            // Kafka's (and our readers') file positions are i32.
            "segment.bytes" => self.segment_bytes = parse_u32(key, value, 128)?,
            "segment.ms" => self.segment_ms = parse_i64(key, value, 1)?,
            "segment.index.bytes" => self.segment_index_bytes = parse_u32(key, value, 24)?,
            "index.interval.bytes" => self.index_interval_bytes = parse_u32(key, value, 0)?,
            "retention.ms" => self.retention_ms = Some(parse_i64(key, value, -1)?).filter(|v| *v >= 0),
            "retention.bytes" => {
                self.retention_bytes = Some(parse_i64(key, value, -1)?).filter(|v| *v >= 0).map(|v| v as u64)
            }
            "flush.messages" => self.flush_messages = never_if_max(parse_i64(key, value, 1)?).map(|v| v as u64),
            "flush.ms" => self.flush_ms = never_if_max(parse_i64(key, value, 0)?),
            "max.message.bytes" => self.max_message_bytes = parse_u32(key, value, 0)?,
            "message.timestamp.type" => {
                self.message_timestamp_type = match value {
                    "CreateTime" => TimestampType::CreateTime,
                    "LogAppendTime" => TimestampType::LogAppendTime,
                    _ => return Err(invalid(key, value, "must be CreateTime or LogAppendTime")),
                }
            }
            "min.cleanable.dirty.ratio" => {
                let v: f64 =
                    value.trim().parse().map_err(|e: std::num::ParseFloatError| invalid(key, value, e.to_string()))?;
                if !(0.0..=1.0).contains(&v) {
                    return Err(invalid(key, value, "must be between 0 and 1"));
                }
                self.min_cleanable_dirty_ratio = v;
            }
            "min.compaction.lag.ms" => self.min_compaction_lag_ms = parse_i64(key, value, 0)?,
            "max.compaction.lag.ms" => self.max_compaction_lag_ms = never_if_max(parse_i64(key, value, 1)?),
            "delete.retention.ms" => self.delete_retention_ms = parse_i64(key, value, 0)?,
            "cleanup.policy" => {
                let mut policy = CleanupPolicy { delete: false, compact: false };
                for part in value.split(',').map(str::trim) {
                    match part {
                        "delete" => policy.delete = true,
                        "compact" => policy.compact = true,
                        _ => return Err(invalid(key, value, "must be a list of delete and compact")),
                    }
                }
                self.cleanup_policy = policy;
            }
            _ => {}
        }
        Ok(())
    }

    /// `self` (the broker defaults) with a topic's overrides applied.
    ///
    /// # Errors
    /// The first override that does not parse.
    pub fn with_overrides(&self, overrides: &BTreeMap<String, String>) -> Result<LogConfig> {
        let mut config = self.clone();
        for (k, v) in overrides {
            config.set(k, v)?;
        }
        Ok(config)
    }

    /// Entries a full offset index holds.
    pub fn max_index_entries(&self) -> usize {
        (self.segment_index_bytes / 8) as usize
    }

    /// Entries a full time index holds (one is kept free for the entry written on sealing).
    pub fn max_time_index_entries(&self) -> usize {
        (self.segment_index_bytes / 12) as usize
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn overrides_use_kafka_keys_and_sentinels() {
        let mut o = BTreeMap::new();
        o.insert("segment.bytes".to_owned(), "1048576".to_owned());
        o.insert("retention.ms".to_owned(), "-1".to_owned());
        o.insert("cleanup.policy".to_owned(), "compact,delete".to_owned());
        o.insert("flush.messages".to_owned(), "1".to_owned());
        o.insert("message.timestamp.type".to_owned(), "LogAppendTime".to_owned());
        o.insert("min.insync.replicas".to_owned(), "2".to_owned());
        let c = LogConfig::default().with_overrides(&o).expect("valid");
        assert_eq!(c.segment_bytes, 1 << 20);
        assert_eq!(c.retention_ms, None);
        assert_eq!(c.cleanup_policy, CleanupPolicy { delete: true, compact: true });
        assert_eq!(c.flush_messages, Some(1));
        assert_eq!(c.message_timestamp_type, TimestampType::LogAppendTime);
    }

    #[test]
    fn defaults_match_the_documented_kafka_defaults() {
        let mut from_table = LogConfig::default();
        for (k, v) in LOG_CONFIG_KEYS {
            from_table.set(k, v).expect("default parses");
        }
        assert_eq!(from_table, LogConfig::default());
    }

    #[test]
    fn describe_round_trips_through_set() {
        let mut c = LogConfig::default();
        c.set("retention.ms", "-1").expect("set");
        c.set("cleanup.policy", "compact,delete").expect("set");
        let mut back = LogConfig::default();
        for (k, v) in describe(&c) {
            back.set(&k, &v).expect("describe output parses");
        }
        assert_eq!(back, c);
        assert_eq!(describe(&LogConfig::default()).len(), LOG_CONFIG_KEYS.len());
    }

    #[test]
    fn bad_values_are_rejected_with_the_key_named() {
        let mut c = LogConfig::default();
        let e = c.set("segment.bytes", "ten").expect_err("not a number");
        assert!(e.to_string().contains("segment.bytes"), "{e}");
        assert!(c.set("segment.bytes", "3000000000").is_err());
        assert!(c.set("cleanup.policy", "shred").is_err());
        assert!(c.set("flush.messages", "0").is_err());
    }
}
