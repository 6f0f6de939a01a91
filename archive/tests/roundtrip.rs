//! Round-trip property tests: whatever is written is read back, in order, from whole files,
//! with any frame size; files cut anywhere read up to their last complete frame.

#![allow(clippy::unwrap_used, reason = "test code: a panic is a test failure")]

use std::net::{IpAddr, SocketAddr};

use juno_archive::frame;
use juno_archive::record::{OFFSET_UNKNOWN, decode};
use juno_archive::*;
use proptest::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq)]
enum Owned {
    Packet {
        iface: u32,
        ts_ns: u64,
        data: Vec<u8>,
        orig_len: u32,
    },
    Record(Vec<u8>),
    Stats(u32, InterfaceStats),
}

fn ip() -> impl Strategy<Value = IpAddr> {
    prop_oneof![
        any::<[u8; 4]>().prop_map(IpAddr::from),
        any::<[u8; 16]>().prop_map(IpAddr::from),
    ]
}

fn text() -> impl Strategy<Value = String> {
    "[a-z0-9./-]{0,20}"
}

fn socket_event() -> impl Strategy<Value = (SocketEvent<'static>, Vec<u8>)> {
    (
        (
            any::<u64>(),
            0u8..8,
            0u8..3,
            any::<u32>(),
            any::<u32>(),
            any::<[u8; 16]>(),
        ),
        (any::<u64>(), any::<u32>(), any::<u64>(), any::<bool>()),
        (
            any::<[u8; 16]>(),
            any::<[u8; 16]>(),
            any::<u16>(),
            any::<u16>(),
        ),
        (
            any::<u8>(),
            any::<u8>(),
            any::<u16>(),
            prop_oneof![Just(OFFSET_UNKNOWN), any::<u64>()],
        ),
        proptest::collection::vec(any::<u8>(), 0..300),
    )
        .prop_map(|(a, b, c, d, payload)| {
            let (ts_ns, kind, dir, pid, tid, comm) = a;
            let (cgroup_id, netns, cookie, v4) = b;
            let (la, ra, lp, rp) = c;
            let (old_state, new_state, hook, stream_offset) = d;
            let mk = |x: [u8; 16], p| {
                if v4 {
                    SocketAddr::new(IpAddr::from([x[0], x[1], x[2], x[3]]), p)
                } else {
                    SocketAddr::new(IpAddr::from(x), p)
                }
            };
            let ev = SocketEvent {
                ts_ns,
                kind: kind.into(),
                direction: dir.into(),
                ip_proto: 6,
                pid,
                tid,
                comm,
                cgroup_id,
                netns,
                cookie,
                local: mk(la, lp),
                remote: mk(ra, rp),
                old_state,
                new_state,
                hook,
                stream_offset,
                orig_len: payload.len() as u32 + (pid % 7),
                payload: &[],
            };
            (ev, payload)
        })
}

fn entity() -> impl Strategy<Value = Entity> {
    prop_oneof![
        (
            text(),
            proptest::option::of(text()),
            proptest::option::of(text())
        )
            .prop_map(|(name, kernel, boot_id)| Entity::Node(NodeMeta {
                name,
                kernel,
                boot_id
            })),
        (
            any::<u32>(),
            proptest::option::of(any::<u32>()),
            text(),
            proptest::option::of(any::<u32>()),
            proptest::option::of(any::<u32>()),
            proptest::option::of(text()),
            proptest::collection::vec(ip(), 0..3),
        )
            .prop_map(
                |(ifindex, netns, name, pcapng_id, peer_ifindex, pod_uid, addrs)| {
                    Entity::Interface(InterfaceMeta {
                        ifindex,
                        netns,
                        name,
                        pcapng_id,
                        peer_ifindex,
                        peer_netns: netns,
                        pod_uid,
                        addrs,
                    })
                }
            ),
        (
            (text(), text(), text(), proptest::option::of(text())),
            proptest::collection::vec(ip(), 0..3),
            proptest::collection::vec((text(), text()), 0..4),
            (
                proptest::option::of(text()),
                proptest::option::of(text()),
                any::<bool>()
            ),
            proptest::option::of(any::<u32>()),
        )
            .prop_map(
                |((uid, namespace, name, node), ips, labels, (wk, wn, host_network), netns)| {
                    Entity::Pod(PodMeta {
                        uid,
                        namespace,
                        name,
                        node,
                        ips,
                        labels,
                        workload_kind: wk,
                        workload_name: wn,
                        host_network,
                        netns,
                    })
                }
            ),
        (
            text(),
            proptest::option::of(text()),
            proptest::option::of(any::<u64>())
        )
            .prop_map(
                |(id, cgroup_path, cgroup_id)| Entity::Container(ContainerMeta {
                    id,
                    runtime: Some("containerd".into()),
                    name: None,
                    pod_uid: cgroup_path.clone(),
                    cgroup_id,
                    cgroup_path,
                })
            ),
        (
            text(),
            text(),
            proptest::collection::vec(ip(), 0..2),
            proptest::collection::vec((any::<u8>(), any::<u16>()), 0..3)
        )
            .prop_map(|(namespace, name, cluster_ips, ports)| Entity::Service(
                ServiceMeta {
                    namespace,
                    name,
                    cluster_ips,
                    ports,
                }
            )),
    ]
}

fn meta() -> impl Strategy<Value = MetaRecord> {
    (any::<u64>(), 1u8..4, entity()).prop_map(|(ts_ns, op, entity)| MetaRecord {
        ts_ns,
        op: op.into(),
        entity,
    })
}

fn encode_record(r: &Record<'_>) -> Vec<u8> {
    let mut b = Vec::new();
    r.encode(&mut b);
    b
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn socket_events_round_trip((ev, payload) in socket_event()) {
        let ev = SocketEvent { payload: &payload, ..ev };
        let b = encode_record(&Record::Socket(ev.clone()));
        let mut st = record::DecodeStats::default();
        prop_assert_eq!(decode(&b, &mut st).unwrap(), record::Decoded::Record(Record::Socket(ev)));
    }

    #[test]
    fn metadata_round_trips(m in meta()) {
        let b = encode_record(&Record::Metadata(m.clone()));
        let mut st = record::DecodeStats::default();
        prop_assert_eq!(decode(&b, &mut st).unwrap(), record::Decoded::Record(Record::Metadata(m)));
        prop_assert_eq!(st.unknown_tags, 0);
    }

    #[test]
    fn record_decoding_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..400)) {
        let mut st = record::DecodeStats::default();
        let mut b = b"JUNO".to_vec();
        b.extend_from_slice(&bytes);
        let _ = decode(&b, &mut st);
        let _ = decode(&bytes, &mut st);
    }

    #[test]
    fn archives_round_trip(
        frame_size in 4096usize..20_000,
        items in proptest::collection::vec(
            prop_oneof![
                (0u32..2, any::<u64>(), proptest::collection::vec(any::<u8>(), 0..1600), any::<u16>())
                    .prop_map(|(iface, ts, data, extra)| {
                        let orig_len = data.len() as u32 + u32::from(extra);
                        // pcapng keeps whole nanoseconds since the epoch in 64 bits.
                        Owned::Packet { iface, ts_ns: ts >> 1, data, orig_len }
                    }),
                socket_event().prop_map(|(ev, payload)| Owned::Record(encode_record(&Record::Socket(SocketEvent { payload: &payload, ..ev })))),
                meta().prop_map(|m| Owned::Record(encode_record(&Record::Metadata(m)))),
                (0u32..2, any::<u32>()).prop_map(|(i, v)| Owned::Stats(i, InterfaceStats {
                    start_ns: 1, end_ns: 2 + u64::from(v), received: u64::from(v), dropped: 3, delivered: u64::from(v) - u64::from(v.min(3)),
                })),
            ],
            0..60,
        ),
    ) {
        let info = FileInfo { node: "node-a".into(), sequence: 3, start_ns: 1, recorder: Some("test".into()), redaction: Some("rules=http-auth;headers=;params=;fill=*".into()), ..Default::default() };
        let mut w = ArchiveWriter::new(Vec::new(), &info, FrameOptions { frame_size, level: 1 }).unwrap();
        for name in ["veth0", "veth1"] {
            w.add_interface(&InterfaceDesc { name: name.into(), description: Some("pod default/x".into()), linktype: 1, snaplen: 65535 }).unwrap();
        }
        for it in &items {
            match it {
                Owned::Packet { iface, ts_ns, data, orig_len } => w.write_packet(*iface, *ts_ns, data, *orig_len).unwrap(),
                Owned::Record(b) => {
                    let mut st = record::DecodeStats::default();
                    let record::Decoded::Record(r) = decode(b, &mut st).unwrap() else { unreachable!() };
                    w.write_record(&r).unwrap();
                }
                Owned::Stats(i, s) => w.write_interface_stats(*i, s).unwrap(),
            }
        }
        let file = w.finish().unwrap();

        let mut got = Vec::new();
        let mut ifaces = Vec::new();
        let mut infos = Vec::new();
        let rep = read_archive(&file, |item, stream| match item {
            Item::Packet(p) => got.push(Owned::Packet { iface: p.iface, ts_ns: p.ts_ns, data: p.data.to_vec(), orig_len: p.orig_len }),
            Item::Record(Record::FileInfo(f)) => infos.push(f.clone()),
            Item::Record(r) => got.push(Owned::Record(encode_record(r))),
            Item::InterfaceStats(s) => got.push(Owned::Stats(s.iface, InterfaceStats {
                start_ns: 1, end_ns: s.ts_ns, received: s.received.unwrap(), dropped: s.dropped.unwrap(), delivered: s.delivered.unwrap(),
            })),
            Item::Interface(i) => ifaces.push(stream.interfaces()[*i as usize].clone()),
            Item::Section => {}
        }).unwrap();
        prop_assert_eq!(&got, &items);
        prop_assert_eq!(infos, vec![info]);
        prop_assert_eq!(ifaces.len(), 2);
        prop_assert_eq!(ifaces[1].name.as_deref(), Some("veth1"));
        prop_assert_eq!(ifaces[0].description.as_deref(), Some("pod default/x"));
        prop_assert!(rep.trailing.is_none());
        prop_assert_eq!(rep.stats.bad_blocks + rep.stats.bad_records + rep.stats.unknown_blocks, 0);

        // Frames respect the bound (a frame may exceed it only by its last block).
        let scan = frame::scan(&file);
        for e in &scan.frames {
            let idx = e.index.unwrap();
            prop_assert!((idx.uncompressed_len as usize) < frame_size + 1700 + 200);
        }

        // Cut the file anywhere: what was read is a prefix of what was written, with a warning.
        let cut = file.len() * 2 / 3;
        let mut prefix = Vec::new();
        let rep = read_archive(&file[..cut], |item, _| if let Item::Packet(p) = item { prefix.push(p.data.to_vec()) }).unwrap();
        let all: Vec<Vec<u8>> = items.iter().filter_map(|i| match i { Owned::Packet { data, .. } => Some(data.clone()), _ => None }).collect();
        prop_assert!(all.starts_with(&prefix));
        prop_assert!(rep.trailing.is_some() || cut == file.len());
    }
}
