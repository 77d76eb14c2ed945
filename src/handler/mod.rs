//! One handler per Kafka API, reached through [`dispatch`], which has an arm for every entry of
//! [`crate::protocol::APIS`]. Handlers talk to the [`Broker`] (the replica manager), never to
//! logs directly, and report per-partition problems as Kafka error codes in the response.

use std::sync::Arc;

use kafka_protocol::messages::{RequestKind, ResponseKind};

use crate::broker::Broker;
use crate::server::timer::ConnectionTimer;

mod api_versions;
mod configs;
mod create_topics;
mod delete_topics;
mod fetch;
mod groups;
mod init_producer_id;
mod list_offsets;
mod metadata;
mod produce;
mod topics_admin;

/// What a handler knows about the request besides its body.
#[derive(Debug, Clone)]
pub struct RequestContext {
    pub api_version: i16,
    pub correlation_id: i32,
    /// Shares the request frame's bytes (no copy per request).
    pub client_id: Option<kafka_protocol::protocol::StrBytes>,
    /// The client's address (group members' CLIENT-HOST).
    pub client_host: std::net::IpAddr,
}

/// Kafka error codes used by handlers (the protocol guide's numbers).
pub mod code {
    pub const NONE: i16 = 0;
    pub const OFFSET_OUT_OF_RANGE: i16 = 1;
    pub const CORRUPT_MESSAGE: i16 = 2;
    pub const UNKNOWN_TOPIC_OR_PARTITION: i16 = 3;
    pub const OFFSET_METADATA_TOO_LARGE: i16 = 12;
    pub const COORDINATOR_NOT_AVAILABLE: i16 = 15;
    pub const NOT_COORDINATOR: i16 = 16;
    pub const INVALID_TOPIC_EXCEPTION: i16 = 17;
    pub const INVALID_REQUIRED_ACKS: i16 = 21;
    pub const ILLEGAL_GENERATION: i16 = 22;
    pub const INCONSISTENT_GROUP_PROTOCOL: i16 = 23;
    pub const INVALID_GROUP_ID: i16 = 24;
    pub const UNKNOWN_MEMBER_ID: i16 = 25;
    pub const INVALID_SESSION_TIMEOUT: i16 = 26;
    pub const REBALANCE_IN_PROGRESS: i16 = 27;
    pub const UNSUPPORTED_VERSION: i16 = 35;
    pub const TOPIC_ALREADY_EXISTS: i16 = 36;
    pub const INVALID_PARTITIONS: i16 = 37;
    pub const INVALID_REPLICATION_FACTOR: i16 = 38;
    pub const INVALID_REPLICA_ASSIGNMENT: i16 = 39;
    pub const INVALID_CONFIG: i16 = 40;
    pub const INVALID_REQUEST: i16 = 42;
    pub const UNSUPPORTED_FOR_MESSAGE_FORMAT: i16 = 43;
    pub const OUT_OF_ORDER_SEQUENCE_NUMBER: i16 = 45;
    pub const INVALID_PRODUCER_EPOCH: i16 = 47;
    pub const KAFKA_STORAGE_ERROR: i16 = 56;
    pub const NON_EMPTY_GROUP: i16 = 68;
    pub const GROUP_ID_NOT_FOUND: i16 = 69;
    pub const FENCED_LEADER_EPOCH: i16 = 74;
    pub const UNKNOWN_LEADER_EPOCH: i16 = 75;
    pub const MEMBER_ID_REQUIRED: i16 = 79;
    pub const GROUP_MAX_SIZE_REACHED: i16 = 81;
    pub const FENCED_INSTANCE_ID: i16 = 82;
    pub const GROUP_SUBSCRIBED_TO_TOPIC: i16 = 86;
    pub const INVALID_RECORD: i16 = 87;
    pub const UNKNOWN_TOPIC_ID: i16 = 100;
    pub const FENCED_MEMBER_EPOCH: i16 = 110;
    pub const UNRELEASED_INSTANCE_ID: i16 = 111;
    pub const UNSUPPORTED_ASSIGNOR: i16 = 112;
    pub const STALE_MEMBER_EPOCH: i16 = 113;
    pub const UNSUPPORTED_ENDPOINT_TYPE: i16 = 119;
    pub const INVALID_REGULAR_EXPRESSION: i16 = 128;
}

/// Runs the handler for `request`. `None` means "send no response" (Produce with acks=0).
/// Handlers report problems as Kafka error codes in their responses; nothing here closes
/// the connection. `timer` is the connection's (see [`ConnectionTimer`]), for handlers
/// that wait: a Fetch long poll.
pub async fn dispatch(
    broker: &Arc<Broker>,
    ctx: &RequestContext,
    request: RequestKind,
    timer: &mut ConnectionTimer,
) -> Option<ResponseKind> {
    Some(match request {
        RequestKind::ApiVersions(_) => ResponseKind::ApiVersions(api_versions::handle()),
        RequestKind::Metadata(r) => ResponseKind::Metadata(metadata::handle(broker, ctx, r).await),
        RequestKind::Produce(r) => ResponseKind::Produce(produce::handle(broker, ctx, r).await?),
        RequestKind::Fetch(r) => ResponseKind::Fetch(fetch::handle(broker, ctx, r, timer).await),
        RequestKind::ListOffsets(r) => ResponseKind::ListOffsets(list_offsets::handle(broker, ctx, r)),
        RequestKind::CreateTopics(r) => ResponseKind::CreateTopics(create_topics::handle(broker, ctx, r).await),
        RequestKind::DeleteTopics(r) => ResponseKind::DeleteTopics(delete_topics::handle(broker, ctx, r).await),
        RequestKind::InitProducerId(r) => ResponseKind::InitProducerId(init_producer_id::handle(broker, r).await),
        RequestKind::CreatePartitions(r) => {
            ResponseKind::CreatePartitions(topics_admin::create_partitions(broker, r).await)
        }
        RequestKind::DeleteRecords(r) => ResponseKind::DeleteRecords(topics_admin::delete_records(broker, r)),
        RequestKind::DescribeCluster(r) => {
            ResponseKind::DescribeCluster(topics_admin::describe_cluster(broker, ctx, r))
        }
        RequestKind::DescribeConfigs(r) => ResponseKind::DescribeConfigs(configs::describe_configs(broker, ctx, r)),
        RequestKind::AlterConfigs(r) => ResponseKind::AlterConfigs(configs::alter_configs(broker, r).await),
        RequestKind::IncrementalAlterConfigs(r) => {
            ResponseKind::IncrementalAlterConfigs(configs::incremental_alter_configs(broker, r).await)
        }
        RequestKind::FindCoordinator(r) => {
            ResponseKind::FindCoordinator(groups::find_coordinator(broker, ctx, r).await)
        }
        RequestKind::JoinGroup(r) => ResponseKind::JoinGroup(groups::join_group(broker, ctx, r).await),
        RequestKind::SyncGroup(r) => ResponseKind::SyncGroup(groups::sync_group(broker, ctx, r).await),
        RequestKind::Heartbeat(r) => ResponseKind::Heartbeat(groups::heartbeat(broker, r).await),
        RequestKind::LeaveGroup(r) => ResponseKind::LeaveGroup(groups::leave_group(broker, ctx, r).await),
        RequestKind::OffsetCommit(r) => ResponseKind::OffsetCommit(groups::offset_commit(broker, ctx, r).await),
        RequestKind::OffsetFetch(r) => ResponseKind::OffsetFetch(groups::offset_fetch(broker, ctx, r).await),
        RequestKind::ListGroups(r) => ResponseKind::ListGroups(groups::list_groups(broker, ctx, r).await),
        RequestKind::DescribeGroups(r) => ResponseKind::DescribeGroups(groups::describe_groups(broker, ctx, r).await),
        RequestKind::DeleteGroups(r) => ResponseKind::DeleteGroups(groups::delete_groups(broker, r).await),
        RequestKind::OffsetDelete(r) => ResponseKind::OffsetDelete(groups::offset_delete(broker, r).await),
        RequestKind::ConsumerGroupHeartbeat(r) => {
            ResponseKind::ConsumerGroupHeartbeat(groups::consumer_group_heartbeat(broker, ctx, r).await)
        }
        RequestKind::ConsumerGroupDescribe(r) => {
            ResponseKind::ConsumerGroupDescribe(groups::consumer_group_describe(broker, ctx, r).await)
        }
        other => {
            // parse_request only lets through APIs in the table; a table entry without an arm
            // here is a bug that the tests in this module catch.
            tracing::error!(request = ?std::mem::discriminant(&other), "no handler for a table entry");
            return None;
        }
    })
}

/// Runs blocking broker work (file I/O) off the async workers.
async fn blocking<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> Option<T> {
    tokio::task::spawn_blocking(f).await.ok()
}

#[cfg(test)]
mod tests {
    use crate::protocol::APIS;
    use kafka_protocol::messages::ApiKey;

    #[test]
    fn every_table_entry_has_a_handler_arm() {
        // Keep in step with `dispatch`: adding an API means adding it in both places.
        let handled = [
            ApiKey::ApiVersions,
            ApiKey::Metadata,
            ApiKey::Produce,
            ApiKey::Fetch,
            ApiKey::ListOffsets,
            ApiKey::CreateTopics,
            ApiKey::DeleteTopics,
            ApiKey::InitProducerId,
            ApiKey::CreatePartitions,
            ApiKey::DeleteRecords,
            ApiKey::DescribeCluster,
            ApiKey::DescribeConfigs,
            ApiKey::AlterConfigs,
            ApiKey::IncrementalAlterConfigs,
            ApiKey::FindCoordinator,
            ApiKey::JoinGroup,
            ApiKey::SyncGroup,
            ApiKey::Heartbeat,
            ApiKey::LeaveGroup,
            ApiKey::OffsetCommit,
            ApiKey::OffsetFetch,
            ApiKey::ListGroups,
            ApiKey::DescribeGroups,
            ApiKey::DeleteGroups,
            ApiKey::OffsetDelete,
            ApiKey::ConsumerGroupHeartbeat,
            ApiKey::ConsumerGroupDescribe,
        ];
        for spec in APIS {
            assert!(handled.contains(&spec.key), "{:?} is advertised but not dispatched", spec.key);
        }
        assert_eq!(handled.len(), APIS.len());
    }
}
