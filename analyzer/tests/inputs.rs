//! The same traffic gives the same exchanges whatever carries it: pcap (either byte order,
//! µs or ns), pcapng, gzip, zstd, a Juno archive, several files or a directory in any order.
//! Files cut short are read as far as they go, with a warning.

#![allow(clippy::unwrap_used, reason = "test code: a panic is a test failure")]

mod common;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;

use common::*;
use juno_analyze::input::{BatchItem, InputOptions, Inputs};

const HTTP: &str = "http-nginx-curl.pcap";

/// Exchanges without the vantage (an archive names its interface, a pcap does not).
fn exchanges(paths: &[&Path]) -> Vec<serde_json::Value> {
    let mut args: Vec<&std::ffi::OsStr> = vec!["logs".as_ref()];
    args.extend(paths.iter().map(|p| p.as_os_str()));
    let mut v = jsonl(&analyze_ok(args));
    for e in &mut v {
        e.as_object_mut().unwrap().remove("vantage");
    }
    v
}

/// Compares exchange lists, reporting the first difference compactly.
fn same(got: &[serde_json::Value], want: &[serde_json::Value]) {
    for (i, (g, w)) in got.iter().zip(want).enumerate() {
        assert_eq!(g, w, "exchange {i} differs");
    }
    assert_eq!(got.len(), want.len(), "number of exchanges");
}

fn baseline() -> Vec<serde_json::Value> {
    let v = exchanges(&[&fixture(HTTP)]);
    assert_eq!(v.len(), 17);
    v
}

fn write(dir: &Path, name: &str, bytes: &[u8]) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, bytes).unwrap();
    p
}

#[test]
fn gzip_and_zstd_are_detected_by_content() {
    let raw = std::fs::read(fixture(HTTP)).unwrap();
    let d = tmp();
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(&raw).unwrap();
    // Misleading names on purpose: detection is by magic bytes.
    let g = write(d.path(), "capture.zst", &gz.finish().unwrap());
    let z = write(
        d.path(),
        "capture.gz",
        &zstd::encode_all(&raw[..], 3).unwrap(),
    );
    let b = baseline();
    same(&exchanges(&[&g]), &b);
    same(&exchanges(&[&z]), &b);
}

#[test]
fn big_endian_nanosecond_pcap() {
    let raw = std::fs::read(fixture(HTTP)).unwrap();
    assert_eq!(
        &raw[..4],
        &[0xd4, 0xc3, 0xb2, 0xa1],
        "fixture is a little-endian µs pcap"
    );
    let le32 = |b: &[u8]| u32::from_le_bytes([b[0], b[1], b[2], b[3]]);
    let mut out = Vec::new();
    out.extend_from_slice(&0xA1B2_3C4Du32.to_be_bytes()); // ns magic, big-endian
    out.extend_from_slice(&u16::from_le_bytes([raw[4], raw[5]]).to_be_bytes());
    out.extend_from_slice(&u16::from_le_bytes([raw[6], raw[7]]).to_be_bytes());
    for off in [8, 12, 16, 20] {
        out.extend_from_slice(&le32(&raw[off..]).to_be_bytes());
    }
    let mut p = 24;
    while p + 16 <= raw.len() {
        let (sec, usec, incl, orig) = (
            le32(&raw[p..]),
            le32(&raw[p + 4..]),
            le32(&raw[p + 8..]),
            le32(&raw[p + 12..]),
        );
        for v in [sec, usec * 1000, incl, orig] {
            out.extend_from_slice(&v.to_be_bytes());
        }
        out.extend_from_slice(&raw[p + 16..p + 16 + incl as usize]);
        p += 16 + incl as usize;
    }
    let d = tmp();
    let f = write(d.path(), "be.pcap", &out);
    same(&exchanges(&[&f]), &baseline());
}

#[test]
fn pcapng_from_editcap() {
    require("editcap");
    let d = tmp();
    let ng = d.path().join("x.pcapng");
    let st = Command::new("editcap")
        .args(["-F", "pcapng"])
        .arg(fixture(HTTP))
        .arg(&ng)
        .status()
        .unwrap();
    assert!(st.success());
    same(&exchanges(&[&ng]), &baseline());
}

#[test]
fn split_files_merge_in_time_order_in_any_order_and_as_a_directory() {
    require("editcap");
    let d = tmp();
    let st = Command::new("editcap")
        .args(["-c", "120"])
        .arg(fixture(HTTP))
        .arg(d.path().join("part.pcap"))
        .status()
        .unwrap();
    assert!(st.success());
    let mut parts: Vec<PathBuf> = std::fs::read_dir(d.path())
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    parts.sort();
    assert!(parts.len() >= 3, "{parts:?}");
    let b = baseline();
    let fwd: Vec<&Path> = parts.iter().map(PathBuf::as_path).collect();
    let rev: Vec<&Path> = parts.iter().rev().map(PathBuf::as_path).collect();
    same(&exchanges(&fwd), &b);
    same(&exchanges(&rev), &b);
    // A directory: captures are found, anything else is skipped with a warning (status 2:
    // something given was not read).
    write(d.path(), "notes.txt", b"not a capture");
    let out = analyze(["logs".as_ref(), d.path().as_os_str()]);
    expect_status(&out, 2);
    assert!(String::from_utf8_lossy(&out.stderr).contains("skipped"));
    let mut got = jsonl(&String::from_utf8(out.stdout).unwrap());
    for e in &mut got {
        e.as_object_mut().unwrap().remove("vantage");
    }
    same(&got, &b);
}

/// Converts the fixture to a Juno archive with small frames, interleaving socket events and
/// metadata records the analyzer must step over.
fn to_archive(frame_size: usize) -> Vec<u8> {
    use juno_archive::*;
    let info = FileInfo {
        node: "test-node".into(),
        start_ns: 1,
        recorder: Some("test".into()),
        ..Default::default()
    };
    let mut w = ArchiveWriter::new(
        Vec::new(),
        &info,
        FrameOptions {
            frame_size,
            level: 3,
        },
    )
    .unwrap();
    let iface = w
        .add_interface(&InterfaceDesc {
            name: "jfx-h".into(),
            description: Some("pod default/nginx".into()),
            linktype: 1,
            snaplen: 262144,
        })
        .unwrap();
    let inputs = Inputs::open(
        &[fixture(HTTP)],
        InputOptions {
            batch_packets: 1000,
            ..InputOptions::default()
        },
    )
    .unwrap();
    let mut n = 0u64;
    inputs
        .read(|batch| {
            for item in &batch.items {
                if let BatchItem::Packet(p) = item {
                    w.write_packet(iface, p.ts, batch.packet_data(p), p.orig_len)
                        .unwrap();
                    n += 1;
                    if n.is_multiple_of(7) {
                        w.write_record(&Record::Metadata(MetaRecord {
                            ts_ns: p.ts,
                            op: MetaOp::Upsert,
                            entity: Entity::Node(NodeMeta {
                                name: "test-node".into(),
                                kernel: None,
                                boot_id: None,
                            }),
                        }))
                        .unwrap();
                    }
                }
            }
            true
        })
        .unwrap();
    w.write_interface_stats(
        iface,
        &InterfaceStats {
            start_ns: 1,
            end_ns: 2,
            received: n + 5,
            dropped: 5,
            delivered: n,
        },
    )
    .unwrap();
    w.finish().unwrap()
}

#[test]
fn juno_archive_gives_the_same_exchanges_and_names_the_interface() {
    let d = tmp();
    let a = write(d.path(), "a.pcapng.zst", &to_archive(8 * 1024));
    assert!(
        juno_archive::frame::scan(&std::fs::read(&a).unwrap())
            .frames
            .len()
            > 10
    );
    same(&exchanges(&[&a]), &baseline());
    let v = jsonl(&analyze_ok(["logs".as_ref(), a.as_os_str()]));
    assert_eq!(v[0]["vantage"]["iface"], "jfx-h");
    let report = analyze_ok(["report".as_ref(), a.as_os_str()]);
    assert!(report.contains("jfx-h [pod default/nginx]"), "{report}");
    assert!(report.contains("5 dropped of"), "{report}");
}

#[test]
fn juno_archive_cut_short_is_read_up_to_its_last_frame() {
    let full = to_archive(8 * 1024);
    let d = tmp();
    let cut = write(d.path(), "cut.pcapng.zst", &full[..full.len() * 2 / 3]);
    let out = analyze(["logs".as_ref(), cut.as_os_str()]);
    // Finished, but the input was cut short: status 2.
    expect_status(&out, 2);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("archive cut short"), "{err}");
    let got = jsonl(&String::from_utf8(out.stdout).unwrap());
    assert!(!got.is_empty() && got.len() < 17, "{}", got.len());
    // What it found is what the whole file has, up to where it stopped.
    let all = exchanges(&[&write(d.path(), "full.pcapng.zst", &full)]);
    for e in &got {
        let mut e = e.clone();
        e.as_object_mut().unwrap().remove("vantage");
        let same = all
            .iter()
            .find(|a| a["uid"] == e["uid"] && a["depth"] == e["depth"])
            .unwrap();
        assert_eq!(same["http"]["method"], e["http"]["method"]);
        assert_eq!(same["http"]["uri"], e["http"]["uri"]);
    }
}

#[test]
fn pcap_cut_inside_a_record_warns() {
    let raw = std::fs::read(fixture(HTTP)).unwrap();
    let d = tmp();
    let f = write(d.path(), "cut.pcap", &raw[..raw.len() - 100]);
    let out = analyze(["logs".as_ref(), f.as_os_str()]);
    expect_status(&out, 2);
    assert!(String::from_utf8_lossy(&out.stderr).contains("file ends inside a record"));
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(&raw).unwrap();
    let gzb = gz.finish().unwrap();
    let g = write(d.path(), "cut.pcap.gz", &gzb[..gzb.len() / 2]);
    let out = analyze(["logs".as_ref(), g.as_os_str()]);
    expect_status(&out, 2);
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("gzip stream ended early"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
