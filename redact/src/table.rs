//! The redactor: per-direction state for socket payload (by socket cookie and direction) and
//! for packets (by interface and TCP 4-tuple, in sequence-number order), bounded.
//!
//! Packets: bytes are redacted in sequence order. A segment that repeats bytes already seen
//! (a retransmission, the same packet on a second interface of the same key) gets the same
//! changes again from a short log of recent changes; bytes older than that log, and bytes a
//! gap was already declared over (a segment that arrived late), are overwritten whole and
//! counted ([`Counts::late_bytes_filled`]).

use std::collections::VecDeque;
use std::hash::Hash;

use rustc_hash::FxHashMap;

use crate::packet::{self, FIN, FlowKey, RST, SYN};
use crate::stream::Stream;
use crate::{Counts, FILL, Policy};

/// Direction of a socket data event: bytes the socket sent.
pub const DIR_SEND: u8 = 1;

/// The stream id under which a socket's TLS plaintext (Juno's TLS data events) is redacted,
/// apart from the socket's own (ciphertext) stream `cookie`: its complement (a socket cookie
/// is a kernel address, so the complement is never another socket's).
pub fn tls_stream(cookie: u64) -> u64 {
    !cookie
}
/// Direction of a socket data event: bytes the socket received.
pub const DIR_RECV: u8 = 2;
/// A stream offset that is not known.
pub const OFFSET_UNKNOWN: u64 = u64::MAX;

/// Changes remembered per packet direction, to repeat them on retransmissions.
const EDITS: usize = 32;
const EDIT_BYTES: usize = 16 << 10;
/// Gaps remembered per packet direction.
const GAPS: usize = 16;
/// A jump in sequence numbers larger than this starts the direction afresh.
const MAX_JUMP: u32 = 64 << 20;

/// A bounded map: two generations; a key not used during a whole generation is dropped.
#[derive(Debug)]
struct Generations<K, V> {
    cur: FxHashMap<K, V>,
    old: FxHashMap<K, V>,
    half: usize,
}

impl<K: Hash + Eq + Copy, V: Default> Generations<K, V> {
    fn new(cap: usize) -> Self {
        Generations {
            cur: FxHashMap::default(),
            old: FxHashMap::default(),
            half: (cap / 2).max(1),
        }
    }

    fn get(&mut self, k: K, evicted: &mut u64) -> &mut V {
        if self.cur.len() >= self.half {
            *evicted += self.old.len() as u64;
            self.old = std::mem::take(&mut self.cur);
        }
        let old = &mut self.old;
        self.cur
            .entry(k)
            .or_insert_with(|| old.remove(&k).unwrap_or_default())
    }

    fn remove(&mut self, k: &K) {
        self.cur.remove(k);
        self.old.remove(k);
    }

    fn len(&self) -> usize {
        self.cur.len() + self.old.len()
    }
}

#[derive(Debug)]
struct SockDir {
    s: Stream,
    next: u64,
}

impl Default for SockDir {
    fn default() -> Self {
        SockDir {
            s: Stream::new(),
            next: OFFSET_UNKNOWN,
        }
    }
}

#[derive(Debug, Default)]
struct PktDir {
    s: Stream,
    next: Option<u32>,
    /// Recent changes: (sequence number of the first byte, the bytes written).
    edits: VecDeque<(u32, Vec<u8>)>,
    edit_bytes: usize,
    /// Ranges (start, length) the stream was told were lost.
    gaps: VecDeque<(u32, u32)>,
    /// Changes before this sequence number are forgotten.
    forgotten: Option<u32>,
}

/// Whether sequence number `a` comes before `b`.
fn before(a: u32, b: u32) -> bool {
    (a.wrapping_sub(b) as i32) < 0
}

impl PktDir {
    fn forget(&mut self, upto: u32) {
        if self.forgotten.is_none_or(|f| before(f, upto)) {
            self.forgotten = Some(upto);
        }
    }

    fn note_gap(&mut self, start: u32, len: u32) {
        if let Some(last) = self.gaps.back_mut()
            && last.0.wrapping_add(last.1) == start
        {
            last.1 = last.1.saturating_add(len);
            return;
        }
        if self.gaps.len() == GAPS
            && let Some((s, l)) = self.gaps.pop_front()
        {
            self.forget(s.wrapping_add(l));
        }
        self.gaps.push_back((start, len));
    }

    /// Remembers what a segment whose bytes changed became (all of it: the bytes that did
    /// not change are the same in a retransmission anyway).
    fn note_edits(&mut self, seq: u32, now: &[u8]) {
        self.edit_bytes += now.len();
        self.edits.push_back((seq, now.to_vec()));
        while self.edits.len() > EDITS || self.edit_bytes > EDIT_BYTES {
            match self.edits.pop_front() {
                Some((s, b)) => {
                    self.edit_bytes -= b.len();
                    self.forget(s.wrapping_add(b.len() as u32));
                }
                None => break,
            }
        }
    }

    /// Bytes at `seq` that were already seen (or declared lost): the same changes again.
    fn repeat(&self, seq: u32, bytes: &mut [u8], counts: &mut Counts) -> bool {
        let len = bytes.len() as u32;
        let mut changed = false;
        let mut fill = |from: u32, n: u32, bytes: &mut [u8], counts: &mut Counts| {
            // [from, from+n) ∩ [seq, seq+len)
            let s = if before(from, seq) { seq } else { from };
            let e_from = from.wrapping_add(n);
            let e = if before(e_from, seq.wrapping_add(len)) {
                e_from
            } else {
                seq.wrapping_add(len)
            };
            if !before(s, e) {
                return;
            }
            let (a, b) = (s.wrapping_sub(seq) as usize, e.wrapping_sub(seq) as usize);
            for x in &mut bytes[a..b] {
                if *x != FILL {
                    *x = FILL;
                    counts.late_bytes_filled += 1;
                    counts.bytes += 1;
                    changed = true;
                }
            }
        };
        if let Some(f) = self.forgotten
            && before(seq, f)
        {
            fill(seq, f.wrapping_sub(seq), bytes, counts);
        }
        for &(s, l) in &self.gaps {
            fill(s, l, bytes, counts);
        }
        for (s, b) in &self.edits {
            let off = s.wrapping_sub(seq);
            if (off as i32) >= 0 {
                let off = off as usize;
                if off < bytes.len() {
                    let n = b.len().min(bytes.len() - off);
                    if bytes[off..off + n] != b[..n] {
                        bytes[off..off + n].copy_from_slice(&b[..n]);
                        changed = true;
                    }
                }
            } else {
                let skip = seq.wrapping_sub(*s) as usize;
                if skip < b.len() {
                    let n = (b.len() - skip).min(bytes.len());
                    if bytes[..n] != b[skip..skip + n] {
                        bytes[..n].copy_from_slice(&b[skip..skip + n]);
                        changed = true;
                    }
                }
            }
        }
        changed
    }
}

/// The redactor of one recorder or one analysis: a policy, per-direction state, counts.
#[derive(Debug)]
pub struct Redactor {
    policy: Policy,
    counts: Counts,
    socks: Generations<(u64, u8), SockDir>,
    packets: Generations<(u32, FlowKey), PktDir>,
}

impl Redactor {
    /// A redactor keeping state for at most about `max_streams` socket directions and as many
    /// packet directions.
    pub fn new(policy: Policy, max_streams: usize) -> Self {
        Redactor {
            policy,
            counts: Counts::default(),
            socks: Generations::new(max_streams),
            packets: Generations::new(max_streams),
        }
    }

    /// The policy.
    pub fn policy(&self) -> &Policy {
        &self.policy
    }

    /// What was redacted so far.
    pub fn counts(&self) -> &Counts {
        &self.counts
    }

    /// Directions with state.
    pub fn streams(&self) -> usize {
        self.socks.len() + self.packets.len()
    }

    /// Redacts the payload of a socket data event in place. `dir` is [`DIR_SEND`] or
    /// [`DIR_RECV`]; `offset` the event's stream offset ([`OFFSET_UNKNOWN`] if not known);
    /// `orig_len` the bytes the call moved (more than `payload` when it was cut). Returns
    /// whether anything changed.
    pub fn socket_data(
        &mut self,
        cookie: u64,
        dir: u8,
        offset: u64,
        orig_len: u32,
        payload: &mut [u8],
    ) -> bool {
        if self.policy.is_off() {
            return false;
        }
        let d = self
            .socks
            .get((cookie, dir), &mut self.counts.streams_evicted);
        if offset != OFFSET_UNKNOWN && d.next != OFFSET_UNKNOWN && offset > d.next {
            d.s.gap(offset - d.next, &self.policy, &mut self.counts);
        }
        let changed = d.s.feed(payload, &self.policy, &mut self.counts);
        let cut = u64::from(orig_len).saturating_sub(payload.len() as u64);
        d.s.gap(cut, &self.policy, &mut self.counts);
        let moved = u64::from(orig_len).max(payload.len() as u64);
        d.next = if offset != OFFSET_UNKNOWN {
            offset.saturating_add(moved)
        } else if d.next != OFFSET_UNKNOWN {
            d.next.saturating_add(moved)
        } else {
            OFFSET_UNKNOWN
        };
        changed
    }

    /// A socket is gone: its state is dropped.
    pub fn socket_closed(&mut self, cookie: u64) {
        self.socks.remove(&(cookie, DIR_SEND));
        self.socks.remove(&(cookie, DIR_RECV));
    }

    /// Redacts the TCP payload of a captured packet in place (`linktype`: pcap link type;
    /// `iface`: the capture interface, so that copies of a packet on two interfaces are
    /// followed apart). Returns whether anything changed.
    pub fn packet(&mut self, linktype: u32, iface: u32, data: &mut [u8]) -> bool {
        if self.policy.is_off() {
            return false;
        }
        let Some(seg) = packet::segment(linktype, data) else {
            return false;
        };
        let key = (iface, seg.key);
        if seg.flags & RST != 0 {
            self.packets.remove(&key);
            return false;
        }
        let d = self.packets.get(key, &mut self.counts.streams_evicted);
        let mut seq = seg.seq;
        if seg.flags & SYN != 0 {
            *d = PktDir::default();
            seq = seq.wrapping_add(1);
            d.next = Some(seq);
        }
        let mut next = *d.next.get_or_insert(seq);
        let jump = seq.wrapping_sub(next);
        if !before(seq, next) && jump > MAX_JUMP {
            // Not the same byte stream any more (a new connection on the same ports).
            *d = PktDir::default();
            next = seq;
        } else if !before(seq, next) && jump > 0 {
            d.s.gap(u64::from(jump), &self.policy, &mut self.counts);
            d.note_gap(next, jump);
            next = seq;
        }
        let payload = &mut data[seg.payload.clone()];
        let mut changed = false;
        // Bytes before `next` were seen (or declared lost) already.
        let seen = if before(seq, next) {
            (next.wrapping_sub(seq) as usize).min(payload.len())
        } else {
            0
        };
        if seen > 0 {
            changed |= d.repeat(seq, &mut payload[..seen], &mut self.counts);
        }
        let fresh = &mut payload[seen..];
        if !fresh.is_empty() {
            if d.s.feed(fresh, &self.policy, &mut self.counts) {
                d.note_edits(next, fresh);
                changed = true;
            }
            next = next.wrapping_add(fresh.len() as u32);
        }
        let end = seq.wrapping_add(seg.wire_len);
        if before(next, end) {
            // Cut by the snap length, or headers only: the rest is not here.
            let n = end.wrapping_sub(next);
            d.s.gap(u64::from(n), &self.policy, &mut self.counts);
            d.note_gap(next, n);
            next = end;
        }
        if seg.flags & FIN != 0 {
            next = next.wrapping_add(1);
        }
        if d.next.is_none_or(|n| before(n, next)) {
            d.next = Some(next);
        }
        changed
    }
}
