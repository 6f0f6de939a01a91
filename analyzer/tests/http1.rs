//! HTTP/1 rules of Zeek's that depend on how a connection reaches the parser — detection,
//! the held bytes handed over after it, segments as captured — checked through the whole
//! pipeline on captures written here (`logs --format zeek`). The rules and their unit tests
//! are in docs/http.md.

#![allow(clippy::unwrap_used, reason = "test code: a panic is a test failure")]

mod common;
mod pcapgen;

use std::net::Ipv4Addr;

use common::*;

const FIELDS: &[&str] = &[
    "id.resp_p",
    "trans_depth",
    "method",
    "host",
    "uri",
    "version",
    "user_agent",
    "request_body_len",
    "response_body_len",
    "status_code",
    "status_msg",
];

/// `http.log` rows (the compared columns, with the server port) of a capture.
fn rows(p: &pcapgen::Pcap) -> Vec<String> {
    let d = tmp();
    let f = d.path().join("t.pcap");
    std::fs::write(&f, p.bytes()).unwrap();
    write_zeek_logs(&f, d.path());
    let text = std::fs::read_to_string(d.path().join("http.log")).unwrap_or_default();
    zeek_rows(&text)
        .iter()
        .map(|r| {
            FIELDS
                .iter()
                .map(|k| r[*k].clone())
                .collect::<Vec<_>>()
                .join(" ")
        })
        .collect()
}

const C: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 1);
const S: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 2);

/// A reply to a request line Zeek cannot parse still gets a row (its DPD brings the parser
/// back on the server's first bytes), on HTTP's port and off it.
#[test]
fn reply_to_a_bad_request_line_gets_a_row_on_any_port() {
    for port in [80, 8081] {
        let mut p = pcapgen::Pcap::default();
        let t0 = 1_700_000_000_000_000;
        let mut t = p.tcp_open(t0, (C, 40000), (S, port));
        p.tcp_data(t0 + 10, &mut t, true, b" GET / HTTP/1.1\r\nHost: h\r\n\r\n");
        p.tcp_data(
            t0 + 20,
            &mut t,
            false,
            b"HTTP/1.1 400 Bad Request\r\nContent-Length: 3\r\n\r\nbad",
        );
        p.tcp_close(t0 + 30, &mut t);
        assert_eq!(
            rows(&p),
            [format!("{port} 1 - - - 1.1 - 0 3 400 Bad Request")],
            "port {port}"
        );
    }
}

/// A header line completed only when the client closes lands in a late row; the main row
/// has what was complete when the reply was written.
#[test]
fn header_completed_after_the_reply_makes_a_late_row() {
    let mut p = pcapgen::Pcap::default();
    let t0 = 1_700_000_000_000_000;
    let mut t = p.tcp_open(t0, (C, 40001), (S, 80));
    p.tcp_data(
        t0 + 10,
        &mut t,
        true,
        b"GET / HTTP/1.1\r\nHost: h\r\nUser-Agent: u\r\n",
    );
    p.tcp_data(
        t0 + 20,
        &mut t,
        false,
        b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok",
    );
    p.tcp_close(t0 + 30, &mut t);
    assert_eq!(
        rows(&p),
        ["80 1 GET h / 1.1 - 0 2 200 OK", "80 2 - - - - u 0 0 - -"]
    );
}

/// A file upload after `100 Continue`, in segments of its own, whose part holds bare LFs:
/// counted byte for byte (a part's body ends lines only at CRLF), ended by the closing
/// boundary at its Content-Length.
#[test]
fn upload_with_bare_line_feeds_after_continue() {
    let mut body = b"--XyZ\r\nContent-Disposition: form-data; name=\"f\"; filename=\"a.txt\"\r\nContent-Type: text/plain\r\n\r\n".to_vec();
    for i in 0..200 {
        body.extend_from_slice(format!("line {i}\n").as_bytes());
    }
    body.extend_from_slice(b"\r\n--XyZ--\r\n");
    let head = format!(
        "POST /up HTTP/1.1\r\nHost: h\r\nContent-Type: multipart/form-data; boundary=XyZ\r\nContent-Length: {}\r\nExpect: 100-continue\r\n\r\n",
        body.len()
    );
    let mut p = pcapgen::Pcap::default();
    let t0 = 1_700_000_000_000_000;
    let mut t = p.tcp_open(t0, (C, 40002), (S, 80));
    p.tcp_data(t0 + 10, &mut t, true, head.as_bytes());
    p.tcp_data(t0 + 20, &mut t, false, b"HTTP/1.1 100 Continue\r\n\r\n");
    for (i, seg) in body.chunks(700).enumerate() {
        p.tcp_data(t0 + 30 + i as u64, &mut t, true, seg);
    }
    p.tcp_data(
        t0 + 100,
        &mut t,
        false,
        b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok",
    );
    p.tcp_close(t0 + 200, &mut t);
    assert_eq!(
        rows(&p),
        [format!("80 1 POST h /up 1.1 - {} 2 200 OK", body.len())]
    );
}
