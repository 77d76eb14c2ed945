//! Metadata: brokers, and topics with their partitions, leaders and topic ids. Creates
//! requested topics that do not exist when `auto.create.topics.enable` and the client allows.

use std::collections::BTreeMap;
use std::sync::Arc;

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::metadata_response::{
    MetadataResponseBroker, MetadataResponsePartition, MetadataResponseTopic,
};
use kafka_protocol::messages::{BrokerId, MetadataRequest, MetadataResponse, TopicName};
use kafka_protocol::protocol::StrBytes;
use uuid::Uuid;

use super::{blocking, code, RequestContext};
use crate::broker::{Broker, TopicError};
use crate::log::manager::TopicMetadata;

fn topic_entry(broker: &Broker, t: &TopicMetadata) -> MetadataResponseTopic {
    let node = BrokerId(broker.config.node_id);
    let partitions = (0..t.partitions)
        .map(|p| {
            let partition = broker.partition(&crate::log::TopicPartition::new(&t.name, p));
            let epoch = partition.as_ref().map_or(0, |p| p.leader_epoch);
            let offline = partition.as_ref().is_some_and(|p| p.is_offline());
            let entry = MetadataResponsePartition::default().with_partition_index(p).with_leader_epoch(epoch);
            if offline {
                // The only replica's log failed: no leader, as Kafka reports an offline leader.
                entry
                    .with_error_code(ResponseError::LeaderNotAvailable.code())
                    .with_leader_id(BrokerId(-1))
                    .with_replica_nodes(vec![node])
                    .with_isr_nodes(vec![])
                    .with_offline_replicas(vec![node])
            } else {
                entry
                    .with_leader_id(node)
                    .with_replica_nodes(vec![node])
                    .with_isr_nodes(vec![node])
                    .with_offline_replicas(vec![])
            }
        })
        .collect();
    MetadataResponseTopic::default()
        .with_name(Some(TopicName(StrBytes::from_string(t.name.clone()))))
        .with_topic_id(t.topic_id.unwrap_or_else(Uuid::nil))
        .with_is_internal(t.name == crate::group::OFFSETS_TOPIC)
        .with_partitions(partitions)
}

fn error_entry(name: Option<&str>, topic_id: Uuid, error: i16) -> MetadataResponseTopic {
    MetadataResponseTopic::default()
        .with_error_code(error)
        .with_name(name.map(|n| TopicName(StrBytes::from_string(n.to_owned()))))
        .with_topic_id(topic_id)
}

pub async fn handle(broker: &Arc<Broker>, ctx: &RequestContext, req: MetadataRequest) -> MetadataResponse {
    let (host, port) = broker.advertised.clone();
    let brokers = vec![MetadataResponseBroker::default()
        .with_node_id(BrokerId(broker.config.node_id))
        .with_host(StrBytes::from_string(host))
        .with_port(i32::from(port))];
    // v0: an empty list means every topic; v1+: null means every topic.
    let requested = match req.topics {
        Some(t) if !(ctx.api_version == 0 && t.is_empty()) => Some(t),
        _ => None,
    };
    let auto_create = broker.config.auto_create_topics && (ctx.api_version < 4 || req.allow_auto_topic_creation);
    let topics = match requested {
        None => broker.topics().iter().map(|t| topic_entry(broker, t)).collect(),
        Some(requested) => {
            let mut out = Vec::with_capacity(requested.len());
            for r in requested {
                let entry = match r.name {
                    Some(name) => by_name(broker, &name, auto_create).await,
                    None => match broker.topic_by_id(r.topic_id) {
                        Some(t) => topic_entry(broker, &t),
                        None => error_entry(None, r.topic_id, code::UNKNOWN_TOPIC_ID),
                    },
                };
                out.push(entry);
            }
            out
        }
    };
    MetadataResponse::default()
        .with_brokers(brokers)
        .with_cluster_id(Some(StrBytes::from_string(broker.cluster_id.clone())))
        .with_controller_id(BrokerId(broker.config.node_id))
        .with_topics(topics)
}

async fn by_name(broker: &Arc<Broker>, name: &TopicName, auto_create: bool) -> MetadataResponseTopic {
    let name = name.0.to_string();
    if let Some(t) = broker.topic(&name) {
        return topic_entry(broker, &t);
    }
    if !auto_create {
        return error_entry(Some(&name), Uuid::nil(), code::UNKNOWN_TOPIC_OR_PARTITION);
    }
    let b = Arc::clone(broker);
    let n = name.clone();
    match blocking(move || b.create_topic(&n, -1, -1, BTreeMap::new(), false)).await {
        Some(Ok(t)) => {
            tracing::info!(topic = %name, partitions = t.partitions, "auto-created topic");
            topic_entry(broker, &t)
        }
        // Lost a race with another creator: it exists now.
        Some(Err(TopicError::AlreadyExists(_))) => match broker.topic(&name) {
            Some(t) => topic_entry(broker, &t),
            None => error_entry(Some(&name), Uuid::nil(), code::UNKNOWN_TOPIC_OR_PARTITION),
        },
        Some(Err(TopicError::Log(crate::log::Error::InvalidTopic { .. }))) => {
            error_entry(Some(&name), Uuid::nil(), code::INVALID_TOPIC_EXCEPTION)
        }
        Some(Err(e)) => {
            tracing::warn!(topic = %name, error = %e, "auto-create failed");
            error_entry(Some(&name), Uuid::nil(), code::UNKNOWN_TOPIC_OR_PARTITION)
        }
        None => error_entry(Some(&name), Uuid::nil(), code::KAFKA_STORAGE_ERROR),
    }
}
