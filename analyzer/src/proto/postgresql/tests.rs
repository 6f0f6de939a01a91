//! Literal-byte tests of the PostgreSQL parser: every message kind it decodes, the exchange
//! boundaries, split and cut messages, gaps, malformed input, the probe and the Zeek row.

use std::sync::Arc;

use super::*;
use crate::l7::{MatchStats, Matcher};
use crate::model::{ConnInfo, Endpoint, Outcome, Vantage};

const C: Dir = Dir::ToServer;
const S: Dir = Dir::ToClient;

/// A typed message: type byte, length, body.
fn msg(t: u8, body: &[u8]) -> Vec<u8> {
    let mut v = vec![t];
    v.extend_from_slice(&(body.len() as u32 + 4).to_be_bytes());
    v.extend_from_slice(body);
    v
}

/// An untyped message: length and body.
fn untyped(body: &[u8]) -> Vec<u8> {
    let mut v = (body.len() as u32 + 4).to_be_bytes().to_vec();
    v.extend_from_slice(body);
    v
}

const SSL_REQUEST: &[u8] = &[0, 0, 0, 8, 0x04, 0xd2, 0x16, 0x2f];
const GSSENC_REQUEST: &[u8] = &[0, 0, 0, 8, 0x04, 0xd2, 0x16, 0x30];

fn startup(params: &[(&str, &str)]) -> Vec<u8> {
    let mut b = vec![0, 3, 0, 0];
    for (n, v) in params {
        b.extend_from_slice(n.as_bytes());
        b.push(0);
        b.extend_from_slice(v.as_bytes());
        b.push(0);
    }
    b.push(0);
    untyped(&b)
}

fn auth(code: u32, data: &[u8]) -> Vec<u8> {
    let mut b = code.to_be_bytes().to_vec();
    b.extend_from_slice(data);
    msg(b'R', &b)
}

fn ready(s: u8) -> Vec<u8> {
    msg(b'Z', &[s])
}

fn query(sql: &str) -> Vec<u8> {
    let mut b = sql.as_bytes().to_vec();
    b.push(0);
    msg(b'Q', &b)
}

fn cstrs(parts: &[&[u8]]) -> Vec<u8> {
    let mut b = Vec::new();
    for p in parts {
        b.extend_from_slice(p);
        b.push(0);
    }
    b
}

fn complete(tag: &str) -> Vec<u8> {
    msg(b'C', &cstrs(&[tag.as_bytes()]))
}

fn data_row(cols: &[&[u8]]) -> Vec<u8> {
    let mut b = (cols.len() as u16).to_be_bytes().to_vec();
    for c in cols {
        b.extend_from_slice(&(c.len() as u32).to_be_bytes());
        b.extend_from_slice(c);
    }
    msg(b'D', &b)
}

fn row_description() -> Vec<u8> {
    let mut b = vec![0, 1];
    b.extend_from_slice(b"n\0");
    b.extend_from_slice(&[0; 18]);
    msg(b'T', &b)
}

fn error(sev: &str, code: &str, text: &str) -> Vec<u8> {
    let mut b = Vec::new();
    for (c, v) in [(b'S', sev), (b'V', sev), (b'C', code), (b'M', text)] {
        b.push(c);
        b.extend_from_slice(v.as_bytes());
        b.push(0);
    }
    b.push(0);
    msg(b'E', &b)
}

fn notice(text: &str) -> Vec<u8> {
    let mut b = Vec::new();
    for (c, v) in [(b'S', "NOTICE"), (b'C', "00000"), (b'M', text)] {
        b.push(c);
        b.extend_from_slice(v.as_bytes());
        b.push(0);
    }
    b.push(0);
    msg(b'N', &b)
}

fn parse(name: &str, sql: &str) -> Vec<u8> {
    let mut b = cstrs(&[name.as_bytes(), sql.as_bytes()]);
    b.extend_from_slice(&[0, 0]);
    msg(b'P', &b)
}

fn bind(portal: &str, stmt: &str) -> Vec<u8> {
    let mut b = cstrs(&[portal.as_bytes(), stmt.as_bytes()]);
    b.extend_from_slice(&[0, 0, 0, 0, 0, 0]);
    msg(b'B', &b)
}

fn execute(portal: &str) -> Vec<u8> {
    let mut b = cstrs(&[portal.as_bytes()]);
    b.extend_from_slice(&[0, 0, 0, 0]);
    msg(b'E', &b)
}

fn describe(kind: u8, name: &str) -> Vec<u8> {
    let mut b = vec![kind];
    b.extend_from_slice(&cstrs(&[name.as_bytes()]));
    msg(b'D', &b)
}

fn close(kind: u8, name: &str) -> Vec<u8> {
    let mut b = vec![kind];
    b.extend_from_slice(&cstrs(&[name.as_bytes()]));
    msg(b'C', &b)
}

fn sync() -> Vec<u8> {
    msg(b'S', &[])
}

fn cat(parts: &[Vec<u8>]) -> Vec<u8> {
    parts.concat()
}

/// A login without authentication: startup → AuthenticationOk, ParameterStatus,
/// BackendKeyData, ReadyForQuery.
fn login() -> [(Dir, Vec<u8>); 2] {
    [
        (C, startup(&[("user", "alice"), ("database", "shop")])),
        (
            S,
            cat(&[
                auth(0, &[]),
                msg(b'S', b"server_version\x0015.8\0"),
                msg(b'K', &[0, 0, 0x30, 0x39, 1, 2, 3, 4]),
                ready(b'I'),
            ]),
        ),
    ]
}

#[derive(Debug)]
enum Step {
    Data(Dir, Vec<u8>),
    Gap(Dir, u64),
}

struct Run {
    ex: Vec<Exchange>,
    weirds: Vec<&'static str>,
    state: ParserState,
}

fn conn() -> Arc<ConnInfo> {
    Arc::new(ConnInfo {
        uid: "Ctest".into(),
        orig: Endpoint::new([10, 0, 0, 1].into(), 40000),
        resp: Endpoint::new([10, 0, 0, 2].into(), 5432),
        transport: Transport::Tcp,
        vantage: Vantage::Packets { iface: 0 },
        first_ts: 0,
        partial: false,
    })
}

/// Runs steps through the parser (each step at its own time) and the matcher.
fn run_steps(steps: Vec<Step>) -> Run {
    let mut p = Postgres::new();
    let mut m = Matcher::new("postgresql", conn());
    let mut out = Emitter::default();
    let mut st = MatchStats::default();
    let mut ex = Vec::new();
    let mut ts = 1000;
    let mut state = ParserState::Active;
    for s in steps {
        ts += 10;
        match s {
            Step::Data(d, b) => p.data(d, ts, &b, &mut out),
            Step::Gap(d, n) => p.gap(d, ts, n, &mut out),
        }
        m.feed(&mut out.events, &mut st, &mut ex);
        if p.state() != ParserState::Active {
            state = p.state();
            break;
        }
    }
    p.end(C, ts + 1, &mut out);
    p.end(S, ts + 2, &mut out);
    m.feed(&mut out.events, &mut st, &mut ex);
    m.finish(&mut st, &mut ex);
    Run {
        ex,
        weirds: out.weirds,
        state,
    }
}

fn run(steps: Vec<(Dir, Vec<u8>)>) -> Run {
    run_steps(steps.into_iter().map(|(d, b)| Step::Data(d, b)).collect())
}

/// Runs a conversation delivered one byte per `data` call.
fn run_bytewise(steps: Vec<(Dir, Vec<u8>)>) -> Run {
    run_steps(
        steps
            .into_iter()
            .flat_map(|(d, b)| b.into_iter().map(move |x| Step::Data(d, vec![x])))
            .collect(),
    )
}

fn t<'a>(e: &'a Exchange, n: &str) -> Option<&'a str> {
    e.fields.text(n).map(|b| std::str::from_utf8(b).unwrap())
}

fn list(e: &Exchange, n: &str) -> Vec<String> {
    match e.fields.get(n) {
        Some(Value::List(l)) => l
            .iter()
            .map(|x| String::from_utf8_lossy(x).into_owned())
            .collect(),
        _ => Vec::new(),
    }
}

fn b(e: &Exchange, n: &str) -> Option<bool> {
    match e.fields.get(n) {
        Some(Value::Bool(v)) => Some(*v),
        _ => None,
    }
}

fn zeek(e: &Exchange) -> Vec<String> {
    let mut row = Vec::new();
    assert!(zeek_row(e, &mut row));
    row.iter()
        .map(|v| match v {
            ZVal::Unset => "-".into(),
            ZVal::Text(t) => String::from_utf8_lossy(t).into_owned(),
            ZVal::Count(n) => n.to_string(),
            ZVal::Bool(b) => if *b { "T" } else { "F" }.into(),
            ZVal::Literal(l) => (*l).into(),
            ZVal::List(_) => "list".into(),
        })
        .collect()
}

#[test]
fn trust_login_and_simple_select() {
    let mut steps = login().to_vec();
    steps.push((C, query("SELECT n FROM t")));
    steps.push((
        S,
        cat(&[
            row_description(),
            data_row(&[b"1"]),
            data_row(&[b"2"]),
            complete("SELECT 2"),
            ready(b'I'),
        ]),
    ));
    steps.push((C, msg(b'X', &[])));
    let r = run(steps.clone());
    assert!(r.weirds.is_empty(), "{:?}", r.weirds);
    assert_eq!(r.ex.len(), 3);
    let s = &r.ex[0];
    assert_eq!(s.outcome, Outcome::Complete);
    assert_eq!(t(s, "frontend"), Some("startup"));
    assert_eq!(t(s, "user"), Some("alice"));
    assert_eq!(t(s, "database"), Some("shop"));
    assert_eq!(t(s, "backend"), Some("auth_ok"));
    assert_eq!(t(s, "server_version"), Some("15.8"));
    assert_eq!(s.fields.u64("backend_pid"), Some(12345));
    assert_eq!(t(s, "transaction_status"), Some("I"));
    let q = &r.ex[1];
    assert_eq!(q.outcome, Outcome::Complete);
    assert_eq!(t(q, "frontend_arg"), Some("SELECT n FROM t"));
    assert_eq!(
        t(q, "user"),
        Some("alice"),
        "session fields on every exchange"
    );
    assert_eq!(q.fields.u64("data_rows"), Some(2));
    assert_eq!(q.fields.u64("rows"), Some(2));
    assert_eq!(list(q, "command_tags"), vec!["SELECT 2"]);
    assert_eq!(b(q, "success"), Some(true));
    assert_eq!(
        zeek(q),
        [
            "alice",
            "shop",
            "-",
            "simple_query",
            "SELECT n FROM t",
            "-",
            "-",
            "T",
            "2"
        ]
    );
    assert_eq!(q.request.unwrap().start, 1030);
    assert_eq!(q.response.unwrap().end, Some(1040));
    let x = &r.ex[2];
    assert_eq!(t(x, "frontend"), Some("terminate"));
    assert_eq!(x.outcome, Outcome::NoResponse);
    assert_eq!(zeek(x)[3..], ["terminate", "-", "-", "-", "-", "-"]);
    let sum = summarize(q);
    assert_eq!(sum.endpoint, "simple_query SELECT");
    assert!(!sum.failed);

    // The same conversation one byte at a time: the same exchanges.
    let r2 = run_bytewise(steps);
    assert!(r2.weirds.is_empty(), "{:?}", r2.weirds);
    assert_eq!(r2.ex.len(), 3);
    for (a, b) in r.ex.iter().zip(&r2.ex) {
        assert_eq!(a.fields, b.fields);
        assert_eq!(a.outcome, b.outcome);
    }
}

#[test]
fn ssl_refused_then_sasl_login() {
    let r = run(vec![
        (C, SSL_REQUEST.to_vec()),
        (S, b"N".to_vec()),
        (
            C,
            startup(&[
                ("user", "bob"),
                ("database", "db"),
                ("application_name", "psql"),
                ("client_encoding", "UTF8"),
            ]),
        ),
        (S, auth(10, b"SCRAM-SHA-256-PLUS\0SCRAM-SHA-256\0\0")),
        (
            C,
            msg(
                b'p',
                b"SCRAM-SHA-256\0\0\0\0\x20n,,n=,r=secret-nonce-not-logged",
            ),
        ),
        (S, auth(11, b"r=nonce,s=salt,i=4096")),
        (C, msg(b'p', b"c=biws,r=nonce,p=proof")),
        (S, cat(&[auth(12, b"v=sig"), auth(0, &[]), ready(b'I')])),
    ]);
    assert!(r.weirds.is_empty(), "{:?}", r.weirds);
    assert_eq!(r.ex.len(), 2);
    let ssl = &r.ex[0];
    assert_eq!(
        zeek(ssl),
        [
            "-",
            "-",
            "-",
            "ssl_request",
            "-",
            "ssl_reply",
            "N",
            "F",
            "-"
        ]
    );
    assert_eq!(ssl.outcome, Outcome::Complete);
    let s = &r.ex[1];
    assert_eq!(
        zeek(s),
        [
            "bob",
            "db",
            "psql",
            "startup",
            "-",
            "auth_ok",
            "SASL,SASLContinue,SASLFinal",
            "T",
            "-"
        ]
    );
    assert_eq!(list(s, "parameters"), vec!["client_encoding=UTF8"]);
    assert_eq!(t(s, "sasl_mechanism"), Some("SCRAM-SHA-256"));
    assert_eq!(
        list(s, "sasl_mechanisms"),
        vec!["SCRAM-SHA-256-PLUS", "SCRAM-SHA-256"]
    );
    // The request is the whole client side of the exchange (startup at 1030 to the
    // SASLResponse at 1070), the response runs from the first request for a password (1040);
    // credentials are never kept.
    assert_eq!(s.request.unwrap().start, 1030);
    assert_eq!(s.request.unwrap().end, Some(1070));
    assert_eq!(s.response.unwrap().start, 1040);
    let all = format!("{:?}", s.fields);
    assert!(!all.contains("nonce") && !all.contains("proof"));
}

#[test]
fn ssl_accepted_stops_parsing() {
    let r = run(vec![
        (C, SSL_REQUEST.to_vec()),
        (S, b"S".to_vec()),
        (C, vec![0x16, 3, 1, 0, 5, 1, 2, 3, 4, 5]),
    ]);
    assert_eq!(r.state, ParserState::Finished);
    assert_eq!(r.ex.len(), 1);
    assert_eq!(
        zeek(&r.ex[0]),
        [
            "-",
            "-",
            "-",
            "ssl_request",
            "-",
            "ssl_reply",
            "S",
            "T",
            "-"
        ]
    );
    // The server's S and the TLS ServerHello in one segment.
    let r = run(vec![
        (C, SSL_REQUEST.to_vec()),
        (S, b"S\x16\x03\x03\x00\x10".to_vec()),
    ]);
    assert_eq!(r.state, ParserState::Finished);
    assert!(r.weirds.is_empty());
}

#[test]
fn gssenc_refused_then_ssl_refused() {
    let r = run(vec![
        (C, GSSENC_REQUEST.to_vec()),
        (S, b"N".to_vec()),
        (C, SSL_REQUEST.to_vec()),
        (S, b"N".to_vec()),
        login()[0].clone(),
        login()[1].clone(),
    ]);
    assert!(r.weirds.is_empty(), "{:?}", r.weirds);
    let kinds: Vec<_> = r.ex.iter().map(|e| t(e, "frontend").unwrap()).collect();
    assert_eq!(kinds, ["gssenc_request", "ssl_request", "startup"]);
    assert_eq!(t(&r.ex[0], "backend"), Some("gssenc_reply"));
}

#[test]
fn cancel_request() {
    let mut body = vec![0x04, 0xd2, 0x16, 0x2e, 0, 0, 0x30, 0x39];
    body.extend_from_slice(&[9, 9, 9, 9]);
    let r = run(vec![(C, untyped(&body))]);
    assert!(r.weirds.is_empty());
    assert_eq!(r.ex.len(), 1);
    assert_eq!(t(&r.ex[0], "frontend"), Some("cancel_request"));
    assert_eq!(r.ex[0].fields.u64("process_id"), Some(12345));
    assert_eq!(r.ex[0].outcome, Outcome::NoResponse);
}

#[test]
fn login_refused() {
    // MD5 asked, password sent, refused: the error ends the exchange.
    let r = run(vec![
        (C, startup(&[("user", "eve")])),
        (S, auth(5, &[1, 2, 3, 4])),
        (C, msg(b'p', b"md5-not-kept\0")),
        (
            S,
            error(
                "FATAL",
                "28P01",
                "password authentication failed for user \"eve\"",
            ),
        ),
    ]);
    assert!(r.weirds.is_empty(), "{:?}", r.weirds);
    assert_eq!(r.ex.len(), 1);
    let e = &r.ex[0];
    assert_eq!(e.outcome, Outcome::Complete);
    assert_eq!(t(e, "backend"), Some("auth_request,error"));
    assert_eq!(
        t(e, "backend_arg"),
        Some(
            "MD5Password,SeverityLocalized=FATAL,Severity=FATAL,Code=28P01,Message=password authentication failed for user \"eve\""
        )
    );
    assert_eq!(b(e, "success"), Some(false));
    assert_eq!(t(e, "error_code"), Some("28P01"));
    let s = summarize(e);
    assert!(s.failed);
    assert_eq!(s.status.as_deref(), Some("FATAL 28P01"));
    assert!(!format!("{:?}", e.fields).contains("md5-not-kept"));
}

#[test]
fn startup_cut_off_while_authenticating() {
    // The client closes instead of answering the password request (psql -w).
    let r = run(vec![
        (C, startup(&[("user", "zeek")])),
        (S, auth(10, b"SCRAM-SHA-256\0\0")),
    ]);
    assert_eq!(r.ex.len(), 1);
    let e = &r.ex[0];
    assert_eq!(e.outcome, Outcome::Truncated);
    assert_eq!(
        zeek(e),
        [
            "zeek",
            "-",
            "-",
            "startup",
            "-",
            "auth_request",
            "SASL",
            "-",
            "-"
        ]
    );
}

#[test]
fn query_errors_notices_and_failed_transactions() {
    let mut steps = login().to_vec();
    steps.extend([
        (C, query("DROP TABLE IF EXISTS t")),
        (
            S,
            cat(&[
                notice("table \"t\" does not exist, skipping"),
                complete("DROP TABLE"),
                ready(b'I'),
            ]),
        ),
        (C, query("BEGIN")),
        (S, cat(&[complete("BEGIN"), ready(b'T')])),
        (C, query("SELECT 1/0")),
        (
            S,
            cat(&[
                row_description(),
                error("ERROR", "22012", "division by zero"),
                ready(b'E'),
            ]),
        ),
        (C, query("SELECT 1")),
        (
            S,
            cat(&[
                error("ERROR", "25P02", "current transaction is aborted"),
                ready(b'E'),
            ]),
        ),
        (C, query("ROLLBACK")),
        (S, cat(&[complete("ROLLBACK"), ready(b'I')])),
    ]);
    let r = run(steps);
    assert!(r.weirds.is_empty(), "{:?}", r.weirds);
    assert_eq!(r.ex.len(), 6);
    let n = &r.ex[1];
    assert_eq!(
        zeek(n)[5..],
        [
            "-",
            "SeverityLocalized=NOTICE,Code=00000,Message=table \"t\" does not exist, skipping",
            "T",
            "0"
        ]
    );
    assert_eq!(n.fields.u64("notices"), Some(1));
    assert!(n.fields.get("rows").is_none(), "DROP TABLE has no count");
    let e = &r.ex[3];
    assert_eq!(t(e, "error_code"), Some("22012"));
    assert_eq!(t(e, "error_severity"), Some("ERROR"));
    assert_eq!(t(e, "error_message"), Some("division by zero"));
    assert_eq!(t(e, "transaction_status"), Some("E"));
    assert_eq!(zeek(e)[5], "error");
    assert_eq!(zeek(e)[7..], ["F", "-"]);
    assert_eq!(summarize(e).status.as_deref(), Some("ERROR 22012"));
    assert_eq!(t(&r.ex[4], "error_code"), Some("25P02"));
    assert_eq!(b(&r.ex[5], "success"), Some(true));
}

#[test]
fn command_tags_give_rows() {
    let mut steps = login().to_vec();
    steps.extend([
        (C, query("INSERT INTO t VALUES (1); UPDATE t SET a = 2")),
        (
            S,
            cat(&[complete("INSERT 0 1"), complete("UPDATE 3"), ready(b'I')]),
        ),
        (C, query("")),
        (S, cat(&[msg(b'I', &[]), ready(b'I')])),
    ]);
    let r = run(steps);
    assert!(r.weirds.is_empty(), "{:?}", r.weirds);
    let q = &r.ex[1];
    assert_eq!(q.fields.u64("rows"), Some(4));
    assert_eq!(list(q, "command_tags"), vec!["INSERT 0 1", "UPDATE 3"]);
    assert_eq!(b(&r.ex[2], "empty_query"), Some(true));
    assert_eq!(summarize(&r.ex[2]).endpoint, "simple_query");
}

#[test]
fn extended_protocol_named_statements_and_portals() {
    let mut steps = login().to_vec();
    steps.extend([
        // Prepare a named statement (its own Sync cycle).
        (
            C,
            cat(&[parse("s1", "SELECT * FROM t WHERE id = $1"), sync()]),
        ),
        (S, cat(&[msg(b'1', &[]), ready(b'I')])),
        // Bind it to a named portal, describe, execute in two batches, close, sync.
        (
            C,
            cat(&[
                bind("p1", "s1"),
                describe(b'P', "p1"),
                execute("p1"),
                msg(b'H', &[]),
            ]),
        ),
        (
            S,
            cat(&[
                msg(b'2', &[]),
                row_description(),
                data_row(&[b"1"]),
                msg(b's', &[]),
            ]),
        ),
        (C, cat(&[execute("p1"), close(b'P', "p1"), sync()])),
        (
            S,
            cat(&[
                data_row(&[b"2"]),
                complete("SELECT 1"),
                msg(b'3', &[]),
                ready(b'I'),
            ]),
        ),
        // The unnamed statement and portal, one round trip.
        (
            C,
            cat(&[
                parse("", "UPDATE t SET x = $1"),
                bind("", ""),
                describe(b'P', ""),
                execute(""),
                sync(),
            ]),
        ),
        (
            S,
            cat(&[
                msg(b'1', &[]),
                msg(b'2', &[]),
                msg(b'n', &[]),
                complete("UPDATE 7"),
                ready(b'I'),
            ]),
        ),
        // Close the statement; a later Bind to it finds no SQL.
        (C, cat(&[close(b'S', "s1"), sync()])),
        (S, cat(&[msg(b'3', &[]), ready(b'I')])),
        (C, cat(&[bind("", "s1"), execute(""), sync()])),
        (
            S,
            cat(&[
                error("ERROR", "26000", "prepared statement \"s1\" does not exist"),
                ready(b'I'),
            ]),
        ),
    ]);
    let r = run(steps);
    assert!(r.weirds.is_empty(), "{:?}", r.weirds);
    assert_eq!(r.ex.len(), 6);
    let prep = &r.ex[1];
    assert_eq!(t(prep, "frontend"), Some("extended_query"));
    assert_eq!(
        t(prep, "frontend_arg"),
        Some("SELECT * FROM t WHERE id = $1")
    );
    assert_eq!(t(prep, "statement"), Some("s1"));
    assert_eq!(prep.fields.u64("executes"), Some(0));
    assert_eq!(list(prep, "messages"), vec!["parse", "sync"]);
    let exec = &r.ex[2];
    assert_eq!(exec.outcome, Outcome::Complete);
    assert_eq!(
        t(exec, "frontend_arg"),
        Some("SELECT * FROM t WHERE id = $1")
    );
    assert_eq!(t(exec, "statement"), Some("s1"));
    assert_eq!(t(exec, "portal"), Some("p1"));
    assert_eq!(exec.fields.u64("executes"), Some(2));
    assert_eq!(exec.fields.u64("data_rows"), Some(2));
    assert_eq!(
        list(exec, "messages"),
        vec![
            "bind", "describe", "execute", "flush", "execute", "close", "sync"
        ]
    );
    assert_eq!(
        zeek(exec)[3..],
        [
            "extended_query",
            "SELECT * FROM t WHERE id = $1",
            "-",
            "-",
            "T",
            "2"
        ]
    );
    let upd = &r.ex[3];
    assert_eq!(t(upd, "frontend_arg"), Some("UPDATE t SET x = $1"));
    assert_eq!(t(upd, "statement"), Some(""));
    assert_eq!(upd.fields.u64("rows"), Some(7));
    assert_eq!(summarize(upd).endpoint, "extended_query UPDATE");
    let gone = &r.ex[5];
    assert_eq!(t(gone, "frontend_arg"), None);
    assert_eq!(t(gone, "error_code"), Some("26000"));
}

#[test]
fn copy_in_and_out_are_counted_not_kept() {
    let mut steps = login().to_vec();
    steps.extend([
        (C, query("COPY t FROM STDIN")),
        (S, msg(b'G', &[0, 0, 1, 0, 0])),
        (
            C,
            cat(&[
                msg(b'd', b"1\tone\n"),
                msg(b'd', b"2\ttwo\n"),
                msg(b'c', &[]),
            ]),
        ),
        (S, cat(&[complete("COPY 2"), ready(b'I')])),
        (C, query("COPY t TO STDOUT")),
        (
            S,
            cat(&[
                msg(b'H', &[0, 0, 1, 0, 0]),
                msg(b'd', b"1\tone\n"),
                msg(b'd', b"2\ttwo\n"),
                msg(b'd', b"3\tthree\n"),
                msg(b'c', &[]),
                complete("COPY 3"),
                ready(b'I'),
            ]),
        ),
    ]);
    let r = run(steps);
    assert!(r.weirds.is_empty(), "{:?}", r.weirds);
    let cin = &r.ex[1];
    assert_eq!(cin.fields.u64("copy_in_messages"), Some(2));
    assert_eq!(cin.fields.u64("copy_in_bytes"), Some(12));
    assert_eq!(cin.fields.u64("rows"), Some(2));
    let cout = &r.ex[2];
    assert_eq!(cout.fields.u64("copy_out_messages"), Some(3));
    assert_eq!(cout.fields.u64("copy_out_bytes"), Some(20));
    assert_eq!(cout.fields.u64("rows"), Some(3));
    assert!(!format!("{:?}", r.ex).contains("three"));
}

#[test]
fn large_data_rows_stream_in_bounded_memory() {
    let big = vec![b'x'; 300_000];
    let row = data_row(&[&big]);
    let mut steps = login().to_vec();
    steps.push((C, query("SELECT big")));
    // Delivered in 1,000-byte pieces: the parser keeps 2 bytes of each DataRow.
    let resp = cat(&[row.clone(), row, complete("SELECT 2"), ready(b'I')]);
    let mut p = Postgres::new();
    let mut out = Emitter::default();
    for (d, b) in &steps {
        p.data(*d, 1, b, &mut out);
    }
    for chunk in resp.chunks(1000) {
        p.data(S, 2, chunk, &mut out);
        if let Some(cur) = &p.rd[1].cur {
            assert!(cur.keep.capacity() <= 2, "{}", cur.keep.capacity());
        }
    }
    assert!(out.weirds.is_empty());
    let end = out.events.iter().rev().find_map(|e| match e {
        Event::ResponseEnd { fields, .. } => Some(fields.clone()),
        _ => None,
    });
    assert_eq!(end.unwrap().u64("data_rows"), Some(2));
}

#[test]
fn long_sql_is_cut_and_flagged() {
    let sql = format!("SELECT '{}'", "a".repeat(MAX_SQL * 2));
    let mut steps = login().to_vec();
    steps.push((C, query(&sql)));
    steps.push((S, cat(&[complete("SELECT 1"), ready(b'I')])));
    let r = run(steps);
    assert!(r.weirds.is_empty(), "{:?}", r.weirds);
    let q = &r.ex[1];
    assert_eq!(t(q, "frontend_arg").unwrap().len(), MAX_SQL);
    assert_eq!(b(q, "query_truncated"), Some(true));
    assert_eq!(summarize(q).endpoint, "simple_query SELECT");
}

#[test]
fn gap_inside_a_data_row_keeps_the_framing() {
    let row = data_row(&[&[b'z'; 5000]]);
    let mut steps: Vec<Step> = login().into_iter().map(|(d, b)| Step::Data(d, b)).collect();
    steps.push(Step::Data(C, query("SELECT z")));
    steps.push(Step::Data(S, row[..1000].to_vec()));
    steps.push(Step::Gap(S, 3000));
    steps.push(Step::Data(S, row[4000..].to_vec()));
    steps.push(Step::Data(S, cat(&[complete("SELECT 1"), ready(b'I')])));
    steps.push(Step::Data(C, query("SELECT 2")));
    steps.push(Step::Data(S, cat(&[complete("SELECT 1"), ready(b'I')])));
    let r = run_steps(steps);
    assert_eq!(r.weirds, vec!["postgresql_gap_in_message"]);
    assert_eq!(r.ex.len(), 3);
    assert_eq!(r.ex[1].outcome, Outcome::Truncated);
    assert_eq!(r.ex[1].fields.u64("data_rows"), Some(1));
    assert_eq!(r.ex[2].outcome, Outcome::Complete);
}

#[test]
fn gap_across_messages_resyncs_on_ready_for_query() {
    let mut steps: Vec<Step> = login().into_iter().map(|(d, b)| Step::Data(d, b)).collect();
    steps.push(Step::Data(C, query("SELECT a")));
    // The server's answer loses its middle: a DataRow's end and the next header.
    let resp = cat(&[
        data_row(&[b"aaaa"]),
        data_row(&[b"bbbb"]),
        complete("SELECT 2"),
    ]);
    steps.push(Step::Data(S, resp[..8].to_vec()));
    steps.push(Step::Gap(S, 12));
    steps.push(Step::Data(S, resp[20..].to_vec()));
    steps.push(Step::Data(S, ready(b'I')));
    steps.push(Step::Data(C, query("SELECT b")));
    steps.push(Step::Data(S, cat(&[complete("SELECT 0"), ready(b'I')])));
    let r = run_steps(steps);
    assert_eq!(
        r.weirds,
        vec!["postgresql_gap_lost_sync", "postgresql_resync"]
    );
    assert_eq!(r.ex.len(), 3);
    assert_eq!(r.ex[1].outcome, Outcome::Truncated);
    assert_eq!(t(&r.ex[2], "frontend_arg"), Some("SELECT b"));
    assert_eq!(r.ex[2].outcome, Outcome::Complete);
    assert_eq!(r.state, ParserState::Active);
}

#[test]
fn client_gap_resyncs_on_query() {
    let mut steps: Vec<Step> = login().into_iter().map(|(d, b)| Step::Data(d, b)).collect();
    let q = query("SELECT lost");
    steps.push(Step::Data(C, q[..3].to_vec()));
    steps.push(Step::Gap(C, 50));
    steps.push(Step::Data(
        C,
        cat(&[b"junk".to_vec(), query("SELECT found")]),
    ));
    steps.push(Step::Data(S, cat(&[complete("SELECT 1"), ready(b'I')])));
    let r = run_steps(steps);
    assert_eq!(
        r.weirds,
        vec!["postgresql_gap_lost_sync", "postgresql_resync"]
    );
    let found =
        r.ex.iter()
            .find(|e| t(e, "frontend_arg") == Some("SELECT found"))
            .unwrap();
    assert_eq!(found.outcome, Outcome::Complete);
}

#[test]
fn resync_gives_up_after_its_bound() {
    let mut steps: Vec<Step> = login().into_iter().map(|(d, b)| Step::Data(d, b)).collect();
    steps.push(Step::Data(C, query("SELECT 1")));
    steps.push(Step::Data(S, vec![b'D', 0, 0]));
    steps.push(Step::Gap(S, 100));
    steps.push(Step::Gap(C, 100));
    for _ in 0..(MAX_RESYNC_SCAN / 65536 + 2) {
        steps.push(Step::Data(S, vec![b'.'; 65536]));
        steps.push(Step::Data(C, vec![b'.'; 65536]));
    }
    let r = run_steps(steps);
    assert_eq!(r.state, ParserState::GaveUp);
    assert!(r.weirds.contains(&"postgresql_resync_failed"));
}

#[test]
fn absurd_lengths_and_bad_types() {
    // A DataRow claiming 4 GiB: refused, framing lost, no allocation of that size.
    let mut steps = login().to_vec();
    steps.push((C, query("SELECT 1")));
    steps.push((S, vec![b'D', 0xff, 0xff, 0xff, 0xff, 0, 1]));
    let r = run(steps);
    assert!(
        r.weirds.contains(&"postgresql_bad_length"),
        "{:?}",
        r.weirds
    );
    assert_eq!(r.ex[1].outcome, Outcome::Truncated);

    // Length below 4.
    let r = run(vec![login()[0].clone(), (S, vec![b'Z', 0, 0, 0, 2])]);
    assert!(r.weirds.contains(&"postgresql_bad_length"));

    // A non-letter type byte from the server.
    let r = run(vec![login()[0].clone(), (S, vec![0x01, 0, 0, 0, 4])]);
    assert!(r.weirds.contains(&"postgresql_bad_message_type"));

    // A startup length beyond the server's limit: give up.
    let r = run(vec![(C, vec![0, 1, 0, 0, 0, 3, 0, 0])]);
    assert_eq!(r.state, ParserState::GaveUp);
    assert!(r.weirds.contains(&"postgresql_bad_length"));

    // Protocol 2 is not parsed.
    let r = run(vec![(C, untyped(&[0, 2, 0, 0, 0]))]);
    assert_eq!(r.state, ParserState::GaveUp);
    assert!(r.weirds.contains(&"postgresql_bad_startup"));
}

#[test]
fn malformed_bodies_are_weirds() {
    let mut steps = login().to_vec();
    steps.extend([
        (C, msg(b'Q', b"no terminator")),
        (
            S,
            cat(&[msg(b'E', b"SERROR\0Cxx"), msg(b'Z', b"?"), msg(b'R', &[0])]),
        ),
        (C, msg(b'E', b"portal-without-rest")),
        (C, msg(b'k', b"unknown")),
        (S, msg(b'y', b"unknown")),
    ]);
    let r = run(steps);
    for w in [
        "postgresql_malformed_error_fields",
        "postgresql_bad_transaction_status",
        "postgresql_malformed_extended_message",
        "postgresql_unknown_message_type",
    ] {
        assert!(r.weirds.contains(&w), "{w}: {:?}", r.weirds);
    }
    let q = &r.ex[1];
    assert_eq!(t(q, "frontend_arg"), Some("no terminator"));
}

#[test]
fn mid_stream_capture() {
    // No startup seen: typed messages from the first byte, a response whose query was
    // before the capture.
    let r = run(vec![
        (
            S,
            cat(&[data_row(&[b"1"]), complete("SELECT 9"), ready(b'I')]),
        ),
        (C, query("SELECT 2")),
        (S, cat(&[complete("SELECT 1"), ready(b'T')])),
    ]);
    assert_eq!(r.weirds, vec!["postgresql_response_without_request"]);
    assert_eq!(r.ex.len(), 2);
    assert_eq!(r.ex[0].outcome, Outcome::NoRequest);
    assert_eq!(summarize(&r.ex[0]).endpoint, "(no request)");
    assert_eq!(r.ex[0].fields.u64("rows"), Some(9));
    assert_eq!(r.ex[1].outcome, Outcome::Complete);
    assert_eq!(t(&r.ex[1], "user"), None);
}

#[test]
fn pipelined_queries_answer_in_order() {
    let mut steps = login().to_vec();
    steps.push((
        C,
        cat(&[query("SELECT 1"), query("SELECT 2"), query("SELECT 3")]),
    ));
    steps.push((
        S,
        cat(&[
            complete("SELECT 1"),
            ready(b'I'),
            complete("SELECT 2"),
            ready(b'I'),
            complete("SELECT 3"),
            ready(b'I'),
        ]),
    ));
    let r = run(steps);
    assert_eq!(r.ex.len(), 4);
    for (i, e) in r.ex[1..].iter().enumerate() {
        let n = i + 1;
        assert_eq!(t(e, "frontend_arg"), Some(format!("SELECT {n}").as_str()));
        assert_eq!(e.fields.u64("rows"), Some(n as u64));
    }
}

#[test]
fn asynchronous_messages_between_exchanges_are_not_exchanges() {
    let mut steps = login().to_vec();
    steps.push((
        S,
        cat(&[
            msg(b'S', b"TimeZone\0UTC\0"),
            notice("async"),
            msg(b'A', b"\0\0\0\x01chan\0\0"),
        ]),
    ));
    let r = run(steps);
    assert!(r.weirds.is_empty(), "{:?}", r.weirds);
    assert_eq!(r.ex.len(), 1);
}

#[test]
fn probe() {
    let p = |c: &[u8], s: &[u8], port: u16| {
        super::probe(&ProbeInput {
            to_server: c,
            to_client: s,
            server_port: port,
            transport: Transport::Tcp,
        })
    };
    assert_eq!(p(SSL_REQUEST, b"", 9999), Probe::Yes);
    assert_eq!(p(GSSENC_REQUEST, b"", 9999), Probe::Yes);
    assert_eq!(p(&startup(&[("user", "u")]), b"", 9999), Probe::Yes);
    assert_eq!(p(&SSL_REQUEST[..5], b"", 5432), Probe::NeedMore);
    assert_eq!(p(b"", b"", 5432), Probe::NeedMore);
    // Not PostgreSQL: HTTP, TLS, DNS over TCP, SSH.
    assert_eq!(
        p(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n", b"", 5432),
        Probe::No
    );
    assert_eq!(p(b"", b"HTTP/1.1 200 OK\r\n", 5432), Probe::No);
    assert_eq!(p(&[0x16, 3, 1, 2, 0, 1], b"", 5432), Probe::No);
    assert_eq!(
        p(&[0, 0x1c, 0x12, 0x34, 1, 0, 0, 1, 0, 0], b"", 5432),
        Probe::No
    );
    assert_eq!(p(b"SSH-2.0-OpenSSH_9.2\r\n", b"", 5432), Probe::No);
    // Mid-stream: typed messages.
    let two = cat(&[query("SELECT 1"), query("SELECT 2")]);
    assert_eq!(p(&two, b"", 9999), Probe::Yes);
    assert_eq!(p(&query("SELECT 1"), b"", 5432), Probe::Yes);
    assert_eq!(p(&query("SELECT 1"), b"", 9999), Probe::NeedMore);
    assert_eq!(
        p(
            &query("SELECT 1"),
            &cat(&[complete("SELECT 1"), ready(b'I')]),
            9999
        ),
        Probe::Yes
    );
    assert_eq!(p(&msg(b'Q', b"no nul"), b"", 5432), Probe::No);
    assert_eq!(p(b"", &ready(b'X'), 5432), Probe::No);
    assert_eq!(
        p(b"", &cat(&[complete("BEGIN"), ready(b'T')]), 9999),
        Probe::Yes
    );
    // Not on UDP.
    assert_eq!(
        super::probe(&ProbeInput {
            to_server: SSL_REQUEST,
            to_client: b"",
            server_port: 5432,
            transport: Transport::Udp,
        }),
        Probe::No
    );
}

#[test]
fn detection_does_not_steal_http_or_dns() {
    let http = ProbeInput {
        to_server: b"GET / HTTP/1.1\r\n\r\n",
        to_client: b"",
        server_port: 5432,
        transport: Transport::Tcp,
    };
    let d = crate::proto::detect(&http, true).unwrap().unwrap();
    assert_eq!(d.proto.name, "http");
    let pg = ProbeInput {
        to_server: SSL_REQUEST,
        to_client: b"",
        server_port: 80,
        transport: Transport::Tcp,
    };
    let d = crate::proto::detect(&pg, false).unwrap().unwrap();
    assert_eq!(d.proto.name, "postgresql");
}

/// Mutated copies of a valid conversation (bytes flipped, cut into random segments, some
/// lost) never panic, and every exchange the matcher writes is one of the known kinds.
#[test]
fn mutated_conversations_do_not_panic() {
    let mut base = login().to_vec();
    base.extend([
        (
            C,
            cat(&[query("SELECT 1"), parse("s", "SELECT $1"), bind("p", "s")]),
        ),
        (
            S,
            cat(&[data_row(&[b"1"]), complete("SELECT 1"), ready(b'I')]),
        ),
        (C, cat(&[execute("p"), sync(), msg(b'X', &[])])),
        (
            S,
            cat(&[
                msg(b'1', &[]),
                msg(b'2', &[]),
                error("ERROR", "1", "x"),
                ready(b'E'),
            ]),
        ),
    ]);
    let mut seed: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut rnd = move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    for _ in 0..2000 {
        let mut steps = Vec::new();
        for (d, b) in &base {
            let mut b = b.clone();
            for _ in 0..rnd() % 3 {
                let i = (rnd() as usize) % b.len();
                b[i] = rnd() as u8;
            }
            let mut rest = &b[..];
            while !rest.is_empty() {
                let n = 1 + (rnd() as usize) % rest.len();
                let (seg, tail) = rest.split_at(n);
                if rnd() % 23 == 0 {
                    steps.push(Step::Gap(*d, n as u64));
                } else {
                    steps.push(Step::Data(*d, seg.to_vec()));
                }
                rest = tail;
            }
        }
        let r = run_steps(steps);
        for e in &r.ex {
            assert!(matches!(
                t(e, "frontend"),
                None | Some(
                    "startup"
                        | "simple_query"
                        | "extended_query"
                        | "terminate"
                        | "ssl_request"
                        | "gssenc_request"
                        | "cancel_request"
                        | "function_call"
                )
            ));
        }
    }
}
