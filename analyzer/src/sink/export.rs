//! `juno-analyze export`: dataframes (Parquet, Arrow IPC, CSV) written with polars, schema in
//! docs/export.md.
//!
//! Part of the binary, not the library: the library's tests and users do not link polars.
//! The tables stream: rows are gathered per table up to [`BATCH_ROWS`] and each batch is
//! written through polars' batched writers, so memory does not grow with the capture
//! (`exchanges` and `connections`); `edges` (one row per graph edge) and `capture` (one row
//! per file and per interface) are written at the end.

use std::fs::File;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, anyhow};
use polars::prelude::*;
use polars_arrow::io::ipc::IpcField;

use crate::input::Iface;
use crate::model::{ConnLog, ConnState, ConnSummary, Exchange, Outcome, Peer, RoleBy, Vantage};
use crate::pipeline::{RunSummary, Sink};
use crate::proto;
use crate::sink::graph::{GraphBuilder, GraphOptions};
use crate::sink::json::Json;
use crate::sink::jsonl::fields_json;

/// Rows gathered before a batch is written.
pub const BATCH_ROWS: usize = 64 * 1024;

/// Output file format.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    /// Apache Parquet (zstd-compressed).
    Parquet,
    /// Arrow IPC file (Feather v2).
    Ipc,
    /// CSV with a header row.
    Csv,
}

impl Format {
    fn ext(self) -> &'static str {
        match self {
            Format::Parquet => "parquet",
            Format::Ipc => "arrow",
            Format::Csv => "csv",
        }
    }
}

/// Column types.
#[derive(Clone, Copy, Debug)]
enum Kind {
    Str,
    U32,
    U64,
    F64,
    Bool,
    /// Nanoseconds since the Unix epoch → Datetime(ns, UTC).
    Time,
    /// Nanoseconds → Duration(ns).
    Dur,
}

#[derive(Debug)]
enum Col {
    Str(Vec<Option<String>>),
    U32(Vec<Option<u32>>),
    U64(Vec<Option<u64>>),
    F64(Vec<Option<f64>>),
    Bool(Vec<Option<bool>>),
    I64(Vec<Option<i64>>, DataType),
}

impl Col {
    fn new(k: Kind) -> Col {
        match k {
            Kind::Str => Col::Str(Vec::new()),
            Kind::U32 => Col::U32(Vec::new()),
            Kind::U64 => Col::U64(Vec::new()),
            Kind::F64 => Col::F64(Vec::new()),
            Kind::Bool => Col::Bool(Vec::new()),
            Kind::Time => Col::I64(
                Vec::new(),
                DataType::Datetime(TimeUnit::Nanoseconds, Some(TimeZone::UTC)),
            ),
            Kind::Dur => Col::I64(Vec::new(), DataType::Duration(TimeUnit::Nanoseconds)),
        }
    }

    /// The column's values so far. CSV has no duration type: durations go out as integer
    /// nanoseconds there.
    fn take(&mut self, name: &str, csv: bool) -> Result<Column> {
        let name = PlSmallStr::from(name);
        let s = match self {
            Col::Str(v) => Series::new(name, std::mem::take(v)),
            Col::U32(v) => Series::new(name, std::mem::take(v)),
            Col::U64(v) => Series::new(name, std::mem::take(v)),
            Col::F64(v) => Series::new(name, std::mem::take(v)),
            Col::Bool(v) => Series::new(name, std::mem::take(v)),
            Col::I64(v, DataType::Duration(_)) if csv => Series::new(name, std::mem::take(v)),
            Col::I64(v, dt) => Series::new(name, std::mem::take(v)).cast(dt)?,
        };
        Ok(s.into_column())
    }
}

fn ns(t: u64) -> i64 {
    i64::try_from(t).unwrap_or(i64::MAX)
}

/// A table's columns, filled row by row in declaration order.
#[derive(Debug)]
struct Table {
    names: Vec<&'static str>,
    cols: Vec<Col>,
    /// Next column of the current row.
    at: usize,
    rows: usize,
    /// Written as CSV.
    csv: bool,
}

impl Table {
    fn new(columns: &[(&'static str, Kind)], csv: bool) -> Table {
        Table {
            names: columns.iter().map(|(n, _)| *n).collect(),
            cols: columns.iter().map(|(_, k)| Col::new(*k)).collect(),
            at: 0,
            rows: 0,
            csv,
        }
    }

    fn next(&mut self) -> &mut Col {
        let i = self.at;
        self.at += 1;
        if self.at == self.cols.len() {
            self.at = 0;
            self.rows += 1;
        }
        &mut self.cols[i]
    }

    fn str(&mut self, v: Option<&str>) {
        match self.next() {
            Col::Str(c) => c.push(v.map(str::to_owned)),
            c => unreachable!("column type: {c:?}"),
        }
    }
    fn u32(&mut self, v: Option<u32>) {
        match self.next() {
            Col::U32(c) => c.push(v),
            c => unreachable!("column type: {c:?}"),
        }
    }
    fn u64(&mut self, v: Option<u64>) {
        match self.next() {
            Col::U64(c) => c.push(v),
            c => unreachable!("column type: {c:?}"),
        }
    }
    fn f64(&mut self, v: Option<f64>) {
        match self.next() {
            Col::F64(c) => c.push(v),
            c => unreachable!("column type: {c:?}"),
        }
    }
    fn bool(&mut self, v: Option<bool>) {
        match self.next() {
            Col::Bool(c) => c.push(v),
            c => unreachable!("column type: {c:?}"),
        }
    }
    /// A time or a duration, in nanoseconds.
    fn ns(&mut self, v: Option<u64>) {
        match self.next() {
            Col::I64(c, _) => c.push(v.map(ns)),
            c => unreachable!("column type: {c:?}"),
        }
    }

    /// The rows so far as a frame; the table is empty afterwards.
    fn take(&mut self) -> Result<DataFrame> {
        debug_assert_eq!(self.at, 0, "a row was left unfinished");
        let cols = self
            .names
            .iter()
            .zip(self.cols.iter_mut())
            .map(|(n, c)| c.take(n, self.csv))
            .collect::<Result<Vec<_>>>()?;
        let rows = std::mem::take(&mut self.rows);
        Ok(DataFrame::new(rows, cols)?)
    }
}

/// A batched writer of one table.
enum Writer {
    Parquet(Box<polars::io::parquet::write::BatchedWriter<File>>),
    Ipc(polars::io::ipc::BatchedWriter<File>),
    Csv(polars::io::csv::write::BatchedWriter<File>),
}

impl std::fmt::Debug for Writer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Writer::Parquet(_) => "Writer::Parquet",
            Writer::Ipc(_) => "Writer::Ipc",
            Writer::Csv(_) => "Writer::Csv",
        })
    }
}

/// One output table: its columns and its file.
#[derive(Debug)]
struct Out {
    table: Table,
    path: PathBuf,
    writer: Writer,
}

impl Out {
    fn create(
        dir: &Path,
        name: &str,
        format: Format,
        columns: &[(&'static str, Kind)],
    ) -> Result<Out> {
        let mut table = Table::new(columns, format == Format::Csv);
        let schema = table.take()?.schema().as_ref().clone();
        let path = dir.join(format!("{name}.{}", format.ext()));
        let file =
            File::create(&path).with_context(|| format!("cannot create {}", path.display()))?;
        let writer = match format {
            Format::Parquet => Writer::Parquet(Box::new(
                ParquetWriter::new(file)
                    .with_compression(ParquetCompression::Zstd(None))
                    .batched(&schema)?,
            )),
            Format::Ipc => {
                // Flat columns only: one IPC field each, no dictionaries.
                let fields = (0..schema.len())
                    .map(|_| IpcField {
                        fields: Vec::new(),
                        dictionary_id: None,
                    })
                    .collect();
                Writer::Ipc(IpcWriter::new(file).batched(&schema, fields)?)
            }
            Format::Csv => Writer::Csv(CsvWriter::new(file).batched(&schema)?),
        };
        Ok(Out {
            table,
            path,
            writer,
        })
    }

    fn write(&mut self) -> Result<()> {
        if self.table.rows == 0 {
            return Ok(());
        }
        let df = self.table.take()?;
        match &mut self.writer {
            Writer::Parquet(w) => w.write_batch(&df)?,
            Writer::Ipc(w) => w.write_batch(&df)?,
            Writer::Csv(w) => w.write_batch(&df)?,
        }
        Ok(())
    }

    fn write_if_full(&mut self) -> Result<()> {
        if self.table.rows >= BATCH_ROWS {
            self.write()?;
        }
        Ok(())
    }

    fn finish(&mut self) -> Result<()> {
        self.write()?;
        match &mut self.writer {
            Writer::Parquet(w) => {
                w.finish()?;
            }
            Writer::Ipc(w) => w.finish()?,
            Writer::Csv(w) => w.finish()?,
        }
        Ok(())
    }
}

const PEER_COLUMNS: [&str; 6] = [
    "pod",
    "namespace",
    "workload_kind",
    "workload",
    "service",
    "node",
];

/// `client_pod`, …, `server_node`.
macro_rules! peer_columns {
    () => {
        [
            ("client_pod", Kind::Str),
            ("client_namespace", Kind::Str),
            ("client_workload_kind", Kind::Str),
            ("client_workload", Kind::Str),
            ("client_service", Kind::Str),
            ("client_node", Kind::Str),
            ("server_pod", Kind::Str),
            ("server_namespace", Kind::Str),
            ("server_workload_kind", Kind::Str),
            ("server_workload", Kind::Str),
            ("server_service", Kind::Str),
            ("server_node", Kind::Str),
        ]
    };
}

fn exchange_columns() -> Vec<(&'static str, Kind)> {
    let mut c = vec![
        ("ts", Kind::Time),
        ("uid", Kind::Str),
        ("community_id", Kind::Str),
        ("protocol", Kind::Str),
        ("transport", Kind::Str),
        ("client_ip", Kind::Str),
        ("client_port", Kind::U32),
        ("server_ip", Kind::Str),
        ("server_port", Kind::U32),
    ];
    c.extend(peer_columns!());
    c.extend([
        ("vantage", Kind::Str),
        ("iface", Kind::Str),
        ("pid", Kind::U32),
        ("comm", Kind::Str),
        ("partial_connection", Kind::Bool),
        ("depth", Kind::U32),
        ("outcome", Kind::Str),
        ("request_start", Kind::Time),
        ("request_end", Kind::Time),
        ("request_complete", Kind::Bool),
        ("response_start", Kind::Time),
        ("response_end", Kind::Time),
        ("response_complete", Kind::Bool),
        ("latency", Kind::Dur),
        ("ttfb", Kind::Dur),
        ("endpoint", Kind::Str),
        ("status", Kind::Str),
        ("failed", Kind::Bool),
        ("fields", Kind::Str),
    ]);
    c
}

fn connection_columns() -> Vec<(&'static str, Kind)> {
    let mut c = vec![
        ("uid", Kind::Str),
        ("community_id", Kind::Str),
        ("transport", Kind::Str),
        ("protocol", Kind::Str),
        ("client_ip", Kind::Str),
        ("client_port", Kind::U32),
        ("server_ip", Kind::Str),
        ("server_port", Kind::U32),
    ];
    c.extend(peer_columns!());
    c.extend([
        ("vantage", Kind::Str),
        ("iface", Kind::Str),
        ("pid", Kind::U32),
        ("comm", Kind::Str),
        ("start", Kind::Time),
        ("end", Kind::Time),
        ("duration", Kind::Dur),
        ("partial", Kind::Bool),
        ("roles_by", Kind::Str),
        ("state", Kind::Str),
        ("packets_to_server", Kind::U64),
        ("packets_to_client", Kind::U64),
        ("bytes_to_server", Kind::U64),
        ("bytes_to_client", Kind::U64),
        ("delivered_bytes", Kind::U64),
        ("retransmitted_bytes", Kind::U64),
        ("overlapping_segments", Kind::U64),
        ("out_of_order_segments", Kind::U64),
        ("gaps", Kind::U64),
        ("gap_bytes", Kind::U64),
        // Zeek's conn.log view (packet vantage; null for sockets).
        ("orig_is_client", Kind::Bool),
        ("conn_state", Kind::Str),
        ("history", Kind::Str),
        ("orig_bytes", Kind::U64),
        ("resp_bytes", Kind::U64),
        ("missed_bytes", Kind::U64),
        ("orig_pkts", Kind::U64),
        ("orig_ip_bytes", Kind::U64),
        ("resp_pkts", Kind::U64),
        ("resp_ip_bytes", Kind::U64),
    ]);
    c
}

const EDGE_COLUMNS: [(&str, Kind); 19] = [
    ("client_kind", Kind::Str),
    ("client_namespace", Kind::Str),
    ("client", Kind::Str),
    ("server_kind", Kind::Str),
    ("server_namespace", Kind::Str),
    ("server", Kind::Str),
    ("protocol", Kind::Str),
    ("requests", Kind::U64),
    ("errors", Kind::U64),
    ("error_rate", Kind::F64),
    ("unanswered", Kind::U64),
    ("latency_p50", Kind::Dur),
    ("latency_p90", Kind::Dur),
    ("latency_p99", Kind::Dur),
    ("connections", Kind::U64),
    ("bytes_to_server", Kind::U64),
    ("bytes_to_client", Kind::U64),
    ("first_seen", Kind::Time),
    ("last_seen", Kind::Time),
];

const CAPTURE_COLUMNS: [(&str, Kind); 8] = [
    ("kind", Kind::Str),
    ("name", Kind::Str),
    ("format", Kind::Str),
    ("description", Kind::Str),
    ("packets", Kind::U64),
    ("bytes", Kind::U64),
    ("drops_received", Kind::U64),
    ("drops_dropped", Kind::U64),
];

/// The export, as a sink of a run.
#[derive(Debug)]
pub struct Exporter {
    exchanges: Out,
    connections: Out,
    edges: Out,
    capture: Out,
    graph: GraphBuilder,
    /// Interface names by index (kept from the last batch, for connections).
    ifaces: Vec<Iface>,
    json: Json,
}

impl Exporter {
    /// Creates the four tables in `dir` (created if missing).
    pub fn create(dir: &Path, format: Format) -> Result<Exporter> {
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
        Ok(Exporter {
            exchanges: Out::create(dir, "exchanges", format, &exchange_columns())?,
            connections: Out::create(dir, "connections", format, &connection_columns())?,
            edges: Out::create(dir, "edges", format, &EDGE_COLUMNS)?,
            capture: Out::create(dir, "capture", format, &CAPTURE_COLUMNS)?,
            graph: GraphBuilder::new(GraphOptions::default()),
            ifaces: Vec::new(),
            json: Json::new(),
        })
    }
}

fn peer(t: &mut Table, p: Option<&Peer>) {
    for name in PEER_COLUMNS {
        let v = p.and_then(|p| match name {
            "pod" => p.pod.as_deref(),
            "namespace" => p.namespace.as_deref(),
            "workload_kind" => p.workload_kind.as_deref(),
            "workload" => p.workload.as_deref(),
            "service" => p.service.as_deref(),
            _ => p.node.as_deref(),
        });
        t.str(v);
    }
}

fn vantage(t: &mut Table, v: &Vantage, ifaces: &[Iface]) {
    match v {
        Vantage::Packets { iface } => {
            t.str(Some("packets"));
            let name = ifaces.get(*iface as usize).and_then(|i| i.name.clone());
            t.str(Some(&name.unwrap_or_else(|| iface.to_string())));
            t.u32(None);
            t.str(None);
        }
        Vantage::Socket { pid, comm, .. } => {
            t.str(Some("socket"));
            t.str(None);
            t.u32(Some(*pid));
            t.str(Some(comm));
        }
    }
}

impl Sink for Exporter {
    fn exchanges(&mut self, ex: &[Exchange], ifaces: &[Iface]) -> Result<()> {
        self.graph.exchanges(ex, ifaces)?;
        self.ifaces.clear();
        self.ifaces.extend_from_slice(ifaces);
        for e in ex.iter().filter(|e| e.outcome != Outcome::LateRequestEnd) {
            let c = &e.conn;
            let t = &mut self.exchanges.table;
            t.ns(Some(e.ts()));
            t.str(Some(&c.uid));
            t.str(Some(&c.community_id));
            t.str(Some(e.protocol));
            t.str(Some(c.transport.as_str()));
            t.str(Some(&c.orig.ip().to_string()));
            t.u32(Some(u32::from(c.orig.port)));
            t.str(Some(&c.resp.ip().to_string()));
            t.u32(Some(u32::from(c.resp.port)));
            peer(t, e.peers.client.as_deref());
            peer(t, e.peers.server.as_deref());
            vantage(t, &c.vantage, ifaces);
            t.bool(Some(c.partial));
            t.u32(Some(e.depth));
            t.str(Some(e.outcome.as_str()));
            for s in [e.request, e.response] {
                t.ns(s.map(|s| s.start));
                t.ns(s.and_then(|s| s.end));
                t.bool(s.map(|s| s.complete));
            }
            t.ns(e.latency_ns());
            t.ns(e.ttfb_ns());
            let summary = proto::by_name(e.protocol).map(|p| (p.summarize)(e));
            t.str(summary.as_ref().map(|s| s.endpoint.as_str()));
            t.str(summary.as_ref().and_then(|s| s.status.as_deref()));
            t.bool(summary.as_ref().map(|s| s.failed));
            self.json.clear();
            fields_json(&mut self.json, &e.fields);
            t.str(Some(self.json.as_str()));
            self.exchanges.write_if_full()?;
        }
        Ok(())
    }

    fn connections(&mut self, conns: &[ConnSummary]) -> Result<()> {
        self.graph.connections(conns)?;
        for c in conns {
            let i = &c.info;
            let t = &mut self.connections.table;
            t.str(Some(&i.uid));
            t.str(Some(&i.community_id));
            t.str(Some(i.transport.as_str()));
            t.str(c.protocol);
            t.str(Some(&i.orig.ip().to_string()));
            t.u32(Some(u32::from(i.orig.port)));
            t.str(Some(&i.resp.ip().to_string()));
            t.u32(Some(u32::from(i.resp.port)));
            peer(t, c.peers.client.as_deref());
            peer(t, c.peers.server.as_deref());
            vantage(t, &i.vantage, &self.ifaces);
            t.ns(Some(i.first_ts));
            t.ns(Some(c.last_ts));
            t.ns(Some(c.last_ts.saturating_sub(i.first_ts)));
            t.bool(Some(i.partial));
            t.str(Some(match c.role_by {
                RoleBy::Handshake => "handshake",
                RoleBy::Port => "port",
                RoleBy::FirstSpeaker => "first_speaker",
                RoleBy::Content => "content",
            }));
            t.str(Some(match c.state {
                ConnState::Open => "open",
                ConnState::Closed => "closed",
                ConnState::Reset => "reset",
            }));
            t.u64(Some(c.packets[0]));
            t.u64(Some(c.packets[1]));
            t.u64(Some(c.bytes[0]));
            t.u64(Some(c.bytes[1]));
            let r = &c.reasm;
            for v in [
                r.delivered,
                r.retrans_bytes,
                r.overlaps,
                r.ooo_segments,
                r.gaps,
                r.gap_bytes,
            ] {
                t.u64(Some(v));
            }
            let z = c.conn_log.as_ref();
            t.bool(z.map(|z| z.orig == i.orig));
            t.str(z.map(|z| z.conn_state));
            t.str(z.map(|z| z.history.as_str()));
            for f in [
                |z: &ConnLog| z.orig_bytes,
                |z: &ConnLog| z.resp_bytes,
                |z: &ConnLog| z.missed_bytes,
                |z: &ConnLog| z.orig_pkts,
                |z: &ConnLog| z.orig_ip_bytes,
                |z: &ConnLog| z.resp_pkts,
                |z: &ConnLog| z.resp_ip_bytes,
            ] {
                t.u64(z.map(f));
            }
            self.connections.write_if_full()?;
        }
        Ok(())
    }

    fn finish(&mut self, s: &RunSummary) -> Result<()> {
        let g = self.graph.graph();
        let t = &mut self.edges.table;
        for e in g.edge_indices() {
            let (a, b) = g
                .edge_endpoints(e)
                .ok_or_else(|| anyhow!("graph edge without endpoints"))?;
            let (a, b, st) = (&g[a], &g[b], &g[e]);
            for n in [a, b] {
                t.str(Some(n.kind));
                t.str(n.namespace.as_deref());
                t.str(Some(&n.name));
            }
            t.str(Some(st.protocol));
            t.u64(Some(st.requests));
            t.u64(Some(st.errors));
            t.f64(Some(st.error_rate()));
            t.u64(Some(st.unanswered));
            for q in [0.5, 0.9, 0.99] {
                t.ns(st.latency_q(q));
            }
            t.u64(Some(st.connections));
            t.u64(Some(st.bytes_to_server));
            t.u64(Some(st.bytes_to_client));
            t.ns(Some(st.first_seen));
            t.ns(Some(st.last_seen));
        }
        let t = &mut self.capture.table;
        for f in &s.files {
            t.str(Some("file"));
            t.str(Some(&f.path.display().to_string()));
            t.str(Some(&f.format.to_string()));
            t.str(None);
            t.u64(Some(f.stats.packets));
            t.u64(Some(f.stats.bytes));
            t.u64(None);
            t.u64(None);
        }
        for (i, c) in s.ifaces.iter().enumerate() {
            let iface = c.iface.as_ref();
            t.str(Some("interface"));
            t.str(Some(
                &iface
                    .and_then(|i| i.name.clone())
                    .unwrap_or_else(|| i.to_string()),
            ));
            t.str(None);
            t.str(iface.and_then(|i| i.description.as_deref()));
            t.u64(Some(c.packets));
            t.u64(Some(c.bytes));
            t.u64(c.drops.received);
            t.u64(c.drops.dropped);
        }
        for o in [
            &mut self.exchanges,
            &mut self.connections,
            &mut self.edges,
            &mut self.capture,
        ] {
            o.finish()
                .with_context(|| format!("cannot write {}", o.path.display()))?;
        }
        Ok(())
    }
}
