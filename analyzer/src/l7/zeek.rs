//! The types of a protocol's Zeek log: the columns it declares and the values of a row.
//! Writing the files (header lines, escaping, connection columns) is [`crate::sink::zeek`]'s.

use std::borrow::Cow;

use crate::model::{Exchange, Text};

/// A value in a Zeek log row; text borrows from the exchange where it can (a row is
/// written once, right after it is made).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ZVal<'a> {
    /// Unset: `-`.
    Unset,
    /// A string (escaped when written; empty becomes `(empty)`).
    Text(Cow<'a, [u8]>),
    /// A number.
    Count(u64),
    /// `T` / `F`.
    Bool(bool),
    /// Written exactly as given (Zeek literals such as `<empty>`).
    Literal(&'static str),
    /// A vector or set: elements escaped and joined by the set separator `,` (which is
    /// escaped inside elements); `(empty)` when there are none.
    List(Cow<'a, [Text]>),
    /// An `interval` in nanoseconds, written in seconds with six decimals ([`seconds`]).
    Interval(u64),
    /// A vector of `interval`s in whole seconds, written as [`ZVal::List`] writes its
    /// elements; `(empty)` when there are none.
    Seconds(&'a [u64]),
}

impl<'a> ZVal<'a> {
    /// Text from an optional byte string.
    pub fn opt_text(v: Option<&'a [u8]>) -> ZVal<'a> {
        v.map_or(ZVal::Unset, |t| ZVal::Text(Cow::Borrowed(t)))
    }
    /// Count from an optional number.
    pub fn opt_count(v: Option<u64>) -> ZVal<'a> {
        v.map_or(ZVal::Unset, ZVal::Count)
    }
    /// The value as text, unescaped, lists joined by `,` (what tests compare).
    #[cfg(test)]
    pub fn plain(&self) -> String {
        match self {
            ZVal::Unset => "-".into(),
            ZVal::Text(t) => String::from_utf8_lossy(t).into_owned(),
            ZVal::Count(n) => n.to_string(),
            ZVal::Bool(b) => if *b { "T" } else { "F" }.into(),
            ZVal::Literal(l) => (*l).into(),
            ZVal::List(l) => l
                .iter()
                .map(|x| String::from_utf8_lossy(x).into_owned())
                .collect::<Vec<_>>()
                .join(","),
            ZVal::Interval(ns) => seconds(*ns),
            ZVal::Seconds(s) => s
                .iter()
                .map(|s| seconds(s.saturating_mul(1_000_000_000)))
                .collect::<Vec<_>>()
                .join(","),
        }
    }
}

/// A protocol's Zeek log: its name, columns after the connection columns, and how an
/// exchange becomes a row (`false`: no row for this exchange).
#[derive(Debug)]
pub struct ZeekLog {
    /// Log name (`http` → `http.log`).
    pub path: &'static str,
    /// Column names and Zeek types, after `ts uid id.orig_h id.orig_p id.resp_h id.resp_p`.
    pub fields: &'static [(&'static str, &'static str)],
    /// Fills `row` (one value per field) for an exchange.
    pub row: for<'a> fn(&'a Exchange, &mut Vec<ZVal<'a>>) -> bool,
}

/// A Zeek `time` or `interval` value: seconds with six decimals (microseconds).
pub fn seconds(ns: u64) -> String {
    let mut s = String::with_capacity(20);
    push_seconds(&mut s, ns);
    s
}

/// Appends [`seconds`] to `line` (digits written directly: `core::fmt` with padding was a
/// few percent of a Zeek log run, where every row starts with a time).
pub fn push_seconds(line: &mut String, ns: u64) {
    let mut b = itoa::Buffer::new();
    line.push_str(b.format(ns / 1_000_000_000));
    line.push('.');
    let us = b.format((ns % 1_000_000_000) / 1000);
    for _ in us.len()..6 {
        line.push('0');
    }
    line.push_str(us);
}
