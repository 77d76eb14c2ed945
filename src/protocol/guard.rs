//! Limits on request bodies checked before `kafka-protocol` decodes them.
//!
//! Together with the allocator (`crate::alloc`), which turns the crate's wire-sized
//! preallocations into harmless address-space reservations, these caps bound the memory a
//! request can make the broker use. A valid-looking array of N tiny elements still decodes
//! into N structs of ~100 bytes each: only Produce needs large frames, so every other API is
//! capped at [`SMALL_REQUEST_MAX_BYTES`].

use kafka_protocol::messages::ApiKey;

/// Largest body accepted for any API but Produce: 1 MiB holds ~30,000 topic names in a
/// Metadata request, far beyond real clients, and bounds decode amplification to ~100 MB.
pub const SMALL_REQUEST_MAX_BYTES: usize = 1 << 20;

/// Checks a request body's size for its API.
///
/// # Errors
/// A body larger than the API's cap.
pub fn check_body(api_key: ApiKey, _api_version: i16, body: &[u8]) -> anyhow::Result<()> {
    let cap = match api_key {
        ApiKey::Produce => usize::MAX, // bounded by socket.request.max.bytes
        _ => SMALL_REQUEST_MAX_BYTES,
    };
    if body.len() > cap {
        anyhow::bail!("{} byte body exceeds the {cap} byte limit for {api_key:?}", body.len());
    }
    Ok(())
}
