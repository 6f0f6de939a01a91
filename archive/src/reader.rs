//! Reading the pcapng stream inside an archive (or any pcapng stream).
//!
//! [`PcapNgStream`] turns bytes into [`Item`]s: packets, Juno records and interface statistics.
//! It is incremental: it parses the complete blocks it is given and leaves an incomplete one
//! for the caller to extend. It reads the blocks itself (draft-ietf-opsawg-pcapng), so that
//! what a strict parser refuses is read as far as it is good:
//!
//! - unknown block types, foreign custom blocks, Juno records of another version and blocks
//!   whose content is malformed are skipped and counted in [`ReadStats`]; a malformed
//!   Interface Description still takes its interface id (with link type
//!   [`UNDECODABLE_LINKTYPE`]), so the ids of the interfaces after it stay right;
//! - every `if_tsresol` (powers of 10 and of 2, up to 2^-127) and `if_tsoffset` are honoured;
//!   a time that cannot be given as nanoseconds since 1970 in a `u64` (before 1970, or after
//!   2554) is read as 0 ("unknown") and counted;
//! - a packet of an interface no Interface Description described is skipped and counted, or,
//!   when the caller said what such interfaces are ([`PcapNgStream::assume_interfaces`]: Juno
//!   archives, whose writer describes every interface the same way), read with that
//!   description, which is announced as an [`Item::Interface`] first;
//! - after the caller lost bytes (a Juno frame that could not be decompressed:
//!   [`PcapNgStream::resync`]), reading resumes at the next block, in the byte order of the
//!   current section, or — if the Section Header itself was lost — in the byte order the
//!   block's type reads in.
//!
//! Only a broken block *framing* (a length that cannot be, or a trailing length that differs)
//! is an error: nothing after it can be located in a plain pcapng stream.

use thiserror::Error;

use crate::record::{self, DecodeStats, Decoded, JUNO_PEN, Record};

/// A packet from an Enhanced (or Simple, or obsolete) Packet Block.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Packet<'a> {
    /// Interface id within the current section.
    pub iface: u32,
    /// Timestamp, ns since the Unix epoch (0 for Simple Packet Blocks, and when unknown).
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

/// The link type given to an interface whose description could not be decoded: no decoder
/// knows it, so its packets are counted as of an unsupported link type.
pub const UNDECODABLE_LINKTYPE: u32 = u32::MAX;

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
    /// Packets of an interface no Interface Description Block described: skipped, or read with
    /// the description the caller assumed ([`PcapNgStream::assume_interfaces`]).
    pub undescribed_packets: u64,
    /// Interfaces given the assumed description because theirs was missing.
    pub assumed_interfaces: u64,
    /// Timestamps that are not a time after 1970 in nanoseconds that fit a `u64` (an
    /// `if_tsoffset` before 1970, a resolution that overflows): read as 0, unknown.
    pub bad_timestamps: u64,
    /// Times reading resumed after bytes were lost ([`PcapNgStream::resync`]).
    pub resyncs: u64,
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
        self.undescribed_packets += o.undescribed_packets;
        self.assumed_interfaces += o.assumed_interfaces;
        self.bad_timestamps += o.bad_timestamps;
        self.resyncs += o.resyncs;
        self.records.newer_minor += o.records.newer_minor;
        self.records.other_major += o.records.other_major;
        self.records.unknown_type += o.records.unknown_type;
        self.records.unknown_tags += o.records.unknown_tags;
    }

    /// Whether anything was lost or damaged (as opposed to merely unknown to this reader:
    /// other block types, foreign custom blocks, newer minor records).
    pub fn damaged(&self) -> bool {
        self.bad_blocks + self.bad_records + self.undescribed_packets + self.bad_timestamps > 0
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

mod block {
    pub(super) const SHB: u32 = 0x0A0D_0D0A;
    pub(super) const IDB: u32 = 1;
    pub(super) const PB: u32 = 2;
    pub(super) const SPB: u32 = 3;
    pub(super) const NRB: u32 = 4;
    pub(super) const ISB: u32 = 5;
    pub(super) const EPB: u32 = 6;
    pub(super) const CB_COPY: u32 = 0x0000_0BAD;
    pub(super) const CB_NOCOPY: u32 = 0x4000_0BAD;
    /// Byte-order magic of a Section Header.
    pub(super) const BOM: u32 = 0x1A2B_3C4D;
    /// Block types a stream may resume at after lost bytes (to tell its byte order).
    pub(super) const RESUMABLE: [u32; 7] = [IDB, PB, SPB, NRB, ISB, EPB, CB_COPY];
}

/// Timestamp parameters of an interface: `if_tsresol` (raw) and `if_tsoffset` (seconds).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct TsParams {
    resol: u8,
    offset: i64,
}

impl Default for TsParams {
    fn default() -> Self {
        // The default resolution is microseconds.
        TsParams {
            resol: 6,
            offset: 0,
        }
    }
}

impl TsParams {
    /// Nanoseconds since the epoch, if that is a `u64`.
    fn ns(&self, raw: u64) -> Option<u64> {
        let exp = u32::from(self.resol & 0x7f);
        let ns: u128 = if self.resol & 0x80 == 0 {
            // 10^-exp seconds per unit.
            if exp <= 9 {
                u128::from(raw) * 10u128.pow(9 - exp)
            } else {
                // 10^(exp-9) exceeds any u64 from exp = 29 on: the quotient is 0.
                10u128
                    .checked_pow(exp - 9)
                    .map_or(0, |d| u128::from(raw) / d)
            }
        } else {
            // 2^-exp seconds per unit: raw * 1e9 fits u128 (2^64 * 2^30).
            (u128::from(raw) * 1_000_000_000) >> exp
        };
        let ns = i128::try_from(ns).ok()? + i128::from(self.offset) * 1_000_000_000;
        u64::try_from(ns).ok()
    }
}

fn rd32(big: bool, b: &[u8], at: usize) -> Option<u32> {
    let a: [u8; 4] = b.get(at..at.checked_add(4)?)?.try_into().ok()?;
    Some(if big {
        u32::from_be_bytes(a)
    } else {
        u32::from_le_bytes(a)
    })
}

fn rd16(big: bool, b: &[u8], at: usize) -> Option<u16> {
    let a: [u8; 2] = b.get(at..at.checked_add(2)?)?.try_into().ok()?;
    Some(if big {
        u16::from_be_bytes(a)
    } else {
        u16::from_le_bytes(a)
    })
}

fn rd64(big: bool, b: &[u8], at: usize) -> Option<u64> {
    let a: [u8; 8] = b.get(at..at.checked_add(8)?)?.try_into().ok()?;
    Some(if big {
        u64::from_be_bytes(a)
    } else {
        u64::from_le_bytes(a)
    })
}

/// The options of a block body starting at `at`: (code, value) pairs up to `opt_endofopt` or
/// the end of the body; a truncated option ends the list.
fn options(big: bool, body: &[u8], at: usize) -> impl Iterator<Item = (u16, &[u8])> {
    let mut pos = at;
    std::iter::from_fn(move || {
        let code = rd16(big, body, pos)?;
        let len = usize::from(rd16(big, body, pos + 2)?);
        if code == 0 {
            return None;
        }
        let start = pos + 4;
        let value = body.get(start..start + len)?;
        pos = start + len.div_ceil(4) * 4;
        Some((code, value))
    })
}

fn text(v: &[u8]) -> String {
    // Strings may be NUL-terminated within their option.
    let end = v.iter().position(|&b| b == 0).unwrap_or(v.len());
    String::from_utf8_lossy(&v[..end]).into_owned()
}

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
    /// The current section's byte order (big-endian?), once a section began.
    big: Option<bool>,
    interfaces: Vec<InterfaceInfo>,
    ts: Vec<TsParams>,
    assumed: Option<(InterfaceInfo, u8)>,
    resync: bool,
    stats: ReadStats,
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

    /// Packets of interfaces no Interface Description described are read as interfaces
    /// described by `info`, with timestamps in units of `if_tsresol` = `tsresol`, instead of
    /// being skipped. For streams whose writer describes every interface alike (Juno
    /// archives: Ethernet, nanoseconds), so that packets survive the loss of the frame that
    /// held their interface's description.
    pub fn assume_interfaces(&mut self, info: InterfaceInfo, tsresol: u8) {
        self.assumed = Some((info, tsresol));
    }

    /// The bytes before the next call's buffer do not follow the last block read (some were
    /// lost): the next block is read in the current section's byte order, or — if no Section
    /// Header was read — in the byte order its type reads in.
    pub fn resync(&mut self) {
        self.resync = true;
    }

    /// Parses the next item from `buf`, advancing it past the block.
    ///
    /// `Ok(None)` means `buf` holds no complete block (it is empty or ends in an incomplete
    /// block that more data may complete).
    pub fn next_item<'a>(&mut self, buf: &mut &'a [u8]) -> Result<Option<Item<'a>>, ReadError> {
        loop {
            if buf.len() < 8 {
                return Ok(None);
            }
            let b: &'a [u8] = buf;
            if rd32(false, b, 0) == Some(block::SHB) {
                return self.section(buf);
            }
            let big = match self.big {
                Some(big) => big,
                None if self.resync => {
                    let le = rd32(false, b, 0).unwrap_or(0);
                    let be = rd32(true, b, 0).unwrap_or(0);
                    if block::RESUMABLE.contains(&le) {
                        false
                    } else if block::RESUMABLE.contains(&be) {
                        true
                    } else {
                        return Err(ReadError::Framing(format!(
                            "cannot resume reading at a block of type {le:#010x}"
                        )));
                    }
                }
                None => {
                    return Err(ReadError::NotPcapNg(format!(
                        "it does not begin with a Section Header Block (first bytes {:02x?})",
                        &b[..8]
                    )));
                }
            };
            if self.resync {
                self.resync = false;
                self.stats.resyncs += 1;
                self.big = Some(big);
            }
            let ty = rd32(big, b, 0).unwrap_or(0);
            let len = rd32(big, b, 4).unwrap_or(0) as usize;
            if len < 12 || !len.is_multiple_of(4) {
                return Err(ReadError::Framing(format!(
                    "a block of type {ty:#x} claims a length of {len} bytes"
                )));
            }
            if b.len() < len {
                return incomplete(len);
            }
            if rd32(big, b, len - 4) != Some(len as u32) {
                return Err(ReadError::Framing(format!(
                    "a block of type {ty:#x} and length {len} ends with length {}",
                    rd32(big, b, len - 4).unwrap_or(0)
                )));
            }
            *buf = &b[len..];
            self.stats.blocks += 1;
            let body: &'a [u8] = &b[8..len - 4];
            let item = match ty {
                block::IDB => Some(self.interface(big, body)),
                block::EPB => {
                    if let Some(i) = rd32(big, body, 0)
                        && let Some(announce) = self.describe(i)
                    {
                        // Not consumed: the packet is read again once its interface exists.
                        *buf = b;
                        self.stats.blocks -= 1;
                        return Ok(Some(announce));
                    }
                    self.enhanced(big, body)
                }
                block::SPB => {
                    if let Some(announce) = self.describe(0) {
                        *buf = b;
                        self.stats.blocks -= 1;
                        return Ok(Some(announce));
                    }
                    self.simple(big, body)
                }
                block::PB => {
                    if let Some(i) = rd16(big, body, 0)
                        && let Some(announce) = self.describe(u32::from(i))
                    {
                        *buf = b;
                        self.stats.blocks -= 1;
                        return Ok(Some(announce));
                    }
                    self.obsolete(big, body)
                }
                block::ISB => self.statistics(big, body),
                block::CB_COPY | block::CB_NOCOPY => self.custom(big, body),
                _ => {
                    self.stats.unknown_blocks += 1;
                    None
                }
            };
            if let Some(item) = item {
                return Ok(Some(item));
            }
        }
    }

    fn section<'a>(&mut self, buf: &mut &'a [u8]) -> Result<Option<Item<'a>>, ReadError> {
        let b: &'a [u8] = buf;
        if b.len() < 12 {
            return Ok(None);
        }
        let big = if rd32(false, b, 8) == Some(block::BOM) {
            false
        } else if rd32(true, b, 8) == Some(block::BOM) {
            true
        } else {
            let what = format!("a Section Header with byte-order magic {:02x?}", &b[8..12]);
            return Err(if self.big.is_none() && !self.resync {
                ReadError::NotPcapNg(what)
            } else {
                ReadError::Framing(what)
            });
        };
        let len = rd32(big, b, 4).unwrap_or(0) as usize;
        if len < 28 || !len.is_multiple_of(4) {
            return Err(ReadError::Framing(format!(
                "a Section Header claims a length of {len} bytes"
            )));
        }
        if b.len() < len {
            return incomplete(len);
        }
        if rd32(big, b, len - 4) != Some(len as u32) {
            return Err(ReadError::Framing(format!(
                "a Section Header of length {len} ends with length {}",
                rd32(big, b, len - 4).unwrap_or(0)
            )));
        }
        let major = rd16(big, b, 12).unwrap_or(0);
        if major != 1 {
            return Err(ReadError::NotPcapNg(format!(
                "a section of pcapng major version {major} (only 1 exists)"
            )));
        }
        *buf = &b[len..];
        self.stats.blocks += 1;
        if self.resync {
            self.resync = false;
            self.stats.resyncs += 1;
        }
        self.big = Some(big);
        self.interfaces.clear();
        self.ts.clear();
        Ok(Some(Item::Section))
    }

    /// For a packet of interface `i` no description covers, with an assumed description: the
    /// next interface to announce (filled up to `i`).
    fn describe(&mut self, i: u32) -> Option<Item<'static>> {
        let (info, resol) = self.assumed.clone()?;
        let have = self.interfaces.len();
        if (i as usize) < have || i as usize >= MAX_ASSUMED {
            return None;
        }
        self.interfaces.push(info);
        self.ts.push(TsParams { resol, offset: 0 });
        self.stats.assumed_interfaces += 1;
        Some(Item::Interface(have as u32))
    }

    fn interface<'a>(&mut self, big: bool, body: &[u8]) -> Item<'a> {
        let id = u32::try_from(self.interfaces.len()).unwrap_or(u32::MAX);
        let (Some(linktype), Some(snaplen)) = (rd16(big, body, 0), rd32(big, body, 4)) else {
            // Keeps its id, so that later interfaces keep theirs.
            self.stats.bad_blocks += 1;
            self.interfaces.push(InterfaceInfo {
                linktype: UNDECODABLE_LINKTYPE,
                ..Default::default()
            });
            self.ts.push(TsParams::default());
            return Item::Interface(id);
        };
        let mut info = InterfaceInfo {
            linktype: u32::from(linktype),
            snaplen,
            ..Default::default()
        };
        let mut ts = TsParams::default();
        for (code, v) in options(big, body, 8) {
            match code {
                2 => info.name = Some(text(v)),
                3 => info.description = Some(text(v)),
                9 => {
                    if let Some(&r) = v.first() {
                        ts.resol = r;
                    }
                }
                14 => {
                    if let Some(o) = rd64(big, v, 0) {
                        ts.offset = o as i64;
                    }
                }
                _ => {}
            }
        }
        self.interfaces.push(info);
        self.ts.push(ts);
        Item::Interface(id)
    }

    fn time(&mut self, iface: u32, hi: u32, lo: u32) -> Option<u64> {
        let p = *self.ts.get(iface as usize)?;
        let ns = p.ns((u64::from(hi) << 32) | u64::from(lo));
        if ns.is_none() {
            self.stats.bad_timestamps += 1;
        }
        Some(ns.unwrap_or(0))
    }

    fn enhanced<'a>(&mut self, big: bool, body: &'a [u8]) -> Option<Item<'a>> {
        let (Some(iface), Some(hi), Some(lo), Some(cap), Some(orig)) = (
            rd32(big, body, 0),
            rd32(big, body, 4),
            rd32(big, body, 8),
            rd32(big, body, 12),
            rd32(big, body, 16),
        ) else {
            self.stats.bad_blocks += 1;
            return None;
        };
        let Some(data) = body.get(20..20 + cap as usize) else {
            self.stats.bad_blocks += 1;
            return None;
        };
        let Some(ts_ns) = self.time(iface, hi, lo) else {
            self.stats.undescribed_packets += 1;
            return None;
        };
        Some(Item::Packet(Packet {
            iface,
            ts_ns,
            data,
            orig_len: orig,
        }))
    }

    fn simple<'a>(&mut self, big: bool, body: &'a [u8]) -> Option<Item<'a>> {
        let Some(orig) = rd32(big, body, 0) else {
            self.stats.bad_blocks += 1;
            return None;
        };
        let Some(info) = self.interfaces.first() else {
            self.stats.undescribed_packets += 1;
            return None;
        };
        let mut cap = (body.len() - 4).min(orig as usize);
        if info.snaplen > 0 {
            cap = cap.min(info.snaplen as usize);
        }
        Some(Item::Packet(Packet {
            iface: 0,
            ts_ns: 0,
            data: &body[4..4 + cap],
            orig_len: orig,
        }))
    }

    fn obsolete<'a>(&mut self, big: bool, body: &'a [u8]) -> Option<Item<'a>> {
        let (Some(iface), Some(hi), Some(lo), Some(cap), Some(orig)) = (
            rd16(big, body, 0),
            rd32(big, body, 4),
            rd32(big, body, 8),
            rd32(big, body, 12),
            rd32(big, body, 16),
        ) else {
            self.stats.bad_blocks += 1;
            return None;
        };
        let Some(data) = body.get(20..20 + cap as usize) else {
            self.stats.bad_blocks += 1;
            return None;
        };
        let Some(ts_ns) = self.time(u32::from(iface), hi, lo) else {
            self.stats.undescribed_packets += 1;
            return None;
        };
        Some(Item::Packet(Packet {
            iface: u32::from(iface),
            ts_ns,
            data,
            orig_len: orig,
        }))
    }

    fn statistics<'a>(&mut self, big: bool, body: &[u8]) -> Option<Item<'a>> {
        let (Some(iface), Some(hi), Some(lo)) =
            (rd32(big, body, 0), rd32(big, body, 4), rd32(big, body, 8))
        else {
            self.stats.bad_blocks += 1;
            return None;
        };
        let mut it = IfaceStatsItem {
            iface,
            ts_ns: self.time(iface, hi, lo).unwrap_or(0),
            ..Default::default()
        };
        for (code, v) in options(big, body, 12) {
            let Some(n) = rd64(big, v, 0) else { continue };
            match code {
                4 => it.received = Some(n),
                5 | 7 => it.dropped = Some(it.dropped.unwrap_or(0).saturating_add(n)),
                8 => it.delivered = Some(n),
                _ => {}
            }
        }
        Some(Item::InterfaceStats(it))
    }

    fn custom<'a>(&mut self, big: bool, body: &'a [u8]) -> Option<Item<'a>> {
        let Some(pen) = rd32(big, body, 0) else {
            self.stats.bad_blocks += 1;
            return None;
        };
        let payload = &body[4..];
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

/// Interfaces given an assumed description at most (a corrupt interface id must not make the
/// reader describe four billion interfaces).
const MAX_ASSUMED: usize = 4096;

/// What [`read_archive`] found besides the items.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ArchiveReport {
    /// Complete frames decoded.
    pub frames: u64,
    /// Frames that could not be decompressed (skipped).
    pub corrupt_frames: u64,
    /// Frames whose blocks stopped making sense part-way (the rest of the frame skipped).
    pub broken_frames: u64,
    /// Bytes after the last complete frame: the file was cut short.
    pub trailing: Option<crate::frame::Trailing>,
    /// An incomplete block at the end of a frame's content (should not happen in Juno files).
    pub partial_block_bytes: u64,
    /// Block counters.
    pub stats: ReadStats,
}

/// The description juno-record gives every interface (docs/archive-format.md, section 3):
/// assumed for packets whose interface's description was lost with a damaged frame.
pub fn juno_interface() -> (InterfaceInfo, u8) {
    (
        InterfaceInfo {
            linktype: 1,
            snaplen: 0,
            name: None,
            description: Some("(description lost)".into()),
        },
        9,
    )
}

/// Reads a whole Juno archive held in memory, frame by frame, calling `f` for every item.
///
/// A file cut short is read up to its last complete frame and reported in
/// [`ArchiveReport::trailing`]; a frame that fails to decompress is skipped and counted, and
/// reading resumes at the next frame (blocks never span frames) — even when the lost frame
/// held the Section Header or interface descriptions (see [`juno_interface`]). Broken block
/// framing inside a frame skips the rest of that frame. Only a first frame that is not
/// pcapng is an error.
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
    let (info, resol) = juno_interface();
    stream.assume_interfaces(info, resol);
    let mut lost = false;
    for e in &scan.frames {
        let content = match crate::frame::decompress_entry(buf, e, crate::frame::MAX_FRAME_SIZE) {
            Ok(c) => c,
            Err(_) => {
                rep.corrupt_frames += 1;
                lost = true;
                continue;
            }
        };
        rep.frames += 1;
        if lost {
            stream.resync();
            lost = false;
        }
        let mut rest: &[u8] = &content;
        loop {
            match stream.next_item(&mut rest) {
                Ok(Some(item)) => f(&item, &stream),
                Ok(None) => break,
                Err(e @ ReadError::NotPcapNg(_)) if rep.frames == 1 => return Err(e),
                Err(_) => {
                    rep.broken_frames += 1;
                    lost = true;
                    rest = &[];
                    break;
                }
            }
        }
        rep.partial_block_bytes += rest.len() as u64;
    }
    rep.stats = *stream.stats();
    Ok(rep)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn blk(ty: u32, body: &[u8]) -> Vec<u8> {
        let len = (12 + body.len().div_ceil(4) * 4) as u32;
        let mut v = ty.to_le_bytes().to_vec();
        v.extend(len.to_le_bytes());
        v.extend(body);
        v.resize(len as usize - 4, 0);
        v.extend(len.to_le_bytes());
        v
    }

    fn shb() -> Vec<u8> {
        let mut b = 0x1A2B_3C4Du32.to_le_bytes().to_vec();
        b.extend(1u16.to_le_bytes());
        b.extend(0u16.to_le_bytes());
        b.extend((-1i64).to_le_bytes());
        blk(block::SHB, &b)
    }

    fn opt(code: u16, v: &[u8]) -> Vec<u8> {
        let mut o = code.to_le_bytes().to_vec();
        o.extend((v.len() as u16).to_le_bytes());
        o.extend(v);
        o.resize(4 + v.len().div_ceil(4) * 4, 0);
        o
    }

    fn idb(opts: &[Vec<u8>]) -> Vec<u8> {
        let mut b = 1u16.to_le_bytes().to_vec();
        b.extend(0u16.to_le_bytes());
        b.extend(0u32.to_le_bytes());
        for o in opts {
            b.extend(o);
        }
        if !opts.is_empty() {
            b.extend([0u8; 4]);
        }
        blk(block::IDB, &b)
    }

    fn epb(iface: u32, ts: u64, data: &[u8]) -> Vec<u8> {
        let mut b = iface.to_le_bytes().to_vec();
        b.extend(((ts >> 32) as u32).to_le_bytes());
        b.extend((ts as u32).to_le_bytes());
        b.extend((data.len() as u32).to_le_bytes());
        b.extend((data.len() as u32).to_le_bytes());
        b.extend(data);
        blk(block::EPB, &b)
    }

    fn items<'a>(bytes: &'a [u8], s: &mut PcapNgStream) -> (Vec<Item<'a>>, Option<String>) {
        let mut rest = bytes;
        let mut out = Vec::new();
        loop {
            match s.next_item(&mut rest) {
                Ok(Some(i)) => out.push(i),
                Ok(None) => return (out, None),
                Err(e) => return (out, Some(e.to_string())),
            }
        }
    }

    fn packet_ts(i: &Item<'_>) -> Option<u64> {
        match i {
            Item::Packet(p) => Some(p.ts_ns),
            _ => None,
        }
    }

    #[test]
    fn every_tsresol_is_read() {
        // (if_tsresol, raw timestamp, ns)
        let cases: &[(u8, u64, u64)] = &[
            (6, 1_500_000_000_123_456, 1_500_000_000_123_456_000),
            (9, 1_500_000_000_123_456_789, 1_500_000_000_123_456_789),
            (0, 3, 3_000_000_000),
            (12, 5_000_000, 5_000),
            (0x7f, u64::MAX, 0),
            (0x80 | 10, 1024 * 3, 3_000_000_000),
            (0x80 | 30, 1 << 30, 1_000_000_000),
            (0xbf, 1 << 63, 1_000_000_000),
            (0xff, u64::MAX, 0),
        ];
        for &(resol, raw, want) in cases {
            let mut f = shb();
            f.extend(idb(&[opt(9, &[resol])]));
            f.extend(epb(0, raw, b"x"));
            let mut s = PcapNgStream::new();
            let (it, err) = items(&f, &mut s);
            assert_eq!(err, None, "{resol:#x}");
            assert_eq!(it.len(), 3, "{resol:#x}");
            assert_eq!(packet_ts(&it[2]), Some(want), "{resol:#x}");
            assert_eq!(s.stats().bad_timestamps, 0);
        }
    }

    #[test]
    fn tsoffset_before_1970_reads_the_packet_with_an_unknown_time() {
        let mut f = shb();
        f.extend(idb(&[opt(14, &(-86_400i64 * 365).to_le_bytes())]));
        f.extend(epb(0, 1_000_000, b"early"));
        f.extend(epb(0, 86_400u64 * 366 * 1_000_000, b"later"));
        let mut s = PcapNgStream::new();
        let (it, err) = items(&f, &mut s);
        assert_eq!(err, None);
        let ts: Vec<_> = it.iter().filter_map(packet_ts).collect();
        assert_eq!(ts, vec![0, 86_400 * 1_000_000_000]);
        assert_eq!(s.stats().bad_timestamps, 1);
    }

    #[test]
    fn a_packet_without_its_interface_is_counted_not_an_error() {
        let mut f = shb();
        f.extend(epb(0, 1, b"orphan"));
        f.extend(idb(&[]));
        f.extend(epb(0, 2, b"fine"));
        f.extend(epb(3, 3, b"other orphan"));
        let mut s = PcapNgStream::new();
        let (it, err) = items(&f, &mut s);
        assert_eq!(err, None);
        assert_eq!(it.iter().filter_map(packet_ts).count(), 1);
        assert_eq!(s.stats().undescribed_packets, 2);
        assert!(s.stats().damaged());
    }

    #[test]
    fn assumed_interfaces_are_announced_before_their_packets() {
        let mut f = shb();
        f.extend(epb(1, 7, b"p"));
        let mut s = PcapNgStream::new();
        let (info, resol) = juno_interface();
        s.assume_interfaces(info, resol);
        let (it, err) = items(&f, &mut s);
        assert_eq!(err, None);
        assert_eq!(it[1..3], [Item::Interface(0), Item::Interface(1)]);
        assert_eq!(packet_ts(&it[3]), Some(7));
        assert_eq!(s.stats().assumed_interfaces, 2);
        assert_eq!(s.interfaces()[1].linktype, 1);
    }

    #[test]
    fn resync_without_a_section_header_guesses_the_byte_order() {
        let mut f = idb(&[opt(9, &[9])]);
        f.extend(epb(0, 5, b"p"));
        let mut s = PcapNgStream::new();
        let (_, err) = items(&f, &mut s);
        assert!(err.unwrap().contains("not a pcapng stream"));
        let mut s = PcapNgStream::new();
        s.resync();
        let (it, err) = items(&f, &mut s);
        assert_eq!(err, None);
        assert_eq!(packet_ts(&it[1]), Some(5));
        assert_eq!(s.stats().resyncs, 1);
    }

    #[test]
    fn a_malformed_interface_keeps_its_id() {
        let mut f = shb();
        f.extend(blk(block::IDB, &[1, 0]));
        f.extend(idb(&[opt(2, b"eth1")]));
        f.extend(epb(1, 1, b"p"));
        let mut s = PcapNgStream::new();
        let (it, err) = items(&f, &mut s);
        assert_eq!(err, None);
        assert_eq!(s.interfaces()[0].linktype, UNDECODABLE_LINKTYPE);
        assert_eq!(s.interfaces()[1].name.as_deref(), Some("eth1"));
        assert!(matches!(it[3], Item::Packet(Packet { iface: 1, .. })));
        assert_eq!(s.stats().bad_blocks, 1);
    }

    #[test]
    fn isb_drop_counters_saturate() {
        let mut body = 0u32.to_le_bytes().to_vec();
        body.extend([0u8; 8]);
        body.extend(opt(5, &u64::MAX.to_le_bytes()));
        body.extend(opt(7, &5u64.to_le_bytes()));
        body.extend([0u8; 4]);
        let mut f = shb();
        f.extend(idb(&[]));
        f.extend(blk(block::ISB, &body));
        let mut s = PcapNgStream::new();
        let (it, _) = items(&f, &mut s);
        let Item::InterfaceStats(st) = &it[2] else {
            panic!("{it:?}")
        };
        assert_eq!(st.dropped, Some(u64::MAX));
    }

    #[test]
    fn broken_framing_is_an_error_that_says_where() {
        let mut f = shb();
        let mut bad = epb(0, 1, b"abcd");
        let n = bad.len();
        bad[n - 4] ^= 1;
        f.extend(idb(&[]));
        f.extend(bad);
        let mut s = PcapNgStream::new();
        let (_, err) = items(&f, &mut s);
        let err = err.unwrap();
        assert!(err.contains("block of type 0x6"), "{err}");
    }
}
