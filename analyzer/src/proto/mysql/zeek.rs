//! `mysql.log` (Zeek's columns and conventions) and the report summary of a MySQL exchange.

use crate::l7::{ZVal, ZeekLog};
use crate::model::{Exchange, Summary, Value};

/// `mysql.log`, with Zeek's columns and conventions.
pub static ZEEK_LOG: ZeekLog = ZeekLog {
    path: "mysql",
    fields: &[
        ("cmd", "string"),
        ("arg", "string"),
        ("success", "bool"),
        ("rows", "count"),
        ("response", "string"),
    ],
    row: zeek_row,
};

/// One `mysql.log` row: exchanges with a command (logins included) have one.
pub(super) fn zeek_row<'a>(ex: &'a Exchange, row: &mut Vec<ZVal<'a>>) -> bool {
    let f = &ex.fields;
    // Zeek logs commands and logins; a server packet answering nothing (an error instead of
    // a greeting) has no row.
    let Some(cmd) = f.text("command") else {
        return false;
    };
    row.push(ZVal::Text(cmd.into()));
    // Zeek's arg is the command's payload without a trailing NUL: COM_FIELD_LIST's is the
    // table, a NUL and the wildcard.
    let arg = f.text("argument").unwrap_or_default();
    row.push(ZVal::Text(match f.text("field_wildcard") {
        Some(w) => [arg, b"\0", w].concat().into(),
        None => arg.into(),
    }));
    let success = match f.get("success") {
        Some(Value::Bool(b)) => Some(*b),
        _ => None,
    };
    row.push(success.map_or(ZVal::Unset, ZVal::Bool));
    // Zeek's rows: an OK packet's affected rows, 0 when a result set ended with EOF.
    row.push(match success {
        Some(true) => ZVal::Count(f.u64("affected_rows").unwrap_or(0)),
        _ => ZVal::Unset,
    });
    row.push(ZVal::opt_text(f.text("response")));
    true
}

/// The statement's verb, upper-cased, with the object kind for DDL and `SHOW`
/// (`SELECT`, `CREATE TABLE`, `SHOW DATABASES`); `?` when the text does not start with a word.
/// Leading blanks, comments and parentheses are skipped; a `/*!NNNNN ... */` executable comment
/// is read as its content.
pub fn sql_verb(sql: &[u8]) -> String {
    let mut i = 0;
    let word_at = |i: usize| {
        let n = sql[i..]
            .iter()
            .take_while(|c| c.is_ascii_alphabetic() || **c == b'_')
            .count();
        &sql[i..i + n]
    };
    // Skips blanks, comments and parentheses from `i`.
    let skip = |mut i: usize| {
        loop {
            match sql.get(i..) {
                Some([c, ..]) if c.is_ascii_whitespace() || *c == b'(' => i += 1,
                Some([b'/', b'*', b'!', rest @ ..]) => {
                    i += 3 + rest.iter().take_while(|c| c.is_ascii_digit()).count();
                }
                Some([b'/', b'*', ..]) => match sql[i + 2..].windows(2).position(|w| w == b"*/") {
                    Some(p) => i += 2 + p + 2,
                    None => return sql.len(),
                },
                Some([b'-', b'-', c, ..]) if c.is_ascii_whitespace() => {
                    i += sql[i..]
                        .iter()
                        .position(|&c| c == b'\n')
                        .unwrap_or(sql.len() - i);
                }
                Some([b'#', ..]) => {
                    i += sql[i..]
                        .iter()
                        .position(|&c| c == b'\n')
                        .unwrap_or(sql.len() - i);
                }
                _ => return i,
            }
        }
    };
    i = skip(i);
    let verb = word_at(i).to_ascii_uppercase();
    if verb.is_empty() || verb.len() > 32 {
        return "?".into();
    }
    let mut out = String::from_utf8_lossy(&verb).into_owned();
    if matches!(&verb[..], b"CREATE" | b"DROP" | b"ALTER" | b"SHOW") {
        let mut j = skip(i + verb.len());
        for _ in 0..4 {
            let w = word_at(j).to_ascii_uppercase();
            if w.is_empty() || w.len() > 32 {
                break;
            }
            if matches!(
                &w[..],
                b"OR"
                    | b"REPLACE"
                    | b"TEMPORARY"
                    | b"UNIQUE"
                    | b"FULLTEXT"
                    | b"SPATIAL"
                    | b"FULL"
                    | b"GLOBAL"
                    | b"SESSION"
                    | b"ONLINE"
                    | b"IGNORE"
            ) {
                j = skip(j + w.len());
                continue;
            }
            out.push(' ');
            out.push_str(&String::from_utf8_lossy(&w));
            break;
        }
    }
    out
}

/// The report summary: the command (with the SQL verb for queries and prepared
/// statements), and `OK` or `ERR` with the code.
pub(super) fn summarize(ex: &Exchange) -> Summary {
    let f = &ex.fields;
    let endpoint = match f.text("command") {
        None => "(no command)".to_string(),
        Some(c) => {
            let cmd = String::from_utf8_lossy(c);
            match (c, f.text("argument")) {
                (b"query" | b"stmt_prepare" | b"stmt_execute", Some(sql)) => {
                    format!("{cmd} {}", sql_verb(sql))
                }
                _ => cmd.into_owned(),
            }
        }
    };
    let (status, failed) = match (f.u64("error_code"), f.get("success")) {
        (Some(code), _) => (Some(format!("ERR {code}")), true),
        (None, Some(Value::Bool(true))) => (Some("OK".into()), false),
        _ => (None, false),
    };
    Summary {
        endpoint,
        status,
        failed,
    }
}
