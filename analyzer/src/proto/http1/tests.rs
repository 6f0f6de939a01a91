//! Literal-byte tests for every state of the HTTP/1 parser. Each conversation also runs with
//! its bytes delivered one at a time, which must not change the result.

use std::sync::Arc;

use super::{Http, MAX_HEADERS, MAX_LINE, MAX_PENDING, probe, unescape_uri};
use crate::l7::harness::{Run, Step, drive};
use crate::l7::{ParserState, Probe, ProbeInput};
use crate::model::{ConnInfo, Exchange, Outcome, Transport};
use Step::{C, GapC, GapS, S};

fn conn() -> Arc<ConnInfo> {
    crate::l7::harness::conn(80)
}

/// Runs once, and checks the invariants every conversation keeps ([`Run::check`]).
fn run_with(steps: &[Step<'_>], bytewise: bool) -> Run {
    let r = drive(&mut Http::default(), "http", conn(), steps, bytewise);
    r.check();
    r
}

/// Runs whole and byte by byte; both must agree.
fn run(steps: &[Step<'_>]) -> Run {
    let a = run_with(steps, false);
    let b = run_with(steps, true);
    assert_eq!(
        a.ex.iter()
            .map(|e| (e.depth, e.outcome, e.fields.clone()))
            .collect::<Vec<_>>(),
        b.ex.iter()
            .map(|e| (e.depth, e.outcome, e.fields.clone()))
            .collect::<Vec<_>>(),
        "byte-at-a-time delivery changed the result"
    );
    a
}

fn t<'a>(e: &'a Exchange, k: &str) -> Option<&'a str> {
    e.fields.text(k).map(|b| std::str::from_utf8(b).unwrap())
}
fn n(e: &Exchange, k: &str) -> Option<u64> {
    e.fields.u64(k)
}

#[test]
fn get_with_content_length() {
    let r = run(&[
        C(b"GET /a?b=c HTTP/1.1\r\nHost: example.com:8080\r\nUser-Agent: curl/8\r\n\r\n"),
        S(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Type: text/plain\r\n\r\nhello"),
    ]);
    assert_eq!(r.ex.len(), 1);
    let e = &r.ex[0];
    assert_eq!(e.outcome, Outcome::Complete);
    assert_eq!(t(e, "method"), Some("GET"));
    assert_eq!(t(e, "uri"), Some("/a?b=c"));
    assert_eq!(t(e, "host"), Some("example.com:8080"));
    assert_eq!(t(e, "user_agent"), Some("curl/8"));
    assert_eq!(t(e, "version"), Some("1.1"));
    assert_eq!(n(e, "status_code"), Some(200));
    assert_eq!(t(e, "status_msg"), Some("OK"));
    assert_eq!(n(e, "response_body_len"), Some(5));
    assert_eq!(n(e, "request_body_len"), Some(0));
    assert_eq!(t(e, "response_content_type"), Some("text/plain"));
    assert_eq!(e.request.unwrap().start, 1000);
    assert_eq!(e.response.unwrap().end, Some(2000));
}

#[test]
fn pipelining_with_head() {
    let r = run(&[
        C(b"GET /1 HTTP/1.1\r\nHost: h\r\n\r\nHEAD /2 HTTP/1.1\r\nHost: h\r\n\r\nGET /3 HTTP/1.1\r\nHost: h\r\n\r\n"),
        S(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nabHTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n"),
        S(b"HTTP/1.1 404 Not Found\r\nContent-Length: 3\r\n\r\nxyz"),
    ]);
    let got: Vec<_> =
        r.ex.iter()
            .map(|e| {
                (
                    e.depth,
                    t(e, "uri"),
                    n(e, "status_code"),
                    n(e, "response_body_len"),
                )
            })
            .collect();
    assert_eq!(
        got,
        vec![
            (1, Some("/1"), Some(200), Some(2)),
            (2, Some("/2"), Some(200), Some(0)),
            (3, Some("/3"), Some(404), Some(3))
        ]
    );
    assert!(r.ex.iter().all(|e| e.outcome == Outcome::Complete));
}

#[test]
fn pipelining_beyond_the_bound_keeps_replies_paired() {
    // Two requests more than may wait; the last is a HEAD, whose reply has no body although
    // it says Content-Length. The two oldest are written unanswered and their replies dropped;
    // the parser, which forgot their methods, must still know the last reply answers the HEAD
    // (otherwise it would read the next reply as that one's body, or this one's as a body).
    let count = MAX_PENDING + 2;
    let mut client = Vec::new();
    let mut server = Vec::new();
    for i in 0..count {
        let last = i + 1 == count;
        let method = if last { "HEAD" } else { "GET" };
        client.extend_from_slice(format!("{method} /{i} HTTP/1.1\r\nHost: h\r\n\r\n").as_bytes());
        if last {
            server.extend_from_slice(b"HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n");
        } else {
            server.extend_from_slice(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nab");
        }
    }
    let r = run_with(&[C(&client), S(&server)], false);
    assert_eq!(r.ex.len(), count);
    let unanswered: Vec<_> =
        r.ex.iter()
            .filter(|e| e.outcome == Outcome::NoResponse)
            .map(|e| t(e, "uri"))
            .collect();
    assert_eq!(unanswered, vec![Some("/0"), Some("/1")]);
    let last =
        r.ex.iter()
            .find(|e| t(e, "method") == Some("HEAD"))
            .unwrap();
    assert_eq!(last.outcome, Outcome::Complete);
    assert_eq!(t(last, "uri"), Some(format!("/{}", count - 1).as_str()));
    assert_eq!(n(last, "response_body_len"), Some(0));
    let complete =
        r.ex.iter()
            .filter(|e| e.outcome == Outcome::Complete)
            .count();
    assert_eq!(complete, count - 2);
    assert!(
        r.ex.iter()
            .filter(|e| e.outcome == Outcome::Complete && t(e, "method") == Some("GET"))
            .all(|e| n(e, "response_body_len") == Some(2))
    );
}

#[test]
fn chunked_response_with_extensions_and_trailers() {
    let r = run(&[
        C(b"GET / HTTP/1.1\r\n\r\n"),
        S(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5;ext=1\r\nhello\r\n6\r\n world\r\n0\r\nX-Trailer: t\r\n\r\n"),
        C(b"GET /next HTTP/1.1\r\n\r\n"),
        S(b"HTTP/1.1 204 No Content\r\n\r\n"),
    ]);
    assert_eq!(r.ex.len(), 2);
    assert_eq!(n(&r.ex[0], "response_body_len"), Some(11));
    assert_eq!(r.ex[0].outcome, Outcome::Complete);
    assert_eq!(n(&r.ex[1], "status_code"), Some(204));
}

#[test]
fn chunked_request_body() {
    let r = run(&[
        C(b"POST /up HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n"),
        S(b"HTTP/1.1 201 Created\r\nContent-Length: 0\r\n\r\n"),
    ]);
    assert_eq!(n(&r.ex[0], "request_body_len"), Some(3));
    assert_eq!(n(&r.ex[0], "status_code"), Some(201));
}

#[test]
fn expect_100_continue() {
    let r = run(&[
        C(b"POST / HTTP/1.1\r\nExpect: 100-continue\r\nContent-Length: 4\r\n\r\n"),
        S(b"HTTP/1.1 100 Continue\r\n\r\n"),
        C(b"data"),
        S(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"),
    ]);
    assert_eq!(r.ex.len(), 1);
    let e = &r.ex[0];
    assert_eq!(
        (n(e, "info_code"), t(e, "info_msg")),
        (Some(100), Some("Continue"))
    );
    assert_eq!(n(e, "status_code"), Some(200));
    assert_eq!(n(e, "request_body_len"), Some(4));
    assert_eq!(e.info_ts, Some(2000));
}

#[test]
fn not_modified_has_no_body() {
    let r = run(&[
        C(b"GET / HTTP/1.1\r\n\r\nGET /b HTTP/1.1\r\n\r\n"),
        S(b"HTTP/1.1 304 Not Modified\r\nContent-Length: 50\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\nz"),
    ]);
    assert_eq!(r.ex.len(), 2);
    assert_eq!(n(&r.ex[0], "response_body_len"), Some(0));
    assert_eq!(n(&r.ex[1], "response_body_len"), Some(1));
}

#[test]
fn close_delimited_response() {
    let r = run(&[
        C(b"GET / HTTP/1.0\r\n\r\n"),
        S(b"HTTP/1.0 200 OK\r\nConnection: close\r\n\r\nall of this is body\nand this"),
    ]);
    assert_eq!(n(&r.ex[0], "response_body_len"), Some(28));
    assert_eq!(r.ex[0].outcome, Outcome::Complete);
}

#[test]
fn unframed_response_counts_lines_to_the_end() {
    // No length, no chunking, no close: line mode to the end, each line counted + 2 (Zeek).
    let r = run(&[
        C(b"GET / HTTP/1.1\r\n\r\n"),
        S(b"HTTP/1.1 200 OK\r\n\r\nab\ncd"),
    ]);
    assert_eq!(n(&r.ex[0], "response_body_len"), Some(8));
}

#[test]
fn connect_tunnel_ends_http() {
    let r = run(&[
        C(b"CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n"),
        S(b"HTTP/1.1 200 Connection Established\r\n\r\n"),
        C(b"\x16\x03\x01 tls bytes"),
        S(b"\x16\x03\x03 more tls"),
    ]);
    assert_eq!(r.ex.len(), 1);
    assert_eq!(t(&r.ex[0], "uri"), Some("example.com:443"));
    assert_eq!(t(&r.ex[0], "status_msg"), Some("Connection Established"));
    assert_eq!(r.state, ParserState::Finished);
    assert!(r.weirds.is_empty(), "{:?}", r.weirds);
}

#[test]
fn upgrade_101() {
    // The server agrees (Connection: upgrade, Upgrade) to the one request waiting: HTTP ends.
    let r = run(&[
        C(b"GET /ws HTTP/1.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n"),
        S(b"HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n\x81\x05hello"),
        C(b"\x81\x85junk"),
    ]);
    assert_eq!(r.ex.len(), 1);
    let e = &r.ex[0];
    assert_eq!(
        (n(e, "status_code"), n(e, "info_code")),
        (Some(101), Some(101))
    );
    assert_eq!(e.outcome, Outcome::Complete);
    assert_eq!(r.state, ParserState::Finished);
}

#[test]
fn http09_request_and_raw_response() {
    let r = run(&[C(b"GET /index.html\n"), S(b"<html>hi</html>")]);
    let e = &r.ex[0];
    assert_eq!(t(e, "version"), Some("0.9"));
    assert_eq!(n(e, "status_code"), Some(0));
    assert_eq!(t(e, "status_msg"), None);
    assert_eq!(n(e, "response_body_len"), Some(15));
    assert_eq!(t(e, "request_version"), Some("0.9"));
}

#[test]
fn bad_request_line_gives_up() {
    // A token followed by a word is a valid HTTP/0.9 request (as in Zeek); this is not. The
    // server's answer comes in bytes too small to be recognised before the DPD gives up.
    let r = run_with(
        &[C(b"GARBAGE\r\n"), S(b"HTTP/1.1 400 Bad Request\r\n\r\n")],
        true,
    );
    assert_eq!(r.state, ParserState::GaveUp);
    assert!(r.weirds.contains(&"bad_HTTP_request"));
    assert!(r.ex.is_empty());
}

#[test]
fn oversized_headers_give_up() {
    let mut req = b"GET / HTTP/1.1\r\n".to_vec();
    for i in 0..(MAX_HEADERS + 1) {
        req.extend_from_slice(format!("X-H{i}: v\r\n").as_bytes());
    }
    let r = run_with(&[C(&req)], false);
    assert_eq!(r.state, ParserState::GaveUp);
    assert!(r.weirds.contains(&"http_headers_too_large"));
}

#[test]
fn long_line_is_cut_and_counted() {
    let mut req = b"GET /".to_vec();
    req.extend(std::iter::repeat_n(b'a', MAX_LINE + 10));
    req.extend_from_slice(b" HTTP/1.1\r\n\r\n");
    let r = run_with(
        &[
            C(&req),
            S(b"HTTP/1.1 414 URI Too Long\r\nContent-Length: 0\r\n\r\n"),
        ],
        false,
    );
    assert!(r.weirds.contains(&"http_line_too_long"));
    // The cut line has no version any more: it is parsed as HTTP/0.9 with the kept bytes.
    assert_eq!(t(&r.ex[0], "uri").map(str::len), Some(MAX_LINE - 4));
}

#[test]
fn gzip_body_length_is_decoded() {
    use flate2::write::GzEncoder;
    use std::io::Write;
    let body = b"hello hello hello hello hello hello hello hello".repeat(20);
    let mut g = GzEncoder::new(Vec::new(), flate2::Compression::best());
    g.write_all(&body).unwrap();
    let gz = g.finish().unwrap();
    let mut resp = format!(
        "HTTP/1.1 200 OK\r\nContent-Encoding: gzip\r\nContent-Length: {}\r\n\r\n",
        gz.len()
    )
    .into_bytes();
    resp.extend_from_slice(&gz);
    let r = run(&[C(b"GET / HTTP/1.1\r\n\r\n"), S(&resp)]);
    assert_eq!(n(&r.ex[0], "response_body_len"), Some(body.len() as u64));
}

#[test]
fn obs_fold_is_joined_without_separator() {
    let r = run(&[
        C(b"GET / HTTP/1.1\r\nUser-Agent: a\r\n  b\r\nHost: h \r\n\r\n"),
        S(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"),
    ]);
    assert_eq!(t(&r.ex[0], "user_agent"), Some("a  b"));
    assert_eq!(
        t(&r.ex[0], "host"),
        Some("h "),
        "trailing whitespace is kept"
    );
    assert!(r.weirds.contains(&"HTTP_obsolete_line_folding"));
}

#[test]
fn last_header_wins_and_bad_headers_are_dropped() {
    let r = run(&[
        C(b"GET / HTTP/1.1\r\nHost: first\r\nno colon here\r\nHost : second\r\n\r\n"),
        S(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"),
    ]);
    assert_eq!(t(&r.ex[0], "host"), Some("second"));
    assert!(r.weirds.contains(&"HTTP_bad_header"));
}

#[test]
fn invalid_content_length_means_no_body() {
    let r = run(&[
        C(b"POST / HTTP/1.1\r\nContent-Length: 18446744073709551615\r\n\r\nGET /smuggled HTTP/1.1\r\n\r\n"),
    ]);
    let uris: Vec<_> = r.ex.iter().map(|e| t(e, "uri")).collect();
    assert_eq!(uris, vec![Some("/"), Some("/smuggled")]);
    assert!(r.weirds.contains(&"HTTP_bad_content_length"));
}

#[test]
fn chunked_wins_over_content_length() {
    let r = run(&[C(b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\nContent-Length: 50\r\n\r\n0\r\n\r\nGET /next HTTP/1.1\r\n\r\n")]);
    assert_eq!(r.ex.len(), 2);
    assert!(r.weirds.contains(&"HTTP_content_length_and_chunked"));
}

#[test]
fn chunk_size_overflow_is_the_last_chunk() {
    let r = run(&[C(b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n10000000000000000\r\n\r\nGET /s HTTP/1.1\r\n\r\n")]);
    assert_eq!(r.ex.len(), 2);
    assert_eq!(n(&r.ex[0], "request_body_len"), Some(0));
    assert!(r.weirds.contains(&"HTTP_bad_chunk_size"));
}

#[test]
fn gap_inside_a_body_is_counted() {
    let r = run(&[
        C(b"GET / HTTP/1.1\r\n\r\n"),
        S(b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nab"),
        GapS(5),
        S(b"cde"),
    ]);
    assert_eq!(n(&r.ex[0], "response_body_len"), Some(10));
    assert_eq!(r.ex[0].outcome, Outcome::Complete);
}

#[test]
fn gap_in_headers_stops_the_requests() {
    // A gap outside a body stops the direction for good: no resynchronisation (Zeek).
    let r = run(&[
        C(b"GET /one HTTP/1.1\r\nHost: a"),
        GapC(100),
        C(b"garbage tail\r\n\r\nGET /two HTTP/1.1\r\nHost: b\r\n\r\n"),
        S(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"),
    ]);
    let got: Vec<_> =
        r.ex.iter()
            .map(|e| {
                (
                    t(e, "uri"),
                    e.request.map(|q| q.complete),
                    n(e, "status_code"),
                )
            })
            .collect();
    // The replies still come (no reply was in progress at the gap): the first answers
    // /one, the second has no request.
    assert_eq!(
        got,
        vec![
            (Some("/one"), Some(false), Some(200)),
            (None, None, Some(200))
        ]
    );
    assert!(r.weirds.contains(&"HTTP_content_gap"));
}

#[test]
fn gap_in_responses_leaves_requests_unanswered() {
    let r = run(&[
        C(b"GET /1 HTTP/1.1\r\n\r\n"),
        S(b"HTTP/1.1 200 OK\r\n"),
        GapS(300),
        C(b"GET /2 HTTP/1.1\r\n\r\n"),
        S(b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\nx"),
    ]);
    let got: Vec<_> =
        r.ex.iter()
            .map(|e| (e.depth, t(e, "uri"), e.outcome))
            .collect();
    // No reply is parsed after the gap.
    assert_eq!(
        got,
        vec![
            (1, Some("/1"), Outcome::Truncated),
            (2, Some("/2"), Outcome::NoResponse)
        ]
    );
}

#[test]
fn bare_lf_and_split_crlf() {
    let r = run(&[
        C(b"GET / HTTP/1.1\nHost: x\n\n"),
        S(b"HTTP/1.1 200 OK\r"),
        S(b"\nContent-Length: 1\r\n\r"),
        S(b"\nz"),
    ]);
    assert_eq!(t(&r.ex[0], "host"), Some("x"));
    assert_eq!(n(&r.ex[0], "response_body_len"), Some(1));
}

#[test]
fn partial_content_uses_the_larger_length() {
    let r = run(&[
        C(b"GET / HTTP/1.1\r\n\r\n"),
        S(b"HTTP/1.1 206 ok\r\nContent-Length: 3\r\nContent-Range: bytes 0-4/10\r\n\r\n12345"),
    ]);
    assert_eq!(n(&r.ex[0], "response_body_len"), Some(5));
}

#[test]
fn multipart_counts_lines() {
    let body = b"--XX\r\nContent-Disposition: form-data; name=\"a\"\r\n\r\n1\r\n--XX--\r\n";
    let mut req = format!("POST / HTTP/1.1\r\nContent-Type: multipart/form-data; boundary=XX\r\nContent-Length: {}\r\n\r\n", body.len()).into_bytes();
    req.extend_from_slice(body);
    // Whole segments only: Zeek's delivery size makes the count depend on them (rule 7).
    let r = run_with(
        &[C(&req), S(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")],
        false,
    );
    assert_eq!(n(&r.ex[0], "request_body_len"), Some(body.len() as u64));
    // Without Content-Length the closing boundary ends the body.
    let mut req =
        b"POST / HTTP/1.1\r\nContent-Type: multipart/form-data; boundary=\"XX\"\r\n\r\n".to_vec();
    req.extend_from_slice(body);
    req.extend_from_slice(b"GET /after HTTP/1.1\r\n\r\n");
    let r = run(&[C(&req)]);
    assert_eq!(r.ex.len(), 2);
    assert_eq!(n(&r.ex[0], "request_body_len"), Some(body.len() as u64));
}

#[test]
fn response_without_request_is_an_orphan() {
    let r = run(&[
        S(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"),
        C(b"GET / HTTP/1.1\r\n\r\n"),
    ]);
    let got: Vec<_> = r.ex.iter().map(|e| (e.depth, e.outcome)).collect();
    assert_eq!(got, vec![(1, Outcome::NoRequest), (2, Outcome::NoResponse)]);
}

#[test]
fn truncated_body_at_end_of_stream() {
    let r = run(&[
        C(b"GET / HTTP/1.1\r\n\r\n"),
        S(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nonly some"),
    ]);
    assert_eq!(r.ex[0].outcome, Outcome::Truncated);
    assert_eq!(n(&r.ex[0], "response_body_len"), Some(9));
}

#[test]
fn zeek_uri_unescaping() {
    for (raw, want) in [
        (&b"/a%20b"[..], &b"/a b"[..]),
        (b"/%", b"/%"),
        (b"/%5", b"/%5"),
        (b"/%%41", b"/A"),
        (b"/%%", b"/%%"),
        (b"/%zz", b"/%zz"),
        (b"/%u0041x", b"/Ax"),
        (b"/%U0041", b"/%U0041"),
        (b"/%u2603", b"/\x26\x03"),
        (b"/a+b", b"/a+b"),
        (b"%3d%22", b"=\""),
    ] {
        assert_eq!(unescape_uri(raw), want, "{}", String::from_utf8_lossy(raw));
    }
}

#[test]
fn probe_decides_from_content() {
    let p = |c: &[u8], s: &[u8], port| {
        probe(&ProbeInput {
            to_server: c,
            to_client: s,
            server_port: port,
            transport: Transport::Tcp,
        })
    };
    assert_eq!(p(b"GET / HTTP/1.1\r\n", b"", 5000), Probe::Yes);
    assert_eq!(p(b"", b"HTTP/1.1 200 OK", 5000), Probe::Yes);
    assert_eq!(p(b"GE", b"", 5000), Probe::NeedMore);
    assert_eq!(
        p(b"\x16\x03\x01\x02\x00", b"\x16\x03\x03\x00\x5a", 443),
        Probe::No
    );
    // A client that is not HTTP, and a server that has not spoken yet: wait for the server.
    assert_eq!(p(b"\x16\x03\x01\x02\x00", b"", 443), Probe::NeedMore);
    assert_eq!(p(b"SSH-2.0-OpenSSH", b"SSH-2.0-x", 22), Probe::No);
    // Junk on an HTTP port is left for the port to decide at the end of the stream.
    assert_eq!(p(b"junk\r\n", b"", 80), Probe::NeedMore);
}

#[test]
fn arbitrary_bytes_never_panic() {
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    for _ in 0..300 {
        let mut conv = Vec::new();
        for _ in 0..6 {
            let len = (x % 300) as usize;
            let mut b = Vec::with_capacity(len);
            for _ in 0..len {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                // Bias towards bytes that matter to the parser.
                b.push(match x % 8 {
                    0 => b'\r',
                    1 => b'\n',
                    2 => b' ',
                    3 => b':',
                    _ => (x >> 8) as u8,
                });
            }
            conv.push(b);
        }
        let mut steps: Vec<Step<'_>> = vec![C(b"GET / HTTP/1.1\r\nContent-Length: 3\r\n\r\n")];
        for (i, b) in conv.iter().enumerate() {
            steps.push(if i % 2 == 0 { S(b) } else { C(b) });
            if i == 3 {
                steps.push(GapS(x % 1000));
            }
        }
        let _ = run_with(&steps, false);
    }
}

// ---------------------------------------------------------------------------------------
// Zeek's rules (docs/http.md, "Rules"), each with the conversation that shows it. Rows are
// the columns score.py compares: trans_depth method host uri version user_agent
// request_body_len response_body_len status_code status_msg.

fn row(e: &Exchange) -> String {
    let mut z = Vec::new();
    assert!((super::ZEEK_LOG.row)(e, &mut z));
    [0, 1, 2, 3, 5, 6, 8, 9, 10, 11]
        .iter()
        .map(|&i| z[i].plain())
        .collect::<Vec<_>>()
        .join(" ")
}

fn rows(r: &Run) -> Vec<String> {
    r.ex.iter().map(row).collect()
}

const OK0: &[u8] = b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n";

#[test]
fn multipart_part_bodies_end_only_at_crlf() {
    let mut body = b"--B\r\nContent-Disposition: form-data; name=\"f\"; filename=\"x.bin\"\r\nContent-Type: application/octet-stream\r\n\r\n".to_vec();
    body.extend_from_slice(&[b'\n'; 20]);
    body.extend_from_slice(b"\r\n--B--\r\n");
    assert_eq!(body.len(), 136);
    let mut req = b"POST /u HTTP/1.1\r\nHost: h\r\nContent-Type: multipart/form-data; boundary=B\r\nContent-Length: 136\r\n\r\n".to_vec();
    req.extend_from_slice(&body);
    // Whole segments: with a Content-Length, Zeek's delivery size makes a multipart count
    // depend on how the stream was cut (rule 7).
    let r = run_with(&[C(&req), S(OK0)], false);
    assert_eq!(rows(&r), ["1 POST h /u 1.1 - 136 0 200 OK"]);
}

#[test]
fn byterange_parts_are_read_by_their_content_range() {
    let mut resp = b"HTTP/1.1 206 Partial Content\r\nContent-Type: multipart/byteranges; boundary=B\r\nContent-Length: 96\r\n\r\n--B\r\nContent-Type: application/octet-stream\r\nContent-Range: bytes 0-9/100\r\n\r\n".to_vec();
    resp.extend_from_slice(&[b'\n'; 10]);
    resp.extend_from_slice(b"\r\n--B--\r\n");
    let r = run_with(
        &[
            C(b"GET /f HTTP/1.1\r\nHost: h\r\nRange: bytes=0-9\r\n\r\n"),
            S(&resp),
        ],
        false,
    );
    assert_eq!(rows(&r), ["1 GET h /f 1.1 - 0 96 206 Partial Content"]);
}

#[test]
fn closing_boundary_ends_the_body_before_its_length() {
    // The epilogue (an empty line here) is inside Content-Length but after the closing
    // boundary: not body (it is an empty request line).
    let r = run_with(
        &[
            C(b"POST /u HTTP/1.1\r\nHost: h\r\nContent-Type: multipart/form-data; boundary=B\r\nContent-Length: 61\r\n\r\n--B\r\nContent-Disposition: form-data; name=\"a\"\r\n\r\n1\r\n--B--\r\n\r\n"),
            S(OK0),
        ],
        false,
    );
    assert_eq!(rows(&r), ["1 POST h /u 1.1 - 59 0 200 OK"]);
    assert!(r.weirds.contains(&"empty_http_request"));
    // Without a length, whatever follows `--B--` on its line does not matter.
    let r = run(&[
        C(b"GET /1 HTTP/1.1\r\nHost: h\r\n\r\n"),
        S(b"HTTP/1.1 200 OK\r\nContent-Type: multipart/mixed; boundary=B\r\n\r\n--B\r\n\r\nx\r\n--B-- \r\n"),
        C(b"GET /2 HTTP/1.1\r\nHost: h\r\n\r\n"),
        S(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"),
    ]);
    assert_eq!(
        rows(&r),
        [
            "1 GET h /1 1.1 - 0 18 200 OK",
            "2 GET h /2 1.1 - 0 2 200 OK"
        ]
    );
}

#[test]
fn header_fields_belong_to_the_request_when_their_line_completes() {
    // The header block never ends: Host is complete when the User-Agent line arrives, the
    // User-Agent only at the client's end, after the reply was written: a late row.
    let r = run(&[
        C(b"GET / HTTP/1.1\r\nHost: h\r\nUser-Agent: u\r\n"),
        S(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"),
    ]);
    assert_eq!(
        rows(&r),
        ["1 GET h / 1.1 - 0 2 200 OK", "2 - - - - u 0 0 - -"]
    );
}

#[test]
fn reply_to_a_bad_request_line_gets_a_row() {
    // The first request line fails (leading space): the parser is removed, and Zeek's DPD
    // brings it back on the server's first bytes, which it reads again with what came before.
    let r = run_with(
        &[
            C(b" GET / HTTP/1.1\r\nHost: h\r\n\r\n"),
            S(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 3\r\n\r\nbad"),
        ],
        false,
    );
    assert_eq!(rows(&r), ["1 - - - 1.1 - 0 3 400 Bad Request"]);
    assert!(r.weirds.contains(&"bad_HTTP_request_with_version"));
    // Only that first server segment: the re-run parser is removed after it, too.
    let r = run_with(
        &[
            C(b" GET / HTTP/1.1\r\nHost: h\r\n\r\n"),
            S(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 6\r\n\r\nbad"),
            S(b"bad"),
        ],
        false,
    );
    assert_eq!(rows(&r), ["1 - - - 1.1 - 0 3 400 Bad Request"]);
    assert_eq!(r.ex[0].outcome, Outcome::NoRequest);
    // The server segment that takes the buffer past 1024 bytes still counts (the buffer
    // was open before it).
    let mut near = b" GET / HTTP/1.1\r\n".to_vec();
    near.extend_from_slice(&[b'x'; 990]);
    let r = run_with(
        &[
            C(&near),
            S(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 3\r\n\r\nbad"),
        ],
        false,
    );
    assert_eq!(rows(&r), ["1 - - - 1.1 - 0 3 400 Bad Request"]);
    // Past Zeek's DPD buffer (1024 bytes) there is nothing to bring back.
    let mut big = b" GET / HTTP/1.1\r\n".to_vec();
    big.extend_from_slice(&[b'x'; 1100]);
    let r = run_with(
        &[
            C(&big),
            S(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 3\r\n\r\nbad"),
        ],
        false,
    );
    assert!(r.ex.is_empty());
    assert_eq!(r.state, ParserState::GaveUp);
}

#[test]
fn a_gap_outside_a_body_stops_the_replies_for_good() {
    let reply = b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n0123456789";
    assert_eq!(reply.len(), 49);
    let both = [&reply[..], &reply[..]].concat();
    let r = run(&[
        C(b"GET /1 HTTP/1.1\r\nHost: h\r\n\r\nGET /2 HTTP/1.1\r\nHost: h\r\n\r\n"),
        S(&both[..44]),
        GapS(20),
        S(&both[64..]),
        C(b"GET /3 HTTP/1.1\r\nHost: h\r\n\r\n"),
        S(OK0),
    ]);
    assert_eq!(
        rows(&r),
        [
            "1 GET h /1 1.1 - 0 5 200 OK",
            "2 GET h /2 - - 0 0 - -",
            "3 GET h /3 - - 0 0 - -"
        ]
    );
}

#[test]
fn a_gap_before_the_first_body_byte_is_not_counted() {
    let r = run(&[
        C(b"GET / HTTP/1.1\r\n\r\n"),
        S(b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n"),
        GapS(4),
        S(b"efghij"),
    ]);
    assert_eq!(n(&r.ex[0], "response_body_len"), Some(0));
    assert_eq!(r.ex[0].outcome, Outcome::Truncated);
}

#[test]
fn a_bad_version_is_not_http09() {
    for line in [&b"GET /x HTTP/1"[..], b"GET /x HTTP/", b"GET /x HTTP/a.b"] {
        let req = [line, b"\r\nHost: h\r\n\r\n"].concat();
        let r = run(&[
            C(&req),
            S(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"),
        ]);
        assert_eq!(
            rows(&r),
            ["1 GET h /x 1.1 - 0 2 200 OK"],
            "{}",
            String::from_utf8_lossy(line)
        );
    }
}

#[test]
fn an_http09_request_makes_every_later_server_byte_one_raw_reply() {
    let r = run(&[
        C(b"GET /a HTTP/1.1\r\nHost: h\r\n\r\nGET /b\r\n\r\n"),
        S(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"),
    ]);
    assert_eq!(
        rows(&r),
        ["1 GET h /a 0.9 - 0 40 0 <empty>", "2 GET - /b - - 0 0 - -"]
    );
}

#[test]
fn a_multipart_body_ending_without_crlf_is_flushed_at_its_length() {
    let head = b"POST /u HTTP/1.1\r\nHost: h\r\nContent-Type: multipart/form-data; boundary=B\r\nContent-Length: 57\r\n\r\n";
    let body = b"--B\r\nContent-Disposition: form-data; name=\"a\"\r\n\r\nv\r\n--B--";
    assert_eq!(body.len(), 57);
    // The body in a segment of its own: the segments after the headers add up to the
    // length, and the last line is ended there.
    let r = run_with(&[C(head), C(body), S(OK0)], false);
    assert_eq!(rows(&r), ["1 POST h /u 1.1 - 59 0 200 OK"]);
    // In the headers' segment: the last line is never ended — at the client's end Zeek's
    // line splitter adds an LF, which inside a part's body (CRLF only) ends nothing — so the
    // body ends with the connection, after the reply was written: a late row without the
    // closing boundary's line.
    let r = run_with(&[C(&[&head[..], &body[..]].concat()), S(OK0)], false);
    assert_eq!(
        rows(&r),
        ["1 POST h /u 1.1 - 0 0 200 OK", "2 - - - - - 52 0 - -"]
    );
}

#[test]
fn zeek_dpd_methods_make_http_on_any_port() {
    let p = |c: &[u8]| {
        probe(&ProbeInput {
            to_server: c,
            to_client: b"",
            server_port: 8082,
            transport: Transport::Tcp,
        })
    };
    for m in [
        "SUBSCRIBE /ev HTTP/1.1\r\n",
        "QUERY / HTTP/1.1",
        "RPC_IN_DATA /x HTTP/1.1",
        "\r\n GETX",
    ] {
        assert_eq!(p(m.as_bytes()), Probe::Yes, "{m}");
    }
    assert_eq!(super::client_signature(b"PURGE / HTTP/1.1"), Probe::No);
    assert_eq!(super::client_signature(b"BPROP"), Probe::NeedMore);
    let c = crate::l7::harness::conn(8082);
    let r = drive(
        &mut Http::default(),
        "http",
        c,
        &[C(b"SUBSCRIBE /ev HTTP/1.1\r\nHost: h\r\n\r\n")],
        false,
    );
    assert_eq!(rows(&r), ["1 SUBSCRIBE h /ev - - 0 0 - -"]);
}

#[test]
fn long_body_lines_are_counted_whole() {
    let mut resp = b"HTTP/1.0 200 OK\r\n\r\n".to_vec();
    resp.extend(std::iter::repeat_n(b'a', 70_000));
    let r = run_with(&[C(b"GET / HTTP/1.0\r\n\r\n"), S(&resp)], false);
    assert_eq!(n(&r.ex[0], "response_body_len"), Some(70_002));
}

#[test]
fn keep_alive_is_set_by_a_reply_version_and_stays() {
    // A 1.1 reply makes the connection keep-alive: a bad line after the request is then a
    // violation (the parser goes), not ignored junk.
    let conv = |reply: &'static [u8]| {
        run(&[
            C(b"GET / HTTP/1.0\r\n\r\n"),
            S(reply),
            C(b"@@@\r\n"),
            C(b"GET /2 HTTP/1.0\r\n\r\n"),
            S(reply),
        ])
    };
    let r = conv(OK0);
    assert_eq!(rows(&r), ["1 GET - / 1.1 - 0 0 200 OK"]);
    assert!(r.weirds.contains(&"protocol_violation"));
    let r = conv(b"HTTP/1.0 200 OK\r\nContent-Length: 0\r\n\r\n");
    assert_eq!(
        rows(&r),
        ["1 GET - / 1.0 - 0 0 200 OK", "2 GET - /2 1.0 - 0 0 200 OK"]
    );
    assert!(r.weirds.contains(&"crud_trailing_HTTP_request"));
}

#[test]
fn switching_protocols_without_agreement_is_interim() {
    let r = run(&[
        C(b"GET / HTTP/1.1\r\nHost: h\r\n\r\n"),
        S(b"HTTP/1.1 101 Switching Protocols\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"),
    ]);
    assert_eq!(rows(&r), ["1 GET h / 1.1 - 0 0 200 OK"]);
    assert_eq!(n(&r.ex[0], "info_code"), Some(101));
    assert_eq!(r.state, ParserState::Active);
}

#[test]
fn connect_is_any_prefix_and_tunnels_only_on_200() {
    let r = run(&[
        C(b"CON x:443 HTTP/1.1\r\n\r\n"),
        S(b"HTTP/1.1 200 OK\r\n\r\n"),
        S(b"\x16\x03\x01\x00\x02hi"),
    ]);
    assert_eq!(rows(&r), ["1 CON - x:443 1.1 - 0 0 200 OK"]);
    assert_eq!(r.state, ParserState::Finished);
    // A 2xx other than 200 is no tunnel.
    let r = run(&[
        C(b"CONNECT x:443 HTTP/1.1\r\n\r\n"),
        S(b"HTTP/1.1 201 OK\r\nContent-Length: 0\r\n\r\n"),
    ]);
    assert_eq!(r.state, ParserState::Active);
}

#[test]
fn the_last_content_length_wins_even_when_invalid() {
    let r = run(&[
        C(b"GET / HTTP/1.1\r\n\r\n"),
        S(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: x\r\n\r\nhello"),
    ]);
    assert_eq!(n(&r.ex[0], "response_body_len"), Some(0));
    assert!(r.weirds.contains(&"HTTP_bad_content_length"));
}

#[test]
fn a_header_line_starting_with_nul_ends_the_headers() {
    let r = run(&[
        C(b"GET / HTTP/1.1\r\nHost: h\r\n\x00\r\nGET /2 HTTP/1.1\r\n\r\n"),
        S(OK0),
        S(OK0),
    ]);
    assert_eq!(
        rows(&r),
        ["1 GET h / 1.1 - 0 0 200 OK", "2 GET - /2 1.1 - 0 0 200 OK"]
    );
}

#[test]
fn identity_after_gzip_does_not_undo_it() {
    use flate2::write::GzEncoder;
    use std::io::Write;
    let mut g = GzEncoder::new(Vec::new(), flate2::Compression::best());
    g.write_all(&[b'z'; 1000]).unwrap();
    let gz = g.finish().unwrap();
    let mut resp = format!(
        "HTTP/1.1 200 OK\r\nContent-Encoding: gzip\r\nContent-Encoding: identity\r\nContent-Length: {}\r\n\r\n",
        gz.len()
    )
    .into_bytes();
    resp.extend_from_slice(&gz);
    let r = run(&[C(b"GET / HTTP/1.1\r\n\r\n"), S(&resp)]);
    assert_eq!(n(&r.ex[0], "response_body_len"), Some(1000));
}

#[test]
fn chunking_needs_the_request_version_while_the_request_is_in_progress() {
    // The reply (1.1, chunked) comes while the 1.0 request is still sending its body: the
    // request's version decides, so the reply is read line by line.
    let conv = |version: &str| {
        let req = format!("POST / HTTP/{version}\r\nContent-Length: 10\r\n\r\n01234");
        let r = run(&[
            C(req.as_bytes()),
            S(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n"),
            C(b"56789"),
        ]);
        n(&r.ex[0], "response_body_len")
    };
    assert_eq!(conv("1.0"), Some(3 + 5 + 3 + 2));
    assert_eq!(conv("1.1"), Some(3));
}

/// Conversations stitched from pieces of HTTP (request and status lines, framing headers,
/// boundaries, bare CRs and LFs) and cut into random segments and gaps, through the shared
/// fuzz entry (whole and byte by byte): the harness invariants hold whatever the pieces.
#[test]
fn conversations_built_from_protocol_pieces_keep_the_invariants() {
    let mut x: u64 = 0x1234_5678_9abc_def1;
    let mut next = || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    let pieces: &[&[u8]] = &[
        b"GET / HTTP/1.1\r\n",
        b"POST /u HTTP/1.1\r\n",
        b"HTTP/1.1 200 OK\r\n",
        b"HTTP/1.1 101 X\r\n",
        b"HTTP/1.1 206 P\r\n",
        b"Content-Length: 5\r\n",
        b"Content-Length: 0\r\n",
        b"Transfer-Encoding: chunked\r\n",
        b"Content-Type: multipart/mixed; boundary=B\r\n",
        b"Content-Type: message/rfc822\r\n",
        b"--B\r\n",
        b"--B--\r\n",
        b"\r\n",
        b"\r",
        b"\n",
        b"5\r\nhello\r\n0\r\n\r\n",
        b"Content-Range: bytes 0-3/10\r\n",
        b"Connection: close\r\n",
        b"Connection: upgrade\r\n",
        b"Upgrade: h2c\r\n",
        b"GET /x\r\n",
        b" junk\r\n",
        b"\x00",
        b"Content-Encoding: gzip\r\n",
        b"abc",
        b"HEAD / HTTP/1.1\r\n",
        b"CONNECT x HTTP/1.1\r\n",
    ];
    for _ in 0..2000 {
        let mut data = vec![(next() % 8) as u8];
        for _ in 0..(next() % 24) {
            let ctl = (next() % 256) as u8;
            let p = pieces[(next() as usize) % pieces.len()];
            let mut seg = p.to_vec();
            if next() % 3 == 0 {
                seg.extend_from_slice(pieces[(next() as usize) % pieces.len()]);
            }
            let len = seg.len().min(255);
            data.push(ctl & 0xdf);
            data.push(len as u8);
            data.extend_from_slice(&seg[..len]);
        }
        crate::l7::harness::fuzz(&super::PROTOCOL, b"", &data);
    }
}

#[test]
fn versions_are_written_as_their_numbers() {
    for a in 0..=u8::MAX {
        for b in 0..=u8::MAX {
            assert_eq!(
                super::version_text((a, b)),
                crate::model::Value::text(format!("{a}.{b}")),
                "{a}.{b}"
            );
        }
    }
}
