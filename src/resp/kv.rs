//! Strings and hashes over compacted topics.
//!
//! - **Strings** live in the `kv.topic` topic (default `kv`, compacted, created on first
//!   write): `SET k v` produces the record (k, v), `DEL k` a tombstone (k, null), `GET k`
//!   reads the latest record of `k` through the view ([`crate::kv`]).
//! - **Hashes** are any compacted topic: `HSET topic field value` produces (field, value) to
//!   `topic`, `HGET topic field` reads it — so records Kafka clients produce are fields, and
//!   fields Redis clients write are records Kafka consumers read.
//!
//! Writes go to the partition Kafka's Java producer would choose for the key (murmur2) and
//! are acknowledged once appended, like `acks=all` on a single broker — so an acknowledged
//! SET survives `kill -9`, and power loss once flushed (the topic's `flush.*` settings, as for
//! any produce); reads first bring the
//! view up to the high watermark, so a read after an acknowledged write sees it. A key can
//! also sit in another partition (written by a client with another partitioner): reads take
//! the newest record across partitions, deletes tombstone it everywhere.

use std::collections::BTreeMap;
use std::sync::Arc;

use bytes::{Bytes, BytesMut};

use super::pubsub::glob_match;
use super::{encode_bulk, Protocol, Reply};
use crate::broker::{now_ms, Broker, TopicError};
use crate::kv::views::{partition_for_key, Reading, View};
use crate::log::batch::BatchBuilder;

/// Most keys KEYS, HKEYS, HVALS and HGETALL return; above it they refuse (use SCAN).
const MAX_LISTED: usize = 100_000;

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn wrongtype() -> Reply {
    Reply::error("WRONGTYPE Operation against a key holding the wrong kind of value")
}

fn storage_error(e: impl std::fmt::Display) -> Reply {
    Reply::error(format!("ERR storage error: {e}"))
}

/// A hash's topic: it must be a valid topic name, and compacted if it exists.
fn hash_topic(broker: &Broker, name: &[u8]) -> Result<(String, bool), Reply> {
    let topic = std::str::from_utf8(name).ok().filter(|t| crate::log::validate_topic_name(t).is_ok());
    let Some(topic) = topic else {
        return Err(Reply::error("ERR invalid hash: a hash is a topic name (1-249 of [A-Za-z0-9._-])"));
    };
    match broker.topic_config(topic) {
        Some(c) if !c.cleanup_policy.compact => Err(wrongtype()),
        Some(_) => Ok((topic.to_owned(), true)),
        None => Ok((topic.to_owned(), false)),
    }
}

/// Creates a compacted topic for writes if it does not exist.
async fn ensure_compacted(broker: &Arc<Broker>, topic: &str) -> Result<(), Reply> {
    if broker.partition_count(topic).is_some() {
        return Ok(());
    }
    let (b, t) = (Arc::clone(broker), topic.to_owned());
    let configs = BTreeMap::from([("cleanup.policy".to_owned(), "compact".to_owned())]);
    match tokio::task::spawn_blocking(move || b.create_topic(&t, -1, -1, configs, false)).await {
        Ok(Ok(_)) | Ok(Err(TopicError::AlreadyExists(_))) => Ok(()),
        Ok(Err(e)) => Err(Reply::error(format!("ERR cannot create topic {topic}: {e}"))),
        Err(_) => Err(Reply::error("ERR broker is shutting down")),
    }
}

async fn views(broker: &Arc<Broker>, topic: &str) -> Result<Vec<View>, Reply> {
    broker.kv_views.topic(broker, topic).await.map_err(storage_error)
}

/// The newest value of `key` across the views, with its partition.
fn newest(views: &[View], key: &[u8]) -> Option<(Bytes, i32)> {
    views
        .iter()
        .filter_map(|v| v.get(key).map(|(value, ts)| (value, ts, v.partition.topic_partition.partition)))
        .max_by_key(|(_, ts, _)| *ts)
        .map(|(value, _, p)| (value, p))
}

/// Appends `records` (key, value-or-tombstone) to `topic`, each to its key's partition; one
/// batch per partition.
async fn write(
    broker: &Arc<Broker>,
    topic: &str,
    records: &[(Bytes, Option<Bytes>, Option<i32>)],
) -> Result<(), Reply> {
    ensure_compacted(broker, topic).await?;
    let partitions = broker.partition_count(topic).unwrap_or(1);
    let mut by_partition: BTreeMap<i32, BatchBuilder> = BTreeMap::new();
    let now = now_ms();
    for (key, value, partition) in records {
        let p = partition.unwrap_or_else(|| partition_for_key(key, partitions));
        by_partition.entry(p).or_default().record(now, Some(key), value.as_deref(), &[]);
    }
    for (p, builder) in by_partition {
        let Some(partition) = broker.partition_named(topic, p) else {
            return Err(Reply::error(format!("ERR topic {topic} has no partition {p}")));
        };
        broker.append(&partition, &builder.build()).await.map_err(storage_error)?;
        broker.kv_views.refresh(&partition);
    }
    Ok(())
}

/// Tombstones for `key` in every partition that holds it.
fn tombstones(views: &[View], key: &Bytes) -> Vec<(Bytes, Option<Bytes>, Option<i32>)> {
    views
        .iter()
        .filter(|v| v.contains(key))
        .map(|v| (key.clone(), None, Some(v.partition.topic_partition.partition)))
        .collect()
}

fn scan_args(args: &[Bytes]) -> Result<(Option<Bytes>, usize, Option<String>), Reply> {
    let (mut pattern, mut count, mut kind) = (None, 10usize, None);
    let mut i = 0;
    while i < args.len() {
        let opt = text(&args[i]).to_ascii_lowercase();
        let value = args.get(i + 1).ok_or_else(|| Reply::error("ERR syntax error"))?;
        match opt.as_str() {
            "match" => pattern = Some(value.clone()),
            "count" => {
                count = text(value).parse().ok().filter(|c| *c > 0).ok_or_else(|| Reply::error("ERR syntax error"))?
            }
            "type" => kind = Some(text(value).to_ascii_lowercase()),
            _ => return Err(Reply::error("ERR syntax error")),
        }
        i += 2;
    }
    Ok((pattern, count, kind))
}

/// SCAN over the partitions of a topic: the cursor holds the partition in its top 16 bits
/// and the view's cursor (48 bits) below.
fn scan_views(views: &[View], cursor: u64, count: usize, pattern: Option<&Bytes>) -> (u64, Vec<Bytes>) {
    let mut part = (cursor >> 48) as usize;
    let mut inner = cursor & ((1 << 48) - 1);
    let mut keys = Vec::new();
    while part < views.len() {
        let (next, found) = views[part]
            .index
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .scan(inner, count, |k| pattern.is_none_or(|p| glob_match(p, k)));
        keys.extend(found);
        if next != 0 {
            return (((part as u64) << 48) | next, keys);
        }
        part += 1;
        inner = 0;
        if keys.len() >= count {
            break;
        }
    }
    if part >= views.len() {
        (0, keys)
    } else {
        ((part as u64) << 48, keys)
    }
}

fn parse_cursor(arg: &[u8]) -> Result<u64, Reply> {
    text(arg).parse().map_err(|_| Reply::error("ERR invalid cursor"))
}

/// Runs a string, keyspace or hash command. `None`: not one of these.
pub async fn execute(broker: &Arc<Broker>, name: &str, args: &[Bytes]) -> Option<Reply> {
    let kv = broker.config.kv_topic.clone();
    Some(match name {
        "get" => match views(broker, &kv).await {
            Ok(v) => newest(&v, &args[0]).map_or(Reply::Null, |(value, _)| Reply::Bulk(value)),
            Err(e) => e,
        },
        "mget" => match views(broker, &kv).await {
            Ok(v) => {
                Reply::Array(args.iter().map(|k| newest(&v, k).map_or(Reply::Null, |(x, _)| Reply::Bulk(x))).collect())
            }
            Err(e) => e,
        },
        "strlen" => match views(broker, &kv).await {
            Ok(v) => Reply::Integer(newest(&v, &args[0]).map_or(0, |(x, _)| x.len() as i64)),
            Err(e) => e,
        },
        "exists" => match views(broker, &kv).await {
            Ok(v) => Reply::Integer(args.iter().filter(|k| v.iter().any(|view| view.contains(k))).count() as i64),
            Err(e) => e,
        },
        "ttl" | "pttl" => match views(broker, &kv).await {
            Ok(v) => Reply::Integer(if v.iter().any(|view| view.contains(&args[0])) { -1 } else { -2 }),
            Err(e) => e,
        },
        "type" => match views(broker, &kv).await {
            Ok(v) if v.iter().any(|view| view.contains(&args[0])) => Reply::simple("string"),
            Ok(_) => match hash_topic(broker, &args[0]) {
                Ok((_, true)) => Reply::simple("hash"),
                _ => Reply::simple("none"),
            },
            Err(e) => e,
        },
        "dbsize" => match views(broker, &kv).await {
            Ok(v) => Reply::Integer(v.iter().map(View::len).sum::<usize>() as i64),
            Err(e) => e,
        },
        "keys" => match views(broker, &kv).await {
            Ok(v) => list_keys(&v, Some(&args[0])).unwrap_or_else(|e| e),
            Err(e) => e,
        },
        "scan" => {
            let (cursor, opts) = match (parse_cursor(&args[0]), scan_args(&args[1..])) {
                (Ok(c), Ok(o)) => (c, o),
                (Err(e), _) | (_, Err(e)) => return Some(e),
            };
            let (pattern, count, kind) = opts;
            if kind.as_deref().is_some_and(|k| k != "string") {
                return Some(Reply::Array(vec![Reply::Bulk(Bytes::from_static(b"0")), Reply::Array(Vec::new())]));
            }
            match views(broker, &kv).await {
                Ok(v) => {
                    let (next, keys) = scan_views(&v, cursor, count, pattern.as_ref());
                    Reply::Array(vec![
                        Reply::Bulk(next.to_string().into()),
                        Reply::Array(keys.into_iter().map(Reply::Bulk).collect()),
                    ])
                }
                Err(e) => e,
            }
        }
        "set" => set(broker, &kv, args).await,
        "mset" => {
            if !args.len().is_multiple_of(2) {
                return Some(Reply::error("ERR wrong number of arguments for 'mset' command"));
            }
            let records: Vec<_> = args.chunks(2).map(|kv| (kv[0].clone(), Some(kv[1].clone()), None)).collect();
            match write(broker, &kv, &records).await {
                Ok(()) => Reply::ok(),
                Err(e) => e,
            }
        }
        "del" | "unlink" => delete(broker, &kv, args).await,
        _ => return hash(broker, name, args).await,
    })
}

fn list_keys(views: &[View], pattern: Option<&Bytes>) -> Result<Reply, Reply> {
    let mut keys = Vec::new();
    for v in views {
        let index = v.index.read().unwrap_or_else(|p| p.into_inner());
        for k in index.keys() {
            if pattern.is_none_or(|p| glob_match(p, k)) {
                if keys.len() >= MAX_LISTED {
                    return Err(Reply::error(format!("ERR more than {MAX_LISTED} keys match; use SCAN")));
                }
                keys.push(Reply::Bulk(Bytes::copy_from_slice(k)));
            }
        }
    }
    Ok(Reply::Array(keys))
}

async fn set(broker: &Arc<Broker>, topic: &str, args: &[Bytes]) -> Reply {
    let (key, value) = (&args[0], &args[1]);
    let (mut nx, mut xx, mut get) = (false, false, false);
    for opt in &args[2..] {
        match text(opt).to_ascii_lowercase().as_str() {
            "nx" if !xx => nx = true,
            "xx" if !nx => xx = true,
            "get" => get = true,
            "keepttl" => {}
            "ex" | "px" | "exat" | "pxat" => {
                return Reply::error("ERR keys do not expire in weir (EX, PX, EXAT and PXAT are not supported)")
            }
            _ => return Reply::error("ERR syntax error"),
        }
    }
    // A plain SET into a single-partition topic needs no look at the current value.
    if !(nx || xx || get) && broker.partition_count(topic) == Some(1) {
        return match write(broker, topic, &[(key.clone(), Some(value.clone()), Some(0))]).await {
            Ok(()) => Reply::ok(),
            Err(e) => e,
        };
    }
    // Conditional writes check and write under one lock, so two racing SET NX cannot both win.
    let _guard = broker.kv_write_lock.lock().await;
    let views = match views(broker, topic).await {
        Ok(v) => v,
        Err(e) => return e,
    };
    let old = newest(&views, key);
    if (nx && old.is_some()) || (xx && old.is_none()) {
        return if get { old.map_or(Reply::Null, |(v, _)| Reply::Bulk(v)) } else { Reply::Null };
    }
    // The new value goes where the key already is, so the partitions do not disagree.
    let partition = old.as_ref().map(|(_, p)| *p);
    if let Err(e) = write(broker, topic, &[(key.clone(), Some(value.clone()), partition)]).await {
        return e;
    }
    if get {
        old.map_or(Reply::Null, |(v, _)| Reply::Bulk(v))
    } else {
        Reply::ok()
    }
}

/// A run of pipelined `GET key` commands, answered straight into `out`: the views are caught
/// up and locked once for the run, and each value is copied from the log's maps into the
/// reply — per GET, one key lookup and one batch located, nothing shared written to.
pub async fn get_run(broker: &Arc<Broker>, run: &[Vec<Bytes>], proto: Protocol, out: &mut BytesMut) {
    super::commands::count_command("get", run.len() as u64);
    match views(broker, &broker.config.kv_topic).await {
        Ok(views) => answer_gets(&views, run, proto, out),
        Err(e) => run.iter().for_each(|_| e.encode(proto, out)),
    }
}

fn answer_gets(views: &[View], run: &[Vec<Bytes>], proto: Protocol, out: &mut BytesMut) {
    let readings: Vec<Reading<'_>> = views.iter().map(View::reading).collect();
    for args in run {
        let newest = readings.iter().filter_map(|r| r.get(&args[1])).max_by_key(|(_, ts)| *ts);
        match newest {
            Some((value, _)) => encode_bulk(&value, out),
            None => Reply::Null.encode(proto, out),
        }
    }
}

/// A run of pipelined `SET key value` commands (no options): on a single-partition kv topic
/// they are appended as one batch, and each gets its own reply; otherwise each runs alone.
pub async fn set_run(broker: &Arc<Broker>, run: Vec<Vec<Bytes>>) -> Vec<Reply> {
    let topic = broker.config.kv_topic.clone();
    super::commands::count_command("set", run.len() as u64);
    if broker.partition_count(&topic) != Some(1) {
        let mut replies = Vec::with_capacity(run.len());
        for args in run {
            replies.push(set(broker, &topic, &args[1..]).await);
        }
        return replies;
    }
    let records: Vec<_> = run.iter().map(|a| (a[1].clone(), Some(a[2].clone()), Some(0))).collect();
    let reply = match write(broker, &topic, &records).await {
        Ok(()) => Reply::ok(),
        Err(e) => e,
    };
    vec![reply; run.len()]
}

async fn delete(broker: &Arc<Broker>, topic: &str, keys: &[Bytes]) -> Reply {
    let _guard = broker.kv_write_lock.lock().await;
    let views = match views(broker, topic).await {
        Ok(v) => v,
        Err(e) => return e,
    };
    let mut records = Vec::new();
    let mut deleted = 0;
    let mut seen = std::collections::BTreeSet::new();
    for k in keys {
        let t = tombstones(&views, k);
        if !t.is_empty() && seen.insert(k.clone()) {
            deleted += 1;
            records.extend(t);
        }
    }
    if !records.is_empty() {
        if let Err(e) = write(broker, topic, &records).await {
            return e;
        }
    }
    Reply::Integer(deleted)
}

async fn hash(broker: &Arc<Broker>, name: &str, args: &[Bytes]) -> Option<Reply> {
    if !name.starts_with('h') {
        return None;
    }
    let (topic, exists) = match hash_topic(broker, &args[0]) {
        Ok(t) => t,
        Err(e) => return Some(e),
    };
    let fields = &args[1..];
    let views = if exists {
        match views(broker, &topic).await {
            Ok(v) => v,
            Err(e) => return Some(e),
        }
    } else {
        Vec::new()
    };
    Some(match name {
        "hget" => newest(&views, &fields[0]).map_or(Reply::Null, |(v, _)| Reply::Bulk(v)),
        "hmget" => Reply::Array(
            fields.iter().map(|f| newest(&views, f).map_or(Reply::Null, |(v, _)| Reply::Bulk(v))).collect(),
        ),
        "hexists" => Reply::Integer(i64::from(views.iter().any(|v| v.contains(&fields[0])))),
        "hstrlen" => Reply::Integer(newest(&views, &fields[0]).map_or(0, |(v, _)| v.len() as i64)),
        "hlen" => Reply::Integer(views.iter().map(View::len).sum::<usize>() as i64),
        "hkeys" | "hvals" | "hgetall" => {
            let keys = match list_keys(&views, None) {
                Ok(Reply::Array(k)) => k,
                Ok(other) | Err(other) => return Some(other),
            };
            let mut out = Vec::new();
            for k in keys {
                let Reply::Bulk(k) = k else { continue };
                let value = newest(&views, &k).map_or(Reply::Null, |(v, _)| Reply::Bulk(v));
                match name {
                    "hkeys" => out.push(Reply::Bulk(k)),
                    "hvals" => out.push(value),
                    _ => {
                        out.push(Reply::Bulk(k));
                        out.push(value);
                    }
                }
            }
            if name == "hgetall" {
                let pairs = out.chunks(2).map(|p| (p[0].clone(), p[1].clone())).collect();
                Reply::Map(pairs)
            } else {
                Reply::Array(out)
            }
        }
        "hscan" => {
            let (cursor, (pattern, count, _)) = match (parse_cursor(&fields[0]), scan_args(&fields[1..])) {
                (Ok(c), Ok(o)) => (c, o),
                (Err(e), _) | (_, Err(e)) => return Some(e),
            };
            let (next, keys) = scan_views(&views, cursor, count, pattern.as_ref());
            let mut items = Vec::with_capacity(keys.len() * 2);
            for k in keys {
                let value = newest(&views, &k).map_or(Reply::Null, |(v, _)| Reply::Bulk(v));
                items.push(Reply::Bulk(k));
                items.push(value);
            }
            Reply::Array(vec![Reply::Bulk(next.to_string().into()), Reply::Array(items)])
        }
        "hset" | "hmset" => {
            if fields.is_empty() || !fields.len().is_multiple_of(2) {
                return Some(Reply::error(format!("ERR wrong number of arguments for '{name}' command")));
            }
            let _guard = broker.kv_write_lock.lock().await;
            let new = fields.chunks(2).filter(|f| !views.iter().any(|v| v.contains(&f[0]))).count();
            // A field already in a partition stays there.
            let records: Vec<_> = fields
                .chunks(2)
                .map(|f| (f[0].clone(), Some(f[1].clone()), newest(&views, &f[0]).map(|(_, p)| p)))
                .collect();
            match write(broker, &topic, &records).await {
                Ok(()) if name == "hmset" => Reply::ok(),
                Ok(()) => Reply::Integer(new as i64),
                Err(e) => e,
            }
        }
        "hdel" => {
            if !exists {
                return Some(Reply::Integer(0));
            }
            drop(views);
            delete(broker, &topic, fields).await
        }
        _ => return None,
    })
}
