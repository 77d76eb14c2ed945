//! InitProducerId: a new producer id (epoch 0) for an idempotent producer. Transactional
//! producers (a transactional id) are not supported yet: COORDINATOR_NOT_AVAILABLE.

use std::sync::Arc;

use kafka_protocol::messages::{InitProducerIdRequest, InitProducerIdResponse, ProducerId};

use super::{blocking, code};
use crate::broker::Broker;

pub async fn handle(broker: &Arc<Broker>, req: InitProducerIdRequest) -> InitProducerIdResponse {
    let failed = |error| {
        InitProducerIdResponse::default()
            .with_error_code(error)
            .with_producer_id(ProducerId(-1))
            .with_producer_epoch(-1)
    };
    if req.transactional_id.is_some() {
        return failed(code::COORDINATOR_NOT_AVAILABLE);
    }
    let b = Arc::clone(broker);
    match blocking(move || b.allocate_producer_id()).await {
        Some(Ok(id)) => InitProducerIdResponse::default().with_producer_id(ProducerId(id)).with_producer_epoch(0),
        Some(Err(e)) => {
            tracing::error!(error = %e, "cannot allocate a producer id");
            failed(code::KAFKA_STORAGE_ERROR)
        }
        None => failed(code::KAFKA_STORAGE_ERROR),
    }
}
