//! Connections seen as packets: keyed by their 5-tuple, client/server roles, TCP state and
//! reassembly, each feeding its [`Session`].
//!
//! Roles come from the handshake (the SYN's sender is the client); without one, from ports
//! (a well-known or registered server port on one side only), else the first speaker is the
//! client (a protocol probe may find that guess reversed: see [`super::session`]). A new SYN
//! on a closed 5-tuple starts a new connection. A TCP connection's two reassembled directions
//! reach its session merged in the order their acknowledgement numbers give
//! ([`super::order`]), whatever order the capture has them in. Idle connections expire
//! after a timeout in capture time, so memory is bounded by the number of live connections,
//! not by the capture's length.

use std::sync::Arc;

use rustc_hash::FxHashMap;

use super::connlog::ConnTracker;
use super::order::{Order, Out};
use super::reassembly::{Budget, Reassembler, Segment};
use super::session::{Ctx, Session};
use super::{FlowConfig, FlowStats, is_server_port};
use crate::decode::{Decoded, flags};
use crate::model::{
    ConnInfo, ConnKey, ConnState, ConnSummary, Dir, Peers, ReasmStats, RoleBy, Transport, Ts,
    Vantage, community_id, make_uid,
};

/// How long a finished connection's entry stays to absorb late packets (capture time).
const LINGER_NS: u64 = 5 * 1_000_000_000;

struct Conn {
    info: Arc<ConnInfo>,
    session: Session,
    tcp: [Reassembler; 2],
    /// The two directions merged.
    order: Order,
    last_ts: Ts,
    packets: [u64; 2],
    bytes: [u64; 2],
    role_by: RoleBy,
    fin: [bool; 2],
    rst: bool,
    /// ISN of the client's SYN, to tell a new connection on the same 5-tuple.
    client_isn: Option<u32>,
    /// Finished (FINs both ways, or RST): its summary is written; the entry stays a while to
    /// absorb the last ACKs and retransmissions instead of mistaking them for a new connection.
    done: bool,
    /// Zeek's view, for conn.log: fed every packet, the late ones too.
    zeek: ConnTracker,
    /// The summary of a done connection, given out when its entry goes (so that conn.log's
    /// counters include the late packets, as Zeek's do until its 5 s close delay).
    pending: Option<ConnSummary>,
}

/// Bytes of a connection's table entry (without its key).
pub(crate) const ENTRY_BYTES: usize = std::mem::size_of::<Conn>();

/// A connection as one interface saw it: the same connection captured on two interfaces (both
/// pods' veths, two nodes' archives) is two views, linked into one connection by
/// `conn::views`.
type ViewKey = (ConnKey, u32);

/// The packet-vantage connections of one shard.
pub(crate) struct PacketTable {
    conns: FxHashMap<ViewKey, Conn>,
    budget: Budget,
    cfg: FlowConfig,
    /// Flow counters.
    pub(crate) stats: FlowStats,
    /// Reassembly counters of ended connections.
    pub(crate) reasm: ReasmStats,
}

impl PacketTable {
    /// An empty table.
    pub(crate) fn new(cfg: FlowConfig) -> Self {
        PacketTable {
            conns: FxHashMap::default(),
            budget: Budget {
                used: 0,
                limit: cfg.ooo_limit,
                per_direction: cfg.ooo_per_direction,
            },
            cfg,
            stats: FlowStats::default(),
            reasm: ReasmStats::default(),
        }
    }

    /// Live connections.
    pub(crate) fn live(&self) -> usize {
        self.conns.len()
    }

    fn create(&mut self, key: ConnKey, d: &Decoded<'_>, ts: Ts, iface: u32) -> Conn {
        let syn = d.flags & flags::SYN != 0;
        let ack = d.flags & flags::ACK != 0;
        let (orig, resp, role_by) = if d.transport == Transport::Tcp && syn {
            if ack {
                (d.dst, d.src, RoleBy::Handshake)
            } else {
                (d.src, d.dst, RoleBy::Handshake)
            }
        } else if is_server_port(d.src.port) && !is_server_port(d.dst.port) {
            (d.dst, d.src, RoleBy::Port)
        } else if is_server_port(d.dst.port) && !is_server_port(d.src.port) {
            (d.src, d.dst, RoleBy::Port)
        } else {
            (d.src, d.dst, RoleBy::FirstSpeaker)
        };
        self.stats.connections += 1;
        let partial = d.transport == Transport::Tcp && !syn;
        if partial {
            self.stats.partial += 1;
        }
        let info = Arc::new(ConnInfo {
            // Views of one connection on two interfaces whose first packets have the same
            // time get the same uid: the linker tells them apart by vantage point.
            uid: make_uid(&key, ts),
            orig,
            resp,
            transport: d.transport,
            vantage: Vantage::Packets { iface },
            first_ts: ts,
            partial,
            // Outer addresses oriented client → server.
            tunnel: d
                .tunnel
                .map(|t| if d.src == orig { t } else { t.flipped() }),
            community_id: community_id(self.cfg.community_id_seed, d.transport, d.src, d.dst),
            duplicate: false,
        });
        Conn {
            session: Session::new(info.clone()),
            info,
            tcp: [Reassembler::default(), Reassembler::default()],
            order: Order::default(),
            last_ts: ts,
            packets: [0; 2],
            bytes: [0; 2],
            role_by,
            fin: [false; 2],
            rst: false,
            client_isn: (syn && !ack).then_some(d.seq),
            done: false,
            zeek: ConnTracker::new(d, ts),
            pending: None,
        }
    }

    /// Processes one decoded packet.
    pub(crate) fn packet(
        &mut self,
        ts: Ts,
        iface: u32,
        d: &Decoded<'_>,
        ctx: &mut Ctx,
        ended: &mut Vec<ConnSummary>,
    ) {
        let key = (ConnKey::new(d.src, d.dst, d.transport), iface);
        // Zeek's timers, checked when the 5-tuple's next packet comes: a finished connection
        // is gone 5 s after its last packet, an unanswered SYN 5 s after it was sent; the
        // packet then starts a new connection.
        if self.conns.get(&key).is_some_and(|c| {
            (c.done && ts.saturating_sub(c.last_ts) > LINGER_NS) || c.zeek.attempt_expired(ts)
        }) && let Some(old) = self.conns.remove(&key)
        {
            let at = old.last_ts;
            self.close(old, at, ctx, ended);
        }
        let syn_only =
            d.transport == Transport::Tcp && d.flags & (flags::SYN | flags::ACK) == flags::SYN;
        if syn_only {
            // A fresh SYN on a 5-tuple whose connection closed, or with another ISN, is a new
            // connection (port reuse).
            let reuse = self.conns.get(&key).is_some_and(|c| {
                c.done
                    || c.rst
                    || (c.fin[0] && c.fin[1])
                    || c.client_isn.is_some_and(|isn| isn != d.seq)
            });
            if reuse && let Some(old) = self.conns.remove(&key) {
                self.close(old, ts, ctx, ended);
            }
        }
        let conn = match self.conns.get_mut(&key) {
            Some(c) => c,
            None => {
                let c = self.create(key.0, d, ts, iface);
                ctx.opened.push(c.info.clone());
                self.conns.entry(key).or_insert(c)
            }
        };
        conn.zeek.packet(d, ts);
        if conn.done {
            conn.last_ts = ts;
            self.stats.late_packets += 1;
            return;
        }
        conn.last_ts = ts;
        let dir = if d.src == conn.info.orig {
            Dir::ToServer
        } else {
            Dir::ToClient
        };
        let di = dir.idx();
        conn.packets[di] += 1;
        conn.bytes[di] += u64::from(d.wire_len);
        match d.transport {
            Transport::Udp => {
                self.stats.udp_packets += 1;
                conn.session.data(dir, ts, d.payload, ctx);
            }
            Transport::Tcp => {
                self.stats.tcp_packets += 1;
                if Self::tcp(conn, dir, ts, d, &mut self.budget, ctx) {
                    self.close_in_place(&key, ts, ctx);
                }
            }
        }
    }

    /// Feeds a TCP segment; returns true when the connection is over.
    fn tcp(
        conn: &mut Conn,
        dir: Dir,
        ts: Ts,
        d: &Decoded<'_>,
        budget: &mut Budget,
        ctx: &mut Ctx,
    ) -> bool {
        let di = dir.idx();
        let Conn {
            tcp,
            session,
            order,
            fin,
            rst,
            ..
        } = conn;
        let syn = d.flags & flags::SYN != 0;
        let is_fin = d.flags & flags::FIN != 0;
        let ack = (d.flags & flags::ACK != 0).then_some(d.ack);
        let mut out = |dd: Dir, o: Out<'_>| emit(session, dd, o, ctx);
        if syn {
            // Where each direction's bytes start, even before its own SYN is seen.
            order.start(dir, d.seq.wrapping_add(1));
            if let Some(a) = ack {
                order.start(dir.flip(), a);
            }
        }
        // The peer's acknowledgement may reveal a hole in the other direction.
        if let Some(a) = ack {
            let other = dir.flip();
            tcp[other.idx()].ack(a, ts, budget, &mut |dl| order.push(other, dl, &mut out));
        }
        if d.flags & flags::RST != 0 {
            *rst = true;
            for dd in [Dir::ToServer, Dir::ToClient] {
                if !tcp[dd.idx()].ended() {
                    tcp[dd.idx()].finish(ts, budget, &mut |dl| order.push(dd, dl, &mut out));
                    order.end(dd, ts, &mut out);
                }
            }
            order.flush(budget, &mut out);
            return true;
        }
        let was_ended = tcp[di].ended();
        let sg = Segment {
            ts,
            seq: d.seq,
            ack,
            syn,
            fin: is_fin,
            payload: d.payload,
            wire_len: d.wire_len,
        };
        let ended = tcp[di].segment(&sg, budget, &mut |dl| order.push(dir, dl, &mut out));
        if is_fin {
            fin[di] = true;
        }
        if ended && !was_ended {
            order.end(dir, ts, &mut out);
        }
        order.settle(budget, &mut out);
        let closed = |r: &Reassembler, f: bool| r.ended() || (f && !r.started());
        closed(&tcp[0], fin[0]) && closed(&tcp[1], fin[1])
    }

    /// Finishes a connection but keeps its entry (marked done) for late packets; its summary
    /// waits in the entry until the entry goes.
    fn close_in_place(&mut self, key: &ViewKey, ts: Ts, ctx: &mut Ctx) {
        if let Some(mut c) = self.conns.remove(key) {
            c.pending = Some(self.finish_conn(&mut c, ts, ctx));
            c.done = true;
            c.session = Session::new(c.info.clone());
            self.conns.insert(*key, c);
        }
    }

    /// Gives out a connection's summary (finishing it first unless it is done already).
    fn close(&mut self, mut c: Conn, ts: Ts, ctx: &mut Ctx, ended: &mut Vec<ConnSummary>) {
        let mut s = match c.pending.take() {
            Some(s) => s,
            None => self.finish_conn(&mut c, ts, ctx),
        };
        s.conn_log = Some(c.zeek.log());
        ended.push(s);
    }

    fn finish_conn(&mut self, c: &mut Conn, ts: Ts, ctx: &mut Ctx) -> ConnSummary {
        let Conn {
            tcp,
            session,
            order,
            info,
            ..
        } = c;
        if info.transport == Transport::Tcp {
            let budget = &mut self.budget;
            let mut out = |dd: Dir, o: Out<'_>| emit(session, dd, o, ctx);
            for d in [Dir::ToServer, Dir::ToClient] {
                if !tcp[d.idx()].ended() {
                    tcp[d.idx()].finish(ts, budget, &mut |dl| order.push(d, dl, &mut out));
                    order.end(d, ts, &mut out);
                }
            }
            order.flush(budget, &mut out);
        }
        c.session.finish(ts.max(c.last_ts), ctx);
        let mut reasm = c.tcp[0].stats;
        reasm.add(&c.tcp[1].stats);
        reasm.add(&c.order.stats);
        self.reasm.add(&reasm);
        let state = if c.rst {
            ConnState::Reset
        } else if c.fin[0] && c.fin[1] {
            ConnState::Closed
        } else {
            ConnState::Open
        };
        if c.session.roles_reversed()
            && c.info.transport == Transport::Udp
            && c.session.protocol() == Some("dns")
            && c.zeek.orig() == c.info.orig
        {
            // Zeek's DNS analyzer flips a connection whose first message is a response.
            c.zeek.flip_after_first_packet();
        }
        let (info, packets, bytes, role_by) =
            c.session.settled(&c.info, c.packets, c.bytes, c.role_by);
        ConnSummary {
            peers: Peers::default(),
            protocol: c.session.protocol(),
            info,
            last_ts: c.last_ts,
            packets,
            bytes,
            reasm,
            role_by,
            state,
            conn_log: None,
        }
    }

    /// Finishes connections idle for longer than their timeout at capture time `now`.
    pub(crate) fn sweep(&mut self, now: Ts, ctx: &mut Ctx, ended: &mut Vec<ConnSummary>) {
        let cfg = self.cfg;
        let idle: Vec<ViewKey> = self
            .conns
            .iter()
            .filter(|(k, c)| {
                let limit = if c.done {
                    LINGER_NS
                } else if k.0.transport() == Transport::Tcp {
                    cfg.tcp_idle_ns
                } else {
                    cfg.udp_idle_ns
                };
                now.saturating_sub(c.last_ts) > limit
            })
            .map(|(k, _)| *k)
            .collect();
        for k in idle {
            if let Some(c) = self.conns.remove(&k) {
                if !c.done {
                    self.stats.expired += 1;
                }
                let ts = c.last_ts;
                self.close(c, ts, ctx, ended);
            }
        }
    }

    /// Finishes the connections idle longest until about `bytes` are freed, each counted at
    /// `cost` plus its session's memory (the shard's memory budget is exceeded). Finished
    /// connections kept for late packets go first, uncounted; the others are counted in
    /// [`FlowStats::evicted`](super::FlowStats) with a `connection_evicted` notice. Returns
    /// the bytes freed.
    pub(crate) fn evict(
        &mut self,
        bytes: usize,
        cost: usize,
        ctx: &mut Ctx,
        ended: &mut Vec<ConnSummary>,
    ) -> usize {
        let mut order: Vec<(bool, Ts, &str, ViewKey)> = self
            .conns
            .iter()
            .map(|(k, c)| (!c.done, c.last_ts, c.info.uid.as_str(), *k))
            .collect();
        order.sort_unstable_by(|a, b| (a.0, a.1, a.2).cmp(&(b.0, b.1, b.2)));
        let keys: Vec<ViewKey> = order.into_iter().map(|(.., k)| k).collect();
        let mut freed = 0;
        for k in keys {
            if freed >= bytes {
                break;
            }
            let Some(c) = self.conns.remove(&k) else {
                continue;
            };
            freed += cost + c.session.mem();
            let ts = c.last_ts;
            if !c.done {
                self.stats.evicted += 1;
                ctx.notice(
                    ts,
                    Some(&c.info),
                    "conn",
                    "connection_evicted",
                    "finished early: its shard of the memory budget (--memory) was full".into(),
                );
            }
            // A finished connection hands out the summary its entry kept.
            self.close(c, ts, ctx, ended);
        }
        freed
    }

    /// End of input: finishes every connection, oldest first.
    pub(crate) fn finish_all(&mut self, ctx: &mut Ctx, ended: &mut Vec<ConnSummary>) {
        let mut keys: Vec<ViewKey> = self.conns.keys().copied().collect();
        keys.sort_by_key(|k| self.conns.get(k).map(|c| c.info.first_ts));
        for k in keys {
            if let Some(c) = self.conns.remove(&k) {
                let ts = c.last_ts;
                self.close(c, ts, ctx, ended);
            }
        }
    }
}

fn emit(session: &mut Session, dir: Dir, o: Out<'_>, ctx: &mut Ctx) {
    match o {
        Out::Data { ts, data } => session.data(dir, ts, data, ctx),
        Out::Gap { ts, len } => session.gap(dir, ts, len, ctx),
        Out::End { ts } => session.end(dir, ts, ctx),
    }
}
