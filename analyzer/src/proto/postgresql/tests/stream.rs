//! The byte stream: large messages in bounded memory, gaps inside and across messages,
//! resynchronisation and giving up, absurd lengths and malformed bodies, captures begun
//! mid-connection, mutated conversations.

use super::*;

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
fn gap_inside_a_data_row_keeps_the_framing() {
    let row = data_row(&[&[b'z'; 5000]]);
    let mut steps: Vec<Seg> = login().into_iter().map(|(d, b)| Seg::Data(d, b)).collect();
    steps.push(Seg::Data(C, query("SELECT z")));
    steps.push(Seg::Data(S, row[..1000].to_vec()));
    steps.push(Seg::Gap(S, 3000));
    steps.push(Seg::Data(S, row[4000..].to_vec()));
    steps.push(Seg::Data(S, cat(&[complete("SELECT 1"), ready(b'I')])));
    steps.push(Seg::Data(C, query("SELECT 2")));
    steps.push(Seg::Data(S, cat(&[complete("SELECT 1"), ready(b'I')])));
    let r = run_steps(steps);
    assert_eq!(r.weirds, vec!["postgresql_gap_in_message"]);
    assert_eq!(r.ex.len(), 3);
    assert_eq!(r.ex[1].outcome, Outcome::Truncated);
    assert_eq!(r.ex[1].fields.u64("data_rows"), Some(1));
    assert_eq!(r.ex[2].outcome, Outcome::Complete);
}

#[test]
fn gap_across_messages_resyncs_on_ready_for_query() {
    let mut steps: Vec<Seg> = login().into_iter().map(|(d, b)| Seg::Data(d, b)).collect();
    steps.push(Seg::Data(C, query("SELECT a")));
    // The server's answer loses its middle: a DataRow's end and the next header.
    let resp = cat(&[
        data_row(&[b"aaaa"]),
        data_row(&[b"bbbb"]),
        complete("SELECT 2"),
    ]);
    steps.push(Seg::Data(S, resp[..8].to_vec()));
    steps.push(Seg::Gap(S, 12));
    steps.push(Seg::Data(S, resp[20..].to_vec()));
    steps.push(Seg::Data(S, ready(b'I')));
    steps.push(Seg::Data(C, query("SELECT b")));
    steps.push(Seg::Data(S, cat(&[complete("SELECT 0"), ready(b'I')])));
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
    let mut steps: Vec<Seg> = login().into_iter().map(|(d, b)| Seg::Data(d, b)).collect();
    let q = query("SELECT lost");
    steps.push(Seg::Data(C, q[..3].to_vec()));
    steps.push(Seg::Gap(C, 50));
    steps.push(Seg::Data(
        C,
        cat(&[b"junk".to_vec(), query("SELECT found")]),
    ));
    steps.push(Seg::Data(S, cat(&[complete("SELECT 1"), ready(b'I')])));
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
    let mut steps: Vec<Seg> = login().into_iter().map(|(d, b)| Seg::Data(d, b)).collect();
    steps.push(Seg::Data(C, query("SELECT 1")));
    steps.push(Seg::Data(S, vec![b'D', 0, 0]));
    steps.push(Seg::Gap(S, 100));
    steps.push(Seg::Gap(C, 100));
    for _ in 0..(MAX_RESYNC_SCAN / 65536 + 2) {
        steps.push(Seg::Data(S, vec![b'.'; 65536]));
        steps.push(Seg::Data(C, vec![b'.'; 65536]));
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
                    steps.push(Seg::Gap(*d, n as u64));
                } else {
                    steps.push(Seg::Data(*d, seg.to_vec()));
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

/// Messages that come whole in one call are read from the bytes fed, not copied: the same
/// conversation fed whole, one byte at a time, and cut at every third byte gives the same
/// exchanges — a query longer than what is kept of it, the extended protocol, DataRows,
/// an error, a notice between messages.
#[test]
fn messages_read_in_place_or_gathered_across_calls_give_the_same_exchanges() {
    let long = format!("SELECT '{}'", "y".repeat(MAX_SQL + 500));
    let mut steps = login().to_vec();
    steps.push((C, query(&long)));
    steps.push((
        S,
        cat(&[
            row_description(),
            data_row(&[b"1"]),
            notice("careful"),
            complete("SELECT 1"),
            ready(b'I'),
        ]),
    ));
    steps.push((
        C,
        cat(&[
            parse("s1", "SELECT n FROM t WHERE n = $1"),
            bind("p1", "s1"),
            describe(b'P', "p1"),
            execute("p1"),
            sync(),
        ]),
    ));
    steps.push((
        S,
        cat(&[
            msg(b'1', b""),
            msg(b'2', b""),
            row_description(),
            data_row(&[b"7"]),
            data_row(&[b"8"]),
            complete("SELECT 2"),
            ready(b'I'),
        ]),
    ));
    steps.push((C, query("SELECT nope")));
    steps.push((
        S,
        cat(&[
            error("ERROR", "42P01", "relation \"nope\" does not exist"),
            ready(b'I'),
        ]),
    ));
    let whole = run(steps.clone());
    let bytewise = run_bytewise(steps.clone());
    let thirds = run_steps(
        steps
            .iter()
            .flat_map(|(d, b)| b.chunks(3).map(|c| Seg::Data(*d, c.to_vec())))
            .collect(),
    );
    assert_eq!(whole.ex.len(), 4, "{:?}", whole.ex);
    assert!(whole.weirds.is_empty(), "{:?}", whole.weirds);
    let q = &whole.ex[1];
    assert_eq!(
        q.fields.text("frontend_arg").map(<[u8]>::len),
        Some(MAX_SQL),
        "the long query is kept up to MAX_SQL"
    );
    assert_eq!(b(q, "query_truncated"), Some(true));
    assert_eq!(q.fields.u64("data_rows"), Some(1));
    assert_eq!(whole.ex[2].fields.u64("data_rows"), Some(2));
    assert_eq!(b(&whole.ex[3], "success"), Some(false));
    for other in [&bytewise, &thirds] {
        assert_eq!(other.weirds, whole.weirds);
        assert_eq!(other.ex.len(), whole.ex.len());
        for (a, b) in whole.ex.iter().zip(&other.ex) {
            assert_eq!(a.fields, b.fields);
            assert_eq!(a.outcome, b.outcome);
        }
    }
}
