//! Flows: connections keyed by their 5-tuple, client/server roles, TCP state, and the shard
//! that owns a subset of them.
//!
//! Roles come from the handshake (the SYN's sender is the client); without one, from ports
//! (a well-known or registered server port on one side only), else the first speaker is the
//! client (a protocol probe may find that guess reversed: see [`crate::session`]). A new SYN
//! on a closed 5-tuple starts a new connection. Idle connections expire
//! after a timeout in capture time, so memory is bounded by the number of live connections,
//! not by the capture's length.

use std::sync::Arc;

use rustc_hash::FxHashMap;

use crate::decode::{Decoded, Endpoint, Transport, flags};
use crate::exchange::{ConnInfo, Vantage};
use crate::proto::{Dir, PROTOCOLS, Ts};
use crate::reassembly::{Budget, Delivery, ReasmStats, Reassembler};
use crate::session::{Ctx, Session};

/// How long a finished connection's entry stays to absorb late packets (capture time).
const LINGER_NS: u64 = 5 * 1_000_000_000;

/// Canonical 5-tuple: the smaller endpoint first.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct ConnKey {
    lo: Endpoint,
    hi: Endpoint,
    transport: Transport,
}

impl ConnKey {
    /// The key of a packet between `a` and `b`.
    pub fn new(a: Endpoint, b: Endpoint, transport: Transport) -> Self {
        if a <= b {
            ConnKey {
                lo: a,
                hi: b,
                transport,
            }
        } else {
            ConnKey {
                lo: b,
                hi: a,
                transport,
            }
        }
    }

    /// A hash that is the same for both directions, for sharding.
    pub fn shard_hash(&self) -> u64 {
        use std::hash::{Hash, Hasher};
        let mut h = rustc_hash::FxHasher::default();
        self.hash(&mut h);
        h.finish()
    }
}

/// Is `port` one a server usually listens on?
pub fn is_server_port(port: u16) -> bool {
    port < 1024
        || PROTOCOLS.iter().any(|p| p.ports.contains(&port))
        || matches!(
            port,
            1433 | 1521
                | 2379
                | 3000
                | 4317
                | 5000
                | 8000
                | 8080
                | 8443
                | 8888
                | 9090
                | 9200
                | 9092
                | 11211
                | 27017
        )
}

/// How the client/server roles were decided.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RoleBy {
    /// From the SYN / SYN-ACK.
    Handshake,
    /// From a server port on one side.
    Port,
    /// The first packet's sender is the client.
    FirstSpeaker,
    /// The protocol's first message showed the guess wrong (e.g. a DNS response first):
    /// roles swapped by detection.
    Content,
}

/// TCP connection state as the reports show it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ConnState {
    /// Still open at the end of the capture (or expired idle).
    Open,
    /// Closed with FINs.
    Closed,
    /// Reset.
    Reset,
}

/// A connection's totals, written when it ends.
#[derive(Clone, Debug)]
pub struct ConnSummary {
    /// The connection.
    pub info: Arc<ConnInfo>,
    /// Protocol detected, if any.
    pub protocol: Option<&'static str>,
    /// Last packet.
    pub last_ts: Ts,
    /// Packets per direction (to server, to client).
    pub packets: [u64; 2],
    /// Payload bytes on the wire per direction.
    pub bytes: [u64; 2],
    /// Reassembly counters, both directions.
    pub reasm: ReasmStats,
    /// How roles were decided.
    pub role_by: RoleBy,
    /// End state.
    pub state: ConnState,
    /// The pods or services at both ends, from the archive's metadata (empty without it).
    pub peers: crate::k8s::Peers,
}

struct Conn {
    info: Arc<ConnInfo>,
    session: Session,
    tcp: [Reassembler; 2],
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
}

/// Packets for connections pinned to another interface are counted and skipped, so that a
/// connection captured on two interfaces (both pods' veths) is analyzed once.
#[derive(Debug, Default, Clone, Copy)]
pub struct FlowStats {
    /// Connections created.
    pub connections: u64,
    /// Connections that began before the capture (no handshake seen).
    pub partial: u64,
    /// Connections expired while idle.
    pub expired: u64,
    /// Packets of a connection seen on a second interface (skipped).
    pub other_iface_packets: u64,
    /// TCP packets processed.
    pub tcp_packets: u64,
    /// UDP packets processed.
    pub udp_packets: u64,
    /// Packets of a connection after it finished (last ACKs, retransmitted FINs).
    pub late_packets: u64,
}

impl FlowStats {
    /// Adds another set of counters.
    pub fn add(&mut self, o: &FlowStats) {
        self.connections += o.connections;
        self.partial += o.partial;
        self.expired += o.expired;
        self.other_iface_packets += o.other_iface_packets;
        self.tcp_packets += o.tcp_packets;
        self.udp_packets += o.udp_packets;
        self.late_packets += o.late_packets;
    }
}

/// Timeouts and bounds of a shard.
#[derive(Clone, Copy, Debug)]
pub struct FlowConfig {
    /// A TCP connection idle this long (capture time) is finished.
    pub tcp_idle_ns: u64,
    /// A UDP flow idle this long is finished.
    pub udp_idle_ns: u64,
    /// Bound on out-of-order bytes per shard.
    pub ooo_limit: usize,
    /// Bound on out-of-order bytes per connection direction.
    pub ooo_per_direction: usize,
}

impl Default for FlowConfig {
    fn default() -> Self {
        FlowConfig {
            tcp_idle_ns: 300 * 1_000_000_000,
            udp_idle_ns: 60 * 1_000_000_000,
            ooo_limit: 256 << 20,
            ooo_per_direction: 2 << 20,
        }
    }
}

/// A subset of the connections, processed by one worker at a time.
pub struct Shard {
    conns: FxHashMap<ConnKey, Conn>,
    budget: Budget,
    cfg: FlowConfig,
    /// L7 output and counters.
    pub ctx: Ctx,
    /// Connections that ended since the last [`Shard::take_output`].
    pub ended: Vec<ConnSummary>,
    /// Flow counters.
    pub stats: FlowStats,
    /// Reassembly counters of ended connections.
    pub reasm: ReasmStats,
    /// Socket streams (Juno socket events).
    pub sockets: crate::sockets::SocketTable,
    last_sweep: Ts,
}

impl std::fmt::Debug for Shard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Shard")
            .field("conns", &self.conns.len())
            .finish_non_exhaustive()
    }
}

/// Deterministic Zeek-style connection id: `C` and 17 base62 digits of a 96-bit hash of the
/// 5-tuple and the first timestamp (which tells apart reuses of a 5-tuple). It depends on
/// nothing else — not on sharding or thread count — so outputs are reproducible.
pub fn make_uid(key: &ConnKey, first_ts: Ts) -> String {
    // FNV-1a, two 64-bit lanes with different offsets: stable across Rust versions.
    let mut bytes = Vec::with_capacity(64);
    bytes.extend_from_slice(&key.lo.addr);
    bytes.extend_from_slice(&key.lo.port.to_be_bytes());
    bytes.extend_from_slice(&key.hi.addr);
    bytes.extend_from_slice(&key.hi.port.to_be_bytes());
    bytes.push(key.transport as u8);
    bytes.extend_from_slice(&first_ts.to_be_bytes());
    let fnv = |offset: u64| {
        bytes.iter().fold(offset, |h, &b| {
            (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01B3)
        })
    };
    let mut n = (u128::from(fnv(0xcbf2_9ce4_8422_2325)) << 32)
        ^ u128::from(fnv(0x6c62_272e_07bb_0142) >> 32);
    n &= (1u128 << 96) - 1;
    const DIGITS: &[u8] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
    let mut s = vec![b'C'];
    for _ in 0..17 {
        s.push(DIGITS[(n % 62) as usize]);
        n /= 62;
    }
    String::from_utf8(s).unwrap_or_default()
}

impl Shard {
    /// An empty shard.
    pub fn new(cfg: FlowConfig) -> Self {
        Shard {
            conns: FxHashMap::default(),
            budget: Budget {
                used: 0,
                limit: cfg.ooo_limit,
                per_direction: cfg.ooo_per_direction,
            },
            cfg,
            ctx: Ctx::default(),
            ended: Vec::new(),
            stats: FlowStats::default(),
            reasm: ReasmStats::default(),
            sockets: crate::sockets::SocketTable::default(),
            last_sweep: 0,
        }
    }

    /// Live connections.
    pub fn live(&self) -> usize {
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
            uid: make_uid(&key, ts),
            orig,
            resp,
            transport: d.transport,
            vantage: Vantage::Packets { iface },
            first_ts: ts,
            partial,
        });
        Conn {
            session: Session::new(info.clone()),
            info,
            tcp: [Reassembler::default(), Reassembler::default()],
            last_ts: ts,
            packets: [0; 2],
            bytes: [0; 2],
            role_by,
            fin: [false; 2],
            rst: false,
            client_isn: (syn && !ack).then_some(d.seq),
            done: false,
        }
    }

    /// Processes one decoded packet.
    pub fn packet(&mut self, ts: Ts, iface: u32, d: &Decoded<'_>) {
        let key = ConnKey::new(d.src, d.dst, d.transport);
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
            if reuse
                && let Some(old) = self.conns.remove(&key)
                && !old.done
            {
                self.close(old, ts);
            }
        }
        let conn = match self.conns.get_mut(&key) {
            Some(c) => c,
            None => {
                let c = self.create(key, d, ts, iface);
                self.conns.entry(key).or_insert(c)
            }
        };
        if let Vantage::Packets { iface: pinned } = conn.info.vantage
            && pinned != iface
        {
            self.stats.other_iface_packets += 1;
            return;
        }
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
                conn.session.data(dir, ts, d.payload, &mut self.ctx);
            }
            Transport::Tcp => {
                self.stats.tcp_packets += 1;
                if Self::tcp(conn, dir, ts, d, &mut self.budget, &mut self.ctx) {
                    self.close_in_place(&key, ts);
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
            fin,
            rst,
            ..
        } = conn;
        let syn = d.flags & flags::SYN != 0;
        let is_fin = d.flags & flags::FIN != 0;
        // The peer's acknowledgement may reveal a hole in the other direction.
        if d.flags & flags::ACK != 0 {
            let other = dir.flip();
            tcp[other.idx()].ack(d.ack, ts, budget, &mut |dl| {
                deliver(session, other, dl, ctx)
            });
        }
        if d.flags & flags::RST != 0 {
            *rst = true;
            for dd in [Dir::ToServer, Dir::ToClient] {
                if !tcp[dd.idx()].ended() {
                    tcp[dd.idx()].finish(ts, budget, &mut |dl| deliver(session, dd, dl, ctx));
                    session.end(dd, ts, ctx);
                }
            }
            return true;
        }
        let was_ended = tcp[di].ended();
        let ended = tcp[di].segment(
            ts,
            d.seq,
            syn,
            is_fin,
            d.payload,
            d.wire_len,
            budget,
            &mut |dl| deliver(session, dir, dl, ctx),
        );
        if is_fin {
            fin[di] = true;
        }
        if ended && !was_ended {
            session.end(dir, ts, ctx);
        }
        let closed = |r: &Reassembler, f: bool| r.ended() || (f && !r.started());
        closed(&tcp[0], fin[0]) && closed(&tcp[1], fin[1])
    }

    /// Finishes a connection but keeps its entry (marked done) for late packets.
    fn close_in_place(&mut self, key: &ConnKey, ts: Ts) {
        if let Some(mut c) = self.conns.remove(key) {
            self.finish_conn(&mut c, ts);
            c.done = true;
            c.session = Session::new(c.info.clone());
            self.conns.insert(*key, c);
        }
    }

    fn close(&mut self, mut c: Conn, ts: Ts) {
        self.finish_conn(&mut c, ts);
    }

    fn finish_conn(&mut self, c: &mut Conn, ts: Ts) {
        let Conn {
            tcp, session, info, ..
        } = c;
        if info.transport == Transport::Tcp {
            for d in [Dir::ToServer, Dir::ToClient] {
                if !tcp[d.idx()].ended() {
                    tcp[d.idx()].finish(ts, &mut self.budget, &mut |dl| {
                        deliver(session, d, dl, &mut self.ctx)
                    });
                    session.end(d, ts, &mut self.ctx);
                }
            }
        }
        c.session.finish(ts.max(c.last_ts), &mut self.ctx);
        let mut reasm = c.tcp[0].stats;
        reasm.add(&c.tcp[1].stats);
        self.reasm.add(&reasm);
        let state = if c.rst {
            ConnState::Reset
        } else if c.fin[0] && c.fin[1] {
            ConnState::Closed
        } else {
            ConnState::Open
        };
        let (info, packets, bytes, role_by) = if c.session.roles_reversed() {
            let [p0, p1] = c.packets;
            let [b0, b1] = c.bytes;
            (
                c.session.info().clone(),
                [p1, p0],
                [b1, b0],
                RoleBy::Content,
            )
        } else {
            (c.info.clone(), c.packets, c.bytes, c.role_by)
        };
        self.ended.push(ConnSummary {
            peers: crate::k8s::Peers::default(),
            protocol: c.session.protocol(),
            info,
            last_ts: c.last_ts,
            packets,
            bytes,
            reasm,
            role_by,
            state,
        });
    }

    /// Finishes connections idle for longer than their timeout at capture time `now` (the
    /// pipeline passes the same time to every shard, so what expires when does not depend on
    /// sharding). Checked at most every 10 s of capture time.
    pub fn sweep(&mut self, now: Ts) {
        const EVERY: u64 = 10 * 1_000_000_000;
        if now < self.last_sweep + EVERY {
            return;
        }
        self.last_sweep = now;
        self.sockets
            .sweep(now, self.cfg.tcp_idle_ns, &mut self.ctx, &mut self.ended);
        let cfg = self.cfg;
        let idle: Vec<ConnKey> = self
            .conns
            .iter()
            .filter(|(k, c)| {
                let limit = if c.done {
                    LINGER_NS
                } else if k.transport == Transport::Tcp {
                    cfg.tcp_idle_ns
                } else {
                    cfg.udp_idle_ns
                };
                now.saturating_sub(c.last_ts) > limit
            })
            .map(|(k, _)| *k)
            .collect();
        for k in idle {
            if let Some(c) = self.conns.remove(&k)
                && !c.done
            {
                self.stats.expired += 1;
                let ts = c.last_ts;
                self.close(c, ts);
            }
        }
    }

    /// Processes one socket event (Juno archives).
    pub fn socket(&mut self, ev: &juno_archive::SocketEvent<'_>, payload: &[u8]) {
        self.sockets
            .event(ev, payload, &mut self.ctx, &mut self.ended);
    }

    /// End of input: finishes every connection.
    pub fn finish_all(&mut self) {
        self.sockets.finish_all(&mut self.ctx, &mut self.ended);
        let mut keys: Vec<ConnKey> = self.conns.keys().copied().collect();
        keys.sort_by_key(|k| self.conns.get(k).map(|c| c.info.first_ts));
        for k in keys {
            if let Some(c) = self.conns.remove(&k)
                && !c.done
            {
                let ts = c.last_ts;
                self.close(c, ts);
            }
        }
    }
}

fn deliver(session: &mut Session, dir: Dir, d: Delivery<'_>, ctx: &mut Ctx) {
    match d {
        Delivery::Data { ts, data } => session.data(dir, ts, data, ctx),
        Delivery::Gap { ts, len } => session.gap(dir, ts, len, ctx),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uid_is_deterministic_and_zeek_shaped() {
        let a = Endpoint::new([10, 0, 0, 1].into(), 1000);
        let b = Endpoint::new([10, 0, 0, 2].into(), 80);
        let k = ConnKey::new(a, b, Transport::Tcp);
        assert_eq!(k, ConnKey::new(b, a, Transport::Tcp));
        let u = make_uid(&k, 5);
        assert_eq!(u.len(), 18);
        assert!(u.starts_with('C'));
        assert_eq!(u, make_uid(&k, 5));
        assert_ne!(u, make_uid(&k, 6));
    }
}
