//! The connection's frames: the preface, frame headers and payloads as bytes arrive in any
//! pieces, header blocks assembled from HEADERS / PUSH_PROMISE and CONTINUATION frames and
//! decoded with HPACK, SETTINGS (the header table sizes), and the dispatch of every frame to
//! the streams ([`super::stream`]). DATA is counted as it passes, never buffered.

use super::frame::{self, FrameHeader, FrameType, HEADER_LEN, PREFACE, flags};
use super::hpack::Refused;
use super::{
    Http2, MAX_CONTINUATIONS, MAX_CONTROL_PAYLOAD, MAX_HEADER_BLOCK, MAX_PENDING_SETTINGS,
};
use crate::l7::{Emitter, ParserState};
use crate::model::{Dir, Fields, Ts};

/// How the payload of the frame in progress is read.
#[derive(Debug)]
enum Mode {
    /// Keep up to `keep` payload bytes; the rest is skipped.
    Buffer { keep: usize },
    /// DATA: the pad length byte (when PADDED and not read yet), then data, then padding.
    Data { pad_pending: bool, data_left: u32 },
}

/// The frame in progress (its header read, its payload not all yet).
#[derive(Debug)]
pub(super) struct Cur {
    h: FrameHeader,
    /// Payload bytes not yet read.
    left: u32,
    /// When the frame's first byte arrived.
    ts: Ts,
    mode: Mode,
}

/// What a header block belongs to.
#[derive(Debug)]
enum BlockKind {
    Headers { end_stream: bool },
    PushPromise { promised: u32 },
}

/// A header block being assembled from HEADERS / PUSH_PROMISE and CONTINUATION frames.
#[derive(Debug)]
pub(super) struct Block {
    stream: u32,
    kind: BlockKind,
    buf: Vec<u8>,
    frames: usize,
    ts: Ts,
    /// Not seen whole: it cannot be decoded.
    lost: bool,
}

impl Block {
    /// Heap bytes held (the header block being assembled).
    pub(super) fn heap_bytes(&self) -> usize {
        self.buf.capacity()
    }
}

impl Http2 {
    /// Bytes of `dir`'s stream: the preface, then frame headers and payloads.
    pub(super) fn feed(&mut self, dir: Dir, ts: Ts, mut data: &[u8], out: &mut Emitter) {
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
                let take =
                    crate::read::fill_header(&mut side.hdr, &mut side.hdr_have, HEADER_LEN, data);
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

    /// A frame header was read: how its payload will be read.
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

    /// A whole frame (`whole`: its payload all kept): dispatched by type.
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

    /// SETTINGS (or its ACK): the header table sizes each side's encoder may use.
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

    /// The first frame of a header block (HEADERS or PUSH_PROMISE).
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

    /// A header block is complete (or lost): decoded, then handed to its stream.
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

    /// A gap of `len` bytes in `dir`'s stream that falls inside the payload of the frame in
    /// progress, whose length is known, so the framing survives: lost DATA is counted as body
    /// (the message marked cut), any other frame loses what it kept. False when the gap is
    /// anywhere else.
    pub(super) fn gap_in_frame(&mut self, dir: Dir, ts: Ts, len: u64, out: &mut Emitter) -> bool {
        let side = &mut self.sides[dir.idx()];
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
                        s.data_lost(dir, u64::from(lost_body));
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
            return true;
        }
        false
    }
}
