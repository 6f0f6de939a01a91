//! Interoperability: `zstd -dc FILE | tshark -r -` opens a Juno archive, sees every packet on
//! the right interface, and says nothing about the custom blocks: tshark 4.0 lists each one as
//! an opaque record ("PCAPNG Custom Block", protocol `data`, no interface) without dissecting
//! or warning, and `capinfos` counts only the packets.
//!
//! Needs `zstd` and `tshark` (installed by `scripts/setup.sh`); fails if they are missing.

#![allow(clippy::unwrap_used, reason = "test code: a panic is a test failure")]

use std::process::Command;

use etherparse::PacketBuilder;
use juno_archive::*;

fn http_packet(i: u16) -> Vec<u8> {
    let payload = format!("GET /item/{i} HTTP/1.1\r\nHost: example\r\n\r\n");
    let b = PacketBuilder::ethernet2([2, 0, 0, 0, 0, 1], [2, 0, 0, 0, 0, 2])
        .ipv4([10, 0, 0, 1], [10, 0, 0, 2], 64)
        .tcp(40000 + i, 80, 1000, 65535)
        .ack(1)
        .psh();
    let mut out = Vec::with_capacity(b.size(payload.len()));
    b.write(&mut out, payload.as_bytes()).unwrap();
    out
}

#[test]
fn tshark_reads_decompressed_archive() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("a.pcapng.zst");
    let info = FileInfo {
        node: "n".into(),
        start_ns: 1_700_000_000_000_000_000,
        ..Default::default()
    };
    // Small frames so that the file has several.
    let mut w = ArchiveWriter::new(
        Vec::new(),
        &info,
        FrameOptions {
            frame_size: 4096,
            level: 3,
        },
    )
    .unwrap();
    let a = w
        .add_interface(&InterfaceDesc {
            name: "vethA".into(),
            description: Some("pod default/a".into()),
            linktype: 1,
            snaplen: 262144,
        })
        .unwrap();
    let b = w
        .add_interface(&InterfaceDesc {
            name: "vethB".into(),
            description: None,
            linktype: 1,
            snaplen: 262144,
        })
        .unwrap();
    let mut expected = Vec::new();
    for i in 0..200u16 {
        let iface = if i % 3 == 0 { b } else { a };
        let ts = 1_700_000_000_000_000_000 + u64::from(i) * 1_000_123;
        w.write_packet(iface, ts, &http_packet(i), 0).unwrap();
        expected.push((
            if iface == a { "vethA" } else { "vethB" },
            format!("/item/{i}"),
        ));
        // Interleave the custom blocks tshark has to skip.
        let ev = SocketEvent {
            ts_ns: ts,
            kind: SocketEventKind::Data,
            direction: DataDirection::Send,
            ip_proto: 6,
            pid: 1,
            tid: 1,
            comm: [b'x'; 16],
            cgroup_id: 1,
            netns: 1,
            cookie: u64::from(i),
            local: "10.0.0.1:40000".parse().unwrap(),
            remote: "10.0.0.2:80".parse().unwrap(),
            old_state: 0,
            new_state: 0,
            hook: 0,
            stream_offset: 0,
            orig_len: 5,
            payload: b"hello",
        };
        w.write_record(&Record::Socket(ev)).unwrap();
        w.write_record(&Record::Metadata(MetaRecord {
            ts_ns: ts,
            op: MetaOp::Upsert,
            entity: Entity::Node(NodeMeta {
                name: "n".into(),
                kernel: None,
                boot_id: None,
            }),
        }))
        .unwrap();
    }
    w.write_interface_stats(
        a,
        &InterfaceStats {
            start_ns: 1,
            end_ns: 2,
            received: 10,
            dropped: 2,
            delivered: 8,
        },
    )
    .unwrap();
    std::fs::write(&path, w.finish().unwrap()).unwrap();
    assert!(
        juno_archive::frame::scan(&std::fs::read(&path).unwrap())
            .frames
            .len()
            > 3
    );

    let out = Command::new("sh")
        .arg("-c")
        .arg(format!(
            "zstd -dc '{}' | tshark -r - -T fields -e frame.interface_name -e http.request.uri -e frame.protocols",
            path.display()
        ))
        .output()
        .expect("run sh (zstd and tshark are installed by scripts/setup.sh)");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "tshark failed: {stderr}");
    let mut got = Vec::new();
    let mut custom_records = 0;
    for line in stdout.lines() {
        let f: Vec<&str> = line.split('\t').collect();
        assert_eq!(f.len(), 3, "line {line:?}");
        if f[2] == "data" && f[0].is_empty() {
            custom_records += 1;
        } else {
            assert!(f[2].starts_with("eth:ethertype:ip:tcp"), "line {line:?}");
            got.push((f[0].to_string(), f[1].to_string()));
        }
    }
    let want: Vec<(String, String)> = expected
        .iter()
        .map(|(i, u)| (i.to_string(), u.clone()))
        .collect();
    assert_eq!(got, want, "stderr: {stderr}");
    // Every socket event and metadata record (2 per packet) plus the file-info record.
    assert_eq!(custom_records, 2 * 200 + 1);
    // Nothing but the usual root warning: no complaint about the custom blocks.
    let complaints: Vec<&str> = stderr
        .lines()
        .filter(|l| !l.contains("Running as user") && !l.trim().is_empty())
        .collect();
    assert!(complaints.is_empty(), "tshark complained: {complaints:?}");

    let plain = dir.path().join("a.pcapng");
    let st = Command::new("sh")
        .arg("-c")
        .arg(format!(
            "zstd -qdc '{}' > '{}'",
            path.display(),
            plain.display()
        ))
        .status()
        .unwrap();
    assert!(st.success());
    let cap = Command::new("capinfos")
        .arg("-c")
        .arg("-M")
        .arg(&plain)
        .output()
        .expect("capinfos");
    let cap = String::from_utf8_lossy(&cap.stdout);
    assert!(
        cap.lines()
            .any(|l| l.starts_with("Number of packets:") && l.trim_end().ends_with(" 200")),
        "{cap}"
    );
}
