//! Tunnel headers, as pure functions over bytes: what each encapsulation carries and where the
//! inner packet begins. Each returns `None` when the bytes are not a header of its kind (too
//! short, a version or flag this decoder does not read), and the caller then treats the packet
//! as what its outer headers say (UDP to port 4789 that is not VXLAN stays UDP).
//!
//! - VXLAN (RFC 7348): 8 bytes, the I flag set, a 24-bit VNI, the last byte reserved (zero);
//!   an Ethernet frame follows.
//! - Geneve (RFC 8926): version 0, 8 bytes plus options, a protocol type (Ethernet 0x6558,
//!   or an EtherType such as IPv4/IPv6), a 24-bit VNI.
//! - GRE (RFC 2784, RFC 2890 key and sequence number, version 0 only): the protocol type says
//!   what follows: IPv4/IPv6, Ethernet (0x6558, transparent Ethernet bridging), ERSPAN type II
//!   (0x88BE with a sequence number; type I has none and no ERSPAN header) or type III
//!   (0x22EB). RFC 1701 source routing is not read.
//! - ERSPAN type II: 8 bytes (version 1, a 10-bit session id), then Ethernet. Type III:
//!   12 bytes (version 2, session id, frame type: Ethernet or IP) and an 8-byte platform
//!   sub-header when its O flag is set.
//! - GRE in UDP (RFC 8086, UDP 4754): a GRE header as above.
//! - PPTP's enhanced GRE (RFC 2637, GRE version 1): the key bit set (payload length, call
//!   id), optional sequence and acknowledgement numbers, protocol 0x880B: a PPP frame
//!   follows ([`ppp`]).
//! - Teredo (RFC 4380, UDP 3544, and on any port by content, as Zeek): an IPv6 packet,
//!   perhaps after an authentication and an origin indication header; as Zeek, the IPv6
//!   header's payload length must account for exactly the rest of the datagram (bubbles
//!   excepted).
//! - AYIYA (UDP 5072, and on any port by content, as Zeek): a header of 8 bytes, an identity
//!   and a signature of the lengths it gives; opcode 1 (forward) with IPv4 or IPv6 as next
//!   header is a packet.
//! - GTPv1-U (3GPP TS 29.281, UDP 2152): a T-PDU (message type 255), 8 bytes plus the
//!   optional 4 and extension headers; an IP packet follows; the TEID is the id.
//! - MPLS label stacks (RFC 3032, EtherTypes 0x8847/0x8848; not a tunnel: no addresses), PPP
//!   and PPPoE sessions (RFC 2516, 0x8864), 802.2 LLC/SNAP (an 802.3 length instead of an
//!   EtherType) and NFLOG records (link type 239) are read down to the IP packet they carry.

use crate::read::{be_u16, be_u24, be_u32};

/// EtherType of transparent Ethernet bridging (an Ethernet frame follows).
pub const TEB: u16 = 0x6558;
/// GRE protocol type of ERSPAN type I and II.
pub const ERSPAN_II: u16 = 0x88BE;
/// GRE protocol type of ERSPAN type III.
pub const ERSPAN_III: u16 = 0x22EB;

/// UDP port of GRE in UDP.
pub const GRE_UDP_PORT: u16 = 4754;
/// UDP port of Teredo.
pub const TEREDO_PORT: u16 = 3544;
/// UDP port of AYIYA.
pub const AYIYA_PORT: u16 = 5072;
/// UDP port of GTPv1-U.
pub const GTP_U_PORT: u16 = 2152;
/// GRE protocol type of PPP (PPTP).
pub const PPP: u16 = 0x880B;

/// UDP ports VXLAN is sent to: IANA's, and Linux's historical default (flannel's).
pub const VXLAN_PORTS: [u16; 2] = [4789, 8472];
/// UDP port of Geneve.
pub const GENEVE_PORT: u16 = 6081;

/// What follows a tunnel header.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Inner {
    /// An Ethernet frame.
    Ethernet,
    /// A packet of this EtherType (IPv4 0x0800, IPv6 0x86DD, ...).
    EtherType(u16),
}

/// A tunnel header read: its identifier, what follows and where.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Header {
    /// VNI, GRE key or ERSPAN session id.
    pub id: Option<u32>,
    /// What follows.
    pub inner: Inner,
    /// Header length: the inner packet starts here.
    pub len: usize,
}

/// An IP packet starting with `first`: IPv4 or IPv6 by its version nibble (what follows a
/// header that does not name its payload's type).
fn ip_by_version(first: u8) -> Option<Inner> {
    match first >> 4 {
        4 => Some(Inner::EtherType(0x0800)),
        6 => Some(Inner::EtherType(0x86DD)),
        _ => None,
    }
}

/// A VXLAN header.
pub fn vxlan(b: &[u8]) -> Option<Header> {
    let flags = *b.first()?;
    // The I flag: the VNI is valid. Other flag bits are reserved or extensions (GBP); the
    // byte after the VNI is reserved.
    if flags & 0x08 == 0 || *b.get(7)? != 0 {
        return None;
    }
    Some(Header {
        id: Some(be_u24(b, 4)?),
        inner: Inner::Ethernet,
        len: 8,
    })
}

/// A Geneve header.
pub fn geneve(b: &[u8]) -> Option<Header> {
    let first = *b.first()?;
    if first >> 6 != 0 {
        return None;
    }
    let len = 8 + usize::from(first & 0x3f) * 4;
    if b.len() < len {
        return None;
    }
    let proto = be_u16(b, 2)?;
    Some(Header {
        id: Some(be_u24(b, 4)?),
        inner: if proto == TEB {
            Inner::Ethernet
        } else {
            Inner::EtherType(proto)
        },
        len,
    })
}

/// What a GRE packet carries.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Gre {
    /// Protocol type.
    pub proto: u16,
    /// Key, when present.
    pub key: Option<u32>,
    /// A sequence number is present (ERSPAN type II has one; type I has none).
    pub seq: bool,
    /// Header length.
    pub len: usize,
}

/// A GRE header: version 0, or PPTP's version 1 (whose key holds the call id in its low
/// 16 bits).
pub fn gre(b: &[u8]) -> Option<Gre> {
    let flags = be_u16(b, 0)?;
    let (checksum, routing, key, seq) = (
        flags & 0x8000 != 0,
        flags & 0x4000 != 0,
        flags & 0x2000 != 0,
        flags & 0x1000 != 0,
    );
    let proto = be_u16(b, 2)?;
    // Routing (RFC 1701) is not read.
    if routing {
        return None;
    }
    match flags & 0x0007 {
        0 => {}
        1 => return pptp_gre(b, flags, proto),
        _ => return None,
    }
    let mut len = 4;
    if checksum {
        len += 4;
    }
    let key = if key {
        let k = be_u32(b, len)?;
        len += 4;
        Some(k)
    } else {
        None
    };
    if seq {
        len += 4;
    }
    (b.len() >= len).then_some(Gre {
        proto,
        key,
        seq,
        len,
    })
}

/// PPTP's enhanced GRE header (version 1): no checksum, the key present, PPP inside.
fn pptp_gre(b: &[u8], flags: u16, proto: u16) -> Option<Gre> {
    if flags & 0x8000 != 0 || flags & 0x2000 == 0 || proto != PPP {
        return None;
    }
    let call_id = be_u16(b, 6)?;
    let seq = flags & 0x1000 != 0;
    let len = 8 + if seq { 4 } else { 0 } + if flags & 0x0080 != 0 { 4 } else { 0 };
    (b.len() >= len).then_some(Gre {
        proto,
        key: Some(u32::from(call_id)),
        seq,
        len,
    })
}

/// A PPP frame's header (RFC 1661; the address and control bytes `FF 03` optional, the
/// protocol field one byte when compressed): the EtherType of the IP packet it carries and
/// its length, or `None` for anything else (LCP, compressed data, ...).
pub fn ppp(b: &[u8]) -> Option<(u16, usize)> {
    let at = if b.starts_with(&[0xFF, 0x03]) { 2 } else { 0 };
    let first = *b.get(at)?;
    let (proto, len) = if first & 1 == 1 {
        (u16::from(first), at + 1)
    } else {
        (be_u16(b, at)?, at + 2)
    };
    match proto {
        0x0021 => Some((0x0800, len)),
        0x0057 => Some((0x86DD, len)),
        _ => None,
    }
}

/// A PPPoE session header (RFC 2516: version and type 1, code 0) and the PPP protocol field
/// after it: the EtherType of the IP packet it carries and where it starts.
pub fn pppoe_session(b: &[u8]) -> Option<(u16, usize)> {
    if *b.first()? != 0x11 || *b.get(1)? != 0 {
        return None;
    }
    let (t, len) = ppp(b.get(6..)?)?;
    Some((t, 6 + len))
}

/// An MPLS label stack: where the packet after its bottom label starts (at most 16 labels).
/// What follows carries no type; an IP version nibble tells.
pub fn mpls(b: &[u8]) -> Option<usize> {
    for i in 0..16 {
        let bottom = *b.get(i * 4 + 2)? & 1 == 1;
        if bottom {
            return (b.len() >= i * 4 + 4).then_some(i * 4 + 4);
        }
    }
    None
}

/// An 802.2 LLC header with a SNAP extension (`AA AA 03`, an OUI, an EtherType): the
/// EtherType and where its packet starts.
pub fn snap(b: &[u8]) -> Option<(u16, usize)> {
    if !b.starts_with(&[0xAA, 0xAA, 0x03]) {
        return None;
    }
    let t = be_u16(b, 6)?;
    (t >= 0x0600).then_some((t, 8))
}

/// A Teredo packet: the IPv6 packet after the optional authentication and origin
/// indication headers. As Zeek does, the IPv6 header's payload length must account for
/// exactly the rest of the datagram — except for a bubble (no next header, no payload),
/// which may have bytes after it. Off Teredo's port (`on_port` false) Zeek detects Teredo by
/// content: a packet with those headers, or whose IPv6 source or destination is a Teredo
/// address (2001:0::/32).
pub fn teredo(b: &[u8], on_port: bool) -> Option<Header> {
    let mut at = 0;
    let mut headers = false;
    if b.starts_with(&[0x00, 0x01]) {
        let id = usize::from(*b.get(2)?);
        let auth = usize::from(*b.get(3)?);
        at = 4 + id + auth + 8 + 1;
        headers = true;
    }
    if b.get(at..at + 2) == Some(&[0x00, 0x00]) {
        at += 8;
        headers = true;
    }
    let ip = b.get(at..)?;
    if ip.len() < 40 || ip[0] >> 4 != 6 {
        return None;
    }
    let teredo_addr = |o: usize| ip[o..o + 4] == [0x20, 0x01, 0x00, 0x00];
    if !on_port && !headers && !teredo_addr(8) && !teredo_addr(24) {
        return None;
    }
    let payload_len = usize::from(be_u16(ip, 4)?);
    let bubble = ip[6] == 59 && payload_len == 0;
    if payload_len + 40 != ip.len() && !bubble {
        return None;
    }
    Some(Header {
        id: None,
        inner: Inner::EtherType(0x86DD),
        len: at,
    })
}

/// An AYIYA packet (opcode 1, forward) carrying IPv4 or IPv6. Off AYIYA's port (`on_port`
/// false), Zeek detects it by content: the signature and hash bytes `52 11` of the common
/// configuration (a 5-word SHA-1 signature, opcode 1 with no authentication); this decoder
/// also requires the inner packet's IP version to be the next header's.
pub fn ayiya(b: &[u8], on_port: bool) -> Option<Header> {
    if !on_port && b.get(1..3) != Some(&[0x52, 0x11]) {
        return None;
    }
    let id_len = 1usize << (*b.first()? >> 4);
    let sig_len = usize::from(*b.get(1)? >> 4) * 4;
    let opcode = *b.get(2)? & 0x0F;
    let inner = match *b.get(3)? {
        4 => Inner::EtherType(0x0800),
        41 => Inner::EtherType(0x86DD),
        _ => return None,
    };
    let len = 8 + id_len + sig_len;
    let matches = ip_by_version(*b.get(len)?) == Some(inner);
    (opcode == 1 && matches).then_some(Header {
        id: None,
        inner,
        len,
    })
}

/// A GTPv1-U T-PDU carrying an IP packet; its id is the TEID.
pub fn gtp_u(b: &[u8]) -> Option<Header> {
    let flags = *b.first()?;
    // Version 1, protocol type GTP (not GTP'), message type 255 (T-PDU).
    if flags >> 5 != 1 || flags & 0x10 == 0 || *b.get(1)? != 0xFF {
        return None;
    }
    let teid = be_u32(b, 4)?;
    let mut len = 8;
    if flags & 0x07 != 0 {
        // Sequence number, N-PDU number and the first extension header's type.
        let mut next = *b.get(11)?;
        len = 12;
        while next != 0 {
            let units = usize::from(*b.get(len)?);
            if units == 0 {
                return None;
            }
            len += units * 4;
            next = *b.get(len - 1)?;
        }
    }
    let inner = ip_by_version(*b.get(len)?)?;
    Some(Header {
        id: Some(teid),
        inner,
        len,
    })
}

/// The ERSPAN header after a GRE header of protocol `gre.proto` (`b` starts after the GRE
/// header).
pub fn erspan(gre: &Gre, b: &[u8]) -> Option<Header> {
    match gre.proto {
        // Type I: no ERSPAN header, the mirrored frame follows the GRE header.
        ERSPAN_II if !gre.seq => Some(Header {
            id: None,
            inner: Inner::Ethernet,
            len: 0,
        }),
        ERSPAN_II => {
            let w = be_u32(b, 0)?;
            if w >> 28 != 1 || b.len() < 8 {
                return None;
            }
            Some(Header {
                id: Some(w & 0x3ff),
                inner: Inner::Ethernet,
                len: 8,
            })
        }
        ERSPAN_III => {
            let w = be_u32(b, 0)?;
            if w >> 28 != 2 {
                return None;
            }
            let last = be_u16(b, 10)?;
            // Frame type: 0 Ethernet, 2 IP (the version nibble says which).
            let inner = match (last >> 10) & 0x1f {
                0 => Inner::Ethernet,
                2 => ip_by_version(*b.get(12 + if last & 1 != 0 { 8 } else { 0 })?)?,
                _ => return None,
            };
            let len = if last & 1 != 0 { 20 } else { 12 };
            (b.len() >= len).then_some(Header {
                id: Some(w & 0x3ff),
                inner,
                len,
            })
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vxlan_vni_and_flag() {
        let h = [0x08, 0, 0, 0, 0x00, 0x00, 0x2a, 0x00];
        assert_eq!(
            vxlan(&h),
            Some(Header {
                id: Some(42),
                inner: Inner::Ethernet,
                len: 8
            })
        );
        assert_eq!(vxlan(&[0x00, 0, 0, 0, 0, 0, 0x2a, 0]), None, "I flag clear");
        assert_eq!(
            vxlan(&[0x08, 0, 0, 0, 0, 0, 0x2a, 1]),
            None,
            "reserved byte set"
        );
        assert_eq!(vxlan(&h[..7]), None);
    }

    #[test]
    fn geneve_options_and_protocol() {
        // Version 0, one 4-byte option word, protocol TEB, VNI 0x123456.
        let mut h = vec![0x01, 0x00, 0x65, 0x58, 0x12, 0x34, 0x56, 0x00];
        h.extend_from_slice(&[0x01, 0x02, 0x03, 0x00]);
        assert_eq!(
            geneve(&h),
            Some(Header {
                id: Some(0x123456),
                inner: Inner::Ethernet,
                len: 12
            })
        );
        assert_eq!(geneve(&h[..11]), None, "options cut");
        h[2..4].copy_from_slice(&[0x08, 0x00]);
        assert_eq!(geneve(&h).unwrap().inner, Inner::EtherType(0x0800));
        h[0] |= 0x40;
        assert_eq!(geneve(&h), None, "version 1");
    }

    #[test]
    fn gre_optional_fields() {
        // Checksum, key and sequence number present: 16 bytes.
        let h = [0xb0, 0x00, 0x08, 0x00, 0, 0, 0, 0, 0, 0, 0, 45, 0, 0, 0, 7];
        assert_eq!(
            gre(&h),
            Some(Gre {
                proto: 0x0800,
                key: Some(45),
                seq: true,
                len: 16
            })
        );
        assert_eq!(gre(&h[..15]), None);
        assert_eq!(
            gre(&[0x00, 0x00, 0x65, 0x58]).map(|g| (g.proto, g.len)),
            Some((TEB, 4))
        );
        assert_eq!(gre(&[0x30, 0x01, 0x88, 0x0b, 0, 0, 0, 0]), None, "PPTP");
    }

    #[test]
    fn erspan_types() {
        let g2 = Gre {
            proto: ERSPAN_II,
            key: None,
            seq: true,
            len: 8,
        };
        // Version 1, VLAN 0, session 123; index.
        let ii = [0x10, 0x00, 0x00, 123, 0, 0, 0, 5];
        assert_eq!(
            erspan(&g2, &ii).map(|h| (h.id, h.len)),
            Some((Some(123), 8))
        );
        let g1 = Gre { seq: false, ..g2 };
        assert_eq!(erspan(&g1, &ii).map(|h| h.len), Some(0), "type I");
        let g3 = Gre {
            proto: ERSPAN_III,
            ..g2
        };
        // Version 2, session 7, timestamp, SGT, frame type 0, O flag clear.
        let mut iii = vec![0x20, 0x00, 0x00, 7, 1, 2, 3, 4, 0, 0, 0x00, 0x00];
        assert_eq!(
            erspan(&g3, &iii).map(|h| (h.id, h.inner, h.len)),
            Some((Some(7), Inner::Ethernet, 12))
        );
        // With the platform sub-header.
        iii[11] = 0x01;
        iii.extend_from_slice(&[0; 8]);
        assert_eq!(erspan(&g3, &iii).map(|h| h.len), Some(20));
        assert_eq!(erspan(&g3, &iii[..19]), None);
        assert_eq!(erspan(&g3, &ii), None, "a type II header is not type III");
    }
}
