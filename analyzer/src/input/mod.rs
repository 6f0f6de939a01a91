//! Input: files and directories → format detection → decompression → pcap/pcapng parsing →
//! one time-ordered stream of [`Batch`]es.
//!
//! Formats are detected from magic bytes, never from file names: pcap (µs or ns, either byte
//! order), pcapng, each plain, gzip- or zstd-compressed, and Juno archives (pcapng in indexed
//! zstd frames, decompressed in parallel). Several files are merged by timestamp. Reading runs
//! on its own thread and hands batches to the pipeline through a bounded channel.

mod cursor;
mod source;

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::AtomicU64;

use anyhow::{Context, Result, bail};
use bytes::Bytes;
use juno_archive::reader::IfaceStatsItem;
use juno_archive::record::{FileInfo, MetaRecord, SocketEvent, StatsRecord};

use cursor::{CItem, FileCursor};
pub use cursor::{Compression, ContainerKind, FileStats, Format};

/// An interface, numbered across all input files.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Iface {
    /// Index of the file it belongs to.
    pub file: u32,
    /// Link type.
    pub linktype: u32,
    /// `if_name`, when the capture says.
    pub name: Option<String>,
    /// `if_description` (Juno writes the pod here).
    pub description: Option<String>,
    /// The node its file was recorded on (a Juno archive's file record), when the file says.
    pub node: Option<String>,
}

/// A packet, pointing into one of the batch's chunks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PacketItem {
    /// Timestamp, ns since the epoch.
    pub ts: u64,
    /// Global interface index.
    pub iface: u32,
    /// Chunk index in [`Batch::chunks`].
    pub chunk: u32,
    /// Offset of the link-layer frame in the chunk.
    pub off: usize,
    /// Captured length.
    pub len: u32,
    /// Length on the wire.
    pub orig_len: u32,
}

/// A socket event with its payload in one of the batch's chunks.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SocketItem {
    /// Index of the file.
    pub file: u32,
    /// The event (its `payload` field is empty: see `chunk`/`off`/`len`).
    pub ev: SocketEvent<'static>,
    /// Chunk index.
    pub chunk: u32,
    /// Payload offset.
    pub off: usize,
    /// Payload length.
    pub len: u32,
}

/// Something read from the input.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum BatchItem {
    /// A packet.
    Packet(PacketItem),
    /// A socket event (Juno archives).
    Socket(Box<SocketItem>),
    /// Interface statistics (drops).
    IfaceStats(u32, IfaceStatsItem),
    /// File information (Juno archives).
    FileInfo(u32, Box<FileInfo>),
    /// Metadata (Juno archives).
    Meta(u32, Box<MetaRecord>),
    /// Recorder counters (Juno archives).
    RecorderStats(u32, Box<StatsRecord>),
}

/// What is known about a file once it has been read.
#[derive(Clone, Debug)]
pub struct FileSummary {
    /// Path.
    pub path: PathBuf,
    /// Detected format.
    pub format: Format,
    /// Counters.
    pub stats: FileStats,
    /// Problems that did not stop reading.
    pub warnings: Vec<String>,
}

/// A run of input items in time order, with the buffers they point into.
#[derive(Debug, Default)]
pub struct Batch {
    /// Buffers (memory maps or decompressed chunks).
    pub chunks: Vec<Bytes>,
    /// Items.
    pub items: Vec<BatchItem>,
    /// Interfaces first seen in this batch, to append to the global table before the items.
    pub new_ifaces: Vec<Iface>,
    /// Files finished in this batch.
    pub files_done: Vec<FileSummary>,
    /// Captured bytes of the packets in this batch.
    pub packet_bytes: u64,
}

impl Batch {
    /// The captured bytes of a packet.
    pub fn packet_data(&self, p: &PacketItem) -> &[u8] {
        &self.chunks[p.chunk as usize][p.off..p.off + p.len as usize]
    }
    /// The payload bytes of a socket event.
    pub fn socket_payload(&self, s: &SocketItem) -> &[u8] {
        &self.chunks[s.chunk as usize][s.off..s.off + s.len as usize]
    }
}

/// Expands the command line: files as given, directories recursively (sorted by name,
/// skipping hidden files and in-progress `.partial` archives).
pub fn expand(paths: &[PathBuf]) -> Result<Vec<(PathBuf, bool)>> {
    let mut out = Vec::new();
    for p in paths {
        let md = std::fs::metadata(p).with_context(|| format!("cannot read {}", p.display()))?;
        if md.is_dir() {
            walk(p, &mut out)?;
        } else {
            out.push((p.clone(), true));
        }
    }
    if out.is_empty() {
        bail!("no input files found");
    }
    Ok(out)
}

fn walk(dir: &Path, out: &mut Vec<(PathBuf, bool)>) -> Result<()> {
    let mut entries: Vec<_> = std::fs::read_dir(dir)
        .with_context(|| format!("cannot list {}", dir.display()))?
        .filter_map(|e| e.ok())
        .collect();
    entries.sort_by_key(|e| e.file_name());
    for e in entries {
        let name = e.file_name();
        let name = name.to_string_lossy();
        if name.starts_with('.') || name.ends_with(".partial") {
            continue;
        }
        let path = e.path();
        if path.is_dir() {
            walk(&path, out)?;
        } else {
            out.push((path, false));
        }
    }
    Ok(())
}

/// The opened inputs, ready to be read.
pub struct Inputs {
    cursors: Vec<FileCursor>,
    /// Files skipped in directories because they are not captures.
    pub skipped: Vec<(PathBuf, String)>,
    /// Total size of the input files, for progress.
    pub total_bytes: u64,
    /// Input bytes consumed so far.
    pub progress: Arc<AtomicU64>,
}

impl std::fmt::Debug for Inputs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Inputs")
            .field("files", &self.cursors.len())
            .finish_non_exhaustive()
    }
}

impl Inputs {
    /// Opens every input. A file named on the command line that is not a capture is an error;
    /// one found in a directory is skipped with a note.
    pub fn open(paths: &[PathBuf]) -> Result<Self> {
        let progress = Arc::new(AtomicU64::new(0));
        let mut cursors = Vec::new();
        let mut skipped = Vec::new();
        let mut total = 0;
        for (path, explicit) in expand(paths)? {
            total += std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
            match FileCursor::open(&path, progress.clone()) {
                Ok(c) => cursors.push(c),
                Err(e) if !explicit => skipped.push((path, format!("{e:#}"))),
                Err(e) => return Err(e),
            }
        }
        if cursors.is_empty() {
            bail!("none of the inputs is a capture");
        }
        Ok(Inputs {
            cursors,
            skipped,
            total_bytes: total,
            progress,
        })
    }

    /// Number of files.
    pub fn len(&self) -> usize {
        self.cursors.len()
    }

    /// True if there are no files.
    pub fn is_empty(&self) -> bool {
        self.cursors.is_empty()
    }

    /// Reads everything, calling `sink` with batches of about `batch_packets` packets in time
    /// order. Stops early if `sink` returns false.
    pub fn read(self, batch_packets: usize, mut sink: impl FnMut(Batch) -> bool) -> Result<()> {
        let mut m = Merger::new(self.cursors, batch_packets.max(1));
        m.prime()?;
        while let Some(batch) = m.next_batch()? {
            if !sink(batch) {
                break;
            }
        }
        Ok(())
    }
}

struct FileState {
    cursor: FileCursor,
    head: Option<CItem>,
    /// Local interface id → global interface index, for the current section.
    ifaces: Vec<u32>,
    /// (chunk generation, index in the current batch).
    chunk_slot: Option<(u64, u32)>,
    done: bool,
    /// Node that wrote the file (Juno archives), part of its interfaces' identity.
    node: Option<String>,
    /// Position of the file by its first timestamp: breaks timestamp ties between files.
    rank: u32,
}

/// Interfaces of different files are one interface when node, name, description and link
/// type agree (rotated archives, a capture split into parts).
type IfaceKey = (Option<String>, Option<String>, Option<String>, u32);

struct Merger {
    files: Vec<FileState>,
    heap: BinaryHeap<Reverse<(u64, u32, u32)>>,
    batch: Batch,
    batch_packets: usize,
    next_iface: u32,
    iface_keys: std::collections::HashMap<IfaceKey, u32>,
}

/// Bytes referenced by a batch before it is handed on, whatever its packet count.
const BATCH_BYTES: u64 = 32 << 20;

impl Merger {
    fn new(cursors: Vec<FileCursor>, batch_packets: usize) -> Self {
        Merger {
            files: cursors
                .into_iter()
                .map(|cursor| FileState {
                    cursor,
                    head: None,
                    ifaces: Vec::new(),
                    chunk_slot: None,
                    done: false,
                    node: None,
                    rank: 0,
                })
                .collect(),
            heap: BinaryHeap::new(),
            batch: Batch::default(),
            batch_packets,
            next_iface: 0,
            iface_keys: std::collections::HashMap::new(),
        }
    }

    fn head_key(f: &FileState) -> u64 {
        match &f.head {
            Some(CItem::Packet { ts, .. }) if *ts != 0 => *ts,
            Some(CItem::Socket { ev, .. }) if ev.ts_ns != 0 => ev.ts_ns,
            _ => f.cursor.last_ts,
        }
    }

    fn advance(&mut self, i: usize) -> Result<()> {
        let f = &mut self.files[i];
        f.head = f
            .cursor
            .next()
            .with_context(|| format!("reading {}", f.cursor.path.display()))?;
        if f.head.is_some() {
            let key = Self::head_key(f);
            self.heap.push(Reverse((key, f.rank, i as u32)));
        } else if !f.done {
            f.done = true;
            self.batch.files_done.push(FileSummary {
                path: f.cursor.path.clone(),
                format: f.cursor.format,
                stats: f.cursor.stats,
                warnings: std::mem::take(&mut f.cursor.warnings),
            });
        }
        Ok(())
    }

    fn prime(&mut self) -> Result<()> {
        for i in 0..self.files.len() {
            self.advance(i)?;
        }
        // Rank files by where they start, so that equal timestamps across files keep the
        // files' own order whatever order they were named in.
        let mut order: Vec<(u64, usize)> = Vec::new();
        for Reverse((ts, _, i)) in self.heap.drain() {
            order.push((ts, i as usize));
        }
        order.sort_unstable();
        for (rank, (ts, i)) in order.into_iter().enumerate() {
            let rank = u32::try_from(rank).unwrap_or(u32::MAX);
            self.files[i].rank = rank;
            self.heap.push(Reverse((ts, rank, i as u32)));
        }
        Ok(())
    }

    fn chunk_index(&mut self, i: usize) -> u32 {
        let f = &mut self.files[i];
        let generation = f.cursor.chunk_gen;
        if let Some((g, idx)) = f.chunk_slot
            && g == generation
        {
            return idx;
        }
        let idx = u32::try_from(self.batch.chunks.len()).unwrap_or(u32::MAX);
        self.batch.chunks.push(f.cursor.chunk.clone());
        f.chunk_slot = Some((generation, idx));
        idx
    }

    fn take_batch(&mut self) -> Batch {
        for f in &mut self.files {
            f.chunk_slot = None;
        }
        std::mem::take(&mut self.batch)
    }

    fn next_batch(&mut self) -> Result<Option<Batch>> {
        let mut packets = 0usize;
        while let Some(Reverse((_, _, fi))) = self.heap.pop() {
            let i = fi as usize;
            let Some(item) = self.files[i].head.take() else {
                continue;
            };
            match item {
                CItem::Section => self.files[i].ifaces.clear(),
                CItem::Interface(local, info) => {
                    let key: IfaceKey = (
                        self.files[i].node.clone(),
                        info.name.clone(),
                        info.description.clone(),
                        info.linktype,
                    );
                    let g = match self.iface_keys.get(&key) {
                        Some(&g) => g,
                        None => {
                            let g = self.next_iface;
                            self.next_iface += 1;
                            self.iface_keys.insert(key, g);
                            self.batch.new_ifaces.push(Iface {
                                file: fi,
                                linktype: info.linktype,
                                name: info.name,
                                description: info.description,
                                node: self.files[i].node.clone(),
                            });
                            g
                        }
                    };
                    let f = &mut self.files[i];
                    let local = local as usize;
                    if f.ifaces.len() <= local {
                        f.ifaces.resize(local + 1, u32::MAX);
                    }
                    f.ifaces[local] = g;
                }
                CItem::Packet {
                    ts,
                    iface,
                    off,
                    len,
                    orig_len,
                } => {
                    let g = self.files[i]
                        .ifaces
                        .get(iface as usize)
                        .copied()
                        .unwrap_or(u32::MAX);
                    if g != u32::MAX {
                        let chunk = self.chunk_index(i);
                        self.batch.items.push(BatchItem::Packet(PacketItem {
                            ts,
                            iface: g,
                            chunk,
                            off,
                            len,
                            orig_len,
                        }));
                        self.batch.packet_bytes += u64::from(len);
                        packets += 1;
                    }
                }
                CItem::Socket { ev, off, len } => {
                    let chunk = self.chunk_index(i);
                    self.batch
                        .items
                        .push(BatchItem::Socket(Box::new(SocketItem {
                            file: fi,
                            ev,
                            chunk,
                            off,
                            len,
                        })));
                    self.batch.packet_bytes += u64::from(len);
                    packets += 1;
                }
                CItem::IfaceStats(s) => {
                    let g = self.files[i]
                        .ifaces
                        .get(s.iface as usize)
                        .copied()
                        .unwrap_or(u32::MAX);
                    if g != u32::MAX {
                        self.batch.items.push(BatchItem::IfaceStats(g, s));
                    }
                }
                CItem::FileInfo(f) => {
                    self.files[i].node = Some(f.node.clone());
                    self.batch.items.push(BatchItem::FileInfo(fi, Box::new(f)));
                }
                CItem::Meta(m) => self.batch.items.push(BatchItem::Meta(fi, Box::new(m))),
                CItem::Stats(s) => self
                    .batch
                    .items
                    .push(BatchItem::RecorderStats(fi, Box::new(s))),
            }
            self.advance(i)?;
            if packets >= self.batch_packets || self.batch.packet_bytes >= BATCH_BYTES {
                return Ok(Some(self.take_batch()));
            }
        }
        if self.batch.items.is_empty()
            && self.batch.new_ifaces.is_empty()
            && self.batch.files_done.is_empty()
        {
            return Ok(None);
        }
        Ok(Some(self.take_batch()))
    }
}
