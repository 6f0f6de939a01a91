//! Messages and their bodies: what a request or response carries while it is parsed, how its
//! end is found once its headers are in (no body, multipart or message lines, chunked,
//! Content-Length, until the connection closes), and the end event with the fields known
//! then. The body is counted, never kept: lengths are decoded lengths ([`Inflater`]).

use super::headers::{Headers, apply_header};
use super::inflate::{Coding, Inflater};
use super::wire::{
    boundary_param, content_range_len, first_token_lower, has_token, parse_chunk_size,
};
use super::{Http, KEY, State, version_text};
use crate::l7::{Emitter, Event, Handover, Upgrade};
use crate::model::{Dir, Fields, Ts, Value};

/// Which side sent a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Kind {
    Request,
    Response,
}

/// A request or response being parsed.
#[derive(Debug)]
pub(super) struct Msg {
    pub(super) kind: Kind,
    pub(super) start: Ts,
    pub(super) last: Ts,
    pub(super) version: (u8, u8),
    pub(super) http09: bool,
    /// Request: method; response: the method of the request it answers.
    pub(super) method: Vec<u8>,
    /// Request: the target (kept for an upgrade to HTTP/2, where it becomes stream 1's).
    pub(super) uri: Vec<u8>,
    pub(super) code: u16,
    pub(super) h: Headers,
    /// The header line being assembled (continuations are appended).
    pub(super) pending: Option<Vec<u8>>,
    pub(super) body_len: u64,
    pub(super) inflater: Option<Inflater>,
    /// Multipart boundary, for bodies framed by it.
    pub(super) boundary: Option<Vec<u8>>,
}

impl Msg {
    pub(super) fn new(kind: Kind, start: Ts) -> Self {
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

    pub(super) fn body(&mut self, data: &[u8]) {
        match &mut self.inflater {
            Some(inf) => inf.feed(data),
            None => self.body_len += data.len() as u64,
        }
    }

    /// Bytes were lost: from here on the body is counted as it is on the wire.
    pub(super) fn body_gap(&mut self, len: u64) {
        if let Some(inf) = self.inflater.take() {
            self.body_len += inf.decoded;
        }
        self.body_len += len;
    }

    /// The body's length once it has ended.
    pub(super) fn body_done(&mut self, complete: bool, out: &mut Emitter) -> u64 {
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

/// How the body in progress is delimited, and where in it the parser is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Body {
    Length(u64),
    ChunkSize,
    ChunkData(u64),
    ChunkDataEnd,
    Trailers,
    UntilEof,
    /// Line by line, each line counting its length + 2, up to an optional total.
    Lines(Option<u64>),
}

impl Http {
    /// The headers of `dir`'s message are in: decides how its body is delimited (or ends
    /// the message, or HTTP on the connection).
    pub(super) fn headers_done(&mut self, dir: Dir, ts: Ts, out: &mut Emitter) {
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

    /// Ends `dir`'s message (`complete`: not cut short) and emits its end with the fields
    /// known by now; a request that asked for h2c leaves what HTTP/2 needs of it.
    pub(super) fn message_done(&mut self, dir: Dir, ts: Ts, complete: bool, out: &mut Emitter) {
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
                    f.set("referrer", Value::Text(crate::l7::shown_url(v)));
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
                    all.set(
                        "uri",
                        Value::Text(crate::l7::shown_url(std::mem::take(&mut m.uri))),
                    );
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

    /// A line of `dir`'s body where it is read by lines: a chunk size, the end of a chunk's
    /// data, a trailer, a line of a multipart or message body.
    pub(super) fn body_line(
        &mut self,
        dir: Dir,
        ts: Ts,
        body: Body,
        line: &[u8],
        out: &mut Emitter,
    ) {
        let di = dir.idx();
        match body {
            Body::ChunkSize => {
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
            Body::ChunkDataEnd => {
                if !line.is_empty() {
                    out.weird("HTTP_inaccurate_chunk_size");
                }
                self.sides[di].state = State::Body(Body::ChunkSize);
            }
            Body::Trailers => {
                if line.is_empty() {
                    self.message_done(dir, ts, true, out);
                } else {
                    self.header_line(dir, ts, line, out);
                }
            }
            Body::Lines(limit) => {
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
            Body::Length(_) | Body::ChunkData(_) | Body::UntilEof => {}
        }
    }
}
