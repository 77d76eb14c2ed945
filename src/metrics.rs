//! Every metric weir exports, named and described once. Names follow Prometheus conventions:
//! `weir_` prefix, base units (`_seconds`, `_bytes`), `_total` for counters.
//!
//! Counters and the request histogram are recorded where things happen (connection, produce,
//! fetch). Per-partition and per-group gauges are written from the broker's state when
//! `/metrics` is scraped: the append path pays nothing for them, and a deleted topic or
//! group leaves no series behind.

use std::sync::atomic::{AtomicU64, Ordering};

use metrics::{describe_counter, describe_gauge, describe_histogram, Unit};
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};

use crate::broker::Broker;

pub const REQUESTS: &str = "weir_requests_total";
pub const REQUEST_DURATION: &str = "weir_request_duration_seconds";
pub const CONNECTION_ERRORS: &str = "weir_connection_errors_total";
pub const ACTIVE_CONNECTIONS: &str = "weir_active_connections";
pub const BYTES_IN: &str = "weir_topic_bytes_in_total";
pub const RECORDS_IN: &str = "weir_topic_records_in_total";
pub const BYTES_OUT: &str = "weir_topic_bytes_out_total";
pub const RECORDS_OUT: &str = "weir_topic_records_out_total";
pub const PRODUCE_ERRORS: &str = "weir_produce_errors_total";
pub const LOG_END_OFFSET: &str = "weir_partition_log_end_offset";
pub const HIGH_WATERMARK: &str = "weir_partition_high_watermark";
pub const LOG_START_OFFSET: &str = "weir_partition_log_start_offset";
pub const LOG_SIZE: &str = "weir_partition_log_size_bytes";
pub const LOG_OFFLINE: &str = "weir_partition_offline";
pub const PARTITIONS: &str = "weir_partitions";
pub const RESP_CONNECTIONS: &str = "weir_resp_connections";
pub const RESP_COMMANDS: &str = "weir_resp_commands_total";
pub const CLEANER_PASSES: &str = "weir_cleaner_passes_total";
pub const CLEANER_BYTES_READ: &str = "weir_cleaner_bytes_read_total";
pub const CLEANER_BYTES_RECLAIMED: &str = "weir_cleaner_bytes_reclaimed_total";
pub const CLEANER_RECORDS_REMOVED: &str = "weir_cleaner_records_removed_total";
pub const CLEANER_ERRORS: &str = "weir_cleaner_errors_total";
pub const PARTITION_REPLICAS: &str = "weir_partition_replicas";
pub const PARTITION_ISR: &str = "weir_partition_in_sync_replicas";
pub const UNDER_REPLICATED: &str = "weir_under_replicated_partitions";
pub const OFFLINE_PARTITIONS: &str = "weir_offline_partitions";
pub const DISK_FREE: &str = "weir_disk_free_bytes";
pub const DISK_TOTAL: &str = "weir_disk_total_bytes";
pub const BUILD_INFO: &str = "weir_build_info";

/// Request latency buckets: 50 µs to 10 s, so both produce (sub-millisecond) and long-poll
/// fetches (up to max_wait_ms) land in useful buckets.
const LATENCY_BUCKETS: &[f64] =
    &[0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0];

/// Installs the global recorder (once per process) and describes every metric.
///
/// # Errors
/// A recorder is already installed.
pub fn install() -> anyhow::Result<PrometheusHandle> {
    let recorder = PrometheusBuilder::new().set_buckets(LATENCY_BUCKETS)?.build_recorder();
    let handle = recorder.handle();
    metrics::set_global_recorder(recorder)?;
    describe_counter!(REQUESTS, "Kafka requests handled, by API.");
    describe_histogram!(
        REQUEST_DURATION,
        Unit::Seconds,
        "Time to handle a Kafka request, by API (fetches include their long-poll wait)."
    );
    describe_counter!(CONNECTION_ERRORS, "Connections closed because a request broke the protocol or a limit.");
    describe_gauge!(ACTIVE_CONNECTIONS, "Open Kafka client connections.");
    describe_gauge!(PARTITIONS, "Partitions hosted by this broker.");
    describe_gauge!(RESP_CONNECTIONS, "Open RESP (Redis protocol) connections.");
    describe_counter!(RESP_COMMANDS, "RESP commands run, by command.");
    describe_counter!(CLEANER_PASSES, "Compaction passes completed, by topic.");
    describe_counter!(CLEANER_BYTES_READ, Unit::Bytes, "Log bytes the compaction cleaner read, by topic.");
    describe_counter!(
        CLEANER_BYTES_RECLAIMED,
        Unit::Bytes,
        "Log bytes compaction removed (read minus written), by topic."
    );
    describe_counter!(
        CLEANER_RECORDS_REMOVED,
        "Records compaction removed (superseded, or expired tombstones), by topic."
    );
    describe_counter!(CLEANER_ERRORS, "Compaction passes that failed, by topic.");
    describe_gauge!(UNDER_REPLICATED, "Partitions with fewer in-sync replicas than replicas.");
    describe_gauge!(OFFLINE_PARTITIONS, "Partitions whose log is offline after a storage error.");
    describe_gauge!(DISK_FREE, Unit::Bytes, "Bytes available to weir on the data directory's filesystem.");
    describe_gauge!(DISK_TOTAL, Unit::Bytes, "Size of the data directory's filesystem.");
    describe_gauge!(BUILD_INFO, "1, labelled with the weir version and this broker's node id.");
    Ok(handle)
}

/// Refreshes per-partition gauges and renders the Prometheus text format.
pub fn render(handle: &PrometheusHandle, broker: &Broker) -> String {
    let partitions = broker.all_partitions();
    metrics::gauge!(PARTITIONS).set(partitions.len() as f64);
    metrics::gauge!(BUILD_INFO, "version" => env!("CARGO_PKG_VERSION"), "node_id" => broker.config.node_id.to_string())
        .set(1.0);
    if let Ok((free, total)) = crate::log::mmap::disk_space(&broker.config.data_dir) {
        metrics::gauge!(DISK_FREE).set(free as f64);
        metrics::gauge!(DISK_TOTAL).set(total as f64);
    }
    let (mut rows, mut under_replicated, mut offline) = (Vec::with_capacity(partitions.len()), 0usize, 0usize);
    for p in &partitions {
        let (replicas, isr) = p.replica_sets(broker.config.node_id);
        let is_offline = p.is_offline();
        under_replicated += usize::from(isr.len() < replicas.len());
        offline += usize::from(is_offline);
        rows.push(PartitionRow {
            topic: label(&p.topic_partition.topic),
            partition: p.topic_partition.partition,
            values: [
                p.log.reader.log_end_offset(),
                p.high_watermark(),
                p.log.reader.log_start_offset(),
                i64::try_from(p.log.reader.size()).unwrap_or(i64::MAX),
                i64::from(is_offline),
                replicas.len() as i64,
                isr.len() as i64,
            ],
        });
    }
    metrics::gauge!(UNDER_REPLICATED).set(under_replicated as f64);
    metrics::gauge!(OFFLINE_PARTITIONS).set(offline as f64);
    let mut text = handle.render();
    render_partitions(&mut text, &rows);
    render_traffic(&mut text, &partitions);
    render_groups(&mut text, broker);
    text
}

/// A partition's traffic: bytes and records appended and fetched, and produce requests
/// refused. Plain counters on the partition (one relaxed add each on the append and fetch
/// paths), summed per topic at scrape time, so a deleted topic's series go with it; a topic
/// created again under the same name starts from zero, a counter reset that `rate()`
/// handles.
#[derive(Debug, Default)]
pub struct Traffic {
    bytes_in: AtomicU64,
    records_in: AtomicU64,
    bytes_out: AtomicU64,
    records_out: AtomicU64,
    /// Refused produce requests by Kafka error code (the error path only).
    produce_errors: std::sync::Mutex<std::collections::BTreeMap<i16, u64>>,
}

impl Traffic {
    /// An appended batch of `bytes` holding `records` records.
    pub fn count_in(&self, bytes: usize, records: i32) {
        self.bytes_in.fetch_add(bytes as u64, Ordering::Relaxed);
        self.records_in.fetch_add(u64::try_from(records).unwrap_or(0), Ordering::Relaxed);
    }

    /// Fetched record bytes holding `records` records.
    pub fn count_out(&self, bytes: usize, records: i64) {
        self.bytes_out.fetch_add(bytes as u64, Ordering::Relaxed);
        self.records_out.fetch_add(u64::try_from(records).unwrap_or(0), Ordering::Relaxed);
    }

    /// A produce request for this partition refused with Kafka error `code`.
    pub fn count_produce_error(&self, code: i16) {
        *self.produce_errors.lock().unwrap_or_else(|e| e.into_inner()).entry(code).or_default() += 1;
    }

    fn values(&self) -> [u64; 4] {
        [&self.bytes_in, &self.records_in, &self.bytes_out, &self.records_out].map(|c| c.load(Ordering::Relaxed))
    }
}

/// Per-topic counters: name, help, and the order of [`Traffic::values`].
const TRAFFIC_COUNTERS: [(&str, &str); 4] = [
    (BYTES_IN, "Record batch bytes appended, by topic."),
    (RECORDS_IN, "Records appended, by topic."),
    (BYTES_OUT, "Record batch bytes returned by fetches, by topic."),
    (RECORDS_OUT, "Records returned by fetches, by topic."),
];

/// Per-topic traffic counters: the sum over each topic's partitions.
fn render_traffic(out: &mut String, partitions: &[std::sync::Arc<crate::broker::Partition>]) {
    use std::fmt::Write;
    let mut topics: std::collections::BTreeMap<&str, [u64; 4]> = std::collections::BTreeMap::new();
    let mut errors: std::collections::BTreeMap<(&str, i16), u64> = std::collections::BTreeMap::new();
    for p in partitions {
        let topic = p.topic_partition.topic.as_str();
        let sum = topics.entry(topic).or_default();
        for (total, v) in sum.iter_mut().zip(p.traffic.values()) {
            *total += v;
        }
        for (code, n) in p.traffic.produce_errors.lock().unwrap_or_else(|e| e.into_inner()).iter() {
            *errors.entry((topic, *code)).or_default() += n;
        }
    }
    for (i, (name, help)) in TRAFFIC_COUNTERS.iter().enumerate() {
        family(out, name, help, "counter");
        for (topic, values) in &topics {
            let _ = writeln!(out, "{name}{{topic=\"{}\"}} {}", label(topic), values[i]);
        }
    }
    family(out, PRODUCE_ERRORS, "Partition produce requests refused, by topic and Kafka error code.", "counter");
    for ((topic, code), n) in &errors {
        let _ = writeln!(out, "{PRODUCE_ERRORS}{{topic=\"{}\",code=\"{code}\"}} {n}", label(topic));
    }
}

/// One partition's gauges, in [`PARTITION_GAUGES`] order.
struct PartitionRow {
    topic: String,
    partition: i32,
    values: [i64; 7],
}

/// Per-partition gauges: name, help, and the order of [`PartitionRow::values`].
const PARTITION_GAUGES: [(&str, &str); 7] = [
    (LOG_END_OFFSET, "Offset after the last record of the partition."),
    (HIGH_WATERMARK, "Offset up to which the partition's records are committed and readable."),
    (LOG_START_OFFSET, "First readable offset of the partition."),
    (LOG_SIZE, "Bytes of the partition's segments."),
    (LOG_OFFLINE, "1 when the partition's log is offline after a storage error."),
    (PARTITION_REPLICAS, "Replicas assigned to the partition."),
    (PARTITION_ISR, "Replicas of the partition in sync (none while its log is offline)."),
];

/// Per-partition series, written from the broker's partitions at scrape time (not through
/// the recorder, so a deleted topic's series disappear with it instead of staying at their
/// last values).
fn render_partitions(out: &mut String, rows: &[PartitionRow]) {
    use std::fmt::Write;
    for (i, (name, help)) in PARTITION_GAUGES.iter().enumerate() {
        family(out, name, help, "gauge");
        for r in rows {
            let _ = writeln!(out, "{name}{{topic=\"{}\",partition=\"{}\"}} {}", r.topic, r.partition, r.values[i]);
        }
    }
}

pub const GROUP_LAG: &str = "weir_group_lag";
pub const GROUP_COMMITTED_OFFSET: &str = "weir_group_committed_offset";
pub const GROUP_MEMBERS: &str = "weir_group_members";
pub const GROUP_STATE: &str = "weir_group_state";

/// The HELP and TYPE lines that open a metric family written at scrape time.
fn family(out: &mut String, name: &str, help: &str, kind: &str) {
    use std::fmt::Write;
    let _ = writeln!(out, "# HELP {name} {help}");
    let _ = writeln!(out, "# TYPE {name} {kind}");
}

/// Escapes a Prometheus label value.
fn label(value: &str) -> String {
    value.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n")
}

/// Per-group series, written from the coordinator's state at scrape time (not through the
/// recorder, so a deleted group's series disappear with it).
fn render_groups(out: &mut String, broker: &Broker) {
    use std::fmt::Write;
    let (lag, groups) = broker.groups.read_blocking(|groups| {
        let summary: Vec<(String, &'static str, usize)> =
            groups.iter().map(|(id, g)| (id.clone(), g.state_name(), g.member_count())).collect();
        let committed: Vec<(String, String, i32, i64)> = groups
            .iter()
            .flat_map(|(id, g)| g.offsets.iter().map(move |((t, p), c)| (id.clone(), t.clone(), *p, c.offset)))
            .collect();
        ((crate::group::lag(broker, groups), committed), summary)
    });
    let (lag, committed) = lag;
    family(
        out,
        GROUP_LAG,
        "Records between a group's committed offset (or the log start, if later) and the high watermark.",
        "gauge",
    );
    for (g, t, p, l) in &lag {
        let _ = writeln!(out, "{GROUP_LAG}{{group=\"{}\",topic=\"{}\",partition=\"{p}\"}} {l}", label(g), label(t));
    }
    family(out, GROUP_COMMITTED_OFFSET, "A group's committed offset.", "gauge");
    for (g, t, p, o) in &committed {
        let _ = writeln!(
            out,
            "{GROUP_COMMITTED_OFFSET}{{group=\"{}\",topic=\"{}\",partition=\"{p}\"}} {o}",
            label(g),
            label(t)
        );
    }
    family(out, GROUP_MEMBERS, "Members of a consumer group.", "gauge");
    for (g, _, n) in &groups {
        let _ = writeln!(out, "{GROUP_MEMBERS}{{group=\"{}\"}} {n}", label(g));
    }
    family(out, GROUP_STATE, "1 for a group's current state (Empty, Stable, PreparingRebalance, ...).", "gauge");
    for (g, state, _) in &groups {
        let _ = writeln!(out, "{GROUP_STATE}{{group=\"{}\",state=\"{state}\"}} 1", label(g));
    }
}
