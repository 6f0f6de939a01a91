//! Exchanges name the pods and workloads at both ends from the archive's metadata, at the
//! exchange's time (pod IPs are reused).
//!
//! The packets are the real ones of `fixtures/recorded-nginx-curl.pcapng.zst` (recorded by
//! juno-record: curl → nginx across a veth). The pod metadata is written by this test into a
//! copy of that archive, as the recorder's Kubernetes source would (a snapshot, then changes):
//! there is no Kubernetes cluster here, so the pods are made up, and named as such.
#![allow(clippy::unwrap_used, reason = "test code: a panic is a test failure")]

mod common;

use common::*;
use juno_archive::{
    ArchiveWriter, Entity, FileInfo, FrameOptions, InterfaceDesc, Item, MetaOp, MetaRecord,
    PodMeta, Record, ServiceMeta, read_archive,
};

fn pod(uid: &str, name: &str, kind: &str, workload: &str, ip: &str) -> PodMeta {
    PodMeta {
        uid: uid.into(),
        namespace: "shop".into(),
        name: name.into(),
        node: Some("fixture-node".into()),
        ips: vec![ip.parse().unwrap()],
        labels: vec![("app".into(), workload.into())],
        workload_kind: Some(kind.into()),
        workload_name: Some(workload.into()),
        host_network: false,
        netns: None,
    }
}

fn meta(ts_ns: u64, op: MetaOp, entity: Entity) -> Record<'static> {
    Record::Metadata(MetaRecord { ts_ns, op, entity })
}

#[test]
fn exchanges_name_the_pods_that_held_the_addresses_at_the_time() {
    // The fixture's packets (one interface: the host side of the server pod's veth).
    let src = std::fs::read(fixture("recorded-nginx-curl.pcapng.zst")).unwrap();
    let mut packets: Vec<(u64, Vec<u8>, u32)> = Vec::new();
    read_archive(&src, |item, _| {
        if let Item::Packet(p) = item {
            packets.push((p.ts_ns, p.data.to_vec(), p.orig_len));
        }
    })
    .unwrap();
    assert!(packets.len() > 500);
    let first = packets[0].0;
    let mid = packets[packets.len() / 2].0;

    // The client address is held by one pod, then — after that pod is deleted — by another.
    let dir = tmp();
    let path = dir.path().join("with-pods.pcapng.zst");
    let info = FileInfo {
        start_ns: first,
        node: "fixture-node".into(),
        ..FileInfo::default()
    };
    let mut w = ArchiveWriter::new(
        std::fs::File::create(&path).unwrap(),
        &info,
        FrameOptions::default(),
    )
    .unwrap();
    let ifc = w
        .add_interface(&InterfaceDesc {
            name: "jfr-h".into(),
            description: Some("pod shop/web-0".into()),
            linktype: 1,
            snaplen: 2048,
        })
        .unwrap();
    let server = pod("u-web", "web-0", "StatefulSet", "web", "10.202.0.2");
    let client_a = pod(
        "u-a",
        "loadgen-7d9f-abcde",
        "Deployment",
        "loadgen",
        "10.202.0.1",
    );
    let client_b = pod(
        "u-b",
        "backfill-29100-xyz",
        "CronJob",
        "backfill",
        "10.202.0.1",
    );
    for r in [
        meta(first, MetaOp::Upsert, Entity::Pod(server)),
        meta(first, MetaOp::Upsert, Entity::Pod(client_a.clone())),
        meta(
            first,
            MetaOp::Upsert,
            Entity::Service(ServiceMeta {
                namespace: "shop".into(),
                name: "web".into(),
                cluster_ips: vec!["10.96.0.10".parse().unwrap()],
                ports: vec![(6, 80)],
            }),
        ),
    ] {
        w.write_record(&r).unwrap();
    }
    let mut switched = false;
    for (ts, data, orig) in &packets {
        if !switched && *ts >= mid {
            w.write_record(&meta(mid, MetaOp::Delete, Entity::Pod(client_a.clone())))
                .unwrap();
            w.write_record(&meta(mid, MetaOp::Upsert, Entity::Pod(client_b.clone())))
                .unwrap();
            switched = true;
        }
        w.write_packet(ifc, *ts, data, *orig).unwrap();
    }
    w.finish().unwrap();

    let ex = jsonl(&analyze_ok([
        std::ffi::OsStr::new("logs"),
        path.as_os_str(),
    ]));
    assert_eq!(ex.len(), 82);
    let (mut before, mut after) = (0, 0);
    for e in &ex {
        let s = &e["server"];
        assert_eq!(
            (
                &s["pod"],
                &s["namespace"],
                &s["workload_kind"],
                &s["workload"]
            ),
            (
                &"web-0".into(),
                &"shop".into(),
                &"StatefulSet".into(),
                &"web".into()
            ),
            "{e}"
        );
        let c = &e["client"];
        // Connections start with the request (curl connects and sends at once): the time
        // of the exchange decides who held the client address.
        let ts = e["request"]["start"].as_str().unwrap();
        let at_mid = humantime::format_rfc3339_nanos(
            std::time::UNIX_EPOCH + std::time::Duration::from_nanos(mid),
        )
        .to_string();
        if *ts < *at_mid {
            before += 1;
            assert_eq!(c["pod"], "loadgen-7d9f-abcde", "{e}");
            assert_eq!(c["workload"], "loadgen");
        } else {
            after += 1;
            assert_eq!(c["pod"], "backfill-29100-xyz", "{e}");
            assert_eq!(c["workload_kind"], "CronJob");
        }
        assert_eq!(c["node"], "fixture-node");
    }
    assert!(before > 10 && after > 10, "{before} before, {after} after");

    // The dependency graph by workload: both client workloads → the server's StatefulSet,
    // with the exchanges split as above.
    let g: serde_json::Value = serde_json::from_str(&analyze_ok([
        std::ffi::OsStr::new("graph"),
        path.as_os_str(),
        "--format".as_ref(),
        "json".as_ref(),
    ]))
    .unwrap();
    let label = |i: &serde_json::Value| {
        g["nodes"][i.as_u64().unwrap() as usize]["label"]
            .as_str()
            .unwrap()
            .to_string()
    };
    let mut edges: Vec<(String, String, u64)> = g["edges"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                label(&e["from"]),
                label(&e["to"]),
                e["requests"].as_u64().unwrap(),
            )
        })
        .collect();
    edges.sort();
    assert_eq!(
        edges,
        [
            (
                "shop/CronJob/backfill".to_string(),
                "shop/StatefulSet/web".to_string(),
                after
            ),
            (
                "shop/Deployment/loadgen".to_string(),
                "shop/StatefulSet/web".to_string(),
                before
            ),
        ]
    );
    // Grouped by namespace: one edge, shop → shop, all of them.
    let g: serde_json::Value = serde_json::from_str(&analyze_ok([
        std::ffi::OsStr::new("graph"),
        path.as_os_str(),
        "--format".as_ref(),
        "json".as_ref(),
        "--group-by".as_ref(),
        "namespace".as_ref(),
        "--namespace".as_ref(),
        "shop".as_ref(),
    ]))
    .unwrap();
    assert_eq!(g["edges"].as_array().unwrap().len(), 1);
    assert_eq!(g["edges"][0]["requests"], before + after);

    // Without metadata, no names (the fixture itself carries none).
    let plain = jsonl(&analyze_ok([
        std::ffi::OsStr::new("logs"),
        fixture("recorded-nginx-curl.pcapng.zst").as_os_str(),
    ]));
    assert!(plain.iter().all(|e| e["client"].get("pod").is_none()));
}
