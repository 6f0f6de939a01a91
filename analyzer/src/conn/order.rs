//! Both directions of a TCP connection in one order: the order the endpoints themselves saw
//! the bytes in, from acknowledgement numbers, not from capture timestamps.
//!
//! Each direction's reassembler hands over its bytes in sequence order. Across directions, a
//! segment's acknowledgement number says how much of the other direction its sender had
//! received: a response that acknowledges the whole request was sent after it. When the
//! capture's order says otherwise (two interfaces' captures merged with skewed clocks, a
//! mirror port that reorders), the segment is held until the other direction has handed over
//! the bytes it acknowledges, and it goes before the other direction's bytes it did not
//! acknowledge. So a parser always sees a request before the response that answers it. Times
//! are made causal too: a segment is stamped no earlier than the other direction's bytes
//! handed over before it (a clock that was behind), so a response never starts before its
//! request; the latency of such an exchange is a lower bound.
//!
//! Held bytes are copied; they count against the shard's [`Budget`] (shared with out-of-order
//! reassembly) and against the per-direction bound. At a bound, and when the two directions'
//! acknowledgements contradict each other (each waits for bytes the other holds back), the
//! oldest held segment is let go anyway; both are counted ([`ReasmStats::ack_held`],
//! [`ReasmStats::ack_forced`]). Without a handshake, the other direction's position is unknown
//! until it has carried data, and nothing waits for it.

use std::collections::VecDeque;

use super::reassembly::{Budget, Delivery};
use crate::model::{Dir, ReasmStats, Ts};

/// What the session receives, in order.
#[derive(Debug, PartialEq, Eq)]
pub enum Out<'a> {
    /// Bytes.
    Data {
        /// Capture time of the segment.
        ts: Ts,
        /// Bytes.
        data: &'a [u8],
    },
    /// `len` bytes were lost.
    Gap {
        /// Time the loss was detected.
        ts: Ts,
        /// Length.
        len: u64,
    },
    /// The direction ended.
    End {
        /// Time.
        ts: Ts,
    },
}

#[derive(Debug)]
enum Item {
    Data {
        ts: Ts,
        seq: u32,
        ack: Option<u32>,
        data: Vec<u8>,
    },
    Gap {
        ts: Ts,
        seq: u32,
        len: u64,
    },
    End {
        ts: Ts,
    },
}

impl Item {
    fn ts(&self) -> Ts {
        match self {
            Item::Data { ts, .. } | Item::Gap { ts, .. } | Item::End { ts } => *ts,
        }
    }
    fn held(&self) -> usize {
        match self {
            Item::Data { data, .. } => data.len(),
            _ => 0,
        }
    }
}

/// How far a direction has been handed over.
enum Frontier {
    /// Nothing known (no handshake, no data yet).
    Unknown,
    /// The next byte to hand over has this sequence number.
    At(u32),
    /// The direction has ended: nothing more to wait for.
    End,
}

/// `a` is at or after `b`, in sequence space.
fn seq_ge(a: u32, b: u32) -> bool {
    (a.wrapping_sub(b) as i32) >= 0
}

/// The merge of a connection's two directions.
#[derive(Debug, Default)]
pub struct Order {
    q: [VecDeque<Item>; 2],
    /// Sequence number of the next byte of each direction to hand over, once known.
    pos: [Option<u32>; 2],
    ended: [bool; 2],
    held: [usize; 2],
    /// Latest time handed over per direction.
    last_ts: [Ts; 2],
    /// Bytes added to the budget's `used` for what is held.
    accounted: usize,
    /// Counters (`ack_held`, `ack_forced`).
    pub stats: ReasmStats,
}

impl Order {
    /// Direction `dir`'s first byte has sequence number `seq` (from a SYN, or from the
    /// acknowledgement of the SYN in a SYN-ACK).
    pub fn start(&mut self, dir: Dir, seq: u32) {
        let d = dir.idx();
        if self.pos[d].is_none() && self.q[d].is_empty() {
            self.pos[d] = Some(seq);
        }
    }

    /// Bytes held now.
    pub fn held_bytes(&self) -> usize {
        self.held[0] + self.held[1]
    }

    fn frontier(&self, d: usize) -> Frontier {
        match self.q[d].front() {
            Some(Item::End { .. }) => Frontier::End,
            Some(Item::Data { seq, .. } | Item::Gap { seq, .. }) => Frontier::At(*seq),
            None if self.ended[d] => Frontier::End,
            None => self.pos[d].map_or(Frontier::Unknown, Frontier::At),
        }
    }

    /// May an item of direction `d` acknowledging `ack` go now?
    fn ready(&self, d: usize, ack: Option<u32>) -> bool {
        let Some(a) = ack else { return true };
        match self.frontier(1 - d) {
            Frontier::Unknown | Frontier::End => true,
            Frontier::At(x) => seq_ge(x, a),
        }
    }

    fn head_ready(&self, d: usize) -> Option<bool> {
        Some(match self.q[d].front()? {
            Item::Data { ack, .. } => self.ready(d, *ack),
            Item::Gap { .. } | Item::End { .. } => true,
        })
    }

    /// The time to hand bytes of direction `d` over with: not before the other direction's
    /// bytes already handed over, when these acknowledge some.
    fn stamp(&mut self, d: usize, ts: Ts, ack: Option<u32>) -> Ts {
        let ts = if ack.is_some() {
            ts.max(self.last_ts[1 - d])
        } else {
            ts
        };
        self.last_ts[d] = self.last_ts[d].max(ts);
        ts
    }

    fn emit(&mut self, d: usize, item: &Item, out: &mut dyn FnMut(Dir, Out<'_>)) {
        let dir = if d == 0 { Dir::ToServer } else { Dir::ToClient };
        match item {
            Item::Data { ts, seq, data, ack } => {
                self.pos[d] = Some(seq.wrapping_add(data.len() as u32));
                let ts = self.stamp(d, *ts, *ack);
                out(dir, Out::Data { ts, data });
            }
            Item::Gap { ts, seq, len } => {
                self.pos[d] = Some(seq.wrapping_add(*len as u32));
                out(dir, Out::Gap { ts: *ts, len: *len });
            }
            Item::End { ts } => {
                self.ended[d] = true;
                out(dir, Out::End { ts: *ts });
            }
        }
    }

    fn pop(&mut self, d: usize, out: &mut dyn FnMut(Dir, Out<'_>)) {
        if let Some(item) = self.q[d].pop_front() {
            self.held[d] -= item.held();
            self.emit(d, &item, out);
        }
    }

    /// Hands over every held item that may go now.
    fn release(&mut self, out: &mut dyn FnMut(Dir, Out<'_>)) {
        loop {
            let earlier = |o: &Order| {
                let t = |d: usize| o.q[d].front().map(Item::ts);
                usize::from(t(1) < t(0))
            };
            let d = match (self.head_ready(0), self.head_ready(1)) {
                (Some(true), Some(true)) => earlier(self),
                (Some(true), _) => 0,
                (_, Some(true)) => 1,
                (Some(false), Some(false)) => {
                    // Each waits for bytes the other holds back: the acknowledgements
                    // contradict each other. The older goes first.
                    self.stats.ack_forced += 1;
                    earlier(self)
                }
                _ => return,
            };
            self.pop(d, out);
        }
    }

    /// A delivery of direction `dir` from its reassembler.
    pub fn push(&mut self, dir: Dir, dl: Delivery<'_>, out: &mut dyn FnMut(Dir, Out<'_>)) {
        let d = dir.idx();
        let (ack, len) = match &dl {
            Delivery::Data { ack, data, .. } => (*ack, data.len()),
            Delivery::Gap { .. } => (None, 0),
        };
        if self.q[d].is_empty() && self.ready(d, ack) {
            // The common case: in order already, handed over without a copy.
            let dirn = if d == 0 { Dir::ToServer } else { Dir::ToClient };
            match dl {
                Delivery::Data { ts, data, seq, ack } => {
                    self.pos[d] = Some(seq.wrapping_add(len as u32));
                    let ts = self.stamp(d, ts, ack);
                    out(dirn, Out::Data { ts, data });
                }
                Delivery::Gap { ts, len, seq } => {
                    self.pos[d] = Some(seq.wrapping_add(len as u32));
                    out(dirn, Out::Gap { ts, len });
                }
            }
            self.release(out);
            return;
        }
        let item = match dl {
            Delivery::Data { ts, data, seq, ack } => {
                self.stats.ack_held += 1;
                Item::Data {
                    ts,
                    seq,
                    ack,
                    data: data.to_vec(),
                }
            }
            Delivery::Gap { ts, len, seq } => Item::Gap { ts, seq, len },
        };
        self.held[d] += item.held();
        self.q[d].push_back(item);
        self.release(out);
    }

    /// Direction `dir` ended (after what it handed over).
    pub fn end(&mut self, dir: Dir, ts: Ts, out: &mut dyn FnMut(Dir, Out<'_>)) {
        let d = dir.idx();
        if self.q[d].is_empty() {
            self.emit(d, &Item::End { ts }, out);
            self.release(out);
        } else {
            self.q[d].push_back(Item::End { ts });
            self.release(out);
        }
    }

    /// Brings the budget up to date with what is held, and lets the oldest held items go
    /// while a bound is exceeded.
    pub fn settle(&mut self, budget: &mut Budget, out: &mut dyn FnMut(Dir, Out<'_>)) {
        loop {
            let now = self.held_bytes();
            budget.used = budget.used.saturating_sub(self.accounted) + now;
            self.accounted = now;
            let over = |o: &Order, d: usize| o.held[d] > budget.per_direction;
            let d = if over(self, 0) {
                0
            } else if over(self, 1) {
                1
            } else if budget.used > budget.limit && now > 0 {
                usize::from(self.held[1] > self.held[0])
            } else {
                return;
            };
            self.stats.ack_forced += 1;
            self.pop(d, out);
            self.release(out);
        }
    }

    /// The connection is over: hands over everything held, in order as far as the
    /// acknowledgements allow, and returns what it held to the budget.
    pub fn flush(&mut self, budget: &mut Budget, out: &mut dyn FnMut(Dir, Out<'_>)) {
        loop {
            self.release(out);
            let d = match (self.q[0].front(), self.q[1].front()) {
                (None, None) => break,
                (Some(_), None) => 0,
                (None, Some(_)) => 1,
                (Some(a), Some(b)) => usize::from(b.ts() < a.ts()),
            };
            self.stats.ack_forced += 1;
            self.pop(d, out);
        }
        self.settle(budget, out);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What the session got: direction and text, gaps as `<gap N>`, ends as `<end>`.
    fn run(steps: impl FnOnce(&mut Order, &mut dyn FnMut(Dir, Out<'_>))) -> (Vec<String>, Order) {
        let mut got: Vec<String> = Vec::new();
        let mut o = Order::default();
        let mut out = |d: Dir, x: Out<'_>| {
            let side = if d == Dir::ToServer { "c" } else { "s" };
            got.push(match x {
                Out::Data { data, .. } => format!("{side}:{}", String::from_utf8_lossy(data)),
                Out::Gap { len, .. } => format!("{side}:<gap {len}>"),
                Out::End { .. } => format!("{side}:<end>"),
            });
        };
        steps(&mut o, &mut out);
        (got, o)
    }

    fn data(ts: Ts, seq: u32, ack: u32, data: &[u8]) -> Delivery<'_> {
        Delivery::Data {
            ts,
            data,
            seq,
            ack: Some(ack),
        }
    }

    #[test]
    fn in_order_passes_straight_through() {
        let (got, o) = run(|o, out| {
            o.start(Dir::ToServer, 1);
            o.start(Dir::ToClient, 1001);
            o.push(Dir::ToServer, data(10, 1, 1001, b"req"), out);
            o.push(Dir::ToClient, data(20, 1001, 4, b"resp"), out);
        });
        assert_eq!(got, ["c:req", "s:resp"]);
        assert_eq!(o.stats.ack_held, 0);
    }

    #[test]
    fn a_response_seen_before_its_request_waits_for_it() {
        // A capture merged from two clocks: the response's timestamp is earlier.
        let (got, o) = run(|o, out| {
            o.start(Dir::ToServer, 1);
            o.start(Dir::ToClient, 1001);
            o.push(Dir::ToClient, data(5, 1001, 4, b"resp"), out);
            o.push(Dir::ToServer, data(10, 1, 1001, b"req"), out);
        });
        assert_eq!(got, ["c:req", "s:resp"]);
        assert_eq!((o.stats.ack_held, o.stats.ack_forced), (1, 0));
        assert_eq!(o.held_bytes(), 0);
        // Stamped no earlier than the request it answers.
        let mut o = Order::default();
        o.start(Dir::ToServer, 1);
        o.start(Dir::ToClient, 1001);
        let mut times = Vec::new();
        let mut out = |_: Dir, x: Out<'_>| {
            if let Out::Data { ts, .. } = x {
                times.push(ts)
            }
        };
        o.push(Dir::ToClient, data(5, 1001, 4, b"resp"), &mut out);
        o.push(Dir::ToServer, data(10, 1, 1001, b"req"), &mut out);
        assert_eq!(times, [10, 10]);
    }

    #[test]
    fn an_answer_goes_before_the_bytes_its_sender_had_not_seen() {
        // The client's second request acknowledges the first response; the response
        // acknowledges only the first request. Seen: request 2 before response 1.
        let (got, _) = run(|o, out| {
            o.start(Dir::ToServer, 1);
            o.start(Dir::ToClient, 1001);
            o.push(Dir::ToServer, data(1, 1, 1001, b"q1"), out);
            o.push(Dir::ToServer, data(2, 3, 1003, b"q2"), out);
            o.push(Dir::ToClient, data(3, 1001, 3, b"r1"), out);
            o.push(Dir::ToClient, data(4, 1003, 5, b"r2"), out);
        });
        assert_eq!(got, ["c:q1", "s:r1", "c:q2", "s:r2"]);
    }

    #[test]
    fn without_a_handshake_nothing_waits() {
        let (got, _) = run(|o, out| {
            o.push(Dir::ToClient, data(5, 1001, 4, b"resp"), out);
            o.push(Dir::ToServer, data(10, 1, 1001, b"req"), out);
        });
        assert_eq!(got, ["s:resp", "c:req"]);
    }

    #[test]
    fn the_end_of_the_other_direction_releases_and_ends_stay_in_order() {
        let (got, _) = run(|o, out| {
            o.start(Dir::ToServer, 1);
            o.start(Dir::ToClient, 1001);
            o.push(Dir::ToClient, data(5, 1001, 9, b"resp"), out);
            o.end(Dir::ToClient, 6, out);
            o.push(Dir::ToServer, data(10, 1, 1001, b"req"), out);
            // The client's remaining bytes never come: its end lets the response go.
            o.end(Dir::ToServer, 11, out);
        });
        assert_eq!(got, ["c:req", "c:<end>", "s:resp", "s:<end>"]);
    }

    #[test]
    fn bounds_let_held_bytes_go_and_count_it() {
        let mut budget = Budget {
            used: 0,
            limit: 1 << 20,
            per_direction: 6,
        };
        let (got, o) = run(|o, out| {
            o.start(Dir::ToServer, 1);
            o.start(Dir::ToClient, 1001);
            o.push(Dir::ToClient, data(1, 1001, 100, b"abcd"), out);
            o.settle(&mut budget, out);
            assert_eq!(budget.used, 4);
            o.push(Dir::ToClient, data(2, 1005, 100, b"efgh"), out);
            o.settle(&mut budget, out);
        });
        assert_eq!(got, ["s:abcd"]);
        assert_eq!(o.stats.ack_forced, 1);
        assert_eq!(budget.used, 4);
        let mut o = o;
        o.flush(&mut budget, &mut |_, _| {});
        assert_eq!(budget.used, 0);
    }

    #[test]
    fn contradicting_acknowledgements_do_not_deadlock() {
        let (got, o) = run(|o, out| {
            o.start(Dir::ToServer, 1);
            o.start(Dir::ToClient, 1001);
            // Each acknowledges bytes of the other that come after the other's held bytes:
            // the older goes; the other waits for what it acknowledges, until the end.
            o.push(Dir::ToServer, data(1, 1, 2000, b"x"), out);
            o.push(Dir::ToClient, data(2, 1001, 50, b"y"), out);
        });
        assert_eq!(got, ["c:x"]);
        assert_eq!(o.stats.ack_forced, 1);
        let mut o = o;
        let mut rest = Vec::new();
        o.flush(&mut Budget::default(), &mut |_, x| {
            rest.push(matches!(x, Out::Data { data: b"y", .. }))
        });
        assert_eq!(rest, [true]);
    }
}
