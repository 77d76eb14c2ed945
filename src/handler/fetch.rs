//! Fetch: whole batches from each requested partition, as zero-copy slices of the segment
//! maps, up to `max_bytes` and each partition's `partition_max_bytes` (the first partition
//! with data returns at least one batch, KIP-74). Long-polls: when fewer than `min_bytes` are
//! available it waits for appends (a notification, never a sleep loop) until `max_wait_ms`.
//! Fetch sessions (KIP-227) are not kept: every response is a full one with session id 0,
//! which clients treat as "sessions not supported".

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use kafka_protocol::messages::fetch_response::{FetchableTopicResponse, PartitionData};
use kafka_protocol::messages::{FetchRequest, FetchResponse, TopicName};
use kafka_protocol::protocol::StrBytes;
use tokio::time::Instant;

use super::{code, RequestContext};
use crate::broker::{Broker, Partition};
use crate::log::Error;
use crate::server::timer::ConnectionTimer;

/// The topics of the request resolved to names (by id from v13).
fn topic_name(broker: &Broker, version: i16, name: &TopicName, id: uuid::Uuid) -> Option<StrBytes> {
    if version >= 13 {
        broker.topic_name_by_id(id)
    } else {
        Some(name.0.clone())
    }
}

fn empty_partition(index: i32, error: i16) -> PartitionData {
    PartitionData::default()
        .with_partition_index(index)
        .with_error_code(error)
        .with_high_watermark(-1)
        .with_last_stable_offset(-1)
        .with_log_start_offset(-1)
        .with_aborted_transactions(Some(vec![]))
        .with_records(Some(Bytes::new()))
}

fn read_partition(
    broker: &Broker,
    partition: &Partition,
    index: i32,
    fetch_offset: i64,
    current_leader_epoch: i32,
    max_bytes: usize,
    min_one: bool,
) -> PartitionData {
    let epoch = partition.leader_epoch;
    let error = if current_leader_epoch >= 0 && current_leader_epoch < epoch {
        Some(code::FENCED_LEADER_EPOCH)
    } else if current_leader_epoch > epoch {
        Some(code::UNKNOWN_LEADER_EPOCH)
    } else {
        None
    };
    let high_watermark = partition.high_watermark();
    let base = PartitionData::default()
        .with_partition_index(index)
        .with_high_watermark(high_watermark)
        .with_last_stable_offset(high_watermark)
        .with_log_start_offset(partition.log_start_offset())
        .with_aborted_transactions(Some(vec![]))
        .with_records(Some(Bytes::new()));
    if let Some(error) = error {
        return base.with_error_code(error);
    }
    if max_bytes == 0 && !min_one {
        return base;
    }
    match broker.read(partition, fetch_offset, max_bytes, min_one) {
        Ok(read) => base.with_records(Some(read.records)),
        Err(Error::OffsetOutOfRange { .. }) => base.with_error_code(code::OFFSET_OUT_OF_RANGE),
        Err(e) => {
            tracing::warn!(topic_partition = %partition.topic_partition, error = %e, "fetch read failed");
            base.with_error_code(code::KAFKA_STORAGE_ERROR)
        }
    }
}

/// Counts the bytes and records a response sends, on each partition's traffic counters
/// (batch headers only: each carries its record count).
fn count_out(served: &[(Arc<Partition>, Bytes)]) {
    for (partition, data) in served {
        let records: i64 = crate::log::batch::HeaderIter::new(data, 0).map(|b| i64::from(b.header.records_count)).sum();
        partition.traffic.count_out(data.len(), records);
    }
}

/// One pass over the request: the response, the record bytes it holds, whether any partition
/// has an error (errors are answered at once), and the partitions that returned records.
fn collect(broker: &Broker, version: i16, req: &FetchRequest) -> Collected {
    let mut remaining = usize::try_from(req.max_bytes).unwrap_or(0);
    let mut total = 0usize;
    let mut any_error = false;
    let mut topics = Vec::with_capacity(req.topics.len());
    let mut served = Vec::new();
    for topic in &req.topics {
        let name = topic_name(broker, version, &topic.topic, topic.topic_id);
        let mut partitions = Vec::with_capacity(topic.partitions.len());
        for p in &topic.partitions {
            let partition = name.as_ref().and_then(|n| broker.partition_named(n, p.partition));
            let data = match partition {
                None => {
                    let error = if version >= 13 { code::UNKNOWN_TOPIC_ID } else { code::UNKNOWN_TOPIC_OR_PARTITION };
                    empty_partition(p.partition, error)
                }
                Some(partition) => {
                    let limit = usize::try_from(p.partition_max_bytes).unwrap_or(0).min(remaining);
                    let data = read_partition(
                        broker,
                        &partition,
                        p.partition,
                        p.fetch_offset,
                        p.current_leader_epoch,
                        limit,
                        total == 0,
                    );
                    if let Some(records) = data.records.as_ref().filter(|r| !r.is_empty()) {
                        served.push((partition, records.clone()));
                    }
                    data
                }
            };
            any_error |= data.error_code != code::NONE;
            let n = data.records.as_ref().map_or(0, Bytes::len);
            tracing::trace!(
                topic = ?name, partition = p.partition, fetch_offset = p.fetch_offset,
                max_bytes = p.partition_max_bytes, bytes = n, error = data.error_code, "fetch partition"
            );
            total += n;
            remaining = remaining.saturating_sub(n);
            partitions.push(data);
        }
        let name = TopicName(name.unwrap_or_default());
        topics.push(
            FetchableTopicResponse::default()
                .with_topic(name)
                .with_topic_id(topic.topic_id)
                .with_partitions(partitions),
        );
    }
    Collected { response: FetchResponse::default().with_responses(topics), bytes: total, any_error, served }
}

struct Collected {
    response: FetchResponse,
    bytes: usize,
    any_error: bool,
    served: Vec<(Arc<Partition>, Bytes)>,
}

pub async fn handle(
    broker: &Arc<Broker>,
    ctx: &RequestContext,
    req: FetchRequest,
    timer: &mut ConnectionTimer,
) -> FetchResponse {
    let max_wait =
        Duration::from_millis(u64::try_from(req.max_wait_ms).unwrap_or(0)).min(broker.config.request_timeout);
    let deadline = Instant::now() + max_wait;
    // As Kafka's DelayedFetch: answered at once when min_bytes ≤ 0, max_wait_ms ≤ 0 or no
    // partition is asked for; otherwise once min_bytes are there, an error, or the deadline.
    let min_bytes = usize::try_from(req.min_bytes).unwrap_or(0);
    let mut expired = max_wait.is_zero() || req.topics.iter().all(|t| t.partitions.is_empty());
    let mut appends = broker.subscribe_appends();
    loop {
        // Mark the current version seen before reading, so an append racing the read below
        // still wakes the wait.
        appends.borrow_and_update();
        let Collected { response, bytes, any_error, served } = collect(broker, ctx.api_version, &req);
        if bytes >= min_bytes || any_error || expired {
            count_out(&served);
            return response;
        }
        tokio::select! {
            changed = appends.changed() => if changed.is_err() { count_out(&served); return response },
            () = timer.until(deadline) => expired = true,
        }
    }
}
