//! The views of every topic read through the RESP port, kept current on demand: a read first
//! brings the partition's view up to the high watermark, so a read after an acknowledged
//! write (on any connection) sees it.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, RwLock, RwLockReadGuard};

use bytes::Bytes;

use super::index::Value;
use super::{Error, KvIndex};
use crate::broker::{Broker, Partition};
use crate::log::{Segments, TopicPartition};

/// One partition's view, tied to the partition it was built from (a deleted and re-created
/// topic gets a fresh view).
#[derive(Debug)]
struct Entry {
    partition: Arc<Partition>,
    index: Arc<RwLock<KvIndex>>,
}

/// Records a view may be behind and still be caught up on the async worker; further behind
/// (a rebuild after start), the catch-up runs on a blocking thread.
const INLINE_CATCH_UP: i64 = 10_000;

/// Views by partition.
#[derive(Debug, Default)]
pub struct Views {
    views: Mutex<HashMap<TopicPartition, Entry>>,
    /// Per topic: the views of its partitions as of a topology version (the read path's
    /// shortcut past partition lookups).
    by_topic: RwLock<HashMap<String, (u64, Vec<View>)>>,
}

/// A partition's current view, for reads.
#[derive(Debug, Clone)]
pub struct View {
    pub partition: Arc<Partition>,
    pub index: Arc<RwLock<KvIndex>>,
}

/// A view held for a run of reads ([`View::reading`]): its index read-locked once and its
/// log's segments looked up once, so each read is a key lookup and a borrowed slice of a
/// segment map. No `.await` may happen while it is held.
#[derive(Debug)]
pub struct Reading<'v> {
    index: RwLockReadGuard<'v, KvIndex>,
    segments: Segments,
    pub partition: i32,
}

impl Reading<'_> {
    /// See [`KvIndex::get_in`].
    pub fn get(&self, key: &[u8]) -> Option<(Value<'_>, i64)> {
        self.index.get_in(&self.segments, key)
    }
}

impl View {
    /// The view for a run of reads.
    pub fn reading(&self) -> Reading<'_> {
        Reading {
            index: self.index.read().unwrap_or_else(|p| p.into_inner()),
            segments: self.partition.log.reader.segments_now(),
            partition: self.partition.topic_partition.partition,
        }
    }

    pub fn get(&self, key: &[u8]) -> Option<(Bytes, i64)> {
        self.reading().get(key).map(|(v, ts)| (v.to_bytes(), ts))
    }

    pub fn len(&self) -> usize {
        self.index.read().unwrap_or_else(|p| p.into_inner()).len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn contains(&self, key: &[u8]) -> bool {
        self.index.read().unwrap_or_else(|p| p.into_inner()).contains(key)
    }
}

impl Views {
    fn entry(&self, partition: &Arc<Partition>) -> Arc<RwLock<KvIndex>> {
        let mut views = self.views.lock().unwrap_or_else(|p| p.into_inner());
        let tp = &partition.topic_partition;
        match views.get(tp) {
            Some(e) if Arc::ptr_eq(&e.partition.log, &partition.log) => Arc::clone(&e.index),
            _ => {
                let index = Arc::new(RwLock::new(KvIndex::new()));
                views.insert(tp.clone(), Entry { partition: Arc::clone(partition), index: Arc::clone(&index) });
                index
            }
        }
    }

    /// The view of `partition`, caught up with its high watermark.
    ///
    /// # Errors
    /// The log could not be read ([`Error`]).
    pub async fn current(&self, partition: &Arc<Partition>) -> Result<View, Error> {
        let index = self.entry(partition);
        self.catch_up(partition, &index).await?;
        Ok(View { partition: Arc::clone(partition), index })
    }

    /// Brings `index` up to `partition`'s high watermark.
    async fn catch_up(&self, partition: &Arc<Partition>, index: &Arc<RwLock<KvIndex>>) -> Result<(), Error> {
        let hwm = partition.high_watermark();
        let behind = index.read().unwrap_or_else(|p| p.into_inner()).next_offset().map_or(hwm, |n| hwm - n);
        if behind != 0 {
            let (i, reader) = (Arc::clone(index), partition.log.reader.clone());
            let catch_up = move || i.write().unwrap_or_else(|p| p.into_inner()).catch_up(&reader, hwm).map(|_| ());
            if behind.abs() <= INLINE_CATCH_UP {
                catch_up()?;
            } else {
                tokio::task::spawn_blocking(catch_up).await.unwrap_or(Ok(()))?;
            }
        }
        Ok(())
    }

    /// After a write through the RESP port: brings `partition`'s view, if one exists, up to
    /// the high watermark while the records just written are hot in cache, so the next read
    /// does not pay for a backlog of writes. Does nothing when the view is further behind
    /// than an inline catch-up allows (the next read catches up off the event loop).
    pub fn refresh(&self, partition: &Arc<Partition>) {
        let index = {
            let views = self.views.lock().unwrap_or_else(|p| p.into_inner());
            match views.get(&partition.topic_partition) {
                Some(e) if Arc::ptr_eq(&e.partition.log, &partition.log) => Arc::clone(&e.index),
                _ => return,
            }
        };
        let hwm = partition.high_watermark();
        let mut index = index.write().unwrap_or_else(|p| p.into_inner());
        let Some(next) = index.next_offset() else { return };
        if (1..=INLINE_CATCH_UP).contains(&(hwm - next)) {
            if let Err(e) = index.catch_up(&partition.log.reader, hwm) {
                tracing::debug!(error = %e, "key-value view refresh failed; the next read retries");
            }
        }
    }

    /// Views of every partition of `topic` (none if it does not exist).
    ///
    /// # Errors
    /// See [`Views::current`].
    pub async fn topic(&self, broker: &Broker, topic: &str) -> Result<Vec<View>, Error> {
        let version = broker.topology_version();
        let cached = self
            .by_topic
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .get(topic)
            .filter(|(v, _)| *v == version)
            .map(|(_, views)| views.clone());
        if let Some(views) = cached {
            for v in &views {
                self.catch_up(&v.partition, &v.index).await?;
            }
            return Ok(views);
        }
        let Some(partitions) = broker.partition_count(topic) else { return Ok(Vec::new()) };
        let mut out = Vec::with_capacity(partitions as usize);
        for p in 0..partitions {
            if let Some(partition) = broker.partition_named(topic, p) {
                out.push(self.current(&partition).await?);
            }
        }
        self.by_topic.write().unwrap_or_else(|p| p.into_inner()).insert(topic.to_owned(), (version, out.clone()));
        Ok(out)
    }

    /// The number of keys in a partition's view as it stands, without catching up.
    pub fn peek(&self, tp: &TopicPartition) -> Option<usize> {
        let views = self.views.lock().unwrap_or_else(|p| p.into_inner());
        views.get(tp).map(|e| e.index.read().unwrap_or_else(|p| p.into_inner()).len())
    }

    /// Drops every view (shutdown: the views hold their partitions).
    pub fn clear(&self) {
        self.views.lock().unwrap_or_else(|p| p.into_inner()).clear();
        self.by_topic.write().unwrap_or_else(|p| p.into_inner()).clear();
    }

    /// Forgets views whose topic is gone.
    pub fn prune(&self, broker: &Broker) {
        self.views.lock().unwrap_or_else(|p| p.into_inner()).retain(|tp, _| broker.partition(tp).is_some());
        self.by_topic.write().unwrap_or_else(|p| p.into_inner()).retain(|t, _| broker.partition_count(t).is_some());
    }
}

/// Kafka's default partitioner for keyed records (Java clients'): `murmur2(key) & 0x7fffffff
/// % partitions`, so a key written through the RESP port lands where a Java producer puts it.
pub fn partition_for_key(key: &[u8], partitions: i32) -> i32 {
    (murmur2(key) & 0x7fff_ffff) as i32 % partitions.max(1)
}

/// Kafka's murmur2 (seed 0x9747b28c).
pub fn murmur2(data: &[u8]) -> u32 {
    const M: u32 = 0x5bd1_e995;
    const R: u32 = 24;
    let mut h: u32 = 0x9747_b28c ^ data.len() as u32;
    let chunks = data.chunks_exact(4);
    let tail = chunks.remainder();
    for c in chunks {
        let mut k = u32::from_le_bytes([c[0], c[1], c[2], c[3]]);
        k = k.wrapping_mul(M);
        k ^= k >> R;
        k = k.wrapping_mul(M);
        h = h.wrapping_mul(M);
        h ^= k;
    }
    match tail.len() {
        3 => {
            h ^= u32::from(tail[2]) << 16;
            h ^= u32::from(tail[1]) << 8;
            h ^= u32::from(tail[0]);
            h = h.wrapping_mul(M);
        }
        2 => {
            h ^= u32::from(tail[1]) << 8;
            h ^= u32::from(tail[0]);
            h = h.wrapping_mul(M);
        }
        1 => {
            h ^= u32::from(tail[0]);
            h = h.wrapping_mul(M);
        }
        _ => {}
    }
    h ^= h >> 13;
    h = h.wrapping_mul(M);
    h ^= h >> 15;
    h
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn murmur2_matches_kafkas_reference_values() {
        // Values from Kafka's UtilsTest.testMurmur2 (as signed ints in Java).
        let cases: [(&[u8], i32); 3] =
            [(b"21", -973_932_308), (b"foobar", -790_332_482), (b"a-little-bit-long-string", -985_981_536)];
        for (input, expected) in cases {
            assert_eq!(murmur2(input) as i32, expected, "{}", String::from_utf8_lossy(input));
        }
    }
}
