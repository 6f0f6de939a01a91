//! Generators of hostile-but-ordinary inputs (issue 16): floods of connections, clients,
//! pipelined requests nobody answers, archives of huge frames, many small files. Each takes a
//! size, so that tests run them small (with a small `--memory`) and
//! `scripts/bench/hostile-inputs.sh` full size (through the ignored test
//! `write_hostile_inputs`). They write legacy pcap (µs, Ethernet) or Juno archives.
#![allow(clippy::unwrap_used, reason = "test code: a panic is a test failure")]

use std::io::Write;

/// Writes a legacy pcap (microseconds, Ethernet) to `out`.
pub struct Pcap<W: Write> {
    out: W,
}

impl<W: Write> Pcap<W> {
    /// Writes the file header.
    pub fn new(mut out: W) -> Self {
        let mut h = Vec::with_capacity(24);
        h.extend(0xA1B2_C3D4u32.to_le_bytes());
        h.extend(2u16.to_le_bytes());
        h.extend(4u16.to_le_bytes());
        h.extend(0i32.to_le_bytes());
        h.extend(0u32.to_le_bytes());
        h.extend(262_144u32.to_le_bytes());
        h.extend(1u32.to_le_bytes());
        out.write_all(&h).unwrap();
        Pcap { out }
    }

    /// Writes one frame captured at `ts_us` microseconds.
    pub fn frame(&mut self, ts_us: u64, frame: &[u8]) {
        let mut h = Vec::with_capacity(16);
        h.extend(((ts_us / 1_000_000) as u32).to_le_bytes());
        h.extend(((ts_us % 1_000_000) as u32).to_le_bytes());
        h.extend((frame.len() as u32).to_le_bytes());
        h.extend((frame.len() as u32).to_le_bytes());
        self.out.write_all(&h).unwrap();
        self.out.write_all(frame).unwrap();
    }

    /// The writer.
    pub fn finish(mut self) -> W {
        self.out.flush().unwrap();
        self.out
    }
}

/// TCP flags.
pub const SYN: u8 = 0x02;
/// ACK.
pub const ACK: u8 = 0x10;
/// PSH.
pub const PSH: u8 = 0x08;
/// FIN.
pub const FIN: u8 = 0x01;

fn ipv4(src: [u8; 4], dst: [u8; 4], proto: u8, l4: &[u8]) -> Vec<u8> {
    let mut f = Vec::with_capacity(34 + l4.len());
    f.extend([0x02, 0, 0, 0, 0, 2, 0x02, 0, 0, 0, 0, 1, 0x08, 0x00]);
    let total = (20 + l4.len()) as u16;
    let mut ip = vec![0x45, 0];
    ip.extend(total.to_be_bytes());
    ip.extend([0, 0, 0x40, 0, 64, proto, 0, 0]);
    ip.extend(src);
    ip.extend(dst);
    let mut sum: u32 = ip
        .chunks(2)
        .map(|c| u32::from(u16::from_be_bytes([c[0], c[1]])))
        .sum();
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    ip[10..12].copy_from_slice(&(!(sum as u16)).to_be_bytes());
    f.extend(ip);
    f.extend(l4);
    f
}

/// An Ethernet/IPv4/TCP frame.
#[allow(clippy::too_many_arguments, reason = "a packet has this many fields")]
pub fn tcp(
    src: [u8; 4],
    sport: u16,
    dst: [u8; 4],
    dport: u16,
    seq: u32,
    ack: u32,
    flags: u8,
    payload: &[u8],
) -> Vec<u8> {
    let mut t = Vec::with_capacity(20 + payload.len());
    t.extend(sport.to_be_bytes());
    t.extend(dport.to_be_bytes());
    t.extend(seq.to_be_bytes());
    t.extend(ack.to_be_bytes());
    t.extend([5 << 4, flags]);
    t.extend(65535u16.to_be_bytes());
    t.extend([0, 0, 0, 0]);
    t.extend(payload);
    ipv4(src, dst, 6, &t)
}

/// An Ethernet/IPv4/UDP frame.
pub fn udp(src: [u8; 4], sport: u16, dst: [u8; 4], dport: u16, payload: &[u8]) -> Vec<u8> {
    let mut u = Vec::with_capacity(8 + payload.len());
    u.extend(sport.to_be_bytes());
    u.extend(dport.to_be_bytes());
    u.extend(((8 + payload.len()) as u16).to_be_bytes());
    u.extend([0, 0]);
    u.extend(payload);
    ipv4(src, dst, 17, &u)
}

/// The `i`-th client address: 10.a.b.c.
pub fn client(i: u32) -> [u8; 4] {
    [10, 1 + (i >> 16) as u8, (i >> 8) as u8, i as u8]
}

/// `n` SYNs from distinct clients to 10.0.0.1:80 within one second, never answered.
pub fn syn_flood(out: impl Write, n: u32) {
    let mut p = Pcap::new(out);
    let t0 = 1_700_000_000_000_000u64;
    for i in 0..n {
        let ts = t0 + u64::from(i) * 1_000_000 / u64::from(n.max(1));
        p.frame(
            ts,
            &tcp(
                client(i),
                40000 + (i % 20000) as u16,
                [10, 0, 0, 1],
                80,
                i,
                0,
                SYN,
                &[],
            ),
        );
    }
    p.finish();
}

/// A DNS query for `n<i>.example.` with id `id`; with `answer`, the response with one A record.
fn dns(id: u16, i: u32, answer: bool) -> Vec<u8> {
    let mut m = id.to_be_bytes().to_vec();
    m.extend(if answer { [0x81, 0x80] } else { [0x01, 0x00] });
    m.extend([0, 1, 0, u8::from(answer), 0, 0, 0, 0]);
    let label = format!("n{i}");
    m.push(label.len() as u8);
    m.extend(label.as_bytes());
    m.extend([7]);
    m.extend(b"example");
    m.extend([0, 0, 1, 0, 1]);
    if answer {
        m.extend([0xc0, 12, 0, 1, 0, 1, 0, 0, 0, 60, 0, 4, 192, 0, 2, 1]);
    }
    m
}

/// `n` clients, each asking 10.0.0.53:53 one question and getting its answer.
pub fn dns_clients(out: impl Write, n: u32) {
    let mut p = Pcap::new(out);
    let t0 = 1_700_000_000_000_000u64;
    for i in 0..n {
        let ts = t0 + u64::from(i) * 50;
        let c = client(i);
        p.frame(
            ts,
            &udp(c, 33000, [10, 0, 0, 53], 53, &dns(i as u16, i, false)),
        );
        p.frame(
            ts + 20,
            &udp([10, 0, 0, 53], 53, c, 33000, &dns(i as u16, i, true)),
        );
    }
    p.finish();
}

/// `n` HTTP connections to 10.0.0.1:80: handshake and one GET each, never answered.
pub fn http_unanswered(out: impl Write, n: u32) {
    let mut p = Pcap::new(out);
    let t0 = 1_700_000_000_000_000u64;
    let srv = [10, 0, 0, 1];
    for i in 0..n {
        let ts = t0 + u64::from(i) * 10;
        let (c, sp) = (client(i), 40000 + (i % 20000) as u16);
        let req = format!(
            "GET /item/{i} HTTP/1.1\r\nHost: shop\r\nUser-Agent: gen/1\r\nAccept: */*\r\n\r\n"
        );
        p.frame(ts, &tcp(c, sp, srv, 80, 1000, 0, SYN, &[]));
        p.frame(ts + 1, &tcp(srv, 80, c, sp, 5000, 1001, SYN | ACK, &[]));
        p.frame(ts + 2, &tcp(c, sp, srv, 80, 1001, 5001, ACK, &[]));
        p.frame(
            ts + 3,
            &tcp(c, sp, srv, 80, 1001, 5001, ACK | PSH, req.as_bytes()),
        );
    }
    p.finish();
}

/// One connection (handshake seen) carrying `n` copies of `message` from the client in
/// 1,400-byte segments; the server never answers.
pub fn pipeline(out: impl Write, port: u16, message: &[u8], n: u32) {
    let mut p = Pcap::new(out);
    let t0 = 1_700_000_000_000_000u64;
    let (c, srv) = ([10, 0, 0, 2], [10, 0, 0, 1]);
    p.frame(t0, &tcp(c, 50000, srv, port, 0, 0, SYN, &[]));
    p.frame(t0 + 1, &tcp(srv, port, c, 50000, 9000, 1, SYN | ACK, &[]));
    p.frame(t0 + 2, &tcp(c, 50000, srv, port, 1, 9001, ACK, &[]));
    let per = (1400 / message.len()).max(1) as u32;
    let mut seq = 1u32;
    let mut left = n;
    let mut ts = t0 + 3;
    while left > 0 {
        let k = left.min(per);
        let seg: Vec<u8> = message.repeat(k as usize);
        p.frame(ts, &tcp(c, 50000, srv, port, seq, 9001, ACK | PSH, &seg));
        seq = seq.wrapping_add(seg.len() as u32);
        left -= k;
        ts += 1;
    }
    p.finish();
}

/// `n` pipelined PostgreSQL simple queries (`SELECT 1`), never answered.
pub fn pg_pipeline(out: impl Write, n: u32) {
    let mut q = vec![b'Q'];
    q.extend(13u32.to_be_bytes());
    q.extend(b"SELECT 1\0");
    pipeline(out, 5432, &q, n);
}

/// `n` pipelined MySQL `COM_QUERY`s (`SELECT 1`) to port 13306 with no server greeting and
/// no answer: a stream detection cannot settle (the server speaks first in MySQL, and the port
/// is not MySQL's).
pub fn mysql_pipeline(out: impl Write, n: u32) {
    let mut q = vec![9, 0, 0, 0, 0x03];
    q.extend(b"SELECT 1");
    pipeline(out, 13306, &q, n);
}

/// `n` pipelined Redis `PING`s, never answered.
pub fn redis_pipeline(out: impl Write, n: u32) {
    pipeline(out, 6379, b"*1\r\n$4\r\nPING\r\n", n);
}

/// A Juno archive of `frames` frames, each holding `frame_mib` MiB of (compressible)
/// packets: tiny on disk, large once decompressed.
pub fn big_frames(frames: usize, frame_mib: usize) -> Vec<u8> {
    use juno_archive::*;
    let info = FileInfo {
        node: "gen".into(),
        start_ns: 1,
        recorder: Some("gen".into()),
        ..Default::default()
    };
    let size = frame_mib << 20;
    let mut w = ArchiveWriter::new(
        Vec::new(),
        &info,
        FrameOptions {
            frame_size: size,
            level: 3,
        },
    )
    .unwrap();
    let iface = w
        .add_interface(&InterfaceDesc {
            name: "gen0".into(),
            description: None,
            linktype: 1,
            snaplen: 262_144,
        })
        .unwrap();
    let pkt = vec![0u8; 60_000];
    let per_frame = size / (pkt.len() + 32) + 1;
    for i in 0..frames * per_frame {
        w.write_packet(
            iface,
            1_700_000_000_000_000_000 + i as u64,
            &pkt,
            pkt.len() as u32,
        )
        .unwrap();
    }
    w.finish().unwrap()
}

/// A zstd-compressed pcapng stream in which every packet is a zstd frame of its own (the
/// section and interface headers are the first): `n` DNS clients, a question and its answer
/// each, as in [`dns_clients`]. Legal — `zstd -dc` reads it — and the most frames a byte of
/// input can carry.
pub fn tiny_frames(n: u32) -> Vec<u8> {
    let mut head = ng::shb();
    head.extend(ng::idb(&[]));
    let mut out = zstd::bulk::compress(&head, 1).unwrap();
    let t0 = 1_700_000_000_000_000u64;
    for i in 0..n {
        let c = client(i);
        let q = udp(c, 33000, [10, 0, 0, 53], 53, &dns(i as u16, i, false));
        let a = udp([10, 0, 0, 53], 53, c, 33000, &dns(i as u16, i, true));
        for (dt, pkt) in [(0, q), (20, a)] {
            let ts = t0 + u64::from(i) * 50 + dt;
            out.extend(zstd::bulk::compress(&ng::epb(0, ts, &pkt), 1).unwrap());
        }
    }
    out
}

/// `files` small pcaps in `dir`, each one HTTP exchange, all within the same second.
pub fn many_files(dir: &std::path::Path, files: u32) {
    let t0 = 1_700_000_000_000_000u64;
    let srv = [10, 0, 0, 1];
    for i in 0..files {
        let f = std::fs::File::create(dir.join(format!("part-{i:05}.pcap"))).unwrap();
        let mut p = Pcap::new(std::io::BufWriter::new(f));
        let (c, sp) = (client(i), 40000 + (i % 20000) as u16);
        let ts = t0 + u64::from(i) * 100;
        let req = format!("GET /f/{i} HTTP/1.1\r\nHost: h\r\n\r\n");
        let resp = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok";
        let rl = req.len() as u32;
        p.frame(ts, &tcp(c, sp, srv, 80, 1000, 0, SYN, &[]));
        p.frame(ts + 1, &tcp(srv, 80, c, sp, 5000, 1001, SYN | ACK, &[]));
        p.frame(
            ts + 2,
            &tcp(c, sp, srv, 80, 1001, 5001, ACK | PSH, req.as_bytes()),
        );
        p.frame(
            ts + 3,
            &tcp(srv, 80, c, sp, 5001, 1001 + rl, ACK | PSH, resp.as_bytes()),
        );
        p.frame(
            ts + 4,
            &tcp(
                c,
                sp,
                srv,
                80,
                1001 + rl,
                5001 + resp.len() as u32,
                ACK | FIN,
                &[],
            ),
        );
        p.frame(
            ts + 5,
            &tcp(
                srv,
                80,
                c,
                sp,
                5001 + resp.len() as u32,
                1002 + rl,
                ACK | FIN,
                &[],
            ),
        );
        p.finish();
    }
}

/// pcapng blocks (little-endian), for hand-made captures.
pub mod ng {
    /// A block of type `ty` with `body` (padded).
    pub fn block(ty: u32, body: &[u8]) -> Vec<u8> {
        let len = (12 + body.len().div_ceil(4) * 4) as u32;
        let mut v = ty.to_le_bytes().to_vec();
        v.extend(len.to_le_bytes());
        v.extend(body);
        v.resize(len as usize - 4, 0);
        v.extend(len.to_le_bytes());
        v
    }
    /// A Section Header Block.
    pub fn shb() -> Vec<u8> {
        let mut b = 0x1A2B_3C4Du32.to_le_bytes().to_vec();
        b.extend(1u16.to_le_bytes());
        b.extend(0u16.to_le_bytes());
        b.extend((-1i64).to_le_bytes());
        block(0x0A0D_0D0A, &b)
    }
    /// An option.
    pub fn opt(code: u16, v: &[u8]) -> Vec<u8> {
        let mut o = code.to_le_bytes().to_vec();
        o.extend((v.len() as u16).to_le_bytes());
        o.extend(v);
        o.resize(4 + v.len().div_ceil(4) * 4, 0);
        o
    }
    /// An Ethernet Interface Description Block with options.
    pub fn idb(opts: &[Vec<u8>]) -> Vec<u8> {
        let mut b = 1u16.to_le_bytes().to_vec();
        b.extend(0u16.to_le_bytes());
        b.extend(0u32.to_le_bytes());
        for o in opts {
            b.extend(o);
        }
        if !opts.is_empty() {
            b.extend([0u8; 4]);
        }
        block(1, &b)
    }
    /// An Enhanced Packet Block.
    pub fn epb(iface: u32, ts: u64, data: &[u8]) -> Vec<u8> {
        let mut b = iface.to_le_bytes().to_vec();
        b.extend(((ts >> 32) as u32).to_le_bytes());
        b.extend((ts as u32).to_le_bytes());
        b.extend((data.len() as u32).to_le_bytes());
        b.extend((data.len() as u32).to_le_bytes());
        b.extend(data);
        block(6, &b)
    }
}
