//! Damaged input is read as far as it is good — frame by frame, block by block — and every
//! skip or cut is a warning that says what and where; the run then ends with status 2
//! (issue 16). Every input is made here from the bundled fixtures or by hand.
#![allow(clippy::unwrap_used, reason = "test code: a panic is a test failure")]

mod common;

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use common::hostile::{ACK, PSH, SYN, ng, tcp};
use common::*;
use serde_json::Value;

const HTTP: &str = "http-nginx-curl.pcap";

fn write(dir: &Path, name: &str, bytes: &[u8]) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, bytes).unwrap();
    p
}

/// The fixture as a Juno archive with small frames (more than ten).
fn archive() -> Vec<u8> {
    use juno_analyze::input::{BatchItem, InputOptions, Inputs};
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
            frame_size: 8 * 1024,
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
    Inputs::open(&[fixture(HTTP)], InputOptions::default())
        .unwrap()
        .read(|batch| {
            for item in &batch.items {
                if let BatchItem::Packet(p) = item {
                    w.write_packet(iface, p.ts, batch.packet_data(p), p.orig_len)
                        .unwrap();
                }
            }
            true
        })
        .unwrap();
    w.finish().unwrap()
}

/// (method, uri) of each exchange, counted.
fn requests(jsonl_text: &str) -> BTreeMap<(String, String), usize> {
    let mut m = BTreeMap::new();
    for e in jsonl(jsonl_text) {
        let k = (
            e["http"]["method"].as_str().unwrap_or("").to_string(),
            e["http"]["uri"].as_str().unwrap_or("").to_string(),
        );
        *m.entry(k).or_default() += 1;
    }
    m
}

fn logs(f: &Path) -> std::process::Output {
    analyze(["logs".as_ref(), f.as_os_str()])
}

#[test]
fn a_flipped_bit_in_frame_0_loses_only_what_frame_0_held() {
    let full = archive();
    let scan = juno_archive::frame::scan(&full);
    assert!(scan.frames.len() > 10);
    let f0 = scan.frames[0];
    let mut bad = full.clone();
    bad[f0.offset + f0.len / 2] ^= 0x10;
    let d = tmp();
    let whole = requests(&analyze_ok([
        "logs".as_ref(),
        write(d.path(), "a.zst", &full).as_os_str(),
    ]));
    let out = logs(&write(d.path(), "b.zst", &bad));
    expect_status(&out, 2);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("frame 0 (index at byte 0) skipped"), "{err}");
    assert!(err.contains("reading resumes at the next frame"), "{err}");
    let got = requests(&String::from_utf8(out.stdout).unwrap());
    // Most of the archive is still there, and nothing that was not.
    let n: usize = got.values().sum();
    assert!(n >= 12, "only {n} of 17 exchanges: {got:?}");
    for (k, c) in &got {
        assert!(whole.get(k).is_some_and(|w| w >= c), "{k:?}");
    }
}

#[test]
fn a_corrupt_frame_in_the_middle_is_skipped_and_the_frames_after_it_read() {
    let full = archive();
    let scan = juno_archive::frame::scan(&full);
    let f = scan.frames[3];
    let mut bad = full.clone();
    bad[f.offset + f.len / 2] ^= 0x01;
    let d = tmp();
    let out = logs(&write(d.path(), "b.zst", &bad));
    expect_status(&out, 2);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("frame 3 (index at byte"), "{err}");
    let got = jsonl(&String::from_utf8(out.stdout).unwrap());
    assert!(got.len() >= 14, "{}", got.len());
}

#[test]
fn an_unknown_index_version_is_passed_over_with_a_warning() {
    let full = archive();
    let scan = juno_archive::frame::scan(&full);
    let idx = scan.frames[1].offset - juno_archive::frame::INDEX_FRAME_LEN;
    let mut v2 = full.clone();
    v2[idx + 12] = 2;
    let d = tmp();
    let out = logs(&write(d.path(), "v2.zst", &v2));
    expect_status(&out, 2);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains(&format!("frame index at byte {idx} has version 2")),
        "{err}"
    );
    assert!(!err.contains("cut short"), "{err}");
    // Nothing is lost: the frame is read without its index.
    let whole = analyze_ok(["logs".as_ref(), write(d.path(), "a.zst", &full).as_os_str()]);
    assert_eq!(
        requests(&String::from_utf8(out.stdout).unwrap()),
        requests(&whole)
    );
}

/// A Juno archive whose only packet block (of `len` bytes) is split over frames of `piece`
/// bytes: blocks never span frames in what juno-record writes, but a reader must not copy
/// such a block once per frame.
fn spanning(len: usize, piece: usize) -> Vec<u8> {
    let mut content = ng::shb();
    content.extend(ng::idb(&[ng::opt(9, &[9])]));
    let frame = tcp([10, 0, 0, 1], 1, [10, 0, 0, 2], 2, 0, 0, SYN, &[]);
    let mut data = frame;
    data.resize(len, 0);
    content.extend(ng::epb(0, 1_700_000_000_000_000_000, &data));
    let mut out = Vec::new();
    for (i, c) in content.chunks(piece).enumerate() {
        let idx = juno_archive::FrameIndex {
            seq: i as u32,
            blocks: 1,
            ..Default::default()
        };
        juno_archive::frame::encode_frame(idx, c, 1, &mut out).unwrap();
    }
    out
}

#[test]
fn a_block_spanning_thousands_of_frames_is_read_in_linear_time() {
    let d = tmp();
    let small = write(d.path(), "s.zst", &spanning(2 << 20, 1024));
    let large = write(d.path(), "l.zst", &spanning(8 << 20, 1024));
    let time = |f: &Path| {
        let t = Instant::now();
        let v = report_json(f, 0);
        assert_eq!(v["packets"], 1);
        t.elapsed()
    };
    let (a, b) = (time(&small), time(&large));
    // Four times the frames: not sixteen times the time.
    assert!(
        b < a * 8 + Duration::from_millis(500),
        "2 MiB block {a:?}, 8 MiB block {b:?}"
    );
}

fn pcapng_with(idb_opts: &[Vec<u8>], packets: &[(u32, u64)]) -> Vec<u8> {
    let mut f = ng::shb();
    f.extend(ng::idb(idb_opts));
    for (i, (iface, ts)) in packets.iter().enumerate() {
        let pkt = tcp(
            [10, 0, 0, 1],
            1000 + i as u16,
            [10, 0, 0, 2],
            80,
            0,
            0,
            SYN,
            &[],
        );
        f.extend(ng::epb(*iface, *ts, &pkt));
    }
    f
}

fn summary(f: &Path) -> (Value, std::process::Output) {
    let out = analyze([
        "report".as_ref(),
        "--format".as_ref(),
        "json".as_ref(),
        f.as_os_str(),
    ]);
    let v = serde_json::from_slice(&out.stdout).unwrap_or(Value::Null);
    (v, out)
}

#[test]
fn every_tsresol_tshark_reads_is_read() {
    let d = tmp();
    for resol in [0x7fu8, 0xbf, 0xff, 0x80 | 20, 12] {
        let f = write(
            d.path(),
            "r.pcapng",
            &pcapng_with(&[ng::opt(9, &[resol])], &[(0, 1), (0, 2), (0, 1 << 40)]),
        );
        let (v, out) = summary(&f);
        expect_status(&out, 0);
        assert_eq!(v["packets"], 3, "if_tsresol {resol:#x}");
        assert_eq!(v["connections"]["created"], 3, "if_tsresol {resol:#x}");
    }
}

#[test]
fn a_tsoffset_before_1970_reads_the_packets_and_says_their_time_is_unknown() {
    let d = tmp();
    let before = (-10_000_000i64).to_le_bytes();
    let f = write(
        d.path(),
        "o.pcapng",
        &pcapng_with(
            &[ng::opt(14, &before)],
            &[(0, 5_000_000), (0, 20_000_000_000_000)],
        ),
    );
    let (v, out) = summary(&f);
    expect_status(&out, 2);
    assert_eq!(v["packets"], 2);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("whose time is not after 1970"), "{err}");
    assert!(!err.contains("cut short"), "{err}");
    assert_eq!(v["files"][0]["blocks"]["bad_timestamps"], 1);
}

#[test]
fn packets_without_an_interface_description_are_counted_not_a_cut() {
    let d = tmp();
    let mut f = ng::shb();
    let pkt = tcp([10, 0, 0, 1], 1, [10, 0, 0, 2], 80, 0, 0, SYN, &[]);
    f.extend(ng::epb(0, 1, &pkt));
    f.extend(ng::idb(&[]));
    f.extend(ng::epb(0, 2, &pkt));
    f.extend(ng::epb(7, 3, &pkt));
    let f = write(d.path(), "n.pcapng", &f);
    let (v, out) = summary(&f);
    expect_status(&out, 2);
    assert_eq!(v["packets"], 1);
    assert_eq!(v["files"][0]["blocks"]["packets_without_interface"], 2);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("2 packets of interfaces no Interface Description Block described"),
        "{err}"
    );
    assert!(!err.contains("cut short"), "{err}");
}

#[test]
fn broken_block_framing_says_where_in_our_words() {
    let d = tmp();
    let mut f = pcapng_with(&[], &[(0, 1)]);
    let at = f.len();
    f.extend(ng::epb(0, 2, b"abcdefgh"));
    let n = f.len();
    f[n - 4] ^= 0x40;
    let p = write(d.path(), "f.pcapng", &f);
    let out = logs(&p);
    expect_status(&out, 2);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("corrupt pcapng block framing: a block of type 0x6"),
        "{err}"
    );
    assert!(
        err.contains(&format!("at byte {n} of the file")) || err.contains("byte"),
        "{err}"
    );
    assert!(!err.to_lowercase().contains("invalid raw block"), "{err}");
    let _ = at;
}

#[test]
fn zstd_cut_before_its_first_block_says_the_stream_ended_early() {
    let raw = std::fs::read(fixture(HTTP)).unwrap();
    let z = zstd::encode_all(&raw[..], 3).unwrap();
    let d = tmp();
    for cut in [4, 6, 9] {
        let f = write(d.path(), "cut.zst", &z[..cut]);
        let out = logs(&f);
        expect_status(&out, 2);
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains("zstd stream ended early"), "cut {cut}: {err}");
        assert!(!err.contains("unrecognized format"), "cut {cut}: {err}");
    }
}

#[test]
fn an_empty_gzip_says_it_holds_no_data() {
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(b"").unwrap();
    let d = tmp();
    let f = write(d.path(), "empty.gz", &gz.finish().unwrap());
    let out = logs(&f);
    expect_status(&out, 2);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("the gzip stream holds no data"), "{err}");
    // Cut inside the header: the stream ended early.
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(&std::fs::read(fixture(HTTP)).unwrap())
        .unwrap();
    let f = write(d.path(), "cut.gz", &gz.finish().unwrap()[..12]);
    let out = logs(&f);
    expect_status(&out, 2);
    assert!(String::from_utf8_lossy(&out.stderr).contains("gzip stream ended early"));
}

#[test]
fn a_stream_detection_cannot_settle_is_decided_when_its_buffer_fills() {
    // MySQL's server speaks first: off its port, client packets alone leave detection
    // undecided. The stream is not held whole: when the buffer is full, detection decides on
    // what it has (here: nothing recognized), and that is counted.
    let d = tmp();
    let p = d.path().join("m.pcap");
    common::hostile::mysql_pipeline(std::fs::File::create(&p).unwrap(), 50_000);
    let (v, out) = summary(&p);
    expect_status(&out, 0);
    assert_eq!(v["exchanges"]["detection_cut"], 1, "{v}");
    assert_eq!(v["protocols"]["-"], 1, "{v}");
    let _ = (ACK, PSH);
}
