//! HTTP/1's Zeek log (`http.log`, with Zeek's columns and conventions) and the summary
//! reports show of an exchange.

use crate::l7::summary::template_path;
use crate::l7::{ZVal, ZeekLog};
use crate::model::{Exchange, Summary};

/// `http.log`, with Zeek's columns and conventions.
pub static ZEEK_LOG: ZeekLog = ZeekLog {
    path: "http",
    fields: &[
        ("trans_depth", "count"),
        ("method", "string"),
        ("host", "string"),
        ("uri", "string"),
        ("referrer", "string"),
        ("version", "string"),
        ("user_agent", "string"),
        ("origin", "string"),
        ("request_body_len", "count"),
        ("response_body_len", "count"),
        ("status_code", "count"),
        ("status_msg", "string"),
        ("info_code", "count"),
        ("info_msg", "string"),
    ],
    row: zeek_row,
};

fn zeek_row<'a>(ex: &'a Exchange, row: &mut Vec<ZVal<'a>>) -> bool {
    let f = &ex.fields;
    let has_status = f.get("status_code").is_some();
    row.push(ZVal::Count(u64::from(ex.depth)));
    row.push(ZVal::opt_text(f.text("method")));
    row.push(ZVal::opt_text(f.text("host")));
    row.push(f.text("uri").map_or(ZVal::Unset, |u| {
        ZVal::Text(if u.contains(&b'%') {
            unescape_uri(u).into()
        } else {
            u.into()
        })
    }));
    row.push(ZVal::opt_text(f.text("referrer")));
    row.push(ZVal::opt_text(f.text("version")));
    row.push(ZVal::opt_text(f.text("user_agent")));
    row.push(ZVal::opt_text(f.text("origin")));
    row.push(ZVal::Count(f.u64("request_body_len").unwrap_or(0)));
    row.push(ZVal::Count(f.u64("response_body_len").unwrap_or(0)));
    row.push(ZVal::opt_count(f.u64("status_code")));
    row.push(match (f.text("status_msg"), has_status) {
        (Some(m), _) => ZVal::Text(m.into()),
        (None, true) => ZVal::Literal("<empty>"),
        (None, false) => ZVal::Unset,
    });
    row.push(ZVal::opt_count(f.u64("info_code")));
    row.push(ZVal::opt_text(f.text("info_msg")));
    true
}

/// Percent-decoding as Zeek applies it to logged URIs: `%XX` and `%uXXXX` (lowercase `u`
/// only) are decoded; a `%` at the end, a `%` with one byte after it at the end, and a `%`
/// before a non-hex byte are kept as they are; `%%` drops the first `%`.
pub fn unescape_uri(u: &[u8]) -> Vec<u8> {
    let hex = |c: u8| (c as char).to_digit(16).map(|d| d as u8);
    let n = u.len();
    let mut out = Vec::with_capacity(n);
    let mut i = 0;
    while i < n {
        if u[i] != b'%' {
            out.push(u[i]);
            i += 1;
            continue;
        }
        if i + 1 >= n {
            out.push(b'%');
            i += 1;
        } else if i + 2 >= n {
            out.extend_from_slice(&u[i..i + 2]);
            i += 2;
        } else if u[i + 1] == b'%' {
            i += 1;
        } else if u[i + 1] == b'u'
            && i + 6 <= n
            && u[i + 2..i + 6].iter().all(u8::is_ascii_hexdigit)
        {
            let b = |k: usize| hex(u[k]).unwrap_or(0);
            let hi = b(i + 2) << 4 | b(i + 3);
            let lo = b(i + 4) << 4 | b(i + 5);
            if hi != 0 {
                out.push(hi);
            }
            out.push(lo);
            i += 6;
        } else if let (Some(a), Some(b)) = (hex(u[i + 1]), hex(u[i + 2])) {
            out.push(a << 4 | b);
            i += 3;
        } else {
            out.extend_from_slice(&u[i..i + 2]);
            i += 2;
        }
    }
    out
}

/// The exchange's endpoint (`METHOD /templated/path`) and status; 5xx is a failure.
pub(super) fn summarize(ex: &Exchange) -> Summary {
    let f = &ex.fields;
    let method = f
        .text("method")
        .map(|m| String::from_utf8_lossy(m).into_owned());
    let endpoint = match (method, f.text("uri")) {
        (Some(m), Some(u)) => format!("{m} {}", template_path(u)),
        (Some(m), None) => m,
        (None, _) => "(no request)".into(),
    };
    let code = f.u64("status_code");
    Summary {
        endpoint,
        status: code.map(|c| c.to_string()),
        failed: code.is_some_and(|c| c >= 500),
    }
}
