//! What both benches print: the live progress bar on stderr, the aligned text summary and
//! the JSON numbers on stdout (their shapes are in the [`super`] docs). It measures nothing.

use std::io::{IsTerminal, Write};
use std::time::Duration;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use serde::Serialize;

use super::histogram::Histogram;
use crate::cli::Table;

/// The percentiles of [`Latency`] in its order: (text header, parts per million).
const PERCENTILES: [(&str, u32); 4] = [("P50", 500_000), ("P95", 950_000), ("P99", 990_000), ("P99.9", 999_000)];

/// Latency percentiles and mean in milliseconds; `None` without samples.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub(crate) struct Latency {
    pub(crate) mean: Option<f64>,
    pub(crate) p50: Option<f64>,
    pub(crate) p95: Option<f64>,
    pub(crate) p99: Option<f64>,
    pub(crate) p999: Option<f64>,
    pub(crate) max: Option<f64>,
}

impl Latency {
    /// The percentiles of a histogram of microseconds, in milliseconds (three decimals: the
    /// microsecond the samples have).
    pub(crate) fn from_micros(h: &Histogram) -> Latency {
        Latency::scaled(h, 1000.0)
    }

    /// The percentiles of a histogram of milliseconds (record timestamps have no more).
    pub(crate) fn from_millis(h: &Histogram) -> Latency {
        Latency::scaled(h, 1.0)
    }

    fn scaled(h: &Histogram, per_ms: f64) -> Latency {
        let ms = |v: Option<u64>| v.map(|v| round(v as f64 / per_ms, 3));
        let [p50, p95, p99, p999] = PERCENTILES.map(|(_, q)| ms(h.quantile(q)));
        let mean = h.mean().map(|v| round(v / per_ms, 3));
        Latency { mean, p50, p95, p99, p999, max: ms(h.max()) }
    }

    fn cells(&self) -> Vec<String> {
        [self.mean, self.p50, self.p95, self.p99, self.p999, self.max]
            .iter()
            .map(|v| v.map_or_else(|| "-".to_owned(), |v| format!("{v:.3}")))
            .collect()
    }
}

/// What both summaries begin with: the topic, what was done and how fast (its JSON fields
/// come first in both objects; see the [`super`] docs).
#[derive(Debug, Serialize)]
pub(crate) struct Throughput {
    topic: String,
    pub(crate) records: u64,
    pub(crate) bytes: u64,
    elapsed_ms: u64,
    records_per_sec: f64,
    mb_per_sec: f64,
    #[serde(skip)]
    elapsed: Duration,
}

impl Throughput {
    /// `records` of `topic` with `bytes` of keys and values, done in `elapsed`.
    pub(crate) fn new(topic: &str, records: u64, bytes: u64, elapsed: Duration) -> Throughput {
        let (records_per_sec, mb_per_sec) = rates(records, bytes, elapsed);
        Throughput {
            topic: topic.to_owned(),
            records,
            bytes,
            elapsed_ms: elapsed.as_millis() as u64,
            records_per_sec,
            mb_per_sec,
            elapsed,
        }
    }

    /// The first `KEY  value` lines of a text summary, with `records` and `bytes` as the
    /// bench words them.
    pub(crate) fn fields(&self, records: String, bytes: String) -> Vec<(&'static str, String)> {
        vec![
            ("TOPIC", self.topic.clone()),
            ("RECORDS", records),
            ("BYTES", bytes),
            ("ELAPSED", seconds(self.elapsed)),
            ("RECORDS/S", format!("{:.1}", self.records_per_sec)),
            ("MB/S", format!("{:.3}", self.mb_per_sec)),
        ]
    }
}

/// Count per second and MB (10^6 bytes, as `weir produce` prints) per second over `elapsed`;
/// zero for a run too short to time.
pub(crate) fn rates(records: u64, bytes: u64, elapsed: Duration) -> (f64, f64) {
    let secs = elapsed.as_secs_f64();
    if secs <= 0.0 {
        return (0.0, 0.0);
    }
    (round(records as f64 / secs, 1), round(bytes as f64 / 1e6 / secs, 3))
}

/// `x` rounded to `digits` decimals, so JSON shows no float noise.
pub(crate) fn round(x: f64, digits: i32) -> f64 {
    let scale = 10f64.powi(digits);
    (x * scale).round() / scale
}

/// `KEY  value` lines, values aligned, keys UPPER-CASE as the tables' headers.
pub(crate) fn write_fields(out: &mut impl Write, fields: &[(&str, String)]) -> std::io::Result<()> {
    let width = fields.iter().map(|(k, _)| k.len()).max().unwrap_or(0);
    for (key, value) in fields {
        writeln!(out, "{key:<width$}  {value}")?;
    }
    Ok(())
}

/// A blank line, then one row per latency: `LATENCY-MS  MEAN  P50  P95  P99  P99.9  MAX`.
pub(crate) fn write_latencies(out: &mut impl Write, rows: &[(&str, Latency)]) -> std::io::Result<()> {
    let mut headers = vec!["LATENCY-MS", "MEAN"];
    headers.extend(PERCENTILES.map(|(header, _)| header));
    headers.push("MAX");
    let mut table = Table::new(&headers);
    for (name, latency) in rows {
        let mut row = vec![(*name).to_owned()];
        row.extend(latency.cells());
        table.row(row);
    }
    writeln!(out)?;
    table.write(out)
}

/// `value` as one line of JSON on stdout.
///
/// # Errors
/// Writing to stdout failed.
pub(crate) fn print_json(value: &impl Serialize) -> anyhow::Result<()> {
    let mut out = std::io::stdout().lock();
    serde_json::to_writer(&mut out, value)?;
    writeln!(out)?;
    Ok(())
}

/// A run length as text: `12.345 s`.
pub(crate) fn seconds(elapsed: Duration) -> String {
    format!("{:.3} s", elapsed.as_secs_f64())
}

/// The live progress bar: drawn on stderr when stderr is a terminal, otherwise nothing at
/// all (so logs and pipes get only the summary).
#[derive(Debug)]
pub(crate) struct Progress {
    bar: ProgressBar,
}

impl Progress {
    /// A bar of `total` records (with rate and ETA), or without a known total a counter with
    /// rate and elapsed time.
    pub(crate) fn new(total: Option<u64>) -> Progress {
        if !std::io::stderr().is_terminal() {
            return Progress { bar: ProgressBar::hidden() };
        }
        let template = match total {
            Some(_) => "{wide_bar} {human_pos}/{human_len} records  {per_sec:0}  ETA {eta}",
            None => "{spinner} {human_pos} records  {per_sec:0}  {elapsed}",
        };
        let style = ProgressStyle::with_template(template).expect("the templates above are valid");
        let bar = ProgressBar::with_draw_target(total, ProgressDrawTarget::stderr()).with_style(style);
        Progress { bar }
    }

    /// Records done so far.
    pub(crate) fn set(&self, done: u64) {
        self.bar.set_position(done);
    }

    /// Removes the bar before the summary is printed.
    pub(crate) fn finish(&self) {
        self.bar.finish_and_clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_align_and_latencies_form_a_table() {
        let mut out = Vec::new();
        write_fields(&mut out, &[("RECORDS", "10".into()), ("RECORDS/S", "5.0".into())]).expect("write");
        let mut h = Histogram::new();
        h.record(1_500);
        let rows = [("produce", Latency::from_micros(&h)), ("empty", Latency::from_micros(&Histogram::new()))];
        write_latencies(&mut out, &rows).expect("write");
        assert_eq!(
            String::from_utf8(out).expect("utf-8"),
            "RECORDS    10\n\
             RECORDS/S  5.0\n\
             \n\
             LATENCY-MS  MEAN   P50    P95    P99    P99.9  MAX\n\
             produce     1.500  1.500  1.500  1.500  1.500  1.500\n\
             empty       -      -      -      -      -      -\n"
        );
    }

    #[test]
    fn rates_are_per_second_and_zero_for_no_time() {
        assert_eq!(rates(1_000, 2_000_000, Duration::from_millis(500)), (2_000.0, 4.0));
        assert_eq!(rates(1, 1, Duration::ZERO), (0.0, 0.0));
    }
}
