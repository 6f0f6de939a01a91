//! Sessions: the login (auth switches, refusals, SSL), commands and their responses (result
//! sets in both EOF styles, multi-results, prepared statements, LOCAL INFILE, query
//! attributes), and the texts reported.

use super::*;

#[test]
fn login_fields_and_zeek_row() {
    let r = run(&login(0));
    assert!(r.weirds.is_empty(), "{:?}", r.weirds);
    let f = &r.ex[0].fields;
    assert_eq!(f.text("user"), Some(&b"app"[..]));
    assert_eq!(f.text("database"), Some(&b"shop"[..]));
    assert_eq!(f.text("server_version"), Some(&b"8.0.36"[..]));
    assert_eq!(f.u64("connection_id"), Some(7));
    assert_eq!(f.text("auth_plugin"), Some(&b"caching_sha2_password"[..]));
    assert_eq!(r.ex[0].outcome, Outcome::Complete);
    assert_eq!(zeek(&r), vec!["login app T 0 -"]);
}

#[test]
fn greeting_error_is_an_exchange_without_a_zeek_row() {
    let mut p = vec![0xff, 0x6a, 0x04];
    p.extend_from_slice(b"Host 'x' is not allowed to connect to this MariaDB server");
    let r = run(&[S::Sv(pkt(0, &p))]);
    assert_eq!(r.ex.len(), 1);
    assert_eq!(r.ex[0].outcome, Outcome::NoRequest);
    assert_eq!(r.ex[0].fields.u64("error_code"), Some(1130));
    assert!(zeek(&r).is_empty());
}

#[test]
fn login_refused() {
    let r = run(&[
        S::Sv(greeting(BASE_CAPS)),
        S::C(handshake(BASE_CAPS, "root", None)),
        S::Sv(err(
            2,
            1045,
            "28000",
            "Access denied for user 'root'@'h' (using password: YES)",
        )),
    ]);
    assert_eq!(
        zeek(&r),
        vec!["login root F - Access denied for user 'root'@'h' (using password: YES)"]
    );
    assert_eq!(r.ex[0].fields.text("sql_state"), Some(&b"28000"[..]));
    assert_eq!(summarize(&r.ex[0]).status.as_deref(), Some("ERR 1045"));
    assert!(summarize(&r.ex[0]).failed);
}

#[test]
fn auth_switch_and_caching_sha2_full_auth() {
    let mut switch = vec![0xfe];
    switch.extend_from_slice(b"caching_sha2_password\0");
    switch.extend_from_slice(&[0x11; 20]);
    switch.push(0);
    let steps = vec![
        S::Sv(greeting(BASE_CAPS)),
        S::C(handshake(BASE_CAPS, "app", None)),
        S::Sv(pkt(2, &switch)),
        S::C(pkt(3, &[0x22; 32])),
        S::Sv(pkt(4, &[0x01, 0x04])), // perform full authentication
        S::C(pkt(5, &[0x02])),        // request the public key
        S::Sv(pkt(6, b"\x01-----BEGIN PUBLIC KEY-----")),
        S::C(pkt(7, &[0x33; 256])), // the encrypted password
        S::Sv(ok(8, 0, 2)),
        S::C(query("select 1")),
        S::Sv(cat(&[
            pkt(1, &[1]),
            coldef(2, "1"),
            eof(3, 2),
            row(4, &["1"]),
            eof(5, 2),
        ])),
    ];
    let r = run(&steps);
    assert!(r.weirds.is_empty(), "{:?}", r.weirds);
    assert_eq!(zeek(&r), vec!["login app T 0 -", "query select 1 T 0 -"]);
    assert_eq!(
        r.ex[0].fields.text("auth_switch"),
        Some(&b"caching_sha2_password"[..])
    );
    same_fields(&r, &run_bytewise(&steps));
}

#[test]
fn ssl_request_stops_parsing() {
    let mut p = (BASE_CAPS | 0x800 | 1).to_le_bytes().to_vec();
    p.extend_from_slice(&[0; 28]);
    let r = run(&[
        S::Sv(greeting(BASE_CAPS | 0x800)),
        S::C(pkt(1, &p)),
        S::C(vec![0x16, 0x03, 0x01, 0x02, 0x00, 0x01]),
    ]);
    assert_eq!(r.state, ParserState::Finished);
    assert!(r.ex.is_empty());
    assert!(r.weirds.is_empty());
}

#[test]
fn result_sets_in_both_eof_styles() {
    let legacy = with(
        login(0),
        &[
            S::C(query("SELECT a, b FROM t")),
            S::Sv(cat(&[
                pkt(1, &[2]),
                coldef(2, "a"),
                coldef(3, "b"),
                eof(4, 2),
                row(5, &["1", "x"]),
                row(6, &["2", "y"]),
                row(7, &["3", "z"]),
                eof(8, 2),
            ])),
        ],
    );
    let deprecate = with(
        login(DEPRECATE_EOF),
        &[
            S::C(query("SELECT a, b FROM t")),
            S::Sv(cat(&[
                pkt(1, &[2]),
                coldef(2, "a"),
                coldef(3, "b"),
                row(4, &["1", "x"]),
                row(5, &["2", "y"]),
                row(6, &["3", "z"]),
                ok_fe(7, 2),
            ])),
        ],
    );
    for steps in [legacy, deprecate] {
        let r = run(&steps);
        assert!(r.weirds.is_empty(), "{:?}", r.weirds);
        let f = &r.ex[1].fields;
        assert_eq!((f.u64("rows"), f.u64("columns")), (Some(3), Some(2)));
        assert_eq!(zeek(&r)[1], "query SELECT a, b FROM t T 0 -");
        assert_eq!(summarize(&r.ex[1]).endpoint, "query SELECT");
        same_fields(&r, &run_bytewise(&steps));
    }
}

#[test]
fn ok_with_affected_rows_and_errors() {
    let r = run(&with(
        login(0),
        &[
            S::C(query("UPDATE t SET a = 1")),
            S::Sv(pkt(
                1,
                b"\x00\x05\x00\x02\x00\x00\x00Rows matched: 5  Changed: 5  Warnings: 0",
            )),
            S::C(query("SELEC 1")),
            S::Sv(err(
                1,
                1064,
                "42000",
                "You have an error in your SQL syntax",
            )),
            S::C(cmd(0x02, b"other")),
            S::Sv(ok(1, 0, 2)),
        ],
    ));
    assert_eq!(
        zeek(&r),
        vec![
            "login app T 0 -",
            "query UPDATE t SET a = 1 T 5 -",
            "query SELEC 1 F - You have an error in your SQL syntax",
            "init_db other T 0 -",
        ]
    );
    assert_eq!(
        r.ex[1].fields.text("info"),
        Some(&b"Rows matched: 5  Changed: 5  Warnings: 0"[..])
    );
    assert_eq!(r.ex[2].fields.u64("error_code"), Some(1064));
}

#[test]
fn multi_results() {
    // CALL p(): two result sets, then the procedure's own OK; MORE_RESULTS (0x0008) links them.
    let steps = with(
        login(0),
        &[
            S::C(query("CALL p()")),
            S::Sv(cat(&[
                pkt(1, &[1]),
                coldef(2, "a"),
                eof(3, 0x0a),
                row(4, &["1"]),
                eof(5, 0x0a),
                pkt(6, &[1]),
                coldef(7, "b"),
                eof(8, 0x0a),
                row(9, &["2"]),
                row(10, &["4"]),
                eof(11, 0x0a),
                ok(12, 0, 2),
            ])),
            S::C(cmd(0x0e, b"")),
            S::Sv(ok(1, 0, 2)),
        ],
    );
    let r = run(&steps);
    assert!(r.weirds.is_empty(), "{:?}", r.weirds);
    let f = &r.ex[1].fields;
    assert_eq!((f.u64("rows"), f.u64("results")), (Some(3), Some(3)));
    assert_eq!(cmds(&r), vec!["login", "query", "ping"]);
    assert_eq!(r.ex[2].outcome, Outcome::Complete);
}

#[test]
fn prepared_statements() {
    let prepare_ok = |id: u32, cols: u16, params: u16| {
        let mut p = vec![0];
        p.extend_from_slice(&id.to_le_bytes());
        p.extend_from_slice(&cols.to_le_bytes());
        p.extend_from_slice(&params.to_le_bytes());
        p.extend_from_slice(&[0, 0, 0]);
        pkt(1, &p)
    };
    let mut exec = 7u32.to_le_bytes().to_vec();
    exec.extend_from_slice(&[0, 1, 0, 0, 0, 0, 1, 3, 0, 5, 0, 0, 0]);
    let steps = with(
        login(0),
        &[
            S::C(cmd(0x16, b"SELECT name FROM t WHERE id = ?")),
            S::Sv(cat(&[
                prepare_ok(7, 1, 1),
                coldef(2, "?"),
                eof(3, 2),
                coldef(4, "name"),
                eof(5, 2),
            ])),
            S::C(cmd(0x17, &exec)),
            S::Sv(cat(&[
                pkt(1, &[1]),
                coldef(2, "name"),
                eof(3, 2),
                pkt(4, b"\x00\x00\x03abc"),
                eof(5, 2),
            ])),
            S::C(cmd(0x1a, &7u32.to_le_bytes())),
            S::Sv(ok(1, 0, 2)),
            // Closing has no response; the next command's answer is not taken for one.
            S::C(cmd(0x19, &7u32.to_le_bytes())),
            S::C(cmd(0x17, &exec)),
            S::Sv(err(
                1,
                1243,
                "HY000",
                "Unknown prepared statement handler (7)",
            )),
        ],
    );
    let r = run(&steps);
    assert!(r.weirds.is_empty(), "{:?}", r.weirds);
    assert_eq!(
        cmds(&r),
        vec![
            "login",
            "stmt_prepare",
            "stmt_execute",
            "stmt_reset",
            "stmt_close",
            "stmt_execute"
        ]
    );
    let sql = &b"SELECT name FROM t WHERE id = ?"[..];
    for i in 1..=4 {
        assert_eq!(r.ex[i].fields.text("argument"), Some(sql), "{i}");
        assert_eq!(r.ex[i].fields.u64("statement_id"), Some(7), "{i}");
    }
    assert_eq!(r.ex[1].fields.u64("params"), Some(1));
    assert_eq!(r.ex[2].fields.u64("rows"), Some(1));
    assert_eq!(r.ex[4].outcome, Outcome::NoResponse);
    // Closed: the id is forgotten.
    assert_eq!(r.ex[5].fields.text("argument"), None);
    assert_eq!(r.ex[5].fields.u64("error_code"), Some(1243));
    assert_eq!(summarize(&r.ex[2]).endpoint, "stmt_execute SELECT");
    same_fields(&r, &run_bytewise(&steps));
}

#[test]
fn local_infile() {
    let mut req = vec![0xfb];
    req.extend_from_slice(b"/tmp/rows.csv");
    let r = run(&with(
        login(0),
        &[
            S::C(query("LOAD DATA LOCAL INFILE '/tmp/rows.csv' INTO TABLE t")),
            S::Sv(pkt(1, &req)),
            S::C(cat(&[pkt(2, b"1,a\n2,b\n"), pkt(3, b"3,c\n"), pkt(4, b"")])),
            S::Sv(ok(5, 3, 2)),
            S::C(cmd(0x0e, b"")),
            S::Sv(ok(1, 0, 2)),
        ],
    ));
    assert!(r.weirds.is_empty(), "{:?}", r.weirds);
    let f = &r.ex[1].fields;
    assert_eq!(f.text("infile"), Some(&b"/tmp/rows.csv"[..]));
    assert_eq!(
        (f.u64("infile_bytes"), f.u64("affected_rows")),
        (Some(12), Some(3))
    );
    assert_eq!(r.ex[2].outcome, Outcome::Complete);
}

#[test]
fn query_attributes_are_not_part_of_the_query() {
    // Two attributes: a string `n1` = "v1" and a LONGLONG `n2` = 5.
    let mut p = vec![0x03, 2, 1, 0x00, 1];
    p.extend_from_slice(&[0xfe, 0, 2, b'n', b'1', 0x08, 0, 2, b'n', b'2']);
    p.extend_from_slice(&[2, b'v', b'1']);
    p.extend_from_slice(&5u64.to_le_bytes());
    p.extend_from_slice(b"SELECT 1");
    let r = run(&with(
        login(QUERY_ATTRS),
        &[
            S::C(pkt(0, &p)),
            S::Sv(ok(1, 0, 2)),
            S::C(query("\0\x01SELECT 2")),
            S::Sv(ok(1, 0, 2)),
        ],
    ));
    assert!(r.weirds.is_empty(), "{:?}", r.weirds);
    assert_eq!(r.ex[1].fields.text("argument"), Some(&b"SELECT 1"[..]));
    assert_eq!(r.ex[1].fields.u64("query_attributes"), Some(2));
    assert_eq!(r.ex[2].fields.text("argument"), Some(&b"SELECT 2"[..]));
    // Unknown attribute type: reported, and the whole payload kept as the argument.
    assert_eq!(
        wire::split_query(&[1, 1, 0, 1, 0x30, 0, 0], Some(true)),
        Err(wire::Error::BadQueryAttributes)
    );
    // Absurd counts do not allocate or panic.
    assert!(
        wire::split_query(
            &[0xfe, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f, 1],
            Some(true)
        )
        .is_err()
    );
}

#[test]
fn statistics_quit_field_list_change_user() {
    let r = run(&with(
        login(0),
        &[
            S::C(cmd(0x04, b"t\0c%")),
            S::Sv(cat(&[coldef(1, "c1"), coldef(2, "c2"), eof(3, 2)])),
            S::C(cmd(0x09, b"")),
            S::Sv(pkt(1, b"Uptime: 5  Threads: 1")),
            S::C(cmd(
                0x11,
                b"root2\0\x14AAAAAAAAAAAAAAAAAAAA\0\x21\x00mysql_native_password\0",
            )),
            S::Sv(err(1, 1045, "28000", "Access denied")),
            S::C(cmd(0x01, b"")),
        ],
    ));
    assert!(r.weirds.is_empty(), "{:?}", r.weirds);
    assert_eq!(
        zeek(&r),
        vec![
            "login app T 0 -",
            "field_list t\0c% T 0 -",
            "statistics (empty) - - -",
            "change_user root2 F - Access denied",
            "quit (empty) - - -",
        ]
    );
    assert_eq!(r.ex[1].fields.u64("columns"), Some(2));
    assert_eq!(
        r.ex[2].fields.text("info"),
        Some(&b"Uptime: 5  Threads: 1"[..])
    );
}

#[test]
fn mariadb_progress_reports_inside_a_response() {
    let r = run(&with(
        login(0),
        &[
            S::C(query("ALTER TABLE t ENGINE=InnoDB")),
            S::Sv(cat(&[
                pkt(1, b"\xff\xff\xff\x01\x01\x00\x10\x27\x00\x00\x05stage"),
                ok(2, 0, 2),
            ])),
        ],
    ));
    assert!(r.weirds.is_empty(), "{:?}", r.weirds);
    assert_eq!(zeek(&r)[1], "query ALTER TABLE t ENGINE=InnoDB T 0 -");
    assert_eq!(r.ex[1].fields.u64("progress_reports"), Some(1));
    assert_eq!(summarize(&r.ex[1]).endpoint, "query ALTER TABLE");
}

#[test]
fn sql_verbs() {
    let cases = [
        ("select 1", "SELECT"),
        ("  /* hint */ (SELECT 1)", "SELECT"),
        ("-- c\nINSERT INTO t VALUES (1)", "INSERT"),
        ("# c\nupdate t set a=1", "UPDATE"),
        ("/*!40101 SET NAMES utf8 */", "SET"),
        ("CREATE TABLE t (a int)", "CREATE TABLE"),
        ("create or replace view v as select 1", "CREATE VIEW"),
        ("DROP TEMPORARY TABLE t", "DROP TABLE"),
        ("show full processlist", "SHOW PROCESSLIST"),
        ("show databases", "SHOW DATABASES"),
        ("", "?"),
        ("123", "?"),
        ("/* unterminated", "?"),
    ];
    for (sql, want) in cases {
        assert_eq!(sql_verb(sql.as_bytes()), want, "{sql}");
    }
}

#[test]
fn bounded_cuts_at_character_boundaries() {
    let s = "aé".repeat(10);
    let (v, cut) = bounded(s.as_bytes(), 4);
    assert!(cut);
    assert_eq!(v, "aéa".as_bytes());
    assert_eq!(bounded(s.as_bytes(), 2).0, b"a");
    assert!(std::str::from_utf8(&bounded(s.as_bytes(), 5).0).is_ok());
    assert_eq!(bounded(b"abc", 5), (b"abc".to_vec(), false));
    assert_eq!(bounded(&[0x80; 10], 4).0.len(), 4);
}
