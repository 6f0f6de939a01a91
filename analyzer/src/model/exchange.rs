//! Exchanges: a request paired with its response, with timing and protocol fields. This is
//! what every output (JSON lines, Zeek logs, reports) is made from.

use std::sync::Arc;

use super::{Endpoint, Fields, Peers, Transport, Ts, Tunnel};

/// Where a connection was observed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Vantage {
    /// Packets captured on an interface (global interface index).
    Packets {
        /// Interface index.
        iface: u32,
    },
    /// Socket payload captured in a process (Juno archives).
    Socket {
        /// Process id.
        pid: u32,
        /// Process name.
        comm: String,
        /// Socket cookie.
        cookie: u64,
        /// cgroup v2 id of the process (0 when the kernel gave none): names its container
        /// and pod through the archive's container metadata.
        cgroup: u64,
        /// The process is the client (its end is `orig`), else the server (`resp`).
        client: bool,
        /// The plaintext the process read and wrote through a TLS library on this socket
        /// (the recorder's TLS uprobes), not the socket's own bytes.
        tls: bool,
    },
}

impl Vantage {
    /// The kind of vantage point: `packets`, `socket` (a process's socket bytes) or `tls`
    /// (a process's plaintext inside TLS).
    pub fn kind(&self) -> &'static str {
        match self {
            Vantage::Packets { .. } => "packets",
            Vantage::Socket { tls: false, .. } => "socket",
            Vantage::Socket { tls: true, .. } => "tls",
        }
    }
}

/// A connection, as exchanges refer to it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConnInfo {
    /// Zeek-style unique id (`C` + base62), deterministic for the same capture.
    pub uid: String,
    /// Client.
    pub orig: Endpoint,
    /// Server.
    pub resp: Endpoint,
    /// Transport.
    pub transport: Transport,
    /// Where it was seen.
    pub vantage: Vantage,
    /// First packet.
    pub first_ts: Ts,
    /// The capture began after the connection did (no handshake seen).
    pub partial: bool,
    /// The innermost tunnel its first packet was carried in (outer addresses oriented client
    /// → server), when it was encapsulated; `orig` and `resp` are the inner addresses.
    pub tunnel: Option<Tunnel>,
    /// Community ID v1 of the 5-tuple ([`super::community_id`]), with the run's seed; the same
    /// for both directions, for every vantage of the connection.
    pub community_id: String,
    /// Another vantage point's view of the connection was seen first: `uid` is that view's
    /// (the connection's), and graphs, reports and SQL count the connection and its
    /// exchanges from that view, not this one (`conn::views`).
    pub duplicate: bool,
}

impl ConnInfo {
    /// The same connection with client and server exchanged (a protocol showed the roles
    /// were guessed the wrong way round).
    pub fn reversed(&self) -> ConnInfo {
        ConnInfo {
            orig: self.resp,
            resp: self.orig,
            tunnel: self.tunnel.map(Tunnel::flipped),
            ..self.clone()
        }
    }
}

/// The time span of one message.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Span {
    /// First byte.
    pub start: Ts,
    /// Last byte, when the message ended.
    pub end: Option<Ts>,
    /// False when a gap or the end of the stream cut the message short.
    pub complete: bool,
}

/// How an exchange came out of matching.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Outcome {
    /// Request and response, both whole.
    Complete,
    /// Request and response, at least one cut short (gap, end of capture).
    Truncated,
    /// A request that got no response before the connection (or capture) ended.
    NoResponse,
    /// A response without a request (orphan).
    NoRequest,
    /// A request whose end arrived after its exchange was already written (Zeek writes these
    /// as rows of their own; JSON output skips them).
    LateRequestEnd,
}

impl Outcome {
    /// Name used in outputs.
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Complete => "complete",
            Outcome::Truncated => "truncated",
            Outcome::NoResponse => "no_response",
            Outcome::NoRequest => "no_request",
            Outcome::LateRequestEnd => "late_request_end",
        }
    }
}

/// A request/response exchange.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Exchange {
    /// The connection.
    pub conn: Arc<ConnInfo>,
    /// Protocol name.
    pub protocol: &'static str,
    /// 1-based index of the exchange within its connection (Zeek's `trans_depth`).
    pub depth: u32,
    /// When the exchange began: its request's first byte, else its response's, else (for a
    /// late request end) the time of that end. This is Zeek's `ts`.
    pub ts: Ts,
    /// The request, if there was one.
    pub request: Option<Span>,
    /// The final response, if there was one.
    pub response: Option<Span>,
    /// An interim response (e.g. 100 Continue) arrived, at this time.
    pub info_ts: Option<Ts>,
    /// Protocol fields of request and response.
    pub fields: Fields,
    /// How matching went.
    pub outcome: Outcome,
    /// The pods or services at both ends, from the archive's metadata (empty without it).
    pub peers: Peers,
}

impl Exchange {
    /// The exchange's timestamp (see [`Exchange::ts`]).
    pub fn ts(&self) -> Ts {
        self.ts
    }

    /// Request start to response end, when both are known.
    pub fn latency_ns(&self) -> Option<u64> {
        let (q, r) = (self.request?, self.response?);
        r.end?.checked_sub(q.start)
    }

    /// Request end to response start ("time to first byte"), when both are known.
    pub fn ttfb_ns(&self) -> Option<u64> {
        let (q, r) = (self.request?, self.response?);
        r.start.checked_sub(q.end?)
    }
}

/// What a report needs to know about an exchange, computed by its protocol.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct Summary {
    /// What was asked for, e.g. `GET /users/{id}` or `SELECT`.
    pub endpoint: String,
    /// The answer's status, e.g. `200` or `ERR 1064`.
    pub status: Option<String>,
    /// Whether the answer is an error.
    pub failed: bool,
}
