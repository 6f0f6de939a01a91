//! Bad input gets a clear error or a warning, never a panic, and memory stays bounded
//! whatever lengths the input claims.

#![allow(clippy::unwrap_used, reason = "test code: a panic is a test failure")]

mod common;

use std::path::PathBuf;

use common::*;
use juno_analyze::Config;
use juno_analyze::Sink;
use juno_analyze::input::Iface;
use juno_analyze::model::Exchange;

fn write(dir: &std::path::Path, name: &str, bytes: &[u8]) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, bytes).unwrap();
    p
}

fn stderr_of(args: &[&std::ffi::OsStr]) -> (Option<i32>, String) {
    let out = analyze(args);
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn not_a_capture_is_a_clear_error() {
    let d = tmp();
    let cases: Vec<(&str, Vec<u8>, &str)> = vec![
        (
            "garbage.pcap",
            b"this is not a capture file at all".to_vec(),
            "unrecognized format",
        ),
        ("empty.pcap", Vec::new(), "too short"),
        (
            "modified.pcap",
            vec![0x34, 0xcd, 0xb2, 0xa1, 0, 0, 0, 0],
            "not supported",
        ),
        (
            "gz-garbage",
            {
                let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
                std::io::Write::write_all(&mut e, b"hello, not pcap").unwrap();
                e.finish().unwrap()
            },
            "decompressed data is not pcap",
        ),
    ];
    for (name, bytes, want) in cases {
        let f = write(d.path(), name, &bytes);
        let (code, err) = stderr_of(&["logs".as_ref(), f.as_os_str()]);
        assert_eq!(code, Some(1), "{name}");
        assert!(err.contains(want), "{name}: {err}");
        assert!(err.starts_with("juno-analyze: error: "), "{name}: {err}");
        assert!(!err.contains("panicked"), "{name}: {err}");
    }
    let (code, err) = stderr_of(&["logs".as_ref(), "/nonexistent/file.pcap".as_ref()]);
    assert!(
        code == Some(1) && err.contains("cannot read /nonexistent/file.pcap"),
        "{err}"
    );
}

#[test]
fn absurd_record_length_stops_that_file_with_a_warning() {
    let mut raw = std::fs::read(fixture("http-nginx-curl.pcap")).unwrap();
    // Second record's incl_len: 3 GiB.
    let first_incl = u32::from_le_bytes([raw[32], raw[33], raw[34], raw[35]]) as usize;
    let second = 24 + 16 + first_incl;
    raw[second + 8..second + 12].copy_from_slice(&0xC000_0000u32.to_le_bytes());
    let d = tmp();
    let f = write(d.path(), "absurd.pcap", &raw);
    let (code, err) = stderr_of(&["logs".as_ref(), f.as_os_str()]);
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("claims 3221225472 bytes"), "{err}");
}

#[test]
fn pcapng_unknown_blocks_and_foreign_custom_blocks_are_skipped() {
    require("editcap");
    let d = tmp();
    let ng = d.path().join("x.pcapng");
    assert!(
        std::process::Command::new("editcap")
            .args(["-F", "pcapng"])
            .arg(fixture("http-nginx-curl.pcap"))
            .arg(&ng)
            .status()
            .unwrap()
            .success()
    );
    let raw = std::fs::read(&ng).unwrap();
    // Walk the (little-endian) blocks, inserting an unknown block and a foreign custom block
    // before every Enhanced Packet Block.
    let le = |b: &[u8]| u32::from_le_bytes([b[0], b[1], b[2], b[3]]);
    let mut out = Vec::new();
    let mut p = 0;
    while p + 12 <= raw.len() {
        let (ty, len) = (le(&raw[p..]), le(&raw[p + 4..]) as usize);
        if ty == 6 {
            for (t, body) in [
                (0x0000_0F00u32, &b"unknown!"[..]),
                (0x0000_0BAD, &b"\x39\x30\x00\x00foreign."[..]),
            ] {
                out.extend_from_slice(&t.to_le_bytes());
                out.extend_from_slice(&((body.len() + 12) as u32).to_le_bytes());
                out.extend_from_slice(body);
                out.extend_from_slice(&((body.len() + 12) as u32).to_le_bytes());
            }
        }
        out.extend_from_slice(&raw[p..p + len]);
        p += len;
    }
    let f = write(d.path(), "noisy.pcapng", &out);
    let plain = analyze_ok(["logs".as_ref(), ng.as_os_str()]);
    let noisy = analyze_ok(["logs".as_ref(), f.as_os_str()]);
    assert_eq!(noisy, plain);
    let report = analyze_ok(["report".as_ref(), f.as_os_str()]);
    assert!(report.contains("skipped blocks"), "{report}");
}

#[test]
fn trailing_garbage_after_pcapng_is_a_warning() {
    require("editcap");
    let d = tmp();
    let ng = d.path().join("x.pcapng");
    assert!(
        std::process::Command::new("editcap")
            .args(["-F", "pcapng"])
            .arg(fixture("http-nginx-curl.pcap"))
            .arg(&ng)
            .status()
            .unwrap()
            .success()
    );
    let mut raw = std::fs::read(&ng).unwrap();
    raw.extend_from_slice(&[
        0x06, 0, 0, 0, 0xff, 0xff, 0xff, 0x7f, 1, 2, 3, 4, 5, 6, 7, 8,
    ]);
    let f = write(d.path(), "tail.pcapng", &raw);
    let (code, err) = stderr_of(&["logs".as_ref(), f.as_os_str()]);
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("corrupt pcapng block framing"), "{err}");
}

struct Count(usize);
impl Sink for Count {
    fn exchanges(&mut self, ex: &[&Exchange], _: &[Iface]) -> anyhow::Result<()> {
        self.0 += ex.len();
        Ok(())
    }
}

/// Thousands of corrupted variants of real captures (HTTP/1; HTTP/2 and gRPC, where mutated
/// bytes land in frame headers, HPACK blocks and gRPC framing): each is analyzed or refused,
/// nothing panics (a panic fails this test).
#[test]
fn mutated_captures_never_panic() {
    for name in ["http-nginx-curl.pcap", "http2-grpc.pcap"] {
        let base = std::fs::read(fixture(name)).unwrap();
        let d = tmp();
        let mut x: u64 = 0x2545_F491_4F6C_DD1D;
        let mut next = || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        for i in 0..300 {
            let mut m = base.clone();
            for _ in 0..(1 + next() % 40) {
                let at = 24 + (next() as usize) % (m.len() - 24);
                m[at] = next() as u8;
            }
            if i % 10 == 0 {
                m.truncate(24 + (next() as usize) % (m.len() - 24));
            }
            let f = write(d.path(), "m.pcap", &m);
            let mut sink = Count(0);
            let _ = juno_analyze::analyze(&[f], &Config::default(), &mut sink);
        }
    }
}
