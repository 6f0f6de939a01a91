//! Literal-byte tests of the DNS wire format, the parser (UDP datagrams and TCP framing),
//! matching by id, the probe and the Zeek row.

use super::probe::probe;
use super::wire::{Ctx, Error, Header, parse, read_name, rtype};
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
    row.iter().map(ZVal::plain).collect()
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
    let m = parse(&answer(rt, rdata), Ctx::default()).unwrap();
    let a = m
        .answers()
        .map(|(x, _)| String::from_utf8_lossy(x).into_owned())
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
    // Read, but not answers in Zeek's sense (its scripts do not handle them).
    for (rt, rd) in [
        (rtype::TKEY, &[0u8, 1, 2][..]),
        (rtype::TSIG, &[0, 1, 2]),
        (rtype::OPT, &[0, 8, 0, 0]),
        (rtype::HINFO, &[0, 1, 2]),
        (rtype::CAA, &[0, 1, 2]),
        (rtype::HTTPS, &[0, 1, 0]),
    ] {
        let m = parse(&answer(rt, rd), Ctx::default()).unwrap();
        assert_eq!((m.replies.len(), m.error), (0, None), "type {rt}");
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
        parse(&m, Ctx::default()).unwrap().error,
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
        Err(Error::Truncated)
    );
    // Length bytes 0x40..0xbf are plain lengths (Zeek): past the message here, or over 63.
    assert_eq!(read_name(b"\x41a", 0, &mut n), Err(Error::Truncated));
    let mut l65 = vec![65u8];
    l65.extend_from_slice(&[b'x'; 66]);
    assert_eq!(read_name(&l65, 0, &mut n), Err(Error::LabelTooLong));
    // Cut inside a label.
    assert_eq!(read_name(b"\x05ab", 0, &mut n), Err(Error::Truncated));
}

#[test]
fn a_names_case_is_kept_or_lowered_per_level() {
    // Lowered: its own labels here, the pointer's by the pointer's level.
    let m = b"\x01A\x00\x02BC\xc0\x00";
    let mut n = Vec::new();
    assert_eq!(read_name(m, 3, &mut n), Ok(8));
    assert_eq!(n, b"bc.a");
    // Kept (a NAPTR replacement, read as Zeek reads it): its own labels as they are, a
    // pointer's lowercased. The question's "example" is upper case here.
    let mut rdata = vec![0, 10, 0, 20, 1, b'U', 3, b'S', b'I', b'P', 0];
    rdata.extend_from_slice(&[3, b'F', b'O', b'O', 0xc0, 14]);
    let mut msg = answer(rtype::NAPTR, &rdata);
    msg[15..22].copy_from_slice(b"EXAMPLE");
    let m = parse(&msg, Ctx::default()).unwrap();
    assert_eq!(m.error, None);
    assert_eq!(
        m.answers().map(|(t, _)| t.to_vec()).collect::<Vec<_>>(),
        [b"NAPTR 10 20 U SIP FOO.example".to_vec()]
    );
    assert_eq!(&m.question.unwrap().name[..], b"a.example");
}

#[test]
fn long_pointer_chains_are_bounded() {
    // Each pointer points to the one before it: strictly decreasing, so it ends, but only
    // MAX_POINTER_DEPTH are followed (Zeek's dns_max_compression_chain_depth): past it, the
    // name is what was read so far.
    let mut m = vec![1u8, b'r', 0];
    for i in 0..100u16 {
        let target = if i == 0 { 0 } else { 3 + (i - 1) * 2 };
        m.extend_from_slice(&(0xc000 | target).to_be_bytes());
    }
    let last = m.len() - 2;
    let mut n = Vec::new();
    assert_eq!(read_name(&m, last, &mut n), Ok(last + 2));
    assert_eq!(n, b"");
    // A chain within the bound reaches the name.
    assert_eq!(read_name(&m, 3 + 10 * 2, &mut n), Ok(3 + 10 * 2 + 2));
    assert_eq!(n, b"r");
}

#[test]
fn truncated_message_keeps_what_parsed() {
    // Cut inside the second answer's data: the first is kept, the exchange is cut short.
    let cut = &RESPONSE[..RESPONSE.len() - 3];
    let m = parse(cut, Ctx::default()).unwrap();
    assert_eq!((m.error, m.cut), (Some(Error::RdataBeyondMessage), true));
    assert_eq!(m.answers().count(), 1);
    // Cut inside the second answer's TTL: Zeek reads the RDLENGTH from the TTL's bytes (0)
    // and stops at a zero RDLENGTH with bytes after it.
    let cut = &RESPONSE[..60];
    let m = parse(cut, Ctx::default()).unwrap();
    assert_eq!((m.error, m.cut), (Some(Error::ZeroRdlength), true));
    let r = run(Transport::Udp, &[C(QUERY), S(cut)]);
    assert_eq!(r.ex[0].outcome, Outcome::Truncated);
    assert_eq!(r.weirds, vec!["dns_zero_rdlength"]);
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
    // Framing goes on across a gap (Zeek's does): a gap at a message boundary loses
    // nothing after it.
    let q = framed(QUERY);
    let r = framed(RESPONSE);
    let x = run(
        Transport::Tcp,
        &[C(&q), Step::GapC(10), C(&q), S(&r), S(&r[..20])],
    );
    // The second response was cut by the end of the stream: read as far as it goes (Zeek
    // parses the partial message when the connection closes), and it answers the second
    // query.
    assert_eq!((x.stats.complete, x.stats.truncated), (1, 1));
    assert!(x.weirds.contains(&"dns_tcp_gap"));
    assert!(x.weirds.contains(&"dns_tcp_message_cut_short"));
    assert_eq!(x.state, ParserState::Active);
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
    let m = parse(&many, Ctx::default()).unwrap();
    assert_eq!((m.error, m.question), (Some(Error::TooManyQuestions), None));
}

#[test]
fn arbitrary_bytes_never_panic() {
    use proptest::prelude::*;
    proptest!(ProptestConfig::with_cases(2000), |(data in proptest::collection::vec(any::<u8>(), 0..300), cut in 0usize..300)| {
        let _ = parse(&data, Ctx::default());
        let _ = parse(&data, Ctx { netbios: true, resp_137: true });
        let mut n = Vec::new();
        let _ = read_name(&data, cut.min(data.len()), &mut n);
        prop_assert!(n.len() <= wire::NAME_BUF);
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

// ---------------------------------------------------------------------------------------
// Zeek's rules (docs/dns.md, "Rules"), each with the conversation that shows it.

fn hex(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

/// A UDP flow between `orig` and `resp`.
fn udp_conn(orig: ([u8; 4], u16), resp: ([u8; 4], u16)) -> std::sync::Arc<ConnInfo> {
    use crate::model::{Endpoint, Vantage};
    std::sync::Arc::new(ConnInfo {
        uid: "Ct".into(),
        orig: Endpoint::new(orig.0.into(), orig.1),
        resp: Endpoint::new(resp.0.into(), resp.1),
        transport: Transport::Udp,
        vantage: Vantage::Packets { iface: 0 },
        first_ts: 0,
        partial: false,
        tunnel: None,
        community_id: String::new(),
        duplicate: false,
    })
}

fn run_on(c: std::sync::Arc<ConnInfo>, steps: &[Step<'_>]) -> Run {
    let r = drive(&mut Dns::new(&c), "dns", c, steps, false);
    r.check();
    r
}

/// The columns score.py compares, in its order: proto trans_id query qclass_name
/// qtype_name rcode_name AA TC RD RA answers TTLs rejected.
fn scored(ex: &Exchange) -> String {
    let z = zeek(ex);
    [0, 1, 3, 5, 7, 9, 10, 11, 12, 13, 15, 16, 17]
        .iter()
        .map(|&i| z[i].clone())
        .collect::<Vec<_>>()
        .join(" ")
}

fn rows(r: &Run) -> Vec<String> {
    r.ex.iter().map(scored).collect()
}

#[test]
fn update_zone_is_not_a_question() {
    let q = hex(
        "123428000001000000010000076578616d706c6503636f6d000006000104686f7374076578616d706c6503636f6d00000100010000012c000401020304",
    );
    let r = hex("1234a8000001000000000000076578616d706c6503636f6d0000060001");
    let x = run(Transport::Udp, &[C(&q), S(&r)]);
    assert_eq!(rows(&x), ["udp 4660 - - - NOERROR F F F F - - F"]);
    assert_eq!(zeek(&x.ex[0])[19], "dynamic-update");
}

#[test]
fn update_sections_render_as_pre_add_del() {
    let r = hex(
        "2222a8000001000100020000076578616d706c6503636f6d000006000104686f7374076578616d706c6503636f6d0000ff00fe00000000000004686f7374076578616d706c6503636f6d00000100010000012c000401020304036f6c64076578616d706c6503636f6d0000ff00ff000000000000",
    );
    let x = run(Transport::Udp, &[S(&r)]);
    assert_eq!(
        rows(&x),
        [
            "udp 8738 host.example.com - - NOERROR F F F F pre: NameNotInUse host.example.com,add: A host.example.com 1.2.3.4,del: RRSet * old.example.com 0.000000,300.000000,0.000000 F"
        ]
    );
}

const MDNS_QUERY: &str = "000000000001000000000000055f68747470045f746370056c6f63616c00000c0001";
const MDNS_ANSWER: &str = "000084000000000100000000055f68747470045f746370056c6f63616c00000c000100001194001d0a4d79205072696e746572055f68747470045f746370056c6f63616c00";

#[test]
fn multicast_messages_are_never_paired() {
    let c = udp_conn(([192, 168, 1, 10], 5353), ([224, 0, 0, 251], 5353));
    let (q, a) = (hex(MDNS_QUERY), hex(MDNS_ANSWER));
    let x = run_on(c, &[C(&q), C(&a)]);
    assert_eq!(
        rows(&x),
        [
            "udp 0 _http._tcp.local C_INTERNET PTR - F F F F - - F",
            "udp 0 _http._tcp.local - - NOERROR T F F F my printer._http._tcp.local 4500.000000 F"
        ]
    );
}

#[test]
fn lone_response_is_named_by_its_first_handled_answer() {
    // An mDNS answer has no question: the name is its first answer's owner.
    let c = udp_conn(([192, 168, 1, 10], 5353), ([224, 0, 0, 251], 5353));
    let x = run_on(c, &[C(&hex(MDNS_ANSWER))]);
    assert_eq!(zeek(&x.ex[0])[3], "_http._tcp.local");
    // A response whose question is a.example and whose first answer, HINFO, is not handled
    // by Zeek's scripts: the name is the owner of the CNAME after it.
    let mut m = vec![0xab, 0xcd, 0x81, 0x80, 0, 1, 0, 2, 0, 0, 0, 0];
    m.extend_from_slice(&[
        1, b'a', 7, b'e', b'x', b'a', b'm', b'p', b'l', b'e', 0, 0, 1, 0, 1,
    ]);
    m.extend_from_slice(&[0xc0, 0x0c, 0, 13, 0, 1, 0, 0, 0, 60, 0, 2, 0, 0]);
    m.extend_from_slice(&[1, b'b', 0xc0, 14, 0, 5, 0, 1, 0, 0, 0, 60, 0, 2, 0xc0, 0x0c]);
    let x = run(Transport::Udp, &[S(&m)]);
    assert_eq!(
        rows(&x),
        ["udp 43981 b.example - - NOERROR F F F T a.example 60.000000 F"]
    );
}

#[test]
fn response_before_query_is_one_exchange() {
    let r = hex(
        "00078180000100010000000003777777076578616d706c6503636f6d000001000103777777076578616d706c6503636f6d00000100010000003c00045db8d822",
    );
    let q = hex("00070100000100000000000003777777076578616d706c6503636f6d0000010001");
    let x = run(Transport::Udp, &[S(&r), C(&q)]);
    assert_eq!(
        rows(&x),
        ["udp 7 www.example.com C_INTERNET A NOERROR F F T T 93.184.216.34 60.000000 F"]
    );
    // No rtt: the response was not after the query.
    assert_eq!(zeek(&x.ex[0])[2], "-");
    assert_eq!(x.ex[0].outcome, Outcome::Complete);
}

#[test]
fn naptr_renders_as_zeek() {
    let q = hex("000b010000010000000000000134013301320131046531363404617270610000230001");
    let r = hex(
        "000b818000010001000000000134013301320131046531363404617270610000230001013401330132013104653136340461727061000023000100000e10002b0064000a0155074532552b7369701b215e2e2a24217369703a696e666f406578616d706c652e636f6d2100",
    );
    let x = run(Transport::Udp, &[C(&q), S(&r)]);
    assert_eq!(
        rows(&x),
        [
            "udp 11 4.3.2.1.e164.arpa C_INTERNET NAPTR NOERROR F F T T NAPTR 100 10 U E2U+sip !^.*$!sip:info@example.com! 3600.000000 F"
        ]
    );
}

#[test]
fn wks_sets_flags_without_an_answer() {
    let q = hex("000c0100000100000000000004686f7374076578616d706c6503636f6d00000b0001");
    let r = hex(
        "000c8580000100010000000004686f7374076578616d706c6503636f6d00000b000104686f7374076578616d706c6503636f6d00000b00010000012c00100a000001060000000000000000000040",
    );
    let x = run(Transport::Udp, &[C(&q), S(&r)]);
    assert_eq!(
        rows(&x),
        ["udp 12 host.example.com C_INTERNET WKS NOERROR T F T T - - F"]
    );
}

#[test]
fn zero_rdlength_with_bytes_after_it_stops_the_answers() {
    let q = hex("000901000001000000000000076578616d706c6503636f6d0000100001");
    let r = hex(
        "000981800001000200000000076578616d706c6503636f6d0000100001076578616d706c6503636f6d00001000010000003c0000076578616d706c6503636f6d00000100010000003c000401020304",
    );
    let x = run(Transport::Udp, &[C(&q), S(&r)]);
    assert_eq!(
        rows(&x),
        ["udp 9 example.com C_INTERNET TXT NOERROR F F T F - - F"]
    );
    assert!(x.weirds.contains(&"dns_zero_rdlength"));
}

#[test]
fn overflowing_txt_keeps_the_strings_before() {
    let q = hex("000e010000010000000000000174076578616d706c6503636f6d0000100001");
    let r = hex(
        "000e818000010001000000000174076578616d706c6503636f6d00001000010174076578616d706c6503636f6d00001000010000003c000703616263096465",
    );
    let x = run(Transport::Udp, &[C(&q), S(&r)]);
    assert_eq!(
        rows(&x),
        ["udp 14 t.example.com C_INTERNET TXT NOERROR F F T T TXT 3 abc 60.000000 F"]
    );
}

#[test]
fn netbios_query_names_are_decoded() {
    let c = udp_conn(([10, 0, 0, 5], 137), ([10, 0, 0, 255], 137));
    let q = hex(
        "80010110000100000000000020464845504643454c4548464345504646464143414341434143414341434141410000200001",
    );
    let x = run_on(c, &[C(&q)]);
    assert_eq!(
        rows(&x),
        ["udp 32769 WORKGROUP C_INTERNET NIMLOC - F F T F - - F"]
    );
    assert_eq!(zeek(&x.ex[0])[19], "netbios-query");
    assert_eq!(wire::decode_netbios(b"FHEPFCELEHFCEPFF"), None);
    assert_eq!(
        wire::decode_netbios(format!("ebedeceb{}aa", "ca".repeat(11)).as_bytes()).as_deref(),
        Some(&b"ACBA"[..]),
        "lower case decodes too; the 16th byte is the suffix"
    );
}

fn with_id(msg: &[u8], id: u16) -> Vec<u8> {
    let mut m = msg.to_vec();
    m[..2].copy_from_slice(&id.to_be_bytes());
    m
}

#[test]
fn more_than_fifty_waiting_ids_are_given_up() {
    let qs: Vec<Vec<u8>> = (1..=53).map(|i| with_id(QUERY, i)).collect();
    let rs: Vec<Vec<u8>> = (1..=53).map(|i| with_id(RESPONSE, i)).collect();
    let steps: Vec<Step<'_>> = qs
        .iter()
        .map(|q| C(q))
        .chain(rs.iter().map(|r| S(r)))
        .collect();
    let x = run(Transport::Udp, &steps);
    let paired: Vec<u64> =
        x.ex.iter()
            .filter(|e| e.outcome == Outcome::Complete)
            .map(|e| e.fields.u64("trans_id").unwrap())
            .collect();
    // Query 1 waited apart (Zeek's pending_query), 53 took its place when 1 was answered;
    // 2..52 were given up when a 52nd id came.
    assert_eq!(paired, [1, 53]);
    assert_eq!((x.stats.no_response, x.stats.no_request), (51, 51));
}

#[test]
fn a_udp_flow_idle_for_the_session_timeout_starts_afresh() {
    use crate::l7::{MatchStats, Matcher};
    let pair = |gaps: &[Ts]| {
        let c = conn_with(Transport::Udp, 53, false);
        let mut p = Dns::new(&c);
        let mut m = Matcher::new("dns", c);
        let mut out = Emitter::default();
        let mut ts = 1_000;
        p.data(Dir::ToServer, ts, QUERY, &mut out);
        for g in gaps {
            ts += g;
            let mut other = QUERY.to_vec();
            other[0] = 0x99;
            p.data(Dir::ToServer, ts, &other, &mut out);
        }
        p.data(Dir::ToClient, ts, RESPONSE, &mut out);
        p.end(Dir::ToServer, ts, &mut out);
        p.end(Dir::ToClient, ts, &mut out);
        let (mut st, mut ex) = (MatchStats::default(), Vec::new());
        m.feed(&mut out, &mut st, &mut ex);
        m.finish(&mut st, &mut ex);
        st.complete
    };
    let s = 1_000_000_000;
    // Answered 9 s later: paired. 15 s later: the first timer (10 s) found the flow idle.
    assert_eq!(pair(&[9 * s]), 1);
    assert_eq!(pair(&[15 * s]), 0);
    // A message at 5 s keeps the first timer from expiring it (idle 5 s < 9 s); the next
    // timer (20 s) comes after the answer at 12 s.
    assert_eq!(pair(&[5 * s, 7 * s]), 1);
}

/// A name on the wire.
fn wire_name(n: &str) -> Vec<u8> {
    let mut v = Vec::new();
    for l in n.split('.') {
        v.push(l.len() as u8);
        v.extend_from_slice(l.as_bytes());
    }
    v.push(0);
    v
}

/// A message with one question (`qname` type `qtype`), and answers `(owner, type, rdata)`
/// with TTL 60.
fn message(
    id: u16,
    flags: u16,
    qname: &str,
    qtype: u16,
    answers: &[(&str, u16, &[u8])],
) -> Vec<u8> {
    let mut m = id.to_be_bytes().to_vec();
    m.extend_from_slice(&flags.to_be_bytes());
    m.extend_from_slice(&[0, 1, 0, answers.len() as u8, 0, 0, 0, 0]);
    m.extend_from_slice(&wire_name(qname));
    m.extend_from_slice(&qtype.to_be_bytes());
    m.extend_from_slice(&[0, 1]);
    for (owner, rt, rd) in answers {
        m.extend_from_slice(&wire_name(owner));
        m.extend_from_slice(&rt.to_be_bytes());
        m.extend_from_slice(&[0, 1, 0, 0, 0, 60]);
        m.extend_from_slice(&(rd.len() as u16).to_be_bytes());
        m.extend_from_slice(rd);
    }
    m
}

#[test]
fn query_fields_come_from_the_query() {
    let q = message(5, 0x0100, "a.example.com", 1, &[]);
    let r = message(
        5,
        0x8180,
        "b.example.com",
        1,
        &[("b.example.com", 1, &[1, 2, 3, 4])],
    );
    let x = run(Transport::Udp, &[C(&q), S(&r)]);
    assert_eq!(
        rows(&x),
        ["udp 5 a.example.com C_INTERNET A NOERROR F F T T 1.2.3.4 60.000000 F"]
    );
    // A query without a question sets no query fields, and its flags stay unset: the
    // response's first answer names the exchange.
    let mut q0 = q[..12].to_vec();
    q0[5] = 0;
    let x = run(Transport::Udp, &[C(&q0), S(&r)]);
    assert_eq!(
        rows(&x),
        ["udp 5 b.example.com - - NOERROR F F F T 1.2.3.4 60.000000 F"]
    );
}

#[test]
fn record_data_is_read_as_zeek_reads_it() {
    // AAAA reads sixteen bytes whatever RDLENGTH says; past the message's end, zeros.
    assert_eq!(
        rendered(rtype::AAAA, &[0x20, 1, 0xd, 0xb8]).0,
        ["2001:db8::"]
    );
    // Addresses are written as Zeek writes them: IPv4-mapped as IPv4, IPv4-compatible
    // with a dotted tail.
    let mut v4m = [0u8; 16];
    v4m[10..].copy_from_slice(&[0xff, 0xff, 192, 0, 2, 1]);
    assert_eq!(rendered(rtype::AAAA, &v4m).0, ["192.0.2.1"]);
    let mut v4c = [0u8; 16];
    v4c[12..].copy_from_slice(&[192, 0, 2, 1]);
    assert_eq!(rendered(rtype::AAAA, &v4c).0, ["::192.0.2.1"]);
    // LOC must be sixteen bytes long.
    let (a, err, _) = rendered(rtype::LOC, &[0; 17]);
    assert_eq!((a.len(), err), (0, Some(Error::BadRdata)));
    // WKS is handled without text, and its data is not consumed: the next record is read
    // from inside it (here its data is a whole A record).
    let wks: &[u8] = &[0xc0, 0x0c, 0, 1, 0, 1, 0, 0, 0, 60, 0, 4, 1, 2, 3, 4];
    let mut m = answer(rtype::WKS, wks);
    m[7] = 2;
    let m = parse(&m, Ctx::default()).unwrap();
    assert_eq!(m.error, None);
    assert_eq!(m.replies.len(), 2);
    assert_eq!(
        m.answers().map(|(t, _)| t.to_vec()).collect::<Vec<_>>(),
        [b"1.2.3.4".to_vec()]
    );
    // NIMLOC/NB (32) is never an answer, on any port.
    let m = parse(&answer(rtype::NBS, &[0, 1, 2]), Ctx::default()).unwrap();
    assert_eq!((m.replies.len(), m.error), (0, None));
}

#[test]
fn long_names_are_only_noted() {
    // Five labels of 63 bytes: 319 bytes with the dots, over 255 but within Zeek's buffer.
    let name: Vec<String> = (0..5).map(|i| format!("{i}").repeat(63)).collect();
    let q = message(1, 0x0100, &name.join("."), 1, &[]);
    let m = parse(&q, Ctx::default()).unwrap();
    assert_eq!(m.error, None);
    assert_eq!(m.question.unwrap().name.len(), 319);
    assert_eq!(m.weirds, [Error::LongName]);
    // Eight fill it to the last byte (512 with every dot; 511 without the last).
    let mut name: Vec<String> = (0..8).map(|i| format!("{i}").repeat(63)).collect();
    let m = parse(&message(1, 0x0100, &name.join("."), 1, &[]), Ctx::default()).unwrap();
    assert_eq!(m.error, None);
    assert_eq!(m.question.unwrap().name.len(), 511);
    // One more byte does not fit (Zeek's 512-byte buffer), nor do nine labels.
    name.push("a".into());
    let m = parse(&message(1, 0x0100, &name.join("."), 1, &[]), Ctx::default()).unwrap();
    assert_eq!(m.error, Some(Error::NameTooLong));
    let name: Vec<String> = (0..9).map(|i| format!("{i}").repeat(63)).collect();
    let m = parse(&message(1, 0x0100, &name.join("."), 1, &[]), Ctx::default()).unwrap();
    assert_eq!(m.error, Some(Error::NameTooLong));
}

#[test]
fn too_many_questions_end_dns_on_the_flow() {
    let mut many = QUERY.to_vec();
    many[5] = 26;
    let x = run(Transport::Udp, &[C(&many), C(QUERY), S(RESPONSE)]);
    assert_eq!(x.state, ParserState::GaveUp);
    // The message itself is a record (its id only); nothing after it is read.
    assert_eq!(x.ex.len(), 1);
    assert_eq!(rows(&x), ["udp 4660 - - - - F F F F - - F"]);
    // On a DNS port such a message is DNS (Zeek's analyzer is there); elsewhere it is not.
    assert_eq!(probe_of(Transport::Udp, 53, &many, b""), Probe::Yes);
    assert_eq!(probe_of(Transport::Udp, 40001, &many, b""), Probe::No);
}

/// Conversations of queries and responses with random ids, corrupted bytes and cuts, over
/// UDP and TCP, through the shared fuzz entry: the harness invariants hold (no answer
/// begins before its question, whatever the framing).
#[test]
fn conversations_built_from_protocol_pieces_keep_the_invariants() {
    let mut x: u64 = 0x1234_5678_9abc_def1;
    let mut next = || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    let msgs: Vec<Vec<u8>> = vec![
        QUERY.to_vec(),
        RESPONSE.to_vec(),
        hex(MDNS_ANSWER),
        hex(MDNS_QUERY),
    ];
    for _ in 0..2000 {
        let mut data = vec![(next() % 8) as u8];
        for _ in 0..(next() % 30) {
            let mut m = msgs[(next() as usize) % msgs.len()].clone();
            m[1] = (next() % 3) as u8;
            if next() % 4 == 0 {
                let i = (next() as usize) % m.len();
                m[i] = next() as u8;
            }
            if next() % 5 == 0 {
                m.truncate((next() as usize) % m.len());
            }
            let ctl = (next() % 256) as u8 & 0x5f;
            data.push(ctl);
            data.push(m.len() as u8);
            data.extend_from_slice(&m);
        }
        crate::l7::harness::fuzz(&super::PROTOCOL, b"", &data);
    }
}

#[test]
fn ipv6_answers_are_written_as_inet_ntop_writes_them() {
    let text = |b: [u8; 16]| {
        let mut out = crate::model::Text::new();
        super::wire::push_ipv6_text(b, &mut out);
        String::from_utf8(out.to_vec()).expect("ASCII")
    };
    let addr = |s: &str| s.parse::<std::net::Ipv6Addr>().expect("address").octets();
    for (a, want) in [
        ("::", "::"),
        ("::1", "::1"),
        ("1::", "1::"),
        ("2001:db8::1", "2001:db8::1"),
        ("2001:db8:0:1:0:0:0:1", "2001:db8:0:1::1"),
        ("1:0:0:2:0:0:3:4", "1::2:0:0:3:4"),
        ("1:0:2:0:3:0:4:0", "1:0:2:0:3:0:4:0"),
        ("fe80::abcd:ef01", "fe80::abcd:ef01"),
        ("::ffff:192.0.2.1", "192.0.2.1"),
        ("::192.0.2.1", "::192.0.2.1"),
    ] {
        assert_eq!(text(addr(a)), want, "{a}");
    }
    // Everywhere else glibc and Rust's `Display` follow the same rule (RFC 5952's first
    // longest run of zero words, if at least two): words drawn mostly from 0 and 1.
    let mut x = 0x9E37_79B9_7F4A_7C15u64;
    for _ in 0..20_000 {
        let mut b = [0u8; 16];
        for w in b.chunks_exact_mut(2) {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let v: u16 = match x % 4 {
                0 | 1 => 0,
                2 => 1,
                _ => (x >> 16) as u16,
            };
            w.copy_from_slice(&v.to_be_bytes());
        }
        let ip = std::net::Ipv6Addr::from(b);
        let compat = b[..12].iter().all(|&v| v == 0) && b[12..14] != [0, 0];
        if ip.to_ipv4_mapped().is_some() || compat {
            continue;
        }
        assert_eq!(text(b), ip.to_string(), "{b:?}");
    }
}

#[test]
fn ipv4_answers_are_written_as_std_writes_them() {
    let text = |a: [u8; 4]| {
        let mut out = crate::model::Text::from_slice(b"x");
        super::wire::push_ipv4_text(a, &mut out);
        String::from_utf8(out.to_vec()).expect("ASCII")
    };
    // Every octet value in every position, beside values of one, two and three digits.
    for at in 0..4 {
        for v in 0..=255u8 {
            let mut a = [7, 10, 100, 255];
            a[at] = v;
            let want = format!("x{}", std::net::Ipv4Addr::from(a));
            assert_eq!(text(a), want);
        }
    }
    // The IPv4 forms of AAAA answers go through it too.
    let mut out = crate::model::Text::new();
    super::wire::push_ipv6_text(
        "::ffff:10.0.200.9"
            .parse::<std::net::Ipv6Addr>()
            .expect("address")
            .octets(),
        &mut out,
    );
    assert_eq!(&out[..], b"10.0.200.9");
}
