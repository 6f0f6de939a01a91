//! The L7 side of a connection: protocol detection on the first bytes, then the protocol's
//! parser, then the matcher. Fed by TCP reassembly, by UDP datagrams, or by socket payload
//! events — the same code whatever the vantage point.
//!
//! For UDP, each `data` call is one datagram and is passed on as one (see [`crate::proto`]);
//! detection looks at each direction's first datagram. A probe that finds the roles reversed
//! (the assumed client's first message is an answer) swaps them here, for UDP and for TCP
//! without a handshake: the session's [`ConnInfo`] then has client and server exchanged, and
//! directions are flipped before they reach the parser.
//!
//! Detection holds a connection's bytes until it decides, at most [`Ctx::detect_limit`] bytes
//! (a stream nobody answers cannot be held whole): when the limit is reached, the session
//! decides on what it has (content, else the port) and says so ([`L7Stats::detection_cut`],
//! a `detection_buffer_full` notice). Probes run again only when the bytes they look at have
//! doubled (or a direction is complete or ended), not on every segment.
//!
//! Every session reports the memory it holds (held bytes, the parser's estimate, the
//! matcher's open records) into [`Ctx::session_bytes`], so that its shard can keep within
//! its share of the memory budget.

use std::sync::Arc;

use rustc_hash::FxHashMap;

use crate::l7::{
    Emitter, MatchStats, Matcher, PROBE_BYTES, Parser, ParserState, ProbeInput, Protocol,
};
use crate::model::{ConnInfo, Dir, Exchange, RoleBy, Transport, Ts};
use crate::proto;

/// Bytes a connection's detection buffer holds at most by default (both directions).
pub const DETECT_LIMIT: usize = 64 << 10;

/// What the memory budget counts per record a matcher holds open (the record, its fields).
const OPEN_RECORD_BYTES: usize = 512;

/// Distinct anomaly names a connection reports as notices (each once); more are counted only.
const MAX_NOTICE_NAMES: usize = 32;

/// Something to write to Zeek's `weird.log`: an anomaly a parser met, or what a bound cut,
/// with the connection it concerns (if any).
#[derive(Clone, Debug)]
pub struct Notice {
    /// When.
    pub ts: Ts,
    /// The connection.
    pub conn: Option<Arc<ConnInfo>>,
    /// What happened (Zeek's weird name, or one of this analyzer's bounds).
    pub name: &'static str,
    /// Details.
    pub addl: String,
    /// What noticed it: a protocol's name, or the stage (`input`, `conn`, `detection`).
    pub source: &'static str,
}

/// Parser-level counters, kept per shard and summed.
#[derive(Debug, Default)]
pub struct L7Stats {
    /// Matching outcomes.
    pub matching: MatchStats,
    /// Anomalies reported by parsers, by name.
    pub weirds: FxHashMap<&'static str, u64>,
    /// Connections per detected protocol (`-` for none).
    pub protocols: FxHashMap<&'static str, u64>,
    /// Connections whose parser gave up (lost sync, violation).
    pub gave_up: u64,
    /// Connections whose detection buffer filled before a protocol was recognized: decided on
    /// what it held (content, else port).
    pub detection_cut: u64,
}

impl L7Stats {
    /// Adds another set of counters.
    pub fn add(&mut self, o: &L7Stats) {
        self.matching.add(&o.matching);
        for (k, v) in &o.weirds {
            *self.weirds.entry(k).or_default() += v;
        }
        for (k, v) in &o.protocols {
            *self.protocols.entry(k).or_default() += v;
        }
        self.gave_up += o.gave_up;
        self.detection_cut += o.detection_cut;
    }
}

/// Where sessions put what they produce.
#[derive(Debug)]
pub struct Ctx {
    /// Finished exchanges.
    pub exchanges: Vec<Exchange>,
    /// Connection views opened (for `conn::views`).
    pub opened: Vec<Arc<ConnInfo>>,
    /// Anomalies and cuts, for `weird.log`.
    pub notices: Vec<Notice>,
    /// Counters.
    pub stats: L7Stats,
    /// Bytes the live sessions hold (detection buffers, parser and matcher state).
    pub session_bytes: usize,
    /// A session's detection buffer at most, bytes.
    pub detect_limit: usize,
    emitter: Emitter,
}

impl Default for Ctx {
    fn default() -> Self {
        Ctx {
            exchanges: Vec::new(),
            opened: Vec::new(),
            notices: Vec::new(),
            stats: L7Stats::default(),
            session_bytes: 0,
            detect_limit: DETECT_LIMIT,
            emitter: Emitter::default(),
        }
    }
}

impl Ctx {
    /// A context whose sessions hold at most `limit` bytes for detection.
    pub fn with_detect_limit(limit: usize) -> Self {
        Ctx {
            detect_limit: limit,
            ..Ctx::default()
        }
    }

    /// Records a notice from stage `source`.
    pub fn notice(
        &mut self,
        ts: Ts,
        conn: Option<&Arc<ConnInfo>>,
        source: &'static str,
        name: &'static str,
        addl: String,
    ) {
        self.notices.push(Notice {
            ts,
            conn: conn.cloned(),
            name,
            addl,
            source,
        });
    }
}

enum Held {
    Data(Dir, Ts, Vec<u8>),
    Gap(Dir, Ts, u64),
    End(Dir, Ts),
}

enum L7 {
    Probing {
        held: Vec<Held>,
        first: [Vec<u8>; 2],
        ended: [bool; 2],
        /// Bytes of `first` the probes last looked at, per direction.
        probed: [usize; 2],
    },
    Active {
        proto: &'static Protocol,
        parser: Box<dyn Parser>,
        matcher: Matcher,
    },
    /// No parser took it (or the one that did is done): bytes are only counted.
    Passive {
        proto: Option<&'static Protocol>,
        matcher: Option<Matcher>,
    },
}

/// The L7 state of one connection.
pub struct Session {
    info: Arc<ConnInfo>,
    l7: L7,
    finished: bool,
    /// Roles swapped by detection: directions given to the session are flipped.
    reversed: bool,
    /// Bytes held in `L7::Probing::held`.
    held_bytes: usize,
    /// What this session counts in [`Ctx::session_bytes`] now.
    accounted: usize,
    /// Anomaly names already reported as notices.
    noticed: Vec<&'static str>,
    /// Times detection ran.
    probe_runs: u32,
}

impl std::fmt::Debug for Session {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Session")
            .field("uid", &self.info.uid)
            .field("protocol", &self.protocol())
            .finish()
    }
}

impl Session {
    /// A session for a new connection.
    pub fn new(info: Arc<ConnInfo>) -> Self {
        Session {
            info,
            l7: L7::Probing {
                held: Vec::new(),
                first: [Vec::new(), Vec::new()],
                ended: [false; 2],
                probed: [0; 2],
            },
            finished: false,
            reversed: false,
            held_bytes: 0,
            accounted: 0,
            noticed: Vec::new(),
            probe_runs: 0,
        }
    }

    /// Times detection ran on this connection (a few per direction, whatever the segments).
    pub fn probe_runs(&self) -> u32 {
        self.probe_runs
    }

    /// Bytes the session holds now, roughly: detection buffers, the parser (its own estimate),
    /// the matcher's open records.
    pub fn mem(&self) -> usize {
        match &self.l7 {
            L7::Probing { first, held, .. } => {
                self.held_bytes
                    + held.capacity() * std::mem::size_of::<Held>()
                    + first[0].capacity()
                    + first[1].capacity()
            }
            L7::Active {
                parser, matcher, ..
            } => {
                std::mem::size_of_val(&**parser)
                    + parser.heap_bytes()
                    + matcher.open_len() * OPEN_RECORD_BYTES
            }
            L7::Passive {
                matcher: Some(m), ..
            } => m.open_len() * OPEN_RECORD_BYTES,
            L7::Passive { .. } => 0,
        }
    }

    /// Brings this session's share of [`Ctx::session_bytes`] up to date.
    fn account(&mut self, ctx: &mut Ctx) {
        let now = if self.finished { 0 } else { self.mem() };
        ctx.session_bytes = ctx.session_bytes.saturating_sub(self.accounted) + now;
        self.accounted = now;
    }

    /// The connection, with the roles detection settled on (see [`Session::roles_reversed`]).
    pub fn info(&self) -> &Arc<ConnInfo> {
        &self.info
    }

    /// Whether detection found client and server the other way round than the flow assumed.
    pub fn roles_reversed(&self) -> bool {
        self.reversed
    }

    /// A flow's connection, per-direction packet and byte counts and how its roles were
    /// decided, as they stand once detection has spoken (swapped when it reversed the roles).
    pub fn settled(
        &self,
        info: &Arc<ConnInfo>,
        packets: [u64; 2],
        bytes: [u64; 2],
        role_by: RoleBy,
    ) -> (Arc<ConnInfo>, [u64; 2], [u64; 2], RoleBy) {
        if self.reversed {
            let ([p0, p1], [b0, b1]) = (packets, bytes);
            (self.info().clone(), [p1, p0], [b1, b0], RoleBy::Content)
        } else {
            (info.clone(), packets, bytes, role_by)
        }
    }

    fn dir(&self, dir: Dir) -> Dir {
        if self.reversed { dir.flip() } else { dir }
    }

    /// The detected protocol, if any.
    pub fn protocol(&self) -> Option<&'static str> {
        match &self.l7 {
            L7::Active { proto, .. } => Some(proto.name),
            L7::Passive { proto, .. } => proto.map(|p| p.name),
            L7::Probing { .. } => None,
        }
    }

    /// Bytes in direction `dir`.
    pub fn data(&mut self, dir: Dir, ts: Ts, data: &[u8], ctx: &mut Ctx) {
        if data.is_empty() {
            return;
        }
        let dir = self.dir(dir);
        self.feed(dir, ts, data, ctx);
        self.account(ctx);
    }

    /// `data` with the direction as the parser sees it.
    fn feed(&mut self, dir: Dir, ts: Ts, data: &[u8], ctx: &mut Ctx) {
        let datagrams = self.info.transport == Transport::Udp;
        match &mut self.l7 {
            L7::Active { parser, .. } => {
                parser.data(dir, ts, data, &mut ctx.emitter);
                self.after_parser(ts, ctx);
            }
            L7::Probing {
                held,
                first,
                ended,
                probed,
            } => {
                let d = dir.idx();
                let f = &mut first[d];
                // A datagram protocol's probe sees one whole message: the first datagram.
                // After a gap (or the end) a direction's bytes are not its beginning.
                if !ended[d] && (!datagrams || f.is_empty()) {
                    let room = PROBE_BYTES.saturating_sub(f.len());
                    f.extend_from_slice(&data[..data.len().min(room)]);
                }
                // Probes look again when what they see has doubled, is complete, or is a
                // datagram: a few times per connection, not once per segment.
                let due = f.len() > probed[d]
                    && (probed[d] == 0
                        || f.len() >= 2 * probed[d]
                        || f.len() >= PROBE_BYTES
                        || datagrams
                        || ended[d]);
                if due {
                    probed[d] = f.len();
                }
                held.push(Held::Data(dir, ts, data.to_vec()));
                self.held_bytes += data.len() + std::mem::size_of::<Held>();
                if !self.held_full(ts, ctx) && due {
                    self.try_detect(false, ctx);
                }
            }
            L7::Passive { .. } => {}
        }
    }

    /// When the detection buffer is full: decides on what it holds, says so, returns true.
    fn held_full(&mut self, ts: Ts, ctx: &mut Ctx) -> bool {
        if self.held_bytes < ctx.detect_limit {
            return false;
        }
        ctx.stats.detection_cut += 1;
        ctx.notice(
            ts,
            Some(&self.info),
            "detection",
            "detection_buffer_full",
            format!(
                "{} bytes held without a protocol recognized: decided on them",
                self.held_bytes
            ),
        );
        self.try_detect(true, ctx);
        true
    }

    /// `len` bytes lost in direction `dir`.
    pub fn gap(&mut self, dir: Dir, ts: Ts, len: u64, ctx: &mut Ctx) {
        let dir = self.dir(dir);
        self.feed_gap(dir, ts, len, ctx);
        self.account(ctx);
    }

    fn feed_gap(&mut self, dir: Dir, ts: Ts, len: u64, ctx: &mut Ctx) {
        match &mut self.l7 {
            L7::Active { parser, .. } => {
                parser.gap(dir, ts, len, &mut ctx.emitter);
                self.after_parser(ts, ctx);
            }
            L7::Probing {
                held, first, ended, ..
            } => {
                held.push(Held::Gap(dir, ts, len));
                // Detection only looks at a stream's beginning: after a gap, no more bytes
                // of this direction count.
                if first[dir.idx()].len() < PROBE_BYTES {
                    ended[dir.idx()] = true;
                }
                self.held_bytes += std::mem::size_of::<Held>();
                self.held_full(ts, ctx);
            }
            L7::Passive { .. } => {}
        }
    }

    /// Direction `dir` ended.
    pub fn end(&mut self, dir: Dir, ts: Ts, ctx: &mut Ctx) {
        let dir = self.dir(dir);
        self.feed_end(dir, ts, ctx);
        self.account(ctx);
    }

    fn feed_end(&mut self, dir: Dir, ts: Ts, ctx: &mut Ctx) {
        match &mut self.l7 {
            L7::Active { parser, .. } => {
                parser.end(dir, ts, &mut ctx.emitter);
                self.after_parser(ts, ctx);
            }
            L7::Probing { held, ended, .. } => {
                held.push(Held::End(dir, ts));
                ended[dir.idx()] = true;
                if ended[0] && ended[1] {
                    self.try_detect(true, ctx);
                }
            }
            L7::Passive { .. } => {}
        }
    }

    /// The connection is over: decide on whatever was seen, flush the matcher.
    pub fn finish(&mut self, ts: Ts, ctx: &mut Ctx) {
        if self.finished {
            return;
        }
        if matches!(self.l7, L7::Probing { .. }) {
            self.try_detect(true, ctx);
        }
        if let L7::Active { parser, .. } = &mut self.l7 {
            for d in [Dir::ToServer, Dir::ToClient] {
                parser.end(d, ts, &mut ctx.emitter);
            }
            self.after_parser(ts, ctx);
        }
        match &mut self.l7 {
            L7::Active { matcher, .. }
            | L7::Passive {
                matcher: Some(matcher),
                ..
            } => {
                matcher.feed(
                    &mut ctx.emitter,
                    &mut ctx.stats.matching,
                    &mut ctx.exchanges,
                );
                matcher.finish(&mut ctx.stats.matching, &mut ctx.exchanges);
            }
            _ => {}
        }
        self.finished = true;
        // Nothing more comes: the session's state goes with its connection.
        self.l7 = L7::Passive {
            proto: self.protocol_ref(),
            matcher: None,
        };
        self.held_bytes = 0;
        self.account(ctx);
    }

    fn protocol_ref(&self) -> Option<&'static Protocol> {
        match &self.l7 {
            L7::Active { proto, .. } => Some(proto),
            L7::Passive { proto, .. } => *proto,
            L7::Probing { .. } => None,
        }
    }

    fn after_parser(&mut self, ts: Ts, ctx: &mut Ctx) {
        let source = self.protocol().unwrap_or("-");
        for w in ctx.emitter.weirds.drain(..) {
            *ctx.stats.weirds.entry(w).or_default() += 1;
            if !self.noticed.contains(&w) && self.noticed.len() < MAX_NOTICE_NAMES {
                self.noticed.push(w);
                ctx.notices.push(Notice {
                    ts,
                    conn: Some(self.info.clone()),
                    name: w,
                    addl: String::new(),
                    source,
                });
            }
        }
        let L7::Active {
            parser,
            matcher,
            proto,
        } = &mut self.l7
        else {
            return;
        };
        matcher.feed(
            &mut ctx.emitter,
            &mut ctx.stats.matching,
            &mut ctx.exchanges,
        );
        let st = parser.state();
        // The protocol changed in-band: the old matcher writes what it still holds, the new
        // protocol's parser and matcher take the rest of the connection.
        if st == ParserState::Finished
            && let Some(h) = parser.handover()
            && let Some((to, up)) =
                proto::by_upgrade_token(h.to).and_then(|p| Some((p, p.upgrade.as_ref()?)))
        {
            matcher.finish(&mut ctx.stats.matching, &mut ctx.exchanges);
            *ctx.stats.protocols.entry(to.name).or_default() += 1;
            let mut parser = (up.parser)(&self.info, h.upgrade);
            if let Some((dir, ts, bytes)) = &h.rest {
                parser.data(*dir, *ts, bytes, &mut ctx.emitter);
            }
            self.l7 = L7::Active {
                proto: to,
                parser,
                matcher: Matcher::new(to.name, self.info.clone()),
            };
            self.after_parser(ts, ctx);
            return;
        }
        if st != ParserState::Active {
            if st == ParserState::GaveUp {
                ctx.stats.gave_up += 1;
            }
            let proto = *proto;
            let old = std::mem::replace(
                &mut self.l7,
                L7::Passive {
                    proto: Some(proto),
                    matcher: None,
                },
            );
            if let L7::Active { matcher, .. } = old {
                self.l7 = L7::Passive {
                    proto: Some(proto),
                    matcher: Some(matcher),
                };
            }
        }
    }

    fn try_detect(&mut self, final_call: bool, ctx: &mut Ctx) {
        let L7::Probing { first, ended, .. } = &self.l7 else {
            return;
        };
        self.probe_runs += 1;
        let datagrams = self.info.transport == Transport::Udp;
        let full = |d: usize| {
            ended[d] || first[d].len() >= PROBE_BYTES || (datagrams && !first[d].is_empty())
        };
        let input = ProbeInput {
            to_server: &first[0],
            to_client: &first[1],
            server_port: self.info.resp.port,
            transport: self.info.transport,
        };
        let verdict = proto::detect(&input, final_call || (full(0) && full(1)));
        let Some(verdict) = verdict else { return };
        let L7::Probing { held, .. } = std::mem::replace(
            &mut self.l7,
            L7::Passive {
                proto: None,
                matcher: None,
            },
        ) else {
            return;
        };
        match verdict {
            Ok(det) => {
                let p = det.proto;
                *ctx.stats.protocols.entry(p.name).or_default() += 1;
                // Roles from a handshake are facts; elsewhere they were a guess. A multicast
                // destination stays the server (mDNS answers are sent to the group first).
                if det.reversed
                    && (self.info.transport == Transport::Udp || self.info.partial)
                    && !self.info.resp.ip().is_multicast()
                {
                    self.info = Arc::new(self.info.reversed());
                    self.reversed = true;
                }
                self.l7 = L7::Active {
                    proto: p,
                    parser: (p.new_parser)(&self.info),
                    matcher: Matcher::new(p.name, self.info.clone()),
                };
                self.held_bytes = 0;
                // Held directions are the flow's: flipped when detection swapped the roles.
                let flip = self.reversed;
                for h in held {
                    match h {
                        Held::Data(d, ts, b) => {
                            self.feed(if flip { d.flip() } else { d }, ts, &b, ctx);
                        }
                        Held::Gap(d, ts, n) => {
                            self.feed_gap(if flip { d.flip() } else { d }, ts, n, ctx);
                        }
                        Held::End(d, ts) => self.feed_end(if flip { d.flip() } else { d }, ts, ctx),
                    }
                }
            }
            Err(()) => {
                self.held_bytes = 0;
                *ctx.stats.protocols.entry("-").or_default() += 1;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Endpoint, Outcome, Vantage};

    /// `a. A IN`, id 7; `response` sets QR.
    fn msg(response: bool) -> Vec<u8> {
        let flags = if response { 0x81 } else { 0x01 };
        let mut m = vec![0, 7, flags, 0x80, 0, 1, 0, 0, 0, 0, 0, 0];
        m.extend_from_slice(&[1, b'a', 0, 0, 1, 0, 1]);
        m
    }

    fn session(resp: [u8; 4]) -> Session {
        Session::new(Arc::new(ConnInfo {
            uid: "Cs".into(),
            orig: Endpoint::new([10, 0, 0, 1].into(), 53),
            resp: Endpoint::new(resp.into(), 53),
            transport: Transport::Udp,
            vantage: Vantage::Packets { iface: 0 },
            first_ts: 0,
            partial: false,
            tunnel: None,
            community_id: String::new(),
            duplicate: false,
        }))
    }

    #[test]
    fn udp_answer_first_swaps_roles_unless_sent_to_a_group() {
        let mut ctx = Ctx::default();
        let mut s = session([10, 0, 0, 2]);
        // The assumed client sends a response: the roles were the other way round, and the
        // peer's later datagram (a query, as the flow sees it "to the client") is the query,
        // which the response seen first answers (Zeek's DNS pairing).
        s.data(Dir::ToServer, 10, &msg(true), &mut ctx);
        assert!(s.roles_reversed());
        assert_eq!(s.info().orig.ip().to_string(), "10.0.0.2");
        s.data(Dir::ToClient, 20, &msg(false), &mut ctx);
        s.finish(30, &mut ctx);
        let kinds: Vec<_> = ctx.exchanges.iter().map(|e| e.outcome).collect();
        assert_eq!(kinds, vec![Outcome::Complete]);
        assert_eq!(ctx.exchanges[0].conn.resp.ip().to_string(), "10.0.0.1");

        let mut ctx = Ctx::default();
        let mut s = session([224, 0, 0, 251]);
        s.data(Dir::ToServer, 10, &msg(true), &mut ctx);
        assert!(!s.roles_reversed());
        assert_eq!(s.protocol(), Some("dns"));
    }

    fn tcp_session(port: u16) -> Session {
        Session::new(Arc::new(ConnInfo {
            uid: "Ct".into(),
            orig: Endpoint::new([10, 0, 0, 1].into(), 40000),
            resp: Endpoint::new([10, 0, 0, 2].into(), port),
            transport: Transport::Tcp,
            vantage: Vantage::Packets { iface: 0 },
            first_ts: 0,
            partial: false,
            tunnel: None,
            community_id: String::new(),
            duplicate: false,
        }))
    }

    /// A MySQL COM_QUERY: the server speaks first in MySQL, so off its port client bytes
    /// alone leave detection undecided.
    fn com_query() -> Vec<u8> {
        let mut q = vec![9, 0, 0, 0, 0x03];
        q.extend(b"SELECT 1");
        q
    }

    #[test]
    fn a_stream_nobody_answers_is_not_held_whole() {
        let mut ctx = Ctx::with_detect_limit(16 << 10);
        let mut s = tcp_session(13306);
        let seg = com_query().repeat(100);
        let mut most = 0;
        for i in 0..1000 {
            s.data(Dir::ToServer, i, &seg, &mut ctx);
            most = most.max(s.held_bytes);
        }
        assert!(most <= (16 << 10) + seg.len() + 64, "held {most}");
        assert_eq!(ctx.stats.detection_cut, 1);
        // Decided on what it held: no content match, no port: unidentified.
        assert_eq!(s.protocol(), None);
        assert_eq!(ctx.stats.protocols.get("-"), Some(&1));
        assert_eq!(
            ctx.notices
                .iter()
                .filter(|n| n.name == "detection_buffer_full")
                .count(),
            1
        );
    }

    #[test]
    fn probes_run_a_few_times_not_once_per_segment() {
        let mut ctx = Ctx::default();
        let mut s = tcp_session(13306);
        let stream = com_query().repeat(300);
        for (i, b) in stream.chunks(1).enumerate() {
            s.data(Dir::ToServer, i as u64, b, &mut ctx);
        }
        // 1, 2, 4, ..., 2048 bytes seen: twelve runs for 3,900 one-byte segments.
        assert!(s.probe_runs() <= 13, "{}", s.probe_runs());
        // A server's answer settles it.
        s.data(Dir::ToClient, 5_000, &[1, 0, 0, 1, 1], &mut ctx);
        s.finish(10_000, &mut ctx);
        assert!(s.probe_runs() <= 15, "{}", s.probe_runs());
    }

    #[test]
    fn bytes_after_a_gap_do_not_run_the_probes_again() {
        // A client stream cut early: its later one-byte segments are not its beginning, and
        // must not run the probes once each (the session fuzz target found 36 runs).
        let mut ctx = Ctx::default();
        let mut s = tcp_session(40001);
        s.data(Dir::ToServer, 1, b"\x01", &mut ctx);
        s.gap(Dir::ToServer, 2, 1 << 40, &mut ctx);
        let before = s.probe_runs();
        for i in 0..500 {
            s.data(Dir::ToServer, 3 + i, b"\x01", &mut ctx);
        }
        assert_eq!(s.probe_runs(), before, "probes after the gap");
        s.finish(1_000, &mut ctx);
        assert!(s.probe_runs() <= before + 1, "{}", s.probe_runs());
    }

    #[test]
    fn sessions_give_back_what_they_counted_when_they_finish() {
        let mut ctx = Ctx::default();
        let mut a = tcp_session(3306);
        let mut b = tcp_session(6379);
        a.data(Dir::ToServer, 1, &com_query(), &mut ctx);
        b.data(Dir::ToServer, 1, b"*1\r\n$4\r\nPING\r\n", &mut ctx);
        assert_eq!(ctx.session_bytes, a.mem() + b.mem());
        assert!(ctx.session_bytes > 0);
        a.finish(2, &mut ctx);
        assert_eq!(ctx.session_bytes, b.mem());
        b.finish(2, &mut ctx);
        assert_eq!(ctx.session_bytes, 0);
    }

    #[test]
    fn udp_detection_sees_each_datagram_whole() {
        // A query datagram followed by another datagram: the probe decides on the first,
        // and the parser gets both, one message each.
        let mut ctx = Ctx::default();
        let mut s = session([10, 0, 0, 2]);
        s.data(Dir::ToServer, 10, &msg(false), &mut ctx);
        assert_eq!(s.protocol(), Some("dns"));
        s.data(Dir::ToClient, 20, &msg(true), &mut ctx);
        s.finish(30, &mut ctx);
        assert_eq!(ctx.exchanges.len(), 1);
        assert_eq!(ctx.exchanges[0].outcome, Outcome::Complete);
        assert!(ctx.stats.weirds.is_empty());
    }

    mod h2c {
        use super::*;
        use crate::model::Value;
        use crate::proto::http2::tests::{EH, ES, client_start, conn, fr, req_block, resp_block};

        /// The h2c upgrade through a session: HTTP/1 request with `Upgrade: h2c`, a 101 followed in
        /// the same segment by the server's first frames, then the client's preface.
        #[test]
        fn upgrade_hands_the_connection_to_http2() {
            let mut s = Session::new(conn(false));
            let mut ctx = Ctx::default();
            let req = b"GET /up HTTP/1.1\r\nHost: h\r\nUser-Agent: u/1\r\nConnection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\nHTTP2-Settings: AAEAACAA\r\n\r\n";
            s.data(Dir::ToServer, 10, req, &mut ctx);
            assert_eq!(s.protocol(), Some("http"));
            // The client allowed an 8192-byte table (HTTP2-Settings): the server's encoder grows it.
            let mut resp =
                b"HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: h2c\r\n\r"
                    .to_vec();
            s.data(Dir::ToClient, 20, &resp, &mut ctx);
            assert_eq!(s.protocol(), Some("http2"));
            resp = b"\n".to_vec(); // the LF of the last CRLF arrives with the server's frames
            resp.extend(fr(4, 0, 0, &[]));
            resp.extend(fr(1, EH, 1, &[0x3f, 0xe1, 0x3f, 0x88]));
            resp.extend(fr(0, ES, 1, b"upgraded"));
            s.data(Dir::ToClient, 30, &resp, &mut ctx);
            let c = [
                client_start(),
                fr(1, ES | EH, 3, &req_block(false, "/next", &[])),
            ]
            .concat();
            s.data(Dir::ToServer, 40, &c, &mut ctx);
            s.data(
                Dir::ToClient,
                50,
                &fr(1, ES | EH, 3, &resp_block("404", &[])),
                &mut ctx,
            );
            s.finish(60, &mut ctx);
            let ex = &ctx.exchanges;
            assert_eq!(ex.len(), 3, "{ex:#?}");
            assert_eq!(ex[0].protocol, "http");
            assert_eq!(ex[0].fields.u64("status_code"), Some(101));
            assert_eq!(ex[1].protocol, "http2");
            assert_eq!(ex[1].fields.u64("stream_id"), Some(1));
            assert_eq!(ex[1].fields.text("uri"), Some(&b"/up"[..]));
            assert_eq!(ex[1].fields.text("host"), Some(&b"h"[..]));
            assert_eq!(ex[1].fields.u64("status_code"), Some(200));
            assert_eq!(ex[1].fields.u64("response_body_len"), Some(8));
            assert_eq!(ex[1].fields.get("upgraded"), Some(&Value::Bool(true)));
            assert_eq!(ex[1].request.unwrap().start, 10);
            assert_eq!(ex[1].outcome, Outcome::Complete);
            assert_eq!(ex[2].fields.text("uri"), Some(&b"/next"[..]));
            assert_eq!(ex[2].fields.u64("status_code"), Some(404));
            assert!(ctx.stats.weirds.is_empty(), "{:?}", ctx.stats.weirds);
            assert_eq!(ctx.stats.protocols.get("http2"), Some(&1));
        }

        /// Without the server's agreement (no 101, or 101 to another protocol), HTTP/1 goes on or
        /// ends as before.
        #[test]
        fn upgrade_refused_stays_http1() {
            let mut s = Session::new(conn(false));
            let mut ctx = Ctx::default();
            s.data(
                Dir::ToServer,
                10,
                b"GET / HTTP/1.1\r\nHost: h\r\nUpgrade: h2c\r\nConnection: Upgrade\r\n\r\n",
                &mut ctx,
            );
            s.data(
                Dir::ToClient,
                20,
                b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok",
                &mut ctx,
            );
            s.data(
                Dir::ToServer,
                30,
                b"GET /ws HTTP/1.1\r\nHost: h\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n",
                &mut ctx,
            );
            s.data(
                Dir::ToClient,
                40,
                b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\r\n\x81\x02hi",
                &mut ctx,
            );
            s.finish(50, &mut ctx);
            assert_eq!(s.protocol(), Some("http"));
            assert_eq!(ctx.exchanges.len(), 2);
            assert!(ctx.exchanges.iter().all(|e| e.protocol == "http"));
        }
    }
}
