//! Admin APIs through librdkafka's AdminClient: configs (with sources and synonyms),
//! partitions, DeleteRecords.

use std::time::Duration;

use rdkafka::admin::{
    AdminClient, AdminOptions, AlterConfig, ConfigSource, NewPartitions, NewTopic, OwnedResourceSpecifier,
    ResourceSpecifier, TopicReplication,
};
use rdkafka::client::DefaultClientContext;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::{ClientConfig, Offset, TopicPartitionList};

use crate::util::TestBroker;

const DEADLINE: Duration = Duration::from_secs(30);

fn admin(broker: &TestBroker) -> AdminClient<DefaultClientContext> {
    ClientConfig::new().set("bootstrap.servers", broker.bootstrap()).create().expect("admin")
}

fn opts() -> AdminOptions {
    AdminOptions::new().operation_timeout(Some(DEADLINE)).request_timeout(Some(DEADLINE))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn configs_are_described_with_sources_and_altered() {
    let broker = TestBroker::start(&["log.segment.bytes=2097152"]);
    let a = admin(&broker);
    let t = NewTopic::new("cfg", 1, TopicReplication::Fixed(1))
        .set("retention.ms", "123456")
        .set("min.insync.replicas", "1");
    a.create_topics([&t], &opts()).await.expect("create")[0].as_ref().expect("created");

    let described = a.describe_configs([&ResourceSpecifier::Topic("cfg")], &opts()).await.expect("describe");
    let resource = described[0].as_ref().expect("topic described");
    assert_eq!(resource.specifier, OwnedResourceSpecifier::Topic("cfg".into()));
    let retention = resource.get("retention.ms").expect("retention.ms");
    assert_eq!((retention.value.as_deref(), &retention.source), (Some("123456"), &ConfigSource::DynamicTopic));
    let segment = resource.get("segment.bytes").expect("segment.bytes");
    assert_eq!((segment.value.as_deref(), &segment.source), (Some("2097152"), &ConfigSource::StaticBroker));
    let index = resource.get("index.interval.bytes").expect("index.interval.bytes");
    assert_eq!((index.value.as_deref(), &index.source), (Some("4096"), &ConfigSource::Default));
    assert_eq!(resource.get("min.insync.replicas").and_then(|c| c.value.as_deref()), Some("1"));

    // AlterConfigs replaces the whole override set.
    let alter = AlterConfig::new(ResourceSpecifier::Topic("cfg")).set("cleanup.policy", "compact,delete");
    a.alter_configs([&alter], &opts()).await.expect("alter")[0].as_ref().expect("altered");
    let described = a.describe_configs([&ResourceSpecifier::Topic("cfg")], &opts()).await.expect("describe");
    let resource = described[0].as_ref().expect("described");
    assert_eq!(resource.get("cleanup.policy").and_then(|c| c.value.as_deref()), Some("compact,delete"));
    assert_eq!(resource.get("retention.ms").map(|c| &c.source), Some(&ConfigSource::Default), "override replaced");

    // An invalid value is refused with INVALID_CONFIG and changes nothing. (rust-rdkafka 0.39
    // reports every AlterConfigs resource as Ok, dropping librdkafka's per-resource error, so
    // the error code itself is asserted by tests/clients/python_clients.py.)
    let bad = AlterConfig::new(ResourceSpecifier::Topic("cfg")).set("retention.ms", "soon");
    a.alter_configs([&bad], &opts()).await.expect("alter request answered");
    let described = a.describe_configs([&ResourceSpecifier::Topic("cfg")], &opts()).await.expect("describe");
    let resource = described[0].as_ref().expect("described");
    assert_eq!(resource.get("cleanup.policy").and_then(|c| c.value.as_deref()), Some("compact,delete"), "unchanged");
    // rust-rdkafka 0.39 drops per-resource errors here too; the code is checked in Python.
    let unknown = a.describe_configs([&ResourceSpecifier::Topic("no-such-topic")], &opts()).await.expect("describe");
    assert!(unknown[0].as_ref().map_or(true, |r| r.entries.is_empty()), "nothing described for an unknown topic");
    let b = a.describe_configs([&ResourceSpecifier::Broker(0)], &opts()).await.expect("describe broker");
    let b = b[0].as_ref().expect("broker described");
    assert_eq!(
        b.get("log.segment.bytes").map(|c| (c.value.as_deref(), &c.source)),
        Some((Some("2097152"), &ConfigSource::StaticBroker))
    );

    // The configuration survives a restart.
    drop(a);
    let mut broker = broker;
    broker.stop();
    broker.restart();
    let a = admin(&broker);
    let described = a.describe_configs([&ResourceSpecifier::Topic("cfg")], &opts()).await.expect("describe");
    let resource = described[0].as_ref().expect("described");
    assert_eq!(resource.get("cleanup.policy").and_then(|c| c.value.as_deref()), Some("compact,delete"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn partitions_are_added_and_records_deleted() {
    let broker = TestBroker::start(&[]);
    let a = admin(&broker);
    a.create_topics([&NewTopic::new("grow", 2, TopicReplication::Fixed(1))], &opts()).await.expect("create")[0]
        .as_ref()
        .expect("created");
    a.create_partitions([&NewPartitions::new("grow", 5)], &opts()).await.expect("grow")[0].as_ref().expect("grown");
    let shrink = a.create_partitions([&NewPartitions::new("grow", 3)], &opts()).await.expect("shrink");
    assert!(matches!(&shrink[0], Err((_, rdkafka::types::RDKafkaErrorCode::InvalidPartitions))), "{shrink:?}");
    let c: BaseConsumer = ClientConfig::new().set("bootstrap.servers", broker.bootstrap()).create().expect("consumer");
    assert_eq!(c.fetch_metadata(Some("grow"), DEADLINE).expect("metadata").topics()[0].partitions().len(), 5);

    let p: FutureProducer =
        ClientConfig::new().set("bootstrap.servers", broker.bootstrap()).create().expect("producer");
    for i in 0..10 {
        p.send(FutureRecord::to("grow").partition(4).key("k").payload(&format!("{i}")), DEADLINE)
            .await
            .map_err(|(e, _)| e)
            .expect("delivered to a new partition");
    }
    let mut tpl = TopicPartitionList::new();
    tpl.add_partition_offset("grow", 4, Offset::Offset(6)).expect("tpl");
    let result = a.delete_records(&tpl, &opts()).await.expect("delete records");
    assert_eq!(result.find_partition("grow", 4).expect("partition").offset(), Offset::Offset(6));
    assert_eq!(c.fetch_watermarks("grow", 4, DEADLINE).expect("watermarks"), (6, 10));
    let mut too_far = TopicPartitionList::new();
    too_far.add_partition_offset("grow", 4, Offset::Offset(99)).expect("tpl");
    let r = a.delete_records(&too_far, &opts()).await;
    let failed = match r {
        Err(_) => true,
        Ok(list) => list.find_partition("grow", 4).is_some_and(|p| p.error().is_err()),
    };
    assert!(failed, "deleting past the high watermark is OFFSET_OUT_OF_RANGE");
}
