//! MySQL packet framing with bounded memory: one direction's byte stream cut into logical
//! packets (4-byte headers; physical packets of 16 MiB - 1 joined with their continuations),
//! of which only the first [`MAX_KEEP`] bytes are kept, whatever lengths the packets claim.
//! Gaps inside a payload keep the framing; others lose it ([`GapEffect`]).

use super::wire::{HEADER_LEN, MAX_PAYLOAD, payload_len};
use crate::model::Ts;

/// Bytes kept of each logical packet (its beginning); the rest is counted, not stored.
pub const MAX_KEEP: usize = 64 * 1024;

/// What [`Framer::next`] found: one logical packet (its physical packets joined).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Meta {
    /// Sequence id of its first physical packet.
    pub seq: u8,
    /// Sequence id of its last physical packet.
    pub last_seq: u8,
    /// Payload length (all physical packets).
    pub len: u64,
    /// When its first byte arrived.
    pub start: Ts,
    /// When its last byte arrived.
    pub end: Ts,
    /// A gap removed part of its payload: the kept bytes stop where the gap began.
    pub lost: bool,
    /// A continuation packet's sequence id did not follow its predecessor's.
    pub seq_error: bool,
}

/// Splits one direction's byte stream into logical packets, keeping at most [`MAX_KEEP`]
/// bytes of each; the rest of a long packet is counted and dropped as it streams by.
#[derive(Debug, Default)]
pub struct Framer {
    hdr: [u8; HEADER_LEN],
    hlen: usize,
    /// Payload bytes still to come in the current physical packet.
    remaining: usize,
    /// Length of the current physical packet.
    plen: usize,
    /// A logical packet is being assembled.
    in_msg: bool,
    /// Its kept beginning.
    head: Vec<u8>,
    /// No more bytes go into `head` (a gap interrupted it).
    head_closed: bool,
    meta: Option<Meta>,
}

/// What a gap did to the framing.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GapEffect {
    /// The gap fell inside a packet's payload: framing kept.
    Kept,
    /// The gap ended exactly at the end of a logical packet, which is now complete.
    Completed(Meta),
    /// Packet boundaries are unknown after it.
    Lost,
}

impl Framer {
    /// Heap bytes held (the kept beginning of the packet being assembled).
    pub fn heap_bytes(&self) -> usize {
        self.head.capacity()
    }

    /// Whether a packet is partly read.
    pub fn mid_packet(&self) -> bool {
        self.hlen > 0 || self.in_msg
    }

    /// The kept bytes of the packet [`Framer::next`] last completed from buffered data.
    pub fn head(&self) -> &[u8] {
        &self.head
    }

    /// What is known of the packet being read (its first header seen), if any.
    pub fn meta_so_far(&self) -> Option<Meta> {
        if self.in_msg { self.meta } else { None }
    }

    /// Lends the kept bytes of the packet [`Framer::next`] last completed from buffered data
    /// (give the buffer back with [`Framer::give_back`] to reuse it).
    pub fn take_head(&mut self) -> Vec<u8> {
        std::mem::take(&mut self.head)
    }

    /// Returns a buffer lent by [`Framer::take_head`].
    pub fn give_back(&mut self, mut v: Vec<u8>) {
        if self.head.is_empty() && !self.mid_packet() {
            v.clear();
            self.head = v;
        }
    }

    /// Forgets everything (framing lost, or resynchronising).
    pub fn reset(&mut self) {
        self.hlen = 0;
        self.remaining = 0;
        self.plen = 0;
        self.in_msg = false;
        self.head_closed = false;
        self.meta = None;
        self.shrink();
    }

    /// Drops a large buffer after a large packet, so an idle connection holds little.
    fn shrink(&mut self) {
        self.head.clear();
        if self.head.capacity() > 4096 {
            self.head = Vec::new();
        }
    }

    /// The next whole logical packet from `rest` (advanced past what was consumed): its
    /// metadata, and its bytes when they are a slice of `rest` (else [`Framer::head`] has
    /// them). `None`: `rest` is used up without completing a packet.
    pub fn next<'d>(&mut self, ts: Ts, rest: &mut &'d [u8]) -> Option<(Meta, Option<&'d [u8]>)> {
        if !self.mid_packet() {
            self.shrink();
            // Fast path: a whole small packet in the data itself is not copied.
            if let Some(len) = payload_len(rest)
                && len < MAX_PAYLOAD
                && rest.len() >= HEADER_LEN + len
            {
                let seq = rest[3];
                let body = &rest[HEADER_LEN..HEADER_LEN + len];
                *rest = &rest[HEADER_LEN + len..];
                let meta = Meta {
                    seq,
                    last_seq: seq,
                    len: len as u64,
                    start: ts,
                    end: ts,
                    lost: false,
                    seq_error: false,
                };
                return Some((meta, Some(body)));
            }
        }
        loop {
            if self.remaining == 0 && self.hlen != HEADER_LEN {
                // Reading a header.
                if rest.is_empty() {
                    return None;
                }
                if self.hlen == 0 && !self.in_msg {
                    self.meta = Some(Meta {
                        seq: 0,
                        last_seq: 0,
                        len: 0,
                        start: ts,
                        end: ts,
                        lost: false,
                        seq_error: false,
                    });
                }
                let n = crate::read::fill_header(&mut self.hdr, &mut self.hlen, HEADER_LEN, rest);
                *rest = &rest[n..];
                if self.hlen < HEADER_LEN {
                    return None;
                }
            }
            if self.hlen == HEADER_LEN {
                // A whole header: its length is there.
                let len = payload_len(&self.hdr).unwrap_or(0);
                let seq = self.hdr[3];
                let m = self.meta.get_or_insert(Meta {
                    seq,
                    last_seq: seq,
                    len: 0,
                    start: ts,
                    end: ts,
                    lost: false,
                    seq_error: false,
                });
                if self.in_msg {
                    if seq != m.last_seq.wrapping_add(1) {
                        m.seq_error = true;
                    }
                } else {
                    m.seq = seq;
                    self.in_msg = true;
                    self.head_closed = false;
                    self.head.clear();
                }
                m.last_seq = seq;
                self.plen = len;
                self.remaining = len;
                self.hlen = 0;
            }
            let n = self.remaining.min(rest.len());
            if !self.head_closed {
                let room = MAX_KEEP - self.head.len();
                self.head.extend_from_slice(&rest[..n.min(room)]);
            }
            *rest = &rest[n..];
            self.remaining -= n;
            if let Some(m) = &mut self.meta {
                m.len += n as u64;
                m.end = ts;
            }
            if self.remaining > 0 {
                return None;
            }
            if self.plen == MAX_PAYLOAD {
                // Continued by the next physical packet.
                continue;
            }
            return self.complete().map(|m| (m, None));
        }
    }

    fn complete(&mut self) -> Option<Meta> {
        self.in_msg = false;
        self.hlen = 0;
        self.plen = 0;
        self.meta.take()
    }

    /// `len` bytes of the stream were lost.
    pub fn gap(&mut self, ts: Ts, len: u64) -> GapEffect {
        if self.hlen > 0 || !self.in_msg || (self.remaining as u64) < len {
            self.reset();
            return GapEffect::Lost;
        }
        self.remaining -= len as usize;
        self.head_closed = true;
        if let Some(m) = &mut self.meta {
            m.len += len;
            m.lost = true;
            m.end = ts;
        }
        if self.remaining > 0 || self.plen == MAX_PAYLOAD {
            return GapEffect::Kept;
        }
        match self.complete() {
            Some(m) => GapEffect::Completed(m),
            None => GapEffect::Lost,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn framed(payload: &[u8], seq: u8) -> Vec<u8> {
        let n = payload.len();
        let mut v = vec![n as u8, (n >> 8) as u8, (n >> 16) as u8, seq];
        v.extend_from_slice(payload);
        v
    }

    #[test]
    fn framer_fast_path_and_byte_by_byte() {
        let mut stream = framed(b"\x03select 1", 0);
        stream.extend(framed(b"\x0e", 0));
        let mut f = Framer::default();
        let mut rest = &stream[..];
        let (m, body) = f.next(5, &mut rest).unwrap();
        assert_eq!((m.seq, m.len, body), (0, 9, Some(&b"\x03select 1"[..])));
        let (m, body) = f.next(5, &mut rest).unwrap();
        assert_eq!((m.len, body), (1, Some(&b"\x0e"[..])));
        assert!(rest.is_empty());
        // One byte per call: the same packets, from the buffer.
        let mut f = Framer::default();
        let mut got = Vec::new();
        for (i, b) in stream.iter().enumerate() {
            let mut r = std::slice::from_ref(b);
            if let Some((m, body)) = f.next(i as Ts, &mut r) {
                assert!(body.is_none());
                got.push((m.start, m.end, f.head().to_vec()));
            }
        }
        assert_eq!(
            got,
            vec![
                (0, 12, b"\x03select 1".to_vec()),
                (13, 17, b"\x0e".to_vec())
            ]
        );
    }

    fn feed_header(f: &mut Framer, len: usize, seq: u8) {
        let h = [len as u8, (len >> 8) as u8, (len >> 16) as u8, seq];
        let mut r = &h[..];
        assert!(f.next(0, &mut r).is_none());
        assert!(r.is_empty());
    }

    #[test]
    fn framer_joins_continuations_with_bounded_memory() {
        // 16 MiB - 1 + 16 MiB - 1 + 10 bytes: three physical packets, one logical one.
        let mut f = Framer::default();
        feed_header(&mut f, MAX_PAYLOAD, 1);
        let chunk = vec![b'x'; 1 << 20];
        for _ in 0..16 {
            let mut r = &chunk[..chunk.len().min(f.remaining)];
            assert!(f.next(1, &mut r).is_none());
        }
        let mut r = &chunk[..f.remaining];
        assert!(f.next(1, &mut r).is_none());
        assert!(f.head.capacity() <= 2 * MAX_KEEP);
        feed_header(&mut f, MAX_PAYLOAD, 2);
        for _ in 0..16 {
            let mut r = &chunk[..chunk.len().min(f.remaining)];
            assert!(f.next(2, &mut r).is_none());
        }
        let mut r = &chunk[..f.remaining];
        assert!(f.next(2, &mut r).is_none());
        feed_header(&mut f, 10, 4); // sequence 3 expected
        let mut r = &chunk[..10];
        let (m, body) = f.next(3, &mut r).unwrap();
        assert!(body.is_none());
        assert_eq!(m.len, 2 * MAX_PAYLOAD as u64 + 10);
        assert_eq!((m.seq, m.last_seq, m.seq_error), (1, 4, true));
        assert_eq!(f.head().len(), MAX_KEEP);
        assert!(f.head.capacity() <= 2 * MAX_KEEP);
    }

    #[test]
    fn framer_gaps() {
        // Inside a payload: kept, and the packet completes marked as lost.
        let mut f = Framer::default();
        let p = framed(b"\x03select 123456789", 0);
        let mut r = &p[..8];
        assert!(f.next(0, &mut r).is_none());
        assert_eq!(f.gap(1, 5), GapEffect::Kept);
        let mut r = &p[13..];
        let (m, _) = f.next(2, &mut r).unwrap();
        assert!(m.lost);
        assert_eq!(m.len, 17);
        assert_eq!(f.head(), b"\x03sel");
        // Ending exactly at the packet's end completes it.
        let mut r = &p[..8];
        assert!(f.next(0, &mut r).is_none());
        match f.gap(1, (p.len() - 8) as u64) {
            GapEffect::Completed(m) => assert!(m.lost),
            other => panic!("{other:?}"),
        }
        // Between packets or past the packet's end: lost.
        assert_eq!(f.gap(1, 1), GapEffect::Lost);
        let mut r = &p[..8];
        assert!(f.next(0, &mut r).is_none());
        assert_eq!(f.gap(1, 100), GapEffect::Lost);
        assert!(!f.mid_packet());
    }
}
