//! Streams: each is an exchange keyed by its id. Requests and responses start with their
//! HEADERS (or a PUSH_PROMISE), end with END_STREAM, a reset, a GOAWAY that left them
//! unprocessed, or the end of the connection; gRPC streams also count messages and take their
//! status from trailers. End events are held so that a reset can still be attached to the
//! exchange and a request's end always goes out before its response's end.

use super::hpack::HeaderList;
use super::{Http2, MAX_STREAMS, frame, grpc, key};
use crate::l7::{Emitter, Event};
use crate::model::{Dir, Fields, Ts, Value};

/// Where one direction of a stream is.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
enum HalfState {
    #[default]
    Idle,
    Open,
    Closed,
}

/// One direction of a stream: the request (client) or response (server).
#[derive(Debug, Default)]
struct Half {
    state: HalfState,
    body: u64,
    framing: grpc::Framing,
    /// Bytes of the body were lost (gap).
    cut: bool,
}

/// An end event not emitted yet.
#[derive(Debug)]
struct Held {
    ts: Ts,
    fields: Fields,
    complete: bool,
}

/// A stream being tracked: its two halves and the events it has emitted or holds.
#[derive(Debug, Default)]
pub(super) struct Stream {
    req: Half,
    resp: Half,
    grpc: bool,
    /// RequestStart emitted.
    requested: bool,
    /// RequestEnd emitted.
    request_ended: bool,
    /// ResponseStart emitted.
    responded: bool,
    req_end: Option<Held>,
    resp_end: Option<Held>,
    /// grpc-status seen (headers of a trailers-only response, or trailers).
    grpc_status: bool,
}

impl Stream {
    /// Stream 1 of a connection upgraded from HTTP/1: its request (`body` bytes) was sent
    /// whole over HTTP/1 and ended at `end`; that end is held for the response.
    pub(super) fn upgraded(body: u64, end: Ts) -> Self {
        let mut fields = Fields::default();
        fields.set("request_body_len", Value::U64(body));
        Stream {
            req: Half {
                state: HalfState::Closed,
                body,
                ..Half::default()
            },
            requested: true,
            req_end: Some(Held {
                ts: end,
                fields,
                complete: true,
            }),
            ..Stream::default()
        }
    }

    /// `n` bytes of the body `dir`'s side was sending on this stream were lost (a gap inside
    /// a DATA frame): counted, and the message marked cut.
    pub(super) fn data_lost(&mut self, dir: Dir, n: u64) {
        let half = match dir {
            Dir::ToServer => &mut self.req,
            Dir::ToClient => &mut self.resp,
        };
        if half.state == HalfState::Open {
            half.body += n;
            half.cut = true;
            half.framing.gap();
        }
    }
}

/// Who sent a frame, as `reset_by` records it.
fn by(dir: Dir) -> &'static str {
    match dir {
        Dir::ToServer => "client",
        Dir::ToClient => "server",
    }
}

impl Http2 {
    /// A new stream opened by `dir`'s side; `None` (and counted) when it cannot be tracked.
    fn open_stream(&mut self, dir: Dir, id: u32, out: &mut Emitter) -> bool {
        let di = dir.idx();
        let client = dir == Dir::ToServer;
        if id == 0 || (id % 2 == 1) != client {
            out.weird("http2_bad_stream_id");
            return false;
        }
        if id <= self.max_id[di] {
            out.weird("http2_stream_id_not_increasing");
            return false;
        }
        self.max_id[di] = id;
        if self.streams.len() >= MAX_STREAMS {
            out.weird("http2_too_many_streams");
            return false;
        }
        self.streams.insert(id, Stream::default());
        true
    }

    /// A header block `dir`'s side sent on stream `id` (`headers`: `None` when it could not
    /// be decoded): a request's or response's start, an interim response, or trailers.
    pub(super) fn on_headers(
        &mut self,
        dir: Dir,
        id: u32,
        ts: Ts,
        headers: Option<HeaderList>,
        end_stream: bool,
        out: &mut Emitter,
    ) {
        if id == 0 {
            return;
        }
        match dir {
            Dir::ToServer => {
                let known = self.streams.get(&id).map(|s| s.req.state);
                match known {
                    None => {
                        if self.open_stream(dir, id, out) {
                            self.start_request(id, ts, headers.as_ref(), false, out);
                        } else {
                            return;
                        }
                    }
                    Some(HalfState::Idle)
                        if !self.streams.get(&id).is_some_and(|s| s.responded) =>
                    {
                        self.start_request(id, ts, headers.as_ref(), false, out)
                    }
                    // A stream whose response came first (a connection caught mid-stream):
                    // its request's HEADERS preceded the capture, so this block is the
                    // request's trailers, not a request answered before it was sent.
                    Some(HalfState::Idle | HalfState::Open) => {
                        // Trailers.
                        if !end_stream {
                            out.weird("http2_trailers_without_end_stream");
                        }
                    }
                    Some(HalfState::Closed) => {
                        out.weird("http2_headers_after_end_stream");
                        return;
                    }
                }
            }
            Dir::ToClient => {
                if !self.streams.contains_key(&id) {
                    // No request seen: its HEADERS came before the capture began (or the stream
                    // was not tracked).
                    if !self.partial || id.is_multiple_of(2) || self.streams.len() >= MAX_STREAMS {
                        if !self.partial {
                            out.weird("http2_response_without_request");
                        }
                        return;
                    }
                    self.streams.insert(id, Stream::default());
                    self.max_id[Dir::ToServer.idx()] = self.max_id[Dir::ToServer.idx()].max(id);
                }
                let Some(s) = self.streams.get_mut(&id) else {
                    return;
                };
                match s.resp.state {
                    HalfState::Idle => {
                        let status = headers
                            .as_ref()
                            .and_then(|h| h.get(b":status"))
                            .and_then(grpc::parse_status);
                        if let Some(code @ 100..=199) = status {
                            let mut f = Fields::default();
                            f.set("info_code", Value::U64(code));
                            out.emit(Event::Info {
                                ts,
                                key: key(id),
                                fields: f,
                            });
                            if end_stream {
                                out.weird("http2_interim_response_ends_stream");
                            } else {
                                return;
                            }
                        } else {
                            self.start_response(id, ts, headers.as_ref(), status, out);
                        }
                    }
                    HalfState::Open => {
                        if !end_stream {
                            out.weird("http2_trailers_without_end_stream");
                        }
                        self.trailers(id, headers.as_ref());
                    }
                    HalfState::Closed => {
                        out.weird("http2_headers_after_end_stream");
                        return;
                    }
                }
            }
        }
        if end_stream {
            self.close_half(dir, id, ts, true, Fields::default(), out);
        }
    }

    /// Opens the request half of stream `id` and emits its start with the fields of `h`.
    fn start_request(
        &mut self,
        id: u32,
        ts: Ts,
        h: Option<&HeaderList>,
        pushed: bool,
        out: &mut Emitter,
    ) {
        let Some(s) = self.streams.get_mut(&id) else {
            return;
        };
        let mut f = Fields::default();
        f.set("stream_id", Value::U64(u64::from(id)));
        f.set("request_version", Value::text("2"));
        match h {
            Some(h) => {
                for (name, field) in [
                    (&b":method"[..], "method"),
                    (b":path", "uri"),
                    (b"user-agent", "user_agent"),
                    (b"referer", "referrer"),
                    (b"origin", "origin"),
                    (b"content-type", "request_content_type"),
                ] {
                    if let Some(v) = h.get(name) {
                        let v = v.to_vec();
                        let v = if matches!(field, "uri" | "referrer") {
                            crate::l7::shown_url(v)
                        } else {
                            v
                        };
                        f.set(field, Value::owned(v));
                    }
                }
                if let Some(a) = h.get(b":authority").or_else(|| h.get(b"host")) {
                    f.set("host", Value::text(a));
                }
                if h.get(b"content-type").is_some_and(grpc::is_grpc) {
                    s.grpc = true;
                    if let Some((svc, m)) = h.get(b":path").and_then(grpc::split_path) {
                        f.set("grpc_service", Value::text(svc));
                        f.set("grpc_method", Value::text(m));
                    }
                }
            }
            None => f.set("headers_unknown", Value::Bool(true)),
        }
        if pushed {
            f.set("pushed", Value::Bool(true));
        }
        s.req.state = HalfState::Open;
        s.requested = true;
        out.emit(Event::RequestStart {
            ts,
            key: key(id),
            fields: f,
        });
    }

    /// Opens the response half of stream `id` and emits its start (the request's end first).
    fn start_response(
        &mut self,
        id: u32,
        ts: Ts,
        h: Option<&HeaderList>,
        status: Option<u64>,
        out: &mut Emitter,
    ) {
        self.emit_request_end(id, out);
        let Some(s) = self.streams.get_mut(&id) else {
            return;
        };
        let mut f = Fields::default();
        f.set("version", Value::text("2"));
        match h {
            Some(h) => {
                match status {
                    Some(c) => f.set("status_code", Value::U64(c)),
                    None => out.weird("http2_bad_status"),
                }
                if let Some(ct) = h.get(b"content-type") {
                    f.set("response_content_type", Value::text(ct));
                    if grpc::is_grpc(ct) {
                        s.grpc = true;
                    }
                }
            }
            None => f.set("headers_unknown", Value::Bool(true)),
        }
        s.resp.state = HalfState::Open;
        s.responded = true;
        out.emit(Event::ResponseStart {
            ts,
            key: key(id),
            fields: f,
        });
        // A trailers-only gRPC response carries its status in these headers.
        self.trailers(id, h);
    }

    /// grpc-status and grpc-message from a response's trailers (or trailers-only headers),
    /// kept for the response's end.
    fn trailers(&mut self, id: u32, h: Option<&HeaderList>) {
        let (Some(s), Some(h)) = (self.streams.get_mut(&id), h) else {
            return;
        };
        let Some(st) = h.get(b"grpc-status") else {
            return;
        };
        s.grpc = true;
        s.grpc_status = true;
        let mut f = Fields::default();
        if let Some(code) = grpc::parse_status(st) {
            f.set("grpc_status", Value::U64(code));
        }
        if let Some(m) = h.get(b"grpc-message") {
            f.set("grpc_message", Value::owned(grpc::decode_message(m)));
        }
        match &mut s.resp_end {
            Some(held) => held.fields.merge(f),
            None => {
                s.resp_end = Some(Held {
                    ts: 0,
                    fields: f,
                    complete: false,
                })
            }
        }
    }

    /// A PUSH_PROMISE: the promised stream is a request, complete as promised.
    pub(super) fn on_push(
        &mut self,
        dir: Dir,
        promised: u32,
        ts: Ts,
        h: Option<HeaderList>,
        out: &mut Emitter,
    ) {
        if dir != Dir::ToClient || promised == 0 {
            return;
        }
        if !self.open_stream(Dir::ToClient, promised, out) {
            return;
        }
        self.start_request(promised, ts, h.as_ref(), true, out);
        // A promised request has no body: it is complete as promised.
        self.close_half(Dir::ToServer, promised, ts, true, Fields::default(), out);
    }

    /// DATA payload `dir`'s side sent on stream `id`: counted (and gRPC-framed).
    pub(super) fn on_data(&mut self, dir: Dir, id: u32, body: &[u8], out: &mut Emitter) {
        let Some(s) = self.streams.get_mut(&id) else {
            return;
        };
        let grpc = s.grpc;
        let half = match dir {
            Dir::ToServer => &mut s.req,
            Dir::ToClient => &mut s.resp,
        };
        if half.state != HalfState::Open {
            out.weird("http2_data_outside_message");
            return;
        }
        half.body += body.len() as u64;
        if grpc {
            half.framing.feed(body);
        }
    }

    /// Ends the half of stream `id` that `dir`'s side sends.
    pub(super) fn close_half(
        &mut self,
        dir: Dir,
        id: u32,
        ts: Ts,
        complete: bool,
        extra: Fields,
        out: &mut Emitter,
    ) {
        let Some(s) = self.streams.get_mut(&id) else {
            return;
        };
        let grpc = s.grpc;
        let (half, prefix) = match dir {
            Dir::ToServer => (&mut s.req, "request"),
            Dir::ToClient => (&mut s.resp, "response"),
        };
        if half.state == HalfState::Closed {
            return;
        }
        let opened = half.state == HalfState::Open;
        half.state = HalfState::Closed;
        let complete = complete && !half.cut;
        let mut f = Fields::default();
        if opened {
            let body = match dir {
                Dir::ToServer => "request_body_len",
                Dir::ToClient => "response_body_len",
            };
            f.set(body, Value::U64(half.body));
            if grpc {
                let fr = &half.framing;
                let (msgs, bytes, comp) = match prefix {
                    "request" => (
                        "grpc_request_messages",
                        "grpc_request_bytes",
                        "grpc_request_compressed",
                    ),
                    _ => (
                        "grpc_response_messages",
                        "grpc_response_bytes",
                        "grpc_response_compressed",
                    ),
                };
                f.set(msgs, Value::U64(fr.messages));
                f.set(bytes, Value::U64(fr.bytes));
                f.set(comp, Value::U64(fr.compressed));
                if fr.lost {
                    f.set("grpc_framing_lost", Value::Bool(true));
                } else if !fr.at_boundary() {
                    out.weird("grpc_truncated_message");
                }
            }
        }
        f.merge(extra);
        let held = Held {
            ts,
            fields: f,
            complete,
        };
        match dir {
            Dir::ToServer => {
                if s.requested {
                    s.req_end = Some(held);
                }
            }
            Dir::ToClient => {
                if grpc && complete && !s.grpc_status {
                    out.weird("grpc_missing_status");
                }
                let mut held = held;
                if let Some(t) = s.resp_end.take() {
                    // Trailers seen earlier.
                    let mut fields = t.fields;
                    fields.merge(held.fields);
                    held.fields = fields;
                }
                if s.responded {
                    s.resp_end = Some(held);
                } else if s.requested {
                    // No response headers (desync, or a trailers-only block we could not
                    // read): what ended it still belongs to the exchange.
                    if let Some(q) = &mut s.req_end {
                        q.fields.merge(held.fields);
                    }
                }
            }
        }
        if s.responded {
            self.emit_request_end(id, out);
        }
        self.emit_response_end(id, out);
        if let Some(s) = self.streams.get(&id)
            && s.req.state == HalfState::Closed
            && s.resp.state == HalfState::Closed
        {
            self.finalize(id, ts, Fields::default(), out);
        }
    }

    /// Emits the request's held end, if any.
    fn emit_request_end(&mut self, id: u32, out: &mut Emitter) {
        let Some(s) = self.streams.get_mut(&id) else {
            return;
        };
        if let Some(h) = s.req_end.take() {
            s.request_ended = true;
            out.emit(Event::RequestEnd {
                ts: h.ts,
                key: key(id),
                fields: h.fields,
                complete: h.complete,
            });
        }
    }

    /// Emits the response's end once the request's end is out (or there is no request).
    fn emit_response_end(&mut self, id: u32, out: &mut Emitter) {
        let Some(s) = self.streams.get_mut(&id) else {
            return;
        };
        let request_done = !s.requested || s.request_ended;
        if s.responded
            && s.resp.state == HalfState::Closed
            && request_done
            && let Some(h) = s.resp_end.take()
        {
            out.emit(Event::ResponseEnd {
                ts: h.ts,
                key: key(id),
                fields: h.fields,
                complete: h.complete,
            });
        }
    }

    /// The stream is over: every event it still owes goes out (open halves cut short at
    /// `ts`), with `extra` (reset, GOAWAY) on the last one; it is forgotten.
    fn finalize(&mut self, id: u32, ts: Ts, extra: Fields, out: &mut Emitter) {
        self.end_open_halves(id, ts);
        let Some(mut s) = self.streams.remove(&id) else {
            return;
        };
        let req = if s.requested && !s.request_ended {
            s.req_end.take()
        } else {
            None
        };
        let resp = if s.responded { s.resp_end.take() } else { None };
        let mut extra = Some(extra);
        if let Some(mut h) = req {
            if resp.is_none() {
                h.fields.merge(extra.take().unwrap_or_default());
            }
            out.emit(Event::RequestEnd {
                ts: h.ts,
                key: key(id),
                fields: h.fields,
                complete: h.complete,
            });
        }
        if let Some(mut h) = resp {
            h.fields.merge(extra.take().unwrap_or_default());
            out.emit(Event::ResponseEnd {
                ts: h.ts,
                key: key(id),
                fields: h.fields,
                complete: h.complete,
            });
        }
    }

    /// RST_STREAM from `dir`'s side: the stream ends, with the code and who sent it.
    pub(super) fn reset(&mut self, dir: Dir, id: u32, code: u32, ts: Ts, out: &mut Emitter) {
        if !self.streams.contains_key(&id) {
            return;
        }
        let mut f = Fields::default();
        f.set("reset_code", Value::text(frame::error_name(code)));
        f.set("reset_by", Value::text(by(dir)));
        self.finalize(id, ts, f, out);
    }

    /// Holds end events, cut short at `ts`, for a stream's halves still open.
    fn end_open_halves(&mut self, id: u32, ts: Ts) {
        let Some(s) = self.streams.get_mut(&id) else {
            return;
        };
        if s.requested && !s.request_ended && s.req_end.is_none() {
            let mut f = Fields::default();
            f.set("request_body_len", Value::U64(s.req.body));
            s.req_end = Some(Held {
                ts,
                fields: f,
                complete: false,
            });
        }
        s.req.state = HalfState::Closed;
        if s.responded && s.resp.state != HalfState::Closed {
            let mut f = s.resp_end.take().map(|h| h.fields).unwrap_or_default();
            f.set("response_body_len", Value::U64(s.resp.body));
            s.resp_end = Some(Held {
                ts,
                fields: f,
                complete: false,
            });
        }
        s.resp.state = HalfState::Closed;
    }

    /// GOAWAY from `dir`'s side: the streams its peer opened above `last` end unprocessed.
    pub(super) fn goaway(&mut self, dir: Dir, last: u32, code: u32, ts: Ts, out: &mut Emitter) {
        if code != 0 {
            out.weird("http2_goaway_error");
        }
        // The streams the receiver opened above `last` were not processed.
        let receiver_is_client = dir == Dir::ToClient;
        let refused: Vec<u32> = self
            .streams
            .iter()
            .filter(|(id, s)| **id > last && (**id % 2 == 1) == receiver_is_client && !s.responded)
            .map(|(id, _)| *id)
            .collect();
        for id in refused {
            let mut f = Fields::default();
            f.set("goaway_unprocessed", Value::Bool(true));
            self.finalize(id, ts, f, out);
        }
    }

    /// `dir`'s framing is lost or its stream ended: the messages it was sending end cut short.
    pub(super) fn cut_direction(&mut self, dir: Dir, ts: Ts, out: &mut Emitter) {
        let ids: Vec<u32> = self.streams.keys().copied().collect();
        for id in ids {
            let open = self.streams.get(&id).is_some_and(|s| match dir {
                Dir::ToServer => s.req.state == HalfState::Open,
                Dir::ToClient => s.resp.state == HalfState::Open,
            });
            if open {
                self.close_half(dir, id, ts, false, Fields::default(), out);
            }
        }
    }

    /// Ends every stream (the connection is over or given up).
    pub(super) fn finalize_all(&mut self, ts: Ts, out: &mut Emitter) {
        let ids: Vec<u32> = self.streams.keys().copied().collect();
        for id in ids {
            self.finalize(id, ts, Fields::default(), out);
        }
    }
}
