//! The `juno-analyze` command line: argument parsing and output plumbing only; the work is
//! in the library.

use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result};
use clap::{Parser, Subcommand, ValueEnum};
use juno_analyze::input::Iface;
use juno_analyze::model::{ConnSummary, Exchange};
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
    /// Seed of the Community IDs (0–65535; tools that join on the ID must use the same).
    #[arg(long, global = true, default_value_t = 0)]
    community_id_seed: u16,
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
        /// Directory for the logs (jsonl: exchanges.jsonl and connections.jsonl; zeek:
        /// conn.log and <protocol>.log). Default: jsonl exchanges to standard output, zeek
        /// logs into the current directory.
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
    },
}

enum LogSink {
    /// Exchanges, and connections when written into a directory.
    Jsonl(
        JsonlWriter<Box<dyn Write>>,
        Option<JsonlWriter<Box<dyn Write>>>,
    ),
    Zeek(ZeekWriter),
}

impl Sink for LogSink {
    fn exchanges(&mut self, ex: &[Exchange], ifaces: &[Iface]) -> Result<()> {
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
    let mut cfg = Config {
        progress: cli.progress == ProgressMode::Auto,
        ..Config::default()
    };
    cfg.flow.community_id_seed = cli.community_id_seed;
    match cli.cmd {
        Cmd::Logs {
            inputs,
            format,
            out_dir,
        } => {
            let mut sink = match format {
                LogFormat::Jsonl => {
                    let create = |d: &std::path::Path, name: &str| -> Result<Box<dyn Write>> {
                        let p = d.join(name);
                        Ok(Box::new(BufWriter::new(File::create(&p).with_context(
                            || format!("cannot create {}", p.display()),
                        )?)))
                    };
                    match &out_dir {
                        Some(d) => {
                            std::fs::create_dir_all(d)
                                .with_context(|| format!("cannot create {}", d.display()))?;
                            LogSink::Jsonl(
                                JsonlWriter::new(create(d, "exchanges.jsonl")?),
                                Some(JsonlWriter::new(create(d, "connections.jsonl")?)),
                            )
                        }
                        None => LogSink::Jsonl(
                            JsonlWriter::new(Box::new(BufWriter::with_capacity(
                                1 << 16,
                                io::stdout(),
                            ))),
                            None,
                        ),
                    }
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
        } => export(&inputs, format, &out_dir, &cfg, cli.quiet)?,
    }
    Ok(())
}

#[cfg(feature = "export")]
fn export(
    inputs: &[PathBuf],
    format: ExportFormat,
    out_dir: &std::path::Path,
    cfg: &Config,
    quiet: bool,
) -> Result<()> {
    let format = match format {
        ExportFormat::Parquet => juno_analyze::sink::export::Format::Parquet,
        ExportFormat::Ipc => juno_analyze::sink::export::Format::Ipc,
        ExportFormat::Csv => juno_analyze::sink::export::Format::Csv,
    };
    let mut sink = juno_analyze::sink::export::Exporter::create(out_dir, format)?;
    let summary = juno_analyze::analyze(inputs, cfg, &mut sink)?;
    warn(&summary, quiet);
    Ok(())
}

#[cfg(not(feature = "export"))]
fn export(_: &[PathBuf], _: ExportFormat, _: &std::path::Path, _: &Config, _: bool) -> Result<()> {
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
