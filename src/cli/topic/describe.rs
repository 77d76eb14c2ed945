//! `weir topic list | describe`: what topics there are and what one is made of, the way
//! `rpk topic list` and `rpk topic describe` print them. Metadata comes from
//! [`super::metadata`]; this module adds DescribeConfigs (shared with `alter-config`, which
//! prints configs before and after) and each partition's log start offset and high
//! watermark (ListOffsets at its leader), and owns the SUMMARY / CONFIGS / PARTITIONS
//! layout. It never changes anything.

use std::collections::BTreeMap;
use std::io::Write;

use anyhow::Context;
use kafka_protocol::messages::describe_configs_request::DescribeConfigsResource;
use kafka_protocol::messages::DescribeConfigsRequest;
use kafka_protocol::protocol::StrBytes;
use serde::Serialize;

use super::metadata::{Admin, TopicInfo};
use super::{
    describe_topic_error, print_json, print_table, refused, s, DescribeArgs, ListArgs, Topics, TOPIC_RESOURCE,
};
use crate::cli::cluster::{Cluster, EARLIEST_TIMESTAMP, LATEST_TIMESTAMP};
use crate::cli::{cell, write_section, Format, Table};
use crate::log::TopicPartition;

/// DescribeConfigs v4, its flexible form, which both Kafka 3.x/4.x and weir serve.
const DESCRIBE_CONFIGS_VERSION: i16 = 4;

// ---------------------------------------------------------------------------------------
// list
// ---------------------------------------------------------------------------------------

#[derive(Debug, Serialize)]
pub(super) struct Listed {
    topic: String,
    topic_id: Option<String>,
    internal: bool,
    partition_count: usize,
    replication_factor: usize,
}

impl Listed {
    fn new(t: &TopicInfo) -> Listed {
        Listed {
            topic: t.name.clone(),
            topic_id: t.topic_id.clone(),
            internal: t.internal,
            partition_count: t.partitions.len(),
            replication_factor: t.replication_factor(),
        }
    }
}

pub(super) async fn list(bootstrap: &str, args: ListArgs) -> anyhow::Result<i32> {
    let mut admin = Admin::connect(bootstrap).await?;
    let snapshot = admin.metadata(None).await?;
    for (topic, code) in &snapshot.errors {
        eprintln!("warning: topic {topic}: {}", describe_topic_error(*code));
    }
    let topics: Vec<Listed> =
        snapshot.topics.iter().filter(|t| args.internal || !t.internal).map(Listed::new).collect();
    match args.format {
        Format::Json => print_json(&Topics { topics: &topics })?,
        Format::Text => {
            let mut table = Table::new(&["NAME", "PARTITIONS", "REPLICAS"]);
            for t in topics {
                table.row(vec![t.topic, t.partition_count.to_string(), t.replication_factor.to_string()]);
            }
            print_table(&table)?;
        }
    }
    Ok(0)
}

// ---------------------------------------------------------------------------------------
// describe
// ---------------------------------------------------------------------------------------

#[derive(Debug, Serialize)]
pub(super) struct ConfigEntry {
    pub(super) key: String,
    pub(super) value: Option<String>,
    pub(super) source: String,
    read_only: bool,
    sensitive: bool,
}

#[derive(Debug, Serialize)]
struct PartitionRow {
    partition: i32,
    leader: Option<i32>,
    leader_epoch: Option<i32>,
    replicas: Vec<i32>,
    isr: Vec<i32>,
    log_start_offset: Option<i64>,
    high_watermark: Option<i64>,
}

#[derive(Debug, Serialize)]
struct Description {
    #[serde(flatten)]
    summary: Listed,
    configs: Option<Vec<ConfigEntry>>,
    partitions: Option<Vec<PartitionRow>>,
}

pub(super) async fn describe(bootstrap: &str, args: DescribeArgs) -> anyhow::Result<i32> {
    let mut admin = Admin::connect(bootstrap).await?;
    let info = admin.topic(&args.topic).await?;
    // No flag: everything, as rpk does.
    let everything = !args.print_partitions && !args.print_configs;
    let configs = match everything || args.print_configs {
        true => Some(describe_configs(&mut admin, &info.name, None).await?),
        false => None,
    };
    let partitions = match everything || args.print_partitions {
        true => Some(partition_rows(&mut admin.cluster, &info).await?),
        false => None,
    };
    let description = Description { summary: Listed::new(&info), configs, partitions };
    match args.format {
        Format::Json => print_json(&description)?,
        Format::Text => print_description(&mut std::io::stdout().lock(), &description, everything)?,
    }
    Ok(0)
}

/// The topic's configs (only `keys`, when given), by key.
///
/// # Errors
/// Request errors; an error code for the topic is [`Refused`](crate::cli::Refused).
pub(super) async fn describe_configs(
    admin: &mut Admin,
    topic: &str,
    keys: Option<Vec<String>>,
) -> anyhow::Result<Vec<ConfigEntry>> {
    let resource = DescribeConfigsResource::default()
        .with_resource_type(TOPIC_RESOURCE)
        .with_resource_name(s(topic))
        .with_configuration_keys(keys.map(|keys| keys.into_iter().map(StrBytes::from_string).collect()));
    let request = DescribeConfigsRequest::default().with_resources(vec![resource]);
    let response = admin.any_broker().await?.request(DESCRIBE_CONFIGS_VERSION, &request).await?;
    let result = response
        .results
        .into_iter()
        .find(|r| r.resource_type == TOPIC_RESOURCE && r.resource_name.as_str() == topic)
        .with_context(|| format!("DescribeConfigs from {} did not describe topic {topic}", admin.bootstrap))?;
    if result.error_code != 0 {
        let message = result.error_message.as_deref();
        return Err(refused(format!("DescribeConfigs for topic {topic}"), result.error_code, message));
    }
    let mut configs: Vec<ConfigEntry> = result
        .configs
        .into_iter()
        .map(|c| ConfigEntry {
            key: c.name.to_string(),
            value: c.value.map(|v| v.to_string()),
            source: config_source_name(c.config_source),
            read_only: c.read_only,
            sensitive: c.is_sensitive,
        })
        .collect();
    configs.sort_by(|a, b| a.key.cmp(&b.key));
    Ok(configs)
}

/// Leaders, replicas and the log start offset and high watermark of every partition
/// (ListOffsets earliest and latest, read_uncommitted, at each leader). Offsets a leader
/// could not give are `None`, with a warning on stderr.
///
/// # Errors
/// Request errors.
async fn partition_rows(cluster: &mut Cluster, info: &TopicInfo) -> anyhow::Result<Vec<PartitionRow>> {
    let topology = info.topology();
    let partitions: Vec<TopicPartition> = info.partitions.iter().map(|p| info.partition(p.partition)).collect();
    let starts = cluster.list_offsets(&topology, &partitions, EARLIEST_TIMESTAMP).await?;
    let ends = cluster.list_offsets(&topology, &partitions, LATEST_TIMESTAMP).await?;
    let offset =
        |offsets: &BTreeMap<TopicPartition, Result<Option<i64>, i16>>, tp: &TopicPartition, what: &str| match offsets
            .get(tp)
        {
            Some(Ok(offset)) => *offset,
            Some(Err(code)) => {
                eprintln!("warning: {what} of {tp}: {}", describe_topic_error(*code));
                None
            }
            None => None,
        };
    Ok(info
        .partitions
        .iter()
        .zip(&partitions)
        .map(|(p, tp)| PartitionRow {
            partition: p.partition,
            leader: p.leader,
            leader_epoch: p.leader_epoch,
            replicas: p.replicas.clone(),
            isr: p.isr.clone(),
            log_start_offset: offset(&starts, tp, "log start offset"),
            high_watermark: offset(&ends, tp, "high watermark"),
        })
        .collect())
}

/// rpk's layout: with `sections`, a titled SUMMARY, CONFIGS and PARTITIONS; otherwise the
/// one table asked for (both tables, titled, when both were asked for).
fn print_description(out: &mut impl Write, d: &Description, sections: bool) -> std::io::Result<()> {
    let titled = sections || (d.configs.is_some() && d.partitions.is_some());
    let title = |out: &mut dyn Write, title: &str, first: bool| -> std::io::Result<()> {
        if !titled {
            return Ok(());
        }
        if !first {
            writeln!(out)?;
        }
        write_section(out, title)
    };
    if sections {
        title(out, "SUMMARY", true)?;
        let s = &d.summary;
        let fields = [
            ("NAME", s.topic.clone()),
            ("INTERNAL", s.internal.to_string()),
            ("PARTITIONS", s.partition_count.to_string()),
            ("REPLICAS", s.replication_factor.to_string()),
            ("TOPIC-ID", cell(s.topic_id.as_deref())),
        ];
        let width = fields.iter().map(|(k, _)| k.len()).max().unwrap_or(0);
        for (key, value) in fields {
            writeln!(out, "{key:width$}  {value}")?;
        }
    }
    if let Some(configs) = &d.configs {
        title(out, "CONFIGS", !sections)?;
        let mut table = Table::new(&["KEY", "VALUE", "SOURCE"]);
        for c in configs {
            table.row(vec![c.key.clone(), cell(c.value.as_deref()), c.source.clone()]);
        }
        table.write(out)?;
    }
    if let Some(partitions) = &d.partitions {
        title(out, "PARTITIONS", !sections && d.configs.is_none())?;
        let mut table =
            Table::new(&["PARTITION", "LEADER", "EPOCH", "REPLICAS", "ISR", "LOG-START-OFFSET", "HIGH-WATERMARK"]);
        for p in partitions {
            table.row(vec![
                p.partition.to_string(),
                cell(p.leader),
                cell(p.leader_epoch),
                node_list(&p.replicas),
                node_list(&p.isr),
                cell(p.log_start_offset),
                cell(p.high_watermark),
            ]);
        }
        table.write(out)?;
    }
    Ok(())
}

/// Broker ids as `1,2,3`, `-` for none.
fn node_list(nodes: &[i32]) -> String {
    if nodes.is_empty() {
        return "-".to_owned();
    }
    nodes.iter().map(i32::to_string).collect::<Vec<_>>().join(",")
}

/// Kafka's name for a DescribeConfigs config source.
fn config_source_name(source: i8) -> String {
    match source {
        0 => "UNKNOWN",
        1 => "DYNAMIC_TOPIC_CONFIG",
        2 => "DYNAMIC_BROKER_CONFIG",
        3 => "DYNAMIC_DEFAULT_BROKER_CONFIG",
        4 => "STATIC_BROKER_CONFIG",
        5 => "DEFAULT_CONFIG",
        6 => "DYNAMIC_BROKER_LOGGER_CONFIG",
        7 => "CLIENT_METRICS_CONFIG",
        8 => "GROUP_CONFIG",
        other => return format!("UNKNOWN_CONFIG_SOURCE_{other}"),
    }
    .to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_sources_have_kafkas_names() {
        assert_eq!(config_source_name(1), "DYNAMIC_TOPIC_CONFIG");
        assert_eq!(config_source_name(5), "DEFAULT_CONFIG");
        assert_eq!(config_source_name(42), "UNKNOWN_CONFIG_SOURCE_42");
    }

    fn description() -> Description {
        Description {
            summary: Listed {
                topic: "t".into(),
                topic_id: Some("AAECAwQFBgcICQoLDA0ODw".into()),
                internal: false,
                partition_count: 1,
                replication_factor: 1,
            },
            configs: Some(vec![ConfigEntry {
                key: "retention.ms".into(),
                value: Some("1000".into()),
                source: "DYNAMIC_TOPIC_CONFIG".into(),
                read_only: false,
                sensitive: false,
            }]),
            partitions: Some(vec![PartitionRow {
                partition: 0,
                leader: Some(1),
                leader_epoch: Some(0),
                replicas: vec![1, 2],
                isr: vec![1],
                log_start_offset: Some(3),
                high_watermark: None,
            }]),
        }
    }

    fn render(d: &Description, sections: bool) -> String {
        let mut out = Vec::new();
        print_description(&mut out, d, sections).expect("print");
        String::from_utf8(out).expect("utf-8")
    }

    #[test]
    fn describe_prints_titled_sections_by_default_and_one_bare_table_when_asked() {
        let d = description();
        assert_eq!(
            render(&d, true),
            "SUMMARY\n=======\n\
             NAME        t\n\
             INTERNAL    false\n\
             PARTITIONS  1\n\
             REPLICAS    1\n\
             TOPIC-ID    AAECAwQFBgcICQoLDA0ODw\n\
             \n\
             CONFIGS\n=======\n\
             KEY           VALUE  SOURCE\n\
             retention.ms  1000   DYNAMIC_TOPIC_CONFIG\n\
             \n\
             PARTITIONS\n==========\n\
             PARTITION  LEADER  EPOCH  REPLICAS  ISR  LOG-START-OFFSET  HIGH-WATERMARK\n\
             0          1       0      1,2       1    3                 -\n"
        );
        let partitions_only = Description { configs: None, ..description() };
        assert!(
            render(&partitions_only, false).starts_with("PARTITION  LEADER"),
            "{}",
            render(&partitions_only, false)
        );
        let configs_only = Description { partitions: None, ..description() };
        assert!(render(&configs_only, false).starts_with("KEY "));
        // Both flags: both tables, titled.
        assert!(render(&description(), false).starts_with("CONFIGS\n=======\nKEY"));
    }
}
