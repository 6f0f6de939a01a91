//! Shared harness for the integration tests: paths, running the binary, golden files.
#![allow(
    dead_code,
    reason = "each test binary uses a different part of the harness"
)]
#![allow(
    unreachable_pub,
    reason = "a test helper module, used by several test crates"
)]
#![allow(clippy::unwrap_used, reason = "test code: a panic is a test failure")]

pub mod hostile;

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

/// The workspace root.
pub fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

/// A file in fixtures/.
pub fn fixture(name: &str) -> PathBuf {
    root().join("fixtures").join(name)
}

/// The shared material beside the project (`../shared`, present in CI too).
pub fn shared() -> PathBuf {
    let p = root().parent().unwrap().join("shared");
    assert!(
        p.is_dir(),
        "{} is missing: the tests read the Zeek corpus from it",
        p.display()
    );
    p
}

/// Runs `juno-analyze` with arguments.
pub fn analyze<I, S>(args: I) -> Output
where
    I: IntoIterator<Item = S>,
    S: AsRef<std::ffi::OsStr>,
{
    Command::new(env!("CARGO_BIN_EXE_juno-analyze"))
        .args(["--progress", "never"])
        .args(args)
        .output()
        .expect("run juno-analyze")
}

/// Runs `juno-analyze`, requires success, returns stdout.
pub fn analyze_ok<I, S>(args: I) -> String
where
    I: IntoIterator<Item = S>,
    S: AsRef<std::ffi::OsStr>,
{
    let out = analyze(args);
    assert!(
        out.status.success(),
        "juno-analyze failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// Compares `actual` with the golden file `fixtures/golden/<name>`; with `JUNO_BLESS=1`,
/// writes it instead.
pub fn golden(name: &str, actual: &str) {
    let path = fixture("golden").join(name);
    if std::env::var_os("JUNO_BLESS").is_some() {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, actual).unwrap();
        return;
    }
    let want = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("{}: {e} (create it with JUNO_BLESS=1)", path.display()));
    if want != actual {
        let diff: Vec<String> = want
            .lines()
            .zip(actual.lines())
            .enumerate()
            .filter(|(_, (a, b))| a != b)
            .take(5)
            .map(|(i, (a, b))| format!("line {}:\n  want {a}\n  got  {b}", i + 1))
            .collect();
        panic!(
            "{} differs ({} vs {} lines):\n{}\n(if the change is intended: JUNO_BLESS=1 cargo test)",
            path.display(),
            want.lines().count(),
            actual.lines().count(),
            diff.join("\n")
        );
    }
}

/// Runs `logs CAPTURE --format zeek --out-dir DIR`, which must succeed.
pub fn write_zeek_logs(capture: impl AsRef<Path>, dir: impl AsRef<Path>) {
    analyze_ok([
        "logs".as_ref(),
        capture.as_ref().as_os_str(),
        "--format".as_ref(),
        "zeek".as_ref(),
        "--out-dir".as_ref(),
        dir.as_ref().as_os_str(),
    ]);
}

/// Checks a fixture's outputs against its golden files: `<stem>.jsonl` (`logs`),
/// `<stem>.<log>.log` for each Zeek log in `zeek_logs` (`logs --format zeek`) and
/// `<stem>.report.txt` (`report`).
pub fn golden_outputs(capture: &str, stem: &str, zeek_logs: &[&str]) {
    let f = fixture(capture);
    golden(
        &format!("{stem}.jsonl"),
        &analyze_ok([std::ffi::OsStr::new("logs"), f.as_os_str()]),
    );
    if !zeek_logs.is_empty() {
        let d = tmp();
        write_zeek_logs(&f, d.path());
        for log in zeek_logs {
            golden(
                &format!("{stem}.{log}.log"),
                &std::fs::read_to_string(d.path().join(format!("{log}.log"))).unwrap(),
            );
        }
    }
    golden(
        &format!("{stem}.report.txt"),
        &analyze_ok([std::ffi::OsStr::new("report"), f.as_os_str()]),
    );
}

/// Parses JSON lines.
pub fn jsonl(s: &str) -> Vec<serde_json::Value> {
    s.lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

/// Rows of a Zeek TSV log (or `zeek-cut -m` output) as maps.
pub fn zeek_rows(text: &str) -> Vec<std::collections::BTreeMap<String, String>> {
    let mut fields: Option<Vec<String>> = None;
    let mut rows = Vec::new();
    for line in text.lines() {
        if let Some(f) = line.strip_prefix("#fields\t") {
            fields = Some(f.split('\t').map(String::from).collect());
            continue;
        }
        if line.starts_with('#') || line.trim().is_empty() {
            continue;
        }
        let parts: Vec<String> = line.split('\t').map(String::from).collect();
        match &fields {
            None => fields = Some(parts),
            Some(f) => rows.push(f.iter().cloned().zip(parts).collect()),
        }
    }
    rows
}

/// A temporary directory.
pub fn tmp() -> tempfile::TempDir {
    tempfile::tempdir().unwrap()
}

/// True if a command exists.
pub fn have(cmd: &str) -> bool {
    Command::new("sh")
        .arg("-c")
        .arg(format!("command -v {cmd}"))
        .output()
        .is_ok_and(|o| o.status.success())
}

/// Requires a command, with a pointer to the set-up script.
pub fn require(cmd: &str) {
    assert!(
        have(cmd),
        "`{cmd}` is needed by this test: run scripts/setup.sh"
    );
}

/// Runs `juno-analyze` with arguments under `/usr/bin/time` (Debian package `time`, installed
/// by scripts/setup.sh): its output, and its peak resident memory (the kernel's maximum RSS
/// of the child), in bytes.
pub fn analyze_measured<I, S>(args: I) -> (Output, u64)
where
    I: IntoIterator<Item = S>,
    S: AsRef<std::ffi::OsStr>,
{
    assert!(
        Path::new("/usr/bin/time").exists(),
        "/usr/bin/time is needed to measure memory: run scripts/setup.sh"
    );
    let d = tmp();
    let t = d.path().join("time");
    let out = Command::new("/usr/bin/time")
        .arg("-f")
        .arg("%M")
        .arg("-o")
        .arg(&t)
        .arg(env!("CARGO_BIN_EXE_juno-analyze"))
        .args(["--progress", "never"])
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("run juno-analyze under /usr/bin/time");
    let kib: u64 = std::fs::read_to_string(&t)
        .unwrap()
        .lines()
        .last()
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    (out, kib * 1024)
}

/// Runs `juno-analyze` with `stdin` as its standard input.
pub fn analyze_stdin<I, S>(args: I, stdin: &[u8]) -> Output
where
    I: IntoIterator<Item = S>,
    S: AsRef<std::ffi::OsStr>,
{
    use std::io::Write;
    let mut child = Command::new(env!("CARGO_BIN_EXE_juno-analyze"))
        .args(["--progress", "never"])
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut input = child.stdin.take().unwrap();
    let data = stdin.to_vec();
    let writer = std::thread::spawn(move || {
        let _ = input.write_all(&data);
    });
    let out = child.wait_with_output().unwrap();
    writer.join().unwrap();
    out
}

/// The exit status, with stderr in the message when it is not `want`.
pub fn expect_status(out: &Output, want: i32) {
    assert_eq!(
        out.status.code(),
        Some(want),
        "exit status; stderr:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// `juno-analyze report --format json PATH`: requires exit status `status` and returns the
/// run summary it prints.
pub fn report_json(path: &Path, status: i32) -> serde_json::Value {
    let out = analyze([
        "report".as_ref(),
        "--format".as_ref(),
        "json".as_ref(),
        path.as_os_str(),
    ]);
    expect_status(&out, status);
    serde_json::from_slice(&out.stdout).unwrap()
}

/// The virtualenv's Python, with duckdb, polars and pyarrow.
pub fn python() -> PathBuf {
    let venv = std::env::var_os("JUNO_VENV").map_or_else(
        || PathBuf::from(std::env::var_os("HOME").unwrap()).join(".cache/juno/venv"),
        PathBuf::from,
    );
    let py = venv.join("bin/python");
    assert!(
        py.exists(),
        "{} is missing: run scripts/setup.sh (it installs duckdb, polars and pyarrow there)",
        py.display()
    );
    py
}

/// What DuckDB and polars see in the dataset (scripts/check-dataset.py).
pub fn read_dataset(ds: &Path) -> serde_json::Value {
    let out = Command::new(python())
        .arg(root().join("scripts/check-dataset.py"))
        .arg(ds)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "check-dataset.py: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice::<serde_json::Value>(&out.stdout).unwrap()
}
