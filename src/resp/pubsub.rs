//! Pub/sub over topics: `PUBLISH ch msg` appends a record to topic `ch`; a subscribed
//! connection tails the topics of its channels (and of topics matching its patterns,
//! including ones created later) from where they ended when it subscribed, and receives every
//! record appended after — by a Redis client or a Kafka producer.
//!
//! [`Registry`] counts subscribers per channel and pattern for `PUBLISH`'s answer and
//! `PUBSUB`; [`Subscriptions`] is one connection's state and its read cursors.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Mutex;

use bytes::Bytes;

use crate::broker::Broker;
use crate::log::batch::{self, HeaderIter};
use crate::log::TopicPartition;

/// Broker-wide subscriber counts (for `PUBLISH` and `PUBSUB`).
#[derive(Debug, Default)]
pub struct Registry {
    channels: Mutex<BTreeMap<Bytes, usize>>,
    patterns: Mutex<BTreeMap<Bytes, usize>>,
}

fn bump(map: &Mutex<BTreeMap<Bytes, usize>>, key: &Bytes, up: bool) {
    let mut m = map.lock().unwrap_or_else(|p| p.into_inner());
    if up {
        *m.entry(key.clone()).or_default() += 1;
    } else if let Some(n) = m.get_mut(key) {
        *n -= 1;
        if *n == 0 {
            m.remove(key);
        }
    }
}

impl Registry {
    /// Connections that would receive a message on `channel`: its subscribers plus every
    /// pattern subscription that matches.
    pub fn receivers(&self, channel: &[u8]) -> usize {
        let direct = self.channels.lock().unwrap_or_else(|p| p.into_inner()).get(channel).copied().unwrap_or(0);
        let patterns: usize = self
            .patterns
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
            .filter(|(p, _)| glob_match(p, channel))
            .map(|(_, n)| n)
            .sum();
        direct + patterns
    }

    /// Channels with at least one subscriber, matching `pattern` if given.
    pub fn channels(&self, pattern: Option<&[u8]>) -> Vec<Bytes> {
        let m = self.channels.lock().unwrap_or_else(|p| p.into_inner());
        m.keys().filter(|c| pattern.is_none_or(|p| glob_match(p, c))).cloned().collect()
    }

    pub fn numsub(&self, channel: &[u8]) -> usize {
        self.channels.lock().unwrap_or_else(|p| p.into_inner()).get(channel).copied().unwrap_or(0)
    }

    pub fn numpat(&self) -> usize {
        self.patterns.lock().unwrap_or_else(|p| p.into_inner()).len()
    }
}

/// Redis's glob matching (`*`, `?`, `[abc]`, `[^a-z]`, `\x`), on bytes.
pub fn glob_match(pattern: &[u8], text: &[u8]) -> bool {
    let (mut p, mut t) = (0usize, 0usize);
    let (mut star_p, mut star_t) = (None::<usize>, 0usize);
    while t < text.len() {
        if p < pattern.len() {
            match pattern[p] {
                b'*' => {
                    star_p = Some(p);
                    star_t = t;
                    p += 1;
                    continue;
                }
                b'?' => {
                    p += 1;
                    t += 1;
                    continue;
                }
                b'[' => {
                    if let Some((matched, next)) = class_match(pattern, p, text[t]) {
                        if matched {
                            p = next;
                            t += 1;
                            continue;
                        }
                    } else if text[t] == b'[' {
                        p += 1;
                        t += 1;
                        continue;
                    }
                }
                b'\\' if p + 1 < pattern.len() && pattern[p + 1] == text[t] => {
                    p += 2;
                    t += 1;
                    continue;
                }
                b'\\' if p + 1 < pattern.len() => {}
                c if c == text[t] => {
                    p += 1;
                    t += 1;
                    continue;
                }
                _ => {}
            }
        }
        match star_p {
            Some(sp) => {
                p = sp + 1;
                star_t += 1;
                t = star_t;
            }
            None => return false,
        }
    }
    pattern[p..].iter().all(|&c| c == b'*')
}

/// `[...]` at `pattern[start]` against `c`: (matched, index after the class), or `None` if
/// the class is not closed.
fn class_match(pattern: &[u8], start: usize, c: u8) -> Option<(bool, usize)> {
    let mut i = start + 1;
    let negate = pattern.get(i) == Some(&b'^');
    if negate {
        i += 1;
    }
    let mut matched = false;
    let mut first = true;
    while i < pattern.len() && (pattern[i] != b']' || first) {
        first = false;
        if pattern[i] == b'\\' && i + 1 < pattern.len() {
            matched |= pattern[i + 1] == c;
            i += 2;
        } else if i + 2 < pattern.len() && pattern[i + 1] == b'-' && pattern[i + 2] != b']' {
            let (lo, hi) = (pattern[i].min(pattern[i + 2]), pattern[i].max(pattern[i + 2]));
            matched |= (lo..=hi).contains(&c);
            i += 3;
        } else {
            matched |= pattern[i] == c;
            i += 1;
        }
    }
    (i < pattern.len()).then_some((matched != negate, i + 1))
}

/// A message to deliver: the pattern it matched (for `pmessage`), the channel, the payload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    pub pattern: Option<Bytes>,
    pub channel: Bytes,
    pub payload: Bytes,
}

/// One connection's subscriptions and where it is in each subscribed topic.
#[derive(Debug, Default)]
pub struct Subscriptions {
    pub channels: BTreeSet<Bytes>,
    pub patterns: BTreeSet<Bytes>,
    /// Next offset to deliver, per partition of each followed topic.
    cursors: BTreeMap<TopicPartition, i64>,
}

impl Subscriptions {
    pub fn count(&self) -> usize {
        self.channels.len() + self.patterns.len()
    }

    pub fn subscribe(&mut self, registry: &Registry, broker: &Broker, channel: Bytes) {
        if self.channels.insert(channel.clone()) {
            bump(&registry.channels, &channel, true);
            self.follow_from_end(broker, &String::from_utf8_lossy(&channel));
        }
    }

    pub fn psubscribe(&mut self, registry: &Registry, broker: &Broker, pattern: Bytes) {
        if self.patterns.insert(pattern.clone()) {
            bump(&registry.patterns, &pattern, true);
            for t in broker.topics() {
                if glob_match(&pattern, t.name.as_bytes()) {
                    self.follow_from_end(broker, &t.name);
                }
            }
        }
    }

    pub fn unsubscribe(&mut self, registry: &Registry, channel: &Bytes) -> bool {
        let removed = self.channels.remove(channel);
        if removed {
            bump(&registry.channels, channel, false);
        }
        removed
    }

    pub fn punsubscribe(&mut self, registry: &Registry, pattern: &Bytes) -> bool {
        let removed = self.patterns.remove(pattern);
        if removed {
            bump(&registry.patterns, pattern, false);
        }
        removed
    }

    /// Drops every subscription (connection closed, RESET).
    pub fn clear(&mut self, registry: &Registry) {
        for c in std::mem::take(&mut self.channels) {
            bump(&registry.channels, &c, false);
        }
        for p in std::mem::take(&mut self.patterns) {
            bump(&registry.patterns, &p, false);
        }
        self.cursors.clear();
    }

    fn follow_from_end(&mut self, broker: &Broker, topic: &str) {
        let Some(t) = broker.topic(topic) else { return };
        for p in 0..t.partitions {
            let tp = TopicPartition::new(topic, p);
            if let Some(partition) = broker.partition(&tp) {
                self.cursors.entry(tp).or_insert_with(|| partition.high_watermark());
            }
        }
    }

    /// New records on every followed topic since the last call, as messages (at most
    /// `max` records per call). Topics that appeared since (a channel published to for the
    /// first time, a new topic matching a pattern) are followed from their start.
    pub fn poll(&mut self, broker: &Broker, max: usize) -> Vec<Message> {
        for t in broker.topics() {
            let wanted = self.channels.contains(t.name.as_bytes())
                || self.patterns.iter().any(|p| glob_match(p, t.name.as_bytes()));
            if !wanted {
                continue;
            }
            for p in 0..t.partitions {
                let tp = TopicPartition::new(&t.name, p);
                if let std::collections::btree_map::Entry::Vacant(e) = self.cursors.entry(tp) {
                    let start = broker.partition(e.key()).map_or(0, |p| p.log_start_offset());
                    e.insert(start);
                }
            }
        }
        let mut out = Vec::new();
        for (tp, cursor) in self.cursors.iter_mut() {
            let Some(partition) = broker.partition(tp) else { continue };
            let channel = Bytes::from(tp.topic.clone().into_bytes());
            while out.len() < max && *cursor < partition.high_watermark() {
                let Ok(read) = broker.read(&partition, (*cursor).max(partition.log_start_offset()), 1 << 20, true)
                else {
                    *cursor = partition.log_start_offset();
                    break;
                };
                if read.records.is_empty() {
                    break;
                }
                for b in HeaderIter::new(&read.records, 0) {
                    let raw = read.records.slice(b.position as usize..b.position as usize + b.header.size());
                    let Ok(codec) = b.header.compression() else { continue };
                    let section = match crate::log::codec::decompress(codec, &raw[batch::HEADER_SIZE..]) {
                        Ok(s) if codec != batch::Compression::None => s,
                        Ok(_) => raw.slice(batch::HEADER_SIZE..),
                        Err(_) => continue,
                    };
                    for r in batch::records_in(&section, &b.header) {
                        if r.offset < *cursor {
                            continue;
                        }
                        let Some(value) = r.value else { continue };
                        let payload = section.slice_ref(value);
                        if self.channels.contains(&channel) {
                            out.push(Message { pattern: None, channel: channel.clone(), payload: payload.clone() });
                        }
                        for p in self.patterns.iter().filter(|p| glob_match(p, &channel)) {
                            out.push(Message {
                                pattern: Some(p.clone()),
                                channel: channel.clone(),
                                payload: payload.clone(),
                            });
                        }
                    }
                }
                *cursor = read.next_offset;
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::glob_match;

    #[test]
    fn globs_match_like_redis() {
        let yes = [
            ("news.*", "news.art"),
            ("h?llo", "hello"),
            ("h[ae]llo", "hallo"),
            ("h[^e]llo", "hallo"),
            ("h[a-b]llo", "hbllo"),
            ("*", ""),
            ("a\\*b", "a*b"),
            ("*.eu", "orders.eu"),
            ("[abc", "[abc"),
        ];
        for (p, t) in yes {
            assert!(glob_match(p.as_bytes(), t.as_bytes()), "{p} ~ {t}");
        }
        let no = [("news.*", "sport.x"), ("h?llo", "hllo"), ("h[^e]llo", "hello"), ("h[a-b]llo", "hcllo"), ("a", "ab")];
        for (p, t) in no {
            assert!(!glob_match(p.as_bytes(), t.as_bytes()), "{p} !~ {t}");
        }
    }
}
