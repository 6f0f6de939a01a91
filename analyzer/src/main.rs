//! The `juno-analyze` command line: argument parsing and output plumbing only; the work is
//! in the library.

use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result};
use clap::{Parser, Subcommand, ValueEnum};
use juno_analyze::input::Iface;
use juno_analyze::model::Exchange;
use juno_analyze::sink::graph::{GraphBuilder, GraphOptions, GroupBy};
use juno_analyze::sink::html::HtmlReport;
use juno_analyze::sink::jsonl::JsonlWriter;
use juno_analyze::sink::report::Report;
use juno_analyze::sink::zeek::ZeekWriter;
use juno_analyze::{Config, RunSummary, Sink};

#[derive(Parser, Debug)]
#[command(
    name = "juno-analyze",
    version,
    about = "Analyze Juno archives and pcap/pcapng captures: TCP reassembly, L7 parsing, request/response matching"
)]
struct Cli {
    /// Worker threads (default: all cores).
    #[arg(long, global = true)]
    threads: Option<usize>,
    /// Progress bar on stderr (shown only when stderr is a terminal).
    #[arg(long, global = true, value_enum, default_value_t = ProgressMode::Auto)]
    progress: ProgressMode,
    /// Do not print warnings about the inputs.
    #[arg(long, short, global = true)]
    quiet: bool,
    #[command(subcommand)]
    cmd: Cmd,
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
    /// Zeek TSV logs (http.log, ...).
    Zeek,
}

#[derive(Clone, Copy, Debug, ValueEnum, PartialEq, Eq)]
enum ReportFormat {
    /// Terminal summary.
    Text,
    /// One self-contained HTML page (the default when --output ends in .html).
    Html,
}

#[derive(Clone, Copy, Debug, ValueEnum, PartialEq, Eq)]
enum GraphFormat {
    /// Graphviz DOT.
    Dot,
    /// Nodes and edges with their statistics (docs/graph.md).
    Json,
    /// Mermaid flowchart.
    Mermaid,
    /// SVG (Graphviz's `dot` when installed, else an in-process layout).
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
        /// Capture files or directories (pcap, pcapng, Juno archives; plain, gzip or zstd).
        #[arg(required = true)]
        inputs: Vec<PathBuf>,
        /// Output format.
        #[arg(long, value_enum, default_value_t = LogFormat::Jsonl)]
        format: LogFormat,
        /// Directory for the logs (jsonl: exchanges.jsonl; zeek: <protocol>.log). Default:
        /// jsonl to standard output, zeek logs into the current directory.
        #[arg(long)]
        out_dir: Option<PathBuf>,
    },
    /// Summarize the inputs: traffic, connections, protocols, exchanges, latency, errors.
    Report {
        /// Capture files or directories.
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
        /// Capture files or directories.
        #[arg(required = true)]
        inputs: Vec<PathBuf>,
        /// Output format.
        #[arg(long, value_enum, default_value_t = GraphFormat::Dot)]
        format: GraphFormat,
        /// What a node is.
        #[arg(long, value_enum, default_value_t = GroupByArg::Workload)]
        group_by: GroupByArg,
        /// Only edges with an end in this namespace.
        #[arg(long)]
        namespace: Option<String>,
        /// Only this protocol (http, dns, ...).
        #[arg(long)]
        protocol: Option<String>,
        /// Write to this file instead of standard output.
        #[arg(long, short)]
        output: Option<PathBuf>,
    },
    /// Dataframes for notebooks: tables exchanges, connections, edges and capture, one file
    /// each (schema: docs/export.md).
    Export {
        /// Capture files or directories.
        #[arg(required = true)]
        inputs: Vec<PathBuf>,
        /// File format.
        #[arg(long, value_enum, default_value_t = ExportFormat::Parquet)]
        format: ExportFormat,
        /// Directory for the tables (created if missing).
        #[arg(long)]
        out_dir: PathBuf,
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
    Jsonl(JsonlWriter<Box<dyn Write>>),
    Zeek(ZeekWriter),
}

impl Sink for LogSink {
    fn exchanges(&mut self, ex: &[Exchange], ifaces: &[Iface]) -> Result<()> {
        match self {
            LogSink::Jsonl(w) => w.write(ex, ifaces),
            LogSink::Zeek(w) => w.write_all(ex),
        }
    }
    fn finish(&mut self, _s: &RunSummary) -> Result<()> {
        match self {
            LogSink::Jsonl(w) => w.flush(),
            LogSink::Zeek(w) => w.finish(),
        }
    }
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
        let _ = writeln!(err, "juno-analyze: note: skipped {}: {why}", p.display());
    }
    for w in summary.decode_warnings() {
        let _ = writeln!(err, "juno-analyze: warning: {w}");
    }
}

fn run(cli: Cli) -> Result<()> {
    if let Some(n) = cli.threads {
        rayon::ThreadPoolBuilder::new()
            .num_threads(n.max(1))
            .build_global()
            .context("thread pool")?;
    }
    let cfg = Config {
        progress: cli.progress == ProgressMode::Auto,
        ..Config::default()
    };
    match cli.cmd {
        Cmd::Logs {
            inputs,
            format,
            out_dir,
        } => {
            let mut sink = match format {
                LogFormat::Jsonl => {
                    let out: Box<dyn Write> = match &out_dir {
                        Some(d) => {
                            std::fs::create_dir_all(d)
                                .with_context(|| format!("cannot create {}", d.display()))?;
                            let p = d.join("exchanges.jsonl");
                            Box::new(BufWriter::new(
                                File::create(&p)
                                    .with_context(|| format!("cannot create {}", p.display()))?,
                            ))
                        }
                        None => Box::new(BufWriter::with_capacity(1 << 16, io::stdout())),
                    };
                    LogSink::Jsonl(JsonlWriter::new(out))
                }
                LogFormat::Zeek => LogSink::Zeek(ZeekWriter::new(
                    &out_dir.unwrap_or_else(|| PathBuf::from(".")),
                )?),
            };
            let summary = juno_analyze::analyze(&inputs, &cfg, &mut sink)?;
            warn(&summary, cli.quiet);
        }
        Cmd::Report {
            inputs,
            format,
            output,
            top,
        } => {
            let html = match format {
                Some(f) => f == ReportFormat::Html,
                None => output
                    .as_ref()
                    .and_then(|p| p.extension())
                    .is_some_and(|e| e.eq_ignore_ascii_case("html")),
            };
            let (summary, text) = if html {
                let mut report = HtmlReport::new(top);
                let summary = juno_analyze::analyze(&inputs, &cfg, &mut report)?;
                (summary, report.html().to_string())
            } else {
                let mut report = Report::new(top);
                let summary = juno_analyze::analyze(&inputs, &cfg, &mut report)?;
                (summary, report.text().to_string())
            };
            match output {
                Some(p) => std::fs::write(&p, text)
                    .with_context(|| format!("cannot write {}", p.display()))?,
                None => io::stdout().lock().write_all(text.as_bytes())?,
            }
            // The report lists warnings itself; repeat them on stderr only when it went to a file.
            let _ = summary;
        }
        Cmd::Graph {
            inputs,
            format,
            group_by,
            namespace,
            protocol,
            output,
        } => {
            let opts = GraphOptions {
                group_by: match group_by {
                    GroupByArg::Workload => GroupBy::Workload,
                    GroupByArg::Pod => GroupBy::Pod,
                    GroupByArg::Namespace => GroupBy::Namespace,
                    GroupByArg::Ip => GroupBy::Ip,
                },
                namespace,
                protocol,
            };
            let mut g = GraphBuilder::new(opts);
            let summary = juno_analyze::analyze(&inputs, &cfg, &mut g)?;
            warn(&summary, cli.quiet);
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
        }
        Cmd::Export {
            inputs,
            format,
            out_dir,
            partition_by,
            max_file_rows,
            node,
        } => {
            let parts = partition_by.map(|keys| Partitioning {
                keys,
                max_file_rows,
                node,
            });
            export(&inputs, format, parts, &out_dir, &cfg, cli.quiet)?;
        }
    }
    Ok(())
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
    out_dir: &std::path::Path,
    cfg: &Config,
    quiet: bool,
) -> Result<()> {
    use juno_analyze::sink::export::dataset::{
        DEFAULT_MAX_FILE_ROWS, DatasetOptions, PartitionKey,
    };
    use juno_analyze::sink::export::{Exporter, Format};
    let mut sink = match parts {
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
                anyhow::bail!("--partition-by writes Parquet datasets only (drop --format)");
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
    let summary = juno_analyze::analyze(inputs, cfg, &mut sink)?;
    warn(&summary, quiet);
    Ok(())
}

#[cfg(not(feature = "export"))]
fn export(
    _: &[PathBuf],
    _: ExportFormat,
    _: Option<Partitioning>,
    _: &std::path::Path,
    _: &Config,
    _: bool,
) -> Result<()> {
    anyhow::bail!("this juno-analyze was built without the `export` feature (polars)")
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            // A closed pipe (`| head`) is not a failure.
            if e.chain().any(|c| {
                c.downcast_ref::<io::Error>()
                    .is_some_and(|io| io.kind() == io::ErrorKind::BrokenPipe)
            }) {
                return ExitCode::SUCCESS;
            }
            let _ = writeln!(io::stderr(), "juno-analyze: error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
