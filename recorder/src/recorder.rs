//! The event loop: follows interfaces, drains the kernel's ring buffers, converts events into
//! archive items, and hands them to the output threads in batches. Generic over [`Kernel`] so
//! that tests drive it with a fake kernel, without root.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::Result;
use crossbeam_channel::{Receiver, TrySendError};
use juno_archive::{DataDirection, Entity, MetaOp, MetaRecord, SocketEvent, SocketEventKind};
use juno_common::{PacketHdr, SockHdr, counter};

use crate::ifaces::{Action, Change, IfaceOwner, Table};
use crate::kernel::{Event, Kernel};
use crate::meta::SnapshotIndex;
use crate::node::{CgroupIndex, ExistingConn};
use crate::output::{Batch, Bytes, Item, Msg, SocketItem, stats_record};

/// Maps kernel monotonic timestamps (`bpf_ktime_get_ns`) to wall-clock time.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Clock {
    /// CLOCK_REALTIME − CLOCK_MONOTONIC, ns.
    pub offset: i128,
}

impl Clock {
    /// Reads both clocks now.
    pub fn now() -> Self {
        use nix::time::{ClockId, clock_gettime};
        let ns = |c| {
            clock_gettime(c)
                .map(|t| i128::from(t.tv_sec()) * 1_000_000_000 + i128::from(t.tv_nsec()))
                .unwrap_or(0)
        };
        let mono = ns(ClockId::CLOCK_MONOTONIC);
        let real = ns(ClockId::CLOCK_REALTIME);
        Clock {
            offset: real - mono,
        }
    }

    /// Wall-clock ns for a monotonic ns.
    pub fn wall(&self, mono_ns: u64) -> u64 {
        u64::try_from(i128::from(mono_ns) + self.offset).unwrap_or(0)
    }

    /// Wall-clock time of boot (monotonic zero), ns.
    pub fn boot_time_ns(&self) -> u64 {
        u64::try_from(self.offset).unwrap_or(0)
    }
}

fn addr(family: u8, a: &[u8; 16], port: u16) -> SocketAddr {
    let ip = if family == 4 {
        IpAddr::V4(Ipv4Addr::new(a[0], a[1], a[2], a[3]))
    } else {
        IpAddr::V6(Ipv6Addr::from(*a))
    };
    SocketAddr::new(ip, port)
}

/// A kernel socket event as an archive socket event, its payload copied into `batch`.
pub fn socket_event(h: &SockHdr, payload: &[u8], clock: &Clock, batch: &mut Batch) -> Item {
    let payload = batch.push_bytes(payload);
    Item::Socket(SocketItem {
        ev: SocketEvent {
            ts_ns: clock.wall(h.ts_ns),
            kind: SocketEventKind::from(h.kind),
            direction: DataDirection::from(h.direction),
            ip_proto: 6,
            pid: h.pid,
            tid: h.tid,
            comm: h.comm,
            cgroup_id: h.cgroup_id,
            netns: h.netns,
            cookie: h.sk,
            local: addr(h.family, &h.laddr, h.lport),
            remote: addr(h.family, &h.raddr, h.rport),
            old_state: h.old_state,
            new_state: h.new_state,
            hook: h.hook,
            stream_offset: h.stream_offset,
            orig_len: h.orig_len,
            payload: &[],
        },
        payload,
    })
}

/// A kernel packet as an archive item, its bytes copied into `batch`.
pub fn packet_item(h: &PacketHdr, data: &[u8], clock: &Clock, batch: &mut Batch) -> Item {
    Item::Packet {
        ifindex: h.ifindex,
        ts_ns: clock.wall(h.ts_ns),
        data: batch.push_bytes(data),
        orig_len: h.orig_len,
    }
}

/// An existing connection as a socket event (its kernel cookie is unknown: 0).
pub fn existing_event(c: &ExistingConn, cgroup_id: u64, ts_ns: u64) -> Item {
    let mut comm = [0u8; 16];
    let n = c.comm.len().min(15);
    comm[..n].copy_from_slice(&c.comm.as_bytes()[..n]);
    Item::Socket(SocketItem {
        ev: SocketEvent {
            ts_ns,
            kind: SocketEventKind::Existing,
            direction: DataDirection::None,
            ip_proto: 6,
            pid: c.pid,
            tid: c.pid,
            comm,
            cgroup_id,
            netns: c.netns,
            cookie: 0,
            local: c.local,
            remote: c.remote,
            old_state: 0,
            new_state: 1,
            hook: juno_common::hook::PROC,
            stream_offset: juno_archive::record::OFFSET_UNKNOWN,
            orig_len: 0,
            payload: &[],
        },
        payload: Bytes::default(),
    })
}

/// Loop settings.
#[derive(Clone, Debug)]
pub struct LoopConfig {
    /// Stop after this long (None: until signalled).
    pub duration: Option<Duration>,
    /// Items per batch sent to the encoder.
    pub batch: usize,
    /// How often counters are read and written.
    pub stats_every: Duration,
    /// How often the recorder logs what it costs (its eBPF programs and its process).
    pub cost_every: Duration,
    /// The longest the loop waits for events before it drains the ring buffers anyway.
    pub drain_every: Duration,
    /// How the eBPF programs' cost is measured.
    pub self_cost: crate::cli::SelfCost,
}

/// How long the programs' statistics stay on after each reading with `--self-cost sampled`.
const COST_WINDOW: Duration = Duration::from_secs(1);

/// Signals the loop watches.
#[derive(Clone, Debug, Default)]
pub struct Signals {
    /// Stop (SIGTERM, SIGINT).
    pub stop: Arc<AtomicBool>,
    /// Seal the current file now (SIGUSR1).
    pub seal: Arc<AtomicBool>,
}

/// What happened during a run.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LoopReport {
    /// Events read from the kernel.
    pub events: u64,
    /// Items dropped because the output queue was full.
    pub queue_dropped: u64,
    /// Interfaces followed over the run (their programs attached when packets are recorded).
    pub attached: u64,
    /// Attach failures, with the reason.
    pub attach_errors: Vec<(String, String)>,
    /// The kernel's counters at their last reading, summed over CPUs (`counter::NAMES`).
    pub kernel: [u64; counter::COUNT as usize],
    /// What the whole run cost (first to last statistics reading).
    pub cost: Option<crate::cost::Cost>,
    /// TLS library files and Go program files probed over the run.
    pub tls_libs: u64,
}

impl LoopReport {
    /// Everything lost: ring buffer reservations that failed (packets, socket events) and
    /// items the output queue refused.
    pub fn dropped(&self) -> u64 {
        self.kernel[counter::PACKETS_RINGBUF_FULL as usize]
            + self.kernel[counter::SOCK_RINGBUF_FULL as usize]
            + self.queue_dropped
    }
}

/// Names an interface's owner (a pod) for its Interface Description and metadata; `None`
/// when unknown (yet: it is asked again when metadata changes, see [`Recorder::run`]).
pub type Describer = Box<dyn FnMut(&crate::ifaces::Iface) -> Option<IfaceOwner> + Send>;

/// Metadata records taken from a source's channel per loop turn at most, so that a re-list of
/// a large cluster cannot hold up draining the ring buffers for long.
const META_PER_TURN: usize = 4096;
/// How often the node's processes are looked at for TLS libraries not probed yet.
pub const TLS_SCAN_EVERY: Duration = Duration::from_secs(2);

/// The event loop.
pub struct Recorder<K: Kernel> {
    kernel: K,
    table: Table,
    tx: crossbeam_channel::Sender<Msg>,
    clock: Clock,
    cgroups: CgroupIndex,
    seen_cgroups: HashSet<u64>,
    /// cgroups of the socket events of one poll (reused).
    cgroups_seen: Vec<(u64, u64)>,
    snapshot: Arc<Mutex<Vec<Entity>>>,
    snapshot_index: SnapshotIndex,
    describe: Describer,
    /// The owners of captured interfaces, as last described.
    owners: HashMap<u32, IfaceOwner>,
    meta: Option<Receiver<MetaRecord>>,
    batch: Batch,
    recycled: Option<Receiver<Batch>>,
    report: LoopReport,
    /// Addresses of the sockets whose data events carry none.
    socks: crate::socks::SockAddrs,
    /// Packet records read, per interface index (counted per packet: Fx, not SipHash).
    iface_read: rustc_hash::FxHashMap<u32, u64>,
    /// Since when the programs' statistics are on (`None`: off), and for how long they were
    /// on before.
    stats_since: Option<Instant>,
    stats_measured: Duration,
    /// Cost readings: the first of the run, and the one the last cost line started from.
    cost_first: Option<crate::cost::Sample>,
    cost_logged: Option<crate::cost::Sample>,
    /// The TLS libraries to probe, when TLS plaintext is on, and when they were last looked
    /// for.
    tls: Option<(crate::tls::TlsLibs, Instant)>,
}

impl<K: Kernel> std::fmt::Debug for Recorder<K> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Recorder")
            .field("report", &self.report)
            .finish_non_exhaustive()
    }
}

impl<K: Kernel> Recorder<K> {
    /// A loop over `kernel`, sending to `tx`. `snapshot` is shared with the encoder: entities
    /// learnt here (containers) are restated at the start of every new file.
    pub fn new(
        kernel: K,
        table: Table,
        tx: crossbeam_channel::Sender<Msg>,
        cgroups: CgroupIndex,
        snapshot: Arc<Mutex<Vec<Entity>>>,
    ) -> Self {
        Recorder {
            kernel,
            table,
            tx,
            clock: Clock::now(),
            cgroups,
            seen_cgroups: HashSet::new(),
            cgroups_seen: Vec::new(),
            snapshot,
            snapshot_index: SnapshotIndex::default(),
            describe: Box::new(|_| None),
            owners: HashMap::new(),
            meta: None,
            batch: Batch::default(),
            recycled: None,
            report: LoopReport::default(),
            socks: crate::socks::SockAddrs::default(),
            iface_read: Default::default(),
            stats_since: None,
            stats_measured: Duration::ZERO,
            cost_first: None,
            cost_logged: None,
            tls: None,
        }
    }

    /// Probes the TLS libraries `libs` finds, now and every [`TLS_SCAN_EVERY`] while running.
    pub fn set_tls(&mut self, libs: crate::tls::TlsLibs) {
        self.tls = Some((libs, Instant::now()));
        self.scan_tls();
    }

    fn scan_tls(&mut self) {
        let Some((libs, last)) = self.tls.as_mut() else {
            return;
        };
        *last = Instant::now();
        let found = libs.scan();
        for lib in found.libs {
            match self.kernel.attach_tls(&lib) {
                Ok(funcs) => {
                    self.report.tls_libs += 1;
                    crate::log(format!(
                        "TLS plaintext: probing {} ({})",
                        lib.display(),
                        funcs.join(", ")
                    ));
                }
                Err(e) => crate::log(format!(
                    "TLS plaintext: cannot probe {}: {e:#}",
                    lib.display()
                )),
            }
        }
        for (exe, go) in found.go {
            // `/proc/PID/exe`, named by the program's path in its process's file system.
            let name = std::fs::read_link(&exe).unwrap_or_else(|_| exe.clone());
            match self.kernel.attach_go_tls(&exe, &go) {
                Ok(n) => {
                    self.report.tls_libs += 1;
                    crate::log(format!(
                        "TLS plaintext: probing Go program {} ({}; {}, crypto/tls: {n} probes)",
                        name.display(),
                        exe.display(),
                        go.version
                    ));
                }
                Err(e) => crate::log(format!(
                    "TLS plaintext: cannot probe Go program {}: {e:#}",
                    exe.display()
                )),
            }
        }
        for (exe, why) in found.skipped {
            crate::log(format!(
                "TLS plaintext: not probing Go program {}: {why}",
                exe.display()
            ));
        }
        for itab in found.go_itabs {
            if let Err(e) = self.kernel.add_go_itab(itab) {
                crate::log(format!("TLS plaintext: Go connections: {e:#}"));
            }
        }
    }

    /// Sets how interfaces are described (the Kubernetes source names their pods).
    pub fn set_describer(&mut self, f: Describer) {
        self.describe = f;
    }

    /// Takes metadata changes (pods, containers, services) from a source such as
    /// [`crate::kube::KubeSource`]: each is written into the archive and folded into the
    /// snapshot every new file starts with.
    pub fn set_metadata(&mut self, rx: Receiver<MetaRecord>) {
        self.meta = Some(rx);
    }

    /// Takes batches back from the encoder (see [`crate::output::Output::recycled`]) instead
    /// of allocating new ones.
    pub fn set_recycler(&mut self, rx: Receiver<Batch>) {
        self.recycled = Some(rx);
    }

    /// The kernel (for tests).
    pub fn kernel(&mut self) -> &mut K {
        &mut self.kernel
    }

    fn flush(&mut self) {
        if self.batch.is_empty() {
            return;
        }
        let next = self
            .recycled
            .as_ref()
            .and_then(|r| r.try_recv().ok())
            .unwrap_or_default();
        let items = std::mem::replace(&mut self.batch, next);
        let n = items.len() as u64;
        match self.tx.try_send(Msg::Items(items)) {
            Ok(()) => {}
            Err(TrySendError::Full(_)) | Err(TrySendError::Disconnected(_)) => {
                self.report.queue_dropped += n
            }
        }
    }

    /// Applies an interface change.
    pub fn iface_change(&mut self, c: Change) {
        match self.table.apply(c) {
            Some(Action::Attach(i)) => match self.kernel.attach_iface(&i.name, i.ifindex) {
                Ok(()) => {
                    self.report.attached += 1;
                    let owner = (self.describe)(&i);
                    if let Some(o) = &owner {
                        self.owners.insert(i.ifindex, o.clone());
                    }
                    self.batch.items.push(Item::IfaceUp(i, owner));
                }
                Err(e) => {
                    self.report
                        .attach_errors
                        .push((i.name.clone(), format!("{e:#}")));
                    self.table.captured.remove(&i.ifindex);
                }
            },
            Some(Action::Detach(idx)) => {
                self.owners.remove(&idx);
                self.kernel.detach_iface(idx);
                self.batch.items.push(Item::IfaceDown(idx));
            }
            None => {}
        }
    }

    fn container(&mut self, cgroup_id: u64, ts_ns: u64) {
        if cgroup_id == 0 || !self.seen_cgroups.insert(cgroup_id) {
            return;
        }
        if let Some(c) = self.cgroups.container(cgroup_id) {
            self.metadata(MetaRecord {
                ts_ns,
                op: MetaOp::Upsert,
                entity: Entity::Container(c),
            });
        }
    }

    /// Writes a metadata change and folds it into the snapshot. An upsert is written as the
    /// snapshot now holds it: a container the Kubernetes source named and the node found in
    /// a cgroup (or the other way round) is written with both halves.
    fn metadata(&mut self, mut rec: MetaRecord) {
        if let Ok(mut s) = self.snapshot.lock()
            && let Some(merged) = self.snapshot_index.apply(&mut s, &rec)
        {
            rec.entity = merged;
        }
        self.batch.items.push(Item::Meta(Box::new(rec)));
    }

    /// Takes what the metadata source sent; returns whether a pod appeared, changed or went.
    fn drain_metadata(&mut self) -> bool {
        let Some(rx) = self.meta.take() else {
            return false;
        };
        let mut pods_changed = false;
        for rec in rx.try_iter().take(META_PER_TURN) {
            pods_changed |= matches!(rec.op, MetaOp::Upsert | MetaOp::Delete)
                && matches!(rec.entity, Entity::Pod(_));
            self.metadata(rec);
        }
        self.meta = Some(rx);
        pods_changed
    }

    /// Asks the describer again about every captured interface, and writes the owners that
    /// changed: after a pod change and every stats interval.
    ///
    /// Every interface, because an answer can go stale or be incomplete: a veth appears
    /// before its pod has an address (in the API, and in the pod's namespace); a pod
    /// address is reused by a new pod on a new veth, which the CNI creates — and the
    /// recorder may name by the address's old holder — before the API reports the old pod
    /// gone and the new one holding the address.
    fn redescribe(&mut self) {
        let ask: Vec<_> = self.table.captured.values().cloned().collect();
        for i in ask {
            let now = (self.describe)(&i);
            if now.as_ref() == self.owners.get(&i.ifindex) {
                continue;
            }
            match &now {
                Some(o) => self.owners.insert(i.ifindex, o.clone()),
                None => self.owners.remove(&i.ifindex),
            };
            self.batch.items.push(Item::IfaceOwner(i.ifindex, now));
        }
    }

    /// Records connections that existed before the start.
    pub fn existing(&mut self, conns: &[ExistingConn]) {
        let ts = self.clock.wall(monotonic_now());
        for c in conns {
            let cg = c
                .cgroup
                .as_deref()
                .and_then(|p| self.cgroups.id_of(p))
                .unwrap_or(0);
            self.container(cg, ts);
            self.batch.items.push(existing_event(c, cg, ts));
        }
        self.flush();
    }

    /// Reads the kernel's counters and the cost, writes them into the archive, and logs the
    /// cost when `log_cost` (and drops whenever there were some).
    fn stats(&mut self, log_cost: bool) {
        let ts = self.clock.wall(monotonic_now());
        if let Some(since) = self.stats_since.as_mut() {
            self.stats_measured += since.elapsed();
            *since = Instant::now();
        }
        let sample = crate::cost::Sample::now(
            self.report.events,
            self.kernel.program_costs(),
            self.stats_measured,
        );
        if let Some(first) = &self.cost_first {
            self.report.cost = Some(crate::cost::Cost::between(first, &sample));
        }
        if log_cost && let Some(from) = &self.cost_logged {
            crate::log(format!(
                "cost: {}",
                crate::cost::Cost::between(from, &sample)
            ));
        }
        if log_cost || self.cost_logged.is_none() {
            self.cost_logged = Some(sample.clone());
        }
        if let Ok(c) = self.kernel.counters() {
            let mut rec = stats_record(ts, &c, self.report.queue_dropped, self.report.events);
            rec.counters.extend(sample.counters());
            rec.counters.push(juno_archive::Counter {
                name: "socket_addresses_unknown".into(),
                cpu: None,
                value: self.socks.unknown,
            });
            self.batch.items.push(Item::Stats(Box::new(rec)));
            let before = self.report.dropped();
            for (i, v) in self.report.kernel.iter_mut().enumerate() {
                *v = c.total(i as u32);
            }
            let lost = self.report.dropped().saturating_sub(before);
            if lost > 0 {
                crate::log(format!(
                    "dropped {lost} events since the last reading (ring buffer full: packets {}, socket events {}; queue full: {}); a larger --ring-size or narrower filters help",
                    self.report.kernel[counter::PACKETS_RINGBUF_FULL as usize],
                    self.report.kernel[counter::SOCK_RINGBUF_FULL as usize],
                    self.report.queue_dropped,
                ));
            }
        }
        if let Ok(ic) = self.kernel.iface_counters() {
            // Seen: what the kernel counted, or (where it counts only losses) the packets
            // read here and the ones lost.
            let mut all: BTreeMap<u32, (u64, u64)> = ic.into_iter().collect();
            for &i in self.iface_read.keys() {
                all.entry(i).or_default();
            }
            for (i, (seen, dropped)) in all.iter_mut() {
                let read = self.iface_read.get(i).copied().unwrap_or(0);
                *seen = (*seen).max(read + *dropped);
            }
            self.batch.items.push(Item::IfaceCounters(all));
        }
        self.cost_first.get_or_insert(sample);
    }

    /// Runs until stopped, the duration passes, or the output stops.
    pub fn run(
        &mut self,
        signals: &Signals,
        changes: &Receiver<Change>,
        cfg: &LoopConfig,
    ) -> Result<LoopReport> {
        let start = Instant::now();
        let mut last_stats = Instant::now();
        let mut last_cost = Instant::now();
        let mut last_flush = Instant::now();
        use crate::cli::SelfCost;
        if cfg.self_cost != SelfCost::Off && self.kernel.program_stats(true) {
            self.stats_since = Some(Instant::now());
        }
        self.stats(false);
        loop {
            if signals.stop.load(Ordering::Relaxed)
                || cfg.duration.is_some_and(|d| start.elapsed() >= d)
            {
                break;
            }
            while let Ok(c) = changes.try_recv() {
                self.iface_change(c);
            }
            if self.drain_metadata() {
                self.redescribe();
            }
            if signals.seal.swap(false, Ordering::Relaxed) {
                self.stats(false);
                self.flush();
                let _ = self.tx.send(Msg::Seal);
            }
            let clock = self.clock;
            let batch = &mut self.batch;
            let cgroups_seen = &mut self.cgroups_seen;
            let socks = &mut self.socks;
            let iface_read = &mut self.iface_read;
            let n = self.kernel.poll(cfg.drain_every, &mut |ev| {
                let it = match ev {
                    Event::Packet(h, data) => {
                        *iface_read.entry(h.ifindex).or_default() += 1;
                        packet_item(&h, data, &clock, batch)
                    }
                    Event::Socket(mut h, payload) => {
                        if !socks.apply(&mut h) {
                            return;
                        }
                        if cgroups_seen.last().map(|c| c.0) != Some(h.cgroup_id) {
                            cgroups_seen.push((h.cgroup_id, clock.wall(h.ts_ns)));
                        }
                        socket_event(&h, payload, &clock, batch)
                    }
                };
                batch.items.push(it);
            })?;
            self.report.events += n as u64;
            let mut seen = std::mem::take(&mut self.cgroups_seen);
            for (cg, ts) in seen.drain(..) {
                self.container(cg, ts);
            }
            self.cgroups_seen = seen;
            if self.batch.len() >= cfg.batch || last_flush.elapsed() >= Duration::from_millis(50) {
                self.flush();
                last_flush = Instant::now();
            }
            if last_stats.elapsed() >= cfg.stats_every {
                self.clock = Clock::now();
                // Every interface: a peer's addresses change without a link notification
                // here (a CNI sets them after the veth appears).
                self.redescribe();
                let log_cost = last_cost.elapsed() >= cfg.cost_every;
                if log_cost {
                    last_cost = Instant::now();
                }
                self.stats(log_cost);
                last_stats = Instant::now();
                if cfg.self_cost == SelfCost::Sampled
                    && self.stats_since.is_none()
                    && self.kernel.program_stats(true)
                {
                    self.stats_since = Some(Instant::now());
                }
            }
            if self
                .tls
                .as_ref()
                .is_some_and(|(_, last)| last.elapsed() >= TLS_SCAN_EVERY)
            {
                self.scan_tls();
            }
            if cfg.self_cost == SelfCost::Sampled
                && let Some(since) = self.stats_since
                && since.elapsed() >= COST_WINDOW
            {
                self.kernel.program_stats(false);
                self.stats_measured += since.elapsed();
                self.stats_since = None;
            }
        }
        // Drain what is left, then the closing counters.
        self.drain_metadata();
        let clock = self.clock;
        let batch = &mut self.batch;
        let socks = &mut self.socks;
        let iface_read = &mut self.iface_read;
        let n = self.kernel.poll(Duration::from_millis(0), &mut |ev| {
            let it = match ev {
                Event::Packet(h, data) => {
                    *iface_read.entry(h.ifindex).or_default() += 1;
                    packet_item(&h, data, &clock, batch)
                }
                Event::Socket(mut h, payload) => {
                    if !socks.apply(&mut h) {
                        return;
                    }
                    socket_event(&h, payload, &clock, batch)
                }
            };
            batch.items.push(it);
        })?;
        self.report.events += n as u64;
        self.stats(false);
        self.flush();
        Ok(self.report.clone())
    }
}

/// CLOCK_MONOTONIC now, ns.
pub fn monotonic_now() -> u64 {
    use nix::time::{ClockId, clock_gettime};
    clock_gettime(ClockId::CLOCK_MONOTONIC)
        .map(|t| {
            u64::try_from(t.tv_sec()).unwrap_or(0) * 1_000_000_000
                + u64::try_from(t.tv_nsec()).unwrap_or(0)
        })
        .unwrap_or(0)
}
