//! `weir topic create | delete | add-partitions | alter-config`: the commands that change
//! topics, each one admin request to the controller (CreateTopics, DeleteTopics,
//! CreatePartitions, IncrementalAlterConfigs), reported per topic with the broker's error
//! message. `alter-config` reads the configs before and after through DescribeConfigs
//! ([`super::describe`]) to print what changed.
//!
//! It never retries: a topic the broker refused is reported, and the command exits 1.

use std::collections::BTreeSet;

use anyhow::Context;
use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::create_partitions_request::CreatePartitionsTopic;
use kafka_protocol::messages::create_topics_request::{CreatableTopic, CreatableTopicConfig};
use kafka_protocol::messages::incremental_alter_configs_request::{AlterConfigsResource, AlterableConfig};
use kafka_protocol::messages::{
    CreatePartitionsRequest, CreateTopicsRequest, DeleteTopicsRequest, IncrementalAlterConfigsRequest,
};
use serde::Serialize;

use super::describe::{describe_configs, ConfigEntry};
use super::metadata::{topic_id_text, Admin};
use super::{
    print_json, print_table, refused, s, topic_name, unique, AddPartitionsArgs, AlterConfigArgs, CreateArgs,
    DeleteArgs, ErrorJson, Topics, ADMIN_TIMEOUT_MS, TOPIC_RESOURCE,
};
use crate::cli::{cell, Format, Table, EXIT_REFUSED};

/// Versions both Kafka 3.x/4.x and weir serve. CreateTopics v7 is the first that returns the
/// new topic's id; DeleteTopics v5 returns error messages and still names topics by name (v6
/// adds ids); CreatePartitions v2 and IncrementalAlterConfigs v1 are those APIs' flexible
/// forms.
const CREATE_TOPICS_VERSION: i16 = 7;
const DELETE_TOPICS_VERSION: i16 = 5;
const CREATE_PARTITIONS_VERSION: i16 = 2;
const INCREMENTAL_ALTER_CONFIGS_VERSION: i16 = 1;

/// IncrementalAlterConfigs operations.
const OP_SET: i8 = 0;
const OP_DELETE: i8 = 1;

// ---------------------------------------------------------------------------------------
// create
// ---------------------------------------------------------------------------------------

#[derive(Debug, Serialize)]
struct Created {
    topic: String,
    ok: bool,
    topic_id: Option<String>,
    partition_count: Option<i32>,
    replication_factor: Option<i16>,
    error: Option<ErrorJson>,
}

#[derive(Debug, Serialize)]
struct CreateOutput<'a> {
    dry_run: bool,
    topics: &'a [Created],
}

pub(super) async fn create(bootstrap: &str, args: CreateArgs) -> anyhow::Result<i32> {
    let topics = unique(&args.topics);
    let configs: Vec<CreatableTopicConfig> = args
        .configs
        .iter()
        .map(|(k, v)| CreatableTopicConfig::default().with_name(s(k)).with_value(Some(s(v))))
        .collect();
    let request = CreateTopicsRequest::default()
        .with_topics(
            topics
                .iter()
                .map(|t| {
                    CreatableTopic::default()
                        .with_name(topic_name(t))
                        // -1: the broker's default (num.partitions, default.replication.factor).
                        .with_num_partitions(args.partitions.unwrap_or(-1))
                        .with_replication_factor(args.replication_factor.unwrap_or(-1))
                        .with_configs(configs.clone())
                })
                .collect(),
        )
        .with_timeout_ms(ADMIN_TIMEOUT_MS)
        .with_validate_only(args.dry_run);
    let mut admin = Admin::connect(bootstrap).await?;
    let response = admin.controller().await?.request(CREATE_TOPICS_VERSION, &request).await?;
    let results: Vec<Created> = topics
        .iter()
        .map(|topic| match response.topics.iter().find(|r| r.name.as_str() == topic.as_str()) {
            Some(r) if r.error_code == 0 => Created {
                topic: topic.clone(),
                ok: true,
                topic_id: topic_id_text(r.topic_id),
                partition_count: (r.num_partitions > 0).then_some(r.num_partitions),
                replication_factor: (r.replication_factor > 0).then_some(r.replication_factor),
                error: None,
            },
            Some(r) => failed_creation(topic, r.error_code, r.error_message.as_deref()),
            None => failed_creation(topic, ResponseError::UnknownServerError.code(), Some("the broker did not answer")),
        })
        .collect();
    match args.format {
        Format::Json => print_json(&CreateOutput { dry_run: args.dry_run, topics: &results })?,
        Format::Text => print_table(&status_table(results.iter().map(|r| (&r.topic, &r.error))))?,
    }
    let failed = results.iter().filter(|r| !r.ok).count();
    if failed > 0 {
        eprintln!("error: {failed} of {} topics not created", results.len());
    } else if args.dry_run {
        eprintln!("dry run: the broker accepted the request; nothing was created (run again without --dry-run)");
    }
    Ok(if failed == 0 { 0 } else { EXIT_REFUSED })
}

fn failed_creation(topic: &str, code: i16, message: Option<&str>) -> Created {
    Created {
        topic: topic.to_owned(),
        ok: false,
        topic_id: None,
        partition_count: None,
        replication_factor: None,
        error: ErrorJson::new(code, message),
    }
}

// ---------------------------------------------------------------------------------------
// delete
// ---------------------------------------------------------------------------------------

#[derive(Debug, Serialize)]
struct Deleted {
    topic: String,
    deleted: bool,
    error: Option<ErrorJson>,
}

pub(super) async fn delete(bootstrap: &str, args: DeleteArgs) -> anyhow::Result<i32> {
    let topics = unique(&args.topics);
    let request = DeleteTopicsRequest::default()
        .with_topic_names(topics.iter().map(|t| topic_name(t)).collect())
        .with_timeout_ms(ADMIN_TIMEOUT_MS);
    let mut admin = Admin::connect(bootstrap).await?;
    let response = admin.controller().await?.request(DELETE_TOPICS_VERSION, &request).await?;
    let results: Vec<Deleted> = topics
        .iter()
        .map(|topic| {
            let result = response.responses.iter().find(|r| r.name.as_ref().is_some_and(|n| n.as_str() == topic));
            let (code, message) = match result {
                Some(r) => (r.error_code, r.error_message.as_deref()),
                None => (ResponseError::UnknownServerError.code(), Some("the broker did not answer")),
            };
            Deleted { topic: topic.clone(), deleted: code == 0, error: ErrorJson::new(code, message) }
        })
        .collect();
    match args.format {
        Format::Json => print_json(&Topics { topics: &results })?,
        Format::Text => print_table(&status_table(results.iter().map(|r| (&r.topic, &r.error))))?,
    }
    let failed = results.iter().filter(|r| !r.deleted).count();
    if failed > 0 {
        eprintln!("error: {failed} of {} topics not deleted", results.len());
    }
    Ok(if failed == 0 { 0 } else { EXIT_REFUSED })
}

/// The text output of `create` and `delete`: each topic with `OK` or what went wrong.
fn status_table<'a>(results: impl Iterator<Item = (&'a String, &'a Option<ErrorJson>)>) -> Table {
    let mut table = Table::new(&["TOPIC", "STATUS"]);
    for (topic, error) in results {
        table.row(vec![topic.clone(), error.as_ref().map_or_else(|| "OK".to_owned(), ErrorJson::text)]);
    }
    table
}

// ---------------------------------------------------------------------------------------
// add-partitions
// ---------------------------------------------------------------------------------------

#[derive(Debug, Serialize)]
struct Added<'a> {
    topic: &'a str,
    added: i32,
    partition_count: i32,
}

pub(super) async fn add_partitions(bootstrap: &str, args: AddPartitionsArgs) -> anyhow::Result<i32> {
    let mut admin = Admin::connect(bootstrap).await?;
    let info = admin.topic(&args.topic).await?;
    let current = i32::try_from(info.partitions.len()).context("more than 2^31 partitions")?;
    let total = current
        .checked_add(args.num)
        .with_context(|| format!("{current} + {} partitions is more than a topic can have", args.num))?;
    // CreatePartitions takes the new total; -n is how many to add, as in rpk.
    let topic = CreatePartitionsTopic::default().with_name(topic_name(&args.topic)).with_count(total);
    let request = CreatePartitionsRequest::default().with_topics(vec![topic]).with_timeout_ms(ADMIN_TIMEOUT_MS);
    let response = admin.controller().await?.request(CREATE_PARTITIONS_VERSION, &request).await?;
    let result = response
        .results
        .iter()
        .find(|r| r.name.as_str() == args.topic)
        .with_context(|| format!("CreatePartitions did not answer for topic {}", args.topic))?;
    if result.error_code != 0 {
        let what = format!("cannot grow topic {} from {current} to {total} partitions", args.topic);
        return Err(refused(what, result.error_code, result.error_message.as_deref()));
    }
    match args.format {
        Format::Json => print_json(&Added { topic: &args.topic, added: args.num, partition_count: total })?,
        Format::Text => {
            let mut table = Table::new(&["TOPIC", "ADDED", "PARTITIONS"]);
            table.row(vec![args.topic.clone(), args.num.to_string(), total.to_string()]);
            print_table(&table)?;
        }
    }
    Ok(0)
}

// ---------------------------------------------------------------------------------------
// alter-config
// ---------------------------------------------------------------------------------------

#[derive(Debug, Serialize)]
struct Change {
    key: String,
    operation: &'static str,
    old_value: Option<String>,
    new_value: Option<String>,
    source: Option<String>,
}

#[derive(Debug, Serialize)]
struct AlterOutput<'a> {
    topic: &'a str,
    changes: &'a [Change],
}

pub(super) async fn alter_config(bootstrap: &str, args: AlterConfigArgs) -> anyhow::Result<i32> {
    let mut operations: Vec<(String, i8, Option<String>)> = Vec::new();
    for (key, value) in &args.set {
        operations.push((key.clone(), OP_SET, Some(value.clone())));
    }
    for key in &args.delete {
        operations.push((key.clone(), OP_DELETE, None));
    }
    let mut keys = BTreeSet::new();
    if let Some((key, ..)) = operations.iter().find(|(key, ..)| !keys.insert(key.as_str())) {
        anyhow::bail!("{key} is named more than once in --set/--delete; name each key once");
    }
    let keys: Vec<String> = operations.iter().map(|(key, ..)| key.clone()).collect();
    let mut admin = Admin::connect(bootstrap).await?;
    // Refuses an unknown topic before anything is sent.
    let before = describe_configs(&mut admin, &args.topic, Some(keys.clone())).await?;
    let configs = operations
        .iter()
        .map(|(key, op, value)| {
            AlterableConfig::default().with_name(s(key)).with_config_operation(*op).with_value(value.as_deref().map(s))
        })
        .collect();
    let resource = AlterConfigsResource::default()
        .with_resource_type(TOPIC_RESOURCE)
        .with_resource_name(s(&args.topic))
        .with_configs(configs);
    let request = IncrementalAlterConfigsRequest::default().with_resources(vec![resource]);
    let response = admin.controller().await?.request(INCREMENTAL_ALTER_CONFIGS_VERSION, &request).await?;
    let result = response
        .responses
        .iter()
        .find(|r| r.resource_type == TOPIC_RESOURCE && r.resource_name.as_str() == args.topic)
        .with_context(|| format!("IncrementalAlterConfigs did not answer for topic {}", args.topic))?;
    if result.error_code != 0 {
        let what = format!("cannot alter the configs of topic {}", args.topic);
        return Err(refused(what, result.error_code, result.error_message.as_deref()));
    }
    // What the topic has now (on Apache Kafka in KRaft mode, the broker asked may lag the
    // controller by a moment; its answer is still what clients of that broker see).
    let after = describe_configs(&mut admin, &args.topic, Some(keys)).await?;
    let find = |configs: &[ConfigEntry], key: &str| {
        configs.iter().find(|c| c.key == key).map(|c| (c.value.clone(), c.source.clone()))
    };
    let changes: Vec<Change> = operations
        .iter()
        .map(|(key, op, _)| {
            let (new_value, source) = find(&after, key).map_or((None, None), |(v, s)| (v, Some(s)));
            Change {
                key: key.clone(),
                operation: if *op == OP_SET { "set" } else { "delete" },
                old_value: find(&before, key).and_then(|(v, _)| v),
                new_value,
                source,
            }
        })
        .collect();
    match args.format {
        Format::Json => print_json(&AlterOutput { topic: &args.topic, changes: &changes })?,
        Format::Text => {
            let mut table = Table::new(&["KEY", "OPERATION", "OLD-VALUE", "NEW-VALUE", "SOURCE"]);
            for c in changes {
                table.row(vec![c.key, c.operation.to_owned(), cell(c.old_value), cell(c.new_value), cell(c.source)]);
            }
            print_table(&table)?;
        }
    }
    Ok(0)
}
