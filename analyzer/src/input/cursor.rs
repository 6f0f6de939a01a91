//! One input file: its format, its chunk source, and the container parser (pcap or pcapng)
//! that turns chunks into items.

use std::io::Read;
use std::path::{Path, PathBuf};

use anyhow::{Result, bail};
use bytes::Bytes;
use juno_archive::reader::{
    IfaceStatsItem, InterfaceInfo, Item, PcapNgStream, ReadError, ReadStats,
};
use juno_archive::record::{FileInfo, MetaRecord, Record, SocketEvent, StatsRecord};

use super::source::{
    ChunkSource, CountingReader, JunoSource, MAX_RECORD, Progress, StreamSource, Window,
};
use crate::read::{be_u32, le_u32};

/// How a file is compressed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Compression {
    /// Not compressed.
    None,
    /// gzip.
    Gzip,
    /// A zstd stream (e.g. `zstd capture.pcap`).
    Zstd,
    /// A Juno archive: indexed, independent zstd frames.
    JunoFrames,
}

/// The container inside.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ContainerKind {
    /// Legacy pcap.
    Pcap,
    /// pcapng.
    PcapNg,
    /// Nothing: a compressed stream that ended before any capture data.
    Empty,
}

/// What a file turned out to be.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Format {
    /// Compression.
    pub compression: Compression,
    /// Container.
    pub container: ContainerKind,
}

impl std::fmt::Display for Format {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let c = match self.container {
            ContainerKind::Pcap => "pcap",
            ContainerKind::PcapNg => "pcapng",
            ContainerKind::Empty => "no capture data",
        };
        match self.compression {
            Compression::None => write!(f, "{c}"),
            Compression::Gzip => write!(f, "{c}+gzip"),
            Compression::Zstd => write!(f, "{c}+zstd"),
            Compression::JunoFrames => write!(f, "juno archive ({c} in zstd frames)"),
        }
    }
}

fn container_of(magic: &[u8]) -> Option<ContainerKind> {
    match be_u32(magic, 0)? {
        0x0A0D_0D0A => Some(ContainerKind::PcapNg),
        0xA1B2_C3D4 | 0xD4C3_B2A1 | 0xA1B2_3C4D | 0x4D3C_B2A1 => Some(ContainerKind::Pcap),
        _ => None,
    }
}

fn describe_magic(b: &[u8]) -> String {
    let hex: Vec<String> = b.iter().take(8).map(|x| format!("{x:02x}")).collect();
    if be_u32(b, 0) == Some(0xA1B2_CD34) || le_u32(b, 0) == Some(0xA1B2_CD34) {
        return "a Kuznetzov-patched pcap (a1b2cd34), which is not supported".into();
    }
    format!("unrecognized format (first bytes: {})", hex.join(" "))
}

/// Items a cursor yields. Packet and payload bytes are given as offsets into the cursor's
/// current chunk ([`FileCursor::chunk`]).
#[derive(Debug)]
pub(crate) enum CItem {
    Section,
    Interface(u32, InterfaceInfo),
    Packet {
        ts: u64,
        iface: u32,
        off: usize,
        len: u32,
        orig_len: u32,
    },
    IfaceStats(IfaceStatsItem),
    FileInfo(FileInfo),
    Socket {
        ev: SocketEvent<'static>,
        off: usize,
        len: u32,
    },
    Meta(MetaRecord),
    Stats(StatsRecord),
}

impl CItem {
    /// The item's time, if it has one.
    pub(crate) fn ts(&self) -> Option<u64> {
        match self {
            CItem::Packet { ts, .. } if *ts != 0 => Some(*ts),
            CItem::Socket { ev, .. } if ev.ts_ns != 0 => Some(ev.ts_ns),
            _ => None,
        }
    }
}

enum Container {
    Pcap(Option<PcapHeader>),
    PcapNg(Box<PcapNgStream>),
    Empty,
}

#[derive(Clone, Copy, Debug)]
struct PcapHeader {
    little: bool,
    nanos: bool,
}

/// Counters of one file.
#[derive(Clone, Copy, Debug, Default)]
pub struct FileStats {
    /// Packets read.
    pub packets: u64,
    /// Captured bytes of those packets.
    pub bytes: u64,
    /// pcapng block counters.
    pub blocks: ReadStats,
}

/// How a file is read: chunk size, Juno window.
#[derive(Clone, Copy, Debug)]
pub(crate) struct ReadOpts {
    pub(crate) chunk: usize,
    pub(crate) window: Window,
}

/// Reading position in one file.
pub(crate) struct FileCursor {
    pub(crate) path: PathBuf,
    pub(crate) format: Format,
    src: Box<dyn ChunkSource>,
    container: Container,
    pub(crate) chunk: Bytes,
    pos: usize,
    /// Incremented each time `chunk` is replaced.
    pub(crate) chunk_gen: u64,
    pub(crate) last_ts: u64,
    pub(crate) warnings: Vec<String>,
    eof: bool,
    pub(crate) stats: FileStats,
}

impl FileCursor {
    /// Reads a file's first bytes from `reader` and detects its format. `name` is how
    /// warnings and errors name it.
    pub(crate) fn open(
        name: &Path,
        mut reader: Box<dyn Read + Send>,
        progress: Progress,
        opts: ReadOpts,
    ) -> Result<Self> {
        let shown = name.display();
        let mut head = [0u8; 64];
        let mut n = 0;
        while n < head.len() {
            match reader.read(&mut head[n..]) {
                Ok(0) => break,
                Ok(k) => n += k,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => bail!("cannot read {shown}: {e}"),
            }
        }
        if n < 4 {
            bail!("{shown}: too short to be a capture ({n} bytes)");
        }
        let head = &head[..n];
        // The head goes back in front of the rest: no seek, so pipes and standard input work.
        let whole: Box<dyn Read + Send> =
            Box::new(std::io::Cursor::new(head.to_vec()).chain(reader));
        // Reads the first chunk of a source to see what it holds, then hands it on.
        let probe = |mut src: Box<dyn ChunkSource>| -> Result<(Box<dyn ChunkSource>, Bytes)> {
            let first = src.next_chunk(&[])?.unwrap_or_default();
            Ok((
                Box::new(Prepend {
                    first: Some(first.clone()),
                    inner: src,
                }),
                first,
            ))
        };
        let counted = CountingReader::new(whole, progress.clone());
        let stream = |r: Box<dyn Read + Send>, what| StreamSource::new(r, what, opts.chunk);
        let (compression, (mut src, first)) = if juno_archive::frame::is_juno_archive(head) {
            (
                Compression::JunoFrames,
                probe(Box::new(JunoSource::new(
                    Box::new(counted),
                    progress,
                    opts.window,
                )))?,
            )
        } else if head.starts_with(&[0x1f, 0x8b]) {
            let dec = flate2::read::MultiGzDecoder::new(std::io::BufReader::with_capacity(
                1 << 20,
                counted,
            ));
            (
                Compression::Gzip,
                probe(Box::new(stream(Box::new(dec), "gzip")))?,
            )
        } else if le_u32(head, 0) == Some(juno_archive::frame::ZSTD_MAGIC)
            || le_u32(head, 0).unwrap_or(0) & juno_archive::frame::SKIPPABLE_MASK
                == juno_archive::frame::SKIPPABLE_BASE
        {
            let dec = zstd::stream::read::Decoder::new(counted)
                .map_err(|e| anyhow::anyhow!("{shown}: zstd: {e}"))?;
            (
                Compression::Zstd,
                probe(Box::new(stream(Box::new(dec), "zstd")))?,
            )
        } else {
            let src: Box<dyn ChunkSource> = Box::new(stream(Box::new(counted), "file"));
            (Compression::None, (src, Bytes::copy_from_slice(head)))
        };
        let mut warnings = Vec::new();
        let container = if compression == Compression::JunoFrames {
            // Frames hold whole pcapng blocks; a lost first frame takes the Section Header
            // with it, and reading resumes in the next frame (see `fetch`).
            ContainerKind::PcapNg
        } else if let Some(c) = container_of(&first) {
            c
        } else if compression != Compression::None && first.len() < 4 {
            // A compressed stream that ends (or breaks) before any capture data: a file cut
            // short, not a file of another kind.
            let why = src.take_warnings();
            warnings.push(if why.is_empty() {
                format!("the {compression:?} stream holds no data").to_lowercase()
            } else {
                format!("{}, before any capture data", why.join("; "))
            });
            ContainerKind::Empty
        } else {
            let what = describe_magic(&first);
            if compression == Compression::None {
                bail!("{shown}: {what}: not a pcap, pcapng or Juno archive");
            }
            bail!("{shown}: decompressed data is not pcap or pcapng: {what}");
        };
        Ok(FileCursor {
            path: name.to_path_buf(),
            format: Format {
                compression,
                container,
            },
            src,
            container: match container {
                ContainerKind::Pcap => Container::Pcap(None),
                ContainerKind::PcapNg => {
                    let mut s = PcapNgStream::new();
                    if compression == Compression::JunoFrames {
                        let (info, resol) = juno_archive::reader::juno_interface();
                        s.assume_interfaces(info, resol);
                    }
                    Container::PcapNg(Box::new(s))
                }
                ContainerKind::Empty => Container::Empty,
            },
            chunk: Bytes::new(),
            pos: 0,
            chunk_gen: 0,
            last_ts: 0,
            eof: container == ContainerKind::Empty,
            warnings,
            stats: FileStats::default(),
        })
    }

    fn fetch(&mut self) -> bool {
        let carry = &self.chunk[self.pos..];
        let carried = carry.len();
        let next = self.src.next_chunk(carry);
        self.warnings.extend(self.src.take_warnings());
        let next = match next {
            Ok(n) => n,
            Err(e) => {
                self.warnings.push(format!(
                    "read error at {}: {e}; the rest of the file is ignored",
                    self.src.position()
                ));
                None
            }
        };
        match next {
            Some(c) => {
                if self.src.take_lost()
                    && let Container::PcapNg(s) = &mut self.container
                {
                    s.resync();
                }
                self.chunk = c;
                self.pos = 0;
                self.chunk_gen += 1;
                true
            }
            None => {
                if carried > 0 {
                    self.warnings.push(format!(
                        "file ends inside a record: last {carried} bytes ignored (file cut short?)"
                    ));
                }
                self.eof = true;
                false
            }
        }
    }

    /// The next item, or `None` at the end of the file.
    pub(crate) fn next(&mut self) -> Option<CItem> {
        loop {
            if self.eof {
                return None;
            }
            let parsed = match &mut self.container {
                Container::Pcap(h) => parse_pcap(h, &self.chunk, &mut self.pos),
                Container::PcapNg(s) => parse_pcapng(s, &self.chunk, &mut self.pos),
                Container::Empty => Ok(None),
            };
            match parsed {
                Ok(Some(item)) => {
                    match &item {
                        CItem::Packet { ts, len, .. } => {
                            self.stats.packets += 1;
                            self.stats.bytes += u64::from(*len);
                            if *ts != 0 {
                                self.last_ts = *ts;
                            }
                        }
                        CItem::Socket { ev, .. } => self.last_ts = self.last_ts.max(ev.ts_ns),
                        _ => {}
                    }
                    return Some(item);
                }
                Ok(None) => {
                    if !self.fetch() {
                        self.finish_stats();
                        return None;
                    }
                }
                Err(why) if self.src.resumable() => {
                    // Juno frames hold whole blocks: skip the rest of this one.
                    let skipped = self.chunk.len() - self.pos;
                    self.warnings.push(format!(
                        "{why} in {}: the remaining {skipped} bytes of its content skipped; reading resumes at the next frame",
                        self.src.position()
                    ));
                    self.pos = self.chunk.len();
                    if let Container::PcapNg(s) = &mut self.container {
                        s.resync();
                    }
                }
                Err(why) => {
                    self.warnings.push(format!(
                        "{why} at {}; the rest of the file is ignored",
                        self.src.position()
                    ));
                    self.eof = true;
                    self.finish_stats();
                    return None;
                }
            }
        }
    }

    fn finish_stats(&mut self) {
        if let Container::PcapNg(s) = &self.container {
            self.stats.blocks = *s.stats();
            let b = &self.stats.blocks;
            let mut lost = Vec::new();
            if b.bad_blocks > 0 {
                lost.push(format!("{} undecodable blocks", b.bad_blocks));
            }
            if b.bad_records > 0 {
                lost.push(format!("{} undecodable Juno records", b.bad_records));
            }
            if b.undescribed_packets > 0 {
                lost.push(format!(
                    "{} packets of interfaces no Interface Description Block described",
                    b.undescribed_packets
                ));
            }
            if b.bad_timestamps > 0 {
                lost.push(format!(
                    "{} packets whose time is not after 1970 (if_tsoffset) or overflows: read with an unknown time",
                    b.bad_timestamps
                ));
            }
            if !lost.is_empty() {
                self.warnings.push(format!("skipped: {}", lost.join(", ")));
            }
            if b.assumed_interfaces > 0 {
                self.warnings.push(format!(
                    "{} interfaces had lost their description (with a damaged frame): read as juno-record describes every interface (Ethernet, ns timestamps)",
                    b.assumed_interfaces
                ));
            }
        }
    }
}

/// Hands out a chunk read during format detection before reading on.
struct Prepend {
    first: Option<Bytes>,
    inner: Box<dyn ChunkSource>,
}

impl ChunkSource for Prepend {
    fn next_chunk(&mut self, carry: &[u8]) -> std::io::Result<Option<Bytes>> {
        match self.first.take() {
            Some(f) if !f.is_empty() => Ok(Some(f)),
            _ => self.inner.next_chunk(carry),
        }
    }
    fn take_warnings(&mut self) -> Vec<String> {
        self.inner.take_warnings()
    }
    fn take_lost(&mut self) -> bool {
        self.inner.take_lost()
    }
    fn resumable(&self) -> bool {
        self.inner.resumable()
    }
    fn position(&self) -> String {
        self.inner.position()
    }
}

/// Parses one legacy pcap item (the file header as an interface, or a record) at `*pos` of
/// `chunk`, advancing `*pos`. `Ok(None)`: more bytes are needed.
fn parse_pcap(
    h: &mut Option<PcapHeader>,
    chunk: &[u8],
    pos: &mut usize,
) -> Result<Option<CItem>, String> {
    let b = &chunk[*pos..];
    let Some(hdr) = *h else {
        if b.len() < 24 {
            return Ok(None);
        }
        let (little, nanos) = match be_u32(b, 0).unwrap_or(0) {
            0xA1B2_C3D4 => (false, false),
            0xA1B2_3C4D => (false, true),
            0xD4C3_B2A1 => (true, false),
            0x4D3C_B2A1 => (true, true),
            m => return Err(format!("bad pcap magic {m:#010x}")),
        };
        let rd = |o: usize| if little { le_u32(b, o) } else { be_u32(b, o) }.unwrap_or(0);
        let snaplen = rd(16);
        // The link type is the low 16 bits; the upper bits may carry FCS information.
        let linktype = rd(20) & 0xFFFF;
        *h = Some(PcapHeader { little, nanos });
        *pos += 24;
        return Ok(Some(CItem::Interface(
            0,
            InterfaceInfo {
                linktype,
                snaplen,
                name: None,
                description: None,
            },
        )));
    };
    if b.len() < 16 {
        return Ok(None);
    }
    let rd = |o: usize| {
        if hdr.little {
            le_u32(b, o)
        } else {
            be_u32(b, o)
        }
        .unwrap_or(0)
    };
    let (sec, frac, incl, orig) = (rd(0), rd(4), rd(8), rd(12));
    if incl as usize > MAX_RECORD {
        return Err(format!(
            "a pcap record claims {incl} bytes (corrupt record header)"
        ));
    }
    if b.len() < 16 + incl as usize {
        return Ok(None);
    }
    let frac_ns = if hdr.nanos {
        u64::from(frac)
    } else {
        u64::from(frac) * 1000
    };
    // At most 4.3e18 + 4.3e12: within a u64.
    let ts = u64::from(sec) * 1_000_000_000 + frac_ns;
    let off = *pos + 16;
    *pos += 16 + incl as usize;
    Ok(Some(CItem::Packet {
        ts,
        iface: 0,
        off,
        len: incl,
        orig_len: orig.max(incl),
    }))
}

fn parse_pcapng(
    s: &mut PcapNgStream,
    chunk: &Bytes,
    pos: &mut usize,
) -> Result<Option<CItem>, String> {
    let base = chunk.as_ptr() as usize;
    let mut rest: &[u8] = &chunk[*pos..];
    let item = match s.next_item(&mut rest) {
        Ok(Some(i)) => i,
        Ok(None) => {
            // Blocks it skipped are consumed too: only an incomplete block is carried.
            *pos = chunk.len() - rest.len();
            return Ok(None);
        }
        Err(e @ (ReadError::NotPcapNg(_) | ReadError::Framing(_))) => return Err(e.to_string()),
    };
    *pos = chunk.len() - rest.len();
    let offset_of = |sl: &[u8]| (sl.as_ptr() as usize) - base;
    Ok(Some(match item {
        Item::Section => CItem::Section,
        Item::Interface(i) => {
            let info = s.interfaces().get(i as usize).cloned().unwrap_or_default();
            CItem::Interface(i, info)
        }
        Item::Packet(p) => CItem::Packet {
            ts: p.ts_ns,
            iface: p.iface,
            off: offset_of(p.data),
            len: u32::try_from(p.data.len()).unwrap_or(u32::MAX),
            orig_len: p
                .orig_len
                .max(u32::try_from(p.data.len()).unwrap_or(u32::MAX)),
        },
        Item::InterfaceStats(st) => CItem::IfaceStats(st),
        Item::Record(Record::FileInfo(f)) => CItem::FileInfo(f),
        Item::Record(Record::Metadata(m)) => CItem::Meta(m),
        Item::Record(Record::Stats(st)) => CItem::Stats(st),
        Item::Record(Record::Socket(ev)) => {
            let off = offset_of(ev.payload);
            let len = u32::try_from(ev.payload.len()).unwrap_or(u32::MAX);
            CItem::Socket {
                ev: SocketEvent { payload: &[], ..ev },
                off,
                len,
            }
        }
    }))
}
