//! `juno-analyze`: reads Juno archives and pcap/pcapng captures, reassembles TCP, parses
//! application protocols, matches requests with responses, and writes logs and reports.
//!
//! The pipeline runs one way, each stage its own module:
//! [`input`] (files, decompression, pcap/pcapng/Juno) → [`decode`] (link/IP/TCP/UDP) →
//! [`flow`] and [`reassembly`] (connections, in-order bytes and gaps) → [`session`] and
//! [`proto`] (protocol detection and parsers) → [`matching`] (exchanges) → [`output`] and
//! [`report`]. [`pipeline`] runs it in parallel with rayon.
//!
//! Invariants: no input makes the analyzer panic; every buffer whose size the input
//! controls is bounded (records, lines, headers, out-of-order data, open exchanges), and
//! what is dropped to stay within a bound is counted and reported.

pub mod decode;
pub mod exchange;
pub mod flow;
pub mod graph;
pub mod input;
pub mod k8s;
pub mod matching;
pub mod output;
pub mod pipeline;
pub mod progress;
pub mod proto;
pub mod reassembly;
pub mod report;
pub mod report_html;
pub mod session;
pub mod sockets;

use std::path::PathBuf;

use anyhow::Result;

pub use pipeline::{Config, RunSummary, Sink};

/// Opens `paths` (files or directories) and runs the analysis into `sink`.
pub fn analyze(paths: &[PathBuf], cfg: &Config, sink: &mut dyn Sink) -> Result<RunSummary> {
    let inputs = input::Inputs::open(paths)?;
    pipeline::run(inputs, cfg, sink)
}
