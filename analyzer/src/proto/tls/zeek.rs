//! `ssl.log` as Zeek writes it, and the summary reports give a TLS connection.
//!
//! Zeek's columns, in Zeek's order. `sni_matches_cert` needs the certificate's names
//! (X.509 parsing, which this analyzer does not do): always unset. `cert_chain_fps` and
//! `client_cert_chain_fps` are the SHA-256 of each certificate of a plaintext (TLS ≤ 1.2)
//! Certificate message, as Zeek's X.509 file analysis writes them; with TLS 1.3 the
//! certificates are encrypted and both are unset, as in Zeek.

use super::names::{self, ALERTS, CIPHERS, GROUPS};
use crate::l7::{ZVal, ZeekLog};
use crate::model::{Exchange, Summary, Value};

/// `ssl.log`, with Zeek's columns.
pub static ZEEK_LOG: ZeekLog = ZeekLog {
    path: "ssl",
    fields: &[
        ("version", "string"),
        ("cipher", "string"),
        ("curve", "string"),
        ("server_name", "string"),
        ("resumed", "bool"),
        ("last_alert", "string"),
        ("next_protocol", "string"),
        ("established", "bool"),
        ("ssl_history", "string"),
        ("cert_chain_fps", "vector[string]"),
        ("client_cert_chain_fps", "vector[string]"),
        ("sni_matches_cert", "bool"),
    ],
    row: zeek_row,
};

fn or_unknown(table: &[(u32, &'static str)], n: u32) -> String {
    names::name(table, n).map_or_else(|| format!("unknown-{n}"), str::to_string)
}

/// Zeek's name of a cipher suite.
pub(super) fn cipher_name(c: u16) -> String {
    or_unknown(CIPHERS, u32::from(c))
}

/// Zeek's name of a named group (`ec_curves`).
pub(super) fn group_name(g: u16) -> String {
    or_unknown(GROUPS, u32::from(g))
}

/// Zeek's name of an alert description.
pub(super) fn alert_name(d: u8) -> String {
    or_unknown(ALERTS, u32::from(d))
}

fn list(v: Option<&Value>) -> ZVal<'_> {
    match v {
        Some(Value::List(l)) => ZVal::List(l.as_slice().into()),
        _ => ZVal::Unset,
    }
}

fn flag(v: Option<&Value>, default: bool) -> ZVal<'static> {
    match v {
        Some(Value::Bool(b)) => ZVal::Bool(*b),
        _ => ZVal::Bool(default),
    }
}

/// One row of `ssl.log`.
pub(super) fn zeek_row<'a>(ex: &'a Exchange, row: &mut Vec<ZVal<'a>>) -> bool {
    let f = &ex.fields;
    row.push(ZVal::opt_text(f.text("version")));
    row.push(ZVal::opt_text(f.text("cipher")));
    row.push(ZVal::opt_text(f.text("curve")));
    row.push(ZVal::opt_text(f.text("server_name")));
    row.push(flag(f.get("resumed"), false));
    row.push(ZVal::opt_text(f.text("last_alert")));
    row.push(ZVal::opt_text(f.text("next_protocol")));
    row.push(flag(f.get("established"), false));
    row.push(ZVal::Text(f.text("ssl_history").unwrap_or_default().into()));
    row.push(list(f.get("cert_chain_fps")));
    row.push(list(f.get("client_cert_chain_fps")));
    row.push(ZVal::Unset);
    true
}

/// The report summary: the server name asked for (`(no SNI)` without one) as the endpoint;
/// the last alert, else the version, as the status; failed when the handshake was not
/// established.
pub(super) fn summarize(ex: &Exchange) -> Summary {
    let f = &ex.fields;
    let endpoint = f.text("server_name").map_or_else(
        || "(no SNI)".to_string(),
        |n| String::from_utf8_lossy(n).into_owned(),
    );
    let text = |k| f.text(k).map(|t| String::from_utf8_lossy(t).into_owned());
    let status = text("last_alert").or_else(|| text("version"));
    let failed = !matches!(f.get("established"), Some(Value::Bool(true)));
    Summary {
        endpoint,
        status,
        failed,
    }
}
