//! The recorder's userspace logic, driven by a fake kernel: no root, no eBPF. The real event
//! loop and output threads write real archives, which are read back with juno-archive.

#![allow(clippy::unwrap_used, reason = "test code: a panic is a test failure")]

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use juno_archive::{Entity, Item as AItem, Record, SocketEventKind, read_archive};
use juno_common::{PacketHdr, SockHdr, counter, dir, kind};
use juno_record::ifaces::{Change, Iface, Selector, Table};
use juno_record::kernel::{Counters, Event, Kernel};
use juno_record::node::CgroupIndex;
use juno_record::output::{Output, OutputConfig};
use juno_record::recorder::{LoopConfig, Recorder, Signals};

#[derive(Clone)]
enum Ev {
    Packet(PacketHdr, Vec<u8>),
    Socket(SockHdr, Vec<u8>),
}

/// Hands out scripted events, one script step per poll, and records attach/detach calls.
#[derive(Default)]
struct Fake {
    script: VecDeque<Vec<Ev>>,
    attached: Vec<(String, u32)>,
    detached: Vec<u32>,
    polls: u64,
    on_poll: Option<Box<dyn FnMut(u64) + Send>>,
}

impl Kernel for Fake {
    fn attach_iface(&mut self, name: &str, ifindex: u32) -> anyhow::Result<()> {
        if name.starts_with("bad") {
            anyhow::bail!("no such device");
        }
        self.attached.push((name.to_string(), ifindex));
        Ok(())
    }
    fn detach_iface(&mut self, ifindex: u32) {
        self.detached.push(ifindex);
    }
    fn poll(
        &mut self,
        _timeout: Duration,
        sink: &mut dyn FnMut(Event<'_>),
    ) -> anyhow::Result<usize> {
        self.polls += 1;
        if let Some(f) = &mut self.on_poll {
            f(self.polls);
        }
        std::thread::sleep(Duration::from_millis(2));
        let step = self.script.pop_front().unwrap_or_default();
        let n = step.len();
        for e in &step {
            match e {
                Ev::Packet(h, d) => sink(Event::Packet(*h, d)),
                Ev::Socket(h, p) => sink(Event::Socket(*h, p)),
            }
        }
        Ok(n)
    }
    fn counters(&mut self) -> anyhow::Result<Counters> {
        let mut c = [0u64; counter::COUNT as usize];
        c[counter::PACKETS_SEEN as usize] = 10;
        c[counter::PACKETS_RINGBUF_FULL as usize] = 3;
        Ok(Counters {
            per_cpu: vec![c, [0; counter::COUNT as usize]],
        })
    }
    fn iface_counters(&mut self) -> anyhow::Result<HashMap<u32, (u64, u64)>> {
        Ok(HashMap::from([(7, (1000, 3))]))
    }
}

fn veth(idx: u32, name: &str) -> Iface {
    Iface {
        ifindex: idx,
        name: name.into(),
        kind: Some("veth".into()),
        peer_ifindex: Some(2),
        peer_netnsid: Some(1),
    }
}

fn packet(ifindex: u32, n: u32) -> Ev {
    let h = PacketHdr {
        ts_ns: 1_000_000 + u64::from(n),
        ifindex,
        orig_len: 1500,
        cap_len: 100,
        direction: 0,
        _pad: [0; 3],
    };
    Ev::Packet(h, vec![n as u8; 100])
}

fn sock(k: u8, d: u8, payload: &[u8], off: u64) -> Ev {
    let mut comm = [0u8; 16];
    comm[..4].copy_from_slice(b"curl");
    let mut laddr = [0u8; 16];
    laddr[..4].copy_from_slice(&[10, 0, 0, 1]);
    let mut raddr = [0u8; 16];
    raddr[..4].copy_from_slice(&[10, 0, 0, 2]);
    let h = SockHdr {
        ts_ns: 2_000_000,
        sk: 0xdead,
        cgroup_id: 0,
        stream_offset: off,
        pid: 42,
        tid: 43,
        netns: 4026531840,
        orig_len: payload.len() as u32 + 10,
        cap_len: payload.len() as u32,
        kind: k,
        direction: d,
        family: 4,
        old_state: 0,
        new_state: 0,
        _pad: 0,
        hook: juno_common::hook::SENDTO,
        lport: 40000,
        rport: 80,
        laddr,
        raddr,
        comm,
    };
    Ev::Socket(h, payload.to_vec())
}

fn out_cfg(
    dir: &Path,
    max_file_size: u64,
    rotate_every: Duration,
    max_total_size: u64,
) -> OutputConfig {
    OutputConfig {
        out_dir: dir.to_path_buf(),
        node: "node-1".into(),
        max_file_size,
        rotate_every,
        max_total_size,
        frame_size: 16 * 1024,
        level: 1,
        nice: 0,
        flush_every: Duration::from_millis(50),
        recorder: "juno-record test".into(),
        boot_time_ns: Some(1),
        snapshot: Arc::new(Mutex::new(vec![Entity::Node(juno_archive::NodeMeta {
            name: "node-1".into(),
            kernel: None,
            boot_id: None,
        })])),
    }
}

struct Run {
    report: juno_record::recorder::LoopReport,
    sealed: Vec<PathBuf>,
    deleted: Vec<PathBuf>,
    fake_attached: Vec<(String, u32)>,
    fake_detached: Vec<u32>,
}

fn run(
    dir: &Path,
    fake: Fake,
    cfg: OutputConfig,
    changes: Vec<Change>,
    signals: Signals,
    duration: Duration,
) -> Run {
    let out = Output::start(cfg.clone(), 64).unwrap();
    let (ctx, crx) = crossbeam_channel::unbounded();
    for c in changes {
        ctx.send(c).unwrap();
    }
    let mut rec = Recorder::new(
        fake,
        Table::new(Selector::Veths),
        out.tx.clone(),
        CgroupIndex::new(dir),
        cfg.snapshot.clone(),
    );
    rec.set_recycler(out.recycled.clone());
    let report = rec
        .run(
            &signals,
            &crx,
            &LoopConfig {
                duration: Some(duration),
                batch: 16,
                stats_every: Duration::from_millis(100),
                cost_every: Duration::from_secs(60),
                drain_every: Duration::from_millis(100),
                self_cost: juno_record::cli::SelfCost::Off,
            },
        )
        .unwrap();
    let (fake_attached, fake_detached) = {
        let k = rec.kernel();
        (k.attached.clone(), k.detached.clone())
    };
    drop(rec);
    let rep = out.finish().unwrap();
    Run {
        report,
        sealed: rep.sealed,
        deleted: rep.deleted,
        fake_attached,
        fake_detached,
    }
}

struct Read {
    packets: Vec<(u32, Vec<u8>)>,
    sockets: Vec<(SocketEventKind, Vec<u8>, u64)>,
    ifaces: Vec<String>,
    infos: Vec<juno_archive::FileInfo>,
    snapshot_nodes: usize,
    stats: usize,
    isb: Vec<(Option<u64>, Option<u64>, Option<u64>)>,
}

fn read(path: &Path) -> Read {
    let bytes = std::fs::read(path).unwrap();
    let mut r = Read {
        packets: vec![],
        sockets: vec![],
        ifaces: vec![],
        infos: vec![],
        snapshot_nodes: 0,
        stats: 0,
        isb: vec![],
    };
    let rep = read_archive(&bytes, |item, stream| match item {
        AItem::Packet(p) => r.packets.push((p.iface, p.data.to_vec())),
        AItem::Interface(i) => r.ifaces.push(
            stream.interfaces()[*i as usize]
                .name
                .clone()
                .unwrap_or_default(),
        ),
        AItem::Record(Record::Socket(s)) => {
            r.sockets
                .push((s.kind, s.payload.to_vec(), s.stream_offset))
        }
        AItem::Record(Record::FileInfo(f)) => r.infos.push(f.clone()),
        AItem::Record(Record::Metadata(m)) => {
            if matches!(m.entity, Entity::Node(_)) && m.op == juno_archive::MetaOp::Snapshot {
                r.snapshot_nodes += 1;
            }
        }
        AItem::Record(Record::Stats(_)) => r.stats += 1,
        AItem::InterfaceStats(s) => r.isb.push((s.received, s.dropped, s.delivered)),
        AItem::Section => {}
    })
    .unwrap();
    assert!(
        rep.trailing.is_none(),
        "{}: {:?}",
        path.display(),
        rep.trailing
    );
    r
}

#[test]
fn events_become_a_sealed_self_describing_archive() {
    let d = tempfile::tempdir().unwrap();
    let mut fake = Fake::default();
    fake.script.push_back(vec![packet(7, 1), packet(7, 2)]);
    fake.script.push_back(vec![
        sock(kind::CONNECT, dir::NONE, b"", u64::MAX),
        sock(kind::DATA, dir::SEND, b"GET / HTTP/1.1\r\n\r\n", 0),
        packet(7, 3),
    ]);
    let r = run(
        d.path(),
        fake,
        out_cfg(d.path(), 1 << 30, Duration::from_secs(3600), 1 << 30),
        vec![Change::Up(veth(7, "veth7"))],
        Signals::default(),
        Duration::from_millis(300),
    );
    assert_eq!(r.fake_attached, vec![("veth7".to_string(), 7)]);
    assert_eq!(r.sealed.len(), 1);
    let name = r.sealed[0]
        .file_name()
        .unwrap()
        .to_string_lossy()
        .into_owned();
    assert!(
        name.starts_with("juno-node_1-") && name.ends_with("-000000.pcapng.zst"),
        "{name}"
    );
    let a = read(&r.sealed[0]);
    assert_eq!(a.ifaces, vec!["veth7"]);
    assert_eq!(
        a.packets.iter().map(|(_, d)| d[0]).collect::<Vec<_>>(),
        vec![1, 2, 3]
    );
    assert_eq!(a.sockets.len(), 2);
    assert_eq!(a.sockets[0].0, SocketEventKind::Connect);
    assert_eq!(a.sockets[1].1, b"GET / HTTP/1.1\r\n\r\n");
    assert_eq!(a.infos.len(), 1);
    assert_eq!(a.infos[0].node, "node-1");
    assert_eq!(a.snapshot_nodes, 1);
    assert!(a.stats >= 1, "recorder counters are written");
    // The interface statistics carry the kernel's counts and the file's own deliveries.
    assert_eq!(a.isb, vec![(Some(1000), Some(3), Some(3))]);
    assert!(!d.path().read_dir().unwrap().any(|e| {
        e.unwrap()
            .file_name()
            .to_string_lossy()
            .ends_with(".partial")
    }));
}

#[test]
fn rotation_by_size_keeps_every_file_self_contained_and_retention_deletes_oldest() {
    let d = tempfile::tempdir().unwrap();
    let mut fake = Fake::default();
    // Incompressible-ish payloads so that files grow.
    for step in 0..120u32 {
        let evs = (0..20u32)
            .map(|i| {
                let mut x = step * 1000 + i;
                let data: Vec<u8> = (0..100)
                    .map(|_| {
                        x = x.wrapping_mul(1_103_515_245).wrapping_add(12345);
                        (x >> 16) as u8
                    })
                    .collect();
                Ev::Packet(
                    PacketHdr {
                        ts_ns: 1,
                        ifindex: 7,
                        orig_len: 100,
                        cap_len: 100,
                        direction: 1,
                        _pad: [0; 3],
                    },
                    data,
                )
            })
            .collect();
        fake.script.push_back(evs);
    }
    let max_total = 40 * 1024;
    let r = run(
        d.path(),
        fake,
        out_cfg(d.path(), 8 * 1024, Duration::from_secs(3600), max_total),
        vec![Change::Up(veth(7, "veth7"))],
        Signals::default(),
        Duration::from_millis(600),
    );
    assert!(r.sealed.len() >= 5, "{} files sealed", r.sealed.len());
    assert!(!r.deleted.is_empty());
    let left: Vec<PathBuf> = r.sealed.iter().filter(|p| p.exists()).cloned().collect();
    let total: u64 = left
        .iter()
        .map(|p| std::fs::metadata(p).unwrap().len())
        .sum();
    assert!(total <= max_total, "{total} > {max_total}");
    // The oldest went first: what is left is the newest.
    assert_eq!(left, r.sealed[r.sealed.len() - left.len()..].to_vec());
    for p in &left {
        let a = read(p);
        assert_eq!(a.ifaces, vec!["veth7"], "{}", p.display());
        assert_eq!(a.snapshot_nodes, 1);
        assert_eq!(a.infos.len(), 1);
    }
    // Sequence numbers and `previous` chain the files.
    let infos: Vec<juno_archive::FileInfo> = left.iter().map(|p| read(p).infos.remove(0)).collect();
    for w in infos.windows(2) {
        assert_eq!(w[1].sequence, w[0].sequence + 1);
    }
}

#[test]
fn rotation_by_time_and_seal_on_demand() {
    let d = tempfile::tempdir().unwrap();
    let mut fake = Fake::default();
    for i in 0..400 {
        fake.script.push_back(vec![packet(7, i)]);
    }
    let signals = Signals::default();
    let seal = signals.seal.clone();
    fake.on_poll = Some(Box::new(move |n| {
        if n == 20 {
            seal.store(true, Ordering::Relaxed);
        }
    }));
    let r = run(
        d.path(),
        fake,
        out_cfg(d.path(), 1 << 30, Duration::from_millis(250), 1 << 30),
        vec![Change::Up(veth(7, "veth7"))],
        signals,
        Duration::from_millis(700),
    );
    // One seal on demand, at least two by age, one at the end.
    assert!(r.sealed.len() >= 4, "{:?}", r.sealed);
    let names: BTreeMap<_, _> = r
        .sealed
        .iter()
        .map(|p| (p.file_name().unwrap().to_owned(), ()))
        .collect();
    assert_eq!(names.len(), r.sealed.len(), "distinct names");
}

#[test]
fn interfaces_follow_changes_and_attach_failures_are_reported() {
    let d = tempfile::tempdir().unwrap();
    let r = run(
        d.path(),
        Fake::default(),
        out_cfg(d.path(), 1 << 30, Duration::from_secs(3600), 1 << 30),
        vec![
            Change::Up(veth(7, "veth7")),
            Change::Up(veth(8, "bad8")),
            Change::Up(veth(9, "veth9")),
            Change::Down(7),
        ],
        Signals::default(),
        Duration::from_millis(200),
    );
    assert_eq!(
        r.fake_attached,
        vec![("veth7".to_string(), 7), ("veth9".to_string(), 9)]
    );
    assert_eq!(r.fake_detached, vec![7]);
    assert_eq!(r.report.attach_errors.len(), 1);
    assert_eq!(r.report.attach_errors[0].0, "bad8");
}

#[test]
fn a_full_queue_drops_and_counts() {
    let d = tempfile::tempdir().unwrap();
    let mut fake = Fake::default();
    for i in 0..50 {
        fake.script.push_back(vec![packet(7, i); 20]);
    }
    // An output whose queue nobody drains.
    let (tx, _rx) = crossbeam_channel::bounded(1);
    let mut rec = Recorder::new(
        fake,
        Table::new(Selector::Veths),
        tx,
        CgroupIndex::new(d.path()),
        Arc::new(Mutex::new(vec![])),
    );
    let (_c, crx) = crossbeam_channel::unbounded();
    let rep = rec
        .run(
            &Signals::default(),
            &crx,
            &LoopConfig {
                duration: Some(Duration::from_millis(300)),
                batch: 10,
                stats_every: Duration::from_secs(60),
                cost_every: Duration::from_secs(60),
                drain_every: Duration::from_millis(100),
                self_cost: juno_record::cli::SelfCost::Off,
            },
        )
        .unwrap();
    assert!(rep.queue_dropped > 0);
    assert!(rep.queue_dropped < rep.events + 10);
    // The closing reading of the kernel's counters (3 packets lost to a full ring buffer on
    // CPU 0) adds to the queue's losses.
    assert_eq!(rep.kernel[counter::PACKETS_RINGBUF_FULL as usize], 3);
    assert_eq!(rep.kernel[counter::PACKETS_SEEN as usize], 10);
    assert_eq!(rep.dropped(), rep.queue_dropped + 3);
}

#[test]
fn files_left_by_a_crash_are_recovered_at_start() {
    let d = tempfile::tempdir().unwrap();
    let left = d
        .path()
        .join(".juno-node_1-20261123T175700Z-000007.pcapng.zst.partial");
    std::fs::write(&left, b"whatever was written").unwrap();
    let other = d
        .path()
        .join(".juno-othernode-20261123T175700Z-000001.pcapng.zst.partial");
    std::fs::write(&other, b"not ours").unwrap();
    let _ = run(
        d.path(),
        Fake::default(),
        out_cfg(d.path(), 1 << 30, Duration::from_secs(3600), 1 << 30),
        vec![],
        Signals::default(),
        Duration::from_millis(50),
    );
    assert!(!left.exists());
    assert!(
        d.path()
            .join("juno-node_1-20261123T175700Z-000007.pcapng.zst")
            .exists()
    );
    assert!(other.exists(), "another node's file is left alone");
}
