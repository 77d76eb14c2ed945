//! RESP framing: client requests are parsed incrementally into argument lists, replies are
//! encoded for RESP2 or RESP3. Bytes only — no sockets, no commands.
//!
//! Requests follow Redis's `networking.c` (`processMultibulkBuffer`, `processInlineBuffer`,
//! `sdssplitargs`): what Redis accepts is accepted, what it refuses is refused with its exact
//! message, including its leniencies (the two bytes after a header's `\r` and after a bulk
//! payload are skipped, not checked). Replies follow the RESP3 specification
//! (<https://github.com/redis/redis-specifications/blob/master/protocol/RESP3.md>) and the
//! RESP2 downgrades of Redis's `addReply*` functions.

use std::borrow::Cow;

use bytes::{Buf, Bytes, BytesMut};

/// Most bytes reserved ahead for a bulk argument whose bytes have not arrived. A bulk length
/// is a claim, not data: reserving all of it would let `$536870912\r\n` cost 512 MiB per
/// connection before one payload byte is sent. 64 KiB is a few socket reads; the buffer still
/// grows geometrically as the bytes do arrive.
const MAX_RESERVE_AHEAD: usize = 64 * 1024;

/// Most argument slots reserved when a multibulk header arrives, for the same reason (Redis
/// reserves `min(count, 1024)` too); the vector grows as arguments arrive.
const MAX_ARGS_AHEAD: usize = 1024;

/// Bulk payloads at least this long are handed out as their own `Bytes` by
/// [`Reply::encode_parts`]; shorter ones are copied next to their header. Below a page, a
/// copy costs less than the extra iovec entry and reference count it would save.
pub const ZERO_COPY_MIN_LEN: usize = 4096;

/// What a client may make the server buffer. Redis's names are in each field's doc.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Longest bulk argument accepted (`proto-max-bulk-len`; default 512 MiB).
    pub max_bulk_len: usize,
    /// Most arguments in one multibulk command (default 1024 × 1024, the bound older Redis
    /// versions hard-coded; current ones allow up to `INT_MAX`).
    pub max_multibulk_len: usize,
    /// Most bytes buffered while an inline line, a `*<count>` line or a `$<len>` line still
    /// lacks its terminator (`PROTO_INLINE_MAX_SIZE`; default 64 KiB). Like Redis, a line that
    /// arrives whole is not measured.
    pub max_inline_len: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits { max_bulk_len: 512 * 1024 * 1024, max_multibulk_len: 1024 * 1024, max_inline_len: 64 * 1024 }
    }
}

/// Why a request stream cannot be parsed. Each one is final: the server replies with
/// [`ProtocolError::to_reply`] and closes the connection, as Redis does, because the next
/// command's start can no longer be found.
///
/// The messages are Redis's, verbatim, because clients and tests match on them.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProtocolError {
    /// A `*<count>` line whose count is not an integer or exceeds
    /// [`Limits::max_multibulk_len`].
    #[error("Protocol error: invalid multibulk length")]
    InvalidMultibulkLength,
    /// A `$<len>` line whose length is not an integer, is negative (`$-1` is a reply, never a
    /// request) or exceeds [`Limits::max_bulk_len`].
    #[error("Protocol error: invalid bulk length")]
    InvalidBulkLength,
    /// An argument of a multibulk command did not start with `$`.
    #[error("Protocol error: expected '$', got '{}'", shown(.got))]
    ExpectedBulk {
        /// The byte found instead.
        got: u8,
    },
    /// An inline command longer than [`Limits::max_inline_len`] without its line end.
    #[error("Protocol error: too big inline request")]
    TooBigInlineRequest,
    /// A `*<count>` line longer than [`Limits::max_inline_len`] without its `\r`.
    #[error("Protocol error: too big mbulk count string")]
    TooBigMultibulkCount,
    /// A `$<len>` line longer than [`Limits::max_inline_len`] without its `\r`.
    #[error("Protocol error: too big bulk count string")]
    TooBigBulkCount,
    /// An inline command with an unclosed quote, or a closing quote not followed by a space.
    #[error("Protocol error: unbalanced quotes in request")]
    UnbalancedQuotes,
}

/// The byte as Redis's `%c` prints it into an error line, which it then cleans of `\r` and
/// `\n`. A byte above 0x7f is shown as the character U+0080..U+00FF (two bytes of UTF-8)
/// where Redis sends the raw byte: an error reply is a Rust string here.
fn shown(byte: &u8) -> char {
    match *byte {
        b'\r' | b'\n' => ' ',
        other => char::from(other),
    }
}

impl ProtocolError {
    /// The error reply Redis sends before closing: `-ERR Protocol error: …`.
    pub fn to_reply(&self) -> Reply {
        Reply::Error(Cow::Owned(format!("ERR {self}")))
    }
}

/// Where a multibulk command stands between calls to [`RequestParser::next`].
#[derive(Debug, Default)]
enum State {
    /// At the start of a command.
    #[default]
    Start,
    /// After a `*<count>` header: `args` hold the arguments split off so far, `bulk_len` the
    /// length of the next one once its `$<len>` line has been read.
    Multibulk { remaining: usize, args: Vec<Bytes>, bulk_len: Option<usize> },
}

/// Parses the requests a client sends, one command at a time, as bytes arrive.
///
/// Both request forms are accepted: multibulk (`*<count>\r\n` then `$<len>\r\n<bytes>\r\n` per
/// argument — what every client library sends) and inline (a line of space-separated
/// arguments with Redis's quoting — what `telnet` and `redis-cli --pipe` handshakes send).
/// Empty commands (`*0`, `*-1`, blank lines) are skipped, as Redis skips them.
///
/// The parser consumes complete pieces from the front of the buffer as they arrive (a header
/// line, a whole argument) and keeps the arguments split off so far, so a command arriving
/// in many reads is parsed in time linear in its size: a partial bulk costs one length check
/// per call, and a partial line is only searched from where the last search stopped.
///
/// # Buffer contract
/// Between calls, the caller only appends to `buf` (socket reads). Consuming, clearing or
/// replacing its bytes while a command is partly parsed desynchronizes the parser.
#[derive(Debug, Default)]
pub struct RequestParser {
    limits: Limits,
    state: State,
    /// Bytes at the front of the buffer already searched for the end of the current line.
    scanned: usize,
    /// Set by the first error, returned by every later call.
    failed: Option<ProtocolError>,
}

impl RequestParser {
    /// A parser enforcing `limits`.
    pub fn new(limits: Limits) -> Self {
        RequestParser { limits, ..RequestParser::default() }
    }

    /// The limits this parser enforces.
    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    /// The next complete command from the front of `buf`: its arguments, each split off `buf`
    /// without copying (multibulk arguments and unquoted inline ones; a quoted inline argument
    /// is decoded into its own buffer). `Ok(None)` means more bytes are needed; the pieces
    /// consumed so far are kept by the parser. Call again until `Ok(None)` to drain a
    /// pipeline. While a large argument is arriving, room is reserved in `buf` for at most
    /// 64 KiB more of it at a time, so the buffer grows with the bytes that arrive, never with
    /// the length a client claims.
    ///
    /// # Errors
    /// A [`ProtocolError`] when the bytes are not a request Redis would accept. The parser is
    /// then spent: this and every later call return that error, and the connection should be
    /// closed after sending [`ProtocolError::to_reply`].
    pub fn next(&mut self, buf: &mut BytesMut) -> Result<Option<Vec<Bytes>>, ProtocolError> {
        if let Some(err) = &self.failed {
            return Err(err.clone());
        }
        let parsed = self.parse(buf);
        if let Err(err) = &parsed {
            self.failed = Some(err.clone());
        }
        parsed
    }

    fn parse(&mut self, buf: &mut BytesMut) -> Result<Option<Vec<Bytes>>, ProtocolError> {
        let RequestParser { limits, state, scanned, .. } = self;
        loop {
            match state {
                State::Start => {
                    let Some(&first) = buf.first() else { return Ok(None) };
                    if first == b'*' {
                        let limit = limits.max_inline_len;
                        let Some(end) = find_line(buf, scanned, b'\r', limit, ProtocolError::TooBigMultibulkCount)?
                        else {
                            return Ok(None);
                        };
                        let count = parse_count(&buf[1..end])
                            .filter(|&n| n <= i64::try_from(limits.max_multibulk_len).unwrap_or(i64::MAX))
                            .ok_or(ProtocolError::InvalidMultibulkLength)?;
                        buf.advance(end + 2);
                        // Zero and negative counts are empty commands, skipped.
                        let Ok(remaining @ 1..) = usize::try_from(count) else { continue };
                        let args = Vec::with_capacity(remaining.min(MAX_ARGS_AHEAD));
                        *state = State::Multibulk { remaining, args, bulk_len: None };
                    } else {
                        let limit = limits.max_inline_len;
                        let Some(end) = find_line(buf, scanned, b'\n', limit, ProtocolError::TooBigInlineRequest)?
                        else {
                            return Ok(None);
                        };
                        let mut line = buf.split_to(end + 1).freeze();
                        line.truncate(end);
                        if line.last() == Some(&b'\r') {
                            line.truncate(end - 1);
                        }
                        let args = split_inline(&line).ok_or(ProtocolError::UnbalancedQuotes)?;
                        if !args.is_empty() {
                            return Ok(Some(args));
                        }
                    }
                }
                State::Multibulk { remaining, args, bulk_len } => {
                    while *remaining > 0 {
                        let len = match *bulk_len {
                            Some(len) => len,
                            None => {
                                let limit = limits.max_inline_len;
                                let Some(end) = find_line(buf, scanned, b'\r', limit, ProtocolError::TooBigBulkCount)?
                                else {
                                    return Ok(None);
                                };
                                if buf[0] != b'$' {
                                    return Err(ProtocolError::ExpectedBulk { got: buf[0] });
                                }
                                let len = parse_count(&buf[1..end])
                                    .and_then(|n| usize::try_from(n).ok())
                                    .filter(|&n| n <= limits.max_bulk_len)
                                    .ok_or(ProtocolError::InvalidBulkLength)?;
                                buf.advance(end + 2);
                                *bulk_len = Some(len);
                                len
                            }
                        };
                        let needed = len.saturating_add(2);
                        if buf.len() < needed {
                            buf.reserve((needed - buf.len()).min(MAX_RESERVE_AHEAD));
                            return Ok(None);
                        }
                        args.push(buf.split_to(len).freeze());
                        buf.advance(2);
                        *bulk_len = None;
                        *remaining -= 1;
                    }
                    let args = std::mem::take(args);
                    *state = State::Start;
                    return Ok(Some(args));
                }
            }
        }
    }
}

/// Finds the end of the line at the front of `buf`: the index of its `terminator` (`\n` for
/// inline commands; `\r` for headers, which also need one more byte to be present, the `\n`
/// Redis skips without looking at). Searching resumes at `*scanned` and records where it
/// stopped, so a line arriving byte by byte is searched once; on success `*scanned` is reset
/// for the caller, which consumes the line.
///
/// A NUL byte ends the search for good, as Redis's `strchr` does: the line never completes
/// and is refused once the buffer outgrows `max_len`.
///
/// # Errors
/// `too_big` when no terminator is in sight and the buffer holds more than `max_len` bytes.
fn find_line(
    buf: &[u8],
    scanned: &mut usize,
    terminator: u8,
    max_len: usize,
    too_big: ProtocolError,
) -> Result<Option<usize>, ProtocolError> {
    let from = (*scanned).min(buf.len());
    match buf[from..].iter().position(|&b| b == terminator || b == 0) {
        Some(offset) => {
            let at = from + offset;
            *scanned = at;
            if buf[at] == terminator {
                if terminator == b'\n' || at + 1 < buf.len() {
                    *scanned = 0;
                    return Ok(Some(at));
                }
                // The terminator is here but the byte after it is not: wait, unmeasured.
                return Ok(None);
            }
        }
        None => *scanned = buf.len(),
    }
    if buf.len() > max_len {
        return Err(too_big);
    }
    Ok(None)
}

/// A count or length the way Redis's `string2ll` reads one: an optional `-`, then digits with
/// no leading zero (a lone `0` excepted), at most 20 characters, within `i64`. No `+`, no
/// spaces, no `-0`.
fn parse_count(text: &[u8]) -> Option<i64> {
    if text.is_empty() || text.len() > 20 {
        return None;
    }
    if text == b"0" {
        return Some(0);
    }
    let (negative, digits) = match text.split_first() {
        Some((b'-', rest)) => (true, rest),
        _ => (false, text),
    };
    match digits.first() {
        Some(b'1'..=b'9') => {}
        _ => return None,
    }
    // Accumulate negatively so that i64::MIN is representable.
    let mut value: i64 = 0;
    for &d in digits {
        if !d.is_ascii_digit() {
            return None;
        }
        value = value.checked_mul(10)?.checked_sub(i64::from(d - b'0'))?;
    }
    if negative {
        Some(value)
    } else {
        value.checked_neg()
    }
}

/// C's `isspace` in the "C" locale: the blanks skipped between inline arguments.
fn is_c_space(byte: u8) -> bool {
    matches!(byte, b' ' | b'\t' | b'\n' | 0x0b | 0x0c | b'\r')
}

/// Splits an inline command line into arguments as Redis's `sdssplitargs` does: arguments are
/// separated by blanks; an unquoted argument ends at a space, tab, `\r` or `\n`; "double
/// quotes" understand `\xHH`, `\n`, `\r`, `\t`, `\b`, `\a` and take any other escaped byte
/// literally; 'single quotes' understand only `\'`. A quote may open mid-argument (`a"b"` is
/// `ab`), but a closing quote must be followed by a blank or the end of the line. Unquoted
/// arguments are slices of `line`. `None` means unbalanced quotes.
fn split_inline(line: &Bytes) -> Option<Vec<Bytes>> {
    let s: &[u8] = line;
    let mut args = Vec::new();
    let mut p = 0;
    loop {
        while p < s.len() && is_c_space(s[p]) {
            p += 1;
        }
        if p == s.len() {
            return Some(args);
        }
        let start = p;
        // The decoded argument, once a quote makes it differ from the bytes of the line.
        let mut decoded: Option<Vec<u8>> = None;
        let mut quote: Option<u8> = None;
        let end = loop {
            match (quote, s.get(p).copied()) {
                (Some(_), None) => return None,
                (Some(b'"'), Some(b'\\')) if s.get(p + 1) == Some(&b'x') => {
                    let high = s.get(p + 2).and_then(|&b| hex_value(b));
                    let low = s.get(p + 3).and_then(|&b| hex_value(b));
                    let out = decoded.get_or_insert_with(Vec::new);
                    if let (Some(high), Some(low)) = (high, low) {
                        out.push(high * 16 + low);
                        p += 4;
                    } else {
                        out.push(b'x');
                        p += 2;
                    }
                }
                (Some(b'"'), Some(b'\\')) if p + 1 < s.len() => {
                    let byte = match s[p + 1] {
                        b'n' => b'\n',
                        b'r' => b'\r',
                        b't' => b'\t',
                        b'b' => 0x08,
                        b'a' => 0x07,
                        other => other,
                    };
                    decoded.get_or_insert_with(Vec::new).push(byte);
                    p += 2;
                }
                (Some(b'\''), Some(b'\\')) if s.get(p + 1) == Some(&b'\'') => {
                    decoded.get_or_insert_with(Vec::new).push(b'\'');
                    p += 2;
                }
                (Some(q), Some(c)) if c == q => {
                    if s.get(p + 1).is_some_and(|&next| !is_c_space(next)) {
                        return None;
                    }
                    p += 1;
                    break p;
                }
                (Some(_), Some(c)) => {
                    decoded.get_or_insert_with(Vec::new).push(c);
                    p += 1;
                }
                (None, None | Some(b' ' | b'\t' | b'\r' | b'\n')) => break p,
                (None, Some(q @ (b'"' | b'\''))) => {
                    decoded.get_or_insert_with(|| s[start..p].to_vec());
                    quote = Some(q);
                    p += 1;
                }
                (None, Some(c)) => {
                    if let Some(out) = decoded.as_mut() {
                        out.push(c);
                    }
                    p += 1;
                }
            }
        };
        args.push(match decoded {
            Some(bytes) => Bytes::from(bytes),
            None => line.slice(start..end),
        });
    }
}

fn hex_value(byte: u8) -> Option<u8> {
    match byte {
        b'0'..=b'9' => Some(byte - b'0'),
        b'a'..=b'f' => Some(byte - b'a' + 10),
        b'A'..=b'F' => Some(byte - b'A' + 10),
        _ => None,
    }
}

/// The protocol a connection speaks: RESP2 until the client switches with `HELLO 3`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Protocol {
    #[default]
    Resp2,
    Resp3,
}

/// A reply, in RESP3's types. Under RESP2 each type is sent the way Redis downgrades it
/// (see [`Reply::encode`]).
#[derive(Debug, Clone, PartialEq)]
pub enum Reply {
    /// `+OK`. Must not contain `\r` or `\n`; any that do are sent as spaces.
    Simple(Cow<'static, str>),
    /// `-ERR message`: the error code (`ERR`, `WRONGTYPE`, …) then the message. Must not
    /// contain `\r` or `\n`; any that do are sent as spaces, as Redis does.
    Error(Cow<'static, str>),
    /// `:42`.
    Integer(i64),
    /// `$3\r\nfoo` — a binary-safe string, possibly a slice of a memory-mapped segment.
    Bulk(Bytes),
    /// RESP3 `_`; RESP2's null bulk string `$-1`.
    Null,
    /// RESP3 `_`; RESP2's null array `*-1` (what `BLPOP` answers on timeout).
    NullArray,
    /// `*N`.
    Array(Vec<Reply>),
    /// RESP3 `%N` (N pairs); RESP2 a flat array of 2N elements.
    Map(Vec<(Reply, Reply)>),
    /// RESP3 `~N`; RESP2 an array.
    Set(Vec<Reply>),
    /// RESP3 `,3.5`; RESP2 the same text as a bulk string.
    Double(f64),
    /// RESP3 `#t` / `#f`; RESP2 `:1` / `:0`.
    Boolean(bool),
    /// RESP3 `=<len>\r\ntxt:<text>` (`format` is `txt` or `mkd`); RESP2 `text` as a bulk string.
    Verbatim { format: [u8; 3], text: Bytes },
    /// RESP3 `>N`, out-of-band data such as pub/sub messages; RESP2 an array.
    Push(Vec<Reply>),
    /// RESP3 `(<digits>`, an integer outside `i64`; RESP2 a bulk string.
    BigNumber(String),
}

impl Reply {
    /// `+OK`.
    pub fn ok() -> Reply {
        Reply::Simple(Cow::Borrowed("OK"))
    }

    /// A simple string reply, `+text`.
    pub fn simple(text: impl Into<Cow<'static, str>>) -> Reply {
        Reply::Simple(text.into())
    }

    /// An error reply; `message` starts with the error code (`"ERR unknown command"`).
    pub fn error(message: impl Into<Cow<'static, str>>) -> Reply {
        Reply::Error(message.into())
    }

    /// Appends this reply's encoding under `proto` to `out`, copying every payload.
    ///
    /// RESP2 has no null, map, set, double, boolean, verbatim, push or big-number types;
    /// they are sent as Redis sends them: `Null` → `$-1`, `NullArray` → `*-1`, a map → a
    /// flat array of keys and values, a set or push → an array, a double → a bulk string of
    /// the same text, a boolean → `:1`/`:0`, verbatim text and big numbers → bulk strings.
    pub fn encode(&self, proto: Protocol, out: &mut BytesMut) {
        self.write(proto, &mut Contiguous(out));
    }

    /// Appends this reply's encoding under `proto` to `parts` for a vectored write: headers
    /// and short payloads are copied into `scratch` (split off as a part whenever a long
    /// payload follows, and at the end), and each payload of at least [`ZERO_COPY_MIN_LEN`]
    /// bytes is pushed as itself — a reference count, not a copy. The concatenation of the
    /// parts pushed is exactly what [`Reply::encode`] writes.
    ///
    /// `scratch` is working space whose spare capacity serves the next call; anything it
    /// already held is sent first.
    pub fn encode_parts(&self, proto: Protocol, parts: &mut Vec<Bytes>, scratch: &mut BytesMut) {
        let mut sink = Vectored { parts, scratch };
        self.write(proto, &mut sink);
        sink.flush();
    }

    fn write(&self, proto: Protocol, sink: &mut impl Sink) {
        let resp3 = proto == Protocol::Resp3;
        match self {
            Reply::Simple(text) => line(sink, b'+', text.as_bytes()),
            Reply::Error(text) => line(sink, b'-', text.as_bytes()),
            Reply::Integer(n) => integer_line(sink, b':', *n),
            Reply::Bulk(payload) => bulk(sink, b'$', &[], payload),
            Reply::Null if resp3 => sink.put(b"_\r\n"),
            Reply::Null => sink.put(b"$-1\r\n"),
            Reply::NullArray if resp3 => sink.put(b"_\r\n"),
            Reply::NullArray => sink.put(b"*-1\r\n"),
            Reply::Array(items) => aggregate(sink, proto, b'*', items),
            Reply::Set(items) => aggregate(sink, proto, if resp3 { b'~' } else { b'*' }, items),
            Reply::Push(items) => aggregate(sink, proto, if resp3 { b'>' } else { b'*' }, items),
            Reply::Map(pairs) => {
                if resp3 {
                    length_line(sink, b'%', pairs.len());
                } else {
                    length_line(sink, b'*', pairs.len().saturating_mul(2));
                }
                for (key, value) in pairs {
                    key.write(proto, sink);
                    value.write(proto, sink);
                }
            }
            Reply::Double(value) => {
                let text = DoubleText::new(*value);
                if resp3 {
                    line(sink, b',', text.as_bytes());
                } else {
                    length_line(sink, b'$', text.as_bytes().len());
                    sink.put(text.as_bytes());
                    sink.put(b"\r\n");
                }
            }
            Reply::Boolean(value) if resp3 => sink.put(if *value { b"#t\r\n" } else { b"#f\r\n" }),
            Reply::Boolean(value) => sink.put(if *value { b":1\r\n" } else { b":0\r\n" }),
            Reply::Verbatim { format, text } if resp3 => {
                let prefix = [format[0], format[1], format[2], b':'];
                bulk(sink, b'=', &prefix, text);
            }
            Reply::Verbatim { text, .. } => bulk(sink, b'$', &[], text),
            Reply::BigNumber(digits) if resp3 => line(sink, b'(', digits.as_bytes()),
            Reply::BigNumber(digits) => {
                length_line(sink, b'$', digits.len());
                sink.put(digits.as_bytes());
                sink.put(b"\r\n");
            }
        }
    }
}

/// Where encoded bytes go.
trait Sink {
    /// Bytes of the encoding itself (type bytes, lengths, short texts).
    fn put(&mut self, bytes: &[u8]);
    /// A value's payload, which may be large and shared.
    fn put_payload(&mut self, payload: &Bytes);
}

/// Everything copied into one buffer.
struct Contiguous<'a>(&'a mut BytesMut);

impl Sink for Contiguous<'_> {
    fn put(&mut self, bytes: &[u8]) {
        self.0.extend_from_slice(bytes);
    }

    fn put_payload(&mut self, payload: &Bytes) {
        self.0.extend_from_slice(payload);
    }
}

/// Small bytes copied into `scratch`, large payloads referenced in `parts`.
struct Vectored<'a> {
    parts: &'a mut Vec<Bytes>,
    scratch: &'a mut BytesMut,
}

impl Vectored<'_> {
    fn flush(&mut self) {
        if !self.scratch.is_empty() {
            self.parts.push(self.scratch.split().freeze());
        }
    }
}

impl Sink for Vectored<'_> {
    fn put(&mut self, bytes: &[u8]) {
        self.scratch.extend_from_slice(bytes);
    }

    fn put_payload(&mut self, payload: &Bytes) {
        if payload.len() >= ZERO_COPY_MIN_LEN {
            self.flush();
            self.parts.push(payload.clone());
        } else {
            self.scratch.extend_from_slice(payload);
        }
    }
}

/// `<kind><text>\r\n`, with any `\r` or `\n` in `text` sent as a space so that a stray one
/// cannot end the line early and desynchronize the client.
fn line(sink: &mut impl Sink, kind: u8, text: &[u8]) {
    sink.put(&[kind]);
    if text.iter().any(|&b| b == b'\r' || b == b'\n') {
        let cleaned: Vec<u8> = text.iter().map(|&b| if b == b'\r' || b == b'\n' { b' ' } else { b }).collect();
        sink.put(&cleaned);
    } else {
        sink.put(text);
    }
    sink.put(b"\r\n");
}

/// `<kind><len>\r\n<prefix><payload>\r\n`, where `len` counts the prefix too (verbatim
/// strings' `txt:`).
fn bulk(sink: &mut impl Sink, kind: u8, prefix: &[u8], payload: &Bytes) {
    length_line(sink, kind, prefix.len() + payload.len());
    sink.put(prefix);
    sink.put_payload(payload);
    sink.put(b"\r\n");
}

/// Appends a bulk string holding `payload` (the same bytes as `Reply::Bulk` under either
/// protocol), copied from a borrowed slice.
pub fn encode_bulk(payload: &[u8], out: &mut BytesMut) {
    let sink = &mut Contiguous(out);
    length_line(sink, b'$', payload.len());
    sink.put(payload);
    sink.put(b"\r\n");
}

fn aggregate(sink: &mut impl Sink, proto: Protocol, kind: u8, items: &[Reply]) {
    length_line(sink, kind, items.len());
    for item in items {
        item.write(proto, sink);
    }
}

fn length_line(sink: &mut impl Sink, kind: u8, len: usize) {
    integer_line(sink, kind, i64::try_from(len).unwrap_or(i64::MAX));
}

/// `<kind><n>\r\n`.
fn integer_line(sink: &mut impl Sink, kind: u8, n: i64) {
    let mut digits = [0u8; 20];
    sink.put(&[kind]);
    sink.put(decimal(n, &mut digits));
    sink.put(b"\r\n");
}

/// `n` in decimal, written into the end of `buf` without going through `fmt` (replies are
/// mostly lengths). `-9223372036854775808` is the longest, at 20 bytes.
fn decimal(n: i64, buf: &mut [u8; 20]) -> &[u8] {
    let mut at = buf.len();
    let mut magnitude = n.unsigned_abs();
    loop {
        at -= 1;
        buf[at] = b'0' + (magnitude % 10) as u8;
        magnitude /= 10;
        if magnitude == 0 {
            break;
        }
    }
    if n < 0 {
        at -= 1;
        buf[at] = b'-';
    }
    &buf[at..]
}

/// A double as Redis's `d2string` writes it, for RESP3 doubles and their RESP2 bulk strings:
/// `nan`, `inf`, `-inf`, `0`, `-0`; an integral value within ±2^62 as an integer (`3`, not
/// `3.0`); anything else from its shortest round-trip digits, laid out like Redis's
/// `fpconv_dtoa` — plainly (`3.5`, `0.0001`, `123456789012345680000`) unless the exponent
/// is far from the digits (`1e+300`, `1.5e-7`, exponents without zero padding).
///
/// Redis computes the digits with Grisu2, which in rare cases yields a longer (still exact)
/// digit string than the shortest one used here. (The RESP3 specification calls exponents
/// invalid in a double; Redis sends them anyway, and clients parse them.)
struct DoubleText {
    buf: [u8; 40],
    len: usize,
}

impl DoubleText {
    fn new(value: f64) -> DoubleText {
        let mut text = DoubleText { buf: [0; 40], len: 0 };
        if value.is_nan() {
            text.push(b"nan");
        } else if value.is_infinite() {
            text.push(if value < 0.0 { b"-inf" } else { b"inf" });
        } else if value == 0.0 {
            text.push(if value.is_sign_negative() { b"-0" } else { b"0" });
        } else if value.fract() == 0.0 && value.abs() <= 4_611_686_018_427_387_904.0 {
            // Integral and within ±2^62 (Redis's `double2ll` range), so exact as an i64.
            let mut digits = [0u8; 20];
            text.push(decimal(value as i64, &mut digits));
        } else {
            text.push_fpconv_layout(value);
        }
        text
    }

    fn push(&mut self, bytes: &[u8]) {
        self.buf[self.len..self.len + bytes.len()].copy_from_slice(bytes);
        self.len += bytes.len();
    }

    fn as_bytes(&self) -> &[u8] {
        &self.buf[..self.len]
    }

    /// Lays out `value`'s shortest digits as `fpconv_dtoa`'s `emit_digits` does. With
    /// `value = digits × 10^k` and `exp` the decimal exponent of the leading digit:
    /// a plain integer when `k ≥ 0` and `exp < ndigits + 7`; a plain decimal when `k < 0` and
    /// (`k > -7` or `exp < 4`); otherwise `d.ddde±x`.
    fn push_fpconv_layout(&mut self, value: f64) {
        // `{:e}` gives the shortest round-trip digits as `d.ddddde-x`.
        let scientific = format!("{:e}", value.abs());
        let (mantissa, exponent) = scientific.split_once('e').unwrap_or((scientific.as_str(), "0"));
        let digits: Vec<u8> = mantissa.bytes().filter(u8::is_ascii_digit).collect();
        let leading_exp: i32 = exponent.parse().unwrap_or(0);
        let ndigits = digits.len() as i32;
        let k = leading_exp - (ndigits - 1);
        let exp = leading_exp.abs();

        if value < 0.0 {
            self.push(b"-");
        }
        if k >= 0 && exp < ndigits + 7 {
            self.push(&digits);
            for _ in 0..k {
                self.push(b"0");
            }
        } else if k < 0 && (k > -7 || exp < 4) {
            let point = ndigits + k;
            if point <= 0 {
                self.push(b"0.");
                for _ in 0..-point {
                    self.push(b"0");
                }
                self.push(&digits);
            } else {
                let (whole, fraction) = digits.split_at(point as usize);
                self.push(whole);
                self.push(b".");
                self.push(fraction);
            }
        } else {
            self.push(&digits[..1]);
            if digits.len() > 1 {
                self.push(b".");
                self.push(&digits[1..]);
            }
            self.push(if leading_exp < 0 { b"e-" } else { b"e+" });
            self.push(exp.to_string().as_bytes());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn cases(default: u32) -> u32 {
        std::env::var("PROPTEST_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(default)
    }

    type Command = Vec<Vec<u8>>;

    fn command(args: &[&str]) -> Command {
        args.iter().map(|a| a.as_bytes().to_vec()).collect()
    }

    fn multibulk(args: &[Vec<u8>]) -> Vec<u8> {
        let mut out = format!("*{}\r\n", args.len()).into_bytes();
        for arg in args {
            out.extend_from_slice(format!("${}\r\n", arg.len()).as_bytes());
            out.extend_from_slice(arg);
            out.extend_from_slice(b"\r\n");
        }
        out
    }

    /// Feeds `input` in pieces of the given sizes (the rest in one piece), draining the
    /// parser after each; returns the commands, or the first error.
    fn parse_chunked(input: &[u8], sizes: &[usize], limits: Limits) -> Result<Vec<Command>, ProtocolError> {
        let mut parser = RequestParser::new(limits);
        let mut buf = BytesMut::new();
        let mut commands = Vec::new();
        let mut rest = input;
        let mut sizes = sizes.iter();
        while !rest.is_empty() {
            let take = sizes.next().copied().unwrap_or(rest.len()).clamp(1, rest.len());
            buf.extend_from_slice(&rest[..take]);
            rest = &rest[take..];
            while let Some(args) = parser.next(&mut buf)? {
                commands.push(args.iter().map(|a| a.to_vec()).collect());
            }
        }
        Ok(commands)
    }

    fn parse(input: &[u8]) -> Result<Vec<Command>, ProtocolError> {
        parse_chunked(input, &[], Limits::default())
    }

    fn error_of(input: &[u8], limits: Limits) -> String {
        parse_chunked(input, &[], limits).expect_err("a protocol error").to_string()
    }

    #[test]
    fn a_multibulk_command_parses_into_its_arguments() {
        assert_eq!(parse(b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$0\r\n\r\n"), Ok(vec![command(&["SET", "k", ""])]));
    }

    #[test]
    fn multibulk_arguments_are_slices_of_the_read_buffer() {
        let mut buf = BytesMut::from(&b"*2\r\n$3\r\nGET\r\n$5\r\nhello\r\n"[..]);
        let range = buf.as_ptr() as usize..buf.as_ptr() as usize + buf.len();
        let args = RequestParser::default().next(&mut buf).expect("valid").expect("complete");
        assert_eq!(args, vec![Bytes::from_static(b"GET"), Bytes::from_static(b"hello")]);
        for arg in &args {
            assert!(range.contains(&(arg.as_ptr() as usize)), "argument was copied");
        }
    }

    #[test]
    fn pipelined_commands_parse_one_at_a_time_in_order() {
        let mut buf =
            BytesMut::from(&b"*1\r\n$4\r\nPING\r\nECHO hi\r\n*2\r\n$3\r\nGET\r\n$1\r\nk\r\n*1\r\n$4\r\nPI"[..]);
        let mut parser = RequestParser::default();
        let mut next = || parser.next(&mut buf).expect("valid").map(|a| a.iter().map(|b| b.to_vec()).collect());
        assert_eq!(next(), Some(command(&["PING"])));
        assert_eq!(next(), Some(command(&["ECHO", "hi"])));
        assert_eq!(next(), Some(command(&["GET", "k"])));
        assert_eq!(next(), None);
    }

    const MIXED: &[u8] =
        b"*2\r\n$4\r\nECHO\r\n$5\r\nhe\r\nl\r\n\r\n*0\r\nSET \"a b\" 'c\\'d'\r\n*-1\r\nPING\n*1\r\n$0\r\n\r\n";

    fn mixed_commands() -> Vec<Command> {
        vec![command(&["ECHO", "he\r\nl"]), command(&["SET", "a b", "c'd"]), command(&["PING"]), command(&[""])]
    }

    #[test]
    fn a_request_split_at_every_byte_boundary_parses_identically() {
        assert_eq!(parse(MIXED), Ok(mixed_commands()));
        for split in 1..MIXED.len() {
            assert_eq!(parse_chunked(MIXED, &[split], Limits::default()), Ok(mixed_commands()), "split at {split}");
        }
        assert_eq!(parse_chunked(MIXED, &[1; 200], Limits::default()), Ok(mixed_commands()), "byte by byte");
    }

    #[test]
    fn an_incomplete_command_waits_and_keeps_what_it_has_parsed() {
        let mut parser = RequestParser::default();
        let mut buf = BytesMut::from(&b"*2\r\n$3\r\nGET\r\n$5\r\nhel"[..]);
        assert_eq!(parser.next(&mut buf), Ok(None));
        assert_eq!(&buf[..], b"hel", "the header and the first argument were consumed");
        buf.extend_from_slice(b"lo\r\n");
        let args = parser.next(&mut buf).expect("valid").expect("complete");
        assert_eq!(args, vec![Bytes::from_static(b"GET"), Bytes::from_static(b"hello")]);
        assert!(buf.is_empty());
    }

    #[test]
    fn empty_commands_are_skipped_as_redis_skips_them() {
        assert_eq!(parse(b"*0\r\n*-1\r\n*-10\r\n\r\n\n   \t\r\nPING\r\n"), Ok(vec![command(&["PING"])]));
    }

    #[test]
    fn inline_commands_split_on_blanks_with_either_line_ending() {
        assert_eq!(parse(b"SET  k\tv \r\n"), Ok(vec![command(&["SET", "k", "v"])]));
        assert_eq!(parse(b"GET k\n"), Ok(vec![command(&["GET", "k"])]));
        assert_eq!(parse(b"a\rb\x0bc\n"), Ok(vec![command(&["a", "b\x0bc"])]), "\\r splits, \\v does not");
    }

    #[test]
    fn unquoted_inline_arguments_are_slices_of_the_line() {
        let mut buf = BytesMut::from(&b"GET key \"q\"\r\n"[..]);
        let range = buf.as_ptr() as usize..buf.as_ptr() as usize + buf.len();
        let args = RequestParser::default().next(&mut buf).expect("valid").expect("complete");
        assert!(range.contains(&(args[0].as_ptr() as usize)) && range.contains(&(args[1].as_ptr() as usize)));
        assert_eq!(args[2], Bytes::from_static(b"q"));
    }

    #[test]
    fn double_quotes_decode_escapes_like_sdssplitargs() {
        let parsed = parse(b"SET \"\\x41\\x7a\\xZZ\\n\\r\\t\\b\\a\\\"\\\\\\q\" \"\"\r\n").expect("valid");
        assert_eq!(parsed, vec![vec![b"SET".to_vec(), b"Az\x78ZZ\n\r\t\x08\x07\"\\q".to_vec(), Vec::new()]]);
    }

    #[test]
    fn single_quotes_understand_only_an_escaped_quote() {
        assert_eq!(parse(b"SET 'it\\'s' 'a\\nb' 'x\"y'\r\n"), Ok(vec![command(&["SET", "it's", "a\\nb", "x\"y"])]));
    }

    #[test]
    fn a_quote_may_open_mid_argument() {
        assert_eq!(parse(b"ab\"c d\" x'y'\r\n"), Ok(vec![command(&["abc d", "xy"])]));
    }

    #[test]
    fn unbalanced_quotes_are_refused() {
        for line in [&b"SET \"abc\r\n"[..], b"SET 'abc\n", b"SET \"a\"b\n", b"SET 'a'b\n", b"SET \"a\\\"\n", b"\"\\\n"]
        {
            assert_eq!(parse(line), Err(ProtocolError::UnbalancedQuotes), "{:?}", String::from_utf8_lossy(line));
        }
        assert_eq!(parse(b"SET \"a\"\tb\n"), Ok(vec![command(&["SET", "a", "b"])]), "a tab may follow a quote");
    }

    #[test]
    fn every_protocol_error_has_redis_wording() {
        let small = Limits { max_inline_len: 16, ..Limits::default() };
        let cases: [(&[u8], Limits, &str); 8] = [
            (b"*x\r\n", Limits::default(), "Protocol error: invalid multibulk length"),
            (b"*1\r\n$x\r\n", Limits::default(), "Protocol error: invalid bulk length"),
            (b"*1\r\nfoo\r\n", Limits::default(), "Protocol error: expected '$', got 'f'"),
            (b"*1\r\n\r\n", Limits::default(), "Protocol error: expected '$', got ' '"),
            (b"PING aaaaaaaaaaaaaaaaaaaa", small, "Protocol error: too big inline request"),
            (b"*11111111111111111111", small, "Protocol error: too big mbulk count string"),
            (b"*1\r\n$11111111111111111111", small, "Protocol error: too big bulk count string"),
            (b"GET \"k\r\n", Limits::default(), "Protocol error: unbalanced quotes in request"),
        ];
        for (input, limits, message) in cases {
            assert_eq!(error_of(input, limits), message);
        }
        let mut reply = BytesMut::new();
        ProtocolError::InvalidBulkLength.to_reply().encode(Protocol::Resp2, &mut reply);
        assert_eq!(&reply[..], b"-ERR Protocol error: invalid bulk length\r\n");
    }

    /// The cases of Redis's `tests/unit/protocol.tcl`.
    #[test]
    fn redis_protocol_test_suite_cases() {
        assert_eq!(parse(b"\r\n"), Ok(vec![]), "handle an empty query");
        assert_eq!(parse(b"*-10\r\n"), Ok(vec![]), "negative multibulk length");
        let invalid_multibulk = "Protocol error: invalid multibulk length";
        assert_eq!(error_of(b"*20000000\r\n", Limits::default()), invalid_multibulk);
        let wrong_header = b"*3\r\n$3\r\nSET\r\n$1\r\nx\r\nfooz\r\n";
        assert_eq!(error_of(wrong_header, Limits::default()), "Protocol error: expected '$', got 'f'");
        for length in ["-10", "2000000000", "blabla"] {
            let input = format!("*3\r\n$3\r\nSET\r\n$1\r\nx\r\n${length}\r\n");
            assert_eq!(error_of(input.as_bytes(), Limits::default()), "Protocol error: invalid bulk length");
        }
        assert_eq!(error_of(b"*1\r\nfoo\r\n", Limits::default()), "Protocol error: expected '$', got 'f'");
    }

    #[test]
    fn counts_are_integers_written_the_way_string2ll_reads_them() {
        for count in ["", "01", "+1", "-0", " 1", "1 ", "1a", "99999999999999999999", "1048577"] {
            let input = format!("*{count}\r\n");
            assert_eq!(parse(input.as_bytes()), Err(ProtocolError::InvalidMultibulkLength), "*{count}");
        }
        assert_eq!(parse(b"*-9223372036854775808\r\nPING\r\n"), Ok(vec![command(&["PING"])]));
        assert_eq!(parse(b"*-9223372036854775809\r\n"), Err(ProtocolError::InvalidMultibulkLength));
        assert_eq!(parse_count(b"9223372036854775807"), Some(i64::MAX));
        assert_eq!(parse_count(b"9223372036854775808"), None);
    }

    #[test]
    fn hostile_bulk_lengths_are_refused_without_allocating() {
        for length in ["-1", "-5", "9999999999", "99999999999999999999999", "536870913", "01", "+3"] {
            let input = format!("*1\r\n${length}\r\n");
            assert_eq!(parse(input.as_bytes()), Err(ProtocolError::InvalidBulkLength), "${length}");
        }
        let mut parser = RequestParser::default();
        let mut buf = BytesMut::from(&b"*1048576\r\n$536870912\r\nxyz"[..]);
        assert_eq!(parser.next(&mut buf), Ok(None), "the largest allowed count and length are accepted");
        assert!(buf.capacity() <= 128 * 1024, "reserved {} bytes ahead", buf.capacity());
        assert_eq!(parser.next(&mut buf), Ok(None));
        assert!(buf.capacity() <= 128 * 1024, "reserving again did not grow the buffer further");
    }

    #[test]
    fn lines_are_measured_only_while_their_end_is_missing() {
        let limits = Limits { max_inline_len: 16, ..Limits::default() };
        assert_eq!(parse_chunked(b"PING aaaaaaaaaaa", &[], limits), Ok(vec![]), "16 bytes may wait");
        let long = b"ECHO aaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\n";
        assert_eq!(parse_chunked(long, &[], limits).map(|c| c.len()), Ok(1), "a whole line is not measured");
        assert_eq!(parse_chunked(b"*1\r", &[], limits), Ok(vec![]), "a header waits for the byte after \\r");
    }

    #[test]
    fn a_nul_byte_keeps_a_line_from_ending_as_in_redis() {
        let limits = Limits { max_inline_len: 16, ..Limits::default() };
        assert_eq!(parse_chunked(b"GET\0k\r\n", &[], limits), Ok(vec![]));
        let flood = [&b"GET\0k\r\n"[..], &[b'A'; 20]].concat();
        assert_eq!(parse_chunked(&flood, &[], limits), Err(ProtocolError::TooBigInlineRequest));
        assert_eq!(parse_chunked(b"*1\0\r\nxxxxxxxxxxxxxxxxxx", &[], limits), Err(ProtocolError::TooBigMultibulkCount));
    }

    #[test]
    fn the_two_bytes_after_a_bulk_are_skipped_unchecked_as_redis_does() {
        assert_eq!(parse(b"*1\r\n$3\r\nfooXY*1\rX$4\r\nPING\r\n"), Ok(vec![command(&["foo"]), command(&["PING"])]));
    }

    #[test]
    fn a_large_bulk_arriving_byte_by_byte_is_parsed_in_linear_time() {
        let value = vec![7u8; 1 << 20];
        let input = multibulk(&[b"SET".to_vec(), b"k".to_vec(), value.clone()]);
        let parsed = parse_chunked(&input, &vec![1; input.len()], Limits::default()).expect("valid");
        assert_eq!(parsed, vec![vec![b"SET".to_vec(), b"k".to_vec(), value]]);
    }

    #[test]
    fn a_long_line_arriving_byte_by_byte_is_searched_once() {
        let mut input = b"ECHO ".to_vec();
        input.resize(60_000, b'a');
        input.extend_from_slice(b"\r\n");
        let parsed = parse_chunked(&input, &vec![1; input.len()], Limits::default()).expect("valid");
        assert_eq!(parsed[0][1].len(), 60_000 - 5);
    }

    #[test]
    fn after_an_error_the_parser_keeps_returning_it() {
        let mut parser = RequestParser::default();
        let mut buf = BytesMut::from(&b"*1\r\n$-1\r\n"[..]);
        assert_eq!(parser.next(&mut buf), Err(ProtocolError::InvalidBulkLength));
        buf.extend_from_slice(b"*1\r\n$4\r\nPING\r\n");
        assert_eq!(parser.next(&mut buf), Err(ProtocolError::InvalidBulkLength));
    }

    fn encoded(reply: &Reply, proto: Protocol) -> Vec<u8> {
        let mut out = BytesMut::new();
        reply.encode(proto, &mut out);
        out.to_vec()
    }

    fn bulk(text: &str) -> Reply {
        Reply::Bulk(Bytes::copy_from_slice(text.as_bytes()))
    }

    fn type_examples() -> Vec<(Reply, &'static str, &'static str)> {
        let big = "3492890328409238509324850943850943825024385";
        let verbatim = Reply::Verbatim { format: *b"txt", text: Bytes::from_static(b"Some string") };
        vec![
            (Reply::ok(), "+OK\r\n", "+OK\r\n"),
            (Reply::error("ERR bad"), "-ERR bad\r\n", "-ERR bad\r\n"),
            (Reply::Integer(-42), ":-42\r\n", ":-42\r\n"),
            (Reply::Integer(i64::MIN), ":-9223372036854775808\r\n", ":-9223372036854775808\r\n"),
            (bulk("foo"), "$3\r\nfoo\r\n", "$3\r\nfoo\r\n"),
            (bulk(""), "$0\r\n\r\n", "$0\r\n\r\n"),
            (Reply::Null, "$-1\r\n", "_\r\n"),
            (Reply::NullArray, "*-1\r\n", "_\r\n"),
            (Reply::Array(vec![]), "*0\r\n", "*0\r\n"),
            (Reply::Array(vec![Reply::Integer(1), bulk("a")]), "*2\r\n:1\r\n$1\r\na\r\n", "*2\r\n:1\r\n$1\r\na\r\n"),
            (
                Reply::Map(vec![
                    (Reply::simple("first"), Reply::Integer(1)),
                    (Reply::simple("second"), Reply::Integer(2)),
                ]),
                "*4\r\n+first\r\n:1\r\n+second\r\n:2\r\n",
                "%2\r\n+first\r\n:1\r\n+second\r\n:2\r\n",
            ),
            (
                Reply::Set(vec![Reply::simple("orange"), Reply::Boolean(true), Reply::Integer(100)]),
                "*3\r\n+orange\r\n:1\r\n:100\r\n",
                "~3\r\n+orange\r\n#t\r\n:100\r\n",
            ),
            (Reply::Double(1.23), "$4\r\n1.23\r\n", ",1.23\r\n"),
            (Reply::Double(10.0), "$2\r\n10\r\n", ",10\r\n"),
            (Reply::Double(f64::INFINITY), "$3\r\ninf\r\n", ",inf\r\n"),
            (Reply::Double(f64::NEG_INFINITY), "$4\r\n-inf\r\n", ",-inf\r\n"),
            (Reply::Double(f64::NAN), "$3\r\nnan\r\n", ",nan\r\n"),
            (Reply::Boolean(true), ":1\r\n", "#t\r\n"),
            (Reply::Boolean(false), ":0\r\n", "#f\r\n"),
            (verbatim, "$11\r\nSome string\r\n", "=15\r\ntxt:Some string\r\n"),
            (
                Reply::Push(vec![bulk("message"), bulk("ch"), bulk("hi")]),
                "*3\r\n$7\r\nmessage\r\n$2\r\nch\r\n$2\r\nhi\r\n",
                ">3\r\n$7\r\nmessage\r\n$2\r\nch\r\n$2\r\nhi\r\n",
            ),
            (
                Reply::BigNumber(big.to_owned()),
                "$43\r\n3492890328409238509324850943850943825024385\r\n",
                "(3492890328409238509324850943850943825024385\r\n",
            ),
            (
                Reply::Array(vec![
                    Reply::Array(vec![Reply::Integer(1), bulk("hello"), Reply::Integer(2)]),
                    Reply::Boolean(false),
                ]),
                "*2\r\n*3\r\n:1\r\n$5\r\nhello\r\n:2\r\n:0\r\n",
                "*2\r\n*3\r\n:1\r\n$5\r\nhello\r\n:2\r\n#f\r\n",
            ),
        ]
    }

    #[test]
    fn every_type_encodes_byte_exactly_under_resp2_and_resp3() {
        for (reply, resp2, resp3) in type_examples() {
            assert_eq!(String::from_utf8_lossy(&encoded(&reply, Protocol::Resp2)), resp2, "{reply:?} in RESP2");
            assert_eq!(String::from_utf8_lossy(&encoded(&reply, Protocol::Resp3)), resp3, "{reply:?} in RESP3");
        }
    }

    /// Byte for byte what Redis 7.0.15 sends for `DEBUG PROTOCOL <type>` after `HELLO 2` and
    /// `HELLO 3` (RESP2 `push` excepted: Redis refuses it; pub/sub messages are arrays there).
    #[test]
    #[allow(clippy::approx_constant, reason = "3.141 is the value Redis's DEBUG PROTOCOL sends, not π")]
    fn replies_match_what_redis_sends_for_debug_protocol() {
        let numbers = || vec![Reply::Integer(0), Reply::Integer(1), Reply::Integer(2)];
        let pairs = (0..3).map(|i| (Reply::Integer(i), Reply::Boolean(i == 1))).collect();
        let verbatim = Reply::Verbatim { format: *b"txt", text: Bytes::from_static(b"This is a verbatim\nstring") };
        let big = "1234567999999999999999999999999999999";
        let cases: Vec<(Reply, &str, &str)> = vec![
            (bulk("Hello World"), "$11\r\nHello World\r\n", "$11\r\nHello World\r\n"),
            (Reply::Integer(12345), ":12345\r\n", ":12345\r\n"),
            (Reply::Double(3.141), "$5\r\n3.141\r\n", ",3.141\r\n"),
            (
                Reply::BigNumber(big.to_owned()),
                "$37\r\n1234567999999999999999999999999999999\r\n",
                "(1234567999999999999999999999999999999\r\n",
            ),
            (Reply::Null, "$-1\r\n", "_\r\n"),
            (Reply::Array(numbers()), "*3\r\n:0\r\n:1\r\n:2\r\n", "*3\r\n:0\r\n:1\r\n:2\r\n"),
            (Reply::Set(numbers()), "*3\r\n:0\r\n:1\r\n:2\r\n", "~3\r\n:0\r\n:1\r\n:2\r\n"),
            (
                Reply::Map(pairs),
                "*6\r\n:0\r\n:0\r\n:1\r\n:1\r\n:2\r\n:0\r\n",
                "%3\r\n:0\r\n#f\r\n:1\r\n#t\r\n:2\r\n#f\r\n",
            ),
            (verbatim, "$25\r\nThis is a verbatim\nstring\r\n", "=29\r\ntxt:This is a verbatim\nstring\r\n"),
            (Reply::Boolean(true), ":1\r\n", "#t\r\n"),
            (Reply::Boolean(false), ":0\r\n", "#f\r\n"),
        ];
        for (reply, resp2, resp3) in cases {
            assert_eq!(String::from_utf8_lossy(&encoded(&reply, Protocol::Resp2)), resp2, "{reply:?} in RESP2");
            assert_eq!(String::from_utf8_lossy(&encoded(&reply, Protocol::Resp3)), resp3, "{reply:?} in RESP3");
        }
        let push = Reply::Push(vec![bulk("server-cpu-usage"), Reply::Integer(42)]);
        assert_eq!(encoded(&push, Protocol::Resp3), b">2\r\n$16\r\nserver-cpu-usage\r\n:42\r\n");
    }

    #[test]
    fn line_breaks_in_simple_strings_and_errors_are_sent_as_spaces() {
        assert_eq!(encoded(&Reply::error("ERR a\r\nb"), Protocol::Resp2), b"-ERR a  b\r\n");
        assert_eq!(encoded(&Reply::simple("a\nb"), Protocol::Resp3), b"+a b\r\n");
    }

    #[test]
    fn doubles_are_formatted_like_redis() {
        let cases = [
            (3.5, "3.5"),
            (-2.25, "-2.25"),
            (0.1, "0.1"),
            (0.1 + 0.2, "0.30000000000000004"),
            (1.0 / 3.0, "0.3333333333333333"),
            (0.5, "0.5"),
            (0.001, "0.001"),
            (0.000015, "0.000015"),
            (1.5e-6, "1.5e-6"),
            (1e-7, "1e-7"),
            (5e-324, "5e-324"),
            (123.456, "123.456"),
            (1234567.125, "1234567.125"),
            (1.0, "1"),
            (-3.0, "-3"),
            (0.0, "0"),
            (-0.0, "-0"),
            (1e15, "1000000000000000"),
            (4_611_686_018_427_387_904.0, "4611686018427387904"),
            (9_223_372_036_854_775_808.0, "9223372036854776000"),
            (1.2345678901234568e20, "123456789012345680000"),
            (1e20, "1e+20"),
            (1e100, "1e+100"),
            (1.5e300, "1.5e+300"),
            (f64::MAX, "1.7976931348623157e+308"),
            (f64::INFINITY, "inf"),
            (f64::NEG_INFINITY, "-inf"),
            (f64::NAN, "nan"),
        ];
        for (value, text) in cases {
            assert_eq!(String::from_utf8_lossy(DoubleText::new(value).as_bytes()), text, "{value:e}");
        }
    }

    #[test]
    fn encode_parts_hands_large_payloads_over_without_copying() {
        let large = Bytes::from(vec![b'v'; ZERO_COPY_MIN_LEN]);
        let reply = Reply::Array(vec![Reply::Bulk(large.clone()), bulk("small"), Reply::Bulk(large.clone())]);
        let (mut parts, mut scratch) = (Vec::new(), BytesMut::new());
        reply.encode_parts(Protocol::Resp3, &mut parts, &mut scratch);
        assert_eq!(parts.len(), 5, "header, value, between, value, trailer");
        assert_eq!(parts[1].as_ptr(), large.as_ptr());
        assert_eq!(parts[3].as_ptr(), large.as_ptr());
        assert_eq!(&parts[0][..], format!("*3\r\n${}\r\n", ZERO_COPY_MIN_LEN).as_bytes());
        assert_eq!(parts.concat(), encoded(&reply, Protocol::Resp3));
        assert!(scratch.is_empty());
    }

    /// Reads one reply back (a test-only decoder, RESP3's types plus RESP2's nulls).
    fn decode(input: &[u8]) -> (Reply, &[u8]) {
        let (&kind, rest) = input.split_first().expect("a type byte");
        let end = rest.windows(2).position(|w| w == b"\r\n").expect("a line end");
        let (text, mut rest) = (std::str::from_utf8(&rest[..end]).expect("utf-8 line"), &rest[end + 2..]);
        let number = || text.parse::<usize>().expect("a length");
        let items = |n: usize, rest: &mut &[u8]| -> Vec<Reply> {
            (0..n)
                .map(|_| {
                    let (item, after) = decode(rest);
                    *rest = after;
                    item
                })
                .collect()
        };
        let reply = match kind {
            b'+' => Reply::Simple(text.to_owned().into()),
            b'-' => Reply::Error(text.to_owned().into()),
            b':' => Reply::Integer(text.parse().expect("an integer")),
            b'_' => Reply::Null,
            b',' => Reply::Double(text.parse().expect("a double")),
            b'#' => Reply::Boolean(text == "t"),
            b'(' => Reply::BigNumber(text.to_owned()),
            b'$' if text == "-1" => Reply::Null,
            b'*' if text == "-1" => Reply::NullArray,
            b'$' | b'=' => {
                let payload = Bytes::copy_from_slice(&rest[..number()]);
                assert_eq!(&rest[number()..number() + 2], b"\r\n");
                rest = &rest[number() + 2..];
                if kind == b'$' {
                    Reply::Bulk(payload)
                } else {
                    Reply::Verbatim { format: [payload[0], payload[1], payload[2]], text: payload.slice(4..) }
                }
            }
            b'*' => Reply::Array(items(number(), &mut rest)),
            b'~' => Reply::Set(items(number(), &mut rest)),
            b'>' => Reply::Push(items(number(), &mut rest)),
            b'%' => {
                let flat = items(number() * 2, &mut rest);
                Reply::Map(flat.chunks(2).map(|kv| (kv[0].clone(), kv[1].clone())).collect())
            }
            other => panic!("unknown type byte {other}"),
        };
        (reply, rest)
    }

    /// What a RESP3 client reads back: both nulls are `_`.
    fn as_resp3(reply: &Reply) -> Reply {
        let all = |items: &[Reply]| items.iter().map(as_resp3).collect();
        match reply {
            Reply::NullArray => Reply::Null,
            Reply::Array(items) => Reply::Array(all(items)),
            Reply::Set(items) => Reply::Set(all(items)),
            Reply::Push(items) => Reply::Push(all(items)),
            Reply::Map(pairs) => Reply::Map(pairs.iter().map(|(k, v)| (as_resp3(k), as_resp3(v))).collect()),
            other => other.clone(),
        }
    }

    /// What a RESP2 client reads back: Redis's downgrades.
    fn as_resp2(reply: &Reply) -> Reply {
        let all = |items: &[Reply]| Reply::Array(items.iter().map(as_resp2).collect());
        match reply {
            Reply::Array(items) | Reply::Set(items) | Reply::Push(items) => all(items),
            Reply::Map(pairs) => Reply::Array(pairs.iter().flat_map(|(k, v)| [as_resp2(k), as_resp2(v)]).collect()),
            Reply::Double(value) => Reply::Bulk(Bytes::copy_from_slice(DoubleText::new(*value).as_bytes())),
            Reply::Boolean(value) => Reply::Integer(i64::from(*value)),
            Reply::Verbatim { text, .. } => Reply::Bulk(text.clone()),
            Reply::BigNumber(digits) => bulk(digits),
            other => other.clone(),
        }
    }

    fn double() -> impl Strategy<Value = f64> {
        prop_oneof![
            any::<f64>().prop_filter("NaN never equals itself", |d| !d.is_nan()),
            (any::<i32>(), 0..12i32).prop_map(|(m, e)| f64::from(m) / 10f64.powi(e)),
        ]
    }

    fn reply() -> impl Strategy<Value = Reply> {
        let leaf = prop_oneof![
            "[ -~]{0,12}".prop_map(|s| Reply::Simple(s.into())),
            "[A-Z]{1,6} [ -~]{0,12}".prop_map(|s| Reply::Error(s.into())),
            any::<i64>().prop_map(Reply::Integer),
            proptest::collection::vec(any::<u8>(), 0..40).prop_map(|v| Reply::Bulk(v.into())),
            proptest::collection::vec(any::<u8>(), ZERO_COPY_MIN_LEN..ZERO_COPY_MIN_LEN + 8)
                .prop_map(|v| Reply::Bulk(v.into())),
            Just(Reply::Null),
            Just(Reply::NullArray),
            double().prop_map(Reply::Double),
            any::<bool>().prop_map(Reply::Boolean),
            (prop_oneof![Just(*b"txt"), Just(*b"mkd")], proptest::collection::vec(any::<u8>(), 0..20))
                .prop_map(|(format, text)| Reply::Verbatim { format, text: text.into() }),
            "-?[1-9][0-9]{0,40}".prop_map(Reply::BigNumber),
        ];
        leaf.prop_recursive(3, 48, 5, |inner| {
            prop_oneof![
                proptest::collection::vec(inner.clone(), 0..5).prop_map(Reply::Array),
                proptest::collection::vec(inner.clone(), 0..5).prop_map(Reply::Set),
                proptest::collection::vec(inner.clone(), 0..5).prop_map(Reply::Push),
                proptest::collection::vec((inner.clone(), inner), 0..4).prop_map(Reply::Map),
            ]
        })
    }

    /// An inline argument in double quotes, every byte that needs it escaped.
    fn quoted(arg: &[u8]) -> Vec<u8> {
        let mut out = vec![b'"'];
        for &b in arg {
            match b {
                b'"' | b'\\' => out.extend_from_slice(&[b'\\', b]),
                b' '..=b'~' => out.push(b),
                _ => out.extend_from_slice(format!("\\x{b:02x}").as_bytes()),
            }
        }
        out.push(b'"');
        out
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: cases(256), ..ProptestConfig::default() })]

        #[test]
        fn pipelined_multibulk_commands_round_trip_in_any_chunking(
            commands in proptest::collection::vec(
                proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..24), 1..5), 1..5),
            sizes in proptest::collection::vec(1..16usize, 0..64),
        ) {
            let input: Vec<u8> = commands.iter().flat_map(|c| multibulk(c)).collect();
            prop_assert_eq!(parse_chunked(&input, &sizes, Limits::default()), Ok(commands));
        }

        #[test]
        fn quoted_inline_arguments_round_trip(
            args in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..16), 1..5),
            sizes in proptest::collection::vec(1..8usize, 0..32),
        ) {
            let mut input = args.iter().map(|a| quoted(a)).collect::<Vec<_>>().join(&b' ');
            input.extend_from_slice(b"\r\n");
            prop_assert_eq!(parse_chunked(&input, &sizes, Limits::default()), Ok(vec![args]));
        }

        #[test]
        fn arbitrary_bytes_never_panic_nor_make_the_buffer_outgrow_its_input(
            input in proptest::collection::vec(
                prop_oneof![Just(b'*'), Just(b'$'), Just(b'\r'), Just(b'\n'), Just(b'"'), Just(b'9'), any::<u8>()],
                0..400),
            sizes in proptest::collection::vec(1..32usize, 0..64),
        ) {
            let mut parser = RequestParser::new(Limits { max_inline_len: 64, ..Limits::default() });
            let mut buf = BytesMut::new();
            let (mut rest, mut sizes) = (&input[..], sizes.into_iter());
            while !rest.is_empty() {
                let take = sizes.next().unwrap_or(rest.len()).min(rest.len());
                buf.extend_from_slice(&rest[..take]);
                rest = &rest[take..];
                while let Ok(Some(_)) = parser.next(&mut buf) {}
                let bound = 2 * (input.len() + MAX_RESERVE_AHEAD) + 64;
                prop_assert!(buf.capacity() <= bound, "capacity {}", buf.capacity());
            }
        }

        #[test]
        fn replies_read_back_as_sent_under_resp3_and_downgraded_under_resp2(reply in reply()) {
            for (proto, expected) in [(Protocol::Resp3, as_resp3(&reply)), (Protocol::Resp2, as_resp2(&reply))] {
                let bytes = encoded(&reply, proto);
                let (decoded, rest) = decode(&bytes);
                prop_assert!(rest.is_empty());
                prop_assert_eq!(decoded, expected);
                let (mut parts, mut scratch) = (Vec::new(), BytesMut::new());
                reply.encode_parts(proto, &mut parts, &mut scratch);
                prop_assert_eq!(parts.concat(), bytes);
            }
        }

        #[test]
        fn doubles_read_back_exactly_from_their_text(value in double()) {
            let text = DoubleText::new(value);
            let text = std::str::from_utf8(text.as_bytes()).expect("ascii");
            prop_assert_eq!(text.parse::<f64>().expect("a number"), value, "{}", text);
        }
    }
}
