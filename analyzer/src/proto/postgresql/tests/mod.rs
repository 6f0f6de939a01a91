//! Literal-byte tests of the PostgreSQL parser: every message kind it decodes, the exchange
//! boundaries, split and cut messages, gaps, malformed input, the probe and the Zeek row.
//! Conversations run through the shared harness ([`crate::l7::harness`]), which checks the
//! invariants every run must keep.
//!
//! This file builds messages and runs conversations; the tests are by subject: `session.rs`
//! (logins, queries, the extended protocol, COPY), `stream.rs` (large messages, gaps,
//! resynchronisation, malformed and mutated input, captures begun mid-connection),
//! `detect.rs` (the probe).

mod detect;
mod session;
mod stream;

use super::zeek::{summarize, zeek_row};
use super::*;
use crate::l7::ZVal;
use crate::l7::harness::{self, Run, Step};
use crate::model::{Exchange, Outcome, Value};

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

/// One step of a conversation, owning its bytes (the harness's [`Step`] borrows them).
#[derive(Debug)]
enum Seg {
    Data(Dir, Vec<u8>),
    Gap(Dir, u64),
}

impl Seg {
    fn step(&self) -> Step<'_> {
        match self {
            Seg::Data(Dir::ToServer, b) => Step::C(b),
            Seg::Data(Dir::ToClient, b) => Step::S(b),
            Seg::Gap(Dir::ToServer, n) => Step::GapC(*n),
            Seg::Gap(Dir::ToClient, n) => Step::GapS(*n),
        }
    }
}

/// The time the harness gives step `i` (0-based) of a conversation.
fn at(i: usize) -> Ts {
    (i as Ts + 1) * 1000
}

/// Runs steps through the parser and the matcher ([`harness::drive`]: each step at its own
/// time, [`at`]; a byte per `data` call when `bytewise`), and checks the invariants.
fn drive(steps: &[Seg], bytewise: bool) -> Run {
    let steps: Vec<Step<'_>> = steps.iter().map(Seg::step).collect();
    let mut p = Postgres::new();
    let r = harness::drive(&mut p, "postgresql", harness::conn(5432), &steps, bytewise);
    r.check();
    r
}

fn run_steps(steps: Vec<Seg>) -> Run {
    drive(&steps, false)
}

fn data(steps: Vec<(Dir, Vec<u8>)>) -> Vec<Seg> {
    steps.into_iter().map(|(d, b)| Seg::Data(d, b)).collect()
}

fn run(steps: Vec<(Dir, Vec<u8>)>) -> Run {
    drive(&data(steps), false)
}

/// Runs a conversation delivered one byte per `data` call.
fn run_bytewise(steps: Vec<(Dir, Vec<u8>)>) -> Run {
    drive(&data(steps), true)
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
    row.iter().map(ZVal::plain).collect()
}
