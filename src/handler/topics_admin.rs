//! CreatePartitions, DeleteRecords and DescribeCluster.

use std::sync::Arc;

use kafka_protocol::messages::create_partitions_response::CreatePartitionsTopicResult;
use kafka_protocol::messages::delete_records_response::{DeleteRecordsPartitionResult, DeleteRecordsTopicResult};
use kafka_protocol::messages::describe_cluster_response::DescribeClusterBroker;
use kafka_protocol::messages::{
    BrokerId, CreatePartitionsRequest, CreatePartitionsResponse, DeleteRecordsRequest, DeleteRecordsResponse,
    DescribeClusterRequest, DescribeClusterResponse,
};
use kafka_protocol::protocol::StrBytes;

use super::{blocking, code, RequestContext};
use crate::broker::{Broker, TopicError};

/// CreatePartitions: grows topics; manual assignments may only name this broker.
pub async fn create_partitions(broker: &Arc<Broker>, req: CreatePartitionsRequest) -> CreatePartitionsResponse {
    let mut results = Vec::new();
    for t in req.topics {
        let result = CreatePartitionsTopicResult::default().with_name(t.name.clone());
        let elsewhere =
            t.assignments.iter().flatten().any(|a| a.broker_ids.iter().any(|b| b.0 != broker.config.node_id));
        if elsewhere {
            results.push(
                result
                    .with_error_code(code::INVALID_REPLICA_ASSIGNMENT)
                    .with_error_message(Some(StrBytes::from_static_str("assignments may only name this broker"))),
            );
            continue;
        }
        let name = t.name.0.to_string();
        let current = broker.topic(&name).map(|m| m.partitions);
        let b = Arc::clone(broker);
        let (count, validate_only) = (t.count, req.validate_only);
        let (error, message) = match blocking(move || b.add_partitions(&name, count, validate_only)).await {
            Some(Ok(())) => (code::NONE, None),
            Some(Err(TopicError::Unknown(_))) => (code::UNKNOWN_TOPIC_OR_PARTITION, Some("unknown topic".to_owned())),
            Some(Err(TopicError::InvalidPartitions(n))) => (
                code::INVALID_PARTITIONS,
                Some(format!("topic has {} partitions; {n} does not grow it", current.unwrap_or(0))),
            ),
            Some(Err(e)) => (code::KAFKA_STORAGE_ERROR, Some(e.to_string())),
            None => (code::KAFKA_STORAGE_ERROR, None),
        };
        results.push(result.with_error_code(error).with_error_message(message.map(StrBytes::from_string)));
    }
    CreatePartitionsResponse::default().with_results(results)
}

/// DeleteRecords: moves log start offsets forward.
pub fn delete_records(broker: &Arc<Broker>, req: DeleteRecordsRequest) -> DeleteRecordsResponse {
    let topics = req
        .topics
        .into_iter()
        .map(|t| {
            let name = t.name.0.to_string();
            let partitions = t
                .partitions
                .iter()
                .map(|p| {
                    let result = DeleteRecordsPartitionResult::default().with_partition_index(p.partition_index);
                    let Some(partition) = broker.partition_named(&name, p.partition_index) else {
                        return result.with_error_code(code::UNKNOWN_TOPIC_OR_PARTITION).with_low_watermark(-1);
                    };
                    match broker.delete_records(&partition, p.offset) {
                        Ok(low) => result.with_low_watermark(low),
                        Err(crate::log::Error::OffsetOutOfRange { .. }) => result
                            .with_error_code(code::OFFSET_OUT_OF_RANGE)
                            .with_low_watermark(partition.log_start_offset()),
                        Err(e) => {
                            result.with_error_code(crate::error::log_error_code(&e).code()).with_low_watermark(-1)
                        }
                    }
                })
                .collect();
            DeleteRecordsTopicResult::default().with_name(t.name).with_partitions(partitions)
        })
        .collect();
    DeleteRecordsResponse::default().with_topics(topics)
}

/// DescribeCluster: this broker, which is also the controller.
pub fn describe_cluster(
    broker: &Arc<Broker>,
    ctx: &RequestContext,
    req: DescribeClusterRequest,
) -> DescribeClusterResponse {
    const BROKERS: i8 = 1;
    let response = DescribeClusterResponse::default()
        .with_cluster_id(StrBytes::from_string(broker.cluster_id.clone()))
        .with_controller_id(BrokerId(broker.config.node_id));
    if ctx.api_version >= 1 && req.endpoint_type != BROKERS {
        return response
            .with_error_code(code::UNSUPPORTED_ENDPOINT_TYPE)
            .with_error_message(Some(StrBytes::from_static_str("only broker endpoints are served")));
    }
    let (host, port) = broker.advertised.clone();
    response.with_brokers(vec![DescribeClusterBroker::default()
        .with_broker_id(BrokerId(broker.config.node_id))
        .with_host(StrBytes::from_string(host))
        .with_port(i32::from(port))])
}
