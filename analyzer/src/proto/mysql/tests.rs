//! Literal-byte tests of the MySQL parser: every message type, the conversations around them
//! (login with auth switches, result sets in both EOF styles, multi-results, prepared
//! statements, LOCAL INFILE), packets split anywhere or continued past 16 MiB, gaps,
//! malformed input, the probe and the Zeek row.

use std::sync::Arc;

use super::*;
use crate::l7::{MatchStats, Matcher};
use crate::model::{Endpoint, Outcome, Vantage};

fn hex(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

/// A packet: 3-byte little-endian length, sequence id, payload.
fn pkt(seq: u8, payload: &[u8]) -> Vec<u8> {
    let n = payload.len();
    let mut v = vec![n as u8, (n >> 8) as u8, (n >> 16) as u8, seq];
    v.extend_from_slice(payload);
    v
}

/// MariaDB 10.11's greeting, as captured (mysql_native_password, MariaDB extended caps).
const MARIADB_GREETING: &str = "640000000a352e352e352d31302e31312e31392d4d6172696144422d302b646562313275310005000000344b5e74506f617800fef7080200ff81150000000000001d00000059333346476f7934354e673c006d7973716c5f6e61746976655f70617373776f726400";

const BASE_CAPS: u32 = 0x0000_0200 | 0x0000_8000 | 0x0008_0000 | 0x0000_2000 | 0x0001_0000;
const DEPRECATE_EOF: u32 = 0x0100_0000;
const QUERY_ATTRS: u32 = 0x0800_0000;

/// A MySQL 8 greeting offering `caps` (and CLIENT_MYSQL).
fn greeting(caps: u32) -> Vec<u8> {
    let caps = caps | 1;
    let mut p = vec![10];
    p.extend_from_slice(b"8.0.36\0");
    p.extend_from_slice(&7u32.to_le_bytes());
    p.extend_from_slice(b"abcdefgh\0");
    p.extend_from_slice(&(caps as u16).to_le_bytes());
    p.push(0xff);
    p.extend_from_slice(&2u16.to_le_bytes());
    p.extend_from_slice(&((caps >> 16) as u16).to_le_bytes());
    p.push(21);
    p.extend_from_slice(&[0; 10]);
    p.extend_from_slice(b"ijklmnopqrst\0");
    p.extend_from_slice(b"caching_sha2_password\0");
    pkt(0, &p)
}

/// A 4.1 handshake response.
fn handshake(caps: u32, user: &str, db: Option<&str>) -> Vec<u8> {
    let caps = caps | 1 | if db.is_some() { 8 } else { 0 };
    let mut p = caps.to_le_bytes().to_vec();
    p.extend_from_slice(&(16u32 << 20).to_le_bytes());
    p.push(0xff);
    p.extend_from_slice(&[0; 23]);
    p.extend_from_slice(user.as_bytes());
    p.push(0);
    p.push(20);
    p.extend_from_slice(&[0x5a; 20]);
    if let Some(d) = db {
        p.extend_from_slice(d.as_bytes());
        p.push(0);
    }
    p.extend_from_slice(b"caching_sha2_password\0");
    pkt(1, &p)
}

fn ok(seq: u8, affected: u8, status: u16) -> Vec<u8> {
    let mut p = vec![0x00, affected, 0];
    p.extend_from_slice(&status.to_le_bytes());
    p.extend_from_slice(&[0, 0]);
    pkt(seq, &p)
}

/// The OK that ends rows under CLIENT_DEPRECATE_EOF.
fn ok_fe(seq: u8, status: u16) -> Vec<u8> {
    let mut p = vec![0xfe, 0, 0];
    p.extend_from_slice(&status.to_le_bytes());
    p.extend_from_slice(&[0, 0]);
    pkt(seq, &p)
}

fn err(seq: u8, code: u16, state: &str, msg: &str) -> Vec<u8> {
    let mut p = vec![0xff];
    p.extend_from_slice(&code.to_le_bytes());
    p.push(b'#');
    p.extend_from_slice(state.as_bytes());
    p.extend_from_slice(msg.as_bytes());
    pkt(seq, &p)
}

fn eof(seq: u8, status: u16) -> Vec<u8> {
    let mut p = vec![0xfe, 0, 0];
    p.extend_from_slice(&status.to_le_bytes());
    pkt(seq, &p)
}

fn coldef(seq: u8, name: &str) -> Vec<u8> {
    let mut p = Vec::new();
    for s in ["def", "db", "t", "t", name, name] {
        p.push(s.len() as u8);
        p.extend_from_slice(s.as_bytes());
    }
    p.extend_from_slice(&[0x0c, 0x21, 0, 0x2d, 0, 0, 0, 0xfd, 0, 0, 0, 0, 0]);
    pkt(seq, &p)
}

fn row(seq: u8, vals: &[&str]) -> Vec<u8> {
    let mut p = Vec::new();
    for v in vals {
        p.push(v.len() as u8);
        p.extend_from_slice(v.as_bytes());
    }
    pkt(seq, &p)
}

fn query(sql: &str) -> Vec<u8> {
    let mut p = vec![0x03];
    p.extend_from_slice(sql.as_bytes());
    pkt(0, &p)
}

fn cmd(code: u8, arg: &[u8]) -> Vec<u8> {
    let mut p = vec![code];
    p.extend_from_slice(arg);
    pkt(0, &p)
}

fn cat(parts: &[Vec<u8>]) -> Vec<u8> {
    parts.concat()
}

#[derive(Clone, Debug)]
enum S {
    /// Client bytes.
    C(Vec<u8>),
    /// Server bytes.
    Sv(Vec<u8>),
    /// Client bytes lost.
    LostC(u64),
    /// Server bytes lost.
    LostSv(u64),
}

fn conn() -> Arc<ConnInfo> {
    Arc::new(ConnInfo {
        uid: "Ct".into(),
        orig: Endpoint::new([10, 0, 0, 1].into(), 40000),
        resp: Endpoint::new([10, 0, 0, 2].into(), 3306),
        transport: Transport::Tcp,
        vantage: Vantage::Packets { iface: 0 },
        first_ts: 0,
        partial: false,
    })
}

#[derive(Debug)]
struct Run {
    ex: Vec<Exchange>,
    weirds: Vec<&'static str>,
    state: ParserState,
}

impl Run {
    fn cmds(&self) -> Vec<String> {
        self.ex
            .iter()
            .map(|e| String::from_utf8_lossy(e.fields.text("command").unwrap_or(b"-")).into_owned())
            .collect()
    }
    fn zeek(&self) -> Vec<String> {
        self.ex
            .iter()
            .filter_map(|e| {
                let mut row = Vec::new();
                zeek_row(e, &mut row).then(|| {
                    row.iter()
                        .map(|v| match v {
                            ZVal::Unset => "-".to_string(),
                            ZVal::Text(t) if t.is_empty() => "(empty)".into(),
                            ZVal::Text(t) => String::from_utf8_lossy(t).into_owned(),
                            ZVal::Count(n) => n.to_string(),
                            ZVal::Bool(b) => if *b { "T" } else { "F" }.into(),
                            other => format!("{other:?}"),
                        })
                        .collect::<Vec<_>>()
                        .join(" ")
                })
            })
            .collect()
    }
}

/// Feeds the steps (one `data` or `gap` call each, 1 µs apart) and ends both directions.
fn run(steps: &[S]) -> Run {
    let c = conn();
    let mut p = Mysql::new(&c);
    let mut m = Matcher::new("mysql", c);
    let mut out = Emitter::default();
    let mut st = MatchStats::default();
    let mut ex = Vec::new();
    let mut ts = 0;
    for s in steps {
        ts += 1000;
        match s {
            S::C(b) => p.data(Dir::ToServer, ts, b, &mut out),
            S::Sv(b) => p.data(Dir::ToClient, ts, b, &mut out),
            S::LostC(n) => p.gap(Dir::ToServer, ts, *n, &mut out),
            S::LostSv(n) => p.gap(Dir::ToClient, ts, *n, &mut out),
        }
        m.feed(&mut out.events, &mut st, &mut ex);
    }
    p.end(Dir::ToServer, ts, &mut out);
    p.end(Dir::ToClient, ts, &mut out);
    m.feed(&mut out.events, &mut st, &mut ex);
    m.finish(&mut st, &mut ex);
    ex.sort_by_key(|e| e.depth);
    Run {
        ex,
        weirds: out.weirds,
        state: p.state(),
    }
}

/// Greeting, login, OK: the start of most conversations.
fn login(caps: u32) -> Vec<S> {
    vec![
        S::Sv(greeting(BASE_CAPS | caps)),
        S::C(handshake(BASE_CAPS | caps, "app", Some("shop"))),
        S::Sv(ok(2, 0, 2)),
    ]
}

fn with(mut a: Vec<S>, b: &[S]) -> Vec<S> {
    a.extend_from_slice(b);
    a
}

/// Feeding the same bytes one byte per call gives the same exchanges.
fn bytewise(steps: &[S]) -> Vec<S> {
    steps
        .iter()
        .flat_map(|s| match s {
            S::C(b) => b.iter().map(|x| S::C(vec![*x])).collect::<Vec<_>>(),
            S::Sv(b) => b.iter().map(|x| S::Sv(vec![*x])).collect(),
            other => vec![other.clone()],
        })
        .collect()
}

fn same_fields(a: &Run, b: &Run) {
    assert_eq!(a.ex.len(), b.ex.len());
    for (x, y) in a.ex.iter().zip(&b.ex) {
        assert_eq!(x.fields, y.fields);
        assert_eq!(x.outcome, y.outcome);
    }
}

#[test]
fn login_fields_and_zeek_row() {
    let r = run(&login(0));
    assert!(r.weirds.is_empty(), "{:?}", r.weirds);
    let f = &r.ex[0].fields;
    assert_eq!(f.text("user"), Some(&b"app"[..]));
    assert_eq!(f.text("database"), Some(&b"shop"[..]));
    assert_eq!(f.text("server_version"), Some(&b"8.0.36"[..]));
    assert_eq!(f.u64("connection_id"), Some(7));
    assert_eq!(f.text("auth_plugin"), Some(&b"caching_sha2_password"[..]));
    assert_eq!(r.ex[0].outcome, Outcome::Complete);
    assert_eq!(r.zeek(), vec!["login app T 0 -"]);
}

#[test]
fn mariadb_greeting_parses() {
    let g = hex(MARIADB_GREETING);
    let w = wire::parse_greeting(&g[4..]).unwrap();
    assert_eq!(w.server_version, b"5.5.5-10.11.19-MariaDB-0+deb12u1");
    assert_eq!(w.connection_id, 5);
    assert_eq!(w.auth_plugin, Some(&b"mysql_native_password"[..]));
    // CLIENT_MYSQL clear: MariaDB's extended capabilities are in the high half.
    assert_eq!(w.capabilities & cap::CLIENT_MYSQL, 0);
    assert_ne!(w.capabilities >> 32, 0);
    assert_eq!(look_greeting(&g), Look::Yes);
}

#[test]
fn greeting_error_is_an_exchange_without_a_zeek_row() {
    let mut p = vec![0xff, 0x6a, 0x04];
    p.extend_from_slice(b"Host 'x' is not allowed to connect to this MariaDB server");
    let r = run(&[S::Sv(pkt(0, &p))]);
    assert_eq!(r.ex.len(), 1);
    assert_eq!(r.ex[0].outcome, Outcome::NoRequest);
    assert_eq!(r.ex[0].fields.u64("error_code"), Some(1130));
    assert!(r.zeek().is_empty());
}

#[test]
fn login_refused() {
    let r = run(&[
        S::Sv(greeting(BASE_CAPS)),
        S::C(handshake(BASE_CAPS, "root", None)),
        S::Sv(err(
            2,
            1045,
            "28000",
            "Access denied for user 'root'@'h' (using password: YES)",
        )),
    ]);
    assert_eq!(
        r.zeek(),
        vec!["login root F - Access denied for user 'root'@'h' (using password: YES)"]
    );
    assert_eq!(r.ex[0].fields.text("sql_state"), Some(&b"28000"[..]));
    assert_eq!(summarize(&r.ex[0]).status.as_deref(), Some("ERR 1045"));
    assert!(summarize(&r.ex[0]).failed);
}

#[test]
fn auth_switch_and_caching_sha2_full_auth() {
    let mut switch = vec![0xfe];
    switch.extend_from_slice(b"caching_sha2_password\0");
    switch.extend_from_slice(&[0x11; 20]);
    switch.push(0);
    let steps = vec![
        S::Sv(greeting(BASE_CAPS)),
        S::C(handshake(BASE_CAPS, "app", None)),
        S::Sv(pkt(2, &switch)),
        S::C(pkt(3, &[0x22; 32])),
        S::Sv(pkt(4, &[0x01, 0x04])), // perform full authentication
        S::C(pkt(5, &[0x02])),        // request the public key
        S::Sv(pkt(6, b"\x01-----BEGIN PUBLIC KEY-----")),
        S::C(pkt(7, &[0x33; 256])), // the encrypted password
        S::Sv(ok(8, 0, 2)),
        S::C(query("select 1")),
        S::Sv(cat(&[
            pkt(1, &[1]),
            coldef(2, "1"),
            eof(3, 2),
            row(4, &["1"]),
            eof(5, 2),
        ])),
    ];
    let r = run(&steps);
    assert!(r.weirds.is_empty(), "{:?}", r.weirds);
    assert_eq!(r.zeek(), vec!["login app T 0 -", "query select 1 T 0 -"]);
    assert_eq!(
        r.ex[0].fields.text("auth_switch"),
        Some(&b"caching_sha2_password"[..])
    );
    same_fields(&r, &run(&bytewise(&steps)));
}

#[test]
fn ssl_request_stops_parsing() {
    let mut p = (BASE_CAPS | 0x800 | 1).to_le_bytes().to_vec();
    p.extend_from_slice(&[0; 28]);
    let r = run(&[
        S::Sv(greeting(BASE_CAPS | 0x800)),
        S::C(pkt(1, &p)),
        S::C(vec![0x16, 0x03, 0x01, 0x02, 0x00, 0x01]),
    ]);
    assert_eq!(r.state, ParserState::Finished);
    assert!(r.ex.is_empty());
    assert!(r.weirds.is_empty());
}

#[test]
fn result_sets_in_both_eof_styles() {
    let legacy = with(
        login(0),
        &[
            S::C(query("SELECT a, b FROM t")),
            S::Sv(cat(&[
                pkt(1, &[2]),
                coldef(2, "a"),
                coldef(3, "b"),
                eof(4, 2),
                row(5, &["1", "x"]),
                row(6, &["2", "y"]),
                row(7, &["3", "z"]),
                eof(8, 2),
            ])),
        ],
    );
    let deprecate = with(
        login(DEPRECATE_EOF),
        &[
            S::C(query("SELECT a, b FROM t")),
            S::Sv(cat(&[
                pkt(1, &[2]),
                coldef(2, "a"),
                coldef(3, "b"),
                row(4, &["1", "x"]),
                row(5, &["2", "y"]),
                row(6, &["3", "z"]),
                ok_fe(7, 2),
            ])),
        ],
    );
    for steps in [legacy, deprecate] {
        let r = run(&steps);
        assert!(r.weirds.is_empty(), "{:?}", r.weirds);
        let f = &r.ex[1].fields;
        assert_eq!((f.u64("rows"), f.u64("columns")), (Some(3), Some(2)));
        assert_eq!(r.zeek()[1], "query SELECT a, b FROM t T 0 -");
        assert_eq!(summarize(&r.ex[1]).endpoint, "query SELECT");
        same_fields(&r, &run(&bytewise(&steps)));
    }
}

#[test]
fn ok_with_affected_rows_and_errors() {
    let r = run(&with(
        login(0),
        &[
            S::C(query("UPDATE t SET a = 1")),
            S::Sv(pkt(
                1,
                b"\x00\x05\x00\x02\x00\x00\x00Rows matched: 5  Changed: 5  Warnings: 0",
            )),
            S::C(query("SELEC 1")),
            S::Sv(err(
                1,
                1064,
                "42000",
                "You have an error in your SQL syntax",
            )),
            S::C(cmd(0x02, b"other")),
            S::Sv(ok(1, 0, 2)),
        ],
    ));
    assert_eq!(
        r.zeek(),
        vec![
            "login app T 0 -",
            "query UPDATE t SET a = 1 T 5 -",
            "query SELEC 1 F - You have an error in your SQL syntax",
            "init_db other T 0 -",
        ]
    );
    assert_eq!(
        r.ex[1].fields.text("info"),
        Some(&b"Rows matched: 5  Changed: 5  Warnings: 0"[..])
    );
    assert_eq!(r.ex[2].fields.u64("error_code"), Some(1064));
}

#[test]
fn multi_results() {
    // CALL p(): two result sets, then the procedure's own OK; MORE_RESULTS (0x0008) links them.
    let steps = with(
        login(0),
        &[
            S::C(query("CALL p()")),
            S::Sv(cat(&[
                pkt(1, &[1]),
                coldef(2, "a"),
                eof(3, 0x0a),
                row(4, &["1"]),
                eof(5, 0x0a),
                pkt(6, &[1]),
                coldef(7, "b"),
                eof(8, 0x0a),
                row(9, &["2"]),
                row(10, &["4"]),
                eof(11, 0x0a),
                ok(12, 0, 2),
            ])),
            S::C(cmd(0x0e, b"")),
            S::Sv(ok(1, 0, 2)),
        ],
    );
    let r = run(&steps);
    assert!(r.weirds.is_empty(), "{:?}", r.weirds);
    let f = &r.ex[1].fields;
    assert_eq!((f.u64("rows"), f.u64("results")), (Some(3), Some(3)));
    assert_eq!(r.cmds(), vec!["login", "query", "ping"]);
    assert_eq!(r.ex[2].outcome, Outcome::Complete);
}

#[test]
fn prepared_statements() {
    let prepare_ok = |id: u32, cols: u16, params: u16| {
        let mut p = vec![0];
        p.extend_from_slice(&id.to_le_bytes());
        p.extend_from_slice(&cols.to_le_bytes());
        p.extend_from_slice(&params.to_le_bytes());
        p.extend_from_slice(&[0, 0, 0]);
        pkt(1, &p)
    };
    let mut exec = 7u32.to_le_bytes().to_vec();
    exec.extend_from_slice(&[0, 1, 0, 0, 0, 0, 1, 3, 0, 5, 0, 0, 0]);
    let steps = with(
        login(0),
        &[
            S::C(cmd(0x16, b"SELECT name FROM t WHERE id = ?")),
            S::Sv(cat(&[
                prepare_ok(7, 1, 1),
                coldef(2, "?"),
                eof(3, 2),
                coldef(4, "name"),
                eof(5, 2),
            ])),
            S::C(cmd(0x17, &exec)),
            S::Sv(cat(&[
                pkt(1, &[1]),
                coldef(2, "name"),
                eof(3, 2),
                pkt(4, b"\x00\x00\x03abc"),
                eof(5, 2),
            ])),
            S::C(cmd(0x1a, &7u32.to_le_bytes())),
            S::Sv(ok(1, 0, 2)),
            // Closing has no response; the next command's answer is not taken for one.
            S::C(cmd(0x19, &7u32.to_le_bytes())),
            S::C(cmd(0x17, &exec)),
            S::Sv(err(
                1,
                1243,
                "HY000",
                "Unknown prepared statement handler (7)",
            )),
        ],
    );
    let r = run(&steps);
    assert!(r.weirds.is_empty(), "{:?}", r.weirds);
    assert_eq!(
        r.cmds(),
        vec![
            "login",
            "stmt_prepare",
            "stmt_execute",
            "stmt_reset",
            "stmt_close",
            "stmt_execute"
        ]
    );
    let sql = &b"SELECT name FROM t WHERE id = ?"[..];
    for i in 1..=4 {
        assert_eq!(r.ex[i].fields.text("argument"), Some(sql), "{i}");
        assert_eq!(r.ex[i].fields.u64("statement_id"), Some(7), "{i}");
    }
    assert_eq!(r.ex[1].fields.u64("params"), Some(1));
    assert_eq!(r.ex[2].fields.u64("rows"), Some(1));
    assert_eq!(r.ex[4].outcome, Outcome::NoResponse);
    // Closed: the id is forgotten.
    assert_eq!(r.ex[5].fields.text("argument"), None);
    assert_eq!(r.ex[5].fields.u64("error_code"), Some(1243));
    assert_eq!(summarize(&r.ex[2]).endpoint, "stmt_execute SELECT");
    same_fields(&r, &run(&bytewise(&steps)));
}

#[test]
fn local_infile() {
    let mut req = vec![0xfb];
    req.extend_from_slice(b"/tmp/rows.csv");
    let r = run(&with(
        login(0),
        &[
            S::C(query("LOAD DATA LOCAL INFILE '/tmp/rows.csv' INTO TABLE t")),
            S::Sv(pkt(1, &req)),
            S::C(cat(&[pkt(2, b"1,a\n2,b\n"), pkt(3, b"3,c\n"), pkt(4, b"")])),
            S::Sv(ok(5, 3, 2)),
            S::C(cmd(0x0e, b"")),
            S::Sv(ok(1, 0, 2)),
        ],
    ));
    assert!(r.weirds.is_empty(), "{:?}", r.weirds);
    let f = &r.ex[1].fields;
    assert_eq!(f.text("infile"), Some(&b"/tmp/rows.csv"[..]));
    assert_eq!(
        (f.u64("infile_bytes"), f.u64("affected_rows")),
        (Some(12), Some(3))
    );
    assert_eq!(r.ex[2].outcome, Outcome::Complete);
}

#[test]
fn query_attributes_are_not_part_of_the_query() {
    // Two attributes: a string `n1` = "v1" and a LONGLONG `n2` = 5.
    let mut p = vec![0x03, 2, 1, 0x00, 1];
    p.extend_from_slice(&[0xfe, 0, 2, b'n', b'1', 0x08, 0, 2, b'n', b'2']);
    p.extend_from_slice(&[2, b'v', b'1']);
    p.extend_from_slice(&5u64.to_le_bytes());
    p.extend_from_slice(b"SELECT 1");
    let r = run(&with(
        login(QUERY_ATTRS),
        &[
            S::C(pkt(0, &p)),
            S::Sv(ok(1, 0, 2)),
            S::C(query("\0\x01SELECT 2")),
            S::Sv(ok(1, 0, 2)),
        ],
    ));
    assert!(r.weirds.is_empty(), "{:?}", r.weirds);
    assert_eq!(r.ex[1].fields.text("argument"), Some(&b"SELECT 1"[..]));
    assert_eq!(r.ex[1].fields.u64("query_attributes"), Some(2));
    assert_eq!(r.ex[2].fields.text("argument"), Some(&b"SELECT 2"[..]));
    // Unknown attribute type: reported, and the whole payload kept as the argument.
    assert_eq!(
        wire::split_query(&[1, 1, 0, 1, 0x30, 0, 0], Some(true)),
        Err(wire::Error::BadQueryAttributes)
    );
    // Absurd counts do not allocate or panic.
    assert!(
        wire::split_query(
            &[0xfe, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f, 1],
            Some(true)
        )
        .is_err()
    );
}

#[test]
fn statistics_quit_field_list_change_user() {
    let r = run(&with(
        login(0),
        &[
            S::C(cmd(0x04, b"t\0c%")),
            S::Sv(cat(&[coldef(1, "c1"), coldef(2, "c2"), eof(3, 2)])),
            S::C(cmd(0x09, b"")),
            S::Sv(pkt(1, b"Uptime: 5  Threads: 1")),
            S::C(cmd(
                0x11,
                b"root2\0\x14AAAAAAAAAAAAAAAAAAAA\0\x21\x00mysql_native_password\0",
            )),
            S::Sv(err(1, 1045, "28000", "Access denied")),
            S::C(cmd(0x01, b"")),
        ],
    ));
    assert!(r.weirds.is_empty(), "{:?}", r.weirds);
    assert_eq!(
        r.zeek(),
        vec![
            "login app T 0 -",
            "field_list t\0c% T 0 -",
            "statistics (empty) - - -",
            "change_user root2 F - Access denied",
            "quit (empty) - - -",
        ]
    );
    assert_eq!(r.ex[1].fields.u64("columns"), Some(2));
    assert_eq!(
        r.ex[2].fields.text("info"),
        Some(&b"Uptime: 5  Threads: 1"[..])
    );
}

#[test]
fn mariadb_progress_reports_inside_a_response() {
    let r = run(&with(
        login(0),
        &[
            S::C(query("ALTER TABLE t ENGINE=InnoDB")),
            S::Sv(cat(&[
                pkt(1, b"\xff\xff\xff\x01\x01\x00\x10\x27\x00\x00\x05stage"),
                ok(2, 0, 2),
            ])),
        ],
    ));
    assert!(r.weirds.is_empty(), "{:?}", r.weirds);
    assert_eq!(r.zeek()[1], "query ALTER TABLE t ENGINE=InnoDB T 0 -");
    assert_eq!(r.ex[1].fields.u64("progress_reports"), Some(1));
    assert_eq!(summarize(&r.ex[1]).endpoint, "query ALTER TABLE");
}

#[test]
fn big_packets_stream_with_bounded_memory() {
    // A 20 MiB row (two physical packets: 16 MiB - 1, then the rest), delivered in 64 KiB
    // chunks, and a 17 MiB query the same way.
    let c = conn();
    let mut p = Mysql::new(&c);
    let mut out = Emitter::default();
    for s in login(0) {
        match s {
            S::C(b) => p.data(Dir::ToServer, 1, &b, &mut out),
            S::Sv(b) => p.data(Dir::ToClient, 1, &b, &mut out),
            _ => unreachable!(),
        }
    }
    let mut big_query = vec![0x03];
    big_query.extend_from_slice(b"INSERT INTO t VALUES ('");
    big_query.resize(17 << 20, b'y');
    let mut stream = Vec::new();
    for (i, chunk) in big_query.chunks(MAX_PAYLOAD).enumerate() {
        stream.extend(pkt(i as u8, chunk));
    }
    for chunk in stream.chunks(64 << 10) {
        p.data(Dir::ToServer, 2, chunk, &mut out);
        assert!(p.fr[0].head().len() <= wire::MAX_KEEP);
    }
    // The query took sequence ids 0 and 1: the response starts at 2.
    p.data(
        Dir::ToClient,
        3,
        &cat(&[pkt(2, &[1]), coldef(3, "big"), eof(4, 2)]),
        &mut out,
    );
    let mut big_row = vec![0xfd, 0, 0, 0x40 + 1]; // 3-byte lenenc length prefix
    big_row.resize(20 << 20, b'x');
    let mut stream = Vec::new();
    for (i, chunk) in big_row.chunks(MAX_PAYLOAD).enumerate() {
        stream.extend(pkt(5 + i as u8, chunk));
    }
    stream.extend(eof(7, 2));
    for chunk in stream.chunks(64 << 10) {
        p.data(Dir::ToClient, 4, chunk, &mut out);
        assert!(p.fr[1].head().len() <= wire::MAX_KEEP);
    }
    assert!(out.weirds.is_empty(), "{:?}", out.weirds);
    let ends: Vec<&Fields> = out
        .events
        .iter()
        .filter_map(|e| match e {
            Event::RequestStart { fields, .. } => Some(fields),
            Event::ResponseEnd { fields, .. } => Some(fields),
            _ => None,
        })
        .collect();
    // login request, login OK, the query, its response.
    assert_eq!(ends.len(), 4);
    let q = ends[2];
    assert_eq!(q.text("argument").map(<[u8]>::len), Some(MAX_ARG));
    assert_eq!(q.get("argument_truncated"), Some(&Value::Bool(true)));
    assert_eq!(ends[3].u64("rows"), Some(1));
}

#[test]
fn gap_inside_a_payload_keeps_the_framing() {
    let q = query("SELECT * FROM orders WHERE id = 42");
    let r = run(&with(
        login(0),
        &[
            S::C(q[..10].to_vec()),
            S::LostC(10),
            S::C(q[20..].to_vec()),
            S::Sv(ok(1, 0, 2)),
            S::C(cmd(0x0e, b"")),
            S::Sv(ok(1, 0, 2)),
        ],
    ));
    assert_eq!(r.cmds(), vec!["login", "query", "ping"]);
    assert_eq!(r.ex[1].outcome, Outcome::Truncated);
    assert_eq!(r.ex[1].fields.text("argument"), Some(&b"SELEC"[..]));
    assert_eq!(r.ex[2].outcome, Outcome::Complete);
    assert_eq!(r.weirds, vec!["mysql_gap"]);
}

#[test]
fn gap_across_packets_resynchronises() {
    let resp = cat(&[
        pkt(1, &[1]),
        coldef(2, "a"),
        eof(3, 2),
        row(4, &["1"]),
        row(5, &["2"]),
        eof(6, 2),
    ]);
    let r = run(&with(
        login(0),
        &[
            S::C(query("SELECT a FROM t")),
            S::Sv(resp[..30].to_vec()),
            S::LostSv(20),
            S::Sv(resp[50..].to_vec()), // the rest: not at a packet start, skipped
            S::C(query("SELECT 2")),
            S::Sv(cat(&[
                pkt(1, &[1]),
                coldef(2, "2"),
                eof(3, 2),
                row(4, &["2"]),
                eof(5, 2),
            ])),
            // The client side loses a whole command, then resynchronises on the next one.
            S::LostC(20),
            S::Sv(ok(1, 0, 2)),
            S::C(cmd(0x0e, b"")),
            S::Sv(ok(1, 0, 2)),
        ],
    ));
    assert_eq!(r.cmds(), vec!["login", "query", "query", "ping"]);
    assert_eq!(r.ex[1].outcome, Outcome::Truncated);
    assert_eq!(r.ex[2].outcome, Outcome::Complete);
    assert_eq!(r.ex[2].fields.u64("rows"), Some(1));
    // The answer to the lost command answers nothing known: counted, not paired with the ping.
    assert!(r.weirds.contains(&"mysql_unsolicited_response"));
    assert_eq!(r.ex[3].outcome, Outcome::Complete);
    assert_eq!(r.ex[3].fields.get("success"), Some(&Value::Bool(true)));
    assert!(r.weirds.contains(&"mysql_resynchronized"));
    assert_eq!(r.state, ParserState::Active);
}

#[test]
fn gives_up_when_no_packet_start_comes_back() {
    let mut steps = login(0);
    steps.push(S::C(query("SELECT 1")[..5].to_vec()));
    steps.push(S::LostC(100));
    for _ in 0..=MAX_LOST_CALLS {
        steps.push(S::C(b"\xde\xad\xbe\xef garbage".to_vec()));
    }
    let r = run(&steps);
    assert_eq!(r.state, ParserState::GaveUp);
    assert!(r.weirds.contains(&"mysql_gave_up_after_gap"));
    // The cut command is still reported.
    assert_eq!(r.cmds(), vec!["login", "query"]);
    assert_eq!(r.ex[1].outcome, Outcome::NoResponse);
}

#[test]
fn malformed_input_is_counted_not_fatal() {
    // Garbage instead of a column count, an absurd packet length cut by the end, a server
    // packet answering nothing.
    let r = run(&with(
        login(0),
        &[
            S::C(query("SELECT 1")),
            S::Sv(pkt(1, &[0xfb - 1 + 5])), // 0xff would be ERR; 0xff-ish lenenc: 0xff
            S::C(query("SELECT 2")),
            S::Sv(pkt(1, &[0xff])),
            S::Sv(ok(9, 0, 0)),
            S::C(vec![0xff, 0xff, 0xfe, 0x00, 0x03, b'S']),
        ],
    ));
    assert!(
        r.weirds.contains(&"mysql_truncated_packet"),
        "{:?}",
        r.weirds
    );
    assert!(
        r.weirds.contains(&"mysql_unsolicited_response"),
        "{:?}",
        r.weirds
    );
    assert!(
        r.weirds.contains(&"mysql_packet_cut_short"),
        "{:?}",
        r.weirds
    );
    // The cut 16 MB query is reported from its first bytes.
    assert_eq!(
        r.ex.last().unwrap().fields.text("argument"),
        Some(&b"S"[..])
    );
    // Arbitrary bytes anywhere: no panic.
    let mut seed = 0x2545_f491_4f6c_dd1du64;
    for _ in 0..300 {
        let mut steps = login(DEPRECATE_EOF);
        for _ in 0..8 {
            let n = (seed % 40) as usize;
            let mut b = Vec::new();
            for _ in 0..n {
                seed ^= seed << 13;
                seed ^= seed >> 7;
                seed ^= seed << 17;
                b.push((seed % 7) as u8 * 40);
            }
            steps.push(if seed.is_multiple_of(3) {
                S::C(b)
            } else {
                S::Sv(b)
            });
            if seed.is_multiple_of(11) {
                steps.push(S::LostSv(seed % 50));
            }
        }
        let _ = run(&steps);
    }
}

#[test]
fn mid_stream_connection() {
    // No greeting: the client's first bytes are a command, the server's its answer.
    let r = run(&[
        S::C(query("SELECT 1")),
        S::Sv(cat(&[
            pkt(1, &[1]),
            coldef(2, "1"),
            row(3, &["1"]),
            ok_fe(4, 2),
        ])),
        S::C(query("SELECT 2")),
        S::Sv(cat(&[
            pkt(1, &[1]),
            coldef(2, "2"),
            eof(3, 2),
            row(4, &["2"]),
            eof(5, 2),
        ])),
    ]);
    assert_eq!(r.cmds(), vec!["query", "query"]);
    assert_eq!(r.ex[0].fields.u64("rows"), Some(1));
    assert_eq!(r.ex[1].fields.u64("rows"), Some(1));
    // The server side starting inside a packet is skipped until a command is answered.
    let r = run(&[
        S::Sv(b"ow data\x05\x00\x00\x09\xfe\x00\x00\x02\x00".to_vec()),
        S::C(query("SELECT 3")),
        S::Sv(ok(1, 0, 2)),
    ]);
    assert_eq!(r.cmds(), vec!["query"]);
    assert_eq!(r.ex[0].outcome, Outcome::Complete);
}

fn probe_of(to_server: &[u8], to_client: &[u8], port: u16) -> Probe {
    probe(&ProbeInput {
        to_server,
        to_client,
        server_port: port,
        transport: Transport::Tcp,
    })
}

#[test]
fn probe_cases() {
    let g = greeting(BASE_CAPS);
    let http = b"GET / HTTP/1.1\r\nHost: x\r\n\r\n";
    let dns = hex("001d12340100000100000000000003777777076578616d706c6503636f6d0000010001");
    let tls = hex("160301020001000200");
    let cases: &[(&[u8], &[u8], u16, Probe)] = &[
        (b"", &g, 40000, Probe::Yes),
        (b"", &g[..20], 40000, Probe::NeedMore),
        (b"", &g[..3], 3306, Probe::NeedMore),
        (b"", &hex(MARIADB_GREETING), 3306, Probe::Yes),
        (http, b"", 3306, Probe::No),
        (http, b"HTTP/1.1 200 OK\r\n", 80, Probe::No),
        (&dns, b"", 53, Probe::No),
        (&tls, b"", 3306, Probe::No),
        (b"", b"SSH-2.0-OpenSSH_9.2\r\n", 3306, Probe::No),
        (b"", b"220 mail ESMTP\r\n", 3306, Probe::No),
        // Mid-stream: a command on the MySQL port; elsewhere only with its answer.
        (&query("SELECT 1"), b"", 3306, Probe::Yes),
        (&query("SELECT 1"), b"", 40000, Probe::NeedMore),
        (&query("SELECT 1"), &ok(1, 0, 2), 40000, Probe::Yes),
        (&query("SELECT 1"), b"HTTP/1.1 200 OK\r\n", 40000, Probe::No),
        (&query("SELECT 1")[..7], b"", 3306, Probe::NeedMore),
        (&query("\x01\x02binary"), b"", 3306, Probe::No),
        (&cmd(0x0e, b""), b"", 3306, Probe::Yes),
        (&cmd(0x0e, b"x"), b"", 3306, Probe::No),
    ];
    for (i, (c, s, port, want)) in cases.iter().enumerate() {
        assert_eq!(probe_of(c, s, *port), *want, "case {i}");
    }
}

#[test]
fn sql_verbs() {
    let cases = [
        ("select 1", "SELECT"),
        ("  /* hint */ (SELECT 1)", "SELECT"),
        ("-- c\nINSERT INTO t VALUES (1)", "INSERT"),
        ("# c\nupdate t set a=1", "UPDATE"),
        ("/*!40101 SET NAMES utf8 */", "SET"),
        ("CREATE TABLE t (a int)", "CREATE TABLE"),
        ("create or replace view v as select 1", "CREATE VIEW"),
        ("DROP TEMPORARY TABLE t", "DROP TABLE"),
        ("show full processlist", "SHOW PROCESSLIST"),
        ("show databases", "SHOW DATABASES"),
        ("", "?"),
        ("123", "?"),
        ("/* unterminated", "?"),
    ];
    for (sql, want) in cases {
        assert_eq!(sql_verb(sql.as_bytes()), want, "{sql}");
    }
}

#[test]
fn bounded_cuts_at_character_boundaries() {
    let s = "aé".repeat(10);
    let (v, cut) = bounded(s.as_bytes(), 4);
    assert!(cut);
    assert_eq!(v, "aéa".as_bytes());
    assert_eq!(bounded(s.as_bytes(), 2).0, b"a");
    assert!(std::str::from_utf8(&bounded(s.as_bytes(), 5).0).is_ok());
    assert_eq!(bounded(b"abc", 5), (b"abc".to_vec(), false));
    assert_eq!(bounded(&[0x80; 10], 4).0.len(), 4);
}
