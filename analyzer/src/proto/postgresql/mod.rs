//! PostgreSQL frontend/backend protocol, version 3.
//!
//! # Exchanges
//!
//! A request is one frontend *activity*, answered in order ([`MatchKey::Fifo`]); the kinds
//! follow the `frontend` column of Zeek's `postgresql.log`:
//!
//! - `ssl_request` / `gssenc_request`: answered by the server's one-byte reply. `S` (or `G`)
//!   means the rest of the connection is TLS (GSSAPI): the parser stops ([`ParserState::Finished`]).
//!   `N` means the client goes on in the clear with a StartupMessage.
//! - `startup`: the StartupMessage and the whole authentication exchange (PasswordMessage,
//!   SASL messages). The request ends with the client's last message before AuthenticationOk
//!   (or the error); the response runs from the server's first message to the first
//!   ReadyForQuery, or to the ErrorResponse that refused the login.
//! - `simple_query`: a Query message; its response ends with ReadyForQuery.
//! - `extended_query`: one extended-protocol cycle, from the first Parse/Bind/Describe/
//!   Execute/Close/Flush to Sync; the response ends with the ReadyForQuery that answers the
//!   Sync. The SQL text comes from the first Execute's portal (through the Bind that created
//!   it and the Parse that named its statement), else from the cycle's first Parse.
//! - `function_call`: a FunctionCall; response up to ReadyForQuery.
//! - `cancel_request`, `terminate`: no response is expected (exchanges without one).
//!
//! COPY data travels inside the exchange of the query that started the COPY: CopyData
//! messages are counted (messages and bytes, either way), never kept.
//!
//! # Framing, bounds, gaps
//!
//! Each direction is framed by the length fields, which are checked against the limits
//! PostgreSQL itself applies ([`wire::check_header`]). Only a bounded prefix of each message
//! body is kept ([`keep_limit`]: 2 bytes of a DataRow, [`MAX_SQL`] of SQL text, nothing of
//! CopyData); the rest is counted and skipped, so memory per connection is bounded whatever
//! the lengths claim. Prepared statements and portals are remembered up to
//! [`MAX_STATEMENTS`] / [`MAX_PORTALS`] (oldest forgotten first).
//!
//! A gap inside a message body keeps the framing (the length says where the next message
//! starts): the message is marked cut and its exchange incomplete. A gap across a message
//! boundary, or a header that fails its checks, loses the framing: the direction scans for a
//! message that resynchronises it (ReadyForQuery from the server; Query, Sync or Terminate
//! from the client) and gives up after [`MAX_RESYNC_SCAN`] bytes without one. Both
//! directions given up: [`ParserState::GaveUp`]. Every such event is a named weird.
//!
//! # Layout
//!
//! [`wire`] decodes message bodies (no state). This file holds the parser's state, the
//! framing of both directions, gaps and resynchronisation, and its [`Parser`] impl;
//! `frontend.rs` turns client messages into requests (activities), `backend.rs` adds server
//! messages to the response in progress; `probe.rs` detects the protocol; `zeek.rs` writes
//! `postgresql.log` and the report summary.

pub mod wire;

mod backend;
mod frontend;
mod probe;
mod zeek;

#[cfg(test)]
mod tests;

use std::collections::VecDeque;
use std::sync::Arc;

use crate::l7::{Emitter, Event, MatchKey, Parser, ParserState, Protocol};
use crate::model::{Dir, Fields, Text, Transport, Ts};
use crate::read::be_u32;
use wire::Side;

pub use zeek::ZEEK_LOG;

/// SQL text kept per query, statement or portal (bytes; longer texts are cut and flagged).
pub const MAX_SQL: usize = 4096;
/// Prepared statements remembered per connection (name → SQL).
pub const MAX_STATEMENTS: usize = 128;
/// Portals remembered per connection (name → SQL).
pub const MAX_PORTALS: usize = 32;
/// Entries kept in list fields (`messages`, `command_tags`, `parameters`).
pub const MAX_LIST: usize = 32;
/// Bytes kept of an ErrorResponse or NoticeResponse body.
pub const MAX_ERROR: usize = 8192;
/// Activities waiting for their response, per connection (beyond: the oldest is dropped,
/// as the matcher drops its record).
pub const MAX_WAITING: usize = crate::l7::MAX_OPEN;
/// Bytes scanned for a resynchronisation point before a direction is given up.
pub const MAX_RESYNC_SCAN: u64 = 1 << 20;

/// The registration.
pub static PROTOCOL: Protocol = Protocol {
    name: "postgresql",
    transports: &[Transport::Tcp],
    ports: &[5432],
    probe: probe::probe,
    new_parser: |_| Box::new(Postgres::new()),
    zeek: Some(&ZEEK_LOG),
    upgrade: None,
    summarize: zeek::summarize,
};

/// Bytes of a message body kept for decoding; the rest is skipped.
pub fn keep_limit(side: Side, t: u8) -> usize {
    match (side, t) {
        // Untyped: StartupMessage and friends, bounded by their own limit.
        (Side::Frontend, 0) => wire::MAX_STARTUP_LEN as usize,
        (Side::Frontend, b'Q') => MAX_SQL + 1,
        (Side::Frontend, b'P') => 1024 + MAX_SQL + 1,
        (Side::Frontend, b'd') | (Side::Backend, b'd') => 0,
        (Side::Frontend, b'F') => 4,
        (Side::Backend, b'D' | b'T' | b't') => 2,
        (Side::Backend, b'E' | b'N') => MAX_ERROR,
        _ => 1024,
    }
}

/// How a direction is being read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Mode {
    /// At a point where the client may send an untyped message (connection start, after a
    /// refused SSL/GSS request); the first byte decides (0: untyped).
    Initial,
    /// Typed messages.
    Typed,
    /// Framing lost: scanning for a resynchronisation point.
    Lost,
    /// Nothing more is parsed (given up, or encrypted).
    Off,
}

/// The message being read.
#[derive(Debug)]
struct Cur {
    /// Type byte, 0 for an untyped message.
    typ: u8,
    /// The length field.
    len: u32,
    /// Body bytes not read yet.
    remaining: u64,
    /// The body prefix kept.
    keep: Vec<u8>,
    /// How much to keep.
    keep_max: usize,
    /// First byte's time.
    start: Ts,
    /// A gap took bytes of the body.
    cut: bool,
}

/// One direction's reader.
#[derive(Debug)]
struct Reader {
    mode: Mode,
    hdr: [u8; 5],
    hdr_len: usize,
    cur: Option<Cur>,
    /// Lost: the tail of what was scanned, for markers split across calls.
    carry: Vec<u8>,
    /// Lost: bytes scanned so far.
    scanned: u64,
    ended: bool,
}

impl Reader {
    fn new(mode: Mode) -> Self {
        Reader {
            mode,
            hdr: [0; 5],
            hdr_len: 0,
            cur: None,
            carry: Vec::new(),
            scanned: 0,
            ended: false,
        }
    }
    fn lose(&mut self) {
        self.mode = Mode::Lost;
        self.cur = None;
        self.hdr_len = 0;
        self.carry.clear();
        self.scanned = 0;
    }
}

/// What a client activity is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    SslRequest,
    GssEncRequest,
    Startup,
    SimpleQuery,
    Extended,
    FunctionCall,
}

impl Kind {
    fn name(self) -> &'static str {
        match self {
            Kind::SslRequest => "ssl_request",
            Kind::GssEncRequest => "gssenc_request",
            Kind::Startup => "startup",
            Kind::SimpleQuery => "simple_query",
            Kind::Extended => "extended_query",
            Kind::FunctionCall => "function_call",
        }
    }
}

/// A request whose end is not known yet (startup, extended cycle).
#[derive(Debug, Default)]
struct OpenReq {
    /// Last client message's end.
    last_ts: Ts,
    /// A gap or the end of the stream cut it.
    cut: bool,
    /// Extended: message kinds in order (bounded) and how many there were.
    messages: Vec<Text>,
    n_messages: u64,
    /// Extended: SQL of the first Execute, else of the first Parse.
    sql: Sql,
    sql_from_execute: bool,
    statement: Option<Vec<u8>>,
    portal: Option<Vec<u8>>,
    executes: u64,
    /// Startup: the SASL mechanism the client chose.
    sasl_mechanism: Option<Vec<u8>>,
}

/// What the server said so far in answer to an activity.
#[derive(Debug, Default)]
struct Resp {
    /// Zeek's `backend` and `backend_arg`.
    backend: Option<String>,
    backend_arg: Option<Vec<u8>>,
    success: Option<bool>,
    data_rows: u64,
    rows: Option<u64>,
    tags: Vec<Text>,
    error: Option<[Option<Vec<u8>>; 3]>,
    notices: u64,
    ready: Option<u8>,
    empty_query: bool,
    copy: [(u64, u64); 2],
    auth_method: Option<String>,
    sasl_offered: Vec<Text>,
    server_version: Option<Vec<u8>>,
    backend_pid: Option<u32>,
    cut: bool,
}

/// A client activity waiting for (the end of) its response.
#[derive(Debug)]
struct Activity {
    kind: Kind,
    /// Some while the request is still open (only the newest activity's can be).
    req: Option<OpenReq>,
    resp: Resp,
    /// ResponseStart was emitted.
    started: bool,
    /// A COPY FROM STDIN is in progress.
    copy_in: bool,
}

/// Which one-byte reply the server owes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Reply {
    Ssl,
    Gss,
}

/// SQL text (shared between statements, portals and requests) and whether it was cut.
type Sql = Option<(Arc<[u8]>, bool)>;

/// A remembered statement or portal: name and SQL.
type Named = (Vec<u8>, Sql);

/// The PostgreSQL parser of one connection.
#[derive(Debug)]
pub struct Postgres {
    rd: [Reader; 2],
    waiting: VecDeque<Activity>,
    /// A response to no known request (capture began mid-connection, or requests lost).
    orphan: Option<Resp>,
    reply: Option<Reply>,
    user: Option<Vec<u8>>,
    database: Option<Vec<u8>>,
    application_name: Option<Vec<u8>>,
    statements: VecDeque<Named>,
    portals: VecDeque<Named>,
    finished: bool,
    gave_up: bool,
}

impl Default for Postgres {
    fn default() -> Self {
        Self::new()
    }
}

fn bounded(b: &[u8], max: usize) -> Vec<u8> {
    b[..b.len().min(max)].to_vec()
}

/// [`bounded`] as a [`Text`] (held in place when short: no allocation for a command tag).
fn bounded_text(b: &[u8], max: usize) -> Text {
    Text::from_slice(&b[..b.len().min(max)])
}

impl Postgres {
    /// A parser for a new connection.
    pub fn new() -> Self {
        Postgres {
            rd: [Reader::new(Mode::Initial), Reader::new(Mode::Typed)],
            waiting: VecDeque::new(),
            orphan: None,
            reply: None,
            user: None,
            database: None,
            application_name: None,
            statements: VecDeque::new(),
            portals: VecDeque::new(),
            finished: false,
            gave_up: false,
        }
    }

    /// A whole message, or the prefix of it that was kept: `body` (from `m.keep`, or borrowed
    /// from the bytes fed when the message came whole in one call).
    fn dispatch(&mut self, d: usize, m: Cur, body: &[u8], end: Ts, out: &mut Emitter) {
        if d == 0 {
            self.frontend(m, body, end, out);
        } else {
            self.backend(m, body, end, out);
        }
    }

    /// [`Self::dispatch`] with what `m` kept.
    fn dispatch_kept(&mut self, d: usize, mut m: Cur, end: Ts, out: &mut Emitter) {
        let body = std::mem::take(&mut m.keep);
        self.dispatch(d, m, &body, end, out);
    }

    fn give_up(&mut self, out: &mut Emitter) {
        out.weird("postgresql_gave_up");
        self.gave_up = true;
        self.rd[0].mode = Mode::Off;
        self.rd[1].mode = Mode::Off;
    }

    /// Lost framing: looks for a message to resynchronise on. Returns the bytes from there
    /// (empty if none was found).
    fn resync(&mut self, d: usize, data: &[u8], out: &mut Emitter) -> Option<Vec<u8>> {
        let r = &mut self.rd[d];
        let mut buf = std::mem::take(&mut r.carry);
        buf.extend_from_slice(data);
        let found = (0..buf.len()).find(|&i| {
            let w = &buf[i..];
            if d == 1 {
                w.len() >= 6 && w[..5] == *b"Z\0\0\0\x05" && matches!(w[5], b'I' | b'T' | b'E')
            } else if w.len() >= 6 && w[0] == b'Q' {
                // A query of plausible size whose text starts like SQL.
                be_u32(w, 1).is_some_and(|l| (6..=1 << 20).contains(&l))
                    && (w[5].is_ascii_graphic() || w[5].is_ascii_whitespace())
            } else {
                w.len() >= 5 && (w[..5] == *b"S\0\0\0\x04" || w[..5] == *b"X\0\0\0\x04")
            }
        });
        match found {
            Some(i) => {
                out.weird("postgresql_resync");
                r.mode = Mode::Typed;
                r.carry.clear();
                Some(buf.split_off(i))
            }
            None => {
                r.scanned += data.len() as u64;
                if r.scanned > MAX_RESYNC_SCAN {
                    out.weird("postgresql_resync_failed");
                    r.mode = Mode::Off;
                    r.carry.clear();
                    if self.rd[0].mode == Mode::Off && self.rd[1].mode == Mode::Off {
                        self.gave_up = true;
                    }
                } else {
                    let keep = buf.len().min(5);
                    r.carry = buf.split_off(buf.len() - keep);
                }
                None
            }
        }
    }

    fn feed(&mut self, d: usize, ts: Ts, mut data: &[u8], out: &mut Emitter) {
        while !data.is_empty() {
            match self.rd[d].mode {
                Mode::Off => return,
                Mode::Lost => {
                    if let Some(rest) = self.resync(d, data, out) {
                        self.feed(d, ts, &rest, out);
                    }
                    return;
                }
                Mode::Initial | Mode::Typed => {}
            }
            let side = if d == 0 {
                Side::Frontend
            } else {
                Side::Backend
            };
            let r = &mut self.rd[d];
            if r.cur.is_none() {
                if d == 1
                    && r.hdr_len == 0
                    && let Some(reply) = self.reply
                {
                    let b = data[0];
                    let accept = if reply == Reply::Ssl { b'S' } else { b'G' };
                    if b == accept || b == b'N' {
                        data = &data[1..];
                        self.reply_byte(reply, b, ts, out);
                        continue;
                    }
                    // Not a one-byte reply (an old server's ErrorResponse): typed from here.
                    out.weird("postgresql_unexpected_encryption_reply");
                    self.reply = None;
                }
                let r = &mut self.rd[d];
                if r.hdr_len == 0 && r.mode == Mode::Initial && data[0] != 0 {
                    // A typed message where an untyped one may come: the capture began
                    // after the startup.
                    r.mode = Mode::Typed;
                }
                let untyped = r.mode == Mode::Initial;
                let need = if untyped { 4 } else { 5 };
                let n = crate::read::fill_header(&mut r.hdr, &mut r.hdr_len, need, data);
                data = &data[n..];
                if r.hdr_len < need {
                    return;
                }
                r.hdr_len = 0;
                // The length follows the type byte, if any. The header is all there, so the
                // read cannot fail (and a length of 0 would fail the checks below).
                let (typ, at) = if untyped { (0, 0) } else { (r.hdr[0], 1) };
                let len = be_u32(&r.hdr, at).unwrap_or(0);
                let check = if untyped {
                    if (8..=wire::MAX_STARTUP_LEN).contains(&len) {
                        Ok(())
                    } else {
                        Err(wire::Error::BadLength)
                    }
                } else {
                    wire::check_header(side, typ, len)
                };
                if let Err(e) = check {
                    out.weird(e.weird());
                    if untyped {
                        self.give_up(out);
                        return;
                    }
                    let hdr = r.hdr;
                    r.lose();
                    // The header's own bytes after its first may hold the next message.
                    r.carry = hdr[1..].to_vec();
                    self.lost_framing(d, ts, out);
                    continue;
                }
                if !untyped && !wire::known_type(side, typ) {
                    out.weird("postgresql_unknown_message_type");
                }
                let keep_max = keep_limit(side, typ);
                r.cur = Some(Cur {
                    typ,
                    len,
                    remaining: u64::from(len) - 4,
                    // Filled only when the message spans calls (see below).
                    keep: Vec::new(),
                    keep_max,
                    start: ts,
                    cut: false,
                });
            }
            let r = &mut self.rd[d];
            let Some(cur) = r.cur.as_mut() else { continue };
            let n = usize::try_from(cur.remaining).map_or(data.len(), |rem| rem.min(data.len()));
            let room = cur.keep_max.saturating_sub(cur.keep.len()).min(n);
            let borrowed = cur.keep.is_empty() && n as u64 == cur.remaining;
            if borrowed && let Some(mut m) = r.cur.take() {
                // The rest of the body is all here and nothing was kept before (this is its
                // first part, or nothing of it is kept): borrowed, not copied.
                m.remaining = 0;
                let (body, rest) = (&data[..room], &data[n..]);
                self.dispatch(d, m, body, ts, out);
                data = rest;
                continue;
            }
            let Some(cur) = r.cur.as_mut() else { continue };
            if room > 0 {
                if cur.keep.capacity() == 0 {
                    let left = usize::try_from(cur.remaining).unwrap_or(usize::MAX);
                    cur.keep.reserve_exact(cur.keep_max.min(left));
                }
                cur.keep.extend_from_slice(&data[..room]);
            }
            cur.remaining -= n as u64;
            data = &data[n..];
            if cur.remaining == 0
                && let Some(m) = r.cur.take()
            {
                self.dispatch_kept(d, m, ts, out);
            }
        }
    }

    /// Bookkeeping when a direction loses its framing: what was in progress is incomplete.
    /// Server bytes were there (or lost) while a request waited: its response has begun.
    fn lost_framing(&mut self, d: usize, ts: Ts, out: &mut Emitter) {
        if d == 0 {
            if let Some(Activity { req: Some(r), .. }) = self.waiting.back_mut() {
                r.cut = true;
            }
        } else if let Some(a) = self.waiting.front_mut() {
            if !a.started {
                a.started = true;
                out.emit(Event::ResponseStart {
                    ts,
                    key: MatchKey::Fifo,
                    fields: Fields::default(),
                });
            }
            a.resp.cut = true;
        } else if let Some(o) = &mut self.orphan {
            o.cut = true;
        }
    }
}

impl Parser for Postgres {
    fn heap_bytes(&self) -> usize {
        // Each waiting activity: its struct and what it keeps (SQL is shared with the
        // statement it came from; messages and tags are short); statements and portals: their
        // names and SQL (at most MAX_SQL), counted at a quarter of it on average.
        self.waiting.capacity() * std::mem::size_of::<Activity>()
            + self.waiting.len() * 256
            + (self.statements.len() + self.portals.len()) * (64 + MAX_SQL / 4)
            + self.rd.iter().map(|r| r.carry.capacity()).sum::<usize>()
            + 2 * (MAX_SQL + MAX_ERROR)
    }
    fn data(&mut self, dir: Dir, ts: Ts, data: &[u8], out: &mut Emitter) {
        self.feed(dir.idx(), ts, data, out);
    }

    fn gap(&mut self, dir: Dir, ts: Ts, len: u64, out: &mut Emitter) {
        let d = dir.idx();
        let r = &mut self.rd[d];
        match r.mode {
            Mode::Off => return,
            Mode::Lost => {
                // Whatever was carried is not adjacent to what comes next.
                r.carry.clear();
                return;
            }
            Mode::Initial | Mode::Typed => {}
        }
        if let Some(cur) = r.cur.as_mut()
            && len <= cur.remaining
        {
            // Inside one body: the framing holds; the message is incomplete.
            out.weird("postgresql_gap_in_message");
            cur.cut = true;
            cur.keep_max = cur.keep.len();
            cur.remaining -= len;
            if d == 0
                && let Some(Activity { req: Some(q), .. }) = self.waiting.back_mut()
            {
                q.cut = true;
            }
            if cur.remaining == 0
                && let Some(m) = r.cur.take()
            {
                let ts = m.start;
                self.dispatch_kept(d, m, ts, out);
            }
            return;
        }
        out.weird("postgresql_gap_lost_sync");
        r.lose();
        self.lost_framing(d, ts, out);
    }

    fn end(&mut self, dir: Dir, ts: Ts, out: &mut Emitter) {
        let d = dir.idx();
        if self.rd[d].ended {
            return;
        }
        self.rd[d].ended = true;
        let r = &mut self.rd[d];
        if r.cur.is_some() || r.hdr_len > 0 {
            if r.mode != Mode::Off {
                out.weird("postgresql_message_cut_short");
            }
            r.cur = None;
            r.hdr_len = 0;
            self.lost_framing(d, ts, out);
        }
        if d == 0 {
            self.close_request(out);
        } else {
            // What the server had not finished answering stays unfinished.
            self.end_response(ts, false, out);
        }
    }

    fn state(&self) -> ParserState {
        if self.finished {
            ParserState::Finished
        } else if self.gave_up {
            ParserState::GaveUp
        } else {
            ParserState::Active
        }
    }
}
