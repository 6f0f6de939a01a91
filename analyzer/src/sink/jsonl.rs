//! JSON lines: one object per exchange, schema in `docs/jsonl.md`.

use std::io::Write;

use anyhow::Result;

use super::background::Background;
use super::json::{Json, key};
use crate::input::Iface;
use crate::model::{ConnSummary, Exchange, Fields, Outcome, Span, Value, Vantage, tunnel_uid};

/// RFC 3339 UTC time with nanoseconds.
pub fn rfc3339(ns: u64) -> String {
    let mut s = String::with_capacity(30);
    super::json::push_rfc3339_nanos(ns, &mut s);
    s
}

fn span(j: &mut Json, s: Option<Span>) {
    match s {
        None => j.null(),
        Some(s) => {
            j.open();
            key!(j, "start");
            j.time(s.start);
            key!(j, "end");
            match s.end {
                Some(e) => j.time(e),
                None => j.null(),
            }
            key!(j, "complete");
            j.bool(s.complete);
            j.close();
        }
    }
}

/// Writes one exchange as a JSON object (without newline) into `j`.
pub fn exchange_json(j: &mut Json, ex: &Exchange, ifaces: &[Iface]) {
    let c = &ex.conn;
    j.open();
    key!(j, "ts");
    j.time(ex.ts());
    key!(j, "uid");
    j.str(&c.uid);
    key!(j, "community_id");
    j.str(&c.community_id);
    key!(j, "protocol");
    j.str(ex.protocol);
    key!(j, "transport");
    j.str(c.transport.as_str());
    for (k, e, peer) in [
        ("client", c.orig, &ex.peers.client),
        ("server", c.resp, &ex.peers.server),
    ] {
        j.key(k);
        j.open();
        key!(j, "ip");
        j.ip(e.ip());
        key!(j, "port");
        j.u64(u64::from(e.port));
        if let Some(p) = peer {
            for (name, v) in [
                ("pod", &p.pod),
                ("namespace", &p.namespace),
                ("workload_kind", &p.workload_kind),
                ("workload", &p.workload),
                ("service", &p.service),
                ("node", &p.node),
            ] {
                if let Some(v) = v {
                    j.key(name);
                    j.str(v);
                }
            }
        }
        j.close();
    }
    key!(j, "vantage");
    j.open();
    match &c.vantage {
        Vantage::Packets { iface } => {
            key!(j, "kind");
            j.str("packets");
            key!(j, "iface");
            match ifaces.get(*iface as usize).and_then(|i| i.name.as_deref()) {
                Some(n) => j.str(n),
                None => j.u64(u64::from(*iface)),
            }
        }
        Vantage::Socket {
            pid,
            comm,
            cookie,
            cgroup,
            ..
        } => {
            key!(j, "kind");
            j.str(c.vantage.kind());
            key!(j, "pid");
            j.u64(u64::from(*pid));
            key!(j, "comm");
            j.str(comm);
            key!(j, "cookie");
            j.u64(*cookie);
            key!(j, "cgroup_id");
            j.u64(*cgroup);
        }
    }
    j.close();
    key!(j, "duplicate");
    j.bool(c.duplicate);
    if let Some(t) = &c.tunnel {
        key!(j, "tunnel");
        j.open();
        key!(j, "kind");
        j.str(t.kind.as_str());
        if let Some(id) = t.id {
            key!(j, "id");
            j.u64(u64::from(id));
        }
        key!(j, "src");
        j.ip(t.src);
        key!(j, "dst");
        j.ip(t.dst);
        j.close();
    }
    key!(j, "partial_connection");
    j.bool(c.partial);
    key!(j, "depth");
    j.u64(u64::from(ex.depth));
    key!(j, "outcome");
    j.str(ex.outcome.as_str());
    key!(j, "request");
    span(j, ex.request);
    key!(j, "response");
    span(j, ex.response);
    key!(j, "latency_ns");
    match ex.latency_ns() {
        Some(v) => j.u64(v),
        None => j.null(),
    }
    key!(j, "ttfb_ns");
    match ex.ttfb_ns() {
        Some(v) => j.u64(v),
        None => j.null(),
    }
    j.key(ex.protocol);
    fields_json(j, &ex.fields);
    j.close();
}

/// Writes a packet-vantage connection as one JSON object with conn.log's fields (docs/jsonl.md);
/// `false` (nothing written) for a connection without them.
pub fn connection_json(j: &mut Json, c: &ConnSummary) -> bool {
    let Some(z) = &c.conn_log else {
        return false;
    };
    let i = &c.info;
    j.open();
    key!(j, "ts");
    j.time(z.first_ts);
    key!(j, "uid");
    j.str(&i.uid);
    key!(j, "community_id");
    j.str(&i.community_id);
    for (k, e) in [("id.orig_h", z.orig), ("id.resp_h", z.resp)] {
        j.key(k);
        j.ip(e.ip());
        j.key(if k == "id.orig_h" {
            "id.orig_p"
        } else {
            "id.resp_p"
        });
        j.u64(u64::from(e.port));
    }
    key!(j, "proto");
    j.str(i.transport.as_str());
    key!(j, "service");
    match c.protocol {
        Some(p) => j.str(p),
        None => j.null(),
    }
    let dur = z.duration_us();
    key!(j, "duration");
    if dur > 0 {
        j.f64(dur as f64 / 1e6);
    } else {
        j.null();
    }
    for (k, v) in [("orig_bytes", z.orig_bytes), ("resp_bytes", z.resp_bytes)] {
        j.key(k);
        if dur > 0 { j.u64(v) } else { j.null() }
    }
    key!(j, "conn_state");
    j.str(z.conn_state);
    key!(j, "missed_bytes");
    j.u64(z.missed_bytes);
    key!(j, "history");
    j.str(&z.history);
    for (k, v) in [
        ("orig_pkts", z.orig_pkts),
        ("orig_ip_bytes", z.orig_ip_bytes),
        ("resp_pkts", z.resp_pkts),
        ("resp_ip_bytes", z.resp_ip_bytes),
    ] {
        j.key(k);
        j.u64(v);
    }
    key!(j, "tunnel_parents");
    j.open_list();
    if let Some(t) = &i.tunnel {
        j.str(&tunnel_uid(t));
    }
    j.close_list();
    key!(j, "ip_proto");
    j.u64(match i.transport {
        crate::model::Transport::Tcp => 6,
        crate::model::Transport::Udp => 17,
    });
    j.close();
    true
}

/// Writes a protocol's fields as one JSON object (text that is not UTF-8 as JSON lines
/// renders it: docs/jsonl.md).
pub fn fields_json(j: &mut Json, fields: &Fields) {
    j.open();
    for (k, v) in fields.iter() {
        j.key(k);
        match v {
            Value::Text(t) => j.bytes(t),
            Value::U64(n) => j.u64(*n),
            Value::I64(n) => j.i64(*n),
            Value::Bool(b) => j.bool(*b),
            Value::Counts(items) => {
                j.open_list();
                for n in items {
                    j.u64(*n);
                }
                j.close_list();
            }
            Value::List(items) => {
                j.open_list();
                for t in items {
                    j.bytes(t);
                }
                j.close_list();
            }
        }
    }
    j.close();
}

/// Writes exchanges as JSON lines, on a thread of its own ([`Background`]): a batch's lines
/// are written while the next batch is analysed.
#[derive(Debug)]
pub struct JsonlWriter {
    out: Background,
}

impl JsonlWriter {
    /// Writes to `out` (its writer thread starts here).
    pub fn new(out: Box<dyn Write + Send>) -> Result<Self> {
        Ok(JsonlWriter {
            out: Background::new(out)?,
        })
    }

    /// Writes exchanges (those that are only the late end of an already written request are
    /// skipped: JSON has their data in the earlier record or not at all). Lines are formatted
    /// in parallel and written in order.
    pub fn write(&mut self, ex: &[&Exchange], ifaces: &[Iface]) -> Result<()> {
        use rayon::prelude::*;
        const PER: usize = 256;
        // Buffers the writer thread gave back when there are some: no large allocation per
        // batch.
        let mut bufs: Vec<Vec<u8>> = (0..ex.len().div_ceil(PER))
            .map(|_| self.out.buffer())
            .collect();
        bufs.par_iter_mut()
            .zip(ex.par_chunks(PER))
            .for_each(|(s, chunk)| {
                // Written straight into the buffer.
                let mut j = Json::with_buf(std::mem::take(s));
                for e in chunk
                    .iter()
                    .filter(|e| e.outcome != Outcome::LateRequestEnd)
                {
                    exchange_json(&mut j, e, ifaces);
                    j.newline();
                }
                *s = j.into_buf();
            });
        for s in bufs {
            self.out.write(s)?;
        }
        Ok(())
    }

    /// Writes the packet-vantage connections as JSON lines (conn.log's fields; socket-vantage
    /// connections have none and are skipped).
    pub fn write_conns(&mut self, conns: &[ConnSummary]) -> Result<()> {
        let mut j = Json::with_buf(self.out.buffer());
        for c in conns {
            if connection_json(&mut j, c) {
                j.newline();
            }
        }
        let text = j.into_buf();
        self.out.write(text)?;
        Ok(())
    }

    /// Waits until everything is written, and flushed.
    pub fn flush(&mut self) -> Result<()> {
        self.out.finish()?;
        Ok(())
    }
}
