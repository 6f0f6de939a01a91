//! Writes a pcap or pcapng capture's packets into a Juno archive, framed and compressed as
//! juno-record frames them (its default frame size, its zstd level), for benchmarks of the reading side
//! (scripts/bench/archive-read.sh): `cargo run --release -p juno-archive --example
//! pcap-to-archive -- IN.pcap OUT.pcapng.zst`.
//!
//! Every packet goes to one interface of the capture's first link type; pcapng interface
//! descriptions and other blocks are not carried over.

#![allow(clippy::print_stderr, reason = "a tool that reports what it wrote")]

use std::fs::File;
use std::io::{BufRead, BufReader, BufWriter};

use juno_archive::{ArchiveWriter, FileInfo, FrameOptions, InterfaceDesc};
use pcap_file::pcap::PcapReader;
use pcap_file::pcapng::{Block, PcapNgReader};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [input, output] = args.as_slice() else {
        return Err("usage: pcap-to-archive IN.pcap|IN.pcapng OUT.pcapng.zst".into());
    };
    let info = FileInfo {
        node: "bench".into(),
        recorder: Some("pcap-to-archive".into()),
        ..Default::default()
    };
    let mut file = BufReader::with_capacity(1 << 20, File::open(input)?);
    // The first bytes tell pcapng (a Section Header Block) from pcap, without consuming them.
    let pcapng = file.fill_buf()?.starts_with(&[0x0a, 0x0d, 0x0d, 0x0a]);
    let out = BufWriter::new(File::create(output)?);
    let mut w = ArchiveWriter::new(out, &info, FrameOptions::default())?;
    let mut iface = None;
    let add = |w: &mut ArchiveWriter<_>, linktype: u32, snaplen: u32| {
        w.add_interface(&InterfaceDesc {
            name: "bench0".into(),
            description: None,
            linktype,
            snaplen,
        })
    };
    let mut packets = 0u64;
    if pcapng {
        let mut r = PcapNgReader::new(file)?;
        while let Some(block) = r.next_block() {
            match block?.0 {
                Block::InterfaceDescription(d) if iface.is_none() => {
                    iface = Some(add(&mut w, u32::from(d.linktype), d.snaplen)?);
                }
                Block::EnhancedPacket(p) => {
                    let i = iface.ok_or("a packet before any interface")?;
                    w.write_packet(i, p.timestamp.as_nanos() as u64, &p.data, p.original_len)?;
                    packets += 1;
                }
                _ => {}
            }
        }
    } else {
        let mut r = PcapReader::new(file)?;
        let h = r.header();
        let i = add(&mut w, u32::from(h.datalink), h.snaplen)?;
        while let Some(p) = r.next_packet() {
            let p = p?;
            w.write_packet(i, p.timestamp().as_nanos() as u64, p.data(), p.orig_len())?;
            packets += 1;
        }
    }
    // The last frame is written first, so that the counts include it.
    w.flush()?;
    let frames = w.frames_written();
    let bytes = w.bytes_written();
    w.finish()?;
    eprintln!("{packets} packets, {frames} frames, {bytes} bytes");
    Ok(())
}
