//! PostgreSQL: golden outputs of the psql/pgbench fixture, checks of the analyzer against
//! what the clients reported (`fixtures/postgresql-psql.truth.tsv`) and against tshark's
//! dissection of the same capture, and the Zeek corpus's PostgreSQL traces row by row.

#![allow(clippy::unwrap_used, reason = "test code: a panic is a test failure")]

mod common;

use std::collections::BTreeMap;
use std::ffi::OsStr;
use std::process::Command;

use common::*;
use serde_json::Value as J;

const PCAP: &str = "postgresql-psql.pcap";

fn ours() -> Vec<J> {
    jsonl(&analyze_ok([OsStr::new("logs"), fixture(PCAP).as_os_str()]))
}

fn pg(e: &J) -> &J {
    &e["postgresql"]
}

fn text<'a>(e: &'a J, k: &str) -> Option<&'a str> {
    pg(e)[k].as_str()
}

fn truth() -> Vec<Vec<String>> {
    std::fs::read_to_string(fixture("postgresql-psql.truth.tsv"))
        .unwrap()
        .lines()
        .map(|l| l.split('\t').map(String::from).collect())
        .collect()
}

#[test]
fn postgresql_psql_golden_outputs() {
    golden_outputs(PCAP, "postgresql-psql", &["postgresql"]);
}

/// The psql session's statements, in order, with the SQLSTATE and row count psql reported.
#[test]
fn postgresql_psql_session_matches_what_psql_saw() {
    let ex = ours();
    let all = truth();
    let want: Vec<&Vec<String>> = all.iter().filter(|l| l[0] == "query").collect();
    assert!(want.len() >= 10, "the truth file lists the session");
    // The session's connection: the one whose first query is the session's first statement.
    let uid = ex
        .iter()
        .find(|e| text(e, "frontend_arg") == Some(want[0][1].as_str()))
        .map(|e| e["uid"].clone())
        .unwrap();
    let got: Vec<&J> = ex
        .iter()
        .filter(|e| e["uid"] == uid && text(e, "frontend") == Some("simple_query"))
        .collect();
    assert_eq!(got.len(), want.len());
    for (e, w) in got.iter().zip(&want) {
        let (sql, state, count) = (&w[1], &w[2], w[3].parse::<u64>().unwrap());
        assert_eq!(text(e, "frontend_arg"), Some(sql.as_str()));
        assert_eq!(e["outcome"], "complete", "{sql}");
        if state == "00000" {
            assert!(pg(e).get("error_code").is_none(), "{sql}");
            assert_eq!(pg(e)["success"], true, "{sql}");
        } else {
            assert_eq!(text(e, "error_code"), Some(state.as_str()), "{sql}");
            assert_eq!(pg(e)["success"], false, "{sql}");
        }
        let rows = pg(e)["rows"].as_u64();
        if sql.starts_with("COPY") {
            // psql reports no row count for COPY; the tag carries it.
            assert!(rows.is_some(), "{sql}");
            assert_eq!(pg(e)["copy_out_messages"].as_u64(), rows, "{sql}");
        } else if state == "00000" {
            assert_eq!(rows.unwrap_or(0), count, "{sql}");
        }
        if sql.starts_with("SELECT") && state == "00000" {
            assert_eq!(pg(e)["data_rows"].as_u64(), Some(count), "{sql}");
        }
        if sql.starts_with("DO") {
            assert_eq!(pg(e)["notices"], 1, "{sql}");
        }
    }
    let truth_ssl = truth().into_iter().find(|l| l[0] == "ssl").unwrap();
    assert_eq!(truth_ssl[2], "t", "psql said its connection was encrypted");
    let ssl: Vec<&J> = ex
        .iter()
        .filter(|e| text(e, "frontend") == Some("ssl_request"))
        .collect();
    assert_eq!(ssl.len(), 1);
    assert_eq!(text(ssl[0], "backend_arg"), Some("S"));
    // Nothing after the S: the rest of that connection is TLS.
    assert_eq!(ex.iter().filter(|e| e["uid"] == ssl[0]["uid"]).count(), 1);
}

/// `\copy FROM`: COPY FROM STDIN, its data counted, the count psql printed.
#[test]
fn postgresql_psql_copy_in() {
    let ex = ours();
    let t = truth().into_iter().find(|l| l[0] == "copy").unwrap();
    let n: u64 = t[2].strip_prefix("COPY ").unwrap().parse().unwrap();
    let e = ex
        .iter()
        .find(|e| text(e, "frontend_arg").is_some_and(|q| q.contains("FROM STDIN")))
        .unwrap();
    assert_eq!(pg(e)["rows"].as_u64(), Some(n));
    assert!(pg(e)["copy_in_messages"].as_u64().unwrap() >= 1);
    assert!(pg(e)["copy_in_bytes"].as_u64().unwrap() >= n * 9);
    assert_eq!(e["outcome"], "complete");
}

/// Each login psql attempted, with the outcome psql reported.
#[test]
fn postgresql_psql_logins() {
    let ex = ours();
    let startups: Vec<&J> = ex
        .iter()
        .filter(|e| {
            text(e, "frontend") == Some("startup") && text(e, "application_name") == Some("psql")
        })
        .collect();
    let logins: Vec<Vec<String>> = truth().into_iter().filter(|l| l[0] == "login").collect();
    assert_eq!(logins.len(), 4);
    let ok = startups
        .iter()
        .filter(|e| pg(e)["success"] == true && text(e, "transaction_status") == Some("I"))
        .count();
    // The session and the \copy, plus each successful login.
    assert_eq!(ok, 2 + logins.iter().filter(|l| l[4] == "ok").count());
    for l in logins.iter().filter(|l| l[4] != "ok") {
        let (user, db, err) = (&l[2], &l[3], &l[4]);
        let found = startups.iter().any(|e| {
            text(e, "user") == Some(user.as_str())
                && text(e, "database") == Some(db.as_str())
                && pg(e)["success"] != true
                && if err.starts_with("fe_sendauth") {
                    // The client gave up before answering: the server's request is the last word.
                    text(e, "backend") == Some("auth_request") && e["outcome"] == "truncated"
                } else {
                    text(e, "error_message") == Some(err.as_str())
                        && text(e, "error_severity") == Some("FATAL")
                }
        });
        assert!(found, "login {}: {err}", l[1]);
    }
}

/// pgbench's transactions in each query mode: as many account updates as transactions
/// processed, the SQL recovered through named statements in prepared mode.
#[test]
fn postgresql_pgbench_transactions() {
    let ex = ours();
    let bench: Vec<&J> = ex
        .iter()
        .filter(|e| text(e, "application_name") == Some("pgbench"))
        .collect();
    assert!(bench.iter().all(|e| pg(e).get("error_code").is_none()));
    let updates = |frontend: &str, named: Option<bool>| {
        bench
            .iter()
            .filter(|e| {
                text(e, "frontend") == Some(frontend)
                    && text(e, "frontend_arg")
                        .is_some_and(|q| q.starts_with("UPDATE pgbench_accounts"))
                    && pg(e)["executes"].as_u64() != Some(0)
                    && named
                        .is_none_or(|n| text(e, "statement").is_some_and(|s| !s.is_empty()) == n)
            })
            .inspect(|e| {
                assert_eq!(pg(e)["rows"], 1);
                assert_eq!(e["outcome"], "complete");
            })
            .count() as u64
    };
    let mut checked = 0;
    for l in truth().into_iter().filter(|l| l[0] == "pgbench") {
        let (processed, failed): (u64, u64) = (l[2].parse().unwrap(), l[3].parse().unwrap());
        assert_eq!(failed, 0);
        let got = match l[1].as_str() {
            "simple" => updates("simple_query", None),
            "extended" => updates("extended_query", Some(false)),
            "prepared" => updates("extended_query", Some(true)),
            m => panic!("mode {m}"),
        };
        assert_eq!(got, processed, "pgbench -M {}", l[1]);
        checked += 1;
    }
    assert_eq!(checked, 3);
}

/// tshark dissects the same messages: per client port, the same simple queries in the same
/// order, and over the capture the same numbers of each message kind the exchanges count.
#[test]
fn postgresql_psql_agrees_with_tshark() {
    require("tshark");
    let out = Command::new("tshark")
        .arg("-r")
        .arg(fixture(PCAP))
        .args(["-Y", "pgsql", "-T", "fields", "-E", "occurrence=a"])
        .args(["-E", "aggregator=\x1f", "-E", "separator=\x1e"])
        .args(["-e", "tcp.srcport", "-e", "tcp.dstport"])
        .args(["-e", "pgsql.type", "-e", "pgsql.query"])
        .output()
        .unwrap();
    assert!(out.status.success());
    let mut kinds: BTreeMap<String, u64> = BTreeMap::new();
    let mut queries: BTreeMap<u64, Vec<String>> = BTreeMap::new();
    for line in String::from_utf8_lossy(&out.stdout).lines() {
        let f: Vec<&str> = line.split('\x1e').collect();
        let types: Vec<&str> = f[2].split('\x1f').collect();
        for t in &types {
            *kinds.entry((*t).to_string()).or_default() += 1;
        }
        let client: u64 = if f[1] == "5432" { f[0] } else { f[1] }.parse().unwrap();
        let mut qs = f[3].split('\x1f').filter(|q| !q.is_empty());
        for t in &types {
            if *t == "Simple query" {
                queries
                    .entry(client)
                    .or_default()
                    .push(qs.next().unwrap().to_string());
            }
        }
    }
    let ex = ours();
    let mut mine: BTreeMap<u64, Vec<String>> = BTreeMap::new();
    let sum = |k: &str| -> u64 { ex.iter().filter_map(|e| pg(e)[k].as_u64()).sum() };
    let (data_rows, executes, notices) = (sum("data_rows"), sum("executes"), sum("notices"));
    let count = |f: &dyn Fn(&J) -> bool| ex.iter().filter(|e| f(e)).count() as u64;
    for e in &ex {
        if text(e, "frontend") == Some("simple_query") {
            mine.entry(e["client"]["port"].as_u64().unwrap())
                .or_default()
                .push(text(e, "frontend_arg").unwrap().to_string());
        }
    }
    assert!(queries.values().map(Vec::len).sum::<usize>() >= 300);
    assert_eq!(mine, queries);
    let k = |n: &str| kinds.get(n).copied().unwrap_or(0);
    assert_eq!(data_rows, k("Data row"));
    assert_eq!(executes, k("Execute"));
    assert_eq!(notices, k("Notice"));
    assert_eq!(
        count(&|e| text(e, "frontend") == Some("extended_query")),
        k("Sync")
    );
    assert_eq!(
        count(&|e| text(e, "frontend") == Some("startup")),
        k("Startup message")
    );
    assert_eq!(
        count(&|e| text(e, "frontend") == Some("terminate")),
        k("Termination")
    );
    assert_eq!(
        count(&|e| text(e, "frontend") == Some("ssl_request")),
        k("SSL request")
    );
    assert_eq!(
        count(&|e| pg(e).get("transaction_status").is_some()),
        k("Ready for query")
    );
    assert_eq!(count(&|e| pg(e).get("error_code").is_some()), k("Error"));
    let tags: u64 = ex
        .iter()
        .filter_map(|e| pg(e)["command_tags"].as_array().map(|a| a.len() as u64))
        .sum();
    assert_eq!(tags, k("Command completion"));
}

/// Every row Zeek wrote for the corpus's PostgreSQL traces, field by field, per connection
/// in order.
#[test]
fn every_postgresql_row_zeek_logged_is_reproduced() {
    const FIELDS: &[&str] = &[
        "user",
        "database",
        "application_name",
        "frontend",
        "frontend_arg",
        "backend",
        "backend_arg",
        "success",
        "rows",
    ];
    const CONN: &[&str] = &["id.orig_h", "id.orig_p", "id.resp_h", "id.resp_p"];
    let norm = |v: Option<&String>| match v.map(String::as_str) {
        None | Some("") | Some("-") => "-".to_string(),
        Some(s) => s.to_string(),
    };
    let dir = shared().join("corpus/zeek/postgresql");
    let mut checked = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let p = entry.unwrap().path();
        let Some(name) = p
            .file_name()
            .unwrap()
            .to_str()
            .unwrap()
            .strip_suffix(".expected.cut")
        else {
            continue;
        };
        let expected = zeek_rows(&std::fs::read_to_string(&p).unwrap());
        let d = tmp();
        write_zeek_logs(dir.join(format!("{name}.pcap")), d.path());
        let produced =
            zeek_rows(&std::fs::read_to_string(d.path().join("postgresql.log")).unwrap());
        let group = |rows: &[BTreeMap<String, String>]| {
            let mut g: BTreeMap<Vec<String>, Vec<Vec<String>>> = BTreeMap::new();
            for r in rows {
                g.entry(CONN.iter().map(|k| norm(r.get(*k))).collect())
                    .or_default()
                    .push(FIELDS.iter().map(|k| norm(r.get(*k))).collect());
            }
            g
        };
        assert_eq!(group(&produced), group(&expected), "{name}");
        checked += expected.len();
    }
    assert_eq!(checked, 13);
}
