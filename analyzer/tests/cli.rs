//! The command line is honest about what it read (issue 16): documented exit statuses,
//! standard input, directories walked without loops or hangs, in-progress recorder files
//! named, output directories that never mix runs, filters that say when they match nothing,
//! socket and metadata counters in the report.
#![allow(clippy::unwrap_used, reason = "test code: a panic is a test failure")]

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::*;
use serde_json::Value;

const HTTP: &str = "http-nginx-curl.pcap";

fn copy_fixture(dir: &Path, name: &str) -> PathBuf {
    let p = dir.join(name);
    std::fs::copy(fixture(HTTP), &p).unwrap();
    p
}

#[test]
fn exit_status_is_0_clean_2_damaged_or_skipped_1_error() {
    let d = tmp();
    let clean = analyze(["logs".as_ref(), fixture(HTTP).as_os_str()]);
    expect_status(&clean, 0);
    let raw = std::fs::read(fixture(HTTP)).unwrap();
    let cut = d.path().join("cut.pcap");
    std::fs::write(&cut, &raw[..raw.len() - 100]).unwrap();
    let out = analyze(["logs".as_ref(), cut.as_os_str()]);
    expect_status(&out, 2);
    assert!(String::from_utf8_lossy(&out.stderr).contains("file ends inside a record"));
    // Still every exchange it could read.
    assert!(!out.stdout.is_empty());
    // An error: nothing named can be read.
    let out = analyze(["logs", "/nonexistent/x.pcap"]);
    expect_status(&out, 1);
    // Bad arguments are errors too; help is not.
    let out = analyze([
        "--memory".as_ref(),
        "1K".as_ref(),
        "logs".as_ref(),
        cut.as_os_str(),
    ]);
    expect_status(&out, 1);
    assert!(String::from_utf8_lossy(&out.stderr).contains("least budget"));
    expect_status(&analyze(["--help"]), 0);
    // The status is in the summary too.
    let v = report_json(&cut, 2);
    assert_eq!(v["exit_status"], 2);
    assert_eq!(v["input_damaged"], true);
}

#[test]
fn standard_input_reads_like_a_file() {
    let raw = std::fs::read(fixture(HTTP)).unwrap();
    let want = analyze_ok(["logs".as_ref(), fixture(HTTP).as_os_str()]);
    for bytes in [raw.clone(), zstd::encode_all(&raw[..], 3).unwrap()] {
        let out = analyze_stdin(["logs", "-"], &bytes);
        expect_status(&out, 0);
        assert_eq!(String::from_utf8(out.stdout).unwrap(), want);
    }
    // A Juno archive too (no seeking anywhere).
    let f = fixture("recorded-nginx-curl.pcapng.zst");
    let want = analyze_ok(["logs".as_ref(), f.as_os_str()]);
    let out = analyze_stdin(["logs", "-"], &std::fs::read(&f).unwrap());
    expect_status(&out, 0);
    assert_eq!(String::from_utf8(out.stdout).unwrap(), want);
}

#[test]
fn in_progress_recorder_files_are_named_with_how_to_read_them() {
    let d = tmp();
    let dir = d.path().join("rec");
    std::fs::create_dir(&dir).unwrap();
    let partial = copy_fixture(
        &dir,
        ".juno-node-20261204T000000Z-000001.pcapng.zst.partial",
    );
    // Only the in-progress file: the error names it and says how to read it.
    let out = analyze(["logs".as_ref(), dir.as_os_str()]);
    expect_status(&out, 1);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains(".juno-node-20261204T000000Z-000001.pcapng.zst.partial"),
        "{err}"
    );
    assert!(err.contains("name them on the command line"), "{err}");
    // Named, it is read.
    let out = analyze(["logs".as_ref(), partial.as_os_str()]);
    expect_status(&out, 0);
    assert_eq!(jsonl(&String::from_utf8(out.stdout).unwrap()).len(), 17);
    // Beside a sealed file: read the sealed one, name the other, status 2.
    copy_fixture(&dir, "juno-node-20261204T000000Z-000000.pcap");
    let out = analyze(["logs".as_ref(), dir.as_os_str()]);
    expect_status(&out, 2);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("skipped") && err.contains(".partial"), "{err}");
    assert!(err.contains("name it on the command line"), "{err}");
}

#[test]
fn a_fifo_in_a_directory_is_skipped_not_waited_for() {
    let d = tmp();
    let dir = d.path().join("caps");
    std::fs::create_dir(&dir).unwrap();
    copy_fixture(&dir, "a.pcap");
    let fifo = dir.join("b.fifo");
    assert!(
        Command::new("mkfifo")
            .arg(&fifo)
            .status()
            .unwrap()
            .success()
    );
    let mut child = Command::new(env!("CARGO_BIN_EXE_juno-analyze"))
        .args(["--progress", "never", "logs"])
        .arg(&dir)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let t = Instant::now();
    while child.try_wait().unwrap().is_none() {
        if t.elapsed() > Duration::from_secs(30) {
            let _ = child.kill();
            panic!("juno-analyze waited on the FIFO");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let out = child.wait_with_output().unwrap();
    expect_status(&out, 2);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("b.fifo: a FIFO"), "{err}");
    assert_eq!(jsonl(&String::from_utf8(out.stdout).unwrap()).len(), 17);
}

#[test]
fn a_symlink_loop_reads_each_file_once() {
    let d = tmp();
    let dir = d.path().join("caps");
    std::fs::create_dir(&dir).unwrap();
    copy_fixture(&dir, "a.pcap");
    std::os::unix::fs::symlink(".", dir.join("loop")).unwrap();
    std::os::unix::fs::symlink("a.pcap", dir.join("b.pcap")).unwrap();
    let out = analyze([
        "logs".as_ref(),
        dir.as_os_str(),
        dir.join("a.pcap").as_os_str(),
    ]);
    expect_status(&out, 0);
    assert_eq!(jsonl(&String::from_utf8(out.stdout).unwrap()).len(), 17);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("already read"), "{err}");
    assert!(err.contains("the same file as"), "{err}");
}

#[test]
fn zeek_logs_need_an_out_dir_and_runs_never_mix() {
    let d = tmp();
    let out = analyze([
        "logs".as_ref(),
        fixture(HTTP).as_os_str(),
        "--format".as_ref(),
        "zeek".as_ref(),
    ]);
    expect_status(&out, 1);
    assert!(String::from_utf8_lossy(&out.stderr).contains("--out-dir"));
    let z = d.path().join("z");
    let run = |input: &str, extra: &[&str]| {
        let f = fixture(input);
        let mut a: Vec<&std::ffi::OsStr> = vec![
            "logs".as_ref(),
            f.as_os_str(),
            "--format".as_ref(),
            "zeek".as_ref(),
            "--out-dir".as_ref(),
            z.as_os_str(),
        ];
        a.extend(extra.iter().map(std::ffi::OsStr::new));
        analyze(a)
    };
    expect_status(&run(HTTP, &[]), 0);
    assert!(z.join("http.log").exists() && z.join("summary.json").exists());
    // A second run into the same directory is refused: its logs would sit beside the first's.
    let out = run("dns-dig.pcap", &[]);
    expect_status(&out, 1);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("holds the output of an earlier run"), "{err}");
    assert!(err.contains("http.log"), "{err}");
    // With --overwrite, the earlier run's files go first.
    std::fs::write(z.join("notes.txt"), b"mine").unwrap();
    expect_status(&run("dns-dig.pcap", &["--overwrite"]), 0);
    assert!(z.join("dns.log").exists());
    assert!(!z.join("http.log").exists(), "a stale http.log stayed");
    assert!(
        z.join("notes.txt").exists(),
        "a file juno-analyze did not write was removed"
    );
}

#[test]
fn an_unknown_protocol_is_an_error_and_an_unknown_namespace_a_warning() {
    let f = fixture("recorded-nginx-curl.pcapng.zst");
    let out = analyze([
        "graph".as_ref(),
        f.as_os_str(),
        "--protocol".as_ref(),
        "htpp".as_ref(),
    ]);
    expect_status(&out, 1);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("--protocol htpp: no such protocol"), "{err}");
    assert!(err.contains("http") && err.contains("redis"), "{err}");
    let out = analyze([
        "graph".as_ref(),
        f.as_os_str(),
        "--namespace".as_ref(),
        "shop".as_ref(),
    ]);
    expect_status(&out, 0);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("--namespace shop: no exchange or connection"),
        "{err}"
    );
    // This recording has no pod metadata: the warning says so.
    assert!(err.contains("the capture names no namespaces"), "{err}");
}

#[test]
fn socket_and_metadata_counters_are_reported() {
    let f = fixture("recorded-nginx-curl.pcapng.zst");
    let text = analyze_ok(["report".as_ref(), f.as_os_str()]);
    assert!(text.contains("  sockets      164 streams"), "{text}");
    let out = analyze([
        "report".as_ref(),
        "--format".as_ref(),
        "json".as_ref(),
        f.as_os_str(),
    ]);
    expect_status(&out, 0);
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["sockets"]["streams"], 164);
    assert!(v["sockets"]["data_events"].as_u64().unwrap() > 0);
    assert!(v["metadata"]["records"].as_u64().unwrap() > 0);
}

/// The summary says where the run's wall time went (`wall_time_us`): every step, none longer
/// than the run, together no longer than the run (they are disjoint spans of the thread that
/// drives the batches), and the steps that do the work of a capture with exchanges written
/// to Zeek logs took time.
#[test]
fn summary_says_where_the_wall_time_went() {
    let d = tmp();
    let dir = d.path().join("z");
    let out = analyze([
        "logs".as_ref(),
        "--format".as_ref(),
        "zeek".as_ref(),
        "--out-dir".as_ref(),
        dir.as_os_str(),
        fixture("pipeline-1000.pcap.zst").as_os_str(),
    ]);
    expect_status(&out, 0);
    let v: Value =
        serde_json::from_slice(&std::fs::read(dir.join("summary.json")).unwrap()).unwrap();
    assert!(v["exchanges"]["written"].as_u64().unwrap() >= 1000, "{v}");
    let t = &v["wall_time_us"];
    let us = |k: &str| {
        t[k].as_u64()
            .unwrap_or_else(|| panic!("wall_time_us.{k} missing: {t}"))
    };
    let total = us("total");
    let steps = [
        "input_wait",
        "decode",
        "connections",
        "order",
        "output",
        "free",
    ];
    let sum: u64 = steps.iter().map(|k| us(k)).sum();
    assert!(sum <= total, "{t}");
    assert_eq!(t.as_object().unwrap().len(), steps.len() + 1, "{t}");
    for k in ["decode", "connections", "output"] {
        assert!(us(k) > 0, "{k}: {t}");
    }
}

/// Lines are written on a thread of their own: a write that fails there is still the run's
/// error (status 1, the reason said), not lost. Standard output on /dev/full: every write fails
/// with "No space left on device".
#[test]
fn a_failed_write_of_the_output_is_an_error() {
    let full = std::fs::OpenOptions::new()
        .write(true)
        .open("/dev/full")
        .unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_juno-analyze"))
        .args(["--progress", "never", "logs"])
        .arg(fixture("pipeline-1000.pcap.zst"))
        .stdout(Stdio::from(full))
        .stderr(Stdio::piped())
        .output()
        .unwrap();
    expect_status(&out, 1);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("No space left on device"), "{err}");
}
