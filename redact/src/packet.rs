//! Finding a TCP segment's payload in a captured packet: link layer (Ethernet with VLAN tags,
//! Linux cooked v1/v2, raw IP, BSD loopback), IPv4 (first fragments only) or IPv6 (common
//! extension headers), TCP. Lenient: anything else is not a TCP segment and left alone.

use std::ops::Range;

/// Link types (pcap `LINKTYPE_*`).
pub mod linktype {
    /// BSD loopback (a 4-byte address family).
    pub const NULL: u32 = 0;
    /// Ethernet.
    pub const ETHERNET: u32 = 1;
    /// Raw IP (pcap's 101; 12 on some systems).
    pub const RAW: u32 = 101;
    /// Raw IP, as some systems number it.
    pub const RAW_BSD: u32 = 12;
    /// Linux cooked capture v1.
    pub const LINUX_SLL: u32 = 113;
    /// Raw IPv4.
    pub const IPV4: u32 = 228;
    /// Raw IPv6.
    pub const IPV6: u32 = 229;
    /// Linux cooked capture v2.
    pub const LINUX_SLL2: u32 = 276;
}

/// One direction of a TCP connection as seen in packets.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) struct FlowKey {
    pub(crate) src: [u8; 16],
    pub(crate) dst: [u8; 16],
    pub(crate) sport: u16,
    pub(crate) dport: u16,
}

pub(crate) const SYN: u8 = 0x02;
pub(crate) const RST: u8 = 0x04;
pub(crate) const FIN: u8 = 0x01;

/// A TCP segment found in a packet.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Segment {
    pub(crate) key: FlowKey,
    pub(crate) seq: u32,
    pub(crate) flags: u8,
    /// The payload bytes present in the packet.
    pub(crate) payload: Range<usize>,
    /// The payload's length on the wire (more than the range when the capture was cut).
    pub(crate) wire_len: u32,
}

fn be16(b: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_be_bytes([*b.get(at)?, *b.get(at + 1)?]))
}

/// The TCP segment in `data`, if there is one.
pub(crate) fn segment(linktype: u32, data: &[u8]) -> Option<Segment> {
    let (mut ethertype, mut off) = match linktype {
        linktype::ETHERNET => (be16(data, 12)?, 14),
        linktype::LINUX_SLL => (be16(data, 14)?, 16),
        linktype::LINUX_SLL2 => (be16(data, 0)?, 20),
        linktype::RAW | linktype::RAW_BSD => match data.first()? >> 4 {
            4 => (0x0800, 0),
            6 => (0x86dd, 0),
            _ => return None,
        },
        linktype::IPV4 => (0x0800, 0),
        linktype::IPV6 => (0x86dd, 0),
        linktype::NULL => {
            let fam = u32::from_le_bytes(data.get(..4)?.try_into().ok()?);
            let fam = if fam > 0xffff { fam.swap_bytes() } else { fam };
            match fam {
                2 => (0x0800, 4),
                24 | 28 | 30 => (0x86dd, 4),
                _ => return None,
            }
        }
        _ => return None,
    };
    for _ in 0..4 {
        if ethertype == 0x8100 || ethertype == 0x88a8 {
            ethertype = be16(data, off + 2)?;
            off += 4;
        }
    }
    let mut key = FlowKey {
        src: [0; 16],
        dst: [0; 16],
        sport: 0,
        dport: 0,
    };
    let (tcp, ip_end) = match ethertype {
        0x0800 => {
            let ip = data.get(off..)?;
            let ihl = usize::from(ip.first()? & 0x0f) * 4;
            if ip[0] >> 4 != 4 || ihl < 20 || ip.len() < ihl || ip[9] != 6 {
                return None;
            }
            // Later fragments carry no TCP header.
            if be16(ip, 6)? & 0x1fff != 0 {
                return None;
            }
            let total = usize::from(be16(ip, 2)?);
            key.src[..4].copy_from_slice(&ip[12..16]);
            key.dst[..4].copy_from_slice(&ip[16..20]);
            // A total length of 0 (segmentation offload) says nothing: use what is here.
            let end = if total >= ihl {
                off + total
            } else {
                data.len()
            };
            (off + ihl, end)
        }
        0x86dd => {
            let ip = data.get(off..off + 40)?;
            if ip[0] >> 4 != 6 {
                return None;
            }
            let plen = usize::from(be16(ip, 4)?);
            key.src.copy_from_slice(&ip[8..24]);
            key.dst.copy_from_slice(&ip[24..40]);
            let mut next = ip[6];
            let mut at = off + 40;
            let end = if plen > 0 {
                off + 40 + plen
            } else {
                data.len()
            };
            for _ in 0..8 {
                match next {
                    6 => break,
                    0 | 43 | 60 => {
                        let h = data.get(at..at + 2)?;
                        next = h[0];
                        at += (usize::from(h[1]) + 1) * 8;
                    }
                    _ => return None,
                }
            }
            if next != 6 {
                return None;
            }
            (at, end)
        }
        _ => return None,
    };
    let t = data.get(tcp..tcp + 20)?;
    key.sport = be16(t, 0)?;
    key.dport = be16(t, 2)?;
    let seq = u32::from_be_bytes([t[4], t[5], t[6], t[7]]);
    let doff = usize::from(t[12] >> 4) * 4;
    if doff < 20 {
        return None;
    }
    let start = tcp + doff;
    let wire_end = ip_end.max(start);
    let end = wire_end.min(data.len()).max(start.min(data.len()));
    Some(Segment {
        key,
        seq,
        flags: t[13],
        payload: start.min(data.len())..end,
        wire_len: u32::try_from(wire_end - start).unwrap_or(u32::MAX),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn eth_ipv4_tcp(payload: &[u8], seq: u32) -> Vec<u8> {
        let mut p = vec![0u8; 14];
        p[12] = 0x08;
        let total = 20 + 20 + payload.len();
        let mut ip = vec![
            0x45,
            0,
            (total >> 8) as u8,
            total as u8,
            0,
            0,
            0x40,
            0,
            64,
            6,
            0,
            0,
        ];
        ip.extend([10, 0, 0, 1, 10, 0, 0, 2]);
        p.extend(ip);
        let mut t = vec![0x30, 0x39, 0, 80];
        t.extend(seq.to_be_bytes());
        t.extend([0, 0, 0, 0, 0x50, 0x18, 0xff, 0xff, 0, 0, 0, 0]);
        p.extend(t);
        p.extend_from_slice(payload);
        p
    }

    #[test]
    fn finds_the_payload() {
        let p = eth_ipv4_tcp(b"GET / HTTP/1.1\r\n", 1000);
        let s = segment(linktype::ETHERNET, &p).unwrap();
        assert_eq!(&p[s.payload.clone()], b"GET / HTTP/1.1\r\n");
        assert_eq!(
            (s.seq, s.key.sport, s.key.dport, s.wire_len),
            (1000, 12345, 80, 16)
        );
        // Cut by the snap length: the wire length stays.
        let s = segment(linktype::ETHERNET, &p[..60]).unwrap();
        assert_eq!(s.payload.len(), 6);
        assert_eq!(s.wire_len, 16);
        // Not TCP, or truncated headers: nothing, no panic.
        for n in 0..54 {
            assert!(segment(linktype::ETHERNET, &p[..n]).is_none());
        }
        assert!(segment(999, &p).is_none());
    }
}
