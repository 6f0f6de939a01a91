//! Sessions: logins (trust, SASL, MD5, refused, SSL and GSSAPI requests, cancel requests),
//! simple and extended queries with their errors, notices and command tags, COPY both ways,
//! pipelining and asynchronous messages.

use super::*;

#[test]
fn trust_login_and_simple_select() {
    let mut steps = login().to_vec();
    steps.push((C, query("SELECT n FROM t")));
    steps.push((
        S,
        cat(&[
            row_description(),
            data_row(&[b"1"]),
            data_row(&[b"2"]),
            complete("SELECT 2"),
            ready(b'I'),
        ]),
    ));
    steps.push((C, msg(b'X', &[])));
    let r = run(steps.clone());
    assert!(r.weirds.is_empty(), "{:?}", r.weirds);
    assert_eq!(r.ex.len(), 3);
    let s = &r.ex[0];
    assert_eq!(s.outcome, Outcome::Complete);
    assert_eq!(t(s, "frontend"), Some("startup"));
    assert_eq!(t(s, "user"), Some("alice"));
    assert_eq!(t(s, "database"), Some("shop"));
    assert_eq!(t(s, "backend"), Some("auth_ok"));
    assert_eq!(t(s, "server_version"), Some("15.8"));
    assert_eq!(s.fields.u64("backend_pid"), Some(12345));
    assert_eq!(t(s, "transaction_status"), Some("I"));
    let q = &r.ex[1];
    assert_eq!(q.outcome, Outcome::Complete);
    assert_eq!(t(q, "frontend_arg"), Some("SELECT n FROM t"));
    assert_eq!(
        t(q, "user"),
        Some("alice"),
        "session fields on every exchange"
    );
    assert_eq!(q.fields.u64("data_rows"), Some(2));
    assert_eq!(q.fields.u64("rows"), Some(2));
    assert_eq!(list(q, "command_tags"), vec!["SELECT 2"]);
    assert_eq!(b(q, "success"), Some(true));
    assert_eq!(
        zeek(q),
        [
            "alice",
            "shop",
            "-",
            "simple_query",
            "SELECT n FROM t",
            "-",
            "-",
            "T",
            "2"
        ]
    );
    assert_eq!(q.request.unwrap().start, at(2));
    assert_eq!(q.response.unwrap().end, Some(at(3)));
    let x = &r.ex[2];
    assert_eq!(t(x, "frontend"), Some("terminate"));
    assert_eq!(x.outcome, Outcome::NoResponse);
    assert_eq!(zeek(x)[3..], ["terminate", "-", "-", "-", "-", "-"]);
    let sum = summarize(q);
    assert_eq!(sum.endpoint, "simple_query SELECT");
    assert!(!sum.failed);

    // The same conversation one byte at a time: the same exchanges.
    let r2 = run_bytewise(steps);
    assert!(r2.weirds.is_empty(), "{:?}", r2.weirds);
    assert_eq!(r2.ex.len(), 3);
    for (a, b) in r.ex.iter().zip(&r2.ex) {
        assert_eq!(a.fields, b.fields);
        assert_eq!(a.outcome, b.outcome);
    }
}

#[test]
fn ssl_refused_then_sasl_login() {
    let r = run(vec![
        (C, SSL_REQUEST.to_vec()),
        (S, b"N".to_vec()),
        (
            C,
            startup(&[
                ("user", "bob"),
                ("database", "db"),
                ("application_name", "psql"),
                ("client_encoding", "UTF8"),
            ]),
        ),
        (S, auth(10, b"SCRAM-SHA-256-PLUS\0SCRAM-SHA-256\0\0")),
        (
            C,
            msg(
                b'p',
                b"SCRAM-SHA-256\0\0\0\0\x20n,,n=,r=secret-nonce-not-logged",
            ),
        ),
        (S, auth(11, b"r=nonce,s=salt,i=4096")),
        (C, msg(b'p', b"c=biws,r=nonce,p=proof")),
        (S, cat(&[auth(12, b"v=sig"), auth(0, &[]), ready(b'I')])),
    ]);
    assert!(r.weirds.is_empty(), "{:?}", r.weirds);
    assert_eq!(r.ex.len(), 2);
    let ssl = &r.ex[0];
    assert_eq!(
        zeek(ssl),
        [
            "-",
            "-",
            "-",
            "ssl_request",
            "-",
            "ssl_reply",
            "N",
            "F",
            "-"
        ]
    );
    assert_eq!(ssl.outcome, Outcome::Complete);
    let s = &r.ex[1];
    assert_eq!(
        zeek(s),
        [
            "bob",
            "db",
            "psql",
            "startup",
            "-",
            "auth_ok",
            "SASL,SASLContinue,SASLFinal",
            "T",
            "-"
        ]
    );
    assert_eq!(list(s, "parameters"), vec!["client_encoding=UTF8"]);
    assert_eq!(t(s, "sasl_mechanism"), Some("SCRAM-SHA-256"));
    assert_eq!(
        list(s, "sasl_mechanisms"),
        vec!["SCRAM-SHA-256-PLUS", "SCRAM-SHA-256"]
    );
    // The request is the whole client side of the exchange (the startup, step 2, to the
    // SASLResponse, step 6), the response runs from the first request for a password (step 3);
    // credentials are never kept.
    assert_eq!(s.request.unwrap().start, at(2));
    assert_eq!(s.request.unwrap().end, Some(at(6)));
    assert_eq!(s.response.unwrap().start, at(3));
    let all = format!("{:?}", s.fields);
    assert!(!all.contains("nonce") && !all.contains("proof"));
}

#[test]
fn ssl_accepted_stops_parsing() {
    let r = run(vec![
        (C, SSL_REQUEST.to_vec()),
        (S, b"S".to_vec()),
        (C, vec![0x16, 3, 1, 0, 5, 1, 2, 3, 4, 5]),
    ]);
    assert_eq!(r.state, ParserState::Finished);
    assert_eq!(r.ex.len(), 1);
    assert_eq!(
        zeek(&r.ex[0]),
        [
            "-",
            "-",
            "-",
            "ssl_request",
            "-",
            "ssl_reply",
            "S",
            "T",
            "-"
        ]
    );
    // The server's S and the TLS ServerHello in one segment.
    let r = run(vec![
        (C, SSL_REQUEST.to_vec()),
        (S, b"S\x16\x03\x03\x00\x10".to_vec()),
    ]);
    assert_eq!(r.state, ParserState::Finished);
    assert!(r.weirds.is_empty());
}

#[test]
fn gssenc_refused_then_ssl_refused() {
    let r = run(vec![
        (C, GSSENC_REQUEST.to_vec()),
        (S, b"N".to_vec()),
        (C, SSL_REQUEST.to_vec()),
        (S, b"N".to_vec()),
        login()[0].clone(),
        login()[1].clone(),
    ]);
    assert!(r.weirds.is_empty(), "{:?}", r.weirds);
    let kinds: Vec<_> = r.ex.iter().map(|e| t(e, "frontend").unwrap()).collect();
    assert_eq!(kinds, ["gssenc_request", "ssl_request", "startup"]);
    assert_eq!(t(&r.ex[0], "backend"), Some("gssenc_reply"));
}

#[test]
fn cancel_request() {
    let mut body = vec![0x04, 0xd2, 0x16, 0x2e, 0, 0, 0x30, 0x39];
    body.extend_from_slice(&[9, 9, 9, 9]);
    let r = run(vec![(C, untyped(&body))]);
    assert!(r.weirds.is_empty());
    assert_eq!(r.ex.len(), 1);
    assert_eq!(t(&r.ex[0], "frontend"), Some("cancel_request"));
    assert_eq!(r.ex[0].fields.u64("process_id"), Some(12345));
    assert_eq!(r.ex[0].outcome, Outcome::NoResponse);
}

#[test]
fn login_refused() {
    // MD5 asked, password sent, refused: the error ends the exchange.
    let r = run(vec![
        (C, startup(&[("user", "eve")])),
        (S, auth(5, &[1, 2, 3, 4])),
        (C, msg(b'p', b"md5-not-kept\0")),
        (
            S,
            error(
                "FATAL",
                "28P01",
                "password authentication failed for user \"eve\"",
            ),
        ),
    ]);
    assert!(r.weirds.is_empty(), "{:?}", r.weirds);
    assert_eq!(r.ex.len(), 1);
    let e = &r.ex[0];
    assert_eq!(e.outcome, Outcome::Complete);
    assert_eq!(t(e, "backend"), Some("auth_request,error"));
    assert_eq!(
        t(e, "backend_arg"),
        Some(
            "MD5Password,SeverityLocalized=FATAL,Severity=FATAL,Code=28P01,Message=password authentication failed for user \"eve\""
        )
    );
    assert_eq!(b(e, "success"), Some(false));
    assert_eq!(t(e, "error_code"), Some("28P01"));
    let s = summarize(e);
    assert!(s.failed);
    assert_eq!(s.status.as_deref(), Some("FATAL 28P01"));
    assert!(!format!("{:?}", e.fields).contains("md5-not-kept"));
}

#[test]
fn startup_cut_off_while_authenticating() {
    // The client closes instead of answering the password request (psql -w).
    let r = run(vec![
        (C, startup(&[("user", "zeek")])),
        (S, auth(10, b"SCRAM-SHA-256\0\0")),
    ]);
    assert_eq!(r.ex.len(), 1);
    let e = &r.ex[0];
    assert_eq!(e.outcome, Outcome::Truncated);
    assert_eq!(
        zeek(e),
        [
            "zeek",
            "-",
            "-",
            "startup",
            "-",
            "auth_request",
            "SASL",
            "-",
            "-"
        ]
    );
}

#[test]
fn query_errors_notices_and_failed_transactions() {
    let mut steps = login().to_vec();
    steps.extend([
        (C, query("DROP TABLE IF EXISTS t")),
        (
            S,
            cat(&[
                notice("table \"t\" does not exist, skipping"),
                complete("DROP TABLE"),
                ready(b'I'),
            ]),
        ),
        (C, query("BEGIN")),
        (S, cat(&[complete("BEGIN"), ready(b'T')])),
        (C, query("SELECT 1/0")),
        (
            S,
            cat(&[
                row_description(),
                error("ERROR", "22012", "division by zero"),
                ready(b'E'),
            ]),
        ),
        (C, query("SELECT 1")),
        (
            S,
            cat(&[
                error("ERROR", "25P02", "current transaction is aborted"),
                ready(b'E'),
            ]),
        ),
        (C, query("ROLLBACK")),
        (S, cat(&[complete("ROLLBACK"), ready(b'I')])),
    ]);
    let r = run(steps);
    assert!(r.weirds.is_empty(), "{:?}", r.weirds);
    assert_eq!(r.ex.len(), 6);
    let n = &r.ex[1];
    assert_eq!(
        zeek(n)[5..],
        [
            "-",
            "SeverityLocalized=NOTICE,Code=00000,Message=table \"t\" does not exist, skipping",
            "T",
            "0"
        ]
    );
    assert_eq!(n.fields.u64("notices"), Some(1));
    assert!(n.fields.get("rows").is_none(), "DROP TABLE has no count");
    let e = &r.ex[3];
    assert_eq!(t(e, "error_code"), Some("22012"));
    assert_eq!(t(e, "error_severity"), Some("ERROR"));
    assert_eq!(t(e, "error_message"), Some("division by zero"));
    assert_eq!(t(e, "transaction_status"), Some("E"));
    assert_eq!(zeek(e)[5], "error");
    assert_eq!(zeek(e)[7..], ["F", "-"]);
    assert_eq!(summarize(e).status.as_deref(), Some("ERROR 22012"));
    assert_eq!(t(&r.ex[4], "error_code"), Some("25P02"));
    assert_eq!(b(&r.ex[5], "success"), Some(true));
}

#[test]
fn command_tags_give_rows() {
    let mut steps = login().to_vec();
    steps.extend([
        (C, query("INSERT INTO t VALUES (1); UPDATE t SET a = 2")),
        (
            S,
            cat(&[complete("INSERT 0 1"), complete("UPDATE 3"), ready(b'I')]),
        ),
        (C, query("")),
        (S, cat(&[msg(b'I', &[]), ready(b'I')])),
    ]);
    let r = run(steps);
    assert!(r.weirds.is_empty(), "{:?}", r.weirds);
    let q = &r.ex[1];
    assert_eq!(q.fields.u64("rows"), Some(4));
    assert_eq!(list(q, "command_tags"), vec!["INSERT 0 1", "UPDATE 3"]);
    assert_eq!(b(&r.ex[2], "empty_query"), Some(true));
    assert_eq!(summarize(&r.ex[2]).endpoint, "simple_query");
}

#[test]
fn extended_protocol_named_statements_and_portals() {
    let mut steps = login().to_vec();
    steps.extend([
        // Prepare a named statement (its own Sync cycle).
        (
            C,
            cat(&[parse("s1", "SELECT * FROM t WHERE id = $1"), sync()]),
        ),
        (S, cat(&[msg(b'1', &[]), ready(b'I')])),
        // Bind it to a named portal, describe, execute in two batches, close, sync.
        (
            C,
            cat(&[
                bind("p1", "s1"),
                describe(b'P', "p1"),
                execute("p1"),
                msg(b'H', &[]),
            ]),
        ),
        (
            S,
            cat(&[
                msg(b'2', &[]),
                row_description(),
                data_row(&[b"1"]),
                msg(b's', &[]),
            ]),
        ),
        (C, cat(&[execute("p1"), close(b'P', "p1"), sync()])),
        (
            S,
            cat(&[
                data_row(&[b"2"]),
                complete("SELECT 1"),
                msg(b'3', &[]),
                ready(b'I'),
            ]),
        ),
        // The unnamed statement and portal, one round trip.
        (
            C,
            cat(&[
                parse("", "UPDATE t SET x = $1"),
                bind("", ""),
                describe(b'P', ""),
                execute(""),
                sync(),
            ]),
        ),
        (
            S,
            cat(&[
                msg(b'1', &[]),
                msg(b'2', &[]),
                msg(b'n', &[]),
                complete("UPDATE 7"),
                ready(b'I'),
            ]),
        ),
        // Close the statement; a later Bind to it finds no SQL.
        (C, cat(&[close(b'S', "s1"), sync()])),
        (S, cat(&[msg(b'3', &[]), ready(b'I')])),
        (C, cat(&[bind("", "s1"), execute(""), sync()])),
        (
            S,
            cat(&[
                error("ERROR", "26000", "prepared statement \"s1\" does not exist"),
                ready(b'I'),
            ]),
        ),
    ]);
    let r = run(steps);
    assert!(r.weirds.is_empty(), "{:?}", r.weirds);
    assert_eq!(r.ex.len(), 6);
    let prep = &r.ex[1];
    assert_eq!(t(prep, "frontend"), Some("extended_query"));
    assert_eq!(
        t(prep, "frontend_arg"),
        Some("SELECT * FROM t WHERE id = $1")
    );
    assert_eq!(t(prep, "statement"), Some("s1"));
    assert_eq!(prep.fields.u64("executes"), Some(0));
    assert_eq!(list(prep, "messages"), vec!["parse", "sync"]);
    let exec = &r.ex[2];
    assert_eq!(exec.outcome, Outcome::Complete);
    assert_eq!(
        t(exec, "frontend_arg"),
        Some("SELECT * FROM t WHERE id = $1")
    );
    assert_eq!(t(exec, "statement"), Some("s1"));
    assert_eq!(t(exec, "portal"), Some("p1"));
    assert_eq!(exec.fields.u64("executes"), Some(2));
    assert_eq!(exec.fields.u64("data_rows"), Some(2));
    assert_eq!(
        list(exec, "messages"),
        vec![
            "bind", "describe", "execute", "flush", "execute", "close", "sync"
        ]
    );
    assert_eq!(
        zeek(exec)[3..],
        [
            "extended_query",
            "SELECT * FROM t WHERE id = $1",
            "-",
            "-",
            "T",
            "2"
        ]
    );
    let upd = &r.ex[3];
    assert_eq!(t(upd, "frontend_arg"), Some("UPDATE t SET x = $1"));
    assert_eq!(t(upd, "statement"), Some(""));
    assert_eq!(upd.fields.u64("rows"), Some(7));
    assert_eq!(summarize(upd).endpoint, "extended_query UPDATE");
    let gone = &r.ex[5];
    assert_eq!(t(gone, "frontend_arg"), None);
    assert_eq!(t(gone, "error_code"), Some("26000"));
}

#[test]
fn copy_in_and_out_are_counted_not_kept() {
    let mut steps = login().to_vec();
    steps.extend([
        (C, query("COPY t FROM STDIN")),
        (S, msg(b'G', &[0, 0, 1, 0, 0])),
        (
            C,
            cat(&[
                msg(b'd', b"1\tone\n"),
                msg(b'd', b"2\ttwo\n"),
                msg(b'c', &[]),
            ]),
        ),
        (S, cat(&[complete("COPY 2"), ready(b'I')])),
        (C, query("COPY t TO STDOUT")),
        (
            S,
            cat(&[
                msg(b'H', &[0, 0, 1, 0, 0]),
                msg(b'd', b"1\tone\n"),
                msg(b'd', b"2\ttwo\n"),
                msg(b'd', b"3\tthree\n"),
                msg(b'c', &[]),
                complete("COPY 3"),
                ready(b'I'),
            ]),
        ),
    ]);
    let r = run(steps);
    assert!(r.weirds.is_empty(), "{:?}", r.weirds);
    let cin = &r.ex[1];
    assert_eq!(cin.fields.u64("copy_in_messages"), Some(2));
    assert_eq!(cin.fields.u64("copy_in_bytes"), Some(12));
    assert_eq!(cin.fields.u64("rows"), Some(2));
    let cout = &r.ex[2];
    assert_eq!(cout.fields.u64("copy_out_messages"), Some(3));
    assert_eq!(cout.fields.u64("copy_out_bytes"), Some(20));
    assert_eq!(cout.fields.u64("rows"), Some(3));
    assert!(!format!("{:?}", r.ex).contains("three"));
}

#[test]
fn long_sql_is_cut_and_flagged() {
    let sql = format!("SELECT '{}'", "a".repeat(MAX_SQL * 2));
    let mut steps = login().to_vec();
    steps.push((C, query(&sql)));
    steps.push((S, cat(&[complete("SELECT 1"), ready(b'I')])));
    let r = run(steps);
    assert!(r.weirds.is_empty(), "{:?}", r.weirds);
    let q = &r.ex[1];
    assert_eq!(t(q, "frontend_arg").unwrap().len(), MAX_SQL);
    assert_eq!(b(q, "query_truncated"), Some(true));
    assert_eq!(summarize(q).endpoint, "simple_query SELECT");
}

#[test]
fn pipelined_queries_answer_in_order() {
    let mut steps = login().to_vec();
    steps.push((
        C,
        cat(&[query("SELECT 1"), query("SELECT 2"), query("SELECT 3")]),
    ));
    steps.push((
        S,
        cat(&[
            complete("SELECT 1"),
            ready(b'I'),
            complete("SELECT 2"),
            ready(b'I'),
            complete("SELECT 3"),
            ready(b'I'),
        ]),
    ));
    let r = run(steps);
    assert_eq!(r.ex.len(), 4);
    for (i, e) in r.ex[1..].iter().enumerate() {
        let n = i + 1;
        assert_eq!(t(e, "frontend_arg"), Some(format!("SELECT {n}").as_str()));
        assert_eq!(e.fields.u64("rows"), Some(n as u64));
    }
}

#[test]
fn asynchronous_messages_between_exchanges_are_not_exchanges() {
    let mut steps = login().to_vec();
    steps.push((
        S,
        cat(&[
            msg(b'S', b"TimeZone\0UTC\0"),
            notice("async"),
            msg(b'A', b"\0\0\0\x01chan\0\0"),
        ]),
    ));
    let r = run(steps);
    assert!(r.weirds.is_empty(), "{:?}", r.weirds);
    assert_eq!(r.ex.len(), 1);
}
