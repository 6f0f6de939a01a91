//! Connections: the packet table (5-tuples, roles, TCP state and reassembly, the two
//! directions merged by acknowledgement numbers), the socket streams of Juno archives, and
//! the [`Shard`] that owns a subset of both and feeds each connection's bytes to its L7
//! [`session::Session`].
//!
//! Roles come from the handshake (the SYN's sender is the client); without one, from ports
//! (a well-known or registered server port on one side only), else the first speaker is the
//! client (a protocol probe may find that guess reversed: see [`session`]). Idle connections
//! expire after a timeout in capture time, so memory is bounded by the number of live
//! connections, not by the capture's length.

pub mod connlog;
pub mod order;
pub mod packets;
pub mod reassembly;
pub mod session;
pub mod sockets;

use juno_archive::SocketEvent;

use crate::decode::Decoded;
use crate::model::{ConnSummary, ReasmStats, Ts};
use crate::proto::PROTOCOLS;
use packets::PacketTable;
use session::Ctx;
use sockets::SocketTable;

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
    /// Seed of the connections' Community IDs (`--community-id-seed`; the spec's default 0).
    pub community_id_seed: u16,
}

impl Default for FlowConfig {
    fn default() -> Self {
        FlowConfig {
            tcp_idle_ns: 300 * 1_000_000_000,
            udp_idle_ns: 60 * 1_000_000_000,
            ooo_limit: 256 << 20,
            ooo_per_direction: 2 << 20,
            community_id_seed: 0,
        }
    }
}

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
            ctx: Ctx::default(),
            ended: Vec::new(),
            last_sweep: 0,
        }
    }

    /// Live packet-vantage connections.
    pub fn live(&self) -> usize {
        self.packets.live()
    }

    /// Flow counters.
    pub fn stats(&self) -> &FlowStats {
        &self.packets.stats
    }

    /// Reassembly counters of ended connections.
    pub fn reasm(&self) -> &ReasmStats {
        &self.packets.reasm
    }

    /// Processes one decoded packet.
    pub fn packet(&mut self, ts: Ts, iface: u32, d: &Decoded<'_>) {
        self.packets
            .packet(ts, iface, d, &mut self.ctx, &mut self.ended);
    }

    /// Processes one socket event (Juno archives).
    pub fn socket(&mut self, ev: &SocketEvent<'_>, payload: &[u8]) {
        self.sockets
            .event(ev, payload, &mut self.ctx, &mut self.ended);
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
