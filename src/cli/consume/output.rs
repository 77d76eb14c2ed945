//! How `weir consume` prints a record: a JSON line, or a `-f` format string (see the
//! [`super`] docs for both). Owns the format-string parser and the lossless JSON form of
//! bytes; it neither fetches nor decodes.

use std::io::{BufWriter, StdoutLock, Write};

use serde::ser::SerializeMap;
use serde::Serialize;

use super::records::RecordView;

/// One piece of a `-f` format string.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Piece {
    Literal(Vec<u8>),
    Topic,
    Partition,
    Offset,
    Key,
    Value,
    Headers,
    Timestamp,
}

/// Parses a `-f` format string.
///
/// # Errors
/// An unknown `%` placeholder.
pub(super) fn parse_format(format: &str) -> anyhow::Result<Vec<Piece>> {
    let mut pieces = Vec::new();
    let mut literal = Vec::new();
    let mut chars = format.chars();
    while let Some(c) = chars.next() {
        let piece = match c {
            '%' => match chars.next() {
                Some('t') => Piece::Topic,
                Some('p') => Piece::Partition,
                Some('o') => Piece::Offset,
                Some('k') => Piece::Key,
                Some('v') => Piece::Value,
                Some('h') => Piece::Headers,
                Some('T') => Piece::Timestamp,
                Some('%') => {
                    literal.push(b'%');
                    continue;
                }
                other => anyhow::bail!(
                    "unknown placeholder %{} in --format-string (known: %t %p %o %k %v %h %T %%)",
                    other.map(String::from).unwrap_or_default()
                ),
            },
            '\\' => {
                match chars.next() {
                    Some('n') => literal.push(b'\n'),
                    Some('t') => literal.push(b'\t'),
                    Some('r') => literal.push(b'\r'),
                    Some('\\') => literal.push(b'\\'),
                    Some(other) => {
                        literal.push(b'\\');
                        literal.extend_from_slice(other.encode_utf8(&mut [0; 4]).as_bytes());
                    }
                    None => literal.push(b'\\'),
                }
                continue;
            }
            c => {
                literal.extend_from_slice(c.encode_utf8(&mut [0; 4]).as_bytes());
                continue;
            }
        };
        if !literal.is_empty() {
            pieces.push(Piece::Literal(std::mem::take(&mut literal)));
        }
        pieces.push(piece);
    }
    if !literal.is_empty() {
        pieces.push(Piece::Literal(literal));
    }
    Ok(pieces)
}

/// Where records are printed.
#[derive(Debug)]
pub(crate) struct Output {
    pub(crate) out: BufWriter<StdoutLock<'static>>,
    /// `-f`; JSON lines without it.
    pub(crate) format: Option<Vec<Piece>>,
}

impl Output {
    pub(super) fn record(&mut self, topic: &str, partition: i32, record: &RecordView<'_>) -> std::io::Result<()> {
        let Some(format) = &self.format else {
            serde_json::to_writer(&mut self.out, &JsonRecord::new(topic, partition, record))?;
            return self.out.write_all(b"\n");
        };
        write_formatted(&mut self.out, format, topic, partition, record)
    }
}

fn write_formatted(
    out: &mut impl Write,
    format: &[Piece],
    topic: &str,
    partition: i32,
    r: &RecordView<'_>,
) -> std::io::Result<()> {
    for piece in format {
        match piece {
            Piece::Literal(bytes) => out.write_all(bytes)?,
            Piece::Topic => out.write_all(topic.as_bytes())?,
            Piece::Partition => write!(out, "{partition}")?,
            Piece::Offset => write!(out, "{}", r.offset)?,
            Piece::Key => out.write_all(r.key.unwrap_or_default())?,
            Piece::Value => out.write_all(r.value.unwrap_or_default())?,
            Piece::Timestamp => write!(out, "{}", r.timestamp)?,
            Piece::Headers => {
                for (i, (key, value)) in r.headers.iter().enumerate() {
                    if i > 0 {
                        out.write_all(b",")?;
                    }
                    out.write_all(key)?;
                    if let Some(value) = value {
                        out.write_all(b"=")?;
                        out.write_all(value)?;
                    }
                }
            }
        }
    }
    Ok(())
}

/// One record as a JSON line; see the module docs.
#[derive(Serialize)]
struct JsonRecord<'a> {
    topic: &'a str,
    partition: i32,
    offset: i64,
    timestamp: i64,
    key: Option<Text<'a>>,
    value: Option<Text<'a>>,
    headers: Vec<JsonHeader<'a>>,
}

#[derive(Serialize)]
struct JsonHeader<'a> {
    key: Text<'a>,
    value: Option<Text<'a>>,
}

impl<'a> JsonRecord<'a> {
    fn new(topic: &'a str, partition: i32, r: &RecordView<'a>) -> JsonRecord<'a> {
        JsonRecord {
            topic,
            partition,
            offset: r.offset,
            timestamp: r.timestamp,
            key: r.key.map(Text),
            value: r.value.map(Text),
            headers: r
                .headers
                .iter()
                .map(|&(key, value)| JsonHeader { key: Text(key), value: value.map(Text) })
                .collect(),
        }
    }
}

/// Bytes in JSON: a string when they are UTF-8, `{"base64": "..."}` when not.
struct Text<'a>(&'a [u8]);

impl Serialize for Text<'_> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match std::str::from_utf8(self.0) {
            Ok(text) => serializer.serialize_str(text),
            Err(_) => {
                let mut map = serializer.serialize_map(Some(1))?;
                map.serialize_entry("base64", &base64(self.0))?;
                map.end()
            }
        }
    }
}

/// Standard base64 (RFC 4648 alphabet, padded).
fn base64(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let byte = |i: usize| u32::from(chunk.get(i).copied().unwrap_or(0));
        let n = byte(0) << 16 | byte(1) << 8 | byte(2);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(ALPHABET[(n >> (18 - 6 * i)) as usize & 63] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn format_strings_have_placeholders_and_escapes() {
        let pieces = parse_format("%t/%p@%o %k=%v [%h] %T%%\\n\\t\\x").expect("valid");
        let record = RecordView {
            offset: 7,
            timestamp: 1_000,
            key: Some(b"k"),
            value: Some(b"v"),
            headers: vec![(b"a", Some(b"1")), (b"b", None)],
        };
        let mut out = Vec::new();
        write_formatted(&mut out, &pieces, "t", 2, &record).expect("write");
        assert_eq!(String::from_utf8(out).expect("utf-8"), "t/2@7 k=v [a=1,b] 1000%\n\t\\x");
        assert!(parse_format("%q").is_err());
        assert!(parse_format("100%").is_err());
    }

    #[test]
    fn json_lines_keep_text_as_strings_and_other_bytes_as_base64() {
        let record = RecordView {
            offset: 1,
            timestamp: 5,
            key: None,
            value: Some(&[0xff, 0xfe, b'a']),
            headers: vec![(b"h", Some(b"x")), (b"n", None)],
        };
        let json = serde_json::to_value(JsonRecord::new("t", 0, &record)).expect("json");
        assert_eq!(
            json,
            serde_json::json!({"topic": "t", "partition": 0, "offset": 1, "timestamp": 5, "key": null,
                "value": {"base64": "//5h"}, "headers": [{"key": "h", "value": "x"}, {"key": "n", "value": null}]})
        );
        assert_eq!(base64(b""), "");
        assert_eq!(base64(b"f"), "Zg==");
        assert_eq!(base64(b"fo"), "Zm8=");
        assert_eq!(base64(b"foobar"), "Zm9vYmFy");
    }
}
