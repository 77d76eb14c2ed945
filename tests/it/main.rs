//! Integration tests: one crate that drives weir the way operators and crashes do — the real
//! `weir` binary for the CLI, real child processes killed with SIGKILL, a real full disk.

mod admin;
mod cli_bench;
mod cli_group;
mod cli_log;
mod cli_ops;
mod cli_produce_consume;
mod cli_topic;
mod compaction;
mod crash;
mod disk_full;
mod fixtures;
mod fuzz_replay;
mod group_protocol;
mod groups;
mod hostile;
mod idempotence;
mod observability;
mod produce_fetch;
mod resp;
mod util;

/// The broker's allocator, so that replayed hostile inputs behave as in `weir serve`.
#[global_allocator]
static ALLOC: weir::alloc::WeirAlloc = weir::alloc::WeirAlloc;
