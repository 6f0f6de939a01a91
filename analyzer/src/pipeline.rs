//! The pipeline: read → decode → reassemble → parse → match → sinks.
//!
//! A reader thread produces time-ordered batches. For each batch, packets are decoded in
//! parallel (rayon) and routed to shards by a direction-independent hash of their 5-tuple
//! (the inner one, for tunnelled packets); IP fragments are then fed, in order, to one
//! reassembler, and each datagram it completes is routed like a packet, in the place of the
//! fragment that completed it. A batch whose packets are not in time order (a file written out
//! of order, reversed) is processed in time order (a stable sort: packets out of order by more
//! than a batch stay so). Shards then run in parallel, each owning its connections (reassembly, parsing and matching
//! need no locks). Exchanges and connection summaries finished in a batch are sorted (so output
//! is the same whatever the thread count) and handed to the sinks on the calling thread.
//!
//! Memory is bounded by one number, the [`Budget`] (`--memory`): every table, queue, buffer
//! and window takes its share of it (see [`Budget`] for the shares), and what a share cuts is
//! counted in the [`RunSummary`] and written as notices (Zeek's `weird.log`).

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Result, anyhow};
use rayon::prelude::*;
use rustc_hash::FxHashMap;

use crate::conn::session::{DETECT_LIMIT, L7Stats, Notice};
use crate::conn::sockets::SocketStats;
use crate::conn::views::{LinkStats, LinkedConn, Linker};
use crate::conn::{FlowConfig, FlowStats, Shard};
use crate::decode::defrag::{Datagram, Defrag, DefragConfig, DefragStats};
use crate::decode::{self, Decoded, Frame, Skip};
use crate::enrich::{MetaIndex, MetaStats};
use crate::input::{Batch, BatchItem, FileSummary, Iface, InputOptions, Inputs};
use crate::model::{
    ConnInfo, ConnKey, ConnSummary, Endpoint, Exchange, ReasmStats, Transport, Tunnel,
};

/// Receives what the pipeline produces, in batches.
pub trait Sink {
    /// Exchanges finished in a batch, sorted by time, connection and depth. `ifaces` is the
    /// interface table so far (exchanges refer to interfaces by index).
    fn exchanges(&mut self, ex: &[&Exchange], ifaces: &[Iface]) -> Result<()>;
    /// Connections finished in a batch.
    fn connections(&mut self, _c: &[ConnSummary]) -> Result<()> {
        Ok(())
    }
    /// Connections with every view of them (vantage points), once no other view can join
    /// (`conn::views`), in the order their first views opened.
    fn linked(&mut self, _l: &[LinkedConn], _ifaces: &[Iface]) -> Result<()> {
        Ok(())
    }
    /// Anomalies and cuts noticed in a batch (what Zeek writes to `weird.log`), sorted by
    /// time.
    fn notices(&mut self, _n: &[Notice]) -> Result<()> {
        Ok(())
    }
    /// Everything has been read.
    fn finish(&mut self, _s: &RunSummary) -> Result<()> {
        Ok(())
    }
    /// What the sink's own memory bound cut, by name (for the run's summary).
    fn cuts(&self) -> Vec<(&'static str, u64)> {
        Vec::new()
    }
}

/// Drop statistics of an interface, from Interface Statistics Blocks (last reading).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct IfaceDrops {
    /// Packets the capture hook saw.
    pub received: Option<u64>,
    /// Packets lost before reaching the file.
    pub dropped: Option<u64>,
}

/// Per-interface packet counts.
#[derive(Clone, Debug, Default)]
pub struct IfaceCounts {
    /// The interface.
    pub iface: Option<Iface>,
    /// Packets read.
    pub packets: u64,
    /// Captured bytes.
    pub bytes: u64,
    /// Drops reported by the capture.
    pub drops: IfaceDrops,
}

/// Everything counted during a run.
#[derive(Debug, Default)]
pub struct RunSummary {
    /// The memory budget, bytes.
    pub memory: u64,
    /// Input files, in the order they were finished.
    pub files: Vec<FileSummary>,
    /// Inputs not read (in directories, or not openable when their turn came), and why.
    pub skipped: Vec<(PathBuf, String)>,
    /// What the walk of directories passed over without loss (a file named twice, a
    /// directory reached again through a symbolic link).
    pub notes: Vec<(PathBuf, String)>,
    /// Files opened after later packets of other files had been read: more files overlapped
    /// in time than the memory budget and the open-file limit let be open at once.
    pub files_waited: u64,
    /// Files that could be open at once.
    pub max_open_files: usize,
    /// Interfaces, by global index.
    pub ifaces: Vec<IfaceCounts>,
    /// Packets read.
    pub packets: u64,
    /// Captured bytes read.
    pub bytes: u64,
    /// Earliest and latest packet time.
    pub first_ts: Option<u64>,
    /// Latest packet time.
    pub last_ts: Option<u64>,
    /// Packets not analyzed, by reason.
    pub skipped_packets: FxHashMap<&'static str, u64>,
    /// Packets of link types the decoder does not read, by link type.
    pub unknown_linktypes: std::collections::BTreeMap<u32, u64>,
    /// IP fragment reassembly counters.
    pub defrag: DefragStats,
    /// Socket events read (Juno archives).
    pub socket_events: u64,
    /// Metadata records read.
    pub metadata_records: u64,
    /// Recorder counters (last value per name and CPU), from Juno archives.
    pub recorder_counters: FxHashMap<(String, Option<u32>), u64>,
    /// Flow counters.
    pub flows: FlowStats,
    /// Reassembly counters.
    pub reasm: ReasmStats,
    /// Parser and matching counters.
    pub l7: L7Stats,
    /// Socket stream counters (Juno archives).
    pub sockets: SocketStats,
    /// Views of one connection linked across vantage points, and what the linker's bound cut.
    pub links: LinkStats,
    /// Metadata index counters (Juno archives).
    pub meta: MetaStats,
    /// Notices written (anomalies and cuts).
    pub notices: u64,
    /// Exchanges produced.
    pub exchanges: u64,
    /// Nodes the Juno archives were recorded on (at most 1,024 names).
    pub nodes: std::collections::BTreeSet<String>,
    /// The redaction policies the Juno archives say they were recorded with (`off`, or the
    /// rules and lists; at most 16 distinct).
    pub recorded_redaction: std::collections::BTreeSet<String>,
    /// What `--redact` overwrote while reading, when it was on.
    pub redaction: Option<juno_redact::Counts>,
    /// Where the run's wall time went.
    pub stages: StageTimes,
}

/// Where a run's wall time went, step by step, as the thread that drives the batches saw it
/// (`summary.json`'s `wall_time_us`). A batch goes through the steps in this order, each
/// waiting for the one before; "parallel" steps keep the pool's threads busy, the others run
/// on the driving thread alone while the pool waits. What the steps do not add up to of
/// `total` is setting up and winding down (opening the sinks, joining the reader).
#[derive(Clone, Copy, Debug, Default)]
pub struct StageTimes {
    /// The whole run.
    pub total: Duration,
    /// Waiting for the reader thread's next batch (reading and decompressing files is not
    /// counted here unless the analysis had to wait for it).
    pub input_wait: Duration,
    /// Counting the batch's packets, decoding link, IP and transport headers (parallel) and
    /// reassembling IP fragments (serial).
    pub decode: Duration,
    /// TCP reassembly, the protocol parsers and matching, shard by shard (parallel), and at
    /// the end of input the ending of every connection.
    pub connections: Duration,
    /// Gathering the shards' exchanges, linking vantage points, sorting into time order and
    /// adding metadata (serial).
    pub order: Duration,
    /// The sinks: formatting (in parallel where the sink does: Zeek logs, JSON lines) and
    /// writing, or handing the lines to the logs' writer threads (`sink::background`), and
    /// the wait for those at the end.
    pub output: Duration,
    /// Freeing the batch's exchanges and connections once written (serial).
    pub free: Duration,
}

impl RunSummary {
    /// Whether some input was damaged, cut short or not read: a file warned, or was skipped.
    /// (The exit status says so: docs in the README.)
    pub fn input_damaged(&self) -> bool {
        !self.skipped.is_empty()
            || self
                .files
                .iter()
                .any(|f| !f.warnings.is_empty() || f.stats.blocks.damaged())
    }

    /// What the memory budget cut, by name, with the count (zeros included).
    pub fn cuts(&self) -> Vec<(&'static str, u64)> {
        vec![
            ("connections_evicted", self.flows.evicted),
            ("detection_buffers_full", self.l7.detection_cut),
            ("reassembly_buffer_overflows", self.reasm.ooo_overflows),
            ("matcher_records_written_early", self.l7.matching.overflow),
            ("metadata_addresses_dropped", self.meta.addrs_dropped),
            ("metadata_claims_dropped", self.meta.claims_dropped),
            ("metadata_pods_dropped", self.meta.pods_dropped),
            ("ip_datagrams_evicted", self.defrag.evicted),
            ("files_opened_late", self.files_waited),
            ("connection_views_unlinked", self.links.views_unlinked),
            ("connection_links_cut_short", self.links.groups_cut),
        ]
    }

    /// What the decode stage could not do, as sentences for a warning: packets of link types
    /// it does not read (named), IP datagrams dropped incomplete, overlapping fragments.
    pub fn decode_warnings(&self) -> Vec<String> {
        let mut w: Vec<String> = self
            .unknown_linktypes
            .iter()
            .map(|(lt, n)| {
                let name = decode::linktype_name(*lt).unwrap_or_else(|| "unassigned".into());
                format!("{n} packets of link type {lt} ({name}) not analyzed: the decoder does not read it")
            })
            .collect();
        if let Some(n) = self.skipped_packets.get(Skip::BadIpChecksum.name()) {
            w.push(format!(
                "{n} IPv4 packets skipped: their header checksum is wrong (routers and hosts drop them, and so does Zeek without -C; a capture taken on a host that offloads checksums to its NIC shows its own packets so: --ignore-checksums reads them)"
            ));
        }
        let d = &self.defrag;
        if d.dropped() > 0 {
            w.push(format!(
                "{} fragmented IP datagrams not reassembled ({} fragments): timed out {}, evicted {}, too big {}, inconsistent {}, incomplete at the end {}",
                d.dropped(),
                d.dropped_fragments,
                d.timed_out,
                d.evicted,
                d.too_big,
                d.inconsistent,
                d.incomplete_at_end
            ));
        }
        if d.overlaps > 0 {
            w.push(format!(
                "{} IP fragments overlapped others ({} with different bytes; the first copy was kept)",
                d.overlaps, d.overlap_conflicts
            ));
        }
        w
    }
}

/// Shards at most: enough to balance many cores, few enough to be cheap.
pub const DEFAULT_SHARDS: usize = 64;

/// The memory budget: one number (`--memory`), from which every bounded structure takes its
/// share. Of the total:
///
/// | share | for |
/// |---|---|
/// | 30% | connections: packet and socket tables, sessions (detection buffers), parser and matcher state; split across shards |
/// | 8% | TCP out-of-order data held for reassembly; split across shards |
/// | 12% | input: open files' chunks, decompressors and Juno frame windows (which also bounds the files open at once) |
/// | 10% | the report's and the graph's keys, edges and histograms |
/// | 5% | the Kubernetes metadata index |
/// | 3%, at most 32 MiB | IP fragments held for reassembly |
/// | the rest | batches in flight (captured bytes per batch: 1/256 of the total) and the exchanges they produce, output buffers, thread stacks, the allocator's slack, the program itself |
///
/// What a share cuts is counted ([`RunSummary::cuts`], the sinks' `cuts`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Budget {
    /// Bytes in all.
    pub total: u64,
}

impl Default for Budget {
    fn default() -> Self {
        Budget {
            total: Budget::DEFAULT,
        }
    }
}

impl Budget {
    /// The default: 1 GiB.
    pub const DEFAULT: u64 = 1 << 30;
    /// The least accepted: below it, the fixed costs (the program, threads) leave nothing.
    pub const MIN: u64 = 64 << 20;

    fn pct(&self, p: u64) -> usize {
        usize::try_from(self.total / 100 * p).unwrap_or(usize::MAX)
    }
    /// Connections, sessions, parser and matcher state.
    pub fn connections(&self) -> usize {
        self.pct(30)
    }
    /// Out-of-order TCP data.
    pub fn reorder(&self) -> usize {
        self.pct(8)
    }
    /// Open files.
    pub fn input(&self) -> usize {
        self.pct(12)
    }
    /// The report and the graph (each sink that keeps aggregates gets this share).
    pub fn sinks(&self) -> usize {
        self.pct(10)
    }
    /// The metadata index.
    pub fn metadata(&self) -> usize {
        self.pct(5)
    }
    /// IP fragments held for reassembly: 3%, at most 32 MiB (what a datagram needs is at most
    /// 64 KiB; fragments of many datagrams at once are rare outside an attack).
    pub fn fragments(&self) -> usize {
        self.pct(3).min(32 << 20)
    }
    /// Captured bytes per batch.
    pub fn batch_bytes(&self) -> usize {
        usize::try_from(self.total / 256)
            .unwrap_or(usize::MAX)
            .clamp(256 << 10, 32 << 20)
    }
    /// Shards: up to [`DEFAULT_SHARDS`], fewer for small budgets so that each shard's share of
    /// the connections' memory stays at least 4 MiB.
    pub fn shards(&self) -> usize {
        (self.connections() / (4 << 20)).clamp(4, DEFAULT_SHARDS)
    }
}

/// Run options.
#[derive(Clone, Debug)]
pub struct Config {
    /// The memory budget the other fields were derived from.
    pub budget: Budget,
    /// Shards (0: from the budget).
    pub shards: usize,
    /// Flow timeouts and bounds (per shard).
    pub flow: FlowConfig,
    /// What the reader may hold.
    pub input: InputOptions,
    /// IP fragment reassembly bounds.
    pub defrag: DefragConfig,
    /// How packets are decoded (`--ignore-checksums`).
    pub decode: decode::Options,
    /// Show a progress bar on stderr (only if it is a terminal).
    pub progress: bool,
    /// Redact payload as it is read (`--redact`), with this policy.
    pub redact: Option<juno_redact::Policy>,
    /// age identity files to decrypt encrypted archives with (`--identity`).
    pub identities: Vec<std::path::PathBuf>,
}

impl Default for Config {
    fn default() -> Self {
        Config::with_budget(Budget::default())
    }
}

impl Config {
    /// Options whose bounds are the shares of `budget`.
    pub fn with_budget(budget: Budget) -> Self {
        let shards = budget.shards();
        let conn_memory = budget.connections() / shards;
        let ooo = budget.reorder() / shards;
        let batch_bytes = budget.batch_bytes();
        Config {
            budget,
            shards,
            flow: FlowConfig {
                ooo_limit: ooo,
                ooo_per_direction: (2 << 20).min(ooo / 2),
                conn_memory,
                detect_limit: DETECT_LIMIT.min(conn_memory / 16),
                ..FlowConfig::default()
            },
            input: InputOptions {
                memory: budget.input(),
                max_open: 0,
                batch_bytes,
                batch_packets: crate::input::BATCH_PACKETS,
            },
            defrag: DefragConfig {
                max_bytes: budget.fragments(),
                ..DefragConfig::default()
            },
            decode: decode::Options::default(),
            progress: false,
            redact: None,
            identities: Vec::new(),
        }
    }
}

/// One decoded packet, routed to a shard.
/// (A socket event when `decoded` is `None`.)
struct Work {
    item: u32,
    /// Position in the batch's processing order.
    rank: u32,
    decoded: Option<DecodedOwnedRef>,
}

/// A decoded packet whose payload is referenced by offset into the batch (so decoding can
/// run on other threads than processing without copying payloads).
#[derive(Clone, Copy)]
struct DecodedOwnedRef {
    src: Endpoint,
    dst: Endpoint,
    transport: Transport,
    seq: u32,
    ack: u32,
    flags: u8,
    payload_off: u32,
    payload_len: u32,
    wire_len: u32,
    ip_len: u32,
    window: u16,
    tunnel: Option<Tunnel>,
    /// Where the payload is: 0 the frame, `n` the batch's `n`-th reassembled datagram.
    buf: u32,
}

impl DecodedOwnedRef {
    /// `d`, whose payload lies in `base`, routed to its shard.
    fn route(d: &Decoded<'_>, base: &[u8], buf: u32, nshards: usize) -> (usize, Self) {
        let key = ConnKey::new(d.src, d.dst, d.transport);
        let shard = (key.shard_hash() % nshards as u64) as usize;
        let payload_off = (d.payload.as_ptr() as usize - base.as_ptr() as usize) as u32;
        (
            shard,
            DecodedOwnedRef {
                src: d.src,
                dst: d.dst,
                transport: d.transport,
                seq: d.seq,
                ack: d.ack,
                flags: d.flags,
                payload_off,
                payload_len: d.payload.len() as u32,
                wire_len: d.wire_len,
                ip_len: d.ip_len,
                window: d.window,
                tunnel: d.tunnel,
                buf,
            },
        )
    }
}

#[derive(Default)]
struct DecodeResult {
    per_shard: Vec<Vec<Work>>,
    skipped: FxHashMap<Skip, u64>,
    unknown_linktypes: FxHashMap<u32, u64>,
    /// Items that are IP fragments, for the reassembler, with their rank.
    fragments: Vec<(u32, u32)>,
}

/// Decodes the items `order[..]` (item indices; the first has rank `first_rank`).
fn decode_chunk(
    batch: &Batch,
    ifaces: &[Iface],
    (order, first_rank): (&[u32], usize),
    nshards: usize,
    opts: decode::Options,
) -> DecodeResult {
    let mut r = DecodeResult {
        per_shard: (0..nshards).map(|_| Vec::new()).collect(),
        ..Default::default()
    };
    for (j, &item) in order.iter().enumerate() {
        let (i, rank) = (item as usize, (first_rank + j) as u32);
        let p = match &batch.items[i] {
            BatchItem::Packet(p) => p,
            BatchItem::Socket(s) => {
                // A socket's events all go to one shard.
                let h = (s.ev.cookie ^ u64::from(s.ev.netns).rotate_left(32))
                    .wrapping_mul(0x9E37_79B9_7F4A_7C15);
                r.per_shard[(h >> 32) as usize % nshards].push(Work {
                    item,
                    rank,
                    decoded: None,
                });
                continue;
            }
            _ => continue,
        };
        let Some(iface) = ifaces.get(p.iface as usize) else {
            continue;
        };
        let data = batch.packet_data(p);
        match decode::decode_frame_with(iface.linktype, data, opts) {
            Ok(Frame::Packet(d)) => {
                let (shard, o) = DecodedOwnedRef::route(&d, data, 0, nshards);
                r.per_shard[shard].push(Work {
                    item,
                    rank,
                    decoded: Some(o),
                });
            }
            Ok(Frame::Fragment(_)) => r.fragments.push((item, rank)),
            Err(s) => {
                if s == Skip::UnknownLinktype {
                    *r.unknown_linktypes.entry(iface.linktype).or_default() += 1;
                }
                *r.skipped.entry(s).or_default() += 1;
            }
        }
    }
    r
}

/// Feeds the batch's IP fragments, in processing order, to the reassembler; each datagram it
/// completes is decoded and put in its shard's list in the place of the fragment that
/// completed it. Returns the datagrams (payloads the work items point into).
fn reassemble(
    batch: &Batch,
    ifaces: &[Iface],
    decoded: &mut [DecodeResult],
    defrag: &mut Defrag,
    skipped: &mut FxHashMap<&'static str, u64>,
    opts: decode::Options,
) -> Vec<Datagram> {
    let mut datagrams: Vec<Datagram> = Vec::new();
    for d in decoded.iter_mut() {
        let nshards = d.per_shard.len();
        for (item, rank) in std::mem::take(&mut d.fragments) {
            let BatchItem::Packet(p) = &batch.items[item as usize] else {
                continue;
            };
            let Some(iface) = ifaces.get(p.iface as usize) else {
                continue;
            };
            let Ok(Frame::Fragment(f)) =
                decode::decode_frame_with(iface.linktype, batch.packet_data(p), opts)
            else {
                continue;
            };
            let mut done = defrag.add(p.iface, p.ts, &f);
            // A datagram may hold a tunnel whose inner packet is a fragment again: bounded by
            // the tunnel nesting limit.
            while let Some(dg) = done.take() {
                match decode::decode_datagram(&dg, opts) {
                    Ok(Frame::Packet(dp)) => {
                        let buf = datagrams.len() as u32 + 1;
                        let (shard, o) = DecodedOwnedRef::route(&dp, &dg.payload, buf, nshards);
                        let list = &mut d.per_shard[shard];
                        let at = list.partition_point(|w| w.rank < rank);
                        list.insert(
                            at,
                            Work {
                                item,
                                rank,
                                decoded: Some(o),
                            },
                        );
                        datagrams.push(dg);
                    }
                    Ok(Frame::Fragment(inner)) => done = defrag.add(p.iface, p.ts, &inner),
                    Err(s) => *skipped.entry(s.name()).or_default() += 1,
                }
            }
        }
    }
    datagrams
}

/// Runs the whole analysis.
pub fn run(mut inputs: Inputs, cfg: &Config, sink: &mut dyn Sink) -> Result<RunSummary> {
    let started = Instant::now();
    inputs.set_redaction(cfg.redact.clone());
    // A fixed number of shards, whatever the thread count: results must not depend on it.
    let nshards = if cfg.shards == 0 {
        cfg.budget.shards()
    } else {
        cfg.shards
    };
    let mut shards: Vec<Shard> = (0..nshards).map(|_| Shard::new(cfg.flow)).collect();
    let mut defrag = Defrag::new(cfg.defrag);
    let mut linker = Linker::new(cfg.budget.connections() / 10);
    let mut summary = RunSummary {
        memory: cfg.budget.total,
        skipped: inputs.skipped.clone(),
        notes: inputs.notes.clone(),
        ..Default::default()
    };
    let mut ifaces: Vec<Iface> = Vec::new();
    let mut meta = MetaIndex::with_memory(cfg.budget.metadata());
    // Notices for what the walk skipped come first.
    let walk_notices: Vec<Notice> = summary
        .skipped
        .iter()
        .map(|(p, why)| input_notice("input_file_skipped", p, why))
        .collect();
    if !walk_notices.is_empty() {
        summary.notices += walk_notices.len() as u64;
        sink.notices(&walk_notices)?;
    }

    let progress =
        crate::progress::Bar::new(cfg.progress, inputs.total_bytes, inputs.progress.clone());
    let (tx, rx) = crossbeam_channel::bounded::<Batch>(2);
    let reader = std::thread::Builder::new()
        .name("juno-reader".into())
        .spawn(move || inputs.read(|b| tx.send(b).is_ok()))?;

    let mut result = Ok(());
    let mut waited = Instant::now();
    for batch in rx.iter() {
        summary.stages.input_wait += waited.elapsed();
        let done = process_batch(
            &batch,
            &mut ifaces,
            &mut meta,
            (shards.as_mut_slice(), &mut defrag, &mut linker),
            &mut summary,
            sink,
            cfg.decode,
        );
        if let Err(e) = done {
            result = Err(e);
            break;
        }
        progress.tick();
        waited = Instant::now();
    }
    drop(rx);
    let read_result = reader
        .join()
        .map_err(|_| anyhow!("the reader thread panicked"))?;
    result?;
    let read = read_result?;
    summary.files_waited = read.waited;
    summary.max_open_files = read.max_open;
    summary.redaction = read.redaction;

    defrag.finish();
    summary.defrag = defrag.stats;
    let ending = Instant::now();
    shards.par_iter_mut().for_each(Shard::finish_all);
    summary.stages.connections += ending.elapsed();
    flush(&mut shards, &ifaces, &meta, &mut summary, sink, &mut linker)?;
    summary.links = linker.stats;
    for s in &shards {
        summary.flows.add(&s.stats());
        summary.reasm.add(s.reasm());
        summary.l7.add(&s.ctx.stats);
        summary.sockets.add(s.socket_stats());
    }
    summary.meta = meta.stats;
    progress.finish();
    let finishing = Instant::now();
    sink.finish(&summary)?;
    summary.stages.output += finishing.elapsed();
    summary.stages.total = started.elapsed();
    Ok(summary)
}

fn input_notice(name: &'static str, path: &std::path::Path, what: &str) -> Notice {
    Notice {
        ts: 0,
        conn: None,
        name,
        addl: format!("{}: {what}", path.display()),
        source: "input",
    }
}

fn process_batch(
    batch: &Batch,
    ifaces: &mut Vec<Iface>,
    meta: &mut MetaIndex,
    (shards, defrag, linker): (&mut [Shard], &mut Defrag, &mut Linker),
    summary: &mut RunSummary,
    sink: &mut dyn Sink,
    opts: decode::Options,
) -> Result<()> {
    for i in &batch.new_ifaces {
        ifaces.push(i.clone());
        summary.ifaces.push(IfaceCounts {
            iface: Some(i.clone()),
            ..Default::default()
        });
    }
    summary.files.extend(batch.files_done.iter().cloned());
    summary.skipped.extend(batch.skipped.iter().cloned());
    let mut input_notices: Vec<Notice> = Vec::new();
    for f in &batch.files_done {
        for w in &f.warnings {
            input_notices.push(input_notice("input_file_damaged", &f.path, w));
        }
    }
    for (p, why) in &batch.skipped {
        input_notices.push(input_notice("input_file_skipped", p, why));
    }

    let decoding = Instant::now();
    // Sequential bookkeeping of non-packet items and counts (cheap).
    for item in &batch.items {
        match item {
            BatchItem::Packet(p) => {
                summary.packets += 1;
                summary.bytes += u64::from(p.len);
                if p.ts != 0 {
                    summary.first_ts = Some(summary.first_ts.map_or(p.ts, |f| f.min(p.ts)));
                    summary.last_ts = Some(summary.last_ts.map_or(p.ts, |l| l.max(p.ts)));
                }
                if let Some(c) = summary.ifaces.get_mut(p.iface as usize) {
                    c.packets += 1;
                    c.bytes += u64::from(p.len);
                }
            }
            BatchItem::IfaceStats(i, s) => {
                if let Some(c) = summary.ifaces.get_mut(*i as usize) {
                    c.drops = IfaceDrops {
                        received: s.received,
                        dropped: s.dropped,
                    };
                }
            }
            BatchItem::Socket(_) => summary.socket_events += 1,
            BatchItem::Meta(_, m) => {
                summary.metadata_records += 1;
                meta.apply(m);
            }
            BatchItem::RecorderStats(_, s) => {
                for c in &s.counters {
                    summary
                        .recorder_counters
                        .insert((c.name.clone(), c.cpu), c.value);
                }
            }
            BatchItem::FileInfo(_, f) => {
                if summary.nodes.len() < 1024 && !f.node.is_empty() {
                    summary.nodes.insert(f.node.clone());
                }
                if let Some(p) = &f.redaction
                    && summary.recorded_redaction.len() < 16
                {
                    summary.recorded_redaction.insert(p.clone());
                }
            }
        }
    }

    // Decode in parallel, in contiguous chunks of the processing order so that per-shard order
    // is that order: the file's, or time order when the file's is not.
    let nshards = shards.len();
    let order = processing_order(batch);
    let chunk = 2048usize;
    let mut decoded: Vec<DecodeResult> = order
        .par_chunks(chunk)
        .enumerate()
        .map(|(c, items)| decode_chunk(batch, ifaces, (items, c * chunk), nshards, opts))
        .collect();
    for d in &decoded {
        for (k, v) in &d.skipped {
            *summary.skipped_packets.entry(k.name()).or_default() += v;
        }
        for (k, v) in &d.unknown_linktypes {
            *summary.unknown_linktypes.entry(*k).or_default() += v;
        }
    }
    let datagrams = reassemble(
        batch,
        ifaces,
        &mut decoded,
        defrag,
        &mut summary.skipped_packets,
        opts,
    );
    defrag.sweep(summary.last_ts.unwrap_or(0));

    // Process shards in parallel.
    let processing = Instant::now();
    summary.stages.decode += processing - decoding;
    let now = summary.last_ts.unwrap_or(0);
    shards.par_iter_mut().enumerate().for_each(|(si, shard)| {
        for d in &decoded {
            for w in &d.per_shard[si] {
                let (p, o) = match (&batch.items[w.item as usize], &w.decoded) {
                    (BatchItem::Packet(p), Some(o)) => (p, o),
                    (BatchItem::Socket(s), None) => {
                        shard.socket(&s.ev, batch.socket_payload(s));
                        continue;
                    }
                    _ => continue,
                };
                let data = match o.buf {
                    0 => batch.packet_data(p),
                    n => datagrams[n as usize - 1].payload.as_slice(),
                };
                let start = o.payload_off as usize;
                let dec = Decoded {
                    src: o.src,
                    dst: o.dst,
                    transport: o.transport,
                    seq: o.seq,
                    ack: o.ack,
                    flags: o.flags,
                    payload: &data[start..start + o.payload_len as usize],
                    wire_len: o.wire_len,
                    ip_len: o.ip_len,
                    window: o.window,
                    tunnel: o.tunnel,
                };
                shard.packet(p.ts, p.iface, &dec);
            }
        }
        shard.sweep(now);
    });
    summary.stages.connections += processing.elapsed();
    for n in &mut input_notices {
        n.ts = now;
    }
    flush_with(
        shards,
        ifaces,
        meta,
        summary,
        sink,
        (linker, input_notices, false),
    )
}

/// The order to process a batch's items in: as read, unless packets or socket events go back
/// in time, then sorted by time (stably: equal times keep the file's order).
fn processing_order(batch: &Batch) -> Vec<u32> {
    let ts = |i: &BatchItem| match i {
        BatchItem::Packet(p) => Some(p.ts),
        BatchItem::Socket(s) => Some(s.ev.ts_ns),
        _ => None,
    };
    let mut order: Vec<u32> = (0..batch.items.len() as u32).collect();
    let mut last = 0;
    let sorted = batch.items.iter().filter_map(ts).all(|t| {
        let ok = t >= last;
        last = t;
        ok
    });
    if !sorted {
        order.sort_by_key(|&i| ts(&batch.items[i as usize]).unwrap_or(0));
    }
    order
}

/// The last flush: every connection has ended.
fn flush(
    shards: &mut [Shard],
    ifaces: &[Iface],
    meta: &MetaIndex,
    summary: &mut RunSummary,
    sink: &mut dyn Sink,
    linker: &mut Linker,
) -> Result<()> {
    flush_with(
        shards,
        ifaces,
        meta,
        summary,
        sink,
        (linker, Vec::new(), true),
    )
}

fn flush_with(
    shards: &mut [Shard],
    ifaces: &[Iface],
    meta: &MetaIndex,
    summary: &mut RunSummary,
    sink: &mut dyn Sink,
    (linker, mut notices, last): (&mut Linker, Vec<Notice>, bool),
) -> Result<()> {
    let ordering = Instant::now();
    let mut noticing = Duration::ZERO;
    let mut conns: Vec<ConnSummary> = Vec::new();
    let mut opened: Vec<Arc<ConnInfo>> = Vec::new();
    for s in shards.iter_mut() {
        conns.append(&mut s.ended);
        notices.append(&mut s.ctx.notices);
        opened.append(&mut s.ctx.opened);
    }
    // One connection, many vantages: views opened in this batch join their connection (in
    // time order, so the result does not depend on sharding); exchanges and ended views take
    // its uid.
    opened.sort_by(|a, b| (a.first_ts, &a.uid).cmp(&(b.first_ts, &b.uid)));
    let mut linked = Vec::new();
    linker.open(&opened, &mut linked);
    for s in shards.iter_mut() {
        linker.exchanges(&mut s.ctx.exchanges);
    }
    linker.ended(&mut conns);
    linker.sweep((!last).then(|| summary.last_ts.unwrap_or(0)), &mut linked);
    if !notices.is_empty() {
        let uid = |n: &Notice| n.conn.as_ref().map(|c| c.uid.clone());
        notices
            .sort_by(|a, b| (a.ts, uid(a), a.name, &a.addl).cmp(&(b.ts, uid(b), b.name, &b.addl)));
        summary.notices += notices.len() as u64;
        let writing = Instant::now();
        sink.notices(&notices)?;
        noticing = writing.elapsed();
    }
    conns.sort_by(|a, b| (a.info.first_ts, &a.info.uid).cmp(&(b.info.first_ts, &b.info.uid)));
    if !meta.is_empty() {
        for e in shards.iter_mut().flat_map(|s| s.ctx.exchanges.iter_mut()) {
            meta.annotate(e);
        }
        for c in &mut conns {
            c.peers = meta.peers(&c.info, c.info.first_ts);
        }
    }
    // The batch's exchanges stay where their shards put them; the sinks get them in order
    // through references (an exchange is a couple of hundred bytes: gathering and sorting
    // the exchanges themselves moved each three times, on this thread alone). A stable sort
    // of the shards' lists in shard order: the same order whatever the thread count.
    let mut ex: Vec<&Exchange> = shards.iter().flat_map(|s| &s.ctx.exchanges).collect();
    ex.sort_by(|a, b| (a.ts(), &a.conn.uid, a.depth).cmp(&(b.ts(), &b.conn.uid, b.depth)));
    summary.exchanges += ex.len() as u64;
    let writing = Instant::now();
    summary.stages.order += (writing - ordering).saturating_sub(noticing);
    if !ex.is_empty() {
        sink.exchanges(&ex, ifaces)?;
    }
    if !conns.is_empty() {
        sink.connections(&conns)?;
    }
    if !linked.is_empty() {
        if !meta.is_empty() {
            for l in &mut linked {
                l.peers = meta.peers(&l.info, l.info.first_ts);
            }
        }
        sink.linked(&linked, ifaces)?;
    }
    let freeing = Instant::now();
    summary.stages.output += (freeing - writing) + noticing;
    drop(ex);
    for s in shards.iter_mut() {
        s.ctx.exchanges.clear();
    }
    drop(conns);
    drop(linked);
    summary.stages.free += freeing.elapsed();
    Ok(())
}
