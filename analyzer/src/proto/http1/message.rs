//! Messages and their bodies, as Zeek's `HTTP_Message` and `HTTP_Entity` (over its MIME
//! entities) delimit them: a message is a top-level entity whose headers decide its body —
//! none; MIME (`multipart/*` with a boundary, `message/*`): lines handed to its parts, up to
//! a Content-Length or the closing boundary; chunked; Content-Length; until the connection
//! closes; line by line — and whose parts do the same one level down, switching the line
//! splitter to CRLF-only inside their bodies. The body is counted, never kept: the length a
//! message reports is its top-level entity's (decoded by [`Inflater`]).

use super::inflate::{Coding, Inflater};
use super::wire::{Delimiter, delimiter, has_token, parse_chunk_size};
use super::{Http, KEY, RepState, ReqState, version_text};
use crate::l7::{Emitter, Event, Handover, Upgrade};
use crate::model::{Dir, Fields, Text, Ts, Value};

/// MIME nesting below which no further part is begun (Zeek's `MIME::max_depth`).
pub(super) const MIME_MAX_DEPTH: usize = 100;
/// The largest entity list (MIME nesting) a connection keeps for its next message.
const SPARE_ENTS: usize = 4;
/// Zeek's "until the connection closes": `INT_MAX` bytes handed on unsplit.
const UNTIL_CLOSE: u64 = i32::MAX as u64;

/// Which side sent a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Kind {
    Request,
    Response,
}

/// Whether a message may have a body (Zeek's `expect_body`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Expect {
    /// A reply to HEAD, 1xx, 204, 304.
    NotExpected,
    /// Other replies, and MIME parts: without framing, the body runs line by line.
    Expected,
    /// Requests: without framing, no body.
    Maybe,
}

/// Chunked transfer (Zeek's `chunked_transfer_state`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Chunk {
    Size,
    /// Bytes of the chunk still to come.
    Data(i64),
    DataCrlf,
    Trailer,
}

/// How an entity's body is delivered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Body {
    /// Still in the headers.
    Headers,
    /// Lines for MIME parts; at the top level, `expect` counts a Content-Length down (each
    /// line with its CRLF).
    Mime {
        expect: Option<i64>,
    },
    Chunked(Chunk),
    /// Plain bytes still to come.
    Length(i64),
    /// Plain until the connection closes.
    Eof,
    /// Line by line, each counting its length + 2.
    Lines,
}

/// One MIME entity: the message itself (level 0) or a part.
#[derive(Debug)]
pub(super) struct Ent {
    pub(super) in_header: bool,
    pub(super) ended: bool,
    /// The header line being assembled (continuations are appended).
    pub(super) pending: Option<Vec<u8>>,
    pub(super) multipart: bool,
    pub(super) message: bool,
    pub(super) boundary: Option<Vec<u8>>,
    /// Zeek's `content_length` (an invalid value is 0).
    pub(super) content_length: Option<i64>,
    /// A 206's Content-Range length.
    pub(super) range: Option<i64>,
    pub(super) chunked: bool,
    pub(super) coding: Option<Coding>,
    pub(super) body: Body,
    /// Body bytes so far (the message's own are inflated by [`Msg::inflater`] if encoded).
    pub(super) body_len: u64,
}

impl Ent {
    fn new() -> Self {
        Ent {
            in_header: true,
            ended: false,
            pending: None,
            multipart: false,
            message: false,
            boundary: None,
            content_length: None,
            range: None,
            chunked: false,
            coding: None,
            body: Body::Headers,
            body_len: 0,
        }
    }
}

/// A request or response being parsed.
#[derive(Debug)]
pub(super) struct Msg {
    pub(super) kind: Kind,
    pub(super) start: Ts,
    pub(super) last: Ts,
    pub(super) version: (u8, u8),
    pub(super) http09: bool,
    /// Request: method.
    pub(super) method: Text,
    /// Request: the target (kept for an upgrade to HTTP/2, where it becomes stream 1's).
    pub(super) uri: Text,
    pub(super) code: u16,
    pub(super) expect: Expect,
    /// The message (`[0]`) and its open MIME parts, outermost first.
    pub(super) ents: Vec<Ent>,
    pub(super) inflater: Option<Inflater>,
    /// The message's Content-Type, as sent.
    pub(super) content_type: Option<Text>,
    /// Request header fields for the log (host, user agent ...), for an upgrade to HTTP/2.
    pub(super) fields: Fields,
    /// Request: `Upgrade` and `HTTP2-Settings`.
    pub(super) upgrade: Option<Vec<u8>>,
    pub(super) http2_settings: Option<Vec<u8>>,
    pub(super) header_count: usize,
    pub(super) header_bytes: usize,
    /// Its end is being reported.
    done: bool,
}

impl Msg {
    /// A message whose entity list is `ents` (emptied here: the list of an earlier message,
    /// to reuse its room).
    fn new(kind: Kind, start: Ts, expect: Expect, mut ents: Vec<Ent>) -> Self {
        ents.clear();
        ents.push(Ent::new());
        Msg {
            kind,
            start,
            last: start,
            version: (1, 1),
            http09: false,
            method: Text::new(),
            uri: Text::new(),
            code: 0,
            expect,
            ents,
            inflater: None,
            content_type: None,
            fields: Fields::default(),
            upgrade: None,
            http2_settings: None,
            header_count: 0,
            header_bytes: 0,
            done: false,
        }
    }

    /// The body runs to the end of the connection (so the end does not cut it short).
    pub(super) fn ends_at_eof(&self) -> bool {
        matches!(self.ents[0].body, Body::Eof | Body::Lines)
    }

    /// The message's body length so far (decoded as far as decoded).
    fn so_far(&self) -> u64 {
        self.ents[0].body_len + self.inflater.as_ref().map_or(0, |i| i.decoded)
    }

    /// Bytes were lost: from here on the body is counted as it is on the wire.
    fn body_gap(&mut self, len: u64) {
        if let Some(inf) = self.inflater.take() {
            self.ents[0].body_len += inf.decoded;
        }
        self.ents[0].body_len += len;
    }

    /// The body's length once it has ended.
    fn body_done(&mut self, complete: bool, out: &mut Emitter) -> u64 {
        if let Some(inf) = self.inflater.take() {
            let (n, weird) = inf.finish(complete);
            if let Some(w) = weird {
                out.weird(w);
            }
            self.ents[0].body_len += n;
        }
        self.ents[0].body_len
    }
}

impl Http {
    /// A new message, in the entity list a finished one left.
    pub(super) fn new_msg(&mut self, kind: Kind, start: Ts, expect: Expect) -> Msg {
        Msg::new(kind, start, expect, std::mem::take(&mut self.spare_ents))
    }

    /// A finished message's lists, kept for the next messages.
    fn recycle_msg(&mut self, m: Msg, out: &mut Emitter) {
        out.recycle(m.fields);
        if m.ents.capacity() <= SPARE_ENTS {
            self.spare_ents = m.ents;
        }
    }

    fn msg(&mut self, dir: Dir) -> Option<&mut Msg> {
        self.sides[dir.idx()].msg.as_mut()
    }

    fn has_child(&mut self, dir: Dir, level: usize) -> bool {
        self.msg(dir).is_some_and(|m| m.ents.len() > level + 1)
    }

    /// Bytes for `dir`'s message: a line (`crlf`, its whole length `len`, its kept bytes
    /// `data`) or plain bytes (Zeek's `HTTP_Entity::Deliver` of the top-level entity).
    pub(super) fn deliver(
        &mut self,
        dir: Dir,
        ts: Ts,
        data: &[u8],
        len: u64,
        crlf: bool,
        out: &mut Emitter,
    ) {
        self.ent_deliver(dir, 0, ts, data, len, crlf, out);
    }

    #[allow(
        clippy::too_many_arguments,
        reason = "one delivery, as Zeek passes it down"
    )]
    fn ent_deliver(
        &mut self,
        dir: Dir,
        level: usize,
        ts: Ts,
        data: &[u8],
        len: u64,
        crlf: bool,
        out: &mut Emitter,
    ) {
        let Some(m) = self.msg(dir) else {
            return;
        };
        m.last = ts;
        let Some(e) = m.ents.get(level) else {
            return;
        };
        if e.ended {
            return;
        }
        if e.in_header {
            self.header_line(dir, level, ts, data, len, out);
            return;
        }
        let add = len + if crlf { 2 } else { 0 };
        match e.body {
            Body::Headers => {}
            Body::Mime { expect } => {
                self.count_body(dir, level, data, add);
                let walk = level > 0 || self.msg(dir).is_some_and(|m| m.inflater.is_none());
                if walk {
                    self.new_data_line(dir, level, ts, data, len, crlf, out);
                }
                if let (0, Some(x)) = (level, expect) {
                    let left = x - add as i64;
                    match self.msg(dir) {
                        Some(m) if !m.ents[0].ended => {
                            m.ents[0].body = Body::Mime { expect: Some(left) }
                        }
                        _ => return,
                    }
                    if left <= 0 {
                        self.sides[dir.idx()].plain = 0;
                        self.end_entity(dir, 0, ts, out);
                    }
                }
            }
            Body::Chunked(c) => self.chunk(dir, c, data, len, crlf, out),
            Body::Length(rem) => {
                self.count_body(dir, level, data, len);
                let left = rem - len as i64;
                if left <= 0 {
                    let side = &mut self.sides[dir.idx()];
                    side.plain = 0;
                    side.delivery = -1;
                    self.end_entity(dir, level, ts, out);
                } else if let Some(m) = self.msg(dir) {
                    m.ents[level].body = Body::Length(left);
                }
            }
            Body::Eof | Body::Lines => self.count_body(dir, level, data, add),
        }
    }

    /// Chunked transfer, a line (size, end of data, trailer) or chunk data at a time.
    fn chunk(&mut self, dir: Dir, c: Chunk, data: &[u8], len: u64, crlf: bool, out: &mut Emitter) {
        let di = dir.idx();
        let next = match c {
            Chunk::Size => {
                let n = parse_chunk_size(data).unwrap_or_else(|| {
                    out.weird("HTTP_bad_chunk_size");
                    0
                });
                if n > 0 {
                    self.sides[di].plain = n as u64;
                    Chunk::Data(n)
                } else {
                    // The last chunk: trailers, read like headers.
                    if let Some(m) = self.msg(dir) {
                        m.ents[0].in_header = true;
                    }
                    Chunk::Trailer
                }
            }
            Chunk::Data(rem) => {
                let left = rem - len as i64;
                let next = if left <= 0 {
                    self.sides[di].plain = 0;
                    Chunk::DataCrlf
                } else {
                    Chunk::Data(left)
                };
                self.count_body(dir, 0, data, len + if crlf { 2 } else { 0 });
                next
            }
            Chunk::DataCrlf => {
                if len > 0 {
                    out.weird("HTTP_inaccurate_chunk_size");
                }
                Chunk::Size
            }
            Chunk::Trailer => Chunk::Trailer,
        };
        if let Some(m) = self.msg(dir) {
            m.ents[0].body = Body::Chunked(next);
        }
    }

    /// Counts body bytes of the entity at `level` (the message's through its decoder).
    fn count_body(&mut self, dir: Dir, level: usize, data: &[u8], add: u64) {
        let Some(m) = self.msg(dir) else {
            return;
        };
        if level == 0
            && let Some(inf) = m.inflater.as_mut()
        {
            // A decoder gets the bytes without the line ends (Zeek's `DeliverBody`).
            inf.feed(data);
            return;
        }
        m.ents[level].body_len += add;
    }

    /// A body line of a multipart or message entity (Zeek's `MIME_Entity::NewDataLine`):
    /// a boundary line ends the part in progress and begins the next, the closing boundary
    /// ends the entity; other lines go to the part in progress.
    #[allow(
        clippy::too_many_arguments,
        reason = "one delivery, as Zeek passes it down"
    )]
    fn new_data_line(
        &mut self,
        dir: Dir,
        level: usize,
        ts: Ts,
        data: &[u8],
        len: u64,
        crlf: bool,
        out: &mut Emitter,
    ) {
        let Some(m) = self.msg(dir) else {
            return;
        };
        let e = &m.ents[level];
        let (multipart, message) = (e.multipart, e.message);
        let d = match (&e.boundary, multipart) {
            (Some(b), true) => delimiter(data, b),
            _ => Delimiter::No,
        };
        match d {
            Delimiter::Boundary => {
                if self.has_child(dir, level) {
                    self.end_child(dir, level, ts, out);
                }
                if self.msg(dir).is_some_and(|m| !m.ents[level].ended) {
                    self.begin_child(dir, level, out);
                }
                return;
            }
            Delimiter::Closing => {
                if self.has_child(dir, level) {
                    self.end_child(dir, level, ts, out);
                }
                self.end_entity(dir, level, ts, out);
                return;
            }
            Delimiter::No => {}
        }
        if (multipart || message) && self.has_child(dir, level) {
            self.ent_deliver(dir, level + 1, ts, data, len, crlf, out);
        }
    }

    pub(super) fn begin_child(&mut self, dir: Dir, level: usize, out: &mut Emitter) {
        if level >= MIME_MAX_DEPTH {
            out.weird("exceeded_mime_max_depth");
            return;
        }
        if let Some(m) = self.msg(dir) {
            m.ents.truncate(level + 1);
            m.ents.push(Ent::new());
        }
    }

    fn end_child(&mut self, dir: Dir, level: usize, ts: Ts, out: &mut Emitter) {
        self.end_entity(dir, level + 1, ts, out);
        if let Some(m) = self.msg(dir) {
            m.ents.truncate(level + 1);
        }
    }

    /// The entity at `level` ends (Zeek's `MIME_Entity::EndOfData`): headers not ended yet
    /// are submitted, its part in progress ends; a part gives the line splitter back to
    /// CR/LF; the message's own end ends the message.
    pub(super) fn end_entity(&mut self, dir: Dir, level: usize, ts: Ts, out: &mut Emitter) {
        let Some(m) = self.msg(dir) else {
            return;
        };
        let Some(e) = m.ents.get_mut(level) else {
            return;
        };
        if e.ended {
            return;
        }
        e.ended = true;
        if e.in_header {
            self.finish_header(dir, level, out);
            if let Some(m) = self.msg(dir) {
                m.ents[level].in_header = false;
            }
            self.submit_all_headers(dir, level, ts, out);
        } else if self.has_child(dir, level) {
            self.end_child(dir, level, ts, out);
        }
        if level == 0 {
            self.message_done(dir, ts, false, true, out);
        } else if self
            .msg(dir)
            .is_some_and(|m| m.ents.get(level - 1).is_some_and(|p| p.multipart))
        {
            self.sides[dir.idx()].crlf_only = false;
        }
    }

    /// The headers of the entity at `level` are in (Zeek's `HTTP_Entity::SubmitAllHeaders`):
    /// how its body is delivered.
    pub(super) fn submit_all_headers(&mut self, dir: Dir, level: usize, ts: Ts, out: &mut Emitter) {
        let di = dir.idx();
        let connection_close = self.connection_close;
        let Some(m) = self.sides[di].msg.as_mut() else {
            return;
        };
        let parent_multipart = level > 0 && m.ents[level - 1].multipart;
        let expect = m.expect;
        if level == 0
            && let Some(c) = m.ents[0].coding
            && m.inflater.is_none()
        {
            m.inflater = Some(Inflater::new(c));
        }
        let e = &mut m.ents[level];
        let cl = e.content_length;
        let trailer = e.body == Body::Chunked(Chunk::Trailer);
        let ended = e.ended;
        let mut end = false;
        let mut plain = None;
        let mut delivery = cl;
        if level == 0 && (trailer || expect == Expect::NotExpected) {
            end = true;
        } else if e.multipart || e.message {
            if e.chunked {
                out.weird("HTTP_chunked_transfer_for_multipart_message");
            }
            match cl {
                Some(n) if level == 0 && n > 0 => {
                    e.body = Body::Mime { expect: Some(n) };
                    delivery = Some(n);
                }
                Some(_) if level == 0 => end = true,
                _ => e.body = Body::Mime { expect: None },
            }
        } else if level == 0 && e.chunked {
            e.body = Body::Chunked(Chunk::Size);
        } else if let Some(n) = cl {
            if n > 0 {
                e.body = Body::Length(n);
                plain = Some(n as u64);
            } else {
                end = true;
            }
        } else if connection_close || e.coding.is_some() {
            e.body = Body::Eof;
            plain = Some(UNTIL_CLOSE);
        } else if level == 0 && expect != Expect::Expected {
            end = true;
        } else {
            e.body = Body::Lines;
        }
        let side = &mut self.sides[di];
        if parent_multipart {
            // Inside a part's body only CRLF ends a line.
            side.crlf_only = true;
        }
        if let Some(n) = delivery {
            side.delivery = n;
        }
        if let Some(n) = plain {
            side.plain = n;
        }
        if end && !ended {
            self.end_entity(dir, level, ts, out);
        }
    }

    /// Bytes lost inside `dir`'s message: counted if they fall inside a body of known length
    /// that has begun (Zeek's `HTTP_Entity::Undelivered`); `false` if not.
    pub(super) fn undelivered(&mut self, dir: Dir, ts: Ts, len: u64, out: &mut Emitter) -> bool {
        let di = dir.idx();
        let Some(m) = self.sides[di].msg.as_mut() else {
            return false;
        };
        let level = (1..m.ents.len())
            .rev()
            .find(|&l| !m.ents[l].ended)
            .unwrap_or(0);
        let so_far = if level == 0 {
            m.so_far()
        } else {
            m.ents[level].body_len
        };
        let e = &m.ents[level];
        if (e.ended && e.in_header) || so_far == 0 {
            return false;
        }
        let (body, has_length) = (e.body, e.content_length.is_some());
        let len_i = i64::try_from(len).unwrap_or(i64::MAX);
        let expect = match body {
            Body::Chunked(Chunk::Data(rem)) if rem >= len_i => {
                m.body_gap(len);
                let left = rem - len_i;
                m.ents[0].body = Body::Chunked(if left == 0 {
                    Chunk::DataCrlf
                } else {
                    Chunk::Data(left)
                });
                self.sides[di].plain = left as u64;
                return true;
            }
            Body::Chunked(_) => return false,
            _ if !has_length => return false,
            Body::Length(rem) => rem,
            Body::Mime { expect: Some(x) } => x,
            _ => 0,
        };
        if expect < len_i {
            return false;
        }
        if level == 0 {
            m.body_gap(len);
        } else {
            m.ents[level].body_len += len;
        }
        let left = expect - len_i;
        let e = &mut m.ents[level];
        e.body = match e.body {
            Body::Mime { .. } => Body::Mime { expect: Some(left) },
            _ => Body::Length(left),
        };
        self.sides[di].plain = left as u64;
        if left <= 0 {
            self.end_entity(dir, level, ts, out);
        }
        true
    }

    /// Ends `dir`'s message and reports it (Zeek's `HTTP_Message::Done`, then
    /// `RequestMade` / `ReplyMade`): `interrupted` stops the direction's parsing (Zeek's
    /// state), `complete` is whether it arrived whole (the exchange's outcome).
    pub(super) fn message_done(
        &mut self,
        dir: Dir,
        ts: Ts,
        interrupted: bool,
        complete: bool,
        out: &mut Emitter,
    ) {
        let di = dir.idx();
        match self.sides[di].msg.as_mut() {
            Some(m) if !m.done => m.done = true,
            _ => return,
        }
        self.end_entity(dir, 0, ts, out);
        let Some(mut m) = self.sides[di].msg.take() else {
            return;
        };
        let body_len = m.body_done(complete, out);
        let end = ts.max(m.last);
        let mut f = out.fields();
        match m.kind {
            Kind::Request => {
                self.flush_start(out);
                if let Some(v) = m.content_type.take() {
                    f.set("request_content_type", Value::Text(v));
                }
                f.set("request_body_len", Value::U64(body_len));
                f.absorb(&mut self.fresh);
                if m.upgrade.as_deref().is_some_and(|u| has_token(u, b"h2c"))
                    && let Some(p) = self.pending.back_mut()
                {
                    let mut all = Fields::default();
                    all.set("method", Value::Text(m.method.clone()));
                    all.set("uri", crate::l7::shown_url_value(&m.uri));
                    all.set("request_version", version_text(m.version));
                    all.merge(m.fields.clone());
                    all.merge(f.clone());
                    p.h2c = Some(Box::new(Upgrade {
                        start: m.start,
                        end,
                        fields: all,
                        params: m.http2_settings.take(),
                        server_skip_lf: false,
                    }));
                }
                out.emit(Event::RequestEnd {
                    ts: end,
                    key: KEY,
                    fields: f,
                    complete,
                });
                self.request_ongoing = false;
                self.req_state = if interrupted {
                    ReqState::Nothing
                } else {
                    ReqState::Line
                };
            }
            Kind::Response => {
                self.reply_ongoing = false;
                let code = self.reply_code;
                let interim = (100..200).contains(&code);
                let upgrade = code == 101
                    && self.forgotten == 0
                    && self.pending.len() == 1
                    && self.upgrade_connection
                    && self
                        .upgrade_protocol
                        .as_ref()
                        .is_some_and(|p| !p.is_empty());
                if let Some(v) = m.content_type.take() {
                    f.set("response_content_type", Value::Text(v));
                }
                f.set("response_body_len", Value::U64(body_len));
                if upgrade {
                    // The switch answers the request: its record is complete.
                    self.flush_start(out);
                    let mut s = Fields::default();
                    s.set("version", version_text(m.version));
                    s.set("status_code", Value::U64(101));
                    out.emit(Event::ResponseStart {
                        ts: m.start,
                        key: KEY,
                        fields: s,
                    });
                }
                if !interim || upgrade {
                    out.emit(Event::ResponseEnd {
                        ts: end,
                        key: KEY,
                        fields: f,
                        complete,
                    });
                }
                if !interim {
                    self.reply_taken();
                }
                let h2c = self
                    .upgrade_protocol
                    .as_deref()
                    .is_some_and(|p| p.eq_ignore_ascii_case(b"h2c"));
                self.reply_code = 0;
                self.upgrade_connection = false;
                self.upgrade_protocol = None;
                self.rep_state = if interrupted || upgrade {
                    RepState::Nothing
                } else {
                    RepState::Line
                };
                if upgrade {
                    let skip_lf = self.sides[di].last == b'\r';
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
                    self.finished();
                }
            }
        }
        self.recycle_msg(m, out);
    }
}
