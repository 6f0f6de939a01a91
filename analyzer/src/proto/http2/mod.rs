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
//!
//! Layout: [`frame`] and [`hpack`] are the wire layer (frame headers and payloads, header
//! blocks), [`grpc`] gRPC's own framing and vocabulary; this module holds the parser's state
//! and its [`Parser`] impl; `connection` reads frames off each direction and handles the
//! connection-level ones, `stream` turns streams into exchanges; `zeek` summarizes an
//! exchange for reports.

mod connection;
pub mod frame;
pub mod grpc;
pub mod hpack;
mod stream;
mod zeek;

#[cfg(test)]
pub(crate) mod tests;

use std::collections::{BTreeMap, VecDeque};

use crate::l7::{
    Emitter, Event, MatchKey, Parser, ParserState, Probe, ProbeInput, Protocol, Upgrade, UpgradeTo,
};
use crate::model::{Dir, Transport, Ts, Value};
use connection::{Block, Cur};
use frame::{FrameHeader, HEADER_LEN, PREFACE};
use hpack::Hpack;
use stream::Stream;
use zeek::summarize;

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

/// SETTINGS_HEADER_TABLE_SIZE announced by one side (governs the other side's encoder).
#[derive(Debug)]
struct TableSize {
    acked: u32,
    pending: VecDeque<u32>,
}

/// One direction of the connection: its framing, the header block it is sending, its
/// HPACK decoder.
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

/// The matching key of stream `id`.
fn key(id: u32) -> MatchKey {
    MatchKey::Id(u64::from(id))
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
        p.streams.insert(1, Stream::upgraded(body, u.end));
        p.max_id[Dir::ToServer.idx()] = 1;
        p
    }

    /// Emits what [`Http2::upgraded`] set up, before anything else.
    fn flush_boot(&mut self, out: &mut Emitter) {
        for e in self.boot.drain(..) {
            out.emit(e);
        }
    }

    /// Ends every stream and gives the connection up.
    fn give_up(&mut self, ts: Ts, out: &mut Emitter) {
        self.finalize_all(ts, out);
        self.state = ParserState::GaveUp;
    }
}

impl Parser for Http2 {
    fn heap_bytes(&self) -> usize {
        // Streams (each with the fields it keeps, a few hundred bytes), and per side the frame
        // and header-block buffers and the HPACK table.
        self.streams.len() * (std::mem::size_of::<Stream>() + 64 + 384)
            + self.boot.capacity() * std::mem::size_of::<Event>()
            + self
                .sides
                .iter()
                .map(|s| {
                    s.buf.capacity()
                        + s.hpack.heap_bytes()
                        + s.block.as_ref().map_or(0, Block::heap_bytes)
                })
                .sum::<usize>()
    }
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
        if self.gap_in_frame(dir, ts, len, out) {
            return;
        }
        let side = &mut self.sides[di];
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
