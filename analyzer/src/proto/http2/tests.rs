//! Literal-byte tests of the HTTP/2 parser: every frame type, HPACK across blocks,
//! CONTINUATION, padding, interleaved streams, resets, GOAWAY, trailers, gRPC framing, gaps,
//! malformed input, bounds, the probe and the h2c upgrade through a session. Conversations
//! run through the shared harness ([`crate::l7::harness`]), which also checks the invariants
//! every run keeps.

use std::sync::Arc;

use super::frame::{FrameHeader, FrameType, PREFACE, flags};
use super::zeek::summarize;
use super::{Http2, MAX_CONTINUATIONS, MAX_HEADER_BLOCK, MAX_STREAMS, base64url, probe};
use crate::l7::harness::{Run, Step, conn_with, drive};
use crate::l7::{ParserState, Probe, ProbeInput};
use crate::model::{ConnInfo, Outcome, Transport, Value};
use Step::{C, GapC, GapS, S};

/// A frame: type, flags, stream, payload.
pub(crate) fn fr(ty: u8, flags: u8, stream: u32, payload: &[u8]) -> Vec<u8> {
    let mut v = FrameHeader {
        len: payload.len() as u32,
        ty: FrameType::from(ty),
        flags,
        stream,
    }
    .emit()
    .to_vec();
    v.extend_from_slice(payload);
    v
}

/// A literal header field without indexing, new name.
fn lit(name: &str, value: &str) -> Vec<u8> {
    let mut v = vec![0, name.len() as u8];
    v.extend_from_slice(name.as_bytes());
    v.push(value.len() as u8);
    v.extend_from_slice(value.as_bytes());
    v
}

/// A request block: `:method` (static index 2 GET or 3 POST), `:scheme http`, `:path`,
/// `:authority`, extra literal fields.
pub(crate) fn req_block(post: bool, path: &str, extra: &[(&str, &str)]) -> Vec<u8> {
    let mut b = vec![if post { 0x83 } else { 0x82 }, 0x86, 0x04, path.len() as u8];
    b.extend_from_slice(path.as_bytes());
    b.extend([0x01, 3]);
    b.extend_from_slice(b"a.b");
    for (n, v) in extra {
        b.extend(lit(n, v));
    }
    b
}

/// A response block: `:status` as a literal with the static name (index 8), extra fields.
pub(crate) fn resp_block(status: &str, extra: &[(&str, &str)]) -> Vec<u8> {
    let mut b = vec![0x08, status.len() as u8];
    b.extend_from_slice(status.as_bytes());
    for (n, v) in extra {
        b.extend(lit(n, v));
    }
    b
}

pub(crate) const ES: u8 = flags::END_STREAM;
pub(crate) const EH: u8 = flags::END_HEADERS;

/// A connection 10.0.0.1:40000 → 10.0.0.2:80 (its start not seen when `partial`).
pub(crate) fn conn(partial: bool) -> Arc<ConnInfo> {
    conn_with(Transport::Tcp, 80, partial)
}

/// The client's preface and a first SETTINGS.
pub(crate) fn client_start() -> Vec<u8> {
    let mut v = PREFACE.to_vec();
    v.extend(fr(4, 0, 0, &[0, 3, 0, 0, 0, 100]));
    v
}

/// Lookups in a run's exchanges and anomalies.
trait Lookup {
    /// A text field of exchange `i` (`-` when absent).
    fn text(&self, i: usize, f: &str) -> String;
    /// A number field of exchange `i`.
    fn num(&self, i: usize, f: &str) -> Option<u64>;
    /// How many times anomaly `w` was noted.
    fn weird(&self, w: &str) -> usize;
    /// The exchange of a stream.
    fn stream(&self, id: u64) -> usize;
}

impl Lookup for Run {
    fn text(&self, i: usize, f: &str) -> String {
        String::from_utf8_lossy(self.ex[i].fields.text(f).unwrap_or(b"-")).into_owned()
    }
    fn num(&self, i: usize, f: &str) -> Option<u64> {
        self.ex[i].fields.u64(f)
    }
    fn weird(&self, w: &str) -> usize {
        self.weirds.iter().filter(|x| **x == w).count()
    }
    fn stream(&self, id: u64) -> usize {
        self.ex
            .iter()
            .position(|e| e.fields.u64("stream_id") == Some(id))
            .unwrap_or_else(|| panic!("no exchange for stream {id}"))
    }
}

/// Runs `steps` through a new parser (`partial`: the capture began after the connection
/// did) and the matcher, with each data step delivered whole (`cut` 0), a byte at a time
/// (`cut` 1), or in pieces of `cut` bytes, each piece then a step of its own; and checks
/// the invariants every run keeps.
fn run_cut(partial: bool, steps: &[Step<'_>], cut: usize) -> Run {
    let steps: Vec<Step<'_>> = if cut > 1 {
        steps
            .iter()
            .flat_map(|s| match *s {
                C(b) => b.chunks(cut).map(C).collect(),
                S(b) => b.chunks(cut).map(S).collect(),
                gap => vec![gap],
            })
            .collect()
    } else {
        steps.to_vec()
    };
    let r = drive(
        &mut Http2::new(partial),
        "http2",
        conn(partial),
        &steps,
        cut == 1,
    );
    r.check();
    r
}

fn run(steps: &[Step<'_>]) -> Run {
    run_cut(false, steps, 0)
}

/// A GET on stream 1 answered 200 with a body, plus SETTINGS, ACKs, PING, WINDOW_UPDATE,
/// PRIORITY and an unknown frame type: the client's bytes, the server's, then the client's
/// SETTINGS ACK and PING ACK (one step each: [`simple_get_steps`]).
fn simple_get() -> [Vec<u8>; 4] {
    let mut c = client_start();
    c.extend(fr(8, 0, 0, &[0, 0x10, 0, 0])); // WINDOW_UPDATE on the connection
    c.extend(fr(2, 0, 3, &[0, 0, 0, 0, 15])); // PRIORITY on an idle stream
    c.extend(fr(
        1,
        ES | EH,
        1,
        &req_block(false, "/index.html", &[("user-agent", "t/1")]),
    ));
    let mut s = fr(4, 0, 0, &[0, 4, 0, 1, 0, 0]);
    s.extend(fr(4, flags::ACK, 0, &[]));
    s.extend(fr(0xa, 0, 0, b"\x00\x03h2c")); // unknown type (ALTSVC): skipped
    s.extend(fr(6, 0, 0, &[1, 2, 3, 4, 5, 6, 7, 8])); // PING
    s.extend(fr(
        1,
        EH,
        1,
        &resp_block("200", &[("content-type", "text/html")]),
    ));
    s.extend(fr(0, 0, 1, b"hello "));
    s.extend(fr(0, ES, 1, b"world"));
    [
        c,
        s,
        fr(4, flags::ACK, 0, &[]),
        fr(6, flags::ACK, 0, &[1, 2, 3, 4, 5, 6, 7, 8]),
    ]
}

/// The conversation of [`simple_get`].
fn simple_get_steps(b: &[Vec<u8>; 4]) -> [Step<'_>; 4] {
    [C(&b[0]), S(&b[1]), C(&b[2]), C(&b[3])]
}

#[test]
fn get_with_every_control_frame() {
    let r = run(&simple_get_steps(&simple_get()));
    assert_eq!(r.ex.len(), 1);
    assert_eq!(r.ex[0].outcome, Outcome::Complete);
    assert_eq!(r.text(0, "method"), "GET");
    assert_eq!(r.text(0, "uri"), "/index.html");
    assert_eq!(r.text(0, "host"), "a.b");
    assert_eq!(r.text(0, "user_agent"), "t/1");
    assert_eq!(r.text(0, "version"), "2");
    assert_eq!(r.num(0, "status_code"), Some(200));
    assert_eq!(r.num(0, "stream_id"), Some(1));
    assert_eq!(r.num(0, "response_body_len"), Some(11));
    assert_eq!(r.text(0, "response_content_type"), "text/html");
    assert!(r.weirds.is_empty(), "{:?}", r.weirds);
    assert_eq!(r.state, ParserState::Active);
    // Request end at the HEADERS, response from its HEADERS to the last DATA.
    let (q, s) = (r.ex[0].request.unwrap(), r.ex[0].response.unwrap());
    assert_eq!(
        (q.start, q.end, s.start, s.end),
        (1000, Some(1000), 2000, Some(2000))
    );
}

#[test]
fn any_segmentation_gives_the_same_result() {
    let b = simple_get();
    let whole = run(&simple_get_steps(&b));
    for cut in 1..40 {
        let r = run_cut(false, &simple_get_steps(&b), cut);
        assert_eq!(r.ex.len(), 1, "cut {cut}");
        assert_eq!(r.ex[0].fields, whole.ex[0].fields, "cut {cut}");
        assert!(r.weirds.is_empty(), "cut {cut}: {:?}", r.weirds);
    }
}

#[test]
fn interleaved_streams_match_by_id() {
    let mut c = client_start();
    for (id, path) in [(1, "/a"), (3, "/b"), (5, "/c")] {
        c.extend(fr(1, ES | EH, id, &req_block(false, path, &[])));
    }
    // Responses in reverse order, DATA frames interleaved.
    let mut s = fr(4, 0, 0, &[]);
    s.extend(fr(1, EH, 5, &resp_block("404", &[])));
    s.extend(fr(1, EH, 3, &resp_block("200", &[])));
    s.extend(fr(0, 0, 5, b"nope"));
    s.extend(fr(1, EH, 1, &resp_block("500", &[])));
    s.extend(fr(0, 0, 3, b"bb"));
    s.extend(fr(0, ES, 1, b"a"));
    s.extend(fr(0, ES, 5, b"!"));
    s.extend(fr(0, ES, 3, b"b"));
    let r = run(&[C(&c), S(&s)]);
    assert_eq!(r.stats.complete, 3);
    for (id, path, status, body) in [(1, "/a", 500, 1), (3, "/b", 200, 3), (5, "/c", 404, 5)] {
        let i = r.stream(id);
        assert_eq!(r.text(i, "uri"), path);
        assert_eq!(r.num(i, "status_code"), Some(status));
        assert_eq!(r.num(i, "response_body_len"), Some(body));
    }
    // depth follows the order requests started.
    assert_eq!(r.ex[r.stream(5)].depth, 3);
    assert!(summarize(&r.ex[r.stream(1)]).failed);
    assert!(!summarize(&r.ex[r.stream(5)]).failed);
    assert_eq!(summarize(&r.ex[r.stream(3)]).endpoint, "GET /b");
}

#[test]
fn continuation_and_padding() {
    let block = req_block(true, "/upload", &[("content-type", "text/plain")]);
    let (a, rest) = block.split_at(3);
    let (b, c) = rest.split_at(5);
    let mut cl = client_start();
    // HEADERS padded (3 bytes) and with a priority block, then two CONTINUATIONs.
    let mut hp = vec![3, 0x80, 0, 0, 0, 200];
    hp.extend_from_slice(a);
    hp.extend([0, 0, 0]);
    cl.extend(fr(1, flags::PADDED | flags::PRIORITY, 1, &hp));
    cl.extend(fr(9, 0, 1, b));
    cl.extend(fr(9, EH, 1, c));
    // DATA padded: 4 data bytes, 10 bytes of padding; then an empty DATA ending the stream.
    let mut dp = vec![10];
    dp.extend_from_slice(b"body");
    dp.extend([0; 10]);
    cl.extend(fr(0, flags::PADDED, 1, &dp));
    cl.extend(fr(0, ES, 1, &[]));
    let s = [fr(4, 0, 0, &[]), fr(1, ES | EH, 1, &resp_block("204", &[]))].concat();
    for cut in [0, 1, 7] {
        let r = run_cut(false, &[C(&cl), S(&s)], cut);
        assert_eq!(r.ex.len(), 1);
        assert_eq!(r.text(0, "method"), "POST");
        assert_eq!(r.text(0, "uri"), "/upload");
        assert_eq!(r.text(0, "request_content_type"), "text/plain");
        assert_eq!(r.num(0, "request_body_len"), Some(4));
        assert_eq!(r.num(0, "status_code"), Some(204));
        assert_eq!(r.ex[0].outcome, Outcome::Complete);
        assert!(r.weirds.is_empty(), "{:?}", r.weirds);
    }
    // Padding longer than the payload.
    let mut cl2 = client_start();
    cl2.extend(fr(1, EH, 1, &req_block(true, "/", &[])));
    cl2.extend(fr(0, flags::PADDED | ES, 1, &[9, b'x']));
    let r = run(&[C(&cl2)]);
    assert_eq!(r.weird("http2_bad_padding"), 1);
    assert_eq!(r.num(0, "request_body_len"), Some(0));
}

#[test]
fn interrupted_continuation_loses_hpack_cleanly() {
    let mut c = client_start();
    let block = req_block(false, "/first", &[]);
    c.extend(fr(1, ES, 1, &block[..4])); // no END_HEADERS
    c.extend(fr(8, 0, 0, &[0, 0, 1, 0])); // not a CONTINUATION
    c.extend(fr(1, ES | EH, 3, &req_block(false, "/second", &[])));
    let s = [
        fr(4, 0, 0, &[]),
        fr(1, ES | EH, 1, &resp_block("200", &[])),
        fr(1, ES | EH, 3, &resp_block("200", &[])),
    ]
    .concat();
    let r = run(&[C(&c), S(&s)]);
    assert_eq!(r.weird("http2_continuation_expected"), 1);
    assert_eq!(r.weird("http2_hpack_desync"), 1);
    // Both streams are still exchanges; their request headers are unknown, never garbage.
    assert_eq!(r.ex.len(), 2);
    for i in 0..2 {
        assert_eq!(
            r.ex[i].fields.get("headers_unknown"),
            Some(&Value::Bool(true))
        );
        assert_eq!(r.ex[i].fields.get("method"), None);
        assert_eq!(r.num(i, "status_code"), Some(200));
    }
    assert_eq!(summarize(&r.ex[0]).endpoint, "(headers unknown)");
}

#[test]
fn dynamic_table_and_gap_in_a_header_block() {
    // The first request adds `:authority: x.y` to the table (literal with incremental
    // indexing, name index 1); the second refers to it (index 62).
    let first = [vec![0x82, 0x86, 0x84, 0x41, 3], b"x.y".to_vec()].concat();
    let second = vec![0x82, 0x86, 0x84, 0xbe];
    let mut c = client_start();
    c.extend(fr(1, ES | EH, 1, &first));
    c.extend(fr(1, ES | EH, 3, &second));
    let s = fr(4, 0, 0, &[]);
    let r = run(&[C(&c), S(&s)]);
    assert_eq!(r.text(0, "host"), "x.y");
    assert_eq!(r.text(1, "host"), "x.y");
    assert_eq!(r.stats.no_response, 2);

    // The first block lost to a gap (its frame header seen): the second must not be
    // decoded with a table that lacks the entry.
    let mut c1 = client_start();
    c1.extend(fr(1, ES | EH, 1, &first)[..11].to_vec());
    let rest = fr(1, ES | EH, 1, &first)[11..].len() as u64;
    let r = run(&[C(&c1), GapC(rest), C(&fr(1, ES | EH, 3, &second)), S(&s)]);
    assert_eq!(r.weird("http2_gap_in_frame"), 1);
    assert_eq!(r.weird("http2_hpack_desync"), 1);
    assert_eq!(r.ex.len(), 2);
    assert_eq!(r.text(1, "host"), "-");
    assert_eq!(
        r.ex[1].fields.get("headers_unknown"),
        Some(&Value::Bool(true))
    );
    assert_eq!(r.state, ParserState::Active);
}

#[test]
fn header_table_size_setting_governs_size_updates() {
    // The server announces a 8192-byte table: the client's encoder may grow to it.
    let grow = vec![0x3f, 0xe1, 0x3f, 0x82, 0x86, 0x84]; // size update 8192, GET http /
    let mut c = client_start();
    c.extend(fr(1, ES | EH, 1, &grow));
    let s = fr(4, 0, 0, &[0, 1, 0, 0, 0x20, 0]);
    let r = run(&[S(&s), C(&c)]);
    assert_eq!(r.weirds.len(), 0, "{:?}", r.weirds);
    assert_eq!(r.text(0, "method"), "GET");
    // Without the setting it is a decoding error.
    let r = run(&[S(&fr(4, 0, 0, &[])), C(&c)]);
    assert_eq!(r.weird("http2_hpack_table_size_exceeded"), 1);
    assert_eq!(
        r.ex[0].fields.get("headers_unknown"),
        Some(&Value::Bool(true))
    );
}

#[test]
fn resets_and_goaway() {
    let mut c = client_start();
    for id in [1, 3, 5, 7] {
        c.extend(fr(1, EH, id, &req_block(true, &format!("/{id}"), &[])));
    }
    c.extend(fr(0, 0, 1, b"partial"));
    c.extend(fr(3, 0, 1, &[0, 0, 0, 8])); // client cancels stream 1
    let s = [
        fr(4, 0, 0, &[]),
        fr(1, EH, 3, &resp_block("200", &[])),
        fr(0, 0, 3, b"xx"),
        fr(3, 0, 3, &[0, 0, 0, 2]), // server resets 3 mid-response
        fr(7, 0, 0, &[0, 0, 0, 3, 0, 0, 0, 0]), // GOAWAY: last stream 3
        fr(3, 0, 9, &[0, 0, 0, 8]), // RST on an unknown stream: ignored
    ]
    .concat();
    let r = run(&[C(&c), S(&s)]);
    let s1 = r.stream(1);
    assert_eq!(r.ex[s1].outcome, Outcome::NoResponse);
    assert_eq!(r.text(s1, "reset_code"), "CANCEL");
    assert_eq!(r.text(s1, "reset_by"), "client");
    assert_eq!(r.num(s1, "request_body_len"), Some(7));
    assert!(!r.ex[s1].request.unwrap().complete);
    let s3 = r.stream(3);
    assert_eq!(r.ex[s3].outcome, Outcome::Truncated);
    assert_eq!(r.text(s3, "reset_code"), "INTERNAL_ERROR");
    assert_eq!(r.text(s3, "reset_by"), "server");
    assert_eq!(r.num(s3, "response_body_len"), Some(2));
    assert_eq!(summarize(&r.ex[s3]).status.as_deref(), Some("200"));
    assert!(summarize(&r.ex[s3]).failed);
    for id in [5, 7] {
        let i = r.stream(id);
        assert_eq!(r.ex[i].outcome, Outcome::NoResponse);
        assert_eq!(
            r.ex[i].fields.get("goaway_unprocessed"),
            Some(&Value::Bool(true))
        );
    }
    assert!(r.weirds.is_empty(), "{:?}", r.weirds);
    // A reset after a complete exchange changes nothing; NO_ERROR is not a failure.
    let c = [client_start(), fr(1, EH, 1, &req_block(true, "/", &[]))].concat();
    let s = [
        fr(4, 0, 0, &[]),
        fr(1, ES | EH, 1, &resp_block("201", &[])),
        fr(3, 0, 1, &[0, 0, 0, 0]),
    ]
    .concat();
    let r = run(&[C(&c), S(&s)]);
    assert_eq!(r.text(0, "reset_code"), "NO_ERROR");
    assert_eq!(r.num(0, "status_code"), Some(201));
    assert!(!summarize(&r.ex[0]).failed);
}

/// A gRPC message: flag, length, bytes.
fn grpc_msg(compressed: bool, m: &[u8]) -> Vec<u8> {
    let mut v = vec![u8::from(compressed)];
    v.extend((m.len() as u32).to_be_bytes());
    v.extend_from_slice(m);
    v
}

#[test]
fn grpc_streaming_with_trailers_and_framing_split_across_frames() {
    let ct = [("content-type", "application/grpc"), ("te", "trailers")];
    let mut c = client_start();
    c.extend(fr(1, EH, 1, &req_block(true, "/pkg.Svc/Chat", &ct)));
    // Three request messages (one compressed) cut across four DATA frames.
    let msgs = [
        grpc_msg(false, b"one"),
        grpc_msg(true, b"twotwo"),
        grpc_msg(false, &[7; 40]),
    ]
    .concat();
    for (i, part) in msgs.chunks(17).enumerate() {
        let last = i == msgs.len().div_ceil(17) - 1;
        c.extend(fr(0, if last { ES } else { 0 }, 1, part));
    }
    let rct = [("content-type", "application/grpc+proto")];
    let mut s = fr(4, 0, 0, &[]);
    s.extend(fr(1, EH, 1, &resp_block("200", &rct)));
    s.extend(fr(
        0,
        0,
        1,
        &[grpc_msg(false, b"a"), grpc_msg(false, b"bc")].concat(),
    ));
    s.extend(fr(
        1,
        ES | EH,
        1,
        &[
            lit("grpc-status", "3"),
            lit("grpc-message", "bad%20arg%3A x"),
        ]
        .concat(),
    ));
    let r = run(&[C(&c), S(&s)]);
    assert_eq!(r.ex.len(), 1);
    assert_eq!(r.ex[0].outcome, Outcome::Complete);
    assert_eq!(r.text(0, "grpc_service"), "pkg.Svc");
    assert_eq!(r.text(0, "grpc_method"), "Chat");
    assert_eq!(r.num(0, "grpc_request_messages"), Some(3));
    assert_eq!(r.num(0, "grpc_request_bytes"), Some(49));
    assert_eq!(r.num(0, "grpc_request_compressed"), Some(1));
    assert_eq!(r.num(0, "request_body_len"), Some(64));
    assert_eq!(r.num(0, "grpc_response_messages"), Some(2));
    assert_eq!(r.num(0, "grpc_response_bytes"), Some(3));
    assert_eq!(r.num(0, "grpc_status"), Some(3));
    assert_eq!(r.text(0, "grpc_message"), "bad arg: x");
    let sum = summarize(&r.ex[0]);
    assert_eq!(sum.endpoint, "grpc pkg.Svc/Chat");
    assert_eq!(sum.status.as_deref(), Some("INVALID_ARGUMENT"));
    assert!(sum.failed);
    assert!(r.weirds.is_empty(), "{:?}", r.weirds);
}

#[test]
fn grpc_trailers_only_and_missing_status() {
    let ct = [("content-type", "application/grpc")];
    let mut c = client_start();
    for id in [1, 3] {
        c.extend(fr(1, EH, id, &req_block(true, "/p.S/M", &ct)));
        c.extend(fr(0, ES, id, &grpc_msg(false, b"q")));
    }
    let mut s = fr(4, 0, 0, &[]);
    // Trailers-only: status and grpc-status in one HEADERS that ends the stream.
    s.extend(fr(
        1,
        ES | EH,
        1,
        &resp_block("200", &[ct[0], ("grpc-status", "12")]),
    ));
    // No grpc-status at all, and a message cut short.
    s.extend(fr(1, EH, 3, &resp_block("200", &ct)));
    s.extend(fr(0, ES, 3, &grpc_msg(false, b"abcdef")[..7]));
    let r = run(&[C(&c), S(&s)]);
    assert_eq!(r.num(r.stream(1), "grpc_status"), Some(12));
    assert_eq!(r.num(r.stream(1), "grpc_response_messages"), Some(0));
    assert_eq!(r.num(r.stream(3), "grpc_status"), None);
    assert_eq!(r.weird("grpc_missing_status"), 1);
    assert_eq!(r.weird("grpc_truncated_message"), 1);
}

#[test]
fn interim_response_and_request_trailers() {
    let mut c = client_start();
    c.extend(fr(
        1,
        EH,
        1,
        &req_block(true, "/up", &[("expect", "100-continue")]),
    ));
    c.extend(fr(0, 0, 1, b"data"));
    c.extend(fr(1, ES | EH, 1, &lit("x-checksum", "abc")));
    let s = [
        fr(4, 0, 0, &[]),
        fr(1, EH, 1, &resp_block("100", &[])),
        fr(1, ES | EH, 1, &resp_block("200", &[])),
    ]
    .concat();
    let r = run(&[C(&c[..c.len() - 20]), S(&s), C(&c[c.len() - 20..])]);
    assert_eq!(r.ex.len(), 1);
    assert_eq!(r.num(0, "info_code"), Some(100));
    assert_eq!(r.num(0, "status_code"), Some(200));
    assert_eq!(r.num(0, "request_body_len"), Some(4));
    assert_eq!(r.ex[0].outcome, Outcome::Complete);
    assert!(r.ex[0].info_ts.is_some());
    assert!(r.weirds.is_empty(), "{:?}", r.weirds);
}

#[test]
fn server_push() {
    let c = [
        client_start(),
        fr(1, ES | EH, 1, &req_block(false, "/", &[])),
    ]
    .concat();
    let mut pp = vec![0, 0, 0, 2];
    pp.extend(req_block(false, "/style.css", &[]));
    let s = [
        fr(4, 0, 0, &[]),
        fr(5, EH, 1, &pp),
        fr(1, ES | EH, 1, &resp_block("200", &[])),
        fr(
            1,
            EH,
            2,
            &resp_block("200", &[("content-type", "text/css")]),
        ),
        fr(0, ES, 2, b"body{}"),
    ]
    .concat();
    let r = run(&[C(&c), S(&s)]);
    assert_eq!(r.stats.complete, 2);
    let p = r.stream(2);
    assert_eq!(r.text(p, "uri"), "/style.css");
    assert_eq!(r.ex[p].fields.get("pushed"), Some(&Value::Bool(true)));
    assert_eq!(r.num(p, "response_body_len"), Some(6));
    assert!(r.weirds.is_empty(), "{:?}", r.weirds);
}

#[test]
fn gaps_in_data_and_across_frames() {
    let mut c = client_start();
    c.extend(fr(1, EH, 1, &req_block(true, "/big", &[])));
    let data = fr(0, ES, 1, &[b'x'; 100]);
    c.extend_from_slice(&data[..30]);
    // 50 bytes of the DATA payload lost: the framing holds, the body counts them.
    let r = run(&[
        C(&c),
        GapC(50),
        C(&data[80..]),
        S(&[fr(4, 0, 0, &[]), fr(1, ES | EH, 1, &resp_block("200", &[]))].concat()),
    ]);
    assert_eq!(r.weird("http2_gap_in_data"), 1);
    assert_eq!(r.num(0, "request_body_len"), Some(100));
    assert!(!r.ex[0].request.unwrap().complete);
    assert_eq!(r.ex[0].outcome, Outcome::Truncated);
    // A gap longer than the frame: the client's framing is lost, its open request ends cut
    // short; the server side goes on.
    let r = run(&[
        C(&c),
        GapC(500),
        C(&fr(1, ES | EH, 3, &req_block(false, "/", &[]))),
        S(&[fr(4, 0, 0, &[]), fr(1, ES | EH, 1, &resp_block("413", &[]))].concat()),
    ]);
    assert_eq!(r.weird("http2_gap_framing_lost"), 1);
    assert_eq!(r.ex.len(), 1);
    assert_eq!(r.num(0, "status_code"), Some(413));
    assert_eq!(r.state, ParserState::Active);
    // Both directions lost: the parser gives up.
    let r = run(&[C(&client_start()), GapC(5), S(&[0, 0]), GapS(5)]);
    assert_eq!(r.state, ParserState::GaveUp);
}

#[test]
fn malformed_input_is_reported_not_fatal() {
    let mut c = client_start();
    c.extend(fr(3, 0, 1, &[0, 0, 8])); // RST_STREAM too short
    c.extend(fr(4, 0, 0, &[0, 2, 0, 0, 0, 5])); // ENABLE_PUSH = 5
    c.extend(fr(4, 0, 0, &[0, 2, 0])); // SETTINGS not a multiple of 6
    c.extend(fr(6, 0, 0, &[1, 2])); // short PING
    c.extend(fr(7, 0, 0, &[0, 0])); // short GOAWAY
    c.extend(fr(8, 0, 1, &[0, 0, 0, 0])); // zero WINDOW_UPDATE
    c.extend(fr(2, 0, 3, &[0, 0])); // short PRIORITY
    c.extend(fr(4, 0, 1, &[])); // SETTINGS on a stream
    c.extend(fr(9, EH, 1, &[0x82])); // CONTINUATION out of nowhere
    c.extend(fr(1, ES | EH, 2, &[0x82, 0x86, 0x84])); // even stream id from the client
    c.extend(fr(0, ES, 9, b"??")); // DATA on an unknown stream: ignored
    let r = run(&[C(&c)]);
    for w in [
        "http2_bad_frame_length",
        "http2_bad_setting",
        "http2_zero_window_update",
        "http2_bad_stream_id",
        "http2_unexpected_continuation",
    ] {
        assert!(r.weird(w) >= 1, "{w} missing from {:?}", r.weirds);
    }
    assert_eq!(r.state, ParserState::Active);
    // A broken preface gives the connection up.
    let r = run(&[C(b"PRI * HTTP/1.1\r\n\r\n")]);
    assert_eq!(r.weird("http2_bad_preface"), 1);
    assert_eq!(r.state, ParserState::GaveUp);
    // Frames without a preface on a connection whose start was seen.
    let r = run(&[C(&fr(4, 0, 0, &[]))]);
    assert_eq!(r.weird("http2_missing_preface"), 1);
    // ... but not when the capture began late.
    let r = run_cut(true, &[C(&fr(4, 0, 0, &[]))], 0);
    assert!(r.weirds.is_empty());
}

#[test]
fn arbitrary_bytes_never_panic() {
    // A small LCG: deterministic noise, with some real frames spliced in.
    let mut x: u64 = 0x2545_f491_4f6c_dd1d;
    let mut next = move || {
        x = x
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (x >> 33) as u8
    };
    let start = client_start();
    for round in 0..300 {
        // Each step: whether the client sent it, a gap's length or else the bytes.
        let mut conv = Vec::new();
        for i in 0..12 {
            let n = usize::from(next()) % 64;
            let mut b: Vec<u8> = (0..n).map(|_| next()).collect();
            if i % 3 == 0 {
                // A frame header with small lengths keeps the parser inside framing.
                b.splice(
                    0..0,
                    fr(next() % 11, next(), u32::from(next() % 8), &b.clone()),
                );
            }
            let client = next() % 2 == 0;
            let gap = (next() % 9 == 0).then(|| u64::from(next()));
            conv.push((client, gap, b));
        }
        let steps: Vec<Step<'_>> = std::iter::once(C(&start))
            .chain(conv.iter().map(|(client, gap, b)| match (client, gap) {
                (true, Some(n)) => GapC(*n),
                (false, Some(n)) => GapS(*n),
                (true, None) => C(b),
                (false, None) => S(b),
            }))
            .collect();
        let r = run_cut(round % 2 == 0, &steps, 1 + round % 5);
        assert!(r.ex.len() <= MAX_STREAMS * 2);
    }
}

#[test]
fn bounds_streams_header_blocks_continuation_floods() {
    // More concurrent streams than tracked: the excess is counted, HPACK stays in sync.
    let mut c = client_start();
    let extra = 10;
    for i in 0..(MAX_STREAMS + extra) as u32 {
        c.extend(fr(1, EH, 2 * i + 1, &req_block(false, "/", &[])));
    }
    let last = 2 * (MAX_STREAMS + extra) as u32 + 1;
    c.extend(fr(1, ES | EH, last, &[0x82, 0x86, 0x84]));
    let r = run(&[C(&c)]);
    assert_eq!(r.weird("http2_too_many_streams"), extra + 1);
    assert_eq!(r.weird("http2_hpack_desync"), 0);
    assert_eq!(r.ex.len(), MAX_STREAMS);

    // A CONTINUATION flood: many empty CONTINUATIONs, never END_HEADERS, then one with it.
    let mut c = client_start();
    c.extend(fr(1, 0, 1, &[0x82]));
    for _ in 0..MAX_CONTINUATIONS + 5 {
        c.extend(fr(9, 0, 1, &[]));
    }
    c.extend(fr(9, EH, 1, &[0x86, 0x84]));
    let r = run(&[C(&c)]);
    assert_eq!(r.weird("http2_continuation_flood"), 1);
    assert_eq!(r.weird("http2_hpack_desync"), 1);

    // A header block over the limit is not buffered.
    let mut c = client_start();
    let chunk = vec![0x82; 16_000];
    c.extend(fr(1, 0, 1, &chunk));
    for _ in 0..(MAX_HEADER_BLOCK / chunk.len()) {
        c.extend(fr(9, 0, 1, &chunk));
    }
    c.extend(fr(9, EH, 1, &chunk));
    let r = run_cut(false, &[C(&c)], 4096);
    assert_eq!(r.weird("http2_header_block_too_large"), 1);

    // A DATA frame claiming 16 MiB with a few bytes present buffers nothing.
    let mut c = client_start();
    c.extend(fr(1, EH, 1, &req_block(true, "/", &[])));
    let mut h = fr(0, 0, 1, &[]);
    h[..3].copy_from_slice(&[0xff, 0xff, 0xff]);
    c.extend(h);
    c.extend([1; 100]);
    let r = run(&[C(&c)]);
    assert_eq!(r.num(0, "request_body_len"), Some(100));
    assert_eq!(r.weird("http2_truncated_frame"), 1);
}

#[test]
fn probe_cases() {
    let pi = |c: &[u8], s: &[u8]| {
        probe(&ProbeInput {
            to_server: c,
            to_client: s,
            server_port: 9999,
            transport: Transport::Tcp,
        })
    };
    let settings = fr(4, 0, 0, &[0, 3, 0, 0, 0, 100]);
    let two = [settings.clone(), fr(8, 0, 0, &[0, 0, 1, 0])].concat();
    assert_eq!(pi(PREFACE, b""), Probe::Yes);
    assert_eq!(pi(&PREFACE[..10], b""), Probe::NeedMore);
    assert_eq!(pi(b"GET / HTTP/1.1\r\n", b""), Probe::No);
    assert_eq!(pi(b"PRI * HTTP/1.1\r\n", b""), Probe::No);
    // Mid-stream: two plausible frames from either side.
    assert_eq!(pi(&two, b""), Probe::Yes);
    assert_eq!(pi(b"", &two), Probe::Yes);
    assert_eq!(pi(&settings, b""), Probe::NeedMore);
    assert_eq!(pi(&two[..5], b""), Probe::NeedMore);
    // A valid first frame followed by junk.
    assert_eq!(
        pi(&[settings.clone(), vec![0xff; 9]].concat(), b""),
        Probe::No
    );
    // TLS ClientHello, a DNS-over-TCP query, an HTTP response.
    assert_eq!(
        pi(&[0x16, 3, 1, 0, 0xc8, 1, 0, 0, 0xc4, 3, 3], b""),
        Probe::No
    );
    let dns = [
        0, 0x1d, 0x12, 0x34, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0, 3, b'w', b'w', b'w',
    ];
    assert_eq!(pi(&dns, b""), Probe::No);
    assert_eq!(pi(b"", b"HTTP/1.1 200 OK\r\n"), Probe::No);
    // The registry still gives HTTP/1 and DNS connections to their own parsers.
    let det = |c: &[u8], s: &[u8], port| {
        crate::proto::detect(
            &ProbeInput {
                to_server: c,
                to_client: s,
                server_port: port,
                transport: Transport::Tcp,
            },
            true,
        )
        .and_then(|r| r.ok())
        .map(|d| d.proto.name)
    };
    assert_eq!(
        det(b"GET / HTTP/1.1\r\nHost: a\r\n\r\n", b"", 80),
        Some("http")
    );
    assert_eq!(det(PREFACE, &settings, 80), Some("http2"));
    assert_eq!(det(&dns, b"", 53), Some("dns"));
}

#[test]
fn base64url_settings() {
    assert_eq!(
        base64url(b"AAMAAABkAAQCAAAAAAIAAAAA"),
        Some(vec![0, 3, 0, 0, 0, 100, 0, 4, 2, 0, 0, 0, 0, 2, 0, 0, 0, 0])
    );
    assert_eq!(base64url(b"AAEAABAA"), Some(vec![0, 1, 0, 0, 16, 0]));
    assert_eq!(base64url(b"A"), None);
    assert_eq!(base64url(b"A*AA"), None);
}

/// An input the `http2` fuzz target found breaking an invariant ([`Run::check`]): on a
/// connection caught mid-stream, a response seen first and a later client header block on its
/// stream were matched as a request answered before it was sent.
#[test]
fn fuzz_findings() {
    let data: &[u8] = b"\x5d\x6b\x9d\x00\x00\x00\x01\x01\xff\x5d\x2b\x9d\x00\x00\x00\x01\xdb\xff\xff\x00\xff\x00\x00\x00\x00\x00\x00\x00\x00\xff\x00\x00\x00\x00\x7a\x35\x01\x29\x26\x00\x00\x00\x01\xbc\x00\xff\x50\x73\x00\x00\x00\x01\xbc\xff\xa3\xd9\x9d\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x01\x28\xff\xff\xbf\xff\x00\x00\x00\x01\x06\x00\x05\xff\xad\x00\x00\x00\x40\xff\xff\x00\xf4\xff\x00\x00\x00\x01\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x06\x00\x00\x00\x01\x00\x00\x00\x01\x07\x00\x00\x00\x01\x00\x00\x23\xbf\xff\x00\x00\x00\x01\x01\xff\xff\xfd\xff\x00\x00\x3f\x40\xff\x9d\x00\x21\x00\x00\x01\xdb\x5d\x2b\x9d\x00\x00\x00\x01\xdb\xff\xff\x00\xff\x00\x00\x00\x00\x00\x00\x00\x00\xff\x00\x00\x00\x00\x7a\x35\x01\x29\x26\x00\x00\x00\x01\xbc\x00\xff\x50\x73\x00\x00\x00\x01\xbc\xff\xa3\xd9\x9d\x00\x01\x03\x00\xff\x00\x00\x00\x00\x00\x00\x00\x00\xff\x00\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xbf\xff\x00\x00\x00\x01\x06\x00\x05\xff\xad\x00\x00\x00\x40\xff\xff\x00\xf4\xff\x00\x00\x00\x01\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x06\x00\x00\x00\x01\x00\x00\x00\x01\x07\x00\x00\x00\x01\x00\x00\x23\xbf\xff\x00\x00\x00\x01\x01\x00\xff\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x01\x28\xff\xff\xbf\xff\x00\x00\x00\x01\x06\x00\x05\xff\xad\x00\x00\x00\x40\xff\xff\x00\xf4\xff\xff\x00\xf4\xff\x00\x00\x00\x01\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x06\x00\x00\x00\x01\x00\x00\x00\x01\x07\x00\x00\x00\x01\x00\x00\x23\xbf\xff\x56\x56\x56\x56\x56\x56\x56\x01\xdb\xff\xff\x00\xff\x00\x00\x00\x00\x00\x00\x00\x00\xff\x00\x00\x00\x00\x7a\x35\x01\x29\x26\x00\x00\x00\x01\xbc\x00\xff\x50\x73\x00\x00\x00\x01\xbc\xff\xa3\xd9\x9d\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x01\x28\xff\xff\xbf\xff\x00\x00\x00\x01\x06\x00\x05\xff\xad\x00\x00\x00\x40\xff\xff\x00\xf4\xff\x00\x00\x00\x01\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x06\x00\x00\x00\x01\x00\x00\x00\x01\x07\x00\x00\x00\x01\x00\x00\x23\xbf\xff\x00\x00\x00\x01\x01\xff\xff\xfd\xff\x00\x00\x3f\x40\xff\x9d\x00\x21\x00\x00\x01\xdb\x5d\x2b\x9d\x00\x00\x00\x01\xdb\xff\xff\x00\xff\x00\x00\x00\x00\x00\x00\x00\x00\xff\x00\x00\x00\x00\x7a\x35\x01\x29\x26\x00\x00\x00\x01\xbc\x00\xff\x50\x73\x00\x00\x00\x01\xbc\xff\xa3\xd9\x9d\x00\x00\xff\x00\xff\x00\x00\x00\x00\x00\x00\x00\x00\xff\x00\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xbf\xff\x00\x00\x00\x01\x06\x00\x05\xff\xad\x00\x00\x00\x40\xff\xff\x00\xf4\xff\x00\x00\x00\x01\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x06\x00\x00\x00\x01\x00\x00\x00\x01\x07\x00\x00\x00\x01\x00\x00\x23\xbf\xff\x00\x00\x00\x01\x01\x00\xff\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x01\x28\xff\xff\xbf\xff\x00\x00\x00\x01\x06\x00\x05\xff\xad\x00\x00\x00\x40\xff\xff\x00\xf4\xff\xff\x00\xf4\xff\x00\x00\x00\x01\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x06\x00\x00\x00\x01\x00\x00\x00\x01\x07\x00\x00\x00\x01\x00\x00\x23\xbf\xff\x56\x56\x56\x56\x56\x56\x56\x56\x56\x56\x56\x56\x56\x56\x56\x56\x56\x56\x56\x56\x56\x56\x56\x56\x56\x56\x56\x56\x56\x56\x56\x56\x56\x56\x56\x56\x56\x56\x56\x56\x56\x56\x56\x56\x56\x56\x56\x56\x56\x56\x56\x56\x56\x56\x56\x56\x56\x56\x56\x56\x56\x56\x56\x56\x56\x56\x56\x56\x56\x56\x56\x56\x56\x56\x56\x56\x56\x56\x56\x56\x56\x56\x56\x56\x56\x56\x56\x56\x56\x56\x56\x56\x56\x56\x56\x56\x56\x56\x56\x56\x56\x56\x56\x56\x56\x56\x56\x56\x56\x00\x56\x56\x56\x56\x56\x56\x56\x56\x56\x56\x56\x56\x56\x56\x56\x56\x56\x56\x56\x56\x56\x56\x56\x56\x56\x56\x56\x56\x56\x56\x56\x56\x56\x56\x56\x56\x56\x56\x56\x56\x56\x56\x56\x56\x56\x56\x56\x56\x56\x56\x56\x56\x56\x56\x56\x56\x56\x56\x56\x56\x56\x56\x56\x56\x56\x56\x56\x56\x56\x56\x56\x56\x56\x56\x56\x56\x56\x56\x56\x56\x56\x56\x56\x56\x56\x56\x56\x56\x56\x56\x56\x56\x56\x56\x56\x56\x56\x56\x56\x56\x56\x56\x00\x00\x00\x01\x01\x00\xff\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x01\x28\xff\xff\xbf\xff\x00\x00\x00\x01\x06\x00\x05\xff\xad\x00\x00\x00\x40\xff\xff\x00\xf4\xff\x00\x00\x00\x01\x00\x7a\x34\x01\x29\x26\x00\x00";
    crate::l7::harness::fuzz(&super::PROTOCOL, b"", data);
}
