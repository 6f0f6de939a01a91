//! TCP reassembly, one direction at a time.
//!
//! Sequence numbers are unwrapped into 64-bit stream offsets relative to the expected next
//! byte, so wrap-around is handled by construction. Segments are delivered in order;
//! retransmissions and overlaps are trimmed (first copy wins, as in Zeek); out-of-order segments
//! are buffered up to a bound. Bytes that never arrive are delivered as *gaps* — never glued
//! over — when:
//! - the peer acknowledges past a hole (the data was sent, the capture missed it),
//! - the out-of-order buffer would exceed its bound,
//! - the capture cut a packet short (snaplen): the missing tail is a gap,
//! - the stream ends (FIN/RST/end of capture) with holes or unseen acknowledged bytes,
//! - a segment of this direction (data, or a bare ACK or FIN) begins past a hole the peer
//!   has acknowledged.
//!
//! Each delivery carries its sequence number and the acknowledgement number of the segment
//! that brought it, for [`super::order`], which merges the two directions.

use std::collections::BTreeMap;

use crate::model::{ReasmStats, Ts};

/// What reassembly hands to the protocol parser.
#[derive(Debug, PartialEq, Eq)]
pub enum Delivery<'a> {
    /// In-order bytes, first seen at `ts`.
    Data {
        /// Capture time of the segment.
        ts: Ts,
        /// Bytes.
        data: &'a [u8],
        /// Sequence number of the first byte.
        seq: u32,
        /// Acknowledgement number of the segment (when its ACK flag was set).
        ack: Option<u32>,
    },
    /// `len` bytes were lost.
    Gap {
        /// Time the loss was detected.
        ts: Ts,
        /// Length.
        len: u64,
        /// Sequence number of the first lost byte.
        seq: u32,
    },
}

/// A TCP segment of one direction.
#[derive(Clone, Copy, Debug)]
pub struct Segment<'a> {
    /// Capture time.
    pub ts: Ts,
    /// Sequence number.
    pub seq: u32,
    /// Acknowledgement number, when the ACK flag is set.
    pub ack: Option<u32>,
    /// SYN flag.
    pub syn: bool,
    /// FIN flag.
    pub fin: bool,
    /// Captured payload.
    pub payload: &'a [u8],
    /// Payload length on the wire (more than `payload.len()` when the capture cut it).
    pub wire_len: u32,
}

#[derive(Debug)]
struct Held {
    ts: Ts,
    ack: Option<u32>,
    data: Vec<u8>,
    /// Bytes missing after `data` (cut by the capture's snaplen).
    missing: u32,
}

impl Held {
    fn wire_len(&self) -> u64 {
        self.data.len() as u64 + u64::from(self.missing)
    }
}

/// Bytes of out-of-order data one shard may hold across all its connections.
#[derive(Debug)]
pub struct Budget {
    /// Bytes held now.
    pub used: usize,
    /// Bound for the shard.
    pub limit: usize,
    /// Bound for one direction of one connection.
    pub per_direction: usize,
}

impl Default for Budget {
    fn default() -> Self {
        Budget {
            used: 0,
            limit: 256 << 20,
            per_direction: 2 << 20,
        }
    }
}

/// Reassembly state of one direction of a TCP connection.
#[derive(Debug, Default)]
pub struct Reassembler {
    started: bool,
    /// The stream began with a SYN.
    pub syn_seen: bool,
    base: u32,
    next: u64,
    fin: Option<u64>,
    ended: bool,
    held: BTreeMap<u64, Held>,
    held_bytes: usize,
    max_acked: u64,
    /// Counters.
    pub stats: ReasmStats,
}

impl Reassembler {
    /// True once the stream ended (FIN reached, RST, or [`Reassembler::finish`]).
    pub fn ended(&self) -> bool {
        self.ended
    }

    /// True if data has been seen or a SYN started the stream.
    pub fn started(&self) -> bool {
        self.started
    }

    /// Sequence number of the next byte to deliver, once the stream has started.
    pub fn next_seq(&self) -> Option<u32> {
        self.started.then(|| self.seq_at(self.next))
    }

    fn seq_at(&self, offset: u64) -> u32 {
        self.base.wrapping_add(offset as u32)
    }

    /// Stream offset of `seq`, relative to the expected next byte; negative if before it.
    fn offset(&self, seq: u32) -> i128 {
        let expected = self.base.wrapping_add(self.next as u32);
        let delta = seq.wrapping_sub(expected) as i32;
        i128::from(self.next) + i128::from(delta)
    }

    /// The peer acknowledged up to `ack`.
    pub fn ack(
        &mut self,
        ack: u32,
        ts: Ts,
        budget: &mut Budget,
        sink: &mut dyn FnMut(Delivery<'_>),
    ) {
        if !self.started || self.ended {
            return;
        }
        let off = self.offset(ack);
        if off <= i128::from(self.max_acked) {
            return;
        }
        self.max_acked = u64::try_from(off).unwrap_or(0);
        // A hole the peer acknowledged, with data held beyond it: the hole is lost.
        if let Some((&first, _)) = self.held.first_key_value()
            && self.max_acked > self.next
            && first > self.next
        {
            let to = first.min(self.max_acked);
            self.gap(ts, to - self.next, sink);
            self.drain(budget, sink);
        }
    }

    fn gap(&mut self, ts: Ts, len: u64, sink: &mut dyn FnMut(Delivery<'_>)) {
        if len == 0 {
            return;
        }
        self.stats.gaps += 1;
        self.stats.gap_bytes += len;
        let seq = self.seq_at(self.next);
        self.next += len;
        sink(Delivery::Gap { ts, len, seq });
    }

    fn deliver(
        &mut self,
        (ts, ack): (Ts, Option<u32>),
        data: &[u8],
        missing: u64,
        sink: &mut dyn FnMut(Delivery<'_>),
    ) {
        if !data.is_empty() {
            self.stats.delivered += data.len() as u64;
            let seq = self.seq_at(self.next);
            self.next += data.len() as u64;
            sink(Delivery::Data { ts, data, seq, ack });
        }
        // A packet's tail the capture did not keep (snap length).
        self.stats.cut_bytes = self.stats.cut_bytes.saturating_add(missing);
        self.gap(ts, missing, sink);
    }

    /// Delivers held segments that have become contiguous.
    fn drain(&mut self, budget: &mut Budget, sink: &mut dyn FnMut(Delivery<'_>)) {
        while let Some(entry) = self.held.first_entry() {
            let start = *entry.key();
            if start > self.next {
                break;
            }
            let h = entry.remove();
            self.held_bytes -= h.data.len();
            budget.used -= h.data.len();
            let end = start + h.wire_len();
            if end <= self.next {
                self.stats.retrans_bytes += h.wire_len();
                continue;
            }
            let skip = self.next - start;
            if skip > 0 {
                self.stats.overlaps += 1;
            }
            let (data, missing) = if skip as usize >= h.data.len() {
                (&h.data[..0], end - self.next)
            } else {
                (&h.data[skip as usize..], u64::from(h.missing))
            };
            self.deliver((h.ts, h.ack), data, missing, sink);
        }
        self.check_fin();
    }

    fn check_fin(&mut self) {
        if let Some(f) = self.fin
            && self.next >= f
            && self.held.is_empty()
        {
            self.ended = true;
        }
    }

    /// A segment of this direction. Returns true if it ended the stream.
    pub fn segment(
        &mut self,
        sg: &Segment<'_>,
        budget: &mut Budget,
        sink: &mut dyn FnMut(Delivery<'_>),
    ) -> bool {
        let Segment {
            ts,
            seq,
            ack,
            syn,
            fin,
            payload,
            wire_len,
        } = *sg;
        if self.ended {
            if wire_len > 0 {
                self.stats.retrans_bytes += u64::from(wire_len);
            }
            return false;
        }
        let data_seq = if syn { seq.wrapping_add(1) } else { seq };
        if !self.started {
            if !syn && wire_len == 0 && !fin {
                return false;
            }
            self.started = true;
            self.syn_seen = syn;
            self.base = data_seq;
        }
        let start = self.offset(data_seq);
        let wire = u64::from(wire_len);
        if fin && self.fin.is_none() {
            let f = start + i128::from(wire);
            self.fin = Some(u64::try_from(f).unwrap_or(0));
        }
        if wire == 0 && start > i128::from(self.next) && i128::from(self.max_acked) >= start {
            // A bare ACK or FIN past a hole the peer acknowledged: the hole is lost.
            let to = u64::try_from(start).unwrap_or(0);
            self.gap(ts, to - self.next, sink);
            self.drain(budget, sink);
        }
        if wire > 0 {
            let end = start + i128::from(wire);
            if end <= i128::from(self.next) {
                self.stats.retrans_bytes += wire;
            } else {
                let skip = u64::try_from(i128::from(self.next) - start).unwrap_or(0);
                let start = u64::try_from(start).unwrap_or(0).max(self.next);
                if skip > 0 {
                    self.stats.overlaps += 1;
                }
                let (data, missing) = if skip as usize >= payload.len() {
                    (&payload[..0], wire - skip)
                } else {
                    (&payload[skip as usize..], wire - payload.len() as u64)
                };
                if start == self.next {
                    self.deliver((ts, ack), data, missing, sink);
                    self.drain(budget, sink);
                } else if self.max_acked >= start {
                    // The peer already acknowledged past this segment's start: the hole is lost.
                    self.gap(ts, start - self.next, sink);
                    self.deliver((ts, ack), data, missing, sink);
                    self.drain(budget, sink);
                } else {
                    self.hold((ts, ack), start, data, missing, budget, sink);
                }
            }
        }
        self.check_fin();
        self.ended
    }

    fn hold(
        &mut self,
        (ts, ack): (Ts, Option<u32>),
        start: u64,
        data: &[u8],
        missing: u64,
        budget: &mut Budget,
        sink: &mut dyn FnMut(Delivery<'_>),
    ) {
        self.stats.ooo_segments += 1;
        // Give up holes, oldest first, until this segment fits in both bounds.
        while !self.held.is_empty()
            && (self.held_bytes + data.len() > budget.per_direction
                || budget.used + data.len() > budget.limit)
        {
            self.stats.ooo_overflows += 1;
            let first = *self.held.keys().next().unwrap_or(&self.next);
            self.gap(ts, first.saturating_sub(self.next), sink);
            self.drain(budget, sink);
        }
        if self.held_bytes + data.len() > budget.per_direction
            || budget.used + data.len() > budget.limit
        {
            // Even alone it does not fit: the hole before it is given up now.
            self.stats.ooo_overflows += 1;
            self.gap(ts, start - self.next, sink);
            self.deliver((ts, ack), data, missing, sink);
            return;
        }
        let missing = u32::try_from(missing).unwrap_or(u32::MAX);
        match self.held.get(&start) {
            // Keep the longer of two segments starting at the same place.
            Some(h) if h.wire_len() >= data.len() as u64 + u64::from(missing) => {
                self.stats.retrans_bytes += data.len() as u64;
            }
            _ => {
                if let Some(old) = self.held.insert(
                    start,
                    Held {
                        ts,
                        ack,
                        data: data.to_vec(),
                        missing,
                    },
                ) {
                    self.held_bytes -= old.data.len();
                    budget.used -= old.data.len();
                }
                self.held_bytes += data.len();
                budget.used += data.len();
            }
        }
    }

    /// The stream ends here (RST, connection end, or end of capture): delivers what is held,
    /// with gaps for the holes, and a final gap for bytes the FIN or the peer's
    /// acknowledgements show were sent but never seen.
    pub fn finish(&mut self, ts: Ts, budget: &mut Budget, sink: &mut dyn FnMut(Delivery<'_>)) {
        if self.ended || !self.started {
            self.ended = true;
            return;
        }
        while let Some((&first, _)) = self.held.first_key_value() {
            self.gap(ts, first.saturating_sub(self.next), sink);
            self.drain(budget, sink);
        }
        let sent_end = match self.fin {
            Some(f) => f,
            // Acknowledgements cover a FIN we did not see by one: ignore a lone extra byte.
            None if self.max_acked > self.next + 1 => self.max_acked,
            None => self.next,
        };
        if sent_end > self.next {
            self.gap(ts, sent_end - self.next, sink);
        }
        self.ended = true;
    }

    /// Bytes held out of order now.
    pub fn held_bytes(&self) -> usize {
        self.held_bytes
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, PartialEq, Eq)]
    enum D {
        Data(Vec<u8>),
        Gap(u64),
    }

    struct T {
        r: Reassembler,
        b: Budget,
        out: Vec<D>,
    }

    impl T {
        fn new() -> Self {
            T {
                r: Reassembler::default(),
                b: Budget::default(),
                out: Vec::new(),
            }
        }
        fn seg(&mut self, seq: u32, data: &[u8]) {
            self.seg_full(seq, false, false, data, data.len() as u32);
        }
        fn seg_full(&mut self, seq: u32, syn: bool, fin: bool, data: &[u8], wire: u32) {
            let out = &mut self.out;
            let sg = Segment {
                ts: 0,
                seq,
                ack: None,
                syn,
                fin,
                payload: data,
                wire_len: wire,
            };
            self.r.segment(&sg, &mut self.b, &mut |d| push(out, d));
        }
        fn ack(&mut self, a: u32) {
            let out = &mut self.out;
            self.r.ack(a, 0, &mut self.b, &mut |d| push(out, d));
        }
        fn finish(&mut self) {
            let out = &mut self.out;
            self.r.finish(0, &mut self.b, &mut |d| push(out, d));
        }
        fn text(&self) -> String {
            self.out
                .iter()
                .map(|d| match d {
                    D::Data(b) => String::from_utf8_lossy(b).into_owned(),
                    D::Gap(n) => format!("<gap {n}>"),
                })
                .collect()
        }
    }

    fn push(out: &mut Vec<D>, d: Delivery<'_>) {
        match d {
            Delivery::Data { data, .. } => out.push(D::Data(data.to_vec())),
            Delivery::Gap { len, .. } => out.push(D::Gap(len)),
        }
    }

    #[test]
    fn in_order_after_syn() {
        let mut t = T::new();
        t.seg_full(99, true, false, b"", 0);
        t.seg(100, b"hello ");
        t.seg(106, b"world");
        assert_eq!(t.text(), "hello world");
        assert!(t.r.syn_seen);
    }

    #[test]
    fn out_of_order_is_reordered() {
        let mut t = T::new();
        t.seg_full(0, true, false, b"", 0);
        t.seg(7, b"three");
        t.seg(4, b"two");
        t.seg(1, b"one");
        assert_eq!(t.text(), "onetwothree");
        assert_eq!(t.r.stats.ooo_segments, 2);
        assert_eq!(t.b.used, 0);
    }

    #[test]
    fn retransmission_and_overlap_first_copy_wins() {
        let mut t = T::new();
        t.seg_full(0, true, false, b"", 0);
        t.seg(1, b"abcd");
        t.seg(1, b"abcd"); // full retransmission
        t.seg(3, b"XXef"); // overlaps "cd": the first copy wins
        assert_eq!(t.text(), "abcdef");
        assert_eq!(t.r.stats.retrans_bytes, 4);
        assert_eq!(t.r.stats.overlaps, 1);
    }

    #[test]
    fn sequence_wraparound() {
        let mut t = T::new();
        t.seg_full(u32::MAX - 3, true, false, b"", 0);
        t.seg(u32::MAX - 2, b"abc");
        t.seg(0, b"def"); // wrapped
        t.seg(3, b"g");
        assert_eq!(t.text(), "abcdefg");
    }

    #[test]
    fn acked_hole_becomes_a_gap() {
        let mut t = T::new();
        t.seg_full(0, true, false, b"", 0);
        t.seg(1, b"aaaa");
        t.seg(9, b"cccc"); // bytes 5..9 missing
        assert_eq!(t.text(), "aaaa");
        t.ack(13); // the peer got everything: the hole is lost for good
        assert_eq!(t.text(), "aaaa<gap 4>cccc");
        assert_eq!((t.r.stats.gaps, t.r.stats.gap_bytes), (1, 4));
    }

    #[test]
    fn data_after_an_acked_hole_is_delivered_at_once() {
        let mut t = T::new();
        t.seg_full(0, true, false, b"", 0);
        t.seg(1, b"aa");
        t.ack(10);
        t.seg(5, b"bb");
        assert_eq!(t.text(), "aa<gap 2>bb");
    }

    #[test]
    fn a_bare_ack_past_an_acknowledged_hole_gives_it_up() {
        let mut t = T::new();
        t.seg_full(0, true, false, b"", 0);
        t.seg(1, b"aa");
        t.ack(10); // the peer has bytes up to 10: 3..10 were sent
        assert_eq!(t.text(), "aa");
        t.seg_full(10, false, false, b"", 0); // this side's next bare ACK starts at 10
        assert_eq!(t.text(), "aa<gap 7>");
    }

    #[test]
    fn deliveries_carry_sequence_and_acknowledgement_numbers() {
        let mut r = Reassembler::default();
        let mut b = Budget::default();
        let mut got = Vec::new();
        let mut sink = |d: Delivery<'_>| {
            got.push(match d {
                Delivery::Data { seq, ack, data, .. } => (seq, ack, data.len() as u64),
                Delivery::Gap { seq, len, .. } => (seq, None, len),
            })
        };
        let seg = |seq, ack, payload: &'static [u8]| Segment {
            ts: 0,
            seq,
            ack,
            syn: false,
            fin: false,
            payload,
            wire_len: payload.len() as u32,
        };
        r.segment(&seg(100, Some(7), b"abc"), &mut b, &mut sink);
        r.segment(&seg(106, Some(8), b"gh"), &mut b, &mut sink); // held
        r.segment(&seg(103, Some(9), b"def"), &mut b, &mut sink);
        assert_eq!(
            got,
            [(100, Some(7), 3), (103, Some(9), 3), (106, Some(8), 2)]
        );
        assert_eq!(r.next_seq(), Some(108));
    }

    #[test]
    fn snaplen_truncation_is_a_gap() {
        let mut t = T::new();
        t.seg_full(0, true, false, b"", 0);
        t.seg_full(1, false, false, b"head", 10);
        t.seg(11, b"next");
        assert_eq!(t.text(), "head<gap 6>next");
    }

    #[test]
    fn finish_reports_holes_and_missing_tail() {
        let mut t = T::new();
        t.seg_full(0, true, false, b"", 0);
        t.seg(1, b"a");
        t.seg(5, b"e");
        t.seg_full(6, false, true, b"", 0); // FIN at offset 5... after "e" at offset 4
        t.seg_full(20, false, false, b"", 0);
        t.finish();
        assert_eq!(t.text(), "a<gap 3>e");
        assert!(t.r.ended());
    }

    #[test]
    fn fin_ends_stream_when_reached() {
        let mut t = T::new();
        t.seg_full(0, true, false, b"", 0);
        t.seg_full(1, false, true, b"bye", 3);
        assert!(t.r.ended());
        t.seg(1, b"bye");
        assert_eq!(t.r.stats.retrans_bytes, 3);
    }

    #[test]
    fn mid_stream_start() {
        let mut t = T::new();
        t.seg(5000, b"middle ");
        t.seg(5007, b"of it");
        assert_eq!(t.text(), "middle of it");
        assert!(!t.r.syn_seen);
    }

    #[test]
    fn buffer_bound_gives_up_holes() {
        let mut t = T::new();
        t.b.per_direction = 10;
        t.seg_full(0, true, false, b"", 0);
        t.seg(11, b"12345678"); // held: 8 bytes
        t.seg(31, b"abcdefgh"); // does not fit with the first: hole 1..11 given up
        assert_eq!(t.text(), "<gap 10>12345678");
        t.finish();
        assert_eq!(t.text(), "<gap 10>12345678<gap 12>abcdefgh");
        assert_eq!(t.b.used, 0);
        assert!(t.r.stats.ooo_overflows >= 1);
    }

    #[test]
    fn old_data_before_start_is_ignored() {
        let mut t = T::new();
        t.seg(1000, b"abc");
        t.seg(990, b"0123456789abc"); // begins before the stream start, overlaps it
        t.seg(1003, b"d");
        assert_eq!(t.text(), "abcd");
    }
}
