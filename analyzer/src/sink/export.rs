//! `juno-analyze export`: dataframes (Parquet, Arrow IPC, CSV) written with polars, schema in
//! docs/export.md; with `--partition-by`, Hive-style partitioned Parquet datasets written in
//! atomic, appendable batches ([`dataset`]).
//!
//! Behind the cargo feature `export`: users of the library who do not turn it on do not link
//! polars. The tables stream: rows are gathered per table up to [`BATCH_ROWS`] and each batch is
//! written through polars' batched writers, so memory does not grow with the capture
//! (`exchanges` and `connections`); `edges` (one row per graph edge) and `capture` (one row
//! per file and per interface) are written at the end.

use std::fs::File;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, anyhow};
use polars::prelude::*;
use polars_arrow::io::ipc::IpcField;

use crate::input::Iface;
use crate::model::{
    ConnInfo, ConnLog, ConnState, ConnSummary, Exchange, Outcome, Peer, RoleBy, Vantage,
};
use crate::pipeline::{RunSummary, Sink};
use crate::proto;
use crate::sink::graph::{GraphBuilder, GraphOptions};
use crate::sink::json::Json;
use crate::sink::jsonl::fields_json;

pub mod dataset;

use dataset::{DatasetOptions, Parts, RowPlace};

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
        ("duplicate", Kind::Bool),
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
        ("duplicate", Kind::Bool),
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
        ("cut_bytes", Kind::U64),
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

/// Where a table goes: one file, or a partitioned dataset.
#[derive(Debug)]
enum Dest {
    One(Out),
    Parts(Parts),
}

impl Dest {
    /// The table to add a row to, and the row's partition (empty for one file).
    fn row(&mut self, place: RowPlace<'_>) -> Result<(&mut Table, String)> {
        match self {
            Dest::One(o) => Ok((&mut o.table, String::new())),
            Dest::Parts(p) => p.row(place),
        }
    }

    /// The row just added is complete.
    fn row_done(&mut self, part: &str) -> Result<()> {
        match self {
            Dest::One(o) => o.write_if_full(),
            Dest::Parts(p) => p.row_done(part),
        }
    }

    fn finish(&mut self) -> Result<()> {
        match self {
            Dest::One(o) => o
                .finish()
                .with_context(|| format!("cannot write {}", o.path.display())),
            Dest::Parts(p) => p.finish(),
        }
    }
}

/// A partitioned export's batch: where it goes and what it is called.
#[derive(Debug)]
struct Batch {
    root: PathBuf,
    id: String,
    opts: DatasetOptions,
}

/// The export, as a sink of a run.
#[derive(Debug)]
pub struct Exporter {
    exchanges: Dest,
    connections: Dest,
    edges: Dest,
    capture: Dest,
    /// Set for a partitioned export.
    batch: Option<Batch>,
    graph: GraphBuilder,
    /// Interface names by index (kept from the last batch, for connections).
    ifaces: Vec<Iface>,
    json: Json,
}

impl Exporter {
    /// Bounds the memory of the edges table's graph.
    pub fn with_memory(mut self, bytes: usize) -> Self {
        self.graph = GraphBuilder::new(GraphOptions::default()).with_memory(bytes);
        self
    }

    /// Creates the four tables in `dir` (created if missing).
    pub fn create(dir: &Path, format: Format) -> Result<Exporter> {
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
        Ok(Exporter {
            exchanges: Dest::One(Out::create(dir, "exchanges", format, &exchange_columns())?),
            connections: Dest::One(Out::create(
                dir,
                "connections",
                format,
                &connection_columns(),
            )?),
            edges: Dest::One(Out::create(dir, "edges", format, &EDGE_COLUMNS)?),
            capture: Dest::One(Out::create(dir, "capture", format, &CAPTURE_COLUMNS)?),
            batch: None,
            graph: GraphBuilder::new(GraphOptions::default()),
            ifaces: Vec::new(),
            json: Json::new(),
        })
    }

    /// Starts a new batch of the partitioned Parquet dataset in `dir` (created if missing;
    /// layout in docs/export.md): `exchanges` and `connections` partitioned by `opts.keys`,
    /// `edges` and `capture` (summaries of the batch) by `batch=<id>`. Nothing is visible to
    /// readers before [`Sink::finish`] commits the batch.
    pub fn create_dataset(dir: &Path, opts: DatasetOptions) -> Result<Exporter> {
        Self::create_dataset_batch(dir, opts, &dataset::new_batch_id())
    }

    /// [`Exporter::create_dataset`] with a given batch id; an id that already has a manifest
    /// in `dir` is refused (batches are never rewritten).
    pub fn create_dataset_batch(dir: &Path, opts: DatasetOptions, id: &str) -> Result<Exporter> {
        if opts.keys.is_empty() {
            anyhow::bail!("a partitioned export needs at least one partition key");
        }
        if opts.max_file_rows == 0 {
            anyhow::bail!("--max-file-rows must be at least 1");
        }
        if id.is_empty()
            || id.starts_with(['.', '_'])
            || !id
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'.')
        {
            anyhow::bail!(
                "batch id {id:?}: letters, digits, '-', '_' and '.', not first '.' or '_'"
            );
        }
        let batches = dir.join("_batches");
        std::fs::create_dir_all(&batches)
            .with_context(|| format!("cannot create {}", batches.display()))?;
        let manifest = batches.join(format!("{id}.json"));
        if manifest.exists() {
            anyhow::bail!(
                "batch {id} was already written ({}): batches are never rewritten",
                manifest.display()
            );
        }
        let summary = DatasetOptions {
            keys: Vec::new(),
            max_file_rows: u64::MAX,
            ..opts.clone()
        };
        let parts = |name, cols: &[(&'static str, Kind)], o: &DatasetOptions| {
            Parts::new(dir, name, cols, id, o).map(Dest::Parts)
        };
        Ok(Exporter {
            exchanges: parts("exchanges", &exchange_columns(), &opts)?,
            connections: parts("connections", &connection_columns(), &opts)?,
            edges: parts("edges", &EDGE_COLUMNS, &summary)?,
            capture: parts("capture", &CAPTURE_COLUMNS, &summary)?,
            batch: Some(Batch {
                root: dir.to_path_buf(),
                id: id.to_string(),
                opts,
            }),
            graph: GraphBuilder::new(GraphOptions::default()),
            ifaces: Vec::new(),
            json: Json::new(),
        })
    }

    /// The batch id of a partitioned export.
    pub fn batch_id(&self) -> Option<&str> {
        self.batch.as_ref().map(|b| b.id.as_str())
    }

    /// Commits a partitioned export's batch once every table is finished: data files renamed
    /// to their final names, then the manifest, then `_SUCCESS`.
    fn commit(&mut self, s: &RunSummary) -> Result<()> {
        let Some(b) = &self.batch else {
            return Ok(());
        };
        let mut tables = serde_json::Map::new();
        for (name, d) in [
            ("exchanges", &mut self.exchanges),
            ("connections", &mut self.connections),
            ("edges", &mut self.edges),
            ("capture", &mut self.capture),
        ] {
            if let Dest::Parts(p) = d {
                tables.insert(name.to_string(), p.commit()?);
            }
        }
        let manifest = serde_json::json!({
            "batch": b.id,
            "committed": humantime::format_rfc3339_nanos(std::time::SystemTime::now()).to_string(),
            "writer": concat!("juno-analyze ", env!("CARGO_PKG_VERSION")),
            "format": "parquet",
            "partition_by": {
                "exchanges": b.opts.keys.iter().map(|k| k.as_str()).collect::<Vec<_>>(),
                "connections": b.opts.keys.iter().map(|k| k.as_str()).collect::<Vec<_>>(),
                "edges": ["batch"],
                "capture": ["batch"],
            },
            "inputs": s.files.iter().map(|f| f.path.display().to_string()).collect::<Vec<_>>(),
            "nodes": s.nodes.iter().collect::<Vec<_>>(),
            "tables": tables,
        });
        let text = serde_json::to_string_pretty(&manifest)?;
        dataset::write_atomic(
            &b.root.join("_batches"),
            &format!("{}.json", b.id),
            text.as_bytes(),
        )?;
        dataset::write_atomic(&b.root, "_SUCCESS", format!("{}\n", b.id).as_bytes())
    }
}

/// The node a connection was recorded on: the recording node of the file its interface is
/// in (packets), or the node of the traced process's pod (socket events).
fn recorded_node<'a>(
    v: &Vantage,
    peers: &'a crate::model::Peers,
    ifaces: &'a [Iface],
) -> Option<&'a str> {
    match v {
        Vantage::Packets { iface } => ifaces
            .get(*iface as usize)
            .and_then(|i| i.node.as_deref())
            .filter(|n| !n.is_empty()),
        Vantage::Socket { client, .. } => {
            let p = if *client {
                peers.client.as_deref()
            } else {
                peers.server.as_deref()
            };
            p.and_then(|p| p.node.as_deref())
        }
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

/// The view's vantage point (`vantage`, `iface`, `pid`, `comm`) and whether another view of
/// the connection is the one counted (`duplicate`).
fn vantage(t: &mut Table, c: &ConnInfo, ifaces: &[Iface]) {
    match &c.vantage {
        Vantage::Packets { iface } => {
            t.str(Some("packets"));
            let name = ifaces.get(*iface as usize).and_then(|i| i.name.clone());
            t.str(Some(&name.unwrap_or_else(|| iface.to_string())));
            t.u32(None);
            t.str(None);
        }
        Vantage::Socket { pid, comm, .. } => {
            t.str(Some(c.vantage.kind()));
            t.str(None);
            t.u32(Some(*pid));
            t.str(Some(comm));
        }
    }
    t.bool(Some(c.duplicate));
}

impl Sink for Exporter {
    fn exchanges(&mut self, ex: &[&Exchange], ifaces: &[Iface]) -> Result<()> {
        self.graph.exchanges(ex, ifaces)?;
        self.ifaces.clear();
        self.ifaces.extend_from_slice(ifaces);
        for e in ex.iter().filter(|e| e.outcome != Outcome::LateRequestEnd) {
            let c = &e.conn;
            let place = RowPlace {
                node: recorded_node(&c.vantage, &e.peers, ifaces),
                ts: e.ts(),
            };
            let (t, part) = self.exchanges.row(place)?;
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
            vantage(t, c, ifaces);
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
            self.exchanges.row_done(&part)?;
        }
        Ok(())
    }

    fn connections(&mut self, conns: &[ConnSummary]) -> Result<()> {
        self.graph.connections(conns)?;
        for c in conns {
            let i = &c.info;
            let place = RowPlace {
                node: recorded_node(&i.vantage, &c.peers, &self.ifaces),
                ts: i.first_ts,
            };
            let (t, part) = self.connections.row(place)?;
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
            vantage(t, i, &self.ifaces);
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
                r.cut_bytes,
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
            self.connections.row_done(&part)?;
        }
        Ok(())
    }

    fn cuts(&self) -> Vec<(&'static str, u64)> {
        self.graph.cuts()
    }

    fn finish(&mut self, s: &RunSummary) -> Result<()> {
        let g = self.graph.graph();
        // The summaries of the batch: one partition (`batch=<id>`) in a dataset.
        let whole = RowPlace {
            node: None,
            ts: s.first_ts.unwrap_or(0),
        };
        for e in g.edge_indices() {
            let (a, b) = g
                .edge_endpoints(e)
                .ok_or_else(|| anyhow!("graph edge without endpoints"))?;
            let (a, b, st) = (&g[a], &g[b], &g[e]);
            let (t, part) = self.edges.row(whole)?;
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
            self.edges.row_done(&part)?;
        }
        for f in &s.files {
            let (t, part) = self.capture.row(whole)?;
            t.str(Some("file"));
            t.str(Some(&f.path.display().to_string()));
            t.str(Some(&f.format.to_string()));
            t.str(None);
            t.u64(Some(f.stats.packets));
            t.u64(Some(f.stats.bytes));
            t.u64(None);
            t.u64(None);
            self.capture.row_done(&part)?;
        }
        for (i, c) in s.ifaces.iter().enumerate() {
            let iface = c.iface.as_ref();
            let (t, part) = self.capture.row(whole)?;
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
            self.capture.row_done(&part)?;
        }
        for o in [
            &mut self.exchanges,
            &mut self.connections,
            &mut self.edges,
            &mut self.capture,
        ] {
            o.finish()?;
        }
        self.commit(s)
    }
}
