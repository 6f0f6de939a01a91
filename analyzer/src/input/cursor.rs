//! One input file: its format, its chunk source, and the container parser (pcap or pcapng)
//! that turns chunks into items.

use std::fs::File;
use std::io::{BufReader, Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use bytes::Bytes;
use juno_archive::reader::{IfaceStatsItem, InterfaceInfo, Item, PcapNgStream, ReadStats};
use juno_archive::record::{FileInfo, MetaRecord, Record, SocketEvent, StatsRecord};

use super::source::{ChunkSource, CountingReader, JunoSource, MAX_RECORD, Progress, StreamSource};
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
    /// A Juno archive encrypted with age (decrypted with `--identity`).
    AgeJunoFrames,
}

/// The container inside.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ContainerKind {
    /// Legacy pcap.
    Pcap,
    /// pcapng.
    PcapNg,
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
        };
        match self.compression {
            Compression::None => write!(f, "{c}"),
            Compression::Gzip => write!(f, "{c}+gzip"),
            Compression::Zstd => write!(f, "{c}+zstd"),
            Compression::JunoFrames => write!(f, "juno archive ({c} in zstd frames)"),
            Compression::AgeJunoFrames => {
                write!(f, "juno archive ({c} in zstd frames, age-encrypted)")
            }
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

enum Container {
    Pcap(Option<PcapHeader>),
    PcapNg(PcapNgStream),
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
    /// Opens a file and detects its format from its first bytes.
    pub(crate) fn open(
        path: &Path,
        progress: Progress,
        ids: &super::decrypt::Identities,
    ) -> Result<Self> {
        let cannot = || format!("cannot read {}", path.display());
        let mut file = File::open(path).with_context(cannot)?;
        let mut head = [0u8; 64];
        let mut n = 0;
        while n < head.len() {
            match file.read(&mut head[n..]).with_context(cannot)? {
                0 => break,
                k => n += k,
            }
        }
        if n < 4 {
            bail!("{}: too short to be a capture ({n} bytes)", path.display());
        }
        let head = &head[..n];
        file.seek(SeekFrom::Start(0)).with_context(cannot)?;
        // Reads the first chunk of a source to see what it holds, then hands it on.
        let probe = |mut src: Box<dyn ChunkSource>| -> Result<(Box<dyn ChunkSource>, Vec<u8>)> {
            let first = src
                .next_chunk(&[])
                .with_context(cannot)?
                .unwrap_or_default();
            let magic = first[..first.len().min(8)].to_vec();
            Ok((
                Box::new(Prepend {
                    first: Some(first),
                    inner: src,
                }),
                magic,
            ))
        };
        let counted = CountingReader::new(file, progress.clone());
        let (compression, (src, inner_magic)) = if head.starts_with(super::decrypt::AGE_MAGIC) {
            let (plain, below) = super::decrypt::open(counted, ids, path)?;
            (
                Compression::AgeJunoFrames,
                probe(Box::new(JunoSource::from_reader(plain, Some(below))))?,
            )
        } else if juno_archive::frame::is_juno_archive(head) {
            let file = counted.into_inner();
            (
                Compression::JunoFrames,
                probe(Box::new(JunoSource::new(file, progress)))?,
            )
        } else if head.starts_with(&[0x1f, 0x8b]) {
            let dec = flate2::read::MultiGzDecoder::new(BufReader::with_capacity(1 << 20, counted));
            (
                Compression::Gzip,
                probe(Box::new(StreamSource::new(Box::new(dec), "gzip")))?,
            )
        } else if le_u32(head, 0) == Some(juno_archive::frame::ZSTD_MAGIC)
            || le_u32(head, 0).unwrap_or(0) & juno_archive::frame::SKIPPABLE_MASK
                == juno_archive::frame::SKIPPABLE_BASE
        {
            let dec = zstd::stream::read::Decoder::new(counted)
                .with_context(|| format!("{}: zstd", path.display()))?;
            (
                Compression::Zstd,
                probe(Box::new(StreamSource::new(Box::new(dec), "zstd")))?,
            )
        } else {
            let src: Box<dyn ChunkSource> = Box::new(StreamSource::new(Box::new(counted), "file"));
            (Compression::None, (src, head[..head.len().min(8)].to_vec()))
        };
        let Some(container) = container_of(&inner_magic) else {
            let what = describe_magic(&inner_magic);
            if compression == Compression::None {
                bail!(
                    "{}: {what}: not a pcap, pcapng or Juno archive",
                    path.display()
                );
            }
            bail!(
                "{}: decompressed data is not pcap or pcapng: {what}",
                path.display()
            );
        };
        Ok(FileCursor {
            path: path.to_path_buf(),
            format: Format {
                compression,
                container,
            },
            src,
            container: match container {
                ContainerKind::Pcap => Container::Pcap(None),
                ContainerKind::PcapNg => Container::PcapNg(PcapNgStream::new()),
            },
            chunk: Bytes::new(),
            pos: 0,
            chunk_gen: 0,
            last_ts: 0,
            warnings: Vec::new(),
            eof: false,
            stats: FileStats::default(),
        })
    }

    fn fetch(&mut self) -> Result<bool> {
        let carry = &self.chunk[self.pos..];
        let next = self.src.next_chunk(carry)?;
        self.warnings.extend(self.src.take_warnings());
        match next {
            Some(c) => {
                self.chunk = c;
                self.pos = 0;
                self.chunk_gen += 1;
                Ok(true)
            }
            None => {
                let left = self.chunk.len() - self.pos;
                if left > 0 {
                    self.warnings.push(format!(
                        "file ends inside a record: last {left} bytes ignored (file cut short?)"
                    ));
                }
                self.eof = true;
                Ok(false)
            }
        }
    }

    fn stop(&mut self, why: String) {
        self.warnings
            .push(format!("{why}; the rest of the file is ignored"));
        self.eof = true;
    }

    /// The next item, or `None` at the end of the file.
    pub(crate) fn next(&mut self) -> Result<Option<CItem>> {
        loop {
            if self.eof {
                return Ok(None);
            }
            let parsed = match &mut self.container {
                Container::Pcap(h) => parse_pcap(h, &self.chunk, &mut self.pos),
                Container::PcapNg(s) => parse_pcapng(s, &self.chunk, &mut self.pos),
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
                    return Ok(Some(item));
                }
                Ok(None) => {
                    if !self.fetch()? {
                        self.finish_stats();
                        return Ok(None);
                    }
                }
                Err(why) => {
                    self.stop(why);
                    self.finish_stats();
                    return Ok(None);
                }
            }
        }
    }

    fn finish_stats(&mut self) {
        if let Container::PcapNg(s) = &self.container {
            self.stats.blocks = *s.stats();
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
            Some(f) => Ok(Some(f)),
            None => self.inner.next_chunk(carry),
        }
    }
    fn take_warnings(&mut self) -> Vec<String> {
        self.inner.take_warnings()
    }
}

fn parse_pcap(
    h: &mut Option<PcapHeader>,
    chunk: &Bytes,
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
            "pcap record claims {incl} bytes (corrupt record header)"
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
        Ok(None) => return Ok(None),
        Err(e) => return Err(e.to_string()),
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
