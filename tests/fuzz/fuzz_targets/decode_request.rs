//! Any bytes as a complete request frame (the 4-byte size prefix already stripped), through
//! everything the broker does before a handler runs. It must return, whatever the input.
#![no_main]

use libfuzzer_sys::fuzz_target;

/// The broker's allocator, as in `weir serve`.
#[global_allocator]
static ALLOC: weir::alloc::WeirAlloc = weir::alloc::WeirAlloc;

fuzz_target!(|data: &[u8]| {
    let _ = weir::protocol::decode_request(bytes::Bytes::copy_from_slice(data));
});
