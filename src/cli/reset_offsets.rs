//! `weir group reset-offsets`: moves an inactive group's committed offsets, as
//! `kafka-consumer-groups.sh --reset-offsets` does. A dry run unless `--execute`.
//!
//! This module owns the reset plan — which partitions, and the new offset of each, computed
//! by [`new_offset`] from plain facts (log start, log end, commit, timestamp lookup) — and the
//! date-time parsing for `--to-datetime`. It commits only when the group is Empty (or does
//! not exist), with generation -1 and no member id, which is how Kafka's tool commits for
//! a group without members; a group with members would overwrite the reset anyway.

use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;

use anyhow::Context;
use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::offset_commit_request::{OffsetCommitRequestPartition, OffsetCommitRequestTopic};
use kafka_protocol::messages::{OffsetCommitRequest, TopicName};
use kafka_protocol::protocol::StrBytes;
use serde::Serialize;

use super::cluster::{Cluster, Topology, EARLIEST_TIMESTAMP, LATEST_TIMESTAMP};
use super::group::{committed_offsets, group_id, state_and_members, OFFSET_COMMIT_VERSION};
use super::{describe_error, run_async, write_json, ErrorJson, Format, Refused, Table, EXIT_REFUSED};
use crate::log::TopicPartition;

/// Where to move the offsets, as given on the command line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ResetTo {
    /// The log start offset.
    Earliest,
    /// The log end offset.
    Latest,
    /// This offset, clamped to [log start, log end].
    Offset(i64),
    /// The first offset with a timestamp at or after this ISO-8601 date-time; the log end
    /// when there is none.
    Datetime(String),
    /// The committed offset plus this (negative: back), clamped to [log start, log end].
    ShiftBy(i64),
}

/// `weir group reset-offsets` options.
#[derive(Debug, Clone)]
pub struct ResetOptions {
    pub group: String,
    pub to: ResetTo,
    /// `TOPIC` or `TOPIC:P,P,...`; empty: the partitions the group has committed.
    pub topics: Vec<String>,
    /// Commit the new offsets; otherwise only print them.
    pub execute: bool,
    pub format: Format,
}

/// [`ResetTo`] validated: a date-time is a timestamp.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Target {
    Earliest,
    Latest,
    Offset(i64),
    Timestamp(i64),
    ShiftBy(i64),
}

/// What the new offset of one partition is computed from.
#[derive(Debug, Clone, Copy)]
struct PartitionFacts {
    log_start_offset: i64,
    log_end_offset: i64,
    committed: Option<i64>,
    /// For [`Target::Timestamp`]: the offset ListOffsets found, `None` when no record is
    /// that recent.
    by_timestamp: Option<i64>,
}

/// The new offset of a partition, or why there is none (a shift without a commit).
fn new_offset(target: Target, f: &PartitionFacts) -> Result<i64, String> {
    let clamp = |offset: i64| offset.clamp(f.log_start_offset, f.log_end_offset.max(f.log_start_offset));
    Ok(match target {
        Target::Earliest => f.log_start_offset,
        Target::Latest => f.log_end_offset,
        Target::Offset(offset) => clamp(offset),
        Target::Timestamp(_) => f.by_timestamp.unwrap_or(f.log_end_offset),
        Target::ShiftBy(delta) => {
            let committed = f.committed.ok_or("no committed offset to shift from")?;
            clamp(committed.saturating_add(delta))
        }
    })
}

/// `weir group reset-offsets`: prints the new offsets, and commits them with `--execute`.
/// Exit code 1 when the group has members or a partition's commit failed.
///
/// # Errors
/// Invalid `--topic` or `--to-datetime` values, connection errors.
pub fn reset_offsets(bootstrap: &str, options: &ResetOptions) -> anyhow::Result<i32> {
    let target = match &options.to {
        ResetTo::Earliest => Target::Earliest,
        ResetTo::Latest => Target::Latest,
        ResetTo::Offset(offset) => Target::Offset(*offset),
        ResetTo::ShiftBy(delta) => Target::ShiftBy(*delta),
        ResetTo::Datetime(text) => Target::Timestamp(parse_datetime(text).with_context(|| {
            format!(
                "invalid --to-datetime {text:?} (expected e.g. 2026-11-21T10:00:00Z or 2026-11-21T10:00:00.000+02:00)"
            )
        })?),
    };
    let specs = options.topics.iter().map(|s| parse_topic_spec(s)).collect::<anyhow::Result<Vec<_>>>()?;
    run_async(reset(bootstrap, options, target, specs))
}

#[derive(Serialize)]
struct Planned {
    topic: String,
    partition: i32,
    new_offset: i64,
    error: Option<ErrorJson>,
}

async fn reset(
    bootstrap: &str,
    options: &ResetOptions,
    target: Target,
    specs: Vec<(String, Option<Vec<i32>>)>,
) -> anyhow::Result<i32> {
    let group = options.group.as_str();
    let mut cluster = Cluster::connect(bootstrap).await?;
    let coordinator = cluster.coordinator(group).await?;
    // KIP-848 groups are described by ConsumerGroupDescribe, classic ones by DescribeGroups.
    let (state, n) = state_and_members(&mut cluster, &coordinator, group).await?;
    if !matches!(state.as_str(), "Empty" | "Dead" | "") {
        return Err(Refused::State(format!(
            "group {group} is {state} with {n} member{}; offsets can only be reset while it is Empty: stop its consumers first",
            if n == 1 { "" } else { "s" }
        ))
        .into());
    }
    let committed = committed_offsets(&mut cluster, &coordinator, group).await?;
    let topics: BTreeSet<String> = if specs.is_empty() {
        committed.keys().map(|tp| tp.topic.clone()).collect()
    } else {
        specs.iter().map(|(t, _)| t.clone()).collect()
    };
    if topics.is_empty() {
        return Err(
            Refused::State(format!("group {group} has no committed offsets: name the topics with --topic")).into()
        );
    }
    let topology = cluster.metadata(Some(&topics.into_iter().collect::<Vec<_>>())).await?;
    let partitions = select_partitions(&topology, &specs, &committed)?;

    let starts = cluster.list_offsets(&topology, &partitions, EARLIEST_TIMESTAMP).await?;
    let ends = cluster.list_offsets(&topology, &partitions, LATEST_TIMESTAMP).await?;
    let by_timestamp = match target {
        Target::Timestamp(t) => Some(cluster.list_offsets(&topology, &partitions, t).await?),
        _ => None,
    };
    let lookup =
        |m: &BTreeMap<TopicPartition, Result<Option<i64>, i16>>, tp: &TopicPartition, what: &str| match m.get(tp) {
            Some(Ok(offset)) => Ok(*offset),
            Some(Err(code)) => Err(Refused::Code { what: format!("ListOffsets ({what}) for {tp}"), code: *code }),
            None => Err(Refused::State(format!("the leader of {tp} did not answer ListOffsets ({what})"))),
        };
    let mut plan = BTreeMap::new();
    for tp in &partitions {
        let missing = |what| Refused::State(format!("the leader of {tp} has no {what}"));
        let facts = PartitionFacts {
            log_start_offset: lookup(&starts, tp, "earliest")?.ok_or_else(|| missing("log start offset"))?,
            log_end_offset: lookup(&ends, tp, "latest")?.ok_or_else(|| missing("log end offset"))?,
            committed: committed.get(tp).copied(),
            by_timestamp: match &by_timestamp {
                Some(m) => lookup(m, tp, "by timestamp")?,
                None => None,
            },
        };
        let offset = new_offset(target, &facts).map_err(|why| Refused::State(format!("{tp}: {why}")))?;
        plan.insert(tp.clone(), offset);
    }

    let errors =
        if options.execute { commit(&mut cluster, &coordinator.addr, group, &plan).await? } else { BTreeMap::new() };
    let planned: Vec<Planned> = plan
        .iter()
        .map(|(tp, &new_offset)| Planned {
            topic: tp.topic.clone(),
            partition: tp.partition,
            new_offset,
            error: errors.get(tp).and_then(|&code| ErrorJson::new(code)),
        })
        .collect();
    let mut out = std::io::stdout().lock();
    match options.format {
        Format::Json => {
            let json = serde_json::json!({ "group": group, "executed": options.execute, "partitions": planned });
            write_json(&mut out, &json)?;
        }
        Format::Text => {
            let mut table = Table::new(&["GROUP", "TOPIC", "PARTITION", "NEW-OFFSET"]);
            for p in &planned {
                table.row(vec![group.to_owned(), p.topic.clone(), p.partition.to_string(), p.new_offset.to_string()]);
            }
            table.write(&mut out)?;
        }
    }
    out.flush()?;
    for (tp, &code) in &errors {
        eprintln!("error: committing {tp}: {}", describe_error(code));
    }
    if !options.execute {
        eprintln!("dry run: nothing was changed; add --execute to commit these offsets");
    }
    Ok(if errors.is_empty() { 0 } else { EXIT_REFUSED })
}

/// The partitions to reset: those named by `specs` (all partitions of a topic named without
/// any), or every committed partition when there are no specs.
fn select_partitions(
    topology: &Topology,
    specs: &[(String, Option<Vec<i32>>)],
    committed: &BTreeMap<TopicPartition, i64>,
) -> Result<BTreeSet<TopicPartition>, Refused> {
    if specs.is_empty() {
        return Ok(committed.keys().cloned().collect());
    }
    let mut partitions = BTreeSet::new();
    for (topic, listed) in specs {
        if let Some(&code) = topology.topic_errors.get(topic) {
            return Err(Refused::Code { what: format!("topic {topic}"), code });
        }
        match listed {
            None => partitions.extend(topology.partitions_of(topic).map(|p| TopicPartition::new(topic.as_str(), p))),
            Some(listed) => {
                for &p in listed {
                    let tp = TopicPartition::new(topic.as_str(), p);
                    if !topology.leaders.contains_key(&tp) {
                        let code = ResponseError::UnknownTopicOrPartition.code();
                        return Err(Refused::Code { what: format!("partition {tp}"), code });
                    }
                    partitions.insert(tp);
                }
            }
        }
    }
    Ok(partitions)
}

/// Commits `plan` as an empty group would (generation -1, no member id). Returns the
/// partitions whose commit failed, with the error code.
async fn commit(
    cluster: &mut Cluster,
    coordinator: &str,
    group: &str,
    plan: &BTreeMap<TopicPartition, i64>,
) -> anyhow::Result<BTreeMap<TopicPartition, i16>> {
    let mut topics: BTreeMap<&str, Vec<OffsetCommitRequestPartition>> = BTreeMap::new();
    for (tp, &offset) in plan {
        topics.entry(&tp.topic).or_default().push(
            OffsetCommitRequestPartition::default()
                .with_partition_index(tp.partition)
                .with_committed_offset(offset)
                .with_committed_leader_epoch(-1)
                .with_committed_metadata(Some(StrBytes::default())),
        );
    }
    let request = OffsetCommitRequest::default()
        .with_group_id(group_id(group))
        .with_generation_id_or_member_epoch(-1)
        .with_member_id(StrBytes::default())
        .with_topics(
            topics
                .into_iter()
                .map(|(topic, partitions)| {
                    OffsetCommitRequestTopic::default()
                        .with_name(TopicName(StrBytes::from_string(topic.to_owned())))
                        .with_partitions(partitions)
                })
                .collect(),
        );
    let response = cluster.client(coordinator).await?.request(OFFSET_COMMIT_VERSION, &request).await?;
    let mut errors = BTreeMap::new();
    let mut answered = BTreeSet::new();
    for topic in &response.topics {
        for p in &topic.partitions {
            let tp = TopicPartition::new(topic.name.as_str(), p.partition_index);
            if p.error_code != 0 {
                errors.insert(tp.clone(), p.error_code);
            }
            answered.insert(tp);
        }
    }
    for tp in plan.keys().filter(|tp| !answered.contains(*tp)) {
        errors.insert(tp.clone(), ResponseError::UnknownServerError.code());
    }
    Ok(errors)
}

/// Parses `TOPIC` or `TOPIC:P,P,...` (Kafka topic names cannot contain `:`).
fn parse_topic_spec(spec: &str) -> anyhow::Result<(String, Option<Vec<i32>>)> {
    let (topic, partitions) = match spec.split_once(':') {
        None => (spec, None),
        Some((topic, list)) => {
            let partitions = list
                .split(',')
                .map(|p| {
                    p.trim().parse::<i32>().ok().filter(|&p| p >= 0).with_context(|| {
                        format!("invalid partition {p:?} in --topic {spec:?} (expected TOPIC or TOPIC:0,1,2)")
                    })
                })
                .collect::<anyhow::Result<Vec<_>>>()?;
            (topic, Some(partitions))
        }
    };
    anyhow::ensure!(!topic.is_empty(), "empty topic name in --topic {spec:?}");
    Ok((topic.to_owned(), partitions))
}

/// Parses an ISO-8601 date-time with seconds and a zone into milliseconds since the epoch:
/// `2026-11-21T10:00:00Z`, `2026-11-21T10:00:00.250+02:00`, `...-0530`, `...+02`. A zone
/// is required: without one the instant would depend on the machine running the tool.
///
/// # Errors
/// Anything else, and instants before 1970 (ListOffsets reads negative timestamps as
/// special requests).
pub fn parse_datetime(text: &str) -> anyhow::Result<i64> {
    let s = text.as_bytes();
    anyhow::ensure!(s.len() >= 19, "too short");
    let num = |range: std::ops::Range<usize>| -> anyhow::Result<i64> {
        let digits = &s[range.clone()];
        anyhow::ensure!(digits.iter().all(u8::is_ascii_digit), "expected digits at {}..{}", range.start, range.end);
        Ok(digits.iter().fold(0, |n, d| n * 10 + i64::from(d - b'0')))
    };
    let sep = |i: usize, expected: &[u8]| -> anyhow::Result<()> {
        anyhow::ensure!(expected.contains(&s[i]), "expected {:?} at {i}", char::from(expected[0]));
        Ok(())
    };
    let (year, month, day) = (num(0..4)?, num(5..7)?, num(8..10)?);
    sep(4, b"-")?;
    sep(7, b"-")?;
    sep(10, b"Tt")?;
    let (hour, minute, second) = (num(11..13)?, num(14..16)?, num(17..19)?);
    sep(13, b":")?;
    sep(16, b":")?;
    anyhow::ensure!((1..=12).contains(&month), "month {month}");
    anyhow::ensure!((1..=days_in_month(year, month)).contains(&day), "day {day} of {year}-{month:02}");
    anyhow::ensure!(hour < 24 && minute < 60 && second < 60, "time {hour:02}:{minute:02}:{second:02}");

    let mut rest = &text[19..];
    let mut millis = 0;
    if let Some(fraction) = rest.strip_prefix('.') {
        let len = fraction.bytes().take_while(u8::is_ascii_digit).count();
        anyhow::ensure!((1..=9).contains(&len), "expected 1 to 9 digits of fraction");
        millis =
            fraction[..len].bytes().chain(std::iter::repeat(b'0')).take(3).fold(0, |n, d| n * 10 + i64::from(d - b'0'));
        rest = &fraction[len..];
    }
    let offset_minutes = parse_zone(rest)?;
    let days = days_from_civil(year, month, day);
    let seconds = ((days * 24 + hour) * 60 + minute) * 60 + second - offset_minutes * 60;
    let ms = seconds * 1000 + millis;
    anyhow::ensure!(ms >= 0, "before 1970-01-01T00:00:00Z");
    Ok(ms)
}

/// `Z`, `+HH:MM`, `+HHMM` or `+HH` (or `-`), as minutes east of UTC.
fn parse_zone(zone: &str) -> anyhow::Result<i64> {
    anyhow::ensure!(!zone.is_empty(), "no zone: add Z for UTC or an offset such as +02:00");
    if zone.eq_ignore_ascii_case("z") {
        return Ok(0);
    }
    let (sign, digits) = match zone.as_bytes().first() {
        Some(b'+') => (1, &zone[1..]),
        Some(b'-') => (-1, &zone[1..]),
        _ => anyhow::bail!("expected a zone (Z, +HH:MM or -HH:MM), found {zone:?}"),
    };
    let digits = digits.replacen(':', "", 1);
    anyhow::ensure!(matches!(digits.len(), 2 | 4) && digits.bytes().all(|b| b.is_ascii_digit()), "zone {zone:?}");
    let hours: i64 = digits[..2].parse()?;
    let minutes: i64 = if digits.len() == 4 { digits[2..].parse()? } else { 0 };
    anyhow::ensure!(hours <= 18 && minutes < 60, "zone {zone:?}");
    Ok(sign * (hours * 60 + minutes))
}

fn days_in_month(year: i64, month: i64) -> i64 {
    let leap = year % 4 == 0 && (year % 100 != 0 || year % 400 == 0);
    match month {
        2 if leap => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days from 1970-01-01 to a proleptic Gregorian date, for years 0..=9999. Counts from
/// 0000-03-01 so that the leap day ends each 4/100/400-year cycle.
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let year_of_era = y.rem_euclid(400);
    let day_of_year = (153 * ((month + 9) % 12) + 2) / 5 + day - 1; // March = month 0
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    era * 146_097 + day_of_era - 719_468 // 719468: days from 0000-03-01 to 1970-01-01
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn utc_datetimes_parse_to_epoch_milliseconds() {
        assert_eq!(parse_datetime("1970-01-01T00:00:00Z").expect("epoch"), 0);
        assert_eq!(parse_datetime("2001-09-09T01:46:40Z").expect("1e9 s"), 1_000_000_000_000);
        assert_eq!(parse_datetime("2026-11-21T10:00:00Z").expect("parse"), 1_795_255_200_000);
        assert_eq!(parse_datetime("2000-02-29T23:59:59.999z").expect("leap day"), 951_868_799_999);
        assert_eq!(parse_datetime("2024-03-01t00:00:00.5Z").expect("fraction"), 1_709_251_200_500);
        assert_eq!(parse_datetime("2024-03-01T00:00:00.123456789Z").expect("nanos"), 1_709_251_200_123);
    }

    #[test]
    fn zone_offsets_move_the_instant() {
        let utc = parse_datetime("2026-11-21T10:00:00Z").expect("utc");
        assert_eq!(parse_datetime("2026-11-21T12:00:00+02:00").expect("+02:00"), utc);
        assert_eq!(parse_datetime("2026-11-21T12:00:00+0200").expect("+0200"), utc);
        assert_eq!(parse_datetime("2026-11-21T12:00:00+02").expect("+02"), utc);
        assert_eq!(parse_datetime("2026-11-21T04:30:00-05:30").expect("-05:30"), utc);
    }

    #[test]
    fn malformed_or_zoneless_datetimes_are_refused() {
        for bad in [
            "2026-11-21T10:00:00",
            "2026-11-21 10:00:00Z",
            "2026-13-01T00:00:00Z",
            "2026-02-29T00:00:00Z",
            "1900-02-29T00:00:00Z",
            "2026-11-21T24:00:00Z",
            "2026-11-21T10:60:00Z",
            "2026-11-21T10:00Z",
            "2026-11-21T10:00:00.Z",
            "2026-11-21T10:00:00+2:00",
            "2026-11-21T10:00:00+02:00:00",
            "1969-12-31T23:59:59Z",
            "20261121T100000Z",
            "yesterday",
            "2026-1a-21T10:00:00Z",
        ] {
            assert!(parse_datetime(bad).is_err(), "{bad} should be refused");
        }
    }

    #[test]
    fn civil_days_match_known_dates() {
        assert_eq!(days_from_civil(1970, 1, 1), 0);
        assert_eq!(days_from_civil(1969, 12, 31), -1);
        assert_eq!(days_from_civil(2000, 3, 1), 11_017);
        assert_eq!(days_from_civil(2100, 3, 1) - days_from_civil(2100, 2, 28), 1);
        // not a leap year
    }

    fn facts(start: i64, end: i64, committed: Option<i64>) -> PartitionFacts {
        PartitionFacts { log_start_offset: start, log_end_offset: end, committed, by_timestamp: None }
    }

    #[test]
    fn new_offsets_are_clamped_to_the_log() {
        let f = facts(10, 100, Some(50));
        assert_eq!(new_offset(Target::Earliest, &f), Ok(10));
        assert_eq!(new_offset(Target::Latest, &f), Ok(100));
        assert_eq!(new_offset(Target::Offset(5), &f), Ok(10));
        assert_eq!(new_offset(Target::Offset(70), &f), Ok(70));
        assert_eq!(new_offset(Target::Offset(700), &f), Ok(100));
        assert_eq!(new_offset(Target::ShiftBy(-45), &f), Ok(10));
        assert_eq!(new_offset(Target::ShiftBy(-5), &f), Ok(45));
        assert_eq!(new_offset(Target::ShiftBy(80), &f), Ok(100));
        assert_eq!(new_offset(Target::ShiftBy(i64::MAX), &f), Ok(100));
        assert!(new_offset(Target::ShiftBy(1), &facts(0, 10, None)).is_err());
    }

    #[test]
    fn a_timestamp_past_every_record_resets_to_the_log_end() {
        let mut f = facts(0, 100, None);
        assert_eq!(new_offset(Target::Timestamp(5), &f), Ok(100));
        f.by_timestamp = Some(42);
        assert_eq!(new_offset(Target::Timestamp(5), &f), Ok(42));
    }

    #[test]
    fn topic_specs_name_a_topic_and_optional_partitions() {
        assert_eq!(parse_topic_spec("orders").expect("topic"), ("orders".to_owned(), None));
        assert_eq!(parse_topic_spec("orders:0,2").expect("partitions"), ("orders".to_owned(), Some(vec![0, 2])));
        assert!(parse_topic_spec("orders:").is_err());
        assert!(parse_topic_spec("orders:x").is_err());
        assert!(parse_topic_spec("orders:-1").is_err());
        assert!(parse_topic_spec(":1").is_err());
    }

    #[test]
    fn named_partitions_must_exist_and_bare_topics_mean_all_partitions() {
        let mut topology = Topology::default();
        for p in 0..3 {
            topology.leaders.insert(TopicPartition::new("t", p), Some(0));
        }
        topology.topic_errors.insert("gone".into(), 3);
        let committed = BTreeMap::from([(TopicPartition::new("old", 0), 5)]);
        let all = select_partitions(&topology, &[("t".into(), None)], &committed).expect("all");
        assert_eq!(all.len(), 3);
        let one = select_partitions(&topology, &[("t".into(), Some(vec![2]))], &committed).expect("one");
        assert_eq!(one.into_iter().collect::<Vec<_>>(), [TopicPartition::new("t", 2)]);
        assert!(select_partitions(&topology, &[("t".into(), Some(vec![3]))], &committed).is_err());
        assert!(select_partitions(&topology, &[("gone".into(), None)], &committed).is_err());
        let committed_only = select_partitions(&topology, &[], &committed).expect("committed");
        assert_eq!(committed_only.into_iter().collect::<Vec<_>>(), [TopicPartition::new("old", 0)]);
    }
}
