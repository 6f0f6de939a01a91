//! The vocabulary every stage shares: time, direction, endpoints, connections, exchanges,
//! protocol fields, the pods at both ends, tunnels. Nothing here depends on another module of
//! the crate; every other module may depend on this one.

mod community_id;
mod conn;
mod endpoint;
mod exchange;
mod fields;
mod peer;
mod tunnel;

pub use community_id::{FlowEnd, community_id, community_id_v1, community_id_v1_hex, icmp_ports};
pub use conn::{
    ConnKey, ConnLog, ConnState, ConnSummary, ReasmStats, RoleBy, make_uid, tunnel_uid,
};
pub use endpoint::{Endpoint, Transport, ipv4_text};
pub use exchange::{ConnInfo, Exchange, Outcome, Span, Summary, Vantage};
pub use fields::{FIRST_ROOM, Fields, TEXT_INLINE, Text, Value, text_of};
pub use peer::{Peer, Peers};
pub use tunnel::{Tunnel, TunnelKind};

/// Nanoseconds since the Unix epoch.
pub type Ts = u64;

/// Which way bytes flow.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Dir {
    /// Client (originator) to server (responder).
    ToServer,
    /// Server to client.
    ToClient,
}

impl Dir {
    /// Index 0 for client→server, 1 for server→client.
    pub fn idx(self) -> usize {
        match self {
            Dir::ToServer => 0,
            Dir::ToClient => 1,
        }
    }
    /// The other direction.
    pub fn flip(self) -> Dir {
        match self {
            Dir::ToServer => Dir::ToClient,
            Dir::ToClient => Dir::ToServer,
        }
    }
}
