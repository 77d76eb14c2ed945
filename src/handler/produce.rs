//! Produce: each partition's records (exactly one v2 batch, as Kafka requires since v3) go to
//! the partition's log unchanged but for the broker's header fields. acks=0 gets no response.

use std::sync::Arc;

use kafka_protocol::messages::produce_response::{PartitionProduceResponse, TopicProduceResponse};
use kafka_protocol::messages::{ProduceRequest, ProduceResponse};
use kafka_protocol::protocol::StrBytes;

use super::{code, RequestContext};
use crate::broker::{Broker, ProduceError};
use crate::error::log_error_code;
use crate::log::batch::BatchHeader;

fn partition_error(index: i32, error: i16) -> PartitionProduceResponse {
    PartitionProduceResponse::default().with_index(index).with_error_code(error).with_base_offset(-1)
}

pub async fn handle(broker: &Arc<Broker>, ctx: &RequestContext, req: ProduceRequest) -> Option<ProduceResponse> {
    let acks = req.acks;
    let mut responses = Vec::with_capacity(req.topic_data.len());
    for topic in req.topic_data {
        let name: &str = &topic.name.0;
        let mut partitions = Vec::with_capacity(topic.partition_data.len());
        for data in topic.partition_data {
            let index = data.index;
            if !matches!(acks, -1..=1) {
                partitions.push(partition_error(index, code::INVALID_REQUIRED_ACKS));
                continue;
            }
            if name == crate::group::OFFSETS_TOPIC {
                // Only the group coordinator writes its internal topic (Kafka's rule).
                partitions.push(partition_error(index, code::INVALID_TOPIC_EXCEPTION));
                continue;
            }
            let Some(partition) = broker.partition_named(name, index) else {
                partitions.push(partition_error(index, code::UNKNOWN_TOPIC_OR_PARTITION));
                continue;
            };
            let records = data.records.unwrap_or_default();
            let Some(header) = BatchHeader::parse(&records) else {
                partitions.push(partition_error(index, code::CORRUPT_MESSAGE));
                continue;
            };
            if header.magic != 2 {
                partitions.push(partition_error(index, code::UNSUPPORTED_FOR_MESSAGE_FORMAT));
                continue;
            }
            if header.is_control() || header.is_transactional() {
                // Control batches come only from brokers; transactions are not supported yet.
                partitions.push(partition_error(index, code::INVALID_RECORD));
                continue;
            }
            if header.batch_length < 0 || header.size() != records.len() {
                // Kafka: produce requests v3+ must hold exactly one record batch.
                partitions.push(partition_error(index, code::INVALID_RECORD));
                continue;
            }
            let response = match broker.append(&partition, &records).await {
                Ok(info) => PartitionProduceResponse::default()
                    .with_index(index)
                    .with_base_offset(info.base_offset)
                    .with_log_append_time_ms(info.log_append_time.unwrap_or(-1))
                    .with_log_start_offset(partition.log_start_offset()),
                Err(e) => {
                    tracing::debug!(topic_partition = %partition.topic_partition, error = %e, "produce refused");
                    let code = match &e {
                        ProduceError::InvalidProducerEpoch => code::INVALID_PRODUCER_EPOCH,
                        ProduceError::OutOfOrderSequence => code::OUT_OF_ORDER_SEQUENCE_NUMBER,
                        ProduceError::NoKeyForCompactedTopic(_) => code::INVALID_RECORD,
                        ProduceError::Log(e) => log_error_code(e).code(),
                    };
                    partition.traffic.count_produce_error(code);
                    let response = partition_error(index, code);
                    if ctx.api_version >= 8 && matches!(e, ProduceError::NoKeyForCompactedTopic(_)) {
                        response.with_error_message(Some(StrBytes::from_string(e.to_string())))
                    } else {
                        response
                    }
                }
            };
            partitions.push(response);
        }
        responses.push(TopicProduceResponse::default().with_name(topic.name).with_partition_responses(partitions));
    }
    (acks != 0).then(|| ProduceResponse::default().with_responses(responses))
}
