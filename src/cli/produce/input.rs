//! Stdin for `weir produce`: a reader thread that hands over chunks ending at a line
//! boundary, and the split of a chunk into records (lines, keys). It knows nothing of
//! partitions or batches.

use std::io::Read;

use anyhow::Context;
use tokio::sync::mpsc;

/// Bytes read from stdin at a time: large enough that a file is read in few system calls,
/// small enough that batching starts at once. A pipe returns what it has, so interactive
/// lines are not held back.
const STDIN_CHUNK: usize = 256 * 1024;

/// Reads stdin on its own thread (std's stdin blocks) and sends chunks that end with a
/// `\n`, except the last one at end of input; a line longer than a chunk is carried over
/// until its end arrives. The channel closes at end of input; the thread ends when the
/// receiver is dropped.
///
/// # Errors
/// The thread cannot be started. Read errors arrive through the channel.
pub(super) fn spawn_stdin_reader(tx: mpsc::Sender<std::io::Result<Vec<u8>>>) -> anyhow::Result<()> {
    std::thread::Builder::new()
        .name("stdin".into())
        .spawn(move || {
            let mut stdin = std::io::stdin().lock();
            let mut carry: Vec<u8> = Vec::new();
            loop {
                let mut chunk = std::mem::take(&mut carry);
                let start = chunk.len();
                chunk.resize(start + STDIN_CHUNK, 0);
                let n = match stdin.read(&mut chunk[start..]) {
                    Ok(n) => n,
                    Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {
                        chunk.truncate(start);
                        carry = chunk;
                        continue;
                    }
                    Err(e) => {
                        let _ = tx.blocking_send(Err(e));
                        return;
                    }
                };
                chunk.truncate(start + n);
                if n == 0 {
                    if !chunk.is_empty() {
                        let _ = tx.blocking_send(Ok(chunk));
                    }
                    return;
                }
                // The carried-over part has no newline: only the new bytes are searched.
                match chunk[start..].iter().rposition(|&b| b == b'\n').map(|at| start + at) {
                    Some(end) => {
                        carry = chunk.split_off(end + 1);
                        if tx.blocking_send(Ok(chunk)).is_err() {
                            return; // the producer stopped reading
                        }
                    }
                    None => carry = chunk,
                }
            }
        })
        .context("cannot start the stdin reader thread")?;
    Ok(())
}

/// The lines of a chunk: split at `\n`, where a final `\n` ends the last line rather than
/// starting an empty one.
pub(super) fn lines(chunk: &[u8]) -> impl Iterator<Item = &[u8]> {
    let body = chunk.strip_suffix(b"\n").unwrap_or(chunk);
    // An empty chunk has no lines; "\n" has one empty line.
    let none = chunk.is_empty();
    body.split(|&b| b == b'\n').filter(move |_| !none)
}

/// `line` split at the first `delimiter` into (key, value); a null key without one.
pub(super) fn split_key<'a>(line: &'a [u8], delimiter: Option<&[u8]>) -> (Option<&'a [u8]>, &'a [u8]) {
    let Some(d) = delimiter.filter(|d| !d.is_empty()) else { return (None, line) };
    match line.windows(d.len()).position(|w| w == d) {
        Some(at) => (Some(&line[..at]), &line[at + d.len()..]),
        None => (None, line),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_split_at_newlines_and_a_final_newline_ends_the_last_line() {
        let all = |c: &[u8]| lines(c).map(|l| l.to_vec()).collect::<Vec<_>>();
        assert_eq!(all(b"a\nb\n"), [b"a".to_vec(), b"b".to_vec()]);
        assert_eq!(all(b"a\n\nb"), [b"a".to_vec(), vec![], b"b".to_vec()]);
        assert_eq!(all(b"\n"), [Vec::<u8>::new()]);
        assert!(all(b"").is_empty());
    }

    #[test]
    fn keys_are_split_at_the_first_delimiter_and_lines_without_one_have_none() {
        assert_eq!(split_key(b"k=v=w", Some(b"=")), (Some(&b"k"[..]), &b"v=w"[..]));
        assert_eq!(split_key(b"k::v", Some(b"::")), (Some(&b"k"[..]), &b"v"[..]));
        assert_eq!(split_key(b"=v", Some(b"=")), (Some(&b""[..]), &b"v"[..]));
        assert_eq!(split_key(b"plain", Some(b"=")), (None, &b"plain"[..]));
        assert_eq!(split_key(b"k=v", None), (None, &b"k=v"[..]));
    }
}
