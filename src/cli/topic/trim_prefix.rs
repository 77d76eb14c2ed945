//! `weir topic trim-prefix`: deletes the records below an offset by moving the log start
//! offset (DeleteRecords, one request per partition leader), as `rpk topic trim-prefix`
//! does.
//!
//! This module owns the plan: from each partition's current log start offset and high
//! watermark (ListOffsets at its leader, which also checks that every leader answers before
//! anything is deleted) to its new log start offset, computed by [`new_log_start`]. It
//! deletes nothing without `--execute`: a dry run prints the plan and exits 1 where the
//! broker would refuse it (an offset above a partition's high watermark).

use std::collections::{BTreeMap, BTreeSet};

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::delete_records_request::{DeleteRecordsPartition, DeleteRecordsTopic};
use kafka_protocol::messages::DeleteRecordsRequest;
use serde::Serialize;

use super::metadata::{Admin, TopicInfo};
use super::{print_json, print_table, refused, topic_name, ErrorJson, TrimPrefixArgs, TrimTo, ADMIN_TIMEOUT_MS};
use crate::cli::cluster::{Cluster, Topology, EARLIEST_TIMESTAMP, LATEST_TIMESTAMP};
use crate::cli::{cell, Format, Refused, Table, EXIT_REFUSED};
use crate::log::TopicPartition;

/// DeleteRecords v2, its flexible form, which both Kafka 3.x/4.x and weir serve.
const DELETE_RECORDS_VERSION: i16 = 2;

#[derive(Debug, Serialize)]
struct Trim {
    partition: i32,
    log_start_offset: i64,
    high_watermark: i64,
    new_log_start_offset: i64,
    low_watermark: Option<i64>,
    error: Option<ErrorJson>,
}

#[derive(Debug, Serialize)]
struct TrimOutput<'a> {
    topic: &'a str,
    executed: bool,
    partitions: &'a [Trim],
}

/// The log start offset after trimming to `to`: DeleteRecords never moves it back, so an
/// offset below the current log start changes nothing. `None` when `to` is above the high
/// watermark, which the broker refuses (OFFSET_OUT_OF_RANGE).
fn new_log_start(to: TrimTo, log_start_offset: i64, high_watermark: i64) -> Option<i64> {
    match to {
        TrimTo::End => Some(high_watermark.max(log_start_offset)),
        TrimTo::Offset(offset) if offset > high_watermark => None,
        TrimTo::Offset(offset) => Some(offset.max(log_start_offset)),
    }
}

pub(super) async fn trim_prefix(bootstrap: &str, args: TrimPrefixArgs) -> anyhow::Result<i32> {
    let mut admin = Admin::connect(bootstrap).await?;
    let info = admin.topic(&args.topic).await?;
    let chosen: BTreeSet<i32> = if args.partitions.is_empty() {
        info.partitions.iter().map(|p| p.partition).collect()
    } else {
        args.partitions.iter().copied().collect()
    };
    if let Some(p) = chosen.iter().find(|&&p| !info.partitions.iter().any(|q| q.partition == p)) {
        let n = info.partitions.len();
        let text = format!("topic {} has no partition {p} (it has {n}: 0 to {})", info.name, n.saturating_sub(1));
        return Err(Refused::State(text).into());
    }
    // The current offsets: the plan, and a check that every leader answers before anything
    // is deleted.
    let topology = info.topology();
    let partitions: Vec<TopicPartition> = chosen.iter().map(|&p| info.partition(p)).collect();
    let starts = admin.cluster.list_offsets(&topology, &partitions, EARLIEST_TIMESTAMP).await?;
    let ends = admin.cluster.list_offsets(&topology, &partitions, LATEST_TIMESTAMP).await?;
    let mut plan = Vec::new();
    let mut above = Vec::new();
    for tp in &partitions {
        let offset = |offsets: &BTreeMap<TopicPartition, Result<Option<i64>, i16>>, what: &str| match offsets.get(tp) {
            Some(Ok(Some(offset))) => Ok(*offset),
            Some(Err(code)) => Err(refused(format!("cannot read the {what} of {tp}"), *code, None)),
            _ => Err(anyhow::anyhow!("the leader of {tp} did not return its {what}")),
        };
        let (log_start_offset, high_watermark) =
            (offset(&starts, "log start offset")?, offset(&ends, "high watermark")?);
        let new_log_start_offset = new_log_start(args.offset, log_start_offset, high_watermark).unwrap_or_else(|| {
            above.push((tp.clone(), high_watermark));
            match args.offset {
                TrimTo::Offset(offset) => offset,
                TrimTo::End => high_watermark,
            }
        });
        plan.push(Trim {
            partition: tp.partition,
            log_start_offset,
            high_watermark,
            new_log_start_offset,
            low_watermark: None,
            error: None,
        });
    }
    if args.execute {
        delete_records(&mut admin.cluster, &info, &topology, args.offset, &mut plan).await?;
    }
    match args.format {
        Format::Json => print_json(&TrimOutput { topic: &info.name, executed: args.execute, partitions: &plan })?,
        Format::Text => {
            let mut headers = vec!["TOPIC", "PARTITION", "LOG-START-OFFSET", "NEW-LOG-START-OFFSET"];
            if args.execute {
                headers.push("LOW-WATERMARK");
            }
            let mut table = Table::new(&headers);
            for t in &plan {
                let mut row = vec![
                    info.name.clone(),
                    t.partition.to_string(),
                    t.log_start_offset.to_string(),
                    t.new_log_start_offset.to_string(),
                ];
                if args.execute {
                    let error = t.error.as_ref().map(|e| e.name.clone());
                    row.push(error.unwrap_or_else(|| cell(t.low_watermark)));
                }
                table.row(row);
            }
            print_table(&table)?;
        }
    }
    if args.execute {
        let failed: Vec<&Trim> = plan.iter().filter(|t| t.error.is_some()).collect();
        for t in &failed {
            let error = t.error.as_ref().map(ErrorJson::text).unwrap_or_default();
            let tp = info.partition(t.partition);
            let (offset, high_watermark) = (t.new_log_start_offset, t.high_watermark);
            eprintln!(
                "error: deleting the records of {tp} below offset {offset} (high watermark {high_watermark}): {error}"
            );
        }
        return Ok(if failed.is_empty() { 0 } else { EXIT_REFUSED });
    }
    if !above.is_empty() {
        for (tp, high_watermark) in &above {
            eprintln!(
                "error: the offset is above the high watermark of {tp} ({high_watermark}): --execute would be \
                 refused with OFFSET_OUT_OF_RANGE; choose an offset of at most {high_watermark}"
            );
        }
        return Ok(EXIT_REFUSED);
    }
    eprintln!("dry run: nothing was deleted; add --execute to delete the records below NEW-LOG-START-OFFSET");
    Ok(0)
}

/// DeleteRecords for every partition of `plan`, one request per leader; fills in each
/// partition's low watermark or error.
///
/// # Errors
/// Request errors (partitions answered before the failure may already be trimmed).
async fn delete_records(
    cluster: &mut Cluster,
    info: &TopicInfo,
    topology: &Topology,
    to: TrimTo,
    plan: &mut [Trim],
) -> anyhow::Result<()> {
    // Kafka's -1: the high watermark when the leader handles the request.
    let offset = match to {
        TrimTo::Offset(offset) => offset,
        TrimTo::End => -1,
    };
    let mut by_leader: BTreeMap<i32, Vec<i32>> = BTreeMap::new();
    for t in plan.iter_mut() {
        let leader = topology.leaders.get(&info.partition(t.partition)).copied().flatten();
        match leader.filter(|&l| cluster.addr_of(l).is_some()) {
            Some(leader) => by_leader.entry(leader).or_default().push(t.partition),
            None => t.error = ErrorJson::new(ResponseError::LeaderNotAvailable.code(), None),
        }
    }
    for (leader, partitions) in by_leader {
        let topic = DeleteRecordsTopic::default().with_name(topic_name(&info.name)).with_partitions(
            partitions
                .iter()
                .map(|&p| DeleteRecordsPartition::default().with_partition_index(p).with_offset(offset))
                .collect(),
        );
        let request = DeleteRecordsRequest::default().with_topics(vec![topic]).with_timeout_ms(ADMIN_TIMEOUT_MS);
        let addr = cluster.addr_of(leader).expect("leaders without an address were set aside above");
        let response = cluster.client(&addr).await?.request(DELETE_RECORDS_VERSION, &request).await?;
        let answers = response.topics.iter().filter(|t| t.name.as_str() == info.name).flat_map(|t| &t.partitions);
        let answers: BTreeMap<i32, _> = answers.map(|p| (p.partition_index, p)).collect();
        for t in plan.iter_mut().filter(|t| partitions.contains(&t.partition)) {
            match answers.get(&t.partition) {
                Some(p) if p.error_code == 0 => t.low_watermark = (p.low_watermark >= 0).then_some(p.low_watermark),
                Some(p) => t.error = ErrorJson::new(p.error_code, None),
                None => t.error = ErrorJson::new(ResponseError::UnknownServerError.code(), Some("no answer")),
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trimming_never_moves_the_log_start_back_and_stops_at_the_high_watermark() {
        assert_eq!(new_log_start(TrimTo::Offset(4), 0, 10), Some(4));
        assert_eq!(new_log_start(TrimTo::Offset(10), 0, 10), Some(10));
        assert_eq!(new_log_start(TrimTo::Offset(2), 5, 10), Some(5));
        assert_eq!(new_log_start(TrimTo::Offset(11), 0, 10), None);
        assert_eq!(new_log_start(TrimTo::End, 3, 10), Some(10));
    }
}
