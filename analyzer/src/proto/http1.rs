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

use std::collections::VecDeque;

use memchr::memchr2;

use crate::l7::summary::template_path;
use crate::l7::{
    Emitter, Event, Handover, MatchKey, Parser, ParserState, Probe, ProbeInput, Protocol, Upgrade,
    ZVal, ZeekLog,
};
use crate::model::{Dir, Exchange, Fields, Summary, Transport, Ts, Value};
use crate::proto::inflate::{Coding, Inflater};

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

/// `http.log`, with Zeek's columns and conventions.
pub static ZEEK_LOG: ZeekLog = ZeekLog {
    path: "http",
    fields: &[
        ("trans_depth", "count"),
        ("method", "string"),
        ("host", "string"),
        ("uri", "string"),
        ("referrer", "string"),
        ("version", "string"),
        ("user_agent", "string"),
        ("origin", "string"),
        ("request_body_len", "count"),
        ("response_body_len", "count"),
        ("status_code", "count"),
        ("status_msg", "string"),
        ("info_code", "count"),
        ("info_msg", "string"),
    ],
    row: zeek_row,
};

fn zeek_row(ex: &Exchange, row: &mut Vec<ZVal>) -> bool {
    let f = &ex.fields;
    let has_status = f.get("status_code").is_some();
    row.push(ZVal::Count(u64::from(ex.depth)));
    row.push(ZVal::opt_text(f.text("method")));
    row.push(ZVal::opt_text(f.text("host")));
    row.push(ZVal::opt_text(f.text("uri").map(unescape_uri).as_deref()));
    row.push(ZVal::opt_text(f.text("referrer")));
    row.push(ZVal::opt_text(f.text("version")));
    row.push(ZVal::opt_text(f.text("user_agent")));
    row.push(ZVal::opt_text(f.text("origin")));
    row.push(ZVal::Count(f.u64("request_body_len").unwrap_or(0)));
    row.push(ZVal::Count(f.u64("response_body_len").unwrap_or(0)));
    row.push(ZVal::opt_count(f.u64("status_code")));
    row.push(match (f.text("status_msg"), has_status) {
        (Some(m), _) => ZVal::Text(m.to_vec()),
        (None, true) => ZVal::Literal("<empty>"),
        (None, false) => ZVal::Unset,
    });
    row.push(ZVal::opt_count(f.u64("info_code")));
    row.push(ZVal::opt_text(f.text("info_msg")));
    true
}

/// Percent-decoding as Zeek applies it to logged URIs: `%XX` and `%uXXXX` are decoded; a `%`
/// at the end, a `%` with one byte after it at the end, and a `%` before a non-hex byte are
/// kept as they are; `%%` drops the first `%`.
pub fn unescape_uri(u: &[u8]) -> Vec<u8> {
    let hex = |c: u8| (c as char).to_digit(16).map(|d| d as u8);
    let n = u.len();
    let mut out = Vec::with_capacity(n);
    let mut i = 0;
    while i < n {
        if u[i] != b'%' {
            out.push(u[i]);
            i += 1;
            continue;
        }
        if i + 1 >= n {
            out.push(b'%');
            i += 1;
        } else if i + 2 >= n {
            out.extend_from_slice(&u[i..i + 2]);
            i += 2;
        } else if u[i + 1] == b'%' {
            i += 1;
        } else if matches!(u[i + 1], b'u' | b'U')
            && i + 6 <= n
            && u[i + 2..i + 6].iter().all(u8::is_ascii_hexdigit)
        {
            let b = |k: usize| hex(u[k]).unwrap_or(0);
            let hi = b(i + 2) << 4 | b(i + 3);
            let lo = b(i + 4) << 4 | b(i + 5);
            if hi != 0 {
                out.push(hi);
            }
            out.push(lo);
            i += 6;
        } else if let (Some(a), Some(b)) = (hex(u[i + 1]), hex(u[i + 2])) {
            out.push(a << 4 | b);
            i += 3;
        } else {
            out.extend_from_slice(&u[i..i + 2]);
            i += 2;
        }
    }
    out
}

fn summarize(ex: &Exchange) -> Summary {
    let f = &ex.fields;
    let method = f
        .text("method")
        .map(|m| String::from_utf8_lossy(m).into_owned());
    let endpoint = match (method, f.text("uri")) {
        (Some(m), Some(u)) => format!("{m} {}", template_path(u)),
        (Some(m), None) => m,
        (None, _) => "(no request)".into(),
    };
    let code = f.u64("status_code");
    Summary {
        endpoint,
        status: code.map(|c| c.to_string()),
        failed: code.is_some_and(|c| c >= 500),
    }
}

/// Methods recognised when probing and resynchronising (any token is accepted once HTTP is
/// established).
const METHODS: &[&[u8]] = &[
    b"GET",
    b"POST",
    b"HEAD",
    b"PUT",
    b"DELETE",
    b"OPTIONS",
    b"PATCH",
    b"CONNECT",
    b"TRACE",
    b"PROPFIND",
    b"PROPPATCH",
    b"MKCOL",
    b"COPY",
    b"MOVE",
    b"LOCK",
    b"UNLOCK",
    b"SEARCH",
    b"REPORT",
    b"MKACTIVITY",
    b"CHECKOUT",
    b"MERGE",
    b"PURGE",
    b"LINK",
    b"UNLINK",
];

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

fn trim_start(b: &[u8]) -> &[u8] {
    let n = b
        .iter()
        .take_while(|c| matches!(c, b' ' | b'\t' | b'\r' | b'\n'))
        .count();
    &b[n..]
}

fn is_token(c: u8) -> bool {
    (33..=126).contains(&c) && !b"()<>@,;:\\\"/[]?={}".contains(&c)
}

fn is_ws(c: u8) -> bool {
    c == b' ' || c == b'\t'
}

fn is_uri_char(c: u8) -> bool {
    c.is_ascii_alphanumeric() || b":/?#[]@!$&'()*+,;=-_.~%".contains(&c)
}

/// A parsed `HTTP/x.y`: single digits, anything else is 0.0 (as Zeek).
fn parse_version(v: &[u8]) -> (u8, u8) {
    match v {
        [a, b'.', b, ..] if a.is_ascii_digit() && b.is_ascii_digit() => (a - b'0', b - b'0'),
        _ => (0, 0),
    }
}

fn version_text((a, b): (u8, u8)) -> Value {
    Value::text(format!("{a}.{b}"))
}

#[derive(Debug, PartialEq, Eq)]
struct RequestLine {
    method: Vec<u8>,
    uri: Vec<u8>,
    version: Option<(u8, u8)>,
}

/// Parses a request line with Zeek's rules; `None` is a violation.
fn parse_request_line(line: &[u8]) -> Option<RequestLine> {
    let mlen = line.iter().take_while(|&&c| is_token(c)).count();
    if mlen == 0 || mlen >= line.len() || !is_ws(line[mlen]) {
        return None;
    }
    let method = line[..mlen].to_vec();
    let mut p = mlen;
    while p < line.len() && is_ws(line[p]) {
        p += 1;
    }
    let rest = &line[p..];
    let scan = rest.iter().take_while(|&&c| is_uri_char(c)).count();
    let has_http = |b: &[u8]| b.len() >= 5 && b[..5].eq_ignore_ascii_case(b"HTTP/");
    // `GET HTTP/1.1`: no target at all.
    if scan == rest.len() && has_http(rest) {
        return Some(RequestLine {
            method,
            uri: Vec::new(),
            version: Some(parse_version(&rest[5..])),
        });
    }
    let mut at = scan;
    while at < rest.len() {
        let mut q = at;
        while q < rest.len() && is_ws(rest[q]) {
            q += 1;
        }
        if (q > at || at == scan) && has_http(&rest[q..]) {
            let v = &rest[q + 5..];
            let version = match v {
                [a, b'.', b, ..] if a.is_ascii_digit() && b.is_ascii_digit() => {
                    Some(parse_version(v))
                }
                _ => None,
            };
            return Some(RequestLine {
                method,
                uri: rest[..at].to_vec(),
                version,
            });
        }
        at += 1;
    }
    // HTTP/0.9: no version anywhere on the line.
    let uri = if scan == rest.len() {
        rest
    } else {
        &rest[..rest.len().saturating_sub(1)]
    };
    let uri_trimmed = {
        let n = uri.iter().rev().take_while(|&&c| is_ws(c)).count();
        &uri[..uri.len() - n]
    };
    if method.len() < 3 || uri_trimmed.is_empty() {
        return None;
    }
    Some(RequestLine {
        method,
        uri: uri_trimmed.to_vec(),
        version: None,
    })
}

#[derive(Debug, PartialEq, Eq)]
struct StatusLine {
    version: (u8, u8),
    code: u16,
    reason: Option<Vec<u8>>,
}

fn parse_status_line(line: &[u8]) -> Option<StatusLine> {
    if line.len() < 5 || !line[..5].eq_ignore_ascii_case(b"HTTP/") {
        return None;
    }
    let version = parse_version(&line[5..]);
    let mut p = 5;
    while p < line.len() && !is_ws(line[p]) {
        p += 1;
    }
    while p < line.len() && is_ws(line[p]) {
        p += 1;
    }
    if line.len() - p < 3 {
        return None;
    }
    let c = &line[p..p + 3];
    let code = if c.iter().all(u8::is_ascii_digit) {
        c.iter().fold(0u16, |a, d| a * 10 + u16::from(d - b'0'))
    } else {
        0
    };
    p += 3;
    while p < line.len() && !is_ws(line[p]) {
        p += 1;
    }
    if p >= line.len() {
        return Some(StatusLine {
            version,
            code,
            reason: None,
        });
    }
    while p < line.len() && is_ws(line[p]) {
        p += 1;
    }
    Some(StatusLine {
        version,
        code,
        reason: Some(line[p..].to_vec()),
    })
}

/// Parses a Content-Length value as Zeek does: the first token, decimal, fitting in i64.
fn parse_content_length(v: &[u8]) -> Result<u64, ()> {
    let mut b = v;
    loop {
        b = trim_start(b);
        if b.first() == Some(&b'(') {
            match b.iter().position(|&c| c == b')') {
                Some(i) => b = &b[i + 1..],
                None => return Err(()),
            }
        } else {
            break;
        }
    }
    let digits = b.iter().take_while(|c| c.is_ascii_digit()).count();
    if digits == 0 {
        return Err(());
    }
    let mut n: u64 = 0;
    for &d in &b[..digits] {
        n = n
            .checked_mul(10)
            .and_then(|n| n.checked_add(u64::from(d - b'0')))
            .ok_or(())?;
    }
    if n > i64::MAX as u64 { Err(()) } else { Ok(n) }
}

/// Chunk size: leading hex digits (i64); anything unusable counts as the last chunk.
fn parse_chunk_size(line: &[u8]) -> (u64, bool) {
    let digits = line.iter().take_while(|c| c.is_ascii_hexdigit()).count();
    if digits == 0 {
        return (0, false);
    }
    let mut n: u64 = 0;
    for &d in &line[..digits] {
        let v = (d as char).to_digit(16).unwrap_or(0);
        match n.checked_mul(16).and_then(|n| n.checked_add(u64::from(v))) {
            Some(x) if x <= i64::MAX as u64 => n = x,
            _ => return (0, false),
        }
    }
    (n, true)
}

/// `bytes first-last/len` → last-first+1.
fn content_range_len(v: &[u8]) -> Option<u64> {
    let s = std::str::from_utf8(v).ok()?.trim();
    let s = s.strip_prefix("bytes")?.trim_start();
    let (range, _) = s.split_once('/')?;
    let (a, b) = range.split_once('-')?;
    let (a, b): (u64, u64) = (a.trim().parse().ok()?, b.trim().parse().ok()?);
    b.checked_sub(a)?.checked_add(1)
}

fn first_token_lower(v: &[u8]) -> Vec<u8> {
    let v = trim_start(v);
    let end = v
        .iter()
        .position(|&c| c == b',' || c == b';' || is_ws(c))
        .unwrap_or(v.len());
    v[..end].to_ascii_lowercase()
}

#[derive(Debug, Default)]
struct Headers {
    host: Option<Vec<u8>>,
    user_agent: Option<Vec<u8>>,
    referrer: Option<Vec<u8>>,
    origin: Option<Vec<u8>>,
    content_type: Option<Vec<u8>>,
    content_length: Option<u64>,
    bad_content_length: bool,
    transfer_encoding: Option<Vec<u8>>,
    content_encoding: Option<Vec<u8>>,
    content_range: Option<Vec<u8>>,
    connection: Option<Vec<u8>>,
    upgrade: Option<Vec<u8>>,
    http2_settings: Option<Vec<u8>>,
    count: usize,
    bytes: usize,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Request,
    Response,
}

#[derive(Debug)]
struct Msg {
    kind: Kind,
    start: Ts,
    last: Ts,
    version: (u8, u8),
    http09: bool,
    /// Request: method; response: the method of the request it answers.
    method: Vec<u8>,
    /// Request: the target (kept for an upgrade to HTTP/2, where it becomes stream 1's).
    uri: Vec<u8>,
    code: u16,
    h: Headers,
    /// The header line being assembled (continuations are appended).
    pending: Option<Vec<u8>>,
    body_len: u64,
    inflater: Option<Inflater>,
    /// Multipart boundary, for bodies framed by it.
    boundary: Option<Vec<u8>>,
}

impl Msg {
    fn new(kind: Kind, start: Ts) -> Self {
        Msg {
            kind,
            start,
            last: start,
            version: (1, 1),
            http09: false,
            method: Vec::new(),
            uri: Vec::new(),
            code: 0,
            h: Headers::default(),
            pending: None,
            body_len: 0,
            inflater: None,
            boundary: None,
        }
    }

    fn body(&mut self, data: &[u8]) {
        match &mut self.inflater {
            Some(inf) => inf.feed(data),
            None => self.body_len += data.len() as u64,
        }
    }

    /// Bytes were lost: from here on the body is counted as it is on the wire.
    fn body_gap(&mut self, len: u64) {
        if let Some(inf) = self.inflater.take() {
            self.body_len += inf.decoded;
        }
        self.body_len += len;
    }

    /// The body's length once it has ended.
    fn body_done(&mut self, complete: bool, out: &mut Emitter) -> u64 {
        if let Some(inf) = self.inflater.take() {
            let (n, weird) = inf.finish(complete);
            if let Some(w) = weird {
                out.weird(w);
            }
            self.body_len += n;
        }
        self.body_len
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Body {
    Length(u64),
    ChunkSize,
    ChunkData(u64),
    ChunkDataEnd,
    Trailers,
    UntilEof,
    /// Line by line, each line counting its length + 2, up to an optional total.
    Lines(Option<u64>),
}

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

/// Whether a comma-separated header value lists `token`.
fn has_token(v: &[u8], token: &[u8]) -> bool {
    v.split(|&c| c == b',')
        .any(|t| t.trim_ascii().eq_ignore_ascii_case(token))
}

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
        let di = dir.idx();
        match self.sides[di].state {
            State::FirstLine | State::Resync => self.first_line(dir, ts, line, out),
            State::Headers => self.header_line(dir, ts, line, out),
            State::Body(Body::ChunkSize) => {
                let (n, ok) = parse_chunk_size(line);
                if !ok && line.first().is_none_or(|&c| c != b'-') {
                    out.weird("HTTP_bad_chunk_size");
                }
                self.sides[di].state = State::Body(if n == 0 {
                    Body::Trailers
                } else {
                    Body::ChunkData(n)
                });
            }
            State::Body(Body::ChunkDataEnd) => {
                if !line.is_empty() {
                    out.weird("HTTP_inaccurate_chunk_size");
                }
                self.sides[di].state = State::Body(Body::ChunkSize);
            }
            State::Body(Body::Trailers) => {
                if line.is_empty() {
                    self.message_done(dir, ts, true, out);
                } else {
                    self.header_line(dir, ts, line, out);
                }
            }
            State::Body(Body::Lines(limit)) => {
                let Some(m) = self.sides[di].msg.as_mut() else {
                    return;
                };
                m.body_len += line.len() as u64 + 2;
                let boundary_end = m.boundary.as_ref().is_some_and(|b| {
                    line.len() == b.len() + 4
                        && line.starts_with(b"--")
                        && line.ends_with(b"--")
                        && &line[2..2 + b.len()] == b.as_slice()
                });
                if limit.is_some_and(|l| m.body_len >= l) || (limit.is_none() && boundary_end) {
                    self.message_done(dir, ts, true, out);
                }
            }
            State::Body(_) | State::Raw | State::Done => {}
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

    fn header_line(&mut self, dir: Dir, ts: Ts, line: &[u8], out: &mut Emitter) {
        let di = dir.idx();
        let in_trailers = self.sides[di].state == State::Body(Body::Trailers);
        let Some(m) = self.sides[di].msg.as_mut() else {
            return;
        };
        m.last = ts;
        if line.is_empty() {
            if let Some(p) = m.pending.take() {
                apply_header(m, &p, out);
            }
            if !in_trailers {
                self.headers_done(dir, ts, out);
            }
            return;
        }
        m.h.count += 1;
        m.h.bytes += line.len();
        if m.h.count > MAX_HEADERS || m.h.bytes > MAX_HEADER_BYTES {
            self.give_up(out, "http_headers_too_large");
            return;
        }
        if is_ws(line[0]) {
            match &mut m.pending {
                Some(p) => {
                    out.weird("HTTP_obsolete_line_folding");
                    p.extend_from_slice(line);
                }
                None => m.pending = Some(trim_start(line).to_vec()),
            }
            return;
        }
        if let Some(p) = m.pending.take() {
            apply_header(m, &p, out);
        }
        m.pending = Some(line.to_vec());
    }

    fn headers_done(&mut self, dir: Dir, ts: Ts, out: &mut Emitter) {
        let di = dir.idx();
        let Some(m) = self.sides[di].msg.as_mut() else {
            return;
        };
        let close =
            m.h.connection
                .as_deref()
                .is_some_and(|c| first_token_lower(c) == b"close");
        if m.kind == Kind::Response && close {
            self.connection_close = true;
        }
        if m.kind == Kind::Request
            && m.h.connection.as_deref().is_some_and(|c| {
                c.to_ascii_lowercase()
                    .windows(10)
                    .any(|w| w == b"keep-alive")
            })
        {
            self.keep_alive = true;
        }
        // Decoding for body length.
        if let Some(ce) = &m.h.content_encoding {
            let t = first_token_lower(ce);
            let coding = match t.as_slice() {
                b"gzip" | b"x-gzip" => Some(Coding::Gzip),
                b"deflate" => Some(Coding::Deflate),
                _ => None,
            };
            m.inflater = coding.map(Inflater::new);
        }
        let code = m.code;
        let is_head = {
            let meth = &m.method;
            !meth.is_empty() && meth.len() <= 4 && b"HEAD"[..meth.len()].eq_ignore_ascii_case(meth)
        };
        if m.kind == Kind::Response {
            // Interim responses do not end the exchange; 101 and CONNECT 2xx end HTTP.
            if (100..200).contains(&code) && code != 101 {
                self.sides[di].msg = None;
                self.sides[di].state = State::FirstLine;
                return;
            }
            let connect = m.method.eq_ignore_ascii_case(b"CONNECT") && (200..300).contains(&code);
            if code == 101 || connect {
                let h2c =
                    code == 101 && m.h.upgrade.as_deref().is_some_and(|u| has_token(u, b"h2c"));
                let skip_lf = self.sides[di].skip_lf;
                if let Some(mut up) = h2c
                    .then(|| self.pending.front_mut().and_then(|p| p.h2c.take()))
                    .flatten()
                {
                    up.server_skip_lf = skip_lf;
                    self.handover = Some(Handover {
                        to: "h2c",
                        upgrade: *up,
                        rest: None,
                    });
                }
                self.message_done(dir, ts, true, out);
                self.finished();
                return;
            }
            if is_head || code == 204 || code == 304 {
                self.message_done(dir, ts, true, out);
                return;
            }
        }
        let ctype =
            m.h.content_type
                .as_deref()
                .map(first_token_lower)
                .unwrap_or_default();
        let multipart = ctype.starts_with(b"multipart/");
        let boundary = multipart
            .then(|| m.h.content_type.as_deref().and_then(boundary_param))
            .flatten();
        let te_chunked =
            m.h.transfer_encoding
                .as_deref()
                .is_some_and(|t| first_token_lower(t) == b"chunked");
        let mut cl = m.h.content_length;
        if m.kind == Kind::Response
            && code == 206
            && let Some(r) = m.h.content_range.as_deref().and_then(content_range_len)
        {
            if cl.is_some_and(|c| c != r) {
                out.weird("HTTP_range_not_matching_len");
            }
            cl = Some(cl.map_or(r, |c| c.max(r)));
        }
        if te_chunked && m.h.content_length.is_some() {
            out.weird("HTTP_content_length_and_chunked");
        }
        let body = if (multipart && boundary.is_some()) || ctype.starts_with(b"message/") {
            m.boundary = boundary;
            Some(Body::Lines(cl))
        } else if te_chunked && m.version == (1, 1) {
            Some(Body::ChunkSize)
        } else if let Some(n) = cl {
            Some(Body::Length(n))
        } else if m.h.bad_content_length {
            Some(Body::Length(0))
        } else if self.connection_close || m.inflater.is_some() {
            Some(Body::UntilEof)
        } else if m.kind == Kind::Request {
            None
        } else {
            Some(Body::Lines(None))
        };
        match body {
            None | Some(Body::Length(0)) => self.message_done(dir, ts, true, out),
            Some(b) => self.sides[di].state = State::Body(b),
        }
    }

    fn message_done(&mut self, dir: Dir, ts: Ts, complete: bool, out: &mut Emitter) {
        let di = dir.idx();
        let side = &mut self.sides[di];
        if matches!(side.state, State::Done) && side.msg.is_none() {
            return;
        }
        let Some(mut m) = side.msg.take() else {
            side.state = State::FirstLine;
            return;
        };
        if let Some(p) = m.pending.take() {
            apply_header(&mut m, &p, out);
        }
        if side.state != State::Done {
            side.state = State::FirstLine;
        }
        let body_len = m.body_done(complete, out);
        let mut f = Fields::default();
        let end = ts.max(m.last);
        match m.kind {
            Kind::Request => {
                if let Some(v) = m.h.host {
                    f.set("host", Value::Text(v));
                }
                if let Some(v) = m.h.user_agent {
                    f.set("user_agent", Value::Text(v));
                }
                if let Some(v) = m.h.referrer {
                    f.set("referrer", Value::Text(v));
                }
                if let Some(v) = m.h.origin {
                    f.set("origin", Value::Text(v));
                }
                if let Some(v) = m.h.content_type {
                    f.set("request_content_type", Value::Text(v));
                }
                f.set("request_body_len", Value::U64(body_len));
                if m.h.upgrade.as_deref().is_some_and(|u| has_token(u, b"h2c"))
                    && let Some(p) = self.pending.back_mut()
                {
                    let mut all = Fields::default();
                    all.set("method", Value::Text(m.method.clone()));
                    all.set("uri", Value::Text(std::mem::take(&mut m.uri)));
                    all.set("request_version", version_text(m.version));
                    all.merge(f.clone());
                    p.h2c = Some(Box::new(Upgrade {
                        start: m.start,
                        end,
                        fields: all,
                        params: m.h.http2_settings.take(),
                        server_skip_lf: false,
                    }));
                }
                out.emit(Event::RequestEnd {
                    ts: end,
                    key: KEY,
                    fields: f,
                    complete,
                });
            }
            Kind::Response => {
                if let Some(v) = m.h.content_type {
                    f.set("response_content_type", Value::Text(v));
                }
                f.set("response_body_len", Value::U64(body_len));
                out.emit(Event::ResponseEnd {
                    ts: end,
                    key: KEY,
                    fields: f,
                    complete,
                });
            }
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

fn boundary_param(ct: &[u8]) -> Option<Vec<u8>> {
    let lower = ct.to_ascii_lowercase();
    let i = lower.windows(9).position(|w| w == b"boundary=")?;
    let v = &ct[i + 9..];
    let v = if v.first() == Some(&b'"') {
        let end = v[1..]
            .iter()
            .position(|&c| c == b'"')
            .map_or(v.len(), |e| e + 1);
        &v[1..end]
    } else {
        let end = v
            .iter()
            .position(|&c| c == b';' || is_ws(c))
            .unwrap_or(v.len());
        &v[..end]
    };
    (!v.is_empty()).then(|| v.to_vec())
}

/// Applies one complete header line (continuations joined) to the message.
fn apply_header(m: &mut Msg, line: &[u8], out: &mut Emitter) {
    // Name: optional leading (comment), token bytes up to ':', optional whitespace before it.
    let mut p = 0;
    while p < line.len() && is_ws(line[p]) {
        p += 1;
    }
    let name_start = p;
    while p < line.len() && (33..=126).contains(&line[p]) && line[p] != b':' {
        p += 1;
    }
    let name = &line[name_start..p];
    while p < line.len() && is_ws(line[p]) {
        p += 1;
    }
    if name.is_empty() || p >= line.len() || line[p] != b':' {
        out.weird("HTTP_bad_header");
        return;
    }
    let value = trim_start_ws(&line[p + 1..]);
    let is_req = m.kind == Kind::Request;
    let lower = name.to_ascii_lowercase();
    match lower.as_slice() {
        b"host" if is_req => m.h.host = Some(value.to_vec()),
        b"user-agent" if is_req => m.h.user_agent = Some(value.to_vec()),
        b"referer" if is_req => m.h.referrer = Some(value.to_vec()),
        b"origin" if is_req => m.h.origin = Some(value.to_vec()),
        b"content-type" => m.h.content_type = Some(value.to_vec()),
        b"content-length" => {
            if value.is_empty() {
                return;
            }
            match parse_content_length(value) {
                Ok(n) => m.h.content_length = Some(n),
                Err(()) => {
                    out.weird("HTTP_bad_content_length");
                    if m.h.content_length.is_none() {
                        m.h.bad_content_length = true;
                    }
                }
            }
        }
        b"transfer-encoding" => {
            if value.contains(&b',') && first_token_lower(value) == b"chunked" {
                out.weird("HTTP_chunked_multi");
            }
            m.h.transfer_encoding = Some(value.to_vec());
        }
        b"content-encoding" => m.h.content_encoding = Some(value.to_vec()),
        b"content-range" => m.h.content_range = Some(value.to_vec()),
        b"connection" => m.h.connection = Some(value.to_vec()),
        b"upgrade" => m.h.upgrade = Some(value.to_vec()),
        b"http2-settings" if is_req => m.h.http2_settings = Some(value.to_vec()),
        _ => {}
    }
}

fn trim_start_ws(b: &[u8]) -> &[u8] {
    let n = b.iter().take_while(|c| c.is_ascii_whitespace()).count();
    &b[n..]
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

#[cfg(test)]
mod tests;
