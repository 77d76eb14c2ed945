//! The classic group protocol (JoinGroup, SyncGroup, Heartbeat, LeaveGroup): Kafka's
//! rebalance state machine, with its error codes at the same points Kafka returns them.
//!
//! ```text
//! Empty ──join──▶ PreparingRebalance ──all joined / deadline──▶ CompletingRebalance
//!   ▲                 ▲        │                                      │ leader's SyncGroup
//!   └── last member ──┘        └──────── no members left ──▶ Empty    ▼
//!       leaves            member joins, leaves or changes ◀──────── Stable
//! ```
//!
//! Everything here is synchronous and runs under the coordinator's lock. Requests that must
//! wait (JoinGroup until the rebalance completes, SyncGroup until the leader's assignment is
//! stored) leave a `oneshot` sender in their member; completing the phase answers them all.
//! Deadlines (sessions, rebalance and sync timeouts, the initial rebalance delay) are checked
//! by [`ClassicGroup::tick`], which the coordinator calls periodically.

use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, Instant};

use bytes::Bytes;
use tokio::sync::oneshot;

use super::records::{GroupValue, MemberValue};
use super::GroupConfig;
use crate::handler::code;

/// Kafka's names for the states (ListGroups, DescribeGroups).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClassicState {
    Empty,
    PreparingRebalance,
    CompletingRebalance,
    Stable,
    Dead,
}

impl ClassicState {
    pub fn name(self) -> &'static str {
        match self {
            ClassicState::Empty => "Empty",
            ClassicState::PreparingRebalance => "PreparingRebalance",
            ClassicState::CompletingRebalance => "CompletingRebalance",
            ClassicState::Stable => "Stable",
            ClassicState::Dead => "Dead",
        }
    }
}

/// A JoinGroup request, decoded.
#[derive(Debug, Clone)]
pub struct JoinParams {
    pub member_id: String,
    pub instance_id: Option<String>,
    pub client_id: String,
    pub client_host: String,
    pub session_timeout_ms: i32,
    pub rebalance_timeout_ms: i32,
    pub protocol_type: String,
    pub protocols: Vec<(String, Bytes)>,
    /// v4+: a new member first gets MEMBER_ID_REQUIRED and its id, then joins with it.
    pub require_known_member_id: bool,
}

/// A member as the leader sees it in the JoinGroup response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JoinedMember {
    pub member_id: String,
    pub instance_id: Option<String>,
    pub metadata: Bytes,
}

/// A JoinGroup answer.
#[derive(Debug, Clone, Default)]
pub struct JoinResult {
    pub error: i16,
    pub generation: i32,
    pub protocol_type: Option<String>,
    pub protocol_name: Option<String>,
    pub leader: String,
    pub skip_assignment: bool,
    pub member_id: String,
    pub members: Vec<JoinedMember>,
}

impl JoinResult {
    pub fn error(error: i16, member_id: &str) -> Self {
        JoinResult { error, generation: -1, member_id: member_id.to_owned(), ..JoinResult::default() }
    }
}

/// A SyncGroup answer.
#[derive(Debug, Clone, Default)]
pub struct SyncResult {
    pub error: i16,
    pub protocol_type: Option<String>,
    pub protocol_name: Option<String>,
    pub assignment: Bytes,
}

impl SyncResult {
    pub fn error(error: i16) -> Self {
        SyncResult { error, ..SyncResult::default() }
    }
}

/// What a request gets: an answer now, or a receiver for one.
#[derive(Debug)]
pub enum Reply<T> {
    Now(T),
    Wait(oneshot::Receiver<T>),
}

#[derive(Debug)]
pub struct ClassicMember {
    pub member_id: String,
    pub instance_id: Option<String>,
    pub client_id: String,
    pub client_host: String,
    pub session_timeout: Duration,
    pub rebalance_timeout: Duration,
    pub protocol_type: String,
    /// In the member's order of preference.
    pub protocols: Vec<(String, Bytes)>,
    pub assignment: Bytes,
    join_waiter: Option<oneshot::Sender<JoinResult>>,
    sync_waiter: Option<oneshot::Sender<SyncResult>>,
    /// Sent SyncGroup in the current generation.
    synced: bool,
    heartbeat_deadline: Instant,
}

impl ClassicMember {
    pub fn metadata(&self, protocol: &str) -> Bytes {
        self.protocols.iter().find(|(name, _)| name == protocol).map(|(_, m)| m.clone()).unwrap_or_default()
    }

    fn awaiting_join(&self) -> bool {
        self.join_waiter.is_some()
    }
}

#[derive(Debug)]
pub struct ClassicGroup {
    pub state: ClassicState,
    pub generation: i32,
    pub protocol_type: Option<String>,
    pub protocol: Option<String>,
    pub leader: Option<String>,
    /// Members by id, in join order of ids (deterministic leader choice and listings).
    pub members: BTreeMap<String, ClassicMember>,
    /// Static members: group.instance.id → member id.
    static_members: HashMap<String, String>,
    /// Ids handed out with MEMBER_ID_REQUIRED, waiting for the member's second JoinGroup.
    pending: HashMap<String, Instant>,
    /// PreparingRebalance: when the join phase ends even if members are missing.
    join_deadline: Option<Instant>,
    /// The initial rebalance delay of a group that was empty: (current end, latest end).
    initial_delay: Option<(Instant, Instant)>,
    /// CompletingRebalance: when members that have not synced are removed.
    sync_deadline: Option<Instant>,
    /// Milliseconds since the epoch when the state last changed (offset expiry of empty groups).
    pub state_timestamp: i64,
}

/// Whether the group must be written to `__consumer_offsets` after an operation.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
#[must_use]
pub struct Persist(pub bool);

impl ClassicGroup {
    pub fn new(now_ms: i64) -> Self {
        ClassicGroup {
            state: ClassicState::Empty,
            generation: 0,
            protocol_type: None,
            protocol: None,
            leader: None,
            members: BTreeMap::new(),
            static_members: HashMap::new(),
            pending: HashMap::new(),
            join_deadline: None,
            initial_delay: None,
            sync_deadline: None,
            state_timestamp: now_ms,
        }
    }

    /// Rebuilds a group from its `GroupMetadataValue`, as Kafka does on load: members come
    /// back with fresh session timers and the group Stable (Empty without members).
    pub fn from_record(v: GroupValue, now: Instant) -> Self {
        let mut g = ClassicGroup::new(v.current_state_timestamp);
        g.generation = v.generation;
        g.protocol_type = Some(v.protocol_type.clone()).filter(|p| !p.is_empty());
        g.protocol = v.protocol.clone();
        g.leader = v.leader.clone();
        for m in v.members {
            if let Some(instance) = &m.group_instance_id {
                g.static_members.insert(instance.clone(), m.member_id.clone());
            }
            let session_timeout = Duration::from_millis(m.session_timeout_ms.max(0) as u64);
            let member = ClassicMember {
                member_id: m.member_id.clone(),
                instance_id: m.group_instance_id,
                client_id: m.client_id,
                client_host: m.client_host,
                session_timeout,
                rebalance_timeout: Duration::from_millis(m.rebalance_timeout_ms.max(0) as u64),
                protocol_type: v.protocol_type.clone(),
                protocols: vec![(v.protocol.clone().unwrap_or_default(), m.subscription)],
                assignment: m.assignment,
                join_waiter: None,
                sync_waiter: None,
                synced: true,
                heartbeat_deadline: now + session_timeout,
            };
            g.members.insert(m.member_id, member);
        }
        g.state = if g.members.is_empty() { ClassicState::Empty } else { ClassicState::Stable };
        if g.leader.as_ref().is_some_and(|l| !g.members.contains_key(l)) {
            g.leader = g.members.keys().next().cloned();
        }
        g
    }

    /// The `GroupMetadataValue` for this group.
    pub fn to_record(&self) -> GroupValue {
        let protocol = self.protocol.clone().unwrap_or_default();
        GroupValue {
            protocol_type: self.protocol_type.clone().unwrap_or_default(),
            generation: self.generation,
            protocol: self.protocol.clone(),
            leader: self.leader.clone(),
            current_state_timestamp: self.state_timestamp,
            members: self
                .members
                .values()
                .map(|m| MemberValue {
                    member_id: m.member_id.clone(),
                    group_instance_id: m.instance_id.clone(),
                    client_id: m.client_id.clone(),
                    client_host: m.client_host.clone(),
                    rebalance_timeout_ms: m.rebalance_timeout.as_millis() as i32,
                    session_timeout_ms: m.session_timeout.as_millis() as i32,
                    subscription: m.metadata(&protocol),
                    assignment: m.assignment.clone(),
                })
                .collect(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.members.is_empty() && self.pending.is_empty()
    }

    fn set_state(&mut self, state: ClassicState, now_ms: i64) {
        self.state = state;
        self.state_timestamp = now_ms;
    }

    /// The topics the members subscribe to (consumer protocol), for OffsetDelete.
    pub fn subscribed_topics(&self) -> Vec<String> {
        if self.protocol_type.as_deref() != Some("consumer") {
            return Vec::new();
        }
        let protocol = self.protocol.clone().unwrap_or_default();
        let mut topics: Vec<String> =
            self.members.values().flat_map(|m| super::records::subscription_topics(&m.metadata(&protocol))).collect();
        topics.sort();
        topics.dedup();
        topics
    }

    fn supports(&self, protocol_type: &str, protocols: &[(String, Bytes)]) -> bool {
        if self.members.is_empty() {
            return !protocol_type.is_empty() && !protocols.is_empty();
        }
        self.protocol_type.as_deref() == Some(protocol_type)
            && protocols
                .iter()
                .any(|(name, _)| self.members.values().all(|m| m.protocols.iter().any(|(n, _)| n == name)))
    }

    /// The protocol every member supports that most members prefer (Kafka's vote).
    fn select_protocol(&self) -> Option<String> {
        let first = self.members.values().next()?;
        let candidates: Vec<&String> = first
            .protocols
            .iter()
            .map(|(n, _)| n)
            .filter(|name| self.members.values().all(|m| m.protocols.iter().any(|(n, _)| n == *name)))
            .collect();
        let mut votes: Vec<(&String, usize)> = candidates.iter().map(|c| (*c, 0)).collect();
        for m in self.members.values() {
            if let Some(choice) = m.protocols.iter().map(|(n, _)| n).find(|n| candidates.contains(n)) {
                if let Some(v) = votes.iter_mut().find(|(c, _)| *c == choice) {
                    v.1 += 1;
                }
            }
        }
        // The highest vote; the earliest candidate among ties.
        let best = votes.iter().map(|(_, v)| *v).max()?;
        votes.into_iter().find(|(_, v)| *v == best).map(|(c, _)| c.clone())
    }

    /// Kafka's check that a static member's instance id belongs to `member_id`.
    fn static_fenced(&self, instance_id: Option<&str>, member_id: &str) -> bool {
        instance_id.and_then(|i| self.static_members.get(i)).is_some_and(|owner| owner != member_id)
    }

    fn join_result_for(&self, member_id: &str, include_members: bool) -> JoinResult {
        let protocol = self.protocol.clone().unwrap_or_default();
        let members = if include_members {
            self.members
                .values()
                .map(|m| JoinedMember {
                    member_id: m.member_id.clone(),
                    instance_id: m.instance_id.clone(),
                    metadata: m.metadata(&protocol),
                })
                .collect()
        } else {
            Vec::new()
        };
        JoinResult {
            error: code::NONE,
            generation: self.generation,
            protocol_type: self.protocol_type.clone(),
            protocol_name: self.protocol.clone(),
            leader: self.leader.clone().unwrap_or_default(),
            skip_assignment: false,
            member_id: member_id.to_owned(),
            members,
        }
    }

    /// JoinGroup. The caller has checked the group id and session timeout bounds.
    pub fn join(
        &mut self,
        p: JoinParams,
        cfg: &GroupConfig,
        now: Instant,
        now_ms: i64,
    ) -> (Reply<JoinResult>, Persist) {
        if self.state == ClassicState::Dead {
            return (Reply::Now(JoinResult::error(code::COORDINATOR_NOT_AVAILABLE, &p.member_id)), Persist(false));
        }
        if !self.supports(&p.protocol_type, &p.protocols) {
            return (Reply::Now(JoinResult::error(code::INCONSISTENT_GROUP_PROTOCOL, &p.member_id)), Persist(false));
        }
        if p.member_id.is_empty() {
            self.join_new_member(p, cfg, now, now_ms)
        } else {
            (self.join_known_member(p, cfg, now, now_ms), Persist(false))
        }
    }

    fn join_new_member(
        &mut self,
        p: JoinParams,
        cfg: &GroupConfig,
        now: Instant,
        now_ms: i64,
    ) -> (Reply<JoinResult>, Persist) {
        let new_id = format!("{}-{}", p.client_id, uuid::Uuid::new_v4());
        if let Some(old_id) = p.instance_id.as_ref().and_then(|i| self.static_members.get(i)).cloned() {
            return self.replace_static_member(&old_id, new_id, p, cfg, now, now_ms);
        }
        if self.members.len() >= cfg.max_size {
            return (Reply::Now(JoinResult::error(code::GROUP_MAX_SIZE_REACHED, "")), Persist(false));
        }
        if p.instance_id.is_none() && p.require_known_member_id {
            self.pending.insert(new_id.clone(), now + Duration::from_millis(p.session_timeout_ms.max(0) as u64));
            return (Reply::Now(JoinResult::error(code::MEMBER_ID_REQUIRED, &new_id)), Persist(false));
        }
        (self.add_member_and_rebalance(new_id, p, cfg, now, now_ms), Persist(false))
    }

    /// A static member rejoining with an unknown member id: it takes over the old member's
    /// place under a new id. In a Stable group whose protocol does not change, nothing
    /// rebalances (KIP-345): the member gets the current generation back.
    fn replace_static_member(
        &mut self,
        old_id: &str,
        new_id: String,
        p: JoinParams,
        cfg: &GroupConfig,
        now: Instant,
        now_ms: i64,
    ) -> (Reply<JoinResult>, Persist) {
        let Some(mut member) = self.members.remove(old_id) else {
            return (Reply::Now(JoinResult::error(code::UNKNOWN_MEMBER_ID, "")), Persist(false));
        };
        // The old incarnation's waiting requests are fenced.
        if let Some(w) = member.join_waiter.take() {
            let _ = w.send(JoinResult::error(code::FENCED_INSTANCE_ID, old_id));
        }
        if let Some(w) = member.sync_waiter.take() {
            let _ = w.send(SyncResult::error(code::FENCED_INSTANCE_ID));
        }
        member.protocols = p.protocols.clone();
        member.member_id = new_id.clone();
        member.client_id = p.client_id.clone();
        member.client_host = p.client_host.clone();
        member.session_timeout = Duration::from_millis(p.session_timeout_ms.max(0) as u64);
        member.rebalance_timeout = Duration::from_millis(p.rebalance_timeout_ms.max(0) as u64);
        member.heartbeat_deadline = now + member.session_timeout;
        let instance = p.instance_id.clone().unwrap_or_default();
        self.static_members.insert(instance, new_id.clone());
        self.members.insert(new_id.clone(), member);
        let was_leader = self.leader.as_deref() == Some(old_id);
        if was_leader {
            self.leader = Some(new_id.clone());
        }
        match self.state {
            ClassicState::Stable if self.protocol.is_some() && self.select_protocol() == self.protocol => {
                let mut result = self.join_result_for(&new_id, was_leader);
                result.skip_assignment = was_leader;
                (Reply::Now(result), Persist(true))
            }
            ClassicState::Stable | ClassicState::CompletingRebalance => {
                let (tx, rx) = oneshot::channel();
                if let Some(m) = self.members.get_mut(&new_id) {
                    m.join_waiter = Some(tx);
                }
                let _ = self.prepare_rebalance(cfg, now, now_ms);
                (Reply::Wait(rx), Persist(false))
            }
            _ => {
                let (tx, rx) = oneshot::channel();
                if let Some(m) = self.members.get_mut(&new_id) {
                    m.join_waiter = Some(tx);
                }
                if self.state == ClassicState::Empty {
                    let _ = self.prepare_rebalance(cfg, now, now_ms);
                }
                let _ = self.try_complete_join(now, now_ms);
                (Reply::Wait(rx), Persist(false))
            }
        }
    }

    fn add_member_and_rebalance(
        &mut self,
        member_id: String,
        p: JoinParams,
        cfg: &GroupConfig,
        now: Instant,
        now_ms: i64,
    ) -> Reply<JoinResult> {
        let (tx, rx) = oneshot::channel();
        let session_timeout = Duration::from_millis(p.session_timeout_ms.max(0) as u64);
        if let Some(instance) = &p.instance_id {
            self.static_members.insert(instance.clone(), member_id.clone());
        }
        self.members.insert(
            member_id.clone(),
            ClassicMember {
                member_id: member_id.clone(),
                instance_id: p.instance_id,
                client_id: p.client_id,
                client_host: p.client_host,
                session_timeout,
                rebalance_timeout: Duration::from_millis(p.rebalance_timeout_ms.max(0) as u64),
                protocol_type: p.protocol_type.clone(),
                protocols: p.protocols,
                assignment: Bytes::new(),
                join_waiter: Some(tx),
                sync_waiter: None,
                synced: false,
                heartbeat_deadline: now + session_timeout,
            },
        );
        if self.protocol_type.is_none() {
            self.protocol_type = Some(p.protocol_type);
        }
        if self.leader.is_none() {
            self.leader = Some(member_id);
        }
        match self.state {
            ClassicState::PreparingRebalance => {
                // A new member during the initial delay extends it (up to its limit).
                if let Some((end, limit)) = self.initial_delay {
                    self.initial_delay = Some(((now + cfg.initial_rebalance_delay).min(limit).max(end), limit));
                }
                let _ = self.try_complete_join(now, now_ms);
            }
            _ => {
                let _ = self.prepare_rebalance(cfg, now, now_ms);
            }
        }
        Reply::Wait(rx)
    }

    fn join_known_member(&mut self, p: JoinParams, cfg: &GroupConfig, now: Instant, now_ms: i64) -> Reply<JoinResult> {
        let member_id = p.member_id.clone();
        if self.pending.remove(&member_id).is_some() {
            return self.add_member_and_rebalance(member_id, p, cfg, now, now_ms);
        }
        if self.static_fenced(p.instance_id.as_deref(), &member_id) {
            return Reply::Now(JoinResult::error(code::FENCED_INSTANCE_ID, &member_id));
        }
        let Some(member) = self.members.get_mut(&member_id) else {
            return Reply::Now(JoinResult::error(code::UNKNOWN_MEMBER_ID, &member_id));
        };
        let protocols_changed = member.protocols != p.protocols;
        member.session_timeout = Duration::from_millis(p.session_timeout_ms.max(0) as u64);
        member.rebalance_timeout = Duration::from_millis(p.rebalance_timeout_ms.max(0) as u64);
        member.heartbeat_deadline = now + member.session_timeout;
        match self.state {
            ClassicState::PreparingRebalance => {
                member.protocols = p.protocols;
                let (tx, rx) = oneshot::channel();
                if let Some(old) = member.join_waiter.replace(tx) {
                    let _ = old.send(JoinResult::error(code::REBALANCE_IN_PROGRESS, &member_id));
                }
                let _ = self.try_complete_join(now, now_ms);
                Reply::Wait(rx)
            }
            ClassicState::CompletingRebalance if !protocols_changed => {
                // The member lost its JoinGroup response: send it again.
                let is_leader = self.leader.as_deref() == Some(member_id.as_str());
                Reply::Now(self.join_result_for(&member_id, is_leader))
            }
            ClassicState::Stable if !protocols_changed && self.leader.as_deref() != Some(member_id.as_str()) => {
                Reply::Now(self.join_result_for(&member_id, false))
            }
            ClassicState::CompletingRebalance | ClassicState::Stable => {
                // The leader rejoining (e.g. for new partitions) or changed metadata: rebalance.
                member.protocols = p.protocols;
                let (tx, rx) = oneshot::channel();
                member.join_waiter = Some(tx);
                let _ = self.prepare_rebalance(cfg, now, now_ms);
                Reply::Wait(rx)
            }
            ClassicState::Empty => Reply::Now(JoinResult::error(code::UNKNOWN_MEMBER_ID, &member_id)),
            ClassicState::Dead => Reply::Now(JoinResult::error(code::COORDINATOR_NOT_AVAILABLE, &member_id)),
        }
    }

    fn prepare_rebalance(&mut self, cfg: &GroupConfig, now: Instant, now_ms: i64) -> Persist {
        if self.state == ClassicState::CompletingRebalance {
            // The assignment being synced is void: waiting followers learn so.
            for m in self.members.values_mut() {
                m.assignment = Bytes::new();
                if let Some(w) = m.sync_waiter.take() {
                    let _ = w.send(SyncResult::error(code::REBALANCE_IN_PROGRESS));
                }
            }
        }
        let max_rebalance = self.members.values().map(|m| m.rebalance_timeout).max().unwrap_or_default();
        if self.state == ClassicState::Empty && !cfg.initial_rebalance_delay.is_zero() {
            let limit = now + max_rebalance.max(cfg.initial_rebalance_delay);
            self.initial_delay = Some(((now + cfg.initial_rebalance_delay).min(limit), limit));
        } else {
            self.initial_delay = None;
        }
        self.join_deadline = Some(now + max_rebalance);
        self.sync_deadline = None;
        self.set_state(ClassicState::PreparingRebalance, now_ms);
        self.try_complete_join(now, now_ms)
    }

    /// Ends the join phase when every member has rejoined (or at the deadline).
    fn try_complete_join(&mut self, now: Instant, now_ms: i64) -> Persist {
        if self.state != ClassicState::PreparingRebalance {
            return Persist(false);
        }
        if let Some((end, _)) = self.initial_delay {
            if now < end {
                return Persist(false);
            }
        }
        let all_joined = self.pending.is_empty() && self.members.values().all(ClassicMember::awaiting_join);
        let expired = self.join_deadline.is_some_and(|d| now >= d);
        if all_joined || expired {
            return self.complete_join(now, now_ms);
        }
        Persist(false)
    }

    fn complete_join(&mut self, now: Instant, now_ms: i64) -> Persist {
        let missing: Vec<String> =
            self.members.values().filter(|m| !m.awaiting_join()).map(|m| m.member_id.clone()).collect();
        for id in missing {
            self.remove_member(&id);
        }
        self.initial_delay = None;
        self.join_deadline = None;
        self.generation += 1;
        if self.members.is_empty() {
            self.protocol = None;
            self.leader = None;
            self.set_state(ClassicState::Empty, now_ms);
            return Persist(true);
        }
        self.protocol = self.select_protocol();
        if self.leader.as_ref().is_none_or(|l| !self.members.contains_key(l)) {
            self.leader = self.members.keys().next().cloned();
        }
        self.set_state(ClassicState::CompletingRebalance, now_ms);
        let max_rebalance = self.members.values().map(|m| m.rebalance_timeout).max().unwrap_or_default();
        self.sync_deadline = Some(now + max_rebalance);
        let leader = self.leader.clone().unwrap_or_default();
        let results: Vec<(String, JoinResult)> =
            self.members.keys().map(|id| (id.clone(), self.join_result_for(id, *id == leader))).collect();
        for (id, result) in results {
            if let Some(m) = self.members.get_mut(&id) {
                m.synced = false;
                m.heartbeat_deadline = now + m.session_timeout;
                if let Some(w) = m.join_waiter.take() {
                    let _ = w.send(result);
                }
            }
        }
        Persist(false)
    }

    fn remove_member(&mut self, member_id: &str) {
        let Some(mut m) = self.members.remove(member_id) else { return };
        if let Some(w) = m.join_waiter.take() {
            let _ = w.send(JoinResult::error(code::UNKNOWN_MEMBER_ID, member_id));
        }
        if let Some(w) = m.sync_waiter.take() {
            let _ = w.send(SyncResult::error(code::UNKNOWN_MEMBER_ID));
        }
        if let Some(instance) = &m.instance_id {
            if self.static_members.get(instance).is_some_and(|id| id == member_id) {
                self.static_members.remove(instance);
            }
        }
        if self.leader.as_deref() == Some(member_id) {
            self.leader = self.members.keys().next().cloned();
        }
    }

    /// Removes a member (LeaveGroup, session expiry) and moves the group on.
    fn remove_member_and_update(&mut self, member_id: &str, cfg: &GroupConfig, now: Instant, now_ms: i64) -> Persist {
        self.remove_member(member_id);
        match self.state {
            ClassicState::Stable | ClassicState::CompletingRebalance => self.prepare_rebalance(cfg, now, now_ms),
            ClassicState::PreparingRebalance => self.try_complete_join(now, now_ms),
            ClassicState::Empty | ClassicState::Dead => Persist(false),
        }
    }

    /// SyncGroup. `assignments` is the leader's (empty from followers).
    pub fn sync(
        &mut self,
        member_id: &str,
        instance_id: Option<&str>,
        generation: i32,
        protocol_type: Option<&str>,
        protocol_name: Option<&str>,
        assignments: Vec<(String, Bytes)>,
    ) -> (Reply<SyncResult>, Persist) {
        let now_answer = |e| (Reply::Now(SyncResult::error(e)), Persist(false));
        if self.state == ClassicState::Dead {
            return now_answer(code::COORDINATOR_NOT_AVAILABLE);
        }
        if self.static_fenced(instance_id, member_id) {
            return now_answer(code::FENCED_INSTANCE_ID);
        }
        if !self.members.contains_key(member_id) {
            return now_answer(code::UNKNOWN_MEMBER_ID);
        }
        if generation != self.generation {
            return now_answer(code::ILLEGAL_GENERATION);
        }
        if protocol_type.is_some_and(|t| Some(t) != self.protocol_type.as_deref())
            || protocol_name.is_some_and(|n| Some(n) != self.protocol.as_deref())
        {
            return now_answer(code::INCONSISTENT_GROUP_PROTOCOL);
        }
        match self.state {
            ClassicState::Empty => now_answer(code::UNKNOWN_MEMBER_ID),
            ClassicState::PreparingRebalance => now_answer(code::REBALANCE_IN_PROGRESS),
            ClassicState::Stable => {
                let assignment = self.members.get(member_id).map(|m| m.assignment.clone()).unwrap_or_default();
                (Reply::Now(self.sync_ok(assignment)), Persist(false))
            }
            ClassicState::CompletingRebalance => {
                let (tx, rx) = oneshot::channel();
                let is_leader = self.leader.as_deref() == Some(member_id);
                if let Some(m) = self.members.get_mut(member_id) {
                    m.synced = true;
                    if let Some(old) = m.sync_waiter.replace(tx) {
                        let _ = old.send(SyncResult::error(code::REBALANCE_IN_PROGRESS));
                    }
                }
                if !is_leader {
                    return (Reply::Wait(rx), Persist(false));
                }
                let mut given: HashMap<String, Bytes> = assignments.into_iter().collect();
                for m in self.members.values_mut() {
                    m.assignment = given.remove(&m.member_id).unwrap_or_default();
                }
                // The coordinator stores the group, then calls `finish_sync`.
                (Reply::Wait(rx), Persist(true))
            }
            ClassicState::Dead => now_answer(code::COORDINATOR_NOT_AVAILABLE),
        }
    }

    fn sync_ok(&self, assignment: Bytes) -> SyncResult {
        SyncResult {
            error: code::NONE,
            protocol_type: self.protocol_type.clone(),
            protocol_name: self.protocol.clone(),
            assignment,
        }
    }

    /// After the leader's assignment was stored (`stored`) or could not be: answers every
    /// member waiting in SyncGroup.
    pub fn finish_sync(&mut self, stored: bool, cfg: &GroupConfig, now: Instant, now_ms: i64) {
        if self.state != ClassicState::CompletingRebalance {
            return;
        }
        if !stored {
            for m in self.members.values_mut() {
                if let Some(w) = m.sync_waiter.take() {
                    let _ = w.send(SyncResult::error(code::COORDINATOR_NOT_AVAILABLE));
                }
            }
            let _ = self.prepare_rebalance(cfg, now, now_ms);
            return;
        }
        self.sync_deadline = None;
        self.set_state(ClassicState::Stable, now_ms);
        let answers: Vec<(String, SyncResult)> =
            self.members.values().map(|m| (m.member_id.clone(), self.sync_ok(m.assignment.clone()))).collect();
        for (id, answer) in answers {
            if let Some(w) = self.members.get_mut(&id).and_then(|m| m.sync_waiter.take()) {
                let _ = w.send(answer);
            }
        }
    }

    /// Heartbeat: the error code Kafka returns.
    pub fn heartbeat(&mut self, member_id: &str, instance_id: Option<&str>, generation: i32, now: Instant) -> i16 {
        if self.state == ClassicState::Dead {
            return code::COORDINATOR_NOT_AVAILABLE;
        }
        if self.static_fenced(instance_id, member_id) {
            return code::FENCED_INSTANCE_ID;
        }
        let state = self.state;
        let current_generation = self.generation;
        let Some(member) = self.members.get_mut(member_id) else {
            return code::UNKNOWN_MEMBER_ID;
        };
        if generation != current_generation {
            return code::ILLEGAL_GENERATION;
        }
        match state {
            ClassicState::Empty => code::UNKNOWN_MEMBER_ID,
            ClassicState::PreparingRebalance => {
                member.heartbeat_deadline = now + member.session_timeout;
                code::REBALANCE_IN_PROGRESS
            }
            _ => {
                member.heartbeat_deadline = now + member.session_timeout;
                code::NONE
            }
        }
    }

    /// LeaveGroup for one member (by id, or by instance id when the member id is empty).
    pub fn leave(
        &mut self,
        member_id: &str,
        instance_id: Option<&str>,
        cfg: &GroupConfig,
        now: Instant,
        now_ms: i64,
    ) -> (i16, Persist) {
        if self.state == ClassicState::Dead {
            return (code::COORDINATOR_NOT_AVAILABLE, Persist(false));
        }
        let id = if member_id.is_empty() {
            match instance_id.and_then(|i| self.static_members.get(i)) {
                Some(id) => id.clone(),
                None => return (code::UNKNOWN_MEMBER_ID, Persist(false)),
            }
        } else {
            if self.static_fenced(instance_id, member_id) {
                return (code::FENCED_INSTANCE_ID, Persist(false));
            }
            member_id.to_owned()
        };
        if self.pending.remove(&id).is_some() {
            return (code::NONE, self.try_complete_join(now, now_ms));
        }
        if !self.members.contains_key(&id) {
            return (code::UNKNOWN_MEMBER_ID, Persist(false));
        }
        (code::NONE, self.remove_member_and_update(&id, cfg, now, now_ms))
    }

    /// Deadlines: expired sessions, pending members that never came back, the end of the
    /// join phase or initial delay, members that never synced.
    pub fn tick(&mut self, cfg: &GroupConfig, now: Instant, now_ms: i64) -> Persist {
        let mut persist = false;
        self.pending.retain(|_, deadline| *deadline > now);
        // Members waiting in JoinGroup or SyncGroup are alive: their request is the heartbeat.
        let expired: Vec<String> = self
            .members
            .values()
            .filter(|m| m.heartbeat_deadline <= now && !m.awaiting_join() && m.sync_waiter.is_none())
            .map(|m| m.member_id.clone())
            .collect();
        for id in expired {
            tracing::info!(member = %id, "group member's session expired");
            persist |= self.remove_member_and_update(&id, cfg, now, now_ms).0;
        }
        if self.state == ClassicState::CompletingRebalance && self.sync_deadline.is_some_and(|d| now >= d) {
            let unsynced: Vec<String> =
                self.members.values().filter(|m| !m.synced).map(|m| m.member_id.clone()).collect();
            for id in unsynced {
                self.remove_member(&id);
            }
            persist |= self.prepare_rebalance(cfg, now, now_ms).0;
        }
        persist |= self.try_complete_join(now, now_ms).0;
        Persist(persist)
    }

    /// Answers every waiting JoinGroup and SyncGroup with `error`.
    pub fn release_waiters(&mut self, error: i16) {
        for m in self.members.values_mut() {
            if let Some(w) = m.join_waiter.take() {
                let _ = w.send(JoinResult::error(error, &m.member_id));
            }
            if let Some(w) = m.sync_waiter.take() {
                let _ = w.send(SyncResult::error(error));
            }
        }
    }

    /// Deleting the group (DeleteGroups): Dead, and waiters are told.
    pub fn mark_dead(&mut self, now_ms: i64) {
        self.release_waiters(code::COORDINATOR_NOT_AVAILABLE);
        self.set_state(ClassicState::Dead, now_ms);
    }

    /// Validation of an OffsetCommit against this group (Kafka's rules).
    pub fn validate_commit(&self, member_id: &str, instance_id: Option<&str>, generation: i32) -> i16 {
        if self.state == ClassicState::Dead {
            return code::COORDINATOR_NOT_AVAILABLE;
        }
        if generation < 0 && self.state == ClassicState::Empty {
            return code::NONE; // admin tools and assign() consumers
        }
        if generation >= 0 || !member_id.is_empty() || instance_id.is_some() {
            if self.static_fenced(instance_id, member_id) {
                return code::FENCED_INSTANCE_ID;
            }
            if !self.members.contains_key(member_id) {
                return code::UNKNOWN_MEMBER_ID;
            }
            if generation != self.generation {
                return code::ILLEGAL_GENERATION;
            }
        } else if self.state != ClassicState::Empty {
            return code::UNKNOWN_MEMBER_ID;
        }
        if self.state == ClassicState::CompletingRebalance {
            return code::REBALANCE_IN_PROGRESS;
        }
        code::NONE
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg() -> GroupConfig {
        GroupConfig { initial_rebalance_delay: Duration::ZERO, ..GroupConfig::default() }
    }

    fn params(member_id: &str, instance: Option<&str>) -> JoinParams {
        JoinParams {
            member_id: member_id.into(),
            instance_id: instance.map(Into::into),
            client_id: "c".into(),
            client_host: "/127.0.0.1".into(),
            session_timeout_ms: 10_000,
            rebalance_timeout_ms: 20_000,
            protocol_type: "consumer".into(),
            protocols: vec![("range".into(), Bytes::from_static(b"m"))],
            require_known_member_id: true,
        }
    }

    fn now_result<T: std::fmt::Debug>(r: Reply<T>) -> T {
        match r {
            Reply::Now(t) => t,
            Reply::Wait(_) => panic!("expected an immediate answer"),
        }
    }

    fn waited<T>(r: Reply<T>) -> oneshot::Receiver<T> {
        match r {
            Reply::Wait(rx) => rx,
            Reply::Now(_) => panic!("expected to wait"),
        }
    }

    /// Joins a new member through MEMBER_ID_REQUIRED; returns its id and join receiver.
    fn join_new(g: &mut ClassicGroup, now: Instant) -> (String, oneshot::Receiver<JoinResult>) {
        let first = now_result(g.join(params("", None), &cfg(), now, 0).0);
        assert_eq!(first.error, code::MEMBER_ID_REQUIRED);
        let rx = waited(g.join(params(&first.member_id, None), &cfg(), now, 0).0);
        (first.member_id, rx)
    }

    #[test]
    fn two_members_join_sync_and_become_stable() {
        let now = Instant::now();
        let mut g = ClassicGroup::new(0);
        let (a, mut rx_a) = join_new(&mut g, now);
        // Alone and everyone joined: generation 1 at once.
        let ja = rx_a.try_recv().expect("join completes");
        assert_eq!((ja.error, ja.generation, ja.leader.as_str()), (code::NONE, 1, a.as_str()));
        assert_eq!(ja.members.len(), 1);
        let (reply, persist) = g.sync(&a, None, 1, Some("consumer"), Some("range"), vec![(a.clone(), "A".into())]);
        assert!(persist.0);
        let mut rx = waited(reply);
        g.finish_sync(true, &cfg(), now, 0);
        assert_eq!(rx.try_recv().expect("synced").assignment, Bytes::from_static(b"A"));
        assert_eq!(g.state, ClassicState::Stable);

        // A second member triggers a rebalance the first learns of by heartbeat.
        let (b, mut rx_b) = join_new(&mut g, now);
        assert_eq!(g.state, ClassicState::PreparingRebalance);
        assert_eq!(g.heartbeat(&a, None, 1, now), code::REBALANCE_IN_PROGRESS);
        assert!(rx_b.try_recv().is_err(), "waits for the first member to rejoin");
        let mut rx_a = waited(g.join(params(&a, None), &cfg(), now, 0).0);
        let (ja, jb) = (rx_a.try_recv().expect("a"), rx_b.try_recv().expect("b"));
        assert_eq!((ja.generation, jb.generation), (2, 2));
        assert_eq!(ja.members.len(), 2, "the leader gets every member");
        assert!(jb.members.is_empty());
        assert_eq!(g.heartbeat(&a, None, 1, now), code::ILLEGAL_GENERATION);
        assert_eq!(g.heartbeat(&b, None, 2, now), code::NONE);
        let mut rx_b = waited(g.sync(&b, None, 2, None, None, vec![]).0);
        let (reply, persist) = g.sync(&a, None, 2, None, None, vec![(a.clone(), "A".into()), (b.clone(), "B".into())]);
        assert!(persist.0);
        g.finish_sync(true, &cfg(), now, 0);
        assert_eq!(waited(reply).try_recv().expect("a").assignment, Bytes::from_static(b"A"));
        assert_eq!(rx_b.try_recv().expect("b").assignment, Bytes::from_static(b"B"));
        assert_eq!(g.heartbeat("nobody", None, 2, now), code::UNKNOWN_MEMBER_ID);
    }

    #[test]
    fn an_expired_session_removes_the_member_and_rebalances() {
        let now = Instant::now();
        let mut g = ClassicGroup::new(0);
        let (a, _rx) = join_new(&mut g, now);
        let _ = g.sync(&a, None, 1, None, None, vec![]);
        g.finish_sync(true, &cfg(), now, 0);
        let later = now + Duration::from_secs(11);
        let persist = g.tick(&cfg(), later, 0);
        assert!(persist.0, "an emptied group is stored");
        assert_eq!(g.state, ClassicState::Empty);
        assert_eq!(g.generation, 2);
    }

    #[test]
    fn a_static_member_rejoining_a_stable_group_causes_no_rebalance() {
        let now = Instant::now();
        let mut g = ClassicGroup::new(0);
        let mut rx = waited(g.join(params("", Some("i1")), &cfg(), now, 0).0);
        let old = rx.try_recv().expect("joined").member_id;
        let _ = g.sync(&old, Some("i1"), 1, None, None, vec![(old.clone(), "A".into())]);
        g.finish_sync(true, &cfg(), now, 0);
        // Restart: a new incarnation with an empty member id.
        let (reply, persist) = g.join(params("", Some("i1")), &cfg(), now, 0);
        let j = now_result(reply);
        assert!(persist.0);
        assert_eq!((j.error, j.generation), (code::NONE, 1));
        assert_ne!(j.member_id, old);
        assert_eq!(g.state, ClassicState::Stable);
        assert_eq!(g.heartbeat(&old, Some("i1"), 1, now), code::FENCED_INSTANCE_ID);
        let s = now_result(g.sync(&j.member_id, Some("i1"), 1, None, None, vec![]).0);
        assert_eq!(s.assignment, Bytes::from_static(b"A"));
    }

    #[test]
    fn commits_are_validated_like_kafka() {
        let now = Instant::now();
        let mut g = ClassicGroup::new(0);
        assert_eq!(g.validate_commit("", None, -1), code::NONE);
        let (a, _rx) = join_new(&mut g, now);
        assert_eq!(g.validate_commit(&a, None, 1), code::REBALANCE_IN_PROGRESS);
        let _ = g.sync(&a, None, 1, None, None, vec![]);
        g.finish_sync(true, &cfg(), now, 0);
        assert_eq!(g.validate_commit(&a, None, 1), code::NONE);
        assert_eq!(g.validate_commit(&a, None, 0), code::ILLEGAL_GENERATION);
        assert_eq!(g.validate_commit("x", None, 1), code::UNKNOWN_MEMBER_ID);
        assert_eq!(g.validate_commit("", None, -1), code::UNKNOWN_MEMBER_ID);
    }

    #[test]
    fn the_initial_delay_holds_the_first_rebalance() {
        let now = Instant::now();
        let cfg = GroupConfig { initial_rebalance_delay: Duration::from_millis(300), ..GroupConfig::default() };
        let mut g = ClassicGroup::new(0);
        let first = now_result(g.join(params("", None), &cfg, now, 0).0);
        let mut rx = waited(g.join(params(&first.member_id, None), &cfg, now, 0).0);
        assert!(rx.try_recv().is_err());
        let _ = g.tick(&cfg, now + Duration::from_millis(310), 0);
        assert_eq!(rx.try_recv().expect("completed by the timer").generation, 1);
    }
}
