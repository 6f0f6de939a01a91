//! The Kubernetes metadata source against a fake API server, without root and without a
//! cluster.
//!
//! There is no Kubernetes API server here. [`FakeApi`] (tests/common/fake_api.rs) is a small
//! HTTP/1.1 server started in-process on 127.0.0.1 (std threads, one per connection,
//! `Connection: close`) that serves real-shaped JSON — the bodies are modelled on what
//! kube-apiserver 1.33 answers — for:
//! - `GET /api/v1/pods?fieldSelector=spec.nodeName%3D<node>&limit=500` (list) and the same
//!   with `watch=true&resourceVersion=..` (a stream of `ADDED`/`MODIFIED`/`DELETED`/
//!   `BOOKMARK`/`ERROR` lines, one JSON object each);
//! - `GET /api/v1/services` list and watch;
//! - `GET /apis/apps/v1/namespaces/*/replicasets/*` and `/apis/batch/v1/namespaces/*/jobs/*`
//!   as `PartialObjectMetadata` (the source asks for metadata only).
//!
//! Lists and watches answer from scripts, one entry per request (the last list repeats; a
//! watch with no script left stays open and silent), so a test decides exactly when the
//! stream ends, when a bookmark moves the resourceVersion and when `410 Gone` forces a
//! re-list. Every request is logged for assertions.

#![allow(clippy::unwrap_used, reason = "test code: a panic is a test failure")]

mod common;

use std::collections::HashMap;
use std::net::{IpAddr, TcpListener};
use std::path::Path;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::fake_api::{
    self, FakeApi, Script, Step, bookmark, container_id, ev, gone, list, owner_ref,
};
use juno_archive::{Entity, Item as AItem, MetaOp, MetaRecord, Record, read_archive};
use juno_common::{PacketHdr, counter};
use juno_record::ifaces::{Change, Iface, Selector, Table};
use juno_record::kernel::{Counters, Event, Kernel};
use juno_record::kube::{KubeSource, Limits, Options, describer};
use juno_record::node::CgroupIndex;
use juno_record::output::{Output, OutputConfig};
use juno_record::recorder::{LoopConfig, Recorder, Signals};
use serde_json::{Value, json};

// ---------------------------------------------------------------------------------------------
// Real-shaped objects (tests/common/fake_api.rs), in namespace `shop` on `NODE`

const NODE: &str = "node-1";

/// A pod of `NODE` in `shop`. `ip` None: pending, no address yet, containers not created.
fn pod(name: &str, uid: &str, rv: &str, owner: Option<Value>, ip: Option<&str>) -> Value {
    fake_api::pod("shop", NODE, name, uid, rv, owner, ip)
}

fn service(name: &str, rv: &str, cluster_ip: &str, ports: Value) -> Value {
    fake_api::service("shop", name, rv, cluster_ip, ports)
}

fn partial_meta(name: &str, owner: Value) -> Value {
    fake_api::partial_meta("shop", name, owner)
}

fn rs_owner() -> Value {
    owner_ref("apps/v1", "ReplicaSet", "web-7d4b9c")
}

fn job_owner() -> Value {
    owner_ref("batch/v1", "Job", "backup-29000000")
}

fn owners() -> HashMap<String, Value> {
    HashMap::from([
        (
            "/apis/apps/v1/namespaces/shop/replicasets/web-7d4b9c".to_string(),
            partial_meta("web-7d4b9c", owner_ref("apps/v1", "Deployment", "web")),
        ),
        (
            "/apis/batch/v1/namespaces/shop/jobs/backup-29000000".to_string(),
            partial_meta(
                "backup-29000000",
                owner_ref("batch/v1", "CronJob", "backup"),
            ),
        ),
    ])
}

fn services_script(s: &mut Script) {
    s.svc_lists.push_back(list(
        "ServiceList",
        "10",
        vec![
            service("web", "5", "10.96.0.20", json!([{"name": "http", "protocol": "TCP", "port": 80, "targetPort": 8080}])),
            service("dns", "6", "10.96.0.10", json!([{"name": "dns", "protocol": "UDP", "port": 53, "targetPort": 53},
                                                      {"name": "dns-tcp", "protocol": "TCP", "port": 53, "targetPort": 53}])),
            // Headless: no cluster IP, nothing to name.
            service("db", "7", "None", json!([{"port": 5432, "protocol": "TCP"}])),
        ],
    ));
    s.svc_watches.push_back(vec![
        ev(
            "ADDED",
            service(
                "api",
                "11",
                "10.96.0.30",
                json!([{"protocol": "TCP", "port": 443}]),
            ),
        ),
        ev(
            "DELETED",
            service(
                "web",
                "12",
                "10.96.0.20",
                json!([{"protocol": "TCP", "port": 80}]),
            ),
        ),
    ]);
}

// ---------------------------------------------------------------------------------------------
// Collecting what the source emits

fn start(api: &FakeApi, limits: Limits) -> KubeSource {
    let cfg = kube::Config::new(api.url().parse().unwrap());
    KubeSource::start(
        cfg,
        Options {
            node: NODE.into(),
            limits,
        },
    )
    .unwrap()
}

/// Takes records until `done` says so (or 30 s pass: then fails with what came).
fn collect(src: &KubeSource, done: impl Fn(&[MetaRecord]) -> bool) -> Vec<MetaRecord> {
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut out = Vec::new();
    while !done(&out) {
        assert!(
            Instant::now() < deadline,
            "timed out; got {:#?}",
            summary(&out)
        );
        if let Ok(r) = src.records.recv_timeout(Duration::from_millis(50)) {
            out.push(r);
        }
    }
    // Anything that would follow soon (a duplicate, a stray delete) is caught too.
    while let Ok(r) = src.records.recv_timeout(Duration::from_millis(300)) {
        out.push(r);
    }
    out
}

/// `(op, kind, name)` per record: pods by name, containers by pod uid, services by name.
fn summary(recs: &[MetaRecord]) -> Vec<(MetaOp, &'static str, String)> {
    recs.iter()
        .map(|r| match &r.entity {
            Entity::Pod(p) => (r.op, "pod", p.name.clone()),
            Entity::Container(c) => (r.op, "container", c.pod_uid.clone().unwrap_or_default()),
            Entity::Service(s) => (r.op, "service", s.name.clone()),
            other => (r.op, "other", format!("{other:?}")),
        })
        .collect()
}

fn count(recs: &[MetaRecord], op: MetaOp, kind: &str, name: &str) -> usize {
    summary(recs)
        .iter()
        .filter(|(o, k, n)| *o == op && *k == kind && n == name)
        .count()
}

fn pod_meta<'a>(recs: &'a [MetaRecord], name: &str) -> Vec<&'a juno_archive::PodMeta> {
    recs.iter()
        .filter_map(|r| match &r.entity {
            Entity::Pod(p) if p.name == name && r.op == MetaOp::Upsert => Some(p),
            _ => None,
        })
        .collect()
}

fn workload(p: &juno_archive::PodMeta) -> (Option<&str>, Option<&str>) {
    (p.workload_kind.as_deref(), p.workload_name.as_deref())
}

// ---------------------------------------------------------------------------------------------
// Tests

#[test]
fn pods_and_services_are_followed_through_bookmarks_and_a_410_relist() {
    let mut s = Script {
        metadata: owners(),
        ..Default::default()
    };
    s.pod_lists.push_back(list(
        "PodList",
        "100",
        vec![
            // Pending, no address yet: gets one in the watch.
            pod("web-7d4b9c-xk2lp", "u-web", "90", Some(rs_owner()), None),
            pod(
                "db-0",
                "u-db",
                "91",
                Some(owner_ref("apps/v1", "StatefulSet", "db")),
                Some("10.244.0.11"),
            ),
            pod("debug", "u-debug", "92", None, Some("10.244.0.12")),
            // No uid: skipped and counted, the rest of the list is used.
            json!({"metadata": {"name": "broken", "namespace": "shop", "resourceVersion": "93"}}),
        ],
    ));
    s.pod_watches.push_back(vec![
        ev(
            "ADDED",
            pod(
                "backup-29000000-abcde",
                "u-backup",
                "120",
                Some(job_owner()),
                Some("10.244.0.13"),
            ),
        ),
        ev(
            "MODIFIED",
            pod(
                "web-7d4b9c-xk2lp",
                "u-web",
                "130",
                Some(rs_owner()),
                Some("10.244.0.10"),
            ),
        ),
        // A status change the archive does not carry (same IPs, containers, labels): no record.
        ev("MODIFIED", {
            let mut p = pod(
                "db-0",
                "u-db",
                "140",
                Some(owner_ref("apps/v1", "StatefulSet", "db")),
                Some("10.244.0.11"),
            );
            p["status"]["conditions"] = json!([{"type": "Ready", "status": "True"}]);
            p
        }),
        bookmark("Pod", "150"),
        // The connection ends here (the server's timeout): the next watch starts at 150.
    ]);
    s.pod_watches.push_back(vec![
        ev(
            "DELETED",
            pod("debug", "u-debug", "160", None, Some("10.244.0.12")),
        ),
        // Garbage on the stream. A truncated line is dropped by kube's decoder; an object
        // of the wrong shape is an error, counted, and the stream goes on.
        Step::Line("{\"type\":\"MODIFIED\",\"object\":{\"metadata\":".into()),
        Step::Line("{\"type\":\"MODIFIED\",\"object\":{\"metadata\":5}}".into()),
        Step::Sleep(50),
        gone(),
    ]);
    // After the 410 the watcher lists again. Meanwhile the backup pod went away and a
    // DaemonSet pod came; web and db are unchanged: neither is written again.
    s.pod_lists.push_back(list(
        "PodList",
        "300",
        vec![
            pod(
                "web-7d4b9c-xk2lp",
                "u-web",
                "130",
                Some(rs_owner()),
                Some("10.244.0.10"),
            ),
            pod(
                "db-0",
                "u-db",
                "140",
                Some(owner_ref("apps/v1", "StatefulSet", "db")),
                Some("10.244.0.11"),
            ),
            pod(
                "agent-q8r2z",
                "u-agent",
                "250",
                Some(owner_ref("apps/v1", "DaemonSet", "agent")),
                Some("10.244.0.14"),
            ),
        ],
    ));
    services_script(&mut s);
    let api = FakeApi::start(s);
    let src = start(&api, Limits::default());
    let recs = collect(&src, |r| {
        count(r, MetaOp::Delete, "pod", "backup-29000000-abcde") == 1
            && count(r, MetaOp::Delete, "service", "web") == 1
    });
    let sum = summary(&recs);

    // Each pod written once per real change, workloads resolved.
    assert_eq!(
        count(&recs, MetaOp::Upsert, "pod", "web-7d4b9c-xk2lp"),
        2,
        "{sum:#?}"
    );
    let web = pod_meta(&recs, "web-7d4b9c-xk2lp");
    assert!(web[0].ips.is_empty());
    assert_eq!(web[1].ips, vec!["10.244.0.10".parse::<IpAddr>().unwrap()]);
    assert_eq!(workload(web[1]), (Some("Deployment"), Some("web")));
    assert_eq!(web[1].node.as_deref(), Some(NODE));
    assert_eq!(web[1].labels, vec![("app".to_string(), "web".to_string())]);
    let db = pod_meta(&recs, "db-0");
    assert_eq!(db.len(), 1, "{sum:#?}");
    assert_eq!(workload(db[0]), (Some("StatefulSet"), Some("db")));
    let backup = pod_meta(&recs, "backup-29000000-abcde");
    assert_eq!(backup.len(), 1);
    assert_eq!(workload(backup[0]), (Some("CronJob"), Some("backup")));
    let debug = pod_meta(&recs, "debug");
    assert_eq!(
        workload(debug[0]),
        (None, None),
        "a bare pod has no workload"
    );
    let agent = pod_meta(&recs, "agent-q8r2z");
    assert_eq!(agent.len(), 1);
    assert_eq!(workload(agent[0]), (Some("DaemonSet"), Some("agent")));
    assert_eq!(count(&recs, MetaOp::Upsert, "pod", "broken"), 0);

    // Containers: one per running pod, with the runtime prefix stripped, deleted with it.
    for uid in ["u-web", "u-db", "u-debug", "u-backup", "u-agent"] {
        assert_eq!(
            count(&recs, MetaOp::Upsert, "container", uid),
            1,
            "{uid}: {sum:#?}"
        );
    }
    let c = recs
        .iter()
        .find_map(|r| match &r.entity {
            Entity::Container(c) if c.pod_uid.as_deref() == Some("u-web") => Some(c),
            _ => None,
        })
        .unwrap();
    assert_eq!(c.id, container_id("u-web"));
    assert_eq!(c.runtime.as_deref(), Some("containerd"));
    assert_eq!(c.name.as_deref(), Some("main"));
    assert_eq!(count(&recs, MetaOp::Delete, "container", "u-debug"), 1);
    assert_eq!(count(&recs, MetaOp::Delete, "container", "u-backup"), 1);

    // Deletions: the watched one, and the one the re-list no longer had; nothing else.
    let deleted_pods: Vec<_> = sum
        .iter()
        .filter(|(o, k, _)| *o == MetaOp::Delete && *k == "pod")
        .map(|(_, _, n)| n.as_str())
        .collect();
    assert_eq!(deleted_pods, vec!["debug", "backup-29000000-abcde"]);
    // The re-list came after the 410, and its upsert (agent) before the delete it implies.
    let pos = |op, k, n: &str| {
        sum.iter()
            .position(|(o, kk, nn)| *o == op && *kk == k && nn == n)
            .unwrap()
    };
    assert!(pos(MetaOp::Upsert, "pod", "agent-q8r2z") > pos(MetaOp::Delete, "pod", "debug"));
    assert!(
        pos(MetaOp::Delete, "pod", "backup-29000000-abcde")
            > pos(MetaOp::Upsert, "pod", "agent-q8r2z")
    );

    // Services: cluster IPs and ports; headless ones are not written.
    assert_eq!(count(&recs, MetaOp::Upsert, "service", "web"), 1);
    assert_eq!(count(&recs, MetaOp::Upsert, "service", "api"), 1);
    assert_eq!(count(&recs, MetaOp::Upsert, "service", "db"), 0);
    let dns = recs
        .iter()
        .find_map(|r| match &r.entity {
            Entity::Service(s) if s.name == "dns" => Some(s),
            _ => None,
        })
        .unwrap();
    assert_eq!(
        dns.cluster_ips,
        vec!["10.96.0.10".parse::<IpAddr>().unwrap()]
    );
    assert_eq!(dns.ports, vec![(17, 53), (6, 53)]);

    // What went over the wire: the node's pods only, a watch resumed from the bookmark,
    // a second list after the 410, owner lookups asking for metadata only.
    let reqs = api.requests();
    let pod_reqs: Vec<_> = reqs
        .iter()
        .filter(|(t, _)| t.starts_with("/api/v1/pods"))
        .collect();
    assert!(
        pod_reqs
            .iter()
            .all(|(t, _)| t.contains("fieldSelector=spec.nodeName%3Dnode-1")),
        "{pod_reqs:#?}"
    );
    let lists = pod_reqs
        .iter()
        .filter(|(t, _)| !t.contains("watch=true"))
        .count();
    assert_eq!(lists, 2, "{pod_reqs:#?}");
    assert!(
        pod_reqs
            .iter()
            .any(|(t, _)| t.contains("watch=true") && t.contains("resourceVersion=100"))
    );
    assert!(
        pod_reqs
            .iter()
            .any(|(t, _)| t.contains("watch=true") && t.contains("resourceVersion=150")),
        "the bookmark's version is where the next watch starts: {pod_reqs:#?}"
    );
    let rs: Vec<_> = reqs
        .iter()
        .filter(|(t, _)| t.contains("/replicasets/"))
        .collect();
    assert_eq!(rs.len(), 1, "owners are cached: {rs:#?}");
    assert!(rs[0].1.contains("as=PartialObjectMetadata"), "{rs:#?}");

    let st = &src.stats;
    let g = |c: &std::sync::atomic::AtomicU64| c.load(Ordering::Relaxed);
    assert_eq!(g(&st.malformed), 1, "the pod without uid");
    assert!(
        g(&st.watch_errors) >= 2,
        "the garbage line and the 410: {}",
        st.summary()
    );
    assert!(
        g(&st.relists) >= 3,
        "two pod lists and a service list: {}",
        st.summary()
    );
    assert_eq!(g(&st.pods), 3);
    assert_eq!(g(&st.services), 2, "dns and api");
    assert_eq!(g(&st.records), recs.len() as u64);
    src.stop();
}

#[test]
fn limits_bound_what_is_tracked_and_a_failing_owner_lookup_falls_back() {
    let mut s = Script::default();
    // No owner endpoints: the ReplicaSet lookup gets a 404 and the ReplicaSet itself is
    // the workload.
    s.pod_lists.push_back(list(
        "PodList",
        "5",
        vec![
            pod(
                "web-7d4b9c-aaaaa",
                "u-1",
                "1",
                Some(rs_owner()),
                Some("10.244.0.21"),
            ),
            pod(
                "web-7d4b9c-bbbbb",
                "u-2",
                "2",
                Some(rs_owner()),
                Some("10.244.0.22"),
            ),
            pod(
                "web-7d4b9c-ccccc",
                "u-3",
                "3",
                Some(rs_owner()),
                Some("10.244.0.23"),
            ),
        ],
    ));
    s.svc_lists.push_back(list("ServiceList", "5", vec![]));
    let api = FakeApi::start(s);
    let src = start(
        &api,
        Limits {
            pods: 2,
            ..Limits::default()
        },
    );
    let recs = collect(&src, |r| {
        r.iter()
            .filter(|m| matches!(m.entity, Entity::Pod(_)))
            .count()
            >= 2
    });
    let pods: Vec<_> = recs
        .iter()
        .filter_map(|r| match &r.entity {
            Entity::Pod(p) => Some(p),
            _ => None,
        })
        .collect();
    assert_eq!(pods.len(), 2, "{:#?}", summary(&recs));
    for p in pods {
        assert_eq!(workload(p), (Some("ReplicaSet"), Some("web-7d4b9c")));
    }
    assert_eq!(src.stats.refused.load(Ordering::Relaxed), 1);
    assert_eq!(src.stats.pods.load(Ordering::Relaxed), 2);
    src.stop();
}

#[test]
fn an_unreachable_api_server_is_retried_not_fatal() {
    // A port nothing listens on.
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let cfg = kube::Config::new(format!("http://127.0.0.1:{port}").parse().unwrap());
    let src = KubeSource::start(
        cfg,
        Options {
            node: NODE.into(),
            limits: Limits::default(),
        },
    )
    .unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    while src.stats.watch_errors.load(Ordering::Relaxed) < 2 {
        assert!(Instant::now() < deadline, "{}", src.stats.summary());
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(src.records.try_recv().is_err());
    src.stop();
}

// ---------------------------------------------------------------------------------------------
// The recorder with the fake kernel and this source

/// No events; counts nothing; attaches anything.
struct QuietKernel;

impl Kernel for QuietKernel {
    fn attach_iface(&mut self, _name: &str, _ifindex: u32) -> anyhow::Result<()> {
        Ok(())
    }
    fn detach_iface(&mut self, _ifindex: u32) {}
    fn poll(&mut self, _t: Duration, sink: &mut dyn FnMut(Event<'_>)) -> anyhow::Result<usize> {
        std::thread::sleep(Duration::from_millis(5));
        let h = PacketHdr {
            ts_ns: 1,
            ifindex: 7,
            orig_len: 60,
            cap_len: 60,
            direction: 0,
            _pad: [0; 3],
        };
        sink(Event::Packet(h, &[0u8; 60]));
        Ok(1)
    }
    fn counters(&mut self) -> anyhow::Result<Counters> {
        Ok(Counters {
            per_cpu: vec![[0; counter::COUNT as usize]],
        })
    }
    fn iface_counters(&mut self) -> anyhow::Result<HashMap<u32, (u64, u64)>> {
        Ok(HashMap::new())
    }
}

#[derive(Default, Debug)]
struct FileMeta {
    /// (op, entity) of every metadata record.
    records: Vec<(MetaOp, Entity)>,
    /// Interface descriptions of the Interface Description Blocks.
    descriptions: Vec<Option<String>>,
}

fn read_meta(path: &Path) -> FileMeta {
    let bytes = std::fs::read(path).unwrap();
    let mut f = FileMeta::default();
    read_archive(&bytes, |item, stream| match item {
        AItem::Record(Record::Metadata(m)) => f.records.push((m.op, m.entity.clone())),
        AItem::Interface(i) => f
            .descriptions
            .push(stream.interfaces()[*i as usize].description.clone()),
        _ => {}
    })
    .unwrap();
    f
}

impl FileMeta {
    fn has(&self, op: MetaOp, pred: impl Fn(&Entity) -> bool) -> bool {
        self.records.iter().any(|(o, e)| *o == op && pred(e))
    }
}

fn is_pod(name: &str) -> impl Fn(&Entity) -> bool + '_ {
    move |e| matches!(e, Entity::Pod(p) if p.name == name)
}

#[test]
fn a_recording_carries_pods_containers_services_and_names_the_pod_veth() {
    let d = tempfile::tempdir().unwrap();
    let mut s = Script {
        metadata: owners(),
        // The veth is captured before the API tells its pod's address, as on a node.
        first_list_delay_ms: 300,
        ..Default::default()
    };
    s.pod_lists.push_back(list(
        "PodList",
        "100",
        vec![
            pod(
                "web-7d4b9c-xk2lp",
                "u-web",
                "90",
                Some(rs_owner()),
                Some("10.244.0.10"),
            ),
            pod(
                "db-0",
                "u-db",
                "91",
                Some(owner_ref("apps/v1", "StatefulSet", "db")),
                Some("10.244.0.11"),
            ),
        ],
    ));
    services_script(&mut s);
    let api = FakeApi::start(s);
    let src = start(&api, Limits::default());

    let snapshot = Arc::new(Mutex::new(vec![Entity::Node(juno_archive::NodeMeta {
        name: NODE.into(),
        kernel: None,
        boot_id: None,
    })]));
    let cfg = OutputConfig {
        out_dir: d.path().to_path_buf(),
        node: NODE.into(),
        max_file_size: 1 << 30,
        rotate_every: Duration::from_secs(3600),
        max_total_size: 1 << 30,
        frame_size: 16 * 1024,
        level: 1,
        nice: 0,
        flush_every: Duration::from_millis(50),
        recorder: "juno-record test".into(),
        boot_time_ns: Some(1),
        snapshot: snapshot.clone(),
    };
    let out = Output::start(cfg, 64).unwrap();
    let (ctx, crx) = crossbeam_channel::unbounded();
    ctx.send(Change::Up(Iface {
        ifindex: 7,
        name: "cali7".into(),
        kind: Some("veth".into()),
        peer_ifindex: Some(2),
        peer_netnsid: Some(1),
    }))
    .unwrap();
    let mut rec = Recorder::new(
        QuietKernel,
        Table::new(Selector::Veths),
        out.tx.clone(),
        CgroupIndex::new(d.path()),
        snapshot,
    );
    rec.set_recycler(out.recycled.clone());
    rec.set_metadata(src.records.clone());
    // The node's host routes, as Calico sets them: the web pod behind cali7.
    rec.set_describer(describer(
        src.pod_ips.clone(),
        |_| None,
        || vec![(7, "10.244.0.10".parse().unwrap())],
    ));
    // Seal once the source has sent everything the script holds (2 pods, 2 containers,
    // 3 services upserted, 1 deleted), record a little more, then stop. Driven by what has
    // arrived rather than by the clock, so a loaded machine makes the test slower, not flaky.
    let signals = Signals::default();
    let (seal, stop, stats) = (
        signals.seal.clone(),
        signals.stop.clone(),
        src.stats.clone(),
    );
    let sealer = std::thread::spawn(move || {
        let deadline = Instant::now() + Duration::from_secs(30);
        while stats.records.load(Ordering::Relaxed) < 8 && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(10));
        }
        std::thread::sleep(Duration::from_millis(300));
        seal.store(true, Ordering::Relaxed);
        std::thread::sleep(Duration::from_millis(300));
        stop.store(true, Ordering::Relaxed);
    });
    rec.run(
        &signals,
        &crx,
        &LoopConfig {
            duration: None,
            batch: 16,
            stats_every: Duration::from_millis(100),
            cost_every: Duration::from_secs(60),
            drain_every: Duration::from_millis(100),
            self_cost: juno_record::cli::SelfCost::Off,
        },
    )
    .unwrap();
    sealer.join().unwrap();
    drop(rec);
    let sealed = out.finish().unwrap().sealed;
    assert_eq!(sealed.len(), 2, "{sealed:?}; {}", src.stats.summary());
    let first = read_meta(&sealed[0]);
    let second = read_meta(&sealed[1]);

    // The first file: the changes as they came, the veth named once its pod was known.
    assert_eq!(
        first.descriptions,
        vec![None],
        "captured before the pod was known"
    );
    for name in ["web-7d4b9c-xk2lp", "db-0"] {
        assert!(
            first.has(MetaOp::Upsert, is_pod(name)),
            "{name}: {first:#?}"
        );
    }
    assert!(first.has(MetaOp::Upsert, |e| matches!(e, Entity::Pod(p)
        if p.workload_kind.as_deref() == Some("Deployment") && p.workload_name.as_deref() == Some("web"))));
    assert!(
        first.has(MetaOp::Upsert, |e| matches!(e, Entity::Container(c)
        if c.id == container_id("u-web") && c.pod_uid.as_deref() == Some("u-web")))
    );
    assert!(first.has(
        MetaOp::Upsert,
        |e| matches!(e, Entity::Service(s) if s.name == "api")
    ));
    assert!(first.has(
        MetaOp::Delete,
        |e| matches!(e, Entity::Service(s) if s.name == "web")
    ));
    assert!(
        first.has(MetaOp::Upsert, |e| matches!(e, Entity::Interface(i)
        if i.ifindex == 7 && i.pod_uid.as_deref() == Some("u-web") && i.pcapng_id == Some(0)))
    );

    // The second file starts with the snapshot: pods, containers, live services, and the
    // veth with its pod, described in its Interface Description Block too.
    assert_eq!(
        second.descriptions,
        vec![Some("pod shop/web-7d4b9c-xk2lp".to_string())]
    );
    for name in ["web-7d4b9c-xk2lp", "db-0"] {
        assert!(
            second.has(MetaOp::Snapshot, is_pod(name)),
            "{name}: {second:#?}"
        );
    }
    for uid in ["u-web", "u-db"] {
        assert!(
            second.has(MetaOp::Snapshot, |e| matches!(e, Entity::Container(c)
            if c.pod_uid.as_deref() == Some(uid) && c.name.as_deref() == Some("main")))
        );
    }
    for svc in ["dns", "api"] {
        assert!(second.has(
            MetaOp::Snapshot,
            |e| matches!(e, Entity::Service(s) if s.name == svc)
        ));
    }
    assert!(!second.has(
        MetaOp::Snapshot,
        |e| matches!(e, Entity::Service(s) if s.name == "web")
    ));
    assert!(second.has(MetaOp::Snapshot, |e| matches!(e, Entity::Node(_))));
    assert!(
        second.has(MetaOp::Snapshot, |e| matches!(e, Entity::Interface(i)
        if i.ifindex == 7 && i.pod_uid.as_deref() == Some("u-web")))
    );
    // Snapshots hold one entry per entity.
    let snap_pods = second
        .records
        .iter()
        .filter(|(o, e)| *o == MetaOp::Snapshot && matches!(e, Entity::Pod(_)))
        .count();
    assert_eq!(snap_pods, 2);
    src.stop();
}

/// A pod address reused by a new pod on a new veth: the CNI creates the veth (and its host
/// route) before the API reports the old pod gone and the new one holding the address, so the
/// veth is first named by the address's old holder. Once the API catches up the veth must be
/// renamed, not left with the deleted pod.
#[test]
fn a_veth_named_by_a_reused_address_is_renamed_when_the_api_catches_up() {
    let d = tempfile::tempdir().unwrap();
    let gate = fake_api::Gate::default();
    let job = pod(
        "backup-29000000-abcde",
        "u-backup",
        "90",
        Some(job_owner()),
        Some("10.244.0.13"),
    );
    let mut s = Script {
        metadata: owners(),
        ..Default::default()
    };
    s.pod_lists
        .push_back(list("PodList", "100", vec![job.clone()]));
    s.pod_watches.push_back(vec![
        Step::Wait(gate.clone()),
        ev("DELETED", job),
        ev(
            "ADDED",
            pod(
                "web-7d4b9c-xk2lp",
                "u-web",
                "120",
                Some(rs_owner()),
                Some("10.244.0.13"),
            ),
        ),
    ]);
    s.svc_lists.push_back(list("ServiceList", "10", vec![]));
    let api = FakeApi::start(s);
    let src = start(&api, Limits::default());
    // The old pod is known before the veth appears.
    let deadline = Instant::now() + Duration::from_secs(10);
    while src.pod_ips.get(&"10.244.0.13".parse().unwrap()).is_none() {
        assert!(Instant::now() < deadline, "{}", src.stats.summary());
        std::thread::sleep(Duration::from_millis(10));
    }
    let snapshot = Arc::new(Mutex::new(Vec::new()));
    let out = Output::start(
        OutputConfig {
            out_dir: d.path().to_path_buf(),
            node: NODE.into(),
            max_file_size: 1 << 30,
            rotate_every: Duration::from_secs(3600),
            max_total_size: 1 << 30,
            frame_size: 16 * 1024,
            level: 1,
            nice: 0,
            flush_every: Duration::from_millis(50),
            recorder: "juno-record test".into(),
            boot_time_ns: Some(1),
            snapshot: snapshot.clone(),
        },
        64,
    )
    .unwrap();
    let (ctx, crx) = crossbeam_channel::unbounded();
    // The new pod's veth, with the reused address routed to it.
    ctx.send(Change::Up(Iface {
        ifindex: 9,
        name: "cali9".into(),
        kind: Some("veth".into()),
        peer_ifindex: Some(2),
        peer_netnsid: Some(3),
    }))
    .unwrap();
    let mut rec = Recorder::new(
        QuietKernel,
        Table::new(Selector::Veths),
        out.tx.clone(),
        CgroupIndex::new(d.path()),
        snapshot,
    );
    rec.set_recycler(out.recycled.clone());
    rec.set_metadata(src.records.clone());
    rec.set_describer(describer(
        src.pod_ips.clone(),
        |_| None,
        || vec![(9, "10.244.0.13".parse().unwrap())],
    ));
    let signals = Signals::default();
    let (stop, stats) = (signals.stop.clone(), src.stats.clone());
    let driver = std::thread::spawn(move || {
        // The veth is attached (and named by the old holder) within a loop turn or two.
        std::thread::sleep(Duration::from_millis(300));
        gate.open();
        let deadline = Instant::now() + Duration::from_secs(30);
        // The job pod and its container upserted, then deleted; the web pod and container.
        while stats.records.load(Ordering::Relaxed) < 6 && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(10));
        }
        std::thread::sleep(Duration::from_millis(300));
        stop.store(true, Ordering::Relaxed);
    });
    rec.run(
        &signals,
        &crx,
        &LoopConfig {
            duration: None,
            batch: 16,
            // Longer than the test: only a pod change makes the recorder ask again.
            stats_every: Duration::from_secs(3600),
            cost_every: Duration::from_secs(3600),
            drain_every: Duration::from_millis(100),
            self_cost: juno_record::cli::SelfCost::Off,
        },
    )
    .unwrap();
    driver.join().unwrap();
    drop(rec);
    let sealed = out.finish().unwrap().sealed;
    assert_eq!(sealed.len(), 1, "{sealed:?}");
    let f = read_meta(&sealed[0]);
    let owners: Vec<Option<String>> = f
        .records
        .iter()
        .filter_map(|(_, e)| match e {
            Entity::Interface(i) if i.ifindex == 9 => Some(i.pod_uid.clone()),
            _ => None,
        })
        .collect();
    // Named by the old holder at first (the API had not caught up), then by the new pod.
    // When the loop sees the old pod's deletion before the new pod's addition (they may
    // arrive in one turn or in two), the veth is unnamed in between: nobody held the
    // address then.
    let u = |s: &str| Some(s.to_string());
    assert!(
        owners == [u("u-backup"), u("u-web")] || owners == [u("u-backup"), None, u("u-web")],
        "{owners:?}\n{f:#?}"
    );
    src.stop();
}
