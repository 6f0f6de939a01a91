//! Tunnels: the encapsulation a packet arrived in (an overlay between two nodes, a mirror
//! session), kept as context when the analyzer looks at the inner packet.

use std::net::IpAddr;

/// The kind of encapsulation.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum TunnelKind {
    /// VXLAN (RFC 7348; UDP 4789, Linux's default 8472).
    Vxlan,
    /// Geneve (RFC 8926; UDP 6081).
    Geneve,
    /// GRE carrying IP (RFC 2784/2890; also in UDP, RFC 8086), or PPTP's GRE carrying PPP.
    Gre,
    /// GRE carrying Ethernet (transparent Ethernet bridging, `gretap`).
    GreTap,
    /// ERSPAN type I, II or III (GRE carrying a mirrored Ethernet frame).
    Erspan,
    /// IP in IP: IPv4 or IPv6 directly in IPv4 or IPv6 (`ipip`, `sit`, `ip6tnl`).
    IpInIp,
    /// Teredo (RFC 4380; IPv6 in UDP 3544).
    Teredo,
    /// AYIYA (IPv4 or IPv6 in UDP 5072).
    Ayiya,
    /// GTPv1-U (IP in UDP 2152, mobile networks' user plane).
    Gtp,
}

impl TunnelKind {
    /// Name used in outputs.
    pub fn as_str(self) -> &'static str {
        match self {
            TunnelKind::Vxlan => "vxlan",
            TunnelKind::Geneve => "geneve",
            TunnelKind::Gre => "gre",
            TunnelKind::GreTap => "gretap",
            TunnelKind::Erspan => "erspan",
            TunnelKind::IpInIp => "ipip",
            TunnelKind::Teredo => "teredo",
            TunnelKind::Ayiya => "ayiya",
            TunnelKind::Gtp => "gtp",
        }
    }

    /// The outer addresses follow the inner packet's direction (an overlay between two
    /// nodes); ERSPAN's are a mirror session's, the same whichever way the mirrored packet
    /// went.
    pub fn follows_direction(self) -> bool {
        self != TunnelKind::Erspan
    }
}

/// The innermost tunnel a packet was carried in.
///
/// On a decoded packet, `src` and `dst` are the outer header's source and destination. On a
/// connection ([`super::ConnInfo::tunnel`]) they are oriented client → server: for an overlay
/// the client's node, then the server's node; for ERSPAN the mirror session's source and
/// destination.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Tunnel {
    /// Encapsulation.
    pub kind: TunnelKind,
    /// VXLAN or Geneve VNI, GRE key, ERSPAN session id; `None` when the header has none.
    pub id: Option<u32>,
    /// Outer source.
    pub src: IpAddr,
    /// Outer destination.
    pub dst: IpAddr,
}

impl Tunnel {
    /// The same tunnel seen from the other direction (outer addresses swapped when they
    /// follow the direction).
    pub fn flipped(self) -> Tunnel {
        if self.kind.follows_direction() {
            Tunnel {
                src: self.dst,
                dst: self.src,
                ..self
            }
        } else {
            self
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flipping_swaps_overlay_ends_but_not_a_mirror_session() {
        let t = Tunnel {
            kind: TunnelKind::Vxlan,
            id: Some(42),
            src: [192, 168, 0, 1].into(),
            dst: [192, 168, 0, 2].into(),
        };
        let f = t.flipped();
        assert_eq!((f.src, f.dst, f.id), (t.dst, t.src, Some(42)));
        let m = Tunnel {
            kind: TunnelKind::Erspan,
            ..t
        };
        assert_eq!(m.flipped(), m);
    }
}
