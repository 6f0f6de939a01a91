//! Zeek-compatible TSV logs (`--format zeek`): one `<path>.log` per protocol, with Zeek's
//! header lines, field names and value conventions — `-` for unset, `(empty)` for an empty
//! string, `T`/`F`, times as seconds with microseconds, and Zeek's escaping of control bytes
//! and invalid UTF-8 as `\xHH`.
//!
//! Each protocol describes its log with a [`ZeekLog`]; the connection columns (`ts`, `uid`,
//! `id.*`) are common and written here. `weird.log` has Zeek's weird columns and lists, once
//! per connection and name, the anomalies parsers met (Zeek's weird names), and what this
//! analyzer cut or skipped: connections evicted for the memory budget
//! (`connection_evicted`), detection buffers that filled (`detection_buffer_full`), input
//! files damaged or skipped (`input_file_damaged`, `input_file_skipped`: no connection, the
//! file and what was lost in `addl`).

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

use super::background::Background;
use super::{push_count, push_ip};
use crate::conn::session::Notice;
use crate::l7::zeek::push_seconds;
use crate::l7::{ZVal, ZeekLog};
use crate::model::{ConnSummary, Endpoint, Exchange, Text, Transport, tunnel_uid};

const CONN_FIELDS: &[(&str, &str)] = &[
    ("ts", "time"),
    ("uid", "string"),
    ("id.orig_h", "addr"),
    ("id.orig_p", "port"),
    ("id.resp_h", "addr"),
    ("id.resp_p", "port"),
];

/// The last column of every log, as Zeek's community-id policy script appends it to conn.log
/// (`community_id: string &optional &log`, after all other fields).
const COMMUNITY_ID: (&str, &str) = ("community_id", "string");

/// conn.log's columns after `ts uid id.*` (Zeek's `Conn::Info`; `community_id` is added like
/// the other logs' last column).
const CONN_LOG_FIELDS: &[(&str, &str)] = &[
    ("proto", "enum"),
    ("service", "string"),
    ("duration", "interval"),
    ("orig_bytes", "count"),
    ("resp_bytes", "count"),
    ("conn_state", "string"),
    ("local_orig", "bool"),
    ("local_resp", "bool"),
    ("missed_bytes", "count"),
    ("history", "string"),
    ("orig_pkts", "count"),
    ("orig_ip_bytes", "count"),
    ("resp_pkts", "count"),
    ("resp_ip_bytes", "count"),
    ("tunnel_parents", "set[string]"),
    ("ip_proto", "count"),
];

/// conn.log: written from connections, not exchanges.
static CONN_LOG: ZeekLog = ZeekLog {
    path: "conn",
    fields: CONN_LOG_FIELDS,
    row: |_, _| false,
};

/// Formats a packet-vantage connection's conn.log row into `line`; `false` for connections
/// without one (socket vantage).
fn format_conn(c: &ConnSummary, line: &mut String) -> bool {
    let Some(z) = &c.conn_log else {
        return false;
    };
    let i = &c.info;
    let dur = z.duration_us();
    let mut row: Vec<ZVal<'_>> = Vec::with_capacity(CONN_LOG_FIELDS.len());
    let count = ZVal::Count;
    row.push(ZVal::Text(Cow::Borrowed(i.transport.as_str().as_bytes())));
    row.push(ZVal::opt_text(c.protocol.map(str::as_bytes)));
    if dur > 0 {
        row.push(ZVal::Text(Cow::Owned(
            format!("{}.{:06}", dur / 1_000_000, dur % 1_000_000).into_bytes(),
        )));
        row.push(count(z.orig_bytes));
        row.push(count(z.resp_bytes));
    } else {
        row.extend([ZVal::Unset, ZVal::Unset, ZVal::Unset]);
    }
    row.push(ZVal::Text(Cow::Borrowed(z.conn_state.as_bytes())));
    // No local networks configured: unset, as Zeek without Site::local_nets.
    row.extend([ZVal::Unset, ZVal::Unset]);
    row.push(count(z.missed_bytes));
    row.push(if z.history.is_empty() {
        ZVal::Unset
    } else {
        ZVal::Text(Cow::Borrowed(z.history.as_bytes()))
    });
    for n in [z.orig_pkts, z.orig_ip_bytes, z.resp_pkts, z.resp_ip_bytes] {
        row.push(count(n));
    }
    row.push(match &i.tunnel {
        Some(t) => ZVal::List(Cow::Owned(vec![Text::from_slice(tunnel_uid(t).as_bytes())])),
        None => ZVal::Unset,
    });
    row.push(count(match i.transport {
        Transport::Tcp => 6,
        Transport::Udp => 17,
    }));
    push_id(line, z.first_ts, &i.uid, z.orig, z.resp);
    for v in &row {
        line.push('\t');
        push_val(v, line);
    }
    line.push('\t');
    line.push_str(&i.community_id);
    line.push('\n');
    true
}

/// Escapes a string as Zeek's ASCII writer does.
pub fn escape(v: &[u8], out: &mut String) {
    if v.is_empty() {
        out.push_str("(empty)");
        return;
    }
    if v == b"-" {
        out.push_str("\\x2d");
        return;
    }
    if v == b"(empty)" {
        out.push_str("\\x28empty)");
        return;
    }
    let mut rest = v;
    while !rest.is_empty() {
        match std::str::from_utf8(rest) {
            Ok(s) => {
                push_escaped_str(s, out);
                break;
            }
            Err(e) => {
                let (good, bad) = rest.split_at(e.valid_up_to());
                // `good` is valid UTF-8 by construction.
                push_escaped_str(std::str::from_utf8(good).unwrap_or_default(), out);
                let n = e.error_len().unwrap_or(bad.len());
                for &b in &bad[..n] {
                    push_hex_escape(b, out);
                }
                rest = &bad[n..];
            }
        }
    }
}

/// `\xHH`, lowercase.
fn push_hex_escape(b: u8, out: &mut String) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    out.push_str("\\x");
    out.push(char::from(HEX[usize::from(b >> 4)]));
    out.push(char::from(HEX[usize::from(b & 15)]));
}

fn push_escaped_str(s: &str, out: &mut String) {
    // Most values need no escaping: copied whole.
    if super::plain_bytes(s.as_bytes(), b'\\') {
        out.push_str(s);
        return;
    }
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            c if (c as u32) < 0x20 || c as u32 == 0x7f => push_hex_escape(c as u8, out),
            c => out.push(c),
        }
    }
}

fn format_open(ns: u64) -> String {
    let t = std::time::UNIX_EPOCH + std::time::Duration::from_nanos(ns);
    // "2009-11-18T20:58:04Z" -> "2009-11-18-20-58-04"
    humantime::format_rfc3339_seconds(t)
        .to_string()
        .trim_end_matches('Z')
        .replace([':', 'T'], "-")
}

/// Appends the columns every log starts with: `ts uid id.orig_h id.orig_p id.resp_h
/// id.resp_p`. Numbers, addresses and times are written without `core::fmt`, whose `write!`
/// took 6% of a `logs --format zeek` run on small HTTP exchanges.
fn push_id(line: &mut String, ts: u64, uid: &str, orig: Endpoint, resp: Endpoint) {
    push_seconds(line, ts);
    line.push('\t');
    line.push_str(uid);
    for e in [orig, resp] {
        line.push('\t');
        push_ip(line, e.ip());
        line.push('\t');
        push_count(line, e.port.into());
    }
}

/// Appends one value as Zeek's ASCII writer renders it.
fn push_val(v: &ZVal<'_>, line: &mut String) {
    match v {
        ZVal::Unset => line.push('-'),
        ZVal::Text(t) => escape(t, line),
        ZVal::Count(n) => push_count(line, *n),
        ZVal::Bool(b) => line.push(if *b { 'T' } else { 'F' }),
        ZVal::Literal(l) => line.push_str(l),
        ZVal::Interval(ns) => crate::l7::zeek::push_seconds(line, *ns),
        ZVal::List(items) if items.is_empty() => line.push_str("(empty)"),
        ZVal::Seconds([]) => line.push_str("(empty)"),
        ZVal::Seconds(items) => {
            for (i, s) in items.iter().enumerate() {
                if i > 0 {
                    line.push(',');
                }
                crate::l7::zeek::push_seconds(line, s.saturating_mul(1_000_000_000));
            }
        }
        ZVal::List(items) => {
            for (i, t) in items.iter().enumerate() {
                if i > 0 {
                    line.push(',');
                }
                let start = line.len();
                escape(t, line);
                if line[start..].contains(',') {
                    let e = line[start..].replace(',', "\\x2c");
                    line.truncate(start);
                    line.push_str(&e);
                }
            }
        }
    }
}

/// Formats an exchange's row into `line` (with its newline); `None` if its protocol writes
/// no Zeek log or no row for it.
fn format_row<'a>(
    ex: &'a Exchange,
    row: &mut Vec<ZVal<'a>>,
    line: &mut String,
) -> Option<&'static ZeekLog> {
    let spec = crate::proto::by_name(ex.protocol).and_then(|p| p.zeek)?;
    row.clear();
    if !(spec.row)(ex, row) {
        return None;
    }
    let c = &ex.conn;
    let ts = ex.ts();
    push_id(line, ts, &c.uid, c.orig, c.resp);
    for v in row.iter() {
        line.push('\t');
        push_val(v, line);
    }
    line.push('\t');
    line.push_str(&c.community_id);
    line.push('\n');
    Some(spec)
}

struct Log {
    /// Written on a thread of its own.
    out: Background,
    spec: &'static ZeekLog,
    last_ts: u64,
}

/// `weird.log`'s columns after the connection columns.
const WEIRD_FIELDS: &[(&str, &str)] = &[
    ("name", "string"),
    ("addl", "string"),
    ("notice", "bool"),
    ("peer", "string"),
    ("source", "string"),
];

/// Writes Zeek logs into a directory.
pub struct ZeekWriter {
    dir: PathBuf,
    logs: BTreeMap<&'static str, Log>,
    weird: Option<(BufWriter<File>, u64)>,
}

impl std::fmt::Debug for ZeekWriter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ZeekWriter")
            .field("dir", &self.dir)
            .finish_non_exhaustive()
    }
}

impl ZeekWriter {
    /// Logs will be created in `dir` (created if missing) as rows arrive.
    pub fn new(dir: &Path) -> Result<Self> {
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
        Ok(ZeekWriter {
            dir: dir.to_path_buf(),
            logs: BTreeMap::new(),
            weird: None,
        })
    }

    /// Writes a log's header: the connection columns, `fields`, then `last` (the protocol
    /// logs' and conn.log's `community_id`; none for weird.log, whose columns are Zeek's).
    fn header(
        out: &mut impl Write,
        path: &str,
        fields: &[(&str, &str)],
        last: &[(&str, &str)],
        ts: u64,
    ) -> Result<()> {
        let all = || CONN_FIELDS.iter().chain(fields).chain(last);
        let names: Vec<&str> = all().map(|(n, _)| *n).collect();
        let types: Vec<&str> = all().map(|(_, t)| *t).collect();
        write!(
            out,
            "#separator \\x09\n#set_separator\t,\n#empty_field\t(empty)\n#unset_field\t-\n#path\t{}\n#open\t{}\n#fields\t{}\n#types\t{}\n",
            path,
            format_open(ts),
            names.join("\t"),
            types.join("\t")
        )?;
        Ok(())
    }

    /// Writes notices to `weird.log` (created with the first).
    pub fn write_notices(&mut self, notices: &[Notice]) -> Result<()> {
        for n in notices {
            if self.weird.is_none() {
                let path = self.dir.join("weird.log");
                let f = File::create(&path)
                    .with_context(|| format!("cannot create {}", path.display()))?;
                let mut out = BufWriter::with_capacity(1 << 16, f);
                Self::header(&mut out, "weird", WEIRD_FIELDS, &[], n.ts)?;
                self.weird = Some((out, n.ts));
            }
            let Some((out, last)) = self.weird.as_mut() else {
                continue;
            };
            *last = (*last).max(n.ts);
            let mut line = String::new();
            match &n.conn {
                Some(c) => push_id(&mut line, n.ts, &c.uid, c.orig, c.resp),
                None => {
                    push_seconds(&mut line, n.ts);
                    line.push_str("\t-\t-\t-\t-\t-");
                }
            }
            line.push('\t');
            escape(n.name.as_bytes(), &mut line);
            line.push('\t');
            if n.addl.is_empty() {
                line.push('-');
            } else {
                escape(n.addl.as_bytes(), &mut line);
            }
            line.push_str("\tF\t-\t");
            escape(n.source.as_bytes(), &mut line);
            line.push('\n');
            out.write_all(line.as_bytes())?;
        }
        Ok(())
    }

    fn open(&mut self, spec: &'static ZeekLog, ts: u64) -> Result<&mut Log> {
        if !self.logs.contains_key(spec.path) {
            let path = self.dir.join(format!("{}.log", spec.path));
            let f =
                File::create(&path).with_context(|| format!("cannot create {}", path.display()))?;
            let mut out = Background::new(Box::new(BufWriter::with_capacity(1 << 16, f)))?;
            let mut header = out.buffer();
            Self::header(&mut header, spec.path, spec.fields, &[COMMUNITY_ID], ts)?;
            out.write(header)?;
            self.logs.insert(
                spec.path,
                Log {
                    out,
                    spec,
                    last_ts: ts,
                },
            );
        }
        self.logs
            .get_mut(spec.path)
            .ok_or_else(|| anyhow::anyhow!("log vanished"))
    }

    /// Writes exchanges to their protocols' logs (rows formatted in parallel, handed to the
    /// logs' writer threads in order).
    pub fn write_all(&mut self, ex: &[&Exchange]) -> Result<()> {
        use rayon::prelude::*;
        const PER: usize = 256;
        // Each chunk's lines go into one buffer (one given back by a writer thread when there
        // is one); `rows` says which log each range belongs to.
        type Part = (String, Vec<(&'static ZeekLog, u64, std::ops::Range<usize>)>);
        let n = ex.len().div_ceil(PER);
        let mut bufs: Vec<String> = Vec::with_capacity(n);
        for _ in 0..n {
            bufs.push(self.spare_text());
        }
        let parts: Vec<Part> = bufs
            .into_par_iter()
            .zip(ex.par_chunks(PER))
            .map(|(mut text, chunk)| {
                let mut row = Vec::new();
                text.reserve(chunk.len() * 256);
                let mut rows = Vec::with_capacity(chunk.len());
                for e in chunk {
                    let start = text.len();
                    match format_row(e, &mut row, &mut text) {
                        Some(spec) => rows.push((spec, e.ts(), start..text.len())),
                        None => text.truncate(start),
                    }
                }
                (text, rows)
            })
            .collect();
        for (text, rows) in parts {
            let Some(&(spec, ts, _)) = rows.first() else {
                continue;
            };
            let last_ts = rows.iter().map(|r| r.1).max().unwrap_or(ts);
            if rows.iter().all(|r| std::ptr::eq(r.0, spec)) {
                // One log (a capture of one protocol): the buffer is handed over whole.
                let log = self.open(spec, ts)?;
                log.last_ts = log.last_ts.max(last_ts);
                log.out.write(text.into_bytes())?;
                continue;
            }
            // Rows of several logs: each log's rows of the chunk, in order, in one buffer
            // (a log is opened with the time of its first row, as it would be row by row).
            let mut per_log: Vec<(&'static ZeekLog, u64, u64, Vec<u8>)> = Vec::new();
            for (spec, ts, range) in rows {
                let at = match per_log.iter().position(|l| std::ptr::eq(l.0, spec)) {
                    Some(at) => at,
                    None => {
                        per_log.push((spec, ts, ts, Vec::new()));
                        per_log.len() - 1
                    }
                };
                let l = &mut per_log[at];
                l.2 = l.2.max(ts);
                l.3.extend_from_slice(&text.as_bytes()[range]);
            }
            for (spec, first_ts, last_ts, bytes) in per_log {
                let log = self.open(spec, first_ts)?;
                log.last_ts = log.last_ts.max(last_ts);
                log.out.write(bytes)?;
            }
        }
        Ok(())
    }

    /// An empty text buffer: one a log's writer thread gave back when there is one.
    fn spare_text(&mut self) -> String {
        for log in self.logs.values_mut() {
            let b = log.out.buffer();
            if b.capacity() > 0 {
                // Given back emptied: no byte to check.
                return String::from_utf8(b).unwrap_or_default();
            }
        }
        String::new()
    }

    /// Writes the packet-vantage connections to conn.log.
    pub fn write_conns(&mut self, conns: &[ConnSummary]) -> Result<()> {
        let mut lines = String::new();
        let (mut first, mut last) = (None, 0);
        for c in conns {
            let start = lines.len();
            if !format_conn(c, &mut lines) {
                lines.truncate(start);
                continue;
            }
            first = first.or(Some(c.info.first_ts));
            last = last.max(c.info.first_ts);
        }
        if let Some(ts) = first {
            let log = self.open(&CONN_LOG, ts)?;
            log.last_ts = log.last_ts.max(last);
            log.out.write(lines.into_bytes())?;
        }
        Ok(())
    }

    /// Writes one exchange to its protocol's log, if the protocol has one.
    pub fn write(&mut self, ex: &Exchange) -> Result<()> {
        self.write_all(&[ex])
    }

    /// Writes the `#close` lines and flushes.
    pub fn finish(&mut self) -> Result<()> {
        for log in self.logs.values_mut() {
            let mut close = log.out.buffer();
            writeln!(close, "#close\t{}", format_open(log.last_ts))?;
            log.out.write(close)?;
            log.out.finish()?;
            let _ = log.spec;
        }
        if let Some((out, last)) = self.weird.as_mut() {
            writeln!(out, "#close\t{}", format_open(*last))?;
            out.flush()?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn esc(v: &[u8]) -> String {
        let mut s = String::new();
        escape(v, &mut s);
        s
    }

    #[test]
    fn numbers_addresses_and_times_are_written_as_display_writes_them() {
        // Edge values and a pseudo-random walk over each width.
        let mut x = 0x9E37_79B9_7F4A_7C15u64;
        let mut values = vec![0, 1, 9, 10, 99, 100, 999_999, 1_000_000, u64::MAX];
        for _ in 0..20_000 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            values.push(x >> (x % 64));
        }
        for &n in &values {
            let mut s = String::new();
            push_count(&mut s, n);
            assert_eq!(s, n.to_string());
            s.clear();
            push_seconds(&mut s, n);
            assert_eq!(
                s,
                format!("{}.{:06}", n / 1_000_000_000, (n % 1_000_000_000) / 1000),
                "{n}"
            );
            let v4 = std::net::Ipv4Addr::from((n >> 16) as u32);
            s.clear();
            push_ip(&mut s, v4.into());
            assert_eq!(s, v4.to_string());
            let v6 = std::net::Ipv6Addr::from(u128::from(n) << (n % 64));
            s.clear();
            push_ip(&mut s, v6.into());
            assert_eq!(s, v6.to_string());
        }
    }

    #[test]
    fn zeek_escaping() {
        assert_eq!(esc(b""), "(empty)");
        assert_eq!(esc(b"-"), "\\x2d");
        assert_eq!(esc(b"(empty)"), "\\x28empty)");
        assert_eq!(esc(b"a\tb"), "a\\x09b");
        assert_eq!(esc(b"a\\b"), "a\\\\b");
        assert_eq!(esc("caf\u{e9}".as_bytes()), "caf\u{e9}");
        assert_eq!(esc(b"x\xffy"), "x\\xffy");
        assert_eq!(esc(b"\x7f"), "\\x7f");
    }

    #[test]
    fn vectors_join_with_escaped_separator() {
        let mut line = String::new();
        push_val(
            &ZVal::List(
                vec![
                    Text::from_slice(b"a,b"),
                    Text::new(),
                    Text::from_slice(b"c"),
                ]
                .into(),
            ),
            &mut line,
        );
        line.push('|');
        push_val(&ZVal::List(Vec::new().into()), &mut line);
        line.push('|');
        push_val(
            &ZVal::List(vec![Text::from_slice(b"5.000000")].into()),
            &mut line,
        );
        assert_eq!(line, "a\\x2cb,(empty),c|(empty)|5.000000");
    }

    #[test]
    fn intervals_are_written_as_the_text_they_replace() {
        // DNS' rtt and TTLs were texts made with `seconds`; written in place they must read
        // the same, lists and empty lists included.
        let mut line = String::new();
        for v in [
            ZVal::Interval(269_000),
            ZVal::Interval(0),
            ZVal::Interval(86_400_000_000_123),
            ZVal::Seconds(&[]),
            ZVal::Seconds(&[300, 0, 4_294_967_295]),
        ] {
            push_val(&v, &mut line);
            line.push('|');
        }
        assert_eq!(
            line,
            "0.000269|0.000000|86400.000000|(empty)|300.000000,0.000000,4294967295.000000|"
        );
    }

    #[test]
    fn times() {
        assert_eq!(
            crate::l7::zeek::seconds(1_258_577_884_844_956_123),
            "1258577884.844956"
        );
        assert_eq!(crate::l7::zeek::seconds(5_000), "0.000005");
        assert_eq!(
            format_open(1_258_577_884_000_000_000),
            "2009-11-18-20-58-04"
        );
    }
}
