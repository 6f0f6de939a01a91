//! Literal-byte tests of the MySQL parser: every message type, the conversations around them
//! (login with auth switches, result sets in both EOF styles, multi-results, prepared
//! statements, LOCAL INFILE), packets split anywhere or continued past 16 MiB, gaps,
//! malformed input, the probe and the Zeek row. Conversations run through the shared harness
//! ([`crate::l7::harness`]), which checks the invariants every run must keep.
//!
//! This file builds packets and runs conversations; the tests are by subject: `session.rs`
//! (login, commands and their responses), `stream.rs` (big packets, gaps, malformed input,
//! connections caught mid-stream), `detect.rs` (the probe).

mod detect;
mod session;
mod stream;

use super::wire::MAX_PAYLOAD;
use super::zeek::{summarize, zeek_row};
use super::*;
use crate::l7::ZVal;
use crate::l7::harness::{self, Run, Step};
use crate::model::{Exchange, Outcome, Value};

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

/// One step of a conversation, owning its bytes (the harness's [`Step`] borrows them).
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

impl S {
    fn step(&self) -> Step<'_> {
        match self {
            S::C(b) => Step::C(b),
            S::Sv(b) => Step::S(b),
            S::LostC(n) => Step::GapC(*n),
            S::LostSv(n) => Step::GapS(*n),
        }
    }
}

/// Runs the steps through a parser and the matcher ([`harness::drive`]: one `data` or `gap`
/// call each, 1 ms apart, then the ends of both directions; a byte per `data` call when
/// `bytewise`), checks the invariants, and orders the exchanges by depth.
fn drive(steps: &[S], bytewise: bool) -> Run {
    let steps: Vec<Step<'_>> = steps.iter().map(S::step).collect();
    let c = harness::conn(3306);
    let mut p = Mysql::new(&c);
    let mut r = harness::drive(&mut p, "mysql", c, &steps, bytewise);
    r.check();
    r.ex.sort_by_key(|e| e.depth);
    r
}

fn run(steps: &[S]) -> Run {
    drive(steps, false)
}

/// The same conversation, one byte per `data` call.
fn run_bytewise(steps: &[S]) -> Run {
    drive(steps, true)
}

/// The exchanges' commands.
fn cmds(r: &Run) -> Vec<String> {
    r.ex.iter()
        .map(|e| String::from_utf8_lossy(e.fields.text("command").unwrap_or(b"-")).into_owned())
        .collect()
}

/// The exchanges' `mysql.log` rows (for those that have one), columns joined by spaces.
fn zeek(r: &Run) -> Vec<String> {
    r.ex.iter()
        .filter_map(|e: &Exchange| {
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

/// Both runs found the same exchanges (fields and outcomes).
fn same_fields(a: &Run, b: &Run) {
    assert_eq!(a.ex.len(), b.ex.len());
    for (x, y) in a.ex.iter().zip(&b.ex) {
        assert_eq!(x.fields, y.fields);
        assert_eq!(x.outcome, y.outcome);
    }
}

/// Inputs the `mysql` fuzz target found breaking an invariant ([`Run::check`]): a gap in
/// the server's stream started a response after its request had ended, and the response
/// "ended" at the request's end, before it started.
#[test]
fn fuzz_findings() {
    let cases: [&[u8]; 2] = [
        b"\x40\x00\x04\x01\x00\x00\x00\x5d\x04\x00\x15\x15\x15\x15\x15\x15\x15\x15\x00\x00\x01\x26\x12\xfb\x00\x00\x12\x00\x5d\x01\x00\x00\x00\x00\x00\x00\xff\x13\x00\x00\x00\x00",
        b"\x00\x5d\x04\x00\x6e\x00\x12\x00\x5d\x01\x00\x00\x00\x00\x00\x3a\x00\x02\x02\x02\x02\x02\x02\x02\x02\x02\x02\x02\x02\x02\x02\x02\x02\x02\x02\x02\x02\x02\x02\x02\x02\x02\x02\x02\x02\x02\x02\x02\x02\x02\x02\x02\x02\x02\x02\x02\x02\x02\x02\x02\x02\x02\x02\x02\x02\x02\x02\x02\x02\x02\x02\x02\x02\x02\x02\x02\x02\x02\x02\x02\x02\x02\x02\x02\x02\x02\x02\x02\x02\x02\x02\x02\x02\x02\x02\x02\x00\x04\xff\x31\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff",
    ];
    for data in cases {
        harness::fuzz(&PROTOCOL, b"", data);
    }
}
