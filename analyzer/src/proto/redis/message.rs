//! Commands and replies as they are built from the RESP values a [`Reader`](super::resp::Reader)
//! walks: [`ReqBuilder`] turns the client's arrays of bulk strings and inline lines into
//! [`Cmd`]s, keeping a bounded prefix of the first arguments; [`ReplyBuilder`] renders the
//! server's values as Zeek renders them (`[a, b]`, `{k: v}`, `(a, b)`, `null`, `T`/`F`) into
//! [`Reply`]s, bounded by [`MAX_VALUE`]. Neither keeps more than that whatever the values hold.

use super::resp::{Visit, parse_int};
use super::{MAX_VALUE, RAW_KEPT};
use crate::model::{Fields, Text, Ts, Value};

/// A bounded byte string: keeps the first [`MAX_VALUE`] bytes pushed into it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(super) struct Bounded(pub(super) Vec<u8>);

impl Bounded {
    fn push(&mut self, b: &[u8]) {
        let room = MAX_VALUE.saturating_sub(self.0.len());
        self.0.extend_from_slice(&b[..b.len().min(room)]);
    }
}

/// A command as read.
#[derive(Clone, Debug, Default)]
pub(super) struct Cmd {
    pub(super) start: Ts,
    pub(super) end: Ts,
    /// The first [`RAW_KEPT`] arguments (the name first), each cut to [`MAX_VALUE`] bytes.
    pub(super) raw: Vec<Text>,
    /// Arguments, the name included.
    pub(super) argc: u64,
    pub(super) inline: bool,
    pub(super) complete: bool,
}

/// Splits an inline command line into tokens as Zeek's analyzer does: whitespace (NUL, TAB,
/// LF, CR, space) separates tokens; a quote starts a quoted run that whitespace does not end
/// (a backslash escapes the quote inside it); tokens keep their quotes and backslashes.
/// (Redis itself unquotes; Zeek logs the tokens as written, and so do we.)
pub(super) fn tokenize_inline(line: &[u8], mut token: impl FnMut(&[u8])) {
    let ws = |c: u8| matches!(c, 0 | 9 | 10 | 13 | 32);
    let n = line.len();
    let mut i = 0;
    loop {
        while i < n && ws(line[i]) {
            i += 1;
        }
        if i >= n {
            return;
        }
        let start = i;
        let mut quote: Option<u8> = None;
        while i < n {
            let c = line[i];
            match quote {
                Some(q) => {
                    if c == b'\\' && line.get(i + 1) == Some(&q) {
                        i += 1;
                    } else if c == q {
                        quote = None;
                    }
                    i += 1;
                }
                None if ws(c) => break,
                None => {
                    if c == b'"' || c == b'\'' {
                        quote = Some(c);
                    }
                    i += 1;
                }
            }
        }
        token(&line[start..i.min(n)]);
    }
}

/// Builds commands from the client's RESP values.
#[derive(Debug, Default)]
pub(super) struct ReqBuilder {
    pub(super) now: Ts,
    pub(super) cur: Cmd,
    /// Index in `cur.raw` of the bulk string being read, if it is kept.
    arg: Option<usize>,
    pub(super) done: Vec<Cmd>,
}

impl ReqBuilder {
    /// Bytes were lost inside the current bulk string: its kept prefix stops there.
    pub(super) fn gap(&mut self) {
        self.arg = None;
        self.cur.complete = false;
    }
}

impl Visit for ReqBuilder {
    fn begin(&mut self) {
        self.cur = Cmd {
            start: self.now,
            complete: true,
            ..Cmd::default()
        };
        self.arg = None;
    }
    fn scalar(&mut self, _ty: u8, _text: &[u8]) {}
    fn bulk_start(&mut self, _ty: u8, _len: Option<u64>) {
        self.arg = (self.cur.raw.len() < RAW_KEPT).then(|| {
            self.cur.raw.push(Text::new());
            self.cur.raw.len() - 1
        });
    }
    fn bulk_data(&mut self, data: &[u8]) {
        if let Some(a) = self.arg
            && let Some(v) = self.cur.raw.get_mut(a)
        {
            let room = MAX_VALUE.saturating_sub(v.len());
            v.extend_from_slice(&data[..data.len().min(room)]);
        }
    }
    fn bulk_end(&mut self) {
        self.cur.argc += 1;
        self.arg = None;
    }
    fn agg_start(&mut self, _ty: u8, _len: Option<u64>) {}
    fn agg_end(&mut self) {}
    fn inline(&mut self, line: &[u8]) {
        let cur = &mut self.cur;
        cur.inline = true;
        tokenize_inline(line, |t| {
            if cur.raw.len() < RAW_KEPT {
                cur.raw.push(Text::from_slice(&t[..t.len().min(MAX_VALUE)]));
            }
            cur.argc += 1;
        });
    }
    fn message_end(&mut self) {
        let mut c = std::mem::take(&mut self.cur);
        // An empty array or an empty inline line is no command: Redis skips it.
        if c.argc > 0 {
            c.end = self.now;
            self.done.push(c);
        }
    }
}

/// A reply (or push) as read.
#[derive(Clone, Debug, Default)]
pub(super) struct Reply {
    pub(super) start: Ts,
    pub(super) end: Ts,
    /// Type byte of the top-level value.
    pub(super) ty: u8,
    /// RESP2 null (`$-1`, `*-1`).
    null: bool,
    pub(super) value: Bounded,
    attrs: Option<Bounded>,
    /// Top-level array: its first element's text (up to 16 bytes) and its third as integer.
    pub(super) head: Text,
    pub(super) third_int: Option<i64>,
    /// A RESP3-only type appears in it.
    pub(super) resp3: bool,
    pub(super) complete: bool,
}

impl Reply {
    pub(super) fn is_error(&self) -> bool {
        matches!(self.ty, b'-' | b'!')
    }
    fn type_name(&self) -> &'static str {
        match (self.ty, self.null) {
            (b'$' | b'*', true) | (b'_', _) => "null",
            (b'+', _) => "simple_string",
            (b'-', _) => "error",
            (b':', _) => "integer",
            (b'$', _) => "bulk_string",
            (b'*', _) => "array",
            (b'#', _) => "boolean",
            (b',', _) => "double",
            (b'(', _) => "big_number",
            (b'!', _) => "bulk_error",
            (b'=', _) => "verbatim_string",
            (b'%', _) => "map",
            (b'~', _) => "set",
            (b'>', _) => "push",
            _ => "unknown",
        }
    }
}

/// Renders the server's RESP values as Zeek does, bounded.
#[derive(Debug, Default)]
pub(super) struct ReplyBuilder {
    pub(super) now: Ts,
    pub(super) cur: Reply,
    /// Open aggregates: type byte and values begun so far.
    stack: Vec<(u8, u64)>,
    /// Open attributes, and whether the outermost one is at the top level (rendered into
    /// `attrs`; nested attributes are not rendered).
    attr_depth: usize,
    attr_top: bool,
    /// The bulk string being read is the top-level array's first element.
    in_head: bool,
    /// Bytes were lost inside the message: rendering stops there.
    frozen: bool,
    pub(super) done: Vec<Reply>,
}

impl ReplyBuilder {
    fn out(&mut self, b: &[u8]) {
        if self.frozen {
            return;
        }
        if self.attr_depth > 0 {
            if self.attr_top {
                self.cur.attrs.get_or_insert_with(Bounded::default).push(b);
            }
        } else {
            self.cur.value.push(b);
        }
    }

    /// A value of type `ty` begins: the separator before it, and what the top level is.
    fn enter(&mut self, ty: u8) {
        if !matches!(ty, b'+' | b'-' | b':' | b'$' | b'*') {
            self.cur.resp3 = true;
        }
        if ty == b'|' {
            return;
        }
        match self.stack.last_mut() {
            Some((pty, idx)) => {
                let sep: &[u8] = match (*pty, *idx) {
                    (_, 0) => b"",
                    (b'%' | b'|', i) if i % 2 == 1 => b": ",
                    _ => b", ",
                };
                *idx += 1;
                self.out(sep);
            }
            None => self.cur.ty = ty,
        }
    }

    /// Position of the value just entered in the top-level array, if it is directly in it.
    fn top_array_index(&self) -> Option<u64> {
        match self.stack.as_slice() {
            [(b'*', i)] if self.attr_depth == 0 => Some(*i),
            _ => None,
        }
    }

    pub(super) fn gap(&mut self) {
        self.frozen = true;
        self.in_head = false;
        self.cur.complete = false;
    }
}

impl Visit for ReplyBuilder {
    fn begin(&mut self) {
        self.cur = Reply {
            start: self.now,
            complete: true,
            ..Reply::default()
        };
        self.stack.clear();
        self.attr_depth = 0;
        self.attr_top = false;
        self.in_head = false;
        self.frozen = false;
    }
    fn scalar(&mut self, ty: u8, text: &[u8]) {
        self.enter(ty);
        match ty {
            b'_' => self.out(b"null"),
            b'#' => self.out(if text == b"t" { b"T" } else { b"F" }),
            _ => self.out(text),
        }
        match self.top_array_index() {
            Some(1) => self.cur.head = Text::from_slice(&text[..text.len().min(16)]),
            Some(3) if ty == b':' => self.cur.third_int = parse_int(text),
            _ => {}
        }
    }
    fn bulk_start(&mut self, ty: u8, len: Option<u64>) {
        self.enter(ty);
        if self.stack.is_empty() && len.is_none() {
            self.cur.null = true;
        }
        self.in_head = self.top_array_index() == Some(1);
    }
    fn bulk_data(&mut self, data: &[u8]) {
        self.out(data);
        if self.in_head {
            let room = 16usize.saturating_sub(self.cur.head.len());
            self.cur
                .head
                .extend_from_slice(&data[..data.len().min(room)]);
        }
    }
    fn bulk_end(&mut self) {
        self.in_head = false;
    }
    fn agg_start(&mut self, ty: u8, len: Option<u64>) {
        self.enter(ty);
        if ty == b'|' {
            if self.attr_depth == 0 {
                self.attr_top = self.stack.is_empty();
            }
            self.attr_depth += 1;
        }
        if self.stack.is_empty() && len.is_none() {
            self.cur.null = true;
        }
        self.out(match ty {
            b'%' | b'|' => b"{",
            b'~' => b"(",
            _ => b"[",
        });
        self.stack.push((ty, 0));
    }
    fn agg_end(&mut self) {
        let Some((ty, _)) = self.stack.pop() else {
            return;
        };
        self.out(match ty {
            b'%' | b'|' => b"}",
            b'~' => b")",
            _ => b"]",
        });
        if ty == b'|' {
            self.attr_depth = self.attr_depth.saturating_sub(1);
        }
    }
    fn inline(&mut self, _line: &[u8]) {}
    fn message_end(&mut self) {
        let mut r = std::mem::take(&mut self.cur);
        r.end = self.now;
        self.done.push(r);
        self.stack.clear();
    }
}

/// The reply's fields, set in `f` (an empty list, for its room). The rendered value moves into
/// its field (a reply is read once): no copy.
pub(super) fn reply_fields(r: &mut Reply, mut f: Fields) -> Fields {
    f.set("reply_type", Value::text(r.type_name()));
    let value = std::mem::take(&mut r.value.0);
    let error = r.is_error().then(|| Value::text(&value));
    f.set("reply_value", Value::owned(value));
    if let Some(a) = r.attrs.take() {
        f.set("reply_attributes", Value::owned(a.0));
    }
    f.set("success", Value::Bool(!r.is_error()));
    if let Some(e) = error {
        f.set("error", e);
    }
    f
}
