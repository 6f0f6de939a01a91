//! The byte stream: packets past 16 MiB with bounded memory, gaps inside and across
//! packets, resynchronisation and giving up, malformed input, connections caught mid-stream.

use super::*;

#[test]
fn big_packets_stream_with_bounded_memory() {
    // A 20 MiB row (two physical packets: 16 MiB - 1, then the rest), delivered in 64 KiB
    // chunks, and a 17 MiB query the same way.
    let c = harness::conn(3306);
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
        assert!(p.fr[0].head().len() <= framing::MAX_KEEP);
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
        assert!(p.fr[1].head().len() <= framing::MAX_KEEP);
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
    assert_eq!(cmds(&r), vec!["login", "query", "ping"]);
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
    assert_eq!(cmds(&r), vec!["login", "query", "query", "ping"]);
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
    assert_eq!(cmds(&r), vec!["login", "query"]);
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
    assert_eq!(cmds(&r), vec!["query", "query"]);
    assert_eq!(r.ex[0].fields.u64("rows"), Some(1));
    assert_eq!(r.ex[1].fields.u64("rows"), Some(1));
    // The server side starting inside a packet is skipped until a command is answered.
    let r = run(&[
        S::Sv(b"ow data\x05\x00\x00\x09\xfe\x00\x00\x02\x00".to_vec()),
        S::C(query("SELECT 3")),
        S::Sv(ok(1, 0, 2)),
    ]);
    assert_eq!(cmds(&r), vec!["query"]);
    assert_eq!(r.ex[0].outcome, Outcome::Complete);
}
