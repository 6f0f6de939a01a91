//! HTTP/2 over cleartext TCP (h2c) and gRPC on top of it.
//!
//! One parser per connection, two directions, each a sequence of frames ([`frame`]): the
//! client's begins with the connection preface. Connections start as HTTP/2 ("prior
//! knowledge", found by the preface or by plausible frames mid-stream) or are handed over by
//! the HTTP/1 parser after `Upgrade: h2c` and `101 Switching Protocols` ([`PROTOCOL`]'s
//! `upgrade`: the upgraded request is stream 1). `docs/http2.md` has the semantics and limits.
//!
//! - Streams are exchanges, keyed by stream id ([`MatchKey::Id`]): a request starts with the
//!   client's HEADERS, ends with its END_STREAM; a response likewise from the server (1xx
//!   responses are interim, later HEADERS are trailers). Pushed streams are requests whose
//!   headers came in a PUSH_PROMISE. A request's end is held until its response starts (or
//!   the stream ends otherwise) and a response's end until the request's end is out, so that
//!   a reset can still be attached to the exchange and the matcher always sees a request end
//!   before its response end, whatever the interleaving of streams.
//! - RST_STREAM ends a stream (its code and sender recorded); a GOAWAY ends the streams above
//!   its last stream id that were not answered (`goaway_unprocessed`).
//! - HPACK ([`hpack`]): one decoder per direction, table size updates checked against the
//!   peer's SETTINGS_HEADER_TABLE_SIZE. Every header block is decoded, even for streams not
//!   tracked, to keep the table in step. A block not decoded whole (gap, too large, malformed,
//!   CONTINUATION interrupted) desynchronises its direction for good: later headers of that
//!   direction are not decoded and their messages carry `headers_unknown` instead of fields.
//! - gRPC streams (`content-type: application/grpc*`) also get service and method from
//!   `:path`, message counts and sizes from the length-prefixed framing ([`grpc::Framing`])
//!   and `grpc-status` / `grpc-message` from trailers or a trailers-only response.
//! - Memory is bounded: at most [`MAX_STREAMS`] streams are tracked (HEADERS for more are
//!   decoded and counted as `http2_too_many_streams`), a header block is buffered up to
//!   [`MAX_HEADER_BLOCK`] bytes and [`MAX_CONTINUATIONS`] frames, other frames up to
//!   [`MAX_CONTROL_PAYLOAD`]; DATA is never buffered.
//! - A gap inside a DATA or header-block frame keeps the framing (the frame's length is
//!   known): the body is counted with the lost bytes and marked cut, a lost header block
//!   desynchronises HPACK. A gap anywhere else loses the framing of that direction: its open
//!   messages end cut short and it is not parsed further (both directions: the parser gives
//!   up). Malformed frames are counted as weirds; nothing here panics.

pub mod frame;
pub mod grpc;
pub mod hpack;

#[cfg(test)]
pub(crate) mod tests;

use std::collections::{BTreeMap, VecDeque};

use crate::l7::summary::template_path;
use crate::l7::{
    Emitter, Event, MatchKey, Parser, ParserState, Probe, ProbeInput, Protocol, Upgrade, UpgradeTo,
};
use crate::model::{Dir, Exchange, Fields, Summary, Transport, Ts, Value};
use frame::{FrameHeader, FrameType, HEADER_LEN, PREFACE, flags};
use hpack::{HeaderList, Hpack, Refused};

/// Streams tracked at once per connection (the matcher keeps as many open records).
pub const MAX_STREAMS: usize = crate::l7::MAX_OPEN;
/// Bytes of one header block (HEADERS or PUSH_PROMISE and its CONTINUATIONs) buffered for
/// decoding; a larger block is not decoded (and HPACK sync is lost).
pub const MAX_HEADER_BLOCK: usize = 256 * 1024;
/// CONTINUATION frames per header block before it counts as a flood (not decoded).
pub const MAX_CONTINUATIONS: usize = 1024;
/// Bytes kept of a frame other than DATA and header blocks (SETTINGS, GOAWAY, ...).
pub const MAX_CONTROL_PAYLOAD: usize = 16 * 1024;
/// SETTINGS_HEADER_TABLE_SIZE values announced and not yet acknowledged that are remembered.
const MAX_PENDING_SETTINGS: usize = 16;

/// The registration.
pub static PROTOCOL: Protocol = Protocol {
    name: "http2",
    transports: &[Transport::Tcp],
    // No port is h2c's own; these are where cleartext HTTP/2 and gRPC are usual.
    ports: &[80, 8080, 50051],
    probe,
    new_parser: |c| Box::new(Http2::new(c.partial)),
    zeek: None,
    // HTTP/1's `Upgrade: h2c` (RFC 7540 §3.2): the upgrading request becomes stream 1.
    upgrade: Some(UpgradeTo {
        token: "h2c",
        parser: |_, u| Box::new(Http2::upgraded(u)),
    }),
    summarize,
};

fn summarize(ex: &Exchange) -> Summary {
    let f = &ex.fields;
    let text = |n: &str| f.text(n).map(|t| String::from_utf8_lossy(t).into_owned());
    let grpc_status = f.u64("grpc_status");
    let endpoint = match (text("grpc_service"), text("grpc_method"), text("method")) {
        (Some(s), Some(m), _) => format!("grpc {s}/{m}"),
        (_, _, Some(m)) => match f.text("uri") {
            Some(u) => format!("{m} {}", template_path(u)),
            None => m,
        },
        _ if f.get("headers_unknown").is_some() => "(headers unknown)".into(),
        _ => "(no request)".into(),
    };
    let code = f.u64("status_code");
    let reset = f.text("reset_code").filter(|c| *c != b"NO_ERROR");
    let status = match (grpc_status, code, reset) {
        (Some(g), _, _) => Some(grpc::status_name(g).to_string()),
        (None, Some(c), _) => Some(c.to_string()),
        (None, None, Some(r)) => Some(format!("RST {}", String::from_utf8_lossy(r))),
        _ => None,
    };
    Summary {
        endpoint,
        status,
        failed: code.is_some_and(|c| c >= 500)
            || grpc_status.is_some_and(|g| g != 0)
            || reset.is_some(),
    }
}

/// Whether `b` begins with frames that look like HTTP/2: two valid frame headers in a row
/// (the first frame whole), or one whose rest has not arrived yet.
fn frames_probe(b: &[u8]) -> Probe {
    let Some(first) = FrameHeader::parse(b) else {
        return if b.is_empty() {
            Probe::NeedMore
        } else {
            // Three bytes of length: at most 16 KiB, so the first byte is zero.
            if b[0] == 0 {
                Probe::NeedMore
            } else {
                Probe::No
            }
        };
    };
    if !first.plausible() {
        return Probe::No;
    }
    let next = HEADER_LEN + first.len as usize;
    if next + HEADER_LEN > crate::l7::PROBE_BYTES {
        // The second header would lie beyond what detection ever sees.
        return Probe::No;
    }
    match b.get(next..).and_then(FrameHeader::parse) {
        Some(second) if second.plausible() => Probe::Yes,
        Some(_) => Probe::No,
        None => Probe::NeedMore,
    }
}

fn probe(p: &ProbeInput<'_>) -> Probe {
    let c = p.to_server;
    let n = c.len().min(PREFACE.len());
    if n > 0 && c[..n] == PREFACE[..n] {
        return if n == PREFACE.len() {
            Probe::Yes
        } else {
            Probe::NeedMore
        };
    }
    // Mid-stream (the capture began after the preface) or a server seen first.
    match (frames_probe(c), frames_probe(p.to_client)) {
        (Probe::Yes, _) | (_, Probe::Yes) => Probe::Yes,
        (Probe::No, _) | (_, Probe::No) => Probe::No,
        _ => Probe::NeedMore,
    }
}

/// base64url without padding (RFC 4648 §5), as `HTTP2-Settings` carries it; `None` when
/// malformed.
fn base64url(s: &[u8]) -> Option<Vec<u8>> {
    let val = |c: u8| -> Option<u32> {
        Some(u32::from(match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'-' | b'+' => 62,
            b'_' | b'/' => 63,
            _ => return None,
        }))
    };
    let s = s.trim_ascii();
    let s = s.strip_suffix(b"==").or(s.strip_suffix(b"=")).unwrap_or(s);
    let mut out = Vec::with_capacity(s.len() * 3 / 4);
    for chunk in s.chunks(4) {
        if chunk.len() == 1 {
            return None;
        }
        let mut acc = 0u32;
        for (i, &c) in chunk.iter().enumerate() {
            acc |= val(c)? << (18 - 6 * i);
        }
        let b = acc.to_be_bytes();
        out.extend_from_slice(&b[1..chunk.len()]);
    }
    Some(out)
}

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

#[derive(Debug, Default)]
struct Stream {
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

#[derive(Debug)]
enum Mode {
    /// Keep up to `keep` payload bytes; the rest is skipped.
    Buffer { keep: usize },
    /// DATA: the pad length byte (when PADDED and not read yet), then data, then padding.
    Data { pad_pending: bool, data_left: u32 },
}

#[derive(Debug)]
struct Cur {
    h: FrameHeader,
    /// Payload bytes not yet read.
    left: u32,
    /// When the frame's first byte arrived.
    ts: Ts,
    mode: Mode,
}

#[derive(Debug)]
enum BlockKind {
    Headers { end_stream: bool },
    PushPromise { promised: u32 },
}

/// A header block being assembled from HEADERS / PUSH_PROMISE and CONTINUATION frames.
#[derive(Debug)]
struct Block {
    stream: u32,
    kind: BlockKind,
    buf: Vec<u8>,
    frames: usize,
    ts: Ts,
    /// Not seen whole: it cannot be decoded.
    lost: bool,
}

/// SETTINGS_HEADER_TABLE_SIZE announced by one side (governs the other side's encoder).
#[derive(Debug)]
struct TableSize {
    acked: u32,
    pending: VecDeque<u32>,
}

#[derive(Debug)]
struct Side {
    /// Preface bytes matched so far; `None` once past it (or when none is expected).
    preface: Option<usize>,
    hdr: [u8; HEADER_LEN],
    hdr_have: usize,
    hdr_ts: Ts,
    cur: Option<Cur>,
    buf: Vec<u8>,
    block: Option<Block>,
    /// Decodes the header blocks this side sends.
    hpack: Hpack,
    /// What this side announced for the table its peer encodes with.
    table: TableSize,
    /// Framing lost (gap): nothing more is parsed in this direction.
    dead: bool,
    ended: bool,
    skip_lf: bool,
}

impl Side {
    fn new(preface: bool) -> Self {
        Side {
            preface: preface.then_some(0),
            hdr: [0; HEADER_LEN],
            hdr_have: 0,
            hdr_ts: 0,
            cur: None,
            buf: Vec::new(),
            block: None,
            hpack: Hpack::default(),
            table: TableSize {
                acked: hpack::DEFAULT_TABLE_SIZE as u32,
                pending: VecDeque::new(),
            },
            dead: false,
            ended: false,
            skip_lf: false,
        }
    }
}

/// The HTTP/2 parser for one connection.
#[derive(Debug)]
pub struct Http2 {
    sides: [Side; 2],
    streams: BTreeMap<u32, Stream>,
    /// Highest stream id each side opened.
    max_id: [u32; 2],
    /// Events to emit before anything else (the upgraded request).
    boot: Vec<Event>,
    partial: bool,
    state: ParserState,
}

fn key(id: u32) -> MatchKey {
    MatchKey::Id(u64::from(id))
}

fn by(dir: Dir) -> &'static str {
    match dir {
        Dir::ToServer => "client",
        Dir::ToClient => "server",
    }
}

impl Http2 {
    /// A parser for a connection that starts as HTTP/2; `partial`: the capture began after
    /// the connection did (no preface expected).
    pub fn new(partial: bool) -> Self {
        Http2 {
            sides: [Side::new(true), Side::new(false)],
            streams: BTreeMap::new(),
            max_id: [0; 2],
            boot: Vec::new(),
            partial,
            state: ParserState::Active,
        }
    }

    /// A parser for the rest of a connection upgraded from HTTP/1 (see [`Upgrade`]).
    pub fn upgraded(u: Upgrade) -> Self {
        let mut p = Http2::new(false);
        p.sides[Dir::ToClient.idx()].skip_lf = u.server_skip_lf;
        // The server applies HTTP2-Settings as the client's first SETTINGS, acknowledged by
        // the 101 (RFC 7540 §3.2.1).
        if let Some(s) = u.params.as_deref().and_then(base64url)
            && let Ok(pairs) = frame::settings(&s)
        {
            for (id, v) in pairs {
                if id == frame::setting::HEADER_TABLE_SIZE {
                    p.sides[Dir::ToServer.idx()].table.acked = v;
                    p.sides[Dir::ToClient.idx()].hpack.allow_table_size(v);
                }
            }
        }
        let mut fields = u.fields;
        fields.set("stream_id", Value::U64(1));
        fields.set("upgraded", Value::Bool(true));
        let body = fields.u64("request_body_len").unwrap_or(0);
        p.boot.push(Event::RequestStart {
            ts: u.start,
            key: key(1),
            fields,
        });
        let mut end = Fields::default();
        end.set("request_body_len", Value::U64(body));
        p.streams.insert(
            1,
            Stream {
                req: Half {
                    state: HalfState::Closed,
                    body,
                    ..Half::default()
                },
                requested: true,
                req_end: Some(Held {
                    ts: u.end,
                    fields: end,
                    complete: true,
                }),
                ..Stream::default()
            },
        );
        p.max_id[Dir::ToServer.idx()] = 1;
        p
    }

    fn flush_boot(&mut self, out: &mut Emitter) {
        for e in self.boot.drain(..) {
            out.emit(e);
        }
    }

    // ---- framing -------------------------------------------------------------------------

    fn feed(&mut self, dir: Dir, ts: Ts, mut data: &[u8], out: &mut Emitter) {
        let di = dir.idx();
        while !data.is_empty() && self.state == ParserState::Active {
            let side = &mut self.sides[di];
            if side.dead {
                return;
            }
            if let Some(n) = side.preface {
                let take = (PREFACE.len() - n).min(data.len());
                let same = data[..take]
                    .iter()
                    .zip(&PREFACE[n..])
                    .take_while(|(a, b)| a == b)
                    .count();
                if same < take {
                    if n == 0 && same == 0 {
                        // Frames without a preface: normal when the capture began late.
                        side.preface = None;
                        if !self.partial {
                            out.weird("http2_missing_preface");
                        }
                        continue;
                    }
                    out.weird("http2_bad_preface");
                    self.give_up(ts, out);
                    return;
                }
                side.preface = (n + take < PREFACE.len()).then_some(n + take);
                data = &data[take..];
                continue;
            }
            let Some(mut cur) = side.cur.take() else {
                if side.hdr_have == 0 {
                    side.hdr_ts = ts;
                }
                let take = (HEADER_LEN - side.hdr_have).min(data.len());
                side.hdr[side.hdr_have..side.hdr_have + take].copy_from_slice(&data[..take]);
                side.hdr_have += take;
                data = &data[take..];
                if side.hdr_have < HEADER_LEN {
                    return;
                }
                side.hdr_have = 0;
                let Some(h) = FrameHeader::parse(&side.hdr) else {
                    return;
                };
                let hts = side.hdr_ts;
                self.start_frame(dir, h, hts, out);
                if self.sides[di].cur.as_ref().is_some_and(|c| c.left == 0) {
                    self.complete_frame(dir, ts, out);
                }
                continue;
            };
            let n = (cur.left as usize).min(data.len());
            let (chunk, rest) = data.split_at(n);
            data = rest;
            cur.left -= n as u32;
            match &mut cur.mode {
                Mode::Buffer { keep } => {
                    let room = keep.saturating_sub(side.buf.len());
                    side.buf.extend_from_slice(&chunk[..room.min(chunk.len())]);
                }
                Mode::Data {
                    pad_pending,
                    data_left,
                } => {
                    let mut chunk = chunk;
                    if *pad_pending && let Some((&pad, rest)) = chunk.split_first() {
                        *pad_pending = false;
                        let room = cur.left + rest.len() as u32;
                        if u32::from(pad) > room {
                            out.weird("http2_bad_padding");
                            *data_left = 0;
                        } else {
                            *data_left = room - u32::from(pad);
                        }
                        chunk = rest;
                    }
                    let d = (*data_left as usize).min(chunk.len());
                    *data_left -= d as u32;
                    let body = &chunk[..d];
                    let (h, done) = (cur.h, cur.left == 0);
                    side.cur = Some(cur);
                    if !body.is_empty() {
                        self.on_data(dir, h.stream, body, out);
                    }
                    if done {
                        self.complete_frame(dir, ts, out);
                    }
                    continue;
                }
            }
            let done = cur.left == 0;
            side.cur = Some(cur);
            if done {
                self.complete_frame(dir, ts, out);
            }
        }
    }

    fn start_frame(&mut self, dir: Dir, h: FrameHeader, ts: Ts, out: &mut Emitter) {
        let side = &mut self.sides[dir.idx()];
        let header_block = matches!(
            h.ty,
            FrameType::Headers | FrameType::PushPromise | FrameType::Continuation
        );
        let mode = match h.ty {
            FrameType::Data => Mode::Data {
                pad_pending: h.has(flags::PADDED),
                data_left: if h.has(flags::PADDED) { 0 } else { h.len },
            },
            _ if header_block => Mode::Buffer {
                keep: (h.len as usize).min(MAX_HEADER_BLOCK),
            },
            FrameType::Unknown(_) => Mode::Buffer { keep: 0 },
            _ => Mode::Buffer {
                keep: (h.len as usize).min(MAX_CONTROL_PAYLOAD),
            },
        };
        if !h.stream_ok() {
            out.weird("http2_bad_stream_id");
        }
        side.buf.clear();
        side.cur = Some(Cur {
            h,
            left: h.len,
            ts,
            mode,
        });
    }

    /// The frame in progress has all its payload (as much as was kept).
    fn complete_frame(&mut self, dir: Dir, ts: Ts, out: &mut Emitter) {
        let di = dir.idx();
        let Some(cur) = self.sides[di].cur.take() else {
            return;
        };
        let payload = std::mem::take(&mut self.sides[di].buf);
        let whole = payload.len() == cur.h.len as usize;
        self.on_frame(dir, &cur, &payload, whole, ts, out);
        let side = &mut self.sides[di];
        if payload.capacity() <= MAX_CONTROL_PAYLOAD {
            side.buf = payload;
            side.buf.clear();
        }
    }

    fn on_frame(&mut self, dir: Dir, cur: &Cur, p: &[u8], whole: bool, ts: Ts, out: &mut Emitter) {
        let h = cur.h;
        let di = dir.idx();
        // A header block in progress admits only its CONTINUATIONs.
        if h.ty != FrameType::Continuation
            && let Some(mut b) = self.sides[di].block.take()
        {
            out.weird("http2_continuation_expected");
            b.lost = true;
            self.finish_block(dir, b, out);
        }
        let bad = |e: frame::Error, out: &mut Emitter| out.weird(e.weird());
        match h.ty {
            FrameType::Data => {
                if matches!(
                    cur.mode,
                    Mode::Data {
                        pad_pending: true,
                        ..
                    }
                ) {
                    out.weird("http2_bad_padding");
                }
                if h.has(flags::END_STREAM) {
                    self.close_half(dir, h.stream, ts, true, Fields::default(), out);
                }
            }
            FrameType::Headers => {
                let (frag, lost) = match frame::headers_fragment(&h, p) {
                    Ok(f) => (f, !whole),
                    Err(e) => {
                        bad(e, out);
                        (&[][..], true)
                    }
                };
                self.block_start(
                    dir,
                    &h,
                    BlockKind::Headers {
                        end_stream: h.has(flags::END_STREAM),
                    },
                    frag,
                    lost,
                    cur.ts,
                    out,
                );
            }
            FrameType::PushPromise => {
                if dir == Dir::ToServer {
                    out.weird("http2_push_promise_from_client");
                }
                let (promised, frag, lost) = match frame::push_promise(&h, p) {
                    Ok((id, f)) => (id, f, !whole),
                    Err(e) => {
                        bad(e, out);
                        (0, &[][..], true)
                    }
                };
                self.block_start(
                    dir,
                    &h,
                    BlockKind::PushPromise { promised },
                    frag,
                    lost,
                    cur.ts,
                    out,
                );
            }
            FrameType::Continuation => {
                let side = &mut self.sides[di];
                let Some(mut b) = side.block.take() else {
                    out.weird("http2_unexpected_continuation");
                    if side.hpack.lose() {
                        out.weird("http2_hpack_desync");
                    }
                    return;
                };
                if b.stream != h.stream {
                    out.weird("http2_continuation_stream_mismatch");
                    b.lost = true;
                }
                b.frames += 1;
                if b.frames > MAX_CONTINUATIONS && !b.lost {
                    out.weird("http2_continuation_flood");
                    b.lost = true;
                }
                if !b.lost && (!whole || b.buf.len() + p.len() > MAX_HEADER_BLOCK) {
                    if whole {
                        out.weird("http2_header_block_too_large");
                    }
                    b.lost = true;
                }
                if b.lost {
                    b.buf = Vec::new();
                } else {
                    b.buf.extend_from_slice(p);
                }
                if h.has(flags::END_HEADERS) {
                    self.finish_block(dir, b, out);
                } else {
                    self.sides[di].block = Some(b);
                }
            }
            FrameType::Priority => {
                if h.len != 5 {
                    bad(frame::Error::BadLength, out);
                }
            }
            FrameType::RstStream => match frame::rst_stream(p) {
                Ok(code) if h.stream != 0 => self.reset(dir, h.stream, code, ts, out),
                Ok(_) => {}
                Err(e) => bad(e, out),
            },
            FrameType::Settings => self.on_settings(dir, &h, p, whole, out),
            FrameType::Ping => {
                if h.len != 8 {
                    bad(frame::Error::BadLength, out);
                }
            }
            FrameType::Goaway => match frame::goaway(p) {
                Ok((last, code)) => self.goaway(dir, last, code, ts, out),
                Err(e) => bad(e, out),
            },
            FrameType::WindowUpdate => match frame::window_update(p) {
                Ok(0) => out.weird("http2_zero_window_update"),
                Ok(_) => {}
                Err(e) => bad(e, out),
            },
            FrameType::Unknown(_) => {}
        }
    }

    fn on_settings(&mut self, dir: Dir, h: &FrameHeader, p: &[u8], whole: bool, out: &mut Emitter) {
        let di = dir.idx();
        if h.has(flags::ACK) {
            if h.len != 0 {
                out.weird(frame::Error::BadLength.weird());
            }
            // The peer's announcement is now in force for this side's encoder.
            let peer = &mut self.sides[dir.flip().idx()].table;
            if let Some(v) = peer.pending.pop_front() {
                peer.acked = v;
                let allowed = peer.pending.iter().copied().fold(v, u32::max);
                self.sides[di].hpack.allow_table_size(allowed);
            }
            return;
        }
        if !whole {
            out.weird("http2_settings_too_large");
            return;
        }
        match frame::settings(p) {
            Ok(pairs) => {
                for (id, v) in pairs {
                    if id != frame::setting::HEADER_TABLE_SIZE {
                        continue;
                    }
                    // Until acknowledged, the peer's encoder may still use the old size.
                    let t = &mut self.sides[di].table;
                    if t.pending.len() == MAX_PENDING_SETTINGS {
                        t.pending.pop_front();
                    }
                    t.pending.push_back(v);
                    let allowed = t.pending.iter().copied().fold(t.acked, u32::max);
                    self.sides[dir.flip().idx()].hpack.allow_table_size(allowed);
                }
            }
            Err(e) => out.weird(e.weird()),
        }
    }

    #[expect(
        clippy::too_many_arguments,
        reason = "one frame's parts, passed through"
    )]
    fn block_start(
        &mut self,
        dir: Dir,
        h: &FrameHeader,
        kind: BlockKind,
        frag: &[u8],
        lost: bool,
        ts: Ts,
        out: &mut Emitter,
    ) {
        let b = Block {
            stream: h.stream,
            kind,
            buf: if lost { Vec::new() } else { frag.to_vec() },
            frames: 1,
            ts,
            lost,
        };
        if h.has(flags::END_HEADERS) {
            self.finish_block(dir, b, out);
        } else {
            self.sides[dir.idx()].block = Some(b);
        }
    }

    fn finish_block(&mut self, dir: Dir, b: Block, out: &mut Emitter) {
        let side = &mut self.sides[dir.idx()];
        let headers = if b.lost {
            if side.hpack.lose() {
                out.weird("http2_hpack_desync");
            }
            None
        } else {
            match side.hpack.decode(&b.buf) {
                Ok(l) => {
                    if l.dropped > 0 {
                        out.weird("http2_too_many_header_fields");
                    }
                    Some(l)
                }
                Err(Refused::Lost) => None,
                Err(Refused::Bad(w)) => {
                    out.weird(w);
                    out.weird("http2_hpack_desync");
                    None
                }
            }
        };
        match b.kind {
            BlockKind::Headers { end_stream } => {
                self.on_headers(dir, b.stream, b.ts, headers, end_stream, out)
            }
            BlockKind::PushPromise { promised } => self.on_push(dir, promised, b.ts, headers, out),
        }
    }

    // ---- streams -------------------------------------------------------------------------

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

    fn on_headers(
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
                    Some(HalfState::Idle) => {
                        self.start_request(id, ts, headers.as_ref(), false, out)
                    }
                    Some(HalfState::Open) => {
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
                        f.set(field, Value::Text(v.to_vec()));
                    }
                }
                if let Some(a) = h.get(b":authority").or_else(|| h.get(b"host")) {
                    f.set("host", Value::Text(a.to_vec()));
                }
                if h.get(b"content-type").is_some_and(grpc::is_grpc) {
                    s.grpc = true;
                    if let Some((svc, m)) = h.get(b":path").and_then(grpc::split_path) {
                        f.set("grpc_service", Value::Text(svc.to_vec()));
                        f.set("grpc_method", Value::Text(m.to_vec()));
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
                    f.set("response_content_type", Value::Text(ct.to_vec()));
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
            f.set("grpc_message", Value::Text(grpc::decode_message(m)));
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

    fn on_push(
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

    fn on_data(&mut self, dir: Dir, id: u32, body: &[u8], out: &mut Emitter) {
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
    fn close_half(
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

    fn reset(&mut self, dir: Dir, id: u32, code: u32, ts: Ts, out: &mut Emitter) {
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

    fn goaway(&mut self, dir: Dir, last: u32, code: u32, ts: Ts, out: &mut Emitter) {
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
    fn cut_direction(&mut self, dir: Dir, ts: Ts, out: &mut Emitter) {
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

    fn finalize_all(&mut self, ts: Ts, out: &mut Emitter) {
        let ids: Vec<u32> = self.streams.keys().copied().collect();
        for id in ids {
            self.finalize(id, ts, Fields::default(), out);
        }
    }

    fn give_up(&mut self, ts: Ts, out: &mut Emitter) {
        self.finalize_all(ts, out);
        self.state = ParserState::GaveUp;
    }
}

impl Parser for Http2 {
    fn data(&mut self, dir: Dir, ts: Ts, mut data: &[u8], out: &mut Emitter) {
        self.flush_boot(out);
        if self.state != ParserState::Active {
            return;
        }
        let side = &mut self.sides[dir.idx()];
        if std::mem::take(&mut side.skip_lf) && data.first() == Some(&b'\n') {
            data = &data[1..];
        }
        self.feed(dir, ts, data, out);
    }

    fn gap(&mut self, dir: Dir, ts: Ts, len: u64, out: &mut Emitter) {
        self.flush_boot(out);
        if self.state != ParserState::Active {
            return;
        }
        let di = dir.idx();
        let side = &mut self.sides[di];
        if side.dead || side.ended {
            return;
        }
        side.skip_lf = false;
        // Inside a frame whose length is known: the framing survives.
        if let Some(cur) = side.cur.as_mut()
            && len <= u64::from(cur.left)
            && side.preface.is_none()
            && side.hdr_have == 0
        {
            let n = len as u32;
            cur.left -= n;
            let (h, left) = (cur.h, cur.left);
            match &mut cur.mode {
                Mode::Data {
                    pad_pending,
                    data_left,
                } => {
                    // Body bytes lost (or the pad length byte: then the padding is unknown and
                    // the rest is all counted as body).
                    let lost_body = if *pad_pending {
                        *pad_pending = false;
                        *data_left = left;
                        n
                    } else {
                        let d = n.min(*data_left);
                        *data_left -= d;
                        d
                    };
                    if let Some(s) = self.streams.get_mut(&h.stream) {
                        let half = match dir {
                            Dir::ToServer => &mut s.req,
                            Dir::ToClient => &mut s.resp,
                        };
                        if half.state == HalfState::Open {
                            half.body += u64::from(lost_body);
                            half.cut = true;
                            half.framing.gap();
                        }
                    }
                    out.weird("http2_gap_in_data");
                }
                Mode::Buffer { keep } => {
                    // The kept payload cannot be whole any more.
                    *keep = 0;
                    side.buf.clear();
                    out.weird("http2_gap_in_frame");
                }
            }
            if left == 0 {
                self.complete_frame(dir, ts, out);
            }
            return;
        }
        out.weird("http2_gap_framing_lost");
        side.dead = true;
        side.cur = None;
        if let Some(b) = side.block.take() {
            drop(b);
        }
        if side.hpack.lose() {
            out.weird("http2_hpack_desync");
        }
        self.cut_direction(dir, ts, out);
        if self.sides.iter().all(|s| s.dead) {
            self.give_up(ts, out);
        }
    }

    fn end(&mut self, dir: Dir, ts: Ts, out: &mut Emitter) {
        self.flush_boot(out);
        let di = dir.idx();
        if self.state != ParserState::Active || self.sides[di].ended {
            return;
        }
        let side = &mut self.sides[di];
        side.ended = true;
        if !side.dead && (side.cur.is_some() || side.hdr_have > 0) {
            out.weird("http2_truncated_frame");
        }
        if let Some(b) = side.block.take() {
            drop(b);
            if side.hpack.lose() {
                out.weird("http2_hpack_desync");
            }
        }
        self.cut_direction(dir, ts, out);
        if self.sides.iter().all(|s| s.ended) {
            self.finalize_all(ts, out);
        }
    }

    fn state(&self) -> ParserState {
        self.state
    }
}
