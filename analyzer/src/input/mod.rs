//! Input: files, directories and standard input → format detection → decompression →
//! pcap/pcapng parsing → one time-ordered stream of [`Batch`]es.
//!
//! Formats are detected from magic bytes, never from file names: pcap (µs or ns, either byte
//! order), pcapng, each plain, gzip- or zstd-compressed, and Juno archives (pcapng in indexed
//! zstd frames, decompressed in parallel). Several files are merged by timestamp. Reading runs
//! on its own thread and hands batches to the pipeline through a bounded channel.
//!
//! Memory is bounded by [`InputOptions`], not by the number of files: every file is first
//! looked at (its format and first timestamp, through a small buffer, then closed), and files
//! are opened in time order only when the merge reaches their first timestamp, as many at once
//! as the memory share and the process's open-file limit allow. Files that overlap in time
//! with more files than may be open wait for one to finish; that is counted and reported.
//! Directories are walked without following a directory twice (symlink loops); FIFOs, sockets
//! and devices found in directories are skipped with a warning (named on the command line,
//! they are read as streams), and so are the hidden `.partial` files of a recorder still
//! writing (or killed), which are named with how to read them.

mod cursor;
mod decrypt;
mod source;

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashSet, VecDeque};
use std::io::Read;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::AtomicU64;

use anyhow::{Result, bail};
use bytes::Bytes;
use juno_archive::reader::IfaceStatsItem;
use juno_archive::record::{FileInfo, MetaRecord, SocketEvent, StatsRecord};

use cursor::{CItem, FileCursor, ReadOpts};
pub use cursor::{Compression, ContainerKind, FileStats, Format};
pub use decrypt::Identities;
use source::{CHUNK, PEEK_CHUNK, Window};

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
    /// Path (`-` for standard input).
    pub path: PathBuf,
    /// Detected format.
    pub format: Format,
    /// Counters.
    pub stats: FileStats,
    /// Problems that did not stop reading: each says what was lost and where.
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
    /// Files that could not be opened when their turn came (path, why).
    pub skipped: Vec<(PathBuf, String)>,
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

/// How much the reader may hold.
#[derive(Clone, Copy, Debug)]
pub struct InputOptions {
    /// Bytes for open files: their chunks, decompressors and Juno frame windows.
    pub memory: usize,
    /// Files open at once at most; 0: the process's open-file limit, less a reserve for
    /// outputs.
    pub max_open: usize,
    /// Captured bytes per batch (whatever the packet count).
    pub batch_bytes: usize,
    /// Packets per batch.
    pub batch_packets: usize,
}

/// Packets per batch. A batch's packets are decoded, then its connections processed, then its
/// exchanges written: small batches keep a batch's packet bytes and exchanges in cache between
/// those steps. 4,096 against 32,768 (medians of alternated runs, 2 vCPUs): DNS, PostgreSQL
/// and Redis 23–27% faster on 2 threads with a third to a quarter of the peak memory, small
/// HTTP responses unchanged (docs/benchmarks.md). It is also the widest disorder the
/// pipeline puts back in time order (a stable sort within a batch). It must not depend on
/// the thread count: output does not.
pub const BATCH_PACKETS: usize = 4096;

impl Default for InputOptions {
    fn default() -> Self {
        InputOptions {
            memory: 128 << 20,
            max_open: 0,
            batch_bytes: 4 << 20,
            batch_packets: BATCH_PACKETS,
        }
    }
}

impl InputOptions {
    fn window(&self) -> Window {
        Window {
            bytes: (self.memory / 8).clamp(1 << 20, 64 << 20),
            frames: (rayon::current_num_threads() * 2).max(2),
        }
    }
}

/// File descriptors kept for outputs, the progress bar and the like.
const FD_RESERVE: usize = 64;

/// The soft limit on open files (`ulimit -n`), from `/proc/self/limits`.
fn open_file_limit() -> usize {
    std::fs::read_to_string("/proc/self/limits")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("Max open files"))
                .and_then(|l| l.split_whitespace().nth(3))
                .and_then(|v| v.parse::<usize>().ok())
        })
        .unwrap_or(1024)
}

/// Where an input's bytes come from.
#[derive(Debug)]
enum Origin {
    /// A regular file: opened twice (a look, then the read).
    File(PathBuf),
    /// Standard input, a pipe or a device named on the command line: opened once.
    Stream,
}

/// What the walk found: inputs, and what it did not read.
#[derive(Debug, Default)]
pub struct Expanded {
    /// (path, named on the command line, regular file).
    pub files: Vec<(PathBuf, bool, bool)>,
    /// Not read, and why (the run says so in its exit status).
    pub skipped: Vec<(PathBuf, String)>,
    /// Passed over without loss (a file named twice, a directory reached again).
    pub notes: Vec<(PathBuf, String)>,
}

/// The name standard input goes by.
pub const STDIN: &str = "-";

/// Expands the command line: files as given (`-` is standard input), directories recursively
/// (sorted by name; hidden entries are not read, and hidden `.partial` files, a recorder's
/// file in progress, are named as skipped; FIFOs, sockets and devices are skipped; no
/// directory or file is read twice).
pub fn expand(paths: &[PathBuf]) -> Result<Expanded> {
    let mut out = Expanded::default();
    let mut seen: HashSet<(u64, u64)> = HashSet::new();
    let mut first_name: std::collections::HashMap<(u64, u64), PathBuf> = Default::default();
    let mut stdin = false;
    for p in paths {
        if p.as_os_str() == STDIN {
            if stdin {
                bail!("standard input (-) is named twice");
            }
            stdin = true;
            out.files.push((p.clone(), true, false));
            continue;
        }
        let md = std::fs::metadata(p)
            .map_err(|e| anyhow::anyhow!("cannot read {}: {e}", p.display()))?;
        let id = (md.dev(), md.ino());
        if md.is_dir() {
            if seen.insert(id) {
                walk(p, &mut out, &mut seen, &mut first_name, 0)?;
            } else {
                out.notes.push((p.clone(), "directory already read".into()));
            }
        } else if !seen.insert(id) {
            let other = first_name.get(&id).cloned().unwrap_or_default();
            out.notes.push((
                p.clone(),
                format!("the same file as {}: read once", other.display()),
            ));
        } else {
            first_name.insert(id, p.clone());
            out.files.push((p.clone(), true, md.is_file()));
        }
    }
    if out.files.is_empty() {
        let partial: Vec<String> = out
            .skipped
            .iter()
            .filter(|(p, _)| p.to_string_lossy().ends_with(".partial"))
            .map(|(p, _)| p.display().to_string())
            .collect();
        if !partial.is_empty() {
            bail!(
                "no input files found; skipped files a recorder is writing or left behind when it was killed: {} (name them on the command line to read them)",
                partial.join(", ")
            );
        }
        bail!("no input files found");
    }
    Ok(out)
}

/// Directories deeper than this are not walked (a bound on recursion, whatever the tree).
const MAX_DEPTH: usize = 64;

fn walk(
    dir: &Path,
    out: &mut Expanded,
    seen: &mut HashSet<(u64, u64)>,
    first_name: &mut std::collections::HashMap<(u64, u64), PathBuf>,
    depth: usize,
) -> Result<()> {
    if depth > MAX_DEPTH {
        out.skipped.push((
            dir.to_path_buf(),
            format!("more than {MAX_DEPTH} directories deep: not read"),
        ));
        return Ok(());
    }
    let mut entries: Vec<_> = match std::fs::read_dir(dir) {
        Ok(rd) => rd.filter_map(|e| e.ok()).collect(),
        Err(e) if depth == 0 => bail!("cannot list {}: {e}", dir.display()),
        Err(e) => {
            out.skipped
                .push((dir.to_path_buf(), format!("cannot list it: {e}")));
            return Ok(());
        }
    };
    entries.sort_by_key(|e| e.file_name());
    for e in entries {
        let name = e.file_name();
        let name = name.to_string_lossy();
        let path = e.path();
        if name.ends_with(".partial") {
            out.skipped.push((
                path,
                "a recorder's file in progress (being written, or left by a recorder that was killed): not read; name it on the command line to read it".into(),
            ));
            continue;
        }
        if name.starts_with('.') {
            continue;
        }
        // Follows symbolic links; a loop or a dangling link fails here.
        let md = match std::fs::metadata(&path) {
            Ok(m) => m,
            Err(e) => {
                out.skipped.push((path, format!("cannot read it: {e}")));
                continue;
            }
        };
        let id = (md.dev(), md.ino());
        if md.is_dir() {
            if seen.insert(id) {
                walk(&path, out, seen, first_name, depth + 1)?;
            } else {
                out.notes.push((
                    path,
                    "a directory already read (through a symbolic link): not read again".into(),
                ));
            }
            continue;
        }
        let ft = md.file_type();
        if !md.is_file() {
            let kind = if ft.is_fifo() {
                "a FIFO"
            } else if ft.is_socket() {
                "a socket"
            } else if ft.is_block_device() || ft.is_char_device() {
                "a device"
            } else {
                "not a regular file"
            };
            out.skipped.push((
                path,
                format!("{kind}: not read when found in a directory (name it on the command line to read it)"),
            ));
            continue;
        }
        if !seen.insert(id) {
            let other = first_name.get(&id).cloned().unwrap_or_default();
            out.notes.push((
                path,
                format!("the same file as {}: read once", other.display()),
            ));
            continue;
        }
        first_name.insert(id, path.clone());
        out.files.push((path, false, true));
    }
    Ok(())
}

/// A file known by a first look, not necessarily open.
struct Planned {
    /// Index of the file in the run (its items carry it).
    index: u32,
    name: PathBuf,
    origin: Origin,
    /// Time of its first timestamped item (0: unknown, opened first).
    first_ts: u64,
    /// Bytes it is expected to hold while open.
    cost: usize,
    /// New bytes per chunk (small files get small chunks).
    chunk: usize,
    /// Opened at the look and kept (streams cannot be opened twice).
    kept: Option<FileCursor>,
}

/// The opened inputs, ready to be read.
pub struct Inputs {
    planned: Vec<Planned>,
    opts: InputOptions,
    /// Identities that decrypt age-encrypted archives (files are opened again when their turn
    /// comes, on the reader thread).
    ids: Arc<Identities>,
    /// Redaction applied to every packet and socket payload as it is read (`--redact`).
    redact: Option<juno_redact::Policy>,
    /// Files not read, or skipped in part of the walk, and why.
    pub skipped: Vec<(PathBuf, String)>,
    /// What the walk passed over without loss.
    pub notes: Vec<(PathBuf, String)>,
    /// Total size of the input files, for progress.
    pub total_bytes: u64,
    /// Input bytes consumed so far.
    pub progress: Arc<AtomicU64>,
}

impl std::fmt::Debug for Inputs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Inputs")
            .field("files", &self.planned.len())
            .finish_non_exhaustive()
    }
}

/// What a look at a file's beginning found: its first time, and what it costs open.
fn look(cursor: &mut FileCursor) -> u64 {
    for _ in 0..256 {
        match cursor.next() {
            Some(item) => {
                if let Some(ts) = item.ts() {
                    return ts;
                }
            }
            None => break,
        }
        if cursor.chunk_gen > 1 {
            break;
        }
    }
    0
}

impl Inputs {
    /// Looks at every input (format and first timestamp). A file named on the command line
    /// that cannot be read or is not a capture is an error; one found in a directory is
    /// skipped with a warning.
    pub fn open(paths: &[PathBuf], opts: InputOptions) -> Result<Self> {
        Self::open_with(paths, opts, Identities::default())
    }

    /// [`Inputs::open`], decrypting encrypted archives with `ids`.
    pub fn open_with(paths: &[PathBuf], opts: InputOptions, ids: Identities) -> Result<Self> {
        let ids = Arc::new(ids);
        let ex = expand(paths)?;
        let progress = Arc::new(AtomicU64::new(0));
        let mut planned = Vec::new();
        let mut skipped = ex.skipped;
        let mut total = 0;
        let window = opts.window();
        for (path, explicit, regular) in ex.files {
            let stdin = path.as_os_str() == STDIN;
            let size = if stdin {
                0
            } else {
                std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0)
            };
            total += size;
            let index = u32::try_from(planned.len()).unwrap_or(u32::MAX);
            let result = if regular {
                let look_opts = ReadOpts {
                    chunk: PEEK_CHUNK,
                    window: Window {
                        bytes: 1,
                        frames: 1,
                    },
                };
                std::fs::File::open(&path)
                    .map_err(|e| anyhow::anyhow!("cannot read {}: {e}", path.display()))
                    .and_then(|f| {
                        FileCursor::open(
                            &path,
                            Box::new(f),
                            Arc::new(AtomicU64::new(0)),
                            look_opts,
                            &ids,
                        )
                    })
                    .map(|mut c| {
                        let ts = look(&mut c);
                        let chunk = chunk_for(size);
                        Planned {
                            index,
                            name: path.clone(),
                            origin: Origin::File(path.clone()),
                            first_ts: ts,
                            cost: cost(c.format.compression, chunk, window),
                            chunk,
                            kept: None,
                        }
                    })
            } else {
                let reader: Result<Box<dyn Read + Send>> = if stdin {
                    Ok(Box::new(std::io::stdin()))
                } else {
                    std::fs::File::open(&path)
                        .map(|f| Box::new(f) as Box<dyn Read + Send>)
                        .map_err(|e| anyhow::anyhow!("cannot read {}: {e}", path.display()))
                };
                let ropts = ReadOpts {
                    chunk: CHUNK,
                    window,
                };
                reader
                    .and_then(|r| FileCursor::open(&path, r, progress.clone(), ropts, &ids))
                    .map(|c| Planned {
                        index,
                        name: path.clone(),
                        origin: Origin::Stream,
                        first_ts: 0,
                        cost: cost(c.format.compression, CHUNK, window),
                        chunk: CHUNK,
                        kept: Some(c),
                    })
            };
            match result {
                Ok(p) => planned.push(p),
                Err(e) if !explicit => skipped.push((path, format!("{e:#}"))),
                Err(e) => return Err(e),
            }
        }
        if planned.is_empty() {
            bail!("none of the inputs is a capture");
        }
        Ok(Inputs {
            planned,
            opts,
            ids,
            redact: None,
            skipped,
            notes: ex.notes,
            total_bytes: total,
            progress,
        })
    }

    /// Reads a capture from `reader` (standard input, a pipe, bytes in memory), named `name`
    /// in warnings.
    pub fn from_reader(
        name: &str,
        reader: Box<dyn Read + Send>,
        opts: InputOptions,
    ) -> Result<Self> {
        let progress = Arc::new(AtomicU64::new(0));
        let window = opts.window();
        let c = FileCursor::open(
            Path::new(name),
            reader,
            progress.clone(),
            ReadOpts {
                chunk: CHUNK,
                window,
            },
            &Identities::default(),
        )?;
        Ok(Inputs {
            planned: vec![Planned {
                index: 0,
                name: name.into(),
                origin: Origin::Stream,
                first_ts: 0,
                cost: cost(c.format.compression, CHUNK, window),
                chunk: CHUNK,
                kept: Some(c),
            }],
            opts,
            ids: Arc::new(Identities::default()),
            redact: None,
            skipped: Vec::new(),
            notes: Vec::new(),
            total_bytes: 0,
            progress,
        })
    }

    /// Number of files.
    pub fn len(&self) -> usize {
        self.planned.len()
    }

    /// True if there are no files.
    pub fn is_empty(&self) -> bool {
        self.planned.is_empty()
    }

    /// Redacts every packet's and socket event's payload as it is read, with `policy`
    /// (`juno-analyze --redact`: the recorder's rules, for captures it did not make).
    pub fn set_redaction(&mut self, policy: Option<juno_redact::Policy>) {
        self.redact = policy.filter(|p| !p.is_off());
    }

    /// Reads everything, calling `sink` with batches of about `opts.batch_packets` packets
    /// (and at most `opts.batch_bytes` captured bytes) in time order. Stops early if `sink`
    /// returns false. Returns what the merge had to do out of time order, and what redaction
    /// did if it was on.
    pub fn read(self, mut sink: impl FnMut(Batch) -> bool) -> Result<ReadReport> {
        let mut m = Merger::new(self.planned, self.opts, self.progress.clone(), self.ids);
        m.redactor = self
            .redact
            .map(|p| juno_redact::Redactor::new(p, REDACT_STREAMS));
        m.admit();
        while let Some(batch) = m.next_batch() {
            if !sink(batch) {
                break;
            }
        }
        Ok(ReadReport {
            waited: m.waited,
            max_open: m.max_open,
            redaction: m.redactor.map(|r| *r.counts()),
        })
    }
}

/// What the merge could not do as asked.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ReadReport {
    /// Files opened after packets later than their first one had been read (more files
    /// overlapped in time than could be open at once).
    pub waited: u64,
    /// Files that could be open at once.
    pub max_open: usize,
    /// What `--redact` overwrote, when it was on.
    pub redaction: Option<juno_redact::Counts>,
}

/// New bytes per chunk for a file of `size` bytes: the whole file if small, at least 64 KiB,
/// at most [`CHUNK`].
fn chunk_for(size: u64) -> usize {
    usize::try_from(size.saturating_add(1))
        .unwrap_or(usize::MAX)
        .clamp(64 << 10, CHUNK)
}

/// Bytes a file holds while open: chunks (two: one read, one still referenced by a batch in
/// flight), plus the decompressor's buffers and window.
fn cost(c: Compression, chunk: usize, window: Window) -> usize {
    match c {
        Compression::None => 2 * chunk,
        Compression::Gzip => 2 * chunk + (1 << 20) + (64 << 10),
        // A zstd decoder's window is up to 128 MiB (its default limit); captures compressed
        // with the zstd tool use 8 MiB at most levels.
        Compression::Zstd => 2 * chunk + (8 << 20),
        Compression::JunoFrames => 2 * CHUNK + window.bytes + (1 << 20),
        // The same, plus the decryptor's 1 MiB read buffer and one 64 KiB age chunk.
        Compression::AgeJunoFrames => 2 * CHUNK + window.bytes + (2 << 20) + (64 << 10),
    }
}

struct FileState {
    index: u32,
    cursor: FileCursor,
    head: Option<CItem>,
    /// Local interface id → global interface index, for the current section.
    ifaces: Vec<u32>,
    /// (chunk generation, index in the current batch).
    chunk_slot: Option<(u64, u32)>,
    /// Node that wrote the file (Juno archives), part of its interfaces' identity.
    node: Option<String>,
    /// Position of the file by its first timestamp: breaks timestamp ties between files.
    rank: u32,
    cost: usize,
}

/// Interfaces of different files are one interface when node, name, description and link
/// type agree (rotated archives, a capture split into parts).
type IfaceKey = (Option<String>, Option<String>, Option<String>, u32);

struct Merger {
    /// Files not opened yet, by first timestamp.
    pending: VecDeque<(u32, Planned)>,
    /// Open files, by slot.
    slots: Vec<Option<FileState>>,
    open_cost: usize,
    open_count: usize,
    max_open: usize,
    heap: BinaryHeap<Reverse<(u64, u32, u32)>>,
    batch: Batch,
    opts: InputOptions,
    window: Window,
    next_iface: u32,
    iface_keys: std::collections::HashMap<IfaceKey, u32>,
    progress: Arc<AtomicU64>,
    /// Latest time handed out.
    now: u64,
    waited: u64,
    ids: Arc<Identities>,
    /// `--redact`: payload is copied into `redacted` and overwritten there.
    redactor: Option<juno_redact::Redactor>,
    /// Link type of each global interface.
    linktypes: Vec<u32>,
    /// This batch's redacted copies, and their chunk index once one was made.
    redacted: Vec<u8>,
    redacted_chunk: Option<u32>,
}

/// Connection directions whose redaction state `--redact` keeps (per vantage).
const REDACT_STREAMS: usize = 1 << 16;

/// A number that tells nodes apart, to key socket cookies by node.
fn node_salt(node: &str) -> u64 {
    node.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}

/// `--redact` on a socket event: data events are redacted, a socket's end drops its state.
fn redact_socket(
    r: &mut juno_redact::Redactor,
    ev: &SocketEvent<'_>,
    salt: u64,
    b: &mut [u8],
) -> bool {
    use juno_archive::{DataDirection, SocketEventKind};
    let cookie = ev.cookie ^ salt;
    let dir = match ev.direction {
        DataDirection::Send => juno_redact::DIR_SEND,
        _ => juno_redact::DIR_RECV,
    };
    match (ev.kind, ev.direction) {
        (SocketEventKind::Data, DataDirection::Send | DataDirection::Recv) => {
            r.socket_data(cookie, dir, ev.stream_offset, ev.orig_len, b)
        }
        // A TLS library's plaintext: a stream of its own.
        (SocketEventKind::TlsData, DataDirection::Send | DataDirection::Recv) => r.socket_data(
            juno_redact::tls_stream(cookie),
            dir,
            ev.stream_offset,
            ev.orig_len,
            b,
        ),
        (SocketEventKind::Close, _) => {
            r.socket_closed(cookie);
            r.socket_closed(juno_redact::tls_stream(cookie));
            false
        }
        (SocketEventKind::StateChange, _) if ev.new_state == 7 => {
            r.socket_closed(cookie);
            r.socket_closed(juno_redact::tls_stream(cookie));
            false
        }
        _ => false,
    }
}

impl Merger {
    fn new(
        planned: Vec<Planned>,
        opts: InputOptions,
        progress: Arc<AtomicU64>,
        ids: Arc<Identities>,
    ) -> Self {
        let fd_limit = open_file_limit().saturating_sub(FD_RESERVE).max(1);
        let max_open = if opts.max_open == 0 {
            fd_limit
        } else {
            opts.max_open.min(fd_limit)
        };
        // Rank files by where they start, so that equal timestamps across files keep the
        // files' own order whatever order they were named in.
        let mut order: Vec<Planned> = planned;
        order.sort_by_key(|p| (p.first_ts, p.index));
        let mut pending = VecDeque::new();
        for (rank, p) in order.into_iter().enumerate() {
            pending.push_back((u32::try_from(rank).unwrap_or(u32::MAX), p));
        }
        Merger {
            pending,
            slots: Vec::new(),
            open_cost: 0,
            open_count: 0,
            max_open,
            heap: BinaryHeap::new(),
            batch: Batch::default(),
            window: opts.window(),
            opts,
            next_iface: 0,
            iface_keys: std::collections::HashMap::new(),
            progress,
            now: 0,
            waited: 0,
            ids,
            redactor: None,
            linktypes: Vec::new(),
            redacted: Vec::new(),
            redacted_chunk: None,
        }
    }

    /// With `--redact`: the item's bytes (at `off`, `len` in the current chunk of the file in
    /// slot `i`), copied and redacted when redaction changes them; returns where the item's
    /// bytes are now (chunk index, offset).
    fn redact(
        &mut self,
        i: usize,
        off: usize,
        len: usize,
        f: impl FnOnce(&mut juno_redact::Redactor, &mut [u8]) -> bool,
    ) -> (u32, usize) {
        let Some(r) = self.redactor.as_mut() else {
            return (self.chunk_index(i), off);
        };
        let Some(src) = self.slots[i]
            .as_ref()
            .and_then(|f| f.cursor.chunk.get(off..off + len))
        else {
            return (self.chunk_index(i), off);
        };
        let start = self.redacted.len();
        self.redacted.extend_from_slice(src);
        if !f(r, &mut self.redacted[start..]) {
            self.redacted.truncate(start);
            return (self.chunk_index(i), off);
        }
        let chunk = *self.redacted_chunk.get_or_insert_with(|| {
            self.batch.chunks.push(Bytes::new());
            u32::try_from(self.batch.chunks.len() - 1).unwrap_or(u32::MAX)
        });
        (chunk, start)
    }

    fn head_key(f: &FileState) -> u64 {
        match &f.head {
            Some(item) => item.ts().unwrap_or(f.cursor.last_ts),
            None => f.cursor.last_ts,
        }
    }

    /// Opens the files whose turn has come (their first timestamp is not after the next item
    /// to hand out), as many as may be open.
    fn admit(&mut self) {
        loop {
            let Some((_, p)) = self.pending.front() else {
                return;
            };
            let next = self.heap.peek().map(|Reverse((k, _, _))| *k);
            // Streams are open already: they join at once.
            if p.kept.is_none() && next.is_some_and(|k| p.first_ts > k) {
                return;
            }
            let fits = self.open_count == 0
                || (self.open_count < self.max_open && self.open_cost + p.cost <= self.opts.memory);
            if !fits && p.kept.is_none() {
                // Overlaps more files than may be open: it waits for one to finish (and is
                // counted when it opens late).
                return;
            }
            let Some((rank, p)) = self.pending.pop_front() else {
                return;
            };
            let late = p.first_ts != 0 && p.first_ts < self.now;
            let cursor = match (p.kept, p.origin) {
                (Some(c), _) => Ok(c),
                (None, Origin::File(path)) => std::fs::File::open(&path)
                    .map_err(|e| anyhow::anyhow!("cannot open it: {e}"))
                    .and_then(|f| {
                        FileCursor::open(
                            &path,
                            Box::new(f),
                            self.progress.clone(),
                            ReadOpts {
                                chunk: p.chunk,
                                window: self.window,
                            },
                            &self.ids,
                        )
                    }),
                (None, Origin::Stream) => Err(anyhow::anyhow!("a stream can be read once")),
            };
            let cursor = match cursor {
                Ok(c) => c,
                Err(e) => {
                    self.batch.skipped.push((p.name, format!("{e:#}")));
                    continue;
                }
            };
            if late {
                self.waited += 1;
            }
            let state = FileState {
                index: p.index,
                cursor,
                head: None,
                ifaces: Vec::new(),
                chunk_slot: None,
                node: None,
                rank,
                cost: p.cost,
            };
            let slot = match self.slots.iter().position(Option::is_none) {
                Some(s) => {
                    self.slots[s] = Some(state);
                    s
                }
                None => {
                    self.slots.push(Some(state));
                    self.slots.len() - 1
                }
            };
            self.open_cost += p.cost;
            self.open_count += 1;
            self.advance(slot);
        }
    }

    /// Reads the next item of the file in `slot`; closes the file at its end.
    fn advance(&mut self, slot: usize) {
        let Some(f) = self.slots[slot].as_mut() else {
            return;
        };
        f.head = f.cursor.next();
        if f.head.is_some() {
            let key = Self::head_key(f);
            self.heap.push(Reverse((
                key,
                f.rank,
                u32::try_from(slot).unwrap_or(u32::MAX),
            )));
            return;
        }
        if let Some(f) = self.slots[slot].take() {
            self.open_cost -= f.cost;
            self.open_count -= 1;
            self.batch.files_done.push(FileSummary {
                path: f.cursor.path.clone(),
                format: f.cursor.format,
                stats: f.cursor.stats,
                warnings: f.cursor.warnings,
            });
        }
    }

    fn chunk_index(&mut self, slot: usize) -> u32 {
        let Some(f) = self.slots[slot].as_mut() else {
            return u32::MAX;
        };
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
        for f in self.slots.iter_mut().flatten() {
            f.chunk_slot = None;
        }
        if let Some(c) = self.redacted_chunk.take()
            && let Some(slot) = self.batch.chunks.get_mut(c as usize)
        {
            *slot = Bytes::from(std::mem::take(&mut self.redacted));
        }
        std::mem::take(&mut self.batch)
    }

    fn next_batch(&mut self) -> Option<Batch> {
        let mut packets = 0usize;
        loop {
            self.admit();
            let Some(Reverse((key, _, s))) = self.heap.pop() else {
                break;
            };
            let slot = s as usize;
            self.now = self.now.max(key);
            let Some(f) = self.slots[slot].as_mut() else {
                continue;
            };
            let fi = f.index;
            let Some(item) = f.head.take() else {
                continue;
            };
            match item {
                CItem::Section => f.ifaces.clear(),
                CItem::Interface(local, info) => {
                    let key_node = f.node.clone();
                    let key: IfaceKey = (
                        key_node.clone(),
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
                            self.linktypes.push(info.linktype);
                            self.batch.new_ifaces.push(Iface {
                                file: fi,
                                linktype: info.linktype,
                                name: info.name,
                                description: info.description,
                                node: key_node.clone(),
                            });
                            g
                        }
                    };
                    let local = local as usize;
                    if let Some(f) = self.slots[slot].as_mut() {
                        if f.ifaces.len() <= local {
                            f.ifaces.resize(local + 1, u32::MAX);
                        }
                        f.ifaces[local] = g;
                    }
                }
                CItem::Packet {
                    ts,
                    iface,
                    off,
                    len,
                    orig_len,
                } => {
                    let g = f.ifaces.get(iface as usize).copied().unwrap_or(u32::MAX);
                    if g != u32::MAX {
                        let lt = self.linktypes.get(g as usize).copied().unwrap_or(u32::MAX);
                        let (chunk, off) =
                            self.redact(slot, off, len as usize, |r, b| r.packet(lt, g, b));
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
                    // Cookies are unique per node and boot: the node is part of the key.
                    let salt = f.node.as_deref().map_or(0, node_salt);
                    let (chunk, off) = self.redact(slot, off, len as usize, |r, b| {
                        redact_socket(r, &ev, salt, b)
                    });
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
                    let g = f.ifaces.get(s.iface as usize).copied().unwrap_or(u32::MAX);
                    if g != u32::MAX {
                        self.batch.items.push(BatchItem::IfaceStats(g, s));
                    }
                }
                CItem::FileInfo(info) => {
                    f.node = Some(info.node.clone());
                    self.batch
                        .items
                        .push(BatchItem::FileInfo(fi, Box::new(info)));
                }
                CItem::Meta(m) => self.batch.items.push(BatchItem::Meta(fi, Box::new(m))),
                CItem::Stats(s) => self
                    .batch
                    .items
                    .push(BatchItem::RecorderStats(fi, Box::new(s))),
            }
            self.advance(slot);
            if packets >= self.opts.batch_packets.max(1)
                || self.batch.packet_bytes >= self.opts.batch_bytes.max(1) as u64
            {
                return Some(self.take_batch());
            }
        }
        if self.batch.items.is_empty()
            && self.batch.new_ifaces.is_empty()
            && self.batch.files_done.is_empty()
            && self.batch.skipped.is_empty()
        {
            return None;
        }
        Some(self.take_batch())
    }
}
