//! Integration tests: one crate that drives weir the way operators and crashes do — the real
//! `weir` binary for the CLI, real child processes killed with SIGKILL, a real full disk.

mod admin;
mod cli_log;
mod crash;
mod disk_full;
mod fixtures;
mod hostile;
mod idempotence;
mod observability;
mod produce_fetch;
mod util;
