//! Writing archives: encoding blocks, compressing frames, rotating and sealing files,
//! enforcing retention.
//!
//! Two threads, fed by the recorder's event loop through a bounded channel:
//! - the **encoder** turns items into pcapng blocks and cuts frames ([`BlockEncoder`]): a frame
//!   when it reaches the frame size, and at least every `flush_every`, so that a crash loses at
//!   most that much; it decides rotation (size, age, or a seal request);
//! - the **writer** compresses frames and appends them to the file, seals files (fsync, then
//!   an atomic rename from the hidden `.partial` name to the sealed name) and deletes the
//!   oldest sealed files while the node's archives exceed `max_total_size`.

use std::collections::BTreeMap;
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{Context, Result};
use crossbeam_channel::{Receiver, RecvTimeoutError, Sender};
use juno_archive::naming::{ArchiveName, PARTIAL_SUFFIX, SUFFIX, sanitize_node};
use juno_archive::writer::{BlockEncoder, InterfaceDesc, InterfaceStats, PendingFrame};
use juno_archive::{
    Counter, Entity, FileInfo, InterfaceMeta, MetaOp, MetaRecord, Record, SocketEvent, StatsRecord,
};

use crate::ifaces::{Iface, IfaceOwner};

/// Bytes of a [`Batch`]: a range of its buffer.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Bytes {
    start: usize,
    len: usize,
}

/// What the event loop hands to the encoder in one message: items, with the packet and
/// payload bytes they refer to in one buffer. One buffer per batch rather than one allocation
/// per event (at 100k events/s, malloc and free were a fifth of the recorder's CPU); the
/// encoder hands batches back through [`Output::recycled`] so their capacity is reused.
#[derive(Debug, Default)]
pub struct Batch {
    /// Items, in order.
    pub items: Vec<Item>,
    bytes: Vec<u8>,
}

impl Batch {
    /// Copies `b` into the batch's buffer.
    pub fn push_bytes(&mut self, b: &[u8]) -> Bytes {
        let start = self.bytes.len();
        self.bytes.extend_from_slice(b);
        Bytes {
            start,
            len: b.len(),
        }
    }

    /// The bytes of `r`; empty if `r` is not from this batch.
    pub fn bytes(&self, r: Bytes) -> &[u8] {
        self.bytes.get(r.start..r.start + r.len).unwrap_or(&[])
    }

    /// Empties the batch, keeping its capacity.
    pub fn clear(&mut self) {
        self.items.clear();
        self.bytes.clear();
    }

    /// Whether it holds no items.
    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    /// Number of items.
    pub fn len(&self) -> usize {
        self.items.len()
    }
}

/// A socket event whose payload lives in its [`Batch`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SocketItem {
    /// The event, with an empty payload.
    pub ev: SocketEvent<'static>,
    /// The payload.
    pub payload: Bytes,
}

/// What the event loop hands to the encoder.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Item {
    /// A packet.
    Packet {
        /// Interface index.
        ifindex: u32,
        /// Wall-clock time, ns.
        ts_ns: u64,
        /// Captured bytes.
        data: Bytes,
        /// Length on the wire.
        orig_len: u32,
    },
    /// A socket event.
    Socket(SocketItem),
    /// A metadata change.
    Meta(Box<MetaRecord>),
    /// Recorder counters.
    Stats(Box<StatsRecord>),
    /// An interface is captured from now on (with its owner, e.g. its pod, when known).
    IfaceUp(Iface, Option<IfaceOwner>),
    /// The owner of an interface already captured became known, changed or is no longer
    /// known (None): the current file gets an interface upsert with the pod uid (or none),
    /// later files the description too.
    IfaceOwner(u32, Option<IfaceOwner>),
    /// An interface is no longer captured.
    IfaceDown(u32),
    /// Kernel-side counters per interface: (seen, dropped).
    IfaceCounters(BTreeMap<u32, (u64, u64)>),
}

/// Messages to the encoder.
#[derive(Debug)]
pub enum Msg {
    /// Items, in order.
    Items(Batch),
    /// Seal the current file now and start the next one.
    Seal,
    /// Seal and stop.
    Shutdown,
}

/// Output settings.
#[derive(Clone, Debug)]
pub struct OutputConfig {
    /// Directory for the archives.
    pub out_dir: PathBuf,
    /// Node name (goes into file names, sanitized).
    pub node: String,
    /// Seal a file once it has this many compressed bytes.
    pub max_file_size: u64,
    /// Seal a file once it is this old.
    pub rotate_every: Duration,
    /// Delete the oldest sealed files while the node's archives exceed this.
    pub max_total_size: u64,
    /// Uncompressed bytes per frame at most.
    pub frame_size: usize,
    /// zstd level.
    pub level: i32,
    /// Nice value added to the encoder and writer threads (0: unchanged).
    pub nice: i32,
    /// Cut a frame at least this often.
    pub flush_every: Duration,
    /// Recorder name and version.
    pub recorder: String,
    /// Wall-clock time of boot, ns.
    pub boot_time_ns: Option<u64>,
    /// The snapshot written at the start of every file (node, containers, ...), besides the
    /// interfaces the encoder knows itself.
    pub snapshot: Arc<std::sync::Mutex<Vec<Entity>>>,
    /// What is redacted from payload before it is written (crate::redaction).
    pub redaction: juno_redact::Policy,
    /// Connection directions whose redaction state is kept at most, per vantage.
    pub redact_streams: usize,
    /// Encrypt every file to these age recipients (empty: files are not encrypted).
    pub encrypt_to: Vec<age::x25519::Recipient>,
}

enum ToWriter {
    Open(PathBuf),
    Frame(PendingFrame),
    Seal { from: PathBuf, to: PathBuf },
}

/// Lowers the calling thread's scheduling priority by `nice` (0: unchanged): the encoder and
/// the writer (zstd) give way to the node's applications when CPUs are contended, while the
/// thread that drains the ring buffers keeps its priority. Raising a priority would need
/// CAP_SYS_NICE; lowering needs nothing, and a failure only leaves the priority as it was.
/// `nice` is added to the thread's nice value (capped at 19 by the kernel): a recorder started
/// at nice 10 runs them at 15. Setting it instead would be a raise, refused without
/// CAP_SYS_NICE, whenever the recorder starts above `nice`. (On Linux, nice values are per
/// thread: glibc's nice(3) is getpriority and setpriority of the calling thread.)
#[expect(unsafe_code, reason = "nice(3) has no safe wrapper in nix or libc")]
fn lower_priority(nice: i32) {
    if nice > 0 {
        // SAFETY: nice reads its integer argument and touches no memory but errno.
        let _ = unsafe { libc::nice(nice) };
    }
}

/// What the output threads report when they finish.
#[derive(Debug, Default, Clone)]
pub struct OutputReport {
    /// Files sealed.
    pub sealed: Vec<PathBuf>,
    /// Files deleted by retention.
    pub deleted: Vec<PathBuf>,
}

/// Uncompressed bytes of frames queued for the writer (zstd) at most, whatever the frame size:
/// what absorbs a burst while the writer is behind, before the encoder waits.
const WRITER_QUEUE_BYTES: usize = 16 << 20;

/// Handle on the output threads.
#[derive(Debug)]
pub struct Output {
    /// Where the event loop sends items.
    pub tx: Sender<Msg>,
    /// Batches the encoder is done with, for the event loop to fill again.
    pub recycled: Receiver<Batch>,
    encoder: std::thread::JoinHandle<Result<()>>,
    writer: std::thread::JoinHandle<Result<OutputReport>>,
}

fn now_ns() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}

impl Output {
    /// Starts the threads. `queue` bounds the messages in flight.
    pub fn start(cfg: OutputConfig, queue: usize) -> Result<Self> {
        private_dir(&cfg.out_dir)?;
        recover_partials(&cfg.out_dir, &cfg.node)?;
        let (tx, rx) = crossbeam_channel::bounded::<Msg>(queue);
        // Frames waiting for the writer: 16 MiB of them, at least two.
        let frames = (WRITER_QUEUE_BYTES / cfg.frame_size.max(1)).clamp(2, 8);
        let (wtx, wrx) = crossbeam_channel::bounded::<ToWriter>(frames);
        let (btx, brx) = crossbeam_channel::bounded::<Batch>(queue.max(1));
        let written = Arc::new(AtomicU64::new(0));
        let wcfg = cfg.clone();
        let wcount = written.clone();
        // Uncompressed bytes of frames handed to the writer and not yet written: counted
        // against the file size so that rotation does not overshoot while the writer is
        // behind (they are counted as if incompressible: a file may be sealed early, by at
        // most the writer's queue, never late).
        let queued = Arc::new(AtomicU64::new(0));
        let wqueued = queued.clone();
        let nice = cfg.nice;
        let writer = std::thread::Builder::new()
            .name("juno-writer".into())
            .spawn(move || {
                lower_priority(nice);
                writer_loop(wcfg, wrx, wcount, wqueued)
            })?;
        let encoder = std::thread::Builder::new()
            .name("juno-encoder".into())
            .spawn(move || {
                lower_priority(nice);
                Encoder::new(cfg, wtx, written, queued).run(rx, btx)
            })?;
        Ok(Output {
            tx,
            recycled: brx,
            encoder,
            writer,
        })
    }

    /// Seals the current file, stops the threads, and reports.
    pub fn finish(self) -> Result<OutputReport> {
        let _ = self.tx.send(Msg::Shutdown);
        drop(self.tx);
        let enc = self
            .encoder
            .join()
            .map_err(|_| anyhow::anyhow!("encoder thread panicked"))?;
        let rep = self
            .writer
            .join()
            .map_err(|_| anyhow::anyhow!("writer thread panicked"))?;
        enc?;
        rep
    }
}

/// Creates the archive directory readable by its owner only (0700), or tightens an
/// existing one the recorder's user owns. A directory shared with others (not ours, or
/// sticky like /tmp) is left as it is, with a warning: the archives in it are 0600 anyway.
fn private_dir(dir: &Path) -> Result<()> {
    use std::os::unix::fs::{DirBuilderExt, MetadataExt, PermissionsExt};
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .with_context(|| format!("cannot create {}", dir.display()))?;
    let md = std::fs::metadata(dir).with_context(|| format!("cannot read {}", dir.display()))?;
    let mode = md.mode() & 0o7777;
    if mode & 0o077 != 0 {
        if md.uid() == nix::unistd::geteuid().as_raw() && mode & 0o1000 == 0 {
            std::fs::set_permissions(dir, std::fs::Permissions::from_mode(mode & 0o700))
                .with_context(|| format!("cannot restrict {} to its owner", dir.display()))?;
        } else {
            crate::log(format!(
                "{} is open to others (mode {mode:o}); archives are written 0600, but a directory of their own (0700) is better",
                dir.display()
            ));
        }
    }
    Ok(())
}

/// Files a crash left half-written become sealed files: they are readable up to their last
/// complete frame.
fn recover_partials(dir: &Path, node: &str) -> Result<()> {
    let node = sanitize_node(node);
    for e in std::fs::read_dir(dir)?.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        if let Some((n, true)) = ArchiveName::parse(&name)
            && n.node == node
        {
            let to = dir.join(n.sealed());
            std::fs::rename(e.path(), &to)?;
            crate::log(format!(
                "recovered {} left by an earlier run (cut short: readable up to its last complete frame)",
                to.display()
            ));
        }
    }
    Ok(())
}

struct OpenFile {
    name: ArchiveName,
    enc: BlockEncoder,
    ids: BTreeMap<u32, u32>,
    delivered: BTreeMap<u32, u64>,
    started: Instant,
    start_ns: u64,
    last_cut: Instant,
}

struct Encoder {
    cfg: OutputConfig,
    wtx: Sender<ToWriter>,
    written: Arc<AtomicU64>,
    queued: Arc<AtomicU64>,
    ifaces: BTreeMap<u32, (Iface, Option<IfaceOwner>)>,
    counters: BTreeMap<u32, (u64, u64)>,
    file: Option<OpenFile>,
    seq: u64,
    previous: Option<String>,
    redaction: Option<crate::redaction::Redaction>,
}

impl Encoder {
    fn new(
        cfg: OutputConfig,
        wtx: Sender<ToWriter>,
        written: Arc<AtomicU64>,
        queued: Arc<AtomicU64>,
    ) -> Self {
        Encoder {
            redaction: crate::redaction::Redaction::new(&cfg.redaction, cfg.redact_streams),
            cfg,
            wtx,
            written,
            queued,
            ifaces: BTreeMap::new(),
            counters: BTreeMap::new(),
            file: None,
            seq: 0,
            previous: None,
        }
    }

    fn run(mut self, rx: Receiver<Msg>, recycle: Sender<Batch>) -> Result<()> {
        loop {
            match rx.recv_timeout(self.cfg.flush_every.min(Duration::from_millis(500))) {
                Ok(Msg::Items(mut batch)) => {
                    // Redacted a run at a time (timed once per run), a statistics record
                    // ending a run so that its counts are those of the items before it; size
                    // is checked after every item: a batch can hold more than a file.
                    let mut items = std::mem::take(&mut batch.items);
                    while !items.is_empty() {
                        let n = items
                            .iter()
                            .position(|i| matches!(i, Item::Stats(_)))
                            .map_or(items.len(), |p| p + 1);
                        self.redact(&items[..n], &mut batch.bytes);
                        for it in items.drain(..n) {
                            self.add(it, &batch.bytes)?;
                            if self.over_size() {
                                self.seal()?;
                            }
                        }
                    }
                    batch.items = items;
                    batch.clear();
                    // A full pool (or a loop that has stopped) just frees the batch.
                    let _ = recycle.try_send(batch);
                }
                Ok(Msg::Seal) => {
                    self.seal()?;
                }
                Ok(Msg::Shutdown) | Err(RecvTimeoutError::Disconnected) => {
                    self.seal()?;
                    return Ok(());
                }
                Err(RecvTimeoutError::Timeout) => {}
            }
            self.tick()?;
        }
    }

    fn send(&self, m: ToWriter) -> Result<()> {
        self.wtx
            .send(m)
            .map_err(|_| anyhow::anyhow!("the writer thread stopped"))
    }

    /// Hands a frame to the writer, counting it as queued until the writer has written it.
    fn send_frame(&self, f: PendingFrame) -> Result<()> {
        self.queued
            .fetch_add(f.content.len() as u64, Ordering::Relaxed);
        self.send(ToWriter::Frame(f))
    }

    fn emit(&mut self, f: Option<PendingFrame>) -> Result<()> {
        if let Some(f) = f {
            if let Some(file) = &mut self.file {
                file.last_cut = Instant::now();
            }
            self.send_frame(f)?;
        }
        Ok(())
    }

    fn open(&mut self) -> Result<&mut OpenFile> {
        if self.file.is_none() {
            let start = SystemTime::now();
            let start_ns = now_ns();
            let name = ArchiveName::new(&self.cfg.node, start, self.seq)
                .with_encryption(!self.cfg.encrypt_to.is_empty());
            let info = FileInfo {
                start_ns,
                sequence: self.seq,
                node: self.cfg.node.clone(),
                hostname: Some(crate::node::hostname()),
                recorder: Some(self.cfg.recorder.clone()),
                boot_time_ns: self.cfg.boot_time_ns,
                frame_size: u32::try_from(self.cfg.frame_size).ok(),
                previous: self.previous.clone(),
                redaction: Some(self.cfg.redaction.describe()),
            };
            self.written.store(0, Ordering::Relaxed);
            self.send(ToWriter::Open(self.cfg.out_dir.join(name.partial())))?;
            let mut enc = BlockEncoder::new(&info, self.cfg.frame_size)?;
            let mut ids = BTreeMap::new();
            let mut frames = Vec::new();
            for (idx, (iface, owner)) in &self.ifaces {
                let (id, f) = enc.add_interface(&idb(iface, owner.as_ref()))?;
                ids.insert(*idx, id);
                frames.extend(f);
            }
            // The metadata snapshot: every file describes itself.
            let snapshot = self
                .cfg
                .snapshot
                .lock()
                .map(|s| s.clone())
                .unwrap_or_default();
            for ent in snapshot {
                frames.extend(enc.write_metadata(&MetaRecord {
                    ts_ns: start_ns,
                    op: MetaOp::Snapshot,
                    entity: ent,
                })?);
            }
            for (idx, (iface, owner)) in &self.ifaces {
                let ent =
                    Entity::Interface(iface_meta(iface, owner.as_ref(), ids.get(idx).copied()));
                frames.extend(enc.write_metadata(&MetaRecord {
                    ts_ns: start_ns,
                    op: MetaOp::Snapshot,
                    entity: ent,
                })?);
            }
            self.file = Some(OpenFile {
                name,
                enc,
                ids,
                delivered: BTreeMap::new(),
                started: Instant::now(),
                start_ns,
                last_cut: Instant::now(),
            });
            for f in frames {
                self.emit(Some(f))?;
            }
        }
        self.file
            .as_mut()
            .ok_or_else(|| anyhow::anyhow!("no open file"))
    }

    /// Overwrites the secrets in the payload of `items` (crate::redaction), before their
    /// bytes are encoded by [`Encoder::add`].
    fn redact(&mut self, items: &[Item], bytes: &mut [u8]) {
        let Some(r) = &mut self.redaction else { return };
        let t = Instant::now();
        for it in items {
            match it {
                Item::Packet { ifindex, data, .. } => r.packet(*ifindex, bytes_mut(bytes, *data)),
                Item::Socket(s) => r.socket(&s.ev, bytes_mut(bytes, s.payload)),
                _ => {}
            }
        }
        r.spent(t.elapsed());
    }

    fn add(&mut self, it: Item, bytes: &[u8]) -> Result<()> {
        let get = |r: Bytes| bytes.get(r.start..r.start + r.len).unwrap_or(&[]);
        match it {
            Item::IfaceUp(iface, owner) => {
                let idx = iface.ifindex;
                self.ifaces.insert(idx, (iface.clone(), owner.clone()));
                if let Some(file) = &mut self.file
                    && !file.ids.contains_key(&idx)
                {
                    let (id, f) = file.enc.add_interface(&idb(&iface, owner.as_ref()))?;
                    file.ids.insert(idx, id);
                    let m = MetaRecord {
                        ts_ns: now_ns(),
                        op: MetaOp::Upsert,
                        entity: Entity::Interface(iface_meta(&iface, owner.as_ref(), Some(id))),
                    };
                    let f2 = file.enc.write_metadata(&m)?;
                    self.emit(f)?;
                    self.emit(f2)?;
                }
            }
            Item::IfaceOwner(idx, owner) => {
                // Only for an interface still captured; a late answer for a gone one is moot.
                if let Some(entry) = self.ifaces.get_mut(&idx)
                    && entry.1 != owner
                {
                    entry.1 = owner;
                    let (iface, owner) = entry.clone();
                    let file = self.open()?;
                    let id = file.ids.get(&idx).copied();
                    let m = MetaRecord {
                        ts_ns: now_ns(),
                        op: MetaOp::Upsert,
                        entity: Entity::Interface(iface_meta(&iface, owner.as_ref(), id)),
                    };
                    let f = file.enc.write_metadata(&m)?;
                    self.emit(f)?;
                }
            }
            Item::IfaceDown(idx) => {
                if let Some((iface, owner)) = self.ifaces.remove(&idx) {
                    let id = self.file.as_ref().and_then(|f| f.ids.get(&idx).copied());
                    let m = MetaRecord {
                        ts_ns: now_ns(),
                        op: MetaOp::Delete,
                        entity: Entity::Interface(iface_meta(&iface, owner.as_ref(), id)),
                    };
                    let file = self.open()?;
                    let f = file.enc.write_metadata(&m)?;
                    self.emit(f)?;
                }
            }
            Item::IfaceCounters(c) => self.counters = c,
            Item::Packet {
                ifindex,
                ts_ns,
                data,
                orig_len,
            } => {
                let file = self.open()?;
                let id = match file.ids.get(&ifindex).copied() {
                    Some(id) => id,
                    None => {
                        // A packet from an interface announced after the file's start (the
                        // interface is looked up, and cloned, only then: per packet, the
                        // clone's strings were two allocations and frees).
                        let known = self.ifaces.get(&ifindex).cloned();
                        let file = self.open()?;
                        let (iface, owner) = known.unwrap_or((
                            Iface {
                                ifindex,
                                name: format!("if{ifindex}"),
                                kind: None,
                                peer_ifindex: None,
                                peer_netnsid: None,
                            },
                            None,
                        ));
                        let (id, f) = file.enc.add_interface(&idb(&iface, owner.as_ref()))?;
                        file.ids.insert(ifindex, id);
                        self.emit(f)?;
                        id
                    }
                };
                let file = self.open()?;
                *file.delivered.entry(ifindex).or_default() += 1;
                let f = file.enc.write_packet(id, ts_ns, get(data), orig_len)?;
                self.emit(f)?;
            }
            Item::Socket(s) => {
                let ev = SocketEvent {
                    payload: get(s.payload),
                    ..s.ev
                };
                let file = self.open()?;
                let f = file.enc.write_record(&Record::Socket(ev))?;
                self.emit(f)?;
            }
            Item::Meta(m) => {
                let file = self.open()?;
                let f = file.enc.write_metadata(&m)?;
                self.emit(f)?;
            }
            Item::Stats(mut s) => {
                if let Some(r) = &self.redaction {
                    s.counters.extend(r.counters());
                }
                let file = self.open()?;
                let f = file.enc.write_stats(&s)?;
                self.emit(f)?;
            }
        }
        Ok(())
    }

    /// Cuts a frame if one has waited too long; rotates on size or age.
    fn tick(&mut self) -> Result<()> {
        let Some(file) = &mut self.file else {
            return Ok(());
        };
        if file.last_cut.elapsed() >= self.cfg.flush_every {
            let f = file.enc.take_frame();
            file.last_cut = Instant::now();
            self.emit(f)?;
        }
        if self.over_size()
            || self
                .file
                .as_ref()
                .is_some_and(|f| f.started.elapsed() >= self.cfg.rotate_every)
        {
            self.seal()?;
        }
        Ok(())
    }

    /// Whether the open file has reached the size: what is written, plus what is queued and
    /// pending counted as if it compressed 4:1. Two atomic loads: cheap enough per item.
    fn over_size(&self) -> bool {
        self.file.as_ref().is_some_and(|file| {
            self.written.load(Ordering::Relaxed)
                + self.queued.load(Ordering::Relaxed)
                + file.enc.pending_len() as u64 / 4
                >= self.cfg.max_file_size
        })
    }

    /// Writes the closing statistics, cuts the last frame, and has the writer seal the file.
    fn seal(&mut self) -> Result<()> {
        let Some(mut file) = self.file.take() else {
            return Ok(());
        };
        let end = now_ns();
        let mut frames = Vec::new();
        for (idx, id) in &file.ids {
            let (seen, dropped) = self.counters.get(idx).copied().unwrap_or((0, 0));
            let delivered = file.delivered.get(idx).copied().unwrap_or(0);
            frames.extend(file.enc.write_interface_stats(
                *id,
                &InterfaceStats {
                    start_ns: file.start_ns,
                    end_ns: end,
                    received: seen,
                    dropped,
                    delivered,
                },
            )?);
        }
        frames.extend(file.enc.take_frame());
        for f in frames {
            self.send_frame(f)?;
        }
        let from = self.cfg.out_dir.join(file.name.partial());
        let to = self.cfg.out_dir.join(file.name.sealed());
        self.previous = Some(file.name.sealed());
        self.send(ToWriter::Seal { from, to })?;
        self.seq += 1;
        Ok(())
    }
}

/// The bytes of `r` in a batch's buffer, to overwrite.
fn bytes_mut(bytes: &mut [u8], r: Bytes) -> &mut [u8] {
    bytes.get_mut(r.start..r.start + r.len).unwrap_or(&mut [])
}

fn idb(iface: &Iface, owner: Option<&IfaceOwner>) -> InterfaceDesc {
    InterfaceDesc {
        name: iface.name.clone(),
        description: owner.map(|o| o.description.clone()),
        linktype: 1,
        snaplen: juno_common::MAX_SNAPLEN as u32,
    }
}

fn iface_meta(iface: &Iface, owner: Option<&IfaceOwner>, pcapng_id: Option<u32>) -> InterfaceMeta {
    InterfaceMeta {
        ifindex: iface.ifindex,
        netns: crate::node::own_netns(),
        name: iface.name.clone(),
        pcapng_id,
        peer_ifindex: iface.peer_ifindex,
        peer_netns: owner.and_then(|o| o.peer_netns),
        pod_uid: owner.and_then(|o| o.pod_uid.clone()),
        addrs: owner.map(|o| o.addrs.clone()).unwrap_or_default(),
    }
}

fn writer_loop(
    cfg: OutputConfig,
    rx: Receiver<ToWriter>,
    written: Arc<AtomicU64>,
    queued: Arc<AtomicU64>,
) -> Result<OutputReport> {
    let mut report = OutputReport::default();
    let mut file: Option<(PathBuf, FileOut)> = None;
    let mut buf = Vec::new();
    let mut compressor = juno_archive::frame::FrameCompressor::new(cfg.level, cfg.frame_size)?;
    for m in rx {
        match m {
            ToWriter::Open(path) => {
                let f = OpenOptions::new()
                    .write(true)
                    .create_new(true)
                    .mode(0o600)
                    .open(&path)
                    .with_context(|| format!("cannot create {}", path.display()))?;
                let out = FileOut::new(f, &cfg.encrypt_to)
                    .with_context(|| format!("cannot start encrypting {}", path.display()))?;
                file = Some((path, out));
            }
            ToWriter::Frame(frame) => {
                queued.fetch_sub(frame.content.len() as u64, Ordering::Relaxed);
                let Some((path, f)) = &mut file else { continue };
                buf.clear();
                frame.compress_into(&mut compressor, &mut buf)?;
                f.write_all(&buf)
                    .with_context(|| format!("writing {}", path.display()))?;
                written.fetch_add(buf.len() as u64, Ordering::Relaxed);
            }
            ToWriter::Seal { from, to } => {
                if let Some((path, out)) = file.take() {
                    let f = out
                        .finish()
                        .with_context(|| format!("finishing {}", path.display()))?;
                    f.sync_all()
                        .with_context(|| format!("syncing {}", path.display()))?;
                    drop(f);
                    std::fs::rename(&from, &to)
                        .with_context(|| format!("sealing {}", from.display()))?;
                    if let Ok(d) = File::open(&cfg.out_dir) {
                        let _ = d.sync_all();
                    }
                    report.sealed.push(to);
                    report
                        .deleted
                        .extend(retention(&cfg.out_dir, &cfg.node, cfg.max_total_size)?);
                }
            }
        }
    }
    Ok(report)
}

/// An archive file being written: plain, or one age stream to the recipients (the whole
/// file is encrypted as one: `age -d FILE | zstd -dc` opens it, and the frame index inside
/// is intact once decrypted; age's own 64 KiB chunks are authenticated one by one, so a file
/// cut short decrypts up to its last whole chunk).
enum FileOut {
    Plain(File),
    Age(age::stream::StreamWriter<File>),
}

impl FileOut {
    fn new(f: File, recipients: &[age::x25519::Recipient]) -> std::io::Result<Self> {
        if recipients.is_empty() {
            return Ok(FileOut::Plain(f));
        }
        let enc =
            age::Encryptor::with_recipients(recipients.iter().map(|r| r as &dyn age::Recipient))
                .map_err(|e| std::io::Error::other(e.to_string()))?;
        Ok(FileOut::Age(enc.wrap_output(f)?))
    }

    fn write_all(&mut self, b: &[u8]) -> std::io::Result<()> {
        match self {
            FileOut::Plain(f) => f.write_all(b),
            FileOut::Age(w) => w.write_all(b),
        }
    }

    /// Writes what the encryption holds back (its last chunk) and returns the file.
    fn finish(self) -> std::io::Result<File> {
        match self {
            FileOut::Plain(f) => Ok(f),
            FileOut::Age(w) => w.finish(),
        }
    }
}

/// Deletes this node's oldest sealed archives while all of its archives (sealed and in
/// progress) take more than `max_total` bytes. The newest sealed file is always kept.
pub fn retention(dir: &Path, node: &str, max_total: u64) -> Result<Vec<PathBuf>> {
    let node = sanitize_node(node);
    let mut sealed: Vec<(String, u64)> = Vec::new();
    let mut total = 0u64;
    for e in std::fs::read_dir(dir)?.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        let Some((n, partial)) = ArchiveName::parse(&name) else {
            continue;
        };
        if n.node != node {
            continue;
        }
        let size = e.metadata().map(|m| m.len()).unwrap_or(0);
        total += size;
        if !partial {
            sealed.push((name, size));
        }
    }
    sealed.sort();
    let mut deleted = Vec::new();
    let keep_newest = 1;
    let mut i = 0;
    while total > max_total && sealed.len() - i > keep_newest {
        let (name, size) = &sealed[i];
        let p = dir.join(name);
        std::fs::remove_file(&p).with_context(|| format!("deleting {}", p.display()))?;
        total -= size;
        deleted.push(p);
        i += 1;
    }
    Ok(deleted)
}

/// Counters as a stats record.
pub fn stats_record(
    ts_ns: u64,
    kernel: &crate::kernel::Counters,
    queue_dropped: u64,
    events: u64,
) -> StatsRecord {
    let mut counters = Vec::new();
    for (cpu, vals) in kernel.per_cpu.iter().enumerate() {
        for (i, name) in juno_common::counter::NAMES.iter().enumerate() {
            if vals[i] != 0 {
                counters.push(Counter {
                    name: (*name).to_string(),
                    cpu: u32::try_from(cpu).ok(),
                    value: vals[i],
                });
            }
        }
    }
    counters.push(Counter {
        name: "queue_dropped".into(),
        cpu: None,
        value: queue_dropped,
    });
    counters.push(Counter {
        name: "events_read".into(),
        cpu: None,
        value: events,
    });
    StatsRecord { ts_ns, counters }
}

/// Suffixes, for callers that list archives.
pub const SEALED_SUFFIX: &str = SUFFIX;
/// In-progress suffix.
pub const IN_PROGRESS_SUFFIX: &str = PARTIAL_SUFFIX;
