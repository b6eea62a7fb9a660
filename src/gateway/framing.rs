//! Finding whole HTTP messages in the bytes received so far.
//!
//! The gateway's sockets are non-blocking, so a request or an answer
//! arrives in pieces of any size. These functions say whether the bytes at
//! hand hold a complete head or body yet, with the limits of the blocking
//! reader in [`crate::client`] (which parses the head once it is whole), and
//! with work linear in the bytes received, however finely a client drips
//! them: a head is searched for only from where the last search ended, and
//! a chunked body is decoded piece by piece as it arrives.

use crate::client::{self, Framing, MessageError, Response};

/// Length of the blank lines (`\r\n` or `\n`) at the start of `buf`, which
/// may precede a request (RFC 9112 §2.2) and are skipped.
pub(super) fn leading_blank_lines(buf: &[u8]) -> usize {
    let mut at = 0;
    loop {
        match buf.get(at..) {
            Some([b'\n', ..]) => at += 1,
            Some([b'\r', b'\n', ..]) => at += 2,
            _ => return at,
        }
    }
}

/// The length of the head at the start of `buf` (through its blank line),
/// if it is all there. `from` is where the previous search stopped: a head
/// dripping in is not searched again from its start.
pub(super) fn head_end(buf: &[u8], from: &mut usize) -> Option<usize> {
    // A blank line is "\n\n" or "\n\r\n"; back up so one split across two
    // reads is still found.
    let start = from.saturating_sub(2);
    let rest = buf.get(start..)?;
    for (i, b) in rest.iter().enumerate() {
        if *b != b'\n' {
            continue;
        }
        let after = rest.get(i + 1..).unwrap_or_default();
        let end = match after {
            [b'\n', ..] => Some(i + 2),
            [b'\r', b'\n', ..] => Some(i + 3),
            _ => None,
        };
        if let Some(end) = end {
            return Some(start + end);
        }
    }
    *from = buf.len();
    None
}

/// Where an incremental chunked decoder is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
enum ChunkState {
    /// Expecting a chunk-size line.
    #[default]
    Size,
    /// Inside a chunk: this many data bytes still to come.
    Data(u64),
    /// After a chunk's data: expecting its CRLF.
    DataEnd,
    /// After the last chunk: trailer lines until a blank one.
    Trailer,
}

/// A `Transfer-Encoding: chunked` request body decoded as it arrives.
#[derive(Debug, Default)]
pub(super) struct Chunked {
    state: ChunkState,
    trailers: usize,
}

/// Longest chunk-size line (extensions included) accepted.
const MAX_CHUNK_LINE: usize = 1024;
/// Longest trailer line accepted.
const MAX_TRAILER_LINE: usize = 8192;

impl Chunked {
    /// Decode what `input` holds into `body` (at most `limit` bytes in all).
    /// Returns how many bytes of `input` were used up and whether the body
    /// is complete; bytes not used up are an incomplete line, to be offered
    /// again with more after them.
    pub(super) fn feed(
        &mut self,
        input: &[u8],
        body: &mut Vec<u8>,
        limit: usize,
    ) -> Result<(usize, bool), MessageError> {
        let mut at = 0;
        loop {
            let rest = input.get(at..).unwrap_or_default();
            match self.state {
                ChunkState::Size => {
                    let Some((line, used)) = line(rest, MAX_CHUNK_LINE)? else {
                        return Ok((at, false));
                    };
                    at += used;
                    let size = chunk_size(line)?;
                    if size == 0 {
                        self.state = ChunkState::Trailer;
                        continue;
                    }
                    let room = limit.saturating_sub(body.len());
                    if size > u64::try_from(room).unwrap_or(u64::MAX) {
                        return Err(MessageError::TooLarge);
                    }
                    self.state = ChunkState::Data(size);
                }
                ChunkState::Data(left) => {
                    if rest.is_empty() {
                        return Ok((at, false));
                    }
                    let take = usize::try_from(left).unwrap_or(usize::MAX).min(rest.len());
                    body.extend_from_slice(rest.get(..take).unwrap_or_default());
                    at += take;
                    let left = left - u64::try_from(take).unwrap_or(left);
                    self.state = if left == 0 {
                        ChunkState::DataEnd
                    } else {
                        ChunkState::Data(left)
                    };
                }
                ChunkState::DataEnd => match rest {
                    [b'\n', ..] => {
                        at += 1;
                        self.state = ChunkState::Size;
                    }
                    [b'\r', b'\n', ..] => {
                        at += 2;
                        self.state = ChunkState::Size;
                    }
                    [] | [b'\r'] => return Ok((at, false)),
                    _ => return Err(MessageError::Malformed("chunk not followed by CRLF")),
                },
                ChunkState::Trailer => {
                    let Some((line, used)) = line(rest, MAX_TRAILER_LINE)? else {
                        return Ok((at, false));
                    };
                    at += used;
                    if line.is_empty() {
                        return Ok((at, true));
                    }
                    // Trailers are read and discarded, but bounded.
                    self.trailers += 1;
                    if self.trailers > client::MAX_HEADERS {
                        return Err(MessageError::TooLarge);
                    }
                }
            }
        }
    }
}

/// The first line of `buf` without its line end, and the bytes it spans;
/// `None` while its end has not arrived. Longer than `max`: too large.
fn line(buf: &[u8], max: usize) -> Result<Option<(&[u8], usize)>, MessageError> {
    let Some(nl) = buf.iter().take(max + 2).position(|b| *b == b'\n') else {
        return if buf.len() > max + 1 {
            Err(MessageError::TooLarge)
        } else {
            Ok(None)
        };
    };
    let text = buf.get(..nl).unwrap_or_default();
    let text = text.strip_suffix(b"\r").unwrap_or(text);
    if text.len() > max {
        return Err(MessageError::TooLarge);
    }
    Ok(Some((text, nl + 1)))
}

/// The size on a chunk-size line (extensions ignored).
fn chunk_size(line: &[u8]) -> Result<u64, MessageError> {
    let bad = MessageError::Malformed("bad chunk size");
    let size = line.split(|b| *b == b';').next().unwrap_or_default();
    let size = size.trim_ascii();
    if size.is_empty() || size.len() > 15 || !size.iter().all(u8::is_ascii_hexdigit) {
        return Err(bad);
    }
    let text = std::str::from_utf8(size).map_err(|_| MessageError::Malformed("bad chunk size"))?;
    u64::from_str_radix(text, 16).map_err(|_| bad)
}

/// A complete answer found at the start of a buffer.
pub(super) struct Answer {
    /// The answer (interim `1xx` answers skipped).
    pub(super) response: Response,
    /// Bytes of the buffer it spans.
    pub(super) used: usize,
    /// Whether the connection may carry another request.
    pub(super) reusable: bool,
}

/// The answer to a `method` request at the start of `buf`, if all of it
/// has arrived (`eof`: the server closed, which ends an answer without a
/// length). For the daemon's answers, which always carry their length, a
/// partial answer costs a search for the head's end and a length check.
pub(super) fn answer(
    buf: &[u8],
    eof: bool,
    method: &str,
    max_body: usize,
) -> Result<Option<Answer>, MessageError> {
    let mut at = 0;
    loop {
        let rest = buf.get(at..).unwrap_or_default();
        let mut from = 0;
        let Some(head_len) = head_end(rest, &mut from) else {
            if rest.len() > client::MAX_HEAD {
                return Err(MessageError::TooLarge);
            }
            return if eof {
                Err(MessageError::Closed)
            } else {
                Ok(None)
            };
        };
        let mut head = rest.get(..head_len).unwrap_or_default();
        let (line, headers) = client::read_head(&mut head, client::MAX_HEAD, client::MAX_HEADERS)?
            .ok_or(MessageError::Closed)?;
        let status = client::parse_status_line(&line)?;
        at += head_len;
        if (100..200).contains(&status) {
            continue;
        }
        let framing = if method == "HEAD" || status == 204 || status == 304 {
            Framing::Empty
        } else {
            client::message_framing(&headers, Framing::UntilClose)?
        };
        let mut body_bytes = buf.get(at..).unwrap_or_default();
        let before = body_bytes.len();
        let body = match framing {
            Framing::Length(n) if u64::try_from(before).unwrap_or(u64::MAX) < n => {
                if n > u64::try_from(max_body).unwrap_or(u64::MAX) {
                    return Err(MessageError::TooLarge);
                }
                return if eof {
                    Err(MessageError::Closed)
                } else {
                    Ok(None)
                };
            }
            Framing::UntilClose if !eof => {
                if before > max_body {
                    return Err(MessageError::TooLarge);
                }
                return Ok(None);
            }
            _ => match client::read_body(&mut body_bytes, framing, max_body) {
                Ok(body) => body,
                Err(MessageError::Closed) if !eof => return Ok(None),
                Err(e) => return Err(e),
            },
        };
        let used = at + (before - body_bytes.len());
        let reusable = line.starts_with("HTTP/1.1 ")
            && framing != Framing::UntilClose
            && !client::header_value(&headers, "connection")
                .is_some_and(|v| v.to_ascii_lowercase().contains("close"));
        return Ok(Some(Answer {
            response: Response {
                status,
                headers,
                body,
            },
            used,
            reusable,
        }));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_a_head_dripping_in() {
        let raw = b"GET / HTTP/1.1\r\nHost: x\r\n\r\nGET /next";
        let mut from = 0;
        for n in 0..raw.len() {
            let got = head_end(&raw[..n], &mut from);
            // Found exactly once its blank line is complete, never before.
            assert_eq!(got.is_some(), n >= 27, "at {n}");
            if let Some(end) = got {
                assert_eq!(end, 27);
            }
        }
        let mut from = 0;
        assert_eq!(head_end(b"GET / HTTP/1.0\n\nrest", &mut from), Some(16));
        assert_eq!(leading_blank_lines(b"\r\n\nGET"), 3);
        assert_eq!(leading_blank_lines(b"\rGET"), 0);
    }

    #[test]
    fn decodes_chunks_fed_a_byte_at_a_time() {
        let raw = b"5;ext=1\r\nhello\r\n6\r\n world\r\n0\r\nX-Trailer: 1\r\n\r\nNEXT";
        let mut dec = Chunked::default();
        let mut body = Vec::new();
        let mut pending: Vec<u8> = Vec::new();
        let mut done_at = None;
        for (i, b) in raw.iter().enumerate() {
            pending.push(*b);
            let (used, done) = dec.feed(&pending, &mut body, 100).unwrap();
            pending.drain(..used);
            if done {
                done_at = Some(i);
                break;
            }
        }
        assert_eq!(body, b"hello world");
        assert_eq!(done_at, Some(raw.len() - 5));
        // All at once, with bare LF line ends.
        let mut dec = Chunked::default();
        let mut body = Vec::new();
        let (used, done) = dec.feed(b"3\nabc\n0\n\n", &mut body, 100).unwrap();
        assert_eq!((used, done, body.as_slice()), (9, true, &b"abc"[..]));
    }

    #[test]
    fn refuses_bad_or_oversized_chunks() {
        let feed = |raw: &[u8], limit| Chunked::default().feed(raw, &mut Vec::new(), limit);
        assert!(matches!(
            feed(b"zz\r\n", 100),
            Err(MessageError::Malformed(_))
        ));
        assert!(matches!(feed(b"65\r\n", 100), Err(MessageError::TooLarge)));
        assert!(matches!(
            feed(b"1\r\nab\r\n", 100),
            Err(MessageError::Malformed(_))
        ));
        let long = vec![b'1'; MAX_CHUNK_LINE + 2];
        assert!(matches!(feed(&long, 100), Err(MessageError::TooLarge)));
        // An incomplete size line is waited for, not refused.
        assert!(matches!(feed(b"1f", 100), Ok((0, false))));
    }

    #[test]
    fn finds_whole_answers_only() {
        let raw =
            b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhelloX";
        for n in 0..raw.len() - 1 {
            assert!(
                answer(&raw[..n], false, "GET", 100).unwrap().is_none(),
                "{n}"
            );
        }
        let a = answer(raw, false, "GET", 100).unwrap().unwrap();
        assert_eq!(a.response.status, 200);
        assert_eq!(a.response.body, b"hello");
        assert_eq!(a.used, raw.len() - 1);
        assert!(a.reusable);
        // Without a length the answer ends at the close.
        let raw = b"HTTP/1.1 200 OK\r\n\r\nall of it";
        assert!(answer(raw, false, "GET", 100).unwrap().is_none());
        let a = answer(raw, true, "GET", 100).unwrap().unwrap();
        assert_eq!(a.response.body, b"all of it");
        assert!(!a.reusable);
        let chunked = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nok\r\n0\r\n\r\n";
        assert!(answer(&chunked[..50], false, "GET", 100).unwrap().is_none());
        let a = answer(chunked, false, "GET", 100).unwrap().unwrap();
        assert_eq!(a.response.body, b"ok");
        // Cut short by the server, or over the limit.
        assert!(matches!(
            answer(&raw[..10], true, "GET", 100),
            Err(MessageError::Closed)
        ));
        let big = b"HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n";
        assert!(matches!(
            answer(big, false, "GET", 100),
            Err(MessageError::TooLarge)
        ));
    }
}
