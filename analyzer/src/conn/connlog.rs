//! Zeek's view of a packet-vantage connection, for conn.log: which end is the originator,
//! each endpoint's TCP state, the history letters, sizes from sequence numbers, packets and
//! IP bytes, and the bytes the peer acknowledged that the capture never had (`missed_bytes`).
//!
//! This follows Zeek's own rules (its `TCPSessionAdapter`, `TCP_Endpoint`, `TCP_Reassembler`,
//! UDP analyzer and `base/protocols/conn`), rule for rule where Juno sees the same packets;
//! docs/zeek.md lists where it differs (connection splitting follows Juno's packet table,
//! checksums are not validated). It only observes: it never changes what the rest of the
//! connection machinery does.

use crate::decode::{Decoded, flags};
use crate::model::{ConnLog, Endpoint, Transport, Ts};

/// SYN or RST sequence jumps larger than this are not trusted (Zeek's `TOO_LARGE_SEQ_DELTA`).
const TOO_LARGE_SEQ_DELTA: i32 = 1_048_576;
/// Bytes buffered above a hole while none of the sender's data was acknowledged, after which
/// no more gaps are reported for that direction (`tcp_max_above_hole_without_any_acks`).
const MAX_ABOVE_HOLE_WITHOUT_ACKS: u64 = 16_384;
/// Bytes buffered above holes, after which no more gaps are reported for that direction
/// (`tcp_excessive_data_without_further_acks`).
const MAX_BUFFERED: u64 = 10 << 20;
/// Out-of-order ranges remembered per direction; beyond, gaps are no longer reported for it
/// (memory stays bounded, like Zeek's `skip_deliveries`).
const MAX_RANGES: usize = 1024;

/// TCP ports Zeek's default scripts register as server ports (`likely_server_ports`).
const LIKELY_TCP: &[u16] = &[
    21, 22, 25, 53, 79, 80, 81, 88, 135, 139, 143, 389, 443, 445, 465, 502, 514, 563, 585, 587,
    614, 631, 636, 989, 990, 992, 993, 995, 1080, 1434, 1883, 2811, 3128, 3268, 3306, 3389, 5222,
    5223, 5269, 5432, 6379, 6666, 6667, 6668, 6669, 8000, 8080, 8888, 20000,
];
/// UDP ports Zeek's default scripts and packet analyzers register as server ports.
const LIKELY_UDP: &[u16] = &[
    53, 67, 88, 123, 137, 161, 162, 389, 443, 514, 1812, 2123, 2152, 3389, 3544, 4011, 4754, 4789,
    5060, 5072, 5353, 5355, 6081, 20000,
];

fn likely_server(t: Transport, port: u16) -> bool {
    match t {
        Transport::Tcp => LIKELY_TCP.contains(&port),
        Transport::Udp => LIKELY_UDP.contains(&port),
    }
}

fn seq_delta(a: u32, b: u32) -> i32 {
    a.wrapping_sub(b) as i32
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
enum St {
    #[default]
    Inactive,
    SynSent,
    SynAckSent,
    Partial,
    Established,
    Closed,
    Reset,
}

/// A history letter that is added at counts 1, 10, 100, … (Zeek's `ScaledHistoryEntry`).
#[derive(Clone, Copy, Debug)]
struct Scaled {
    count: u32,
    threshold: u32,
}

impl Default for Scaled {
    fn default() -> Self {
        Scaled {
            count: 0,
            threshold: 1,
        }
    }
}

impl Scaled {
    fn hit(&mut self) -> bool {
        self.count = self.count.saturating_add(1);
        if self.count == self.threshold {
            match self.threshold.checked_mul(10) {
                Some(t) => self.threshold = t,
                None => self.count = 0,
            }
            true
        } else {
            false
        }
    }
}

/// One TCP endpoint (Zeek's `TCP_Endpoint`) and its packet counters.
#[derive(Clone, Debug, Default)]
struct Ep {
    state: St,
    prev_state: St,
    start: i64,
    last_seq: u32,
    ack_seq: u32,
    seq_wraps: u32,
    ack_wraps: u32,
    fin_cnt: u32,
    fin_seq: u64,
    did_close: bool,
    hist_last_syn: u64,
    hist_last_fin: u64,
    hist_last_rst: u64,
    rxmt: Scaled,
    win0: Scaled,
    gaps: Scaled,
    pkts: u64,
    ip_bytes: u64,
    /// UDP: payload bytes (UDP length − 8).
    udp_bytes: u64,
    /// Everything below this relative sequence number was delivered or declared missing.
    trim: u64,
    /// Out-of-order data above `trim`: sorted, disjoint `[start, end)`.
    ranges: Vec<(u64, u64)>,
    /// No more gaps are reported (a bound was hit).
    skip: bool,
    missed: u64,
}

impl Ep {
    fn set_state(&mut self, s: St) {
        if s != self.state {
            self.prev_state = self.state;
            self.state = s;
        }
    }

    fn start_seq(&self) -> u32 {
        self.start as u32
    }

    fn full(seq: u32, wraps: u32) -> u64 {
        (u64::from(wraps) << 32) + u64::from(seq)
    }

    fn update_last_seq(&mut self, seq: u32) {
        if seq < self.last_seq {
            self.seq_wraps += 1;
        }
        self.last_seq = seq;
    }

    fn update_ack_seq(&mut self, seq: u32) {
        if seq < self.ack_seq {
            self.ack_wraps += 1;
        }
        self.ack_seq = seq;
    }

    fn init(&mut self, start: u32, last: u32) {
        self.start = i64::from(start);
        self.ack_seq = start;
        self.last_seq = last;
    }

    fn no_data_acked(&self) -> bool {
        let ack = Self::full(self.ack_seq, self.ack_wraps);
        let start = self.start as u64;
        ack == start || ack == start.wrapping_add(1)
    }

    fn clean(&self) -> bool {
        self.state == St::Established
            || (self.state == St::Closed && self.prev_state == St::Established)
    }

    fn buffered(&self) -> u64 {
        self.ranges.iter().map(|(a, b)| b - a).sum()
    }
}

/// Sizes from sequence numbers (Zeek's `TCP_Endpoint::Size`).
fn size(e: &Ep, peer: &Ep) -> u64 {
    if e.prev_state == St::SynSent
        && e.state == St::Reset
        && peer.state == St::Inactive
        && !e.no_data_acked()
    {
        return 0;
    }
    let last = Ep::full(e.last_seq, e.seq_wraps);
    let ack = Ep::full(e.ack_seq, e.ack_wraps);
    let mut size = last.max(ack).wrapping_sub(e.start as u64).saturating_sub(1);
    if e.fin_cnt > 0 && size != 0 {
        size -= 1;
    }
    size
}

/// Relative sequence number of `cur` (Zeek's `get_relative_seq`): the value and whether it
/// lies before the endpoint's start.
fn relative(start: u32, start64: i64, cur: u32, last: u32, mut wraps: u32) -> (u64, bool) {
    let delta = seq_delta(cur, last);
    if delta < 0 {
        if wraps > 0 && cur > last {
            wraps -= 1;
        }
    } else if delta > 0 && cur < last {
        wraps += 1;
    }
    if wraps == 0 {
        let d = seq_delta(cur, start);
        return (i64::from(d) as u64, d < 0);
    }
    (Ep::full(cur, wraps).wrapping_sub(start64 as u64), false)
}

/// Zeek's view of one connection, fed every packet of it.
#[derive(Clone, Debug)]
pub(crate) struct ConnTracker {
    transport: Transport,
    /// `ends[0]` sent the first packet.
    ends: [Endpoint; 2],
    ep: [Ep; 2],
    /// Which of `ends` is the originator.
    orig: usize,
    history: String,
    /// Once-per-direction history letters already added (Zeek's mask, never swapped).
    seen: u32,
    first_ts: Ts,
    last_ts: Ts,
    /// When the originator's SYN started a connection attempt.
    attempt_ts: Option<Ts>,
}

/// An unanswered connection attempt ends this long after its SYN (Zeek's `tcp_attempt_delay`).
pub(crate) const ATTEMPT_NS: u64 = 5_000_000_000;

const HIST_SYN: u32 = 0x1;
const HIST_FIN: u32 = 0x2;
const HIST_RST: u32 = 0x4;
const HIST_FIN_RST: u32 = 0x8;
const HIST_ACK: u32 = 0x10;
const HIST_DATA: u32 = 0x20;
const HIST_MULTI: u32 = 0x40;

impl ConnTracker {
    /// A connection whose first packet is `d` (its sender becomes the originator unless
    /// Zeek's port rule flips it).
    pub(crate) fn new(d: &Decoded<'_>, ts: Ts) -> Self {
        let mut t = ConnTracker {
            transport: d.transport,
            ends: [d.src, d.dst],
            ep: [Ep::default(), Ep::default()],
            orig: 0,
            history: String::new(),
            seen: 0,
            first_ts: ts,
            last_ts: ts,
            attempt_ts: None,
        };
        let syn = d.flags & flags::SYN != 0;
        let ack = d.flags & flags::ACK != 0;
        let pure_syn = d.transport == Transport::Tcp && syn && !ack;
        let broadcast = d.dst.ip() == std::net::IpAddr::from([255, 255, 255, 255]);
        if !pure_syn && !broadcast {
            let (s, r) = (
                likely_server(d.transport, d.src.port),
                likely_server(d.transport, d.dst.port),
            );
            let flip = match d.transport {
                Transport::Udp => s && !r,
                Transport::Tcp => s && (!r || (!(syn && ack) && d.src.port < d.dst.port)),
            };
            if flip {
                t.flip();
            }
        }
        t
    }

    fn flip(&mut self) {
        self.orig ^= 1;
        self.history.push('^');
    }

    fn is_orig(&self, side: usize) -> bool {
        side == self.orig
    }

    fn add_history(&mut self, side: usize, code: char) {
        let c = if self.is_orig(side) {
            code
        } else {
            code.to_ascii_lowercase()
        };
        self.history.push(c);
    }

    /// Zeek's `CheckHistory`: adds the letter the first time; true when it was seen before.
    fn check_history(&mut self, side: usize, mask: u32, code: char) -> bool {
        if self.transport == Transport::Tcp && (code == 'A' || code == 'D') && self.history == "H" {
            // A connection that began with a SYN-ACK, now productive: flip it.
            self.orig ^= 1;
            self.history = "^h".into();
        }
        let (mask, c) = if self.is_orig(side) {
            (mask, code)
        } else {
            (mask << 16, code.to_ascii_lowercase())
        };
        if self.seen & mask == 0 {
            self.seen |= mask;
            self.history.push(c);
            false
        } else {
            true
        }
    }

    fn scaled(&mut self, side: usize, which: u8, code: char) {
        let e = &mut self.ep[side];
        let hit = match which {
            0 => e.rxmt.hit(),
            1 => e.win0.hit(),
            _ => e.gaps.hit(),
        };
        if hit {
            self.add_history(side, code);
        }
    }

    /// Feeds one packet.
    pub(crate) fn packet(&mut self, d: &Decoded<'_>, ts: Ts) {
        let side = usize::from(d.src != self.ends[0]);
        match self.transport {
            Transport::Udp => self.udp(side, d, ts),
            Transport::Tcp => self.tcp(side, d, ts),
        }
        let e = &mut self.ep[side];
        e.pkts += 1;
        e.ip_bytes += u64::from(d.ip_len);
    }

    fn udp(&mut self, side: usize, d: &Decoded<'_>, ts: Ts) {
        self.last_ts = ts;
        let e = &mut self.ep[side];
        e.state = St::Established;
        e.udp_bytes += u64::from(d.wire_len);
        // Zeek's UDP masks are per role, not shifted.
        let (mask, code) = if self.is_orig(side) {
            (1u32 << 20, 'D')
        } else {
            (1u32 << 21, 'd')
        };
        if self.seen & mask == 0 {
            self.seen |= mask;
            self.history.push(code);
        }
    }

    fn tcp(&mut self, side: usize, d: &Decoded<'_>, ts: Ts) {
        let peer_side = side ^ 1;
        let syn = d.flags & flags::SYN != 0;
        let fin = d.flags & flags::FIN != 0;
        let rst = d.flags & flags::RST != 0;
        let ackf = d.flags & flags::ACK != 0;
        let len = d.wire_len;
        let is_orig = self.is_orig(side);
        let mut seg_len = len + u32::from(syn) + u32::from(fin);
        if rst {
            seg_len -= len;
        }
        let base = d.seq;
        let past = base.wrapping_add(seg_len);
        // init_endpoint
        {
            let e = &mut self.ep[side];
            match e.state {
                St::Inactive => {
                    if syn {
                        e.init(base, past);
                    } else {
                        let s = base.wrapping_sub(1);
                        e.init(s, base);
                    }
                }
                St::SynSent | St::SynAckSent => {
                    if syn && base != e.start_seq() {
                        e.init(base, past);
                    }
                }
                St::Established | St::Partial => {
                    if syn {
                        e.init(base, past);
                    }
                }
                St::Reset => {
                    if syn && e.prev_state == St::Inactive {
                        e.init(base, past);
                    }
                }
                St::Closed => {}
            }
        }
        let e = &self.ep[side];
        let (rel_seq, underflow) = relative(e.start_seq(), e.start, base, e.last_seq, e.seq_wraps);
        // update_history
        let bits = u8::from(syn) + u8::from(fin) + u8::from(rst);
        if bits > 1 {
            if fin && rst {
                self.check_history(side, HIST_FIN_RST, 'I');
            } else {
                self.check_history(side, HIST_MULTI, 'Q');
            }
        } else if bits == 1 {
            if syn {
                let code = if ackf { 'H' } else { 'S' };
                if self.check_history(side, HIST_SYN, code)
                    && rel_seq != self.ep[side].hist_last_syn
                {
                    self.add_history(side, code);
                }
                self.ep[side].hist_last_syn = rel_seq;
            }
            if fin {
                let at = rel_seq.wrapping_add(u64::from(len));
                if self.check_history(side, HIST_FIN, 'F') && at != self.ep[side].hist_last_fin {
                    self.add_history(side, 'F');
                }
                self.ep[side].hist_last_fin = at;
            }
            if rst {
                if self.check_history(side, HIST_RST, 'R') && rel_seq != self.ep[side].hist_last_rst
                {
                    self.add_history(side, 'R');
                }
                self.ep[side].hist_last_rst = rel_seq;
            }
        } else if len > 0 {
            self.check_history(side, HIST_DATA, 'D');
        } else if ackf {
            self.check_history(side, HIST_ACK, 'A');
        }
        // update_window: zero windows.
        if d.window == 0
            && !rst
            && self.ep[peer_side].state != St::Closed
            && self.ep[side].state != St::Reset
        {
            self.scaled(side, 1, 'W');
        }
        if !(self.ep[0].did_close && self.ep[1].did_close) {
            self.last_ts = ts;
        }
        if fin {
            let e = &mut self.ep[side];
            e.fin_cnt += 1;
            e.fin_seq = rel_seq.wrapping_add(u64::from(seg_len));
        }
        let mut rel_ack = 0u64;
        if ackf {
            let p = &mut self.ep[peer_side];
            if p.state == St::Inactive {
                rel_ack = 1;
                let s = d.ack.wrapping_sub(1);
                p.start = i64::from(s);
                p.ack_seq = s;
                p.last_seq = s;
            } else {
                let (r, under) = relative(p.start_seq(), p.start, d.ack, p.ack_seq, p.ack_wraps);
                if under {
                    rel_ack = 0;
                } else {
                    rel_ack = r;
                    if !rst {
                        let delta = seq_delta(d.ack, p.ack_seq);
                        if !(d.ack == 0 && delta > TOO_LARGE_SEQ_DELTA) && delta > 0 {
                            p.update_ack_seq(d.ack);
                        }
                    }
                }
            }
        }
        // update_last_seq
        let delta_last = {
            let e = &mut self.ep[side];
            let delta = seq_delta(past, e.last_seq);
            let mut rxmit = false;
            if (syn || rst) && !(-TOO_LARGE_SEQ_DELTA..=TOO_LARGE_SEQ_DELTA).contains(&delta) {
            } else if fin && e.last_seq == e.start_seq().wrapping_add(1) {
                e.update_last_seq(past);
            } else if e.state == St::Reset {
            } else if delta > 0 {
                e.update_last_seq(past);
            } else if len > 0 {
                rxmit = true;
            }
            if rxmit {
                self.scaled(side, 0, 'T');
            }
            delta
        };
        let do_close = self.state_machine(side, is_orig, d, base, delta_last);
        if ackf {
            self.ack_received(peer_side, rel_ack);
        }
        let captured = d.payload.len() as u64 >= u64::from(len);
        if len > 0 && captured && !rst && !underflow {
            let at = if syn { rel_seq + 1 } else { rel_seq };
            self.data_sent(side, at, u64::from(len));
        }
        if do_close {
            self.ep[side].did_close = true;
        }
    }

    /// Zeek's `UpdateStateMachine`; returns whether the sender closed.
    fn state_machine(
        &mut self,
        side: usize,
        is_orig: bool,
        d: &Decoded<'_>,
        base: u32,
        delta_last: i32,
    ) -> bool {
        let peer_side = side ^ 1;
        let syn = d.flags & flags::SYN != 0;
        let fin = d.flags & flags::FIN != 0;
        let rst = d.flags & flags::RST != 0;
        let ackf = d.flags & flags::ACK != 0;
        let len = d.wire_len;
        let mut do_close = false;
        match self.ep[side].state {
            St::Inactive => {
                if syn {
                    if is_orig {
                        let s = if ackf { St::SynAckSent } else { St::SynSent };
                        self.ep[side].set_state(s);
                        self.attempt_ts = Some(self.last_ts);
                    } else {
                        if !ackf
                            && self.ep[peer_side].state == St::SynAckSent
                            && base == self.ep[side].start_seq()
                        {
                            // SYN/SYN-ACK seen reversed.
                            self.flip();
                            self.ep[peer_side].set_state(St::Established);
                        }
                        if self.ep[peer_side].state == St::SynSent {
                            self.ep[peer_side].set_state(St::Established);
                        }
                        self.ep[side].set_state(St::Established);
                    }
                }
                if fin {
                    self.ep[side].set_state(St::Closed);
                    do_close = true;
                }
                if rst {
                    self.ep[side].set_state(St::Reset);
                    do_close = true;
                }
                if self.ep[side].state == St::Inactive {
                    let orig_state = self.ep[self.orig].state;
                    if !is_orig && len == 0 && orig_state == St::SynSent {
                    } else if ackf && self.ep[peer_side].state == St::Established {
                        self.ep[side].set_state(St::Established);
                    } else {
                        self.ep[side].set_state(St::Partial);
                    }
                }
            }
            St::SynSent | St::SynAckSent => {
                if fin {
                    self.ep[side].set_state(St::Closed);
                    do_close = true;
                }
                if rst {
                    self.ep[side].set_state(St::Reset);
                    do_close = true;
                }
            }
            St::Established | St::Partial => {
                if syn
                    && self.ep[side].state == St::Partial
                    && self.ep[peer_side].state == St::Inactive
                    && !ackf
                {
                    self.ep[side].set_state(St::SynSent);
                }
                if fin && !rst {
                    self.ep[side].set_state(St::Closed);
                    let p = &mut self.ep[peer_side];
                    if p.state == St::Reset && p.prev_state == St::Closed {
                        p.set_state(St::Closed);
                    }
                    do_close = true;
                }
                if rst {
                    self.ep[side].set_state(St::Reset);
                    do_close = true;
                }
            }
            St::Closed => {
                let _ = delta_last;
                if rst && self.ep[peer_side].state != St::Closed {
                    self.ep[side].set_state(St::Reset);
                    if !self.ep[side].did_close {
                        do_close = true;
                    }
                }
            }
            St::Reset => {}
        }
        do_close
    }

    /// The peer acknowledged `side`'s data up to relative sequence `seq`: what was never
    /// captured below it is missing (Zeek's `AckReceived` → `Undelivered` → `Gap`).
    fn ack_received(&mut self, side: usize, seq: u64) {
        let peer = side ^ 1;
        let both_clean = self.ep[side].clean() && self.ep[peer].clean();
        let e = &mut self.ep[side];
        let seq = if e.fin_cnt > 0 && seq >= e.fin_seq {
            e.fin_seq.saturating_sub(1)
        } else {
            seq
        };
        if e.trim == 0 {
            e.trim = 1;
        }
        if seq <= e.trim {
            return;
        }
        let mut missing = 0u64;
        let mut at = e.trim;
        let mut keep = Vec::new();
        for &(a, b) in &e.ranges {
            if a >= seq {
                keep.push((a, b));
                continue;
            }
            if a > at {
                missing += a - at;
            }
            at = at.max(b);
            if b > seq {
                keep.push((seq, b));
            }
        }
        if seq > at {
            missing += seq - at;
        }
        e.ranges = keep;
        e.trim = seq.max(at.min(seq));
        let report = missing > 0 && !e.skip && both_clean;
        if report {
            e.missed += missing;
            self.scaled(side, 2, 'G');
        }
        let e = &mut self.ep[side];
        // Data now contiguous with the trimmed point is delivered.
        while let Some(&(a, b)) = e.ranges.first() {
            if a <= e.trim {
                e.trim = e.trim.max(b);
                e.ranges.remove(0);
            } else {
                break;
            }
        }
    }

    /// `side` sent payload `[at, at + len)` (relative sequence numbers), captured whole.
    fn data_sent(&mut self, side: usize, at: u64, len: u64) {
        let e = &mut self.ep[side];
        if e.trim == 0 {
            e.trim = 1;
        }
        let (mut a, b) = (at.max(e.trim), at + len);
        if b <= a {
            return;
        }
        if a == e.trim {
            e.trim = b;
            while let Some(&(x, y)) = e.ranges.first() {
                if x <= e.trim {
                    e.trim = e.trim.max(y);
                    e.ranges.remove(0);
                } else {
                    break;
                }
            }
            return;
        }
        if e.skip {
            return;
        }
        // Insert [a, b), merging overlaps.
        let mut out = Vec::with_capacity(e.ranges.len() + 1);
        let mut end = b;
        let mut placed = false;
        for &(x, y) in &e.ranges {
            if y < a {
                out.push((x, y));
            } else if x > end {
                if !placed {
                    out.push((a, end));
                    placed = true;
                }
                out.push((x, y));
            } else {
                a = a.min(x);
                end = end.max(y);
            }
        }
        if !placed {
            out.push((a, end));
        }
        e.ranges = out;
        let buffered = e.buffered();
        if e.ranges.len() > MAX_RANGES
            || buffered > MAX_BUFFERED
            || (e.no_data_acked() && buffered > MAX_ABOVE_HOLE_WITHOUT_ACKS)
        {
            e.ranges.clear();
            e.skip = true;
        }
    }

    /// The DNS parser found the first message to be a response from the originator: Zeek's
    /// DNS analyzer flips the roles right after the first packet.
    pub(crate) fn flip_after_first_packet(&mut self) {
        self.orig ^= 1;
        let at = self.history.chars().next().map_or(0, char::len_utf8);
        self.history.insert(at, '^');
    }

    /// Zeek's attempt timer: the originator's SYN went unanswered for [`ATTEMPT_NS`] at `now`,
    /// so the attempt is over and the next packet starts another connection.
    pub(crate) fn attempt_expired(&self, now: Ts) -> bool {
        let (o, r) = (&self.ep[self.orig], &self.ep[self.orig ^ 1]);
        self.transport == Transport::Tcp
            && matches!(o.state, St::SynSent | St::SynAckSent)
            && r.state == St::Inactive
            && self
                .attempt_ts
                .is_some_and(|t| now >= t.saturating_add(ATTEMPT_NS))
    }

    /// The originator as Zeek decides it.
    pub(crate) fn orig(&self) -> Endpoint {
        self.ends[self.orig]
    }

    /// conn.log's values.
    pub(crate) fn log(&self) -> ConnLog {
        let (o, r) = (&self.ep[self.orig], &self.ep[self.orig ^ 1]);
        let (orig_bytes, resp_bytes, conn_state) = match self.transport {
            Transport::Udp => {
                let oa = o.state != St::Inactive;
                let ra = r.state != St::Inactive;
                let st = match (oa, ra) {
                    (true, true) => "SF",
                    (true, false) => "S0",
                    (false, true) => "SHR",
                    (false, false) => "OTH",
                };
                (o.udp_bytes, r.udp_bytes, st)
            }
            Transport::Tcp => (size(o, r), size(r, o), self.tcp_state(o, r)),
        };
        ConnLog {
            orig: self.ends[self.orig],
            resp: self.ends[self.orig ^ 1],
            first_ts: self.first_ts,
            last_ts: self.last_ts,
            orig_bytes,
            resp_bytes,
            conn_state,
            missed_bytes: o.missed + r.missed,
            history: self.history.clone(),
            orig_pkts: o.pkts,
            orig_ip_bytes: o.ip_bytes,
            resp_pkts: r.pkts,
            resp_ip_bytes: r.ip_bytes,
        }
    }

    fn tcp_state(&self, o: &Ep, r: &Ep) -> &'static str {
        let (os, rs) = (o.state, r.state);
        let o_inactive = matches!(os, St::Inactive | St::Partial);
        let r_inactive = matches!(rs, St::Inactive | St::Partial);
        if rs == St::Reset {
            if matches!(os, St::SynSent | St::SynAckSent)
                || (os == St::Reset && size(o, r) == 0 && size(r, o) == 0)
            {
                "REJ"
            } else if o_inactive {
                "RSTRH"
            } else {
                "RSTR"
            }
        } else if os == St::Reset {
            if r_inactive {
                if rstos0_history(&self.history) {
                    "RSTOS0"
                } else {
                    "OTH"
                }
            } else {
                "RSTO"
            }
        } else if os == St::Closed && rs == St::Closed {
            "SF"
        } else if os == St::Closed {
            if r_inactive { "SH" } else { "S2" }
        } else if rs == St::Closed {
            if o_inactive { "SHR" } else { "S3" }
        } else if os == St::SynSent && rs == St::Inactive {
            "S0"
        } else if os == St::Established && rs == St::Established {
            "S1"
        } else {
            "OTH"
        }
    }
}

/// `/^\^?S[^HAFGIQ]*R.*/` on the whole history.
fn rstos0_history(h: &str) -> bool {
    let h = h.strip_prefix('^').unwrap_or(h);
    let Some(rest) = h.strip_prefix('S') else {
        return false;
    };
    for c in rest.chars() {
        if c == 'R' {
            return true;
        }
        if "HAFGIQ".contains(c) {
            return false;
        }
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    #[allow(clippy::too_many_arguments, reason = "a TCP packet's fields")]
    fn pkt(
        src: u8,
        sport: u16,
        dst: u8,
        dport: u16,
        fl: u8,
        seq: u32,
        ack: u32,
        len: u32,
    ) -> Decoded<'static> {
        static PAYLOAD: [u8; 2000] = [0; 2000];
        Decoded {
            src: Endpoint::new([10, 0, 0, src].into(), sport),
            dst: Endpoint::new([10, 0, 0, dst].into(), dport),
            transport: Transport::Tcp,
            seq,
            ack,
            flags: fl,
            payload: &PAYLOAD[..len as usize],
            wire_len: len,
            ip_len: 40 + len,
            window: 1000,
            tunnel: None,
        }
    }

    const S: u8 = flags::SYN;
    const A: u8 = flags::ACK;
    const F: u8 = flags::FIN;
    const R: u8 = flags::RST;

    fn run(pkts: &[Decoded<'static>]) -> ConnLog {
        let mut t = ConnTracker::new(&pkts[0], 1_000);
        for (i, p) in pkts.iter().enumerate() {
            t.packet(p, 1_000 + i as u64 * 1_000_000);
        }
        t.log()
    }

    #[test]
    fn normal_close_is_sf_with_sizes_from_sequence_numbers() {
        let l = run(&[
            pkt(1, 40000, 2, 80, S, 100, 0, 0),
            pkt(2, 80, 1, 40000, S | A, 500, 101, 0),
            pkt(1, 40000, 2, 80, A, 101, 501, 0),
            pkt(1, 40000, 2, 80, A, 101, 501, 10),
            pkt(2, 80, 1, 40000, A, 501, 111, 20),
            pkt(1, 40000, 2, 80, F | A, 111, 521, 0),
            pkt(2, 80, 1, 40000, F | A, 521, 112, 0),
            pkt(1, 40000, 2, 80, A, 112, 522, 0),
        ]);
        assert_eq!(l.history, "ShADdFf");
        assert_eq!(l.conn_state, "SF");
        assert_eq!((l.orig_bytes, l.resp_bytes), (10, 20));
        assert_eq!((l.orig_pkts, l.resp_pkts), (5, 3));
        assert_eq!((l.orig_ip_bytes, l.resp_ip_bytes), (210, 140));
        assert_eq!(l.missed_bytes, 0);
    }

    #[test]
    fn rejected_syn_is_rej() {
        let l = run(&[
            pkt(1, 40000, 2, 80, S, 100, 0, 0),
            pkt(2, 80, 1, 40000, R | A, 0, 101, 0),
        ]);
        assert_eq!((l.history.as_str(), l.conn_state), ("Sr", "REJ"));
    }

    #[test]
    fn acked_bytes_never_captured_are_missed_and_g() {
        let l = run(&[
            pkt(1, 40000, 2, 80, S, 100, 0, 0),
            pkt(2, 80, 1, 40000, S | A, 500, 101, 0),
            pkt(1, 40000, 2, 80, A, 101, 501, 0),
            pkt(1, 40000, 2, 80, A, 101, 501, 10),
            // 10 bytes at 111 never captured; the server acknowledges them.
            pkt(1, 40000, 2, 80, A, 121, 501, 5),
            pkt(2, 80, 1, 40000, A, 501, 126, 0),
        ]);
        assert_eq!(l.missed_bytes, 10);
        assert_eq!(l.history, "ShADaG");
        assert_eq!(l.orig_bytes, 25);
        assert_eq!(l.conn_state, "S1");
    }

    #[test]
    fn syn_ack_first_then_ack_flips_to_caret_h() {
        let l = run(&[
            pkt(2, 80, 1, 40000, S | A, 500, 101, 0),
            pkt(1, 40000, 2, 80, A, 101, 501, 0),
        ]);
        // Port 80 is a likely server port: flipped at creation already.
        assert_eq!(l.history, "^hA");
        assert_eq!(l.orig.port, 40000);
        let l = run(&[
            pkt(2, 6000, 1, 7000, S | A, 500, 101, 0),
            pkt(1, 7000, 2, 6000, A, 101, 501, 0),
        ]);
        assert_eq!(l.history, "^hA");
        assert_eq!(l.orig.port, 7000);
    }

    #[test]
    fn retransmissions_are_scaled_t() {
        let mut p = vec![
            pkt(1, 40000, 2, 80, S, 100, 0, 0),
            pkt(2, 80, 1, 40000, S | A, 500, 101, 0),
            pkt(1, 40000, 2, 80, A, 101, 501, 10),
        ];
        for _ in 0..10 {
            p.push(pkt(1, 40000, 2, 80, A, 101, 501, 10));
        }
        let l = run(&p);
        assert_eq!(l.history, "ShDTT");
        assert_eq!(l.orig_bytes, 10);
    }

    #[test]
    fn rstos0_pattern() {
        assert!(rstos0_history("SR"));
        assert!(rstos0_history("^StR"));
        assert!(rstos0_history("ShR"), "lower-case letters are not excluded");
        assert!(!rstos0_history("SAR"));
        assert!(!rstos0_history("DR"));
    }
}
