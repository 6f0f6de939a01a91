//! Reading the pcapng stream inside an archive (or any pcapng stream).
//!
//! [`PcapNgStream`] turns bytes into [`Item`]s: packets, Juno records and interface statistics.
//! It is incremental: it parses the complete blocks it is given and leaves an incomplete one
//! for the caller to extend. Unknown block types, foreign custom blocks, blocks whose content
//! is malformed and Juno records of another version are skipped and counted in [`ReadStats`];
//! only a broken block *framing* (which makes the rest of the stream unreadable) is an error.

use pcap_file::pcapng::blocks::interface_description::InterfaceDescriptionOption;
use pcap_file::pcapng::blocks::interface_statistics::InterfaceStatisticsOption;
use pcap_file::pcapng::{Block, PcapNgParseError, PcapNgParser};
use thiserror::Error;

use crate::record::{self, DecodeStats, Decoded, JUNO_PEN, Record};

/// A packet from an Enhanced (or Simple, or obsolete) Packet Block.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Packet<'a> {
    /// Interface id within the current section.
    pub iface: u32,
    /// Timestamp, ns since the Unix epoch (0 for Simple Packet Blocks).
    pub ts_ns: u64,
    /// Captured bytes, starting with the link-layer header.
    pub data: &'a [u8],
    /// Length on the wire.
    pub orig_len: u32,
}

/// Counters from an Interface Statistics Block.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct IfaceStatsItem {
    /// Interface id.
    pub iface: u32,
    /// Time of the reading.
    pub ts_ns: u64,
    /// `isb_ifrecv`.
    pub received: Option<u64>,
    /// `isb_ifdrop` + `isb_osdrop`.
    pub dropped: Option<u64>,
    /// `isb_usrdeliv`.
    pub delivered: Option<u64>,
}

/// What a block yields.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Item<'a> {
    /// A new section began; interface ids restart at 0.
    Section,
    /// An interface was described; see [`PcapNgStream::interfaces`].
    Interface(u32),
    /// A packet.
    Packet(Packet<'a>),
    /// A Juno record.
    Record(Record<'a>),
    /// Interface statistics.
    InterfaceStats(IfaceStatsItem),
}

/// An interface as described by its Interface Description Block.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct InterfaceInfo {
    /// Link type.
    pub linktype: u32,
    /// Snap length.
    pub snaplen: u32,
    /// `if_name`.
    pub name: Option<String>,
    /// `if_description`.
    pub description: Option<String>,
}

/// What was skipped or unusual while reading.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ReadStats {
    /// Blocks read.
    pub blocks: u64,
    /// Blocks of a type this reader does not handle (name resolution, journal, unknown).
    pub unknown_blocks: u64,
    /// Custom blocks of another Private Enterprise Number, or without Juno's magic.
    pub foreign_custom_blocks: u64,
    /// Blocks whose framing was fine but whose content could not be decoded.
    pub bad_blocks: u64,
    /// Juno records that could not be decoded.
    pub bad_records: u64,
    /// Counters from record decoding (newer minor, other major, unknown types and tags).
    pub records: DecodeStats,
}

impl ReadStats {
    /// Adds another reader's counters.
    pub fn add(&mut self, o: &ReadStats) {
        self.blocks += o.blocks;
        self.unknown_blocks += o.unknown_blocks;
        self.foreign_custom_blocks += o.foreign_custom_blocks;
        self.bad_blocks += o.bad_blocks;
        self.bad_records += o.bad_records;
        self.records.newer_minor += o.records.newer_minor;
        self.records.other_major += o.records.other_major;
        self.records.unknown_type += o.records.unknown_type;
        self.records.unknown_tags += o.records.unknown_tags;
    }
}

/// The stream cannot be read further.
#[derive(Debug, Error)]
pub enum ReadError {
    /// The stream does not begin with a Section Header Block.
    #[error("not a pcapng stream: {0}")]
    NotPcapNg(String),
    /// A block's framing is broken; nothing after it can be located.
    #[error("corrupt pcapng block framing: {0}")]
    Framing(String),
}

/// Blocks longer than this are treated as corrupt framing rather than waited for: no legitimate
/// block comes close (packets are at most 256 KiB, Juno records at most about 1 MiB).
pub const MAX_BLOCK_LEN: usize = 64 << 20;

fn incomplete(needed: usize) -> Result<Option<Item<'static>>, ReadError> {
    if needed > MAX_BLOCK_LEN {
        Err(ReadError::Framing(format!(
            "block claims {needed} bytes, more than the {MAX_BLOCK_LEN}-byte limit"
        )))
    } else {
        Ok(None)
    }
}

/// Incremental pcapng reader.
#[derive(Debug, Default)]
pub struct PcapNgStream {
    parser: Option<PcapNgParser>,
    interfaces: Vec<InterfaceInfo>,
    stats: ReadStats,
}

fn ns(d: std::time::Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

impl PcapNgStream {
    /// A reader that expects a Section Header Block first.
    pub fn new() -> Self {
        Self::default()
    }

    /// Interfaces of the current section.
    pub fn interfaces(&self) -> &[InterfaceInfo] {
        &self.interfaces
    }

    /// Counters so far.
    pub fn stats(&self) -> &ReadStats {
        &self.stats
    }

    /// Parses the next item from `buf`, advancing it past the block.
    ///
    /// `Ok(None)` means `buf` holds no complete block (it is empty or ends in an incomplete
    /// block that more data may complete).
    pub fn next_item<'a>(&mut self, buf: &mut &'a [u8]) -> Result<Option<Item<'a>>, ReadError> {
        loop {
            if buf.is_empty() {
                return Ok(None);
            }
            let Some(parser) = self.parser.as_mut() else {
                match PcapNgParser::new(buf) {
                    Ok((rem, p)) => {
                        self.parser = Some(p);
                        *buf = rem;
                        self.stats.blocks += 1;
                        self.interfaces.clear();
                        return Ok(Some(Item::Section));
                    }
                    Err(PcapNgParseError::IncompleteBuffer(needed, _)) => {
                        return incomplete(needed);
                    }
                    Err(e) => return Err(ReadError::NotPcapNg(e.to_string())),
                }
            };
            let (rem, raw) = match parser.next_raw_block(buf) {
                Ok(x) => x,
                Err(PcapNgParseError::IncompleteBuffer(needed, _)) => return incomplete(needed),
                Err(e @ PcapNgParseError::StateUpdate(_)) => {
                    // A Section Header or Interface Description whose content is malformed:
                    // later packets could be attributed to the wrong interface, so stop.
                    return Err(ReadError::Framing(e.to_string()));
                }
                Err(e) => return Err(ReadError::Framing(e.to_string())),
            };
            *buf = rem;
            self.stats.blocks += 1;
            let block = match raw.try_into_block(parser.state()) {
                Ok(b) => b,
                Err(_) => {
                    self.stats.bad_blocks += 1;
                    continue;
                }
            };
            if let Some(item) = self.convert(block) {
                return Ok(Some(item));
            }
        }
    }

    fn convert<'a>(&mut self, block: Block<'a>) -> Option<Item<'a>> {
        match block {
            Block::SectionHeader(_) => {
                self.interfaces.clear();
                Some(Item::Section)
            }
            Block::InterfaceDescription(idb) => {
                let mut info = InterfaceInfo {
                    linktype: u32::from(idb.linktype),
                    snaplen: idb.snaplen,
                    ..Default::default()
                };
                for o in &idb.options {
                    match o {
                        InterfaceDescriptionOption::IfName(n) => info.name = Some(n.to_string()),
                        InterfaceDescriptionOption::IfDescription(d) => {
                            info.description = Some(d.to_string());
                        }
                        _ => {}
                    }
                }
                self.interfaces.push(info);
                Some(Item::Interface(
                    u32::try_from(self.interfaces.len() - 1).unwrap_or(u32::MAX),
                ))
            }
            Block::EnhancedPacket(epb) => {
                let data = self.borrowed(epb.data)?;
                Some(Item::Packet(Packet {
                    iface: epb.interface_id,
                    ts_ns: ns(epb.timestamp),
                    data,
                    orig_len: epb.original_len,
                }))
            }
            Block::SimplePacket(spb) => {
                let data = self.borrowed(spb.data)?;
                Some(Item::Packet(Packet {
                    iface: 0,
                    ts_ns: 0,
                    data,
                    orig_len: spb.original_len,
                }))
            }
            Block::Packet(pb) => {
                let data = self.borrowed(pb.data)?;
                Some(Item::Packet(Packet {
                    iface: u32::from(pb.interface_id),
                    ts_ns: ns(pb.timestamp),
                    data,
                    orig_len: pb.original_len,
                }))
            }
            Block::InterfaceStatistics(isb) => {
                let mut it = IfaceStatsItem {
                    iface: isb.interface_id,
                    ts_ns: ns(isb.timestamp),
                    ..Default::default()
                };
                for o in &isb.options {
                    match o {
                        InterfaceStatisticsOption::IsbIfRecv(v) => it.received = Some(*v),
                        InterfaceStatisticsOption::IsbIfDrop(v)
                        | InterfaceStatisticsOption::IsbOsDrop(v) => {
                            it.dropped = Some(it.dropped.unwrap_or(0) + v);
                        }
                        InterfaceStatisticsOption::IsbUsrDeliv(v) => it.delivered = Some(*v),
                        _ => {}
                    }
                }
                Some(Item::InterfaceStats(it))
            }
            Block::CustomCopiable(cb) => self.custom(cb.pen, cb.payload),
            Block::CustomNonCopiable(cb) => self.custom(cb.pen, cb.payload),
            Block::NameResolution(_) | Block::SystemdJournalExport(_) | Block::Unknown(_) => {
                self.stats.unknown_blocks += 1;
                None
            }
        }
    }

    /// Blocks parsed from a borrowed buffer borrow their data (pcap-file copies only when the
    /// raw block itself was owned, which this reader never asks for). Counted if it happens.
    fn borrowed<'a>(&mut self, c: std::borrow::Cow<'a, [u8]>) -> Option<&'a [u8]> {
        match c {
            std::borrow::Cow::Borrowed(b) => Some(b),
            std::borrow::Cow::Owned(_) => {
                self.stats.bad_blocks += 1;
                None
            }
        }
    }

    fn custom<'a>(&mut self, pen: u32, payload: std::borrow::Cow<'a, [u8]>) -> Option<Item<'a>> {
        let payload = self.borrowed(payload)?;
        if pen != JUNO_PEN || !payload.starts_with(&record::MAGIC) {
            self.stats.foreign_custom_blocks += 1;
            return None;
        }
        match record::decode(payload, &mut self.stats.records) {
            Ok(Decoded::Record(r)) => Some(Item::Record(r)),
            Ok(Decoded::Skipped(_)) => None,
            Err(_) => {
                self.stats.bad_records += 1;
                None
            }
        }
    }
}

/// What [`read_archive`] found besides the items.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ArchiveReport {
    /// Complete frames decoded.
    pub frames: u64,
    /// Frames that could not be decompressed (skipped).
    pub corrupt_frames: u64,
    /// Bytes after the last complete frame: the file was cut short.
    pub trailing: Option<crate::frame::Trailing>,
    /// An incomplete block at the end of a frame's content (should not happen in Juno files).
    pub partial_block_bytes: u64,
    /// Block counters.
    pub stats: ReadStats,
}

/// Reads a whole Juno archive held in memory, frame by frame, calling `f` for every item.
///
/// A file cut short is read up to its last complete frame and reported in
/// [`ArchiveReport::trailing`]; a frame that fails to decompress is skipped and counted. Only a
/// stream that is not pcapng, or broken block framing, is an error.
pub fn read_archive(
    buf: &[u8],
    mut f: impl FnMut(&Item<'_>, &PcapNgStream),
) -> Result<ArchiveReport, ReadError> {
    let scan = crate::frame::scan(buf);
    let mut rep = ArchiveReport {
        trailing: scan.trailing.clone(),
        ..Default::default()
    };
    let mut stream = PcapNgStream::new();
    for e in &scan.frames {
        let content = match crate::frame::decompress_entry(buf, e, crate::frame::MAX_FRAME_SIZE) {
            Ok(c) => c,
            Err(_) => {
                rep.corrupt_frames += 1;
                continue;
            }
        };
        rep.frames += 1;
        let mut rest: &[u8] = &content;
        while let Some(item) = stream.next_item(&mut rest)? {
            f(&item, &stream);
        }
        rep.partial_block_bytes += rest.len() as u64;
    }
    rep.stats = *stream.stats();
    Ok(rep)
}
