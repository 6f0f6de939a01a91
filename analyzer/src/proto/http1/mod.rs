//! HTTP/1.x (and 0.9).
//!
//! An incremental, per-direction parser in the style of Zeek's HTTP analyzer, whose logs it
//! reproduces field by field (see `docs/http.md` for the rules and their sources). It is
//! lenient where real traffic is messy and strict about what it buffers:
//!
//! - Lines end at CRLF, bare LF or bare CR (a CR at the end of one segment and an LF at the
//!   start of the next are one terminator). A line longer than [`MAX_LINE`] is cut and counted.
//! - Request lines: method token, target up to the whitespace before `HTTP/`, version; a line
//!   without `HTTP/` is an HTTP/0.9 request. Status lines: `HTTP/x.y`, three digits, reason.
//! - Headers: obs-fold continuations are joined; lines without a valid name and colon are
//!   dropped; more than [`MAX_HEADER_BYTES`] or [`MAX_HEADERS`] gives the connection up.
//! - Bodies, in this order: none (HEAD, 1xx, 204, 304); multipart/message bodies line by line;
//!   chunked (HTTP/1.1), with trailers; Content-Length (206 with Content-Range: the larger);
//!   until the connection closes (`Connection: close` seen, or a compressed body); otherwise a
//!   request has no body and a response runs, line by line, to the end of the connection.
//!   Body lengths are decoded lengths (de-chunked, and inflated for gzip/deflate).
//! - 1xx responses are interim; 101 and a 2xx answer to CONNECT end HTTP on the connection.
//!   A 101 with `Upgrade: h2c` to a request that asked for it hands the rest of the
//!   connection to the protocol that accepts the `h2c` token (HTTP/2), the request becoming
//!   stream 1 there.
//! - A gap inside a body of known length is counted as body and parsing goes on; any other
//!   gap ends the message in progress and the direction resynchronises on the next line that
//!   is a request line (or status line).
//! - A line that is neither a request line where one is expected (nor a status line) is a
//!   protocol violation: the connection is given up.
//!
//! Layout: `wire` parses request, status and header lines (pure functions, Zeek's rules);
//! this module cuts each direction into lines and runs the state machine; `headers` assembles
//! and interprets header lines, `message` delimits bodies and ends messages ([`inflate`]
//! counts decoded body lengths); `zeek` has [`ZEEK_LOG`] and the report summary.

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
use crate::model::{Dir, Fields, Transport, Ts, Value};
use message::{Body, Kind, Msg};
use wire::{METHODS, parse_request_line, parse_status_line, trim_start};
use zeek::summarize;

pub use zeek::{ZEEK_LOG, unescape_uri};

/// Longest line kept; longer lines are cut (and counted as `http_line_too_long`).
pub const MAX_LINE: usize = 64 * 1024;
/// Header bytes per message before the connection is given up.
pub const MAX_HEADER_BYTES: usize = 256 * 1024;
/// Header lines per message before the connection is given up.
pub const MAX_HEADERS: usize = 1024;
/// Zeek's DPD stops a connection's HTTP analysis on a violation only while it has carried at
/// most this many bytes; past that, only the violating direction stops.
pub const VIOLATION_WINDOW: u64 = 10 * 1024;

/// The registration.
pub static PROTOCOL: Protocol = Protocol {
    name: "http",
    transports: &[Transport::Tcp],
    ports: &[80, 81, 591, 631, 1080, 3128, 8000, 8008, 8080, 8081, 8888],
    probe,
    new_parser: |_| Box::new(Http::default()),
    zeek: Some(&ZEEK_LOG),
    upgrade: None,
    summarize,
};

/// Whether a client's first bytes begin with a known method and whitespace.
fn starts_with_method(b: &[u8]) -> Probe {
    let b = trim_start(b);
    for m in METHODS {
        if b.len() > m.len() {
            if b.starts_with(m) && matches!(b[m.len()], b' ' | b'\t') {
                return Probe::Yes;
            }
        } else if m.starts_with(b) {
            return Probe::NeedMore;
        }
    }
    Probe::No
}

fn probe(p: &ProbeInput<'_>) -> Probe {
    let c = starts_with_method(p.to_server);
    if c == Probe::Yes {
        return Probe::Yes;
    }
    let s = p.to_client;
    let server = if s.len() >= 6 {
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
    };
    match (c, server) {
        (_, Probe::Yes) => Probe::Yes,
        // Content cannot tell yet: a request line still arriving.
        (Probe::NeedMore, _) | (_, Probe::NeedMore) => Probe::NeedMore,
        // An odd first line on an HTTP port: Zeek parses HTTP/0.9 and junk on its HTTP ports,
        // so the port decides once the stream ends.
        _ if !p.to_server.is_empty() && PROTOCOL.ports.contains(&p.server_port) => Probe::NeedMore,
        _ => Probe::No,
    }
}

/// A version as the logs write it (`1.1`).
fn version_text((a, b): (u8, u8)) -> Value {
    Value::text(format!("{a}.{b}"))
}

/// Where a direction is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Expecting a request or status line.
    FirstLine,
    Headers,
    Body(Body),
    /// HTTP/0.9 response: every byte is body until the end.
    Raw,
    /// After a gap: looking for a line that starts a message.
    Resync,
    /// Nothing more will be parsed in this direction.
    Done,
}

/// One direction: its state, the line being assembled, the message in progress.
#[derive(Debug)]
struct Side {
    state: State,
    line: Vec<u8>,
    line_cut: bool,
    line_ts: Option<Ts>,
    skip_lf: bool,
    msg: Option<Msg>,
}

impl Default for Side {
    fn default() -> Self {
        Side {
            state: State::FirstLine,
            line: Vec::new(),
            line_cut: false,
            line_ts: None,
            skip_lf: false,
            msg: None,
        }
    }
}

/// Requests awaiting their response at most (the matcher's bound): beyond it the oldest is
/// forgotten here as the matcher writes it unanswered (counted in `MatchStats::overflow`).
pub const MAX_PENDING: usize = crate::l7::MAX_OPEN;

/// What the response side needs to know about a request it will answer.
#[derive(Debug)]
struct Pending {
    method: Vec<u8>,
    http09: bool,
    /// The request asked to upgrade to h2c: what HTTP/2 needs of it if the server agrees.
    h2c: Option<Box<Upgrade>>,
}

/// The HTTP/1.x parser for one connection.
#[derive(Debug, Default)]
pub struct Http {
    sides: [Side; 2],
    pending: VecDeque<Pending>,
    requests: u64,
    keep_alive: bool,
    connection_close: bool,
    bytes: u64,
    state: Option<ParserState>,
    /// The parser for the rest of the connection after an upgrade to h2c.
    handover: Option<Handover>,
}

/// HTTP/1 answers requests in order.
const KEY: MatchKey = MatchKey::Fifo;

impl Http {
    fn give_up(&mut self, out: &mut Emitter, why: &'static str) {
        out.weird(why);
        self.state = Some(ParserState::GaveUp);
        for s in &mut self.sides {
            s.state = State::Done;
        }
    }

    fn finished(&mut self) {
        self.state = Some(ParserState::Finished);
        for s in &mut self.sides {
            s.state = State::Done;
        }
    }

    fn line_done(&mut self, dir: Dir, out: &mut Emitter) {
        let side = &mut self.sides[dir.idx()];
        let line = std::mem::take(&mut side.line);
        let ts = side.line_ts.take().unwrap_or(0);
        side.line_cut = false;
        self.on_line(dir, ts, &line, out);
        let side = &mut self.sides[dir.idx()];
        if side.line.capacity() < 256 {
            side.line = Vec::with_capacity(256);
        }
    }

    fn on_line(&mut self, dir: Dir, ts: Ts, line: &[u8], out: &mut Emitter) {
        match self.sides[dir.idx()].state {
            State::FirstLine | State::Resync => self.first_line(dir, ts, line, out),
            State::Headers => self.header_line(dir, ts, line, out),
            State::Body(b) => self.body_line(dir, ts, b, line, out),
            State::Raw | State::Done => {}
        }
    }

    fn first_line(&mut self, dir: Dir, ts: Ts, line: &[u8], out: &mut Emitter) {
        let di = dir.idx();
        let resync = self.sides[di].state == State::Resync;
        if line.is_empty() {
            if dir == Dir::ToServer && !resync {
                out.weird("empty_http_request");
            }
            return;
        }
        match dir {
            Dir::ToServer => {
                let parsed = parse_request_line(line);
                if resync {
                    // Only a line that is clearly a request line ends resynchronisation.
                    match &parsed {
                        Some(r)
                            if r.version.is_some() && METHODS.contains(&r.method.as_slice()) => {}
                        _ => return,
                    }
                }
                let Some(r) = parsed else {
                    if self.requests > 0 && !self.keep_alive {
                        out.weird("crud_trailing_HTTP_request");
                        return;
                    }
                    out.weird("bad_HTTP_request");
                    self.violation(dir, out);
                    return;
                };
                self.requests += 1;
                let mut m = Msg::new(Kind::Request, ts);
                m.method = r.method.clone();
                m.http09 = r.version.is_none();
                m.version = r.version.unwrap_or((0, 9));
                self.keep_alive = m.version >= (1, 1);
                if m.http09 {
                    // The server's answer will be raw bytes until it closes.
                    self.connection_close = true;
                }
                if self.pending.len() >= MAX_PENDING {
                    self.pending.pop_front();
                }
                self.pending.push_back(Pending {
                    method: r.method.clone(),
                    http09: m.http09,
                    h2c: None,
                });
                m.uri = r.uri.clone();
                let mut f = Fields::default();
                f.set("method", Value::Text(r.method));
                f.set("uri", Value::Text(r.uri));
                f.set("request_version", version_text(m.version));
                out.emit(Event::RequestStart {
                    ts,
                    key: KEY,
                    fields: f,
                });
                self.sides[di].msg = Some(m);
                self.sides[di].state = State::Headers;
            }
            Dir::ToClient => {
                let Some(s) = parse_status_line(line) else {
                    if !resync {
                        out.weird("bad_HTTP_reply");
                        self.violation(dir, out);
                    }
                    return;
                };
                self.start_response(ts, s.version, s.code, s.reason, out);
            }
        }
    }

    fn start_response(
        &mut self,
        ts: Ts,
        version: (u8, u8),
        code: u16,
        reason: Option<Vec<u8>>,
        out: &mut Emitter,
    ) {
        let mut m = Msg::new(Kind::Response, ts);
        m.version = version;
        m.code = code;
        m.method = self
            .pending
            .front()
            .map(|p| p.method.clone())
            .unwrap_or_default();
        let mut f = Fields::default();
        f.set("version", version_text(version));
        f.set("status_code", Value::U64(u64::from(code)));
        if let Some(r) = reason {
            f.set("status_msg", Value::Text(r));
        }
        if (100..200).contains(&code) && code != 101 {
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
            if code != 101 {
                self.pending.pop_front();
            }
            if code == 101 {
                let mut info = Fields::default();
                info.set("info_code", Value::U64(101));
                if let Some(Value::Text(r)) = f.get("status_msg") {
                    info.set("info_msg", Value::Text(r.clone()));
                }
                f.merge(info);
            }
            out.emit(Event::ResponseStart {
                ts,
                key: KEY,
                fields: f,
            });
        }
        let side = &mut self.sides[Dir::ToClient.idx()];
        side.msg = Some(m);
        side.state = State::Headers;
    }

    fn violation(&mut self, dir: Dir, out: &mut Emitter) {
        if self.bytes <= VIOLATION_WINDOW {
            self.give_up(out, "protocol_violation");
        } else {
            self.sides[dir.idx()].state = State::Done;
        }
    }

    fn feed(&mut self, dir: Dir, ts: Ts, mut data: &[u8], out: &mut Emitter) {
        let di = dir.idx();
        while !data.is_empty() {
            // A line ended with CR at the end of the previous segment: an LF here belongs to
            // that terminator, whatever state the line moved us into.
            if std::mem::take(&mut self.sides[di].skip_lf) && data[0] == b'\n' {
                data = &data[1..];
                continue;
            }
            let state = self.sides[di].state;
            match state {
                State::Done => {
                    // What follows the 101 that handed the connection over is the new
                    // protocol's.
                    if let Some(h) = self.handover.as_mut()
                        && h.rest.is_none()
                    {
                        h.rest = Some((dir, ts, data.to_vec()));
                    }
                    return;
                }
                State::Raw => {
                    if let Some(m) = self.sides[di].msg.as_mut() {
                        m.body(data);
                        m.last = ts;
                    }
                    return;
                }
                State::Body(Body::Length(rem)) | State::Body(Body::ChunkData(rem)) => {
                    let n = (rem.min(data.len() as u64)) as usize;
                    if let Some(m) = self.sides[di].msg.as_mut() {
                        m.body(&data[..n]);
                        m.last = ts;
                    }
                    data = &data[n..];
                    let left = rem - n as u64;
                    let side = &mut self.sides[di];
                    match (state, left) {
                        (State::Body(Body::Length(_)), 0) => self.message_done(dir, ts, true, out),
                        (State::Body(Body::Length(_)), l) => {
                            side.state = State::Body(Body::Length(l))
                        }
                        (_, 0) => side.state = State::Body(Body::ChunkDataEnd),
                        (_, l) => side.state = State::Body(Body::ChunkData(l)),
                    }
                }
                State::Body(Body::UntilEof) => {
                    if let Some(m) = self.sides[di].msg.as_mut() {
                        m.body(data);
                        m.last = ts;
                    }
                    return;
                }
                State::FirstLine
                    if dir == Dir::ToClient && self.pending.front().is_some_and(|p| p.http09) =>
                {
                    // The answer to an HTTP/0.9 request: no status line, raw until close.
                    self.pending.pop_front();
                    let mut m = Msg::new(Kind::Response, ts);
                    m.http09 = true;
                    m.version = (0, 9);
                    let mut f = Fields::default();
                    f.set("version", Value::text("0.9"));
                    f.set("status_code", Value::U64(0));
                    out.emit(Event::ResponseStart {
                        ts,
                        key: KEY,
                        fields: f,
                    });
                    self.sides[di].msg = Some(m);
                    self.sides[di].state = State::Raw;
                }
                _ => data = self.feed_lines(dir, ts, data, out),
            }
        }
    }

    /// Consumes bytes up to and including one line terminator (or all of `data`).
    fn feed_lines<'d>(&mut self, dir: Dir, ts: Ts, data: &'d [u8], out: &mut Emitter) -> &'d [u8] {
        let side = &mut self.sides[dir.idx()];
        if side.line_ts.is_none() {
            side.line_ts = Some(ts);
        }
        match memchr2(b'\r', b'\n', data) {
            Some(i) => {
                push_line(side, &data[..i], out);
                if data[i] == b'\r' {
                    if data.get(i + 1) == Some(&b'\n') {
                        self.line_done(dir, out);
                        return &data[i + 2..];
                    }
                    if i + 1 == data.len() {
                        side.skip_lf = true;
                    }
                }
                self.line_done(dir, out);
                &data[i + 1..]
            }
            None => {
                push_line(side, data, out);
                &[]
            }
        }
    }
}

fn push_line(side: &mut Side, part: &[u8], out: &mut Emitter) {
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
        self.feed(dir, ts, data, out);
    }

    fn gap(&mut self, dir: Dir, ts: Ts, len: u64, out: &mut Emitter) {
        if self.state.is_some() {
            return;
        }
        let di = dir.idx();
        let side = &mut self.sides[di];
        match side.state {
            State::Body(Body::Length(rem)) if len <= rem => {
                if let Some(m) = side.msg.as_mut() {
                    m.body_gap(len);
                }
                let left = rem - len;
                if left == 0 {
                    self.message_done(dir, ts, false, out);
                } else {
                    side.state = State::Body(Body::Length(left));
                }
                return;
            }
            State::Body(Body::ChunkData(rem)) if len <= rem => {
                if let Some(m) = side.msg.as_mut() {
                    m.body_gap(len);
                }
                let left = rem - len;
                side.state = State::Body(if left == 0 {
                    Body::ChunkDataEnd
                } else {
                    Body::ChunkData(left)
                });
                return;
            }
            State::Done => return,
            _ => {}
        }
        out.weird("HTTP_content_gap");
        if side.msg.is_some() {
            self.message_done(dir, ts, false, out);
        }
        let side = &mut self.sides[di];
        side.line.clear();
        side.line_ts = None;
        side.skip_lf = false;
        if side.state != State::Done {
            side.state = State::Resync;
        }
        if dir == Dir::ToClient {
            // The answers lost in the gap will not come: their requests stay unanswered.
            self.pending.clear();
        }
    }

    fn end(&mut self, dir: Dir, ts: Ts, out: &mut Emitter) {
        let di = dir.idx();
        if self.state.is_none() && !self.sides[di].line.is_empty() {
            // A last line without terminator still counts as a line.
            self.line_done(dir, out);
        }
        let side = &mut self.sides[di];
        let complete = matches!(
            side.state,
            State::Raw | State::Body(Body::UntilEof) | State::Body(Body::Lines(None))
        );
        if side.msg.is_some() {
            self.message_done(dir, ts, complete, out);
        }
        let side = &mut self.sides[di];
        side.state = State::Done;
    }

    fn state(&self) -> ParserState {
        self.state.unwrap_or(ParserState::Active)
    }

    fn handover(&mut self) -> Option<Handover> {
        self.handover.take()
    }
}
