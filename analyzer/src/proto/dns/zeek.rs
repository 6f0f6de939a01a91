//! `dns.log` as Zeek's DNS scripts write it, and the summary reports give a DNS exchange.

use crate::l7::{ZVal, ZeekLog};
use crate::model::{Exchange, Summary, Value};

/// `dns.log`, with Zeek's columns and conventions.
pub static ZEEK_LOG: ZeekLog = ZeekLog {
    path: "dns",
    fields: &[
        ("proto", "enum"),
        ("trans_id", "count"),
        ("rtt", "interval"),
        ("query", "string"),
        ("qclass", "count"),
        ("qclass_name", "string"),
        ("qtype", "count"),
        ("qtype_name", "string"),
        ("rcode", "count"),
        ("rcode_name", "string"),
        ("AA", "bool"),
        ("TC", "bool"),
        ("RD", "bool"),
        ("RA", "bool"),
        ("Z", "count"),
        ("answers", "vector[string]"),
        ("TTLs", "vector[interval]"),
        ("rejected", "bool"),
        ("opcode", "count"),
        ("opcode_name", "string"),
    ],
    row: zeek_row,
};

/// One row of `dns.log`; none for opcodes Zeek does not track. The parser put Zeek's values
/// in the fields (query-side ones only from a query, `query` of a lone response from its
/// first handled answer); what is left here is what Zeek sets while handling answers.
pub(super) fn zeek_row<'a>(ex: &'a Exchange, row: &mut Vec<ZVal<'a>>) -> bool {
    let f = &ex.fields;
    // Zeek tracks standard queries, notifies and updates only.
    if !matches!(f.u64("opcode"), Some(0 | 4 | 5)) {
        return false;
    }
    let b = |n: &str| matches!(f.get(n), Some(Value::Bool(true)));
    // Zeek sets AA, RA and rtt while handling answer records (`DNS::do_reply`), whether or
    // not they add an answer.
    let handled = f.u64("handled_answers").unwrap_or(0) > 0;
    row.push(ZVal::Literal(ex.conn.transport.as_str()));
    row.push(ZVal::opt_count(f.u64("trans_id")));
    // Timed from the record's first message to the response; zero means "not seen".
    let rtt = match (ex.request, ex.response, handled) {
        (Some(q), Some(r), true) => r.start.checked_sub(q.start).filter(|&d| d > 0),
        _ => None,
    };
    row.push(rtt.map_or(ZVal::Unset, ZVal::Interval));
    row.push(ZVal::opt_text(f.text("query")));
    for (num, name) in [("qclass", "qclass_name"), ("qtype", "qtype_name")] {
        row.push(ZVal::opt_count(f.u64(num)));
        row.push(ZVal::opt_text(f.text(name)));
    }
    row.push(ZVal::opt_count(f.u64("rcode")));
    row.push(ZVal::opt_text(f.text("rcode_name")));
    row.push(ZVal::Bool(handled && b("AA")));
    row.push(ZVal::Bool(b("TC")));
    row.push(ZVal::Bool(b("RD")));
    row.push(ZVal::Bool(handled && b("RA")));
    row.push(ZVal::Count(f.u64("Z").unwrap_or(0)));
    match f.get("answers") {
        Some(Value::List(a)) if !a.is_empty() => {
            row.push(ZVal::List(a.as_slice().into()));
            row.push(ZVal::Seconds(match f.get("TTLs") {
                Some(Value::Counts(t)) => t,
                _ => &[],
            }));
        }
        _ => {
            row.push(ZVal::Unset);
            row.push(ZVal::Unset);
        }
    }
    row.push(ZVal::Bool(b("rejected")));
    row.push(ZVal::opt_count(f.u64("opcode")));
    row.push(ZVal::opt_text(f.text("opcode_name")));
    true
}

/// The report summary: `QTYPE name`, the rcode's name as status, failed when it is not 0.
pub(super) fn summarize(ex: &Exchange) -> Summary {
    let f = &ex.fields;
    let text = |n: &str| f.text(n).map(|t| String::from_utf8_lossy(t).into_owned());
    let endpoint = match (text("qtype_name"), text("query")) {
        (Some(t), Some(q)) if q.is_empty() => format!("{t} <Root>"),
        (Some(t), Some(q)) => format!("{t} {q}"),
        (None, Some(q)) => q,
        (Some(t), None) => t,
        (None, None) => "(no question)".into(),
    };
    Summary {
        endpoint,
        status: text("rcode_name"),
        failed: f.u64("rcode").is_some_and(|r| r != 0),
    }
}
