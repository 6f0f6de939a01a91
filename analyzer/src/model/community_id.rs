//! Community ID v1 (<https://github.com/corelight/community-id-spec>): a flow hash that Zeek,
//! Suricata, Arkime, Wireshark, Elastic and Hubble all compute the same way, so Juno's output
//! joins with theirs.
//!
//! `"1:" + base64(SHA-1(seed ‖ addr A ‖ addr B ‖ proto ‖ 0 ‖ port A ‖ port B))`: the seed a
//! big-endian `u16`, addresses in network order (4 bytes for IPv4, 16 for IPv6), ports
//! big-endian (only for TCP, UDP, SCTP, ICMP and ICMPv6, where ICMP's "ports" are its type and
//! its counterpart type or code), the endpoints ordered so that the smaller `address:port`
//! comes first — except one-way ICMP messages, hashed as sent.
//!
//! Where implementations disagree: with both ends on the same address (loopback, a pod talking
//! to itself) Zeek and Wireshark compare the ports' bytes in host order
//! (corelight/community-id-spec#32); this follows the spec and its reference implementation
//! (pycommunityid), which compare the port numbers.

use std::net::IpAddr;

use base64::Engine as _;
use sha1::{Digest, Sha1};

use super::{Endpoint, Transport};

/// IP protocol numbers with ports in the hash.
const ICMP: u8 = 1;
const TCP: u8 = 6;
const UDP: u8 = 17;
const ICMPV6: u8 = 58;
const SCTP: u8 = 132;

/// One side of a flow: an address and, for protocols that have them, a port.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FlowEnd {
    /// Address.
    pub ip: IpAddr,
    /// Port (ICMP: type, or counterpart type / code); ignored for protocols without ports.
    pub port: u16,
}

/// Community ID v1 of a flow from `src` to `dst` with IP protocol `proto`, seed `seed`, in its
/// base64 form (`1:` and 28 characters).
///
/// For ICMP (1) and ICMPv6 (58) `src.port` is the message type and `dst.port` its code; the
/// mapping to the hashed ports ([`icmp_ports`]) is done here. `None` when the two addresses are
/// of different families (no flow has that).
pub fn community_id_v1(seed: u16, proto: u8, src: FlowEnd, dst: FlowEnd) -> Option<String> {
    let digest = hash(seed, proto, src, dst)?;
    Some(format!(
        "1:{}",
        base64::engine::general_purpose::STANDARD.encode(digest)
    ))
}

/// The same hash as [`community_id_v1`], as lower-case hex (the spec's "base64 off" form).
pub fn community_id_v1_hex(seed: u16, proto: u8, src: FlowEnd, dst: FlowEnd) -> Option<String> {
    let digest = hash(seed, proto, src, dst)?;
    let mut s = String::with_capacity(42);
    s.push_str("1:");
    for b in digest {
        s.push_str(&format!("{b:02x}"));
    }
    Some(s)
}

/// Community ID v1 of a connection between two endpoints (direction does not matter).
pub fn community_id(seed: u16, transport: Transport, a: Endpoint, b: Endpoint) -> String {
    let proto = match transport {
        Transport::Tcp => TCP,
        Transport::Udp => UDP,
    };
    let end = |e: Endpoint| FlowEnd {
        ip: e.ip(),
        port: e.port,
    };
    // Both ends of a connection have the same family (IPv4 is stored IPv4-mapped, so an
    // IPv4-mapped IPv6 address reads back as IPv4 on both sides alike).
    community_id_v1(seed, proto, end(a), end(b)).unwrap_or_default()
}

/// ICMP's type and code as the ports Community ID hashes: `(type, counterpart type)` and
/// two-way for requests and replies that pair up (echo, timestamp, information, router and
/// neighbor discovery, address mask, MLD, node information, home agent discovery), else
/// `(type, code)` and one-way (`false`).
pub fn icmp_ports(v6: bool, typ: u8, code: u8) -> (u16, u16, bool) {
    let counterpart = if v6 {
        match typ {
            128 => Some(129),
            129 => Some(128),
            130 => Some(131),
            131 => Some(130),
            133 => Some(134),
            134 => Some(133),
            135 => Some(136),
            136 => Some(135),
            139 => Some(140),
            140 => Some(139),
            144 => Some(145),
            145 => Some(144),
            _ => None,
        }
    } else {
        match typ {
            8 => Some(0),
            0 => Some(8),
            13 => Some(14),
            14 => Some(13),
            15 => Some(16),
            16 => Some(15),
            10 => Some(9),
            9 => Some(10),
            17 => Some(18),
            18 => Some(17),
            _ => None,
        }
    };
    match counterpart {
        Some(c) => (u16::from(typ), c, true),
        None => (u16::from(typ), u16::from(code), false),
    }
}

fn addr_bytes(ip: IpAddr) -> ([u8; 16], usize) {
    match ip {
        IpAddr::V4(a) => {
            let mut b = [0u8; 16];
            b[..4].copy_from_slice(&a.octets());
            (b, 4)
        }
        IpAddr::V6(a) => (a.octets(), 16),
    }
}

fn hash(seed: u16, proto: u8, src: FlowEnd, dst: FlowEnd) -> Option<[u8; 20]> {
    if src.ip.is_ipv4() != dst.ip.is_ipv4() {
        return None;
    }
    let (mut sport, mut dport, two_way) = match proto {
        ICMP | ICMPV6 => {
            let typ = u8::try_from(src.port).unwrap_or(u8::MAX);
            let code = u8::try_from(dst.port).unwrap_or(u8::MAX);
            icmp_ports(proto == ICMPV6, typ, code)
        }
        _ => (src.port, dst.port, true),
    };
    let has_ports = matches!(proto, ICMP | TCP | UDP | ICMPV6 | SCTP);
    let (mut sa, len) = addr_bytes(src.ip);
    let (mut da, _) = addr_bytes(dst.ip);
    let ordered = sa[..len] < da[..len] || (sa[..len] == da[..len] && sport < dport);
    if two_way && !ordered {
        std::mem::swap(&mut sa, &mut da);
        std::mem::swap(&mut sport, &mut dport);
    }
    let mut h = Sha1::new();
    h.update(seed.to_be_bytes());
    h.update(&sa[..len]);
    h.update(&da[..len]);
    h.update([proto, 0]);
    if has_ports {
        h.update(sport.to_be_bytes());
        h.update(dport.to_be_bytes());
    }
    Some(h.finalize().into())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn end(ip: &str, port: u16) -> FlowEnd {
        FlowEnd {
            ip: ip.parse().unwrap(),
            port,
        }
    }

    /// One row of the spec's tables: proto, src, dst, sport, dport, seed 0, seed 1, hex.
    type Row = (
        u8,
        &'static str,
        &'static str,
        u16,
        u16,
        &'static str,
        &'static str,
        &'static str,
    );

    const A6: &str = "fe80:0001:0203:0405:0607:0809:0A0B:0C0D";
    const B6: &str = "fe80:1011:1213:1415:1617:1819:1A1B:1C1D";

    /// corelight/community-id-spec `baseline/README.md` (made with pycommunityid).
    #[rustfmt::skip]
    const SPEC_TABLE: &[Row] = &[
        (6, "1.2.3.4", "5.6.7.8", 1122, 3344, "1:wCb3OG7yAFWelaUydu0D+125CLM=", "1:HhA1B+6CoLbiKPEs5nhNYN4XWfk=", "1:c026f7386ef200559e95a53276ed03fb5db908b3"),
        (6, "5.6.7.8", "1.2.3.4", 3344, 1122, "1:wCb3OG7yAFWelaUydu0D+125CLM=", "1:HhA1B+6CoLbiKPEs5nhNYN4XWfk=", "1:c026f7386ef200559e95a53276ed03fb5db908b3"),
        (17, "1.2.3.4", "5.6.7.8", 1122, 3344, "1:0Mu9InQx6z4ZiCZM/7HXi2WMhOg=", "1:OShq+iKDAMVouh/4bMxB9Sz4amw=", "1:d0cbbd227431eb3e1988264cffb1d78b658c84e8"),
        (17, "5.6.7.8", "1.2.3.4", 3344, 1122, "1:0Mu9InQx6z4ZiCZM/7HXi2WMhOg=", "1:OShq+iKDAMVouh/4bMxB9Sz4amw=", "1:d0cbbd227431eb3e1988264cffb1d78b658c84e8"),
        (132, "1.2.3.4", "5.6.7.8", 1122, 3344, "1:EKt4MsxuyaE6mL+hmrEkQ9csDD8=", "1:uitchpn5MMGAQKBJh7bIr/bAr7s=", "1:10ab7832cc6ec9a13a98bfa19ab12443d72c0c3f"),
        (1, "1.2.3.4", "5.6.7.8", 8, 0, "1:crodRHL2FEsHjbv3UkRrfbs4bZ0=", "1:9pr4ZGTICiuZoIh90RRYE2RyXpU=", "1:72ba1d4472f6144b078dbbf752446b7dbb386d9d"),
        (1, "5.6.7.8", "1.2.3.4", 0, 0, "1:crodRHL2FEsHjbv3UkRrfbs4bZ0=", "1:9pr4ZGTICiuZoIh90RRYE2RyXpU=", "1:72ba1d4472f6144b078dbbf752446b7dbb386d9d"),
        (1, "1.2.3.4", "5.6.7.8", 11, 0, "1:f/YiSyWqczrTgfUCZlBUnvHRcPk=", "1:1DD7cWGC/Yg91YGsQeni8du3pIA=", "1:7ff6224b25aa733ad381f5026650549ef1d170f9"),
        (58, A6, B6, 128, 0, "1:0bf7hyMJUwt3fMED7z8LIfRpBeo=", "1:IO27GQzPuCtNnwFvjWALMHu5tJE=", "1:d1b7fb872309530b777cc103ef3f0b21f46905ea"),
        (58, B6, A6, 129, 0, "1:0bf7hyMJUwt3fMED7z8LIfRpBeo=", "1:IO27GQzPuCtNnwFvjWALMHu5tJE=", "1:d1b7fb872309530b777cc103ef3f0b21f46905ea"),
        (58, A6, B6, 146, 0, "1:fYC8+pz24E+EhANP1EZhpX0Dw10=", "1:Cv4IKJe56BNkF0MBW2YxQ3Nwc3s=", "1:7d80bcfa9cf6e04f8484034fd44661a57d03c35d"),
        (46, "1.2.3.4", "5.6.7.8", 0, 0, "1:ikv3kmf89luf73WPz1jOs49S768=", "1:/buhqeOmaRCopOZFy9HnoJd5XW8=", "1:8a4bf79267fcf65b9fef758fcf58ceb38f52efaf"),
        (46, "5.6.7.8", "1.2.3.4", 0, 0, "1:ikv3kmf89luf73WPz1jOs49S768=", "1:/buhqeOmaRCopOZFy9HnoJd5XW8=", "1:8a4bf79267fcf65b9fef758fcf58ceb38f52efaf"),
        (46, A6, B6, 0, 0, "1:wQ/2mwrnXP4lmJcHdGL5ePjR+e0=", "1:j6EyyfBzL4vWKHFXgUqb5Az3OxM=", "1:c10ff69b0ae75cfe259897077462f978f8d1f9ed"),
        (46, B6, A6, 0, 0, "1:wQ/2mwrnXP4lmJcHdGL5ePjR+e0=", "1:j6EyyfBzL4vWKHFXgUqb5Az3OxM=", "1:c10ff69b0ae75cfe259897077462f978f8d1f9ed"),
    ];

    /// The spec repository's JSON baselines (`baseline_deflt/seed1/nob64.json`) of the packets
    /// of `pcaps/combined.pcap.gz`; ICMP's ports are already type and counterpart-or-code,
    /// given here as type and code.
    #[rustfmt::skip]
    const SPEC_PCAP: &[Row] = &[
        (58, "fe80::200:86ff:fe05:80da", "fe80::260:97ff:fe07:69ea", 135, 0, "1:dGHyGvjMfljg6Bppwm3bg0LO8TY=", "1:kHa1FhMYIT6Ym2Vm2AOtoOARDzY=", "1:7461f21af8cc7e58e0e81a69c26ddb8342cef136"),
        (58, "fe80::260:97ff:fe07:69ea", "fe80::200:86ff:fe05:80da", 136, 0, "1:dGHyGvjMfljg6Bppwm3bg0LO8TY=", "1:kHa1FhMYIT6Ym2Vm2AOtoOARDzY=", "1:7461f21af8cc7e58e0e81a69c26ddb8342cef136"),
        (58, "fe80::260:97ff:fe07:69ea", "fe80::200:86ff:fe05:80da", 135, 0, "1:zavyT/cezQr1fmImYCwYnMXbgck=", "1:2hSqmsDZ2kdcY9kbiUzOEBic0iM=", "1:cdabf24ff71ecd0af57e6226602c189cc5db81c9"),
        (58, "fe80::200:86ff:fe05:80da", "fe80::260:97ff:fe07:69ea", 136, 0, "1:zavyT/cezQr1fmImYCwYnMXbgck=", "1:2hSqmsDZ2kdcY9kbiUzOEBic0iM=", "1:cdabf24ff71ecd0af57e6226602c189cc5db81c9"),
        (58, "3ffe:501:1800:2345::2", "3ffe:507:0:1:200:86ff:fe05:80da", 3, 0, "1:2ObVBgIn28oZvibYZhZMBgh7WdQ=", "1:lVEtCZpYu84Xqaa++3lXFyuu2n4=", "1:d8e6d5060227dbca19be26d866164c06087b59d4"),
        (58, "3ffe:501:410:0:2c0:dfff:fe47:33e", "3ffe:507:0:1:200:86ff:fe05:80da", 1, 4, "1:hLZd0XGWojozrvxqE0dWB1iM6R0=", "1:W8MHwXpWzpoSTD+cGcaJr4u0ys8=", "1:84b65dd17196a23a33aefc6a13475607588ce91d"),
        (58, "3ffe:507:0:1:200:86ff:fe05:80da", "3ffe:501:0:1001::2", 128, 0, "1:+TW+HtLHvV1xnGhV1lv7XoJrqQg=", "1:GfZxjAkDk2MkegpBYHV6tadtFXQ=", "1:f935be1ed2c7bd5d719c6855d65bfb5e826ba908"),
        (58, "3ffe:501:0:1001::2", "3ffe:507:0:1:200:86ff:fe05:80da", 129, 0, "1:+TW+HtLHvV1xnGhV1lv7XoJrqQg=", "1:GfZxjAkDk2MkegpBYHV6tadtFXQ=", "1:f935be1ed2c7bd5d719c6855d65bfb5e826ba908"),
        (58, "fe80::200:86ff:fe05:80da", "ff02::2", 133, 0, "1:hO+sN4H+MG5MY/8hIrXPqc4ZQz0=", "1:L7Ka0ZMYu+J3bL4ulW2PrqyXNo8=", "1:84efac3781fe306e4c63ff2122b5cfa9ce19433d"),
        (58, "fe80::260:97ff:fe07:69ea", "ff02::1", 134, 0, "1:pkvHqCL88/tg1k4cPigmZXUtL00=", "1:K/ee5UCqAMAQXDorP5nSa2CGLjc=", "1:a64bc7a822fcf3fb60d64e1c3e282665752d2f4d"),
        (1, "192.168.0.89", "192.168.0.1", 8, 0, "1:X0snYXpgwiv9TZtqg64sgzUn6Dk=", "1:03g6IloqVBdcZlPyX8r0hgoE7kA=", "1:5f4b27617a60c22bfd4d9b6a83ae2c833527e839"),
        (1, "192.168.0.1", "192.168.0.89", 0, 0, "1:X0snYXpgwiv9TZtqg64sgzUn6Dk=", "1:03g6IloqVBdcZlPyX8r0hgoE7kA=", "1:5f4b27617a60c22bfd4d9b6a83ae2c833527e839"),
        (1, "10.0.0.1", "10.0.0.2", 11, 0, "1:YHxtAirCG//0OzkcVAukqKQN9xM=", "1:XjUibYHaafLQ3pxQeiMI8g25q20=", "1:607c6d022ac21bfff43b391c540ba4a8a40df713"),
        (6, "2001:470:e5bf:dead:4957:2174:e82c:4887", "2607:f8b0:400c:c03::1a", 63943, 25, "1:/qFaeAR+gFe1KYjMzVDsMv+wgU4=", "1:eJYTW6AOzFLlSUoESovMjnu7rMw=", "1:fea15a78047e8057b52988cccd50ec32ffb0814e"),
        (6, "2607:f8b0:400c:c03::1a", "2001:470:e5bf:dead:4957:2174:e82c:4887", 25, 63943, "1:/qFaeAR+gFe1KYjMzVDsMv+wgU4=", "1:eJYTW6AOzFLlSUoESovMjnu7rMw=", "1:fea15a78047e8057b52988cccd50ec32ffb0814e"),
        (132, "192.168.170.8", "192.168.170.56", 7, 7, "1:MP2EtRCAUIZvTw6MxJHLV7N7JDs=", "1:5w3ZRjeKBzqT3zsaEECDGjUbYeg=", "1:30fd84b5108050866f4f0e8cc491cb57b37b243b"),
        (132, "192.168.170.56", "192.168.170.8", 7, 7, "1:MP2EtRCAUIZvTw6MxJHLV7N7JDs=", "1:5w3ZRjeKBzqT3zsaEECDGjUbYeg=", "1:30fd84b5108050866f4f0e8cc491cb57b37b243b"),
        (6, "128.232.110.120", "66.35.250.204", 34855, 80, "1:LQU9qZlK+B5F3KDmev6m5PMibrg=", "1:3V71V58M3Ksw/yuFALMcW0LAHvc=", "1:2d053da9994af81e45dca0e67afea6e4f3226eb8"),
        (6, "66.35.250.204", "128.232.110.120", 80, 34855, "1:LQU9qZlK+B5F3KDmev6m5PMibrg=", "1:3V71V58M3Ksw/yuFALMcW0LAHvc=", "1:2d053da9994af81e45dca0e67afea6e4f3226eb8"),
        (17, "192.168.1.52", "8.8.8.8", 54585, 53, "1:d/FP5EW3wiY1vCndhwleRRKHowQ=", "1:Q9We8WO3piVF8yEQBNJF4uiSVrI=", "1:77f14fe445b7c22635bc29dd87095e451287a304"),
        (17, "8.8.8.8", "192.168.1.52", 53, 54585, "1:d/FP5EW3wiY1vCndhwleRRKHowQ=", "1:Q9We8WO3piVF8yEQBNJF4uiSVrI=", "1:77f14fe445b7c22635bc29dd87095e451287a304"),
        (46, "10.1.12.1", "10.1.12.2", 0, 0, "1:KHlLkgoJW7ifUTyTSgyVfkFHzKw=", "1:rYir8gphR31noO9iDRQmF/BteEI=", "1:28794b920a095bb89f513c934a0c957e4147ccac"),
        (46, "10.1.12.2", "10.1.12.1", 0, 0, "1:KHlLkgoJW7ifUTyTSgyVfkFHzKw=", "1:rYir8gphR31noO9iDRQmF/BteEI=", "1:28794b920a095bb89f513c934a0c957e4147ccac"),
    ];

    /// corelight/pycommunityid `tests/communityid_test.py`.
    #[rustfmt::skip]
    const PYCOMMUNITYID: &[Row] = &[
        (1, "192.168.0.89", "192.168.0.1", 20, 0, "1:3o2RFccXzUgjl7zDpqmY7yJi8rI=", "1:lCXHHxavE1Vq3oX9NH5ladQg02o=", "1:de8d9115c717cd482397bcc3a6a998ef2262f2b2"),
        (1, "192.168.0.89", "192.168.0.1", 20, 1, "1:tz/fHIDUHs19NkixVVoOZywde+I=", "1:Ie3wmFyxiEyikbsbcO03d2nh+PM=", "1:b73fdf1c80d41ecd7d3648b1555a0e672c1d7be2"),
        (1, "192.168.0.1", "192.168.0.89", 0, 20, "1:X0snYXpgwiv9TZtqg64sgzUn6Dk=", "1:03g6IloqVBdcZlPyX8r0hgoE7kA=", "1:5f4b27617a60c22bfd4d9b6a83ae2c833527e839"),
        (58, "3ffe:507:0:1:260:97ff:fe07:69ea", "3ffe:507:0:1:200:86ff:fe05:80da", 3, 0, "1:NdobDX8PQNJbAyfkWxhtL2Pqp5w=", "1:OlOWx9psIbBFi7lOCw/4MhlKR9M=", "1:35da1b0d7f0f40d25b0327e45b186d2f63eaa79c"),
        (58, "3ffe:507:0:1:200:86ff:fe05:80da", "3ffe:507:0:1:260:97ff:fe07:69ea", 3, 0, "1:/OGBt9BN1ofenrmSPWYicpij2Vc=", "1:Ij4ZxnC87/MXzhOjvH2vHu7LRmE=", "1:fce181b7d04dd687de9eb9923d66227298a3d957"),
        (132, "192.168.170.8", "192.168.170.56", 7, 80, "1:jQgCxbku+pNGw8WPbEc/TS/uTpQ=", "1:Y1/0jQg6e+I3ZwZZ9LP65DNbTXU=", "1:8d0802c5b92efa9346c3c58f6c473f4d2fee4e94"),
        (6, "10.0.0.1", "10.0.0.2", 10, 11569, "1:SXBGMX1lBOwhhoDrZynfROxnhnM=", "1:HmBRGR+fUyXF4t8WEtal7Y0gEAo=", "1:497046317d6504ec218680eb6729df44ec678673"),
        (46, "10.1.24.4", "10.1.12.1", 0, 0, "1:/nQI4Rh/TtY3mf0R2gJFBkVlgS4=", "1:BK3BVW3U2eemuwVQVN3zd/GULno=", "1:fe7408e1187f4ed63799fd11da0245064565812e"),
    ];

    fn check(rows: &[Row]) {
        for &(proto, s, d, sp, dp, seed0, seed1, hex) in rows {
            let (a, b) = (end(s, sp), end(d, dp));
            let what = format!("proto {proto} {s}:{sp} -> {d}:{dp}");
            assert_eq!(
                community_id_v1(0, proto, a, b).as_deref(),
                Some(seed0),
                "{what}"
            );
            assert_eq!(
                community_id_v1(1, proto, a, b).as_deref(),
                Some(seed1),
                "{what} seed 1"
            );
            assert_eq!(
                community_id_v1_hex(0, proto, a, b).as_deref(),
                Some(hex),
                "{what} hex"
            );
        }
    }

    #[test]
    fn spec_readme_test_vectors() {
        check(SPEC_TABLE);
    }

    #[test]
    fn spec_pcap_baseline_vectors() {
        check(SPEC_PCAP);
    }

    #[test]
    fn pycommunityid_test_vectors() {
        check(PYCOMMUNITYID);
        // test_communityid_verbose: the bytes hashed are the ports' big-endian bytes.
        assert_eq!(
            community_id_v1(0, 6, end("10.0.0.1", 10), end("10.0.0.2", 20)).as_deref(),
            Some("1:9j2Dzwrw7T9E+IZi4b4IVT66HBI=")
        );
    }

    #[test]
    fn zeek_bif_vectors_unknown_protocol() {
        // zeek testing/btest/bifs/community_id/v1.zeek: protocol 10 has no ports.
        assert_eq!(
            community_id_v1(0, 10, end("1.2.3.4", 0), end("5.6.7.8", 0)).as_deref(),
            Some("1:7bYuQ7nyGBIQn7uDcQ5WraAnhWI=")
        );
        assert_eq!(
            community_id_v1(1, 10, end(A6, 0), end(B6, 0)).as_deref(),
            Some("1:rcMO2BlHXpMNFXyyWqSDUQCBRBc=")
        );
    }

    #[test]
    fn same_address_orders_by_port_number() {
        // The spec's numeric order (pycommunityid), not Zeek's byte-swapped one (spec #32).
        let (a, b) = (end("127.0.0.1", 40000), end("127.0.0.1", 8080));
        assert_eq!(
            community_id_v1(0, 6, a, b).as_deref(),
            Some("1:KtokAHyz+LpmkWAFBK/+HjzP3tE=")
        );
        assert_eq!(community_id_v1(0, 6, a, b), community_id_v1(0, 6, b, a));
        assert_eq!(
            community_id_v1(0, 6, end("::1", 52522), end("::1", 80)).as_deref(),
            Some("1:Bos608dnv/y63PWZunVokgLpq6s=")
        );
    }

    #[test]
    fn connection_id_is_direction_independent_and_hashes_ipv4_as_four_bytes() {
        let a = Endpoint::new("128.232.110.120".parse().unwrap(), 34855);
        let b = Endpoint::new("66.35.250.204".parse().unwrap(), 80);
        let id = community_id(0, Transport::Tcp, a, b);
        assert_eq!(id, "1:LQU9qZlK+B5F3KDmev6m5PMibrg=");
        assert_eq!(id, community_id(0, Transport::Tcp, b, a));
        let a = Endpoint::new("192.168.1.52".parse().unwrap(), 54585);
        let b = Endpoint::new("8.8.8.8".parse().unwrap(), 53);
        assert_eq!(
            community_id(1, Transport::Udp, b, a),
            "1:Q9We8WO3piVF8yEQBNJF4uiSVrI="
        );
    }

    #[test]
    fn mixed_families_have_no_id() {
        assert_eq!(
            community_id_v1(0, 6, end("1.2.3.4", 1), end("::1", 2)),
            None
        );
    }
}
