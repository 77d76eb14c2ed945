//! Operator subcommands. Each returns an exit code; output goes to stdout, diagnostics to
//! stderr. Uses `anyhow` for context, as a command-line front end.
//!
//! Exit codes: 0 success; 1 the broker refused (a Kafka error code, see [`Refused`]) or the
//! data is damaged; 2 usage and connection errors (any other `Err`, mapped in `main.rs`).
//!
//! This module also holds what every subcommand shares: the output [`Format`], the aligned
//! text [`Table`], Kafka error names, and [`run_async`] for commands that talk to a broker.

pub mod cluster;
pub mod consume;
pub mod group;
pub mod health;
pub mod log;
pub mod offsets;
pub mod produce;
pub mod reset_offsets;
pub mod topic;

use std::future::Future;
use std::io::Write;

use anyhow::Context;
use kafka_protocol::error::{ParseResponseErrorCode, ResponseError};

/// Exit code when the broker refused a request (or a precondition such as "the group is
/// empty" does not hold).
pub const EXIT_REFUSED: i32 = 1;

/// Output format shared by every subcommand.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// Aligned, human-readable text.
    Text,
    /// JSON for scripts.
    Json,
}

/// The broker said no: a Kafka error code for the request, or a state the command will not
/// act on. Commands exit with [`EXIT_REFUSED`] on it (see [`run_async`]).
#[derive(Debug, thiserror::Error)]
pub enum Refused {
    /// `what` failed with a Kafka error code.
    #[error("{what}: {}", describe_error(*code))]
    Code { what: String, code: i16 },
    /// The cluster is not in a state the command acts on (for example a group with members).
    #[error("{0}")]
    State(String),
}

/// Kafka's name for an error code, e.g. `NON_EMPTY_GROUP` for 68, `NONE` for 0.
pub fn error_name(code: i16) -> String {
    match code.err() {
        None => "NONE".to_owned(),
        Some(ResponseError::Unknown(code)) => format!("UNKNOWN_ERROR_CODE_{code}"),
        // The variants are Kafka's names in CamelCase (NonEmptyGroup), without acronyms.
        Some(e) => screaming_snake_case(&format!("{e:?}")),
    }
}

/// What an operator can do about the error codes the tools meet most often.
pub fn hint(code: i16) -> Option<&'static str> {
    use ResponseError as E;
    Some(match code.err()? {
        E::NonEmptyGroup => "group has active members; stop its consumers first",
        E::UnknownMemberId | E::IllegalGeneration | E::RebalanceInProgress => {
            "the group has active members; stop its consumers first"
        }
        E::GroupIdNotFound => "no such group (see `weir group list`)",
        E::InvalidGroupId => "not a valid group id",
        E::CoordinatorNotAvailable | E::CoordinatorLoadInProgress | E::NotCoordinator => {
            "the group coordinator is starting or moving; try again in a few seconds"
        }
        E::UnknownTopicOrPartition => "no such topic or partition",
        E::LeaderNotAvailable | E::NotLeaderOrFollower => "the partition has no leader right now; try again",
        E::GroupAuthorizationFailed | E::TopicAuthorizationFailed | E::ClusterAuthorizationFailed => {
            "this client is not authorized"
        }
        E::UnsupportedVersion => "the broker does not support this request version",
        _ => return None,
    })
}

/// `NAME (code): hint`, or `NAME (code)` for codes without a hint.
pub fn describe_error(code: i16) -> String {
    match hint(code) {
        Some(hint) => format!("{} ({code}): {hint}", error_name(code)),
        None => format!("{} ({code})", error_name(code)),
    }
}

fn screaming_snake_case(camel: &str) -> String {
    let mut out = String::with_capacity(camel.len() + 8);
    for (i, c) in camel.chars().enumerate() {
        if c.is_ascii_uppercase() && i > 0 {
            out.push('_');
        }
        out.push(c.to_ascii_uppercase());
    }
    out
}

/// Runs a command that talks to brokers on a single-threaded runtime (one request at a
/// time needs no more) and turns [`Refused`] anywhere in the error chain into
/// [`EXIT_REFUSED`], printed to stderr.
///
/// # Errors
/// Any error of `command` other than [`Refused`], and a runtime that cannot start.
pub fn run_async(command: impl Future<Output = anyhow::Result<i32>>) -> anyhow::Result<i32> {
    let runtime =
        tokio::runtime::Builder::new_current_thread().enable_all().build().context("cannot start the runtime")?;
    match runtime.block_on(command) {
        Err(e) if e.chain().any(|cause| cause.is::<Refused>()) => {
            eprintln!("error: {e:#}");
            Ok(EXIT_REFUSED)
        }
        other => other,
    }
}

/// An aligned text table: UPPER-CASE hyphenated headers, left-aligned cells, two spaces
/// between columns, no trailing spaces (what Kafka's command-line tools print).
#[derive(Debug, Clone)]
pub struct Table {
    headers: Vec<&'static str>,
    rows: Vec<Vec<String>>,
}

impl Table {
    /// A table with these column headers.
    pub fn new(headers: &[&'static str]) -> Table {
        Table { headers: headers.to_vec(), rows: Vec::new() }
    }

    /// Appends a row.
    ///
    /// # Panics
    /// When the row does not have one cell per header (a bug in the caller).
    pub fn row(&mut self, cells: Vec<String>) {
        assert_eq!(cells.len(), self.headers.len(), "one cell per column");
        self.rows.push(cells);
    }

    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }

    /// Writes the header line and every row.
    ///
    /// # Errors
    /// Errors of `out`.
    pub fn write(&self, out: &mut impl Write) -> std::io::Result<()> {
        let mut widths: Vec<usize> = self.headers.iter().map(|h| h.chars().count()).collect();
        for row in &self.rows {
            for (w, cell) in widths.iter_mut().zip(row) {
                *w = (*w).max(cell.chars().count());
            }
        }
        let headers = self.headers.iter().map(|h| h.to_string()).collect::<Vec<_>>();
        for row in std::iter::once(&headers).chain(&self.rows) {
            let mut line = String::new();
            for (i, (cell, width)) in row.iter().zip(&widths).enumerate() {
                if i > 0 {
                    line.push_str("  ");
                }
                line.push_str(cell);
                if i + 1 < row.len() {
                    line.extend(std::iter::repeat_n(' ', width - cell.chars().count()));
                }
            }
            writeln!(out, "{}", line.trim_end())?;
        }
        Ok(())
    }
}

/// `value` as a table cell, `-` for none.
pub fn cell<T: std::fmt::Display>(value: Option<T>) -> String {
    value.map_or_else(|| "-".to_owned(), |v| v.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tables_align_columns_with_two_spaces_and_no_trailing_blanks() {
        let mut t = Table::new(&["TOPIC", "PARTITION", "MEMBER-ID"]);
        t.row(vec!["orders".into(), "0".into(), "consumer-1".into()]);
        t.row(vec!["a".into(), "12".into(), "-".into()]);
        let mut out = Vec::new();
        t.write(&mut out).expect("write");
        let text = String::from_utf8(out).expect("utf-8");
        assert_eq!(
            text,
            "TOPIC   PARTITION  MEMBER-ID\n\
             orders  0          consumer-1\n\
             a       12         -\n"
        );
    }

    #[test]
    fn a_table_without_rows_prints_its_headers() {
        let mut out = Vec::new();
        Table::new(&["GROUP", "STATE"]).write(&mut out).expect("write");
        assert_eq!(String::from_utf8(out).expect("utf-8"), "GROUP  STATE\n");
    }

    #[test]
    fn wide_characters_count_once() {
        let mut t = Table::new(&["A", "B"]);
        t.row(vec!["é".into(), "x".into()]);
        let mut out = Vec::new();
        t.write(&mut out).expect("write");
        assert_eq!(String::from_utf8(out).expect("utf-8"), "A  B\né  x\n");
    }

    #[test]
    fn error_codes_have_kafkas_names() {
        assert_eq!(error_name(0), "NONE");
        assert_eq!(error_name(68), "NON_EMPTY_GROUP");
        assert_eq!(error_name(69), "GROUP_ID_NOT_FOUND");
        assert_eq!(error_name(3), "UNKNOWN_TOPIC_OR_PARTITION");
        assert_eq!(error_name(-1), "UNKNOWN_SERVER_ERROR");
        assert_eq!(error_name(30000), "UNKNOWN_ERROR_CODE_30000");
        assert_eq!(describe_error(68), "NON_EMPTY_GROUP (68): group has active members; stop its consumers first");
        assert_eq!(describe_error(87), "INVALID_RECORD (87)");
    }

    #[test]
    fn refusals_anywhere_in_the_chain_exit_1_and_other_errors_stay_errors() {
        let refused = run_async(async {
            let e = Refused::Code { what: "DeleteGroups g".into(), code: 68 };
            Err(anyhow::Error::new(e).context("deleting"))
        });
        assert_eq!(refused.expect("mapped to an exit code"), EXIT_REFUSED);
        assert!(run_async(async { anyhow::bail!("usage") }).is_err());
        assert_eq!(run_async(async { Ok(0) }).expect("ok"), 0);
    }
}
