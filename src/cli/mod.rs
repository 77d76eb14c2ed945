//! Operator subcommands. Each returns an exit code; output goes to stdout, diagnostics to
//! stderr. Uses `anyhow` for context, as a command-line front end.
//!
//! Exit codes: 0 success; 1 the broker refused (a Kafka error code, see [`Refused`]) or the
//! data is damaged; 2 usage and connection errors (any other `Err`, mapped in `main.rs`);
//! 10 `weir cluster health` found the cluster unhealthy ([`EXIT_UNHEALTHY`]).
//!
//! This module also holds what every subcommand shares: the output [`Format`], the aligned
//! text [`Table`] and underlined [`write_section`] titles, [`write_json`], Kafka error names
//! and the text of a refusal ([`explain`]), the JSON form of an error code ([`ErrorJson`]),
//! and [`run_async`] for commands that talk to a broker. It sends no requests itself.

pub mod bench;
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
use serde::Serialize;

/// Exit code when the broker refused a request (or a precondition such as "the group is
/// empty" does not hold).
pub const EXIT_REFUSED: i32 = 1;

/// Exit code of `weir cluster health` when the cluster is not healthy (as `rpk`).
pub const EXIT_UNHEALTHY: i32 = 10;

/// Metadata v9 (flexible, with cluster id, controller, racks and `is_internal`): served by
/// Kafka 2.4+ and weir. What the cluster-wide commands send ([`health`], [`cluster`]). Topic
/// administration sends v10, the first with topic ids.
pub const METADATA_VERSION: i16 = 9;

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
    /// `what` failed with a Kafka error code, from an API that carries no message.
    #[error("{what}: {}", describe_error(*code))]
    Code { what: String, code: i16 },
    /// `what` failed with a Kafka error code and the broker's own message, which is often the
    /// most useful part ("Invalid value x for configuration retention.ms"). Displayed as
    /// `what: NAME (code): message; hint`, see [`explain`].
    #[error("{what}: {}", explain(*code, message.as_deref(), *hint))]
    Broker {
        what: String,
        code: i16,
        /// The broker's error message, when it sent one.
        message: Option<String>,
        /// What to do about it: the command's own hint for `code`, else [`hint`].
        hint: Option<&'static str>,
    },
    /// The cluster is not in a state the command acts on (for example a group with members).
    #[error("{0}")]
    State(String),
}

impl Refused {
    /// `what` failed with `code` and the broker's `message`, with the shared [`hint`].
    pub fn broker(what: impl Into<String>, code: i16, message: Option<&str>) -> Refused {
        Refused::Broker { what: what.into(), code, message: message.map(str::to_owned), hint: hint(code) }
    }

    /// The Kafka error code, unless the refusal is a [`Refused::State`].
    pub fn code(&self) -> Option<i16> {
        match self {
            Refused::Code { code, .. } | Refused::Broker { code, .. } => Some(*code),
            Refused::State(_) => None,
        }
    }
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
    explain(code, None, hint(code))
}

/// `NAME (code): broker message; hint`, with the parts that exist: the broker's message
/// without surrounding blanks or a final period, and the hint as given.
pub fn explain(code: i16, message: Option<&str>, hint: Option<&str>) -> String {
    let message = message.map(|m| m.trim().trim_end_matches('.')).filter(|m| !m.is_empty());
    let parts: Vec<&str> = message.into_iter().chain(hint).collect();
    if parts.is_empty() {
        format!("{} ({code})", error_name(code))
    } else {
        format!("{} ({code}): {}", error_name(code), parts.join("; "))
    }
}

/// A Kafka error code in JSON output: `{"code", "name", "hint"}`. (`weir topic`, whose
/// admin APIs also return the broker's message, has its own with a `message`.)
#[derive(Debug, Serialize)]
pub struct ErrorJson {
    pub code: i16,
    pub name: String,
    pub hint: Option<&'static str>,
}

impl ErrorJson {
    /// `None` for 0 (no error).
    pub fn new(code: i16) -> Option<ErrorJson> {
        (code != 0).then(|| ErrorJson { code, name: error_name(code), hint: hint(code) })
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

/// `value` as pretty-printed JSON and a newline: what `--format json` prints.
///
/// # Errors
/// Errors of `out`, and values serde cannot serialize (a bug in the caller).
pub fn write_json(out: &mut impl Write, value: &impl Serialize) -> std::io::Result<()> {
    serde_json::to_writer_pretty(&mut *out, value)?;
    writeln!(out)
}

/// A title underlined with `=`, as rpk prints its sections.
///
/// # Errors
/// Errors of `out`.
pub fn write_section(out: &mut (impl Write + ?Sized), title: &str) -> std::io::Result<()> {
    writeln!(out, "{title}\n{}", "=".repeat(title.len()))
}

/// `host:port`, bracketing IPv6 literals.
pub fn host_port(host: &str, port: i32) -> String {
    if host.contains(':') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    }
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
    fn refusals_name_the_error_the_broker_message_and_what_to_do() {
        assert_eq!(
            explain(40, Some("Invalid value x for configuration retention.ms."), Some("check the value")),
            "INVALID_CONFIG (40): Invalid value x for configuration retention.ms; check the value"
        );
        assert_eq!(explain(87, None, None), "INVALID_RECORD (87)");
        assert_eq!(explain(15, Some(" "), hint(15)), describe_error(15));
        let refused = Refused::broker("DescribeCluster from h:9092", 31, Some("Cluster authorization failed."));
        assert_eq!(refused.code(), Some(31));
        assert_eq!(
            refused.to_string(),
            "DescribeCluster from h:9092: CLUSTER_AUTHORIZATION_FAILED (31): Cluster authorization failed; \
             this client is not authorized"
        );
        assert_eq!(Refused::State("no".into()).code(), None);
    }

    #[test]
    fn addresses_bracket_ipv6_literals() {
        assert_eq!(host_port("broker-1", 9092), "broker-1:9092");
        assert_eq!(host_port("::1", 9092), "[::1]:9092");
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
