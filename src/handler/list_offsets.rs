//! ListOffsets: earliest (-2), latest (-1), max timestamp (-3), or the first offset whose
//! timestamp is at or after a given time.

use std::sync::Arc;

use kafka_protocol::messages::list_offsets_response::{ListOffsetsPartitionResponse, ListOffsetsTopicResponse};
use kafka_protocol::messages::{ListOffsetsRequest, ListOffsetsResponse};

use super::{code, RequestContext};
use crate::broker::Broker;

const LATEST: i64 = -1;
const EARLIEST: i64 = -2;
const MAX_TIMESTAMP: i64 = -3;

pub fn handle(broker: &Arc<Broker>, ctx: &RequestContext, req: ListOffsetsRequest) -> ListOffsetsResponse {
    let topics = req
        .topics
        .into_iter()
        .map(|topic| {
            let name = topic.name.0.to_string();
            let partitions = topic
                .partitions
                .iter()
                .map(|p| {
                    let base = ListOffsetsPartitionResponse::default().with_partition_index(p.partition_index);
                    let Some(partition) = broker.partition_named(&name, p.partition_index) else {
                        return base
                            .with_error_code(code::UNKNOWN_TOPIC_OR_PARTITION)
                            .with_offset(-1)
                            .with_timestamp(-1);
                    };
                    let reader = &partition.log.reader;
                    let (timestamp, offset) = match p.timestamp {
                        LATEST => (-1, partition.high_watermark()),
                        EARLIEST => (-1, partition.log_start_offset()),
                        MAX_TIMESTAMP => reader.max_timestamp_offset().unwrap_or((-1, -1)),
                        t => reader.offset_for_timestamp(t).map_or((-1, -1), |(offset, ts)| (ts, offset)),
                    };
                    tracing::trace!(
                        topic = %name, partition = p.partition_index, query = p.timestamp, offset, timestamp,
                        version = ctx.api_version, "list offsets"
                    );
                    let base = base.with_timestamp(timestamp).with_offset(offset);
                    if ctx.api_version >= 4 {
                        base.with_leader_epoch(partition.leader_epoch)
                    } else {
                        base
                    }
                })
                .collect();
            ListOffsetsTopicResponse::default().with_name(topic.name).with_partitions(partitions)
        })
        .collect();
    ListOffsetsResponse::default().with_topics(topics)
}
