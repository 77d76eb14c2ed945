//! ApiVersions: the supported versions, straight from [`crate::protocol::APIS`].

use kafka_protocol::messages::api_versions_response::ApiVersion;
use kafka_protocol::messages::ApiVersionsResponse;

use crate::protocol::APIS;

pub fn handle() -> ApiVersionsResponse {
    let keys = APIS
        .iter()
        .map(|s| ApiVersion::default().with_api_key(s.key as i16).with_min_version(s.min).with_max_version(s.max))
        .collect();
    ApiVersionsResponse::default().with_error_code(0).with_api_keys(keys)
}
