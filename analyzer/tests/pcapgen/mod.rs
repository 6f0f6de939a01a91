//! Writes small pcap files for tests: Ethernet, IPv4, and UDP datagrams or TCP segments of
//! a connection with its handshake and FINs, with the sequence numbers a capture would have.

#![allow(dead_code, reason = "each test file uses part of it")]
#![allow(unreachable_pub, reason = "shared by test files as a module")]

use std::net::Ipv4Addr;

/// A pcap being built (microsecond timestamps, Ethernet).
#[derive(Debug, Default)]
pub struct Pcap {
    records: Vec<u8>,
    /// Where the last frame starts in `records`.
    last: usize,
}

/// One TCP connection's state: addresses and next sequence numbers.
#[derive(Debug, Clone, Copy)]
pub struct Tcp {
    pub client: (Ipv4Addr, u16),
    pub server: (Ipv4Addr, u16),
    pub cseq: u32,
    pub sseq: u32,
}

const SYN: u8 = 0x02;
const ACK: u8 = 0x10;
const PSH: u8 = 0x08;
const FIN: u8 = 0x01;

fn checksum(b: &[u8]) -> u16 {
    let mut s: u32 = 0;
    for c in b.chunks(2) {
        s += u32::from(u16::from_be_bytes([c[0], *c.get(1).unwrap_or(&0)]));
    }
    while s > 0xffff {
        s = (s & 0xffff) + (s >> 16);
    }
    !(s as u16)
}

impl Pcap {
    fn frame(&mut self, ts_us: u64, src: Ipv4Addr, dst: Ipv4Addr, proto: u8, l4: &[u8]) {
        let mut f = vec![0x02, 0, 0, 0, 0, 2, 0x02, 0, 0, 0, 0, 1, 0x08, 0x00];
        let total = (20 + l4.len()) as u16;
        let mut ip = vec![0x45, 0];
        ip.extend_from_slice(&total.to_be_bytes());
        ip.extend_from_slice(&[0, 1, 0x40, 0, 64, proto, 0, 0]);
        ip.extend_from_slice(&src.octets());
        ip.extend_from_slice(&dst.octets());
        let c = checksum(&ip);
        ip[10..12].copy_from_slice(&c.to_be_bytes());
        f.extend_from_slice(&ip);
        f.extend_from_slice(l4);
        let len = f.len() as u32;
        self.last = self.records.len() + 16;
        self.records
            .extend_from_slice(&((ts_us / 1_000_000) as u32).to_le_bytes());
        self.records
            .extend_from_slice(&((ts_us % 1_000_000) as u32).to_le_bytes());
        self.records.extend_from_slice(&len.to_le_bytes());
        self.records.extend_from_slice(&len.to_le_bytes());
        self.records.extend_from_slice(&f);
    }

    /// A UDP datagram.
    pub fn udp(&mut self, ts_us: u64, src: (Ipv4Addr, u16), dst: (Ipv4Addr, u16), payload: &[u8]) {
        let mut u = Vec::new();
        u.extend_from_slice(&src.1.to_be_bytes());
        u.extend_from_slice(&dst.1.to_be_bytes());
        u.extend_from_slice(&((8 + payload.len()) as u16).to_be_bytes());
        u.extend_from_slice(&[0, 0]);
        u.extend_from_slice(payload);
        self.frame(ts_us, src.0, dst.0, 17, &u);
    }

    #[allow(clippy::too_many_arguments, reason = "a TCP header's fields")]
    fn tcp_segment(
        &mut self,
        ts_us: u64,
        src: (Ipv4Addr, u16),
        dst: (Ipv4Addr, u16),
        seq: u32,
        ack: u32,
        flags: u8,
        payload: &[u8],
    ) {
        let mut t = Vec::new();
        t.extend_from_slice(&src.1.to_be_bytes());
        t.extend_from_slice(&dst.1.to_be_bytes());
        t.extend_from_slice(&seq.to_be_bytes());
        t.extend_from_slice(&ack.to_be_bytes());
        t.extend_from_slice(&[0x50, flags, 0xff, 0xff, 0, 0, 0, 0]);
        t.extend_from_slice(payload);
        self.frame(ts_us, src.0, dst.0, 6, &t);
    }

    /// A TCP handshake between `client` and `server`.
    pub fn tcp_open(
        &mut self,
        ts_us: u64,
        client: (Ipv4Addr, u16),
        server: (Ipv4Addr, u16),
    ) -> Tcp {
        let (c, s) = (1000u32, 5000u32);
        self.tcp_segment(ts_us, client, server, c, 0, SYN, b"");
        self.tcp_segment(ts_us + 1, server, client, s, c + 1, SYN | ACK, b"");
        self.tcp_segment(ts_us + 2, client, server, c + 1, s + 1, ACK, b"");
        Tcp {
            client,
            server,
            cseq: c + 1,
            sseq: s + 1,
        }
    }

    /// A data segment from the client (`to_server`) or the server.
    pub fn tcp_data(&mut self, ts_us: u64, t: &mut Tcp, to_server: bool, payload: &[u8]) {
        if to_server {
            self.tcp_segment(
                ts_us,
                t.client,
                t.server,
                t.cseq,
                t.sseq,
                ACK | PSH,
                payload,
            );
            t.cseq = t.cseq.wrapping_add(payload.len() as u32);
        } else {
            self.tcp_segment(
                ts_us,
                t.server,
                t.client,
                t.sseq,
                t.cseq,
                ACK | PSH,
                payload,
            );
            t.sseq = t.sseq.wrapping_add(payload.len() as u32);
        }
    }

    /// Both sides close.
    pub fn tcp_close(&mut self, ts_us: u64, t: &mut Tcp) {
        self.tcp_segment(ts_us, t.client, t.server, t.cseq, t.sseq, FIN | ACK, b"");
        self.tcp_segment(
            ts_us + 1,
            t.server,
            t.client,
            t.sseq,
            t.cseq + 1,
            FIN | ACK,
            b"",
        );
        self.tcp_segment(
            ts_us + 2,
            t.client,
            t.server,
            t.cseq + 1,
            t.sseq + 1,
            ACK,
            b"",
        );
    }

    /// Spoils the IPv4 header checksum of the last frame written.
    pub fn spoil_last_ip_checksum(&mut self) {
        self.records[self.last + 14 + 10] ^= 0x5a;
    }

    /// Sets the last packet's IPv4 header checksum to 0, as a sending host that offloads
    /// it to its NIC captures its own packets.
    pub fn zero_last_ip_checksum(&mut self) {
        self.records[self.last + 14 + 10..self.last + 14 + 12].fill(0);
    }

    /// The file's bytes.
    pub fn bytes(&self) -> Vec<u8> {
        let mut b = Vec::new();
        b.extend_from_slice(&0xa1b2_c3d4u32.to_le_bytes());
        b.extend_from_slice(&2u16.to_le_bytes());
        b.extend_from_slice(&4u16.to_le_bytes());
        b.extend_from_slice(&[0; 8]);
        b.extend_from_slice(&65535u32.to_le_bytes());
        b.extend_from_slice(&1u32.to_le_bytes());
        b.extend_from_slice(&self.records);
        b
    }
}
