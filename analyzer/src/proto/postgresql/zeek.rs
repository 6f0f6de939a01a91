//! `postgresql.log` (Zeek's columns) and the report summary of a PostgreSQL exchange.

use super::wire;
use crate::l7::{ZVal, ZeekLog};
use crate::model::{Exchange, Outcome, Summary, Value};

/// `postgresql.log`, with Zeek's columns.
pub static ZEEK_LOG: ZeekLog = ZeekLog {
    path: "postgresql",
    fields: &[
        ("user", "string"),
        ("database", "string"),
        ("application_name", "string"),
        ("frontend", "string"),
        ("frontend_arg", "string"),
        ("backend", "string"),
        ("backend_arg", "string"),
        ("success", "bool"),
        ("rows", "count"),
    ],
    row: zeek_row,
};

/// One `postgresql.log` row: every exchange but a request that ended after its response.
pub(super) fn zeek_row<'a>(ex: &'a Exchange, row: &mut Vec<ZVal<'a>>) -> bool {
    if ex.outcome == Outcome::LateRequestEnd {
        return false;
    }
    let f = &ex.fields;
    for n in [
        "user",
        "database",
        "application_name",
        "frontend",
        "frontend_arg",
        "backend",
        "backend_arg",
    ] {
        row.push(ZVal::opt_text(f.text(n)));
    }
    row.push(match f.get("success") {
        Some(Value::Bool(b)) => ZVal::Bool(*b),
        _ => ZVal::Unset,
    });
    // Zeek counts DataRow messages and logs the count when ReadyForQuery closes a query that
    // did not fail (an ErrorResponse writes the row at once, without rows).
    let ready = f.text("transaction_status").is_some();
    let failed = f.text("error_code").is_some() || f.text("error_severity").is_some();
    let rows = match f.text("frontend") {
        Some(b"simple_query" | b"extended_query" | b"function_call") | None if ready && !failed => {
            f.u64("data_rows")
        }
        _ => None,
    };
    row.push(ZVal::opt_count(rows));
    true
}

/// The report summary: the frontend kind with the SQL verb, and the error or outcome.
pub(super) fn summarize(ex: &Exchange) -> Summary {
    let f = &ex.fields;
    let text = |n: &str| f.text(n).map(|t| String::from_utf8_lossy(t).into_owned());
    let verb =
        f.text("frontend_arg")
            .and_then(wire::sql_verb)
            .or_else(|| match f.get("command_tags") {
                Some(Value::List(t)) => t.first().and_then(|t| wire::sql_verb(t)),
                _ => None,
            });
    let endpoint = match (text("frontend"), verb) {
        (Some(fe), Some(v)) => format!("{fe} {v}"),
        (Some(fe), None) => fe,
        (None, _) => "(no request)".into(),
    };
    let code = text("error_code");
    let status = match (&code, text("error_severity")) {
        (Some(c), Some(s)) => Some(format!("{s} {c}")),
        (Some(c), None) => Some(c.clone()),
        (None, Some(s)) => Some(s),
        (None, None) => match f.get("success") {
            Some(Value::Bool(true)) => Some("ok".into()),
            Some(Value::Bool(false)) => Some("failed".into()),
            _ => None,
        },
    };
    Summary {
        endpoint,
        status,
        failed: code.is_some() || f.text("error_severity").is_some(),
    }
}
