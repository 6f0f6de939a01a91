//! MySQL: golden outputs of the MariaDB fixture, checks of the analyzer against what the
//! clients reported (`fixtures/mysql-mariadb.statements.tsv`) and against tshark's dissection
//! of the same capture, and the Zeek corpus's MySQL traces row by row.

#![allow(clippy::unwrap_used, reason = "test code: a panic is a test failure")]

mod common;

use std::collections::BTreeMap;
use std::ffi::OsStr;
use std::process::Command;

use common::*;
use juno_analyze::proto::mysql::wire::command_name;

const PCAP: &str = "mysql-mariadb.pcap.zst";

fn ours() -> Vec<serde_json::Value> {
    jsonl(&analyze_ok([OsStr::new("logs"), fixture(PCAP).as_os_str()]))
}

fn text(v: &serde_json::Value) -> String {
    v.as_str().unwrap_or_default().to_string()
}

fn norm(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

#[test]
fn mysql_mariadb_golden_outputs() {
    golden_outputs(PCAP, "mysql-mariadb", &["mysql"]);
}

/// Whether our (bounded) argument is the statement the client printed (shortened to 200
/// characters with `...` by the fixture script).
fn same_statement(ours: &str, printed: &str) -> bool {
    let (o, p) = (norm(ours), norm(printed));
    match p.strip_suffix("...") {
        Some(prefix) => o.starts_with(prefix),
        None => o == p,
    }
}

/// Every statement a client reported on is there with the outcome the client reported.
#[test]
fn mysql_mariadb_matches_what_the_clients_saw() {
    let tsv = std::fs::read_to_string(fixture("mysql-mariadb.statements.tsv")).unwrap();
    let ex = ours();
    let m = |e: &serde_json::Value| e["mysql"].clone();
    let cmd = |e: &serde_json::Value| text(&e["mysql"]["command"]);
    let mut checked = 0;
    for line in tsv.lines() {
        let f: Vec<&str> = line.split('\t').collect();
        let (source, user, stmt, outcome) = (f[0], f[1], f[2], f[3]);
        let label = format!("{source} {stmt:.60}");
        match (source, stmt) {
            ("cli", "(login)") => {
                let e = ex
                    .iter()
                    .find(|e| cmd(e) == "login" && m(e)["error_code"].is_u64())
                    .unwrap_or_else(|| panic!("{label}: no failed login"));
                assert_eq!(format!("error {}", m(e)["error_code"]), outcome, "{label}");
                assert_eq!(text(&m(e)["user"]), user);
                assert_eq!(m(e)["success"], false);
            }
            ("admin", "(ping)") | ("test", "(ping)") => {
                assert!(
                    ex.iter()
                        .any(|e| cmd(e) == "ping" && m(e)["success"] == true),
                    "{label}"
                );
            }
            ("admin", "(status)") => {
                let e = ex.iter().find(|e| cmd(e) == "statistics").unwrap();
                assert!(text(&m(e)["info"]).starts_with("Uptime: "), "{label}");
                assert_eq!(e["outcome"], "complete");
            }
            ("test", "(change_user juno fx2)") => {
                let e = ex.iter().find(|e| cmd(e) == "change_user").unwrap();
                assert_eq!(text(&m(e)["user"]), "juno");
                assert_eq!(text(&m(e)["database"]), "fx2");
                assert_eq!(m(e)["success"], true, "{label}");
            }
            ("slap", "(clients)") => {
                // mysqlslap's client connections: every one logged in and ran its queries.
                let n: usize = outcome.parse().unwrap();
                let mut per_conn: BTreeMap<String, Vec<&serde_json::Value>> = BTreeMap::new();
                for e in &ex {
                    per_conn.entry(text(&e["uid"])).or_default().push(e);
                }
                let slap_clients = per_conn
                    .values()
                    .filter(|v| {
                        v.iter().any(|e| {
                            cmd(e) == "query"
                                && text(&m(e)["argument"]).starts_with("INSERT INTO t1 VALUES")
                        })
                    })
                    .collect::<Vec<_>>();
                assert!(slap_clients.len() >= n, "{label}: {}", slap_clients.len());
                for v in slap_clients {
                    assert_eq!(cmd(v[0]), "login");
                    assert!(
                        v.iter()
                            .all(|e| e["outcome"] == "complete" || cmd(e) == "quit")
                    );
                }
            }
            ("cli", _) => {
                let e = ex
                    .iter()
                    .find(|e| {
                        cmd(e) == "query"
                            && same_statement(&text(&m(e)["argument"]), stmt)
                            && e["mysql"].get("checked").is_none()
                    })
                    .unwrap_or_else(|| panic!("{label}: no such query"));
                let f = m(e);
                let parts: Vec<&str> = outcome.split("; ").collect();
                let rows: u64 = parts
                    .iter()
                    .filter_map(|p| p.strip_prefix("rows "))
                    .map(|n| n.parse::<u64>().unwrap())
                    .sum();
                let results = parts
                    .iter()
                    .filter(|p| p.starts_with("rows ") || p.starts_with("affected "))
                    .count();
                if let Some(code) = outcome.strip_prefix("error ") {
                    assert_eq!(f["error_code"].to_string(), code, "{label}");
                    assert_eq!(f["success"], false, "{label}");
                } else {
                    assert_eq!(f["success"], true, "{label}");
                    if parts.iter().any(|p| p.starts_with("rows ")) {
                        assert_eq!(f["rows"], rows, "{label}");
                    } else {
                        assert!(f.get("rows").is_none(), "{label}");
                    }
                    if let Some(a) = parts.iter().find_map(|p| p.strip_prefix("affected ")) {
                        assert_eq!(f["affected_rows"].to_string(), a, "{label}");
                    }
                    if results > 1 {
                        assert_eq!(f["results"], results as u64, "{label}");
                    }
                }
                assert_eq!(e["outcome"], "complete", "{label}");
            }
            ("test", _) => {
                // mariadb-test --ps-protocol: prepared, executed (twice), closed.
                let related: Vec<&serde_json::Value> = ex
                    .iter()
                    .filter(|e| same_statement(&text(&m(e)["argument"]), stmt))
                    .collect();
                assert!(!related.is_empty(), "{label}");
                assert_eq!(cmd(related[0]), "stmt_prepare", "{label}");
                if let Some(code) = outcome.strip_prefix("error ") {
                    assert_eq!(m(related[0])["error_code"].to_string(), code, "{label}");
                    continue;
                }
                let id = m(related[0])["statement_id"].clone();
                let execs: Vec<_> = related
                    .iter()
                    .filter(|e| cmd(e) == "stmt_execute")
                    .collect();
                assert!(!execs.is_empty(), "{label}");
                for e in execs {
                    assert_eq!(m(e)["statement_id"], id, "{label}");
                    if let Some(n) = outcome.strip_prefix("rows ") {
                        assert_eq!(m(e)["rows"].to_string(), n, "{label}");
                    }
                    if let Some(n) = outcome.strip_prefix("affected ") {
                        assert_eq!(m(e)["affected_rows"].to_string(), n, "{label}");
                    }
                }
                assert!(related.iter().any(|e| cmd(e) == "stmt_close"), "{label}");
            }
            _ => panic!("{label}: unknown ground-truth line"),
        }
        checked += 1;
    }
    assert!(checked >= 25, "{checked}");
    // The fixture covers what it claims to.
    let all: Vec<String> = ex.iter().map(cmd).collect();
    for c in [
        "login",
        "query",
        "init_db",
        "ping",
        "statistics",
        "quit",
        "stmt_prepare",
        "stmt_execute",
        "stmt_close",
        "change_user",
    ] {
        assert!(all.iter().any(|x| x == c), "no {c} in the fixture");
    }
    let f = |pred: &dyn Fn(&serde_json::Value) -> bool| ex.iter().any(|e| pred(&e["mysql"]));
    assert!(f(&|m| m["results"].as_u64() == Some(3)), "multi-results");
    assert!(
        f(&|m| m["infile_bytes"].as_u64() == Some(48)),
        "LOCAL INFILE"
    );
    assert!(
        f(&|m| m["auth_switch"].as_str() == Some("client_ed25519")),
        "auth switch"
    );
    assert!(f(&|m| m["argument_truncated"] == true), "16 MiB query");
}

/// Per client port, the commands tshark dissects (packets starting a command: sequence 0)
/// with their SQL, in order.
fn tshark_commands() -> BTreeMap<u64, Vec<(u64, String)>> {
    require("tshark");
    let out = Command::new("tshark")
        .args(["-r"])
        .arg(fixture(PCAP))
        .args([
            "-Y",
            "mysql.command && tcp.dstport == 3306",
            "-T",
            "fields",
            "-E",
            "occurrence=a",
            // Several values of a field are joined by this (SQL is full of commas).
            "-E",
            "aggregator=\u{1f}",
            "-e",
            "tcp.srcport",
            "-e",
            "mysql.packet_number",
            "-e",
            "mysql.command",
            "-e",
            "mysql.query",
        ])
        .output()
        .unwrap();
    assert!(out.status.success());
    let mut by_port: BTreeMap<u64, Vec<(u64, String)>> = BTreeMap::new();
    for line in String::from_utf8_lossy(&out.stdout).lines() {
        let f: Vec<&str> = line.split('\t').collect();
        let port: u64 = f[0].parse().unwrap();
        let seqs: Vec<&str> = f[1].split('\u{1f}').collect();
        let cmds: Vec<&str> = f[2].split('\u{1f}').collect();
        let mut queries = f.get(3).copied().unwrap_or_default().split('\u{1f}');
        // tshark calls file contents and continuation packets commands too: keep the packets
        // that start a command (sequence 0). Packets of a segment line up with their
        // sequence numbers; queries come only with COM_QUERY and COM_STMT_PREPARE.
        for (seq, c) in seqs.iter().zip(cmds) {
            let code: u64 = c.parse().unwrap();
            let q = if code == 3 || code == 22 {
                queries.next().unwrap_or_default().to_string()
            } else {
                String::new()
            };
            if *seq == "0" {
                by_port.entry(port).or_default().push((code, q));
            }
        }
    }
    by_port
}

#[test]
fn mysql_mariadb_commands_match_tshark() {
    let theirs = tshark_commands();
    let mut mine: BTreeMap<u64, Vec<(u64, String, bool)>> = BTreeMap::new();
    for e in ours() {
        let c = text(&e["mysql"]["command"]);
        if c == "login" {
            continue;
        }
        let code = (0..=255u8)
            .find(|&i| command_name(i) == Some(c.as_str()))
            .unwrap_or_else(|| panic!("unknown command {c}")) as u64;
        mine.entry(e["client"]["port"].as_u64().unwrap())
            .or_default()
            .push((
                code,
                text(&e["mysql"]["argument"]),
                e["mysql"]["argument_truncated"] == true,
            ));
    }
    assert_eq!(
        mine.keys().collect::<Vec<_>>(),
        theirs.keys().collect::<Vec<_>>()
    );
    let mut n = 0;
    for (port, t) in &theirs {
        let m = &mine[port];
        assert_eq!(m.len(), t.len(), "port {port}");
        for ((mc, ma, cut), (tc, tq)) in m.iter().zip(t) {
            assert_eq!(mc, tc, "port {port}");
            if *tc == 3 || *tc == 22 {
                // tshark keeps a trailing NUL (mysqlslap sends one) that Zeek and Juno drop.
                let tq = tq.trim_end_matches('\0');
                if *cut {
                    assert!(tq.starts_with(ma.as_str()), "port {port}: {ma:.80}");
                } else {
                    assert_eq!(ma, tq, "port {port}");
                }
            }
            n += 1;
        }
    }
    assert!(n >= 100, "{n}");
}

/// Every row of Zeek's mysql.log for the corpus traces is reproduced (the fields score.py
/// compares), in order per connection.
#[test]
fn every_mysql_row_zeek_logged_is_reproduced() {
    let dir = shared().join("corpus/zeek/mysql");
    let mut cases = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        let Some(stem) = name.strip_suffix(".expected.log") else {
            continue;
        };
        let trace = ["pcap", "pcapng"]
            .iter()
            .map(|x| dir.join(format!("{stem}.{x}")))
            .find(|p| p.exists())
            .unwrap();
        let d = tmp();
        write_zeek_logs(&trace, d.path());
        let want = zeek_rows(&std::fs::read_to_string(&path).unwrap());
        let got = zeek_rows(&std::fs::read_to_string(d.path().join("mysql.log")).unwrap());
        let key = |r: &BTreeMap<String, String>| {
            [
                "id.orig_h",
                "id.orig_p",
                "id.resp_h",
                "id.resp_p",
                "cmd",
                "arg",
                "success",
                "rows",
                "response",
            ]
            .iter()
            .map(|k| r.get(*k).cloned().unwrap_or_default())
            .collect::<Vec<_>>()
        };
        let want: Vec<_> = want.iter().map(key).collect();
        let got: Vec<_> = got.iter().map(key).collect();
        assert_eq!(got, want, "{stem}");
        cases += 1;
    }
    assert_eq!(cases, 9);
}
