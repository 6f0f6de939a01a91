//! The `juno-analyze` command line: argument parsing and output plumbing only; the work is
//! in the library.
//!
//! Exit status: 0 when every input was read whole; 2 when the run finished but some input was
//! damaged, cut short or skipped (each case is a warning on standard error, in the report and
//! in the run summary); 1 when an error stopped the run (bad arguments, an input named on the
//! command line that cannot be read or is not a capture, an output that cannot be written).

use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, Result, bail};
use clap::{Parser, Subcommand, ValueEnum};
use juno_analyze::conn::session::Notice;
use juno_analyze::input::Iface;
use juno_analyze::model::{ConnSummary, Exchange};
use juno_analyze::pipeline::Budget;
use juno_analyze::sink::graph::{GraphBuilder, GraphOptions, GroupBy};
use juno_analyze::sink::html::HtmlReport;
use juno_analyze::sink::jsonl::JsonlWriter;
use juno_analyze::sink::report::Report;
use juno_analyze::sink::summary::{exit_status, summary_json};
use juno_analyze::sink::zeek::ZeekWriter;
use juno_analyze::{Config, RunSummary, Sink};

#[derive(Parser, Debug)]
#[command(
    name = "juno-analyze",
    version,
    about = "Analyze Juno archives and pcap/pcapng captures: TCP reassembly, L7 parsing, request/response matching",
    after_help = "Inputs are files, directories (walked) or - (standard input).\n\nExit status: 0 when every input was read whole; 2 when the run finished but some input was damaged, cut short or skipped (each said on standard error); 1 when an error stopped the run."
)]
struct Cli {
    /// Worker threads (default: all cores; at most four per core).
    #[arg(long, global = true)]
    threads: Option<usize>,
    /// Memory budget, e.g. 512M or 2G: connection tables, buffers, queues, the reader's
    /// windows and the report's aggregates take their shares of it (README, "Memory");
    /// what a share cuts is counted and reported. At least 64M.
    #[arg(long, global = true, default_value = "1G", value_parser = parse_size)]
    memory: u64,
    /// Progress bar on stderr (shown only when stderr is a terminal).
    #[arg(long, global = true, value_enum, default_value_t = ProgressMode::Auto)]
    progress: ProgressMode,
    /// Do not print warnings about the inputs.
    #[arg(long, short, global = true)]
    quiet: bool,
    /// Overwrite secrets in the payload as it is read, with juno-record's rules
    /// (docs/redaction.md): for captures juno-record did not make (it redacts before writing).
    #[arg(long, global = true)]
    redact: bool,
    /// With --redact: turn a rule off (repeatable): http-auth, http-cookie, http-headers,
    /// url-query, postgresql, mysql, redis.
    #[arg(
        long = "no-redact",
        global = true,
        value_name = "RULE",
        requires = "redact"
    )]
    no_redact: Vec<String>,
    /// With --redact: also the value of this HTTP header (repeatable).
    #[arg(
        long = "redact-header",
        global = true,
        value_name = "NAME",
        requires = "redact"
    )]
    redact_headers: Vec<String>,
    /// An age identity file (as age-keygen writes it) to read archives encrypted with
    /// `juno-record --encrypt-to` (repeatable).
    #[arg(long, global = true, value_name = "FILE")]
    identity: Vec<PathBuf>,
    /// With --redact: also the value of this URL parameter (repeatable).
    #[arg(
        long = "redact-param",
        global = true,
        value_name = "NAME",
        requires = "redact"
    )]
    redact_params: Vec<String>,
    /// Read IPv4 packets whose header checksum is wrong (by default they are skipped and
    /// counted, as routers, hosts and Zeek do; for captures edited without fixing them).
    #[arg(long, global = true)]
    ignore_checksums: bool,
    /// Seed of the Community IDs (0–65535; tools that join on the ID must use the same).
    #[arg(long, global = true, default_value_t = 0)]
    community_id_seed: u16,
    /// Also write the run's summary (JSON: what was read, damaged, skipped and cut) to this
    /// file. Runs with --out-dir write it there as summary.json.
    #[arg(long, global = true)]
    summary: Option<PathBuf>,
    #[command(subcommand)]
    cmd: Cmd,
}

/// Parses a size: a number of bytes with an optional K, M, G or T suffix (powers of 1024).
fn parse_size(s: &str) -> std::result::Result<u64, String> {
    let t = s.trim();
    let (num, mult) = match t.char_indices().find(|(_, c)| !c.is_ascii_digit()) {
        None => (t, 1u64),
        Some((i, _)) => {
            let unit = t[i..]
                .trim()
                .trim_end_matches(['b', 'B'])
                .trim_end_matches(['i']);
            let m = match unit.to_ascii_uppercase().as_str() {
                "" => 1,
                "K" => 1 << 10,
                "M" => 1 << 20,
                "G" => 1 << 30,
                "T" => 1 << 40,
                u => return Err(format!("unknown unit {u:?} (use K, M, G or T)")),
            };
            (&t[..i], m)
        }
    };
    let n: u64 = num
        .parse()
        .map_err(|_| format!("{s:?} is not a size (e.g. 512M, 2G)"))?;
    let v = n
        .checked_mul(mult)
        .ok_or_else(|| format!("{s:?} is too large"))?;
    if v < Budget::MIN {
        return Err(format!(
            "{s} is less than the least budget, {} MiB",
            Budget::MIN >> 20
        ));
    }
    Ok(v)
}

#[derive(Clone, Copy, Debug, ValueEnum, PartialEq, Eq)]
enum ProgressMode {
    Auto,
    Never,
}

#[derive(Clone, Copy, Debug, ValueEnum, PartialEq, Eq)]
enum LogFormat {
    /// One JSON object per exchange (docs/jsonl.md).
    Jsonl,
    /// Zeek TSV logs (http.log, ..., weird.log).
    Zeek,
}

#[derive(Clone, Copy, Debug, ValueEnum, PartialEq, Eq)]
enum ReportFormat {
    /// Terminal summary.
    Text,
    /// One self-contained HTML page (the default when --output ends in .html).
    Html,
    /// The run summary as JSON (docs/jsonl.md, "The run summary").
    Json,
}

#[derive(Clone, Copy, Debug, ValueEnum, PartialEq, Eq)]
enum GraphFormat {
    /// Graphviz DOT.
    Dot,
    /// Nodes and edges with their statistics (docs/graph.md).
    Json,
    /// Mermaid flowchart.
    Mermaid,
    /// SVG of the busiest nodes and edges, the rest grouped (Graphviz's `dot` when installed,
    /// else an in-process layout).
    Svg,
}

#[derive(Clone, Copy, Debug, ValueEnum, PartialEq, Eq)]
enum ExportFormat {
    /// Apache Parquet (zstd-compressed).
    Parquet,
    /// Arrow IPC file (Feather v2).
    Ipc,
    /// CSV with a header row.
    Csv,
}

#[derive(Clone, Copy, Debug, ValueEnum, PartialEq, Eq)]
enum GroupByArg {
    /// Workloads, else pods, else services, else addresses.
    Workload,
    /// Pods, else services, else addresses.
    Pod,
    /// Namespaces, else addresses.
    Namespace,
    /// Addresses.
    Ip,
}

#[derive(Subcommand, Debug)]
enum Cmd {
    /// Write the exchanges found in the inputs as logs.
    Logs {
        /// Capture files, directories, or - for standard input (pcap, pcapng, Juno archives;
        /// plain, gzip or zstd).
        #[arg(required = true)]
        inputs: Vec<PathBuf>,
        /// Output format.
        #[arg(long, value_enum, default_value_t = LogFormat::Jsonl)]
        format: LogFormat,
        /// Directory for the logs (jsonl: exchanges.jsonl and connections.jsonl; zeek: conn.log,
        /// <protocol>.log, weird.log; both: summary.json). Created if missing; one that holds an
        /// earlier run's output is refused unless --overwrite. Required for zeek; without it,
        /// jsonl exchanges go to standard output (and no connections are written).
        #[arg(long)]
        out_dir: Option<PathBuf>,
        /// Replace what an earlier run wrote in --out-dir (its files are deleted first).
        #[arg(long)]
        overwrite: bool,
    },
    /// Summarize the inputs: traffic, connections, protocols, exchanges, latency, errors.
    Report {
        /// Capture files, directories, or - for standard input.
        #[arg(required = true)]
        inputs: Vec<PathBuf>,
        /// Output format (default: html when --output ends in .html, else text).
        #[arg(long, value_enum)]
        format: Option<ReportFormat>,
        /// Write the report to this file instead of standard output.
        #[arg(long, short)]
        output: Option<PathBuf>,
        /// Rows in each "top" table.
        #[arg(long, default_value_t = 10)]
        top: usize,
    },
    /// The dependency graph: client → server edges per protocol with requests, errors,
    /// latency and bytes.
    Graph {
        /// Capture files, directories, or - for standard input.
        #[arg(required = true)]
        inputs: Vec<PathBuf>,
        /// Output format.
        #[arg(long, value_enum, default_value_t = GraphFormat::Dot)]
        format: GraphFormat,
        /// What a node is.
        #[arg(long, value_enum, default_value_t = GroupByArg::Workload)]
        group_by: GroupByArg,
        /// Only edges with an end in this namespace (a warning if the capture names none such).
        #[arg(long)]
        namespace: Option<String>,
        /// Only this protocol (http, dns, ...; tcp or udp for connections no parser
        /// recognized).
        #[arg(long)]
        protocol: Option<String>,
        /// Write to this file instead of standard output.
        #[arg(long, short)]
        output: Option<PathBuf>,
    },
    /// Dataframes for notebooks: tables exchanges, connections, edges and capture, one file
    /// each (schema: docs/export.md).
    Export {
        /// Capture files, directories, or - for standard input.
        #[arg(required = true)]
        inputs: Vec<PathBuf>,
        /// File format.
        #[arg(long, value_enum, default_value_t = ExportFormat::Parquet)]
        format: ExportFormat,
        /// Directory for the tables and summary.json (created if missing; one that holds an
        /// earlier run's output is refused unless --overwrite).
        #[arg(long)]
        out_dir: PathBuf,
        /// Replace what an earlier run wrote in --out-dir (its files are deleted first).
        #[arg(long, conflicts_with = "partition_by")]
        overwrite: bool,
        /// Write each table as a Hive-style partitioned Parquet dataset in --out-dir, as one
        /// more batch (files are added, never rewritten): keys `node` and/or `hour`, comma-
        /// separated, outermost first, e.g. `node,hour` → exchanges/node=…/hour=…/part-….parquet
        /// (docs/export.md).
        #[arg(long, value_name = "KEYS")]
        partition_by: Option<String>,
        /// With --partition-by: rows per file at most (a partition with more rows gets more
        /// files). The default, 1048576, makes files of tens to a hundred-odd MB.
        #[arg(long, value_name = "N", requires = "partition_by")]
        max_file_rows: Option<u64>,
        /// With --partition-by: the node of rows whose input does not record one (pcap files;
        /// Juno archives name their node). Default: `unknown`.
        #[arg(long, value_name = "NAME", requires = "partition_by")]
        node: Option<String>,
    },
}

enum LogSink {
    /// Exchanges, and connections when written into a directory.
    Jsonl(JsonlWriter, Option<JsonlWriter>),
    Zeek(ZeekWriter),
}

impl Sink for LogSink {
    fn exchanges(&mut self, ex: &[&Exchange], ifaces: &[Iface]) -> Result<()> {
        match self {
            LogSink::Jsonl(w, _) => w.write(ex, ifaces),
            LogSink::Zeek(w) => w.write_all(ex),
        }
    }
    fn connections(&mut self, c: &[ConnSummary]) -> Result<()> {
        match self {
            LogSink::Jsonl(_, Some(w)) => w.write_conns(c),
            LogSink::Jsonl(_, None) => Ok(()),
            LogSink::Zeek(w) => w.write_conns(c),
        }
    }
    fn notices(&mut self, n: &[Notice]) -> Result<()> {
        match self {
            LogSink::Jsonl(..) => Ok(()),
            LogSink::Zeek(w) => w.write_notices(n),
        }
    }
    fn finish(&mut self, _s: &RunSummary) -> Result<()> {
        match self {
            LogSink::Jsonl(w, c) => {
                if let Some(c) = c {
                    c.flush()?;
                }
                w.flush()
            }
            LogSink::Zeek(w) => w.finish(),
        }
    }
}

/// Whether a file name is one a run of juno-analyze writes into an output directory.
fn ours(name: &str) -> bool {
    let tables = ["exchanges", "connections", "edges", "capture"];
    let exts = ["parquet", "arrow", "csv"];
    let zeek_log = name.strip_suffix(".log").is_some_and(|stem| {
        stem == "weird"
            || stem == "conn"
            || juno_analyze::proto::PROTOCOLS
                .iter()
                .any(|p| p.zeek.is_some_and(|z| z.path == stem))
    });
    name == "exchanges.jsonl"
        || name == "connections.jsonl"
        || name == "summary.json"
        || zeek_log
        || name
            .split_once('.')
            .is_some_and(|(stem, ext)| tables.contains(&stem) && exts.contains(&ext))
}

/// Makes `dir` ready for a run's output without mixing runs: created if missing; if it holds
/// what an earlier run wrote, refused — or, with `overwrite`, emptied of those files first.
/// Other files are left alone.
fn prepare_out_dir(dir: &Path, overwrite: bool) -> Result<()> {
    if !dir.exists() {
        return std::fs::create_dir_all(dir)
            .with_context(|| format!("cannot create {}", dir.display()));
    }
    if !dir.is_dir() {
        bail!(
            "cannot create {}: it exists and is not a directory",
            dir.display()
        );
    }
    let mut found: Vec<PathBuf> = std::fs::read_dir(dir)
        .with_context(|| format!("cannot list {}", dir.display()))?
        .filter_map(|e| e.ok())
        .filter(|e| e.file_type().is_ok_and(|t| t.is_file()))
        .filter(|e| ours(&e.file_name().to_string_lossy()))
        .map(|e| e.path())
        .collect();
    if found.is_empty() {
        return Ok(());
    }
    found.sort();
    if !overwrite {
        let names: Vec<String> = found
            .iter()
            .take(5)
            .filter_map(|p| p.file_name().map(|n| n.to_string_lossy().into_owned()))
            .collect();
        bail!(
            "{} holds the output of an earlier run ({}{}): pass --overwrite to replace it, or choose another directory",
            dir.display(),
            names.join(", "),
            if found.len() > 5 { ", ..." } else { "" }
        );
    }
    for p in found {
        std::fs::remove_file(&p).with_context(|| format!("cannot remove {}", p.display()))?;
    }
    Ok(())
}

/// The process's peak resident memory, from the kernel (`VmHWM`).
fn peak_rss() -> Option<u64> {
    let s = std::fs::read_to_string("/proc/self/status").ok()?;
    let kb: u64 = s
        .lines()
        .find(|l| l.starts_with("VmHWM:"))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()?;
    Some(kb * 1024)
}

fn warn(summary: &RunSummary, quiet: bool) {
    if quiet {
        return;
    }
    let mut err = io::stderr().lock();
    for f in &summary.files {
        for w in &f.warnings {
            let _ = writeln!(err, "juno-analyze: warning: {}: {w}", f.path.display());
        }
    }
    for (p, why) in &summary.skipped {
        let _ = writeln!(err, "juno-analyze: warning: skipped {}: {why}", p.display());
    }
    for (p, why) in &summary.notes {
        let _ = writeln!(err, "juno-analyze: note: {}: {why}", p.display());
    }
    if summary.files_waited > 0 {
        let _ = writeln!(
            err,
            "juno-analyze: note: {} files overlapped in time with more files than could be open at once ({}, from --memory and the open-file limit): their packets were merged after later packets of others",
            summary.files_waited, summary.max_open_files
        );
    }
    let cuts: Vec<String> = summary
        .cuts()
        .into_iter()
        .filter(|(k, v)| *v > 0 && *k != "files_opened_late")
        .map(|(k, v)| format!("{k} {v}"))
        .collect();
    if !cuts.is_empty() {
        let _ = writeln!(
            err,
            "juno-analyze: note: the memory budget ({} MiB, --memory) cut: {}",
            summary.memory >> 20,
            cuts.join(", ")
        );
    }
    for w in summary.decode_warnings() {
        let _ = writeln!(err, "juno-analyze: warning: {w}");
    }
}

/// What a run ended with, for the exit status and the summary file.
struct Done {
    summary: RunSummary,
    cuts: Vec<(&'static str, u64)>,
}

fn write_summary(path: &Path, done: &Done) -> Result<()> {
    std::fs::write(path, summary_json(&done.summary, &done.cuts, peak_rss()))
        .with_context(|| format!("cannot write {}", path.display()))
}

fn run_sink(inputs: &[PathBuf], cfg: &Config, sink: &mut dyn Sink) -> Result<Done> {
    let summary = juno_analyze::analyze(inputs, cfg, sink)?;
    Ok(Done {
        summary,
        cuts: sink.cuts(),
    })
}

/// Threads at most: four per core (more only adds switching), at least 8.
fn max_threads() -> usize {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    (cores * 4).max(8)
}

fn run(cli: Cli) -> Result<Done> {
    if let Some(n) = cli.threads {
        let max = max_threads();
        let n = if n == 0 || n > max {
            let use_n = n.clamp(1, max);
            if !cli.quiet {
                let _ = writeln!(
                    io::stderr(),
                    "juno-analyze: warning: --threads {n}: using {use_n} (at least 1, at most four per core, 8 at least)"
                );
            }
            use_n
        } else {
            n
        };
        rayon::ThreadPoolBuilder::new()
            .num_threads(n)
            .build_global()
            .context("thread pool")?;
    }
    let budget = Budget { total: cli.memory };
    let mut cfg = Config::with_budget(budget);
    cfg.progress = cli.progress == ProgressMode::Auto;
    cfg.redact = if cli.redact {
        Some(
            juno_redact::Policy::from_options(
                &cli.no_redact,
                &cli.redact_headers,
                &cli.redact_params,
            )
            .context("--redact")?,
        )
    } else {
        None
    };
    cfg.identities = cli.identity.clone();
    cfg.flow.community_id_seed = cli.community_id_seed;
    cfg.decode.ignore_checksums = cli.ignore_checksums;
    let sink_memory = budget.sinks();
    let done = match cli.cmd {
        Cmd::Logs {
            inputs,
            format,
            out_dir,
            overwrite,
        } => {
            if let Some(d) = &out_dir {
                prepare_out_dir(d, overwrite)?;
            }
            let mut sink = match format {
                LogFormat::Jsonl => {
                    let create =
                        |d: &std::path::Path, name: &str| -> Result<Box<dyn Write + Send>> {
                            let p = d.join(name);
                            Ok(Box::new(BufWriter::new(File::create(&p).with_context(
                                || format!("cannot create {}", p.display()),
                            )?)))
                        };
                    // Written on threads of their own while the analysis goes on.
                    match &out_dir {
                        Some(d) => LogSink::Jsonl(
                            JsonlWriter::new(create(d, "exchanges.jsonl")?)?,
                            Some(JsonlWriter::new(create(d, "connections.jsonl")?)?),
                        ),
                        None => LogSink::Jsonl(
                            JsonlWriter::new(Box::new(BufWriter::with_capacity(
                                1 << 16,
                                io::stdout(),
                            )))?,
                            None,
                        ),
                    }
                }
                LogFormat::Zeek => {
                    let Some(d) = &out_dir else {
                        bail!(
                            "--format zeek writes one log per protocol: give the directory with --out-dir"
                        );
                    };
                    LogSink::Zeek(ZeekWriter::new(d)?)
                }
            };
            let done = run_sink(&inputs, &cfg, &mut sink)?;
            warn(&done.summary, cli.quiet);
            if let Some(d) = &out_dir {
                write_summary(&d.join("summary.json"), &done)?;
            }
            done
        }
        Cmd::Report {
            inputs,
            format,
            output,
            top,
        } => {
            let format = format.unwrap_or_else(|| {
                if output
                    .as_ref()
                    .and_then(|p| p.extension())
                    .is_some_and(|e| e.eq_ignore_ascii_case("html"))
                {
                    ReportFormat::Html
                } else {
                    ReportFormat::Text
                }
            });
            let (done, text) = match format {
                ReportFormat::Html => {
                    let mut report = HtmlReport::with_memory(top, sink_memory);
                    let done = run_sink(&inputs, &cfg, &mut report)?;
                    (done, report.html().to_string())
                }
                ReportFormat::Text => {
                    let mut report = Report::new(top).with_memory(sink_memory);
                    let done = run_sink(&inputs, &cfg, &mut report)?;
                    (done, report.text().to_string())
                }
                ReportFormat::Json => {
                    let mut none = NoSink;
                    let done = run_sink(&inputs, &cfg, &mut none)?;
                    let text = summary_json(&done.summary, &done.cuts, peak_rss());
                    (done, text)
                }
            };
            match &output {
                Some(p) => std::fs::write(p, text)
                    .with_context(|| format!("cannot write {}", p.display()))?,
                None => io::stdout().lock().write_all(text.as_bytes())?,
            }
            // The text report lists warnings itself; say them on stderr too unless they went
            // to the terminal in the report.
            if output.is_some() || format != ReportFormat::Text {
                warn(&done.summary, cli.quiet);
            }
            done
        }
        Cmd::Graph {
            inputs,
            format,
            group_by,
            namespace,
            protocol,
            output,
        } => {
            if let Some(p) = &protocol {
                let known: Vec<&str> = juno_analyze::proto::PROTOCOLS
                    .iter()
                    .map(|p| p.name)
                    .chain(["tcp", "udp"])
                    .collect();
                if !known.contains(&p.as_str()) {
                    bail!(
                        "--protocol {p}: no such protocol (known: {})",
                        known.join(", ")
                    );
                }
            }
            let opts = GraphOptions {
                group_by: match group_by {
                    GroupByArg::Workload => GroupBy::Workload,
                    GroupByArg::Pod => GroupBy::Pod,
                    GroupByArg::Namespace => GroupBy::Namespace,
                    GroupByArg::Ip => GroupBy::Ip,
                },
                namespace: namespace.clone(),
                protocol,
            };
            let mut g = GraphBuilder::new(opts).with_memory(sink_memory);
            let done = run_sink(&inputs, &cfg, &mut g)?;
            warn(&done.summary, cli.quiet);
            if let Some(ns) = &namespace
                && !g.namespaces_seen().contains(ns)
                && !cli.quiet
            {
                let seen: Vec<&str> = g.namespaces_seen().iter().map(String::as_str).collect();
                let _ = writeln!(
                    io::stderr(),
                    "juno-analyze: warning: --namespace {ns}: no exchange or connection of the capture has an end in it ({})",
                    if seen.is_empty() {
                        "the capture names no namespaces: it has no Kubernetes metadata".to_string()
                    } else {
                        format!("namespaces seen: {}", seen.join(", "))
                    }
                );
            }
            let text = match format {
                GraphFormat::Dot => g.to_dot(),
                GraphFormat::Json => g.to_json(),
                GraphFormat::Mermaid => g.to_mermaid(),
                GraphFormat::Svg => g.to_svg()?,
            };
            match output {
                Some(p) => std::fs::write(&p, text)
                    .with_context(|| format!("cannot write {}", p.display()))?,
                None => io::stdout().lock().write_all(text.as_bytes())?,
            }
            done
        }
        Cmd::Export {
            inputs,
            format,
            out_dir,
            overwrite,
            partition_by,
            max_file_rows,
            node,
        } => {
            let parts = partition_by.map(|keys| Partitioning {
                keys,
                max_file_rows,
                node,
            });
            // A partitioned dataset is shared by its batches: appended to, never cleared, and
            // no summary of one batch beside it (--summary writes one anywhere).
            let appended = parts.is_some();
            if !appended {
                prepare_out_dir(&out_dir, overwrite)?;
            }
            let done = export(&inputs, format, parts, &out_dir, &cfg, sink_memory)?;
            warn(&done.summary, cli.quiet);
            if !appended {
                write_summary(&out_dir.join("summary.json"), &done)?;
            }
            done
        }
    };
    if let Some(p) = &cli.summary {
        write_summary(p, &done)?;
    }
    Ok(done)
}

/// A sink that keeps nothing (`report --format json`: the summary is the output).
struct NoSink;

impl Sink for NoSink {
    fn exchanges(&mut self, _: &[&Exchange], _: &[Iface]) -> Result<()> {
        Ok(())
    }
}

/// `export --partition-by` and its options, as given.
#[derive(Debug)]
#[cfg_attr(
    not(feature = "export"),
    expect(dead_code, reason = "read by the export, which this build lacks")
)]
struct Partitioning {
    keys: String,
    max_file_rows: Option<u64>,
    node: Option<String>,
}

/// Test hook (docs/export.md, "Testing"): milliseconds to sleep after each data file of a
/// partitioned export is finished, so that a test can interrupt an export mid-batch.
#[cfg(feature = "export")]
const PAUSE_ENV: &str = "JUNO_EXPORT_PAUSE_AFTER_FILE_MS";

#[cfg(feature = "export")]
fn export(
    inputs: &[PathBuf],
    format: ExportFormat,
    parts: Option<Partitioning>,
    out_dir: &Path,
    cfg: &Config,
    memory: usize,
) -> Result<Done> {
    use juno_analyze::sink::export::dataset::{
        DEFAULT_MAX_FILE_ROWS, DatasetOptions, PartitionKey,
    };
    use juno_analyze::sink::export::{Exporter, Format};
    let sink = match parts {
        None => Exporter::create(
            out_dir,
            match format {
                ExportFormat::Parquet => Format::Parquet,
                ExportFormat::Ipc => Format::Ipc,
                ExportFormat::Csv => Format::Csv,
            },
        )?,
        Some(p) => {
            if format != ExportFormat::Parquet {
                bail!("--partition-by writes Parquet datasets only (drop --format)");
            }
            let pause = match std::env::var(PAUSE_ENV) {
                Ok(ms) => Some(std::time::Duration::from_millis(
                    ms.parse()
                        .with_context(|| format!("{PAUSE_ENV}={ms:?}: milliseconds"))?,
                )),
                Err(_) => None,
            };
            Exporter::create_dataset(
                out_dir,
                DatasetOptions {
                    keys: PartitionKey::parse_list(&p.keys).context("--partition-by")?,
                    max_file_rows: p.max_file_rows.unwrap_or(DEFAULT_MAX_FILE_ROWS),
                    node: p.node,
                    pause_after_file: pause,
                },
            )?
        }
    };
    let mut sink = sink.with_memory(memory);
    run_sink(inputs, cfg, &mut sink)
}

#[cfg(not(feature = "export"))]
fn export(
    _: &[PathBuf],
    _: ExportFormat,
    _: Option<Partitioning>,
    _: &Path,
    _: &Config,
    _: usize,
) -> Result<Done> {
    anyhow::bail!("this juno-analyze was built without the `export` feature (polars)")
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(c) => c,
        Err(e) => {
            let _ = e.print();
            // Help and version are not errors; bad arguments are (status 1, as every error).
            return if e.use_stderr() {
                ExitCode::from(1)
            } else {
                ExitCode::SUCCESS
            };
        }
    };
    match run(cli) {
        Ok(done) => ExitCode::from(exit_status(&done.summary)),
        Err(e) => {
            // A closed pipe (`| head`) is not a failure.
            if e.chain().any(|c| {
                c.downcast_ref::<io::Error>()
                    .is_some_and(|io| io.kind() == io::ErrorKind::BrokenPipe)
            }) {
                return ExitCode::SUCCESS;
            }
            let _ = writeln!(io::stderr(), "juno-analyze: error: {e:#}");
            ExitCode::from(1)
        }
    }
}
