//! Redaction on literal conversations, whole and cut at every byte.

use proptest::prelude::*;

use crate::stream::{Kind, Stream};
use crate::*;

/// Redacts `chunks` as consecutive pieces of one direction.
fn run_chunks(p: &Policy, chunks: &[&[u8]]) -> (Vec<u8>, Counts) {
    let mut s = Stream::new();
    let mut c = Counts::default();
    let mut out = Vec::new();
    for ch in chunks {
        let mut b = ch.to_vec();
        s.feed(&mut b, p, &mut c);
        assert_eq!(b.len(), ch.len());
        out.extend(b);
    }
    (out, c)
}

fn run(input: &[u8]) -> (Vec<u8>, Counts) {
    run_chunks(&Policy::default(), &[input])
}

/// The same result cut in two at every byte, and in three at a few places.
fn same_when_split(input: &[u8]) {
    split_check(input, true);
}

/// Cut in two at every byte: the same result (`exact`), or at least as much overwritten.
fn split_check(input: &[u8], exact: bool) {
    let whole = run(input).0;
    if !exact {
        for k in 0..=input.len() {
            let (a, b) = input.split_at(k);
            let (out, _) = run_chunks(&Policy::default(), &[a, b]);
            for (i, (o, w)) in out.iter().zip(&whole).enumerate() {
                assert!(o == w || *o == FILL, "split at {k}, byte {i}");
            }
        }
        return;
    }
    for k in 0..=input.len() {
        let (a, b) = input.split_at(k);
        let (out, _) = run_chunks(&Policy::default(), &[a, b]);
        assert_eq!(
            String::from_utf8_lossy(&out),
            String::from_utf8_lossy(&whole),
            "split at {k}"
        );
    }
    for k in (1..input.len()).step_by(7) {
        let j = (k * 3 / 2).min(input.len());
        let (out, _) = run_chunks(
            &Policy::default(),
            &[&input[..k], &input[k..j], &input[j..]],
        );
        assert_eq!(out, whole);
    }
}

const HTTP_REQ: &[u8] = b"GET /api/items?id=7&token=s3cr3tT0k3n&page=2 HTTP/1.1\r\n\
Host: shop.example\r\n\
Authorization: Bearer eyJhbGciOiJIUzI1NiJ9.e30.sig\r\n\
User-Agent: curl/8.5.0\r\n\
Cookie: session=abc123; theme=dark\r\n\
X-API-Key: k-9f8e7d\r\n\
Referer: https://shop.example/login?password=hunter2&next=/\r\n\
Content-Length: 27\r\n\
\r\n\
{\"authorization\": \"body\"}\r\n";

#[test]
fn http1_request_headers_and_query() {
    let (out, c) = run(HTTP_REQ);
    let out = String::from_utf8(out).unwrap();
    let expected = "GET /api/items?id=7&token=***********&page=2 HTTP/1.1\r\n\
Host: shop.example\r\n\
Authorization: ***********************************\r\n\
User-Agent: curl/8.5.0\r\n\
Cookie: **************************\r\n\
X-API-Key: ********\r\n\
Referer: https://shop.example/login?password=*******&next=/\r\n\
Content-Length: 27\r\n\
\r\n\
{\"authorization\": \"body\"}\r\n";
    assert_eq!(out, expected);
    assert_eq!(c.of(Rule::HttpAuth), 1);
    assert_eq!(c.of(Rule::HttpCookie), 1);
    assert_eq!(c.of(Rule::HttpHeaders), 1);
    assert_eq!(c.of(Rule::UrlQuery), 2);
    same_when_split(HTTP_REQ);
}

#[test]
fn http1_response_set_cookie_folded_and_trailers() {
    let resp: &[u8] = b"HTTP/1.1 302 Found\r\n\
Set-Cookie: sid=deadbeef; HttpOnly\r\n\
Proxy-Authorization: Basic dXNlcjpwYXNz\r\n continued-secret\r\n\
Location: /cb#access_token=abc.def&state=1\r\n\
Transfer-Encoding: chunked\r\n\
\r\n\
5\r\nhello\r\n0\r\nCookie: trailer-secret\r\n\r\n";
    let (out, c) = run(resp);
    let out = String::from_utf8(out).unwrap();
    assert!(!out.contains("deadbeef") && !out.contains("dXNlcjpwYXNz"));
    assert!(!out.contains("continued-secret") && out.contains("\r\n ****"));
    assert!(out.contains("Location: /cb#access_token=*******&state=1"));
    assert!(!out.contains("trailer-secret"));
    assert!(out.contains("5\r\nhello\r\n0\r\n"));
    assert_eq!(c.of(Rule::HttpCookie), 2);
    assert_eq!(c.of(Rule::HttpAuth), 1);
    same_when_split(resp);
}

#[test]
fn rules_turn_off() {
    let mut p = Policy::default();
    p.turn_off(["http-auth", "url-query"]).unwrap();
    let (out, c) = run_chunks(&p, &[HTTP_REQ]);
    let out = String::from_utf8(out).unwrap();
    assert!(out.contains("Bearer eyJ") && out.contains("token=s3cr3tT0k3n"));
    assert!(!out.contains("abc123"));
    assert_eq!((c.of(Rule::HttpAuth), c.of(Rule::HttpCookie)), (0, 1));
    let (out, c) = run_chunks(&Policy::off(), &[HTTP_REQ]);
    assert_eq!(out, HTTP_REQ);
    assert_eq!(c.total(), 0);
}

#[test]
fn redis_commands() {
    let conv: &[u8] = b"*2\r\n$4\r\nAUTH\r\n$8\r\npa55word\r\n\
*3\r\n$4\r\nauth\r\n$5\r\nalice\r\n$6\r\nsecret\r\n\
*5\r\n$5\r\nHELLO\r\n$1\r\n3\r\n$4\r\nAUTH\r\n$3\r\nbob\r\n$7\r\nhunter2\r\n\
*4\r\n$6\r\nCONFIG\r\n$3\r\nSET\r\n$11\r\nrequirepass\r\n$5\r\nnewpw\r\n\
*3\r\n$3\r\nSET\r\n$4\r\nAUTH\r\n$5\r\nvalue\r\n\
AUTH inline-pw\r\n\
HELLO 3 AUTH carol inline2\r\n";
    let (out, c) = run(conv);
    let out = String::from_utf8(out).unwrap();
    for s in [
        "pa55word",
        "secret",
        "hunter2",
        "newpw",
        "inline-pw",
        "inline2",
    ] {
        assert!(!out.contains(s), "{s} left in {out}");
    }
    for s in [
        "alice",
        "bob",
        "carol",
        "$5\r\nvalue\r\n",
        "$8\r\n********\r\n",
    ] {
        assert!(out.contains(s), "{s} missing in {out}");
    }
    assert_eq!(c.of(Rule::Redis), 6);
    same_when_split(conv);
}

fn pg_startup() -> Vec<u8> {
    let mut body = Vec::new();
    body.extend(196_608u32.to_be_bytes());
    body.extend(b"user\0alice\0database\0shop\0\0");
    let mut m = ((body.len() + 4) as u32).to_be_bytes().to_vec();
    m.extend(body);
    m
}

fn pg_msg(t: u8, body: &[u8]) -> Vec<u8> {
    let mut m = vec![t];
    m.extend(((body.len() + 4) as u32).to_be_bytes());
    m.extend_from_slice(body);
    m
}

#[test]
fn postgresql_passwords() {
    let mut conv = Vec::new();
    conv.extend([0, 0, 0, 8, 4, 210, 22, 47]); // SSLRequest, refused
    conv.extend(pg_startup());
    conv.extend(pg_msg(b'p', b"md5e8a48653851e28c69d0506508fb27fc5\0"));
    let mut sasl = b"SCRAM-SHA-256\0".to_vec();
    let data = b"n,,n=,r=rOprNGfwEbeRWgbNEkqO";
    sasl.extend((data.len() as u32).to_be_bytes());
    sasl.extend(data);
    conv.extend(pg_msg(b'p', &sasl));
    conv.extend(pg_msg(
        b'p',
        b"c=biws,r=rOprNGfwEbeRWgbNEkqO,p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=",
    ));
    conv.extend(pg_msg(b'Q', b"SELECT 'p' AS password\0"));
    let (out, c) = run(&conv);
    let s = String::from_utf8_lossy(&out);
    assert!(!s.contains("e8a48653") && !s.contains("rOprNGfw") && !s.contains("dHzbZap"));
    assert!(s.contains("SCRAM-SHA-256\0") && s.contains("SELECT 'p' AS password"));
    assert!(s.contains("alice"));
    assert_eq!(c.of(Rule::Postgresql), 3);
    // Cut inside the SASL mechanism name, the name is overwritten too.
    split_check(&conv, false);
}

fn my_packet(seq: u8, payload: &[u8]) -> Vec<u8> {
    let mut p = (payload.len() as u32).to_le_bytes()[..3].to_vec();
    p.push(seq);
    p.extend_from_slice(payload);
    p
}

#[test]
fn mysql_auth() {
    let caps: u32 = 0x0200 | 0x8000 | 0x0008 | 0x0008_0000 | 0x0020_0000;
    let mut hs = caps.to_le_bytes().to_vec();
    hs.extend(16_777_216u32.to_le_bytes());
    hs.push(45);
    hs.extend([0u8; 23]);
    hs.extend(b"alice\0");
    let scramble = [0xAAu8; 20];
    hs.push(20);
    hs.extend(scramble);
    hs.extend(b"shop\0caching_sha2_password\0");
    let mut conv = my_packet(1, &hs);
    conv.extend(my_packet(3, b"cleartext-password\0"));
    conv.extend(my_packet(0, b"\x03SELECT 1"));
    conv.extend(my_packet(0, b"\x11bob\0\x04\xBB\xBB\xBB\xBB"));
    let (out, c) = run(&conv);
    let s = String::from_utf8_lossy(&out);
    assert!(!out.windows(4).any(|w| w == [0xAA; 4] || w == [0xBB; 4]));
    assert!(!s.contains("cleartext-password"));
    assert!(
        s.contains("alice\0")
            && s.contains("shop\0caching_sha2_password")
            && s.contains("SELECT 1")
    );
    assert!(s.contains("bob\0"));
    assert_eq!(c.of(Rule::Mysql), 3);
    same_when_split(&conv);
}

/// HTTP/2 frames.
fn frame(t: u8, flags: u8, stream: u32, payload: &[u8]) -> Vec<u8> {
    let mut f = (payload.len() as u32).to_be_bytes()[1..].to_vec();
    f.push(t);
    f.push(flags);
    f.extend(stream.to_be_bytes());
    f.extend_from_slice(payload);
    f
}

fn huff(s: &[u8]) -> Vec<u8> {
    let mut v = Vec::new();
    httlib_huffman::encode(s, &mut v).unwrap();
    v
}

/// A string literal, raw or Huffman-coded (lengths below 127).
fn lit(s: &[u8], h: bool) -> Vec<u8> {
    let b = if h { huff(s) } else { s.to_vec() };
    let mut v = vec![(b.len() as u8) | if h { 0x80 } else { 0 }];
    v.extend(b);
    v
}

fn h2_conversation() -> Vec<u8> {
    let mut block = Vec::new();
    block.push(0x82); // :method GET
    block.push(0x44); // :path, incremental indexing, raw
    block.extend(lit(b"/a?token=rawtoken1&x=1", false));
    block.push(0x41); // :authority
    block.extend(lit(b"api.example", true));
    block.push(0x40 | 23); // authorization, incremental indexing, Huffman
    block.extend(lit(b"Bearer huffsecret", true));
    block.push(0x10); // never indexed, literal name
    block.extend(lit(b"cookie", false));
    block.extend(lit(b"sid=rawcookie", false));
    block.push(0x00); // without indexing, Huffman literal name
    block.extend(lit(b"x-api-key", true));
    block.extend(lit(b"huffapikey", true));
    block.push(0x40); // incremental, literal name
    block.extend(lit(b"x-trace", false));
    block.extend(lit(b"trace-1", false));
    let mut conv = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n".to_vec();
    conv.extend(frame(4, 0, 0, &[0, 3, 0, 0, 0, 100]));
    let (a, b) = block.split_at(20);
    conv.extend(frame(1, 0x1 | 0x8 | 0x20, 1, &{
        let mut p = vec![3];
        p.extend([0, 0, 0, 0, 16]);
        p.extend(a);
        p.extend([0, 0, 0]);
        p
    }));
    conv.extend(frame(9, 0x4, 1, b));
    conv.extend(frame(0, 0x1, 1, b"authorization: not a header\r\n"));
    // Second request: dynamic references, and a Huffman :path with a secret.
    let mut block2 = vec![0x82, 0xbe, 0xbf, 0xc1, 0x04];
    block2.extend(lit(b"/b?password=hufpass&page=2", true));
    conv.extend(frame(1, 0x5, 3, &block2));
    conv
}

/// Decodes every header block of a conversation written by `h2_conversation`.
fn h2_headers(conv: &[u8]) -> Vec<Vec<(String, String)>> {
    let mut d = loona_hpack::Decoder::new();
    let mut at = 24;
    let mut out = Vec::new();
    let mut block = Vec::new();
    while at + 9 <= conv.len() {
        let len = u32::from_be_bytes([0, conv[at], conv[at + 1], conv[at + 2]]) as usize;
        let (t, flags) = (conv[at + 3], conv[at + 4]);
        let mut p = &conv[at + 9..at + 9 + len];
        if t == 1 || t == 9 {
            if flags & 0x8 != 0 {
                let pad = p[0] as usize;
                p = &p[1..p.len() - pad];
            }
            if flags & 0x20 != 0 {
                p = &p[5..];
            }
            block.extend_from_slice(p);
            if flags & 0x4 != 0 {
                let h = d.decode(&block).unwrap();
                out.push(
                    h.into_iter()
                        .map(|(n, v)| {
                            (String::from_utf8(n).unwrap(), String::from_utf8(v).unwrap())
                        })
                        .collect(),
                );
                block.clear();
            }
        }
        at += 9 + len;
    }
    out
}

#[test]
fn http2_hpack_literals() {
    let conv = h2_conversation();
    let orig = h2_headers(&conv);
    let (out, c) = run(&conv);
    let red = h2_headers(&out);
    assert_eq!(orig.len(), 2);
    assert_eq!(red.len(), 2);
    for (o, r) in orig.iter().flatten().zip(red.iter().flatten()) {
        assert_eq!(o.0, r.0);
        let secret = ["authorization", "cookie", "x-api-key"].contains(&o.0.as_str());
        if secret {
            assert!(mark::is_filled(r.1.as_bytes()), "{}: {}", r.0, r.1);
        } else if o.0 == ":path" {
            assert!(
                r.1 == "/a?token=*********&x=1" || r.1.starts_with("/b?password=*"),
                "{}",
                r.1
            );
            assert!(r.1.ends_with("&x=1") || r.1.ends_with("&page=2"), "{}", r.1);
        } else {
            assert_eq!(o, r);
        }
    }
    // The second request's references to the dynamic table resolve to the same names.
    assert_eq!(
        red[1].iter().map(|h| h.0.as_str()).collect::<Vec<_>>(),
        [":method", "x-trace", "authorization", ":path", ":path"]
    );
    let s = String::from_utf8_lossy(&out);
    assert!(!s.contains("rawtoken1") && !s.contains("rawcookie"));
    assert!(s.contains("authorization: not a header"));
    assert_eq!(c.of(Rule::HttpAuth), 1);
    assert_eq!(c.of(Rule::HttpCookie), 1);
    assert_eq!(c.of(Rule::HttpHeaders), 1);
    assert_eq!(c.of(Rule::UrlQuery), 2);
    assert_eq!(c.hpack_context_lost, 0);
    // Cut anywhere, the decoded result still has every secret overwritten and every other
    // field intact.
    for k in 0..=conv.len() {
        let (a, b) = conv.split_at(k);
        let (out, _) = run_chunks(&Policy::default(), &[a, b]);
        let r = h2_headers(&out);
        for (o, r) in orig.iter().flatten().zip(r.iter().flatten()) {
            match o.0.as_str() {
                "authorization" | "cookie" | "x-api-key" => {
                    assert!(mark::is_filled(r.1.as_bytes()))
                }
                ":path" => {
                    assert!(
                        !r.1.contains("rawtoken1") && !r.1.contains("hufpass"),
                        "split {k}: {}",
                        r.1
                    );
                }
                _ => assert_eq!(o, r, "split {k}"),
            }
        }
    }
}

#[test]
fn http2_found_mid_connection_redacts_unknown_names() {
    // A literal whose name is a dynamic entry the redactor never saw.
    let mut block = vec![0x0f, 0x2f]; // without indexing, name index 62 (4-bit prefix: 15 + 47)
    block.extend(lit(b"value-of-unknown", false));
    let conv = frame(1, 0x5, 5, &block);
    let mut s = Stream::new();
    let mut c = Counts::default();
    let mut b = conv.clone();
    s.feed(&mut b, &Policy::default(), &mut c);
    assert_eq!(s.kind(), Kind::Http2);
    assert!(s.hpack_lost());
    assert!(!String::from_utf8_lossy(&b).contains("value-of-unknown"));
}

#[test]
fn tls_and_unknown_binary_are_left_alone() {
    let tls = [0x16u8, 3, 1, 0, 5, 1, 2, 3, 4, 5];
    assert_eq!(run(&tls).0, tls);
    let bin: Vec<u8> = (0..=255u8).collect();
    assert_eq!(run(&bin).0, bin);
}

#[test]
fn gaps_inside_a_secret_value_keep_redacting_to_its_end() {
    let p = Policy::default();
    let mut s = Stream::new();
    let mut c = Counts::default();
    let mut a = b"GET / HTTP/1.1\r\nAuthorization: Basic abc".to_vec();
    s.feed(&mut a, &p, &mut c);
    s.gap(100, &p, &mut c);
    let mut b = b"defgh\r\nCookie: x=1\r\n\r\n".to_vec();
    s.feed(&mut b, &p, &mut c);
    assert_eq!(&b, b"*****\r\nCookie: ***\r\n\r\n");
}

fn tcp(seq: u32, flags: u8, payload: &[u8]) -> Vec<u8> {
    let mut p = vec![0u8; 14];
    p[12] = 0x08;
    let total = 40 + payload.len();
    p.extend([
        0x45,
        0,
        (total >> 8) as u8,
        total as u8,
        0,
        0,
        0x40,
        0,
        64,
        6,
        0,
        0,
    ]);
    p.extend([10, 0, 0, 1, 10, 0, 0, 2]);
    p.extend([0xc3, 0x50, 0, 80]);
    p.extend(seq.to_be_bytes());
    p.extend([0, 0, 0, 0, 0x50, flags, 0xff, 0xff, 0, 0, 0, 0]);
    p.extend_from_slice(payload);
    p
}

fn payload_of(p: &[u8]) -> &[u8] {
    &p[54..]
}

#[test]
fn packets_split_header_retransmission_and_late_segment() {
    let mut r = Redactor::new(Policy::default(), 1024);
    let mut syn = tcp(999, 0x02, b"");
    r.packet(linktype::ETHERNET, 1, &mut syn);
    let mut a = tcp(1000, 0x18, b"GET / HTTP/1.1\r\nAuthori");
    let mut b = tcp(1023, 0x18, b"zation: Bearer tok\r\nHost: h\r\n\r\n");
    let mut a2 = a.clone();
    r.packet(linktype::ETHERNET, 1, &mut a);
    r.packet(linktype::ETHERNET, 1, &mut b);
    assert_eq!(payload_of(&b), b"zation: **********\r\nHost: h\r\n\r\n");
    // A retransmission of both, as one segment: the same bytes out.
    let mut both = tcp(
        1000,
        0x18,
        b"GET / HTTP/1.1\r\nAuthorization: Bearer tok\r\nHost: h\r\n\r\n",
    );
    r.packet(linktype::ETHERNET, 1, &mut both);
    assert_eq!(
        payload_of(&both),
        b"GET / HTTP/1.1\r\nAuthorization: **********\r\nHost: h\r\n\r\n"
    );
    // The same first packet on another interface is followed on its own.
    r.packet(linktype::ETHERNET, 2, &mut a2);
    assert_eq!(payload_of(&a2), payload_of(&a));
    // Reordering: a later segment first, then the one before it arrives late: overwritten.
    let mut c = tcp(1100, 0x18, b"Cookie: zzz\r\n");
    let mut late = tcp(
        1054,
        0x18,
        b"GET /x HTTP/1.1\r\nAuthorization: 1234567890\r\n\r\n",
    );
    r.packet(linktype::ETHERNET, 1, &mut c);
    r.packet(linktype::ETHERNET, 1, &mut late);
    assert!(payload_of(&late).iter().all(|&x| x == FILL));
    assert_eq!(r.counts().late_bytes_filled, 46);
    assert_eq!(payload_of(&c), b"Cookie: ***\r\n");
}

#[test]
fn sockets_by_cookie_and_direction_with_offsets() {
    let mut r = Redactor::new(Policy::default(), 1024);
    let mut a = b"POST /login HTTP/1.1\r\nCookie: a".to_vec();
    let mut b = b"bc=1\r\n\r\n".to_vec();
    let mut resp = b"HTTP/1.1 200 OK\r\nSet-Cookie: s=2\r\n\r\n".to_vec();
    r.socket_data(7, DIR_SEND, 0, a.len() as u32, &mut a);
    r.socket_data(7, DIR_RECV, 0, resp.len() as u32, &mut resp);
    r.socket_data(7, DIR_SEND, 31, b.len() as u32, &mut b);
    assert_eq!(&b, b"****\r\n\r\n");
    assert_eq!(&resp, b"HTTP/1.1 200 OK\r\nSet-Cookie: ***\r\n\r\n");
    r.socket_closed(7);
    assert_eq!(r.streams(), 0);
    // A cut call (4 of 10 bytes captured) is a gap of 6.
    let mut c = b"AUTH".to_vec();
    r.socket_data(8, DIR_SEND, 0, 10, &mut c);
    let mut d = b"\r\nAUTH pw\r\n".to_vec();
    r.socket_data(8, DIR_SEND, 10, d.len() as u32, &mut d);
    assert_eq!(&d, b"\r\nAUTH **\r\n");
    assert_eq!(r.counts().of(Rule::HttpCookie), 2);
}

#[test]
fn state_is_bounded() {
    let mut r = Redactor::new(Policy::default(), 64);
    for cookie in 0..10_000u64 {
        let mut b = b"GET / HTTP/1.1\r\n".to_vec();
        r.socket_data(cookie, DIR_SEND, 0, b.len() as u32, &mut b);
    }
    assert!(r.streams() <= 64);
    assert!(r.counts().streams_evicted >= 10_000 - 64);
}

fn conversations() -> Vec<Vec<u8>> {
    vec![
        HTTP_REQ.to_vec(),
        h2_conversation(),
        {
            let mut v = pg_startup();
            v.extend(pg_msg(b'p', b"password-1\0"));
            v
        },
        b"*2\r\n$4\r\nAUTH\r\n$8\r\npa55word\r\n".to_vec(),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// However a conversation is cut into chunks, the output is the same.
    #[test]
    fn chunking_does_not_matter(which in 0usize..4, cuts in proptest::collection::vec(0usize..2000, 0..8)) {
        let conv = &conversations()[which];
        let whole = run(conv).0;
        let mut cuts: Vec<usize> = cuts.into_iter().map(|c| c % (conv.len() + 1)).collect();
        cuts.sort_unstable();
        let mut chunks = Vec::new();
        let mut at = 0;
        for c in cuts {
            chunks.push(&conv[at..c]);
            at = c;
        }
        chunks.push(&conv[at..]);
        let (out, _) = run_chunks(&Policy::default(), &chunks);
        // HTTP/2 Huffman :path cut inside the string is overwritten to its end: a cut may
        // change the output there only.
        if which != 1 {
            prop_assert_eq!(out, whole);
        } else {
            prop_assert_eq!(out.len(), whole.len());
        }
    }

    /// Arbitrary bytes: no panic, no length change, and a secret header that follows is
    /// still redacted once a line starts.
    #[test]
    fn arbitrary_bytes(data in proptest::collection::vec(any::<u8>(), 0..512), split in 0usize..512) {
        let mut s = Stream::new();
        let mut c = Counts::default();
        let split = split.min(data.len());
        let (mut a, mut b) = (data[..split].to_vec(), data[split..].to_vec());
        s.feed(&mut a, &Policy::default(), &mut c);
        s.feed(&mut b, &Policy::default(), &mut c);
        prop_assert_eq!(a.len() + b.len(), data.len());
        let mut r = Redactor::new(Policy::default(), 16);
        let mut d = data.clone();
        r.packet(linktype::ETHERNET, 0, &mut d);
        prop_assert_eq!(d.len(), data.len());
    }
}

/// Tokens are read a run at a time: a name as long as the longest one matched is still
/// matched, one byte longer is not a name (and its line is skipped), and neither changes
/// what the next line's secret header gets; all alike wherever the bytes are cut.
#[test]
fn token_runs_at_the_length_limit() {
    use crate::policy::MAX_NAME;
    let exact = format!("{}: v\r\n", "x".repeat(MAX_NAME));
    let over = format!("{}: v\r\n", "x".repeat(MAX_NAME + 1));
    for line in [&exact, &over] {
        let input = format!("GET / HTTP/1.1\r\n{line}Authorization: Basic dXNlcjpwYXNz\r\n\r\n");
        let (out, c) = run(input.as_bytes());
        let out = String::from_utf8(out).unwrap();
        assert!(out.contains(line.as_str()), "{out}");
        assert!(
            out.contains("Authorization: ******************\r\n"),
            "{out}"
        );
        assert_eq!(c.of(Rule::HttpAuth), 1);
        same_when_split(input.as_bytes());
    }
    // A configured name cut by the segment boundary anywhere is still found.
    let input = b"HTTP/1.1 200 OK\r\nSet-Cookie: sid=1\r\n\r\n";
    let (out, _) = run(input);
    assert_eq!(out, b"HTTP/1.1 200 OK\r\nSet-Cookie: *****\r\n\r\n");
    same_when_split(input);
}

#[test]
fn http2_after_a_101_response_is_read_as_http2() {
    // The server's side of an h2c upgrade: the 101 response's header block, then HTTP/2
    // frames whose HPACK literals carry a cookie (no `name:` line for the text reader).
    let mut conv =
        b"HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: h2c\r\n\r\n".to_vec();
    conv.extend(frame(4, 0, 0, &[0, 3, 0, 0, 0, 100]));
    let mut block = vec![0x88]; // :status 200
    block.push(0x40 | 55); // set-cookie (static 55), incremental indexing
    block.extend(lit(b"sid=upgradedsecret", false));
    conv.extend(frame(1, 0x4, 1, &block));
    let (out, c) = run(&conv);
    assert!(
        !String::from_utf8_lossy(&out).contains("upgradedsecret"),
        "{}",
        String::from_utf8_lossy(&out)
    );
    assert_eq!(c.of(Rule::HttpCookie), 1);
    same_when_split(&conv);
    // A 200 is not a switch: a body that looks like frames stays text (and is not touched).
    let mut plain = b"HTTP/1.1 200 OK\r\nContent-Length: 30\r\n\r\n".to_vec();
    plain.extend(frame(1, 0x4, 1, &block));
    assert_eq!(run(&plain).0, plain);
}
