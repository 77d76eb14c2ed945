//! DescribeConfigs, AlterConfigs and IncrementalAlterConfigs for topics (and DescribeConfigs
//! for the broker). Sources and synonyms are Kafka's: a topic value comes from the topic's
//! override (DYNAMIC_TOPIC_CONFIG), else from the broker setting (STATIC_BROKER_CONFIG), else
//! the default (DEFAULT_CONFIG). Broker settings are static: altering them is refused.

use std::collections::BTreeMap;
use std::sync::Arc;

use kafka_protocol::messages::describe_configs_response::{
    DescribeConfigsResourceResult, DescribeConfigsResult, DescribeConfigsSynonym,
};
use kafka_protocol::messages::{
    incremental_alter_configs_response, AlterConfigsRequest, AlterConfigsResponse, DescribeConfigsRequest,
    DescribeConfigsResponse, IncrementalAlterConfigsRequest, IncrementalAlterConfigsResponse,
};
use kafka_protocol::protocol::StrBytes;

use super::{blocking, code, RequestContext};
use crate::broker::{Broker, TopicError};
use crate::config::broker_synonym;
use crate::log::config::{describe, is_topic_config_key};

const TOPIC: i8 = 2;
const BROKER: i8 = 4;
const DYNAMIC_TOPIC_CONFIG: i8 = 1;
const STATIC_BROKER_CONFIG: i8 = 4;
const DEFAULT_CONFIG: i8 = 5;
// Kafka's ConfigType for DescribeConfigs v3+.
const TYPE_STRING: i8 = 2;
const TYPE_LONG: i8 = 5;
const TYPE_LIST: i8 = 7;

fn s(v: impl Into<String>) -> StrBytes {
    StrBytes::from_string(v.into())
}

fn config_type(key: &str) -> i8 {
    match key {
        "cleanup.policy" => TYPE_LIST,
        "message.timestamp.type" | "compression.type" => TYPE_STRING,
        _ => TYPE_LONG,
    }
}

fn synonym(name: &str, value: &str, source: i8) -> DescribeConfigsSynonym {
    DescribeConfigsSynonym::default().with_name(s(name)).with_value(Some(s(value))).with_source(source)
}

/// Every config of a topic with its value, source and synonyms.
fn topic_configs(
    broker: &Broker,
    overrides: &BTreeMap<String, String>,
    include_synonyms: bool,
    v3: bool,
) -> Vec<DescribeConfigsResourceResult> {
    let defaults = describe(&crate::log::LogConfig::default());
    let effective =
        describe(&broker.config.log.with_overrides(overrides).unwrap_or_else(|_| broker.config.log.clone()));
    let mut keys: Vec<String> = effective.keys().cloned().collect();
    keys.extend(overrides.keys().filter(|k| !effective.contains_key(*k)).cloned());
    keys.into_iter()
        .map(|key| {
            let broker_key = broker_synonym(&key);
            let broker_set = broker_key.and_then(|k| broker.config.settings.get(k)).filter(|(_, set)| *set);
            let mut synonyms = Vec::new();
            if let Some(v) = overrides.get(&key) {
                synonyms.push(synonym(&key, v, DYNAMIC_TOPIC_CONFIG));
            }
            if let (Some(bk), Some((v, _))) = (broker_key, broker_set) {
                synonyms.push(synonym(bk, v, STATIC_BROKER_CONFIG));
            }
            if let Some(d) = defaults.get(&key) {
                synonyms.push(synonym(broker_key.unwrap_or(&key), d, DEFAULT_CONFIG));
            }
            let source = synonyms.first().map_or(DEFAULT_CONFIG, |s| s.source);
            let value = overrides.get(&key).or_else(|| effective.get(&key)).cloned();
            let mut r = DescribeConfigsResourceResult::default()
                .with_name(s(key.clone()))
                .with_value(value.map(s))
                .with_config_source(source);
            if include_synonyms {
                r = r.with_synonyms(synonyms);
            }
            if v3 {
                r = r.with_config_type(config_type(&key));
            }
            r
        })
        .collect()
}

fn broker_configs(broker: &Broker, include_synonyms: bool) -> Vec<DescribeConfigsResourceResult> {
    broker
        .config
        .settings
        .iter()
        .filter(|(_, (v, _))| !v.is_empty())
        .map(|(k, (v, set))| {
            let source = if *set { STATIC_BROKER_CONFIG } else { DEFAULT_CONFIG };
            let r = DescribeConfigsResourceResult::default()
                .with_name(s(k.clone()))
                .with_value(Some(s(v.clone())))
                .with_config_source(source)
                .with_read_only(true);
            if include_synonyms {
                r.with_synonyms(vec![synonym(k, v, source)])
            } else {
                r
            }
        })
        .collect()
}

pub fn describe_configs(
    broker: &Arc<Broker>,
    ctx: &RequestContext,
    req: DescribeConfigsRequest,
) -> DescribeConfigsResponse {
    let results = req
        .resources
        .into_iter()
        .map(|r| {
            let result = DescribeConfigsResult::default()
                .with_resource_type(r.resource_type)
                .with_resource_name(r.resource_name.clone());
            let configs = match r.resource_type {
                TOPIC => match broker.topic(&r.resource_name) {
                    Some(t) => topic_configs(broker, &t.configs, req.include_synonyms, ctx.api_version >= 3),
                    None => {
                        return result
                            .with_error_code(code::UNKNOWN_TOPIC_OR_PARTITION)
                            .with_error_message(Some(s("unknown topic")))
                    }
                },
                BROKER if r.resource_name.is_empty() || *r.resource_name == *broker.config.node_id.to_string() => {
                    broker_configs(broker, req.include_synonyms)
                }
                BROKER => {
                    return result
                        .with_error_code(code::INVALID_REQUEST)
                        .with_error_message(Some(s("unknown broker id")))
                }
                _ => {
                    return result
                        .with_error_code(code::INVALID_REQUEST)
                        .with_error_message(Some(s("unsupported resource type")))
                }
            };
            let configs = match &r.configuration_keys {
                Some(keys) => configs.into_iter().filter(|c| keys.contains(&c.name)).collect(),
                None => configs,
            };
            result.with_configs(configs)
        })
        .collect();
    DescribeConfigsResponse::default().with_results(results)
}

/// Applies a new override set to a topic; the error code and message of the outcome.
async fn apply(
    broker: &Arc<Broker>,
    topic: String,
    overrides: Result<BTreeMap<String, String>, String>,
    validate_only: bool,
) -> (i16, Option<String>) {
    let overrides = match overrides {
        Ok(o) => o,
        Err(message) => return (code::INVALID_CONFIG, Some(message)),
    };
    if let Some(bad) = overrides.keys().find(|k| !is_topic_config_key(k)) {
        return (code::INVALID_CONFIG, Some(format!("Unknown topic config name: {bad}")));
    }
    let b = Arc::clone(broker);
    match blocking(move || b.alter_topic_config(&topic, overrides, validate_only)).await {
        Some(Ok(())) => (code::NONE, None),
        Some(Err(TopicError::Unknown(_))) => (code::UNKNOWN_TOPIC_OR_PARTITION, Some("unknown topic".into())),
        Some(Err(e)) => (code::INVALID_CONFIG, Some(e.to_string())),
        None => (code::KAFKA_STORAGE_ERROR, None),
    }
}

fn refuse_non_topic(resource_type: i8) -> Option<(i16, Option<String>)> {
    match resource_type {
        TOPIC => None,
        BROKER => Some((
            code::INVALID_REQUEST,
            Some("broker settings are static in weir: change the config file and restart".into()),
        )),
        _ => Some((code::INVALID_REQUEST, Some("unsupported resource type".into()))),
    }
}

/// AlterConfigs: replaces the topic's whole override set (Kafka's semantics).
pub async fn alter_configs(broker: &Arc<Broker>, req: AlterConfigsRequest) -> AlterConfigsResponse {
    use kafka_protocol::messages::alter_configs_response::AlterConfigsResourceResponse;
    let mut responses = Vec::new();
    for r in req.resources {
        let (error, message) = match refuse_non_topic(r.resource_type) {
            Some(refused) => refused,
            None => {
                let overrides = r
                    .configs
                    .iter()
                    .filter_map(|c| Some((c.name.to_string(), c.value.as_ref()?.to_string())))
                    .collect();
                apply(broker, r.resource_name.to_string(), Ok(overrides), req.validate_only).await
            }
        };
        responses.push(
            AlterConfigsResourceResponse::default()
                .with_resource_type(r.resource_type)
                .with_resource_name(r.resource_name)
                .with_error_code(error)
                .with_error_message(message.map(s)),
        );
    }
    AlterConfigsResponse::default().with_responses(responses)
}

/// IncrementalAlterConfigs: SET (0), DELETE (1), APPEND (2) and SUBTRACT (3) on the topic's
/// current overrides; APPEND/SUBTRACT only for list-valued keys.
pub async fn incremental_alter_configs(
    broker: &Arc<Broker>,
    req: IncrementalAlterConfigsRequest,
) -> IncrementalAlterConfigsResponse {
    let mut responses = Vec::new();
    for r in req.resources {
        let topic = r.resource_name.to_string();
        let (error, message) = match refuse_non_topic(r.resource_type) {
            Some(refused) => refused,
            None => {
                let current = broker.topic(&topic).map(|t| t.configs);
                match current {
                    None => (code::UNKNOWN_TOPIC_OR_PARTITION, Some("unknown topic".into())),
                    Some(mut overrides) => {
                        let mut outcome = Ok(());
                        for c in &r.configs {
                            let key = c.name.to_string();
                            let value = c.value.as_ref().map(|v| v.to_string()).unwrap_or_default();
                            let list = |o: &BTreeMap<String, String>| -> Vec<String> {
                                let current = o.get(&key).cloned().or_else(|| {
                                    broker
                                        .topic_config(&topic)
                                        .map(|cfg| describe(&cfg))
                                        .and_then(|d| d.get(&key).cloned())
                                });
                                current
                                    .unwrap_or_default()
                                    .split(',')
                                    .map(str::trim)
                                    .filter(|x| !x.is_empty())
                                    .map(String::from)
                                    .collect()
                            };
                            match c.config_operation {
                                0 => {
                                    overrides.insert(key, value);
                                }
                                1 => {
                                    overrides.remove(&key);
                                }
                                2 | 3 if config_type(&key) == TYPE_LIST => {
                                    let mut items = list(&overrides);
                                    for v in value.split(',').map(str::trim).filter(|x| !x.is_empty()) {
                                        if c.config_operation == 2 && !items.iter().any(|i| i == v) {
                                            items.push(v.to_owned());
                                        } else if c.config_operation == 3 {
                                            items.retain(|i| i != v);
                                        }
                                    }
                                    overrides.insert(key, items.join(","));
                                }
                                2 | 3 => {
                                    outcome = Err(format!("{key} is not a list: APPEND and SUBTRACT do not apply"))
                                }
                                op => outcome = Err(format!("unknown config operation {op}")),
                            }
                        }
                        apply(broker, topic, outcome.map(|()| overrides), req.validate_only).await
                    }
                }
            }
        };
        responses.push(
            incremental_alter_configs_response::AlterConfigsResourceResponse::default()
                .with_resource_type(r.resource_type)
                .with_resource_name(r.resource_name)
                .with_error_code(error)
                .with_error_message(message.map(s)),
        );
    }
    IncrementalAlterConfigsResponse::default().with_responses(responses)
}
