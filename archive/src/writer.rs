//! Writing Juno archives.
//!
//! Two layers, so that a recorder can compress on its own threads:
//! - [`BlockEncoder`] turns packets, records and statistics into pcapng blocks and cuts them
//!   into [`PendingFrame`]s of bounded size. No I/O.
//! - [`ArchiveWriter`] compresses those frames and writes them to any `Write`.

use std::borrow::Cow;
use std::io::Write;
use std::time::Duration;

use pcap_file::pcapng::blocks::block_common::{CUSTOM_BLOCK_COPIABLE, ENHANCED_PACKET_BLOCK};
use pcap_file::pcapng::blocks::interface_description::{
    InterfaceDescriptionBlock, InterfaceDescriptionOption, InterfaceTsResolution,
};
use pcap_file::pcapng::blocks::interface_statistics::{
    InterfaceStatisticsBlock, InterfaceStatisticsOption,
};
use pcap_file::pcapng::blocks::section_header::{SectionHeaderBlock, SectionHeaderOption};
use pcap_file::pcapng::{PcapNgWriteError, PcapNgWriter};
use pcap_file::{DataLink, Endianness};
use thiserror::Error;

use crate::frame::{self, DEFAULT_FRAME_SIZE, FrameIndex};
use crate::record::{FileInfo, JUNO_PEN, MetaRecord, Record, SocketEvent, StatsRecord};

/// Errors while writing.
#[derive(Debug, Error)]
pub enum WriteError {
    /// The underlying writer failed.
    #[error("write failed: {0}")]
    Io(#[from] std::io::Error),
    /// pcapng encoding refused a block.
    #[error("pcapng encoding failed: {0}")]
    Pcapng(#[from] PcapNgWriteError),
    /// A packet names an interface that was never added.
    #[error("interface {0} was not added to this file")]
    UnknownInterface(u32),
    /// A record too large for a pcapng block (its length field is 32 bits).
    #[error("a block of {0} bytes does not fit pcapng's 32-bit block length")]
    TooLarge(usize),
}

/// An interface to describe in an Interface Description Block.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InterfaceDesc {
    /// Interface name (`if_name`), e.g. `veth1a2b3c`.
    pub name: String,
    /// Free text (`if_description`); Juno writes `pod <namespace>/<name>` when it knows the pod.
    pub description: Option<String>,
    /// Link type (1 = Ethernet).
    pub linktype: u32,
    /// Capture length limit.
    pub snaplen: u32,
}

/// Interface statistics (pcapng ISB), counters since capture start.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct InterfaceStats {
    /// Capture start, ns since the epoch.
    pub start_ns: u64,
    /// Time of this reading, ns since the epoch.
    pub end_ns: u64,
    /// Packets seen by the capture hook (`isb_ifrecv`).
    pub received: u64,
    /// Packets lost before reaching the recorder, e.g. ring buffer full (`isb_osdrop`).
    pub dropped: u64,
    /// Packets written to the archive (`isb_usrdeliv`).
    pub delivered: u64,
}

/// Options for encoding frames.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FrameOptions {
    /// A frame is cut once its uncompressed content reaches this size (a single larger block
    /// still forms a frame of its own).
    pub frame_size: usize,
    /// zstd level.
    pub level: i32,
}

impl Default for FrameOptions {
    fn default() -> Self {
        FrameOptions {
            frame_size: DEFAULT_FRAME_SIZE,
            level: frame::DEFAULT_LEVEL,
        }
    }
}

/// A frame's uncompressed content with its index, ready to compress.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PendingFrame {
    /// Index fields known before compression.
    pub index: FrameIndex,
    /// pcapng blocks.
    pub content: Vec<u8>,
}

impl PendingFrame {
    /// Compresses the frame with `c`, appending index frame and zstd frame to `out`.
    pub fn compress_into(
        &self,
        c: &mut frame::FrameCompressor,
        out: &mut Vec<u8>,
    ) -> std::io::Result<()> {
        c.encode(self.index, &self.content, out)
    }
}

/// Encodes blocks into bounded frames. The first frame starts with the Section Header Block
/// and the [`FileInfo`] record, so every file stands alone.
pub struct BlockEncoder {
    png: PcapNgWriter<Vec<u8>>,
    frame_size: usize,
    seq: u32,
    blocks: u32,
    first_ts: u64,
    last_ts: u64,
    interfaces: u32,
}

impl std::fmt::Debug for BlockEncoder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BlockEncoder")
            .field("pending", &self.png.get_ref().len())
            .field("frame_size", &self.frame_size)
            .field("seq", &self.seq)
            .field("interfaces", &self.interfaces)
            .finish_non_exhaustive()
    }
}

/// `v` in byte order `e`.
fn u32_bytes(e: Endianness, v: u32) -> [u8; 4] {
    match e {
        Endianness::Big => v.to_be_bytes(),
        Endianness::Little => v.to_le_bytes(),
    }
}

fn dur(ns: u64) -> Duration {
    Duration::from_nanos(ns)
}

impl BlockEncoder {
    /// Starts a file: Section Header Block, then the file-info record.
    pub fn new(info: &FileInfo, frame_size: usize) -> Result<Self, WriteError> {
        let mut options = vec![SectionHeaderOption::OS(Cow::Borrowed("Linux"))];
        if let Some(r) = &info.recorder {
            options.push(SectionHeaderOption::UserApplication(Cow::Owned(r.clone())));
        }
        let shb = SectionHeaderBlock {
            options,
            ..Default::default()
        };
        let png = PcapNgWriter::with_section_header(Vec::with_capacity(frame_size + 4096), shb)?;
        let mut enc = BlockEncoder {
            png,
            frame_size: frame_size.max(4096),
            seq: 0,
            blocks: 1,
            first_ts: 0,
            last_ts: 0,
            interfaces: 0,
        };
        enc.write_record(&Record::FileInfo(info.clone()))?;
        Ok(enc)
    }

    fn note_ts(&mut self, ts: u64) {
        if ts == 0 {
            return;
        }
        if self.first_ts == 0 || ts < self.first_ts {
            self.first_ts = ts;
        }
        self.last_ts = self.last_ts.max(ts);
    }

    fn after_block(&mut self, ts: u64) -> Option<PendingFrame> {
        self.blocks += 1;
        self.note_ts(ts);
        (self.png.get_ref().len() >= self.frame_size)
            .then(|| self.take_frame())
            .flatten()
    }

    /// Adds an Interface Description Block; returns its interface id (0, 1, ...).
    pub fn add_interface(
        &mut self,
        d: &InterfaceDesc,
    ) -> Result<(u32, Option<PendingFrame>), WriteError> {
        let mut options = vec![
            InterfaceDescriptionOption::IfName(Cow::Owned(d.name.clone())),
            InterfaceDescriptionOption::IfTsResol(InterfaceTsResolution::NANO),
        ];
        if let Some(desc) = &d.description {
            options.push(InterfaceDescriptionOption::IfDescription(Cow::Owned(
                desc.clone(),
            )));
        }
        let idb = InterfaceDescriptionBlock {
            linktype: DataLink::from(d.linktype),
            snaplen: d.snaplen,
            options,
        };
        self.png.write_pcapng_block(idb)?;
        let id = self.interfaces;
        self.interfaces += 1;
        Ok((id, self.after_block(0)))
    }

    /// Adds an Enhanced Packet Block, encoded in place in the frame (as [`Self::write_record`]
    /// does Custom Blocks: one per packet, and pcap-file's writer builds and copies a block
    /// per call). Every interface this encoder describes has nanosecond timestamps and no
    /// offset (`add_interface`), so a timestamp is `ts_ns` itself. The bytes are the same as
    /// pcap-file's (`packet_blocks_are_written_as_pcap_file_writes_them`).
    pub fn write_packet(
        &mut self,
        iface: u32,
        ts_ns: u64,
        data: &[u8],
        orig_len: u32,
    ) -> Result<Option<PendingFrame>, WriteError> {
        if iface >= self.interfaces {
            return Err(WriteError::UnknownInterface(iface));
        }
        let Ok(cap_len) = u32::try_from(data.len()) else {
            return Err(WriteError::TooLarge(data.len()));
        };
        let orig = orig_len.max(cap_len);
        let start = self.begin_block(ENHANCED_PACKET_BLOCK);
        let b = self.endianness();
        let out = self.png.get_mut();
        for v in [iface, (ts_ns >> 32) as u32, ts_ns as u32, cap_len, orig] {
            out.extend_from_slice(&u32_bytes(b, v));
        }
        out.extend_from_slice(data);
        self.end_block(start)?;
        Ok(self.after_block(ts_ns))
    }

    /// Adds a Juno record as a (copiable) Custom Block, encoded in place in the frame: one per
    /// socket event, so not through pcap-file's writer, which takes a block's body through a
    /// copy of its own and builds a `Block` per record. The bytes are the same
    /// (`custom_blocks_are_written_as_pcap_file_writes_them`); a Custom Block changes no
    /// writer state (sections and interfaces do).
    pub fn write_record(&mut self, r: &Record<'_>) -> Result<Option<PendingFrame>, WriteError> {
        let start = self.begin_block(CUSTOM_BLOCK_COPIABLE);
        let pen = u32_bytes(self.endianness(), JUNO_PEN);
        let out = self.png.get_mut();
        out.extend_from_slice(&pen);
        r.encode(out);
        self.end_block(start)?;
        let ts = match r {
            Record::FileInfo(f) => f.start_ns,
            Record::Socket(s) => s.ts_ns,
            Record::Metadata(m) => m.ts_ns,
            Record::Stats(s) => s.ts_ns,
        };
        Ok(self.after_block(ts))
    }

    /// The byte order of the current section.
    fn endianness(&self) -> Endianness {
        self.png.section().endianness
    }

    /// Starts a block of `block_type` in the frame (its type, and room for its length);
    /// returns where it starts.
    fn begin_block(&mut self, block_type: u32) -> usize {
        let b = self.endianness();
        let out = self.png.get_mut();
        let start = out.len();
        out.extend_from_slice(&u32_bytes(b, block_type));
        out.extend_from_slice(&[0; 4]);
        start
    }

    /// Ends the block begun at `start`: pads its body to 4 bytes and writes its total length
    /// at both ends. A block too long for its length field is taken back out.
    fn end_block(&mut self, start: usize) -> Result<(), WriteError> {
        let b = self.endianness();
        let out = self.png.get_mut();
        let pad = (4 - (out.len() - start) % 4) % 4;
        out.resize(out.len() + pad, 0);
        let block_len = out.len() - start + 4;
        let Ok(len) = u32::try_from(block_len) else {
            out.truncate(start);
            return Err(WriteError::TooLarge(block_len));
        };
        out.extend_from_slice(&u32_bytes(b, len));
        out[start + 4..start + 8].copy_from_slice(&u32_bytes(b, len));
        Ok(())
    }

    /// Adds a socket event.
    pub fn write_socket_event(
        &mut self,
        e: &SocketEvent<'_>,
    ) -> Result<Option<PendingFrame>, WriteError> {
        self.write_record(&Record::Socket(e.clone()))
    }

    /// Adds a metadata record.
    pub fn write_metadata(&mut self, m: &MetaRecord) -> Result<Option<PendingFrame>, WriteError> {
        self.write_record(&Record::Metadata(m.clone()))
    }

    /// Adds recorder statistics.
    pub fn write_stats(&mut self, s: &StatsRecord) -> Result<Option<PendingFrame>, WriteError> {
        self.write_record(&Record::Stats(s.clone()))
    }

    /// Adds an Interface Statistics Block.
    pub fn write_interface_stats(
        &mut self,
        iface: u32,
        s: &InterfaceStats,
    ) -> Result<Option<PendingFrame>, WriteError> {
        if iface >= self.interfaces {
            return Err(WriteError::UnknownInterface(iface));
        }
        let isb = InterfaceStatisticsBlock {
            interface_id: iface,
            timestamp: dur(s.end_ns),
            options: vec![
                InterfaceStatisticsOption::IsbStartTime(dur(s.start_ns)),
                InterfaceStatisticsOption::IsbEndTime(dur(s.end_ns)),
                InterfaceStatisticsOption::IsbIfRecv(s.received),
                InterfaceStatisticsOption::IsbOsDrop(s.dropped),
                InterfaceStatisticsOption::IsbUsrDeliv(s.delivered),
            ],
        };
        self.png.write_pcapng_block(isb)?;
        Ok(self.after_block(s.end_ns))
    }

    /// Uncompressed bytes waiting in the current frame.
    pub fn pending_len(&self) -> usize {
        self.png.get_ref().len()
    }

    /// Cuts the current frame, if it holds anything.
    pub fn take_frame(&mut self) -> Option<PendingFrame> {
        if self.png.get_ref().is_empty() {
            return None;
        }
        let content = std::mem::replace(
            self.png.get_mut(),
            Vec::with_capacity(self.frame_size + 4096),
        );
        let index = FrameIndex {
            seq: self.seq,
            blocks: self.blocks,
            first_ts_ns: self.first_ts,
            last_ts_ns: self.last_ts,
            ..Default::default()
        };
        self.seq += 1;
        self.blocks = 0;
        self.first_ts = 0;
        self.last_ts = 0;
        Some(PendingFrame { index, content })
    }
}

/// Writes a Juno archive to `W`, compressing frames on the calling thread.
#[derive(Debug)]
pub struct ArchiveWriter<W: Write> {
    enc: BlockEncoder,
    out: W,
    compressor: frame::FrameCompressor,
    buf: Vec<u8>,
    written: u64,
    frames: u64,
}

impl<W: Write> ArchiveWriter<W> {
    /// Starts a file.
    pub fn new(out: W, info: &FileInfo, opts: FrameOptions) -> Result<Self, WriteError> {
        Ok(ArchiveWriter {
            enc: BlockEncoder::new(info, opts.frame_size)?,
            out,
            compressor: frame::FrameCompressor::new(opts.level, opts.frame_size)?,
            buf: Vec::new(),
            written: 0,
            frames: 0,
        })
    }

    fn emit(&mut self, f: Option<PendingFrame>) -> Result<(), WriteError> {
        if let Some(f) = f {
            self.buf.clear();
            f.compress_into(&mut self.compressor, &mut self.buf)?;
            self.out.write_all(&self.buf)?;
            self.written += self.buf.len() as u64;
            self.frames += 1;
        }
        Ok(())
    }

    /// Adds an interface; returns its id.
    pub fn add_interface(&mut self, d: &InterfaceDesc) -> Result<u32, WriteError> {
        let (id, f) = self.enc.add_interface(d)?;
        self.emit(f)?;
        Ok(id)
    }

    /// Adds a packet.
    pub fn write_packet(
        &mut self,
        iface: u32,
        ts_ns: u64,
        data: &[u8],
        orig_len: u32,
    ) -> Result<(), WriteError> {
        let f = self.enc.write_packet(iface, ts_ns, data, orig_len)?;
        self.emit(f)
    }

    /// Adds a Juno record.
    pub fn write_record(&mut self, r: &Record<'_>) -> Result<(), WriteError> {
        let f = self.enc.write_record(r)?;
        self.emit(f)
    }

    /// Adds interface statistics.
    pub fn write_interface_stats(
        &mut self,
        iface: u32,
        s: &InterfaceStats,
    ) -> Result<(), WriteError> {
        let f = self.enc.write_interface_stats(iface, s)?;
        self.emit(f)
    }

    /// Compresses and writes the current frame, then flushes the writer.
    pub fn flush(&mut self) -> Result<(), WriteError> {
        let f = self.enc.take_frame();
        self.emit(f)?;
        self.out.flush()?;
        Ok(())
    }

    /// Compressed bytes written so far.
    pub fn bytes_written(&self) -> u64 {
        self.written
    }

    /// Frames written so far.
    pub fn frames_written(&self) -> u64 {
        self.frames
    }

    /// Uncompressed bytes not yet written.
    pub fn pending_len(&self) -> usize {
        self.enc.pending_len()
    }

    /// Writes what is pending and returns the writer.
    pub fn finish(mut self) -> Result<W, WriteError> {
        self.flush()?;
        Ok(self.out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use pcap_file::pcapng::PcapNgBlock;

    /// The Enhanced Packet Blocks [`BlockEncoder::write_packet`] writes by hand are the ones
    /// pcap-file's writer wrote for the same packets (same interfaces, nanosecond
    /// timestamps): every padding (0 to 7 bytes of data), timestamps past 2^32 ns, a packet
    /// cut by the snap length, the second interface; and pcap-file reads them back.
    #[test]
    fn packet_blocks_are_written_as_pcap_file_writes_them() {
        use pcap_file::pcapng::blocks::enhanced_packet::EnhancedPacketBlock;
        use pcap_file::pcapng::blocks::interface_description::{
            InterfaceDescriptionBlock, InterfaceDescriptionOption,
        };
        let info = FileInfo {
            node: "node-1".into(),
            ..Default::default()
        };
        let descs = [("eth0", 1u32), ("veth1", 1)];
        let mut enc = BlockEncoder::new(&info, 1 << 20).unwrap();
        let mut reference =
            PcapNgWriter::with_section_header(Vec::new(), SectionHeaderBlock::default()).unwrap();
        for (name, linktype) in descs {
            enc.add_interface(&InterfaceDesc {
                name: name.into(),
                description: None,
                linktype,
                snaplen: 2048,
            })
            .unwrap();
            reference
                .write_pcapng_block(InterfaceDescriptionBlock {
                    linktype: DataLink::from(linktype),
                    snaplen: 2048,
                    options: vec![
                        InterfaceDescriptionOption::IfName(Cow::Borrowed(name)),
                        InterfaceDescriptionOption::IfTsResol(InterfaceTsResolution::NANO),
                    ],
                })
                .unwrap();
        }
        let frame: Vec<u8> = (0..=255).collect();
        let mut packets = Vec::new();
        for n in 0..8usize {
            packets.push((
                0u32,
                1_764_000_000_123_456_789u64 + n as u64,
                &frame[..n],
                n as u32,
            ));
        }
        packets.push((1, 0x1_0000_0001, &frame[..61], 1500));
        packets.push((1, u64::MAX, &frame[..], 256));
        for (iface, ts, data, orig) in packets {
            let before = enc.png.get_ref().len();
            enc.write_packet(iface, ts, data, orig).unwrap();
            let got = enc.png.get_ref()[before..].to_vec();
            let ref_before = reference.get_ref().len();
            reference
                .write_pcapng_block(EnhancedPacketBlock {
                    interface_id: iface,
                    timestamp: dur(ts),
                    original_len: orig,
                    data: Cow::Borrowed(data),
                    options: Vec::new(),
                })
                .unwrap();
            assert_eq!(
                got,
                reference.get_ref()[ref_before..],
                "{} bytes at {ts}",
                data.len()
            );
        }
        assert!(matches!(
            enc.write_packet(2, 1, b"x", 1),
            Err(WriteError::UnknownInterface(2))
        ));
        let frame = enc.take_frame().unwrap();
        let mut reader = pcap_file::pcapng::PcapNgReader::new(&frame.content[..]).unwrap();
        let mut lens = Vec::new();
        while let Some(b) = reader.next_block() {
            if let (pcap_file::pcapng::Block::EnhancedPacket(p), _) = b.unwrap() {
                lens.push((p.interface_id, p.data.len(), p.original_len));
            }
        }
        let mut want: Vec<_> = (0..8).map(|n| (0, n, n as u32)).collect();
        want.extend([(1, 61, 1500), (1, 256, 256)]);
        assert_eq!(lens, want);
    }

    /// The blocks [`BlockEncoder::write_record`] writes by hand are the ones pcap-file's
    /// writer wrote for the same records, in every padding (payloads 0 to 7 bytes shorter),
    /// after the file-info record.
    #[test]
    fn custom_blocks_are_written_as_pcap_file_writes_them() {
        let info = FileInfo {
            node: "node-1".into(),
            ..Default::default()
        };
        let payload = b"GET /x HTTP/1.1\r\n".repeat(3);
        let mut records = vec![Record::FileInfo(info.clone())];
        for n in 0..8 {
            let mut ev = crate::record::tests::sample_socket();
            ev.payload = &payload[..payload.len() - n];
            records.push(Record::Socket(ev));
        }
        let mut enc = BlockEncoder::new(&info, 1 << 20).unwrap();
        for r in &records[1..] {
            let before = enc.png.get_ref().len();
            enc.write_record(r).unwrap();
            let got = enc.png.get_ref()[before..].to_vec();
            let mut body = Vec::new();
            r.encode(&mut body);
            let mut w =
                PcapNgWriter::with_section_header(Vec::new(), SectionHeaderBlock::default())
                    .unwrap();
            let shb_len = w.get_ref().len();
            let block = pcap_file::pcapng::blocks::custom::CustomBlock::<true> {
                pen: JUNO_PEN,
                payload: Cow::Borrowed(&body),
            };
            w.write_block(&block.into_block()).unwrap();
            assert_eq!(got, w.get_ref()[shb_len..], "payload of {}", body.len());
        }
        // And pcap-file reads the frame back, block by block.
        let frame = enc.take_frame().unwrap();
        let mut reader = pcap_file::pcapng::PcapNgReader::new(&frame.content[..]).unwrap();
        let mut custom = 0;
        while let Some(b) = reader.next_block() {
            if let (pcap_file::pcapng::Block::CustomCopiable(c), _) = b.unwrap() {
                assert_eq!(c.pen, JUNO_PEN);
                custom += 1;
            }
        }
        assert_eq!(custom, records.len());
    }
}
