//! Decode: link layer → IP → TCP/UDP, with etherparse's lax slicing so that truncated
//! (snaplen) and slightly malformed packets still yield what they carry.
//!
//! Link types: Ethernet (with VLAN/QinQ), Linux cooked v1 and v2, raw IP (101, 12, 14, 228,
//! 229), BSD loopback/null (0, 108). Anything else is counted, not guessed at.

use std::net::IpAddr;

use etherparse::{EtherType, LaxNetSlice, LaxSlicedPacket, TransportSlice};

use crate::model::{Endpoint, Transport};
use crate::read::{be_u16, be_u32, le_u32};

/// TCP header flags.
pub mod flags {
    /// FIN.
    pub const FIN: u8 = 0x01;
    /// SYN.
    pub const SYN: u8 = 0x02;
    /// RST.
    pub const RST: u8 = 0x04;
    /// PSH.
    pub const PSH: u8 = 0x08;
    /// ACK.
    pub const ACK: u8 = 0x10;
}

/// A decoded TCP or UDP packet. `payload` borrows from the captured frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Decoded<'a> {
    /// Source.
    pub src: Endpoint,
    /// Destination.
    pub dst: Endpoint,
    /// TCP or UDP.
    pub transport: Transport,
    /// TCP sequence number.
    pub seq: u32,
    /// TCP acknowledgement number.
    pub ack: u32,
    /// TCP flags ([`flags`]).
    pub flags: u8,
    /// Captured payload.
    pub payload: &'a [u8],
    /// Payload length on the wire per the IP header (more than `payload.len()` when the
    /// capture cut the packet).
    pub wire_len: u32,
}

/// Why a packet yields nothing to analyze.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Skip {
    /// The capture's link type is not one this decoder reads.
    UnknownLinktype,
    /// Not IPv4/IPv6 (ARP, LLDP, ...).
    NotIp,
    /// IP, but neither TCP nor UDP (ICMP, ...).
    OtherTransport,
    /// An IP fragment (fragments are not reassembled).
    Fragment,
    /// Cut before the end of the transport header.
    Truncated,
    /// Headers that do not parse.
    Malformed,
}

impl Skip {
    /// Short name for reports.
    pub fn name(self) -> &'static str {
        match self {
            Skip::UnknownLinktype => "unknown_linktype",
            Skip::NotIp => "not_ip",
            Skip::OtherTransport => "other_transport",
            Skip::Fragment => "ip_fragment",
            Skip::Truncated => "truncated_headers",
            Skip::Malformed => "malformed",
        }
    }
}

/// Decodes one captured frame.
pub fn decode(linktype: u32, data: &[u8]) -> Result<Decoded<'_>, Skip> {
    let sliced = match linktype {
        // DLT_EN10MB
        1 => LaxSlicedPacket::from_ethernet(data).map_err(|_| Skip::Truncated)?,
        // DLT_LINUX_SLL: protocol type at 14..16, payload at 16.
        113 => {
            let proto = be_u16(data, 14).ok_or(Skip::Truncated)?;
            LaxSlicedPacket::from_ether_type(EtherType(proto), data.get(16..).unwrap_or_default())
        }
        // DLT_LINUX_SLL2: protocol type at 0..2, payload at 20.
        276 => {
            let proto = be_u16(data, 0).ok_or(Skip::Truncated)?;
            let payload = data.get(20..).ok_or(Skip::Truncated)?;
            LaxSlicedPacket::from_ether_type(EtherType(proto), payload)
        }
        // DLT_NULL (host byte order family) and DLT_LOOP (network byte order).
        0 | 108 => {
            let (Some(le), Some(be)) = (le_u32(data, 0), be_u32(data, 0)) else {
                return Err(Skip::Truncated);
            };
            let fam = if linktype == 108 || le > 0xFFFF {
                be
            } else {
                le
            };
            match fam {
                // AF_INET; AF_INET6 on BSDs, macOS and Linux.
                2 | 10 | 24 | 28 | 30 => {}
                _ => return Err(Skip::NotIp),
            }
            LaxSlicedPacket::from_ip(&data[4..]).map_err(|_| Skip::Malformed)?
        }
        // DLT_RAW (and its platform aliases), LINKTYPE_IPV4, LINKTYPE_IPV6.
        101 | 12 | 14 | 228 | 229 => LaxSlicedPacket::from_ip(data).map_err(|_| Skip::Malformed)?,
        _ => return Err(Skip::UnknownLinktype),
    };
    let Some(net) = &sliced.net else {
        return Err(if sliced.stop_err.is_some() {
            Skip::Truncated
        } else {
            Skip::NotIp
        });
    };
    let (src_ip, dst_ip, ip_payload) = match net {
        LaxNetSlice::Ipv4(v4) => {
            let h = v4.header();
            (
                IpAddr::V4(h.source_addr()),
                IpAddr::V4(h.destination_addr()),
                v4.payload(),
            )
        }
        LaxNetSlice::Ipv6(v6) => {
            let h = v6.header();
            (
                IpAddr::V6(h.source_addr()),
                IpAddr::V6(h.destination_addr()),
                v6.payload(),
            )
        }
        LaxNetSlice::Arp(_) => return Err(Skip::NotIp),
    };
    if ip_payload.fragmented {
        return Err(Skip::Fragment);
    }
    let claimed = claimed_ip_len(net);
    let (src_port, dst_port, transport, seq, ack, fl, payload) = match &sliced.transport {
        Some(TransportSlice::Tcp(t)) => {
            let mut f = 0u8;
            if t.fin() {
                f |= flags::FIN;
            }
            if t.syn() {
                f |= flags::SYN;
            }
            if t.rst() {
                f |= flags::RST;
            }
            if t.psh() {
                f |= flags::PSH;
            }
            if t.ack() {
                f |= flags::ACK;
            }
            (
                t.source_port(),
                t.destination_port(),
                Transport::Tcp,
                t.sequence_number(),
                t.acknowledgment_number(),
                f,
                t.payload(),
            )
        }
        Some(TransportSlice::Udp(u)) => (
            u.source_port(),
            u.destination_port(),
            Transport::Udp,
            0,
            0,
            0,
            u.payload(),
        ),
        Some(_) => return Err(Skip::OtherTransport),
        None => {
            let n = ip_payload.ip_number;
            return Err(
                if n == etherparse::IpNumber::TCP || n == etherparse::IpNumber::UDP {
                    Skip::Truncated
                } else {
                    Skip::OtherTransport
                },
            );
        }
    };
    let captured = payload.len();
    // Cut by the capture: the wire length is what the IP header claims, less the headers.
    let wire = match (ip_payload.incomplete, claimed) {
        (true, Some((total, ip_start))) => {
            let headers = payload.as_ptr() as usize - ip_start;
            total.saturating_sub(headers).max(captured)
        }
        _ => captured,
    };
    let (src, dst) = (
        Endpoint::new(src_ip, src_port),
        Endpoint::new(dst_ip, dst_port),
    );

    Ok(Decoded {
        src,
        dst,
        transport,
        seq,
        ack,
        flags: fl,
        payload,
        wire_len: u32::try_from(wire).unwrap_or(u32::MAX),
    })
}

/// The IP datagram length the IP header claims (header included), and where it starts;
/// `None` when the header claims nothing usable (IPv4 total length 0 from segmentation
/// offload, IPv6 jumbograms).
fn claimed_ip_len(net: &LaxNetSlice<'_>) -> Option<(usize, usize)> {
    match net {
        LaxNetSlice::Ipv4(v4) => {
            let h = v4.header();
            let total = usize::from(h.total_len());
            (total >= usize::from(h.ihl()) * 4 && total != 0)
                .then(|| (total, h.slice().as_ptr() as usize))
        }
        LaxNetSlice::Ipv6(v6) => {
            let h = v6.header();
            let pl = usize::from(h.payload_length());
            (pl != 0).then(|| (40 + pl, h.slice().as_ptr() as usize))
        }
        LaxNetSlice::Arp(_) => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use etherparse::PacketBuilder;

    fn tcp_eth(payload: &[u8]) -> Vec<u8> {
        let b = PacketBuilder::ethernet2([1; 6], [2; 6])
            .ipv4([10, 0, 0, 1], [10, 0, 0, 2], 64)
            .tcp(1234, 80, 1000, 100)
            .ack(77)
            .psh();
        let mut v = Vec::new();
        b.write(&mut v, payload).unwrap();
        v
    }

    #[test]
    fn ethernet_ipv4_tcp() {
        let f = tcp_eth(b"hello");
        let d = decode(1, &f).unwrap();
        assert_eq!(d.src.to_string(), "10.0.0.1:1234");
        assert_eq!(d.dst.to_string(), "10.0.0.2:80");
        assert_eq!(d.transport, Transport::Tcp);
        assert_eq!((d.seq, d.ack), (1000, 77));
        assert_eq!(d.flags, flags::ACK | flags::PSH);
        assert_eq!(d.payload, b"hello");
        assert_eq!(d.wire_len, 5);
    }

    #[test]
    fn snaplen_cut_reports_wire_length() {
        let f = tcp_eth(&[b'x'; 100]);
        let cut = &f[..14 + 20 + 20 + 10];
        let d = decode(1, cut).unwrap();
        assert_eq!(d.payload.len(), 10);
        assert_eq!(d.wire_len, 100);
        assert_eq!(decode(1, &f[..14 + 20 + 10]), Err(Skip::Truncated));
    }

    #[test]
    fn ethernet_padding_is_not_payload() {
        let mut f = tcp_eth(b"");
        f.extend_from_slice(&[0; 6]); // minimum frame padding
        let d = decode(1, &f).unwrap();
        assert!(d.payload.is_empty());
        assert_eq!(d.wire_len, 0);
    }

    #[test]
    fn linux_cooked_v1_v2_raw_null_loop() {
        let f = tcp_eth(b"abc");
        let ip = &f[14..];
        let mut sll = vec![0, 0, 0, 1, 0, 6, 1, 2, 3, 4, 5, 6, 0, 0, 0x08, 0x00];
        sll.extend_from_slice(ip);
        assert_eq!(decode(113, &sll).unwrap().payload, b"abc");
        let mut sll2 = vec![
            0x08, 0x00, 0, 0, 0, 0, 0, 3, 0, 1, 0, 6, 1, 2, 3, 4, 5, 6, 0, 0,
        ];
        sll2.extend_from_slice(ip);
        assert_eq!(decode(276, &sll2).unwrap().payload, b"abc");
        assert_eq!(decode(101, ip).unwrap().payload, b"abc");
        let mut null = 2u32.to_le_bytes().to_vec();
        null.extend_from_slice(ip);
        assert_eq!(decode(0, &null).unwrap().payload, b"abc");
        let mut lp = 2u32.to_be_bytes().to_vec();
        lp.extend_from_slice(ip);
        assert_eq!(decode(108, &lp).unwrap().payload, b"abc");
    }

    #[test]
    fn vlan_and_ipv6_udp() {
        let b = PacketBuilder::ethernet2([1; 6], [2; 6])
            .single_vlan(etherparse::VlanId::try_new(7).unwrap())
            .ipv6([1; 16], [2; 16], 64)
            .udp(5353, 53);
        let mut v = Vec::new();
        b.write(&mut v, b"dns").unwrap();
        let d = decode(1, &v).unwrap();
        assert_eq!(d.transport, Transport::Udp);
        assert_eq!(d.payload, b"dns");
        assert_eq!(d.src.port, 5353);
        assert!(matches!(d.src.ip(), IpAddr::V6(_)));
    }

    #[test]
    fn garbage_never_panics() {
        for lt in [0, 1, 12, 14, 101, 108, 113, 228, 229, 276, 9999] {
            for len in 0..80 {
                let junk: Vec<u8> = (0..len).map(|i| (i * 37 + lt) as u8).collect();
                let _ = decode(lt as u32, &junk);
            }
        }
        assert_eq!(decode(9999, &[0; 60]), Err(Skip::UnknownLinktype));
    }
}
