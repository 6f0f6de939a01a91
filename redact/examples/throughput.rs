//! The redactor's cost over real captures: every packet (by TCP direction) and socket event
//! (by socket) of the files given, redacted `--passes` times with a fresh redactor, timed.
//!
//! ```text
//! cargo run --release -p juno-redact --example throughput -- [--passes N] FILE...
//! ```
//!
//! Files: pcap (plain or zstd-compressed) and Juno archives. Prints, per file and in total,
//! the bytes the redactor looked at (TCP payload and socket payload), what it overwrote, and
//! its CPU time per MB (this thread's CPU time, `CLOCK_THREAD_CPUTIME_ID`).

#![allow(
    clippy::print_stdout,
    reason = "an example that prints its measurement"
)]
#![allow(
    clippy::unwrap_used,
    reason = "an example: a bad file is a crash with a message"
)]

use std::path::Path;

use juno_redact::{Counts, DIR_RECV, DIR_SEND, Policy, Redactor};

enum Unit {
    Packet {
        linktype: u32,
        iface: u32,
        data: Vec<u8>,
    },
    Socket {
        cookie: u64,
        dir: u8,
        offset: u64,
        orig_len: u32,
        payload: Vec<u8>,
    },
}

fn thread_cpu_ns() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes into the timespec it is given.
    #[allow(unsafe_code, reason = "one libc call, no memory shared")]
    unsafe {
        libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts);
    }
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}

fn load(path: &Path) -> Vec<Unit> {
    let raw = std::fs::read(path).unwrap();
    let mut out = Vec::new();
    if juno_archive::frame::is_juno_archive(&raw) {
        let mut linktypes = Vec::new();
        juno_archive::read_archive(&raw, |item, stream| match item {
            juno_archive::Item::Interface(i) => {
                linktypes.push(stream.interfaces()[*i as usize].linktype);
            }
            juno_archive::Item::Packet(p) => out.push(Unit::Packet {
                linktype: linktypes.get(p.iface as usize).copied().unwrap_or(1),
                iface: p.iface,
                data: p.data.to_vec(),
            }),
            juno_archive::Item::Record(juno_archive::Record::Socket(s))
                if s.kind == juno_archive::SocketEventKind::Data =>
            {
                out.push(Unit::Socket {
                    cookie: s.cookie,
                    dir: if s.direction == juno_archive::DataDirection::Send {
                        DIR_SEND
                    } else {
                        DIR_RECV
                    },
                    offset: s.stream_offset,
                    orig_len: s.orig_len,
                    payload: s.payload.to_vec(),
                })
            }
            _ => {}
        })
        .unwrap();
        return out;
    }
    let plain = if raw.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
        zstd::decode_all(&raw[..]).unwrap()
    } else {
        raw
    };
    let mut r = pcap_file::pcap::PcapReader::new(&plain[..]).unwrap();
    let linktype = u32::from(r.header().datalink);
    while let Some(p) = r.next_packet() {
        out.push(Unit::Packet {
            linktype,
            iface: 0,
            data: p.unwrap().data().to_vec(),
        });
    }
    out
}

fn run(units: &[Unit], passes: usize) -> (Counts, u64) {
    let mut counts = Counts::default();
    let mut ns = 0;
    let mut bufs: Vec<Vec<u8>> = units
        .iter()
        .map(|u| match u {
            Unit::Packet { data, .. } => data.clone(),
            Unit::Socket { payload, .. } => payload.clone(),
        })
        .collect();
    for _ in 0..passes {
        for (b, u) in bufs.iter_mut().zip(units) {
            b.copy_from_slice(match u {
                Unit::Packet { data, .. } => data,
                Unit::Socket { payload, .. } => payload,
            });
        }
        let mut r = Redactor::new(Policy::default(), 65_536);
        let t = thread_cpu_ns();
        for (b, u) in bufs.iter_mut().zip(units) {
            match u {
                Unit::Packet {
                    linktype, iface, ..
                } => {
                    r.packet(*linktype, *iface, b);
                }
                Unit::Socket {
                    cookie,
                    dir,
                    offset,
                    orig_len,
                    ..
                } => {
                    r.socket_data(*cookie, *dir, *offset, *orig_len, b);
                }
            }
        }
        ns += thread_cpu_ns() - t;
        counts.add(r.counts());
    }
    (counts, ns)
}

fn main() {
    let mut args = std::env::args().skip(1).peekable();
    let mut passes = 20;
    let mut files = Vec::new();
    while let Some(a) = args.next() {
        if a == "--passes" {
            passes = args.next().and_then(|n| n.parse().ok()).unwrap_or(passes);
        } else {
            files.push(a);
        }
    }
    let (mut all, mut all_ns) = (Counts::default(), 0u64);
    println!(
        "{:<40} {:>10} {:>12} {:>9} {:>11}",
        "file", "units", "payload MB", "values", "ns per MB"
    );
    for f in &files {
        let units = load(Path::new(f));
        let (c, ns) = run(&units, passes);
        let mb = c.input_bytes as f64 / 1e6;
        println!(
            "{:<40} {:>10} {:>12.2} {:>9} {:>11.0}",
            Path::new(f).file_name().unwrap().to_string_lossy(),
            units.len(),
            mb / passes as f64,
            c.total() / passes as u64,
            ns as f64 / mb
        );
        all.add(&c);
        all_ns += ns;
    }
    let mb = all.input_bytes as f64 / 1e6;
    println!(
        "total: {:.1} MB of payload in {passes} passes, {:.1} ms CPU: {:.0} ns per MB ({:.0} MB/s on one core)",
        mb,
        all_ns as f64 / 1e6,
        all_ns as f64 / mb,
        mb / (all_ns as f64 / 1e9)
    );
}
