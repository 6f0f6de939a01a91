//! Literal-byte tests for the Redis parser. Each conversation also runs with its bytes
//! delivered one at a time, which must not change the result.

use std::sync::Arc;

use super::message::tokenize_inline;
use super::probe::{COMMANDS, probe};
use super::zeek::{summarize, zeek_row};
use super::*;
use crate::l7::{MatchStats, Matcher, Probe, ProbeInput, ZVal};
use crate::model::{ConnInfo, Exchange, Outcome};

use crate::l7::harness::{Run, Step, drive};
use Step::{C, GapC, GapS, S};

fn conn() -> Arc<ConnInfo> {
    crate::l7::harness::conn(6379)
}

fn run_with(steps: &[Step<'_>], bytewise: bool) -> Run {
    let mut r = drive(&mut Redis::default(), "redis", conn(), steps, bytewise);
    r.check();
    r.ex.sort_by_key(|e| (e.ts, e.depth));
    r
}

/// Runs whole and byte by byte; both must agree.
fn run(steps: &[Step<'_>]) -> Run {
    let a = run_with(steps, false);
    let b = run_with(steps, true);
    let key = |r: &Run| {
        r.ex.iter()
            .map(|e| (e.outcome, e.fields.clone()))
            .collect::<Vec<_>>()
    };
    assert_eq!(
        key(&a),
        key(&b),
        "byte-at-a-time delivery changed the result"
    );
    assert_eq!(a.state, b.state);
    a
}

fn t<'a>(e: &'a Exchange, k: &str) -> Option<&'a str> {
    e.fields.text(k).map(|b| std::str::from_utf8(b).unwrap())
}

fn ok(e: &Exchange) -> Option<bool> {
    match e.fields.get("success") {
        Some(Value::Bool(b)) => Some(*b),
        _ => None,
    }
}

/// (command, reply value, success) per exchange, in order.
fn rows(r: &Run) -> Vec<(Option<&str>, Option<&str>, Option<bool>)> {
    r.ex.iter()
        .map(|e| (t(e, "command"), t(e, "reply_value"), ok(e)))
        .collect()
}

/// One reply of each RESP type, rendered as Zeek renders it.
#[test]
fn every_reply_type() {
    let cases: &[(&[u8], &str, &str, bool)] = &[
        (b"+OK\r\n", "simple_string", "OK", true),
        (
            b"-ERR unknown command 'x'\r\n",
            "error",
            "ERR unknown command 'x'",
            false,
        ),
        (b":-42\r\n", "integer", "-42", true),
        (b"$5\r\nhello\r\n", "bulk_string", "hello", true),
        (b"$0\r\n\r\n", "bulk_string", "", true),
        (b"$-1\r\n", "null", "", true),
        (b"*-1\r\n", "null", "[]", true),
        (b"*0\r\n", "array", "[]", true),
        (
            b"*3\r\n$1\r\na\r\n:2\r\n*1\r\n+c\r\n",
            "array",
            "[a, 2, [c]]",
            true,
        ),
        (b"_\r\n", "null", "null", true),
        (b"#t\r\n", "boolean", "T", true),
        (b"#f\r\n", "boolean", "F", true),
        (b",3.14\r\n", "double", "3.14", true),
        (b",-inf\r\n", "double", "-inf", true),
        (
            b"(3492890328409238509324850943850943825024385\r\n",
            "big_number",
            "3492890328409238509324850943850943825024385",
            true,
        ),
        (
            b"!21\r\nSYNTAX invalid syntax\r\n",
            "bulk_error",
            "SYNTAX invalid syntax",
            false,
        ),
        (
            b"=15\r\ntxt:Some string\r\n",
            "verbatim_string",
            "txt:Some string",
            true,
        ),
        (
            b"%2\r\n+first\r\n:1\r\n$6\r\nsecond\r\n#f\r\n",
            "map",
            "{first: 1, second: F}",
            true,
        ),
        (b"~3\r\n+a\r\n:1\r\n_\r\n", "set", "(a, 1, null)", true),
        (
            b"*2\r\n%1\r\n+k\r\n~1\r\n:1\r\n_\r\n",
            "array",
            "[{k: (1)}, null]",
            true,
        ),
    ];
    for (reply, ty, value, success) in cases {
        let r = run(&[C(b"*1\r\n$4\r\nPING\r\n"), S(reply)]);
        assert_eq!(r.ex.len(), 1, "{}", String::from_utf8_lossy(reply));
        let e = &r.ex[0];
        assert_eq!(
            e.outcome,
            Outcome::Complete,
            "{}",
            String::from_utf8_lossy(reply)
        );
        assert_eq!(
            t(e, "reply_type"),
            Some(*ty),
            "{}",
            String::from_utf8_lossy(reply)
        );
        assert_eq!(
            t(e, "reply_value"),
            Some(*value),
            "{}",
            String::from_utf8_lossy(reply)
        );
        assert_eq!(ok(e), Some(*success), "{}", String::from_utf8_lossy(reply));
        assert_eq!(t(e, "error").is_some(), !*success);
        assert!(r.weirds.is_empty(), "{:?}", r.weirds);
    }
}

/// An attribute annotates the value after it: it is not the reply, and the reply after it
/// is one message.
#[test]
fn attributes_precede_their_value() {
    let r = run(&[
        C(b"*1\r\n$4\r\nPING\r\n*1\r\n$4\r\nPING\r\n"),
        S(b"|1\r\n+key-popularity\r\n%1\r\n$1\r\na\r\n,0.19\r\n*2\r\n:2039123\r\n|1\r\n+ttl\r\n:3600\r\n:9543892\r\n+PONG\r\n"),
    ]);
    assert_eq!(
        rows(&r),
        vec![
            (Some("PING"), Some("[2039123, 9543892]"), Some(true)),
            (Some("PING"), Some("PONG"), Some(true)),
        ]
    );
    assert_eq!(
        t(&r.ex[0], "reply_attributes"),
        Some("{key-popularity: {a: 0.19}}")
    );
    assert_eq!(t(&r.ex[0], "reply_type"), Some("array"));
    assert_eq!(t(&r.ex[1], "reply_attributes"), None);
}

#[test]
fn set_and_get_fields() {
    let r = run(&[
        C(b"*5\r\n$3\r\nset\r\n$3\r\nfoo\r\n$3\r\nbar\r\n$2\r\nEX\r\n$2\r\n10\r\n"),
        S(b"+OK\r\n"),
        C(b"*2\r\n$3\r\nGET\r\n$3\r\nfoo\r\n"),
        S(b"$3\r\nbar\r\n"),
        C(b"*3\r\n$5\r\nLPUSH\r\n$1\r\nl\r\n$1\r\nx\r\n"),
        S(b":1\r\n"),
        C(b"*3\r\n$6\r\nCLIENT\r\n$7\r\nsetname\r\n$1\r\nx\r\n"),
        S(b"+OK\r\n"),
    ]);
    let e = &r.ex;
    assert_eq!(t(&e[0], "command"), Some("set"));
    assert_eq!(t(&e[0], "key"), Some("foo"));
    assert_eq!(t(&e[0], "value"), Some("bar"));
    assert_eq!(e[0].fields.u64("args"), Some(4));
    assert_eq!(t(&e[1], "key"), Some("foo"));
    assert_eq!(t(&e[1], "value"), None);
    assert_eq!(t(&e[1], "reply_value"), Some("bar"));
    assert_eq!(t(&e[2], "key"), Some("l"));
    assert_eq!(t(&e[3], "subcommand"), Some("SETNAME"));
    for x in e {
        assert_eq!(x.outcome, Outcome::Complete);
        assert!(x.latency_ns().is_some());
    }
    // Zeek logs LPUSH without a key (its analyzer does not know LPUSH's).
    let mut row = Vec::new();
    zeek_row(&e[2], &mut row);
    assert_eq!(row[1], ZVal::Unset);
    row.clear();
    zeek_row(&e[0], &mut row);
    assert_eq!(
        row,
        vec![
            ZVal::Text(b"set"[..].into()),
            ZVal::Text(b"foo"[..].into()),
            ZVal::Text(b"bar"[..].into()),
            ZVal::Bool(true),
            ZVal::Text(b"OK"[..].into()),
        ]
    );
    let s = summarize(&e[3]);
    assert_eq!(s.endpoint, "CLIENT SETNAME");
    assert_eq!(s.status.as_deref(), Some("ok"));
}

/// A 1 MiB value arriving in 1000 pieces: nothing is buffered, the fields keep a prefix.
#[test]
fn large_bulk_split_across_many_segments() {
    let value = vec![b'v'; 1 << 20];
    let head = format!("*3\r\n$3\r\nSET\r\n$3\r\nbig\r\n${}\r\n", value.len());
    let mut p = Redis::default();
    let mut out = Emitter::default();
    p.data(Dir::ToServer, 1, head.as_bytes(), &mut out);
    for (i, chunk) in value.chunks(1000).enumerate() {
        p.data(Dir::ToServer, 2 + i as u64, chunk, &mut out);
        assert!(p.readers[0].buffered() <= 1024, "reader buffers data");
        assert!(p.req.cur.raw.iter().all(|a| a.len() <= MAX_VALUE));
    }
    p.data(Dir::ToServer, 5000, b"\r\n", &mut out);
    let reply = format!("${}\r\n", value.len());
    p.data(Dir::ToClient, 6000, b"+OK\r\n", &mut out);
    assert!(out.weirds.is_empty());
    // The reply to a GET of it, in pieces too.
    p.data(
        Dir::ToServer,
        7000,
        b"*2\r\n$3\r\nGET\r\n$3\r\nbig\r\n",
        &mut out,
    );
    p.data(Dir::ToClient, 8000, reply.as_bytes(), &mut out);
    for chunk in value.chunks(1461) {
        p.data(Dir::ToClient, 8001, chunk, &mut out);
        assert!(p.readers[1].buffered() <= 1024);
        assert!(p.rep.cur.value.0.len() <= MAX_VALUE);
    }
    p.data(Dir::ToClient, 9000, b"\r\n", &mut out);
    let mut m = Matcher::new("redis", conn());
    let (mut st, mut ex) = (MatchStats::default(), Vec::new());
    m.feed(&mut out, &mut st, &mut ex);
    assert_eq!(ex.len(), 2);
    assert_eq!(ex[0].fields.text("value").map(<[u8]>::len), Some(MAX_VALUE));
    assert_eq!(ex[0].request.unwrap().end, Some(5000));
    assert_eq!(
        ex[1].fields.text("reply_value").map(<[u8]>::len),
        Some(MAX_VALUE)
    );
    assert_eq!(ex[1].response.unwrap().start, 8000);
    assert_eq!(ex[1].response.unwrap().end, Some(9000));
    assert!(ex.iter().all(|e| e.outcome == Outcome::Complete));
}

#[test]
fn pipelined_commands_pair_in_order() {
    let r = run(&[
        C(b"*1\r\n$4\r\nPING\r\n*2\r\n$3\r\nGET\r\n$1\r\na\r\n*2\r\n$4\r\nINCR\r\n$1\r\na\r\n"),
        S(b"+PONG\r\n$-1\r\n"),
        S(b"-WRONGTYPE Operation against a key holding the wrong kind of value\r\n"),
    ]);
    assert_eq!(
        rows(&r),
        vec![
            (Some("PING"), Some("PONG"), Some(true)),
            (Some("GET"), Some(""), Some(true)),
            (
                Some("INCR"),
                Some("WRONGTYPE Operation against a key holding the wrong kind of value"),
                Some(false)
            ),
        ]
    );
    let s = summarize(&r.ex[2]);
    assert_eq!((s.status.as_deref(), s.failed), (Some("WRONGTYPE"), true));
    assert_eq!(s.endpoint, "INCR");
}

/// `CLIENT REPLY` as Redis applies it (and as Zeek's client-skip-while-off test expects).
#[test]
fn client_reply_off_skip_on() {
    let r = run(&[
        C(b"PING\r\n"),
        S(b"+PONG\r\n"),
        C(b"CLIENT REPLY OFF\r\nPING\r\nCLIENT REPLY SKIP\r\nCLIENT REPLY ON\r\n"),
        S(b"+OK\r\n"),
        C(b"client reply skip\r\nPING\r\nPING\r\n"),
        S(b"+PONG\r\n"),
        C(b"CLIENT REPLY SKIP\r\nCLIENT REPLY SKIP\r\nGET a\r\nPING\r\n"),
        S(b"+PONG\r\n"),
    ]);
    let got: Vec<_> =
        r.ex.iter()
            .map(|e| {
                (
                    t(e, "command").unwrap(),
                    t(e, "reply_value"),
                    t(e, "no_reply"),
                )
            })
            .collect();
    assert_eq!(
        got,
        vec![
            ("PING", Some("PONG"), None),
            ("CLIENT", None, Some("client_reply_off")),
            ("PING", None, Some("client_reply_off")),
            ("CLIENT", None, Some("client_reply_off")),
            ("CLIENT", Some("OK"), None),
            ("client", None, Some("client_reply_skip")),
            ("PING", None, Some("client_reply_skip")),
            ("PING", Some("PONG"), None),
            ("CLIENT", None, Some("client_reply_skip")),
            ("CLIENT", None, Some("client_reply_skip")),
            ("GET", None, Some("client_reply_skip")),
            ("PING", Some("PONG"), None),
        ]
    );
    for e in &r.ex {
        let want = if e.response.is_some() {
            Outcome::Complete
        } else {
            Outcome::NoResponse
        };
        assert_eq!(e.outcome, want);
    }
    assert!(r.weirds.is_empty());
}

/// RESP2 pub/sub: the confirmations and messages are pushes; PING's answer in subscribed mode
/// and RESET's are replies.
#[test]
fn pubsub_pushes_are_not_replies() {
    let r = run(&[
        C(b"*3\r\n$9\r\nSUBSCRIBE\r\n$3\r\nFoo\r\n$3\r\nBar\r\n"),
        S(b"*3\r\n$9\r\nsubscribe\r\n$3\r\nFoo\r\n:1\r\n*3\r\n$9\r\nsubscribe\r\n$3\r\nBar\r\n:2\r\n"),
        S(b"*3\r\n$7\r\nmessage\r\n$3\r\nFoo\r\n$2\r\nhi\r\n"),
        C(b"*1\r\n$4\r\nPING\r\n"),
        S(b"*4\r\n$8\r\npmessage\r\n$2\r\nF*\r\n$3\r\nFoo\r\n$2\r\nyo\r\n*2\r\n$4\r\npong\r\n$0\r\n\r\n"),
        C(b"*1\r\n$5\r\nRESET\r\n"),
        S(b"+RESET\r\n"),
        C(b"*2\r\n$3\r\nGET\r\n$1\r\nk\r\n"),
        S(b"$1\r\nv\r\n"),
    ]);
    assert_eq!(
        rows(&r),
        vec![
            (Some("SUBSCRIBE"), None, None),
            (Some("PING"), Some("[pong, ]"), Some(true)),
            (Some("RESET"), Some("RESET"), Some(true)),
            (Some("GET"), Some("v"), Some(true)),
        ]
    );
    assert_eq!(t(&r.ex[0], "no_reply"), Some("subscribe"));
    assert_eq!(r.ex[0].outcome, Outcome::NoResponse);
}

/// After the last unsubscribe, arrays that look like pushes are replies again.
#[test]
fn unsubscribing_everything_leaves_pubsub() {
    let r = run(&[
        C(b"SUBSCRIBE a\r\n"),
        S(b"*3\r\n$9\r\nsubscribe\r\n$1\r\na\r\n:1\r\n"),
        C(b"UNSUBSCRIBE\r\n"),
        S(b"*3\r\n$11\r\nunsubscribe\r\n$1\r\na\r\n:0\r\n"),
        C(b"LRANGE l 0 -1\r\n"),
        S(b"*3\r\n$7\r\nmessage\r\n$1\r\nx\r\n$1\r\ny\r\n"),
    ]);
    assert_eq!(r.ex.len(), 3);
    assert_eq!(t(&r.ex[2], "command"), Some("LRANGE"));
    assert_eq!(t(&r.ex[2], "reply_value"), Some("[message, x, y]"));
}

/// RESP3: HELLO 3 answers with a map; pushes (`>`) interleave with replies and are skipped.
#[test]
fn resp3_push_between_replies() {
    let r = run(&[
        C(b"*2\r\n$5\r\nHELLO\r\n$1\r\n3\r\n"),
        S(b"%2\r\n$6\r\nserver\r\n$5\r\nredis\r\n$5\r\nproto\r\n:3\r\n"),
        C(b"*2\r\n$3\r\nGET\r\n$1\r\nk\r\n*2\r\n$3\r\nGET\r\n$1\r\nj\r\n"),
        S(b">3\r\n$7\r\nmessage\r\n$1\r\nc\r\n$1\r\nm\r\n_\r\n>2\r\n$10\r\ninvalidate\r\n*1\r\n$1\r\nk\r\n$1\r\nv\r\n"),
    ]);
    assert_eq!(
        rows(&r),
        vec![
            (Some("HELLO"), Some("{server: redis, proto: 3}"), Some(true)),
            (Some("GET"), Some("null"), Some(true)),
            (Some("GET"), Some("v"), Some(true)),
        ]
    );
}

#[test]
fn monitor_feed_is_not_replies() {
    let r = run(&[
        C(b"MONITOR\r\n"),
        S(b"+OK\r\n+1700000000.123456 [0 10.0.0.9:5000] \"get\" \"k\"\r\n"),
        S(b"+1700000001.000001 [0 10.0.0.9:5000] \"ping\"\r\n"),
        C(b"QUIT\r\n"),
        S(b"+OK\r\n"),
    ]);
    assert_eq!(
        rows(&r),
        vec![
            (Some("MONITOR"), Some("OK"), Some(true)),
            (Some("QUIT"), Some("OK"), Some(true)),
        ]
    );
}

#[test]
fn inline_tokens_keep_their_quotes() {
    let cases: &[(&[u8], &[&str])] = &[
        (b"SET key \"my value\"", &["SET", "key", "\"my value\""]),
        (b"  PING\t", &["PING"]),
        (b"SET k 'a \\'b\\' c'", &["SET", "k", "'a \\'b\\' c'"]),
        (
            b"SET k \"a \\\"b\\\" c\"",
            &["SET", "k", "\"a \\\"b\\\" c\""],
        ),
        (
            b"SET bad \"unclosed quotes",
            &["SET", "bad", "\"unclosed quotes"],
        ),
        (b"SET a\"b c\"d e", &["SET", "a\"b c\"d", "e"]),
        (b"", &[]),
    ];
    for (line, want) in cases {
        let mut got = Vec::new();
        tokenize_inline(line, |t| got.push(String::from_utf8_lossy(t).into_owned()));
        assert_eq!(&got, want, "{}", String::from_utf8_lossy(line));
    }
    let r = run(&[
        C(b"SET key5 \"my value with \\\"escaped\\\" quotes\"\r\n\r\nGET key5\n"),
        S(b"+OK\r\n$5\r\nvalue\r\n"),
    ]);
    assert_eq!(
        t(&r.ex[0], "value"),
        Some("\"my value with \\\"escaped\\\" quotes\"")
    );
    assert_eq!(r.ex[0].fields.get("inline"), Some(&Value::Bool(true)));
    assert_eq!(t(&r.ex[1], "key"), Some("key5"));
    assert_eq!(t(&r.ex[1], "reply_value"), Some("value"));
}

/// Zeek's pipeline-with-quotes trace: the server answers the unbalanced quote with an error
/// and closes; the command after it gets nothing.
#[test]
fn server_closes_with_commands_pending() {
    let r = run(&[
        C(b"SET a 1\r\nSET bad1 \"unclosed\r\nSET bad2 'unclosed\r\n"),
        S(b"+OK\r\n-ERR Protocol error: unbalanced quotes in request\r\n"),
    ]);
    assert_eq!(
        rows(&r),
        vec![
            (Some("SET"), Some("OK"), Some(true)),
            (
                Some("SET"),
                Some("ERR Protocol error: unbalanced quotes in request"),
                Some(false)
            ),
            (Some("SET"), None, None),
        ]
    );
    assert_eq!(r.ex[2].outcome, Outcome::NoResponse);
}

/// Malformed input: counted, the connection given up, never a panic; commands still waiting
/// are written unanswered.
#[test]
fn malformed_input_gives_up() {
    let cases: &[(&[Step<'_>], &str)] = &[
        (
            &[C(b"AUTH x\r\nPING\r\n"), S(b"+OK\r\n+OK\r\nnot RESP\r\n")],
            "redis_bad_type",
        ),
        (&[C(b"*2\r\n+GET\r\n")], "redis_expected_bulk_string"),
        (&[C(b"*x\r\n")], "redis_bad_length"),
        (&[C(b"*1\r\n$-5\r\n")], "redis_bad_length"),
        (&[C(b"*1\r\n$3\r\nGETxx")], "redis_bad_bulk_terminator"),
        (&[C(b"PING\r\n"), S(b":12a\r\n")], "redis_bad_value"),
        (&[C(b"PING\r\n"), S(b"#x\r\n")], "redis_bad_value"),
        (&[C(b"PING\r\n"), S(b"%-1\r\n")], "redis_bad_length"),
        (
            &[
                C(b"PING\r\n"),
                S(b"$12345678901234567890123456789012345\r\n"),
            ],
            "redis_line_too_long",
        ),
    ];
    for (steps, weird) in cases {
        let r = run(steps);
        assert_eq!(r.state, ParserState::GaveUp, "{weird}");
        assert!(r.weirds.contains(weird), "{weird}: {:?}", r.weirds);
    }
    // The almost-redis trace: what came before the garbage is kept.
    let r = run(&[
        C(b"AUTH x\r\nPING\r\nGET k\r\n"),
        S(b"+OK\r\n+PONG\r\nnot RESP\r\n"),
    ]);
    assert_eq!(
        rows(&r),
        vec![
            (Some("AUTH"), Some("OK"), Some(true)),
            (Some("PING"), Some("PONG"), Some(true)),
            (Some("GET"), None, None),
        ]
    );
}

#[test]
fn absurd_lengths_are_errors() {
    let cases: &[(&[u8], bool, &str)] = &[
        (b"*1\r\n$536870913\r\n", true, "redis_absurd_length"),
        (b"*2147483648\r\n", true, "redis_absurd_length"),
        (b"$9999999999\r\n", false, "redis_absurd_length"),
        (b"*4294967296\r\n", false, "redis_absurd_length"),
        (b"%4294967296\r\n", false, "redis_absurd_length"),
        (b"*99999999999999999999\r\n", false, "redis_bad_length"),
    ];
    for (bytes, client, weird) in cases {
        let steps: Vec<Step<'_>> = if *client {
            vec![C(bytes)]
        } else {
            vec![C(b"PING\r\n"), S(bytes)]
        };
        let r = run(&steps);
        assert_eq!(r.state, ParserState::GaveUp, "{weird}");
        assert!(
            r.weirds.contains(weird),
            "{}: {:?}",
            String::from_utf8_lossy(bytes),
            r.weirds
        );
    }
    // A bulk just under the limit is fine (and costs nothing until its bytes arrive).
    let r = run(&[C(b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$536870912\r\nabc")]);
    assert_eq!(r.state, ParserState::Active);
    assert_eq!(r.ex[0].outcome, Outcome::NoResponse);
    assert_eq!(t(&r.ex[0], "value"), Some("abc"));
    assert!(!r.ex[0].request.unwrap().complete);
}

#[test]
fn deep_nesting_and_long_lines_are_bounded() {
    let deep = "*1\r\n".repeat(resp::MAX_DEPTH + 1);
    let r = run_with(&[C(b"PING\r\n"), S(deep.as_bytes())], false);
    assert!(r.weirds.contains(&"redis_nesting_too_deep"));
    let ok = "*1\r\n".repeat(resp::MAX_DEPTH) + ":1\r\n";
    let r = run_with(&[C(b"PING\r\n"), S(ok.as_bytes())], false);
    assert_eq!(r.state, ParserState::Active);
    let want = "[".repeat(resp::MAX_DEPTH) + "1" + &"]".repeat(resp::MAX_DEPTH);
    assert_eq!(t(&r.ex[0], "reply_value"), Some(want.as_str()));
    // An inline line past Redis's 64 KiB limit.
    let long = vec![b'a'; resp::MAX_INLINE + 10];
    let r = run_with(&[C(&long)], false);
    assert!(r.weirds.contains(&"redis_line_too_long"));
    // A long simple string is read through, its start kept.
    let mut s = b"+".to_vec();
    s.extend(std::iter::repeat_n(b'x', 100_000));
    s.extend_from_slice(b"\r\n");
    let r = run_with(&[C(b"PING\r\n"), S(&s)], false);
    assert_eq!(r.state, ParserState::Active);
    assert_eq!(t(&r.ex[0], "reply_value").map(str::len), Some(MAX_VALUE));
}

/// A gap inside a bulk payload long enough to hold it: the framing is kept, the message is
/// marked cut short, the next exchanges are whole.
#[test]
fn gap_inside_bulk_keeps_sync() {
    let r = run(&[
        C(b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$10\r\nab"),
        GapC(5),
        C(b"cde\r\n*1\r\n$4\r\nPING\r\n"),
        S(b"+OK\r\n$6\r\nfo"),
        GapS(3),
        S(b"o\r\n"),
    ]);
    assert_eq!(r.state, ParserState::Active);
    assert_eq!(
        rows(&r),
        vec![
            (Some("SET"), Some("OK"), Some(true)),
            (Some("PING"), Some("fo"), Some(true)),
        ]
    );
    // The value keeps what came before the gap only.
    assert_eq!(t(&r.ex[0], "value"), Some("ab"));
    assert_eq!(r.ex[0].outcome, Outcome::Truncated);
    assert_eq!(r.ex[1].outcome, Outcome::Truncated);
    assert_eq!(r.weirds, vec!["redis_content_gap", "redis_content_gap"]);
}

/// Any other gap loses the framing and the count of replies owed: the connection is given
/// up, what was waiting is written unanswered, nothing after the gap is made up.
#[test]
fn gap_outside_bulk_gives_up() {
    for steps in [
        &[
            C(b"*1\r\n$4\r\nPING\r\n*2\r\n$3\r\nGET\r\n$1\r\nk\r\n"),
            S(b"+PONG\r\n"),
            GapS(20),
            S(b"$1\r\nv\r\n"),
        ][..],
        &[
            C(b"*1\r\n$4\r\nPING\r\n"),
            GapC(30),
            C(b"*2\r\n$3\r\nGET\r\n$1\r\nk\r\n"),
            S(b"+PONG\r\n$1\r\nv\r\n"),
        ][..],
        &[
            C(b"*2\r\n$3\r\nGET\r\n$2\r\nab\r\n"),
            S(b"$3\r\nxy"),
            GapS(10),
            S(b"\r\n"),
        ][..],
    ] {
        let r = run(steps);
        assert_eq!(r.state, ParserState::GaveUp);
        assert!(r.weirds.contains(&"redis_gap_lost_sync"), "{:?}", r.weirds);
        assert!(r.ex.len() <= 2);
        assert!(r.ex.iter().all(|e| t(e, "reply_value") != Some("v")));
    }
}

#[test]
fn ends_cut_messages_short() {
    // The server's stream ends inside a reply: the exchange is truncated.
    let r = run(&[C(b"*2\r\n$3\r\nGET\r\n$1\r\nk\r\n"), S(b"$100\r\nabc")]);
    assert_eq!(rows(&r), vec![(Some("GET"), Some("abc"), Some(true))]);
    assert_eq!(r.ex[0].outcome, Outcome::Truncated);
    // The client's stream ends inside a command: written unanswered, cut short.
    let r = run(&[C(b"*2\r\n$3\r\nGET\r\n$5\r\nab"), S(b"")]);
    assert_eq!(rows(&r), vec![(Some("GET"), None, None)]);
    assert_eq!(r.ex[0].outcome, Outcome::NoResponse);
    assert!(!r.ex[0].request.unwrap().complete);
    // An inline command without its line end.
    let r = run(&[C(b"PING")]);
    assert_eq!(rows(&r), vec![(Some("PING"), None, None)]);
}

#[test]
fn reply_without_command_is_an_orphan() {
    let r = run(&[S(b"+OK\r\n"), C(b"PING\r\n"), S(b"+PONG\r\n")]);
    assert_eq!(r.ex[0].outcome, Outcome::NoRequest);
    assert_eq!(t(&r.ex[0], "reply_value"), Some("OK"));
    assert_eq!(r.ex[1].outcome, Outcome::Complete);
    assert_eq!(summarize(&r.ex[0]).endpoint, "(no command)");
}

/// More commands in flight than [`MAX_PENDING`]: the oldest are written unanswered and their
/// replies skipped, so the rest still pair correctly.
#[test]
fn excessive_pipelining_is_bounded() {
    let n = MAX_PENDING + 100;
    let mut cmds = Vec::new();
    let mut replies = Vec::new();
    for i in 0..n {
        let k = i.to_string();
        cmds.extend_from_slice(format!("*2\r\n$3\r\nGET\r\n${}\r\n{k}\r\n", k.len()).as_bytes());
        replies.extend_from_slice(format!("${}\r\n{k}\r\n", k.len()).as_bytes());
    }
    let r = run_with(&[C(&cmds), S(&replies)], false);
    assert_eq!(r.weirds.len(), 100);
    assert!(r.weirds.iter().all(|w| *w == "redis_excessive_pipelining"));
    let answered: Vec<_> =
        r.ex.iter()
            .filter(|e| e.outcome == Outcome::Complete)
            .collect();
    assert_eq!(answered.len(), MAX_PENDING);
    for e in answered {
        // Each GET got the reply the server gave to it: the key's own name.
        assert_eq!(t(e, "key"), t(e, "reply_value"));
        assert!(t(e, "key").unwrap().parse::<usize>().unwrap() >= 100);
    }
    let unanswered =
        r.ex.iter()
            .filter(|e| e.outcome == Outcome::NoResponse)
            .count();
    assert_eq!(unanswered, 100);
}

#[test]
fn empty_commands_are_skipped() {
    let r = run(&[C(b"*0\r\n\r\n*-1\r\nPING\r\n"), S(b"+PONG\r\n")]);
    assert_eq!(rows(&r), vec![(Some("PING"), Some("PONG"), Some(true))]);
}

#[test]
fn probe_decides_on_content() {
    let p = |c: &[u8], s: &[u8], port: u16| {
        probe(&ProbeInput {
            to_server: c,
            to_client: s,
            server_port: port,
            transport: Transport::Tcp,
        })
    };
    use Probe::{NeedMore, No, Yes};
    let cases: &[(&[u8], &[u8], Probe)] = &[
        (b"*1\r\n$4\r\nPING\r\n", b"", Yes),
        (b"*3\r\n$3\r\nSET\r\n", b"HTTP/1.1 400", Yes),
        (b"*1\r", b"", NeedMore),
        (b"*1\r\n", b"", NeedMore),
        (b"*1\r\n+", b"", No),
        (b"*x", b"", No),
        (b"PING\r\n", b"+PONG\r\n", Yes),
        (b"PING\r\n", b"", NeedMore),
        (b"PING\r\n", b"HTTP/1.1 200 OK\r\n", No),
        (b"PUBLISH Foo \"Hi\"\r\n", b":2\r\n", Yes),
        (b"AUTH x y\r\n", b"-ERR invalid password\r\n", Yes),
        (b"get key\r\n", b"", Yes),
        (b"GET key\r\n", b"$-1\r\n", Yes),
        (b"GET / HTTP/1.1\r\nHost: x\r\n", b"", No),
        (b"GET /index.html\r\n", b"", No),
        (b"POST / HTTP/1.1\r\n", b"", No),
        (b"EHLO mail\r\n", b"220 mx\r\n", No),
        // POP3: the server speaks first, in sentences.
        (b"", b"+OK Dovecot ready.\r\n", NeedMore),
        (b"USER bob\r\n", b"+OK Dovecot ready.\r\n", No),
        (b"QUIT\r\n", b"+OK Dovecot ready.\r\n", NeedMore),
        (b"", b"", NeedMore),
        (b"\x16\x03\x01\x02\x00", b"", No),
        (b"", b"\x16\x03\x03", No),
        (b"PI", b"", NeedMore),
        (b"HELLO 3\r\n", b"%7\r\n", Yes),
        (b"PING\r\n", b">3\r", NeedMore),
        // Not a Redis command: Redis on Redis's port when the server answers in RESP.
        (b"FAKE COMMAND\r\n", b"*3\r\n:1\r\n", Yes),
        (b"FAKE2 COMMAND2\r\n", b"|1\r\n+key-popularity\r\n", Yes),
        (b"FAKE COMMAND\r\n", b"", NeedMore),
        (b"FAKE COMMAND\r\n", b"+hello world\r\n", No),
        (b"FAKE \x01\r\n", b"*3\r\n", No),
    ];
    for (c, s, want) in cases {
        assert_eq!(
            p(c, s, 6379),
            *want,
            "{:?} / {:?}",
            String::from_utf8_lossy(c),
            String::from_utf8_lossy(s)
        );
    }
    // Elsewhere an unknown command is not Redis, whatever the answer.
    assert_eq!(p(b"FAKE COMMAND\r\n", b"*3\r\n:1\r\n", 7000), No);
    assert_eq!(p(b"FAKE COMMAND\r\n", b"", 7000), No);
    // Redis comes before HTTP in the registry: HTTP keeps its connections.
    let input = ProbeInput {
        to_server: b"GET / HTTP/1.1\r\nHost: a\r\n\r\n",
        to_client: b"",
        server_port: 6379,
        transport: Transport::Tcp,
    };
    assert_eq!(
        crate::proto::detect(&input, false).map(|r| r.map(|p| p.proto.name)),
        Some(Ok("http"))
    );
    let input = ProbeInput {
        to_server: b"GET k\r\n",
        to_client: b"",
        server_port: 80,
        transport: Transport::Tcp,
    };
    assert_eq!(
        crate::proto::detect(&input, false).map(|r| r.map(|p| p.proto.name)),
        Some(Ok("redis"))
    );
}

#[test]
fn commands_list_is_sorted() {
    assert!(COMMANDS.windows(2).all(|w| w[0] < w[1]));
}

/// A command Redis does not know, on Redis's port, answered in RESP, with a stray line feed
/// after the reply (as in Zeek's redis/attr.pcap): the exchange is logged, then the parser
/// gives up on the byte no RESP value begins with.
#[test]
fn unknown_inline_command_then_stray_line_feed() {
    let r = run_with(
        &[
            C(b"FAKE COMMAND\r\n"),
            S(b"*3\r\n:1\r\n:2\r\n|1\r\n+ttl\r\n:3600\r\n:3\r\n\n"),
        ],
        false,
    );
    assert_eq!(
        rows(&r),
        vec![(Some("FAKE"), Some("[1, 2, 3]"), Some(true))]
    );
    assert_eq!(r.state, ParserState::GaveUp);
}
