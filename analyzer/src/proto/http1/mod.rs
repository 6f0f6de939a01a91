//! HTTP/1.x (and 0.9).
//!
//! An incremental, per-direction parser built the way Zeek's HTTP analyzer is (`HTTP.cc`,
//! `MIME.cc`, `ContentLine.cc`), because the `--format zeek` `http.log` it feeds should say
//! what Zeek's says, row for row: `docs/http.md` lists the rules, each with the test that
//! shows it. In outline:
//!
//! - Each direction is cut into lines (CRLF, bare LF or bare CR; only CRLF inside the body of
//!   a multipart part) or handed on as plain bytes when a body's length is known; lines are
//!   counted whole however long (their first [`MAX_LINE`] bytes are kept).
//! - Requests and replies follow Zeek's states: a request line where one is expected, a
//!   status line, then the message — headers, then a body delimited as Zeek delimits it
//!   (`message.rs`), multipart bodies through their MIME parts.
//! - Header fields the log shows (host, user agent ...) belong to a request as soon as their
//!   line is complete; a request's start is announced when its headers end, or earlier when
//!   its answer begins, so what completes later goes to a late row as in Zeek.
//! - A line that is not a request line where one is expected (or not a status line) is a
//!   violation: while the connection carried at most [`VIOLATION_WINDOW`] bytes, the parser
//!   is removed — unless, as Zeek's DPD does, the server's first bytes then start a reply,
//!   which re-runs the connection so far through a fresh parser.
//! - A gap that a body of known length cannot absorb stops the direction for good (and,
//!   from the client, the reply in progress).
//!
//! Layout: `wire` parses request, status and header lines and header values (pure
//! functions); `headers` assembles and interprets header lines; `message` delimits bodies,
//! walks MIME parts and ends messages ([`inflate`] counts decoded body lengths); `zeek` has
//! [`ZEEK_LOG`] and the report summary; this file cuts the streams into lines and runs the
//! request and reply states.

mod headers;
pub mod inflate;
mod message;
mod wire;
mod zeek;

#[cfg(test)]
mod tests;

use std::collections::VecDeque;

use memchr::memchr2;

use crate::l7::{
    Emitter, Event, Handover, MatchKey, Parser, ParserState, Probe, ProbeInput, Protocol, Upgrade,
};
use crate::model::{Dir, Fields, Text, Transport, Ts, Value};
use message::{Expect, Kind, Msg};
use wire::{METHODS, ReqVersion, parse_request_line, parse_status_line};
use zeek::summarize;

pub use zeek::{ZEEK_LOG, unescape_uri};

/// Bytes of a line kept (its length is counted whole); the rest is dropped and counted as
/// `http_line_too_long`.
pub const MAX_LINE: usize = 64 * 1024;
/// Zeek's longest line (`DEFAULT_MAX_LINE_LENGTH`): a line reaching it is cut there.
pub const ZEEK_MAX_LINE: u64 = 16 * 1024 * 1024 - 100;
/// Header bytes per message before the connection is given up.
pub const MAX_HEADER_BYTES: usize = 256 * 1024;
/// Header lines per message before the connection is given up.
pub const MAX_HEADERS: usize = 1024;
/// Zeek's DPD stops a connection's HTTP analysis on a violation only while it has carried at
/// most this many bytes; past that, only the violating direction stops.
pub const VIOLATION_WINDOW: u64 = 10 * 1024;
/// Zeek's DPD buffer (`dpd_buffer_size`, `dpd_max_packets`): what a re-activated parser is
/// given again, and how long a re-activation is possible.
pub const DPD_BUFFER: u64 = 1024;
/// Chunks (data calls and gaps) in the DPD buffer.
pub const DPD_CHUNKS: u32 = 100;

/// The registration.
pub static PROTOCOL: Protocol = Protocol {
    name: "http",
    transports: &[Transport::Tcp],
    ports: &[80, 81, 631, 1080, 3128, 8000, 8080, 8888],
    probe,
    new_parser: |_| Box::new(Http::default()),
    zeek: Some(&ZEEK_LOG),
    upgrade: None,
    summarize,
};

/// `[[:space:]]` of Zeek's signatures.
fn is_space(c: u8) -> bool {
    matches!(c, b' ' | b'\t' | b'\n' | b'\x0b' | b'\x0c' | b'\r')
}

/// Zeek's client signature: optional whitespace, then a method of its list (no separator
/// needed).
fn client_signature(b: &[u8]) -> Probe {
    let b = &b[b.iter().take_while(|&&c| is_space(c)).count()..];
    if METHODS.iter().any(|m| b.starts_with(m)) {
        Probe::Yes
    } else if b.is_empty() || METHODS.iter().any(|m| m.starts_with(b)) {
        Probe::NeedMore
    } else {
        Probe::No
    }
}

/// Zeek's server signature: `HTTP/` (any case) and a digit.
fn server_signature(s: &[u8]) -> Probe {
    if s.len() >= 6 {
        if s[..5].eq_ignore_ascii_case(b"HTTP/") && s[5].is_ascii_digit() {
            Probe::Yes
        } else {
            Probe::No
        }
    } else if b"HTTP/"
        .get(..s.len().min(5))
        .is_some_and(|pre| pre.eq_ignore_ascii_case(&s[..s.len().min(5)]))
    {
        Probe::NeedMore
    } else {
        Probe::No
    }
}

fn probe(p: &ProbeInput<'_>) -> Probe {
    let c = client_signature(p.to_server);
    if c == Probe::Yes {
        return Probe::Yes;
    }
    match (c, server_signature(p.to_client)) {
        (_, Probe::Yes) => Probe::Yes,
        // Content cannot tell yet: a request line still arriving, or no answer yet.
        (Probe::NeedMore, _) | (_, Probe::NeedMore) => Probe::NeedMore,
        // An odd first line on an HTTP port: Zeek's HTTP analyzer is there from the start on
        // its ports (it finds HTTP/0.9, or a violation), so the port decides once the
        // streams end.
        _ if !p.to_server.is_empty() && PROTOCOL.ports.contains(&p.server_port) => Probe::NeedMore,
        _ => Probe::No,
    }
}

/// Zeek's method test: `m` is a non-empty prefix of `word`, in any case (`HEA` is HEAD).
fn abbreviates(m: &[u8], word: &[u8]) -> bool {
    !m.is_empty()
        && word
            .get(..m.len())
            .is_some_and(|w| w.eq_ignore_ascii_case(m))
}

/// A version as the logs write it (`1.1`).
fn version_text((a, b): (u8, u8)) -> Value {
    if a < 10 && b < 10 {
        // The usual single digits, written in place (a short text allocates nothing).
        Value::text([b'0' + a, b'.', b'0' + b])
    } else {
        Value::text(format!("{a}.{b}"))
    }
}

/// Where the request side is (Zeek's `request_state`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
enum ReqState {
    #[default]
    Line,
    Message,
    Nothing,
}

/// Where the reply side is (Zeek's `reply_state`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
enum RepState {
    #[default]
    Line,
    Message,
    /// An HTTP/0.9 request was seen: every server byte from now on is one raw reply.
    Http09,
    Nothing,
}

/// One direction's stream cut into lines (Zeek's `ContentLine_Analyzer`), and the message
/// in progress.
#[derive(Debug)]
struct Side {
    /// The line being assembled (its first [`MAX_LINE`] bytes).
    line: Vec<u8>,
    /// Its whole length so far.
    line_len: u64,
    line_cut: bool,
    line_ts: Option<Ts>,
    /// The last byte looked at (a CR that ended a line lets an LF after it go).
    last: u8,
    /// Only CRLF ends a line (the body of a multipart part).
    crlf_only: bool,
    /// Bytes to hand on unsplit (a body of known length).
    plain: u64,
    /// Zeek's delivery size: counted down by each later data call; reaching exactly zero
    /// ends a partial line as if a CRLF followed. -1: off.
    delivery: i64,
    /// Nothing more of this direction is parsed (after a gap, a tunnel).
    skip: bool,
    msg: Option<Msg>,
}

impl Default for Side {
    fn default() -> Self {
        Side {
            line: Vec::new(),
            line_len: 0,
            line_cut: false,
            line_ts: None,
            last: 0,
            crlf_only: false,
            plain: 0,
            delivery: -1,
            skip: false,
            msg: None,
        }
    }
}

impl Side {
    /// A line ended: the time its first byte came (`ts` if this call brought it) and a fresh
    /// cut flag for the next one.
    fn end_line(&mut self, ts: Ts) -> Ts {
        self.line_cut = false;
        self.line_ts.take().unwrap_or(ts)
    }
}

/// Requests awaiting their response at most: the matcher's bound for requests answered in
/// order ([`crate::l7::MAX_PIPELINED`]). Beyond it the oldest is forgotten here as the matcher
/// writes it unanswered (counted in `MatchStats::overflow`); the reply that answers it is still
/// taken in its place (`forgotten`), so later replies keep their own requests.
pub const MAX_PENDING: usize = crate::l7::MAX_PIPELINED;

/// What the reply side needs to know about a request it will answer.
#[derive(Debug)]
struct Pending {
    /// The method is a prefix of `HEAD`, in any case (Zeek's test): no reply body.
    head: bool,
    /// The request asked to upgrade to h2c: what HTTP/2 needs of it if the server agrees.
    h2c: Option<Box<Upgrade>>,
}

/// Zeek's DPD buffer of the connection's first bytes (both directions, in order), kept while
/// a parser removed after a violation may still be brought back by the server's first bytes.
#[derive(Debug, Default)]
struct Dpd {
    /// Still buffering (no more than [`DPD_BUFFER`] bytes and [`DPD_CHUNKS`] chunks so far).
    stopped: bool,
    size: u64,
    chunks: u32,
    /// The chunks: data, or a gap of that many bytes.
    buf: Vec<(Dir, Ts, Result<Vec<u8>, u64>)>,
    /// The first bytes of the server's stream, while its signature is undecided.
    server_start: Vec<u8>,
    /// The server's signature matched (or cannot any more): it fires once.
    server_decided: bool,
}

impl Dpd {
    /// Adds a chunk; whether the buffer was still open before it (so it is matched).
    /// A chunk that closes the buffer is not kept: only the server's first bytes can still
    /// bring a parser back then, and they are at hand (see [`Http::reactivate`]).
    fn note(&mut self, dir: Dir, ts: Ts, chunk: Result<&[u8], u64>) -> bool {
        if self.stopped {
            return false;
        }
        self.chunks += 1;
        if let Ok(d) = chunk {
            self.size += d.len() as u64;
        }
        if self.size > DPD_BUFFER || self.chunks > DPD_CHUNKS {
            self.stopped = true;
        } else {
            self.buf.push((dir, ts, chunk.map(<[u8]>::to_vec)));
        }
        true
    }

    /// Server bytes: whether Zeek's server signature matches the stream's start with them
    /// (once, while the buffer is open: `open` says it was before them).
    fn server_match(&mut self, data: &[u8], open: bool) -> bool {
        if self.server_decided {
            return false;
        }
        if !open {
            self.server_decided = true;
            return false;
        }
        let n = (6 - self.server_start.len()).min(data.len());
        self.server_start.extend_from_slice(&data[..n]);
        match server_signature(&self.server_start) {
            Probe::NeedMore => false,
            verdict => {
                self.server_decided = true;
                verdict == Probe::Yes
            }
        }
    }
}

/// The HTTP/1.x parser for one connection.
#[derive(Debug, Default)]
pub struct Http {
    sides: [Side; 2],
    req_state: ReqState,
    rep_state: RepState,
    /// The raw HTTP/0.9 reply has begun.
    raw_started: bool,
    request_ongoing: bool,
    reply_ongoing: bool,
    requests: u64,
    keep_alive: bool,
    connection_close: bool,
    /// (0, 0) until set.
    request_version: (u8, u8),
    reply_version: (u8, u8),
    /// The reply in progress (0 between replies).
    reply_code: u16,
    connect_request: bool,
    upgrade_connection: bool,
    upgrade_protocol: Option<Vec<u8>>,
    pending: VecDeque<Pending>,
    /// Requests older than every one in `pending`, forgotten for [`MAX_PENDING`], whose
    /// replies are still to come.
    forgotten: u64,
    /// The request whose start has not been announced yet: its time and fields.
    deferred: Option<(Ts, Fields)>,
    /// Header fields of the current request completed since its start was announced.
    fresh: Fields,
    bytes: u64,
    /// A violation within the window: the parser goes after this data.
    violated: bool,
    /// Removed after a violation, waiting for the server's first bytes.
    removed: bool,
    dpd: Dpd,
    state: Option<ParserState>,
    /// The parser for the rest of the connection after an upgrade to h2c.
    handover: Option<Handover>,
    /// The buffer of the last header line applied, emptied, for the next one: a header line
    /// is held until the next shows it has no continuation, and a buffer per line was a
    /// third of the analyzer's allocations on small exchanges.
    spare_line: Vec<u8>,
    /// The entity list of the last message finished, emptied, for the next one.
    spare_ents: Vec<message::Ent>,
}

/// HTTP/1 answers requests in order.
const KEY: MatchKey = MatchKey::Fifo;

/// Fields a request's list makes room for when it starts: it becomes its exchange's list,
/// which the response's fields join (a plain exchange has 11 or 12 — method, uri, versions,
/// host, user agent, lengths, status, content type — and grew from 8 once per exchange).
const EXCHANGE_ROOM: usize = 16;

impl Http {
    /// A reply ended: the oldest unanswered request (forgotten or pending) is answered.
    fn reply_taken(&mut self) {
        if self.forgotten > 0 {
            self.forgotten -= 1;
        } else {
            self.pending.pop_front();
        }
    }

    fn give_up(&mut self, out: &mut Emitter, why: &'static str) {
        out.weird(why);
        self.state = Some(ParserState::GaveUp);
        for s in &mut self.sides {
            s.skip = true;
        }
    }

    fn finished(&mut self) {
        self.state = Some(ParserState::Finished);
        for s in &mut self.sides {
            s.skip = true;
        }
    }

    /// Zeek's `SetVersion`: a version above 1.0, of a request or a reply, makes the
    /// connection keep-alive for good.
    fn set_version(&mut self, reply: bool, v: (u8, u8)) {
        let slot = if reply {
            &mut self.reply_version
        } else {
            &mut self.request_version
        };
        *slot = v;
        if v > (1, 0) {
            self.keep_alive = true;
        }
    }

    /// Announces the request start that was held back (with the header fields completed by
    /// now).
    fn flush_start(&mut self, out: &mut Emitter) {
        if let Some((ts, mut f)) = self.deferred.take() {
            // `fresh` keeps its room for the next request's header fields.
            f.absorb(&mut self.fresh);
            out.emit(Event::RequestStart {
                ts,
                key: KEY,
                fields: f,
            });
        }
    }

    /// A violation: the direction stops; within the window the parser is removed after
    /// this data (Zeek's DPD).
    fn violation(&mut self, dir: Dir, out: &mut Emitter) {
        out.weird("protocol_violation");
        match dir {
            Dir::ToServer => self.req_state = ReqState::Nothing,
            Dir::ToClient => self.rep_state = RepState::Nothing,
        }
        if self.bytes <= VIOLATION_WINDOW {
            self.violated = true;
        }
    }

    /// The parser is removed (Zeek's `Done`): messages in progress end, interrupted.
    fn remove(&mut self, ts: Ts, out: &mut Emitter) {
        self.violated = false;
        self.message_done(Dir::ToServer, ts, true, false, out);
        self.message_done(Dir::ToClient, ts, true, false, out);
        self.flush_start(out);
        for s in &mut self.sides {
            s.skip = true;
        }
        self.removed = true;
        if self.dpd.stopped || self.dpd.server_decided {
            self.state = Some(ParserState::GaveUp);
        }
    }

    /// Whether a request is expected (Zeek's `RequestExpected`): junk after a request that
    /// did not keep the connection alive is ignored.
    fn request_expected(&self) -> bool {
        self.requests == 0 || self.keep_alive
    }

    /// A line of the request side.
    fn request_line(&mut self, ts: Ts, line: &[u8], len: u64, out: &mut Emitter) {
        match self.req_state {
            ReqState::Nothing => {}
            ReqState::Message => self.deliver(Dir::ToServer, ts, line, len, true, out),
            ReqState::Line => {
                let parsed = parse_request_line(line).and_then(|r| {
                    match r.version {
                        ReqVersion::Missing => self.set_version(false, (0, 9)),
                        ReqVersion::Short => out.weird("bad_HTTP_version"),
                        ReqVersion::Parsed(v) => self.set_version(false, v),
                    }
                    // HTTP/0.9 (now or still, after a short version): a method of three
                    // bytes at least and a target.
                    if self.request_version == (0, 9) && (r.method.len() < 3 || r.uri.is_empty()) {
                        Err("bad_HTTP_request")
                    } else {
                        Ok(r)
                    }
                });
                let r = match parsed {
                    Ok(r) => r,
                    Err(w) => {
                        if !self.request_expected() {
                            out.weird("crud_trailing_HTTP_request");
                        } else if len == 0 {
                            out.weird("empty_http_request");
                        } else {
                            out.weird(w);
                            self.violation(Dir::ToServer, out);
                        }
                        return;
                    }
                };
                self.requests += 1;
                if !self.keep_alive && self.requests > 1 {
                    out.weird("unexpected_multiple_HTTP_requests");
                }
                self.req_state = ReqState::Message;
                self.request_ongoing = true;
                let not_get = r.method != b"GET";
                let m = &r.method;
                if abbreviates(m, b"CONNECT") {
                    self.connect_request = true;
                }
                if self.pending.len() >= MAX_PENDING {
                    self.pending.pop_front();
                    self.forgotten += 1;
                }
                self.pending.push_back(Pending {
                    head: abbreviates(m, b"HEAD"),
                    h2c: None,
                });
                self.flush_start(out);
                self.fresh.clear();
                let mut f = out.fields_with_room(EXCHANGE_ROOM);
                f.set("method", Value::text(r.method));
                f.set("uri", crate::l7::shown_url_value(r.uri));
                f.set("request_version", version_text(self.request_version));
                self.deferred = Some((ts, f));
                let mut msg = self.new_msg(Kind::Request, ts, Expect::Maybe);
                msg.method = Text::from_slice(r.method);
                msg.uri = Text::from_slice(r.uri);
                msg.version = self.request_version;
                self.sides[0].msg = Some(msg);
                if self.request_version == (0, 9) {
                    if not_get {
                        out.weird("invalid_http_09_request_method");
                    }
                    // Every server byte from now on is the raw answer; a reply in progress
                    // ends here.
                    if self.sides[1].msg.is_some() {
                        out.weird("http_09_reply_before_request");
                        self.message_done(Dir::ToClient, ts, false, false, out);
                    }
                    self.rep_state = RepState::Http09;
                    self.raw_started = false;
                    let s = &mut self.sides[1];
                    s.line.clear();
                    s.line_len = 0;
                    s.line_ts = None;
                    s.plain = 0;
                    s.delivery = -1;
                }
            }
        }
    }

    /// Whether a reply to the oldest unanswered request has a body (Zeek's
    /// `ExpectReplyMessageBody`).
    fn expect_reply_body(&self, code: u16) -> Expect {
        let head = self.forgotten == 0 && self.pending.front().is_some_and(|p| p.head);
        if head || (100..200).contains(&code) || code == 204 || code == 304 {
            Expect::NotExpected
        } else {
            Expect::Expected
        }
    }

    /// A line of the reply side.
    fn reply_line(&mut self, ts: Ts, line: &[u8], len: u64, out: &mut Emitter) {
        match self.rep_state {
            RepState::Nothing | RepState::Http09 => {}
            RepState::Message => {
                self.deliver(Dir::ToClient, ts, line, len, true, out);
                if self.connect_request && len == 0 && self.state.is_none() {
                    // The reply to CONNECT ended its headers: a tunnel from here.
                    self.message_done(Dir::ToClient, ts, false, true, out);
                    self.finished();
                }
            }
            RepState::Line => {
                if line.len() >= 5 && line[..5].eq_ignore_ascii_case(b"HTTP/") {
                    self.set_version(true, wire_version(&line[5..]));
                }
                let Some(s) = parse_status_line(line) else {
                    if len > 0 {
                        out.weird("bad_HTTP_reply");
                        self.violation(Dir::ToClient, out);
                    }
                    return;
                };
                self.rep_state = RepState::Message;
                self.reply_ongoing = true;
                self.reply_code = s.code;
                if self.connect_request && s.code != 200 {
                    self.connect_request = false;
                }
                let expect = self.expect_reply_body(s.code);
                self.announce_reply(ts, s.version, s.code, s.reason, out);
                let mut m = self.new_msg(Kind::Response, ts, expect);
                m.version = s.version;
                m.code = s.code;
                self.sides[1].msg = Some(m);
            }
        }
    }

    /// The reply's first event: interim (1xx) or final.
    fn announce_reply(
        &mut self,
        ts: Ts,
        version: (u8, u8),
        code: u16,
        reason: Option<&[u8]>,
        out: &mut Emitter,
    ) {
        self.flush_start(out);
        let mut f = out.fields();
        f.set("version", version_text(version));
        f.set("status_code", Value::U64(u64::from(code)));
        if let Some(r) = reason {
            f.set("status_msg", Value::text(r));
        }
        if (100..200).contains(&code) {
            let mut info = Fields::default();
            info.set("info_code", Value::U64(u64::from(code)));
            if let Some(Value::Text(r)) = f.get("status_msg") {
                info.set("info_msg", Value::Text(r.clone()));
            }
            info.merge(f);
            out.emit(Event::Info {
                ts,
                key: KEY,
                fields: info,
            });
        } else {
            out.emit(Event::ResponseStart {
                ts,
                key: KEY,
                fields: f,
            });
        }
    }

    /// Server bytes after an HTTP/0.9 request: one raw reply to the oldest unanswered
    /// request, version 0.9, status 0, every byte its body.
    fn raw_reply(&mut self, ts: Ts, data: &[u8], out: &mut Emitter) {
        if !self.raw_started {
            self.raw_started = true;
            self.set_version(true, (0, 9));
            self.reply_taken();
            self.connection_close = true;
            self.reply_ongoing = true;
            self.flush_start(out);
            let mut f = Fields::default();
            f.set("version", Value::text("0.9"));
            f.set("status_code", Value::U64(u64::from(self.reply_code)));
            out.emit(Event::ResponseStart {
                ts,
                key: KEY,
                fields: f,
            });
            let expect = self.expect_reply_body(self.reply_code);
            let mut m = self.new_msg(Kind::Response, ts, expect);
            m.version = (0, 9);
            m.http09 = true;
            self.sides[1].msg = Some(m);
            // No status line and no headers: the body starts at once.
            self.deliver(Dir::ToClient, ts, &[], 0, true, out);
        }
        self.deliver(Dir::ToClient, ts, data, data.len() as u64, false, out);
    }

    /// A direction's bytes (Zeek's `ContentLine_Analyzer::DeliverStream`, then the HTTP
    /// analyzer's).
    fn stream(&mut self, dir: Dir, ts: Ts, data: &[u8], out: &mut Emitter) {
        let di = dir.idx();
        if self.sides[di].skip || self.state.is_some() {
            return;
        }
        if dir == Dir::ToClient && self.rep_state == RepState::Http09 {
            self.raw_reply(ts, data, out);
            return;
        }
        let side = &mut self.sides[di];
        if side.delivery > 0 {
            side.delivery -= data.len() as i64;
        }
        self.lines(dir, ts, data, out);
        let side = &mut self.sides[di];
        if side.delivery == 0 {
            side.delivery = -1;
            if side.line_len > 0 && !side.skip {
                out.weird("line_terminated_without_CRLF");
                self.lines(dir, ts, b"\r\n", out);
            }
        }
    }

    /// Cuts `data` into lines and plain bytes (Zeek's `DoDeliver`).
    fn lines(&mut self, dir: Dir, ts: Ts, mut data: &[u8], out: &mut Emitter) {
        let di = dir.idx();
        while !data.is_empty() && !self.sides[di].skip && self.state.is_none() {
            let side = &mut self.sides[di];
            if !side.crlf_only && side.last == b'\r' && data[0] == b'\n' {
                side.last = b'\n';
                data = &data[1..];
                continue;
            }
            if side.plain > 0 {
                let n = side.plain.min(data.len() as u64) as usize;
                side.last = 0;
                side.plain -= n as u64;
                self.plain(dir, ts, &data[..n], out);
                data = &data[n..];
                continue;
            }
            // A whole CRLF line at the start of `data`, nothing carried over: read in place
            // (what `scan` would copy into `side.line` and hand over is these very bytes).
            if side.line_len == 0
                && side.line.is_empty()
                && let Some(k) = memchr2(b'\r', b'\n', data)
                && k < MAX_LINE
                && data[k] == b'\r'
                && data.get(k + 1) == Some(&b'\n')
            {
                let (line, rest) = data.split_at(k);
                data = &rest[2..];
                side.last = b'\n';
                let lts = side.end_line(ts);
                self.line(dir, lts, line, k as u64, out);
                continue;
            }
            let (used, done) = scan(side, data, ts, out);
            data = &data[used..];
            if done {
                let side = &mut self.sides[di];
                let line = std::mem::take(&mut side.line);
                let len = std::mem::take(&mut side.line_len);
                let lts = side.end_line(ts);
                self.line(dir, lts, &line, len, out);
                let side = &mut self.sides[di];
                if side.line.capacity() == 0 && line.capacity() <= 4096 {
                    side.line = line;
                    side.line.clear();
                }
            }
        }
        // What follows the message that ended HTTP (101, CONNECT) is the next protocol's.
        if self.state == Some(ParserState::Finished)
            && !data.is_empty()
            && let Some(h) = self.handover.as_mut()
            && h.rest.is_none()
        {
            h.rest = Some((dir, ts, data.to_vec()));
        }
    }

    /// A complete line of `dir` (`len` bytes long on the wire; `line` may hold fewer).
    fn line(&mut self, dir: Dir, ts: Ts, line: &[u8], len: u64, out: &mut Emitter) {
        match dir {
            Dir::ToServer => self.request_line(ts, line, len, out),
            Dir::ToClient => self.reply_line(ts, line, len, out),
        }
    }

    /// Plain bytes (a body of known length): to the message, if there is one.
    fn plain(&mut self, dir: Dir, ts: Ts, data: &[u8], out: &mut Emitter) {
        if self.sides[dir.idx()].msg.is_some() {
            self.deliver(dir, ts, data, data.len() as u64, false, out);
        } else {
            out.weird(match dir {
                Dir::ToServer => "unexpected_client_HTTP_data",
                Dir::ToClient => "unexpected_server_HTTP_data",
            });
        }
    }

    /// Bytes lost in `dir` (Zeek's `Undelivered`).
    fn lost(&mut self, dir: Dir, ts: Ts, len: u64, out: &mut Emitter) {
        let di = dir.idx();
        if self.sides[di].skip || self.state.is_some() {
            return;
        }
        out.weird("HTTP_content_gap");
        if self.undelivered(dir, ts, len, out) {
            return;
        }
        if dir == Dir::ToServer {
            self.message_done(Dir::ToServer, ts, true, false, out);
        }
        self.message_done(Dir::ToClient, ts, true, false, out);
        self.sides[di].skip = true;
    }

    /// The analyzer may be brought back: the server's first bytes start a reply while the
    /// DPD buffer is still open. The whole buffer (this chunk included) is run through a
    /// fresh parser.
    fn reactivate(&mut self, ts: Ts, out: &mut Emitter) {
        let buf = std::mem::take(&mut self.dpd.buf);
        let mut fresh = Http {
            bytes: self.bytes,
            ..Http::default()
        };
        fresh.dpd.stopped = true;
        fresh.dpd.server_decided = true;
        for (dir, t, chunk) in buf {
            match chunk {
                Ok(d) => fresh.stream(dir, t, &d, out),
                Err(n) => fresh.lost(dir, t, n, out),
            }
        }
        if fresh.violated {
            fresh.remove(ts, out);
        }
        *self = fresh;
    }
}

/// `HTTP/x.y` of a status line: single digits, else 0.0.
fn wire_version(v: &[u8]) -> (u8, u8) {
    match v {
        [a, b'.', b, ..] if a.is_ascii_digit() && b.is_ascii_digit() => (a - b'0', b - b'0'),
        _ => (0, 0),
    }
}

/// Looks for the end of the line being assembled in `data` (Zeek's `DoDeliverOnce`):
/// CRLF, bare CR or bare LF end it (only CRLF in `crlf_only` mode, where bare CR and LF are
/// data), and an LF right after a CR that ended the previous line is dropped. Returns the
/// bytes used and whether a line ended.
fn scan(side: &mut Side, data: &[u8], ts: Ts, out: &mut Emitter) -> (usize, bool) {
    if side.line_ts.is_none() {
        side.line_ts = Some(ts);
    }
    let mut i = 0;
    while i < data.len() {
        let run_end = memchr2(b'\r', b'\n', &data[i..]).map_or(data.len(), |k| i + k);
        // Zeek cuts a line at its buffer's end: the byte that does not fit is dropped and
        // ends the line.
        let room = ZEEK_MAX_LINE.saturating_sub(side.line_len) as usize;
        if run_end - i > room {
            push(side, &data[i..i + room], out);
            side.line_len -= 1;
            side.last = data[i + room];
            out.weird("contentline_size_exceeded");
            return (i + room + 1, true);
        }
        if run_end > i {
            push(side, &data[i..run_end], out);
            side.last = data[run_end - 1];
        }
        if run_end == data.len() {
            return (data.len(), false);
        }
        if side.line_len >= ZEEK_MAX_LINE {
            side.line_len -= 1;
            side.last = data[run_end];
            out.weird("contentline_size_exceeded");
            return (run_end + 1, true);
        }
        let c = data[run_end];
        i = run_end + 1;
        if c == b'\r' {
            if data.get(i) == Some(&b'\n') {
                side.last = b'\n';
                return (i + 1, true);
            }
            if !side.crlf_only {
                side.last = b'\r';
                return (i, true);
            }
            push(side, b"\r", out);
            side.last = b'\r';
        } else if side.last == b'\r' {
            if side.line_len == 0 {
                side.last = b'\n';
                continue;
            }
            // The CR that ended the last data call belongs to this terminator.
            side.line_len -= 1;
            if side.line.len() as u64 > side.line_len {
                side.line.pop();
            }
            side.last = b'\n';
            return (i, true);
        } else if !side.crlf_only {
            side.last = b'\n';
            return (i, true);
        } else {
            push(side, b"\n", out);
            side.last = b'\n';
        }
    }
    (data.len(), false)
}

/// Adds bytes to the line being assembled: counted whole, kept up to [`MAX_LINE`].
fn push(side: &mut Side, part: &[u8], out: &mut Emitter) {
    side.line_len += part.len() as u64;
    let room = MAX_LINE.saturating_sub(side.line.len());
    if part.len() > room {
        if !side.line_cut {
            out.weird("http_line_too_long");
            side.line_cut = true;
        }
        side.line.extend_from_slice(&part[..room]);
    } else {
        side.line.extend_from_slice(part);
    }
}

impl Parser for Http {
    fn data(&mut self, dir: Dir, ts: Ts, data: &[u8], out: &mut Emitter) {
        if self.state.is_some() {
            return;
        }
        self.bytes += data.len() as u64;
        let open = self.dpd.note(dir, ts, Ok(data));
        let matched = dir == Dir::ToClient && self.dpd.server_match(data, open);
        if self.removed {
            if matched {
                if self.dpd.stopped {
                    // The chunk that closed the buffer is replayed too.
                    self.dpd.buf.push((dir, ts, Ok(data.to_vec())));
                }
                self.reactivate(ts, out);
            } else if self.dpd.stopped || self.dpd.server_decided {
                self.state = Some(ParserState::GaveUp);
            }
            return;
        }
        if self.dpd.stopped || self.dpd.server_decided {
            // No re-activation is possible any more: nothing to keep.
            self.dpd.buf = Vec::new();
        }
        self.stream(dir, ts, data, out);
        if self.violated {
            self.remove(ts, out);
        }
    }

    fn gap(&mut self, dir: Dir, ts: Ts, len: u64, out: &mut Emitter) {
        if self.state.is_some() {
            return;
        }
        self.dpd.note(dir, ts, Err(len));
        if self.removed {
            if self.dpd.stopped || self.dpd.server_decided {
                self.state = Some(ParserState::GaveUp);
            }
            return;
        }
        self.lost(dir, ts, len, out);
        if self.violated {
            self.remove(ts, out);
        }
    }

    fn end(&mut self, dir: Dir, ts: Ts, out: &mut Emitter) {
        if self.state.is_some() || self.removed {
            return;
        }
        let di = dir.idx();
        let raw = dir == Dir::ToClient && self.rep_state == RepState::Http09;
        if !raw && self.sides[di].line_len > 0 && !self.sides[di].skip {
            // A last line without terminator: Zeek's content line adds an LF.
            self.stream(dir, ts, b"\n", out);
        }
        let complete = self.sides[di].msg.as_ref().is_some_and(|m| m.ends_at_eof());
        self.message_done(dir, ts, false, complete, out);
        if dir == Dir::ToServer {
            self.flush_start(out);
        }
        if self.violated {
            self.remove(ts, out);
        }
    }

    fn state(&self) -> ParserState {
        self.state.unwrap_or(ParserState::Active)
    }

    fn handover(&mut self) -> Option<Handover> {
        self.handover.take()
    }
}
