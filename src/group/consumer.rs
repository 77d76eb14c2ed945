//! The KIP-848 consumer group protocol (ConsumerGroupHeartbeat): the coordinator assigns.
//!
//! Three epochs drive it, as in Kafka:
//! - the **group epoch** moves whenever membership, subscriptions or the subscribed topics'
//!   partitions change;
//! - the **target assignment** is recomputed by the server-side assignor (`uniform` or
//!   `range`) when it lags the group epoch, and stamped with it (the assignment epoch);
//! - each **member epoch** catches up with the assignment epoch by reconciliation: a member
//!   first gives back partitions it must lose (revoke, keeping its epoch), and only then
//!   receives new ones — and only those no other member still holds (revoke-then-assign, so a
//!   partition is never owned twice).
//!
//! Synchronous, under the coordinator's lock; sessions and revocation deadlines are checked
//! by [`ConsumerGroup::tick`].

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use uuid::Uuid;

use crate::handler::code;

/// Partitions by topic id.
pub type Assignment = BTreeMap<Uuid, BTreeSet<i32>>;

/// The member epoch of a static member that left temporarily (KIP-848's -2).
const LEAVE_STATIC_EPOCH: i32 = -2;

/// The server-side assignors, by their Kafka names; the first is the default.
pub const ASSIGNORS: &[&str] = &["uniform", "range"];

/// Kafka's names for the states (ListGroups, ConsumerGroupDescribe).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConsumerState {
    Empty,
    Assigning,
    Reconciling,
    Stable,
}

impl ConsumerState {
    pub fn name(self) -> &'static str {
        match self {
            ConsumerState::Empty => "Empty",
            ConsumerState::Assigning => "Assigning",
            ConsumerState::Reconciling => "Reconciling",
            ConsumerState::Stable => "Stable",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MemberState {
    Stable,
    /// Must give back `pending_revocation` before anything else.
    UnrevokedPartitions,
    /// At the target epoch, but some target partitions are still held by others.
    UnreleasedPartitions,
}

#[derive(Debug, Clone)]
pub struct ConsumerMember {
    pub member_id: String,
    pub instance_id: Option<String>,
    pub rack_id: Option<String>,
    pub client_id: String,
    pub client_host: String,
    pub epoch: i32,
    previous_epoch: i32,
    pub state: MemberState,
    pub subscribed_names: Vec<String>,
    pub subscribed_regex: Option<String>,
    pub server_assignor: Option<String>,
    pub rebalance_timeout: Duration,
    pub assigned: Assignment,
    pub pending_revocation: Assignment,
    session_deadline: Instant,
    revocation_deadline: Option<Instant>,
    /// The assignment last sent, so unchanged assignments are not repeated.
    sent: Option<Assignment>,
}

/// A topic as the assignor sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopicInfo {
    pub id: Uuid,
    pub partitions: i32,
}

/// A ConsumerGroupHeartbeat request, decoded.
#[derive(Debug, Clone)]
pub struct HeartbeatParams {
    pub member_id: String,
    pub member_epoch: i32,
    pub instance_id: Option<String>,
    pub rack_id: Option<String>,
    pub rebalance_timeout_ms: i32,
    pub subscribed_topic_names: Option<Vec<String>>,
    pub subscribed_topic_regex: Option<String>,
    pub server_assignor: Option<String>,
    pub owned: Option<Assignment>,
    pub client_id: String,
    pub client_host: String,
}

/// A ConsumerGroupHeartbeat answer (the error path carries a message).
#[derive(Debug, Clone, Default)]
pub struct HeartbeatResult {
    pub error: i16,
    pub message: Option<String>,
    pub member_id: String,
    pub member_epoch: i32,
    /// `None`: unchanged since the last answer.
    pub assignment: Option<Assignment>,
}

impl HeartbeatResult {
    pub fn error(error: i16, message: impl Into<String>) -> Self {
        HeartbeatResult { error, message: Some(message.into()), ..HeartbeatResult::default() }
    }
}

#[derive(Debug, Default)]
pub struct ConsumerGroup {
    pub epoch: i32,
    pub assignment_epoch: i32,
    pub members: BTreeMap<String, ConsumerMember>,
    pub target: BTreeMap<String, Assignment>,
    /// The subscribed topics when the target was last computed.
    topics: BTreeMap<String, TopicInfo>,
    pub state_timestamp: i64,
}

/// Topics matching a member's subscription.
fn matches(member: &ConsumerMember, topic: &str, regexes: &BTreeMap<String, regex::Regex>) -> bool {
    member.subscribed_names.iter().any(|n| n == topic)
        || member.subscribed_regex.as_ref().and_then(|r| regexes.get(r)).is_some_and(|re| re.is_match(topic))
}

impl ConsumerGroup {
    pub fn new(epoch: i32, now_ms: i64) -> Self {
        ConsumerGroup { epoch, assignment_epoch: epoch, state_timestamp: now_ms, ..ConsumerGroup::default() }
    }

    pub fn state(&self) -> ConsumerState {
        if self.members.is_empty() {
            ConsumerState::Empty
        } else if self.assignment_epoch < self.epoch {
            ConsumerState::Assigning
        } else if self.members.values().any(|m| {
            m.epoch != LEAVE_STATIC_EPOCH && (m.epoch != self.assignment_epoch || m.state != MemberState::Stable)
        }) {
            ConsumerState::Reconciling
        } else {
            ConsumerState::Stable
        }
    }

    /// The assignor the members asked for (the most requested), or the default.
    pub fn assignor(&self) -> &'static str {
        let mut best = (0, ASSIGNORS[0]);
        for name in ASSIGNORS {
            let n = self.members.values().filter(|m| m.server_assignor.as_deref() == Some(name)).count();
            if n > best.0 {
                best = (n, name);
            }
        }
        best.1
    }

    /// Compiled regexes of all members' subscriptions (invalid ones were refused on entry).
    fn regexes(&self) -> BTreeMap<String, regex::Regex> {
        self.members
            .values()
            .filter_map(|m| m.subscribed_regex.as_ref())
            .filter_map(|r| Some((r.clone(), regex::Regex::new(&format!("^(?:{r})$")).ok()?)))
            .collect()
    }

    /// Whether a member subscribes to `topic`, by name or by a regex matching the whole name
    /// (Kafka's `isSubscribedToTopic`, which OffsetDelete consults). Kafka counts a regex's
    /// matches among existing topics only; the two differ only for a topic that does not
    /// exist. A static member that left temporarily still counts: it keeps its place.
    pub fn is_subscribed_to(&self, topic: &str) -> bool {
        let regexes = self.regexes();
        self.members.values().any(|m| matches(m, topic, &regexes))
    }

    /// The subscribed topics that exist, from the broker's `all_topics`.
    fn subscribed_topics(&self, all_topics: &BTreeMap<String, TopicInfo>) -> BTreeMap<String, TopicInfo> {
        let regexes = self.regexes();
        all_topics
            .iter()
            .filter(|(name, _)| self.members.values().any(|m| matches(m, name, &regexes)))
            .map(|(n, t)| (n.clone(), t.clone()))
            .collect()
    }

    /// One heartbeat. `all_topics` is the broker's topics (name → id, partitions).
    pub fn heartbeat(
        &mut self,
        p: HeartbeatParams,
        all_topics: &BTreeMap<String, TopicInfo>,
        session_timeout: Duration,
        now: Instant,
        now_ms: i64,
    ) -> HeartbeatResult {
        if p.member_epoch < 0 {
            return self.leave(&p.member_id, p.instance_id.as_deref(), p.member_epoch, now_ms);
        }
        let mut bump = false;
        let mut rejoined_static = false;
        if p.member_epoch == 0 {
            if let Some(instance) = &p.instance_id {
                let holder = self
                    .members
                    .values()
                    .find(|m| m.instance_id.as_ref() == Some(instance) && m.member_id != p.member_id)
                    .map(|m| (m.member_id.clone(), m.epoch));
                match holder {
                    // A static member that left with epoch -2 is back within its session:
                    // it takes over its old place (assignment and epoch), no rebalance.
                    Some((old_id, LEAVE_STATIC_EPOCH)) => {
                        self.take_over(&old_id, &p.member_id);
                        rejoined_static = true;
                    }
                    Some(_) => {
                        return HeartbeatResult::error(
                            code::UNRELEASED_INSTANCE_ID,
                            format!("instance id {instance} is used by another member"),
                        );
                    }
                    None => {}
                }
            }
        }
        if p.member_epoch == 0 && !rejoined_static {
            // A (re)join: the member owns nothing, whatever it held before is released.
            self.members.insert(
                p.member_id.clone(),
                ConsumerMember {
                    member_id: p.member_id.clone(),
                    instance_id: p.instance_id.clone(),
                    rack_id: p.rack_id.clone(),
                    client_id: p.client_id.clone(),
                    client_host: p.client_host.clone(),
                    epoch: 0,
                    previous_epoch: 0,
                    state: MemberState::Stable,
                    subscribed_names: Vec::new(),
                    subscribed_regex: None,
                    server_assignor: None,
                    rebalance_timeout: Duration::ZERO,
                    assigned: Assignment::new(),
                    pending_revocation: Assignment::new(),
                    session_deadline: now,
                    revocation_deadline: None,
                    sent: None,
                },
            );
            bump = true;
        }
        let Some(member) = self.members.get_mut(&p.member_id) else {
            return HeartbeatResult::error(code::UNKNOWN_MEMBER_ID, format!("unknown member {}", p.member_id));
        };
        // Kafka's rule: a newer epoch than the member's is fenced; an older one only passes
        // as the previous epoch with nothing owned beyond the current assignment (the last
        // answer was lost).
        let lost_answer = p.member_epoch == member.previous_epoch
            && p.owned.as_ref().is_none_or(|owned| is_subset(owned, &member.assigned));
        let fenced = p.member_epoch > member.epoch || (p.member_epoch < member.epoch && !lost_answer);
        if fenced && !rejoined_static {
            return HeartbeatResult::error(
                code::FENCED_MEMBER_EPOCH,
                format!("member epoch {} is fenced (current {})", p.member_epoch, member.epoch),
            );
        }
        if p.member_epoch < member.epoch {
            // The last answer was lost: send the assignment again.
            member.sent = None;
        }
        member.session_deadline = now + session_timeout;
        if let Some(names) = p.subscribed_topic_names {
            let mut names = names;
            names.sort();
            names.dedup();
            if names != member.subscribed_names {
                member.subscribed_names = names;
                bump = true;
            }
        }
        if let Some(regex) = p.subscribed_topic_regex {
            let regex = Some(regex).filter(|r| !r.is_empty());
            if regex != member.subscribed_regex {
                member.subscribed_regex = regex;
                bump = true;
            }
        }
        if let Some(assignor) = p.server_assignor {
            if member.server_assignor.as_deref() != Some(assignor.as_str()) {
                member.server_assignor = Some(assignor);
                bump = true;
            }
        }
        if p.rebalance_timeout_ms >= 0 {
            member.rebalance_timeout = Duration::from_millis(p.rebalance_timeout_ms as u64);
        }
        if p.rack_id.is_some() {
            member.rack_id = p.rack_id;
        }
        member.client_id = p.client_id;
        member.client_host = p.client_host;
        let topics = self.subscribed_topics(all_topics);
        if topics != self.topics {
            self.topics = topics;
            bump = true;
        }
        if bump {
            self.epoch += 1;
        }
        if self.assignment_epoch < self.epoch {
            self.compute_target();
        }
        self.reconcile(&p.member_id, p.owned.as_ref(), now);
        let member = self.members.get_mut(&p.member_id).expect("reconciled member exists");
        let assignment =
            if member.sent.as_ref() != Some(&member.assigned) || p.owned.is_some_and(|o| o != member.assigned) {
                member.sent = Some(member.assigned.clone());
                Some(member.assigned.clone())
            } else {
                None
            };
        HeartbeatResult {
            error: code::NONE,
            message: None,
            member_id: p.member_id,
            member_epoch: member.epoch,
            assignment,
        }
    }

    /// A static member's new incarnation (`new_id`) replaces the one that left (`old_id`).
    fn take_over(&mut self, old_id: &str, new_id: &str) {
        let Some(mut member) = self.members.remove(old_id) else { return };
        member.member_id = new_id.to_owned();
        member.epoch = member.previous_epoch;
        member.sent = None;
        if let Some(target) = self.target.remove(old_id) {
            self.target.insert(new_id.to_owned(), target);
        }
        self.members.insert(new_id.to_owned(), member);
    }

    fn leave(&mut self, member_id: &str, instance_id: Option<&str>, epoch: i32, now_ms: i64) -> HeartbeatResult {
        let id = match instance_id {
            Some(instance) if member_id.is_empty() => {
                self.members.values().find(|m| m.instance_id.as_deref() == Some(instance)).map(|m| m.member_id.clone())
            }
            _ => Some(member_id.to_owned()).filter(|id| self.members.contains_key(id)),
        };
        let Some(id) = id else {
            return HeartbeatResult::error(code::UNKNOWN_MEMBER_ID, format!("unknown member {member_id}"));
        };
        match self.members.get_mut(&id) {
            // A static member leaving temporarily keeps its place until its session expires.
            Some(m) if epoch == LEAVE_STATIC_EPOCH && m.instance_id.is_some() => {
                if m.epoch != LEAVE_STATIC_EPOCH {
                    m.previous_epoch = m.epoch;
                }
                m.epoch = LEAVE_STATIC_EPOCH;
            }
            _ => self.remove_member(&id, now_ms),
        }
        HeartbeatResult { error: code::NONE, message: None, member_id: id, member_epoch: epoch, assignment: None }
    }

    /// Removes a member (leave, expiry, fencing): its partitions are free at once.
    pub fn remove_member(&mut self, member_id: &str, now_ms: i64) {
        if self.members.remove(member_id).is_some() {
            self.target.remove(member_id);
            self.epoch += 1;
            if self.members.is_empty() {
                self.state_timestamp = now_ms;
            }
        }
    }

    /// Recomputes the target assignment with the group's assignor.
    fn compute_target(&mut self) {
        let regexes = self.regexes();
        let subscriptions: BTreeMap<String, Vec<String>> = self
            .members
            .values()
            .map(|m| {
                let topics = self.topics.keys().filter(|t| matches(m, t, &regexes)).cloned().collect();
                (m.member_id.clone(), topics)
            })
            .collect();
        self.target = match self.assignor() {
            "range" => assign_range(&subscriptions, &self.topics),
            _ => assign_uniform(&subscriptions, &self.topics, &self.target),
        };
        self.assignment_epoch = self.epoch;
    }

    fn owned_by_other(&self, me: &str, topic: Uuid, partition: i32) -> bool {
        self.members.values().any(|m| {
            m.member_id != me
                && (m.assigned.get(&topic).is_some_and(|p| p.contains(&partition))
                    || m.pending_revocation.get(&topic).is_some_and(|p| p.contains(&partition)))
        })
    }

    /// Moves a member toward its target: revoke first, then assign what is free.
    fn reconcile(&mut self, member_id: &str, owned: Option<&Assignment>, now: Instant) {
        let target = self.target.get(member_id).cloned().unwrap_or_default();
        let target_epoch = self.assignment_epoch;
        let Some(member) = self.members.get(member_id) else { return };
        if member.state == MemberState::UnrevokedPartitions {
            // Done revoking once the member no longer reports any revoked partition as owned.
            let released = owned.is_some_and(|o| !intersects(o, &member.pending_revocation));
            if !released {
                return;
            }
        } else if member.state == MemberState::Stable && member.epoch == target_epoch {
            return;
        }
        let current = member.assigned.clone();
        let keep = intersection(&current, &target);
        let revoke = difference(&current, &target);
        if !revoke.is_empty() {
            let member = self.members.get_mut(member_id).expect("member exists");
            member.assigned = keep;
            member.pending_revocation = revoke;
            member.state = MemberState::UnrevokedPartitions;
            member.revocation_deadline = Some(now + member.rebalance_timeout);
            return;
        }
        let mut next = keep;
        let mut withheld = false;
        for (topic, partitions) in difference(&target, &current) {
            for p in partitions {
                if self.owned_by_other(member_id, topic, p) {
                    withheld = true;
                } else {
                    next.entry(topic).or_default().insert(p);
                }
            }
        }
        let member = self.members.get_mut(member_id).expect("member exists");
        member.pending_revocation.clear();
        member.revocation_deadline = None;
        member.assigned = next;
        if member.epoch != target_epoch {
            member.previous_epoch = member.epoch;
            member.epoch = target_epoch;
        }
        member.state = if withheld { MemberState::UnreleasedPartitions } else { MemberState::Stable };
    }

    /// Expired sessions and revocations that took longer than the rebalance timeout fence
    /// their members. Returns how many were removed.
    pub fn tick(&mut self, now: Instant, now_ms: i64) -> usize {
        let expired: Vec<String> = self
            .members
            .values()
            .filter(|m| m.session_deadline <= now || m.revocation_deadline.is_some_and(|d| d <= now))
            .map(|m| m.member_id.clone())
            .collect();
        for id in &expired {
            tracing::info!(member = %id, "consumer group member fenced: session or revocation timeout");
            self.remove_member(id, now_ms);
        }
        expired.len()
    }

    /// Validation of an OffsetCommit or a member-checked OffsetFetch.
    pub fn validate_commit(&self, member_id: &str, epoch: i32) -> i16 {
        if epoch < 0 && member_id.is_empty() {
            return if self.members.is_empty() { code::NONE } else { code::UNKNOWN_MEMBER_ID };
        }
        match self.members.get(member_id) {
            None => code::UNKNOWN_MEMBER_ID,
            Some(m) if m.epoch != epoch => code::STALE_MEMBER_EPOCH,
            Some(_) => code::NONE,
        }
    }
}

fn is_subset(a: &Assignment, b: &Assignment) -> bool {
    a.iter().all(|(t, ps)| ps.iter().all(|p| b.get(t).is_some_and(|bp| bp.contains(p))))
}

fn intersects(a: &Assignment, b: &Assignment) -> bool {
    a.iter().any(|(t, ps)| b.get(t).is_some_and(|bp| ps.iter().any(|p| bp.contains(p))))
}

fn intersection(a: &Assignment, b: &Assignment) -> Assignment {
    let mut out = Assignment::new();
    for (t, ps) in a {
        if let Some(bp) = b.get(t) {
            let common: BTreeSet<i32> = ps.intersection(bp).copied().collect();
            if !common.is_empty() {
                out.insert(*t, common);
            }
        }
    }
    out
}

fn difference(a: &Assignment, b: &Assignment) -> Assignment {
    let mut out = Assignment::new();
    for (t, ps) in a {
        let rest: BTreeSet<i32> = match b.get(t) {
            Some(bp) => ps.difference(bp).copied().collect(),
            None => ps.clone(),
        };
        if !rest.is_empty() {
            out.insert(*t, rest);
        }
    }
    out
}

/// The `uniform` assignor: every member gets as many partitions as it can (counts differ by
/// at most one among members with the same subscriptions), keeping partitions where they were
/// so that a rebalance moves as little as possible.
pub fn assign_uniform(
    subscriptions: &BTreeMap<String, Vec<String>>,
    topics: &BTreeMap<String, TopicInfo>,
    previous: &BTreeMap<String, Assignment>,
) -> BTreeMap<String, Assignment> {
    let mut out: BTreeMap<String, Assignment> = subscriptions.keys().map(|m| (m.clone(), Assignment::new())).collect();
    let subscribers = subscriptions.values().filter(|s| !s.is_empty()).count();
    if subscribers == 0 {
        return out;
    }
    // Every partition and who may have it.
    let mut all: Vec<(Uuid, i32, Vec<&String>)> = Vec::new();
    for (name, info) in topics {
        let eligible: Vec<&String> = subscriptions.iter().filter(|(_, s)| s.contains(name)).map(|(m, _)| m).collect();
        if eligible.is_empty() {
            continue;
        }
        for p in 0..info.partitions {
            all.push((info.id, p, eligible.clone()));
        }
    }
    let total = all.len();
    let floor = total / subscribers;
    let mut with_extra = total % subscribers;
    let mut counts: BTreeMap<&String, usize> = subscriptions.keys().map(|m| (m, 0)).collect();
    let mut taken: BTreeSet<(Uuid, i32)> = BTreeSet::new();
    // Sticky pass: keep previous partitions up to the fair share.
    for (member, assignment) in previous {
        let Some(subs) = subscriptions.get(member) else { continue };
        let allowed: BTreeSet<Uuid> = subs.iter().filter_map(|t| topics.get(t).map(|i| i.id)).collect();
        for (topic, partitions) in assignment {
            if !allowed.contains(topic) {
                continue;
            }
            let max_partition = topics.values().find(|i| i.id == *topic).map_or(0, |i| i.partitions);
            for &p in partitions {
                let count = counts.get(member).copied().unwrap_or(0);
                let cap = if count < floor {
                    true
                } else if count == floor && with_extra > 0 {
                    with_extra -= 1;
                    true
                } else {
                    false
                };
                if !cap || p >= max_partition || taken.contains(&(*topic, p)) {
                    if !cap {
                        break;
                    }
                    continue;
                }
                taken.insert((*topic, p));
                out.entry(member.clone()).or_default().entry(*topic).or_default().insert(p);
                if let Some(c) = counts.get_mut(member) {
                    *c += 1;
                }
            }
        }
    }
    // Everything else to the eligible member with the fewest partitions.
    for (topic, p, eligible) in all {
        if taken.contains(&(topic, p)) {
            continue;
        }
        let Some(member) = eligible.iter().min_by_key(|m| (counts.get(**m).copied().unwrap_or(0), **m)) else {
            continue;
        };
        out.entry((*member).clone()).or_default().entry(topic).or_default().insert(p);
        if let Some(c) = counts.get_mut(*member) {
            *c += 1;
        }
    }
    out
}

/// The `range` assignor: per topic, members in id order get contiguous ranges, the first
/// `partitions % members` one partition more.
pub fn assign_range(
    subscriptions: &BTreeMap<String, Vec<String>>,
    topics: &BTreeMap<String, TopicInfo>,
) -> BTreeMap<String, Assignment> {
    let mut out: BTreeMap<String, Assignment> = subscriptions.keys().map(|m| (m.clone(), Assignment::new())).collect();
    for (name, info) in topics {
        let members: Vec<&String> = subscriptions.iter().filter(|(_, s)| s.contains(name)).map(|(m, _)| m).collect();
        if members.is_empty() {
            continue;
        }
        let n = info.partitions.max(0) as usize;
        let (each, extra) = (n / members.len(), n % members.len());
        let mut next = 0;
        for (i, m) in members.iter().enumerate() {
            let count = each + usize::from(i < extra);
            if count > 0 {
                let set = out.entry((*m).clone()).or_default().entry(info.id).or_default();
                set.extend((next..next + count).map(|p| p as i32));
            }
            next += count;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn topics(spec: &[(&str, i32)]) -> BTreeMap<String, TopicInfo> {
        spec.iter()
            .enumerate()
            .map(|(i, (n, p))| (n.to_string(), TopicInfo { id: Uuid::from_u128(i as u128 + 1), partitions: *p }))
            .collect()
    }

    fn join(member: &str, subscribed: &[&str], epoch: i32, owned: Option<Assignment>) -> HeartbeatParams {
        HeartbeatParams {
            member_id: member.into(),
            member_epoch: epoch,
            instance_id: None,
            rack_id: None,
            rebalance_timeout_ms: 10_000,
            subscribed_topic_names: Some(subscribed.iter().map(|s| s.to_string()).collect()),
            subscribed_topic_regex: None,
            server_assignor: None,
            owned: Some(owned.unwrap_or_default()),
            client_id: "c".into(),
            client_host: "/127.0.0.1".into(),
        }
    }

    fn count(a: &Assignment) -> usize {
        a.values().map(BTreeSet::len).sum()
    }

    #[test]
    fn uniform_balances_and_sticks() {
        let t = topics(&[("a", 6)]);
        let subs: BTreeMap<String, Vec<String>> =
            ["m1", "m2", "m3"].iter().map(|m| (m.to_string(), vec!["a".to_string()])).collect();
        let first = assign_uniform(&subs, &t, &BTreeMap::new());
        assert!(first.values().all(|a| count(a) == 2));
        // m3 leaves: m1 and m2 keep what they had and split m3's partitions.
        let mut subs2 = subs.clone();
        subs2.remove("m3");
        let second = assign_uniform(&subs2, &t, &first);
        for m in ["m1", "m2"] {
            assert_eq!(count(&second[m]), 3);
            assert!(is_subset(&first[m], &second[m]), "{m} keeps its partitions");
        }
    }

    #[test]
    fn range_gives_contiguous_ranges() {
        let t = topics(&[("a", 5)]);
        let subs: BTreeMap<String, Vec<String>> =
            ["m1", "m2"].iter().map(|m| (m.to_string(), vec!["a".to_string()])).collect();
        let r = assign_range(&subs, &t);
        let id = t["a"].id;
        assert_eq!(r["m1"][&id], BTreeSet::from([0, 1, 2]));
        assert_eq!(r["m2"][&id], BTreeSet::from([3, 4]));
    }

    #[test]
    fn a_second_member_gets_partitions_only_after_the_first_revokes_them() {
        let now = Instant::now();
        let t = topics(&[("a", 4)]);
        let s = Duration::from_secs(45);
        let mut g = ConsumerGroup::new(0, 0);
        let r1 = g.heartbeat(join("m1", &["a"], 0, None), &t, s, now, 0);
        assert_eq!((r1.error, r1.member_epoch), (code::NONE, 1));
        let all = r1.assignment.expect("first assignment");
        assert_eq!(count(&all), 4);

        let r2 = g.heartbeat(join("m2", &["a"], 0, None), &t, s, now, 0);
        assert_eq!(r2.member_epoch, 2);
        assert_eq!(r2.assignment.map(|a| count(&a)), Some(0), "its partitions are still m1's");
        assert_eq!(g.state(), ConsumerState::Reconciling);

        // m1 heartbeats: told to keep 2 (revoke 2), its epoch stays 1.
        let mut p = join("m1", &["a"], 1, Some(all.clone()));
        p.subscribed_topic_names = None;
        let r1 = g.heartbeat(p.clone(), &t, s, now, 0);
        assert_eq!(r1.member_epoch, 1);
        let kept = r1.assignment.expect("revocation");
        assert_eq!(count(&kept), 2);
        // m1 acknowledges by reporting only what it kept: it moves to epoch 2.
        p.owned = Some(kept.clone());
        let r1 = g.heartbeat(p, &t, s, now, 0);
        assert_eq!(r1.member_epoch, 2);
        // m2 now receives the released partitions.
        let mut p2 = join("m2", &["a"], 2, Some(Assignment::new()));
        p2.subscribed_topic_names = None;
        let r2 = g.heartbeat(p2, &t, s, now, 0);
        let got = r2.assignment.expect("assignment");
        assert_eq!(count(&got), 2);
        assert!(!intersects(&got, &kept));
        assert_eq!(g.state(), ConsumerState::Stable);
    }

    #[test]
    fn stale_and_fenced_epochs_and_leaving() {
        let now = Instant::now();
        let t = topics(&[("a", 2)]);
        let s = Duration::from_secs(45);
        let mut g = ConsumerGroup::new(0, 0);
        let _ = g.heartbeat(join("m1", &["a"], 0, None), &t, s, now, 0);
        assert_eq!(g.heartbeat(join("m1", &["a"], 7, None), &t, s, now, 0).error, code::FENCED_MEMBER_EPOCH);
        let _ = g.heartbeat(join("m2", &["a"], 0, None), &t, s, now, 0); // m1 must revoke: epoch 1 → 2 later
        let mut revoke = join("m1", &["a"], 1, None);
        revoke.owned = Some(Assignment::new());
        assert_eq!(g.heartbeat(revoke.clone(), &t, s, now, 0).member_epoch, 1, "told to revoke first");
        assert_eq!(g.heartbeat(revoke, &t, s, now, 0).member_epoch, 2, "revoked: moves on");
        assert_eq!(
            g.heartbeat(
                join(
                    "m1",
                    &["a"],
                    1,
                    Some(topics(&[("a", 2)]).values().map(|i| (i.id, BTreeSet::from([0, 1]))).collect())
                ),
                &t,
                s,
                now,
                0
            )
            .error,
            code::FENCED_MEMBER_EPOCH,
            "an older epoch owning partitions it no longer has is fenced"
        );
        assert_eq!(g.heartbeat(join("zz", &["a"], 3, None), &t, s, now, 0).error, code::UNKNOWN_MEMBER_ID);
        assert_eq!(g.validate_commit("m1", 2), code::NONE);
        assert_eq!(g.validate_commit("m1", 1), code::STALE_MEMBER_EPOCH);
        for m in ["m1", "m2"] {
            let left = g.heartbeat(join(m, &["a"], -1, None), &t, s, now, 0);
            assert_eq!((left.error, left.member_epoch), (code::NONE, -1));
        }
        assert_eq!(g.state(), ConsumerState::Empty);
    }

    #[test]
    fn a_regex_subscription_follows_matching_topics_including_new_ones() {
        let now = Instant::now();
        let s = Duration::from_secs(45);
        let mut g = ConsumerGroup::new(0, 0);
        let mut p = join("m1", &[], 0, None);
        p.subscribed_topic_names = None;
        p.subscribed_topic_regex = Some("orders-.*".into());
        let r = g.heartbeat(p, &topics(&[("orders-eu", 2), ("payments", 3)]), s, now, 0);
        assert_eq!(r.assignment.map(|a| count(&a)), Some(2), "only the matching topic");
        // A topic created later that matches: the group epoch moves and it is assigned.
        let mut p = join("m1", &[], r.member_epoch, Some(Assignment::new()));
        p.subscribed_topic_names = None;
        let more = topics(&[("orders-eu", 2), ("payments", 3), ("orders-us", 1)]);
        let r2 = g.heartbeat(p, &more, s, now, 0);
        assert_eq!(r2.member_epoch, r.member_epoch + 1);
        assert_eq!(r2.assignment.map(|a| count(&a)), Some(3));
    }

    #[test]
    fn topics_subscribed_by_name_or_by_regex_count_as_subscribed() {
        let now = Instant::now();
        let s = Duration::from_secs(45);
        let mut g = ConsumerGroup::new(0, 0);
        assert!(!g.is_subscribed_to("orders-eu"), "an empty group subscribes to nothing");
        let mut by_regex = join("m1", &[], 0, None);
        by_regex.subscribed_topic_names = None;
        by_regex.subscribed_topic_regex = Some("orders-.*".into());
        let _ = g.heartbeat(by_regex, &topics(&[("orders-eu", 1)]), s, now, 0);
        let _ = g.heartbeat(join("m2", &["payments"], 0, None), &topics(&[("orders-eu", 1)]), s, now, 0);
        assert!(g.is_subscribed_to("orders-eu"));
        assert!(g.is_subscribed_to("orders-us"), "a matching topic, existing or not");
        assert!(g.is_subscribed_to("payments"), "by name, even before the topic exists");
        assert!(!g.is_subscribed_to("xorders-eu"), "the regex must match the whole name");
        assert!(!g.is_subscribed_to("audit"));
    }

    #[test]
    fn a_static_member_that_leaves_temporarily_gets_its_partitions_back() {
        let now = Instant::now();
        let t = topics(&[("a", 4)]);
        let s = Duration::from_secs(45);
        let mut g = ConsumerGroup::new(0, 0);
        let mut p = join("m1", &["a"], 0, None);
        p.instance_id = Some("i1".into());
        let r = g.heartbeat(p.clone(), &t, s, now, 0);
        let (epoch, assigned) = (r.member_epoch, r.assignment.expect("assigned"));
        let left = g.heartbeat(HeartbeatParams { member_epoch: -2, ..p.clone() }, &t, s, now, 0);
        assert_eq!((left.error, left.member_epoch), (code::NONE, -2));
        assert_eq!(g.epoch, epoch, "no rebalance");
        // Someone else may not take the instance id's partitions meanwhile...
        let mut other = join("m2", &["a"], 0, None);
        other.instance_id = Some("i1".into());
        other.member_id = "m2".into();
        // ...but the instance's new incarnation takes its place back.
        let back = g.heartbeat(HeartbeatParams { member_id: "m1-new".into(), ..p }, &t, s, now, 0);
        assert_eq!((back.error, back.member_epoch), (code::NONE, epoch));
        assert_eq!(back.assignment, Some(assigned));
        assert!(!g.members.contains_key("m1"));
        assert_eq!(g.state(), ConsumerState::Stable);
        let taken = g.heartbeat(other, &t, s, now, 0);
        assert_eq!(taken.error, code::UNRELEASED_INSTANCE_ID);
    }

    #[test]
    fn an_expired_session_frees_the_partitions() {
        let now = Instant::now();
        let t = topics(&[("a", 2)]);
        let s = Duration::from_secs(1);
        let mut g = ConsumerGroup::new(0, 0);
        let _ = g.heartbeat(join("m1", &["a"], 0, None), &t, s, now, 0);
        let _ = g.heartbeat(join("m2", &["a"], 0, None), &t, s, now + Duration::from_millis(900), 0);
        assert_eq!(g.tick(now + Duration::from_millis(1_100), 0), 1);
        let mut p = join("m2", &["a"], 2, Some(Assignment::new()));
        p.subscribed_topic_names = None;
        let r = g.heartbeat(p, &t, s, now + Duration::from_millis(1_200), 0);
        assert_eq!(r.assignment.map(|a| count(&a)), Some(2));
    }
}
