//! Connections: the canonical 5-tuple, the connection id, how roles were decided, and the
//! totals written when a connection ends.

use std::sync::Arc;

use super::{ConnInfo, Endpoint, Peers, Transport, Ts, Tunnel};

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

    /// The transport.
    pub fn transport(&self) -> Transport {
        self.transport
    }

    /// A hash that is the same for both directions, for sharding.
    pub fn shard_hash(&self) -> u64 {
        use std::hash::{Hash, Hasher};
        let mut h = rustc_hash::FxHasher::default();
        self.hash(&mut h);
        h.finish()
    }
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
    pub peers: Peers,
    /// Zeek's conn.log view (packet vantage only).
    pub conn_log: Option<ConnLog>,
}

/// A packet-vantage connection as Zeek's conn.log describes it (docs/zeek.md): Zeek's own
/// originator (which may differ from [`ConnInfo`]'s client), sizes from sequence numbers,
/// state and history by Zeek's rules.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConnLog {
    /// Originator (Zeek's rules: first sender, flipped by likely server ports, SYN-ACKs, …).
    pub orig: Endpoint,
    /// Responder.
    pub resp: Endpoint,
    /// First packet.
    pub first_ts: Ts,
    /// Last packet that counts for the duration (not those after both ends closed).
    pub last_ts: Ts,
    /// Originator's bytes: TCP from sequence numbers, UDP the payload lengths.
    pub orig_bytes: u64,
    /// Responder's bytes.
    pub resp_bytes: u64,
    /// Zeek's `conn_state` (S0, S1, SF, REJ, S2, S3, RSTO, RSTR, RSTOS0, RSTRH, SH, SHR, OTH).
    pub conn_state: &'static str,
    /// Bytes acknowledged by the peer that the capture never had.
    pub missed_bytes: u64,
    /// Zeek's history letters.
    pub history: String,
    /// Originator's packets.
    pub orig_pkts: u64,
    /// Originator's IP bytes (IP header lengths).
    pub orig_ip_bytes: u64,
    /// Responder's packets.
    pub resp_pkts: u64,
    /// Responder's IP bytes.
    pub resp_ip_bytes: u64,
}

impl ConnLog {
    /// Duration in microseconds as Zeek computes it (packet times at microsecond precision).
    pub fn duration_us(&self) -> u64 {
        (self.last_ts / 1000).saturating_sub(self.first_ts / 1000)
    }
}

/// TCP reassembly counters for one direction (summed into capture-wide totals).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ReasmStats {
    /// Payload bytes delivered in order.
    pub delivered: u64,
    /// Bytes seen again after delivery (retransmissions).
    pub retrans_bytes: u64,
    /// Segments that partly overlapped delivered data.
    pub overlaps: u64,
    /// Segments that arrived ahead of a hole and were buffered.
    pub ooo_segments: u64,
    /// Gaps delivered.
    pub gaps: u64,
    /// Bytes in those gaps.
    pub gap_bytes: u64,
    /// Of `gap_bytes`, those the capture cut on purpose — a snap length, the recorder's
    /// payload limit — rather than lost.
    pub cut_bytes: u64,
    /// Times the out-of-order buffer hit its bound and a hole was given up early.
    pub ooo_overflows: u64,
    /// Segments held back until the other direction's bytes they acknowledge were delivered
    /// (the capture had them in another order than the endpoints).
    pub ack_held: u64,
    /// Held segments let go before the bytes they acknowledge (a bound, or contradicting
    /// acknowledgements).
    pub ack_forced: u64,
}

impl ReasmStats {
    /// Adds another set of counters.
    pub fn add(&mut self, o: &ReasmStats) {
        // Byte counts come from sequence numbers and offsets the input claims: saturate.
        self.delivered = self.delivered.saturating_add(o.delivered);
        self.retrans_bytes = self.retrans_bytes.saturating_add(o.retrans_bytes);
        self.overlaps += o.overlaps;
        self.ooo_segments += o.ooo_segments;
        self.gaps += o.gaps;
        self.gap_bytes = self.gap_bytes.saturating_add(o.gap_bytes);
        self.cut_bytes = self.cut_bytes.saturating_add(o.cut_bytes);
        self.ooo_overflows += o.ooo_overflows;
        self.ack_held += o.ack_held;
        self.ack_forced += o.ack_forced;
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

/// The uid conn.log's `tunnel_parents` names for a tunnel: made like a connection's from the
/// tunnel's outer addresses, kind and id, so every connection carried in one tunnel names the
/// same parent (Juno writes no row for the tunnel itself).
pub fn tunnel_uid(t: &Tunnel) -> String {
    let key = ConnKey::new(
        Endpoint::new(t.src, 0),
        Endpoint::new(t.dst, 0),
        Transport::Udp,
    );
    let salt = (u64::from(t.id.unwrap_or(u32::MAX)) << 8) | t.kind as u64;
    make_uid(&key, salt)
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
