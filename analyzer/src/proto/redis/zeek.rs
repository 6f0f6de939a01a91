//! `redis.log` as Zeek writes it, and the summary reports give a Redis exchange.

use super::commands::{upper, zeek_logs_key};
use crate::l7::{ZVal, ZeekLog};
use crate::model::{Exchange, Summary, Value};

/// `redis.log`, with Zeek's columns.
pub static ZEEK_LOG: ZeekLog = ZeekLog {
    path: "redis",
    fields: &[
        ("cmd.name", "string"),
        ("cmd.key", "string"),
        ("cmd.value", "string"),
        ("success", "bool"),
        ("reply.value", "string"),
    ],
    row: zeek_row,
};

/// One row of `redis.log`.
pub(super) fn zeek_row<'a>(ex: &'a Exchange, row: &mut Vec<ZVal<'a>>) -> bool {
    let f = &ex.fields;
    let name = f.text("command");
    // Zeek logs a key only for the commands its analyzer knows to have one.
    let zeek_key = name.is_some_and(zeek_logs_key);
    row.push(ZVal::opt_text(name));
    row.push(if zeek_key {
        ZVal::opt_text(f.text("key"))
    } else {
        ZVal::Unset
    });
    row.push(ZVal::opt_text(f.text("value")));
    row.push(match f.get("success") {
        Some(Value::Bool(b)) => ZVal::Bool(*b),
        _ => ZVal::Unset,
    });
    row.push(ZVal::opt_text(f.text("reply_value")));
    true
}

/// The report summary: `NAME` (`NAME SUBCOMMAND` for containers), and the error's code as
/// status when the reply is an error.
pub(super) fn summarize(ex: &Exchange) -> Summary {
    let f = &ex.fields;
    let endpoint = match (f.text("command"), f.text("subcommand")) {
        (Some(c), Some(s)) => format!("{} {}", upper(c), String::from_utf8_lossy(s)),
        (Some(c), None) => upper(c),
        (None, _) => "(no command)".into(),
    };
    let (status, failed) = match f.get("success") {
        Some(Value::Bool(true)) => (Some("ok".to_string()), false),
        Some(Value::Bool(false)) => {
            // The error's code: its first word (`ERR`, `WRONGTYPE`, `NOAUTH` ...).
            let code = f
                .text("error")
                .map(|e| {
                    let w = e.split(|&c| c == b' ').next().unwrap_or_default();
                    String::from_utf8_lossy(&w[..w.len().min(32)]).into_owned()
                })
                .filter(|w| !w.is_empty())
                .unwrap_or_else(|| "error".into());
            (Some(code), true)
        }
        _ => (None, false),
    };
    Summary {
        endpoint,
        status,
        failed,
    }
}
