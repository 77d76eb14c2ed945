//! CreateTopics: partitions, replication factor (1 on a single broker), configs under Kafka's
//! topic keys, `validate_only`.

use std::collections::BTreeMap;
use std::sync::Arc;

use kafka_protocol::messages::create_topics_response::{CreatableTopicConfigs, CreatableTopicResult};
use kafka_protocol::messages::{CreateTopicsRequest, CreateTopicsResponse};
use kafka_protocol::protocol::StrBytes;

use super::{blocking, code, RequestContext};
use crate::broker::{Broker, TopicError};
use crate::log::config::{is_topic_config_key, LOG_CONFIG_KEYS};
use crate::log::Error as LogError;

fn error_code(e: &TopicError) -> i16 {
    match e {
        TopicError::AlreadyExists(_) => code::TOPIC_ALREADY_EXISTS,
        TopicError::Unknown(_) => code::UNKNOWN_TOPIC_OR_PARTITION,
        TopicError::InvalidReplicationFactor(_) => code::INVALID_REPLICATION_FACTOR,
        TopicError::InvalidPartitions(_) => code::INVALID_PARTITIONS,
        TopicError::Log(LogError::InvalidTopic { .. }) => code::INVALID_TOPIC_EXCEPTION,
        TopicError::Log(LogError::InvalidConfig { .. }) => code::INVALID_CONFIG,
        TopicError::Log(e) => crate::error::log_error_code(e).code(),
    }
}

pub async fn handle(broker: &Arc<Broker>, ctx: &RequestContext, req: CreateTopicsRequest) -> CreateTopicsResponse {
    let mut results = Vec::with_capacity(req.topics.len());
    for topic in req.topics {
        let name = topic.name.0.to_string();
        let result = CreatableTopicResult::default().with_name(topic.name.clone());
        let mut configs = BTreeMap::new();
        let mut config_error = None;
        for c in &topic.configs {
            let key = c.name.to_string();
            if !is_topic_config_key(&key) {
                config_error = Some(format!("Unknown topic config name: {key}"));
                break;
            }
            if let Some(v) = &c.value {
                configs.insert(key, v.to_string());
            }
        }
        if let Some(message) = config_error {
            results.push(
                result.with_error_code(code::INVALID_CONFIG).with_error_message(Some(StrBytes::from_string(message))),
            );
            continue;
        }
        let mut partitions = topic.num_partitions;
        let mut replication = topic.replication_factor;
        if !topic.assignments.is_empty() {
            // Manual assignment: every replica must be this broker.
            let only_here =
                topic.assignments.iter().all(|a| a.broker_ids.len() == 1 && a.broker_ids[0].0 == broker.config.node_id);
            if !only_here || partitions != -1 || replication != -1 {
                let message =
                    "replica assignments may only name this broker, without num_partitions/replication_factor";
                results.push(
                    result
                        .with_error_code(code::INVALID_REPLICA_ASSIGNMENT)
                        .with_error_message(Some(StrBytes::from_static_str(message))),
                );
                continue;
            }
            partitions = topic.assignments.len() as i32;
            replication = 1;
        }
        let b = Arc::clone(broker);
        let n = name.clone();
        let validate_only = req.validate_only;
        let outcome = blocking(move || b.create_topic(&n, partitions, replication, configs, validate_only)).await;
        let result = match outcome {
            Some(Ok(meta)) => {
                let result = result
                    .with_topic_id(meta.topic_id.unwrap_or_default())
                    .with_num_partitions(meta.partitions)
                    .with_replication_factor(1);
                if ctx.api_version >= 5 {
                    result.with_configs(Some(effective_configs(broker, &meta.configs)))
                } else {
                    result
                }
            }
            Some(Err(e)) => {
                result.with_error_code(error_code(&e)).with_error_message(Some(StrBytes::from_string(e.to_string())))
            }
            None => result.with_error_code(code::KAFKA_STORAGE_ERROR),
        };
        results.push(result);
    }
    CreateTopicsResponse::default().with_topics(results)
}

/// The topic's log settings with where each comes from (Kafka's config sources: 1 = topic
/// override, 5 = default).
fn effective_configs(broker: &Broker, overrides: &BTreeMap<String, String>) -> Vec<CreatableTopicConfigs> {
    let defaults = crate::log::config::describe(&broker.config.log);
    LOG_CONFIG_KEYS
        .iter()
        .map(|(key, _)| {
            let (value, source) = match overrides.get(*key) {
                Some(v) => (v.clone(), 1),
                None => (defaults.get(*key).cloned().unwrap_or_default(), 5),
            };
            CreatableTopicConfigs::default()
                .with_name(StrBytes::from_static_str(key))
                .with_value(Some(StrBytes::from_string(value)))
                .with_config_source(source)
        })
        .collect()
}
