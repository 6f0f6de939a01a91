//! Literal-byte tests of the DNS wire format, the parser (UDP datagrams and TCP framing),
//! matching by id, the probe and the Zeek row.

use super::probe::probe;
use super::wire::{Error, Header, parse, read_name, rtype};
use super::zeek::{summarize, zeek_row};
use super::*;
use crate::l7::harness::{Run, Step, conn_with, drive};
use crate::l7::{Probe, ProbeInput, ZVal};
use crate::model::{Exchange, Outcome, Summary};
use Step::{C, S};

/// `www.example.com A IN`, id 0x1234, RD set.
const QUERY: &[u8] = &[
    0x12, 0x34, 0x01, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, // header
    3, b'w', b'w', b'w', 7, b'e', b'x', b'a', b'm', b'p', b'l', b'e', 3, b'c', b'o', b'm', 0, 0x00,
    0x01, 0x00, 0x01,
];

/// The answer: `www.example.com CNAME web.example.com` (compressed: `web` + pointer to
/// `example.com` at offset 16) and `web.example.com A 93.184.216.34` (owner a pointer to
/// the CNAME's data at offset 45), RD RA, TTLs 3600 and 300.
const RESPONSE: &[u8] = &[
    0x12, 0x34, 0x81, 0x80, 0x00, 0x01, 0x00, 0x02, 0x00, 0x00, 0x00, 0x00, // header
    3, b'w', b'w', b'w', 7, b'e', b'x', b'a', b'm', b'p', b'l', b'e', 3, b'c', b'o', b'm', 0, 0x00,
    0x01, 0x00, 0x01, // question ends at 33
    0xc0, 0x0c, 0x00, 0x05, 0x00, 0x01, 0x00, 0x00, 0x0e, 0x10, 0x00,
    0x06, // CNAME, rdata at 45
    3, b'w', b'e', b'b', 0xc0, 0x10, // web + -> example.com
    0xc0, 0x2d, 0x00, 0x01, 0x00, 0x01, 0x00, 0x00, 0x01, 0x2c, 0x00, 0x04, 93, 184, 216, 34,
];

/// Runs a conversation with a server on port 53 through the shared harness (one `data` call
/// per step, 1 µs apart; on UDP each step is one whole datagram), then the ends of both
/// directions, and checks the invariants every parser and the matcher keep.
fn run(transport: Transport, steps: &[Step<'_>]) -> Run {
    let c = conn_with(transport, 53, false);
    let r = drive(&mut Dns::new(&c), "dns", c, steps, false);
    r.check();
    r
}

fn framed(msg: &[u8]) -> Vec<u8> {
    let mut v = (msg.len() as u16).to_be_bytes().to_vec();
    v.extend_from_slice(msg);
    v
}

fn list(f: &Fields, name: &str) -> Vec<String> {
    match f.get(name) {
        Some(Value::List(l)) => l
            .iter()
            .map(|x| String::from_utf8_lossy(x).into_owned())
            .collect(),
        _ => Vec::new(),
    }
}

fn zeek(ex: &Exchange) -> Vec<String> {
    let mut row = Vec::new();
    assert!(zeek_row(ex, &mut row));
    row.iter()
        .map(|v| match v {
            ZVal::Unset => "-".to_string(),
            ZVal::Text(t) => String::from_utf8_lossy(t).into_owned(),
            ZVal::Count(n) => n.to_string(),
            ZVal::Bool(b) => if *b { "T" } else { "F" }.to_string(),
            ZVal::Literal(l) => l.to_string(),
            ZVal::List(l) => l
                .iter()
                .map(|x| String::from_utf8_lossy(x).into_owned())
                .collect::<Vec<_>>()
                .join(","),
        })
        .collect()
}

#[test]
fn header_fields() {
    let h = Header::parse(RESPONSE).unwrap();
    assert_eq!(
        (h.id, h.qr, h.opcode, h.aa, h.tc, h.rd, h.ra, h.z, h.rcode),
        (0x1234, true, 0, false, false, true, true, 0, 0)
    );
    assert_eq!((h.qdcount, h.ancount, h.nscount, h.arcount), (1, 2, 0, 0));
    assert_eq!(Header::parse(&RESPONSE[..11]), None);
    // AD and CD are the low bits of Zeek's Z; AA, TC and rcode 3.
    let h = Header::parse(&[0, 1, 0x86, 0x33, 0, 0, 0, 0, 0, 0, 0, 0]).unwrap();
    assert_eq!((h.aa, h.tc, h.z, h.rcode), (true, true, 3, 3));
}

#[test]
fn udp_query_and_response_with_compression() {
    let r = run(Transport::Udp, &[C(QUERY), S(RESPONSE)]);
    assert_eq!(r.ex.len(), 1);
    let e = &r.ex[0];
    assert_eq!(e.outcome, Outcome::Complete);
    let f = &e.fields;
    assert_eq!(f.u64("trans_id"), Some(0x1234));
    assert_eq!(f.text("query"), Some(&b"www.example.com"[..]));
    assert_eq!(f.text("qtype_name"), Some(&b"A"[..]));
    assert_eq!(f.text("qclass_name"), Some(&b"C_INTERNET"[..]));
    assert_eq!(f.text("rcode_name"), Some(&b"NOERROR"[..]));
    assert_eq!(
        list(f, "answers"),
        vec!["web.example.com".to_string(), "93.184.216.34".to_string()]
    );
    assert_eq!(f.get("TTLs"), Some(&Value::Counts(vec![3600, 300])));
    assert_eq!(f.get("rejected"), Some(&Value::Bool(false)));
    assert!(r.weirds.is_empty(), "{:?}", r.weirds);
    assert_eq!(
        zeek(e),
        [
            "udp",
            "4660",
            "0.000001",
            "www.example.com",
            "1",
            "C_INTERNET",
            "1",
            "A",
            "0",
            "NOERROR",
            "F",
            "F",
            "T",
            "T",
            "0",
            "web.example.com,93.184.216.34",
            "3600.000000,300.000000",
            "F",
            "0",
            "query"
        ]
    );
    assert_eq!(
        summarize(e),
        Summary {
            endpoint: "A www.example.com".into(),
            status: Some("NOERROR".into()),
            failed: false
        }
    );
}

/// A response message with one answer record of type `rt` carrying `rdata`; the question
/// is `a.example` (offset 12), so records may point at offset 12 (`a.example`) or 14
/// (`example`).
fn answer(rt: u16, rdata: &[u8]) -> Vec<u8> {
    let mut m = vec![0xab, 0xcd, 0x85, 0x80, 0, 1, 0, 1, 0, 0, 0, 0];
    m.extend_from_slice(&[1, b'a', 7, b'e', b'x', b'a', b'm', b'p', b'l', b'e', 0]);
    m.extend_from_slice(&[0, 1, 0, 1]);
    m.extend_from_slice(&[0xc0, 0x0c]);
    m.extend_from_slice(&rt.to_be_bytes());
    m.extend_from_slice(&[0, 1, 0, 0, 0, 60]);
    m.extend_from_slice(&(rdata.len() as u16).to_be_bytes());
    m.extend_from_slice(rdata);
    m
}

fn rendered(rt: u16, rdata: &[u8]) -> (Vec<String>, Option<Error>, Vec<Error>) {
    let m = parse(&answer(rt, rdata), false).unwrap();
    assert_eq!(m.answers.len(), m.ttls.len());
    let a = m
        .answers
        .iter()
        .map(|x| String::from_utf8_lossy(x).into_owned())
        .collect();
    (a, m.error, m.weirds)
}

#[test]
fn every_record_type_renders_as_zeek_does() {
    let p12 = [0xc0, 0x0c]; // a.example
    let mut soa = vec![2, b'n', b's', 0xc0, 14, 4, b'h', b'o', b's', b't', 0xc0, 14];
    soa.extend_from_slice(&[0; 20]);
    let mut rrsig = vec![0, 1, 8, 2, 0, 0, 0, 60, 0, 0, 0, 1, 0, 0, 0, 2, 0x30, 0x39];
    rrsig.extend_from_slice(&[0xc0, 14, 0xde, 0xad]);
    let mut rrsig_root = rrsig[..18].to_vec();
    rrsig_root.extend_from_slice(&[0, 0xbe, 0xef]);
    let cases: &[(u16, Vec<u8>, &str)] = &[
        (rtype::A, vec![192, 0, 2, 1], "192.0.2.1"),
        (
            rtype::AAAA,
            vec![0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1],
            "2001:db8::1",
        ),
        (rtype::CNAME, p12.to_vec(), "a.example"),
        (rtype::NS, vec![2, b'N', b'S', 0xc0, 14], "ns.example"),
        (rtype::PTR, vec![1, b'b', 0], "b"),
        (
            rtype::MX,
            vec![0, 10, 2, b'm', b'x', 0xc0, 14],
            "mx.example",
        ),
        (rtype::SOA, soa, "ns.example"),
        (
            rtype::SRV,
            vec![0, 1, 0, 2, 0x13, 0xc4, 1, b's', 0xc0, 14],
            "s.example",
        ),
        (
            rtype::TXT,
            vec![5, b'h', b'e', b'l', b'l', b'o', 3, b'a', b',', b'b'],
            "TXT 5 hello TXT 3 a,b",
        ),
        (rtype::SPF, b"\x06v=spf1".to_vec(), "SPF 6 v=spf1"),
        (rtype::DS, vec![0x30, 0x39, 8, 2, 0xaa], "DS 8 2"),
        (rtype::RRSIG, rrsig, "RRSIG 1 example"),
        (rtype::RRSIG, rrsig_root, "RRSIG 1 <Root>"),
        (rtype::DNSKEY, vec![1, 1, 3, 8, 0xaa], "DNSKEY 8"),
        (
            rtype::NSEC,
            vec![1, b'z', 0xc0, 14, 0, 1, 0x40],
            "NSEC a.example z.example",
        ),
        (rtype::NSEC3, vec![1, 0, 0, 1, 0, 0], "NSEC3"),
        (rtype::NSEC3PARAM, vec![1, 0, 0, 1, 0], "NSEC3PARAM"),
        (rtype::SSHFP, vec![1, 2, 0xab, 0x0c], "SSHFP: ab0c"),
        (
            rtype::LOC,
            vec![0, 0x12, 0x16, 0x13, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0],
            "LOC:  18 22 19",
        ),
        (999, vec![1, 2, 3], "<unknown type=999>"),
    ];
    for (rt, rd, want) in cases {
        let (a, err, _) = rendered(*rt, rd);
        assert_eq!(err, None, "type {rt}");
        assert_eq!(a, vec![want.to_string()], "type {rt}");
    }
    // Parsed, but not answers in Zeek's sense.
    for rt in [
        rtype::TKEY,
        rtype::TSIG,
        rtype::OPT,
        rtype::HINFO,
        rtype::CAA,
        rtype::HTTPS,
    ] {
        let (a, err, _) = rendered(rt, &[0, 1, 2]);
        assert_eq!((a.len(), err), (0, None), "type {rt}");
    }
    assert_eq!(rendered(999, &[1]).2, vec![Error::UnknownType]);
}

#[test]
fn bad_record_data_is_reported() {
    // An A record of 5 bytes, a TXT string running past its record, a name whose data is
    // shorter than RDLENGTH says.
    assert_eq!(
        rendered(rtype::A, &[1, 2, 3, 4, 5]).1,
        Some(Error::BadRdata)
    );
    assert_eq!(rendered(rtype::TXT, &[9, b'a']).1, Some(Error::BadRdata));
    let (a, err, w) = rendered(rtype::CNAME, &[0xc0, 0x0c, 0, 0]);
    assert_eq!((a, err), (vec!["a.example".to_string()], None));
    assert_eq!(w, vec![Error::RdataLengthMismatch]);
    // RDLENGTH past the end of the message.
    let mut m = answer(rtype::A, &[1, 2, 3, 4]);
    let n = m.len();
    m[n - 5] = 200;
    assert_eq!(
        parse(&m, false).unwrap().error,
        Some(Error::RdataBeyondMessage)
    );
}

#[test]
fn names_compression_and_loops() {
    let mut n = Vec::new();
    // Upper case is lowered; the root is empty.
    assert_eq!(read_name(b"\x03WwW\x00", 0, &mut n), Ok(5));
    assert_eq!(n, b"www");
    assert_eq!(read_name(b"\x00", 0, &mut n), Ok(1));
    assert_eq!(n, b"");
    // Pointer to a pointer: the position after the name is after the first pointer.
    let m = b"\x01a\x00\xc0\x00\x01b\xc0\x03";
    assert_eq!(read_name(m, 5, &mut n), Ok(9));
    assert_eq!(n, b"b.a");
    // A pointer to itself, and a forward pointer.
    assert_eq!(read_name(b"\xc0\x00", 0, &mut n), Err(Error::BadPointer));
    assert_eq!(
        read_name(b"\xc0\x02\x00", 0, &mut n),
        Err(Error::BadPointer)
    );
    // A backward pointer whose target runs into the pointer again (a loop through a
    // label): the pointed-to name may not reach the pointer.
    assert_eq!(
        read_name(b"\x01a\xc0\x00", 2, &mut n),
        Err(Error::BadPointer)
    );
    // Label types 0x40 and 0x80.
    assert_eq!(read_name(b"\x41a", 0, &mut n), Err(Error::BadLabelType));
    assert_eq!(read_name(b"\x81a", 0, &mut n), Err(Error::BadLabelType));
    // Cut inside a label, and a name over 255 bytes.
    assert_eq!(read_name(b"\x05ab", 0, &mut n), Err(Error::Truncated));
    let long: Vec<u8> = std::iter::repeat_n([63u8; 64], 5)
        .flatten()
        .chain([0])
        .collect();
    assert_eq!(read_name(&long, 0, &mut n), Err(Error::NameTooLong));
}

#[test]
fn long_pointer_chains_are_bounded() {
    // Each pointer points to the one before it: strictly decreasing, so it ends, but only
    // MAX_POINTERS are followed.
    let mut m = vec![0u8];
    for i in 0..100u16 {
        let target = if i == 0 { 0 } else { 1 + (i - 1) * 2 };
        m.extend_from_slice(&(0xc000 | target).to_be_bytes());
    }
    let last = m.len() - 2;
    let mut n = Vec::new();
    assert_eq!(read_name(&m, last, &mut n), Err(Error::TooManyPointers));
    assert_eq!(read_name(&m, 1 + 10 * 2, &mut n), Ok(1 + 10 * 2 + 2));
}

#[test]
fn truncated_message_keeps_what_parsed() {
    // Cut inside the second answer: the first is kept, the exchange is marked cut short.
    let cut = &RESPONSE[..RESPONSE.len() - 3];
    let m = parse(cut, false).unwrap();
    assert_eq!(m.error, Some(Error::RdataBeyondMessage));
    assert_eq!(m.answers, vec![b"web.example.com".to_vec()]);
    let cut = &RESPONSE[..60];
    assert_eq!(parse(cut, false).unwrap().error, Some(Error::Truncated));
    let r = run(Transport::Udp, &[C(QUERY), S(cut)]);
    assert_eq!(r.ex[0].outcome, Outcome::Truncated);
    assert_eq!(r.weirds, vec!["dns_truncated_message"]);
}

#[test]
fn tc_flag_of_the_response() {
    let mut resp = RESPONSE.to_vec();
    resp[2] |= 0x02;
    let r = run(Transport::Udp, &[C(QUERY), S(&resp)]);
    let f = &r.ex[0].fields;
    assert_eq!(f.get("truncated"), Some(&Value::Bool(true)));
    // Zeek's TC is the query's bit.
    assert_eq!(f.get("TC"), Some(&Value::Bool(false)));
}

#[test]
fn tcp_framing_across_and_within_data_calls() {
    let q = framed(QUERY);
    let r = framed(RESPONSE);
    let mut q2 = QUERY.to_vec();
    q2[1] = 0x35;
    let mut r2 = RESPONSE.to_vec();
    r2[1] = 0x35;
    let both_q: Vec<u8> = [framed(QUERY), framed(&q2)].concat();
    let both_r: Vec<u8> = [framed(RESPONSE), framed(&r2)].concat();
    // Two messages per call; then every split point of the responses, including inside
    // the length prefix.
    let whole = run(Transport::Tcp, &[C(&both_q), S(&both_r)]);
    assert_eq!(whole.stats.complete, 2);
    assert!(whole.weirds.is_empty());
    for cut in 1..both_r.len() {
        let (a, b) = both_r.split_at(cut);
        let x = run(Transport::Tcp, &[C(&both_q), S(a), S(b)]);
        assert_eq!(x.stats.complete, 2, "cut at {cut}");
        let ids: Vec<_> = x.ex.iter().map(|e| e.fields.u64("trans_id")).collect();
        assert_eq!(ids, vec![Some(0x1234), Some(0x1235)]);
        assert_eq!(list(&x.ex[0].fields, "answers").len(), 2);
    }
    // Byte by byte.
    let steps: Vec<Step<'_>> = q.chunks(1).map(C).chain(r.chunks(1).map(S)).collect();
    let x = run(Transport::Tcp, &steps);
    assert_eq!(x.stats.complete, 1);
    let e = &x.ex[0];
    assert_eq!(zeek(e)[0], "tcp");
    // The response's span covers its first to last byte.
    let s = e.response.unwrap();
    assert!(s.end.unwrap() > s.start);
}

#[test]
fn tcp_gap_and_cut_message() {
    let c = conn_with(Transport::Tcp, 53, false);
    let mut p = Dns::new(&c);
    let mut out = Emitter::default();
    let q = framed(QUERY);
    p.data(Dir::ToServer, 1, &q[..5], &mut out);
    p.gap(Dir::ToServer, 2, 10, &mut out);
    p.data(Dir::ToServer, 3, &q, &mut out);
    assert!(out.events.is_empty());
    assert_eq!(p.state(), ParserState::Active);
    p.data(Dir::ToClient, 4, &framed(RESPONSE)[..7], &mut out);
    p.end(Dir::ToClient, 5, &mut out);
    p.gap(Dir::ToClient, 6, 1, &mut out);
    assert_eq!(
        out.weirds,
        vec!["dns_tcp_gap", "dns_tcp_message_cut_short", "dns_tcp_gap"]
    );
    assert_eq!(p.state(), ParserState::GaveUp);
}

#[test]
fn duplicates_orphans_and_unanswered() {
    let mut other = QUERY.to_vec();
    other[0] = 0x77;
    let mut orphan = RESPONSE.to_vec();
    orphan[0] = 0x55;
    let r = run(
        Transport::Udp,
        &[C(QUERY), S(RESPONSE), S(RESPONSE), S(&orphan), C(&other)],
    );
    let kinds: Vec<_> =
        r.ex.iter()
            .map(|e| (e.fields.u64("trans_id"), e.outcome))
            .collect();
    assert_eq!(
        kinds,
        vec![
            (Some(0x1234), Outcome::Complete),
            (Some(0x1234), Outcome::NoRequest),
            (Some(0x5534), Outcome::NoRequest),
            (Some(0x7734), Outcome::NoResponse),
        ]
    );
    assert_eq!(
        r.weirds,
        vec!["dns_duplicate_response", "dns_response_without_query"]
    );
    assert_eq!((r.stats.no_request, r.stats.no_response), (2, 1));
    // A response with no query: Zeek's row has no rtt, qclass or qtype, and the query
    // name only because there are answers.
    let dup = zeek(&r.ex[1]);
    assert_eq!(&dup[2..8], ["-", "www.example.com", "-", "-", "-", "-"]);
    // An unanswered query: no rcode, answers or TTLs.
    let un = zeek(&r.ex[3]);
    assert_eq!(&un[8..10], ["-", "-"]);
    assert_eq!(&un[15..17], ["-", "-"]);
}

#[test]
fn rejected_and_nxdomain() {
    // NXDOMAIN with no records at all: rejected; failed in reports.
    let mut resp = RESPONSE[..33].to_vec();
    resp[3] = 0x83;
    resp[7] = 0;
    let r = run(Transport::Udp, &[C(QUERY), S(&resp)]);
    let e = &r.ex[0];
    assert_eq!(e.fields.get("rejected"), Some(&Value::Bool(true)));
    assert_eq!(e.fields.text("rcode_name"), Some(&b"NXDOMAIN"[..]));
    let s = summarize(e);
    assert_eq!((s.status.as_deref(), s.failed), (Some("NXDOMAIN"), true));
    // Zeek sets AA and RA only while handling answers: none here.
    assert_eq!(&zeek(e)[10..14], ["F", "F", "T", "F"]);
}

#[test]
fn malformed_datagrams_are_weirds_not_events() {
    let r = run(Transport::Udp, &[C(b"\x01\x02\x03"), C(b"")]);
    assert!(r.ex.is_empty());
    // Bad datagrams do not end the flow's analysis.
    assert_eq!(r.state, ParserState::Active);
    assert_eq!(
        r.weirds,
        vec!["dns_truncated_header", "dns_truncated_header"]
    );
    // 26 questions: not analyzed past the header.
    let mut many = QUERY.to_vec();
    many[5] = 26;
    let m = parse(&many, false).unwrap();
    assert_eq!((m.error, m.question), (Some(Error::TooManyQuestions), None));
}

#[test]
fn arbitrary_bytes_never_panic() {
    use proptest::prelude::*;
    proptest!(ProptestConfig::with_cases(2000), |(data in proptest::collection::vec(any::<u8>(), 0..300), cut in 0usize..300)| {
        let _ = parse(&data, false);
        let _ = parse(&data, true);
        let mut n = Vec::new();
        let _ = read_name(&data, cut.min(data.len()), &mut n);
        prop_assert!(n.len() <= wire::MAX_NAME);
        let _ = run(Transport::Udp, &[C(&data), S(&data)]);
        let cut = cut.min(data.len());
        let _ = run(Transport::Tcp, &[C(&data[..cut]), S(&data), C(&data[cut..])]);
        for t in [Transport::Udp, Transport::Tcp] {
            let _ = probe(&ProbeInput { to_server: &data, to_client: &data[cut..], server_port: 53, transport: t });
        }
    });
}

fn probe_of(transport: Transport, port: u16, c: &[u8], s: &[u8]) -> Probe {
    probe(&ProbeInput {
        to_server: c,
        to_client: s,
        server_port: port,
        transport,
    })
}

#[test]
fn probe_by_content_with_ports_as_hints() {
    use Transport::{Tcp, Udp};
    assert_eq!(probe_of(Udp, 53, QUERY, b""), Probe::Yes);
    assert_eq!(probe_of(Udp, 40001, QUERY, b""), Probe::Yes);
    assert_eq!(probe_of(Udp, 40001, b"", RESPONSE), Probe::Yes);
    // The assumed client's first datagram is a response: roles are the other way round.
    assert_eq!(probe_of(Udp, 53, RESPONSE, b""), Probe::Reversed);
    assert_eq!(probe_of(Udp, 53, RESPONSE, QUERY), Probe::Reversed);
    // Not DNS.
    assert_eq!(probe_of(Udp, 53, b"GET / HTTP/1.1\r\n\r\n", b""), Probe::No);
    assert_eq!(probe_of(Udp, 53, b"\x01\x02", b""), Probe::No);
    assert_eq!(probe_of(Udp, 123, &[0x23; 48], b""), Probe::No);
    // Off the DNS ports, only an ordinary message that parses to its end.
    let mut two = QUERY.to_vec();
    two[5] = 2;
    assert_eq!(probe_of(Udp, 40001, &two, b""), Probe::No);
    assert_eq!(probe_of(Udp, 40001, &RESPONSE[..60], b""), Probe::No);
    // mDNS announcements have no question.
    let mut mdns = RESPONSE.to_vec();
    mdns[5] = 0;
    assert_eq!(probe_of(Udp, 5353, b"", &mdns), Probe::Yes);
    assert_eq!(probe_of(Udp, 40001, b"", &mdns), Probe::No);
    // TCP: framed; more bytes needed inside the question; HTTP and Redis are not DNS.
    let q = framed(QUERY);
    assert_eq!(probe_of(Tcp, 53, &q, b""), Probe::Yes);
    assert_eq!(probe_of(Tcp, 53, &q[..20], b""), Probe::NeedMore);
    assert_eq!(probe_of(Tcp, 53, &q[..1], b""), Probe::NeedMore);
    assert_eq!(probe_of(Tcp, 53, b"", &framed(RESPONSE)), Probe::Yes);
    assert_eq!(probe_of(Tcp, 53, &framed(RESPONSE), b""), Probe::No);
    assert_eq!(
        probe_of(Tcp, 53, b"GET / HTTP/1.1\r\nHost: x\r\n\r\n", b""),
        Probe::No
    );
    assert_eq!(probe_of(Tcp, 6379, b"*1\r\n$4\r\nPING\r\n", b""), Probe::No);
}

#[test]
fn netbios_srv_is_nbstat() {
    let c = conn_with(Transport::Udp, 137, false);
    let mut p = Dns::new(&c);
    let mut out = Emitter::default();
    let mut q = QUERY.to_vec();
    let n = q.len();
    q[n - 3] = 33;
    p.data(Dir::ToServer, 1, &q, &mut out);
    let Event::RequestStart { fields, .. } = &out.events[0] else {
        panic!("{:?}", out.events)
    };
    assert_eq!(fields.text("qtype_name"), Some(&b"NBSTAT"[..]));
}
