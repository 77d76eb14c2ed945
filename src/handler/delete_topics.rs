//! DeleteTopics: by name (v0–5) or by name or topic id (v6).

use std::sync::Arc;

use kafka_protocol::messages::delete_topics_response::DeletableTopicResult;
use kafka_protocol::messages::{DeleteTopicsRequest, DeleteTopicsResponse, TopicName};
use kafka_protocol::protocol::StrBytes;
use uuid::Uuid;

use super::{blocking, code, RequestContext};
use crate::broker::{Broker, TopicError};

pub async fn handle(broker: &Arc<Broker>, ctx: &RequestContext, req: DeleteTopicsRequest) -> DeleteTopicsResponse {
    // (name, id) pairs to delete: names resolved from ids where needed.
    let targets: Vec<(Option<String>, Uuid)> = if ctx.api_version >= 6 {
        req.topics
            .into_iter()
            .map(|t| match t.name {
                Some(n) => {
                    let n = n.0.to_string();
                    let id = broker.topic(&n).and_then(|m| m.topic_id).unwrap_or_default();
                    (Some(n), id)
                }
                None => (broker.topic_by_id(t.topic_id).map(|m| m.name), t.topic_id),
            })
            .collect()
    } else {
        req.topic_names.into_iter().map(|n| (Some(n.0.to_string()), Uuid::nil())).collect()
    };
    let mut responses = Vec::with_capacity(targets.len());
    for (name, id) in targets {
        let result = DeletableTopicResult::default()
            .with_name(name.clone().map(|n| TopicName(StrBytes::from_string(n))))
            .with_topic_id(id);
        let Some(name) = name else {
            responses.push(result.with_error_code(code::UNKNOWN_TOPIC_ID));
            continue;
        };
        let b = Arc::clone(broker);
        let error = match blocking(move || b.delete_topic(&name)).await {
            Some(Ok(())) => code::NONE,
            Some(Err(TopicError::Unknown(_))) => code::UNKNOWN_TOPIC_OR_PARTITION,
            Some(Err(e)) => {
                tracing::warn!(error = %e, "topic deletion failed");
                code::KAFKA_STORAGE_ERROR
            }
            None => code::KAFKA_STORAGE_ERROR,
        };
        responses.push(result.with_error_code(error));
    }
    DeleteTopicsResponse::default().with_responses(responses)
}
