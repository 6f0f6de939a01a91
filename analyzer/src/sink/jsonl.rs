//! JSON lines: one object per exchange, schema in `docs/jsonl.md`.

use std::io::Write;

use anyhow::Result;

use super::json::Json;
use crate::input::Iface;
use crate::model::{Exchange, Fields, Outcome, Span, Value, Vantage};

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
            j.key("start");
            j.time(s.start);
            j.key("end");
            match s.end {
                Some(e) => j.time(e),
                None => j.null(),
            }
            j.key("complete");
            j.bool(s.complete);
            j.close();
        }
    }
}

/// Writes one exchange as a JSON object (without newline) into `j`.
pub fn exchange_json(j: &mut Json, ex: &Exchange, ifaces: &[Iface]) {
    let c = &ex.conn;
    j.open();
    j.key("ts");
    j.time(ex.ts());
    j.key("uid");
    j.str(&c.uid);
    j.key("protocol");
    j.str(ex.protocol);
    j.key("transport");
    j.str(c.transport.as_str());
    for (k, e, peer) in [
        ("client", c.orig, &ex.peers.client),
        ("server", c.resp, &ex.peers.server),
    ] {
        j.key(k);
        j.open();
        j.key("ip");
        j.display(e.ip());
        j.key("port");
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
    j.key("vantage");
    j.open();
    match &c.vantage {
        Vantage::Packets { iface } => {
            j.key("kind");
            j.str("packets");
            j.key("iface");
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
            j.key("kind");
            j.str("socket");
            j.key("pid");
            j.u64(u64::from(*pid));
            j.key("comm");
            j.str(comm);
            j.key("cookie");
            j.u64(*cookie);
            j.key("cgroup_id");
            j.u64(*cgroup);
        }
    }
    j.close();
    if let Some(t) = &c.tunnel {
        j.key("tunnel");
        j.open();
        j.key("kind");
        j.str(t.kind.as_str());
        if let Some(id) = t.id {
            j.key("id");
            j.u64(u64::from(id));
        }
        j.key("src");
        j.display(t.src);
        j.key("dst");
        j.display(t.dst);
        j.close();
    }
    j.key("partial_connection");
    j.bool(c.partial);
    j.key("depth");
    j.u64(u64::from(ex.depth));
    j.key("outcome");
    j.str(ex.outcome.as_str());
    j.key("request");
    span(j, ex.request);
    j.key("response");
    span(j, ex.response);
    j.key("latency_ns");
    match ex.latency_ns() {
        Some(v) => j.u64(v),
        None => j.null(),
    }
    j.key("ttfb_ns");
    match ex.ttfb_ns() {
        Some(v) => j.u64(v),
        None => j.null(),
    }
    j.key(ex.protocol);
    fields_json(j, &ex.fields);
    j.close();
}

/// Writes a protocol's fields as one JSON object (text that is not UTF-8 as JSON lines
/// renders it: docs/jsonl.md).
pub fn fields_json(j: &mut Json, fields: &Fields) {
    j.open();
    for (k, v) in &fields.0 {
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

/// Writes exchanges as JSON lines.
#[derive(Debug)]
pub struct JsonlWriter<W: Write> {
    out: W,
    bufs: Vec<String>,
}

impl<W: Write> JsonlWriter<W> {
    /// Writes to `out`.
    pub fn new(out: W) -> Self {
        JsonlWriter {
            out,
            bufs: Vec::new(),
        }
    }

    /// Writes exchanges (those that are only the late end of an already written request are
    /// skipped: JSON has their data in the earlier record or not at all). Lines are formatted
    /// in parallel and written in order.
    pub fn write(&mut self, ex: &[Exchange], ifaces: &[Iface]) -> Result<()> {
        use rayon::prelude::*;
        const PER: usize = 256;
        let n = ex.len().div_ceil(PER);
        if self.bufs.len() < n {
            self.bufs.resize_with(n, String::new);
        }
        // Buffers are reused from batch to batch: no large allocation per batch.
        self.bufs[..n]
            .par_iter_mut()
            .zip(ex.par_chunks(PER))
            .for_each(|(s, chunk)| {
                s.clear();
                let mut j = Json::new();
                for e in chunk
                    .iter()
                    .filter(|e| e.outcome != Outcome::LateRequestEnd)
                {
                    j.clear();
                    exchange_json(&mut j, e, ifaces);
                    s.push_str(j.as_str());
                    s.push('\n');
                }
            });
        for s in &self.bufs[..n] {
            self.out.write_all(s.as_bytes())?;
        }
        Ok(())
    }

    /// Flushes.
    pub fn flush(&mut self) -> Result<()> {
        self.out.flush()?;
        Ok(())
    }
}
