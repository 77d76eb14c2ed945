//! Broker configuration: raw `key = value` pairs (TOML file, then `--set`, then flags) under
//! Kafka's key names, validated once into a typed [`BrokerConfig`].
//!
//! Every key is listed in [`BROKER_KEYS`] with its default and documented in `ops/weir.toml`;
//! an unknown key is an error (a typo must not silently fall back to a default). Topic-level
//! log settings take their broker-level Kafka names here (`log.segment.bytes` for
//! `segment.bytes`, `message.max.bytes` for `max.message.bytes`, ...), as in Kafka.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::group::GroupConfig;
use crate::log::LogConfig;

/// Every broker key with its default value (`""` = unset).
pub const BROKER_KEYS: &[(&str, &str)] = &[
    ("data.dir", "./data"),
    ("kafka.addr", "127.0.0.1:9092"),
    ("http.addr", "127.0.0.1:9644"),
    ("resp.addr", "127.0.0.1:6379"),
    ("resp.requirepass", ""),
    ("resp.users", ""),
    ("resp.proto-max-bulk-len", "536870912"),
    ("resp.io-threads", "1"),
    ("num.network.threads", ""),
    ("kv.topic", "kv"),
    ("advertised.addr", ""),
    ("node.id", "0"),
    ("num.partitions", "1"),
    ("default.replication.factor", "1"),
    ("auto.create.topics.enable", "true"),
    ("socket.request.max.bytes", "104857600"),
    ("connections.max.idle.ms", "600000"),
    ("request.timeout.ms", "30000"),
    ("log.segment.bytes", "1073741824"),
    ("log.roll.ms", ""),
    ("log.roll.hours", "168"),
    ("log.index.size.max.bytes", "10485760"),
    ("log.index.interval.bytes", "4096"),
    ("log.retention.ms", ""),
    ("log.retention.minutes", ""),
    ("log.retention.hours", "168"),
    ("log.retention.bytes", "-1"),
    ("log.cleanup.policy", "delete"),
    ("log.flush.interval.messages", "9223372036854775807"),
    ("log.flush.interval.ms", ""),
    ("log.flush.scheduler.interval.ms", "1000"),
    ("producer.id.expiration.ms", "86400000"),
    ("producer.id.expiration.check.interval.ms", "600000"),
    ("log.retention.check.interval.ms", "300000"),
    ("message.max.bytes", "1048588"),
    ("log.message.timestamp.type", "CreateTime"),
    ("log.cleaner.enable", "true"),
    ("log.cleaner.backoff.ms", "15000"),
    ("log.cleaner.min.cleanable.ratio", "0.5"),
    ("log.cleaner.min.compaction.lag.ms", "0"),
    ("log.cleaner.max.compaction.lag.ms", "9223372036854775807"),
    ("log.cleaner.delete.retention.ms", "86400000"),
    ("group.initial.rebalance.delay.ms", "3000"),
    ("group.min.session.timeout.ms", "6000"),
    ("group.max.session.timeout.ms", "1800000"),
    ("group.max.size", "2147483647"),
    ("group.consumer.session.timeout.ms", "45000"),
    ("group.consumer.heartbeat.interval.ms", "5000"),
    ("offsets.topic.num.partitions", "50"),
    ("offsets.topic.segment.bytes", "104857600"),
    ("offsets.retention.minutes", "10080"),
    ("offsets.retention.check.interval.ms", "600000"),
    ("offset.metadata.max.bytes", "4096"),
];

/// A configuration error, naming the key.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("unknown configuration key {0:?} (see ops/weir.toml for every key)")]
    UnknownKey(String),
    #[error("invalid value {value:?} for {key}: {reason}")]
    Invalid { key: String, value: String, reason: String },
    #[error("cannot read config file {path}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("config file {path} is not valid TOML")]
    Parse {
        path: PathBuf,
        #[source]
        source: toml::de::Error,
    },
    #[error("--set takes key=value, got {0:?}")]
    BadSet(String),
}

/// Stage one: raw values by Kafka key.
#[derive(Debug, Clone, Default)]
pub struct RawConfig {
    values: BTreeMap<String, String>,
}

impl RawConfig {
    /// Sets one key.
    ///
    /// # Errors
    /// [`ConfigError::UnknownKey`].
    pub fn set(&mut self, key: &str, value: impl Into<String>) -> Result<(), ConfigError> {
        if !BROKER_KEYS.iter().any(|(k, _)| *k == key) {
            return Err(ConfigError::UnknownKey(key.to_owned()));
        }
        self.values.insert(key.to_owned(), value.into());
        Ok(())
    }

    /// Applies `key=value` as given to `--set`.
    ///
    /// # Errors
    /// A malformed pair or an unknown key.
    pub fn set_pair(&mut self, pair: &str) -> Result<(), ConfigError> {
        let (k, v) = pair.split_once('=').ok_or_else(|| ConfigError::BadSet(pair.to_owned()))?;
        self.set(k.trim(), v.trim())
    }

    /// Loads a TOML file of top-level `"key" = value` pairs.
    ///
    /// # Errors
    /// Unreadable or invalid files, unknown keys, nested tables.
    pub fn load_file(&mut self, path: &Path) -> Result<(), ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read { path: path.into(), source })?;
        let table: toml::Table =
            toml::from_str(&text).map_err(|source| ConfigError::Parse { path: path.into(), source })?;
        for (key, value) in table {
            let value = match value {
                toml::Value::String(s) => s,
                toml::Value::Integer(i) => i.to_string(),
                toml::Value::Boolean(b) => b.to_string(),
                toml::Value::Float(f) => f.to_string(),
                other => {
                    return Err(ConfigError::Invalid {
                        key,
                        value: format!("{other:?}"),
                        reason: "must be a string, number or boolean".into(),
                    })
                }
            };
            self.set(&key, value)?;
        }
        Ok(())
    }

    fn get(&self, key: &str) -> &str {
        self.values
            .get(key)
            .map(String::as_str)
            .or_else(|| BROKER_KEYS.iter().find(|(k, _)| *k == key).map(|(_, v)| *v))
            .unwrap_or("")
    }

    fn parse<T: std::str::FromStr>(&self, key: &str) -> Result<T, ConfigError>
    where
        T::Err: std::fmt::Display,
    {
        let value = self.get(key);
        value.parse().map_err(|e: T::Err| ConfigError::Invalid {
            key: key.to_owned(),
            value: value.to_owned(),
            reason: e.to_string(),
        })
    }

    fn optional<T: std::str::FromStr>(&self, key: &str) -> Result<Option<T>, ConfigError>
    where
        T::Err: std::fmt::Display,
    {
        if self.get(key).is_empty() {
            Ok(None)
        } else {
            self.parse(key).map(Some)
        }
    }

    /// Stage two: typed and cross-checked.
    ///
    /// # Errors
    /// The first invalid value.
    pub fn validate(&self) -> Result<BrokerConfig, ConfigError> {
        let invalid = |key: &str, reason: &str| ConfigError::Invalid {
            key: key.to_owned(),
            value: self.get(key).to_owned(),
            reason: reason.to_owned(),
        };
        let hours = |h: i64| h * 3_600_000;
        let segment_ms: i64 = match self.optional("log.roll.ms")? {
            Some(ms) => ms,
            None => hours(self.parse("log.roll.hours")?),
        };
        let retention_ms: i64 =
            match (self.optional::<i64>("log.retention.ms")?, self.optional::<i64>("log.retention.minutes")?) {
                (Some(ms), _) => ms,
                (None, Some(min)) => min * 60_000,
                (None, None) => hours(self.parse("log.retention.hours")?),
            };
        let mut log = LogConfig::default();
        let pairs = [
            ("segment.bytes", self.get("log.segment.bytes").to_owned()),
            ("segment.ms", segment_ms.to_string()),
            ("segment.index.bytes", self.get("log.index.size.max.bytes").to_owned()),
            ("index.interval.bytes", self.get("log.index.interval.bytes").to_owned()),
            ("retention.ms", retention_ms.to_string()),
            ("retention.bytes", self.get("log.retention.bytes").to_owned()),
            ("cleanup.policy", self.get("log.cleanup.policy").to_owned()),
            ("flush.messages", self.get("log.flush.interval.messages").to_owned()),
            ("max.message.bytes", self.get("message.max.bytes").to_owned()),
            ("message.timestamp.type", self.get("log.message.timestamp.type").to_owned()),
            ("min.cleanable.dirty.ratio", self.get("log.cleaner.min.cleanable.ratio").to_owned()),
            ("min.compaction.lag.ms", self.get("log.cleaner.min.compaction.lag.ms").to_owned()),
            ("max.compaction.lag.ms", self.get("log.cleaner.max.compaction.lag.ms").to_owned()),
            ("delete.retention.ms", self.get("log.cleaner.delete.retention.ms").to_owned()),
        ];
        for (key, value) in pairs {
            log.set(key, &value).map_err(|e| ConfigError::Invalid {
                key: key.to_owned(),
                value,
                reason: e.to_string(),
            })?;
        }
        if let Some(ms) = self.optional::<i64>("log.flush.interval.ms")? {
            log.set("flush.ms", &ms.to_string()).map_err(|e| invalid("log.flush.interval.ms", &e.to_string()))?;
        }
        let num_partitions: i32 = self.parse("num.partitions")?;
        if num_partitions < 1 {
            return Err(invalid("num.partitions", "must be at least 1"));
        }
        let socket_request_max_bytes: u32 = self.parse("socket.request.max.bytes")?;
        if !(1024..=i32::MAX as u32).contains(&socket_request_max_bytes) {
            return Err(invalid("socket.request.max.bytes", "must be between 1024 and 2147483647"));
        }
        let kafka_addr: SocketAddr = self.parse("kafka.addr")?;
        let advertised = self.get("advertised.addr");
        let advertised_addr = if advertised.is_empty() {
            None
        } else {
            let (host, port) =
                advertised.rsplit_once(':').ok_or_else(|| invalid("advertised.addr", "must be HOST:PORT"))?;
            let port: u16 = port.parse().map_err(|_| invalid("advertised.addr", "bad port"))?;
            Some((host.to_owned(), port))
        };
        let ms = |key: &str| -> Result<Duration, ConfigError> { Ok(Duration::from_millis(self.parse(key)?)) };
        let group = GroupConfig {
            initial_rebalance_delay: ms("group.initial.rebalance.delay.ms")?,
            min_session_timeout_ms: self.parse("group.min.session.timeout.ms")?,
            max_session_timeout_ms: self.parse("group.max.session.timeout.ms")?,
            max_size: self.parse("group.max.size")?,
            offsets_partitions: self.parse("offsets.topic.num.partitions")?,
            offsets_segment_bytes: self.parse("offsets.topic.segment.bytes")?,
            offsets_retention: Duration::from_secs(60 * self.parse::<u64>("offsets.retention.minutes")?),
            offsets_retention_check: ms("offsets.retention.check.interval.ms")?,
            offset_metadata_max_bytes: self.parse("offset.metadata.max.bytes")?,
            consumer_session_timeout: ms("group.consumer.session.timeout.ms")?,
            consumer_heartbeat_interval: ms("group.consumer.heartbeat.interval.ms")?,
        };
        if group.offsets_partitions < 1 {
            return Err(invalid("offsets.topic.num.partitions", "must be at least 1"));
        }
        if group.min_session_timeout_ms > group.max_session_timeout_ms {
            return Err(invalid("group.min.session.timeout.ms", "must not exceed group.max.session.timeout.ms"));
        }
        if group.offsets_retention_check.is_zero() {
            return Err(invalid("offsets.retention.check.interval.ms", "must be positive"));
        }
        Ok(BrokerConfig {
            data_dir: PathBuf::from(self.get("data.dir")),
            kafka_addr,
            http_addr: self.parse("http.addr")?,
            resp_addr: self.parse("resp.addr")?,
            resp_password: Some(self.get("resp.requirepass").to_owned()).filter(|p| !p.is_empty()),
            resp_users: parse_users(self.get("resp.users")).map_err(|reason| invalid("resp.users", &reason))?,
            resp_max_bulk_len: self.parse("resp.proto-max-bulk-len")?,
            resp_threads: match self.parse::<usize>("resp.io-threads")? {
                n @ 1..=64 => n,
                _ => return Err(invalid("resp.io-threads", "must be between 1 and 64")),
            },
            network_threads: match self.optional::<usize>("num.network.threads")? {
                None => std::thread::available_parallelism().map_or(1, |n| (n.get() / 2).max(1)),
                Some(n @ 1..=64) => n,
                Some(_) => return Err(invalid("num.network.threads", "must be between 1 and 64")),
            },
            kv_topic: self.get("kv.topic").to_owned(),
            advertised_addr,
            node_id: self.parse("node.id")?,
            num_partitions,
            default_replication_factor: self.parse("default.replication.factor")?,
            auto_create_topics: self.parse("auto.create.topics.enable")?,
            socket_request_max_bytes: socket_request_max_bytes as usize,
            connections_max_idle: ms("connections.max.idle.ms")?,
            request_timeout: ms("request.timeout.ms")?,
            flush_check_interval: ms("log.flush.scheduler.interval.ms")?,
            retention_check_interval: ms("log.retention.check.interval.ms")?,
            producer_id_expiration: ms("producer.id.expiration.ms")?,
            producer_id_expiration_check_interval: ms("producer.id.expiration.check.interval.ms")?,
            cleaner_enable: self.parse("log.cleaner.enable")?,
            cleaner_backoff: ms("log.cleaner.backoff.ms")?,
            log,
            group,
            settings: BROKER_KEYS
                .iter()
                .map(|(k, _)| (k.to_string(), (self.get(k).to_owned(), self.values.contains_key(*k))))
                .collect(),
        })
    }
}

/// The validated broker configuration.
#[derive(Debug, Clone)]
pub struct BrokerConfig {
    pub data_dir: PathBuf,
    pub kafka_addr: SocketAddr,
    pub http_addr: SocketAddr,
    /// The RESP (Redis protocol) listener.
    pub resp_addr: SocketAddr,
    /// `resp.requirepass`: the password of the default user (None: no authentication).
    pub resp_password: Option<String>,
    /// `resp.users`: named users and their passwords (`AUTH user password`).
    pub resp_users: Vec<(String, String)>,
    /// `resp.proto-max-bulk-len`: the largest argument a RESP request may carry.
    pub resp_max_bulk_len: usize,
    /// `resp.io-threads`: threads serving the RESP port, each an event loop of its own.
    pub resp_threads: usize,
    /// `num.network.threads`: threads serving the Kafka port, each an event loop that reads,
    /// handles and answers the requests of its share of the connections (default: half the
    /// cores, at least 1).
    pub network_threads: usize,
    /// `kv.topic`: the compacted topic behind Redis strings (GET/SET).
    pub kv_topic: String,
    /// Host and port clients are told to connect to; defaults to the bound Kafka address.
    pub advertised_addr: Option<(String, u16)>,
    pub node_id: i32,
    pub num_partitions: i32,
    pub default_replication_factor: i16,
    pub auto_create_topics: bool,
    pub socket_request_max_bytes: usize,
    pub connections_max_idle: Duration,
    /// How long a partially received request may take before its connection is closed.
    pub request_timeout: Duration,
    pub flush_check_interval: Duration,
    pub retention_check_interval: Duration,
    /// `producer.id.expiration.ms`: an idempotent producer whose last batch is this old is
    /// forgotten (its next batch is accepted at any sequence).
    pub producer_id_expiration: Duration,
    /// `producer.id.expiration.check.interval.ms`: how often expired producers are removed.
    pub producer_id_expiration_check_interval: Duration,
    /// `log.cleaner.enable`: compact topics with `cleanup.policy=compact`.
    pub cleaner_enable: bool,
    /// `log.cleaner.backoff.ms`: how often the cleaner looks for logs to compact.
    pub cleaner_backoff: Duration,
    /// Broker defaults for topic-level log settings.
    pub log: LogConfig,
    /// The group coordinator's settings.
    pub group: GroupConfig,
    /// Every broker key's value and whether it was set (file, --set or flag) rather than
    /// defaulted: what DescribeConfigs reports.
    pub settings: BTreeMap<String, (String, bool)>,
}

/// The broker key that sets the default of a topic-level key (Kafka's synonyms).
pub fn broker_synonym(topic_key: &str) -> Option<&'static str> {
    Some(match topic_key {
        "segment.bytes" => "log.segment.bytes",
        "segment.ms" => "log.roll.ms",
        "segment.index.bytes" => "log.index.size.max.bytes",
        "index.interval.bytes" => "log.index.interval.bytes",
        "retention.ms" => "log.retention.ms",
        "retention.bytes" => "log.retention.bytes",
        "cleanup.policy" => "log.cleanup.policy",
        "flush.messages" => "log.flush.interval.messages",
        "flush.ms" => "log.flush.interval.ms",
        "max.message.bytes" => "message.max.bytes",
        "message.timestamp.type" => "log.message.timestamp.type",
        "min.cleanable.dirty.ratio" => "log.cleaner.min.cleanable.ratio",
        "min.compaction.lag.ms" => "log.cleaner.min.compaction.lag.ms",
        "max.compaction.lag.ms" => "log.cleaner.max.compaction.lag.ms",
        "delete.retention.ms" => "log.cleaner.delete.retention.ms",
        _ => return None,
    })
}

/// `resp.users`: comma-separated `name:password` pairs (the password may hold `:` but not
/// `,`); names are unique and not `default` (that user's password is `resp.requirepass`).
fn parse_users(text: &str) -> Result<Vec<(String, String)>, String> {
    let mut users: Vec<(String, String)> = Vec::new();
    for entry in text.split(',').map(str::trim).filter(|e| !e.is_empty()) {
        let Some((name, password)) = entry.split_once(':') else {
            return Err(format!("expected name:password, got {entry:?}"));
        };
        if name.is_empty() || password.is_empty() {
            return Err(format!("empty name or password in {entry:?}"));
        }
        if name == "default" {
            return Err("the default user's password is resp.requirepass".to_owned());
        }
        if users.iter().any(|(n, _)| n == name) {
            return Err(format!("user {name} is listed twice"));
        }
        users.push((name.to_owned(), password.to_owned()));
    }
    Ok(users)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_validate_to_kafkas_defaults() {
        let c = RawConfig::default().validate().expect("defaults are valid");
        assert_eq!(c.kafka_addr.port(), 9092);
        assert_eq!(c.log, LogConfig::default());
        assert_eq!(c.socket_request_max_bytes, 100 * 1024 * 1024);
        assert!(c.auto_create_topics);
    }

    #[test]
    fn broker_level_log_keys_map_to_topic_level_settings() {
        let mut raw = RawConfig::default();
        raw.set_pair("log.segment.bytes=1048576").expect("set");
        raw.set_pair("log.retention.minutes = 5").expect("set");
        raw.set_pair("log.roll.ms=1000").expect("set");
        raw.set_pair("message.max.bytes=2000").expect("set");
        let c = raw.validate().expect("valid");
        assert_eq!(c.log.segment_bytes, 1 << 20);
        assert_eq!(c.log.retention_ms, Some(300_000));
        assert_eq!(c.log.segment_ms, 1000);
        assert_eq!(c.log.max_message_bytes, 2000);
    }

    #[test]
    fn unknown_keys_and_bad_values_are_errors_that_name_the_key() {
        let mut raw = RawConfig::default();
        assert!(matches!(raw.set_pair("num.partitons=3"), Err(ConfigError::UnknownKey(_))));
        raw.set_pair("num.partitions=zero").expect("set");
        let e = raw.validate().expect_err("invalid");
        assert!(e.to_string().contains("num.partitions"), "{e}");
    }

    #[test]
    fn the_shipped_ops_weir_toml_lists_every_key_and_loads() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("ops/weir.toml");
        let mut raw = RawConfig::default();
        raw.load_file(&path).expect("ops/weir.toml loads");
        raw.validate().expect("and validates");
        let text = std::fs::read_to_string(&path).expect("read");
        for (key, _) in BROKER_KEYS {
            assert!(text.contains(&format!("\"{key}\"")), "ops/weir.toml does not document {key}");
        }
    }
}
