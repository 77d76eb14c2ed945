//! `weir offsets <topic>`: a topic's offsets by time, one `topic:partition:offset` line per
//! partition, as `kafka-get-offsets.sh` prints them, against weir or Apache Kafka.
//!
//! This module owns the `--time` and `--partitions` syntax and the output; the Metadata and
//! ListOffsets requests (sent to each partition's leader) belong to [`super::cluster`]. It
//! never changes anything.
//!
//! A partition with no offset for the time asked (no record at or after a timestamp, or an
//! empty partition asked for `max-timestamp`) is left out of the text output, as
//! `kafka-get-offsets.sh` leaves it out (Kafka 3.x and later); JSON lists it with
//! `"offset": null`. A partition the broker refuses (no leader, ...) is reported on stderr
//! and makes the command exit 1, after the other partitions are printed.

use std::collections::BTreeSet;
use std::io::Write;

use kafka_protocol::error::ResponseError;
use serde::Serialize;

use super::cluster::{Cluster, EARLIEST_TIMESTAMP, LATEST_TIMESTAMP};
use super::{describe_error, run_async, write_json, ErrorJson, Format, Refused, EXIT_REFUSED};
use crate::log::TopicPartition;

/// ListOffsets MAX_TIMESTAMP (KIP-734, ListOffsets v7): the offset of the record with the
/// largest timestamp.
pub const MAX_TIMESTAMP: i64 = -3;

/// `weir offsets` arguments.
#[derive(clap::Args, Debug)]
pub struct OffsetsArgs {
    /// The topic.
    pub topic: String,
    /// -1 or `latest` (the log end offset), -2 or `earliest` (the log start offset), -3 or
    /// `max-timestamp` (the record with the largest timestamp), or milliseconds since the
    /// epoch: the first offset whose timestamp is at or after it.
    #[arg(long, value_name = "TIME", default_value = "-1", allow_hyphen_values = true, value_parser = parse_time)]
    pub time: OffsetTime,
    /// Only these partitions, comma-separated (default: all).
    #[arg(short = 'p', long, value_name = "P,P...", value_delimiter = ',')]
    pub partitions: Vec<i32>,
    #[arg(long, value_enum, default_value_t = Format::Text)]
    pub format: Format,
}

/// Which offset of each partition to look up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OffsetTime {
    Latest,
    Earliest,
    MaxTimestamp,
    /// The first offset whose timestamp is at or after this many ms since the epoch.
    At(i64),
}

impl OffsetTime {
    /// The ListOffsets timestamp that asks for this offset.
    pub fn timestamp(self) -> i64 {
        match self {
            OffsetTime::Latest => LATEST_TIMESTAMP,
            OffsetTime::Earliest => EARLIEST_TIMESTAMP,
            OffsetTime::MaxTimestamp => MAX_TIMESTAMP,
            OffsetTime::At(ms) => ms,
        }
    }
}

/// Parses `--time`: the names and numbers `kafka-get-offsets.sh` accepts for the offsets
/// weir serves.
fn parse_time(text: &str) -> Result<OffsetTime, String> {
    match text {
        "-1" | "latest" => Ok(OffsetTime::Latest),
        "-2" | "earliest" => Ok(OffsetTime::Earliest),
        "-3" | "max-timestamp" | "max" => Ok(OffsetTime::MaxTimestamp),
        _ => match text.parse::<i64>() {
            Ok(ms) if ms >= 0 => Ok(OffsetTime::At(ms)),
            _ => Err(format!(
                "`{text}` is not -1/latest, -2/earliest, -3/max-timestamp or a timestamp in ms since the epoch"
            )),
        },
    }
}

/// `weir offsets`: prints the offset for `--time` of each partition of the topic.
///
/// # Errors
/// Connection errors (exit 2); an unknown topic or partition and error codes are
/// [`Refused`] (exit 1).
pub fn run(bootstrap: &str, args: OffsetsArgs) -> anyhow::Result<i32> {
    run_async(offsets(bootstrap, args))
}

#[derive(Serialize)]
struct Offsets {
    topic: String,
    /// The ListOffsets timestamp asked: -1 latest, -2 earliest, -3 max timestamp, or ms.
    time: i64,
    partitions: Vec<PartitionOffset>,
}

#[derive(Serialize)]
struct PartitionOffset {
    partition: i32,
    /// `None` when no record matches the time asked, or on an error.
    offset: Option<i64>,
    error: Option<ErrorJson>,
}

async fn offsets(bootstrap: &str, args: OffsetsArgs) -> anyhow::Result<i32> {
    let topic = args.topic;
    let mut cluster = Cluster::connect(bootstrap).await?;
    let topology = cluster.metadata(Some(std::slice::from_ref(&topic))).await?;
    let what = || format!("Metadata for topic {topic}");
    if let Some(&code) = topology.topic_errors.get(&topic) {
        return Err(Refused::Code { what: what(), code }.into());
    }
    let all: Vec<i32> = topology.partitions_of(&topic).collect();
    if all.is_empty() {
        return Err(Refused::Code { what: what(), code: ResponseError::UnknownTopicOrPartition.code() }.into());
    }
    let partitions = select_partitions(&topic, &all, &args.partitions)?;
    let wanted: Vec<TopicPartition> = partitions.iter().map(|&p| TopicPartition::new(topic.as_str(), p)).collect();
    let results = cluster.list_offsets(&topology, &wanted, args.time.timestamp()).await?;
    let mut refused = false;
    let rows: Vec<PartitionOffset> = wanted
        .iter()
        .map(|tp| {
            let result = results.get(tp).copied().unwrap_or(Err(ResponseError::UnknownServerError.code()));
            let (offset, code) = match result {
                Ok(offset) => (offset, 0),
                Err(code) => {
                    eprintln!("error: offsets of {}:{}: {}", tp.topic, tp.partition, describe_error(code));
                    refused = true;
                    (None, code)
                }
            };
            PartitionOffset { partition: tp.partition, offset, error: ErrorJson::new(code) }
        })
        .collect();
    let mut out = std::io::stdout().lock();
    match args.format {
        Format::Json => {
            let offsets = Offsets { topic, time: args.time.timestamp(), partitions: rows };
            write_json(&mut out, &offsets)?;
        }
        Format::Text => {
            for row in &rows {
                if let Some(offset) = row.offset {
                    writeln!(out, "{topic}:{}:{offset}", row.partition)?;
                }
            }
        }
    }
    Ok(if refused { EXIT_REFUSED } else { 0 })
}

/// The partitions of `requested` (all of `existing` when empty), in order.
///
/// # Errors
/// [`Refused`] naming a requested partition the topic does not have.
fn select_partitions(topic: &str, existing: &[i32], requested: &[i32]) -> Result<Vec<i32>, Refused> {
    if requested.is_empty() {
        return Ok(existing.to_vec());
    }
    let requested: BTreeSet<i32> = requested.iter().copied().collect();
    let missing: Vec<String> = requested.iter().filter(|p| !existing.contains(p)).map(i32::to_string).collect();
    if !missing.is_empty() {
        return Err(Refused::State(format!(
            "topic {topic} has no partition {} (it has {} partitions)",
            missing.join(", "),
            existing.len()
        )));
    }
    Ok(requested.into_iter().collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn time_accepts_kafkas_numbers_and_names() {
        assert_eq!(parse_time("-1"), Ok(OffsetTime::Latest));
        assert_eq!(parse_time("latest"), Ok(OffsetTime::Latest));
        assert_eq!(parse_time("-2"), Ok(OffsetTime::Earliest));
        assert_eq!(parse_time("earliest"), Ok(OffsetTime::Earliest));
        assert_eq!(parse_time("-3"), Ok(OffsetTime::MaxTimestamp));
        assert_eq!(parse_time("max"), Ok(OffsetTime::MaxTimestamp));
        assert_eq!(parse_time("max-timestamp"), Ok(OffsetTime::MaxTimestamp));
        assert_eq!(parse_time("0"), Ok(OffsetTime::At(0)));
        assert_eq!(parse_time("1577836800000"), Ok(OffsetTime::At(1_577_836_800_000)));
        assert_eq!(OffsetTime::At(5).timestamp(), 5);
        assert_eq!(OffsetTime::MaxTimestamp.timestamp(), -3);
    }

    #[test]
    fn time_refuses_other_negatives_and_words() {
        for bad in ["-4", "-100", "yesterday", "", "1.5"] {
            assert!(parse_time(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn partitions_default_to_all_and_unknown_ones_are_refused() {
        assert_eq!(select_partitions("t", &[0, 1, 2], &[]).expect("all"), [0, 1, 2]);
        assert_eq!(select_partitions("t", &[0, 1, 2], &[2, 0, 2]).expect("some"), [0, 2]);
        let err = select_partitions("t", &[0, 1], &[1, 5, 7]).expect_err("5 and 7 do not exist");
        assert_eq!(err.to_string(), "topic t has no partition 5, 7 (it has 2 partitions)");
    }
}
