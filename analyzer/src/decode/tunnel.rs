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

use crate::read::{be_u16, be_u24, be_u32};

/// EtherType of transparent Ethernet bridging (an Ethernet frame follows).
pub const TEB: u16 = 0x6558;
/// GRE protocol type of ERSPAN type I and II.
pub const ERSPAN_II: u16 = 0x88BE;
/// GRE protocol type of ERSPAN type III.
pub const ERSPAN_III: u16 = 0x22EB;

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

/// A GRE header (version 0).
pub fn gre(b: &[u8]) -> Option<Gre> {
    let flags = be_u16(b, 0)?;
    let (checksum, routing, key, seq) = (
        flags & 0x8000 != 0,
        flags & 0x4000 != 0,
        flags & 0x2000 != 0,
        flags & 0x1000 != 0,
    );
    // Version 1 is PPTP's enhanced GRE; routing (RFC 1701) is not read.
    if flags & 0x0007 != 0 || routing {
        return None;
    }
    let proto = be_u16(b, 2)?;
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
                2 => match b.get(12 + if last & 1 != 0 { 8 } else { 0 })? >> 4 {
                    4 => Inner::EtherType(0x0800),
                    6 => Inner::EtherType(0x86DD),
                    _ => return None,
                },
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
