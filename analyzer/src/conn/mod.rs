//! Connections: the packet table (5-tuples, roles, TCP state and reassembly, the two
//! directions merged by acknowledgement numbers), the socket streams of Juno archives, and
//! the [`Shard`] that owns a subset of both and feeds each connection's bytes to its L7
//! [`session::Session`].
//!
//! Roles come from the handshake (the SYN's sender is the client); without one, from ports
//! (a well-known or registered server port on one side only), else the first speaker is the
//! client (a protocol probe may find that guess reversed: see [`session`]). Idle connections
//! expire after a timeout in capture time, so memory is bounded by the number of live
//! connections, not by the capture's length; and the live connections are bounded by the
//! shard's share of the memory budget ([`FlowConfig::conn_memory`]): a table, its sessions,
//! their parsers and matchers count against it, and when it is exceeded the connections idle
//! longest are finished early — *evicted* — counted in [`FlowStats::evicted`] and reported
//! (a `connection_evicted` notice each).

pub mod connlog;
pub mod order;
pub mod packets;
pub mod reassembly;
pub mod session;
pub mod sockets;
pub mod views;

use juno_archive::SocketEvent;

use crate::decode::Decoded;
use crate::model::{ConnInfo, ConnKey, ConnSummary, ReasmStats, Ts};
use crate::proto::PROTOCOLS;
use packets::PacketTable;
use session::{Ctx, Session};
use sockets::{SocketStats, SocketTable};

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

/// Flow counters. (A connection captured on two interfaces is a view per interface, linked
/// into one connection by [`views`].)
#[derive(Debug, Default, Clone, Copy)]
pub struct FlowStats {
    /// Connections created.
    pub connections: u64,
    /// Connections that began before the capture (no handshake seen).
    pub partial: u64,
    /// Connections expired while idle.
    pub expired: u64,
    /// TCP packets processed.
    pub tcp_packets: u64,
    /// UDP packets processed.
    pub udp_packets: u64,
    /// Packets of a connection after it finished (last ACKs, retransmitted FINs).
    pub late_packets: u64,
    /// Connections and socket streams finished early to keep within the memory budget (the
    /// longest idle first).
    pub evicted: u64,
}

impl FlowStats {
    /// Adds another set of counters.
    pub fn add(&mut self, o: &FlowStats) {
        self.connections += o.connections;
        self.partial += o.partial;
        self.expired += o.expired;
        self.tcp_packets += o.tcp_packets;
        self.udp_packets += o.udp_packets;
        self.late_packets += o.late_packets;
        self.evicted += o.evicted;
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
    /// Seed of the connections' Community IDs (`--community-id-seed`; the spec's default 0).
    pub community_id_seed: u16,
    /// Bytes the shard's connections may hold: table entries, sessions (detection buffers,
    /// parser and matcher state). Beyond it, the connections idle longest are evicted.
    pub conn_memory: usize,
    /// Bytes a connection's detection buffer holds at most.
    pub detect_limit: usize,
}

impl Default for FlowConfig {
    fn default() -> Self {
        FlowConfig {
            tcp_idle_ns: 300 * 1_000_000_000,
            udp_idle_ns: 60 * 1_000_000_000,
            ooo_limit: 4 << 20,
            ooo_per_direction: 2 << 20,
            community_id_seed: 0,
            conn_memory: 16 << 20,
            detect_limit: session::DETECT_LIMIT,
        }
    }
}

/// Heap bytes of a connection's Community ID (`1:` + 28 base64 characters) with the
/// allocator's overhead.
const COMMUNITY_ID_BYTES: usize = 48;

/// What the memory budget counts for a connection besides its session's own report: its
/// table entry (key, state, reassemblers, conn.log tracker, the summary a finished one keeps;
/// twice, for the hash table's spare capacity), its shared description and allocator
/// overhead.
pub const CONN_BYTES: usize = 2 * (std::mem::size_of::<ConnKey>() + packets::ENTRY_BYTES + 128)
    + std::mem::size_of::<ConnInfo>()
    + COMMUNITY_ID_BYTES
    + 96;

/// The same for a socket stream.
pub const STREAM_BYTES: usize = 2 * (16 + std::mem::size_of::<Session>() + 160)
    + std::mem::size_of::<ConnInfo>()
    + COMMUNITY_ID_BYTES
    + 128;

/// A subset of the connections, processed by one worker at a time.
pub struct Shard {
    packets: PacketTable,
    sockets: SocketTable,
    cfg: FlowConfig,
    /// L7 output and counters.
    pub ctx: Ctx,
    /// Connections that ended since the pipeline last took them.
    pub ended: Vec<ConnSummary>,
    last_sweep: Ts,
}

impl std::fmt::Debug for Shard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Shard")
            .field("conns", &self.packets.live())
            .finish_non_exhaustive()
    }
}

impl Shard {
    /// An empty shard.
    pub fn new(cfg: FlowConfig) -> Self {
        Shard {
            packets: PacketTable::new(cfg),
            sockets: SocketTable::new(cfg.community_id_seed),
            cfg,
            ctx: Ctx::with_detect_limit(cfg.detect_limit),
            ended: Vec::new(),
            last_sweep: 0,
        }
    }

    /// Live packet-vantage connections.
    pub fn live(&self) -> usize {
        self.packets.live()
    }

    /// Flow counters (packet connections and socket streams).
    pub fn stats(&self) -> FlowStats {
        let mut s = self.packets.stats;
        s.evicted += self.sockets.evicted;
        s
    }

    /// Socket stream counters.
    pub fn socket_stats(&self) -> &SocketStats {
        &self.sockets.stats
    }

    /// Bytes the shard's connections hold, as the memory budget counts them.
    pub fn mem(&self) -> usize {
        self.packets.live() * CONN_BYTES
            + self.sockets.live() * STREAM_BYTES
            + self.ctx.session_bytes
    }

    /// Evicts the connections idle longest when the shard holds more than its share: down to
    /// three quarters of it, so that evictions come in rounds, not one per packet.
    fn keep_within_budget(&mut self) {
        let limit = self.cfg.conn_memory;
        let used = self.mem();
        if used <= limit {
            return;
        }
        let want = used - limit / 4 * 3;
        // The bigger table first.
        let (ctx, ended) = (&mut self.ctx, &mut self.ended);
        if self.packets.live() * CONN_BYTES >= self.sockets.live() * STREAM_BYTES {
            let freed = self.packets.evict(want, CONN_BYTES, ctx, ended);
            if freed < want {
                self.sockets.evict(want - freed, STREAM_BYTES, ctx, ended);
            }
        } else {
            let freed = self.sockets.evict(want, STREAM_BYTES, ctx, ended);
            if freed < want {
                self.packets.evict(want - freed, CONN_BYTES, ctx, ended);
            }
        }
    }

    /// Reassembly counters of ended connections.
    pub fn reasm(&self) -> &ReasmStats {
        &self.packets.reasm
    }

    /// Processes one decoded packet.
    pub fn packet(&mut self, ts: Ts, iface: u32, d: &Decoded<'_>) {
        self.packets
            .packet(ts, iface, d, &mut self.ctx, &mut self.ended);
        self.keep_within_budget();
    }

    /// Processes one socket event (Juno archives).
    pub fn socket(&mut self, ev: &SocketEvent<'_>, payload: &[u8]) {
        self.sockets
            .event(ev, payload, &mut self.ctx, &mut self.ended);
        self.keep_within_budget();
    }

    /// Finishes connections idle for longer than their timeout at capture time `now` (the
    /// pipeline passes the same time to every shard, so what expires when does not depend on
    /// sharding). Checked at most every 10 s of capture time.
    pub fn sweep(&mut self, now: Ts) {
        const EVERY: u64 = 10 * 1_000_000_000;
        if now < self.last_sweep.saturating_add(EVERY) {
            return;
        }
        self.last_sweep = now;
        self.sockets
            .sweep(now, self.cfg.tcp_idle_ns, &mut self.ctx, &mut self.ended);
        self.packets.sweep(now, &mut self.ctx, &mut self.ended);
    }

    /// End of input: finishes every connection.
    pub fn finish_all(&mut self) {
        self.sockets.finish_all(&mut self.ctx, &mut self.ended);
        self.packets.finish_all(&mut self.ctx, &mut self.ended);
    }
}
