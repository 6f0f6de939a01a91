//! RESP framing: an incremental reader that walks RESP2/RESP3 values as their bytes arrive
//! and reports them to a [`Visit`]or, without keeping them.
//!
//! What it buffers is bounded whatever the input claims: one line at a time (a length header
//! of at most [`MAX_HEADER_LINE`] bytes, an inline command of at most [`MAX_INLINE`] bytes, the
//! first [`KEEP_LINE`] bytes of a one-line value — the rest of a long simple string is read
//! and dropped, up to [`MAX_SIMPLE_LINE`]), and one small frame per open aggregate, at most
//! [`MAX_DEPTH`] of them. Bulk payloads are streamed to the visitor in the pieces they arrive
//! in; a 512 MiB bulk string costs nothing here.
//!
//! Lines end at LF; a CR before it is dropped (Redis itself is this lenient with inline
//! commands). A bulk payload must be followed by exactly CR LF. Anything else the grammar does
//! not allow is an [`RespError`]: the reader stops there and its owner gives the connection up.
//! RESP3 streamed strings and aggregates (`$?`, `*?`) are not supported (Redis never sends
//! them) and are errors.

use memchr::memchr;

/// Aggregates open at once (an array in a map in an array ...).
pub const MAX_DEPTH: usize = 32;
/// Longest bulk string accepted: Redis's own default `proto-max-bulk-len` (and the largest
/// string value Redis stores). Longer claims are errors.
pub const MAX_BULK: u64 = 512 * 1024 * 1024;
/// Most elements an aggregate may announce (Redis lists and sets hold at most 2^32 - 1).
pub const MAX_ELEMENTS: u64 = u32::MAX as u64;
/// Most arguments a command may announce: Redis refuses multibulk lengths above `INT_MAX`.
pub const MAX_ARGS: u64 = i32::MAX as u64;
/// Longest length header line (`*`, `$`, `:`, ... and their number).
pub const MAX_HEADER_LINE: usize = 32;
/// Longest inline command line: Redis's `PROTO_INLINE_MAX_SIZE`.
pub const MAX_INLINE: usize = 64 * 1024;
/// Longest one-line value (simple string, error, double, big number).
pub const MAX_SIMPLE_LINE: usize = 1024 * 1024;
/// Bytes of a one-line value handed to the visitor; the rest is dropped.
pub const KEEP_LINE: usize = 1024;

/// Why the reader stopped.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RespError {
    /// A byte that starts no RESP value (`not RESP` from a server).
    BadType(u8),
    /// A length or count that is not a number, or a negative one where none is allowed.
    BadLength,
    /// A length or count beyond what Redis accepts ([`MAX_BULK`], [`MAX_ELEMENTS`],
    /// [`MAX_ARGS`]).
    AbsurdLength,
    /// More than [`MAX_DEPTH`] nested aggregates.
    TooDeep,
    /// A line longer than its limit.
    LineTooLong,
    /// A bulk payload not followed by CR LF.
    BadTerminator,
    /// A request array element that is not a bulk string (Redis: "expected '$'").
    ExpectedBulk,
    /// An integer or boolean whose text is not one.
    BadValue,
}

impl RespError {
    /// The anomaly name it is counted under.
    pub fn weird(self) -> &'static str {
        match self {
            RespError::BadType(_) => "redis_bad_type",
            RespError::BadLength => "redis_bad_length",
            RespError::AbsurdLength => "redis_absurd_length",
            RespError::TooDeep => "redis_nesting_too_deep",
            RespError::LineTooLong => "redis_line_too_long",
            RespError::BadTerminator => "redis_bad_bulk_terminator",
            RespError::ExpectedBulk => "redis_expected_bulk_string",
            RespError::BadValue => "redis_bad_value",
        }
    }
}

/// Which end of the connection the bytes come from: clients send arrays of bulk strings or
/// inline commands; servers send any RESP value.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    /// Commands.
    Client,
    /// Replies and pushes.
    Server,
}

/// Receives the structure of the values read. Calls nest: a value is a `scalar`, a
/// `bulk_start` .. `bulk_data`* .. `bulk_end`, or an `agg_start` .. values .. `agg_end`.
/// An attribute (`|`) is an aggregate of type `|` that precedes the value it annotates.
pub trait Visit {
    /// The first byte of a top-level message was read.
    fn begin(&mut self);
    /// A one-line value (`+ - : _ , # (`): its text without type byte and line end, cut to
    /// [`KEEP_LINE`] bytes.
    fn scalar(&mut self, ty: u8, text: &[u8]);
    /// A bulk value (`$ ! =`) of `len` bytes begins; `None` is RESP2's null bulk string.
    fn bulk_start(&mut self, ty: u8, len: Option<u64>);
    /// Some of the bulk payload.
    fn bulk_data(&mut self, data: &[u8]);
    /// The bulk value ended.
    fn bulk_end(&mut self);
    /// An aggregate (`* % ~ > |`) of `len` entries begins (maps and attributes count pairs);
    /// `None` is RESP2's null array.
    fn agg_start(&mut self, ty: u8, len: Option<u64>);
    /// The aggregate ended.
    fn agg_end(&mut self);
    /// An inline command line (client only), without its line end.
    fn inline(&mut self, line: &[u8]);
    /// The top-level message ended.
    fn message_end(&mut self);
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum St {
    /// Expecting the type byte of a value.
    Type,
    /// Reading the line of a value whose type byte was `Reader::ty`.
    Line,
    /// Reading an inline command line.
    Inline,
    /// Inside a bulk payload: bytes left.
    Bulk(u64),
    /// Expecting the CR after a bulk payload.
    BulkCr,
    /// Expecting the LF after a bulk payload.
    BulkLf,
    /// An error stopped the reader.
    Failed,
}

#[derive(Clone, Copy, Debug)]
struct Frame {
    ty: u8,
    /// Values still to come.
    left: u64,
}

/// The reader for one direction of a connection.
#[derive(Debug)]
pub struct Reader {
    role: Role,
    st: St,
    ty: u8,
    line: Vec<u8>,
    /// Length of the current line, including bytes not kept.
    line_len: usize,
    stack: Vec<Frame>,
    in_msg: bool,
}

/// The type bytes a server may send.
const TYPES: &[u8] = b"+-:$*_,#(!=%~>|";

fn is_header(ty: u8) -> bool {
    matches!(
        ty,
        b'$' | b'!' | b'=' | b'*' | b'%' | b'~' | b'>' | b'|' | b':' | b'_' | b'#'
    )
}

/// Parses a RESP length or integer: optional sign, decimal digits, nothing else.
pub fn parse_int(b: &[u8]) -> Option<i64> {
    let (neg, digits) = match b.split_first() {
        Some((b'-', rest)) => (true, rest),
        Some((b'+', rest)) => (false, rest),
        _ => (false, b),
    };
    if digits.is_empty() || digits.len() > 19 || !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let mut n: i64 = 0;
    for &d in digits {
        n = n.checked_mul(10)?.checked_add(i64::from(d - b'0'))?;
    }
    Some(if neg { -n } else { n })
}

impl Reader {
    /// Heap bytes held (the current line, the stack of open aggregates).
    pub fn heap_bytes(&self) -> usize {
        self.line.capacity() + self.stack.capacity() * std::mem::size_of::<Frame>()
    }

    /// A reader for bytes sent by `role`.
    pub fn new(role: Role) -> Self {
        Reader {
            role,
            st: St::Type,
            ty: 0,
            line: Vec::new(),
            line_len: 0,
            stack: Vec::new(),
            in_msg: false,
        }
    }

    /// Bytes this reader holds (line buffer and frames): bounded whatever it reads.
    pub fn buffered(&self) -> usize {
        self.line.capacity() + self.stack.capacity() * std::mem::size_of::<Frame>()
    }

    /// Whether a message has begun and not ended.
    pub fn in_message(&self) -> bool {
        self.in_msg
    }

    /// An inline command line still waiting for its line end, if any.
    pub fn partial_inline(&self) -> Option<&[u8]> {
        (self.st == St::Inline && !self.line.is_empty()).then_some(self.line.as_slice())
    }

    /// Reads `data`. After an error nothing more is read.
    pub fn feed(&mut self, mut data: &[u8], v: &mut impl Visit) -> Result<(), RespError> {
        while !data.is_empty() {
            match self.st {
                St::Failed => return Ok(()),
                St::Type => {
                    let b = data[0];
                    if !self.in_msg {
                        self.in_msg = true;
                        v.begin();
                    }
                    self.line.clear();
                    self.line_len = 0;
                    if self.role == Role::Client {
                        if self.stack.is_empty() && b != b'*' {
                            // Not an array: Redis reads the line as an inline command.
                            self.st = St::Inline;
                            continue;
                        }
                        if !self.stack.is_empty() && b != b'$' {
                            return self.fail(RespError::ExpectedBulk);
                        }
                    }
                    if !TYPES.contains(&b) {
                        return self.fail(RespError::BadType(b));
                    }
                    self.ty = b;
                    self.st = St::Line;
                    data = &data[1..];
                }
                St::Line | St::Inline => {
                    let (part, rest, eol) = match memchr(b'\n', data) {
                        Some(i) => (&data[..i], &data[i + 1..], true),
                        None => (data, &data[data.len()..], false),
                    };
                    data = rest;
                    self.push_line(part)?;
                    if eol {
                        if self.line_len == self.line.len() && self.line.last() == Some(&b'\r') {
                            self.line.pop();
                        }
                        self.line_done(v)?;
                    }
                }
                St::Bulk(left) => {
                    let n = left.min(data.len() as u64) as usize;
                    v.bulk_data(&data[..n]);
                    data = &data[n..];
                    self.st = if left == n as u64 {
                        St::BulkCr
                    } else {
                        St::Bulk(left - n as u64)
                    };
                }
                St::BulkCr | St::BulkLf => {
                    let want = if self.st == St::BulkCr { b'\r' } else { b'\n' };
                    if data[0] != want {
                        return self.fail(RespError::BadTerminator);
                    }
                    data = &data[1..];
                    if self.st == St::BulkCr {
                        self.st = St::BulkLf;
                    } else {
                        self.st = St::Type;
                        v.bulk_end();
                        self.value_done(false, v);
                    }
                }
            }
        }
        Ok(())
    }

    /// `len` bytes were lost. Returns true when the reader stays in step: the bytes fell
    /// inside a bulk payload long enough to hold them. Otherwise the reader cannot know where
    /// the next value starts.
    pub fn gap(&mut self, len: u64) -> bool {
        match self.st {
            St::Bulk(left) if len <= left => {
                self.st = if len == left {
                    St::BulkCr
                } else {
                    St::Bulk(left - len)
                };
                true
            }
            _ => false,
        }
    }

    fn fail(&mut self, e: RespError) -> Result<(), RespError> {
        self.st = St::Failed;
        Err(e)
    }

    fn push_line(&mut self, part: &[u8]) -> Result<(), RespError> {
        let (max, keep) = match self.st {
            St::Inline => (MAX_INLINE, MAX_INLINE),
            _ if is_header(self.ty) => (MAX_HEADER_LINE, MAX_HEADER_LINE),
            _ => (MAX_SIMPLE_LINE, KEEP_LINE),
        };
        self.line_len = self.line_len.saturating_add(part.len());
        if self.line_len > max + 1 {
            // (+1: the CR of the line end is still in the line.)
            return self.fail(RespError::LineTooLong);
        }
        let room = keep.saturating_sub(self.line.len());
        self.line.extend_from_slice(&part[..part.len().min(room)]);
        Ok(())
    }

    fn line_done(&mut self, v: &mut impl Visit) -> Result<(), RespError> {
        let inline = self.st == St::Inline;
        self.st = St::Type;
        let line = std::mem::take(&mut self.line);
        let r = if inline {
            v.inline(&line);
            self.in_msg = false;
            v.message_end();
            Ok(())
        } else {
            self.on_line(&line, v)
        };
        // Keep the allocation for the next line.
        self.line = line;
        self.line.clear();
        r
    }

    fn on_line(&mut self, line: &[u8], v: &mut impl Visit) -> Result<(), RespError> {
        let ty = self.ty;
        match ty {
            b'+' | b'-' | b',' | b'(' => {
                v.scalar(ty, line);
                self.value_done(false, v);
                Ok(())
            }
            b':' => {
                if parse_int(line).is_none() {
                    return self.fail(RespError::BadValue);
                }
                v.scalar(ty, line);
                self.value_done(false, v);
                Ok(())
            }
            b'_' | b'#' => {
                let ok = if ty == b'_' {
                    line.is_empty()
                } else {
                    line == b"t" || line == b"f"
                };
                if !ok {
                    return self.fail(RespError::BadValue);
                }
                v.scalar(ty, line);
                self.value_done(false, v);
                Ok(())
            }
            b'$' | b'!' | b'=' => {
                let n = parse_int(line).ok_or(RespError::BadLength);
                let n = match n {
                    Ok(n) => n,
                    Err(e) => return self.fail(e),
                };
                if n == -1 && ty == b'$' && self.role == Role::Server {
                    v.bulk_start(ty, None);
                    v.bulk_end();
                    self.value_done(false, v);
                    return Ok(());
                }
                if n < 0 {
                    return self.fail(RespError::BadLength);
                }
                let n = n as u64;
                if n > MAX_BULK {
                    return self.fail(RespError::AbsurdLength);
                }
                v.bulk_start(ty, Some(n));
                self.st = if n == 0 { St::BulkCr } else { St::Bulk(n) };
                Ok(())
            }
            b'*' | b'%' | b'~' | b'>' | b'|' => {
                let n = match parse_int(line) {
                    Some(n) => n,
                    None => return self.fail(RespError::BadLength),
                };
                // RESP2's null array; a client's `*-1` or `*0` is an empty command, which
                // Redis skips.
                let null = n == -1 && ty == b'*';
                if n < 0 && !null {
                    return self.fail(RespError::BadLength);
                }
                let n = n.max(0) as u64;
                let limit = if self.role == Role::Client {
                    MAX_ARGS
                } else {
                    MAX_ELEMENTS
                };
                if n > limit {
                    return self.fail(RespError::AbsurdLength);
                }
                if self.stack.len() >= MAX_DEPTH {
                    return self.fail(RespError::TooDeep);
                }
                let values = if matches!(ty, b'%' | b'|') { n * 2 } else { n };
                v.agg_start(ty, (!null).then_some(n));
                if values == 0 {
                    v.agg_end();
                    self.value_done(ty == b'|', v);
                } else {
                    self.stack.push(Frame { ty, left: values });
                }
                Ok(())
            }
            _ => self.fail(RespError::BadType(ty)),
        }
    }

    /// A value ended: count it in its aggregate, closing the aggregates it completes, and end
    /// the message when nothing is open. An attribute is not a value of its own: it belongs
    /// to the value that follows it.
    fn value_done(&mut self, mut was_attr: bool, v: &mut impl Visit) {
        loop {
            if was_attr {
                return;
            }
            let Some(f) = self.stack.last_mut() else {
                self.in_msg = false;
                v.message_end();
                return;
            };
            f.left -= 1;
            if f.left > 0 {
                return;
            }
            was_attr = f.ty == b'|';
            self.stack.pop();
            v.agg_end();
        }
    }
}
